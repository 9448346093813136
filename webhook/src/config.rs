//! One `[[webhook]]` table (`spec/cli.md`): the configuration as written, its validation, and the filter.

use crate::error::Error;
use crate::signature::Secret;
use serde::Deserialize;
use std::collections::HashSet;
use std::time::Duration;
use vigil_detector::alert::{Action, Severity};
use vigil_detector::Alert;

/// Default for `timeout_ms`: the whole request, connect to last byte of the answer.
pub const DEFAULT_TIMEOUT_MS: u64 = 2_000;
/// Default for `retry_horizon_secs`: an hour of retries before a delivery is dead-lettered.
pub const DEFAULT_RETRY_HORIZON_SECS: u64 = 3_600;
/// Default for `max_in_flight`.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 16;

/// Whether an endpoint really receives requests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Send, retry, dead-letter.
    #[default]
    Enforce,
    /// Log and count what would have been sent; send nothing (the default of `vigil replay`).
    Shadow,
}

/// One `[[webhook]]` table, exactly as written in the configuration file.
///
/// ```toml
/// [[webhook]]
/// name = "kill-switch"
/// url = "http://127.0.0.1:9000/hooks/vigil"
/// secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"   # or secrets = [...] during rotation
/// min_severity = "high"
/// actions = ["kill", "contain"]
/// tags = ["exfiltration"]
/// mode = "enforce"
/// timeout_ms = 2000
/// retry_horizon_secs = 3600
/// ```
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointConfig {
    /// Unique name of the endpoint: the metric label, the key of its outbox records and dead letters.
    pub name: String,
    /// Where alerts are POSTed: an `http://` or `https://` URL.
    pub url: String,
    /// The signing secret, `whsec_<base64 key>`. Exactly one of `secret` and `secrets` is required.
    #[serde(default)]
    pub secret: Option<String>,
    /// Several signing secrets while a key rotates; every request carries one signature per secret.
    #[serde(default)]
    pub secrets: Option<Vec<String>>,
    /// Only alerts of at least this severity; absent: every severity.
    #[serde(default)]
    pub min_severity: Option<Severity>,
    /// Only alerts whose `action` is listed; absent: every action.
    #[serde(default)]
    pub actions: Option<Vec<Action>>,
    /// Only alerts carrying at least one of these tags; absent: every alert, tagged or not.
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    /// `enforce` (send) or `shadow` (log and count only). Default `enforce`; `vigil replay` forces `shadow`
    /// unless `--enforce-webhooks`.
    #[serde(default)]
    pub mode: Mode,
    /// Time allowed for one request, connect to the end of the answer, in milliseconds. Default 2000.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// How long after an alert was first written to the outbox it is still retried, in seconds; then it is
    /// dead-lettered. Default 3600.
    #[serde(default = "default_retry_horizon_secs")]
    pub retry_horizon_secs: u64,
    /// Most requests in flight to this endpoint at once (different agents; one agent is always sequential).
    /// Default 16.
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: usize,
}

fn default_timeout_ms() -> u64 {
    DEFAULT_TIMEOUT_MS
}
fn default_retry_horizon_secs() -> u64 {
    DEFAULT_RETRY_HORIZON_SECS
}
fn default_max_in_flight() -> usize {
    DEFAULT_MAX_IN_FLIGHT
}

/// A validated endpoint, ready for the dispatcher.
#[derive(Clone, Debug)]
pub struct Endpoint {
    /// The endpoint's unique name.
    pub name: String,
    /// Where requests go.
    pub uri: http::Uri,
    /// Signing keys, in the order written.
    pub secrets: Vec<Secret>,
    /// Which alerts this endpoint receives.
    pub filter: Filter,
    /// Send or only count.
    pub mode: Mode,
    /// Time allowed for one request.
    pub timeout: Duration,
    /// How long after first enqueue a delivery is retried.
    pub retry_horizon: Duration,
    /// Bound on concurrent requests.
    pub max_in_flight: usize,
}

