//! A [`Record`] over a JSON event (`spec/events.md`), for rule tests and benchmarks.
//!
//! The detector maps its own event type onto [`Record`]; this crate does not know that type. To test rules
//! on their own, [`JsonRecord`] reads the same JSON events the detector does: dotted field names walk
//! nested objects (`tokens.input`), `dest.host` is the host part of `dest`, `score.<component>` comes from
//! an optional `"score"` object of the test event, `args` objects are read as their compact JSON text, and
//! the defaults of events.md apply (`agent` = `agent_id`, `outcome` = `ok`, `privileged` = false). Values
//! are extracted once, at construction, so field reads do not allocate.

use crate::schema::{Dynamic, FieldId, FieldType, Record, Schema};
use serde_json::Value as J;

/// The detector's first-seen score of an event's tool or program alone (`score.first_seen` covers every
/// value of the event: destinations, paths, identifiers in arguments).
pub const FIRST_SEEN_TOOL: &str = "score.first_seen_tool";

/// Score components the detector publishes as `score.<name>`.
pub const SCORE_COMPONENTS: [&str; 8] =
    ["rate", "tokens", "sequence", "entropy", "escalation", "metric", "first_seen", "class_change"];

#[derive(Clone, Debug)]
enum Val {
    Str(String),
    Num(f64),
    Bool(bool),
}

/// A JSON event read as a [`Record`].
#[derive(Clone, Debug)]
pub struct JsonRecord {
    values: Vec<Option<Val>>,
    event: J,
    ts: i64,
}

/// A `dest` without URL syntax — `host` or `host:port`, the common form — split in one pass over its
/// bytes; `None` when it holds a `/`, `?`, `#`, `@`, `[` or more than one `:` (the general parse then
/// decides). [`host_of`] and [`port_of`] give the same results with or without this shortcut.
#[inline]
fn plain_dest(dest: &str) -> Option<(&str, Option<&str>)> {
    let mut colon = None;
    for (i, &b) in dest.as_bytes().iter().enumerate() {
        match b {
            b'/' | b'?' | b'#' | b'@' | b'[' => return None,
            b':' if colon.is_some() => return None,
            b':' => colon = Some(i),
            _ => {}
        }
    }
    Some(match colon {
        Some(i) => (&dest[..i], Some(&dest[i + 1..])),
        None => (dest, None),
    })
}

/// The host part of a `dest` (`host`, `host:port` or URL).
pub fn host_of(dest: &str) -> &str {
    match plain_dest(dest) {
        Some((host, _)) => host,
        None => host_of_general(dest),
    }
}

fn host_of_general(dest: &str) -> &str {
    let rest = match find_scheme_end(dest) {
        Some(i) => &dest[i + 3..],
        None => dest,
    };
    let rest = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    let rest = match rest.rfind('@') {
        Some(i) => &rest[i + 1..],
        None => rest,
    };
    if let Some(stripped) = rest.strip_prefix('[') {
        return stripped.split(']').next().unwrap_or(stripped);
    }
    match rest.rfind(':') {
        Some(i) if !rest[..i].contains(':') => &rest[..i],
        _ => rest,
    }
}

/// The offset of the first `://` in `dest` (`str::find` with a byte search: this runs for every
/// network event, several times).
#[inline]
fn find_scheme_end(dest: &str) -> Option<usize> {
    let b = dest.as_bytes();
    memchr::memchr_iter(b':', b).find(|&i| b[i + 1..].starts_with(b"//"))
}

/// [`host_of`] and [`port_of`] of a `dest` together: a plain `host[:port]` destination is split once
/// for both (rules read `dest.host` and `dest.port` of the same network events).
pub fn host_and_port_of(dest: &str) -> (&str, Option<&str>) {
    match plain_dest(dest) {
        Some((host, port)) => (host, port.filter(|p| is_port(p))),
        None => (host_of_general(dest), port_of_general(dest)),
    }
}

/// The port of a `dest`: explicit (`host:port`, `[v6]:port`, URL authority), else implied by an
/// `http`/`https` URL scheme. The detector uses this same function.
pub fn port_of(dest: &str) -> Option<&str> {
    match plain_dest(dest) {
        Some((_, port)) => port.filter(|p| is_port(p)),
        None => port_of_general(dest),
    }
}

