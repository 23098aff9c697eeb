//! LOG: GoFr's logging contract (gofr.md §1.7): the JSON envelope and the stream each level goes
//! to, `LOG_LEVEL` filtering, the request-log line, the trace ID on handler logs, and the level
//! changed at run time through `REMOTE_LOG_URL`.
//!
//! Judging logs means judging lines that were written and lines that were not. A written line is
//! a polled condition on the candidate's line log. A line that was *not* written needs a sync
//! point, because a line not read yet looks the same as a line never written: the candidate's log
//! endpoint writes INFO, DEBUG and WARN on stdout and then ERROR on stderr, in that order, from
//! one goroutine. Once the WARN line and the ERROR line of a later request have been read, every
//! line an earlier request wrote on either stream has been read too, since a pipe keeps its
//! order. So no absence is ever concluded from a wait that merely ran out. What the sync request
//! writes after its sync lines (its request-log line) is cut off, so every run judges the same
//! lines. How lines of the two pipes interleave is not the candidate's behaviour: notes list each
//! stream's lines in their own order.
//!
//! The remote level endpoint is a harness-owned loopback [`HttpStub`](harness::service::stub);
//! with `REMOTE_LOG_FETCH_INTERVAL=1` the candidate polls it every second, and every wait there
//! counts the stub's polls or the candidate's lines.
//!
//! `mod.rs` holds the clause table and what the clauses share (parsed lines, one exercise of the
//! log endpoint); `local.rs` the clauses judged on one boot's output; `remote.rs` the remote level.

mod local;
mod remote;

use harness::output::{Line, Output, Stream};
use harness::poll::{self, Poll};
use harness::timeouts;
use harness::timeouts::LOG_LINE;
use harness::verdict::{Failure, Level};
use serde_json::{Map, Value};

use engine::check;
use engine::clause::{Clause, DocRef, Knob, Needs};
use engine::cx::{App, Cx};

/// GoFr's levels, lowest first (production-logging › Log levels).
const LEVELS: [&str; 6] = ["DEBUG", "INFO", "NOTICE", "WARN", "ERROR", "FATAL"];

/// The message the log endpoint writes at INFO.
const INFO_MSG: &str = "conformance-log";
/// The message the log endpoint writes at DEBUG.
const DEBUG_MSG: &str = "conformance-debug";
/// The message the log endpoint writes at WARN, its last line on stdout.
const WARN_MSG: &str = "conformance-warn";
/// The message the log endpoint writes at ERROR, its only line on stderr.
const ERROR_MSG: &str = "conformance-error";

/// The log endpoint's lines with their levels, in the order it writes them.
const HANDLER_LINES: [(&str, &str); 4] = [
    (INFO_MSG, "INFO"),
    (DEBUG_MSG, "DEBUG"),
    (WARN_MSG, "WARN"),
    (ERROR_MSG, "ERROR"),
];

