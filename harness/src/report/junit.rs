//! JUnit XML, the format every CI system reads: one `<testsuite>` per contract area, one
//! `<testcase>` per (candidate x clause).
//!
//! The candidate-versus-harness split survives here: a broken promise is a `<failure>`, a clause
//! the harness could not judge is an `<error>`, a clause not run is `<skipped>`, and an `info`
//! clause that recorded its observation passes. The command line and the (redacted) environment of
//! the clause's first launch are attached as properties so a failure can be reproduced from the CI
//! page alone. Built with quick-junit, never by hand.

use std::collections::BTreeMap;
use std::time::Duration;

use quick_junit::{NonSuccessKind, Property, TestCase, TestCaseStatus, TestSuite};

use super::Report;
use crate::verdict::{ClauseResult, Verdict};

/// The reports (one per candidate) as one JUnit document.
pub fn junit(reports: &[Report]) -> String {
    let mut suites: BTreeMap<String, (TestSuite, Duration)> = BTreeMap::new();
    let mut total = Duration::ZERO;
    for report in reports {
        for result in &report.results {
            let (suite, time) = suites
                .entry(result.area.clone())
                .or_insert_with(|| (TestSuite::new(result.area.clone()), Duration::ZERO));
            suite.add_test_case(case(report, result));
            *time += result.duration;
            total += result.duration;
        }
    }
    let mut doc = quick_junit::Report::new("conform");
    doc.set_time(total);
    doc.add_test_suites(suites.into_values().map(|(mut suite, time)| {
        suite.set_time(time);
        suite
    }));
    doc.to_string().expect("a JUnit report of strings serializes")
}

fn case(report: &Report, result: &ClauseResult) -> TestCase {
    let status = match &result.verdict {
        Verdict::Pass | Verdict::Observed => TestCaseStatus::success(),
        Verdict::Fail(v) => {
            let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
            s.set_message(format!("expected: {}", v.expected));
            s.set_type("broken promise");
            s.set_description(format!(
                "expected: {}\nactual: {}\n\n{}",
                v.expected,
                v.actual,
                result.evidence.as_text()
            ));
            s
        }
        Verdict::Error { message } => {
            let mut s = TestCaseStatus::non_success(NonSuccessKind::Error);
            s.set_message(message.clone());
            s.set_type("harness could not judge");
            s.set_description(result.evidence.as_text());
            s
        }
        Verdict::Skip { reason } => {
            let mut s = TestCaseStatus::skipped();
            s.set_message(reason.clone());
            s
        }
    };
    let mut case = TestCase::new(format!("{}::{}", report.candidate, result.clause), status);
    case.set_classname(format!("conform.{}.{}", report.candidate, result.area));
    case.set_time(result.duration);
    case.add_property(Property::new("level", result.level.name()));
    case.add_property(Property::new("promise", result.promise.clone()));
    case.add_property(Property::new("doc", result.doc.clone()));
    case.add_property(Property::new(
        "framework",
        format!("{} {}", report.framework_module, report.framework_version),
    ));
    if let Some(pinned) = &report.framework_version_pinned {
        case.add_property(Property::new("framework_version_pinned", pinned.clone()));
    }
    if let Some(launch) = result.evidence.launches.first() {
        case.add_property(Property::new("command", launch.launch.command.join(" ")));
        case.add_property(Property::new("env", launch.env_line()));
    }
    if result.verdict == Verdict::Observed {
        case.set_system_out(result.evidence.as_text());
    }
    case
}
