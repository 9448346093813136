//! vigil's offline path: recorded runs through the very same engine, on event time, as fast as the
//! machine allows, with evaluation against labels.
//!
//! The driver reads inputs in large batches of whole lines ([`input`]), merging several inputs by `ts`
//! ([`merge`]). Each batch goes through three phases:
//!
//! 1. **decode** — lines become [`Event`]s (borrowing from the batch) or rejects;
//! 2. **detect** — every event goes to its shard, in input order, with the class barriers every
//!    `class_sync_events` events;
//! 3. **emit** — sequentially, in input order: dead-letter records, score lines, alerts, evaluation.
//!
//! On one thread the three run line by line. On several, the batches form a pipeline: while the
//! workers decode and detect batch n, the calling thread emits batch n − 1 and reads batch n + 1.
//! Each worker decodes a contiguous chunk of the batch, then runs the events of the shards it owns
//! (a fixed set for the batch), so the number of threads never changes what any shard sees; the
//! workers meet at every class barrier and apply the class logs together, in shard order.
//!
//! Output is therefore byte-identical for any thread count. Memory is bounded by the batch size and
//! the engine's caps, never by the size of the input.

pub mod distinct;
pub mod eval;
pub mod input;
pub mod merge;
pub mod train;

use distinct::DistinctCounter;
use eval::{AlertRef, Evaluator};
use input::{Batch, LineReader};
use merge::Merger;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::sync::Arc;
use std::sync::{Barrier, Mutex, MutexGuard, OnceLock, RwLock};
use std::time::{Duration, Instant};
use thiserror::Error;
use vigil_detector::alert::Action;
use vigil_detector::blast::BlastRadius;
use vigil_detector::classes::ClassTable;
use vigil_detector::config::ConfigError;
use vigil_detector::dead_letter::write_record;
use vigil_detector::decode::{decode_into, Limits, Reason, Reject};
use vigil_detector::engine::shard_of;
use vigil_detector::hash::{hash_str, ns};
use vigil_detector::output::write_score_line;
use vigil_detector::score::model::ModelSet;
use vigil_detector::{Alert, Engine, EngineConfig, Event, Kind, Position, Shard};
use vigil_rules::Pack;

/// What can stop a replay. Every variant is the user's input or environment, not a bug: the CLI maps
/// them to exit status 2 with this message.
#[derive(Debug, Error)]
pub enum ReplayError {
    /// An input cannot be opened (missing, a directory, no permission, not decompressible).
    #[error("cannot open input {path}: {error}")]
    Open { path: String, error: io::Error },
    /// An input failed while being read (I/O error, corrupt compressed stream).
    #[error("cannot read input {path}: {error}")]
    Read { path: String, error: io::Error },
    /// The labels file cannot be read.
    #[error("cannot read labels {path}: {error}")]
    LabelsFile { path: String, error: io::Error },
    /// The labels file is malformed.
    #[error("{path}:{line}: {message}")]
    Labels { path: String, line: usize, message: String },
    /// An output cannot be created or written.
    #[error("cannot write {path}: {error}")]
    Write { path: String, error: io::Error },
    /// The engine configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The worker threads of a parallel replay cannot be started (the system refused new threads).
    #[error("cannot start {threads} worker threads: {message}")]
    Threads { threads: usize, message: String },
}

/// Everything a replay needs.
#[derive(Clone, Debug)]
pub struct ReplayOptions {
    /// Input paths (`-` = stdin); several are merged by `ts`.
    pub inputs: Vec<String>,
    pub engine: EngineConfig,
    /// Alerts as JSON Lines; `-` is stdout.
    pub alerts: String,
    pub scores: Option<String>,
    pub labels: Option<String>,
    pub report: Option<String>,
    /// Rejected lines; created only when a line is rejected.
    pub dead_letter: String,
    /// Worker threads (output does not depend on it).
    pub threads: usize,
    /// Draw a progress line on stderr.
    pub progress: bool,
    /// Bytes of input per batch.
    pub batch_bytes: usize,
    /// The rule pack (default: the built-in pack).
    pub pack: Option<Arc<Pack>>,
    /// Learned models (default: none).
    pub models: Option<Arc<ModelSet>>,
    /// Keep the emitted alerts in the summary (for webhooks after the run).
    pub keep_alerts: bool,
}

