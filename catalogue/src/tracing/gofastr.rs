//! GoFastr's TRACE clauses (gofastr.md §I): the span `WithTracing()` opens around every request,
//! W3C context extraction, the absence of any OTLP configuration in the framework itself, and
//! two observed behaviours (probes traced, response header injection).
//!
//! GoFastr has no exporter of its own, so these clauses grade the framework's spans as exported
//! by the candidate's app-installed OTel SDK provider (observability.md › Exporting traces), over
//! HTTP/protobuf in GF-TRACE-1 and gRPC in the others. GF-TRACE-1 also grades the flush at
//! shutdown: its spans are held back by a ten-minute batch delay, so they can only reach the
//! receiver through the `TracerProvider.Shutdown` the candidate calls from `OnStop`.

use harness::service::otlp::{AttrValue, ReceivedSpan, SpanKind, SpanStatus, Transport};
use harness::verdict::{Failure, Level};

use super::*;
use engine::check;
use engine::clause::{Clause, DocRef, Knob, Needs, Service};
use engine::cx::Cx;

/// The page every GoFastr tracing promise is on.
const PAGE: &str = "observability.md";

/// GoFastr's TRACE clauses.
pub(super) fn clauses() -> Vec<Clause> {
    vec![
        Clause {
            id: "GF-TRACE-1",
            level: Level::Must,
            promise: "Each request produces one SERVER span named `HTTP {method} {route}` (e.g. `HTTP GET /api/posts/{id}`) with http.method, http.route (the matched pattern), http.status_code and http.target; status >= 500 sets span status Error; spans buffered by the batcher are flushed at shutdown (OnStop -> TracerProvider.Shutdown).",
            doc: DocRef::at(PAGE, "Span shape"),
            method: "OTLP/HTTP to the harness receiver with a ten-minute batch delay; GET the parameterised route, the 500 route and an unknown path; SIGTERM; once the process has exited, every request's span must have arrived (the flush) and carry the documented name, kind, attributes and status.",
            needs: Needs {
                services: &[Service::Otlp],
                knobs: &[Knob::ParamEndpoint, Knob::ErrorEndpoint],
                ..Needs::NONE
            },
            check: check!(span_shape),
        },
        Clause {
            id: "GF-TRACE-2",
            level: Level::Must,
            promise: "An incoming W3C traceparent is extracted: the request's span continues that trace as a child of the upstream span.",
            doc: DocRef::at(PAGE, "Span shape"),
            method: "OTLP/gRPC to the harness receiver; GET the parameterised route with a generated sampled traceparent; wait for the spans of that trace; one must be the SERVER span whose parent is the upstream span id.",
            needs: Needs {
                services: &[Service::Otlp],
                knobs: &[Knob::ParamEndpoint],
                ..Needs::NONE
            },
            check: check!(continues_traceparent),
        },
        Clause {
            id: "GF-TRACE-3",
            level: Level::Must,
            promise: "The framework exports nothing by itself: without an app-installed TracerProvider no span leaves the process, whatever OTEL_* says.",
            doc: DocRef::at(PAGE, "Exporting traces to a collector (OTLP)"),
            method: "OTEL_EXPORTER_OTLP_ENDPOINT and _PROTOCOL point at the harness receiver, but the candidate's tracer_off_env knob keeps its provider out; make requests, SIGTERM, and once the process has exited expect no export request and no span.",
            needs: Needs {
                services: &[Service::Otlp],
                knobs: &[Knob::TracerOffEnv, Knob::ParamEndpoint],
                ..Needs::NONE
            },
            check: check!(no_export_without_provider),
        },
        Clause {
            id: "GF-TRACE-4",
            level: Level::Info,
            promise: "Observed: whether the probes and /metrics produce spans (they run inside the default middleware chain, GF-HEALTH-5).",
            doc: DocRef::at(PAGE, "Span shape"),
            method: "OTLP/gRPC; GET liveness, readiness and /metrics, then a sampled sentinel request; once the sentinel's span arrived, record the spans of the three paths.",
            needs: Needs {
                services: &[Service::Otlp],
                knobs: &[Knob::ParamEndpoint],
                ..Needs::NONE
            },
            check: check!(probes_traced),
        },
        Clause {
            id: "GF-TRACE-5",
            level: Level::Info,
            promise: "Observed: whether responses carry an injected traceparent (the middleware injects after the handler has written).",
            doc: DocRef::at(PAGE, "Span shape"),
            method: "OTLP/gRPC; GET the parameterised route with a sampled traceparent and the 500 route without; record the traceparent and tracestate response headers.",
            needs: Needs {
                services: &[Service::Otlp],
                knobs: &[Knob::ParamEndpoint, Knob::ErrorEndpoint],
                ..Needs::NONE
            },
            check: check!(response_injection),
        },
    ]
}

