//! `conform certify`: load candidates, build them, preflight, run their clauses, write reports.
//!
//! One run shares its services (one Postgres server) across candidates. Each candidate's reports
//! are written as soon as it is done; the combined documents (matrix and parity over every
//! candidate) once all are. Exit codes combine over candidates: any failed must clause wins, then
//! anything the harness could not judge.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use engine::certify::{self, PrepareError, RunInfo};
use engine::clause::Clause;
use engine::mutant::Mutant;
use engine::services::Services;
use futures::StreamExt;
use harness::candidate::BuildCache;
use harness::report::kills::{KillMatrix, MutantReport};
use harness::report::{EXIT_FAILED, EXIT_NOT_JUDGED, EXIT_USAGE, Report};
use harness::service::Provider;
use harness::service::collector::{self, CollectorMode};
use harness::service::docker::{self, DockerError};
use harness::service::postgres::ContainerOptions;
use harness::verdict::{Failure, Verdict};

use crate::ProviderArg;
use crate::output::Output;
use crate::progress::{Progress, Style};

/// What `certify` was asked to do.
pub(crate) struct CertifyOptions {
    /// `--provider`.
    pub(crate) provider: ProviderArg,
    /// The docker provider's Postgres image, if not the default.
    pub(crate) postgres_image: Option<String>,
    /// Clause ID globs (any matches).
    pub(crate) filter: Vec<String>,
    /// Areas (any matches).
    pub(crate) area: Vec<String>,
    /// Where reports go.
    pub(crate) output: Output,
    /// Scenarios at once per candidate.
    pub(crate) parallel: usize,
    /// The OpenTelemetry Collector in the tracing path, or none.
    pub(crate) collector: CollectorMode,
    /// Boot once before grading.
    pub(crate) preflight: bool,
    /// Terminal output.
    pub(crate) style: Style,
    /// A directory of mutants (`fixtures/mutants`): each mutant of a certified candidate is run
    /// on its areas and the candidate's report carries the kill matrix.
    pub(crate) mutants: Option<PathBuf>,
    /// `--framework-version`: the release to build against instead of the manifests' pin
    /// (already validated as `v<semver>`).
    pub(crate) framework_version: Option<String>,
}