impl ReplayOptions {
    pub fn new(inputs: Vec<String>) -> ReplayOptions {
        ReplayOptions {
            inputs,
            engine: EngineConfig::default(),
            alerts: "-".into(),
            scores: None,
            labels: None,
            report: None,
            dead_letter: "rejected.jsonl".into(),
            threads: 1,
            progress: false,
            batch_bytes: 4 << 20,
            pack: None,
            models: None,
            keep_alerts: false,
        }
    }
}

/// The outcome of a replay: the report (as written with `--report`) and a few figures for the caller.
#[derive(Clone, Debug)]
pub struct ReplaySummary {
    pub report: Map<String, Value>,
    pub events: u64,
    pub invalid_events: u64,
    pub alerts: u64,
    pub rejects_by_reason: BTreeMap<&'static str, u64>,
    pub elapsed: Duration,
    /// The emitted alerts, in emission order, when `keep_alerts` was set.
    pub kept_alerts: Vec<Alert>,
    /// Kill actions withheld by the blast-radius cap.
    pub kills_withheld: u64,
}

/// What a detect worker produced for one event.
struct Out {
    duplicate: bool,
    late: bool,
    /// Byte range of the event's score line in [`WorkerOut::scores`].
    score: (u32, u32),
    alert: Option<Box<Alert>>,
    class_agents: u32,
}

/// One input line as the emit stage needs it. It borrows nothing from the batch's decoded events:
/// the lines of batch n are emitted while batch n + 1 is being decoded and detected.
enum LineOut {
    Rejected(Reject),
    Event {
        agent_hash: u64,
        ts_ms: i64,
        /// The worker that detected it (it owns the event's shard).
        worker: u32,
        /// Byte range of `agent_id` in [`WorkerOut::names`] (filled only when evaluating).
        name: (u32, u32),
    },
}

/// What one worker produced for one batch: the emit records of the chunk of lines it decoded, and
/// the detect results for its shards' events, in input order. Reused from batch to batch.
#[derive(Default)]
struct WorkerOut {
    lines: Vec<LineOut>,
    names: String,
    outs: Vec<Out>,
    scores: String,
    /// Events processed per shard (indexed by shard; only this worker's shards count).
    shard_events: Vec<u64>,
    /// Events processed since the last class barrier when the worker finished the batch.
    since_sync: usize,
}

impl WorkerOut {
    fn clear(&mut self) {
        self.lines.clear();
        self.names.clear();
        self.outs.clear();
        self.scores.clear();
        self.shard_events.iter_mut().for_each(|n| *n = 0);
    }
}

enum Source {
    Single(LineReader),
    Merged(Merger),
}

impl Source {
    fn next_batch(&mut self, batch: &mut Batch, target: usize) -> io::Result<bool> {
        match self {
            Source::Single(r) => r.next_batch(batch, target),
            Source::Merged(m) => m.next_batch(batch, target),
        }
    }

    fn bytes_read(&self) -> u64 {
        match self {
            Source::Single(r) => r.bytes_read,
            Source::Merged(m) => m.bytes_read(),
        }
    }
}

/// A lazily created output file.
struct LazyFile {
    path: String,
    file: Option<BufWriter<File>>,
}

impl LazyFile {
    fn get(&mut self) -> Result<&mut BufWriter<File>, ReplayError> {
        if self.file.is_none() {
            let f = File::create(&self.path).map_err(|e| write_err(&self.path, e))?;
            self.file = Some(BufWriter::with_capacity(1 << 16, f));
        }
        Ok(self.file.as_mut().expect("created just above"))
    }

    fn flush(&mut self) -> Result<(), ReplayError> {
        if let Some(f) = &mut self.file {
            f.flush().map_err(|e| write_err(&self.path, e))?;
        }
        Ok(())
    }
}

fn write_err(path: &str, e: io::Error) -> ReplayError {
    ReplayError::Write { path: path.to_string(), error: e }
}

fn create(path: &str) -> Result<Box<dyn Write>, ReplayError> {
    if path == "-" {
        return Ok(Box::new(BufWriter::with_capacity(1 << 16, io::stdout())));
    }
    let f = File::create(path).map_err(|e| write_err(path, e))?;
    Ok(Box::new(BufWriter::with_capacity(1 << 20, f)))
}

