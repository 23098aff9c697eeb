//! Provider parity at the service level: the promises a scenario relies on from its Postgres
//! handle (fresh and independent databases cloned from a template, the unprivileged `conform`
//! role whose password TCP enforces, superuser administration, nothing left after stop or drop)
//! are checked by one function each, run once against the native server and once against the
//! docker provider's container (`<check>::native`, `<check>::docker`). Then what only the docker
//! provider has: labels, host networking, tmpfs data, the stale-container sweep, a missing image.
//!
//! The docker variants need a Docker engine with the provider's image (`cargo xtask images`).
//! Without one they fail under `CI=true` (CI installs and starts docker, so its absence is a
//! broken set-up) and are skipped with the reason printed elsewhere.

use std::path::{Path, PathBuf};

use harness::poll::{self, Poll};
use harness::service::Provider;
use harness::service::docker::{self, Engine};
use harness::service::postgres::{ContainerOptions, PostgresError, PostgresServer};
use harness::timeouts;
use sqlx::{Connection, Row};
use testcontainers::core::WaitFor;
use testcontainers::runners::AsyncRunner;
use testcontainers::{GenericImage, ImageExt};

/// The docker provider's engine, or `None` (skip, reason printed) outside CI when it is missing.
async fn docker_engine() -> Option<Engine> {
    let options = ContainerOptions::default();
    match docker::ready_for(&options.image, &options.hint()).await {
        Ok(engine) => Some(engine),
        Err(err) if docker::required() => panic!("CI is set, so the docker provider must be available: {err}"),
        Err(err) => {
            eprintln!("SKIPPED: the docker provider is not available here: {err}");
            None
        }
    }
}

/// A server from `provider`, or `None` when the docker provider is unavailable outside CI.
async fn start(provider: Provider) -> Option<PostgresServer> {
    let server = match provider {
        Provider::Native => PostgresServer::start().await.unwrap(),
        Provider::Docker => {
            docker_engine().await?;
            match PostgresServer::start_in_container(ContainerOptions::default()).await {
                Ok(server) => server,
                Err(err) => panic!("starting Postgres in a container: {err}"),
            }
        }
    };
    assert_eq!(server.provider(), provider);
    eprintln!(
        "postgres ({}): start -> SELECT 1 in {:?}, port {}",
        provider.name(),
        server.startup_time(),
        server.port()
    );
    Some(server)
}

/// One check, run under both providers.
macro_rules! under_both_providers {
    ($($check:ident),* $(,)?) => {$(
        mod $check {
            use super::*;

            #[tokio::test]
            async fn native() {
                if let Some(server) = start(Provider::Native).await {
                    super::$check(server).await;
                }
            }

            #[tokio::test]
            async fn docker() {
                if let Some(server) = start(Provider::Docker).await {
                    super::$check(server).await;
                }
            }
        }
    )*};
}

under_both_providers!(
    fresh_databases_are_distinct_and_cloned_from_a_clean_template,
    password_is_required_over_tcp,
    stop_leaves_nothing,
    drop_leaves_nothing,
);

async fn has_widgets(conn: &mut sqlx::PgConnection) -> bool {
    let found: Option<String> = sqlx::query_scalar("SELECT to_regclass('public.widgets')::text")
        .fetch_one(conn)
        .await
        .unwrap();
    found.is_some()
}

