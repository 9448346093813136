//! Engine configuration: the `[engine]`, `[detectors]`, `[actions]` and evidence keys of the vigil
//! configuration file, with their defaults and validation.

use crate::alert::{Action, Severity};
use serde::Deserialize;
use thiserror::Error;

/// A configuration value vigil cannot run with (the engine's sections here, the live detector's
/// in `vigil-live`).
#[derive(Debug, Error, PartialEq)]
#[error("invalid configuration: `{key}` {problem}")]
pub struct ConfigError {
    /// The offending key, e.g. `engine.shards`.
    pub key: String,
    pub problem: String,
}

impl ConfigError {
    pub fn new(key: &str, problem: impl Into<String>) -> ConfigError {
        ConfigError { key: key.to_string(), problem: problem.into() }
    }
}

fn bad(key: &str, problem: impl Into<String>) -> ConfigError {
    ConfigError::new(key, problem)
}

/// `[engine]`: capacity, sharding, time and input limits.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct EngineSection {
    /// Tracked agents; beyond it the least recently active agent is evicted (it falls back to its
    /// class baseline when it returns). Split evenly over the shards.
    pub max_agents: usize,
    /// Logical shards: agents hash to shards, class baselines are kept per shard. A constant of the
    /// deployment, never derived from the number of threads, so output never depends on threads.
    pub shards: usize,
    /// Alert grouping and per-agent action cooldown, seconds of event time.
    pub cooldown_secs: u64,
    /// An event older than its agent's newest event by more than this is late (scored, counted, not
    /// learned from).
    pub allowed_lateness_secs: u64,
    /// Live mode only: events further ahead of the wall clock are rejected (`future_ts`).
    pub max_future_skew_secs: u64,
    /// Largest accepted event, bytes.
    pub max_event_bytes: usize,
    /// Deepest accepted JSON nesting, levels (the event object is level 1).
    pub max_depth: usize,
    /// Tracked agent classes; least recently active evicted beyond it.
    pub max_classes: usize,
    /// Class baselines are updated at a barrier after every this many events (input order); a constant
    /// of the deployment, like `shards`.
    pub class_sync_events: usize,
}

impl Default for EngineSection {
    fn default() -> Self {
        EngineSection {
            max_agents: 1_000_000,
            shards: 16,
            cooldown_secs: 300,
            allowed_lateness_secs: 5,
            max_future_skew_secs: 300,
            max_event_bytes: 1 << 20,
            max_depth: 64,
            max_classes: 16_384,
            class_sync_events: 4096,
        }
    }
}

/// `[detectors]`: which statistical components run and how they decide.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DetectorsSection {
    /// Fused score (`-log10(p) / 10`) at or above which an event raises an alert (0.6: p <= 1e-6).
    pub alert_score: f64,
    /// Event-time window of the call-rate detector, seconds.
    pub rate_window_secs: u64,
    /// Smallest count of events in one window that can be a rate spike, whatever the baseline (a
    /// handful of calls is never a runaway).
    pub rate_min_count: u32,
    /// Half-life of the escalation accumulator, seconds.
    pub escalation_half_life_secs: u64,
    /// Half-life of the sequential evidence accumulators (entropy, first-seen), seconds.
    pub evidence_half_life_secs: u64,
    /// Weight with which an event that scored anomalous teaches the baselines (0 = never).
    pub anomalous_learning_weight: f64,
    pub rate: bool,
    pub tokens: bool,
    pub sequence: bool,
    pub entropy: bool,
    pub escalation: bool,
    pub metric: bool,
    pub first_seen: bool,
    pub class_change: bool,
}

impl Default for DetectorsSection {
    fn default() -> Self {
        DetectorsSection {
            alert_score: 0.6,
            rate_window_secs: 60,
            rate_min_count: 8,
            escalation_half_life_secs: 600,
            evidence_half_life_secs: 900,
            anomalous_learning_weight: 0.25,
            rate: true,
            tokens: true,
            sequence: true,
            entropy: true,
            escalation: true,
            metric: true,
            first_seen: true,
            class_change: true,
        }
    }
}

/// `[actions]`: the containment action asked for at each severity (rules may ask for more).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ActionsSection {
    pub low: Action,
    pub medium: Action,
    pub high: Action,
    pub critical: Action,
    /// Blast-radius cap: most `kill` actions per minute of event time, fleet-wide (per engine).
    pub max_kills_per_minute: u32,
    /// Blast-radius cap: most share of a class's tracked agents under kill within the cooldown
    /// (the first kill in a class is always allowed).
    pub max_class_kill_share: f64,
}