/// Display name of an input in dead-letter records and evidence.
pub fn source_name(path: &str) -> String {
    if path == "-" {
        "stdin".into()
    } else {
        path.to_string()
    }
}

/// Decodes line `l` into `ev` (as [`Event::new`] leaves it): its shard and agent hash, or why it was
/// rejected. The event is decoded in its final place, not moved there.
fn decode_line<'a>(
    batch: &'a Batch,
    l: &input::LineRef,
    limits: &Limits,
    shards: usize,
    ev: &mut Event<'a>,
) -> Result<(u32, u64), Reject> {
    if let Some(len) = l.too_long {
        return Err(Reject::new(
            Reason::TooLarge,
            format!("event is {len} bytes, the limit is {}", limits.max_event_bytes),
        ));
    }
    decode_into(batch.bytes(l), limits, ev)?;
    let shard = shard_of(&ev.agent_id, shards) as u32;
    let agent_hash = hash_str(ns::VALUE, &ev.agent_id);
    Ok((shard, agent_hash))
}

/// A decoded event on its way to its shard.
struct Item<'a> {
    ev: Event<'a>,
    shard: u32,
    pos: Position,
    /// The line the event was decoded from (its strings point into it).
    raw: &'a [u8],
}

/// The lines each worker decodes: contiguous chunks of the batch, chunk `w` for worker `w`.
fn chunk_len(lines: usize, threads: usize) -> usize {
    lines.div_ceil(threads).max(1)
}

/// What the workers of one batch share. Each shard belongs to one worker for the whole batch
/// ([`assign_shards`]); the class table is only read between barriers and only written at them.
struct Shared<'a, 'e> {
    batch: &'a Batch,
    limits: &'a Limits,
    threads: usize,
    /// The worker that owns each shard, and the shard's place among that worker's shards.
    owner: &'a [(u32, u32)],
    /// The decoded events of each chunk, set by its worker when it has decoded them.
    chunks: Vec<OnceLock<Vec<Item<'a>>>>,
    /// Every shard; a worker holds the locks of its own shards during an epoch, the barrier's leader
    /// takes them all in shard order to apply the class logs.
    shards: Vec<Mutex<&'e mut Shard>>,
    classes: RwLock<&'e mut ClassTable>,
    barrier: Barrier,
    /// Events processed since the last barrier when the batch starts.
    since_sync: usize,
    class_sync_events: usize,
    with_scores: bool,
    /// Keep `agent_id`s for the emit stage (the evaluator needs them).
    with_names: bool,
}

impl<'e> Shared<'_, 'e> {
    /// The locks of worker `w`'s shards, in shard order (the order of `owner`'s second field).
    fn lock_own(&self, w: usize) -> Vec<MutexGuard<'_, &'e mut Shard>> {
        self.shards
            .iter()
            .zip(self.owner)
            .filter(|(_, &(o, _))| o as usize == w)
            .map(|(m, _)| m.lock().expect("no worker panics while holding a shard"))
            .collect()
    }
}

