//! The shape Markdown and HTML share: the clause x candidate matrix and the parity table, built
//! once from the reports so the two renderers cannot disagree about what is in a cell.
//!
//! Rows follow the reports' own order (catalogue order), clauses of a later report that an
//! earlier one lacks appended after; a cell is empty where a candidate was not graded on a
//! clause (another framework's clause, or one filtered out).

use crate::verdict::{ClauseResult, Verdict};

use super::{ParityRow, Report};

/// One clause's row: its metadata (from the first report that has it) and a cell per candidate.
pub(crate) struct Row<'a> {
    /// The clause as the first candidate graded on it saw it.
    pub clause: &'a ClauseResult,
    /// One cell per report, `None` where that candidate was not graded on the clause.
    pub cells: Vec<Option<&'a ClauseResult>>,
}

/// One parity row resolved against the reports.
pub(crate) struct ParityLine<'a> {
    /// The generic promise.
    pub promise: &'a str,
    /// One cell per report: that candidate's result on whichever clause grades the promise.
    pub cells: Vec<Option<&'a ClauseResult>>,
}

/// Every clause of every report, with a cell per report.
pub(crate) fn rows(reports: &[Report]) -> Vec<Row<'_>> {
    let mut rows: Vec<Row<'_>> = Vec::new();
    let mut index = std::collections::HashMap::new();
    for (column, report) in reports.iter().enumerate() {
        for result in &report.results {
            let at = *index.entry(result.clause.as_str()).or_insert_with(|| {
                rows.push(Row {
                    clause: result,
                    cells: vec![None; reports.len()],
                });
                rows.len() - 1
            });
            rows[at].cells[column] = Some(result);
        }
    }
    rows
}

/// The parity table, or nothing when the reports do not span two frameworks (side by side is
/// only news when the promises come from different catalogues) or no row has a verdict.
pub(crate) fn parity<'a>(reports: &'a [Report], table: &'a [ParityRow]) -> Vec<ParityLine<'a>> {
    let mut frameworks: Vec<&str> = reports.iter().map(|r| r.framework.as_str()).collect();
    frameworks.sort_unstable();
    frameworks.dedup();
    if frameworks.len() < 2 {
        return Vec::new();
    }
    table
        .iter()
        .map(|row| ParityLine {
            promise: &row.promise,
            cells: reports
                .iter()
                .map(|report| report.results.iter().find(|r| row.clauses.contains(&r.clause)))
                .collect(),
        })
        .filter(|line| line.cells.iter().any(Option::is_some))
        .collect()
}

/// Results that need a reader's attention: broken promises and clauses the harness could not
/// judge, each with the report it belongs to.
pub(crate) fn failing(reports: &[Report]) -> Vec<(&Report, &ClauseResult)> {
    reports
        .iter()
        .flat_map(|report| report.results.iter().map(move |r| (report, r)))
        .filter(|(_, r)| matches!(r.verdict, Verdict::Fail(_) | Verdict::Error { .. }))
        .collect()
}

/// What the info clauses recorded, each with its report.
pub(crate) fn observed(reports: &[Report]) -> Vec<(&Report, &ClauseResult)> {
    reports
        .iter()
        .flat_map(|report| report.results.iter().map(move |r| (report, r)))
        .filter(|(_, r)| r.verdict == Verdict::Observed)
        .collect()
}

/// A verdict as a short symbol and word.
pub(crate) fn verdict_label(v: &Verdict) -> &'static str {
    match v {
        Verdict::Pass => "✅ pass",
        Verdict::Fail(_) => "❌ fail",
        Verdict::Error { .. } => "⚠️ error",
        Verdict::Skip { .. } => "⏭ skip",
        Verdict::Observed => "👁 observed",
    }
}

/// The first 16 characters of a source hash, or `prebuilt`.
pub(crate) fn short_hash(report: &Report) -> &str {
    if report.source_hash.is_empty() {
        "prebuilt"
    } else {
        &report.source_hash[..report.source_hash.len().min(16)]
    }
}
