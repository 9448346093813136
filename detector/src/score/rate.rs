//! Call rates: events per kind and per tool in event-time windows, judged by a count model.
//!
//! Each agent counts its events per kind (and per tracked tool) in fixed windows of event time. When a
//! window closes its counts teach the agent's own baseline and its class's (mean and variance of the
//! count per *active* window — idle periods are not windows, so a daily rhythm is not a spike). The
//! current window's count so far is judged against both baselines with a Poisson or negative binomial
//! tail ([`vigil_models::count_sf`]); an event is only unusual if it is unusual for the agent **and** for
//! its class (the larger p-value counts), so an agent's first burst of an activity its class knows well
//! is no alarm, and a new agent is judged by its class alone.

use super::{min_p, Basis, Card, ClassSink, Comp, Ctx};
use crate::classes::ClassOp;
use crate::event::{Event, Kind};
use crate::hash::{hash_str, ns};
use crate::state::{AgentState, ClassState, CountBucket, TOOL_SLOTS};
use vigil_models::{count_sf, RobustMoments};

/// Completed windows before an agent's own bucket is trusted.
const AGENT_WARM: f32 = 20.0;
/// Agent-windows before a class bucket is trusted.
const CLASS_WARM: f32 = 50.0;
/// Memory of the baselines, in windows.
const AGENT_MAX_N: f32 = 500.0;
/// Floor of a learned mean count (a never-used kind is rare, not impossible).
const MIN_MEAN: f64 = 0.05;

/// What the rate verdict rests on.
#[derive(Clone, Debug, Default)]
pub struct Detail {
    /// True when the tool bucket (not the kind bucket) was the stronger look.
    pub by_tool: bool,
    pub count: u32,
    pub mean: f64,
    pub sd: f64,
    pub basis: Basis,
    pub p: f64,
}

/// The tool hash kept in a tool slot (never 0).
#[inline]
pub fn tool_key(tool: &str) -> u32 {
    ((hash_str(ns::SYMBOL, tool) >> 32) as u32).max(1)
}

/// Closes the agent's window if `ts` is in a later one: completed counts teach the baselines.
pub fn advance(
    ctx: &Ctx,
    anomalous_weight: f64,
    alert_score: f64,
    agent: &mut AgentState,
    class: &mut ClassSink,
    ts: i64,
) {
    let w = ts.div_euclid(ctx.window_ms);
    if agent.window == i64::MIN {
        agent.window = w;
        return;
    }
    if w <= agent.window {
        return;
    }
    let weight = if agent.window_max_score as f64 >= alert_score { anomalous_weight } else { 1.0 };
    for (k, b) in agent.kinds.iter_mut().enumerate() {
        let c = b.cur as f64;
        b.stats.observe_plain(c, weight, AGENT_MAX_N);
        class.push(ClassOp::RateKind { kind: k as u8, count: c as f32, w: weight as f32 });
        b.cur = 0;
    }
    for slot in agent.tools.iter_mut().filter(|s| s.key != 0) {
        let c = slot.bucket.cur as f64;
        slot.bucket.stats.observe_plain(c, weight, AGENT_MAX_N);
        class.push(ClassOp::RateTool { tool: slot.key, count: c as f32, w: weight as f32 });
        slot.bucket.cur = 0;
    }
    agent.window = w;
    agent.window_max_score = 0.0;
}

/// p-value of a window count `x` against one baseline, or `None` if the baseline is not warm.
fn tail(x: u32, min_count: u32, m: &RobustMoments, warm_at: f32) -> Option<(f64, f64, f64)> {
    if m.count() < warm_at {
        return None;
    }
    let mean = m.mean().max(MIN_MEAN);
    let var = m.var().max(mean);
    let sd = var.sqrt();
    // Counts within two spreads of the mean, or below the smallest count that could matter, are not
    // evidence: skip the tail computation.
    let p = if x < min_count || (x as f64) <= mean + 2.0 * sd + 1.0 { 1.0 } else { count_sf(x, mean, var) };
    Some((p, mean, sd))
}

