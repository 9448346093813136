//! Turning a verdict into an alert a SOC analyst can act on: title, reason with the numbers, evidence
//! with payloads redacted, tags.

use crate::alert::{Evidence, PayloadEvidence, Position};
use crate::config::{EvidenceConfig, PayloadEvidence as PayloadMode};
use crate::event::{Event, Kind, Outcome};
use crate::score::{fmt_p, model, novelty, Card, Comp};
use crate::state::{ClassState, PrevEvent, ValueField};
use sha2::{Digest, Sha256};
use std::fmt::Write as _;
use vigil_models::randomness;

/// Names of the object fields an evidence entry can carry, indexed by `PrevEvent::object`.
pub const OBJECT_FIELDS: [&str; 8] = ["", "tool", "dest", "path", "cmd", "op", "model", "metric"];

/// The main object of an event: its field index in [`OBJECT_FIELDS`] and its value.
pub fn object_of<'e>(ev: &'e Event) -> (u8, &'e str) {
    let pick = |i: u8, v: Option<&'e str>| v.map(|v| (i, v));
    match ev.kind {
        Kind::ToolCall | Kind::ToolResult => pick(1, ev.tool.as_deref()),
        Kind::Net => pick(2, ev.dest.as_deref()),
        Kind::File => pick(3, ev.path.as_deref()),
        Kind::Process => pick(4, ev.cmd.as_deref()),
        Kind::Auth => pick(5, ev.op.as_deref()),
        Kind::LlmCall => pick(6, ev.model.as_deref()),
        Kind::Metric => pick(7, ev.metric_name.as_deref()),
        _ => None,
    }
    .unwrap_or((0, ""))
}

fn outcome_name(o: Outcome) -> Option<&'static str> {
    (o != Outcome::Ok).then(|| o.name())
}

/// Evidence for the triggering event, with its text redacted per configuration.
pub fn event_evidence(ev: &Event, pos: Position, cfg: &EvidenceConfig) -> Evidence {
    let (obj, value) = object_of(ev);
    let payload = crate::score::entropy::text_of(ev).map(|(field, text)| payload_evidence(field, &text, cfg));
    Evidence {
        ts_ms: ev.ts_ms,
        kind: ev.kind_name.to_string(),
        object: (obj != 0).then(|| (OBJECT_FIELDS[obj as usize], object_value(obj, value, cfg))),
        outcome: outcome_name(ev.outcome),
        privileged: ev.privileged,
        id: ev.id.as_deref().map(str::to_string),
        position: pos,
        payload,
    }
}

/// Index of `cmd` in [`OBJECT_FIELDS`]: a command line is payload text, redacted like one.
const CMD_OBJECT: u8 = 4;
/// Longest identifier (tool, destination, path, ...) copied into evidence.
const MAX_OBJECT_CHARS: usize = 256;

/// The value of an event's main object as evidence: a command line is payload text and shows only
/// its configured prefix (its hash and size are in the payload entry); identifiers are cut at 256
/// characters.
fn object_value(obj: u8, value: &str, cfg: &EvidenceConfig) -> String {
    let max = if obj == CMD_OBJECT {
        match cfg.payload {
            PayloadMode::Full => usize::MAX,
            PayloadMode::None => 0,
            PayloadMode::Redacted => cfg.prefix_chars,
        }
    } else {
        MAX_OBJECT_CHARS
    };
    value.chars().take(max).collect()
}

/// A payload as evidence: length, entropy, SHA-256 and (by default) a short prefix.
pub fn payload_evidence(field: &'static str, text: &str, cfg: &EvidenceConfig) -> PayloadEvidence {
    let digest = Sha256::digest(text.as_bytes());
    let mut sha256 = String::with_capacity(64);
    for b in digest {
        let _ = write!(sha256, "{b:02x}");
    }
    let (prefix, full) = match cfg.payload {
        PayloadMode::Full => (text.to_string(), true),
        PayloadMode::None => (String::new(), false),
        PayloadMode::Redacted => (text.chars().take(cfg.prefix_chars).collect(), false),
    };
    PayloadEvidence {
        field,
        len: text.len(),
        bits_per_byte: randomness(text.as_bytes()).bits_per_byte,
        sha256,
        prefix,
        full,
    }
}

