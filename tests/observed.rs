//! Regression snapshots of what the reference candidates actually do (probe bodies, schema after
//! boot migration, metric families, the spans of one request, the boot log), one per candidate,
//! compared with `tests/snapshots/observed__<candidate>.snap`.
//!
//! A change in any of them fails the test with the diff, even when every clause still passes:
//! that is the point of a snapshot on a framework upgrade. Review with `cargo insta review`;
//! CI never updates snapshots (insta refuses to write under `CI=true`). Like the conformance
//! suite, a candidate whose framework module is not served here is reported as ignored with the
//! module error.

mod support;

use std::sync::Arc;

use engine::cx::Cx;
use engine::services::Services;
use harness::candidate::BuildCache;
use harness::service::Provider;
use libtest_mimic::{Arguments, Trial};

fn main() {
    let args = Arguments::from_args();
    harness::reaper::install_signal_handler();
    let rt = Arc::new(tokio::runtime::Runtime::new().expect("tokio runtime"));
    let services = Arc::new(Services::new(Provider::Native).expect("services"));
    let cache = BuildCache::from_env();
    let mut trials = Vec::new();
    let mut unavailable = Vec::new();
    for dir in support::candidate_dirs() {
        let prepared = match support::prepare(&dir, &cache, args.list) {
            Ok(p) => p,
            Err(msg) => {
                trials.push(Trial::test(format!("{}::manifest", dir.display()), move || {
                    Err(msg.into())
                }));
                continue;
            }
        };
        let name = prepared.name.clone();
        let trial_name = format!("{name}::observed");
        let trial = match prepared.target {
            None => Trial::test(trial_name, || Ok(())),
            Some(Ok(target)) => {
                let (rt, services) = (rt.clone(), services.clone());
                Trial::test(trial_name, move || {
                    let text = rt.block_on(async {
                        let mut cx =
                            Cx::new(target, services, &catalogue::observe::NEEDS).map_err(|f| format!("{f:?}"))?;
                        let observed = catalogue::observe::observe(&mut cx).await;
                        let evidence = cx.finish();
                        observed.map_err(|f| format!("{f:?}\n\nevidence:\n{}", evidence.as_text()))
                    })?;
                    insta::with_settings!({ prepend_module_to_snapshot => false, omit_expression => true }, {
                        insta::assert_snapshot!(format!("observed__{name}"), text);
                    });
                    Ok(())
                })
            }
            Some(Err(why)) => {
                if why.ignored {
                    unavailable.push(why.message.clone());
                }
                let msg = why.message;
                Trial::test(trial_name, move || Err(msg.clone().into())).with_ignored_flag(why.ignored)
            }
        };
        trials.push(trial.with_kind(prepared.framework.name()));
    }
    support::announce_ignored(&unavailable);
    let conclusion = libtest_mimic::run(&args, trials);
    if let Ok(services) = Arc::try_unwrap(services) {
        rt.block_on(services.shutdown());
    }
    conclusion.exit();
}
