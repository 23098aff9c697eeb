//! Other executables a scenario may need besides the reference build: the candidate built as a
//! variant (a schema version, later a mutant), and tools built from the framework module the
//! candidate pins (the `gofastr` CLI). Each is built at most once per process and cached on
//! disk, and each run of a tool is recorded like a candidate launch.

use std::sync::Arc;
use std::time::Duration;

use harness::candidate::{Build, BuildCache, Variant};
use harness::evidence::{LaunchEvidence, OUTPUT_TAIL_LINES};
use harness::process::Launch;
use harness::redact;
use harness::running::Exit;
use harness::tool::{Tool, ToolRun};
use harness::verdict::Failure;

use super::{App, Attached, Cx, Spec};

impl Cx {
    /// The candidate built as `variant` (a schema version, a mutant). Each variant is built at
    /// most once per process, on a blocking thread, and cached on disk like the reference build;
    /// concurrent scenarios asking for the same variant wait for the one build. A variant that
    /// cannot be built is a harness error: without it the scenario cannot judge.
    pub async fn build_variant(&self, variant: &Variant) -> Result<Build, Failure> {
        type Key = (std::path::PathBuf, Variant);
        type Cell = Arc<tokio::sync::OnceCell<Result<Build, String>>>;
        static BUILDS: std::sync::OnceLock<std::sync::Mutex<std::collections::HashMap<Key, Cell>>> =
            std::sync::OnceLock::new();
        let variant = &self.target.variant.with(variant);
        let key = (self.target.candidate.dir.clone(), variant.clone());
        let cell = BUILDS
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(key)
            .or_default()
            .clone();
        let built = cell
            .get_or_init(|| {
                let candidate = self.target.candidate.clone();
                let variant = variant.clone();
                async move {
                    tokio::task::spawn_blocking(move || {
                        candidate
                            .build(&variant, &harness::candidate::BuildCache::from_env())
                            .map_err(|e| e.to_string())
                    })
                    .await
                    .unwrap_or_else(|e| Err(format!("the build task failed: {e}")))
                }
            })
            .await;
        built
            .clone()
            .map_err(|e| Failure::harness(format!("building the {:?} variant: {e}", variant.label)))
    }

    /// Start the candidate built as `variant`, as `spec` says. Does not wait for anything.
    pub async fn start_variant(&mut self, spec: Spec, variant: &Variant) -> Result<App, Failure> {
        let build = self.build_variant(variant).await?;
        self.start_program(&build.binary, spec)
    }

    /// Like [`Cx::boot_with`], with the candidate built as `variant`.
    pub async fn boot_variant(
        &mut self,
        db: Option<&Attached>,
        variant: &Variant,
        adjust: impl Fn(&mut Spec) -> Result<(), Failure>,
    ) -> Result<App, Failure> {
        let build = self.build_variant(variant).await?;
        self.boot_program(&build.binary, db, adjust).await
    }

    /// The program at `package` (a path inside the candidate's framework module, e.g.
    /// `cmd/gofastr`), built from the module version the candidate pins and cached like a
    /// candidate build. A tool that cannot be built is a harness error.
    pub async fn framework_tool(&self, package: &str) -> Result<Tool, Failure> {
        let manifest = &self.target.candidate.manifest;
        let owner = manifest.name.clone();
        let module = manifest.framework_module.clone();
        let version = manifest.framework_version.clone();
        let package = format!("{module}/{package}");
        // The candidate's own go.sum vouches for the framework module (no checksum database does).
        let sums = harness::tool::sums_for(&self.target.candidate.dir.join("go.sum"), &module, &version);
        tokio::task::spawn_blocking(move || {
            harness::tool::build(&owner, &module, &version, &package, &sums, &BuildCache::from_env())
        })
        .await
        .map_err(|e| Failure::harness(format!("the tool build task failed: {e}")))?
        .map_err(|e| Failure::harness(e.to_string()))
    }

    /// Run a tool once to completion (at most `ceiling`), recorded in the evidence like a
    /// candidate launch: command line, redacted environment, exit and output tail.
    pub async fn run_tool(&mut self, launch: &Launch, ceiling: Duration) -> Result<ToolRun, Failure> {
        let run = harness::tool::run(launch, ceiling)
            .await
            .map_err(|e| Failure::harness(e.to_string()))?;
        self.record_tool_run(&run);
        Ok(run)
    }

    /// Keep a tool run made outside [`Cx::run_tool`] (for example one that ran concurrently with
    /// a candidate) in the evidence.
    pub fn record_tool_run(&mut self, run: &ToolRun) {
        let mut tail: Vec<String> = run
            .stdout
            .lines()
            .map(|l| format!("out: {l}"))
            .chain(run.stderr.lines().map(|l| format!("err: {l}")))
            .map(|l| redact::text(&l))
            .collect();
        let skip = tail.len().saturating_sub(OUTPUT_TAIL_LINES);
        tail.drain(..skip);
        self.evidence.launches.push(LaunchEvidence {
            launch: run.record.clone(),
            exit: Some(Exit {
                status: run.status,
                after: run.took,
                killed_after_grace: false,
            }),
            output_tail: tail,
        });
    }
}
