//! # vigil-sim: a synthetic fleet of AI agents, with labelled attacks
//!
//! This crate is the test bed behind `vigil simulate`. It writes a stream of agent events (the shape
//! of `spec/events.md`) for a fleet of simulated agents, injects attacks into some of them, and writes
//! a label window for each attack (`spec/evaluation.md`). It owns realism and ground truth, nothing
//! else: it knows no detector, reads no clock and does no I/O beyond the two writers it is handed.
//!
//! **Why realism matters.** A detector is tuned and judged on this data, so the normal traffic must
//! not make any single signal a free win. Agents belong to six classes (support bots, coding
//! assistants, batch data pipelines, research agents, devops agents, email assistants) with their own
//! tool vocabularies and Markov chains of tool use, session shapes, token and byte sizes
//! (log-normal), daily rhythms in their own time zones, idle stretches and busy bursts. Normal work
//! includes what a naive detector would flag: base64 images and uploads, JWTs and digests in
//! arguments, legitimate `sudo`, denied and failed operations, rare tools, new destinations and
//! directories, agents joining and leaving the fleet. Attacks range from loud to quiet, and mimicry
//! keeps the victim's habits intact apart from its payloads.
//!
//! **How it streams.** Each agent is a lazy generator: a state machine for its normal work plus, from
//! a planned time on, the steps of its attacks. Agents sit in a min-heap keyed on the earliest time
//! they could still emit; the driver pops the earliest, lets it emit one event or run one generation
//! step, and pushes it back. Output is therefore sorted by `ts` (ties by agent, then creation order),
//! memory is bounded by the fleet rather than the run length, and lines go to the writer as they are
//! produced. Every draw comes from ChaCha8 generators seeded from the run seed (one stream per agent
//! and per attack), so a config always yields the same bytes.
//!
//! **Ground truth.** Every malicious event carries its attack's label index; label windows span the
//! first to the last malicious event actually written, so a run cut short by an event limit still gets
//! exact labels. Attacks never start in the first tenth of the run.
//!
//! ```
//! let cfg = vigil_sim::SimConfig {
//!     agents: 20,
//!     duration_ms: Some(vigil_sim::parse_duration("30m").unwrap()),
//!     attacks: vigil_sim::parse_attack_list("all").unwrap(),
//!     ..Default::default()
//! };
//! let (mut events, mut labels) = (Vec::new(), Vec::new());
//! let stats = vigil_sim::simulate(&cfg, &mut events, Some(&mut labels)).unwrap();
//! assert!(stats.events > 0);
//! ```

mod agent;
mod attack;
mod classes;
mod dist;
mod fleet;
mod json;
mod text;
mod time;

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::{BufWriter, Write};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use time::{format_rfc3339, parse_timestamp};

/// `2026-01-01T00:00:00Z`, the default run start, in epoch milliseconds.
pub const DEFAULT_START_MS: i64 = 1_767_225_600_000;

/// The largest fleet `simulate` accepts.
pub const MAX_AGENTS: usize = 1_000_000;

/// The agent classes, fixed for every seed. `data-pipeline` writes integer epoch-millisecond `ts`;
/// the others RFC 3339 strings.
pub const CLASSES: &[&str] =
    &["support-bot", "code-assistant", "data-pipeline", "research-agent", "devops-agent", "email-assistant"];

