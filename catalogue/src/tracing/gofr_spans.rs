//! GoFr's TRC clauses about *what* is traced: sampling (GR-TRC-4), trace context and correlation
//! IDs (GR-TRC-5), the span tree (GR-TRC-6) and datasource spans (GR-TRC-7).
//!
//! Each judges absence with a sentinel (see the parent module): once a later sampled request's
//! span has arrived, everything that ended before it has been exported, so "this trace was not
//! exported" is a fact, not a timeout. The sampling cases are a table, run in one loop.

use harness::service::otlp::{ReceivedSpan, Transport};
use harness::verdict::Failure;

use super::gofr_app::{CORRELATION, HELLO, correlation, log_line};
use super::*;
use engine::clause::Knob;
use engine::cx::Cx;

/// One sampling case: the `traceparent` sent (none, sampled, unsampled) and whether the
/// documented sampler exports the request's trace.
struct SamplingCase {
    upstream: Option<bool>,
    exported: bool,
    why: &'static str,
}

/// The sampling table, per TRACER_RATIO value.
const SAMPLING: &[(&str, &[SamplingCase])] = &[
    (
        "0",
        &[
            SamplingCase {
                upstream: None,
                exported: false,
                why: "TRACER_RATIO=0 starts no sampled trace",
            },
            SamplingCase {
                upstream: Some(true),
                exported: true,
                why: "ParentBased honours a sampled upstream at ratio 0",
            },
        ],
    ),
    (
        "1",
        &[
            SamplingCase {
                upstream: None,
                exported: true,
                why: "TRACER_RATIO=1 samples every new trace",
            },
            SamplingCase {
                upstream: Some(false),
                exported: false,
                why: "ParentBased honours an unsampled upstream at ratio 1",
            },
        ],
    ),
    (
        "abc",
        &[SamplingCase {
            upstream: None,
            exported: true,
            why: "an unusable TRACER_RATIO leaves the documented default 1",
        }],
    ),
];

pub(super) async fn sampling(cx: &mut Cx) -> Result<(), Failure> {
    let mut problems = Problems::default();
    for (ratio, cases) in SAMPLING {
        let t = boot_traced(cx, Some(Transport::Grpc), Delivery::WhileRunning, |spec, _| {
            spec.set("TRACER_RATIO", *ratio);
        })
        .await?;
        if let Some(line) = log_line(&t.app, "ParseFloat") {
            cx.note(format!("TRACER_RATIO={ratio}: log"), line);
        }
        let mut traces = Vec::new();
        for case in *cases {
            let parent = case.upstream.map(TraceParent::new).transpose()?;
            let ex = get(cx, &t.app, HELLO, parent.as_ref()).await?;
            let tid = match &parent {
                Some(p) => p.trace_id.clone(),
                None => correlation(&ex).ok_or_else(|| {
                    Failure::harness(format!(
                        "no X-Correlation-ID on {}, so its trace cannot be identified",
                        ex.summary()
                    ))
                })?,
            };
            traces.push(tid);
        }
        let spans = settle(cx, &t, HELLO).await?;
        for (case, tid) in cases.iter().zip(traces) {
            let got = spans.iter().any(|s| s.trace_id == tid);
            let what = format!(
                "TRACER_RATIO={ratio}, traceparent {}: trace {tid} {}",
                match case.upstream {
                    None => "none",
                    Some(true) => "sampled",
                    Some(false) => "unsampled",
                },
                if case.exported { "exported" } else { "not exported" }
            );
            cx.note(
                &what,
                if got == case.exported {
                    "as documented"
                } else {
                    "NOT as documented"
                },
            );
            if got != case.exported {
                problems.add(
                    format!("{what} ({})", case.why),
                    if got { "exported" } else { "not exported" },
                );
            }
        }
    }
    problems.finish()
}

