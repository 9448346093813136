//! Payload entropy: encoded or encrypted data where the class normally sends text.
//!
//! The text of an event (`args` of a tool call, `payload` of a tool result, network or file event,
//! `content` of a message, `cmd` of a process; strings of 64 bytes or more) is scanned for tokens that
//! look like random data ([`vigil_models::blob_scan`]). The statistic is `log2(1 + random bytes)`,
//! calibrated per class and direction (outbound, inbound, conversation) against the class's own
//! history — a class whose image tool returns base64 all day learns that — with an exponential tail
//! beyond anything seen. Shorter texts count as texts without random data. (A slow trickle of small
//! encoded chunks adds up in the agent's evidence accumulator, see [`super::evidence`].) Learning is
//! guarded twice: a text the calibrator itself finds anomalous teaches it at the anomalous weight, and an
//! agent with accumulated entropy evidence teaches its class e-fold less per [`SUSPECT_NATS`].

use super::{Card, ClassSink, Comp, Ctx};
use crate::classes::ClassOp;
use crate::event::{Event, Kind};
use crate::hash::{combine, hash_str, ns};
use crate::state::{text_slot, ClassState};
use std::borrow::Cow;
use vigil_models::blob_scan;

/// Shortest text judged.
pub const MIN_TEXT: usize = 64;
/// A text whose own p-value is below this teaches the calibrator only at the anomalous weight.
const ANOMALOUS_TEXT_P: f64 = 1e-2;
/// Accumulated evidence (nats of excess surprise) over which an agent's texts teach the class's
/// calibrators e-fold less.
const SUSPECT_NATS: f64 = 3.0;
/// Texts of a kind seen before the calibrator may alert.
const WARM: f32 = 100.0;

#[derive(Clone, Debug, Default)]
pub struct Detail {
    pub field: &'static str,
    /// Calibrator slot (direction) of the text.
    pub slot: u8,
    /// Key of the per-tool / per-host calibration (0: none), and whether it judged this text.
    pub key: u64,
    pub by_key: bool,
    pub len: usize,
    pub random_bytes: usize,
    pub stat: f64,
    pub p_single: f64,
}

/// The text of an event the entropy detector reads, and the field it came from (any length).
pub fn text_of<'e>(ev: &'e Event<'_>) -> Option<(&'static str, Cow<'e, str>)> {
    match ev.kind {
        Kind::ToolCall => ev.args_text().map(|t| ("args", t)),
        Kind::ToolResult | Kind::Net | Kind::File => ev.payload.as_deref().map(|t| ("payload", Cow::Borrowed(t))),
        Kind::Message => ev.content.as_deref().map(|t| ("content", Cow::Borrowed(t))),
        Kind::Process => ev.cmd.as_deref().map(|t| ("cmd", Cow::Borrowed(t))),
        _ => None,
    }
}

/// The text's length and bytes without copying where possible (tool-call args are read as raw JSON
/// unless they are a JSON string).
fn text_bytes<'e>(ev: &'e Event<'_>) -> Option<(&'static str, Cow<'e, str>)> {
    if ev.kind == Kind::ToolCall {
        let raw = ev.args?.get();
        if !raw.starts_with('"') {
            return Some(("args", Cow::Borrowed(raw)));
        }
    }
    text_of(ev)
}

/// The key of the finer calibration of an event's text: its tool, or its destination host.
fn text_key(ev: &Event, slot: usize) -> Option<u64> {
    let name = match ev.kind {
        Kind::ToolCall | Kind::ToolResult => ev.tool.as_deref()?,
        Kind::Net => ev.dest_host()?,
        _ => return None,
    };
    Some(combine(hash_str(ns::SYMBOL, name), slot as u64))
}

