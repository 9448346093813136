//! An example containment-webhook receiver: what your side should do with a vigil webhook.
//!
//! ```text
//! VIGIL_WEBHOOK_SECRET=whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw \
//!     cargo run -p vigil-webhook --example receiver -- 127.0.0.1:9000
//! ```
//!
//! For each request it
//! 1. verifies the Standard Webhooks signature with [`vigil_webhook::verify`] (5-minute timestamp tolerance,
//!    any of several secrets: set `VIGIL_WEBHOOK_SECRET` to a space-separated list while rotating) and answers
//!    401 when it fails — vigil does not retry a 401, and logs it as a dead letter;
//! 2. de-duplicates on `webhook-id` (vigil delivers at least once: after a crash it may send an alert again,
//!    always under the same id) and answers 200 to a repeat without acting again;
//! 3. acts on `action` (`kill`, `contain`, `notify`, `none`) for `agent_id` — here it only prints — and answers
//!    200. Answer 503 (optionally with `Retry-After`) when you cannot act now: vigil retries.
//!
//! A real receiver keeps its de-duplication set durable for longer than vigil's retry horizon.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};
use vigil_webhook::{verify, Secret};

struct Receiver {
    secrets: Vec<Secret>,
    seen: Mutex<HashSet<String>>,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let listen = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:9000".into());
    let secrets = std::env::var("VIGIL_WEBHOOK_SECRET")
        .map_err(|_| "set VIGIL_WEBHOOK_SECRET to the endpoint's whsec_... secret")?
        .split_whitespace()
        .map(Secret::parse)
        .collect::<Result<Vec<_>, _>>()?;
    let state = Arc::new(Receiver { secrets, seen: Mutex::new(HashSet::new()) });
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    eprintln!("Listening on http://{listen}/ for vigil webhooks.");
    loop {
        let (stream, _) = listener.accept().await?;
        let state = state.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| handle(state.clone(), req));
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
        });
    }
}

async fn handle(state: Arc<Receiver>, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let (id, timestamp, signature) = (header("webhook-id"), header("webhook-timestamp"), header("webhook-signature"));
    let body = req.into_body().collect().await?.to_bytes();
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
    let answer = |status: StatusCode, text: &str| {
        Ok(Response::builder().status(status).body(Full::new(Bytes::from(text.to_string()))).expect("valid response"))
    };
    // 1. Authenticate before parsing anything.
    if let Err(e) = verify(&state.secrets, &id, &timestamp, &signature, &body, now) {
        eprintln!("Rejected webhook {id:?}: {e} ({}).", e.reason());
        return answer(StatusCode::UNAUTHORIZED, "bad signature");
    }
    // 2. At least once: act on each id only once.
    if !state.seen.lock().expect("no panics while holding the lock").insert(id.clone()) {
        eprintln!("Duplicate webhook {id}; already handled.");
        return answer(StatusCode::OK, "duplicate");
    }
    // 3. Act.
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return answer(StatusCode::BAD_REQUEST, "not JSON");
    };
    let action = v["action"].as_str().unwrap_or("none");
    let agent = v["agent_id"].as_str().unwrap_or("?");
    let title = v["alert"]["title"].as_str().unwrap_or("");
    println!("{action} {agent} ({id}): {title}");
    answer(StatusCode::OK, "ok")
}
