//! Containment webhooks in the live detector. Alerts are written to the endpoints' durable outbox as
//! part of the alert sink's flush, so the HTTP 2xx answer or the Kafka commit that follows a flush
//! comes after the outbox write (at least once); the dispatcher sends from the outbox in the
//! background, and an outbox left over from a crash is drained at the next start.

use crate::metrics::Metrics;
use crate::sinks::{AlertSink, SinkError};
use crate::SourceNames;
use std::path::Path;
use vigil_detector::alert::Alert;
use vigil_webhook::{validate_all, Dispatcher, DispatcherOptions, EndpointConfig, Mode, Outbox, Submitter};

/// The outbox's directory inside `[state] dir`.
pub const OUTBOX_DIR: &str = "webhook-outbox";

/// Opens the webhook outbox in `state_dir`, logging damaged records it stepped over.
pub fn open_outbox(state_dir: &Path) -> Result<Outbox, String> {
    let (outbox, report) = Outbox::open(state_dir.join(OUTBOX_DIR)).map_err(|e| e.to_string())?;
    if !report.is_clean() {
        tracing::warn!(report = ?report, "Webhook outbox had damaged records; they were skipped.");
    }
    Ok(outbox)
}

/// Starts the dispatcher for `[[webhook]]` endpoints (on the current tokio runtime). Enforce-mode
/// endpoints need a state directory for the outbox; shadow-only configurations do not.
pub fn start(
    tables: &[EndpointConfig],
    state_dir: Option<&Path>,
    metrics: &Metrics,
) -> Result<Option<Dispatcher>, String> {
    if tables.is_empty() {
        return Ok(None);
    }
    let endpoints = validate_all(tables).map_err(|e| e.to_string())?;
    let enforce = endpoints.iter().any(|e| e.mode == Mode::Enforce);
    let outbox = match (state_dir, enforce) {
        (Some(dir), _) => Some(open_outbox(dir)?),
        (None, true) => {
            return Err(
                "[[webhook]] endpoints in enforce mode need `[state] dir` (the durable outbox lives there)".into()
            )
        }
        (None, false) => None,
    };
    let dispatcher = Dispatcher::start(endpoints, outbox, DispatcherOptions::default()).map_err(|e| e.to_string())?;
    metrics.watch_webhooks(dispatcher.stats(), dispatcher.outbox_stats());
    for (name, _) in dispatcher.stats() {
        tracing::info!(endpoint = %name, "Webhook endpoint ready.");
    }
    Ok(Some(dispatcher))
}

/// An alert sink that also hands every alert to the webhook dispatcher when it is flushed.
pub struct WebhookTee {
    inner: Box<dyn AlertSink>,
    submitter: Submitter,
    pending: Vec<Alert>,
    sources: SourceNames,
}

impl WebhookTee {
    pub fn new(inner: Box<dyn AlertSink>, submitter: Submitter) -> WebhookTee {
        WebhookTee { inner, submitter, pending: Vec::new(), sources: SourceNames::new() }
    }
}

/// Wraps `sink` in a [`WebhookTee`] when webhooks are configured.
pub fn with_webhooks(sink: Box<dyn AlertSink>, submitter: Option<&Submitter>) -> Box<dyn AlertSink> {
    match submitter {
        Some(s) => Box::new(WebhookTee::new(sink, s.clone())),
        None => sink,
    }
}

impl AlertSink for WebhookTee {
    fn write(&mut self, alert: &Alert, sources: &SourceNames) -> Result<(), SinkError> {
        self.inner.write(alert, sources)?;
        if self.sources != *sources {
            self.sources = sources.clone();
        }
        let mut a = alert.clone();
        a.emitted_at_ms = Some(crate::sinks::now_ms());
        self.pending.push(a);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        self.inner.flush()?;
        if self.pending.is_empty() {
            return Ok(());
        }
        // Submitted once: a failed outbox write fails the flush, and the caller reprocesses (Kafka
        // rewinds to its checkpoint) or answers 503, which re-emits these alerts with the same ids.
        let alerts = std::mem::take(&mut self.pending);
        self.submitter.submit_batch(&alerts, &self.sources).map_err(|e| SinkError::Webhook(e.to_string()))?;
        Ok(())
    }
}

/// Ends the dispatcher: in-flight requests get `grace`; what is still owed stays in the outbox.
pub async fn shutdown(dispatcher: Option<Dispatcher>, grace: std::time::Duration) {
    if let Some(d) = dispatcher {
        let report = d.shutdown(grace).await;
        if report.pending > 0 {
            tracing::info!(
                pending = report.pending,
                "Webhook deliveries still owed stay in the outbox for the next start."
            );
        }
    }
}
