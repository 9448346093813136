//! Kafka mode: consume agent event topics as a consumer group, one engine per assigned partition.
//!
//! A partition is the natural shard: its messages are keyed by `agent_id`, so each agent's events
//! arrive in order on one partition, and an engine per partition makes the partition the unit of
//! state hand-over between instances.
//!
//! **At least once, nothing lost.** Alerts and rejects are produced as messages are processed; every
//! `checkpoint_interval_secs` the loop (1) flushes the sinks (every message acknowledged by the
//! broker, files fsynced), (2) saves each partition's engine snapshot with the offset after the last
//! message it reflects (state directory, or the compacted state topic in group mode), and (3) commits
//! those offsets. A crash anywhere in between reprocesses from the last checkpoint with the state of
//! that checkpoint, which yields the same alerts with the same ids (receivers de-duplicate). A failed
//! flush rewinds the partitions to their last checkpoint instead of committing past lost output.
//!
//! **Rebalances** (cooperative-sticky): partitions being revoked are flushed, checkpointed and
//! committed inside the rebalance callback, before they are given up; partitions being assigned are
//! restored from their checkpoint and start at its offset.

use crate::config::{KafkaConfig, OutputConfig};
use crate::metrics::Metrics;
use crate::processor::Processor;
use crate::reload::{ModelUpdates, PackUpdates};
use crate::sinks::{AlertSink, FileLines, KafkaAlertSink, RejectSink, SinkError, TopicProducer};
use crate::store::{Checkpoint, StateDir, StoreError};
use crate::worker::{deliver, now_ms};
use crate::SourceNames;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, RebalanceProtocol};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use vigil_detector::alert::Position;
use vigil_detector::score::model::ModelSet;
use vigil_detector::{Engine, EngineConfig};
use vigil_rules::Pack;

/// How long Kafka operations on the control path (metadata, commits, state reads) may take.
const KAFKA_TIMEOUT: Duration = Duration::from_secs(30);

/// Properties only a consumer understands (librdkafka warns when a producer is given them).
const CONSUMER_ONLY: &[&str] = &[
    "session.timeout.ms",
    "heartbeat.interval.ms",
    "max.poll.interval.ms",
    "auto.offset.reset",
    "partition.assignment.strategy",
    "group.instance.id",
    "group.protocol",
    "isolation.level",
    "fetch.min.bytes",
    "fetch.max.bytes",
    "fetch.wait.max.ms",
    "max.partition.fetch.bytes",
    "queued.min.messages",
    "queued.max.messages.kbytes",
    "fetch.queue.backoff.ms",
];

/// The librdkafka configuration of vigil's producers: brokers plus the pass-through properties (TLS,
/// SASL, ...) that are not consumer-only.
pub fn client_config(k: &KafkaConfig) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &k.brokers);
    for (key, v) in &k.properties {
        if !CONSUMER_ONLY.contains(&key.as_str()) {
            c.set(key, v);
        }
    }
    c
}

/// The configuration of vigil's consumers: brokers plus every pass-through property.
fn consumer_config(k: &KafkaConfig) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &k.brokers);
    for (key, v) in &k.properties {
        c.set(key, v);
    }
    c
}

/// Where partition checkpoints live.
pub enum CheckpointStore {
    /// State in memory only: a restart starts cold from the committed offsets.
    None,
    /// A local state directory (single node, or a volume the instances share).
    Dir(StateDir),
    /// A compacted changelog topic (group mode).
    Topic(StateTopic),
}

impl CheckpointStore {
    fn load_many(&mut self, names: &[String]) -> Result<HashMap<String, Checkpoint>, StoreError> {
        let mut out = HashMap::new();
        match self {
            CheckpointStore::None => {}
            CheckpointStore::Dir(d) => {
                for n in names {
                    match d.load(n) {
                        Ok(Some(c)) => {
                            out.insert(n.clone(), c);
                        }
                        Ok(None) => {}
                        // One corrupt checkpoint costs that partition its state, not the others theirs.
                        Err(e) => tracing::warn!(checkpoint = %n, error = %e, "Checkpoint unusable; starting cold."),
                    }
                }
            }
            CheckpointStore::Topic(t) => return t.load_many(names),
        }
        Ok(out)
    }

    fn save(&mut self, name: &str, c: &Checkpoint) -> Result<(), StoreError> {
        match self {
            CheckpointStore::None => Ok(()),
            CheckpointStore::Dir(d) => d.save(name, c),
            CheckpointStore::Topic(t) => t.save(name, c),
        }
    }

