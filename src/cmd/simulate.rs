//! `vigil simulate`: a synthetic, labelled fleet (see `vigil-sim`).

use anyhow::{Context, Result};
use clap::Args;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use vigil_sim::{parse_attack_list, parse_duration, simulate, SimConfig};

#[derive(Args, Debug)]
pub struct SimulateArgs {
    /// Number of agent instances.
    #[arg(long, default_value_t = 50)]
    pub agents: usize,
    /// Run length in event time (e.g. 90m, 6h, 1d); default 1h unless --events is given.
    #[arg(long, conflicts_with = "events")]
    pub duration: Option<String>,
    /// Stop after exactly this many events.
    #[arg(long)]
    pub events: Option<u64>,
    /// Seed of every random draw.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Attack types: comma-separated names, `all` or `none`.
    #[arg(long, default_value = "all")]
    pub attacks: String,
    /// Start of the run (RFC 3339 or epoch milliseconds).
    #[arg(long, default_value = "2026-01-01T00:00:00Z")]
    pub start: String,
    /// Events output (`-` = stdout).
    #[arg(long, default_value = "-")]
    pub out: String,
    /// Labels output (attack windows, JSON Lines).
    #[arg(long)]
    pub labels: Option<String>,
}

fn writer(path: &str) -> Result<Box<dyn Write>> {
    Ok(if path == "-" {
        Box::new(BufWriter::with_capacity(1 << 16, io::stdout()))
    } else {
        Box::new(BufWriter::with_capacity(
            1 << 16,
            File::create(path).with_context(|| format!("cannot create {path}"))?,
        ))
    })
}

pub fn run(a: SimulateArgs) -> Result<u8> {
    let start_ms = vigil_detector::time::parse_ts_text(&a.start)
        .with_context(|| format!("--start {:?} is not an RFC 3339 time or epoch milliseconds", a.start))?;
    let duration_ms = match (&a.duration, a.events) {
        (Some(d), _) => Some(parse_duration(d).with_context(|| format!("--duration {d:?}"))?),
        (None, Some(_)) => None,
        (None, None) => Some(3_600_000),
    };
    let cfg = SimConfig {
        agents: a.agents,
        duration_ms,
        events: a.events,
        seed: a.seed,
        attacks: parse_attack_list(&a.attacks).context("--attacks")?,
        start_ms,
    };
    cfg.validate()?;
    let mut events = writer(&a.out)?;
    let mut labels = match &a.labels {
        Some(p) => Some(writer(p)?),
        None => None,
    };
    let stats = simulate(&cfg, &mut events, labels.as_mut().map(|w| w as &mut dyn Write))?;
    events.flush().context("writing events")?;
    if let Some(l) = &mut labels {
        l.flush().context("writing labels")?;
    }
    eprintln!("simulated {} events from {} agents with {} attack windows", stats.events, stats.agents, stats.attacks);
    Ok(0)
}
