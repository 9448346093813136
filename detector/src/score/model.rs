//! Learned models in the engine: per-agent feature windows, scored by trained models as component
//! `model:window`.
//!
//! Every per-feature component judges one axis. An attack that stays a little above normal on many
//! axes at once — somewhat more egress, a slightly different tool mix, a few more tokens, payloads a
//! bit more random than usual — passes each of them. So each agent also summarises its activity in
//! fixed windows of event time ([`WINDOW_SECS`]) as one vector of [`FEATURES`]: counts per kind,
//! distinct tools and destinations, tokens, bytes out, payload entropy, denied / error / privileged
//! shares, sequence surprise, session length, and how much per-event evidence each component saw. When a
//! window closes (the agent's first event in a later window), the [`ModelSet`] model of the agent's
//! class scores the vector; its calibrated p-value joins fusion on that event as component
//! `model:window`, and the explanation names the features that deviate most.
//!
//! The feature definition is versioned ([`FEATURE_VERSION`]): change a feature, its order, its
//! transform or the window, and bump it — artifacts trained on another version are refused at load.
//!
//! Without a model set nothing here runs: no state is allocated and output is unchanged. With one, the
//! per-agent window is a fixed-size struct (part of the agent state, and so of snapshots). Late events
//! neither join nor close windows. Training (`vigil train`) runs the same code over normal runs with a
//! collecting model set ([`ModelSet::collector`]) and fits on the vectors it gathers, so training and
//! scoring can never disagree about what a feature means.

use super::{Card, Comp, Ctx};
use crate::event::{Event, Kind, Outcome};
use crate::hash::{hash_str, ns};
use crate::state::{AgentState, ClassState};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Arc;
use vigil_models::learned::{Artifact, ArtifactError, Scored, Scorer};

/// Version of the feature definition below.
pub const FEATURE_VERSION: u32 = 1;
/// Length of a feature window, seconds of event time.
pub const WINDOW_SECS: i64 = 300;
const WINDOW_MS: i64 = WINDOW_SECS * 1000;
/// The name of the window model (component `model:window`, artifacts `window-<class>.json`).
pub const WINDOW_MODEL: &str = "window";
/// Distinct tools and destinations counted per window (beyond it the count saturates).
const DISTINCT: usize = 16;
/// Kinds counted per window: every kind but `Other`.
const KINDS: usize = Kind::COUNT - 1;
/// Events of a class (as of the last barrier) before its windows may raise alerts and teach
/// training: the class baselines the evidence features rest on must have settled.
pub const CLASS_WARM_EVENTS: u64 = 2000;
/// A single window's p-value pays this factor; two unusual windows in a row pay none (see [`observe`]).
pub const SINGLE_WINDOW_FACTOR: f64 = 10.0;
/// A per-event p-value adds at most this many decimal orders of magnitude to an evidence feature.
const MAX_EVIDENCE: f64 = 10.0;

/// How a feature is transformed from what it measures (for explanations).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transform {
    /// `ln(1 + x)` of a count or an amount.
    Log1p,
    /// The value itself.
    Linear,
}

