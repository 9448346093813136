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
pub mod kafka;
pub mod metrics;
pub mod otlp;
pub mod processor;
pub mod reload;
pub mod sinks;
pub mod store;
pub mod webhooks;
pub mod worker;

pub use processor::Record;

/// Names of the sources records come from, indexed by `Record::source`.
pub type SourceNames = Vec<String>;

use config::{HttpConfig, KafkaConfig, OutputConfig, StateConfig};
use metrics::Metrics;
use processor::Processor;
use sinks::{AlertSink, FileAlertSink, FileLines, RejectSink, StdoutSink};
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use store::StateDir;
use thiserror::Error;
use tokio::sync::mpsc;
use vigil_detector::score::model::ModelSet;
use vigil_detector::{Engine, EngineConfig};
use vigil_rules::Pack;
use worker::{Job, Worker, CHECKPOINT_NAME};

/// What stops the live detector from starting or running.
#[derive(Debug, Error)]
pub enum LiveError {
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error("invalid engine configuration: {0}")]
    Engine(String),
    #[error("rule pack: {0}")]
    Rules(String),
    #[error("models: {0}")]
    Models(String),
    #[error("cannot listen on {addr}: {error}")]
    Listen { addr: String, error: std::io::Error },
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error(transparent)]
    Kafka(#[from] kafka::KafkaModeError),
    #[error("server error: {0}")]
    Server(String),
    #[error("webhooks: {0}")]
    Webhooks(String),
}

/// Everything `vigil run` needs.
#[derive(Clone, Debug)]
pub struct LiveOptions {
    pub http: HttpConfig,
    pub engine: EngineConfig,
    pub output: OutputConfig,
    pub state: Option<StateConfig>,
    /// Consume Kafka instead of taking events over HTTP (which then serves only metrics and health).
    pub kafka: Option<KafkaConfig>,
    /// `[rules] path`: watched and reloaded; `None` runs the built-in pack.
    pub rules_path: Option<PathBuf>,
    /// `[models] dir`: learned model artifacts, watched and reloaded; `None` runs without.
    pub models_dir: Option<PathBuf>,
    /// `[[webhook]]` endpoints (their outbox lives in `[state] dir`).
    pub webhooks: Vec<vigil_webhook::EndpointConfig>,
}

