//! The collector config the harness generates for one collector: where it listens, where it
//! forwards, and the settings that keep the forward hop faithful (see the module docs of
//! [`super`] for why each is there).
//!
//! Written as YAML text from a template: every value is an address the harness chose, so there is
//! nothing to escape, and the text is what a person debugging a run reads in the work directory.

use crate::service::otlp::OtlpReceiver;

use super::Ports;

/// The config for a collector listening on `ports` and forwarding to `upstream`.
pub(super) fn render(ports: &Ports, upstream: &OtlpReceiver) -> String {
    // Settings shared by both forwarding exporters: plain text, no compression (so the receiver
    // records what the collector itself chose to send), synchronous (no queue), no retry (the
    // receiver always answers; a retry would only hide a broken hop behind minutes of backoff).
    let hop = "    compression: none
    sending_queue:
      enabled: false
    retry_on_failure:
      enabled: false";
    format!(
        "extensions:
  health_check:
    endpoint: {health}

receivers:
  otlp/grpc:
    protocols:
      grpc:
        endpoint: {grpc}
  otlp/http:
    protocols:
      http:
        endpoint: {http}

exporters:
  otlp_grpc:
    endpoint: {up_grpc}
    tls:
      insecure: true
{hop}
  otlp_http:
    endpoint: {up_http}
{hop}
  debug:
    verbosity: basic

service:
  extensions: [health_check]
  telemetry:
    metrics:
      level: none
    logs:
      level: info
  pipelines:
    traces/grpc:
      receivers: [otlp/grpc]
      exporters: [otlp_grpc, debug]
    traces/http:
      receivers: [otlp/http]
      exporters: [otlp_http, debug]
",
        health = ports.health,
        grpc = ports.grpc,
        http = ports.http,
        up_grpc = upstream.grpc_addr(),
        up_http = upstream.http_endpoint(),
    )
}
