//! The Prometheus text exposition format (0.0.4): a parser that returns typed metric families and
//! every way the text breaks the format, plus a scrape helper that keeps the whole body.
//!
//! Both frameworks promise a Prometheus `/metrics` endpoint, and "valid exposition" is a clause
//! of its own, so the parser does not stop at the first problem and does not silently repair
//! anything: it keeps parsing, records each problem as a [`FormatViolation`] with its line, and
//! still returns the families it could read, so a scenario can both grade validity and look up
//! values. What it checks, beyond the line grammar (metric and label names, label value escapes,
//! values including `NaN` and `±Inf`, optional integer timestamps):
//! - every sample belongs to a family declared by a `# TYPE` line before it;
//! - a family's lines form one group, and `HELP`/`TYPE` appear at most once, before its samples;
//! - no series (name plus label set) appears twice;
//! - counter values are not negative;
//! - each histogram series has `le` buckets that are cumulative (non-decreasing as `le` grows), a
//!   `+Inf` bucket equal to its `_count`, and a `_sum`; summaries have `_sum` and `_count`.
//!
//! [`counter_regressions`] compares two scrapes of the same process: counters (and histogram
//! buckets and counts) may only grow. The checks follow the format's own documentation
//! (prometheus.io › Exposition formats › Text-based format) and the rules of the reference parser
//! (`expfmt.TextParser`), written out here rather than linked, because a conformance harness
//! should say exactly what it rejects.

mod parse;
mod scrape;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fmt;

pub use scrape::{Scrape, scrape};

/// The type a `# TYPE` line declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A monotonic counter.
    Counter,
    /// A value that can go up and down.
    Gauge,
    /// Cumulative `le` buckets plus `_sum` and `_count`.
    Histogram,
    /// `quantile` samples plus `_sum` and `_count`.
    Summary,
    /// Declared `untyped`, or not declared at all (see [`Family::typed`]).
    Untyped,
}

impl Kind {
    /// The keyword used on `# TYPE` lines.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
            Kind::Summary => "summary",
            Kind::Untyped => "untyped",
        }
    }

    fn from_keyword(s: &str) -> Option<Kind> {
        Some(match s {
            "counter" => Kind::Counter,
            "gauge" => Kind::Gauge,
            "histogram" => Kind::Histogram,
            "summary" => Kind::Summary,
            "untyped" => Kind::Untyped,
            _ => return None,
        })
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The sample's metric name (`http_request_duration_ms_bucket`, not the family name).
    pub name: String,
    /// Labels in the order written, values unescaped.
    pub labels: Vec<(String, String)>,
    /// The value.
    pub value: f64,
    /// The optional timestamp, in milliseconds since the epoch.
    pub timestamp: Option<i64>,
    /// 1-based line number.
    pub line: usize,
}

impl Sample {
    /// The value of a label, if present.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// True when every `(name, value)` pair is among the sample's labels.
    pub fn has_labels(&self, wanted: &[(&str, &str)]) -> bool {
        wanted.iter().all(|(k, v)| self.label(k) == Some(*v))
    }

    /// The series identity, `name{a="1",b="2"}` with labels sorted: equal for equal series.
    pub fn series(&self) -> String {
        series_id(&self.name, self.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    }
}

impl fmt::Display for Sample {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.series(), self.value)
    }
}

/// The `name{labels}` identity of a series, labels sorted by name and values escaped as in the
/// exposition format.
pub fn series_id<'a>(name: &str, labels: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut labels: Vec<(&str, &str)> = labels.into_iter().collect();
    labels.sort();
    if labels.is_empty() {
        return name.to_string();
    }
    let inner: Vec<String> = labels
        .iter()
        .map(|(k, v)| {
            let v = v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
            format!("{k}=\"{v}\"")
        })
        .collect();
    format!("{name}{{{}}}", inner.join(","))
}

/// A metric family: the `HELP`/`TYPE` metadata and the samples that belong to it.
#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    /// The family name (for histograms, without `_bucket`/`_sum`/`_count`).
    pub name: String,
    /// The `# HELP` text, unescaped, if given.
    pub help: Option<String>,
    /// The declared type ([`Kind::Untyped`] when there was no `# TYPE` line).
    pub kind: Kind,
    /// Whether a `# TYPE` line declared it.
    pub typed: bool,
    /// Its samples, in document order.
    pub samples: Vec<Sample>,
}

/// One histogram series: the buckets, `_sum` and `_count` sharing a label set (without `le`).
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSeries {
    /// The labels, without `le`, sorted by name.
    pub labels: Vec<(String, String)>,
    /// `(le, cumulative count)`, sorted by `le` (`+Inf` last).
    pub buckets: Vec<(f64, f64)>,
    /// The `_sum` value.
    pub sum: Option<f64>,
    /// The `_count` value.
    pub count: Option<f64>,
    /// Line of the series' first sample.
    pub line: usize,
}

