//! Scoring a run against labels (`spec/evaluation.md`): which attack windows were detected, which
//! alerts were true, how early, and how many false alarms per agent-hour.

use crate::ReplayError;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashMap};
use vigil_detector::time::parse_ts_text;

/// Default grace after a window's end within which an alert still matches it.
pub const DEFAULT_GRACE_MS: i64 = 60_000;

/// One labelled attack window.
#[derive(Clone, Debug, PartialEq)]
pub struct Label {
    pub agent_id: String,
    pub session_id: Option<String>,
    pub start_ms: i64,
    pub end_ms: i64,
    pub attack: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLabel {
    agent_id: String,
    #[serde(default)]
    session_id: Option<String>,
    start: Value,
    end: Value,
    attack: String,
}

fn label_ts(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().filter(|v| *v >= 0),
        Value::String(s) => parse_ts_text(s),
        _ => None,
    }
}

/// Parses a labels file (JSON Lines); the error names the file, line and field.
pub fn parse_labels(path: &str, text: &str) -> Result<Vec<Label>, ReplayError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = |msg: String| ReplayError::Labels { path: path.to_string(), line: i + 1, message: msg };
        let raw: RawLabel = serde_json::from_str(line).map_err(|e| bad(e.to_string()))?;
        let start_ms = label_ts(&raw.start).ok_or_else(|| bad("field `start`: not a timestamp".into()))?;
        let end_ms = label_ts(&raw.end).ok_or_else(|| bad("field `end`: not a timestamp".into()))?;
        if end_ms < start_ms {
            return Err(bad("field `end` is before `start`".into()));
        }
        out.push(Label { agent_id: raw.agent_id, session_id: raw.session_id, start_ms, end_ms, attack: raw.attack });
    }
    Ok(out)
}

/// What evaluation needs of an alert.
#[derive(Clone, Debug, PartialEq)]
pub struct AlertRef {
    pub agent_id: String,
    pub session_id: Option<String>,
    pub ts_ms: i64,
}

/// Accumulates alerts and agent activity during a run, then scores it.
pub struct Evaluator {
    labels: Vec<Label>,
    grace_ms: i64,
    /// Label indices per agent.
    by_agent: HashMap<String, Vec<usize>>,
    /// Earliest matching alert time per label.
    first_match: Vec<Option<i64>>,
    alerts: u64,
    true_alerts: u64,
    /// First and last event time per agent.
    spans: HashMap<String, (i64, i64)>,
}

impl Evaluator {
    pub fn new(labels: Vec<Label>, grace_ms: i64) -> Evaluator {
        let mut by_agent: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, l) in labels.iter().enumerate() {
            by_agent.entry(l.agent_id.clone()).or_default().push(i);
        }
        let n = labels.len();
        Evaluator {
            labels,
            grace_ms,
            by_agent,
            first_match: vec![None; n],
            alerts: 0,
            true_alerts: 0,
            spans: HashMap::new(),
        }
    }

    /// Records that `agent_id` was seen at `ts_ms`.
    pub fn observe_event(&mut self, agent_id: &str, ts_ms: i64) {
        match self.spans.get_mut(agent_id) {
            Some(s) => {
                s.0 = s.0.min(ts_ms);
                s.1 = s.1.max(ts_ms);
            }
            None => {
                self.spans.insert(agent_id.to_string(), (ts_ms, ts_ms));
            }
        }
    }

    /// Records an emitted alert.
    pub fn observe_alert(&mut self, a: &AlertRef) {
        self.alerts += 1;
        let mut matched = false;
        if let Some(idx) = self.by_agent.get(&a.agent_id) {
            for &i in idx {
                let l = &self.labels[i];
                let session_ok = l.session_id.is_none() || l.session_id == a.session_id;
                if session_ok && a.ts_ms >= l.start_ms && a.ts_ms <= l.end_ms.saturating_add(self.grace_ms) {
                    matched = true;
                    let m = &mut self.first_match[i];
                    *m = Some(m.map_or(a.ts_ms, |t| t.min(a.ts_ms)));
                }
            }
        }
        if matched {
            self.true_alerts += 1;
        }
    }

    /// The evaluation figures of the report (`spec/evaluation.md`); ratios with nothing to divide by
    /// are `null`.
    pub fn report(&self) -> Map<String, Value> {
        let windows = self.labels.len() as u64;
        let delays: Vec<f64> = self
            .labels
            .iter()
            .zip(&self.first_match)
            .filter_map(|(l, m)| m.map(|t| (t - l.start_ms) as f64 / 1000.0))
            .collect();
        let detected = delays.len() as u64;
        let recall = ratio(detected as f64, windows as f64);
        let precision = ratio(self.true_alerts as f64, self.alerts as f64);
        let f1 = match (recall, precision) {
            (Some(r), Some(p)) if r + p > 0.0 => Some(2.0 * r * p / (r + p)),
            (Some(_), Some(_)) => Some(0.0),
            _ => None,
        };
        let false_alerts = self.alerts - self.true_alerts;
        // Summed as integers: a float sum in hash-map order differed in the last digits from run to run.
        let agent_ms: i64 = self.spans.values().map(|(a, b)| b - a).sum();
        let agent_hours = agent_ms as f64 / 3_600_000.0;

        let mut by_attack: BTreeMap<&str, (u64, u64, Vec<f64>)> = BTreeMap::new();
        for (l, m) in self.labels.iter().zip(&self.first_match) {
            let e = by_attack.entry(&l.attack).or_default();
            e.0 += 1;
            if let Some(t) = m {
                e.1 += 1;
                e.2.push((t - l.start_ms) as f64 / 1000.0);
            }
        }
        let by_attack: Map<String, Value> = by_attack
            .into_iter()
            .map(|(name, (n, d, delays))| {
                (
                    name.to_string(),
                    json!({
                        "attacks": n,
                        "detected": d,
                        "recall": ratio(d as f64, n as f64),
                        "delay_s_mean": mean(&delays),
                    }),
                )
            })
            .collect();

        let mut m = Map::new();
        m.insert("attacks".into(), json!(windows));
        m.insert("detected".into(), json!(detected));
        m.insert("recall".into(), json!(recall));
        m.insert("precision".into(), json!(precision));
        m.insert("f1".into(), json!(f1));
        m.insert("false_alerts".into(), json!(false_alerts));
        m.insert("false_alerts_per_agent_hour".into(), json!(ratio(false_alerts as f64, agent_hours)));
        m.insert("delay_s_mean".into(), json!(mean(&delays)));
        m.insert("delay_s_p95".into(), json!(p95(&delays)));
        m.insert("by_attack".into(), Value::Object(by_attack));
        m
    }
}

