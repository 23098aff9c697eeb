//! Mutants: a reference candidate with one promise deliberately broken, to prove the clauses can
//! say "no".
//!
//! A mutant is a directory under `fixtures/mutants/` holding a `mutant.toml` (which reference
//! candidate it breaks, and how, in words, plus any one-line `[[edit]]`s of the reference's own
//! source) and the Go file(s) that break it. It is built from the reference candidate's own
//! source with those files added and those edits made (a [`Variant`]), so the mutant and the
//! reference differ by exactly that; everything else (manifest, knobs, shipped files) is the
//! reference's. Which clauses must catch it is recorded in
//! `fixtures/expected.toml` under the mutant's name, like a candidate's verdicts.

use std::path::{Path, PathBuf};

use harness::candidate::{Candidate, SourceEdit, Variant};
use serde::Deserialize;

use crate::certify::{self, PrepareError};
use crate::profile::Framework;

/// `mutant.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct MutantManifest {
    /// The reference candidate it breaks: a directory name under `fixtures/candidates/`.
    base: String,
    /// What it breaks, in one line (shown in the kill matrix).
    breaks: String,
    /// The contract areas it is graded on (`SHUT`, `PORT`, ...): where the clauses that must
    /// catch it live, and where every other clause must keep the reference's verdict.
    areas: Vec<String>,
    /// Replacements in the reference's source, each matching exactly once.
    #[serde(default, rename = "edit")]
    edits: Vec<SourceEdit>,
    /// Go files from `fixtures/mutants/_shared/` added too: code two mutants of different
    /// frameworks both need (the same breakage, not the same hook).
    #[serde(default)]
    shared: Vec<String>,
}

/// The directory of Go files mutants may share, beside the mutants; it has no `mutant.toml`, so
/// it is not a mutant itself.
const SHARED: &str = "_shared";

/// A loaded mutant, ready to build.
#[derive(Debug, Clone)]
pub struct Mutant {
    /// The directory name, used as the candidate name in reports and trials.
    pub name: String,
    /// What it breaks, in one line.
    pub breaks: String,
    /// The areas it is graded on.
    pub areas: Vec<String>,
    /// The reference candidate's directory.
    pub base_dir: PathBuf,
    /// The reference candidate's name (its verdicts are the mutant's, except where it breaks).
    pub base_name: String,
    /// The reference candidate, renamed to the mutant.
    pub candidate: Candidate,
    /// Its framework.
    pub framework: Framework,
    /// The overlay that makes it a mutant.
    pub variant: Variant,
}

/// Load the mutant in `dir`; `candidates` is the directory holding the reference candidates.
pub fn load(dir: &Path, candidates: &Path) -> Result<Mutant, String> {
    let name = dir
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| format!("{} has no usable directory name", dir.display()))?
        .to_string();
    let path = dir.join("mutant.toml");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let manifest: MutantManifest = toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let base_dir = candidates.join(&manifest.base);
    let (mut candidate, framework) =
        certify::load(&base_dir).map_err(|e| format!("{}: base candidate {:?}: {e}", path.display(), manifest.base))?;
    let base_name = std::mem::replace(&mut candidate.manifest.name, name.clone());
    let mut overlay: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("cannot read {}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "go"))
        .collect();
    overlay.sort();
    let shared_dir = dir.parent().unwrap_or(dir).join(SHARED);
    for file in &manifest.shared {
        let path = shared_dir.join(file);
        if !path.is_file() {
            return Err(format!(
                "{}: shared file {} does not exist",
                dir.join("mutant.toml").display(),
                path.display()
            ));
        }
        overlay.push(path);
    }
    if overlay.is_empty() && manifest.edits.is_empty() {
        return Err(format!(
            "{} has neither a Go file nor an [[edit]]: a mutant must change something",
            dir.display()
        ));
    }
    Ok(Mutant {
        variant: Variant {
            label: format!("mutant-{name}"),
            overlay,
            edits: manifest.edits,
            ..Variant::default()
        },
        name,
        breaks: manifest.breaks,
        areas: manifest.areas,
        base_dir,
        base_name,
        candidate,
        framework,
    })
}

/// Every mutant under `dir` (directories with a `mutant.toml`), sorted by name.
pub fn load_all(dir: &Path, candidates: &Path) -> Result<Vec<Mutant>, String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(Vec::new());
    };
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("mutant.toml").is_file())
        .collect();
    dirs.sort();
    dirs.iter().map(|d| load(d, candidates)).collect()
}

impl Mutant {
    /// The clauses of `catalogue` that grade this mutant: its framework's, in its areas, in
    /// the catalogue's order.
    pub fn clauses(&self, catalogue: &[crate::clause::Clause]) -> Vec<crate::clause::Clause> {
        catalogue
            .iter()
            .filter(|c| c.framework() == self.framework)
            .filter(|c| self.areas.iter().any(|a| a.eq_ignore_ascii_case(c.area())))
            .cloned()
            .collect()
    }

    /// Build it (cached like any variant).
    pub fn build(
        &self,
        cache: &harness::candidate::BuildCache,
    ) -> Result<std::sync::Arc<crate::cx::Target>, PrepareError> {
        certify::build_variant(self.candidate.clone(), self.framework, self.variant.clone(), cache)
    }
}
