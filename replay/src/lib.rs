//! vigil's offline path: recorded runs through the very same engine, on event time, as fast as the
//! machine allows, with evaluation against labels.
//!
//! The driver reads inputs in large batches of whole lines ([`input`]), merging several inputs by `ts`
//! ([`merge`]). Each batch goes through three phases:
//!
//! 1. **decode** — lines become [`Event`]s (borrowing from the batch) or rejects; in parallel over
//!    contiguous chunks of the batch;
//! 2. **detect** — every event goes to its shard, in input order; each thread owns a fixed subset of
//!    the shards, so the number of threads never changes what any shard sees;
//! 3. **emit** — sequentially, in input order: dead-letter records, score lines, alerts, evaluation.
//!
//! Output is therefore byte-identical for any thread count. Memory is bounded by the batch size and
//! the engine's caps, never by the size of the input.

pub mod distinct;
pub mod eval;
pub mod input;
pub mod merge;

use distinct::DistinctCounter;
use eval::{AlertRef, Evaluator};
use input::{Batch, LineReader};
use merge::Merger;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::time::{Duration, Instant};
use thiserror::Error;
use vigil_detector::classes::ClassTable;
use vigil_detector::config::ConfigError;
use vigil_detector::dead_letter::write_record;
use vigil_detector::decode::{decode, Limits, Reason, Reject};
use vigil_detector::engine::shard_of;
use vigil_detector::hash::{hash_str, ns};
use vigil_detector::output::write_score_line;
use vigil_detector::{Alert, Engine, EngineConfig, Event, Position, Shard};

/// What can stop a replay. Every variant is the user's input or environment, not a bug: the CLI maps
/// them to exit status 2 with this message.
#[derive(Debug, Error)]
pub enum ReplayError {
    /// An input cannot be opened (missing, a directory, no permission, not decompressible).
    #[error("cannot open input {path}: {source}")]
    Open { path: String, source: io::Error },
    /// An input failed while being read (I/O error, corrupt compressed stream).
    #[error("cannot read input {path}: {source}")]
    Read { path: String, source: io::Error },
    /// The labels file is unreadable or malformed.
    #[error("{path}:{line}: {message}")]
    Labels { path: String, line: usize, message: String },
    /// An output cannot be created or written.
    #[error("cannot write {path}: {source}")]
    Write { path: String, source: io::Error },
    /// The engine configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
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
}

/// A line after decoding. Rejects are rare, so the size difference costs nothing; boxing the event
/// would cost an allocation per event.
#[allow(clippy::large_enum_variant)]
enum Decoded<'a> {
    Event { ev: Event<'a>, shard: u32, agent_hash: u64 },
    Rejected(Reject),
}

/// What a detect thread produced for one event.
struct Out {
    index: u32,
    duplicate: bool,
    late: bool,
    score: (u32, u32),
    alert: Option<Box<Alert>>,
}

/// A detect thread's results for one batch, in input order.
#[derive(Default)]
struct ThreadOut {
    outs: Vec<Out>,
    scores: String,
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
    ReplayError::Write { path: path.to_string(), source: e }
}

fn create(path: &str) -> Result<Box<dyn Write>, ReplayError> {
    if path == "-" {
        return Ok(Box::new(BufWriter::with_capacity(1 << 16, io::stdout())));
    }
    let f = File::create(path).map_err(|e| write_err(path, e))?;
    Ok(Box::new(BufWriter::with_capacity(1 << 20, f)))
}

/// Display name of an input in dead-letter records and evidence.
fn source_name(path: &str) -> String {
    if path == "-" {
        "stdin".into()
    } else {
        path.to_string()
    }
}

fn decode_line<'a>(batch: &'a Batch, l: &input::LineRef, limits: &Limits, shards: usize) -> Decoded<'a> {
    if let Some(len) = l.too_long {
        return Decoded::Rejected(Reject::new(
            Reason::TooLarge,
            format!("event is {len} bytes, the limit is {}", limits.max_event_bytes),
        ));
    }
    match decode(batch.bytes(l), limits) {
        Ok(ev) => {
            let shard = shard_of(&ev.agent_id, shards) as u32;
            let agent_hash = hash_str(ns::VALUE, &ev.agent_id);
            Decoded::Event { ev, shard, agent_hash }
        }
        Err(r) => Decoded::Rejected(r),
    }
}

/// What every detect thread of one epoch shares, read-only.
struct Epoch<'a, 'b> {
    flat: &'a [&'a Decoded<'b>],
    range: std::ops::Range<usize>,
    classes: &'a ClassTable,
    total_shards: usize,
    sources: &'a [LineRefSource],
    with_scores: bool,
}

