//! The model artifact: one fitted model as a versioned, self-describing JSON file.
//!
//! An artifact says what it is (`format`, `artifact_version`), what it scores (`name`, the agent
//! `class`), on which features (`feature_version` and the feature names, in order), how it was trained
//! (a fingerprint of the training data, sizes, the held-out share, the seed) and how its scores are
//! calibrated. Loading checks the format and the feature version *before* anything else, so a model
//! trained for another feature layout is refused with an error that says to retrain, never misread.

use super::calibration::Calibration;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The `format` field of every artifact.
pub const ARTIFACT_FORMAT: &str = "vigil-model";
/// Layout version of the artifact file itself (not of the features).
pub const ARTIFACT_VERSION: u32 = 1;
/// File name extension of artifacts in a models directory.
pub const EXTENSION: &str = "json";

/// How a model was trained.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainingInfo {
    /// SHA-256 (hex) of the training input, as read.
    pub fingerprint: String,
    /// Events read from the training input (all classes).
    pub events: u64,
    /// Vectors of this class: fitted on, and held out for calibration.
    pub train_vectors: u64,
    pub holdout_vectors: u64,
    /// Agents of this class: in the fitting part, and held out (held-out agents are never fitted on).
    pub train_agents: u64,
    pub holdout_agents: u64,
    /// Requested share of the data held out.
    pub holdout_fraction: f64,
    /// Mixture components chosen (by BIC).
    pub components: u32,
    /// Seed of the fit (initialisation).
    pub seed: u64,
    /// Mean negative log-likelihood of the fitting and held-out vectors, nats.
    pub train_nll_mean: f64,
    pub holdout_nll_mean: f64,
}

/// A fitted model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Artifact {
    /// Always [`ARTIFACT_FORMAT`].
    pub format: String,
    /// [`ARTIFACT_VERSION`] of the writer.
    pub artifact_version: u32,
    /// What the model scores (e.g. `window`); the engine reports it as component `model:<name>`.
    pub name: String,
    /// The agent class it was trained on.
    pub class: String,
    /// Version of the feature definition the vectors were computed with.
    pub feature_version: u32,
    /// Feature names, in vector order.
    pub features: Vec<String>,
    /// The model family (`gaussian_mixture`).
    pub model: String,
    pub training: TrainingInfo,
    /// Indices of the features the model uses (those that varied in training).
    pub active: Vec<usize>,
    /// Indices of the features of which only values *above* what the model expects count as unusual
    /// (less activity than usual is not what this model looks for).
    pub one_sided: Vec<usize>,
    /// Standardisation: `z = (x - center) / scale`, per feature.
    pub center: Vec<f64>,
    pub scale: Vec<f64>,
    /// Mixture weights, means (`active.len()` values each) and covariances (row-major square
    /// matrices of that size), in standardised units.
    pub weights: Vec<f64>,
    pub means: Vec<Vec<f64>>,
    pub covariances: Vec<Vec<f64>>,
    pub calibration: Calibration,
}

/// Why an artifact cannot be used. Every variant is the file's fault (or the directory's): retraining
/// or pointing at the right directory fixes it; retrying does not.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    /// The file or directory cannot be read.
    #[error("cannot read model artifact {path}: {error}")]
    Read { path: PathBuf, error: std::io::Error },
    /// Not JSON, or not a vigil model artifact.
    #[error("{path} is not a vigil model artifact: {message}")]
    Format { path: PathBuf, message: String },
    /// Written by another artifact layout version.
    #[error(
        "{path}: artifact version {found}, this build reads version {ARTIFACT_VERSION}; retrain with `vigil train`"
    )]
    Version { path: PathBuf, found: u64 },
    /// Trained on another feature definition.
    #[error("{path}: model was trained on feature version {found}, this build computes feature version {expected}; retrain with `vigil train`")]
    FeatureVersion { path: PathBuf, found: u64, expected: u32 },
    /// Trained on other features (names or order differ) under the same version.
    #[error("{path}: feature `{found}` at position {index} does not match this build's `{expected}`; retrain with `vigil train`")]
    Features { path: PathBuf, index: usize, found: String, expected: String },
    /// Parameters are inconsistent (damaged or edited by hand).
    #[error("model for class {class:?} is invalid: {message}")]
    Invalid { class: String, message: String },
    /// Two artifacts in one directory score the same class under the same name.
    #[error("{path}: a second `{name}` model for class {class:?}")]
    Duplicate { path: PathBuf, name: String, class: String },
}

/// `x` rounded to 12 significant digits. JSON parsers read such short decimals exactly (the
/// significand and the power of ten are both exact doubles), so an artifact whose numbers are
/// quantized reads back bit for bit, and a model scores the same before and after it is saved.
pub fn quantize(x: f64) -> f64 {
    if !x.is_finite() || x == 0.0 {
        return x;
    }
    format!("{x:.11e}").parse().unwrap_or(x)
}