    fn durable(&self) -> bool {
        !matches!(self, CheckpointStore::None)
    }
}

/// Checkpoints in a compacted topic. A checkpoint can be larger than a Kafka message, so it is written
/// as chunks under generation-specific keys (`NAME@GEN#i`), then a manifest under `NAME` naming the
/// generation, the chunk count and a checksum; older generations' chunks are then deleted with
/// tombstones. A reader takes the last manifest of a name and its chunks; a manifest is produced only
/// after its chunks are acknowledged, so a reader that sees it sees them.
pub struct StateTopic {
    base: ClientConfig,
    topic: String,
    producer: TopicProducer,
    /// Generation and chunk count last written (or read) per name, for the tombstones.
    written: HashMap<String, (u64, u32)>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Manifest {
    generation: u64,
    chunks: u32,
    len: u64,
    crc: u32,
}

/// Chunk size: well under the 1 MiB default message limit of brokers.
const CHUNK_BYTES: usize = 512 * 1024;

fn chunk_key(name: &str, generation: u64, i: u32) -> String {
    format!("{name}@{generation:016x}#{i}")
}

impl StateTopic {
    pub fn new(base: &ClientConfig, topic: &str) -> Result<StateTopic, SinkError> {
        Ok(StateTopic {
            base: base.clone(),
            topic: topic.to_string(),
            producer: TopicProducer::new(base, topic)?,
            written: HashMap::new(),
        })
    }

    fn err(&self, e: impl std::fmt::Display) -> StoreError {
        StoreError::Corrupt { path: format!("state topic {}", self.topic), error: e.to_string() }
    }

    fn save(&mut self, name: &str, c: &Checkpoint) -> Result<(), StoreError> {
        let bytes = c.encode();
        // Unique per write, so a concurrent writer of the same name cannot mix chunks with ours.
        let generation = (now_ms() as u64) << 20 ^ u64::from(std::process::id()) ^ (bytes.len() as u64) << 40;
        let chunks: Vec<&[u8]> = bytes.chunks(CHUNK_BYTES).collect();
        let write = |p: &mut TopicProducer, key: &str, v: Option<&[u8]>| match v {
            Some(v) => p.send(Some(key.as_bytes()), v),
            None => p.send_tombstone(key.as_bytes()),
        };
        for (i, chunk) in chunks.iter().enumerate() {
            write(&mut self.producer, &chunk_key(name, generation, i as u32), Some(chunk)).map_err(|e| self.err(e))?;
        }
        self.producer.flush().map_err(|e| self.err(e))?;
        let m = Manifest { generation, chunks: chunks.len() as u32, len: bytes.len() as u64, crc: crc32(&bytes) };
        let manifest = postcard::to_allocvec(&m).map_err(|e| self.err(e))?;
        write(&mut self.producer, name, Some(&manifest)).map_err(|e| self.err(e))?;
        self.producer.flush().map_err(|e| self.err(e))?;
        if let Some((old_gen, old_chunks)) = self.written.insert(name.to_string(), (generation, m.chunks)) {
            for i in 0..old_chunks {
                write(&mut self.producer, &chunk_key(name, old_gen, i), None).map_err(|e| self.err(e))?;
            }
            // Tombstones are housekeeping: they need not be acknowledged before the offset commit.
        }
        Ok(())
    }