async fn fresh_databases_are_distinct_and_cloned_from_a_clean_template(server: PostgresServer) {
    let a = server.fresh_database().await.unwrap();
    let b = server.fresh_database().await.unwrap();
    eprintln!(
        "postgres ({}): CREATE DATABASE ... TEMPLATE in {:?} and {:?}",
        server.provider().name(),
        a.created_in(),
        b.created_in()
    );
    assert_ne!(a.name, b.name);
    assert!(a.name.starts_with("conform_") && b.name.starts_with("conform_"));
    assert_eq!(
        a.url(),
        format!(
            "postgres://conform:{}@127.0.0.1:{}/{}?sslmode=disable",
            a.password(),
            server.port(),
            a.name
        )
    );

    let mut in_a = a.connect().await.unwrap();
    sqlx::raw_sql(
        "CREATE TABLE widgets (id serial PRIMARY KEY, name text NOT NULL); INSERT INTO widgets (name) VALUES ('a')",
    )
    .execute(&mut in_a)
    .await
    .unwrap();
    assert!(has_widgets(&mut in_a).await);
    let mut in_b = b.connect().await.unwrap();
    assert!(
        !has_widgets(&mut in_b).await,
        "a table created in {} is visible in {}",
        a.name,
        b.name
    );
    // The template is untouched by what a scenario does in its database.
    let c = server.fresh_database().await.unwrap();
    let mut in_c = c.connect().await.unwrap();
    assert!(
        !has_widgets(&mut in_c).await,
        "{} (created later) inherited widgets",
        c.name
    );

    // The databases belong to the unprivileged role; the superuser is reachable for admin SQL.
    let mut admin = server.superuser().await.unwrap();
    let row = sqlx::query("SELECT pg_get_userbyid(datdba) AS owner FROM pg_database WHERE datname = $1")
        .bind(&a.name)
        .fetch_one(&mut admin)
        .await
        .unwrap();
    assert_eq!(row.get::<String, _>("owner"), "conform");
    let is_super: bool = sqlx::query_scalar("SELECT rolsuper FROM pg_roles WHERE rolname = 'conform'")
        .fetch_one(&mut admin)
        .await
        .unwrap();
    assert!(!is_super);
    let listen: String = sqlx::query_scalar("SHOW listen_addresses")
        .fetch_one(&mut admin)
        .await
        .unwrap();
    assert_eq!(listen, "127.0.0.1");

    for conn in [in_a, in_b, in_c, admin] {
        conn.close().await.unwrap();
    }
    server.stop().await.unwrap();
}

async fn password_is_required_over_tcp(server: PostgresServer) {
    let db = server.fresh_database().await.unwrap();
    assert!(!format!("{db:?}").contains(db.password()), "Debug shows the password");
    assert!(
        !format!("{server:?}").contains(server.password()),
        "Debug shows the password"
    );
    assert_eq!(server.password(), db.password());

    let mut conn = db.connect().await.unwrap();
    let one: i32 = sqlx::query_scalar("SELECT 1").fetch_one(&mut conn).await.unwrap();
    assert_eq!(one, 1);
    conn.close().await.unwrap();

    // The URL form works too (what a candidate is given).
    let by_url = sqlx::PgConnection::connect(&db.url()).await.unwrap();
    by_url.close().await.unwrap();

    let wrong = db.connect_options().password("not-the-password");
    let err = sqlx::PgConnection::connect_with(&wrong).await.unwrap_err();
    let code = err.as_database_error().and_then(|e| e.code()).map(|c| c.into_owned());
    assert_eq!(code.as_deref(), Some("28P01"), "expected invalid_password, got {err}");

    let no_password = db.connect_options().password("");
    assert!(sqlx::PgConnection::connect_with(&no_password).await.is_err());

    // Not even the superuser gets in over TCP without a password.
    let superuser_tcp = db
        .connect_options()
        .username("postgres")
        .password("")
        .database("postgres");
    assert!(sqlx::PgConnection::connect_with(&superuser_tcp).await.is_err());

    server.stop().await.unwrap();
}

/// What a server leaves behind if anything: its pid, its scratch directory, its container.
struct Traces {
    pid: u32,
    dir: PathBuf,
    container: Option<String>,
}

impl Traces {
    fn of(server: &PostgresServer) -> Traces {
        assert!(server.pid() > 0);
        assert!(server.dir().is_dir());
        Traces {
            pid: server.pid(),
            dir: server.dir().to_path_buf(),
            container: server.container_id().map(str::to_string),
        }
    }

    /// Wait (bounded) until none of it is left.
    async fn assert_gone(&self) {
        let gone = poll::wait_for(
            format!("server pid {} and its container to disappear", self.pid),
            timeouts::AFTER_KILL,
            timeouts::POLL_INTERVAL,
            || async {
                if Path::new(&format!("/proc/{}", self.pid)).exists() {
                    return Poll::NotYet(format!("pid {} exists", self.pid));
                }
                if let Some(id) = &self.container
                    && let Some(engine) = Engine::connect().await.ok()
                    && engine.client().inspect_container(id, None).await.is_ok()
                {
                    return Poll::NotYet(format!("container {id} exists"));
                }
                Poll::Ready(())
            },
        )
        .await;
        gone.unwrap();
        assert!(!self.dir.exists(), "{:?} was not removed", self.dir);
    }
}

