//! Per-agent state of stateful rules (thresholds and sequences), and the logic that advances it.
//!
//! The caller keeps one [`RuleState`] per tracked agent and checkpoints it with serde. It is 8 bytes until
//! a stateful rule first counts something for that agent. Everything in it is bounded: at most
//! [`MAX_KEYS`] `by` keys per rule (the idle, then the oldest, are evicted), at most [`MAX_ENTRIES`]
//! entries per key (older entries of a count or sum merge into one bucket), and sequences hold one partial
//! match per step. Time is event time only.
//!
//! The state records which pack it was built for. When the pack is swapped, each rule's state survives if a
//! rule with the same id and the same stateful definition exists in the new pack, and is dropped otherwise.

use crate::compile::{push_num, Cond, Cx, Operand};
use crate::util::{fnv, fnv_more, format_ts, format_window};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// Most `by` keys one stateful rule keeps per agent.
pub const MAX_KEYS: usize = 32;
/// Most entries one key of a count or sum threshold keeps (older ones merge).
pub const MAX_ENTRIES: usize = 64;
/// Largest `count` of a distinct-count threshold (its state keeps one entry per distinct value).
pub const MAX_DISTINCT: usize = 128;
/// Most steps in a sequence.
pub const MAX_STEPS: usize = 8;
/// Most timestamps reported as evidence of one match.
pub const MAX_EVIDENCE: usize = 16;

/// A rule that fired on a record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RuleMatch {
    /// Index of the rule in [`crate::Pack::rules`].
    pub rule: usize,
    /// The values of the rule's `by` fields, joined with `|`; empty for stateless rules and rules without
    /// `by`.
    pub group_key: String,
    /// What matched, with the numbers (count, window, threshold; step times of a sequence).
    pub detail: String,
    /// Event times (ms) of the events that made the match, oldest first, at most [`MAX_EVIDENCE`].
    pub step_ts: Vec<i64>,
}

