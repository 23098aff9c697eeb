//! The Go OTLP exporter fixture (`fixtures/selftest/otlp-exporter`, the real OpenTelemetry Go
//! SDK), shared by the receiver's and the collector's integration tests: built once per test
//! binary, run once per span, and the checks every span it sends must pass.
//!
//! Included with `#[path]` by each test crate, so each uses what it needs.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use harness::service::otlp::{AttrValue, OtlpReceiver, OtlpSink, ReceivedSpan, SpanKind, SpanStatus, Transport};
use harness::timeouts;
use tokio::sync::OnceCell;

/// Bound on one run of the exporter: start, export one span, flush, exit. Takes milliseconds.
const EXPORTER_RUN: Duration = Duration::from_secs(30);
/// Bound on a span showing up after its exporter has exited (it flushed first, so it is there).
pub(crate) const ARRIVAL: Duration = Duration::from_secs(10);

pub(crate) const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
pub(crate) const PARENT_ID: &str = "00f067aa0ba902b7";

static EXPORTER: OnceCell<PathBuf> = OnceCell::const_new();

/// Build the Go exporter fixture once per test binary, into cargo's per-target temp dir.
pub(crate) async fn exporter() -> &'static Path {
    EXPORTER
        .get_or_init(|| async {
            let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/selftest/otlp-exporter");
            let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("otlp-exporter");
            assert!(
                src.join("go.mod").is_file(),
                "the OTLP exporter fixture is missing: no go.mod in {}",
                src.display()
            );
            let started = Instant::now();
            let build = tokio::process::Command::new("go")
                .args(["build", "-trimpath", "-o"])
                .arg(&out)
                .arg(".")
                .current_dir(&src)
                .env("GOTOOLCHAIN", "local")
                .env("CGO_ENABLED", "0")
                .env("GOFLAGS", "-mod=readonly")
                .stdin(Stdio::null())
                .kill_on_drop(true)
                .output();
            let output = match tokio::time::timeout(timeouts::GO_BUILD, build).await {
                Err(_) => panic!(
                    "`go build` of {} did not finish within {:?}",
                    src.display(),
                    timeouts::GO_BUILD
                ),
                Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => panic!(
                    "the Go toolchain (`go`, 1.26) is not on PATH: it is required to build the OTLP \
                     exporter fixture {} that these tests run; install Go and retry",
                    src.display()
                ),
                Ok(Err(e)) => panic!("could not run `go build` in {}: {e}", src.display()),
                Ok(Ok(output)) => output,
            };
            assert!(
                output.status.success(),
                "`go build` of {} failed ({}):\n{}",
                src.display(),
                output.status,
                String::from_utf8_lossy(&output.stderr)
            );
            eprintln!("built the Go OTLP exporter fixture in {:?}", started.elapsed());
            out
        })
        .await
}

/// One run of the Go exporter, with exactly this environment.
pub(crate) async fn run_exporter(span_name: &str, env: &[(&str, String)]) {
    let exe = exporter().await;
    let mut cmd = tokio::process::Command::new(exe);
    cmd.arg(span_name)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let output = tokio::time::timeout(EXPORTER_RUN, cmd.output())
        .await
        .unwrap_or_else(|_| panic!("the Go exporter did not exit within {EXPORTER_RUN:?}"))
        .expect("running the Go exporter");
    assert!(
        output.status.success(),
        "the Go exporter failed ({}):\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

pub(crate) async fn wait_for_name(rx: &OtlpReceiver, name: &str) -> ReceivedSpan {
    let spans = rx
        .wait_for_spans(&format!("a span named {name:?}"), ARRIVAL, |spans| {
            spans.iter().any(|s| s.name == name)
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    spans
        .into_iter()
        .find(|s| s.name == name)
        .expect("the predicate saw it")
}

pub(crate) fn assert_go_span(span: &ReceivedSpan, transport: Transport, service: &str) {
    assert_eq!(span.kind, SpanKind::Server, "{span:#?}");
    assert_eq!(span.scope_name, "conform.example/selftest");
    assert_eq!(span.scope_version, "1.2.3");
    assert_eq!(span.service_name(), Some(service), "{:#?}", span.resource);
    assert_eq!(
        span.resource_attr("telemetry.sdk.language"),
        Some(&AttrValue::Str("go".into()))
    );
    assert_eq!(span.status, SpanStatus::Error);
    assert_eq!(span.status_message, "selftest error");
    assert_eq!(span.attr("selftest.str"), Some(&AttrValue::Str("hello".into())));
    assert_eq!(span.attr("selftest.int"), Some(&AttrValue::Int(42)));
    assert_eq!(span.attr("selftest.bool"), Some(&AttrValue::Bool(true)));
    assert_eq!(span.attr("selftest.float"), Some(&AttrValue::Double(1.5)));
    assert_eq!(
        span.attr("selftest.list"),
        Some(&AttrValue::Array(vec![
            AttrValue::Str("a".into()),
            AttrValue::Str("b".into())
        ]))
    );
    assert_eq!(span.trace_id.len(), 32);
    assert_eq!(span.span_id.len(), 16);
    assert!(span.start_unix_nano > 0 && span.end_unix_nano >= span.start_unix_nano);
    assert_eq!(span.transport, transport);
}

/// Export one span continuing TRACEPARENT and one root span (gzip-compressed) through `protocol`
/// to `sink`'s front door (the collector, when it has one), and check both as they arrive at its
/// receiver: names, attributes, resource, scope, status, and trace and span ids intact.
pub(crate) async fn export_pair(sink: &OtlpSink, protocol: &str, transport: Transport) {
    // Build before timing delivery.
    exporter().await;
    let endpoint = match transport {
        Transport::Grpc => sink.grpc_endpoint(),
        _ => sink.http_endpoint(),
    };
    let base = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol.to_string()),
        ("OTEL_SERVICE_NAME", format!("selftest-{protocol}")),
        ("OTEL_EXPORTER_OTLP_HEADERS", "x-conform-test=yes".to_string()),
    ];

    let sent = Instant::now();
    let mut env = base.to_vec();
    env.push(("TRACEPARENT", format!("00-{TRACE_ID}-{PARENT_ID}-01")));
    run_exporter("continued", &env).await;
    let continued = wait_for_name(sink, "continued").await;
    eprintln!(
        "[{protocol}] span delivered {:?} after starting the exporter (start, export, flush, exit)",
        sent.elapsed()
    );
    assert_go_span(&continued, transport, &format!("selftest-{protocol}"));
    assert_eq!(continued.trace_id, TRACE_ID, "the trace in TRACEPARENT is continued");
    assert_eq!(continued.parent_span_id.as_deref(), Some(PARENT_ID));
    assert_ne!(continued.span_id, PARENT_ID);

    let mut env = base.to_vec();
    env.push(("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip".to_string()));
    run_exporter("root", &env).await;
    let root = wait_for_name(sink, "root").await;
    assert_go_span(&root, transport, &format!("selftest-{protocol}"));
    assert_eq!(root.parent_span_id, None, "no TRACEPARENT: a root span");
    assert_ne!(root.trace_id, TRACE_ID);
}
