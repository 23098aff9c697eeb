//! What changed between two certification runs (two JSON reports): verdicts, clauses that
//! appeared or disappeared, and observed behaviour (the evidence notes) of clauses present in both.
//!
//! Reports are read as JSON values rather than into the report types, so a report written by an
//! older conform still compares. Observed values are normalised before comparing, so that ports,
//! temp paths, durations, ids and timestamps (which differ on every run) are not reported as
//! changes; what is left is behaviour.

use std::collections::BTreeMap;

use serde_json::Value;

/// One difference between two runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A clause's verdict changed.
    Verdict {
        /// Clause ID.
        clause: String,
        /// Verdict in the old run.
        old: String,
        /// Verdict in the new run.
        new: String,
    },
    /// A clause is only in the new run.
    Added {
        /// Clause ID.
        clause: String,
        /// Its verdict.
        verdict: String,
    },
    /// A clause is only in the old run.
    Removed {
        /// Clause ID.
        clause: String,
    },
    /// An observation of a clause changed (after normalisation).
    Observed {
        /// Clause ID.
        clause: String,
        /// The observation's key.
        key: String,
        /// Old value (`None`: not observed before).
        old: Option<String>,
        /// New value (`None`: no longer observed).
        new: Option<String>,
    },
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Change::Verdict { clause, old, new } => write!(f, "{clause}: verdict {old} -> {new}"),
            Change::Added { clause, verdict } => write!(f, "{clause}: new clause ({verdict})"),
            Change::Removed { clause } => write!(f, "{clause}: no longer checked"),
            Change::Observed { clause, key, old, new } => write!(
                f,
                "{clause}: {key}: {} -> {}",
                old.as_deref().unwrap_or("(not observed)"),
                new.as_deref().unwrap_or("(not observed)")
            ),
        }
    }
}

/// What changed between two runs, kept in two lists: behaviour and samples.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diff {
    /// Behaviour changes: verdicts, clauses added or removed, stable observations that differ.
    /// Any one of them makes `conform diff` exit 1.
    pub changes: Vec<Change>,
    /// Observations marked as samples of the candidate's own nondeterminism (a note with
    /// `"sample": true` in either report) that differ: reported apart, never a behaviour change.
    pub samples: Vec<Change>,
}

/// The behaviour changes from `old` to `new` (see [`compare`]; samples left out).
pub fn diff(old: &Value, new: &Value) -> Vec<Change> {
    compare(old, new).changes
}

/// Everything that differs from `old` to `new`, in the new run's clause order (removed clauses
/// last), behaviour changes apart from samples.
pub fn compare(old: &Value, new: &Value) -> Diff {
    let old_rows = rows(old);
    let new_rows = rows(new);
    let mut out = Diff::default();
    for (clause, new_row) in &new_rows {
        let Some((_, old_row)) = old_rows.iter().find(|(c, _)| c == clause) else {
            out.changes.push(Change::Added {
                clause: clause.clone(),
                verdict: verdict(new_row),
            });
            continue;
        };
        let (before, after) = (verdict(old_row), verdict(new_row));
        if before != after {
            out.changes.push(Change::Verdict {
                clause: clause.clone(),
                old: before,
                new: after,
            });
        }
        let (old_notes, new_notes) = (notes(old_row), notes(new_row));
        // A key is a sample when either run marked it one: a report written before the flag
        // existed still compares with a newer one without its samples turning into changes.
        let is_sample =
            |key: &str| old_notes.get(key).is_some_and(|n| n.sample) || new_notes.get(key).is_some_and(|n| n.sample);
        let keys: Vec<&String> = new_notes
            .keys()
            .chain(old_notes.keys().filter(|k| !new_notes.contains_key(*k)))
            .collect();
        for key in keys {
            let (old_value, new_value) = (
                old_notes.get(key).map(|n| n.value.clone()),
                new_notes.get(key).map(|n| n.value.clone()),
            );
            if old_value == new_value {
                continue;
            }
            let change = Change::Observed {
                clause: clause.clone(),
                key: key.clone(),
                old: old_value,
                new: new_value,
            };
            if is_sample(key) {
                out.samples.push(change);
            } else {
                out.changes.push(change);
            }
        }
    }
    for (clause, _) in &old_rows {
        if !new_rows.iter().any(|(c, _)| c == clause) {
            out.changes.push(Change::Removed { clause: clause.clone() });
        }
    }
    out
}

/// `(clause, row)` pairs of a report, in report order.
fn rows(report: &Value) -> Vec<(String, &Value)> {
    report
        .get("results")
        .and_then(Value::as_array)
        .map(|rows| {
            rows.iter()
                .filter_map(|r| Some((r.get("clause")?.as_str()?.to_string(), r)))
                .collect()
        })
        .unwrap_or_default()
}

