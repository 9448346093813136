//! Online statistics for behavioural anomaly detection: small, bounded, deterministic.
//!
//! This crate owns the mathematics of "how unusual is this?" and nothing else. It knows numbers, symbols
//! (`u64` keys) and byte strings; it knows nothing of agents, events, Kafka, HTTP or time zones. Every
//! scorer answers with a **p-value**: the probability, under the learned normal behaviour, of seeing
//! something at least as extreme. p-values from different scorers are comparable and can be fused
//! ([`fusion`]) in a principled way, and a p-value maps to the `[0, 1]` score users see.
//!
//! Design rules every model here follows:
//! - **Bounded**: fixed-size state (`f32` moments, fixed histograms, capped tables). No model grows with
//!   the length of a stream or with the number of distinct values an attacker sends.
//! - **Deterministic**: no randomness, no clocks, no hash-map iteration in results. Time is passed in by
//!   the caller, as event time.
//! - **Guarded learning**: every update takes a weight in `[0, 1]`; callers pass a reduced weight for
//!   events that scored anomalous, and learning rates are floored so that the baseline moves at most a
//!   bounded step per observation (a slow drift cannot drag it to an attack in a few steps).
//! - **Honest tails**: heavy-tailed defaults (Student-t, negative binomial, empirical tails with an
//!   exponential extreme-value extension), because real telemetry is heavy-tailed and false alarms are
//!   what makes a detector useless.

pub mod accumulate;
pub mod arrays;
pub mod calibrate;
pub mod counts;
pub mod entropy;
pub mod fusion;
pub mod learned;
pub mod markov;
pub mod moments;
pub mod novelty;
pub mod table;

pub use accumulate::{EvidenceAccumulator, EvidenceSet, JumpLaw};
pub use calibrate::TailCalibrator;
pub use counts::{count_sf, CountStats};
pub use entropy::{blob_scan, randomness, BlobStats, Randomness};
pub use fusion::{fuse, score_from_p, Fused};
pub use markov::TransitionModel;
pub use moments::RobustMoments;
pub use novelty::{NoveltyRate, Vocabulary};

/// Smallest p-value any scorer reports: keeps logs finite and fused values comparable.
pub const P_FLOOR: f64 = 1e-30;

/// Clamps a p-value into `[P_FLOOR, 1]`, mapping NaN to 1 (no evidence).
#[inline]
pub fn clamp_p(p: f64) -> f64 {
    if p.is_nan() {
        1.0
    } else {
        p.clamp(P_FLOOR, 1.0)
    }
}
