//! The in-process OTLP receiver against real exporters.
//!
//! The gRPC and HTTP/protobuf cases run `fixtures/selftest/otlp-exporter`, a small Go program on
//! the real OpenTelemetry Go SDK (the same exporters the candidates use), built once per test
//! binary. OTLP/JSON has no Go exporter, so those cases post a body written from the spec with
//! reqwest. Everything is loopback. Go is required: without it these tests fail, they never skip.
#![allow(clippy::disallowed_methods)] // The test builds and runs the Go exporter fixture itself.

#[path = "support/go_exporter.rs"]
mod go_exporter;

use std::time::{Duration, Instant};

use go_exporter::{ARRIVAL, export_pair};
use harness::poll::{self, Poll};
use harness::service::otlp::{AttrValue, OtlpReceiver, OtlpSink, SpanKind, SpanStatus, Transport};
use harness::timeouts;

/// Export one span continuing TRACEPARENT and one root span (gzip-compressed) through `protocol`
/// straight to a receiver, and check both, plus the export records.
async fn go_exporter_round_trip(protocol: &str, transport: Transport) {
    let started = Instant::now();
    let rx = OtlpSink::start(None).await.expect("starting the receiver");
    eprintln!("[{protocol}] receiver started in {:?}", started.elapsed());
    export_pair(&rx, protocol, transport).await;
    assert_eq!(rx.spans().len(), 2, "{:#?}", rx.spans());
    let exports = rx.exports();
    assert_eq!(exports.len(), 2, "{exports:#?}");
    for (record, gzip) in exports.iter().zip([false, true]) {
        assert_eq!(record.transport, transport);
        assert_eq!(record.span_count, 1);
        assert_eq!(record.error, None);
        assert_eq!(
            record.headers.get("x-conform-test").map(String::as_str),
            Some("yes"),
            "OTEL_EXPORTER_OTLP_HEADERS reaches the receiver: {record:#?}"
        );
        assert_eq!(
            record.content_encoding.as_deref(),
            gzip.then_some("gzip"),
            "{record:#?}"
        );
        let want_type = if transport == Transport::Grpc {
            "application/grpc"
        } else {
            "application/x-protobuf"
        };
        assert!(record.content_type.starts_with(want_type), "{record:#?}");
    }
}

#[tokio::test]
async fn go_sdk_export_over_grpc_arrives() {
    go_exporter_round_trip("grpc", Transport::Grpc).await;
}

#[tokio::test]
async fn go_sdk_export_over_http_protobuf_arrives() {
    go_exporter_round_trip("http/protobuf", Transport::HttpProtobuf).await;
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(timeouts::HTTP_REQUEST)
        .build()
        .expect("building an HTTP client")
}

/// An OTLP/JSON request as the spec writes it: hex ids, int64 as strings, enums as integers.
fn otlp_json(name: &str, span_id: &str) -> String {
    serde_json::json!({
        "resourceSpans": [{
            "resource": {"attributes": [
                {"key": "service.name", "value": {"stringValue": "json-svc"}}
            ]},
            "scopeSpans": [{
                "scope": {"name": "json-scope", "version": "9"},
                "spans": [{
                    "traceId": "5b8efff798038103d269b633813fc60c",
                    "spanId": span_id,
                    "parentSpanId": "eee19b7ec3c1b173",
                    "name": name,
                    "kind": 2,
                    "startTimeUnixNano": "1544712660000000000",
                    "endTimeUnixNano": "1544712661000000000",
                    "attributes": [
                        {"key": "http.request.method", "value": {"stringValue": "GET"}},
                        {"key": "http.response.status_code", "value": {"intValue": "200"}}
                    ],
                    "status": {"code": 1}
                }]
            }]
        }]
    })
    .to_string()
}

