//! Planning a run before any event is drawn: which agents exist (classes, numbering, churn), how long
//! the run is (given, or estimated from the fleet's expected event rate when only an event count is
//! given), and which agents are attacked when.

use rand::{Rng, SeedableRng};

use crate::agent::{Agent, IDLE_MEDIAN_H, IDLE_P, NEVER};
use crate::attack::AttackRun;
use crate::classes::CLASS_TABLE;
use crate::dist::{between, uniform, weighted, SimRng};
use crate::time::{MAX_MS, MS_PER_DAY, MS_PER_HOUR};
use crate::{Attack, LabelSlot, SimConfig};

/// Bins of the fleet's daily rate table (10 minutes each).
const BINS: usize = 144;
const BIN_MS: i64 = MS_PER_DAY / BINS as i64;

/// Everything the driver needs to start generating.
pub(crate) struct Plan {
    pub agents: Vec<Agent>,
    pub slots: Vec<LabelSlot>,
    /// End of the run (exclusive) in duration mode, else NEVER.
    pub end_ms: i64,
    /// The run length attacks were planned over.
    #[cfg_attr(not(test), allow(dead_code))]
    pub planned_ms: i64,
}

fn shuffle<T>(r: &mut SimRng, v: &mut [T]) {
    for i in (1..v.len()).rev() {
        let j = r.gen_range(0..=i);
        v.swap(i, j);
    }
}

/// Plans the run of a validated config.
pub(crate) fn plan(cfg: &SimConfig) -> Plan {
    plan_with(cfg, None)
}

/// Plans a run; `only` restricts the fleet to one class (calibration tests).
pub(crate) fn plan_with(cfg: &SimConfig, only: Option<usize>) -> Plan {
    let mut rng = SimRng::seed_from_u64(cfg.seed ^ 0xF1EE_7000_0000_0001);
    let n = cfg.agents;
    let k = CLASS_TABLE.len();
    let mut classes: Vec<usize> = Vec::with_capacity(n);
    if let Some(c) = only {
        classes.resize(n, c.min(k - 1));
    } else {
        if n >= k {
            classes.extend(0..k);
        }
        while classes.len() < n {
            classes.push(weighted(&mut rng, CLASS_TABLE.iter().map(|c| c.share)));
        }
        classes.sort_unstable();
    }
    let mut numbers = [0usize; 6];
    let mut agents: Vec<Agent> = classes
        .iter()
        .enumerate()
        .map(|(i, &ci)| {
            numbers[ci] += 1;
            Agent::new(i as u32, &CLASS_TABLE[ci], numbers[ci], cfg.seed)
        })
        .collect();

    let start = cfg.start_ms;
    let events_mode = cfg.duration_ms.is_none();
    let planned = match (cfg.duration_ms, cfg.events) {
        (Some(d), _) => d.min(i64::MAX as u64) as i64,
        (None, Some(e)) => estimate_duration(&agents, start, e),
        (None, None) => MS_PER_HOUR,
    }
    .max(1);
    let end_ms = match cfg.duration_ms {
        Some(_) => start.saturating_add(planned),
        None => NEVER,
    };

    // Fleet churn: a few agents join late, a few leave early; the rest are there throughout.
    let mut order: Vec<usize> = (0..n).collect();
    shuffle(&mut rng, &mut order);
    let joiners = if n >= 10 { ((n as f64) * 0.06).round().max(1.0) as usize } else { 0 };
    let leavers = if n >= 20 { ((n as f64) * 0.03).round().max(1.0) as usize } else { 0 };
    let join_hi = if events_mode { 0.25 } else { 0.4 };
    let startup_window = (planned / 100).clamp(1, 60_000);
    for (pos, &i) in order.iter().enumerate() {
        let a = &mut agents[i];
        a.end_ms = end_ms;
        a.join_ms = if pos < joiners {
            start + (planned as f64 * uniform(&mut rng, 0.05, join_hi)) as i64
        } else {
            start + between(&mut rng, 0, startup_window)
        };
        if pos >= joiners && pos < joiners + leavers {
            a.leave_ms = start + (planned as f64 * uniform(&mut rng, 0.5, 0.95)) as i64;
        }
        a.next_normal = a.join_ms;
    }
    let stable: Vec<usize> = order[joiners + leavers..].to_vec();

    // Attacks: about one instance of each selected type per 50 agents, on distinct agents while
    // there are enough, spread over the run after its first tenth.
    let mut kinds: Vec<Attack> = Vec::new();
    for a in &cfg.attacks {
        if !kinds.contains(a) {
            kinds.push(*a);
        }
    }
    let per = (n / 50).max(1);
    let mut instances: Vec<Attack> = kinds.iter().flat_map(|a| std::iter::repeat_n(*a, per)).collect();
    shuffle(&mut rng, &mut instances);
    let m = instances.len();
    let lower = if events_mode { 0.15 } else { 0.10 };
    let mut slots = Vec::with_capacity(m);
    for (j, kind) in instances.into_iter().enumerate() {
        let agent = stable[j % stable.len()];
        let u = rng.gen::<f64>();
        let nominal = kind.nominal_ms(u, &mut rng);
        let dur = nominal.min((planned as f64 * 0.3) as i64).max(1000);
        // Attacks that live in a conversation may wait this long for the victim's next session.
        let patience = (planned / 20).min(45 * 60_000);
        let lo = planned as f64 * lower;
        let hi = (planned as f64 * 0.9 - (dur + patience) as f64).max(lo);
        let frac = (j as f64 + uniform(&mut rng, 0.15, 0.85)) / m as f64;
        let at = start.saturating_add((lo + frac * (hi - lo)).ceil() as i64);
        let label = slots.len() as u32;
        slots.push(LabelSlot { agent: agent as u32, attack: kind, session: None, first: None, last: 0 });
        let mut run = AttackRun::new(kind, label, at, dur, u, cfg.seed);
        run.patience = patience;
        agents[agent].attacks.push_back(run);
    }
    for a in &mut agents {
        if a.attacks.len() > 1 {
            a.attacks.make_contiguous().sort_by_key(|r| (r.start, r.label));
            let mut free = i64::MIN;
            for r in a.attacks.iter_mut() {
                r.start = r.start.max(free);
                r.next = r.start;
                free = r.start.saturating_add(r.dur).saturating_add(60_000);
            }
        }
    }
    Plan { agents, slots, end_ms, planned_ms: planned }
}

