//! A candidate: a directory with a `candidate.toml`, turned into an executable once per run.
//!
//! Building is `go build` with `CGO_ENABLED=0` and the local toolchain, in a copy of the source
//! (so `go.sum` completion never dirties the fixture), cached by a hash of the source, the build
//! settings and the Go version: a second run, or a second test process, reuses the binary.
//! A build that fails because the module proxy does not serve the framework is reported as
//! [`BuildError::ModuleNotServed`], distinct from a broken fixture, because it is a fact about the
//! machine and not about the candidate.
//! A candidate can be built against another release of its framework than the one its manifest
//! pins ([`Candidate::at_framework_version`]); the module graph is then resolved afresh for that
//! release in the build copy (see [`crate::release`]), and the version is part of the cache key.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::manifest::{Manifest, ManifestError};
use crate::workdir::copy_tree;
use crate::{process, timeouts};

/// File name of the manifest inside a candidate directory.
pub const MANIFEST: &str = "candidate.toml";

/// A loaded candidate directory.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// The candidate directory.
    pub dir: PathBuf,
    /// Its manifest.
    pub manifest: Manifest,
    /// The manifest's path.
    pub manifest_path: PathBuf,
    /// The manifest's text (for error positions).
    pub manifest_text: String,
    /// The manifest's own `framework_version` when the candidate is built against another
    /// release (`manifest.framework_version` then holds the version actually built).
    pub pinned_version: Option<String>,
}

/// Why a candidate directory could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum CandidateError {
    /// The directory does not exist.
    #[error("candidate directory {0} does not exist")]
    MissingDir(PathBuf),
    /// No manifest in the directory.
    #[error("{0} has no {MANIFEST}: a candidate directory needs one (see README, \"Candidates\")")]
    MissingManifest(PathBuf),
    /// The manifest is invalid.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
}

/// A build variant: the same source with extra tags or `-X` settings (schema versions, mutants).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Variant {
    /// Short label used in file names, e.g. `v2`; empty for the reference build.
    pub label: String,
    /// Extra build tags.
    pub tags: Vec<String>,
    /// Extra `-X importpath.name=value` link settings.
    pub link_x: Vec<(String, String)>,
    /// Files added to (or replacing files of) the source before it is built, each copied into
    /// the package directory under its own name: a mutant's Go file.
    pub overlay: Vec<PathBuf>,
    /// Text replacements applied to the copied source, after the overlay: a mutant that changes
    /// one line of the reference's own code.
    pub edits: Vec<SourceEdit>,
}

/// One replacement in one source file: `find` must occur exactly once in `file`, so an edit
/// that no longer matches the source (or matches it twice) fails the build instead of silently
/// producing the reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceEdit {
    /// The file, relative to the package directory.
    pub file: PathBuf,
    /// The exact text to replace.
    pub find: String,
    /// What replaces it.
    pub replace: String,
}

impl SourceEdit {
    /// Apply the edit to the copy of the source at `package_dir`.
    pub fn apply(&self, package_dir: &Path) -> Result<(), String> {
        let path = package_dir.join(&self.file);
        let text = std::fs::read_to_string(&path).map_err(|e| format!("edit of {}: {e}", self.file.display()))?;
        match text.matches(&self.find).count() {
            1 => std::fs::write(&path, text.replacen(&self.find, &self.replace, 1))
                .map_err(|e| format!("edit of {}: writing {}: {e}", self.file.display(), path.display())),
            n => Err(format!(
                "edit of {}: {:?} must occur exactly once, found {n} times",
                self.file.display(),
                self.find
            )),
        }
    }
}

impl Variant {
    /// `other` built on top of this variant: a mutant's v2 schema build keeps the mutant's
    /// overlay and tags. Labels are joined with `-`.
    pub fn with(&self, other: &Variant) -> Variant {
        let label = match (self.label.is_empty(), other.label.is_empty()) {
            (true, _) => other.label.clone(),
            (false, true) => self.label.clone(),
            (false, false) => format!("{}-{}", self.label, other.label),
        };
        Variant {
            label,
            tags: self.tags.iter().chain(&other.tags).cloned().collect(),
            link_x: self.link_x.iter().chain(&other.link_x).cloned().collect(),
            overlay: self.overlay.iter().chain(&other.overlay).cloned().collect(),
            edits: self.edits.iter().chain(&other.edits).cloned().collect(),
        }
    }
}