/// Evidence for the agent's previous event (context for sequences, rates and escalations).
pub fn prev_evidence(prev: &PrevEvent, cfg: &EvidenceConfig) -> Option<Evidence> {
    if !prev.valid {
        return None;
    }
    let kind = Kind::ALL.get(prev.kind as usize).copied().unwrap_or(Kind::Other);
    let obj = prev.object % OBJECT_FIELDS.len() as u8;
    Some(Evidence {
        ts_ms: prev.ts_ms,
        kind: kind.name().to_string(),
        object: (obj != 0).then(|| (OBJECT_FIELDS[obj as usize], object_value(obj, prev.label.as_str(), cfg))),
        outcome: match prev.outcome {
            1 => Some("denied"),
            2 => Some("error"),
            _ => None,
        },
        privileged: prev.privileged,
        id: None,
        position: prev.position,
        payload: None,
    })
}

/// Tags of an alert raised by `comp` on `ev`.
pub fn tags(comp: Comp, ev: &Event, card: &Card) -> Vec<String> {
    tag_names(comp, ev, card).into_iter().map(String::from).collect()
}

fn tag_names(comp: Comp, ev: &Event, card: &Card) -> Vec<&'static str> {
    match comp {
        Comp::Rate | Comp::Tokens | Comp::Metric => vec!["resource-abuse"],
        Comp::Sequence => vec!["behaviour-change"],
        Comp::Entropy => match ev.kind {
            Kind::Net | Kind::ToolCall | Kind::File | Kind::Process => vec!["exfiltration"],
            _ => vec!["encoded-data"],
        },
        Comp::Escalation => {
            let cred = ev.op.as_deref().is_some_and(|o| o.contains("credential"));
            if cred {
                vec!["privilege-escalation", "credential-access"]
            } else {
                vec!["privilege-escalation"]
            }
        }
        Comp::FirstSeen => {
            let field = card.novelty.strongest.map(|i| card.novelty.values[i].field);
            match field {
                Some(ValueField::Dest) | Some(ValueField::Identifier) => vec!["new-egress"],
                _ => vec!["novelty"],
            }
        }
        Comp::ClassChange => vec!["identity"],
        Comp::Model => {
            // What the most deviating feature is about.
            let d = &card.model.scored;
            let top = (d.n_top > 0).then(|| d.top[0].feature as usize);
            match top.and_then(|i| model::FEATURE_TABLE.get(i)).map(|f| f.0) {
                Some(
                    "entropy_mean" | "entropy_max" | "random_bytes_total" | "entropy_evidence" | "bytes_out_total"
                    | "net_events" | "distinct_dests",
                ) => vec!["exfiltration"],
                Some("denied_ratio" | "privileged_ratio" | "auth_events" | "process_events") => {
                    vec!["privilege-escalation"]
                }
                Some("llm_calls" | "tokens_total" | "tokens_per_call" | "numeric_evidence") => vec!["resource-abuse"],
                _ => vec!["behaviour-change"],
            }
        }
    }
}

fn event_label(ev: &Event) -> String {
    let (obj, value) = object_of(ev);
    if obj == 0 {
        ev.kind_name.to_string()
    } else {
        format!("{} {}", ev.kind_name, truncate(value, 80))
    }
}

