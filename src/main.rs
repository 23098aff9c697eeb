//! `conform`: certify the deployment contract of a Go web service.
//!
//! Four verbs over one clause registry: `list` the clauses, `explain` one, `certify` candidates,
//! `diff` two certification runs.
//! Exit codes are part of the interface (see `harness::report`): 0 every must clause passes,
//! 1 some must clause fails, 2 the harness could not judge, 64 usage error.

/// `println!` for stdout that never panics: a closed pipe (`conform diff a b | head`) drops the
/// rest of the output quietly, and any other write error is said on stderr. Either way the run
/// goes on to its own end (a certification still stops its services and exits by its verdict).
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::say(format_args!($($arg)*))
    };
}

mod certify;
mod output;
mod progress;

use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand, ValueEnum};
use engine::clause::Clause;
use engine::profile::Framework;
use harness::candidate::BuildCache;
use harness::report::{self, EXIT_FAILED, EXIT_NOT_JUDGED, EXIT_USAGE};
use harness::service::collector::{self, CollectorMode};

use certify::CertifyOptions;
use output::{Output, ReportFormat};
use progress::Style;

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
    /// Build the OpenTelemetry Collector used by `certify --collector real` (or find it in the
    /// cache) and print its path. `cargo xtask test` runs this once in its set-up.
    Collector,
    /// Certify candidate directories (each with a candidate.toml).
    Certify {
        /// Candidate directories.
        #[arg(required = true)]
        candidates: Vec<PathBuf>,
        /// Only clauses whose ID matches this glob (`*`, `?`, `[1-6]`, `[!3]`; case-insensitive);
        /// repeatable. A pattern that does not parse, or that selects no clause, is refused.
        #[arg(long, value_parser = certify::parse_filter)]
        filter: Vec<glob::Pattern>,
        /// Only clauses of this area (PORT, HEALTH, ...); repeatable.
        #[arg(long)]
        area: Vec<String>,
        /// Report format: `human` prints a summary and writes every format (JSON, Markdown, HTML,
        /// JUnit XML) into the --out directory; any other writes that one format to --out.
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
        /// The OpenTelemetry Collector in the tracing path: `none` (candidates export straight to
        /// the in-process receiver) or `real` (a real collector, built once from
        /// fixtures/collector/builder-config.yaml and cached, forwards to it).
        #[arg(long, value_enum, default_value_t = CollectorArg::None)]
        collector: CollectorArg,
        /// The docker provider's Postgres image (default: CONFORM_POSTGRES_IMAGE, else
        /// conform/postgres:15, built by `cargo xtask images`).
        #[arg(long)]
        postgres_image: Option<String>,
        /// Run every clause even if the candidate fails to boot in preflight.
        #[arg(long)]
        no_preflight: bool,
        /// Plain lines instead of a progress bar (the default when stderr is not a terminal).
        #[arg(long)]
        no_progress: bool,
        /// Also run the mutants under this directory (e.g. fixtures/mutants) whose base is a
        /// certified candidate, and add the kill matrix to its report.
        #[arg(long)]
        mutants: Option<PathBuf>,
        /// Build the candidates against this release of their framework module (`v<semver>`,
        /// e.g. v1.55.0) instead of the version their manifest pins; the module graph is resolved
        /// afresh for it, and every report records the version built beside the pin.
        #[arg(long, value_name = "VERSION")]
        framework_version: Option<String>,
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

/// `--provider`: where services come from.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ProviderArg {
    Native,
    Docker,
    Auto,
}

#[derive(Clone, Copy, ValueEnum)]
enum CollectorArg {
    None,
    Real,
}

impl From<CollectorArg> for CollectorMode {
    fn from(c: CollectorArg) -> CollectorMode {
        match c {
            CollectorArg::None => CollectorMode::None,
            CollectorArg::Real => CollectorMode::Real,
        }
    }
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
        Command::Collector => build_collector(),
        Command::Certify {
            candidates,
            filter,
            area,
            format,
            out,
            parallel,
            provider,
            collector,
            postgres_image,
            no_preflight,
            no_progress,
            mutants,
            framework_version,
        } => {
            if let Some(version) = &framework_version
                && let Err(why) = harness::release::validate_version(version)
            {
                eprintln!("conform: --framework-version: {why}");
                harness::reaper::exit(EXIT_USAGE);
            }
            let options = CertifyOptions {
                provider,
                postgres_image,
                filter,
                area,
                output: Output {
                    format,
                    out,
                    candidates: candidates.len(),
                },
                parallel,
                collector: collector.into(),
                preflight: !no_preflight,
                style: Style::detect(no_progress),
                mutants,
                framework_version,
            };
            match tokio::runtime::Runtime::new() {
                Ok(rt) => rt.block_on(certify::certify_all(&candidates, &options)),
                Err(err) => {
                    eprintln!("conform: cannot start the async runtime: {err}");
                    EXIT_NOT_JUDGED
                }
            }
        }
    };
    harness::reaper::exit(code);
}

