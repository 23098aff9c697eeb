//! Service figures for `cargo xtask bench`: how long the harness's own machinery takes, measured
//! on this machine, never asserted. Run with `--rounds N` (default 10).

use std::time::{Duration, Instant};

use harness::service::otlp::OtlpReceiver;
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
