//! `vigil rules check|test`, and loading a rule pack for the other commands.

use crate::{EXIT_GATE, EXIT_USAGE};
use anyhow::{anyhow, Result};
use std::path::Path;
use std::sync::Arc;
use vigil_detector::alert::Position;
use vigil_detector::decode::{decode, Limits};
use vigil_detector::rules::RuleSchema;
use vigil_detector::{Engine, EngineConfig};
use vigil_rules::{load_cases, run_cases, Expect, JsonRecord, Pack, TestCase};

/// Loads and checks a rule pack (a directory of `.yaml` files or one file); the error lists every
/// problem as `file:line:column: message`.
pub fn load_pack(path: &str) -> Result<Pack> {
    Pack::load_dir_or_file(Path::new(path), &RuleSchema::get().schema).map_err(|d| {
        let lines: Vec<String> = d.0.iter().map(|x| x.to_string()).collect();
        anyhow!("rule pack {path} has {} error(s):\n{}", lines.len(), lines.join("\n"))
    })
}

/// The pack named by `--rules` / `[rules] path`, else the built-in default pack.
pub fn pack_or_default(path: Option<&str>) -> Result<Arc<Pack>> {
    Ok(Arc::new(match path {
        Some(p) => load_pack(p)?,
        None => vigil_detector::rules::default_pack(),
    }))
}

pub fn check(path: &str) -> Result<u8> {
    match Pack::load_dir_or_file(Path::new(path), &RuleSchema::get().schema) {
        Ok(pack) => {
            let enabled = pack.rules().iter().filter(|r| r.enabled).count();
            eprintln!("{path}: {} rule(s), {enabled} enabled: OK", pack.rules().len());
            Ok(0)
        }
        Err(d) => {
            for x in &d.0 {
                eprintln!("{x}");
            }
            eprintln!("{path}: {} error(s)", d.0.len());
            Ok(EXIT_USAGE)
        }
    }
}

/// Whether the case's rule matches any of its events.
///
/// Cases run through a fresh engine, exactly as events are judged live. A case whose events carry a
/// `score` object (detector scores stated by the case, e.g. `{"entropy": 0.9}`) is about how a rule
/// uses those scores, which an engine without history would not produce: it runs against the pack
/// alone, with the stated scores.
fn case_fires(pack: &Arc<Pack>, case: &TestCase) -> Result<bool, String> {
    if case.events.iter().any(|e| e.get("score").is_some()) {
        let schema = &RuleSchema::get().schema;
        let report = run_cases(pack, std::slice::from_ref(case), |v| Box::new(JsonRecord::new(v, schema)));
        return Ok(report.results.first().is_some_and(|r| r.passed) == (case.expect == Expect::Fire));
    }
    let (rule, events) = (&case.rule, &case.events);
    let mut cfg = EngineConfig::default();
    cfg.engine.shards = 1;
    cfg.engine.max_agents = 1000;
    let mut engine = Engine::with_pack(cfg, Arc::clone(pack)).map_err(|e| e.to_string())?;
    let wanted = format!("rule:{rule}");
    let mut fired = false;
    for (i, ev) in events.iter().enumerate() {
        let bytes = serde_json::to_vec(ev).map_err(|e| e.to_string())?;
        let ev = decode(&bytes, &Limits::default()).map_err(|r| format!("event {}: {r}", i + 1))?;
        let v = engine.process(&ev, Position { source: 0, offset: i as u64 + 1 });
        fired |= v.rules.iter().any(|(name, _)| *name == wanted);
    }
    Ok(fired)
}

pub fn test(path: &str) -> Result<u8> {
    let pack = match Pack::load_dir_or_file(Path::new(path), &RuleSchema::get().schema) {
        Ok(p) => Arc::new(p),
        Err(d) => {
            for x in &d.0 {
                eprintln!("{x}");
            }
            return Ok(EXIT_USAGE);
        }
    };
    let cases = match load_cases(Path::new(path)) {
        Ok(c) => c,
        Err(d) => {
            for x in &d.0 {
                eprintln!("{x}");
            }
            return Ok(EXIT_USAGE);
        }
    };
    let (mut passed, mut failed) = (0usize, 0usize);
    for case in &cases {
        let Some(info) = pack.rules().iter().find(|r| r.id == case.rule) else {
            eprintln!("FAIL {}:{}: {}: no rule {:?} in the pack", case.file, case.line, case.name, case.rule);
            failed += 1;
            continue;
        };
        if !info.enabled {
            eprintln!("SKIP {}:{}: {} (rule {} is disabled)", case.file, case.line, case.name, case.rule);
            continue;
        }
        match case_fires(&pack, case) {
            Ok(fired) if fired == (case.expect == Expect::Fire) => passed += 1,
            Ok(fired) => {
                failed += 1;
                eprintln!(
                    "FAIL {}:{}: {}: rule {} {}",
                    case.file,
                    case.line,
                    case.name,
                    case.rule,
                    if fired { "fired but must not" } else { "did not fire" }
                );
            }
            Err(e) => {
                failed += 1;
                eprintln!("FAIL {}:{}: {}: {e}", case.file, case.line, case.name);
            }
        }
    }
    // Every enabled rule should show both that it fires and that it stays quiet.
    for r in pack.rules().iter().filter(|r| r.enabled) {
        for (expect, what) in [(Expect::Fire, "firing"), (Expect::NoFire, "non-firing")] {
            if !cases.iter().any(|c| c.rule == r.id && c.expect == expect) {
                eprintln!("warning: rule {} has no {what} case", r.id);
            }
        }
    }
    eprintln!("{path}: {passed} case(s) passed, {failed} failed");
    Ok(if failed > 0 { EXIT_GATE } else { 0 })
}
