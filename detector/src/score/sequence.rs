//! Tool sequences: how surprising is this step after the previous one in the same session, and how
//! unusual is the session's length?
//!
//! The symbol of a step is the tool of a `tool_call`, else the event kind. Each class keeps a bounded
//! first-order transition model; a step's surprise (`-ln P(step | previous)`, nats) is calibrated into
//! a p-value against the class's own history of surprises, so a class with naturally varied sequences
//! does not alarm on variety. Sessions are tracked per agent (a few concurrent ones, least recently used
//! replaced); when a real session ends its length teaches the class, and a running session longer than
//! the class's sessions usually get is evidence too. So is a loop: the same tool called with the same
//! arguments many times in a row, judged against how often the class's calls repeat.

use super::{min_p, Card, ClassSink, Comp, Ctx};
use crate::classes::ClassOp;
use crate::event::{Event, Kind};
use crate::hash::{combine, hash_str, ns};
use crate::state::{AgentState, ClassState, SessionSlot};
use std::sync::OnceLock;

/// Surprise observations before the transition calibrator may alert.
const SURPRISE_WARM: f32 = 500.0;
/// Completed sessions before the length calibrator may alert.
const SESSIONS_WARM: f32 = 20.0;
/// Tool calls before the repetition calibrator may alert.
const REPEATS_WARM: f32 = 200.0;
/// Key of the session-less stream.
const NO_SESSION: u32 = u32::MAX;

#[derive(Clone, Debug, Default)]
pub struct Detail {
    pub surprise_nats: f64,
    pub p_step: f64,
    pub pair_count: f64,
    pub symbol_count: f64,
    /// Session length including this step, and its p-value (1 when not judged).
    pub session_len: u32,
    pub p_len: f64,
    /// Times in a row this tool call repeated the previous one, and its p-value.
    pub repeats: u32,
    pub p_repeat: f64,
    pub call: u32,
    /// Which slot the event's session uses (or will use), and whether it replaces another session.
    pub slot: usize,
    pub new_session: bool,
    pub symbol: u64,
}

fn session_key(ev: &Event) -> (u32, bool) {
    match ev.session_id.as_deref() {
        Some(s) => (((hash_str(ns::SESSION, s) >> 32) as u32).clamp(1, NO_SESSION - 1), true),
        None => (NO_SESSION, false),
    }
}

/// The session slot for `key`: its own, else an empty one, else the least recently used.
fn find_slot(agent: &AgentState, key: u32) -> (usize, bool) {
    if let Some(i) = agent.sessions.iter().position(|s| s.key == key) {
        return (i, false);
    }
    if let Some(i) = agent.sessions.iter().position(|s| s.key == 0) {
        return (i, true);
    }
    let i = (0..agent.sessions.len()).min_by_key(|&i| agent.sessions[i].tick).unwrap_or(0);
    (i, true)
}

/// Hash of a tool call: tool and raw arguments (0 for other events).
fn call_hash(ev: &Event) -> u32 {
    match (ev.kind, ev.tool.as_deref()) {
        (Kind::ToolCall, Some(tool)) => {
            let h = combine(hash_str(ns::SYMBOL, tool), hash_str(ns::VALUE, ev.args.map(|a| a.get()).unwrap_or("")));
            ((h >> 32) as u32).max(1)
        }
        _ => 0,
    }
}

/// `ln(len)`, from a table for the session lengths that occur (the same bits as computing it: the
/// table is filled by the same function).
fn ln_len(len: u32) -> f64 {
    const TABLED: usize = 1024;
    static TABLE: OnceLock<[f64; TABLED]> = OnceLock::new();
    match TABLE.get_or_init(|| std::array::from_fn(|n| (n as f64).ln())).get(len as usize) {
        Some(&v) => v,
        None => (len as f64).ln(),
    }
}

pub fn score(agent: &AgentState, class: &ClassState, ev: &Event, card: &mut Card) {
    let symbol = hash_str(ns::SYMBOL, ev.step_symbol());
    let (key, real) = session_key(ev);
    let (slot, new_session) = find_slot(agent, key);
    let s = &agent.sessions[slot];
    let prev = (!new_session && s.prev != 0).then_some(s.prev);
    let surprise = class.transitions.surprise(prev, symbol);
    // Calibrated against the class's history of surprises, but never more surprising than the model's
    // own probability of the step: a rare path the model knows is not a one-in-a-million event.
    // A symbol the class has (almost) never seen is the first-seen detector's fact; the sequence judges
    // the order of known steps, so the same novelty is not counted twice.
    let p_step = if surprise.symbol_count < 1.0 {
        1.0
    } else {
        // (`e^-nats <= 1`, so a calibrated p of 1 needs no exponential.)
        let p = class.surprise.p_value(surprise.nats);
        if p >= 1.0 {
            p
        } else {
            p.max((-surprise.nats).exp())
        }
    };
    let len = if new_session { 1 } else { s.len + 1 };
    let p_len = if real && len >= 3 { class.session_len.p_value(ln_len(len)) } else { 1.0 };
    // A loop: the same tool called with the same arguments again and again.
    let call = call_hash(ev);
    let repeats = if call != 0 && !new_session && s.last_call == call { s.repeats + 1 } else { 0 };
    let p_repeat = if repeats >= 2 { class.repeats.p_value(repeats as f64) } else { 1.0 };

    let looks = [
        (p_step, class.surprise.total() >= SURPRISE_WARM),
        (p_len, class.session_len.total() >= SESSIONS_WARM),
        (p_repeat, class.repeats.total() >= REPEATS_WARM),
    ];
    let warm = looks.iter().any(|l| l.1);
    let mut ps = [1.0f64; 3];
    for (p, (q, w)) in ps.iter_mut().zip(looks) {
        // Once some look is warm, only warm looks may speak.
        if w || !warm {
            *p = q;
        }
    }
    card.get_mut(Comp::Sequence).set(min_p(&ps), warm);
    card.sequence = Detail {
        surprise_nats: surprise.nats,
        p_step,
        pair_count: surprise.pair_count,
        symbol_count: surprise.symbol_count,
        session_len: len,
        p_len,
        repeats,
        p_repeat,
        call,
        slot,
        new_session,
        symbol,
    };
}

pub fn learn(ctx: &Ctx, agent: &mut AgentState, class: &mut ClassSink, ev: &Event, card: &Card, w: f64) {
    if ctx.late {
        return;
    }
    let d = &card.sequence;
    let (key, real) = session_key(ev);
    let slot = &mut agent.sessions[d.slot];
    if d.new_session {
        if slot.key != 0 && slot.real && slot.len >= 2 {
            class.push(ClassOp::SessionLen { ln_len: (slot.len as f32).ln() });
        }
        *slot = SessionSlot { key, real, ..SessionSlot::default() };
    }
    let prev = (slot.prev != 0).then_some(slot.prev);
    slot.prev = d.symbol;
    slot.len = slot.len.saturating_add(1);
    slot.tick = ctx.tick;
    if d.call != 0 {
        slot.last_call = d.call;
        slot.repeats = d.repeats;
        class.push(ClassOp::Repeat { n: d.repeats as f32 });
    }
    if w > 0.0 {
        class.push(ClassOp::Step {
            prev: prev.unwrap_or(0),
            cur: d.symbol,
            surprise: d.surprise_nats as f32,
            w: w as f32,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tabled_logarithms_are_the_computed_ones() {
        for n in [0u32, 1, 2, 3, 17, 1023, 1024, 5000, u32::MAX] {
            assert_eq!(ln_len(n).to_bits(), (n as f64).ln().to_bits(), "{n}");
        }
    }
}