/// A built (or prebuilt) candidate executable.
#[derive(Debug, Clone)]
pub struct Build {
    /// Absolute path of the executable.
    pub binary: PathBuf,
    /// Hash of everything the build depends on (empty for a prebuilt binary).
    pub source_hash: String,
    /// True when the binary came from the cache.
    pub cached: bool,
    /// Time spent (near zero when cached).
    pub took: Duration,
}

/// Why a candidate could not be turned into an executable.
#[derive(Debug, Clone, thiserror::Error)]
pub enum BuildError {
    /// `go` is not installed.
    #[error("cannot build {candidate}: the `go` command was not found ({detail}); install Go 1.26 or newer")]
    GoMissing {
        /// Candidate name.
        candidate: String,
        /// The OS error.
        detail: String,
    },
    /// The module proxy refused the pinned framework module.
    #[error(
        "cannot build {candidate}: the Go module proxy does not serve {module}@{version}: {detail}\n\
         (set GOPROXY to a proxy that serves it; see README, \"When the framework module is not served\")"
    )]
    ModuleNotServed {
        /// Candidate name.
        candidate: String,
        /// The framework module.
        module: String,
        /// The pinned version.
        version: String,
        /// The exact line Go printed.
        detail: String,
    },
    /// `go build` failed for another reason.
    #[error("cannot build {candidate}: `{command}` failed:\n{output}")]
    Failed {
        /// Candidate name.
        candidate: String,
        /// The command that ran.
        command: String,
        /// Its output (last lines).
        output: String,
    },
    /// A prebuilt binary is missing or not executable.
    #[error("candidate {candidate}: binary {path} {problem}")]
    BadBinary {
        /// Candidate name.
        candidate: String,
        /// The path from the manifest.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// File-system trouble while preparing the build.
    #[error("cannot build {candidate}: {detail}")]
    Io {
        /// Candidate name.
        candidate: String,
        /// What failed.
        detail: String,
    },
}

impl BuildError {
    /// True when the framework module is not available here (a fact about the machine).
    pub fn is_module_not_served(&self) -> bool {
        matches!(self, BuildError::ModuleNotServed { .. })
    }
}

/// Where built binaries are kept between runs.
#[derive(Debug, Clone)]
pub struct BuildCache {
    root: PathBuf,
}

impl BuildCache {
    /// `$CONFORM_CACHE_DIR`, else `$XDG_CACHE_HOME/conform`, else `~/.cache/conform`.
    pub fn from_env() -> BuildCache {
        let root = std::env::var_os("CONFORM_CACHE_DIR")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("XDG_CACHE_HOME").map(|d| PathBuf::from(d).join("conform")))
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/conform")))
            .unwrap_or_else(|| std::env::temp_dir().join("conform-cache"));
        BuildCache { root }
    }

    /// A cache rooted at `root`.
    pub fn at(root: impl Into<PathBuf>) -> BuildCache {
        BuildCache { root: root.into() }
    }

    /// The cache directory.
    pub fn root(&self) -> &Path {
        &self.root
    }
}

impl Candidate {
    /// Load the candidate in `dir`.
    pub fn load(dir: impl AsRef<Path>) -> Result<Candidate, CandidateError> {
        let dir = dir.as_ref();
        if !dir.is_dir() {
            return Err(CandidateError::MissingDir(dir.into()));
        }
        let manifest_path = dir.join(MANIFEST);
        if !manifest_path.is_file() {
            return Err(CandidateError::MissingManifest(dir.into()));
        }
        let manifest_text = std::fs::read_to_string(&manifest_path).map_err(|source| ManifestError::Read {
            path: manifest_path.clone(),
            source,
        })?;
        let manifest = Manifest::parse(&manifest_path, &manifest_text)?;
        let dir = dir.canonicalize().map_err(|source| ManifestError::Read {
            path: dir.into(),
            source,
        })?;
        Ok(Candidate {
            dir,
            manifest,
            manifest_path,
            manifest_text,
            pinned_version: None,
        })
    }

