//! The sender: drains the outbox per endpoint, one ordered lane per agent, bounded concurrency, back-off.

use crate::config::{Endpoint, Mode};
use crate::error::Error;
use crate::outbox::{AckKind, DeadLetter, NewRecord, Outbox, Pending};
use crate::retry::{classify, parse_retry_after, unit_from, RetryPolicy, Verdict};
use crate::signature::signature_header;
use crate::stats::{unix_ms, OutboxStats, WebhookStats};
use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER, USER_AGENT};
use http::{HeaderValue, Request};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use vigil_detector::alert::SourceNames;
use vigil_detector::json::write_str;
use vigil_detector::time::format_rfc3339_ms;
use vigil_detector::Alert;

#[cfg(not(feature = "https"))]
type Connector = HttpConnector;
#[cfg(feature = "https")]
type Connector = hyper_rustls::HttpsConnector<HttpConnector>;
type HttpClient = Client<Connector, Full<Bytes>>;

/// Most bytes of an answer's body read (and discarded) so the connection can be reused.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// The JSON body POSTed for an alert: `{"type": "vigil.alert", "alert": <alert>, "action": "<action>",
/// "agent_id": "..."}`.
pub fn payload(alert: &Alert, sources: &dyn SourceNames) -> String {
    let mut s = String::with_capacity(1024);
    s.push_str("{\"type\":\"vigil.alert\",\"alert\":");
    alert.write_json(&mut s, sources);
    s.push_str(",\"action\":\"");
    s.push_str(alert.action.name());
    s.push_str("\",\"agent_id\":");
    write_str(&mut s, &alert.agent_id);
    s.push('}');
    s
}

/// Tuning of a [`Dispatcher`] that is not part of the configuration file.
#[derive(Clone, Debug)]
pub struct DispatcherOptions {
    /// Back-off between attempts.
    pub retry: RetryPolicy,
    /// `User-Agent` of every request.
    pub user_agent: String,
}

impl Default for DispatcherOptions {
    fn default() -> Self {
        DispatcherOptions {
            retry: RetryPolicy::default(),
            user_agent: concat!("vigil-webhook/", env!("CARGO_PKG_VERSION")).to_string(),
        }
    }
}

/// What one [`Submitter::submit_batch`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Submitted {
    /// Deliveries written to the outbox (one per alert and accepting enforce-mode endpoint).
    pub enqueued: usize,
    /// Deliveries a shadow-mode endpoint would have received (logged and counted, not sent).
    pub shadowed: usize,
}

/// What [`Dispatcher::shutdown`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShutdownReport {
    /// False when the grace period ran out and requests still in flight were abandoned (they stay in the
    /// outbox and are sent again at the next start).
    pub clean: bool,
    /// Deliveries still owed, kept in the outbox for the next start.
    pub pending: usize,
}

/// Sends alerts to the configured endpoints. Create it inside a tokio runtime; feed it with
/// [`Dispatcher::submit`] / [`Dispatcher::submitter`]; end it with [`Dispatcher::shutdown`].
pub struct Dispatcher {
    shared: Arc<Shared>,
    acker: Option<JoinHandle<()>>,
}

/// A cheap, cloneable handle for submitting alerts from any thread (for example inside `spawn_blocking`).
#[derive(Clone)]
pub struct Submitter {
    shared: Arc<Shared>,
}

struct Shared {
    endpoints: Vec<EndpointState>,
    outbox: Option<Arc<Outbox>>,
    client: HttpClient,
    retry: RetryPolicy,
    user_agent: HeaderValue,
    /// No new attempts: finish what is in flight.
    stop: CancellationToken,
    /// Abandon requests in flight.
    abort: CancellationToken,
    /// The acknowledgement writer may finish once its queue is empty.
    acks_done: CancellationToken,
    acks: mpsc::UnboundedSender<(u64, AckKind)>,
    /// Held across "append to the outbox, then queue in the lanes", so that concurrent submitters cannot queue
    /// an agent's deliveries out of their append order.
    submit_order: Mutex<()>,
    tracker: TaskTracker,
    runtime: tokio::runtime::Handle,
}

struct EndpointState {
    ep: Endpoint,
    stats: Arc<WebhookStats>,
    permits: Arc<Semaphore>,
    sched: Mutex<Sched>,
}

#[derive(Default)]
struct Sched {
    /// One FIFO lane per agent with deliveries owed; a lane exists exactly while a task drains it.
    lanes: HashMap<Arc<str>, VecDeque<Pending>>,
    /// Owed deliveries: sequence number -> first-enqueue Unix ms (for the depth and oldest-age gauges).
    owed: BTreeMap<u64, u64>,
}

