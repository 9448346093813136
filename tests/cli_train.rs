//! `vigil train` and `vigil replay --models`, end to end through the real binary: training on a normal
//! fleet writes versioned artifacts, reproducibly; replaying with them adds component `model:window`,
//! byte-identically across runs, thread counts, the two ways of naming the directory and artifacts
//! written again by another JSON writer (they round-trip); artifacts of another feature version and
//! bad options are refused with exit 2 and one clear line.

mod common;

use common::*;
use serde_json::Value;
use std::path::Path;

/// A normal fleet large enough for several classes to get a model.
fn normal_fleet(d: &Path) -> std::path::PathBuf {
    simulate(d, "normal.jsonl", &["--agents", "120", "--duration", "12h", "--seed", "3", "--attacks", "none"], false)
}

fn train(d: &Path, input: &Path, out: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["train", "--out", out];
    args.extend_from_slice(extra);
    args.push(s(input));
    run_in(d, &args)
}

fn artifacts(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    v.sort();
    v
}

fn replay(d: &Path, input: &Path, tag: &str, extra: &[&str]) -> (Vec<u8>, Vec<u8>) {
    let (a, sc) = (d.join(format!("{tag}.alerts")), d.join(format!("{tag}.scores")));
    let mut args = vec!["replay", "--alerts", s(&a), "--scores", s(&sc)];
    args.extend_from_slice(extra);
    args.push(s(input));
    let out = run_in(d, &args);
    assert_exit(&out, 0);
    (std::fs::read(&a).unwrap(), std::fs::read(&sc).unwrap())
}

#[test]
fn train_then_replay_with_models_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let normal = normal_fleet(d);
    let out = train(d, &normal, "models", &[]);
    assert_exit(&out, 0);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("wrote") && err.contains("model(s)"), "a summary on stderr: {err}");
    assert!(out.stdout.is_empty(), "stdout carries nothing for train");
    let files = artifacts(&d.join("models"));
    assert!(!files.is_empty(), "some class must have enough data: {err}");

    // Every artifact says what it is, what it was trained on and how it is calibrated.
    for f in &files {
        let a = read_json(f);
        assert_eq!(a["format"], "vigil-model", "{}", f.display());
        assert_eq!(a["artifact_version"], 1);
        assert_eq!(a["name"], "window");
        assert!(a["feature_version"].as_u64().is_some_and(|v| v >= 1));
        let name = f.file_name().unwrap().to_str().unwrap();
        assert_eq!(name, format!("window-{}.json", a["class"].as_str().unwrap()));
        assert_eq!(a["features"].as_array().unwrap().len(), a["center"].as_array().unwrap().len());
        let t = &a["training"];
        assert_eq!(t["fingerprint"].as_str().unwrap().len(), 64, "SHA-256 of the training data");
        assert!(t["train_vectors"].as_u64().unwrap() > 0 && t["holdout_vectors"].as_u64().unwrap() > 0);
        assert!(t["holdout_agents"].as_u64().unwrap() > 0);
        assert!(!a["calibration"]["thresholds"].as_array().unwrap().is_empty());
    }

    // Training is reproducible: the same data gives the same files, byte for byte.
    assert_exit(&train(d, &normal, "models-again", &[]), 0);
    let again = artifacts(&d.join("models-again"));
    assert_eq!(again.len(), files.len());
    for (a, b) in files.iter().zip(&again) {
        assert!(std::fs::read(a).unwrap() == std::fs::read(b).unwrap(), "{} differs", a.display());
    }

    // Replay with the models: deterministic across runs and thread counts, and the same through the
    // configuration file.
    let attacked =
        simulate(d, "fleet.jsonl", &["--agents", "60", "--duration", "3h", "--seed", "5", "--attacks", "all"], false);
    std::fs::write(d.join("vigil.toml"), "[models]\ndir = \"models\"\n").unwrap();
    let runs = [
        replay(d, &attacked, "m-1", &["--models", "models", "--threads", "1"]),
        replay(d, &attacked, "m-2", &["--models", "models", "--threads", "2"]),
        replay(d, &attacked, "m-7", &["--models", "models", "--threads", "7"]),
        replay(d, &attacked, "m-cfg", &["--config", "vigil.toml", "--threads", "3"]),
    ];
    for (i, r) in runs.iter().enumerate().skip(1) {
        assert!(r.0 == runs[0].0, "run {i}: alerts differ");
        assert!(r.1 == runs[0].1, "run {i}: scores differ");
    }
    // Artifacts round-trip: parsed and written again (compact, keys re-ordered by the JSON library),
    // they are the same model and give byte-identical output.
    std::fs::create_dir_all(d.join("models-copy")).unwrap();
    for f in &files {
        let v = read_json(f);
        std::fs::write(d.join("models-copy").join(f.file_name().unwrap()), serde_json::to_string(&v).unwrap()).unwrap();
    }
    let copy = replay(d, &attacked, "m-copy", &["--models", "models-copy", "--threads", "1"]);
    assert!(copy.0 == runs[0].0 && copy.1 == runs[0].1, "a re-written artifact scores differently");

    let scores = String::from_utf8(runs[0].1.clone()).unwrap();
    let with_model = scores.lines().filter(|l| l.contains("\"model:window\":")).count();
    assert!(with_model > 0, "closed windows are scored by the models");

    // Without models the component never appears.
    let (alerts, plain) = replay(d, &attacked, "plain", &[]);
    assert!(!String::from_utf8_lossy(&plain).contains("model:"));
    assert!(!String::from_utf8_lossy(&alerts).contains("model:"));
    assert_eq!(plain.iter().filter(|&&b| b == b'\n').count(), scores.lines().count(), "one score line per event");

    // A model alert names the features that deviate most.
    for l in String::from_utf8(runs[0].0.clone()).unwrap().lines() {
        let v: Value = serde_json::from_str(l).unwrap();
        if v["detector"] == "model:window" {
            let reason = v["reason"].as_str().unwrap();
            assert!(reason.contains("most deviating:") && reason.contains("vs typical"), "{reason}");
            assert!(v["components"]["model:window"].as_f64().is_some());
        }
    }
}

