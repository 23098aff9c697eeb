//! ENV / CFG: environment variables and env-file precedence, both catalogues (GF-ENV, GR-CFG).
//!
//! Every clause here is a table of cases (files in the working directory x process environment x
//! what the running binary shows) run by one engine, [`table`]; the framework modules hold only
//! data. That keeps the cases readable side by side, as the docs state them, and makes adding a
//! row a one-line change instead of another copy of a scenario.

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

/// A clause whose scenario is [`table::judge`] over a table of cases, graded by its level.
macro_rules! table_clause {
    (
        id: $id:literal,
        level: $level:expr,
        promise: $promise:literal,
        doc: ($page:literal, $heading:literal),
        method: $method:literal,
        cases: $cases:expr $(,)?
    ) => {{
        async fn run(cx: &mut ::engine::cx::Cx) -> Result<(), ::harness::verdict::Failure> {
            $crate::config::table::judge(cx, $crate::config::table::Grade::of($level), $cases).await
        }
        ::engine::clause::Clause::new(
            $id,
            $level,
            $promise,
            ::engine::clause::DocRef {
                page: $page,
                heading: $heading,
            },
            $method,
            &[],
            ::engine::check!(run),
        )
    }};
}
pub(crate) use table_clause;
