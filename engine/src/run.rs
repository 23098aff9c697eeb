//! Running clauses: one scenario per (candidate, clause), isolated, bounded, and never allowed to
//! turn a panic or a hang into anything but an `error` verdict.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{FutureExt, StreamExt};
use harness::evidence::Evidence;
use harness::verdict::{ClauseResult, Failure, Verdict};

use crate::clause::Clause;
use crate::cx::{Cx, Target};
use crate::services::Services;

/// Held for reading by every running clause and for writing by a clause that must run alone
/// ([`Needs::alone`](crate::clause::Needs)), across every run in the process: the CLI's and the
/// test harness's alike. Tokio's lock is fair, so an alone clause waits only for those already
/// running, and none starts beside it.
static ALONE: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

/// Run one clause on one candidate.
pub async fn run_clause(clause: &Clause, target: Arc<Target>, services: Arc<Services>) -> ClauseResult {
    let missing = clause.missing_knobs(&target.candidate.manifest.knobs);
    if !missing.is_empty() {
        let keys: Vec<String> = missing.iter().map(|k| format!("`{}`", k.key())).collect();
        let message = format!(
            "candidate.toml has no {} knob{}: set it under [knobs] to grade this clause",
            keys.join(", "),
            if keys.len() == 1 { "" } else { "s" }
        );
        let verdict = Verdict::from_outcome(clause.level, Err(Failure::harness(message)));
        return clause.result(verdict, Duration::ZERO, Evidence::default());
    }
    let (_shared, _alone);
    if clause.needs.alone {
        _alone = ALONE.write().await;
    } else {
        _shared = ALONE.read().await;
    }
    let started = Instant::now();
    let ceiling = clause.needs.ceiling;
    let (outcome, evidence) = match Cx::new(target, services, &clause.needs) {
        Ok(mut cx) => {
            let scenario = AssertUnwindSafe((clause.check)(&mut cx)).catch_unwind();
            let outcome = match tokio::time::timeout(ceiling, scenario).await {
                Ok(Ok(outcome)) => outcome,
                Ok(Err(panic)) => Err(Failure::harness(format!(
                    "the scenario panicked: {}",
                    panic_text(&panic)
                ))),
                Err(_) => Err(Failure::harness(format!(
                    "the scenario exceeded its {ceiling:?} ceiling"
                ))),
            };
            (outcome, cx.finish())
        }
        Err(failure) => (Err(failure), Evidence::default()),
    };
    // A scenario still running when the runner was interrupted saw its candidate killed by the
    // reaper: whatever it concluded is not the candidate's doing.
    let outcome = match outcome {
        Err(_) if harness::reaper::interrupted() => Err(Failure::harness(
            "interrupted: the run received a signal and stopped the candidate before this clause finished",
        )),
        other => other,
    };
    let verdict = Verdict::from_outcome(clause.level, outcome);
    clause.result(verdict, started.elapsed(), evidence)
}

/// Told as clauses start and finish, for progress output. Called from the task running the
/// clauses, never concurrently.
pub trait Observer {
    /// `clause` started.
    fn started(&self, _clause: &Clause) {}
    /// A clause finished with `result`.
    fn finished(&self, result: &ClauseResult);
}

/// Run `clauses` on `target`, `parallel` at a time, results in the clauses' order.
pub async fn run_clauses(
    clauses: &[Clause],
    target: Arc<Target>,
    services: Arc<Services>,
    parallel: usize,
    observer: &dyn Observer,
) -> Vec<ClauseResult> {
    let mut results: Vec<(usize, ClauseResult)> = futures::stream::iter(clauses.iter().enumerate())
        .map(|(i, clause)| {
            let target = target.clone();
            let services = services.clone();
            observer.started(clause);
            async move { (i, run_clause(clause, target, services).await) }
        })
        .buffer_unordered(parallel.max(1))
        .inspect(|(_, r)| observer.finished(r))
        .collect()
        .await;
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "(non-string panic payload)".into())
}
