//! Test support: a real HTTP receiver on 127.0.0.1 (hyper server), alert and endpoint builders, and waiting on
//! conditions with deadlines.

use crate::config::{Endpoint, EndpointConfig, Mode};
use crate::signature::{verify, Secret};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use vigil_detector::alert::{Action, Severity};
use vigil_detector::Alert;

pub(crate) const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// One request as the receiver saw it, and what it answered.
#[derive(Clone, Debug)]
pub(crate) struct Hit {
    pub id: String,
    pub timestamp: String,
    pub signature: String,
    pub content_type: String,
    pub content_length: String,
    pub body: Vec<u8>,
    pub agent_id: String,
    /// The signature verified with the receiver's secret, at the receiver's clock.
    pub verified: bool,
    /// The status the receiver answered (or was about to, when it delays its answer).
    pub status: u16,
    pub at: Instant,
}

/// The receiver's answer to a request.
pub(crate) struct Reply {
    pub status: u16,
    pub retry_after: Option<String>,
    /// Wait this long before answering (to provoke client time-outs).
    pub delay: Duration,
}

impl Reply {
    pub fn status(status: u16) -> Reply {
        Reply { status, retry_after: None, delay: Duration::ZERO }
    }
}

/// Decides the answer from the request and the hits so far (including earlier ones for the same id).
pub(crate) type Behaviour = Arc<dyn Fn(&Hit, &[Hit]) -> Reply + Send + Sync>;

pub(crate) fn always(status: u16) -> Behaviour {
    Arc::new(move |_, _| Reply::status(status))
}

struct State {
    hits: Mutex<Vec<Hit>>,
    behaviour: Behaviour,
    secrets: Vec<Secret>,
}

/// A webhook receiver on loopback.
pub(crate) struct Receiver {
    pub addr: SocketAddr,
    state: Arc<State>,
    stop: CancellationToken,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// A loopback port nothing listens on (bound and released).
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Receiver {
    pub async fn start(behaviour: Behaviour) -> Receiver {
        Receiver::start_on(0, behaviour).await
    }

    pub async fn start_on(port: u16, behaviour: Behaviour) -> Receiver {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state =
            Arc::new(State { hits: Mutex::new(Vec::new()), behaviour, secrets: vec![Secret::parse(SECRET).unwrap()] });
        let stop = CancellationToken::new();
        let (st, stp) = (state.clone(), stop.clone());
        tokio::spawn(async move {
            loop {
                let (stream, _) = tokio::select! {
                    _ = stp.cancelled() => return,
                    r = listener.accept() => match r { Ok(x) => x, Err(_) => continue },
                };
                let st = st.clone();
                let stp = stp.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| handle(st.clone(), req));
                    let conn = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc);
                    tokio::select! {
                        _ = stp.cancelled() => {}
                        _ = conn => {}
                    }
                });
            }
        });
        Receiver { addr, state, stop }
    }

    pub fn url(&self) -> String {
        format!("http://{}/hooks/vigil", self.addr)
    }

    pub fn hits(&self) -> Vec<Hit> {
        self.state.hits.lock().unwrap().clone()
    }

    /// Ids answered 2xx, in arrival order.
    pub fn delivered(&self) -> Vec<String> {
        self.hits().into_iter().filter(|h| (200..300).contains(&h.status)).map(|h| h.id).collect()
    }
}

async fn handle(st: Arc<State>, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let h = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let (id, timestamp, signature) = (h("webhook-id"), h("webhook-timestamp"), h("webhook-signature"));
    let (content_type, content_length) = (h("content-type"), h("content-length"));
    let body = req.into_body().collect().await?.to_bytes().to_vec();
    let now = (crate::stats::unix_ms() / 1000) as i64;
    let verified = verify(&st.secrets, &id, &timestamp, &signature, &body, now).is_ok();
    let agent_id = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["agent_id"].as_str().map(str::to_string))
        .unwrap_or_default();
    let mut hit = Hit {
        id,
        timestamp,
        signature,
        content_type,
        content_length,
        body,
        agent_id,
        verified,
        status: 0,
        at: Instant::now(),
    };
    let reply = {
        let mut hits = st.hits.lock().unwrap();
        let reply = (st.behaviour)(&hit, &hits);
        hit.status = reply.status;
        hits.push(hit);
        reply
    };
    // Recorded before any delay: hyper drops this future when the client gives up.
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let mut resp = Response::builder().status(reply.status);
    if let Some(ra) = reply.retry_after {
        resp = resp.header("retry-after", ra);
    }
    Ok(resp.body(Full::new(Bytes::from_static(b"{}"))).unwrap())
}

/// Polls `cond` until it holds; panics with `what` after `timeout`.
pub(crate) async fn wait_until(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

pub(crate) fn alert(agent: &str, n: usize) -> Alert {
    Alert {
        id: format!("va-{agent}-{n}"),
        ts_ms: 1_795_755_602_310 + n as i64,
        agent_id: agent.to_string(),
        agent: "support-bot".into(),
        session_id: Some("s1".into()),
        detector: "rule:exfil".into(),
        components: vec![("sequence".into(), 0.97)],
        severity: Severity::High,
        score: 0.97,
        title: "Exfiltration".into(),
        reason: "r".into(),
        evidence: vec![],
        tags: vec!["exfiltration".to_string()],
        action: Action::Kill,
        suppressed_action: None,
        emitted_at_ms: None,
    }
}

pub(crate) fn endpoint_config(name: &str, url: &str, mode: Mode) -> EndpointConfig {
    EndpointConfig {
        name: name.into(),
        url: url.into(),
        secret: Some(SECRET.into()),
        secrets: None,
        min_severity: None,
        actions: None,
        tags: None,
        mode,
        timeout_ms: 2_000,
        retry_horizon_secs: 3_600,
        max_in_flight: 16,
    }
}

pub(crate) fn endpoint(name: &str, url: &str, mode: Mode) -> Endpoint {
    endpoint_config(name, url, mode).build().unwrap()
}
