//! The replay pipeline in three cuts, on one simulated fleet (2,000 agents, 100,000 events): each
//! result reads as events/s (`Throughput::Elements`), so the three compare directly with each other and
//! with `parse-ceiling` (see `benches/README.md`).

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use std::hint::black_box;
use std::io::Write as _;
use vigil_benches::{corpus, decoded, lines, AGENTS};
use vigil_detector::decode::{decode, Limits};
use vigil_detector::{Engine, EngineConfig};
use vigil_replay::{run, ReplayOptions};

const EVENTS: u64 = 100_000;

/// **Decode only**: bytes → `Event` for every line, input contract enforced (UTF-8, types, required
/// fields, duplicates, limits). Proves what the input side costs on its own, and that decoding
/// allocates nothing per event (a regression shows as a drop here, not hidden in the engine).
fn decode_only(c: &mut Criterion) {
    let text = corpus(AGENTS, EVENTS);
    let lines = lines(&text);
    let limits = Limits::default();
    let mut g = c.benchmark_group("pipeline");
    g.throughput(Throughput::Elements(lines.len() as u64)).sample_size(10);
    g.bench_function("decode_only", |b| {
        b.iter(|| {
            let mut n = 0usize;
            for l in &lines {
                if let Ok(ev) = decode(black_box(l), &limits) {
                    n += ev.agent_id.len();
                }
            }
            black_box(n)
        })
    });
    g.finish();
}

/// **Engine only**: pre-decoded events through a fresh engine (default detectors and the default rule
/// pack, 16 shards, barriers every 4,096 events), one thread. Proves the detection cost per event
/// without any parsing or output: per-agent lookup, scoring, fusion, rules, alerting and learning.
fn engine_only(c: &mut Criterion) {
    let text = corpus(AGENTS, EVENTS);
    let lines = lines(&text);
    let events = decoded(&lines);
    let mut g = c.benchmark_group("pipeline");
    g.throughput(Throughput::Elements(events.len() as u64)).sample_size(10);
    g.bench_function("engine_only", |b| {
        b.iter_batched_ref(
            || Engine::new(EngineConfig::default()).expect("the default configuration is valid"),
            |engine| {
                let mut alerts = 0usize;
                for (ev, pos) in &events {
                    alerts += engine.process(ev, *pos).alert.is_some() as usize;
                }
                black_box(alerts)
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

/// **Full replay path**: `vigil_replay::run` on a file of the fleet, one thread, alerts to
/// `/dev/null` — reading, batching, decoding, detecting and emitting exactly as `vigil replay` does
/// (minus process start-up). Proves the end-to-end rate the engine reaches relative to parsing alone.
fn full_replay(c: &mut Criterion) {
    let text = corpus(AGENTS, EVENTS);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("fleet.jsonl");
    std::fs::File::create(&path).and_then(|mut f| f.write_all(&text)).expect("writing the bench corpus");
    let mut opts = ReplayOptions::new(vec![path.to_string_lossy().into_owned()]);
    opts.alerts = "/dev/null".into();
    opts.dead_letter = dir.path().join("rejected.jsonl").to_string_lossy().into_owned();
    let n = lines(&text).len() as u64;
    let mut g = c.benchmark_group("pipeline");
    g.throughput(Throughput::Elements(n)).sample_size(10);
    g.bench_function("full_replay", |b| b.iter(|| black_box(run(&opts).expect("the replay runs").events)));
    g.finish();
}

criterion_group!(benches, decode_only, engine_only, full_replay);
criterion_main!(benches);
