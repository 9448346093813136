//! Alerts (`spec/alerts.md`): the types, the deterministic id, and the JSON line.

use crate::json::{write_num, write_str, write_unit};
use crate::time::write_rfc3339_ms;
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// Alert severity, ordered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn name(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// Severity of a fused score at or above the alert threshold `alert_score`, by how many decades
    /// of p-value it clears the threshold: low within one decade, medium within 2.5, high beyond,
    /// critical at the top of the scale (p <= 1e-10).
    pub fn from_score(score: f64, alert_score: f64) -> Severity {
        let above = score - alert_score;
        if score >= 1.0 {
            Severity::Critical
        } else if above >= 0.25 {
            Severity::High
        } else if above >= 0.1 {
            Severity::Medium
        } else {
            Severity::Low
        }
    }
}

/// What the configuration asks containment hooks to do, ordered by strength.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    #[default]
    None,
    Notify,
    Contain,
    Kill,
}

impl Action {
    pub fn name(self) -> &'static str {
        match self {
            Action::None => "none",
            Action::Notify => "notify",
            Action::Contain => "contain",
            Action::Kill => "kill",
        }
    }
}

/// A payload as it appears in evidence: never the whole text by default.
#[derive(Clone, Debug, PartialEq)]
pub struct PayloadEvidence {
    /// Which field held it (`payload`, `args`, `content`, `cmd`).
    pub field: &'static str,
    pub len: usize,
    pub bits_per_byte: f64,
    /// Hex SHA-256 of the full text.
    pub sha256: String,
    /// Leading characters (empty when redaction removes them), or the full text when configured.
    pub prefix: String,
    /// True when `prefix` holds the whole payload.
    pub full: bool,
}

/// Where an event came from: source index (into the run's source names) and line or offset.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, Deserialize)]
pub struct Position {
    pub source: u32,
    pub offset: u64,
}

/// One event that made the case.
#[derive(Clone, Debug, PartialEq)]
pub struct Evidence {
    pub ts_ms: i64,
    pub kind: String,
    /// The event's main object: (`tool` | `dest` | `path` | `cmd` | `op` | `model` | `metric`, value).
    pub object: Option<(&'static str, String)>,
    pub outcome: Option<&'static str>,
    pub privileged: bool,
    /// The producer's event id, when it gave one.
    pub id: Option<String>,
    pub position: Position,
    pub payload: Option<PayloadEvidence>,
}

/// An alert, ready to be written.
#[derive(Clone, Debug, PartialEq)]
pub struct Alert {
    pub id: String,
    pub ts_ms: i64,
    pub agent_id: String,
    pub agent: String,
    pub session_id: Option<String>,
    pub detector: String,
    /// Component name and score, in a fixed order.
    pub components: Vec<(String, f64)>,
    pub severity: Severity,
    pub score: f64,
    pub title: String,
    pub reason: String,
    pub evidence: Vec<Evidence>,
    pub tags: Vec<String>,
    pub action: Action,
    pub suppressed_action: Option<Action>,
    /// Wall clock at send time; set only by live sinks, never in replay.
    pub emitted_at_ms: Option<i64>,
}

/// The deterministic alert id: a hash of the stable inputs that identify the group-opening event.
pub fn alert_id(
    agent_id: &str,
    session_id: Option<&str>,
    detector: &str,
    group_key: &str,
    ts_ms: i64,
    ordinal: u32,
) -> String {
    let mut h = Sha256::new();
    for part in [agent_id, session_id.unwrap_or(""), detector, group_key] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    h.update(ts_ms.to_le_bytes());
    h.update(ordinal.to_le_bytes());
    let digest = h.finalize();
    let mut id = String::with_capacity(35);
    id.push_str("va-");
    for b in &digest[..16] {
        id.push(char::from_digit((b >> 4) as u32, 16).unwrap_or('0'));
        id.push(char::from_digit((b & 15) as u32, 16).unwrap_or('0'));
    }
    id
}

/// Resolves a source index to the name written in evidence.
pub trait SourceNames {
    fn source_name(&self, index: u32) -> &str;
}

impl SourceNames for Vec<String> {
    fn source_name(&self, index: u32) -> &str {
        self.get(index as usize).map(String::as_str).unwrap_or("")
    }
}

impl Alert {
    /// Appends the alert as one JSON object (no newline), fields in the order of `spec/alerts.md`.
    pub fn write_json(&self, out: &mut String, sources: &dyn SourceNames) {
        out.push_str("{\"id\":");
        write_str(out, &self.id);
        out.push_str(",\"ts\":\"");
        write_rfc3339_ms(out, self.ts_ms);
        out.push_str("\",\"agent_id\":");
        write_str(out, &self.agent_id);
        out.push_str(",\"agent\":");
        write_str(out, &self.agent);
        if let Some(s) = &self.session_id {
            out.push_str(",\"session_id\":");
            write_str(out, s);
        }
        out.push_str(",\"detector\":");
        write_str(out, &self.detector);
        out.push_str(",\"components\":{");
        for (i, (name, score)) in self.components.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            write_str(out, name);
            out.push(':');
            write_unit(out, *score);
        }
        out.push_str("},\"severity\":\"");
        out.push_str(self.severity.name());
        out.push_str("\",\"score\":");
        write_unit(out, self.score);
        out.push_str(",\"title\":");
        write_str(out, &self.title);
        out.push_str(",\"reason\":");
        write_str(out, &self.reason);
        out.push_str(",\"evidence\":[");
        for (i, e) in self.evidence.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            e.write_json(out, sources);
        }
        out.push_str("],\"tags\":[");
        for (i, t) in self.tags.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            write_str(out, t);
        }
        out.push_str("],\"action\":\"");
        out.push_str(self.action.name());
        out.push('"');
        if let Some(s) = self.suppressed_action {
            out.push_str(",\"suppressed_action\":\"");
            out.push_str(s.name());
            out.push('"');
        }
        if let Some(ms) = self.emitted_at_ms {
            out.push_str(",\"emitted_at\":\"");
            write_rfc3339_ms(out, ms);
            out.push('"');
        }
        out.push('}');
    }

    /// The alert as a JSON string.
    pub fn to_json(&self, sources: &dyn SourceNames) -> String {
        let mut s = String::with_capacity(1024);
        self.write_json(&mut s, sources);
        s
    }
}

