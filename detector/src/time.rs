//! Event time: parsing RFC 3339 timestamps into epoch milliseconds and formatting them back.
//!
//! Hand-written rather than pulled from a date crate because it sits on the hot path of every event and
//! needs exactly two things: RFC 3339 (any offset, any number of fraction digits, truncated to the
//! millisecond) in, and `YYYY-MM-DDTHH:MM:SS.mmmZ` out, so that formatted times sort like the times.

use std::fmt::Write as _;

/// Smallest accepted event time: 1970-01-01T00:00:00Z.
pub const MIN_TS_MS: i64 = 0;
/// Largest accepted event time: 9999-12-31T23:59:59.999Z.
pub const MAX_TS_MS: i64 = 253_402_300_799_999;

/// Days since 1970-01-01 of a proleptic Gregorian civil date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day number since 1970-01-01 (inverse of [`days_from_civil`]).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if is_leap(y) => 29,
        _ => 28,
    }
}

#[inline]
fn digits(b: &[u8]) -> Option<u32> {
    let mut v = 0u32;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + (c - b'0') as u32;
    }
    Some(v)
}

/// Parses an RFC 3339 timestamp (`2026-11-27T05:00:00.123Z`, `...+02:00`, any fraction length; `t`, `z`
/// and a space separator are accepted as RFC 3339 allows) into epoch milliseconds, truncating below the
/// millisecond. Leap second `:60` is read as `:59.999`. Returns `None` for anything else.
pub fn parse_rfc3339_ms(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    if !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let year = digits(&b[0..4])? as i64;
    let month = digits(&b[5..7])?;
    let day = digits(&b[8..10])?;
    let hour = digits(&b[11..13])?;
    let minute = digits(&b[14..16])?;
    let mut second = digits(&b[17..19])?;
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut i = 19;
    let mut millis = 0u32;
    if b[i] == b'.' {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            if i - start < 3 {
                millis = millis * 10 + (b[i] - b'0') as u32;
            }
            i += 1;
        }
        let n = i - start;
        if n == 0 {
            return None;
        }
        for _ in n..3 {
            millis *= 10;
        }
    }
    if second == 60 {
        second = 59;
        millis = 999;
    }
    let offset_min: i64 = match b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        &sign @ (b'+' | b'-') if i + 6 == b.len() && b[i + 3] == b':' => {
            let oh = digits(&b[i + 1..i + 3])? as i64;
            let om = digits(&b[i + 4..i + 6])? as i64;
            if oh > 23 || om > 59 {
                return None;
            }
            let off = oh * 60 + om;
            if sign == b'+' {
                off
            } else {
                -off
            }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour as i64 * 3600 + minute as i64 * 60 + second as i64 - offset_min * 60;
    let ms = secs * 1000 + millis as i64;
    (MIN_TS_MS..=MAX_TS_MS).contains(&ms).then_some(ms)
}

/// Appends `ms` as `YYYY-MM-DDTHH:MM:SS.mmmZ` (UTC, exactly three fraction digits).
pub fn write_rfc3339_ms(out: &mut String, ms: i64) {
    let days = ms.div_euclid(86_400_000);
    let rem = ms.rem_euclid(86_400_000);
    let (y, m, d) = civil_from_days(days);
    let (h, rem) = (rem / 3_600_000, rem % 3_600_000);
    let (mi, rem) = (rem / 60_000, rem % 60_000);
    let (s, milli) = (rem / 1000, rem % 1000);
    // Writing into a String cannot fail.
    let _ = write!(out, "{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{milli:03}Z");
}

/// `ms` formatted by [`write_rfc3339_ms`].
pub fn format_rfc3339_ms(ms: i64) -> String {
    let mut s = String::with_capacity(24);
    write_rfc3339_ms(&mut s, ms);
    s
}

/// Parses a timestamp in either event form: RFC 3339 text or integer epoch milliseconds written as text
/// (as used on command lines and in label files).
pub fn parse_ts_text(s: &str) -> Option<i64> {
    let s = s.trim();
    if !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit()) {
        return s.parse::<i64>().ok().filter(|v| (MIN_TS_MS..=MAX_TS_MS).contains(v));
    }
    parse_rfc3339_ms(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_the_spec_examples() {
        assert_eq!(parse_rfc3339_ms("2026-11-27T05:00:00.123Z"), Some(1_795_755_600_123));
        assert_eq!(parse_rfc3339_ms("2026-11-27T05:00:03Z"), Some(1_795_755_603_000));
        assert_eq!(parse_rfc3339_ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339_ms("2026-11-27T07:00:00.5+02:00"), Some(1_795_755_600_500));
        assert_eq!(parse_rfc3339_ms("2026-11-27t05:00:00.123456789z"), Some(1_795_755_600_123));
        assert_eq!(parse_rfc3339_ms("2026-11-27 05:00:00Z"), Some(1_795_755_600_000));
    }

    #[test]
    fn rejects_malformed_times() {
        for bad in [
            "",
            "2026-11-27",
            "2026-11-27T05:00:00",
            "2026-13-01T00:00:00Z",
            "2026-02-29T00:00:00Z",
            "2026-11-27T24:00:00Z",
            "2026-11-27T05:00:00.Z",
            "2026-11-27T05:00:00+0200",
            "2026-11-27T05:00:00Zjunk",
            "1969-12-31T23:59:59Z",
            "２026-11-27T05:00:00Z",
        ] {
            assert_eq!(parse_rfc3339_ms(bad), None, "{bad}");
        }
        assert_eq!(parse_rfc3339_ms("2024-02-29T00:00:00Z"), Some(1_709_164_800_000));
    }

    #[test]
    fn formats_utc_with_three_digits() {
        assert_eq!(format_rfc3339_ms(1_795_755_602_310), "2026-11-27T05:00:02.310Z");
        assert_eq!(format_rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn text_form_accepts_epoch_millis() {
        assert_eq!(parse_ts_text("1795756802500"), Some(1_795_756_802_500));
        assert_eq!(parse_ts_text(" 2026-11-27T05:00:03Z "), Some(1_795_755_603_000));
        assert_eq!(parse_ts_text("-5"), None);
    }

    proptest! {
        #[test]
        fn format_then_parse_round_trips(ms in MIN_TS_MS..=MAX_TS_MS) {
            prop_assert_eq!(parse_rfc3339_ms(&format_rfc3339_ms(ms)), Some(ms));
        }

        #[test]
        fn formatted_times_sort_like_times(a in MIN_TS_MS..=MAX_TS_MS, b in MIN_TS_MS..=MAX_TS_MS) {
            prop_assert_eq!(format_rfc3339_ms(a).cmp(&format_rfc3339_ms(b)), a.cmp(&b));
        }

        #[test]
        fn parser_never_panics(s in "\\PC{0,40}") {
            let _ = parse_rfc3339_ms(&s);
        }
    }
}
