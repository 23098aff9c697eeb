//! An in-process OTLP trace receiver: the sink a candidate exports its spans to.
//!
//! Tracing clauses ask what a candidate *sends*: span names, kinds, attributes, resource, whether
//! an incoming `traceparent` is continued, which headers the exporter carries. To answer that
//! without a collector binary (none is installable here, see the services notes §4), the harness
//! runs the receiver itself, in the test process, on two loopback listeners bound to port 0:
//!
//! - **gRPC** (`opentelemetry.proto.collector.trace.v1.TraceService/Export`, served by tonic,
//!   gzip accepted), the default protocol of the Go SDK exporters;
//! - **HTTP** (`POST /v1/traces`, served by axum) taking `application/x-protobuf` and
//!   `application/json` (OTLP/JSON: hex ids, int64 as strings), optionally gzip-encoded, and
//!   answering as the OTLP/HTTP spec says: an `ExportTraceServiceResponse` in the request's own
//!   encoding, `415` for an unknown content type, `400` with a `google.rpc.Status` for a body
//!   that does not decode.
//!
//! Both listeners feed one store. Spans are flattened into [`ReceivedSpan`], a plain value with
//! hex ids and attribute maps, so scenarios assert on data rather than on protobuf nesting, and
//! the value serializes straight into evidence and snapshots. Each export request also leaves an
//! [`ExportRecord`] (transport, content type, encoding, headers) because some clauses grade the
//! request rather than its spans (for example, that configured OTLP headers are sent).
//!
//! Scenarios read spans in three ways: [`OtlpReceiver::spans`] for a snapshot,
//! [`OtlpReceiver::wait_for_spans`] for a bounded, polled wait on a condition (the harness never
//! sleeps), and [`OtlpReceiver::subscribe`] for a channel that replays what has arrived and then
//! delivers live spans. Dropping the receiver aborts both servers; open connections are then
//! closed gracefully by the servers themselves, so nothing outlives the scenario that owned it.

use std::collections::BTreeMap;
use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::{Span, span, status};
use prost::Message;
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::codec::CompressionEncoding;

use crate::poll::{self, Poll, PollError};
use crate::timeouts;

/// The path of the OTLP/HTTP trace endpoint, as the spec and every SDK default it.
pub const HTTP_TRACES_PATH: &str = "/v1/traces";

/// The largest export body the HTTP endpoint accepts, before and after gzip. The Go SDK batches at
/// most 512 spans per export, far below this; the bound only keeps a broken exporter from eating
/// the harness's memory.
const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// How many span names a wait's "last seen" summary lists before eliding the rest.
const SUMMARY_NAMES: usize = 20;

/// Why the receiver could not start.
#[derive(Debug, thiserror::Error)]
pub enum OtlpError {
    /// A loopback listener could not be bound.
    #[error("binding the OTLP {listener} listener on 127.0.0.1:0: {source}")]
    Bind {
        /// Which listener: `gRPC` or `HTTP`.
        listener: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
    /// A bound listener could not report its address.
    #[error("reading the bound address of the OTLP {listener} listener: {source}")]
    LocalAddr {
        /// Which listener: `gRPC` or `HTTP`.
        listener: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
}

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

/// Everything received, behind one lock so spans, records and subscribers stay in one order.
#[derive(Default)]
struct Store {
    spans: Vec<ReceivedSpan>,
    exports: Vec<ExportRecord>,
    subscribers: Vec<mpsc::UnboundedSender<ReceivedSpan>>,
}

#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Store>>);

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Store> {
        // A panic while holding the lock cannot leave the store half-updated in a way that
        // matters to a reader (pushes only), so a poisoned lock is still usable.
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn record(&self, record: ExportRecord, spans: Vec<ReceivedSpan>) {
        let mut store = self.lock();
        store.exports.push(record);
        store
            .subscribers
            .retain(|tx| spans.iter().all(|s| tx.send(s.clone()).is_ok()));
        store.spans.extend(spans);
    }
}

/// The in-process OTLP receiver. See the module docs.
pub struct OtlpReceiver {
    grpc_addr: SocketAddr,
    http_addr: SocketAddr,
    shared: Shared,
    grpc_task: JoinHandle<()>,
    http_task: JoinHandle<()>,
}

impl std::fmt::Debug for OtlpReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtlpReceiver")
            .field("grpc_addr", &self.grpc_addr)
            .field("http_addr", &self.http_addr)
            .field("spans", &self.shared.lock().spans.len())
            .finish()
    }
}

impl Drop for OtlpReceiver {
    fn drop(&mut self) {
        // Aborting drops each server's shutdown watch, which makes both tonic and axum close
        // their open connections gracefully; the listeners close with the tasks.
        self.grpc_task.abort();
        self.http_task.abort();
    }
}

