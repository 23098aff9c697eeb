//! GoFr's TRC clauses (gofr.md §1.6): when tracing is on, where spans go, the resource, sampling,
//! trace context and correlation IDs, SQL spans, exporter headers, and three observed behaviours
//! (the span tree of v1.56.6, export timing, an unsupported exporter).
//!
//! GoFr exports OTLP over gRPC only, so every scenario points `TRACER_URL` at the receiver's gRPC
//! listener (the profile's base environment already sets a 200 ms batch delay). Sampling is
//! judged with a sentinel: once a later sampled request's span has arrived, the batch processor
//! has exported everything that ended before it, so an absent span is really absent. Cases with
//! nothing to export at all (tracing off, an unknown exporter) wait the module's stated window
//! after the request's own log line. An `http://` `TRACER_URL` is a documented form (GR-TRC-11),
//! so its spans are awaited like any promised export. The header cases are a table run
//! in one loop. This file holds the clause list and the exporter configuration clauses; the
//! clauses about what is traced (sampling, propagation, span tree, SQL) are in `gofr_spans.rs`.

use std::time::Instant;

use harness::redact;
use harness::service::otlp::{ReceivedSpan, Transport};
use harness::timeouts;
use harness::timeouts::LOG_LINE;
use harness::verdict::{Failure, Level};

use super::gofr_app::{HELLO, correlation, log_line};
use super::*;
use engine::check;
use engine::clause::{Clause, DocRef, Knob, Needs, Service};
use engine::cx::Cx;

