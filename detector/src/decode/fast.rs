//! The fast path of [`super::decode`]: a single-pass scanner for the common shape of a well-formed
//! event, writing straight into the caller's [`Event`].
//!
//! It never rejects. It either produces exactly the event the full decoder would produce for the same
//! text, or gives up (`false`) and the full decoder runs, which then also finds the precise reason and
//! message of a reject. So everything unusual — an escaped key, a duplicate key, a number with a
//! fraction where an integer belongs, a value of the wrong type, a deep nest, a missing field, an
//! unknown `outcome` — simply takes the slow road; correctness never depends on this module. The
//! differential tests at the bottom hold the two paths to the same answers.
//!
//! What it does itself: the event object's keys (unescaped, matched once), strings (borrowed; an escaped
//! one is unescaped by `serde_json`, exactly as the full decoder does), unsigned integers, booleans,
//! `null`, `ts` in both forms, the `tokens` and `metric` objects inline; raw values (`args`, `attrs`,
//! `argv`, unknown fields) are delimited and validated by [`Scanner::skip_value`], which accepts exactly
//! what `serde_json`'s skipping parser accepts (a differential test below holds it to that).

use super::Field;
use crate::event::{Event, Kind, Outcome, RawJson, Role, Str, TsField};
use crate::time::{parse_rfc3339_ms, MAX_TS_MS, MIN_TS_MS};
use std::borrow::Cow;

/// Deepest nesting the fast path handles itself; deeper values go to the full decoder (which applies
/// the configured limit and `serde_json`'s own recursion limit).
const MAX_FAST_DEPTH: usize = 100;

/// Decodes `text` (trimmed at the end, within the size limit) into `ev`, which must be as
/// [`Event::new`] leaves it. Returns false to ask for the full decoder; `ev` is then unspecified.
pub(super) fn decode_into<'a>(text: &'a str, max_depth: usize, ev: &mut Event<'a>) -> bool {
    let mut s = Scanner { s: text, b: text.as_bytes(), i: 0, max_depth: max_depth.min(MAX_FAST_DEPTH) };
    s.event(ev).is_some()
}

struct Scanner<'a> {
    s: &'a str,
    b: &'a [u8],
    i: usize,
    max_depth: usize,
}

