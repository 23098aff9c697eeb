//! Finding the Postgres installation: server binaries, the user to run as, where scratch data goes.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use sqlx::postgres::{PgConnectOptions, PgSslMode};

use crate::timeouts;

use super::*;

pub(super) fn superuser_options(socket_dir: &Path, port: u16) -> PgConnectOptions {
    PgConnectOptions::new_without_pgpass()
        .socket(socket_dir)
        .port(port)
        .username(SUPERUSER)
        .database("postgres")
        .ssl_mode(PgSslMode::Disable)
}

/// Where scratch directories go: tmpfs if there is one.
pub(super) fn scratch_parent() -> PathBuf {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    }
}

/// Root cannot run Postgres; run it as the `postgres` system user instead.
pub(super) fn run_as() -> Result<Option<RunAs>, PostgresError> {
    if !nix::unistd::geteuid().is_root() {
        return Ok(None);
    }
    match nix::unistd::User::from_name(SUPERUSER) {
        Ok(Some(user)) => Ok(Some(RunAs {
            uid: user.uid.as_raw(),
            gid: user.gid.as_raw(),
        })),
        Ok(None) => Err(PostgresError::NoPostgresUser),
        Err(errno) => Err(PostgresError::Io {
            action: "look up the postgres system user".into(),
            source: std::io::Error::from(errno),
        }),
    }
}

/// Find a directory holding both `initdb` and `postgres`.
pub(super) async fn find_binaries(search_dirs: Option<&[PathBuf]>) -> Result<Binaries, PostgresError> {
    let candidates = match search_dirs {
        Some(dirs) => dirs.to_vec(),
        None => default_search_dirs().await,
    };
    for dir in &candidates {
        let initdb = dir.join("initdb");
        let postgres = dir.join("postgres");
        if is_executable(&initdb) && is_executable(&postgres) {
            return Ok(Binaries { initdb, postgres });
        }
    }
    Err(PostgresError::NotInstalled { searched: candidates })
}

pub(super) fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// `/usr/lib/postgresql/<version>/bin`, newest first; then `pg_config --bindir`; then `PATH`.
pub(super) async fn default_search_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    let debian = Path::new("/usr/lib/postgresql");
    let mut versions: Vec<(Vec<u32>, PathBuf)> = std::fs::read_dir(debian)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            let version = name
                .split('.')
                .map(|part| part.parse().ok())
                .collect::<Option<Vec<u32>>>()?;
            Some((version, entry.path().join("bin")))
        })
        .collect();
    versions.sort();
    if versions.is_empty() {
        dirs.push(debian.join("<version>/bin"));
    }
    dirs.extend(versions.into_iter().rev().map(|(_, path)| path));
    if let Some(bindir) = pg_config_bindir().await {
        dirs.push(bindir);
    }
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    let mut seen = std::collections::HashSet::new();
    dirs.retain(|d| seen.insert(d.clone()));
    dirs
}

/// `pg_config --bindir`, if `pg_config` is on `PATH` and answers within the ceiling.
pub(super) async fn pg_config_bindir() -> Option<PathBuf> {
    let mut command = crate::process::command("pg_config");
    command
        .arg("--bindir")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let finished = run_bounded(command, "pg_config --bindir", timeouts::POSTGRES_START)
        .await
        .ok()?;
    if !finished.status.success() {
        return None;
    }
    let mut out = String::new();
    finished.stdout?.read_to_string(&mut out).ok()?;
    let dir = PathBuf::from(out.trim());
    (!out.trim().is_empty()).then_some(dir)
}
