//! The `vigil` command line (`spec/cli.md`): parses arguments and configuration, wires the crates
//! together, and maps outcomes to exit codes — 0 success, 1 a gate failed, 2 bad usage, bad
//! configuration, unreadable input or a feature not built yet.

mod cmd;
mod config;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Exit status of a gate that failed (`--fail-under`, a rule test).
pub const EXIT_GATE: u8 = 1;
/// Exit status of bad usage, configuration or input.
pub const EXIT_USAGE: u8 = 2;

#[derive(Parser, Debug)]
#[command(
    name = "vigil",
    version,
    about = "Real-time behavioural anomaly detection for AI agents.",
    long_about = "vigil watches the event streams of AI agents (tool calls, LLM calls, network, files, \
credentials), keeps per-agent and per-class baselines, scores every event and raises explained, \
grouped alerts. `replay` runs the same engine over recorded runs; `simulate` makes a labelled test fleet.",
    after_help = "Examples:\n  vigil simulate --agents 50 --duration 2h --seed 7 --attacks all --out fleet.jsonl --labels labels.jsonl\n  vigil replay fleet.jsonl --labels labels.jsonl --report report.json"
)]
struct Cli {
    /// Log level for messages on stderr (error, warn, info, debug, trace).
    #[arg(long, global = true, default_value = "warn")]
    log_level: String,
    /// Logs as JSON lines instead of text.
    #[arg(long, global = true)]
    log_json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// The live detector (embedded default: HTTP ingest on 127.0.0.1:8080).
    #[command(after_help = "Example:\n  vigil run --config vigil.toml")]
    Run(cmd::run::RunArgs),
    /// Replays recorded runs through the detection engine, on event time.
    #[command(
        after_help = "Examples:\n  vigil replay events.jsonl\n  vigil replay --labels labels.jsonl --report report.json --fail-under recall=0.9 day1.jsonl.gz day2.jsonl.zst\n  cat events.jsonl | vigil replay --alerts alerts.jsonl -"
    )]
    Replay(Box<cmd::replay::ReplayArgs>),
    /// Writes a synthetic fleet of agents with labelled attacks (seeded, reproducible).
    #[command(
        after_help = "Example:\n  vigil simulate --agents 200 --duration 6h --seed 7 --attacks all --out fleet.jsonl --labels labels.jsonl"
    )]
    Simulate(cmd::simulate::SimulateArgs),
    /// Checks and tests rule packs.
    #[command(
        subcommand,
        after_help = "Examples:\n  vigil rules check rules/default\n  vigil rules test rules/default"
    )]
    Rules(cmd::RulesCommand),
    /// Fits learned models on recorded normal runs.
    #[command(
        after_help = "Examples:\n  vigil train --out models/ normal-week.jsonl.zst\n  vigil replay --models models/ --labels labels.jsonl --report report.json fleet.jsonl"
    )]
    Train(cmd::train::TrainArgs),
    /// Webhook utilities.
    #[command(subcommand)]
    Webhook(cmd::WebhookCommand),
}

fn init_logging(level: &str, json: bool) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_new(level).unwrap_or_else(|_| EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.with_target(false).init();
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli.log_level, cli.log_json);
    let result = match cli.command {
        Command::Run(a) => cmd::run::run(a),
        Command::Replay(a) => cmd::replay::run(*a),
        Command::Simulate(a) => cmd::simulate::run(a),
        Command::Rules(c) => cmd::rules(c),
        Command::Train(a) => cmd::train::run(a),
        Command::Webhook(c) => cmd::webhook(c),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            // One line: the error and its causes, outermost first.
            eprintln!("vigil: {e:#}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}
