//! Service figures for `cargo xtask bench`: how long the harness's own machinery takes, measured
//! on this machine, never asserted. Run with `--rounds N` (default 10). Postgres is measured under
//! both providers (native, and the docker provider's container when an engine with its image
//! answers), so their ready times can be compared.
//!
//! The OpenTelemetry Collector figures: its build into an empty conform cache (the module and Go
//! build caches as this machine has them, so a first-ever build on a fresh machine is slower:
//! the README gives that figure too), the cached lookup every later run pays, process start to
//! ready, and one OTLP/HTTP export's trip through it to the receiver, next to the same trip
//! straight to the receiver.

use std::time::{Duration, Instant};

use harness::candidate::BuildCache;
use harness::service::collector;
use harness::service::docker;
use harness::service::otlp::{OtlpReceiver, OtlpSink};
use harness::service::postgres::{ContainerOptions, PostgresError, PostgresServer};
use harness::service::proxy::FaultProxy;

fn stats(label: &str, samples: &mut [Duration]) {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let mean = samples.iter().map(|d| ms(*d)).sum::<f64>() / samples.len() as f64;
    println!(
        "{label:<38} n={:<3} min {:>7.1} ms  median {:>7.1} ms  mean {:>7.1} ms  max {:>7.1} ms",
        samples.len(),
        ms(samples[0]),
        ms(samples[samples.len() / 2]),
        mean,
        ms(samples[samples.len() - 1])
    );
}

/// Samples of one provider's Postgres: start (`initdb` and start-up), fresh databases, stop.
struct PostgresSamples {
    initdb: Vec<Duration>,
    start: Vec<Duration>,
    fresh: Vec<Duration>,
    stop: Vec<Duration>,
}

impl PostgresSamples {
    /// Print every figure (sorting the samples), `initdb` when the provider runs it.
    fn print(&mut self, label: &str, with_initdb: bool) {
        if with_initdb {
            stats(&format!("{label} initdb (tmpfs)"), &mut self.initdb);
        }
        stats(&format!("{label} start -> SELECT 1"), &mut self.start);
        stats(&format!("{label} fresh database"), &mut self.fresh);
        stats(&format!("{label} stop"), &mut self.stop);
    }
}

/// Start up to 5 servers with `start`, creating `rounds` fresh databases on the first.
async fn measure_postgres<F, Fut>(rounds: usize, start: F) -> Result<PostgresSamples, PostgresError>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<PostgresServer, PostgresError>>,
{
    let mut samples = PostgresSamples {
        initdb: Vec::new(),
        start: Vec::new(),
        fresh: Vec::new(),
        stop: Vec::new(),
    };
    for round in 0..rounds.min(5) {
        let server = start().await?;
        samples.initdb.push(server.initdb_time());
        samples.start.push(server.startup_time());
        if round == 0 {
            for _ in 0..rounds {
                let t = Instant::now();
                let _db = server.fresh_database().await?;
                samples.fresh.push(t.elapsed());
            }
        }
        let t = Instant::now();
        server.stop().await?;
        samples.stop.push(t.elapsed());
    }
    Ok(samples)
}

/// The median of sorted samples.
fn median(sorted: &[Duration]) -> Duration {
    sorted[sorted.len() / 2]
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

    let mut native = measure_postgres(rounds, PostgresServer::start).await?;
    native.print("postgres", true);
    // Native readiness from nothing includes initdb; the container's cluster is baked in.
    let native_ready = median(&native.start);
    let native_from_nothing = median(&native.initdb) + native_ready;

    let image = ContainerOptions::default();
    match docker::ready_for(&image.image, &image.hint()).await {
        Err(err) => println!("postgres in a container: not measured ({err})"),
        Ok(_) => {
            let mut container = measure_postgres(rounds, || PostgresServer::start_in_container(image.clone())).await?;
            container.print("container postgres", false);
            let ms = |d: Duration| d.as_secs_f64() * 1000.0;
            println!(
                "{:<38} container {:.0} ms ({}) vs native {:.0} ms start, {:.0} ms with initdb (medians)",
                "postgres ready: container vs native",
                ms(median(&container.start)),
                image.image,
                ms(native_ready),
                ms(native_from_nothing)
            );
        }
    }

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
        "{:<38} {} MiB",
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
