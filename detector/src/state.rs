//! Per-agent and per-class state: fixed-size, so memory is a known budget per tracked agent.
//!
//! [`AgentState`] is a plain struct of fixed arrays (no heap), about 1.3 KiB; [`ClassState`] holds the
//! shared baselines of an agent class within one shard, with bounded tables. Neither knows how it is
//! scored: the `score` modules read and update them.

use crate::alert::Position;
use crate::event::Kind;
use serde::{Deserialize, Serialize};
use vigil_models::calibrate::TailCalibrator;
use vigil_models::table::BoundedMap;
use vigil_models::{EvidenceSet, JumpLaw, NoveltyRate, RobustMoments, TransitionModel, Vocabulary};

/// Tools whose call rates an agent tracks individually.
pub const TOOL_SLOTS: usize = 6;
/// Concurrent sessions an agent tracks (least recently used replaced).
pub const SESSION_SLOTS: usize = 4;
/// Metric names an agent tracks individually.
pub const METRIC_SLOTS: usize = 4;
/// Recently seen values remembered per agent (first-seen at agent level).
pub const SEEN_SLOTS: usize = 32;
/// Recent producer event ids remembered per agent for de-duplication.
pub const DEDUP_SLOTS: usize = 16;
/// Open alert groups per agent.
pub const GROUP_SLOTS: usize = 8;
/// Components with sequential evidence accumulators: every component but the last (class change),
/// in `score::Comp` order.
pub const ACCUMULATED: usize = 7;
/// Bytes of the previous event's label kept for evidence.
pub const LABEL_BYTES: usize = 48;

/// Value fields the first-seen detector watches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum ValueField {
    /// Host of a `net` destination.
    Dest = 0,
    /// Directory of a `file` path.
    PathDir,
    /// Tool of a `tool_call`.
    Tool,
    /// Program of a `process` command.
    Program,
    /// `op`/`scope`/`principal` of an `auth` event.
    Auth,
    /// `model` of an `llm_call`.
    Model,
    /// Identifier-like values inside tool arguments (URLs, hosts, e-mail addresses, account numbers).
    Identifier,
    /// Port of a `net` destination (explicit, or implied by a URL scheme).
    Port,
    /// The first two components of a `file` path (`/etc/ssh`, `/workspace/repo`): a coarse view that
    /// settles even when file names and directories never do.
    PathRoot,
}

impl ValueField {
    pub const COUNT: usize = 9;
    pub const ALL: [ValueField; ValueField::COUNT] = [
        ValueField::Dest,
        ValueField::PathDir,
        ValueField::Tool,
        ValueField::Program,
        ValueField::Auth,
        ValueField::Model,
        ValueField::Identifier,
        ValueField::Port,
        ValueField::PathRoot,
    ];

    /// Values a class remembers for this field.
    pub fn capacity(self) -> usize {
        match self {
            ValueField::PathDir | ValueField::Identifier => 4096,
            _ => 1024,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ValueField::Dest => "destination",
            ValueField::PathDir => "directory",
            ValueField::Tool => "tool",
            ValueField::Program => "program",
            ValueField::Auth => "auth target",
            ValueField::Model => "model",
            ValueField::Identifier => "identifier",
            ValueField::Port => "port",
            ValueField::PathRoot => "path prefix",
        }
    }
}

/// A window count and the learned statistics of completed windows, 16 bytes.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
pub struct CountBucket {
    pub cur: u16,
    pub stats: RobustMoments,
}

/// A tool tracked for its own call rate.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
pub struct ToolSlot {
    /// Truncated tool hash; 0 = empty.
    pub key: u32,
    pub bucket: CountBucket,
}