/// Expected events per hour of an agent at local hour `h`.
pub(crate) fn expected_rate(a: &Agent, h: f64) -> f64 {
    let c = a.class;
    let lam = c.sessions_per_hour * a.rate_mult * Agent::rhythm_at_hour(c, h);
    if lam <= 0.0 {
        return 0.0;
    }
    // Mean idle stretch per session: p * median * e^(sigma^2 / 2).
    let idle_h = IDLE_P * IDLE_MEDIAN_H * (0.7f64 * 0.7 / 2.0).exp();
    c.est_events_per_session / (1.0 / lam + c.est_session_hours + idle_h)
}

/// Expected fleet events per 10-minute bin of the UTC day.
fn fleet_table(agents: &[Agent]) -> [f64; BINS] {
    let mut t = [0.0; BINS];
    for a in agents {
        let tz_h = a.tz_ms as f64 / MS_PER_HOUR as f64;
        for (b, v) in t.iter_mut().enumerate() {
            let utc_h = (b as f64 + 0.5) / 6.0;
            *v += expected_rate(a, (utc_h + tz_h).rem_euclid(24.0)) / 6.0;
        }
    }
    t
}

/// Expected events of the fleet in `[start, start + d)`.
fn expected_events(table: &[f64; BINS], agents: usize, start: i64, d: i64) -> f64 {
    let day: f64 = table.iter().sum();
    let full = d / MS_PER_DAY;
    let mut rem = d % MS_PER_DAY;
    let mut total = agents as f64 + full as f64 * day;
    let mut pos = start.rem_euclid(MS_PER_DAY);
    while rem > 0 {
        let b = (pos / BIN_MS) as usize % BINS;
        let left_in_bin = BIN_MS - pos % BIN_MS;
        let take = left_in_bin.min(rem);
        total += table[b] * take as f64 / BIN_MS as f64;
        rem -= take;
        pos = (pos + take) % MS_PER_DAY;
    }
    total
}

/// Run length at which the fleet is expected to have produced `events` events.
pub(crate) fn estimate_duration(agents: &[Agent], start: i64, events: u64) -> i64 {
    let table = fleet_table(agents);
    let target = events as f64;
    let (mut lo, mut hi) = (1_000i64, (MAX_MS - start).max(2_000));
    if expected_events(&table, agents.len(), start, hi) < target {
        return hi;
    }
    while hi - lo > 1_000 {
        let mid = lo + (hi - lo) / 2;
        if expected_events(&table, agents.len(), start, mid) < target {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    hi
}

/// Expected events of a planned fleet over its first `d` ms (tests and reports).
#[cfg(test)]
pub(crate) fn expected_for(plan: &Plan, start: i64, d: i64) -> f64 {
    expected_events(&fleet_table(&plan.agents), plan.agents.len(), start, d)
}