/// The LOG clauses (GoFr only: GoFastr's catalogue has no logging area).
pub fn clauses() -> Vec<Clause> {
    vec![
        Clause {
            id: "GR-LOG-1",
            level: Level::Must,
            promise: "Logs are one JSON object per line with level, time (RFC3339Nano), message, trace_id (omitempty) and gofrVersion; ERROR and FATAL go to stderr, the other levels to stdout.",
            doc: DocRef::at(
                "guides/production-logging",
                "The log line shape; quick-start/observability › Log Levels › ERROR",
            ),
            method: "Boot on SQLite with stdout and stderr piped; GET the error endpoint once and the log endpoint three times; once both streams are synced on the last request's lines, every line of both up to them must be a JSON object with the documented fields, the framework version, and its level on the right stream.",
            needs: Needs {
                knobs: &[Knob::LogEndpoint, Knob::ErrorEndpoint],
                ..Needs::NONE
            },
            check: check!(local::envelope),
        },
        Clause {
            id: "GR-LOG-2",
            level: Level::Must,
            promise: "LOG_LEVEL (default INFO) sets the threshold: only lines at or above it are written.",
            doc: DocRef::at(
                "quick-start/observability",
                "Logs; guides/production-logging › Log levels; references/configs LOG_LEVEL",
            ),
            method: "Boot with LOG_LEVEL unset, DEBUG and WARN; exercise the endpoints; no line of either stream may be below the threshold, and each of the log endpoint's INFO/DEBUG/WARN/ERROR lines at or above it must be there.",
            needs: Needs {
                knobs: &[Knob::LogEndpoint, Knob::ErrorEndpoint],
                ..Needs::NONE
            },
            check: check!(local::level_threshold),
        },
        Clause {
            id: "GR-LOG-3",
            level: Level::Must,
            promise: "Each request is logged with a message object holding trace_id, span_id, start_time, response_time, method, user_agent, ip, uri and response, and trace_id also at the top level.",
            doc: DocRef::at("guides/production-logging", "The log line shape"),
            method: "GET the log endpoint with a query string and a known User-Agent; find its request-log line; check the nine fields and their values, the W3C ID formats, and that the top-level trace_id equals the nested one.",
            needs: Needs {
                knobs: &[Knob::LogEndpoint],
                ..Needs::NONE
            },
            check: check!(local::request_line),
        },
        Clause {
            id: "GR-LOG-4",
            level: Level::Must,
            promise: "When a request carries a trace context, the lines its handler logs carry that trace ID in the top-level trace_id.",
            doc: DocRef::at("guides/distributed-tracing", "Trace ID format"),
            method: "GET the log endpoint with a W3C traceparent of a known trace ID; its INFO (stdout) and ERROR (stderr) lines must carry that ID as top-level trace_id. The handler-error line of the error endpoint is recorded.",
            needs: Needs {
                knobs: &[Knob::LogEndpoint, Knob::ErrorEndpoint],
                ..Needs::NONE
            },
            check: check!(local::handler_trace_id),
        },
        Clause {
            id: "GR-LOG-5",
            level: Level::Must,
            promise: "With REMOTE_LOG_URL set, GoFr polls it every REMOTE_LOG_FETCH_INTERVAL seconds and adopts the logLevel it answers, without a restart.",
            doc: DocRef::at(
                "advanced-guide/remote-log-level-change",
                "Configuration; Remote Log Level Endpoint",
            ),
            method: "Serve {\"data\":{\"serviceName\":APP_NAME,\"logLevel\":\"INFO\"}} from a loopback stub, boot with REMOTE_LOG_FETCH_INTERVAL=1; count three polls and their spacing; switch the answer to DEBUG and poll the log endpoint until its DEBUG line appears; switch back to INFO and poll until it stops.",
            needs: Needs {
                knobs: &[Knob::LogEndpoint],
                ..Needs::NONE
            },
            check: check!(remote::level_follows_endpoint),
        },
        Clause {
            id: "GR-LOG-6",
            level: Level::Info,
            promise: "Observed: REMOTE_LOG_FETCH_INTERVAL values abc, 0 and -1, and remote answers outside the documented shape (HTTP 503, lowercase logLevel, another serviceName).",
            doc: DocRef::at(
                "pkg/gofr/container/container.go, pkg/gofr/logging/remotelogger/dynamic_level_logger.go",
                "Create; UpdateLogLevel, fetchAndUpdateLogLevel",
            ),
            method: "Start with each interval value and record the ERROR line, exit status and panic line (exits watched for a few seconds); boot one app per odd answer, wait for two polls, and record whether the log endpoint's DEBUG line appears.",
            needs: Needs {
                knobs: &[Knob::LogEndpoint],
                ..Needs::NONE
            },
            check: check!(remote::edge_values),
        },
        Clause {
            id: "GR-LOG-7",
            level: Level::Info,
            promise: "Observed: at LOG_LEVEL=DEBUG, SQL query log lines include the query and its bind arguments.",
            doc: DocRef::at("pkg/gofr/datasource/sql/db.go", "sendOperationStats"),
            method: "Boot on SQLite with LOG_LEVEL=DEBUG; GET the parameterised route; record the SQL query log line and whether its args hold the parameter.",
            needs: Needs {
                knobs: &[Knob::ParamEndpoint],
                ..Needs::NONE
            },
            check: check!(local::sql_debug_args),
        },
    ]
}

/// The rank of a level name in [`LEVELS`].
fn rank(level: &str) -> Option<usize> {
    LEVELS.iter().position(|l| *l == level)
}

/// One line of candidate output, parsed as a GoFr log line where it is one.
#[derive(Debug, Clone)]
struct LogLine {
    /// Which pipe it came from.
    stream: Stream,
    /// The text, ANSI escapes removed.
    text: String,
    /// The JSON object, when the line is one.
    json: Option<Map<String, Value>>,
}

impl LogLine {
    /// Parse one captured line.
    fn parse(line: &Line) -> LogLine {
        let text = line.plain();
        let json = match serde_json::from_str::<Value>(&text) {
            Ok(Value::Object(map)) => Some(map),
            _ => None,
        };
        LogLine {
            stream: line.stream,
            text,
            json,
        }
    }

    /// A top-level string field.
    fn field(&self, name: &str) -> Option<&str> {
        self.json.as_ref()?.get(name)?.as_str()
    }

    /// The `level` field.
    fn level(&self) -> Option<&str> {
        self.field("level")
    }

    /// The `message` field, whatever its type.
    fn message(&self) -> Option<&Value> {
        self.json.as_ref()?.get("message")
    }

