//! SQLite for candidates: a fresh database file per scenario, and read-only inspection of it.
//!
//! Candidates open SQLite through their own pure-Go driver; the harness only chooses where the
//! file lives (outside the candidate's working directory, so "empty directory" clauses stay
//! honest) and reads it afterwards with sqlx to judge schema and rows.

use std::path::{Path, PathBuf};

use sqlx::Connection;

/// A SQLite database file reserved for one scenario. The file itself is created by the candidate.
#[derive(Debug)]
pub struct SqliteFile {
    dir: tempfile::TempDir,
    path: PathBuf,
    _reaper: crate::reaper::Ticket,
}

impl SqliteFile {
    /// A path for a new database file in a fresh directory (removed on drop).
    pub fn fresh() -> std::io::Result<SqliteFile> {
        let (dir, ticket) = crate::reaper::temp_dir(tempfile::Builder::new().prefix("conform-sqlite-"), None)?;
        let path = dir.path().join("conform.db");
        Ok(SqliteFile {
            dir,
            path,
            _reaper: ticket,
        })
    }

    /// The database file's absolute path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The directory holding it.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Open the file read-only for inspection.
    pub async fn connect(&self) -> Result<sqlx::SqliteConnection, sqlx::Error> {
        let opts = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&self.path)
            .read_only(true);
        sqlx::SqliteConnection::connect_with(&opts).await
    }
}