#[test]
fn a_model_of_another_feature_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let normal = normal_fleet(d);
    assert_exit(&train(d, &normal, "models", &["--class", "support-bot"]), 0);
    let files = artifacts(&d.join("models"));
    assert_eq!(files.len(), 1, "--class trains that class only");
    let mut a = read_json(&files[0]);
    a["feature_version"] = Value::from(999);
    std::fs::write(&files[0], serde_json::to_string_pretty(&a).unwrap()).unwrap();
    let out = run_in(d, &["replay", "--models", "models", "--alerts", "/dev/null", s(&normal)]);
    assert_exit(&out, 2);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("feature version 999") && err.contains("retrain"), "{err}");
    assert!(err.contains("window-support-bot.json"), "names the file: {err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");

    // A damaged artifact is refused too, never a panic.
    std::fs::write(&files[0], "{\"format\": \"vigil-model\", \"artifact_version\": 1, \"feature_version\": 1}")
        .unwrap();
    let out = run_in(d, &["replay", "--models", "models", "--alerts", "/dev/null", s(&normal)]);
    assert_exit(&out, 2);
    assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
}

#[test]
fn bad_train_options_and_model_directories_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let small = simulate(d, "small.jsonl", &["--agents", "5", "--events", "500", "--attacks", "none"], false);
    for (args, says) in [
        (vec!["train", "--out", "m", "--holdout-fraction", "1.5", s(&small)], "--holdout-fraction"),
        (vec!["train", "--out", "m", "--class", "no-such-class", s(&small)], "no-such-class"),
        (vec!["train", "--out", "m", s(&small)], "no model was trained"),
        (vec!["train", "--out", "m", "missing.jsonl"], "missing.jsonl"),
    ] {
        let out = run_in(d, &args);
        assert_exit(&out, 2);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    std::fs::create_dir_all(d.join("empty")).unwrap();
    for (dir_arg, says) in [("empty", "holds no model artifacts"), ("nowhere", "nowhere")] {
        let out = run_in(d, &["replay", "--models", dir_arg, "--alerts", "/dev/null", s(&small)]);
        assert_exit(&out, 2);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{dir_arg}: {err}");
    }
}

/// `vigil run` with `[models] dir`: the same alerts as `replay --models` over the same events; a
/// broken artifact written while it runs is refused (log line and metric) and the models in use stay.
#[test]
fn the_live_detector_scores_with_models_and_refuses_a_broken_reload() {
    use common::live::{wait_for, Detector};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_exit(&train(d, &normal_fleet(d), "models", &[]), 0);
    let attacked =
        simulate(d, "fleet.jsonl", &["--agents", "40", "--duration", "2h", "--seed", "6", "--attacks", "all"], false);
    let (reference, _) = replay(d, &attacked, "ref", &["--models", "models"]);
    let ids = |text: &str| -> Vec<String> {
        text.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()["id"].as_str().unwrap().to_string()).collect()
    };
    let reference = ids(&String::from_utf8(reference).unwrap());

    std::fs::write(d.join("vigil.toml"), "[models]\ndir = \"models\"\n").unwrap();
    let live = Detector::start(d, &["--config", "vigil.toml"]);
    for chunk in lines(&attacked).chunks(500) {
        let (status, text) = live.post("/v1/events", (chunk.join("\n") + "\n").as_bytes(), &[]);
        assert_eq!(status, 200, "{text}");
    }
    assert_eq!(ids(&live.stdout_lines().join("\n")), reference, "live and replay agree with models on");

    let first = artifacts(&d.join("models"))[0].clone();
    let mut broken = read_json(&first);
    broken["feature_version"] = serde_json::json!(999);
    std::fs::write(&first, serde_json::to_string(&broken).unwrap()).unwrap();
    wait_for(30, "a refused reload", || {
        (live.metric("vigil_reloads_total{kind=\"models\",outcome=\"error\"}") == Some(1.0)).then_some(())
    });
    assert!(live.log_text().contains("Reload refused"), "{}", live.log_text());
    assert_eq!(live.get("/readyz").0, 200, "the running models stay");
}
