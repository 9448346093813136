//! Small helpers: glob matching, stable hashing, duration parsing, "did you mean" hints and the
//! per-thread scratch buffers that keep `lower(..)` and `+` allocation-free on the hot path.

use std::cell::RefCell;

/// A glob pattern: `*` matches any run of characters (including `/` and `.`), `?` one character;
/// everything else matches itself. Compiled into its fastest form.
#[derive(Clone, Debug)]
pub(crate) enum Glob {
    /// No wildcard: exact match.
    Exact(Box<str>),
    /// `abc*`.
    Prefix(Box<str>),
    /// `*abc`.
    Suffix(Box<str>),
    /// `*abc*`.
    Contains(Box<memchr::memmem::Finder<'static>>),
    /// Anything else.
    General(Box<[char]>),
}

impl Glob {
    pub(crate) fn new(pat: &str) -> Glob {
        let inner_wild = |s: &str| s.contains(['*', '?']);
        if !inner_wild(pat) {
            return Glob::Exact(pat.into());
        }
        if let Some(rest) = pat.strip_suffix('*') {
            if !inner_wild(rest) {
                return Glob::Prefix(rest.into());
            }
            if let Some(mid) = rest.strip_prefix('*') {
                if !inner_wild(mid) && !mid.is_empty() {
                    return Glob::Contains(Box::new(memchr::memmem::Finder::new(mid.as_bytes()).into_owned()));
                }
            }
        }
        if let Some(rest) = pat.strip_prefix('*') {
            if !inner_wild(rest) {
                return Glob::Suffix(rest.into());
            }
        }
        Glob::General(pat.chars().collect())
    }

    pub(crate) fn is_match(&self, s: &str) -> bool {
        match self {
            Glob::Exact(p) => s == &**p,
            Glob::Prefix(p) => s.starts_with(&**p),
            Glob::Suffix(p) => s.ends_with(&**p),
            Glob::Contains(f) => f.find(s.as_bytes()).is_some(),
            Glob::General(p) => wildcard(p, s),
        }
    }
}

/// Iterative wildcard matching with single-star backtracking: O(len(p) * len(s)) worst case, no recursion.
fn wildcard(p: &[char], s: &str) -> bool {
    // Work on byte offsets of `s` to avoid collecting it.
    let (mut pi, mut sb) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None; // (pattern index after '*', s byte offset)
    loop {
        if sb < s.len() {
            let c = s[sb..].chars().next().unwrap_or('\0');
            let clen = c.len_utf8();
            if pi < p.len() && (p[pi] == '?' || (p[pi] != '*' && p[pi] == c)) {
                pi += 1;
                sb += clen;
                continue;
            }
            if pi < p.len() && p[pi] == '*' {
                star = Some((pi + 1, sb));
                pi += 1;
                continue;
            }
            if let Some((sp, ss)) = star {
                let c0 = s[ss..].chars().next().unwrap_or('\0');
                let next = ss + c0.len_utf8();
                star = Some((sp, next));
                pi = sp;
                sb = next;
                continue;
            }
            return false;
        }
        while pi < p.len() && p[pi] == '*' {
            pi += 1;
        }
        return pi == p.len();
    }
}

/// Several needles searched in one pass over a short haystack: a table of first bytes picks the
/// positions worth comparing, so there is no per-needle pass and no searcher set-up cost. The needles
/// are sorted by first byte and the table gives each byte its run of needles, so a candidate position
/// is compared with the needles that start with its byte only (in a tool name full of `s`, `e` and
/// `t`, most positions are candidates of some needle of `*shell*`, `*exec*`, `*transfer*`, ...).
#[derive(Clone, Debug, Default)]
pub(crate) struct ShortSearch {
    /// For each byte value, the range of `needles` that start with it (empty when none does); 256
    /// entries, or none when there are no needles.
    runs: Box<[(u32, u32)]>,
    /// Each needle with its second byte (0 for a one-byte needle), sorted by first byte.
    needles: Vec<(u8, Box<[u8]>)>,
    has_empty: bool,
}

impl ShortSearch {
    pub(crate) fn new<'a>(needles: impl IntoIterator<Item = &'a [u8]>) -> ShortSearch {
        let mut v: Vec<(u8, Box<[u8]>)> = Vec::new();
        let mut has_empty = false;
        for n in needles {
            match n.first() {
                Some(_) => v.push((n.get(1).copied().unwrap_or(0), n.into())),
                None => has_empty = true,
            }
        }
        v.sort_by_key(|(_, n)| n[0]);
        let mut runs = vec![(0u32, 0u32); 256];
        for (i, (_, n)) in v.iter().enumerate() {
            let r = &mut runs[n[0] as usize];
            if r.0 == r.1 {
                r.0 = i as u32;
            }
            r.1 = i as u32 + 1;
        }
        if v.is_empty() {
            runs.clear();
        }
        ShortSearch { runs: runs.into(), needles: v, has_empty }
    }

