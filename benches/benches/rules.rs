//! What the default rule pack costs per event, on simulated fleet events (2,000 agents, 100,000 events).
//! Budget: at most 0.3 µs per event. Read results as events/s (`Throughput::Elements`);
//! ns/event = 1e9 / that.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;
use vigil_benches::{corpus, decoded, lines, AGENTS};
use vigil_detector::rules::{default_pack, EventRecord, RuleSchema};
use vigil_detector::score::Comp;
use vigil_detector::{Engine, EngineConfig};
use vigil_rules::{Pack, RuleState};

const EVENTS: u64 = 100_000;

/// **The pack alone**: `Pack::evaluate` over an `EventRecord` of every decoded event, with the
/// component scores the engine gave it and a rule state per agent — the rules' own cost (index
/// lookup, conditions, regexes, threshold and sequence state, matches), nothing of the statistics.
/// Proves the default pack stays within its per-event budget on real-looking traffic.
fn pack_evaluate(c: &mut Criterion) {
    let text = corpus(AGENTS, EVENTS);
    let lines = lines(&text);
    let events = decoded(&lines);
    // The scores each event gets in a real run (from an engine without rules).
    let mut engine = Engine::with_pack(EngineConfig::default(), Arc::new(empty_pack())).expect("valid");
    let scored: Vec<([f64; Comp::COUNT], f64)> = events
        .iter()
        .map(|(ev, pos)| {
            let v = engine.process(ev, *pos);
            (v.components.map(|c| c.map_or(0.0, f64::from)), v.score)
        })
        .collect();
    let mut agent_of: HashMap<&str, usize> = HashMap::new();
    let agents: Vec<usize> = events
        .iter()
        .map(|(ev, _)| {
            let n = agent_of.len();
            *agent_of.entry(&ev.agent_id).or_insert(n)
        })
        .collect();
    let pack = default_pack();
    let mut g = c.benchmark_group("rules");
    g.throughput(Throughput::Elements(events.len() as u64)).sample_size(20);
    g.bench_function("default_pack_evaluate", |b| {
        b.iter_batched_ref(
            || (vec![RuleState::default(); agent_of.len()], Vec::new()),
            |(states, matches)| {
                let mut hits = 0usize;
                for (((ev, _), (scores, fused)), &a) in events.iter().zip(&scored).zip(&agents) {
                    matches.clear();
                    pack.evaluate(&EventRecord::new(ev, *scores, *fused), &mut states[a], matches);
                    hits += matches.len();
                }
                black_box(hits)
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

/// **The pack inside the engine**: the same events through a fresh engine with the default pack and
/// with an empty pack. The difference of the two per-event times is what turning the default rules on
/// costs a replay (rule evaluation, the record, rule state in the agent, rule alerts).
fn engine_with_and_without_pack(c: &mut Criterion) {
    let text = corpus(AGENTS, EVENTS);
    let lines = lines(&text);
    let events = decoded(&lines);
    let mut g = c.benchmark_group("rules");
    g.throughput(Throughput::Elements(events.len() as u64)).sample_size(10);
    for (name, pack) in [("engine_default_pack", default_pack()), ("engine_empty_pack", empty_pack())] {
        let pack = Arc::new(pack);
        g.bench_function(name, |b| {
            b.iter_batched_ref(
                || Engine::with_pack(EngineConfig::default(), Arc::clone(&pack)).expect("valid"),
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
    }
    g.finish();
}

fn empty_pack() -> Pack {
    Pack::load_sources(&[], &RuleSchema::get().schema).expect("an empty pack compiles")
}

criterion_group!(benches, pack_evaluate, engine_with_and_without_pack);
criterion_main!(benches);
