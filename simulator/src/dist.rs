//! The few random distributions the simulator needs, written out so that no extra crate is pulled in
//! and so that the draws (and therefore the output bytes) stay fixed for a given seed.

use rand::Rng;

/// The generator behind every draw: ChaCha8, seeded from the run seed.
pub(crate) type SimRng = rand_chacha::ChaCha8Rng;

/// A standard normal draw (Box–Muller, one value per call).
pub(crate) fn normal<R: Rng + ?Sized>(r: &mut R) -> f64 {
    let u1 = r.gen::<f64>().max(1e-300);
    let u2 = r.gen::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// Log-normal with the given median and log-space standard deviation.
pub(crate) fn lognormal<R: Rng + ?Sized>(r: &mut R, median: f64, sigma: f64) -> f64 {
    median * (sigma * normal(r)).exp()
}

/// Log-normal rounded to a non-negative integer, at least `min`.
pub(crate) fn lognormal_u<R: Rng + ?Sized>(r: &mut R, median: f64, sigma: f64, min: u64) -> u64 {
    (lognormal(r, median, sigma).round() as u64).max(min)
}

/// Exponential with the given mean.
pub(crate) fn exp<R: Rng + ?Sized>(r: &mut R, mean: f64) -> f64 {
    -mean * (1.0 - r.gen::<f64>()).ln()
}

/// Geometric count of failures before a success, with the given mean (0, 1, 2, ...).
pub(crate) fn geometric<R: Rng + ?Sized>(r: &mut R, mean: f64) -> u32 {
    let p = 1.0 / (1.0 + mean.max(0.0));
    let u = 1.0 - r.gen::<f64>();
    ((u.ln() / (1.0 - p).max(1e-12).ln()).floor() as u32).min(10_000)
}

/// True with probability `p`.
pub(crate) fn chance<R: Rng + ?Sized>(r: &mut R, p: f64) -> bool {
    r.gen::<f64>() < p
}

/// Uniform integer in `lo..=hi` (swapped when given in the wrong order).
pub(crate) fn between<R: Rng + ?Sized>(r: &mut R, lo: i64, hi: i64) -> i64 {
    if hi <= lo {
        lo
    } else {
        r.gen_range(lo..=hi)
    }
}

/// Uniform float in `[lo, hi)`.
pub(crate) fn uniform<R: Rng + ?Sized>(r: &mut R, lo: f64, hi: f64) -> f64 {
    lo + (hi - lo) * r.gen::<f64>()
}

/// A uniformly chosen element; `items` must not be empty.
pub(crate) fn pick<'a, T, R: Rng + ?Sized>(r: &mut R, items: &'a [T]) -> &'a T {
    &items[r.gen_range(0..items.len())]
}

/// A uniformly chosen string; `items` must not be empty.
pub(crate) fn pick_str<R: Rng + ?Sized>(r: &mut R, items: &[&'static str]) -> &'static str {
    items[r.gen_range(0..items.len())]
}

/// An index drawn with probability proportional to `weights` (all non-negative, not all zero).
pub(crate) fn weighted<R: Rng + ?Sized>(r: &mut R, weights: impl Iterator<Item = f64> + Clone) -> usize {
    let total: f64 = weights.clone().sum();
    let mut x = r.gen::<f64>() * total;
    let mut last = 0;
    for (i, w) in weights.enumerate() {
        if w > 0.0 {
            last = i;
            if x < w {
                return i;
            }
            x -= w;
        }
    }
    last
}

/// Linear interpolation.
pub(crate) fn lerp(a: f64, b: f64, t: f64) -> f64 {
    a + (b - a) * t
}

/// SplitMix64: a fast bijective mixer, used to make ids look random while staying unique.
pub(crate) fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn moments_are_roughly_right() {
        let mut r = SimRng::seed_from_u64(7);
        let n = 20_000;
        let mean_exp = (0..n).map(|_| exp(&mut r, 5.0)).sum::<f64>() / n as f64;
        assert!((mean_exp - 5.0).abs() < 0.3, "{mean_exp}");
        let mean_geo = (0..n).map(|_| f64::from(geometric(&mut r, 3.0))).sum::<f64>() / n as f64;
        assert!((mean_geo - 3.0).abs() < 0.2, "{mean_geo}");
        let mut v: Vec<f64> = (0..n).map(|_| lognormal(&mut r, 100.0, 0.8)).collect();
        v.sort_by(f64::total_cmp);
        let median = v[n / 2];
        assert!((median - 100.0).abs() < 6.0, "{median}");
        let hits = (0..n).filter(|_| weighted(&mut r, [1.0, 0.0, 3.0].into_iter()) == 2).count();
        assert!((hits as f64 / n as f64 - 0.75).abs() < 0.02);
    }
}