fn truncate(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The one-line title of an alert raised by `comp`.
pub fn title(comp: Comp, ev: &Event, card: &Card, window_secs: u64, old_class: &str) -> String {
    match comp {
        Comp::Rate => {
            let d = &card.rate;
            let what = if d.by_tool {
                format!("{} calls", ev.tool.as_deref().unwrap_or("?"))
            } else {
                format!("{} events", ev.kind_name)
            };
            format!("Call-rate spike: {} {what} in {window_secs}s (usual {:.1})", d.count, d.mean)
        }
        Comp::Tokens => {
            format!("Token spike: {} tokens in one LLM call (usual ~{:.0})", card.tokens.value, card.tokens.typical)
        }
        Comp::Metric => {
            let d = &card.metric;
            let name = match d.signal {
                crate::score::numeric::Signal::Metric => ev.metric_name.as_deref().unwrap_or("metric").to_string(),
                s => s.label().to_string(),
            };
            format!("Unusual {name}: {} (usual ~{:.1})", fmt_num(d.value), d.typical)
        }
        Comp::Sequence => {
            let d = &card.sequence;
            if d.p_repeat < d.p_step.min(d.p_len) {
                format!(
                    "Agent loop: {} called {} times in a row with the same arguments",
                    truncate(ev.step_symbol(), 80),
                    d.repeats + 1
                )
            } else if d.p_len < d.p_step {
                format!("Unusually long session: {} steps", d.session_len)
            } else {
                format!("Unusual step for this agent class: {}", truncate(ev.step_symbol(), 80))
            }
        }
        Comp::Entropy => {
            let d = &card.entropy;
            let to = match (ev.kind, ev.dest.as_deref(), ev.tool.as_deref(), ev.path.as_deref()) {
                (Kind::Net, Some(dest), _, _) => format!(" to {}", truncate(dest, 80)),
                (Kind::ToolCall, _, Some(t), _) => format!(" to tool {}", truncate(t, 80)),
                (Kind::File, _, _, Some(p)) => format!(" in {}", truncate(p, 80)),
                _ => String::new(),
            };
            if card.acc[Comp::Entropy as usize].p < d.p_single {
                format!("Repeated encoded data in {} {}{to}", ev.kind_name, d.field)
            } else {
                format!("Encoded data in {} {}{to}: {} random-looking bytes", ev.kind_name, d.field, d.random_bytes)
            }
        }
        Comp::Escalation => format!("Repeated privilege escalation: {} ({})", event_label(ev), ev.outcome.name()),
        Comp::FirstSeen => {
            let d = &card.novelty;
            match d.strongest.map(|i| &d.values[i]) {
                Some(v) => format!(
                    "First-seen {}{}: {}",
                    v.field.name(),
                    if v.class_new { "" } else { " for this agent" },
                    truncate(novelty::value_text(ev, v), 120)
                ),
                None => "First-seen value".to_string(),
            }
        }
        Comp::ClassChange => {
            format!("Agent class changed from {} to {}", truncate(old_class, 80), truncate(ev.class(), 80))
        }
        Comp::Model => {
            let d = &card.model.scored;
            let names: Vec<&str> = d.top[..d.n_top]
                .iter()
                .filter_map(|t| model::FEATURE_TABLE.get(t.feature as usize).map(|f| f.2))
                .collect();
            format!(
                "Unusual combination of activity in {}s for class {}: {}",
                model::WINDOW_SECS,
                truncate(ev.class(), 80),
                names.join(", ")
            )
        }
    }
}

/// A feature value in explanations: whole numbers as such, else three significant digits.
fn fmt_feature(v: f64) -> String {
    if v.abs() >= 100.0 || (v.fract() == 0.0 && v.abs() < 1e15) {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn fmt_num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v:.3}")
    }
}

