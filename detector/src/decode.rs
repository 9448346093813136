//! Decoding one input record into an [`Event`], or a [`Reject`] that says exactly why not.
//!
//! The decoder enforces the whole input contract of `spec/events.md`: JSON and UTF-8 validity, required
//! fields per kind, field types, the closed value sets (`outcome`, `role`), the size limit and the nesting
//! limit, and duplicate keys (refused: two parsers could disagree on which value counts). It borrows every
//! string it can from the input and never allocates for a well-formed event without escapes.

use crate::event::{Event, Kind, Outcome, RawJson, Role, Str, TsField};
use crate::time::{parse_rfc3339_ms, MAX_TS_MS, MIN_TS_MS};
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::fmt;

mod fast;

/// Limits applied to every input record.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Largest accepted record, in bytes (default 1 MiB).
    pub max_event_bytes: usize,
    /// Deepest accepted nesting of JSON objects and arrays, the event object itself being level 1.
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_event_bytes: 1 << 20, max_depth: 64 }
    }
}

/// Why a record was rejected: the short code of a dead-letter record's `reason`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    /// Not parseable as JSON (syntax, truncation, trailing data, an empty line).
    InvalidJson,
    /// Not valid UTF-8.
    InvalidUtf8,
    /// A required field is absent.
    MissingField,
    /// A field has the wrong JSON type (or the record is not an object).
    WrongType,
    /// A field has the right type but a value outside its domain (unknown `outcome`, bad `ts` text, ...).
    InvalidValue,
    /// The same key appears twice in one object.
    DuplicateField,
    /// Larger than `max_event_bytes`.
    TooLarge,
    /// Nested deeper than the depth limit.
    TooDeep,
    /// `ts` too far ahead of the live detector's clock.
    FutureTs,
    /// Kafka message key differs from `agent_id`.
    KeyMismatch,
}

impl Reason {
    /// Every reason, for metrics that are pre-registered per reason.
    pub const ALL: [Reason; 10] = [
        Reason::InvalidJson,
        Reason::InvalidUtf8,
        Reason::MissingField,
        Reason::WrongType,
        Reason::InvalidValue,
        Reason::DuplicateField,
        Reason::TooLarge,
        Reason::TooDeep,
        Reason::FutureTs,
        Reason::KeyMismatch,
    ];

    /// The short code used in dead-letter records and metric labels.
    pub fn code(self) -> &'static str {
        match self {
            Reason::InvalidJson => "invalid_json",
            Reason::InvalidUtf8 => "invalid_utf8",
            Reason::MissingField => "missing_field",
            Reason::WrongType => "wrong_type",
            Reason::InvalidValue => "invalid_value",
            Reason::DuplicateField => "duplicate_field",
            Reason::TooLarge => "too_large",
            Reason::TooDeep => "too_deep",
            Reason::FutureTs => "future_ts",
            Reason::KeyMismatch => "key_mismatch",
        }
    }
}

/// A rejected record: the reason code and a human message naming the field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reject {
    pub reason: Reason,
    pub detail: String,
}

impl Reject {
    pub fn new(reason: Reason, detail: impl Into<String>) -> Reject {
        Reject { reason, detail: detail.into() }
    }
}

impl fmt::Display for Reject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.reason.code(), self.detail)
    }
}

/// Decodes one record (a JSON Lines line without its newline, a Kafka value, ...).
pub fn decode<'a>(bytes: &'a [u8], limits: &Limits) -> Result<Event<'a>, Reject> {
    let mut ev = Event::new(0, "", Kind::Other);
    decode_into(bytes, limits, &mut ev)?;
    Ok(ev)
}

/// [`decode`] into `ev`, which must be as [`Event::new`] leaves it (its contents are unspecified
/// after a reject). A caller that keeps events in place (a batch, a queue) saves moving the large
/// [`Event`] out of a `Result` and into its slot.
#[inline]
pub fn decode_into<'a>(bytes: &'a [u8], limits: &Limits, ev: &mut Event<'a>) -> Result<(), Reject> {
    if bytes.len() > limits.max_event_bytes {
        return Err(Reject::new(
            Reason::TooLarge,
            format!("event is {} bytes, the limit is {}", bytes.len(), limits.max_event_bytes),
        ));
    }
    let text = std::str::from_utf8(bytes)
        .map_err(|e| Reject::new(Reason::InvalidUtf8, format!("invalid UTF-8 at byte {}", e.valid_up_to())))?;
    decode_str_into(text, limits, ev)
}

