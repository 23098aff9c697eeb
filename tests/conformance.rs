//! The conformance suite under `cargo test`: one named trial per (candidate x clause), each
//! compared with `fixtures/expected.toml`.
//!
//! A custom harness (libtest-mimic) because the trials are data: the registry's clauses times the
//! candidate directories under `fixtures/candidates/`. Trial names are `<candidate>::<clause>`,
//! so `cargo test -- GF-PORT` and nextest filters select by clause. Candidates are built once per
//! process (cached by source hash across processes). A candidate whose framework module is not
//! served here has its trials reported as *ignored*, with the exact module error printed once;
//! running them anyway (`--ignored`) fails them with that error, so nothing passes vacuously.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use harness::candidate::BuildCache;
use harness::service::Provider;
use harness::verdict::{ClauseResult, Verdict};
use libtest_mimic::{Arguments, Failed, Trial};
use scenarios::certify::{self, PrepareError};
use scenarios::services::Services;
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

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn load_expected() -> Result<ExpectedTable, String> {
    let path = root().join("fixtures/expected.toml");
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
            problems.push(format!("[{candidate}] is not a candidate under fixtures/candidates"));
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

fn main() {
    let args = Arguments::from_args();
    harness::reaper::install_signal_handler();
    let rt = Arc::new(tokio::runtime::Runtime::new().expect("tokio runtime"));
    let services = Arc::new(Services::new(Provider::Native).expect("services"));
    let cache = BuildCache::from_env();
    let expected = load_expected();
    let mut trials = Vec::new();
    let mut known: BTreeMap<String, Vec<&'static str>> = BTreeMap::new();
    let mut unavailable = Vec::new();

    for (candidate, framework) in common::load_candidates(&mut trials) {
        let name = candidate.manifest.name.clone();
        let clauses = scenarios::clauses_for(framework);
        known.insert(name.clone(), clauses.iter().map(|c| c.id).collect());
        // Listing (nextest does this first) must not build anything.
        let target = if args.list {
            None
        } else {
            Some(certify::build(candidate, framework, &cache))
        };
        for clause in clauses {
            let trial_name = format!("{name}::{}", clause.id);
            let want = expected
                .as_ref()
                .ok()
                .and_then(|e| e.get(&name))
                .and_then(|c| c.get(clause.id))
                .cloned();
            let trial = match &target {
                None => Trial::test(trial_name, || Ok(())),
                Some(Ok(target)) => {
                    let (rt, services, target) = (rt.clone(), services.clone(), target.clone());
                    Trial::test(trial_name, move || {
                        let result = rt.block_on(scenarios::run::run_clause(&clause, target, services));
                        compare(&result, want.as_ref())
                    })
                }
                Some(Err(PrepareError::Build(err))) if err.is_module_not_served() => {
                    let msg = err.to_string();
                    Trial::test(trial_name, move || Err(msg.clone().into())).with_ignored_flag(true)
                }
                Some(Err(err)) => {
                    let msg = err.to_string();
                    Trial::test(trial_name, move || Err(msg.clone().into()))
                }
            };
            trials.push(trial.with_kind(framework.name()));
        }
        if let Some(Err(PrepareError::Build(err))) = &target
            && err.is_module_not_served()
        {
            unavailable.push(err.to_string());
        }
    }
    trials.push(Trial::test("expected.toml::tidy", move || {
        let expected = expected.map_err(Failed::from)?;
        tidy(&expected, &known)
    }));

    for why in &unavailable {
        eprintln!(
            "\nconform: trials of this candidate are IGNORED, not passed:\n  {}\n",
            why.replace('\n', "\n  ")
        );
    }
    let conclusion = libtest_mimic::run(&args, trials);
    if let Ok(services) = Arc::try_unwrap(services) {
        rt.block_on(services.shutdown());
    }
    conclusion.exit();
}
