//! Literal prefilters for `x.matches("regex")`: literals one of which must occur in any match, searched
//! with SIMD substring search before the regex runs.
//!
//! Most texts a rule scans (tool results, messages, payloads) do not match, and a regex engine has to read
//! all of a non-matching text at a nanosecond or two per byte. When every branch of the regex contains a
//! literal (`instruction`, `crontab`, `/dev/tcp/`), a few substring searches at a few hundredths of a
//! nanosecond per byte reject most texts; the regex only runs on texts that hold a candidate. The literals
//! are chosen per branch from the syntax tree (short exact parts are combined, `</?system>` gives
//! `<system>` and `</system>`); a regex with a branch that requires nothing searchable gets no prefilter.
//! Rule authors get the most from it by giving every branch a distinctive word.

use crate::util::{ShortSearch, SHORT_HAYSTACK};
use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use memchr::memmem::Finder;
use regex_syntax::hir::{Class, Hir, HirKind};

/// Literals shorter than this make a prefilter not worth its scan.
const MIN_LITERAL: usize = 2;
/// Most literals a prefilter holds.
const MAX_LITERALS: usize = 128;
/// Largest class expanded into literals.
const MAX_CLASS: usize = 4;

/// What any match must contain: one of `lits`, or (when `non_ascii`) a non-ASCII character.
#[derive(Clone, Debug, Default, PartialEq)]
struct Req {
    lits: Vec<Vec<u8>>,
    non_ascii: bool,
}

impl Req {
    /// Higher is more selective: a non-ASCII requirement alone is best (ASCII text is rejected by one
    /// fast check), then the longest shortest literal (up to 6 bytes), then fewer literals.
    fn score(&self) -> (usize, usize, usize) {
        if self.lits.is_empty() {
            return (usize::from(self.non_ascii), usize::MAX, usize::MAX);
        }
        // Past 6 bytes a longer literal hardly helps; fewer literals mean fewer scans.
        let min = self.lits.iter().map(Vec::len).min().unwrap_or(0).min(6);
        (0, min, usize::MAX - self.lits.len())
    }

    fn better(&self, other: &Req) -> bool {
        let (a, b) = (self.score(), other.score());
        if a.0 != b.0 {
            return a.0 > b.0;
        }
        (a.1, a.2) > (b.1, b.2)
    }
}

/// Every string `h` can match, if there are few (a literal, a small alternation or class, an optional
/// part, and concatenations of these).
fn exact(h: &Hir, depth: usize) -> Option<Vec<Vec<u8>>> {
    if depth > 64 {
        return None;
    }
    match h.kind() {
        HirKind::Empty => Some(vec![Vec::new()]),
        HirKind::Literal(l) => Some(vec![l.0.to_vec()]),
        HirKind::Capture(c) => exact(&c.sub, depth + 1),
        HirKind::Class(Class::Unicode(c)) => {
            let n: usize = c.ranges().iter().map(|r| r.end() as usize - r.start() as usize + 1).sum();
            if n > MAX_CLASS {
                return None;
            }
            Some(c.iter().flat_map(|r| (r.start()..=r.end()).map(|ch| ch.to_string().into_bytes())).collect())
        }
        HirKind::Repetition(r) if r.min == 0 && r.max == Some(1) => {
            let mut v = exact(&r.sub, depth + 1)?;
            v.push(Vec::new());
            Some(v)
        }
        HirKind::Alternation(subs) => {
            let mut all = Vec::new();
            for s in subs {
                all.extend(exact(s, depth + 1)?);
                if all.len() > MAX_LITERALS {
                    return None;
                }
            }
            Some(all)
        }
        HirKind::Concat(subs) => {
            let mut acc = vec![Vec::new()];
            for s in subs {
                acc = cross(&acc, &exact(s, depth + 1)?)?;
            }
            Some(acc)
        }
        _ => None,
    }
}

