//! GoFastr's metrics clauses: the shared exposition check plus what observability.md says about
//! its own families (bucket bounds, labels, method collapsing), the DB-pool families, and
//! metrics being opt-in.

use harness::prometheus::Kind;
use harness::timeouts;
use harness::verdict::Failure;

use super::{Scraped, bounds_text, expect_family, label_names, scrape_valid, scrape_with_auth_on, valid_exposition};
use engine::cx::{Cx, Db};

/// observability.md › What is recorded: "Histogram bucket boundaries (milliseconds): 1, 5, 10,
/// 50, 100, 250, 500, 1000, +Inf."
const DURATION_BOUNDS_MS: [f64; 8] = [1.0, 5.0, 10.0, 50.0, 100.0, 250.0, 500.0, 1000.0];

/// A request method outside the allow-list; observability.md: "Unknown HTTP methods are
/// collapsed to `other`".
const ODD_METHOD: &str = "CONFORMPROBE";

/// A path no route matches, to record how unmatched requests are labelled.
const UNMATCHED_PATH: &str = "/conform-no-such-route";

/// observability.md › What is recorded: the DB-pool families and their types.
const DB_POOL_FAMILIES: [(&str, Kind); 5] = [
    ("db_pool_open_connections", Kind::Gauge),
    ("db_pool_in_use_connections", Kind::Gauge),
    ("db_pool_idle_connections", Kind::Gauge),
    ("db_pool_wait_count_total", Kind::Counter),
    ("db_pool_wait_duration_seconds_total", Kind::Counter),
];

/// The candidate's toggle that skips its `app.Metrics()` call (README: D13).
const SKIP_METRICS_HANDLE: &str = "HARNESS_SKIP_METRICS_HANDLE";

/// The candidate's toggles for GF-MET-3 (README).
const NO_METRICS: &str = "HARNESS_NO_METRICS";
const WITHOUT_DEFAULT_MIDDLEWARE: &str = "HARNESS_WITHOUT_DEFAULT_MIDDLEWARE";

/// GF-MET-1.
pub(super) async fn exposition(cx: &mut Cx) -> Result<(), Failure> {
    let shared = valid_exposition(cx).await?;
    scrape_with_auth_on(cx, &shared).await?;
    families_as_documented(cx, &shared)?;
    odd_method_and_unmatched(cx, &shared).await
}

/// The two HTTP families: types, label names, the route template, and the bucket bounds.
fn families_as_documented(cx: &mut Cx, shared: &Scraped) -> Result<(), Failure> {
    let exposition = &shared.after.exposition;
    let requests = expect_family(exposition, "http_requests_total", Kind::Counter)?;
    for sample in &requests.samples {
        if label_names(&sample.labels) != "method,route,status" {
            return Err(Failure::violation(
                "http_requests_total is labelled method, route, status",
                sample.to_string(),
            ));
        }
    }
    let route = format!("GET {}", shared.param_template);
    let statuses: Vec<String> = requests
        .find("http_requests_total", &[("route", route.as_str())])
        .map(|s| s.label("status").unwrap_or_default().to_string())
        .collect();
    if statuses.is_empty() {
        return Err(Failure::violation(
            format!(
                "http_requests_total has route=\"{route}\" (the ServeMux pattern) after GET {}",
                shared.param_path
            ),
            requests
                .samples
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n"),
        ));
    }
    // observability.md says the middleware records "status classes"; the catalogue (D21) reads
    // the exact code. Recorded here, not graded.
    cx.note(
        format!("status label for route \"{route}\" (the doc says \"status classes\"; catalogue D21)"),
        statuses.join(", "),
    );
    if requests
        .find("http_requests_total", &[("route", shared.param_path.as_str())])
        .next()
        .is_some()
    {
        return Err(Failure::violation(
            "no series labelled with the raw path (bounded cardinality: the route is the pattern)",
            format!("a series with route=\"{}\"", shared.param_path),
        ));
    }
    let durations = expect_family(exposition, "http_request_duration_ms", Kind::Histogram)?;
    for h in durations.histograms() {
        if label_names(&h.labels) != "route" || h.bounds() != DURATION_BOUNDS_MS {
            return Err(Failure::violation(
                format!(
                    "http_request_duration_ms series are labelled route, with buckets {} and +Inf",
                    bounds_text(&DURATION_BOUNDS_MS)
                ),
                format!("labels {} buckets {}", label_names(&h.labels), bounds_text(&h.bounds())),
            ));
        }
    }
    Ok(())
}

