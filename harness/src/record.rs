//! Plain records of what happened: no behaviour beyond formatting.
//!
//! A report is read long after the processes, probes and services that produced it are gone, and
//! two reports of different conform versions are compared field by field (`conform diff`). So the
//! data a verdict carries (how a process ended, what was launched, one HTTP exchange) lives here,
//! at the bottom of the dependency graph, apart from the machinery that makes it: the machinery
//! depends on these records, never the other way round.
//!
//! The rule, checked by a test below: this module, [`crate::redact`], [`crate::evidence`],
//! [`crate::verdict`] and everything under [`crate::report`] (the *leaves*) name no other module
//! of this crate. A service, process or probe type that a report needs becomes a record here; a
//! harness error that a scenario turns into a [`Failure`](crate::verdict::Failure) says so next to
//! its own type (`impl From<ItsError> for Failure`), not in `verdict.rs`. The old paths
//! (`running::Exit`, `process::LaunchRecord`, `probe::Exchange`, ...) are re-exports.

use std::collections::BTreeMap;
use std::time::Duration;

use nix::sys::signal::Signal;
use serde::Serialize;

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase", tag = "kind", content = "value")]
pub enum ExitStatus {
    /// Exited normally with this code.
    Code(i32),
    /// Killed by this signal number.
    Signal(i32),
}

impl std::fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExitStatus::Code(c) => write!(f, "exit code {c}"),
            ExitStatus::Signal(s) => match Signal::try_from(*s) {
                Ok(sig) => write!(f, "killed by {sig}"),
                Err(_) => write!(f, "killed by signal {s}"),
            },
        }
    }
}

impl From<std::process::ExitStatus> for ExitStatus {
    fn from(status: std::process::ExitStatus) -> Self {
        use std::os::unix::process::ExitStatusExt;
        match (status.code(), status.signal()) {
            (Some(code), _) => ExitStatus::Code(code),
            (None, Some(sig)) => ExitStatus::Signal(sig),
            (None, None) => ExitStatus::Code(-1),
        }
    }
}

/// The end of a process, as a scenario sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Exit {
    /// Exit code or signal.
    pub status: ExitStatus,
    /// Time from the shutdown signal (or from spawn, if no signal was sent) to exit.
    #[serde(with = "millis")]
    pub after: Duration,
    /// True when the process outlived its grace period and was killed by the harness.
    pub killed_after_grace: bool,
}

/// What was launched, as shown in evidence and reports (secrets redacted).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LaunchRecord {
    /// The command line, program first.
    pub command: Vec<String>,
    /// The whole environment the process saw, values of secrets redacted.
    pub env: BTreeMap<String, String>,
    /// The working directory.
    pub cwd: String,
}

/// One HTTP request and what came back.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Exchange {
    /// `GET http://127.0.0.1:1234/healthz`.
    pub request: String,
    /// Request headers the harness set.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub request_headers: BTreeMap<String, String>,
    /// What happened.
    pub outcome: Outcome,
    /// Time to the end of the body (or to the error).
    #[serde(rename = "elapsed_ms", with = "millis")]
    pub elapsed: Duration,
}

/// The result of one HTTP request.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Outcome {
    /// A complete response.
    Response {
        /// Status code.
        status: u16,
        /// Response headers, names lowercased (repeated headers joined with `, `).
        headers: BTreeMap<String, String>,
        /// The body as text (lossy UTF-8), truncated in evidence.
        body: String,
    },
    /// The connection was refused: nothing listens.
    Refused,
    /// No complete response within the request timeout.
    TimedOut,
    /// The connection broke before a complete response (reset, EOF, incomplete body).
    Broken {
        /// The client's description.
        error: String,
    },
}

impl Exchange {
    /// The status code, if there was a response.
    pub fn status(&self) -> Option<u16> {
        match &self.outcome {
            Outcome::Response { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// A response header (name in any case), if there was a response.
    pub fn header(&self, name: &str) -> Option<&str> {
        match &self.outcome {
            Outcome::Response { headers, .. } => headers.get(&name.to_ascii_lowercase()).map(String::as_str),
            _ => None,
        }
    }

    /// The body, if there was a response.
    pub fn body(&self) -> Option<&str> {
        match &self.outcome {
            Outcome::Response { body, .. } => Some(body),
            _ => None,
        }
    }

    /// One line for messages: `GET http://… -> 200 (3 ms)` or `-> connection refused`.
    pub fn summary(&self) -> String {
        let what = match &self.outcome {
            Outcome::Response { status, body, .. } => {
                let body = body.trim();
                let short: String = body.chars().take(120).collect();
                if short.is_empty() {
                    format!("{status}")
                } else {
                    format!("{status} {short}{}", if body.len() > short.len() { "…" } else { "" })
                }
            }
            Outcome::Refused => "connection refused".into(),
            Outcome::TimedOut => "timed out".into(),
            Outcome::Broken { error } => format!("broken: {error}"),
        };
        format!("{} -> {} ({} ms)", self.request, what, self.elapsed.as_millis())
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::Path;

    /// The modules that form the bottom of the graph: records, redaction, evidence, verdicts and
    /// the report renderers. Each may name only these (and its own submodules through `super`).
    const LEAVES: &[&str] = &["record", "redact", "evidence", "verdict", "report"];

    /// Every module of this crate that a source file names through a `crate` path, grouped and
    /// nested imports included.
    fn crate_modules(source: &str) -> BTreeSet<String> {
        let ident = |s: &str| -> String {
            s.trim_start()
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect()
        };
        let mut found = BTreeSet::new();
        for (at, _) in source.match_indices("crate::") {
            let rest = &source[at + "crate::".len()..];
            let Some(group) = rest.strip_prefix('{') else {
                found.insert(ident(rest));
                continue;
            };
            // The first segment of each top-level path in the group.
            let (mut depth, mut segment) = (0, String::new());
            for ch in group.chars() {
                match ch {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        found.insert(ident(&segment));
                        segment.clear();
                    }
                    _ if depth == 0 => segment.push(ch),
                    _ => {}
                }
            }
            found.insert(ident(&segment));
        }
        found.remove("");
        found
    }

    #[test]
    fn leaves_name_only_leaves() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = vec![
            src.join("record.rs"),
            src.join("redact.rs"),
            src.join("evidence.rs"),
            src.join("verdict.rs"),
        ];
        for entry in std::fs::read_dir(src.join("report")).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
        let mut offences = Vec::new();
        for file in &files {
            let source = std::fs::read_to_string(file).unwrap();
            for module in crate_modules(&source) {
                if !LEAVES.contains(&module.as_str()) {
                    offences.push(format!("{} names the module `{module}`", file.display()));
                }
            }
        }
        assert!(
            offences.is_empty(),
            "records, evidence, verdicts and reports must depend on no service, process or probe \
             module (see record.rs):\n{}",
            offences.join("\n")
        );
    }

    #[test]
    fn finds_grouped_and_nested_paths() {
        // Spelt with `{c}` so that this file itself names no module that is not a leaf.
        let c = "crate";
        let source = format!("use {c}::{{a, b::{{c, d}}}};\n#[serde(with = \"{c}::e::f\")]\nlet x = {c}::g::h();");
        let found = crate_modules(&source);
        assert_eq!(found.into_iter().collect::<Vec<_>>(), ["a", "b", "e", "g"]);
    }
}
