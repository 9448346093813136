//! HTTP ingest (`spec/cli.md`): `POST /v1/events` (JSON Lines or one JSON array), `POST /v1/traces`
//! (OTLP/HTTP JSON), `GET /metrics`, `/healthz`, `/readyz`, with an optional bearer token.
//!
//! The delivery contract: a 2xx answer means every accepted event of the body has been processed and
//! its effects are durable; the body counts accepted and rejected events (rejects are dead-lettered).
//! 413 over `max_body_bytes`, 503 with `Retry-After` when the engine queue is full or a sink failed,
//! 4xx with a JSON error for a malformed request.

use crate::metrics::Metrics;
use crate::otlp::OtlpMapper;
use crate::processor::Record;
use crate::worker::Job;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::{mpsc, oneshot};

/// Source index of records that came through `/v1/events`.
pub const SOURCE_EVENTS: u32 = 0;
/// Source index of records mapped from `/v1/traces`.
pub const SOURCE_OTLP: u32 = 1;

pub struct HttpState {
    /// The engine's job queue; `None` when events come from Kafka (ingest endpoints answer 404).
    pub jobs: Option<mpsc::Sender<Job>>,
    pub metrics: Arc<Metrics>,
    pub bearer_token: Option<String>,
    /// Rules compiled, state restored, sources connected.
    pub ready: Arc<AtomicBool>,
    pub otlp: Mutex<OtlpMapper>,
}

pub fn router(state: Arc<HttpState>, max_body_bytes: usize) -> Router {
    Router::new()
        .route("/v1/events", post(events))
        .route("/v1/traces", post(traces))
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(readyz))
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .with_state(state)
}

fn error(status: StatusCode, msg: impl Into<String>) -> Response {
    (status, Json(json!({"error": msg.into()}))).into_response()
}

fn authorized(state: &HttpState, headers: &HeaderMap) -> bool {
    match &state.bearer_token {
        None => true,
        Some(token) => headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|t| constant_time_eq(t.as_bytes(), token.as_bytes())),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn unauthorized() -> Response {
    let mut r = error(StatusCode::UNAUTHORIZED, "missing or wrong bearer token");
    r.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
    r
}

/// Splits a body into records: one JSON array of events, or JSON Lines (blank lines skipped).
pub fn split_body(body: &[u8]) -> Result<Vec<Record>, String> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'[') {
        let items: Vec<&serde_json::value::RawValue> =
            serde_json::from_slice(body).map_err(|e| format!("body is not a JSON array of events: {e}"))?;
        return Ok(items
            .into_iter()
            .enumerate()
            .map(|(i, raw)| Record {
                bytes: raw.get().as_bytes().to_vec(),
                source: SOURCE_EVENTS,
                offset: i as u64 + 1,
                key: None,
            })
            .collect());
    }
    Ok(body
        .split(|&b| b == b'\n')
        .enumerate()
        .filter(|(_, l)| l.iter().any(|b| !b.is_ascii_whitespace()))
        .map(|(i, l)| Record { bytes: l.to_vec(), source: SOURCE_EVENTS, offset: i as u64 + 1, key: None })
        .collect())
}

async fn submit(state: &HttpState, records: Vec<Record>) -> Response {
    let Some(jobs) = &state.jobs else {
        return error(StatusCode::NOT_FOUND, "HTTP ingest is off: this detector consumes Kafka");
    };
    let (reply, answer) = oneshot::channel();
    let job = Job::Ingest { records, received: Instant::now(), reply };
    if jobs.try_send(job).is_err() {
        state.metrics.overloaded.inc();
        let mut r = error(StatusCode::SERVICE_UNAVAILABLE, "detector overloaded, retry later");
        r.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
        return r;
    }
    match answer.await {
        Ok(Ok(counts)) => (StatusCode::OK, Json(counts)).into_response(),
        Ok(Err(e)) => {
            let mut r = error(StatusCode::SERVICE_UNAVAILABLE, format!("could not make the results durable: {e}"));
            r.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from_static("5"));
            r
        }
        Err(_) => error(StatusCode::SERVICE_UNAVAILABLE, "detector is shutting down"),
    }
}

async fn events(State(state): State<Arc<HttpState>>, headers: HeaderMap, body: Bytes) -> Response {
    if !authorized(&state, &headers) {
        return unauthorized();
    }
    match split_body(&body) {
        Ok(records) => submit(&state, records).await,
        Err(e) => error(StatusCode::BAD_REQUEST, e),
    }
}

async fn traces(State(state): State<Arc<HttpState>>, headers: HeaderMap, body: Bytes) -> Response {
    if !authorized(&state, &headers) {
        return unauthorized();
    }
    let mapped = match state.otlp.lock() {
        Ok(mut m) => m.map_request(&body),
        Err(_) => return error(StatusCode::INTERNAL_SERVER_ERROR, "OTLP mapper unavailable"),
    };
    match mapped {
        Ok(records) => submit(&state, records).await,
        Err(e) => error(StatusCode::BAD_REQUEST, e),
    }
}

async fn metrics(State(state): State<Arc<HttpState>>, headers: HeaderMap) -> Response {
    if !authorized(&state, &headers) {
        return unauthorized();
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics.render()).into_response()
}

async fn readyz(State(state): State<Arc<HttpState>>) -> Response {
    if state.ready.load(Ordering::Acquire) {
        Json(json!({"ready": true})).into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"ready": false}))).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_split_into_records() {
        let r = split_body(b"{\"a\":1}\n\n{\"b\":2}\n").unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(r[1].offset, 3);
        let r = split_body(b" [ {\"a\":1}, {\"b\": [2]} ]").unwrap();
        assert_eq!(
            r.iter().map(|r| r.bytes.clone()).collect::<Vec<_>>(),
            vec![b"{\"a\":1}".to_vec(), b"{\"b\": [2]}".to_vec()]
        );
        assert!(split_body(b"[1, 2").is_err());
        // A malformed line is a record (it will be dead-lettered), not a malformed request.
        assert_eq!(split_body(b"not json\n").unwrap().len(), 1);
    }

    #[test]
    fn tokens_compare_in_constant_time() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
