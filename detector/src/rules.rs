//! The bridge to the rule language: which event fields rules may name (the [`Schema`]), and an
//! [`EventRecord`] that hands a decoded event and its component scores to a compiled pack without
//! copying anything.

use crate::event::Event;
use crate::score::Comp;
use std::borrow::Cow;
use std::cell::OnceCell;
use std::sync::OnceLock;
use vigil_rules::{host_and_port_of, Dynamic, FieldId, FieldType, Pack, Record, Schema};

/// What a schema field reads from an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    Kind,
    AgentId,
    Agent,
    SessionId,
    Id,
    Outcome,
    Tool,
    CallId,
    Args,
    Payload,
    Dest,
    DestHost,
    DestPort,
    Method,
    Path,
    Op,
    Cmd,
    Argv,
    Scope,
    Principal,
    Role,
    Content,
    Model,
    MetricName,
    TokensInput,
    TokensOutput,
    TokensTotal,
    LatencyMs,
    Bytes,
    BytesOut,
    BytesIn,
    MetricValue,
    Privileged,
    /// A component's score in `[0, 1]`.
    Score(Comp),
    /// The fused statistical score.
    ScoreFused,
    /// The first-seen score of the event's tool or program alone.
    ScoreFirstSeenTool,
}

const STR_FIELDS: &[(&str, Field)] = &[
    ("kind", Field::Kind),
    ("agent_id", Field::AgentId),
    ("agent", Field::Agent),
    ("session_id", Field::SessionId),
    ("id", Field::Id),
    ("outcome", Field::Outcome),
    ("tool", Field::Tool),
    ("call_id", Field::CallId),
    ("args", Field::Args),
    ("payload", Field::Payload),
    ("dest", Field::Dest),
    ("dest.host", Field::DestHost),
    ("dest.port", Field::DestPort),
    ("method", Field::Method),
    ("path", Field::Path),
    ("op", Field::Op),
    ("cmd", Field::Cmd),
    ("argv", Field::Argv),
    ("scope", Field::Scope),
    ("principal", Field::Principal),
    ("role", Field::Role),
    ("content", Field::Content),
    ("model", Field::Model),
    ("metric.name", Field::MetricName),
];

const NUM_FIELDS: &[(&str, Field)] = &[
    ("tokens.input", Field::TokensInput),
    ("tokens.output", Field::TokensOutput),
    ("tokens.total", Field::TokensTotal),
    ("latency_ms", Field::LatencyMs),
    ("bytes", Field::Bytes),
    ("bytes_out", Field::BytesOut),
    ("bytes_in", Field::BytesIn),
    ("metric.value", Field::MetricValue),
];

/// The schema rules are checked against, and what each of its fields reads.
pub struct RuleSchema {
    pub schema: Schema,
    fields: Vec<Field>,
}

impl RuleSchema {
    fn build() -> RuleSchema {
        let mut schema = Schema::new();
        let mut fields = Vec::new();
        let mut add = |name: &str, ty: FieldType, f: Field| {
            let id = schema.field(name, ty);
            if id.index() == fields.len() {
                fields.push(f);
            }
        };
        for &(n, f) in STR_FIELDS {
            add(n, FieldType::Str, f);
        }
        for &(n, f) in NUM_FIELDS {
            add(n, FieldType::Num, f);
        }
        add("privileged", FieldType::Bool, Field::Privileged);
        for c in Comp::ALL {
            add(&format!("score.{}", c.rule_name()), FieldType::Num, Field::Score(c));
        }
        add("score", FieldType::Num, Field::ScoreFused);
        add(vigil_rules::FIRST_SEEN_TOOL, FieldType::Num, Field::ScoreFirstSeenTool);
        schema.dynamic_prefix("attrs.");
        RuleSchema { schema, fields }
    }

    /// The schema of agent events (built once).
    pub fn get() -> &'static RuleSchema {
        static S: OnceLock<RuleSchema> = OnceLock::new();
        S.get_or_init(RuleSchema::build)
    }
}

/// The built-in default pack (`rules/default/`, compiled into the binary).
pub fn default_pack() -> Pack {
    // The default pack is tested against this schema in this crate's tests: it always compiles.
    vigil_rules::default_pack(&RuleSchema::get().schema)
        .expect("the default rule pack compiles against the event schema")
}