/// GoFr's TRC clauses.
pub(super) fn clauses() -> Vec<Clause> {
    const PROD: &str = "guides/production-tracing";
    vec![
        Clause {
            id: "GR-TRC-1",
            level: Level::Must,
            promise: "Tracing is off unless TRACE_EXPORTER is set (debug log `tracing is disabled, as configs are not provided` when neither it nor TRACER_URL is); with TRACE_EXPORTER=otlp and TRACER_URL it logs `Exporting traces to otlp at <url>` and exports.",
            doc: DocRef::at(PROD, "Configuration"),
            method: "Boot four times: nothing set (LOG_LEVEL=DEBUG, look for the log line); only TRACER_URL (GET /hello, then no span may arrive within the stated window); only TRACE_EXPORTER (the app serves; its log is recorded); both (the log line, and /hello's span arrives). Exporter name upper-cased is recorded.",
            needs: Needs {
                services: &[Service::Otlp],
                ..Needs::NONE
            },
            check: check!(enablement),
        },
        Clause {
            id: "GR-TRC-2",
            level: Level::Must,
            promise: "TRACE_EXPORTER=otlp with TRACER_URL as a bare host:port delivers spans to an OTLP collector over gRPC, in plaintext.",
            doc: DocRef::at(PROD, "Set TRACER_URL"),
            method: "TRACER_URL=127.0.0.1:<receiver gRPC port>; GET /hello; its span must arrive through the gRPC listener.",
            needs: Needs {
                services: &[Service::Otlp],
                ..Needs::NONE
            },
            check: check!(grpc_bare_host_port),
        },
        Clause {
            id: "GR-TRC-3",
            level: Level::Must,
            promise: "Exported spans carry the resource attribute service.name = APP_NAME.",
            doc: DocRef::at(PROD, "Production tips"),
            method: "APP_NAME set to a generated name; GET /hello; every span's resource service.name must equal it. OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES are then set too and what wins is recorded.",
            needs: Needs {
                services: &[Service::Otlp],
                ..Needs::NONE
            },
            check: check!(service_name),
        },
        Clause {
            id: "GR-TRC-4",
            level: Level::Must,
            promise: "The sampler is ParentBased(TraceIDRatioBased(TRACER_RATIO)), default 1: ratio 0 exports no new trace, an upstream sampling decision is honoured either way, and an unusable ratio leaves the default.",
            doc: DocRef::at(PROD, "Configuration"),
            method: "Per TRACER_RATIO (0, 1, abc) one boot: GET /hello without a traceparent and with sampled or unsampled ones, then a sampled sentinel; once the sentinel's span arrived, each request's trace (its X-Correlation-ID or traceparent) must be exported or not as documented.",
            needs: Needs {
                services: &[Service::Otlp],
                ..Needs::NONE
            },
            check: check!(super::gofr_spans::sampling),
        },
        Clause {
            id: "GR-TRC-5",
            level: Level::Must,
            promise: "W3C traceparent is honoured on incoming requests (spans continue the trace), and every response carries X-Correlation-ID, the trace ID.",
            doc: DocRef::at("guides/distributed-tracing", "What GoFr propagates"),
            method: "GET /hello with a sampled traceparent: spans in that trace, one a child of the upstream span, X-Correlation-ID equal to it. Without one: X-Correlation-ID is 32 hex and is the exported span's trace id; 404 and 500 responses carry it too; with tracing off it is still set.",
            needs: Needs {
                services: &[Service::Otlp],
                ..Needs::NONE
            },
            check: check!(super::gofr_spans::propagation),
        },
        Clause {
            id: "GR-TRC-6",
            level: Level::Info,
            promise: "Observed: the span tree of one request in v1.56.6 (names, kinds, scopes, parents), with and without an incoming traceparent.",
            doc: DocRef::at("guides/distributed-tracing", "Common gotchas"),
            method: "GET the parameterised route without and with a traceparent, then a sentinel; record every span of both traces.",
            needs: Needs {
                services: &[Service::Otlp],
                knobs: &[Knob::ParamEndpoint],
                ..Needs::NONE
            },
            check: check!(super::gofr_spans::span_tree),
        },
        Clause {
            id: "GR-TRC-7",
            level: Level::Must,
            promise: "Datasource operations are traced: a handler's context-aware SQL query produces a span in the request's trace, and migrations are recorded as spans.",
            doc: DocRef::at(PROD, "What GoFr traces automatically"),
            method: "Boot on a fresh SQLite file (migrations run); GET the parameterised route (QueryRowContext with the request context) with a traceparent; after a sentinel, expect a SQL span in that trace and a span for the migrations.",
            needs: Needs {
                services: &[Service::Otlp],
                knobs: &[Knob::ParamEndpoint],
                ..Needs::NONE
            },
            check: check!(super::gofr_spans::sql_spans),
        },
        Clause {
            id: "GR-TRC-8",
            level: Level::Info,
            promise: "Observed: OTEL_BSP_SCHEDULE_DELAY paces the export, and whether OTEL_EXPORTER_OTLP_HEADERS reaches the collector.",
            doc: DocRef::at(PROD, "Configuration"),
            method: "200 ms batch delay and OTEL_EXPORTER_OTLP_HEADERS=x-conform-otel=on; GET /hello; record the time until its span arrived and the export's metadata.",
            needs: Needs {
                services: &[Service::Otlp],
                ..Needs::NONE
            },
            check: check!(export_timing),
        },
        Clause {
            id: "GR-TRC-9",
            level: Level::Must,
            promise: "TRACER_HEADERS (`K1=v1,K2=v2`) are sent as exporter headers, TRACER_AUTH_KEY as the Authorization header, and TRACER_HEADERS takes priority over TRACER_AUTH_KEY.",
            doc: DocRef::at("references/configs", "TRACER_HEADERS"),
            method: "Three boots (headers; auth key; both, with an Authorization in TRACER_HEADERS); GET /hello; the gRPC export's metadata must carry the documented headers.",
            needs: Needs {
                services: &[Service::Otlp],
                ..Needs::NONE
            },
            check: check!(exporter_headers),
        },
        Clause {
            id: "GR-TRC-10",
            level: Level::Info,
            promise: "Observed: an unsupported TRACE_EXPORTER with TRACER_URL set: the app keeps serving and exports nothing.",
            doc: DocRef::at("references/configs", "TRACE_EXPORTER"),
            method: "TRACE_EXPORTER=conform-unsupported and TRACER_URL at the receiver; GET /hello; record the error log and whether any span arrives within the stated window.",
            needs: Needs {
                services: &[Service::Otlp],
                ..Needs::NONE
            },
            check: check!(unsupported_exporter),
        },
        Clause {
            id: "GR-TRC-11",
            level: Level::Must,
            promise: "TRACER_URL may be an endpoint URL as well as host:port: TRACE_EXPORTER=otlp with TRACER_URL=http://host:port delivers spans to the OTLP collector there.",
            doc: DocRef::at("guides/distributed-tracing", "Configuration"),
            method: "TRACER_URL=http://127.0.0.1:<receiver gRPC port> (the URL form of GR-TRC-2's address); GET /hello with a sampled traceparent; its spans must arrive. The startup log line is recorded.",
            needs: Needs {
                services: &[Service::Otlp],
                ..Needs::NONE
            },
            check: check!(endpoint_url),
        },
    ]
}

