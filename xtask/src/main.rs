//! `cargo xtask`: the project's entry points, each doing its own set-up on a fresh machine.
//!
//! - `cargo xtask certify` — the main job: certify the reference candidates into `reports/`.
//! - `cargo xtask test`    — `cargo fmt --check` and `clippy -D warnings`, then the whole suite,
//!   exactly what CI runs (its set-up also builds the OpenTelemetry Collector once per machine,
//!   see [`collector`], and the docker provider's images when a Docker engine answers).
//! - `cargo xtask setup`   — only the set-up: what a fresh machine lacks (from Debian: Postgres
//!   server binaries, Chromium for the HTML report test, xmllint for the JUnit schema check; and
//!   a Go check).
//! - `cargo xtask images`  — the docker provider's local images (`images/`), each built only when
//!   `docker image inspect` does not find it: no registry is needed.
//! - `cargo xtask stress`  — full certifications interrupted at 20 random moments (10 per
//!   provider), each required to leave no process, container or directory (`tests/interrupts.rs`).
//! - `cargo xtask releases` — both reference candidates certified on the previous release of
//!   their framework and diffed against the pinned one, into `reports/releases/` (see [`releases`]).
//! - `cargo xtask bench`   — measured figures (service start times for both providers, the
//!   collector's build, ready and round-trip times, certification wall time).
//!
//! Every Go build under these commands gets its framework modules from `../shared/goproxy`, a
//! file-based module proxy, when that directory exists beside the checkout: it goes in front of
//! whatever `GOPROXY` Go would use otherwise (see [`module_source`]).
//!
//! Plain std, no dependencies: this must build before anything else works.

#![allow(
    clippy::disallowed_methods,
    reason = "xtask is the developer's shell: it runs cargo, go, apt-get and docker with the user's own environment, as a person at the terminal would"
)]

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

mod releases;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (task, rest) = match args.split_first() {
        Some((t, r)) => (t.as_str(), r.to_vec()),
        None => ("help", Vec::new()),
    };
    let result = match task {
        "setup" => setup(),
        "test" => {
            let mut clock = Phases::default();
            clock
                .time("set-up", setup)
                .and_then(|()| clock.time("lint", lint))
                .and_then(|()| clock.time("images", images_if_docker))
                .and_then(|()| clock.time("collector", collector))
                .and_then(|()| test(&rest, &mut clock))
        }
        "images" => images(),
        "certify" => setup().and_then(|()| certify(&rest)),
        "bench" => setup().and_then(|()| bench(&rest)),
        "releases" => setup().and_then(|()| releases::releases(&rest)),
        "stress" => setup().and_then(|()| images_if_docker()).and_then(|()| stress(&rest)),
        _ => {
            eprintln!(
                "usage: cargo xtask <setup|test|stress|images|certify|releases|bench> [args]\n\n{}",
                HELP
            );
            return ExitCode::from(64);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure { message, code }) => {
            if !message.is_empty() {
                eprintln!("xtask: {message}");
            }
            ExitCode::from(code)
        }
    }
}

const HELP: &str = "  setup    install what a fresh machine lacks (Debian: postgresql, chromium, libxml2-utils)
  test     setup, images (when a Docker engine answers), the OpenTelemetry Collector (cached), then the whole suite (what CI runs)
  stress   setup, images, then interrupt full certifications at 20 random moments (10 per provider) and
           require that nothing is left (tests/interrupts.rs; the test command runs 2 per provider)
  images   build the docker provider's local images that `docker image inspect` does not find
  certify  setup, then certify the reference candidates into reports/ (extra args go to `conform certify`)
  releases setup, then certify both reference candidates on the previous framework release and diff them
           against the pinned one into reports/releases/ (args: gofastr and/or gofr, default both)
  bench    setup, then measure service start times (native and container Postgres; the collector: build,
           cached, start to ready, span round trip) and certification wall time";

struct Failure {
    message: String,
    code: u8,
}

