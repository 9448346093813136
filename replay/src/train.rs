//! The data side of `vigil train`: recorded normal runs through the engine with a collecting model
//! set, gathering every closed feature window ([`vigil_detector::score::model`]) per agent class.
//!
//! The same reader, merge and engine as a replay, on one thread (training reads normal data once;
//! speed matters less than simplicity here), so the vectors a model is fitted on are computed exactly
//! as the vectors it will score. The input is fingerprinted as read (SHA-256 over every line), so an
//! artifact names the data it came from.

use crate::input::{self, Batch, LineReader};
use crate::merge::Merger;
use crate::{ReplayError, Source};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::sync::Arc;
use vigil_detector::decode::{decode, Limits};
use vigil_detector::score::model::{FeatureRow, ModelSet};
use vigil_detector::{Engine, EngineConfig, Position};

/// What a pass over training data gathered.
pub struct Collected {
    /// Closed feature windows per class name (classes in name order; rows in a fixed order).
    pub by_class: BTreeMap<String, Vec<FeatureRow>>,
    /// Accepted events and rejected lines.
    pub events: u64,
    pub invalid: u64,
    /// SHA-256 (hex) of the input lines as read, in processing order.
    pub fingerprint: String,
}

/// Runs `inputs` (merged by `ts` when several) through an engine configured by `cfg`, gathering
/// feature windows.
pub fn collect(inputs: &[String], cfg: &EngineConfig, batch_bytes: usize) -> Result<Collected, ReplayError> {
    let mut engine = Engine::new(cfg.clone())?;
    engine.set_models(Some(Arc::new(ModelSet::collector())));
    let limits = Limits { max_event_bytes: cfg.engine.max_event_bytes, max_depth: cfg.engine.max_depth };
    let mut readers = Vec::with_capacity(inputs.len());
    for (i, p) in inputs.iter().enumerate() {
        readers.push(LineReader::new(input::open(p)?, i as u32, limits.max_event_bytes));
    }
    let mut source = if readers.len() == 1 {
        Source::Single(readers.pop().expect("one reader"))
    } else {
        Source::Merged(Merger::new(readers, limits, batch_bytes))
    };
    let mut hasher = Sha256::new();
    let (mut events, mut invalid) = (0u64, 0u64);
    let mut rows = Vec::new();
    let mut batch = Batch::default();
    while source
        .next_batch(&mut batch, batch_bytes)
        .map_err(|e| ReplayError::Read { path: inputs.join(", "), error: e })?
    {
        for l in &batch.lines {
            let bytes = batch.bytes(l);
            hasher.update(bytes);
            hasher.update(b"\n");
            if l.too_long.is_some() {
                invalid += 1;
                continue;
            }
            match decode(bytes, &limits) {
                Ok(ev) => {
                    let v = engine.process(&ev, Position { source: l.source, offset: l.line });
                    events += !v.duplicate as u64;
                }
                Err(_) => invalid += 1,
            }
        }
        rows.extend(engine.take_feature_rows());
    }
    engine.sync();
    let mut by_class: BTreeMap<String, Vec<FeatureRow>> = BTreeMap::new();
    for r in rows {
        let name = engine.classes().name(r.class_hash).unwrap_or("").to_string();
        by_class.entry(name).or_default().push(r);
    }
    let fingerprint = hasher.finalize().iter().map(|b| format!("{b:02x}")).collect();
    Ok(Collected { by_class, events, invalid, fingerprint })
}