/// The features of a window vector, in order: name, transform, what it measures.
pub const FEATURE_TABLE: [(&str, Transform, &str); N_FEATURES] = [
    ("llm_calls", Transform::Log1p, "LLM calls"),
    ("tool_calls", Transform::Log1p, "tool calls"),
    ("tool_results", Transform::Log1p, "tool results"),
    ("net_events", Transform::Log1p, "network events"),
    ("file_events", Transform::Log1p, "file events"),
    ("process_events", Transform::Log1p, "process events"),
    ("auth_events", Transform::Log1p, "auth events"),
    ("messages", Transform::Log1p, "messages"),
    ("metrics", Transform::Log1p, "metric events"),
    ("distinct_tools", Transform::Log1p, "distinct tools"),
    ("distinct_dests", Transform::Log1p, "distinct destination hosts"),
    ("tokens_total", Transform::Log1p, "LLM tokens"),
    ("tokens_per_call", Transform::Linear, "mean ln(1 + tokens) per LLM call"),
    ("bytes_out_total", Transform::Log1p, "bytes sent"),
    ("entropy_mean", Transform::Linear, "mean log2(1 + random-looking bytes) per text"),
    ("entropy_max", Transform::Linear, "largest log2(1 + random-looking bytes) of a text"),
    ("random_bytes_total", Transform::Log1p, "random-looking bytes in texts"),
    ("denied_ratio", Transform::Linear, "share of denied events"),
    ("error_ratio", Transform::Linear, "share of failed events"),
    ("privileged_ratio", Transform::Linear, "share of privileged events"),
    ("unusual_steps", Transform::Log1p, "steps with a calibrated p-value below 0.01"),
    ("step_evidence_max", Transform::Linear, "largest -log10 p of a step"),
    ("session_len_max", Transform::Log1p, "longest session so far (steps)"),
    ("entropy_evidence", Transform::Log1p, "entropy evidence (sum of -log10 p)"),
    ("novelty_evidence", Transform::Log1p, "first-seen evidence (sum of -log10 p)"),
    ("sequence_evidence", Transform::Log1p, "sequence evidence (sum of -log10 p)"),
    ("numeric_evidence", Transform::Log1p, "tokens / bytes / latency evidence (sum of -log10 p)"),
    ("active_secs", Transform::Log1p, "seconds from first to last event"),
];
pub const N_FEATURES: usize = 28;
// A scorer holds at most MAX_FEATURES features (fixed-size scratch on the hot path).
const _: () = assert!(N_FEATURES <= vigil_models::learned::MAX_FEATURES);

/// Features of which only values above what the model expects count (all of them: the attacks this
/// model is for add activity — more egress, more random payloads, more surprise — and an agent doing
/// less than usual is not a security event).
pub fn one_sided_features() -> Vec<usize> {
    (0..N_FEATURES).collect()
}

/// The feature names, in vector order.
pub fn feature_names() -> [&'static str; N_FEATURES] {
    FEATURE_TABLE.map(|f| f.0)
}

/// One agent's current feature window: fixed size, about 200 bytes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FeatureWindow {
    /// Window index (`ts / WINDOW_MS`).
    pub window: i64,
    pub events: u32,
    pub kinds: [u32; KINDS],
    /// Truncated hashes of the distinct tools and destination hosts (0 = empty), and their counts.
    pub tools: [u32; DISTINCT],
    pub dests: [u32; DISTINCT],
    pub n_tools: u8,
    pub n_dests: u8,
    pub tokens: f64,
    pub log_tokens: f32,
    pub bytes_out: f64,
    pub texts: u32,
    pub entropy_sum: f32,
    pub entropy_max: f32,
    pub random_bytes: f64,
    pub denied: u32,
    pub errors: u32,
    pub privileged: u32,
    pub unusual_steps: u32,
    pub step_max: f32,
    pub session_len_max: u32,
    pub evidence: [f32; 4],
    pub first_ts: i64,
    pub last_ts: i64,
    /// The model's p-value of the agent's window directly before this one (1: none, or not scored).
    pub prev_p: f64,
}

impl FeatureWindow {
    fn new(window: i64) -> FeatureWindow {
        FeatureWindow {
            window,
            events: 0,
            kinds: [0; KINDS],
            tools: [0; DISTINCT],
            dests: [0; DISTINCT],
            n_tools: 0,
            n_dests: 0,
            tokens: 0.0,
            log_tokens: 0.0,
            bytes_out: 0.0,
            texts: 0,
            entropy_sum: 0.0,
            entropy_max: 0.0,
            random_bytes: 0.0,
            denied: 0,
            errors: 0,
            privileged: 0,
            unusual_steps: 0,
            step_max: 0.0,
            session_len_max: 0,
            evidence: [0.0; 4],
            first_ts: i64::MAX,
            last_ts: i64::MIN,
            prev_p: 1.0,
        }
    }

