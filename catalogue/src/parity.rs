//! The generic promises both frameworks make, each with the clause that grades it in each
//! catalogue, so a run over a GoFastr and a GoFr candidate can show their verdicts side by side.
//!
//! The catalogues number their clauses independently and phrase them for their own framework;
//! this table is the one place that says "GF-SHUT-1 and GR-SHUT-3 are the same promise: drain on
//! SIGTERM". It is data, checked by a unit test against the registry (every ID exists, one per
//! framework), and handed to the report renderers, which know no clause.

use harness::report::ParityRow;

/// One generic promise: what it is, and the clause of each framework that grades it.
struct Generic {
    promise: &'static str,
    gofastr: &'static str,
    gofr: &'static str,
}

const GENERIC: &[Generic] = &[
    Generic {
        promise: "The port variable is honoured, on every interface",
        gofastr: "GF-PORT-1",
        gofr: "GR-PORT-1",
    },
    Generic {
        promise: "Unset, the documented default port on every interface",
        gofastr: "GF-PORT-2",
        gofr: "GR-PORT-1",
    },
    Generic {
        promise: "Env files are loaded from the working directory",
        gofastr: "GF-ENV-1",
        gofr: "GR-CFG-1",
    },
    Generic {
        promise: "The real environment beats every env file",
        gofastr: "GF-ENV-2",
        gofr: "GR-CFG-4",
    },
    Generic {
        promise: "Liveness answers 200 unconditionally",
        gofastr: "GF-HEALTH-1",
        gofr: "GR-HLTH-1",
    },
    Generic {
        promise: "Readiness is 200 with the database up",
        gofastr: "GF-HEALTH-2",
        gofr: "GR-HLTH-2",
    },
    Generic {
        promise: "Readiness fails while the database is down, and recovers",
        gofastr: "GF-HEALTH-3",
        gofr: "GR-HLTH-3",
    },
    Generic {
        promise: "SIGTERM drains in-flight requests and refuses new connections",
        gofastr: "GF-SHUT-1",
        gofr: "GR-SHUT-3",
    },
    Generic {
        promise: "The drain is bounded by the shutdown deadline",
        gofastr: "GF-SHUT-2",
        gofr: "GR-SHUT-4",
    },
    Generic {
        promise: "Boot migration is serialised across replicas",
        gofastr: "GF-MIG-8",
        gofr: "GR-MIG-5",
    },
    Generic {
        promise: "/metrics serves valid Prometheus text",
        gofastr: "GF-MET-1",
        gofr: "GR-MET-1",
    },
    Generic {
        promise: "The connection pool is visible in the metrics",
        gofastr: "GF-MET-2",
        gofr: "GR-MET-5",
    },
    Generic {
        promise: "Each request exports a server span",
        gofastr: "GF-TRACE-1",
        gofr: "GR-TRC-2",
    },
    Generic {
        promise: "An incoming W3C traceparent is continued",
        gofastr: "GF-TRACE-2",
        gofr: "GR-TRC-5",
    },
    Generic {
        promise: "Postgres from the documented configuration",
        gofastr: "GF-DB-2",
        gofr: "GR-SQL-1",
    },
    Generic {
        promise: "SQLite from the documented configuration",
        gofastr: "GF-DB-1",
        gofr: "GR-SQL-2",
    },
];

/// The parity rows, in the order a reader meets the promises in a deploy guide.
pub fn rows() -> Vec<ParityRow> {
    GENERIC
        .iter()
        .map(|g| ParityRow {
            promise: g.promise.to_string(),
            clauses: vec![g.gofastr.to_string(), g.gofr.to_string()],
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::GENERIC;
    use engine::profile::Framework;

    #[test]
    fn every_parity_clause_is_registered_under_its_framework() {
        for g in GENERIC {
            for (id, framework) in [(g.gofastr, Framework::GoFastr), (g.gofr, Framework::GoFr)] {
                let clause = crate::find(id).unwrap_or_else(|| panic!("{id} ({}) is not registered", g.promise));
                assert_eq!(
                    clause.framework(),
                    framework,
                    "{id} is listed under the wrong framework"
                );
            }
        }
    }
}