/// What went wrong. Configuration errors are the caller's to fix (retrying cannot help); I/O errors
/// come from the writers (a full disk or closed pipe; retrying may help once that is fixed).
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The fleet is empty or too large.
    #[error("agents must be between 1 and {max}, got {got}")]
    Agents {
        /// What was asked for.
        got: usize,
        /// [`MAX_AGENTS`].
        max: usize,
    },
    /// Both or neither of `duration_ms` and `events` were given.
    #[error("give exactly one of a duration and an event count (got {0})")]
    RunLength(&'static str),
    /// A zero duration or event count.
    #[error("the run is empty: {0} must be at least 1")]
    EmptyRun(&'static str),
    /// The run does not fit in years 0000..=9999.
    #[error("the run starting at {start_ms} ms does not fit in years 0000..=9999")]
    OutOfRange {
        /// The configured start.
        start_ms: i64,
    },
    /// An attack name that is not one of [`Attack::ALL`].
    #[error("unknown attack type `{name}`; expected `all`, `none` or a comma-separated list of: {known}")]
    UnknownAttack {
        /// The name as given.
        name: String,
        /// The canonical names.
        known: String,
    },
    /// A duration that does not parse.
    #[error("invalid duration `{input}`: {reason} (examples: 90s, 15m, 2h, 1d, 1h30m)")]
    BadDuration {
        /// The text as given.
        input: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A start time that does not parse.
    #[error("invalid timestamp `{input}`: {reason}")]
    BadTimestamp {
        /// The text as given.
        input: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Writing events or labels failed.
    #[error("writing simulator output failed: {0}")]
    Io(#[from] std::io::Error),
}

/// The attack types `vigil simulate` can inject (names per `spec/evaluation.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Attack {
    /// Reads of data, then one or a few large high-entropy uploads to a paste / file-drop site.
    Exfiltration,
    /// Small encoded chunks sent over 30–90 minutes, mixed into normal traffic.
    SlowExfiltration,
    /// Repeated privileged `sudo` / `role_assume` attempts, mostly denied, with setuid/chmod tries.
    PrivilegeEscalation,
    /// Injected instructions in a tool result or message, then an out-of-character sensitive action.
    PromptInjection,
    /// A loop of large LLM calls and repeated tool calls far above the agent's normal rate.
    Runaway,
    /// Reads of SSH keys, cloud credentials, `.env` files and `/etc/shadow`, and credential reads.
    CredentialHunting,
    /// Connections to destinations the class never uses.
    NewEgress,
    /// Normal behaviour whose outbound payloads carry encoded stolen data.
    Mimicry,
}

impl Attack {
    /// Every attack type, in canonical order.
    pub const ALL: [Attack; 8] = [
        Attack::Exfiltration,
        Attack::SlowExfiltration,
        Attack::PrivilegeEscalation,
        Attack::PromptInjection,
        Attack::Runaway,
        Attack::CredentialHunting,
        Attack::NewEgress,
        Attack::Mimicry,
    ];

    /// The canonical name used in `--attacks` and in labels.
    pub fn name(&self) -> &'static str {
        match self {
            Attack::Exfiltration => "exfiltration",
            Attack::SlowExfiltration => "slow-exfiltration",
            Attack::PrivilegeEscalation => "privilege-escalation",
            Attack::PromptInjection => "prompt-injection",
            Attack::Runaway => "runaway",
            Attack::CredentialHunting => "credential-hunting",
            Attack::NewEgress => "new-egress",
            Attack::Mimicry => "mimicry",
        }
    }
}

impl std::fmt::Display for Attack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

fn known_attacks() -> String {
    Attack::ALL.iter().map(Attack::name).collect::<Vec<_>>().join(", ")
}

impl FromStr for Attack {
    type Err = SimError;

    /// Parses a canonical name (surrounding spaces and letter case are ignored).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        Attack::ALL
            .iter()
            .copied()
            .find(|a| a.name().eq_ignore_ascii_case(t))
            .ok_or_else(|| SimError::UnknownAttack { name: t.to_string(), known: known_attacks() })
    }
}

/// Parses `--attacks`: `all`, `none`, or comma-separated canonical names (duplicates dropped, order
/// kept).
pub fn parse_attack_list(s: &str) -> Result<Vec<Attack>, SimError> {
    let t = s.trim();
    if t.eq_ignore_ascii_case("all") {
        return Ok(Attack::ALL.to_vec());
    }
    if t.eq_ignore_ascii_case("none") {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for part in t.split(',') {
        let a: Attack = part.parse()?;
        if !out.contains(&a) {
            out.push(a);
        }
    }
    Ok(out)
}

/// Parses a run length such as `90s`, `15m`, `2h`, `1d`, `1h30m` or `500ms` into milliseconds.
/// Every number needs a unit; the result must be positive.
pub fn parse_duration(s: &str) -> Result<u64, SimError> {
    let bad = |reason: &'static str| SimError::BadDuration { input: s.to_string(), reason };
    let t = s.trim().to_ascii_lowercase();
    if t.is_empty() {
        return Err(bad("it is empty"));
    }
    let b = t.as_bytes();
    let mut i = 0;
    let mut total: u64 = 0;
    while i < b.len() {
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return Err(bad("expected a number"));
        }
        let n: u64 = t[start..i].parse().map_err(|_| bad("the number is too large"))?;
        let ustart = i;
        while i < b.len() && b[i].is_ascii_alphabetic() {
            i += 1;
        }
        let unit: u64 = match &t[ustart..i] {
            "ms" => 1,
            "s" => 1000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "" => return Err(bad("a number has no unit (ms, s, m, h or d)")),
            _ => return Err(bad("unknown unit (use ms, s, m, h or d)")),
        };
        total =
            n.checked_mul(unit).and_then(|v| total.checked_add(v)).ok_or_else(|| bad("the duration is too large"))?;
    }
    if total == 0 {
        return Err(bad("it must be longer than zero"));
    }
    Ok(total)
}

/// How to simulate. Exactly one of `duration_ms` and `events` must be set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimConfig {
    /// Number of agent instances (1..=[`MAX_AGENTS`]).
    pub agents: usize,
    /// Run length in event time, milliseconds.
    pub duration_ms: Option<u64>,
    /// Or: stop after exactly this many events (the run length is then planned from the fleet's
    /// expected event rate, so attacks are spread over it).
    pub events: Option<u64>,
    /// Seed of every random draw; the same config gives byte-identical output.
    pub seed: u64,
    /// Attack types to inject (empty = none); about `max(1, agents / 50)` instances of each.
    pub attacks: Vec<Attack>,
    /// Run start, epoch milliseconds (default [`DEFAULT_START_MS`], 2026-01-01T00:00:00Z).
    pub start_ms: i64,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            agents: 100,
            duration_ms: Some(3_600_000),
            events: None,
            seed: 1,
            attacks: Vec::new(),
            start_ms: DEFAULT_START_MS,
        }
    }
}