/// The first line containing `text`, waiting up to [`timeouts::OUTPUT_DRAIN`] for it: a line the
/// boot printed before the app answered its probe can still be in the pipe, behind the reader
/// (seen on a loaded machine: GR-TRC-1's debug line missed once in ten runs when read at once).
/// For lines a clause grades; a line only noted is read at once with [`log_line`].
async fn wait_log_line(app: &App, text: &str) -> Option<String> {
    app.running
        .output()
        .wait_for_line(&format!("containing {text:?}"), timeouts::OUTPUT_DRAIN, |l| {
            l.text.contains(text)
        })
        .await
        .ok()
        .map(|l| l.plain())
}

/// Wait for GoFr's request log line for `path`: the request has been handled and its spans ended.
async fn request_logged(app: &App, path: &str) -> Result<(), Failure> {
    let needle = format!("\"uri\":\"{path}\"");
    app.running
        .output()
        .wait_for_line(&format!("logging the {path} request"), LOG_LINE, |l| {
            l.text.contains(&needle)
        })
        .await
        .map(drop)
        .map_err(|e| {
            Failure::harness(format!(
                "no request log line for {path}, so the window cannot start: {e}"
            ))
        })
}

/// `GET /hello` with a sampled `traceparent` of the harness's own, and wait for the spans of
/// that request: the proof that this request, not the boot's probes, was exported. Its trace is
/// the one sent or, should the candidate not continue it, the one its X-Correlation-ID names;
/// accepting either keeps a broken propagation (GR-TRC-5's to catch) from hiding the export
/// these clauses grade.
async fn hello_spans(cx: &mut Cx, t: &Traced, what: &str) -> Result<Vec<ReceivedSpan>, Failure> {
    let parent = TraceParent::new(true)?;
    let ex = get(cx, &t.app, HELLO, Some(&parent)).await?;
    let mut ids = vec![parent.trace_id.clone()];
    ids.extend(correlation(&ex).filter(|c| *c != parent.trace_id));
    let ours = |s: &ReceivedSpan| ids.contains(&s.trace_id);
    let spans = expect_spans(
        &t.receiver,
        &format!("GET /hello's spans (trace {}) {what}", ids.join(" or ")),
        |s| s.iter().any(ours),
    )
    .await?;
    Ok(spans.into_iter().filter(ours).collect())
}

async fn enablement(cx: &mut Cx) -> Result<(), Failure> {
    let mut problems = Problems::default();

    let off = boot_traced(cx, None, Delivery::WhileRunning, |spec, _| {
        spec.set("LOG_LEVEL", "DEBUG");
    })
    .await?;
    let disabled = "tracing is disabled, as configs are not provided";
    match wait_log_line(&off.app, disabled).await {
        Some(line) => cx.note("nothing set", line),
        None => problems.add(
            format!("with neither variable set, the debug log line {disabled:?}"),
            "no such line",
        ),
    }
    drop(off);

    let url_only = boot_traced(cx, None, Delivery::WhileRunning, |spec, r| {
        spec.set("TRACER_URL", r.grpc_addr().to_string());
    })
    .await?;
    get(cx, &url_only.app, HELLO, None).await?;
    request_logged(&url_only.app, HELLO).await?;
    cx.note(
        "only TRACER_URL: log",
        log_line(&url_only.app, "TRACE_EXPORTER").unwrap_or("(none)".into()),
    );
    if let Some(spans) = any_within_window(cx, &url_only.receiver, "only TRACER_URL set", |_| true).await {
        problems.add(
            "only TRACER_URL set: tracing stays off (TRACE_EXPORTER is required)",
            describe(&spans),
        );
    }
    drop(url_only);

    let exporter_only = boot_traced(cx, None, Delivery::WhileRunning, |spec, _| {
        spec.set("TRACE_EXPORTER", "otlp");
    })
    .await?;
    cx.note(
        "only TRACE_EXPORTER: serves; log",
        log_line(&exporter_only.app, "TRACER_URL").unwrap_or("(none)".into()),
    );
    drop(exporter_only);

    let on = boot_traced(cx, Some(Transport::Grpc), Delivery::WhileRunning, |_, _| {}).await?;
    let url = on.receiver.grpc_addr().to_string();
    let expected_log = format!("Exporting traces to otlp at {url}");
    match wait_log_line(&on.app, &expected_log).await {
        Some(line) => cx.note("otlp + TRACER_URL", line),
        None => problems.add(format!("with both set, the log line {expected_log:?}"), "no such line"),
    }
    let asked = Instant::now();
    match hello_spans(cx, &on, "with TRACE_EXPORTER=otlp").await {
        Ok(_) => cx.note(
            "otlp + TRACER_URL: GET /hello's spans arrived after",
            format!("{:?}", asked.elapsed()),
        ),
        Err(Failure::Violation(v)) => problems.add(v.expected, v.actual),
        Err(e) => return Err(e),
    }
    drop(on);

    let upper = boot_traced(cx, Some(Transport::Grpc), Delivery::WhileRunning, |spec, _| {
        spec.set("TRACE_EXPORTER", "OTLP");
    })
    .await?;
    let seen = hello_spans(cx, &upper, "with TRACE_EXPORTER=OTLP").await;
    cx.note(
        "TRACE_EXPORTER=OTLP (upper case)",
        match seen {
            Ok(s) => format!("exports ({} spans)", s.len()),
            Err(e) => format!("no export: {e:?}"),
        },
    );
    problems.finish()
}

