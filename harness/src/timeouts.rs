//! Every bound the harness puts on a wait, in one place, each with the reason for its size.
//!
//! Per-operation bounds live here; per-test bounds are nextest's `slow-timeout`, and the per-run
//! bound is CI's. None of these is a sleep: each is the ceiling of a polled condition.

use std::time::Duration;

/// How long a candidate may take from spawn to answering its probe. Go binaries start in tens of
/// milliseconds; boot auto-migration against a fresh database takes well under a second. Twenty
/// seconds leaves room for a loaded 2-core CI machine without letting a hung boot stall a run.
pub const BOOT_DEFAULT: Duration = Duration::from_secs(20);

/// The boot ceiling in force: [`BOOT_DEFAULT`], or `CONFORM_BOOT_TIMEOUT` (seconds) for a slower
/// machine or a faster test of a candidate that never listens.
pub fn boot() -> Duration {
    static BOOT: std::sync::OnceLock<Duration> = std::sync::OnceLock::new();
    *BOOT.get_or_init(|| {
        std::env::var("CONFORM_BOOT_TIMEOUT")
            .ok()
            .and_then(|s| s.parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s > 0.0)
            .map(Duration::from_secs_f64)
            .unwrap_or(BOOT_DEFAULT)
    })
}

/// How often readiness and socket conditions are re-checked: fast enough that boot time is
/// measured to within a few tens of milliseconds, slow enough not to load the candidate.
pub const POLL_INTERVAL: Duration = Duration::from_millis(25);

/// One HTTP probe. Loopback answers in microseconds; a probe that takes seconds is itself a
/// finding, and readiness checks documented as bounded (GoFastr: 5 s) must fit inside.
pub const HTTP_REQUEST: Duration = Duration::from_secs(10);

/// How long to wait for a process to exit after SIGKILL. The kernel reaps immediately; this only
/// guards against a zombie we never collect.
pub const AFTER_KILL: Duration = Duration::from_secs(5);

/// How long a candidate that is expected to refuse to boot may take to exit.
pub const REFUSE_TO_BOOT: Duration = Duration::from_secs(20);

/// How long Postgres may take to accept connections after the server process starts (measured
/// here at about 0.15 s on tmpfs).
pub const POSTGRES_START: Duration = Duration::from_secs(30);

/// How long the OpenTelemetry Collector may take from spawn to ready (health check 200, OTLP ports
/// accepting). It starts in well under a second here; the bound covers a loaded 2-core machine.
pub const COLLECTOR_START: Duration = Duration::from_secs(30);

/// Grace given to a service (Postgres) on normal teardown before it is killed.
pub const SERVICE_STOP: Duration = Duration::from_secs(10);

/// How long a `go build` of one candidate may take. A cold module cache downloads the framework
/// and its dependency graph first; on a 2-core machine that can take minutes.
pub const GO_BUILD: Duration = Duration::from_secs(900);

/// How long, after a process exits, the harness waits for the rest of its output to be read from
/// the pipes. Reading is immediate; a bound is needed only because a grandchild that inherited
/// the pipes could keep them open.
pub const OUTPUT_DRAIN: Duration = Duration::from_secs(2);

/// One call to the Docker engine's API (ping, inspect, list, remove): the engine answers in
/// milliseconds; a socket that accepts and never answers must not hang the run.
pub const DOCKER_API: Duration = Duration::from_secs(10);

/// How long a clause waits for another conform process on this machine to finish with a
/// documented default port (see [`crate::ports::claim_default`]): one port clause's boots, well
/// inside a scenario's ceiling.
pub const DEFAULT_PORT_CLAIM: Duration = Duration::from_secs(120);

/// The most one scenario may take unless its clause declares otherwise. Every operation inside
/// is bounded on its own; this only catches a scenario whose bounds add up to something absurd,
/// and reports it as a harness error. The longest scenarios (a bounded repetition of 66 drains)
/// take about two minutes on a loaded 2-core machine.
pub const SCENARIO_CEILING: Duration = Duration::from_secs(300);

/// A local, offline helper program conform runs for itself (git preparing a worktree fixture,
/// ipcrm removing a dead server's shared memory): milliseconds normally, so ten seconds means it
/// is stuck.
pub const LOCAL_TOOL: Duration = Duration::from_secs(10);
