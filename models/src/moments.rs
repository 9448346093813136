//! Robust exponentially weighted moments of a numeric signal, with heavy-tailed p-values.
//!
//! Used for token counts, byte counts, latencies and reported metrics — on a log scale by the caller,
//! since these are multiplicative quantities. Updates are Huber-clipped (a single extreme value moves the
//! mean by at most `CLIP_SD` standard deviations times the learning rate) and the learning rate is
//! floored at `1 / max_n`, so the baseline forgets slowly and cannot be walked quickly. The upper-tail
//! p-value uses a Laplace law (exponential tails): real telemetry is heavier-tailed than a Gaussian,
//! which would turn every burst into an alarm, yet a jump of many spreads must still read as rare.

use serde::{Deserialize, Serialize};
/// Residuals beyond this many standard deviations are clipped before they update the moments.
pub const CLIP_SD: f64 = 3.0;

/// Exponentially weighted mean and variance, 12 bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RobustMoments {
    mean: f32,
    var: f32,
    n: f32,
}

impl RobustMoments {
    /// Learns `x` with `weight` in `[0, 1]`, Huber-clipped; the effective sample size saturates at
    /// `max_n`. The clipping scale is floored (`0.1 · |mean| + 0.1`), so a run of identical values
    /// cannot freeze the baseline.
    pub fn observe(&mut self, x: f64, weight: f64, max_n: f32) {
        self.update(x, weight, max_n, true)
    }

    /// Learns `x` without clipping: for statistics that are already robust (window counts).
    pub fn observe_plain(&mut self, x: f64, weight: f64, max_n: f32) {
        self.update(x, weight, max_n, false)
    }

    fn update(&mut self, x: f64, weight: f64, max_n: f32, clip: bool) {
        if !x.is_finite() || weight <= 0.0 {
            return;
        }
        let n = (self.n + weight as f32).min(max_n.max(1.0));
        let alpha = (weight / n as f64).min(1.0);
        let mean = self.mean as f64;
        let var = self.var as f64;
        let mut r = x - mean;
        if clip && self.n >= 5.0 {
            let lim = CLIP_SD * var.sqrt().max(0.1 * mean.abs() + 0.1);
            r = r.clamp(-lim, lim);
        }
        let new_mean = mean + alpha * r;
        let new_var = (1.0 - alpha) * (var + alpha * r * r);
        self.mean = new_mean as f32;
        self.var = new_var as f32;
        self.n = n;
    }

    /// Effective number of observations.
    #[inline]
    pub fn count(&self) -> f32 {
        self.n
    }

    #[inline]
    pub fn mean(&self) -> f64 {
        self.mean as f64
    }

    #[inline]
    pub fn sd(&self) -> f64 {
        (self.var as f64).max(0.0).sqrt()
    }

    #[inline]
    pub fn var(&self) -> f64 {
        (self.var as f64).max(0.0)
    }
}

/// Tables of moments (per tool, per metric name) prune by effective count.
impl crate::table::Weighted for RobustMoments {
    fn weight(&self) -> f32 {
        self.n
    }
    fn halve(&mut self) {
        self.n *= 0.5;
    }
}

impl RobustMoments {
    /// Standardised residual of `x`, the spread floored at `min_sd`.
    #[inline]
    pub fn z(&self, x: f64, min_sd: f64) -> f64 {
        (x - self.mean as f64) / self.sd().max(min_sd)
    }

    /// One-sided p-value of a value at least as high as `x`. Values within one spread of the mean read
    /// as 1 (no evidence) without computing a tail.
    pub fn upper_p(&self, x: f64, min_sd: f64) -> f64 {
        let z = self.z(x, min_sd);
        if z <= 1.0 {
            1.0
        } else {
            laplace_sf(z)
        }
    }
}

