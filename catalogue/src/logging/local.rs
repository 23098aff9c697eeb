//! The LOG clauses judged on the output of one boot: envelope and streams (GR-LOG-1), the
//! `LOG_LEVEL` threshold (GR-LOG-2, a table of levels run by one loop), the request-log line
//! (GR-LOG-3), the trace ID on handler lines (GR-LOG-4) and SQL debug lines (GR-LOG-7, observed).

use harness::output::Stream;
use harness::verdict::Failure;
use serde_json::Value;

use super::*;
use engine::cx::{Cx, Db};

/// GR-LOG-1: every line of both streams is a GoFr JSON envelope on the stream its level goes to.
pub(super) async fn envelope(cx: &mut Cx) -> Result<(), Failure> {
    let db = cx.database(Db::Sqlite).await?;
    let app = cx.boot(Some(&db)).await?;
    let run = exercise(cx, &app).await?;
    run.require_synced("GR-LOG-1")?;
    let version = cx.target().candidate.manifest.framework_version.clone();
    let mut problems = Vec::new();
    for line in &run.lines {
        problems.extend(
            envelope_problems(line, &version)
                .into_iter()
                .map(|p| format!("{p}: {}", line.shown())),
        );
    }
    for (message, stream) in [(INFO_MSG, Stream::Stdout), (ERROR_MSG, Stream::Stderr)] {
        if !run
            .lines
            .iter()
            .any(|l| l.stream == stream && l.message_text() == Some(message))
        {
            problems.push(format!("no {message:?} line on {stream:?}"));
        }
    }
    let on = |s: Stream| run.lines.iter().filter(|l| l.stream == s).count();
    cx.note(
        "lines judged",
        format!("{} on stdout, {} on stderr", on(Stream::Stdout), on(Stream::Stderr)),
    );
    if problems.is_empty() {
        return Ok(());
    }
    Err(Failure::violation(
        format!(
            "one JSON object per line with level, time (RFC3339Nano), message and gofrVersion {version:?} \
             (trace_id, when present, a W3C trace ID); ERROR and FATAL on stderr, other levels on stdout"
        ),
        listed(&problems, 10),
    ))
}

/// What is wrong with one line as a GoFr log envelope.
fn envelope_problems(line: &LogLine, version: &str) -> Vec<String> {
    let Some(json) = &line.json else {
        return vec!["not a JSON object".into()];
    };
    let mut problems = Vec::new();
    let level = line.level();
    match level.and_then(rank) {
        None => problems.push(format!("level {:?} is not one of {LEVELS:?}", json.get("level"))),
        Some(r) => {
            let want = if r >= rank("ERROR").unwrap_or(usize::MAX) {
                Stream::Stderr
            } else {
                Stream::Stdout
            };
            if line.stream != want {
                problems.push(format!(
                    "{} line on {:?}, not {want:?}",
                    level.unwrap_or("?"),
                    line.stream
                ));
            }
        }
    }
    if !line.field("time").is_some_and(is_rfc3339) {
        problems.push(format!("time {:?} is not RFC 3339", json.get("time")));
    }
    if line.message().is_none() {
        problems.push("no message".into());
    }
    if line.field("gofrVersion") != Some(version) {
        problems.push(format!("gofrVersion {:?}, not {version:?}", json.get("gofrVersion")));
    }
    if let Some(id) = json.get("trace_id")
        && !id.as_str().is_some_and(|s| is_w3c_id(s, 32))
    {
        problems.push(format!("trace_id {id} is not a W3C trace ID"));
    }
    problems
}

/// One row of GR-LOG-2: the `LOG_LEVEL` a deployment sets (or not) and the threshold it means.
struct LevelCase {
    /// The value of `LOG_LEVEL`, or `None` to leave it unset.
    set: Option<&'static str>,
    /// The documented threshold that follows.
    threshold: &'static str,
}

