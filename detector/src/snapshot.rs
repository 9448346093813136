//! Checkpoints: the whole engine state as one checksummed byte string.
//!
//! A snapshot holds every shard (agents with their baselines, alert groups, action cooldowns and rule
//! windows; least-recently-active order; pending class logs) and the class table, plus the barrier
//! counter — everything, so that restoring a snapshot and reprocessing the events after it reproduces
//! exactly the output of a run that never stopped (same scores, same alerts, same ids).
//!
//! Frame: `VIGILSNP` magic, format version (u32 LE), payload length (u64 LE), CRC-32 of the payload
//! (u32 LE), payload (postcard). Anything else — truncation, a flipped bit, another version, a
//! configuration with a different number of shards — is refused with a clear error, never a panic.

use crate::classes::ClassTable;
use crate::engine::Engine;
use crate::shard::ShardSnapshot;
use serde::{Deserialize, Serialize};
use thiserror::Error;

const MAGIC: &[u8; 8] = b"VIGILSNP";
/// Bumped whenever the layout of any state type changes.
pub const FORMAT_VERSION: u32 = 2;

/// Why a snapshot cannot be restored.
#[derive(Debug, Error, PartialEq)]
pub enum SnapshotError {
    /// Not a vigil snapshot, or cut short.
    #[error("not a vigil snapshot (bad header or truncated)")]
    BadFrame,
    /// Written by another format version.
    #[error("snapshot format version {found}, this build reads version {FORMAT_VERSION}")]
    Version { found: u32 },
    /// The payload does not match its checksum.
    #[error("snapshot checksum mismatch (corrupt)")]
    Checksum,
    /// The payload does not decode, or is inconsistent.
    #[error("snapshot payload is invalid: {0}")]
    Payload(String),
    /// The snapshot was taken with a different engine layout.
    #[error("snapshot was taken with {found} shards, the configuration has {expected}")]
    Shards { found: usize, expected: usize },
}

#[derive(Serialize, Deserialize)]
pub(crate) struct EngineSnapshot {
    pub since_sync: u64,
    pub shards: Vec<ShardSnapshot>,
    pub classes: ClassTable,
}

/// Frames a payload.
pub fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 24);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// Checks a frame and returns its payload.
pub fn unframe(bytes: &[u8]) -> Result<&[u8], SnapshotError> {
    if bytes.len() < 24 || &bytes[..8] != MAGIC {
        return Err(SnapshotError::BadFrame);
    }
    let version = u32::from_le_bytes(bytes[8..12].try_into().map_err(|_| SnapshotError::BadFrame)?);
    if version != FORMAT_VERSION {
        return Err(SnapshotError::Version { found: version });
    }
    let len = u64::from_le_bytes(bytes[12..20].try_into().map_err(|_| SnapshotError::BadFrame)?);
    let crc = u32::from_le_bytes(bytes[20..24].try_into().map_err(|_| SnapshotError::BadFrame)?);
    let payload = &bytes[24..];
    if payload.len() as u64 != len {
        return Err(SnapshotError::BadFrame);
    }
    if crc32fast::hash(payload) != crc {
        return Err(SnapshotError::Checksum);
    }
    Ok(payload)
}

impl Engine {
    /// The whole engine state as a checksummed byte string (see the module docs).
    pub fn snapshot(&self) -> Vec<u8> {
        let snap = self.to_snapshot();
        // Serialising plain data into memory cannot fail.
        let payload = postcard::to_allocvec(&snap).expect("engine state serialises");
        frame(&payload)
    }
}