/// Certify every candidate in `dirs`; the exit code.
pub(crate) async fn certify_all(dirs: &[PathBuf], options: &CertifyOptions) -> i32 {
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let cache = BuildCache::from_env();
    // Load every candidate first: a usage error in the second must not cost the first's run.
    let mut loaded = Vec::new();
    for dir in dirs {
        match certify::load(dir) {
            Ok(c) => loaded.push(c),
            Err(err) => {
                eprintln!("conform: {err}");
                return EXIT_USAGE;
            }
        }
    }
    if let Some(version) = &options.framework_version {
        match at_release(loaded, version, options) {
            Ok(at) => loaded = at,
            Err(why) => {
                eprintln!("conform: --framework-version {version}: {why}");
                return EXIT_USAGE;
            }
        }
    }
    let container = ContainerOptions {
        image: options
            .postgres_image
            .clone()
            .unwrap_or(ContainerOptions::default().image),
    };
    let provider = match choose_provider(options.provider, &container).await {
        Ok(provider) => provider,
        Err(err) => {
            eprintln!("conform: --provider docker: {err}");
            return EXIT_NOT_JUDGED;
        }
    };
    let services = match Services::with_collector(provider, options.collector) {
        Ok(s) => Arc::new(s.with_postgres_image(container.image)),
        Err(err) => {
            eprintln!("conform: cannot prepare services: {err}");
            return EXIT_NOT_JUDGED;
        }
    };
    if options.collector == CollectorMode::Real {
        // Built (or found in the cache) before any scenario: a build error is said once, here;
        // every scenario that needs OTLP then reports it as a harness error.
        eprintln!(
            "conform: preparing the OpenTelemetry Collector ({})",
            collector::MANIFEST
        );
        match services.collector_binary().await {
            Ok(Some(c)) => eprintln!(
                "conform: collector {} ({})",
                c.binary.display(),
                if c.cached {
                    "cached".to_string()
                } else {
                    format!("built in {:.1} s", c.took.as_secs_f64())
                }
            ),
            Ok(None) => {}
            Err(Failure::Harness(message)) => eprintln!("conform: {message}"),
            Err(Failure::Violation(v)) => eprintln!("conform: {}", v.actual),
        }
    }
    let parity = catalogue::parity::rows();
    let mut reports = Vec::new();
    let mut worst = 0;
    for (candidate, framework) in loaded {
        let clauses: Vec<Clause> = catalogue::clauses_for(framework)
            .into_iter()
            .filter(|c| options.filter.is_empty() || options.filter.iter().any(|g| glob_match(g, c.id)))
            .filter(|c| options.area.is_empty() || options.area.iter().any(|a| a.eq_ignore_ascii_case(c.area())))
            .collect();
        if clauses.is_empty() {
            eprintln!("conform: no {} clause matches the filter", framework.name());
            return EXIT_USAGE;
        }
        let info = RunInfo {
            provider: provider.name().into(),
            collector: services.collector_description(),
            command: command.clone(),
            started: SystemTime::now(),
            clock: Instant::now(),
        };
        let name = candidate.manifest.name.clone();
        eprintln!(
            "conform: building {name} ({} {}{})",
            candidate.manifest.framework_module,
            candidate.manifest.framework_version,
            match &candidate.pinned_version {
                Some(pinned) => format!(", not the manifest's pin {pinned}: module graph resolved afresh"),
                None => String::new(),
            }
        );
        let built = tokio::task::spawn_blocking({
            let (cache, candidate) = (cache.clone(), candidate.clone());
            move || certify::build(candidate, framework, &cache)
        })
        .await;
        let target = match built {
            Ok(Ok(t)) => t,
            Ok(Err(PrepareError::Build(err))) => {
                // The harness cannot judge a candidate it cannot build: every clause is an
                // error carrying the build's own message, and the report says so.
                eprintln!("conform: {err}");
                let message = format!("the candidate could not be built: {err}");
                let results = certify::unrun(
                    &clauses,
                    |_| Verdict::Error {
                        message: message.clone(),
                    },
                    &Default::default(),
                );
                let report = certify::report(&candidate, framework, &clauses, "", &info, results);
                worst = combine(worst, EXIT_NOT_JUDGED);
                if !written(options.output.candidate(&report, &parity)) {
                    worst = combine(worst, EXIT_NOT_JUDGED);
                }
                print_summary(&report, options.style);
                reports.push(report);
                continue;
            }
            Ok(Err(err)) => {
                eprintln!("conform: {err}");
                return EXIT_USAGE;
            }
            Err(err) => {
                eprintln!("conform: build task failed: {err}");
                return EXIT_NOT_JUDGED;
            }
        };
        eprintln!(
            "conform: {name}: {} ({}), {} clauses, {} at a time",
            target.build.binary.display(),
            if target.build.cached {
                "cached".to_string()
            } else {
                format!("built in {:.1} s", target.build.took.as_secs_f64())
            },
            clauses.len(),
            options.parallel
        );
        let results = if options.preflight {
            match certify::preflight(target.clone(), services.clone()).await {
                Ok(()) => None,
                Err((why, evidence)) => {
                    eprintln!("conform: {name} did not boot in preflight: {why}");
                    eprintln!("conform: every clause is skipped; run with --no-preflight to grade them one by one");
                    Some(certify::unrun(
                        &clauses,
                        |_| Verdict::Skip {
                            reason: format!("preflight: the candidate did not boot: {why}"),
                        },
                        &evidence,
                    ))
                }
            }
        } else {
            None
        };
        let preflight_failed = results.is_some();
        let results = match results {
            Some(r) => r,
            None => {
                let progress = Progress::new(options.style, &name, clauses.len());
                let results =
                    engine::run::run_clauses(&clauses, target.clone(), services.clone(), options.parallel, &progress)
                        .await;
                progress.finish();
                results
            }
        };
        let mut report = certify::report(
            &target.candidate,
            framework,
            &clauses,
            &target.build.source_hash,
            &info,
            results,
        );
        if let Some(dir) = &options.mutants {
            match kill_matrix(dir, &target, &report, &services, options, &cache).await {
                Ok(Some(matrix)) => {
                    print_kill_summary(&matrix);
                    report.kill_matrix = Some(matrix);
                }
                Ok(None) => eprintln!("conform: {name}: no mutant under {} is based on it", dir.display()),
                Err(err) => {
                    eprintln!("conform: {err}");
                    worst = combine(worst, EXIT_NOT_JUDGED);
                }
            }
        }
        if !written(options.output.candidate(&report, &parity)) {
            worst = combine(worst, EXIT_NOT_JUDGED);
        }
        print_summary(&report, options.style);
        let code = if preflight_failed {
            EXIT_FAILED
        } else {
            report.exit_code()
        };
        worst = combine(worst, code);
        reports.push(report);
    }
    if !written(options.output.combined(&reports, &parity)) {
        worst = combine(worst, EXIT_NOT_JUDGED);
    }
    if let Some(startup) = services.postgres_startup() {
        eprintln!("conform: Postgres started in {} ms", startup.as_millis());
    }
    match Arc::try_unwrap(services) {
        Ok(services) => services.shutdown().await,
        Err(_) => eprintln!("conform: services still in use at exit; they are killed by their owners"),
    }
    worst
}

