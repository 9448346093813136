//! `vigil run` fed over HTTP, through the real binary: the delivery contract, operations endpoints,
//! state that survives a restart, hot reload of the rule pack.

mod common;

use common::live::{wait_for, Detector};
use common::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

/// A small attacked fleet and the alert ids `vigil replay` finds in it (the reference: the live
/// detector runs the same engine over the same order of events).
fn fleet(dir: &Path) -> (Vec<String>, BTreeSet<String>) {
    let ev = simulate(
        dir,
        "fleet.jsonl",
        &["--agents", "30", "--duration", "2h", "--seed", "11", "--attacks", "all"],
        false,
    );
    let out = run_in(dir, &["replay", s(&ev), "--alerts", "reference.jsonl"]);
    assert_exit(&out, 0);
    let ids = json_lines(&dir.join("reference.jsonl")).iter().map(|a| a["id"].as_str().unwrap().to_string()).collect();
    (lines(&ev), ids)
}

/// Posts `events` in batches of `batch`; every answer must be 200 with the counts.
fn post_all(d: &Detector, events: &[String], batch: usize) -> u64 {
    let mut accepted = 0;
    for chunk in events.chunks(batch) {
        let body = chunk.join("\n") + "\n";
        let (status, text) = d.post("/v1/events", body.as_bytes(), &[]);
        assert_eq!(status, 200, "{text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        accepted += v["accepted"].as_u64().unwrap();
    }
    accepted
}

fn alert_ids(lines: &[String]) -> BTreeSet<String> {
    lines
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("not an alert line ({e}): {l}")))
        .map(|a| a["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn the_embedded_default_scores_posted_events_like_replay() {
    let dir = tempfile::tempdir().unwrap();
    let (events, reference) = fleet(dir.path());
    assert!(reference.len() >= 3, "the fleet should hold attacks: {reference:?}");
    let mut d = Detector::start(dir.path(), &[]);
    assert_eq!(d.get("/healthz").0, 200);
    assert_eq!(d.get("/readyz").0, 200);

    let accepted = post_all(&d, &events, 500);
    assert_eq!(accepted, events.len() as u64);
    // A malformed line is dead-lettered, not a failed request.
    let (status, text) = d.post("/v1/events", b"{\"ts\": 1, \"kind\": \"tool_call\"}\nnot json\n", &[]);
    assert_eq!(status, 200, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!((v["accepted"].as_u64(), v["rejected"].as_u64()), (Some(0), Some(2)), "{v}");
    let rejects = json_lines(&dir.path().join("vigil-rejected.jsonl"));
    assert_eq!(rejects.len(), 2);
    assert_eq!(rejects[0]["reason"], "missing_field");
    assert_eq!(rejects[1]["reason"], "invalid_json");
    assert_eq!(rejects[1]["source"], "http");

    // The 2xx came after the alerts were flushed: they are on stdout (allow the pipe a moment).
    let live = wait_for(10, "alerts on stdout", || {
        let ids = alert_ids(&d.stdout_lines());
        (ids.len() >= reference.len()).then_some(ids)
    });
    assert_eq!(live, reference);
    assert_eq!(d.metric("vigil_events_processed_total"), Some(events.len() as f64));
    assert_eq!(d.metric("vigil_events_rejected_total{reason=\"invalid_json\"}"), Some(1.0));

    assert_eq!(d.terminate(Duration::from_secs(10)), Some(0), "SIGTERM must end it within 10 s:\n{}", d.log_text());
}

#[test]
fn bearer_token_and_body_limit() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("vigil.toml"), "[http]\nbearer_token = \"s3cret\"\nmax_body_bytes = 2000\n")
        .unwrap();
    let d = Detector::start(dir.path(), &["--config", "vigil.toml"]);
    let ev = b"{\"ts\":1780000000000,\"agent_id\":\"a\",\"kind\":\"tool_call\",\"tool\":\"t\"}\n";
    assert_eq!(d.post("/v1/events", ev, &[]).0, 401);
    assert_eq!(d.post("/v1/events", ev, &[("Authorization", "Bearer wrong")]).0, 401);
    assert_eq!(d.get("/metrics").0, 401);
    assert_eq!(d.post("/v1/events", ev, &[("Authorization", "Bearer s3cret")]).0, 200);
    let big = ev.repeat(100);
    assert_eq!(d.post("/v1/events", &big, &[("Authorization", "Bearer s3cret")]).0, 413);
    // Health stays open for probes.
    assert_eq!(d.get("/healthz").0, 200);
}