fn ratio(a: f64, b: f64) -> Option<f64> {
    (b > 0.0).then(|| a / b)
}

fn mean(xs: &[f64]) -> Option<f64> {
    ratio(xs.iter().sum(), xs.len() as f64)
}

/// The 95th percentile by the nearest-rank method.
fn p95(xs: &[f64]) -> Option<f64> {
    if xs.is_empty() {
        return None;
    }
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = ((0.95 * v.len() as f64).ceil() as usize).clamp(1, v.len());
    Some(v[rank - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(agent: &str, session: Option<&str>, ts: i64) -> AlertRef {
        AlertRef { agent_id: agent.into(), session_id: session.map(Into::into), ts_ms: ts }
    }

    #[test]
    fn parses_both_ts_forms_and_reports_bad_lines() {
        let text =
            "{\"agent_id\":\"a\",\"start\":\"2026-01-01T00:00:01Z\",\"end\":1767225602000,\"attack\":\"runaway\"}\n\n";
        let l = parse_labels("l.jsonl", text).unwrap();
        assert_eq!(l[0].start_ms, 1_767_225_601_000);
        assert_eq!(l[0].end_ms, 1_767_225_602_000);
        let err = parse_labels("l.jsonl", "{}\n").unwrap_err().to_string();
        assert!(err.contains("l.jsonl:1"), "{err}");
        let err = parse_labels("l.jsonl", "{\"agent_id\":\"a\",\"start\":5,\"end\":1,\"attack\":\"x\"}")
            .unwrap_err()
            .to_string();
        assert!(err.contains("before"), "{err}");
    }

    #[test]
    fn computes_every_figure() {
        let labels = vec![
            Label {
                agent_id: "a".into(),
                session_id: None,
                start_ms: 10_000,
                end_ms: 20_000,
                attack: "exfiltration".into(),
            },
            Label {
                agent_id: "b".into(),
                session_id: Some("s1".into()),
                start_ms: 10_000,
                end_ms: 20_000,
                attack: "exfiltration".into(),
            },
            Label { agent_id: "c".into(), session_id: None, start_ms: 0, end_ms: 1_000, attack: "runaway".into() },
        ];
        let mut e = Evaluator::new(labels, DEFAULT_GRACE_MS);
        for (agent, ts) in [("a", 0), ("a", 3_600_000), ("b", 0), ("b", 3_600_000), ("c", 0)] {
            e.observe_event(agent, ts);
        }
        e.observe_alert(&alert("a", Some("x"), 15_000)); // true, delay 5 s
        e.observe_alert(&alert("a", None, 12_000)); // true, earlier: delay 2 s
        e.observe_alert(&alert("a", None, 80_001)); // after end + grace: false
        e.observe_alert(&alert("b", Some("s2"), 15_000)); // wrong session: false
        e.observe_alert(&alert("b", Some("s1"), 80_000)); // at end + grace: true, delay 70 s
        let r = e.report();
        assert_eq!(r["attacks"], 3);
        assert_eq!(r["detected"], 2);
        assert_eq!(r["recall"], json!(2.0 / 3.0));
        assert_eq!(r["precision"], json!(3.0 / 5.0));
        let f1 = 2.0 * (2.0 / 3.0) * 0.6 / (2.0 / 3.0 + 0.6);
        assert!((r["f1"].as_f64().unwrap() - f1).abs() < 1e-12);
        assert_eq!(r["false_alerts"], 2);
        assert_eq!(r["false_alerts_per_agent_hour"], json!(1.0));
        assert_eq!(r["delay_s_mean"], json!(36.0));
        assert_eq!(r["delay_s_p95"], json!(70.0));
        assert_eq!(r["by_attack"]["exfiltration"]["recall"], json!(1.0));
        assert_eq!(r["by_attack"]["runaway"]["detected"], 0);
        assert_eq!(r["by_attack"]["runaway"]["delay_s_mean"], Value::Null);
    }

    #[test]
    fn nothing_to_divide_by_gives_null() {
        let r = Evaluator::new(vec![], DEFAULT_GRACE_MS).report();
        for k in ["recall", "precision", "f1", "false_alerts_per_agent_hour", "delay_s_mean", "delay_s_p95"] {
            assert_eq!(r[k], Value::Null, "{k}");
        }
    }
}
