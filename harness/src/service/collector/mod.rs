//! The real OpenTelemetry Collector as a native process, between a candidate and the harness's
//! in-process [`OtlpReceiver`].
//!
//! `conform --collector real` asks whether a candidate's spans survive a real collector the way a
//! deployment would run one: the candidate exports to the collector's OTLP receiver, the collector
//! forwards to the in-process receiver, and scenarios read spans from the receiver as they always
//! do. This module starts one collector per scenario (so no scenario sees another's spans):
//!
//! - a generated config ([`config`]): OTLP/gRPC and OTLP/HTTP receivers on loopback ports chosen
//!   free, one pipeline per transport forwarding over that same transport (gRPC in, `otlp_grpc`
//!   out; HTTP in, `otlp_http` out) with no queue, no retry and no batch processor, so a
//!   candidate's export returns only once its spans are at the receiver; the `debug` exporter for
//!   the collector's own log; the `health_check` extension; internal telemetry off (it would
//!   otherwise bind a fixed metrics port shared by every collector on the machine);
//! - the audited process launch ([`Running::spawn`]): cleared environment, own process group,
//!   registered with the reaper (Ctrl-C kills it), output captured into its work directory;
//! - readiness as data (a [`Ready`]): the health check answers 200 ("Server available", which the
//!   extension reports only once every component has started) and both OTLP ports accept a
//!   connection, polled with a ceiling, failing fast (with the collector's last lines) if it
//!   exits. Free ports are taken by someone else between choosing and binding only rarely; a
//!   collector that exits saying "address already in use" is started again on fresh ports.
//!
//! `build.rs` builds the collector binary from the committed builder manifest and caches it.

mod build;
mod config;

pub use build::{BUILDER_VERSION, CollectorBinary, MANIFEST, build, default_manifest};

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::poll::PollError;
use crate::process::Launch;
use crate::ready::{Condition, Ready};
use crate::running::{ProcessError, Running, Signal};
use crate::service::otlp::OtlpReceiver;
use crate::workdir::Workdir;
use crate::{ports, timeouts};

/// Whether a run puts the real collector in front of the in-process receiver. Recorded in every
/// report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CollectorMode {
    /// Candidates export straight to the in-process receiver.
    #[default]
    None,
    /// Candidates export to a real OpenTelemetry Collector that forwards to the receiver.
    Real,
}

impl CollectorMode {
    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            CollectorMode::None => "none",
            CollectorMode::Real => "real",
        }
    }
}

/// How often a collector that lost its ports to another process is started again.
const BIND_ATTEMPTS: usize = 3;

/// Why a collector could not be started.
#[derive(Debug, thiserror::Error)]
pub enum CollectorError {
    /// Preparing its directory, config or ports failed.
    #[error("preparing the OpenTelemetry Collector: {0}")]
    Prepare(#[from] std::io::Error),
    /// The process could not be started.
    #[error("starting the OpenTelemetry Collector: {0}")]
    Process(#[from] ProcessError),
    /// It did not become ready (or exited first).
    #[error("the OpenTelemetry Collector ({binary}) did not become ready: {error}; its last output:\n{tail}")]
    NotReady {
        /// The executable.
        binary: String,
        /// The readiness wait's error (condition, ceiling, last seen).
        error: PollError,
        /// The last lines it printed.
        tail: String,
    },
}

impl From<CollectorError> for crate::verdict::Failure {
    fn from(err: CollectorError) -> Self {
        crate::verdict::Failure::harness(err.to_string())
    }
}

/// A running collector forwarding to one receiver. Dropping it kills its process group.
#[derive(Debug)]
pub struct Collector {
    running: Running,
    grpc_addr: SocketAddr,
    http_addr: SocketAddr,
    health_addr: SocketAddr,
    ready_after: Duration,
}

/// The addresses one collector is given.
#[derive(Debug, Clone, Copy)]
struct Ports {
    grpc: SocketAddr,
    http: SocketAddr,
    health: SocketAddr,
}

impl Ports {
    fn fresh() -> std::io::Result<Ports> {
        let p = ports::free_ports(3)?;
        Ok(Ports {
            grpc: Running::loopback(p[0]),
            http: Running::loopback(p[1]),
            health: Running::loopback(p[2]),
        })
    }
}

impl Collector {
    /// Start `binary` forwarding to `upstream`, and wait until it is ready.
    pub async fn start(binary: &CollectorBinary, upstream: &OtlpReceiver) -> Result<Collector, CollectorError> {
        let mut attempt = 1;
        loop {
            match Collector::start_once(binary, upstream, Ports::fresh()?).await {
                Err(CollectorError::NotReady { tail, .. })
                    if attempt < BIND_ATTEMPTS && tail.contains("address already in use") =>
                {
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    async fn start_once(
        binary: &CollectorBinary,
        upstream: &OtlpReceiver,
        ports: Ports,
    ) -> Result<Collector, CollectorError> {
        let workdir = Workdir::new("collector")?;
        let config = workdir.write("config.yaml", &config::render(&ports, upstream))?;
        let mut launch = Launch::new(&binary.binary, workdir.cwd());
        launch.args = vec!["--config".into(), config.display().to_string()];
        let started = Instant::now();
        let mut running = Running::spawn(&launch, workdir)?;
        let ready = running.wait_ready(&readiness(ports)).await;
        if let Err(error) = ready {
            running.drain_output().await;
            return Err(CollectorError::NotReady {
                binary: binary.binary.display().to_string(),
                error,
                tail: running.output().tail(15).join("\n"),
            });
        }
        Ok(Collector {
            running,
            grpc_addr: ports.grpc,
            http_addr: ports.http,
            health_addr: ports.health,
            ready_after: started.elapsed(),
        })
    }

    /// The OTLP/gRPC receiver's address (a bare `host:port`, as GoFr's `TRACER_URL` takes it).
    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc_addr
    }

    /// The OTLP/HTTP receiver's address.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// The health check extension's address.
    pub fn health_addr(&self) -> SocketAddr {
        self.health_addr
    }

    /// Time from spawn to ready.
    pub fn ready_after(&self) -> Duration {
        self.ready_after
    }

    /// The process id (also its process group id).
    pub fn pid(&self) -> u32 {
        self.running.pid()
    }

    /// The collector's own output so far (the debug exporter's lines among it).
    pub fn output(&self) -> &crate::output::Output {
        self.running.output()
    }

    /// Stop it with SIGTERM (the collector drains its pipelines), killing it after
    /// [`timeouts::SERVICE_STOP`].
    pub async fn stop(mut self) -> Result<crate::running::Exit, ProcessError> {
        self.running.shutdown(Signal::SIGTERM, timeouts::SERVICE_STOP).await
    }
}

/// Readiness: the health check answers 200 (whoever answers on its port: unlike a candidate's
/// boot, no check of which process holds it), then both OTLP listeners accept, all at one look.
fn readiness(ports: Ports) -> Ready {
    let accepts = |addr| Condition::Accepts {
        addr,
        connect: timeouts::COLLECTOR_LOOK,
    };
    Ready::all(
        [
            (
                "health check".to_string(),
                Condition::Http {
                    addr: ports.health,
                    path: "/".into(),
                    status: 200,
                    request: timeouts::COLLECTOR_LOOK,
                    from_this_process: false,
                },
            ),
            (format!("OTLP gRPC {}", ports.grpc), accepts(ports.grpc)),
            (format!("OTLP HTTP {}", ports.http), accepts(ports.http)),
        ],
        timeouts::COLLECTOR_START,
    )
    .described("the OpenTelemetry Collector's health check to answer 200 and its OTLP ports to accept")
}