/// The candidates rebuilt against `version` of their framework. One release names one module, so
/// candidates of two frameworks cannot share it; mutants are built from the pinned reference, so
/// a kill matrix at another release is refused rather than silently mixed.
fn at_release(
    loaded: Vec<(harness::candidate::Candidate, engine::profile::Framework)>,
    version: &str,
    options: &CertifyOptions,
) -> Result<Vec<(harness::candidate::Candidate, engine::profile::Framework)>, String> {
    let mut modules: Vec<&str> = loaded
        .iter()
        .map(|(c, _)| c.manifest.framework_module.as_str())
        .collect();
    modules.sort_unstable();
    modules.dedup();
    if modules.len() > 1 {
        return Err(format!(
            "one release names one framework module, and these candidates use {}; certify them one framework at a time",
            modules.join(" and ")
        ));
    }
    if options.mutants.is_some() {
        return Err("--mutants is not supported with another release (mutants are built on the manifest's pin)".into());
    }
    Ok(loaded
        .into_iter()
        .map(|(c, f)| (c.at_framework_version(version), f))
        .collect())
}

/// The exit code of several candidates: any failure wins, then any unjudged, else success.
fn combine(worst: i32, code: i32) -> i32 {
    if worst == EXIT_FAILED || code == EXIT_FAILED {
        EXIT_FAILED
    } else {
        worst.max(code)
    }
}

/// The provider a run uses. `docker` must find the engine and the image (else the run stops
/// before anything is built, with the engine's address in the message); `auto` falls back to
/// `native`, saying why.
async fn choose_provider(arg: ProviderArg, container: &ContainerOptions) -> Result<Provider, DockerError> {
    let docker = async {
        docker::ready_for(&container.image, &container.hint())
            .await
            .map(|engine| engine.host().to_string())
    };
    match arg {
        ProviderArg::Native => Ok(Provider::Native),
        ProviderArg::Docker => docker.await.map(|_| Provider::Docker),
        ProviderArg::Auto => match docker.await {
            Ok(host) => {
                eprintln!("conform: provider auto -> docker ({}, engine {host})", container.image);
                Ok(Provider::Docker)
            }
            Err(err) => {
                eprintln!("conform: provider auto -> native ({err})");
                Ok(Provider::Native)
            }
        },
    }
}

