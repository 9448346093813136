//! Every metric the live detector exports, defined in one place (Prometheus naming; never an
//! `agent_id` label: label values are bounded sets — reasons, detectors, severities, topics).

use prometheus::{
    Encoder, Gauge, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};
use std::sync::{Arc, Mutex};
use vigil_detector::decode::Reason;
use vigil_webhook::{OutboxStats, WebhookStats};

pub struct Metrics {
    pub registry: Registry,
    /// Records received from any source (before decoding).
    pub events_received: IntCounter,
    /// Events scored by the engine.
    pub events_processed: IntCounter,
    /// Records rejected, by reason code.
    pub events_rejected: IntCounterVec,
    pub events_late: IntCounter,
    pub events_duplicate: IntCounter,
    /// Alerts emitted, by detector and severity.
    pub alerts: IntCounterVec,
    /// Time from receiving a batch to its effects being durable.
    pub processing_seconds: Histogram,
    /// Messages behind the high watermark, per topic and partition.
    pub consumer_lag: IntGaugeVec,
    pub agents_tracked: IntGauge,
    /// Kafka partitions this instance currently owns.
    pub partitions_assigned: IntGauge,
    /// Seconds since the last completed checkpoint.
    pub checkpoint_age_seconds: Gauge,
    pub checkpoints: IntCounterVec,
    /// Rule-pack and model reloads, by what and outcome.
    pub reloads: IntCounterVec,
    /// Ingest requests refused because the engine was saturated.
    pub overloaded: IntCounter,
    /// Alerts whose action was withheld (per-agent cooldown, blast-radius cap).
    pub suppressed_actions: IntCounter,
    /// Webhook deliveries by endpoint and outcome (`delivered`, `dead_lettered`, `shadowed`).
    pub webhook_deliveries: IntCounterVec,
    pub webhook_retries: IntCounterVec,
    pub webhook_attempts: IntCounterVec,
    pub webhook_enqueued: IntCounterVec,
    pub webhook_outbox_depth: IntGaugeVec,
    pub webhook_oldest_age: IntGaugeVec,
    pub webhook_corrupt: IntCounter,
    /// The dispatcher's own counters, copied into the metrics above when they are rendered.
    webhook_sources: Mutex<WebhookSources>,
}

#[derive(Default)]
struct WebhookSources {
    endpoints: Vec<(String, Arc<WebhookStats>)>,
    outbox: Option<Arc<OutboxStats>>,
}

/// Raises a counter to `value` (the dispatcher's counters only grow).
fn catch_up(c: &IntCounter, value: u64) {
    let now = c.get();
    if value > now {
        c.inc_by(value - now);
    }
}

fn counter(r: &Registry, name: &str, help: &str) -> IntCounter {
    let c = IntCounter::new(name, help).expect("metric names are valid");
    r.register(Box::new(c.clone())).expect("each metric is registered once");
    c
}

fn counter_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).expect("metric names are valid");
    r.register(Box::new(c.clone())).expect("each metric is registered once");
    c
}

fn gauge_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let g = IntGaugeVec::new(Opts::new(name, help), labels).expect("metric names are valid");
    r.register(Box::new(g.clone())).expect("each metric is registered once");
    g
}

