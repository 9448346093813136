//! First-seen values: destinations, directories, tools, programs, auth targets, models and
//! identifier-like argument values never seen for the agent or its class.
//!
//! Novelty is weighed by how settled the vocabulary is: each class keeps, per field, the rate at which
//! its observations turn out new (a Good–Turing estimate, [`vigil_models::NoveltyRate`]), and a value
//! new to the class earns exactly that rate as its p-value — rare in a settled vocabulary, cheap in a
//! churning one (file names, request ids). A value the class knows but this agent has never used is
//! weak evidence (its p-value is floored at 0.05). Several new values in a short time add up in the
//! agent's evidence accumulator (new egress rarely comes alone; see [`super::evidence`]).

use super::{Card, ClassSink, Comp, Ctx};
use crate::classes::{ClassOp, KNOWN_VALUE};
use crate::event::{host_of, port_of, Event, Kind};
use crate::hash::{combine, hash_bytes, ns};
use crate::state::{AgentState, ClassState, ValueField};

/// Observations of a field before a class's novelty estimate may alert.
const CLASS_WARM: f32 = 30.0;
const AGENT_WARM: f32 = 30.0;
const AGENT_MAX_N: f32 = 1_000.0;
/// Floor of the p-value of a value new to the agent but known to its class.
const AGENT_ONLY_FLOOR: f64 = 0.05;

/// Values judged per event.
pub const MAX_VALUES: usize = 6;
/// Identifier-like values taken from one event's arguments.
const MAX_IDENTIFIERS: usize = 3;
/// Arguments longer than this are not searched for identifiers.
const MAX_ARGS_SCAN: usize = 4096;

/// One value of the event and what is known of it.
#[derive(Clone, Copy, Debug)]
pub struct Value {
    pub field: ValueField,
    pub key: u64,
    pub fingerprint: u32,
    pub class_new: bool,
    pub agent_new: bool,
    pub p: f64,
    /// Byte range of the value within its source text (for explanations).
    pub span: (u32, u32),
    pub from_args: bool,
}

#[derive(Clone, Debug, Default)]
pub struct Detail {
    pub values: Vec<Value>,
    /// Index of the value with the smallest p-value.
    pub strongest: Option<usize>,
    pub p_single: f64,
    /// Some value was judged by a warm vocabulary, known values included. (The component's `warm`
    /// flag is set only by new values, the only ones that can alert; a value a warm vocabulary
    /// knows is a verdict too, "nothing new", which the evidence law must learn.)
    pub mature: bool,
}

/// Hash of a value, case-insensitive for hosts and identifiers.
fn value_key(field: ValueField, s: &str) -> u64 {
    let h = if matches!(field, ValueField::Dest | ValueField::Identifier) && s.bytes().any(|b| b.is_ascii_uppercase()) {
        hash_bytes(ns::VALUE, s.to_ascii_lowercase().as_bytes())
    } else {
        hash_bytes(ns::VALUE, s.as_bytes())
    };
    combine(h, field as u64)
}

/// The first two components of a path (`/etc/ssh/sshd_config` -> `/etc/ssh`, `/tmp` -> `/tmp`,
/// `src/main.rs` -> `src`), on `/` or `\\`.
pub fn root_of(path: &str) -> &str {
    let b = path.as_bytes();
    let start = b.iter().take_while(|&&c| c == b'/' || c == b'\\').count();
    let mut seen = 0;
    for (i, &c) in b.iter().enumerate().skip(start) {
        if c == b'/' || c == b'\\' {
            seen += 1;
            if seen == 2 {
                return &path[..i];
            }
        }
    }
    // Fewer than two separators after the root: the directory, or the name itself.
    if seen == 0 {
        return path;
    }
    dir_of(path)
}

/// The directory of a path (`/a/b/c.txt` -> `/a/b`; a bare name -> `.`).
pub fn dir_of(path: &str) -> &str {
    match path.rfind(['/', '\\']) {
        Some(0) => &path[..1],
        Some(i) => &path[..i],
        None => ".",
    }
}

