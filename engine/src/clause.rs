//! A clause: one documented promise of one framework, as data plus one scenario function.
//!
//! The data (ID, level, promise, doc reference, needed services) is what `conform list` and
//! `conform explain` print and what reports show; the function is what `certify` and `cargo test`
//! run. Clause IDs are the catalogue's (`GF-PORT-1`, `GR-HLTH-3`), so a report row, a trial name
//! and a catalogue entry always match.

use std::time::Duration;

use futures::future::BoxFuture;
use harness::evidence::Evidence;
use harness::verdict::{ClauseResult, Failure, Level, Verdict};
use serde::Serialize;

use crate::cx::Cx;
use crate::profile::Framework;

/// Where a framework documents the promise.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct DocRef {
    /// The documentation page, e.g. `deploy.md` or `quick-start/configuration`.
    pub page: &'static str,
    /// The heading on that page.
    pub heading: &'static str,
}

impl std::fmt::Display for DocRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.heading.is_empty() {
            write!(f, "{}", self.page)
        } else {
            write!(f, "{} › {}", self.page, self.heading)
        }
    }
}

/// A service a clause needs. The runner provides it or the clause is an `error`, never a pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Need {
    /// A Postgres server (each scenario gets a fresh database).
    Postgres,
    /// An OTLP receiver.
    Otlp,
}

/// The scenario function: drives the candidate through the context and either returns (the
/// promise held, or an info clause finished observing) or fails, as a violation or a harness error.
pub type Check = for<'a> fn(&'a mut Cx) -> BoxFuture<'a, Result<(), Failure>>;

/// One clause of a framework's catalogue.
#[derive(Clone, Serialize)]
pub struct Clause {
    /// Catalogue ID, e.g. `GF-PORT-1`.
    pub id: &'static str,
    /// The framework whose catalogue this is.
    pub framework: Framework,
    /// The contract area, e.g. `PORT`, `HEALTH`.
    pub area: &'static str,
    /// Must, should or info.
    pub level: Level,
    /// The promise in one line, in our words.
    pub promise: &'static str,
    /// Where the framework makes it.
    pub doc: DocRef,
    /// How the scenario provokes and observes it, in one or two sentences (for `explain`).
    pub method: &'static str,
    /// Services the scenario needs.
    pub needs: &'static [Need],
    /// The scenario.
    #[serde(skip)]
    pub check: Check,
}

impl Clause {
    /// A clause whose framework and area are read from its ID (`GF-PORT-1`: GoFastr, `PORT`),
    /// so the three can never disagree. Panics on an ID of another shape: the registry is static
    /// data, and a unit test builds all of it.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: &'static str,
        level: Level,
        promise: &'static str,
        doc: DocRef,
        method: &'static str,
        needs: &'static [Need],
        check: Check,
    ) -> Clause {
        let mut parts = id.splitn(3, '-');
        let framework = match parts.next() {
            Some("GF") => Framework::GoFastr,
            Some("GR") => Framework::GoFr,
            _ => panic!("clause ID {id:?} must start with GF- or GR-"),
        };
        let area = parts
            .next()
            .filter(|a| !a.is_empty())
            .unwrap_or_else(|| panic!("clause ID {id:?} has no area"));
        Clause {
            id,
            framework,
            area,
            level,
            promise,
            doc,
            method,
            needs,
            check,
        }
    }
}

impl Clause {
    /// This clause's row in a report: `verdict`, how long judging took, and what was seen. The
    /// doc link is filled in by the report, which knows the framework version.
    pub fn result(&self, verdict: Verdict, duration: Duration, evidence: Evidence) -> ClauseResult {
        ClauseResult {
            clause: self.id.to_string(),
            level: self.level,
            area: self.area.to_string(),
            promise: self.promise.to_string(),
            doc: self.doc.to_string(),
            doc_url: String::new(),
            verdict,
            duration,
            evidence,
        }
    }
}

/// A clause whose scenario needs Postgres, with its doc given as `(page, heading)`: the shape
/// every migration and SQL clause has.
pub fn on_postgres(
    id: &'static str,
    level: Level,
    promise: &'static str,
    doc: (&'static str, &'static str),
    method: &'static str,
    check: Check,
) -> Clause {
    let doc = DocRef {
        page: doc.0,
        heading: doc.1,
    };
    Clause::new(id, level, promise, doc, method, &[Need::Postgres], check)
}

impl std::fmt::Debug for Clause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Clause")
            .field("id", &self.id)
            .field("level", &self.level)
            .finish()
    }
}

/// Turn an `async fn(&mut Cx) -> Result<(), Failure>` into a [`Check`].
#[macro_export]
macro_rules! check {
    ($f:path) => {{
        fn boxed(cx: &mut $crate::cx::Cx) -> ::futures::future::BoxFuture<'_, Result<(), ::harness::verdict::Failure>> {
            Box::pin($f(cx))
        }
        boxed as $crate::clause::Check
    }};
}
