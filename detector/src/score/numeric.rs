//! Numeric baselines: token usage (`tokens`) and reported numbers (`metric`: `metric.value` per name,
//! `bytes_out`, `latency_ms`).
//!
//! All of these are multiplicative, heavy-tailed quantities, so they are modelled on a log scale
//! (`ln(1 + x)`, sign-preserving for metrics that can be negative). The class keeps the empirical
//! distribution ([`vigil_models::TailCalibrator`]): its tail is learned, not assumed — a class that now
//! and then uploads a large file makes large uploads unremarkable — with an exponential extension
//! beyond anything seen. Each agent keeps robust moments with a Laplace tail. Like rates, a value must
//! be unusual for the agent **and** its class (larger p-value), and a new agent is judged by its class.

use super::{min_p, Basis, Card, ClassSink, Comp, Ctx};
use crate::classes::{ClassOp, MomentsId};
use crate::event::{Event, Kind};
use crate::hash::{hash_str, ns};
use crate::state::{AgentState, ClassState, MetricSlot, METRIC_SLOTS};
use vigil_models::{RobustMoments, TailCalibrator};

const AGENT_WARM: f32 = 20.0;
const CLASS_WARM: f32 = 50.0;
const AGENT_MAX_N: f32 = 300.0;
/// Smallest spread on the log scale: a ~35% change is never "many standard deviations".
const MIN_SD: f64 = 0.3;

/// Which numeric signal a verdict is about.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Signal {
    #[default]
    Tokens,
    BytesOut,
    Latency,
    /// `metric.value` (the name is on the event).
    Metric,
}

