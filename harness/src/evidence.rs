//! What a scenario saw, kept so that a verdict can be checked by a human.
//!
//! Evidence is collected while a scenario runs, not composed at the end, so a scenario that fails
//! half-way still carries everything it observed up to that point: the processes it launched
//! (command, redacted environment, how they ended, the tail of their output), the HTTP exchanges
//! it made, and named observations ("listening on [::]:41234").
//!
//! A leaf (see [`crate::record`]): it names records, never the machinery that made them.

use serde::Serialize;

use crate::record::{Exchange, Exit, LaunchRecord};
use crate::redact;

/// Serialize a `Duration` as whole milliseconds (kept at this path for the records that name it).
pub use crate::record::millis;

/// Lines of candidate output kept per launch in a report.
pub const OUTPUT_TAIL_LINES: usize = 40;

/// One named observation.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Note {
    /// What was observed.
    pub key: String,
    /// The observed value, as text.
    pub value: String,
    /// True when the value is one sample of a race the candidate really has (which of several
    /// runs missed a log line, whether a request cut by a shutdown got 500 or 408): it may differ
    /// on the next run of the same binary, so `conform diff` reports it apart from behaviour
    /// changes. Written to JSON only when true; a report without it reads as `false`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub sample: bool,
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

impl LaunchEvidence {
    /// How the launch ended, in words: `exit status 1 after 12 ms`, or that the harness stopped it.
    pub fn ending(&self) -> String {
        match &self.exit {
            Some(x) => format!(
                "{} after {} ms{}",
                x.status,
                x.after.as_millis(),
                if x.killed_after_grace {
                    " (killed after grace)"
                } else {
                    ""
                }
            ),
            None => "stopped by the harness".into(),
        }
    }

    /// The environment as `K=v K=v`, secrets already redacted when it was recorded.
    pub fn env_line(&self) -> String {
        let env: Vec<String> = self.launch.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        env.join(" ")
    }
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
            sample: false,
        });
    }

    /// Record an observation that is one sample of the candidate's own nondeterminism (redacted):
    /// see [`Note::sample`]. Use it only where the same binary can legitimately answer otherwise
    /// on the next run; everything that should be stable goes through [`Evidence::note`].
    pub fn note_sample(&mut self, key: impl Into<String>, value: impl std::fmt::Display) {
        self.notes.push(Note {
            key: key.into(),
            value: redact::text(&value.to_string()),
            sample: true,
        });
    }

    /// Everything recorded, as plain text: notes, HTTP exchanges, then each launch with its
    /// command, how it ended, its environment and the tail of its output (all already redacted).
    pub fn as_text(&self) -> String {
        let mut out = String::new();
        for n in &self.notes {
            let sample = if n.sample { " (sample)" } else { "" };
            out.push_str(&format!("{}{sample}: {}\n", n.key, n.value));
        }
        for x in &self.exchanges {
            out.push_str(&x.summary());
            out.push('\n');
        }
        for l in &self.launches {
            out.push_str(&format!("$ {}  # {}\n", l.launch.command.join(" "), l.ending()));
            out.push_str(&format!("env: {}\n", l.env_line()));
            for line in &l.output_tail {
                out.push_str(line);
                out.push('\n');
            }
        }
        out
    }

    /// True when nothing at all was recorded.
    pub fn is_empty(&self) -> bool {
        self.notes.is_empty() && self.exchanges.is_empty() && self.launches.is_empty()
    }
}
