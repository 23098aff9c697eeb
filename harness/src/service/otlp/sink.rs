//! What a scenario gets when it asks for an OTLP endpoint: the in-process receiver, and, when the
//! run asks for it, a real OpenTelemetry Collector in front of it.
//!
//! Scenarios must not care which: they hand the candidate the sink's endpoints and read spans from
//! the receiver. So [`OtlpSink`] has two faces. Its own address methods ([`grpc_addr`],
//! [`grpc_endpoint`], [`http_endpoint`], ...) give the *front door*, the collector's when there is
//! one; everything else ([`OtlpReceiver::spans`], [`OtlpReceiver::wait_for_spans`],
//! [`OtlpReceiver::exports`], ...) reaches the receiver through `Deref`. The inherent address
//! methods shadow the receiver's on purpose, so `sink.grpc_addr()` can never hand a candidate the
//! receiver behind the collector's back; [`OtlpSink::receiver`] is there for the rare caller that
//! means the receiver itself.
//!
//! Fields drop in declaration order: the collector (its process group killed) before the receiver
//! it forwards to.
//!
//! [`grpc_addr`]: OtlpSink::grpc_addr
//! [`grpc_endpoint`]: OtlpSink::grpc_endpoint
//! [`http_endpoint`]: OtlpSink::http_endpoint

use std::net::SocketAddr;
use std::ops::Deref;

use super::{HTTP_TRACES_PATH, OtlpError, OtlpReceiver};
use crate::service::collector::{Collector, CollectorBinary, CollectorError};

/// Why a sink could not be started.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The receiver could not start.
    #[error(transparent)]
    Receiver(#[from] OtlpError),
    /// The collector could not start.
    #[error(transparent)]
    Collector(#[from] CollectorError),
}

impl From<SinkError> for crate::verdict::Failure {
    fn from(err: SinkError) -> Self {
        crate::verdict::Failure::harness(err.to_string())
    }
}

/// The OTLP endpoint of one scenario. See the module docs.
#[derive(Debug)]
pub struct OtlpSink {
    collector: Option<Collector>,
    receiver: OtlpReceiver,
}

impl OtlpSink {
    /// Start a receiver and, with `collector`, a collector forwarding to it.
    pub async fn start(collector: Option<&CollectorBinary>) -> Result<OtlpSink, SinkError> {
        let receiver = OtlpReceiver::start().await?;
        let collector = match collector {
            Some(binary) => Some(Collector::start(binary, &receiver).await?),
            None => None,
        };
        Ok(OtlpSink { collector, receiver })
    }

    /// The receiver spans end up in.
    pub fn receiver(&self) -> &OtlpReceiver {
        &self.receiver
    }

    /// The collector in front of the receiver, if any.
    pub fn collector(&self) -> Option<&Collector> {
        self.collector.as_ref()
    }

    /// The front door's gRPC address (a bare `host:port`).
    pub fn grpc_addr(&self) -> SocketAddr {
        self.collector
            .as_ref()
            .map_or(self.receiver.grpc_addr(), Collector::grpc_addr)
    }

    /// The front door's HTTP address.
    pub fn http_addr(&self) -> SocketAddr {
        self.collector
            .as_ref()
            .map_or(self.receiver.http_addr(), Collector::http_addr)
    }

    /// The gRPC endpoint as an exporter takes it: `http://127.0.0.1:<port>`.
    pub fn grpc_endpoint(&self) -> String {
        format!("http://{}", self.grpc_addr())
    }

    /// The HTTP base endpoint, for `OTEL_EXPORTER_OTLP_ENDPOINT` (the SDK appends `/v1/traces`).
    pub fn http_endpoint(&self) -> String {
        format!("http://{}", self.http_addr())
    }

    /// The full HTTP trace URL, for `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`.
    pub fn http_traces_url(&self) -> String {
        format!("http://{}{HTTP_TRACES_PATH}", self.http_addr())
    }

    /// One line for evidence when a collector is in the path (ready time and pid stay out of it,
    /// so reports of two runs compare equal); `None` when spans go straight to the receiver.
    pub fn path(&self) -> Option<String> {
        self.collector.as_ref().map(|c| {
            format!(
                "candidate -> OpenTelemetry Collector (OTLP/gRPC {}, OTLP/HTTP {}) -> harness receiver",
                c.grpc_addr(),
                c.http_addr()
            )
        })
    }
}

impl Deref for OtlpSink {
    type Target = OtlpReceiver;

    fn deref(&self) -> &OtlpReceiver {
        &self.receiver
    }
}
