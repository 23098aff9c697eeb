//! Tracing parity: every clause that asks for an OTLP endpoint gets the same verdict whether the
//! candidate exports straight to the in-process receiver or through the real OpenTelemetry
//! Collector (`conform certify --collector real`).
//!
//! A collector in the path must be transparent to grading: if a verdict changed, either the
//! collector alters what the candidate sent (and the clause would grade the collector, not the
//! candidate) or a scenario depends on the hop in a way it should not. One trial per
//! (candidate x clause), named `parity::<candidate>::<clause>`, runs the clause twice on the same
//! build, once per path, and compares the verdicts. The clauses are the TRACE and TRC areas plus
//! any other clause that needs OTLP (the flush-at-shutdown clauses).
//!
//! Like `conformance.rs`, a candidate whose framework module is not served here has its trials
//! *ignored*, with the exact module error printed once; `--ignored` fails them with that error.

mod support;

use std::sync::Arc;

use engine::clause::{Clause, Service};
use engine::services::Services;
use harness::candidate::BuildCache;
use harness::service::Provider;
use harness::service::collector::CollectorMode;
use harness::verdict::{ClauseResult, Verdict};
use libtest_mimic::{Arguments, Failed, Trial};

/// The clauses whose scenarios ask for an OTLP endpoint.
fn traced(clause: &Clause) -> bool {
    ["TRACE", "TRC"].contains(&clause.area()) || clause.needs.services.contains(&Service::Otlp)
}

fn detail(v: &Verdict) -> String {
    match v {
        Verdict::Fail(v) => format!("fail\n    expected: {}\n    actual:   {}", v.expected, v.actual),
        Verdict::Error { message } => format!("error: {message}"),
        Verdict::Skip { reason } => format!("skip: {reason}"),
        other => other.name().to_string(),
    }
}

fn compare(direct: &ClauseResult, through: &ClauseResult) -> Result<(), Failed> {
    if direct.verdict.name() == through.verdict.name() {
        return Ok(());
    }
    Err(format!(
        "{}: the verdict changes when the collector is in the path\n  direct:          {}\n  through collector: {}",
        direct.clause,
        detail(&direct.verdict),
        detail(&through.verdict)
    )
    .into())
}

fn main() {
    let args = Arguments::from_args();
    harness::reaper::install_signal_handler();
    let rt = Arc::new(tokio::runtime::Runtime::new().expect("tokio runtime"));
    let direct = Arc::new(Services::new(Provider::Native).expect("services"));
    let through = Arc::new(Services::with_collector(Provider::Native, CollectorMode::Real).expect("services"));
    let cache = BuildCache::from_env();
    let mut trials = Vec::new();
    let mut unavailable = Vec::new();

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
        for clause in prepared.subject.clauses.iter().filter(|c| traced(c)).cloned() {
            let trial_name = format!("parity::{name}::{}", clause.id);
            let trial = match &prepared.target {
                None => Trial::test(trial_name, || Ok(())),
                Some(Ok(target)) => {
                    let (rt, direct, through, target) = (rt.clone(), direct.clone(), through.clone(), target.clone());
                    let subject = prepared.subject.clone();
                    Trial::test(trial_name, move || {
                        let a = rt.block_on(subject.run(target.clone(), &clause, direct));
                        let b = rt.block_on(subject.run(target, &clause, through));
                        compare(&a, &b)
                    })
                }
                Some(Err(why)) => {
                    let msg = why.message.clone();
                    Trial::test(trial_name, move || Err(msg.clone().into())).with_ignored_flag(why.ignored)
                }
            };
            trials.push(trial.with_kind(framework.name()));
        }
        if let Some(Err(why)) = &prepared.target
            && why.ignored
        {
            unavailable.push(why.message.clone());
        }
    }
    support::announce_ignored(&unavailable);
    let conclusion = libtest_mimic::run(&args, trials);
    for services in [direct, through] {
        if let Ok(services) = Arc::try_unwrap(services) {
            rt.block_on(services.shutdown());
        }
    }
    conclusion.exit();
}
