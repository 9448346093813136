//! Training: standardise, fit a Gaussian mixture with linfa (components chosen by BIC), calibrate on
//! held-out groups.
//!
//! The held-out part is chosen by *group* (the caller passes one group key per vector: the agent), not
//! at random: a model calibrated on agents it never saw is calibrated for the next fleet, not for the
//! agents it memorised. The split is a deterministic function of the group key, and the fit is seeded,
//! so the same data always gives the same artifact.

use super::artifact::{Artifact, TrainingInfo, ARTIFACT_FORMAT, ARTIFACT_VERSION};
use super::calibration::{Calibration, CalibrationError};
use super::density::{Scorer, CLIP_Z, MAX_FEATURES};
use linfa::traits::Fit;
use linfa::DatasetBase;
use linfa_clustering::{GaussianMixtureModel, GmmInitMethod};
use ndarray::Array2;
use rand_xoshiro::rand_core::SeedableRng;
use rand_xoshiro::Xoshiro256Plus;

/// A feature whose standard deviation in training is below this does not vary: the model leaves it out.
const MIN_SD: f64 = 1e-6;
/// Floor of a feature's scale (feature units): a feature that barely varies in training must not make
/// every small change look like many standard deviations.
const MIN_SCALE: f64 = 0.1;

/// A fitted mixture's weights, means and (row-major) covariances.
type Mixture = (Vec<f64>, Vec<Vec<f64>>, Vec<Vec<f64>>);

/// What to fit, and what to write into the artifact about it.
#[derive(Clone, Debug)]
pub struct FitOptions {
    /// What the model scores (`window`).
    pub name: String,
    pub class: String,
    pub feature_version: u32,
    pub features: Vec<String>,
    /// Indices of the features of which only excess counts (see [`Artifact::one_sided`]).
    pub one_sided: Vec<usize>,
    /// Share of the groups held out for calibration, in (0, 1).
    pub holdout_fraction: f64,
    /// Most mixture components tried.
    pub max_components: usize,
    /// Added to every covariance diagonal, in standardised units (keeps components from collapsing
    /// onto features that are constant within them).
    pub reg_covariance: f64,
    pub seed: u64,
    /// Fingerprint of the training input, and its number of events (recorded in the artifact).
    pub fingerprint: String,
    pub events: u64,
}

impl FitOptions {
    pub fn new(name: &str, class: &str, feature_version: u32, features: &[&str]) -> FitOptions {
        FitOptions {
            name: name.into(),
            class: class.into(),
            feature_version,
            features: features.iter().map(|s| s.to_string()).collect(),
            one_sided: Vec::new(),
            holdout_fraction: 0.2,
            max_components: 4,
            reg_covariance: 0.1,
            seed: 0x5EED_0F71_611E,
            fingerprint: String::new(),
            events: 0,
        }
    }
}

/// Why a model cannot be fitted.
#[derive(Debug, thiserror::Error)]
pub enum FitError {
    #[error("class {class:?}: {n} vectors, at least {min} are needed")]
    TooFew { class: String, n: usize, min: usize },
    #[error(
        "class {class:?}: the held-out part has {holdout} vectors and the fitting part {train}; more agents are needed"
    )]
    Split { class: String, train: usize, holdout: usize },
    #[error("class {class:?}: no feature varies in the training data")]
    Constant { class: String },
    #[error("class {1:?}: {0}")]
    Calibration(CalibrationError, String),
    #[error("class {class:?}: vectors must have {expected} finite values each (1 to {MAX_FEATURES} features)")]
    Shape { class: String, expected: usize },
    #[error("class {class:?}: the mixture cannot be fitted: {message}")]
    Model { class: String, message: String },
}

/// What training found, for the caller's summary.
#[derive(Clone, Debug)]
pub struct FitReport {
    pub components: usize,
    /// BIC of each number of components tried (`None`: the fit failed).
    pub bic: Vec<(usize, Option<f64>)>,
    pub active_features: usize,
}

/// Fewest vectors a class needs.
pub const MIN_VECTORS: usize = 200;