/// Decodes one record already known to be UTF-8.
pub fn decode_str<'a>(text: &'a str, limits: &Limits) -> Result<Event<'a>, Reject> {
    let mut ev = Event::new(0, "", Kind::Other);
    decode_str_into(text, limits, &mut ev)?;
    Ok(ev)
}

/// [`decode_str`] into `ev`, as [`decode_into`].
fn decode_str_into<'a>(text: &'a str, limits: &Limits, ev: &mut Event<'a>) -> Result<(), Reject> {
    if text.len() > limits.max_event_bytes {
        return Err(Reject::new(
            Reason::TooLarge,
            format!("event is {} bytes, the limit is {}", text.len(), limits.max_event_bytes),
        ));
    }
    let text = text.trim_end_matches(['\r', '\n', ' ', '\t']);
    if text.trim_start().is_empty() {
        return Err(Reject::new(Reason::InvalidJson, "empty line"));
    }
    // The common case first: a well-formed event in the usual shape, scanned in one pass. Anything
    // else (including every reject) takes the full decoder below, which has the final word.
    if limits.max_depth >= 2 && fast::decode_into(text, limits.max_depth, ev) {
        return Ok(());
    }
    *ev = decode_full(text, limits)?;
    Ok(())
}

/// The full decoder: every input, every check, the precise reason of a reject. `text` is trimmed at
/// the end, within the size limit and not blank.
fn decode_full<'a>(text: &'a str, limits: &Limits) -> Result<Event<'a>, Reject> {
    let mut ctx = Ctx { field: "event", fault: None, max_depth: limits.max_depth };
    let mut de = serde_json::Deserializer::from_str(text);
    let result = EventSeed { ctx: &mut ctx }.deserialize(&mut de).and_then(|ev| {
        de.end()?;
        Ok(ev)
    });
    match result {
        Ok(ev) => Ok(ev),
        Err(e) => Err(classify(e, ctx)),
    }
}

/// Turns a serde_json error into a reject, preferring the fault our own checks recorded.
fn classify(e: serde_json::Error, ctx: Ctx) -> Reject {
    if let Some(fault) = ctx.fault {
        return fault;
    }
    let msg = e.to_string();
    if msg.contains("recursion limit") {
        return Reject::new(Reason::TooDeep, format!("nesting deeper than {} levels", ctx.max_depth));
    }
    match e.classify() {
        serde_json::error::Category::Data => Reject::new(Reason::WrongType, format!("field `{}`: {msg}", ctx.field)),
        _ => Reject::new(Reason::InvalidJson, msg),
    }
}

/// Decoding context: the field being read (for messages) and a fault raised by our own checks.
struct Ctx {
    field: &'static str,
    fault: Option<Reject>,
    max_depth: usize,
}

impl Ctx {
    fn fail<E: de::Error>(&mut self, reason: Reason, detail: String) -> E {
        let err = E::custom(&detail);
        self.fault = Some(Reject::new(reason, detail));
        err
    }

    /// Checks that a raw value nested at `level` (its own opening bracket) stays within the limit.
    fn check_depth<E: de::Error>(&mut self, raw: &RawValue, level: usize) -> Result<(), E> {
        // Each level of nesting takes two bytes (`[` and `]`): a short value cannot be too deep.
        if raw.get().len() < 2 * (self.max_depth + 2 - level) {
            return Ok(());
        }
        let depth = json_depth(raw.get());
        if depth > 0 && level - 1 + depth > self.max_depth {
            let field = self.field;
            return Err(
                self.fail(Reason::TooDeep, format!("field `{field}` nests deeper than {} levels", self.max_depth))
            );
        }
        Ok(())
    }
}

