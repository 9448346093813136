//! The engine thread of the HTTP-fed detector: ingest requests arrive as jobs on a bounded queue,
//! are processed in arrival order, and are answered only once their effects are durable (alerts
//! flushed to their sink, rejects to theirs). Checkpoints are jobs too, so they see a consistent
//! engine between batches.

use crate::metrics::Metrics;
use crate::processor::{BatchCounts, Outcome, Processor, Record};
use crate::reload::{ModelUpdates, PackUpdates};
use crate::sinks::{AlertSink, RejectSink, SinkError};
use crate::store::{Checkpoint, StateDir, StoreError};
use crate::SourceNames;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{mpsc, oneshot};

/// Name of the HTTP-fed engine's checkpoint in the state directory.
pub const CHECKPOINT_NAME: &str = "http-engine";

pub enum Job {
    Ingest { records: Vec<Record>, received: Instant, reply: oneshot::Sender<Result<BatchCounts, SinkError>> },
    Checkpoint { reply: Option<oneshot::Sender<Result<(), StoreError>>> },
}

pub struct Worker {
    pub processor: Processor,
    pub alerts: Box<dyn AlertSink>,
    pub rejects: Box<dyn RejectSink>,
    pub metrics: Arc<Metrics>,
    pub sources: SourceNames,
    pub state: Option<StateDir>,
    /// Rule packs published by the watcher, applied between jobs.
    pub packs: PackUpdates,
    pub models: ModelUpdates,
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// Counts an outcome in the metrics and hands its alert or dead-letter record to the sinks (durable
/// at their next flush). Shared by every source.
pub fn deliver(
    outcome: &Outcome,
    key: Option<&[u8]>,
    m: &Metrics,
    alerts: &mut dyn AlertSink,
    rejects: &mut dyn RejectSink,
    sources: &SourceNames,
) -> Result<(), SinkError> {
    match outcome {
        Outcome::Rejected { line, reason } => {
            m.events_rejected.with_label_values(&[reason.code()]).inc();
            rejects.write(line, key)?;
        }
        Outcome::Scored { verdict } => {
            if verdict.duplicate {
                m.events_duplicate.inc();
            } else {
                m.events_processed.inc();
            }
            if verdict.late {
                m.events_late.inc();
            }
            for alert in verdict.alert.iter().chain(&verdict.notice) {
                m.alerts.with_label_values(&[alert.detector.as_str(), alert.severity.name()]).inc();
                if alert.suppressed_action.is_some() {
                    m.suppressed_actions.inc();
                }
                alerts.write(alert, sources)?;
            }
        }
    }
    Ok(())
}

impl Worker {
    /// Processes one batch and makes its effects durable.
    pub fn ingest(&mut self, records: &[Record]) -> Result<BatchCounts, SinkError> {
        let now = now_ms();
        let mut counts = BatchCounts::default();
        let m = &self.metrics;
        m.events_received.inc_by(records.len() as u64);
        for rec in records {
            let outcome = self.processor.process(rec, &self.sources, now);
            counts.add(&outcome);
            deliver(&outcome, rec.key.as_deref(), m, &mut *self.alerts, &mut *self.rejects, &self.sources)?;
        }
        self.rejects.flush()?;
        self.alerts.flush()?;
        m.agents_tracked.set(self.processor.engine.agents() as i64);
        Ok(counts)
    }

    /// Writes a checkpoint of the engine (a no-op without a state directory).
    pub fn checkpoint(&mut self) -> Result<(), StoreError> {
        let Some(state) = &self.state else { return Ok(()) };
        let ckpt = Checkpoint { next_offset: 0, taken_at_ms: now_ms(), engine: self.processor.engine.snapshot() };
        let r = state.save(CHECKPOINT_NAME, &ckpt);
        self.metrics.checkpoints.with_label_values(&[if r.is_ok() { "ok" } else { "error" }]).inc();
        if r.is_ok() {
            self.metrics.checkpoint_age_seconds.set(0.0);
        }
        r
    }

    /// Serves jobs until the queue closes, then writes a final checkpoint.
    pub fn run(mut self, mut rx: mpsc::Receiver<Job>) {
        while let Some(job) = rx.blocking_recv() {
            if let Some(pack) = self.packs.take_new() {
                self.processor.engine.set_pack(pack);
            }
            if let Some(models) = self.models.take_new() {
                self.processor.engine.set_models(Some(models));
            }
            match job {
                Job::Ingest { records, received, reply } => {
                    let r = self.ingest(&records);
                    if let Err(e) = &r {
                        tracing::error!(error = %e, "Ingest batch failed; the client will retry.");
                    }
                    self.metrics.processing_seconds.observe(received.elapsed().as_secs_f64());
                    let _ = reply.send(r);
                }
                Job::Checkpoint { reply } => {
                    let r = self.checkpoint();
                    if let Err(e) = &r {
                        tracing::error!(error = %e, "Checkpoint failed.");
                    }
                    if let Some(reply) = reply {
                        let _ = reply.send(r);
                    }
                }
            }
        }
        if let Err(e) = self.checkpoint() {
            tracing::error!(error = %e, "Final checkpoint failed.");
        } else if self.state.is_some() {
            tracing::info!("Final checkpoint written.");
        }
    }
}
