//! Count models: how unusual is a count of events in an event-time window?
//!
//! A window count is judged against a Poisson law when its learned variance is at most its mean, and
//! against a negative binomial (Poisson with a gamma-distributed rate) when the counts are
//! over-dispersed — which real agent traffic always is: work comes in bursts. Tails come from statrs'
//! regularised incomplete gamma and beta functions.

use crate::moments::RobustMoments;
use statrs::function::beta::beta_reg;
use statrs::function::gamma::gamma_lr;

/// Learned statistics of a per-window count: mean and variance over completed windows.
pub type CountStats = RobustMoments;

/// `P(X >= x)` for a count with the given mean and variance (Poisson when `var <= mean`, else negative
/// binomial with the same two moments). `x <= 0` gives 1.
pub fn count_sf(x: u32, mean: f64, var: f64) -> f64 {
    if x == 0 {
        return 1.0;
    }
    let mean = mean.max(1e-3);
    let x = x as f64;
    let p = if var <= mean * 1.000_001 {
        // P(X >= x) for Poisson(mean) is the lower regularised gamma P(x, mean).
        gamma_lr(x, mean)
    } else {
        // NB with r = mean² / (var - mean) and success probability mean / var;
        // P(X >= x) = I_{1 - mean/var}(x, r).
        let r = (mean * mean / (var - mean)).max(1e-6);
        beta_reg(x, r, (1.0 - mean / var).clamp(0.0, 1.0))
    };
    if p.is_finite() {
        p.clamp(0.0, 1.0)
    } else {
        1.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn poisson_tail_matches_direct_sum() {
        let lambda: f64 = 2.5;
        for x in 1..15u32 {
            let mut cdf = 0.0;
            let mut term = (-lambda).exp();
            for k in 0..x {
                if k > 0 {
                    term *= lambda / k as f64;
                }
                cdf += term;
            }
            let got = count_sf(x, lambda, lambda);
            assert!((got - (1.0 - cdf)).abs() < 1e-9, "x={x}: {got} vs {}", 1.0 - cdf);
        }
    }

    #[test]
    fn negative_binomial_tail_matches_direct_sum() {
        // mean 4, var 12: r = 2, success prob p = r / (r + mean) = 1/3.
        let (r, p): (f64, f64) = (2.0, 1.0 / 3.0);
        let mut cdf = 0.0;
        for x in 0..30u32 {
            let sf = count_sf(x, 4.0, 12.0);
            assert!((sf - (1.0 - cdf)).abs() < 1e-9, "x={x}: {sf} vs {}", 1.0 - cdf);
            // pmf(k) = C(k + r - 1, k) p^r (1-p)^k, here r = 2: (k + 1) p² (1-p)^k.
            cdf += (x as f64 + 1.0) * p.powf(r) * (1.0 - p).powi(x as i32);
        }
    }

    #[test]
    fn overdispersion_makes_bursts_less_surprising() {
        assert!(count_sf(20, 3.0, 30.0) > 100.0 * count_sf(20, 3.0, 3.0));
    }

    proptest! {
        #[test]
        fn tail_is_monotone_in_x(mean in 0.01f64..100.0, extra in 0.0f64..100.0, x in 0u32..200) {
            let var = mean + extra;
            let a = count_sf(x, mean, var);
            let b = count_sf(x + 1, mean, var);
            prop_assert!((0.0..=1.0).contains(&a));
            prop_assert!(b <= a + 1e-12);
        }
    }
}
