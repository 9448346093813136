//! The fleet-wide blast-radius cap on `kill` actions (alerts.md). The per-agent cooldown (one kill
//! and one contain per agent per cooldown) lives in the shard; this cap looks across agents: at most
//! `max_kills_per_minute` kills per minute of event time, and at most `max_class_kill_share` of a
//! class's tracked agents (but always one) under kill within the cooldown. A kill
//! over the cap becomes `notify` with `suppressed_action: "kill"`, and the first withheld kill of a
//! minute raises an operator alert (`detector: "vigil"`) on the same outputs: a detector that wants
//! to kill many agents at once is more likely wrong, or being played, than right.
//!
//! It runs where alerts are emitted in order (replay's emit stage, the live processor), on event
//! time only, so replays stay byte-identical. With Kafka the cap holds per partition engine.

use crate::alert::{alert_id, Action, Alert, Severity};
use std::collections::{HashMap, VecDeque};

const MINUTE_MS: i64 = 60_000;

/// Kill actions granted recently; bounded by the caps themselves.
#[derive(Clone, Debug)]
pub struct BlastRadius {
    max_per_minute: u32,
    max_class_share: f64,
    cooldown_ms: i64,
    /// Event times of kills granted within the last minute.
    recent: VecDeque<i64>,
    /// Per class: event times of kills granted within the cooldown.
    by_class: HashMap<String, VecDeque<i64>>,
    /// Event-time minute of the last operator alert.
    last_operator_minute: Option<i64>,
    /// Kills withheld so far.
    pub withheld: u64,
}

impl BlastRadius {
    pub fn new(max_per_minute: u32, max_class_share: f64, cooldown_secs: u64) -> BlastRadius {
        BlastRadius {
            max_per_minute,
            max_class_share,
            cooldown_ms: cooldown_secs as i64 * 1000,
            recent: VecDeque::new(),
            by_class: HashMap::new(),
            last_operator_minute: None,
            withheld: 0,
        }
    }

    /// Applies the cap to an alert about to be emitted. `class_agents` is the number of tracked agents
    /// of the alert's class. Returns the operator alert to emit after it, if one is due.
    pub fn govern(&mut self, alert: &mut Alert, class_agents: u32) -> Option<Alert> {
        if alert.action != Action::Kill {
            return None;
        }
        let ts = alert.ts_ms;
        while self.recent.front().is_some_and(|&t| t <= ts - MINUTE_MS) {
            self.recent.pop_front();
        }
        let cooldown = self.cooldown_ms;
        let class = self.by_class.entry(alert.agent.clone()).or_default();
        while class.front().is_some_and(|&t| t <= ts - cooldown) {
            class.pop_front();
        }
        let over_rate = self.recent.len() as u32 >= self.max_per_minute;
        // The class's size is known from the last class barrier; until then the share cap waits.
        let allowed = (self.max_class_share * f64::from(class_agents)).floor().max(1.0);
        let over_share = class_agents > 0 && class.len() as f64 >= allowed;
        if !over_rate && !over_share {
            self.recent.push_back(ts);
            class.push_back(ts);
            return None;
        }
        let in_class = class.len();
        if class.is_empty() {
            self.by_class.remove(&alert.agent);
        }
        self.withheld += 1;
        alert.action = Action::Notify;
        alert.suppressed_action = Some(Action::Kill);
        let minute = ts.div_euclid(MINUTE_MS);
        if self.last_operator_minute == Some(minute) {
            return None;
        }
        self.last_operator_minute = Some(minute);
        let why = if over_rate {
            format!(
                "{} kills already granted in the last minute of event time (cap {})",
                self.recent.len(),
                self.max_per_minute
            )
        } else {
            format!(
                "{in_class} of {class_agents} tracked {} agents already under kill (cap {:.0}% of a class)",
                alert.agent,
                self.max_class_share * 100.0
            )
        };
        Some(Alert {
            id: alert_id(&alert.agent_id, None, "vigil", "blast-radius", ts, 0),
            ts_ms: ts,
            agent_id: alert.agent_id.clone(),
            agent: alert.agent.clone(),
            session_id: None,
            detector: "vigil".into(),
            components: Vec::new(),
            severity: Severity::Critical,
            score: 1.0,
            title: "Blast-radius cap reached: kill actions withheld".into(),
            reason: format!(
                "kill for agent {} (alert {}) downgraded to notify: {why}; further kills this minute are withheld without another operator alert",
                alert.agent_id, alert.id
            ),
            evidence: Vec::new(),
            tags: vec!["vigil".into(), "blast-radius".into()],
            action: Action::Notify,
            suppressed_action: None,
            emitted_at_ms: None,
        })
    }
}
