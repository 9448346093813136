//! Containment webhooks end to end: the real binary, a real HTTP receiver on loopback.
//! Outage and SIGKILL (nothing lost, order per agent, duplicates only with the same `webhook-id`),
//! 4xx not retried but dead-lettered, shadow mode, replay sending nothing unless told, signatures,
//! the per-agent kill cooldown and the fleet-wide blast-radius cap, and `vigil webhook verify`.

mod common;

use common::live::{wait_for, Detector};
use common::receiver::{Behaviour, Receiver};
use common::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};
use vigil_webhook::{verify, Secret};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const OTHER_SECRET: &str = "whsec_dGhpcyBpcyBub3QgdGhlIHNlY3JldCBrZXkh";

fn now_secs() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

fn fleet(dir: &Path, seed: &str) -> Vec<String> {
    lines(&simulate(
        dir,
        "fleet.jsonl",
        &["--agents", "30", "--duration", "2h", "--seed", seed, "--attacks", "all"],
        false,
    ))
}

fn post_all(d: &Detector, events: &[String], batch: usize) {
    for chunk in events.chunks(batch) {
        let (status, text) = d.post("/v1/events", (chunk.join("\n") + "\n").as_bytes(), &[]);
        assert_eq!(status, 200, "{text}");
    }
}

fn alerts_of(stdout: &[String]) -> Vec<Value> {
    stdout.iter().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not an alert ({e}): {l}"))).collect()
}

fn webhook_table(name: &str, url: &str, extra: &str) -> String {
    format!(
        "[[webhook]]\nname = \"{name}\"\nurl = \"{url}\"\nsecret = \"{SECRET}\"\nretry_horizon_secs = 600\n{extra}\n"
    )
}

/// Checks every delivered request: signature valid with the secret and invalid with another, the
/// body an alert payload whose id is the `webhook-id`. Returns (webhook-id, agent_id) in arrival order.
fn check_requests(reqs: &[common::receiver::Request]) -> Vec<(String, String)> {
    let secret = Secret::parse(SECRET).unwrap();
    let other = Secret::parse(OTHER_SECRET).unwrap();
    reqs.iter()
        .map(|r| {
            let (id, ts, sig) = (
                r.header("webhook-id").expect("webhook-id"),
                r.header("webhook-timestamp").expect("webhook-timestamp"),
                r.header("webhook-signature").expect("webhook-signature"),
            );
            verify(std::slice::from_ref(&secret), id, ts, sig, &r.body, now_secs()).expect("signature verifies");
            assert!(verify(std::slice::from_ref(&other), id, ts, sig, &r.body, now_secs()).is_err());
            let body: Value = serde_json::from_slice(&r.body).unwrap();
            assert_eq!(body["type"], "vigil.alert");
            assert_eq!(body["alert"]["id"], id);
            assert_eq!(body["agent_id"], body["alert"]["agent_id"]);
            assert_eq!(body["action"], body["alert"]["action"]);
            (id.to_string(), body["agent_id"].as_str().unwrap().to_string())
        })
        .collect()
}

/// Per agent, ids in order of first appearance.
fn per_agent(pairs: impl IntoIterator<Item = (String, String)>) -> BTreeMap<String, Vec<String>> {
    let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (id, agent) in pairs {
        let v = m.entry(agent).or_default();
        if !v.contains(&id) {
            v.push(id);
        }
    }
    m
}