impl SimConfig {
    /// Checks the config; `simulate` calls this first.
    pub fn validate(&self) -> Result<(), SimError> {
        if self.agents == 0 || self.agents > MAX_AGENTS {
            return Err(SimError::Agents { got: self.agents, max: MAX_AGENTS });
        }
        match (self.duration_ms, self.events) {
            (Some(_), Some(_)) => return Err(SimError::RunLength("both")),
            (None, None) => return Err(SimError::RunLength("neither")),
            (Some(0), _) => return Err(SimError::EmptyRun("the duration")),
            (_, Some(0)) => return Err(SimError::EmptyRun("the event count")),
            _ => {}
        }
        let end = self
            .duration_ms
            .and_then(|d| i64::try_from(d).ok())
            .map_or(Some(self.start_ms), |d| self.start_ms.checked_add(d));
        let in_range = |t: i64| (time::MIN_MS..=time::MAX_MS).contains(&t);
        if !in_range(self.start_ms) || !end.is_some_and(in_range) {
            return Err(SimError::OutOfRange { start_ms: self.start_ms });
        }
        Ok(())
    }
}

/// What a run wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct SimStats {
    /// Event lines written.
    pub events: u64,
    /// Agents in the fleet.
    pub agents: usize,
    /// Label windows written (attacks with at least one malicious event in the output).
    pub attacks: usize,
}

/// Ground truth of one planned attack, filled in as its events are written.
pub(crate) struct LabelSlot {
    pub agent: u32,
    pub attack: Attack,
    pub session: Option<String>,
    pub first: Option<i64>,
    pub last: i64,
}

