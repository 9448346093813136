//! Configuration of the live detector's edges: `[http]`, `[kafka]`, `[state]` and the alert output.
//! Every struct refuses unknown keys and documents its units; `validate` names the key that is wrong.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
pub use vigil_detector::config::ConfigError;

fn bad(key: &str, problem: impl Into<String>) -> ConfigError {
    ConfigError::new(key, problem)
}

/// `[http]`: ingest, metrics and health on one listener.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Address to listen on.
    pub listen: String,
    /// Largest request body accepted; larger bodies get 413.
    pub max_body_bytes: usize,
    /// When set, `/v1/*` and `/metrics` require `Authorization: Bearer <token>`.
    pub bearer_token: Option<String>,
    /// Request batches that may wait for the engine; beyond it ingest answers 503 with Retry-After.
    pub max_queued_batches: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: "127.0.0.1:8080".into(),
            max_body_bytes: 16 << 20,
            bearer_token: None,
            max_queued_batches: 64,
        }
    }
}

impl HttpConfig {
    pub fn validate(&self) -> Result<SocketAddr, ConfigError> {
        if self.max_body_bytes == 0 {
            return Err(bad("http.max_body_bytes", "must be at least 1"));
        }
        if self.max_queued_batches == 0 {
            return Err(bad("http.max_queued_batches", "must be at least 1"));
        }
        if matches!(&self.bearer_token, Some(t) if t.is_empty()) {
            return Err(bad("http.bearer_token", "must not be empty"));
        }
        self.listen.parse().map_err(|_| bad("http.listen", format!("{:?} is not a host:port address", self.listen)))
    }
}

/// `[kafka]`: consume agent events as a consumer group; alerts, rejects and state on topics.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaConfig {
    /// Bootstrap servers, `host:port[,host:port]`.
    pub brokers: String,
    pub group_id: String,
    /// Topics of agent events (key = `agent_id`).
    pub topics: Vec<String>,
    /// Alerts topic (key = `agent_id`); when absent alerts go to stdout.
    pub alerts_topic: Option<String>,
    /// Dead-letter topic for rejected messages; when absent they go to `[output] dead_letter_file`.
    pub dead_letter_topic: Option<String>,
    /// Compacted changelog topic of per-partition state (group mode); when absent and `[state] dir`
    /// is set, state is checkpointed in that directory (single node).
    pub state_topic: Option<String>,
    /// Seconds between checkpoints of a partition (offsets are committed only at checkpoints).
    pub checkpoint_interval_secs: u64,
    /// Passed to librdkafka as is (security.protocol, sasl.*, ssl.*, session.timeout.ms, ...).
    pub properties: BTreeMap<String, String>,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig {
            brokers: String::new(),
            group_id: "vigil".into(),
            topics: Vec::new(),
            alerts_topic: None,
            dead_letter_topic: None,
            state_topic: None,
            checkpoint_interval_secs: 5,
            properties: BTreeMap::new(),
        }
    }
}

impl KafkaConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.brokers.trim().is_empty() {
            return Err(bad("kafka.brokers", "must name at least one broker"));
        }
        if self.group_id.is_empty() {
            return Err(bad("kafka.group_id", "must not be empty"));
        }
        if self.topics.is_empty() || self.topics.iter().any(String::is_empty) {
            return Err(bad("kafka.topics", "must list at least one topic"));
        }
        if self.checkpoint_interval_secs == 0 {
            return Err(bad("kafka.checkpoint_interval_secs", "must be at least 1"));
        }
        for key in ["bootstrap.servers", "group.id", "enable.auto.commit"] {
            if self.properties.contains_key(key) {
                return Err(bad(&format!("kafka.properties.{key}"), "is set by vigil itself"));
            }
        }
        Ok(())
    }
}

/// `[state]`: where checkpoints (and the webhook outbox) live.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StateConfig {
    /// State directory (created if missing).
    pub dir: PathBuf,
    /// Seconds between checkpoints of the HTTP-fed engine.
    #[serde(default = "default_checkpoint_secs")]
    pub checkpoint_interval_secs: u64,
}

fn default_checkpoint_secs() -> u64 {
    30
}

impl StateConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.dir.as_os_str().is_empty() {
            return Err(bad("state.dir", "must not be empty"));
        }
        if self.checkpoint_interval_secs == 0 {
            return Err(bad("state.checkpoint_interval_secs", "must be at least 1"));
        }
        Ok(())
    }
}

/// Alert format on stdout, files and topics.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum AlertFormat {
    /// The alert object of `spec/alerts.md`.
    #[default]
    Vigil,
    /// OCSF 1.8.0 Detection Finding (class 2004).
    Ocsf,
}

/// Where the live detector writes alerts and rejects (from `[output]`).
#[derive(Clone, Debug, PartialEq)]
pub struct OutputConfig {
    pub format: AlertFormat,
    /// Rejected input when no Kafka dead-letter topic is configured.
    pub dead_letter_file: PathBuf,
    /// Alerts file instead of stdout.
    pub alerts_file: Option<PathBuf>,
}

impl Default for OutputConfig {
    fn default() -> Self {
        OutputConfig { format: AlertFormat::Vigil, dead_letter_file: "vigil-rejected.jsonl".into(), alerts_file: None }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_spec() {
        let h = HttpConfig::default();
        assert_eq!(h.validate().unwrap().to_string(), "127.0.0.1:8080");
        assert_eq!(h.max_body_bytes, 16_777_216);
        assert_eq!(OutputConfig::default().dead_letter_file, PathBuf::from("vigil-rejected.jsonl"));
    }

    #[test]
    fn errors_name_the_key() {
        let h = HttpConfig { listen: "nowhere".into(), ..HttpConfig::default() };
        assert_eq!(h.validate().unwrap_err().key, "http.listen");
        let k = KafkaConfig { brokers: "b:9092".into(), ..KafkaConfig::default() };
        assert_eq!(k.validate().unwrap_err().key, "kafka.topics");
        let mut k = KafkaConfig { brokers: "b:9092".into(), topics: vec!["t".into()], ..KafkaConfig::default() };
        k.properties.insert("group.id".into(), "x".into());
        assert_eq!(k.validate().unwrap_err().key, "kafka.properties.group.id");
    }
}
