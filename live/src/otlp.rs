//! OpenTelemetry GenAI spans (OTLP/HTTP JSON) mapped onto agent events (`spec/events.md`).
//!
//! `execute_tool` spans become `tool_call` events; `chat`, `text_completion` and `generate_content`
//! become `llm_call` events. Identity (`gen_ai.agent.id`, `gen_ai.agent.name`, `gen_ai.conversation.id`)
//! comes from the span, else its resource, else its `invoke_agent` ancestor. Tool spans usually carry
//! no identity and are usually exported before their parents, so spans whose ancestor is not known
//! yet wait in a bounded buffer; when the buffer overflows the oldest is released without an
//! `agent_id` and is dead-lettered (`missing_field`) — counted and kept, never silently dropped.

use crate::http::SOURCE_OTLP;
use crate::processor::Record;
use serde_json::{json, Map, Value};
use std::collections::{HashMap, VecDeque};

/// Span relations remembered across requests.
const MAX_SPANS: usize = 100_000;
/// Mappable spans waiting for their identity.
const MAX_PENDING: usize = 10_000;
/// Longest ancestor chain followed.
const MAX_DEPTH: usize = 64;

#[derive(Clone, Debug, Default, PartialEq)]
struct Identity {
    agent_id: Option<String>,
    agent: Option<String>,
    session: Option<String>,
}

impl Identity {
    fn merge(&mut self, other: &Identity) {
        if self.agent_id.is_none() {
            self.agent_id.clone_from(&other.agent_id);
        }
        if self.agent.is_none() {
            self.agent.clone_from(&other.agent);
        }
        if self.session.is_none() {
            self.session.clone_from(&other.session);
        }
    }
}

struct SpanInfo {
    parent: Option<String>,
    /// Identity an `invoke_agent` span (or any span carrying agent attributes) gives its subtree.
    identity: Option<Identity>,
}

/// A mapped span waiting for its identity.
struct Pending {
    trace: String,
    parent: Option<String>,
    event: Map<String, Value>,
    own: Identity,
}

/// Maps OTLP JSON requests to event records, remembering span relations across requests.
#[derive(Default)]
pub struct OtlpMapper {
    spans: HashMap<(String, String), SpanInfo>,
    order: VecDeque<(String, String)>,
    pending: VecDeque<Pending>,
    next_offset: u64,
}

fn any_value(v: &Value) -> Option<Value> {
    let o = v.as_object()?;
    if let Some(s) = o.get("stringValue") {
        return Some(s.clone());
    }
    if let Some(i) = o.get("intValue") {
        // OTLP JSON encodes 64-bit integers as strings.
        return match i {
            Value::String(s) => s.parse::<i64>().ok().map(Value::from),
            n => Some(n.clone()),
        };
    }
    o.get("doubleValue").or_else(|| o.get("boolValue")).cloned()
}

fn attributes(v: Option<&Value>) -> HashMap<String, Value> {
    let mut out = HashMap::new();
    if let Some(Value::Array(items)) = v {
        for kv in items {
            if let (Some(Value::String(k)), Some(val)) = (kv.get("key"), kv.get("value").and_then(any_value)) {
                out.insert(k.clone(), val);
            }
        }
    }
    out
}

