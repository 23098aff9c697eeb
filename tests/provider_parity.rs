//! Provider parity at the clause level: the reference candidates' PORT, HEALTH/HLTH, MIG and SHUT
//! clauses (the areas that touch Postgres or process lifecycle) are certified once with the native
//! provider and once with the docker provider, and every clause must get the same verdict. A
//! provider that changed a verdict would make certification depend on where it ran.
//!
//! A custom harness (libtest-mimic) for the same reason as `conformance.rs`: one trial per
//! candidate, `provider_parity::<candidate>`, and a candidate whose framework module is not served
//! here has its trial *ignored* with the exact module error printed (not passed). The docker
//! provider must be available under `CI=true`; elsewhere its absence ignores the trials, saying why.

mod support;

use std::sync::Arc;

use engine::clause::Clause;
use harness::candidate::BuildCache;
use harness::service::Provider;
use harness::service::docker;
use harness::service::postgres::ContainerOptions;
use harness::verdict::ClauseResult;
use libtest_mimic::{Arguments, Failed, Trial};

/// The areas certified under both providers.
const AREAS: &[&str] = &["PORT", "HEALTH", "HLTH", "MIG", "SHUT"];

/// Every clause whose verdict differs between the two runs, with both verdicts and details.
fn differences(native: &[ClauseResult], docker: &[ClauseResult]) -> Vec<String> {
    native
        .iter()
        .zip(docker)
        .filter(|(n, d)| n.verdict.name() != d.verdict.name())
        .map(|(n, d)| {
            format!(
                "{}: native `{}`, docker `{}`\n    native: {:?}\n    docker: {:?}",
                n.clause,
                n.verdict.name(),
                d.verdict.name(),
                n.verdict,
                d.verdict
            )
        })
        .collect()
}

fn main() {
    let args = Arguments::from_args();
    harness::reaper::install_signal_handler();
    let rt = Arc::new(tokio::runtime::Runtime::new().expect("tokio runtime"));
    let cache = BuildCache::from_env();
    let image = ContainerOptions::default();
    // Listing (nextest does this first) must neither build nor touch docker.
    let docker_ready = if args.list {
        Ok(())
    } else {
        rt.block_on(docker::ready_for(&image.image, &image.hint()))
            .map(|_| ())
            .map_err(|e| e.to_string())
    };
    let mut trials = Vec::new();
    let mut ignored_because = Vec::new();

    for (candidate, framework) in support::load_candidates(&mut trials) {
        let name = format!("provider_parity::{}", candidate.manifest.name);
        let in_areas = |c: &Clause| AREAS.contains(&c.area());
        let plan = support::plan_for(candidate, framework, Some(&in_areas), &cache);
        if args.list {
            trials.push(Trial::test(name, || Ok(())));
            continue;
        }
        let built = plan.subjects[0].prepare().map_err(|e| support::unavailable(&e));
        let trial = match (built, &docker_ready) {
            (Err(why), _) => {
                if why.ignored {
                    ignored_because.push(why.message.clone());
                }
                let msg = why.message;
                Trial::test(name, move || Err(msg.clone().into())).with_ignored_flag(why.ignored)
            }
            (Ok(_), Err(why)) if !docker::required() => {
                let msg = format!("the docker provider is not available here: {why}");
                ignored_because.push(msg.clone());
                Trial::test(name, move || Err(msg.clone().into())).with_ignored_flag(true)
            }
            (Ok(_), Err(why)) => {
                let msg = format!("CI is set, so the docker provider must be available: {why}");
                Trial::test(name, move || Err(msg.clone().into()))
            }
            (Ok(_), Ok(())) => {
                let rt = rt.clone();
                Trial::test(name, move || {
                    rt.block_on(async {
                        let results = |reports: Vec<harness::report::Report>| {
                            reports.into_iter().next().map(|r| r.results).unwrap_or_default()
                        };
                        let native = results(
                            support::certify_with(Provider::Native, &plan)
                                .await
                                .map_err(Failed::from)?,
                        );
                        let docker = results(
                            support::certify_with(Provider::Docker, &plan)
                                .await
                                .map_err(Failed::from)?,
                        );
                        let diff = differences(&native, &docker);
                        eprintln!("provider parity: {} clauses, {} differ", native.len(), diff.len());
                        if diff.is_empty() {
                            Ok(())
                        } else {
                            Err(Failed::from(diff.join("\n")))
                        }
                    })
                })
            }
        };
        trials.push(trial);
    }
    for why in &ignored_because {
        eprintln!(
            "\nprovider_parity: trial IGNORED, not passed:\n  {}\n",
            why.replace('\n', "\n  ")
        );
    }
    libtest_mimic::run(&args, trials).exit();
}
