//! Stable 64-bit hashing of strings: symbols, vocabulary keys and shard assignment.
//!
//! Outputs must never change between runs, machines or versions of the standard library (they decide
//! shard placement and therefore replay output), so this is a fixed function, not `std`'s randomly keyed
//! hasher. It is a word-at-a-time multiply–rotate hash with a strong final mix. Maps keyed by
//! attacker-chosen values whose iteration order does not matter (agent ids, class hashes) use a
//! randomly seeded hasher instead, [`KeyedState`]: an attacker cannot precompute collisions for it.

/// The randomly seeded hasher of lookup-only maps keyed by attacker-chosen values: `foldhash`, seeded
/// per map from per-process randomness (several times cheaper than `std`'s SipHash on short keys, which
/// matters on the per-event path).
pub type KeyedState = foldhash::fast::RandomState;

const K: u64 = 0x9E37_79B9_7F4A_7C15;

#[inline]
fn mix(h: u64, w: u64) -> u64 {
    (h ^ w).wrapping_mul(K).rotate_left(31)
}

/// A stable 64-bit hash of `bytes`, seeded by `seed` (use distinct seeds for distinct namespaces).
#[inline]
pub fn hash_bytes(seed: u64, bytes: &[u8]) -> u64 {
    let mut h = seed ^ (bytes.len() as u64).wrapping_mul(K);
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        // chunks_exact yields 8-byte slices.
        h = mix(h, u64::from_le_bytes(c.try_into().expect("8-byte chunk")));
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut buf = [0u8; 8];
        buf[..rest.len()].copy_from_slice(rest);
        h = mix(h, u64::from_le_bytes(buf));
    }
    finish(h)
}

/// A stable hash of a string in namespace `seed`.
#[inline]
pub fn hash_str(seed: u64, s: &str) -> u64 {
    hash_bytes(seed, s.as_bytes())
}

/// Combines two hashes.
#[inline]
pub fn combine(a: u64, b: u64) -> u64 {
    finish(mix(a.rotate_left(17), b))
}

/// Final avalanche (the murmur3 / splitmix finaliser).
#[inline]
pub fn finish(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
    h ^= h >> 33;
    h = h.wrapping_mul(0xC4CE_B9FE_1A85_EC53);
    h ^ (h >> 33)
}

/// Namespaces, so equal strings in different roles get unrelated keys.
pub mod ns {
    pub const SHARD: u64 = 0x5348_4152_4400_0001;
    pub const CLASS: u64 = 0x434C_4153_5300_0002;
    pub const SYMBOL: u64 = 0x5359_4D42_4F4C_0003;
    pub const SESSION: u64 = 0x5345_5353_494F_0004;
    pub const VALUE: u64 = 0x5641_4C55_4500_0005;
    pub const EVENT_ID: u64 = 0x4556_4944_0000_0006;
    pub const NAME: u64 = 0x4E41_4D45_0000_0007;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_stable_across_versions() {
        // Pinned: these decide shard placement, and so the output of every replay.
        let pinned = [hash_str(0, ""), hash_str(0, "a"), hash_str(1, "support-bot-007")];
        assert_eq!(pinned, PINNED);
    }

    const PINNED: [u64; 3] = [0, 16_959_273_658_024_207_090, 5_786_093_539_200_174_010];

    #[test]
    fn distinct_inputs_spread() {
        let mut seen = std::collections::HashSet::new();
        for i in 0..10_000 {
            assert!(seen.insert(hash_str(0, &format!("agent-{i}"))));
        }
        let mut per_shard = [0u32; 16];
        for i in 0..16_000 {
            per_shard[(hash_str(ns::SHARD, &format!("agent-{i}")) % 16) as usize] += 1;
        }
        assert!(per_shard.iter().all(|&c| (800..1200).contains(&c)), "{per_shard:?}");
    }
}
