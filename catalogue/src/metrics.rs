//! MET: the Prometheus metrics endpoint of both frameworks.
//!
//! What every framework promises alike (a valid text exposition, counters that only grow,
//! consistent histograms, no credentials needed) is one shared scenario, [`valid_exposition`],
//! which reads the endpoint's address, path and request counter from the framework profile:
//! GoFastr serves `/metrics` on the app port, GoFr on `METRICS_PORT`. It drives traffic first
//! (liveness and a route with a path parameter) so the families have samples, scrapes twice with
//! more traffic in between, and parses both scrapes with [`harness::prometheus`], which reports
//! every format violation rather than the first. Framework-specific promises (GoFastr's bucket
//! bounds and method collapsing, GoFr's default families, SQL and custom metrics) are in
//! `metrics/gofastr.rs` and `metrics/gofr.rs`; the lists they grade are tables in those files.

mod gofastr;
mod gofr;

use std::net::SocketAddr;

use harness::prometheus::{self, Exposition, Family, Kind, Scrape};
use harness::verdict::{Failure, Level};

use engine::check;
use engine::clause::{Clause, DocRef, Knob, Needs, Service};
use engine::cx::{App, Attached, Cx, Db};

/// Requests to the parameterised route before the first scrape, so its series exist.
const REQUESTS_BEFORE: usize = 2;

/// Requests to the parameterised route between the two scrapes: its request counter must grow
/// by at least this much.
const REQUESTS_BETWEEN: usize = 3;

/// The value the scenarios put in a route's path parameter.
const PARAM_VALUE: &str = "42";

/// Format violations quoted in a failure (the rest are counted).
const VIOLATIONS_SHOWN: usize = 10;

