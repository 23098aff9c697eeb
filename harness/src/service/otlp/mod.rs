//! An in-process OTLP trace receiver: the sink a candidate exports its spans to.
//!
//! Tracing clauses ask what a candidate *sends*: span names, kinds, attributes, resource, whether
//! an incoming `traceparent` is continued, which headers the exporter carries. To answer that
//! without depending on a collector binary (none is installable here, see the services notes §4;
//! `--collector real` builds one and puts it in front, see [`OtlpSink`]), the harness runs the
//! receiver itself, in the test process, on two loopback listeners bound to port 0:
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

//!
//! `spans.rs` holds the flattened span and export-record types and the conversion from OTLP's
//! protobuf; `wire.rs` the gRPC service and the HTTP handler; `sink.rs` what a scenario is handed
//! (the receiver, with the real collector in front of it when the run asks); this file the
//! receiver and its store.

mod sink;
mod spans;
mod wire;

pub use sink::{OtlpSink, SinkError};

use spans::convert_request;
pub use spans::{AttrValue, ExportRecord, ReceivedSpan, SpanKind, SpanStatus, Transport};
use wire::{GrpcSink, http_export};

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::extract::DefaultBodyLimit;

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::TraceServiceServer;

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

impl From<OtlpError> for crate::verdict::Failure {
    fn from(err: OtlpError) -> Self {
        crate::verdict::Failure::harness(err.to_string())
    }
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

#[cfg(test)]
mod tests;
