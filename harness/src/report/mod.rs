//! Certification reports: pure functions from results to JSON, Markdown, HTML and JUnit XML, and
//! an atomic write.
//!
//! A report is a projection of [`ClauseResult`]s plus the facts needed to reproduce it
//! (candidate, framework version, provider, binary hash). Renderers take reports and return
//! text; nothing here runs a scenario or reads the clock, so every format can be tested on
//! synthetic results. Markdown and HTML take several reports at once: the clause x candidate
//! matrix, and the parity table that puts two frameworks' verdicts on the same generic promise
//! side by side. Files are written through a temporary file and a rename, so a report already on
//! disk is never left half-overwritten.

pub mod diff;
mod html;
mod junit;
pub mod kills;
mod markdown;
mod matrix;

pub use html::html;
pub use junit::junit;
pub use markdown::markdown;

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::verdict::{ClauseResult, Level, Verdict};

/// Exit code: every `must` clause passed.
pub const EXIT_CERTIFIED: i32 = 0;
/// Exit code: at least one `must` clause failed.
pub const EXIT_FAILED: i32 = 1;
/// Exit code: no `must` clause failed, but the harness could not judge at least one.
pub const EXIT_NOT_JUDGED: i32 = 2;
/// Exit code: bad usage (unknown flag, bad filter, missing candidate, bad manifest).
pub const EXIT_USAGE: i32 = 64;

/// Counts per verdict.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Summary {
    /// Clauses judged in all.
    pub total: usize,
    /// Passed.
    pub pass: usize,
    /// Failed.
    pub fail: usize,
    /// Could not be judged.
    pub error: usize,
    /// Not run.
    pub skip: usize,
    /// Info clauses recorded.
    pub observed: usize,
    /// `must` clauses in the run.
    pub must: usize,
    /// `must` clauses that passed.
    pub must_pass: usize,
}

impl Summary {
    /// Count `results`.
    pub fn of(results: &[ClauseResult]) -> Summary {
        let mut s = Summary {
            total: results.len(),
            ..Summary::default()
        };
        for r in results {
            match r.verdict {
                Verdict::Pass => s.pass += 1,
                Verdict::Fail(_) => s.fail += 1,
                Verdict::Error { .. } => s.error += 1,
                Verdict::Skip { .. } => s.skip += 1,
                Verdict::Observed => s.observed += 1,
            }
            if r.level == Level::Must {
                s.must += 1;
                if r.verdict == Verdict::Pass {
                    s.must_pass += 1;
                }
            }
        }
        s
    }
}

/// The certification of one candidate.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Version of conform that produced it.
    pub conform_version: String,
    /// Candidate name.
    pub candidate: String,
    /// Framework profile (`gofastr`, `gofr`).
    pub framework: String,
    /// Framework module path.
    pub framework_module: String,
    /// The framework version the candidate was built against: the manifest's pin, or the
    /// release asked with `certify --framework-version`.
    pub framework_version: String,
    /// The manifest's pinned version, present only when the build used another release.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub framework_version_pinned: Option<String>,
    /// Service provider (`native`, ...).
    pub provider: String,
    /// The OpenTelemetry Collector in the tracing path: `none` (candidates export straight to the
    /// in-process receiver) or `real: <binary> (builder <version>, build <hash>)`.
    pub collector: String,
    /// SHA-256 of the candidate's source and build settings (empty for a prebuilt binary).
    pub source_hash: String,
    /// When the run started (UTC, RFC 3339).
    pub started_at: String,
    /// Wall time of the run.
    #[serde(rename = "duration_ms", with = "crate::evidence::millis")]
    pub duration: Duration,
    /// The `conform` command line that produced it.
    pub command: String,
    /// Counts.
    pub summary: Summary,
    /// One row per clause, in catalogue order.
    pub results: Vec<ClauseResult>,
    /// Which clause catches which mutant, when mutants were run against this candidate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kill_matrix: Option<kills::KillMatrix>,
}

impl Report {
    /// The framework as every format names it: `gofr.dev v1.56.6`, or, when the build used
    /// another release than the manifest pins, `gofr.dev v1.55.0, manifest pins v1.56.6`.
    pub fn framework_label(&self) -> String {
        match &self.framework_version_pinned {
            Some(pinned) => format!(
                "{} {}, manifest pins {pinned}",
                self.framework_module, self.framework_version
            ),
            None => format!("{} {}", self.framework_module, self.framework_version),
        }
    }

    /// The exit code this report amounts to (see the `EXIT_*` constants).
    pub fn exit_code(&self) -> i32 {
        exit_code(&self.results)
    }
}