/// Upper tail of the unit-variance Laplace law, `P(Z > z) = e^{-√2 z} / 2` for `z >= 0`: exponential
/// tails, heavier than a Gaussian's (a 4-sigma residual is 1.8e-3, not 3e-5), lighter than a power law's
/// (a 15-sigma residual still reads as 3e-10 — on a log scale, a thousandfold jump).
pub fn laplace_sf(z: f64) -> f64 {
    if z.is_nan() {
        return 1.0;
    }
    if z < 0.0 {
        return 1.0 - laplace_sf(-z);
    }
    0.5 * (-std::f64::consts::SQRT_2 * z).exp()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn laplace_tail_matches_known_values() {
        assert!((laplace_sf(0.0) - 0.5).abs() < 1e-12);
        assert!((laplace_sf(1.0) - 0.5 * (-std::f64::consts::SQRT_2).exp()).abs() < 1e-12);
        assert!((laplace_sf(-1.0) - (1.0 - 0.5 * (-std::f64::consts::SQRT_2).exp())).abs() < 1e-12);
        assert!(laplace_sf(1e6) >= 0.0);
        assert_eq!(laplace_sf(f64::NAN), 1.0);
    }

    #[test]
    fn learns_mean_and_spread() {
        let mut m = RobustMoments::default();
        for i in 0..2000 {
            m.observe(10.0 + if i % 2 == 0 { 1.0 } else { -1.0 }, 1.0, 500.0);
        }
        assert!((m.mean() - 10.0).abs() < 0.05, "{}", m.mean());
        assert!((m.sd() - 1.0).abs() < 0.05, "{}", m.sd());
        assert!(m.upper_p(10.5, 0.1) == 1.0);
        assert!(m.upper_p(30.0, 0.1) < 1e-3);
    }

    #[test]
    fn a_single_outlier_moves_the_mean_a_bounded_step() {
        let mut m = RobustMoments::default();
        for i in 0..500 {
            m.observe(if i % 2 == 0 { 1.0 } else { -1.0 }, 1.0, 500.0);
        }
        let before = m.mean();
        m.observe(1e9, 1.0, 500.0);
        assert!((m.mean() - before).abs() <= CLIP_SD * 1.01 / 500.0 + 1e-6);
    }

    #[test]
    fn identical_values_do_not_freeze_the_baseline() {
        let mut m = RobustMoments::default();
        for _ in 0..20 {
            m.observe(0.0, 1.0, 500.0);
        }
        for _ in 0..500 {
            m.observe(2.0, 1.0, 500.0);
        }
        assert!(m.mean() > 1.5, "{}", m.mean());
    }

    #[test]
    fn zero_weight_learns_nothing() {
        let mut m = RobustMoments::default();
        m.observe(3.0, 1.0, 100.0);
        let before = m;
        m.observe(100.0, 0.0, 100.0);
        m.observe(f64::NAN, 1.0, 100.0);
        assert_eq!(m, before);
    }

    proptest! {
        #[test]
        fn laplace_tail_is_a_decreasing_probability(a in -50.0f64..50.0, d in 0.0f64..50.0) {
            let (pa, pb) = (laplace_sf(a), laplace_sf(a + d));
            prop_assert!((0.0..=1.0).contains(&pa));
            prop_assert!(pb <= pa + 1e-12);
        }

        #[test]
        fn moments_stay_finite_and_mean_within_range(xs in proptest::collection::vec(-1e6f64..1e6, 1..200)) {
            let mut m = RobustMoments::default();
            for &x in &xs { m.observe(x, 1.0, 50.0); }
            let (lo, hi) = xs.iter().fold((f64::MAX, f64::MIN), |(l, h), &x| (l.min(x), h.max(x)));
            prop_assert!(m.mean() >= lo - 1e-3 * lo.abs().max(1.0) && m.mean() <= hi + 1e-3 * hi.abs().max(1.0));
            prop_assert!(m.var().is_finite() && m.var() >= 0.0);
            prop_assert!(m.count() <= 50.0);
        }
    }
}