/// Loads and compiles the pack at `path` (a directory of `.yaml` files or one file) against the event
/// schema; the error lists every problem as `file:line:column: message`, one per line.
pub fn load_pack(path: &std::path::Path) -> Result<Pack, String> {
    let sources = vigil_rules::read_yaml_files(path).map_err(|d| diagnostics_text(&d))?;
    load_sources(&sources)
}

/// Compiles a pack from `(file name, text)` pairs (see [`vigil_rules::read_yaml_files`]).
pub fn load_sources(sources: &[(String, String)]) -> Result<Pack, String> {
    Pack::load_sources(sources, &RuleSchema::get().schema).map_err(|d| diagnostics_text(&d))
}

fn diagnostics_text(d: &vigil_rules::Diagnostics) -> String {
    d.0.iter().map(|x| x.to_string()).collect::<Vec<_>>().join("\n")
}

/// An event as a rule record.
pub struct EventRecord<'e, 'a> {
    ev: &'e Event<'a>,
    fields: &'e [Field],
    args: Option<Cow<'a, str>>,
    /// `dest.host` and `dest.port`, derived together once on first use (many rules read them).
    dest_host_port: OnceCell<Option<(&'e str, Option<&'e str>)>>,
    scores: [f64; Comp::COUNT],
    fused: f64,
    /// The p-value behind `score.first_seen_tool`, turned into a score only when a rule reads it.
    first_seen_tool_p: f64,
}

impl<'e, 'a> EventRecord<'e, 'a> {
    /// `scores`: every component's score (0 when not applicable); `fused`: the statistical score.
    pub fn new(ev: &'e Event<'a>, scores: [f64; Comp::COUNT], fused: f64) -> EventRecord<'e, 'a> {
        // Object arguments are read as their JSON text; a string argument as the string.
        let args = ev.args.map(|raw| {
            let t = raw.get();
            if t.starts_with('"') {
                serde_json::from_str::<Cow<'a, str>>(t).unwrap_or(Cow::Borrowed(t))
            } else {
                Cow::Borrowed(t)
            }
        });
        EventRecord {
            ev,
            fields: &RuleSchema::get().fields,
            args,
            dest_host_port: OnceCell::new(),
            scores,
            fused,
            first_seen_tool_p: 1.0,
        }
    }

    /// `dest.host` and `dest.port`, or `None` without a `dest`.
    #[inline]
    fn dest_host_port(&self) -> Option<(&'e str, Option<&'e str>)> {
        *self.dest_host_port.get_or_init(|| self.ev.dest.as_deref().map(host_and_port_of))
    }

    /// Sets the p-value behind `score.first_seen_tool`: how new the event's tool (a tool call) or
    /// program (a process) is to its class (1 when the class knows it or the event has neither).
    pub fn with_first_seen_tool_p(mut self, p: f64) -> Self {
        self.first_seen_tool_p = p;
        self
    }
}

impl Record for EventRecord<'_, '_> {
    fn str(&self, f: FieldId) -> Option<&str> {
        let ev = self.ev;
        match self.fields.get(f.index())? {
            Field::Kind => Some(&ev.kind_name),
            Field::AgentId => Some(&ev.agent_id),
            Field::Agent => Some(ev.class()),
            Field::SessionId => ev.session_id.as_deref(),
            Field::Id => ev.id.as_deref(),
            Field::Outcome => Some(ev.outcome.name()),
            Field::Tool => ev.tool.as_deref(),
            Field::CallId => ev.call_id.as_deref(),
            Field::Args => self.args.as_deref(),
            Field::Payload => ev.payload.as_deref(),
            Field::Dest => ev.dest.as_deref(),
            Field::DestHost => self.dest_host_port().map(|(h, _)| h),
            Field::DestPort => self.dest_host_port().and_then(|(_, p)| p),
            Field::Method => ev.method.as_deref(),
            Field::Path => ev.path.as_deref(),
            Field::Op => ev.op.as_deref(),
            Field::Cmd => ev.cmd.as_deref(),
            Field::Argv => ev.argv.map(|r| r.get()),
            Field::Scope => ev.scope.as_deref(),
            Field::Principal => ev.principal.as_deref(),
            Field::Role => ev.role.map(|r| r.name()),
            Field::Content => ev.content.as_deref(),
            Field::Model => ev.model.as_deref(),
            Field::MetricName => ev.metric_name.as_deref(),
            _ => None,
        }
    }