/// The exit code for `results`: a failed `must` clause wins; then any clause the harness could
/// not judge (an `error` at any level, or a skipped `must`); `should` failures are reported but
/// do not block certification.
pub fn exit_code(results: &[ClauseResult]) -> i32 {
    let must = || results.iter().filter(|r| r.level == Level::Must);
    if must().any(|r| matches!(r.verdict, Verdict::Fail(_))) {
        EXIT_FAILED
    } else if results.iter().any(|r| matches!(r.verdict, Verdict::Error { .. }))
        || must().any(|r| matches!(r.verdict, Verdict::Skip { .. }))
    {
        EXIT_NOT_JUDGED
    } else {
        EXIT_CERTIFIED
    }
}

/// One generic promise (drain, port, probes, ...) and the clause that grades it in each
/// framework's catalogue. The table is data from the scenarios crate; the renderers only look up
/// each candidate's verdict on whichever of `clauses` it was graded on.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ParityRow {
    /// The promise, in framework-neutral words.
    pub promise: String,
    /// Clause IDs grading it, one per framework.
    pub clauses: Vec<String>,
}

/// The headline verdict of a report, in words.
pub fn headline(report: &Report) -> &'static str {
    match report.exit_code() {
        EXIT_CERTIFIED => "certified",
        EXIT_FAILED => "not certified",
        _ => "not judged",
    }
}

/// The report as pretty-printed JSON (schema in the README).
pub fn json(report: &Report) -> String {
    serde_json::to_string_pretty(report).expect("reports serialize") + "\n"
}

/// Write `contents` to `path` atomically (temporary file in the same directory, then rename).
pub fn write_atomic(path: &Path, contents: &str) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = tempfile::NamedTempFile::new_in(dir)?;
    std::fs::write(tmp.path(), contents)?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// `t` as RFC 3339 UTC, e.g. `2026-11-23T04:05:06Z`.
pub fn rfc3339(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil-from-days (Howard Hinnant's algorithm), valid for the proleptic Gregorian calendar.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evidence::Evidence;
    use crate::verdict::Violation;

    fn result(clause: &str, level: Level, verdict: Verdict) -> ClauseResult {
        ClauseResult {
            clause: clause.into(),
            level,
            area: "PORT".into(),
            promise: "a promise".into(),
            doc: "deploy.md".into(),
            doc_url: String::new(),
            verdict,
            duration: Duration::from_millis(1500),
            evidence: Evidence::default(),
        }
    }

    #[test]
    fn exit_codes_separate_fail_from_not_judged() {
        let pass = result("A", Level::Must, Verdict::Pass);
        let fail = result(
            "B",
            Level::Must,
            Verdict::Fail(Violation {
                expected: "x".into(),
                actual: "y".into(),
            }),
        );
        let err = result(
            "C",
            Level::Must,
            Verdict::Error {
                message: "postgres".into(),
            },
        );
        let info_err = result("D", Level::Info, Verdict::Error { message: "x".into() });
        let should_fail = result(
            "E",
            Level::Should,
            Verdict::Fail(Violation {
                expected: "x".into(),
                actual: "y".into(),
            }),
        );
        assert_eq!(exit_code(&[pass.clone(), should_fail]), EXIT_CERTIFIED);
        assert_eq!(exit_code(&[pass.clone(), info_err]), EXIT_NOT_JUDGED);
        assert_eq!(exit_code(&[pass.clone(), err.clone()]), EXIT_NOT_JUDGED);
        assert_eq!(exit_code(&[pass, err, fail]), EXIT_FAILED);
    }

    #[test]
    fn rfc3339_formats_utc() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(1_795_406_706)),
            "2026-11-23T04:05:06Z"
        );
    }

    #[test]
    fn markdown_lists_fails_with_expected_and_actual() {
        let report = Report {
            conform_version: "0.1.0".into(),
            candidate: "gofr".into(),
            framework: "gofr".into(),
            framework_module: "gofr.dev".into(),
            framework_version: "v1.56.6".into(),
            framework_version_pinned: None,
            provider: "native".into(),
            collector: "none".into(),
            source_hash: "abcdef0123456789abcdef".into(),
            started_at: "2026-11-23T04:05:06Z".into(),
            duration: Duration::from_secs(3),
            command: "conform certify fixtures/candidates/gofr".into(),
            results: vec![result(
                "GR-HLTH-3",
                Level::Must,
                Verdict::Fail(Violation {
                    expected: "503".into(),
                    actual: "200 DEGRADED".into(),
                }),
            )],
            summary: Summary::default(),
            kill_matrix: None,
        };
        let md = markdown(std::slice::from_ref(&report), &[]);
        assert!(md.contains("| GR-HLTH-3 | must | ❌ fail |"), "{md}");
        assert!(md.contains("- expected: 503\n- actual: 200 DEGRADED"), "{md}");
        let v: serde_json::Value = serde_json::from_str(&json(&report)).unwrap();
        assert_eq!(v["results"][0]["verdict"], "fail");
        assert_eq!(v["results"][0]["duration_ms"], 1500);
        assert_eq!(v["framework_version"], "v1.56.6");
    }
}