    /// The same candidate built against `version` of its framework module. When that is the
    /// manifest's pin nothing changes; otherwise `manifest.framework_version` becomes `version`
    /// (every report, doc link and framework tool then uses it) and the pin is kept in
    /// [`Candidate::pinned_version`].
    pub fn at_framework_version(mut self, version: &str) -> Candidate {
        let pinned = self
            .pinned_version
            .clone()
            .unwrap_or_else(|| self.manifest.framework_version.clone());
        if version == pinned {
            self.manifest.framework_version = pinned;
            self.pinned_version = None;
        } else {
            self.manifest.framework_version = version.to_string();
            self.pinned_version = Some(pinned);
        }
        self
    }

    /// The candidate's name.
    pub fn name(&self) -> &str {
        &self.manifest.name
    }

    /// Produce the executable for `variant`, building it unless the cache already has it.
    pub fn build(&self, variant: &Variant, cache: &BuildCache) -> Result<Build, BuildError> {
        let name = self.name().to_string();
        let io = |detail: String| BuildError::Io {
            candidate: name.clone(),
            detail,
        };
        if let Some(binary) = &self.manifest.binary {
            return self.prebuilt(binary);
        }
        let spec = self
            .manifest
            .build
            .clone()
            .expect("manifest validation guarantees build or binary");
        let started = Instant::now();
        let go_version = go_version().map_err(|detail| BuildError::GoMissing {
            candidate: name.clone(),
            detail,
        })?;

        let mut ldflags = spec.ldflags.clone();
        for (k, v) in &variant.link_x {
            ldflags.push_str(&format!(" -X {k}={v}"));
        }
        let mut tags = spec.tags.clone();
        tags.extend(variant.tags.iter().cloned());
        let mut settings = format!("{go_version}\n{}\n{ldflags}\n{}\n", spec.package, tags.join(","));
        // The framework release is part of the key: the same source built against another
        // release (module graph resolved afresh) is another binary.
        settings.push_str(&format!(
            "framework {}@{}{}\n",
            self.manifest.framework_module,
            self.manifest.framework_version,
            if self.pinned_version.is_some() { " afresh" } else { "" }
        ));
        for file in &variant.overlay {
            let text =
                std::fs::read_to_string(file).map_err(|e| io(format!("reading overlay {}: {e}", file.display())))?;
            settings.push_str(&format!("overlay {}\n{text}\n", file.display()));
        }
        for edit in &variant.edits {
            settings.push_str(&format!("edit {edit:?}\n"));
        }
        let hash = source_hash(&self.dir, &settings).map_err(|e| io(format!("hashing {}: {e}", self.dir.display())))?;
        let label = if variant.label.is_empty() {
            String::new()
        } else {
            format!("-{}", variant.label)
        };
        let stem = format!("{name}{label}-{}", &hash[..16]);
        let bin_dir = self.cache_dir(cache, "bin");
        let binary = bin_dir.join(&stem);
        if binary.is_file() {
            return Ok(Build {
                binary,
                source_hash: hash,
                cached: true,
                took: started.elapsed(),
            });
        }

        let src = self.cache_dir(cache, "src").join(&stem);
        let _ = std::fs::remove_dir_all(&src);
        // The build copy (and the binary being written, inside it) goes if the run is interrupted.
        let _scratch = crate::reaper::scratch_dir(&src).map_err(|e| io(format!("creating {}: {e}", src.display())))?;
        copy_tree(&self.dir, &src).map_err(|e| io(format!("copying sources to {}: {e}", src.display())))?;
        for file in &variant.overlay {
            let name = file
                .file_name()
                .ok_or_else(|| io(format!("overlay {} has no file name", file.display())))?;
            let to = src.join(&spec.package).join(name);
            std::fs::copy(file, &to)
                .map_err(|e| io(format!("copying overlay {} to {}: {e}", file.display(), to.display())))?;
        }
        for edit in &variant.edits {
            edit.apply(&src.join(&spec.package)).map_err(io)?;
        }
        if self.pinned_version.is_some() {
            let resolved = crate::release::resolve_afresh(
                &name,
                &src,
                &self.manifest.framework_module,
                &self.manifest.framework_version,
            );
            if let Err(err) = resolved {
                let _ = std::fs::remove_dir_all(&src);
                return Err(err);
            }
        }
        std::fs::create_dir_all(&bin_dir).map_err(|e| io(format!("creating {}: {e}", bin_dir.display())))?;
        let partial = src.join(format!(".{stem}.partial"));
        let mut cmd = process::go_command(&src);
        cmd.args(["build", "-trimpath"]);
        if !ldflags.trim().is_empty() {
            cmd.args(["-ldflags", ldflags.trim()]);
        }
        if !tags.is_empty() {
            cmd.args(["-tags", &tags.join(",")]);
        }
        cmd.arg("-o").arg(&partial).arg(&spec.package);
        let mut shown = format!(
            "CGO_ENABLED=0 GOTOOLCHAIN=local go build -trimpath -ldflags '{}' -tags '{}' -o <bin> {}",
            ldflags.trim(),
            tags.join(","),
            spec.package
        );
        if self.pinned_version.is_some() {
            shown.push_str(&format!(
                " (module graph resolved afresh for {}@{})",
                self.manifest.framework_module, self.manifest.framework_version
            ));
        }
        let built = run_go(cmd, &name, &bin_dir.join(format!("{stem}.log"))).and_then(|(succeeded, text)| {
            if !succeeded {
                return Err(self.classify_failure(shown, &text));
            }
            std::fs::rename(&partial, &binary)
                .map_err(|e| io(format!("moving the binary into {}: {e}", binary.display())))
        });
        let _ = std::fs::remove_dir_all(&src);
        built?;
        Ok(Build {
            binary,
            source_hash: hash,
            cached: false,
            took: started.elapsed(),
        })
    }