impl Default for ActionsSection {
    fn default() -> Self {
        ActionsSection {
            low: Action::None,
            medium: Action::Notify,
            high: Action::Notify,
            critical: Action::Contain,
            max_kills_per_minute: 10,
            max_class_kill_share: 0.5,
        }
    }
}

impl ActionsSection {
    pub fn for_severity(&self, s: Severity) -> Action {
        match s {
            Severity::Low => self.low,
            Severity::Medium => self.medium,
            Severity::High => self.high,
            Severity::Critical => self.critical,
        }
    }
}

/// How payload text appears in alert evidence.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum PayloadEvidence {
    /// Length, entropy, SHA-256 and at most `evidence_prefix_chars` leading characters (default).
    #[default]
    Redacted,
    /// The payload text in full (for labs; never in production).
    Full,
    /// Length, entropy and SHA-256 only.
    None,
}

/// Evidence redaction (keys of `[output]`).
#[derive(Clone, Debug, PartialEq)]
pub struct EvidenceConfig {
    pub payload: PayloadEvidence,
    /// Leading characters of a payload shown in redacted evidence.
    pub prefix_chars: usize,
}

impl Default for EvidenceConfig {
    fn default() -> Self {
        EvidenceConfig { payload: PayloadEvidence::Redacted, prefix_chars: 16 }
    }
}

/// Everything the engine needs to run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EngineConfig {
    pub engine: EngineSection,
    pub detectors: DetectorsSection,
    pub actions: ActionsSection,
    pub evidence: EvidenceConfig,
}

impl EngineConfig {
    /// Checks every value; the error names the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let e = &self.engine;
        if e.shards == 0 || e.shards > 4096 {
            return Err(bad("engine.shards", "must be between 1 and 4096"));
        }
        if e.max_agents < e.shards {
            return Err(bad("engine.max_agents", "must be at least `engine.shards` (every shard tracks an agent)"));
        }
        if e.max_event_bytes < 64 {
            return Err(bad("engine.max_event_bytes", "must be at least 64"));
        }
        if e.max_depth < 2 {
            return Err(bad("engine.max_depth", "must be at least 2"));
        }
        if e.max_classes == 0 {
            return Err(bad("engine.max_classes", "must be at least 1"));
        }
        if e.class_sync_events == 0 {
            return Err(bad("engine.class_sync_events", "must be at least 1"));
        }
        let a = &self.actions;
        if a.max_kills_per_minute == 0 {
            return Err(bad("actions.max_kills_per_minute", "must be at least 1"));
        }
        if !(a.max_class_kill_share > 0.0 && a.max_class_kill_share <= 1.0) {
            return Err(bad("actions.max_class_kill_share", "must be in (0, 1]"));
        }
        let d = &self.detectors;
        if !(d.alert_score > 0.0 && d.alert_score <= 1.0) {
            return Err(bad("detectors.alert_score", "must be in (0, 1]"));
        }
        if d.rate_window_secs == 0 {
            return Err(bad("detectors.rate_window_secs", "must be at least 1"));
        }
        if d.escalation_half_life_secs == 0 {
            return Err(bad("detectors.escalation_half_life_secs", "must be at least 1"));
        }
        if d.evidence_half_life_secs == 0 {
            return Err(bad("detectors.evidence_half_life_secs", "must be at least 1"));
        }
        if !(0.0..=1.0).contains(&d.anomalous_learning_weight) {
            return Err(bad("detectors.anomalous_learning_weight", "must be in [0, 1]"));
        }
        Ok(())
    }

    /// Agents tracked per shard.
    /// Agents tracked by shard `i`: the cap split exactly over the shards, so that all of them
    /// together never track more than `max_agents`.
    pub fn agents_per_shard(&self, i: usize) -> usize {
        let (q, r) = (self.engine.max_agents / self.engine.shards, self.engine.max_agents % self.engine.shards);
        q + usize::from(i < r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_match_the_spec() {
        let c = EngineConfig::default();
        c.validate().unwrap();
        assert_eq!(c.engine.max_agents, 1_000_000);
        assert_eq!(c.engine.shards, 16);
        assert_eq!(c.engine.cooldown_secs, 300);
        assert_eq!(c.engine.allowed_lateness_secs, 5);
        assert_eq!(c.engine.max_future_skew_secs, 300);
        assert_eq!(c.engine.max_event_bytes, 1_048_576);
    }

    #[test]
    fn invalid_values_name_their_key() {
        let mut c = EngineConfig::default();
        c.engine.shards = 0;
        assert_eq!(c.validate().unwrap_err().key, "engine.shards");
        let mut c = EngineConfig::default();
        c.detectors.alert_score = 1.5;
        assert_eq!(c.validate().unwrap_err().key, "detectors.alert_score");
    }
}
