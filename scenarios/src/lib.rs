//! The clauses of conform and everything needed to run them.
//!
//! One module per contract area, in the catalogue's order (`port`, `health`, ...), each holding
//! both frameworks' clauses of that area; generic scenarios are shared through the framework
//! [`profile`]. [`registry`] is the single list that `conform list`, `conform certify` and the
//! `cargo test` harness all read.

pub mod certify;
pub mod clause;
pub mod cx;
pub mod profile;
pub mod run;
pub mod services;

pub mod config;
pub mod health;
pub mod metrics;
pub mod port;
pub mod shutdown;
pub mod tracing;

use clause::Clause;
use profile::Framework;

/// Every clause, in catalogue order: GoFastr's areas, then GoFr's.
pub fn registry() -> Vec<Clause> {
    let areas = [port::clauses(), config::clauses(), shutdown::clauses(), health::clauses(), metrics::clauses(), tracing::clauses()];
    let mut all: Vec<Clause> = areas.into_iter().flatten().collect();
    all.sort_by_key(|c| c.framework);
    all
}

/// The clauses of one framework, in catalogue order.
pub fn clauses_for(framework: Framework) -> Vec<Clause> {
    registry().into_iter().filter(|c| c.framework == framework).collect()
}

/// The clause with this ID.
pub fn find(id: &str) -> Option<Clause> {
    registry().into_iter().find(|c| c.id.eq_ignore_ascii_case(id))
}
