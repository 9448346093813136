//! Fusing component p-values into one score.
//!
//! Each detector component answers with a p-value. Two classical combinations disagree on what
//! evidence looks like: Fisher's method (`-2 Σ ln p_i ~ χ²(2k)`) rewards several moderately small
//! p-values together; the Bonferroni minimum (`k · min p_i`) rewards one overwhelming component without
//! dilution. vigil takes the better of the two and pays a factor 2 for looking twice, which keeps the
//! result a valid (conservative) p-value: `p = min(1, 2 · min(k · min p_i, p_Fisher))`. Fisher assumes
//! independence; components that measure the same thing share a p-value upstream, and the minimum arm
//! bounds the damage when they do not.
//!
//! Users see a score in `[0, 1]`: `-log10(p) / 10`, capped — so 0.5 means "one in 100,000" and 1.0 means
//! "one in 10^10 or rarer", on one scale for every detector.

/// Score of a p-value: `clamp(-log10(p) / 10, 0, 1)`.
#[inline]
pub fn score_from_p(p: f64) -> f64 {
    // Most components find nothing unusual (p = 1, score 0): no logarithm for them.
    if p >= 1.0 {
        return 0.0;
    }
    (-crate::clamp_p(p).log10() / 10.0).clamp(0.0, 1.0)
}

/// The p-value a score stands for (inverse of [`score_from_p`] below the cap).
#[inline]
pub fn p_from_score(score: f64) -> f64 {
    10f64.powf(-10.0 * score.clamp(0.0, 1.0))
}

/// The fused result.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Fused {
    pub p: f64,
    /// Index of the component with the smallest p-value (first one on ties).
    pub strongest: Option<usize>,
}

/// Survival function of χ² with `2k` degrees of freedom at `x`: `e^{-x/2} Σ_{i<k} (x/2)^i / i!`.
pub fn chi2_even_sf(x: f64, k: usize) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    let h = x / 2.0;
    let mut term = 1.0;
    let mut sum = 1.0;
    for i in 1..k {
        term *= h / i as f64;
        sum += term;
    }
    // e^{-h} * sum, in logs to survive huge h.
    (sum.ln() - h).exp().min(1.0)
}

/// Just below the median of χ²(2k), for k = 1..=9 (index k): Fisher's p-value exceeds 1/2 at any
/// statistic up to it (pinned by a test).
const CHI2_BELOW_MEDIAN: [f64; 10] = [
    0.0,
    1.3862944 * 0.999,
    3.3566939 * 0.999,
    5.3481206 * 0.999,
    7.3441206 * 0.999,
    9.3418178 * 0.999,
    11.3403222 * 0.999,
    13.3392741 * 0.999,
    15.3385072 * 0.999,
    17.3379216 * 0.999,
];

/// Whether both arms of the fusion are at least 1/2, so that the fused p-value is exactly 1, decided
/// without logarithms: Bonferroni's `k · min p`, and Fisher's through the bound `-ln p <= 1/p - 1`
/// (its statistic is at most `2 Σ (1/p - 1)`, and its p-value falls as the statistic grows).
fn surely_one(ps: &[f64], p_min: f64) -> bool {
    let k = ps.len();
    if k >= CHI2_BELOW_MEDIAN.len() || (k as f64) * p_min < 0.5 {
        return false;
    }
    let bound: f64 = ps.iter().map(|&p| 1.0 / crate::clamp_p(p) - 1.0).sum::<f64>() * 2.0;
    bound <= CHI2_BELOW_MEDIAN[k]
}

