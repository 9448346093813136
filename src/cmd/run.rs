//! `vigil run`: the live detector (see `vigil-live`).

use crate::config::Config;
use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use vigil_live::{shutdown_signal, LiveOptions};
use vigil_sim::{parse_attack_list, simulate, SimConfig};

#[derive(Args, Debug)]
pub struct RunArgs {
    /// TOML configuration; without it the embedded default runs (HTTP ingest on 127.0.0.1:8080).
    #[arg(long)]
    pub config: Option<String>,
    /// Also feed the detector a simulated fleet with attacks through its own HTTP ingest, so alerts
    /// appear within seconds.
    #[arg(long)]
    pub demo: bool,
    /// Listen address (overrides `[http] listen`; use 127.0.0.1:0 for any free port).
    #[arg(long)]
    pub listen: Option<String>,
}

pub fn run(a: RunArgs) -> Result<u8> {
    let mut cfg = Config::load(a.config.as_deref(), std::env::vars())?;
    if let Some(l) = &a.listen {
        cfg.http.listen.clone_from(l);
        cfg.http.validate().map_err(|e| anyhow!("--listen: {e}"))?;
    }
    if a.demo && cfg.kafka.is_some() {
        bail!("--demo feeds the HTTP ingest, which is off with [kafka]");
    }
    let opts = LiveOptions {
        http: cfg.http.clone(),
        engine: cfg.engine_config(),
        output: cfg.output_config(),
        state: cfg.state.clone(),
        kafka: cfg.kafka.clone(),
        rules_path: cfg.rules.path.as_ref().map(Into::into),
        models_dir: cfg.models.as_ref().and_then(|m| m.dir.as_ref()).map(Into::into),
        webhooks: cfg.webhook.clone(),
    };
    let token = cfg.http.bearer_token.clone();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the runtime")?;
    runtime.block_on(async move {
        let (addr_tx, addr_rx) = tokio::sync::oneshot::channel();
        let server = tokio::spawn(vigil_live::run(opts, shutdown_signal(), move |addr| {
            // Tests and scripts read the address (the port may have been chosen by the system).
            eprintln!("vigil: listening on http://{addr}");
            let _ = addr_tx.send(addr);
        }));
        if a.demo {
            match addr_rx.await {
                Ok(addr) => {
                    tokio::spawn(async move {
                        if let Err(e) = demo_feed(addr, token).await {
                            tracing::error!(error = %e, "Demo feed failed.");
                            eprintln!("vigil: demo feed failed: {e:#}");
                        }
                    });
                }
                Err(_) => bail!("the detector did not start"),
            }
        }
        server.await.map_err(|e| anyhow!("detector task: {e}"))??;
        Ok::<(), anyhow::Error>(())
    })?;
    Ok(0)
}

/// Simulates a labelled fleet and posts it to the detector's own ingest in batches.
async fn demo_feed(addr: SocketAddr, token: Option<String>) -> Result<()> {
    let cfg = SimConfig {
        agents: 200,
        duration_ms: Some(6 * 3_600_000),
        events: None,
        seed: 7,
        attacks: parse_attack_list("all")?,
        ..SimConfig::default()
    };
    let events = tokio::task::spawn_blocking(move || {
        let mut out = Vec::new();
        simulate(&cfg, &mut out, None).map(|_| out)
    })
    .await??;
    eprintln!("vigil: demo: feeding a simulated fleet of 200 agents (6 h of events) to http://{addr}/v1/events");
    let mut sent = 0usize;
    for chunk in events.split_inclusive(|&b| b == b'\n').collect::<Vec<_>>().chunks(2000) {
        let body: Vec<u8> = chunk.concat();
        loop {
            match post(addr, "/v1/events", &body, token.as_deref()).await? {
                200 => break,
                503 => tokio::time::sleep(Duration::from_millis(200)).await,
                s => bail!("ingest answered {s}"),
            }
        }
        sent += chunk.len();
    }
    eprintln!("vigil: demo: {sent} events sent; the detector keeps running (Ctrl-C to stop)");
    Ok(())
}

/// A minimal HTTP/1.1 POST on loopback; returns the status code.
async fn post(addr: SocketAddr, path: &str, body: &[u8], token: Option<&str>) -> Result<u16> {
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-ndjson\r\nContent-Length: {}\r\n{auth}Connection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await?;
    s.write_all(body).await?;
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).await?;
    let status = std::str::from_utf8(&resp[..resp.len().min(16)])
        .ok()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| anyhow!("malformed HTTP response"))?;
    Ok(status)
}
