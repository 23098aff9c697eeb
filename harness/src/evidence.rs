//! What a scenario saw, kept so that a verdict can be checked by a human.
//!
//! Evidence is collected while a scenario runs, not composed at the end, so a scenario that fails
//! half-way still carries everything it observed up to that point: the processes it launched
//! (command, redacted environment, how they ended, the tail of their output), the HTTP exchanges
//! it made, and named observations ("listening on [::]:41234").

use serde::Serialize;

use crate::probe::Exchange;
use crate::process::LaunchRecord;
use crate::redact;
use crate::running::Exit;

/// Lines of candidate output kept per launch in a report.
pub const OUTPUT_TAIL_LINES: usize = 40;

/// One named observation.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Note {
    /// What was observed.
    pub key: String,
    /// The observed value, as text.
    pub value: String,
}

/// One candidate process a scenario launched.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LaunchEvidence {
    /// Command line, environment and working directory.
    #[serde(flatten)]
    pub launch: LaunchRecord,
    /// How it ended, if it did while the scenario watched.
    pub exit: Option<Exit>,
    /// The last lines of its output (`out:` / `err:` prefixed), secrets redacted.
    pub output_tail: Vec<String>,
}

/// Everything a scenario observed.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Evidence {
    /// Named observations, in the order made.
    pub notes: Vec<Note>,
    /// HTTP exchanges, in the order made.
    pub exchanges: Vec<Exchange>,
    /// Processes launched, in launch order.
    pub launches: Vec<LaunchEvidence>,
}

impl Evidence {
    /// Record an observation (redacted).
    pub fn note(&mut self, key: impl Into<String>, value: impl std::fmt::Display) {
        self.notes.push(Note {
            key: key.into(),
            value: redact::text(&value.to_string()),
        });
    }

    /// True when nothing at all was recorded.
    pub fn is_empty(&self) -> bool {
        self.notes.is_empty() && self.exchanges.is_empty() && self.launches.is_empty()
    }
}

/// Serialize a `Duration` as whole milliseconds.
pub mod millis {
    use serde::Serializer;
    use std::time::Duration;

    /// Serialize as an integer number of milliseconds.
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }
}