/// The program of a command line: its first word's file name.
pub fn program_of(cmd: &str) -> &str {
    let first = cmd.split_whitespace().next().unwrap_or("");
    match first.rfind(['/', '\\']) {
        Some(i) => &first[i + 1..],
        None => first,
    }
}

/// Top-level domains that make a bare dotted word a host name rather than a file name.
const HOST_TLDS: &[&str] = &[
    "com", "net", "org", "io", "ai", "dev", "app", "co", "cloud", "xyz", "info", "biz", "me", "sh", "site", "online",
    "ru", "cn", "uk", "de", "fr", "jp", "in", "br", "nl", "eu", "us", "tk", "top", "gov", "edu", "internal", "local",
];

fn looks_like_host(tok: &str) -> bool {
    if !tok.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.') {
        return false;
    }
    let (mut labels, mut last, mut dotted_quad) = (0, "", true);
    for l in tok.split('.') {
        if l.is_empty() || l.len() > 63 {
            return false;
        }
        labels += 1;
        last = l;
        dotted_quad &= l.len() <= 3 && l.bytes().all(|b| b.is_ascii_digit());
    }
    if labels < 2 {
        return false;
    }
    if last.bytes().all(|b| b.is_ascii_digit()) {
        return labels == 4 && dotted_quad;
    }
    HOST_TLDS.iter().any(|t| t.eq_ignore_ascii_case(last))
}

/// A fixed-capacity list of byte ranges (no allocation per event).
#[derive(Default)]
pub struct SpanBuf {
    spans: [(u32, u32); MAX_IDENTIFIERS],
    len: usize,
}

impl SpanBuf {
    fn len(&self) -> usize {
        self.len
    }
    fn push(&mut self, s: (u32, u32)) {
        if self.len < MAX_IDENTIFIERS {
            self.spans[self.len] = s;
            self.len += 1;
        }
    }
    pub fn as_slice(&self) -> &[(u32, u32)] {
        &self.spans[..self.len]
    }
}

/// Identifier-like values in tool arguments: URL hosts, host names, e-mail addresses and account-like
/// digit runs (8+ digits). Returns byte ranges into `args`.
///
/// Tokens are split on whitespace and JSON/shell punctuation. Most tokens are words; a token can only be
/// an identifier if it holds `:` (a URL), `@`, `.` (a host) or at least 8 digits, so the rest are passed
/// over after one look at their bytes.
pub fn identifiers(args: &str, out: &mut SpanBuf) {
    if args.len() > MAX_ARGS_SCAN {
        return;
    }
    let b = args.as_bytes();
    let mut i = 0;
    while i < b.len() && out.len() < MAX_IDENTIFIERS {
        // Skip separators.
        let (sep, len) = byte_at(args, i);
        if sep {
            i += len;
            continue;
        }
        // Take the token up to the next separator, noting on the way what the cheap look needs.
        let start = i;
        let (mut marks, mut digits) = (false, 0usize);
        let mut end = b.len();
        while i < b.len() {
            let c = b[i];
            if c < 0x80 {
                let f = ASCII_FACTS[c as usize];
                if f & SEP != 0 {
                    end = i;
                    i += 1;
                    break;
                }
                marks |= f & MARK != 0;
                digits += (f & DIGIT != 0) as usize;
                i += 1;
            } else {
                let (sep, len) = byte_at(args, i);
                if sep {
                    end = i;
                    i += len;
                    break;
                }
                i += len;
            }
        }
        // Without `:`, `@`, `.` and 8 digits even the untrimmed token is a plain word.
        if marks || digits >= 8 {
            identifier(args, start, end, out);
        }
    }
}

/// Whether the character at byte `i` of `s` separates tokens, and its length in bytes.
#[inline]
fn byte_at(s: &str, i: usize) -> (bool, usize) {
    let c = s.as_bytes()[i];
    if c < 0x80 {
        (ASCII_FACTS[c as usize] & SEP != 0, 1)
    } else {
        // Whitespace beyond ASCII (no-break space, line separator, ...) separates too.
        let ch = s[i..].chars().next().expect("a char starts at a char boundary");
        (ch.is_whitespace(), ch.len_utf8())
    }
}

