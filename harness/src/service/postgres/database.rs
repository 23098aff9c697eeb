//! A database of the run's server, private to one scenario: its credentials and URLs.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgSslMode};

use super::*;

/// One database on the run's server, private to one scenario.
///
/// `Debug` never shows the password.
#[derive(Clone)]
pub struct Database {
    /// `conform_<n>`.
    pub name: String,
    /// Always `127.0.0.1`.
    pub host: String,
    /// The server's TCP port.
    pub port: u16,
    /// Always `conform`, the database's owner.
    pub user: String,
    pub(super) password: String,
    pub(super) created_in: Duration,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field("name", &self.name)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .field("created_in", &self.created_in)
            .finish()
    }
}

impl Database {
    /// `postgres://conform:<password>@127.0.0.1:<port>/<name>?sslmode=disable`.
    pub fn url(&self) -> String {
        self.url_via(SocketAddr::from((Ipv4Addr::LOCALHOST, self.port)))
    }

    /// The same URL, but reaching the server through `addr` (a [`FaultProxy`](super::proxy::FaultProxy)).
    pub fn url_via(&self, addr: SocketAddr) -> String {
        format!(
            "postgres://{}:{}@{addr}/{}?sslmode=disable",
            self.user, self.password, self.name
        )
    }

    /// The password in the URL; the harness records it as a secret to redact from evidence.
    pub fn password(&self) -> &str {
        &self.password
    }

    /// Connection options for this database over TCP with the password, built field by field
    /// so that no `PG*` variable of the runner's environment changes where they point.
    pub fn connect_options(&self) -> PgConnectOptions {
        PgConnectOptions::new_without_pgpass()
            .host(&self.host)
            .port(self.port)
            .username(&self.user)
            .password(&self.password)
            .database(&self.name)
            .ssl_mode(PgSslMode::Disable)
    }

    /// Connect to this database as `conform` over TCP, for inspecting what a candidate did.
    pub async fn connect(&self) -> Result<PgConnection, PostgresError> {
        PgConnection::connect_with(&self.connect_options())
            .await
            .map_err(sql_error(format!(
                "connecting to database {} as {} at {}:{}",
                self.name, self.user, self.host, self.port
            )))
    }

    /// How long `CREATE DATABASE ... TEMPLATE` took for this database.
    pub fn created_in(&self) -> Duration {
        self.created_in
    }
}
