//! The agent event (`spec/events.md`) as the engine sees it: one flat, borrowed struct.
//!
//! Every source (files, stdin, HTTP, Kafka, OTLP) decodes into [`Event`] before detection. Strings borrow
//! from the input buffer unless they had JSON escapes; raw JSON values (`args`, `attrs`, `argv`) are kept
//! as unparsed slices. Fields of every kind live side by side: a field that does not belong to the event's
//! kind is harmless and ignored by the detectors.

use std::borrow::Cow;

/// A string field of an event: borrowed from the input unless it contained escapes.
pub type Str<'a> = Cow<'a, str>;

/// What happened (`kind`). Unknown kinds are accepted and scored only by kind-independent detectors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Kind {
    LlmCall = 0,
    ToolCall,
    ToolResult,
    Net,
    File,
    Process,
    Auth,
    Message,
    Metric,
    /// A kind this version does not know.
    Other,
}

impl Kind {
    /// Number of kinds, `Other` included: the size of per-kind tables.
    pub const COUNT: usize = 10;
    /// Every kind, in table order.
    pub const ALL: [Kind; Kind::COUNT] = [
        Kind::LlmCall,
        Kind::ToolCall,
        Kind::ToolResult,
        Kind::Net,
        Kind::File,
        Kind::Process,
        Kind::Auth,
        Kind::Message,
        Kind::Metric,
        Kind::Other,
    ];

    /// The kind named `s`; [`Kind::Other`] for names this version does not know.
    pub fn from_name(s: &str) -> Kind {
        match s {
            "llm_call" => Kind::LlmCall,
            "tool_call" => Kind::ToolCall,
            "tool_result" => Kind::ToolResult,
            "net" => Kind::Net,
            "file" => Kind::File,
            "process" => Kind::Process,
            "auth" => Kind::Auth,
            "message" => Kind::Message,
            "metric" => Kind::Metric,
            _ => Kind::Other,
        }
    }

    /// The spec name of a known kind (`"other"` for [`Kind::Other`]; the event keeps the real name).
    pub fn name(self) -> &'static str {
        match self {
            Kind::LlmCall => "llm_call",
            Kind::ToolCall => "tool_call",
            Kind::ToolResult => "tool_result",
            Kind::Net => "net",
            Kind::File => "file",
            Kind::Process => "process",
            Kind::Auth => "auth",
            Kind::Message => "message",
            Kind::Metric => "metric",
            Kind::Other => "other",
        }
    }

    /// Index into per-kind tables.
    #[inline]
    pub fn index(self) -> usize {
        self as usize
    }
}

/// How the action ended (`outcome`), a closed set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Outcome {
    #[default]
    Ok,
    Denied,
    Error,
}

impl Outcome {
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Denied => "denied",
            Outcome::Error => "error",
        }
    }

    /// The value of an `outcome` field; `None` for anything outside the closed set.
    pub fn from_name(s: &str) -> Option<Outcome> {
        match s {
            "ok" => Some(Outcome::Ok),
            "denied" => Some(Outcome::Denied),
            "error" => Some(Outcome::Error),
            _ => None,
        }
    }
}

/// Who spoke in a `message` event (`role`), a closed set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    User,
    Assistant,
    System,
    Tool,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::System => "system",
            Role::Tool => "tool",
        }
    }

    /// The value of a `role` field; `None` for anything outside the closed set.
    pub fn from_name(s: &str) -> Option<Role> {
        match s {
            "user" => Some(Role::User),
            "assistant" => Some(Role::Assistant),
            "system" => Some(Role::System),
            "tool" => Some(Role::Tool),
            _ => None,
        }
    }
}

/// `ts` as written by the producer, kept so score lines can echo it unchanged.
#[derive(Clone, Debug, PartialEq)]
pub enum TsField<'a> {
    /// Integer epoch milliseconds.
    Millis(i64),
    /// RFC 3339 text.
    Text(Str<'a>),
}

/// A JSON value kept as its text, unparsed (`args`, `attrs`, `argv`): only the decoder makes one,
/// after checking that the text is one well-formed JSON value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawJson<'a>(&'a str);

impl<'a> RawJson<'a> {
    /// `text` must be one valid JSON value without surrounding whitespace (the decoder's invariant).
    pub(crate) fn new(text: &'a str) -> RawJson<'a> {
        RawJson(text)
    }

    /// The value's JSON text, as it appeared in the input.
    pub fn get(self) -> &'a str {
        self.0
    }
}