#[test]
fn state_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (events, reference) = fleet(dir.path());
    std::fs::write(dir.path().join("vigil.toml"), "[state]\ndir = \"state\"\n").unwrap();
    let half = events.len() / 2;

    let mut first = Detector::start(dir.path(), &["--config", "vigil.toml"]);
    post_all(&first, &events[..half], 400);
    assert_eq!(first.terminate(Duration::from_secs(10)), Some(0), "{}", first.log_text());
    let mut seen = alert_ids(&first.stdout_lines());
    assert!(first.log_text().contains("Final checkpoint written"), "{}", first.log_text());

    let mut second = Detector::start(dir.path(), &["--config", "vigil.toml"]);
    assert!(second.log_text().contains("Engine state restored"), "{}", second.log_text());
    post_all(&second, &events[half..], 400);
    assert_eq!(second.terminate(Duration::from_secs(10)), Some(0));
    let after = alert_ids(&second.stdout_lines());
    assert!(seen.is_disjoint(&after), "an alert repeated after the restart");
    seen.extend(after);
    // Without the restored baselines the second half would be judged cold: missing or extra alerts.
    assert_eq!(seen, reference);
}

#[test]
fn the_rule_pack_is_reloaded_when_it_changes() {
    let dir = tempfile::tempdir().unwrap();
    let rule = |host: &str| {
        format!(
            "- rule: egress-to-{host}\n  title: \"{{agent_id}} reached {{dest.host}}\"\n  description: test\n  severity: high\n  when: kind == \"net\" && dest.host == \"{host}.example\"\n"
        )
    };
    std::fs::write(dir.path().join("pack.yaml"), rule("first")).unwrap();
    std::fs::write(dir.path().join("vigil.toml"), "[rules]\npath = \"pack.yaml\"\n").unwrap();
    let d = Detector::start(dir.path(), &["--config", "vigil.toml"]);
    let net = |session: &str, host: &str| {
        format!(
            "{{\"ts\":1780000000000,\"agent_id\":\"a-{session}\",\"session_id\":\"{session}\",\"kind\":\"net\",\"dest\":\"{host}.example:443\"}}\n"
        )
    };
    let fired = |d: &Detector, rule: &str| {
        d.stdout_lines().iter().filter(|l| l.contains(&format!("\"detector\":\"rule:{rule}\""))).count()
    };
    assert_eq!(d.post("/v1/events", net("s1", "first").as_bytes(), &[]).0, 200);
    assert_eq!(d.post("/v1/events", net("s2", "second").as_bytes(), &[]).0, 200);
    wait_for(10, "the first rule's alert", || (fired(&d, "egress-to-first") == 1).then_some(()));
    assert_eq!(fired(&d, "egress-to-second"), 0);

    std::fs::write(dir.path().join("pack.yaml"), rule("second")).unwrap();
    wait_for(30, "a reload", || {
        (d.metric("vigil_reloads_total{kind=\"rules\",outcome=\"ok\"}") == Some(1.0)).then_some(())
    });
    assert_eq!(d.post("/v1/events", net("s3", "second").as_bytes(), &[]).0, 200);
    wait_for(10, "the new rule's alert", || (fired(&d, "egress-to-second") == 1).then_some(()));

    // A broken pack is refused; the running one stays.
    std::fs::write(dir.path().join("pack.yaml"), "- rule: broken\n  severity: extreme\n").unwrap();
    wait_for(30, "a refused reload", || {
        (d.metric("vigil_reloads_total{kind=\"rules\",outcome=\"error\"}") == Some(1.0)).then_some(())
    });
    assert_eq!(d.post("/v1/events", net("s4", "second").as_bytes(), &[]).0, 200);
    wait_for(10, "the kept rule's alert", || (fired(&d, "egress-to-second") == 2).then_some(()));
    assert!(d.log_text().contains("Reload refused"), "{}", d.log_text());
}