fn cross(a: &[Vec<u8>], b: &[Vec<u8>]) -> Option<Vec<Vec<u8>>> {
    if a.len() * b.len() > MAX_LITERALS {
        return None;
    }
    let mut out = Vec::with_capacity(a.len() * b.len());
    for x in a {
        for y in b {
            let mut z = x.clone();
            z.extend_from_slice(y);
            out.push(z);
        }
    }
    Some(out)
}

/// Sorts and dedups literals, and drops those that contain another one (finding the shorter one is enough).
fn minimize(v: &mut Vec<Vec<u8>>) {
    v.sort();
    v.dedup();
    let all = v.clone();
    v.retain(|x| !all.iter().any(|y| y.len() < x.len() && x.windows(y.len()).any(|w| w == y.as_slice())));
}

fn literals(mut v: Vec<Vec<u8>>) -> Option<Req> {
    if v.iter().any(Vec::is_empty) {
        return None;
    }
    minimize(&mut v);
    Some(Req { lits: v, non_ascii: false })
}

/// Largest non-ASCII class whose characters are listed one by one in [`utf8_heads`].
const MAX_UTF8_CLASS: u32 = 4096;
/// Most distinct encoded heads [`utf8_heads`] turns into literals.
const MAX_UTF8_HEADS: usize = 16;

/// The first (up to) three bytes of the UTF-8 encoding of every character of a small non-ASCII class,
/// when they are few: e.g. the zero-width characters U+200B..U+200F all start with `E2 80`, followed by
/// `8B`..`8F`. A text must contain one of them to hold such a character, so prose with accents or curly
/// quotes (`é` is `C3 A9`, `’` is `E2 80 99`) is rejected without running the regex.
fn utf8_heads(c: &regex_syntax::hir::ClassUnicode) -> Option<Vec<Vec<u8>>> {
    let n: u32 = c.ranges().iter().map(|r| r.end() as u32 - r.start() as u32 + 1).sum();
    if n > MAX_UTF8_CLASS {
        return None;
    }
    let mut heads: Vec<Vec<u8>> = Vec::new();
    for ch in c.iter().flat_map(|r| r.start()..=r.end()) {
        let mut buf = [0u8; 4];
        let enc = ch.encode_utf8(&mut buf).as_bytes();
        let head = &enc[..enc.len().min(3)];
        if !heads.iter().any(|h| h.as_slice() == head) {
            heads.push(head.to_vec());
            if heads.len() > MAX_UTF8_HEADS {
                return None;
            }
        }
    }
    heads.sort();
    Some(heads)
}

/// What every match of `h` contains, if anything useful.
fn required(h: &Hir, depth: usize) -> Option<Req> {
    if depth > 64 {
        return None;
    }
    match h.kind() {
        HirKind::Literal(l) => literals(vec![l.0.to_vec()]),
        HirKind::Class(Class::Unicode(c)) if c.ranges().iter().all(|r| r.start() as u32 >= 0x80) => {
            Some(utf8_heads(c).map_or(Req { lits: Vec::new(), non_ascii: true }, |lits| Req { lits, non_ascii: false }))
        }
        HirKind::Class(_) => exact(h, depth).and_then(literals),
        HirKind::Capture(c) => required(&c.sub, depth + 1),
        HirKind::Repetition(r) if r.min >= 1 => required(&r.sub, depth + 1),
        HirKind::Concat(subs) => {
            let mut best: Option<Req> = None;
            let mut consider = |r: Req| {
                if best.as_ref().is_none_or(|b| r.better(b)) {
                    best = Some(r);
                }
            };
            // Runs of parts with few exact strings combine into longer literals (`</?system>`).
            let mut run: Option<Vec<Vec<u8>>> = None;
            for s in subs {
                match exact(s, depth + 1) {
                    Some(e) => {
                        run = match run.take() {
                            None => Some(e),
                            Some(r) => match cross(&r, &e) {
                                Some(x) => Some(x),
                                None => {
                                    if let Some(req) = literals(r) {
                                        consider(req);
                                    }
                                    Some(e)
                                }
                            },
                        };
                    }
                    None => {
                        if let Some(req) = run.take().and_then(literals) {
                            consider(req);
                        }
                        if let Some(req) = required(s, depth + 1) {
                            consider(req);
                        }
                    }
                }
            }
            if let Some(req) = run.and_then(literals) {
                consider(req);
            }
            best
        }
        HirKind::Alternation(subs) => {
            let mut all = Req::default();
            for s in subs {
                let r = required(s, depth + 1)?;
                all.lits.extend(r.lits);
                all.non_ascii |= r.non_ascii;
                if all.lits.len() > MAX_LITERALS {
                    return None;
                }
            }
            minimize(&mut all.lits);
            Some(all)
        }
        _ => None,
    }
}