impl EndpointState {
    fn lock(&self) -> MutexGuard<'_, Sched> {
        self.sched.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Sched {
    fn publish(&self, stats: &WebhookStats) {
        stats.outbox_depth.store(self.owed.len() as u64, Ordering::Relaxed);
        stats.oldest_pending_enqueued_unix_ms.store(self.owed.values().next().copied().unwrap_or(0), Ordering::Relaxed);
    }
}

/// How one delivery ended.
enum Finish {
    Done(AckKind),
    /// Finished for this run, but not acknowledged (the dead-letter record could not be written): the next start
    /// tries it again.
    Unacked,
    /// Shutting down: the delivery stays owed and the lane stops.
    Stopped,
}

/// How one attempt ended.
enum Attempt {
    Delivered(u16),
    Retry { status: Option<u16>, error: Option<String>, retry_after: Option<Duration> },
    Reject(u16),
    Invalid(String),
}

fn build_client() -> Result<HttpClient, Error> {
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    #[cfg(feature = "https")]
    let connector = {
        http.enforce_http(false);
        hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()
            .map_err(|e| Error::io("load the platform's root certificates for", "https", e))?
            .https_or_http()
            .enable_http1()
            .wrap_connector(http)
    };
    #[cfg(not(feature = "https"))]
    let connector = http;
    Ok(Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(64)
        .build(connector))
}

impl Dispatcher {
    /// Starts the dispatcher on the current tokio runtime: every delivery owed in `outbox` (recovered at open)
    /// is scheduled again in sequence order. `outbox` may be `None` only when every endpoint is in shadow
    /// mode (for example `vigil replay` without `--enforce-webhooks`).
    pub fn start(
        endpoints: Vec<Endpoint>,
        outbox: Option<Outbox>,
        options: DispatcherOptions,
    ) -> Result<Dispatcher, Error> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| Error::NoRuntime)?;
        if outbox.is_none() {
            if let Some(ep) = endpoints.iter().find(|e| e.mode == Mode::Enforce) {
                return Err(Error::OutboxRequired { endpoint: ep.name.clone() });
            }
        }
        let user_agent = HeaderValue::from_str(&options.user_agent).map_err(|_| Error::Config {
            endpoint: String::new(),
            key: "user_agent",
            message: "must be visible ASCII".into(),
        })?;
        let outbox = outbox.map(Arc::new);
        let (tx, rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            endpoints: endpoints
                .into_iter()
                .map(|ep| EndpointState {
                    permits: Arc::new(Semaphore::new(ep.max_in_flight)),
                    ep,
                    stats: Arc::new(WebhookStats::default()),
                    sched: Mutex::new(Sched::default()),
                })
                .collect(),
            outbox: outbox.clone(),
            client: build_client()?,
            retry: options.retry,
            user_agent,
            stop: CancellationToken::new(),
            abort: CancellationToken::new(),
            acks_done: CancellationToken::new(),
            acks: tx,
            submit_order: Mutex::new(()),
            tracker: TaskTracker::new(),
            runtime: runtime.clone(),
        });
        let acker = outbox.as_ref().map(|ob| runtime.spawn(ack_writer(ob.clone(), rx, shared.acks_done.clone())));
        if let Some(ob) = &outbox {
            let by_name: HashMap<&str, usize> =
                shared.endpoints.iter().enumerate().map(|(i, e)| (e.ep.name.as_str(), i)).collect();
            for p in ob.pending() {
                match by_name.get(&*p.endpoint) {
                    Some(&i) if shared.endpoints[i].ep.mode == Mode::Enforce => {
                        WebhookStats::inc(&shared.endpoints[i].stats.enqueued);
                        schedule(&shared, i, p);
                    }
                    Some(&i) => {
                        let st = &shared.endpoints[i];
                        WebhookStats::inc(&st.stats.shadowed);
                        tracing::info!(
                            endpoint = %st.ep.name,
                            alert_id = %p.alert_id,
                            agent_id = %p.agent_id,
                            "Webhook owed from an earlier run released unsent: the endpoint is in shadow mode."
                        );
                        let _ = shared.acks.send((p.seq, AckKind::Shadowed));
                    }
                    None => {
                        let shared2 = shared.clone();
                        shared.tracker.spawn_on(
                            async move {
                                tracing::warn!(
                                    endpoint = %p.endpoint,
                                    alert_id = %p.alert_id,
                                    "Webhook owed to an endpoint no longer configured; dead-lettered."
                                );
                                let dl = DeadLetterInfo {
                                    reason: "unknown_endpoint",
                                    attempts: 0,
                                    last_status: None,
                                    last_error: None,
                                    body: None,
                                };
                                if write_dead_letter(&shared2, &p, dl).await {
                                    let _ = shared2.acks.send((p.seq, AckKind::DeadLettered));
                                }
                            },
                            &runtime,
                        );
                    }
                }
            }
        }
        Ok(Dispatcher { shared, acker })
    }

    /// A cloneable handle for submitting from other tasks or threads.
    pub fn submitter(&self) -> Submitter {
        Submitter { shared: self.shared.clone() }
    }

    /// See [`Submitter::submit`].
    pub fn submit(&self, alert: &Alert, sources: &dyn SourceNames) -> Result<Submitted, Error> {
        submit_batch(&self.shared, std::slice::from_ref(alert), sources)
    }

    /// See [`Submitter::submit_batch`].
    pub fn submit_batch(&self, alerts: &[Alert], sources: &dyn SourceNames) -> Result<Submitted, Error> {
        submit_batch(&self.shared, alerts, sources)
    }

    /// Each endpoint's name and counters, in configuration order.
    pub fn stats(&self) -> Vec<(String, Arc<WebhookStats>)> {
        self.shared.endpoints.iter().map(|e| (e.ep.name.clone(), e.stats.clone())).collect()
    }

    /// Outbox-wide counters (`None` without an outbox).
    pub fn outbox_stats(&self) -> Option<Arc<OutboxStats>> {
        self.shared.outbox.as_ref().map(|o| o.stats())
    }

    /// Path of the dead-letter file (`None` without an outbox).
    pub fn dead_letter_path(&self) -> Option<std::path::PathBuf> {
        self.shared.outbox.as_ref().map(|o| o.dead_letter_path())
    }

    /// Stops: no new attempts start, back-off waits end, requests in flight get up to `grace` to finish (each
    /// is also bounded by its endpoint's `timeout_ms`); then acknowledgements are flushed. Undelivered alerts
    /// stay in the outbox for the next start.
    pub async fn shutdown(mut self, grace: Duration) -> ShutdownReport {
        let shared = self.shared.clone();
        shared.stop.cancel();
        shared.tracker.close();
        let clean = tokio::time::timeout(grace, shared.tracker.wait()).await.is_ok();
        if !clean {
            shared.abort.cancel();
            shared.tracker.wait().await;
        }
        shared.acks_done.cancel();
        if let Some(acker) = self.acker.take() {
            let _ = acker.await;
        }
        let pending = shared.outbox.as_ref().map_or(0, |o| o.pending_len());
        tracing::info!(clean, pending, "Webhook dispatcher stopped.");
        ShutdownReport { clean, pending }
    }
}

impl Drop for Dispatcher {
    fn drop(&mut self) {
        // Dropped without `shutdown`: tell the tasks to go; whatever is owed stays in the outbox.
        if self.acker.is_some() {
            self.shared.stop.cancel();
            self.shared.abort.cancel();
            self.shared.acks_done.cancel();
        }
    }
}

