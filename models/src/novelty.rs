//! First-seen values: has this destination, path or identifier been seen before, and how much does
//! novelty mean here?
//!
//! A [`Vocabulary`] remembers one field's values (as 64-bit hashes) with decaying counts, bounded, and
//! estimates the probability that the next observation is a value never seen — the Good–Turing
//! estimate `(N1 + 1) / (N + 1)`, where `N1` is the number of values seen about once and `N` the number
//! of observations. A fresh vocabulary gives novelty no weight (the estimate is 1); as it settles, the
//! values seen once become rare and a new value earns a small p-value; a field that never settles (file
//! names, request ids) keeps many singletons, so its novelty never alarms. Unlike a running average of
//! "was new", the estimate reflects the vocabulary's *current* state: the burst of discoveries at the
//! start of a stream stops counting as soon as those values are seen again. [`NoveltyRate`] is the
//! simpler running rate, kept per agent.

use crate::table::BoundedMap;
use serde::{Deserialize, Serialize};

/// A value is a singleton while its count is at most this.
const SINGLETON_MAX: f32 = 1.5;

/// How much a value with count `c` counts as a singleton: its count up to 1 while it is one (a value
/// seen once at a reduced learning weight is only that much of a singleton).
#[inline]
fn singleton_mass(c: f32) -> f32 {
    if c > 0.0 && c <= SINGLETON_MAX {
        c.min(1.0)
    } else {
        0.0
    }
}

/// One field's values, with decaying counts and Good–Turing novelty.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Vocabulary {
    map: BoundedMap<f32>,
    /// Observations (decayed with the counts).
    n: f32,
    /// Singleton mass: values whose count is in `(0, SINGLETON_MAX]`, each counting up to 1.
    n1: f32,
    /// The map's prune counter when `n1` was last exact.
    prunes_seen: u64,
}

impl Vocabulary {
    pub fn new(max_values: usize) -> Self {
        Vocabulary { map: BoundedMap::new(max_values), n: 0.0, n1: 0.0, prunes_seen: 0 }
    }

    /// How often `key` was seen (decayed; 0 when unknown).
    #[inline]
    pub fn count(&self, key: u64) -> f32 {
        self.map.get(key).copied().unwrap_or(0.0)
    }

    /// Probability that the next observation is a value never seen: `(N1 + 1) / (N + 1)`.
    #[inline]
    pub fn p_new(&self) -> f64 {
        ((self.n1 as f64 + 1.0) / (self.n as f64 + 1.0)).min(1.0)
    }

    /// Observations learned (decayed).
    #[inline]
    pub fn observations(&self) -> f32 {
        self.n
    }

    /// Learns one observation of `key` with `weight`; `max_n` bounds the memory (all counts are halved
    /// when the observations exceed it, or exceed the table's capacity).
    pub fn observe(&mut self, key: u64, weight: f32, max_n: f32) {
        if weight <= 0.0 {
            return;
        }
        let before = self.count(key);
        if let Some(c) = self.map.entry(key) {
            *c += weight;
            self.n1 += singleton_mass(*c) - singleton_mass(before);
        }
        self.n += weight;
        // Remember no more observations than the table can hold values: beyond that a stream of
        // distinct values would be forgotten faster than it is counted, and novelty underestimated.
        if self.n > max_n.min(self.map.capacity() as f32) {
            self.map.halve_all();
            self.n *= 0.5;
        }
        if self.map.prunes() != self.prunes_seen {
            self.prunes_seen = self.map.prunes();
            self.n1 = self.map.values().map(|&c| singleton_mass(c)).sum();
        }
        self.n1 = self.n1.max(0.0);
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn heap_bytes(&self) -> usize {
        self.map.heap_bytes()
    }
}

/// The rate at which observations are new values: an exponentially weighted mean of "was new" with a
/// prior of one new pseudo-observation, 8 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct NoveltyRate {
    rate: f32,
    n: f32,
}

impl Default for NoveltyRate {
    fn default() -> Self {
        NoveltyRate { rate: 1.0, n: 1.0 }
    }
}

impl NoveltyRate {
    /// Learns whether an observation was new; the effective sample size saturates at `max_n`.
    pub fn observe(&mut self, was_new: bool, weight: f32, max_n: f32) {
        if weight <= 0.0 {
            return;
        }
        self.n = (self.n + weight).min(max_n);
        let alpha = weight / self.n;
        let x = if was_new { 1.0 } else { 0.0 };
        self.rate += alpha * (x - self.rate);
    }

    /// Probability that the next observation is new.
    #[inline]
    pub fn rate(&self) -> f64 {
        self.rate as f64
    }

    /// Observations learned (effective).
    #[inline]
    pub fn count(&self) -> f32 {
        self.n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_settled_vocabulary_makes_novelty_rare() {
        let mut vocab = Vocabulary::new(4096);
        assert_eq!(vocab.p_new(), 1.0);
        for i in 0..2000u64 {
            vocab.observe(i % 10, 1.0, 1e6);
        }
        // Every value seen many times: no singletons.
        assert!((vocab.p_new() - 1.0 / 2001.0).abs() < 1e-6, "{}", vocab.p_new());
        vocab.observe(99, 1.0, 1e6);
        assert!((vocab.p_new() - 2.0 / 2002.0).abs() < 1e-6);
    }

    #[test]
    fn an_unsettled_vocabulary_keeps_novelty_cheap() {
        let mut vocab = Vocabulary::new(64);
        for i in 0..2000u64 {
            vocab.observe(i, 1.0, 500.0);
        }
        assert!(vocab.p_new() > 0.05, "{}", vocab.p_new());
        assert!(vocab.len() <= 64);
    }

    #[test]
    fn the_running_rate_has_a_fresh_prior() {
        let mut rate = NoveltyRate::default();
        assert_eq!(rate.rate(), 1.0);
        for i in 0..100 {
            rate.observe(i < 5, 1.0, 1e6);
        }
        assert!((rate.rate() - 6.0 / 101.0).abs() < 1e-4, "{}", rate.rate());
    }

    proptest! {
        #[test]
        fn good_turing_is_a_probability(keys in proptest::collection::vec(0u64..50, 0..500)) {
            let mut v = Vocabulary::new(16);
            for k in keys { v.observe(k, 1.0, 100.0); }
            prop_assert!(v.p_new() > 0.0 && v.p_new() <= 1.0);
        }

        #[test]
        fn rate_is_a_probability(obs in proptest::collection::vec(any::<bool>(), 0..500)) {
            let mut r = NoveltyRate::default();
            for o in obs { r.observe(o, 1.0, 100.0); }
            prop_assert!((0.0..=1.0).contains(&r.rate()));
        }
    }
}
