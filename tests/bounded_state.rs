//! Bounded state under a flood of identities (`spec/cli.md`: `[engine] max_agents` — tracked agents,
//! least recently active evicted beyond it): 200,000 events from 200,000 distinct `agent_id`s.
//!
//! No timing or memory assertions: the cap is checked through `Engine::agents()`, and the replay
//! through its report.

mod common;

use common::*;
use vigil_detector::decode::{decode, Limits};
use vigil_detector::{Engine, EngineConfig, Position};

const FLOOD: usize = 200_000;
const T0: i64 = 1_767_225_600_000;

/// One event of the flood: agent `i` (never seen before), a few kinds in turn.
fn flood_line(i: usize) -> String {
    let ts = T0 + i as i64 * 10;
    match i % 4 {
        0 => format!(
            r#"{{"ts":{ts},"agent_id":"flood-{i}","agent":"swarm","kind":"llm_call","model":"m","tokens":{{"input":100,"output":20}}}}"#
        ),
        1 => format!(
            r#"{{"ts":{ts},"agent_id":"flood-{i}","agent":"swarm","kind":"tool_call","tool":"search","args":{{"q":"x"}}}}"#
        ),
        2 => format!(
            r#"{{"ts":{ts},"agent_id":"flood-{i}","agent":"swarm","kind":"net","dest":"api.example.com:443","bytes_out":512}}"#
        ),
        _ => format!(r#"{{"ts":{ts},"agent_id":"flood-{i}","kind":"auth","op":"token_request","outcome":"ok"}}"#),
    }
}

#[test]
fn replay_of_a_flood_of_new_agents_succeeds_and_counts_every_event() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut text = String::with_capacity(FLOOD * 120);
    for i in 0..FLOOD {
        text.push_str(&flood_line(i));
        text.push('\n');
    }
    std::fs::write(d.join("flood.jsonl"), text).unwrap();
    std::fs::write(d.join("config.toml"), "[engine]\nmax_agents = 1000\n").unwrap();
    let (report, scores) = (d.join("report.json"), d.join("scores.jsonl"));
    let out = run_in(
        d,
        &[
            "replay",
            "flood.jsonl",
            "--config",
            "config.toml",
            "--alerts",
            "/dev/null",
            "--scores",
            s(&scores),
            "--report",
            s(&report),
        ],
    );
    assert_exit(&out, 0);
    let r = read_json(&report);
    assert_eq!(r["events"].as_u64(), Some(FLOOD as u64), "{r}");
    assert_eq!(r["invalid_events"], 0, "{r}");
    assert_eq!(r["duplicate_events"], 0, "{r}");
    assert_eq!(lines(&scores).len(), FLOOD, "one score line per event, evicted agents or not");
    // `agents` counts distinct ids seen over the run, not agents tracked; beyond 65,536 it is a
    // HyperLogLog estimate (about 0.8% standard error), so allow 5%.
    let agents = r["agents"].as_f64().expect("agents is a number");
    assert!((agents - FLOOD as f64).abs() <= 0.05 * FLOOD as f64, "agents {agents}, expected about {FLOOD}");
}

/// Feeds the flood to an engine with `max_agents` and checks the tracked agents after every event.
fn flood_engine(max_agents: usize) -> Engine {
    let mut cfg = EngineConfig::default();
    cfg.engine.max_agents = max_agents;
    let mut engine = Engine::new(cfg).expect("a valid configuration");
    let limits = Limits::default();
    let mut peak = 0;
    for i in 0..FLOOD {
        let line = flood_line(i);
        let ev = decode(line.as_bytes(), &limits).expect("flood lines are valid events");
        let v = engine.process(&ev, Position { source: 0, offset: i as u64 + 1 });
        assert!(!v.duplicate);
        let n = engine.agents();
        peak = peak.max(n);
        assert!(n <= max_agents, "event {i}: {n} agents tracked, the cap is {max_agents}");
    }
    let stats = engine.stats();
    assert_eq!(stats.events, FLOOD as u64);
    assert!(peak >= max_agents * 9 / 10, "the flood must fill the engine to near its cap (peak {peak})");
    assert_eq!(
        stats.agents_evicted,
        (FLOOD - engine.agents()) as u64,
        "every agent beyond the tracked ones was evicted"
    );
    engine
}

#[test]

fn engine_never_tracks_more_agents_than_max_agents() {
    flood_engine(1000);
}

/// While the case above is open: when the cap divides evenly over the shards, the flood must still be
/// evicted down to it, never accumulated.
#[test]
fn engine_never_tracks_more_agents_than_a_cap_that_divides_evenly_over_shards() {
    let engine = flood_engine(1024);
    // An agent evicted long ago comes back: it is tracked again and scored like any new instance.
    let line = flood_line(0).replace(&format!("\"ts\":{T0}"), &format!("\"ts\":{}", T0 + FLOOD as i64 * 10));
    let mut engine = engine;
    let ev = decode(line.as_bytes(), &Limits::default()).unwrap();
    let v = engine.process(&ev, Position::default());
    assert!(!v.duplicate && !v.late, "a returning agent starts afresh");
    assert!(engine.agents() <= 1024);
}