/// Maximum nesting of objects and arrays in a JSON text (0 for a scalar). The text is valid JSON.
pub fn json_depth(text: &str) -> usize {
    let b = text.as_bytes();
    let (mut depth, mut max, mut i) = (0usize, 0usize, 0usize);
    while i < b.len() {
        match b[i] {
            b'"' => {
                i += 1;
                while i < b.len() {
                    match b[i] {
                        b'\\' => i += 2,
                        b'"' => break,
                        _ => i += 1,
                    }
                }
            }
            b'{' | b'[' => {
                depth += 1;
                max = max.max(depth);
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    max
}

/// Known top-level keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    Ts,
    AgentId,
    Agent,
    SessionId,
    Kind,
    Id,
    Outcome,
    Privileged,
    Attrs,
    Model,
    Tokens,
    LatencyMs,
    Tool,
    Args,
    CallId,
    Bytes,
    Payload,
    Dest,
    Method,
    BytesOut,
    BytesIn,
    Path,
    Op,
    Cmd,
    Argv,
    Scope,
    Principal,
    Role,
    Content,
    Metric,
    Unknown,
}

impl Field {
    fn from_key(k: &str) -> Field {
        match k {
            "ts" => Field::Ts,
            "agent_id" => Field::AgentId,
            "agent" => Field::Agent,
            "session_id" => Field::SessionId,
            "kind" => Field::Kind,
            "id" => Field::Id,
            "outcome" => Field::Outcome,
            "privileged" => Field::Privileged,
            "attrs" => Field::Attrs,
            "model" => Field::Model,
            "tokens" => Field::Tokens,
            "latency_ms" => Field::LatencyMs,
            "tool" => Field::Tool,
            "args" => Field::Args,
            "call_id" => Field::CallId,
            "bytes" => Field::Bytes,
            "payload" => Field::Payload,
            "dest" => Field::Dest,
            "method" => Field::Method,
            "bytes_out" => Field::BytesOut,
            "bytes_in" => Field::BytesIn,
            "path" => Field::Path,
            "op" => Field::Op,
            "cmd" => Field::Cmd,
            "argv" => Field::Argv,
            "scope" => Field::Scope,
            "principal" => Field::Principal,
            "role" => Field::Role,
            "content" => Field::Content,
            "metric" => Field::Metric,
            _ => Field::Unknown,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Field::Ts => "ts",
            Field::AgentId => "agent_id",
            Field::Agent => "agent",
            Field::SessionId => "session_id",
            Field::Kind => "kind",
            Field::Id => "id",
            Field::Outcome => "outcome",
            Field::Privileged => "privileged",
            Field::Attrs => "attrs",
            Field::Model => "model",
            Field::Tokens => "tokens",
            Field::LatencyMs => "latency_ms",
            Field::Tool => "tool",
            Field::Args => "args",
            Field::CallId => "call_id",
            Field::Bytes => "bytes",
            Field::Payload => "payload",
            Field::Dest => "dest",
            Field::Method => "method",
            Field::BytesOut => "bytes_out",
            Field::BytesIn => "bytes_in",
            Field::Path => "path",
            Field::Op => "op",
            Field::Cmd => "cmd",
            Field::Argv => "argv",
            Field::Scope => "scope",
            Field::Principal => "principal",
            Field::Role => "role",
            Field::Content => "content",
            Field::Metric => "metric",
            Field::Unknown => "?",
        }
    }
}

/// An object key, borrowed when it has no escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> de::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(StrVisitor).map(Key)
    }
}

/// Reads a string, borrowing it when possible.
struct StrVisitor;

impl<'de> Visitor<'de> for StrVisitor {
    type Value = Cow<'de, str>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v))
    }
}

/// An optional string field: `null` reads as absent.
struct OptStr<'de>(Option<Cow<'de, str>>);

impl<'de> de::Deserialize<'de> for OptStr<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = OptStr<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(OptStr(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(OptStr(None))
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                d.deserialize_str(StrVisitor).map(|s| OptStr(Some(s)))
            }
        }
        d.deserialize_option(V)
    }
}

/// `ts`: RFC 3339 text or integer epoch milliseconds.
struct TsVisitor;

enum TsRead<'de> {
    Millis(i64),
    Text(Cow<'de, str>),
}

impl<'de> Visitor<'de> for TsVisitor {
    type Value = TsRead<'de>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an RFC 3339 string or integer epoch milliseconds")
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        i64::try_from(v).map(TsRead::Millis).map_err(|_| E::custom("epoch milliseconds out of range"))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(TsRead::Millis(v))
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(TsRead::Text(Cow::Borrowed(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(TsRead::Text(Cow::Owned(v.to_owned())))
    }
}

struct EventSeed<'c> {
    ctx: &'c mut Ctx,
}

impl<'de> DeserializeSeed<'de> for EventSeed<'_> {
    type Value = Event<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(EventVisitor { ctx: self.ctx })
    }
}

