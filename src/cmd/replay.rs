//! `vigil replay`: recorded runs through the detection engine (see `vigil-replay`).

use crate::config::Config;
use crate::EXIT_GATE;
use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use serde_json::Value;
use std::io::Write as _;
use vigil_replay::{run as replay, ReplayOptions};

#[derive(Args, Debug)]
pub struct ReplayArgs {
    /// TOML configuration (thresholds, detectors on/off, limits); default: built in.
    #[arg(long)]
    pub config: Option<String>,
    /// A rule pack directory or file.
    #[arg(long)]
    pub rules: Option<String>,
    /// Backtest diff: also run this older rule pack and report what changes.
    #[arg(long)]
    pub compare_rules: Option<String>,
    /// Read a Kafka topic instead of files.
    #[arg(long)]
    pub kafka_topic: Option<String>,
    /// With --kafka-topic: first event time.
    #[arg(long)]
    pub from: Option<String>,
    /// With --kafka-topic: last event time.
    #[arg(long)]
    pub to: Option<String>,
    /// Trained model artifacts.
    #[arg(long)]
    pub models: Option<String>,
    /// Alerts as JSON Lines (`-` = stdout).
    #[arg(long, default_value = "-")]
    pub alerts: String,
    /// One score line per accepted event.
    #[arg(long)]
    pub scores: Option<String>,
    /// Labels (attack windows); turns on evaluation.
    #[arg(long)]
    pub labels: Option<String>,
    /// The report JSON.
    #[arg(long)]
    pub report: Option<String>,
    /// Exit 1 when a report figure is below VALUE (repeatable), e.g. recall=0.9.
    #[arg(long, value_name = "METRIC=VALUE")]
    pub fail_under: Vec<String>,
    /// Where rejected lines go (created only when a line is rejected).
    #[arg(long, default_value = "rejected.jsonl")]
    pub dead_letter: String,
    /// Really send configured webhooks (default in replay: shadow mode).
    #[arg(long)]
    pub enforce_webhooks: bool,
    /// Worker threads (default: the available cores). Output never depends on it.
    #[arg(long)]
    pub threads: Option<usize>,
    /// Recorded runs: JSON Lines files (.gz/.zst too) or `-` for stdin; several are merged by `ts`.
    #[arg(required_unless_present = "kafka_topic")]
    pub inputs: Vec<String>,
}