    /// Whether any needle occurs in `hay` (an empty needle always does).
    #[inline]
    pub(crate) fn any_in(&self, hay: &[u8]) -> bool {
        if self.has_empty {
            return true;
        }
        let Some(runs) = self.runs.first_chunk::<256>() else {
            return false;
        };
        for (i, &b) in hay.iter().enumerate() {
            let (lo, hi) = runs[b as usize];
            if lo == hi {
                continue;
            }
            let next = hay.get(i + 1).copied().unwrap_or(0);
            let rest = &hay[i..];
            let run = self.needles.get(lo as usize..hi as usize).unwrap_or(&[]);
            if run.iter().any(|(second, n)| n.len() == 1 || (*second == next && rest.starts_with(n))) {
                return true;
            }
        }
        false
    }
}

/// The first `min(8, len)` bytes of `b` as a little-endian integer (byte 0 in the low bits), zero-padded.
#[inline]
pub(crate) fn head8(b: &[u8]) -> u64 {
    match b.first_chunk::<8>() {
        Some(c) => u64::from_le_bytes(*c),
        None => b.iter().enumerate().fold(0, |x, (i, &y)| x | (y as u64) << (8 * i)),
    }
}

/// The last `min(8, len)` bytes of `b` as an integer with the last byte in the high bits, zero-padded
/// below.
#[inline]
pub(crate) fn tail8(b: &[u8]) -> u64 {
    match b.last_chunk::<8>() {
        Some(c) => u64::from_le_bytes(*c),
        None => b.iter().rev().enumerate().fold(0, |x, (i, &y)| x | (y as u64) << (56 - 8 * i)),
    }
}

/// Haystacks shorter than this are searched with [`ShortSearch`].
pub(crate) const SHORT_HAYSTACK: usize = 96;

