//! The native Postgres provider against the real system Postgres: databases are fresh and
//! independent, credentials are enforced over TCP, and nothing (process or directory) survives
//! `stop` or a plain drop. Also prints the measured timings for the notes.
//!
//! Each test starts its own server, so a failure in one cannot leave state for another.

use std::path::Path;
use std::time::Instant;

use harness::poll::{self, Poll};
use harness::service::postgres::{PostgresError, PostgresOptions, PostgresServer};
use harness::timeouts;
use sqlx::{Connection, Row};

/// `(pid, ppid, pgrp)` of every process (zombies included), from `/proc`.
fn processes() -> Vec<(u32, u32, u32)> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let pid = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // Fields after the parenthesised command: state, ppid, pgrp, ...
            let (_, rest) = stat.rsplit_once(')')?;
            let mut fields = rest.split_whitespace().skip(1);
            let ppid = fields.next()?.parse().ok()?;
            let pgrp = fields.next()?.parse().ok()?;
            Some((pid, ppid, pgrp))
        })
        .collect()
}

/// The postmaster's children. Each calls `setsid()`, so they are *not* in its process group.
fn children_of(postmaster: u32) -> Vec<u32> {
    processes()
        .into_iter()
        .filter(|&(_, ppid, _)| ppid == postmaster)
        .map(|(pid, _, _)| pid)
        .collect()
}

/// Wait (bounded) until none of `pids` exists any more. Killed children of a killed postmaster
/// are reaped by init, not by us, so their zombies may linger for a moment.
async fn assert_all_gone(pids: &[u32]) {
    let gone = poll::wait_for(
        format!("processes {pids:?} to disappear"),
        timeouts::AFTER_KILL,
        timeouts::POLL_INTERVAL,
        || async {
            let left: Vec<u32> = pids
                .iter()
                .copied()
                .filter(|pid| Path::new(&format!("/proc/{pid}")).exists())
                .collect();
            if left.is_empty() {
                Poll::Ready(())
            } else {
                Poll::NotYet(format!("still there: {left:?}"))
            }
        },
    )
    .await;
    gone.unwrap();
}

/// The System V segment id a running server recorded in `postmaster.pid` (line 7: key, id).
fn sysv_segment(dir: &Path) -> u64 {
    let text = std::fs::read_to_string(dir.join("data/postmaster.pid")).unwrap();
    let line = text.lines().nth(6).expect("postmaster.pid has a shared memory line");
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Whether System V segment `shmid` exists (`/proc/sysvipc/shm`, id in the second column).
fn segment_exists(shmid: u64) -> bool {
    let table = std::fs::read_to_string("/proc/sysvipc/shm").unwrap();
    table
        .lines()
        .skip(1)
        .any(|line| line.split_whitespace().nth(1) == Some(&shmid.to_string()))
}

/// The postmaster and everything it forked (at least one backend, held open by the caller).
fn server_processes(postmaster: u32) -> Vec<u32> {
    let mut pids = children_of(postmaster);
    assert!(
        pids.len() > 1,
        "expected the postmaster's auxiliary processes and a backend, found {pids:?}"
    );
    pids.push(postmaster);
    pids
}

#[tokio::test]
async fn fresh_databases_are_distinct_and_independent() {
    let server = PostgresServer::start().await.unwrap();
    eprintln!(
        "postgres: initdb {:?}, server start (spawn -> SELECT 1) {:?}, port {}",
        server.initdb_time(),
        server.startup_time(),
        server.port()
    );
    let a = server.fresh_database().await.unwrap();
    let b = server.fresh_database().await.unwrap();
    eprintln!(
        "postgres: CREATE DATABASE {} in {:?}, {} in {:?}",
        a.name,
        a.created_in(),
        b.name,
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
    sqlx::raw_sql("CREATE TABLE widgets (id serial PRIMARY KEY, name text NOT NULL)")
        .execute(&mut in_a)
        .await
        .unwrap();
    sqlx::raw_sql("INSERT INTO widgets (name) VALUES ('a')")
        .execute(&mut in_a)
        .await
        .unwrap();

    let mut in_b = b.connect().await.unwrap();
    let found: Option<String> = sqlx::query_scalar("SELECT to_regclass('public.widgets')::text")
        .fetch_one(&mut in_b)
        .await
        .unwrap();
    assert_eq!(found, None, "a table created in {} is visible in {}", a.name, b.name);
    let here: Option<String> = sqlx::query_scalar("SELECT to_regclass('public.widgets')::text")
        .fetch_one(&mut in_a)
        .await
        .unwrap();
    assert_eq!(here.as_deref(), Some("widgets"));

    // The databases belong to the unprivileged role, and the superuser is reachable for admin SQL.
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
    // Dynamic shared memory goes in the data directory, not /dev/shm, so a kill leaves none.
    let dsm: String = sqlx::query_scalar("SHOW dynamic_shared_memory_type")
        .fetch_one(&mut admin)
        .await
        .unwrap();
    assert_eq!(dsm, "mmap");

    in_a.close().await.unwrap();
    in_b.close().await.unwrap();
    admin.close().await.unwrap();
    server.stop().await.unwrap();
}

#[tokio::test]
async fn password_is_required_over_tcp() {
    let server = PostgresServer::start().await.unwrap();
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

    server.stop().await.unwrap();
}

#[tokio::test]
async fn stop_leaves_no_process_and_no_directory() {
    let server = PostgresServer::start().await.unwrap();
    let pid = server.pid();
    let dir = server.dir().to_path_buf();
    assert!(
        dir.starts_with("/dev/shm") || !Path::new("/dev/shm").is_dir(),
        "{dir:?} is not on tmpfs"
    );
    assert!(dir.join("data/PG_VERSION").is_file());
    // Open a connection so that there is a backend at stop time.
    let db = server.fresh_database().await.unwrap();
    let conn = db.connect().await.unwrap();
    let pids = server_processes(pid);
    let shmid = sysv_segment(&dir);

    let started = Instant::now();
    server.stop().await.unwrap();
    eprintln!("postgres: stop (SIGINT, wait, remove dir) {:?}", started.elapsed());

    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "postmaster {pid} still exists"
    );
    assert_all_gone(&pids).await;
    assert!(!dir.exists(), "{dir:?} was not removed");
    assert!(!segment_exists(shmid), "System V segment {shmid} is left");
    drop(conn);
}

#[tokio::test]
async fn drop_without_stop_leaves_nothing() {
    let server = PostgresServer::start().await.unwrap();
    let pid = server.pid();
    let dir = server.dir().to_path_buf();
    let db = server.fresh_database().await.unwrap();
    let conn = db.connect().await.unwrap();
    let pids = server_processes(pid);
    let shmid = sysv_segment(&dir);
    assert!(segment_exists(shmid));

    drop(server);

    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "postmaster {pid} still exists"
    );
    assert_all_gone(&pids).await;
    assert!(!dir.exists(), "{dir:?} was not removed");
    assert!(
        !segment_exists(shmid),
        "the killed server's System V segment {shmid} is left"
    );
    drop(conn);
}

