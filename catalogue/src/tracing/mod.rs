//! TRACE (GoFastr) and TRC (GoFr): the spans a candidate exports over OTLP, and the trace context
//! it continues.
//!
//! Tracing clauses ask what a candidate *sends*, so every scenario boots the candidate with its
//! exporter pointed at a fresh in-process receiver ([`OtlpReceiver`]), or at a real OpenTelemetry
//! Collector forwarding to it when the run says `--collector real` (an [`OtlpSink`] either way),
//! and asserts on the spans that arrive there. How a framework is pointed at a collector (GoFastr's candidate reads the
//! OTel SDK's `OTEL_EXPORTER_OTLP_*`, GoFr reads `TRACE_EXPORTER` + `TRACER_URL`) lives in the
//! profile ([`engine::profile::Profile::trace_env`]), so the span capture here is written once:
//! [`boot_traced`] starts the candidate, [`get`] makes a request with an optional `traceparent`
//! the harness generated ([`TraceParent`]), [`expect_spans`] waits for a condition on the
//! received spans, and [`continued`] is the shared "an incoming `traceparent` is continued"
//! scenario.
//!
//! Waiting for spans is always a polled condition with a ceiling. Proving that a span did *not*
//! arrive needs more care, and is done in one of three ways, strongest first:
//!
//! 1. **A sentinel.** The OTel SDK's batch processor exports spans in the order they ended, so
//!    once a later, sampled request's span (the sentinel, [`settle`]) has arrived, every span
//!    that ended before it has had its chance. Used wherever the candidate exports at all
//!    (sampling, probes).
//! 2. **The exit.** Where a candidate flushes at shutdown (GoFastr's candidate calls
//!    `TracerProvider.Shutdown` from `OnStop`), SIGTERM and the process exit bound the wait.
//! 3. **A stated window** ([`NO_SPAN_WINDOW`]), only where nothing is exported at all (no
//!    exporter configured, an exporter that cannot connect), started once the request is
//!    known to be finished, and recorded in the evidence as "no span within N ms".
//!
//! `gofastr.rs` and `gofr.rs` (with `gofr_spans.rs`) hold each catalogue's clauses and what its
//! spans must look like.

mod gofastr;
mod gofr;
mod gofr_app;
mod gofr_spans;

use std::io::Read;

use harness::probe::Exchange;
use harness::service::otlp::{OtlpReceiver, OtlpSink, ReceivedSpan, Transport};
use harness::timeouts::{EXIT_AFTER_SIGTERM, NO_SPAN_WINDOW, SPAN_ARRIVAL};
use harness::verdict::Failure;

use engine::clause::{Clause, Knob};
use engine::cx::{App, Attached, Cx, Db, Spec};

/// The OTel SDK variable setting the batch span processor's export interval (milliseconds).
/// Both frameworks use the SDK's batch processor, which reads it.
pub(crate) const BATCH_DELAY_ENV: &str = "OTEL_BSP_SCHEDULE_DELAY";

/// Export interval while a scenario waits for spans from a running candidate: short, so a span
/// arrives a fraction of a second after its request (the SDK default is 5 s).
pub(crate) const QUICK_BATCH_DELAY: &str = "200";

/// Export interval when spans must arrive only through the flush at shutdown: ten minutes, far
/// beyond any scenario, so no periodic export can deliver them first.
const HOLD_BATCH_DELAY: &str = "600000";

/// The TRACE and TRC clauses of both catalogues.
pub fn clauses() -> Vec<Clause> {
    let mut all = gofastr::clauses();
    all.extend(gofr::clauses());
    all
}

/// A W3C `traceparent` the harness made up, with fresh random ids.
#[derive(Debug, Clone)]
pub(crate) struct TraceParent {
    /// 32 lowercase hex digits.
    pub(crate) trace_id: String,
    /// 16 lowercase hex digits: the upstream span the candidate's span should be a child of.
    span_id: String,
    /// The `sampled` flag (`-01`), or not (`-00`).
    sampled: bool,
}