fn fail(message: impl Into<String>) -> Failure {
    Failure {
        message: message.into(),
        code: 1,
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

/// Cargo's target directory: `CARGO_TARGET_DIR` when set (a shared build cache), else `target/`.
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(|d| root().join(d))
        .unwrap_or_else(|| root().join("target"))
}

/// The `GOPROXY` for every Go build run from here: `file://<abs>/shared/goproxy` (the module
/// mirror beside the checkout, holding both frameworks' releases) in front of the proxy Go would
/// use otherwise (`go env GOPROXY`, which honours the user's own setting). `None` when there is no
/// mirror, or the user's `GOPROXY` already names it: then Go's own setting stands untouched.
/// Computed once and announced once.
fn module_source() -> Option<&'static str> {
    static SOURCE: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    SOURCE
        .get_or_init(|| {
            let mirror = root().parent()?.join("shared/goproxy").canonicalize().ok()?;
            if !mirror.is_dir() {
                return None;
            }
            let out = command("go")
                .args(["env", "GOPROXY"])
                .env("GOTOOLCHAIN", "local")
                .output()
                .ok()?;
            let base = String::from_utf8_lossy(&out.stdout).trim().to_string();
            let front = format!("file://{}", mirror.display());
            if base.split([',', '|']).any(|p| p == front) {
                return None;
            }
            let proxy = if base.is_empty() {
                front
            } else {
                format!("{front},{base}")
            };
            eprintln!("xtask: Go modules from GOPROXY={proxy}");
            Some(proxy)
        })
        .as_deref()
}

/// `cmd` with the local toolchain and the module source of [`module_source`].
fn go_env(cmd: &mut Command) -> &mut Command {
    cmd.env("GOTOOLCHAIN", "local");
    if let Some(proxy) = module_source() {
        cmd.env("GOPROXY", proxy);
    }
    cmd
}

/// Run a command in the workspace root, streaming its output; fail with its exit code.
/// `cargo xtask stress`: `tests/interrupts.rs` with 10 moments per provider (20 in all) instead
/// of the test command's 2; extra arguments go to the test binary (a trial filter).
fn stress(rest: &[String]) -> Result<(), Failure> {
    let moments = std::env::var("CONFORM_INTERRUPTS").unwrap_or_else(|_| "10".into());
    run(command("cargo")
        .args(["test", "--locked", "--test", "interrupts", "--"])
        .args(rest)
        .env("CONFORM_INTERRUPTS", moments))
}

/// A command of the developer's shell: it inherits the user's environment, as a person at the
/// terminal would (xtask's one place a command is created).
pub(crate) fn command(program: impl AsRef<std::ffi::OsStr>) -> Command {
    Command::new(program)
}

/// Formatting and lints, before any test: `cargo fmt --check` and clippy with every warning an
/// error, under the one workspace configuration (`clippy.toml` at the root).
fn lint() -> Result<(), Failure> {
    run(command("cargo").args(["fmt", "--all", "--check"]))?;
    run(command("cargo").args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--locked",
        "--",
        "-D",
        "warnings",
    ]))
}

fn run(cmd: &mut Command) -> Result<(), Failure> {
    let shown = format!("{cmd:?}");
    let status = go_env(cmd)
        .current_dir(root())
        .status()
        .map_err(|e| fail(format!("cannot run {shown}: {e}")))?;
    if status.success() {
        Ok(())
    } else {
        Err(Failure {
            message: format!("{shown} failed ({status})"),
            code: status.code().unwrap_or(1).clamp(1, 255) as u8,
        })
    }
}