/// Facts of an ASCII byte for the identifier scan: a separator (whitespace or JSON/shell
/// punctuation), one of the marks `:` `@` `.`, a digit.
const SEP: u8 = 1;
const MARK: u8 = 2;
const DIGIT: u8 = 4;
const ASCII_FACTS: [u8; 128] = {
    let mut t = [0u8; 128];
    let mut c = 0;
    while c < 128 {
        let b = c as u8;
        t[c] = if (b as char).is_ascii_whitespace()
            || b == 0x0b
            || matches!(
                b,
                b'"' | b'\'' | b',' | b'{' | b'}' | b'[' | b']' | b'(' | b')' | b'<' | b'>' | b';' | b'|' | b'`'
            ) {
            SEP
        } else if matches!(b, b':' | b'@' | b'.') {
            MARK
        } else if b.is_ascii_digit() {
            DIGIT
        } else {
            0
        };
        c += 1;
    }
    t
};

/// Judges the token `args[start..end]`; pushes the identifier span it holds, if any.
#[inline]
fn identifier(args: &str, start: usize, end: usize, out: &mut SpanBuf) {
    let trim = |c: u8| matches!(c, b'.' | b':' | b'=' | b'\\');
    let b = args.as_bytes();
    let (mut start, mut end) = (start, end);
    while start < end && trim(b[start]) {
        start += 1;
    }
    while end > start && trim(b[end - 1]) {
        end -= 1;
    }
    let tok = &args[start..end];
    if tok.len() < 4 {
        return;
    }
    // A cheap look first: no `:`, `@` or `.` and fewer than 8 digits is a plain word.
    let (mut marks, mut digits) = (false, 0usize);
    for &c in tok.as_bytes() {
        marks |= matches!(c, b':' | b'@' | b'.');
        digits += c.is_ascii_digit() as usize;
    }
    if !marks && digits < 8 {
        return;
    }
    let off = start;
    let span = if let Some(i) = find_scheme_sep(tok) {
        let host = host_of(tok);
        if host.is_empty() {
            return;
        }
        let start = off + i + 3 + tok[i + 3..].find(host).unwrap_or(0);
        (start, start + host.len())
    } else if let Some(at) = tok.find('@') {
        let domain = &tok[at + 1..];
        if at == 0 || !looks_like_host(domain) {
            return;
        }
        (off, off + tok.len())
    } else if looks_like_host(tok) || (digits >= 8 && tok.bytes().all(|b| b.is_ascii_digit() || b == b'-' || b == b' '))
    {
        (off, off + tok.len())
    } else {
        return;
    };
    out.push((span.0 as u32, span.1 as u32));
}

/// The offset of the first `://` in `tok`.
#[inline]
fn find_scheme_sep(tok: &str) -> Option<usize> {
    let b = tok.as_bytes();
    memchr::memchr_iter(b':', b).find(|&i| b[i + 1..].starts_with(b"//"))
}

/// The values of an event the detector judges, with their source text ranges.
fn collect<'e>(ev: &'e Event, mut push: impl FnMut(ValueField, &'e str, (u32, u32), bool)) {
    match ev.kind {
        Kind::Net => {
            if let Some(d) = ev.dest.as_deref() {
                push(ValueField::Dest, host_of(d), (0, 0), false);
                if let Some(port) = port_of(d) {
                    push(ValueField::Port, port, (0, 0), false);
                }
            }
        }
        Kind::File => {
            if let Some(p) = ev.path.as_deref() {
                push(ValueField::PathDir, dir_of(p), (0, 0), false);
                push(ValueField::PathRoot, root_of(p), (0, 0), false);
            }
        }
        Kind::ToolCall => {
            if let Some(t) = ev.tool.as_deref() {
                push(ValueField::Tool, t, (0, 0), false);
            }
            if let Some(raw) = ev.args {
                let mut spans = SpanBuf::default();
                identifiers(raw.get(), &mut spans);
                for &(a, b) in spans.as_slice() {
                    push(ValueField::Identifier, &raw.get()[a as usize..b as usize], (a, b), true);
                }
            }
        }
        Kind::Process => {
            if let Some(c) = ev.cmd.as_deref() {
                push(ValueField::Program, program_of(c), (0, 0), false);
            }
        }
        Kind::Auth => {
            for v in [ev.scope.as_deref().or(ev.op.as_deref()), ev.principal.as_deref()].into_iter().flatten() {
                push(ValueField::Auth, v, (0, 0), false);
            }
        }
        Kind::LlmCall => {
            if let Some(m) = ev.model.as_deref() {
                push(ValueField::Model, m, (0, 0), false);
            }
        }
        _ => {}
    }
}