/// Why: the numbers behind every component that contributed, strongest first.
pub fn reason(
    ev: &Event,
    card: &Card,
    class: &ClassState,
    fused_p: f64,
    order: &[Comp],
    window_secs: u64,
    old_class: &str,
) -> String {
    let mut out = String::with_capacity(256);
    let _ = write!(out, "fused p={} over {} component(s)", fmt_p(fused_p), order.len());
    for &c in order {
        let s = card.get(c);
        out.push_str("; ");
        let _ = write!(out, "{} p={}: ", c.name(), fmt_p(s.p));
        match c {
            Comp::Rate => {
                let d = &card.rate;
                let _ = write!(
                    out,
                    "{} {} in the current {window_secs}s window vs mean {:.2} (sd {:.2}) per active window for {}",
                    d.count,
                    if d.by_tool { "calls of this tool" } else { "events of this kind" },
                    d.mean,
                    d.sd,
                    d.basis.describe()
                );
            }
            Comp::Tokens | Comp::Metric => {
                let d = if c == Comp::Tokens { &card.tokens } else { &card.metric };
                let _ = write!(
                    out,
                    "{} = {} vs typical {:.1} (log-scale sd {:.2}) for {}",
                    d.signal.label(),
                    fmt_num(d.value),
                    d.typical,
                    d.sd_log,
                    d.basis.describe()
                );
            }
            Comp::Sequence => {
                let d = &card.sequence;
                let _ = write!(
                    out,
                    "step {:?} has surprise {:.1} nats (p={}; seen {:.0} times after the previous step, {:.0} times in all for class {}); session length {} (p={})",
                    truncate(ev.step_symbol(), 80),
                    d.surprise_nats,
                    fmt_p(d.p_step),
                    d.pair_count,
                    d.symbol_count,
                    truncate(&class.name, 80),
                                        d.session_len,
                    fmt_p(d.p_len)
                );
                if d.repeats > 0 {
                    let _ =
                        write!(out, "; the same call repeated {} times in a row (p={})", d.repeats, fmt_p(d.p_repeat));
                }
            }
            Comp::Entropy => {
                let d = &card.entropy;
                let _ = write!(
                    out,
                    "{} of {} bytes of {} in random-looking tokens (p={} against class {}'s {} texts)",
                    d.random_bytes,
                    d.len,
                    d.field,
                    fmt_p(d.p_single),
                    truncate(&class.name, 80),
                    ev.kind_name,
                );
            }
            Comp::Escalation => {
                let d = &card.escalation;
                let _ = write!(
                    out,
                    "decayed escalation level {:.1} (denied x3, error x1.5) vs {} mean {:.2}",
                    d.level,
                    if d.from_class { "class" } else { "prior" },
                    d.mean
                );
            }
            Comp::FirstSeen => {
                let d = &card.novelty;
                let mut first = true;
                for v in &d.values {
                    if v.p >= 1.0 {
                        continue;
                    }
                    if !first {
                        out.push_str(", ");
                    }
                    first = false;
                    let _ = write!(
                        out,
                        "{} {:?} new to {} (novelty rate p={})",
                        v.field.name(),
                        truncate(novelty::value_text(ev, v), 120),
                        if v.class_new { "the class" } else { "this agent" },
                        fmt_p(v.p)
                    );
                }
            }
            Comp::ClassChange => {
                let _ = write!(
                    out,
                    "agent {} was class {:?}, now {:?}",
                    truncate(&ev.agent_id, 80),
                    truncate(old_class, 80),
                    truncate(ev.class(), 80)
                );
            }
            Comp::Model => {
                let d = &card.model;
                let _ = write!(
                    out,
                    "the agent's {}s window of {} events from {} is unusual for class {} as a whole (negative log-likelihood {:.1} nats; model fitted on {} normal windows); most deviating:",
                    model::WINDOW_SECS,
                    d.events,
                    crate::time::format_rfc3339_ms(d.window_start_ms),
                    truncate(ev.class(), 80),
                    d.scored.nll,
                    d.trained_on
                );
                if d.pair {
                    let _ = write!(
                        out,
                        " window p={} after a previous window of p={} (two unusual windows in a row);",
                        fmt_p(d.scored.p),
                        fmt_p(d.prev_p)
                    );
                }
                for (i, t) in d.scored.top[..d.scored.n_top].iter().enumerate() {
                    let f = t.feature as usize;
                    let name = model::FEATURE_TABLE.get(f).map_or("?", |f| f.0);
                    let _ = write!(
                        out,
                        "{} {name} {} vs typical {} ({:+.1} sd)",
                        if i == 0 { "" } else { "," },
                        fmt_feature(model::display_value(f, t.value)),
                        fmt_feature(model::display_value(f, t.typical)),
                        t.z
                    );
                }
            }
        }
        if let Some(a) = card.acc.get(c as usize).filter(|a| a.evidence > 0.0 && a.p < 1.0) {
            let _ = write!(
                out,
                "; accumulated over recent events: {:.1} nats of excess surprise (p={})",
                a.evidence,
                fmt_p(a.p)
            );
        }
    }
    out
}
