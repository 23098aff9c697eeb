//! The two ways spans arrive: the OTLP gRPC `TraceService` and the OTLP/HTTP `POST /v1/traces`
//! handler (protobuf or JSON, optionally gzip), each answering as the OTLP spec says.

use std::collections::BTreeMap;
use std::io::Read;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::TraceService;
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use prost::Message;
use serde::Serialize;

use super::{ExportRecord, MAX_BODY_BYTES, Shared, Transport, convert_request};

/// Header map to the recorded form: lowercase names, repeated values joined.
pub(super) fn header_map(headers: &HeaderMap) -> BTreeMap<String, String> {
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

pub(super) fn header_str(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
}

pub(super) struct GrpcSink {
    pub(super) shared: Shared,
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

pub(super) fn decompress(encoding: Option<&str>, body: Bytes) -> Result<Bytes, String> {
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

pub(super) fn decode_http(
    transport: Transport,
    encoding: Option<&str>,
    body: Bytes,
) -> Result<ExportTraceServiceRequest, String> {
    let body = decompress(encoding, body)?;
    match transport {
        Transport::HttpJson => serde_json::from_slice(&body)
            .map_err(|e| format!("body is not an OTLP/JSON ExportTraceServiceRequest: {e}")),
        _ => ExportTraceServiceRequest::decode(body)
            .map_err(|e| format!("body is not a protobuf ExportTraceServiceRequest: {e}")),
    }
}

pub(super) async fn http_export(State(shared): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
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
