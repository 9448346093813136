//! Empirical calibration of any anomaly statistic into a p-value.
//!
//! Many detectors produce a raw statistic whose null distribution has no closed form (the surprise of
//! a tool transition, the randomness of a payload). [`TailCalibrator`] learns that distribution from the
//! stream itself — a fixed histogram with decaying counts — and answers `P(S >= s)`. Inside the observed
//! range the answer is the conservative empirical tail `(k + 1) / (n + 1)`. Beyond the highest
//! observed values it extrapolates with the peaks-over-threshold method of extreme-value theory: above a
//! high threshold `u` the excesses are modelled as exponential (a generalised Pareto law with shape 0, the
//! natural law for surprisal-like statistics), with the scale estimated as the mean excess. That lets a
//! value far beyond anything seen earn a p-value much smaller than `1 / n`, without trusting a
//! parametric form in the bulk.

use serde::{Deserialize, Serialize};
/// Number of histogram bins.
pub const BINS: usize = 48;

/// Fraction of the mass above the extrapolation threshold.
const TAIL_FRACTION: f32 = 0.05;

/// A decaying histogram of a statistic over `[lo, hi)`: 208 bytes learned, and a cache.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct TailCalibrator {
    lo: f32,
    width: f32,
    min_scale: f32,
    total: f32,
    #[serde(with = "crate::arrays")]
    bins: [f32; BINS],
    /// What [`TailCalibrator::p_value`] would otherwise sum on every call; see
    /// [`TailCalibrator::refresh`].
    #[serde(skip)]
    cache: TailCache,
}

/// Sums over the bins, as of the last [`TailCalibrator::refresh`].
#[derive(Clone, Copy, Debug)]
struct TailCache {
    /// `above[k]`: the sum of `bins[k..]`, added in the order `p_value` adds them (bit for bit).
    above: [f32; BINS + 1],
    /// The highest non-empty bin.
    top: Option<u8>,
    /// The bins changed since (or were never summed): `p_value` sums them itself.
    stale: bool,
}

impl Default for TailCache {
    fn default() -> Self {
        TailCache { above: [0.0; BINS + 1], top: None, stale: true }
    }
}

/// Equal when they learned the same (the cache is not part of the value).
impl PartialEq for TailCalibrator {
    fn eq(&self, o: &Self) -> bool {
        (self.lo, self.width, self.min_scale, self.total, self.bins) == (o.lo, o.width, o.min_scale, o.total, o.bins)
    }
}

impl TailCalibrator {
    /// A calibrator for a statistic that normally falls in `[lo, hi)`; values outside are kept in the edge
    /// bins (and extrapolated from there). `min_scale` floors the exponential tail's scale: the smallest
    /// step of the statistic that may count as one e-fold less likely beyond the data (a property of
    /// the statistic, e.g. one nat for a surprisal).
    pub fn new(lo: f32, hi: f32, min_scale: f32) -> Self {
        TailCalibrator {
            lo,
            width: ((hi - lo) / BINS as f32).max(f32::MIN_POSITIVE),
            min_scale: min_scale.max(0.0),
            total: 0.0,
            bins: [0.0; BINS],
            cache: TailCache::default(),
        }
    }

    /// The `q`-quantile of the learned distribution (bin resolution), for explanations.
    pub fn quantile(&self, q: f64) -> f64 {
        let target = (q.clamp(0.0, 1.0) * self.total as f64) as f32;
        let mut acc = 0.0f32;
        for (i, &b) in self.bins.iter().enumerate() {
            acc += b;
            if acc >= target && b > 0.0 {
                return self.lo as f64 + (i as f64 + 0.5) * self.width as f64;
            }
        }
        self.lo as f64
    }

    /// Total (decayed) weight observed.
    #[inline]
    pub fn total(&self) -> f32 {
        self.total
    }

