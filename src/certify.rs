//! `conform certify`: load candidates, build them, preflight, run their clauses, write reports.
//!
//! One run shares its services (one Postgres server) across candidates. Each candidate's reports
//! are written as soon as it is done; the combined documents (matrix and parity over every
//! candidate) once all are. Exit codes combine over candidates: any failed must clause wins, then
//! anything the harness could not judge.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use engine::certify;
use engine::clause::Clause;
use engine::plan::{Event, Observer, Plan, PlanSpec, Role, RunFacts, Settings, Subject, combine};
use engine::run::Observer as _;
use engine::services::Services;
use harness::candidate::BuildCache;
use harness::report::kills::KillMatrix;
use harness::report::{EXIT_NOT_JUDGED, EXIT_USAGE, ParityRow, Report};
use harness::service::Provider;
use harness::service::collector::{self, CollectorMode};
use harness::service::docker::{self, DockerError};
use harness::service::postgres::ContainerOptions;
use harness::verdict::Failure;

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
    pub(crate) filter: Vec<glob::Pattern>,
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
    let catalogue = catalogue::registry();
    // A pattern that selects nothing is a typo or a wrong assumption, never a smaller run.
    for pattern in &options.filter {
        let matches = |c: &&Clause| loaded.iter().any(|(_, f)| *f == c.framework()) && selects(pattern, c.id);
        if !catalogue.iter().any(|c| matches(&c)) {
            let frameworks: Vec<&str> = loaded.iter().map(|(_, f)| f.name()).collect();
            eprintln!(
                "conform: --filter {:?} selects no clause of {} (`conform list` shows the IDs)",
                pattern.as_str(),
                frameworks.join(" or ")
            );
            return EXIT_USAGE;
        }
    }
    let select = |c: &Clause| {
        (options.filter.is_empty() || options.filter.iter().any(|g| selects(g, c.id)))
            && (options.area.is_empty() || options.area.iter().any(|a| a.eq_ignore_ascii_case(c.area())))
    };
    let plan = Plan::new(PlanSpec {
        candidates: loaded,
        catalogue: &catalogue,
        select: Some(&select),
        mutants: options.mutants.as_deref(),
        cache: &cache,
    });
    let plan = match plan {
        Ok(plan) => plan,
        Err(err) => {
            eprintln!("conform: {err}");
            return EXIT_NOT_JUDGED;
        }
    };
    if let Some(empty) = plan.references().find(|s| s.clauses.is_empty()) {
        eprintln!("conform: no {} clause matches the filter", empty.framework.name());
        return EXIT_USAGE;
    }
    let settings = Settings {
        parallel: options.parallel,
        preflight: options.preflight,
        facts: RunFacts {
            provider: provider.name().into(),
            collector: services.collector_description(),
            command,
        },
    };
    let console = Console::new(options, &parity);
    let certified = plan.certify(&services, &settings, &console).await;
    let mut worst = certified.iter().fold(0, |worst, c| combine(worst, c.code));
    if console.write_failed() {
        worst = combine(worst, EXIT_NOT_JUDGED);
    }
    let reports: Vec<Report> = certified.into_iter().map(|c| c.report).collect();
    if !written(options.output.combined(&reports, &parity)) {
        worst = combine(worst, EXIT_NOT_JUDGED);
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

/// What `certify` says and writes as the plan runs: the build and preflight lines, a progress
/// display per subject, and each reference's reports as soon as it is done.
struct Console<'a> {
    options: &'a CertifyOptions,
    parity: &'a [ParityRow],
    progress: Mutex<BTreeMap<String, Progress>>,
    write_failed: AtomicBool,
    /// References whose mutants could not all be run.
    mutants_failed: Mutex<Vec<String>>,
}

impl<'a> Console<'a> {
    fn new(options: &'a CertifyOptions, parity: &'a [ParityRow]) -> Console<'a> {
        Console {
            options,
            parity,
            progress: Mutex::new(BTreeMap::new()),
            write_failed: AtomicBool::new(false),
            mutants_failed: Mutex::new(Vec::new()),
        }
    }

    /// True when a report could not be written.
    fn write_failed(&self) -> bool {
        self.write_failed.load(Ordering::SeqCst)
    }

    fn with_progress(&self, subject: &Subject, f: impl FnOnce(&Progress)) {
        if let Some(p) = self
            .progress
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&subject.name)
        {
            f(p);
        }
    }
}

