//! Dead-letter records: every rejected input, kept with why and where (`spec/events.md`, "Bad input").

use crate::decode::Reject;
use crate::json::write_str;
use base64::Engine as _;

/// `raw` (and `raw_b64`) are cut at this many bytes of input.
pub const RAW_LIMIT: usize = 64 * 1024;

/// Appends one dead-letter record as a JSON object (no newline).
///
/// `raw` holds the input as text, invalid UTF-8 replaced by U+FFFD, cut at 64 KiB (on a character
/// boundary); when the input was not valid UTF-8, `raw_b64` holds the base64 of the original bytes,
/// cut at the same 64 KiB. `total_len` is the input's full length when the caller only kept a prefix.
pub fn write_record(out: &mut String, reject: &Reject, source: &str, position: u64, raw: &[u8]) {
    out.push_str("{\"reason\":\"");
    out.push_str(reject.reason.code());
    out.push_str("\",\"detail\":");
    write_str(out, &reject.detail);
    out.push_str(",\"source\":");
    write_str(out, source);
    out.push_str(",\"position\":");
    out.push_str(&position.to_string());
    let cut = &raw[..raw.len().min(RAW_LIMIT)];
    out.push_str(",\"raw\":");
    match std::str::from_utf8(raw) {
        Ok(text) => {
            let mut end = cut.len();
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            write_str(out, &text[..end]);
        }
        Err(e) if e.error_len().is_none() && e.valid_up_to() >= cut.len() => {
            // Valid UTF-8 up to the cut; only a truncated tail character is incomplete.
            write_str(out, &String::from_utf8_lossy(cut));
        }
        Err(_) => {
            write_str(out, &String::from_utf8_lossy(cut));
            out.push_str(",\"raw_b64\":\"");
            out.push_str(&base64::engine::general_purpose::STANDARD.encode(cut));
            out.push('"');
        }
    }
    out.push('}');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::Reason;

    fn record(raw: &[u8]) -> serde_json::Value {
        let mut s = String::new();
        write_record(&mut s, &Reject::new(Reason::InvalidJson, "bad \"x\""), "in.jsonl", 7, raw);
        serde_json::from_str(&s).unwrap()
    }

    #[test]
    fn valid_text_has_no_base64() {
        let v = record(b"{oops");
        assert_eq!(v["reason"], "invalid_json");
        assert_eq!(v["detail"], "bad \"x\"");
        assert_eq!(v["source"], "in.jsonl");
        assert_eq!(v["position"], 7);
        assert_eq!(v["raw"], "{oops");
        assert!(v.get("raw_b64").is_none());
    }

    #[test]
    fn invalid_utf8_is_replaced_and_kept_in_base64() {
        let v = record(b"a\xffb");
        assert_eq!(v["raw"], "a\u{fffd}b");
        assert_eq!(v["raw_b64"], "Yf9i");
    }

    #[test]
    fn raw_is_cut_at_64_kib() {
        let big = "é".repeat(40_000);
        let v = record(big.as_bytes());
        let raw = v["raw"].as_str().unwrap();
        assert!(raw.len() <= RAW_LIMIT && raw.len() > RAW_LIMIT - 4);
        assert!(v.get("raw_b64").is_none());
    }
}