/// Worker `w` of one batch: decodes its chunk of lines, then runs every event of the batch that
/// belongs to one of its shards, in input order. All workers walk the same event sequence, so they
/// agree on where the barriers fall; at each, they stop, one of them applies the class logs in shard
/// order (what [`Engine::sync`] does), and all continue. Returns the events processed since the last
/// barrier at the end of the batch.
fn detect_worker(w: usize, sh: &Shared, out: &mut WorkerOut) -> usize {
    // Decode.
    let batch = sh.batch;
    let total_shards = sh.shards.len();
    let per = chunk_len(batch.lines.len(), sh.threads);
    let lines = batch.lines.chunks(per).nth(w).unwrap_or(&[]);
    let mut items = Vec::with_capacity(lines.len());
    for l in lines {
        // Decoded in its slot; a rejected line's slot is taken back.
        items.push(Item {
            ev: Event::new(0, "", Kind::Other),
            shard: 0,
            pos: Position { source: l.source, offset: l.line },
            raw: batch.bytes(l),
        });
        let item = items.last_mut().expect("an item was just pushed");
        match decode_line(batch, l, sh.limits, total_shards, &mut item.ev) {
            Err(r) => {
                items.pop();
                out.lines.push(LineOut::Rejected(r));
            }
            Ok((shard, agent_hash)) => {
                item.shard = shard;
                let start = out.names.len() as u32;
                if sh.with_names {
                    out.names.push_str(&item.ev.agent_id);
                }
                out.lines.push(LineOut::Event {
                    agent_hash,
                    ts_ms: item.ev.ts_ms,
                    worker: sh.owner[shard as usize].0,
                    name: (start, out.names.len() as u32),
                });
            }
        }
    }
    if sh.chunks[w].set(items).is_err() {
        unreachable!("only worker {w} sets chunk {w}");
    }

    // Detect, epoch by epoch. Each chunk is waited for when the walk reaches it: worker 0 starts on
    // its own chunk while the others still decode theirs.
    let mut since = sh.since_sync;
    let mut own = sh.lock_own(w);
    let mut classes = sh.classes.read().expect("no worker panics while holding the class table");
    for chunk in &sh.chunks {
        let items = chunk.wait();
        // This worker's next event in the chunk: its lines are fetched while this one runs (half the
        // events were decoded on the other core, and stalling on them cost a third of the engine's
        // time on two threads).
        let mut ahead = 0;
        for (i, it) in items.iter().enumerate() {
            let (o, local) = sh.owner[it.shard as usize];
            if o as usize == w {
                ahead = ahead.max(i + 1);
                while ahead < items.len() && sh.owner[items[ahead].shard as usize].0 as usize != w {
                    ahead += 1;
                }
                if let Some(next) = items.get(ahead) {
                    prefetch(next as *const Item as *const u8, std::mem::size_of::<Item>());
                    prefetch(next.raw.as_ptr(), next.raw.len().min(1024));
                }
                out.shard_events[it.shard as usize] += 1;
                let v = own[local as usize].process(&classes, &it.ev, it.pos);
                let start = out.scores.len() as u32;
                if sh.with_scores && !v.duplicate {
                    write_score_line(&mut out.scores, &it.ev, &v);
                    out.scores.push('\n');
                }
                out.outs.push(Out {
                    duplicate: v.duplicate,
                    late: v.late,
                    score: (start, out.scores.len() as u32),
                    alert: v.alert,
                    class_agents: v.class_agents,
                });
            }
            since += 1;
            if since == sh.class_sync_events {
                // The barrier: nobody may read the table or touch a shard while the logs are applied.
                drop(own);
                drop(classes);
                if sh.barrier.wait().is_leader() {
                    let mut table = sh.classes.write().expect("no worker panics while holding the class table");
                    let mut all: Vec<_> =
                        sh.shards.iter().map(|s| s.lock().expect("no worker panics while holding a shard")).collect();
                    let mut logs: Vec<_> = all.iter_mut().map(|s| s.class_log()).collect();
                    // The other workers wait at the barrier meanwhile: their cores do the helping.
                    table.apply_parallel(&mut logs, sh.threads);
                }
                sh.barrier.wait();
                since = 0;
                own = sh.lock_own(w);
                classes = sh.classes.read().expect("no worker panics while holding the class table");
            }
        }
    }
    since
}

/// Asks the core to start loading the cache lines of `len` bytes at `p`: a hint, which never faults
/// and changes no result. An event decoded on the other core is in that core's cache; without the
/// hint the worker stalls on each of its lines when the engine first reads it.
#[inline]
fn prefetch(p: *const u8, len: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let p = p.cast::<i8>();
        for off in (0..len).step_by(64) {
            // SAFETY: `prefetch` (SSE, which every x86_64 has) reads no memory the program sees and
            // cannot fault, whatever the address.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(off)) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (p, len);
}

/// What the engine said about one event, as the emit stage needs it.
struct Scored<'a> {
    duplicate: bool,
    late: bool,
    alert: Option<&'a Alert>,
    class_agents: u32,
}

/// Where one replay's results go, in input order: counters, dead letters, score lines, alerts and the
/// evaluation. Both the sequential and the parallel paths emit through it.
struct Sink<'o> {
    opts: &'o ReplayOptions,
    names: Vec<String>,
    alerts_out: Box<dyn Write>,
    scores_out: Option<Box<dyn Write>>,
    dead: LazyFile,
    evaluator: Option<Evaluator>,
    distinct: DistinctCounter,
    rejects: BTreeMap<&'static str, u64>,
    events: u64,
    invalid: u64,
    duplicates: u64,
    late: u64,
    alerts: u64,
    line_buf: String,
    blast: BlastRadius,
    kept: Option<Vec<Alert>>,
}