    /// Learns one value with `weight`; once the total exceeds `max_total`, all counts are halved, so the
    /// histogram reflects roughly the last `max_total` observations.
    pub fn observe(&mut self, s: f64, weight: f64, max_total: f32) {
        if !s.is_finite() || weight <= 0.0 {
            return;
        }
        let pos = ((s as f32 - self.lo) / self.width).floor();
        let idx = if pos < 0.0 { 0 } else { (pos as usize).min(BINS - 1) };
        self.cache.stale = true;
        self.bins[idx] += weight as f32;
        self.total += weight as f32;
        if self.total > max_total {
            for b in &mut self.bins {
                *b *= 0.5;
            }
            self.total *= 0.5;
        }
    }

    /// `P(S >= s)` under the learned distribution; 1 when nothing has been learned.
    ///
    /// Within the data: the empirical tail `(k + 1) / (n + 1)`. Beyond the highest non-empty bin
    /// (`top`): `P(S >= top) · e^{-(s - top)/β}`, the memoryless exponential tail, with `β` the mean excess
    /// over the 95% threshold, floored at `min_scale` and at one bin.
    pub fn p_value(&self, s: f64) -> f64 {
        if self.total < 1.0 || !s.is_finite() {
            return 1.0;
        }
        let pos = (s - self.lo as f64) / self.width as f64;
        if pos <= 0.0 {
            return 1.0;
        }
        let total = self.total as f64;
        let top_bin =
            if self.cache.stale { self.bins.iter().rposition(|&b| b > 0.0) } else { self.cache.top.map(usize::from) };
        let Some(top_bin) = top_bin else {
            return 1.0;
        };
        let top = (top_bin + 1) as f64;
        if pos >= top {
            let scale = self.tail_scale() / self.width as f64;
            return ((1.0 / (total + 1.0)) * (-(pos - top) / scale).exp()).min(1.0);
        }
        let idx = pos.floor() as usize;
        let frac = (pos - idx as f64) as f32;
        let above_next =
            if self.cache.stale { self.bins[idx + 1..].iter().sum::<f32>() } else { self.cache.above[idx + 1] };
        let above: f32 = above_next + self.bins[idx] * (1.0 - frac);
        ((above as f64 + 1.0) / (total + 1.0)).min(1.0)
    }

    /// Sums the bins for [`TailCalibrator::p_value`] if they changed since the last call: between
    /// learning steps (the class barrier) a calibrator answers many p-values, each of which would
    /// otherwise add up to 47 bins.
    pub fn refresh(&mut self) {
        if !self.cache.stale {
            return;
        }
        // Column by column, so that `above[k]` receives `bins[k]`, `bins[k + 1]`, ... in that order,
        // starting from the empty sum: exactly `bins[k..].iter().sum()`.
        let mut above = [std::iter::empty::<f32>().sum::<f32>(); BINS + 1];
        for (j, &b) in self.bins.iter().enumerate() {
            for a in &mut above[..=j] {
                *a += b;
            }
        }
        self.cache = TailCache { above, top: self.bins.iter().rposition(|&b| b > 0.0).map(|i| i as u8), stale: false };
    }

    /// Mean excess over the threshold that leaves [`TAIL_FRACTION`] of the mass above it (in units of
    /// the statistic), floored.
    fn tail_scale(&self) -> f64 {
        let mut mass = 0.0f32;
        let mut edge = BINS;
        while edge > 0 && mass + self.bins[edge - 1] <= TAIL_FRACTION * self.total {
            mass += self.bins[edge - 1];
            edge -= 1;
        }
        // Include the bin that crosses the threshold, so the tail has some mass to measure.
        if edge > 0 {
            edge -= 1;
            mass += self.bins[edge];
        }
        let w = self.width as f64;
        let excess = if mass > 0.0 {
            (edge..BINS).map(|j| self.bins[j] as f64 * ((j - edge) as f64 + 0.5) * w).sum::<f64>() / mass as f64
        } else {
            0.0
        };
        excess.max(w).max(self.min_scale as f64)
    }
}