impl Submitter {
    /// Routes one alert to every endpoint whose filter accepts it; see [`Submitter::submit_batch`].
    pub fn submit(&self, alert: &Alert, sources: &dyn SourceNames) -> Result<Submitted, Error> {
        submit_batch(&self.shared, std::slice::from_ref(alert), sources)
    }

    /// Routes alerts (in emission order) to every endpoint whose filter accepts them: enforce-mode deliveries
    /// are written to the outbox with **one fsync for the whole batch**, then scheduled; shadow-mode ones are
    /// logged and counted. When this returns `Ok`, the source positions that produced the alerts may count as
    /// done. It blocks for that fsync: from async code, call it inside `spawn_blocking`.
    pub fn submit_batch(&self, alerts: &[Alert], sources: &dyn SourceNames) -> Result<Submitted, Error> {
        submit_batch(&self.shared, alerts, sources)
    }
}

fn submit_batch(shared: &Arc<Shared>, alerts: &[Alert], sources: &dyn SourceNames) -> Result<Submitted, Error> {
    let mut out = Submitted::default();
    // One body per alert that any enforce-mode endpoint takes, shared by those endpoints.
    let mut bodies: Vec<Option<String>> = vec![None; alerts.len()];
    let mut routes: Vec<(usize, usize)> = Vec::new(); // (alert index, endpoint index)
    for (ai, alert) in alerts.iter().enumerate() {
        for (ei, st) in shared.endpoints.iter().enumerate() {
            if !st.ep.filter.accepts(alert) {
                continue;
            }
            match st.ep.mode {
                Mode::Shadow => {
                    out.shadowed += 1;
                    WebhookStats::inc(&st.stats.shadowed);
                    tracing::info!(
                        endpoint = %st.ep.name,
                        alert_id = %alert.id,
                        agent_id = %alert.agent_id,
                        action = alert.action.name(),
                        severity = alert.severity.name(),
                        "Webhook not sent (shadow mode)."
                    );
                }
                Mode::Enforce => {
                    if bodies[ai].is_none() {
                        bodies[ai] = Some(payload(alert, sources));
                    }
                    routes.push((ai, ei));
                }
            }
        }
    }
    if routes.is_empty() {
        return Ok(out);
    }
    let outbox = shared.outbox.as_ref().expect("enforce-mode endpoints imply an outbox (checked at start)");
    let records: Vec<NewRecord<'_>> = routes
        .iter()
        .map(|&(ai, ei)| NewRecord {
            endpoint: &shared.endpoints[ei].ep.name,
            alert_id: &alerts[ai].id,
            agent_id: &alerts[ai].agent_id,
            body: bodies[ai].as_deref().expect("body built for every routed alert"),
        })
        .collect();
    let _order = shared.submit_order.lock().unwrap_or_else(|p| p.into_inner());
    let pending = outbox.append_batch(&records)?;
    out.enqueued = pending.len();
    for (p, &(_, ei)) in pending.into_iter().zip(&routes) {
        WebhookStats::inc(&shared.endpoints[ei].stats.enqueued);
        schedule(shared, ei, p);
    }
    Ok(out)
}

/// Queues a delivery in its agent's lane, starting a lane task when the agent has none.
fn schedule(shared: &Arc<Shared>, ei: usize, p: Pending) {
    let st = &shared.endpoints[ei];
    let start = {
        let mut s = st.lock();
        s.owed.insert(p.seq, p.enqueued_unix_ms);
        s.publish(&st.stats);
        match s.lanes.get_mut(&p.agent_id) {
            Some(lane) => {
                lane.push_back(p);
                None
            }
            None => {
                let agent = p.agent_id.clone();
                s.lanes.insert(agent.clone(), VecDeque::from([p]));
                Some(agent)
            }
        }
    };
    if let Some(agent) = start {
        if !shared.stop.is_cancelled() {
            shared.tracker.spawn_on(drain_lane(shared.clone(), ei, agent), &shared.runtime);
        }
    }
}

/// Delivers one agent's deliveries to one endpoint strictly in order, until the lane is empty.
async fn drain_lane(shared: Arc<Shared>, ei: usize, agent: Arc<str>) {
    let st = &shared.endpoints[ei];
    loop {
        let head = st.lock().lanes.get(&agent).and_then(|l| l.front().cloned());
        let Some(p) = head else {
            st.lock().lanes.remove(&agent);
            return;
        };
        match deliver(&shared, st, &p).await {
            Finish::Stopped => return,
            Finish::Done(kind) => {
                let _ = shared.acks.send((p.seq, kind));
            }
            Finish::Unacked => {}
        }
        let mut s = st.lock();
        s.owed.remove(&p.seq);
        s.publish(&st.stats);
        let lane = s.lanes.get_mut(&agent).expect("a lane lives while its task runs");
        lane.pop_front();
        if lane.is_empty() {
            s.lanes.remove(&agent);
            return;
        }
    }
}

struct DeadLetterInfo {
    reason: &'static str,
    attempts: u32,
    last_status: Option<u16>,
    last_error: Option<String>,
    body: Option<Bytes>,
}

/// Writes the dead-letter line (off the async threads: it fsyncs). False when it could not be written; the
/// delivery then stays owed and is tried again at the next start.
async fn write_dead_letter(shared: &Arc<Shared>, p: &Pending, info: DeadLetterInfo) -> bool {
    let Some(outbox) = shared.outbox.clone() else { return false };
    let p = p.clone();
    let res = tokio::task::spawn_blocking(move || {
        let raw = info
            .body
            .as_ref()
            .and_then(|b| std::str::from_utf8(b).ok())
            .and_then(|s| serde_json::value::RawValue::from_string(s.to_owned()).ok());
        let dl = DeadLetter {
            ts: format_rfc3339_ms(unix_ms() as i64),
            endpoint: &p.endpoint,
            alert_id: &p.alert_id,
            agent_id: &p.agent_id,
            seq: p.seq,
            first_enqueued_at: format_rfc3339_ms(p.enqueued_unix_ms as i64),
            attempts: info.attempts,
            reason: info.reason,
            last_status: info.last_status,
            last_error: info.last_error,
            payload: raw.as_deref(),
        };
        outbox.write_dead_letter(&dl)
    })
    .await;
    match res {
        Ok(Ok(())) => true,
        Ok(Err(e)) => {
            tracing::error!(error = %e, "Cannot write the webhook dead-letter record; the delivery stays owed.");
            false
        }
        Err(e) => {
            tracing::error!(error = %e, "Webhook dead-letter writer failed; the delivery stays owed.");
            false
        }
    }
}

