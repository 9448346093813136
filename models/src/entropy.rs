//! Payload randomness: does a string carry encoded or encrypted data rather than text?
//!
//! Shannon entropy of a whole string misleads twice over: hex is only 4 bits per byte yet perfectly
//! random, and a short string cannot reach its alphabet's maximum, so short code looks as "random" as a
//! short key. vigil therefore judges randomness where encoded data actually lives — in long unbroken
//! **tokens** of the base64 / base64url / hex alphabet — and asks of each token two questions a text
//! token fails: do its characters switch class (upper, lower, digit, symbol) as often as random data
//! does (random base64 switches on ~64% of steps, hex on ~47%, words far less), are its letters as
//! vowel-poor as random letters (~19% vowels, against ~40% in words and camelCase identifiers), and, for
//! long tokens, is its Shannon entropy close to what a uniformly random string **of the same
//! length over the same alphabet** would show (the Miller–Madow expectation
//! `log2 k - (k - 1) / (2 n ln 2)`)? The bytes in tokens that pass are the payload's *random bytes*;
//! [`blob_scan`] reports them, and [`randomness`] reports whole-string entropy for explanations. Long
//! strings are sampled (head and tail) so the cost per event is bounded.

use std::sync::OnceLock;

/// Strings longer than this are judged on their first and last `SAMPLE_BYTES / 2` bytes.
pub const SAMPLE_BYTES: usize = 8192;

/// The randomness of one string.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Randomness {
    /// Full length in bytes.
    pub len: usize,
    /// Distinct byte values in the sample.
    pub distinct: u32,
    /// Shannon entropy of the sample, bits per byte.
    pub bits_per_byte: f64,
    /// `bits_per_byte` over the expectation for a uniform random string of the same length and alphabet
    /// size: about 1 for random data, lower for text.
    pub ratio: f64,
}

/// `c * log2(c)` for every count a sample can hold.
fn clog2c() -> &'static [f32] {
    static TABLE: OnceLock<Vec<f32>> = OnceLock::new();
    TABLE.get_or_init(|| {
        (0..=SAMPLE_BYTES).map(|c| if c == 0 { 0.0 } else { (c as f64 * (c as f64).log2()) as f32 }).collect()
    })
}

/// Measures the randomness of `bytes`.
pub fn randomness(bytes: &[u8]) -> Randomness {
    let mut counts = [0u32; 256];
    let mut count = |s: &[u8]| {
        for &b in s {
            counts[b as usize] += 1;
        }
    };
    let n = if bytes.len() > SAMPLE_BYTES {
        count(&bytes[..SAMPLE_BYTES / 2]);
        count(&bytes[bytes.len() - SAMPLE_BYTES / 2..]);
        SAMPLE_BYTES
    } else {
        count(bytes);
        bytes.len()
    };
    if n == 0 {
        return Randomness { len: 0, distinct: 0, bits_per_byte: 0.0, ratio: 0.0 };
    }
    let table = clog2c();
    let mut distinct = 0u32;
    let mut sum = 0.0f64;
    for &c in &counts {
        if c > 0 {
            distinct += 1;
            sum += table[c as usize] as f64;
        }
    }
    let nf = n as f64;
    let h = (nf.log2() - sum / nf).max(0.0);
    let k = distinct as f64;
    let expected = k.log2() - (k - 1.0) / (2.0 * nf * std::f64::consts::LN_2);
    let ratio = if distinct <= 1 || expected <= 0.0 { 0.0 } else { (h / expected).min(1.5) };
    Randomness { len: bytes.len(), distinct, bits_per_byte: h, ratio }
}

/// Tokens shorter than this are never counted as random (ids, words, short hashes).
pub const MIN_TOKEN: usize = 20;
/// Tokens at least this long must also pass the entropy test.
const ENTROPY_TEST_LEN: usize = 48;

/// What [`blob_scan`] found in a string.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct BlobStats {
    /// Bytes inside tokens that look like random (encoded) data.
    pub random_bytes: usize,
    /// Length of the longest such token.
    pub longest: usize,
    /// Number of such tokens.
    pub tokens: u32,
}

/// Per-byte facts for the token scan, packed in one table lookup: the character class in the low
/// three bits (0 = not in a token, 1 upper, 2 lower, 3 digit, 4 symbol), then flags.
const CLASS_MASK: u8 = 0b111;
const VOWEL: u8 = 1 << 3;
const NON_HEX: u8 = 1 << 4;
const LETTER: u8 = 1 << 5;
const DIGIT: u8 = 1 << 6;

