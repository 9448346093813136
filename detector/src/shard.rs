//! A shard: the agents that hash to it, their classes' baselines, and the per-event pipeline
//! `(state, event) -> (state', score, alert)`.
//!
//! A shard is deterministic: it never looks at a clock, a random generator or any other shard, and it
//! reads class baselines only from the [`ClassTable`] as it stood at the last barrier (what it would
//! teach a class goes to its [`ClassLog`]), so shards can be processed on any number of threads with
//! identical output. Agents live in a slab with a least-recently-active list; beyond the cap the least
//! recently active is evicted and its slot reused, so memory is flat under a flood of new identities.

use crate::alert::{alert_id, Action, Alert, Position, Severity};
use crate::classes::{ClassLog, ClassOp, ClassTable};
use crate::config::EngineConfig;
use crate::event::{Event, Kind};
use crate::explain;
use crate::hash::{combine, hash_str, ns, KeyedState};
use crate::rules::EventRecord;
use crate::score::{self, Card, ClassSink, Comp, Ctx};
use crate::state::{AgentState, Label, PrevEvent};
use std::collections::HashMap;
use std::sync::Arc;
use vigil_models::{fuse, score_from_p};
use vigil_rules::{Action as RuleAction, Pack, RuleMatch, Severity as RuleSeverity};

const NIL: u32 = u32::MAX;
/// p-value of an agent whose class changed: an identity violation, not a statistical question.
const CLASS_CHANGE_P: f64 = 1e-12;

/// Fused p-value below which an event teaches baselines only at the reduced weight.
const ANOMALOUS_P: f64 = 1e-3;

/// Counters a shard keeps (summed over shards for reports and metrics).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ShardStats {
    /// Events scored (duplicates excluded).
    pub events: u64,
    pub duplicates: u64,
    pub late: u64,
    /// Events of kinds this version does not know.
    pub unknown_kinds: u64,
    pub alerts: u64,
    /// Triggering events that joined an open alert group (no new alert).
    pub grouped: u64,
    /// Stronger actions withheld by the per-agent cooldown.
    pub suppressed_actions: u64,
    pub class_changes: u64,
    pub agents_evicted: u64,
}

impl ShardStats {
    pub fn add(&mut self, o: &ShardStats) {
        self.events += o.events;
        self.duplicates += o.duplicates;
        self.late += o.late;
        self.unknown_kinds += o.unknown_kinds;
        self.alerts += o.alerts;
        self.grouped += o.grouped;
        self.suppressed_actions += o.suppressed_actions;
        self.class_changes += o.class_changes;
        self.agents_evicted += o.agents_evicted;
    }
}

/// The engine's answer for one event.
#[derive(Clone, Debug, PartialEq)]
pub struct Verdict {
    /// The event repeated a recent producer `id` of its agent: dropped, no score line.
    pub duplicate: bool,
    pub late: bool,
    /// Fused score in `[0, 1]`.
    pub score: f64,
    /// Score of every applicable component (`None`: not applicable), in [`Comp::ALL`] order.
    pub components: [Option<f32>; Comp::COUNT],
    /// Rules that matched the event (`rule:<id>`) and their scores, in pack order.
    pub rules: Vec<(String, f32)>,
    /// The alert this event opened, if any.
    pub alert: Option<Box<Alert>>,
    /// Tracked agents of the event's class (as of the last class barrier), for the blast-radius cap.
    pub class_agents: u32,
    /// An operator alert (`detector: "vigil"`) to emit after `alert`, set by the blast-radius cap.
    pub notice: Option<Box<Alert>>,
}

impl Verdict {
    fn duplicate() -> Verdict {
        Verdict {
            duplicate: true,
            late: false,
            score: 0.0,
            components: [None; Comp::COUNT],
            rules: Vec::new(),
            alert: None,
            class_agents: 0,
            notice: None,
        }
    }
}

