//! The report renderers on synthetic results, snapshotted: every verdict kind, evidence with a
//! launch, an exchange and a redacted secret. A renderer change shows up as a snapshot diff to
//! review; CI never updates snapshots (`CI=true` makes insta fail on a mismatch instead).

use std::collections::BTreeMap;
use std::time::Duration;

use harness::evidence::{Evidence, LaunchEvidence, Note};
use harness::probe::{Exchange, Outcome};
use harness::process::LaunchRecord;
use harness::report::{self, ParityRow, Report, Summary};
use harness::running::{Exit, ExitStatus};
use harness::verdict::{ClauseResult, Level, Verdict, Violation};

fn result(clause: &str, level: Level, area: &str, verdict: Verdict, evidence: Evidence) -> ClauseResult {
    ClauseResult {
        clause: clause.into(),
        level,
        area: area.into(),
        promise: format!("the promise of {clause}"),
        doc: "deploy.md › Configuration".into(),
        doc_url: "https://github.com/DonaldMurillo/gofastr/blob/v0.67.0/framework/docs/content/deploy.md".into(),
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
            sample: false,
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

/// A second candidate of the other framework, graded on the clauses the parity table pairs with
/// the first one's.
fn gofr_report() -> Report {
    let results = vec![
        result("GR-PORT-1", Level::Must, "PORT", Verdict::Pass, Evidence::default()),
        result("GR-HLTH-3", Level::Must, "HLTH", Verdict::Pass, Evidence::default()),
    ];
    Report {
        candidate: "gofr".into(),
        framework: "gofr".into(),
        framework_module: "gofr.dev".into(),
        framework_version: "v1.56.6".into(),
        command: "conform certify fixtures/candidates/gofastr fixtures/candidates/gofr".into(),
        summary: Summary::of(&results),
        kill_matrix: None,
        results,
        ..report()
    }
}

fn parity() -> Vec<ParityRow> {
    vec![
        ParityRow {
            promise: "Unset, the documented default port on every interface".into(),
            clauses: vec!["GF-PORT-2".into(), "GR-PORT-1".into()],
        },
        ParityRow {
            promise: "Readiness fails while the database is down, and recovers".into(),
            clauses: vec!["GF-HEALTH-3".into(), "GR-HLTH-3".into()],
        },
        ParityRow {
            promise: "A promise neither candidate was graded on".into(),
            clauses: vec!["GF-MET-1".into(), "GR-MET-1".into()],
        },
    ]
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
        framework_version_pinned: None,
        provider: "native".into(),
        collector: "none".into(),
        source_hash: "0123456789abcdef0123456789abcdef".into(),
        started_at: "2026-11-23T04:05:06Z".into(),
        duration: Duration::from_secs(42),
        command: "conform certify fixtures/candidates/gofastr".into(),
        summary: Summary::of(&results),
        kill_matrix: None,
        results,
    }
}

#[test]
fn json_report() {
    insta::assert_snapshot!(report::json(&report()));
}

#[test]
fn markdown_report() {
    insta::assert_snapshot!(report::markdown(&[report()], &parity()));
}

#[test]
fn markdown_of_two_frameworks_has_the_matrix_and_parity() {
    let md = report::markdown(&[report(), gofr_report()], &parity());
    assert!(
        md.contains(
            "| Readiness fails while the database is down, and recovers | GF-HEALTH-3 ⚠️ error | GR-HLTH-3 ✅ pass |"
        ),
        "{md}"
    );
    assert!(
        !md.contains("neither candidate"),
        "a parity row with no verdict is left out: {md}"
    );
    assert!(md.contains("| GR-PORT-1 | must | — | ✅ pass |"), "{md}");
    insta::assert_snapshot!(md);
}

#[test]
fn html_report() {
    let page = report::html(&[report(), gofr_report()], &parity());
    // Self-contained: nothing the page would fetch (links to the docs are anchors, not resources).
    for fetch in ["<link", " src=", "url(", "@import"] {
        assert!(!page.contains(fetch), "the page fetches something ({fetch}): {page}");
    }
    insta::assert_snapshot!(page);
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

/// A run of the GoFr candidate built against the previous release (`certify --framework-version
/// v1.55.0`) while its manifest pins v1.56.6: every format names the version built and the pin.
fn cross_release_report() -> Report {
    let results = vec![result(
        "GR-PORT-1",
        Level::Must,
        "PORT",
        Verdict::Pass,
        Evidence::default(),
    )];
    Report {
        framework_version: "v1.55.0".into(),
        framework_version_pinned: Some("v1.56.6".into()),
        command: "conform certify fixtures/candidates/gofr --framework-version v1.55.0".into(),
        summary: Summary::of(&results),
        results,
        ..gofr_report()
    }
}

#[test]
fn a_cross_release_run_names_the_version_built_and_the_pin() {
    let r = cross_release_report();
    let json = report::json(&r);
    assert!(json.contains("\"framework_version\": \"v1.55.0\""), "{json}");
    assert!(json.contains("\"framework_version_pinned\": \"v1.56.6\""), "{json}");
    assert!(
        !report::json(&report()).contains("framework_version_pinned"),
        "a run on the pinned release has no pin field"
    );
    let label = "gofr.dev v1.55.0, manifest pins v1.56.6";
    let md = report::markdown(std::slice::from_ref(&r), &parity());
    assert!(md.contains(label), "{md}");
    let page = report::html(std::slice::from_ref(&r), &parity());
    assert!(
        page.contains(&format!("<title>conform: gofr ({label})</title>")),
        "{page}"
    );
    assert!(page.contains(&format!("<td>{label}</td>")), "{page}");
    let xml = report::junit(std::slice::from_ref(&r));
    assert!(
        xml.contains(r#"<property name="framework_version_pinned" value="v1.56.6"/>"#),
        "{xml}"
    );
    insta::assert_snapshot!("cross_release_json", json);
    insta::assert_snapshot!("cross_release_markdown", md);
    insta::assert_snapshot!("cross_release_junit", xml);
}

/// Run `program` with `args`, its output captured; a missing program fails the test naming the
/// Debian package that provides it (`cargo xtask setup` installs both).
#[expect(
    clippy::disallowed_methods,
    reason = "a test driving a checker program (chromium, xmllint), not a candidate"
)]
fn run(program: &str, package: &str, args: &[&std::ffi::OsStr]) -> std::process::Output {
    let mut command = std::process::Command::new(program);
    command.args(args).stdin(std::process::Stdio::null());
    command.output().unwrap_or_else(|e| {
        panic!("cannot run {program}: {e}; install Debian's `{package}` package (`cargo xtask setup` does)")
    })
}

#[test]
fn junit_validates_against_the_junit_schema() {
    let dir = tempfile::tempdir().unwrap();
    let xml = dir.path().join("junit.xml");
    std::fs::write(&xml, report::junit(&[report(), gofr_report()])).unwrap();
    let schema = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/schema/junit.xsd");
    let out = run(
        "xmllint",
        "libxml2-utils",
        &[
            "--noout".as_ref(),
            "--schema".as_ref(),
            schema.as_os_str(),
            xml.as_os_str(),
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the JUnit report does not validate: {stderr}");
    assert!(stderr.contains("validates"), "{stderr}");
}

/// The HTML page in a real browser: headless Chromium loads it from a file with the network
/// off, runs its script, and the DOM it dumps has the matrix with every row shown, the parity
/// table, and a failure's evidence.
#[test]
fn html_renders_in_headless_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("report.html");
    std::fs::write(&page, report::html(&[report(), gofr_report()], &parity())).unwrap();
    let profile = dir.path().join("chromium-profile");
    let url = format!("file://{}", page.display());
    let user_data = format!("--user-data-dir={}", profile.display());
    let args = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--proxy-server=127.0.0.1:9",
        user_data.as_str(),
        "--dump-dom",
        url.as_str(),
    ];
    let args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_ref()).collect();
    let out = run("chromium", "chromium", &args);
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The script ran and counted the matrix rows it shows: all seven clauses of both candidates.
    assert!(dom.contains(r#"data-rows="7""#), "the page's script did not run: {dom}");
    assert!(dom.contains(r#"<table id="matrix">"#), "{dom}");
    assert!(
        dom.contains(r#"<tr data-clause="GF-PORT-2" data-verdicts="fail">"#),
        "{dom}"
    );
    assert!(dom.contains(r#"<table id="parity">"#), "{dom}");
    assert!(dom.contains(r#"<article id="gofastr-GF-PORT-2">"#), "{dom}");
    assert!(dom.contains("bound to 127.0.0.1:8080"), "{dom}");
}

#[test]
fn kill_matrix_says_which_clause_catches_which_mutant() {
    use harness::report::kills::{KillMatrix, MutantReport};
    let reference = report();
    let mutant = |name: &str, verdict: Verdict| MutantReport {
        name: name.into(),
        breaks: format!("what {name} breaks"),
        areas: vec!["PORT".into()],
        report: Report {
            candidate: name.into(),
            results: vec![result("GF-PORT-1", Level::Must, "PORT", verdict, Evidence::default())],
            ..report()
        },
    };
    let failing = Verdict::Fail(Violation {
        expected: "every interface".into(),
        actual: "loopback".into(),
    });
    let matrix = KillMatrix::new(
        &reference,
        &[mutant("port-loopback", failing), mutant("harmless", Verdict::Pass)],
    );
    assert_eq!(matrix.mutants[0].caught_by, ["GF-PORT-1"]);
    assert!(
        matrix.mutants[1].caught_by.is_empty(),
        "a mutant nothing catches survives"
    );
    assert_eq!(matrix.proven(), 1);
    assert_eq!(matrix.failing_on_reference, ["GF-PORT-2"]);
    let with_matrix = Report {
        kill_matrix: Some(matrix),
        ..reference
    };
    let md = report::markdown(&[with_matrix], &[]);
    assert!(
        md.contains("| harmless | what harmless breaks | PORT | **nothing: survives** |"),
        "{md}"
    );
    assert!(md.contains("| GF-PORT-1 | must | port-loopback |"), "{md}");
    let json: serde_json::Value = serde_json::from_str(&report::json(&Report {
        kill_matrix: Some(KillMatrix::new(&report(), &[])),
        ..report()
    }))
    .unwrap();
    assert_eq!(json["kill_matrix"]["unproven"][0], "GF-PORT-1");
}
