//! Standard Webhooks signatures: signing (the sender) and verification (what a receiver must do).
//!
//! `webhook-signature` is `v1,<base64 HMAC-SHA256 over "<webhook-id>.<webhook-timestamp>.<body>">`, keyed by the
//! base64-decoded part of a `whsec_<base64>` secret; while a key rotates the header carries one signature per
//! secret, space-separated, and a receiver accepts the request when any one matches any of its secrets.

use crate::error::VerifyError;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::fmt;
use subtle::ConstantTimeEq;

/// How far `webhook-timestamp` may be from the receiver's clock, in seconds (Standard Webhooks: 5 minutes).
pub const TIMESTAMP_TOLERANCE_SECS: i64 = 300;

/// The prefix every secret carries.
pub const SECRET_PREFIX: &str = "whsec_";

/// Shortest accepted key, in bytes after base64 decoding (128 bits).
pub const MIN_KEY_BYTES: usize = 16;

/// Longest accepted key, in bytes after base64 decoding.
pub const MAX_KEY_BYTES: usize = 256;

/// Length of an HMAC-SHA256 tag in bytes.
const TAG_BYTES: usize = 32;

/// Standard base64 that accepts keys written with or without `=` padding.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

type HmacSha256 = Hmac<Sha256>;

/// A signing key, decoded from its `whsec_<base64>` text. `Debug` never shows the key.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret {
    key: Vec<u8>,
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({} bytes)", self.key.len())
    }
}

impl Secret {
    /// Parses `whsec_<base64 key>`; the error says what is wrong without echoing the secret.
    pub fn parse(text: &str) -> Result<Secret, String> {
        let Some(b64) = text.strip_prefix(SECRET_PREFIX) else {
            return Err(format!("a secret must start with `{SECRET_PREFIX}` followed by a base64 key"));
        };
        let key = LENIENT
            .decode(b64.trim_end())
            .map_err(|_| format!("the part after `{SECRET_PREFIX}` is not valid base64"))?;
        if key.len() < MIN_KEY_BYTES {
            return Err(format!("the key is {} bytes; at least {MIN_KEY_BYTES} are needed", key.len()));
        }
        if key.len() > MAX_KEY_BYTES {
            return Err(format!("the key is {} bytes; at most {MAX_KEY_BYTES} are accepted", key.len()));
        }
        Ok(Secret { key })
    }

    /// A secret from raw key bytes (for receivers that store keys decoded).
    pub fn from_key(key: impl Into<Vec<u8>>) -> Secret {
        Secret { key: key.into() }
    }

    fn tag(&self, msg_id: &str, timestamp_secs: i64, body: &[u8]) -> [u8; TAG_BYTES] {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC accepts keys of any length");
        mac.update(msg_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp_secs.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac.finalize().into_bytes().into()
    }
}

/// One signature, `v1,<base64 HMAC-SHA256 of "{msg_id}.{timestamp_secs}.{body}">`.
pub fn sign(secret: &Secret, msg_id: &str, timestamp_secs: i64, body: &[u8]) -> String {
    let mut out = String::with_capacity(48);
    out.push_str("v1,");
    STANDARD.encode_string(secret.tag(msg_id, timestamp_secs, body), &mut out);
    out
}

/// The whole `webhook-signature` header: one signature per secret, space-separated (several during rotation).
pub fn signature_header(secrets: &[Secret], msg_id: &str, timestamp_secs: i64, body: &[u8]) -> String {
    let mut out = String::with_capacity(secrets.len() * 48);
    for (i, s) in secrets.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(&sign(s, msg_id, timestamp_secs, body));
    }
    out
}