fn is_port(p: &str) -> bool {
    !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())
}

fn port_of_general(dest: &str) -> Option<&str> {
    let (scheme, rest) = match find_scheme_end(dest) {
        Some(i) => (Some(&dest[..i]), &dest[i + 3..]),
        None => (None, dest),
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    let port = match authority.strip_prefix('[') {
        Some(v6) => v6.split_once("]:").map(|(_, p)| p),
        None => match authority.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') => Some(p),
            _ => None,
        },
    };
    match port.filter(|p| is_port(p)) {
        Some(p) => Some(p),
        None => match scheme {
            Some(s) if s.eq_ignore_ascii_case("https") || s.eq_ignore_ascii_case("wss") => Some("443"),
            Some(s) if s.eq_ignore_ascii_case("http") || s.eq_ignore_ascii_case("ws") => Some("80"),
            _ => None,
        },
    }
}

fn path<'a>(v: &'a J, dotted: &str) -> Option<&'a J> {
    if let Some(x) = v.get(dotted) {
        return Some(x);
    }
    let mut cur = v;
    for seg in dotted.split('.') {
        cur = cur.get(seg)?;
    }
    Some(cur)
}

fn coerce(v: &J, ty: FieldType) -> Option<Val> {
    match ty {
        FieldType::Str => match v {
            J::String(s) => Some(Val::Str(s.clone())),
            J::Object(_) | J::Array(_) => Some(Val::Str(v.to_string())),
            _ => None,
        },
        FieldType::Num => v.as_f64().map(Val::Num),
        FieldType::Bool => v.as_bool().map(Val::Bool),
    }
}

impl JsonRecord {
    /// Reads `event` for every field of `schema`.
    pub fn new(event: &J, schema: &Schema) -> JsonRecord {
        let values = schema.fields().map(|(_, name, ty)| Self::extract(event, name, ty)).collect();
        let ts = match event.get("ts") {
            Some(J::Number(n)) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)).unwrap_or(0),
            Some(J::String(s)) => crate::util::parse_ts(s).unwrap_or(0),
            _ => 0,
        };
        JsonRecord { values, event: event.clone(), ts }
    }

    fn extract(ev: &J, name: &str, ty: FieldType) -> Option<Val> {
        match name {
            "dest.host" => {
                let d = ev.get("dest")?.as_str()?;
                return coerce(&J::String(host_of(d).to_string()), ty);
            }
            "dest.port" => {
                let d = ev.get("dest")?.as_str()?;
                return port_of(d).and_then(|p| coerce(&J::String(p.to_string()), ty));
            }
            "agent" => {
                let a = ev.get("agent").or_else(|| ev.get("agent_id"))?;
                return coerce(a, ty);
            }
            "outcome" if ev.get("outcome").is_none() => {
                return coerce(&J::String("ok".into()), ty);
            }
            "privileged" if ev.get("privileged").is_none() => return coerce(&J::Bool(false), ty),
            _ => {}
        }
        if let Some(rest) = name.strip_prefix("score.") {
            return coerce(ev.get("score")?.get(rest)?, ty);
        }
        coerce(path(ev, name)?, ty)
    }

    /// The schema of the fields of `spec/events.md`, the `score.<component>` fields and the `attrs.`
    /// prefix: what the default pack is written against.
    pub fn standard_schema() -> Schema {
        let mut s = Schema::new();
        for n in [
            "kind",
            "agent_id",
            "agent",
            "session_id",
            "id",
            "outcome",
            "tool",
            "call_id",
            "args",
            "payload",
            "dest",
            "dest.host",
            "dest.port",
            "method",
            "path",
            "op",
            "cmd",
            "argv",
            "scope",
            "principal",
            "role",
            "content",
            "model",
            "metric.name",
        ] {
            s.field(n, FieldType::Str);
        }
        for n in ["tokens.input", "tokens.output", "latency_ms", "bytes", "bytes_out", "bytes_in", "metric.value"] {
            s.field(n, FieldType::Num);
        }
        s.field("privileged", FieldType::Bool);
        for c in SCORE_COMPONENTS {
            s.field(&format!("score.{c}"), FieldType::Num);
        }
        s.field(FIRST_SEEN_TOOL, FieldType::Num);
        s.dynamic_prefix("attrs.");
        s
    }
}

