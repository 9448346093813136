//! The engine: a fixed number of shards, agents assigned to shards by a stable hash of `agent_id`.
//!
//! The number of shards is configuration, never derived from the machine, so any number of threads
//! (each owning a subset of the shards) produces byte-identical output. In Kafka mode a partition is
//! the natural shard; in replay, shards are processed in parallel and their outputs merged in input
//! order by the driver.

use crate::alert::Position;
use crate::config::{ConfigError, EngineConfig};
use crate::event::Event;
use crate::hash::{hash_str, ns};
use crate::shard::{Shard, ShardStats, Verdict};
use std::sync::Arc;

pub struct Engine {
    cfg: Arc<EngineConfig>,
    shards: Vec<Shard>,
}

impl Engine {
    /// An engine with empty state; fails on an invalid configuration.
    pub fn new(cfg: EngineConfig) -> Result<Engine, ConfigError> {
        cfg.validate()?;
        let cfg = Arc::new(cfg);
        let shards = (0..cfg.engine.shards)
            .map(|_| Shard::new(Arc::clone(&cfg)))
            .collect();
        Ok(Engine { cfg, shards })
    }

    pub fn config(&self) -> &EngineConfig {
        &self.cfg
    }

    /// The shard that owns `agent_id`.
    #[inline]
    pub fn shard_of(&self, agent_id: &str) -> usize {
        shard_of(agent_id, self.shards.len())
    }

    pub fn shards(&self) -> &[Shard] {
        &self.shards
    }

    pub fn shards_mut(&mut self) -> &mut [Shard] {
        &mut self.shards
    }

    /// Processes one event on its shard (the single-threaded path).
    pub fn process(&mut self, ev: &Event, pos: Position) -> Verdict {
        let s = self.shard_of(&ev.agent_id);
        self.shards[s].process(ev, pos)
    }

    /// Counters summed over shards.
    pub fn stats(&self) -> ShardStats {
        let mut total = ShardStats::default();
        for s in &self.shards {
            total.add(s.stats());
        }
        total
    }

    /// Agents currently tracked, over all shards.
    pub fn agents(&self) -> usize {
        self.shards.iter().map(Shard::agents).sum()
    }
}

/// The shard of `agent_id` among `shards`.
#[inline]
pub fn shard_of(agent_id: &str, shards: usize) -> usize {
    (hash_str(ns::SHARD, agent_id) % shards.max(1) as u64) as usize
}