async fn bind(listener: &'static str) -> Result<(TcpListener, SocketAddr), OtlpError> {
    let l = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .await
        .map_err(|source| OtlpError::Bind { listener, source })?;
    let addr = l
        .local_addr()
        .map_err(|source| OtlpError::LocalAddr { listener, source })?;
    Ok((l, addr))
}

impl OtlpReceiver {
    /// Bind both listeners on `127.0.0.1:0` and start serving. Must be called inside a Tokio
    /// runtime; the servers run as tasks on it until the receiver is dropped.
    pub async fn start() -> Result<OtlpReceiver, OtlpError> {
        let (grpc_listener, grpc_addr) = bind("gRPC").await?;
        let (http_listener, http_addr) = bind("HTTP").await?;
        let shared = Shared::default();

        let service =
            TraceServiceServer::new(GrpcSink { shared: shared.clone() }).accept_compressed(CompressionEncoding::Gzip);
        let grpc_task = tokio::spawn(async move {
            // With a shutdown signal (even one that never fires) tonic tells each connection to
            // shut down gracefully when the server future is dropped, i.e. when we abort it.
            let _ = tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming_shutdown(TcpListenerStream::new(grpc_listener), std::future::pending::<()>())
                .await;
        });

        let app = axum::Router::new()
            .route(HTTP_TRACES_PATH, axum::routing::post(http_export))
            .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
            .with_state(shared.clone());
        let http_task = tokio::spawn(async move {
            let _ = axum::serve(http_listener, app).await;
        });

        Ok(OtlpReceiver {
            grpc_addr,
            http_addr,
            shared,
            grpc_task,
            http_task,
        })
    }

    /// The gRPC listener's address; give it to an exporter as `http://<addr>`.
    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc_addr
    }

    /// The HTTP listener's address.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// The gRPC endpoint as an exporter takes it: `http://127.0.0.1:<port>`.
    pub fn grpc_endpoint(&self) -> String {
        format!("http://{}", self.grpc_addr)
    }

    /// The HTTP base endpoint, for `OTEL_EXPORTER_OTLP_ENDPOINT` (the SDK appends `/v1/traces`).
    pub fn http_endpoint(&self) -> String {
        format!("http://{}", self.http_addr)
    }

    /// The full HTTP trace URL, for `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`:
    /// `http://127.0.0.1:<port>/v1/traces`.
    pub fn http_traces_url(&self) -> String {
        format!("http://{}{HTTP_TRACES_PATH}", self.http_addr)
    }

    /// Every span received so far, in arrival order.
    pub fn spans(&self) -> Vec<ReceivedSpan> {
        self.shared.lock().spans.clone()
    }

    /// A channel that first replays every span received so far, then delivers each new span as
    /// it arrives. Any number of subscribers may exist; a dropped receiver is forgotten at the
    /// next export.
    pub fn subscribe(&self) -> mpsc::UnboundedReceiver<ReceivedSpan> {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut store = self.shared.lock();
        for span in &store.spans {
            // The receiver is alive: we hold it.
            let _ = tx.send(span.clone());
        }
        store.subscribers.push(tx);
        rx
    }

    /// One record per export request received so far (including rejected ones), in order.
    pub fn exports(&self) -> Vec<ExportRecord> {
        self.shared.lock().exports.clone()
    }

    /// Poll [`spans`](Self::spans) every [`timeouts::POLL_INTERVAL`] until `pred` holds, and
    /// return the spans it held on. On timeout the error's last-seen text gives the span count
    /// and names received so far.
    pub async fn wait_for_spans(
        &self,
        what: &str,
        ceiling: Duration,
        pred: impl Fn(&[ReceivedSpan]) -> bool,
    ) -> Result<Vec<ReceivedSpan>, PollError> {
        poll::wait_for(what, ceiling, timeouts::POLL_INTERVAL, || {
            let spans = self.spans();
            let outcome = if pred(&spans) {
                Poll::Ready(spans)
            } else {
                Poll::NotYet(summarize(&spans))
            };
            async move { outcome }
        })
        .await
    }
}