/// The levels judged. ERROR and FATAL are left out: above WARN nothing is left on stdout to
/// sync on, so an absent stdout line could not be told from one not read yet.
const LEVEL_CASES: [LevelCase; 3] = [
    // quick-start/observability: "by default, GoFr logs at INFO level".
    LevelCase {
        set: None,
        threshold: "INFO",
    },
    LevelCase {
        set: Some("DEBUG"),
        threshold: "DEBUG",
    },
    LevelCase {
        set: Some("WARN"),
        threshold: "WARN",
    },
];

/// GR-LOG-2: for each case, no line below the threshold on either stream, and every handler
/// line at or above it present.
pub(super) async fn level_threshold(cx: &mut Cx) -> Result<(), Failure> {
    let db = cx.database(Db::Sqlite).await?;
    let error = error_endpoint(cx)?;
    let mut problems = Vec::new();
    for case in &LEVEL_CASES {
        let label = match case.set {
            Some(v) => format!("LOG_LEVEL={v}"),
            None => "LOG_LEVEL unset".to_string(),
        };
        let app = cx
            .boot_with(Some(&db), |spec| {
                match case.set {
                    Some(v) => spec.set("LOG_LEVEL", v),
                    None => spec.unset("LOG_LEVEL"),
                };
                Ok(())
            })
            .await?;
        let run = exercise(cx, &app).await?;
        run.require_synced(&label)?;
        let threshold = rank(case.threshold).unwrap_or_default();
        for line in &run.lines {
            if let Some(r) = line.level().and_then(rank)
                && r < threshold
            {
                problems.push(format!("{label}: {} line written: {}", LEVELS[r], line.shown()));
            }
        }
        for (message, level) in HANDLER_LINES {
            let present = run.lines.iter().any(|l| l.message_text() == Some(message));
            if rank(level).unwrap_or_default() >= threshold && !present {
                problems.push(format!("{label}: the handler's {level} line {message:?} is missing"));
            }
        }
        let request_levels = harness::output::per_stream(
            run.lines
                .iter()
                .filter(|l| {
                    l.message_object()
                        .is_some_and(|m| m.contains_key("uri") && m.contains_key("response"))
                })
                .map(|l| {
                    let uri = l
                        .message_object()
                        .and_then(|m| m.get("uri"))
                        .cloned()
                        .unwrap_or(Value::Null);
                    (l.stream, format!("{uri} {}", l.level().unwrap_or("?")))
                }),
            ", ",
        );
        cx.note(format!("{label}: request-log lines (uri, level)"), request_levels);
        let is_error_log = |l: &LogLine| {
            l.message_object()
                .and_then(|m| m.get("uri"))
                .and_then(Value::as_str)
                .is_some_and(|u| u.starts_with(&error))
        };
        cx.note(
            format!("{label}: request log of the 500 endpoint"),
            if run.lines.iter().any(is_error_log) {
                "written"
            } else {
                "not written"
            },
        );
    }
    if problems.is_empty() {
        return Ok(());
    }
    Err(Failure::violation(
        "only lines at or above the LOG_LEVEL threshold (default INFO) are written, and all of those are",
        listed(&problems, 12),
    ))
}

/// The User-Agent GR-LOG-3 sends, to find it again in the request-log line.
const USER_AGENT: &str = "conform-logging/1";

/// The query string GR-LOG-3 appends, to see whether `uri` keeps it.
const QUERY: &str = "conform=request-log";

/// The fields production-logging › The log line shape lists for a request log's `message`.
const REQUEST_FIELDS: [&str; 9] = [
    "trace_id",
    "span_id",
    "start_time",
    "response_time",
    "method",
    "user_agent",
    "ip",
    "uri",
    "response",
];