fn text(attrs: &HashMap<String, Value>, key: &str) -> Option<String> {
    match attrs.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn identity_of(attrs: &HashMap<String, Value>) -> Identity {
    Identity {
        agent_id: text(attrs, "gen_ai.agent.id"),
        agent: text(attrs, "gen_ai.agent.name"),
        session: text(attrs, "gen_ai.conversation.id"),
    }
}

fn nanos_to_ms(v: Option<&Value>) -> Option<i64> {
    match v? {
        Value::String(s) => s.parse::<u128>().ok().map(|n| (n / 1_000_000) as i64),
        Value::Number(n) => n.as_u64().map(|n| (n / 1_000_000) as i64),
        _ => None,
    }
}

impl OtlpMapper {
    fn remember(&mut self, key: (String, String), info: SpanInfo) {
        if !self.spans.contains_key(&key) {
            self.order.push_back(key.clone());
        }
        self.spans.insert(key, info);
        while self.spans.len() > MAX_SPANS {
            if let Some(old) = self.order.pop_front() {
                self.spans.remove(&old);
            } else {
                break;
            }
        }
    }

    /// Identity inherited from the nearest known ancestor that has one.
    fn inherited(&self, trace: &str, parent: Option<String>) -> Option<Identity> {
        let mut next = parent;
        for _ in 0..MAX_DEPTH {
            let info = self.spans.get(&(trace.to_string(), next?))?;
            if let Some(id) = &info.identity {
                return Some(id.clone());
            }
            next = info.parent.clone();
        }
        None
    }

    fn record(&mut self, mut event: Map<String, Value>, id: &Identity) -> Record {
        if let Some(a) = &id.agent_id {
            event.insert("agent_id".into(), json!(a));
        }
        if let Some(a) = &id.agent {
            event.insert("agent".into(), json!(a));
        }
        if let Some(s) = &id.session {
            event.insert("session_id".into(), json!(s));
        }
        self.next_offset += 1;
        Record {
            bytes: serde_json::to_vec(&Value::Object(event)).unwrap_or_default(),
            source: SOURCE_OTLP,
            offset: self.next_offset,
            key: None,
        }
    }

    /// Maps one request body to records (events whose identity is known, and spans released from the
    /// waiting buffer).
    pub fn map_request(&mut self, body: &[u8]) -> Result<Vec<Record>, String> {
        let req: Value = serde_json::from_slice(body).map_err(|e| format!("body is not OTLP JSON: {e}"))?;
        let Some(resource_spans) = req.get("resourceSpans").and_then(Value::as_array) else {
            return Err("body has no `resourceSpans` array".into());
        };
        let mut mapped: Vec<Pending> = Vec::new();
        for rs in resource_spans {
            let resource = attributes(rs.pointer("/resource/attributes"));
            let resource_id = identity_of(&resource);
            for ss in rs.get("scopeSpans").and_then(Value::as_array).into_iter().flatten() {
                for span in ss.get("spans").and_then(Value::as_array).into_iter().flatten() {
                    let (Some(trace), Some(span_id)) =
                        (span.get("traceId").and_then(Value::as_str), span.get("spanId").and_then(Value::as_str))
                    else {
                        continue;
                    };
                    let parent =
                        span.get("parentSpanId").and_then(Value::as_str).filter(|p| !p.is_empty()).map(str::to_string);
                    let attrs = attributes(span.get("attributes"));
                    let own = identity_of(&attrs);
                    let op = text(&attrs, "gen_ai.operation.name").unwrap_or_default();
                    let gives_identity = op == "invoke_agent" || own.agent_id.is_some();
                    let mut subtree = own.clone();
                    subtree.merge(&resource_id);
                    self.remember(
                        (trace.to_string(), span_id.to_string()),
                        SpanInfo { parent: parent.clone(), identity: gives_identity.then(|| subtree.clone()) },
                    );
                    let Some(event) = map_span(&op, span, &attrs) else { continue };
                    mapped.push(Pending { trace: trace.to_string(), parent, event, own: subtree });
                }
            }
        }
        // Resolve this request's spans after all of its relations are known (children first is usual).
        let mut out = Vec::new();
        for p in mapped {
            self.pending.push_back(p);
        }
        let mut still = VecDeque::new();
        while let Some(p) = self.pending.pop_front() {
            let mut id = p.own.clone();
            if id.agent_id.is_none() {
                if let Some(inherited) = self.inherited(&p.trace, p.parent.clone()) {
                    id.merge(&inherited);
                }
            }
            if id.agent_id.is_some() {
                out.push(self.record(p.event, &id));
            } else {
                still.push_back(p);
            }
        }
        while still.len() > MAX_PENDING {
            // Released without identity: the decoder rejects it (missing agent_id), and it is kept.
            if let Some(p) = still.pop_front() {
                let id = p.own.clone();
                out.push(self.record(p.event, &id));
            }
        }
        self.pending = still;
        Ok(out)
    }

    /// Spans still waiting for their identity.
    pub fn waiting(&self) -> usize {
        self.pending.len()
    }
}

/// The event of a mappable span (without identity), or `None` for spans vigil does not map.
fn map_span(op: &str, span: &Value, attrs: &HashMap<String, Value>) -> Option<Map<String, Value>> {
    let mut e = Map::new();
    let ts = nanos_to_ms(span.get("startTimeUnixNano")).unwrap_or(0);
    e.insert("ts".into(), json!(ts));
    match op {
        "execute_tool" => {
            e.insert("kind".into(), json!("tool_call"));
            e.insert("tool".into(), json!(text(attrs, "gen_ai.tool.name").unwrap_or_default()));
            if let Some(c) = text(attrs, "gen_ai.tool.call.id") {
                e.insert("call_id".into(), json!(c));
            }
            if let Some(a) = attrs.get("gen_ai.tool.call.arguments") {
                e.insert("args".into(), a.clone());
            }
        }
        "chat" | "text_completion" | "generate_content" => {
            e.insert("kind".into(), json!("llm_call"));
            if let Some(m) = text(attrs, "gen_ai.request.model") {
                e.insert("model".into(), json!(m));
            }
            let tokens: Map<String, Value> =
                [("input", "gen_ai.usage.input_tokens"), ("output", "gen_ai.usage.output_tokens")]
                    .into_iter()
                    .filter_map(|(k, a)| attrs.get(a).and_then(Value::as_u64).map(|v| (k.to_string(), json!(v))))
                    .collect();
            if !tokens.is_empty() {
                e.insert("tokens".into(), Value::Object(tokens));
            }
            if let (Some(s), Some(end)) =
                (nanos_to_ms(span.get("startTimeUnixNano")), nanos_to_ms(span.get("endTimeUnixNano")))
            {
                if end >= s {
                    e.insert("latency_ms".into(), json!(end - s));
                }
            }
        }
        _ => return None,
    }
    if attrs.contains_key("error.type") {
        e.insert("outcome".into(), json!("error"));
    }
    Some(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(k: &str, v: Value) -> Value {
        let val = match v {
            Value::String(s) => json!({"stringValue": s}),
            Value::Number(n) => json!({"intValue": n.to_string()}),
            other => other,
        };
        json!({"key": k, "value": val})
    }

    fn span(trace: &str, id: &str, parent: &str, attrs: Vec<Value>) -> Value {
        json!({"traceId": trace, "spanId": id, "parentSpanId": parent, "name": "x",
               "startTimeUnixNano": "1795756800123000000", "endTimeUnixNano": "1795756800456000000",
               "attributes": attrs})
    }

    fn request(spans: Vec<Value>, resource: Vec<Value>) -> Vec<u8> {
        serde_json::to_vec(
            &json!({"resourceSpans": [{"resource": {"attributes": resource}, "scopeSpans": [{"spans": spans}]}]}),
        )
        .unwrap()
    }

    fn events(records: &[Record]) -> Vec<Value> {
        records.iter().map(|r| serde_json::from_slice(&r.bytes).unwrap()).collect()
    }

    #[test]
    fn maps_llm_and_tool_spans_per_the_spec() {
        let mut m = OtlpMapper::default();
        let body = request(
            vec![
                span(
                    "t1",
                    "a",
                    "",
                    vec![
                        kv("gen_ai.operation.name", json!("invoke_agent")),
                        kv("gen_ai.agent.id", json!("support-7")),
                        kv("gen_ai.agent.name", json!("support-bot")),
                        kv("gen_ai.conversation.id", json!("s-91")),
                    ],
                ),
                span(
                    "t1",
                    "b",
                    "a",
                    vec![
                        kv("gen_ai.operation.name", json!("chat")),
                        kv("gen_ai.request.model", json!("m-large")),
                        kv("gen_ai.usage.input_tokens", json!(1830)),
                        kv("gen_ai.usage.output_tokens", json!(212)),
                    ],
                ),
                span(
                    "t1",
                    "c",
                    "a",
                    vec![
                        kv("gen_ai.operation.name", json!("execute_tool")),
                        kv("gen_ai.tool.name", json!("crm.lookup")),
                        kv("gen_ai.tool.call.id", json!("call-1")),
                        kv("gen_ai.tool.call.arguments", json!("{\"customer\":\"C-1\"}")),
                        kv("error.type", json!("timeout")),
                    ],
                ),
            ],
            vec![],
        );
        let ev = events(&m.map_request(&body).unwrap());
        assert_eq!(ev.len(), 2);
        assert_eq!(ev[0]["kind"], "llm_call");
        assert_eq!(ev[0]["agent_id"], "support-7");
        assert_eq!(ev[0]["agent"], "support-bot");
        assert_eq!(ev[0]["session_id"], "s-91");
        assert_eq!(ev[0]["tokens"], json!({"input": 1830, "output": 212}));
        assert_eq!(ev[0]["latency_ms"], 333);
        assert_eq!(ev[0]["ts"], 1_795_756_800_123i64);
        assert_eq!(ev[1]["kind"], "tool_call");
        assert_eq!(ev[1]["tool"], "crm.lookup");
        assert_eq!(ev[1]["call_id"], "call-1");
        assert_eq!(ev[1]["outcome"], "error");
    }

    #[test]
    fn children_exported_before_their_parent_wait_for_it() {
        let mut m = OtlpMapper::default();
        let child = request(
            vec![
                span(
                    "t2",
                    "c",
                    "b",
                    vec![kv("gen_ai.operation.name", json!("execute_tool")), kv("gen_ai.tool.name", json!("shell"))],
                ),
                span("t2", "b", "a", vec![]),
            ],
            vec![],
        );
        assert!(m.map_request(&child).unwrap().is_empty());
        assert_eq!(m.waiting(), 1);
        let parent = request(
            vec![span(
                "t2",
                "a",
                "",
                vec![kv("gen_ai.operation.name", json!("invoke_agent")), kv("gen_ai.agent.id", json!("dev-1"))],
            )],
            vec![],
        );
        let ev = events(&m.map_request(&parent).unwrap());
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0]["agent_id"], "dev-1");
        assert_eq!(m.waiting(), 0);
    }

    #[test]
    fn resource_attributes_give_identity() {
        let mut m = OtlpMapper::default();
        let body = request(
            vec![span("t3", "a", "", vec![kv("gen_ai.operation.name", json!("chat"))])],
            vec![kv("gen_ai.agent.id", json!("etl-2"))],
        );
        let ev = events(&m.map_request(&body).unwrap());
        assert_eq!(ev[0]["agent_id"], "etl-2");
    }

    #[test]
    fn malformed_requests_are_errors_not_panics() {
        let mut m = OtlpMapper::default();
        assert!(m.map_request(b"{").is_err());
        assert!(m.map_request(b"{}").is_err());
        assert!(m
            .map_request(br#"{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": 1}]}]}]}"#)
            .unwrap()
            .is_empty());
    }
}
