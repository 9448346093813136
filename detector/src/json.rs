//! Small, allocation-free JSON writing helpers for the hot output paths (score lines, alerts,
//! dead-letter records). Output must be byte-for-byte deterministic, so numbers are written with fixed
//! rules rather than shortest-round-trip formatting.

use std::fmt::Write as _;

/// Appends `s` as a JSON string literal (quotes included), escaping per RFC 8259.
pub fn write_str(out: &mut String, s: &str) {
    out.reserve(s.len() + 2);
    out.push('"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: &str = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        if esc.is_empty() {
            let _ = write!(out, "\\u{b:04x}");
        } else {
            out.push_str(esc);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// Appends a probability-like value in `[0, 1]` with at most four decimals, trailing zeros dropped
/// (`0`, `0.5`, `0.1234`, `1`).
pub fn write_unit(out: &mut String, v: f64) {
    let v = if v.is_finite() { v.clamp(0.0, 1.0) } else { 0.0 };
    let n = (v * 10_000.0).round() as u32;
    if n == 0 {
        out.push('0');
    } else if n >= 10_000 {
        out.push('1');
    } else {
        // Four digits, zero-padded, trailing zeros dropped (`n` is not 0, so one digit stays); no
        // `format!`: this runs for every component of every score line.
        let mut digits = [b'0'; 4];
        let mut m = n;
        for d in digits.iter_mut().rev() {
            *d = b'0' + (m % 10) as u8;
            m /= 10;
        }
        let len = 4 - digits.iter().rev().take_while(|&&d| d == b'0').count();
        out.push_str("0.");
        out.push_str(std::str::from_utf8(&digits[..len]).expect("ASCII digits"));
    }
}

/// Appends a finite number with up to `decimals` decimals, trailing zeros dropped; non-finite as `null`.
pub fn write_num(out: &mut String, v: f64, decimals: usize) {
    if !v.is_finite() {
        out.push_str("null");
        return;
    }
    let start = out.len();
    let _ = write!(out, "{v:.decimals$}");
    if out[start..].contains('.') {
        while out.ends_with('0') {
            out.pop();
        }
        if out.ends_with('.') {
            out.pop();
        }
    }
    if &out[start..] == "-0" {
        out.truncate(start);
        out.push('0');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn numbers_are_written_deterministically() {
        let mut s = String::new();
        for v in [0.0, 0.00004, 0.5, 0.12345, 0.99996, 1.0, 2.0, f64::NAN] {
            write_unit(&mut s, v);
            s.push(' ');
        }
        assert_eq!(s, "0 0 0.5 0.1235 1 1 1 0 ");
        let mut s = String::new();
        for v in [1.5, 2.0, -0.0001, 1234.56789] {
            write_num(&mut s, v, 2);
            s.push(' ');
        }
        assert_eq!(s, "1.5 2 0 1234.57 ");
    }

    proptest! {
        #[test]
        fn strings_round_trip_through_serde_json(s in "\\PC*|[\\x00-\\x1f\"\\\\]{0,10}") {
            let mut out = String::new();
            write_str(&mut out, &s);
            let back: String = serde_json::from_str(&out).unwrap();
            prop_assert_eq!(back, s);
        }
    }
}
