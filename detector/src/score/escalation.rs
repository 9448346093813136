//! Repeated escalation: privileged actions and identity operations, above all denied ones, piling up.
//!
//! Every `auth` event and every event with `privileged: true` adds to a per-agent sum that decays with
//! a half-life of event time (denied attempts weigh 3, errors 1.5, successes 1). The level the sum
//! reaches is judged against the levels the class normally reaches at such events (a negative binomial
//! on the learned mean and variance); a class with no history of escalation is judged against a small
//! Poisson prior, once it has enough ordinary history to say so.

use super::{Card, ClassSink, Comp, Ctx};
use crate::classes::{ClassOp, MomentsId};
use crate::event::{Event, Kind, Outcome};
use crate::state::{AgentState, ClassState};
use vigil_models::count_sf;

/// Escalation events before the class's own levels are trusted.
const CLASS_WARM: f32 = 20.0;
/// Ordinary events before a class without escalation history may alert on the prior.
const PRIOR_WARM_EVENTS: u64 = 500;
const PRIOR_MEAN: f64 = 0.5;

#[derive(Clone, Debug, Default)]
pub struct Detail {
    /// The decayed level including this event.
    pub level: f64,
    pub mean: f64,
    pub from_class: bool,
}

/// Whether an event counts as escalation, and its weight: privileged and `auth` events (denied 3,
/// error 1.5, ok 1), and any other denied action (1.5: probing a permission boundary).
pub fn weight(ev: &Event) -> Option<f64> {
    if !(ev.privileged || ev.kind == Kind::Auth) {
        return (ev.outcome == Outcome::Denied).then_some(1.5);
    }
    Some(match ev.outcome {
        Outcome::Denied => 3.0,
        Outcome::Error => 1.5,
        Outcome::Ok => 1.0,
    })
}

pub fn score(ctx: &Ctx, ts: i64, agent: &AgentState, class: &ClassState, ev: &Event, card: &mut Card) {
    let Some(w) = weight(ev) else { return };
    let level = agent.escalation.at(ts, ctx.escalation_half_life_ms) + w;
    let x = level.floor() as u32;
    let m = &class.escalation;
    let (p, warm, mean, from_class) = if m.count() >= CLASS_WARM {
        let mean = m.mean().max(1.0);
        let var = m.var().max(mean);
        let p = if level <= mean + 2.0 * var.sqrt() { 1.0 } else { count_sf(x, mean, var) };
        (p, true, mean, true)
    } else {
        let p = if x >= 2 { count_sf(x, PRIOR_MEAN, PRIOR_MEAN) } else { 1.0 };
        (p, class.events >= PRIOR_WARM_EVENTS, PRIOR_MEAN, false)
    };
    card.get_mut(Comp::Escalation).set(p, warm);
    card.escalation = Detail { level, mean, from_class };
}

pub fn learn(ctx: &Ctx, ts: i64, agent: &mut AgentState, class: &mut ClassSink, ev: &Event, card: &Card, w: f64) {
    if ctx.late {
        return;
    }
    let Some(e) = weight(ev) else { return };
    agent.escalation.add(e, ts, ctx.escalation_half_life_ms);
    class.push(ClassOp::Moments { which: MomentsId::Escalation, x: card.escalation.level as f32, w: w as f32 });
}