impl TraceParent {
    /// Fresh ids.
    pub(crate) fn new(sampled: bool) -> Result<TraceParent, Failure> {
        Ok(TraceParent {
            trace_id: random_hex(16)?,
            span_id: random_hex(8)?,
            sampled,
        })
    }

    /// The header value, `00-<trace id>-<span id>-<flags>`.
    pub(crate) fn header(&self) -> String {
        format!(
            "00-{}-{}-{}",
            self.trace_id,
            self.span_id,
            if self.sampled { "01" } else { "00" }
        )
    }
}

/// `n` random bytes as lowercase hex (never all zero: an all-zero W3C id is invalid).
fn random_hex(n: usize) -> Result<String, Failure> {
    let mut bytes = vec![0u8; n];
    let mut urandom = std::fs::File::open("/dev/urandom")?;
    urandom.read_exact(&mut bytes)?;
    bytes[0] |= 1;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// How the spans of a scenario are to reach the receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delivery {
    /// Exported every [`QUICK_BATCH_DELAY`] while the candidate runs.
    WhileRunning,
    /// Held back ([`HOLD_BATCH_DELAY`]), so only a flush at shutdown delivers them.
    AtShutdown,
}

/// A candidate booted with its exporter pointed at its own sink (spans are read from the sink's
/// receiver; see [`OtlpSink`]).
pub(crate) struct Traced {
    pub(crate) receiver: OtlpSink,
    pub(crate) app: App,
    pub(crate) _db: Attached,
}

/// Start a sink ([`Cx::otlp`]: the receiver, behind the run's collector if any) and boot the
/// candidate on SQLite with its exporter pointed at it over `transport` (from the profile), or
/// with no exporter variables at all when `transport` is `None` (the caller's `adjust` then says
/// what to set), then apply `adjust`.
async fn boot_traced(
    cx: &mut Cx,
    transport: Option<Transport>,
    delivery: Delivery,
    adjust: impl Fn(&mut Spec, &OtlpSink),
) -> Result<Traced, Failure> {
    let sink = cx.otlp().await?;
    boot_traced_at(cx, sink, transport, delivery, adjust).await
}

/// [`boot_traced`] on a sink the caller chose (a direct one, for clauses that grade the
/// candidate's own export request).
async fn boot_traced_at(
    cx: &mut Cx,
    receiver: OtlpSink,
    transport: Option<Transport>,
    delivery: Delivery,
    adjust: impl Fn(&mut Spec, &OtlpSink),
) -> Result<Traced, Failure> {
    let profile = cx.profile();
    let export = match transport {
        Some(t) => profile.trace_env(&receiver, t).ok_or_else(|| {
            Failure::harness(format!("{} cannot export spans over {}", profile.display, t.protocol()))
        })?,
        None => Vec::new(),
    };
    let db = cx.database(Db::Sqlite).await?;
    let app = cx
        .boot_with(Some(&db), |spec| {
            for (k, v) in &export {
                spec.set(k, v.clone());
            }
            spec.set(
                BATCH_DELAY_ENV,
                match delivery {
                    Delivery::WhileRunning => QUICK_BATCH_DELAY,
                    Delivery::AtShutdown => HOLD_BATCH_DELAY,
                },
            );
            adjust(spec, &receiver);
            Ok(())
        })
        .await?;
    if let Some(t) = transport {
        cx.note("exporter", format!("{} to the harness receiver", t.protocol()));
    }
    Ok(Traced { receiver, app, _db: db })
}

/// `GET path`, with a `traceparent` when one is given; recorded.
pub(crate) async fn get(cx: &mut Cx, app: &App, path: &str, parent: Option<&TraceParent>) -> Result<Exchange, Failure> {
    let addr = app
        .addr()
        .ok_or_else(|| Failure::harness("the app has no known port"))?;
    let header = parent.map(TraceParent::header);
    let headers: Vec<(&str, &str)> = header.iter().map(|h| ("traceparent", h.as_str())).collect();
    if let Some(h) = &header {
        cx.note(format!("traceparent sent with GET {path}"), h);
    }
    cx.send("GET", addr, path, &headers, None).await
}

