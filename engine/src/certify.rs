//! Preparing a candidate: load it (resolving its framework profile), build it, preflight it.
//!
//! The steps the [`plan`](crate::plan) takes for each subject before its clauses run.

use std::path::Path;
use std::sync::Arc;

use harness::candidate::{BuildCache, BuildError, Candidate, CandidateError, Variant};
use harness::evidence::Evidence;
use harness::verdict::Failure;

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
