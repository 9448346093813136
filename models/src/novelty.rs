//! First-seen values: has this destination, path or identifier been seen before, and how much does
//! novelty mean here?
//!
//! A [`VocabTable`] remembers values (as 64-bit hashes) with decaying counts, bounded. A [`NoveltyRate`]
//! tracks how often observations turn out to be new — the Good–Turing estimate of the probability that
//! the next value is unseen. Its prior is "everything is new" (one pseudo-observation that was new), so a
//! fresh vocabulary gives novelty no weight; as the vocabulary settles the rate falls towards
//! `new values / observations`, and a new value earns a p-value equal to that rate: the chance that a
//! settled stream produces something new. High-cardinality fields (file names, request ids) never
//! settle, so their novelty never alarms.

use crate::table::BoundedMap;

/// Values seen, with decaying counts.
#[derive(Clone, Debug)]
pub struct VocabTable {
    map: BoundedMap<f32>,
}

impl VocabTable {
    pub fn new(max_values: usize) -> Self {
        VocabTable {
            map: BoundedMap::new(max_values),
        }
    }

    /// How often `key` was seen (decayed; 0 when unknown).
    #[inline]
    pub fn count(&self, key: u64) -> f32 {
        self.map.get(key).copied().unwrap_or(0.0)
    }

    /// Adds `weight` to `key`'s count.
    pub fn observe(&mut self, key: u64, weight: f32) {
        if let Some(c) = self.map.entry(key) {
            *c += weight;
        }
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
#[derive(Clone, Copy, Debug, PartialEq)]
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
        let mut vocab = VocabTable::new(64);
        let mut rate = NoveltyRate::default();
        for i in 0..2000u64 {
            let key = i % 10;
            let new = vocab.count(key) == 0.0;
            rate.observe(new, 1.0, 1e6);
            vocab.observe(key, 1.0);
        }
        // 10 new out of 2000 observations (+ the prior).
        assert!(
            (rate.rate() - 11.0 / 2001.0).abs() < 1e-3,
            "{}",
            rate.rate()
        );
    }

    #[test]
    fn an_unsettled_vocabulary_keeps_novelty_cheap() {
        let mut vocab = VocabTable::new(64);
        let mut rate = NoveltyRate::default();
        for i in 0..2000u64 {
            let new = vocab.count(i) == 0.0;
            rate.observe(new, 1.0, 500.0);
            vocab.observe(i, 1.0);
        }
        assert!(rate.rate() > 0.99);
    }

    proptest! {
        #[test]
        fn rate_is_a_probability(obs in proptest::collection::vec(any::<bool>(), 0..500)) {
            let mut r = NoveltyRate::default();
            for o in obs { r.observe(o, 1.0, 100.0); }
            prop_assert!((0.0..=1.0).contains(&r.rate()));
        }
    }
}
