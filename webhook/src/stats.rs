//! Telemetry as types: counters and gauges the binary exports to Prometheus (this crate has no Prometheus
//! dependency). Names are fixed here, in one place; the endpoint name is the only label besides `outcome`
//! (never an agent id).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// `vigil_webhook_deliveries_total{endpoint, outcome}`: finished deliveries, `outcome` one of
/// `delivered`, `dead_lettered`, `shadowed`.
pub const METRIC_DELIVERIES: &str = "vigil_webhook_deliveries_total";
/// `vigil_webhook_retries_total{endpoint}`: failed attempts that were scheduled for another try.
pub const METRIC_RETRIES: &str = "vigil_webhook_retries_total";
/// `vigil_webhook_attempts_total{endpoint}`: HTTP requests started.
pub const METRIC_ATTEMPTS: &str = "vigil_webhook_attempts_total";
/// `vigil_webhook_enqueued_total{endpoint}`: alerts written to the outbox for the endpoint.
pub const METRIC_ENQUEUED: &str = "vigil_webhook_enqueued_total";
/// `vigil_webhook_outbox_depth{endpoint}` (gauge): deliveries waiting in the outbox.
pub const METRIC_OUTBOX_DEPTH: &str = "vigil_webhook_outbox_depth";
/// `vigil_webhook_outbox_oldest_age_seconds{endpoint}` (gauge): age of the oldest waiting delivery.
pub const METRIC_OLDEST_AGE: &str = "vigil_webhook_outbox_oldest_age_seconds";
/// `vigil_webhook_outbox_corrupt_records_total` (no endpoint: a corrupt record's endpoint is unreadable).
pub const METRIC_CORRUPT: &str = "vigil_webhook_outbox_corrupt_records_total";
/// `vigil_webhook_signature_failures_total{reason}`: for receivers built on [`crate::verify`], labelled by
/// [`crate::VerifyError::reason`].
pub const METRIC_SIGNATURE_FAILURES: &str = "vigil_webhook_signature_failures_total";

/// Counters and gauges of one endpoint. All relaxed atomics: they are telemetry, not synchronisation.
#[derive(Debug, Default)]
pub struct WebhookStats {
    /// Deliveries answered 2xx.
    pub delivered: AtomicU64,
    /// Failed attempts scheduled for another try.
    pub retried: AtomicU64,
    /// Deliveries given up (horizon passed, or a non-retryable answer) into the dead-letter file.
    pub dead_lettered: AtomicU64,
    /// Alerts a shadow-mode endpoint would have received.
    pub shadowed: AtomicU64,
    /// HTTP requests started.
    pub attempts: AtomicU64,
    /// Alerts written to the outbox for this endpoint (including ones recovered at start).
    pub enqueued: AtomicU64,
    /// Gauge: deliveries waiting (in the outbox, not yet delivered nor dead-lettered).
    pub outbox_depth: AtomicU64,
    /// Gauge: first-enqueue time of the oldest waiting delivery, Unix milliseconds; 0 when none waits.
    pub oldest_pending_enqueued_unix_ms: AtomicU64,
}

/// A plain copy of [`WebhookStats`] at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WebhookStatsSnapshot {
    pub delivered: u64,
    pub retried: u64,
    pub dead_lettered: u64,
    pub shadowed: u64,
    pub attempts: u64,
    pub enqueued: u64,
    pub outbox_depth: u64,
    /// Age of the oldest waiting delivery in whole seconds, 0 when none waits.
    pub oldest_pending_age_secs: u64,
}

impl WebhookStats {
    /// Age of the oldest waiting delivery in seconds, by the wall clock now; 0 when none waits.
    pub fn oldest_pending_age_secs(&self) -> u64 {
        let t = self.oldest_pending_enqueued_unix_ms.load(Ordering::Relaxed);
        if t == 0 {
            0
        } else {
            unix_ms().saturating_sub(t) / 1000
        }
    }

    /// Copies every value.
    pub fn snapshot(&self) -> WebhookStatsSnapshot {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        WebhookStatsSnapshot {
            delivered: l(&self.delivered),
            retried: l(&self.retried),
            dead_lettered: l(&self.dead_lettered),
            shadowed: l(&self.shadowed),
            attempts: l(&self.attempts),
            enqueued: l(&self.enqueued),
            outbox_depth: l(&self.outbox_depth),
            oldest_pending_age_secs: self.oldest_pending_age_secs(),
        }
    }

    pub(crate) fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// Outbox-wide counters (not per endpoint: a corrupt record's endpoint cannot be read).
#[derive(Debug, Default)]
pub struct OutboxStats {
    /// Unreadable stretches of segment files found (at open, or when a record fails its checksum on read).
    pub corrupt_records: AtomicU64,
    /// Unreadable acknowledgement records found at open (each can only cause a duplicate delivery).
    pub corrupt_acks: AtomicU64,
    /// Bytes of torn tails (a write cut short by a crash) found at open.
    pub torn_tail_bytes: AtomicU64,
}

/// Wall clock in Unix milliseconds (0 before 1970, which no supported clock reports).
pub(crate) fn unix_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}