/// Restores the engine from the state directory's checkpoint if there is a usable one.
fn restore_engine(
    cfg: &EngineConfig,
    pack: Arc<Pack>,
    state: Option<&StateDir>,
    name: &str,
) -> Result<Engine, LiveError> {
    if let Some(dir) = state {
        match dir.load(name) {
            Ok(Some(ckpt)) => match Engine::restore_with_pack(cfg.clone(), Arc::clone(&pack), &ckpt.engine) {
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
    Engine::with_pack(cfg.clone(), pack).map_err(|e| LiveError::Engine(e.to_string()))
}

pub(crate) fn alert_sink(out: &OutputConfig) -> Box<dyn AlertSink> {
    match &out.alerts_file {
        Some(p) => Box::new(FileAlertSink::new(p, out.format)),
        None => Box::new(StdoutSink::new(out.format)),
    }
}

/// Runs the live detector until `shutdown` resolves; then stops intake, finishes in-flight work and
/// writes a final checkpoint (and, with Kafka, commits). `on_ready` receives the bound HTTP address.
pub async fn run(
    opts: LiveOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
    on_ready: impl FnOnce(std::net::SocketAddr),
) -> Result<(), LiveError> {
    let addr = opts.http.validate()?;
    if let Some(s) = &opts.state {
        s.validate()?;
    }
    if let Some(k) = &opts.kafka {
        k.validate()?;
    }
    opts.engine.validate().map_err(|e| LiveError::Engine(e.to_string()))?;
    let metrics = Arc::new(Metrics::new());
    let ready = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));

    // Rules and models: loaded before anything starts (a broken one is an error here), then watched.
    let (packs, rules_watcher) =
        reload::watch::<Pack>(opts.rules_path.as_deref(), &metrics, &stop).map_err(LiveError::Rules)?;
    let pack = packs.current().unwrap_or_else(|| Arc::new(vigil_detector::rules::default_pack()));
    let (models, models_watcher) =
        reload::watch::<ModelSet>(opts.models_dir.as_deref(), &metrics, &stop).map_err(LiveError::Models)?;
    let state = opts.state.as_ref().map(|s| StateDir::open(&s.dir)).transpose()?;
    let dispatcher = webhooks::start(&opts.webhooks, opts.state.as_ref().map(|s| s.dir.as_path()), &metrics)
        .map_err(LiveError::Webhooks)?;
    let submitter = dispatcher.as_ref().map(|d| d.submitter());

    // The engine side: a worker serving HTTP ingest jobs, or the Kafka consumer loop.
    let (jobs, engine_thread) = match &opts.kafka {
        None => {
            let mut engine = restore_engine(&opts.engine, pack, state.as_ref(), CHECKPOINT_NAME)?;
            engine.set_models(models.current());
            let worker = Worker {
                processor: Processor::new(engine),
                alerts: webhooks::with_webhooks(alert_sink(&opts.output), submitter.as_ref()),
                rejects: Box::new(FileLines::new(&opts.output.dead_letter_file)) as Box<dyn RejectSink>,
                metrics: Arc::clone(&metrics),
                sources: vec!["http".into(), "otlp".into()],
                state,
                packs,
                models,
            };
            let (tx, rx) = mpsc::channel::<Job>(opts.http.max_queued_batches);
            let t = std::thread::Builder::new()
                .name("vigil-engine".into())
                .spawn(move || {
                    worker.run(rx);
                    Ok(())
                })
                .map_err(|e| LiveError::Server(e.to_string()))?;
            (Some(tx), t)
        }
        Some(k) => {
            let kopts = kafka::KafkaOptions {
                kafka: k.clone(),
                engine: opts.engine.clone(),
                output: opts.output.clone(),
                pack,
                state_dir: state,
                webhooks: submitter.clone(),
            };
            let (m, s, r) = (Arc::clone(&metrics), Arc::clone(&stop), Arc::clone(&ready));
            let t = std::thread::Builder::new()
                .name("vigil-kafka".into())
                .spawn(move || kafka::run(kopts, m, (packs, models), s, r).map_err(LiveError::from))
                .map_err(|e| LiveError::Server(e.to_string()))?;
            (None, t)
        }
    };

    // Periodic checkpoints of the HTTP-fed engine (a job, so the engine is consistent between batches).
    let checkpoint_every = opts.state.as_ref().map(|s| Duration::from_secs(s.checkpoint_interval_secs));
    let ticker = match (&jobs, checkpoint_every) {
        (Some(tx), Some(every)) => {
            let tx = tx.clone();
            let metrics = Arc::clone(&metrics);
            Some(tokio::spawn(async move {
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
            }))
        }
        _ => None,
    };

    let http_ingest = jobs.is_some();
    let state = Arc::new(http::HttpState {
        jobs,
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
    if http_ingest {
        ready.store(true, Ordering::Release);
    }
    tracing::info!(addr = %bound, "Listening.");
    on_ready(bound);

    // The Kafka thread ending on its own (a broker it cannot reach at start) ends the detector.
    let kafka_failed = Arc::new(tokio::sync::Notify::new());
    let serve = axum::serve(listener, app).with_graceful_shutdown({
        let kafka_failed = Arc::clone(&kafka_failed);
        async move {
            tokio::select! {
                _ = shutdown => {},
                _ = kafka_failed.notified() => {},
            }
        }
    });
    let engine_done = {
        let stop = Arc::clone(&stop);
        tokio::task::spawn_blocking(move || {
            // Wait for the engine thread, polling so the server can be told when Kafka mode ends early.
            while !engine_thread.is_finished() {
                std::thread::sleep(Duration::from_millis(50));
            }
            let r = engine_thread.join().unwrap_or_else(|_| Err(LiveError::Server("engine thread panicked".into())));
            if !stop.load(Ordering::Acquire) {
                kafka_failed.notify_one();
            }
            r
        })
    };
    serve.await.map_err(|e| LiveError::Server(e.to_string()))?;
    tracing::info!("Intake stopped; finishing in-flight work.");
    ready.store(false, Ordering::Release);
    stop.store(true, Ordering::Release);
    if let Some(t) = ticker {
        t.abort();
    }
    // The last job sender goes with the HTTP state: the worker drains its queue, checkpoints and ends.
    drop(state);
    let result = engine_done.await.map_err(|e| LiveError::Server(e.to_string()))?;
    // Requests in flight get a moment; whatever is still owed stays in the outbox for the next start.
    webhooks::shutdown(dispatcher, Duration::from_secs(3)).await;
    for w in [rules_watcher, models_watcher].into_iter().flatten() {
        let _ = w.join();
    }
    result
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