/// Runs the simulation: writes events (JSON Lines, sorted by `ts`) to `events` as they are produced,
/// then, if given, one label line per attack window to `labels` (sorted by start, then agent).
pub fn simulate(cfg: &SimConfig, events: &mut dyn Write, labels: Option<&mut dyn Write>) -> Result<SimStats, SimError> {
    cfg.validate()?;
    let fleet::Plan { mut agents, mut slots, end_ms, .. } = fleet::plan(cfg);
    let limit = cfg.events.unwrap_or(u64::MAX);
    let mut out = BufWriter::with_capacity(1 << 16, events);
    let mut heap: BinaryHeap<Reverse<(i64, u32)>> = BinaryHeap::with_capacity(agents.len());
    for (i, a) in agents.iter().enumerate() {
        let k = a.key();
        if k < end_ms {
            heap.push(Reverse((k, i as u32)));
        }
    }
    let mut written = 0u64;
    while written < limit {
        let Some(Reverse((key, i))) = heap.pop() else {
            break;
        };
        if key >= end_ms {
            break;
        }
        let a = &mut agents[i as usize];
        if let Some(p) = a.poll(&mut slots) {
            debug_assert_eq!(p.ts, key, "an agent emitted out of order");
            out.write_all(p.line.as_bytes())?;
            written += 1;
            if let Some(slot) = slots.get_mut(p.label as usize) {
                slot.first.get_or_insert(p.ts);
                slot.last = p.ts;
            }
        }
        let k = a.key();
        if k < end_ms {
            heap.push(Reverse((k, i)));
        }
    }
    out.flush()?;
    drop(out);

    let mut windows: Vec<(i64, &str, &LabelSlot)> =
        slots.iter().filter_map(|s| s.first.map(|f| (f, agents[s.agent as usize].id.as_str(), s))).collect();
    windows.sort_by(|a, b| (a.0, a.1, a.2.attack, a.2.last).cmp(&(b.0, b.1, b.2.attack, b.2.last)));
    if let Some(w) = labels {
        let mut w = BufWriter::new(w);
        let mut line = String::with_capacity(256);
        for (first, agent_id, s) in &windows {
            line.clear();
            let int_ts = agents[s.agent as usize].class.ts_int;
            let ts = |out: &mut String, t: i64| {
                if int_ts {
                    json::push_i64(out, t);
                } else {
                    out.push('"');
                    time::push_rfc3339(out, t);
                    out.push('"');
                }
            };
            let mut start = String::new();
            ts(&mut start, *first);
            let mut end = String::new();
            ts(&mut end, s.last);
            let mut o = json::Obj::open(&mut line);
            o.str("agent_id", agent_id);
            if let Some(sess) = &s.session {
                o.str("session_id", sess);
            }
            o.raw("start", &start).raw("end", &end).str("attack", s.attack.name());
            o.close();
            line.push('\n');
            w.write_all(line.as_bytes())?;
        }
        w.flush()?;
    }
    Ok(SimStats { events: written, agents: agents.len(), attacks: windows.len() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;
    use std::collections::{HashMap, HashSet};
    use std::sync::OnceLock;

    fn cfg(agents: usize, duration: &str, seed: u64, attacks: &str) -> SimConfig {
        SimConfig {
            agents,
            duration_ms: Some(parse_duration(duration).unwrap()),
            events: None,
            seed,
            attacks: parse_attack_list(attacks).unwrap(),
            start_ms: DEFAULT_START_MS,
        }
    }

    struct Run {
        events: String,
        labels: String,
        stats: SimStats,
    }

    fn run(c: &SimConfig) -> Run {
        let mut ev = Vec::new();
        let mut lb = Vec::new();
        let stats = simulate(c, &mut ev, Some(&mut lb)).unwrap();
        Run { events: String::from_utf8(ev).unwrap(), labels: String::from_utf8(lb).unwrap(), stats }
    }

    /// The reference run the brief asks about: 200 agents, 6 hours, every attack. Shared by tests.
    fn big() -> &'static (Run, Vec<Value>, Vec<Value>) {
        static BIG: OnceLock<(Run, Vec<Value>, Vec<Value>)> = OnceLock::new();
        BIG.get_or_init(|| {
            let r = run(&cfg(200, "6h", 42, "all"));
            let evs = r.events.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
            let lbs = r.labels.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
            (r, evs, lbs)
        })
    }

    fn ts_ms(v: &Value) -> i64 {
        match v {
            Value::Number(n) => n.as_i64().expect("integer ts"),
            Value::String(s) => parse_timestamp(s).expect("RFC 3339 ts"),
            other => panic!("bad ts {other}"),
        }
    }

    fn str_field<'a>(e: &'a Value, k: &str) -> &'a str {
        e[k].as_str().unwrap_or_else(|| panic!("{k} missing or not a string in {e}"))
    }

    fn u64_field(e: &Value, path: &[&str]) -> u64 {
        let mut v = e;
        for p in path {
            v = &v[*p];
        }
        v.as_u64().unwrap_or_else(|| panic!("{path:?} missing or not a non-negative integer in {e}"))
    }

    /// Checks one event against spec/events.md.
    fn check_event(e: &Value) {
        ts_ms(&e["ts"]);
        let id = str_field(e, "agent_id");
        assert!(!id.is_empty() && id.len() <= 256);
        let class = str_field(e, "agent");
        assert!(CLASSES.contains(&class), "{class}");
        assert!(id.starts_with(class));
        if class == "data-pipeline" {
            assert!(e["ts"].is_i64(), "data-pipeline writes integer ts");
        } else {
            let s = e["ts"].as_str().expect("string ts");
            assert_eq!(s.len(), 24, "millisecond RFC 3339: {s}");
        }
        if let Some(o) = e.get("outcome") {
            assert!(matches!(o.as_str(), Some("ok" | "denied" | "error")), "{e}");
        }
        if let Some(p) = e.get("privileged") {
            assert!(p.is_boolean());
        }
        if let Some(a) = e.get("attrs") {
            assert!(a.is_object());
        }
        for k in ["session_id", "id"] {
            if let Some(v) = e.get(k) {
                assert!(v.is_string(), "{k} in {e}");
            }
        }
        match str_field(e, "kind") {
            "llm_call" => {
                str_field(e, "model");
                u64_field(e, &["tokens", "input"]);
                u64_field(e, &["tokens", "output"]);
                u64_field(e, &["latency_ms"]);
            }
            "tool_call" => {
                str_field(e, "tool");
                str_field(e, "call_id");
                assert!(e["args"].is_object() || e["args"].is_string());
            }
            "tool_result" => {
                str_field(e, "tool");
                str_field(e, "call_id");
                u64_field(e, &["bytes"]);
                assert!(str_field(e, "payload").len() <= text::MAX_PAYLOAD);
            }
            "net" => {
                str_field(e, "dest");
                str_field(e, "method");
                u64_field(e, &["bytes_out"]);
                u64_field(e, &["bytes_in"]);
            }
            "file" => {
                str_field(e, "path");
                assert!(matches!(str_field(e, "op"), "read" | "write" | "delete" | "exec" | "chmod"));
                u64_field(e, &["bytes"]);
            }
            "process" => {
                str_field(e, "cmd");
                assert!(e["argv"].is_array());
            }
            "auth" => {
                str_field(e, "op");
                str_field(e, "scope");
                str_field(e, "principal");
            }
            "message" => {
                assert!(matches!(str_field(e, "role"), "user" | "assistant" | "system" | "tool"));
                str_field(e, "content");
            }
            "metric" => {
                str_field(&e["metric"], "name");
                assert!(e["metric"]["value"].is_number());
            }
            other => panic!("unexpected kind {other}"),
        }
    }

    #[test]
    fn same_seed_gives_identical_bytes_and_other_seeds_differ() {
        let a = run(&cfg(12, "40m", 7, "all"));
        let b = run(&cfg(12, "40m", 7, "all"));
        assert_eq!(a.events, b.events);
        assert_eq!(a.labels, b.labels);
        assert_eq!(a.stats, b.stats);
        let c = run(&cfg(12, "40m", 8, "all"));
        assert_ne!(a.events, c.events);
        assert!(a.stats.events > 100);
    }

    #[test]
    fn every_line_is_a_valid_sorted_unique_event() {
        let r = run(&cfg(30, "90m", 3, "all"));
        assert!(r.events.ends_with('\n'));
        let mut last = i64::MIN;
        let mut ids = HashSet::new();
        let mut lines = HashSet::new();
        let mut kinds = HashSet::new();
        for line in r.events.lines() {
            let e: Value = serde_json::from_str(line).unwrap();
            check_event(&e);
            let t = ts_ms(&e["ts"]);
            assert!(t >= last, "not sorted at {line}");
            last = t;
            if let Some(id) = e.get("id") {
                assert!(ids.insert(id.as_str().unwrap().to_string()), "duplicate id {id}");
            }
            assert!(lines.insert(line), "duplicate line {line}");
            kinds.insert(e["kind"].as_str().unwrap().to_string());
        }
        assert_eq!(r.stats.events as usize, lines.len());
        for k in ["llm_call", "tool_call", "tool_result", "net", "file", "process", "auth", "message", "metric"] {
            assert!(kinds.contains(k), "no {k} events");
        }
    }

    #[test]
    fn every_agent_appears_and_uses_fixed_class_names() {
        for (agents, dur) in [(1, "5m"), (7, "10m"), (60, "1h")] {
            let r = run(&cfg(agents, dur, 11, "none"));
            let seen: HashSet<String> = r
                .events
                .lines()
                .map(|l| serde_json::from_str::<Value>(l).unwrap()["agent_id"].as_str().unwrap().to_string())
                .collect();
            assert_eq!(seen.len(), agents, "{agents} agents over {dur}");
            assert_eq!(r.stats.agents, agents);
            assert!(r.labels.is_empty());
        }
    }

    #[test]
    fn calls_pair_with_results() {
        let r = run(&cfg(15, "2h", 5, "all"));
        let mut open: HashMap<(String, String), String> = HashMap::new();
        for l in r.events.lines() {
            let e: Value = serde_json::from_str(l).unwrap();
            let agent = e["agent_id"].as_str().unwrap().to_string();
            match e["kind"].as_str().unwrap() {
                "tool_call" => {
                    let key = (agent, e["call_id"].as_str().unwrap().to_string());
                    assert!(open.insert(key, e["tool"].as_str().unwrap().to_string()).is_none());
                }
                "tool_result" => {
                    let key = (agent, e["call_id"].as_str().unwrap().to_string());
                    let tool = open.remove(&key).expect("a result without its call");
                    assert_eq!(tool, e["tool"].as_str().unwrap());
                }
                _ => {}
            }
        }
        // Calls whose results fall past the end of the run may stay open; only a few.
        assert!(open.len() <= 15, "{} calls without results", open.len());
    }

    #[test]
    fn event_limit_gives_exactly_that_many_lines_and_exact_labels() {
        for n in [1u64, 777, 6000] {
            let c = SimConfig {
                agents: 40,
                duration_ms: None,
                events: Some(n),
                seed: 9,
                attacks: Attack::ALL.to_vec(),
                ..Default::default()
            };
            let r = run(&c);
            assert_eq!(r.events.lines().count() as u64, n);
            assert_eq!(r.stats.events, n);
            let evs: Vec<Value> = r.events.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
            let last = ts_ms(&evs.last().unwrap()["ts"]);
            for l in r.labels.lines() {
                let lb: Value = serde_json::from_str(l).unwrap();
                assert!(ts_ms(&lb["end"]) <= last, "a window past the written events: {l}");
                assert!(ts_ms(&lb["start"]) <= ts_ms(&lb["end"]));
            }
            assert_eq!(r.labels.lines().count(), r.stats.attacks);
        }
    }

    #[test]
    fn planned_length_tracks_the_event_count() {
        for (agents, n) in [(50usize, 20_000u64), (300, 60_000)] {
            let c = SimConfig {
                agents,
                duration_ms: None,
                events: Some(n),
                seed: 4,
                attacks: vec![],
                ..Default::default()
            };
            let planned = fleet::plan(&c).planned_ms;
            let r = run(&c);
            let last = r.events.lines().last().unwrap();
            let span = ts_ms(&serde_json::from_str::<Value>(last).unwrap()["ts"]) - c.start_ms;
            let ratio = span as f64 / planned as f64;
            assert!((0.7..1.4).contains(&ratio), "{agents} agents, {n} events: actual/planned = {ratio}");
        }
    }

    #[test]
    fn labels_cover_their_malicious_events_after_the_first_tenth() {
        let (r, evs, lbs) = big();
        let c = cfg(200, "6h", 42, "all");
        let run_start = c.start_ms;
        let tenth = run_start + c.duration_ms.unwrap() as i64 / 10;
        assert_eq!(lbs.len(), r.stats.attacks);
        let mut by_agent: HashMap<&str, Vec<&Value>> = HashMap::new();
        for ev in evs {
            by_agent.entry(ev["agent_id"].as_str().unwrap()).or_default().push(ev);
        }
        let mut by_type: HashMap<String, usize> = HashMap::new();
        let mut last_start = i64::MIN;
        for lb in lbs {
            let agent = lb["agent_id"].as_str().unwrap();
            let (s, e) = (ts_ms(&lb["start"]), ts_ms(&lb["end"]));
            assert!(s >= tenth, "attack before the first tenth: {lb}");
            assert!(s <= e);
            assert!(s >= last_start, "labels not sorted by start");
            last_start = s;
            let in_window: Vec<&Value> =
                by_agent[agent].iter().copied().filter(|ev| (s..=e).contains(&ts_ms(&ev["ts"]))).collect();
            assert!(in_window.iter().any(|ev| ts_ms(&ev["ts"]) == s), "no event at the window start: {lb}");
            assert!(in_window.iter().any(|ev| ts_ms(&ev["ts"]) == e), "no event at the window end: {lb}");
            if let Some(sess) = lb.get("session_id") {
                assert!(in_window.iter().any(|ev| ev.get("session_id") == Some(sess)));
            }
            *by_type.entry(lb["attack"].as_str().unwrap().to_string()).or_default() += 1;
        }
        for a in Attack::ALL {
            let n = by_type.get(a.name()).copied().unwrap_or(0);
            assert!((2..=4).contains(&n), "{} windows of {a} for 200 agents", n);
        }
        // Distinct victims.
        let victims: HashSet<&str> = lbs.iter().map(|l| l["agent_id"].as_str().unwrap()).collect();
        assert_eq!(victims.len(), lbs.len());
    }

    #[test]
    fn the_reference_fleet_is_valid_and_varied() {
        let (r, evs, _) = big();
        assert_eq!(r.stats.agents, 200);
        let mut last = i64::MIN;
        let mut ids = HashSet::new();
        let mut agents = HashSet::new();
        let mut tools: HashMap<&str, HashSet<&str>> = HashMap::new();
        let mut paths = HashSet::new();
        for e in evs {
            check_event(e);
            let t = ts_ms(&e["ts"]);
            assert!(t >= last);
            last = t;
            if let Some(id) = e["id"].as_str() {
                assert!(ids.insert(id));
            }
            agents.insert(e["agent_id"].as_str().unwrap());
            if let Some(tool) = e["tool"].as_str() {
                tools.entry(e["agent"].as_str().unwrap()).or_default().insert(tool);
            }
            if let Some(p) = e["path"].as_str() {
                paths.insert(p);
            }
        }
        assert_eq!(agents.len(), 200);
        for c in CLASSES {
            assert!(tools.get(c).map_or(0, |t| t.len()) >= 5, "{c} uses too few tools");
        }
        assert!(paths.len() > 500, "file paths should be high-cardinality, got {}", paths.len());
    }

    fn entropy(s: &str) -> f64 {
        let mut counts = [0usize; 256];
        for b in s.bytes() {
            counts[usize::from(b)] += 1;
        }
        let n = s.len() as f64;
        counts.iter().filter(|&&c| c > 0).map(|&c| -(c as f64 / n) * (c as f64 / n).log2()).sum()
    }

    #[test]
    fn benign_traffic_has_the_signals_a_naive_detector_would_flag() {
        let (_, evs, lbs) = big();
        let victims: HashSet<&str> = lbs.iter().map(|l| l["agent_id"].as_str().unwrap()).collect();
        let benign = evs.iter().filter(|e| !victims.contains(e["agent_id"].as_str().unwrap()));
        let (mut high_entropy, mut denied, mut errors, mut privileged) = (0, 0, 0, 0);
        for e in benign {
            for k in ["payload", "content"] {
                if let Some(s) = e[k].as_str() {
                    if s.len() >= 64 && entropy(s) > 5.5 {
                        high_entropy += 1;
                    }
                }
            }
            match e["outcome"].as_str() {
                Some("denied") => denied += 1,
                Some("error") => errors += 1,
                _ => {}
            }
            if e["privileged"] == true {
                privileged += 1;
            }
        }
        assert!(high_entropy > 50, "{high_entropy} high-entropy benign payloads");
        assert!(denied > 0 && errors > 50 && privileged > 0, "{denied} {errors} {privileged}");
    }

    #[test]
    fn parse_duration_accepts_units_and_combinations() {
        assert_eq!(parse_duration("90s").unwrap(), 90_000);
        assert_eq!(parse_duration("15m").unwrap(), 900_000);
        assert_eq!(parse_duration("2h").unwrap(), 7_200_000);
        assert_eq!(parse_duration("1d").unwrap(), 86_400_000);
        assert_eq!(parse_duration("1h30m").unwrap(), 5_400_000);
        assert_eq!(parse_duration(" 1H30M10s ").unwrap(), 5_410_000);
        assert_eq!(parse_duration("250ms").unwrap(), 250);
        for bad in ["", "90", "h", "1x", "1.5h", "-1h", "0s", "1h 30m", "99999999999999999999d", "9999999999999999d"] {
            let e = parse_duration(bad).unwrap_err();
            assert!(matches!(e, SimError::BadDuration { .. }), "{bad}: {e}");
            assert!(e.to_string().contains("examples"));
        }
    }

    #[test]
    fn parse_attack_list_handles_all_none_and_names() {
        assert_eq!(parse_attack_list("all").unwrap(), Attack::ALL.to_vec());
        assert_eq!(parse_attack_list("none").unwrap(), vec![]);
        assert_eq!(parse_attack_list("runaway, mimicry,runaway").unwrap(), vec![Attack::Runaway, Attack::Mimicry]);
        for a in Attack::ALL {
            assert_eq!(a.name().parse::<Attack>().unwrap(), a);
            assert_eq!(a.to_string(), a.name());
        }
        let err = parse_attack_list("exfiltration,teleport").unwrap_err();
        assert!(matches!(&err, SimError::UnknownAttack { name, .. } if name == "teleport"));
        assert!(err.to_string().contains("`teleport`") && err.to_string().contains("slow-exfiltration"));
        assert!(parse_attack_list("").is_err());
        assert!(parse_attack_list("runaway,").is_err());
    }

    #[test]
    fn bad_configs_are_rejected() {
        let ok = cfg(3, "1m", 1, "none");
        assert!(ok.validate().is_ok());
        let mut c = ok.clone();
        c.agents = 0;
        assert!(matches!(simulate(&c, &mut Vec::new(), None), Err(SimError::Agents { .. })));
        let mut c = ok.clone();
        c.events = Some(10);
        assert!(matches!(c.validate(), Err(SimError::RunLength("both"))));
        let mut c = ok.clone();
        c.duration_ms = None;
        assert!(matches!(c.validate(), Err(SimError::RunLength("neither"))));
        let mut c = ok.clone();
        c.duration_ms = Some(0);
        assert!(matches!(c.validate(), Err(SimError::EmptyRun(_))));
        let mut c = ok.clone();
        c.start_ms = time::MAX_MS;
        assert!(matches!(c.validate(), Err(SimError::OutOfRange { .. })));
    }

    #[test]
    fn io_errors_are_reported() {
        struct Broken;
        impl Write for Broken {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                Err(std::io::Error::new(std::io::ErrorKind::BrokenPipe, "closed"))
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let r = simulate(&cfg(3, "10m", 1, "none"), &mut Broken, None);
        assert!(matches!(r, Err(SimError::Io(_))));
    }

    #[test]
    fn config_round_trips_through_serde() {
        let c = cfg(5, "1h", 3, "runaway,new-egress");
        let s = serde_json::to_string(&c).unwrap();
        assert!(s.contains("\"new-egress\""));
        let back: SimConfig = serde_json::from_str(&s).unwrap();
        assert_eq!(back, c);
        assert!(serde_json::from_str::<SimConfig>("{\"agentz\":3}").is_err());
    }

    proptest::proptest! {
        #[test]
        fn durations_round_trip(h in 0u64..500, m in 0u64..60, s in 0u64..60) {
            proptest::prop_assume!(h + m + s > 0);
            let text = format!("{h}h{m}m{s}s");
            proptest::prop_assert_eq!(parse_duration(&text).unwrap(), ((h * 60 + m) * 60 + s) * 1000);
        }

        #[test]
        fn duration_parser_never_panics(s in ".{0,20}") {
            let _ = parse_duration(&s);
            let _ = parse_attack_list(&s);
            let _ = parse_timestamp(&s);
        }
    }
}

