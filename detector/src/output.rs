//! Per-event score lines (`spec/evaluation.md`): one per accepted, non-duplicate event.

use crate::event::{Event, TsField};
use crate::json::{write_str, write_unit};
use crate::score::Comp;
use crate::shard::Verdict;

/// Appends the score line of `ev` (no newline): `ts` as in the event, `agent_id`, `session_id` when
/// present, the fused `score` and every applicable component's score.
pub fn write_score_line(out: &mut String, ev: &Event, v: &Verdict) {
    out.push_str("{\"ts\":");
    match &ev.ts {
        TsField::Millis(ms) => out.push_str(itoa(*ms, &mut [0u8; 20])),
        TsField::Text(s) => write_str(out, s),
    }
    out.push_str(",\"agent_id\":");
    write_str(out, &ev.agent_id);
    if let Some(s) = ev.session_id.as_deref() {
        out.push_str(",\"session_id\":");
        write_str(out, s);
    }
    out.push_str(",\"score\":");
    write_unit(out, v.score);
    out.push_str(",\"components\":{");
    let mut first = true;
    for c in Comp::ALL {
        if let Some(s) = v.components[c as usize] {
            if !first {
                out.push(',');
            }
            first = false;
            out.push('"');
            out.push_str(c.name());
            out.push_str("\":");
            write_unit(out, s as f64);
        }
    }
    for (name, s) in &v.rules {
        if !first {
            out.push(',');
        }
        first = false;
        write_str(out, name);
        out.push(':');
        write_unit(out, *s as f64);
    }
    out.push_str("}}");
}

/// Formats a non-negative integer without allocating.
fn itoa(mut v: i64, buf: &mut [u8; 20]) -> &str {
    let neg = v < 0;
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10).unsigned_abs() as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    if neg && i > 0 {
        i -= 1;
        buf[i] = b'-';
    }
    // Only ASCII digits and '-' were written.
    std::str::from_utf8(&buf[i..]).unwrap_or("0")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{decode, Limits};

    #[test]
    fn echoes_ts_as_written() {
        let v = Verdict {
            duplicate: false,
            late: false,
            score: 0.25,
            components: {
                let mut c = [None; Comp::COUNT];
                c[Comp::Rate as usize] = Some(0.1);
                c[Comp::Sequence as usize] = Some(0.93);
                c
            },
            rules: Vec::new(),
            alert: None,
            class_agents: 0,
            notice: None,
        };
        let ev = decode(br#"{"ts":1795756802500,"agent_id":"a","kind":"x"}"#, &Limits::default()).unwrap();
        let mut s = String::new();
        write_score_line(&mut s, &ev, &v);
        assert_eq!(s, r#"{"ts":1795756802500,"agent_id":"a","score":0.25,"components":{"rate":0.1,"sequence":0.93}}"#);
        let ev = decode(
            br#"{"ts":"2026-11-27T05:00:00+01:00","agent_id":"a","session_id":"s","kind":"x"}"#,
            &Limits::default(),
        )
        .unwrap();
        let mut s = String::new();
        write_score_line(&mut s, &ev, &v);
        assert!(s.starts_with(r#"{"ts":"2026-11-27T05:00:00+01:00","agent_id":"a","session_id":"s","#), "{s}");
    }
}