async fn grpc_bare_host_port(cx: &mut Cx) -> Result<(), Failure> {
    let bare = boot_traced(cx, Some(Transport::Grpc), Delivery::WhileRunning, |_, _| {}).await?;
    let spans = hello_spans(cx, &bare, "at the gRPC listener").await?;
    // The set, not one entry per export: how many exports carry the spans is the batcher's
    // timing, the content type is the transport.
    let types: std::collections::BTreeSet<String> =
        bare.receiver.exports().iter().map(|e| e.content_type.clone()).collect();
    cx.note("export content types", types.into_iter().collect::<Vec<_>>().join(", "));
    if let Some(other) = spans.iter().find(|s| s.transport != Transport::Grpc) {
        return Err(Failure::violation(
            "spans arrive over OTLP/gRPC",
            format!("{:?}", other.transport),
        ));
    }
    Ok(())
}

/// GR-TRC-11: the same receiver as GR-TRC-2, named by an endpoint URL. The URL names the gRPC
/// listener, the only transport GoFr's `otlp` exporter speaks (GR-TRC-2), so any span arriving
/// there is the export the docs promise.
async fn endpoint_url(cx: &mut Cx) -> Result<(), Failure> {
    let t = boot_traced(cx, None, Delivery::WhileRunning, |spec, r| {
        spec.set("TRACE_EXPORTER", "otlp");
        spec.set("TRACER_URL", r.grpc_endpoint());
    })
    .await?;
    cx.note("TRACER_URL", t.receiver.grpc_endpoint());
    cx.note(
        "startup log",
        log_line(&t.app, "Exporting traces").unwrap_or("(none)".into()),
    );
    hello_spans(cx, &t, "with TRACER_URL=http://host:port").await?;
    Ok(())
}

async fn service_name(cx: &mut Cx) -> Result<(), Failure> {
    let name = format!("conform-svc-{}", random_hex(3)?);
    let app_name = name.clone();
    let t = boot_traced(cx, Some(Transport::Grpc), Delivery::WhileRunning, move |spec, _| {
        spec.set("APP_NAME", app_name.clone());
    })
    .await?;
    let spans = hello_spans(cx, &t, "to arrive").await?;
    cx.note(
        "resource",
        serde_json::to_string(&spans[0].resource).unwrap_or_default(),
    );
    if let Some(bad) = spans.iter().find(|s| s.service_name() != Some(name.as_str())) {
        return Err(Failure::violation(
            format!("every span's resource service.name = APP_NAME ({name:?})"),
            format!("{:?} on span {:?}", bad.service_name(), bad.name),
        ));
    }
    drop(t);

    let app_name = name.clone();
    let t = boot_traced(cx, Some(Transport::Grpc), Delivery::WhileRunning, move |spec, _| {
        spec.set("APP_NAME", app_name.clone());
        spec.set("OTEL_SERVICE_NAME", "conform-otel-service-name");
        spec.set(
            "OTEL_RESOURCE_ATTRIBUTES",
            "service.name=conform-resource-attr,conform.probe=yes",
        );
    })
    .await?;
    if let Ok(spans) = hello_spans(cx, &t, "with OTEL_* resource variables").await {
        cx.note(
            "with OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES also set",
            serde_json::to_string(&spans[0].resource).unwrap_or_default(),
        );
    }
    Ok(())
}

