//! Numeric baselines: token usage (`tokens`) and reported numbers (`metric`: `metric.value` per name,
//! `bytes_out`, `latency_ms`).
//!
//! All of these are multiplicative, heavy-tailed quantities, so they are modelled on a log scale
//! (`ln(1 + x)`, sign-preserving for metrics that can be negative) with robust moments and a Student-t
//! upper tail. Like rates, a value must be unusual for the agent **and** its class (larger p-value), and
//! a new agent is judged by its class.

use super::{min_p, Basis, Card, Comp, Ctx};
use crate::event::{Event, Kind};
use crate::hash::{hash_str, ns};
use crate::state::{AgentState, ClassState, MetricSlot, METRIC_SLOTS};
use vigil_models::RobustMoments;

const AGENT_WARM: f32 = 20.0;
const CLASS_WARM: f32 = 50.0;
const AGENT_MAX_N: f32 = 300.0;
const CLASS_MAX_N: f32 = 3000.0;
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

fn tail(x: f64, m: &RobustMoments, warm_at: f32) -> Option<(f64, f64, f64)> {
    (m.count() >= warm_at).then(|| (m.upper_p(x, MIN_SD), m.mean(), m.sd().max(MIN_SD)))
}

/// Judges log-scale value `x` against agent and class moments.
fn judge(
    signal: Signal,
    value: f64,
    x: f64,
    agent: Option<&RobustMoments>,
    class: Option<&RobustMoments>,
) -> (Detail, bool) {
    let a = agent.and_then(|m| tail(x, m, AGENT_WARM));
    let c = class.and_then(|m| tail(x, m, CLASS_WARM));
    let (res, basis, warm) = match (a, c) {
        (Some(a), Some(c)) => (if a.0 >= c.0 { a } else { c }, Basis::Both, true),
        (Some(a), None) => (a, Basis::Agent, true),
        (None, Some(c)) => (c, Basis::Class, true),
        (None, None) => ((1.0, x, MIN_SD), Basis::Prior, false),
    };
    (
        Detail {
            signal,
            value,
            typical: unslog(res.1),
            sd_log: res.2,
            basis,
            p: res.0,
        },
        warm,
    )
}

fn metric_key(name: &str) -> u32 {
    ((hash_str(ns::NAME, name) >> 32) as u32).max(1)
}

pub fn score(agent: &AgentState, class: &ClassState, ev: &Event, card: &mut Card) {
    if let (Kind::LlmCall, Some(t)) = (ev.kind, ev.tokens_total()) {
        let (d, warm) = judge(
            Signal::Tokens,
            t as f64,
            slog(t as f64),
            Some(&agent.tokens),
            Some(&class.tokens),
        );
        card.get_mut(Comp::Tokens).set(d.p, warm);
        card.tokens = d;
    }

    let mut looks: [Option<(Detail, bool)>; 3] = [None, None, None];
    if let Some(b) = ev.bytes_out {
        looks[0] = Some(judge(
            Signal::BytesOut,
            b as f64,
            slog(b as f64),
            Some(&agent.bytes_out),
            Some(&class.bytes_out),
        ));
    }
    if let Some(l) = ev.latency_ms {
        looks[1] = Some(judge(
            Signal::Latency,
            l as f64,
            slog(l as f64),
            Some(&agent.latency),
            Some(&class.latency),
        ));
    }
    if let (Kind::Metric, Some(name), Some(v)) =
        (ev.kind, ev.metric_name.as_deref(), ev.metric_value)
    {
        let key = metric_key(name);
        let mine = agent
            .metrics
            .iter()
            .find(|s| s.key == key)
            .map(|s| &s.moments);
        looks[2] = Some(judge(
            Signal::Metric,
            v,
            slog(v),
            mine,
            class.metrics.get(key as u64),
        ));
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

pub fn learn(ctx: &Ctx, agent: &mut AgentState, class: &mut ClassState, ev: &Event, w: f64) {
    if ctx.late || w <= 0.0 {
        return;
    }
    if let (Kind::LlmCall, Some(t)) = (ev.kind, ev.tokens_total()) {
        let x = slog(t as f64);
        agent.tokens.observe(x, w, AGENT_MAX_N);
        class.tokens.observe(x, w, CLASS_MAX_N);
    }
    if let Some(b) = ev.bytes_out {
        let x = slog(b as f64);
        agent.bytes_out.observe(x, w, AGENT_MAX_N);
        class.bytes_out.observe(x, w, CLASS_MAX_N);
    }
    if let Some(l) = ev.latency_ms {
        let x = slog(l as f64);
        agent.latency.observe(x, w, AGENT_MAX_N);
        class.latency.observe(x, w, CLASS_MAX_N);
    }
    if let (Kind::Metric, Some(name), Some(v)) =
        (ev.kind, ev.metric_name.as_deref(), ev.metric_value)
    {
        let key = metric_key(name);
        let x = slog(v);
        let i = agent
            .metrics
            .iter()
            .position(|s| s.key == key)
            .unwrap_or_else(|| {
                // An empty slot, else the least-observed name's slot.
                let i = agent
                    .metrics
                    .iter()
                    .position(|s| s.key == 0)
                    .unwrap_or_else(|| {
                        (0..METRIC_SLOTS)
                            .min_by(|&a, &b| {
                                agent.metrics[a]
                                    .moments
                                    .count()
                                    .total_cmp(&agent.metrics[b].moments.count())
                            })
                            .unwrap_or(0)
                    });
                agent.metrics[i] = MetricSlot {
                    key,
                    moments: RobustMoments::default(),
                };
                i
            });
        agent.metrics[i].moments.observe(x, w, AGENT_MAX_N);
        if let Some(m) = class.metrics.entry(key as u64) {
            m.observe(x, w, CLASS_MAX_N);
        }
    }
}
