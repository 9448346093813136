//! One engine and the per-record rules of the live path: decode, the live-only checks (`future_ts`
//! against the wall clock, `key_mismatch` against the Kafka key), then the engine. Every source
//! (HTTP, OTLP, Kafka) goes through here, so they all behave the same.

use crate::SourceNames;
use vigil_detector::alert::{Action, Alert, Position};
use vigil_detector::blast::BlastRadius;
use vigil_detector::dead_letter::write_record;
use vigil_detector::decode::{decode, Limits, Reason, Reject};
use vigil_detector::{Engine, Verdict};

/// One input record and where it came from.
#[derive(Clone, Debug)]
pub struct Record {
    pub bytes: Vec<u8>,
    /// Index into the source names (`http`, `otlp`, `<topic>/<partition>`).
    pub source: u32,
    /// Line within a request, or Kafka offset.
    pub offset: u64,
    /// The Kafka message key, which must equal `agent_id`.
    pub key: Option<Vec<u8>>,
}

/// What became of one record.
#[derive(Debug)]
pub enum Outcome {
    /// Rejected: its dead-letter record (one JSON line) and reason.
    Rejected {
        line: String,
        reason: Reason,
    },
    Scored {
        verdict: Box<Verdict>,
    },
}

pub struct Processor {
    pub engine: Engine,
    limits: Limits,
    max_future_skew_ms: i64,
    /// The fleet-wide cap on kill actions, applied in emission order.
    pub blast: BlastRadius,
}

impl Processor {
    pub fn new(engine: Engine) -> Processor {
        let c = engine.config();
        let limits = Limits { max_event_bytes: c.engine.max_event_bytes, max_depth: c.engine.max_depth };
        let max_future_skew_ms = c.engine.max_future_skew_secs as i64 * 1000;
        let blast =
            BlastRadius::new(c.actions.max_kills_per_minute, c.actions.max_class_kill_share, c.engine.cooldown_secs);
        Processor { engine, limits, max_future_skew_ms, blast }
    }

    /// Processes one record at wall-clock time `now_ms`.
    pub fn process(&mut self, rec: &Record, sources: &SourceNames, now_ms: i64) -> Outcome {
        self.process_bytes(
            &rec.bytes,
            rec.key.as_deref(),
            Position { source: rec.source, offset: rec.offset },
            sources,
            now_ms,
        )
    }

    /// Processes one message in place (a Kafka payload is not copied): `key` is the message key, which
    /// must equal `agent_id` when present.
    pub fn process_bytes(
        &mut self,
        bytes: &[u8],
        key: Option<&[u8]>,
        pos: Position,
        sources: &SourceNames,
        now_ms: i64,
    ) -> Outcome {
        let reject = |r: Reject| {
            let mut line = String::with_capacity(256);
            let name = sources.get(pos.source as usize).map(String::as_str).unwrap_or("");
            write_record(&mut line, &r, name, pos.offset, bytes);
            Outcome::Rejected { line, reason: r.reason }
        };
        let ev = match decode(bytes, &self.limits) {
            Ok(ev) => ev,
            Err(r) => return reject(r),
        };
        if let Some(key) = key {
            if key != ev.agent_id.as_bytes() {
                return reject(Reject::new(
                    Reason::KeyMismatch,
                    format!("message key {:?} differs from agent_id {:?}", String::from_utf8_lossy(key), ev.agent_id),
                ));
            }
        }
        if ev.ts_ms > now_ms.saturating_add(self.max_future_skew_ms) {
            return reject(Reject::new(
                Reason::FutureTs,
                format!(
                    "field `ts` is {} s ahead of this detector's clock (the limit is {} s)",
                    (ev.ts_ms - now_ms) / 1000,
                    self.max_future_skew_ms / 1000
                ),
            ));
        }
        let mut verdict = self.engine.process(&ev, pos);
        if let Some(alert) = verdict.alert.as_mut().filter(|a| a.action == Action::Kill) {
            verdict.notice = self.blast.govern(alert, verdict.class_agents).map(Box::new);
        }
        Outcome::Scored { verdict: Box::new(verdict) }
    }
}

/// Counts of one batch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct BatchCounts {
    pub accepted: u64,
    pub rejected: u64,
    pub duplicates: u64,
    pub alerts: u64,
}

impl BatchCounts {
    /// Adds one outcome (and returns its alert, if any).
    pub fn add<'o>(&mut self, o: &'o Outcome) -> Option<&'o Alert> {
        match o {
            Outcome::Rejected { .. } => {
                self.rejected += 1;
                None
            }
            Outcome::Scored { verdict } => {
                if verdict.duplicate {
                    self.duplicates += 1;
                } else {
                    self.accepted += 1;
                }
                self.alerts += verdict.alert.is_some() as u64 + verdict.notice.is_some() as u64;
                verdict.alert.as_deref()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_detector::EngineConfig;

    fn rec(s: &str, key: Option<&str>) -> Record {
        Record { bytes: s.as_bytes().to_vec(), source: 0, offset: 7, key: key.map(|k| k.as_bytes().to_vec()) }
    }

    #[test]
    fn live_checks_reject_with_their_reasons() {
        let mut p = Processor::new(Engine::new(EngineConfig::default()).unwrap());
        let names = vec!["t/0".to_string()];
        let now = 1_795_756_800_000;
        let ok = rec(r#"{"ts":1795756800000,"agent_id":"a","kind":"x"}"#, Some("a"));
        assert!(matches!(p.process(&ok, &names, now), Outcome::Scored { .. }));
        let mism = rec(r#"{"ts":1795756800000,"agent_id":"a","kind":"x"}"#, Some("b"));
        match p.process(&mism, &names, now) {
            Outcome::Rejected { reason, line } => {
                assert_eq!(reason, Reason::KeyMismatch);
                let v: serde_json::Value = serde_json::from_str(&line).unwrap();
                assert_eq!(v["source"], "t/0");
                assert_eq!(v["position"], 7);
            }
            o => panic!("{o:?}"),
        }
        let future = rec(r#"{"ts":1795757200000,"agent_id":"a","kind":"x"}"#, None);
        assert!(matches!(p.process(&future, &names, now), Outcome::Rejected { reason: Reason::FutureTs, .. }));
        let near = rec(r#"{"ts":1795757000000,"agent_id":"a","kind":"x"}"#, None);
        assert!(matches!(p.process(&near, &names, now), Outcome::Scored { .. }));
    }
}
