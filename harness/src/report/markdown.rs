//! Markdown, for release notes and pull requests: a summary line per candidate, the parity table
//! when two frameworks were certified together, the clause x candidate matrix with each clause
//! linked to its documentation at the pinned version, the kill matrix when mutants were run,
//! then every fail with expected versus actual and the evidence, then what the info clauses
//! observed.

use crate::evidence::Evidence;
use crate::verdict::{ClauseResult, Verdict};

use super::kills::KillMatrix;
use super::matrix::{self, short_hash, verdict_label};
use super::{ParityRow, Report};

/// The reports (one per candidate) as one Markdown document.
pub fn markdown(reports: &[Report], parity: &[ParityRow]) -> String {
    let mut out = String::new();
    match reports {
        [report] => {
            let s = &report.summary;
            out.push_str(&format!(
                "# conform: {} ({})\n\n**{}**. {} clauses: {} pass, {} fail, {} error, {} skip, {} observed; must {}/{}.\n\n",
                report.candidate,
                report.framework_label(),
                super::headline(report),
                s.total,
                s.pass,
                s.fail,
                s.error,
                s.skip,
                s.observed,
                s.must_pass,
                s.must
            ));
            out.push_str(&format!(
                "Provider `{}` · collector `{}` · started {} · {:.1} s · source `{}` · `{}`\n",
                report.provider,
                report.collector,
                report.started_at,
                report.duration.as_secs_f64(),
                short_hash(report),
                report.command
            ));
        }
        _ => {
            out.push_str(&format!("# conform: {} candidates\n\n", reports.len()));
            out.push_str("| candidate | framework | verdict | pass | fail | error | skip | observed | must | time |\n");
            out.push_str("|---|---|---|---|---|---|---|---|---|---|\n");
            for r in reports {
                let s = &r.summary;
                out.push_str(&format!(
                    "| {} | {} | **{}** | {} | {} | {} | {} | {} | {}/{} | {:.1} s |\n",
                    r.candidate,
                    r.framework_label(),
                    super::headline(r),
                    s.pass,
                    s.fail,
                    s.error,
                    s.skip,
                    s.observed,
                    s.must_pass,
                    s.must,
                    r.duration.as_secs_f64()
                ));
            }
            if let Some(first) = reports.first() {
                out.push_str(&format!(
                    "\nProvider `{}` · collector `{}` · started {} · `{}`\n",
                    first.provider, first.collector, first.started_at, first.command
                ));
            }
        }
    }

    let parity = matrix::parity(reports, parity);
    if !parity.is_empty() {
        out.push_str("\n## Parity: the generic promises side by side\n\n| promise |");
        push_candidate_columns(&mut out, reports);
        for line in parity {
            out.push_str(&format!("| {} |", cell(line.promise)));
            for c in line.cells {
                match c {
                    Some(r) => out.push_str(&format!(" {} {} |", r.clause, verdict_label(&r.verdict))),
                    None => out.push_str(" — |"),
                }
            }
            out.push('\n');
        }
    }

    out.push_str("\n## Clauses\n\n| clause | level |");
    let single = reports.len() == 1;
    for r in reports {
        out.push_str(&format!(" {} |", cell(&r.candidate)));
    }
    out.push_str(if single {
        " time | promise | doc |\n"
    } else {
        " promise | doc |\n"
    });
    out.push_str(&"|---".repeat(reports.len() + if single { 5 } else { 4 }));
    out.push_str("|\n");
    for row in matrix::rows(reports) {
        out.push_str(&format!("| {} | {} |", row.clause.clause, row.clause.level.name()));
        for c in &row.cells {
            out.push_str(&format!(" {} |", c.map_or("—", |r| verdict_label(&r.verdict))));
        }
        if single {
            out.push_str(&format!(" {:.1} s |", row.clause.duration.as_secs_f64()));
        }
        out.push_str(&format!(
            " {} | {} |\n",
            cell(&row.clause.promise),
            doc_link(row.clause)
        ));
    }

    for report in reports {
        if let Some(kills) = &report.kill_matrix {
            push_kill_matrix(&mut out, report, kills);
        }
    }

    let failing = matrix::failing(reports);
    if !failing.is_empty() {
        out.push_str("\n## Failures and errors\n");
        for (report, r) in failing {
            out.push_str(&format!(
                "\n### {}{} ({}, {})\n\n{} ({})\n\n",
                prefix(reports, report),
                r.clause,
                r.level.name(),
                r.verdict.name(),
                r.promise,
                doc_link(r)
            ));
            match &r.verdict {
                Verdict::Fail(v) => out.push_str(&format!("- expected: {}\n- actual: {}\n", v.expected, v.actual)),
                Verdict::Error { message } => out.push_str(&format!("- harness error: {message}\n")),
                _ => {}
            }
            out.push_str(&evidence(&r.evidence));
        }
    }

    let observed = matrix::observed(reports);
    if !observed.is_empty() {
        out.push_str("\n## Observed behaviour (info clauses, not graded)\n");
        for (report, r) in observed {
            out.push_str(&format!(
                "\n### {}{}\n\n{}\n\n",
                prefix(reports, report),
                r.clause,
                r.promise
            ));
            for n in &r.evidence.notes {
                out.push_str(&format!("- {}: {}\n", n.key, n.value));
            }
        }
    }
    out
}