/// An intrusive doubly linked list over slab indices: head = most recently active.
#[derive(Clone, Copy, Debug, serde::Serialize, serde::Deserialize)]
struct Lru {
    head: u32,
    tail: u32,
}

impl Lru {
    const EMPTY: Lru = Lru { head: NIL, tail: NIL };
}

trait Linked {
    fn links(&mut self) -> (&mut u32, &mut u32);
}

impl Linked for AgentState {
    fn links(&mut self) -> (&mut u32, &mut u32) {
        (&mut self.lru_prev, &mut self.lru_next)
    }
}

fn unlink<T: Linked>(slab: &mut [T], lru: &mut Lru, i: u32) {
    let (p, n) = {
        let (p, n) = slab[i as usize].links();
        let r = (*p, *n);
        *p = NIL;
        *n = NIL;
        r
    };
    if p != NIL {
        *slab[p as usize].links().1 = n;
    } else if lru.head == i {
        lru.head = n;
    }
    if n != NIL {
        *slab[n as usize].links().0 = p;
    } else if lru.tail == i {
        lru.tail = p;
    }
}

fn push_front<T: Linked>(slab: &mut [T], lru: &mut Lru, i: u32) {
    {
        let (p, n) = slab[i as usize].links();
        *p = NIL;
        *n = lru.head;
    }
    if lru.head != NIL {
        *slab[lru.head as usize].links().0 = i;
    }
    lru.head = i;
    if lru.tail == NIL {
        lru.tail = i;
    }
}

fn touch<T: Linked>(slab: &mut [T], lru: &mut Lru, i: u32) {
    if lru.head != i {
        unlink(slab, lru, i);
        push_front(slab, lru, i);
    }
}

/// One shard of the engine.
pub struct Shard {
    cfg: Arc<EngineConfig>,
    ctx: Ctx,
    agent_index: HashMap<Box<str>, u32, KeyedState>,
    agent_keys: Vec<Box<str>>,
    agents: Vec<AgentState>,
    agent_lru: Lru,
    max_agents: usize,
    log: ClassLog,
    card: Card,
    pack: Arc<Pack>,
    matches: Vec<RuleMatch>,
    models: score::model::ShardModels,
    tick: u64,
    stats: ShardStats,
}

/// A shard's whole state, for checkpoints: restoring it and reprocessing the same events gives the
/// same output as never having stopped.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct ShardSnapshot {
    keys: Vec<Box<str>>,
    agents: Vec<AgentState>,
    lru: Lru,
    log: ClassLog,
    tick: u64,
    stats: ShardStats,
}

impl Shard {
    /// The shard's state, for a checkpoint.
    pub fn snapshot(&self) -> ShardSnapshot {
        ShardSnapshot {
            keys: self.agent_keys.clone(),
            agents: self.agents.clone(),
            lru: self.agent_lru,
            log: self.log.clone(),
            tick: self.tick,
            stats: self.stats.clone(),
        }
    }

    /// A shard restored from a checkpoint.
    pub fn restore(cfg: Arc<EngineConfig>, index: usize, pack: Arc<Pack>, s: ShardSnapshot) -> Result<Shard, String> {
        if s.keys.len() != s.agents.len() {
            return Err("agent keys and states differ in number".into());
        }
        let mut shard = Shard::new(cfg, index, pack);
        if s.agents.len() > shard.max_agents {
            return Err(format!("{} agents in a shard whose cap is {}", s.agents.len(), shard.max_agents));
        }
        shard.agent_index = s.keys.iter().enumerate().map(|(i, k)| (k.clone(), i as u32)).collect();
        if shard.agent_index.len() != s.keys.len() {
            return Err("duplicate agent keys".into());
        }
        let n = s.agents.len() as u32;
        let in_range = |i: u32| i == NIL || i < n;
        if !in_range(s.lru.head)
            || !in_range(s.lru.tail)
            || s.agents.iter().any(|a| !in_range(a.lru_prev) || !in_range(a.lru_next))
        {
            return Err("agent list links out of range".into());
        }
        shard.agent_keys = s.keys;
        shard.agents = s.agents;
        shard.agent_lru = s.lru;
        shard.log = s.log;
        shard.tick = s.tick;
        shard.stats = s.stats;
        Ok(shard)
    }