const fn byte_facts() -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut b = 0usize;
    while b < 256 {
        let c = b as u8;
        let hex = c.is_ascii_hexdigit();
        let lower = c | 0x20;
        let vowel = matches!(lower, b'a' | b'e' | b'i' | b'o' | b'u') && c.is_ascii_alphabetic();
        t[b] = match c {
            b'A'..=b'Z' => 1 | LETTER,
            b'a'..=b'z' => 2 | LETTER,
            b'0'..=b'9' => 3 | DIGIT,
            b'+' | b'/' | b'=' | b'_' | b'-' => 4,
            _ => 0,
        };
        if t[b] != 0 {
            if !hex {
                t[b] |= NON_HEX;
            }
            if vowel {
                t[b] |= VOWEL;
            }
        }
        b += 1;
    }
    t
}

static FACTS: [u8; 256] = byte_facts();

/// A token of the encoded-data alphabet being measured.
#[derive(Default)]
struct Run {
    start: usize,
    len: usize,
    switches: usize,
    non_hex: bool,
    letters: usize,
    vowels: usize,
    digits: usize,
}

fn token_is_random(bytes: &[u8], run: &Run) -> bool {
    if run.len < MIN_TOKEN {
        return false;
    }
    let rate = run.switches as f64 / (run.len - 1) as f64;
    let looks_random = if run.non_hex {
        // Words and identifiers are vowel-rich (~40% of letters); random letters are ~19% vowels.
        rate >= 0.35 && (run.vowels as f64) <= 0.3 * run.letters as f64 && (run.len < 24 || run.digits > 0)
    } else {
        rate >= 0.25 && run.digits > 0 && run.letters > 0
    };
    if !looks_random {
        return false;
    }
    run.len < ENTROPY_TEST_LEN || randomness(&bytes[run.start..run.start + run.len]).ratio >= 0.85
}

fn scan_part(part: &[u8], stats: &mut BlobStats) {
    let n = part.len();
    let in_token = |i: usize| FACTS[part[i] as usize] & CLASS_MASK != 0;
    // Invariant: no token of MIN_TOKEN bytes or more starts before `i` unexamined, and `part[i - 1]`
    // (if any) ends a token. A token that long starting in `[i, i + MIN_TOKEN)` must cover
    // `i + MIN_TOKEN - 1`: when that byte is not a token byte, skip the whole stretch (prose is crossed
    // one lookup per MIN_TOKEN bytes).
    let mut i = 0;
    while i + MIN_TOKEN <= n {
        let probe = i + MIN_TOKEN - 1;
        if !in_token(probe) {
            i = probe + 1;
            continue;
        }
        let mut start = probe;
        while start > i && in_token(start - 1) {
            start -= 1;
        }
        // Most tokens that cover the probe are words: find the end with class lookups alone, and
        // measure only a token long enough to count.
        let mut end = probe + 1;
        while end < n && in_token(end) {
            end += 1;
        }
        if end - start >= MIN_TOKEN {
            end = measure(part, start, stats);
        }
        i = end + 1;
    }
}

/// Measures the token starting at `start`, records it if random, and returns its end (exclusive).
fn measure(part: &[u8], start: usize, stats: &mut BlobStats) -> usize {
    let mut run = Run { start, ..Run::default() };
    let mut prev = 0u8;
    let mut i = start;
    while i < part.len() {
        let f = FACTS[part[i] as usize];
        let c = f & CLASS_MASK;
        if c == 0 {
            break;
        }
        run.switches += (run.len > 0 && c != prev) as usize;
        run.non_hex |= f & NON_HEX != 0;
        run.len += 1;
        run.letters += (f & LETTER != 0) as usize;
        run.vowels += (f & VOWEL != 0) as usize;
        run.digits += (f & DIGIT != 0) as usize;
        prev = c;
        i += 1;
    }
    if token_is_random(part, &run) {
        stats.random_bytes += run.len;
        stats.longest = stats.longest.max(run.len);
        stats.tokens += 1;
    }
    i
}

