//! Containment webhooks: signed, durable, at-least-once deliveries of vigil alerts to kill switches.
//!
//! A kill switch that can be lost, forged or spammed is worse than none. This crate owns the path from "the
//! engine emitted an alert" to "the receiver answered 2xx", and nothing before it: it does not decide *whether*
//! an alert asks for `kill` or `contain` (cooldowns and the blast-radius cap live in the detector, which writes
//! the decision into `Alert::action`), it knows nothing of Kafka, HTTP ingest or offsets, and it never reads the
//! wall clock to make a detection decision. The binary wires it in: it builds endpoints from the `[[webhook]]`
//! tables, opens the outbox in `[state] dir`, and commits a source position only after
//! [`Submitter::submit_batch`] has returned for every alert that position produced.
//!
//! **Lost.** An alert bound for an endpoint is appended to the [`Outbox`], a checksummed append-only log, and
//! fsynced before `submit` returns (one fsync per batch). Only a 2xx answer, or a decision to give up, is
//! acknowledged — in a second checksummed log — so a crash at any point means a delivery is repeated, never
//! skipped. Repeats carry the same `webhook-id` (the alert id, itself deterministic across reprocessing), so
//! receivers de-duplicate. Damaged records (flipped bits, torn writes) are detected, reported and stepped over;
//! they never stop the detector, and nothing an attacker puts into event content can pass for a record.
//!
//! **Forged.** Every request carries Standard Webhooks headers: `webhook-id`, `webhook-timestamp` and
//! `webhook-signature` (`v1,` + HMAC-SHA256 over `id.timestamp.body`, one signature per secret while a key
//! rotates). [`verify`] is what a receiver runs: 5-minute timestamp tolerance, constant-time comparison, any of
//! several signatures may match, and empty, truncated or `v1,`-only signatures fail.
//!
//! **Spammed, or stuck.** The [`Dispatcher`] gives each (endpoint, agent) pair an ordered lane: an agent's later
//! alert is not sent before its earlier one is delivered or dead-lettered, while other agents' lanes proceed
//! (bounded per endpoint by `max_in_flight`). Connect errors, time-outs, 408, 429 and 5xx are retried with
//! exponential back-off and jitter (first retry within 1 s, steps capped at 30 s, `Retry-After` honoured) until
//! `retry_horizon_secs` after the first enqueue; then, and at once for any other 4xx, the delivery goes to
//! `webhook-dead-letter.jsonl` with a metric and a log line. Redirects are not followed: a kill switch is not
//! steered elsewhere. Shadow mode (`mode = "shadow"`, and `vigil replay` by default) logs and counts what would
//! have been sent and sends nothing.
//!
//! Telemetry is plain atomics in [`WebhookStats`] and [`OutboxStats`], with the metric names fixed in
//! [`stats`]; the binary exports them.
//!
//! ```no_run
//! # async fn run(tables: Vec<vigil_webhook::EndpointConfig>, alerts: Vec<vigil_detector::Alert>) -> Result<(), vigil_webhook::Error> {
//! use vigil_webhook::{validate_all, Dispatcher, DispatcherOptions, Outbox};
//! let endpoints = validate_all(&tables)?;
//! let (outbox, report) = Outbox::open("vigil-state")?;
//! if !report.is_clean() { /* already logged; export report.corrupt_regions */ }
//! let dispatcher = Dispatcher::start(endpoints, Some(outbox), DispatcherOptions::default())?;
//! let submitter = dispatcher.submitter();
//! let sources = vec!["events.jsonl".to_string()];
//! tokio::task::spawn_blocking(move || submitter.submit_batch(&alerts, &sources)).await.unwrap()?;
//! // ... now the source positions behind `alerts` may be committed ...
//! dispatcher.shutdown(std::time::Duration::from_secs(5)).await;
//! # Ok(()) }
//! ```

pub mod config;
pub mod dispatch;
pub mod error;
pub mod outbox;
pub mod retry;
pub mod signature;
pub mod stats;
#[cfg(test)]
mod testkit;

pub use config::{validate_all, Endpoint, EndpointConfig, Filter, Mode};
pub use dispatch::{payload, Dispatcher, DispatcherOptions, ShutdownReport, Submitted, Submitter};
pub use error::{Error, VerifyError};
pub use outbox::{AckKind, DeadLetter, NewRecord, OpenReport, Outbox, OutboxOptions, Pending};
pub use retry::RetryPolicy;
pub use signature::{sign, signature_header, verify, Secret, TIMESTAMP_TOLERANCE_SECS};
pub use stats::{OutboxStats, WebhookStats, WebhookStatsSnapshot};