impl Sink<'_> {
    fn rejected(&mut self, r: &Reject, source: u32, line: u64, raw: &[u8]) -> Result<(), ReplayError> {
        self.invalid += 1;
        *self.rejects.entry(r.reason.code()).or_default() += 1;
        self.line_buf.clear();
        let name = self.names.get(source as usize).map(String::as_str).unwrap_or("");
        write_record(&mut self.line_buf, r, name, line, raw);
        self.line_buf.push('\n');
        let path = &self.opts.dead_letter;
        self.dead.get()?.write_all(self.line_buf.as_bytes()).map_err(|e| write_err(path, e))
    }

    /// One processed event: `score_line` is its formatted score line (when scores are written).
    fn scored(
        &mut self,
        agent_id: &str,
        ts_ms: i64,
        agent_hash: u64,
        score_line: &[u8],
        v: Scored<'_>,
    ) -> Result<(), ReplayError> {
        let Scored { duplicate, late, alert, class_agents } = v;
        if duplicate {
            self.duplicates += 1;
        } else {
            self.events += 1;
            self.late += late as u64;
            self.distinct.add(agent_hash);
            if let Some(e) = &mut self.evaluator {
                e.observe_event(agent_id, ts_ms);
            }
            if let Some(w) = &mut self.scores_out {
                w.write_all(score_line).map_err(|e| write_err(self.opts.scores.as_deref().unwrap_or(""), e))?;
            }
        }
        match alert {
            Some(alert) if alert.action == Action::Kill => {
                // The blast-radius cap may withhold the kill and raise an operator alert.
                let mut alert = alert.clone();
                let notice = self.blast.govern(&mut alert, class_agents);
                self.emit(&alert)?;
                if let Some(n) = notice {
                    self.emit(&n)?;
                }
            }
            Some(alert) => self.emit(alert)?,
            None => {}
        }
        Ok(())
    }

    fn emit(&mut self, alert: &Alert) -> Result<(), ReplayError> {
        self.alerts += 1;
        self.line_buf.clear();
        alert.write_json(&mut self.line_buf, &self.names);
        self.line_buf.push('\n');
        self.alerts_out.write_all(self.line_buf.as_bytes()).map_err(|e| write_err(&self.opts.alerts, e))?;
        if let Some(kept) = &mut self.kept {
            kept.push(alert.clone());
        }
        // Operator alerts (`detector: "vigil"`) are about vigil itself, not detections.
        if let (Some(e), false) = (&mut self.evaluator, alert.detector == "vigil") {
            e.observe_alert(&AlertRef {
                agent_id: alert.agent_id.clone(),
                session_id: alert.session_id.clone(),
                ts_ms: alert.ts_ms,
            });
        }
        Ok(())
    }

    /// Makes everything written so far visible (a killed run leaves what it had written).
    fn flush(&mut self) -> Result<(), ReplayError> {
        self.alerts_out.flush().map_err(|e| write_err(&self.opts.alerts, e))?;
        if let Some(w) = &mut self.scores_out {
            w.flush().map_err(|e| write_err(self.opts.scores.as_deref().unwrap_or(""), e))?;
        }
        self.dead.flush()
    }
}

/// One batch on one thread: decode, detect and emit line by line (no intermediate vectors).
fn run_sequential(batch: &Batch, engine: &mut Engine, limits: &Limits, sink: &mut Sink) -> Result<(), ReplayError> {
    let shards = engine.config().engine.shards;
    let with_scores = sink.scores_out.is_some();
    let mut score_buf = String::with_capacity(256);
    for l in &batch.lines {
        let mut ev = Event::new(0, "", Kind::Other);
        match decode_line(batch, l, limits, shards, &mut ev) {
            Err(r) => sink.rejected(&r, l.source, l.line, batch.bytes(l))?,
            Ok((_, agent_hash)) => {
                let v = engine.process(&ev, Position { source: l.source, offset: l.line });
                score_buf.clear();
                if with_scores && !v.duplicate {
                    write_score_line(&mut score_buf, &ev, &v);
                    score_buf.push('\n');
                }
                let s = Scored {
                    duplicate: v.duplicate,
                    late: v.late,
                    alert: v.alert.as_deref(),
                    class_agents: v.class_agents,
                };
                sink.scored(&ev.agent_id, ev.ts_ms, agent_hash, score_buf.as_bytes(), s)?;
            }
        }
    }
    Ok(())
}

