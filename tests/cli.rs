//! Bad input and interruption, through the real `conform` binary: each case must end with a
//! clear message and its documented exit code, keep any report already written, and leave no
//! process and no temp directory behind.
//!
//! The candidates here are the harness self-test fixtures under `fixtures/selftest/` (tiny Go
//! programs that fail in one specific way), never framework apps; they exercise conform's own
//! error paths where no framework module is needed.

#![allow(
    clippy::disallowed_methods,
    reason = "these tests run conform, docker and chmod as a user would, and poll /proc for leftovers in a plain thread"
)]

mod support;

use support::root;

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const CONFORM: &str = env!("CARGO_BIN_EXE_conform");

/// A sandbox for one invocation: its own TMPDIR (to prove nothing is left in it), its own build
/// cache (so any process still running from it is this test's, even with tests in parallel;
/// Go's own build cache makes the rebuild cheap) and its own report directory.
struct Sandbox {
    dir: tempfile::TempDir,
}

impl Sandbox {
    fn new() -> Sandbox {
        let dir = tempfile::Builder::new().prefix("conform-cli-test-").tempdir().unwrap();
        for sub in ["tmp", "cache", "reports"] {
            std::fs::create_dir(dir.path().join(sub)).unwrap();
        }
        Sandbox { dir }
    }

    fn path(&self, sub: &str) -> PathBuf {
        self.dir.path().join(sub)
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(CONFORM);
        cmd.args(args)
            .current_dir(root())
            .env("TMPDIR", self.path("tmp"))
            .env("CONFORM_CACHE_DIR", self.path("cache"))
            .env("CONFORM_BOOT_TIMEOUT", "3")
            .stdin(Stdio::null());
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("conform runs")
    }

    /// Nothing left in this sandbox's TMPDIR and no process of a selftest binary alive.
    fn assert_clean(&self) {
        let left: Vec<String> = std::fs::read_dir(self.path("tmp"))
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().to_string()))
            .filter(|n| !n.starts_with(".tmp")) // atomic-write temp files are not candidates' dirs
            .collect();
        assert!(left.is_empty(), "temp dirs left behind: {left:?}");
        // The kernel may take a moment to reap a killed candidate: poll (bounded) for it to go.
        let deadline = Instant::now() + Duration::from_secs(5);
        while !self.processes().is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let alive = self.processes();
        assert!(alive.is_empty(), "processes left behind: {alive:?}");
    }

    /// Live (non-zombie) processes whose executable lives in this sandbox's build cache.
    fn processes(&self) -> Vec<(u32, String)> {
        processes_under(&self.path("cache"))
    }
}

