//! The parser on hand-written exposition text: valid documents parse clean into the right
//! families, and each broken document reports the violation it contains (and only that).

use super::*;

fn messages(text: &str) -> Vec<String> {
    Exposition::parse(text)
        .violations
        .iter()
        .map(ToString::to_string)
        .collect()
}

/// Exactly one violation, containing `needle`.
fn one_violation(text: &str, needle: &str) {
    let found = messages(text);
    assert_eq!(
        found.len(),
        1,
        "expected one violation about {needle:?}, got {found:#?}"
    );
    assert!(found[0].contains(needle), "expected {needle:?} in {found:#?}");
}

const VALID: &str = r#"# HELP http_requests_total The total number of HTTP requests.
# TYPE http_requests_total counter
http_requests_total{method="post",code="200"} 1027 1395066363000
http_requests_total{method="post",code="400"}    3 1395066363000

# A normal comment.
# HELP msdos_file_access_time_seconds Escaping in HELP: \\ and \n.
# TYPE msdos_file_access_time_seconds gauge
msdos_file_access_time_seconds{path="C:\\DIR\\FILE.TXT",error="Cannot find file:\n\"FILE.TXT\""} 1.458255915e9
# TYPE metric_without_timestamp_and_labels gauge
metric_without_timestamp_and_labels 12.47
# TYPE odd_values untyped
odd_values{which="nan"} NaN
odd_values{which="inf"} +Inf
odd_values{which="minus_inf",} -Inf
# HELP http_request_duration_seconds A histogram of the request duration.
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{le="0.05"} 24054
http_request_duration_seconds_bucket{le="0.1"} 33444
http_request_duration_seconds_bucket{le="0.2"} 100392
http_request_duration_seconds_bucket{le="0.5"} 129389
http_request_duration_seconds_bucket{le="1"} 133988
http_request_duration_seconds_bucket{le="+Inf"} 144320
http_request_duration_seconds_sum 53423
http_request_duration_seconds_count 144320
# HELP rpc_duration_seconds A summary of the RPC duration in seconds.
# TYPE rpc_duration_seconds summary
rpc_duration_seconds{quantile="0.01"} 3102
rpc_duration_seconds{quantile="0.5"} 4773
rpc_duration_seconds{quantile="0.99"} 76656
rpc_duration_seconds_sum 1.7560473e+07
rpc_duration_seconds_count 2693
"#;

#[test]
fn the_reference_example_parses_clean() {
    let e = Exposition::parse(VALID);
    assert!(e.violations.is_empty(), "{:#?}", e.violations);
    let names: Vec<&str> = e.families.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "http_requests_total",
            "msdos_file_access_time_seconds",
            "metric_without_timestamp_and_labels",
            "odd_values",
            "http_request_duration_seconds",
            "rpc_duration_seconds"
        ]
    );
    let requests = e.family("http_requests_total").unwrap();
    assert_eq!(requests.kind, Kind::Counter);
    assert!(requests.typed);
    assert_eq!(requests.help.as_deref(), Some("The total number of HTTP requests."));
    assert_eq!(requests.samples[0].timestamp, Some(1395066363000));
    assert_eq!(e.total("http_requests_total", &[("method", "post")]), 1030.0);

    let msdos = &e.family("msdos_file_access_time_seconds").unwrap();
    assert_eq!(msdos.help.as_deref(), Some("Escaping in HELP: \\ and \n."));
    assert_eq!(msdos.samples[0].label("path"), Some("C:\\DIR\\FILE.TXT"));
    assert_eq!(msdos.samples[0].label("error"), Some("Cannot find file:\n\"FILE.TXT\""));
    assert_eq!(msdos.samples[0].value, 1.458255915e9);

    let odd = &e.family("odd_values").unwrap().samples;
    assert!(odd[0].value.is_nan());
    assert_eq!(odd[1].value, f64::INFINITY);
    assert_eq!(odd[2].value, f64::NEG_INFINITY);

    let hist = e.family("http_request_duration_seconds").unwrap().histograms();
    assert_eq!(hist.len(), 1);
    assert_eq!(hist[0].bounds(), [0.05, 0.1, 0.2, 0.5, 1.0]);
    assert_eq!(hist[0].bucket(f64::INFINITY), Some(144320.0));
    assert_eq!((hist[0].sum, hist[0].count), (Some(53423.0), Some(144320.0)));

    let summary = e.family("rpc_duration_seconds").unwrap();
    assert_eq!(summary.kind, Kind::Summary);
    assert_eq!(summary.samples.len(), 5);
}