/// The MET clauses of both catalogues.
pub fn clauses() -> Vec<Clause> {
    vec![
        Clause {
            id: "GF-MET-1",
            level: Level::Must,
            promise: "WithMetrics() mounts an unauthenticated /metrics in Prometheus text format 0.0.4: http_requests_total{method,route,status} and http_request_duration_ms buckets 1..1000 ms, route = ServeMux pattern, unknown methods as `other`.",
            doc: DocRef::at("observability.md", "Metrics (Prometheus)"),
            method: "Drive liveness and GET /items/{id}; scrape twice with more traffic between; parse (HELP/TYPE, grouping, duplicates, histogram invariants), check Content-Type, counter monotonicity, the route template, bucket bounds, a non-standard method; scrape without credentials while a protected route answers 401.",
            needs: Needs {
                knobs: &[Knob::ParamEndpoint, Knob::ProtectedEndpoint],
                ..Needs::NONE
            },
            check: check!(gofastr::exposition),
        },
        Clause {
            id: "GF-MET-2",
            level: Level::Must,
            promise: "With WithDB + WithMetrics, /metrics carries the db_pool_* gauges and counters.",
            doc: DocRef::at("observability.md", "What is recorded"),
            method: "Boot with the candidate's app.Metrics() call (types and values recorded), then without it (only WithDB + WithMetrics, as the table says); scrape each and look for the five db_pool_* families with their documented types.",
            needs: Needs::NONE,
            check: check!(gofastr::db_pool),
        },
        Clause {
            id: "GF-MET-3",
            level: Level::Must,
            promise: "Metrics are opt-in (no /metrics without WithMetrics), and WithMetrics with WithoutDefaultMiddleware panics.",
            doc: DocRef::at("observability.md", "Custom middleware chain"),
            method: "Boot without WithMetrics and GET /metrics (expect 404); start with WithMetrics + WithoutDefaultMiddleware and expect the process to panic at NewApp, naming both options, before it listens.",
            needs: Needs::NONE,
            check: check!(gofastr::opt_in),
        },
        Clause {
            id: "GR-MET-1",
            level: Level::Must,
            promise: "GET :METRICS_PORT/metrics answers valid Prometheus text without auth (app auth does not apply); pprof is served at /debug/pprof/ on the same port.",
            doc: DocRef::at(
                "quick-start/observability",
                "Metrics; guides/production-prometheus-kubernetes; advanced-guide/debugging",
            ),
            method: "Drive liveness and GET /items/{id}; scrape METRICS_PORT twice with more traffic between; parse (HELP/TYPE, grouping, duplicates, histogram invariants), check Content-Type and counter monotonicity; boot with basic auth and scrape without credentials; GET /debug/pprof/.",
            needs: Needs {
                knobs: &[Knob::ParamEndpoint, Knob::ProtectedEndpoint],
                ..Needs::NONE
            },
            check: check!(gofr::exposition),
        },
        Clause {
            id: "GR-MET-2",
            level: Level::Must,
            promise: "The documented default metric families are published from server start, each with its documented type.",
            doc: DocRef::at("quick-start/observability", "Default Metrics"),
            method: "Boot on SQLite, scrape at boot, drive HTTP and SQL traffic, scrape again; every family of the Default Metrics table (GraphQL and cron families aside: the candidate registers neither) must have a # TYPE line of its documented type.",
            needs: Needs {
                knobs: &[Knob::ParamEndpoint],
                ..Needs::NONE
            },
            check: check!(gofr::default_families),
        },
        Clause {
            id: "GR-MET-3",
            level: Level::Must,
            promise: "app_http_response is a histogram in seconds labelled path (the route template), method and status.",
            doc: DocRef::at("guides/production-prometheus-kubernetes", "What /metrics looks like"),
            method: "GET /items/42 twice; scrape; expect app_http_response series with path=\"/items/{id}\", method GET and the status served, none with the raw path, and the documented buckets 0.005 and 0.01.",
            needs: Needs {
                knobs: &[Knob::ParamEndpoint],
                ..Needs::NONE
            },
            check: check!(gofr::http_histogram),
        },
        Clause {
            id: "GR-MET-4",
            level: Level::Info,
            promise: "Metric names get no `_total` suffix, every series carries otel_scope_* labels, and there is no target_info.",
            doc: DocRef::at(
                "pkg/gofr/metrics/exporters/exporter.go",
                "NoTranslation, WithoutTargetInfo",
            ),
            method: "Touch the custom counter, scrape; record the counter's sample name, the otel_scope_* labels, target_info and the default-registry families.",
            needs: Needs {
                knobs: &[Knob::CustomMetricsEndpoint],
                ..Needs::NONE
            },
            check: check!(gofr::naming),
        },
        Clause {
            id: "GR-MET-5",
            level: Level::Must,
            promise: "SQL queries are recorded in app_sql_stats (ms, labels hostname, database, type) and the pool in app_sql_open_connections / app_sql_inUse_connections gauges.",
            doc: DocRef::at("guides/connection-pooling", "SQL connection pool"),
            method: "On SQLite and on Postgres: scrape, run the parameterised route (a SELECT) twice, poll scrapes until the pool gauges show an open connection; the SELECT series must have grown by two; in-use must not exceed open.",
            needs: Needs {
                services: &[Service::Postgres],
                knobs: &[Knob::ParamEndpoint],
                ..Needs::NONE
            },
            check: check!(gofr::sql_metrics),
        },
        Clause {
            id: "GR-MET-6",
            level: Level::Must,
            promise: "Custom counters, up-down counters, histograms and gauges registered on app.Metrics() are exported with the labels given when recording.",
            doc: DocRef::at(
                "advanced-guide/publishing-custom-metrics",
                "Usage; Adding Labels to Custom Metrics",
            ),
            method: "GET the candidate's custom-metrics route three times; scrape; each instrument must have its type, the label route=\"counter\" and the value three requests produce (histogram: its registered buckets, count and sum).",
            needs: Needs {
                knobs: &[Knob::CustomMetricsEndpoint],
                ..Needs::NONE
            },
            check: check!(gofr::custom_metrics),
        },
        Clause {
            id: "GR-MET-7",
            level: Level::Info,
            promise: "The runtime gauges (app_go_routines, app_sys_*, app_go_numGC, app_go_sys) are refreshed when scraped.",
            doc: DocRef::at("pkg/gofr/metrics/handler.go", "systemMetricsHandler"),
            method: "Scrape twice in a row with no other traffic; record the runtime gauges of each scrape.",
            needs: Needs::NONE,
            check: check!(gofr::runtime_gauges),
        },
    ]
}

