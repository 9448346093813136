//! The engine: a fixed number of shards (agents assigned by a stable hash of `agent_id`) and the class
//! table they share, synchronised at deterministic barriers.
//!
//! The number of shards and the barrier interval are configuration, never derived from the machine,
//! so any number of threads (each owning a subset of the shards) produces byte-identical output. A
//! barrier falls after every `class_sync_events` events in input order; at it the shards' class logs
//! are applied to the class table in shard order ([`crate::classes`]).

use crate::alert::Position;
use crate::classes::ClassTable;
use crate::config::{ConfigError, EngineConfig};
use crate::event::Event;
use crate::hash::{hash_str, ns};
use crate::shard::{Shard, ShardStats, Verdict};
use crate::snapshot::SnapshotError;

/// Why an engine could not be restored from a snapshot.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
}
use crate::score::model::{FeatureRow, ModelSet};
use std::sync::Arc;
use vigil_rules::Pack;

pub struct Engine {
    cfg: Arc<EngineConfig>,
    shards: Vec<Shard>,
    classes: ClassTable,
    /// Events processed since the last barrier.
    since_sync: usize,
    pack: Arc<Pack>,
    models: Option<Arc<ModelSet>>,
}

impl Engine {
    /// An engine with empty state and the built-in default rule pack; fails on an invalid configuration.
    pub fn new(cfg: EngineConfig) -> Result<Engine, ConfigError> {
        Engine::with_pack(cfg, Arc::new(crate::rules::default_pack()))
    }

    /// An engine with empty state evaluating `pack`.
    pub fn with_pack(cfg: EngineConfig, pack: Arc<Pack>) -> Result<Engine, ConfigError> {
        cfg.validate()?;
        let cfg = Arc::new(cfg);
        let shards = (0..cfg.engine.shards).map(|i| Shard::new(Arc::clone(&cfg), i, Arc::clone(&pack))).collect();
        let classes = ClassTable::new(cfg.engine.max_classes);
        Ok(Engine { cfg, shards, classes, since_sync: 0, pack, models: None })
    }

    /// Replaces the rule pack atomically between events (hot reload).
    pub fn set_pack(&mut self, pack: Arc<Pack>) {
        for s in &mut self.shards {
            s.set_pack(Arc::clone(&pack));
        }
        self.pack = pack;
    }

    /// Replaces the learned models atomically between events (hot reload); `None` turns them off.
    /// Per-agent feature windows carry over: they do not depend on the models.
    pub fn set_models(&mut self, models: Option<Arc<ModelSet>>) {
        for s in &mut self.shards {
            s.set_models(models.clone());
        }
        self.models = models;
    }

    /// The learned models in use.
    pub fn models(&self) -> Option<&Arc<ModelSet>> {
        self.models.as_ref()
    }

    /// Feature vectors gathered by a collecting model set ([`ModelSet::collector`]), shard by shard,
    /// leaving none.
    pub fn take_feature_rows(&mut self) -> Vec<FeatureRow> {
        self.shards.iter_mut().flat_map(|s| s.take_feature_rows()).collect()
    }

    /// The rule pack in use.
    pub fn pack(&self) -> &Arc<Pack> {
        &self.pack
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

    pub fn classes(&self) -> &ClassTable {
        &self.classes
    }

    /// Processes one event on its shard (the single-threaded path), with barriers as configured.
    pub fn process(&mut self, ev: &Event, pos: Position) -> Verdict {
        let s = self.shard_of(&ev.agent_id);
        let v = self.shards[s].process(&self.classes, ev, pos);
        self.finish_events(1);
        v
    }

    /// Events that may still be processed before the next barrier.
    pub fn until_sync(&self) -> usize {
        self.cfg.engine.class_sync_events - self.since_sync
    }

    /// The class table (read-only) and the shards, for drivers that process shards in parallel. They
    /// must process at most [`Engine::until_sync`] events, then call [`Engine::finish_events`].
    pub fn parts(&mut self) -> (&ClassTable, &mut [Shard]) {
        (&self.classes, &mut self.shards)
    }

    /// Everything a driver needs to run the shards on several threads *and* place the barriers itself
    /// (so that workers need not stop and hand back between epochs): the class table, the shards,
    /// and the count of events processed since the last barrier. The driver must do exactly what
    /// [`Engine::finish_events`] does: when the count reaches `class_sync_events`, apply every shard's
    /// [`Shard::class_log`] to the table in shard order ([`ClassTable::apply`]) and reset the count to
    /// 0, before any later event is processed; and leave the count as it stands when it is done.
    pub fn parts_mut(&mut self) -> (&mut ClassTable, &mut [Shard], &mut usize) {
        (&mut self.classes, &mut self.shards, &mut self.since_sync)
    }

    /// Counts `n` processed events; at the end of an epoch, applies the class logs.
    pub fn finish_events(&mut self, n: usize) {
        self.since_sync += n;
        if self.since_sync >= self.cfg.engine.class_sync_events {
            self.sync();
        }
    }

    /// The barrier: applies every shard's class log, in shard order.
    pub fn sync(&mut self) {
        for s in &mut self.shards {
            self.classes.apply(s.class_log());
        }
        self.classes.refresh();
        self.since_sync = 0;
    }

    /// Counters summed over shards.
    pub fn stats(&self) -> ShardStats {
        let mut total = ShardStats::default();
        for s in &self.shards {
            total.add(s.stats());
        }
        total
    }

    /// The engine state for a snapshot.
    pub(crate) fn to_snapshot(&self) -> crate::snapshot::EngineSnapshot {
        crate::snapshot::EngineSnapshot {
            since_sync: self.since_sync as u64,
            shards: self.shards.iter().map(Shard::snapshot).collect(),
            classes: self.classes.clone_table(),
        }
    }

    /// An engine restored from [`Engine::snapshot`] bytes, with `cfg` (which must have the same number
    /// of shards as the snapshot).
    pub fn restore(cfg: EngineConfig, bytes: &[u8]) -> Result<Engine, RestoreError> {
        Engine::restore_with_pack(cfg, Arc::new(crate::rules::default_pack()), bytes)
    }

    /// [`Engine::restore`] with a rule pack.
    pub fn restore_with_pack(cfg: EngineConfig, pack: Arc<Pack>, bytes: &[u8]) -> Result<Engine, RestoreError> {
        cfg.validate()?;
        let snap = crate::snapshot::decode(bytes)?;
        if snap.shards.len() != cfg.engine.shards {
            return Err(SnapshotError::Shards { found: snap.shards.len(), expected: cfg.engine.shards }.into());
        }
        let cfg = Arc::new(cfg);
        let shards = snap
            .shards
            .into_iter()
            .enumerate()
            .map(|(i, s)| Shard::restore(Arc::clone(&cfg), i, Arc::clone(&pack), s))
            .collect::<Result<Vec<_>, _>>()
            .map_err(SnapshotError::Payload)?;
        let mut classes = snap.classes;
        classes.validate_restored(cfg.engine.max_classes).map_err(SnapshotError::Payload)?;
        let since_sync = (snap.since_sync as usize).min(cfg.engine.class_sync_events.saturating_sub(1));
        Ok(Engine { cfg, shards, classes, since_sync, pack, models: None })
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