impl Observer for Console<'_> {
    fn event(&self, event: Event<'_>) {
        let style = self.options.style;
        match event {
            Event::Building(subject) if matches!(subject.role, Role::Reference) => {
                let c = subject.candidate();
                eprintln!(
                    "conform: building {} ({} {}{})",
                    subject.name,
                    c.manifest.framework_module,
                    c.manifest.framework_version,
                    match &c.pinned_version {
                        Some(pinned) => format!(", not the manifest's pin {pinned}: module graph resolved afresh"),
                        None => String::new(),
                    }
                );
            }
            Event::Building(_) => {}
            Event::Built(subject, target) => {
                let progress = match subject.role {
                    Role::Reference => {
                        eprintln!(
                            "conform: {}: {} ({}), {} clauses, {} at a time",
                            subject.name,
                            target.build.binary.display(),
                            if target.build.cached {
                                "cached".to_string()
                            } else {
                                format!("built in {:.1} s", target.build.took.as_secs_f64())
                            },
                            subject.clauses.len(),
                            self.options.parallel
                        );
                        Progress::new(style, &subject.name, subject.clauses.len())
                    }
                    Role::Mutant { .. } => Progress::for_mutant(style, &subject.name, subject.clauses.len()),
                };
                self.progress
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(subject.name.clone(), progress);
            }
            Event::BuildFailed(_, err) => eprintln!("conform: {err}"),
            Event::PreflightFailed(subject, why) => {
                eprintln!("conform: {} did not boot in preflight: {why}", subject.name);
                eprintln!("conform: every clause is skipped; run with --no-preflight to grade them one by one");
            }
            Event::ClauseStarted(subject, clause) => self.with_progress(subject, |p| p.started(clause)),
            Event::ClauseFinished(subject, result) => self.with_progress(subject, |p| p.finished(result)),
            Event::SubjectDone(subject) => {
                let done = self
                    .progress
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&subject.name);
                if let Some(progress) = done {
                    progress.finish();
                }
            }
            Event::MutantsFailed(subject, why) => {
                eprintln!("conform: {why}");
                self.mutants_failed
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(subject.name.clone());
            }
            Event::ReportReady(subject, report, _) => {
                if let Some(matrix) = &report.kill_matrix {
                    print_kill_summary(matrix);
                } else if let Some(dir) = &self.options.mutants {
                    let failed = self.mutants_failed.lock().unwrap_or_else(|p| p.into_inner());
                    if !failed.contains(&subject.name) {
                        eprintln!(
                            "conform: {}: no mutant under {} is based on it",
                            subject.name,
                            dir.display()
                        );
                    }
                }
                if !written(self.options.output.candidate(report, self.parity)) {
                    self.write_failed.store(true, Ordering::SeqCst);
                }
                print_summary(report, style);
            }
        }
    }
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

/// A `--filter` pattern: glob syntax (the `glob` crate's: `*`, `?`, `[...]`, `[!...]`), refused
/// with the parser's reason when it does not parse, so a typo cannot silently select less.
pub(crate) fn parse_filter(pattern: &str) -> Result<glob::Pattern, String> {
    glob::Pattern::new(pattern).map_err(|e| format!("not a glob pattern: {e}"))
}

/// Whether `pattern` selects the clause `id` (case-insensitive).
pub(crate) fn selects(pattern: &glob::Pattern, id: &str) -> bool {
    let options = glob::MatchOptions {
        case_sensitive: false,
        require_literal_separator: false,
        require_literal_leading_dot: false,
    };
    pattern.matches_with(id, options)
}

#[cfg(test)]
mod tests {
    use super::{parse_filter, selects};

    fn glob_match(pattern: &str, id: &str) -> bool {
        selects(&parse_filter(pattern).unwrap(), id)
    }

    #[test]
    fn globs() {
        assert!(glob_match("GF-PORT-*", "GF-PORT-1"));
        assert!(glob_match("gf-port-?", "GF-PORT-1"));
        assert!(!glob_match("GF-PORT-?", "GF-PORT-10"));
        assert!(glob_match("*HLTH*", "GR-HLTH-3"));
        assert!(!glob_match("GR-*", "GF-PORT-1"));
        assert!(glob_match("GR-SHUT-[1-6]", "GR-SHUT-4"));
        assert!(!glob_match("GR-SHUT-[1-6]", "GR-SHUT-7"));
        assert!(glob_match("GR-SHUT-[!1-6]", "GR-SHUT-7"));
    }

    #[test]
    fn a_pattern_that_does_not_parse_is_refused() {
        let why = parse_filter("GR-SHUT-[1-6").unwrap_err();
        assert!(why.contains("not a glob pattern"), "{why}");
    }
}
