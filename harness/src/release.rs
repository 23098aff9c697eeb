//! Building a candidate against another release of its framework (`certify --framework-version`).
//!
//! A candidate's `go.mod` is pinned for one release: its indirect requirements are that release's
//! dependency graph. Editing only the framework's line and running `go mod tidy` keeps every
//! newer indirect version (the minimal version selection never goes down), and an older release
//! then meets dependencies whose interfaces moved on (GoFr v1.55.0 against v1.56.6's graph:
//! `*MockRedis does not implement Redis (missing method ReplicaOf)`). So the graph is resolved
//! afresh for the asked release, in the build's copy of the source only: keep the candidate's own
//! direct requirements, drop the indirect ones, require the framework at the asked version, and
//! let `go mod tidy` choose the rest. `go.sum` is kept: the framework module is verified against
//! its lines (the candidates carry several releases' lines), every other module through the
//! checksum database as usual.

use std::path::Path;

use crate::candidate::{BuildError, classify_go_failure, run_go};
use crate::process;

/// Check that `version` is a Go module version of a release: `v` and a semantic version
/// (`vMAJOR.MINOR.PATCH`, optionally `-prerelease` and `+build`). The error says what is wrong.
pub fn validate_version(version: &str) -> Result<(), String> {
    let bad = |why: &str| {
        Err(format!(
            "{version:?} is not a framework release version: {why} (expected v<semver>, e.g. v1.55.0)"
        ))
    };
    let Some(rest) = version.strip_prefix('v') else {
        return bad("it does not start with `v`");
    };
    let (rest, build) = match rest.split_once('+') {
        Some((r, b)) => (r, Some(b)),
        None => (rest, None),
    };
    let (core, pre) = match rest.split_once('-') {
        Some((c, p)) => (c, Some(p)),
        None => (rest, None),
    };
    let parts: Vec<&str> = core.split('.').collect();
    if parts.len() != 3 {
        return bad("it needs exactly MAJOR.MINOR.PATCH");
    }
    for p in &parts {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return bad(&format!("{p:?} is not a number"));
        }
        if p.len() > 1 && p.starts_with('0') {
            return bad(&format!("{p:?} has a leading zero"));
        }
    }
    let ident_ok = |s: &str| {
        !s.is_empty()
            && s.split('.')
                .all(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
    };
    if pre.is_some_and(|p| !ident_ok(p)) {
        return bad("its pre-release part is not dot-separated [0-9A-Za-z-] identifiers");
    }
    if build.is_some_and(|b| !ident_ok(b)) {
        return bad("its build part is not dot-separated [0-9A-Za-z-] identifiers");
    }
    Ok(())
}

/// In the build copy at `module_dir`, require `module@version` with a module graph resolved afresh
/// for it (see the module docs). `owner` names the candidate in errors; a proxy that does not
/// serve `module@version` is [`BuildError::ModuleNotServed`] with Go's own line.
pub fn resolve_afresh(owner: &str, module_dir: &Path, module: &str, version: &str) -> Result<(), BuildError> {
    let log = module_dir.join("conform-resolve.log");
    let failed = |command: String, output: &str| classify_go_failure(owner, module, version, command, output);

    let mut edit = process::go_command(module_dir);
    edit.args(["mod", "edit", "-json"]);
    let (ok, text) = run_go(edit, owner, &log)?;
    if !ok {
        return Err(failed("go mod edit -json".into(), &text));
    }
    let indirect = indirect_requirements(&text).map_err(|detail| BuildError::Io {
        candidate: owner.into(),
        detail: format!("reading {}/go.mod: {detail}", module_dir.display()),
    })?;
    let mut args: Vec<String> = indirect.iter().map(|p| format!("-droprequire={p}")).collect();
    args.push(format!("-require={module}@{version}"));
    let mut edit = process::go_command(module_dir);
    edit.args(["mod", "edit"]).args(&args);
    let (ok, text) = run_go(edit, owner, &log)?;
    if !ok {
        return Err(failed(format!("go mod edit -require={module}@{version}"), &text));
    }

    let mut tidy = process::go_command(module_dir);
    tidy.args(["mod", "tidy"]);
    let (ok, text) = run_go(tidy, owner, &log)?;
    if !ok {
        return Err(failed(
            format!("go mod tidy (module graph resolved afresh for {module}@{version})"),
            &text,
        ));
    }
    Ok(())
}

/// The module paths `go mod edit -json` lists as `// indirect` requirements.
fn indirect_requirements(json: &str) -> Result<Vec<String>, String> {
    let v: serde_json::Value = serde_json::from_str(json).map_err(|e| format!("`go mod edit -json` output: {e}"))?;
    Ok(v.get("Require")
        .and_then(|r| r.as_array())
        .map(|reqs| {
            reqs.iter()
                .filter(|r| r.get("Indirect").and_then(|i| i.as_bool()) == Some(true))
                .filter_map(|r| r.get("Path").and_then(|p| p.as_str()).map(String::from))
                .collect()
        })
        .unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        for ok in [
            "v1.55.0",
            "v0.66.0",
            "v1.0.0-conform-missing",
            "v2.1.3-rc.1+meta.7",
            "v10.20.30",
        ] {
            validate_version(ok).unwrap();
        }
        for (bad, why) in [
            ("1.55.0", "does not start with `v`"),
            ("v1.55", "MAJOR.MINOR.PATCH"),
            ("v1.x.0", "not a number"),
            ("v01.2.3", "leading zero"),
            ("v1.2.3-", "pre-release"),
            ("v1.2.3-a..b", "pre-release"),
            ("v1.2.3+", "build part"),
            ("latest", "does not start with `v`"),
        ] {
            let err = validate_version(bad).unwrap_err();
            assert!(err.contains(why) && err.contains(bad), "{bad}: {err}");
        }
    }

    #[test]
    fn indirect_requirements_are_listed() {
        let json = r#"{"Module":{"Path":"m"},"Require":[{"Path":"gofr.dev","Version":"v1.56.6"},
            {"Path":"a.b/c","Version":"v1.0.0","Indirect":true}]}"#;
        assert_eq!(indirect_requirements(json).unwrap(), vec!["a.b/c".to_string()]);
        assert!(indirect_requirements(r#"{"Module":{"Path":"m"}}"#).unwrap().is_empty());
    }
}
