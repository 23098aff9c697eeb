//! The report renderers on synthetic results, snapshotted: every verdict kind, evidence with a
//! launch, an exchange and a redacted secret. A renderer change shows up as a snapshot diff to
//! review; CI never updates snapshots (`CI=true` makes insta fail on a mismatch instead).

use std::collections::BTreeMap;
use std::time::Duration;

use harness::evidence::{Evidence, LaunchEvidence, Note};
use harness::probe::{Exchange, Outcome};
use harness::process::LaunchRecord;
use harness::report::{self, Report, Summary};
use harness::running::{Exit, ExitStatus};
use harness::verdict::{ClauseResult, Level, Verdict, Violation};

fn result(clause: &str, level: Level, area: &str, verdict: Verdict, evidence: Evidence) -> ClauseResult {
    ClauseResult {
        clause: clause.into(),
        level,
        area: area.into(),
        promise: format!("the promise of {clause}"),
        doc: "deploy.md › Configuration".into(),
        verdict,
        duration: Duration::from_millis(1234),
        evidence,
    }
}

fn evidence() -> Evidence {
    let mut env = BTreeMap::new();
    env.insert("PORT".to_string(), "41234".to_string());
    env.insert(
        "DATABASE_URL".to_string(),
        "postgres://conform:<redacted>@127.0.0.1:5432/conform_1".to_string(),
    );
    env.insert("JWT_SECRET".to_string(), "<redacted>".to_string());
    let mut headers = BTreeMap::new();
    headers.insert("content-type".to_string(), "application/json".to_string());
    Evidence {
        notes: vec![Note {
            key: "listening".into(),
            value: "127.0.0.1:41234".into(),
        }],
        exchanges: vec![Exchange {
            request: "GET http://127.0.0.1:41234/readyz".into(),
            request_headers: BTreeMap::new(),
            outcome: Outcome::Response {
                status: 503,
                headers,
                body: "{\"status\":\"not_ready\"}".into(),
            },
            elapsed: Duration::from_millis(4),
        }],
        launches: vec![LaunchEvidence {
            launch: LaunchRecord {
                command: vec!["/cache/bin/app".into()],
                env,
                cwd: "/tmp/conform-x/cwd".into(),
            },
            exit: Some(Exit {
                status: ExitStatus::Code(1),
                after: Duration::from_millis(12),
                killed_after_grace: false,
            }),
            output_tail: vec!["err: boot failed: production mode requires a secret".into()],
        }],
    }
}

fn report() -> Report {
    let results = vec![
        result("GF-PORT-1", Level::Must, "PORT", Verdict::Pass, Evidence::default()),
        result(
            "GF-PORT-2",
            Level::Must,
            "PORT",
            Verdict::Fail(Violation {
                expected: "listens on :8080".into(),
                actual: "bound to 127.0.0.1:8080".into(),
            }),
            evidence(),
        ),
        result(
            "GF-HEALTH-3",
            Level::Must,
            "HEALTH",
            Verdict::Error {
                message: "Postgres is not available: initdb not found".into(),
            },
            Evidence::default(),
        ),
        result(
            "GF-HEALTH-4",
            Level::Should,
            "HEALTH",
            Verdict::Skip {
                reason: "preflight: the candidate did not boot".into(),
            },
            Evidence::default(),
        ),
        result("GF-PORT-5", Level::Info, "PORT", Verdict::Observed, evidence()),
    ];
    Report {
        conform_version: "0.1.0".into(),
        candidate: "gofastr".into(),
        framework: "gofastr".into(),
        framework_module: "github.com/DonaldMurillo/gofastr".into(),
        framework_version: "v0.67.0".into(),
        provider: "native".into(),
        collector: "none".into(),
        source_hash: "0123456789abcdef0123456789abcdef".into(),
        started_at: "2026-11-23T04:05:06Z".into(),
        duration: Duration::from_secs(42),
        command: "conform certify fixtures/candidates/gofastr".into(),
        summary: Summary::of(&results),
        results,
    }
}

#[test]
fn json_report() {
    insta::assert_snapshot!(report::json(&report()));
}

#[test]
fn markdown_report() {
    insta::assert_snapshot!(report::markdown(&report()));
}

#[test]
fn junit_report() {
    let xml = report::junit(&[report()]);
    // The split that matters, checked before the snapshot: a broken promise is a failure, a
    // harness problem an error, a clause not run skipped.
    assert_eq!(xml.matches("<failure").count(), 1, "{xml}");
    assert_eq!(xml.matches("<error").count(), 1, "{xml}");
    assert_eq!(xml.matches("<skipped").count(), 1, "{xml}");
    insta::assert_snapshot!(xml);
}
