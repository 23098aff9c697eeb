//! Verdicts: what a clause came to on one candidate, and why.
//!
//! The one distinction that must survive every layer, up to the JUnit file, is between a
//! candidate that broke its promise ([`Verdict::Fail`]) and a harness that could not judge
//! ([`Verdict::Error`]: Postgres never came up, the fixture did not build). Reporting one as the
//! other either blames a framework for our infrastructure or hides a real violation. A scenario
//! therefore ends in a [`Failure`] that is explicitly one or the other, and harness-side errors
//! convert into [`Failure::Harness`] through `?`, never into a violation.

use std::time::Duration;

use serde::Serialize;

use crate::evidence::Evidence;

/// How much a clause matters for certification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// A documented promise; certification requires it to pass.
    Must,
    /// A documented recommendation or secondary promise; graded, reported, not required.
    Should,
    /// Observed behaviour the docs are silent on ([CODE] lines): recorded, never graded.
    Info,
}

impl Level {
    /// The lowercase name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            Level::Must => "must",
            Level::Should => "should",
            Level::Info => "info",
        }
    }
}

/// A broken promise: what the documentation says, what the candidate did.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Violation {
    /// What the promise requires, in words.
    pub expected: String,
    /// What was observed instead.
    pub actual: String,
}

/// How a scenario can end other than passing.
#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    /// The candidate broke the promise.
    Violation(Violation),
    /// The harness could not judge.
    Harness(String),
}

impl Failure {
    /// A violation: `expected` versus `actual`.
    pub fn violation(expected: impl Into<String>, actual: impl Into<String>) -> Failure {
        Failure::Violation(Violation {
            expected: expected.into(),
            actual: actual.into(),
        })
    }

    /// A harness error with a message naming what failed.
    pub fn harness(message: impl Into<String>) -> Failure {
        Failure::Harness(message.into())
    }
}

/// Harness-side errors become [`Failure::Harness`] through `?`. Only foreign errors are converted
/// here: each of the harness's own error types (a process's, a probe's, a service's) says so next
/// to its definition, so that this module, a leaf (see [`crate::record`]), names no service.
macro_rules! harness_failure_from {
    ($($t:ty),* $(,)?) => {$(
        impl From<$t> for Failure {
            fn from(err: $t) -> Failure {
                Failure::Harness(err.to_string())
            }
        }
    )*};
}
harness_failure_from!(std::io::Error, sqlx::Error);

/// The verdict on one clause for one candidate.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "lowercase", tag = "verdict")]
pub enum Verdict {
    /// The promise held.
    Pass,
    /// The candidate broke the promise.
    Fail(Violation),
    /// The harness could not judge.
    Error {
        /// What went wrong, naming the thing that failed.
        message: String,
    },
    /// Not run, with the reason (never a pass in certification).
    Skip {
        /// Why it was not run.
        reason: String,
    },
    /// An `info` clause: behaviour recorded, not graded.
    Observed,
}

impl Verdict {
    /// The lowercase name used in reports and `expected.toml`.
    pub fn name(&self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail(_) => "fail",
            Verdict::Error { .. } => "error",
            Verdict::Skip { .. } => "skip",
            Verdict::Observed => "observed",
        }
    }

    /// The verdict a scenario's outcome amounts to at `level`.
    pub fn from_outcome(level: Level, outcome: Result<(), Failure>) -> Verdict {
        match (level, outcome) {
            (_, Err(Failure::Harness(message))) => Verdict::Error { message },
            (Level::Info, _) => Verdict::Observed,
            (_, Ok(())) => Verdict::Pass,
            (_, Err(Failure::Violation(v))) => Verdict::Fail(v),
        }
    }
}

/// One row of a report: a clause judged on a candidate.
#[derive(Debug, Clone, Serialize)]
pub struct ClauseResult {
    /// Clause ID, e.g. `GF-PORT-1`.
    pub clause: String,
    /// Must, should or info.
    pub level: Level,
    /// Contract area, e.g. `PORT`.
    pub area: String,
    /// The promise in one line.
    pub promise: String,
    /// Where the framework documents it.
    pub doc: String,
    /// A link to that page at the pinned framework version (empty when unknown).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub doc_url: String,
    /// The verdict (flattened: `verdict`, and `expected`/`actual`, `message` or `reason`).
    #[serde(flatten)]
    pub verdict: Verdict,
    /// How long the scenario took.
    #[serde(rename = "duration_ms", with = "crate::record::millis")]
    pub duration: Duration,
    /// What was observed.
    pub evidence: Evidence,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn harness_errors_are_never_failures() {
        let v = Verdict::from_outcome(Level::Must, Err(Failure::harness("postgres did not start")));
        assert_eq!(v.name(), "error");
        let v = Verdict::from_outcome(Level::Info, Err(Failure::harness("x")));
        assert_eq!(v.name(), "error", "an info clause that could not run is still an error");
        let v = Verdict::from_outcome(Level::Info, Err(Failure::violation("a", "b")));
        assert_eq!(v.name(), "observed");
        let v = Verdict::from_outcome(Level::Should, Err(Failure::violation("a", "b")));
        assert_eq!(v.name(), "fail");
    }

    #[test]
    fn serializes_flat() {
        let v = serde_json::to_value(Verdict::Fail(Violation {
            expected: "a".into(),
            actual: "b".into(),
        }))
        .unwrap();
        assert_eq!(
            v,
            serde_json::json!({"verdict": "fail", "expected": "a", "actual": "b"})
        );
    }
}
