//! What GoFr's TRC scenarios read from the app they trace: the route they request, the header
//! carrying GoFr's correlation ID, and the app's own log lines. Shared by the export clauses
//! (`gofr.rs`) and the clauses about what is traced (`gofr_spans.rs`).

use engine::cx::App;
use harness::probe::Exchange;

/// The plain route every GoFr scenario traces (the reference candidate's `GET /hello`).
pub(super) const HELLO: &str = "/hello";

/// The response header carrying GoFr's correlation ID (the trace ID).
pub(super) const CORRELATION: &str = "x-correlation-id";

/// The first output line containing `text`, as printed, if there is one.
pub(super) fn log_line(app: &App, text: &str) -> Option<String> {
    app.running.output().find(|l| l.text.contains(text)).map(|l| l.plain())
}

/// The response's X-Correlation-ID, if it is 32 lowercase hex digits.
pub(super) fn correlation(ex: &Exchange) -> Option<String> {
    ex.header(CORRELATION)
        .filter(|v| v.len() == 32 && v.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()))
        .map(str::to_string)
}