/// Deals the shards out to `threads` workers by the events each has processed so far (most first,
/// each to the worker with the fewest events so far, then the fewest shards): a fixed `shard %
/// threads` left one worker 5% more work on the benchmark input. Which worker runs a shard never
/// changes what the shard computes, only how evenly the threads are loaded; counts, not timings,
/// decide, and they change slowly, so shards seldom move between threads. Returns, per shard, its
/// worker and its place among that worker's shards.
fn assign_shards(events: &[u64], threads: usize) -> Vec<(u32, u32)> {
    let mut order: Vec<usize> = (0..events.len()).collect();
    order.sort_by_key(|&i| (std::cmp::Reverse(events[i]), i));
    let mut load = vec![(0u64, 0u32); threads];
    let mut owner = vec![0u32; events.len()];
    for i in order {
        let w = (0..threads).min_by_key(|&w| (load[w], w)).unwrap_or(0);
        owner[i] = w as u32;
        load[w].0 += events[i];
        load[w].1 += 1;
    }
    // Places in shard order, as `Shared::lock_own` takes the locks.
    let mut next = vec![0u32; threads];
    owner
        .into_iter()
        .map(|w| {
            let local = next[w as usize];
            next[w as usize] += 1;
            (w, local)
        })
        .collect()
}

/// Emits one batch whose lines were decoded and detected by `outs` (one per worker), in input order.
fn emit_batch(batch: &Batch, outs: &[Mutex<WorkerOut>], sink: &mut Sink) -> Result<(), ReplayError> {
    let outs: Vec<MutexGuard<WorkerOut>> =
        outs.iter().map(|o| o.lock().expect("no worker panics while holding its results")).collect();
    let per = chunk_len(batch.lines.len(), outs.len());
    let mut cursors = vec![0usize; outs.len()];
    for (lines, chunk) in batch.lines.chunks(per).zip(&outs) {
        for (l, line) in lines.iter().zip(&chunk.lines) {
            match line {
                LineOut::Rejected(r) => sink.rejected(r, l.source, l.line, batch.bytes(l))?,
                LineOut::Event { agent_hash, ts_ms, worker, name } => {
                    let t = *worker as usize;
                    let o = &outs[t].outs[cursors[t]];
                    cursors[t] += 1;
                    let s = Scored {
                        duplicate: o.duplicate,
                        late: o.late,
                        alert: o.alert.as_deref(),
                        class_agents: o.class_agents,
                    };
                    let score_line = &outs[t].scores.as_bytes()[o.score.0 as usize..o.score.1 as usize];
                    let agent_id = &chunk.names[name.0 as usize..name.1 as usize];
                    sink.scored(agent_id, *ts_ms, *agent_hash, score_line, s)?;
                }
            }
        }
    }
    Ok(())
}