impl HistogramSeries {
    /// The value of a label, if present.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// The finite `le` bounds, in order (the `+Inf` bucket left out).
    pub fn bounds(&self) -> Vec<f64> {
        self.buckets
            .iter()
            .map(|(le, _)| *le)
            .filter(|le| le.is_finite())
            .collect()
    }

    /// The cumulative count of the bucket with this `le`.
    pub fn bucket(&self, le: f64) -> Option<f64> {
        self.buckets.iter().find(|(b, _)| *b == le).map(|(_, v)| *v)
    }
}

impl Family {
    /// The histogram series of this family (empty unless it is a histogram), grouped by label
    /// set. Samples whose `le` is missing or unparseable are left out (the parser reported them).
    pub fn histograms(&self) -> Vec<HistogramSeries> {
        let mut series: Vec<HistogramSeries> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        for s in &self.samples {
            let Some(suffix) = s.name.strip_prefix(&self.name) else {
                continue;
            };
            let mut labels: Vec<(String, String)> = s.labels.iter().filter(|(k, _)| k != "le").cloned().collect();
            labels.sort();
            let key = series_id("", labels.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            let i = *index.entry(key).or_insert_with(|| {
                series.push(HistogramSeries {
                    labels,
                    buckets: Vec::new(),
                    sum: None,
                    count: None,
                    line: s.line,
                });
                series.len() - 1
            });
            let entry = &mut series[i];
            match suffix {
                "_bucket" => {
                    if let Some(le) = s.label("le").and_then(parse::float) {
                        entry.buckets.push((le, s.value));
                    }
                }
                "_sum" => entry.sum = Some(s.value),
                "_count" => entry.count = Some(s.value),
                _ => {}
            }
        }
        for s in &mut series {
            s.buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        }
        series
    }

    /// The samples named `sample` (the family name, or a histogram/summary suffix of it) whose
    /// labels include every pair in `labels`.
    pub fn find<'a>(&'a self, sample: &'a str, labels: &'a [(&'a str, &'a str)]) -> impl Iterator<Item = &'a Sample> {
        self.samples
            .iter()
            .filter(move |s| s.name == sample && s.has_labels(labels))
    }
}

/// A problem with the exposition text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormatViolation {
    /// 1-based line number (the line of the series' first sample for histogram invariants).
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for FormatViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// A parsed exposition: the families read and every format violation found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Exposition {
    /// Families in order of first appearance.
    pub families: Vec<Family>,
    /// Format violations in line order (invariant checks after the line checks).
    pub violations: Vec<FormatViolation>,
}

impl Exposition {
    /// Parse exposition text. Never fails: problems are in [`Exposition::violations`].
    pub fn parse(text: &str) -> Exposition {
        parse::parse(text)
    }

    /// The family with this name.
    pub fn family(&self, name: &str) -> Option<&Family> {
        self.families.iter().find(|f| f.name == name)
    }

    /// Every sample of every family.
    pub fn samples(&self) -> impl Iterator<Item = &Sample> {
        self.families.iter().flat_map(|f| f.samples.iter())
    }

    /// The samples named `sample` whose labels include every pair in `labels`, in any family.
    pub fn find<'a>(&'a self, sample: &'a str, labels: &'a [(&'a str, &'a str)]) -> Vec<&'a Sample> {
        self.samples()
            .filter(|s| s.name == sample && s.has_labels(labels))
            .collect()
    }

    /// The sum of the values of the samples [`Exposition::find`] returns (0 when there are none).
    pub fn total(&self, sample: &str, labels: &[(&str, &str)]) -> f64 {
        self.find(sample, labels).iter().map(|s| s.value).sum()
    }

    /// One line per family, `name type (n samples)`, for evidence.
    pub fn outline(&self) -> String {
        self.families
            .iter()
            .map(|f| {
                let kind = if f.typed { f.kind.name() } else { "(no TYPE)" };
                format!("{} {} ({} samples)", f.name, kind, f.samples.len())
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Where counters went backwards between two scrapes of one process: every counter sample,
/// histogram `_bucket` and `_count` and summary `_count` in `before` must be present in `after`
/// with a value at least as large. One message per regression; empty when monotonic.
pub fn counter_regressions(before: &Exposition, after: &Exposition) -> Vec<String> {
    let later: HashMap<String, f64> = after.samples().map(|s| (s.series(), s.value)).collect();
    let mut regressions = Vec::new();
    for family in &before.families {
        for sample in &family.samples {
            let cumulative = match family.kind {
                Kind::Counter => true,
                Kind::Histogram => sample.name.ends_with("_bucket") || sample.name.ends_with("_count"),
                Kind::Summary => sample.name.ends_with("_count"),
                Kind::Gauge | Kind::Untyped => false,
            };
            if !cumulative {
                continue;
            }
            let id = sample.series();
            match later.get(&id) {
                None => regressions.push(format!("{id} ({}) disappeared", sample.value)),
                Some(v) if *v < sample.value => regressions.push(format!("{id} went from {} to {v}", sample.value)),
                Some(_) => {}
            }
        }
    }
    regressions
}
