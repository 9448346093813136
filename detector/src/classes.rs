//! Class baselines shared by every shard, learned deterministically.
//!
//! Every agent of a class feeds its class's baselines, wherever the agent's shard runs. To keep that
//! independent of threads and scheduling, class state is **read-only during an epoch**: shards read the
//! [`ClassTable`] as it stood at the last barrier and append what they would learn to their own
//! [`ClassLog`]. At the barrier (every `class_sync_events` events of input order) the engine replays
//! the logs into the table, shard 0 first, then shard 1, ... — a fixed order, so the table after the
//! barrier is the same for one thread or many. Within an epoch an agent still learns its *own*
//! baselines immediately; only what it teaches its class waits for the barrier.

use crate::hash::KeyedState;
use crate::state::ClassState;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use vigil_models::RobustMoments;

/// Which class-level moments an op updates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MomentsId {
    Tokens,
    Latency,
    BytesOut,
    Escalation,
}

/// One deferred update of class state.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum ClassOp {
    /// One event of the class was processed.
    Event,
    /// Tracked agents of the class changed by `delta`.
    Agents(i32),
    /// A completed rate window: `count` events of kind `kind`.
    RateKind {
        kind: u8,
        count: f32,
        w: f32,
    },
    /// A completed rate window: `count` calls of tool `tool`.
    RateTool {
        tool: u32,
        count: f32,
        w: f32,
    },
    Moments {
        which: MomentsId,
        x: f32,
        w: f32,
    },
    Metric {
        key: u32,
        x: f32,
        w: f32,
    },
    /// A sequence step (`prev` 0 = first step) and its surprise.
    Step {
        prev: u64,
        cur: u64,
        surprise: f32,
        w: f32,
    },
    /// A completed session's length, as `ln(len)`.
    SessionLen {
        ln_len: f32,
    },
    Entropy {
        key: u64,
        slot: u8,
        stat: f32,
        w: f32,
    },
    /// One event's evidence jump (excess surprise, 0 for none) for component `comp`.
    Evidence {
        comp: u8,
        jump: f32,
        w: f32,
    },
    /// A tool call repeating the previous one `n` times in a row (0: not a repeat).
    Repeat {
        n: f32,
    },

    /// A value observation of the first-seen detector (whether it was new is decided when applied,
    /// against the up-to-date vocabulary).
    Value {
        field: u8,
        key: u64,
        w: f32,
    },
}

/// A shard's deferred class updates for one epoch, in processing order.
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct ClassLog {
    ops: Vec<(u64, ClassOp)>,
    /// Names of classes this shard met that the table did not have yet.
    names: Vec<(u64, Box<str>)>,
}

impl ClassLog {
    #[inline]
    pub fn push(&mut self, class: u64, op: ClassOp) {
        self.ops.push((class, op));
    }

    /// The updates logged so far, in order (for tests of what a detector teaches).
    #[cfg(test)]
    pub fn ops(&self) -> &[(u64, ClassOp)] {
        &self.ops
    }