/// Wait up to [`SPAN_ARRIVAL`] until the received spans satisfy `pred`. Not arriving is the
/// candidate's failure to export what `what` describes.
async fn expect_spans(
    receiver: &OtlpReceiver,
    what: &str,
    pred: impl Fn(&[ReceivedSpan]) -> bool,
) -> Result<Vec<ReceivedSpan>, Failure> {
    receiver
        .wait_for_spans(what, SPAN_ARRIVAL, pred)
        .await
        .map_err(|e| Failure::violation(what.to_string(), e.to_string()))
}

/// Send a sampled sentinel request to `path` and wait until its span has arrived: every span
/// that ended before it has then been exported too (see the module docs). Returns every span
/// received except the sentinel's own trace.
pub(crate) async fn settle(cx: &mut Cx, traced: &Traced, path: &str) -> Result<Vec<ReceivedSpan>, Failure> {
    let sentinel = TraceParent::new(true)?;
    let addr = traced
        .app
        .addr()
        .ok_or_else(|| Failure::harness("the app has no known port"))?;
    cx.send("GET", addr, path, &[("traceparent", &sentinel.header())], None)
        .await?;
    let tid = sentinel.trace_id.clone();
    expect_spans(
        &traced.receiver,
        &format!("the sentinel request's span (trace {tid}) to arrive"),
        |s| s.iter().any(|s| s.trace_id == tid),
    )
    .await?;
    cx.note(
        "sentinel",
        format!("trace {tid} arrived, so every earlier span has been exported"),
    );
    Ok(traced
        .receiver
        .spans()
        .into_iter()
        .filter(|s| s.trace_id != sentinel.trace_id)
        .collect())
}

/// Wait the stated [`NO_SPAN_WINDOW`] for a span satisfying `pred`: `Some(spans)` if one came,
/// `None` if the window passed without one (recorded as such).
async fn any_within_window(
    cx: &mut Cx,
    receiver: &OtlpReceiver,
    what: &str,
    pred: impl Fn(&ReceivedSpan) -> bool,
) -> Option<Vec<ReceivedSpan>> {
    match receiver
        .wait_for_spans(what, NO_SPAN_WINDOW, |s| s.iter().any(&pred))
        .await
    {
        Ok(spans) => Some(spans.into_iter().filter(|s| pred(s)).collect()),
        Err(_) => {
            cx.note(
                format!("window: {what}"),
                format!(
                    "no such span within {} ms ({} export cycles of {QUICK_BATCH_DELAY} ms); export requests received: {}",
                    NO_SPAN_WINDOW.as_millis(),
                    NO_SPAN_WINDOW.as_millis() / QUICK_BATCH_DELAY.parse::<u128>().unwrap_or(1),
                    receiver.exports().len()
                ),
            );
            None
        }
    }
}

/// What the shared continuation scenario saw.
struct Continued {
    /// The booted candidate.
    traced: Traced,
    /// The `traceparent` sent.
    parent: TraceParent,
    /// The response to the request carrying it.
    response: Exchange,
    /// Every span of that trace, once a sentinel has arrived.
    spans: Vec<ReceivedSpan>,
}

/// The shared promise: a request carrying a sampled `traceparent` produces spans in *that* trace,
/// and the request's span is a child of the upstream span. Returns what was seen, for each
/// framework's own checks.
async fn continued(cx: &mut Cx, transport: Transport, path: &str) -> Result<Continued, Failure> {
    let traced = boot_traced(cx, Some(transport), Delivery::WhileRunning, |_, _| {}).await?;
    let parent = TraceParent::new(true)?;
    let response = get(cx, &traced.app, path, Some(&parent)).await?;
    let tid = parent.trace_id.clone();
    expect_spans(
        &traced.receiver,
        &format!("a span of the incoming trace {tid} (GET {path} with traceparent)"),
        |s| s.iter().any(|s| s.trace_id == tid),
    )
    .await?;
    let spans: Vec<ReceivedSpan> = settle(cx, &traced, path)
        .await?
        .into_iter()
        .filter(|s| s.trace_id == tid)
        .collect();
    cx.note("spans of the incoming trace", describe(&spans));
    if !spans
        .iter()
        .any(|s| s.parent_span_id.as_deref() == Some(parent.span_id.as_str()))
    {
        return Err(Failure::violation(
            format!(
                "a span of GET {path} whose parent is the upstream span {}",
                parent.span_id
            ),
            describe(&spans),
        ));
    }
    Ok(Continued {
        traced,
        parent,
        response,
        spans,
    })
}