impl Signal {
    pub fn label(self) -> &'static str {
        match self {
            Signal::Tokens => "tokens",
            Signal::BytesOut => "bytes_out",
            Signal::Latency => "latency_ms",
            Signal::Metric => "metric.value",
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct Detail {
    pub signal: Signal,
    pub value: f64,
    /// Typical value (back-transformed mean of the log scale).
    pub typical: f64,
    /// Spread on the log scale.
    pub sd_log: f64,
    pub basis: Basis,
    pub p: f64,
}

/// `ln(1 + |x|)` with the sign of `x`.
#[inline]
pub fn slog(x: f64) -> f64 {
    x.signum() * x.abs().ln_1p()
}

#[inline]
fn unslog(y: f64) -> f64 {
    y.signum() * y.abs().exp_m1()
}

/// Judges log-scale value `x` against agent and class baselines.
///
/// The p-values decide; the typical value and spread (for explanations) are computed only for the
/// baseline that decided — the class's takes three quantile scans of its histogram.
fn judge(
    signal: Signal,
    value: f64,
    x: f64,
    agent: Option<&RobustMoments>,
    class: Option<&TailCalibrator>,
) -> (Detail, bool) {
    let agent = agent.filter(|m| m.count() >= AGENT_WARM);
    // The agent's verdict: robust moments with a Laplace tail.
    let a = agent.map(|m| m.upper_p(x, MIN_SD));
    // The class's verdict: the empirical tail of its own distribution (with an exponential extension).
    let class = class.filter(|c| c.total() >= CLASS_WARM);
    let c = class.map(|c| c.p_value(x));
    let agent_says = |m: &RobustMoments, p: f64| (p, m.mean(), m.sd().max(MIN_SD));
    let class_says = |c: &TailCalibrator, p: f64| {
        let (q25, q50, q75) = (c.quantile(0.25), c.quantile(0.5), c.quantile(0.75));
        (p, q50, ((q75 - q25) / 1.349).max(MIN_SD))
    };
    let (res, basis, warm) = match (agent.zip(a), class.zip(c)) {
        (Some((m, a)), Some((_, c))) if a >= c => (agent_says(m, a), Basis::Both, true),
        (Some(_), Some((cal, c))) => (class_says(cal, c), Basis::Both, true),
        (Some((m, a)), None) => (agent_says(m, a), Basis::Agent, true),
        (None, Some((cal, c))) => (class_says(cal, c), Basis::Class, true),
        (None, None) => ((1.0, x, MIN_SD), Basis::Prior, false),
    };
    (Detail { signal, value, typical: unslog(res.1), sd_log: res.2, basis, p: res.0 }, warm)
}

fn metric_key(name: &str) -> u32 {
    ((hash_str(ns::NAME, name) >> 32) as u32).max(1)
}

pub fn score(agent: &AgentState, class: &ClassState, ev: &Event, card: &mut Card) {
    if let (Kind::LlmCall, Some(t)) = (ev.kind, ev.tokens_total()) {
        let (d, warm) = judge(Signal::Tokens, t as f64, slog(t as f64), Some(&agent.tokens), Some(&class.tokens));
        card.get_mut(Comp::Tokens).set(d.p, warm);
        card.tokens = d;
    }

    let mut looks: [Option<(Detail, bool)>; 3] = [None, None, None];
    if let Some(b) = ev.bytes_out {
        looks[0] =
            Some(judge(Signal::BytesOut, b as f64, slog(b as f64), Some(&agent.bytes_out), Some(&class.bytes_out)));
    }
    if let Some(l) = ev.latency_ms {
        looks[1] = Some(judge(Signal::Latency, l as f64, slog(l as f64), Some(&agent.latency), Some(&class.latency)));
    }
    if let (Kind::Metric, Some(name), Some(v)) = (ev.kind, ev.metric_name.as_deref(), ev.metric_value) {
        let key = metric_key(name);
        let mine = agent.metrics.iter().find(|s| s.key == key).map(|s| &s.moments);
        looks[2] = Some(judge(Signal::Metric, v, slog(v), mine, class.metrics.get(key as u64)));
    }
    let mut ps = [1.0f64; 3];
    let mut warm = false;
    let mut best: Option<&Detail> = None;
    for (i, l) in looks.iter().enumerate() {
        if let Some((d, w)) = l {
            ps[i] = d.p;
            warm |= *w;
            if best.is_none_or(|b| d.p < b.p) {
                best = Some(d);
            }
        }
    }
    if let Some(b) = best {
        card.metric = b.clone();
        card.get_mut(Comp::Metric).set(min_p(&ps), warm);
    }
}

pub fn learn(ctx: &Ctx, agent: &mut AgentState, class: &mut ClassSink, ev: &Event, w: f64) {
    if ctx.late || w <= 0.0 {
        return;
    }
    let mut both = |m: &mut RobustMoments, which: MomentsId, x: f64| {
        m.observe(x, w, AGENT_MAX_N);
        class.push(ClassOp::Moments { which, x: x as f32, w: w as f32 });
    };
    if let (Kind::LlmCall, Some(t)) = (ev.kind, ev.tokens_total()) {
        both(&mut agent.tokens, MomentsId::Tokens, slog(t as f64));
    }
    if let Some(b) = ev.bytes_out {
        both(&mut agent.bytes_out, MomentsId::BytesOut, slog(b as f64));
    }
    if let Some(l) = ev.latency_ms {
        both(&mut agent.latency, MomentsId::Latency, slog(l as f64));
    }
    if let (Kind::Metric, Some(name), Some(v)) = (ev.kind, ev.metric_name.as_deref(), ev.metric_value) {
        let key = metric_key(name);
        let x = slog(v);
        let i = agent.metrics.iter().position(|s| s.key == key).unwrap_or_else(|| {
            // An empty slot, else the least-observed name's slot.
            let i = agent.metrics.iter().position(|s| s.key == 0).unwrap_or_else(|| {
                (0..METRIC_SLOTS)
                    .min_by(|&a, &b| agent.metrics[a].moments.count().total_cmp(&agent.metrics[b].moments.count()))
                    .unwrap_or(0)
            });
            agent.metrics[i] = MetricSlot { key, moments: RobustMoments::default() };
            i
        });
        agent.metrics[i].moments.observe(x, w, AGENT_MAX_N);
        class.push(ClassOp::Metric { key, x: x as f32, w: w as f32 });
    }
}