    /// Reads the whole topic (to its high watermarks) and assembles the latest checkpoint of each name.
    fn load_many(&mut self, names: &[String]) -> Result<HashMap<String, Checkpoint>, StoreError> {
        let mut out = HashMap::new();
        if names.is_empty() {
            return Ok(out);
        }
        let mut cfg = self.base.clone();
        cfg.set("group.id", "vigil-state-reader")
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "false");
        let consumer: BaseConsumer = cfg.create().map_err(|e| self.err(e))?;
        let md = consumer.fetch_metadata(Some(&self.topic), KAFKA_TIMEOUT).map_err(|e| self.err(e))?;
        let partitions: Vec<i32> = md
            .topics()
            .iter()
            .filter(|t| t.name() == self.topic)
            .flat_map(|t| t.partitions().iter().map(|p| p.id()))
            .collect();
        let mut tpl = TopicPartitionList::new();
        let mut ends = HashMap::new();
        for p in partitions {
            let (low, high) = consumer.fetch_watermarks(&self.topic, p, KAFKA_TIMEOUT).map_err(|e| self.err(e))?;
            if high > low {
                tpl.add_partition_offset(&self.topic, p, Offset::Beginning).map_err(|e| self.err(e))?;
                ends.insert(p, high);
            }
        }
        if ends.is_empty() {
            return Ok(out);
        }
        consumer.assign(&tpl).map_err(|e| self.err(e))?;
        let wanted = |key: &str| {
            names.iter().any(|n| key == n || key.strip_prefix(n.as_str()).is_some_and(|r| r.starts_with('@')))
        };
        let mut latest: HashMap<String, Option<Vec<u8>>> = HashMap::new();
        let deadline = Instant::now() + KAFKA_TIMEOUT;
        while !ends.is_empty() {
            if Instant::now() > deadline {
                return Err(self.err("timed out reading the state topic"));
            }
            let Some(msg) = consumer.poll(Duration::from_millis(200)) else { continue };
            let msg = msg.map_err(|e| self.err(e))?;
            if let Some(key) = msg.key().and_then(|k| std::str::from_utf8(k).ok()) {
                if wanted(key) {
                    latest.insert(key.to_string(), msg.payload().map(<[u8]>::to_vec));
                }
            }
            if ends.get(&msg.partition()).is_some_and(|&end| msg.offset() + 1 >= end) {
                ends.remove(&msg.partition());
            }
        }
        for name in names {
            let Some(Some(manifest)) = latest.get(name) else { continue };
            let assembled = postcard::from_bytes::<Manifest>(manifest).map_err(|e| e.to_string()).and_then(|m| {
                let mut bytes = Vec::with_capacity(m.len as usize);
                for i in 0..m.chunks {
                    match latest.get(&chunk_key(name, m.generation, i)) {
                        Some(Some(c)) => bytes.extend_from_slice(c),
                        _ => return Err(format!("chunk {i} of generation {:x} is missing", m.generation)),
                    }
                }
                if bytes.len() as u64 != m.len || crc32(&bytes) != m.crc {
                    return Err("chunks do not match the manifest's length and checksum".into());
                }
                self.written.insert(name.clone(), (m.generation, m.chunks));
                Checkpoint::decode(&bytes).map_err(|e| e.to_string())
            });
            match assembled {
                Ok(c) => {
                    out.insert(name.clone(), c);
                }
                Err(e) => tracing::warn!(checkpoint = %name, error = %e, "Checkpoint unusable; starting cold."),
            }
        }
        Ok(out)
    }
}

/// CRC-32 (IEEE), bitwise: checkpoints are written every few seconds, not per event.
fn crc32(bytes: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in bytes {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 != 0 { (c >> 1) ^ 0xEDB8_8320 } else { c >> 1 };
        }
    }
    !c
}

/// One assigned partition.
struct Task {
    processor: Processor,
    source: u32,
    /// The offset of the next message to process.
    next_offset: i64,
    /// Offset and state of the last checkpoint (`None`: started cold at the committed offset).
    checkpointed: Option<i64>,
    /// Where the partition started when it had no checkpoint (for a rewind).
    start: Offset,
    dirty: bool,
}

/// Everything the consumer loop and the rebalance callback share.
pub struct Partitions {
    group_id: String,
    engine_cfg: EngineConfig,
    pack: Arc<Pack>,
    /// Learned models every partition's engine scores with.
    models: Option<Arc<ModelSet>>,
    tasks: BTreeMap<(String, i32), Task>,
    source_of: HashMap<(String, i32), u32>,
    sources: SourceNames,
    alerts: Box<dyn AlertSink>,
    rejects: Box<dyn RejectSink>,
    store: CheckpointStore,
    metrics: Arc<Metrics>,
}

impl Partitions {
    fn checkpoint_name(&self, topic: &str, partition: i32) -> String {
        format!("kafka-{}-{topic}-{partition}", self.group_id)
    }

    fn source(&mut self, topic: &str, partition: i32) -> u32 {
        let key = (topic.to_string(), partition);
        if let Some(&s) = self.source_of.get(&key) {
            return s;
        }
        let s = self.sources.len() as u32;
        self.sources.push(format!("{topic}/{partition}"));
        self.source_of.insert(key, s);
        s
    }