/// Which clause catches which mutant of `report`'s candidate, and what nothing proves yet.
fn push_kill_matrix(out: &mut String, report: &Report, kills: &KillMatrix) {
    out.push_str(&format!(
        "\n## Kill matrix: {}\n\n{} of {} graded clauses passing on the reference catch at least one of {} mutants.\n\n",
        report.candidate,
        kills.proven(),
        kills.clauses.len(),
        kills.mutants.len()
    ));
    out.push_str("| mutant | breaks | areas | caught by |\n|---|---|---|---|\n");
    for m in &kills.mutants {
        let caught = if m.caught_by.is_empty() {
            "**nothing: survives**".to_string()
        } else {
            m.caught_by.join(", ")
        };
        out.push_str(&format!(
            "| {} | {} | {} | {caught}{} |\n",
            m.name,
            cell(&m.breaks),
            m.areas.join(", "),
            if m.errors.is_empty() {
                String::new()
            } else {
                format!(" (not judged: {})", m.errors.join(", "))
            }
        ));
    }
    out.push_str("\n| clause | level | catches |\n|---|---|---|\n");
    for c in &kills.clauses {
        let catches = if c.catches.is_empty() {
            "— (unproven)".to_string()
        } else {
            c.catches.join(", ")
        };
        out.push_str(&format!("| {} | {} | {catches} |\n", c.clause, c.level.name()));
    }
    if !kills.unproven.is_empty() {
        out.push_str(&format!(
            "\nUnproven (no mutant makes them fail): {}.\n",
            kills.unproven.join(", ")
        ));
    }
    if !kills.failing_on_reference.is_empty() {
        out.push_str(&format!(
            "\nFailing on the reference itself (a mutant cannot prove them): {}.\n",
            kills.failing_on_reference.join(", ")
        ));
    }
}

fn push_candidate_columns(out: &mut String, reports: &[Report]) {
    for r in reports {
        out.push_str(&format!(" {} |", cell(&r.candidate)));
    }
    out.push('\n');
    out.push_str(&"|---".repeat(reports.len() + 1));
    out.push_str("|\n");
}

/// `candidate · ` when several candidates share the document, else nothing.
fn prefix(reports: &[Report], report: &Report) -> String {
    if reports.len() > 1 {
        format!("{} · ", report.candidate)
    } else {
        String::new()
    }
}

/// The doc reference, as a link when the report knows where the page lives.
fn doc_link(r: &ClauseResult) -> String {
    if r.doc_url.is_empty() {
        cell(&r.doc)
    } else {
        format!("[{}]({})", cell(&r.doc).replace(['[', ']'], ""), r.doc_url)
    }
}

fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

fn evidence(e: &Evidence) -> String {
    let mut out = String::new();
    for n in &e.notes {
        out.push_str(&format!("- {}: {}\n", n.key, n.value));
    }
    if !e.exchanges.is_empty() {
        out.push_str("\nHTTP:\n\n```text\n");
        for x in &e.exchanges {
            out.push_str(&x.summary());
            out.push('\n');
        }
        out.push_str("```\n");
    }
    for (i, l) in e.launches.iter().enumerate() {
        out.push_str(&format!(
            "\nLaunch {}: `{}` in `{}`, {}\n\n```text\nenv: {}\n",
            i + 1,
            l.launch.command.join(" "),
            l.launch.cwd,
            l.ending(),
            l.env_line()
        ));
        for line in &l.output_tail {
            out.push_str(line);
            out.push('\n');
        }
        out.push_str("```\n");
    }
    out
}