    /// Notes the name of a class the table does not know (once per epoch per shard).
    pub fn note_new_class(&mut self, hash: u64, name: &str) {
        if !self.names.iter().any(|(h, _)| *h == hash) {
            self.names.push((hash, name.into()));
        }
    }

    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// The name of a class this shard met this epoch.
    pub fn name_of(&self, hash: u64) -> Option<&str> {
        self.names.iter().find(|(h, _)| *h == hash).map(|(_, n)| &**n)
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

const NIL: u32 = u32::MAX;

/// Every class's baselines, bounded in count (least recently active evicted).
#[derive(Serialize, Deserialize)]
pub struct ClassTable {
    states: Vec<ClassState>,
    /// Rebuilt from `states` on restore.
    #[serde(skip)]
    index: HashMap<u64, u32, KeyedState>,
    /// Least-recently-active order: `prev`/`next` per slot, head = most recent.
    links: Vec<(u32, u32)>,
    head: u32,
    tail: u32,
    max: usize,
    /// What a class not in the table reads as.
    #[serde(skip, default = "empty_class")]
    empty: ClassState,
    /// Classes evicted so far.
    pub evicted: u64,
}

/// A value counts as known to a class at this (decayed, learning-weighted) count.
pub const KNOWN_VALUE: f32 = 0.25;
/// Memory of the class baselines, in observations.
pub const CLASS_MAX_N: f32 = 5000.0;
const MAX_TRANSITIONS: f32 = 50_000.0;
const MAX_SURPRISES: f32 = 20_000.0;
const MAX_SESSIONS: f32 = 5_000.0;
const MAX_TEXTS: f32 = 5_000.0;
const MAX_VALUES: f32 = 5_000.0;

fn empty_class() -> ClassState {
    ClassState::new("", 0)
}

impl ClassTable {
    /// A copy of the table (for snapshots).
    pub(crate) fn clone_table(&self) -> ClassTable {
        ClassTable {
            states: self.states.clone(),
            index: self.index.clone(),
            links: self.links.clone(),
            head: self.head,
            tail: self.tail,
            max: self.max,
            empty: ClassState::new("", 0),
            evicted: self.evicted,
        }
    }

    /// Checks a restored table and rebuilds its index.
    pub fn validate_restored(&mut self, max_classes: usize) -> Result<(), String> {
        let n = self.states.len() as u32;
        if self.states.len() > max_classes.max(1) || self.links.len() != self.states.len() {
            return Err("class table size".into());
        }
        let in_range = |i: u32| i == NIL || i < n;
        if !in_range(self.head) || !in_range(self.tail) || self.links.iter().any(|&(p, q)| !in_range(p) || !in_range(q))
        {
            return Err("class list links out of range".into());
        }
        self.max = max_classes.max(1);
        self.index = self.states.iter().enumerate().map(|(i, c)| (c.hash, i as u32)).collect();
        if self.index.len() != self.states.len() {
            return Err("duplicate classes".into());
        }
        Ok(())
    }

    pub fn new(max_classes: usize) -> ClassTable {
        ClassTable {
            states: Vec::new(),
            index: HashMap::default(),
            links: Vec::new(),
            head: NIL,
            tail: NIL,
            max: max_classes.max(1),
            empty: ClassState::new("", 0),
            evicted: 0,
        }
    }

    /// The class with hash `h`, or an empty class if the table does not have it (yet).
    #[inline]
    pub fn get(&self, h: u64) -> &ClassState {
        match self.index.get(&h) {
            Some(&i) => &self.states[i as usize],
            None => &self.empty,
        }
    }

    /// Whether the table has the class.
    #[inline]
    pub fn contains(&self, h: u64) -> bool {
        self.index.contains_key(&h)
    }

    /// The name of a known class.
    pub fn name(&self, h: u64) -> Option<&str> {
        self.index.get(&h).map(|&i| &*self.states[i as usize].name)
    }

    pub fn len(&self) -> usize {
        self.states.len()
    }

    pub fn is_empty(&self) -> bool {
        self.states.is_empty()
    }

    fn unlink(&mut self, i: u32) {
        let (p, n) = self.links[i as usize];
        if p != NIL {
            self.links[p as usize].1 = n;
        } else {
            self.head = n;
        }
        if n != NIL {
            self.links[n as usize].0 = p;
        } else {
            self.tail = p;
        }
        self.links[i as usize] = (NIL, NIL);
    }

    fn push_front(&mut self, i: u32) {
        self.links[i as usize] = (NIL, self.head);
        if self.head != NIL {
            self.links[self.head as usize].0 = i;
        }
        self.head = i;
        if self.tail == NIL {
            self.tail = i;
        }
    }

    /// The slot of class `h`, created (evicting the least recently active beyond the cap) if absent.
    fn slot(&mut self, h: u64, name: Option<&str>) -> u32 {
        if let Some(&i) = self.index.get(&h) {
            if self.head != i {
                self.unlink(i);
                self.push_front(i);
            }
            return i;
        }
        let state = ClassState::new(name.unwrap_or("?"), h);
        let i = if self.states.len() < self.max {
            self.states.push(state);
            self.links.push((NIL, NIL));
            (self.states.len() - 1) as u32
        } else {
            let victim = self.tail;
            self.unlink(victim);
            self.index.remove(&self.states[victim as usize].hash);
            self.states[victim as usize] = state;
            self.evicted += 1;
            victim
        };
        self.index.insert(h, i);
        self.push_front(i);
        i
    }

    /// Applies a shard's log and empties it. Call for shards in a fixed order.
    /// Brings every class's cached sums up to date ([`ClassState::refresh`]): at the end of a
    /// barrier, after the logs are applied.
    pub fn refresh(&mut self) {
        self.states.iter_mut().for_each(ClassState::refresh);
    }

    pub fn apply(&mut self, log: &mut ClassLog) {
        let names = std::mem::take(&mut log.names);
        let name_of = |h: u64| names.iter().find(|(n, _)| *n == h).map(|(_, s)| &**s);
        let mut last: Option<(u64, u32)> = None;
        for (h, op) in log.ops.drain(..) {
            let i = match last {
                Some((lh, li)) if lh == h => li,
                _ => {
                    let i = self.slot(h, name_of(h));
                    last = Some((h, i));
                    i
                }
            };
            apply_op(&mut self.states[i as usize], op);
        }
    }
}

/// A run of consecutive ops of one class within one log: `logs[log].ops[start..end]`.
struct Run {
    log: usize,
    start: usize,
    end: usize,
    /// The class's slot in the table.
    slot: u32,
}

impl ClassTable {
    /// Applies `logs` in order, exactly as calling [`ClassTable::apply`] on each would, with the
    /// arithmetic spread over `threads` threads (the barrier is otherwise the largest serial step of a
    /// parallel replay). Classes are independent of each other: only the order of the ops *of one
    /// class* matters. So the slots are taken serially, in `apply`'s order (same creations, same
    /// recency order), and then each thread replays, in log order, the ops of the classes given to
    /// it (classes are dealt out by op count, largest first). When the logs would make the table
    /// evict a class (a slot changing owner mid-barrier), everything is applied serially instead.
    pub fn apply_parallel(&mut self, logs: &mut [&mut ClassLog], threads: usize) {
        let total_ops: usize = logs.iter().map(|l| l.ops.len()).sum();
        // Below a few thousand ops the thread is dearer than the work.
        if threads <= 1 || total_ops < 2048 {
            logs.iter_mut().for_each(|l| self.apply(l));
            self.refresh();
            return;
        }
        // The runs, as `apply` would meet them (it looks a slot up whenever the class changes).
        let mut runs = Vec::new();
        let mut hashes = Vec::new();
        for (k, l) in logs.iter().enumerate() {
            let mut start = 0;
            for i in 1..=l.ops.len() {
                if i == l.ops.len() || l.ops[i].0 != l.ops[start].0 {
                    runs.push(Run { log: k, start, end: i, slot: 0 });
                    hashes.push(l.ops[start].0);
                    start = i;
                }
            }
        }
        let mut new: Vec<u64> = hashes.iter().copied().filter(|h| !self.index.contains_key(h)).collect();
        new.sort_unstable();
        new.dedup();
        if self.states.len() + new.len() > self.max {
            logs.iter_mut().for_each(|l| self.apply(l));
            self.refresh();
            return;
        }
        for (r, &h) in runs.iter_mut().zip(&hashes) {
            let names = &logs[r.log].names;
            r.slot = self.slot(h, names.iter().find(|(n, _)| *n == h).map(|(_, s)| &**s));
        }

        // Deal the classes out by op count, largest first, each to the least loaded thread.
        let mut load = vec![0usize; self.states.len()];
        for r in &runs {
            load[r.slot as usize] += r.end - r.start;
        }
        let mut by_load: Vec<usize> = (0..load.len()).collect();
        by_load.sort_by_key(|&i| (std::cmp::Reverse(load[i]), i));
        let mut owner = vec![0usize; load.len()];
        let mut thread_load = vec![0usize; threads];
        for i in by_load {
            let t = (0..threads).min_by_key(|&t| (thread_load[t], t)).unwrap_or(0);
            owner[i] = t;
            thread_load[t] += load[i];
        }

        // Each thread gets its classes' states (`local` maps a slot to its place there).
        let mut parts: Vec<Vec<&mut ClassState>> = (0..threads).map(|_| Vec::new()).collect();
        let mut local = vec![0usize; self.states.len()];
        for (i, st) in self.states.iter_mut().enumerate() {
            local[i] = parts[owner[i]].len();
            parts[owner[i]].push(st);
        }
        let (runs, owner, local) = (&runs, &owner, &local);
        let logs_read: Vec<&ClassLog> = logs.iter().map(|l| &**l).collect();
        let logs_read = &logs_read;
        let replay = move |t: usize, states: &mut [&mut ClassState]| {
            for r in runs.iter().filter(|r| owner[r.slot as usize] == t) {
                let st = &mut *states[local[r.slot as usize]];
                for &(_, op) in &logs_read[r.log].ops[r.start..r.end] {
                    apply_op(st, op);
                }
            }
            for st in states.iter_mut() {
                st.refresh();
            }
        };
        std::thread::scope(|s| {
            let mut parts = parts.into_iter().enumerate();
            let first = parts.next();
            for (t, mut p) in parts {
                s.spawn(move || replay(t, &mut p));
            }
            if let Some((t, mut p)) = first {
                replay(t, &mut p);
            }
        });
        for l in logs.iter_mut() {
            l.ops.clear();
            l.names.clear();
        }
    }
}

fn apply_op(c: &mut ClassState, op: ClassOp) {
    let moments = |m: &mut RobustMoments, x: f32, w: f32| m.observe(x as f64, w as f64, CLASS_MAX_N);
    match op {
        ClassOp::Event => c.events += 1,
        ClassOp::Agents(d) => c.agents = (c.agents as i64 + d as i64).max(0) as u32,
        ClassOp::RateKind { kind, count, w } => {
            if let Some(m) = c.rate_kinds.get_mut(kind as usize) {
                m.observe_plain(count as f64, w as f64, CLASS_MAX_N);
            }
        }
        ClassOp::RateTool { tool, count, w } => {
            if let Some(m) = c.rate_tools.entry(tool as u64) {
                m.observe_plain(count as f64, w as f64, CLASS_MAX_N);
            }
        }
        ClassOp::Moments { which, x, w } => match which {
            MomentsId::Tokens => c.tokens.observe(x as f64, w as f64, MAX_VALUES),
            MomentsId::Latency => c.latency.observe(x as f64, w as f64, MAX_VALUES),
            MomentsId::BytesOut => c.bytes_out.observe(x as f64, w as f64, MAX_VALUES),
            MomentsId::Escalation => moments(&mut c.escalation, x, w),
        },
        ClassOp::Metric { key, x, w } => {
            if let Some(cal) = c.metrics.entry(key as u64) {
                cal.observe(x as f64, w as f64, MAX_VALUES);
            }
        }
        ClassOp::Step { prev, cur, surprise, w } => {
            c.transitions.observe((prev != 0).then_some(prev), cur, w as f64, MAX_TRANSITIONS);
            c.surprise.observe(surprise as f64, w as f64, MAX_SURPRISES);
        }
        ClassOp::SessionLen { ln_len } => c.session_len.observe(ln_len as f64, 1.0, MAX_SESSIONS),
        ClassOp::Entropy { key, slot, stat, w } => {
            if let Some(cal) = c.entropy.get_mut(slot as usize) {
                cal.observe(stat as f64, w as f64, MAX_TEXTS);
            }
            if key != 0 {
                if let Some(cal) = c.entropy_by.entry(key) {
                    if cal.total() <= 0.0 {
                        *cal = crate::state::entropy_calibrator();
                    }
                    cal.observe(stat as f64, w as f64, MAX_TEXTS);
                }
            }
        }
        ClassOp::Evidence { comp, jump, w } => {
            if let Some(law) = c.jumps.get_mut(comp as usize) {
                law.observe(jump as f64, w as f64, MAX_VALUES);
            }
        }
        ClassOp::Repeat { n } => c.repeats.observe(n as f64, 1.0, MAX_VALUES),

        ClassOp::Value { field, key, w } => {
            if let Some(v) = c.vocab.get_mut(field as usize) {
                v.observe(key, w, CLASS_MAX_N);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Logs of `shards` shards over `classes` classes, several thousand ops of every kind.
    fn sample_logs(shards: usize, classes: u64, ops_per_shard: usize) -> Vec<ClassLog> {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        (0..shards)
            .map(|_| {
                let mut log = ClassLog::default();
                let mut class = 1 + next() % classes;
                for _ in 0..ops_per_shard {
                    if next() % 8 == 0 {
                        class = 1 + next() % classes;
                        log.note_new_class(class, &format!("class-{class}"));
                    }
                    let f = (next() % 1000) as f32 / 100.0;
                    let op = match next() % 8 {
                        0 => ClassOp::Event,
                        1 => ClassOp::Agents(1),
                        2 => ClassOp::Moments { which: MomentsId::Tokens, x: f, w: 1.0 },
                        3 => ClassOp::Step { prev: next() % 5, cur: next() % 5, surprise: f, w: 1.0 },
                        4 => ClassOp::Value { field: 0, key: next() % 50, w: 1.0 },
                        5 => ClassOp::Entropy { key: next() % 3, slot: 0, stat: f, w: 0.5 },
                        6 => ClassOp::RateTool { tool: (next() % 7) as u32, count: f, w: 1.0 },
                        _ => ClassOp::Evidence { comp: 0, jump: f, w: 1.0 },
                    };
                    log.push(class, op);
                }
                log
            })
            .collect()
    }

    fn table_json(t: &ClassTable) -> String {
        serde_json::to_string(t).unwrap()
    }

    #[test]
    fn parallel_apply_equals_serial_apply() {
        // 4 classes in a table of 8 (the parallel path), then 6 in a table of 4 (evictions: serial).
        for (classes, max) in [(4, 8), (6, 4)] {
            let mut serial = ClassTable::new(max);
            let mut parallel: Vec<ClassTable> = (0..3).map(|_| ClassTable::new(max)).collect();
            for round in 0..3 {
                let logs = sample_logs(5, classes + round, 1500);
                for mut l in logs.clone() {
                    serial.apply(&mut l);
                }
                for (threads, t) in parallel.iter_mut().enumerate() {
                    let mut owned = logs.clone();
                    let mut refs: Vec<&mut ClassLog> = owned.iter_mut().collect();
                    t.apply_parallel(&mut refs, threads + 1);
                    assert!(owned.iter().all(|l| l.is_empty() && l.names.is_empty()));
                    assert_eq!(table_json(t), table_json(&serial), "{classes} classes, {threads} threads");
                }
            }
        }
    }

    #[test]
    fn logs_apply_in_order_and_create_classes() {
        let mut t = ClassTable::new(2);
        let mut log = ClassLog::default();
        log.note_new_class(1, "a");
        log.push(1, ClassOp::Event);
        log.push(1, ClassOp::Event);
        log.note_new_class(2, "b");
        log.push(2, ClassOp::Agents(3));
        t.apply(&mut log);
        assert!(log.is_empty());
        assert_eq!(t.get(1).events, 2);
        assert_eq!(&*t.get(1).name, "a");
        assert_eq!(t.get(2).agents, 3);
        assert_eq!(t.get(9).events, 0, "unknown classes read as empty");
        // A third class evicts the least recently active (class 1).
        log.note_new_class(3, "c");
        log.push(3, ClassOp::Event);
        t.apply(&mut log);
        assert!(!t.contains(1));
        assert!(t.contains(2) && t.contains(3));
        assert_eq!(t.evicted, 1);
    }
}