/// Run every mutant under `dir` whose base is `target`'s candidate, each on its own areas (and
/// the run's filters), and compare with the reference's report. `None` when no mutant is based
/// on this candidate.
async fn kill_matrix(
    dir: &std::path::Path,
    target: &Arc<engine::cx::Target>,
    reference: &Report,
    services: &Arc<Services>,
    options: &CertifyOptions,
    cache: &BuildCache,
) -> Result<Option<KillMatrix>, String> {
    let candidates = target
        .candidate
        .dir
        .parent()
        .ok_or_else(|| format!("{} has no parent directory", target.candidate.dir.display()))?;
    let catalogue = &catalogue::registry();
    let mutants: Vec<Mutant> = engine::mutant::load_all(dir, candidates)?
        .into_iter()
        .filter(|m| m.base_dir.canonicalize().is_ok_and(|d| d == target.candidate.dir))
        .collect();
    if mutants.is_empty() {
        return Ok(None);
    }
    // Mutants run `options.parallel` at a time (each with its clauses `options.parallel` at a
    // time): a mutant's few clauses mostly wait on its candidate (a drain, a boot), so one mutant
    // at a time leaves the machine idle. The reports keep the mutants' order.
    let runs: Vec<Option<MutantReport>> = futures::stream::iter(mutants)
        .map(|mutant| async move {
            let clauses: Vec<Clause> = mutant
                .clauses(catalogue)
                .into_iter()
                .filter(|c| reference.results.iter().any(|r| r.clause == c.id))
                .collect();
            if clauses.is_empty() {
                return Ok(None);
            }
            let built = tokio::task::spawn_blocking({
                let (mutant, cache) = (mutant.clone(), cache.clone());
                move || mutant.build(&cache)
            })
            .await
            .map_err(|e| format!("building mutant {}: {e}", mutant.name))?
            .map_err(|e| format!("building mutant {}: {e}", mutant.name))?;
            let info = RunInfo {
                provider: reference.provider.clone(),
                collector: reference.collector.clone(),
                command: reference.command.clone(),
                started: SystemTime::now(),
                clock: Instant::now(),
            };
            let progress = Progress::for_mutant(options.style, &mutant.name, clauses.len());
            let results =
                engine::run::run_clauses(&clauses, built.clone(), services.clone(), options.parallel, &progress).await;
            progress.finish();
            Ok(Some(MutantReport {
                report: certify::report(
                    &built.candidate,
                    mutant.framework,
                    &clauses,
                    &built.build.source_hash,
                    &info,
                    results,
                ),
                name: mutant.name,
                breaks: mutant.breaks,
                areas: mutant.areas,
            }))
        })
        .buffered(options.parallel.max(1))
        .collect::<Vec<Result<Option<MutantReport>, String>>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    let runs: Vec<MutantReport> = runs.into_iter().flatten().collect();
    Ok(Some(KillMatrix::new(reference, &runs)))
}

fn print_kill_summary(matrix: &KillMatrix) {
    for m in &matrix.mutants {
        let caught = if m.caught_by.is_empty() {
            "SURVIVES".to_string()
        } else {
            format!("caught by {}", m.caught_by.join(", "))
        };
        say!("  mutant {:<32} {caught}", m.name);
    }
    say!(
        "  {} of {} graded clauses passing on the reference are proven by a mutant; unproven: {}",
        matrix.proven(),
        matrix.clauses.len(),
        if matrix.unproven.is_empty() {
            "none".to_string()
        } else {
            matrix.unproven.join(", ")
        }
    );
}

/// Say which files were written, or why not; false when a write failed.
fn written(result: std::io::Result<Vec<PathBuf>>) -> bool {
    match result {
        Ok(paths) => {
            for p in paths {
                eprintln!("conform: wrote {}", p.display());
            }
            true
        }
        Err(err) => {
            eprintln!("conform: writing the report: {err}");
            false
        }
    }
}

fn print_summary(report: &Report, style: Style) {
    let s = &report.summary;
    let headline = style.headline(report);
    // The framework is named only when the build used another release than the pin, so the
    // common line stays short.
    let release = match &report.framework_version_pinned {
        Some(_) => format!(" [{}]", report.framework_label()),
        None => String::new(),
    };
    say!(
        "{}{release}: {headline}: {} pass, {} fail, {} error, {} skip, {} observed (must {}/{}) in {:.1} s",
        report.candidate,
        s.pass,
        s.fail,
        s.error,
        s.skip,
        s.observed,
        s.must_pass,
        s.must,
        report.duration.as_secs_f64()
    );
}

/// `*` matches any run, `?` one character; case-insensitive.
pub(crate) fn glob_match(pattern: &str, text: &str) -> bool {
    fn go(p: &[u8], t: &[u8]) -> bool {
        match (p.first(), t.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], t) || (!t.is_empty() && go(p, &t[1..])),
            (Some(b'?'), Some(_)) => go(&p[1..], &t[1..]),
            (Some(a), Some(b)) if a.eq_ignore_ascii_case(b) => go(&p[1..], &t[1..]),
            _ => false,
        }
    }
    go(pattern.as_bytes(), text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn globs() {
        assert!(glob_match("GF-PORT-*", "GF-PORT-1"));
        assert!(glob_match("gf-port-?", "GF-PORT-1"));
        assert!(!glob_match("GF-PORT-?", "GF-PORT-10"));
        assert!(glob_match("*HLTH*", "GR-HLTH-3"));
        assert!(!glob_match("GR-*", "GF-PORT-1"));
    }
}
