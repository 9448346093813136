//! Event time as the simulator writes and reads it: epoch milliseconds inside, RFC 3339 UTC with
//! milliseconds (`2026-01-01T00:00:00.123Z`) or integer epoch milliseconds outside. No clock is ever read.

use crate::SimError;

/// Milliseconds in a day.
pub(crate) const MS_PER_DAY: i64 = 86_400_000;
/// Milliseconds in an hour.
pub(crate) const MS_PER_HOUR: i64 = 3_600_000;
/// `0000-01-01T00:00:00Z`: the earliest instant the four-digit year format can hold.
pub(crate) const MIN_MS: i64 = -62_167_219_200_000;
/// `9999-12-31T23:59:59.999Z`: the latest instant the four-digit year format can hold.
pub(crate) const MAX_MS: i64 = 253_402_300_799_999;

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day) (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// (year, month, day) to days since 1970-01-01.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

/// Appends `ms` as `YYYY-MM-DDTHH:MM:SS.mmmZ` (no quotes).
pub(crate) fn push_rfc3339(out: &mut String, ms: i64) {
    let days = ms.div_euclid(MS_PER_DAY);
    let rem = ms.rem_euclid(MS_PER_DAY);
    let (y, mo, d) = civil_from_days(days);
    if !(0..=9999).contains(&y) {
        // Outside what validation lets through; still well-formed, just wider.
        use std::fmt::Write;
        let _ = write!(
            out,
            "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
            rem / MS_PER_HOUR,
            rem / 60_000 % 60,
            rem / 1000 % 60,
            rem % 1000
        );
        return;
    }
    let mut b = *b"0000-00-00T00:00:00.000Z";
    let mut put = |pos: usize, width: usize, mut v: i64| {
        for i in (0..width).rev() {
            b[pos + i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(0, 4, y);
    put(5, 2, i64::from(mo));
    put(8, 2, i64::from(d));
    put(11, 2, rem / MS_PER_HOUR);
    put(14, 2, rem / 60_000 % 60);
    put(17, 2, rem / 1000 % 60);
    put(20, 3, rem % 1000);
    out.push_str(std::str::from_utf8(&b).expect("the timestamp template holds ASCII digits only"));
}

/// Formats `ms` as an RFC 3339 UTC string with milliseconds.
pub fn format_rfc3339(ms: i64) -> String {
    let mut s = String::with_capacity(24);
    push_rfc3339(&mut s, ms);
    s
}

/// Parses a run start: an integer of epoch milliseconds, an RFC 3339 timestamp
/// (`2026-01-01T00:00:00Z`, `2026-01-01T09:30:00.250+02:00`) or a bare date (`2026-01-01`, midnight UTC).
/// Digits of the fraction past milliseconds are dropped.
pub fn parse_timestamp(input: &str) -> Result<i64, SimError> {
    let s = input.trim();
    let bad = |reason: &'static str| SimError::BadTimestamp { input: input.to_string(), reason };
    if s.is_empty() {
        return Err(bad("it is empty"));
    }
    if s.bytes().all(|b| b.is_ascii_digit())
        || (s.starts_with('-') && s.len() > 1 && s[1..].bytes().all(|b| b.is_ascii_digit()))
    {
        let ms: i64 = s.parse().map_err(|_| bad("the epoch milliseconds do not fit in 64 bits"))?;
        if !(MIN_MS..=MAX_MS).contains(&ms) {
            return Err(bad("it is outside years 0000..=9999"));
        }
        return Ok(ms);
    }
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Option<i64> {
        let part = b.get(from..from + len)?;
        if !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        Some(part.iter().fold(0i64, |acc, &c| acc * 10 + i64::from(c - b'0')))
    };
    let shape = "expected RFC 3339 like 2026-01-01T00:00:00Z, a date like 2026-01-01, or epoch milliseconds";
    let (Some(y), Some(mo), Some(d)) = (num(0, 4), num(5, 2), num(8, 2)) else {
        return Err(bad(shape));
    };
    if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return Err(bad(shape));
    }
    let (mo, d) = (mo as u32, d as u32);
    if !(1..=12).contains(&mo) {
        return Err(bad("the month is not 01..12"));
    }
    if d < 1 || d > days_in_month(y, mo) {
        return Err(bad("the day does not exist in that month"));
    }
    let mut ms = days_from_civil(y, mo, d) * MS_PER_DAY;
    if b.len() == 10 {
        return Ok(ms);
    }
    if !matches!(b.get(10), Some(b'T' | b't' | b' ')) {
        return Err(bad(shape));
    }
    let (Some(h), Some(mi), Some(sec)) = (num(11, 2), num(14, 2), num(17, 2)) else {
        return Err(bad(shape));
    };
    if b.get(13) != Some(&b':') || b.get(16) != Some(&b':') {
        return Err(bad(shape));
    }
    if h > 23 || mi > 59 || sec > 60 {
        return Err(bad("the time of day is out of range"));
    }
    ms += h * MS_PER_HOUR + mi * 60_000 + sec.min(59) * 1000;
    let mut i = 19;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let digits = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return Err(bad("the fraction of a second has no digits"));
        }
        let mut frac = 0i64;
        for k in 0..3 {
            frac = frac * 10 + if k < digits { i64::from(b[i + k] - b'0') } else { 0 };
        }
        ms += frac;
        i += digits;
    }
    match b.get(i) {
        Some(b'Z' | b'z') if i + 1 == b.len() => {}
        Some(sign @ (b'+' | b'-')) if i + 6 == b.len() && b[i + 3] == b':' => {
            let (Some(oh), Some(om)) = (num(i + 1, 2), num(i + 4, 2)) else {
                return Err(bad("the UTC offset is not +HH:MM"));
            };
            if oh > 23 || om > 59 {
                return Err(bad("the UTC offset is out of range"));
            }
            let off = oh * MS_PER_HOUR + om * 60_000;
            ms += if *sign == b'+' { -off } else { off };
        }
        _ => return Err(bad("it needs a UTC offset: Z or +HH:MM")),
    }
    if !(MIN_MS..=MAX_MS).contains(&ms) {
        return Err(bad("it is outside years 0000..=9999"));
    }
    Ok(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(format_rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_rfc3339(crate::DEFAULT_START_MS), "2026-01-01T00:00:00.000Z");
        assert_eq!(format_rfc3339(1_795_756_802_500), "2026-11-27T05:20:02.500Z");
        assert_eq!(format_rfc3339(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(format_rfc3339(-1), "1969-12-31T23:59:59.999Z");
        assert_eq!(format_rfc3339(MAX_MS), "9999-12-31T23:59:59.999Z");
        assert_eq!(format_rfc3339(MIN_MS), "0000-01-01T00:00:00.000Z");
    }

    #[test]
    fn parses_what_it_formats_and_more() {
        for ms in [0, 1, -1, 1_767_225_600_000, 1_795_756_802_500, 951_782_400_123, MIN_MS, MAX_MS] {
            assert_eq!(parse_timestamp(&format_rfc3339(ms)).unwrap(), ms);
        }
        assert_eq!(parse_timestamp("2026-01-01T00:00:00Z").unwrap(), crate::DEFAULT_START_MS);
        assert_eq!(parse_timestamp("2026-01-01").unwrap(), crate::DEFAULT_START_MS);
        assert_eq!(parse_timestamp("1767225600000").unwrap(), crate::DEFAULT_START_MS);
        assert_eq!(parse_timestamp("2026-01-01T02:00:00+02:00").unwrap(), crate::DEFAULT_START_MS);
        assert_eq!(parse_timestamp("2025-12-31T19:00:00.000-05:00").unwrap(), crate::DEFAULT_START_MS);
        assert_eq!(parse_timestamp("2026-01-01T00:00:00.1234567Z").unwrap(), crate::DEFAULT_START_MS + 123);
    }

    #[test]
    fn rejects_malformed_timestamps() {
        for bad in [
            "",
            "yesterday",
            "2026-13-01",
            "2026-02-30",
            "2026-01-01T25:00:00Z",
            "2026-01-01T00:00:00",
            "2026-01-01T00:00:00.Z",
            "2026-01-01T00:00:00+0200",
            "99999999999999999999",
        ] {
            let err = parse_timestamp(bad).unwrap_err();
            assert!(matches!(err, SimError::BadTimestamp { .. }), "{bad}: {err}");
        }
    }
}