#[cfg(test)]
mod calibration {
    use super::*;

    /// Prints measured vs estimated event rates per class; run with `--ignored --nocapture` after
    /// changing class parameters, and update `est_*` in `classes.rs`.
    #[test]
    #[ignore]
    fn print_calibration() {
        for (ci, class) in classes::CLASS_TABLE.iter().enumerate() {
            let c = SimConfig { agents: 150, duration_ms: Some(2 * 86_400_000), seed: 5, ..Default::default() };
            let plan = fleet::plan_with(&c, Some(ci));
            let expected = fleet::expected_for(&plan, c.start_ms, 2 * 86_400_000);
            let mut agents = plan.agents;
            let mut slots = plan.slots;
            let mut n = 0u64;
            let mut sessions: std::collections::HashMap<String, (u64, i64, i64)> = Default::default();
            let mut heap: BinaryHeap<Reverse<(i64, u32)>> =
                agents.iter().enumerate().map(|(i, a)| Reverse((a.key(), i as u32))).collect();
            while let Some(Reverse((k, i))) = heap.pop() {
                if k >= plan.end_ms {
                    break;
                }
                let a = &mut agents[i as usize];
                if let Some(p) = a.poll(&mut slots) {
                    n += 1;
                    let v: serde_json::Value = serde_json::from_str(&p.line).unwrap();
                    if let Some(s) = v["session_id"].as_str() {
                        let e = sessions.entry(s.to_string()).or_insert((0, p.ts, p.ts));
                        e.0 += 1;
                        e.2 = p.ts;
                    }
                }
                heap.push(Reverse((a.key(), i)));
            }
            let ns = sessions.len() as f64;
            let ev_per = sessions.values().map(|s| s.0 as f64).sum::<f64>() / ns;
            let hours = sessions.values().map(|s| (s.2 - s.1) as f64 / 3.6e6).sum::<f64>() / ns;
            println!(
                "{:16} actual {:8} expected {:10.0} ratio {:.2}  events/session {:.1} (est {}) session h {:.3} (est {})",
                class.name,
                n,
                expected,
                n as f64 / expected,
                ev_per,
                class.est_events_per_session,
                hours,
                class.est_session_hours
            );
        }
    }
}
