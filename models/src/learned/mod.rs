//! Learned scorers: multivariate density models fitted offline on recorded normal behaviour.
//!
//! The online statistics of this crate judge one axis at a time. An attack can stay inside every
//! per-axis baseline and still be unusual as a whole: a little more egress, a slightly different mix of
//! tools, a few more tokens, all at once. A model of the *joint* distribution of many such numbers,
//! fitted on normal runs, sees that.
//!
//! This module knows vectors of numbers with names, nothing about what they measure:
//! - [`fit`] standardises the training vectors, drops the features that never vary, fits a Gaussian
//!   mixture with [linfa](https://crates.io/crates/linfa-clustering) (pure-Rust linear algebra: no BLAS,
//!   no system libraries; seeded, so training is reproducible) choosing the number of components by
//!   BIC, and calibrates the negative log-likelihood into a p-value on held-out normal vectors
//!   ([`calibration`]);
//! - [`artifact`] is the versioned, self-describing file a fitted model lives in (JSON), with the
//!   feature version and names it was trained on, a fingerprint of the training data, sizes and the
//!   calibration; loading one written for other features fails with a clear error;
//! - [`Scorer`] scores a vector online: no allocation, a fixed amount of arithmetic (for `k`
//!   components and `d` features, `k · d² / 2` multiply-adds), deterministic, and explains itself
//!   (which features deviate most from the component that fits best).

pub mod artifact;
pub mod calibration;
pub mod density;
pub mod fit;

pub use artifact::{Artifact, ArtifactError, TrainingInfo, ARTIFACT_FORMAT, ARTIFACT_VERSION};
pub use calibration::Calibration;
pub use density::{Deviation, Scored, Scorer, MAX_FEATURES, TOP_DEVIATIONS};
pub use fit::{fit, FitError, FitOptions, FitReport};