pub fn score(class: &ClassState, ev: &Event, card: &mut Card) {
    let Some(slot) = text_slot(ev.kind, ev.op.as_deref()) else { return };
    let Some((field, text)) = text_bytes(ev) else { return };
    // Short texts are judged too: they are texts without random data, which is what the
    // calibrator must learn is normal.
    let random_bytes = if text.len() >= MIN_TEXT { blob_scan(text.as_bytes()).random_bytes } else { 0 };
    // (`log2(1) = 0`: most texts carry no random bytes and need no logarithm.)
    let stat = if random_bytes == 0 { 0.0 } else { (1.0 + random_bytes as f64).log2() };
    // The finest calibration with enough history: per tool (arguments and results) or destination
    // host (network payloads) — a tool whose arguments never carry blobs tells more than a class
    // whose other tools send tokens all day — else the class's texts of this direction.
    let key = text_key(ev, slot);
    let fine = key.and_then(|k| class.entropy_by.get(k)).filter(|c| c.total() >= WARM);
    let (cal, by) = match fine {
        Some(c) => (c, true),
        None => (&class.entropy[slot], false),
    };
    let p_single = if random_bytes > 0 { cal.p_value(stat) } else { 1.0 };
    let warm = cal.total() >= WARM;
    card.get_mut(Comp::Entropy).set(p_single, warm);
    card.entropy = Detail {
        field,
        slot: slot as u8,
        key: key.unwrap_or(0),
        by_key: by,
        len: text.len(),
        random_bytes,
        stat,
        p_single,
    };
}

pub fn learn(ctx: &Ctx, class: &mut ClassSink, card: &Card, w: f64) {
    let s = card.get(Comp::Entropy);
    if ctx.late || !s.applicable {
        return;
    }
    let d = &card.entropy;
    // Guarded per baseline: a text this calibrator found anomalous teaches it at the anomalous weight
    // even when the event as a whole did not score anomalous.
    let w = if d.p_single < ANOMALOUS_TEXT_P { w.min(ctx.anomalous_weight) } else { w };
    // Capped per agent: an agent whose recent texts have piled up evidence (the accumulator, see
    // super::evidence) teaches its class less and less, so one agent's hour of encoded chunks cannot
    // make them the class's normal — for itself or for the next agent that does the same.
    let w = w * (-card.acc[Comp::Entropy as usize].evidence / SUSPECT_NATS).exp();
    class.push(ClassOp::Entropy { key: d.key, slot: d.slot, stat: d.stat as f32, w: w as f32 });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classes::ClassLog;
    use crate::config::EngineConfig;

    /// The weight with which a text of p-value `p`, from an agent with `evidence` nats of accumulated
    /// entropy evidence, teaches its class.
    fn taught_weight(p: f64, evidence: f64) -> f32 {
        let ctx = Ctx::new(&EngineConfig::default());
        let mut log = ClassLog::default();
        let mut card = Card::default();
        card.get_mut(Comp::Entropy).set(p, true);
        card.entropy = Detail { p_single: p, stat: 8.0, ..Detail::default() };
        card.acc[Comp::Entropy as usize].evidence = evidence;
        learn(&ctx, &mut ClassSink { hash: 1, log: &mut log }, &card, 1.0);
        match log.ops() {
            [(1, ClassOp::Entropy { w, .. })] => *w,
            other => panic!("expected one entropy update, got {}", other.len()),
        }
    }

    #[test]
    fn learning_is_guarded_per_text_and_per_agent() {
        // An ordinary text from an unsuspected agent teaches at full weight.
        assert_eq!(taught_weight(0.5, 0.0), 1.0);
        // A text the calibrator finds anomalous teaches at the anomalous weight.
        assert_eq!(taught_weight(1e-4, 0.0), EngineConfig::default().detectors.anomalous_learning_weight as f32);
        // An agent with accumulated evidence teaches e-fold less per SUSPECT_NATS, whatever the text.
        let w = taught_weight(0.5, SUSPECT_NATS);
        assert!((w - (-1.0f32).exp()).abs() < 1e-6, "{w}");
        assert!(taught_weight(0.5, 10.0 * SUSPECT_NATS) < 1e-4);
    }
}