/// What the reaper does on Ctrl-C: SIGKILL to the postmaster's process group, which holds only
/// the postmaster. Its children must still go away on their own (they watch for the
/// postmaster's death), so an interrupted run leaks no backend. The System V segment the dead
/// server leaves is removed when the handle is dropped.
#[tokio::test]
async fn children_of_a_killed_postmaster_exit_on_their_own() {
    let server = PostgresServer::start().await.unwrap();
    let pid = server.pid();
    let shmid = sysv_segment(server.dir());
    let db = server.fresh_database().await.unwrap();
    let conn = db.connect().await.unwrap();
    let pids = server_processes(pid);

    let started = Instant::now();
    nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let children: Vec<u32> = pids.iter().copied().filter(|&p| p != pid).collect();
    assert_all_gone(&children).await;
    eprintln!(
        "postgres: orphaned children of a SIGKILLed postmaster gone after {:?}",
        started.elapsed()
    );

    assert!(segment_exists(shmid), "expected the killed server to leave its segment");
    drop(server);
    assert!(!segment_exists(shmid), "segment {shmid} survived the handle's drop");
    drop(conn);
}

#[tokio::test]
async fn not_installed_names_the_package_and_the_searched_paths() {
    let empty = tempfile::tempdir().unwrap();
    let options = PostgresOptions {
        search_dirs: Some(vec![empty.path().to_path_buf()]),
    };
    let err = PostgresServer::start_with(options).await.unwrap_err();
    let PostgresError::NotInstalled { searched } = &err else {
        panic!("expected NotInstalled, got {err}")
    };
    assert_eq!(searched, &vec![empty.path().to_path_buf()]);
    let message = err.to_string();
    assert!(message.contains("`postgresql` package"), "{message}");
    assert!(message.contains(&empty.path().display().to_string()), "{message}");
    assert!(message.contains("initdb"), "{message}");
    eprintln!("postgres: NotInstalled says: {message}");

    let none = PostgresServer::start_with(PostgresOptions {
        search_dirs: Some(Vec::new()),
    })
    .await
    .unwrap_err();
    assert!(matches!(none, PostgresError::NotInstalled { .. }), "{none}");
}