/// SIGTERM the app and wait for it to exit (an `OnStop` flush runs in between).
async fn stop(cx: &mut Cx, app: &mut App) -> Result<(), Failure> {
    let exit = cx
        .stop(app, harness::running::Signal::SIGTERM, EXIT_AFTER_SIGTERM)
        .await?;
    cx.note("exit after SIGTERM", format!("{} after {:?}", exit.status, exit.after));
    Ok(())
}

/// One line per span, in the order they started: name, kind, scope, ids, status and attributes,
/// for evidence and messages.
fn describe(spans: &[ReceivedSpan]) -> String {
    if spans.is_empty() {
        return "no spans".into();
    }
    // In the order the spans started (a request's router span, its handler, then its SQL), not
    // the order they arrived: that follows when each ended and how the exporter batched them.
    let mut spans: Vec<&ReceivedSpan> = spans.iter().collect();
    spans.sort_by_key(|s| s.start_unix_nano);
    spans
        .iter()
        .map(|s| {
            format!(
                "{:?} {:?} scope={:?} trace={} span={} parent={} status={:?} attrs={}",
                s.name,
                s.kind,
                s.scope_name,
                s.trace_id,
                s.span_id,
                s.parent_span_id.as_deref().unwrap_or("(root)"),
                s.status,
                serde_json::to_string(&s.attributes).unwrap_or_default()
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Fill a route template's path parameter (`/items/{id}` -> `/items/42`).
fn fill(template: &str, value: &str) -> String {
    match (template.find('{'), template.find('}')) {
        (Some(open), Some(close)) if open < close => {
            format!("{}{value}{}", &template[..open], &template[close + 1..])
        }
        _ => template.to_string(),
    }
}

/// The candidate's route with a path parameter, as a template, or a harness error.
fn param_template(cx: &Cx) -> Result<String, Failure> {
    cx.knob(Knob::ParamEndpoint)
}

/// Collects every broken expectation of a scenario, so one run reports all of them.
#[derive(Default)]
struct Problems(Vec<(String, String)>);

impl Problems {
    /// Record that `expected` did not hold; `actual` is what was seen.
    fn add(&mut self, expected: impl Into<String>, actual: impl Into<String>) {
        self.0.push((expected.into(), actual.into()));
    }

    /// A violation listing every problem, or `Ok` when there were none.
    fn finish(self) -> Result<(), Failure> {
        if self.0.is_empty() {
            return Ok(());
        }
        let (expected, actual): (Vec<String>, Vec<String>) = self.0.into_iter().unzip();
        Err(Failure::violation(expected.join("\n"), actual.join("\n")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_is_w3c_shaped() {
        let p = TraceParent::new(false).unwrap();
        let h = p.header();
        let parts: Vec<&str> = h.split('-').collect();
        assert_eq!(parts.len(), 4, "{h}");
        assert_eq!((parts[0], parts[3]), ("00", "00"));
        assert_eq!((parts[1].len(), parts[2].len()), (32, 16));
        assert!(
            h.bytes()
                .all(|b| b == b'-' || b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert!(TraceParent::new(true).unwrap().header().ends_with("-01"));
    }

    #[test]
    fn fill_replaces_the_parameter() {
        assert_eq!(fill("/items/{id}", "42"), "/items/42");
        assert_eq!(fill("/plain", "42"), "/plain");
    }

    #[test]
    fn problems_join_into_one_violation() {
        assert!(Problems::default().finish().is_ok());
        let mut p = Problems::default();
        p.add("a", "b");
        p.add("c", "d");
        assert_eq!(p.finish(), Err(Failure::violation("a\nc", "b\nd")));
    }
}