/// The per-agent state of every stateful rule of a pack.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct RuleState {
    inner: Option<Box<Inner>>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Inner {
    /// Fingerprint of the pack the slots belong to.
    pack: u64,
    slots: Vec<Slot>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
struct Slot {
    /// Fingerprint of the rule definition this slot belongs to.
    rule: u64,
    keys: Vec<KeyState>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct KeyState {
    hash: u64,
    key: String,
    last_ts: i64,
    data: KeyData,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
enum KeyData {
    /// (ts, weight) entries of a count (weight 1) or sum threshold, oldest first, and their total.
    Weights(VecDeque<(i64, f64)>, f64),
    /// (value hash, last seen ts) of a distinct-count threshold, least recently seen first.
    Distinct(VecDeque<(u64, i64)>),
    /// Partial matches of a sequence: entry `i` holds the latest-starting chain that completed steps 0..=i.
    Seq(Vec<Option<Chain>>),
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Chain {
    start: i64,
    ts: Vec<i64>,
}

impl RuleState {
    /// Whether the stateful rule at `at` certainly holds nothing for this agent (false when unsure, e.g.
    /// right after a pack swap, before the state has been migrated).
    #[inline]
    pub(crate) fn idle(&self, at: &SlotRef<'_>) -> bool {
        match &self.inner {
            None => true,
            Some(i) if i.pack == at.pack => i.slots.get(at.slot).is_none_or(|s| s.keys.is_empty()),
            Some(_) => false,
        }
    }

    /// Whether no stateful rule holds anything for this agent.
    pub fn is_empty(&self) -> bool {
        self.inner.as_ref().is_none_or(|i| i.slots.iter().all(|s| s.keys.is_empty()))
    }

    /// Forgets everything.
    pub fn clear(&mut self) {
        self.inner = None;
    }

    /// Approximate heap bytes held (for memory accounting).
    pub fn heap_bytes(&self) -> usize {
        let Some(inner) = &self.inner else { return 0 };
        let mut n = std::mem::size_of::<Inner>() + inner.slots.capacity() * std::mem::size_of::<Slot>();
        for s in &inner.slots {
            n += s.keys.capacity() * std::mem::size_of::<KeyState>();
            for k in &s.keys {
                n += k.key.capacity();
                n += match &k.data {
                    KeyData::Weights(w, _) => w.capacity() * 16,
                    KeyData::Distinct(d) => d.capacity() * 16,
                    KeyData::Seq(c) => c.iter().map(|c| c.as_ref().map_or(0, |c| c.ts.capacity() * 8) + 32).sum(),
                };
            }
        }
        n
    }

    /// The slot `slot` of a pack with fingerprint `pack` whose stateful rules have fingerprints
    /// `rule_fps`, migrating state built for another pack.
    fn slot(&mut self, pack: u64, rule_fps: &[u64], slot: usize) -> Option<&mut Slot> {
        let inner = self.inner.get_or_insert_with(|| Box::new(Inner { pack, slots: Vec::new() }));
        if inner.pack != pack || inner.slots.len() != rule_fps.len() {
            let mut old = std::mem::take(&mut inner.slots);
            inner.slots = rule_fps
                .iter()
                .map(|&fp| {
                    old.iter_mut()
                        .find(|s| s.rule == fp)
                        .map(std::mem::take)
                        .filter(|s| s.rule == fp)
                        .unwrap_or(Slot { rule: fp, keys: Vec::new() })
                })
                .collect();
            inner.pack = pack;
        }
        inner.slots.get_mut(slot)
    }
}

/// What a threshold measures.
#[derive(Clone, Debug)]
pub(crate) enum Measure {
    /// Number of matching events.
    Count,
    /// Number of distinct values of a field.
    Distinct(Operand, String),
    /// Sum of numeric fields.
    Sum(Vec<Operand>, Vec<String>),
}

/// The `by` fields of a stateful rule.
#[derive(Clone, Debug, Default)]
pub(crate) struct GroupBy {
    pub fields: Vec<Operand>,
    pub names: Vec<String>,
}

impl GroupBy {
    fn hash(&self, cx: &Cx<'_>) -> u64 {
        let mut h = fnv(b"by");
        for f in &self.fields {
            h = f.hash_into(cx, h).unwrap_or_else(|| fnv_more(h, b"\x00missing"));
        }
        h
    }

    fn render(&self, cx: &Cx<'_>) -> String {
        let mut s = String::new();
        for (i, f) in self.fields.iter().enumerate() {
            if i > 0 {
                s.push('|');
            }
            f.render(cx, &mut s);
        }
        s
    }

    fn describe(&self, key: &str) -> String {
        if self.names.is_empty() {
            String::new()
        } else {
            format!(" for {}={}", self.names.join("|"), key)
        }
    }
}

/// A compiled `threshold:`.
#[derive(Clone, Debug)]
pub(crate) struct Threshold {
    pub count: f64,
    pub measure: Measure,
    pub by: GroupBy,
    pub window_ms: i64,
    /// The `when` text, for the match detail.
    pub when_text: String,
}

/// A compiled `sequence:`.
#[derive(Clone, Debug)]
pub(crate) struct Sequence {
    pub steps: Vec<Cond>,
    pub until: Option<Cond>,
    pub by: GroupBy,
    pub window_ms: i64,
}

/// Where a stateful rule keeps its state.
pub(crate) struct SlotRef<'a> {
    pub pack: u64,
    pub rule_fps: &'a [u64],
    pub slot: usize,
}

/// Finds the state of key `hash`, creating it (evicting if full) when absent.
fn key_state(
    slot: &mut Slot,
    hash: u64,
    now: i64,
    window_ms: i64,
    make: impl FnOnce() -> (String, KeyData),
) -> &mut KeyState {
    if let Some(i) = slot.keys.iter().position(|k| k.hash == hash) {
        return &mut slot.keys[i];
    }
    if slot.keys.len() >= MAX_KEYS {
        let cutoff = now.saturating_sub(window_ms);
        slot.keys.retain(|k| k.last_ts >= cutoff);
    }
    if slot.keys.len() >= MAX_KEYS {
        if let Some(i) = slot.keys.iter().enumerate().min_by_key(|(_, k)| (k.last_ts, k.hash)).map(|(i, _)| i) {
            slot.keys.swap_remove(i);
        }
    }
    let (key, data) = make();
    slot.keys.push(KeyState { hash, key, last_ts: now, data });
    let last = slot.keys.len() - 1;
    &mut slot.keys[last]
}

fn evidence(mut ts: Vec<i64>) -> Vec<i64> {
    ts.sort_unstable();
    if ts.len() > MAX_EVIDENCE {
        ts.drain(..ts.len() - MAX_EVIDENCE);
    }
    ts
}

impl Threshold {
    /// Counts `rec` (which matched the rule) and returns a match when the threshold is reached.
    pub(crate) fn update(&self, rule: usize, cx: &Cx<'_>, state: &mut RuleState, at: SlotRef<'_>) -> Option<RuleMatch> {
        let now = cx.rec.ts_ms();
        let (weight, value_hash) = match &self.measure {
            Measure::Count => (1.0, 0),
            Measure::Distinct(op, _) => (1.0, op.hash_into(cx, fnv(b"distinct"))?),
            Measure::Sum(ops, _) => {
                let mut total = 0.0;
                let mut any = false;
                for op in ops {
                    if let Some(v) = op.number(cx) {
                        if v.is_finite() {
                            total += v;
                            any = true;
                        }
                    }
                }
                if !any || total <= 0.0 {
                    return None;
                }
                (total, 0)
            }
        };
        let hash = self.by.hash(cx);
        let slot = state.slot(at.pack, at.rule_fps, at.slot)?;
        let distinct = matches!(self.measure, Measure::Distinct(..));
        let ks = key_state(slot, hash, now, self.window_ms, || {
            let data =
                if distinct { KeyData::Distinct(VecDeque::new()) } else { KeyData::Weights(VecDeque::new(), 0.0) };
            (self.by.render(cx), data)
        });
        ks.last_ts = ks.last_ts.max(now);
        let cutoff = now.saturating_sub(self.window_ms);
        match &mut ks.data {
            KeyData::Weights(w, total) => {
                // Entries arrive in event-time order per agent; a late one expires when it reaches the front.
                while w.front().is_some_and(|&(t, _)| t < cutoff) {
                    if let Some((_, x)) = w.pop_front() {
                        *total -= x;
                    }
                }
                if w.is_empty() {
                    *total = 0.0;
                }
                w.push_back((now, weight));
                *total += weight;
                if w.len() > MAX_ENTRIES {
                    // Merge the two oldest entries; keep the older time so nothing outlives its window.
                    if let (Some(a), Some(b)) = (w.pop_front(), w.pop_front()) {
                        w.push_front((a.0.min(b.0), a.1 + b.1));
                    }
                }
                let total_now = *total;
                if total_now + 1e-9 < self.count {
                    return None;
                }
                let ts = evidence(w.iter().map(|&(t, _)| t).collect());
                w.clear();
                *total = 0.0;
                let total = total_now;
                let key = ks.key.clone();
                let what = match &self.measure {
                    Measure::Sum(_, names) => {
                        let mut s = format!("sum of {} = ", names.join(" + "));
                        push_num(&mut s, total);
                        s
                    }
                    _ => {
                        let mut s = String::new();
                        push_num(&mut s, total);
                        s.push_str(" events");
                        s
                    }
                };
                let mut thr = String::new();
                push_num(&mut thr, self.count);
                Some(RuleMatch {
                    rule,
                    detail: format!(
                        "{what} matching `{}` within {} (threshold {thr}){}",
                        self.when_text,
                        format_window(self.window_ms),
                        self.by.describe(&key)
                    ),
                    group_key: key,
                    step_ts: ts,
                })
            }
            KeyData::Distinct(d) => {
                while d.front().is_some_and(|&(_, t)| t < cutoff) {
                    d.pop_front();
                }
                // Most recently seen last: a value seen again moves to the back.
                if let Some(i) = d.iter().position(|(h, _)| *h == value_hash) {
                    if let Some((h, t)) = d.remove(i) {
                        d.push_back((h, t.max(now)));
                    }
                } else {
                    d.push_back((value_hash, now));
                }
                if d.len() > MAX_DISTINCT {
                    d.pop_front();
                }
                if (d.len() as f64) + 1e-9 < self.count {
                    return None;
                }
                let n = d.len();
                let ts = evidence(d.iter().map(|&(_, t)| t).collect());
                d.clear();
                let key = ks.key.clone();
                let field = match &self.measure {
                    Measure::Distinct(_, name) => name.as_str(),
                    _ => "",
                };
                let mut thr = String::new();
                push_num(&mut thr, self.count);
                Some(RuleMatch {
                    rule,
                    detail: format!(
                        "{n} distinct {field} values in events matching `{}` within {} (threshold {thr}){}",
                        self.when_text,
                        format_window(self.window_ms),
                        self.by.describe(&key)
                    ),
                    group_key: key,
                    step_ts: ts,
                })
            }
            KeyData::Seq(_) => None,
        }
    }
}

impl Sequence {
    /// Which of `steps` the record matches (bit i = step i), and whether it matches `until` (the
    /// sequence's own conditions, or their specialisation for the record's kind). When the agent has no
    /// partial match of this sequence (`idle`), only the first step can matter, so the others are not
    /// evaluated unless it matches.
    #[inline]
    pub(crate) fn classify(steps: &[Cond], until: Option<&Cond>, idle: bool, cx: &Cx<'_>) -> (u32, bool) {
        let mut mask = 0u32;
        for (i, s) in steps.iter().enumerate() {
            if idle && i > 0 && mask == 0 {
                return (0, false);
            }
            if s.eval(cx) {
                mask |= 1 << i;
            }
        }
        let until = !idle && until.is_some_and(|u| u.eval(cx));
        (mask, until)
    }

    /// Advances the sequence with `rec` (already classified) and returns a match when its last step
    /// completes.
    pub(crate) fn update(
        &self,
        rule: usize,
        cx: &Cx<'_>,
        mask: u32,
        until: bool,
        state: &mut RuleState,
        at: SlotRef<'_>,
    ) -> Option<RuleMatch> {
        let now = cx.rec.ts_ms();
        let hash = self.by.hash(cx);
        let slot = state.slot(at.pack, at.rule_fps, at.slot)?;
        if until {
            // `until` resets this key's progress; the resetting event starts nothing.
            slot.keys.retain(|k| k.hash != hash);
            return None;
        }
        let n = self.steps.len();
        if mask & 1 == 0 && !slot.keys.iter().any(|k| k.hash == hash) {
            // Only a first step can create state.
            return None;
        }
        let ks = key_state(slot, hash, now, self.window_ms, || (self.by.render(cx), KeyData::Seq(vec![None; n - 1])));
        ks.last_ts = ks.last_ts.max(now);
        let KeyData::Seq(chains) = &mut ks.data else {
            return None;
        };
        let window = self.window_ms;
        for c in chains.iter_mut() {
            if c.as_ref().is_some_and(|c| now.saturating_sub(c.start) > window) {
                *c = None;
            }
        }
        // Later steps first, so one event advances a chain by one step at most.
        for i in (1..n).rev() {
            if mask & (1 << i) == 0 {
                continue;
            }
            let Some(prev) = chains[i - 1].as_ref() else {
                continue;
            };
            if prev.ts.last().is_some_and(|&t| now < t) {
                continue;
            }
            let mut next = prev.clone();
            next.ts.push(now);
            if i == n - 1 {
                let key = ks.key.clone();
                chains.iter_mut().for_each(|c| *c = None);
                let steps: Vec<String> =
                    next.ts.iter().enumerate().map(|(k, t)| format!("step {} at {}", k + 1, format_ts(*t))).collect();
                return Some(RuleMatch {
                    rule,
                    detail: format!(
                        "sequence of {n} steps within {}: {}{}",
                        format_window(window),
                        steps.join(", "),
                        self.by.describe(&key)
                    ),
                    group_key: key,
                    step_ts: evidence(next.ts),
                });
            }
            let replace = chains[i].as_ref().is_none_or(|c| c.start <= next.start);
            if replace {
                chains[i] = Some(next);
            }
        }
        if mask & 1 != 0 && n > 1 {
            let replace = chains[0].as_ref().is_none_or(|c| c.start <= now);
            if replace {
                chains[0] = Some(Chain { start: now, ts: vec![now] });
            }
        }
        if chains.iter().all(Option::is_none) {
            slot.keys.retain(|k| k.hash != hash);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_state_is_small() {
        assert!(std::mem::size_of::<RuleState>() <= 24);
        assert_eq!(std::mem::size_of::<RuleState>(), 8);
        let s = RuleState::default();
        assert!(s.is_empty());
        assert_eq!(s.heap_bytes(), 0);
        let json = serde_json::to_string(&s).unwrap();
        let back: RuleState = serde_json::from_str(&json).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn migration_keeps_matching_rules() {
        let mut s = RuleState::default();
        let slot = s.slot(1, &[10, 20], 1).unwrap();
        slot.keys.push(KeyState { hash: 5, key: "k".into(), last_ts: 0, data: KeyData::Weights(VecDeque::new(), 0.0) });
        // New pack: rule 20 moved to slot 0, rule 10 dropped, rule 30 added.
        let slot = s.slot(2, &[20, 30], 0).unwrap();
        assert_eq!(slot.rule, 20);
        assert_eq!(slot.keys.len(), 1);
        let slot = s.slot(2, &[20, 30], 1).unwrap();
        assert_eq!(slot.rule, 30);
        assert!(slot.keys.is_empty());
        assert!(s.slot(2, &[20, 30], 7).is_none());
    }
}
