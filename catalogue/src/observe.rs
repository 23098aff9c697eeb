//! What a candidate actually does, written down as text for regression snapshots: the probe
//! bodies, the schema its boot migration leaves in Postgres, its metric families, the spans of
//! one request, and its boot log.
//!
//! Clauses grade promises; this records behaviour no clause pins down, so that a framework
//! upgrade shows exactly what changed (a renamed metric, a new column, an extra log line) even
//! when every verdict stays the same. One boot on a fresh Postgres database with the exporter
//! pointed at a receiver, a fixed sequence of requests, then every section read off. Whatever
//! differs on every run (ports, times, ids, temp paths, durations) is normalised away with the
//! same rules `conform diff` uses, so two runs of one build give the same text.

use std::fmt::Write as _;

use harness::probe::Outcome;
use harness::report::diff::normalise;
use harness::service::otlp::{ReceivedSpan, Transport};
use harness::service::schema::Inspector;
use harness::verdict::Failure;

use crate::metrics::{fill, param_template};
use crate::tracing::{self, BATCH_DELAY_ENV, QUICK_BATCH_DELAY, TraceParent, Traced};
use engine::clause::{Knob, Needs, Service};
use engine::cx::{Attached, Cx, Db};

/// What [`observe`] needs: Postgres for the boot migration's schema, an OTLP receiver for the
/// spans, and the route with a path parameter whose request it traces.
pub const NEEDS: Needs = Needs {
    services: &[Service::Postgres, Service::Otlp],
    knobs: &[Knob::ParamEndpoint],
    ..Needs::NONE
};

/// Boot the candidate once and describe what it does. Each section starts with `# `.
pub async fn observe(cx: &mut Cx) -> Result<String, Failure> {
    let profile = cx.profile();
    let receiver = cx.otlp().await?;
    let export = [Transport::Grpc, Transport::HttpProtobuf]
        .into_iter()
        .find_map(|t| profile.trace_env(&receiver, t))
        .ok_or_else(|| Failure::harness(format!("{} cannot export spans", profile.display)))?;
    let db = cx.database(Db::Postgres).await?;
    let app = cx
        .boot_with(Some(&db), |spec| {
            for (k, v) in &export {
                spec.set(k, v.clone());
            }
            spec.set(BATCH_DELAY_ENV, QUICK_BATCH_DELAY);
            Ok(())
        })
        .await?;
    let traced = Traced { receiver, app, _db: db };
    let mut out = String::new();

    writeln!(out, "# probes").ok();
    for path in [profile.liveness, profile.readiness] {
        let exchange = cx.get(&traced.app, path).await?;
        writeln!(out, "GET {path} -> {}", response(&exchange.outcome)).ok();
    }

    let template = param_template(cx)?;
    let path = fill(&template);
    let parent = TraceParent::new(true)?;
    tracing::get(cx, &traced.app, &path, Some(&parent)).await?;
    let spans = tracing::settle(cx, &traced, &path).await?;
    writeln!(out, "\n# spans of GET {template} (with a sampled traceparent)").ok();
    let mut lines: Vec<String> = spans
        .iter()
        .filter(|s| s.trace_id == parent.trace_id)
        .map(span_line)
        .collect();
    lines.sort();
    for line in lines {
        writeln!(out, "{line}").ok();
    }

    let scrape = cx
        .scrape(cx.metrics_addr(&traced.app)?, profile.metrics_path, &[])
        .await?;
    writeln!(out, "\n# metric families (after the requests above)").ok();
    let mut families: Vec<String> = scrape
        .exposition
        .families
        .iter()
        .map(|f| format!("{} {}", f.name, if f.typed { f.kind.name() } else { "(no TYPE)" }))
        .collect();
    families.sort();
    for family in families {
        writeln!(out, "{family}").ok();
    }

    // Read last, so everything the boot printed has arrived. Request logs are left out (how
    // many liveness polls the boot took depends on the machine), and the lines are sorted:
    // goroutines starting side by side (HTTP and metrics servers) print in either order.
    writeln!(out, "\n# log lines (sorted; request lines left out)").ok();
    let requested = [profile.liveness, profile.readiness, path.as_str(), profile.metrics_path];
    let mut lines: Vec<String> = traced
        .app
        .running
        .output()
        .lines()
        .iter()
        .map(|l| l.plain())
        .filter(|text| !requested.iter().any(|p| text.contains(p)))
        .map(|text| normalise(text.trim_end()))
        .collect();
    lines.sort();
    for line in lines {
        writeln!(out, "{line}").ok();
    }

    writeln!(out, "\n# schema after boot (Postgres)").ok();
    let Attached::Postgres { db, .. } = &traced._db else {
        return Err(Failure::harness("the observation database is not Postgres"));
    };
    let mut inspector = Inspector::postgres(&db.connect_options()).await?;
    let schema = inspector.schema().await?;
    inspector.close().await?;
    for (table, columns) in &schema.tables {
        writeln!(out, "{table}").ok();
        for c in columns {
            writeln!(
                out,
                "  {} {}{}{}{}",
                c.name,
                c.data_type,
                if c.nullable { "" } else { " not null" },
                if c.primary_key { " primary key" } else { "" },
                c.default
                    .as_deref()
                    .map(|d| format!(" default {}", normalise(d)))
                    .unwrap_or_default()
            )
            .ok();
        }
    }
    Ok(out)
}

/// A response as `status body`: a JSON body with its keys sorted, every number replaced
/// (connection counts and check durations change from run to run; the shape is the behaviour)
/// and every string normalised.
fn response(outcome: &Outcome) -> String {
    fn scrub(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Number(_) => *v = serde_json::Value::String("<n>".into()),
            serde_json::Value::String(s) => *s = normalise(s),
            serde_json::Value::Array(items) => items.iter_mut().for_each(scrub),
            serde_json::Value::Object(map) => map.values_mut().for_each(scrub),
            _ => {}
        }
    }
    match outcome {
        Outcome::Response { status, body, .. } => match serde_json::from_str::<serde_json::Value>(body) {
            Ok(mut json) => {
                scrub(&mut json);
                format!("{status} {json}")
            }
            Err(_) => format!("{status} {}", normalise(body.trim_end())),
        },
        other => format!("{other:?}"),
    }
}

/// One span as `KIND name [scope] key=value ...`, values normalised.
fn span_line(s: &ReceivedSpan) -> String {
    let mut line = format!("{:?} {:?} [{}]", s.kind, s.name, s.scope_name);
    if s.parent_span_id.is_none() {
        line.push_str(" root");
    }
    for (k, v) in &s.attributes {
        let value = serde_json::to_string(v).unwrap_or_default();
        write!(line, " {k}={}", normalise(&value)).ok();
    }
    line
}
