//! Counting distinct agents without memory that grows with a flood of identities: exact up to a
//! limit, then a HyperLogLog estimate (precision 14: 16 KiB, about 0.8% standard error).

use std::collections::HashSet;
use vigil_detector::hash::KeyedState;

/// Distinct values counted exactly before switching to the sketch.
pub const EXACT_LIMIT: usize = 1 << 16;
const P: u32 = 14;
const M: usize = 1 << P;

pub struct DistinctCounter {
    /// Keyed with the fast seeded hasher: the values are hashes already, only their count is read.
    exact: Option<HashSet<u64, KeyedState>>,
    registers: Vec<u8>,
}

impl Default for DistinctCounter {
    fn default() -> Self {
        DistinctCounter { exact: Some(HashSet::default()), registers: Vec::new() }
    }
}

impl DistinctCounter {
    /// Adds a (well-mixed) 64-bit hash.
    pub fn add(&mut self, h: u64) {
        if let Some(set) = &mut self.exact {
            set.insert(h);
            if set.len() > EXACT_LIMIT {
                let set = self.exact.take().unwrap_or_default();
                self.registers = vec![0; M];
                for h in set {
                    self.add_sketch(h);
                }
            }
            return;
        }
        self.add_sketch(h);
    }

    fn add_sketch(&mut self, h: u64) {
        let idx = (h >> (64 - P)) as usize;
        let rest = (h << P) | (1 << (P - 1));
        let rank = rest.leading_zeros() as u8 + 1;
        if rank > self.registers[idx] {
            self.registers[idx] = rank;
        }
    }

    /// Whether [`DistinctCounter::count`] is exact.
    pub fn is_exact(&self) -> bool {
        self.exact.is_some()
    }

    pub fn count(&self) -> u64 {
        if let Some(set) = &self.exact {
            return set.len() as u64;
        }
        let m = M as f64;
        let alpha = 0.7213 / (1.0 + 1.079 / m);
        let sum: f64 = self.registers.iter().map(|&r| 2f64.powi(-(r as i32))).sum();
        let raw = alpha * m * m / sum;
        let zeros = self.registers.iter().filter(|&&r| r == 0).count();
        let est = if raw <= 2.5 * m && zeros > 0 { m * (m / zeros as f64).ln() } else { raw };
        est.round() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_detector::hash::hash_str;

    #[test]
    fn exact_below_the_limit_and_close_above() {
        let mut c = DistinctCounter::default();
        for i in 0..1000 {
            c.add(hash_str(0, &format!("a{}", i % 500)));
        }
        assert_eq!(c.count(), 500);
        assert!(c.is_exact());
        for i in 0..1_000_000 {
            c.add(hash_str(0, &format!("b{i}")));
        }
        assert!(!c.is_exact());
        let n = c.count() as f64;
        assert!((n / 1_000_500.0 - 1.0).abs() < 0.03, "{n}");
    }
}