/// Fuses the p-values of the components that apply to an event.
pub fn fuse(ps: &[f64]) -> Fused {
    let k = ps.len();
    if k == 0 {
        return Fused { p: 1.0, strongest: None };
    }
    let strongest = (1..k).fold(0, |s, i| if crate::clamp_p(ps[i]) < crate::clamp_p(ps[s]) { i } else { s });
    let p_min = crate::clamp_p(ps[strongest]);
    if surely_one(ps, p_min) {
        return Fused { p: 1.0, strongest: (p_min < 1.0).then_some(strongest) };
    }
    let mut sum_ln = 0.0;
    for &p in ps {
        let p = crate::clamp_p(p);
        // ln 1 is exactly +0 and adding +0 changes nothing (the sum is +0 or negative), so the
        // common p = 1 skips the logarithm with the same bits.
        if p != 1.0 {
            sum_ln += p.ln();
        }
    }
    let fisher = chi2_even_sf(-2.0 * sum_ln, k);
    let p = (2.0 * (k as f64 * p_min).min(fisher)).min(1.0);
    Fused { p: crate::clamp_p(p), strongest: (p_min < 1.0).then_some(strongest) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn chi2_matches_known_values() {
        // χ²(2) sf(x) = e^{-x/2}; χ²(4) sf(9.4877) = 0.05.
        assert!((chi2_even_sf(3.0, 1) - (-1.5f64).exp()).abs() < 1e-12);
        assert!((chi2_even_sf(9.487_729, 2) - 0.05).abs() < 1e-6);
        assert!(chi2_even_sf(1e6, 3) >= 0.0);
    }

    #[test]
    fn one_strong_component_is_not_diluted() {
        let f = fuse(&[1e-9, 1.0, 1.0, 1.0, 1.0, 1.0]);
        assert!(f.p <= 2.0 * 6.0 * 1e-9 + 1e-15);
        assert_eq!(f.strongest, Some(0));
    }

    #[test]
    fn several_moderate_components_add_up() {
        let f = fuse(&[1e-3, 1e-3, 1e-3, 1e-3]);
        assert!(f.p < 1e-3, "{}", f.p);
        assert_eq!(fuse(&[1.0, 1.0]).strongest, None);
    }

    #[test]
    fn score_scale() {
        assert_eq!(score_from_p(1.0), 0.0);
        assert!((score_from_p(1e-5) - 0.5).abs() < 1e-12);
        assert_eq!(score_from_p(1e-20), 1.0);
        assert!((p_from_score(0.5) - 1e-5).abs() < 1e-15);
    }

    /// `fuse` as first written, taking the logarithm of every p-value.
    fn fuse_with_every_ln(ps: &[f64]) -> Fused {
        let k = ps.len();
        if k == 0 {
            return Fused { p: 1.0, strongest: None };
        }
        let mut strongest = 0;
        let mut sum_ln = 0.0;
        for (i, &p) in ps.iter().enumerate() {
            let p = crate::clamp_p(p);
            if p < crate::clamp_p(ps[strongest]) {
                strongest = i;
            }
            sum_ln += p.ln();
        }
        let p_min = crate::clamp_p(ps[strongest]);
        let fisher = chi2_even_sf(-2.0 * sum_ln, k);
        let p = (2.0 * (k as f64 * p_min).min(fisher)).min(1.0);
        Fused { p: crate::clamp_p(p), strongest: (p_min < 1.0).then_some(strongest) }
    }

    #[test]
    fn the_shortcut_thresholds_sit_just_below_the_medians() {
        for (k, &t) in CHI2_BELOW_MEDIAN.iter().enumerate().skip(1) {
            assert!(chi2_even_sf(t, k) > 0.5, "k={k}");
            assert!(chi2_even_sf(t / 0.999 * 1.001, k) < 0.5, "k={k}: not close to the median");
        }
    }

    proptest! {
        #[test]
        fn shortcuts_change_no_bit(
            ps in proptest::collection::vec(
                prop_oneof![Just(1.0f64), Just(f64::NAN), Just(0.0), 1e-300f64..=1.0, 0.999f64..=1.0, 0.3f64..=1.0],
                0..12
            )
        ) {
            let (a, b) = (fuse(&ps), fuse_with_every_ln(&ps));
            prop_assert_eq!(a.p.to_bits(), b.p.to_bits());
            prop_assert_eq!(a.strongest, b.strongest);
        }

        #[test]
        fn fused_p_is_valid_and_monotone(ps in proptest::collection::vec(1e-12f64..=1.0, 1..8), i in 0usize..8, f in 0.0f64..1.0) {
            let a = fuse(&ps);
            prop_assert!(a.p > 0.0 && a.p <= 1.0);
            let mut smaller = ps.clone();
            let i = i % ps.len();
            smaller[i] *= f.max(1e-3);
            prop_assert!(fuse(&smaller).p <= a.p + 1e-12);
        }
    }
}
