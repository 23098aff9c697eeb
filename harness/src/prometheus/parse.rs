//! The line parser and the whole-document checks behind [`Exposition::parse`].
//!
//! One pass over the lines builds the families and reports line-level problems (grammar, escapes,
//! metadata order, grouping, duplicates, negative counters); a second pass over the finished
//! families checks the histogram and summary invariants, which need every line of a series.

use std::collections::{HashMap, HashSet};

use super::{Exposition, Family, FormatViolation, Kind, Sample};

/// Parse `text`; see the module documentation of `prometheus` for what is checked.
pub(super) fn parse(text: &str) -> Exposition {
    let mut p = Parser::default();
    let mut lines: Vec<&str> = text.split('\n').collect();
    if lines.last() == Some(&"") {
        lines.pop();
    } else if !text.is_empty() {
        p.violation(lines.len(), "the last line does not end with a line feed");
    }
    for (i, raw) in lines.iter().enumerate() {
        let n = i + 1;
        let line = match raw.strip_suffix('\r') {
            Some(stripped) => {
                p.violation(n, "carriage return at the end of the line (lines end with \\n only)");
                stripped
            }
            None => raw,
        };
        let body = line.trim_start_matches([' ', '\t']);
        if body.is_empty() {
            continue;
        }
        if let Some(comment) = body.strip_prefix('#') {
            p.comment(n, comment);
        } else if let Err(message) = p.sample(n, body) {
            p.violation(n, message);
        }
    }
    p.check_invariants();
    p.violations.sort_by_key(|v| v.line);
    Exposition {
        families: p.families,
        violations: p.violations,
    }
}

#[derive(Default)]
struct Parser {
    families: Vec<Family>,
    by_name: HashMap<String, usize>,
    /// The family of the previous HELP, TYPE or sample line.
    current: Option<usize>,
    /// Families whose group of lines has ended (another family's line came after them).
    closed: HashSet<usize>,
    /// Families already reported as not grouped or without TYPE (one report each).
    reported_ungrouped: HashSet<usize>,
    reported_untyped: HashSet<usize>,
    /// Series seen so far (for duplicates).
    series: HashSet<String>,
    violations: Vec<FormatViolation>,
}

impl Parser {
    fn violation(&mut self, line: usize, message: impl Into<String>) {
        self.violations.push(FormatViolation {
            line,
            message: message.into(),
        });
    }

    fn family_index(&mut self, name: &str) -> usize {
        if let Some(&i) = self.by_name.get(name) {
            return i;
        }
        self.families.push(Family {
            name: name.to_string(),
            help: None,
            kind: Kind::Untyped,
            typed: false,
            samples: Vec::new(),
        });
        let i = self.families.len() - 1;
        self.by_name.insert(name.to_string(), i);
        i
    }

    /// Note that line `n` belongs to family `i`, reporting a family whose lines are split.
    fn enter(&mut self, n: usize, i: usize) {
        if self.current == Some(i) {
            return;
        }
        if let Some(previous) = self.current {
            self.closed.insert(previous);
        }
        if self.closed.contains(&i) && self.reported_ungrouped.insert(i) {
            let name = self.families[i].name.clone();
            self.violation(
                n,
                format!("the lines of family {name} are not grouped together (it appeared earlier)"),
            );
        }
        self.current = Some(i);
    }

    fn comment(&mut self, n: usize, comment: &str) {
        let rest = comment.trim_start_matches([' ', '\t']);
        let (keyword, rest) = split_token(rest);
        if keyword != "HELP" && keyword != "TYPE" {
            return; // An ordinary comment.
        }
        let (name, rest) = split_token(rest);
        if name.is_empty() {
            self.violation(n, format!("# {keyword} without a metric name"));
            return;
        }
        if !is_metric_name(name) {
            self.violation(n, format!("# {keyword}: invalid metric name {name:?}"));
            return;
        }
        let i = self.family_index(name);
        self.enter(n, i);
        if keyword == "HELP" {
            if self.families[i].help.is_some() {
                self.violation(n, format!("second # HELP for {name}"));
                return;
            }
            match unescape(rest, false) {
                Ok(help) => self.families[i].help = Some(help),
                Err(e) => {
                    self.violation(n, format!("# HELP {name}: {e}"));
                    self.families[i].help = Some(rest.to_string());
                }
            }
            return;
        }
        let keyword = rest.trim_matches([' ', '\t']);
        let Some(kind) = Kind::from_keyword(keyword) else {
            self.violation(n, format!("# TYPE {name}: unknown type {keyword:?}"));
            return;
        };
        let family = &self.families[i];
        if family.typed {
            self.violation(n, format!("second # TYPE for {name}"));
        } else if !family.samples.is_empty() {
            self.violation(n, format!("# TYPE for {name} comes after its samples"));
        } else {
            let family = &mut self.families[i];
            family.kind = kind;
            family.typed = true;
        }
    }