    /// The message when it is a string (app logs).
    fn message_text(&self) -> Option<&str> {
        self.message()?.as_str()
    }

    /// The message when it is an object (request logs, error logs, SQL logs).
    fn message_object(&self) -> Option<&Map<String, Value>> {
        self.message()?.as_object()
    }

    /// `out: …` or `err: …`, for evidence.
    fn shown(&self) -> String {
        let stream = if self.stream == Stream::Stdout { "out" } else { "err" };
        format!("{stream}: {}", self.text)
    }
}

/// Every line the app has written so far, parsed.
fn parsed(app: &App) -> Vec<LogLine> {
    app.running.output().lines().iter().map(LogLine::parse).collect()
}

/// How many lines on `stream` have the string message `message`.
fn count(output: &Output, stream: Stream, message: &str) -> usize {
    output
        .lines()
        .iter()
        .map(LogLine::parse)
        .filter(|l| l.stream == stream && l.message_text() == Some(message))
        .count()
}

/// Wait until at least `n` lines on `stream` have the string message `message`.
async fn wait_count(output: &Output, stream: Stream, message: &str, n: usize) -> Result<(), poll::PollError> {
    let what = format!("{n} line(s) {message:?} on {stream:?}");
    poll::wait_for(what, LOG_LINE, timeouts::POLL_INTERVAL, || {
        let seen = count(output, stream, message);
        async move {
            if seen >= n {
                Poll::Ready(())
            } else {
                Poll::NotYet(format!("{seen} so far"))
            }
        }
    })
    .await
}

/// The candidate's log endpoint (knob `log_endpoint`).
fn log_endpoint(cx: &Cx) -> Result<String, Failure> {
    cx.knob(Knob::LogEndpoint)
}

/// The candidate's 500 endpoint (knob `error_endpoint`).
fn error_endpoint(cx: &Cx) -> Result<String, Failure> {
    cx.knob(Knob::ErrorEndpoint)
}

/// What one exercise of the endpoints left in the output.
struct Exercise {
    /// Every line of both streams once the sync points were reached (or their waits ended).
    lines: Vec<LogLine>,
    /// Why stdout could not be synced: the second WARN line never arrived there.
    stdout_unsynced: Option<String>,
    /// Why stderr could not be synced: the second ERROR line never arrived there.
    stderr_unsynced: Option<String>,
}

impl Exercise {
    /// A violation when either stream could not be synced: the log endpoint's WARN and ERROR
    /// lines are part of what every caller of [`exercise`] relies on.
    fn require_synced(&self, context: &str) -> Result<(), Failure> {
        for (stream, why) in [("stdout", &self.stdout_unsynced), ("stderr", &self.stderr_unsynced)] {
            if let Some(why) = why {
                return Err(Failure::violation(
                    format!("{context}: the log endpoint's lines reach {stream}"),
                    why.clone(),
                ));
            }
        }
        Ok(())
    }
}

/// GET the error endpoint once and the log endpoint twice, then the log endpoint once more as a
/// sync request: once its WARN line is on stdout and its ERROR line on stderr, every line the
/// first three requests (and the boot) wrote has been read, their request-log lines included
/// (each is written before its response goes out, so before the sync request is sent). Each
/// stream is then cut just after the sync request's line on it: what the candidate writes after
/// that (the sync request's own request-log line) may or may not have been read yet, so it is
/// never judged, and every run judges the same lines.
async fn exercise(cx: &mut Cx, app: &App) -> Result<Exercise, Failure> {
    let log = log_endpoint(cx)?;
    let error = error_endpoint(cx)?;
    let output = app.running.output().clone();
    let warns = count(&output, Stream::Stdout, WARN_MSG);
    let errors = count(&output, Stream::Stderr, ERROR_MSG);
    cx.get(app, &error).await?;
    cx.get(app, &log).await?;
    cx.get(app, &log).await?;
    cx.get(app, &log).await?;
    let stdout_unsynced = wait_count(&output, Stream::Stdout, WARN_MSG, warns + 3)
        .await
        .err()
        .map(|e| e.to_string());
    let stderr_unsynced = wait_count(&output, Stream::Stderr, ERROR_MSG, errors + 3)
        .await
        .err()
        .map(|e| e.to_string());
    Ok(Exercise {
        lines: up_to_sync(
            parsed(app),
            &[
                (Stream::Stdout, WARN_MSG, warns + 3),
                (Stream::Stderr, ERROR_MSG, errors + 3),
            ],
        ),
        stdout_unsynced,
        stderr_unsynced,
    })
}

