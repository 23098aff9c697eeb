//! Framework profiles: how each framework's generic knobs are spelled.
//!
//! A drain, a port check or a probe check is the same scenario for every framework; what differs
//! is which variable sets the port (`PORT` vs `HTTP_PORT`), where the probes live (`/healthz` vs
//! `/.well-known/alive`), how a database is chosen (`DATABASE_URL` vs `DB_DIALECT` + `DB_*`) and
//! what must always be set for a hermetic run. Scenarios read those from the profile, so a generic
//! scenario is written once and shared.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use harness::ready::{Condition, Ready};
use harness::service::otlp::{OtlpSink, Transport};
use harness::timeouts;
use serde::Serialize;

/// The frameworks conform knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Framework {
    /// `github.com/DonaldMurillo/gofastr`.
    GoFastr,
    /// `gofr.dev`.
    GoFr,
}

impl Framework {
    /// Lowercase name, as in manifests and reports.
    pub fn name(self) -> &'static str {
        self.profile().name
    }

    /// The profile of this framework.
    pub fn profile(self) -> &'static Profile {
        match self {
            Framework::GoFastr => &GOFASTR,
            Framework::GoFr => &GOFR,
        }
    }

    /// Every framework, in catalogue order.
    pub const ALL: [Framework; 2] = [Framework::GoFastr, Framework::GoFr];

    /// The framework a manifest's `profile` names.
    pub fn from_profile_name(name: &str) -> Option<Framework> {
        Framework::ALL.into_iter().find(|f| f.name() == name)
    }
}

/// Where a candidate's database is, as the harness hands it over.
#[derive(Debug, Clone)]
pub enum DbTarget {
    /// A SQLite file (absolute path).
    Sqlite {
        /// The file.
        path: String,
    },
    /// A Postgres database reachable at `host:port`.
    Postgres {
        /// Host (always loopback).
        host: String,
        /// Port (the fault proxy's, so the scenario can cut it).
        port: u16,
        /// Login role.
        user: String,
        /// Its password (registered as a secret).
        password: String,
        /// Database name.
        name: String,
    },
}

/// The series a framework's metrics use to count HTTP requests.
#[derive(Debug)]
pub struct RequestMetric {
    /// The sample counting requests: a counter, or a histogram's `_count`.
    pub sample: &'static str,
    /// The label carrying the matched route.
    pub route_label: &'static str,
    /// How a route template appears in that label; `{method}` and `{route}` are replaced.
    pub route_format: &'static str,
}

impl RequestMetric {
    /// The label value for a request with `method` on the route template `route`.
    pub fn route_value(&self, method: &str, route: &str) -> String {
        self.route_format.replace("{method}", method).replace("{route}", route)
    }
}

/// One framework's spelling of the generic knobs.
#[derive(Debug)]
pub struct Profile {
    /// The framework.
    pub framework: Framework,
    /// Lowercase name (`gofastr`).
    pub name: &'static str,
    /// Display name (`GoFastr`).
    pub display: &'static str,
    /// Prefix of the framework's clause IDs (`GF`).
    pub clause_prefix: &'static str,
    /// The variable that sets the HTTP listen port.
    pub port_env: &'static str,
    /// The documented default HTTP port.
    pub default_port: u16,
    /// Liveness probe path.
    pub liveness: &'static str,
    /// Readiness probe path.
    pub readiness: &'static str,
    /// The variable that sets a separate metrics port, if the framework has one.
    pub metrics_port_env: Option<&'static str>,
    /// The documented default metrics port.
    pub default_metrics_port: Option<u16>,
    /// Path of the metrics endpoint.
    pub metrics_path: &'static str,
    /// How the framework's own metrics count HTTP requests (the metrics scenarios read it).
    pub request_metric: RequestMetric,
    /// Variables always set for a hermetic run (each with the reason in the profile's source).
    pub base_env: &'static [(&'static str, &'static str)],
    /// The variable the framework itself reads for its shutdown deadline (a Go duration), if it
    /// has one; a framework without one is reached through the candidate's `shutdown_timeout_env`
    /// knob instead.
    pub shutdown_timeout_env: Option<&'static str>,
    /// The documented default shutdown deadline.
    pub default_shutdown_timeout: Duration,
    /// Text of the log line the framework writes when a shutdown signal starts the drain.
    pub shutdown_log: &'static str,
    /// Text of the line the framework writes when a port it was told to bind is taken: a boot
    /// that ends with it lost the harness's port race (another process took the free port in
    /// between) and is retried with fresh ports, never graded.
    pub port_taken_log: &'static str,
    /// The framework's source repository on GitHub (`owner/name`), where its docs live too.
    pub repository: &'static str,
    /// Where a documentation page (as the catalogue names it) lives in that repository; `{page}`
    /// is replaced. Source files (`*.go`) are linked as they are.
    pub docs_path: &'static str,
}

