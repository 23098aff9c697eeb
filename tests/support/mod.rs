//! What the test binaries that run the reference candidates share (`conformance.rs`,
//! `observed.rs`, `provider_parity.rs`, `collector_parity.rs`): finding the candidates under
//! `fixtures/candidates/`, loading them (a manifest that does not load is a failing trial), and
//! building each once into a target, or into the reason its trials cannot run (the framework
//! module not served here makes them *ignored*, with the exact module error, except under CI,
//! which serves the modules from `../shared/goproxy` and so fails them; anything else fails them).

// Each test binary that includes this module uses its own part of it.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;

use engine::certify::{self, PrepareError};
use engine::clause::Clause;
use engine::cx::Target;
use engine::plan::{Plan, PlanSpec, Quiet, RunFacts, Settings, Subject};
use engine::profile::Framework;
use engine::services::Services;
use harness::candidate::{BuildCache, Candidate};
use harness::report::Report;
use harness::service::Provider;

pub(crate) fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every directory under `fixtures/candidates/` with a `candidate.toml`, sorted.
pub(crate) fn candidate_dirs() -> Vec<PathBuf> {
    let dir = root().join("fixtures/candidates");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("candidate.toml").is_file())
        .collect();
    dirs.sort();
    assert!(
        !dirs.is_empty(),
        "no candidate under {}: the suite would pass vacuously",
        dir.display()
    );
    dirs
}

/// Every candidate that loads; for each one that does not, a failing `<dir>::manifest` trial
/// (a broken manifest is a failure, never a silently smaller suite).
pub(crate) fn load_candidates(
    trials: &mut Vec<libtest_mimic::Trial>,
) -> Vec<(harness::candidate::Candidate, Framework)> {
    let mut loaded = Vec::new();
    for dir in candidate_dirs() {
        match certify::load(&dir) {
            Ok(c) => loaded.push(c),
            Err(err) => {
                let msg = err.to_string();
                trials.push(libtest_mimic::Trial::test(
                    format!("{}::manifest", dir.display()),
                    move || Err(msg.into()),
                ));
            }
        }
    }
    loaded
}

/// Why a candidate's trials cannot run.
#[derive(Clone)]
pub(crate) struct Unavailable {
    /// The error, as printed and as each trial's failure.
    pub(crate) message: String,
    /// True when the framework module is not served here and this is not CI: the trials are
    /// ignored, not failed.
    pub(crate) ignored: bool,
}

/// A candidate loaded from its directory into a one-candidate plan, built unless only listing.
pub(crate) struct Prepared {
    /// The manifest's name.
    pub(crate) name: String,
    /// Its framework.
    pub(crate) framework: Framework,
    /// The plan's subject (every clause of its framework).
    pub(crate) subject: Arc<Subject>,
    /// The built target; `None` when listing (nothing is built then).
    pub(crate) target: Option<Result<Arc<Target>, Unavailable>>,
}

/// The plan of one candidate, graded on the clauses of its framework that `select` keeps.
pub(crate) fn plan_for(
    candidate: Candidate,
    framework: Framework,
    select: Option<&dyn Fn(&Clause) -> bool>,
    cache: &BuildCache,
) -> Plan {
    let catalogue = catalogue::registry();
    Plan::new(PlanSpec {
        candidates: vec![(candidate, framework)],
        catalogue: &catalogue,
        select,
        mutants: None,
        cache,
    })
    .expect("a plan without mutants reads no directory")
}

/// Load and (unless `list`) build the candidate in `dir`; a manifest error is `Err(message)`.
pub(crate) fn prepare(dir: &std::path::Path, cache: &BuildCache, list: bool) -> Result<Prepared, String> {
    let (candidate, framework) = certify::load(dir).map_err(|e| e.to_string())?;
    let name = candidate.manifest.name.clone();
    let subject = plan_for(candidate, framework, None, cache).subjects.remove(0);
    let target = (!list).then(|| subject.prepare().map_err(|e| unavailable(&e)));
    Ok(Prepared {
        name,
        framework,
        subject,
        target,
    })
}

/// Why a build failed, and whether that makes its trials ignored or failed: a framework module
/// not served here ignores them on a developer's machine, but fails them under CI (`CI` set),
/// whose `.ci/run` serves every framework module from the mirror beside the checkout, so that no
/// CI run can pass with its candidate trials quietly ignored.
pub(crate) fn unavailable(err: &PrepareError) -> Unavailable {
    let not_served = matches!(err, PrepareError::Build(e) if e.is_module_not_served());
    let ci = harness::service::docker::required();
    let mut message = err.to_string();
    if not_served && ci {
        message.push_str(
            "\nCI is set, so this fails instead of being ignored: `cargo xtask test` serves the framework \
             modules from ../shared/goproxy when that directory is beside the checkout",
        );
    }
    Unavailable {
        ignored: not_served && !ci,
        message,
    }
}

/// Say loudly, once per candidate, that its trials are ignored rather than passed.
pub(crate) fn announce_ignored(unavailable: &[String]) {
    for why in unavailable {
        eprintln!(
            "\nconform: trials of this candidate are IGNORED, not passed:\n  {}\n",
            why.replace('\n', "\n  ")
        );
    }
}

/// Certify `plan` as `conform certify --no-preflight` does (2 clauses at a time), with a fresh
/// set of services from `provider`; each reference's report.
pub(crate) async fn certify_with(provider: Provider, plan: &Plan) -> Result<Vec<Report>, String> {
    let services = Arc::new(Services::new(provider).map_err(|e| format!("preparing services: {e}"))?);
    let settings = Settings {
        parallel: 2,
        preflight: false,
        facts: RunFacts {
            provider: provider.name().into(),
            collector: services.collector_description(),
            command: "cargo test".into(),
        },
    };
    let certified = plan.certify(&services, &settings, &Quiet).await;
    if let Ok(services) = Arc::try_unwrap(services) {
        services.shutdown().await;
    }
    Ok(certified.into_iter().map(|c| c.report).collect())
}

/// Whether a Docker engine answers with the docker provider's image `conform/postgres:15`; the
/// reason when not. Under CI (`CI` set, where `.ci/run` starts an engine) it must, so this
/// panics instead.
#[expect(clippy::disallowed_methods, reason = "the tests ask the docker CLI, as a user would")]
pub(crate) fn docker_image_ready() -> Result<(), String> {
    let out = std::process::Command::new("docker")
        .args(["image", "inspect", "--format", "{{.Id}}", "conform/postgres:15"])
        .output();
    match out {
        Ok(o) if o.status.success() => Ok(()),
        other => {
            let said = other.map_or_else(
                |e| e.to_string(),
                |o| String::from_utf8_lossy(&o.stderr).trim().to_string(),
            );
            assert!(
                !harness::service::docker::required(),
                "CI is set, so docker and conform/postgres:15 must be available: {said}"
            );
            Err(format!("no Docker engine with conform/postgres:15: {said}"))
        }
    }
}

/// Ids of the containers (running or not) labelled as belonging to the conform run of `pid`.
#[expect(clippy::disallowed_methods, reason = "the tests ask the docker CLI, as a user would")]
pub(crate) fn containers_of_run(pid: u32) -> Vec<String> {
    let Ok(out) = std::process::Command::new("docker")
        .args(["ps", "-a", "--filter", "label=dev.conform.run"])
        .args(["--format", "{{.ID}} {{.Label \"dev.conform.run\"}}"])
        .output()
    else {
        return vec!["(docker ps did not run)".into()];
    };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once(' '))
        .filter(|(_, run)| run.starts_with(&format!("{pid}-")))
        .map(|(id, _)| id.to_string())
        .collect()
}
