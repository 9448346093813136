//! Sequential evidence: many mildly unusual events in a short time are one strong signal.
//!
//! Low-and-slow attacks never produce a single damning event: a trickle of small encoded chunks, a
//! handful of new destinations, a loop that keeps every call only a little too expensive. So every
//! component's per-event p-value also feeds a per-agent [`EvidenceAccumulator`] (excess surprise
//! `max(0, -ln p - ln 10)`, decaying with a half-life of event time). The accumulated evidence is
//! judged by a compound Poisson law whose jump rate and size the class learns from its own events
//! ([`vigil_models::JumpLaw`]): per-event p-values are far from uniform in practice (most are exactly
//! 1), so how often a component normally "jumps" is itself a baseline. A component's final p-value is
//! the smaller of its instant and accumulated ones, paying a factor 2 for looking twice.

use super::{min_p, Card, ClassSink, Comp, Ctx};
use crate::classes::ClassOp;
use crate::state::{AgentState, ClassState, ACCUMULATED};
use vigil_models::EvidenceAccumulator;

/// Warm events of a class (for one component) before its jump law may judge accumulated evidence: the
/// law must have seen the class's ordinary rhythm of mildly unusual events. Its prior (uniform p-values,
/// worth ten events) keeps a young law conservative, so this need not be large; a large value kept quiet
/// classes (a few dozen agents writing a few texts an hour each) from judging for most of a day.
const LAW_WARM: f32 = 200.0;

/// Accumulated evidence of one component for one event.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Accumulated {
    /// Decayed excess surprise including this event, nats.
    pub evidence: f64,
    /// Its p-value (1 when there is none).
    pub p: f64,
    /// The per-event p-value that fed the accumulator.
    pub p_instant: f64,
}

/// The per-event p-value a component contributes to its accumulator, if it accumulates at all.
///
/// Only statistics of single events accumulate: summing the p-values of consecutive events of one
/// burst would count the same evidence again and again. Rates and escalation are already sums over a
/// window of events; of the sequence component only the step surprise accumulates (session length
/// and repetition are running counts).
fn per_event_p(c: Comp, card: &Card) -> Option<f64> {
    let s = card.get(c);
    if !s.applicable {
        return None;
    }
    let p = match c {
        Comp::Rate | Comp::Escalation | Comp::ClassChange => return None,
        Comp::Sequence => card.sequence.p_step,
        _ => s.p,
    };
    Some(if s.warm { p } else { 1.0 })
}

/// Whether the component's baseline could judge this event, so that the evidence law may learn its
/// p-value: the component is warm, or (first-seen) a warm vocabulary found nothing new.
fn verdict(c: Comp, card: &Card) -> bool {
    card.get(c).warm || (c == Comp::FirstSeen && card.novelty.mature)
}

/// Adds accumulated evidence to every applicable component of `card`.
pub fn score(ctx: &Ctx, ts: i64, agent: &AgentState, class: &ClassState, card: &mut Card) {
    let factor = agent.acc.factor(ts, ctx.evidence_half_life_ms);
    card.acc_factor = Some(factor);
    for (i, c) in Comp::ALL.into_iter().enumerate().take(ACCUMULATED) {
        let s = *card.get(c);
        let Some(p_event) = per_event_p(c, card) else {
            card.acc[i] = Accumulated::default();
            continue;
        };
        let (evidence, events) = agent.acc.peek(i, p_event, factor);
        let law = &class.jumps[i];
        let p_acc = if evidence > 0.0 && law.observations() >= LAW_WARM { law.p_value(evidence, events) } else { 1.0 };
        card.acc[i] = Accumulated { evidence, p: p_acc, p_instant: p_event };
        if p_acc < s.p {
            card.get_mut(c).p = vigil_models::clamp_p(min_p(&[s.p, p_acc]));
        }
    }
}

/// Learns the event's evidence. `alerted`: this event raised an alert, which *consumes* the evidence
/// that made it (as a CUSUM restarts after signalling): accumulators that spoke are reset, so evidence
/// of one episode does not keep alerting after the episode ends.
pub fn learn(ctx: &Ctx, ts: i64, agent: &mut AgentState, class: &mut ClassSink, card: &Card, w: f64, alerted: bool) {
    if ctx.late {
        return;
    }
    let factor = card.acc_factor.unwrap_or_else(|| agent.acc.factor(ts, ctx.evidence_half_life_ms));
    agent.acc.advance_by(ts, factor);
    for (i, c) in Comp::ALL.into_iter().enumerate().take(ACCUMULATED) {
        if per_event_p(c, card).is_none() {
            continue;
        }
        let p_event = card.acc[i].p_instant;
        if alerted && card.acc[i].p < 1.0 {
            agent.acc.reset(i);
        } else {
            agent.acc.add(i, p_event);
        }
        // The law learns only verdicts of warm baselines: while a baseline warms up, its p-values
        // read 1, and learning those as "no jump" would teach the law that this class never jumps —
        // so the first warm, mildly unusual stretch would look extraordinary.
        if !verdict(c, card) {
            continue;
        }
        let jump = EvidenceAccumulator::excess(p_event);
        class.push(ClassOp::Evidence { comp: i as u8, jump: jump as f32, w: w as f32 });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classes::{ClassLog, ClassOp};
    use crate::config::EngineConfig;

    /// The components whose jump law learns from `card`.
    fn taught(card: &Card) -> Vec<u8> {
        let ctx = Ctx::new(&EngineConfig::default());
        let mut agent = AgentState::new(1);
        let mut log = ClassLog::default();
        learn(&ctx, 1_000, &mut agent, &mut ClassSink { hash: 1, log: &mut log }, card, 1.0, false);
        log.ops()
            .iter()
            .filter_map(|(_, op)| if let ClassOp::Evidence { comp, .. } = op { Some(*comp) } else { None })
            .collect()
    }

    #[test]
    fn the_law_learns_only_verdicts_of_warm_baselines() {
        let (entropy, first_seen) = (Comp::Entropy as u8, Comp::FirstSeen as u8);
        let mut card = Card::default();
        // A baseline still warming up: its unusual text is not a verdict, and teaching it as "no
        // jump" would make the class look calmer than it is.
        card.get_mut(Comp::Entropy).set(1e-3, false);
        assert!(taught(&card).is_empty());
        card.get_mut(Comp::Entropy).set(1e-3, true);
        assert_eq!(taught(&card), vec![entropy]);
        // First-seen: a value a warm vocabulary knows is a verdict ("nothing new"), a young vocabulary's is not.
        let mut card = Card::default();
        card.get_mut(Comp::FirstSeen).set(1.0, false);
        assert!(taught(&card).is_empty());
        card.novelty.mature = true;
        assert_eq!(taught(&card), vec![first_seen]);
    }
}