/// GR-LOG-3: the request-log line of one GET.
pub(super) async fn request_line(cx: &mut Cx) -> Result<(), Failure> {
    let path = log_endpoint(cx)?;
    let db = cx.database(Db::Sqlite).await?;
    let app = cx.boot(Some(&db)).await?;
    let addr = app
        .addr()
        .ok_or_else(|| Failure::harness("the app has no known port"))?;
    let target = format!("{path}?{QUERY}");
    let ex = cx
        .send("GET", addr, &target, &[("user-agent", USER_AGENT)], None)
        .await?;
    cx.expect_status(&format!("GET {target}"), &ex, 200)?;
    let is_ours = |l: &harness::output::Line| {
        let l = LogLine::parse(l);
        l.message_object()
            .and_then(|m| m.get("user_agent"))
            .and_then(Value::as_str)
            == Some(USER_AGENT)
    };
    let line = app
        .running
        .output()
        .wait_for_line(&format!("logging the request GET {target}"), LOG_LINE, is_ours)
        .await
        .map_err(|e| Failure::violation(format!("a request-log line for GET {target}"), e.to_string()))?;
    let line = LogLine::parse(&line);
    cx.note("request-log line", line.shown());
    let message = line.message_object().cloned().unwrap_or_default();
    let str_of = |k: &str| message.get(k).and_then(Value::as_str);
    let mut problems = Vec::new();
    let missing: Vec<&str> = REQUEST_FIELDS
        .iter()
        .copied()
        .filter(|f| !message.contains_key(*f))
        .collect();
    if !missing.is_empty() {
        problems.push(format!("message lacks {missing:?}"));
    }
    if str_of("method") != Some("GET") {
        problems.push(format!("method {:?}, not \"GET\"", message.get("method")));
    }
    if message.get("response").and_then(Value::as_u64) != Some(200) {
        problems.push(format!("response {:?}, not 200", message.get("response")));
    }
    if !str_of("uri").is_some_and(|u| u.starts_with(&path)) {
        problems.push(format!("uri {:?} is not the request's {path:?}", message.get("uri")));
    }
    if str_of("ip").is_none_or(str::is_empty) {
        problems.push(format!("ip {:?} is empty", message.get("ip")));
    }
    let nested = str_of("trace_id");
    if !nested.is_some_and(|t| is_w3c_id(t, 32)) {
        problems.push(format!(
            "message.trace_id {:?} is not a W3C trace ID",
            message.get("trace_id")
        ));
    }
    if !str_of("span_id").is_some_and(|s| is_w3c_id(s, 16)) {
        problems.push(format!(
            "message.span_id {:?} is not a W3C span ID",
            message.get("span_id")
        ));
    }
    match (line.field("trace_id"), nested) {
        (Some(top), Some(n)) if top == n => {}
        (top, n) => problems.push(format!(
            "top-level trace_id {top:?}, nested trace_id {n:?}: the docs put it at both, equal"
        )),
    }
    cx.note("uri", format!("{:?} (requested {target:?})", message.get("uri")));
    cx.note(
        "X-Correlation-ID equals message.trace_id",
        ex.header("x-correlation-id").is_some_and(|h| Some(h) == nested),
    );
    if problems.is_empty() {
        return Ok(());
    }
    Err(Failure::violation(
        format!(
            "a request-log line whose message holds {REQUEST_FIELDS:?} for this request, and trace_id also at the top level"
        ),
        problems.join("; "),
    ))
}

/// The trace GR-LOG-4 sends (the W3C Trace Context specification's example trace ID).
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