async fn post(url: &str, content_type: &str, encoding: Option<&str>, body: Vec<u8>) -> reqwest::Response {
    let mut req = client().post(url).header("content-type", content_type).body(body);
    if let Some(e) = encoding {
        req = req.header("content-encoding", e);
    }
    req.send().await.expect("posting to the receiver")
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

#[tokio::test]
async fn otlp_json_body_posted_per_spec_arrives() {
    let rx = OtlpReceiver::start().await.expect("starting the receiver");
    let url = rx.http_traces_url();
    assert_eq!(url, format!("http://127.0.0.1:{}/v1/traces", rx.http_addr().port()));

    let sent = Instant::now();
    let resp = post(
        &url,
        "application/json",
        None,
        otlp_json("json-plain", "eee19b7ec3c1b174").into(),
    )
    .await;
    assert_eq!(resp.status(), 200);
    // The response is written after the span is stored, so it is visible now.
    assert_eq!(rx.spans().len(), 1);
    eprintln!("[http/json] span delivered {:?} after posting", sent.elapsed());
    assert_eq!(resp.headers()["content-type"], "application/json");
    assert_eq!(resp.text().await.unwrap(), "{}", "full success is an empty JSON object");

    let body = gzip(otlp_json("json-gzip", "eee19b7ec3c1b175").as_bytes());
    let resp = post(&url, "application/json; charset=utf-8", Some("gzip"), body).await;
    assert_eq!(resp.status(), 200);

    let spans = rx
        .wait_for_spans("both JSON spans", ARRIVAL, |s| s.len() == 2)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let s = &spans[0];
    assert_eq!(s.name, "json-plain");
    assert_eq!(s.trace_id, "5b8efff798038103d269b633813fc60c");
    assert_eq!(s.span_id, "eee19b7ec3c1b174");
    assert_eq!(s.parent_span_id.as_deref(), Some("eee19b7ec3c1b173"));
    assert_eq!(s.kind, SpanKind::Server);
    assert_eq!(s.status, SpanStatus::Ok);
    assert_eq!((s.scope_name.as_str(), s.scope_version.as_str()), ("json-scope", "9"));
    assert_eq!(s.service_name(), Some("json-svc"));
    assert_eq!(s.attr("http.response.status_code"), Some(&AttrValue::Int(200)));
    assert_eq!(s.start_unix_nano, 1_544_712_660_000_000_000);
    assert_eq!(s.transport, Transport::HttpJson);
    assert_eq!(spans[1].name, "json-gzip");
    assert_eq!(spans[1].span_id, "eee19b7ec3c1b175");

    let exports = rx.exports();
    assert_eq!(exports.len(), 2);
    assert_eq!(exports[1].content_encoding.as_deref(), Some("gzip"));
    assert_eq!(exports[1].content_type, "application/json; charset=utf-8");
}

#[tokio::test]
async fn bad_requests_are_refused_per_spec_and_recorded() {
    let rx = OtlpReceiver::start().await.expect("starting the receiver");
    let url = rx.http_traces_url();

    let resp = post(&url, "text/plain", None, b"hello".to_vec()).await;
    assert_eq!(resp.status(), 415);

    let resp = post(&url, "application/json", None, b"{not json".to_vec()).await;
    assert_eq!(resp.status(), 400);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let status: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(status["code"], 3, "google.rpc.Status INVALID_ARGUMENT: {status}");

    let resp = post(&url, "application/x-protobuf", None, vec![0xff, 0xff, 0xff]).await;
    assert_eq!(resp.status(), 400);
    assert_eq!(resp.headers()["content-type"], "application/x-protobuf");

    let resp = post(&url, "application/x-protobuf", Some("br"), Vec::new()).await;
    assert_eq!(resp.status(), 400);

    let resp = client().get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 405, "only POST exports");
    let resp = post(
        &format!("http://{}/v1/metrics", rx.http_addr()),
        "application/json",
        None,
        b"{}".to_vec(),
    )
    .await;
    assert_eq!(resp.status(), 404);

    assert!(rx.spans().is_empty());
    let exports = rx.exports();
    assert_eq!(exports.len(), 4, "{exports:#?}");
    assert!(
        exports.iter().all(|e| e.error.is_some() && e.span_count == 0),
        "{exports:#?}"
    );
    assert!(
        exports[0].error.as_deref().unwrap().contains("text/plain"),
        "{exports:#?}"
    );
}

#[tokio::test]
async fn subscribe_replays_then_delivers_live_spans() {
    let rx = OtlpReceiver::start().await.expect("starting the receiver");
    let url = rx.http_traces_url();
    let resp = post(
        &url,
        "application/json",
        None,
        otlp_json("before", "0000000000000001").into(),
    )
    .await;
    assert_eq!(resp.status(), 200);

    let mut sub = rx.subscribe();
    let first = tokio::time::timeout(ARRIVAL, sub.recv())
        .await
        .expect("replay")
        .expect("open");
    assert_eq!(
        first.name, "before",
        "the span that arrived before subscribing is replayed"
    );

    let resp = post(
        &url,
        "application/json",
        None,
        otlp_json("after", "0000000000000002").into(),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let second = tokio::time::timeout(ARRIVAL, sub.recv())
        .await
        .expect("live")
        .expect("open");
    assert_eq!(second.name, "after");
    assert_eq!(rx.spans(), vec![first, second]);
}

#[tokio::test]
async fn wait_for_spans_timeout_says_what_arrived() {
    let rx = OtlpReceiver::start().await.expect("starting the receiver");
    let resp = post(
        &rx.http_traces_url(),
        "application/json",
        None,
        otlp_json("only-this", "0000000000000003").into(),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let err = rx
        .wait_for_spans("a span named never", Duration::from_millis(100), |s| {
            s.iter().any(|s| s.name == "never")
        })
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("a span named never"), "{text}");
    assert_eq!(err.last_seen(), r#"1 span: "only-this" (http/json)"#);
}

#[tokio::test]
async fn drop_stops_both_servers() {
    let rx = OtlpReceiver::start().await.expect("starting the receiver");
    let (grpc, http) = (rx.grpc_addr(), rx.http_addr());
    assert!(grpc.ip().is_loopback() && http.ip().is_loopback());
    assert_ne!(grpc, http);
    // A keep-alive HTTP connection, open across the drop.
    let c = client();
    let resp = c
        .post(rx.http_traces_url())
        .header("content-type", "application/json")
        .body(otlp_json("kept-alive", "0000000000000004"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    drop(rx);

    poll::wait_for(
        "both OTLP listeners to refuse connections",
        Duration::from_secs(5),
        timeouts::POLL_INTERVAL,
        || async {
            let g = tokio::net::TcpStream::connect(grpc).await;
            let h = tokio::net::TcpStream::connect(http).await;
            match (&g, &h) {
                (Err(_), Err(_)) => Poll::Ready(()),
                _ => Poll::NotYet(format!(
                    "gRPC connect ok: {}, HTTP connect ok: {}",
                    g.is_ok(),
                    h.is_ok()
                )),
            }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    // The open connection was shut down too, so a request on it fails.
    let again = c
        .post(format!("http://{http}/v1/traces"))
        .header("content-type", "application/json")
        .body(otlp_json("after-drop", "0000000000000005"))
        .send()
        .await;
    assert!(again.is_err(), "a request after drop must fail, got {again:?}");
}