    /// Creates tasks for newly assigned partitions, restored from their checkpoints, and points the
    /// assignment at the checkpoints' offsets.
    fn assign(&mut self, tpl: &mut TopicPartitionList) {
        let parts: Vec<(String, i32)> = tpl.elements().iter().map(|e| (e.topic().to_string(), e.partition())).collect();
        let names: Vec<String> = parts.iter().map(|(t, p)| self.checkpoint_name(t, *p)).collect();
        let mut loaded = match self.store.load_many(&names) {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(error = %e, "Cannot read checkpoints; assigned partitions start cold.");
                HashMap::new()
            }
        };
        for ((topic, partition), name) in parts.into_iter().zip(names) {
            let source = self.source(&topic, partition);
            let ckpt = loaded.remove(&name);
            let restored = ckpt.as_ref().and_then(|c| {
                match Engine::restore_with_pack(self.engine_cfg.clone(), Arc::clone(&self.pack), &c.engine) {
                    Ok(e) => Some((e, c.next_offset)),
                    Err(e) => {
                        tracing::warn!(checkpoint = %name, error = %e, "Checkpoint refused; starting cold.");
                        None
                    }
                }
            });
            let (engine, checkpointed) = match restored {
                Some((e, off)) => {
                    tracing::info!(%topic, partition, offset = off, agents = e.agents(), "Partition restored from its checkpoint.");
                    let _ = tpl.set_partition_offset(&topic, partition, Offset::Offset(off));
                    (e, Some(off))
                }
                None => {
                    tracing::info!(%topic, partition, "Partition starts cold at its committed offset.");
                    let e = Engine::with_pack(self.engine_cfg.clone(), Arc::clone(&self.pack))
                        .expect("the engine configuration was validated at start");
                    (e, None)
                }
            };
            let start = match checkpointed {
                Some(o) => Offset::Offset(o),
                None => Offset::Stored,
            };
            let mut engine = engine;
            engine.set_models(self.models.clone());
            let task =
                Task { processor: Processor::new(engine), source, next_offset: -1, checkpointed, start, dirty: false };
            self.tasks.insert((topic, partition), task);
        }
        self.metrics.partitions_assigned.set(self.tasks.len() as i64);
        self.metrics.agents_tracked.set(self.tasks.values().map(|t| t.processor.engine.agents() as i64).sum());
    }

    /// Processes one message of an assigned partition.
    fn process(
        &mut self,
        topic: &str,
        partition: i32,
        offset: i64,
        key: Option<&[u8]>,
        payload: &[u8],
        now_ms: i64,
    ) -> Result<(), SinkError> {
        // A linear scan: an instance owns a handful of partitions, and it allocates nothing.
        let task = self.tasks.iter_mut().find(|((t, p), _)| *p == partition && t == topic).map(|(_, t)| t);
        let Some(task) = task else {
            // A message of a partition revoked a moment ago: its new owner processes it.
            return Ok(());
        };
        self.metrics.events_received.inc();
        let pos = Position { source: task.source, offset: offset as u64 };
        let outcome = task.processor.process_bytes(payload, key, pos, &self.sources, now_ms);
        task.next_offset = offset + 1;
        task.dirty = true;
        deliver(&outcome, key, &self.metrics, &mut *self.alerts, &mut *self.rejects, &self.sources)
    }

    /// Flushes the sinks, checkpoints the dirty partitions among `which` (all when `None`) and commits
    /// their offsets. On a sink failure nothing is committed and the partitions are rewound to their
    /// last checkpoint.
    fn checkpoint(
        &mut self,
        consumer: &BaseConsumer<GroupContext>,
        which: Option<&[(String, i32)]>,
    ) -> Result<(), String> {
        let selected: Vec<(String, i32)> = self
            .tasks
            .iter()
            .filter(|(k, t)| t.dirty && which.is_none_or(|w| w.contains(k)))
            .map(|(k, _)| k.clone())
            .collect();
        if selected.is_empty() {
            return Ok(());
        }
        if let Err(e) = self.rejects.flush().and_then(|_| self.alerts.flush()) {
            self.metrics.checkpoints.with_label_values(&["error"]).inc();
            self.rewind(consumer);
            return Err(format!("output not durable, partitions rewound to their last checkpoint: {e}"));
        }
        let mut tpl = TopicPartitionList::new();
        for key in &selected {
            let name = self.checkpoint_name(&key.0, key.1);
            let task = self.tasks.get_mut(key).expect("selected from the tasks");
            if self.store.durable() {
                let c = Checkpoint {
                    next_offset: task.next_offset,
                    taken_at_ms: now_ms(),
                    engine: task.processor.engine.snapshot(),
                };
                if let Err(e) = self.store.save(&name, &c) {
                    self.metrics.checkpoints.with_label_values(&["error"]).inc();
                    // The output is durable, so committing would lose nothing; but without the state the
                    // next owner would start cold. Keep the offset uncommitted and try again next time.
                    return Err(format!("checkpoint {name}: {e}"));
                }
                task.checkpointed = Some(task.next_offset);
            }
            task.dirty = false;
            let _ = tpl.add_partition_offset(&key.0, key.1, Offset::Offset(task.next_offset));
        }
        self.metrics.checkpoints.with_label_values(&["ok"]).inc();
        self.metrics.checkpoint_age_seconds.set(0.0);
        if let Err(e) = consumer.commit(&tpl, CommitMode::Sync) {
            // Harmless for correctness: the checkpoint holds the offset and a restart resumes there.
            tracing::warn!(error = %e, "Offset commit failed; the checkpoint holds the position.");
        }
        Ok(())
    }

    /// Restores every partition to its last checkpoint (or a cold engine at its start) and seeks there.
    fn rewind(&mut self, consumer: &BaseConsumer<GroupContext>) {
        let names: Vec<String> = self.tasks.keys().map(|(t, p)| self.checkpoint_name(t, *p)).collect();
        let mut loaded = self.store.load_many(&names).unwrap_or_default();
        for (((topic, partition), task), name) in self.tasks.iter_mut().zip(names) {
            let from_ckpt = loaded.remove(&name).and_then(|c| {
                Engine::restore_with_pack(self.engine_cfg.clone(), Arc::clone(&self.pack), &c.engine)
                    .ok()
                    .map(|e| (e, c.next_offset))
            });
            let (engine, offset) = match from_ckpt {
                Some((e, o)) => (e, Offset::Offset(o)),
                None => (
                    Engine::with_pack(self.engine_cfg.clone(), Arc::clone(&self.pack)).expect("validated at start"),
                    task.start,
                ),
            };
            let mut engine = engine;
            engine.set_models(self.models.clone());
            task.processor = Processor::new(engine);
            task.dirty = false;
            if let Err(e) = consumer.seek(topic, *partition, offset, KAFKA_TIMEOUT) {
                tracing::error!(%topic, partition, error = %e, "Cannot seek back after a failed flush.");
            }
        }
    }

    fn revoke(&mut self, consumer: &BaseConsumer<GroupContext>, tpl: &TopicPartitionList) {
        let parts: Vec<(String, i32)> = tpl.elements().iter().map(|e| (e.topic().to_string(), e.partition())).collect();
        if consumer.assignment_lost() {
            tracing::warn!(partitions = parts.len(), "Assignment lost; partitions dropped without a commit.");
        } else if let Err(e) = self.checkpoint(consumer, Some(&parts)) {
            tracing::error!(error = %e, "Checkpoint before giving up partitions failed; their new owner reprocesses.");
        }
        for p in &parts {
            self.tasks.remove(p);
            tracing::info!(topic = %p.0, partition = p.1, "Partition revoked.");
        }
        self.metrics.partitions_assigned.set(self.tasks.len() as i64);
    }

    fn set_models(&mut self, models: Option<Arc<ModelSet>>) {
        for t in self.tasks.values_mut() {
            t.processor.engine.set_models(models.clone());
        }
        self.models = models;
    }

    fn set_pack(&mut self, pack: Arc<Pack>) {
        for t in self.tasks.values_mut() {
            t.processor.engine.set_pack(Arc::clone(&pack));
        }
        self.pack = pack;
    }

    fn update_gauges(&self) {
        let agents = self.tasks.values().map(|t| t.processor.engine.agents() as i64).sum();
        self.metrics.agents_tracked.set(agents);
    }
}