/// Most literals searched one by one; more go into one Aho-Corasick automaton.
const MAX_FINDERS: usize = 8;

/// The prefilter of a regex.
///
/// Literals that start with a letter or digit are searched one by one with `memchr::memmem` (which
/// looks for a pair of the needle's rarest bytes with SIMD, fast even on prose full of common trigrams);
/// literals that start with punctuation (`<system>`, `[inst]`, `/dev/tcp/`) go into one Aho-Corasick
/// automaton, whose packed SIMD search is fast when the first bytes are rare. A regex that needs a
/// non-ASCII character lets through only non-ASCII texts.
///
/// When the CPU has the SIMD instructions for it, all of that is replaced by one pass of a packed
/// multi-literal searcher (Teddy, from `aho-corasick`) that looks for every literal at once: a text is
/// read once per regex instead of once per literal (a secret scan has a dozen literals, the
/// prompt-injection regexes eight).
#[derive(Clone, Debug)]
pub(crate) struct Prefilter {
    /// Every literal, searched in one SIMD pass (`None`: no Teddy on this CPU, or too many literals).
    packed: Option<aho_corasick::packed::Searcher>,
    finders: Vec<Finder<'static>>,
    /// The literals, for short texts (searched in one pass, without searcher set-up).
    short: ShortSearch,
    automaton: Option<AhoCorasick>,
    non_ascii: bool,
    /// Every literal holds a non-ASCII byte (and nothing else is accepted): an ASCII text cannot match.
    skip_ascii: bool,
}

impl Prefilter {
    /// The prefilter of `pattern`, if every branch of it requires something worth searching for.
    pub(crate) fn new(pattern: &str) -> Option<Prefilter> {
        let hir = regex_syntax::ParserBuilder::new().nest_limit(128).build().parse(pattern).ok()?;
        let req = required(&hir, 0)?;
        if req.lits.len() > MAX_LITERALS || req.lits.iter().any(|l| l.len() < MIN_LITERAL) {
            return None;
        }
        if req.lits.is_empty() && !req.non_ascii {
            return None;
        }
        let skip_ascii = !req.non_ascii && req.lits.iter().all(|l| !l.is_ascii());
        let (mut words, mut rest): (Vec<Vec<u8>>, Vec<Vec<u8>>) =
            req.lits.into_iter().partition(|l| l.first().is_some_and(u8::is_ascii_alphanumeric));
        if words.len() > MAX_FINDERS {
            rest.append(&mut words);
        }
        let automaton = if rest.is_empty() {
            None
        } else {
            Some(AhoCorasickBuilder::new().match_kind(MatchKind::Standard).build(&rest).ok()?)
        };
        let mut all = words.clone();
        all.extend(rest.iter().cloned());
        // Leftmost-first is the packed searchers' mode; only whether some literal occurs matters here.
        let packed = aho_corasick::packed::Config::new()
            .match_kind(aho_corasick::packed::MatchKind::LeftmostFirst)
            .builder()
            .extend(&all)
            .build();
        Some(Prefilter {
            packed,
            short: ShortSearch::new(all.iter().map(Vec::as_slice)),
            finders: words.iter().map(|w| Finder::new(w).into_owned()).collect(),
            automaton,
            non_ascii: req.non_ascii,
            skip_ascii,
        })
    }