/// Which alerts an endpoint receives: each present condition must hold.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    /// Minimum severity, inclusive.
    pub min_severity: Option<Severity>,
    /// Accepted actions.
    pub actions: Option<Vec<Action>>,
    /// Accepted tags (any one suffices).
    pub tags: Option<Vec<String>>,
}

impl Filter {
    /// True when the alert passes every present condition.
    pub fn accepts(&self, alert: &Alert) -> bool {
        accepts(self.min_severity, self.actions.as_deref(), self.tags.as_deref(), alert)
    }
}

fn accepts(min_severity: Option<Severity>, actions: Option<&[Action]>, tags: Option<&[String]>, alert: &Alert) -> bool {
    min_severity.is_none_or(|min| alert.severity >= min)
        && actions.is_none_or(|a| a.contains(&alert.action))
        && tags.is_none_or(|wanted| alert.tags.iter().any(|t| wanted.iter().any(|w| w == t)))
}

impl EndpointConfig {
    /// The filter part of the configuration.
    pub fn filter(&self) -> Filter {
        Filter { min_severity: self.min_severity, actions: self.actions.clone(), tags: self.tags.clone() }
    }

    /// True when `alert` passes this endpoint's filter (`min_severity`, `actions`, `tags`; an absent key accepts
    /// everything).
    pub fn accepts(&self, alert: &Alert) -> bool {
        accepts(self.min_severity, self.actions.as_deref(), self.tags.as_deref(), alert)
    }

    /// Validates the table; errors name the endpoint and the key. Name uniqueness needs every table: see
    /// [`validate_all`].
    pub fn build(&self) -> Result<Endpoint, Error> {
        let err = |key: &'static str, message: String| Error::Config { endpoint: self.name.clone(), key, message };
        if self.name.trim().is_empty() {
            return Err(err("name", "must not be empty".into()));
        }
        if self.name.len() > 128 || self.name.chars().any(char::is_control) {
            return Err(err("name", "must be at most 128 bytes without control characters".into()));
        }
        let uri = parse_url(&self.url).map_err(|m| err("url", m))?;
        let secrets = match (&self.secret, &self.secrets) {
            (Some(_), Some(_)) => return Err(err("secrets", "give either `secret` or `secrets`, not both".into())),
            (None, None) => {
                return Err(err(
                    "secret",
                    "is required (`whsec_<base64 key>`); unsigned kill switches can be forged".into(),
                ))
            }
            (Some(s), None) => vec![Secret::parse(s).map_err(|m| err("secret", m))?],
            (None, Some(list)) => {
                if list.is_empty() {
                    return Err(err("secrets", "must hold at least one secret".into()));
                }
                let mut out = Vec::with_capacity(list.len());
                for (i, s) in list.iter().enumerate() {
                    out.push(Secret::parse(s).map_err(|m| err("secrets", format!("entry {i}: {m}")))?);
                }
                out
            }
        };
        if let Some(actions) = &self.actions {
            if actions.is_empty() {
                return Err(err(
                    "actions",
                    "an empty list matches no alert; omit the key to accept every action".into(),
                ));
            }
        }
        if let Some(tags) = &self.tags {
            if tags.is_empty() {
                return Err(err("tags", "an empty list matches no alert; omit the key to accept every alert".into()));
            }
            if tags.iter().any(|t| t.trim().is_empty()) {
                return Err(err("tags", "tags must not be empty strings".into()));
            }
        }
        if !(1..=600_000).contains(&self.timeout_ms) {
            return Err(err("timeout_ms", format!("{} is outside 1..=600000", self.timeout_ms)));
        }
        if !(1..=30 * 86_400).contains(&self.retry_horizon_secs) {
            return Err(err(
                "retry_horizon_secs",
                format!("{} is outside 1..=2592000 (30 days)", self.retry_horizon_secs),
            ));
        }
        if !(1..=1024).contains(&self.max_in_flight) {
            return Err(err("max_in_flight", format!("{} is outside 1..=1024", self.max_in_flight)));
        }
        Ok(Endpoint {
            name: self.name.clone(),
            uri,
            secrets,
            filter: self.filter(),
            mode: self.mode,
            timeout: Duration::from_millis(self.timeout_ms),
            retry_horizon: Duration::from_secs(self.retry_horizon_secs),
            max_in_flight: self.max_in_flight,
        })
    }
}

