//! When to try again: answer classification, exponential back-off with jitter, `Retry-After`.

use std::time::{Duration, SystemTime};

/// Back-off between attempts of one delivery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Upper bound of the first retry's delay (the delay is drawn between half of it and all of it).
    /// Default 1 s (`spec/alerts.md`: first retry within 1 s).
    pub initial_backoff: Duration,
    /// Cap on any back-off interval. Default 30 s. A `Retry-After` answer may ask for longer; it is honoured
    /// (up to the retry horizon).
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { initial_backoff: Duration::from_secs(1), max_backoff: Duration::from_secs(30) }
    }
}

impl RetryPolicy {
    /// Delay before retry number `retry` (1 = the first retry): the exponential step
    /// `min(max_backoff, initial_backoff * 2^(retry-1))`, jittered by `unit` in `[0, 1)` into its upper half
    /// ("equal jitter": spread out, yet never much shorter than the step).
    pub fn backoff(&self, retry: u32, unit: f64) -> Duration {
        let exp = retry.saturating_sub(1).min(30);
        let step = self.initial_backoff.saturating_mul(1u32 << exp).min(self.max_backoff);
        let unit = if unit.is_finite() { unit.clamp(0.0, 1.0) } else { 0.5 };
        step.mul_f64(0.5 + 0.5 * unit).min(self.max_backoff)
    }
}

/// What an HTTP status means for a delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// 2xx: delivered.
    Delivered,
    /// 408, 429, 5xx: try again (honouring `Retry-After`).
    Retry,
    /// Any other status (other 4xx, and 1xx/3xx: redirects are not followed, a kill switch must not be
    /// steered elsewhere): dead-letter at once.
    Reject,
}

/// Classifies a status code (`spec/alerts.md`: a 4xx other than 408/429 is not retried).
pub fn classify(status: u16) -> Verdict {
    match status {
        200..=299 => Verdict::Delivered,
        408 | 429 | 500..=599 => Verdict::Retry,
        _ => Verdict::Reject,
    }
}

/// Parses a `Retry-After` value: delay-seconds or an HTTP-date (a date in the past means "now"). `None` for
/// anything else.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let v = value.trim();
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        return Some(Duration::from_secs(v.parse::<u64>().unwrap_or(u64::MAX).min(u32::MAX as u64)));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// A number in `[0, 1)` from a seed (SplitMix64): jitter without a random-number-generator dependency.
pub(crate) fn unit_from(seed: u64) -> f64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn statuses_are_classified_per_spec() {
        for s in [200, 201, 202, 204, 299] {
            assert_eq!(classify(s), Verdict::Delivered, "{s}");
        }
        for s in [408, 429, 500, 502, 503, 504, 599] {
            assert_eq!(classify(s), Verdict::Retry, "{s}");
        }
        for s in [100, 301, 302, 307, 400, 401, 403, 404, 409, 410, 413, 422] {
            assert_eq!(classify(s), Verdict::Reject, "{s}");
        }
    }

    #[test]
    fn retry_after_takes_seconds_and_http_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480); // Wed, 21 Oct 2015 07:28:00 GMT
        assert_eq!(parse_retry_after("120", now), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now), Some(Duration::from_secs(30)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-5", now), None);
        assert_eq!(parse_retry_after("1.5", now), None);
        assert_eq!(parse_retry_after("", now), None);
        assert!(parse_retry_after("99999999999999999999999", now).is_some());
    }

    #[test]
    fn default_back_off_matches_the_spec() {
        let p = RetryPolicy::default();
        for u in [0.0, 0.3, 0.999] {
            assert!(p.backoff(1, u) <= Duration::from_secs(1), "first retry within 1 s");
            assert!(p.backoff(1, u) >= Duration::from_millis(500));
        }
        assert_eq!(p.backoff(100, 0.999_999).as_secs(), 29);
        assert!(p.backoff(6, 0.0) >= Duration::from_secs(15));
    }

    proptest! {
        /// Every interval is capped, at least half the exponential step, and jitter stays in [0, 1).
        #[test]
        fn back_off_is_bounded(retry in 0u32..200, unit in 0.0f64..1.0, seed in any::<u64>()) {
            let p = RetryPolicy::default();
            let d = p.backoff(retry, unit);
            prop_assert!(d <= p.max_backoff);
            let step = p.initial_backoff.saturating_mul(1u32 << retry.saturating_sub(1).min(30)).min(p.max_backoff);
            prop_assert!(d >= step / 2);
            let u = unit_from(seed);
            prop_assert!((0.0..1.0).contains(&u));
        }
    }
}
