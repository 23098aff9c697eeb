//! The table engine shared by both frameworks' configuration clauses.
//!
//! Every configuration clause is the same experiment with different data: write some env files
//! into the candidate's empty working directory, start it with some variables set, emptied or
//! removed, and read back what the running binary ended up with. So a clause is a table of
//! [`Case`]s and one call to [`judge`]; no clause has scenario code of its own. Values are read
//! back through the candidate's `echo_env_endpoint` knob (GoFastr: `os.LookupEnv`, GoFr:
//! `app.Config.Get`), which a clause whose table does so declares in its needs, or through
//! effects a deployment sees: the port it serves on, a probe's status or body, its log lines,
//! whether it refuses to boot.
//!
//! Each expectation carries its [`Basis`]: a [`Basis::Doc`] expectation is the documented
//! promise and is graded; a [`Basis::Code`] one is what the source predicts where the docs are
//! silent, and is only recorded. A case that breaks a graded expectation becomes one line of the
//! clause's violation, naming the case, its files and environment, what was expected and what the
//! binary did.

use std::fmt::Write as _;

use harness::verdict::{Failure, Level};
use harness::{ports, redact};

pub use super::observe::Expect;
use super::observe::{Outcome, check};
use engine::cx::{App, Attached, Cx, Db, Spec};

/// How many times a case is started again when a port the harness picked was taken meanwhile.
const PORT_RACE_RETRIES: usize = 3;

/// Where an expectation comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Basis {
    /// The framework's documentation promises it: graded.
    Doc,
    /// Only the source shows it: recorded, never graded.
    Code,
}

/// What a case does to one variable of the launch environment.
#[derive(Debug, Clone, Copy)]
pub enum EnvChange {
    /// Set it to this value (after [placeholder](self#placeholders) substitution).
    Set(&'static str),
    /// Set it, to the empty string.
    Empty,
    /// Remove it (including from the profile's base environment).
    Unset,
}

/// An expectation with its basis.
#[derive(Debug, Clone, Copy)]
pub struct Want {
    /// Graded or recorded.
    pub basis: Basis,
    /// The observable.
    pub expect: Expect,
}

/// A documented expectation (graded).
pub const fn doc(expect: Expect) -> Want {
    Want {
        basis: Basis::Doc,
        expect,
    }
}

/// A source-only expectation (recorded).
pub const fn code(expect: Expect) -> Want {
    Want {
        basis: Basis::Code,
        expect,
    }
}

/// One row of a clause's table.
///
/// # Placeholders
/// File contents and [`EnvChange::Set`] values may contain `{port}` (the HTTP port the harness
/// chose for this launch, for a file that is meant to set it), `{other}` (another free port, for
/// a value that is meant to lose), `{secret}` and `{secret2}` (fresh 48-character secrets) and
/// `{short_secret}` (a fresh 12-character one); secrets are registered for redaction.
#[derive(Debug, Clone, Copy)]
pub struct Case {
    /// What the row is about, in a few words (names the row in notes and violations).
    pub name: &'static str,
    /// Files to write, relative to the working directory (after removing what the manifest
    /// ships, so each row sees exactly its own files).
    pub files: &'static [(&'static str, &'static str)],
    /// Changes to the launch environment.
    pub env: &'static [(&'static str, EnvChange)],
    /// What the binary must show.
    pub want: &'static [Want],
}

/// Whether a clause grades its documented expectations or only observes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grade {
    /// Must/should clause: a broken [`Basis::Doc`] expectation is a violation.
    Doc,
    /// Info clause: everything is recorded, nothing graded.
    Observe,
}

impl Grade {
    /// The grading a clause of this level gets: info clauses observe, the others grade.
    pub const fn of(level: Level) -> Grade {
        match level {
            Level::Info => Grade::Observe,
            Level::Must | Level::Should => Grade::Doc,
        }
    }
}

/// Run every case of a table and grade it.
pub async fn judge(cx: &mut Cx, grade: Grade, cases: &[Case]) -> Result<(), Failure> {
    let mut expected = String::new();
    let mut actual = String::new();
    for case in cases {
        let row = describe(case);
        cx.note(format!("case `{}`", case.name), &row);
        for finding in run_case(cx, case).await? {
            let graded = grade == Grade::Doc && finding.basis == Basis::Doc;
            let status = match (finding.held, graded) {
                (true, _) => "holds",
                (false, true) => "BROKEN",
                (false, false) => "differs (recorded, not graded)",
            };
            cx.note(
                format!("`{}`: {}", case.name, finding.expected),
                format!("{status}: {}", finding.actual),
            );
            if graded && !finding.held {
                let _ = writeln!(expected, "case `{}` ({row}): {}", case.name, finding.expected);
                let _ = writeln!(actual, "case `{}`: {}", case.name, finding.actual);
            }
        }
    }
    if expected.is_empty() {
        Ok(())
    } else {
        Err(Failure::violation(expected.trim_end(), actual.trim_end()))
    }
}

/// One expectation, checked.
struct Finding {
    basis: Basis,
    expected: String,
    actual: String,
    held: bool,
}