impl Metrics {
    pub fn new() -> Metrics {
        let r = Registry::new();
        let events_rejected =
            counter_vec(&r, "vigil_events_rejected_total", "Records rejected, by reason.", &["reason"]);
        for reason in Reason::ALL {
            events_rejected.with_label_values(&[reason.code()]);
        }
        let processing_seconds = Histogram::with_opts(
            HistogramOpts::new("vigil_processing_seconds", "Time from receiving a batch to its effects being durable.")
                .buckets(vec![0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5]),
        )
        .expect("metric names are valid");
        r.register(Box::new(processing_seconds.clone())).expect("registered once");
        let consumer_lag = IntGaugeVec::new(
            Opts::new("vigil_consumer_lag", "Messages behind the high watermark."),
            &["topic", "partition"],
        )
        .expect("metric names are valid");
        r.register(Box::new(consumer_lag.clone())).expect("registered once");
        let agents_tracked = IntGauge::new("vigil_agents_tracked", "Agents whose state is tracked.").expect("valid");
        r.register(Box::new(agents_tracked.clone())).expect("registered once");
        let partitions_assigned =
            IntGauge::new("vigil_partitions_assigned", "Kafka partitions this instance owns.").expect("valid");
        r.register(Box::new(partitions_assigned.clone())).expect("registered once");
        let checkpoint_age_seconds =
            Gauge::new("vigil_checkpoint_age_seconds", "Seconds since the last completed checkpoint.").expect("valid");
        r.register(Box::new(checkpoint_age_seconds.clone())).expect("registered once");
        Metrics {
            events_received: counter(&r, "vigil_events_received_total", "Records received from any source."),
            events_processed: counter(&r, "vigil_events_processed_total", "Events scored by the engine."),
            events_rejected,
            events_late: counter(&r, "vigil_events_late_total", "Events older than their agent's allowed lateness."),
            events_duplicate: counter(&r, "vigil_events_duplicate_total", "Events dropped as duplicate producer ids."),
            alerts: counter_vec(
                &r,
                "vigil_alerts_total",
                "Alerts emitted, by detector and severity.",
                &["detector", "severity"],
            ),
            processing_seconds,
            consumer_lag,
            agents_tracked,
            partitions_assigned,
            checkpoint_age_seconds,
            checkpoints: counter_vec(&r, "vigil_checkpoints_total", "Checkpoints written, by outcome.", &["outcome"]),
            reloads: counter_vec(
                &r,
                "vigil_reloads_total",
                "Rule-pack and model reloads, by kind and outcome.",
                &["kind", "outcome"],
            ),
            overloaded: counter(
                &r,
                "vigil_ingest_overloaded_total",
                "Ingest requests refused with 503 (engine saturated).",
            ),
            suppressed_actions: counter(
                &r,
                "vigil_actions_suppressed_total",
                "Alerts whose kill or contain was withheld (per-agent cooldown, blast-radius cap).",
            ),
            webhook_deliveries: counter_vec(
                &r,
                vigil_webhook::stats::METRIC_DELIVERIES,
                "Webhook deliveries by endpoint and outcome.",
                &["endpoint", "outcome"],
            ),
            webhook_retries: counter_vec(
                &r,
                vigil_webhook::stats::METRIC_RETRIES,
                "Webhook attempts that were retried.",
                &["endpoint"],
            ),
            webhook_attempts: counter_vec(
                &r,
                vigil_webhook::stats::METRIC_ATTEMPTS,
                "Webhook requests sent.",
                &["endpoint"],
            ),
            webhook_enqueued: counter_vec(
                &r,
                vigil_webhook::stats::METRIC_ENQUEUED,
                "Webhook deliveries written to the outbox.",
                &["endpoint"],
            ),
            webhook_outbox_depth: gauge_vec(
                &r,
                vigil_webhook::stats::METRIC_OUTBOX_DEPTH,
                "Webhook deliveries owed.",
                &["endpoint"],
            ),
            webhook_oldest_age: gauge_vec(
                &r,
                vigil_webhook::stats::METRIC_OLDEST_AGE,
                "Age of the oldest webhook delivery owed.",
                &["endpoint"],
            ),
            webhook_corrupt: counter(
                &r,
                vigil_webhook::stats::METRIC_CORRUPT,
                "Damaged outbox records detected and skipped.",
            ),
            webhook_sources: Mutex::new(WebhookSources::default()),
            registry: r,
        }
    }

    /// Exports the webhook dispatcher's counters from now on.
    pub fn watch_webhooks(&self, endpoints: Vec<(String, Arc<WebhookStats>)>, outbox: Option<Arc<OutboxStats>>) {
        if let Ok(mut w) = self.webhook_sources.lock() {
            *w = WebhookSources { endpoints, outbox };
        }
    }

    fn sync_webhooks(&self) {
        let Ok(w) = self.webhook_sources.lock() else { return };
        for (name, stats) in &w.endpoints {
            let s = stats.snapshot();
            for (outcome, v) in
                [("delivered", s.delivered), ("dead_lettered", s.dead_lettered), ("shadowed", s.shadowed)]
            {
                catch_up(&self.webhook_deliveries.with_label_values(&[name, outcome]), v);
            }
            catch_up(&self.webhook_retries.with_label_values(&[name]), s.retried);
            catch_up(&self.webhook_attempts.with_label_values(&[name]), s.attempts);
            catch_up(&self.webhook_enqueued.with_label_values(&[name]), s.enqueued);
            self.webhook_outbox_depth.with_label_values(&[name]).set(s.outbox_depth as i64);
            self.webhook_oldest_age.with_label_values(&[name]).set(s.oldest_pending_age_secs as i64);
        }
        if let Some(o) = &w.outbox {
            let corrupt = o.corrupt_records.load(std::sync::atomic::Ordering::Relaxed)
                + o.corrupt_acks.load(std::sync::atomic::Ordering::Relaxed);
            catch_up(&self.webhook_corrupt, corrupt);
        }
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        self.sync_webhooks();
        let mut buf = Vec::new();
        // Encoding gathered metric families into memory cannot fail.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text_with_vigil_names() {
        let m = Metrics::new();
        m.events_processed.inc_by(3);
        m.alerts.with_label_values(&["entropy", "high"]).inc();
        let text = m.render();
        assert!(text.contains("vigil_events_processed_total 3"));
        assert!(text.contains("vigil_alerts_total{detector=\"entropy\",severity=\"high\"} 1"));
        assert!(text.contains("vigil_events_rejected_total{reason=\"too_deep\"} 0"));
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            assert!(line.starts_with("vigil_"), "{line}");
            assert!(!line.contains("agent_id"));
        }
    }
}
