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
use engine::plan::{Plan, PlanSpec, Role, Subject};
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

/// One (subject, clause) trial of the plan: run the clause on the subject's target and compare
/// it with what `expected.toml` wants. The subject is built by the first of its trials that runs
/// (references were built before the trials, to know whether they are ignored); with nothing to
/// build (listing) a trial does nothing.
fn clause_trial(
    subject: &Arc<Subject>,
    clause: Clause,
    want: Option<Expected>,
    rt: &Arc<tokio::runtime::Runtime>,
    services: &Arc<Services>,
    (kind, spans): (&'static str, &Arc<Spans>),
    listing: bool,
) -> Trial {
    let name = format!("{}::{}", subject.name, clause.id);
    if listing {
        return Trial::test(name, || Ok(()));
    }
    let (subject, rt, services, spans) = (subject.clone(), rt.clone(), services.clone(), spans.clone());
    Trial::test(name, move || {
        let target = subject.prepare().map_err(|e| support::unavailable(&e).message)?;
        let started = std::time::Instant::now();
        let result = rt.block_on(subject.run(target, &clause, services));
        spans.record(kind, started);
        compare(&result, want.as_ref())
    })
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

/// The trials of one plan, with what building them learns: the clauses each candidate may
/// name in `expected.toml`, and which frameworks' modules are not served here.
struct Suite<'a> {
    list: bool,
    expected: Option<&'a ExpectedTable>,
    catalogue: &'a [Clause],
    rt: Arc<tokio::runtime::Runtime>,
    services: Arc<Services>,
    spans: Arc<Spans>,
    trials: Vec<Trial>,
    known: BTreeMap<String, Vec<&'static str>>,
    /// A framework whose module is not served here: its references' and mutants' trials are
    /// ignored (failed under CI), with the module error said once.
    not_served: BTreeMap<&'static str, support::Unavailable>,
}

impl Suite<'_> {
    /// One trial per clause of the reference `subject`, built first (unless listing) so that a
    /// module not served here ignores them.
    fn reference(&mut self, subject: &Arc<Subject>) {
        let framework = subject.framework;
        self.known
            .insert(subject.name.clone(), subject.clauses.iter().map(|c| c.id).collect());
        let why = (!self.list)
            .then(|| subject.prepare().err())
            .flatten()
            .map(|e| support::unavailable(&e));
        if let Some(why) = &why
            && why.ignored
        {
            self.not_served.insert(framework.name(), why.clone());
        }
        for clause in &subject.clauses {
            let want = self
                .expected
                .and_then(|e| e.get(&subject.name))
                .and_then(|c| c.get(clause.id))
                .cloned();
            let trial = self.clause_trial(subject, clause, want, "reference");
            self.trials.push(
                match &why {
                    Some(why) if why.ignored => trial.with_ignored_flag(true),
                    _ => trial,
                }
                .with_kind(framework.name()),
            );
        }
    }

    /// One trial per clause of the mutant `subject` (the areas of the clauses that must catch
    /// it): a target clause must come out `fail`; every other clause of those areas must keep the
    /// reference's verdict, so a mutant breaks one thing, not everything. Plus a failing trial
    /// when `expected.toml` names no target or a target outside its areas.
    fn mutant(&mut self, subject: &Arc<Subject>) {
        let Role::Mutant { areas, base, .. } = &subject.role else {
            return;
        };
        let targets = self
            .expected
            .and_then(|e| e.get(&subject.name))
            .cloned()
            .unwrap_or_default();
        let base_verdicts = self.expected.and_then(|e| e.get(base)).cloned().unwrap_or_default();
        let ids = self
            .catalogue
            .iter()
            .filter(|c| c.framework() == subject.framework)
            .map(|c| c.id);
        self.known.insert(subject.name.clone(), ids.collect());
        let outside: Vec<&String> = targets
            .keys()
            .filter(|id| !subject.clauses.iter().any(|c| c.id == id.as_str()))
            .collect();
        if !outside.is_empty() {
            let msg = format!(
                "{}: {outside:?} must catch it but lie outside its areas {areas:?}",
                subject.name
            );
            self.failing(format!("{}::areas", subject.name), msg);
        }
        if targets.is_empty() {
            let name = &subject.name;
            let msg =
                format!("mutant {name} has no section in fixtures/expected.toml naming the clauses that must catch it");
            self.failing(format!("{name}::targets"), msg);
        }
        let ignored = self.not_served.get(subject.framework.name()).cloned();
        for clause in &subject.clauses {
            let want = targets.get(clause.id).or_else(|| base_verdicts.get(clause.id)).cloned();
            let trial = match &ignored {
                // A mutant of a framework whose module is not served here is ignored like its
                // reference (and fails under CI, like it).
                Some(why) => {
                    let msg = why.message.clone();
                    Trial::test(format!("{}::{}", subject.name, clause.id), move || {
                        Err(msg.clone().into())
                    })
                    .with_ignored_flag(why.ignored)
                }
                None => self.clause_trial(subject, clause, want, "mutant"),
            };
            self.trials.push(trial.with_kind("mutant"));
        }
    }

    fn clause_trial(
        &self,
        subject: &Arc<Subject>,
        clause: &Clause,
        want: Option<Expected>,
        kind: &'static str,
    ) -> Trial {
        clause_trial(
            subject,
            clause.clone(),
            want,
            &self.rt,
            &self.services,
            (kind, &self.spans),
            self.list,
        )
    }

    /// A trial that fails with `msg` (the suite's own data is wrong).
    fn failing(&mut self, name: String, msg: String) {
        self.trials.push(Trial::test(name, move || Err(msg.clone().into())));
    }
}

