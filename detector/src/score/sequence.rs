//! Tool sequences: how surprising is this step after the previous one in the same session, and how
//! unusual is the session's length?
//!
//! The symbol of a step is the tool of a `tool_call`, else the event kind. Each class keeps a bounded
//! first-order transition model; a step's surprise (`-ln P(step | previous)`, nats) is calibrated into
//! a p-value against the class's own history of surprises, so a class with naturally varied sequences
//! does not alarm on variety. Sessions are tracked per agent (a few concurrent ones, least recently used
//! replaced); when a real session ends its length teaches the class, and a running session longer than
//! the class's sessions usually get is evidence too.

use super::{min_p, Card, Comp, Ctx};
use crate::event::Event;
use crate::hash::{hash_str, ns};
use crate::state::{AgentState, ClassState, SessionSlot};

/// Surprise observations before the transition calibrator may alert.
const SURPRISE_WARM: f32 = 200.0;
/// Completed sessions before the length calibrator may alert.
const SESSIONS_WARM: f32 = 20.0;
const MAX_TRANSITIONS: f32 = 50_000.0;
const MAX_SURPRISES: f32 = 20_000.0;
const MAX_SESSIONS: f32 = 5_000.0;
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
    /// Which slot the event's session uses (or will use), and whether it replaces another session.
    pub slot: usize,
    pub new_session: bool,
    pub symbol: u64,
}

fn session_key(ev: &Event) -> (u32, bool) {
    match ev.session_id.as_deref() {
        Some(s) => (
            ((hash_str(ns::SESSION, s) >> 32) as u32).clamp(1, NO_SESSION - 1),
            true,
        ),
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
    let i = (0..agent.sessions.len())
        .min_by_key(|&i| agent.sessions[i].tick)
        .unwrap_or(0);
    (i, true)
}

pub fn score(agent: &AgentState, class: &ClassState, ev: &Event, card: &mut Card) {
    let symbol = hash_str(ns::SYMBOL, ev.step_symbol());
    let (key, real) = session_key(ev);
    let (slot, new_session) = find_slot(agent, key);
    let s = &agent.sessions[slot];
    let prev = (!new_session && s.prev != 0).then_some(s.prev);
    let surprise = class.transitions.surprise(prev, symbol);
    let p_step = class.surprise.p_value(surprise.nats);
    let len = if new_session { 1 } else { s.len + 1 };
    let p_len = if real && len >= 3 {
        class.session_len.p_value((len as f64).ln())
    } else {
        1.0
    };
    let warm_step = class.surprise.total() >= SURPRISE_WARM;
    let warm_len = class.session_len.total() >= SESSIONS_WARM;
    let p = match (warm_step, warm_len) {
        (true, true) | (false, false) => min_p(&[p_step, p_len]),
        (true, false) => p_step,
        (false, true) => p_len,
    };
    card.get_mut(Comp::Sequence).set(p, warm_step || warm_len);
    card.sequence = Detail {
        surprise_nats: surprise.nats,
        p_step,
        pair_count: surprise.pair_count,
        symbol_count: surprise.symbol_count,
        session_len: len,
        p_len,
        slot,
        new_session,
        symbol,
    };
}

pub fn learn(
    ctx: &Ctx,
    agent: &mut AgentState,
    class: &mut ClassState,
    ev: &Event,
    card: &Card,
    w: f64,
) {
    if ctx.late {
        return;
    }
    let d = &card.sequence;
    let (key, real) = session_key(ev);
    let slot = &mut agent.sessions[d.slot];
    if d.new_session {
        if slot.key != 0 && slot.real && slot.len >= 2 {
            class
                .session_len
                .observe((slot.len as f64).ln(), 1.0, MAX_SESSIONS);
        }
        *slot = SessionSlot {
            key,
            real,
            prev: 0,
            len: 0,
            tick: 0,
        };
    }
    let prev = (slot.prev != 0).then_some(slot.prev);
    slot.prev = d.symbol;
    slot.len = slot.len.saturating_add(1);
    slot.tick = ctx.tick;
    if w > 0.0 {
        class
            .transitions
            .observe(prev, d.symbol, w, MAX_TRANSITIONS);
        class.surprise.observe(d.surprise_nats, w, MAX_SURPRISES);
    }
}