/// One session's sequence state.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
pub struct SessionSlot {
    /// Truncated session hash; 0 = empty.
    pub key: u32,
    /// True for a real `session_id` (false: the agent's session-less stream).
    pub real: bool,
    /// Symbol of the previous step (0 = none yet).
    pub prev: u64,
    /// Steps so far.
    pub len: u32,
    /// Hash of the last tool call (tool and arguments), and how many times in a row it repeated.
    pub last_call: u32,
    pub repeats: u32,
    /// Processing tick of the last step (for least-recently-used replacement).
    pub tick: u64,
}

/// A metric name tracked for this agent.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
pub struct MetricSlot {
    pub key: u32,
    pub moments: RobustMoments,
}

/// A decayed sum on event time.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
pub struct DecayedSum {
    pub value: f32,
    pub ts_ms: i64,
}

impl DecayedSum {
    /// The value decayed to `ts_ms` (never backwards).
    pub fn at(&self, ts_ms: i64, half_life_ms: i64) -> f64 {
        if ts_ms <= self.ts_ms {
            return self.value as f64;
        }
        self.value as f64 * (-((ts_ms - self.ts_ms) as f64) / half_life_ms as f64 * std::f64::consts::LN_2).exp()
    }

    pub fn add(&mut self, w: f64, ts_ms: i64, half_life_ms: i64) {
        let v = self.at(ts_ms, half_life_ms) + w;
        self.value = v as f32;
        self.ts_ms = self.ts_ms.max(ts_ms);
    }
}

/// A short inline string (the previous event's tool, destination or path), truncated on a char boundary.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct Label {
    len: u8,
    #[serde(with = "vigil_models::arrays")]
    bytes: [u8; LABEL_BYTES],
}

impl Default for Label {
    fn default() -> Self {
        Label { len: 0, bytes: [0; LABEL_BYTES] }
    }
}

impl Label {
    pub fn new(s: &str) -> Label {
        let mut end = s.len().min(LABEL_BYTES);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        let mut l = Label { len: end as u8, bytes: [0; LABEL_BYTES] };
        l.bytes[..end].copy_from_slice(&s.as_bytes()[..end]);
        l
    }

    pub fn as_str(&self) -> &str {
        // Built from a &str cut at a char boundary.
        std::str::from_utf8(&self.bytes[..self.len as usize]).unwrap_or("")
    }
}

/// What the evidence of a later alert needs to know about the previous event.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
pub struct PrevEvent {
    pub valid: bool,
    pub ts_ms: i64,
    pub kind: u8,
    /// Which object field the label holds (index into `OBJECT_FIELDS`).
    pub object: u8,
    pub label: Label,
    pub position: Position,
    /// 0 ok, 1 denied, 2 error.
    pub outcome: u8,
    pub privileged: bool,
}

/// Everything vigil remembers about one agent (its class is referenced by hash).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AgentState {
    /// Hash of the agent's class name.
    pub class_hash: u64,
    /// Newest event time seen.
    pub newest_ts: i64,
    /// Time and count of the latest run of events sharing one `ts` (alert id ordinals).
    pub same_ts: i64,
    pub same_ts_count: u32,
    /// Events processed (saturating).
    pub events: u32,
    /// Least-recently-active list links (indices into the shard's agent slab).
    pub lru_prev: u32,
    pub lru_next: u32,

    /// Current rate window index (`ts / window`).
    pub window: i64,
    /// Highest fused score in the current window (anomalous windows teach less).
    pub window_max_score: f32,
    pub kinds: [CountBucket; Kind::COUNT],
    pub tools: [ToolSlot; TOOL_SLOTS],

    pub tokens: RobustMoments,
    pub latency: RobustMoments,
    pub bytes_out: RobustMoments,
    pub metrics: [MetricSlot; METRIC_SLOTS],

    pub sessions: [SessionSlot; SESSION_SLOTS],

    pub escalation: DecayedSum,

    pub seen: [u32; SEEN_SLOTS],
    pub seen_hand: u8,
    pub novelty: [NoveltyRate; ValueField::COUNT],
    /// Sequential evidence per component (all but class change).
    pub acc: EvidenceSet<ACCUMULATED>,

    pub recent_ids: [u64; DEDUP_SLOTS],
    pub recent_ids_hand: u8,

    /// Open alert groups: (group key, event time the group opened).
    pub groups: [(u64, i64); GROUP_SLOTS],
    pub last_kill_ts: i64,
    pub last_contain_ts: i64,

    pub prev: PrevEvent,
    /// Windows and sequences of stateful rules (empty: 8 bytes).
    pub rules: vigil_rules::RuleState,
    /// The current feature window of the learned models (allocated only when models are loaded).
    pub features: Option<Box<crate::score::model::FeatureWindow>>,
}

