//! The live detector (`vigil run`): the engine fed by HTTP/OTLP ingest or by Kafka consumer groups,
//! with durable alert sinks, checkpoints and operations endpoints.
//!
//! This crate is the edge around the synchronous engine: sources turn bytes into [`Record`]s, a
//! [`processor::Processor`] applies the live-only checks and runs the engine, sinks make alerts and
//! rejects durable, and checkpoints save the engine together with the source position it reflects.
//! The engine itself never sees a socket, a clock or a thread: the same event stream gives the same
//! alerts here as in `vigil replay`.
//!
//! - HTTP ([`http`]): requests become jobs on a bounded queue served by one engine thread
//!   ([`worker`]); a 2xx answer is sent only when the batch's effects are durable.
//! - Kafka ([`kafka`]): one engine per assigned partition (a partition is the natural shard), offsets
//!   committed only at checkpoints, state in a directory or a compacted changelog topic.

pub mod config;
pub mod http;
pub mod metrics;
pub mod otlp;
pub mod processor;
pub mod sinks;
pub mod store;
pub mod worker;

pub use processor::Record;

/// Names of the sources records come from, indexed by `Record::source`.
pub type SourceNames = Vec<String>;

use config::{HttpConfig, OutputConfig, StateConfig};
use metrics::Metrics;
use processor::Processor;
use sinks::{AlertSink, FileAlertSink, FileLines, RejectSink, StdoutSink};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use store::StateDir;
use thiserror::Error;
use tokio::sync::mpsc;
use vigil_detector::{Engine, EngineConfig};
use worker::{Job, Worker, CHECKPOINT_NAME};

/// What stops the live detector from starting or running.
#[derive(Debug, Error)]
pub enum LiveError {
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error("invalid engine configuration: {0}")]
    Engine(String),
    #[error("cannot listen on {addr}: {error}")]
    Listen { addr: String, error: std::io::Error },
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error("server error: {0}")]
    Server(String),
}

/// Everything `vigil run` needs for the HTTP-fed detector.
#[derive(Clone, Debug)]
pub struct HttpOptions {
    pub http: HttpConfig,
    pub engine: EngineConfig,
    pub output: OutputConfig,
    pub state: Option<StateConfig>,
}

/// Restores the engine from the state directory's checkpoint if there is a usable one.
fn restore_engine(cfg: &EngineConfig, state: Option<&StateDir>, name: &str) -> Result<Engine, LiveError> {
    if let Some(dir) = state {
        match dir.load(name) {
            Ok(Some(ckpt)) => match Engine::restore(cfg.clone(), &ckpt.engine) {
                Ok(e) => {
                    tracing::info!(checkpoint = name, agents = e.agents(), "Engine state restored.");
                    return Ok(e);
                }
                Err(e) => tracing::warn!(checkpoint = name, error = %e, "Checkpoint refused; starting cold."),
            },
            Ok(None) => tracing::info!(checkpoint = name, "No checkpoint; starting cold."),
            Err(e) => tracing::warn!(checkpoint = name, error = %e, "Checkpoint unreadable; starting cold."),
        }
    }
    Engine::new(cfg.clone()).map_err(|e| LiveError::Engine(e.to_string()))
}

fn alert_sink(out: &OutputConfig) -> Box<dyn AlertSink> {
    match &out.alerts_file {
        Some(p) => Box::new(FileAlertSink::new(p, out.format)),
        None => Box::new(StdoutSink::new(out.format)),
    }
}

/// Runs the HTTP-fed detector until `shutdown` resolves; then stops intake, finishes in-flight
/// requests and writes a final checkpoint. `on_ready` receives the bound address.
pub async fn run_http(
    opts: HttpOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
    on_ready: impl FnOnce(std::net::SocketAddr),
) -> Result<(), LiveError> {
    let addr = opts.http.validate()?;
    if let Some(s) = &opts.state {
        s.validate()?;
    }
    opts.engine.validate().map_err(|e| LiveError::Engine(e.to_string()))?;
    let state = opts.state.as_ref().map(|s| StateDir::open(&s.dir)).transpose()?;
    let engine = restore_engine(&opts.engine, state.as_ref(), CHECKPOINT_NAME)?;
    let metrics = Arc::new(Metrics::new());
    let ready = Arc::new(AtomicBool::new(false));

    let rejects: Box<dyn RejectSink> = Box::new(FileLines::new(&opts.output.dead_letter_file));
    let worker = Worker {
        processor: Processor::new(engine),
        alerts: alert_sink(&opts.output),
        rejects,
        metrics: Arc::clone(&metrics),
        sources: vec!["http".into(), "otlp".into()],
        state,
    };
    let (tx, rx) = mpsc::channel::<Job>(opts.http.max_queued_batches);
    let engine_thread = std::thread::Builder::new()
        .name("vigil-engine".into())
        .spawn(move || worker.run(rx))
        .map_err(|e| LiveError::Server(e.to_string()))?;

    // Periodic checkpoints (a job, so the engine is consistent between batches).
    let checkpoint_every = opts.state.as_ref().map(|s| Duration::from_secs(s.checkpoint_interval_secs));
    let ticker = checkpoint_every.map(|every| {
        let tx = tx.clone();
        let metrics = Arc::clone(&metrics);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            let mut since = std::time::Instant::now();
            loop {
                tick.tick().await;
                metrics.checkpoint_age_seconds.set(since.elapsed().as_secs_f64());
                if tx.send(Job::Checkpoint { reply: None }).await.is_err() {
                    break;
                }
                since = std::time::Instant::now();
            }
        })
    });

    let state = Arc::new(http::HttpState {
        jobs: tx,
        metrics: Arc::clone(&metrics),
        bearer_token: opts.http.bearer_token.clone(),
        ready: Arc::clone(&ready),
        otlp: Mutex::new(otlp::OtlpMapper::default()),
    });
    let app = http::router(Arc::clone(&state), opts.http.max_body_bytes);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| LiveError::Listen { addr: addr.to_string(), error: e })?;
    let bound = listener.local_addr().map_err(|e| LiveError::Listen { addr: addr.to_string(), error: e })?;
    ready.store(true, Ordering::Release);
    tracing::info!(addr = %bound, "Listening.");
    on_ready(bound);
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await.map_err(|e| LiveError::Server(e.to_string()))?;
    tracing::info!("Intake stopped; finishing in-flight work.");
    ready.store(false, Ordering::Release);
    if let Some(t) = ticker {
        t.abort();
    }
    // The last sender goes with the state: the engine thread drains its queue, checkpoints and ends.
    drop(state);
    let _ = tokio::task::spawn_blocking(move || engine_thread.join()).await;
    Ok(())
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("Shutdown requested.");
}
