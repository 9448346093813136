//! From a model's raw anomaly score (a negative log-likelihood) to a p-value, calibrated on held-out
//! normal data.
//!
//! Inside the range of the held-out scores the p-value is their empirical tail (interpolated between
//! stored quantiles, never below `1 / (n + 1)`). Beyond the `1 - tail_fraction` quantile `u` it is the
//! peaks-over-threshold extension of [`crate::calibrate`]: excesses over `u` are exponential with the
//! mean excess as scale (floored, so a handful of tightly packed held-out scores cannot make the tail
//! overconfident), `p = tail_fraction · exp(-(s - u) / scale)`. So a window far beyond anything normal
//! earns a p-value much smaller than `1 / n`, as fusion needs, without trusting the Gaussian form of the
//! model in its tails.

use serde::{Deserialize, Serialize};

/// Stored quantiles of the held-out scores.
const QUANTILES: usize = 101;
/// Share of held-out scores above the extrapolation threshold.
const TAIL_FRACTION: f64 = 0.05;
/// Fewest held-out scores above the threshold that the tail is fitted on.
const MIN_TAIL: usize = 10;
/// Smallest scale of the exponential tail, in nats of negative log-likelihood.
const MIN_SCALE: f64 = 1.0;

/// The calibration of one model: its held-out score distribution and tail.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Calibration {
    /// Held-out vectors the calibration rests on.
    pub holdout: u64,
    /// Held-out scores at probabilities `0, 1/(m-1), ..., 1` (ascending).
    pub quantiles: Vec<f64>,
    /// Start of the exponential tail: the `1 - tail_fraction` quantile.
    pub tail_threshold: f64,
    /// Share of held-out scores above `tail_threshold`.
    pub tail_fraction: f64,
    /// Scale of the exponential tail (mean excess over the threshold, floored), nats.
    pub tail_scale: f64,
    /// The score above which a normal vector is flagged at a given false-alarm rate:
    /// `(false-alarm rate, score)` for 1e-2, 1e-3, 1e-4, 1e-6.
    pub thresholds: Vec<(f64, f64)>,
}

/// Why a set of held-out scores cannot calibrate a model.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum CalibrationError {
    #[error("{0} held-out vectors are too few to calibrate on (at least {MIN_TAIL} x 4 are needed)")]
    TooFew(usize),
    #[error("held-out scores are not finite")]
    NotFinite,
}

impl Calibration {
    /// Calibrates on the held-out scores (any order).
    pub fn fit(scores: &[f64]) -> Result<Calibration, CalibrationError> {
        let n = scores.len();
        if n < MIN_TAIL * 4 {
            return Err(CalibrationError::TooFew(n));
        }
        if scores.iter().any(|s| !s.is_finite()) {
            return Err(CalibrationError::NotFinite);
        }
        let mut s = scores.to_vec();
        s.sort_by(f64::total_cmp);
        let quantiles: Vec<f64> = (0..QUANTILES)
            .map(|i| {
                let pos = i as f64 / (QUANTILES - 1) as f64 * (n - 1) as f64;
                let (lo, frac) = (pos.floor() as usize, pos.fract());
                let hi = (lo + 1).min(n - 1);
                s[lo] + (s[hi] - s[lo]) * frac
            })
            .collect();
        let n_tail = ((n as f64 * TAIL_FRACTION).round() as usize).max(MIN_TAIL).min(n - 1);
        let u = s[n - 1 - n_tail];
        let mean_excess = s[n - n_tail..].iter().map(|x| x - u).sum::<f64>() / n_tail as f64;
        let mut c = Calibration {
            holdout: n as u64,
            quantiles,
            tail_threshold: u,
            tail_fraction: n_tail as f64 / n as f64,
            tail_scale: mean_excess.max(MIN_SCALE),
            thresholds: Vec::new(),
        };
        c.thresholds = [1e-2, 1e-3, 1e-4, 1e-6].iter().map(|&far| (far, c.score_at(far))).collect();
        Ok(c)
    }

