//! Services a candidate runs against: Postgres, SQLite and an OTLP receiver, plus a loopback TCP
//! proxy that lets a scenario take a dependency away and give it back.
//!
//! Every service is reached through a [`Provider`]: `native` runs system binaries and in-process
//! servers; `docker` runs Postgres from an image through testcontainers (see [`docker`]) behind
//! the same handle ([`postgres::PostgresServer`]), so scenarios never learn how a service was
//! provided, only its address.

pub mod collector;
pub mod docker;
pub mod otlp;
pub mod postgres;
pub mod proxy;
pub mod schema;
pub mod scratch_image;
pub mod sqlite;
pub mod stub;

use serde::Serialize;

/// How services are provided for a run. Recorded in every report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    /// System binaries (`initdb`, `postgres`) and in-process servers.
    Native,
    /// Postgres in a container (testcontainers, host networking); the rest in-process.
    Docker,
}

impl Provider {
    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Provider::Native => "native",
            Provider::Docker => "docker",
        }
    }
}