    /// Shard number `index` of the engine (its share of `max_agents` depends on it), evaluating `pack`.
    pub fn new(cfg: Arc<EngineConfig>, index: usize, pack: Arc<Pack>) -> Shard {
        let ctx = Ctx::new(&cfg);
        let max_agents = cfg.agents_per_shard(index);
        Shard {
            cfg,
            ctx,
            agent_index: HashMap::default(),
            agent_keys: Vec::new(),
            agents: Vec::new(),
            agent_lru: Lru::EMPTY,
            max_agents,
            log: ClassLog::default(),
            card: Card::default(),
            pack,
            matches: Vec::new(),
            models: Default::default(),
            tick: 0,
            stats: ShardStats::default(),
        }
    }

    pub fn stats(&self) -> &ShardStats {
        &self.stats
    }

    /// Agents currently tracked.
    pub fn agents(&self) -> usize {
        self.agent_index.len()
    }

    /// Replaces the rule pack (between events). Rule state of unchanged rules carries over.
    pub fn set_pack(&mut self, pack: Arc<Pack>) {
        self.pack = pack;
    }

    /// Replaces the learned models (between events); `None` turns them off.
    pub fn set_models(&mut self, models: Option<Arc<score::model::ModelSet>>) {
        self.models.set(models);
    }

    /// Feature vectors gathered by a collecting model set (training), leaving none.
    pub fn take_feature_rows(&mut self) -> Vec<score::model::FeatureRow> {
        self.models.take_rows()
    }

    /// What this shard would teach classes since the last barrier.
    pub fn class_log(&mut self) -> &mut ClassLog {
        &mut self.log
    }

    /// The slab index of the agent, created (or recycled from the least recently active) when absent.
    fn agent_slot(&mut self, agent_id: &str, class_hash: u64) -> u32 {
        if let Some(&i) = self.agent_index.get(agent_id) {
            touch(&mut self.agents, &mut self.agent_lru, i);
            return i;
        }
        let i = if self.agents.len() < self.max_agents {
            self.agents.push(AgentState::new(class_hash));
            self.agent_keys.push(agent_id.into());
            (self.agents.len() - 1) as u32
        } else {
            let victim = self.agent_lru.tail;
            unlink(&mut self.agents, &mut self.agent_lru, victim);
            let old_key = std::mem::replace(&mut self.agent_keys[victim as usize], agent_id.into());
            self.agent_index.remove(&old_key);
            let old_class = self.agents[victim as usize].class_hash;
            self.log.push(old_class, ClassOp::Agents(-1));
            self.agents[victim as usize] = AgentState::new(class_hash);
            self.stats.agents_evicted += 1;
            victim
        };
        self.agent_index.insert(agent_id.into(), i);
        push_front(&mut self.agents, &mut self.agent_lru, i);
        self.log.push(class_hash, ClassOp::Agents(1));
        i
    }

