//! The services of one run, started on first use and shared by every scenario.
//!
//! One Postgres server per run (each scenario gets its own database from it) and one OTLP
//! receiver per scenario that asks. The server is started lazily, so a run filtered to clauses
//! that need no database never pays for `initdb`; when it cannot start, every scenario that needs
//! it reports the same harness error, loudly, instead of passing. The provider decides only how
//! the server is started (system binaries or a container); scenarios get the same handle.

use std::sync::Arc;
use std::time::Duration;

use harness::service::Provider;
use harness::service::postgres::{ContainerOptions, PostgresOptions, PostgresServer};
use harness::verdict::Failure;
use tokio::sync::OnceCell;

/// The services of a run.
#[derive(Debug)]
pub struct Services {
    provider: Provider,
    container: ContainerOptions,
    postgres: OnceCell<Result<Arc<PostgresServer>, String>>,
    jwt_secret: String,
}

impl Services {
    /// Services from `provider`, none started yet. The docker provider's Postgres image is
    /// `CONFORM_POSTGRES_IMAGE` or the default (see [`Services::with_postgres_image`]).
    pub fn new(provider: Provider) -> std::io::Result<Services> {
        Ok(Services {
            provider,
            container: ContainerOptions::default(),
            postgres: OnceCell::new(),
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
