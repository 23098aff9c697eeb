//! Unit tests of the conversions and the HTTP decoding rules.

use axum::body::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::{Span, span};

use super::spans::*;
use super::wire::decode_http;
use super::*;

#[test]
fn serialized_export_records_redact_credentials() {
    let record = ExportRecord {
        transport: Transport::Grpc,
        content_type: "application/grpc".into(),
        content_encoding: None,
        span_count: 1,
        headers: [
            ("authorization".to_string(), "Bearer abc".to_string()),
            ("x-team".to_string(), "core".to_string()),
        ]
        .into_iter()
        .collect(),
        error: None,
    };
    assert_eq!(
        record.headers["authorization"], "Bearer abc",
        "kept verbatim for scenarios"
    );
    let json = serde_json::to_value(&record).unwrap();
    assert_eq!(json["headers"]["authorization"], crate::redact::REDACTED);
    assert_eq!(json["headers"]["x-team"], "core");
}
use opentelemetry_proto::tonic::common::v1::{ArrayValue, InstrumentationScope, KeyValueList};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Status};

fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

fn request(spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![kv("service.name", any_value::Value::StringValue("svc".into()))],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "scope".into(),
                    version: "0.1".into(),
                    ..Default::default()
                }),
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn span(name: &str, parent: Vec<u8>) -> Span {
    Span {
        trace_id: (0..16).collect(),
        span_id: vec![0xab, 0xcd, 0, 1, 2, 3, 4, 0xff],
        parent_span_id: parent,
        name: name.into(),
        kind: span::SpanKind::Server as i32,
        start_time_unix_nano: 10,
        end_time_unix_nano: 20,
        ..Default::default()
    }
}

#[test]
fn ids_are_lowercase_hex_and_empty_parent_is_none() {
    let got = convert_request(&request(vec![span("root", vec![])]), Transport::Grpc);
    assert_eq!(got.len(), 1);
    let s = &got[0];
    assert_eq!(s.trace_id, "000102030405060708090a0b0c0d0e0f");
    assert_eq!(s.span_id, "abcd0001020304ff");
    assert_eq!(s.parent_span_id, None);
    assert_eq!(s.kind, SpanKind::Server);
    assert_eq!(s.status, SpanStatus::Unset);
    assert_eq!(s.status_message, "");
    assert_eq!((s.start_unix_nano, s.end_unix_nano), (10, 20));
    assert_eq!((s.scope_name.as_str(), s.scope_version.as_str()), ("scope", "0.1"));
    assert_eq!(s.service_name(), Some("svc"));
    assert_eq!(s.transport, Transport::Grpc);
}