#[test]
fn an_outage_and_a_crash_lose_no_webhook_and_keep_each_agent_s_order() {
    let dir = tempfile::tempdir().unwrap();
    let events = fleet(dir.path(), "11");
    let rx = Receiver::start(Behaviour::Down);
    let config = format!(
        "[state]\ndir = \"state\"\ncheckpoint_interval_secs = 1\n{}",
        webhook_table("kill-switch", &rx.url(), "")
    );
    std::fs::write(dir.path().join("vigil.toml"), config).unwrap();

    // Receiver refusing connections: the first half of the fleet, then SIGKILL.
    let outage = Instant::now();
    let half = events.len() / 2;
    let mut d = Detector::start(dir.path(), &["--config", "vigil.toml"]);
    post_all(&d, &events[..half], 500);
    let mut emitted = alerts_of(&d.stdout_lines());
    assert!(!emitted.is_empty(), "the first half should raise alerts");
    std::thread::sleep(Duration::from_secs(5));
    assert!(rx.delivered().is_empty());
    d.kill9();

    // Restarted during the outage; the rest of the fleet; the receiver answers 503, then recovers.
    let d = Detector::start(dir.path(), &["--config", "vigil.toml"]);
    post_all(&d, &events[half..], 500);
    std::thread::sleep(Duration::from_secs(30u64.saturating_sub(outage.elapsed().as_secs())));
    rx.set(Behaviour::Status(503));
    std::thread::sleep(Duration::from_secs(60u64.saturating_sub(outage.elapsed().as_secs())));
    assert!(rx.delivered().is_empty());
    assert!(!rx.all().is_empty(), "deliveries are retried during the outage");
    rx.set(Behaviour::Status(200));

    emitted.extend(alerts_of(&d.stdout_lines()));
    let expected: BTreeSet<String> = emitted.iter().map(|a| a["id"].as_str().unwrap().to_string()).collect();
    wait_for(90, "every alert delivered after the outage", || {
        let got: BTreeSet<String> =
            rx.delivered().iter().filter_map(|r| r.header("webhook-id").map(str::to_string)).collect();
        expected.is_subset(&got).then_some(())
    });
    let delivered = check_requests(&rx.delivered());
    let got: BTreeSet<String> = delivered.iter().map(|(id, _)| id.clone()).collect();
    assert_eq!(got, expected, "every delivery is an emitted alert, every emitted alert is delivered");
    let order_emitted = per_agent(
        emitted.iter().map(|a| (a["id"].as_str().unwrap().to_string(), a["agent_id"].as_str().unwrap().to_string())),
    );
    assert_eq!(per_agent(delivered), order_emitted, "per agent, deliveries follow emission order");
    let delivered_metric = d.metric("vigil_webhook_deliveries_total{endpoint=\"kill-switch\",outcome=\"delivered\"}");
    assert!(delivered_metric.unwrap_or(0.0) >= 1.0, "{delivered_metric:?}");
}

#[test]
fn a_4xx_is_dead_lettered_without_retry_and_shadow_mode_sends_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let events = fleet(dir.path(), "12");
    let refusing = Receiver::start(Behaviour::Status(400));
    let shadowed = Receiver::start(Behaviour::Status(200));
    let config = format!(
        "[state]\ndir = \"state\"\n{}{}",
        webhook_table("strict", &refusing.url(), ""),
        webhook_table("watch", &shadowed.url(), "mode = \"shadow\"")
    );
    std::fs::write(dir.path().join("vigil.toml"), config).unwrap();
    let d = Detector::start(dir.path(), &["--config", "vigil.toml"]);
    post_all(&d, &events, 500);
    let n = alerts_of(&d.stdout_lines()).len();
    assert!(n >= 3);
    let dead = dir.path().join("state").join("webhook-outbox").join("webhook-dead-letter.jsonl");
    let records = wait_for(30, "every alert dead-lettered", || {
        let l = std::fs::read_to_string(&dead).unwrap_or_default();
        (l.lines().count() >= n)
            .then(|| l.lines().map(|x| serde_json::from_str::<Value>(x).unwrap()).collect::<Vec<_>>())
    });
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(refusing.all().len(), n, "one attempt per alert: a 400 is not retried");
    assert_eq!(records.len(), n);
    assert!(records.iter().all(|r| r.to_string().contains("400")), "{records:?}");
    assert!(shadowed.all().is_empty(), "shadow mode sends nothing");
    wait_for(10, "the shadow count", || {
        (d.metric("vigil_webhook_deliveries_total{endpoint=\"watch\",outcome=\"shadowed\"}")? == n as f64).then_some(())
    });
}

