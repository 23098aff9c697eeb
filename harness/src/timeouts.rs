//! Every bound the harness puts on a wait, in one place, each with the reason for its size.
//!
//! Per-operation bounds live here; per-test bounds are nextest's `slow-timeout`, and the per-run
//! bound is CI's. None of these is a sleep: each is the ceiling of a polled condition, the bound of
//! one operation (a request, a connect), the pace of a poll or a grace period.
//!
//! The catalogue's scenarios take their bounds from here too (the second half of this file), so a
//! slow machine is tuned in one file. What is *not* here: values a scenario hands the candidate or
//! that a promise defines (a request's sleep, a configured shutdown deadline, a documented default
//! such as `ReadHeaderTimeout`), and tolerances a verdict is judged by (how far from a deadline an
//! exit may be); those stay next to the clause they belong to.

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
/// the pipes could keep them open. Also the wait for a line the candidate already printed to
/// reach the line log (reader tasks move it there within milliseconds).
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

/// One look at the OpenTelemetry Collector's readiness: the health check request, and each OTLP
/// port's connect. Loopback answers at once; twenty poll intervals (500 ms) only stop one hung
/// look from eating the start ceiling.
pub const COLLECTOR_LOOK: Duration = Duration::from_millis(500);

/// How long the reaper gives a group it asked to stop politely (Postgres: SIGINT, a fast shutdown
/// that also removes its shared memory) before killing it: Postgres stops in under 100 ms here.
pub const REAPER_POLITE_GRACE: Duration = Duration::from_secs(5);

/// How long the reaper waits for creations under a pass (a Postgres container's start, which
/// includes waiting for it to be ready) to finish: that start's own bound.
pub const REAPER_PASS_WAIT: Duration = POSTGRES_START;

/// How often the reaper re-checks, from blocking code on an interrupt, whether politely signalled
/// groups are gone and passes are over. Finer than [`POLL_INTERVAL`] (25 ms) so that Ctrl-C ends
/// the run promptly; nothing else runs any more, so the polling costs nothing.
pub const REAPER_POLL: Duration = Duration::from_millis(10);

// Bounds of the catalogue's scenarios.

/// How long a line may take to reach the line log once the event that writes it has been seen
/// (a request answered, a boot live, a panic answered 500): the candidate writes it before or as
/// the event happens and reading a pipe takes microseconds; five seconds is only for a loaded
/// 2-core machine.
pub const LOG_LINE: Duration = Duration::from_secs(5);

/// How long a candidate started with a missing TLS file may take to print its first line on
/// stderr: a boot's error, normally within milliseconds; twice [`LOG_LINE`] because the line
/// comes at boot, not after an event the harness saw.
pub const STARTUP_ERROR_LINE: Duration = Duration::from_secs(10);

/// How long a "no such line" expectation watches the log after the app served: long enough for
/// a line a framework prints from a goroutine started at serve time (seen missing the check once
/// in three mutant runs on a loaded 2-core machine when it was judged at once).
pub const NO_LINE_WINDOW: Duration = Duration::from_secs(1);

/// How long the last lines of a candidate that has exited (refusing a migration) may take to come
/// through its pipes. Contradicts [`OUTPUT_DRAIN`] (2 s), which bounds the same wait elsewhere;
/// kept at its original 5 s.
pub const EXITED_OUTPUT: Duration = Duration::from_secs(5);

/// How long a candidate may take to fetch its JWKS and accept a valid token: the boot fetch is
/// asynchronous and a failed one is retried on the next refresh; three refresh periods of the 2 s
/// the scenario sets (`CONF_JWKS_REFRESH`) plus 5 s for a loaded machine (the catalogue asserts
/// the relation).
pub const JWKS_ACCEPT: Duration = Duration::from_secs(3 * 2 + 5);

/// Pace of the token polls while waiting for the JWKS: ten per refresh period.
pub const TOKEN_POLL: Duration = Duration::from_millis(200);

/// How long spans may take to reach the receiver with a 200 ms batch delay: fifty export cycles,
/// which also covers the exporter's first connection on a loaded 2-core machine.
pub const SPAN_ARRIVAL: Duration = Duration::from_secs(10);

/// The window in which no span may arrive, for the cases where no sentinel can be exported
/// (tracing off, an exporter that cannot connect): ten export cycles of a 200 ms batch delay after
/// the request is known to be finished. A working exporter delivers within one or two cycles.
pub const NO_SPAN_WINDOW: Duration = Duration::from_secs(2);

/// How long an idle candidate that flushes spans may take to exit after SIGTERM: the HTTP drain
/// of an idle server is immediate, and the GoFastr candidate bounds its `OnStop` span flush at 5 s.
pub const EXIT_AFTER_SIGTERM: Duration = Duration::from_secs(10);