/// What [`valid_exposition`] leaves for the framework-specific checks.
struct Scraped {
    app: App,
    addr: SocketAddr,
    /// The second scrape (after all the shared scenario's traffic).
    after: Scrape,
    /// The parameterised route as requested (`/items/42`) and as a template (`/items/{id}`).
    param_path: String,
    param_template: String,
    _db: Attached,
}

/// The knob naming the parameterised route, or a harness error.
pub(crate) fn param_template(cx: &Cx) -> Result<String, Failure> {
    cx.knob(Knob::ParamEndpoint)
}

/// Fill the template's path parameter (`/items/{id}` -> `/items/42`).
pub(crate) fn fill(template: &str) -> String {
    match (template.find('{'), template.find('}')) {
        (Some(open), Some(close)) if open < close => {
            format!("{}{PARAM_VALUE}{}", &template[..open], &template[close + 1..])
        }
        _ => template.to_string(),
    }
}

/// GET `path` `n` times on the app port; returns the last status seen.
async fn drive(cx: &mut Cx, app: &App, path: &str, n: usize) -> Result<Option<u16>, Failure> {
    let mut status = None;
    for _ in 0..n {
        status = cx.get(app, path).await?.status();
    }
    Ok(status)
}

/// The shared promise: boot, drive traffic, scrape twice, and require a valid exposition both
/// times, counters that never went back, and the request counter of the parameterised route
/// grown by the requests made between the scrapes.
async fn valid_exposition(cx: &mut Cx) -> Result<Scraped, Failure> {
    let profile = cx.profile();
    let param_template = param_template(cx)?;
    let param_path = fill(&param_template);
    let db = cx.database(Db::Sqlite).await?;
    let app = cx.boot(Some(&db)).await?;
    let addr = cx.metrics_addr(&app)?;
    drive(cx, &app, profile.liveness, 1).await?;
    drive(cx, &app, &param_path, REQUESTS_BEFORE).await?;
    let before = scrape_valid(cx, addr, "first scrape").await?;
    drive(cx, &app, &param_path, REQUESTS_BETWEEN).await?;
    let after = scrape_valid(cx, addr, "second scrape").await?;
    cx.note("families (second scrape)", after.exposition.outline());

    let regressions = prometheus::counter_regressions(&before.exposition, &after.exposition);
    if !regressions.is_empty() {
        return Err(Failure::violation(
            "no counter, histogram bucket or count decreases or disappears between two scrapes of one process",
            regressions.join("\n"),
        ));
    }
    let metric = &profile.request_metric;
    let route = metric.route_value("GET", &param_template);
    let labels = [(metric.route_label, route.as_str()), ("method", "GET")];
    let (was, now) = (
        before.exposition.total(metric.sample, &labels),
        after.exposition.total(metric.sample, &labels),
    );
    let series = prometheus::series_id(metric.sample, labels);
    cx.note("request counter", format!("{series}: {was} -> {now}"));
    if now - was < REQUESTS_BETWEEN as f64 {
        return Err(Failure::violation(
            format!("{series} grows by at least {REQUESTS_BETWEEN} after {REQUESTS_BETWEEN} requests to {param_path}"),
            format!("{was} -> {now}"),
        ));
    }
    let histogram_series: usize = after
        .exposition
        .families
        .iter()
        .filter(|f| f.kind == Kind::Histogram)
        .map(|f| f.histograms().len())
        .sum();
    if histogram_series == 0 {
        return Err(Failure::violation(
            "after HTTP traffic, at least one histogram series (request latency) to check",
            after.exposition.outline(),
        ));
    }
    cx.note("histogram series checked", histogram_series);
    Ok(Scraped {
        app,
        addr,
        after,
        param_path,
        param_template,
        _db: db,
    })
}

