//! Runs the simulator from the command line and reports throughput on stderr; for measuring and eyeballing.
//!
//! `cargo run --release -p vigil-sim --example simulate -- AGENTS (DURATION | EVENTS) SEED ATTACKS EVENTS_OUT [LABELS_OUT]`
//! e.g. `... -- 2000 1000000 1 all /dev/null` or `... -- 200 6h 1 all /tmp/ev.jsonl /tmp/labels.jsonl`.

use std::fs::File;
use std::io::BufWriter;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 5 {
        eprintln!("usage: simulate AGENTS (DURATION|EVENTS) SEED ATTACKS EVENTS_OUT [LABELS_OUT]");
        std::process::exit(2);
    }
    let mut cfg = vigil_sim::SimConfig {
        agents: args[0].parse()?,
        seed: args[2].parse()?,
        attacks: vigil_sim::parse_attack_list(&args[3])?,
        ..Default::default()
    };
    if args[1].bytes().all(|b| b.is_ascii_digit()) {
        cfg.events = Some(args[1].parse()?);
        cfg.duration_ms = None;
    } else {
        cfg.duration_ms = Some(vigil_sim::parse_duration(&args[1])?);
    }
    let mut events = BufWriter::new(File::create(&args[4])?);
    let mut labels = match args.get(5) {
        Some(p) => Some(BufWriter::new(File::create(p)?)),
        None => None,
    };
    let t0 = Instant::now();
    let stats = vigil_sim::simulate(&cfg, &mut events, labels.as_mut().map(|w| w as &mut dyn std::io::Write))?;
    let secs = t0.elapsed().as_secs_f64();
    eprintln!(
        "{} events, {} agents, {} attack windows in {:.2}s ({:.0} events/s)",
        stats.events,
        stats.agents,
        stats.attacks,
        secs,
        stats.events as f64 / secs
    );
    Ok(())
}
