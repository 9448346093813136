//! `vigil train`: fit the learned models on recorded normal runs and write them to a models directory;
//! and loading a models directory for the other commands.
//!
//! The inputs go through the engine with a collecting model set (`vigil-replay`'s `train::collect`),
//! which yields every agent's closed feature windows; each class with enough of them gets a model
//! (`vigil-models`' `learned::fit`), written as `<out>/window-<class>.json`.

use crate::config::Config;
use anyhow::{bail, Context, Result};
use clap::Args;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;
use vigil_detector::score::model::{feature_names, one_sided_features, ModelSet, FEATURE_VERSION, WINDOW_MODEL};
use vigil_models::learned::{fit, FitError, FitOptions};

#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Where the model artifacts go (created if missing; artifacts of the classes trained are replaced).
    #[arg(long)]
    pub out: String,
    /// Only this agent class (default: every class with enough data).
    #[arg(long)]
    pub class: Option<String>,
    /// Share of the normal data (whole agents) kept aside to calibrate the false-alarm rate, in (0, 1).
    #[arg(long, default_value_t = 0.2)]
    pub holdout_fraction: f64,
    /// TOML configuration of the engine the features are computed with (as for `vigil replay`).
    #[arg(long)]
    pub config: Option<String>,
    /// Recorded normal runs: JSON Lines files (.gz/.zst too) or `-` for stdin; several are merged by `ts`.
    #[arg(required = true)]
    pub inputs: Vec<String>,
}

/// Loads every model artifact of `dir`; an empty directory is an error (a wrong path, most likely).
pub fn load_models(dir: &str) -> Result<Arc<ModelSet>> {
    let set = ModelSet::load_dir(Path::new(dir)).with_context(|| format!("cannot load models from {dir}"))?;
    if set.is_empty() {
        bail!("models directory {dir} holds no model artifacts (*.json written by `vigil train`)");
    }
    Ok(Arc::new(set))
}

pub fn run(a: TrainArgs) -> Result<u8> {
    if !(a.holdout_fraction > 0.0 && a.holdout_fraction < 1.0) {
        bail!("--holdout-fraction {}: must be between 0 and 1 (exclusive)", a.holdout_fraction);
    }
    let cfg = Config::load(a.config.as_deref(), std::env::vars())?;
    let t0 = Instant::now();
    let collected = vigil_replay::train::collect(&a.inputs, &cfg.engine_config(), 4 << 20)?;
    let collect_secs = t0.elapsed().as_secs_f64();
    let windows: usize = collected.by_class.values().map(Vec::len).sum();
    eprintln!(
        "train: {} events ({} rejected) gave {windows} feature windows of {} class(es) in {collect_secs:.2}s",
        collected.events,
        collected.invalid,
        collected.by_class.len()
    );
    if let Some(c) = &a.class {
        if !collected.by_class.contains_key(c) {
            let known: Vec<&str> = collected.by_class.keys().map(String::as_str).collect();
            bail!("--class {c:?}: no events of that class in the input (classes seen: {})", known.join(", "));
        }
    }
    let out = Path::new(&a.out);
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", a.out))?;
    let names = feature_names();
    let mut written: Vec<String> = Vec::new();
    let t_fit = Instant::now();
    for (class, rows) in &collected.by_class {
        if a.class.as_ref().is_some_and(|c| c != class) {
            continue;
        }
        let mut opts = FitOptions::new(WINDOW_MODEL, class, FEATURE_VERSION, &names);
        opts.holdout_fraction = a.holdout_fraction;
        opts.one_sided = one_sided_features();
        opts.fingerprint = collected.fingerprint.clone();
        opts.events = collected.events;
        let x: Vec<Vec<f64>> = rows.iter().map(|r| r.x.to_vec()).collect();
        let groups: Vec<u64> = rows.iter().map(|r| r.agent_hash).collect();
        let t = Instant::now();
        match fit(&x, &groups, &opts) {
            Ok((artifact, report)) => {
                let file = artifact.file_name();
                if written.contains(&file) {
                    bail!("two classes map to the artifact file name {file}; rename one of them");
                }
                let path = out.join(&file);
                let tmp = out.join(format!(".{file}.tmp"));
                std::fs::write(&tmp, artifact.to_json()).with_context(|| format!("cannot write {}", tmp.display()))?;
                std::fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))?;
                let tr = &artifact.training;
                eprintln!(
                    "train: class {class}: {} windows ({} fitted from {} agents, {} held out from {} agents), {} of {} features vary, {} component(s); fitted in {:.2}s -> {}",
                    rows.len(),
                    tr.train_vectors,
                    tr.train_agents,
                    tr.holdout_vectors,
                    tr.holdout_agents,
                    report.active_features,
                    names.len(),
                    report.components,
                    t.elapsed().as_secs_f64(),
                    path.display()
                );
                written.push(file);
            }
            Err(e @ (FitError::TooFew { .. } | FitError::Split { .. })) if a.class.is_none() => {
                eprintln!("train: skipped: {e}");
            }
            Err(e) => return Err(e.into()),
        }
    }
    if written.is_empty() {
        bail!("no model was trained: no class has enough normal data (see above)");
    }
    eprintln!(
        "train: wrote {} model(s) to {} in {:.2}s (features {collect_secs:.2}s, fitting {:.2}s)",
        written.len(),
        a.out,
        t0.elapsed().as_secs_f64(),
        t_fit.elapsed().as_secs_f64()
    );
    Ok(0)
}