/// "3 spans: GET /a (grpc), ..." for a timeout message.
fn summarize(spans: &[ReceivedSpan]) -> String {
    if spans.is_empty() {
        return "0 spans".to_string();
    }
    let names: Vec<String> = spans
        .iter()
        .take(SUMMARY_NAMES)
        .map(|s| format!("{:?} ({})", s.name, s.transport.protocol()))
        .collect();
    let more = spans.len().saturating_sub(SUMMARY_NAMES);
    let tail = if more > 0 {
        format!(", and {more} more")
    } else {
        String::new()
    };
    format!(
        "{} span{}: {}{tail}",
        spans.len(),
        if spans.len() == 1 { "" } else { "s" },
        names.join(", ")
    )
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn attributes(kvs: &[KeyValue]) -> BTreeMap<String, AttrValue> {
    kvs.iter()
        .map(|kv| (kv.key.clone(), AttrValue::from_proto(kv.value.as_ref())))
        .collect()
}

fn convert_span(
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
fn convert_request(request: &ExportTraceServiceRequest, transport: Transport) -> Vec<ReceivedSpan> {
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

/// Header map to the recorded form: lowercase names, repeated values joined.
fn header_map(headers: &HeaderMap) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        out.entry(name.as_str().to_string())
            .and_modify(|v| {
                v.push_str(", ");
                v.push_str(&value);
            })
            .or_insert(value);
    }
    out
}

fn header_str(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
}

struct GrpcSink {
    shared: Shared,
}

#[tonic::async_trait]
impl TraceService for GrpcSink {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let headers = request.metadata().clone().into_headers();
        let spans = convert_request(request.get_ref(), Transport::Grpc);
        let record = ExportRecord {
            transport: Transport::Grpc,
            content_type: header_str(&headers, "content-type").unwrap_or_default(),
            content_encoding: header_str(&headers, "grpc-encoding"),
            span_count: spans.len(),
            headers: header_map(&headers),
            error: None,
        };
        self.shared.record(record, spans);
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

/// `google.rpc.Status`, the body OTLP/HTTP puts in an error response.
#[derive(Clone, PartialEq, Message, Serialize)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

/// `google.rpc.Code.INVALID_ARGUMENT`.
const RPC_INVALID_ARGUMENT: i32 = 3;

const PROTOBUF: &str = "application/x-protobuf";
const JSON: &str = "application/json";

fn decompress(encoding: Option<&str>, body: Bytes) -> Result<Bytes, String> {
    match encoding.map(|e| e.trim().to_ascii_lowercase()).as_deref() {
        None | Some("") | Some("identity") => Ok(body),
        Some("gzip") => {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(&body[..])
                .take(MAX_BODY_BYTES as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|e| format!("gzip body does not decompress: {e}"))?;
            if out.len() > MAX_BODY_BYTES {
                return Err(format!("gzip body decompresses to more than {MAX_BODY_BYTES} bytes"));
            }
            Ok(out.into())
        }
        Some(other) => Err(format!("unsupported Content-Encoding {other:?} (want gzip or none)")),
    }
}

fn decode_http(transport: Transport, encoding: Option<&str>, body: Bytes) -> Result<ExportTraceServiceRequest, String> {
    let body = decompress(encoding, body)?;
    match transport {
        Transport::HttpJson => serde_json::from_slice(&body)
            .map_err(|e| format!("body is not an OTLP/JSON ExportTraceServiceRequest: {e}")),
        _ => ExportTraceServiceRequest::decode(body)
            .map_err(|e| format!("body is not a protobuf ExportTraceServiceRequest: {e}")),
    }
}

async fn http_export(State(shared): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let content_type = header_str(&headers, "content-type").unwrap_or_default();
    let media_type = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    let content_encoding = header_str(&headers, "content-encoding");
    let transport = match media_type.as_str() {
        PROTOBUF => Transport::HttpProtobuf,
        JSON => Transport::HttpJson,
        _ => {
            let error = format!("unsupported Content-Type {content_type:?} (want {PROTOBUF} or {JSON})");
            shared.record(
                ExportRecord {
                    transport: Transport::HttpProtobuf,
                    content_type,
                    content_encoding,
                    span_count: 0,
                    headers: header_map(&headers),
                    error: Some(error.clone()),
                },
                Vec::new(),
            );
            return (StatusCode::UNSUPPORTED_MEDIA_TYPE, error).into_response();
        }
    };
    let mut record = ExportRecord {
        transport,
        content_type,
        content_encoding,
        span_count: 0,
        headers: header_map(&headers),
        error: None,
    };
    match decode_http(transport, record.content_encoding.as_deref(), body) {
        Ok(request) => {
            let spans = convert_request(&request, transport);
            record.span_count = spans.len();
            shared.record(record, spans);
            match transport {
                // serde would write `{"partialSuccess":null}`; the spec's full success is `{}`.
                Transport::HttpJson => ([(header::CONTENT_TYPE, JSON)], "{}").into_response(),
                _ => {
                    let response = ExportTraceServiceResponse { partial_success: None };
                    ([(header::CONTENT_TYPE, PROTOBUF)], response.encode_to_vec()).into_response()
                }
            }
        }
        Err(message) => {
            record.error = Some(message.clone());
            shared.record(record, Vec::new());
            let status = RpcStatus {
                code: RPC_INVALID_ARGUMENT,
                message,
            };
            match transport {
                Transport::HttpJson => (
                    StatusCode::BAD_REQUEST,
                    [(header::CONTENT_TYPE, JSON)],
                    serde_json::to_string(&status).unwrap_or_default(),
                )
                    .into_response(),
                _ => (
                    StatusCode::BAD_REQUEST,
                    [(header::CONTENT_TYPE, PROTOBUF)],
                    status.encode_to_vec(),
                )
                    .into_response(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
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
}