struct EventVisitor<'c> {
    ctx: &'c mut Ctx,
}

/// The `tokens` object.
#[derive(Default)]
struct Tokens {
    input: Option<u64>,
    output: Option<u64>,
}

/// The `metric` object.
struct MetricObj<'de> {
    name: Option<Cow<'de, str>>,
    value: Option<f64>,
}

impl<'de> EventVisitor<'_> {
    fn sub_object<A: MapAccess<'de>>(&mut self, map: &mut A, field: Field) -> Result<SubObject<'de>, A::Error> {
        let raw: Option<&'de RawValue> = map.next_value()?;
        let Some(raw) = raw else {
            return Ok(SubObject::Null);
        };
        if !raw.get().starts_with('{') {
            return Err(self.ctx.fail(Reason::WrongType, format!("field `{}` must be an object", field.name())));
        }
        self.ctx.check_depth(raw, 2)?;
        let mut de = serde_json::Deserializer::from_str(raw.get());
        let parsed = match field {
            Field::Tokens => de.deserialize_map(TokensVisitor).map(SubObject::Tokens),
            _ => de.deserialize_map(MetricVisitor).map(SubObject::Metric),
        };
        parsed.map_err(|e| {
            let detail = format!("field `{}`: {}", field.name(), strip_position(&e.to_string()));
            let reason = if detail.contains("missing field") {
                Reason::MissingField
            } else if detail.contains("duplicate field") {
                Reason::DuplicateField
            } else {
                Reason::WrongType
            };
            self.ctx.fail(reason, detail)
        })
    }
}

/// Drops serde_json's " at line 1 column 9" (positions inside a sub-object would mislead).
fn strip_position(msg: &str) -> &str {
    match msg.find(" at line ") {
        Some(i) => &msg[..i],
        None => msg,
    }
}

enum SubObject<'de> {
    Null,
    Tokens(Tokens),
    Metric(MetricObj<'de>),
}

struct TokensVisitor;

