//! Shared corpus for vigil's benchmarks: a simulated fleet, generated in memory with the same
//! simulator as `vigil simulate`, so every bench measures the same realistic mix of events (LLM calls,
//! tool calls and results with prose payloads, messages, network, file, process and auth events, and
//! a few labelled attacks) rather than a hand-written handful of lines.
//!
//! The benches themselves live in `benches/benches/`; the throughput and memory harnesses (whole
//! `vigil replay` runs, pinned to a core) are the shell scripts next to this crate. Figures and the
//! commands that produced them are in `benches/README.md`.

use vigil_detector::decode::{decode, Limits};
use vigil_detector::{Event, Position};
use vigil_sim::{parse_attack_list, simulate, SimConfig};

/// Agents of the bench fleet (the throughput figures use a 2,000-agent file too).
pub const AGENTS: usize = 2_000;

/// A simulated fleet as JSON Lines: `events` events of `agents` agents, every attack type, seed 1.
pub fn corpus(agents: usize, events: u64) -> Vec<u8> {
    let cfg = SimConfig {
        agents,
        duration_ms: None,
        events: Some(events),
        attacks: parse_attack_list("all").expect("`all` is a valid attack list"),
        ..SimConfig::default()
    };
    let mut out = Vec::with_capacity(events as usize * 420);
    simulate(&cfg, &mut out, None).expect("the bench simulation config is valid");
    out
}

/// The lines of a JSON Lines text (without their newlines).
pub fn lines(text: &[u8]) -> Vec<&[u8]> {
    text.split(|&b| b == b'\n').filter(|l| !l.is_empty()).collect()
}

/// Every line decoded (the simulator writes only valid events), with its position.
pub fn decoded<'a>(lines: &[&'a [u8]]) -> Vec<(Event<'a>, Position)> {
    let limits = Limits::default();
    lines
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let ev = decode(l, &limits).unwrap_or_else(|r| panic!("simulated line {} rejected: {r}", i + 1));
            (ev, Position { source: 0, offset: i as u64 + 1 })
        })
        .collect()
}
