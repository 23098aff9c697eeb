//! The services of one run, started on first use and shared by every scenario.
//!
//! One Postgres server per run (each scenario gets its own database from it) and one OTLP sink
//! per scenario that asks: the in-process receiver, behind a real OpenTelemetry Collector of its
//! own when the run was started with `--collector real`. The server and the collector binary are
//! prepared lazily, so a run filtered to clauses that need neither never pays for `initdb` or a
//! collector build; when one cannot be had, every scenario that needs it reports the same harness
//! error, loudly, instead of passing. The provider decides only how the server is started
//! (system binaries or a container); scenarios get the same handle.

use std::sync::Arc;
use std::time::Duration;

use harness::candidate::BuildCache;
use harness::service::Provider;
use harness::service::collector::{self, CollectorBinary, CollectorMode};
use harness::service::otlp::OtlpSink;
use harness::service::postgres::{ContainerOptions, PostgresOptions, PostgresServer};
use harness::verdict::Failure;
use tokio::sync::OnceCell;

/// The services of a run.
#[derive(Debug)]
pub struct Services {
    provider: Provider,
    collector: CollectorMode,
    container: ContainerOptions,
    postgres: OnceCell<Result<Arc<PostgresServer>, String>>,
    collector_binary: OnceCell<Result<CollectorBinary, String>>,
    jwt_secret: String,
}

impl Services {
    /// Services from `provider`, with the in-process OTLP receiver only; none started yet. The
    /// docker provider's Postgres image is `CONFORM_POSTGRES_IMAGE` or the default (see
    /// [`Services::with_postgres_image`]).
    pub fn new(provider: Provider) -> std::io::Result<Services> {
        Services::with_collector(provider, CollectorMode::None)
    }

    /// Services from `provider`, with `collector` in front of every OTLP receiver.
    pub fn with_collector(provider: Provider, collector: CollectorMode) -> std::io::Result<Services> {
        Ok(Services {
            provider,
            collector,
            container: ContainerOptions::default(),
            postgres: OnceCell::new(),
            collector_binary: OnceCell::new(),
            jwt_secret: harness::redact::new_secret(48)?,
        })
    }

    /// Run the docker provider's Postgres from `image` instead.
    pub fn with_postgres_image(mut self, image: impl Into<String>) -> Services {
        self.container.image = image.into();
        self
    }

    /// The JWT secret handed to candidates for this run (registered for redaction).
    pub fn jwt_secret(&self) -> &str {
        &self.jwt_secret
    }

    /// The provider, as recorded in reports.
    pub fn provider(&self) -> Provider {
        self.provider
    }

    /// Whether a real collector stands in front of the receiver, as recorded in reports.
    pub fn collector(&self) -> CollectorMode {
        self.collector
    }

    /// What reports record about the collector: `none`, or `real: <binary and build>` once built.
    pub fn collector_description(&self) -> String {
        match (self.collector, self.collector_binary.get()) {
            (CollectorMode::Real, Some(Ok(binary))) => format!("real: {}", binary.describe()),
            (mode, _) => mode.name().to_string(),
        }
    }

    /// The collector binary of a `--collector real` run, built (or found in the cache) on first
    /// call; `None` without a collector.
    pub async fn collector_binary(&self) -> Result<Option<&CollectorBinary>, Failure> {
        if self.collector == CollectorMode::None {
            return Ok(None);
        }
        let built = self
            .collector_binary
            .get_or_init(|| async {
                let manifest = collector::default_manifest();
                tokio::task::spawn_blocking(move || collector::build(&manifest, &BuildCache::from_env()))
                    .await
                    .map_err(|e| format!("the collector build task failed: {e}"))?
                    .map_err(|e| e.to_string())
            })
            .await;
        built
            .as_ref()
            .map(Some)
            .map_err(|e| Failure::harness(format!("the OpenTelemetry Collector is not available: {e}")))
    }

    /// A fresh OTLP sink for one scenario: a receiver, with the run's collector in front of it.
    pub async fn otlp(&self) -> Result<OtlpSink, Failure> {
        let binary = self.collector_binary().await?;
        Ok(OtlpSink::start(binary).await?)
    }

    /// A fresh OTLP sink with no collector, whatever the run asked for: for the clauses that
    /// grade the candidate's own export request (its headers), which no collector forwards.
    pub async fn otlp_direct(&self) -> Result<OtlpSink, Failure> {
        Ok(OtlpSink::start(None).await?)
    }

    /// The run's Postgres server, started on first call.
    pub async fn postgres(&self) -> Result<Arc<PostgresServer>, Failure> {
        let server = self
            .postgres
            .get_or_init(|| async {
                let started = match self.provider {
                    Provider::Native => {
                        // CONFORM_PG_BINDIR pins the directory holding initdb and postgres (for a
                        // non-Debian layout, or to prove the "not installed" path in tests).
                        let options = PostgresOptions {
                            search_dirs: std::env::var_os("CONFORM_PG_BINDIR").map(|d| vec![d.into()]),
                        };
                        PostgresServer::start_with(options).await
                    }
                    Provider::Docker => PostgresServer::start_in_container(self.container.clone()).await,
                };
                started.map(Arc::new).map_err(|e| e.to_string())
            })
            .await;
        server
            .clone()
            .map_err(|e| Failure::harness(format!("Postgres is not available: {e}")))
    }

    /// How long the Postgres server took to start, if it was started.
    pub fn postgres_startup(&self) -> Option<Duration> {
        match self.postgres.get() {
            Some(Ok(server)) => Some(server.startup_time()),
            _ => None,
        }
    }

    /// Stop everything that was started. A server someone still holds is left to its `Drop`,
    /// except a container: the process may be about to exit, when no `Drop` runs, so it is
    /// removed now (only this server's container: other services of the process keep theirs).
    pub async fn shutdown(self) {
        if let Some(Ok(server)) = self.postgres.into_inner() {
            match Arc::try_unwrap(server) {
                Ok(server) => {
                    if let Err(err) = server.stop().await {
                        eprintln!("conform: stopping Postgres: {err}");
                    }
                }
                Err(server) => {
                    if let Some(id) = server.container_id()
                        && let Ok(engine) = harness::service::docker::Engine::connect().await
                        && let Err(err) = engine.remove(id).await
                    {
                        eprintln!("conform: removing the Postgres container: {err}");
                    }
                    drop(server);
                }
            }
        }
    }
}
