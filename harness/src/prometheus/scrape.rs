//! Scraping a metrics endpoint: one GET whose whole body is parsed, recorded as an [`Exchange`].
//!
//! A recorded exchange keeps only the first few kilobytes of a body, which is right for evidence
//! and wrong for a metrics scrape (a GoFr scrape is tens of kilobytes). Scraping twice (once for
//! evidence, once for the text) would change the very counters being checked, so this makes one
//! request through [`Http::send_full`] and parses the complete body.

use std::net::SocketAddr;

use super::Exposition;
use crate::probe::{Exchange, Http, ProbeError};

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
    let (exchange, body) = Http::new()?.send_full("GET", addr, path, headers, None).await?;
    let exposition = Exposition::parse(&body);
    Ok(Scrape {
        exchange,
        body,
        exposition,
    })
}