impl AgentState {
    pub fn new(class_hash: u64) -> AgentState {
        AgentState {
            class_hash,
            newest_ts: i64::MIN,
            same_ts: i64::MIN,
            same_ts_count: 0,
            events: 0,
            lru_prev: u32::MAX,
            lru_next: u32::MAX,
            window: i64::MIN,
            window_max_score: 0.0,
            kinds: Default::default(),
            tools: Default::default(),
            tokens: Default::default(),
            latency: Default::default(),
            bytes_out: Default::default(),
            metrics: Default::default(),
            sessions: Default::default(),
            escalation: Default::default(),
            seen: [0; SEEN_SLOTS],
            seen_hand: 0,
            novelty: [NoveltyRate::default(); ValueField::COUNT],
            acc: Default::default(),
            recent_ids: [0; DEDUP_SLOTS],
            recent_ids_hand: 0,
            groups: [(0, i64::MIN); GROUP_SLOTS],
            last_kill_ts: i64::MIN,
            last_contain_ts: i64::MIN,
            prev: PrevEvent::default(),
            rules: Default::default(),
            features: None,
        }
    }

    /// Whether the agent has seen the value fingerprint `fp`.
    pub fn has_seen(&self, fp: u32) -> bool {
        fp != 0 && self.seen.contains(&fp)
    }

    /// Remembers a value fingerprint (round-robin replacement).
    pub fn remember(&mut self, fp: u32) {
        if fp == 0 || self.has_seen(fp) {
            return;
        }
        self.seen[self.seen_hand as usize % SEEN_SLOTS] = fp;
        self.seen_hand = ((self.seen_hand as usize + 1) % SEEN_SLOTS) as u8;
    }

    /// Records a producer event id; false when it was already among the recent ones.
    pub fn record_id(&mut self, h: u64) -> bool {
        let h = h.max(1);
        if self.recent_ids.contains(&h) {
            return false;
        }
        self.recent_ids[self.recent_ids_hand as usize % DEDUP_SLOTS] = h;
        self.recent_ids_hand = ((self.recent_ids_hand as usize + 1) % DEDUP_SLOTS) as u8;
        true
    }
}

/// Number of entropy calibrators per class: outbound text, inbound text, conversation.
pub const TEXT_KINDS: usize = 3;

/// Calibrator slot of an event's text: 0 outbound (tool arguments, network and file-write payloads,
/// commands), 1 inbound (tool results, file reads), 2 conversation (`message` content).
pub fn text_slot(kind: Kind, op: Option<&str>) -> Option<usize> {
    match kind {
        Kind::ToolCall | Kind::Net | Kind::Process => Some(0),
        Kind::File if op == Some("read") => Some(1),
        Kind::File => Some(0),
        Kind::ToolResult => Some(1),
        Kind::Message => Some(2),
        _ => None,
    }
}

/// A calibrator of the entropy statistic `log2(1 + random bytes)`: 0..20 (a MiB), and one e-fold of
/// probability per doubling of random bytes beyond anything seen, at least.
pub fn entropy_calibrator() -> TailCalibrator {
    TailCalibrator::new(0.0, 20.0, 2.0)
}