fn have(program: &str) -> bool {
    command("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn postgres_installed() -> bool {
    std::fs::read_dir("/usr/lib/postgresql").is_ok_and(|mut d| {
        d.any(|e| e.is_ok_and(|e| e.path().join("bin/initdb").is_file() && e.path().join("bin/postgres").is_file()))
    }) || (have("initdb") && have("postgres"))
}

fn is_root() -> bool {
    command("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// What a fresh Debian machine lacks, each as (is it there?, Debian package, what it is for).
fn needed() -> Vec<(bool, &'static str, &'static str)> {
    vec![
        (
            postgres_installed(),
            "postgresql",
            "Postgres server binaries for the native provider",
        ),
        (
            have("chromium"),
            "chromium",
            "the headless browser the HTML report test renders in",
        ),
        (
            have("xmllint"),
            "libxml2-utils",
            "xmllint, which validates the JUnit report against its schema",
        ),
    ]
}

/// Install what a fresh machine lacks. Idempotent: each step checks first.
fn setup() -> Result<(), Failure> {
    if !have("go") {
        return Err(fail(
            "Go is not installed: conform builds candidates with `go build` (Go 1.26 or newer)",
        ));
    }
    let missing: Vec<(&str, &str)> = needed()
        .into_iter()
        .filter(|(present, _, _)| !present)
        .map(|(_, package, why)| (package, why))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let packages: Vec<&str> = missing.iter().map(|(p, _)| *p).collect();
    if !is_root() {
        return Err(fail(format!(
            "missing Debian packages: {}; install them as root (apt-get install {})",
            missing
                .iter()
                .map(|(p, why)| format!("{p} ({why})"))
                .collect::<Vec<_>>()
                .join(", "),
            packages.join(" ")
        )));
    }
    for (package, why) in &missing {
        eprintln!("xtask: installing Debian's {package}: {why}");
    }
    run(command("apt-get").arg("update").arg("-q"))?;
    run(command("apt-get")
        .args(["install", "-y", "-q", "--no-install-recommends"])
        .args(&packages)
        .env("DEBIAN_FRONTEND", "noninteractive"))?;
    Ok(())
}

/// Build the OpenTelemetry Collector (`conform collector`: the builder manifest in
/// fixtures/collector, cached by its hash in the conform cache), once, before the tests: a
/// cold build takes minutes, and without this the first test binary to need it would pay that
/// inside its own time while others wait on the build lock. A failure is reported and the suite
/// still runs: the collector's own tests then fail with the build's message.
fn collector() -> Result<(), Failure> {
    let started = Instant::now();
    let result = run(command("cargo")
        .args(["run", "--locked", "--quiet", "--bin", "conform", "--", "collector"])
        .env("CGO_ENABLED", "0"));
    match result {
        Ok(()) => eprintln!(
            "xtask: OpenTelemetry Collector ready ({:.1} s)",
            started.elapsed().as_secs_f64()
        ),
        Err(Failure { message, .. }) => {
            eprintln!("xtask: the OpenTelemetry Collector could not be built ({message}); its tests will fail")
        }
    }
    Ok(())
}

/// Wall time per phase of `cargo xtask test`, printed as one line before the closing summary:
/// set-up, images, collector, compiling, then each test binary by name (from cargo's `Running`
/// lines), so a slow CI run says where its time went.
#[derive(Default)]
struct Phases {
    done: Vec<(String, f64)>,
}

impl Phases {
    fn time(&mut self, name: &str, phase: impl FnOnce() -> Result<(), Failure>) -> Result<(), Failure> {
        let started = Instant::now();
        let result = phase();
        self.add(name, started.elapsed().as_secs_f64());
        result
    }

    fn add(&mut self, name: &str, secs: f64) {
        self.done.push((name.to_string(), secs));
    }

    fn print(&self) {
        let total: f64 = self.done.iter().map(|(_, s)| s).sum();
        let parts: Vec<String> = self
            .done
            .iter()
            .filter(|(_, s)| *s >= 0.05)
            .map(|(n, s)| format!("{n} {}", minutes(*s)))
            .collect();
        eprintln!("xtask: wall time {} = {}", minutes(total), parts.join(", "));
    }
}

fn minutes(secs: f64) -> String {
    if secs >= 60.0 {
        format!("{}m{:02}s", (secs / 60.0) as u64, (secs % 60.0) as u64)
    } else {
        format!("{secs:.1}s")
    }
}

/// The test binary a cargo `Running` line starts: `tests/conformance.rs` -> `conformance`,
/// `unittests src/lib.rs (target/debug/deps/conform_harness-...)` -> `conform_harness (unit)`.
fn test_binary(line: &str) -> Option<String> {
    let rest = line.trim_start().strip_prefix("Running ")?;
    let (source, target) = rest.split_once(" (").unwrap_or((rest, ""));
    let source = source.trim();
    if let Some(unit) = source.strip_prefix("unittests ") {
        let crate_name = target
            .rsplit('/')
            .next()
            .unwrap_or(unit)
            .split('-')
            .next()
            .unwrap_or(unit);
        return Some(format!("{crate_name} (unit)"));
    }
    let stem = Path::new(source).file_stem()?.to_string_lossy().to_string();
    Some(stem)
}

/// Run the whole suite, streaming its output, then close with one plain summary line
/// (`tests: N passed, N failed, N skipped`) summed over every test binary, so the total is the
/// last thing printed rather than the count of whichever binary happened to run last.
fn test(rest: &[String], clock: &mut Phases) -> Result<(), Failure> {
    use std::io::{BufRead, BufReader};
    let mut cmd = command("cargo");
    cmd.args(["test", "--workspace", "--locked", "--no-fail-fast"])
        .args(rest)
        .current_dir(root())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = go_env(&mut cmd)
        .spawn()
        .map_err(|e| fail(format!("cannot run cargo test: {e}")))?;
    let (mut passed, mut failed, mut ignored) = (0u64, 0u64, 0u64);
    let stdout = child.stdout.take().expect("stdout is piped");
    // Cargo announces each test binary on stderr (`Running tests/conformance.rs (...)`): passed
    // through as it comes, and timed from one announcement to the next (compiling before the first).
    let stderr = child.stderr.take().expect("stderr is piped");
    let started = Instant::now();
    let announcer = std::thread::spawn(move || {
        let mut starts = Vec::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("{line}");
            if let Some(binary) = test_binary(&line) {
                starts.push((binary, started.elapsed().as_secs_f64()));
            }
        }
        starts
    });
    for line in BufReader::new(stdout).lines() {
        let line = line.map_err(|e| fail(format!("reading cargo test output: {e}")))?;
        println!("{line}");
        if let Some(rest) = line.strip_prefix("test result: ") {
            let count = |word: &str| -> u64 {
                rest.split(';')
                    .find_map(|part| {
                        part.trim()
                            .trim_start_matches("ok. ")
                            .trim_start_matches("FAILED. ")
                            .strip_suffix(word)
                    })
                    .and_then(|n| n.trim().parse().ok())
                    .unwrap_or(0)
            };
            passed += count(" passed");
            failed += count(" failed");
            ignored += count(" ignored");
        }
    }
    let status = child.wait().map_err(|e| fail(format!("waiting for cargo test: {e}")))?;
    let ended = started.elapsed().as_secs_f64();
    let starts = announcer.join().unwrap_or_default();
    let mut from = ("compile".to_string(), 0.0);
    for (binary, at) in starts {
        let (name, since) = std::mem::replace(&mut from, (binary, at));
        clock.add(&name, at - since);
    }
    clock.add(&from.0, ended - from.1);
    clock.print();
    println!("tests: {passed} passed, {failed} failed, {ignored} skipped");
    if status.success() {
        Ok(())
    } else {
        Err(Failure {
            message: format!("cargo test failed ({status})"),
            code: status.code().unwrap_or(1).clamp(1, 255) as u8,
        })
    }
}

/// The local images: tag and the script that builds it (relative to the workspace root).
const IMAGES: &[(&str, &str)] = &[("conform/postgres:15", "images/postgres/build.sh")];

/// `Ok(server version)` when a Docker engine answers, else what `docker info` said.
fn docker_engine() -> Result<String, String> {
    let out = command("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .output()
        .map_err(|e| format!("cannot run the docker CLI: {e}"))?;
    let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if out.status.success() && !version.is_empty() {
        Ok(version)
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

/// Build every local image that is missing. Idempotent: an image the engine has is skipped.
fn images() -> Result<(), Failure> {
    let version = docker_engine().map_err(|said| {
        fail(format!(
            "no Docker engine answers (DOCKER_HOST={}): {said}",
            std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".into())
        ))
    })?;
    for (tag, script) in IMAGES {
        let present = command("docker")
            .args(["image", "inspect", "--format", "{{.Id}}", tag])
            .output()
            .is_ok_and(|o| o.status.success());
        if present {
            eprintln!("xtask: image {tag} is present (skipped)");
            continue;
        }
        if !have("debootstrap") {
            if !is_root() {
                return Err(fail(format!(
                    "building {tag} needs debootstrap (and root); install Debian's `debootstrap`"
                )));
            }
            eprintln!("xtask: installing Debian's debootstrap (to build {tag})");
            run(command("apt-get").arg("update").arg("-q"))?;
            run(command("apt-get")
                .args(["install", "-y", "-q", "--no-install-recommends", "debootstrap"])
                .env("DEBIAN_FRONTEND", "noninteractive"))?;
        }
        eprintln!("xtask: building {tag} with {script} (engine {version})");
        let started = Instant::now();
        run(command("bash").arg(root().join(script)).arg(tag))?;
        eprintln!("xtask: built {tag} in {:.1} s", started.elapsed().as_secs_f64());
    }
    Ok(())
}

/// `images` when a Docker engine answers; otherwise say why the docker provider's tests will not
/// find their images (they fail under CI=true and skip elsewhere, saying so).
fn images_if_docker() -> Result<(), Failure> {
    match docker_engine() {
        Ok(_) => images(),
        Err(said) => {
            eprintln!("xtask: no Docker engine answers ({said}); not building images");
            Ok(())
        }
    }
}

fn certify(rest: &[String]) -> Result<(), Failure> {
    let mut cmd = command("cargo");
    cmd.args(["run", "--release", "--locked", "--bin", "conform", "--", "certify"]);
    // Without a candidate directory among the arguments (flag values such as `--out DIR` are not
    // candidates), certify both reference candidates.
    if !rest.iter().any(|a| root().join(a).join("candidate.toml").is_file()) {
        cmd.args(["fixtures/candidates/gofastr", "fixtures/candidates/gofr"]);
    }
    cmd.args(rest);
    // conform's exit 1 is a verdict, not a broken run: some clause failed (the reference
    // candidates have documented fails, each in fixtures/expected.toml). Say that, keep the code.
    run(&mut cmd).map_err(|failure| match failure.code {
        1 => Failure {
            message: "certification finished: not certified (at least one clause failed; the summary above and \
                      the reports name each one)"
                .into(),
            code: 1,
        },
        _ => failure,
    })
}

fn bench(rest: &[String]) -> Result<(), Failure> {
    run(command("cargo").args(["build", "--release", "--locked", "--bin", "conform"]))?;
    run(command("cargo").args([
        "build",
        "--release",
        "--locked",
        "-p",
        "conform-harness",
        "--example",
        "bench",
    ]))?;
    println!("== services (harness/examples/bench.rs)");
    run(command(target_dir().join("release/examples/bench")).args(rest))?;
    println!("\n== certification wall time (conform certify, release build)");
    for candidate in ["gofastr", "gofr"] {
        let start = Instant::now();
        let status = go_env(&mut command(target_dir().join("release/conform")))
            .args([
                "certify",
                &format!("fixtures/candidates/{candidate}"),
                "--out",
                "target/bench-reports",
            ])
            .current_dir(root())
            .status()
            .map_err(|e| fail(format!("running conform: {e}")))?;
        println!(
            "{candidate}: {:.1} s (exit {})",
            start.elapsed().as_secs_f64(),
            status.code().unwrap_or(-1)
        );
    }
    Ok(())
}