/// One delivery, attempt after attempt, until delivered, rejected, past its horizon, or stopped.
async fn deliver(shared: &Arc<Shared>, st: &EndpointState, p: &Pending) -> Finish {
    let ep = &st.ep;
    let outbox = shared.outbox.as_ref().expect("lanes exist only with an outbox");
    let body = match outbox.read_body(p) {
        Ok(b) => Bytes::from(b),
        Err(e) => {
            let info = DeadLetterInfo {
                reason: "corrupt",
                attempts: 0,
                last_status: None,
                last_error: Some(e.to_string()),
                body: None,
            };
            return dead_letter(shared, st, p, info).await;
        }
    };
    let deadline_ms = p.enqueued_unix_ms.saturating_add(ep.retry_horizon.as_millis() as u64);
    let mut attempts = 0u32;
    loop {
        if shared.stop.is_cancelled() {
            return Finish::Stopped;
        }
        let permit = tokio::select! {
            biased;
            _ = shared.stop.cancelled() => return Finish::Stopped,
            p = st.permits.clone().acquire_owned() => p.expect("the semaphore is never closed"),
        };
        attempts += 1;
        WebhookStats::inc(&st.stats.attempts);
        let outcome = tokio::select! {
            biased;
            _ = shared.abort.cancelled() => return Finish::Stopped,
            r = attempt(shared, ep, p, body.clone()) => r,
        };
        drop(permit);
        let (status, error, retry_after) = match outcome {
            Attempt::Delivered(status) => {
                WebhookStats::inc(&st.stats.delivered);
                tracing::debug!(endpoint = %ep.name, alert_id = %p.alert_id, status, attempts, "Webhook delivered.");
                return Finish::Done(AckKind::Delivered);
            }
            Attempt::Reject(status) => {
                let info = DeadLetterInfo {
                    reason: "rejected",
                    attempts,
                    last_status: Some(status),
                    last_error: None,
                    body: Some(body),
                };
                return dead_letter(shared, st, p, info).await;
            }
            Attempt::Invalid(error) => {
                let info = DeadLetterInfo {
                    reason: "invalid_request",
                    attempts,
                    last_status: None,
                    last_error: Some(error),
                    body: Some(body),
                };
                return dead_letter(shared, st, p, info).await;
            }
            Attempt::Retry { status, error, retry_after } => (status, error, retry_after),
        };
        let now = unix_ms();
        if now >= deadline_ms {
            let info = DeadLetterInfo {
                reason: "retry_horizon",
                attempts,
                last_status: status,
                last_error: error,
                body: Some(body),
            };
            return dead_letter(shared, st, p, info).await;
        }
        let backoff = shared.retry.backoff(attempts, unit_from(p.seq.rotate_left(17) ^ u64::from(attempts) ^ now));
        let delay = retry_after.unwrap_or(backoff).min(Duration::from_millis(deadline_ms - now));
        WebhookStats::inc(&st.stats.retried);
        tracing::warn!(
            endpoint = %ep.name,
            alert_id = %p.alert_id,
            attempts,
            status = status.map(i64::from).unwrap_or(-1),
            error = error.as_deref().unwrap_or(""),
            retry_in_ms = delay.as_millis() as u64,
            "Webhook delivery failed; will retry."
        );
        tokio::select! {
            biased;
            _ = shared.stop.cancelled() => return Finish::Stopped,
            _ = tokio::time::sleep(delay) => {}
        }
    }
}

async fn dead_letter(shared: &Arc<Shared>, st: &EndpointState, p: &Pending, info: DeadLetterInfo) -> Finish {
    tracing::error!(
        endpoint = %st.ep.name,
        alert_id = %p.alert_id,
        agent_id = %p.agent_id,
        reason = info.reason,
        attempts = info.attempts,
        status = info.last_status.map(i64::from).unwrap_or(-1),
        error = info.last_error.as_deref().unwrap_or(""),
        "Webhook delivery given up; written to the dead-letter file."
    );
    if write_dead_letter(shared, p, info).await {
        WebhookStats::inc(&st.stats.dead_lettered);
        Finish::Done(AckKind::DeadLettered)
    } else {
        // Leave it owed (no acknowledgement) but let the lane move on; the next start tries it again.
        Finish::Unacked
    }
}

/// One HTTP request, bounded by the endpoint's timeout.
async fn attempt(shared: &Shared, ep: &Endpoint, p: &Pending, body: Bytes) -> Attempt {
    let ts = (unix_ms() / 1000) as i64;
    let signature = signature_header(&ep.secrets, &p.alert_id, ts, &body);
    let req = Request::post(ep.uri.clone())
        .header(CONTENT_TYPE, "application/json")
        .header(CONTENT_LENGTH, body.len())
        .header(USER_AGENT, shared.user_agent.clone())
        .header("webhook-id", &*p.alert_id)
        .header("webhook-timestamp", ts)
        .header("webhook-signature", signature)
        .body(Full::new(body));
    let req = match req {
        Ok(r) => r,
        Err(e) => return Attempt::Invalid(format!("cannot form the request: {e}")),
    };
    let exchange = async {
        let resp = shared.client.request(req).await.map_err(|e| error_chain(&e))?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, SystemTime::now()));
        // Read (and drop) a bounded answer so the connection can go back to the pool.
        let _ = Limited::new(resp.into_body(), MAX_ANSWER_BYTES).collect().await;
        Ok::<_, String>((status, retry_after))
    };
    match tokio::time::timeout(ep.timeout, exchange).await {
        Err(_) => Attempt::Retry {
            status: None,
            error: Some(format!("timed out after {} ms", ep.timeout.as_millis())),
            retry_after: None,
        },
        Ok(Err(error)) => Attempt::Retry { status: None, error: Some(error), retry_after: None },
        Ok(Ok((status, retry_after))) => match classify(status) {
            Verdict::Delivered => Attempt::Delivered(status),
            Verdict::Retry => Attempt::Retry { status: Some(status), error: None, retry_after },
            Verdict::Reject => Attempt::Reject(status),
        },
    }
}