/// The span whose `http.target` is `path`.
fn span_for<'a>(spans: &'a [ReceivedSpan], path: &str) -> Option<&'a ReceivedSpan> {
    spans
        .iter()
        .find(|s| s.attr("http.target").and_then(AttrValue::as_str) == Some(path))
}

/// The candidate's 500 route, or a harness error.
fn error_path(cx: &Cx) -> Result<String, Failure> {
    cx.knob(Knob::ErrorEndpoint)
}

async fn span_shape(cx: &mut Cx) -> Result<(), Failure> {
    let template = param_template(cx)?;
    let boom = error_path(cx)?;
    let unknown = format!("/conform-unknown-{}", random_hex(4)?);
    // (path requested, route template it should match; None for a path no route declares).
    let cases = [
        (fill(&template, "42"), Some(template.clone())),
        (boom.clone(), Some(boom)),
        (unknown, None),
    ];
    let mut traced = boot_traced(cx, Some(Transport::HttpProtobuf), Delivery::AtShutdown, |_, _| {}).await?;
    let mut statuses = Vec::new();
    for (path, _) in &cases {
        let ex = get(cx, &traced.app, path, None).await?;
        statuses.push(
            ex.status()
                .ok_or_else(|| Failure::violation(format!("GET {path} answers"), ex.summary()))?,
        );
    }
    cx.note(
        "spans received before SIGTERM (batch delay held at ten minutes)",
        traced.receiver.spans().len(),
    );
    stop(cx, &mut traced.app).await?;
    let spans = traced.receiver.spans();
    cx.note("spans received by the exit", describe(&spans));
    let flushed = cases.iter().filter(|(p, _)| span_for(&spans, p).is_some()).count();
    cx.note(
        "flush at shutdown",
        format!(
            "{flushed} of {} requests' spans arrived between SIGTERM and the exit",
            cases.len()
        ),
    );

    let mut problems = Problems::default();
    for ((path, route), status) in cases.iter().zip(statuses) {
        let Some(span) = span_for(&spans, path) else {
            problems.add(
                format!("the span of GET {path} reaches the collector by the time the process exited (OnStop flushes the batcher)"),
                format!("no span with http.target={path:?} ({} spans received)", spans.len()),
            );
            continue;
        };
        let got_route = span.attr("http.route").and_then(AttrValue::as_str).unwrap_or("");
        match route {
            Some(route) => {
                let name = format!("HTTP GET {route}");
                if span.name != name {
                    problems.add(format!("GET {path}: span name {name:?}"), format!("{:?}", span.name));
                }
                let patterns = [route.clone(), format!("GET {route}")];
                if !patterns.iter().any(|p| p == got_route) {
                    problems.add(
                        format!("GET {path}: http.route is the matched pattern ({patterns:?})"),
                        format!("{got_route:?}"),
                    );
                }
            }
            None => {
                // Whatever pattern (or "unmatched") the router reports, the name is built from it.
                cx.note(
                    format!("GET {path} (no declared route)"),
                    format!("name {:?}, http.route {got_route:?}", span.name),
                );
            }
        }
        if span.kind != SpanKind::Server {
            problems.add(format!("GET {path}: span kind SERVER"), format!("{:?}", span.kind));
        }
        if span.attr("http.method").and_then(AttrValue::as_str) != Some("GET") {
            problems.add(
                format!("GET {path}: http.method \"GET\""),
                format!("{:?}", span.attr("http.method")),
            );
        }
        if span.attr("http.status_code").and_then(AttrValue::as_i64) != Some(i64::from(status)) {
            problems.add(
                format!("GET {path}: http.status_code {status} (the response's status)"),
                format!("{:?}", span.attr("http.status_code")),
            );
        }
        let error = span.status == SpanStatus::Error;
        if error != (status >= 500) {
            problems.add(
                format!("GET {path} answered {status}: span status Error exactly when the status is >= 500"),
                format!("{:?} {:?}", span.status, span.status_message),
            );
        }
        cx.note(format!("GET {path}: scope"), &span.scope_name);
    }
    problems.finish()
}

