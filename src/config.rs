//! The configuration file: built-in defaults < TOML file < `VIGIL_<SECTION>_<KEY>` environment
//! variables. Sections and keys are those of `spec/cli.md`; an unknown section or key, or a value of the
//! wrong type, fails at start with the key that is wrong.

use anyhow::{anyhow, Context, Result};
use serde::Deserialize;
use vigil_detector::config::{
    ActionsSection, DetectorsSection, EngineConfig, EngineSection, EvidenceConfig, PayloadEvidence,
};
use vigil_live::config::{AlertFormat, HttpConfig, KafkaConfig, OutputConfig, StateConfig};

/// `[output]`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct OutputSection {
    /// Alert format on stdout, files and topics: `vigil` (the spec's alert object) or `ocsf`.
    pub format: AlertFormat,
    /// `vigil run`: alerts to this file (JSON Lines, fsynced per batch) instead of stdout.
    pub alerts_file: Option<String>,
    /// Dead-letter file of the live detector when no Kafka dead-letter topic is configured.
    pub dead_letter_file: String,
    /// How payload text appears in alert evidence: `redacted` (default), `none` or `full`.
    pub evidence_payload: PayloadEvidence,
    /// Leading characters of a payload shown in redacted evidence.
    pub evidence_prefix_chars: usize,
}

impl Default for OutputSection {
    fn default() -> Self {
        OutputSection {
            format: AlertFormat::Vigil,
            alerts_file: None,
            dead_letter_file: "vigil-rejected.jsonl".into(),
            evidence_payload: PayloadEvidence::Redacted,
            evidence_prefix_chars: 16,
        }
    }
}

/// `[rules]`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RulesSection {
    /// A rule pack directory or file replacing the built-in default pack (reloaded when it changes in
    /// `vigil run`).
    pub path: Option<String>,
}

/// `[models]`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ModelsSection {
    /// A directory of model artifacts written by `vigil train` (`--models` overrides it in `vigil replay`).
    pub dir: Option<String>,
}

/// The whole file. Sections owned by features not built yet are accepted as tables and refused by
/// the commands that would need them.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub engine: EngineSection,
    pub detectors: DetectorsSection,
    pub actions: ActionsSection,
    pub output: OutputSection,
    pub http: HttpConfig,
    pub rules: RulesSection,
    pub models: Option<ModelsSection>,
    pub kafka: Option<KafkaConfig>,
    pub state: Option<StateConfig>,
    /// `[[webhook]]` endpoints, checked by `vigil_webhook::validate_all` when used.
    pub webhook: Vec<vigil_webhook::EndpointConfig>,
}

/// Sections whose scalar keys environment variables may override.
const ENV_SECTIONS: &[&str] =
    &["http", "engine", "detectors", "actions", "output", "rules", "models", "kafka", "state"];

impl Config {
    /// Loads the configuration: `path` (if any) over the defaults, then `VIGIL_*` variables from `env`.
    pub fn load(path: Option<&str>, env: impl Iterator<Item = (String, String)>) -> Result<Config> {
        let mut table: toml::Table = match path {
            Some(p) => {
                let text = std::fs::read_to_string(p).with_context(|| format!("cannot read configuration {p}"))?;
                text.parse::<toml::Table>().map_err(|e| anyhow!("{p}: {}", one_line(&e.to_string())))?
            }
            None => toml::Table::new(),
        };
        for (k, v) in env {
            let Some(rest) = k.strip_prefix("VIGIL_") else {
                continue;
            };
            let rest = rest.to_ascii_lowercase();
            let Some(section) = ENV_SECTIONS.iter().find(|s| rest.starts_with(&format!("{s}_"))) else {
                continue;
            };
            let key = &rest[section.len() + 1..];
            let entry = table.entry(section.to_string()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
            let toml::Value::Table(t) = entry else {
                return Err(anyhow!("{k}: section [{section}] is not a table"));
            };
            t.insert(key.to_string(), env_value(&v));
        }
        let where_ = path.unwrap_or("configuration");
        let cfg: Config = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| anyhow!("{where_}: {}", one_line(&e.to_string())))?;
        cfg.engine_config().validate().map_err(|e| anyhow!("{where_}: {e}"))?;
        cfg.http.validate().map_err(|e| anyhow!("{where_}: {e}"))?;
        if let Some(k) = &cfg.kafka {
            k.validate().map_err(|e| anyhow!("{where_}: {e}"))?;
        }
        if let Some(s) = &cfg.state {
            s.validate().map_err(|e| anyhow!("{where_}: {e}"))?;
        }
        Ok(cfg)
    }

    /// The live detector's output part.
    pub fn output_config(&self) -> OutputConfig {
        OutputConfig {
            format: self.output.format,
            dead_letter_file: self.output.dead_letter_file.clone().into(),
            alerts_file: self.output.alerts_file.as_ref().map(Into::into),
        }
    }

    /// The engine's part.
    pub fn engine_config(&self) -> EngineConfig {
        EngineConfig {
            engine: self.engine.clone(),
            detectors: self.detectors.clone(),
            actions: self.actions.clone(),
            evidence: EvidenceConfig {
                payload: self.output.evidence_payload,
                prefix_chars: self.output.evidence_prefix_chars,
            },
        }
    }
}

/// An environment value as TOML: integer, float, boolean, else string.
fn env_value(v: &str) -> toml::Value {
    if let Ok(i) = v.parse::<i64>() {
        toml::Value::Integer(i)
    } else if let Ok(f) = v.parse::<f64>() {
        toml::Value::Float(f)
    } else if let Ok(b) = v.parse::<bool>() {
        toml::Value::Boolean(b)
    } else {
        toml::Value::String(v.to_string())
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file(text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(text.as_bytes()).unwrap();
        f
    }

    #[test]
    fn layers_defaults_file_and_environment() {
        let f = file("[engine]\nshards = 8\ncooldown_secs = 60\n");
        let env = vec![
            ("VIGIL_ENGINE_COOLDOWN_SECS".to_string(), "120".to_string()),
            ("VIGIL_DETECTORS_ALERT_SCORE".to_string(), "0.7".to_string()),
            ("UNRELATED".to_string(), "x".to_string()),
        ];
        let c = Config::load(Some(f.path().to_str().unwrap()), env.into_iter()).unwrap();
        assert_eq!(c.engine.shards, 8);
        assert_eq!(c.engine.cooldown_secs, 120);
        assert_eq!(c.engine.max_agents, 1_000_000);
        assert_eq!(c.detectors.alert_score, 0.7);
    }

    #[test]
    fn errors_name_the_key() {
        let f = file("[engine]\nshardz = 8\n");
        let err = Config::load(Some(f.path().to_str().unwrap()), std::iter::empty()).unwrap_err().to_string();
        assert!(err.contains("shardz"), "{err}");
        let f = file("[engine]\nshards = \"many\"\n");
        let err = Config::load(Some(f.path().to_str().unwrap()), std::iter::empty()).unwrap_err().to_string();
        assert!(err.contains("shards"), "{err}");
        let f = file("[engine]\nshards = 0\n");
        let err = Config::load(Some(f.path().to_str().unwrap()), std::iter::empty()).unwrap_err().to_string();
        assert!(err.contains("engine.shards"), "{err}");
        let f = file("[nonsense]\n");
        assert!(Config::load(Some(f.path().to_str().unwrap()), std::iter::empty()).is_err());
        let err = Config::load(None, vec![("VIGIL_ENGINE_SHARDS".to_string(), "x".to_string())].into_iter())
            .unwrap_err()
            .to_string();
        assert!(err.contains("shards"), "{err}");
    }
}