impl Evidence {
    fn write_json(&self, out: &mut String, sources: &dyn SourceNames) {
        out.push_str("{\"ts\":\"");
        write_rfc3339_ms(out, self.ts_ms);
        out.push_str("\",\"kind\":");
        write_str(out, &self.kind);
        if let Some((field, value)) = &self.object {
            out.push(',');
            write_str(out, field);
            out.push(':');
            write_str(out, value);
        }
        if let Some(o) = self.outcome {
            out.push_str(",\"outcome\":\"");
            out.push_str(o);
            out.push('"');
        }
        if self.privileged {
            out.push_str(",\"privileged\":true");
        }
        match &self.id {
            Some(id) => {
                out.push_str(",\"id\":");
                write_str(out, id);
            }
            None => {
                out.push_str(",\"source\":");
                write_str(out, sources.source_name(self.position.source));
                out.push_str(",\"position\":");
                out.push_str(&self.position.offset.to_string());
            }
        }
        if let Some(p) = &self.payload {
            out.push_str(",\"payload\":{\"field\":\"");
            out.push_str(p.field);
            out.push_str("\",\"len\":");
            out.push_str(&p.len.to_string());
            out.push_str(",\"bits_per_byte\":");
            write_num(out, p.bits_per_byte, 2);
            out.push_str(",\"sha256\":\"");
            out.push_str(&p.sha256);
            out.push('"');
            if p.full {
                out.push_str(",\"text\":");
                write_str(out, &p.prefix);
            } else if !p.prefix.is_empty() {
                out.push_str(",\"prefix\":");
                write_str(out, &p.prefix);
            }
            out.push('}');
        }
        out.push('}');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_deterministic_and_sensitive_to_every_input() {
        let base = alert_id("a", Some("s"), "entropy", "", 5, 0);
        assert_eq!(base, alert_id("a", Some("s"), "entropy", "", 5, 0));
        assert_eq!(base.len(), 35);
        for other in [
            alert_id("b", Some("s"), "entropy", "", 5, 0),
            alert_id("a", None, "entropy", "", 5, 0),
            alert_id("a", Some("s"), "rate", "", 5, 0),
            alert_id("a", Some("s"), "entropy", "k", 5, 0),
            alert_id("a", Some("s"), "entropy", "", 6, 0),
            alert_id("a", Some("s"), "entropy", "", 5, 1),
            // Length-prefixing keeps field boundaries: ("ab", "") differs from ("a", "b").
            alert_id("as", None, "entropy", "", 5, 0),
        ] {
            assert_ne!(base, other);
        }
    }

    #[test]
    fn writes_the_spec_shape() {
        let a = Alert {
            id: "va-1".into(),
            ts_ms: 1_795_755_602_310,
            agent_id: "support-7".into(),
            agent: "support-bot".into(),
            session_id: None,
            detector: "entropy".into(),
            components: vec![("entropy".into(), 0.97), ("first_seen".into(), 0.5)],
            severity: Severity::High,
            score: 0.9,
            title: "t".into(),
            reason: "r \"quoted\"".into(),
            evidence: vec![Evidence {
                ts_ms: 1_795_755_602_310,
                kind: "net".into(),
                object: Some(("dest", "paste.example.net:443".into())),
                outcome: None,
                privileged: false,
                id: None,
                position: Position { source: 0, offset: 3 },
                payload: Some(PayloadEvidence {
                    field: "payload",
                    len: 48213,
                    bits_per_byte: 5.987,
                    sha256: "ab".into(),
                    prefix: "UEsDBBQAAAAIAOmQ".into(),
                    full: false,
                }),
            }],
            tags: vec!["exfiltration".into()],
            action: Action::Notify,
            suppressed_action: Some(Action::Kill),
            emitted_at_ms: None,
        };
        let json = a.to_json(&vec!["events.jsonl".to_string()]);
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["ts"], "2026-11-27T05:00:02.310Z");
        assert!(v.get("session_id").is_none());
        assert!(v.get("emitted_at").is_none());
        assert_eq!(v["components"]["entropy"], 0.97);
        assert_eq!(v["severity"], "high");
        assert_eq!(v["suppressed_action"], "kill");
        assert_eq!(v["evidence"][0]["source"], "events.jsonl");
        assert_eq!(v["evidence"][0]["position"], 3);
        assert_eq!(v["evidence"][0]["payload"]["prefix"], "UEsDBBQAAAAIAOmQ");
        assert_eq!(v["reason"], "r \"quoted\"");
    }

    #[test]
    fn severities_follow_the_score() {
        assert_eq!(Severity::from_score(0.6, 0.6), Severity::Low);
        assert_eq!(Severity::from_score(0.72, 0.6), Severity::Medium);
        assert_eq!(Severity::from_score(0.9, 0.6), Severity::High);
        assert_eq!(Severity::from_score(1.0, 0.6), Severity::Critical);
    }
}
