//! ENV / CFG: environment variables and env-file precedence, both catalogues (GF-ENV, GR-CFG).
//!
//! Every clause here is a table of cases (files in the working directory x process environment x
//! what the running binary shows) run by one engine, [`table`]; the framework modules hold only
//! data, and each clause's check is a one-line call of [`table::judge`] on its table, graded by
//! its level. That keeps the cases readable side by side, as the docs state them, and makes adding
//! a row a one-line change instead of another copy of a scenario. A clause whose table reads
//! values back through the echo endpoint declares the `echo_env_endpoint` knob (a unit test of
//! each framework module checks the declarations against the tables).

pub mod gofastr;
pub mod gofr;
mod observe;
pub mod table;

use engine::clause::Clause;

/// The clauses of this area of both catalogues.
pub fn clauses() -> Vec<Clause> {
    let mut all = gofastr::clauses();
    all.extend(gofr::clauses());
    all
}