/// `lines` with each stream cut after its sync line: for each `(stream, message, n)`, the lines on
/// `stream` after the `n`th line with message `message` are dropped (a stream that never reached
/// its sync line is kept whole; the exercise reports it unsynced).
fn up_to_sync(lines: Vec<LogLine>, syncs: &[(Stream, &str, usize)]) -> Vec<LogLine> {
    let mut seen = vec![0; syncs.len()];
    lines
        .into_iter()
        .filter(|line| {
            let Some(i) = syncs.iter().position(|(s, _, _)| *s == line.stream) else {
                return true;
            };
            let (_, message, n) = syncs[i];
            let keep = seen[i] < n;
            if line.message_text() == Some(message) {
                seen[i] += 1;
            }
            keep
        })
        .collect()
}

/// True for `len` lowercase hex digits, not all zero (W3C trace and span IDs).
fn is_w3c_id(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        && s.bytes().any(|b| b != b'0')
}

/// True for an RFC 3339 timestamp with optional fractional seconds (Go's `time.Time` JSON form,
/// which is RFC3339Nano): `YYYY-MM-DDTHH:MM:SS[.fff…](Z|±HH:MM)`.
fn is_rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| b.get(r.clone()).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    if b.len() < 20
        || !digits(0..4)
        || b[4] != b'-'
        || !digits(5..7)
        || b[7] != b'-'
        || !digits(8..10)
        || b[10] != b'T'
        || !digits(11..13)
        || b[13] != b':'
        || !digits(14..16)
        || b[16] != b':'
        || !digits(17..19)
    {
        return false;
    }
    let mut i = 19;
    if b[i] == b'.' {
        let start = i + 1;
        i = start;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return false;
        }
    }
    match &b[i..] {
        [b'Z'] => true,
        [sign, h1, h2, b':', m1, m2] if (*sign == b'+' || *sign == b'-') => {
            [h1, h2, m1, m2].iter().all(|d| d.is_ascii_digit())
        }
        _ => false,
    }
}

/// At most `n` items joined by newlines, with a count of the rest.
fn listed(items: &[String], n: usize) -> String {
    let mut shown: Vec<String> = items.iter().take(n).cloned().collect();
    if items.len() > n {
        shown.push(format!("… and {} more", items.len() - n));
    }
    shown.join("\n")
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn timestamps() {
        assert!(is_rfc3339("2026-11-23T04:41:11.752972352Z"));
        assert!(is_rfc3339("2026-11-23T04:41:11Z"));
        assert!(is_rfc3339("2026-11-23T05:41:11.5+01:00"));
        assert!(!is_rfc3339("2026-11-23 04:41:11Z"));
        assert!(!is_rfc3339("2026-11-23T04:41:11."));
        assert!(!is_rfc3339("04:41:11"));
    }

    #[test]
    fn each_stream_is_cut_after_its_sync_line() {
        let line = |stream, message: &str| {
            LogLine::parse(&Line {
                stream,
                text: format!(r#"{{"level":"INFO","message":"{message}"}}"#),
                at: Duration::ZERO,
            })
        };
        let lines = vec![
            line(Stream::Stdout, "boot"),
            line(Stream::Stdout, WARN_MSG),
            line(Stream::Stderr, ERROR_MSG),
            line(Stream::Stdout, "request log 1"),
            line(Stream::Stdout, WARN_MSG),
            line(Stream::Stderr, "late on stderr"),
            line(Stream::Stderr, ERROR_MSG),
            line(Stream::Stdout, "request log 2, maybe read, maybe not"),
            line(Stream::Stderr, "after the sync on stderr"),
        ];
        let kept = up_to_sync(lines, &[(Stream::Stdout, WARN_MSG, 2), (Stream::Stderr, ERROR_MSG, 2)]);
        let texts: Vec<&str> = kept.iter().filter_map(LogLine::message_text).collect();
        assert_eq!(
            texts,
            [
                "boot",
                WARN_MSG,
                ERROR_MSG,
                "request log 1",
                WARN_MSG,
                "late on stderr",
                ERROR_MSG
            ]
        );
        // A stream that never reached its sync line is kept whole.
        let unsynced = up_to_sync(
            vec![line(Stream::Stdout, "a"), line(Stream::Stdout, "b")],
            &[(Stream::Stdout, WARN_MSG, 1)],
        );
        assert_eq!(unsynced.len(), 2);
    }

    #[test]
    fn w3c_ids() {
        assert!(is_w3c_id("4bf92f3577b34da6a3ce929d0e0e4736", 32));
        assert!(!is_w3c_id("00000000000000000000000000000000", 32));
        assert!(!is_w3c_id("4BF92F3577B34DA6A3CE929D0E0E4736", 32));
        assert!(is_w3c_id("00f067aa0ba902b7", 16));
    }
}