    /// Adds one event, with what the components found about it.
    fn add(&mut self, ev: &Event, ts: i64, card: &Card) {
        self.events += 1;
        self.first_ts = self.first_ts.min(ts);
        self.last_ts = self.last_ts.max(ts);
        if let Some(k) = self.kinds.get_mut(ev.kind.index()) {
            *k += 1;
        }
        if let (Kind::ToolCall, Some(t)) = (ev.kind, ev.tool.as_deref()) {
            insert(&mut self.tools, &mut self.n_tools, hash_str(ns::SYMBOL, t));
        }
        if let Some(h) = ev.dest_host() {
            insert(&mut self.dests, &mut self.n_dests, hash_str(ns::VALUE, h));
        }
        if let (Kind::LlmCall, Some(t)) = (ev.kind, ev.tokens_total()) {
            self.tokens += t as f64;
            self.log_tokens += (t as f32).ln_1p();
        }
        if let Some(b) = ev.bytes_out {
            self.bytes_out += b as f64;
        }
        match ev.outcome {
            Outcome::Ok => {}
            Outcome::Denied => self.denied += 1,
            Outcome::Error => self.errors += 1,
        }
        self.privileged += ev.privileged as u32;
        let ev_p = |p: f64| (-p.max(1e-300).log10()).clamp(0.0, MAX_EVIDENCE) as f32;
        if card.get(Comp::Entropy).applicable {
            let e = &card.entropy;
            self.texts += 1;
            self.entropy_sum += e.stat as f32;
            self.entropy_max = self.entropy_max.max(e.stat as f32);
            self.random_bytes += e.random_bytes as f64;
            self.evidence[0] += ev_p(e.p_single);
        }
        if card.get(Comp::FirstSeen).applicable {
            self.evidence[1] += ev_p(card.novelty.p_single);
        }
        if card.get(Comp::Sequence).applicable {
            let s = &card.sequence;
            self.unusual_steps += (s.p_step < 0.01) as u32;
            self.step_max = self.step_max.max(ev_p(s.p_step));
            self.session_len_max = self.session_len_max.max(s.session_len);
            self.evidence[2] += ev_p(s.p_step);
        }
        for c in [Comp::Tokens, Comp::Metric] {
            let s = card.get(c);
            if s.applicable {
                self.evidence[3] += ev_p(s.p);
            }
        }
    }

    /// The window's feature vector (see [`FEATURE_TABLE`]).
    pub fn vector(&self) -> [f64; N_FEATURES] {
        let mut x = [0.0; N_FEATURES];
        let ln1p = |v: f64| v.max(0.0).ln_1p();
        for (i, &k) in self.kinds.iter().enumerate() {
            x[i] = ln1p(k as f64);
        }
        let n = self.events.max(1) as f64;
        let llm = self.kinds[Kind::LlmCall.index()];
        x[9] = ln1p(self.n_tools as f64);
        x[10] = ln1p(self.n_dests as f64);
        x[11] = ln1p(self.tokens);
        x[12] = if llm > 0 { self.log_tokens as f64 / llm as f64 } else { 0.0 };
        x[13] = ln1p(self.bytes_out);
        x[14] = if self.texts > 0 { self.entropy_sum as f64 / self.texts as f64 } else { 0.0 };
        x[15] = self.entropy_max as f64;
        x[16] = ln1p(self.random_bytes);
        x[17] = self.denied as f64 / n;
        x[18] = self.errors as f64 / n;
        x[19] = self.privileged as f64 / n;
        x[20] = ln1p(self.unusual_steps as f64);
        x[21] = self.step_max as f64;
        x[22] = ln1p(self.session_len_max as f64);
        for (i, e) in self.evidence.iter().enumerate() {
            x[23 + i] = ln1p(*e as f64);
        }
        x[27] = if self.events > 0 { ln1p((self.last_ts - self.first_ts) as f64 / 1000.0) } else { 0.0 };
        x
    }
}

/// Adds a hash to a small set (saturating at its capacity).
fn insert(set: &mut [u32; DISTINCT], n: &mut u8, h: u64) {
    let h = ((h >> 32) as u32).max(1);
    if set[..*n as usize].contains(&h) || *n as usize >= DISTINCT {
        return;
    }
    set[*n as usize] = h;
    *n += 1;
}

