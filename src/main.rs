//! `conform`: certify the deployment contract of a Go web service.
//!
//! Three verbs over one clause registry: `list` the clauses, `explain` one, `certify` candidates.
//! Exit codes are part of the interface (see `harness::report`): 0 every must clause passes,
//! 1 some must clause fails, 2 the harness could not judge, 64 usage error.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use clap::{Parser, Subcommand, ValueEnum};
use harness::candidate::BuildCache;
use harness::report::{self, EXIT_FAILED, EXIT_NOT_JUDGED, EXIT_USAGE, Report};
use harness::service::Provider;
use harness::service::docker::{self, DockerError};
use harness::service::postgres::ContainerOptions;
use harness::verdict::{ClauseResult, Verdict};
use scenarios::certify::{self, PrepareError, RunInfo};
use scenarios::clause::Clause;
use scenarios::profile::Framework;
use scenarios::services::Services;

#[derive(Parser)]
#[command(
    name = "conform",
    version,
    about = "Certify the deployment contract of GoFastr and GoFr services"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List the clauses conform grades.
    List {
        /// Only this framework's clauses.
        #[arg(long)]
        framework: Option<FrameworkArg>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = ListFormat::Human)]
        format: ListFormat,
    },
    /// Explain one clause: the promise, where it is documented, how it is checked.
    Explain {
        /// Clause ID, e.g. GF-PORT-1.
        id: String,
    },
    /// What changed between two runs: verdicts, clauses, and observed behaviour (JSON reports).
    /// Exits 0 when nothing changed, 1 when something did.
    Diff {
        /// The earlier report (JSON).
        old: PathBuf,
        /// The later report (JSON).
        new: PathBuf,
    },
    /// Certify candidate directories (each with a candidate.toml).
    Certify {
        /// Candidate directories.
        #[arg(required = true)]
        candidates: Vec<PathBuf>,
        /// Only clauses whose ID matches this glob (`*`, `?`); repeatable.
        #[arg(long)]
        filter: Vec<String>,
        /// Only clauses of this area (PORT, HEALTH, ...); repeatable.
        #[arg(long)]
        area: Vec<String>,
        /// Report format written to --out; `human` writes JSON, Markdown and JUnit XML into the --out directory.
        #[arg(long, value_enum, default_value_t = ReportFormat::Human)]
        format: ReportFormat,
        /// Output: a directory for `human` (default `reports`), else a file (one candidate) or directory.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Scenarios run at once per candidate.
        #[arg(long, default_value_t = 2)]
        parallel: usize,
        /// Where services come from: `native` (system Postgres binaries), `docker` (Postgres in a
        /// container), or `auto` (docker when an engine answers and has the image, else native).
        #[arg(long, value_enum, default_value_t = ProviderArg::Native)]
        provider: ProviderArg,
        /// The docker provider's Postgres image (default: CONFORM_POSTGRES_IMAGE, else
        /// conform/postgres:15, built by `cargo xtask images`).
        #[arg(long)]
        postgres_image: Option<String>,
        /// Run every clause even if the candidate fails to boot in preflight.
        #[arg(long)]
        no_preflight: bool,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum FrameworkArg {
    Gofastr,
    Gofr,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ListFormat {
    Human,
    Json,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ReportFormat {
    Human,
    Json,
    Markdown,
    Junit,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ProviderArg {
    Native,
    Docker,
    Auto,
}

fn main() {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            let code = if err.use_stderr() { EXIT_USAGE } else { 0 };
            let _ = err.print();
            std::process::exit(code);
        }
    };
    harness::reaper::install_signal_handler();
    let code = match cli.command {
        Command::List { framework, format } => list(framework, format),
        Command::Explain { id } => explain(&id),
        Command::Diff { old, new } => diff(&old, &new),
        Command::Certify {
            candidates,
            filter,
            area,
            format,
            out,
            parallel,
            provider,
            postgres_image,
            no_preflight,
        } => {
            let options = CertifyOptions {
                provider,
                postgres_image,
                filter,
                area,
                format,
                out,
                parallel,
                preflight: !no_preflight,
            };
            match tokio::runtime::Runtime::new() {
                Ok(rt) => rt.block_on(certify_all(&candidates, &options)),
                Err(err) => {
                    eprintln!("conform: cannot start the async runtime: {err}");
                    EXIT_NOT_JUDGED
                }
            }
        }
    };
    harness::reaper::exit(code);
}

fn framework_filter(f: Option<FrameworkArg>) -> Option<Framework> {
    f.map(|f| match f {
        FrameworkArg::Gofastr => Framework::GoFastr,
        FrameworkArg::Gofr => Framework::GoFr,
    })
}

fn list(framework: Option<FrameworkArg>, format: ListFormat) -> i32 {
    let want = framework_filter(framework);
    let clauses: Vec<Clause> = scenarios::registry()
        .into_iter()
        .filter(|c| want.is_none_or(|f| c.framework == f))
        .collect();
    match format {
        ListFormat::Json => println!("{}", serde_json::to_string_pretty(&clauses).expect("clauses serialize")),
        ListFormat::Human => {
            for c in &clauses {
                println!("{:<12} {:<6} {:<7} {}", c.id, c.level.name(), c.area, c.promise);
            }
            println!("\n{} clauses", clauses.len());
        }
    }
    0
}

fn explain(id: &str) -> i32 {
    let Some(c) = scenarios::find(id) else {
        eprintln!("conform: no clause {id:?}; `conform list` shows them all");
        return EXIT_USAGE;
    };
    println!(
        "{} ({}, {}, {})\n",
        c.id,
        c.framework.profile().display,
        c.area,
        c.level.name()
    );
    println!("Promise: {}", c.promise);
    println!("Documented in: {}", c.doc);
    println!("How conform checks it: {}", c.method);
    if !c.needs.is_empty() {
        let needs: Vec<String> = c.needs.iter().map(|n| format!("{n:?}")).collect();
        println!("Needs: {}", needs.join(", "));
    }
    0
}

fn diff(old: &Path, new: &Path) -> i32 {
    let read = |path: &Path| -> Result<serde_json::Value, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        serde_json::from_str(&text).map_err(|e| format!("{} is not a JSON report: {e}", path.display()))
    };
    let (old_report, new_report) = match (read(old), read(new)) {
        (Ok(o), Ok(n)) => (o, n),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("conform: {e}");
            return EXIT_USAGE;
        }
    };
    let changes = report::diff::diff(&old_report, &new_report);
    let name = |r: &serde_json::Value, k: &str| r.get(k).and_then(|v| v.as_str()).unwrap_or("?").to_string();
    println!(
        "{} {} -> {} {}: {} change(s)",
        name(&old_report, "candidate"),
        name(&old_report, "framework_version"),
        name(&new_report, "candidate"),
        name(&new_report, "framework_version"),
        changes.len()
    );
    for change in &changes {
        println!("  {change}");
    }
    if changes.is_empty() { 0 } else { EXIT_FAILED }
}