fn main() {
    let mut args = Arguments::from_args();
    args.test_threads.get_or_insert_with(default_threads);
    harness::reaper::install_signal_handler();
    let rt = Arc::new(tokio::runtime::Runtime::new().expect("tokio runtime"));
    let services = Arc::new(Services::new(Provider::Native).expect("services"));
    let cache = BuildCache::from_env();
    let expected = load_expected();
    let catalogue = catalogue::registry();
    let mut trials = Vec::new();
    let candidates = support::load_candidates(&mut trials);
    // Every reference candidate, and every mutant of one, each graded on its clauses: the plan
    // `conform certify --mutants fixtures/mutants` runs, one trial per (subject, clause).
    let mutants_dir = support::root().join("fixtures/mutants");
    let spec = |mutants| PlanSpec {
        candidates: candidates.clone(),
        catalogue: &catalogue,
        select: None,
        mutants,
        cache: &cache,
    };
    let plan = Plan::new(spec(Some(&mutants_dir))).unwrap_or_else(|msg| {
        trials.push(Trial::test("fixtures/mutants::load", move || Err(msg.clone().into())));
        Plan::new(spec(None)).expect("a plan without mutants loads nothing")
    });
    let spans = Arc::new(Spans::default());
    let mut suite = Suite {
        list: args.list,
        expected: expected.as_ref().ok(),
        catalogue: &catalogue,
        rt: rt.clone(),
        services: services.clone(),
        spans: spans.clone(),
        trials,
        known: BTreeMap::new(),
        not_served: BTreeMap::new(),
    };
    for subject in plan.references() {
        suite.reference(subject);
    }
    for subject in plan.subjects.iter().filter(|s| matches!(s.role, Role::Mutant { .. })) {
        suite.mutant(subject);
    }
    let Suite {
        mut trials,
        known,
        not_served,
        ..
    } = suite;
    let unavailable: Vec<String> = not_served.values().map(|why| why.message.clone()).collect();
    trials.push(Trial::test("expected.toml::tidy", move || {
        let expected = expected.map_err(Failed::from)?;
        tidy(&expected, &known)
    }));

    support::announce_ignored(&unavailable);
    let conclusion = libtest_mimic::run(&args, trials);
    spans.print();
    drop(plan);
    if let Ok(services) = Arc::try_unwrap(services) {
        rt.block_on(services.shutdown());
    }
    conclusion.exit();
}