/// A non-standard method must be counted as `other`; an unmatched path is recorded.
async fn odd_method_and_unmatched(cx: &mut Cx, shared: &Scraped) -> Result<(), Failure> {
    let app_addr = shared
        .app
        .addr()
        .ok_or_else(|| Failure::harness("the app has no known port"))?;
    let odd = cx.send(ODD_METHOD, app_addr, &shared.param_path, &[], None).await?;
    cx.note(format!("{ODD_METHOD} {}", shared.param_path), odd.summary());
    cx.get(&shared.app, UNMATCHED_PATH).await?;
    let scrape = scrape_valid(cx, shared.addr, "scrape after a non-standard method").await?;
    let exposition = &scrape.exposition;
    let raw = exposition.find("http_requests_total", &[("method", ODD_METHOD)]);
    if !raw.is_empty()
        || exposition
            .find("http_requests_total", &[("method", "other")])
            .is_empty()
    {
        return Err(Failure::violation(
            format!("a {ODD_METHOD} request is counted with method=\"other\""),
            exposition
                .find("http_requests_total", &[])
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n"),
        ));
    }
    let unmatched: Vec<String> = exposition
        .find("http_requests_total", &[("status", "404")])
        .iter()
        .filter(|s| s.label("route").is_some_and(|r| !r.contains('/')))
        .map(ToString::to_string)
        .collect();
    cx.note(format!("series after GET {UNMATCHED_PATH}"), unmatched.join("\n"));
    Ok(())
}

/// GF-MET-2.
pub(super) async fn db_pool(cx: &mut Cx) -> Result<(), Failure> {
    for (handle_taken, what) in [
        (true, "with the app's app.Metrics() call"),
        (false, "with WithDB + WithMetrics only"),
    ] {
        let db = cx.database(Db::Sqlite).await?;
        let app = cx
            .boot_with(Some(&db), |spec| {
                if !handle_taken {
                    spec.set(SKIP_METRICS_HANDLE, "1");
                }
                Ok(())
            })
            .await?;
        let addr = cx.metrics_addr(&app)?;
        let scrape = scrape_valid(cx, addr, what).await?;
        let mut missing = Vec::new();
        for (name, kind) in DB_POOL_FAMILIES {
            match scrape.exposition.family(name) {
                None => missing.push(name),
                Some(_) => {
                    let family = expect_family(&scrape.exposition, name, kind)?;
                    let values: Vec<String> = family.samples.iter().map(ToString::to_string).collect();
                    cx.note(format!("{what}: {name}"), values.join(", "));
                }
            }
        }
        if !missing.is_empty() {
            return Err(Failure::violation(
                format!("{what}: the db_pool_* families appear (observability.md: \"WithDB + WithMetrics\")"),
                format!("missing: {}", missing.join(", ")),
            ));
        }
    }
    Ok(())
}

/// GF-MET-3.
pub(super) async fn opt_in(cx: &mut Cx) -> Result<(), Failure> {
    let path = cx.profile().metrics_path;
    let db = cx.database(Db::Sqlite).await?;
    let app = cx
        .boot_with(Some(&db), |spec| {
            spec.set(NO_METRICS, "1");
            Ok(())
        })
        .await?;
    let ex = cx.get(&app, path).await?;
    cx.expect_status(&format!("without WithMetrics, GET {path}"), &ex, 404)?;

    let db = cx.database(Db::Sqlite).await?;
    let mut spec = cx.spec(Some(&db))?;
    spec.set(WITHOUT_DEFAULT_MIDDLEWARE, "1");
    let mut app = cx.start(spec)?;
    let expected =
        "WithMetrics + WithoutDefaultMiddleware: NewApp panics (exit 2, `panic:` naming both options) before listening";
    let Some(exit) = cx.wait_exit(&mut app, timeouts::REFUSE_TO_BOOT).await? else {
        return Err(Failure::violation(
            expected,
            format!("still running after {:?}", timeouts::REFUSE_TO_BOOT),
        ));
    };
    cx.note("exit", exit.status);
    let panic_line = app.running.output().find(|l| {
        l.text.contains("panic:") && l.text.contains("WithMetrics") && l.text.contains("WithoutDefaultMiddleware")
    });
    match panic_line {
        Some(line) if exit.status == harness::running::ExitStatus::Code(2) => {
            cx.note("panic", line.plain());
            Ok(())
        }
        other => Err(Failure::violation(
            expected,
            format!(
                "{}; panic line: {}",
                exit.status,
                other.map(|l| l.plain()).unwrap_or_else(|| "(none)".into())
            ),
        )),
    }
}