/// Pids of live processes whose executable lives under `cache`.
fn processes_under(cache: &std::path::Path) -> Vec<(u32, String)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if let Ok(exe) = std::fs::read_link(format!("/proc/{pid}/exe"))
            && exe.starts_with(cache)
        {
            found.push((pid, exe.display().to_string()));
        }
    }
    found
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Wait (bounded, polled) until `ready` holds while `child` runs, then send it SIGINT and return
/// how it exited. `what` names the condition for the failure message.
fn interrupt_once(child: &mut std::process::Child, what: &str, ready: impl Fn() -> bool) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !ready() {
        assert!(Instant::now() < deadline, "never: {what}");
        assert!(child.try_wait().unwrap().is_none(), "conform exited before {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    child.wait().unwrap()
}

fn selftest(name: &str) -> String {
    format!("fixtures/selftest/{name}")
}

#[test]
fn missing_candidate_directory_is_a_usage_error() {
    let sb = Sandbox::new();
    let out = sb.run(&["certify", "fixtures/candidates/does-not-exist"]);
    assert_eq!(out.status.code(), Some(64), "{}", text(&out));
    assert!(
        text(&out).contains("fixtures/candidates/does-not-exist does not exist"),
        "{}",
        text(&out)
    );
    sb.assert_clean();
}

#[test]
fn manifest_with_unknown_key_names_file_and_line() {
    let sb = Sandbox::new();
    let dir = sb.path("bad-manifest");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(
        dir.join("candidate.toml"),
        "name = \"x\"\nprofile = \"gofr\"\nframework_module = \"gofr.dev\"\nframework_version = \"v1\"\nport = 8080\n\n[build]\n",
    )
    .unwrap();
    let out = sb.run(&["certify", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(64), "{}", text(&out));
    let t = text(&out);
    assert!(t.contains("candidate.toml:5:") && t.contains("port"), "{t}");
    sb.assert_clean();
}

#[test]
fn unknown_profile_points_at_its_line() {
    let sb = Sandbox::new();
    let dir = sb.path("bad-profile");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(
        dir.join("candidate.toml"),
        "name = \"x\"\nprofile = \"rails\"\nframework_module = \"m\"\nframework_version = \"v1\"\n\n[build]\n",
    )
    .unwrap();
    let out = sb.run(&["certify", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(64), "{}", text(&out));
    let t = text(&out);
    assert!(
        t.contains("candidate.toml:2:") && t.contains("unknown profile \"rails\""),
        "{t}"
    );
}

#[test]
fn candidate_exiting_at_boot_fails_with_its_message_and_a_report() {
    let sb = Sandbox::new();
    let reports = sb.path("reports");
    let out = sb.run(&[
        "certify",
        &selftest("exits-at-boot"),
        "--filter",
        "GF-PORT-1",
        "--out",
        reports.to_str().unwrap(),
    ]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(
        t.contains("did not boot in preflight") && t.contains("exit code 1"),
        "{t}"
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(reports.join("selftest-exits-at-boot.json")).unwrap()).unwrap();
    assert_eq!(report["results"][0]["verdict"], "skip");
    let launch_tail = report["results"][0]["evidence"]["launches"][0]["output_tail"].to_string();
    assert!(launch_tail.contains("refusing to boot"), "{launch_tail}");
    sb.assert_clean();
}

#[test]
fn candidate_that_never_listens_fails_within_the_boot_ceiling() {
    let sb = Sandbox::new();
    let started = Instant::now();
    let out = sb.run(&[
        "certify",
        &selftest("never-listens"),
        "--filter",
        "GF-PORT-1",
        "--out",
        sb.path("reports").to_str().unwrap(),
    ]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(
        t.contains("timed out") && t.contains("last seen"),
        "the wait says what it last saw: {t}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "bounded by CONFORM_BOOT_TIMEOUT"
    );
    sb.assert_clean();
}

#[test]
fn postgres_not_installed_is_a_harness_error_with_the_fix() {
    let sb = Sandbox::new();
    let reports = sb.path("reports");
    // GF-PORT-4 is a `should` clause that needs Postgres: its `error` alone makes the run
    // "not judged" (exit 2), whatever the level.
    let mut cmd = sb.command(&[
        "certify",
        &selftest("serves"),
        "--filter",
        "GF-PORT-4",
        "--out",
        reports.to_str().unwrap(),
    ]);
    cmd.env("CONFORM_PG_BINDIR", "/nonexistent/postgresql/bin");
    let out = cmd.output().unwrap();
    let t = text(&out);
    assert_eq!(out.status.code(), Some(2), "harness could not judge: {t}");
    let report = std::fs::read_to_string(reports.join("selftest-serves.json")).unwrap();
    let report: serde_json::Value = serde_json::from_str(&report).unwrap();
    assert_eq!(report["results"][0]["verdict"], "error");
    let message = report["results"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("not found") && message.contains("postgresql"),
        "{message}"
    );
    sb.assert_clean();
}

#[test]
fn collector_real_is_recorded_and_leaves_no_collector_behind() {
    // The collector is built into this sandbox's own cache (the Go caches make that seconds), so
    // `assert_clean` also proves that no collector process outlived the run.
    let sb = Sandbox::new();
    let reports = sb.path("reports");
    let out = sb.run(&[
        "certify",
        &selftest("serves"),
        "--filter",
        "GF-TRACE-2",
        "--collector",
        "real",
        "--out",
        reports.to_str().unwrap(),
    ]);
    let t = text(&out);
    // The self-test app exports no spans, so the continuation clause fails: through the collector.
    assert_eq!(out.status.code(), Some(1), "{t}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(reports.join("selftest-serves.json")).unwrap()).unwrap();
    let collector = report["collector"].as_str().unwrap_or_default();
    assert!(collector.starts_with("real: otelcol-conform"), "{collector}");
    assert_eq!(report["results"][0]["verdict"], "fail", "{t}");
    let notes = report["results"][0]["evidence"]["notes"].to_string();
    assert!(
        notes.contains("OpenTelemetry Collector"),
        "the evidence names the path: {notes}"
    );
    let markdown = std::fs::read_to_string(reports.join("selftest-serves.md")).unwrap();
    assert!(markdown.contains("collector `real: otelcol-conform"), "{markdown}");
    sb.assert_clean();
}

#[test]
fn ctrl_c_mid_scenario_leaves_nothing_behind() {
    let sb = Sandbox::new();
    let mut child = sb
        .command(&[
            "certify",
            &selftest("never-listens"),
            "--no-preflight",
            "--filter",
            "GF-PORT-1",
            "--out",
            sb.path("reports").to_str().unwrap(),
        ])
        .env("CONFORM_BOOT_TIMEOUT", "60")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The candidate process is up, so the interrupt lands mid-scenario.
    let status = interrupt_once(&mut child, "the candidate started", || !sb.processes().is_empty());
    assert_eq!(status.code(), Some(130));
    sb.assert_clean();
}

#[test]
fn list_json_has_the_interface_fields() {
    let out = Command::new(CONFORM)
        .args(["list", "--format", "json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let clauses: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let clauses = clauses.as_array().unwrap();
    assert!(clauses.len() >= 20);
    for c in clauses {
        for field in ["id", "level", "area", "framework"] {
            assert!(c.get(field).is_some(), "{field} missing in {c}");
        }
        assert!(["must", "should", "info"].contains(&c["level"].as_str().unwrap()));
        assert!(["gofastr", "gofr"].contains(&c["framework"].as_str().unwrap()));
    }
    assert!(clauses.iter().any(|c| c["id"] == "GF-PORT-1") && clauses.iter().any(|c| c["id"] == "GR-HLTH-3"));
}

#[test]
fn explain_unknown_clause_is_a_usage_error() {
    let out = Command::new(CONFORM).args(["explain", "GF-NOPE-9"]).output().unwrap();
    assert_eq!(out.status.code(), Some(64));
    let out = Command::new(CONFORM).args(["explain", "gr-hlth-3"]).output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("Documented in:"));
}

/// A `--filter` that does not parse, or that selects no clause, is a usage error before anything
/// is built, never a quietly smaller run (`[1-6` once ran fewer clauses than asked).
#[test]
fn a_filter_that_cannot_select_is_a_usage_error() {
    let sb = Sandbox::new();
    let candidate = root().join("fixtures/candidates/gofr");
    let candidate = candidate.to_str().unwrap();
    let reports = sb.path("reports");
    let reports = reports.to_str().unwrap();
    let out = sb.run(&["certify", candidate, "--out", reports, "--filter", "GR-SHUT-[1-6"]);
    assert_eq!(out.status.code(), Some(64), "{}", text(&out));
    assert!(text(&out).contains("not a glob pattern"), "{}", text(&out));
    let out = sb.run(&["certify", candidate, "--out", reports, "--filter", "GR-SHUT-[7-9][0-9]"]);
    assert_eq!(out.status.code(), Some(64), "{}", text(&out));
    assert!(text(&out).contains("selects no clause of gofr"), "{}", text(&out));
    assert!(
        !sb.path("reports").join("gofr.json").exists(),
        "a usage error writes no report"
    );
    sb.assert_clean();
}

#[test]
fn diff_reports_verdict_changes_and_exits_by_them() {
    let sb = Sandbox::new();
    let report = |verdict: &str| {
        serde_json::json!({
            "candidate": "gofr", "framework_version": "v1.56.6",
            "results": [{"clause": "GR-HLTH-3", "verdict": verdict, "evidence": {"notes": [
                {"key": "port", "value": "listening on 127.0.0.1:41234 after 12 ms"}
            ]}}]
        })
    };
    let (a, b) = (sb.path("a.json"), sb.path("b.json"));
    std::fs::write(&a, report("fail").to_string()).unwrap();
    std::fs::write(&b, report("pass").to_string()).unwrap();
    let out = sb.run(&["diff", a.to_str().unwrap(), a.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = sb.run(&["diff", a.to_str().unwrap(), b.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("GR-HLTH-3: verdict fail -> pass"), "{}", text(&out));
    let out = sb.run(&["diff", a.to_str().unwrap(), "/nonexistent/report.json"]);
    assert_eq!(out.status.code(), Some(64), "{}", text(&out));
}

/// With no source serving the framework module (GOPROXY at an empty directory, an empty module
/// cache, on purpose), certification does not pretend: every clause is `error` naming the
/// module@version with Go's own message, the report is written, and the exit code is 2.
#[test]
fn framework_module_not_served_is_an_error_with_gos_message() {
    let sb = Sandbox::new();
    let (proxy, modcache, reports) = (sb.path("empty-proxy"), sb.path("modcache"), sb.path("reports"));
    std::fs::create_dir(&proxy).unwrap();
    let out = sb
        .command(&[
            "certify",
            "fixtures/candidates/gofr",
            "--filter",
            "GR-PORT-*",
            "--out",
            reports.to_str().unwrap(),
        ])
        .env("GOPROXY", format!("file://{}", proxy.display()))
        .env("GOMODCACHE", &modcache)
        .output()
        .expect("conform runs");
    // Go makes its module cache read-only; let the sandbox remove it.
    let _ = Command::new("chmod").arg("-R").arg("u+w").arg(&modcache).status();
    let t = text(&out);
    assert_eq!(out.status.code(), Some(2), "{t}");
    assert!(t.contains("does not serve gofr.dev@v1.56.6"), "{t}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(reports.join("gofr.json")).unwrap()).unwrap();
    let results = report["results"].as_array().unwrap();
    assert!(results.len() > 1, "{report}");
    for result in results {
        assert_eq!(result["verdict"], "error", "{result}");
        let message = result["message"].to_string() + &result.to_string();
        assert!(
            message.contains("gofr.dev@v1.56.6") && message.contains(&format!("reading file://{}", proxy.display())),
            "{result}"
        );
    }
    sb.assert_clean();
}

#[test]
fn diff_reports_samples_apart_and_exits_0_on_them() {
    let sb = Sandbox::new();
    let report = |missed: &str| {
        serde_json::json!({
            "candidate": "gofr", "framework_version": "v1.56.6",
            "results": [{"clause": "GR-SHUT-5", "verdict": "fail", "evidence": {"notes": [
                {"key": "run 1", "value": missed, "sample": true},
                {"key": "exit", "value": "exit code 0 after 12 ms"}
            ]}}]
        })
    };
    let (a, b) = (sb.path("a.json"), sb.path("b.json"));
    std::fs::write(&a, report("`Application shutdown complete` at line None").to_string()).unwrap();
    std::fs::write(
        &b,
        report("`Application shutdown complete` at line Some(9)").to_string(),
    )
    .unwrap();
    let out = sb.run(&["diff", a.to_str().unwrap(), b.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("0 change(s)"), "{}", text(&out));
    assert!(
        text(&out).contains("varies between runs by nature: 1 note(s)"),
        "{}",
        text(&out)
    );
}

#[test]
fn certify_writes_every_format_per_candidate_and_combined() {
    let sb = Sandbox::new();
    let reports = sb.path("reports");
    let out = sb.run(&[
        "certify",
        &selftest("serves"),
        &selftest("exits-at-boot"),
        "--filter",
        "GF-HEALTH-1",
        "--out",
        reports.to_str().unwrap(),
    ]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "exits-at-boot fails preflight: {t}");
    assert!(
        !t.contains('\x1b'),
        "no colour or bar when stderr is not a terminal: {t:?}"
    );
    for candidate in ["selftest-serves", "selftest-exits-at-boot"] {
        for ext in ["json", "md", "html", "junit.xml"] {
            let path = reports.join(format!("{candidate}.{ext}"));
            assert!(path.is_file(), "{} was not written: {t}", path.display());
        }
    }
    let combined = std::fs::read_to_string(reports.join("conform.md")).unwrap();
    assert!(combined.starts_with("# conform: 2 candidates"), "{combined}");
    assert!(
        combined.contains("| GF-HEALTH-1 | must |") && combined.contains("selftest-serves | selftest-exits-at-boot |"),
        "the matrix has a column per candidate: {combined}"
    );
    let html = std::fs::read_to_string(reports.join("conform.html")).unwrap();
    assert!(html.contains(r#"<table id="matrix">"#), "{html}");
    let junit = std::fs::read_to_string(reports.join("conform.junit.xml")).unwrap();
    assert_eq!(junit.matches("<testcase ").count(), 2, "{junit}");

    // One format to one file.
    let page = sb.path("one.html");
    let out = sb.run(&[
        "certify",
        &selftest("serves"),
        "--filter",
        "GF-HEALTH-1",
        "--format",
        "html",
        "--out",
        page.to_str().unwrap(),
    ]);
    assert!(page.is_file(), "{}", text(&out));
    sb.assert_clean();
}

/// Whether a Docker engine answers and has the provider's default image. Under CI it must;
/// elsewhere a test that needs it is skipped, saying why.
fn docker_ready() -> bool {
    match support::docker_image_ready() {
        Ok(()) => true,
        Err(why) => {
            eprintln!("SKIPPED: {why}");
            false
        }
    }
}

#[test]
fn docker_unreachable_names_the_socket_and_exits_2() {
    let sb = Sandbox::new();
    let socket = format!("unix://{}", sb.path("no-docker.sock").display());
    let out = sb
        .command(&["certify", &selftest("serves"), "--provider", "docker"])
        .env("DOCKER_HOST", &socket)
        .output()
        .unwrap();
    let t = text(&out);
    assert_eq!(out.status.code(), Some(2), "{t}");
    assert!(t.contains(&socket) && t.contains("not reachable"), "{t}");
    assert!(!t.contains("panicked"), "{t}");
    sb.assert_clean();
}

#[test]
fn provider_auto_falls_back_to_native_and_the_report_says_so() {
    let sb = Sandbox::new();
    let reports = sb.path("reports");
    let out = sb
        .command(&[
            "certify",
            &selftest("serves"),
            "--provider",
            "auto",
            "--filter",
            "GF-BIN-1",
            "--out",
            reports.to_str().unwrap(),
        ])
        .env("DOCKER_HOST", format!("unix://{}", sb.path("no-docker.sock").display()))
        .output()
        .unwrap();
    let t = text(&out);
    assert!(t.contains("provider auto -> native"), "{t}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(reports.join("selftest-serves.json")).unwrap()).unwrap();
    assert_eq!(report["provider"], "native", "{t}");
    sb.assert_clean();
}

/// Ctrl-C while the docker provider's Postgres runs: exit 130, and the container is gone (the
/// reaper removes it; no testcontainers watchdog is involved).
#[test]
fn ctrl_c_with_the_docker_provider_removes_the_container() {
    if !docker_ready() {
        return;
    }
    let sb = Sandbox::new();
    // GF-PORT-4 asks for Postgres, then waits for the candidate to poll a lock; this one never
    // even listens, so the scenario is still waiting when the interrupt lands.
    let mut child = sb
        .command(&[
            "certify",
            &selftest("never-listens"),
            "--provider",
            "docker",
            "--no-preflight",
            "--filter",
            "GF-PORT-4",
            "--out",
            sb.path("reports").to_str().unwrap(),
        ])
        .env("CONFORM_BOOT_TIMEOUT", "60")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let status = interrupt_once(&mut child, "its container and the candidate ran", || {
        !support::containers_of_run(pid).is_empty() && !sb.processes().is_empty()
    });
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(130), "{stderr}");
    let left = support::containers_of_run(pid);
    assert!(left.is_empty(), "containers left behind: {left:?}\n{stderr}");
    sb.assert_clean();
}

#[test]
fn a_closed_stdout_pipe_is_not_a_panic() {
    let sb = Sandbox::new();
    let mut child = sb
        .command(&["list"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Close the read end at once: every line `list` prints meets a broken pipe.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(0), "{stderr}");
}

#[test]
fn a_malformed_framework_version_is_a_usage_error() {
    let sb = Sandbox::new();
    let reports = sb.path("reports");
    for bad in ["1.55.0", "v1.55", "latest", "v1.55.0-"] {
        let out = sb.run(&[
            "certify",
            "fixtures/candidates/gofr",
            "--framework-version",
            bad,
            "--out",
            reports.to_str().unwrap(),
        ]);
        let t = text(&out);
        assert_eq!(out.status.code(), Some(64), "{bad}: {t}");
        assert!(
            t.contains(&format!(
                "--framework-version: {bad:?} is not a framework release version"
            )) && t.contains("expected v<semver>"),
            "{bad}: {t}"
        );
    }
    assert_eq!(
        std::fs::read_dir(&reports).unwrap().count(),
        0,
        "no report for a usage error"
    );
    sb.assert_clean();
}

#[test]
fn a_framework_version_no_source_serves_is_module_not_served_in_every_clause() {
    // Cheap: the build stops at `go mod tidy` (the module graph resolved afresh for the asked
    // release), which fails on the framework module before anything is compiled.
    let sb = Sandbox::new();
    let reports = sb.path("reports");
    let version = "v1.0.0-conform-missing";
    let out = sb.run(&[
        "certify",
        "fixtures/candidates/gofr",
        "--framework-version",
        version,
        "--area",
        "PORT",
        "--out",
        reports.to_str().unwrap(),
    ]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(2), "the harness could not judge: {t}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(reports.join("gofr.json")).unwrap()).unwrap();
    assert_eq!(
        report["framework_version"], version,
        "the version asked for, not the pin"
    );
    assert_eq!(report["framework_version_pinned"], "v1.56.6");
    let results = report["results"].as_array().unwrap();
    assert!(results.len() > 1, "every PORT clause is reported: {results:?}");
    for r in results {
        assert_eq!(r["verdict"], "error", "{r}");
        let message = r["message"].as_str().unwrap();
        // conform's classification, then Go's own line naming the module version it could not get.
        assert!(
            message.contains(&format!("does not serve gofr.dev@{version}:"))
                && message.contains(&format!("gofr.dev@{version}: reading "))
                && ["403 Forbidden", "404 Not Found", "no such file or directory"]
                    .iter()
                    .any(|why| message.contains(why)),
            "{message}"
        );
    }
    let md = std::fs::read_to_string(reports.join("gofr.md")).unwrap();
    assert!(
        md.contains(&format!("gofr.dev {version}, manifest pins v1.56.6")),
        "{md}"
    );
    assert!(
        t.contains(&format!("gofr [gofr.dev {version}, manifest pins v1.56.6]: ")),
        "the human summary names the release built: {t}"
    );
    sb.assert_clean();
}
