//! Service figures for `cargo xtask bench`: how long the harness's own machinery takes, measured
//! on this machine, never asserted. Run with `--rounds N` (default 10). Postgres is measured under
//! both providers (native, and the docker provider's container when an engine with its image
//! answers), so their ready times can be compared.

use std::time::{Duration, Instant};

use harness::service::docker;
use harness::service::otlp::OtlpReceiver;
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
