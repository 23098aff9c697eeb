//! `cargo xtask releases`: certify both reference candidates on the previous release of their
//! framework and diff that against the pinned release, into `reports/releases/`.
//!
//! One command so the directory can be regenerated whenever conform or `conform diff` changes:
//! for each reference candidate it runs `conform certify` on the manifest's pin (JSON kept under
//! `target/releases/`, only an input to the diff), then `conform certify --framework-version
//! <previous>` (JSON and Markdown copied into `reports/releases/`), then `conform diff previous pinned`
//! (the upgrade's changes, written as Markdown). A certification's own verdict (exit 1 or 2) and
//! a diff that finds changes (exit 1) are results, not failures of this task; a usage error or an
//! interrupted run is.

use std::path::Path;
use std::process::Command;

use crate::{Failure, fail, go_env, root, run, target_dir};

/// The reference candidates and the release before each one's pin.
const PREVIOUS: [(&str, &str); 2] = [("gofastr", "v0.66.0"), ("gofr", "v1.55.0")];

/// Regenerate `reports/releases/` (the candidates named in `rest`, else both).
pub(crate) fn releases(rest: &[String]) -> Result<(), Failure> {
    run(crate::command("cargo").args(["build", "--release", "--locked", "--bin", "conform"]))?;
    let out = root().join("reports/releases");
    let scratch = target_dir().join("releases");
    for dir in [&out, &scratch] {
        std::fs::create_dir_all(dir).map_err(|e| fail(format!("creating {}: {e}", dir.display())))?;
    }
    for (name, previous) in PREVIOUS {
        if !rest.is_empty() && !rest.iter().any(|r| r == name) {
            continue;
        }
        let candidate = format!("fixtures/candidates/{name}");
        let pinned_json = scratch.join(format!("{name}-pinned.json"));
        let previous_json = out.join(format!("{name}-{previous}.json"));
        let previous_md = out.join(format!("{name}-{previous}.md"));
        println!("== {name}: the manifest's pin");
        certify(&[&candidate, "--format", "json", "--out", path(&pinned_json)?])?;
        println!("== {name}: {previous}");
        // One run in the default format writes every format; JSON and Markdown are kept.
        let run_dir = scratch.join(format!("{name}-{previous}"));
        certify(&[&candidate, "--framework-version", previous, "--out", path(&run_dir)?])?;
        for (ext, to) in [("json", &previous_json), ("md", &previous_md)] {
            let from = run_dir.join(format!("{name}.{ext}"));
            std::fs::copy(&from, to)
                .map_err(|e| fail(format!("copying {} to {}: {e}", from.display(), to.display())))?;
        }
        let diff = conform()
            .args(["diff", path(&previous_json)?, path(&pinned_json)?])
            .output()
            .map_err(|e| fail(format!("running conform diff: {e}")))?;
        if !matches!(diff.status.code(), Some(0 | 1)) {
            return Err(fail(format!(
                "conform diff {} {} failed ({}): {}",
                previous_json.display(),
                pinned_json.display(),
                diff.status,
                String::from_utf8_lossy(&diff.stderr)
            )));
        }
        let text = format!(
            "# {name}: {previous} -> the pinned release\n\n\
             `conform diff reports/releases/{name}-{previous}.json <pinned run>.json` \
             (regenerate with `cargo xtask releases`):\n\n```text\n{}```\n",
            String::from_utf8_lossy(&diff.stdout)
        );
        let diff_md = out.join(format!("{name}-{previous}-to-pinned.diff.md"));
        std::fs::write(&diff_md, text).map_err(|e| fail(format!("writing {}: {e}", diff_md.display())))?;
        println!("xtask: wrote {}", diff_md.display());
    }
    Ok(())
}

fn conform() -> Command {
    let mut cmd = crate::command(target_dir().join("release/conform"));
    go_env(&mut cmd).current_dir(root());
    cmd
}

/// Run `conform certify ARGS --no-progress`; exit 0, 1 and 2 are verdicts, anything else fails.
fn certify(args: &[&str]) -> Result<(), Failure> {
    let status = conform()
        .arg("certify")
        .args(args)
        .arg("--no-progress")
        .status()
        .map_err(|e| fail(format!("running conform certify {}: {e}", args.join(" "))))?;
    match status.code() {
        Some(0..=2) => Ok(()),
        _ => Err(fail(format!("conform certify {} failed ({status})", args.join(" ")))),
    }
}

fn path(p: &Path) -> Result<&str, Failure> {
    p.to_str().ok_or_else(|| fail(format!("{} is not UTF-8", p.display())))
}