impl Profile {
    /// What "live" means for this framework, as data: `GET` of its liveness path on `addr` answers
    /// 200, from the candidate itself (not a neighbour that took the port), within the boot
    /// ceiling ([`timeouts::boot`]).
    pub fn live(&self, addr: SocketAddr) -> Ready {
        Ready::new(Condition::answers(addr, self.liveness, 200), timeouts::boot())
    }

    /// A link to the documentation page `page` (as a clause's [`DocRef`](crate::clause::DocRef)
    /// names it) at the framework version `version`, pinned to that tag so the promise graded is
    /// the one that version made. A page list (`a.md, b.md` or `a; b`) links its first page.
    pub fn doc_url(&self, version: &str, page: &str) -> String {
        let page = page.split([',', ';']).next().unwrap_or(page).trim();
        let path = if page.ends_with(".go") {
            page.to_string()
        } else {
            self.docs_path.replace("{page}", page)
        };
        format!("https://github.com/{}/blob/{version}/{path}", self.repository)
    }

    /// The variables that point the candidate at `db`.
    pub fn db_env(&self, db: &DbTarget) -> BTreeMap<String, String> {
        let mut env = BTreeMap::new();
        let mut set = |k: &str, v: String| {
            env.insert(k.to_string(), v);
        };
        match (self.framework, db) {
            (Framework::GoFastr, DbTarget::Sqlite { path }) => set("DATABASE_URL", format!("file:{path}")),
            (
                Framework::GoFastr,
                DbTarget::Postgres {
                    host,
                    port,
                    user,
                    password,
                    name,
                },
            ) => set(
                "DATABASE_URL",
                format!("postgres://{user}:{password}@{host}:{port}/{name}?sslmode=disable"),
            ),
            (Framework::GoFr, DbTarget::Sqlite { path }) => {
                set("DB_DIALECT", "sqlite".into());
                set("DB_NAME", path.clone());
            }
            (
                Framework::GoFr,
                DbTarget::Postgres {
                    host,
                    port,
                    user,
                    password,
                    name,
                },
            ) => {
                set("DB_DIALECT", "postgres".into());
                set("DB_HOST", host.clone());
                set("DB_PORT", port.to_string());
                set("DB_USER", user.clone());
                set("DB_PASSWORD", password.clone());
                set("DB_NAME", name.clone());
                set("DB_SSL_MODE", "disable".into());
            }
        }
        env
    }
}

impl Profile {
    /// The variables that point a candidate's span exporter at `sink`'s front door (the collector
    /// when the run has one, else the receiver) over `transport`, or
    /// `None` when the framework cannot export that way. GoFastr has no OTLP configuration of its
    /// own (observability.md › Exporting traces): its candidate installs the OTel SDK exporter,
    /// which reads `OTEL_EXPORTER_OTLP_ENDPOINT`, and picks gRPC when `OTEL_EXPORTER_OTLP_PROTOCOL`
    /// says `grpc` (HTTP/protobuf otherwise). GoFr exports OTLP over gRPC only, configured by
    /// `TRACE_EXPORTER=otlp` and a bare `host:port` in `TRACER_URL` (production-tracing ›
    /// Configuration).
    pub fn trace_env(&self, sink: &OtlpSink, transport: Transport) -> Option<Vec<(&'static str, String)>> {
        match (self.framework, transport) {
            (Framework::GoFastr, Transport::Grpc) => Some(vec![
                ("OTEL_EXPORTER_OTLP_ENDPOINT", sink.grpc_endpoint()),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", Transport::Grpc.protocol().to_string()),
            ]),
            (Framework::GoFastr, Transport::HttpProtobuf) => Some(vec![
                ("OTEL_EXPORTER_OTLP_ENDPOINT", sink.http_endpoint()),
                (
                    "OTEL_EXPORTER_OTLP_PROTOCOL",
                    Transport::HttpProtobuf.protocol().to_string(),
                ),
            ]),
            (Framework::GoFr, Transport::Grpc) => Some(vec![
                ("TRACE_EXPORTER", "otlp".to_string()),
                ("TRACER_URL", sink.grpc_addr().to_string()),
            ]),
            _ => None,
        }
    }
}