/// The consumer context: rebalance callbacks run on the consumer thread, inside `poll`.
pub struct GroupContext {
    parts: Arc<Mutex<Partitions>>,
    metrics: Arc<Metrics>,
}

impl ClientContext for GroupContext {
    /// librdkafka's statistics (every `statistics.interval.ms`): consumer lag per owned partition,
    /// measured against the committed offset, i.e. the progress that is durable.
    fn stats(&self, s: rdkafka::Statistics) {
        for (topic, t) in &s.topics {
            for (partition, p) in &t.partitions {
                if *partition >= 0 && p.consumer_lag >= 0 {
                    self.metrics.consumer_lag.with_label_values(&[topic, &partition.to_string()]).set(p.consumer_lag);
                }
            }
        }
    }
}

impl ConsumerContext for GroupContext {
    fn rebalance(&self, consumer: &BaseConsumer<Self>, err: RDKafkaRespErr, tpl: &mut TopicPartitionList) {
        let cooperative = matches!(consumer.rebalance_protocol(), RebalanceProtocol::Cooperative);
        let Ok(mut parts) = self.parts.lock() else { return };
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                parts.assign(tpl);
                let r = if cooperative { consumer.incremental_assign(tpl) } else { consumer.assign(tpl) };
                if let Err(e) = r {
                    tracing::error!(error = %e, "Partition assignment failed.");
                }
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                parts.revoke(consumer, tpl);
                let r = if cooperative { consumer.incremental_unassign(tpl) } else { consumer.unassign() };
                if let Err(e) = r {
                    tracing::error!(error = %e, "Partition revocation failed.");
                }
            }
            other => {
                tracing::error!(error = ?other, "Rebalance error.");
                let _ = consumer.unassign();
            }
        }
    }
}