/// Write one line to stdout (see [`say!`]).
fn say(line: std::fmt::Arguments<'_>) {
    use std::io::Write;
    if let Err(err) = writeln!(std::io::stdout().lock(), "{line}")
        && err.kind() != std::io::ErrorKind::BrokenPipe
    {
        eprintln!("conform: writing to stdout: {err}");
    }
}

fn framework_filter(f: Option<FrameworkArg>) -> Option<Framework> {
    f.map(|f| match f {
        FrameworkArg::Gofastr => Framework::GoFastr,
        FrameworkArg::Gofr => Framework::GoFr,
    })
}

fn list(framework: Option<FrameworkArg>, format: ListFormat) -> i32 {
    let want = framework_filter(framework);
    let clauses: Vec<Clause> = catalogue::registry()
        .into_iter()
        .filter(|c| want.is_none_or(|f| c.framework() == f))
        .collect();
    match format {
        ListFormat::Json => say!("{}", serde_json::to_string_pretty(&clauses).expect("clauses serialize")),
        ListFormat::Human => {
            for c in &clauses {
                say!("{:<12} {:<6} {:<7} {}", c.id, c.level.name(), c.area(), c.promise);
            }
            say!("\n{} clauses", clauses.len());
        }
    }
    0
}

fn explain(id: &str) -> i32 {
    let Some(c) = catalogue::find(id) else {
        eprintln!("conform: no clause {id:?}; `conform list` shows them all");
        return EXIT_USAGE;
    };
    say!(
        "{} ({}, {}, {})\n",
        c.id,
        c.framework().profile().display,
        c.area(),
        c.level.name()
    );
    say!("Promise: {}", c.promise);
    say!("Documented in: {}", c.doc);
    say!("How conform checks it: {}", c.method);
    if !c.needs.services.is_empty() {
        let services: Vec<String> = c.needs.services.iter().map(|n| format!("{n:?}")).collect();
        say!("Needs: {}", services.join(", "));
    }
    if !c.needs.knobs.is_empty() {
        let knobs: Vec<&str> = c.needs.knobs.iter().map(|k| k.key()).collect();
        say!("Knobs (candidate.toml [knobs]): {}", knobs.join(", "));
    }
    if c.needs.alone {
        say!("Runs alone: no other clause runs beside it");
    }
    0
}

fn build_collector() -> i32 {
    let manifest = collector::default_manifest();
    eprintln!(
        "conform: building the OpenTelemetry Collector from {}",
        manifest.display()
    );
    match collector::build(&manifest, &BuildCache::from_env()) {
        Ok(c) => {
            eprintln!(
                "conform: {} {}",
                c.describe(),
                if c.cached {
                    "was cached".to_string()
                } else {
                    format!("built in {:.1} s", c.took.as_secs_f64())
                }
            );
            say!("{}", c.binary.display());
            0
        }
        Err(err) => {
            eprintln!("conform: {err}");
            EXIT_NOT_JUDGED
        }
    }
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
    let report::diff::Diff { changes, samples } = report::diff::compare(&old_report, &new_report);
    let name = |r: &serde_json::Value, k: &str| r.get(k).and_then(|v| v.as_str()).unwrap_or("?").to_string();
    say!(
        "{} {} -> {} {}: {} change(s)",
        name(&old_report, "candidate"),
        name(&old_report, "framework_version"),
        name(&new_report, "candidate"),
        name(&new_report, "framework_version"),
        changes.len()
    );
    for change in &changes {
        say!("  {change}");
    }
    // Samples of the candidate's own races: shown, never counted, never the exit code.
    if !samples.is_empty() {
        say!("varies between runs by nature: {} note(s)", samples.len());
        for sample in &samples {
            say!("  {sample}");
        }
    }
    if changes.is_empty() { 0 } else { EXIT_FAILED }
}
