//! The online side of a learned model: a Gaussian mixture over standardised features, scored without
//! allocation and explained by the features that deviate most.

use super::artifact::{Artifact, ArtifactError};
use super::calibration::Calibration;

/// Most features a model may have (scratch space is a fixed array of this size).
pub const MAX_FEATURES: usize = 48;
/// Deviating features an explanation names.
pub const TOP_DEVIATIONS: usize = 3;
/// Standardised values are clipped to this many standard deviations: one absurd feature must not
/// stand for the whole vector (the per-feature detectors judge single axes).
pub const CLIP_Z: f64 = 8.0;

/// One mixture component, prepared for scoring.
#[derive(Clone, Debug)]
struct Component {
    mean: Vec<f64>,
    /// Lower Cholesky factor of the covariance, row-major `d x d`.
    chol: Vec<f64>,
    /// `ln w - (d ln 2π + ln det Σ) / 2`.
    log_norm: f64,
    /// Marginal standard deviations (explanations).
    sd: Vec<f64>,
}

/// A feature that deviates from what the model expects.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Deviation {
    /// Index into the model's feature list.
    pub feature: u16,
    /// The observed value (feature units).
    pub value: f64,
    /// The value the best-fitting component expects (feature units).
    pub typical: f64,
    /// Signed distance in that component's standard deviations.
    pub z: f64,
}

/// A model's verdict on one vector.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Scored {
    /// Negative log-likelihood under the mixture (nats; larger = more unusual).
    pub nll: f64,
    /// Calibrated p-value.
    pub p: f64,
    /// The most deviating features, strongest first (`n_top` of them).
    pub top: [Deviation; TOP_DEVIATIONS],
    pub n_top: usize,
}

/// A loaded model, ready to score vectors of its feature layout.
#[derive(Clone, Debug)]
pub struct Scorer {
    /// Indices of the features the model uses (features that never varied in training are left out).
    active: Vec<usize>,
    /// Per active feature: only excess over a component's mean counts.
    upper: Vec<bool>,
    center: Vec<f64>,
    scale: Vec<f64>,
    comps: Vec<Component>,
    calibration: Calibration,
    features: usize,
}

/// Lower Cholesky factor of a symmetric positive definite `d x d` matrix (row-major).
pub(crate) fn cholesky(a: &[f64], d: usize) -> Option<Vec<f64>> {
    let mut l = vec![0.0; d * d];
    for i in 0..d {
        for j in 0..=i {
            let mut s = a[i * d + j];
            for k in 0..j {
                s -= l[i * d + k] * l[j * d + k];
            }
            if i == j {
                if s <= 0.0 || !s.is_finite() {
                    return None;
                }
                l[i * d + i] = s.sqrt();
            } else {
                l[i * d + j] = s / l[j * d + j];
            }
        }
    }
    Some(l)
}

impl Scorer {
    /// Prepares a model for scoring; fails on inconsistent parameters (a damaged or hand-edited file).
    pub fn new(a: &Artifact) -> Result<Scorer, ArtifactError> {
        let bad = |m: String| ArtifactError::Invalid { class: a.class.clone(), message: m };
        let n = a.features.len();
        if n == 0 || n > MAX_FEATURES {
            return Err(bad(format!("{n} features (1 to {MAX_FEATURES} are supported)")));
        }
        let active = a.active.clone();
        let d = active.len();
        if d == 0 || active.iter().any(|&i| i >= n) || active.windows(2).any(|w| w[0] >= w[1]) {
            return Err(bad("`active` must list ascending feature indices".into()));
        }
        if a.one_sided.iter().any(|&i| i >= n) {
            return Err(bad("`one_sided` must list feature indices".into()));
        }
        let upper = active.iter().map(|i| a.one_sided.contains(i)).collect();
        if a.center.len() != n || a.scale.len() != n {
            return Err(bad("`center` and `scale` must have one value per feature".into()));
        }
        if a.center.iter().chain(&a.scale).any(|x| !x.is_finite()) || a.scale.iter().any(|&s| s <= 0.0) {
            return Err(bad("`center` must be finite and `scale` positive".into()));
        }
        let k = a.weights.len();
        if k == 0 || a.means.len() != k || a.covariances.len() != k {
            return Err(bad("`weights`, `means` and `covariances` must have one entry per component".into()));
        }
        if a.weights.iter().any(|&w| !(w > 0.0 && w <= 1.0)) {
            return Err(bad("component weights must be in (0, 1]".into()));
        }
        a.calibration.validate().map_err(bad)?;
        let mut comps = Vec::with_capacity(k);
        for c in 0..k {
            let (mean, cov) = (&a.means[c], &a.covariances[c]);
            if mean.len() != d || cov.len() != d * d || mean.iter().chain(cov).any(|x| !x.is_finite()) {
                return Err(bad(format!("component {c}: mean must have {d} values and covariance {d}x{d}")));
            }
            let chol =
                cholesky(cov, d).ok_or_else(|| bad(format!("component {c}: covariance is not positive definite")))?;
            let log_det: f64 = (0..d).map(|i| 2.0 * chol[i * d + i].ln()).sum();
            let log_norm = a.weights[c].ln() - 0.5 * (d as f64 * (2.0 * std::f64::consts::PI).ln() + log_det);
            let sd = (0..d).map(|i| cov[i * d + i].sqrt()).collect();
            comps.push(Component { mean: mean.clone(), chol, log_norm, sd });
        }
        Ok(Scorer {
            active,
            upper,
            center: a.center.clone(),
            scale: a.scale.clone(),
            comps,
            calibration: a.calibration.clone(),
            features: n,
        })
    }

