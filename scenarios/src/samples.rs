//! Notes that clauses not yet written with `Cx::note_sample` record about a real race in the
//! candidate, marked as samples after the scenario ran (see `harness::evidence::Note::sample`).
//!
//! A stopgap, kept as data so it is visible and small: the clauses listed here repeat a racy
//! operation (a shutdown, replicas migrating together) and note each attempt, and which attempt
//! lost the race differs between two runs of the same build. When a clause records those notes
//! with `cx.note_sample(..)` itself, its line here goes.

use harness::evidence::Evidence;

/// `(clause, note key prefixes)` whose notes are samples of the candidate's own nondeterminism.
const DECLARED: &[(&str, &[&str])] = &[
    // Which of the repeated clean shutdowns missed `Application shutdown complete`.
    ("GR-SHUT-5", &["run "]),
    // How many rounds until the replicas raced, and what each one logged and left in that round.
    (
        "GR-MIG-5",
        &[
            "first deploy round",
            "replicas lined up",
            "migration log first-deploy replica ",
            // Which of the two replicas of the later deploy took the lock and ran migration 3.
            "migration log deploy replica ",
            "rows after the first deploy",
        ],
    ),
    ("GF-MIG-8", &["first deploy round", "replicas lined up"]),
];

/// Mark the notes of `clause` that [`DECLARED`] lists as samples.
pub(crate) fn mark(clause: &str, evidence: &mut Evidence) {
    let Some((_, prefixes)) = DECLARED.iter().find(|(c, _)| *c == clause) else {
        return;
    };
    for note in &mut evidence.notes {
        if prefixes.iter().any(|p| note.key.starts_with(p)) {
            note.sample = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_only_the_declared_keys_of_the_declared_clause() {
        let mut e = Evidence::default();
        e.note("run 3", "exit code 0; `Application shutdown complete` at line None");
        e.note("exit", "exit code 0");
        let mut other = e.clone();
        mark("GR-SHUT-5", &mut e);
        mark("GR-SHUT-3", &mut other);
        assert_eq!(e.notes.iter().map(|n| n.sample).collect::<Vec<_>>(), [true, false]);
        assert!(other.notes.iter().all(|n| !n.sample));
    }
}
