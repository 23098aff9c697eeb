//! Two certifications of the same build must diff to no behaviour change: each reference
//! candidate is certified twice in-process (every clause, native provider, 2 at a time, as
//! `conform certify` does) and `harness::report::diff::compare` of the two JSON reports must list
//! no change. Samples of the candidate's own races (notes marked `sample`) may differ; they are
//! printed, not failed. A change listed here is either noise the diff's normalisation misses or a
//! clause noting a race without marking it a sample.
//!
//! One trial per candidate, `diff_noise::<candidate>` (libtest-mimic, like `provider_parity.rs`);
//! a candidate whose framework module is not served here has its trial *ignored*, saying why.

mod support;

use std::sync::Arc;

use engine::plan::Plan;
use harness::candidate::BuildCache;
use harness::report::{self, diff};
use harness::service::Provider;
use libtest_mimic::{Arguments, Failed, Trial};

/// One certification of `plan` (every clause of its one candidate), as a JSON report value.
async fn certify_once(plan: &Plan) -> Result<serde_json::Value, String> {
    let reports = support::certify_with(Provider::Native, plan).await?;
    let report = reports.first().ok_or("the plan certified no candidate")?;
    serde_json::from_str(&report::json(report)).map_err(|e| format!("the JSON report does not parse back: {e}"))
}

/// The result row of `clause` in `report`, without its evidence (verdict, message, timing).
fn without_evidence(report: &serde_json::Value, clause: &str) -> String {
    let row = report
        .get("results")
        .and_then(serde_json::Value::as_array)
        .and_then(|rows| {
            rows.iter()
                .find(|r| r.get("clause").and_then(serde_json::Value::as_str) == Some(clause))
        });
    match row {
        Some(serde_json::Value::Object(fields)) => {
            let mut fields = fields.clone();
            fields.remove("evidence");
            serde_json::Value::Object(fields).to_string()
        }
        _ => "(no row)".into(),
    }
}

fn main() {
    let args = Arguments::from_args();
    harness::reaper::install_signal_handler();
    let rt = Arc::new(tokio::runtime::Runtime::new().expect("tokio runtime"));
    let cache = BuildCache::from_env();
    let mut trials = Vec::new();
    let mut ignored_because = Vec::new();
    for (candidate, framework) in support::load_candidates(&mut trials) {
        let name = format!("diff_noise::{}", candidate.manifest.name);
        if args.list {
            trials.push(Trial::test(name, || Ok(())));
            continue;
        }
        let plan = support::plan_for(candidate, framework, None, &cache);
        let trial = match plan.subjects[0].prepare().map_err(|e| support::unavailable(&e)) {
            Err(why) => {
                if why.ignored {
                    ignored_because.push(why.message.clone());
                }
                let msg = why.message;
                Trial::test(name, move || Err(msg.clone().into())).with_ignored_flag(why.ignored)
            }
            Ok(_) => {
                let rt = rt.clone();
                Trial::test(name, move || {
                    rt.block_on(async {
                        let first = certify_once(&plan).await.map_err(Failed::from)?;
                        let second = certify_once(&plan).await.map_err(Failed::from)?;
                        let found = diff::compare(&first, &second);
                        eprintln!(
                            "diff_noise: {} behaviour change(s), {} sample(s) varied",
                            found.changes.len(),
                            found.samples.len()
                        );
                        for sample in &found.samples {
                            eprintln!("  sample: {sample}");
                        }
                        // A verdict that changed: what each run said, so a harness error
                        // names its cause here and not only in a report file.
                        for change in &found.changes {
                            if let diff::Change::Verdict { clause, .. } = change {
                                for (run, report) in [("first", &first), ("second", &second)] {
                                    eprintln!("  {clause} in the {run} run: {}", without_evidence(report, clause));
                                }
                            }
                        }
                        if found.changes.is_empty() {
                            Ok(())
                        } else {
                            let listed: Vec<String> = found.changes.iter().map(ToString::to_string).collect();
                            Err(Failed::from(format!(
                                "two runs of the same build differ in behaviour:\n  {}",
                                listed.join("\n  ")
                            )))
                        }
                    })
                })
            }
        };
        trials.push(trial.with_kind(framework.name()));
    }
    for why in &ignored_because {
        eprintln!(
            "\ndiff_noise: trial IGNORED, not passed:\n  {}\n",
            why.replace('\n', "\n  ")
        );
    }
    libtest_mimic::run(&args, trials).exit();
}
