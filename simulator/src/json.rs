//! A small append-only JSON writer. The simulator renders every event straight into a `String`
//! (no intermediate `serde_json::Value`), so this module owns string escaping and number formatting
//! and nothing else. Tests parse the output back with serde_json.

use std::fmt::Write as _;

/// Appends `s` as a JSON string literal, escaping quotes, backslashes and control characters.
pub(crate) fn push_str(out: &mut String, s: &str) {
    out.push('"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if b >= 0x20 && b != b'"' && b != b'\\' {
            continue;
        }
        // `i` sits on an ASCII byte, hence on a char boundary.
        out.push_str(&s[start..i]);
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            _ => {
                let _ = write!(out, "\\u{:04x}", b);
            }
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// Appends an unsigned integer.
pub(crate) fn push_u64(out: &mut String, mut n: u64) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.push_str(std::str::from_utf8(&tmp[i..]).expect("only ASCII digits were written"));
}

/// Appends a signed integer.
pub(crate) fn push_i64(out: &mut String, n: i64) {
    if n < 0 {
        out.push('-');
    }
    push_u64(out, n.unsigned_abs());
}

/// Appends a finite number (non-finite values, which the simulator never makes, become 0).
pub(crate) fn push_f64(out: &mut String, v: f64) {
    if v.is_finite() {
        let _ = write!(out, "{v}");
    } else {
        out.push('0');
    }
}

/// Writer for the members of one JSON object. `Obj::open` writes `{`; `close` writes `}`.
pub(crate) struct Obj<'a> {
    out: &'a mut String,
    first: bool,
}

impl<'a> Obj<'a> {
    /// Starts a new object in `out`.
    pub(crate) fn open(out: &'a mut String) -> Self {
        out.push('{');
        Obj { out, first: true }
    }

    /// Continues an object whose `{` and at least one member are already in `out`.
    pub(crate) fn resume(out: &'a mut String) -> Self {
        Obj { out, first: false }
    }

    /// Writes `}`.
    pub(crate) fn close(self) {
        self.out.push('}');
    }

    fn key(&mut self, k: &str) {
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
        push_str(self.out, k);
        self.out.push(':');
    }

    pub(crate) fn str(&mut self, k: &str, v: &str) -> &mut Self {
        self.key(k);
        push_str(self.out, v);
        self
    }

    pub(crate) fn u64(&mut self, k: &str, v: u64) -> &mut Self {
        self.key(k);
        push_u64(self.out, v);
        self
    }

    pub(crate) fn f64(&mut self, k: &str, v: f64) -> &mut Self {
        self.key(k);
        push_f64(self.out, v);
        self
    }

    pub(crate) fn bool(&mut self, k: &str, v: bool) -> &mut Self {
        self.key(k);
        self.out.push_str(if v { "true" } else { "false" });
        self
    }

    /// Writes `raw`, which must already be valid JSON.
    pub(crate) fn raw(&mut self, k: &str, raw: &str) -> &mut Self {
        self.key(k);
        self.out.push_str(raw);
        self
    }

    /// Writes a nested object filled by `f`.
    pub(crate) fn obj(&mut self, k: &str, f: impl FnOnce(&mut Obj<'_>)) -> &mut Self {
        self.key(k);
        let mut inner = Obj::open(self.out);
        f(&mut inner);
        inner.close();
        self
    }

    /// Writes an array of strings.
    pub(crate) fn strs<'s>(&mut self, k: &str, items: impl IntoIterator<Item = &'s str>) -> &mut Self {
        self.key(k);
        self.out.push('[');
        for (i, s) in items.into_iter().enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            push_str(self.out, s);
        }
        self.out.push(']');
        self
    }
}

/// Builds a JSON object into a fresh `String`.
pub(crate) fn object(f: impl FnOnce(&mut Obj<'_>)) -> String {
    let mut s = String::with_capacity(96);
    let mut o = Obj::open(&mut s);
    f(&mut o);
    o.close();
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_round_trip_through_serde_json() {
        let nasty = "quote \" backslash \\ newline \n tab \t cr \r bell \u{7} nul \u{0} caf\u{e9} \u{65e5}\u{672c} \u{1F600} \u{2028}";
        let s = object(|o| {
            o.str("s", nasty).u64("u", u64::MAX).f64("f", 0.013).bool("b", true);
            o.obj("n", |n| {
                n.strs("a", ["x", "y\"z"]);
            });
        });
        let v: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(v["s"], nasty);
        assert_eq!(v["u"], u64::MAX);
        assert_eq!(v["f"], 0.013);
        assert_eq!(v["b"], true);
        assert_eq!(v["n"]["a"][1], "y\"z");
    }

    proptest::proptest! {
        #[test]
        fn any_string_round_trips(s in ".*") {
            let mut out = String::new();
            push_str(&mut out, &s);
            let back: String = serde_json::from_str(&out).unwrap();
            proptest::prop_assert_eq!(back, s);
        }

        #[test]
        fn any_integer_round_trips(n in proptest::num::i64::ANY) {
            let mut out = String::new();
            push_i64(&mut out, n);
            proptest::prop_assert_eq!(out, n.to_string());
        }
    }
}
