//! Service figures for `cargo xtask bench`: how long the harness's own machinery takes, measured
//! on this machine, never asserted. Run with `--rounds N` (default 10). Postgres is measured under
//! both providers (native, and the docker provider's container when an engine with its image
//! answers), so their ready times can be compared.

use std::time::{Duration, Instant};

use harness::service::docker;
use harness::service::otlp::OtlpReceiver;
use harness::service::postgres::{ContainerOptions, PostgresServer};
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
    // Native readiness from nothing includes initdb; the container's cluster is baked in.
    let native_ready = median(&start);
    let native_from_nothing = median(&initdb) + native_ready;

    let image = ContainerOptions::default();
    match docker::ready_for(&image.image, &image.hint()).await {
        Err(err) => println!("postgres in a container: not measured ({err})"),
        Ok(_) => {
            let (mut start, mut stop, mut fresh) = (Vec::new(), Vec::new(), Vec::new());
            for round in 0..rounds.min(5) {
                let server = PostgresServer::start_in_container(image.clone()).await?;
                start.push(server.startup_time());
                if round == 0 {
                    for _ in 0..rounds {
                        let t = Instant::now();
                        let _ = server.fresh_database().await?;
                        fresh.push(t.elapsed());
                    }
                }
                let t = Instant::now();
                server.stop().await?;
                stop.push(t.elapsed());
            }
            stats("container postgres start -> SELECT 1", &mut start);
            stats("container fresh database", &mut fresh);
            stats("container postgres stop + rm", &mut stop);
            let ms = |d: Duration| d.as_secs_f64() * 1000.0;
            println!(
                "{:<38} container {:.0} ms ({}) vs native {:.0} ms start, {:.0} ms with initdb (medians)",
                "postgres ready: container vs native",
                ms(median(&start)),
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
