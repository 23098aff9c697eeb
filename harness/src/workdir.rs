//! Scratch directories: one empty working directory per candidate process, with its output logs
//! kept beside it rather than inside it.
//!
//! Keeping the logs outside the working directory matters: "runs from an empty directory" and
//! "reads `.env` from its working directory" are both clauses, so the harness must not put a
//! single file of its own where the candidate can see it. Both directories are removed on drop
//! and registered with the reaper for the case where drop never runs.

use std::path::{Path, PathBuf};

use crate::reaper;

/// A working directory and a log directory for one candidate process.
#[derive(Debug)]
pub struct Workdir {
    root: tempfile::TempDir,
    cwd: PathBuf,
    logs: PathBuf,
    _reaper: reaper::Ticket,
}

impl Workdir {
    /// A fresh, empty working directory (and a log directory beside it) under the system temp dir.
    pub fn new(label: &str) -> std::io::Result<Workdir> {
        let (root, ticket) = reaper::temp_dir(tempfile::Builder::new().prefix(&format!("conform-{label}-")), None)?;
        let cwd = root.path().join("cwd");
        let logs = root.path().join("logs");
        std::fs::create_dir(&cwd)?;
        std::fs::create_dir(&logs)?;
        Ok(Workdir {
            root,
            cwd,
            logs,
            _reaper: ticket,
        })
    }

    /// The candidate's working directory.
    pub fn cwd(&self) -> &Path {
        &self.cwd
    }

    /// Where stdout and stderr are recorded.
    pub fn logs(&self) -> &Path {
        &self.logs
    }

    /// The directory holding both (removed on drop).
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// Write `contents` to `relative` inside the working directory, creating parent directories.
    pub fn write(&self, relative: &str, contents: &str) -> std::io::Result<PathBuf> {
        let path = self.cwd.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, contents)?;
        Ok(path)
    }
}

/// Copy the directory tree `from` into `to` (created if missing): candidate sources into a build
/// directory, shipped files (GoFr's `configs/`) into a working directory.
pub fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}