    /// Whether `s` may match (false: it certainly does not).
    #[inline]
    pub(crate) fn may_match(&self, s: &str) -> bool {
        if self.skip_ascii && s.is_ascii() {
            return false;
        }
        if self.non_ascii && !s.is_ascii() {
            return true;
        }
        match &self.packed {
            // The packed searcher scans 16 or 32 bytes a step; below its minimum it would fall back to
            // a slower search, and the one-pass short search is better there.
            Some(p) if s.len() >= p.minimum_len() => p.find(s).is_some(),
            _ if s.len() < SHORT_HAYSTACK || self.packed.is_some() => self.short.any_in(s.as_bytes()),
            _ => {
                self.automaton.as_ref().is_some_and(|a| a.is_match(s))
                    || self.finders.iter().any(|f| f.find(s.as_bytes()).is_some())
            }
        }
    }
}

/// Characters other than ASCII whose lower case holds an ASCII character: the capital I with a dot (`i`
/// followed by a combining dot, which is not ASCII) and the Kelvin sign (`k`). Every other character
/// lower-cases to ASCII only if it is ASCII itself (a test checks all of them).
const LOWERS_TO_ASCII: [char; 2] = ['\u{130}', '\u{212A}'];

/// Bytes of a literal window searched case-insensitively (at most the packed searcher's fingerprint).
const CASELESS_WINDOW: usize = 4;

/// A required literal's index and where its search window starts in it.
type LiteralAt = (u32, usize);

/// The prefilter of a regex that runs on lower-cased text (`lower(payload).matches(..)`), read on the
/// original text: it rejects most texts without lower-casing them.
///
/// Any match of the regex holds one of its required literals ([`required`]), so the lower-cased text
/// holds one. For literals of ASCII characters, the lower-cased text `lower(s)` holds a literal `L` only
/// if `s` holds a string equal to `L` up to ASCII case, unless `s` has one of [`LOWERS_TO_ASCII`]: every
/// other character lower-cases either to one ASCII character (itself, lower-cased) or to no ASCII at all,
/// so a run of ASCII in `lower(s)` is a run of ASCII in `s`, lower-cased. Those two matter only to a
/// literal that holds a `k`, or ends with an `i` (the `i` of U+0130 is followed by a non-ASCII
/// character, so it can only end a run of ASCII); for other literals they are not looked for. The
/// search is one packed pass over the case variants of a short window of each literal (the variants of a
/// window share a bucket of the packed searcher, whose fingerprint then accepts exactly those); a window
/// found is checked against its whole literals, ignoring ASCII case.
#[derive(Clone, Debug)]
pub(crate) struct CaselessPrefilter {
    packed: aho_corasick::packed::Searcher,
    /// For each packed pattern, its window's index in `windows`.
    pattern_window: Vec<u32>,
    /// For each distinct window (lower-cased): the literals holding it, with its offset in each.
    windows: Vec<Vec<LiteralAt>>,
    lits: Vec<Box<[u8]>>,
    /// Some literal holds a `k` or ends with an `i`: texts with [`LOWERS_TO_ASCII`] are let through.
    lowers_matter: bool,
}

/// How common a byte is in text (higher: more common), to pick the rarest window of a literal.
fn commonness(b: u8) -> u32 {
    const BY_FREQUENCY: &[u8] = b"zqxjkvbpygfwmucldrhsnioate";
    match b.to_ascii_lowercase() {
        b' ' => 40,
        c => BY_FREQUENCY.iter().position(|&x| x == c).map_or(0, |i| i as u32 + 1),
    }
}