    /// The family a sample named `name` belongs to, creating an undeclared one if none fits.
    fn resolve(&mut self, n: usize, name: &str) -> usize {
        let declared = |p: &Parser, family: &str, kinds: &[Kind]| {
            p.by_name
                .get(family)
                .copied()
                .filter(|&i| p.families[i].typed && kinds.contains(&p.families[i].kind))
        };
        let plain = [Kind::Counter, Kind::Gauge, Kind::Untyped, Kind::Summary];
        if let Some(i) = declared(self, name, &plain) {
            return i;
        }
        for (suffix, kinds) in [
            ("_bucket", &[Kind::Histogram][..]),
            ("_count", &[Kind::Histogram, Kind::Summary][..]),
            ("_sum", &[Kind::Histogram, Kind::Summary][..]),
        ] {
            if let Some(base) = name.strip_suffix(suffix)
                && let Some(i) = declared(self, base, kinds)
            {
                return i;
            }
        }
        let i = self.family_index(name);
        if self.families[i].typed {
            // A histogram named without its suffix.
            self.violation(
                n,
                format!("sample {name} of histogram {name} must be named {name}_bucket, _sum or _count"),
            );
        } else if self.reported_untyped.insert(i) {
            self.violation(n, format!("sample {name} has no # TYPE line before it"));
        }
        i
    }

    fn sample(&mut self, n: usize, line: &str) -> Result<(), String> {
        let name_end = line.find(|c: char| !is_name_char(c)).unwrap_or(line.len());
        let name = &line[..name_end];
        if !is_metric_name(name) {
            return Err(format!("invalid metric name at the start of {:?}", short(line)));
        }
        let mut rest = &line[name_end..];
        let mut labels = Vec::new();
        let mut problems = Vec::new();
        if let Some(after_brace) = rest.strip_prefix('{') {
            rest = parse_labels(after_brace, &mut labels, &mut problems)?;
        }
        let fields: Vec<&str> = rest.split([' ', '\t']).filter(|s| !s.is_empty()).collect();
        if !rest.is_empty() && !rest.starts_with([' ', '\t']) {
            return Err(format!(
                "expected a space after the name and labels in {:?}",
                short(line)
            ));
        }
        let (value, timestamp) = match fields.as_slice() {
            [value] => (*value, None),
            [value, ts] => (*value, Some(*ts)),
            [] => return Err(format!("sample without a value: {:?}", short(line))),
            _ => return Err(format!("unexpected text after the timestamp: {:?}", short(line))),
        };
        let value = float(value).ok_or_else(|| format!("invalid sample value {value:?}"))?;
        let timestamp = match timestamp {
            None => None,
            Some(ts) => Some(
                ts.parse::<i64>()
                    .map_err(|_| format!("invalid timestamp {ts:?} (an integer number of milliseconds)"))?,
            ),
        };
        let sample = Sample {
            name: name.to_string(),
            labels,
            value,
            timestamp,
            line: n,
        };
        for problem in problems {
            self.violation(n, problem);
        }
        let i = self.resolve(n, name);
        self.enter(n, i);
        self.check_sample(n, i, &sample);
        self.families[i].samples.push(sample);
        Ok(())
    }

    /// Per-sample rules that need the family: duplicates, `le`/`quantile`, non-negative counters.
    fn check_sample(&mut self, n: usize, i: usize, sample: &Sample) {
        let id = sample.series();
        if !self.series.insert(id.clone()) {
            self.violation(n, format!("duplicate series {id}"));
        }
        let family = &self.families[i];
        let (kind, family_name) = (family.kind, family.name.clone());
        let is_bucket = kind == Kind::Histogram && sample.name.ends_with("_bucket");
        if is_bucket {
            match sample.label("le") {
                None => self.violation(n, format!("histogram bucket {id} has no le label")),
                Some(le) if float(le).is_none() => {
                    self.violation(n, format!("histogram bucket {id}: le {le:?} is not a number"))
                }
                Some(_) => {}
            }
        } else if sample.label("le").is_some() && kind == Kind::Histogram {
            self.violation(n, format!("{id}: only _bucket samples carry le"));
        }
        if kind == Kind::Summary && sample.name == family_name {
            match sample.label("quantile").map(float) {
                None => self.violation(n, format!("summary sample {id} has no quantile label")),
                Some(Some(q)) if (0.0..=1.0).contains(&q) => {}
                Some(_) => self.violation(n, format!("summary sample {id}: quantile is not a number in [0, 1]")),
            }
        }
        let cumulative = kind == Kind::Counter
            || (kind == Kind::Histogram && !sample.name.ends_with("_sum"))
            || (kind == Kind::Summary && sample.name.ends_with("_count"));
        if cumulative && sample.value < 0.0 {
            self.violation(n, format!("{kind} sample {id} is negative ({})", sample.value));
        }
    }

