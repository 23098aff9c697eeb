//! What `certify` prints while it runs: a progress bar naming the clauses being checked when
//! stderr is a terminal, plain lines (one per finished clause) when it is not or with
//! `--no-progress`, and colour only when stderr is a terminal and `NO_COLOR` is unset or empty
//! (<https://no-color.org>).
//!
//! Finished clauses are printed as lines in both modes, above the bar, so a run's log reads the
//! same in a terminal and in CI; the bar only adds what is happening now.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

use engine::clause::Clause;
use engine::run::Observer;
use harness::report::{EXIT_CERTIFIED, EXIT_FAILED, Report};
use harness::verdict::{ClauseResult, Verdict};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

const GREEN: &str = "32";
const RED: &str = "1;31";
const YELLOW: &str = "1;33";

/// How the terminal is used, decided once per run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Style {
    /// Draw a bar (stderr is a terminal and `--no-progress` was not given).
    pub(crate) bar: bool,
    /// Colour verdicts.
    pub(crate) colour: bool,
}

impl Style {
    /// The style for this process: `no_progress` from the command line, the rest from stderr and
    /// `NO_COLOR`.
    pub(crate) fn detect(no_progress: bool) -> Style {
        let terminal = std::io::stderr().is_terminal();
        let no_colour = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Style {
            bar: terminal && !no_progress,
            colour: terminal && !no_colour,
        }
    }

    /// `text` in the colour of `verdict`, when colour is on.
    pub(crate) fn verdict(&self, verdict: &Verdict, text: &str) -> String {
        self.paint(
            match verdict {
                Verdict::Pass => GREEN,
                Verdict::Fail(_) => RED,
                Verdict::Error { .. } => YELLOW,
                Verdict::Skip { .. } => "2",
                Verdict::Observed => "34",
            },
            text,
        )
    }

    /// A report's headline (`certified`, `not certified`, `not judged`), coloured by its exit code.
    pub(crate) fn headline(&self, report: &Report) -> String {
        let colour = match report.exit_code() {
            EXIT_CERTIFIED => GREEN,
            EXIT_FAILED => RED,
            _ => YELLOW,
        };
        self.paint(colour, harness::report::headline(report))
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.colour {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
}

/// Progress of one candidate's clauses.
pub(crate) struct Progress {
    style: Style,
    bar: Option<ProgressBar>,
    running: Mutex<Vec<&'static str>>,
    /// Written before each finished line when several runs print at once (mutants).
    label: Option<String>,
}

impl Progress {
    /// Progress over `total` clauses of `candidate`.
    pub(crate) fn new(style: Style, candidate: &str, total: usize) -> Progress {
        let bar = style.bar.then(|| {
            let bar = ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stderr());
            let template = if style.colour {
                "{prefix:.bold} [{elapsed_precise}] {bar:30.cyan/blue} {pos}/{len} {wide_msg}"
            } else {
                "{prefix} [{elapsed_precise}] {bar:30} {pos}/{len} {wide_msg}"
            };
            bar.set_style(
                ProgressStyle::with_template(template)
                    .expect("the progress template is valid")
                    .progress_chars("=> "),
            );
            bar.set_prefix(candidate.to_string());
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Progress {
            style,
            bar,
            running: Mutex::new(Vec::new()),
            label: None,
        }
    }

    /// Progress over the clauses of a mutant, which runs beside other mutants: each finished line
    /// names it.
    pub(crate) fn for_mutant(style: Style, mutant: &str, total: usize) -> Progress {
        Progress {
            label: Some(format!("[{mutant}]")),
            ..Progress::new(style, mutant, total)
        }
    }

    /// Remove the bar (the finished lines stay).
    pub(crate) fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }

    fn show_running(&self) {
        if let Some(bar) = &self.bar {
            let running = self.running.lock().unwrap_or_else(|p| p.into_inner());
            bar.set_message(format!("checking {}", running.join(", ")));
        }
    }
}

impl Observer for Progress {
    fn started(&self, clause: &Clause) {
        self.running.lock().unwrap_or_else(|p| p.into_inner()).push(clause.id);
        self.show_running();
    }

    fn finished(&self, r: &ClauseResult) {
        self.running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|id| *id != r.clause);
        let detail = match &r.verdict {
            Verdict::Fail(v) => format!(": {}", first_line(&v.actual)),
            Verdict::Error { message } => format!(": {}", first_line(message)),
            _ => String::new(),
        };
        let label = self.label.as_deref().map(|l| format!("{l} ")).unwrap_or_default();
        let line = format!(
            "  {label}{} {:<12} {:>6.1} s{detail}",
            self.style.verdict(&r.verdict, &format!("{:<8}", r.verdict.name())),
            r.clause,
            r.duration.as_secs_f64()
        );
        match &self.bar {
            Some(bar) => {
                bar.println(line);
                bar.inc(1);
            }
            None => eprintln!("{line}"),
        }
        self.show_running();
    }
}

/// The first line of `s`, cut at 140 characters.
fn first_line(s: &str) -> String {
    let line = s.lines().next().unwrap_or("");
    if line.chars().count() > 140 {
        format!("{}…", line.chars().take(140).collect::<String>())
    } else {
        line.to_string()
    }
}