/// Everything Kafka mode needs.
pub struct KafkaOptions {
    pub kafka: KafkaConfig,
    pub engine: EngineConfig,
    pub output: OutputConfig,
    pub pack: Arc<Pack>,
    pub state_dir: Option<StateDir>,
    /// Containment webhooks: alerts go to their outbox when the alert sink is flushed.
    pub webhooks: Option<vigil_webhook::Submitter>,
}

/// What stops Kafka mode from starting.
#[derive(Debug, thiserror::Error)]
pub enum KafkaModeError {
    #[error("kafka: {0}")]
    Kafka(#[from] KafkaError),
    #[error(transparent)]
    Sink(#[from] SinkError),
}

/// Runs the consumer loop on the calling thread until `stop` is set, then checkpoints and commits.
/// `ready` is set once the brokers answered and the subscription is in place.
pub fn run(
    opts: KafkaOptions,
    metrics: Arc<Metrics>,
    (mut packs, mut models): (PackUpdates, ModelUpdates),
    stop: Arc<AtomicBool>,
    ready: Arc<AtomicBool>,
) -> Result<(), KafkaModeError> {
    let k = &opts.kafka;
    let base = client_config(k);
    let alerts: Box<dyn AlertSink> = match &k.alerts_topic {
        Some(t) => Box::new(KafkaAlertSink::new(&base, t, opts.output.format)?),
        None => crate::alert_sink(&opts.output),
    };
    let alerts = crate::webhooks::with_webhooks(alerts, opts.webhooks.as_ref());
    let rejects: Box<dyn RejectSink> = match &k.dead_letter_topic {
        Some(t) => Box::new(TopicProducer::new(&base, t)?),
        None => Box::new(FileLines::new(&opts.output.dead_letter_file)),
    };
    let store = match (&k.state_topic, opts.state_dir) {
        (Some(t), _) => CheckpointStore::Topic(StateTopic::new(&base, t)?),
        (None, Some(d)) => CheckpointStore::Dir(d),
        (None, None) => CheckpointStore::None,
    };
    let pack = packs.current().unwrap_or(opts.pack);
    let parts = Arc::new(Mutex::new(Partitions {
        group_id: k.group_id.clone(),
        engine_cfg: opts.engine,
        pack,
        models: models.current(),
        tasks: BTreeMap::new(),
        source_of: HashMap::new(),
        sources: Vec::new(),
        alerts,
        rejects,
        store,
        metrics: Arc::clone(&metrics),
    }));
    let mut cfg = consumer_config(k);
    cfg.set("group.id", &k.group_id)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false");
    if !k.properties.contains_key("partition.assignment.strategy") {
        cfg.set("partition.assignment.strategy", "cooperative-sticky");
    }
    if !k.properties.contains_key("statistics.interval.ms") {
        cfg.set("statistics.interval.ms", "5000");
    }
    if !k.properties.contains_key("auto.offset.reset") {
        cfg.set("auto.offset.reset", "earliest");
    }
    // When the prefetch queue is full librdkafka stops fetching for `fetch.queue.backoff.ms`, 1 s by
    // default: a detector slower than its broker (the normal case) drained the queue and then sat
    // idle for the rest of that second, half the time (a 200k-event topic: 136k events/s with the
    // default, 245k with 10 ms).
    if !k.properties.contains_key("fetch.queue.backoff.ms") {
        cfg.set("fetch.queue.backoff.ms", "10");
    }
    let consumer: BaseConsumer<GroupContext> =
        cfg.create_with_context(GroupContext { parts: Arc::clone(&parts), metrics: Arc::clone(&metrics) })?;
    consumer.fetch_metadata(None, KAFKA_TIMEOUT)?;
    let topics: Vec<&str> = k.topics.iter().map(String::as_str).collect();
    consumer.subscribe(&topics)?;
    ready.store(true, Ordering::Release);
    tracing::info!(brokers = %k.brokers, group = %k.group_id, topics = ?k.topics, "Consuming.");

    let every = Duration::from_secs(k.checkpoint_interval_secs);
    let mut last_checkpoint = Instant::now();
    let mut last_gauges = Instant::now();
    let mut wall = WallClock::new();
    while !stop.load(Ordering::Acquire) {
        if let Some(p) = packs.take_new() {
            parts.lock().expect("partition state lock").set_pack(p);
        }
        if let Some(m) = models.take_new() {
            parts.lock().expect("partition state lock").set_models(Some(m));
        }
        // Two clock reads per message (the processing time), which the timers below reuse.
        let now = match consumer.poll(Duration::from_millis(100)) {
            None => Instant::now(),
            Some(Err(e)) => {
                tracing::warn!(error = %e, "Consumer error.");
                Instant::now()
            }
            Some(Ok(msg)) => {
                let started = Instant::now();
                let mut p = parts.lock().expect("partition state lock");
                let (key, payload) = (msg.key(), msg.payload().unwrap_or(&[]));
                let r = p.process(msg.topic(), msg.partition(), msg.offset(), key, payload, wall.at(started));
                if let Err(e) = r {
                    // A sink refused the output: rewind to the last checkpoint and retry from there.
                    tracing::error!(error = %e, "Output failed; rewinding to the last checkpoint.");
                    p.rewind(&consumer);
                }
                let done = Instant::now();
                metrics.processing_seconds.observe(done.duration_since(started).as_secs_f64());
                done
            }
        };
        if now.duration_since(last_checkpoint) >= every {
            let mut p = parts.lock().expect("partition state lock");
            if let Err(e) = p.checkpoint(&consumer, None) {
                tracing::error!(error = %e, "Checkpoint failed.");
            }
            last_checkpoint = Instant::now();
        } else {
            metrics.checkpoint_age_seconds.set(now.duration_since(last_checkpoint).as_secs_f64());
        }
        if now.duration_since(last_gauges) >= Duration::from_secs(5) {
            parts.lock().expect("partition state lock").update_gauges();
            last_gauges = now;
        }
    }
    tracing::info!("Stopping: final checkpoint and commit.");
    ready.store(false, Ordering::Release);
    {
        let mut p = parts.lock().expect("partition state lock");
        if let Err(e) = p.checkpoint(&consumer, None) {
            tracing::error!(error = %e, "Final checkpoint failed.");
        }
    }
    consumer.unsubscribe();
    Ok(())
}

/// Wall-clock milliseconds from a monotonic reading the caller has taken anyway, re-anchored to the
/// system clock every second: the future-skew check needs second-scale accuracy, not a second clock
/// read per message.
struct WallClock {
    anchor: Instant,
    anchor_ms: i64,
}

impl WallClock {
    fn new() -> WallClock {
        WallClock { anchor: Instant::now(), anchor_ms: now_ms() }
    }

    fn at(&mut self, t: Instant) -> i64 {
        let since = t.saturating_duration_since(self.anchor);
        if since >= Duration::from_secs(1) {
            *self = WallClock::new();
            return self.anchor_ms;
        }
        self.anchor_ms + since.as_millis() as i64
    }
}

/// Reads `topic` from its low to its high watermarks (every partition, as of the call) into one
/// JSON Lines file per partition in `dir` (`<topic>-<partition>.jsonl`), for `vigil replay
/// --kafka-topic`. Events whose `ts` lies outside `[from_ms, to_ms]` are left out; messages that do not
/// decode are kept, so the replay dead-letters them. Returns the files and the messages left out.
pub fn read_topic(
    k: &KafkaConfig,
    topic: &str,
    from_ms: Option<i64>,
    to_ms: Option<i64>,
    dir: &std::path::Path,
) -> Result<(Vec<std::path::PathBuf>, u64), String> {
    use rdkafka::consumer::BaseConsumer;
    use std::io::Write;
    let consumer: BaseConsumer = consumer_config(k)
        .set("group.id", format!("vigil-replay-{}", std::process::id()))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .create()
        .map_err(|e| format!("kafka: {e}"))?;
    let md = consumer.fetch_metadata(Some(topic), KAFKA_TIMEOUT).map_err(|e| format!("kafka metadata: {e}"))?;
    let partitions: Vec<i32> = md
        .topics()
        .iter()
        .find(|t| t.name() == topic && t.error().is_none())
        .map(|t| t.partitions().iter().map(|p| p.id()).collect())
        .unwrap_or_default();
    if partitions.is_empty() {
        return Err(format!("topic {topic:?} does not exist or has no partitions"));
    }
    let mut tpl = TopicPartitionList::new();
    let mut ends = HashMap::new();
    for &p in &partitions {
        let (low, high) = consumer.fetch_watermarks(topic, p, KAFKA_TIMEOUT).map_err(|e| format!("kafka: {e}"))?;
        if high > low {
            ends.insert(p, high);
            tpl.add_partition_offset(topic, p, Offset::Offset(low)).map_err(|e| e.to_string())?;
        }
    }
    let mut files: HashMap<i32, (std::path::PathBuf, std::io::BufWriter<std::fs::File>)> = HashMap::new();
    for &p in ends.keys() {
        let path = dir.join(format!("{topic}-{p}.jsonl"));
        let f = std::fs::File::create(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        files.insert(p, (path, std::io::BufWriter::new(f)));
    }
    consumer.assign(&tpl).map_err(|e| format!("kafka: {e}"))?;
    let limits = vigil_detector::decode::Limits::default();
    let mut left_out = 0;
    // Read to the watermarks taken at the start, then on until the topic is quiet for a second: a
    // broker may report a watermark behind what it has acknowledged (tansu does).
    let mut last_message = std::time::Instant::now();
    loop {
        let Some(m) = consumer.poll(Duration::from_millis(200)) else {
            if ends.is_empty() && last_message.elapsed() >= Duration::from_secs(1) {
                break;
            }
            if last_message.elapsed() >= KAFKA_TIMEOUT {
                return Err(format!("kafka: no message within {KAFKA_TIMEOUT:?} before the end of {topic}"));
            }
            continue;
        };
        last_message = std::time::Instant::now();
        let m = m.map_err(|e| format!("kafka: {e}"))?;
        let p = m.partition();
        let payload = m.payload().unwrap_or_default();
        // Decoded here only to apply a time range (the replay decodes every line anyway).
        let in_range = (from_ms.is_none() && to_ms.is_none())
            || match vigil_detector::decode::decode(payload, &limits) {
                Ok(ev) => from_ms.is_none_or(|f| ev.ts_ms >= f) && to_ms.is_none_or(|t| ev.ts_ms <= t),
                Err(_) => true,
            };
        if in_range {
            let (path, w) = files.get_mut(&p).ok_or_else(|| format!("kafka: a message of unexpected partition {p}"))?;
            // One line per message: a raw newline is never valid inside a JSON string.
            let line: Vec<u8> = payload.iter().map(|&b| if b == b'\n' { b' ' } else { b }).collect();
            w.write_all(&line).and_then(|_| w.write_all(b"\n")).map_err(|e| format!("{}: {e}", path.display()))?;
        } else {
            left_out += 1;
        }
        if ends.get(&p).is_some_and(|&end| m.offset() + 1 >= end) {
            ends.remove(&p);
        }
    }
    let mut out = Vec::new();
    if files.is_empty() {
        // An empty topic replays as an empty input.
        let path = dir.join(format!("{topic}.jsonl"));
        std::fs::File::create(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        out.push(path);
    }
    let mut parts: Vec<_> = files.into_iter().collect();
    parts.sort_by_key(|(p, _)| *p);
    for (_, (path, mut w)) in parts {
        w.flush().map_err(|e| format!("{}: {e}", path.display()))?;
        out.push(path);
    }
    Ok((out, left_out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wall_clock_follows_the_monotonic_reading_and_re_anchors_every_second() {
        let mut w = WallClock::new();
        let (anchor, anchor_ms) = (w.anchor, w.anchor_ms);
        assert_eq!(w.at(anchor), anchor_ms);
        assert_eq!(w.at(anchor + Duration::from_millis(999)), anchor_ms + 999);
        // A reading from before the anchor counts as the anchor.
        assert_eq!(w.at(anchor - Duration::from_millis(5)), anchor_ms);
        let later = w.at(anchor + Duration::from_secs(2));
        assert!(w.anchor > anchor, "re-anchored");
        assert!((later - now_ms()).abs() < 1_000, "{later} vs the system clock");
    }

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn chunk_keys_belong_to_their_name_only() {
        let k = chunk_key("kafka-g-t-1", 0xabc, 2);
        assert_eq!(k, "kafka-g-t-1@0000000000000abc#2");
        assert!(!k.starts_with("kafka-g-t-10"));
    }
}