pub(super) async fn propagation(cx: &mut Cx) -> Result<(), Failure> {
    let mut problems = Problems::default();
    let seen = continued(cx, Transport::Grpc, HELLO).await?;
    let tid = &seen.parent.trace_id;
    if seen.response.header(CORRELATION) != Some(tid.as_str()) {
        problems.add(
            format!("with traceparent trace {tid}: X-Correlation-ID {tid}"),
            format!("{:?}", seen.response.header(CORRELATION)),
        );
    }
    let t = seen.traced;
    // Optional: without the knob, the reference candidate's `/error` is asked.
    let error = cx.optional_knob(Knob::ErrorEndpoint).unwrap_or_else(|| "/error".into());
    let unknown = format!("/conform-unknown-{}", random_hex(4)?);
    let mut plain = None;
    for path in [HELLO, unknown.as_str(), error.as_str()] {
        let ex = get(cx, &t.app, path, None).await?;
        match correlation(&ex) {
            Some(id) if path == HELLO => plain = Some(id),
            Some(_) => {}
            None => problems.add(
                format!("GET {path} ({:?}): X-Correlation-ID of 32 hex digits", ex.status()),
                format!("{:?}", ex.header(CORRELATION)),
            ),
        }
    }
    if let Some(id) = plain {
        let spans = settle(cx, &t, HELLO).await?;
        if !spans.iter().any(|s| s.trace_id == id) {
            problems.add(
                format!("without traceparent: X-Correlation-ID {id} is the trace id of the exported spans"),
                describe(&spans),
            );
        }
    }
    let metrics = cx.metrics_addr(&t.app)?;
    let ex = cx.get_at(metrics, cx.profile().metrics_path).await?;
    cx.note(
        "metrics port: X-Correlation-ID",
        ex.header(CORRELATION).unwrap_or("(absent)"),
    );
    drop(t);

    let off = boot_traced(cx, None, Delivery::WhileRunning, |_, _| {}).await?;
    let parent = TraceParent::new(true)?;
    let with = get(cx, &off.app, HELLO, Some(&parent)).await?;
    if with.header(CORRELATION) != Some(parent.trace_id.as_str()) {
        problems.add(
            format!(
                "tracing off, traceparent trace {}: X-Correlation-ID equal to it",
                parent.trace_id
            ),
            format!("{:?}", with.header(CORRELATION)),
        );
    }
    let without = get(cx, &off.app, HELLO, None).await?;
    if correlation(&without).is_none() {
        problems.add(
            "tracing off: X-Correlation-ID of 32 hex digits",
            format!("{:?}", without.header(CORRELATION)),
        );
    }
    problems.finish()
}

pub(super) async fn span_tree(cx: &mut Cx) -> Result<(), Failure> {
    let path = fill(&param_template(cx)?, "42");
    let t = boot_traced(cx, Some(Transport::Grpc), Delivery::WhileRunning, |_, _| {}).await?;
    let root = get(cx, &t.app, &path, None).await?;
    let parent = TraceParent::new(true)?;
    get(cx, &t.app, &path, Some(&parent)).await?;
    let spans = settle(cx, &t, &path).await?;
    let tree_of = |trace_id: &str| -> Vec<_> { spans.iter().filter(|s| s.trace_id == trace_id).cloned().collect() };
    if let Some(id) = correlation(&root) {
        cx.note(format!("GET {path} without traceparent"), describe(&tree_of(&id)));
    }
    let tree = tree_of(&parent.trace_id);
    cx.note(
        format!("GET {path} with traceparent (upstream span {})", parent.span_id),
        describe(&tree),
    );
    // distributed-tracing › Common gotchas advises route templates, not raw paths, in span names.
    let raw: Vec<&str> = spans
        .iter()
        .filter(|s| s.name.contains(&path))
        .map(|s| s.name.as_str())
        .collect();
    cx.note(
        format!("span names carrying the raw path {path}"),
        if raw.is_empty() {
            "none".to_string()
        } else {
            format!("{raw:?}")
        },
    );
    Ok(())
}

pub(super) async fn sql_spans(cx: &mut Cx) -> Result<(), Failure> {
    let path = fill(&param_template(cx)?, "42");
    let t = boot_traced(cx, Some(Transport::Grpc), Delivery::WhileRunning, |_, _| {}).await?;
    let parent = TraceParent::new(true)?;
    get(cx, &t.app, &path, Some(&parent)).await?;
    let spans = settle(cx, &t, &path).await?;
    let is_sql = |s: &&ReceivedSpan| {
        s.name.to_ascii_lowercase().starts_with("sql") || s.attributes.keys().any(|k| k.starts_with("db."))
    };
    let in_trace: Vec<ReceivedSpan> = spans
        .iter()
        .filter(|s| s.trace_id == parent.trace_id)
        .cloned()
        .collect();
    cx.note("spans of the request", describe(&in_trace));
    let others: Vec<ReceivedSpan> = spans
        .iter()
        .filter(|s| s.trace_id != parent.trace_id)
        .cloned()
        .collect();
    // How many `sql.conn.reset_session` spans the pool emits depends on connection reuse timing.
    cx.note_sample("other spans (boot, migrations)", describe(&others));
    let mut problems = Problems::default();
    if !in_trace.iter().any(|s| is_sql(&s)) {
        problems.add(
            format!("GET {path} (QueryRowContext with the request context): a SQL span in its trace"),
            describe(&in_trace),
        );
    }
    if !spans.iter().any(|s| s.name.to_ascii_lowercase().contains("migrat")) {
        problems.add(
            "migrations are recorded as spans (a span naming the migration)",
            format!(
                "no span names a migration; outside the request's trace only {} root sql.* spans, each its own trace (the migrations' statements, unattributed), and the probes' spans",
                others
                    .iter()
                    .filter(|s| is_sql(s) && s.parent_span_id.is_none())
                    .count()
            ),
        );
    }
    problems.finish()
}