impl CaselessPrefilter {
    /// The caseless prefilter of `pattern`, if every branch of it requires an ASCII literal.
    pub(crate) fn new(pattern: &str) -> Option<CaselessPrefilter> {
        let hir = regex_syntax::ParserBuilder::new().nest_limit(128).build().parse(pattern).ok()?;
        let req = required(&hir, 0)?;
        if req.non_ascii || req.lits.is_empty() || req.lits.iter().any(|l| l.len() < MIN_LITERAL || !l.is_ascii()) {
            return None;
        }
        let w = req.lits.iter().map(Vec::len).min()?.min(CASELESS_WINDOW);
        // Each distinct window, with the literals (index, offset of the window) that hold it.
        let mut windows: Vec<(Vec<u8>, Vec<LiteralAt>)> = Vec::new();
        for (li, lit) in req.lits.iter().enumerate() {
            let lower = lit.to_ascii_lowercase();
            // The rarest window; the first of equals.
            let off =
                (0..=lower.len() - w).min_by_key(|&o| lower[o..o + w].iter().map(|&b| commonness(b)).sum::<u32>())?;
            let win = lower[off..off + w].to_vec();
            match windows.iter_mut().find(|(x, _)| *x == win) {
                Some((_, v)) => v.push((li as u32, off)),
                None => windows.push((win, vec![(li as u32, off)])),
            }
        }
        // The variants of a window share their low nybbles, so the packed searcher puts them in one
        // bucket: more patterns than its heuristic limit cost nothing in verification here, and the
        // slim form reads 32 bytes a step.
        let mut builder = aho_corasick::packed::Config::new()
            .match_kind(aho_corasick::packed::MatchKind::LeftmostFirst)
            .heuristic_pattern_limits(false)
            .only_teddy_fat(Some(false))
            .builder();
        let variants: Vec<Vec<Vec<u8>>> = windows
            .iter()
            .map(|(win, _)| {
                let letters: Vec<usize> = (0..w).filter(|&i| win[i].is_ascii_alphabetic()).collect();
                (0u32..1 << letters.len())
                    .map(|bits| {
                        let mut v = win.clone();
                        for (k, &i) in letters.iter().enumerate() {
                            if bits >> k & 1 == 1 {
                                v[i] = v[i].to_ascii_uppercase();
                            }
                        }
                        v
                    })
                    .collect()
            })
            .collect();
        // The searcher gives a new low-nybble prefix the bucket of its first pattern's number: the first
        // variants of the windows come first, so that (up to 8) windows get a bucket each.
        let mut pattern_window = Vec::new();
        for k in 0..variants.iter().map(Vec::len).max().unwrap_or(0) {
            for (wi, vs) in variants.iter().enumerate() {
                if let Some(v) = vs.get(k) {
                    builder.add(v);
                    pattern_window.push(wi as u32);
                }
            }
        }
        if pattern_window.len() >= 128 {
            return None;
        }
        let packed = builder.build()?;
        let lowers_matter = req.lits.iter().any(|l| {
            l.iter().any(|b| b.eq_ignore_ascii_case(&b'k')) || l.last().is_some_and(|b| b.eq_ignore_ascii_case(&b'i'))
        });
        Some(CaselessPrefilter {
            packed,
            pattern_window,
            windows: windows.into_iter().map(|(_, v)| v).collect(),
            lits: req.lits.into_iter().map(Vec::into_boxed_slice).collect(),
            lowers_matter,
        })
    }

    /// Whether lower-casing `s` certainly gives a text the regex does not match (false: it may match).
    /// Texts shorter than the packed searcher's minimum are not looked at (false).
    #[inline]
    pub(crate) fn rejects(&self, s: &str) -> bool {
        let b = s.as_bytes();
        if b.len() < self.packed.minimum_len() {
            return false;
        }
        let mut at = 0;
        while let Some(m) = self.packed.find(&b[at..]) {
            let found = at + m.start();
            let win = self.pattern_window[m.pattern().as_usize()] as usize;
            for &(li, off) in &self.windows[win] {
                let lit = &self.lits[li as usize];
                let hit = found.checked_sub(off).and_then(|start| b.get(start..start + lit.len()));
                if hit.is_some_and(|h| h.eq_ignore_ascii_case(lit)) {
                    return false;
                }
            }
            at = found + 1;
        }
        !(self.lowers_matter && Self::lowers_to_ascii(b))
    }