/// Checks a webhook as a receiver must before acting on it.
///
/// - `timestamp_header` must be Unix seconds within [`TIMESTAMP_TOLERANCE_SECS`] of `now_secs` (either side);
/// - `signature_header` holds space-separated `<version>,<base64>` entries; entries of other versions are
///   ignored, `v1` entries that do not decode to a 32-byte tag simply do not match (so `v1,` alone, an empty
///   header, a truncated or garbled signature all fail);
/// - the request is accepted when any `v1` tag equals, in constant time, the HMAC of
///   `"{msg_id}.{timestamp}.{body}"` under any of `secrets`.
pub fn verify(
    secrets: &[Secret],
    msg_id: &str,
    timestamp_header: &str,
    signature_header: &str,
    body: &[u8],
    now_secs: i64,
) -> Result<(), VerifyError> {
    if secrets.is_empty() {
        return Err(VerifyError::NoSecrets);
    }
    let ts_text = timestamp_header.trim();
    if ts_text.is_empty() || ts_text.len() > 18 || !ts_text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(VerifyError::InvalidTimestamp);
    }
    let ts: i64 = ts_text.parse().map_err(|_| VerifyError::InvalidTimestamp)?;
    let skew = ts - now_secs;
    if skew.abs() > TIMESTAMP_TOLERANCE_SECS {
        return Err(VerifyError::TimestampOutOfTolerance { skew_secs: skew, tolerance_secs: TIMESTAMP_TOLERANCE_SECS });
    }
    let mut candidates: Vec<[u8; TAG_BYTES]> = Vec::new();
    let mut saw_v1 = false;
    for entry in signature_header.split_ascii_whitespace() {
        let Some((version, b64)) = entry.split_once(',') else { continue };
        if version != "v1" {
            continue;
        }
        saw_v1 = true;
        // Strict decoding: a signature is always written padded by us and by every Standard Webhooks library.
        if let Ok(bytes) = STANDARD.decode(b64) {
            if let Ok(tag) = <[u8; TAG_BYTES]>::try_from(bytes.as_slice()) {
                candidates.push(tag);
            }
        }
    }
    if !saw_v1 {
        return Err(VerifyError::NoSignature);
    }
    let mut matched = subtle::Choice::from(0u8);
    for secret in secrets {
        let expected = secret.tag(msg_id, ts, body);
        for c in &candidates {
            matched |= expected.ct_eq(c);
        }
    }
    if bool::from(matched) {
        Ok(())
    } else {
        Err(VerifyError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TS: i64 = 1_614_265_330;
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const EXPECTED: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn secret() -> Secret {
        Secret::parse(SECRET).unwrap()
    }

    fn other_secret() -> Secret {
        Secret::parse("whsec_c2VjcmV0LWtleS1udW1iZXItdHdvLWZvci10ZXN0cw==").unwrap()
    }

    #[test]
    fn spec_test_vector_signs() {
        assert_eq!(sign(&secret(), ID, TS, BODY), EXPECTED);
    }

    #[test]
    fn spec_test_vector_verifies() {
        assert_eq!(verify(&[secret()], ID, "1614265330", EXPECTED, BODY, TS), Ok(()));
        // At the edges of the tolerance, both ways.
        assert_eq!(verify(&[secret()], ID, "1614265330", EXPECTED, BODY, TS + 300), Ok(()));
        assert_eq!(verify(&[secret()], ID, "1614265330", EXPECTED, BODY, TS - 300), Ok(()));
    }

    #[test]
    fn tampered_body_id_or_timestamp_fails() {
        let tampered = br#"{"test": 2432232315}"#;
        assert_eq!(verify(&[secret()], ID, "1614265330", EXPECTED, tampered, TS), Err(VerifyError::Mismatch));
        assert_eq!(verify(&[secret()], "msg_other", "1614265330", EXPECTED, BODY, TS), Err(VerifyError::Mismatch));
        assert_eq!(verify(&[secret()], ID, "1614265331", EXPECTED, BODY, TS), Err(VerifyError::Mismatch));
    }

    #[test]
    fn wrong_secret_fails() {
        assert_eq!(verify(&[other_secret()], ID, "1614265330", EXPECTED, BODY, TS), Err(VerifyError::Mismatch));
        assert_eq!(verify(&[], ID, "1614265330", EXPECTED, BODY, TS), Err(VerifyError::NoSecrets));
    }

    #[test]
    fn empty_truncated_and_garbage_signatures_fail() {
        let s = [secret()];
        let v = |sig: &str| verify(&s, ID, "1614265330", sig, BODY, TS);
        assert_eq!(v(""), Err(VerifyError::NoSignature));
        assert_eq!(v("   "), Err(VerifyError::NoSignature));
        assert_eq!(v("v1"), Err(VerifyError::NoSignature));
        assert_eq!(v("v2,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="), Err(VerifyError::NoSignature));
        assert_eq!(v("v1,"), Err(VerifyError::Mismatch));
        assert_eq!(v("v1, "), Err(VerifyError::Mismatch));
        assert_eq!(v("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE"), Err(VerifyError::Mismatch));
        assert_eq!(v("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1O=="), Err(VerifyError::Mismatch));
        assert_eq!(v("v1,g0hM9SsE+OTPJTGt/tmIKtSy"), Err(VerifyError::Mismatch));
        assert_eq!(v("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=AAAA"), Err(VerifyError::Mismatch));
        assert_eq!(v("v1,!!!!"), Err(VerifyError::Mismatch));
        assert_eq!(v("v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="), Err(VerifyError::Mismatch));
        // Every prefix of the valid signature but the whole one fails.
        for n in 0..EXPECTED.len() {
            assert!(v(&EXPECTED[..n]).is_err(), "prefix of length {n} verified");
        }
        // One bad entry does not spoil a good one next to it.
        assert_eq!(v(&format!("v1, v1,garbage v1a,xyz {EXPECTED}")), Ok(()));
    }

    #[test]
    fn timestamps_outside_five_minutes_fail() {
        let s = [secret()];
        let sig = sign(&secret(), ID, TS, BODY);
        assert_eq!(
            verify(&s, ID, "1614265330", &sig, BODY, TS + 301),
            Err(VerifyError::TimestampOutOfTolerance { skew_secs: -301, tolerance_secs: 300 })
        );
        assert_eq!(
            verify(&s, ID, "1614265330", &sig, BODY, TS - 301),
            Err(VerifyError::TimestampOutOfTolerance { skew_secs: 301, tolerance_secs: 300 })
        );
        for bad in ["", "abc", "-1614265330", "1614265330.5", "1e9", "99999999999999999999999"] {
            assert_eq!(verify(&s, ID, bad, &sig, BODY, TS), Err(VerifyError::InvalidTimestamp), "{bad:?}");
        }
    }

    #[test]
    fn rotation_signs_with_every_secret_and_either_verifies() {
        let both = [secret(), other_secret()];
        let header = signature_header(&both, ID, TS, BODY);
        let parts: Vec<&str> = header.split(' ').collect();
        assert_eq!(parts, [EXPECTED, sign(&other_secret(), ID, TS, BODY).as_str()]);
        assert_eq!(verify(&[secret()], ID, "1614265330", &header, BODY, TS), Ok(()));
        assert_eq!(verify(&[other_secret()], ID, "1614265330", &header, BODY, TS), Ok(()));
        // A receiver holding both keys accepts a sender that already moved to the new one.
        let new_only = sign(&other_secret(), ID, TS, BODY);
        assert_eq!(verify(&both, ID, "1614265330", &new_only, BODY, TS), Ok(()));
        let third = Secret::parse("whsec_dGhpcmQtc2VjcmV0LW5vdC1pbi11c2UtYW55d2hlcmU=").unwrap();
        assert_eq!(verify(&[third], ID, "1614265330", &header, BODY, TS), Err(VerifyError::Mismatch));
    }

    #[test]
    fn secrets_must_be_whsec_base64_of_reasonable_length() {
        assert!(Secret::parse(SECRET).is_ok());
        assert!(Secret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap_err().contains("whsec_"));
        assert!(Secret::parse("whsec_not base64!").unwrap_err().contains("base64"));
        assert!(Secret::parse("whsec_c2hvcnQ=").unwrap_err().contains("at least"));
        assert!(Secret::parse("whsec_").is_err());
        // Padding is optional on input.
        assert_eq!(
            Secret::parse("whsec_c2VjcmV0LWtleS1udW1iZXItdHdvLWZvci10ZXN0cw").unwrap(),
            Secret::parse("whsec_c2VjcmV0LWtleS1udW1iZXItdHdvLWZvci10ZXN0cw==").unwrap()
        );
        assert_eq!(format!("{:?}", secret()), "Secret(24 bytes)");
    }
}
