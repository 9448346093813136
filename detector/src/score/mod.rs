//! The statistical components: each maps the parts of an event it understands onto `vigil-models`
//! statistics, answers with a p-value, and learns afterwards.
//!
//! Every component has the same shape: `score(..)` reads agent and class state and fills its entry of
//! the [`Card`] (p-value, whether it applies, whether its baseline is warm, and the numbers an
//! explanation needs), and `learn(..)` updates state with the weight decided after fusion (reduced for
//! anomalous events). Scoring never mutates; learning never decides. `advance(..)` functions move
//! event time forward (rolling windows) before scoring.

pub mod entropy;
pub mod escalation;
pub mod evidence;
pub mod model;
pub mod novelty;
pub mod numeric;
pub mod rate;
pub mod sequence;

use crate::classes::{ClassLog, ClassOp};
use crate::config::EngineConfig;

/// Where a component sends what it teaches the event's class (applied at the next barrier).
pub struct ClassSink<'a> {
    pub hash: u64,
    pub log: &'a mut ClassLog,
}

impl ClassSink<'_> {
    #[inline]
    pub fn push(&mut self, op: ClassOp) {
        self.log.push(self.hash, op);
    }
}

/// The statistical components, in the fixed order used for output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Comp {
    Rate = 0,
    Tokens,
    Sequence,
    Entropy,
    Escalation,
    Metric,
    FirstSeen,
    ClassChange,
    /// A learned model's score of the agent's last feature window (`model:window`; only with models).
    Model,
}

impl Comp {
    pub const COUNT: usize = 9;
    pub const ALL: [Comp; Comp::COUNT] = [
        Comp::Rate,
        Comp::Tokens,
        Comp::Sequence,
        Comp::Entropy,
        Comp::Escalation,
        Comp::Metric,
        Comp::FirstSeen,
        Comp::ClassChange,
        Comp::Model,
    ];

    /// The name used as `detector` and in `components`.
    pub fn name(self) -> &'static str {
        match self {
            Comp::Rate => "rate",
            Comp::Tokens => "tokens",
            Comp::Sequence => "sequence",
            Comp::Entropy => "entropy",
            Comp::Escalation => "escalation",
            Comp::Metric => "metric",
            Comp::FirstSeen => "first_seen",
            Comp::ClassChange => "class_change",
            Comp::Model => "model:window",
        }
    }

    /// The name of the component's score in rule conditions (`score.<name>`).
    pub fn rule_name(self) -> &'static str {
        match self {
            Comp::Model => "model",
            c => c.name(),
        }
    }

    /// Whether the configuration enables this component.
    pub fn enabled(self, cfg: &EngineConfig) -> bool {
        let d = &cfg.detectors;
        match self {
            Comp::Rate => d.rate,
            Comp::Tokens => d.tokens,
            Comp::Sequence => d.sequence,
            Comp::Entropy => d.entropy,
            Comp::Escalation => d.escalation,
            Comp::Metric => d.metric,
            Comp::FirstSeen => d.first_seen,
            Comp::ClassChange => d.class_change,
            // On when a model set is loaded (see `score::model`).
            Comp::Model => true,
        }
    }
}

/// One component's verdict on one event.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CompScore {
    /// p-value under the learned baseline (1 = no evidence).
    pub p: f64,
    /// The component has something to say about this event.
    pub applicable: bool,
    /// Its baseline is past warm-up, so it may raise alerts.
    pub warm: bool,
}

impl Default for CompScore {
    fn default() -> Self {
        CompScore { p: 1.0, applicable: false, warm: false }
    }
}

impl CompScore {
    pub fn set(&mut self, p: f64, warm: bool) {
        self.p = vigil_models::clamp_p(p);
        self.applicable = true;
        self.warm = warm;
    }
}

/// Where a baseline came from, for explanations.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Basis {
    #[default]
    None,
    Agent,
    Class,
    /// Both the agent's own and its class's baselines (the larger p-value counts).
    Both,
    /// A prior: neither baseline is warm yet.
    Prior,
}

impl Basis {
    pub fn describe(self) -> &'static str {
        match self {
            Basis::None | Basis::Prior => "prior",
            Basis::Agent => "this agent",
            Basis::Class => "its class",
            Basis::Both => "this agent and its class",
        }
    }
}

/// Per-event scratch: every component's verdict and the numbers behind it. Reused across events.
#[derive(Clone, Debug, Default)]
pub struct Card {
    pub comps: [CompScore; Comp::COUNT],
    pub rate: rate::Detail,
    pub tokens: numeric::Detail,
    pub metric: numeric::Detail,
    pub sequence: sequence::Detail,
    pub entropy: entropy::Detail,
    pub escalation: escalation::Detail,
    pub novelty: novelty::Detail,
    pub model: model::Detail,
    /// Accumulated evidence per component (the first [`crate::state::ACCUMULATED`] components).
    pub acc: [evidence::Accumulated; Comp::COUNT],
    /// Decay factor of the agent's evidence from its clock to this event, as the scorer computed it
    /// (reused when learning; `None` until the scorer ran on this card).
    pub acc_factor: Option<f64>,
}

impl Card {
    pub fn reset(&mut self) {
        self.comps = [CompScore::default(); Comp::COUNT];
        self.novelty.values.clear();
        self.acc_factor = None;
    }

    #[inline]
    pub fn get(&self, c: Comp) -> &CompScore {
        &self.comps[c as usize]
    }

    #[inline]
    pub fn get_mut(&mut self, c: Comp) -> &mut CompScore {
        &mut self.comps[c as usize]
    }
}

/// Event-time constants derived from the configuration, and per-event flags.
#[derive(Clone, Copy, Debug)]
pub struct Ctx {
    pub window_ms: i64,
    pub escalation_half_life_ms: i64,
    pub evidence_half_life_ms: i64,
    /// Smallest window count that can be a rate spike.
    pub rate_min_count: u32,
    /// The event is late: scored against current state, not learned from.
    pub late: bool,
    /// Shard-local processing counter (least-recently-used bookkeeping).
    pub tick: u64,
    /// Weight with which an observation a baseline itself found anomalous teaches that baseline.
    pub anomalous_weight: f64,
}

impl Ctx {
    pub fn new(cfg: &EngineConfig) -> Ctx {
        let d = &cfg.detectors;
        Ctx {
            window_ms: d.rate_window_secs as i64 * 1000,
            escalation_half_life_ms: d.escalation_half_life_secs as i64 * 1000,
            evidence_half_life_ms: d.evidence_half_life_secs as i64 * 1000,
            rate_min_count: d.rate_min_count,
            late: false,
            tick: 0,
            anomalous_weight: d.anomalous_learning_weight,
        }
    }
}

/// Combines the p-values of several looks at one component (Bonferroni: `k · min p`).
#[inline]
pub(crate) fn min_p(ps: &[f64]) -> f64 {
    let k = ps.iter().filter(|p| **p < 1.0).count().max(1);
    let m = ps.iter().copied().fold(1.0f64, f64::min);
    (m * k as f64).min(1.0)
}

/// Formats a p-value for explanations (`3.2e-9`, `0.014`).
pub fn fmt_p(p: f64) -> String {
    if p >= 0.01 {
        format!("{p:.3}")
    } else {
        format!("{p:.1e}")
    }
}