/// The shared baselines of one agent class within a shard.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ClassState {
    pub name: Box<str>,
    pub hash: u64,
    /// Agents of this class currently tracked in the shard.
    pub agents: u32,
    /// Events of this class processed (decides warm-up).
    pub events: u64,

    pub rate_kinds: [RobustMoments; Kind::COUNT],
    pub rate_tools: BoundedMap<RobustMoments>,
    /// Empirical distributions of `ln(1 + x)` (tails calibrated, not assumed).
    pub tokens: TailCalibrator,
    pub latency: TailCalibrator,
    pub bytes_out: TailCalibrator,
    /// Sign-preserving log values per metric name.
    pub metrics: BoundedMap<TailCalibrator>,
    pub transitions: TransitionModel,
    pub surprise: TailCalibrator,
    pub session_len: TailCalibrator,
    pub entropy: [TailCalibrator; TEXT_KINDS],
    /// Finer text calibration per (tool or destination host, direction).
    pub entropy_by: BoundedMap<TailCalibrator>,
    /// Values seen per field, with Good–Turing novelty.
    pub vocab: [Vocabulary; ValueField::COUNT],
    pub escalation: RobustMoments,
    /// The null law of evidence jumps, per accumulated component.
    pub jumps: [JumpLaw; ACCUMULATED],
    /// Consecutive identical tool calls (same tool and arguments) within a session.
    pub repeats: TailCalibrator,
}

impl ClassState {
    pub fn new(name: &str, hash: u64) -> ClassState {
        ClassState {
            name: name.into(),
            hash,
            agents: 0,
            events: 0,
            rate_kinds: Default::default(),
            rate_tools: BoundedMap::new(256),
            tokens: TailCalibrator::new(0.0, 24.0, 1.0),
            latency: TailCalibrator::new(0.0, 24.0, 1.0),
            bytes_out: TailCalibrator::new(0.0, 24.0, 1.0),
            metrics: BoundedMap::new(64),
            transitions: TransitionModel::new(4096, 1024),
            surprise: TailCalibrator::new(0.0, 24.0, 1.0),
            session_len: TailCalibrator::new(0.0, 12.0, 0.5),
            entropy: std::array::from_fn(|_| entropy_calibrator()),
            entropy_by: BoundedMap::new(128),
            vocab: ValueField::ALL.map(|f| Vocabulary::new(f.capacity())),
            escalation: Default::default(),
            jumps: [JumpLaw::default(); ACCUMULATED],
            repeats: TailCalibrator::new(0.0, 48.0, 1.0),
        }
    }
}

impl ClassState {
    /// Brings the calibrators' cached sums up to date ([`TailCalibrator::refresh`]); only those that
    /// learned since do any work.
    pub fn refresh(&mut self) {
        let single = [
            &mut self.tokens,
            &mut self.latency,
            &mut self.bytes_out,
            &mut self.surprise,
            &mut self.session_len,
            &mut self.repeats,
        ];
        for c in single
            .into_iter()
            .chain(self.entropy.iter_mut())
            .chain(self.metrics.values_mut())
            .chain(self.entropy_by.values_mut())
        {
            c.refresh();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_state_fits_its_budget() {
        let size = std::mem::size_of::<AgentState>();
        assert!(size <= 1536, "AgentState is {size} bytes");
    }

    #[test]
    fn dedup_remembers_a_bounded_window() {
        let mut a = AgentState::new(0);
        assert!(a.record_id(5));
        assert!(!a.record_id(5));
        for i in 100..100 + DEDUP_SLOTS as u64 {
            assert!(a.record_id(i));
        }
        assert!(a.record_id(5), "forgotten after the window");
    }

    #[test]
    fn labels_truncate_on_char_boundaries() {
        let s = "é".repeat(40);
        let l = Label::new(&s);
        assert!(l.as_str().len() <= LABEL_BYTES);
        assert!(s.starts_with(l.as_str()));
    }
}