/// The text of value `v` of event `ev` (for explanations).
pub fn value_text<'e>(ev: &'e Event, v: &Value) -> &'e str {
    if v.from_args {
        return ev.args.map(|r| &r.get()[v.span.0 as usize..v.span.1 as usize]).unwrap_or("");
    }
    let mut found = "";
    collect(ev, |field, s, _, from_args| {
        if field == v.field && !from_args && value_key(field, s) == v.key {
            found = s;
        }
    });
    found
}

pub fn score(agent: &AgentState, class: &ClassState, ev: &Event, card: &mut Card) {
    let d = &mut card.novelty;
    d.values.clear();
    let mut warm = false;
    let mut mature = false;
    collect(ev, |field, s, span, from_args| {
        if s.is_empty() || d.values.len() >= MAX_VALUES {
            return;
        }
        let key = value_key(field, s);
        let fingerprint = ((key >> 32) as u32).max(1);
        let class_new = class.vocab[field as usize].count(key) < KNOWN_VALUE;
        let agent_new = !agent.has_seen(fingerprint);
        let f = field as usize;
        let vocab_warm = class.vocab[f].observations() >= CLASS_WARM;
        mature |= vocab_warm;
        let p = if class_new {
            warm |= vocab_warm;
            class.vocab[f].p_new()
        } else if agent_new {
            warm |= agent.novelty[f].count() >= AGENT_WARM;
            agent.novelty[f].rate().max(AGENT_ONLY_FLOOR)
        } else {
            1.0
        };
        d.values.push(Value { field, key, fingerprint, class_new, agent_new, p, span, from_args });
    });
    if d.values.is_empty() {
        return;
    }
    let strongest = (0..d.values.len()).min_by(|&a, &b| d.values[a].p.total_cmp(&d.values[b].p));
    let mut ps = [1.0f64; MAX_VALUES];
    for (p, v) in ps.iter_mut().zip(&d.values) {
        *p = v.p;
    }
    let p_single = super::min_p(&ps[..d.values.len()]);
    d.strongest = strongest;
    d.p_single = p_single;
    d.mature = mature;
    card.get_mut(Comp::FirstSeen).set(p_single, warm);
}

/// The p-value of the event's tool (a tool call) or program (a process) alone, 1 when it has neither
/// or the first-seen detector did not run: what a rule asking "is this tool new to the class?" needs,
/// without the paths and identifiers of the same event.
pub fn tool_p(card: &Card) -> f64 {
    if !card.get(Comp::FirstSeen).applicable {
        return 1.0;
    }
    card.novelty.values.iter().find(|v| matches!(v.field, ValueField::Tool | ValueField::Program)).map_or(1.0, |v| v.p)
}