/// One class's model.
#[derive(Clone, Debug)]
struct ClassModel {
    class_hash: u64,
    class: String,
    scorer: Scorer,
    /// Windows it was trained on (explanations).
    trained_on: u64,
}

/// The learned models in use: at most one window model per agent class, loaded from artifacts.
/// Swapped into a running engine like a rule pack ([`crate::Engine::set_models`]).
#[derive(Clone, Debug, Default)]
pub struct ModelSet {
    models: Vec<ClassModel>,
    /// Gather every closed window's vector (training), instead of or besides scoring.
    collect: bool,
}

impl ModelSet {
    /// A model set from checked artifacts (see [`Artifact::read_dir`]); refuses artifacts of unknown
    /// model names and duplicate classes.
    pub fn from_artifacts(artifacts: Vec<Artifact>) -> Result<ModelSet, ArtifactError> {
        let mut models: Vec<ClassModel> = Vec::with_capacity(artifacts.len());
        for a in artifacts {
            if a.name != WINDOW_MODEL {
                return Err(ArtifactError::Invalid {
                    class: a.class,
                    message: format!("unknown model name `{}` (this build scores `{WINDOW_MODEL}`)", a.name),
                });
            }
            let class_hash = hash_str(ns::CLASS, &a.class);
            if models.iter().any(|m| m.class_hash == class_hash) {
                return Err(ArtifactError::Duplicate { path: Default::default(), name: a.name, class: a.class });
            }
            let scorer = Scorer::new(&a)?;
            models.push(ClassModel { class_hash, class: a.class, scorer, trained_on: a.training.train_vectors });
        }
        models.sort_by_key(|m| m.class_hash);
        Ok(ModelSet { models, collect: false })
    }

    /// Every artifact of a models directory (`*.json`, in file-name order).
    pub fn load_dir(dir: &Path) -> Result<ModelSet, ArtifactError> {
        ModelSet::from_artifacts(Artifact::read_dir(dir, FEATURE_VERSION, &feature_names())?)
    }

    /// A model set that scores nothing and gathers every closed window's vector (for training).
    pub fn collector() -> ModelSet {
        ModelSet { models: Vec::new(), collect: true }
    }

    /// The classes with a model, in a fixed order.
    pub fn classes(&self) -> Vec<&str> {
        self.models.iter().map(|m| m.class.as_str()).collect()
    }

    pub fn is_empty(&self) -> bool {
        self.models.is_empty()
    }

    fn get(&self, class_hash: u64) -> Option<&ClassModel> {
        self.models.iter().find(|m| m.class_hash == class_hash)
    }
}

/// A closed window's vector, gathered for training.
#[derive(Clone, Debug, PartialEq)]
pub struct FeatureRow {
    pub class_hash: u64,
    /// Hash of the agent id (training holds out whole agents).
    pub agent_hash: u64,
    pub x: [f64; N_FEATURES],
}

/// A shard's model runtime: the model set in use and, when training, the gathered rows.
#[derive(Clone, Debug, Default)]
pub struct ShardModels {
    set: Option<Arc<ModelSet>>,
    rows: Vec<FeatureRow>,
}

impl ShardModels {
    pub fn set(&mut self, set: Option<Arc<ModelSet>>) {
        self.set = set;
    }

    /// The rows gathered so far (a collecting model set), leaving none.
    pub fn take_rows(&mut self) -> Vec<FeatureRow> {
        std::mem::take(&mut self.rows)
    }
}

/// What the model component found, for explanations.
#[derive(Clone, Debug, Default)]
pub struct Detail {
    pub scored: Scored,
    /// The p-value of the agent's previous window, and whether the pair of windows decided.
    pub prev_p: f64,
    pub pair: bool,
    /// Start of the window (epoch ms) and its events.
    pub window_start_ms: i64,
    pub events: u32,
    pub trained_on: u64,
}

