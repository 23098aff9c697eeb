//! Scraping a metrics endpoint: one GET whose whole body is parsed, recorded as an [`Exchange`].
//!
//! [`crate::probe::Http`] keeps only the first few kilobytes of a body, which is right for
//! evidence and wrong for a metrics scrape (a GoFr scrape is tens of kilobytes). Scraping twice
//! (once for evidence, once for the text) would change the very counters being checked, so this
//! makes one request, parses the complete body, and returns an exchange whose body is cut the
//! same way the probe cuts it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Instant;

use super::Exposition;
use crate::probe::{Exchange, Outcome, ProbeError};
use crate::{redact, timeouts};

/// Bytes of the scraped body kept in the recorded exchange (the same as a probe keeps).
const BODY_KEPT: usize = 4096;

/// One scrape of a metrics endpoint.
#[derive(Debug, Clone)]
pub struct Scrape {
    /// The request and response, body truncated, for evidence.
    pub exchange: Exchange,
    /// The complete body (empty when there was no response).
    pub body: String,
    /// The body parsed.
    pub exposition: Exposition,
}

impl Scrape {
    /// The response status, if there was a response.
    pub fn status(&self) -> Option<u16> {
        self.exchange.status()
    }
}

/// `GET http://<addr><path>` with `headers`, on loopback only, within the standard request timeout.
pub async fn scrape(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Result<Scrape, ProbeError> {
    if !addr.ip().is_loopback() {
        return Err(ProbeError::NotLoopback(addr));
    }
    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(0)
        .timeout(timeouts::HTTP_REQUEST)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| ProbeError::Client(e.to_string()))?;
    let url = format!("http://{addr}{path}");
    let mut request = client.get(&url);
    let mut request_headers = BTreeMap::new();
    for (k, v) in headers {
        request = request.header(*k, *v);
        request_headers.insert(k.to_ascii_lowercase(), redact::text(v));
    }
    let start = Instant::now();
    let (outcome, body) = match request.send().await {
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
                    let body = String::from_utf8_lossy(&bytes).to_string();
                    let mut kept = body.clone();
                    if kept.len() > BODY_KEPT {
                        let cut = (0..=BODY_KEPT).rev().find(|i| kept.is_char_boundary(*i)).unwrap_or(0);
                        kept.truncate(cut);
                        kept.push_str("…(truncated)");
                    }
                    let outcome = Outcome::Response {
                        status,
                        headers,
                        body: redact::text(&kept),
                    };
                    (outcome, body)
                }
                Err(err) if err.is_timeout() => (Outcome::TimedOut, String::new()),
                Err(err) => (Outcome::Broken { error: describe(&err) }, String::new()),
            }
        }
        Err(err) if err.is_timeout() => (Outcome::TimedOut, String::new()),
        Err(err) if err.is_connect() && describe(&err).to_ascii_lowercase().contains("refused") => {
            (Outcome::Refused, String::new())
        }
        Err(err) => (Outcome::Broken { error: describe(&err) }, String::new()),
    };
    let exposition = Exposition::parse(&body);
    Ok(Scrape {
        exchange: Exchange {
            request: format!("GET {url}"),
            request_headers,
            outcome,
            elapsed: start.elapsed(),
        },
        body,
        exposition,
    })
}

/// The error with its source chain (reqwest's top-level message alone says little).
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
