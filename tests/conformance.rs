//! The conformance suite under `cargo test`: one named trial per (candidate x clause), each
//! compared with `fixtures/expected.toml`.
//!
//! A custom harness (libtest-mimic) because the trials are data: the registry's clauses times the
//! candidate directories under `fixtures/candidates/`. Trial names are `<candidate>::<clause>`,
//! so `cargo test -- GF-PORT` and nextest filters select by clause. Candidates are built once per
//! process (cached by source hash across processes). A candidate whose framework module is not
//! served here has its trials reported as *ignored*, with the exact module error printed once;
//! running them anyway (`--ignored`) fails them with that error, so nothing passes vacuously.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;

use engine::clause::Clause;
use engine::cx::Target;
use engine::services::Services;
use harness::candidate::BuildCache;
use harness::service::Provider;
use harness::verdict::{ClauseResult, Verdict};
use libtest_mimic::{Arguments, Failed, Trial};
use serde::Deserialize;

/// What `expected.toml` says about one (candidate, clause).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum Expected {
    /// Just the verdict (`"pass"`, `"observed"`).
    Verdict(String),
    /// A verdict with its reason (required for `fail`).
    WithReason { verdict: String, reason: String },
}

impl Expected {
    fn verdict(&self) -> &str {
        match self {
            Expected::Verdict(v) | Expected::WithReason { verdict: v, .. } => v,
        }
    }
}

type ExpectedTable = BTreeMap<String, BTreeMap<String, Expected>>;

