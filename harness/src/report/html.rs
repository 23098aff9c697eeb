//! A self-contained HTML page of the certification: the same content as the Markdown (summary,
//! parity, clause x candidate matrix, failures with evidence, observations) in one file with its
//! styles and a few lines of script inline, so it opens from a CI artifact or an email with no
//! network. The script only filters the matrix (failing rows, free text); without it the page is
//! complete.
//!
//! Every piece of text from a result is escaped: evidence holds response bodies and log lines
//! written by the candidate, and a report must never run what a candidate printed.

use crate::verdict::{ClauseResult, Verdict};

use super::kills::KillMatrix;
use super::matrix::{self, short_hash};
use super::{ParityRow, Report};

const STYLE: &str = r#"
:root { color-scheme: light dark; --pass: #1a7f37; --fail: #cf222e; --error: #9a6700; --skip: #6e7781; --obs: #0969da; }
body { font: 14px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 80rem; padding: 0 1rem; }
h1 { font-size: 1.5rem; margin-bottom: .25rem; } h2 { margin-top: 2rem; border-bottom: 1px solid #8884; }
table { border-collapse: collapse; width: 100%; } th, td { border: 1px solid #8884; padding: .25rem .5rem; text-align: left; vertical-align: top; }
th { background: #8881; position: sticky; top: 0; } code, pre { font: 12px/1.4 ui-monospace, monospace; }
pre { white-space: pre-wrap; overflow-wrap: anywhere; background: #8881; padding: .5rem; }
.v { white-space: nowrap; font-weight: 600; } .pass { color: var(--pass); } .fail { color: var(--fail); }
.error { color: var(--error); } .skip { color: var(--skip); } .observed { color: var(--obs); } .none { color: var(--skip); }
.headline { font-size: 1.1rem; } .meta { color: #6e7781; } .filters { margin: .5rem 0; display: flex; gap: 1rem; }
article { margin: 1rem 0; padding-left: .75rem; border-left: 3px solid #8884; } dt { font-weight: 600; }
"#;

const SCRIPT: &str = r#"
(function () {
  const rows = Array.from(document.querySelectorAll('#matrix tbody tr'));
  const failing = document.getElementById('only-failing');
  const find = document.getElementById('find');
  function apply() {
    const needle = find.value.trim().toLowerCase();
    let shown = 0;
    for (const row of rows) {
      const bad = /\b(fail|error)\b/.test(row.dataset.verdicts);
      const hit = !needle || row.textContent.toLowerCase().includes(needle);
      row.hidden = (failing.checked && !bad) || !hit;
      if (!row.hidden) shown++;
    }
    document.body.dataset.rows = String(shown);
  }
  failing.addEventListener('change', apply);
  find.addEventListener('input', apply);
  apply();
})();
"#;

/// The reports (one per candidate) as one self-contained HTML page.
pub fn html(reports: &[Report], parity: &[ParityRow]) -> String {
    let title = match reports {
        [r] => format!("conform: {} ({})", r.candidate, r.framework_label()),
        _ => format!("conform: {} candidates", reports.len()),
    };
    let mut out = format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{}</h1>\n",
        esc(&title),
        esc(&title)
    );

    out.push_str("<section id=\"summary\">\n<table>\n<thead><tr><th>candidate</th><th>framework</th><th>verdict</th><th>pass</th><th>fail</th><th>error</th><th>skip</th><th>observed</th><th>must</th><th>time</th></tr></thead>\n<tbody>\n");
    for r in reports {
        let s = &r.summary;
        let class = match super::headline(r) {
            "certified" => "pass",
            "not certified" => "fail",
            _ => "error",
        };
        out.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td class=\"v headline {class}\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}/{}</td><td>{:.1} s</td></tr>\n",
            esc(&r.candidate),
            esc(&r.framework_label()),
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
    out.push_str("</tbody>\n</table>\n");
    for r in reports {
        out.push_str(&format!(
            "<p class=\"meta\">{}: provider <code>{}</code> · collector <code>{}</code> · started {} · source <code>{}</code> · <code>{}</code></p>\n",
            esc(&r.candidate),
            esc(&r.provider),
            esc(&r.collector),
            esc(&r.started_at),
            esc(short_hash(r)),
            esc(&r.command)
        ));
    }
    out.push_str("</section>\n");

    let parity = matrix::parity(reports, parity);
    if !parity.is_empty() {
        out.push_str("<section>\n<h2>Parity: the generic promises side by side</h2>\n<table id=\"parity\">\n<thead><tr><th>promise</th>");
        for r in reports {
            out.push_str(&format!("<th>{}</th>", esc(&r.candidate)));
        }
        out.push_str("</tr></thead>\n<tbody>\n");
        for line in parity {
            out.push_str(&format!("<tr><td>{}</td>", esc(line.promise)));
            for c in line.cells {
                match c {
                    Some(r) => out.push_str(&format!("<td>{} {}</td>", esc(&r.clause), verdict_span(&r.verdict))),
                    None => out.push_str("<td class=\"none\">—</td>"),
                }
            }
            out.push_str("</tr>\n");
        }
        out.push_str("</tbody>\n</table>\n</section>\n");
    }

    out.push_str(
        "<section>\n<h2>Clauses</h2>\n<div class=\"filters\"><label><input type=\"checkbox\" id=\"only-failing\"> \
         only fail and error</label><input type=\"search\" id=\"find\" placeholder=\"filter: ID, word, verdict\"></div>\n\
         <table id=\"matrix\">\n<thead><tr><th>clause</th><th>level</th>",
    );
    for r in reports {
        out.push_str(&format!("<th>{}</th>", esc(&r.candidate)));
    }
    out.push_str("<th>promise</th><th>doc</th></tr></thead>\n<tbody>\n");
    for row in matrix::rows(reports) {
        let verdicts: Vec<&str> = row.cells.iter().flatten().map(|r| r.verdict.name()).collect();
        out.push_str(&format!(
            "<tr data-clause=\"{}\" data-verdicts=\"{}\"><td><code>{}</code></td><td>{}</td>",
            esc(&row.clause.clause),
            verdicts.join(" "),
            esc(&row.clause.clause),
            row.clause.level.name()
        ));
        for (column, c) in row.cells.iter().enumerate() {
            match c {
                Some(r) if matches!(r.verdict, Verdict::Fail(_) | Verdict::Error { .. }) => out.push_str(&format!(
                    "<td><a href=\"#{}\">{}</a></td>",
                    anchor(&reports[column], r),
                    verdict_span(&r.verdict)
                )),
                Some(r) => out.push_str(&format!("<td>{}</td>", verdict_span(&r.verdict))),
                None => out.push_str("<td class=\"none\">—</td>"),
            }
        }
        out.push_str(&format!(
            "<td>{}</td><td>{}</td></tr>\n",
            esc(&row.clause.promise),
            doc_link(row.clause)
        ));
    }
    out.push_str("</tbody>\n</table>\n</section>\n");

    for report in reports {
        if let Some(kills) = &report.kill_matrix {
            push_kill_matrix(&mut out, report, kills);
        }
    }

    let failing = matrix::failing(reports);
    if !failing.is_empty() {
        out.push_str("<section id=\"failures\">\n<h2>Failures and errors</h2>\n");
        for (report, r) in failing {
            out.push_str(&format!(
                "<article id=\"{}\">\n<h3>{} · {} ({}, {})</h3>\n<p>{} ({})</p>\n<dl>\n",
                anchor(report, r),
                esc(&report.candidate),
                esc(&r.clause),
                r.level.name(),
                verdict_span(&r.verdict),
                esc(&r.promise),
                doc_link(r)
            ));
            match &r.verdict {
                Verdict::Fail(v) => out.push_str(&format!(
                    "<dt>expected</dt><dd>{}</dd>\n<dt>actual</dt><dd>{}</dd>\n",
                    esc(&v.expected),
                    esc(&v.actual)
                )),
                Verdict::Error { message } => {
                    out.push_str(&format!("<dt>harness error</dt><dd>{}</dd>\n", esc(message)))
                }
                _ => {}
            }
            out.push_str("</dl>\n");
            push_evidence(&mut out, r);
            out.push_str("</article>\n");
        }
        out.push_str("</section>\n");
    }

    let observed = matrix::observed(reports);
    if !observed.is_empty() {
        out.push_str("<section id=\"observed\">\n<h2>Observed behaviour (info clauses, not graded)</h2>\n");
        for (report, r) in observed {
            out.push_str(&format!(
                "<article id=\"{}\">\n<h3>{} · {}</h3>\n<p>{}</p>\n",
                anchor(report, r),
                esc(&report.candidate),
                esc(&r.clause),
                esc(&r.promise)
            ));
            push_evidence(&mut out, r);
            out.push_str("</article>\n");
        }
        out.push_str("</section>\n");
    }

    out.push_str(&format!("<script>{SCRIPT}</script>\n</body>\n</html>\n"));
    out
}

fn push_kill_matrix(out: &mut String, report: &Report, kills: &KillMatrix) {
    out.push_str(&format!(
        "<section class=\"kills\">\n<h2>Kill matrix: {}</h2>\n<p>{} of {} graded clauses passing on the reference catch at least one of {} mutants.</p>\n\
         <table>\n<thead><tr><th>mutant</th><th>breaks</th><th>areas</th><th>caught by</th></tr></thead>\n<tbody>\n",
        esc(&report.candidate),
        kills.proven(),
        kills.clauses.len(),
        kills.mutants.len()
    ));
    for m in &kills.mutants {
        let caught = if m.caught_by.is_empty() {
            "<span class=\"v fail\">nothing: survives</span>".to_string()
        } else {
            esc(&m.caught_by.join(", "))
        };
        out.push_str(&format!(
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{caught}</td></tr>\n",
            esc(&m.name),
            esc(&m.breaks),
            esc(&m.areas.join(", "))
        ));
    }
    out.push_str("</tbody>\n</table>\n");
    if !kills.unproven.is_empty() {
        out.push_str(&format!(
            "<p>Unproven (no mutant makes them fail): {}.</p>\n",
            esc(&kills.unproven.join(", "))
        ));
    }
    out.push_str("</section>\n");
}

fn push_evidence(out: &mut String, r: &ClauseResult) {
    if !r.evidence.is_empty() {
        out.push_str(&format!(
            "<details><summary>evidence</summary><pre>{}</pre></details>\n",
            esc(&r.evidence.as_text())
        ));
    }
}

/// A verdict as a coloured symbol and word. Plain symbols rather than the Markdown's emoji: they
/// are in every default font, so the page reads the same on a server with no emoji font.
fn verdict_span(v: &Verdict) -> String {
    let symbol = match v {
        Verdict::Pass => "✓",
        Verdict::Fail(_) => "✗",
        Verdict::Error { .. } => "⚠",
        Verdict::Skip { .. } => "○",
        Verdict::Observed => "◉",
    };
    format!("<span class=\"v {}\">{symbol} {}</span>", v.name(), v.name())
}

/// The fragment a failure's article carries, unique per (candidate, clause).
fn anchor(report: &Report, r: &ClauseResult) -> String {
    let raw = format!("{}-{}", report.candidate, r.clause);
    raw.chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' })
        .collect()
}

fn doc_link(r: &ClauseResult) -> String {
    if r.doc_url.is_empty() {
        esc(&r.doc)
    } else {
        format!("<a href=\"{}\">{}</a>", esc(&r.doc_url), esc(&r.doc))
    }
}

/// Escape text for an element body or a double-quoted attribute.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::esc;

    #[test]
    fn escapes_what_a_candidate_could_print() {
        assert_eq!(
            esc(r#"<script>alert("x")</script> & 'y'"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;"
        );
    }
}
