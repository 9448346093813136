//! Per-event engine latency: p50, p90, p99, p99.9 and the maximum of `Engine::process` over a simulated
//! fleet (2,000 agents, 200,000 events), default detectors and rule pack, one thread.
//!
//! What it proves: the time one event spends in the engine, event by event (not an average), stays
//! within budget — p99 at most 20 µs — including events that raise alerts (explanations, evidence)
//! and the events that close an epoch (the class barrier runs inside `process` on the single-threaded
//! path, so its cost lands on one event every `class_sync_events`). Timing each call adds about 20 ns.
//!
//! Not a criterion bench (criterion reports means, not percentiles): `cargo bench -p vigil-benches
//! --bench latency` prints one JSON line. Run it pinned (`taskset -c 0`) for stable figures.

use std::hint::black_box;
use std::time::Instant;
use vigil_benches::{corpus, decoded, lines, AGENTS};
use vigil_detector::{Engine, EngineConfig};

const EVENTS: u64 = 200_000;
/// Runs over the corpus (a fresh engine each); percentiles are over all of them.
const RUNS: usize = 3;

fn main() {
    let text = corpus(AGENTS, EVENTS);
    let lines = lines(&text);
    let events = decoded(&lines);
    let mut ns: Vec<u64> = Vec::with_capacity(events.len() * RUNS);
    for _ in 0..RUNS {
        let mut engine = Engine::new(EngineConfig::default()).expect("the default configuration is valid");
        for (ev, pos) in &events {
            let t = Instant::now();
            let v = engine.process(ev, *pos);
            let dt = t.elapsed();
            black_box(v);
            ns.push(dt.as_nanos() as u64);
        }
    }
    let total: u64 = ns.iter().sum();
    ns.sort_unstable();
    let q = |f: f64| ns[((ns.len() as f64 * f) as usize).min(ns.len() - 1)] as f64 / 1000.0;
    println!(
        "{{\"bench\":\"engine_latency\",\"events\":{},\"mean_us\":{:.3},\"p50_us\":{:.3},\"p90_us\":{:.3},\"p99_us\":{:.3},\"p999_us\":{:.3},\"max_us\":{:.1}}}",
        ns.len(),
        total as f64 / ns.len() as f64 / 1000.0,
        q(0.5),
        q(0.9),
        q(0.99),
        q(0.999),
        *ns.last().expect("events were timed") as f64 / 1000.0
    );
}