fn verdict(row: &Value) -> String {
    row.get("verdict").and_then(Value::as_str).unwrap_or("?").to_string()
}

/// A row's observations under one (normalised) key.
#[derive(Debug)]
struct Noted {
    /// Normalised values, repeated keys joined with ` | ` so none is lost.
    value: String,
    /// True when any note under the key was marked a sample.
    sample: bool,
}

/// A row's notes, normalised; repeated keys are joined so none is lost.
fn notes(row: &Value) -> BTreeMap<String, Noted> {
    let mut out: BTreeMap<String, Noted> = BTreeMap::new();
    let notes = row
        .pointer("/evidence/notes")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for n in notes {
        let (Some(key), Some(value)) = (
            n.get("key").and_then(Value::as_str),
            n.get("value").and_then(Value::as_str),
        ) else {
            continue;
        };
        let sample = n.get("sample").and_then(Value::as_bool).unwrap_or(false);
        let value = normalise(value);
        out.entry(normalise(key))
            .and_modify(|n| {
                n.value.push_str(" | ");
                n.value.push_str(&value);
                n.sample |= sample;
            })
            .or_insert(Noted { value, sample });
    }
    out
}

/// Replace what differs on every run (timestamps, UUIDs and other ids, temp paths, durations,
/// ports and pids), then put row lists in a stable order: what is left is behaviour.
pub fn normalise(text: &str) -> String {
    use std::sync::OnceLock;
    static RULES: OnceLock<Vec<(regex::Regex, &'static str)>> = OnceLock::new();
    let rules = RULES.get_or_init(|| {
        [
            // A histogram's sum is a sum of measured durations (its count still compares).
            (r"\bsum Some\(\d+(\.\d+)?(e[+-]?\d+)?\)", "sum Some(<sum>)"),
            // GoFr's request log times each request (`"response_time":39`, in µs).
            (r#""response_time":\d+"#, r#""response_time":<duration>"#),
            // GoFr's datasource log lines time each query (`"type":"QueryRowContext",...,"duration":1`,
            // in ms): a query taking 0 or 1 ms is the machine, not the candidate.
            (r#""duration":\d+"#, r#""duration":<duration>"#),
            // GoFastr's readiness body times each check (`"durationMs":1`).
            (r#""durationMs":\d+"#, r#""durationMs":<duration>"#),
            // The goroutine a panic stack was printed from.
            (r"\bgoroutine \d+ \[", "goroutine <n> ["),
            // Names the harness draws at random: the traced service, the unrouted path.
            (r"\bconform-svc-[0-9a-f]{6}\b", "conform-svc-<random>"),
            (r"\bconform-unknown-[0-9a-f]{8}\b", "conform-unknown-<random>"),
            // Which socket call met a cut connection (dial, read, write) depends on when the
            // harness cut it; the error itself (`connection reset by peer`) still compares.
            (
                r"\b(dial|read|write) tcp [0-9.:\[\]]+(-\\u003e|->)?[0-9.:\[\]]*: (connect|read|write): ",
                "<tcp op>: ",
            ),
            // How long each GoFr migration took (`gofr_migrations` rows: version, method, duration).
            (r"\[(\d+), (UP|DOWN), \d+\]", "[$1, $2, <duration>]"),
            // RFC 3339 / ISO and Go's log prefix `2026/11/23 05:19:59`, with fraction and zone.
            (
                r"\d{4}[-/]\d{2}[-/]\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}(:?\d{2})?)?",
                "<time>",
            ),
            // HTTP dates (cookie Expires).
            (
                r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT",
                "<time>",
            ),
            (
                r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}",
                "<uuid>",
            ),
            (r"\b[0-9a-fA-F]{16,}\b", "<id>"),
            (r"(?i)(\bpid\W{1,3})\d+", "${1}<n>"),
            // The harness names each scenario's database `conform_<n>`.
            (r"\bconform_\d+\b", "conform_<n>"),
            (r#"(/tmp|/dev/shm)/[^\s'",)\]]+"#, "<tmp>"),
            (r"\b\d+(\.\d+)?\s?(ns|µs|us|ms|s)\b", "<duration>"),
            (r"\b\d{4,}\b", "<n>"),
        ]
        .into_iter()
        .map(|(pattern, with)| (regex::Regex::new(pattern).expect("valid pattern"), with))
        .collect()
    });
    let mut out = text.to_string();
    for (rule, with) in rules {
        out = rule.replace_all(&out, *with).into_owned();
    }
    // Rows read back from a table come in id order, and ids change every run.
    if out.contains("]; [") {
        let (head, rows) = out.split_once('[').expect("contains a bracket");
        let mut rows: Vec<&str> = rows.trim_end_matches(']').split("]; [").collect();
        rows.sort_unstable();
        out = format!("{head}[{}]", rows.join("]; ["));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn report(rows: Value) -> Value {
        json!({ "candidate": "gofr", "results": rows })
    }

    #[test]
    fn lists_verdict_changes_new_and_removed_clauses() {
        let old = report(json!([
            {"clause": "GR-PORT-1", "verdict": "pass", "evidence": {"notes": []}},
            {"clause": "GR-HLTH-3", "verdict": "fail", "evidence": {"notes": []}},
            {"clause": "GR-OLD-1", "verdict": "pass", "evidence": {"notes": []}},
        ]));
        let new = report(json!([
            {"clause": "GR-PORT-1", "verdict": "pass", "evidence": {"notes": []}},
            {"clause": "GR-HLTH-3", "verdict": "pass", "evidence": {"notes": []}},
            {"clause": "GR-NEW-1", "verdict": "observed", "evidence": {"notes": []}},
        ]));
        let changes: Vec<String> = diff(&old, &new).iter().map(ToString::to_string).collect();
        assert_eq!(
            changes,
            [
                "GR-HLTH-3: verdict fail -> pass",
                "GR-NEW-1: new clause (observed)",
                "GR-OLD-1: no longer checked"
            ]
        );
    }

    #[test]
    fn observed_behaviour_changes_ignore_ports_paths_and_times() {
        let old = report(
            json!([{"clause": "GR-PORT-3", "verdict": "observed", "evidence": {"notes": [
                {"key": "HTTP_PORT held", "value": "exit code 1; http port 41234 is blocked (12 ms) at 127.0.0.1:41234 in /tmp/conform-gofr-abc/cwd"},
                {"key": "rows", "value": "items(id, name): [45b6ac2e-ba02-4dd4-a0ba-5e4110cd6090, alpha, 2026-11-23 05:20:01+00]; [824431c2-1782-4ccc-9b0c-7500751903c9, beta, 2026-11-23 05:20:01+00]"},
                {"key": "log", "value": r#"{"time":"2026-11-23T05:20:13.1Z","message":"ok"} 2026/11/23 05:19:59 done"#},
                {"key": "span", "value": "trace 4bf92f3577b34da6a3ce929d0e0e4736"}
            ]}}]),
        );
        let new = report(
            json!([{"clause": "GR-PORT-3", "verdict": "observed", "evidence": {"notes": [
                {"key": "HTTP_PORT held", "value": "exit code 1; http port 39001 is blocked (15 ms) at 127.0.0.1:39001 in /tmp/conform-gofr-xyz/cwd"},
                {"key": "rows", "value": "items(id, name): [01e2a6bc-9999-4dd4-a0ba-5e4110cd6090, beta, 2026-11-23 05:41:09+00]; [ff12a6bc-1111-4ccc-9b0c-7500751903c9, alpha, 2026-11-23 05:41:09+00]"},
                {"key": "log", "value": r#"{"time":"2026-11-23T05:42:00Z","message":"ok"} 2026/11/23 05:41:30 done"#},
                {"key": "span", "value": "trace 0af7651916cd43dd8448eb211c80319c"}
            ]}}]),
        );
        assert_eq!(diff(&old, &new), Vec::<Change>::new());
        let changed = report(
            json!([{"clause": "GR-PORT-3", "verdict": "observed", "evidence": {"notes": [
                {"key": "HTTP_PORT held", "value": "exit code 0; still running"}
            ]}}]),
        );
        let changes: Vec<String> = diff(&old, &changed).iter().map(ToString::to_string).collect();
        assert_eq!(changes.len(), 4, "{changes:?}");
        assert!(changes[0].contains("exit code 1") && changes[0].contains("exit code 0; still running"));
        assert!(
            changes
                .iter()
                .any(|c| c.starts_with("GR-PORT-3: span:") && c.ends_with("(not observed)"))
        );
    }

    #[test]
    fn normalises_what_varies_by_design_and_keeps_behaviour() {
        let pairs = [
            (
                "labels method,path,status count Some(2.0) sum Some(0.0123456789012345678)",
                "labels method,path,status count Some(2.0) sum Some(0.04)",
            ),
            (
                r#"{"response_time":39,"uri":"/hello","response":200}"#,
                r#"{"response_time":1234,"uri":"/hello","response":200}"#,
            ),
            ("goroutine 43 [running]:", "goroutine 7 [running]:"),
            (
                r#"{"name":"db","status":"ok","durationMs":1}"#,
                r#"{"name":"db","status":"ok","durationMs":0}"#,
            ),
            (
                r#"{"message":{"type":"QueryRowContext","query":"SELECT 1","duration":1,"args":[]}}"#,
                r#"{"message":{"type":"QueryRowContext","query":"SELECT 1","duration":0,"args":[]}}"#,
            ),
            (
                r#"{"service.name":"conform-svc-231b55"}"#,
                r#"{"service.name":"conform-svc-77ad0d"}"#,
            ),
            (
                "GET /conform-unknown-5b521fda: scope",
                "GET /conform-unknown-d3d612a2: scope",
            ),
            (
                "err: dial tcp 127.0.0.1:41234: connect: connection reset by peer",
                r"err: read tcp 127.0.0.1:5555-\u003e127.0.0.1:41234: read: connection reset by peer",
            ),
            (
                "gofr_migrations(version, method, duration): [1, UP, 0]; [2, UP, 0]",
                "gofr_migrations(version, method, duration): [2, UP, 3]; [1, UP, 1]",
            ),
        ];
        for (a, b) in pairs {
            assert_eq!(normalise(a), normalise(b), "{a:?} vs {b:?}");
        }
        // What the rules must not eat: a status, a count, a migration version or method, the
        // error behind a cut connection, a log line's text, a header value.
        let kept = [
            (
                r#"{"response_time":39,"response":200}"#,
                r#"{"response_time":39,"response":500}"#,
            ),
            ("count Some(2.0) sum Some(0.5)", "count Some(3.0) sum Some(0.5)"),
            (
                "gofr_migrations(version, method, duration): [1, UP, 0]",
                "gofr_migrations(version, method, duration): [1, DOWN, 0]",
            ),
            ("[1, UP, 0]; [2, UP, 0]", "[1, UP, 0]; [3, UP, 0]"),
            (
                "dial tcp 127.0.0.1:41234: connect: connection reset by peer",
                "dial tcp 127.0.0.1:41234: connect: connection refused",
            ),
            ("Application shutdown complete", "Application shutdown started"),
            ("cache-control: no-store", "cache-control: no-cache"),
            (
                r#"{"name":"db","status":"ok","durationMs":1}"#,
                r#"{"name":"db","status":"down","durationMs":1}"#,
            ),
            (
                "goroutine 43 [running]: main.boom",
                "goroutine 43 [running]: main.other",
            ),
        ];
        for (a, b) in kept {
            assert_ne!(normalise(a), normalise(b), "{a:?} vs {b:?}");
        }
    }

    #[test]
    fn samples_are_reported_apart_and_old_reports_still_compare() {
        let run = |notes: Value, verdict: &str| {
            report(json!([{"clause": "GR-SHUT-5", "verdict": verdict, "evidence": {"notes": notes}}]))
        };
        // Which run missed the final line is a sample; the exit status is not.
        let old = run(
            json!([
                {"key": "run 1", "value": "`Application shutdown complete` at line Some(9)", "sample": true},
                {"key": "run 2", "value": "`Application shutdown complete` at line None", "sample": true},
                {"key": "exit", "value": "exit code 0"}
            ]),
            "fail",
        );
        let new = run(
            json!([
                {"key": "run 1", "value": "`Application shutdown complete` at line None", "sample": true},
                {"key": "exit", "value": "exit code 0"}
            ]),
            "fail",
        );
        let found = compare(&old, &new);
        assert_eq!(found.changes, Vec::<Change>::new());
        assert_eq!(found.samples.len(), 2, "{:?}", found.samples);
        assert!(
            found
                .samples
                .iter()
                .any(|c| c.to_string().starts_with("GR-SHUT-5: run 2:"))
        );
        // A report written before the flag existed: the other side's mark still makes it a sample.
        let unflagged = run(
            json!([
                {"key": "run 1", "value": "`Application shutdown complete` at line Some(9)"},
                {"key": "exit", "value": "exit code 0"}
            ]),
            "fail",
        );
        let found = compare(&unflagged, &new);
        assert_eq!((found.changes.len(), found.samples.len()), (0, 1), "{found:?}");
        // A behaviour change next to samples is still one, and so is a verdict change.
        let changed = run(
            json!([
                {"key": "run 1", "value": "`Application shutdown complete` at line Some(9)", "sample": true},
                {"key": "exit", "value": "exit code 2"}
            ]),
            "pass",
        );
        let changes: Vec<String> = diff(&old, &changed).iter().map(ToString::to_string).collect();
        assert_eq!(
            changes,
            [
                "GR-SHUT-5: verdict fail -> pass",
                "GR-SHUT-5: exit: exit code 0 -> exit code 2"
            ]
        );
    }
}