#[test]
fn replay_sends_webhooks_only_with_enforce_webhooks() {
    let dir = tempfile::tempdir().unwrap();
    let ev = simulate(
        dir.path(),
        "fleet.jsonl",
        &["--agents", "30", "--duration", "2h", "--seed", "13", "--attacks", "all"],
        false,
    );
    let rx = Receiver::start(Behaviour::Status(200));
    let config = format!("[state]\ndir = \"state\"\n{}", webhook_table("kill-switch", &rx.url(), ""));
    std::fs::write(dir.path().join("vigil.toml"), config).unwrap();

    let out = run_in(dir.path(), &["replay", "--config", "vigil.toml", s(&ev), "--alerts", "a.jsonl"]);
    assert_exit(&out, 0);
    let n = lines(&dir.path().join("a.jsonl")).len();
    assert!(n >= 3);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("{n} alerts would have been sent")), "{stderr}");
    std::thread::sleep(Duration::from_millis(500));
    assert!(rx.all().is_empty(), "a backtest fires no kill switch");

    let out =
        run_in(dir.path(), &["replay", "--config", "vigil.toml", "--enforce-webhooks", s(&ev), "--alerts", "b.jsonl"]);
    assert_exit(&out, 0);
    let ids: BTreeSet<String> = check_requests(&rx.delivered()).into_iter().map(|(id, _)| id).collect();
    let expected: BTreeSet<String> =
        json_lines(&dir.path().join("b.jsonl")).iter().map(|a| a["id"].as_str().unwrap().to_string()).collect();
    assert_eq!(ids, expected);
}

/// `n` events of `agent` in one minute, each in its own session so each can open an alert group,
/// each matching the test rule (which asks for `kill`).
fn kill_events(agent: &str, class: &str, n: usize, start_ms: i64, step_ms: i64) -> Vec<String> {
    (0..n)
        .map(|i| {
            serde_json::json!({
                "ts": start_ms + i as i64 * step_ms, "agent_id": agent, "agent": class, "session_id": format!("{agent}-s{i}"),
                "kind": "tool_call", "tool": "disable_audit_log", "args": {"target": "all"}
            })
            .to_string()
        })
        .collect()
}

const KILL_RULE: &str = "- rule: test-kill\n  title: Audit log disabled\n  description: test rule asking for a kill\n  severity: critical\n  action: kill\n  tags: [impact]\n  when: tool == \"disable_audit_log\"\n";