/// 64-bit FNV-1a: stable across builds and platforms (state that is checkpointed depends on it).
pub(crate) fn fnv(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Mixes `h` with more bytes (FNV-1a continued, with a separator so ("ab","c") != ("a","bc")).
pub(crate) fn fnv_more(mut h: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= 0xff;
    h.wrapping_mul(0x0000_0100_0000_01b3)
}

/// Parses a duration: `500ms`, `30s`, `10m`, `2h`, `1d`, or a bare number of seconds. Returns milliseconds.
pub(crate) fn parse_duration_ms(s: &str) -> Option<i64> {
    let s = s.trim();
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().ok()?;
    let mult = match unit.trim() {
        "" | "s" | "sec" | "secs" => 1_000.0,
        "ms" => 1.0,
        "m" | "min" | "mins" => 60_000.0,
        "h" => 3_600_000.0,
        "d" => 86_400_000.0,
        _ => return None,
    };
    let ms = n * mult;
    if !ms.is_finite() || !(1.0..=9.0e15).contains(&ms) {
        return None;
    }
    Some(ms.round() as i64)
}

/// Levenshtein distance (characters), capped work for long inputs.
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().take(64).collect();
    let b: Vec<char> = b.chars().take(64).collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        cur[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// The candidate closest to `name`, if it is close enough to be a plausible typo.
pub(crate) fn closest<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let mut best: Option<(usize, &'a str)> = None;
    for c in candidates {
        let d = distance(name, c);
        let limit = (name.chars().count().max(c.chars().count()) / 3).max(1);
        if d <= limit && best.is_none_or(|(bd, bc)| d < bd || (d == bd && c < bc)) {
            best = Some((d, c));
        }
    }
    best.map(|(_, c)| c)
}

/// A "; did you mean `x`?" suffix, or empty.
pub(crate) fn hint(c: Option<&str>) -> String {
    c.map(|c| format!("; did you mean `{c}`?")).unwrap_or_default()
}

thread_local! {
    /// Reusable string buffers for values computed during evaluation (`lower(x)`, `a + b`).
    static SCRATCH: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with an empty scratch string taken from a per-thread pool, and returns the buffer to the pool
/// afterwards (so steady-state evaluation does not allocate). Re-entrant: nested calls get their own buffer.
pub(crate) fn with_scratch<R>(f: impl FnOnce(&mut String) -> R) -> R {
    let mut buf = SCRATCH.try_with(|s| s.borrow_mut().pop()).ok().flatten().unwrap_or_default();
    buf.clear();
    let r = f(&mut buf);
    if buf.capacity() <= 1 << 20 {
        let _ = SCRATCH.try_with(|s| {
            let mut s = s.borrow_mut();
            if s.len() < 16 {
                s.push(buf);
            }
        });
    }
    r
}

/// Whether lower-casing `s` would change it.
#[inline]
pub(crate) fn needs_lowering(s: &str) -> bool {
    // Branch-free per 128-byte chunk so the compiler vectorises it: bit 0 = an ASCII upper-case letter,
    // bit 7 = a non-ASCII byte.
    let flag = |c: &[u8]| c.iter().fold(0u8, |acc, &x| acc | u8::from(x.wrapping_sub(b'A') < 26) | (x & 0x80));
    let bytes = s.as_bytes();
    let mut chunks = bytes.chunks_exact(128);
    let mut seen = 0u8;
    for c in &mut chunks {
        seen |= flag(c);
        if seen & 1 != 0 {
            return true;
        }
    }
    seen |= flag(chunks.remainder());
    if seen & 1 != 0 {
        return true;
    }
    if seen & 0x80 == 0 {
        return false;
    }
    // No ASCII upper case: only the non-ASCII characters can change (ASCII ones lower-case to
    // themselves), so look at those alone instead of decoding every character.
    let mut rest = s;
    while let Some(i) = rest.bytes().position(|b| b >= 0x80) {
        let Some(c) = rest[i..].chars().next() else { break };
        if c.is_uppercase() || c.to_lowercase().next() != Some(c) {
            return true;
        }
        rest = &rest[i + c.len_utf8()..];
    }
    false
}

/// The length of the ASCII prefix of `b`, eight bytes at a time.
#[inline]
fn ascii_prefix_len(b: &[u8]) -> usize {
    let mut i = 0;
    for w in b.chunks_exact(8) {
        let word = u64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]);
        let high = word & 0x8080_8080_8080_8080;
        if high != 0 {
            return i + (high.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    i + b[i..].iter().position(|&x| x >= 0x80).unwrap_or(b.len() - i)
}

/// Appends the lower-case form of `s` to `out`, character by character (`char::to_lowercase`). Runs of
/// ASCII are copied and lower-cased in bulk: the same result, without a table lookup per character.
pub(crate) fn push_lower(out: &mut String, s: &str) {
    out.reserve(s.len());
    let mut rest = s;
    while !rest.is_empty() {
        let ascii = ascii_prefix_len(rest.as_bytes());
        let start = out.len();
        out.push_str(&rest[..ascii]);
        out[start..].make_ascii_lowercase();
        rest = &rest[ascii..];
        if let Some(c) = rest.chars().next() {
            out.extend(c.to_lowercase());
            rest = &rest[c.len_utf8()..];
        }
    }
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Formats epoch milliseconds as RFC 3339 UTC with three fractional digits (`2026-11-27T05:00:02.310Z`).
pub(crate) fn format_ts(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let rem = ms.rem_euclid(86_400_000);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000
    )
}

/// Parses an RFC 3339 timestamp (`2026-11-27T05:00:00.123Z`, any offset) into epoch milliseconds.
pub(crate) fn parse_ts(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        if t.bytes().all(|c| c.is_ascii_digit()) && !t.is_empty() {
            t.parse().ok()
        } else {
            None
        }
    };
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let mut i = 19;
    let mut ms = 0i64;
    if b.get(i) == Some(&b'.') {
        let start = i + 1;
        i = start;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return None;
        }
        let frac = &s[start..i.min(start + 3)];
        ms = frac.parse::<i64>().ok()? * 10i64.pow(3 - frac.len() as u32);
    }
    let offset_min = match b.get(i) {
        Some(b'Z') | Some(b'z') if i + 1 == b.len() => 0,
        Some(&c @ (b'+' | b'-')) if i + 6 == b.len() && b[i + 3] == b':' => {
            let v = num(i + 1..i + 3)? * 60 + num(i + 4..i + 6)?;
            if c == b'-' {
                -v
            } else {
                v
            }
        }
        _ => return None,
    };
    let days = days_from_civil(y, mo, d);
    Some(((days * 86_400 + h * 3600 + mi * 60 + se) - offset_min * 60) * 1000 + ms)
}

/// Formats a window in the largest exact unit (`10m`, `90s`, `1500ms`).
pub(crate) fn format_window(ms: i64) -> String {
    if ms % 3_600_000 == 0 {
        format!("{}h", ms / 3_600_000)
    } else if ms % 60_000 == 0 {
        format!("{}m", ms / 60_000)
    } else if ms % 1000 == 0 {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        let cases = [
            ("*.internal", "a.b.internal", true),
            ("*.internal", "internal", false),
            ("api.*", "api.github.com", true),
            ("*ssh*", "/home/u/.ssh/id_rsa", true),
            ("*/.ssh/id_*", "/home/u/.ssh/id_rsa", true),
            ("*/.ssh/id_*", "~/.ssh/id_ed25519", true),
            ("*/.ssh/id_*", "/home/u/.ssh/known_hosts", false),
            ("a?c", "abc", true),
            ("a?c", "ac", false),
            ("*a*b*c", "xxaybzzc", true),
            ("*a*b*c", "xxaybzz", false),
            ("", "", true),
            ("*", "", true),
            ("é*ü", "éaaü", true),
            ("exact", "exact", true),
            ("exact", "exactly", false),
        ];
        for (p, s, want) in cases {
            assert_eq!(Glob::new(p).is_match(s), want, "{p} vs {s}");
            assert_eq!(wildcard(&p.chars().collect::<Vec<_>>(), s), want, "general {p} vs {s}");
        }
    }

    #[test]
    fn short_search() {
        let s = ShortSearch::new([&b"shell"[..], b"exec", b"ab"]);
        assert!(s.any_in(b"run_shell_command"));
        assert!(s.any_in(b"shell"));
        assert!(s.any_in(b"code.exec"));
        assert!(!s.any_in(b"shel"));
        assert!(!s.any_in(b"she ll"));
        assert!(s.any_in(b"aaab"));
        assert!(!s.any_in(b""));
        assert!(ShortSearch::new([&b""[..]]).any_in(b"x"));
        assert!(!ShortSearch::new(std::iter::empty()).any_in(b"x"));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ms("10m"), Some(600_000));
        assert_eq!(parse_duration_ms("30s"), Some(30_000));
        assert_eq!(parse_duration_ms("90"), Some(90_000));
        assert_eq!(parse_duration_ms("500ms"), Some(500));
        assert_eq!(parse_duration_ms("1.5h"), Some(5_400_000));
        assert_eq!(parse_duration_ms("1d"), Some(86_400_000));
        assert_eq!(parse_duration_ms("10x"), None);
        assert_eq!(parse_duration_ms("0"), None);
        assert_eq!(parse_duration_ms(""), None);
        assert_eq!(parse_duration_ms("-5s"), None);
    }

    #[test]
    fn hints_and_hash() {
        assert_eq!(closest("tol", ["tool", "kind"].into_iter()), Some("tool"));
        assert_eq!(closest("zzzzz", ["tool", "kind"].into_iter()), None);
        assert_ne!(fnv_more(fnv(b""), b"ab"), fnv_more(fnv_more(fnv(b""), b"a"), b"b"));
        assert_eq!(fnv(b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn timestamps() {
        assert_eq!(parse_ts("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_ts("2026-11-27T05:00:02.310Z"), Some(1_795_755_602_310));
        assert_eq!(parse_ts("2026-11-27T07:00:02.31+02:00"), Some(1_795_755_602_310));
        assert_eq!(format_ts(1_795_755_602_310), "2026-11-27T05:00:02.310Z");
        assert_eq!(format_ts(-1), "1969-12-31T23:59:59.999Z");
        assert_eq!(parse_ts("2026-13-01T00:00:00Z"), None);
        assert_eq!(parse_ts("yesterday"), None);
        assert_eq!(parse_ts("2026-11-27T05:00:02.Z"), None);
        assert_eq!(format_window(600_000), "10m");
        assert_eq!(format_window(3_600_000), "1h");
        assert_eq!(format_window(90_000), "90s");
        assert_eq!(format_window(1500), "1500ms");
    }

    #[test]
    fn lowering() {
        assert!(!needs_lowering("abc/def"));
        assert!(needs_lowering("ABC"));
        assert!(needs_lowering("Ünï"));
        assert!(!needs_lowering("ünï"));
        let long = "a".repeat(100);
        assert!(!needs_lowering(&long));
        assert!(needs_lowering(&(long.clone() + "B")));
        assert!(needs_lowering(&format!("{long}Z{long}")));
        assert!(needs_lowering(&format!("{long}\u{e9}{long}\u{c9}")));
        assert!(!needs_lowering(&format!("{long}\u{e9}{long}\u{3c3}")));
        assert!(needs_lowering("\u{212a}"), "the Kelvin sign lower-cases to k");
        let s = with_scratch(|b| {
            push_lower(b, "IgNoRe");
            b.clone()
        });
        assert_eq!(s, "ignore");
        // Nested use gets distinct buffers.
        with_scratch(|a| {
            a.push('x');
            with_scratch(|b| assert!(b.is_empty()));
            assert_eq!(a, "x");
        });
    }

    proptest::proptest! {
        /// The one-pass search finds a needle exactly when one occurs.
        #[test]
        fn short_search_finds_what_occurs(
            needles in proptest::collection::vec("[a-e_]{0,4}", 0..8),
            hay in "[a-e_.]{0,40}",
        ) {
            let search = ShortSearch::new(needles.iter().map(|n| n.as_bytes()));
            let want = needles.iter().any(|n| hay.contains(n.as_str()));
            proptest::prop_assert_eq!(search.any_in(hay.as_bytes()), want);
        }

        #[test]
        fn needs_lowering_checks_every_character(s in "(\\PC|[A-Z]|İ|Σ|ẞ|\u{212a}){0,300}") {
            // The definition, one character at a time (the fast path must agree with it).
            let slow = s.chars().any(|c| c.is_uppercase() || c.to_lowercase().next() != Some(c));
            proptest::prop_assert_eq!(needs_lowering(&s), slow);
        }

        #[test]
        fn push_lower_lowers_character_by_character(s in "(\\PC|[A-Z]|İ|Σ|ẞ|[a-z ]{1,20}){0,40}") {
            let mut fast = String::from(">");
            push_lower(&mut fast, &s);
            let mut slow = String::from(">");
            for c in s.chars() {
                slow.extend(c.to_lowercase());
            }
            proptest::prop_assert_eq!(fast, slow);
        }
    }
}