pub(crate) fn decode(bytes: &[u8]) -> Result<EngineSnapshot, SnapshotError> {
    let payload = unframe(bytes)?;
    postcard::from_bytes(payload).map_err(|e| SnapshotError::Payload(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::Position;
    use crate::config::EngineConfig;
    use crate::decode::{decode as decode_event, Limits};
    use crate::shard::Verdict;

    /// A deterministic stream of a few agents: ordinary tool calls and network traffic, then denied
    /// escalation bursts and encoded uploads, so that baselines warm up and alerts fire.
    fn stream(n: usize) -> Vec<String> {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let tools = ["search", "read", "write", "summarise"];
        (0..n)
            .map(|i| {
                let r = next();
                let agent = format!("agent-{}", r % 7);
                let ts = 1_767_225_600_000i64 + (i as i64) * 900;
                let class = if r % 7 < 4 { "alpha" } else { "beta" };
                if i > n / 2 && r % 97 == 0 {
                    format!(r#"{{"ts":{ts},"agent_id":"{agent}","agent":"{class}","kind":"auth","op":"sudo","privileged":true,"outcome":"denied"}}"#)
                } else if i > n / 2 && r % 89 == 0 {
                    let blob: String = (0..400).map(|k| b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"[((r >> (k % 50)) as usize + k * 7) % 64] as char).collect();
                    format!(r#"{{"ts":{ts},"agent_id":"{agent}","agent":"{class}","kind":"net","dest":"drop.example.io:443","bytes_out":900000,"payload":"{blob}"}}"#)
                } else if r % 3 == 0 {
                    format!(r#"{{"ts":{ts},"agent_id":"{agent}","agent":"{class}","session_id":"s{}","kind":"net","dest":"api.internal:443","bytes_out":{}}}"#, r % 5, 300 + r % 700)
                } else {
                    format!(r#"{{"ts":{ts},"agent_id":"{agent}","agent":"{class}","session_id":"s{}","kind":"tool_call","tool":"{}","args":{{"q":"item {}"}}}}"#, r % 5, tools[(r % 4) as usize], r % 50)
                }
            })
            .collect()
    }

    fn run(engine: &mut Engine, lines: &[String], offset: usize) -> Vec<Verdict> {
        lines
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let ev = decode_event(l.as_bytes(), &Limits::default()).unwrap();
                engine.process(&ev, Position { source: 0, offset: (offset + i) as u64 })
            })
            .collect()
    }

    fn config() -> EngineConfig {
        let mut c = EngineConfig::default();
        c.engine.shards = 4;
        c.engine.class_sync_events = 64;
        c
    }

    #[test]
    fn restoring_a_snapshot_reproduces_the_uninterrupted_run() {
        let lines = stream(20_000);
        let mut whole = Engine::new(config()).unwrap();
        let expected = run(&mut whole, &lines, 0);
        assert!(expected.iter().any(|v| v.alert.is_some()), "the stream must raise alerts");

        // Stop mid-epoch (not on a barrier), checkpoint, restore, continue.
        let cut = 12_345;
        let mut first = Engine::new(config()).unwrap();
        let mut got = run(&mut first, &lines[..cut], 0);
        let bytes = first.snapshot();
        drop(first);
        let mut restored = Engine::restore(config(), &bytes).unwrap();
        got.extend(run(&mut restored, &lines[cut..], cut));
        assert_eq!(got, expected);
    }

    #[test]
    fn damaged_snapshots_are_refused() {
        let lines = stream(3_000);
        let mut e = Engine::new(config()).unwrap();
        run(&mut e, &lines, 0);
        let bytes = e.snapshot();
        assert!(Engine::restore(config(), &bytes).is_ok());

        let mut flipped = bytes.clone();
        let mid = flipped.len() / 2;
        flipped[mid] ^= 0x40;
        assert!(matches!(
            Engine::restore(config(), &flipped),
            Err(crate::engine::RestoreError::Snapshot(SnapshotError::Checksum))
        ));
        assert!(matches!(
            Engine::restore(config(), &bytes[..bytes.len() - 3]),
            Err(crate::engine::RestoreError::Snapshot(SnapshotError::BadFrame))
        ));
        assert!(matches!(
            Engine::restore(config(), b"garbage"),
            Err(crate::engine::RestoreError::Snapshot(SnapshotError::BadFrame))
        ));
        let mut other = config();
        other.engine.shards = 8;
        assert!(matches!(
            Engine::restore(other, &bytes),
            Err(crate::engine::RestoreError::Snapshot(SnapshotError::Shards { .. }))
        ));
        let mut future = bytes.clone();
        future[8] = 99;
        assert!(matches!(
            Engine::restore(config(), &future),
            Err(crate::engine::RestoreError::Snapshot(SnapshotError::Version { found: 99 }))
        ));
    }
}
