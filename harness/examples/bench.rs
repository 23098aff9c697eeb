//! Service figures for `cargo xtask bench`: how long the harness's own machinery takes, measured
//! on this machine, never asserted. Run with `--rounds N` (default 10).
//!
//! The OpenTelemetry Collector figures: its build into an empty conform cache (the module and Go
//! build caches as this machine has them, so a first-ever build on a fresh machine is slower:
//! the README gives that figure too), the cached lookup every later run pays, process start to
//! ready, and one OTLP/HTTP export's trip through it to the receiver, next to the same trip
//! straight to the receiver.

use std::time::{Duration, Instant};

use harness::candidate::BuildCache;
use harness::service::collector;
use harness::service::otlp::{OtlpReceiver, OtlpSink};
use harness::service::postgres::PostgresServer;
use harness::service::proxy::FaultProxy;

fn stats(label: &str, samples: &mut [Duration]) {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let mean = samples.iter().map(|d| ms(*d)).sum::<f64>() / samples.len() as f64;
    println!(
        "{label:<34} n={:<3} min {:>7.1} ms  median {:>7.1} ms  mean {:>7.1} ms  max {:>7.1} ms",
        samples.len(),
        ms(samples[0]),
        ms(samples[samples.len() / 2]),
        mean,
        ms(samples[samples.len() - 1])
    );
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rounds: usize = std::env::args()
        .skip_while(|a| a != "--rounds")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(10);

    let (mut initdb, mut start, mut stop, mut fresh) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds.min(5) {
        let server = PostgresServer::start().await?;
        initdb.push(server.initdb_time());
        start.push(server.startup_time());
        if round == 0 {
            for _ in 0..rounds {
                let t = Instant::now();
                let db = server.fresh_database().await?;
                fresh.push(t.elapsed());
                let _ = db;
            }
        }
        let t = Instant::now();
        server.stop().await?;
        stop.push(t.elapsed());
    }
    stats("postgres initdb (tmpfs)", &mut initdb);
    stats("postgres start -> SELECT 1", &mut start);
    stats("fresh database (CREATE ... TEMPLATE)", &mut fresh);
    stats("postgres stop (fast shutdown)", &mut stop);

    let mut otlp = Vec::new();
    for _ in 0..rounds {
        let t = Instant::now();
        let receiver = OtlpReceiver::start().await?;
        otlp.push(t.elapsed());
        drop(receiver);
    }
    stats("OTLP receiver start (gRPC + HTTP)", &mut otlp);

    collector_figures(rounds).await?;

    let upstream = std::net::TcpListener::bind("127.0.0.1:0")?;
    let mut proxy = Vec::new();
    for _ in 0..rounds {
        let t = Instant::now();
        let p = FaultProxy::start(upstream.local_addr()?).await?;
        proxy.push(t.elapsed());
        drop(p);
    }
    stats("fault proxy start", &mut proxy);
    println!(
        "{:<34} {} MiB",
        "harness peak RSS (this process)",
        peak_rss_kib() / 1024
    );
    Ok(())
}

/// One OTLP/JSON export request with one span named `name` (hex ids, as the spec writes them).
fn export_body(name: &str, round: usize) -> String {
    format!(
        r#"{{"resourceSpans":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"bench"}}}}]}},"scopeSpans":[{{"scope":{{"name":"bench"}},"spans":[{{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"{round:016x}","name":"{name}","kind":2,"startTimeUnixNano":"1544712660000000000","endTimeUnixNano":"1544712661000000000"}}]}}]}}]}}"#
    )
}

/// Time from posting one export to `sink`'s front door until the span is at its receiver.
async fn round_trip(
    sink: &OtlpSink,
    client: &reqwest::Client,
    round: usize,
) -> Result<Duration, Box<dyn std::error::Error>> {
    let name = format!("bench-{round}");
    let t = Instant::now();
    let resp = client
        .post(sink.http_traces_url())
        .header("content-type", "application/json")
        .body(export_body(&name, round + 1))
        .send()
        .await?;
    if !resp.status().is_success() {
        return Err(format!("export answered {}", resp.status()).into());
    }
    sink.wait_for_spans(&format!("span {name}"), Duration::from_secs(10), |s| {
        s.iter().any(|s| s.name == name)
    })
    .await?;
    Ok(t.elapsed())
}

async fn collector_figures(rounds: usize) -> Result<(), Box<dyn std::error::Error>> {
    let manifest = collector::default_manifest();
    let scratch = tempfile::tempdir()?;
    let fresh_cache = BuildCache::at(scratch.path());
    // The builder tool is copied in so that only the collector itself is built.
    let home = BuildCache::from_env();
    if let Ok(tools) = std::fs::read_dir(home.root().join("tools")) {
        std::fs::create_dir_all(scratch.path().join("tools"))?;
        for t in tools.flatten() {
            std::fs::copy(t.path(), scratch.path().join("tools").join(t.file_name()))?;
        }
    }
    let m = manifest.clone();
    let built = tokio::task::spawn_blocking(move || collector::build(&m, &fresh_cache)).await??;
    println!(
        "{:<34} {:.1} s (empty conform cache; Go module and build caches as they are)",
        "collector build",
        built.took.as_secs_f64()
    );
    let m = manifest.clone();
    let cached = tokio::task::spawn_blocking(move || collector::build(&m, &home)).await??;
    println!(
        "{:<34} {:.1} ms",
        "collector cached lookup",
        cached.took.as_secs_f64() * 1000.0
    );

    let client = reqwest::Client::builder().no_proxy().build()?;
    let (mut ready, mut through, mut direct) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        let sink = OtlpSink::start(Some(&cached)).await?;
        ready.push(sink.collector().map(|c| c.ready_after()).unwrap_or_default());
        through.push(round_trip(&sink, &client, round).await?);
        let plain = OtlpSink::start(None).await?;
        direct.push(round_trip(&plain, &client, round).await?);
    }
    stats("collector start -> ready", &mut ready);
    stats("span via collector (HTTP)", &mut through);
    stats("span direct to receiver (HTTP)", &mut direct);
    Ok(())
}
