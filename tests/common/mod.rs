//! What the suite's libtest-mimic harnesses (`conformance.rs`, `provider_parity.rs`) share: the
//! reference candidates under `fixtures/candidates/`, loaded, with a failing trial for any whose
//! manifest does not load (so a broken manifest is a failure, never a silently smaller suite).

use std::path::PathBuf;

use harness::candidate::Candidate;
use libtest_mimic::Trial;
use scenarios::certify;
use scenarios::profile::Framework;

/// Every candidate directory (one holding a `candidate.toml`), sorted; never none.
pub(crate) fn candidate_dirs() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/candidates");
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

/// Every candidate that loads; for each one that does not, a failing `<dir>::manifest` trial.
pub(crate) fn load_candidates(trials: &mut Vec<Trial>) -> Vec<(Candidate, Framework)> {
    let mut loaded = Vec::new();
    for dir in candidate_dirs() {
        match certify::load(&dir) {
            Ok(c) => loaded.push(c),
            Err(err) => {
                let msg = err.to_string();
                trials.push(Trial::test(format!("{}::manifest", dir.display()), move || {
                    Err(msg.into())
                }));
            }
        }
    }
    loaded
}