/// Scrape the profile's metrics path without credentials and require HTTP 200, a Prometheus text
/// Content-Type, no format violations, and HELP and TYPE for every family.
async fn scrape_valid(cx: &mut Cx, addr: SocketAddr, what: &str) -> Result<Scrape, Failure> {
    let path = cx.profile().metrics_path;
    let scrape = cx.scrape(addr, path, &[]).await?;
    cx.expect_status(
        &format!("{what}: GET {path} without credentials"),
        &scrape.exchange,
        200,
    )?;
    let content_type = scrape.exchange.header("content-type").unwrap_or("(absent)").to_string();
    cx.note(format!("{what}: Content-Type"), &content_type);
    if !is_text_format(&content_type) {
        return Err(Failure::violation(
            format!("{what}: Content-Type text/plain; version=0.0.4 (Prometheus text format)"),
            content_type,
        ));
    }
    let violations = &scrape.exposition.violations;
    if !violations.is_empty() {
        let mut shown: Vec<String> = violations
            .iter()
            .take(VIOLATIONS_SHOWN)
            .map(ToString::to_string)
            .collect();
        if violations.len() > VIOLATIONS_SHOWN {
            shown.push(format!("… and {} more", violations.len() - VIOLATIONS_SHOWN));
        }
        return Err(Failure::violation(
            format!("{what}: a valid Prometheus text exposition (format 0.0.4)"),
            shown.join("\n"),
        ));
    }
    let undocumented: Vec<String> = scrape
        .exposition
        .families
        .iter()
        .filter(|f| f.help.is_none() || !f.typed)
        .map(|f| format!("{} (HELP {}, TYPE {})", f.name, yes(f.help.is_some()), yes(f.typed)))
        .collect();
    if !undocumented.is_empty() {
        return Err(Failure::violation(
            format!("{what}: a # HELP and a # TYPE line for every family"),
            undocumented.join("\n"),
        ));
    }
    Ok(scrape)
}

fn yes(b: bool) -> &'static str {
    if b { "present" } else { "missing" }
}

/// `text/plain` with `version=0.0.4` (other parameters, such as a charset, allowed).
fn is_text_format(content_type: &str) -> bool {
    let mut parts = content_type.split(';').map(str::trim);
    parts.next().is_some_and(|m| m.eq_ignore_ascii_case("text/plain"))
        && parts.any(|p| p.replace(' ', "").eq_ignore_ascii_case("version=0.0.4"))
}

/// "Unauthenticated": with the app's auth in force (its protected endpoint answers 401 without
/// credentials), the metrics endpoint still answers a valid scrape without credentials. A
/// candidate with an auth mode knob (optional) is booted again with basic auth; otherwise auth is
/// always on.
async fn scrape_with_auth_on(cx: &mut Cx, shared: &Scraped) -> Result<(), Failure> {
    let protected = cx.knob(Knob::ProtectedEndpoint)?;
    let (app, _db) = match cx.optional_knob(Knob::AuthModeEnv) {
        Some(var) => {
            let db = cx.database(Db::Sqlite).await?;
            let app = cx
                .boot_with(Some(&db), |spec| {
                    spec.set(&var, "basic");
                    Ok(())
                })
                .await?;
            (Some(app), Some(db))
        }
        None => (None, None),
    };
    let target = app.as_ref().unwrap_or(&shared.app);
    let guarded = cx.get(target, &protected).await?;
    if guarded.status() != Some(401) {
        return Err(Failure::harness(format!(
            "cannot show that auth is in force: {protected} without credentials answered {}",
            guarded.summary()
        )));
    }
    let addr = match &app {
        Some(app) => cx.metrics_addr(app)?,
        None => shared.addr,
    };
    scrape_valid(cx, addr, "scrape with app auth in force").await?;
    Ok(())
}

/// A family that must exist with a given type.
fn expect_family<'a>(exposition: &'a Exposition, name: &str, kind: Kind) -> Result<&'a Family, Failure> {
    match exposition.family(name) {
        Some(f) if f.typed && f.kind == kind => Ok(f),
        Some(f) => Err(Failure::violation(
            format!("{name} is a {kind}"),
            format!(
                "{name} is {}",
                if f.typed { f.kind.name() } else { "untyped (no # TYPE)" }
            ),
        )),
        None => Err(Failure::violation(
            format!("a {kind} family {name}"),
            "absent".to_string(),
        )),
    }
}

/// The label names of a sample, sorted, as `a,b,c`.
fn label_names(labels: &[(String, String)]) -> String {
    let mut names: Vec<&str> = labels.iter().map(|(k, _)| k.as_str()).collect();
    names.sort_unstable();
    names.join(",")
}

/// A histogram's finite bounds as text (`1,5,10`).
fn bounds_text(bounds: &[f64]) -> String {
    bounds.iter().map(f64::to_string).collect::<Vec<_>>().join(",")
}