    fn cache_dir(&self, cache: &BuildCache, kind: &str) -> PathBuf {
        cache.root().join(kind)
    }

    fn prebuilt(&self, binary: &Path) -> Result<Build, BuildError> {
        use std::os::unix::fs::PermissionsExt;
        let path = self.dir.join(binary);
        let bad = |problem: &str| BuildError::BadBinary {
            candidate: self.name().into(),
            path: path.clone(),
            problem: problem.into(),
        };
        let meta = std::fs::metadata(&path).map_err(|_| bad("does not exist"))?;
        if !meta.is_file() {
            return Err(bad("is not a file"));
        }
        if meta.permissions().mode() & 0o111 == 0 {
            return Err(bad("is not executable"));
        }
        Ok(Build {
            binary: path,
            source_hash: String::new(),
            cached: true,
            took: Duration::ZERO,
        })
    }

    fn classify_failure(&self, command: String, output: &str) -> BuildError {
        classify_go_failure(
            self.name(),
            &self.manifest.framework_module,
            &self.manifest.framework_version,
            command,
            output,
        )
    }
}

/// Classify a failed `go build` or `go install` of something that needs `module@version`: the
/// proxy refusing that module is [`BuildError::ModuleNotServed`] (a fact about the machine),
/// anything else is [`BuildError::Failed`] with the last lines of Go's output.
pub(crate) fn classify_go_failure(
    name: &str,
    module: &str,
    version: &str,
    command: String,
    output: &str,
) -> BuildError {
    let refusal = [
        "403 Forbidden",
        "404 Not Found",
        "410 Gone",
        "not permitted",
        "not available",
        "no such host",
        // A file:// proxy that lacks the version, and a proxy list that ends before serving it.
        "no such file or directory",
        "module lookup disabled",
    ];
    // A file-based proxy (a `file://` mirror) that lacks the module says so as a missing file.
    let missing_file = |l: &str| l.contains("reading file://") && l.contains("no such file or directory");
    let line = output
        .lines()
        .find(|l| l.contains(module) && (refusal.iter().any(|r| l.contains(r)) || missing_file(l)));
    if let Some(line) = line {
        return BuildError::ModuleNotServed {
            candidate: name.into(),
            module: module.into(),
            version: version.into(),
            detail: line.trim().to_string(),
        };
    }
    let tail: Vec<&str> = output.lines().rev().take(30).collect();
    BuildError::Failed {
        candidate: name.into(),
        command,
        output: tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
    }
}

/// Run a `go` command to completion, keep its combined output in `log` (beside the binary, for
/// whoever debugs a build), and return whether it succeeded with that output.
pub(crate) fn run_go(mut cmd: std::process::Command, owner: &str, log: &Path) -> Result<(bool, String), BuildError> {
    let out = process::output(&mut cmd, timeouts::GO_BUILD).map_err(|e| match e {
        process::RunError::Spawn { source, .. } if source.kind() == std::io::ErrorKind::Interrupted => BuildError::Io {
            candidate: owner.to_string(),
            detail: source.to_string(),
        },
        process::RunError::Spawn { source, .. } => BuildError::GoMissing {
            candidate: owner.to_string(),
            detail: source.to_string(),
        },
        timed_out @ process::RunError::TimedOut { .. } => BuildError::Failed {
            candidate: owner.to_string(),
            command: format!("{cmd:?}"),
            output: timed_out.to_string(),
        },
    })?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::write(log, &text);
    Ok((out.status.success(), text))
}