/// Backtest diff: replays the inputs with the old pack and with the new one, and writes to `--alerts`
/// the alerts that appear (`"diff":"added"`), disappear (`"removed"`) or change (`"changed"`, the new
/// version: another detector, severity, action, title or tags), matched by alert id; counts per detector go to stderr and, with `--report`, to the report
/// (`compare_rules`). The new run's report is the report. A diff is not a gate.
fn compare_rules(opts: &ReplayOptions, old_pack: &str) -> Result<vigil_replay::ReplaySummary> {
    let dir = tempfile::tempdir().context("creating a scratch directory")?;
    let run_with = |pack: std::sync::Arc<vigil_rules::Pack>, name: &str, keep_outputs: bool| {
        let mut o = opts.clone();
        o.pack = Some(pack);
        o.alerts = dir.path().join(name).to_string_lossy().into_owned();
        if !keep_outputs {
            o.scores = None;
            o.report = None;
            o.labels = None;
            o.dead_letter = dir.path().join("old-rejected.jsonl").to_string_lossy().into_owned();
        }
        o.progress = false;
        replay(&o).map(|s| (s, o.alerts))
    };
    let (_, old_path) = run_with(super::rules::pack_or_default(Some(old_pack))?, "old.jsonl", false)?;
    let new_pack = opts.pack.clone().unwrap_or_else(|| std::sync::Arc::new(vigil_detector::rules::default_pack()));
    let (mut summary, new_path) = run_with(new_pack, "new.jsonl", true)?;
    let read = |p: &str| -> Result<Vec<(String, String, Value)>> {
        std::fs::read_to_string(p)?
            .lines()
            .map(|l| {
                let v: Value = serde_json::from_str(l)?;
                Ok((v["id"].as_str().unwrap_or_default().to_string(), l.to_string(), v))
            })
            .collect()
    };
    let (old, new) = (read(&old_path)?, read(&new_path)?);
    let old_by_id: std::collections::HashMap<&str, &(String, String, Value)> =
        old.iter().map(|a| (a.0.as_str(), a)).collect();
    let new_ids: std::collections::HashSet<&str> = new.iter().map(|a| a.0.as_str()).collect();
    let mut out: Box<dyn std::io::Write> = if opts.alerts == "-" {
        Box::new(std::io::BufWriter::new(std::io::stdout()))
    } else {
        Box::new(std::io::BufWriter::new(
            std::fs::File::create(&opts.alerts).with_context(|| format!("cannot write {}", opts.alerts))?,
        ))
    };
    let mut counts: std::collections::BTreeMap<String, [u64; 3]> = std::collections::BTreeMap::new();
    let mut emit = |kind: &str, idx: usize, line: &str, v: &Value| -> Result<()> {
        let detector = v["detector"].as_str().unwrap_or_default().to_string();
        counts.entry(detector).or_default()[idx] += 1;
        // The alert line as written, with the diff marker as its first field.
        writeln!(out, "{{\"diff\":\"{kind}\",{}", line.strip_prefix('{').unwrap_or(line))?;
        Ok(())
    };
    // What an analyst acts on; scores and reason numbers drift with any change of learning.
    let material =
        |v: &Value| ["detector", "severity", "action", "suppressed_action", "title", "tags"].map(|k| v.get(k).cloned());
    for (id, line, v) in &new {
        match old_by_id.get(id.as_str()) {
            None => emit("added", 0, line, v)?,
            Some(o) if material(&o.2) != material(v) => emit("changed", 2, line, v)?,
            Some(_) => {}
        }
    }
    for (id, line, v) in &old {
        if !new_ids.contains(id.as_str()) {
            emit("removed", 1, line, v)?;
        }
    }
    out.flush()?;
    let mut by = serde_json::Map::new();
    let mut total = [0u64; 3];
    for (det, c) in &counts {
        eprintln!("compare-rules: {det}: {} added, {} removed, {} changed", c[0], c[1], c[2]);
        for i in 0..3 {
            total[i] += c[i];
        }
        by.insert(det.clone(), serde_json::json!({"added": c[0], "removed": c[1], "changed": c[2]}));
    }
    eprintln!("compare-rules: {} added, {} removed, {} changed in all", total[0], total[1], total[2]);
    let diff = serde_json::json!({"added": total[0], "removed": total[1], "changed": total[2], "by_detector": by});
    summary.report.insert("compare_rules".into(), diff);
    if let Some(path) = &opts.report {
        let mut text = serde_json::to_string_pretty(&Value::Object(summary.report.clone()))?;
        text.push('\n');
        std::fs::write(path, text).with_context(|| format!("cannot write {path}"))?;
    }
    Ok(summary)
}

/// A parsed `--fail-under` gate.
#[derive(Debug, PartialEq)]
struct Gate {
    metric: String,
    min: f64,
}

/// Report figures a gate may name.
const GATE_METRICS: &[&str] = &[
    "events",
    "invalid_events",
    "duplicate_events",
    "late_events",
    "agents",
    "alerts",
    "events_per_s",
    "attacks",
    "detected",
    "recall",
    "precision",
    "f1",
    "false_alerts",
    "false_alerts_per_agent_hour",
    "delay_s_mean",
    "delay_s_p95",
];

fn parse_gate(s: &str) -> Result<Gate> {
    let (m, v) = s.split_once('=').ok_or_else(|| anyhow!("--fail-under {s:?}: expected METRIC=VALUE"))?;
    let metric = m.trim().to_string();
    if !GATE_METRICS.contains(&metric.as_str()) {
        bail!("--fail-under {s:?}: unknown metric {metric:?} (one of {})", GATE_METRICS.join(", "));
    }
    let min: f64 = v.trim().parse().map_err(|_| anyhow!("--fail-under {s:?}: {v:?} is not a number"))?;
    Ok(Gate { metric, min })
}