#[test]
fn labelled_histograms_are_grouped_per_series_and_buckets_sorted_by_le() {
    let text = "# TYPE h histogram\n\
        h_bucket{route=\"b\",le=\"+Inf\"} 2\n\
        h_bucket{route=\"b\",le=\"10\"} 2\n\
        h_bucket{route=\"b\",le=\"5\"} 1\n\
        h_sum{route=\"b\"} 9\n\
        h_count{route=\"b\"} 2\n\
        h_bucket{route=\"a\",le=\"5\"} 0\n\
        h_bucket{route=\"a\",le=\"+Inf\"} 0\n\
        h_sum{route=\"a\"} 0\n\
        h_count{route=\"a\"} 0\n";
    let e = Exposition::parse(text);
    assert!(e.violations.is_empty(), "{:#?}", e.violations);
    let hist = e.family("h").unwrap().histograms();
    assert_eq!(hist.len(), 2);
    assert_eq!(hist[0].label("route"), Some("b"));
    assert_eq!(hist[0].buckets, [(5.0, 1.0), (10.0, 2.0), (f64::INFINITY, 2.0)]);
}

#[test]
fn empty_text_and_metadata_only_families_are_valid() {
    assert!(Exposition::parse("").violations.is_empty());
    let e = Exposition::parse("# HELP a_total A.\n# TYPE a_total counter\n");
    assert!(e.violations.is_empty());
    assert!(e.family("a_total").unwrap().samples.is_empty());
}

#[test]
fn a_sample_without_type_is_reported_once_per_family() {
    let found = messages("x 1\nx{a=\"1\"} 2\n# HELP y Y.\ny 3\n");
    assert_eq!(found.len(), 2, "{found:#?}");
    assert!(found[0].starts_with("line 1:") && found[0].contains("sample x has no # TYPE"));
    assert!(found[1].starts_with("line 4:") && found[1].contains("sample y has no # TYPE"));
}

#[test]
fn a_counter_with_a_total_sample_under_a_bare_type_is_untyped() {
    // The GoFr docs' sample shows exactly this shape (`# TYPE x counter` then `x_total 87`).
    one_violation(
        "# TYPE transaction_success counter\ntransaction_success_total 87\n",
        "sample transaction_success_total has no # TYPE",
    );
}

#[test]
fn duplicate_series_are_reported_whatever_the_label_order() {
    one_violation(
        "# TYPE c counter\nc{a=\"1\",b=\"2\"} 1\nc{b=\"2\",a=\"1\"} 1\n",
        "duplicate series c{a=\"1\",b=\"2\"}",
    );
}

#[test]
fn metadata_rules() {
    one_violation("# TYPE g gauge\n# TYPE g gauge\ng 1\n", "second # TYPE for g");
    one_violation("# HELP g a\n# HELP g b\n# TYPE g gauge\ng 1\n", "second # HELP for g");
    one_violation("# TYPE g gaige\n", "unknown type \"gaige\"");
    one_violation("# TYPE 1g gauge\n", "invalid metric name");
    one_violation(
        "# HELP g bad \\t escape\n# TYPE g gauge\n",
        "invalid escape sequence \\t",
    );
    let found = messages("# HELP g G.\ng 1\n# TYPE g gauge\n");
    assert!(found.iter().any(|m| m.contains("no # TYPE")), "{found:#?}");
    assert!(
        found.iter().any(|m| m.contains("comes after its samples")),
        "{found:#?}"
    );
}

#[test]
fn a_family_split_in_two_groups_is_reported() {
    one_violation(
        "# TYPE a gauge\na{x=\"1\"} 1\n# TYPE b gauge\nb 1\na{x=\"2\"} 2\n",
        "lines of family a are not grouped",
    );
}

#[test]
fn line_grammar_errors() {
    for (text, needle) in [
        ("# TYPE g gauge\ng{a=\"1\"}1\n", "expected a space"),
        ("# TYPE g gauge\ng\n", "without a value"),
        ("# TYPE g gauge\ng one\n", "invalid sample value \"one\""),
        ("# TYPE g gauge\ng 1 2 3\n", "after the timestamp"),
        ("# TYPE g gauge\ng 1 12.5\n", "invalid timestamp"),
        ("# TYPE g gauge\ng{a=1} 1\n", "not quoted"),
        ("# TYPE g gauge\ng{a=\"1} 1\n", "no closing quote"),
        ("# TYPE g gauge\ng{a=\"1\" b=\"2\"} 1\n", "expected , or }"),
        ("# TYPE g gauge\ng{1a=\"1\"} 1\n", "invalid label name"),
        ("# TYPE g gauge\ng{a=\"\\x\"} 1\n", "invalid escape sequence \\x"),
        ("# TYPE g gauge\ng{a=\"1\",a=\"2\"} 1\n", "label a appears twice"),
        ("# TYPE g gauge\ng 1", "does not end with a line feed"),
        ("# TYPE g gauge\r\ng 1\n", "carriage return"),
        ("2g 1\n", "invalid metric name"),
    ] {
        one_violation(text, needle);
    }
}