/// An error and its causes on one line ("client error (Connect): tcp connect error: Connection refused").
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// Writes acknowledgements in batches (one fsync per batch) until told to finish and the queue is empty.
async fn ack_writer(outbox: Arc<Outbox>, mut rx: mpsc::UnboundedReceiver<(u64, AckKind)>, done: CancellationToken) {
    let mut buf = Vec::with_capacity(1024);
    loop {
        let n = tokio::select! {
            biased;
            n = rx.recv_many(&mut buf, 4096) => n,
            _ = done.cancelled() => {
                while let Ok(a) = rx.try_recv() {
                    buf.push(a);
                }
                0
            }
        };
        if !buf.is_empty() {
            let batch = std::mem::take(&mut buf);
            let ob = outbox.clone();
            match tokio::task::spawn_blocking(move || ob.ack(&batch)).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "Cannot record webhook acknowledgements; deliveries may repeat after a restart.")
                }
                Err(e) => {
                    tracing::error!(error = %e, "Webhook acknowledgement writer failed; deliveries may repeat after a restart.")
                }
            }
        }
        if n == 0 {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbox::Outbox;
    use crate::testkit::*;
    use std::path::Path;
    use std::time::Instant;

    const WAIT: Duration = Duration::from_secs(20);

    fn sources() -> Vec<String> {
        vec!["events.jsonl".to_string()]
    }

    fn fast() -> DispatcherOptions {
        DispatcherOptions {
            retry: RetryPolicy { initial_backoff: Duration::from_millis(40), max_backoff: Duration::from_millis(200) },
            ..DispatcherOptions::default()
        }
    }

    fn start(dir: &Path, endpoints: Vec<Endpoint>, options: DispatcherOptions) -> Dispatcher {
        let (outbox, _) = Outbox::open(dir).unwrap();
        Dispatcher::start(endpoints, Some(outbox), options).unwrap()
    }

    fn stat(d: &Dispatcher, i: usize) -> crate::stats::WebhookStatsSnapshot {
        d.stats()[i].1.snapshot()
    }

    fn dead_letters(dir: &Path) -> Vec<serde_json::Value> {
        std::fs::read_to_string(dir.join(crate::outbox::DEAD_LETTER_FILE))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// Per agent, the first 2xx of each id must come in emission order.
    fn assert_agent_order(delivered: &[String], agents: &[&str], per_agent: usize) {
        for agent in agents {
            let mut got: Vec<&String> = delivered.iter().filter(|id| id.starts_with(&format!("va-{agent}-"))).collect();
            got.dedup();
            let want: Vec<String> = (0..per_agent).map(|n| format!("va-{agent}-{n}")).collect();
            assert_eq!(got, want.iter().collect::<Vec<_>>(), "agent {agent}");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn delivers_signed_alerts_with_standard_webhooks_headers() {
        let rx = Receiver::start(always(200)).await;
        let dir = tempfile::tempdir().unwrap();
        let d = start(dir.path(), vec![endpoint("hook", &rx.url(), Mode::Enforce)], fast());
        let a = alert("agent-1", 0);
        let before = (unix_ms() / 1000) as i64;
        assert_eq!(d.submit(&a, &sources()).unwrap(), Submitted { enqueued: 1, shadowed: 0 });
        wait_until("the delivery", WAIT, || stat(&d, 0).delivered == 1).await;
        let hit = rx.hits().remove(0);
        assert!(hit.verified, "signature verifies with the receiver's secret");
        assert_eq!(hit.id, a.id);
        assert_eq!(hit.content_type, "application/json");
        assert_eq!(hit.content_length, hit.body.len().to_string());
        let ts: i64 = hit.timestamp.parse().unwrap();
        assert!((before..=before + 5).contains(&ts));
        let body: serde_json::Value = serde_json::from_slice(&hit.body).unwrap();
        assert_eq!(body["type"], "vigil.alert");
        assert_eq!(body["action"], "kill");
        assert_eq!(body["agent_id"], "agent-1");
        assert_eq!(hit.agent_id, "agent-1");
        assert_eq!(body["alert"]["id"], a.id.as_str());
        assert_eq!(body["alert"]["severity"], "high");
        // With any other secret the signature fails.
        let other = crate::Secret::parse("whsec_c2VjcmV0LWtleS1udW1iZXItdHdvLWZvci10ZXN0cw==").unwrap();
        assert!(crate::verify(&[other], &hit.id, &hit.timestamp, &hit.signature, &hit.body, ts).is_err());
        let report = d.shutdown(Duration::from_secs(5)).await;
        assert_eq!(report, ShutdownReport { clean: true, pending: 0 });
        let s = stat_after(dir.path());
        assert_eq!(s, 0, "nothing owed after reopening");
    }

    fn stat_after(dir: &Path) -> usize {
        Outbox::open(dir).unwrap().0.pending_len()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn receiver_down_then_503_then_up_delivers_every_alert_in_agent_order() {
        let port = free_port();
        let dir = tempfile::tempdir().unwrap();
        let url = format!("http://127.0.0.1:{port}/hooks/vigil");
        let d = start(dir.path(), vec![endpoint("hook", &url, Mode::Enforce)], fast());
        let agents = ["a", "b", "c"];
        // Alerts keep firing while the receiver is down (connection refused).
        for n in 0..10 {
            for agent in agents {
                d.submit(&alert(agent, n), &sources()).unwrap();
            }
        }
        wait_until("retries against the closed port", WAIT, || stat(&d, 0).retried >= 6).await;
        assert_eq!(stat(&d, 0).delivered, 0);
        assert_eq!(stat(&d, 0).outbox_depth, 30);
        // Then it answers 503 for a while (the first 20 requests).
        let rx = Receiver::start_on(
            port,
            Arc::new(|_, hits: &[Hit]| Reply::status(if hits.len() < 20 { 503 } else { 200 })),
        )
        .await;
        for n in 10..15 {
            for agent in agents {
                d.submit(&alert(agent, n), &sources()).unwrap();
            }
        }
        wait_until("every alert delivered", WAIT, || stat(&d, 0).delivered == 45).await;
        let delivered = rx.delivered();
        assert_eq!(delivered.len(), 45, "each alert delivered once");
        assert_agent_order(&delivered, &agents, 15);
        assert!(rx.hits().iter().all(|h| h.verified));
        let s = stat(&d, 0);
        assert_eq!((s.dead_lettered, s.outbox_depth, s.oldest_pending_age_secs), (0, 0, 0));
        assert!(s.attempts > 45 && s.retried == s.attempts - 45, "{s:?}");
        d.shutdown(Duration::from_secs(5)).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn retryable_answers_are_retried_honouring_retry_after() {
        // Per id: 503 + Retry-After: 1, 503, 429 + Retry-After as an HTTP date, 408, then 200.
        let rx = Receiver::start(Arc::new(|hit: &Hit, hits: &[Hit]| {
            let n = hits.iter().filter(|h| h.id == hit.id).count();
            match n {
                0 => Reply { status: 503, retry_after: Some("1".into()), delay: Duration::ZERO },
                1 => Reply::status(503),
                2 => Reply {
                    status: 429,
                    retry_after: Some(httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(1))),
                    delay: Duration::ZERO,
                },
                3 => Reply::status(408),
                _ => Reply::status(200),
            }
        }))
        .await;
        let dir = tempfile::tempdir().unwrap();
        let d = start(dir.path(), vec![endpoint("hook", &rx.url(), Mode::Enforce)], fast());
        d.submit(&alert("a", 0), &sources()).unwrap();
        wait_until("delivery after four refusals", WAIT, || stat(&d, 0).delivered == 1).await;
        let hits = rx.hits();
        assert_eq!(hits.iter().map(|h| h.status).collect::<Vec<_>>(), [503, 503, 429, 408, 200]);
        assert!(hits[1].at - hits[0].at >= Duration::from_millis(990), "Retry-After: 1 honoured");
        assert!(hits[2].at - hits[1].at < Duration::from_millis(900), "without Retry-After, the back-off applies");
        let s = stat(&d, 0);
        assert_eq!((s.attempts, s.retried, s.delivered, s.dead_lettered), (5, 4, 1, 0));
        // Every attempt is signed afresh and verifies.
        assert!(hits.iter().all(|h| h.verified));
        d.shutdown(Duration::from_secs(5)).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn client_errors_are_dead_lettered_without_retry() {
        let rx = Receiver::start(Arc::new(|hit: &Hit, _: &[Hit]| {
            Reply::status(match hit.id.as_str() {
                "va-a-0" => 400,
                "va-a-1" => 401,
                "va-b-0" => 404,
                _ => 200,
            })
        }))
        .await;
        let dir = tempfile::tempdir().unwrap();
        let d = start(dir.path(), vec![endpoint("hook", &rx.url(), Mode::Enforce)], fast());
        for a in [alert("a", 0), alert("a", 1), alert("b", 0), alert("a", 2)] {
            d.submit(&a, &sources()).unwrap();
        }
        wait_until("three dead letters and one delivery", WAIT, || {
            let s = stat(&d, 0);
            s.dead_lettered == 3 && s.delivered == 1
        })
        .await;
        let hits = rx.hits();
        assert_eq!(hits.len(), 4, "no retries: {hits:?}");
        let s = stat(&d, 0);
        assert_eq!((s.attempts, s.retried), (4, 0));
        let dl = dead_letters(dir.path());
        assert_eq!(dl.len(), 3);
        let by_id = |id: &str| dl.iter().find(|v| v["alert_id"] == id).unwrap().clone();
        assert_eq!(by_id("va-a-0")["last_status"], 400);
        assert_eq!(by_id("va-a-1")["last_status"], 401);
        assert_eq!(by_id("va-b-0")["last_status"], 404);
        for v in &dl {
            assert_eq!(v["reason"], "rejected");
            assert_eq!(v["endpoint"], "hook");
            assert_eq!(v["attempts"], 1);
            assert_eq!(v["payload"]["type"], "vigil.alert");
        }
        assert_eq!(by_id("va-a-0")["agent_id"], "a");
        let report = d.shutdown(Duration::from_secs(5)).await;
        assert_eq!(report.pending, 0, "dead letters are acknowledged");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn retry_horizon_exceeded_dead_letters() {
        let rx = Receiver::start(always(503)).await;
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = endpoint_config("hook", &rx.url(), Mode::Enforce);
        cfg.retry_horizon_secs = 1;
        let d = start(dir.path(), vec![cfg.build().unwrap()], fast());
        let t0 = Instant::now();
        d.submit(&alert("a", 0), &sources()).unwrap();
        wait_until("the dead letter", WAIT, || stat(&d, 0).dead_lettered == 1).await;
        assert!(t0.elapsed() >= Duration::from_millis(990), "retried until the horizon");
        let dl = dead_letters(dir.path());
        assert_eq!(dl.len(), 1);
        assert_eq!(dl[0]["reason"], "retry_horizon");
        assert_eq!(dl[0]["last_status"], 503);
        let attempts = dl[0]["attempts"].as_u64().unwrap();
        assert!(attempts >= 3, "{attempts}");
        assert_eq!(rx.hits().len() as u64, attempts);
        assert_eq!(stat(&d, 0).delivered, 0);
        d.shutdown(Duration::from_secs(5)).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn connection_refused_until_the_horizon_dead_letters_with_the_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = endpoint_config("hook", &format!("http://127.0.0.1:{}/", free_port()), Mode::Enforce);
        cfg.retry_horizon_secs = 1;
        let d = start(dir.path(), vec![cfg.build().unwrap()], fast());
        d.submit(&alert("a", 0), &sources()).unwrap();
        wait_until("the dead letter", WAIT, || stat(&d, 0).dead_lettered == 1).await;
        let dl = dead_letters(dir.path());
        assert!(dl[0].get("last_status").is_none());
        let err = dl[0]["last_error"].as_str().unwrap().to_lowercase();
        assert!(err.contains("connect"), "{err}");
        d.shutdown(Duration::from_secs(5)).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn shadow_mode_sends_nothing_and_counts_everything() {
        let rx = Receiver::start(always(200)).await;
        // Shadow only: no outbox needed at all (vigil replay).
        let d = Dispatcher::start(vec![endpoint("shadow", &rx.url(), Mode::Shadow)], None, fast()).unwrap();
        for n in 0..20 {
            assert_eq!(d.submit(&alert("a", n), &sources()).unwrap(), Submitted { enqueued: 0, shadowed: 1 });
        }
        let s = stat(&d, 0);
        assert_eq!((s.shadowed, s.attempts, s.enqueued, s.outbox_depth), (20, 0, 0, 0));
        d.shutdown(Duration::from_secs(1)).await;
        // Enforce and shadow side by side on the same receiver: only the enforce endpoint's requests arrive.
        let dir = tempfile::tempdir().unwrap();
        let mut enforce = endpoint_config("enforce", &rx.url(), Mode::Enforce);
        enforce.actions = Some(vec![vigil_detector::alert::Action::Kill]);
        let d = start(
            dir.path(),
            vec![enforce.build().unwrap(), endpoint("shadow", &format!("{}?shadow", rx.url()), Mode::Shadow)],
            fast(),
        );
        let mut notify = alert("b", 99);
        notify.action = vigil_detector::alert::Action::Notify;
        let batch: Vec<Alert> = (0..10).map(|n| alert("b", n)).chain([notify]).collect();
        assert_eq!(d.submit_batch(&batch, &sources()).unwrap(), Submitted { enqueued: 10, shadowed: 11 });
        wait_until("enforce deliveries", WAIT, || stat(&d, 0).delivered == 10).await;
        d.shutdown(Duration::from_secs(5)).await;
        assert_eq!(rx.hits().len(), 10, "shadow sent nothing");
        assert!(!rx.delivered().contains(&"va-b-99".to_string()));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn agent_order_holds_under_retries_while_other_agents_proceed() {
        // The slow agent's first alert is refused three times; the fast agent is always accepted.
        let rx = Receiver::start(Arc::new(|hit: &Hit, hits: &[Hit]| {
            let earlier = hits.iter().filter(|h| h.id == hit.id).count();
            Reply::status(if hit.id == "va-slow-0" && earlier < 3 { 503 } else { 200 })
        }))
        .await;
        let dir = tempfile::tempdir().unwrap();
        let options = DispatcherOptions {
            retry: RetryPolicy { initial_backoff: Duration::from_millis(300), max_backoff: Duration::from_millis(300) },
            ..DispatcherOptions::default()
        };
        let d = start(dir.path(), vec![endpoint("hook", &rx.url(), Mode::Enforce)], options);
        let mut batch = Vec::new();
        for n in 0..5 {
            batch.push(alert("slow", n));
            batch.push(alert("fast", 2 * n));
            batch.push(alert("fast", 2 * n + 1));
        }
        d.submit_batch(&batch, &sources()).unwrap();
        wait_until("all fifteen delivered", WAIT, || stat(&d, 0).delivered == 15).await;
        let hits = rx.hits();
        let first_hit = |id: &str| hits.iter().position(|h| h.id == id).unwrap();
        let delivered_at = |id: &str| hits.iter().position(|h| h.id == id && h.status == 200).unwrap();
        // The fast agent did not wait for the slow one.
        for n in 0..10 {
            assert!(delivered_at(&format!("va-fast-{n}")) < delivered_at("va-slow-0"), "fast {n} waited");
        }
        // The slow agent's later alerts were not even attempted before its first was delivered.
        for n in 1..5 {
            assert!(first_hit(&format!("va-slow-{n}")) > delivered_at("va-slow-0"));
        }
        assert_agent_order(&rx.delivered(), &["slow"], 5);
        assert_agent_order(&rx.delivered(), &["fast"], 10);
        assert_eq!(hits.iter().filter(|h| h.id == "va-slow-0").count(), 4);
        d.shutdown(Duration::from_secs(5)).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn timeouts_are_retried() {
        let rx = Receiver::start(Arc::new(|_: &Hit, hits: &[Hit]| Reply {
            status: 200,
            retry_after: None,
            delay: if hits.is_empty() { Duration::from_secs(3) } else { Duration::ZERO },
        }))
        .await;
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = endpoint_config("hook", &rx.url(), Mode::Enforce);
        cfg.timeout_ms = 200;
        let d = start(dir.path(), vec![cfg.build().unwrap()], fast());
        d.submit(&alert("a", 0), &sources()).unwrap();
        wait_until("delivery after a time-out", WAIT, || stat(&d, 0).delivered == 1).await;
        let s = stat(&d, 0);
        assert_eq!((s.attempts, s.retried), (2, 1));
        assert_eq!(rx.hits().len(), 2);
        d.shutdown(Duration::from_secs(5)).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn shutdown_is_bounded_and_keeps_what_was_not_delivered() {
        let rx = Receiver::start(Arc::new(|_: &Hit, _: &[Hit]| Reply {
            status: 200,
            retry_after: None,
            delay: Duration::from_secs(30),
        }))
        .await;
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = endpoint_config("hook", &rx.url(), Mode::Enforce);
        cfg.timeout_ms = 60_000;
        let d = start(dir.path(), vec![cfg.build().unwrap()], fast());
        d.submit(&alert("a", 0), &sources()).unwrap();
        d.submit(&alert("b", 0), &sources()).unwrap();
        wait_until("requests in flight", WAIT, || stat(&d, 0).attempts == 2).await;
        let t0 = Instant::now();
        let report = d.shutdown(Duration::from_millis(300)).await;
        assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
        assert_eq!(report, ShutdownReport { clean: false, pending: 2 });
        drop(rx);
        let (ob, _) = Outbox::open(dir.path()).unwrap();
        assert_eq!(ob.pending().iter().map(|p| p.alert_id.to_string()).collect::<Vec<_>>(), ["va-a-0", "va-b-0"]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_restart_redelivers_what_was_owed_under_the_same_webhook_id() {
        let port = free_port();
        let dir = tempfile::tempdir().unwrap();
        let url = format!("http://127.0.0.1:{port}/hooks/vigil");
        let agents = ["a", "b"];
        {
            let d = start(dir.path(), vec![endpoint("hook", &url, Mode::Enforce)], fast());
            for n in 0..10 {
                for agent in agents {
                    d.submit(&alert(agent, n), &sources()).unwrap();
                }
            }
            wait_until("failing retries", WAIT, || stat(&d, 0).retried >= 2).await;
            // Dropped, not shut down: the process "dies" with everything owed.
        }
        let rx = Receiver::start_on(port, always(200)).await;
        let d = start(dir.path(), vec![endpoint("hook", &url, Mode::Enforce)], fast());
        assert_eq!(stat(&d, 0).enqueued, 20, "everything owed was recovered");
        wait_until("redelivery", WAIT, || stat(&d, 0).delivered == 20).await;
        let delivered = rx.delivered();
        assert_agent_order(&delivered, &agents, 10);
        let expected: Vec<String> = (0..10).flat_map(|n| agents.map(|a| format!("va-{a}-{n}"))).collect();
        let mut sorted = delivered.clone();
        sorted.sort();
        let mut want = expected.clone();
        want.sort();
        assert_eq!(sorted, want, "every alert once, under its own id");
        assert_eq!(d.shutdown(Duration::from_secs(5)).await.pending, 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn records_for_removed_endpoints_are_dead_lettered_and_shadowed_ones_released() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (ob, _) = Outbox::open(dir.path()).unwrap();
            for (ep, id) in [("gone", "va-1"), ("now-shadow", "va-2")] {
                ob.append(NewRecord { endpoint: ep, alert_id: id, agent_id: "a", body: "{}" }).unwrap();
            }
        }
        let (ob, _) = Outbox::open(dir.path()).unwrap();
        let d = Dispatcher::start(vec![endpoint("now-shadow", "http://127.0.0.1:1/", Mode::Shadow)], Some(ob), fast())
            .unwrap();
        assert_eq!(stat(&d, 0).shadowed, 1);
        wait_until("the dead letter", WAIT, || dead_letters(dir.path()).len() == 1).await;
        assert_eq!(d.shutdown(Duration::from_secs(5)).await.pending, 0);
        let dl = dead_letters(dir.path());
        assert_eq!((dl[0]["reason"].as_str(), dl[0]["endpoint"].as_str()), (Some("unknown_endpoint"), Some("gone")));
        assert_eq!(Outbox::open(dir.path()).unwrap().0.pending_len(), 0);
    }

    #[test]
    fn enforce_mode_needs_an_outbox_and_a_runtime() {
        let ep = endpoint("hook", "http://127.0.0.1:1/", Mode::Enforce);
        assert!(matches!(Dispatcher::start(vec![ep.clone()], None, fast()), Err(Error::NoRuntime)));
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let _g = rt.enter();
        assert!(matches!(Dispatcher::start(vec![ep], None, fast()), Err(Error::OutboxRequired { .. })));
    }

    #[test]
    fn payload_has_the_spec_shape() {
        let mut a = alert("agent \"q\"", 0);
        a.action = vigil_detector::alert::Action::Contain;
        let v: serde_json::Value = serde_json::from_str(&payload(&a, &sources())).unwrap();
        assert_eq!(v["type"], "vigil.alert");
        assert_eq!(v["action"], "contain");
        assert_eq!(v["agent_id"], "agent \"q\"");
        assert_eq!(v["alert"]["action"], "contain");
        assert_eq!(v.as_object().unwrap().len(), 4);
    }

    /// Delivery latency, alert submitted to request received, against a healthy loopback receiver: one alert at
    /// a time (each waits for the previous to arrive), 1,000 deliveries, including the outbox fsync. Run with
    /// `cargo test -p vigil-webhook --release -- --ignored --nocapture delivery_latency`.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "measurement; run explicitly"]
    async fn delivery_latency() {
        let rx = Receiver::start(always(200)).await;
        let dir = tempfile::tempdir().unwrap();
        let d = start(dir.path(), vec![endpoint("hook", &rx.url(), Mode::Enforce)], fast());
        let n = 1000;
        let mut lat = Vec::with_capacity(n);
        let mut durable = Vec::with_capacity(n);
        for i in 0..n {
            let a = alert(&format!("agent-{}", i % 50), i);
            let t0 = Instant::now();
            d.submit(&a, &sources()).unwrap();
            durable.push(t0.elapsed());
            wait_until("arrival", WAIT, || rx.hits().len() > i).await;
            lat.push(rx.hits()[i].at - t0);
        }
        for (what, v) in [("alert to receiver", &mut lat), ("submit (outbox write + fsync)", &mut durable)] {
            v.sort();
            let pct = |p: f64| v[((n as f64 * p) as usize).min(n - 1)];
            println!("{what} over {n}: p50 {:?} p90 {:?} p99 {:?} max {:?}", pct(0.50), pct(0.90), pct(0.99), v[n - 1]);
        }
        d.shutdown(Duration::from_secs(5)).await;
    }
}