    /// Number of features a vector must have.
    pub fn features(&self) -> usize {
        self.features
    }

    /// The model's standardised view of `x`: active features only, clipped.
    fn standardise(&self, x: &[f64], z: &mut [f64; MAX_FEATURES]) {
        for (j, &i) in self.active.iter().enumerate() {
            let v = (x[i] - self.center[i]) / self.scale[i];
            z[j] = if v.is_finite() { v.clamp(-CLIP_Z, CLIP_Z) } else { 0.0 };
        }
    }

    /// Log-density of each component at `z` (into `out`), and the index of the largest.
    fn component_logs(&self, z: &[f64], out: &mut [f64]) -> usize {
        let d = self.active.len();
        let mut y = [0.0f64; MAX_FEATURES];
        let mut best = 0;
        for (c, comp) in self.comps.iter().enumerate() {
            // Forward substitution L y = z - mean; the Mahalanobis distance is |y|².
            let mut maha = 0.0;
            for i in 0..d {
                let row = &comp.chol[i * d..i * d + i + 1];
                let mut s = z[i] - comp.mean[i];
                if self.upper[i] && s < 0.0 {
                    s = 0.0;
                }
                for (k, &l) in row[..i].iter().enumerate() {
                    s -= l * y[k];
                }
                y[i] = s / row[i];
                maha += y[i] * y[i];
            }
            out[c] = comp.log_norm - 0.5 * maha;
            if out[c] > out[best] {
                best = c;
            }
        }
        best
    }

    /// Negative log-likelihood of a standardised vector.
    fn nll_standardised(&self, z: &[f64]) -> (f64, usize) {
        let mut logs = vec![0.0; self.comps.len()];
        let best = self.component_logs(z, &mut logs);
        (-log_sum_exp(&logs, best), best)
    }

    /// Negative log-likelihood of `x` (training and calibration use this).
    pub fn nll(&self, x: &[f64]) -> f64 {
        let mut z = [0.0; MAX_FEATURES];
        self.standardise(x, &mut z);
        self.nll_standardised(&z[..self.active.len()]).0
    }

    /// Scores `x` (one value per feature, in the model's feature order): calibrated p-value and the
    /// features that deviate most from the best-fitting component.
    pub fn score(&self, x: &[f64]) -> Scored {
        if x.len() != self.features {
            return Scored { nll: f64::NAN, p: 1.0, ..Scored::default() };
        }
        let d = self.active.len();
        let mut z = [0.0; MAX_FEATURES];
        self.standardise(x, &mut z);
        let mut logs = [0.0f64; 16];
        let (nll, best) = if self.comps.len() <= logs.len() {
            let best = self.component_logs(&z[..d], &mut logs[..self.comps.len()]);
            (-log_sum_exp(&logs[..self.comps.len()], best), best)
        } else {
            self.nll_standardised(&z[..d])
        };
        let p = self.calibration.p_value(nll);
        let comp = &self.comps[best];
        let mut out = Scored { nll, p, ..Scored::default() };
        for (j, &i) in self.active.iter().enumerate() {
            let mut dev = (z[j] - comp.mean[j]) / comp.sd[j];
            if self.upper[j] && dev < 0.0 {
                dev = 0.0;
            }
            if dev == 0.0 {
                continue;
            }
            let entry = Deviation {
                feature: i as u16,
                value: x[i],
                typical: comp.mean[j] * self.scale[i] + self.center[i],
                z: dev,
            };
            // Insert into the top list (largest |z| first; the lower feature index first on ties).
            let mut pos = out.n_top;
            while pos > 0 && out.top[pos - 1].z.abs() < dev.abs() {
                pos -= 1;
            }
            if pos < TOP_DEVIATIONS {
                let end = out.n_top.min(TOP_DEVIATIONS - 1);
                for k in (pos..end).rev() {
                    out.top[k + 1] = out.top[k];
                }
                out.top[pos] = entry;
                out.n_top = (out.n_top + 1).min(TOP_DEVIATIONS);
            }
        }
        out
    }

    /// The calibration in use.
    pub fn calibration(&self) -> &Calibration {
        &self.calibration
    }
}

fn log_sum_exp(logs: &[f64], best: usize) -> f64 {
    let m = logs[best];
    if !m.is_finite() {
        return m;
    }
    m + logs.iter().map(|l| (l - m).exp()).sum::<f64>().ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cholesky_reconstructs_the_matrix() {
        let a = [4.0, 2.0, 0.4, 2.0, 3.0, 0.5, 0.4, 0.5, 2.0];
        let l = cholesky(&a, 3).unwrap();
        for i in 0..3 {
            for j in 0..3 {
                let s: f64 = (0..3).map(|k| l[i * 3 + k] * l[j * 3 + k]).sum();
                assert!((s - a[i * 3 + j]).abs() < 1e-12);
            }
        }
        assert!(cholesky(&[1.0, 2.0, 2.0, 1.0], 2).is_none(), "indefinite");
    }
}