/// GoFastr: `PORT` (normalised by `App.Start`), `DATABASE_URL` read by the scaffold,
/// `/healthz` and `/readyz` on the app port.
pub static GOFASTR: Profile = Profile {
    framework: Framework::GoFastr,
    name: "gofastr",
    display: "GoFastr",
    clause_prefix: "GF",
    port_env: "PORT",
    // deploy.md › The single-binary model: "./app  # listens on :8080 (or $PORT)".
    default_port: 8080,
    liveness: "/healthz",
    readiness: "/readyz",
    metrics_port_env: None,
    default_metrics_port: None,
    metrics_path: "/metrics",
    // observability.md › What is recorded: `http_requests_total{method,route,status}`, `route`
    // being the ServeMux pattern (`GET /api/v1/posts/{id}`).
    request_metric: RequestMetric {
        sample: "http_requests_total",
        route_label: "route",
        route_format: "{method} {route}",
    },
    base_env: &[
        // App.Start remaps the port inside a linked git worktree (isolation.md); the harness
        // runs from temp dirs, and this makes that explicit. GF-PORT-7 removes it on purpose.
        ("GOFASTR_ISOLATION", "off"),
        // Nothing a candidate sends to a host that is not loopback leaves the machine.
        ("HTTPS_PROXY", LOOPBACK_ONLY_PROXY),
        ("HTTP_PROXY", LOOPBACK_ONLY_PROXY),
    ],
    // AppConfig.ShutdownTimeout is code, not env: the candidate maps its knob onto it.
    shutdown_timeout_env: None,
    // deploy.md › TLS & graceful shutdown: "AppConfig.ShutdownTimeout (default 15s) caps it".
    default_shutdown_timeout: Duration::from_secs(15),
    shutdown_log: "shutdown signal received; draining",
    // net.Listen's error, returned by Start.
    port_taken_log: "address already in use",
    repository: "DonaldMurillo/gofastr",
    docs_path: "framework/docs/content/{page}",
};

/// A proxy on a closed loopback port (9, discard, which nothing here serves): every request a Go
/// candidate makes to a host that is not loopback fails there, so nothing leaves the machine.
const LOOPBACK_ONLY_PROXY: &str = "http://127.0.0.1:9";

/// GoFr: `HTTP_PORT` and `METRICS_PORT`, `DB_DIALECT` + `DB_*`, `/.well-known/*` probes,
/// `configs/` read from the working directory.
pub static GOFR: Profile = Profile {
    framework: Framework::GoFr,
    name: "gofr",
    display: "GoFr",
    clause_prefix: "GR",
    port_env: "HTTP_PORT",
    // configs reference › App: HTTP_PORT default 8000.
    default_port: 8000,
    liveness: "/.well-known/alive",
    readiness: "/.well-known/health",
    metrics_port_env: Some("METRICS_PORT"),
    // configs reference › App: METRICS_PORT default 2121.
    default_metrics_port: Some(2121),
    metrics_path: "/metrics",
    // production-prometheus-kubernetes › What /metrics looks like: the `app_http_response`
    // histogram, labels `path`, `method`, `status`; its `_count` counts requests.
    request_metric: RequestMetric {
        sample: "app_http_response_count",
        route_label: "path",
        route_format: "{route}",
    },
    base_env: &[
        // Without it GoFr posts to gofr.dev at boot and at shutdown, and the shutdown ping runs
        // before the drain (catalogue D-6). conform never sends traffic off the machine.
        ("GOFR_TELEMETRY", "false"),
        // Should a candidate turn telemetry back on (a mutant that stops reading configs/ does),
        // its ping to gofr.dev goes to a closed loopback port instead of the network: Go's
        // net/http sends non-loopback requests through these proxies and never loopback ones,
        // so the harness's own receivers and dependencies are reached directly.
        ("HTTPS_PROXY", LOOPBACK_ONLY_PROXY),
        ("HTTP_PROXY", LOOPBACK_ONLY_PROXY),
        // Span export every 200 ms instead of 5 s, so tracing scenarios wait less.
        ("OTEL_BSP_SCHEDULE_DELAY", "200"),
    ],
    // guides/graceful-shutdown FAQ: "configurable via the SHUTDOWN_GRACE_PERIOD env var".
    shutdown_timeout_env: Some("SHUTDOWN_GRACE_PERIOD"),
    // guides/graceful-shutdown FAQ: "What is the default SHUTDOWN_GRACE_PERIOD? 30 seconds."
    default_shutdown_timeout: Duration::from_secs(30),
    // guides/graceful-shutdown › Verification: "Shutting down server with a timeout of 30s".
    shutdown_log: "Shutting down server with a timeout of",
    // pkg/gofr/factory.go checks both ports before serving: "http port N is blocked or
    // unreachable", "metrics port N is blocked or unreachable" (FATAL, exit 1; GR-PORT-3).
    port_taken_log: "is blocked or unreachable",
    repository: "gofr-dev/gofr",
    docs_path: "docs/{page}/page.md",
};