    /// Scores one event, updates state, and returns the verdict (with the alert it opens, if any).
    pub fn process(&mut self, classes: &ClassTable, ev: &Event, pos: Position) -> Verdict {
        self.tick += 1;
        let class_name = ev.class();
        let class_hash = hash_str(ns::CLASS, class_name);
        if !classes.contains(class_hash) {
            self.log.note_new_class(class_hash, class_name);
        }
        let ai = self.agent_slot(&ev.agent_id, class_hash);

        if let Some(id) = ev.id.as_deref() {
            if !self.agents[ai as usize].record_id(hash_str(ns::EVENT_ID, id)) {
                self.stats.duplicates += 1;
                return Verdict::duplicate();
            }
        }

        let ts = ev.ts_ms;
        let cfg = &*self.cfg;
        let lateness_ms = cfg.engine.allowed_lateness_secs as i64 * 1000;
        let mut ctx = self.ctx;
        ctx.tick = self.tick;

        // Class change: the agent moves to its new class, and the change itself is scored.
        let (old_class_hash, class_changed) = {
            let a = &self.agents[ai as usize];
            (a.class_hash, a.events > 0 && a.class_hash != class_hash)
        };
        let old_class_name = if class_changed {
            self.stats.class_changes += 1;
            self.log.push(old_class_hash, ClassOp::Agents(-1));
            self.log.push(class_hash, ClassOp::Agents(1));
            // A class first met in this epoch is not in the table yet: its name is in the log.
            classes.name(old_class_hash).or_else(|| self.log.name_of(old_class_hash)).unwrap_or("").to_string()
        } else {
            String::new()
        };

        let agent = &mut self.agents[ai as usize];
        let class = classes.get(class_hash);
        let class_agents = class.agents;
        let mut sink = ClassSink { hash: class_hash, log: &mut self.log };
        agent.class_hash = class_hash;
        ctx.late = agent.newest_ts != i64::MIN && ts < agent.newest_ts - lateness_ms;
        if ctx.late {
            self.stats.late += 1;
        }
        if ev.kind == Kind::Other {
            self.stats.unknown_kinds += 1;
        }
        let ordinal = if ts == agent.same_ts {
            agent.same_ts_count += 1;
            agent.same_ts_count
        } else {
            agent.same_ts = ts;
            agent.same_ts_count = 0;
            0
        };

        let d = &cfg.detectors;
        if !ctx.late && d.rate {
            score::rate::advance(&ctx, d.anomalous_learning_weight, d.alert_score, agent, &mut sink, ts);
        }

        // Score.
        let card = &mut self.card;
        card.reset();
        if d.rate {
            score::rate::score(&ctx, agent, class, ev, card);
        }
        if d.tokens || d.metric {
            score::numeric::score(agent, class, ev, card);
            if !d.tokens {
                *card.get_mut(Comp::Tokens) = Default::default();
            }
            if !d.metric {
                *card.get_mut(Comp::Metric) = Default::default();
            }
        }
        if d.sequence {
            score::sequence::score(agent, class, ev, card);
        }
        if d.entropy {
            score::entropy::score(class, ev, card);
        }
        if d.escalation {
            score::escalation::score(&ctx, ts, agent, class, ev, card);
        }
        if d.first_seen {
            score::novelty::score(agent, class, ev, card);
        }
        if d.class_change && class_changed {
            card.get_mut(Comp::ClassChange).set(CLASS_CHANGE_P, true);
        }
        score::evidence::score(&ctx, ts, agent, class, card);
        score::model::observe(&mut self.models, &ctx, ts, agent, class, ev, card);

        // Fuse: all applicable components for the score, warm ones for the alert decision.
        let mut all = [1.0f64; Comp::COUNT];
        let mut warm = [1.0f64; Comp::COUNT];
        let mut warm_comps = [Comp::Rate; Comp::COUNT];
        let (mut n_all, mut n_warm) = (0, 0);
        let mut components = [None; Comp::COUNT];
        for c in Comp::ALL {
            let s = card.get(c);
            if !s.applicable {
                continue;
            }
            components[c as usize] = Some(score_from_p(s.p) as f32);
            // Fusion counts the components that carry evidence (p < 1); a component that found
            // nothing unusual has reported no p-value, and must not dilute the ones that did.
            if s.p >= 1.0 {
                continue;
            }
            all[n_all] = s.p;
            n_all += 1;
            if s.warm {
                warm[n_warm] = s.p;
                warm_comps[n_warm] = c;
                n_warm += 1;
            }
        }
        let fused_all = fuse(&all[..n_all]);
        let stat_score = score_from_p(fused_all.p);
        // Usually every component is warm: the same p-values, the same result.
        let (fused_warm, stat_alert_score) = if n_warm == n_all {
            (fused_all, stat_score)
        } else {
            let f = fuse(&warm[..n_warm]);
            (f, score_from_p(f.p))
        };

        // Rules see the event with every component's score.
        let mut comp_scores = [0.0f64; Comp::COUNT];
        for (s, c) in comp_scores.iter_mut().zip(&components) {
            *s = c.map_or(0.0, f64::from);
        }
        let matches = &mut self.matches;
        matches.clear();
        let pack = &*self.pack;
        let record = EventRecord::new(ev, comp_scores, stat_score).with_first_seen_tool_p(score::novelty::tool_p(card));
        pack.evaluate(&record, &mut agent.rules, matches);
        // The strongest match: highest severity, first in pack order on ties.
        let top_rule = matches.iter().max_by(|a, b| {
            let (sa, sb) = (pack.rules()[a.rule].severity, pack.rules()[b.rule].severity);
            sa.cmp(&sb).then(b.rule.cmp(&a.rule))
        });
        let rule_score = top_rule.map_or(0.0, |m| rule_severity_score(pack.rules()[m.rule].severity));
        let score = stat_score.max(rule_score);
        let rules_hit: Vec<(String, f32)> = matches
            .iter()
            .map(|m| {
                (format!("rule:{}", pack.rules()[m.rule].id), rule_severity_score(pack.rules()[m.rule].severity) as f32)
            })
            .collect();
        let anomalous =
            fused_all.p < ANOMALOUS_P || matches.iter().any(|m| pack.rules()[m.rule].severity > RuleSeverity::Low);
        let weight = if anomalous { d.anomalous_learning_weight } else { 1.0 };

        // The alert candidate: a matched rule (rules always alert), or the statistical verdict when it
        // clears the threshold and is stronger.
        let stat_candidate = (stat_alert_score >= d.alert_score).then_some(fused_warm.strongest).flatten();
        let use_rule = top_rule.is_some() && (stat_candidate.is_none() || rule_score >= stat_alert_score);
        let mut alert = None;
        if use_rule || stat_candidate.is_some() {
            // The component that decides a statistical alert.
            let stat_comp = warm_comps[stat_candidate.unwrap_or(0)];
            let (detector, group_key, alert_score): (String, &str, f64) = match (use_rule, top_rule) {
                (true, Some(m)) => (
                    format!("rule:{}", pack.rules()[m.rule].id),
                    m.group_key.as_str(),
                    rule_score.max(stat_alert_score),
                ),
                _ => (stat_comp.name().to_string(), "", stat_alert_score),
            };
            let group = combine(
                combine(hash_str(ns::SESSION, ev.session_id.as_deref().unwrap_or("")), hash_str(ns::NAME, &detector)),
                hash_str(ns::VALUE, group_key),
            );
            let cooldown_ms = cfg.engine.cooldown_secs as i64 * 1000;
            let open =
                agent.groups.iter().position(|&(k, opened)| k == group && ts < opened.saturating_add(cooldown_ms));
            if open.is_some() {
                self.stats.grouped += 1;
            } else {
                let slot = agent
                    .groups
                    .iter()
                    .position(|&(k, _)| k == group)
                    .unwrap_or_else(|| (0..agent.groups.len()).min_by_key(|&i| agent.groups[i].1).unwrap_or(0));
                agent.groups[slot] = (group, ts);
                let stat_severity = Severity::from_score(alert_score, d.alert_score);
                let (severity, wanted) = match (use_rule, top_rule) {
                    (true, Some(m)) => {
                        let r = &pack.rules()[m.rule];
                        let sev = stat_severity.max(rule_severity(r.severity));
                        (sev, cfg.actions.for_severity(sev).max(rule_action(r.action)))
                    }
                    _ => {
                        let corroborated =
                            warm_comps[..n_warm].iter().any(|&c| c != stat_comp && card.get(c).p <= CORROBORATING_P);
                        let sev = statistical_severity(stat_severity, stat_comp, corroborated);
                        (sev, cfg.actions.for_severity(sev))
                    }
                };
                let (action, suppressed) = apply_cooldown(agent, wanted, ts, cooldown_ms);
                if suppressed.is_some() {
                    self.stats.suppressed_actions += 1;
                }
                // Contributing components, strongest first.
                let mut order: Vec<Comp> =
                    warm_comps[..n_warm].iter().copied().filter(|c| card.get(*c).p < 1.0).collect();
                order.sort_by(|a, b| card.get(*a).p.total_cmp(&card.get(*b).p).then(a.cmp(b)));
                let window_secs = d.rate_window_secs;
                let mut evidence = vec![explain::event_evidence(ev, pos, &cfg.evidence)];
                if let Some(prev) = explain::prev_evidence(&agent.prev, &cfg.evidence) {
                    evidence.push(prev);
                }
                let stat_reason = explain::reason(ev, card, class, fused_warm.p, &order, window_secs, &old_class_name);
                let (title, reason, tags) = match (use_rule, top_rule) {
                    (true, Some(m)) => {
                        let r = &pack.rules()[m.rule];
                        let first_line = r.description.lines().find(|l| !l.trim().is_empty()).unwrap_or("").trim();
                        // One line: what the rule is for, then the condition that held (whitespace collapsed).
                        let when = r.when.split_whitespace().collect::<Vec<_>>().join(" ");
                        let mut reason = format!("rule {}", r.id);
                        if !first_line.is_empty() {
                            reason.push_str(&format!(" ({first_line})"));
                        }
                        reason.push_str(&format!(" matched: {when}"));
                        if !m.detail.is_empty() {
                            reason.push_str(&format!("; {}", m.detail));
                        }
                        if !order.is_empty() {
                            reason.push_str(&format!("; statistics: {stat_reason}"));
                        }
                        (pack.title(m.rule, &record), reason, r.tags.clone())
                    }
                    _ => (
                        explain::title(stat_comp, ev, card, window_secs, &old_class_name),
                        stat_reason,
                        explain::tags(stat_comp, ev, card),
                    ),
                };
                let mut comps: Vec<(String, f64)> = Comp::ALL
                    .iter()
                    .filter_map(|c| components[*c as usize].map(|s| (c.name().to_string(), s as f64)))
                    .collect();
                comps.extend(rules_hit.iter().map(|(n, s)| (n.clone(), *s as f64)));
                alert = Some(Box::new(Alert {
                    id: alert_id(&ev.agent_id, ev.session_id.as_deref(), &detector, group_key, ts, ordinal),
                    ts_ms: ts,
                    agent_id: ev.agent_id.to_string(),
                    agent: class_name.to_string(),
                    session_id: ev.session_id.as_deref().map(str::to_string),
                    detector,
                    components: comps,
                    severity,
                    score: alert_score,
                    title,
                    reason,
                    evidence,
                    tags,
                    action,
                    suppressed_action: suppressed,
                    emitted_at_ms: None,
                }));
                self.stats.alerts += 1;
            }
        }

        // Learn.
        if !ctx.late {
            if d.rate {
                score::rate::learn(&ctx, agent, ev);
            }
            if d.tokens || d.metric {
                score::numeric::learn(&ctx, agent, &mut sink, ev, weight);
            }
            if d.sequence {
                score::sequence::learn(&ctx, agent, &mut sink, ev, card, weight);
            }
            if d.entropy {
                score::entropy::learn(&ctx, &mut sink, card, weight);
            }
            if d.escalation {
                score::escalation::learn(&ctx, ts, agent, &mut sink, ev, card, weight);
            }
            if d.first_seen {
                score::novelty::learn(&ctx, agent, &mut sink, card, weight);
            }
            score::evidence::learn(&ctx, ts, agent, &mut sink, card, weight, alert.is_some());
        }

        agent.newest_ts = agent.newest_ts.max(ts);
        agent.events = agent.events.saturating_add(1);
        agent.window_max_score = agent.window_max_score.max(score as f32);
        let (object, label) = explain::object_of(ev);
        agent.prev = PrevEvent {
            valid: true,
            ts_ms: ts,
            kind: ev.kind as u8,
            object,
            label: Label::new(label),
            position: pos,
            outcome: match ev.outcome {
                crate::event::Outcome::Ok => 0,
                crate::event::Outcome::Denied => 1,
                crate::event::Outcome::Error => 2,
            },
            privileged: ev.privileged,
        };
        sink.push(ClassOp::Event);
        self.stats.events += 1;

        Verdict {
            duplicate: false,
            late: ctx.late,
            score,
            components,
            rules: rules_hit,
            alert,
            class_agents,
            notice: None,
        }
    }
}