async fn continues_traceparent(cx: &mut Cx) -> Result<(), Failure> {
    let path = fill(&param_template(cx)?, "42");
    let seen = continued(cx, Transport::Grpc, &path).await?;
    let child = seen
        .spans
        .iter()
        .find(|s| s.parent_span_id.as_deref() == Some(seen.parent.span_id.as_str()))
        .ok_or_else(|| Failure::harness("continued() returned without the child span"))?;
    cx.note("response", seen.response.summary());
    if child.kind != SpanKind::Server {
        return Err(Failure::violation(
            "the request's span, child of the upstream span, is a SERVER span",
            describe(std::slice::from_ref(child)),
        ));
    }
    drop(seen.traced);
    Ok(())
}

async fn no_export_without_provider(cx: &mut Cx) -> Result<(), Failure> {
    let off = cx.knob(Knob::TracerOffEnv)?;
    let path = fill(&param_template(cx)?, "42");
    let liveness = cx.profile().liveness;
    let mut traced = boot_traced(cx, Some(Transport::HttpProtobuf), Delivery::WhileRunning, |spec, _| {
        spec.set(&off, "1");
    })
    .await?;
    cx.note("app tracer provider", format!("left out ({off}=1)"));
    for p in [path.as_str(), liveness] {
        let parent = TraceParent::new(true)?;
        get(cx, &traced.app, p, Some(&parent)).await?;
    }
    // The exit bounds the wait: anything buffered anywhere in the process is flushed or lost.
    stop(cx, &mut traced.app).await?;
    let (exports, spans) = (traced.receiver.exports(), traced.receiver.spans());
    cx.note("export requests received by the exit", exports.len());
    if exports.is_empty() && spans.is_empty() {
        Ok(())
    } else {
        Err(Failure::violation(
            "with OTEL_EXPORTER_OTLP_* set but no app-installed provider, nothing is exported",
            format!("{} export requests; spans: {}", exports.len(), describe(&spans)),
        ))
    }
}

async fn probes_traced(cx: &mut Cx) -> Result<(), Failure> {
    let profile = cx.profile();
    let sentinel = fill(&param_template(cx)?, "42");
    let traced = boot_traced(cx, Some(Transport::Grpc), Delivery::WhileRunning, |_, _| {}).await?;
    let paths = [profile.liveness, profile.readiness, profile.metrics_path];
    for p in paths {
        get(cx, &traced.app, p, None).await?;
    }
    let spans = settle(cx, &traced, &sentinel).await?;
    for p in paths {
        let seen = span_for(&spans, p).map_or("no span".to_string(), |s| describe(std::slice::from_ref(s)));
        cx.note(format!("GET {p}"), seen);
    }
    Ok(())
}

async fn response_injection(cx: &mut Cx) -> Result<(), Failure> {
    let path = fill(&param_template(cx)?, "42");
    let boom = error_path(cx)?;
    let traced = boot_traced(cx, Some(Transport::Grpc), Delivery::WhileRunning, |_, _| {}).await?;
    let parent = TraceParent::new(true)?;
    for (p, tp) in [(path.as_str(), Some(&parent)), (boom.as_str(), None)] {
        let ex = get(cx, &traced.app, p, tp).await?;
        for h in ["traceparent", "tracestate"] {
            cx.note(
                format!("GET {p} (status {:?}): response header {h}", ex.status()),
                ex.header(h).unwrap_or("(absent)"),
            );
        }
    }
    Ok(())
}
