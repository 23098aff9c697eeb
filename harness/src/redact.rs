//! Secrets never reach a report or a log unredacted.
//!
//! Two rules, applied to every environment record and every piece of text the harness keeps:
//! a variable whose *name* says it is secret has its value replaced, and every value the harness
//! *knows* is secret (a generated database password, a JWT secret it handed a candidate) is
//! replaced wherever it appears, for instance inside a `DATABASE_URL` or in a candidate's own log
//! line. Secrets are registered once, process-wide, when they are created.

use std::collections::BTreeMap;
use std::sync::RwLock;

/// What a redacted value is replaced with.
pub const REDACTED: &str = "<redacted>";

static KNOWN: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Name fragments that mark an environment variable as secret.
const SECRET_NAME_PARTS: &[&str] = &[
    "SECRET",
    "PASSWORD",
    "PASSWD",
    "TOKEN",
    "API_KEY",
    "APIKEY",
    "PRIVATE_KEY",
    "AUTH_KEY",
];

/// Remember `secret` so that it is redacted wherever it appears. Short strings are ignored: they
/// would redact innocent text and are not real secrets.
pub fn register_secret(secret: impl Into<String>) {
    let secret = secret.into();
    if secret.len() < 6 {
        return;
    }
    let mut known = KNOWN.write().unwrap_or_else(|p| p.into_inner());
    if !known.contains(&secret) {
        known.push(secret);
        // Longest first, so a secret containing another is replaced whole.
        known.sort_by_key(|s| std::cmp::Reverse(s.len()));
    }
}

/// A new random secret of `len` ASCII letters and digits, already registered for redaction.
/// Alphanumeric so that it needs no quoting in SQL, a URL or an env file.
pub fn new_secret(len: usize) -> std::io::Result<String> {
    use std::io::Read;
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut urandom = std::fs::File::open("/dev/urandom")?;
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        urandom.read_exact(&mut buf)?;
        // 248 = 4 * 62: rejecting bytes above it keeps every character equally likely.
        for &b in buf.iter().filter(|&&b| b < 248) {
            if out.len() == len {
                break;
            }
            out.push(ALPHABET[usize::from(b) % ALPHABET.len()] as char);
        }
    }
    register_secret(out.clone());
    Ok(out)
}

/// True when a variable with this name holds a secret.
pub fn is_secret_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    SECRET_NAME_PARTS.iter().any(|part| upper.contains(part))
}

/// `text` with every known secret replaced.
pub fn text(text: &str) -> String {
    let known = KNOWN.read().unwrap_or_else(|p| p.into_inner());
    let mut out = text.to_string();
    for secret in known.iter() {
        if out.contains(secret.as_str()) {
            out = out.replace(secret.as_str(), REDACTED);
        }
    }
    out
}

/// An environment with secret-named values replaced and known secrets redacted everywhere.
pub fn env(env: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    env.iter()
        .map(|(k, v)| {
            let v = if is_secret_name(k) && !v.is_empty() {
                REDACTED.to_string()
            } else {
                text(v)
            };
            (k.clone(), v)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_by_name_and_by_value() {
        register_secret("s3cr3t-passw0rd-xyz");
        let mut e = BTreeMap::new();
        e.insert("JWT_SECRET".to_string(), "abc".to_string());
        e.insert(
            "DATABASE_URL".to_string(),
            "postgres://conform:s3cr3t-passw0rd-xyz@127.0.0.1:5432/x".to_string(),
        );
        e.insert("PORT".to_string(), "8080".to_string());
        e.insert("DB_PASSWORD".to_string(), String::new());
        let r = env(&e);
        assert_eq!(r["JWT_SECRET"], REDACTED);
        assert_eq!(r["DATABASE_URL"], "postgres://conform:<redacted>@127.0.0.1:5432/x");
        assert_eq!(r["PORT"], "8080");
        assert_eq!(
            r["DB_PASSWORD"], "",
            "an empty secret is shown as empty: that is itself evidence"
        );
        assert_eq!(text("dsn password=s3cr3t-passw0rd-xyz"), "dsn password=<redacted>");
    }
}