/// Tables of calibrators (one per metric name) prune by total weight.
impl crate::table::Weighted for TailCalibrator {
    fn weight(&self) -> f32 {
        self.total
    }
    fn halve(&mut self) {
        for b in &mut self.bins {
            *b *= 0.5;
        }
        self.total *= 0.5;
        self.cache.stale = true;
    }
}

/// The default calibrator covers a sign-preserving log scale, `[-24, 24)`, with a one-unit tail scale.
impl Default for TailCalibrator {
    fn default() -> Self {
        TailCalibrator::new(-24.0, 24.0, 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn trained(values: impl Iterator<Item = f64>) -> TailCalibrator {
        let mut c = TailCalibrator::new(0.0, 24.0, 0.0);
        for v in values {
            c.observe(v, 1.0, 1e9);
        }
        c
    }

    #[test]
    fn empty_calibrator_gives_no_evidence() {
        assert_eq!(TailCalibrator::new(0.0, 1.0, 0.0).p_value(100.0), 1.0);
    }

    #[test]
    fn empirical_tail_matches_the_uniform_law() {
        // Uniform on [0, 10): P(S >= s) = 1 - s / 10.
        let c = trained((0..10_000).map(|i| (i as f64 + 0.5) / 1000.0));
        for s in [1.0, 2.5, 5.0, 9.0] {
            let p = c.p_value(s);
            assert!((p - (1.0 - s / 10.0)).abs() < 0.02, "s={s}: {p}");
        }
    }

    #[test]
    fn a_statistic_never_seen_above_zero_decays_at_the_minimum_scale() {
        let mut c = TailCalibrator::new(0.0, 20.0, 2.0);
        for _ in 0..999 {
            c.observe(0.0, 1.0, 1e9);
        }
        let top = 20.0 / BINS as f64;
        let p = c.p_value(8.0);
        let expected = 1e-3 * (-(8.0 - top) / 2.0).exp();
        assert!((p / expected - 1.0).abs() < 1e-6, "{p} vs {expected}");
    }

    #[test]
    fn extrapolates_an_exponential_tail_beyond_the_data() {
        // Exp(1) quantiles: the true tail at s is e^-s, far below 1/n for s = 15.
        let n = 5000;
        let c = trained((0..n).map(|i| -(1.0 - (i as f64 + 0.5) / n as f64).ln()));
        let p = c.p_value(15.0);
        let truth = (-15.0f64).exp();
        assert!(p < 1.0 / n as f64, "{p}");
        assert!(p > truth / 50.0 && p < truth * 50.0, "{p} vs {truth}");
    }

    proptest! {
        #[test]
        fn the_refreshed_cache_changes_no_bit(
            values in proptest::collection::vec((0.0f64..30.0, 0.01f64..3.0), 0..400),
            queries in proptest::collection::vec(-5.0f64..40.0, 1..20),
        ) {
            // One calibrator refreshed now and then, as the class barrier does, one never.
            let (mut cached, mut plain) = (TailCalibrator::new(0.0, 24.0, 1.0), TailCalibrator::new(0.0, 24.0, 1.0));
            for (i, &(v, w)) in values.iter().enumerate() {
                cached.observe(v, w, 50.0);
                plain.observe(v, w, 50.0);
                if i % 7 == 0 {
                    cached.refresh();
                }
                for &q in &queries {
                    prop_assert_eq!(cached.p_value(q).to_bits(), plain.p_value(q).to_bits());
                }
            }
            cached.refresh();
            for &q in &queries {
                prop_assert_eq!(cached.p_value(q).to_bits(), plain.p_value(q).to_bits());
            }
        }

        #[test]
        fn p_values_are_monotone_probabilities(values in proptest::collection::vec(0.0f64..30.0, 1..300), a in -5.0f64..40.0, d in 0.0f64..20.0) {
            let c = trained(values.into_iter());
            let (pa, pb) = (c.p_value(a), c.p_value(a + d));
            prop_assert!(pa > 0.0 && pa <= 1.0);
            prop_assert!(pb <= pa + 1e-9, "p({}) = {} > p({}) = {}", a + d, pb, a, pa);
        }
    }
}