/// How long an idle candidate may take to exit after SIGTERM between two boots of a migration
/// scenario: nothing to drain, this bounds a hang, well inside both documented shutdown defaults.
/// Contradicts [`IDLE_EXIT`] (2 s) for the same situation in the shutdown clauses; kept at its
/// original 10 s.
pub const STOP_BETWEEN_BOOTS: Duration = Duration::from_secs(10);

/// How long after its shutdown deadline a candidate may take to be gone. Go's `Server.Shutdown`
/// polls idle connections every ≤500 ms and the teardown after it (batteries, hooks, pools) is
/// quick; two seconds covers that on a loaded 2-core machine.
pub const EXIT_MARGIN: Duration = Duration::from_secs(2);

/// How long a candidate may take to exit after a signal once nothing is in flight: the drain of
/// an idle server is immediate; this is the same margin the drain clauses give.
pub const IDLE_EXIT: Duration = EXIT_MARGIN;

/// How long a process whose signal handling is off may take to die of SIGTERM: the kernel ends it
/// at once; the margin covers a loaded machine.
pub const SIGNAL_DEFAULT_ACTION: Duration = Duration::from_secs(5);

/// How long the in-flight requests of a drain may take to be accepted by the candidate. Loopback
/// connects are immediate; this bounds a candidate that stopped accepting.
pub const IN_FLIGHT_UP: Duration = Duration::from_secs(5);

/// One probing connect during a drain: a listening socket accepts at once on loopback, a closed
/// one refuses at once.
pub const CONNECT_PROBE: Duration = Duration::from_millis(500);

/// One connect to a replica's port while it waits for the migration lock (it must be refused).
/// The same operation as [`CONNECT_PROBE`] (500 ms), given 2 s; kept at its original value.
pub const LOCKED_CONNECT_PROBE: Duration = Duration::from_secs(2);

/// One TLS request to a candidate serving HTTPS on loopback: the handshake and answer take
/// milliseconds. Half of [`HTTP_REQUEST`] for the same kind of request; kept at its original 5 s.
pub const TLS_REQUEST: Duration = Duration::from_secs(5);

/// How long a candidate may take to notice its database went away or came back (readiness, SQL
/// health, reconnect). GoFastr pings on every readiness request; GoFr's SQL ping times out after
/// 1 s and it reconnects on a 10 s cycle, so 30 s covers both with two retries of margin.
pub const DB_STATE_CHANGE: Duration = Duration::from_secs(30);

/// Pace of health probes while waiting for a database state change: a few per second is what
/// orchestrators do.
pub const HEALTH_PROBE_INTERVAL: Duration = Duration::from_millis(200);

/// Pace of health probes while waiting for GoFr's SQL reconnect (a 10 s cycle): four per second.
pub const RECONNECT_PROBE_INTERVAL: Duration = Duration::from_millis(250);

/// How long GoFr's SQL pool gauges may take to show an open connection: the catalogue (GR-MET-5,
/// sql.go) has them refreshed every 10 s; 15 s covers one full cycle plus a loaded machine.
pub const SQL_GAUGE_REFRESH: Duration = Duration::from_secs(15);

/// Pace of scrapes while waiting for the pool gauges (a scrape costs the candidate little).
pub const SCRAPE_INTERVAL: Duration = Duration::from_millis(500);

/// How long a candidate may take to poll a remote log-level endpoint a given number of times at
/// a 1 s interval: boot plus those intervals takes a few seconds; ten allows a loaded machine.
pub const REMOTE_LEVEL_POLLS: Duration = Duration::from_secs(10);

/// How long the log level may take to follow the remote endpoint's answer. The docs say it is
/// picked up at the fetch interval (1 s in the scenario); ten intervals is generous.
pub const LEVEL_FOLLOWS: Duration = Duration::from_secs(10);

/// Pace of log-endpoint requests while waiting for the level to change: a few per 1 s interval.
pub const LEVEL_PROBE_PACE: Duration = Duration::from_millis(250);

/// How long a candidate given a zero or negative fetch interval is watched for an exit. The first
/// fetch happens as the app is created, so a crash after it comes within milliseconds.
pub const CRASH_WATCH: Duration = Duration::from_secs(3);

/// How long one CLI command may take. A migrate command against a local database finishes in
/// well under a second; thirty seconds leaves room for a loaded 2-core machine and for the
/// Postgres dialect probe's connection retries without letting a hung CLI stall the run.
pub const CLI_RUN: Duration = Duration::from_secs(30);

/// How long the CLI may take to reach the statement that sleeps holding the migration lock
/// (connect, dialect, lock, table): well under a second normally.
pub const CLI_LOCK_TAKEN: Duration = Duration::from_secs(15);
