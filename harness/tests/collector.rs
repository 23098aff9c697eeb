//! The real OpenTelemetry Collector between a real exporter and the in-process receiver.
//!
//! The collector is built from `fixtures/collector/builder-config.yaml` with the collector builder
//! (once per machine: the binary is cached by manifest hash; `cargo xtask test` builds it in its
//! set-up), started as a native process in front of a fresh receiver, and fed by the Go exporter
//! fixture on the real OpenTelemetry Go SDK over OTLP/gRPC and OTLP/HTTP. The spans must arrive
//! at the receiver as the SDK sent them (names, attributes, resource, scope, status, trace and
//! span ids), over the same transport, and once the sink is dropped no collector process may be
//! left. Go and the module proxy are required: without them these tests fail, they never skip.
#![allow(clippy::disallowed_methods)] // The test builds and runs the Go exporter fixture itself.

#[path = "support/go_exporter.rs"]
mod go_exporter;

use std::time::{Duration, Instant};

use go_exporter::{ARRIVAL, export_pair};
use harness::candidate::BuildCache;
use harness::poll::{self, Poll};
use harness::service::collector::{self, CollectorBinary};
use harness::service::otlp::{OtlpSink, Transport};
use harness::timeouts;
use tokio::sync::OnceCell;

static COLLECTOR: OnceCell<CollectorBinary> = OnceCell::const_new();

/// The collector binary, built (or taken from the cache) once per test binary.
async fn collector_binary() -> &'static CollectorBinary {
    COLLECTOR
        .get_or_init(|| async {
            let built = tokio::task::spawn_blocking(|| {
                collector::build(&collector::default_manifest(), &BuildCache::from_env())
            })
            .await
            .expect("the collector build task");
            let binary = built.unwrap_or_else(|e| panic!("{e}"));
            eprintln!(
                "collector {} ({})",
                binary.binary.display(),
                if binary.cached { "cached" } else { "built" }
            );
            binary
        })
        .await
}

/// A sink with the collector in front, started and checked for readiness.
async fn sink_with_collector() -> OtlpSink {
    let binary = collector_binary().await;
    let sink = OtlpSink::start(Some(binary)).await.unwrap_or_else(|e| panic!("{e}"));
    let c = sink.collector().expect("a collector was asked for");
    eprintln!("collector pid {} ready in {:?}", c.pid(), c.ready_after());
    assert_ne!(
        sink.grpc_addr(),
        sink.receiver().grpc_addr(),
        "the front door is the collector"
    );
    assert_ne!(
        sink.http_addr(),
        sink.receiver().http_addr(),
        "the front door is the collector"
    );
    assert!(sink.grpc_addr().ip().is_loopback() && sink.http_addr().ip().is_loopback());
    sink
}

/// Whether `pid` is a live (non-zombie) process.
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state is the first field after the parenthesised command name.
        Ok(stat) => stat.rsplit_once(") ").is_some_and(|(_, rest)| !rest.starts_with('Z')),
        Err(_) => false,
    }
}

/// Drop `sink` and wait (bounded) until its collector process is gone.
async fn assert_collector_gone(sink: OtlpSink) {
    let pid = sink.collector().expect("a collector").pid();
    let workdir_logs = sink
        .collector()
        .expect("a collector")
        .output()
        .stdout_path()
        .to_path_buf();
    drop(sink);
    poll::wait_for(
        format!("collector pid {pid} to be gone after drop"),
        Duration::from_secs(10),
        timeouts::POLL_INTERVAL,
        || async move {
            if alive(pid) {
                Poll::NotYet(format!("pid {pid} alive"))
            } else {
                Poll::Ready(())
            }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        !workdir_logs.exists(),
        "the collector's work directory is removed with it: {}",
        workdir_logs.display()
    );
}

async fn round_trip(protocol: &str, transport: Transport) {
    let sink = sink_with_collector().await;
    let sent = Instant::now();
    export_pair(&sink, protocol, transport).await;
    eprintln!(
        "[{protocol}] two exporter runs through the collector in {:?}",
        sent.elapsed()
    );
    let spans = sink.spans();
    assert_eq!(spans.len(), 2, "{spans:#?}");
    let exports = sink.exports();
    assert!(
        exports.iter().all(|e| e.error.is_none() && e.transport == transport),
        "the collector forwards over the transport it received on: {exports:#?}"
    );
    // Why GR-TRC-9 bypasses the collector: the exporter's own headers stop at the collector.
    assert!(
        exports.iter().all(|e| !e.headers.contains_key("x-conform-test")),
        "the core collector does not forward client metadata: {exports:#?}"
    );
    let debug = sink.collector().expect("a collector").output();
    debug
        .wait_for_line("from the debug exporter", ARRIVAL, |l| l.text.contains("Traces"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_collector_gone(sink).await;
}

#[tokio::test]
async fn go_sdk_spans_through_the_collector_over_grpc_arrive_intact() {
    round_trip("grpc", Transport::Grpc).await;
}

#[tokio::test]
async fn go_sdk_spans_through_the_collector_over_http_arrive_intact() {
    round_trip("http/protobuf", Transport::HttpProtobuf).await;
}

#[tokio::test]
async fn a_collector_that_cannot_start_says_what_it_printed() {
    // A binary that is not a collector at all: `true` exits 0 at once, before any readiness.
    let mut fake = collector_binary().await.clone();
    fake.binary = "/bin/true".into();
    let receiver = harness::service::otlp::OtlpReceiver::start().await.unwrap();
    let err = collector::Collector::start(&fake, &receiver)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("did not become ready"), "{err}");
    assert!(err.contains("exited"), "the wait ends when the process exits: {err}");
    assert!(err.contains("/bin/true"), "names the binary: {err}");
}
