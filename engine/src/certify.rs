//! Certification of one candidate: load, build, preflight, run the clauses, assemble the report.
//!
//! This is the one path both front doors share: `conform certify` calls it per candidate, and
//! the `cargo test` harness uses its pieces (load, build, run one clause) per trial, so a verdict
//! in CI and a verdict in a certification report come from the same code.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use harness::candidate::{BuildCache, BuildError, Candidate, CandidateError, Variant};
use harness::evidence::Evidence;
use harness::report::{self, Report, Summary};
use harness::verdict::{ClauseResult, Failure, Verdict};

use crate::clause::Clause;
use crate::cx::{Cx, Db, Target};

use crate::profile::Framework;
use crate::services::Services;

/// Why a candidate could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    /// The directory or manifest is bad (a usage error).
    #[error(transparent)]
    Candidate(#[from] CandidateError),
    /// The manifest names a profile conform does not know.
    #[error(transparent)]
    Profile(harness::manifest::ManifestError),
    /// The executable could not be produced (the harness cannot judge).
    #[error(transparent)]
    Build(#[from] BuildError),
}

/// Load the candidate in `dir` and resolve its framework profile.
pub fn load(dir: &Path) -> Result<(Candidate, Framework), PrepareError> {
    let candidate = Candidate::load(dir)?;
    let name = candidate.manifest.profile.get_ref().clone();
    match Framework::from_profile_name(&name) {
        Some(framework) => Ok((candidate, framework)),
        None => {
            let known: Vec<&str> = Framework::ALL.iter().map(|f| f.name()).collect();
            Err(PrepareError::Profile(candidate.manifest.profile_error(
                &candidate.manifest_path,
                &candidate.manifest_text,
                format!("unknown profile {name:?} (known: {})", known.join(", ")),
            )))
        }
    }
}

/// Build (or take from the cache) the candidate's reference executable.
pub fn build(candidate: Candidate, framework: Framework, cache: &BuildCache) -> Result<Arc<Target>, PrepareError> {
    build_variant(candidate, framework, Variant::default(), cache)
}

/// Build (or take from the cache) the candidate as `variant` (a mutant).
pub fn build_variant(
    candidate: Candidate,
    framework: Framework,
    variant: Variant,
    cache: &BuildCache,
) -> Result<Arc<Target>, PrepareError> {
    let build = candidate.build(&variant, cache)?;
    Ok(Arc::new(Target {
        candidate,
        build,
        variant,
        framework,
    }))
}

/// Boot the candidate once on SQLite and wait for liveness: a candidate that cannot do that
/// fails every clause for the same reason, which one clear message says better than forty.
pub async fn preflight(target: Arc<Target>, services: Arc<Services>) -> Result<(), (String, Evidence)> {
    let mut cx = match Cx::new(target, services, &crate::clause::Needs::NONE) {
        Ok(cx) => cx,
        Err(f) => return Err((format!("{f:?}"), Evidence::default())),
    };
    let outcome = async {
        let db = cx.database(Db::Sqlite).await?;
        cx.boot(Some(&db)).await.map(drop)
    }
    .await;
    let evidence = cx.finish();
    match outcome {
        Ok(()) => Ok(()),
        Err(Failure::Violation(v)) => Err((v.actual, evidence)),
        Err(Failure::Harness(m)) => Err((m, evidence)),
    }
}

/// The facts of a run that go at the top of its report.
#[derive(Debug, Clone)]
pub struct RunInfo {
    /// Service provider.
    pub provider: String,
    /// The collector in the tracing path, as [`Services::collector_description`] words it.
    pub collector: String,
    /// The command line.
    pub command: String,
    /// When the run started.
    pub started: SystemTime,
    /// Monotonic start, for the duration.
    pub clock: Instant,
}

/// Assemble a report from results (`source_hash` is empty when nothing was built); `clauses`
/// are the clauses the results may name, for their documentation links.
pub fn report(
    candidate: &Candidate,
    framework: Framework,
    clauses: &[Clause],
    source_hash: &str,
    info: &RunInfo,
    results: Vec<ClauseResult>,
) -> Report {
    let m = &candidate.manifest;
    let pages: std::collections::HashMap<&str, &str> = clauses.iter().map(|c| (c.id, c.doc.page)).collect();
    let mut results = results;
    for r in &mut results {
        if let Some(page) = pages.get(r.clause.as_str()) {
            r.doc_url = framework.profile().doc_url(&m.framework_version, page);
        }
    }
    Report {
        conform_version: env!("CARGO_PKG_VERSION").to_string(),
        candidate: m.name.clone(),
        framework: framework.name().to_string(),
        framework_module: m.framework_module.clone(),
        framework_version: m.framework_version.clone(),
        framework_version_pinned: candidate.pinned_version.clone(),
        provider: info.provider.clone(),
        collector: info.collector.clone(),
        source_hash: source_hash.to_string(),
        started_at: report::rfc3339(info.started),
        duration: info.clock.elapsed(),
        command: info.command.clone(),
        summary: Summary::of(&results),
        kill_matrix: None,
        results,
    }
}

/// Results for clauses that could not run because of `why` (each with `verdict`).
pub fn unrun(clauses: &[Clause], verdict: impl Fn(&Clause) -> Verdict, evidence: &Evidence) -> Vec<ClauseResult> {
    clauses
        .iter()
        .map(|c| c.result(verdict(c), Duration::ZERO, evidence.clone()))
        .collect()
}
