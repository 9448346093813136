//! `vigil webhook verify`: checks a Standard Webhooks signature exactly as a receiver should
//! (the same function a Rust receiver would call: `vigil_webhook::verify`).

use anyhow::{anyhow, Context, Result};
use vigil_webhook::{verify, Secret};

/// Exit 0 when the signature is valid, 1 when it is not (with the reason on stderr).
pub fn verify_cmd(
    secret: &str,
    id: &str,
    timestamp: &str,
    signature: &str,
    body_file: &str,
    now: Option<i64>,
) -> Result<u8> {
    let secret = Secret::parse(secret).map_err(|e| anyhow!("--secret: {e}"))?;
    let body = if body_file == "-" {
        let mut b = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut b).context("cannot read the body from stdin")?;
        b
    } else {
        std::fs::read(body_file).with_context(|| format!("cannot read {body_file}"))?
    };
    let now = now.unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
    });
    match verify(std::slice::from_ref(&secret), id, timestamp, signature, &body, now) {
        Ok(()) => {
            eprintln!("valid");
            Ok(0)
        }
        Err(e) => {
            eprintln!("invalid: {e}");
            Ok(1)
        }
    }
}