    fn num(&self, f: FieldId) -> Option<f64> {
        let ev = self.ev;
        let n = |v: Option<u64>| v.map(|v| v as f64);
        match self.fields.get(f.index())? {
            Field::TokensInput => n(ev.tokens_input),
            Field::TokensOutput => n(ev.tokens_output),
            Field::TokensTotal => n(ev.tokens_total()),
            Field::LatencyMs => n(ev.latency_ms),
            Field::Bytes => n(ev.bytes),
            Field::BytesOut => n(ev.bytes_out),
            Field::BytesIn => n(ev.bytes_in),
            Field::MetricValue => ev.metric_value,
            Field::Score(c) => Some(self.scores[*c as usize]),
            Field::ScoreFused => Some(self.fused),
            Field::ScoreFirstSeenTool => Some(vigil_models::score_from_p(self.first_seen_tool_p)),
            _ => None,
        }
    }

    fn boolean(&self, f: FieldId) -> Option<bool> {
        match self.fields.get(f.index())? {
            Field::Privileged => Some(self.ev.privileged),
            _ => None,
        }
    }

    fn dynamic(&self, prefix: &str, name: &str) -> Option<Dynamic<'_>> {
        if prefix != "attrs." {
            return None;
        }
        let attrs = self.ev.attrs?.get();
        // Attributes are small objects: parse the one asked for on demand (rules naming attrs are few).
        let map: std::collections::HashMap<&str, &serde_json::value::RawValue> = serde_json::from_str(attrs).ok()?;
        let raw = map.get(name)?.get();
        match raw.as_bytes().first()? {
            b'"' => {
                // A borrowed view when the string has no escapes.
                let inner = &raw[1..raw.len() - 1];
                (!inner.contains('\\')).then_some(Dynamic::Str(&attrs[offset_in(attrs, inner)..][..inner.len()]))
            }
            b't' => Some(Dynamic::Bool(true)),
            b'f' => Some(Dynamic::Bool(false)),
            _ => raw.parse::<f64>().ok().map(Dynamic::Num),
        }
    }

    fn ts_ms(&self) -> i64 {
        self.ev.ts_ms
    }
}

/// Byte offset of `inner` (a subslice of `outer`) within `outer`.
fn offset_in(outer: &str, inner: &str) -> usize {
    (inner.as_ptr() as usize).saturating_sub(outer.as_ptr() as usize).min(outer.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{decode, Limits};

    #[test]
    fn the_default_pack_compiles_against_the_event_schema() {
        let pack = default_pack();
        assert!(pack.rules().len() >= 12);
    }

    #[test]
    fn records_read_event_fields_and_scores() {
        let s = RuleSchema::get();
        let line = br#"{"ts":5,"agent_id":"a","kind":"net","dest":"https://x.io:8443/p","args":"plain \"q\"","attrs":{"region":"eu","n":3,"ok":true},"bytes_out":9}"#;
        let ev = decode(line, &Limits::default()).unwrap();
        let mut scores = [0.0; Comp::COUNT];
        scores[Comp::Entropy as usize] = 0.9;
        let r = EventRecord::new(&ev, scores, 0.7);
        let id = |n: &str| s.schema.lookup(n).unwrap_or_else(|| panic!("{n} is declared")).0;
        assert_eq!(r.str(id("dest.host")), Some("x.io"));
        assert_eq!(r.str(id("dest.port")), Some("8443"));
        assert_eq!(r.str(id("agent")), Some("a"));
        assert_eq!(r.str(id("outcome")), Some("ok"));
        assert_eq!(r.str(id("args")), Some("plain \"q\""));
        assert_eq!(r.num(id("bytes_out")), Some(9.0));
        assert_eq!(r.num(id("score.entropy")), Some(0.9));
        assert_eq!(r.num(id("score")), Some(0.7));
        assert_eq!(r.boolean(id("privileged")), Some(false));
        assert_eq!(r.dynamic("attrs.", "region"), Some(Dynamic::Str("eu")));
        assert_eq!(r.dynamic("attrs.", "n"), Some(Dynamic::Num(3.0)));
        assert_eq!(r.dynamic("attrs.", "ok"), Some(Dynamic::Bool(true)));
        assert_eq!(r.dynamic("attrs.", "missing"), None);
    }
}