struct CertifyOptions {
    provider: ProviderArg,
    postgres_image: Option<String>,
    filter: Vec<String>,
    area: Vec<String>,
    format: ReportFormat,
    out: Option<PathBuf>,
    parallel: usize,
    preflight: bool,
}

async fn certify_all(dirs: &[PathBuf], options: &CertifyOptions) -> i32 {
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
    let services = match Services::new(provider) {
        Ok(s) => Arc::new(s.with_postgres_image(container.image)),
        Err(err) => {
            eprintln!("conform: cannot prepare services: {err}");
            return EXIT_NOT_JUDGED;
        }
    };
    let mut worst = 0;
    for (candidate, framework) in loaded {
        let clauses: Vec<Clause> = scenarios::clauses_for(framework)
            .into_iter()
            .filter(|c| options.filter.is_empty() || options.filter.iter().any(|g| glob_match(g, c.id)))
            .filter(|c| options.area.is_empty() || options.area.iter().any(|a| a.eq_ignore_ascii_case(c.area)))
            .collect();
        if clauses.is_empty() {
            eprintln!("conform: no {} clause matches the filter", framework.name());
            return EXIT_USAGE;
        }
        let info = RunInfo {
            provider: provider.name().into(),
            command: command.clone(),
            started: SystemTime::now(),
            clock: Instant::now(),
        };
        let name = candidate.manifest.name.clone();
        eprintln!(
            "conform: building {name} ({} {})",
            candidate.manifest.framework_module, candidate.manifest.framework_version
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
                let report = certify::report(&candidate, framework, "", &info, results);
                if let Err(err) = write_reports(&report, options, dirs.len()) {
                    eprintln!("conform: writing the report: {err}");
                }
                print_summary(&report);
                worst = combine(worst, EXIT_NOT_JUDGED);
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
                scenarios::run::run_clauses(&clauses, target.clone(), services.clone(), options.parallel, progress)
                    .await
            }
        };
        let report = certify::report(&target.candidate, framework, &target.build.source_hash, &info, results);
        if let Err(err) = write_reports(&report, options, dirs.len()) {
            eprintln!("conform: writing the report: {err}");
            worst = combine(worst, EXIT_NOT_JUDGED);
        }
        print_summary(&report);
        let code = if preflight_failed {
            EXIT_FAILED
        } else {
            report.exit_code()
        };
        worst = combine(worst, code);
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

/// The exit code of several candidates: any failure wins, then any unjudged, else success.
fn combine(worst: i32, code: i32) -> i32 {
    if worst == EXIT_FAILED || code == EXIT_FAILED {
        EXIT_FAILED
    } else {
        worst.max(code)
    }
}

fn progress(r: &ClauseResult) {
    let detail = match &r.verdict {
        Verdict::Fail(v) => format!(": {}", first_line(&v.actual)),
        Verdict::Error { message } => format!(": {}", first_line(message)),
        _ => String::new(),
    };
    eprintln!(
        "  {:<8} {:<12} {:>6.1} s{detail}",
        r.verdict.name(),
        r.clause,
        r.duration.as_secs_f64()
    );
}

fn first_line(s: &str) -> String {
    let line = s.lines().next().unwrap_or("");
    if line.chars().count() > 140 {
        format!("{}…", line.chars().take(140).collect::<String>())
    } else {
        line.to_string()
    }
}

fn write_reports(report: &Report, options: &CertifyOptions, candidates: usize) -> std::io::Result<()> {
    let file_for = |ext: &str| -> PathBuf {
        match &options.out {
            Some(out) if candidates == 1 && options.format != ReportFormat::Human => out.clone(),
            Some(out) => out.join(format!("{}.{ext}", report.candidate)),
            None => Path::new("reports").join(format!("{}.{ext}", report.candidate)),
        }
    };
    let mut written = Vec::new();
    if matches!(options.format, ReportFormat::Human | ReportFormat::Json) {
        let path = file_for("json");
        report::write_atomic(&path, &report::json(report))?;
        written.push(path);
    }
    if matches!(options.format, ReportFormat::Human | ReportFormat::Markdown) {
        let path = file_for("md");
        report::write_atomic(&path, &report::markdown(report))?;
        written.push(path);
    }
    if matches!(options.format, ReportFormat::Human | ReportFormat::Junit) {
        let path = file_for("junit.xml");
        report::write_atomic(&path, &report::junit(std::slice::from_ref(report)))?;
        written.push(path);
    }
    for p in written {
        eprintln!("conform: wrote {}", p.display());
    }
    Ok(())
}

fn print_summary(report: &Report) {
    let s = &report.summary;
    println!(
        "{}: {} pass, {} fail, {} error, {} skip, {} observed (must {}/{}) in {:.1} s",
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
fn glob_match(pattern: &str, text: &str) -> bool {
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