    /// Whether `b` holds one of [`LOWERS_TO_ASCII`] (whose UTF-8 starts with `C4` or `E2`).
    #[inline(never)]
    fn lowers_to_ascii(b: &[u8]) -> bool {
        memchr::memchr2_iter(0xC4, 0xE2, b)
            .any(|i| LOWERS_TO_ASCII.iter().any(|c| b[i..].starts_with(c.encode_utf8(&mut [0; 4]).as_bytes())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::strategy::Strategy;

    fn lits(p: &str) -> Option<Vec<String>> {
        let hir = regex_syntax::parse(p).ok()?;
        required(&hir, 0).map(|r| r.lits.into_iter().map(|l| String::from_utf8_lossy(&l).into_owned()).collect())
    }

    #[test]
    fn extracts_required_literals() {
        assert_eq!(
            lits(r"(ignore|disregard)\s+(all\s+)*(previous|prior)\s+(instructions?|rules)").unwrap(),
            vec!["disregard", "ignore"]
        );
        // The longest literal wins.
        assert_eq!(lits(r"(ignore|disregard)\s+instructions?").unwrap(), vec!["instruction"]);
        assert_eq!(lits(r"\bcrontab\s+-").unwrap(), vec!["crontab"]);
        assert_eq!(lits(r"a|b+").unwrap(), vec!["a", "b"]);
        assert_eq!(lits(r"x*"), None);
        assert_eq!(lits(r"\d+|foo"), None);
        assert!(Prefilter::new(r"\d+").is_none());
        assert!(Prefilter::new(r"a|cd").is_none(), "too short to be worth it");
        let p = Prefilter::new(r"(ignore|forget)\s+previous").unwrap();
        assert!(!p.may_match("please IGNORE PREVIOUS"));
        assert!(p.may_match("please ignore previous"));
        assert!(!p.may_match("nothing to see"));
        let p = Prefilter::new(r"</?system>|instructions?").unwrap();
        assert!(p.may_match("a <system> tag"));
        assert!(p.may_match("the instruction"));
        assert!(!p.may_match("a system"));
        let long = "x".repeat(200);
        assert!(p.may_match(&format!("{long}<system>{long}")));
        assert!(!p.may_match(&format!("{long}<sys tem>{long}")));
        assert!(p.may_match(&format!("{long}instructions")));
        // Short exact parts combine into longer literals.
        assert_eq!(
            lits(r"</?(system|admin)>|\[/?inst\]").unwrap(),
            vec!["</admin>", "</system>", "<admin>", "<system>", "[/inst]", "[inst]"]
        );
        assert_eq!(lits(r"crontab\s+-[el]").unwrap(), vec!["crontab"]);
        assert_eq!(lits(r"\bdd\s+of=/dev/(sd|nvme)").unwrap(), vec!["of=/dev/nvme", "of=/dev/sd"]);
        // A regex that only matches a few non-ASCII characters skips ASCII text at once, and other
        // non-ASCII text by the first bytes of those characters' encodings.
        let p = Prefilter::new(r"[\x{E0000}-\x{E007F}]{4,}|[\x{200B}-\x{200F}]{4,}").unwrap();
        assert!(!p.may_match("plain ascii text"));
        assert!(!p.may_match("caf\u{e9} \u{2019}quoted\u{2019}"));
        assert!(p.may_match("a\u{200b}b"));
        assert!(p.may_match("tag \u{E0041}"));
        let long = format!("{}\u{e9}", "x".repeat(200));
        assert!(!p.may_match(&long));
        assert!(p.may_match(&format!("{long}\u{200d}")));
        // A large non-ASCII class is only known to need some non-ASCII character.
        let p = Prefilter::new(r"[\x{400}-\x{4FF}]{3,}").unwrap();
        assert!(!p.may_match("plain ascii text"));
        assert!(p.may_match("caf\u{e9}"));
        // Mixed: a literal or non-ASCII.
        let p = Prefilter::new(r"secret|[\x{200B}-\x{200F}]{4,}").unwrap();
        assert!(p.may_match("a secret"));
        assert!(!p.may_match("nothing"));
    }

    /// The lower case of `s` as rules compute it (`lower(x)`: character by character).
    fn lowered(s: &str) -> String {
        s.chars().flat_map(char::to_lowercase).collect()
    }

    #[test]
    fn only_listed_characters_lower_case_to_ascii() {
        let found: Vec<char> =
            (0x80..=0x10FFFF).filter_map(char::from_u32).filter(|c| c.to_lowercase().any(|l| l.is_ascii())).collect();
        assert_eq!(found, LOWERS_TO_ASCII);
        // What they give, which decides the literals they matter to.
        assert_eq!('\u{130}'.to_lowercase().collect::<String>(), "i\u{307}");
        assert_eq!('\u{212A}'.to_lowercase().collect::<String>(), "k");
    }

    #[test]
    fn caseless_prefilter_reads_the_original_text() {
        let pat = r"(ignore|disregard)\s+(previous|prior)\s+(instructions?|prompts?)|</?system>|\[/?inst\]|do\ not\ tell\ the\ user";
        let p = CaselessPrefilter::new(pat).unwrap();
        let pad = "x".repeat(100);
        assert!(p.rejects(&format!("{pad} nothing to see {pad}")));
        assert!(p.rejects(&format!("{pad} an INSTANCE of a PROMPTER, Do Not Tell {pad}")));
        assert!(!p.rejects(&format!("{pad} IGNORE PREVIOUS INSTRUCTIONS {pad}")));
        assert!(!p.rejects(&format!("{pad}<SyStEm>{pad}")));
        assert!(!p.rejects(&format!("{pad}[/INST]{pad}")));
        assert!(!p.rejects(&format!("{pad} Do Not Tell The User {pad}")));
        assert!(!p.rejects("short PROMPT"), "texts below the packed minimum are let through");
        // The Kelvin sign lower-cases to `k`: a text holding it is never rejected for a `k` literal.
        let k = CaselessPrefilter::new("kelvin|kilo").unwrap();
        let text = format!("{pad} \u{212A}ELVIN {pad}");
        assert!(regex::Regex::new("kelvin").unwrap().is_match(&lowered(&text)));
        assert!(!k.rejects(&text));
        assert!(k.rejects(&format!("{pad} celvin {pad}")));
        // The capital I with a dot lower-cases to `i` and a combining dot: it matters to a literal that
        // ends with `i`, not to one with an `i` inside (nor does the Kelvin sign to one without a `k`).
        let i = CaselessPrefilter::new("sushi|wasabi").unwrap();
        assert!(!i.rejects(&format!("{pad} SUSH\u{130} {pad}")));
        assert!(p.rejects(&format!("{pad} \u{130}NSTRUCTION \u{212A} {pad}")));
        // Windows shared by literals: each literal holding the window is checked.
        let w = CaselessPrefilter::new("abcdxyz|abcdqrs").unwrap();
        assert!(!w.rejects(&format!("{pad}ABCDQRS{pad}")));
        assert!(!w.rejects(&format!("{pad}abCDxyZ{pad}")));
        assert!(w.rejects(&format!("{pad}abcdxyq abcdqrq{pad}")));
        assert!(CaselessPrefilter::new(r"[\x{200B}-\x{200F}]{4,}").is_none());
        assert!(CaselessPrefilter::new(r"caf\x{e9}").is_none());
    }

    proptest::proptest! {
        /// The prefilter never rejects a text its regex matches (on texts built from the literals' and
        /// the classes' own pieces, so that matches are common).
        #[test]
        fn never_rejects_a_match(parts in proptest::collection::vec(proptest::prop_oneof![
            proptest::string::string_regex("[a-z <>/\\[\\]|:-]{0,12}").unwrap(),
            proptest::sample::select(vec![
                "ignore previous instructions", "<system>", "[/inst]", "\u{200b}", "\u{200f}", "\u{2060}",
                "\u{feff}", "\u{E0041}", "\u{e9}", "\u{2019}", "AKIA", "ghp_", "-----BEGIN ", "PRIVATE KEY",
                "/dev/tcp/", "10.0.0.1", "sk-", "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
            ])
                .prop_map(String::from),
        ], 0..24)) {
            let text: String = parts.concat();
            for pat in [
                r"[\x{E0000}-\x{E007F}]{4,}|[\x{200B}-\x{200F}\x{2060}-\x{2064}\x{FEFF}]{4,}",
                r"[\x{200B}-\x{200F}]",
                r"(ignore|forget)\s+previous\s+instructions?|</?system>|\[/?inst\]",
                r"-----BEGIN\ (RSA\ )?PRIVATE\ KEY|\b(AKIA|ASIA)[0-9A-Z]{4}|ghp_[a-z]{3}|sk-[a-z-]{4}",
                r"/dev/(tcp|udp)/[^/\s]+/\d+|secret|[\x{e9}-\x{ff}]",
            ] {
                let re = regex::Regex::new(pat).unwrap();
                if let Some(p) = Prefilter::new(pat) {
                    proptest::prop_assert!(!re.is_match(&text) || p.may_match(&text), "{pat} on {text:?}");
                }
            }
        }

        /// The caseless prefilter never rejects a text whose lower case the regex matches (texts built
        /// from the literals in mixed case, characters that lower-case to ASCII, and padding that makes
        /// the packed search run).
        #[test]
        fn caseless_prefilter_never_rejects_a_lowered_match(parts in proptest::collection::vec(proptest::prop_oneof![
            proptest::string::string_regex("[a-zA-Z <>/\\[\\]|:]{0,12}").unwrap(),
            proptest::sample::select(vec![
                "Ignore Previous INSTRUCTIONS", "ignore prior prompt", "<SYSTEM>", "</system>", "[/Inst]", "<|IM_START|>",
                "do not tell the USER", "Do Not", "\u{212A}", "\u{130}", "\u{e9}", "\u{2019}", "\u{C4}", "instruct",
                "PROMP", "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", "kilo", "KELVIN", "inSTRUCTION",
                "\u{212A}ILO", "\u{212A}dot", "\u{130}dot", "ELVIN", "SUSH\u{130}", "wasab\u{130}", "\u{130}nstruction",
            ])
                .prop_map(String::from),
        ], 0..24)) {
            let text: String = parts.concat();
            let lower = lowered(&text);
            for pat in [
                r"(?x)(ignore|disregard|forget)\s+(all\s+|the\s+)*(previous|prior|system)\s+(instructions?|prompts?)
                    | (new|real)\s+instructions?\s*: | </?system> | <\|im_start\|> | \[/?inst\] | do\ not\ tell\ the\ user",
                r"kelvin|kilo|instruction",
                r"idot|kdot",
                r"sushi|wasabi",
                r"instruction|prompt",
                r"abcd(ef|gh)|instr|prompt",
            ] {
                let re = regex::Regex::new(pat).unwrap();
                if let Some(p) = CaselessPrefilter::new(pat) {
                    proptest::prop_assert!(!re.is_match(&lower) || !p.rejects(&text), "{pat} on {text:?}");
                }
            }
        }
    }
}