fn load_expected() -> Result<ExpectedTable, String> {
    let path = support::root().join("fixtures/expected.toml");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

fn compare(result: &ClauseResult, expected: Option<&Expected>) -> Result<(), Failed> {
    let actual = result.verdict.name();
    let Some(expected) = expected else {
        return Err(format!(
            "no expected verdict for {} in fixtures/expected.toml; this run gave `{actual}`{}",
            result.clause,
            detail(&result.verdict)
        )
        .into());
    };
    if expected.verdict() == actual {
        return Ok(());
    }
    let why = match expected {
        Expected::WithReason { reason, .. } => format!(" (expected because: {reason})"),
        Expected::Verdict(_) => String::new(),
    };
    Err(format!(
        "expected `{}`{why}, got `{actual}`{}",
        expected.verdict(),
        detail(&result.verdict)
    )
    .into())
}

fn detail(v: &Verdict) -> String {
    match v {
        Verdict::Fail(v) => format!("\n  expected: {}\n  actual:   {}", v.expected, v.actual),
        Verdict::Error { message } => format!("\n  harness error: {message}"),
        Verdict::Skip { reason } => format!("\n  skipped: {reason}"),
        _ => String::new(),
    }
}

/// Every `fail` needs a reason, and every entry must name a known candidate and clause.
fn tidy(expected: &ExpectedTable, known: &BTreeMap<String, Vec<&'static str>>) -> Result<(), Failed> {
    let mut problems = Vec::new();
    for (candidate, clauses) in expected {
        let Some(ids) = known.get(candidate) else {
            problems.push(format!(
                "[{candidate}] is neither a candidate under fixtures/candidates nor a mutant under fixtures/mutants"
            ));
            continue;
        };
        for (clause, entry) in clauses {
            if !ids.contains(&clause.as_str()) {
                problems.push(format!("[{candidate}] {clause} is not a clause of its framework"));
            }
            match entry {
                Expected::Verdict(v) if v == "fail" => {
                    problems.push(format!("[{candidate}] {clause} = \"fail\" needs a one-line reason: {{ verdict = \"fail\", reason = \"...\" }}"))
                }
                Expected::WithReason { reason, .. } if reason.trim().is_empty() || reason.contains('\n') => {
                    problems.push(format!("[{candidate}] {clause}: the reason must be one non-empty line"))
                }
                _ => {}
            }
            if !["pass", "fail", "observed", "error", "skip"].contains(&entry.verdict()) {
                problems.push(format!("[{candidate}] {clause}: unknown verdict {:?}", entry.verdict()));
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n").into())
    }
}

/// What a trial runs on: a target built up front (the reference candidates), one built by the
/// first of its trials that runs (the mutants, see [`LazyBuild`]), or the reason there is none.
enum Built {
    /// Listing (nextest does this first): nothing is built and the trial does nothing.
    Listing,
    /// Built, or the reason it could not be (failed, or ignored when the module is not served).
    Now(Result<Arc<Target>, support::Unavailable>),
    /// Built on first use.
    Lazy(Arc<LazyBuild>),
}

/// A mutant's build, made by the first of its trials that runs and shared by the rest: a
/// filtered run builds only the mutants it grades, and the builds of one mutant overlap with the
/// other trials' waiting on their candidates instead of all running before the first trial.
struct LazyBuild {
    mutant: engine::mutant::Mutant,
    cache: BuildCache,
    built: std::sync::OnceLock<Result<Arc<Target>, String>>,
}

impl LazyBuild {
    fn get(&self) -> Result<Arc<Target>, String> {
        self.built
            .get_or_init(|| {
                self.mutant
                    .build(&self.cache)
                    .map_err(|e| support::unavailable(e).message)
            })
            .clone()
    }
}

/// Wall time per kind of trial (the reference candidates, the mutants): from the first trial of
/// that kind to start to the last to end, printed at the end so a CI log says where the
/// conformance binary's time went (`cargo xtask test` times whole binaries only).
#[derive(Default)]
struct Spans(std::sync::Mutex<BTreeMap<&'static str, (std::time::Instant, std::time::Instant)>>);

impl Spans {
    fn record(&self, kind: &'static str, started: std::time::Instant) {
        let now = std::time::Instant::now();
        let mut spans = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let span = spans.entry(kind).or_insert((started, now));
        span.0 = span.0.min(started);
        span.1 = span.1.max(now);
    }

    fn print(&self) {
        let spans = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let parts: Vec<String> = spans
            .iter()
            .map(|(kind, (a, b))| format!("{kind} trials {:.1} s", (*b - *a).as_secs_f64()))
            .collect();
        if !parts.is_empty() {
            eprintln!("conformance: wall time {}", parts.join(", "));
        }
    }
}

/// One (candidate, clause) trial: run the clause on the built target and compare it with what
/// `expected.toml` wants; with nothing built (listing) it does nothing; a target that could not
/// be built fails it, or marks it ignored when the framework module is not served.
fn clause_trial(
    name: String,
    clause: Clause,
    built: &Built,
    want: Option<Expected>,
    rt: &Arc<tokio::runtime::Runtime>,
    services: &Arc<Services>,
    (kind, spans): (&'static str, &Arc<Spans>),
) -> Trial {
    let (rt, services, spans) = (rt.clone(), services.clone(), spans.clone());
    let run = move |target: Arc<Target>| {
        let started = std::time::Instant::now();
        let result = rt.block_on(engine::run::run_clause(&clause, target, services));
        spans.record(kind, started);
        compare(&result, want.as_ref())
    };
    match built {
        Built::Listing => Trial::test(name, || Ok(())),
        Built::Now(Ok(target)) => {
            let target = target.clone();
            Trial::test(name, move || run(target))
        }
        Built::Now(Err(why)) => {
            let msg = why.message.clone();
            Trial::test(name, move || Err(msg.clone().into())).with_ignored_flag(why.ignored)
        }
        Built::Lazy(lazy) => {
            let lazy = lazy.clone();
            Trial::test(name, move || run(lazy.get()?))
        }
    }
}

/// How many trials run at once when neither `--test-threads` nor `CONFORM_TEST_THREADS` says:
/// twice the cores. A trial spends most of its time waiting on its candidate (boots, drains,
/// probes), in its own database, on its own ports and in its own temp dir, so the cores are not
/// what limits it; measured in the README (Tests).
fn default_threads() -> usize {
    if let Some(n) = std::env::var("CONFORM_TEST_THREADS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|n| *n > 0)
    {
        return n;
    }
    std::thread::available_parallelism().map_or(2, |n| n.get()) * 2
}

fn main() {
    let mut args = Arguments::from_args();
    args.test_threads.get_or_insert_with(default_threads);
    harness::reaper::install_signal_handler();
    let rt = Arc::new(tokio::runtime::Runtime::new().expect("tokio runtime"));
    let services = Arc::new(Services::new(Provider::Native).expect("services"));
    let cache = BuildCache::from_env();
    let expected = load_expected();
    let mut trials = Vec::new();
    let mut known: BTreeMap<String, Vec<&'static str>> = BTreeMap::new();
    let mut unavailable = Vec::new();
    let spans = Arc::new(Spans::default());
    let mut not_served: BTreeMap<&str, support::Unavailable> = BTreeMap::new();

    for dir in support::candidate_dirs() {
        let prepared = match support::prepare(&dir, &cache, args.list) {
            Ok(p) => p,
            Err(msg) => {
                trials.push(Trial::test(format!("{}::manifest", dir.display()), move || {
                    Err(msg.into())
                }));
                continue;
            }
        };
        let (name, framework) = (prepared.name, prepared.framework);
        let clauses = catalogue::clauses_for(framework);
        known.insert(name.clone(), clauses.iter().map(|c| c.id).collect());
        for clause in clauses {
            let trial_name = format!("{name}::{}", clause.id);
            let want = expected
                .as_ref()
                .ok()
                .and_then(|e| e.get(&name))
                .and_then(|c| c.get(clause.id))
                .cloned();
            let built = prepared.target.clone().map_or(Built::Listing, Built::Now);
            let trial = clause_trial(trial_name, clause, &built, want, &rt, &services, ("reference", &spans));
            trials.push(trial.with_kind(framework.name()));
        }
        if let Some(Err(why)) = &prepared.target
            && why.ignored
        {
            unavailable.push(why.message.clone());
            not_served.insert(framework.name(), why.clone());
        }
    }
    // Mutants: each graded on the areas of the clauses that must catch it. A target clause must
    // come out `fail`; every other clause of those areas must keep the reference's verdict, so a
    // mutant breaks one thing, not everything.
    let mutants = engine::mutant::load_all(
        &support::root().join("fixtures/mutants"),
        &support::root().join("fixtures/candidates"),
    );
    let mutants = match mutants {
        Ok(m) => m,
        Err(msg) => {
            trials.push(Trial::test("fixtures/mutants::load", move || Err(msg.clone().into())));
            Vec::new()
        }
    };
    for mutant in mutants {
        let table = expected.as_ref().ok();
        let targets = table.and_then(|e| e.get(&mutant.name)).cloned().unwrap_or_default();
        let base = table
            .and_then(|e| e.get(&mutant.base_name))
            .cloned()
            .unwrap_or_default();
        let clauses = catalogue::clauses_for(mutant.framework);
        known.insert(mutant.name.clone(), clauses.iter().map(|c| c.id).collect());
        let graded = mutant.clauses(&catalogue::registry());
        let outside: Vec<&String> = targets
            .keys()
            .filter(|id| !graded.iter().any(|c| c.id == id.as_str()))
            .collect();
        if !outside.is_empty() {
            let msg = format!(
                "{}: {outside:?} must catch it but lie outside its areas {:?}",
                mutant.name, mutant.areas
            );
            trials.push(Trial::test(format!("{}::areas", mutant.name), move || {
                Err(msg.clone().into())
            }));
        }
        // A mutant of a framework whose module is not served here is ignored like its reference;
        // otherwise it is built by its first trial.
        let built = match not_served.get(mutant.framework.name()) {
            _ if args.list => Built::Listing,
            Some(why) => Built::Now(Err(why.clone())),
            None => Built::Lazy(Arc::new(LazyBuild {
                mutant: mutant.clone(),
                cache: cache.clone(),
                built: std::sync::OnceLock::new(),
            })),
        };
        if targets.is_empty() {
            let name = mutant.name.clone();
            trials.push(Trial::test(format!("{name}::targets"), move || {
                Err(format!(
                    "mutant {name} has no section in fixtures/expected.toml naming the clauses that must catch it"
                )
                .into())
            }));
        }
        for clause in graded {
            let trial_name = format!("{}::{}", mutant.name, clause.id);
            let want = targets.get(clause.id).or_else(|| base.get(clause.id)).cloned();
            let trial = clause_trial(trial_name, clause, &built, want, &rt, &services, ("mutant", &spans));
            trials.push(trial.with_kind("mutant"));
        }
    }
    trials.push(Trial::test("expected.toml::tidy", move || {
        let expected = expected.map_err(Failed::from)?;
        tidy(&expected, &known)
    }));

    support::announce_ignored(&unavailable);
    let conclusion = libtest_mimic::run(&args, trials);
    spans.print();
    if let Ok(services) = Arc::try_unwrap(services) {
        rt.block_on(services.shutdown());
    }
    conclusion.exit();
}