/// Finds the tokens of `bytes` that look like encoded data (see the module docs).
pub fn blob_scan(bytes: &[u8]) -> BlobStats {
    let mut stats = BlobStats::default();
    if bytes.len() > SAMPLE_BYTES {
        scan_part(&bytes[..SAMPLE_BYTES / 2], &mut stats);
        scan_part(&bytes[bytes.len() - SAMPLE_BYTES / 2..], &mut stats);
        // Scale the sample's finding to the whole string.
        stats.random_bytes = stats.random_bytes * bytes.len() / SAMPLE_BYTES;
    } else {
        scan_part(bytes, &mut stats);
    }
    stats
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A deterministic pseudo-random byte stream (xorshift), for test data.
    fn noise(n: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect()
    }

    fn encode(bytes: &[u8], alphabet: &[u8]) -> Vec<u8> {
        bytes.iter().map(|b| alphabet[*b as usize % alphabet.len()]).collect()
    }

    const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const HEX: &[u8] = b"0123456789abcdef";

    const PROSE: &[u8] = b"The quarterly report shows that customer satisfaction improved across all regions, \
            although the support queue grew longer during the holiday season. We recommend hiring two more \
            agents and reviewing the escalation policy before the next release.";
    const CODE: &[u8] =
        br#"fn main() { let xs: Vec<u32> = (0..10).collect(); for x in &xs { println!("{}", x * 2); } }"#;

    #[test]
    fn blob_scan_finds_encoded_data_and_not_text() {
        for text in [
            PROSE,
            CODE,
            br#"{"customer":"C-1182","query":"reset_password_for_account","getUserAccountById":12345678901234567890}"#,
        ] {
            assert_eq!(blob_scan(text).random_bytes, 0, "{}", String::from_utf8_lossy(text));
        }
        for (alphabet, n) in [(B64, 400), (HEX, 64), (B64, 20)] {
            let blob = encode(&noise(n, 11), alphabet);
            let mut s = b"{\"data\":\"".to_vec();
            s.extend_from_slice(&blob);
            s.extend_from_slice(b"\"}");
            let st = blob_scan(&s);
            assert_eq!(st.random_bytes, n, "{}", String::from_utf8_lossy(&s));
            assert_eq!(st.tokens, 1);
        }
        let big = encode(&noise(100_000, 5), B64);
        let st = blob_scan(&big);
        assert!(st.random_bytes > 90_000, "{st:?}");
    }

    #[test]
    fn whole_string_entropy_separates_long_text_from_random_data() {
        let r = randomness(PROSE);
        assert!(r.ratio < 0.9, "{r:?}");
        for (name, alphabet) in [("base64", B64), ("hex", HEX)] {
            for n in [64, 200, 4000] {
                let r = randomness(&encode(&noise(n, 7), alphabet));
                assert!(r.ratio > 0.93, "{name} n={n}: {r:?}");
            }
        }
        assert!((randomness(&noise(5000, 3)).bits_per_byte - 8.0).abs() < 0.1);
    }

    #[test]
    fn degenerate_strings() {
        assert_eq!(randomness(b"").ratio, 0.0);
        assert_eq!(randomness(&[b'a'; 100]).ratio, 0.0);
        assert_eq!(randomness(&[b'a'; 100]).bits_per_byte, 0.0);
    }

    #[test]
    fn long_strings_are_sampled_with_bounded_cost() {
        let big = encode(&noise(1 << 20, 5), B64);
        let r = randomness(&big);
        assert_eq!(r.len, 1 << 20);
        assert!(r.ratio > 0.95);
    }

    proptest! {
        #[test]
        fn skipping_finds_the_same_tokens_as_a_plain_scan(text in "[a-zA-Z0-9+/ ,.\\-]{0,300}") {
            let bytes = text.as_bytes();
            let mut naive = BlobStats::default();
            let mut start = 0;
            for (i, &b) in bytes.iter().chain(std::iter::once(&b' ')).enumerate() {
                if FACTS[b as usize] & CLASS_MASK == 0 {
                    if i > start {
                        measure(bytes, start, &mut naive);
                    }
                    start = i + 1;
                }
            }
            prop_assert_eq!(blob_scan(bytes), naive);
        }

        #[test]
        fn blob_scan_is_bounded_by_the_input(bytes in proptest::collection::vec(any::<u8>(), 0..3000)) {
            let st = blob_scan(&bytes);
            prop_assert!(st.random_bytes <= bytes.len());
            prop_assert!(st.longest <= st.random_bytes);
        }

        #[test]
        fn entropy_is_within_bounds(bytes in proptest::collection::vec(any::<u8>(), 0..3000)) {
            let r = randomness(&bytes);
            prop_assert!(r.bits_per_byte >= 0.0 && r.bits_per_byte <= 8.0 + 1e-9);
            prop_assert!(r.bits_per_byte <= (r.distinct.max(1) as f64).log2() + 1e-9);
            prop_assert!((0.0..=1.5).contains(&r.ratio));
        }
    }
}