/// Runs the engine over one thread's shards for the decoded lines of the epoch.
fn detect(e: &Epoch, shards: &mut [(usize, &mut Shard)], out: &mut ThreadOut) {
    // Map a global shard index to this thread's slice.
    let mut local = vec![usize::MAX; e.total_shards];
    for (i, (g, _)) in shards.iter().enumerate() {
        local[*g] = i;
    }
    for index in e.range.clone() {
        let Decoded::Event { ev, shard, .. } = e.flat[index] else { continue };
        let li = local[*shard as usize];
        if li == usize::MAX {
            continue;
        }
        let src = &e.sources[index];
        let verdict = shards[li].1.process(e.classes, ev, Position { source: src.source, offset: src.line });
        let start = out.scores.len() as u32;
        if e.with_scores && !verdict.duplicate {
            write_score_line(&mut out.scores, ev, &verdict);
            out.scores.push('\n');
        }
        out.outs.push(Out {
            index: index as u32,
            duplicate: verdict.duplicate,
            late: verdict.late,
            score: (start, out.scores.len() as u32),
            alert: verdict.alert.map(Box::new),
        });
    }
}

/// Where a line came from (copied out of the batch for the detect threads).
#[derive(Clone, Copy)]
struct LineRefSource {
    source: u32,
    line: u64,
}