async fn stop_leaves_nothing(server: PostgresServer) {
    // A connection open at stop time: the server must end its backend, not wait for it.
    let db = server.fresh_database().await.unwrap();
    let conn = db.connect().await.unwrap();
    let traces = Traces::of(&server);
    server.stop().await.unwrap();
    traces.assert_gone().await;
    drop(conn);
}

async fn drop_leaves_nothing(server: PostgresServer) {
    let db = server.fresh_database().await.unwrap();
    let conn = db.connect().await.unwrap();
    let traces = Traces::of(&server);
    drop(server);
    traces.assert_gone().await;
    drop(conn);
}

#[tokio::test]
async fn container_is_labelled_on_host_network_with_data_on_tmpfs() {
    let Some(server) = start(Provider::Docker).await else {
        return;
    };
    let engine = Engine::connect().await.unwrap();
    let id = server.container_id().unwrap().to_string();
    let inspected = engine.client().inspect_container(&id, None).await.unwrap();
    let labels = inspected.config.and_then(|c| c.labels).unwrap_or_default();
    assert_eq!(labels.get(docker::LABEL).map(String::as_str), Some("1"), "{labels:?}");
    assert_eq!(
        labels.get(docker::RUN_LABEL).map(String::as_str),
        Some(docker::run_id())
    );
    let network = inspected.host_config.and_then(|h| h.network_mode);
    assert_eq!(network.as_deref(), Some("host"));
    let mut admin = server.superuser().await.unwrap();
    let data: String = sqlx::query_scalar("SHOW data_directory")
        .fetch_one(&mut admin)
        .await
        .unwrap();
    assert_eq!(data, "/pgtmp/data");
    let mounts = inspected_mounts(&engine, &id).await;
    let fstype = mounts
        .iter()
        .find(|(target, _)| target == "/pgtmp")
        .map(|(_, typ)| typ.clone())
        .unwrap_or_default();
    assert_eq!(fstype, "tmpfs");
    admin.close().await.unwrap();
    server.stop().await.unwrap();
}

/// `(target, type)` of every mount of a container.
async fn inspected_mounts(engine: &Engine, id: &str) -> Vec<(String, String)> {
    let inspected = engine.client().inspect_container(id, None).await.unwrap();
    inspected
        .host_config
        .and_then(|h| h.mounts)
        .unwrap_or_default()
        .into_iter()
        .map(|m| {
            let typ = m.typ.map(|t| t.to_string()).unwrap_or_default();
            (m.target.unwrap_or_default(), typ)
        })
        .collect()
}

#[tokio::test]
async fn a_missing_image_is_named_with_how_to_get_it() {
    if docker_engine().await.is_none() {
        return;
    }
    let options = ContainerOptions {
        image: "conform/no-such-image:0".into(),
    };
    let err = PostgresServer::start_in_container(options).await.unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, PostgresError::Docker(_)), "{message}");
    assert!(message.contains("conform/no-such-image:0"), "{message}");
    assert!(message.contains("docker pull"), "{message}");
    assert!(message.contains(&docker::host()), "{message}");
}

/// A container labelled by a run that no longer exists (a crashed runner) is removed by the
/// sweep; one of a live run (this one) is not.
#[tokio::test]
async fn the_sweep_removes_containers_of_dead_runs_only() {
    let Some(engine) = docker_engine().await else {
        return;
    };
    let (name, tag) = ContainerOptions::default()
        .image
        .rsplit_once(':')
        .map(|(n, t)| (n.to_string(), t.to_string()))
        .unwrap();
    let port = harness::ports::free_port().unwrap().to_string();
    // pid 4194305 is above the kernel's pid_max: that run can never be alive.
    let stale = GenericImage::new(name, tag)
        .with_wait_for(WaitFor::message_on_stderr("ready to accept connections"))
        .with_network("host")
        .with_label(docker::LABEL, "1")
        .with_label(docker::RUN_LABEL, "4194305-1")
        .with_cmd(["-p", port.as_str()])
        .start()
        .await
        .unwrap();
    let ours = start(Provider::Docker).await.unwrap();
    let removed = engine.sweep_stale().await.unwrap();
    assert!(removed >= 1, "the stale container was not swept");
    assert!(
        engine.client().inspect_container(stale.id(), None).await.is_err(),
        "stale container {} is still there",
        stale.id()
    );
    let ours_id = ours.container_id().unwrap();
    assert!(
        engine.client().inspect_container(ours_id, None).await.is_ok(),
        "the sweep removed a live run's container"
    );
    ours.stop().await.unwrap();
    drop(stale);
}