/// GR-LOG-4: handler lines of a request with a trace context carry its trace ID at the top level.
pub(super) async fn handler_trace_id(cx: &mut Cx) -> Result<(), Failure> {
    let path = log_endpoint(cx)?;
    let error = error_endpoint(cx)?;
    let db = cx.database(Db::Sqlite).await?;
    let app = cx.boot(Some(&db)).await?;
    let addr = app
        .addr()
        .ok_or_else(|| Failure::harness("the app has no known port"))?;
    let traceparent = format!("00-{TRACE_ID}-00f067aa0ba902b7-01");
    let ex = cx
        .send("GET", addr, &path, &[("traceparent", &traceparent)], None)
        .await?;
    cx.expect_status(&format!("GET {path}"), &ex, 200)?;
    cx.note("X-Correlation-ID", ex.header("x-correlation-id").unwrap_or("(absent)"));
    let output = app.running.output().clone();
    let mut problems = Vec::new();
    for (message, stream) in [(INFO_MSG, Stream::Stdout), (ERROR_MSG, Stream::Stderr)] {
        let found = output
            .wait_for_line(&format!("{message:?} on {stream:?}"), LOG_LINE, |l| {
                l.stream == stream && LogLine::parse(l).message_text() == Some(message)
            })
            .await;
        match found {
            Err(e) => problems.push(format!("no {message:?} line: {e}")),
            Ok(line) => {
                let line = LogLine::parse(&line);
                cx.note(format!("{message} line"), line.shown());
                if line.field("trace_id") != Some(TRACE_ID) {
                    problems.push(format!("{message:?} line has trace_id {:?}", line.field("trace_id")));
                }
            }
        }
    }
    // Recorded, not graded: the line GoFr itself writes for a handler's error.
    let ex = cx.get(&app, &error).await?;
    let correlation = ex.header("x-correlation-id").unwrap_or_default().to_string();
    let error_line = output
        .wait_for_line("the handler-error line", LOG_LINE, |l| {
            let l = LogLine::parse(l);
            l.message_object().is_some_and(|m| {
                m.contains_key("error") && m.get("trace_id").and_then(Value::as_str) == Some(correlation.as_str())
            })
        })
        .await;
    match error_line {
        Ok(line) => cx.note("handler-error line", LogLine::parse(&line).shown()),
        Err(e) => cx.note("handler-error line", format!("not seen: {e}")),
    }
    if problems.is_empty() {
        return Ok(());
    }
    Err(Failure::violation(
        format!("the handler's INFO and ERROR lines carry top-level trace_id {TRACE_ID:?} (from traceparent)"),
        problems.join("; "),
    ))
}

/// The parameter GR-LOG-7 queries, found again among the logged bind arguments.
const SQL_PARAM: &str = "424242";

/// GR-LOG-7 (observed): the SQL query line at DEBUG and its bind arguments.
pub(super) async fn sql_debug_args(cx: &mut Cx) -> Result<(), Failure> {
    let template = cx.knob(Knob::ParamEndpoint)?;
    let path = match (template.find('{'), template.find('}')) {
        (Some(open), Some(close)) if open < close => {
            format!("{}{SQL_PARAM}{}", &template[..open], &template[close + 1..])
        }
        _ => {
            return Err(Failure::harness(format!(
                "param_endpoint {template:?} has no {{parameter}}"
            )));
        }
    };
    let db = cx.database(Db::Sqlite).await?;
    let app = cx
        .boot_with(Some(&db), |spec| {
            spec.set("LOG_LEVEL", "DEBUG");
            Ok(())
        })
        .await?;
    cx.get(&app, &path).await?;
    let found = app
        .running
        .output()
        .wait_for_line("a SQL query log line with bind args", LOG_LINE, |l| {
            LogLine::parse(l).message_object().is_some_and(|m| {
                m.contains_key("query") && m.get("args").is_some_and(|a| a.to_string().contains(SQL_PARAM))
            })
        })
        .await;
    match found {
        Ok(line) => {
            let line = LogLine::parse(&line);
            cx.note("SQL query line", line.shown());
            cx.note("level", line.level().unwrap_or("?"));
            cx.note("bind args logged", "yes");
        }
        Err(e) => {
            let sql: Vec<String> = parsed(&app)
                .iter()
                .filter(|l| l.message_object().is_some_and(|m| m.contains_key("query")))
                .map(LogLine::shown)
                .collect();
            cx.note("bind args logged", format!("no line with {SQL_PARAM} in args: {e}"));
            cx.note("SQL query lines", listed(&sql, 5));
        }
    }
    Ok(())
}