/// Replays recorded runs through the engine.
pub fn run(opts: &ReplayOptions) -> Result<ReplaySummary, ReplayError> {
    let t0 = Instant::now();
    let mut engine = Engine::new(opts.engine.clone())?;
    let limits =
        Limits { max_event_bytes: opts.engine.engine.max_event_bytes, max_depth: opts.engine.engine.max_depth };
    let names: Vec<String> = opts.inputs.iter().map(|p| source_name(p)).collect();

    let mut evaluator = match &opts.labels {
        Some(path) => {
            let text =
                std::fs::read_to_string(path).map_err(|e| ReplayError::Open { path: path.clone(), source: e })?;
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

    let mut alerts_out = create(&opts.alerts)?;
    let mut scores_out = match &opts.scores {
        Some(p) => Some(create(p)?),
        None => None,
    };
    let mut dead = LazyFile { path: opts.dead_letter.clone(), file: None };

    let shards = engine.config().engine.shards;
    let threads = opts.threads.clamp(1, shards);
    let mut batch = Batch::default();
    let mut distinct = DistinctCounter::default();
    let mut rejects: BTreeMap<&'static str, u64> = BTreeMap::new();
    let (mut events, mut invalid, mut duplicates, mut late, mut alerts) = (0u64, 0u64, 0u64, 0u64, 0u64);
    let mut line_buf = String::with_capacity(4096);
    let mut last_progress = Instant::now();
    let progress = opts.progress && io::stderr().is_terminal();
    let input_name = |s: u32| names.get(s as usize).map(String::as_str).unwrap_or("");

    loop {
        let more = source
            .next_batch(&mut batch, opts.batch_bytes)
            .map_err(|e| ReplayError::Read { path: opts.inputs.join(", "), source: e })?;
        if !more {
            break;
        }
        let n = batch.lines.len();
        let srcs: Vec<LineRefSource> =
            batch.lines.iter().map(|l| LineRefSource { source: l.source, line: l.line }).collect();

        // Phase 1: decode.
        let decoded: Vec<Vec<Decoded>> = if threads == 1 {
            vec![batch.lines.iter().map(|l| decode_line(&batch, l, &limits, shards)).collect()]
        } else {
            let per = n.div_ceil(threads).max(1);
            let batch_ref = &batch;
            std::thread::scope(|s| {
                let handles: Vec<_> = batch_ref
                    .lines
                    .chunks(per)
                    .map(|ls| {
                        s.spawn(move || {
                            ls.iter().map(|l| decode_line(batch_ref, l, &limits, shards)).collect::<Vec<_>>()
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().expect("decode thread panicked")).collect()
            })
        };

        // Phase 2: detect, each thread on a fixed subset of shards, epoch by epoch: class baselines
        // are updated at the barriers between epochs.
        let flat: Vec<&Decoded> = decoded.iter().flatten().collect();
        let with_scores = scores_out.is_some();
        let mut outs: Vec<ThreadOut> = (0..threads).map(|_| ThreadOut::default()).collect();
        let mut from = 0usize;
        while from < flat.len() {
            let budget = engine.until_sync();
            let (mut to, mut count) = (from, 0usize);
            while to < flat.len() && count < budget {
                count += matches!(flat[to], Decoded::Event { .. }) as usize;
                to += 1;
            }
            let (classes, all_shards) = engine.parts();
            let mut groups: Vec<Vec<(usize, &mut Shard)>> = (0..threads).map(|_| Vec::new()).collect();
            for (i, sh) in all_shards.iter_mut().enumerate() {
                groups[i % threads].push((i, sh));
            }
            let epoch =
                Epoch { flat: &flat, range: from..to, classes, total_shards: shards, sources: &srcs, with_scores };
            if threads == 1 {
                for g in &mut groups {
                    detect(&epoch, g, &mut outs[0]);
                }
            } else {
                let epoch = &epoch;
                std::thread::scope(|s| {
                    for (g, out) in groups.iter_mut().zip(outs.iter_mut()) {
                        s.spawn(move || detect(epoch, g, out));
                    }
                });
            }
            engine.finish_events(count);
            from = to;
        }

        // Phase 3: emit in input order.
        let mut cursors = vec![0usize; outs.len()];
        let mut index = 0usize;
        for chunk in &decoded {
            for d in chunk {
                let l = &batch.lines[index];
                match d {
                    Decoded::Rejected(r) => {
                        invalid += 1;
                        *rejects.entry(r.reason.code()).or_default() += 1;
                        line_buf.clear();
                        write_record(&mut line_buf, r, input_name(l.source), l.line, batch.bytes(l));
                        line_buf.push('\n');
                        dead.get()?.write_all(line_buf.as_bytes()).map_err(|e| write_err(&opts.dead_letter, e))?;
                    }
                    Decoded::Event { ev, agent_hash, .. } => {
                        let t = outs
                            .iter()
                            .enumerate()
                            .position(|(t, o)| o.outs.get(cursors[t]).is_some_and(|x| x.index as usize == index))
                            .expect("every event has exactly one detect result");
                        let o = &outs[t].outs[cursors[t]];
                        cursors[t] += 1;
                        if o.duplicate {
                            duplicates += 1;
                        } else {
                            events += 1;
                            late += o.late as u64;
                            distinct.add(*agent_hash);
                            if let Some(e) = &mut evaluator {
                                e.observe_event(&ev.agent_id, ev.ts_ms);
                            }
                            if let Some(w) = &mut scores_out {
                                let (a, b) = o.score;
                                w.write_all(&outs[t].scores.as_bytes()[a as usize..b as usize])
                                    .map_err(|e| write_err(opts.scores.as_deref().unwrap_or(""), e))?;
                            }
                        }
                        if let Some(alert) = &o.alert {
                            alerts += 1;
                            line_buf.clear();
                            alert.write_json(&mut line_buf, &names);
                            line_buf.push('\n');
                            alerts_out.write_all(line_buf.as_bytes()).map_err(|e| write_err(&opts.alerts, e))?;
                            if let Some(e) = &mut evaluator {
                                e.observe_alert(&AlertRef {
                                    agent_id: alert.agent_id.clone(),
                                    session_id: alert.session_id.clone(),
                                    ts_ms: alert.ts_ms,
                                });
                            }
                        }
                    }
                }
                index += 1;
            }
        }
        drop(flat);
        drop(decoded);
        alerts_out.flush().map_err(|e| write_err(&opts.alerts, e))?;
        if let Some(w) = &mut scores_out {
            w.flush().map_err(|e| write_err(opts.scores.as_deref().unwrap_or(""), e))?;
        }
        dead.flush()?;

        if progress && last_progress.elapsed() >= Duration::from_millis(200) {
            last_progress = Instant::now();
            let secs = t0.elapsed().as_secs_f64().max(1e-9);
            let pct = total_input_bytes
                .filter(|&t| t > 0)
                .map(|t| format!("{:>3.0}% ", 100.0 * source.bytes_read() as f64 / t as f64))
                .unwrap_or_default();
            eprint!(
                "\r\x1b[2K{pct}{events} events ({:.0}/s), {invalid} rejected, {alerts} alerts",
                events as f64 / secs
            );
        }
    }
    if progress {
        eprint!("\r\x1b[2K");
    }

    let elapsed = t0.elapsed();
    let secs = elapsed.as_secs_f64();
    let mut report = Map::new();
    report.insert("events".into(), json!(events));
    report.insert("invalid_events".into(), json!(invalid));
    report.insert("duplicate_events".into(), json!(duplicates));
    report.insert("late_events".into(), json!(late));
    report.insert("agents".into(), json!(distinct.count()));
    report.insert("alerts".into(), json!(alerts));
    report.insert("elapsed_s".into(), json!((secs * 1000.0).round() / 1000.0));
    report.insert("events_per_s".into(), json!(if secs > 0.0 { (events as f64 / secs).round() } else { 0.0 }));
    if let Some(e) = &evaluator {
        report.extend(e.report());
    }
    if let Some(path) = &opts.report {
        let mut text = serde_json::to_string_pretty(&Value::Object(report.clone())).expect("a JSON map serialises");
        text.push('\n');
        std::fs::write(path, text).map_err(|e| write_err(path, e))?;
    }
    Ok(ReplaySummary { report, events, invalid_events: invalid, alerts, rejects_by_reason: rejects, elapsed })
}
