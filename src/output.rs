//! Where `certify` writes its reports, in which formats.
//!
//! `--format human` (the default) prints a summary and writes every format for each candidate
//! into the `--out` directory (`reports/` by default) as soon as that candidate is done, so a
//! later candidate's crash never costs an earlier report; with several candidates it also writes
//! the combined documents (`conform.md`, `conform.html`, `conform.junit.xml`) holding the matrix
//! and the parity table. Any other format writes just that format: to `--out` as a file when
//! there is one candidate or the format combines candidates (Markdown, HTML, JUnit), else into
//! `--out` as a directory.

use std::path::{Path, PathBuf};

use clap::ValueEnum;
use harness::report::{self, ParityRow, Report};

/// The `--format` of `certify`.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ReportFormat {
    /// Summary on the terminal, every format into the --out directory.
    Human,
    /// JSON (schema in the README).
    Json,
    /// Markdown.
    Markdown,
    /// JUnit XML.
    Junit,
    /// A self-contained HTML page.
    Html,
}

/// Where and what to write.
pub(crate) struct Output {
    /// The format asked for.
    pub(crate) format: ReportFormat,
    /// `--out`.
    pub(crate) out: Option<PathBuf>,
    /// How many candidates the run certifies.
    pub(crate) candidates: usize,
}

impl Output {
    fn dir(&self) -> PathBuf {
        self.out.clone().unwrap_or_else(|| PathBuf::from("reports"))
    }

    /// Write one candidate's reports, as soon as it is done.
    pub(crate) fn candidate(&self, report: &Report, parity: &[ParityRow]) -> std::io::Result<Vec<PathBuf>> {
        let one = std::slice::from_ref(report);
        let file = |ext: &str| self.dir().join(format!("{}.{ext}", report.candidate));
        let single_file = |ext: &str| match &self.out {
            Some(out) if self.candidates == 1 => out.clone(),
            _ => file(ext),
        };
        let writes: Vec<(PathBuf, String)> = match self.format {
            ReportFormat::Human => vec![
                (file("json"), report::json(report)),
                (file("md"), report::markdown(one, parity)),
                (file("html"), report::html(one, parity)),
                (file("junit.xml"), report::junit(one)),
            ],
            ReportFormat::Json => vec![(single_file("json"), report::json(report))],
            // Formats that combine candidates are written once, by `combined`.
            _ if self.candidates > 1 => Vec::new(),
            ReportFormat::Markdown => vec![(single_file("md"), report::markdown(one, parity))],
            ReportFormat::Html => vec![(single_file("html"), report::html(one, parity))],
            ReportFormat::Junit => vec![(single_file("junit.xml"), report::junit(one))],
        };
        write_all(writes)
    }

    /// Write the documents that hold every candidate (several candidates only).
    pub(crate) fn combined(&self, reports: &[Report], parity: &[ParityRow]) -> std::io::Result<Vec<PathBuf>> {
        if reports.len() < 2 {
            return Ok(Vec::new());
        }
        let file = |ext: &str| self.dir().join(format!("conform.{ext}"));
        let target = |ext: &str| self.out.clone().unwrap_or_else(|| file(ext));
        let writes = match self.format {
            ReportFormat::Human => vec![
                (file("md"), report::markdown(reports, parity)),
                (file("html"), report::html(reports, parity)),
                (file("junit.xml"), report::junit(reports)),
            ],
            ReportFormat::Json => Vec::new(),
            ReportFormat::Markdown => vec![(target("md"), report::markdown(reports, parity))],
            ReportFormat::Html => vec![(target("html"), report::html(reports, parity))],
            ReportFormat::Junit => vec![(target("junit.xml"), report::junit(reports))],
        };
        write_all(writes)
    }
}

fn write_all(writes: Vec<(PathBuf, String)>) -> std::io::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for (path, contents) in writes {
        report::write_atomic(&path, &contents).map_err(|e| with_path(&path, e))?;
        written.push(path);
    }
    Ok(written)
}

fn with_path(path: &Path, err: std::io::Error) -> std::io::Error {
    std::io::Error::new(err.kind(), format!("{}: {err}", path.display()))
}