/// Judges `x` against the agent's and the class's baselines.
fn judge(x: u32, min_count: u32, agent: &RobustMoments, class: Option<&RobustMoments>) -> (f64, bool, f64, f64, Basis) {
    let a = tail(x, min_count, agent, AGENT_WARM);
    let c = class.and_then(|c| tail(x, min_count, c, CLASS_WARM));
    match (a, c) {
        (Some(a), Some(c)) => {
            let (p, mean, sd) = if a.0 >= c.0 { a } else { c };
            (p, true, mean, sd, Basis::Both)
        }
        (Some((p, mean, sd)), None) => (p, true, mean, sd, Basis::Agent),
        (None, Some((p, mean, sd))) => (p, true, mean, sd, Basis::Class),
        (None, None) => {
            let mean = 1.0;
            let p = if x >= min_count { count_sf(x, mean, mean) } else { 1.0 };
            (p, false, mean, 1.0, Basis::Prior)
        }
    }
}

fn tool_slot(agent: &AgentState, key: u32) -> Option<usize> {
    agent.tools.iter().position(|s| s.key == key)
}

pub fn score(ctx: &Ctx, agent: &AgentState, class: &ClassState, ev: &Event, card: &mut Card) {
    if ctx.late {
        card.get_mut(Comp::Rate).set(1.0, false);
        return;
    }
    let k = ev.kind.index();
    let x = agent.kinds[k].cur as u32 + 1;
    let (p_kind, warm_kind, mean, sd, basis) =
        judge(x, ctx.rate_min_count, &agent.kinds[k].stats, Some(&class.rate_kinds[k]));
    let mut detail = Detail { by_tool: false, count: x, mean, sd, basis, p: p_kind };
    let mut warm = warm_kind;
    let mut p = p_kind;
    if let (Kind::ToolCall, Some(tool)) = (ev.kind, ev.tool.as_deref()) {
        let key = tool_key(tool);
        let empty = CountBucket::default();
        let bucket = tool_slot(agent, key).map(|i| &agent.tools[i].bucket).unwrap_or(&empty);
        let xt = bucket.cur as u32 + 1;
        let (p_tool, warm_tool, mean, sd, basis) =
            judge(xt, ctx.rate_min_count, &bucket.stats, class.rate_tools.get(key as u64));
        // Once one look is warm, only warm looks speak: a prior must not alert through a warm sibling.
        let (pk, pt) = match (warm_kind, warm_tool) {
            (true, false) => (p_kind, 1.0),
            (false, true) => (1.0, p_tool),
            _ => (p_kind, p_tool),
        };
        warm |= warm_tool;
        p = min_p(&[pk, pt]);
        if pt < pk {
            detail = Detail { by_tool: true, count: xt, mean, sd, basis, p: p_tool };
        }
    }
    card.get_mut(Comp::Rate).set(p, warm);
    card.rate = detail;
}

/// Counts the event in the current window (counting is observation, not learning: it happens at full
/// weight; what a window teaches is weighted when it closes).
pub fn learn(ctx: &Ctx, agent: &mut AgentState, ev: &Event) {
    if ctx.late {
        return;
    }
    let b = &mut agent.kinds[ev.kind.index()];
    b.cur = b.cur.saturating_add(1);
    if let (Kind::ToolCall, Some(tool)) = (ev.kind, ev.tool.as_deref()) {
        let key = tool_key(tool);
        let i = match tool_slot(agent, key) {
            Some(i) => i,
            None => {
                // An empty slot, else the least-used tool's slot.
                let i = agent.tools.iter().position(|s| s.key == 0).unwrap_or_else(|| {
                    (0..TOOL_SLOTS)
                        .min_by(|&a, &b| {
                            let (ma, mb) = (agent.tools[a].bucket.stats.mean(), agent.tools[b].bucket.stats.mean());
                            ma.total_cmp(&mb)
                        })
                        .unwrap_or(0)
                });
                agent.tools[i].key = key;
                agent.tools[i].bucket = CountBucket::default();
                i
            }
        };
        let b = &mut agent.tools[i].bucket;
        b.cur = b.cur.saturating_add(1);
    }
}