/// The row's files and environment, for notes and violations.
fn describe(case: &Case) -> String {
    let files = if case.files.is_empty() {
        "none".to_string()
    } else {
        case.files
            .iter()
            .map(|(path, text)| format!("{path}={text:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let env = if case.env.is_empty() {
        "harness defaults".to_string()
    } else {
        case.env
            .iter()
            .map(|(k, change)| match change {
                EnvChange::Set(v) => format!("{k}={v}"),
                EnvChange::Empty => format!("{k}=\"\""),
                EnvChange::Unset => format!("{k} unset"),
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!("files: {files}; env: {env}")
}

/// Values substituted for the placeholders of one launch.
struct Placeholders {
    pairs: Vec<(&'static str, String)>,
}

impl Placeholders {
    fn new(spec: &Spec) -> Result<Placeholders, Failure> {
        let port = spec
            .port
            .ok_or_else(|| Failure::harness("the launch spec has no HTTP port"))?;
        // A port no variable of the launch already names (the HTTP and metrics ports).
        let other = loop {
            let p = ports::free_port()?;
            if !spec.env.values().any(|v| v == &p.to_string()) {
                break p;
            }
        };
        Ok(Placeholders {
            pairs: vec![
                ("{port}", port.to_string()),
                ("{other}", other.to_string()),
                ("{secret}", redact::new_secret(48)?),
                ("{secret2}", redact::new_secret(48)?),
                ("{short_secret}", redact::new_secret(12)?),
            ],
        })
    }

    fn apply(&self, text: &str) -> String {
        self.pairs
            .iter()
            .fold(text.to_string(), |acc, (from, to)| acc.replace(from, to))
    }
}

/// Prepare the launch: the manifest's shipped files removed, the case's files written, the
/// case's environment applied.
fn prepare(cx: &Cx, spec: &mut Spec, case: &Case) -> Result<(), Failure> {
    let cwd = spec.workdir.cwd().to_path_buf();
    for shipped in &cx.target().candidate.manifest.ship {
        let path = cwd.join(shipped);
        if path.is_dir() {
            std::fs::remove_dir_all(&path)?;
        } else if path.exists() {
            std::fs::remove_file(&path)?;
        }
    }
    let values = Placeholders::new(spec)?;
    for (relative, text) in case.files {
        spec.workdir.write(relative, &values.apply(text))?;
    }
    for (key, change) in case.env {
        match change {
            EnvChange::Set(v) => spec.set(key, values.apply(v)),
            EnvChange::Empty => spec.set(key, ""),
            EnvChange::Unset => spec.unset(key),
        };
    }
    Ok(())
}

/// Start the case's launch and wait until it serves or exits, retrying a lost port race.
/// The database is returned with the app: it must outlive it.
async fn launch(cx: &mut Cx, case: &Case) -> Result<(App, Outcome, Attached), Failure> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let db = cx.database(Db::Sqlite).await?;
        let mut spec = cx.spec(Some(&db))?;
        prepare(cx, &mut spec, case)?;
        let mut app = cx.start(spec)?;
        let outcome = match cx.wait_live(&mut app).await {
            Ok(()) => Outcome::Served,
            Err(Failure::Violation(v)) => match app.running.try_exit()? {
                Some(exit) => Outcome::Exited(exit),
                None => Outcome::NotServing(v.actual),
            },
            Err(harness) => return Err(harness),
        };
        let lost_race = matches!(outcome, Outcome::Exited(_))
            && app
                .running
                .output()
                .find(|l| l.text.contains("address already in use"))
                .is_some();
        if lost_race && attempt <= PORT_RACE_RETRIES {
            cx.note(
                "retry",
                format!("case `{}`: a port was taken before the candidate bound it", case.name),
            );
            continue;
        }
        return Ok((app, outcome, db));
    }
}

/// Run one case: launch, check every expectation, stop the app.
async fn run_case(cx: &mut Cx, case: &Case) -> Result<Vec<Finding>, Failure> {
    let (mut app, outcome, db) = launch(cx, case).await?;
    let mut findings = Vec::new();
    // HTTP expectations first, so that output expectations see everything a served request
    // could have caused.
    let (http, output): (Vec<&Want>, Vec<&Want>) = case
        .want
        .iter()
        .partition(|w| !matches!(w.expect, Expect::Line(_) | Expect::NoLine(_)));
    for want in http.into_iter().chain(output) {
        let (expected, actual, held) = check(cx, &app, &outcome, &want.expect).await?;
        findings.push(Finding {
            basis: want.basis,
            expected,
            actual,
            held,
        });
    }
    cx.kill(&mut app).await?;
    drop(db);
    Ok(findings)
}

/// Test support: every clause of `clauses` declares exactly the knobs its table (listed in
/// `tables` by clause ID) reads: `echo_env_endpoint` when some expectation is read back through
/// the echo endpoint, nothing otherwise.
#[cfg(test)]
pub(super) fn assert_declared_knobs(clauses: &[engine::clause::Clause], tables: &[(&str, &[Case])]) {
    use engine::clause::Knob;
    assert_eq!(clauses.len(), tables.len(), "one table listed per clause");
    for clause in clauses {
        let (_, cases) = tables
            .iter()
            .find(|(id, _)| *id == clause.id)
            .unwrap_or_else(|| panic!("{}: no table listed for it", clause.id));
        let reads_echo = cases.iter().flat_map(|c| c.want).any(|w| {
            matches!(
                w.expect,
                Expect::Value(..) | Expect::Absent(_) | Expect::EchoRoute(_) | Expect::Rejected(_)
            )
        });
        let expected: &[Knob] = if reads_echo { &[Knob::EchoEnvEndpoint] } else { &[] };
        assert_eq!(
            clause.needs.knobs, expected,
            "{}: the knobs it declares vs the knobs its table reads",
            clause.id
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_a_row() {
        let case = Case {
            name: "x",
            files: &[(".env", "A=1\n")],
            env: &[("B", EnvChange::Empty), ("C", EnvChange::Unset)],
            want: &[],
        };
        assert_eq!(describe(&case), "files: .env=\"A=1\\n\"; env: B=\"\", C unset");
    }
}