pub fn learn(ctx: &Ctx, agent: &mut AgentState, class: &mut ClassSink, card: &Card, w: f64) {
    let d = &card.novelty;
    if ctx.late || d.values.is_empty() {
        return;
    }
    for v in &d.values {
        let f = v.field as usize;
        class.push(ClassOp::Value { field: f as u8, key: v.key, w: w as f32 });
        agent.novelty[f].observe(v.agent_new, w as f32, AGENT_MAX_N);
        agent.remember(v.fingerprint);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idents(s: &str) -> Vec<&str> {
        let mut spans = SpanBuf::default();
        identifiers(s, &mut spans);
        spans.as_slice().iter().map(|&(a, b)| &s[a as usize..b as usize]).collect()
    }

    #[test]
    fn finds_identifier_like_argument_values() {
        assert_eq!(
            idents(r#"{"url":"https://paste.example.net/x?y=1","to":"eve@evil.io","acct":"4111-1111-1111-1111"}"#),
            vec!["paste.example.net", "eve@evil.io", "4111-1111-1111-1111"]
        );
        assert_eq!(idents(r#"{"host":"api.github.com","file":"report.pdf","n":12}"#), vec!["api.github.com"]);
        assert!(idents(r#"{"query":"how do I reset my password","path":"src/main.rs"}"#).is_empty());
        assert_eq!(idents("connect 10.0.0.12 now"), vec!["10.0.0.12"]);
    }

    /// The straightforward definition the scan must agree with: split on separator characters, trim,
    /// classify every token.
    fn identifiers_by_split(args: &str) -> Vec<(u32, u32)> {
        let mut out = Vec::new();
        let is_sep = |c: char| {
            c.is_whitespace()
                || matches!(c, '"' | '\'' | ',' | '{' | '}' | '[' | ']' | '(' | ')' | '<' | '>' | ';' | '|' | '`')
        };
        let base = args.as_ptr() as usize;
        for tok in args.split(is_sep) {
            if out.len() >= MAX_IDENTIFIERS {
                break;
            }
            let tok = tok.trim_matches(|c: char| matches!(c, '.' | ':' | '=' | '\\'));
            if tok.len() < 4 {
                continue;
            }
            let off = tok.as_ptr() as usize - base;
            let span = if let Some(i) = tok.find("://") {
                let host = host_of(tok);
                if host.is_empty() {
                    continue;
                }
                let start = off + i + 3 + tok[i + 3..].find(host).unwrap_or(0);
                (start, start + host.len())
            } else if let Some(at) = tok.find('@') {
                if at == 0 || !looks_like_host(&tok[at + 1..]) {
                    continue;
                }
                (off, off + tok.len())
            } else if looks_like_host(tok) {
                (off, off + tok.len())
            } else {
                let digits = tok.bytes().filter(u8::is_ascii_digit).count();
                if digits >= 8 && tok.bytes().all(|b| b.is_ascii_digit() || b == b'-' || b == b' ') {
                    (off, off + tok.len())
                } else {
                    continue;
                }
            };
            out.push((span.0 as u32, span.1 as u32));
        }
        out
    }

    proptest::proptest! {
        #[test]
        fn identifier_scan_agrees_with_splitting(
            s in "([a-z0-9.:/@=\\\\_-]{0,12}|https?://|\\.io|\\.com|[\"',{}()<>;|`\\[\\] \t\n\u{b}\u{c}]|\u{a0}|\u{2028}|\u{85}|é|[0-9]{8,10}){0,24}"
        ) {
            let mut spans = SpanBuf::default();
            identifiers(&s, &mut spans);
            proptest::prop_assert_eq!(spans.as_slice(), &identifiers_by_split(&s)[..], "{:?}", s);
        }
    }

    #[test]
    fn path_and_program_helpers() {
        assert_eq!(dir_of("/home/u/.ssh/id_rsa"), "/home/u/.ssh");
        assert_eq!(dir_of("/etc"), "/");
        assert_eq!(dir_of("notes.txt"), ".");
        assert_eq!(root_of("/etc/ssh/sshd_config"), "/etc/ssh");
        assert_eq!(root_of("/home/agent/.ssh/id_rsa"), "/home/agent");
        assert_eq!(root_of("/etc/shadow"), "/etc");
        assert_eq!(root_of("/tmp"), "/tmp");
        assert_eq!(root_of("src/main.rs"), "src");
        assert_eq!(dir_of(r"C:\Users\x\a.txt"), r"C:\Users\x");
        assert_eq!(program_of("/usr/bin/curl -s http://x"), "curl");
        assert_eq!(port_of("paste.example.net:443"), Some("443"));
        assert_eq!(port_of("https://x.io/a:b"), Some("443"));
        assert_eq!(port_of("http://x.io:8080/"), Some("8080"));
        assert_eq!(port_of("[2001:db8::1]:22"), Some("22"));
        assert_eq!(port_of("2001:db8::1"), None);
        assert_eq!(port_of("host"), None);
        assert_eq!(program_of(""), "");
    }
}