pub fn run(mut a: ReplayArgs) -> Result<u8> {
    if a.kafka_topic.is_none() && (a.from.is_some() || a.to.is_some()) {
        bail!("--from and --to select a time range of --kafka-topic");
    }
    let gates = a.fail_under.iter().map(|g| parse_gate(g)).collect::<Result<Vec<_>>>()?;
    let needs_labels = [
        "attacks",
        "detected",
        "recall",
        "precision",
        "f1",
        "false_alerts",
        "false_alerts_per_agent_hour",
        "delay_s_mean",
        "delay_s_p95",
    ];
    if a.labels.is_none() {
        if let Some(g) = gates.iter().find(|g| needs_labels.contains(&g.metric.as_str())) {
            bail!("--fail-under {}: this figure needs --labels", g.metric);
        }
    }
    let cfg = Config::load(a.config.as_deref(), std::env::vars())?;
    // A topic is read to its end into one file per partition; several partitions merge by `ts`.
    let _topic_dir = match &a.kafka_topic {
        Some(topic) => {
            if !a.inputs.is_empty() {
                bail!("--kafka-topic replaces the input files; give one or the other");
            }
            let k = cfg.kafka.as_ref().ok_or_else(|| anyhow!("--kafka-topic needs [kafka] brokers in --config"))?;
            let ts = |opt: &str, v: &Option<String>| -> Result<Option<i64>> {
                v.as_deref()
                    .map(|t| {
                        vigil_detector::time::parse_ts_text(t)
                            .ok_or_else(|| anyhow!("{opt} {t:?}: not an RFC 3339 time or epoch milliseconds"))
                    })
                    .transpose()
            };
            let (from, to) = (ts("--from", &a.from)?, ts("--to", &a.to)?);
            let dir = tempfile::tempdir().context("a temporary directory for the topic")?;
            let (files, left_out) =
                vigil_live::kafka::read_topic(k, topic, from, to, dir.path()).map_err(|e| anyhow!("{e}"))?;
            if left_out > 0 {
                eprintln!("{topic}: {left_out} events outside --from/--to left out");
            }
            a.inputs = files.iter().map(|p| p.display().to_string()).collect();
            Some(dir)
        }
        None => None,
    };
    // Endpoints are checked before the replay, so a bad table costs no time.
    let endpoints = vigil_webhook::validate_all(&cfg.webhook).map_err(|e| anyhow!("{e}"))?;
    if !endpoints.is_empty() && a.enforce_webhooks && cfg.state.is_none() {
        bail!("--enforce-webhooks needs `[state] dir` in the configuration (the durable outbox lives there)");
    }
    let mut opts = ReplayOptions::new(a.inputs);
    opts.keep_alerts = !endpoints.is_empty();
    opts.engine = cfg.engine_config();
    opts.pack = Some(super::rules::pack_or_default(a.rules.as_deref().or(cfg.rules.path.as_deref()))?);
    opts.alerts = a.alerts;
    opts.scores = a.scores;
    opts.labels = a.labels;
    opts.report = a.report;
    opts.dead_letter = a.dead_letter;
    let models_dir = a.models.as_deref().or(cfg.models.as_ref().and_then(|m| m.dir.as_deref()));
    opts.models = models_dir.map(super::train::load_models).transpose()?;
    opts.threads =
        a.threads.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)).max(1);
    opts.progress = true;
    let summary = match &a.compare_rules {
        None => replay(&opts)?,
        Some(old) => compare_rules(&opts, old)?,
    };

    let r = &summary.report;
    let mut line = format!(
        "replayed {} events ({} rejected, {} duplicates, {} late) from {} agents in {:.2}s ({} events/s): {} alerts",
        summary.events,
        summary.invalid_events,
        r["duplicate_events"],
        r["late_events"],
        r["agents"],
        summary.elapsed.as_secs_f64(),
        r["events_per_s"],
        summary.alerts
    );
    if !summary.rejects_by_reason.is_empty() {
        let reasons: Vec<String> = summary.rejects_by_reason.iter().map(|(k, v)| format!("{k}={v}")).collect();
        line.push_str(&format!("; rejected by reason: {}; see {}", reasons.join(" "), opts.dead_letter));
    }
    eprintln!("{line}");
    if r.contains_key("recall") {
        let f = |k: &str| match &r[k] {
            Value::Null => "n/a".to_string(),
            Value::Number(n) => format!("{:.3}", n.as_f64().unwrap_or(0.0)),
            v => v.to_string(),
        };
        eprintln!(
            "evaluation: detected {}/{} attack windows, recall {}, precision {}, f1 {}, {} false alerts ({} per agent-hour), delay mean {}s p95 {}s",
            r["detected"],
            r["attacks"],
            f("recall"),
            f("precision"),
            f("f1"),
            r["false_alerts"],
            f("false_alerts_per_agent_hour"),
            f("delay_s_mean"),
            f("delay_s_p95")
        );
        if let Value::Object(by) = &r["by_attack"] {
            for (name, v) in by {
                eprintln!("  {name:<22} {}/{} detected", v["detected"], v["attacks"]);
            }
        }
    }

    if summary.kills_withheld > 0 {
        eprintln!("blast-radius cap: {} kill actions withheld", summary.kills_withheld);
    }
    if !endpoints.is_empty() {
        let names: Vec<String> = opts.inputs.iter().map(|p| vigil_replay::source_name(p)).collect();
        let dir = cfg.state.as_ref().map(|s| s.dir.as_path());
        webhooks(endpoints, dir, summary.kept_alerts, names, a.enforce_webhooks)?;
    }

    let mut failed = false;
    for g in &gates {
        match r.get(&g.metric).and_then(Value::as_f64) {
            Some(v) if v >= g.min => {}
            Some(v) => {
                eprintln!("gate failed: {} = {v} is below {}", g.metric, g.min);
                failed = true;
            }
            None => {
                eprintln!("gate failed: {} has no value in this run", g.metric);
                failed = true;
            }
        }
    }
    Ok(if failed { EXIT_GATE } else { 0 })
}

