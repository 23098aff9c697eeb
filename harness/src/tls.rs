//! TLS for clauses about HTTPS listeners: a throwaway self-signed certificate to hand a
//! candidate, and a client that completes a real handshake with it.
//!
//! The client trusts exactly one certificate, the one the harness generated for this scenario
//! (pinned by its DER bytes), so a handshake proves the candidate serves TLS *with the files it
//! was given*, not merely that something answers on the port.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::probe::ProbeError;

/// A self-signed certificate and its private key, for `localhost` and `127.0.0.1`.
#[derive(Clone)]
pub struct SelfSigned {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The private key, PEM (a secret: never put it in evidence).
    pub key_pem: String,
    cert_der: Vec<u8>,
}

impl std::fmt::Debug for SelfSigned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SelfSigned")
            .field("key_pem", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl SelfSigned {
    /// Generate a fresh certificate.
    pub fn generate() -> Result<SelfSigned, ProbeError> {
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .map_err(|e| ProbeError::Client(format!("generating a self-signed certificate: {e}")))?;
        Ok(SelfSigned {
            cert_pem: cert.cert.pem(),
            key_pem: cert.signing_key.serialize_pem(),
            cert_der: cert.cert.der().to_vec(),
        })
    }
}

/// What a TLS client saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handshake {
    /// The handshake completed with the pinned certificate; the HTTP status line that followed.
    Completed {
        /// Negotiated protocol, e.g. `TLSv1_3`.
        protocol: String,
        /// First line of the HTTP response to a GET, if any.
        status_line: String,
    },
    /// The handshake failed (plain HTTP on the port, wrong certificate, ...).
    Failed(String),
}

#[derive(Debug)]
struct Pinned(Vec<u8>);

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.0.as_slice() {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(
                "the server presented a certificate other than the one it was given".into(),
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            m,
            c,
            d,
            &rustls::crypto::ring::default_provider().signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            m,
            c,
            d,
            &rustls::crypto::ring::default_provider().signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        rustls::crypto::ring::default_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Connect to a loopback `addr`, complete a TLS handshake trusting only `cert`, and GET `path`.
pub async fn get(addr: SocketAddr, cert: &SelfSigned, path: &str, timeout: Duration) -> Result<Handshake, ProbeError> {
    if !addr.ip().is_loopback() {
        return Err(ProbeError::NotLoopback(addr));
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| ProbeError::Client(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Pinned(cert.cert_der.clone())))
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let attempt = async {
        let tcp = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let name = ServerName::try_from("localhost").expect("static name");
        let mut tls = connector
            .connect(name, tcp)
            .await
            .map_err(|e| format!("handshake: {e}"))?;
        let protocol = tls
            .get_ref()
            .1
            .protocol_version()
            .map(|v| format!("{v:?}"))
            .unwrap_or_default();
        let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        tls.write_all(request.as_bytes())
            .await
            .map_err(|e| format!("write: {e}"))?;
        let mut response = Vec::new();
        // The server closes after the response (Connection: close); a reset after data is fine.
        let _ = tls.read_to_end(&mut response).await;
        let status_line = String::from_utf8_lossy(&response)
            .lines()
            .next()
            .unwrap_or("")
            .to_string();
        Ok::<Handshake, String>(Handshake::Completed { protocol, status_line })
    };
    Ok(match tokio::time::timeout(timeout, attempt).await {
        Ok(Ok(done)) => done,
        Ok(Err(why)) => Handshake::Failed(why),
        Err(_) => Handshake::Failed(format!("no TLS answer within {timeout:?}")),
    })
}