impl Record for JsonRecord {
    fn str(&self, f: FieldId) -> Option<&str> {
        match self.values.get(f.index())? {
            Some(Val::Str(s)) => Some(s),
            _ => None,
        }
    }

    fn num(&self, f: FieldId) -> Option<f64> {
        match self.values.get(f.index())? {
            Some(Val::Num(n)) => Some(*n),
            _ => None,
        }
    }

    fn boolean(&self, f: FieldId) -> Option<bool> {
        match self.values.get(f.index())? {
            Some(Val::Bool(b)) => Some(*b),
            _ => None,
        }
    }

    fn dynamic(&self, prefix: &str, name: &str) -> Option<Dynamic<'_>> {
        let root = self.event.get(prefix.trim_end_matches('.'))?;
        match path(root, name)? {
            J::String(s) => Some(Dynamic::Str(s)),
            J::Number(n) => n.as_f64().map(Dynamic::Num),
            J::Bool(b) => Some(Dynamic::Bool(*b)),
            _ => None,
        }
    }

    fn ts_ms(&self) -> i64 {
        self.ts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    proptest::proptest! {
        /// The one-pass shortcut for plain `host[:port]` destinations agrees with the general parse.
        #[test]
        fn plain_dest_shortcut_matches_the_general_parse(dest in "[a-z0-9.:/?#@\\[\\]-]{0,24}") {
            proptest::prop_assert_eq!(host_of(&dest), host_of_general(&dest));
            proptest::prop_assert_eq!(port_of(&dest), port_of_general(&dest));
            proptest::prop_assert_eq!(host_and_port_of(&dest), (host_of(&dest), port_of(&dest)));
        }
    }

    #[test]
    fn reads_events_md_fields() {
        let s = JsonRecord::standard_schema();
        let id = |n: &str| s.lookup(n).unwrap().0;
        let ev = json!({
            "ts": "2026-11-27T05:00:02.310Z", "agent_id": "support-7", "kind": "net",
            "dest": "https://user@paste.example.net:443/x", "bytes_out": 48213,
            "tokens": {"input": 10}, "args": {"a": 1}, "attrs": {"region": "eu", "n": 3, "deep": {"x": true}},
            "score": {"entropy": 0.97}, "metric": {"name": "cost_usd", "value": 0.5}
        });
        let r = JsonRecord::new(&ev, &s);
        assert_eq!(r.ts_ms(), 1_795_755_602_310);
        assert_eq!(r.str(id("dest.host")), Some("paste.example.net"));
        assert_eq!(r.str(id("agent")), Some("support-7"));
        assert_eq!(r.str(id("outcome")), Some("ok"));
        assert_eq!(r.boolean(id("privileged")), Some(false));
        assert_eq!(r.num(id("bytes_out")), Some(48213.0));
        assert_eq!(r.num(id("tokens.input")), Some(10.0));
        assert_eq!(r.num(id("score.entropy")), Some(0.97));
        assert_eq!(r.num(id("score.rate")), None);
        assert_eq!(r.str(id("args")), Some("{\"a\":1}"));
        assert_eq!(r.str(id("metric.name")), Some("cost_usd"));
        assert_eq!(r.num(id("metric.value")), Some(0.5));
        assert_eq!(r.str(id("tool")), None);
        assert_eq!(r.dynamic("attrs.", "region"), Some(Dynamic::Str("eu")));
        assert_eq!(r.dynamic("attrs.", "n"), Some(Dynamic::Num(3.0)));
        assert_eq!(r.dynamic("attrs.", "deep.x"), Some(Dynamic::Bool(true)));
        assert_eq!(r.dynamic("attrs.", "nope"), None);
        assert_eq!(host_of("[2001:db8::1]:443"), "2001:db8::1");
        assert_eq!(host_of("169.254.169.254"), "169.254.169.254");
        assert_eq!(JsonRecord::new(&json!({"ts": 5}), &s).ts_ms(), 5);
    }
}