impl<'de> Visitor<'de> for TokensVisitor {
    type Value = Tokens;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object with non-negative integer `input` and `output`")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Tokens, A::Error> {
        let mut t = Tokens::default();
        while let Some(Key(k)) = map.next_key()? {
            match &*k {
                "input" if t.input.is_none() => t.input = map.next_value()?,
                "output" if t.output.is_none() => t.output = map.next_value()?,
                "input" | "output" => return Err(de::Error::custom(format!("duplicate field `{k}`"))),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(t)
    }
}

struct MetricVisitor;

impl<'de> Visitor<'de> for MetricVisitor {
    type Value = MetricObj<'de>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object with string `name` and number `value`")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<MetricObj<'de>, A::Error> {
        let mut m = MetricObj { name: None, value: None };
        let (mut seen_name, mut seen_value) = (false, false);
        while let Some(Key(k)) = map.next_key()? {
            match &*k {
                "name" if !seen_name => {
                    seen_name = true;
                    m.name = map.next_value::<OptStr>()?.0;
                }
                "value" if !seen_value => {
                    seen_value = true;
                    m.value = map.next_value()?;
                }
                "name" | "value" => return Err(de::Error::custom(format!("duplicate field `{k}`"))),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(m)
    }
}

impl<'de> Visitor<'de> for EventVisitor<'_> {
    type Value = Event<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an event object")
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<Event<'de>, A::Error> {
        let mut ev = Event::new(0, "", Kind::Other);
        let mut ts: Option<TsRead<'de>> = None;
        let mut agent_id: Option<Str<'de>> = None;
        let mut kind: Option<Str<'de>> = None;
        let mut outcome: Option<Str<'de>> = None;
        let mut role: Option<Str<'de>> = None;
        let mut metric: Option<MetricObj<'de>> = None;
        let mut seen: u64 = 0;

        while let Some(Key(key)) = map.next_key()? {
            let field = Field::from_key(&key);
            self.ctx.field = field.name();
            if field != Field::Unknown {
                let bit = 1u64 << (field as u32);
                if seen & bit != 0 {
                    return Err(self
                        .ctx
                        .fail(Reason::DuplicateField, format!("field `{}` appears twice", field.name())));
                }
                seen |= bit;
            }
            macro_rules! str_field {
                () => {
                    map.next_value::<OptStr<'de>>()?.0
                };
            }
            match field {
                Field::Ts => ts = map.next_value_seed(OptTs)?,
                Field::AgentId => agent_id = str_field!(),
                Field::Agent => ev.agent = str_field!(),
                Field::SessionId => ev.session_id = str_field!(),
                Field::Kind => kind = str_field!(),
                Field::Id => ev.id = str_field!(),
                Field::Outcome => outcome = str_field!(),
                Field::Privileged => ev.privileged = map.next_value::<Option<bool>>()?.unwrap_or(false),
                Field::Attrs => {
                    let raw: Option<&'de RawValue> = map.next_value()?;
                    if let Some(raw) = raw {
                        if !raw.get().starts_with('{') {
                            return Err(self.ctx.fail(Reason::WrongType, "field `attrs` must be an object".into()));
                        }
                        self.ctx.check_depth(raw, 2)?;
                        ev.attrs = Some(RawJson::new(raw.get()));
                    }
                }
                Field::Model => ev.model = str_field!(),
                Field::Tokens => {
                    if let SubObject::Tokens(t) = self.sub_object(&mut map, field)? {
                        ev.tokens_input = t.input;
                        ev.tokens_output = t.output;
                    }
                }
                Field::LatencyMs => ev.latency_ms = map.next_value()?,
                Field::Tool => ev.tool = str_field!(),
                Field::Args => {
                    let raw: Option<&'de RawValue> = map.next_value()?;
                    if let Some(raw) = raw {
                        if !matches!(raw.get().as_bytes().first(), Some(b'{' | b'"')) {
                            return Err(self
                                .ctx
                                .fail(Reason::WrongType, "field `args` must be an object or a string".into()));
                        }
                        self.ctx.check_depth(raw, 2)?;
                        ev.args = Some(RawJson::new(raw.get()));
                    }
                }
                Field::CallId => ev.call_id = str_field!(),
                Field::Bytes => ev.bytes = map.next_value()?,
                Field::Payload => ev.payload = str_field!(),
                Field::Dest => ev.dest = str_field!(),
                Field::Method => ev.method = str_field!(),
                Field::BytesOut => ev.bytes_out = map.next_value()?,
                Field::BytesIn => ev.bytes_in = map.next_value()?,
                Field::Path => ev.path = str_field!(),
                Field::Op => ev.op = str_field!(),
                Field::Cmd => ev.cmd = str_field!(),
                Field::Argv => {
                    let raw: Option<&'de RawValue> = map.next_value()?;
                    if let Some(raw) = raw {
                        if !raw.get().starts_with('[') {
                            return Err(self.ctx.fail(Reason::WrongType, "field `argv` must be an array".into()));
                        }
                        self.ctx.check_depth(raw, 2)?;
                        ev.argv = Some(RawJson::new(raw.get()));
                    }
                }
                Field::Scope => ev.scope = str_field!(),
                Field::Principal => ev.principal = str_field!(),
                Field::Role => role = str_field!(),
                Field::Content => ev.content = str_field!(),
                Field::Metric => {
                    if let SubObject::Metric(m) = self.sub_object(&mut map, field)? {
                        metric = Some(m);
                    }
                }
                Field::Unknown => {
                    let raw: &'de RawValue = map.next_value()?;
                    self.ctx.field = "?";
                    if raw.get().len() >= 2 * self.ctx.max_depth && json_depth(raw.get()) + 1 > self.ctx.max_depth {
                        return Err(self.ctx.fail(
                            Reason::TooDeep,
                            format!("field `{key}` nests deeper than {} levels", self.ctx.max_depth),
                        ));
                    }
                }
            }
        }
        self.ctx.field = "event";
        self.finish(ev, ts, agent_id, kind, outcome, role, metric)
    }
}

/// `ts` where `null` reads as absent (and then fails as missing).
struct OptTs;

impl<'de> DeserializeSeed<'de> for OptTs {
    type Value = Option<TsRead<'de>>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Option<TsRead<'de>>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an RFC 3339 string or integer epoch milliseconds")
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                d.deserialize_any(TsVisitor).map(Some)
            }
        }
        d.deserialize_option(V)
    }
}

