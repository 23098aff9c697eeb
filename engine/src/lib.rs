//! The engine of conform: how a clause is declared and run, and nothing about any one clause.
//!
//! A [`clause::Clause`] is data (ID, level, promise, doc reference, what it needs) plus a check
//! function that drives the candidate through a [`cx::Cx`]. The engine loads and builds
//! candidates and mutants ([`certify`], [`mutant`]), starts the services a run shares
//! ([`services`]), spells each framework's generic knobs ([`profile`]) and runs clauses, bounded
//! and isolated ([`run`]). A [`plan::Plan`] is what both front doors drive: the CLI certifies
//! it whole, the test harness runs it one (subject, clause) trial at a time. The catalogue crate declares the clauses; it depends on this crate,
//! never the reverse, so the engine can be read, changed and tested without any clause in view.

pub mod certify;
pub mod clause;
pub mod cx;
pub mod mutant;
pub mod plan;
pub mod profile;
pub mod repeat;
pub mod run;
pub mod services;