async fn export_timing(cx: &mut Cx) -> Result<(), Failure> {
    let t = boot_traced(cx, Some(Transport::Grpc), Delivery::WhileRunning, |spec, _| {
        spec.set("OTEL_EXPORTER_OTLP_HEADERS", "x-conform-otel=on");
    })
    .await?;
    let ex = get(cx, &t.app, HELLO, None).await?;
    let asked = Instant::now();
    let id = correlation(&ex).unwrap_or_default();
    let arrived = expect_spans(&t.receiver, "GET /hello's span", |s| s.iter().any(|s| s.trace_id == id)).await;
    cx.note(
        format!("{BATCH_DELAY_ENV}={QUICK_BATCH_DELAY}: span arrived after"),
        match arrived {
            Ok(_) => format!("{:?}", asked.elapsed()),
            Err(e) => format!("never: {e:?}"),
        },
    );
    let headers = t
        .receiver
        .exports()
        .first()
        .map(|e| e.headers.clone())
        .unwrap_or_default();
    cx.note(
        "OTEL_EXPORTER_OTLP_HEADERS x-conform-otel in the export",
        headers.get("x-conform-otel").map_or("(absent)", String::as_str),
    );
    Ok(())
}

/// Why GR-TRC-9 talks to the receiver directly even under `--collector real`: it grades the
/// metadata of the candidate's own export request, and a collector sends its own requests (the
/// core distribution forwards no client metadata; the contrib `headers_setter` extension that
/// could is not served by the module proxy here, see fixtures/collector/builder-config.yaml).
const HEADERS_NOT_FORWARDED: &str =
    "the clause grades the candidate's own export metadata, which a collector does not forward";

/// One TRACER_HEADERS case: the variables set, and the headers the export must carry.
type HeaderCase<'a> = (Vec<(&'static str, String)>, Vec<(&'static str, &'a str)>);

async fn exporter_headers(cx: &mut Cx) -> Result<(), Failure> {
    let key = format!("Bearer {}", redact::new_secret(24)?);
    let from_headers = format!("Bearer {}", redact::new_secret(24)?);
    // (variables set, headers the export must carry).
    let cases: [HeaderCase; 3] = [
        (
            vec![("TRACER_HEADERS", "X-Conform-One=1,X-Conform-Two=two".into())],
            vec![("x-conform-one", "1"), ("x-conform-two", "two")],
        ),
        (
            vec![("TRACER_AUTH_KEY", key.clone())],
            vec![("authorization", key.as_str())],
        ),
        (
            vec![
                (
                    "TRACER_HEADERS",
                    format!("X-Conform-One=1,Authorization={from_headers}"),
                ),
                ("TRACER_AUTH_KEY", key.clone()),
            ],
            vec![("x-conform-one", "1"), ("authorization", from_headers.as_str())],
        ),
    ];
    let mut problems = Problems::default();
    for (vars, want) in &cases {
        let set = vars.clone();
        let sink = cx.otlp_direct(HEADERS_NOT_FORWARDED).await?;
        let t = boot_traced_at(
            cx,
            sink,
            Some(Transport::Grpc),
            Delivery::WhileRunning,
            move |spec, _| {
                for (k, v) in &set {
                    spec.set(k, v.clone());
                }
            },
        )
        .await?;
        let names: Vec<&str> = vars.iter().map(|(k, _)| *k).collect();
        hello_spans(cx, &t, "to arrive").await?;
        let export = t
            .receiver
            .exports()
            .into_iter()
            .find(|e| e.span_count > 0)
            .map(|e| e.headers)
            .unwrap_or_default();
        for (header, value) in want {
            let got = export.get(*header);
            if got.map(String::as_str) != Some(*value) {
                problems.add(
                    format!(
                        "with {}: export header {header}: {}",
                        names.join(" + "),
                        redact::text(value)
                    ),
                    got.map_or("(absent)".into(), |g| redact::text(g)),
                );
            }
        }
        let shown: Vec<String> = export
            .keys()
            .filter(|k| k.starts_with("x-conform") || *k == "authorization")
            .cloned()
            .collect();
        cx.note(format!("with {}: headers seen", names.join(" + ")), shown.join(", "));
    }
    problems.finish()
}

async fn unsupported_exporter(cx: &mut Cx) -> Result<(), Failure> {
    let t = boot_traced(cx, None, Delivery::WhileRunning, |spec, r| {
        spec.set("TRACE_EXPORTER", "conform-unsupported");
        spec.set("TRACER_URL", r.grpc_addr().to_string());
    })
    .await?;
    cx.note("log", log_line(&t.app, "TRACE_EXPORTER").unwrap_or("(none)".into()));
    let ex = get(cx, &t.app, HELLO, None).await?;
    cx.note("GET /hello", ex.summary());
    request_logged(&t.app, HELLO).await?;
    let seen = any_within_window(cx, &t.receiver, "an unsupported exporter", |_| true).await;
    cx.note("spans", seen.map_or("none within the window".into(), |s| describe(&s)));
    Ok(())
}
