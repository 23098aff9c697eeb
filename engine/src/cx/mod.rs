//! The scenario context: everything a clause's scenario may touch, and the evidence it leaves.
//!
//! A scenario never spawns a process, opens a database or sends a request except through [`Cx`],
//! and that is the point: each of those is recorded as it happens (launch with redacted env,
//! output, exit; HTTP exchange; named observation), so a verdict always carries what led to it,
//! even when the scenario stopped half-way. Services come from the run's [`Services`], so one
//! Postgres server serves every scenario while each scenario gets its own database.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use harness::candidate::{Build, Candidate, Variant};
use harness::evidence::{Evidence, LaunchEvidence, OUTPUT_TAIL_LINES};
use harness::output::Output;
use harness::probe::{Exchange, Http, Outcome};
use harness::process::{Launch, LaunchRecord};
use harness::redact;
use harness::running::{Exit, Running, Signal};
use harness::service::collector::CollectorMode;
use harness::service::otlp::OtlpSink;
use harness::service::postgres::Database;
use harness::service::proxy::FaultProxy;
use harness::service::sqlite::SqliteFile;
use harness::verdict::Failure;
use harness::workdir::Workdir;
use harness::{ports, timeouts};

use crate::clause::{Knob, Needs};
use crate::profile::{DbTarget, Framework, Profile};
use crate::services::Services;

mod builds;

/// How many times a boot is retried when the port the harness picked was taken meanwhile.
const PORT_RACE_RETRIES: usize = 3;

/// A candidate ready to run: its directory, its built executable, its framework.
#[derive(Debug)]
pub struct Target {
    /// The candidate directory and manifest.
    pub candidate: Candidate,
    /// The executable.
    pub build: Build,
    /// The variant it was built as (empty for a reference candidate, a mutant's overlay for a
    /// mutant); every other variant a scenario builds goes on top of it.
    pub variant: Variant,
    /// The framework its manifest claims.
    pub framework: Framework,
}

impl Target {
    /// The framework's profile.
    pub fn profile(&self) -> &'static Profile {
        self.framework.profile()
    }
}

/// Which database an app gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    /// A fresh SQLite file.
    Sqlite,
    /// A fresh Postgres database, reached through a fault proxy.
    Postgres,
}

impl Db {
    /// Both databases, for clauses graded on each.
    pub const BOTH: [Db; 2] = [Db::Sqlite, Db::Postgres];

    /// Lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            Db::Sqlite => "sqlite",
            Db::Postgres => "postgres",
        }
    }
}

/// A database attached to a scenario.
#[derive(Debug)]
pub enum Attached {
    /// A SQLite file.
    Sqlite(SqliteFile),
    /// A Postgres database and the proxy the candidate reaches it through.
    Postgres {
        /// The database.
        db: Database,
        /// The proxy between candidate and Postgres (cut it to take the database away).
        proxy: FaultProxy,
    },
}

impl Attached {
    /// How the candidate should be pointed at it.
    pub fn target(&self) -> DbTarget {
        match self {
            Attached::Sqlite(file) => DbTarget::Sqlite {
                path: file.path().display().to_string(),
            },
            Attached::Postgres { db, proxy } => DbTarget::Postgres {
                host: proxy.addr().ip().to_string(),
                port: proxy.addr().port(),
                user: db.user.clone(),
                password: db.password().to_string(),
                name: db.name.clone(),
            },
        }
    }

    /// The fault proxy, for Postgres.
    pub fn proxy(&self) -> Option<&FaultProxy> {
        match self {
            Attached::Postgres { proxy, .. } => Some(proxy),
            Attached::Sqlite(_) => None,
        }
    }
}

/// What to launch: the environment (starting from the profile's), the HTTP port the harness
/// chose, and the empty working directory.
#[derive(Debug)]
pub struct Spec {
    /// The complete environment of the candidate.
    pub env: BTreeMap<String, String>,
    /// Arguments after the program name.
    pub args: Vec<String>,
    /// The port the harness put in the profile's port variable, if it did.
    pub port: Option<u16>,
    /// The working directory (write files into it before starting).
    pub workdir: Workdir,
}

impl Spec {
    /// Set a variable.
    pub fn set(&mut self, key: &str, value: impl Into<String>) -> &mut Self {
        self.env.insert(key.to_string(), value.into());
        self
    }

    /// Remove a variable.
    pub fn unset(&mut self, key: &str) -> &mut Self {
        self.env.remove(key);
        self
    }
}

/// A started candidate.
#[derive(Debug)]
pub struct App {
    /// The process.
    pub running: Running,
    /// The HTTP port it was told to use (or was found listening on).
    pub port: Option<u16>,
    index: usize,
}