/// Validates every `[[webhook]]` table, including that names are unique.
pub fn validate_all(configs: &[EndpointConfig]) -> Result<Vec<Endpoint>, Error> {
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(configs.len());
    for c in configs {
        if !seen.insert(c.name.as_str()) {
            return Err(Error::Config {
                endpoint: c.name.clone(),
                key: "name",
                message: "another [[webhook]] has the same name; names must be unique".into(),
            });
        }
        out.push(c.build()?);
    }
    Ok(out)
}

fn parse_url(url: &str) -> Result<http::Uri, String> {
    let uri: http::Uri = url.parse().map_err(|e| format!("{url:?} is not a URL: {e}"))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") => {
            if !cfg!(feature = "https") {
                return Err(format!("{url:?}: this build has no TLS (build vigil-webhook with feature `https`)"));
            }
        }
        _ => return Err(format!("{url:?} must start with http:// or https://")),
    }
    match uri.host() {
        Some(h) if !h.is_empty() => {}
        _ => return Err(format!("{url:?} has no host")),
    }
    if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
        return Err(format!("{url:?}: credentials in the URL are not supported; the signature authenticates vigil"));
    }
    Ok(uri)
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_detector::alert::{Action, Severity};

    const CLI_MD_EXAMPLE: &str = r#"
        [[webhook]]
        name = "kill-switch"
        url = "http://127.0.0.1:9000/hooks/vigil"
        secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
        min_severity = "high"
        actions = ["kill", "contain"]
        tags = ["exfiltration"]
        mode = "enforce"
        timeout_ms = 2000
        retry_horizon_secs = 3600
    "#;

    #[derive(Deserialize)]
    struct File {
        webhook: Vec<EndpointConfig>,
    }

    fn parse(toml_text: &str) -> Result<Vec<EndpointConfig>, toml::de::Error> {
        toml::from_str::<File>(toml_text).map(|f| f.webhook)
    }

    fn minimal(name: &str) -> EndpointConfig {
        parse(&format!("[[webhook]]\nname = {name:?}\nurl = \"http://127.0.0.1:1/\"\nsecret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"\n"))
            .unwrap()
            .remove(0)
    }

    pub(crate) fn alert(severity: Severity, action: Action, tags: Vec<&'static str>) -> Alert {
        Alert {
            id: "va-1".into(),
            ts_ms: 0,
            agent_id: "a".into(),
            agent: "bot".into(),
            session_id: None,
            detector: "rate".into(),
            components: vec![],
            severity,
            score: 0.9,
            title: "t".into(),
            reason: "r".into(),
            evidence: vec![],
            tags: tags.into_iter().map(String::from).collect(),
            action,
            suppressed_action: None,
            emitted_at_ms: None,
        }
    }

    #[test]
    fn parses_the_cli_md_example() {
        let c = parse(CLI_MD_EXAMPLE).unwrap().remove(0);
        assert_eq!(c.name, "kill-switch");
        assert_eq!(c.min_severity, Some(Severity::High));
        assert_eq!(c.actions, Some(vec![Action::Kill, Action::Contain]));
        assert_eq!(c.mode, Mode::Enforce);
        let e = c.build().unwrap();
        assert_eq!(e.timeout, Duration::from_secs(2));
        assert_eq!(e.retry_horizon, Duration::from_secs(3600));
        assert_eq!(e.secrets.len(), 1);
        assert_eq!(e.uri.port_u16(), Some(9000));
    }

    #[test]
    fn defaults_apply_and_unknown_keys_are_rejected() {
        let c = minimal("x");
        assert_eq!((c.mode, c.timeout_ms, c.retry_horizon_secs, c.max_in_flight), (Mode::Enforce, 2000, 3600, 16));
        let e = parse("[[webhook]]\nname = \"x\"\nurl = \"http://h/\"\nsecret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"\ntimeout_secs = 3\n")
            .unwrap_err();
        assert!(e.to_string().contains("timeout_secs"), "{e}");
        let e = parse("[[webhook]]\nname = \"x\"\nurl = \"http://h/\"\nmode = \"loud\"\n").unwrap_err();
        assert!(e.to_string().contains("loud"), "{e}");
    }

    fn key_of(c: &EndpointConfig) -> &'static str {
        match c.build() {
            Err(Error::Config { key, .. }) => key,
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn errors_name_the_key() {
        let mut c = minimal("x");
        c.url = "ftp://host/".into();
        assert_eq!(key_of(&c), "url");
        c.url = "not a url".into();
        assert_eq!(key_of(&c), "url");
        c.url = "http://user:pw@host/".into();
        assert_eq!(key_of(&c), "url");
        c = minimal("x");
        c.secret = Some("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into());
        assert_eq!(key_of(&c), "secret");
        c.secret = None;
        assert_eq!(key_of(&c), "secret");
        c.secrets = Some(vec![]);
        assert_eq!(key_of(&c), "secrets");
        c.secrets = Some(vec!["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into(), "whsec_???".into()]);
        assert_eq!(key_of(&c), "secrets");
        c.secrets = Some(vec!["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into()]);
        c.secret = Some("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into());
        assert_eq!(key_of(&c), "secrets");
        c = minimal("x");
        c.actions = Some(vec![]);
        assert_eq!(key_of(&c), "actions");
        c = minimal("x");
        c.tags = Some(vec![]);
        assert_eq!(key_of(&c), "tags");
        c = minimal("x");
        c.timeout_ms = 0;
        assert_eq!(key_of(&c), "timeout_ms");
        c = minimal("x");
        c.retry_horizon_secs = 0;
        assert_eq!(key_of(&c), "retry_horizon_secs");
        c = minimal("x");
        c.url = "https://hooks.example/".into();
        if cfg!(feature = "https") {
            assert!(c.build().is_ok());
        } else {
            assert_eq!(key_of(&c), "url");
        }
        c = minimal("");
        assert_eq!(key_of(&c), "name");
        let msg = minimal("").build().unwrap_err().to_string();
        assert!(msg.contains("`name`"), "{msg}");
    }

    #[test]
    fn rotation_takes_several_secrets() {
        let mut c = minimal("x");
        c.secret = None;
        c.secrets = Some(vec![
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into(),
            "whsec_c2VjcmV0LWtleS1udW1iZXItdHdvLWZvci10ZXN0cw==".into(),
        ]);
        assert_eq!(c.build().unwrap().secrets.len(), 2);
    }

    #[test]
    fn validate_all_rejects_duplicate_names() {
        assert_eq!(validate_all(&[minimal("a"), minimal("b")]).unwrap().len(), 2);
        match validate_all(&[minimal("a"), minimal("b"), minimal("a")]) {
            Err(Error::Config { endpoint, key: "name", .. }) => assert_eq!(endpoint, "a"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn filter_checks_severity_actions_and_tags() {
        let c = parse(CLI_MD_EXAMPLE).unwrap().remove(0);
        assert!(c.accepts(&alert(Severity::High, Action::Kill, vec!["exfiltration"])));
        assert!(c.accepts(&alert(Severity::Critical, Action::Contain, vec!["resource-abuse", "exfiltration"])));
        assert!(!c.accepts(&alert(Severity::Medium, Action::Kill, vec!["exfiltration"])));
        assert!(!c.accepts(&alert(Severity::High, Action::Notify, vec!["exfiltration"])));
        assert!(!c.accepts(&alert(Severity::High, Action::Kill, vec!["prompt-injection"])));
        assert!(!c.accepts(&alert(Severity::High, Action::Kill, vec![])));
        // Omitted keys accept everything.
        let all = minimal("x");
        assert!(all.accepts(&alert(Severity::Low, Action::None, vec![])));
        assert!(all.accepts(&alert(Severity::Critical, Action::Kill, vec!["x"])));
    }
}
