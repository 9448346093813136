//! A small open-addressing map from `u64` keys to counters, bounded in size.
//!
//! It starts tiny and doubles up to a fixed capacity; once full, it **prunes** instead of growing: every
//! weight is halved and entries that fall below a quarter are dropped. Pruning keeps what is frequent and
//! recent, forgets the rare and old, and is deterministic (it depends only on the sequence of updates).
//! Keys are caller-supplied hashes; probing is bounded so that crafted collisions cannot stall a lookup.

use serde::{Deserialize, Serialize};
/// What a table slot stores besides its key.
pub trait Weighted: Copy + Default {
    /// The weight pruning compares against.
    fn weight(&self) -> f32;
    /// Halves every weight the entry holds.
    fn halve(&mut self);
}

impl Weighted for f32 {
    #[inline]
    fn weight(&self) -> f32 {
        *self
    }
    #[inline]
    fn halve(&mut self) {
        *self *= 0.5;
    }
}

/// Longest probe sequence before a key is treated as absent (and an insert as a miss).
const MAX_PROBE: usize = 32;
/// Stand-in for the key 0, which marks empty slots.
const ZERO_KEY: u64 = 0x9E37_79B9_7F4A_7C15;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BoundedMap<V> {
    keys: Vec<u64>,
    vals: Vec<V>,
    len: usize,
    cap: usize,
    /// Incremented by every prune, so owners can refresh statistics derived from the entries.
    prunes: u64,
}

impl<V: Weighted> BoundedMap<V> {
    /// An empty map that will hold at most `cap` entries (rounded up to a power of two).
    pub fn new(cap: usize) -> Self {
        BoundedMap { keys: Vec::new(), vals: Vec::new(), len: 0, cap: cap.max(8).next_power_of_two(), prunes: 0 }
    }

    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Largest number of entries the map holds.
    #[inline]
    pub fn capacity(&self) -> usize {
        self.cap
    }

    /// How many times the map has pruned itself.
    #[inline]
    pub fn prunes(&self) -> u64 {
        self.prunes
    }

    /// Every stored value.
    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.keys.iter().zip(&self.vals).filter(|(k, _)| **k != 0).map(|(_, v)| v)
    }

    /// Every stored value, mutably.
    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut V> {
        self.keys.iter().zip(&mut self.vals).filter(|(k, _)| **k != 0).map(|(_, v)| v)
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Heap bytes held.
    pub fn heap_bytes(&self) -> usize {
        self.keys.capacity() * 8 + self.vals.capacity() * std::mem::size_of::<V>()
    }

    #[inline]
    fn fix(key: u64) -> u64 {
        if key == 0 {
            ZERO_KEY
        } else {
            key
        }
    }

    #[inline]
    fn slot_of(&self, key: u64) -> Option<usize> {
        if self.keys.is_empty() {
            return None;
        }
        let mask = self.keys.len() - 1;
        let mut i = (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as usize & mask;
        for _ in 0..MAX_PROBE.min(self.keys.len()) {
            let k = self.keys[i];
            if k == key {
                return Some(i);
            }
            if k == 0 {
                return None;
            }
            i = (i + 1) & mask;
        }
        None
    }

    /// The value stored for `key`.
    #[inline]
    pub fn get(&self, key: u64) -> Option<&V> {
        let key = Self::fix(key);
        self.slot_of(key).map(|i| &self.vals[i])
    }

    /// The value for `key`, inserted as default when absent. `None` only when the key cannot be placed
    /// (its probe run is full even after pruning), which the caller treats as "not learned".
    pub fn entry(&mut self, key: u64) -> Option<&mut V> {
        let key = Self::fix(key);
        if let Some(i) = self.slot_of(key) {
            return Some(&mut self.vals[i]);
        }
        if (self.len + 1) * 10 > self.keys.len() * 7 {
            if self.keys.len() < self.cap {
                self.rebuild((self.keys.len() * 2).max(8), false);
            } else {
                self.rebuild(self.keys.len(), true);
            }
        }
        let i = self.insert_slot(key)?;
        self.keys[i] = key;
        self.vals[i] = V::default();
        self.len += 1;
        Some(&mut self.vals[i])
    }

    fn insert_slot(&self, key: u64) -> Option<usize> {
        let mask = self.keys.len() - 1;
        let mut i = (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as usize & mask;
        for _ in 0..MAX_PROBE.min(self.keys.len()) {
            if self.keys[i] == 0 {
                return Some(i);
            }
            i = (i + 1) & mask;
        }
        None
    }

    /// Re-inserts every entry into `size` slots, halving weights and dropping light entries if `prune`.
    fn rebuild(&mut self, size: usize, prune: bool) {
        self.prunes += prune as u64;
        let old_keys = std::mem::replace(&mut self.keys, vec![0; size]);
        let old_vals = std::mem::replace(&mut self.vals, vec![V::default(); size]);
        self.len = 0;
        for (k, mut v) in old_keys.into_iter().zip(old_vals) {
            if k == 0 {
                continue;
            }
            if prune {
                v.halve();
                if v.weight() < 0.25 {
                    continue;
                }
            }
            if let Some(i) = self.insert_slot(k) {
                self.keys[i] = k;
                self.vals[i] = v;
                self.len += 1;
            }
        }
    }

    /// Halves every weight (and drops light entries): used to age a whole table.
    pub fn halve_all(&mut self) {
        let size = self.keys.len();
        if size > 0 {
            self.rebuild(size, true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn stores_and_finds_including_key_zero() {
        let mut m = BoundedMap::<f32>::new(64);
        for k in 0..40u64 {
            *m.entry(k).unwrap() += 1.0 + k as f32;
        }
        for k in 0..40u64 {
            assert_eq!(m.get(k), Some(&(1.0 + k as f32)));
        }
        assert_eq!(m.get(1000), None);
    }

    proptest! {
        #[test]
        fn never_exceeds_its_capacity(keys in proptest::collection::vec(any::<u64>(), 0..2000)) {
            let mut m = BoundedMap::<f32>::new(64);
            for k in keys {
                if let Some(v) = m.entry(k) { *v += 1.0; }
                prop_assert!(m.len() <= 64);
                prop_assert!(m.heap_bytes() <= 64 * 12);
            }
        }

        #[test]
        fn frequent_keys_survive_a_flood(noise in proptest::collection::vec(1000u64..u64::MAX, 0..3000)) {
            let mut m = BoundedMap::<f32>::new(128);
            for (i, k) in noise.into_iter().enumerate() {
                *m.entry(7).unwrap() += 1.0;
                if let Some(v) = m.entry(k) { *v += 1.0; }
                prop_assert!(m.get(7).is_some(), "lost the frequent key at step {}", i);
            }
        }
    }
}