/// `go version` output, e.g. `go version go1.26.8 linux/amd64`.
pub(crate) fn go_version() -> Result<String, String> {
    let out = process::output(process::go_command(Path::new(".")).arg("version"), timeouts::GO_BUILD)
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// SHA-256 over every file under `dir` (sorted relative path, then contents) and `settings`.
fn source_hash(dir: &Path, settings: &str) -> std::io::Result<String> {
    let mut files = Vec::new();
    collect_files(dir, dir, &mut files)?;
    files.sort();
    let mut hasher = Sha256::new();
    hasher.update(settings.as_bytes());
    for rel in files {
        hasher.update(rel.to_string_lossy().as_bytes());
        hasher.update([0]);
        hasher.update(std::fs::read(dir.join(&rel))?);
        hasher.update([0]);
    }
    Ok(hasher.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

fn collect_files(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            collect_files(root, &path, out)?;
        } else {
            out.push(path.strip_prefix(root).expect("walked from root").to_path_buf());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_changes_with_source_and_settings() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("main.go"), "package main").unwrap();
        let a = source_hash(dir.path(), "s1").unwrap();
        assert_eq!(a, source_hash(dir.path(), "s1").unwrap());
        assert_ne!(a, source_hash(dir.path(), "s2").unwrap());
        std::fs::create_dir(dir.path().join("configs")).unwrap();
        std::fs::write(dir.path().join("configs/.env"), "A=1").unwrap();
        assert_ne!(a, source_hash(dir.path(), "s1").unwrap());
    }

    #[test]
    fn a_refused_or_missing_framework_module_is_not_served() {
        let classify = |output: &str| classify_go_failure("gofr", "gofr.dev", "v1.56.6", "go build".into(), output);
        for output in [
            "main.go:17:2: gofr.dev@v1.56.6: reading https://proxy.golang.org/gofr.dev/@v/v1.56.6.zip: 403 Forbidden",
            "main.go:17:2: gofr.dev@v1.56.6: reading file:///m/gofr.dev/@v/v1.56.6.zip: no such file or directory",
        ] {
            let err = classify(output);
            assert!(err.is_module_not_served(), "{output}: {err}");
            assert!(
                err.to_string().contains(output.trim_start_matches("main.go:17:2: ")),
                "{err}"
            );
        }
        // A missing file that is not the module's is the fixture's own problem.
        let err = classify("main.go:3:1: open /src/configs/x: no such file or directory");
        assert!(!err.is_module_not_served(), "{err}");
    }

    #[test]
    fn missing_directory_and_manifest_are_named() {
        let err = Candidate::load("/nonexistent/conform-candidate")
            .unwrap_err()
            .to_string();
        assert!(err.contains("/nonexistent/conform-candidate does not exist"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let err = Candidate::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("has no candidate.toml"), "{err}");
    }

    #[test]
    fn an_edit_must_match_exactly_once() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("main.go"), "app.Run()\n}\n// zz zz\n").unwrap();
        let edit = |find: &str| SourceEdit {
            file: "main.go".into(),
            find: find.into(),
            replace: "app.Run()\nos.Exit(1)\n}".into(),
        };
        edit("app.Run()\n}").apply(dir.path()).unwrap();
        let text = std::fs::read_to_string(dir.path().join("main.go")).unwrap();
        assert_eq!(text, "app.Run()\nos.Exit(1)\n}\n// zz zz\n");
        let missing = edit("app.Start()").apply(dir.path()).unwrap_err();
        assert!(missing.contains("found 0 times"), "{missing}");
        let twice = edit("zz").apply(dir.path()).unwrap_err();
        assert!(twice.contains("found 2 times"), "{twice}");
        let nofile = SourceEdit {
            file: "gone.go".into(),
            ..edit("zz")
        }
        .apply(dir.path())
        .unwrap_err();
        assert!(nofile.contains("gone.go"), "{nofile}");
    }
}
