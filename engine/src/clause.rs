//! A clause: one documented promise of one framework, as data plus one scenario function.
//!
//! The data (ID, level, promise, doc reference, needed services) is what `conform list` and
//! `conform explain` print and what reports show; the function is what `certify` and `cargo test`
//! run. Clause IDs are the catalogue's (`GF-PORT-1`, `GR-HLTH-3`), so a report row, a trial name
//! and a catalogue entry always match.

use std::time::Duration;

use futures::future::BoxFuture;
use harness::evidence::Evidence;
pub use harness::manifest::Knob;
use harness::timeouts;
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

/// A service a clause needs. The engine provides it or the clause is an `error`, never a pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Service {
    /// A Postgres server (each scenario gets a fresh database).
    Postgres,
    /// An OTLP receiver.
    Otlp,
}

/// What a clause needs to be graded, as data: the engine reads it to decide whether and how to
/// run the clause (and `conform explain` prints it), without knowing the clause.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Needs {
    /// Services the scenario uses.
    pub services: &'static [Service],
    /// `candidate.toml` knobs the scenario reads. A candidate without one of them cannot be
    /// graded on the clause: the engine says which, before running it.
    pub knobs: &'static [Knob],
    /// Run with no other clause of the run beside it (the engine waits for the others to finish
    /// and starts no other until it is done).
    pub alone: bool,
    /// The most the scenario may take; past it the clause is a harness `error`. Every operation
    /// inside is bounded on its own: this catches bounds that add up to something absurd.
    pub ceiling: Duration,
}

impl Needs {
    /// Nothing beyond the candidate: no service, no knob, run beside others, the default ceiling.
    pub const NONE: Needs = Needs {
        services: &[],
        knobs: &[],
        alone: false,
        ceiling: timeouts::SCENARIO_CEILING,
    };

    /// A Postgres server, and nothing else.
    pub const POSTGRES: Needs = Needs {
        services: &[Service::Postgres],
        ..Needs::NONE
    };
}

/// The scenario function: drives the candidate through the context and either returns (the
/// promise held, or an info clause finished observing) or fails, as a violation or a harness error.
pub type Check = for<'a> fn(&'a mut Cx) -> BoxFuture<'a, Result<(), Failure>>;

/// One clause of a framework's catalogue: one documented promise, as data plus its check.
///
/// Every clause is declared as one value of this type, a struct literal. Its framework and area
/// are read from its ID (`GF-PORT-1`: GoFastr, `PORT`), so the three can never disagree.
#[derive(Clone)]
pub struct Clause {
    /// Catalogue ID, e.g. `GF-PORT-1`.
    pub id: &'static str,
    /// Must, should or info.
    pub level: Level,
    /// The promise in one line, in our words.
    pub promise: &'static str,
    /// Where the framework makes it.
    pub doc: DocRef,
    /// How the scenario provokes and observes it, in one or two sentences (for `explain`).
    pub method: &'static str,
    /// What it needs to be graded.
    pub needs: Needs,
    /// The scenario.
    pub check: Check,
}

impl DocRef {
    /// The heading `heading` on the page `page`.
    pub const fn at(page: &'static str, heading: &'static str) -> DocRef {
        DocRef { page, heading }
    }
}

impl Clause {
    /// The framework whose catalogue this is, from the ID's prefix. Panics on an ID of another
    /// shape: the registry is static data, and a unit test reads all of it.
    pub fn framework(&self) -> Framework {
        match self.id.split('-').next() {
            Some("GF") => Framework::GoFastr,
            Some("GR") => Framework::GoFr,
            _ => panic!("clause ID {:?} must start with GF- or GR-", self.id),
        }
    }

    /// The contract area, e.g. `PORT`, `HEALTH`: the ID's second part.
    pub fn area(&self) -> &'static str {
        self.id
            .split('-')
            .nth(1)
            .filter(|a| !a.is_empty())
            .unwrap_or_else(|| panic!("clause ID {:?} has no area", self.id))
    }

    /// The knobs it needs that `knobs` does not set.
    pub fn missing_knobs(&self, knobs: &harness::manifest::Knobs) -> Vec<Knob> {
        self.needs
            .knobs
            .iter()
            .copied()
            .filter(|k| knobs.get(*k).is_none())
            .collect()
    }

    /// This clause's row in a report: `verdict`, how long judging took, and what was seen. The
    /// doc link is filled in by the report, which knows the framework version.
    pub fn result(&self, verdict: Verdict, duration: Duration, evidence: Evidence) -> ClauseResult {
        ClauseResult {
            clause: self.id.to_string(),
            level: self.level,
            area: self.area().to_string(),
            promise: self.promise.to_string(),
            doc: self.doc.to_string(),
            doc_url: String::new(),
            verdict,
            duration,
            evidence,
        }
    }
}

/// How a clause is listed (`conform list --format json`).
impl Serialize for Clause {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut s = serializer.serialize_struct("Clause", 9)?;
        s.serialize_field("id", self.id)?;
        s.serialize_field("framework", &self.framework())?;
        s.serialize_field("area", self.area())?;
        s.serialize_field("level", &self.level)?;
        s.serialize_field("promise", self.promise)?;
        s.serialize_field("doc", &self.doc)?;
        s.serialize_field("method", self.method)?;
        s.serialize_field("needs", &self.needs.services)?;
        s.serialize_field("knobs", &self.needs.knobs)?;
        s.end()
    }
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
