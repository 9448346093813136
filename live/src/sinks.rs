//! Where alerts and rejected records go: stdout, files, Kafka topics. A sink is durable when
//! `flush` returns: stdout flushed, files fsynced, Kafka messages acknowledged by the broker. Callers
//! answer HTTP 2xx or commit offsets only after that.

use crate::config::AlertFormat;
use crate::SourceNames;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::ClientContext;
use serde_json::{json, Value};
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;
use vigil_detector::alert::{Alert, Severity};
use vigil_detector::time::write_rfc3339_ms;

/// A sink could not make its output durable. The outside system (disk, broker) is at fault; a retry
/// of the whole batch can help, so callers answer 503 / do not commit.
#[derive(Debug, Error)]
pub enum SinkError {
    #[error("cannot write {what}: {error}")]
    Io { what: String, error: io::Error },
    #[error("kafka: {0}")]
    Kafka(String),
    #[error("webhook outbox: {0}")]
    Webhook(String),
}

/// Alerts out.
pub trait AlertSink: Send {
    fn write(&mut self, alert: &Alert, sources: &SourceNames) -> Result<(), SinkError>;
    /// Makes everything written durable.
    fn flush(&mut self) -> Result<(), SinkError>;
}

/// Rejected records out (dead-letter records of `spec/events.md`).
pub trait RejectSink: Send {
    /// `record` is one formatted dead-letter record; `key` the Kafka key of the rejected message.
    fn write(&mut self, record: &str, key: Option<&[u8]>) -> Result<(), SinkError>;
    fn flush(&mut self) -> Result<(), SinkError>;
}

/// Formats an alert line in the configured format, with `emitted_at` set to now.
pub fn format_alert(alert: &Alert, format: AlertFormat, sources: &SourceNames, now_ms: i64) -> String {
    let mut a = alert.clone();
    a.emitted_at_ms = Some(now_ms);
    match format {
        AlertFormat::Vigil => a.to_json(sources),
        AlertFormat::Ocsf => ocsf(&a, sources).to_string(),
    }
}

/// An alert as an OCSF 1.8.0 Detection Finding (class 2004, category Findings).
pub fn ocsf(a: &Alert, sources: &SourceNames) -> Value {
    let (severity_id, severity) = match a.severity {
        Severity::Low => (2, "Low"),
        Severity::Medium => (3, "Medium"),
        Severity::High => (4, "High"),
        Severity::Critical => (5, "Critical"),
    };
    let native: Value = serde_json::from_str(&a.to_json(sources)).unwrap_or(Value::Null);
    let mut ts = String::new();
    write_rfc3339_ms(&mut ts, a.ts_ms);
    json!({
        "activity_id": 1,
        "activity_name": "Create",
        "category_uid": 2,
        "category_name": "Findings",
        "class_uid": 2004,
        "class_name": "Detection Finding",
        "type_uid": 200401,
        "type_name": "Detection Finding: Create",
        "severity_id": severity_id,
        "severity": severity,
        "status_id": 1,
        "status": "New",
        "time": a.ts_ms,
        "time_dt": ts,
        "message": a.title,
        "confidence_score": (a.score * 100.0).round() as i64,
        "finding_info": {
            "uid": a.id,
            "title": a.title,
            "desc": a.reason,
            "types": a.tags,
            "analytic": {"name": a.detector, "type_id": if a.detector.starts_with("rule:") { 1 } else { 2 },
                          "type": if a.detector.starts_with("rule:") { "Rule" } else { "Behavioral" }},
            "created_time": a.ts_ms,
        },
        "actor": {"app_name": a.agent, "app_uid": a.agent_id, "session": a.session_id.as_ref().map(|s| json!({"uid": s}))},
        "metadata": {
            "version": "1.8.0",
            "product": {"name": "vigil", "vendor_name": "vigil", "version": env!("CARGO_PKG_VERSION")},
            "logged_time": a.emitted_at_ms,
        },
        "unmapped": native,
    })
}

/// Alert lines on stdout.
pub struct StdoutSink {
    out: BufWriter<io::Stdout>,
    format: AlertFormat,
}

impl StdoutSink {
    pub fn new(format: AlertFormat) -> StdoutSink {
        StdoutSink { out: BufWriter::new(io::stdout()), format }
    }
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

impl AlertSink for StdoutSink {
    fn write(&mut self, alert: &Alert, sources: &SourceNames) -> Result<(), SinkError> {
        let mut line = format_alert(alert, self.format, sources, now_ms());
        line.push('\n');
        self.out.write_all(line.as_bytes()).map_err(|e| SinkError::Io { what: "stdout".into(), error: e })
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        self.out.flush().map_err(|e| SinkError::Io { what: "stdout".into(), error: e })
    }
}

/// An append-only JSON Lines file, fsynced on flush.
pub struct FileLines {
    path: PathBuf,
    file: Option<BufWriter<File>>,
    dirty: bool,
}

impl FileLines {
    /// The file is created on the first write.
    pub fn new(path: &Path) -> FileLines {
        FileLines { path: path.to_path_buf(), file: None, dirty: false }
    }

    fn err(&self, e: io::Error) -> SinkError {
        SinkError::Io { what: self.path.display().to_string(), error: e }
    }

    pub fn write_line(&mut self, line: &str) -> Result<(), SinkError> {
        if self.file.is_none() {
            let f = OpenOptions::new().create(true).append(true).open(&self.path).map_err(|e| self.err(e))?;
            self.file = Some(BufWriter::new(f));
        }
        let f = self.file.as_mut().expect("opened above");
        let r = f.write_all(line.as_bytes()).and_then(|_| f.write_all(b"\n"));
        self.dirty = true;
        r.map_err(|e| self.err(e))
    }

