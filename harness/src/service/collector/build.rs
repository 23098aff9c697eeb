//! Building the real OpenTelemetry Collector from its builder manifest, once per machine.
//!
//! The collector is not installable here as a binary (services notes §4), so the harness builds
//! it the way the project documents: the collector builder (`ocb`, the Go module
//! `go.opentelemetry.io/collector/cmd/builder`) reads a manifest of pinned components, generates
//! a `main` package and compiles it. The builder itself is a [`tool`](crate::tool) (built with
//! `go install` at [`BUILDER_VERSION`], cached like any tool); the collector it produces is kept
//! in the build cache under a hash of the manifest text, the builder version and the Go version,
//! so a cold machine pays a few minutes once and every later run, test or process finds it.
//!
//! Concurrent builders (two test binaries of one `cargo test`) are serialised with an exclusive
//! `flock` on a lock file in the cache directory: the second waits for the first and then finds
//! the binary. The build runs in a private directory and the binary is renamed into place, so a
//! half-written collector is never seen under its final name.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::fcntl::{Flock, FlockArg};

use crate::candidate::{BuildCache, BuildError, classify_go_failure, go_version, run_go};
use crate::{process, tool};

/// The collector builder release; every component in the manifest is pinned to the same core
/// release (the builder refuses mixed core versions). Newer builders are listed by the proxy here
/// but their modules are refused (see the manifest's header).
pub const BUILDER_VERSION: &str = "v0.162.0";

/// The builder's module (and package).
const BUILDER_MODULE: &str = "go.opentelemetry.io/collector/cmd/builder";

/// The core collector modules: a refusal of any of them is "module not served".
const CORE_MODULE: &str = "go.opentelemetry.io/collector";

/// The distribution name in the manifest (`dist.name`): the file the builder writes.
const DIST_NAME: &str = "otelcol-conform";

/// Who the build is for, in error messages.
const OWNER: &str = "the OpenTelemetry Collector";

/// The manifest committed with the harness, relative to the workspace root.
pub const MANIFEST: &str = "fixtures/collector/builder-config.yaml";

/// A built collector executable.
#[derive(Debug, Clone)]
pub struct CollectorBinary {
    /// Absolute path of the executable.
    pub binary: PathBuf,
    /// The builder release it was built with.
    pub builder_version: &'static str,
    /// The first 16 hex digits of the cache key (manifest, builder and Go version).
    pub key: String,
    /// True when the binary came from the cache.
    pub cached: bool,
    /// Time spent (near zero when cached).
    pub took: Duration,
}

impl CollectorBinary {
    /// `otelcol-conform (builder v0.162.0, manifest <key>)`, as reports record it.
    pub fn describe(&self) -> String {
        format!("{DIST_NAME} (builder {}, build {})", self.builder_version, self.key)
    }
}

/// The committed manifest, found from the workspace root this crate was compiled in (or
/// `CONFORM_COLLECTOR_MANIFEST`, for a conform binary run away from its source tree).
pub fn default_manifest() -> PathBuf {
    std::env::var_os("CONFORM_COLLECTOR_MANIFEST")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let harness = Path::new(env!("CARGO_MANIFEST_DIR"));
            harness.parent().unwrap_or(harness).join(MANIFEST)
        })
}

