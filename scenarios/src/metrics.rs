//! placeholder: filled by the metrics work.

use crate::clause::Clause;

/// The clauses of this area of both catalogues.
pub fn clauses() -> Vec<Clause> {
    Vec::new()
}