/// Held-out or not: a deterministic function of the group key.
fn held_out(group: u64, fraction: f64) -> bool {
    // SplitMix64 finaliser: group keys may be structured; their mix is uniform.
    let mut z = group.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    ((z >> 11) as f64 / (1u64 << 53) as f64) < fraction
}

/// Fits one model on `rows` (each `opts.features.len()` values) grouped by `groups`.
pub fn fit(rows: &[Vec<f64>], groups: &[u64], opts: &FitOptions) -> Result<(Artifact, FitReport), FitError> {
    let class = opts.class.clone();
    let n_features = opts.features.len();
    if n_features == 0
        || n_features > MAX_FEATURES
        || rows.len() != groups.len()
        || rows.iter().any(|r| r.len() != n_features || r.iter().any(|x| !x.is_finite()))
    {
        return Err(FitError::Shape { class, expected: n_features });
    }
    if rows.len() < MIN_VECTORS {
        return Err(FitError::TooFew { class, n: rows.len(), min: MIN_VECTORS });
    }
    let fraction = opts.holdout_fraction.clamp(0.01, 0.99);
    let (mut train, mut holdout) = (Vec::new(), Vec::new());
    let (mut train_groups, mut holdout_groups) = (Vec::new(), Vec::new());
    for (r, &g) in rows.iter().zip(groups) {
        if held_out(g, fraction) {
            holdout.push(r.as_slice());
            holdout_groups.push(g);
        } else {
            train.push(r.as_slice());
            train_groups.push(g);
        }
    }
    let min_part = MIN_VECTORS / 5;
    if train.len() < min_part * 2 || holdout.len() < min_part {
        return Err(FitError::Split { class, train: train.len(), holdout: holdout.len() });
    }
    train_groups.sort_unstable();
    train_groups.dedup();
    holdout_groups.sort_unstable();
    holdout_groups.dedup();

    // Standardisation on the fitting part.
    let n = train.len() as f64;
    let mut center = vec![0.0; n_features];
    let mut scale = vec![1.0; n_features];
    let mut active = Vec::new();
    for i in 0..n_features {
        let mean = train.iter().map(|r| r[i]).sum::<f64>() / n;
        let var = train.iter().map(|r| (r[i] - mean).powi(2)).sum::<f64>() / n;
        center[i] = mean;
        scale[i] = var.sqrt().max(MIN_SCALE);
        if var.sqrt() >= MIN_SD {
            active.push(i);
        }
    }
    if active.is_empty() {
        return Err(FitError::Constant { class });
    }
    let d = active.len();
    let standardised = |r: &[f64]| -> Vec<f64> {
        active.iter().map(|&i| ((r[i] - center[i]) / scale[i]).clamp(-CLIP_Z, CLIP_Z)).collect()
    };
    let mut flat = Vec::with_capacity(train.len() * d);
    for r in &train {
        flat.extend(standardised(r));
    }
    let data = Array2::from_shape_vec((train.len(), d), flat)
        .map_err(|e| FitError::Model { class: class.clone(), message: e.to_string() })?;
    let dataset = DatasetBase::from(data);

    let mut artifact = Artifact {
        format: ARTIFACT_FORMAT.into(),
        artifact_version: ARTIFACT_VERSION,
        name: opts.name.clone(),
        class: class.clone(),
        feature_version: opts.feature_version,
        features: opts.features.clone(),
        model: "gaussian_mixture".into(),
        training: TrainingInfo {
            fingerprint: opts.fingerprint.clone(),
            events: opts.events,
            train_vectors: train.len() as u64,
            holdout_vectors: holdout.len() as u64,
            train_agents: train_groups.len() as u64,
            holdout_agents: holdout_groups.len() as u64,
            holdout_fraction: fraction,
            components: 0,
            seed: opts.seed,
            train_nll_mean: 0.0,
            holdout_nll_mean: 0.0,
        },
        active: active.clone(),
        one_sided: opts.one_sided.clone(),
        center: center.clone(),
        scale: scale.clone(),
        weights: Vec::new(),
        means: Vec::new(),
        covariances: Vec::new(),
        // Replaced below, once the model can score the held-out part.
        calibration: Calibration {
            holdout: 1,
            quantiles: vec![0.0, 1.0],
            tail_threshold: 1.0,
            tail_fraction: 0.5,
            tail_scale: 1.0,
            thresholds: Vec::new(),
        },
    };

    // Mixtures of 1..=max components; the lowest BIC wins.
    // (BIC, components, weights, means, covariances) of the best mixture so far.
    let mut best: Option<(f64, usize, Mixture)> = None;
    let mut bic = Vec::new();
    let per_component = d + d * (d + 1) / 2;
    for k in 1..=opts.max_components.max(1) {
        // Each component needs some vectors per parameter to be estimable at all.
        if k > 1 && train.len() < k * per_component / 4 {
            break;
        }
        let params = GaussianMixtureModel::params_with_rng(k, Xoshiro256Plus::seed_from_u64(opts.seed))
            .init_method(GmmInitMethod::KMeans)
            .reg_covariance(opts.reg_covariance)
            .tolerance(1e-4)
            .max_n_iterations(300)
            .n_runs(1);
        let gmm = match params.fit(&dataset) {
            Ok(g) => g,
            Err(_) => {
                bic.push((k, None));
                continue;
            }
        };
        let weights: Vec<f64> = gmm.weights().to_vec();
        let means: Vec<Vec<f64>> = gmm.means().outer_iter().map(|m| m.to_vec()).collect();
        let covs: Vec<Vec<f64>> = gmm.covariances().outer_iter().map(|c| c.iter().copied().collect()).collect();
        artifact.weights = weights.clone();
        artifact.means = means.clone();
        artifact.covariances = covs.clone();
        let Ok(scorer) = Scorer::new(&artifact) else {
            bic.push((k, None));
            continue;
        };
        let ll: f64 = -train.iter().map(|r| scorer.nll(r)).sum::<f64>();
        let n_params = (k * per_component + k - 1) as f64;
        let b = -2.0 * ll + n_params * n.ln();
        bic.push((k, Some(b)));
        if best.as_ref().is_none_or(|x| b < x.0) {
            best = Some((b, k, (weights, means, covs)));
        }
    }
    let Some((_, k, (weights, means, covs))) = best else {
        return Err(FitError::Model { class, message: "no number of components converged".into() });
    };
    artifact.weights = weights;
    artifact.means = means;
    artifact.covariances = covs;
    // The model as it will be read back from its file, calibrated as such.
    artifact.quantize_parameters();
    let scorer =
        Scorer::new(&artifact).map_err(|e| FitError::Model { class: class.clone(), message: e.to_string() })?;
    let train_nll: Vec<f64> = train.iter().map(|r| scorer.nll(r)).collect();
    let holdout_nll: Vec<f64> = holdout.iter().map(|r| scorer.nll(r)).collect();
    artifact.calibration = Calibration::fit(&holdout_nll).map_err(|e| FitError::Calibration(e, class.clone()))?;
    artifact.training.components = k as u32;
    artifact.training.train_nll_mean = train_nll.iter().sum::<f64>() / train_nll.len() as f64;
    artifact.training.holdout_nll_mean = holdout_nll.iter().sum::<f64>() / holdout_nll.len() as f64;
    artifact.quantize_calibration();
    Ok((artifact, FitReport { components: k, bic, active_features: d }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::learned::artifact::ArtifactError;
    use std::path::Path;

    /// Two clusters in 3 correlated features, plus one constant feature; deterministic.
    fn data(n: usize) -> (Vec<Vec<f64>>, Vec<u64>) {
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        let mut uni = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 11) as f64 / (1u64 << 53) as f64
        };
        let mut rows = Vec::new();
        let mut groups = Vec::new();
        for i in 0..n {
            // Approximately normal: sum of uniforms.
            let mut g = || (0..6).map(|_| uni()).sum::<f64>() - 3.0;
            let (a, b) = (g(), g());
            let c = if i % 3 == 0 { 4.0 } else { 0.0 };
            rows.push(vec![a + c, 0.8 * a + 0.3 * b + c, b, 7.0]);
            groups.push(i as u64 % 97);
        }
        (rows, groups)
    }

    fn options() -> FitOptions {
        FitOptions::new("window", "test-class", 3, &["a", "b", "c", "constant"])
    }

    #[test]
    fn fits_calibrates_and_flags_a_joint_outlier() {
        let (rows, groups) = data(3000);
        let (a, report) = fit(&rows, &groups, &options()).unwrap();
        assert_eq!(report.active_features, 3, "the constant feature is left out");
        assert_eq!(a.active, vec![0, 1, 2]);
        let s = Scorer::new(&a).unwrap();
        // Typical points are unremarkable ...
        let typical = s.score(&[0.0, 0.0, 0.0, 7.0]);
        assert!(typical.p > 0.05, "{typical:?}");
        // ... a point normal on every axis alone but breaking the correlation of a and b is not.
        let joint = s.score(&[3.0, -3.0, 0.0, 7.0]);
        assert!(joint.p < 1e-6, "{joint:?}");
        assert!(joint.n_top > 0 && joint.top[0].feature <= 1, "a or b deviates most: {joint:?}");
    }

    #[test]
    fn one_sided_features_count_only_excess() {
        let (rows, groups) = data(3000);
        let mut o = options();
        o.one_sided = vec![0, 1, 2];
        let (a, _) = fit(&rows, &groups, &o).unwrap();
        let s = Scorer::new(&a).unwrap();
        // Far below on every axis: less activity than usual is no finding for a one-sided model ...
        let low = s.score(&[-6.0, -6.0, -4.0, 7.0]);
        assert!(low.p > 0.01, "{low:?}");
        assert_eq!(low.n_top, 0, "nothing deviates upwards");
        // ... far above is.
        let high = s.score(&[9.0, 9.0, 4.0, 7.0]);
        assert!(high.p < 1e-6, "{high:?}");
        assert!(high.top[..high.n_top].iter().all(|d| d.z > 0.0));
    }

    #[test]
    fn training_is_reproducible() {
        let (rows, groups) = data(1500);
        let (a, _) = fit(&rows, &groups, &options()).unwrap();
        let (b, _) = fit(&rows, &groups, &options()).unwrap();
        assert_eq!(a.to_json(), b.to_json());
    }

    #[test]
    fn artifacts_round_trip_and_refuse_other_features() {
        let (rows, groups) = data(1500);
        let (a, _) = fit(&rows, &groups, &options()).unwrap();
        let names = ["a", "b", "c", "constant"];
        let back = Artifact::from_json(Path::new("m.json"), &a.to_json(), 3, &names).unwrap();
        assert_eq!(back, a);
        let (s1, s2) = (Scorer::new(&a).unwrap(), Scorer::new(&back).unwrap());
        let x = [1.0, 2.0, -1.0, 7.0];
        assert_eq!(s1.score(&x), s2.score(&x));

        let err = Artifact::from_json(Path::new("m.json"), &a.to_json(), 4, &names).unwrap_err();
        assert!(matches!(err, ArtifactError::FeatureVersion { found: 3, expected: 4, .. }), "{err}");
        assert!(err.to_string().contains("retrain"), "{err}");
        let err = Artifact::from_json(Path::new("m.json"), &a.to_json(), 3, &["a", "b", "x", "constant"]).unwrap_err();
        assert!(matches!(err, ArtifactError::Features { index: 2, .. }), "{err}");
        let err = Artifact::from_json(Path::new("m.json"), "{\"format\":\"other\"}", 3, &names).unwrap_err();
        assert!(matches!(err, ArtifactError::Format { .. }), "{err}");
        let mut broken = a.clone();
        broken.covariances[0][0] = -1.0;
        let err = Artifact::from_json(Path::new("m.json"), &broken.to_json(), 3, &names).unwrap_err();
        assert!(matches!(err, ArtifactError::Invalid { .. }), "{err}");
    }

    #[test]
    fn too_little_data_is_refused() {
        let (rows, groups) = data(50);
        assert!(matches!(fit(&rows, &groups, &options()), Err(FitError::TooFew { .. })));
        let (rows, _) = data(1000);
        let one_group = vec![1u64; rows.len()];
        assert!(matches!(fit(&rows, &one_group, &options()), Err(FitError::Split { .. })));
    }
}
