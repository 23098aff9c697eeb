//! The clauses of conform and everything needed to run them.
//!
//! One module per contract area, in the catalogue's order (`port`, `health`, ...), each holding
//! both frameworks' clauses of that area; generic scenarios are shared through the framework
//! [`profile`]. [`registry`] is the single list that `conform list`, `conform certify` and the
//! `cargo test` harness all read.

pub mod parity;

pub mod auth;
pub mod binary;
pub mod cli;
pub mod config;
pub mod headers;
pub mod health;
pub mod http_behaviour;
pub mod logging;
pub mod metrics;
pub mod migration;
pub mod observe;
pub mod port;
pub mod shutdown;
pub mod sql;
pub mod tracing;

use engine::clause::Clause;
use engine::profile::Framework;

/// The areas of each catalogue, in the catalogue's own order (its section order).
const GOFASTR_AREAS: &[&str] = &[
    "PORT", "ENV", "AUTH", "MIG", "CLI", "SHUT", "HEALTH", "MET", "TRACE", "BIN", "DB", "HDR",
];
const GOFR_AREAS: &[&str] = &[
    "PORT", "CFG", "SHUT", "HLTH", "MET", "TRC", "LOG", "SQL", "MIG", "AUTH", "HTTP",
];

/// Every clause, in catalogue order: GoFastr's areas, then GoFr's, each area in section order.
pub fn registry() -> Vec<Clause> {
    let modules = [
        port::clauses(),
        config::clauses(),
        auth::clauses(),
        migration::clauses(),
        cli::clauses(),
        shutdown::clauses(),
        health::clauses(),
        metrics::clauses(),
        tracing::clauses(),
        binary::clauses(),
        headers::clauses(),
        logging::clauses(),
        sql::clauses(),
        http_behaviour::clauses(),
    ];
    let mut all: Vec<Clause> = modules.into_iter().flatten().collect();
    let rank = |c: &Clause| {
        let areas = match c.framework() {
            Framework::GoFastr => GOFASTR_AREAS,
            Framework::GoFr => GOFR_AREAS,
        };
        let area = areas.iter().position(|a| *a == c.area()).unwrap_or(areas.len());
        (c.framework(), area)
    };
    // Stable: within an area, clauses keep their module's order (the catalogue's numbering).
    all.sort_by_key(rank);
    all
}

/// The clauses of one framework, in catalogue order.
pub fn clauses_for(framework: Framework) -> Vec<Clause> {
    registry().into_iter().filter(|c| c.framework() == framework).collect()
}

/// The clause with this ID.
pub fn find(id: &str) -> Option<Clause> {
    registry().into_iter().find(|c| c.id.eq_ignore_ascii_case(id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// Every clause of the catalogues (`shared/contracts/*.md`, beside the repository in CI) is
    /// registered. Outside that layout the catalogues are not there to compare with.
    #[test]
    fn every_catalogue_clause_is_registered() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/contracts");
        let Ok(entries) = std::fs::read_dir(&dir) else {
            eprintln!("note: {} not found; catalogue coverage not compared", dir.display());
            return;
        };
        let registered: BTreeSet<&str> = registry().iter().map(|c| c.id).collect();
        let mut missing = Vec::new();
        for entry in entries.flatten() {
            let text = std::fs::read_to_string(entry.path()).unwrap();
            for heading in text.lines().filter_map(|l| l.strip_prefix("**")) {
                let id: String = heading
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                    .collect();
                if (id.starts_with("GF-") || id.starts_with("GR-")) && !registered.contains(id.as_str()) {
                    missing.push(id);
                }
            }
        }
        assert!(missing.is_empty(), "catalogue clauses with no scenario: {missing:?}");
    }

    /// The modules of the catalogue import each other without a cycle (an area may use another
    /// area's helpers, one way): read from the sources, `use super::x` and `crate::x::y` paths.
    #[test]
    fn catalogue_modules_import_each_other_without_a_cycle() {
        use std::collections::{BTreeMap, BTreeSet};
        fn files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
            for entry in std::fs::read_dir(dir).unwrap().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    files(&path, out);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    out.push(path);
                }
            }
        }
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut paths = Vec::new();
        files(&src, &mut paths);
        let name = |p: &std::path::Path| {
            let rel = p.strip_prefix(&src).unwrap().with_extension("");
            let rel = rel.to_string_lossy().replace('/', "::");
            rel.strip_suffix("::mod").unwrap_or(&rel).to_string()
        };
        let modules: BTreeMap<String, String> = paths
            .iter()
            .map(|p| (name(p), std::fs::read_to_string(p).unwrap()))
            .collect();
        let path_words = |text: &str, prefix: &str| -> Vec<String> {
            text.match_indices(prefix)
                .map(|(i, _)| {
                    text[i + prefix.len()..]
                        .chars()
                        .take_while(|c| c.is_ascii_lowercase() || *c == '_' || *c == ':')
                        .collect::<String>()
                })
                .collect()
        };
        let mut edges: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
        for (module, text) in &modules {
            let parent = module.rsplit_once("::").map_or("", |(p, _)| p);
            for path in path_words(text, "crate::") {
                let mut parts = path.split("::").filter(|p| !p.is_empty());
                let first = parts.next().unwrap_or_default().to_string();
                let two = parts.next().map(|second| format!("{first}::{second}"));
                let target = two.filter(|t| modules.contains_key(t)).unwrap_or(first);
                if modules.contains_key(&target) && target != *module {
                    edges.entry(module).or_default().insert(target);
                }
            }
            for path in path_words(text, "super::") {
                let sibling = path.split("::").next().unwrap_or_default();
                let target = if parent.is_empty() {
                    sibling.to_string()
                } else {
                    format!("{parent}::{sibling}")
                };
                if modules.contains_key(&target) && target != *module {
                    edges.entry(module).or_default().insert(target);
                }
            }
        }
        // Depth-first search for a path back to where it started.
        fn reaches(
            edges: &BTreeMap<&str, BTreeSet<String>>,
            from: &str,
            to: &str,
            seen: &mut BTreeSet<String>,
        ) -> bool {
            edges
                .get(from)
                .into_iter()
                .flatten()
                .any(|next| next == to || (seen.insert(next.clone()) && reaches(edges, next, to, seen)))
        }
        let cycles: Vec<&str> = edges
            .keys()
            .copied()
            .filter(|m| reaches(&edges, m, m, &mut BTreeSet::new()))
            .collect();
        assert!(
            cycles.is_empty(),
            "catalogue modules on an import cycle: {cycles:?} (edges: {edges:?})"
        );
    }

    #[test]
    fn clause_ids_are_unique_and_name_their_framework_and_area() {
        let all = registry();
        let mut seen = BTreeSet::new();
        for c in &all {
            assert!(seen.insert(c.id), "{} is registered twice", c.id);
            let mut parts = c.id.split('-');
            let (prefix, area) = (parts.next().unwrap(), parts.next().unwrap_or(""));
            assert_eq!(
                prefix,
                c.framework().profile().clause_prefix,
                "{}: prefix vs framework",
                c.id
            );
            assert_eq!(area, c.area(), "{}: the ID's area and the clause's area differ", c.id);
            let areas = match c.framework() {
                Framework::GoFastr => GOFASTR_AREAS,
                Framework::GoFr => GOFR_AREAS,
            };
            assert!(
                areas.contains(&c.area()),
                "{}: area {} is not in the catalogue's area list",
                c.id,
                c.area()
            );
            assert!(
                !c.promise.is_empty() && !c.method.is_empty(),
                "{}: promise and method are required",
                c.id
            );
        }
    }
}