/// Containment webhooks of a replay: counted and logged (shadow, the default, so a backtest fires no
/// kill switch), or with `--enforce-webhooks` really sent through the outbox in `[state] dir`,
/// waiting until every delivery is done or dead-lettered.
fn webhooks(
    endpoints: Vec<vigil_webhook::Endpoint>,
    state_dir: Option<&std::path::Path>,
    alerts: Vec<vigil_detector::Alert>,
    names: Vec<String>,
    enforce: bool,
) -> Result<()> {
    use vigil_webhook::{Dispatcher, DispatcherOptions, Mode};
    if !enforce {
        for ep in &endpoints {
            let n = alerts.iter().filter(|a| ep.filter.accepts(a)).count();
            eprintln!("webhook {} (shadow): {n} alerts would have been sent; --enforce-webhooks sends them", ep.name);
        }
        return Ok(());
    }
    let dir = state_dir.expect("checked before the replay");
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the runtime")?;
    runtime.block_on(async {
        let outbox = vigil_live::webhooks::open_outbox(dir).map_err(|e| anyhow!("{e}"))?;
        let horizon = endpoints.iter().map(|e| e.retry_horizon).max().unwrap_or_default();
        let enforced: Vec<String> =
            endpoints.iter().filter(|e| e.mode == Mode::Enforce).map(|e| e.name.clone()).collect();
        let d = Dispatcher::start(endpoints, Some(outbox), DispatcherOptions::default()).map_err(|e| anyhow!("{e}"))?;
        let submitter = d.submitter();
        let sub = tokio::task::spawn_blocking(move || submitter.submit_batch(&alerts, &names)).await?;
        sub.map_err(|e| anyhow!("{e}"))?;
        let deadline = std::time::Instant::now() + horizon + std::time::Duration::from_secs(5);
        loop {
            let owed: u64 = d.stats().iter().map(|(_, s)| s.snapshot().outbox_depth).sum();
            if owed == 0 || std::time::Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        for (name, s) in d.stats() {
            let s = s.snapshot();
            if enforced.contains(&name) {
                eprintln!("webhook {name}: {} delivered, {} dead-lettered", s.delivered, s.dead_lettered);
            } else {
                eprintln!("webhook {name} (shadow): {} alerts would have been sent", s.shadowed);
            }
        }
        let report = d.shutdown(std::time::Duration::from_secs(3)).await;
        if report.pending > 0 {
            eprintln!("webhooks: {} deliveries still owed stay in the outbox", report.pending);
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gates_parse_and_refuse_nonsense() {
        assert_eq!(parse_gate("recall=0.9").unwrap(), Gate { metric: "recall".into(), min: 0.9 });
        assert!(parse_gate("recall").is_err());
        assert!(parse_gate("recal=0.9").is_err());
        assert!(parse_gate("recall=high").is_err());
    }
}
