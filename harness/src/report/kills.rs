//! The kill matrix: which clause catches which mutant.
//!
//! A mutant is a reference candidate with one promise broken on purpose. A clause *catches* a
//! mutant when it passes on the reference and fails on the mutant; a graded clause that passes
//! on the reference and catches no mutant is *unproven*: nothing shows yet that it can say no.
//! Computed from the reports alone, so it is as testable as every other renderer's input.

use serde::Serialize;

use crate::verdict::{ClauseResult, Level, Verdict};

use super::Report;

/// One mutant's run, as the matrix shows it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct MutantRun {
    /// The mutant's name (its directory under `fixtures/mutants/`).
    pub name: String,
    /// What it breaks, in one line.
    pub breaks: String,
    /// The areas it was graded on.
    pub areas: Vec<String>,
    /// Clauses that pass on the reference and fail on the mutant.
    pub caught_by: Vec<String>,
    /// Clauses the harness could not judge on the mutant.
    pub errors: Vec<String>,
}

/// A graded clause of the reference and the mutants it catches.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ClauseKills {
    /// Clause ID.
    pub clause: String,
    /// Must or should.
    pub level: Level,
    /// Names of the mutants it catches.
    pub catches: Vec<String>,
}

/// Every mutant of one reference candidate against every graded clause.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct KillMatrix {
    /// The mutants, in the order run.
    pub mutants: Vec<MutantRun>,
    /// Every must and should clause that passes on the reference, with what it catches.
    pub clauses: Vec<ClauseKills>,
    /// Those of `clauses` that catch no mutant.
    pub unproven: Vec<String>,
    /// Graded clauses that fail on the reference itself: a mutant cannot make them fail.
    pub failing_on_reference: Vec<String>,
}

/// A mutant's report with what the matrix needs to know about the mutant.
#[derive(Debug, Clone)]
pub struct MutantReport {
    /// The mutant's name.
    pub name: String,
    /// What it breaks.
    pub breaks: String,
    /// The areas it was graded on.
    pub areas: Vec<String>,
    /// Its certification on those areas.
    pub report: Report,
}

impl KillMatrix {
    /// The matrix of `mutants` against `reference`.
    pub fn new(reference: &Report, mutants: &[MutantReport]) -> KillMatrix {
        KillMatrix::of(&reference.results, mutants)
    }

    /// The matrix of `mutants` against the reference's `results` (before its report is built,
    /// so that the report is built once, whole).
    pub fn of(reference: &[ClauseResult], mutants: &[MutantReport]) -> KillMatrix {
        let verdict_on = |report: &Report, clause: &str| {
            report
                .results
                .iter()
                .find(|r| r.clause == clause)
                .map(|r| r.verdict.clone())
        };
        let graded = || reference.iter().filter(|r| r.level != Level::Info);
        let runs: Vec<MutantRun> = mutants
            .iter()
            .map(|m| MutantRun {
                name: m.name.clone(),
                breaks: m.breaks.clone(),
                areas: m.areas.clone(),
                caught_by: graded()
                    .filter(|r| r.verdict == Verdict::Pass)
                    .filter(|r| matches!(verdict_on(&m.report, &r.clause), Some(Verdict::Fail(_))))
                    .map(|r| r.clause.clone())
                    .collect(),
                errors: m
                    .report
                    .results
                    .iter()
                    .filter(|r| matches!(r.verdict, Verdict::Error { .. }))
                    .map(|r| r.clause.clone())
                    .collect(),
            })
            .collect();
        let clauses: Vec<ClauseKills> = graded()
            .filter(|r| r.verdict == Verdict::Pass)
            .map(|r| ClauseKills {
                clause: r.clause.clone(),
                level: r.level,
                catches: runs
                    .iter()
                    .filter(|m| m.caught_by.contains(&r.clause))
                    .map(|m| m.name.clone())
                    .collect(),
            })
            .collect();
        KillMatrix {
            unproven: clauses
                .iter()
                .filter(|c| c.catches.is_empty())
                .map(|c| c.clause.clone())
                .collect(),
            failing_on_reference: graded()
                .filter(|r| matches!(r.verdict, Verdict::Fail(_)))
                .map(|r| r.clause.clone())
                .collect(),
            mutants: runs,
            clauses,
        }
    }

    /// Clauses proven by at least one mutant.
    pub fn proven(&self) -> usize {
        self.clauses.len() - self.unproven.len()
    }
}
