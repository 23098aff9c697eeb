//! The spans and export records the receiver keeps, flattened from OTLP's protobuf into plain
//! values (hex ids, attribute maps) that scenarios assert on and evidence serializes.

use std::collections::BTreeMap;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::{Span, span, status};

use serde::Serialize;

/// How an export reached the receiver. Serialized as the `OTEL_EXPORTER_OTLP_PROTOCOL` value that
/// selects it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Transport {
    /// OTLP/gRPC.
    #[serde(rename = "grpc")]
    Grpc,
    /// OTLP/HTTP with a binary protobuf body.
    #[serde(rename = "http/protobuf")]
    HttpProtobuf,
    /// OTLP/HTTP with an OTLP/JSON body.
    #[serde(rename = "http/json")]
    HttpJson,
}

impl Transport {
    /// The `OTEL_EXPORTER_OTLP_PROTOCOL` value for this transport.
    pub fn protocol(self) -> &'static str {
        match self {
            Transport::Grpc => "grpc",
            Transport::HttpProtobuf => "http/protobuf",
            Transport::HttpJson => "http/json",
        }
    }
}

/// The kind of a span, as OTLP defines it. Serialized as `"SERVER"`, `"CLIENT"`, and so on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SpanKind {
    /// `SPAN_KIND_UNSPECIFIED`, or a value this receiver does not know.
    Unspecified,
    /// `SPAN_KIND_INTERNAL`.
    Internal,
    /// `SPAN_KIND_SERVER`: the span of an incoming request.
    Server,
    /// `SPAN_KIND_CLIENT`: the span of an outgoing request.
    Client,
    /// `SPAN_KIND_PRODUCER`.
    Producer,
    /// `SPAN_KIND_CONSUMER`.
    Consumer,
}

impl SpanKind {
    fn from_proto(kind: i32) -> SpanKind {
        match span::SpanKind::try_from(kind) {
            Ok(span::SpanKind::Internal) => SpanKind::Internal,
            Ok(span::SpanKind::Server) => SpanKind::Server,
            Ok(span::SpanKind::Client) => SpanKind::Client,
            Ok(span::SpanKind::Producer) => SpanKind::Producer,
            Ok(span::SpanKind::Consumer) => SpanKind::Consumer,
            Ok(span::SpanKind::Unspecified) | Err(_) => SpanKind::Unspecified,
        }
    }
}

/// The status of a span. Serialized as `"UNSET"`, `"OK"` or `"ERROR"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SpanStatus {
    /// No status was set (also an absent status, or a code this receiver does not know).
    Unset,
    /// Explicitly OK.
    Ok,
    /// An error.
    Error,
}

impl SpanStatus {
    fn from_proto(code: i32) -> SpanStatus {
        match status::StatusCode::try_from(code) {
            Ok(status::StatusCode::Ok) => SpanStatus::Ok,
            Ok(status::StatusCode::Error) => SpanStatus::Error,
            Ok(status::StatusCode::Unset) | Err(_) => SpanStatus::Unset,
        }
    }
}

/// One attribute value, flattened from OTLP's `AnyValue`. Serializes as the bare value.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum AttrValue {
    /// A string.
    Str(String),
    /// A 64-bit integer.
    Int(i64),
    /// A double.
    Double(f64),
    /// A boolean.
    Bool(bool),
    /// A homogeneous or mixed array.
    Array(Vec<AttrValue>),
    /// Bytes, as lowercase hex.
    Bytes(String),
    /// Anything else, rendered as text: a key-value list as a JSON object, an empty value as
    /// `""`, a profiling string-table reference as `strindex:<n>`.
    Other(String),
}

impl AttrValue {
    /// The string, if this is a string value.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            AttrValue::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The integer, if this is an integer value.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            AttrValue::Int(i) => Some(*i),
            _ => None,
        }
    }

    fn from_proto(value: Option<&AnyValue>) -> AttrValue {
        use any_value::Value;
        match value.and_then(|v| v.value.as_ref()) {
            None => AttrValue::Other(String::new()),
            Some(Value::StringValue(s)) => AttrValue::Str(s.clone()),
            Some(Value::BoolValue(b)) => AttrValue::Bool(*b),
            Some(Value::IntValue(i)) => AttrValue::Int(*i),
            Some(Value::DoubleValue(d)) => AttrValue::Double(*d),
            Some(Value::ArrayValue(a)) => {
                AttrValue::Array(a.values.iter().map(|v| AttrValue::from_proto(Some(v))).collect())
            }
            Some(Value::KvlistValue(kv)) => {
                let map = attributes(&kv.values);
                AttrValue::Other(serde_json::to_string(&map).unwrap_or_else(|e| e.to_string()))
            }
            Some(Value::BytesValue(b)) => AttrValue::Bytes(hex(b)),
            Some(Value::StringValueStrindex(i)) => AttrValue::Other(format!("strindex:{i}")),
        }
    }
}