/// Offset of the first byte that ends or interrupts a plain string: `"`, `\\` or a control character
/// (JSON forbids them raw in strings); `None` when the text ends first.
///
/// Most strings of an event (keys, ids, names, kinds) are short: the first bytes are tested eight at a
/// time in a plain register (no set-up cost, inlined into every caller); a string still open after them
/// is searched by [`long_string_stop`].
#[inline(always)]
fn string_stop(b: &[u8]) -> Option<usize> {
    let mut i = 0;
    while i + 8 <= b.len() && i < 8 * SHORT_WORDS {
        let marks = special_marks(u64::from_le_bytes(b[i..i + 8].try_into().expect("a slice of eight bytes")));
        if marks != 0 {
            return Some(i + (marks.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    long_string_stop(b, i)
}

/// The special bytes of a string (`"`, `\\`, below 0x20) among the eight bytes of `w` (little-endian):
/// the high bit of each such byte set; the lowest set bit marks the first of them.
#[inline(always)]
fn special_marks(w: u64) -> u64 {
    // Each test: zero after the xor, or below the bound. A borrow can only mark a byte above a true
    // match, so the lowest mark is exact.
    let quote = w ^ (ONES * b'"' as u64);
    let backslash = w ^ (ONES * b'\\' as u64);
    ((quote.wrapping_sub(ONES) & !quote)
        | (backslash.wrapping_sub(ONES) & !backslash)
        | (w.wrapping_sub(ONES * 0x20) & !w))
        & HIGH
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;
/// Words tested in the register by [`string_stop`] before switching to the vectorised search.
const SHORT_WORDS: usize = 4;

/// [`string_stop`] past its first `i` bytes, which hold no special byte: fewer than eight bytes are
/// left, or the string is long and `memchr` (vectorised) searches for its end, that stretch then
/// checked for control characters in one branch-free pass.
#[inline(never)]
fn long_string_stop(b: &[u8], i: usize) -> Option<usize> {
    let rest = &b[i..];
    if i < 8 * SHORT_WORDS {
        // Fewer than eight bytes left.
        return rest.iter().position(|&c| c == b'"' || c == b'\\' || c < 0x20).map(|p| i + p);
    }
    let end = memchr::memchr2(b'"', b'\\', rest);
    let head = &rest[..end.unwrap_or(rest.len())];
    if head.iter().fold(false, |any, &c| any | (c < 0x20)) {
        return head.iter().position(|&c| c < 0x20).map(|p| i + p);
    }
    end.map(|p| i + p)
}

/// The known key at the start of `b` (which begins with its opening quote), and the length of the
/// key with both quotes; `None` for anything else (an unknown key, an escaped one, a short input),
/// which the general path then reads.
///
/// The bytes after the opening quote are loaded as one or two little-endian words and cut just after
/// the first `"`: the cut words equal those of `known"` exactly when the key is `known`, so one
/// comparison per candidate replaces scanning the key and matching it as a string.
#[inline(always)]
fn known_key(b: &[u8]) -> Option<(Field, usize)> {
    if b.len() < 17 || b[0] != b'"' {
        return None;
    }
    let w1 = u64::from_le_bytes(b[1..9].try_into().expect("a slice of eight bytes"));
    let quotes = {
        let x = w1 ^ (ONES * b'"' as u64);
        x.wrapping_sub(ONES) & !x & HIGH
    };
    if quotes != 0 {
        // A key of at most seven bytes: keep it and its closing quote.
        let kept = quotes.trailing_zeros() as usize / 8 + 1;
        let field = match w1 & (u64::MAX >> (64 - 8 * kept)) {
            K_TS => Field::Ts,
            K_AGENT => Field::Agent,
            K_KIND => Field::Kind,
            K_ID => Field::Id,
            K_OUTCOME => Field::Outcome,
            K_ATTRS => Field::Attrs,
            K_MODEL => Field::Model,
            K_TOKENS => Field::Tokens,
            K_TOOL => Field::Tool,
            K_ARGS => Field::Args,
            K_CALL_ID => Field::CallId,
            K_BYTES => Field::Bytes,
            K_PAYLOAD => Field::Payload,
            K_DEST => Field::Dest,
            K_METHOD => Field::Method,
            K_PATH => Field::Path,
            K_OP => Field::Op,
            K_CMD => Field::Cmd,
            K_ARGV => Field::Argv,
            K_SCOPE => Field::Scope,
            K_ROLE => Field::Role,
            K_CONTENT => Field::Content,
            K_METRIC => Field::Metric,
            _ => return None,
        };
        return Some((field, 1 + kept));
    }
    // A longer key: its first eight bytes, then the rest and its closing quote.
    let w2 = u64::from_le_bytes(b[9..17].try_into().expect("a slice of eight bytes"));
    let quotes = {
        let x = w2 ^ (ONES * b'"' as u64);
        x.wrapping_sub(ONES) & !x & HIGH
    };
    if quotes == 0 {
        return None;
    }
    let kept = quotes.trailing_zeros() as usize / 8 + 1;
    let field = match (w1, w2 & (u64::MAX >> (64 - 8 * kept))) {
        (K_AGENT_ID, K_QUOTE) => Field::AgentId,
        (K_BYTES_IN, K_QUOTE) => Field::BytesIn,
        (K_BYTES_OU, K_T) => Field::BytesOut,
        (K_SESSION_, K_ID) => Field::SessionId,
        (K_PRIVILEG, K_ED) => Field::Privileged,
        (K_LATENCY_, K_MS) => Field::LatencyMs,
        (K_PRINCIPA, K_L) => Field::Principal,
        _ => return None,
    };
    Some((field, 9 + kept))
}

/// Up to eight bytes of `text` as a little-endian word (the rest zero): how [`known_key`] sees them.
const fn word(text: &[u8]) -> u64 {
    let mut w = 0u64;
    let mut i = 0;
    while i < text.len() && i < 8 {
        w |= (text[i] as u64) << (8 * i);
        i += 1;
    }
    w
}

const K_TS: u64 = word(b"ts\"");
const K_AGENT: u64 = word(b"agent\"");
const K_KIND: u64 = word(b"kind\"");
const K_ID: u64 = word(b"id\"");
const K_OUTCOME: u64 = word(b"outcome\"");
const K_ATTRS: u64 = word(b"attrs\"");
const K_MODEL: u64 = word(b"model\"");
const K_TOKENS: u64 = word(b"tokens\"");
const K_TOOL: u64 = word(b"tool\"");
const K_ARGS: u64 = word(b"args\"");
const K_CALL_ID: u64 = word(b"call_id\"");
const K_BYTES: u64 = word(b"bytes\"");
const K_PAYLOAD: u64 = word(b"payload\"");
const K_DEST: u64 = word(b"dest\"");
const K_METHOD: u64 = word(b"method\"");
const K_PATH: u64 = word(b"path\"");
const K_OP: u64 = word(b"op\"");
const K_CMD: u64 = word(b"cmd\"");
const K_ARGV: u64 = word(b"argv\"");
const K_SCOPE: u64 = word(b"scope\"");
const K_ROLE: u64 = word(b"role\"");
const K_CONTENT: u64 = word(b"content\"");
const K_METRIC: u64 = word(b"metric\"");
const K_AGENT_ID: u64 = word(b"agent_id");
const K_BYTES_IN: u64 = word(b"bytes_in");
const K_BYTES_OU: u64 = word(b"bytes_ou");
const K_SESSION_: u64 = word(b"session_");
const K_PRIVILEG: u64 = word(b"privileg");
const K_LATENCY_: u64 = word(b"latency_");
const K_PRINCIPA: u64 = word(b"principa");
const K_QUOTE: u64 = word(b"\"");
const K_T: u64 = word(b"t\"");
const K_ED: u64 = word(b"ed\"");
const K_MS: u64 = word(b"ms\"");
const K_L: u64 = word(b"l\"");

impl<'a> Scanner<'a> {
    #[inline]
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.b.get(self.i) {
            self.i += 1;
        }
    }

    #[inline]
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    #[inline]
    fn eat(&mut self, c: u8) -> Option<()> {
        (self.peek()? == c).then(|| self.i += 1)
    }

    /// `null` at the cursor (consumed).
    #[inline]
    fn null(&mut self) -> bool {
        if self.b[self.i..].starts_with(b"null") {
            self.i += 4;
            true
        } else {
            false
        }
    }

    /// A string at the cursor: borrowed, or unescaped (exactly as `serde_json` does) when it has
    /// escapes.
    #[inline(always)]
    fn string(&mut self) -> Option<Str<'a>> {
        if self.peek()? != b'"' {
            return None;
        }
        let start = self.i + 1;
        let j = start + string_stop(&self.b[start..])?;
        if self.b[j] == b'"' {
            self.i = j + 1;
            return Some(Cow::Borrowed(&self.s[start..j]));
        }
        self.escaped(j)
    }

    /// The rest of a string interrupted at `j` (by a backslash, or by a control character, which
    /// gives up), unescaped exactly as `serde_json` (the full decoder) does. A lone surrogate (which
    /// `serde_json` refuses) or an unknown escape goes to the full decoder.
    ///
    /// Escaped text (JSON inside a string, typically) alternates short runs and escapes: a run that
    /// ends within the next eight bytes is copied as one word and the copy cut back to it, rather
    /// than by a `memcpy` call per run.
    #[cold]
    #[inline(never)]
    fn escaped(&mut self, mut j: usize) -> Option<Str<'a>> {
        let b = self.b;
        if b[j] != b'\\' {
            return None;
        }
        let start = self.i + 1;
        let mut out: Vec<u8> = Vec::with_capacity(j - start + 256);
        out.extend_from_slice(&b[start..j]);
        loop {
            // `b[j]` is a backslash.
            let c = *b.get(j + 1)?;
            j += 2;
            match c {
                b'"' | b'\\' | b'/' => out.push(c),
                b'b' => out.push(0x08),
                b'f' => out.push(0x0c),
                b'n' => out.push(b'\n'),
                b'r' => out.push(b'\r'),
                b't' => out.push(b'\t'),
                b'u' => {
                    let hi = self.hex4(j)?;
                    j += 4;
                    let cp = match hi {
                        0xD800..=0xDBFF => {
                            if b.get(j..j + 2)? != b"\\u" {
                                return None;
                            }
                            let lo = self.hex4(j + 2)?;
                            if !(0xDC00..=0xDFFF).contains(&lo) {
                                return None;
                            }
                            j += 6;
                            0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                        }
                        0xDC00..=0xDFFF => return None,
                        cp => cp,
                    };
                    out.extend_from_slice(char::from_u32(cp)?.encode_utf8(&mut [0; 4]).as_bytes());
                }
                _ => return None,
            }
            // The plain run from `j` to the next special byte `k`.
            let word = b.get(j..j + 8).map(|w| u64::from_le_bytes(w.try_into().expect("a slice of eight bytes")));
            let k = match word.map(|w| (w, special_marks(w))) {
                Some((w, marks)) if marks != 0 => {
                    let run = (marks.trailing_zeros() / 8) as usize;
                    out.extend_from_slice(&w.to_le_bytes());
                    out.truncate(out.len() - 8 + run);
                    j + run
                }
                _ => {
                    let k = j + string_stop(&b[j..])?;
                    out.extend_from_slice(&b[j..k]);
                    k
                }
            };
            match b[k] {
                b'"' => {
                    self.i = k + 1;
                    // Runs end before ASCII bytes and escapes add whole characters, so this is
                    // UTF-8; a failure would only send the line to the full decoder.
                    return String::from_utf8(out).ok().map(Cow::Owned);
                }
                b'\\' => j = k,
                _ => return None,
            }
        }
    }

    /// Four hex digits at `at`.
    #[inline]
    fn hex4(&self, at: usize) -> Option<u32> {
        let h = self.b.get(at..at + 4)?;
        h.iter().try_fold(0u32, |v, &c| Some(v << 4 | (c as char).to_digit(16)?))
    }

    /// A key without escapes (an escaped key is left to the full decoder).
    #[inline(always)]
    fn key(&mut self) -> Option<&'a str> {
        if self.peek()? != b'"' {
            return None;
        }
        let start = self.i + 1;
        let j = start + string_stop(&self.b[start..])?;
        if self.b[j] != b'"' {
            return None;
        }
        self.i = j + 1;
        Some(&self.s[start..j])
    }

    /// An optional string field: a string or `null`.
    #[inline]
    fn opt_str(&mut self) -> Option<Option<Str<'a>>> {
        if self.peek()? != b'"' {
            return self.null().then_some(None);
        }
        self.string().map(Some)
    }

    /// A non-negative JSON integer of at most 19 digits (anything else goes to the full decoder).
    #[inline]
    fn uint(&mut self) -> Option<u64> {
        let start = self.i;
        let (mut i, mut v) = (start, 0u64);
        while let Some(&c) = self.b.get(i) {
            let digit = c.wrapping_sub(b'0');
            if digit > 9 {
                break;
            }
            if i - start == 19 {
                // A twentieth digit: possibly beyond `u64` (19 digits never are).
                return None;
            }
            v = v * 10 + digit as u64;
            i += 1;
        }
        if i == start || (i - start > 1 && self.b[start] == b'0') {
            return None;
        }
        if let Some(b'.' | b'e' | b'E') = self.b.get(i) {
            return None;
        }
        self.i = i;
        Some(v)
    }

    /// An optional unsigned integer field.
    #[inline]
    fn opt_uint(&mut self) -> Option<Option<u64>> {
        if self.null() {
            return Some(None);
        }
        self.uint().map(Some)
    }

    /// A raw JSON value at nesting `level` 2 (a field of the event object), delimited and validated by
    /// [`Scanner::skip_value`]: exactly the values `serde_json` reads as a `RawValue`, within the depth
    /// limit.
    fn raw(&mut self) -> Option<RawJson<'a>> {
        let start = self.i;
        self.skip_value(2)?;
        Some(RawJson::new(&self.s[start..self.i]))
    }

    /// Skips one JSON value nested at `level` (its own opening bracket, for an object or an array),
    /// accepting exactly what `serde_json`'s skipping parser (`ignore_value`, which reads a
    /// `RawValue`) accepts: the JSON grammar of RFC 8259, any escape `\\u` followed by four hex
    /// digits (lone surrogates included, as `serde_json` does when it skips). A container deeper
    /// than the limit gives up. Recursion is bounded by the limit (at most [`MAX_FAST_DEPTH`]).
    fn skip_value(&mut self, level: usize) -> Option<()> {
        match self.peek()? {
            b'"' => {
                self.i += 1;
                self.skip_string_body()
            }
            b'{' => self.skip_container(b'}', true, level),
            b'[' => self.skip_container(b']', false, level),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            b'-' | b'0'..=b'9' => self.skip_number(),
            _ => None,
        }
    }

    /// An object (`keyed`: its members are `"key": value`) or an array, from its opening bracket to
    /// `close`, at nesting `level`.
    fn skip_container(&mut self, close: u8, keyed: bool, level: usize) -> Option<()> {
        if level > self.max_depth {
            return None;
        }
        self.i += 1;
        self.ws();
        if self.eat(close).is_some() {
            return Some(());
        }
        loop {
            if keyed {
                self.eat(b'"')?;
                self.skip_string_body()?;
                self.ws();
                self.eat(b':')?;
                self.ws();
            }
            self.skip_value(level + 1)?;
            self.ws();
            match self.peek()? {
                b',' => {
                    self.i += 1;
                    self.ws();
                }
                c if c == close => {
                    self.i += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// `word` at the cursor (consumed).
    #[inline]
    fn literal(&mut self, word: &[u8]) -> Option<()> {
        self.b[self.i..].starts_with(word).then(|| self.i += word.len())
    }

    /// The rest of a string after its opening quote, validated (escapes, no raw control characters)
    /// but not decoded.
    fn skip_string_body(&mut self) -> Option<()> {
        loop {
            let j = self.i + string_stop(&self.b[self.i..])?;
            match self.b[j] {
                b'"' => {
                    self.i = j + 1;
                    return Some(());
                }
                b'\\' => match *self.b.get(j + 1)? {
                    b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => self.i = j + 2,
                    b'u' => {
                        self.hex4(j + 2)?;
                        self.i = j + 6;
                    }
                    _ => return None,
                },
                _ => return None,
            }
        }
    }

    /// A JSON number: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
    fn skip_number(&mut self) -> Option<()> {
        self.eat(b'-');
        match self.peek()? {
            // There can be only one leading zero (`serde_json` refuses `01` even when skipping).
            b'0' => {
                self.i += 1;
                if let Some(b'0'..=b'9') = self.peek() {
                    return None;
                }
            }
            b'1'..=b'9' => self.digits(),
            _ => return None,
        }
        if self.eat(b'.').is_some() {
            if !self.peek()?.is_ascii_digit() {
                return None;
            }
            self.digits();
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.i += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.i += 1;
            }
            if !self.peek()?.is_ascii_digit() {
                return None;
            }
            self.digits();
        }
        Some(())
    }

    /// Skips ASCII digits.
    #[inline]
    fn digits(&mut self) {
        while let Some(b'0'..=b'9') = self.peek() {
            self.i += 1;
        }
    }

    /// An optional raw value whose first byte must be one of `first`.
    #[inline]
    fn opt_raw(&mut self, first: &[u8]) -> Option<Option<RawJson<'a>>> {
        if self.null() {
            return Some(None);
        }
        if !first.contains(&self.peek()?) {
            return None;
        }
        self.raw().map(Some)
    }

    /// After a value: `,` (more members follow) or `}` (the object ends).
    #[inline]
    fn next_member(&mut self) -> Option<bool> {
        self.ws();
        match self.peek()? {
            b',' => {
                self.i += 1;
                self.ws();
                Some(true)
            }
            b'}' => {
                self.i += 1;
                Some(false)
            }
            _ => None,
        }
    }

    /// `"key" :` with the whitespace around it.
    #[inline]
    fn member_key(&mut self) -> Option<&'a str> {
        let k = self.key()?;
        self.colon()?;
        Some(k)
    }

    /// `:` with the whitespace around it.
    #[inline(always)]
    fn colon(&mut self) -> Option<()> {
        if self.eat(b':').is_none() {
            self.ws();
            self.eat(b':')?;
        }
        self.ws();
        Some(())
    }

    /// A member of the event object up to its value: `"key" :`, the key as a [`Field`]. A known key is
    /// recognised in a register by [`known_key`]; anything else takes [`Scanner::member_key`].
    #[inline(always)]
    fn member_field(&mut self) -> Option<Field> {
        if let Some((field, len)) = self.b.get(self.i..).and_then(known_key) {
            self.i += len;
            self.colon()?;
            return Some(field);
        }
        self.member_key().map(Field::from_key)
    }

    /// The start of an optional object: `null` or `{}` (false), or `{` before its first member (true).
    fn object_with_members(&mut self) -> Option<bool> {
        if self.null() {
            return Some(false);
        }
        self.eat(b'{')?;
        self.ws();
        Some(self.eat(b'}').is_none())
    }

    /// The `tokens` object: `input` and `output`, each once, unsigned or null; nothing else.
    fn tokens(&mut self, ev: &mut Event<'a>) -> Option<()> {
        if !self.object_with_members()? {
            return Some(());
        }
        let (mut input, mut output) = (false, false);
        loop {
            match self.member_key()? {
                "input" if !input => {
                    input = true;
                    ev.tokens_input = self.opt_uint()?;
                }
                "output" if !output => {
                    output = true;
                    ev.tokens_output = self.opt_uint()?;
                }
                _ => return None,
            }
            if !self.next_member()? {
                return Some(());
            }
        }
    }

    /// The `metric` object: `name` (string or null) and `value` (number or null), each once.
    fn metric(&mut self, ev: &mut Event<'a>) -> Option<()> {
        if !self.object_with_members()? {
            return Some(());
        }
        let (mut name, mut value) = (false, false);
        loop {
            match self.member_key()? {
                "name" if !name => {
                    name = true;
                    ev.metric_name = self.opt_str()?;
                }
                "value" if !value => {
                    value = true;
                    ev.metric_value = self.number()?;
                }
                _ => return None,
            }
            if !self.next_member()? {
                return Some(());
            }
        }
    }

    /// A JSON number (or null) as `f64`, converted by `serde_json` itself so the bits are the full
    /// decoder's.
    fn number(&mut self) -> Option<Option<f64>> {
        if self.null() {
            return Some(None);
        }
        let start = self.i;
        let len =
            self.b[start..].iter().take_while(|c| matches!(c, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')).count();
        if len == 0 {
            return None;
        }
        let v: f64 = serde_json::from_str(&self.s[start..start + len]).ok()?;
        self.i = start + len;
        Some(Some(v))
    }

    /// `ts`: integer epoch milliseconds or RFC 3339 text, in range.
    fn ts(&mut self, ev: &mut Event<'a>) -> Option<()> {
        if self.peek()? == b'"' {
            let text = self.string()?;
            ev.ts_ms = parse_rfc3339_ms(&text)?;
            ev.ts = TsField::Text(text);
        } else {
            let ms = i64::try_from(self.uint()?).ok().filter(|ms| (MIN_TS_MS..=MAX_TS_MS).contains(ms))?;
            ev.ts_ms = ms;
            ev.ts = TsField::Millis(ms);
        }
        Some(())
    }

    fn event(&mut self, ev: &mut Event<'a>) -> Option<()> {
        self.ws();
        self.eat(b'{')?;
        self.ws();
        let (mut seen, mut outcome, mut role) = (0u64, None, None);
        // An empty object lacks the required fields: the full decoder says which.
        loop {
            let field = self.member_field()?;
            if field != Field::Unknown {
                let bit = 1u64 << (field as u32);
                if seen & bit != 0 {
                    return None;
                }
                seen |= bit;
            }
            match field {
                Field::Ts => self.ts(ev)?,
                Field::AgentId => ev.agent_id = self.string()?,
                Field::Agent => ev.agent = self.opt_str()?,
                Field::SessionId => ev.session_id = self.opt_str()?,
                Field::Kind => ev.kind_name = self.string()?,
                Field::Id => ev.id = self.opt_str()?,
                Field::Outcome => outcome = self.opt_str()?,
                Field::Privileged => {
                    ev.privileged = if self.b[self.i..].starts_with(b"true") {
                        self.i += 4;
                        true
                    } else if self.b[self.i..].starts_with(b"false") {
                        self.i += 5;
                        false
                    } else if self.null() {
                        false
                    } else {
                        return None;
                    }
                }
                Field::Attrs => ev.attrs = self.opt_raw(b"{")?,
                Field::Model => ev.model = self.opt_str()?,
                Field::Tokens => self.tokens(ev)?,
                Field::LatencyMs => ev.latency_ms = self.opt_uint()?,
                Field::Tool => ev.tool = self.opt_str()?,
                Field::Args => ev.args = self.opt_raw(b"{\"")?,
                Field::CallId => ev.call_id = self.opt_str()?,
                Field::Bytes => ev.bytes = self.opt_uint()?,
                Field::Payload => ev.payload = self.opt_str()?,
                Field::Dest => ev.dest = self.opt_str()?,
                Field::Method => ev.method = self.opt_str()?,
                Field::BytesOut => ev.bytes_out = self.opt_uint()?,
                Field::BytesIn => ev.bytes_in = self.opt_uint()?,
                Field::Path => ev.path = self.opt_str()?,
                Field::Op => ev.op = self.opt_str()?,
                Field::Cmd => ev.cmd = self.opt_str()?,
                Field::Argv => ev.argv = self.opt_raw(b"[")?,
                Field::Scope => ev.scope = self.opt_str()?,
                Field::Principal => ev.principal = self.opt_str()?,
                Field::Role => role = self.opt_str()?,
                Field::Content => ev.content = self.opt_str()?,
                Field::Metric => self.metric(ev)?,
                Field::Unknown => {
                    self.raw()?;
                }
            }
            if !self.next_member()? {
                break;
            }
        }
        self.ws();
        if self.i != self.b.len() {
            return None;
        }
        // Required fields (a `null` ts, agent_id or kind reads as absent: the full decoder reports it).
        const REQUIRED: u64 = 1 << Field::Ts as u32 | 1 << Field::AgentId as u32 | 1 << Field::Kind as u32;
        if seen & REQUIRED != REQUIRED || ev.agent_id.is_empty() || ev.agent_id.len() > 256 {
            return None;
        }
        ev.kind = Kind::from_name(&ev.kind_name);
        if let Some(o) = outcome {
            ev.outcome = Outcome::from_name(&o)?;
        }
        if let Some(r) = role {
            ev.role = Some(Role::from_name(&r)?);
        }
        let complete = match ev.kind {
            Kind::ToolCall => ev.tool.is_some(),
            Kind::Net => ev.dest.is_some(),
            Kind::File => ev.path.is_some(),
            Kind::Process => ev.cmd.is_some(),
            Kind::Metric => ev.metric_name.is_some() && ev.metric_value.is_some(),
            _ => true,
        };
        complete.then_some(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::{decode_full, json_depth, Limits};
    use super::*;
    use proptest::prelude::*;
    use serde_json::value::RawValue;

    /// The fast path's answer: `Some(event as Debug)` or `None` (gave up).
    fn fast(text: &str, max_depth: usize) -> Option<String> {
        let mut ev = Event::new(0, "", Kind::Other);
        decode_into(text, max_depth, &mut ev).then(|| format!("{ev:?}"))
    }

    /// Holds the fast path to the full decoder: whenever it answers, the full decoder accepts the text
    /// and gives the same event.
    fn agrees(text: &str, max_depth: usize) -> Option<String> {
        let text = text.trim_end_matches(['\r', '\n', ' ', '\t']);
        let got = fast(text, max_depth);
        if let Some(got) = &got {
            let limits = Limits { max_event_bytes: usize::MAX, max_depth };
            match decode_full(text, &limits) {
                Ok(ev) => assert_eq!(got, &format!("{ev:?}"), "{text}"),
                Err(r) => panic!("fast path accepted what the full decoder rejects ({r}): {text}"),
            }
        }
        got
    }

    #[test]
    fn takes_the_usual_shapes_itself() {
        let lines = [
            r#"{"ts":"2026-11-27T05:00:00.120Z","agent_id":"support-7","agent":"support-bot","session_id":"s-91","kind":"llm_call","model":"m-large","tokens":{"input":1830,"output":212},"latency_ms":840}"#,
            r#"{"ts":1795756802500,"agent_id":"support-7","kind":"auth","op":"sudo","privileged":true,"outcome":"denied"}"#,
            r#"{"ts":"2026-11-27T05:00:03Z","agent_id":"etl-2","kind":"metric","metric":{"name":"cost_usd","value":0.013}}"#,
            r#"{"ts":0,"agent_id":"a","kind":"metric","metric":{"value":-1.5e3,"name":"x"}}"#,
            r#"{"ts":5,"agent_id":"a","kind":"tool_call","tool":"crm.lookup","args":{"customer":"C-1182","n":[1,{"x":null}]},"attrs":{"k":"v"}}"#,
            r#"{"ts":5,"agent_id":"a","kind":"tool_call","tool":"t","args":"a \"quoted\" string"}"#,
            r#"{"ts":5,"agent_id":"a","kind":"tool_result","payload":"{\"id\":\"C-1\",\"n\":\"\\u00e9\u00e9 \ud83d\ude00\"}"}"#,
            r#" { "ts" : 5 , "agent_id" : "a" , "kind" : "net" , "dest" : "h:443" , "bytes_out" : 0 , "extra" : [1, 2, {"a": "b"}] } "#,
            r#"{"ts":5,"agent_id":"a","kind":"process","cmd":"curl x","argv":["curl","x"],"privileged":false}"#,
            r#"{"ts":5,"agent_id":"a","kind":"message","role":"assistant","content":"héllo — ✓","session_id":null}"#,
            r#"{"ts":5,"agent_id":"a","kind":"teleport","tokens":null,"metric":null,"args":null,"outcome":"error","privileged":null}"#,
            r#"{"ts":5,"agent_id":"a","kind":"file","path":"/etc/x","op":"read","bytes":12,"bytes_in":3,"method":"GET","call_id":"c","id":"i","scope":"s","principal":"p"}"#,
        ];
        for l in lines {
            assert!(agrees(l, 64).is_some(), "fast path gave up on {l}");
        }
    }

    #[test]
    fn leaves_the_unusual_and_the_invalid_to_the_full_decoder() {
        let lines = [
            r#"{"ts":0,"ts":1,"agent_id":"a","kind":"x"}"#,
            r#"{"t\u0073":0,"agent_id":"a","kind":"x"}"#,
            r#"{"ts":1.5,"agent_id":"a","kind":"x"}"#,
            r#"{"ts":-1,"agent_id":"a","kind":"x"}"#,
            r#"{"ts":01,"agent_id":"a","kind":"x"}"#,
            r#"{"ts":null,"agent_id":"a","kind":"x"}"#,
            r#"{"ts":"yesterday","agent_id":"a","kind":"x"}"#,
            r#"{"ts":0,"agent_id":"","kind":"x"}"#,
            r#"{"ts":0,"agent_id":"a"}"#,
            r#"{"ts":0,"agent_id":"a","kind":"x","outcome":"maybe"}"#,
            r#"{"ts":0,"agent_id":"a","kind":"tool_call"}"#,
            r#"{"ts":0,"agent_id":"a","kind":"x","tokens":{"input":1,"input":2}}"#,
            r#"{"ts":0,"agent_id":"a","kind":"x","tokens":{"input":1,"cached":2}}"#,
            r#"{"ts":0,"agent_id":"a","kind":"x","bytes_out":1e3}"#,
            r#"{"ts":0,"agent_id":"a","kind":"x","bytes_out":99999999999999999999}"#,
            r#"{"ts":0,"agent_id":"a","kind":"x","args":[1]}"#,
            r#"{"ts":0,"agent_id":"a","kind":"x","payload":"tab	inside"}"#,
            r#"{"ts":0,"agent_id":"a","kind":"x","payload":"bad \q escape"}"#,
            r#"{"ts":0,"agent_id":"a","kind":"x",}"#,
            r#"{"ts":0,"agent_id":"a","kind":"x"} trailing"#,
            r#"{"ts":0,"agent_id":"a","kind":"x","privileged":"yes"}"#,
            r#"{}"#,
            r#"[1]"#,
        ];
        for l in lines {
            assert!(agrees(l, 64).is_none(), "fast path answered for {l}");
        }
        // Nesting beyond the limit, in a raw field, goes to the full decoder (which rejects it).
        let deep = format!(r#"{{"ts":0,"agent_id":"a","kind":"x","extra":{}1{}}}"#, "[".repeat(64), "]".repeat(64));
        assert!(agrees(&deep, 64).is_none());
        let ok = format!(r#"{{"ts":0,"agent_id":"a","kind":"x","extra":{}1{}}}"#, "[".repeat(63), "]".repeat(63));
        assert!(agrees(&ok, 64).is_some());
    }

    /// Where the skipper ends a raw value at the start of `text`, or `None` (gave up).
    fn skipped(text: &str, max_depth: usize) -> Option<usize> {
        let mut s = Scanner { s: text, b: text.as_bytes(), i: 0, max_depth };
        s.skip_value(2).map(|()| s.i)
    }

    /// Holds the skipper to `serde_json`'s `RawValue` (what the full decoder reads): where the skipper
    /// answers, `serde_json` accepts the same span; where `serde_json` accepts a value within the depth
    /// limit, the skipper answers.
    fn skip_agrees(text: &str, max_depth: usize) {
        let text = text.trim_start_matches([' ', '\t', '\n', '\r']);
        let mut de = serde_json::Deserializer::from_str(text);
        let serde = <&RawValue as serde::Deserialize>::deserialize(&mut de).ok().map(|r| r.get());
        match (skipped(text, max_depth), serde) {
            (Some(n), Some(raw)) => assert_eq!(&text[..n], raw, "{text:?}"),
            (Some(n), None) => panic!("skipped {:?}, which serde_json refuses", &text[..n]),
            (None, Some(raw)) => {
                assert!(json_depth(raw) + 1 > max_depth, "gave up on {raw:?}, which serde_json accepts")
            }
            (None, None) => {}
        }
    }

    #[test]
    fn skip_value_follows_the_json_grammar() {
        for v in [
            "0",
            "-0",
            "-0.5e+3",
            "1E9",
            "12",
            "01",
            "-",
            "1.",
            "1.e3",
            "1e",
            "1e+",
            ".5",
            "+1",
            "-a",
            "true",
            "tru",
            "nul",
            "null",
            "falsey",
            "\"\"",
            "\"a\\u00e9\\ud800\"",
            "\"\\uZZZZ\"",
            "\"\\x\"",
            "\"\\",
            "\"a",
            "\"tab\tx\"",
            "[]",
            "[ ]",
            "[1,]",
            "[,1]",
            "[1 2]",
            "[1,[2,[3]]]",
            "{}",
            "{ }",
            "{\"a\":1,}",
            "{\"a\" : [ {\"b\":null} ] , \"c\":\"d\"}",
            "{a:1}",
            "{\"a\"}",
            "{\"a\":}",
            "{\"a\":1",
            "[[[[",
            "]",
            "}",
            "x",
            "",
            "{\"a\":1}}",
            "[1]]",
            "[1] [2]",
        ] {
            skip_agrees(v, 64);
            skip_agrees(v, 2);
        }
        let deep = |n: usize| format!("{}1{}", "[".repeat(n), "]".repeat(n));
        assert_eq!(skipped(&deep(63), 64), Some(127));
        assert_eq!(skipped(&deep(64), 64), None);
        skip_agrees(&deep(300), 64);
    }

    /// Holds [`known_key`] to the general path (scan the key, match it as a string).
    fn known_key_agrees(text: &str) {
        let mut s = Scanner { s: text, b: text.as_bytes(), i: 0, max_depth: 64 };
        let general = s.key().map(|k| (Field::from_key(k), s.i));
        match known_key(text.as_bytes()) {
            Some((field, len)) => assert!(general == Some((field, len)), "{text:?}"),
            None => assert!(
                text.len() < 17 || !matches!(general, Some((f, _)) if f != Field::Unknown),
                "missed the known key in {text:?}"
            ),
        }
    }

    #[test]
    fn known_keys_are_recognised_in_a_register() {
        let nul = "\u{0}".repeat(16);
        for &k in KEYS {
            for after in [":1,\"kind\":\"x\"}", " : 1 , \"kind\" : \"x\" }", nul.as_str()] {
                let text = format!("\"{k}\"{after}");
                known_key_agrees(&text);
                assert_eq!(known_key(text.as_bytes()).is_some(), k != "extra", "{text:?}");
                known_key_agrees(&format!("\"{k}x\"{after}"));
                known_key_agrees(&format!("\"{k}\\\"{after}"));
                known_key_agrees(&format!("\"{}\"{after}", &k[..k.len() - 1]));
                known_key_agrees(&format!("\"{k}\u{0}\"{after}"));
            }
        }
        assert_eq!(known_key(br#""ts":0}"#), None, "too short to load two words: the general path");
    }

    #[test]
    fn uint_takes_at_most_19_digits_and_no_fraction() {
        let read = |text: &str| {
            let mut s = Scanner { s: text, b: text.as_bytes(), i: 0, max_depth: 64 };
            s.uint().map(|v| (v, s.i))
        };
        assert_eq!(read("0"), Some((0, 1)));
        assert_eq!(read("12,"), Some((12, 2)));
        assert_eq!(read("9999999999999999999}"), Some((9_999_999_999_999_999_999, 19)));
        for text in ["", "-1", "00", "01", "1.5", "1e3", "2E1", "10000000000000000000", "x"] {
            assert_eq!(read(text), None, "{text:?}");
        }
    }

    #[test]
    fn string_stop_finds_the_first_special_byte() {
        for (s, want) in [
            ("", None),
            ("abc", None),
            ("abcdefgh\"", Some(8)),
            ("ab\\cdefgh\"", Some(2)),
            ("éééé\u{1}\"", Some(8)),
            ("no end", None),
            ("0123456789abcdef\n\"", Some(16)),
            ("0123456789abcdef\n", Some(16)),
            ("0123456789abcdef0123456789abcdef0123456789\"", Some(42)),
            ("0123456789abcdef0123456789abcdef0123\n456789\"", Some(36)),
            ("0123456789abcdef0123456789abcdef0123\n456789", Some(36)),
            ("0123456789abcdef0123456789abcdef0123456789", None),
            ("0123456789abcdef0123456789abcdef\\", Some(32)),
            ("0123456\u{1f}", Some(7)),
            ("\u{7f}\u{80}ÿ\"", Some(5)),
        ] {
            assert_eq!(string_stop(s.as_bytes()), want, "{s:?}");
        }
    }

    proptest! {
        #[test]
        fn string_stop_agrees_with_a_byte_by_byte_search(s in "([a-z]{1,40}|\"|\\\\|\u{1}|\n|\u{1f}| |é|\u{7f}){0,12}") {
            let naive = s.bytes().position(|c| c == b'"' || c == b'\\' || c < 0x20);
            prop_assert_eq!(string_stop(s.as_bytes()), naive, "{:?}", s);
        }
    }

    /// A JSON value of any type, as text, sometimes with escapes, odd numbers or whitespace.
    fn any_value() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            Just("null".to_string()),
            Just("true".to_string()),
            Just("false".to_string()),
            "-?[0-9]{1,21}(\\.[0-9]{1,8})?([eE][+-]?[0-9]{1,3})?",
            "\"([a-z0-9 .:/_-]|\\\\[\"\\\\/bfnrt]|\\\\u00[0-9a-f]{2}|é|\u{2028}|\t){0,24}\"",
            Just("\"2026-11-27T05:00:00.120Z\"".to_string()),
            Just("\"\\ud83d\\ude00\"".to_string()),
            "\"(\\\\u[dD][89abAB][0-9a-f]{2}\\\\u[dD][0-9a-fA-F]{3}|\\\\u[0-9a-fA-F]{4}|\\\\[a-z]|x){0,6}\"",
            Just("\"\\ud83d\"".to_string()),
        ];
        leaf.prop_recursive(3, 12, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(|v| format!("[{}]", v.join(","))),
                prop::collection::vec(("[a-z]{1,6}", inner), 0..4).prop_map(|v| {
                    let m: Vec<String> = v.into_iter().map(|(k, x)| format!("\"{k}\":{x}")).collect();
                    format!("{{{}}}", m.join(","))
                }),
            ]
        })
    }

    /// A value that fits the field (most of the time), so that many generated events are valid.
    fn value_for(key: &'static str) -> BoxedStrategy<String> {
        let fitting: BoxedStrategy<String> = match key {
            "ts" => prop_oneof![
                (0i64..4_000_000_000_000).prop_map(|v| v.to_string()),
                Just("\"2026-11-27T05:00:00.120Z\"".to_string()),
                Just("\"2026-11-27T05:00:00+02:00\"".to_string()),
            ]
            .boxed(),
            "kind" => prop_oneof![
                Just("\"llm_call\""),
                Just("\"tool_call\""),
                Just("\"tool_result\""),
                Just("\"net\""),
                Just("\"file\""),
                Just("\"process\""),
                Just("\"auth\""),
                Just("\"message\""),
                Just("\"metric\""),
                Just("\"teleport\""),
            ]
            .prop_map(str::to_string)
            .boxed(),
            "outcome" => prop_oneof![Just("\"ok\""), Just("\"denied\""), Just("\"error\""), Just("\"maybe\"")]
                .prop_map(str::to_string)
                .boxed(),
            "role" => prop_oneof![Just("\"user\""), Just("\"tool\""), Just("\"god\"")].prop_map(str::to_string).boxed(),
            "privileged" => prop_oneof![Just("true"), Just("false")].prop_map(str::to_string).boxed(),
            "tokens" => {
                (0u64..100_000, 0u64..100_000).prop_map(|(a, b)| format!("{{\"input\":{a}, \"output\":{b}}}")).boxed()
            }
            "metric" => {
                ("[a-z_]{1,8}", -1e6f64..1e6).prop_map(|(n, v)| format!("{{\"name\":\"{n}\",\"value\":{v}}}")).boxed()
            }
            "latency_ms" | "bytes" | "bytes_out" | "bytes_in" => (0u64..u64::MAX).prop_map(|v| v.to_string()).boxed(),
            "args" | "attrs" => any_value().prop_map(|v| format!("{{\"k\":{v}}}")).boxed(),
            "argv" => any_value().prop_map(|v| format!("[{v}]")).boxed(),
            _ => "\"([a-zA-Z0-9 .:/_-]|\\\\n|\\\\\"|é){0,30}\"".boxed(),
        };
        prop_oneof![8 => fitting, 1 => any_value()].boxed()
    }

    const KEYS: &[&str] = &[
        "ts",
        "agent_id",
        "agent",
        "session_id",
        "kind",
        "id",
        "outcome",
        "privileged",
        "attrs",
        "model",
        "tokens",
        "latency_ms",
        "tool",
        "args",
        "call_id",
        "bytes",
        "payload",
        "dest",
        "method",
        "bytes_out",
        "bytes_in",
        "path",
        "op",
        "cmd",
        "argv",
        "scope",
        "principal",
        "role",
        "content",
        "metric",
        "extra",
    ];

    fn any_event() -> impl Strategy<Value = String> {
        let member = prop::sample::select(KEYS).prop_flat_map(|k| value_for(k).prop_map(move |v| (k, v)));
        (
            prop::collection::vec(member, 0..10),
            prop::sample::select(&["", " ", "\t", "\r\n "][..]),
            value_for("ts"),
            value_for("kind"),
        )
            .prop_map(|(members, ws, ts, kind)| {
                let mut m =
                    vec![format!("\"ts\":{ws}{ts}"), format!("\"agent_id\":\"a-1\""), format!("\"kind\":{kind}")];
                m.extend(members.into_iter().map(|(k, v)| format!("\"{k}\"{ws}:{ws}{v}")));
                format!("{ws}{{{}}}{ws}", m.join(&format!("{ws},{ws}")))
            })
    }

    #[test]
    fn generated_events_exercise_both_paths() {
        use proptest::strategy::ValueTree;
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        let strategy = any_event();
        let n = 2000;
        let answered = (0..n)
            .filter(|_| agrees(&strategy.new_tree(&mut runner).expect("a generated event").current(), 64).is_some())
            .count();
        assert!(answered > n / 10 && answered < n * 9 / 10, "fast path answered {answered} of {n}");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]

        #[test]
        fn fast_and_full_decoders_agree_on_events(text in any_event(), depth in prop::sample::select(&[2usize, 3, 64][..])) {
            agrees(&text, depth);
        }

        #[test]
        fn skip_value_agrees_with_serde_json(v in any_value(), cut in 0usize..64, tail in "[\\],} x]{0,2}") {
            skip_agrees(&v, 64);
            skip_agrees(&v, 3);
            skip_agrees(&format!("{v}{tail}"), 64);
            if let Some(prefix) = v.get(..cut) {
                skip_agrees(prefix, 64);
            }
        }

        #[test]
        fn known_key_agrees_with_the_general_path(
            k in prop::sample::select(KEYS),
            cut in 0usize..12,
            noise in "[a-z_\"\\\\\u{0}\u{1f}é:]{0,20}",
        ) {
            known_key_agrees(&format!("\"{}{noise}", k.get(..cut).unwrap_or(k)));
            known_key_agrees(&format!("\"{k}\"{noise}"));
            known_key_agrees(&format!("\"{noise}"));
        }

        #[test]
        fn strings_agree_with_serde_json(
            v in r#""([a-z0-9 .:/_-]{0,9}|\\["\\/bfnrtx]|\\u[0-9a-fA-F]{4}|\\u[dD][89abAB][0-9a-f]{2}|é|\u{2028}|\t|\\|"){0,40}"#
        ) {
            let mut s = Scanner { s: &v, b: v.as_bytes(), i: 0, max_depth: 64 };
            let fast = s.string().map(|c| c.into_owned());
            let mut de = serde_json::Deserializer::from_str(&v);
            let serde = <String as serde::Deserialize>::deserialize(&mut de).ok();
            prop_assert_eq!(fast, serde, "{:?}", v);
        }

        #[test]
        fn skip_value_agrees_with_serde_json_on_json_like_text(s in r#"[{}\[\]":,a-z0-9 .\\eE+-]{0,40}"#) {
            skip_agrees(&s, 64);
        }

        #[test]
        fn fast_and_full_decoders_agree_on_json_like_text(s in r#"[{}\[\]":,a-z0-9 .\\-]{0,80}"#) {
            agrees(&s, 64);
        }
    }
}