/// The replay on several threads, as a pipeline over batches: while `threads` workers decode and
/// detect batch n (each owning a fixed subset of the shards, barriers placed by the workers
/// themselves), this thread emits batch n - 1 and reads batch n + 1. Three batch buffers and their
/// per-worker results rotate, so nothing is allocated per batch beyond the decoded events.
///
/// The workers are the threads of a pool that lives for the whole replay, and worker `w` is always
/// pool thread `w` (a broadcast): a shard stays on one thread, and so its agents' state in one
/// core's cache, from batch to batch, instead of following freshly spawned threads around.
fn run_pipelined(
    source: &mut Source,
    engine: &mut Engine,
    limits: &Limits,
    threads: usize,
    sink: &mut Sink,
    mut progress: impl FnMut(&Sink, &Source),
) -> Result<(), ReplayError> {
    let opts = sink.opts;
    let read = |source: &mut Source, batch: &mut Batch| {
        source
            .next_batch(batch, opts.batch_bytes)
            .map_err(|e| ReplayError::Read { path: opts.inputs.join(", "), error: e })
    };
    let class_sync_events = engine.config().engine.class_sync_events;
    let total_shards = engine.shards().len();
    let new_outs = || {
        (0..threads)
            .map(|_| Mutex::new(WorkerOut { shard_events: vec![0; total_shards], ..WorkerOut::default() }))
            .collect::<Vec<_>>()
    };
    let pool = rayon_core::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("vigil-detect-{i}"))
        .build()
        .map_err(|e| ReplayError::Threads { threads, message: e.to_string() })?;
    let mut shard_events = vec![0u64; total_shards];
    let (mut prev, mut cur, mut next) = (Batch::default(), Batch::default(), Batch::default());
    let (mut prev_outs, mut cur_outs) = (new_outs(), new_outs());
    let mut have_prev = false;
    let mut more = read(source, &mut cur)?;
    while more {
        for o in &mut cur_outs {
            o.get_mut().expect("no worker panics while holding its results").clear();
        }
        let owner = assign_shards(&shard_events, threads);
        let (classes, shards, since_sync) = engine.parts_mut();
        let shared = Shared {
            batch: &cur,
            limits,
            threads,
            owner: &owner,
            chunks: (0..threads).map(|_| OnceLock::new()).collect(),
            shards: shards.iter_mut().map(Mutex::new).collect(),
            classes: RwLock::new(classes),
            barrier: Barrier::new(threads),
            since_sync: *since_sync,
            class_sync_events,
            with_scores: sink.scores_out.is_some(),
            with_names: sink.evaluator.is_some(),
        };
        more = pool.in_place_scope(|s| {
            let (shared, outs) = (&shared, &cur_outs);
            s.spawn_broadcast(move |_, ctx| {
                let w = ctx.index();
                let mut out = outs[w].lock().expect("each worker locks only its own results");
                out.since_sync = detect_worker(w, shared, &mut out);
            });
            // Meanwhile, on this thread: the previous batch out, the next one in. (The scope waits
            // for the workers before it returns, also when this fails.)
            if have_prev {
                emit_batch(&prev, &prev_outs, sink)?;
                sink.flush()?;
            }
            read(source, &mut next)
        })?;
        *since_sync = cur_outs[0].get_mut().expect("no worker panics while holding its results").since_sync;
        for o in &mut cur_outs {
            let o = o.get_mut().expect("no worker panics while holding its results");
            shard_events.iter_mut().zip(&o.shard_events).for_each(|(t, n)| *t += n);
        }
        std::mem::swap(&mut prev, &mut cur);
        std::mem::swap(&mut cur, &mut next);
        std::mem::swap(&mut prev_outs, &mut cur_outs);
        have_prev = true;
        progress(sink, source);
    }
    if have_prev {
        emit_batch(&prev, &prev_outs, sink)?;
        sink.flush()?;
    }
    Ok(())
}

