//! What only the native Postgres provider has, against the real system Postgres: the postmaster's
//! children, its System V segment and dynamic shared memory leave nothing after `stop`, a plain
//! drop or a SIGKILL, and a missing installation is named with its fix. What both providers
//! promise (fresh databases, credentials, no leaks) is in `postgres_providers.rs`.
//!
//! Each test starts its own server, so a failure in one cannot leave state for another.

use std::path::Path;
use std::time::Instant;

use harness::poll::{self, Poll};
use harness::service::postgres::{PostgresError, PostgresOptions, PostgresServer};
use harness::timeouts;
use sqlx::Connection;

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
    // Dynamic shared memory goes in the data directory, not /dev/shm, so a kill leaves none.
    let mut admin = server.superuser().await.unwrap();
    let dsm: String = sqlx::query_scalar("SHOW dynamic_shared_memory_type")
        .fetch_one(&mut admin)
        .await
        .unwrap();
    assert_eq!(dsm, "mmap");
    admin.close().await.unwrap();
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