impl App {
    /// Loopback address of its HTTP port.
    pub fn addr(&self) -> Option<SocketAddr> {
        self.port.map(|p| SocketAddr::from(([127, 0, 0, 1], p)))
    }
}

struct Tracked {
    record: LaunchRecord,
    output: Output,
    exit: Option<Exit>,
}

/// The context one scenario runs in.
pub struct Cx {
    target: Arc<Target>,
    services: Arc<Services>,
    /// The knobs the clause declared (only these may be read with [`Cx::knob`]).
    knobs: &'static [Knob],
    http: Http,
    evidence: Evidence,
    launches: Vec<Tracked>,
}

impl Cx {
    /// A context for one scenario on `target`, of a clause that needs `needs`.
    pub fn new(target: Arc<Target>, services: Arc<Services>, needs: &Needs) -> Result<Cx, Failure> {
        let http = Http::new()?;
        Ok(Cx {
            target,
            services,
            knobs: needs.knobs,
            http,
            evidence: Evidence::default(),
            launches: Vec::new(),
        })
    }

    /// The value of `knob` in `candidate.toml`. The engine runs a clause only when every knob
    /// it declares is set, so this fails only for a knob the clause reads without declaring it
    /// (a catalogue bug, reported as a harness error that names it).
    pub fn knob(&self, knob: Knob) -> Result<String, Failure> {
        if !self.knobs.contains(&knob) {
            return Err(Failure::harness(format!(
                "the scenario reads the knob `{}` without declaring it in its clause's needs",
                knob.key()
            )));
        }
        self.target
            .candidate
            .manifest
            .knobs
            .get(knob)
            .map(str::to_string)
            .ok_or_else(|| Failure::harness(format!("candidate.toml has no `{}` knob", knob.key())))
    }

    /// The value of `knob` if `candidate.toml` sets it: for a knob that refines a scenario
    /// (a shortcut, an extra observation) but that the clause can be graded without.
    pub fn optional_knob(&self, knob: Knob) -> Option<String> {
        self.target.candidate.manifest.knobs.get(knob).map(str::to_string)
    }