#[test]
fn kills_are_limited_per_agent_by_the_cooldown_and_fleet_wide_by_the_blast_radius_cap() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("rules")).unwrap();
    std::fs::write(dir.path().join("rules/kill.yaml"), KILL_RULE).unwrap();
    std::fs::write(dir.path().join("vigil.toml"), "[actions]\nmax_kills_per_minute = 5\nmax_class_kill_share = 1.0\n")
        .unwrap();
    let t0 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

    // One agent, 10,000 matching events within a minute: one kill in the cooldown, the rest withheld.
    let one = kill_events("agent-0", "ops", 10_000, t0, 6);
    std::fs::write(dir.path().join("one.jsonl"), one.join("\n") + "\n").unwrap();
    let out = run_in(
        dir.path(),
        &["replay", "--config", "vigil.toml", "--rules", "rules", "one.jsonl", "--alerts", "one.alerts"],
    );
    assert_exit(&out, 0);
    let alerts = json_lines(&dir.path().join("one.alerts"));
    let kills = alerts.iter().filter(|a| a["action"] == "kill").count();
    assert_eq!(kills, 1, "one kill per agent per cooldown");
    let rule_alerts: Vec<&Value> = alerts.iter().filter(|a| a["detector"] == "rule:test-kill").collect();
    assert!(rule_alerts.len() > 100, "{}", rule_alerts.len());
    assert!(rule_alerts.iter().filter(|a| a["action"] != "kill").all(|a| a["suppressed_action"] == "kill"));

    // Twenty agents, each once, within a minute: five kills, then the cap and one operator alert.
    let mut fleet: Vec<String> =
        (0..20).flat_map(|i| kill_events(&format!("agent-{i}"), "ops", 1, t0 + i as i64 * 1000, 1)).collect();
    fleet.sort_by_key(|l| serde_json::from_str::<Value>(l).unwrap()["ts"].as_i64().unwrap());
    std::fs::write(dir.path().join("fleet.jsonl"), fleet.join("\n") + "\n").unwrap();
    let out = run_in(
        dir.path(),
        &["replay", "--config", "vigil.toml", "--rules", "rules", "fleet.jsonl", "--alerts", "fleet.alerts"],
    );
    assert_exit(&out, 0);
    let alerts = json_lines(&dir.path().join("fleet.alerts"));
    let kills: Vec<&Value> = alerts.iter().filter(|a| a["action"] == "kill").collect();
    assert_eq!(kills.len(), 5, "{alerts:?}");
    let operator: Vec<&Value> = alerts.iter().filter(|a| a["detector"] == "vigil").collect();
    assert_eq!(operator.len(), 1, "one operator alert per minute of withheld kills");
    assert!(operator[0]["reason"].as_str().unwrap().contains("cap 5"), "{}", operator[0]);
    let withheld = alerts.iter().filter(|a| a["suppressed_action"] == "kill").count();
    assert_eq!(withheld, 15);

    // The class-share cap: at most half of the class under kill (class sizes are current at every
    // event with a barrier per event).
    std::fs::write(
        dir.path().join("share.toml"),
        "[engine]\nclass_sync_events = 1\n[actions]\nmax_kills_per_minute = 100\nmax_class_kill_share = 0.5\n",
    )
    .unwrap();
    let out = run_in(
        dir.path(),
        &["replay", "--config", "share.toml", "--rules", "rules", "fleet.jsonl", "--alerts", "share.alerts"],
    );
    assert_exit(&out, 0);
    let alerts = json_lines(&dir.path().join("share.alerts"));
    let kills = alerts.iter().filter(|a| a["action"] == "kill").count();
    assert!((5..=10).contains(&kills), "at most half of the class under kill: {kills}");
    let reasons: Vec<&str> =
        alerts.iter().filter(|a| a["detector"] == "vigil").map(|a| a["reason"].as_str().unwrap()).collect();
    assert!(reasons.iter().any(|r| r.contains("cap 50% of a class")), "{reasons:?}");
}

#[test]
fn webhook_verify_checks_signatures_as_a_receiver_would() {
    let dir = tempfile::tempdir().unwrap();
    let body = dir.path().join("body.json");
    std::fs::write(&body, "{\"test\": 2432232314}").unwrap();
    let sig = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
    let args = |secret: &'static str, sig: &'static str, now: Option<&'static str>| {
        let mut a = vec!["webhook", "verify", "--secret", secret, "--id", "msg_p5jXN8AQM9LWM0D4loKWxJek"];
        a.extend(["--timestamp", "1614265330", "--signature", sig]);
        if let Some(n) = now {
            a.extend(["--now", n]);
        }
        a.push("body.json");
        a
    };
    // The spec's test vector, checked at its own time.
    assert_exit(&run_in(dir.path(), &args(SECRET, sig, Some("1614265330"))), 0);
    // Outside the 5-minute tolerance (the receiver's clock now), another secret, v1 alone, empty, truncated.
    assert_exit(&run_in(dir.path(), &args(SECRET, sig, None)), 1);
    assert_exit(&run_in(dir.path(), &args(OTHER_SECRET, sig, Some("1614265330"))), 1);
    assert_exit(&run_in(dir.path(), &args(SECRET, "v1,", Some("1614265330"))), 1);
    assert_exit(&run_in(dir.path(), &args(SECRET, "", Some("1614265330"))), 1);
    assert_exit(&run_in(dir.path(), &args(SECRET, "v1,g0hM9SsE+OTPJTGt/tmIKtSy", Some("1614265330"))), 1);
    // A tampered body.
    std::fs::write(&body, "{\"test\": 2432232315}").unwrap();
    assert_exit(&run_in(dir.path(), &args(SECRET, sig, Some("1614265330"))), 1);
    // A malformed secret is a usage error.
    assert_exit(&run_in(dir.path(), &args("not-a-secret", sig, Some("1614265330"))), 2);
}