/// The model step of one event (after every other component scored it, before fusion): closes the
/// agent's window when the event is in a later one — scoring it with the class's model into
/// `card` — and adds the event to the agent's current window.
///
/// Low-and-slow behaviour shows as *several* somewhat unusual windows in a row rather than one
/// extreme one, and an isolated odd window is what normal agents produce now and then. So the
/// component's p-value is `min(f · p, max(p, p_prev)²)`: a single window pays a factor `f`
/// ([`SINGLE_WINDOW_FACTOR`]), while two in a row — `p_prev` is the verdict on the window directly
/// before, 1 when the agent was silent in it — are judged together (under independence
/// `P(max(p, p_prev) <= t) = t²`).
///
/// A window is judged when the agent's next event falls in a later window. When that event is not in
/// the very next window (the agent fell silent for a whole window or more), the verdict is *stale*:
/// it would raise its alert on an unrelated later event, often in another session and hours on. A
/// stale verdict is still scored (it shows in `--scores`), but may not raise an alert.
pub fn observe(
    m: &mut ShardModels,
    ctx: &Ctx,
    ts: i64,
    agent: &mut AgentState,
    class: &ClassState,
    ev: &Event,
    card: &mut Card,
) {
    let Some(set) = m.set.as_deref() else { return };
    if ctx.late {
        return;
    }
    let w = ts.div_euclid(WINDOW_MS);
    let fw = agent.features.get_or_insert_with(|| Box::new(FeatureWindow::new(w)));
    if w > fw.window {
        // The event is in the window right after the closing one (see above).
        let next = w == fw.window + 1;
        if fw.events > 0 {
            let x = fw.vector();
            // Warm-up suppresses alerts, not scoring; training learns only what warm windows look like.
            let warm = class.events >= CLASS_WARM_EVENTS;
            if set.collect && warm {
                m.rows.push(FeatureRow {
                    class_hash: agent.class_hash,
                    agent_hash: hash_str(ns::VALUE, &ev.agent_id),
                    x,
                });
            }
            let prev_p = fw.prev_p;
            if let Some(model) = set.get(agent.class_hash) {
                let scored = model.scorer.score(&x);
                let single = (scored.p * SINGLE_WINDOW_FACTOR).min(1.0);
                let pair = scored.p.max(prev_p).powi(2);
                card.get_mut(Comp::Model).set(single.min(pair), warm && next);
                fw.prev_p = scored.p;
                card.model = Detail {
                    scored,
                    prev_p,
                    pair: pair < single,
                    window_start_ms: fw.window * WINDOW_MS,
                    events: fw.events,
                    trained_on: model.trained_on,
                };
            }
        }
        let prev_p = if next { fw.prev_p } else { 1.0 };
        **fw = FeatureWindow::new(w);
        fw.prev_p = prev_p;
    }
    fw.add(ev, ts, card);
}