/// Replays recorded runs through the engine.
pub fn run(opts: &ReplayOptions) -> Result<ReplaySummary, ReplayError> {
    let t0 = Instant::now();
    let mut engine = match &opts.pack {
        Some(p) => Engine::with_pack(opts.engine.clone(), Arc::clone(p))?,
        None => Engine::new(opts.engine.clone())?,
    };
    engine.set_models(opts.models.clone());
    let limits =
        Limits { max_event_bytes: opts.engine.engine.max_event_bytes, max_depth: opts.engine.engine.max_depth };

    let evaluator = match &opts.labels {
        Some(path) => {
            let text =
                std::fs::read_to_string(path).map_err(|e| ReplayError::LabelsFile { path: path.clone(), error: e })?;
            Some(Evaluator::new(eval::parse_labels(path, &text)?, eval::DEFAULT_GRACE_MS))
        }
        None => None,
    };

    // Open every input before processing anything: an unreadable path fails the run up front.
    let mut readers = Vec::with_capacity(opts.inputs.len());
    for (i, p) in opts.inputs.iter().enumerate() {
        readers.push(LineReader::new(input::open(p)?, i as u32, limits.max_event_bytes));
    }
    let mut source = if readers.len() == 1 {
        Source::Single(readers.pop().expect("one reader"))
    } else {
        Source::Merged(Merger::new(readers, limits, opts.batch_bytes))
    };
    let total_input_bytes: Option<u64> = if opts.inputs.iter().any(|p| p == "-") {
        None
    } else {
        opts.inputs.iter().map(|p| std::fs::metadata(p).ok().map(|m| m.len())).sum()
    };

    let mut sink = Sink {
        opts,
        names: opts.inputs.iter().map(|p| source_name(p)).collect(),
        alerts_out: create(&opts.alerts)?,
        scores_out: match &opts.scores {
            Some(p) => Some(create(p)?),
            None => None,
        },
        dead: LazyFile { path: opts.dead_letter.clone(), file: None },
        evaluator,
        distinct: DistinctCounter::default(),
        rejects: BTreeMap::new(),
        events: 0,
        invalid: 0,
        duplicates: 0,
        late: 0,
        alerts: 0,
        line_buf: String::with_capacity(4096),
        blast: {
            let c = engine.config();
            BlastRadius::new(c.actions.max_kills_per_minute, c.actions.max_class_kill_share, c.engine.cooldown_secs)
        },
        kept: opts.keep_alerts.then(Vec::new),
    };

    let threads = opts.threads.clamp(1, engine.config().engine.shards);
    let mut last_progress = Instant::now();
    let progress = opts.progress && io::stderr().is_terminal();
    let mut show_progress = |sink: &Sink, source: &Source| {
        if progress && last_progress.elapsed() >= Duration::from_millis(200) {
            last_progress = Instant::now();
            let secs = t0.elapsed().as_secs_f64().max(1e-9);
            let pct = total_input_bytes
                .filter(|&t| t > 0)
                .map(|t| format!("{:>3.0}% ", 100.0 * source.bytes_read() as f64 / t as f64))
                .unwrap_or_default();
            eprint!(
                "\r\x1b[2K{pct}{} events ({:.0}/s), {} rejected, {} alerts",
                sink.events,
                sink.events as f64 / secs,
                sink.invalid,
                sink.alerts
            );
        }
    };
    if threads == 1 {
        let mut batch = Batch::default();
        while source
            .next_batch(&mut batch, opts.batch_bytes)
            .map_err(|e| ReplayError::Read { path: opts.inputs.join(", "), error: e })?
        {
            run_sequential(&batch, &mut engine, &limits, &mut sink)?;
            sink.flush()?;
            show_progress(&sink, &source);
        }
    } else {
        run_pipelined(&mut source, &mut engine, &limits, threads, &mut sink, &mut show_progress)?;
    }
    if progress {
        eprint!("\r\x1b[2K");
    }

    let elapsed = t0.elapsed();
    let secs = elapsed.as_secs_f64();
    let mut report = Map::new();
    report.insert("events".into(), json!(sink.events));
    report.insert("invalid_events".into(), json!(sink.invalid));
    report.insert("duplicate_events".into(), json!(sink.duplicates));
    report.insert("late_events".into(), json!(sink.late));
    report.insert("agents".into(), json!(sink.distinct.count()));
    report.insert("alerts".into(), json!(sink.alerts));
    report.insert("elapsed_s".into(), json!((secs * 1000.0).round() / 1000.0));
    report.insert("events_per_s".into(), json!(if secs > 0.0 { (sink.events as f64 / secs).round() } else { 0.0 }));
    if let Some(e) = &sink.evaluator {
        report.extend(e.report());
    }
    if let Some(path) = &opts.report {
        let mut text = serde_json::to_string_pretty(&Value::Object(report.clone())).expect("a JSON map serialises");
        text.push('\n');
        std::fs::write(path, text).map_err(|e| write_err(path, e))?;
    }
    Ok(ReplaySummary {
        report,
        events: sink.events,
        invalid_events: sink.invalid,
        alerts: sink.alerts,
        rejects_by_reason: sink.rejects,
        elapsed,
        kills_withheld: sink.blast.withheld,
        kept_alerts: sink.kept.unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::assign_shards;

    #[test]
    fn shards_are_dealt_out_evenly_and_numbered_in_shard_order() {
        // Nothing counted yet: the shards alternate.
        let a = assign_shards(&[0; 5], 2);
        assert_eq!(a, vec![(0, 0), (1, 0), (0, 1), (1, 1), (0, 2)]);
        // By events: 9 | 5 + 4, then 3 + 3 to the lighter side each time.
        let a = assign_shards(&[3, 9, 5, 4, 3], 2);
        let load = |w: u32| [3, 9, 5, 4, 3].iter().zip(&a).filter(|(_, o)| o.0 == w).map(|(n, _)| n).sum::<u64>();
        assert_eq!((load(0), load(1)), (12, 12));
        for w in 0..2 {
            let places: Vec<u32> = a.iter().filter(|o| o.0 == w).map(|o| o.1).collect();
            assert_eq!(places, (0..places.len() as u32).collect::<Vec<_>>());
        }
    }
}