/// Build the collector described by `manifest` into `cache`, or return the cached binary.
///
/// This blocks for the length of a builder run (minutes on a cold module cache): call it from
/// `tokio::task::spawn_blocking` in async code.
pub fn build(manifest: &Path, cache: &BuildCache) -> Result<CollectorBinary, BuildError> {
    let started = Instant::now();
    let io = |detail: String| BuildError::Io {
        candidate: OWNER.to_string(),
        detail,
    };
    let text = std::fs::read_to_string(manifest)
        .map_err(|e| io(format!("reading the builder manifest {}: {e}", manifest.display())))?;
    let go = go_version().map_err(|detail| BuildError::GoMissing {
        candidate: OWNER.to_string(),
        detail,
    })?;
    let key = tool::sha256_hex(format!("{go}\n{BUILDER_VERSION}\n{text}").as_bytes())[..16].to_string();
    let dir = cache.root().join("collector");
    let binary = dir.join(format!("{DIST_NAME}-{key}"));
    let found = |cached: bool| CollectorBinary {
        binary: binary.clone(),
        builder_version: BUILDER_VERSION,
        key: key.clone(),
        cached,
        took: started.elapsed(),
    };
    if binary.is_file() {
        return Ok(found(true));
    }
    std::fs::create_dir_all(&dir).map_err(|e| io(format!("creating {}: {e}", dir.display())))?;
    let lock_path = dir.join(".build.lock");
    let lock_file = File::create(&lock_path).map_err(|e| io(format!("creating {}: {e}", lock_path.display())))?;
    // Blocks while another process builds; released when `_lock` drops.
    let _lock = Flock::lock(lock_file, FlockArg::LockExclusive)
        .map_err(|(_, e)| io(format!("locking {}: {e}", lock_path.display())))?;
    if binary.is_file() {
        return Ok(found(true));
    }

    let builder = tool::build(OWNER, BUILDER_MODULE, BUILDER_VERSION, BUILDER_MODULE, &[], cache)?;
    let (work, _reaped) = crate::reaper::temp_dir(
        tempfile::Builder::new().prefix(&format!(".{DIST_NAME}-partial-")),
        Some(&dir),
    )
    .map_err(|e| io(format!("creating a build directory under {}: {e}", dir.display())))?;
    let config = work.path().join("builder-config.yaml");
    std::fs::write(&config, &text).map_err(|e| io(format!("writing {}: {e}", config.display())))?;
    // The builder makes a temp directory for a default output path it never uses, and leaves it
    // behind; a private TMPDIR inside the build directory goes with it.
    let tmp = work.path().join("tmp");
    std::fs::create_dir(&tmp).map_err(|e| io(format!("creating {}: {e}", tmp.display())))?;
    let mut cmd = process::toolchain_command(&builder.binary, work.path());
    cmd.env("TMPDIR", &tmp).arg("--config").arg(&config);
    let shown = format!(
        "CGO_ENABLED=0 GOTOOLCHAIN=local {BUILDER_MODULE}@{BUILDER_VERSION} --config {}",
        manifest.display()
    );
    let (succeeded, output) = run_go(cmd, OWNER, &dir.join(format!("{DIST_NAME}-{key}.log")))?;
    if !succeeded {
        return Err(classify_go_failure(OWNER, CORE_MODULE, BUILDER_VERSION, shown, &output));
    }
    // `dist.output_path` in the manifest is relative to the builder's working directory.
    let built = work.path().join("dist").join(DIST_NAME);
    std::fs::rename(&built, &binary).map_err(|e| {
        io(format!(
            "moving the collector {} into {}: {e}",
            built.display(),
            binary.display()
        ))
    })?;
    Ok(found(false))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The builder refuses a manifest whose core components are not its own release, and the
    /// cache key only sees the text: keep the constant and the manifest in step.
    #[test]
    fn manifest_pins_the_builder_release() {
        let text = std::fs::read_to_string(default_manifest()).expect("the collector manifest is committed");
        let pins: Vec<&str> = text
            .lines()
            .filter_map(|l| l.trim().strip_prefix("- gomod: "))
            .filter(|l| !l.contains("/confmap/provider/"))
            .collect();
        assert!(
            pins.len() >= 4,
            "receiver, exporters and extension are pinned: {pins:?}"
        );
        for pin in pins {
            assert!(
                pin.ends_with(&format!(" {BUILDER_VERSION}")),
                "{pin:?} is not pinned to the builder release {BUILDER_VERSION}"
            );
        }
        assert!(text.contains(&format!("name: {DIST_NAME}")));
        assert!(text.contains("output_path: ./dist"));
    }
}