impl<'de> EventVisitor<'_> {
    #[allow(clippy::too_many_arguments)]
    fn finish<E: de::Error>(
        &mut self,
        mut ev: Event<'de>,
        ts: Option<TsRead<'de>>,
        agent_id: Option<Str<'de>>,
        kind: Option<Str<'de>>,
        outcome: Option<Str<'de>>,
        role: Option<Str<'de>>,
        metric: Option<MetricObj<'de>>,
    ) -> Result<Event<'de>, E> {
        let missing =
            |ctx: &mut Ctx, name: &str| ctx.fail::<E>(Reason::MissingField, format!("missing field `{name}`"));
        let invalid = |ctx: &mut Ctx, detail: String| ctx.fail::<E>(Reason::InvalidValue, detail);

        let Some(ts) = ts else {
            return Err(missing(self.ctx, "ts"));
        };
        match ts {
            TsRead::Millis(ms) => {
                if !(MIN_TS_MS..=MAX_TS_MS).contains(&ms) {
                    return Err(invalid(self.ctx, format!("field `ts`: epoch milliseconds {ms} out of range")));
                }
                ev.ts_ms = ms;
                ev.ts = TsField::Millis(ms);
            }
            TsRead::Text(s) => {
                let Some(ms) = parse_rfc3339_ms(&s) else {
                    return Err(invalid(self.ctx, format!("field `ts`: {s:?} is not an RFC 3339 time")));
                };
                ev.ts_ms = ms;
                ev.ts = TsField::Text(s);
            }
        }

        let Some(agent_id) = agent_id else {
            return Err(missing(self.ctx, "agent_id"));
        };
        if agent_id.is_empty() || agent_id.len() > 256 {
            return Err(invalid(self.ctx, format!("field `agent_id` must be 1..256 bytes, is {}", agent_id.len())));
        }
        ev.agent_id = agent_id;

        let Some(kind) = kind else {
            return Err(missing(self.ctx, "kind"));
        };
        ev.kind = Kind::from_name(&kind);
        ev.kind_name = kind;

        if let Some(o) = outcome {
            ev.outcome = Outcome::from_name(&o).ok_or_else(|| {
                invalid(self.ctx, format!("field `outcome`: {:?} is not one of ok, denied, error", &*o))
            })?;
        }
        if let Some(r) = role {
            ev.role = Some(Role::from_name(&r).ok_or_else(|| {
                invalid(self.ctx, format!("field `role`: {:?} is not one of user, assistant, system, tool", &*r))
            })?);
        }
        if let Some(m) = metric {
            ev.metric_name = m.name;
            ev.metric_value = m.value;
        }