/// A component this unusual (p-value) corroborates another's alert.
const CORROBORATING_P: f64 = 0.01;

/// The severity of a statistical alert decided by `comp`. An amount out of the ordinary alone (a
/// burst of calls, a large upload, a long prompt: `rate`, `tokens`, `metric`) is at most `high`, so it
/// notifies but does not contain: agents are bursty, and a git push or a dependency install is an
/// extreme volume for an agent that usually reads. It reaches `critical` (and with the default
/// `[actions]`, containment) when another component is unusual for the same event too. Behavioural
/// signals (escalation, entropy, sequence, first-seen, class change, models) keep their severity.
fn statistical_severity(severity: Severity, comp: Comp, corroborated: bool) -> Severity {
    match comp {
        Comp::Rate | Comp::Tokens | Comp::Metric if !corroborated => severity.min(Severity::High),
        _ => severity,
    }
}

/// The score a rule match stands for: its severity, on the statistical scale (critical = the top).
fn rule_severity_score(s: RuleSeverity) -> f64 {
    match s {
        RuleSeverity::Low => 0.6,
        RuleSeverity::Medium => 0.7,
        RuleSeverity::High => 0.85,
        RuleSeverity::Critical => 1.0,
    }
}

fn rule_severity(s: RuleSeverity) -> Severity {
    match s {
        RuleSeverity::Low => Severity::Low,
        RuleSeverity::Medium => Severity::Medium,
        RuleSeverity::High => Severity::High,
        RuleSeverity::Critical => Severity::Critical,
    }
}