/// A feature's value as what it measures (`ln(1 + x)` undone).
pub fn display_value(feature: usize, v: f64) -> f64 {
    match FEATURE_TABLE.get(feature).map(|f| f.1) {
        Some(Transform::Log1p) => v.exp_m1(),
        _ => v,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::score::CompScore;

    #[test]
    fn the_feature_table_is_consistent() {
        let names = feature_names();
        let mut sorted = names.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), N_FEATURES, "feature names are unique");
        assert_eq!(FEATURE_TABLE[Kind::Metric.index()].0, "metrics", "kind counts come first, in kind order");
    }

    #[test]
    fn a_window_counts_what_it_saw() {
        let mut w = FeatureWindow::new(0);
        let mut card = Card::default();
        card.reset();
        let mut ev = Event::new(1_000, "a", Kind::ToolCall);
        ev.tool = Some("search".into());
        w.add(&ev, 1_000, &card);
        w.add(&ev, 4_000, &card);
        let mut net = Event::new(5_000, "a", Kind::Net);
        net.dest = Some("api.example.com:443".into());
        net.bytes_out = Some(999);
        net.outcome = Outcome::Denied;
        w.add(&net, 5_000, &card);
        let x = w.vector();
        assert_eq!(x[1], 2f64.ln_1p());
        assert_eq!(x[3], 1f64.ln_1p());
        assert_eq!(x[9], 1f64.ln_1p(), "one distinct tool");
        assert_eq!(x[10], 1f64.ln_1p(), "one destination");
        assert_eq!(x[13], 999f64.ln_1p());
        assert!((x[17] - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(x[27], 4f64.ln_1p());
        assert_eq!(display_value(13, x[13]).round(), 999.0);
    }

    /// A model of one class fitted on quiet windows: every feature a little above zero.
    fn quiet_model(class: &str) -> Arc<ModelSet> {
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        let mut uni = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 11) as f64 / (1u64 << 53) as f64
        };
        let rows: Vec<Vec<f64>> = (0..600).map(|_| (0..N_FEATURES).map(|_| uni()).collect()).collect();
        let groups: Vec<u64> = (0..600).map(|i| i % 40).collect();
        let names = feature_names();
        let mut o = vigil_models::learned::FitOptions::new(WINDOW_MODEL, class, FEATURE_VERSION, &names);
        o.one_sided = one_sided_features();
        let (a, _) = vigil_models::learned::fit(&rows, &groups, &o).expect("the quiet data fits");
        Arc::new(ModelSet::from_artifacts(vec![a]).expect("a fitted artifact loads"))
    }

    /// Feeds a busy window (window 10: many large uploads), then one event in window `close_in`;
    /// returns the model's verdict on that event and the agent's window afterwards.
    fn busy_window_closed_in(close_in: i64) -> (CompScore, FeatureWindow) {
        let mut m = ShardModels::default();
        m.set(Some(quiet_model("c")));
        let ctx = Ctx::new(&crate::config::EngineConfig::default());
        let class_hash = hash_str(ns::CLASS, "c");
        let mut class = ClassState::new("c", class_hash);
        class.events = CLASS_WARM_EVENTS;
        let mut agent = AgentState::new(class_hash);
        let mut card = Card::default();
        for i in 0..300 {
            let ts = 10 * WINDOW_MS + i * 500;
            let mut ev = Event::new(ts, "a", Kind::Net);
            ev.dest = Some(format!("host-{i}.example.com:443").into());
            ev.bytes_out = Some(50_000_000);
            card.reset();
            observe(&mut m, &ctx, ts, &mut agent, &class, &ev, &mut card);
            assert!(!card.get(Comp::Model).applicable, "the window is still open");
        }
        let ts = close_in * WINDOW_MS + 1_000;
        card.reset();
        observe(&mut m, &ctx, ts, &mut agent, &class, &Event::new(ts, "a", Kind::Message), &mut card);
        (*card.get(Comp::Model), (**agent.features.as_ref().expect("the agent has a window")).clone())
    }

    #[test]
    fn a_window_closed_by_the_next_window_may_alert() {
        let (verdict, next) = busy_window_closed_in(11);
        assert!(verdict.applicable && verdict.warm, "{verdict:?}");
        assert!(verdict.p < 1e-3, "a busy window is unusual for a quiet class: {verdict:?}");
        assert!(next.prev_p < 1e-3, "the next window pairs with it: {}", next.prev_p);
    }

    #[test]
    fn a_stale_window_is_scored_but_may_not_alert() {
        // The agent fell silent for two windows: the verdict would land on an unrelated event.
        let (verdict, next) = busy_window_closed_in(13);
        assert!(verdict.applicable && !verdict.warm, "{verdict:?}");
        assert!(verdict.p < 1e-3, "still scored: {verdict:?}");
        assert_eq!(next.prev_p, 1.0, "windows apart are not a pair");
    }

    #[test]
    fn distinct_sets_saturate() {
        let mut set = [0u32; DISTINCT];
        let mut n = 0u8;
        for i in 0..100u64 {
            insert(&mut set, &mut n, (i + 1) << 32);
            insert(&mut set, &mut n, (i + 1) << 32);
        }
        assert_eq!(n as usize, DISTINCT);
    }
}
