//! Reading a case's outcome back from the running binary: one function per kind of
//! [`Expect`], all through the recorded context (HTTP exchanges and the candidate's own output).
//!
//! Kept apart from the table engine so that the engine reads as "prepare, launch, check, stop"
//! and this file holds the details of each observation: the echo endpoint's two JSON shapes
//! (GoFastr's bare object, GoFr's `{"data": ...}` envelope), exit statuses, and output lines that
//! may trail a process that has just exited.

use std::fmt::Write as _;
use std::time::Duration;

use harness::output::Line;
use harness::running::{Exit, ExitStatus};
use harness::timeouts::{NO_LINE_WINDOW, OUTPUT_DRAIN};
use harness::verdict::Failure;
use serde_json::Value;

use engine::clause::Knob;
use engine::cx::{App, Cx};

/// One observable outcome of a case.
#[derive(Debug, Clone, Copy)]
pub enum Expect {
    /// The app serves: its liveness probe answers 200 on the port the harness gave it (or wrote
    /// into a file as `{port}`).
    Serves,
    /// The echo endpoint reports the variable set, with exactly this value.
    Value(&'static str, &'static str),
    /// The echo endpoint reports the variable absent from the process environment.
    Absent(&'static str),
    /// `GET` of the path answers this status.
    Status(&'static str, u16),
    /// `GET` of the app's own echo route (an ordinary app route) answers this status.
    EchoRoute(u16),
    /// `GET` of the path answers JSON with this string at the JSON pointer.
    Json(&'static str, &'static str, &'static str),
    /// The process exits before serving, with a non-zero code (this one, if given), and its
    /// output mentions every string.
    Refuses(Option<i32>, &'static [&'static str]),
    /// The file holding this sentinel key is rejected as a whole: the app refuses to boot, or it
    /// boots without the sentinel.
    Rejected(&'static str),
    /// Some output line contains the text.
    Line(&'static str),
    /// No output line contains the text (checked after the app has served a request).
    NoLine(&'static str),
}

/// How a launch ended up once the harness stopped waiting for it to serve.
pub(super) enum Outcome {
    /// The liveness probe answered 200.
    Served,
    /// The process exited first.
    Exited(Exit),
    /// Neither, within the boot ceiling (the reason says what was last seen).
    NotServing(String),
}

impl Outcome {
    fn describe(&self) -> String {
        match self {
            Outcome::Served => "it booted and served".into(),
            Outcome::Exited(exit) => format!("it exited ({}) without serving", exit.status),
            Outcome::NotServing(why) => format!("it did not serve: {why}"),
        }
    }
}

/// Check one expectation: (expected, actual, held).
pub(super) async fn check(
    cx: &mut Cx,
    app: &App,
    outcome: &Outcome,
    expect: &Expect,
) -> Result<(String, String, bool), Failure> {
    let served = matches!(outcome, Outcome::Served);
    Ok(match *expect {
        Expect::Serves => (
            "the app serves on the port it was given".into(),
            outcome.describe(),
            served,
        ),
        Expect::Value(key, want) => {
            let expected = format!("{key}={want:?}");
            if !served {
                (expected, outcome.describe(), false)
            } else {
                let got = echo(cx, app, key).await?;
                let held = got.as_deref() == Some(want);
                (expected, show(key, &got), held)
            }
        }
        Expect::Absent(key) => {
            let expected = format!("{key} not set");
            if !served {
                (expected, outcome.describe(), false)
            } else {
                let got = echo(cx, app, key).await?;
                (expected, show(key, &got), got.is_none())
            }
        }
        Expect::Status(path, status) => {
            let expected = format!("GET {path} answers {status}");
            if !served {
                (expected, outcome.describe(), false)
            } else {
                let exchange = cx.get(app, path).await?;
                (expected, exchange.summary(), exchange.status() == Some(status))
            }
        }
        Expect::EchoRoute(status) => {
            let path = echo_path(cx, "CONF_ROUTE_PROBE")?;
            let expected = format!("GET {path} (an app route) answers {status}");
            if !served {
                (expected, outcome.describe(), false)
            } else {
                let exchange = cx.get(app, &path).await?;
                (expected, exchange.summary(), exchange.status() == Some(status))
            }
        }
        Expect::Json(path, pointer, want) => {
            let expected = format!("GET {path}: {pointer} = {want:?}");
            if !served {
                (expected, outcome.describe(), false)
            } else {
                let exchange = cx.get(app, path).await?;
                let body: Option<Value> = exchange.body().and_then(|b| serde_json::from_str(b).ok());
                match body.as_ref().and_then(|b| b.pointer(pointer)) {
                    Some(Value::String(got)) => (expected, format!("{pointer} = {got:?}"), got == want),
                    Some(other) => (expected, format!("{pointer} = {other}"), false),
                    None => (expected, exchange.summary(), false),
                }
            }
        }
        Expect::Refuses(code, mentions) => {
            let expected = match code {
                Some(c) => format!("refuses to boot: exit code {c}, output naming {mentions:?}"),
                None => format!("refuses to boot: non-zero exit, output naming {mentions:?}"),
            };
            match outcome {
                Outcome::Exited(exit) => {
                    let mut named = Vec::new();
                    let mut missing = Vec::new();
                    for mention in mentions {
                        match wait_line(app, mention).await {
                            Some(line) => named.push(line.plain()),
                            None => missing.push(*mention),
                        }
                    }
                    let code_ok = match (exit.status, code) {
                        (ExitStatus::Code(c), Some(want)) => c == want,
                        (ExitStatus::Code(c), None) => c != 0,
                        (ExitStatus::Signal(_), _) => false,
                    };
                    let actual = if !missing.is_empty() {
                        format!(
                            "{}; output does not name {missing:?}; first lines: {}",
                            exit.status,
                            first_lines(app, 3)
                        )
                    } else if named.is_empty() {
                        format!("{}; first lines: {}", exit.status, first_lines(app, 3))
                    } else {
                        format!("{}; {}", exit.status, named.join(" | "))
                    };
                    (expected, actual, code_ok && missing.is_empty())
                }
                other => (expected, other.describe(), false),
            }
        }
        Expect::Rejected(sentinel) => {
            let expected = format!("the file is rejected as a whole (no boot, or {sentinel} not applied)");
            match outcome {
                Outcome::Exited(exit) => (
                    expected,
                    format!("{}; first lines: {}", exit.status, first_lines(app, 3)),
                    !matches!(exit.status, ExitStatus::Code(0)),
                ),
                Outcome::Served => {
                    let got = echo(cx, app, sentinel).await?;
                    (
                        expected,
                        format!("it booted with {}", show(sentinel, &got)),
                        got.is_none(),
                    )
                }
                other => (expected, other.describe(), false),
            }
        }
        Expect::Line(text) => {
            let expected = format!("a log line containing {text:?}");
            match wait_line(app, text).await {
                Some(line) => (expected, line.plain(), true),
                None => (
                    expected,
                    format!("no such line; first lines: {}", first_lines(app, 3)),
                    false,
                ),
            }
        }
        Expect::NoLine(text) => {
            // Checked last, and over a window: a line printed before the liveness answer is in
            // the log by now, but a framework may print from a goroutine it starts as it begins
            // serving (GoFr's telemetry notice), which can trail that answer on a loaded machine.
            // So the absence is observed for NO_LINE_WINDOW, and the evidence says so.
            let expected = format!("no log line containing {text:?}");
            match wait_line_for(app, text, NO_LINE_WINDOW).await {
                Some(line) => (expected, line.plain(), false),
                None if served => (
                    expected,
                    format!("no such line within {NO_LINE_WINDOW:?} after serving"),
                    true,
                ),
                None => (expected, format!("no such line, but {}", outcome.describe()), false),
            }
        }
    })
}

/// The first line containing `text`, waiting briefly for output already printed to reach the
/// line log (the pipes are drained by reader tasks, which may trail the process by a moment,
/// especially right after it exits).
async fn wait_line(app: &App, text: &str) -> Option<Line> {
    wait_line_for(app, text, OUTPUT_DRAIN).await
}

/// The first line containing `text` within `window`, or `None` once it has passed.
async fn wait_line_for(app: &App, text: &str, window: Duration) -> Option<Line> {
    app.running
        .output()
        .wait_for_line(&format!("containing {text:?}"), window, |l| l.plain().contains(text))
        .await
        .ok()
}

fn first_lines(app: &App, n: usize) -> String {
    let lines = app.running.output().lines();
    if lines.is_empty() {
        return "(no output)".into();
    }
    lines.iter().take(n).map(|l| l.plain()).collect::<Vec<_>>().join(" | ")
}

fn show(key: &str, got: &Option<String>) -> String {
    match got {
        Some(v) => format!("{key}={v:?}"),
        None => format!("{key} not set"),
    }
}

/// Read a variable back from the running app through its echo endpoint: `Some(value)` when set
/// (possibly empty), `None` when absent. GoFr wraps handler results in `{"data": ...}`.
async fn echo(cx: &mut Cx, app: &App, key: &str) -> Result<Option<String>, Failure> {
    let path = echo_path(cx, key)?;
    let exchange = cx.get(app, &path).await?;
    if exchange.status() != Some(200) {
        return Err(Failure::harness(format!(
            "the echo endpoint did not answer 200: {}",
            exchange.summary()
        )));
    }
    let body: Value = exchange
        .body()
        .and_then(|b| serde_json::from_str(b).ok())
        .ok_or_else(|| Failure::harness(format!("the echo endpoint answered no JSON: {}", exchange.summary())))?;
    let obj = body.get("data").unwrap_or(&body);
    match (obj.get("set"), obj.get("value")) {
        (Some(Value::Bool(false)), _) => Ok(None),
        (Some(Value::Bool(true)), Some(Value::String(v))) => Ok(Some(v.clone())),
        _ => Err(Failure::harness(format!(
            "the echo endpoint's JSON has no `set`/`value`: {}",
            exchange.summary()
        ))),
    }
}

/// The echo endpoint's path for `key`, from the candidate's knob (declared by every clause whose
/// table reads a value back).
fn echo_path(cx: &Cx, key: &str) -> Result<String, Failure> {
    let template = cx.knob(Knob::EchoEnvEndpoint)?;
    Ok(template.replace("{key}", &query_escape(key)))
}

/// Percent-encode a query value (keys may be non-ASCII on purpose).
fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_non_ascii_keys() {
        assert_eq!(query_escape("ÄPFEL"), "%C3%84PFEL");
        assert_eq!(query_escape("CONF_K"), "CONF_K");
    }
}
