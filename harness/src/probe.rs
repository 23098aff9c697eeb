//! Probing a candidate from the outside: HTTP requests and raw TCP connects, loopback only.
//!
//! Every HTTP request becomes an [`Exchange`] (request, status, headers, body, timing) that a
//! scenario keeps as evidence. The client never pools connections: drain clauses are about what
//! happens to *new* connections, and a pooled keep-alive connection would hide a closed listener.
//! Targets are checked to be loopback before anything is sent.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde::Serialize;

/// One HTTP request and what came back: plain records, defined in [`crate::record`].
pub use crate::record::{Exchange, Outcome};
use crate::{redact, timeouts};

/// Bytes of a response body kept in evidence.
pub const BODY_KEPT: usize = 4096;

/// Why a probe could not be made at all (as opposed to a response the candidate gave).
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The harness refuses to send traffic off the machine.
    #[error("refusing to probe {0}: conform only sends traffic to loopback addresses")]
    NotLoopback(SocketAddr),
    /// The HTTP client could not be built.
    #[error("could not build the HTTP client: {0}")]
    Client(String),
}

impl From<ProbeError> for crate::verdict::Failure {
    fn from(err: ProbeError) -> Self {
        crate::verdict::Failure::harness(err.to_string())
    }
}

/// An HTTP client for probing candidates.
#[derive(Debug, Clone)]
pub struct Http {
    client: reqwest::Client,
}

impl Http {
    /// A client with the standard per-request timeout.
    pub fn new() -> Result<Http, ProbeError> {
        Http::with_timeout(timeouts::HTTP_REQUEST)
    }

    /// A client with a specific per-request timeout.
    pub fn with_timeout(timeout: Duration) -> Result<Http, ProbeError> {
        let client = reqwest::Client::builder()
            .no_proxy()
            .pool_max_idle_per_host(0)
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ProbeError::Client(e.to_string()))?;
        Ok(Http { client })
    }

    /// `GET http://<addr><path>`.
    pub async fn get(&self, addr: SocketAddr, path: &str) -> Result<Exchange, ProbeError> {
        self.send("GET", addr, path, &[], None).await
    }

    /// Send a request to a loopback address and record the exchange.
    pub async fn send(
        &self,
        method: &str,
        addr: SocketAddr,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<String>,
    ) -> Result<Exchange, ProbeError> {
        Ok(self.send_full(method, addr, path, headers, body).await?.0)
    }

    /// Like [`Http::send`], also returning the complete response body (empty when there was no
    /// response); the exchange keeps only the first [`BODY_KEPT`] bytes, for evidence. One request
    /// serves both, which matters when reading the body changes what is measured (a scrape).
    pub async fn send_full(
        &self,
        method: &str,
        addr: SocketAddr,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<String>,
    ) -> Result<(Exchange, String), ProbeError> {
        if !addr.ip().is_loopback() {
            return Err(ProbeError::NotLoopback(addr));
        }
        let url = format!("http://{addr}{path}");
        let method_v = reqwest::Method::from_bytes(method.as_bytes()).map_err(|e| ProbeError::Client(e.to_string()))?;
        let mut req = self.client.request(method_v, &url);
        let mut request_headers = BTreeMap::new();
        for (k, v) in headers {
            req = req.header(*k, *v);
            let shown = if redact::is_secret_name(k) || k.eq_ignore_ascii_case("authorization") {
                redact::REDACTED.to_string()
            } else {
                redact::text(v)
            };
            request_headers.insert(k.to_ascii_lowercase(), shown);
        }
        if let Some(body) = body {
            req = req.body(body);
        }
        let start = Instant::now();
        let mut full = String::new();
        let outcome = match req.send().await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let mut headers: BTreeMap<String, String> = BTreeMap::new();
                for (name, value) in resp.headers() {
                    let value = String::from_utf8_lossy(value.as_bytes()).to_string();
                    headers
                        .entry(name.as_str().to_string())
                        .and_modify(|v| {
                            v.push_str(", ");
                            v.push_str(&value);
                        })
                        .or_insert(value);
                }
                match resp.bytes().await {
                    Ok(bytes) => {
                        full = String::from_utf8_lossy(&bytes).to_string();
                        let mut body = full.clone();
                        if body.len() > BODY_KEPT {
                            let cut = (0..=BODY_KEPT).rev().find(|i| body.is_char_boundary(*i)).unwrap_or(0);
                            body.truncate(cut);
                            body.push_str("…(truncated)");
                        }
                        Outcome::Response {
                            status,
                            headers,
                            body: redact::text(&body),
                        }
                    }
                    Err(err) if err.is_timeout() => Outcome::TimedOut,
                    Err(err) => Outcome::Broken { error: describe(&err) },
                }
            }
            Err(err) => classify(&err),
        };
        let exchange = Exchange {
            request: format!("{method} {url}"),
            request_headers,
            outcome,
            elapsed: start.elapsed(),
        };
        Ok((exchange, full))
    }
}

fn classify(err: &reqwest::Error) -> Outcome {
    if err.is_timeout() {
        return Outcome::TimedOut;
    }
    let text = describe(err);
    if err.is_connect() && text.to_ascii_lowercase().contains("refused") {
        Outcome::Refused
    } else {
        Outcome::Broken { error: text }
    }
}

/// The error with its whole source chain: reqwest's top-level message alone says little.
fn describe(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// What a plain TCP connect found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Connect {
    /// The connection was accepted.
    Accepted,
    /// Refused: nothing listens there.
    Refused,
    /// No answer within the timeout.
    TimedOut,
    /// Some other error.
    Failed,
}

/// Try a TCP connection to a loopback address.
pub async fn tcp_connect(addr: SocketAddr, timeout: Duration) -> Result<Connect, ProbeError> {
    if !addr.ip().is_loopback() {
        return Err(ProbeError::NotLoopback(addr));
    }
    Ok(
        match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr)).await {
            Ok(Ok(_)) => Connect::Accepted,
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => Connect::Refused,
            Ok(Err(_)) => Connect::Failed,
            Err(_) => Connect::TimedOut,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn refuses_non_loopback_targets() {
        let http = Http::new().unwrap();
        let err = http.get("192.0.2.1:80".parse().unwrap(), "/").await.unwrap_err();
        assert!(matches!(err, ProbeError::NotLoopback(_)));
        let err = tcp_connect("198.51.100.7:80".parse().unwrap(), Duration::from_millis(10))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("loopback"));
    }

    #[tokio::test]
    async fn refused_when_nothing_listens() {
        let port = crate::ports::free_port().unwrap();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let ex = Http::new().unwrap().get(addr, "/x").await.unwrap();
        assert_eq!(ex.outcome, Outcome::Refused, "{}", ex.summary());
        assert_eq!(
            tcp_connect(addr, Duration::from_secs(1)).await.unwrap(),
            Connect::Refused
        );
    }
}