/// One decoded agent event. Field meanings are those of `spec/events.md`.
#[derive(Clone, Debug)]
pub struct Event<'a> {
    /// Event time, epoch milliseconds (sub-millisecond digits truncated).
    pub ts_ms: i64,
    /// `ts` as written.
    pub ts: TsField<'a>,
    pub agent_id: Str<'a>,
    /// The agent's class as given; see [`Event::class`] for the defaulted value.
    pub agent: Option<Str<'a>>,
    pub session_id: Option<Str<'a>>,
    pub kind: Kind,
    /// `kind` as written (differs from `kind.name()` only for unknown kinds).
    pub kind_name: Str<'a>,
    pub id: Option<Str<'a>>,
    pub outcome: Outcome,
    pub privileged: bool,
    pub attrs: Option<RawJson<'a>>,
    // llm_call
    pub model: Option<Str<'a>>,
    pub tokens_input: Option<u64>,
    pub tokens_output: Option<u64>,
    pub latency_ms: Option<u64>,
    // tool_call / tool_result
    pub tool: Option<Str<'a>>,
    /// Object or string, unparsed.
    pub args: Option<RawJson<'a>>,
    pub call_id: Option<Str<'a>>,
    pub bytes: Option<u64>,
    pub payload: Option<Str<'a>>,
    // net
    pub dest: Option<Str<'a>>,
    pub method: Option<Str<'a>>,
    pub bytes_out: Option<u64>,
    pub bytes_in: Option<u64>,
    // file / auth
    pub path: Option<Str<'a>>,
    pub op: Option<Str<'a>>,
    // process
    pub cmd: Option<Str<'a>>,
    /// Array, unparsed.
    pub argv: Option<RawJson<'a>>,
    // auth
    pub scope: Option<Str<'a>>,
    pub principal: Option<Str<'a>>,
    // message
    pub role: Option<Role>,
    pub content: Option<Str<'a>>,
    // metric
    pub metric_name: Option<Str<'a>>,
    pub metric_value: Option<f64>,
}

impl<'a> Event<'a> {
    /// A minimal event of `kind` for `agent_id` at `ts_ms`; every optional field empty. Used by tests,
    /// benches and adapters that fill fields one by one.
    pub fn new(ts_ms: i64, agent_id: &'a str, kind: Kind) -> Event<'a> {
        Event {
            ts_ms,
            ts: TsField::Millis(ts_ms),
            agent_id: Cow::Borrowed(agent_id),
            agent: None,
            session_id: None,
            kind,
            kind_name: Cow::Borrowed(kind.name()),
            id: None,
            outcome: Outcome::Ok,
            privileged: false,
            attrs: None,
            model: None,
            tokens_input: None,
            tokens_output: None,
            latency_ms: None,
            tool: None,
            args: None,
            call_id: None,
            bytes: None,
            payload: None,
            dest: None,
            method: None,
            bytes_out: None,
            bytes_in: None,
            path: None,
            op: None,
            cmd: None,
            argv: None,
            scope: None,
            principal: None,
            role: None,
            content: None,
            metric_name: None,
            metric_value: None,
        }
    }

    /// The agent's class: `agent`, defaulting to `agent_id`.
    #[inline]
    pub fn class(&self) -> &str {
        self.agent.as_deref().unwrap_or(&self.agent_id)
    }

    /// Total tokens of an `llm_call` (input + output), when either is given.
    #[inline]
    pub fn tokens_total(&self) -> Option<u64> {
        match (self.tokens_input, self.tokens_output) {
            (None, None) => None,
            (a, b) => Some(a.unwrap_or(0).saturating_add(b.unwrap_or(0))),
        }
    }

    /// `args` as text: the string itself when `args` is a JSON string, else the serialised object.
    pub fn args_text(&self) -> Option<Cow<'a, str>> {
        let raw = self.args?.get();
        if raw.starts_with('"') {
            serde_json::from_str::<Cow<'a, str>>(raw).ok()
        } else {
            Some(Cow::Borrowed(raw))
        }
    }

    /// The symbol a sequence model reads: the tool for tool calls and results, else the kind.
    #[inline]
    pub fn step_symbol(&self) -> &str {
        match (self.kind, &self.tool) {
            (Kind::ToolCall, Some(t)) => t,
            _ => &self.kind_name,
        }
    }

    /// The host of `dest` (`host`, `host:port` or a URL), lower-cased comparison left to the caller.
    pub fn dest_host(&self) -> Option<&str> {
        self.dest.as_deref().map(host_of)
    }
}

/// The host and port of a `dest` (`host:port`, a URL, `[v6]:port`): one definition, shared with the
/// rule language's `dest.host` and `dest.port`.
pub use vigil_rules::{host_of, port_of};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_of_handles_every_dest_form() {
        assert_eq!(host_of("paste.example.net:443"), "paste.example.net");
        assert_eq!(host_of("paste.example.net"), "paste.example.net");
        assert_eq!(host_of("https://user@api.x.com:8443/v1?q=1"), "api.x.com");
        assert_eq!(host_of("[2001:db8::1]:443"), "2001:db8::1");
        assert_eq!(host_of("2001:db8::1"), "2001:db8::1");
        assert_eq!(host_of(""), "");
    }

    #[test]
    fn kinds_round_trip_their_names() {
        for k in Kind::ALL {
            if k != Kind::Other {
                assert_eq!(Kind::from_name(k.name()), k);
            }
            assert_eq!(Kind::ALL[k.index()], k);
        }
        assert_eq!(Kind::from_name("teleport"), Kind::Other);
    }
}
