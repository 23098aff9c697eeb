//! An OAuth identity provider in miniature: an RSA key, its JWKS document, and RS256 tokens
//! signed with it, for clauses about a candidate that validates bearer tokens against a JWKS URL.
//!
//! Signing goes through rustls's ring provider (already linked for the TLS clauses), so no JWT or
//! RSA crate is needed. ring cannot generate RSA keys, so the key is a fixed, throwaway 2048-bit
//! test key checked in beside this file (`jwks/test_rsa_2048.pem`): it protects nothing, is
//! trusted only by a candidate the harness itself points at a loopback JWKS stub, and is never
//! written into evidence. The modulus and exponent published in the JWKS are read from the key's
//! own DER, so document and signatures always agree.

use std::sync::Arc;

use rustls::SignatureScheme;
use rustls::pki_types::PrivateKeyDer;
use rustls::pki_types::pem::PemObject;
use rustls::sign::SigningKey;
use serde_json::{Value, json};

/// The checked-in test key (PKCS#1 PEM). Test-only: see the module documentation.
const TEST_KEY_PEM: &str = include_str!("jwks/test_rsa_2048.pem");

/// Why a key could not be loaded or a token signed.
#[derive(Debug, thiserror::Error)]
#[error("JWKS test key: {0}")]
pub struct JwksError(String);

/// An RSA signing key with a key ID, publishable as a JWKS.
pub struct RsaJwk {
    kid: String,
    signer: Arc<dyn SigningKey>,
    n: Vec<u8>,
    e: Vec<u8>,
}

impl std::fmt::Debug for RsaJwk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RsaJwk").field("kid", &self.kid).finish_non_exhaustive()
    }
}

impl RsaJwk {
    /// The test key, published under key ID `kid`.
    pub fn test_key(kid: &str) -> Result<RsaJwk, JwksError> {
        let der = PrivateKeyDer::from_pem_slice(TEST_KEY_PEM.as_bytes()).map_err(|e| JwksError(e.to_string()))?;
        let (n, e) = match &der {
            PrivateKeyDer::Pkcs1(k) => modulus_and_exponent(k.secret_pkcs1_der())?,
            _ => return Err(JwksError("expected a PKCS#1 RSA key".into())),
        };
        let signer = rustls::crypto::ring::sign::any_supported_type(&der).map_err(|e| JwksError(e.to_string()))?;
        Ok(RsaJwk {
            kid: kid.to_string(),
            signer,
            n,
            e,
        })
    }

    /// The key ID.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The JWKS document publishing this key's public half: `{"keys":[{kty,kid,use,alg,n,e}]}`.
    pub fn jwks(&self) -> String {
        json!({"keys": [{
            "kty": "RSA",
            "kid": self.kid,
            "use": "sig",
            "alg": "RS256",
            "n": b64url(&self.n),
            "e": b64url(&self.e),
        }]})
        .to_string()
    }

    /// An RS256 JWT with `claims`, its header naming `kid` (normally [`RsaJwk::kid`]; another
    /// value makes a token whose key the verifier cannot find).
    pub fn sign(&self, kid: &str, claims: &Value) -> Result<String, JwksError> {
        let header = json!({"alg": "RS256", "typ": "JWT", "kid": kid});
        let signing_input = format!(
            "{}.{}",
            b64url(header.to_string().as_bytes()),
            b64url(claims.to_string().as_bytes())
        );
        let signer = self
            .signer
            .choose_scheme(&[SignatureScheme::RSA_PKCS1_SHA256])
            .ok_or_else(|| JwksError("the key cannot sign RS256".into()))?;
        let signature = signer
            .sign(signing_input.as_bytes())
            .map_err(|e| JwksError(e.to_string()))?;
        Ok(format!("{signing_input}.{}", b64url(&signature)))
    }
}

/// Base64url without padding (RFC 7515 §2).
pub fn b64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// `n` and `e` of a PKCS#1 `RSAPrivateKey ::= SEQUENCE { version, n, e, ... }`, as unsigned
/// big-endian bytes (DER's leading sign zero removed).
fn modulus_and_exponent(der: &[u8]) -> Result<(Vec<u8>, Vec<u8>), JwksError> {
    let (tag, body, _) = der_item(der)?;
    if tag != 0x30 {
        return Err(JwksError("RSAPrivateKey is not a SEQUENCE".into()));
    }
    let (_, _version, rest) = der_item(body)?;
    let (_, n, rest) = der_item(rest)?;
    let (_, e, _) = der_item(rest)?;
    let strip = |v: &[u8]| v.iter().skip_while(|b| **b == 0).copied().collect::<Vec<u8>>();
    Ok((strip(n), strip(e)))
}

/// One DER item: (tag, content, what follows it).
fn der_item(bytes: &[u8]) -> Result<(u8, &[u8], &[u8]), JwksError> {
    let short = || JwksError("truncated DER".into());
    let tag = *bytes.first().ok_or_else(short)?;
    let first = *bytes.get(1).ok_or_else(short)?;
    let (len, header) = if first & 0x80 == 0 {
        (usize::from(first), 2)
    } else {
        let count = usize::from(first & 0x7f);
        let raw = bytes.get(2..2 + count).ok_or_else(short)?;
        (
            raw.iter().fold(0usize, |acc, b| (acc << 8) | usize::from(*b)),
            2 + count,
        )
    };
    let body = bytes.get(header..header + len).ok_or_else(short)?;
    Ok((tag, body, &bytes[header + len..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url_matches_rfc4648_vectors() {
        assert_eq!(b64url(b""), "");
        assert_eq!(b64url(b"f"), "Zg");
        assert_eq!(b64url(b"fo"), "Zm8");
        assert_eq!(b64url(b"foo"), "Zm9v");
        assert_eq!(b64url(b"foobar"), "Zm9vYmFy");
        assert_eq!(b64url(&[0xfb, 0xff]), "-_8");
    }

    #[test]
    fn the_test_key_publishes_and_signs() {
        let key = RsaJwk::test_key("k1").unwrap();
        let jwks: Value = serde_json::from_str(&key.jwks()).unwrap();
        assert_eq!(jwks["keys"][0]["e"], "AQAB");
        // A 2048-bit modulus is 256 bytes: 342 base64url characters.
        assert_eq!(jwks["keys"][0]["n"].as_str().unwrap().len(), 342);
        let token = key.sign("k1", &json!({"sub": "x"})).unwrap();
        assert_eq!(token.split('.').count(), 3);
    }
}