#[test]
fn parent_status_and_attributes_convert() {
    let mut child = span("child", vec![0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 1]);
    child.kind = 99;
    child.status = Some(Status {
        code: 2,
        message: "boom".into(),
    });
    child.attributes = vec![
        kv("s", any_value::Value::StringValue("x".into())),
        kv("i", any_value::Value::IntValue(-7)),
        kv("d", any_value::Value::DoubleValue(0.5)),
        kv("b", any_value::Value::BoolValue(true)),
        kv("y", any_value::Value::BytesValue(vec![0x0f, 0xf0])),
        kv(
            "a",
            any_value::Value::ArrayValue(ArrayValue {
                values: vec![AnyValue {
                    value: Some(any_value::Value::IntValue(1)),
                }],
            }),
        ),
        kv(
            "m",
            any_value::Value::KvlistValue(KeyValueList {
                values: vec![kv("k", any_value::Value::BoolValue(false))],
            }),
        ),
        KeyValue {
            key: "empty".into(),
            value: None,
            ..Default::default()
        },
        kv("s", any_value::Value::StringValue("last wins".into())),
    ];
    let got = convert_request(&request(vec![child]), Transport::HttpJson);
    let s = &got[0];
    assert_eq!(s.parent_span_id.as_deref(), Some("deadbeef00000001"));
    assert_eq!(s.kind, SpanKind::Unspecified);
    assert_eq!(s.status, SpanStatus::Error);
    assert_eq!(s.status_message, "boom");
    assert_eq!(s.attr("s"), Some(&AttrValue::Str("last wins".into())));
    assert_eq!(s.attr("i").and_then(AttrValue::as_i64), Some(-7));
    assert_eq!(s.attr("d"), Some(&AttrValue::Double(0.5)));
    assert_eq!(s.attr("b"), Some(&AttrValue::Bool(true)));
    assert_eq!(s.attr("y"), Some(&AttrValue::Bytes("0ff0".into())));
    assert_eq!(s.attr("a"), Some(&AttrValue::Array(vec![AttrValue::Int(1)])));
    assert_eq!(s.attr("m"), Some(&AttrValue::Other(r#"{"k":false}"#.into())));
    assert_eq!(s.attr("empty"), Some(&AttrValue::Other(String::new())));
}

#[test]
fn spans_keep_request_order_across_resources_and_scopes() {
    let mut req = request(vec![span("a", vec![]), span("b", vec![])]);
    let mut second = req.resource_spans[0].clone();
    second.resource = None;
    second.scope_spans[0].scope = None;
    second.scope_spans[0].spans = vec![span("c", vec![])];
    req.resource_spans.push(second);
    let got = convert_request(&req, Transport::HttpProtobuf);
    let names: Vec<&str> = got.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["a", "b", "c"]);
    assert!(got[2].resource.is_empty());
    assert_eq!(got[2].scope_name, "");
}

#[test]
fn serializes_for_evidence() {
    let got = convert_request(&request(vec![span("root", vec![])]), Transport::HttpProtobuf);
    let v = serde_json::to_value(&got[0]).unwrap();
    assert_eq!(v["kind"], "SERVER");
    assert_eq!(v["status"], "UNSET");
    assert_eq!(v["transport"], "http/protobuf");
    assert_eq!(v["parent_span_id"], serde_json::Value::Null);
    assert_eq!(v["resource"]["service.name"], "svc");
}

#[test]
fn otlp_json_uses_hex_ids_per_spec() {
    let body = r#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"j"}}]},
        "scopeSpans":[{"scope":{"name":"sc"},"spans":[{"traceId":"5b8efff798038103d269b633813fc60c",
        "spanId":"eee19b7ec3c1b174","parentSpanId":"","name":"json-span","kind":3,
        "startTimeUnixNano":"1544712660000000000","endTimeUnixNano":"1544712661000000000",
        "attributes":[{"key":"n","value":{"intValue":"5"}}]}]}]}]}"#;
    let req = decode_http(Transport::HttpJson, None, Bytes::from(body)).unwrap();
    let got = convert_request(&req, Transport::HttpJson);
    assert_eq!(got[0].trace_id, "5b8efff798038103d269b633813fc60c");
    assert_eq!(got[0].span_id, "eee19b7ec3c1b174");
    assert_eq!(got[0].parent_span_id, None);
    assert_eq!(got[0].kind, SpanKind::Client);
    assert_eq!(got[0].start_unix_nano, 1_544_712_660_000_000_000);
    assert_eq!(got[0].attr("n"), Some(&AttrValue::Int(5)));
}

#[test]
fn unknown_encoding_is_refused_and_gzip_is_checked() {
    let err = decode_http(Transport::HttpProtobuf, Some("br"), Bytes::new()).unwrap_err();
    assert!(err.contains("\"br\""), "{err}");
    let err = decode_http(Transport::HttpProtobuf, Some("gzip"), Bytes::from_static(b"nope")).unwrap_err();
    assert!(err.contains("gzip"), "{err}");
}

#[test]
fn summary_names_spans_and_elides() {
    assert_eq!(summarize(&[]), "0 spans");
    let one = convert_request(&request(vec![span("x", vec![])]), Transport::Grpc);
    assert_eq!(summarize(&one), r#"1 span: "x" (grpc)"#);
    let many: Vec<ReceivedSpan> = (0..25).map(|_| one[0].clone()).collect();
    assert!(summarize(&many).ends_with("and 5 more"), "{}", summarize(&many));
}