impl Artifact {
    /// Rounds the model parameters (not the calibration) to what the file can hold exactly.
    pub fn quantize_parameters(&mut self) {
        let q = |v: &mut Vec<f64>| v.iter_mut().for_each(|x| *x = quantize(*x));
        q(&mut self.center);
        q(&mut self.scale);
        q(&mut self.weights);
        self.means.iter_mut().for_each(q);
        self.covariances.iter_mut().for_each(q);
    }

    /// Rounds the calibration and training figures to what the file can hold exactly.
    pub fn quantize_calibration(&mut self) {
        let c = &mut self.calibration;
        c.quantiles.iter_mut().for_each(|x| *x = quantize(*x));
        c.tail_threshold = quantize(c.tail_threshold);
        c.tail_fraction = quantize(c.tail_fraction);
        c.tail_scale = quantize(c.tail_scale);
        c.thresholds.iter_mut().for_each(|(a, b)| (*a, *b) = (quantize(*a), quantize(*b)));
        let t = &mut self.training;
        t.holdout_fraction = quantize(t.holdout_fraction);
        t.train_nll_mean = quantize(t.train_nll_mean);
        t.holdout_nll_mean = quantize(t.holdout_nll_mean);
    }

    /// The artifact as pretty JSON (with a trailing newline).
    pub fn to_json(&self) -> String {
        // Plain data with finite numbers serialises.
        let mut s = serde_json::to_string_pretty(self).expect("an artifact serialises");
        s.push('\n');
        s
    }

    /// Parses an artifact, checking format, artifact version and feature version first, then the
    /// feature names against `features` (the caller's feature definition, in order).
    pub fn from_json(
        path: &Path,
        text: &str,
        feature_version: u32,
        features: &[&str],
    ) -> Result<Artifact, ArtifactError> {
        let format_err = |m: String| ArtifactError::Format { path: path.to_path_buf(), message: m };
        let v: serde_json::Value = serde_json::from_str(text).map_err(|e| format_err(e.to_string()))?;
        if v.get("format").and_then(|f| f.as_str()) != Some(ARTIFACT_FORMAT) {
            return Err(format_err(format!("no `\"format\": \"{ARTIFACT_FORMAT}\"`")));
        }
        let version = v.get("artifact_version").and_then(|x| x.as_u64()).unwrap_or(0);
        if version != ARTIFACT_VERSION as u64 {
            return Err(ArtifactError::Version { path: path.to_path_buf(), found: version });
        }
        let fv = v.get("feature_version").and_then(|x| x.as_u64()).unwrap_or(0);
        if fv != feature_version as u64 {
            return Err(ArtifactError::FeatureVersion {
                path: path.to_path_buf(),
                found: fv,
                expected: feature_version,
            });
        }
        let a: Artifact = serde_json::from_value(v).map_err(|e| format_err(e.to_string()))?;
        if a.features.len() != features.len() {
            let index = a.features.len().min(features.len());
            return Err(ArtifactError::Features {
                path: path.to_path_buf(),
                index,
                found: a.features.get(index).cloned().unwrap_or_else(|| "(none)".into()),
                expected: features.get(index).map_or_else(|| "(none)".into(), |s| s.to_string()),
            });
        }
        for (i, (f, e)) in a.features.iter().zip(features).enumerate() {
            if f != e {
                return Err(ArtifactError::Features {
                    path: path.to_path_buf(),
                    index: i,
                    found: f.clone(),
                    expected: e.to_string(),
                });
            }
        }
        super::Scorer::new(&a)?;
        Ok(a)
    }

    /// Reads and checks one artifact file.
    pub fn read(path: &Path, feature_version: u32, features: &[&str]) -> Result<Artifact, ArtifactError> {
        let text =
            std::fs::read_to_string(path).map_err(|e| ArtifactError::Read { path: path.to_path_buf(), error: e })?;
        Artifact::from_json(path, &text, feature_version, features)
    }

    /// Reads every `*.json` artifact of a directory, in file-name order (so loading is deterministic).
    pub fn read_dir(dir: &Path, feature_version: u32, features: &[&str]) -> Result<Vec<Artifact>, ArtifactError> {
        let read_err = |e| ArtifactError::Read { path: dir.to_path_buf(), error: e };
        let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(read_err)?
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<_, _>>()
            .map_err(read_err)?;
        paths.retain(|p| p.is_file() && p.extension().is_some_and(|x| x == EXTENSION));
        paths.sort();
        let mut out: Vec<Artifact> = Vec::with_capacity(paths.len());
        for p in &paths {
            let a = Artifact::read(p, feature_version, features)?;
            if out.iter().any(|o| o.name == a.name && o.class == a.class) {
                return Err(ArtifactError::Duplicate { path: p.clone(), name: a.name, class: a.class });
            }
            out.push(a);
        }
        Ok(out)
    }

    /// The file name of this artifact in a models directory: `<name>-<class>.json`, with characters
    /// outside `[A-Za-z0-9._-]` replaced by `_`.
    pub fn file_name(&self) -> String {
        let clean: String =
            self.class.chars().map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '_' }).collect();
        format!("{}-{clean}.{EXTENSION}", self.name)
    }
}