fn rule_action(a: RuleAction) -> Action {
    match a {
        RuleAction::None => Action::None,
        RuleAction::Notify => Action::Notify,
        RuleAction::Contain => Action::Contain,
        RuleAction::Kill => Action::Kill,
    }
}

/// Per agent, at most one `kill` and one `contain` per cooldown: a later one is downgraded to `notify`
/// and the withheld action reported.
fn apply_cooldown(agent: &mut AgentState, wanted: Action, ts: i64, cooldown_ms: i64) -> (Action, Option<Action>) {
    let last = match wanted {
        Action::Kill => &mut agent.last_kill_ts,
        Action::Contain => &mut agent.last_contain_ts,
        other => return (other, None),
    };
    if *last != i64::MIN && ts < last.saturating_add(cooldown_ms) && ts >= *last {
        (Action::Notify, Some(wanted))
    } else {
        *last = (*last).max(ts);
        (wanted, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lone_amount_is_at_most_high_and_corroboration_or_behaviour_keeps_critical() {
        for comp in [Comp::Rate, Comp::Tokens, Comp::Metric] {
            assert_eq!(statistical_severity(Severity::Critical, comp, false), Severity::High, "{comp:?}");
            assert_eq!(statistical_severity(Severity::Critical, comp, true), Severity::Critical, "{comp:?}");
            assert_eq!(statistical_severity(Severity::Medium, comp, false), Severity::Medium, "{comp:?}");
        }
        for comp in Comp::ALL.into_iter().filter(|c| !matches!(c, Comp::Rate | Comp::Tokens | Comp::Metric)) {
            assert_eq!(statistical_severity(Severity::Critical, comp, false), Severity::Critical, "{comp:?}");
        }
    }
}