    /// Checks a calibration read from a file: what scoring relies on must hold.
    pub fn validate(&self) -> Result<(), String> {
        let q = &self.quantiles;
        if q.len() < 2 || q.iter().any(|x| !x.is_finite()) || q.windows(2).any(|w| w[0] > w[1]) {
            return Err("calibration quantiles must be at least two finite, ascending numbers".into());
        }
        if !(self.tail_fraction > 0.0 && self.tail_fraction < 1.0) {
            return Err("calibration tail_fraction must be in (0, 1)".into());
        }
        if !(self.tail_scale.is_finite() && self.tail_scale > 0.0 && self.tail_threshold.is_finite()) {
            return Err("calibration tail must have a finite threshold and a positive scale".into());
        }
        if self.holdout == 0 {
            return Err("calibration rests on no held-out vectors".into());
        }
        Ok(())
    }

    /// `P(S >= s)` for a normal vector's score `s`.
    pub fn p_value(&self, s: f64) -> f64 {
        if s.is_nan() {
            return 1.0;
        }
        if s >= self.tail_threshold {
            return crate::clamp_p(self.tail_fraction * (-(s - self.tail_threshold) / self.tail_scale).exp());
        }
        let q = &self.quantiles;
        let m = q.len();
        // The empirical tail: the share of held-out scores at or above s, interpolated on the quantiles.
        let i = q.partition_point(|&x| x < s);
        let cdf = if i == 0 {
            0.0
        } else if i >= m {
            1.0
        } else {
            let (lo, hi) = (q[i - 1], q[i]);
            let frac = if hi > lo { (s - lo) / (hi - lo) } else { 1.0 };
            (i as f64 - 1.0 + frac) / (m - 1) as f64
        };
        let floor = 1.0 / (self.holdout as f64 + 1.0);
        (1.0 - cdf).clamp(floor.max(self.tail_fraction), 1.0)
    }

    /// The score whose p-value is `p` (the threshold for false-alarm rate `p`).
    pub fn score_at(&self, p: f64) -> f64 {
        if p <= self.tail_fraction {
            self.tail_threshold + self.tail_scale * (self.tail_fraction / p.max(f64::MIN_POSITIVE)).ln()
        } else {
            let m = self.quantiles.len();
            let pos = ((1.0 - p) * (m - 1) as f64).clamp(0.0, (m - 1) as f64);
            let lo = pos.floor() as usize;
            let hi = (lo + 1).min(m - 1);
            self.quantiles[lo] + (self.quantiles[hi] - self.quantiles[lo]) * pos.fract()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scores(n: usize) -> Vec<f64> {
        // A deterministic exponential-like sample: -ln of evenly spaced uniforms.
        (1..=n).map(|i| -((i as f64 - 0.5) / n as f64).ln()).collect()
    }

    #[test]
    fn p_values_are_monotone_and_match_the_sample() {
        let c = Calibration::fit(&scores(2000)).unwrap();
        c.validate().unwrap();
        let mut last = 1.0;
        for i in 0..400 {
            let s = i as f64 * 0.05;
            let p = c.p_value(s);
            assert!(p <= last + 1e-12, "not monotone at {s}");
            assert!((0.0..=1.0).contains(&p));
            last = p;
        }
        // Exp(1): P(S >= 1) = e^-1.
        assert!((c.p_value(1.0) - (-1.0f64).exp()).abs() < 0.02);
        // Far beyond the sample the tail keeps going down.
        assert!(c.p_value(30.0) < 1e-10);
    }

    #[test]
    fn thresholds_invert_p_values() {
        let c = Calibration::fit(&scores(1000)).unwrap();
        for &(far, s) in &c.thresholds {
            assert!((c.p_value(s) / far - 1.0).abs() < 1e-6, "far {far}: p {}", c.p_value(s));
        }
    }

    #[test]
    fn too_few_or_broken_scores_are_refused() {
        assert_eq!(Calibration::fit(&[1.0; 5]), Err(CalibrationError::TooFew(5)));
        let mut s = scores(100);
        s[3] = f64::NAN;
        assert_eq!(Calibration::fit(&s), Err(CalibrationError::NotFinite));
    }
}