        let required: &[(&str, bool)] = match ev.kind {
            Kind::ToolCall => &[("tool", ev.tool.is_some())],
            Kind::Net => &[("dest", ev.dest.is_some())],
            Kind::File => &[("path", ev.path.is_some())],
            Kind::Process => &[("cmd", ev.cmd.is_some())],
            Kind::Metric => &[("metric.name", ev.metric_name.is_some()), ("metric.value", ev.metric_value.is_some())],
            _ => &[],
        };
        for &(name, present) in required {
            if !present {
                return Err(self.ctx.fail(
                    Reason::MissingField,
                    format!("missing field `{name}` (required for kind {})", ev.kind.name()),
                ));
            }
        }
        Ok(ev)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ok(s: &str) -> Event<'_> {
        decode(s.as_bytes(), &Limits::default()).unwrap_or_else(|r| panic!("{s}: {r}"))
    }

    fn rejected(s: &[u8]) -> Reject {
        match decode(s, &Limits::default()) {
            Ok(_) => panic!("accepted {}", String::from_utf8_lossy(s)),
            Err(r) => r,
        }
    }

    #[test]
    fn decodes_the_spec_examples() {
        let e = ok(
            r#"{"ts":"2026-11-27T05:00:00.120Z","agent_id":"support-7","agent":"support-bot","session_id":"s-91","kind":"llm_call","model":"m-large","tokens":{"input":1830,"output":212}}"#,
        );
        assert_eq!(e.kind, Kind::LlmCall);
        assert_eq!(e.tokens_total(), Some(2042));
        assert_eq!(e.class(), "support-bot");
        assert!(matches!(e.agent_id, Cow::Borrowed(_)));

        let e = ok(
            r#"{"ts":1795756802500,"agent_id":"support-7","kind":"auth","op":"sudo","privileged":true,"outcome":"denied"}"#,
        );
        assert_eq!(e.ts_ms, 1_795_756_802_500);
        assert_eq!(e.outcome, Outcome::Denied);
        assert!(e.privileged);
        assert_eq!(e.class(), "support-7");

        let e = ok(
            r#"{"ts":"2026-11-27T05:00:03Z","agent_id":"etl-2","kind":"metric","metric":{"name":"cost_usd","value":0.013}}"#,
        );
        assert_eq!(e.metric_name.as_deref(), Some("cost_usd"));
        assert_eq!(e.metric_value, Some(0.013));

        let e = ok(
            r#"{"ts":"2026-11-27T05:00:01.004Z","agent_id":"a","kind":"tool_call","tool":"crm.lookup","args":{"customer":"C-1182"}}"#,
        );
        assert_eq!(e.args.unwrap().get(), r#"{"customer":"C-1182"}"#);
        assert_eq!(e.step_symbol(), "crm.lookup");
    }

    #[test]
    fn unknown_kinds_and_fields_are_accepted() {
        let e = ok(r#"{"ts":0,"agent_id":"a","kind":"teleport","extra":{"x":[1,2]},"attrs":{"k":"v"}}"#);
        assert_eq!(e.kind, Kind::Other);
        assert_eq!(e.kind_name, "teleport");
        assert_eq!(e.step_symbol(), "teleport");
    }

    #[test]
    fn nulls_read_as_absent() {
        let e = ok(r#"{"ts":0,"agent_id":"a","kind":"llm_call","session_id":null,"tokens":null,"args":null}"#);
        assert!(e.session_id.is_none());
        assert!(e.tokens_total().is_none());
    }

    #[test]
    fn escaped_strings_are_unescaped() {
        let e = ok(r#"{"ts":0,"agent_id":"a\u0041","kind":"file","path":"/tmp/\"x\""}"#);
        assert_eq!(e.agent_id, "aA");
        assert_eq!(e.path.as_deref(), Some("/tmp/\"x\""));
    }

    #[test]
    fn every_rejection_has_its_reason() {
        let cases: &[(&[u8], Reason, &str)] = &[
            (b"{not json", Reason::InvalidJson, ""),
            (b"", Reason::InvalidJson, "empty"),
            (b"{\"ts\":0,\"agent_id\":\"a\",\"kind\":\"x\"} trailing", Reason::InvalidJson, ""),
            (b"{\"ts\":0,\"agent_id\":\"\xff\",\"kind\":\"x\"}", Reason::InvalidUtf8, "byte"),
            (br#"{"agent_id":"a","kind":"x"}"#, Reason::MissingField, "`ts`"),
            (br#"{"ts":0,"kind":"x"}"#, Reason::MissingField, "`agent_id`"),
            (br#"{"ts":0,"agent_id":"a"}"#, Reason::MissingField, "`kind`"),
            (br#"{"ts":0,"agent_id":"a","kind":"tool_call"}"#, Reason::MissingField, "`tool`"),
            (br#"{"ts":0,"agent_id":"a","kind":"net"}"#, Reason::MissingField, "`dest`"),
            (br#"{"ts":0,"agent_id":"a","kind":"file"}"#, Reason::MissingField, "`path`"),
            (br#"{"ts":0,"agent_id":"a","kind":"process"}"#, Reason::MissingField, "`cmd`"),
            (br#"{"ts":0,"agent_id":"a","kind":"metric","metric":{"name":"x"}}"#, Reason::MissingField, "metric.value"),
            (br#"{"ts":0,"agent_id":"a","kind":"metric"}"#, Reason::MissingField, "metric.name"),
            (br#"{"ts":0,"agent_id":7,"kind":"x"}"#, Reason::WrongType, "`agent_id`"),
            (br#"{"ts":1.5,"agent_id":"a","kind":"x"}"#, Reason::WrongType, "`ts`"),
            (br#"{"ts":0,"agent_id":"a","kind":"llm_call","tokens":{"input":-1}}"#, Reason::WrongType, "`tokens`"),
            (br#"{"ts":0,"agent_id":"a","kind":"net","dest":"h","bytes_out":"9"}"#, Reason::WrongType, "`bytes_out`"),
            (br#"{"ts":0,"agent_id":"a","kind":"x","privileged":"yes"}"#, Reason::WrongType, "`privileged`"),
            (br#"{"ts":0,"agent_id":"a","kind":"x","args":[1]}"#, Reason::WrongType, "`args`"),
            (br#"{"ts":0,"agent_id":"a","kind":"x","attrs":"s"}"#, Reason::WrongType, "`attrs`"),
            (
                br#"{"ts":0,"agent_id":"a","kind":"metric","metric":{"name":"x","value":"1"}}"#,
                Reason::WrongType,
                "`metric`",
            ),
            (br#"[1,2]"#, Reason::WrongType, "event"),
            (br#"{"ts":"yesterday","agent_id":"a","kind":"x"}"#, Reason::InvalidValue, "`ts`"),
            (br#"{"ts":-1,"agent_id":"a","kind":"x"}"#, Reason::InvalidValue, "`ts`"),
            (br#"{"ts":0,"agent_id":"","kind":"x"}"#, Reason::InvalidValue, "`agent_id`"),
            (br#"{"ts":0,"agent_id":"a","kind":"x","outcome":"maybe"}"#, Reason::InvalidValue, "`outcome`"),
            (br#"{"ts":0,"agent_id":"a","kind":"message","role":"god"}"#, Reason::InvalidValue, "`role`"),
            (br#"{"ts":0,"ts":1,"agent_id":"a","kind":"x"}"#, Reason::DuplicateField, "`ts`"),
        ];
        for (input, reason, needle) in cases {
            let r = rejected(input);
            assert_eq!(r.reason, *reason, "{}: {r}", String::from_utf8_lossy(input));
            assert!(r.detail.contains(needle), "{}: {r} lacks {needle}", String::from_utf8_lossy(input));
        }
    }

    #[test]
    fn agent_id_limit_is_256_bytes() {
        let long = "x".repeat(256);
        ok(&format!(r#"{{"ts":0,"agent_id":"{long}","kind":"x"}}"#));
        let r = rejected(format!(r#"{{"ts":0,"agent_id":"{long}y","kind":"x"}}"#).as_bytes());
        assert_eq!(r.reason, Reason::InvalidValue);
    }

    #[test]
    fn size_limit_applies_before_parsing() {
        let limits = Limits { max_event_bytes: 40, ..Limits::default() };
        let line = br#"{"ts":0,"agent_id":"a","kind":"x","attrs":{"k":"0123456789"}}"#;
        assert_eq!(decode(line, &limits).unwrap_err().reason, Reason::TooLarge);
    }

    fn nested(field: &str, depth: usize) -> String {
        format!(r#"{{"ts":0,"agent_id":"a","kind":"x","{field}":{}1{}}}"#, "[".repeat(depth), "]".repeat(depth))
    }

    #[test]
    fn nesting_limit_is_64_levels_everywhere() {
        // The event object is level 1, so a field may nest 63 more levels.
        ok(&nested("extra", 63));
        for depth in [64, 100, 200] {
            let r = rejected(nested("extra", depth).as_bytes());
            assert_eq!(r.reason, Reason::TooDeep, "depth {depth}: {r}");
        }
        let attrs = format!(
            r#"{{"ts":0,"agent_id":"a","kind":"x","attrs":{}{}}}"#,
            r#"{"a":"#.repeat(64) + "1",
            "}".repeat(64)
        );
        assert_eq!(rejected(attrs.as_bytes()).reason, Reason::TooDeep);
    }

    #[test]
    fn json_depth_ignores_brackets_in_strings() {
        assert_eq!(json_depth(r#"{"a":"[[[{{{\"]]"}"#), 1);
        assert_eq!(json_depth("3"), 0);
        assert_eq!(json_depth("[[],[[1]]]"), 3);
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode(&bytes, &Limits::default());
        }

        #[test]
        fn arbitrary_json_like_text_never_panics(s in r#"[{}\[\]":,a-z0-9 .\\-]{0,80}"#) {
            let _ = decode(s.as_bytes(), &Limits::default());
        }

        #[test]
        fn string_fields_round_trip(agent in "[^\u{0}]{1,40}", tool in "\\PC{0,40}") {
            let line = serde_json::json!({"ts": 5, "agent_id": agent, "kind": "tool_call", "tool": tool}).to_string();
            let e = decode(line.as_bytes(), &Limits::default());
            if agent.len() <= 256 {
                let e = e.unwrap();
                prop_assert_eq!(&*e.agent_id, &*agent);
                prop_assert_eq!(e.tool.as_deref(), Some(&*tool));
            }
        }
    }
}
