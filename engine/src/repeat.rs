//! Bounded repetition: how a promise about a race is graded so that the verdict does not depend
//! on luck.
//!
//! A promise such as "every clean shutdown logs the final line" or "replicas booting at once all
//! come up" can be broken only some of the time: one observation is a coin flip. The rule here is
//! fail at the first miss, and pass only after [`Repetition::runs`] clean runs, with the number of
//! runs chosen from a stated miss rate and escape probability: a candidate that misses at least
//! `rate` of the time passes with probability at most `(1 - rate)^runs`. The rule and what it can
//! detect are written into the evidence, so a `pass` says how strong it is.

use harness::verdict::Failure;

use crate::cx::Cx;

/// How many times a racy promise is observed, and what that can detect.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Repetition {
    /// Clean runs needed for a pass.
    pub runs: usize,
    /// The smallest miss rate the rule is built to detect (0.10 = one run in ten).
    pub rate: f64,
}

/// The repetition every racy clause uses unless it states its own: a miss rate of 10 % or more
/// passes with probability below 0.1 % (0.9^66 = 0.096 %).
pub const RACE: Repetition = Repetition::detecting(0.10, 0.001);

impl Repetition {
    /// The fewest runs such that a candidate missing at least `rate` of the time passes with
    /// probability below `escape`: the smallest `n` with `(1 - rate)^n < escape`.
    pub const fn detecting(rate: f64, escape: f64) -> Repetition {
        let mut runs = 0;
        let mut pass = 1.0;
        while pass >= escape {
            pass *= 1.0 - rate;
            runs += 1;
        }
        Repetition { runs, rate }
    }

    /// The probability that a candidate missing exactly [`Self::rate`] of the time still passes.
    pub fn escape(&self) -> f64 {
        (1.0 - self.rate).powi(self.runs as i32)
    }

    /// The rule in words, for the evidence and the clause's "how it is checked".
    pub fn rule(&self) -> String {
        format!(
            "fail at the first miss; pass after {} clean runs (a miss rate of {:.0} % or more passes with probability at most {:.3} %)",
            self.runs,
            self.rate * 100.0,
            self.escape() * 100.0
        )
    }

    /// Note the rule in the evidence; call before the first run.
    pub fn begin(&self, cx: &mut Cx) {
        cx.note("repetition", self.rule());
    }

    /// Judge run `run` (numbered from 1) by its `outcome`: a violation ends the repetition as
    /// the clause's violation, naming the run it happened on; a harness error ends it as it is;
    /// a clean run lets it go on. The scenario loops `for run in 1..=self.runs`, then calls
    /// [`Self::passed`]. (A loop in the scenario rather than an async closure here: the closure
    /// would borrow the scenario's context across awaits, which the `Send` bound on scenarios
    /// does not allow.)
    pub fn after(&self, cx: &mut Cx, run: usize, outcome: Result<(), Failure>) -> Result<(), Failure> {
        match outcome {
            Ok(()) => Ok(()),
            Err(Failure::Violation(v)) => {
                // Which run misses is luck, by the nature of a race: a sample (the verdict and
                // the rule are what two runs of one build share).
                cx.note_sample(
                    "repetition outcome",
                    format!("missed on run {run} of at most {}", self.runs),
                );
                Err(Failure::violation(
                    v.expected,
                    format!("{} (run {run}; {} clean before it)", v.actual, run - 1),
                ))
            }
            Err(harness) => Err(harness),
        }
    }

    /// Note that every run was clean (a sample, like the miss it stands in for).
    pub fn passed(&self, cx: &mut Cx) {
        cx.note_sample("repetition outcome", format!("{} clean runs", self.runs));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_are_the_fewest_that_bound_the_escape() {
        let r = Repetition::detecting(0.10, 0.001);
        assert_eq!(r.runs, 66);
        assert!(r.escape() < 0.001);
        assert!(0.9f64.powi(65) >= 0.001, "65 runs would not be enough");
        assert_eq!(RACE, r);
        assert_eq!(Repetition::detecting(0.5, 0.01).runs, 7);
    }

    #[test]
    fn the_rule_states_runs_rate_and_escape() {
        let rule = RACE.rule();
        assert!(rule.contains("66 clean runs"), "{rule}");
        assert!(rule.contains("10 %"), "{rule}");
        assert!(rule.contains("0.096 %"), "{rule}");
    }
}