#[test]
fn counters_must_not_be_negative() {
    one_violation("# TYPE c counter\nc -1\n", "counter sample c is negative");
    assert!(messages("# TYPE g gauge\ng -1\n").is_empty());
}

#[test]
fn histogram_invariants() {
    let ok_tail = "h_sum 3\nh_count 2\n";
    // Buckets not cumulative.
    one_violation(
        &format!(
            "# TYPE h histogram\nh_bucket{{le=\"1\"}} 2\nh_bucket{{le=\"5\"}} 1\nh_bucket{{le=\"+Inf\"}} 2\n{ok_tail}"
        ),
        "bucket le=5 (1) is below bucket le=1 (2)",
    );
    // No +Inf bucket.
    one_violation(
        &format!("# TYPE h histogram\nh_bucket{{le=\"1\"}} 2\n{ok_tail}"),
        "no le=\"+Inf\" bucket",
    );
    // +Inf differs from _count.
    one_violation(
        "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 3\nh_sum 3\nh_count 2\n",
        "the +Inf bucket (3) differs from _count (2)",
    );
    // No _sum, no _count.
    one_violation(
        "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_count 2\n",
        "has no _sum",
    );
    one_violation(
        "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_sum 2\n",
        "has no _count",
    );
    // Bucket without le, or with a non-numeric le.
    let found = messages(&format!(
        "# TYPE h histogram\nh_bucket 2\nh_bucket{{le=\"+Inf\"}} 2\n{ok_tail}"
    ));
    assert!(found.iter().any(|m| m.contains("has no le label")), "{found:#?}");
    one_violation(
        &format!("# TYPE h histogram\nh_bucket{{le=\"x\"}} 2\nh_bucket{{le=\"+Inf\"}} 2\n{ok_tail}"),
        "le \"x\" is not a number",
    );
    // A bare sample named like the histogram.
    let found = messages(&format!(
        "# TYPE h histogram\nh 1\nh_bucket{{le=\"+Inf\"}} 2\n{ok_tail}"
    ));
    assert!(found.iter().any(|m| m.contains("must be named h_bucket")), "{found:#?}");
    // The invariants hold per label set: a good series does not hide a bad one.
    one_violation(
        "# TYPE h histogram\n\
         h_bucket{r=\"a\",le=\"+Inf\"} 1\nh_sum{r=\"a\"} 1\nh_count{r=\"a\"} 1\n\
         h_bucket{r=\"b\",le=\"+Inf\"} 1\nh_sum{r=\"b\"} 1\nh_count{r=\"b\"} 2\n",
        "histogram h{r=\"b\"}: the +Inf bucket (1) differs from _count (2)",
    );
}

#[test]
fn summary_invariants() {
    one_violation(
        "# TYPE s summary\ns{quantile=\"0.5\"} 1\ns_count 1\n",
        "summary s has no _sum",
    );
    one_violation(
        "# TYPE s summary\ns{quantile=\"1.5\"} 1\ns_sum 1\ns_count 1\n",
        "quantile is not a number in [0, 1]",
    );
    one_violation("# TYPE s summary\ns 1\ns_sum 1\ns_count 1\n", "has no quantile label");
}

#[test]
fn counter_regressions_across_scrapes() {
    let before = Exposition::parse(
        "# TYPE c counter\nc{r=\"a\"} 5\nc{r=\"b\"} 1\n# TYPE g gauge\ng 9\n\
         # TYPE h histogram\nh_bucket{le=\"+Inf\"} 4\nh_sum 10\nh_count 4\n",
    );
    let grown = Exposition::parse(
        "# TYPE c counter\nc{r=\"a\"} 6\nc{r=\"b\"} 1\nc{r=\"c\"} 1\n# TYPE g gauge\ng 1\n\
         # TYPE h histogram\nh_bucket{le=\"+Inf\"} 5\nh_sum 9\nh_count 5\n",
    );
    // Gauges may fall and a histogram's _sum is not checked (observations can be negative).
    assert!(counter_regressions(&before, &grown).is_empty());
    let shrunk = Exposition::parse(
        "# TYPE c counter\nc{r=\"a\"} 4\n# TYPE g gauge\ng 9\n\
         # TYPE h histogram\nh_bucket{le=\"+Inf\"} 3\nh_sum 10\nh_count 3\n",
    );
    let found = counter_regressions(&before, &shrunk);
    assert_eq!(
        found,
        [
            "c{r=\"a\"} went from 5 to 4",
            "c{r=\"b\"} (1) disappeared",
            "h_bucket{le=\"+Inf\"} went from 4 to 3",
            "h_count went from 4 to 3",
        ]
    );
}

#[test]
fn series_ids_sort_and_escape_labels() {
    assert_eq!(
        series_id("m", [("b", "x\"y"), ("a", "1\\2\n")]),
        "m{a=\"1\\\\2\\n\",b=\"x\\\"y\"}"
    );
    assert_eq!(series_id("m", []), "m");
}