/// One span as received, flattened for assertions and evidence.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReceivedSpan {
    /// The trace id, lowercase hex (32 characters for a valid id).
    pub trace_id: String,
    /// The span id, lowercase hex (16 characters for a valid id).
    pub span_id: String,
    /// The parent span id, lowercase hex; `None` for a root span (empty in OTLP).
    pub parent_span_id: Option<String>,
    /// The span name.
    pub name: String,
    /// The span kind.
    pub kind: SpanKind,
    /// The instrumentation scope name (`""` when absent).
    pub scope_name: String,
    /// The instrumentation scope version (`""` when absent).
    pub scope_version: String,
    /// The span's attributes. A key repeated in the export keeps its last value.
    pub attributes: BTreeMap<String, AttrValue>,
    /// The attributes of the resource that sent the span (`service.name` and the like).
    pub resource: BTreeMap<String, AttrValue>,
    /// The status code.
    pub status: SpanStatus,
    /// The status message (`""` when absent).
    pub status_message: String,
    /// Start time, nanoseconds since the Unix epoch.
    pub start_unix_nano: u64,
    /// End time, nanoseconds since the Unix epoch.
    pub end_unix_nano: u64,
    /// How the span reached the receiver.
    pub transport: Transport,
}

impl ReceivedSpan {
    /// A span attribute by key.
    pub fn attr(&self, key: &str) -> Option<&AttrValue> {
        self.attributes.get(key)
    }

    /// A resource attribute by key.
    pub fn resource_attr(&self, key: &str) -> Option<&AttrValue> {
        self.resource.get(key)
    }

    /// The resource's `service.name`, if it is a string.
    pub fn service_name(&self) -> Option<&str> {
        self.resource_attr("service.name").and_then(AttrValue::as_str)
    }
}

/// One export request, whatever became of it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExportRecord {
    /// How the request arrived. An HTTP request refused for its content type is recorded as
    /// [`Transport::HttpProtobuf`]; its `content_type` and `error` say what it really was.
    pub transport: Transport,
    /// The request's content type as sent (`application/grpc`, `application/x-protobuf`, ...).
    pub content_type: String,
    /// The body compression as sent (`Content-Encoding`, or `grpc-encoding` for gRPC), if any.
    pub content_encoding: Option<String>,
    /// How many spans the request carried (0 when it could not be decoded).
    pub span_count: usize,
    /// Request headers (HTTP) or metadata (gRPC), names lowercased, repeated values joined with
    /// `", "`. Kept verbatim for scenarios to compare; serialized (into evidence and reports) with
    /// `authorization` and secret-named values redacted.
    #[serde(serialize_with = "redacted_headers")]
    pub headers: BTreeMap<String, String>,
    /// Why the request was rejected, if it was.
    pub error: Option<String>,
}

/// Serialize headers with credentials redacted: they go into reports.
fn redacted_headers<S: serde::Serializer>(headers: &BTreeMap<String, String>, s: S) -> Result<S::Ok, S::Error> {
    let shown: BTreeMap<&String, String> = headers
        .iter()
        .map(|(k, v)| {
            let secret = k == "authorization" || crate::redact::is_secret_name(k);
            (
                k,
                if secret {
                    crate::redact::REDACTED.to_string()
                } else {
                    crate::redact::text(v)
                },
            )
        })
        .collect();
    serde::Serialize::serialize(&shown, s)
}

pub(super) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

pub(super) fn attributes(kvs: &[KeyValue]) -> BTreeMap<String, AttrValue> {
    kvs.iter()
        .map(|kv| (kv.key.clone(), AttrValue::from_proto(kv.value.as_ref())))
        .collect()
}

pub(super) fn convert_span(
    span: &Span,
    scope_name: &str,
    scope_version: &str,
    resource: &BTreeMap<String, AttrValue>,
    transport: Transport,
) -> ReceivedSpan {
    let status = span.status.as_ref();
    ReceivedSpan {
        trace_id: hex(&span.trace_id),
        span_id: hex(&span.span_id),
        parent_span_id: (!span.parent_span_id.is_empty()).then(|| hex(&span.parent_span_id)),
        name: span.name.clone(),
        kind: SpanKind::from_proto(span.kind),
        scope_name: scope_name.to_string(),
        scope_version: scope_version.to_string(),
        attributes: attributes(&span.attributes),
        resource: resource.clone(),
        status: SpanStatus::from_proto(status.map_or(0, |s| s.code)),
        status_message: status.map(|s| s.message.clone()).unwrap_or_default(),
        start_unix_nano: span.start_time_unix_nano,
        end_unix_nano: span.end_time_unix_nano,
        transport,
    }
}

/// Flatten an export request into spans, in the order the request lists them.
pub(super) fn convert_request(request: &ExportTraceServiceRequest, transport: Transport) -> Vec<ReceivedSpan> {
    let mut out = Vec::new();
    for rs in &request.resource_spans {
        let resource = rs
            .resource
            .as_ref()
            .map(|r| attributes(&r.attributes))
            .unwrap_or_default();
        for ss in &rs.scope_spans {
            let (scope_name, scope_version) = ss
                .scope
                .as_ref()
                .map_or(("", ""), |s| (s.name.as_str(), s.version.as_str()));
            for span in &ss.spans {
                out.push(convert_span(span, scope_name, scope_version, &resource, transport));
            }
        }
    }
    out
}
