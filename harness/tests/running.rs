//! The process machinery against real processes (`/bin/sh` scripts): the environment is exactly
//! what was given, output is complete after exit, readiness fails fast when the process dies,
//! shutdown reports how it ended, and dropping a `Running` kills its whole process group.

use std::time::{Duration, Instant};

use harness::poll::{Poll, PollError};
use harness::process::Launch;
use harness::ready::{Condition, Ready};
use harness::running::{ExitStatus, Running, Signal};
use harness::workdir::Workdir;

fn sh(script: &str) -> (Launch, Workdir) {
    let workdir = Workdir::new("running-test").unwrap();
    let mut launch = Launch::new("/bin/sh", workdir.cwd());
    launch.args = vec!["-c".into(), script.into()];
    (launch, workdir)
}

fn alive(pid: u32) -> bool {
    // A zombie still has a /proc entry; only count processes that are not zombies.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit(')')
                .next()
                .is_some_and(|rest| !rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

#[tokio::test]
async fn environment_is_exactly_what_was_given() {
    let (mut launch, workdir) = sh("env; exit 0");
    launch.env("CONFORM_ONLY", "yes");
    let mut running = Running::spawn(&launch, workdir).unwrap();
    let exit = running
        .wait_exit(Duration::from_secs(10))
        .await
        .unwrap()
        .expect("exits");
    assert_eq!(exit.status, ExitStatus::Code(0));
    let stdout = running.output().text(harness::output::Stream::Stdout);
    assert!(stdout.contains("CONFORM_ONLY=yes"), "{stdout}");
    assert!(!stdout.contains("HOME="), "nothing is inherited: {stdout}");
}

#[tokio::test]
async fn output_is_complete_once_the_exit_is_reported() {
    let (launch, workdir) = sh("i=0; while [ $i -lt 200 ]; do echo out-$i; echo err-$i >&2; i=$((i+1)); done; exit 3");
    let mut running = Running::spawn(&launch, workdir).unwrap();
    let exit = running
        .wait_exit(Duration::from_secs(10))
        .await
        .unwrap()
        .expect("exits");
    assert_eq!(exit.status, ExitStatus::Code(3));
    assert!(running.output().is_complete());
    let lines = running.output().lines();
    assert!(lines.iter().any(|l| l.text == "out-199") && lines.iter().any(|l| l.text == "err-199"));
    assert_eq!(lines.len(), 400);
}

#[tokio::test]
async fn readiness_fails_fast_when_the_process_exits() {
    let (launch, workdir) = sh("echo booting; exit 1");
    let mut running = Running::spawn(&launch, workdir).unwrap();
    let started = Instant::now();
    let err = running
        .wait_until("a condition that never holds", Duration::from_secs(30), || async {
            Poll::<()>::NotYet("not yet".into())
        })
        .await
        .unwrap_err();
    assert!(matches!(err, PollError::Aborted { .. }), "{err}");
    assert!(err.to_string().contains("exit code 1"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "did not wait out the ceiling"
    );
}

#[tokio::test]
async fn a_readiness_condition_fails_fast_when_the_process_exits() {
    let (launch, workdir) = sh("echo booting; exit 1");
    let mut running = Running::spawn(&launch, workdir).unwrap();
    let started = Instant::now();
    let ready = Ready::new(Condition::Listening, Duration::from_secs(30));
    let err = running.wait_ready(&ready).await.unwrap_err();
    assert!(matches!(err, PollError::Aborted { .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains("the candidate to listen on a TCP port"), "{text}");
    assert!(text.contains("exit code 1"), "{text}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "did not wait out the ceiling"
    );
}

#[tokio::test]
async fn shutdown_reports_signal_and_killed_after_grace() {
    // Ignores SIGTERM: only the harness's SIGKILL after the grace ends it.
    let (launch, workdir) = sh("trap '' TERM; echo ready; while :; do sleep 1; done");
    let mut running = Running::spawn(&launch, workdir).unwrap();
    running
        .output()
        .wait_for_line("saying ready", Duration::from_secs(10), |l| l.text == "ready")
        .await
        .unwrap();
    let exit = running
        .shutdown(Signal::SIGTERM, Duration::from_millis(300))
        .await
        .unwrap();
    assert!(exit.killed_after_grace);
    assert_eq!(exit.status, ExitStatus::Signal(9));
    assert!(exit.after >= Duration::from_millis(300));
}

#[tokio::test]
async fn dropping_kills_the_whole_process_group() {
    // The shell starts a grandchild in the same group and reports its pid.
    let (launch, workdir) = sh("sleep 300 & echo child $!; wait");
    let running = Running::spawn(&launch, workdir).unwrap();
    let line = running
        .output()
        .wait_for_line("with the grandchild's pid", Duration::from_secs(10), |l| {
            l.text.starts_with("child ")
        })
        .await
        .unwrap();
    let grandchild: u32 = line.text.trim_start_matches("child ").parse().unwrap();
    let leader = running.pid();
    assert!(alive(grandchild) && alive(leader));
    drop(running);
    let deadline = Instant::now() + Duration::from_secs(5);
    while (alive(grandchild) || alive(leader)) && Instant::now() < deadline {
        tokio::task::yield_now().await;
    }
    assert!(!alive(grandchild), "grandchild {grandchild} survived the drop");
    assert!(!alive(leader), "leader {leader} survived the drop");
}
