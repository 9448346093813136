//! A first-order transition model over symbols (tools, event kinds): how surprising is this step after
//! the previous one?
//!
//! Probabilities are interpolated Witten–Bell estimates: `P(b | a) = (c(a,b) + d(a) P(b)) / (c(a) + d(a))`
//! where `d(a)` is the number of distinct successors seen after `a`, so a symbol that is followed by many
//! different things gives more mass to the unseen. The back-off `P(b)` reserves for symbols never seen
//! the Good–Turing mass — the rate at which steps have turned out to be new symbols
//! ([`crate::NoveltyRate`]) — so a new tool is very surprising in a settled vocabulary and not in one
//! still being learned. The surprise is `-ln P` in nats; callers calibrate it
//! into a p-value with a [`crate::TailCalibrator`]. Tables are bounded ([`crate::table::BoundedMap`]).

use crate::table::{BoundedMap, Weighted};
use serde::{Deserialize, Serialize};

/// Per-symbol counters.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
pub struct SymStats {
    /// Transitions out of the symbol.
    pub out: f32,
    /// Distinct successors (decayed with the pair table).
    pub distinct: f32,
    /// Occurrences as a successor.
    pub inn: f32,
}

impl Weighted for SymStats {
    fn weight(&self) -> f32 {
        self.out.max(self.inn)
    }
    fn halve(&mut self) {
        self.out *= 0.5;
        self.distinct *= 0.5;
        self.inn *= 0.5;
    }
}

/// Mixes two symbols into one pair key.
#[inline]
fn pair_key(a: u64, b: u64) -> u64 {
    (a.rotate_left(29) ^ b).wrapping_mul(0xD6E8_FEB8_6659_FD93) ^ a
}

/// Bounded first-order transition counts.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TransitionModel {
    pairs: BoundedMap<f32>,
    syms: BoundedMap<SymStats>,
    total: f32,
    novelty: crate::NoveltyRate,
}

/// A step's surprise and what it was made of, for explanations.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Surprise {
    /// `-ln P(cur | prev)`, nats.
    pub nats: f64,
    /// How often `prev -> cur` was seen.
    pub pair_count: f64,
    /// How often `cur` was seen at all.
    pub symbol_count: f64,
}

impl TransitionModel {
    /// A model holding at most `max_pairs` transitions and `max_symbols` symbols.
    pub fn new(max_pairs: usize, max_symbols: usize) -> Self {
        TransitionModel {
            pairs: BoundedMap::new(max_pairs),
            syms: BoundedMap::new(max_symbols),
            total: 0.0,
            novelty: crate::NoveltyRate::default(),
        }
    }

    /// Total transitions learned (decayed).
    #[inline]
    pub fn total(&self) -> f32 {
        self.total
    }

    /// Number of symbols currently known.
    pub fn symbols(&self) -> usize {
        self.syms.len()
    }

    /// Heap bytes held.
    pub fn heap_bytes(&self) -> usize {
        self.pairs.heap_bytes() + self.syms.heap_bytes()
    }

    /// How surprising `cur` is after `prev` (`None`: the first step of a sequence). `nats` is
    /// `-ln P(cur | prev)`, so `exp(-nats)` is the model's own probability of the step.
    pub fn surprise(&self, prev: Option<u64>, cur: u64) -> Surprise {
        let cur_stats = self.syms.get(cur).copied().unwrap_or_default();
        let p_new = self.novelty.rate().clamp(1e-6, 1.0);
        let p_uni = if cur_stats.inn > 0.0 {
            (1.0 - p_new) * cur_stats.inn as f64 / (self.total as f64).max(cur_stats.inn as f64)
        } else {
            p_new
        };
        let (p, pair_count) = match prev.and_then(|a| self.syms.get(a).map(|s| (a, *s))) {
            Some((a, sa)) if sa.out > 0.0 => {
                let c = self.pairs.get(pair_key(a, cur)).copied().unwrap_or(0.0) as f64;
                let d = (sa.distinct as f64).max(1.0);
                ((c + d * p_uni) / (sa.out as f64 + d), c)
            }
            _ => (p_uni, 0.0),
        };
        Surprise { nats: -p.clamp(1e-300, 1.0).ln(), pair_count, symbol_count: cur_stats.inn as f64 }
    }

    /// Learns the step `prev -> cur` with `weight`; the tables are halved when `total` passes `max_total`.
    pub fn observe(&mut self, prev: Option<u64>, cur: u64, weight: f64, max_total: f32) {
        if weight <= 0.0 {
            return;
        }
        let w = weight as f32;
        let was_new = self.syms.get(cur).is_none_or(|s| s.inn <= 0.0);
        self.novelty.observe(was_new, w, max_total);
        if let Some(s) = self.syms.entry(cur) {
            s.inn += w;
        }
        if let Some(a) = prev {
            let mut new_pair = false;
            if let Some(c) = self.pairs.entry(pair_key(a, cur)) {
                new_pair = *c == 0.0;
                *c += w;
            }
            if let Some(s) = self.syms.entry(a) {
                s.out += w;
                if new_pair {
                    s.distinct += 1.0;
                }
            }
        }
        self.total += w;
        if self.total > max_total {
            self.pairs.halve_all();
            self.syms.halve_all();
            self.total *= 0.5;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learned_paths_are_unsurprising_and_novel_steps_are_surprising() {
        let mut m = TransitionModel::new(256, 64);
        for _ in 0..200 {
            m.observe(None, 1, 1.0, 1e9);
            m.observe(Some(1), 2, 1.0, 1e9);
            m.observe(Some(2), 3, 1.0, 1e9);
            m.observe(Some(3), 1, 1.0, 1e9);
        }
        let usual = m.surprise(Some(1), 2).nats;
        let unusual_order = m.surprise(Some(1), 3).nats;
        let unseen_symbol = m.surprise(Some(1), 99).nats;
        assert!(usual < 0.1, "{usual}");
        assert!(unusual_order > usual + 3.0, "{unusual_order}");
        assert!(unseen_symbol > unusual_order + 2.0, "{unseen_symbol}");
    }

    #[test]
    fn a_new_symbol_is_cheap_while_the_vocabulary_grows() {
        let mut settled = TransitionModel::new(1024, 256);
        let mut growing = TransitionModel::new(1024, 256);
        for i in 0..300u64 {
            settled.observe(Some(i % 3), (i + 1) % 3, 1.0, 1e9);
            growing.observe(Some(i), i + 1, 1.0, 1e9);
        }
        assert!(growing.surprise(Some(300), 5000).nats < 0.5);
        assert!(settled.surprise(Some(1), 5000).nats > 5.0);
    }

    #[test]
    fn a_varied_predecessor_leaves_room_for_the_unseen() {
        let mut m = TransitionModel::new(256, 64);
        for i in 0..400u64 {
            m.observe(Some(1), 10 + i % 20, 1.0, 1e9);
            m.observe(Some(2), 10, 1.0, 1e9);
        }
        // 10 -> 30 is unseen after both, but 1 has 20 distinct successors and 2 has one.
        assert!(m.surprise(Some(1), 30).nats < m.surprise(Some(2), 30).nats);
    }

    #[test]
    fn stays_bounded_under_a_flood_of_symbols() {
        let mut m = TransitionModel::new(128, 32);
        for i in 0..100_000u64 {
            m.observe(Some(i), i + 1, 1.0, 1e9);
        }
        assert!(m.symbols() <= 32);
        assert!(m.heap_bytes() <= 128 * 12 + 32 * 20);
    }
}
