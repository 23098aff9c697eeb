//! The services of one run, started on first use and shared by every scenario.
//!
//! One Postgres server per run (each scenario gets its own database from it) and one OTLP
//! receiver per scenario that asks. The server is started lazily, so a run filtered to clauses
//! that need no database never pays for `initdb`; when it cannot start, every scenario that needs
//! it reports the same harness error, loudly, instead of passing.

use std::sync::Arc;
use std::time::Duration;

use harness::service::Provider;
use harness::service::postgres::{PostgresOptions, PostgresServer};
use harness::verdict::Failure;
use tokio::sync::OnceCell;

/// The services of a run.
#[derive(Debug)]
pub struct Services {
    provider: Provider,
    postgres: OnceCell<Result<Arc<PostgresServer>, String>>,
    jwt_secret: String,
}

impl Services {
    /// Services from `provider`, none started yet.
    pub fn new(provider: Provider) -> std::io::Result<Services> {
        Ok(Services {
            provider,
            postgres: OnceCell::new(),
            jwt_secret: harness::redact::new_secret(48)?,
        })
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
                // CONFORM_PG_BINDIR pins the directory holding initdb and postgres (for a
                // non-Debian layout, or to prove the "not installed" path in tests).
                let options = PostgresOptions {
                    search_dirs: std::env::var_os("CONFORM_PG_BINDIR").map(|d| vec![d.into()]),
                };
                PostgresServer::start_with(options)
                    .await
                    .map(Arc::new)
                    .map_err(|e| e.to_string())
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

    /// Stop everything that was started.
    pub async fn shutdown(self) {
        if let Some(Ok(server)) = self.postgres.into_inner() {
            match Arc::try_unwrap(server) {
                Ok(server) => {
                    if let Err(err) = server.stop().await {
                        eprintln!("conform: stopping Postgres: {err}");
                    }
                }
                // Someone still holds it; its Drop kills the server when they let go.
                Err(server) => drop(server),
            }
        }
    }
}