    /// Histogram and summary invariants, series by series.
    fn check_invariants(&mut self) {
        let mut found = Vec::new();
        for family in &self.families {
            match family.kind {
                Kind::Histogram => {
                    for h in family.histograms() {
                        let id = super::series_id(&family.name, h.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())));
                        let mut problem = |m: String| found.push((h.line, m));
                        for pair in h.buckets.windows(2) {
                            if pair[1].1 < pair[0].1 {
                                problem(format!(
                                    "histogram {id}: bucket le={} ({}) is below bucket le={} ({}); buckets are cumulative",
                                    fmt_le(pair[1].0),
                                    pair[1].1,
                                    fmt_le(pair[0].0),
                                    pair[0].1
                                ));
                            }
                        }
                        let inf = h.buckets.last().filter(|(le, _)| *le == f64::INFINITY).map(|(_, v)| *v);
                        match (inf, h.count) {
                            (None, _) => problem(format!("histogram {id} has no le=\"+Inf\" bucket")),
                            (Some(_), None) => problem(format!("histogram {id} has no _count")),
                            (Some(inf), Some(count)) if inf != count => problem(format!(
                                "histogram {id}: the +Inf bucket ({inf}) differs from _count ({count})"
                            )),
                            _ => {}
                        }
                        if h.sum.is_none() {
                            problem(format!("histogram {id} has no _sum"));
                        }
                    }
                }
                Kind::Summary => {
                    let mut groups: HashMap<String, (usize, bool, bool)> = HashMap::new();
                    for s in &family.samples {
                        let rest: Vec<(&str, &str)> = s
                            .labels
                            .iter()
                            .filter(|(k, _)| k != "quantile")
                            .map(|(k, v)| (k.as_str(), v.as_str()))
                            .collect();
                        let g = groups
                            .entry(super::series_id(&family.name, rest))
                            .or_insert((s.line, false, false));
                        g.1 |= s.name.ends_with("_sum") && s.name != family.name;
                        g.2 |= s.name.ends_with("_count") && s.name != family.name;
                    }
                    for (id, (line, sum, count)) in groups {
                        if !sum {
                            found.push((line, format!("summary {id} has no _sum")));
                        }
                        if !count {
                            found.push((line, format!("summary {id} has no _count")));
                        }
                    }
                }
                _ => {}
            }
        }
        for (line, message) in found {
            self.violation(line, message);
        }
    }
}

fn fmt_le(le: f64) -> String {
    if le == f64::INFINITY {
        "+Inf".into()
    } else {
        le.to_string()
    }
}

/// Parse the label set after `{`; returns the text after `}`. Escape problems and duplicate
/// label names go to `problems` (the sample is still usable); a broken grammar is an error.
fn parse_labels<'a>(
    mut rest: &'a str,
    labels: &mut Vec<(String, String)>,
    problems: &mut Vec<String>,
) -> Result<&'a str, String> {
    loop {
        rest = rest.trim_start_matches([' ', '\t']);
        if let Some(after) = rest.strip_prefix('}') {
            return Ok(after);
        }
        let end = rest.find(|c: char| !is_name_char(c)).unwrap_or(rest.len());
        let name = &rest[..end];
        if !is_label_name(name) {
            return Err(format!("invalid label name at {:?}", short(rest)));
        }
        rest = rest[end..].trim_start_matches([' ', '\t']);
        rest = rest
            .strip_prefix('=')
            .ok_or_else(|| format!("expected = after label {name}"))?
            .trim_start_matches([' ', '\t']);
        rest = rest
            .strip_prefix('"')
            .ok_or_else(|| format!("the value of label {name} is not quoted"))?;
        let close = closing_quote(rest).ok_or_else(|| format!("the value of label {name} has no closing quote"))?;
        let raw = &rest[..close];
        let value = unescape(raw, true).unwrap_or_else(|e| {
            problems.push(format!("label {name}: {e}"));
            raw.to_string()
        });
        if labels.iter().any(|(k, _)| k == name) {
            problems.push(format!("label {name} appears twice in one sample"));
        }
        labels.push((name.to_string(), value));
        rest = rest[close + 1..].trim_start_matches([' ', '\t']);
        if let Some(after) = rest.strip_prefix(',') {
            rest = after;
        } else if !rest.starts_with('}') {
            return Err(format!("expected , or }} after label {name}"));
        }
    }
}

/// Index of the first unescaped `"` in `s`.
fn closing_quote(s: &str) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => return Some(i),
            _ => {}
        }
    }
    None
}

/// Undo the format's escapes: `\\` and `\n` everywhere, `\"` in label values only.
fn unescape(s: &str, label_value: bool) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some('"') if label_value => out.push('"'),
            Some(other) => return Err(format!("invalid escape sequence \\{other}")),
            None => return Err("a backslash at the end".into()),
        }
    }
    Ok(out)
}

/// A sample value or `le`: a Go float literal, including `NaN`, `+Inf` and `-Inf`.
pub(super) fn float(s: &str) -> Option<f64> {
    if s.is_empty() || s.contains('_') {
        return None;
    }
    s.parse::<f64>().ok()
}

fn split_token(s: &str) -> (&str, &str) {
    let end = s.find([' ', '\t']).unwrap_or(s.len());
    let rest = &s[end..];
    (&s[..end], rest.strip_prefix([' ', '\t']).unwrap_or(rest))
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

fn is_metric_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':') && chars.all(is_name_char)
}

fn is_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn short(s: &str) -> String {
    let cut: String = s.chars().take(80).collect();
    if cut.len() < s.len() { format!("{cut}…") } else { cut }
}