    /// The candidate's framework profile.
    pub fn profile(&self) -> &'static Profile {
        self.target.profile()
    }

    /// The candidate.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// The run's services.
    pub fn services(&self) -> &Services {
        &self.services
    }

    /// Record a named observation.
    pub fn note(&mut self, key: impl Into<String>, value: impl std::fmt::Display) {
        self.evidence.note(key, value);
    }

    /// Record an observation that is one sample of a race the candidate really has, so that
    /// `conform diff` of two runs of the same build reports it apart instead of as a behaviour
    /// change. Example: `cx.note_sample(format!("run {run}"), outcome)` for each run of a
    /// repeated shutdown whose final log line may or may not make it out.
    pub fn note_sample(&mut self, key: impl Into<String>, value: impl std::fmt::Display) {
        self.evidence.note_sample(key, value);
    }

    /// A fresh OTLP sink for this scenario ([`Services::otlp`]): the receiver, behind the run's
    /// collector if it has one (then recorded in the evidence).
    pub async fn otlp(&mut self) -> Result<OtlpSink, Failure> {
        let sink = self.services.otlp().await?;
        if let Some(path) = sink.path() {
            self.note("otlp path", path);
        }
        Ok(sink)
    }

    /// A fresh OTLP sink with no collector even in a `--collector real` run, for a clause that
    /// grades the candidate's own export request; `why` is recorded when a collector was bypassed.
    pub async fn otlp_direct(&mut self, why: &str) -> Result<OtlpSink, Failure> {
        if self.services.collector() != CollectorMode::None {
            self.note(
                "otlp path",
                format!("straight to the harness receiver, collector bypassed: {why}"),
            );
        }
        self.services.otlp_direct().await
    }

    /// A fresh database of the given kind.
    pub async fn database(&mut self, db: Db) -> Result<Attached, Failure> {
        match db {
            Db::Sqlite => Ok(Attached::Sqlite(SqliteFile::fresh()?)),
            Db::Postgres => {
                let server = self.services.postgres().await?;
                let database = server.fresh_database().await?;
                redact::register_secret(database.password());
                let proxy = FaultProxy::start(server.addr()).await?;
                Ok(Attached::Postgres { db: database, proxy })
            }
        }
    }

    /// A launch spec: the profile's base environment, `db`'s variables, and free ports in the
    /// profile's port variables (HTTP, and metrics where the framework has one).
    pub fn spec(&mut self, db: Option<&Attached>) -> Result<Spec, Failure> {
        let profile = self.profile();
        let mut env: BTreeMap<String, String> = profile
            .base_env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        if let Some(db) = db {
            env.extend(profile.db_env(&db.target()));
        }
        let mut free = ports::free_ports(2)?.into_iter();
        let port = free.next();
        if let Some(p) = port {
            env.insert(profile.port_env.to_string(), p.to_string());
        }
        if let (Some(var), Some(p)) = (profile.metrics_port_env, free.next()) {
            env.insert(var.to_string(), p.to_string());
        }
        if let Some(var) = &self.target.candidate.manifest.knobs.jwt_secret_env {
            // A production deployment sets its JWT secret; clauses about a missing secret
            // remove it on purpose.
            env.insert(var.clone(), self.services.jwt_secret().to_string());
        }
        let workdir = Workdir::new(&self.target.candidate.manifest.name)?;
        for shipped in &self.target.candidate.manifest.ship {
            let from = self.target.candidate.dir.join(shipped);
            let to = workdir.cwd().join(shipped);
            if from.is_dir() {
                harness::workdir::copy_tree(&from, &to)?;
            } else {
                std::fs::copy(&from, &to).map_err(|e| {
                    Failure::harness(format!("shipping {} into the working directory: {e}", from.display()))
                })?;
            }
        }
        Ok(Spec {
            env,
            args: Vec::new(),
            port,
            workdir,
        })
    }

    /// Start the candidate as `spec` says. Does not wait for anything.
    pub fn start(&mut self, spec: Spec) -> Result<App, Failure> {
        let binary = self.target.build.binary.clone();
        self.start_program(&binary, spec)
    }

    /// Start a candidate on `db` with free ports and wait until its liveness probe answers 200,
    /// retrying with fresh ports if the port the harness picked was taken by someone else.
    pub async fn boot(&mut self, db: Option<&Attached>) -> Result<App, Failure> {
        self.boot_with(db, |_| Ok(())).await
    }

    /// Like [`Cx::boot`], with `adjust` applied to the spec before starting.
    pub async fn boot_with(
        &mut self,
        db: Option<&Attached>,
        adjust: impl Fn(&mut Spec) -> Result<(), Failure>,
    ) -> Result<App, Failure> {
        let binary = self.target.build.binary.clone();
        self.boot_program(&binary, db, adjust).await
    }

    /// Start `program` with fresh ports until it is live (see [`Cx::boot`]).
    async fn boot_program(
        &mut self,
        program: &std::path::Path,
        db: Option<&Attached>,
        adjust: impl Fn(&mut Spec) -> Result<(), Failure>,
    ) -> Result<App, Failure> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut spec = self.spec(db)?;
            adjust(&mut spec)?;
            let mut app = self.start_program(program, spec)?;
            match self.wait_live(&mut app).await {
                Ok(()) => return Ok(app),
                Err(failure) if attempt <= PORT_RACE_RETRIES && lost_port_race(&app, self.profile()) => {
                    // The harness's own race with other processes on the machine: a sample.
                    self.note_sample(
                        "retry",
                        format!("port {:?} was taken before the candidate bound it", app.port),
                    );
                    drop(failure);
                }
                Err(failure) => return Err(failure),
            }
        }
    }

    /// Wait until the app is live as its profile defines it ([`Profile::live`]: the liveness probe
    /// answers 200 on loopback, from the candidate itself). A candidate that exits or
    /// never answers has broken the basic promise of serving: that is a violation with its exit
    /// and output as evidence.
    pub async fn wait_live(&mut self, app: &mut App) -> Result<(), Failure> {
        let Some(addr) = app.addr() else {
            return Err(Failure::harness("wait_live needs the app's port"));
        };
        let path = self.profile().liveness;
        let waited = app.running.wait_ready(&self.profile().live(addr)).await;
        match waited {
            Ok(reached) => {
                self.evidence.exchanges.extend(reached.exchanges);
                Ok(())
            }
            Err(err) => {
                app.running.drain_output().await;
                self.track_exit(app);
                Err(Failure::violation(
                    format!("the candidate boots and answers 200 on {path}"),
                    format!("{err}"),
                ))
            }
        }
    }

    fn track_exit(&mut self, app: &mut App) {
        if let Ok(Some(exit)) = app.running.try_exit() {
            self.launches[app.index].exit = Some(exit);
        }
    }

    /// Send `signal` and give the app `grace` to exit; record and return how it ended.
    pub async fn stop(&mut self, app: &mut App, signal: Signal, grace: Duration) -> Result<Exit, Failure> {
        let exit = app.running.shutdown(signal, grace).await?;
        self.launches[app.index].exit = Some(exit);
        Ok(exit)
    }

    /// Kill the app's process group and wait until it is gone (its ports are free again).
    pub async fn kill(&mut self, app: &mut App) -> Result<Exit, Failure> {
        self.stop(app, Signal::SIGKILL, timeouts::AFTER_KILL).await
    }

    /// Wait up to `ceiling` for the app to exit on its own; record the exit if it did.
    pub async fn wait_exit(&mut self, app: &mut App, ceiling: Duration) -> Result<Option<Exit>, Failure> {
        let exit = app.running.wait_exit(ceiling).await?;
        if exit.is_some() {
            self.launches[app.index].exit = exit;
        }
        Ok(exit)
    }

    /// `GET` a path on the app's HTTP port, recorded.
    pub async fn get(&mut self, app: &App, path: &str) -> Result<Exchange, Failure> {
        let addr = app
            .addr()
            .ok_or_else(|| Failure::harness("the app has no known port"))?;
        self.get_at(addr, path).await
    }

    /// `GET` a path at a loopback address, recorded.
    pub async fn get_at(&mut self, addr: SocketAddr, path: &str) -> Result<Exchange, Failure> {
        self.send("GET", addr, path, &[], None).await
    }

    /// Send a request, recorded.
    pub async fn send(
        &mut self,
        method: &str,
        addr: SocketAddr,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<String>,
    ) -> Result<Exchange, Failure> {
        let exchange = self.http.send(method, addr, path, headers, body).await?;
        self.evidence.exchanges.push(exchange.clone());
        Ok(exchange)
    }

    /// Keep exchanges made outside [`Cx::send`] (for example by a polling loop).
    pub fn record_exchanges(&mut self, exchanges: impl IntoIterator<Item = Exchange>) {
        self.evidence.exchanges.extend(exchanges);
    }

    /// Expect a complete response with `status`, or fail with the exchange as the actual.
    pub fn expect_status(&self, what: &str, exchange: &Exchange, status: u16) -> Result<(), Failure> {
        match exchange.outcome {
            Outcome::Response { status: got, .. } if got == status => Ok(()),
            _ => Err(Failure::violation(format!("{what}: HTTP {status}"), exchange.summary())),
        }
    }

    /// The evidence gathered, with the launches' exits and output tails.
    pub fn finish(self) -> Evidence {
        let mut evidence = self.evidence;
        for tracked in self.launches {
            evidence.launches.push(LaunchEvidence {
                launch: tracked.record,
                exit: tracked.exit,
                output_tail: tracked
                    .output
                    .tail(OUTPUT_TAIL_LINES)
                    .iter()
                    .map(|l| redact::text(l))
                    .collect(),
            });
        }
        evidence
    }

    /// Loopback address of the app's metrics endpoint: the port the launch put in the profile's
    /// metrics port variable, or the app's HTTP port when the framework serves metrics there.
    pub fn metrics_addr(&self, app: &App) -> Result<SocketAddr, Failure> {
        let Some(var) = self.profile().metrics_port_env else {
            return app.addr().ok_or_else(|| Failure::harness("the app has no known port"));
        };
        let port = app
            .running
            .record()
            .env
            .get(var)
            .and_then(|v| v.parse::<u16>().ok())
            .filter(|p| *p != 0)
            .ok_or_else(|| Failure::harness(format!("the launch set no usable {var}")))?;
        Ok(SocketAddr::from(([127, 0, 0, 1], port)))
    }

    /// Scrape a Prometheus endpoint at a loopback address, recorded; the whole body is parsed
    /// (a recorded exchange keeps only the start of it).
    pub async fn scrape(
        &mut self,
        addr: SocketAddr,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Result<harness::prometheus::Scrape, Failure> {
        let scrape = harness::prometheus::scrape(addr, path, headers).await?;
        self.evidence.exchanges.push(scrape.exchange.clone());
        Ok(scrape)
    }

    /// Start `program` (for example a copy of the candidate's executable placed in the working
    /// directory) as `spec` says, recorded like [`Cx::start`]. Does not wait for anything.
    pub fn start_program(&mut self, program: &std::path::Path, spec: Spec) -> Result<App, Failure> {
        let mut launch = Launch::new(program, spec.workdir.cwd());
        launch.env = spec.env;
        launch.args = spec.args;
        let running = Running::spawn(&launch, spec.workdir)?;
        self.launches.push(Tracked {
            record: running.record().clone(),
            output: running.output().clone(),
            exit: None,
        });
        Ok(App {
            running,
            port: spec.port,
            index: self.launches.len() - 1,
        })
    }
}

/// True when the app exited saying a port it was told to bind was taken (the harness's port
/// race, not the candidate's fault), in its framework's words.
pub fn lost_port_race(app: &App, profile: &Profile) -> bool {
    app.running
        .output()
        .find(|l| l.text.contains(profile.port_taken_log))
        .is_some()
}
