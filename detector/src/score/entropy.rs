//! Payload entropy: encoded or encrypted data where the class normally sends text.
//!
//! The text of an event (`args` of a tool call, `payload` of a tool result, network or file event,
//! `content` of a message, `cmd` of a process; strings of 64 bytes or more) is scanned for tokens that
//! look like random data ([`vigil_models::blob_scan`]). The statistic is `log2(1 + random bytes)`,
//! calibrated per class and kind against the class's own history — a class whose image tool returns
//! base64 all day learns that — with an exponential tail beyond anything seen. A per-agent evidence
//! accumulator adds up moderately unusual payloads over time, which is how a slow trickle of small
//! encoded chunks becomes one strong signal.

use super::{min_p, Card, Comp, Ctx};
use crate::event::{Event, Kind};
use crate::state::{text_kind_slot, AgentState, ClassState};
use std::borrow::Cow;
use vigil_models::blob_scan;

/// Shortest text judged.
pub const MIN_TEXT: usize = 64;
/// Texts of a kind seen before the calibrator may alert.
const WARM: f32 = 50.0;
const MAX_TEXTS: f32 = 5_000.0;

#[derive(Clone, Debug, Default)]
pub struct Detail {
    pub field: &'static str,
    pub len: usize,
    pub random_bytes: usize,
    pub stat: f64,
    pub p_single: f64,
    /// Accumulated evidence (nats) and its p-value including this event.
    pub evidence: f64,
    pub p_accumulated: f64,
}

/// The text of an event the entropy detector reads, and the field it came from.
pub fn text_of<'e>(ev: &'e Event<'_>) -> Option<(&'static str, Cow<'e, str>)> {
    let (field, text): (&'static str, Option<Cow<'e, str>>) = match ev.kind {
        Kind::ToolCall => ("args", ev.args_text()),
        Kind::ToolResult | Kind::Net | Kind::File => {
            ("payload", ev.payload.as_deref().map(Cow::Borrowed))
        }
        Kind::Message => ("content", ev.content.as_deref().map(Cow::Borrowed)),
        Kind::Process => ("cmd", ev.cmd.as_deref().map(Cow::Borrowed)),
        _ => return None,
    };
    text.filter(|t| t.len() >= MIN_TEXT).map(|t| (field, t))
}

/// The raw text without copying where possible (tool-call args are borrowed as raw JSON unless they
/// are a JSON string).
fn text_bytes<'e>(ev: &'e Event<'_>) -> Option<(&'static str, Cow<'e, str>)> {
    if ev.kind == Kind::ToolCall {
        let raw = ev.args?.get();
        if raw.len() < MIN_TEXT {
            return None;
        }
        if !raw.starts_with('"') {
            return Some(("args", Cow::Borrowed(raw)));
        }
    }
    text_of(ev)
}

pub fn score(
    ctx: &Ctx,
    ts: i64,
    agent: &AgentState,
    class: &ClassState,
    ev: &Event,
    card: &mut Card,
) {
    let Some(slot) = text_kind_slot(ev.kind) else {
        return;
    };
    let Some((field, text)) = text_bytes(ev) else {
        return;
    };
    let blob = blob_scan(text.as_bytes());
    let stat = (1.0 + blob.random_bytes as f64).log2();
    let cal = &class.entropy[slot];
    let p_single = if blob.random_bytes > 0 {
        cal.p_value(stat)
    } else {
        1.0
    };
    let warm = cal.total() >= WARM;
    let (evidence, p_acc) = agent.entropy_acc.peek(
        if warm { p_single } else { 1.0 },
        ts,
        ctx.evidence_half_life_ms,
    );
    let p = if p_acc < 1.0 {
        min_p(&[p_single, p_acc])
    } else {
        p_single
    };
    card.get_mut(Comp::Entropy).set(p, warm);
    card.entropy = Detail {
        field,
        len: text.len(),
        random_bytes: blob.random_bytes,
        stat,
        p_single,
        evidence,
        p_accumulated: p_acc,
    };
}

pub fn learn(
    ctx: &Ctx,
    ts: i64,
    agent: &mut AgentState,
    class: &mut ClassState,
    ev: &Event,
    card: &Card,
    w: f64,
) {
    if ctx.late || !card.get(Comp::Entropy).applicable {
        return;
    }
    let d = &card.entropy;
    let Some(slot) = text_kind_slot(ev.kind) else {
        return;
    };
    let warm = class.entropy[slot].total() >= WARM;
    agent.entropy_acc.observe(
        if warm { d.p_single } else { 1.0 },
        ts,
        ctx.evidence_half_life_ms,
    );
    class.entropy[slot].observe(d.stat, w, MAX_TEXTS);
}