    pub fn sync(&mut self) -> Result<(), SinkError> {
        if !self.dirty {
            return Ok(());
        }
        if let Some(f) = &mut self.file {
            let r = f.flush().and_then(|_| f.get_ref().sync_data());
            r.map_err(|e| SinkError::Io { what: self.path.display().to_string(), error: e })?;
        }
        self.dirty = false;
        Ok(())
    }
}

/// Alert lines in a file.
pub struct FileAlertSink {
    file: FileLines,
    format: AlertFormat,
}

impl FileAlertSink {
    pub fn new(path: &Path, format: AlertFormat) -> FileAlertSink {
        FileAlertSink { file: FileLines::new(path), format }
    }
}

impl AlertSink for FileAlertSink {
    fn write(&mut self, alert: &Alert, sources: &SourceNames) -> Result<(), SinkError> {
        self.file.write_line(&format_alert(alert, self.format, sources, now_ms()))
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        self.file.sync()
    }
}

impl RejectSink for FileLines {
    fn write(&mut self, record: &str, _key: Option<&[u8]>) -> Result<(), SinkError> {
        self.write_line(record)
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        self.sync()
    }
}

/// Counts delivery failures reported by librdkafka.
#[derive(Default)]
pub struct DeliveryErrors {
    failed: AtomicU64,
    last: std::sync::Mutex<Option<String>>,
}

/// The producer context: shares the failure counts with the producer's owner.
#[derive(Clone, Default)]
pub struct Deliveries(Arc<DeliveryErrors>);

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((e, _)) = result {
            self.0.failed.fetch_add(1, Ordering::Relaxed);
            if let Ok(mut l) = self.0.last.lock() {
                *l = Some(e.to_string());
            }
        }
    }
}

/// An idempotent Kafka producer whose `flush` waits for every message to be acknowledged.
pub struct TopicProducer {
    producer: BaseProducer<Deliveries>,
    errors: Deliveries,
    topic: String,
    pending: usize,
}

/// How long a flush may wait for acknowledgements.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(30);

impl TopicProducer {
    pub fn new(base: &ClientConfig, topic: &str) -> Result<TopicProducer, SinkError> {
        let errors = Deliveries::default();
        let mut cfg = base.clone();
        cfg.set("enable.idempotence", "true").set("acks", "all").set("linger.ms", "1");
        let producer = cfg.create_with_context(errors.clone()).map_err(|e| SinkError::Kafka(e.to_string()))?;
        Ok(TopicProducer { producer, errors, topic: topic.to_string(), pending: 0 })
    }

    pub fn send(&mut self, key: Option<&[u8]>, payload: &[u8]) -> Result<(), SinkError> {
        let mut rec = BaseRecord::to(&self.topic).payload(payload);
        if let Some(k) = key {
            rec = rec.key(k);
        }
        let mut rec = rec;
        loop {
            match self.producer.send(rec) {
                Ok(()) => break,
                Err((e, back)) => {
                    // The local queue is full: serve delivery reports and try again.
                    if matches!(e.rdkafka_error_code(), Some(rdkafka::types::RDKafkaErrorCode::QueueFull)) {
                        self.producer.poll(Duration::from_millis(10));
                        rec = back;
                        continue;
                    }
                    return Err(SinkError::Kafka(e.to_string()));
                }
            }
        }
        self.pending += 1;
        self.producer.poll(Duration::ZERO);
        Ok(())
    }

    /// Sends a tombstone (a key with no value: deletion in a compacted topic).
    pub fn send_tombstone(&mut self, key: &[u8]) -> Result<(), SinkError> {
        let rec: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(&self.topic).key(key);
        self.producer.send(rec).map_err(|(e, _)| SinkError::Kafka(e.to_string()))?;
        self.pending += 1;
        Ok(())
    }

    /// Waits until the broker acknowledged everything sent; fails if any delivery failed.
    pub fn flush(&mut self) -> Result<(), SinkError> {
        if self.pending == 0 {
            return Ok(());
        }
        self.producer.flush(FLUSH_TIMEOUT).map_err(|e| SinkError::Kafka(format!("flush: {e}")))?;
        self.pending = 0;
        let failed = self.errors.0.failed.swap(0, Ordering::Relaxed);
        if failed > 0 {
            let last = self.errors.0.last.lock().ok().and_then(|l| l.clone()).unwrap_or_default();
            return Err(SinkError::Kafka(format!("{failed} deliveries to {} failed: {last}", self.topic)));
        }
        Ok(())
    }
}

/// Alerts on a Kafka topic (key `agent_id`).
pub struct KafkaAlertSink {
    producer: TopicProducer,
    format: AlertFormat,
}

impl KafkaAlertSink {
    pub fn new(base: &ClientConfig, topic: &str, format: AlertFormat) -> Result<KafkaAlertSink, SinkError> {
        Ok(KafkaAlertSink { producer: TopicProducer::new(base, topic)?, format })
    }
}

impl AlertSink for KafkaAlertSink {
    fn write(&mut self, alert: &Alert, sources: &SourceNames) -> Result<(), SinkError> {
        let line = format_alert(alert, self.format, sources, now_ms());
        self.producer.send(Some(alert.agent_id.as_bytes()), line.as_bytes())
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        self.producer.flush()
    }
}

impl RejectSink for TopicProducer {
    fn write(&mut self, record: &str, key: Option<&[u8]>) -> Result<(), SinkError> {
        self.send(key, record.as_bytes())
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        TopicProducer::flush(self)
    }
}
