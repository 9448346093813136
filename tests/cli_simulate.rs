//! `vigil simulate` end to end (`spec/cli.md`, "`vigil simulate` options"): seeded and reproducible,
//! sorted by `ts`, every line a valid event, every agent present, exact `--events`, labels that refer
//! to the fleet, and exit 2 on bad options.

mod common;

use common::*;
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use vigil_detector::decode::{decode, Limits};

fn simulate_stdout(args: &[&str]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let mut a = vec!["simulate"];
    a.extend_from_slice(args);
    a.extend_from_slice(&["--out", "-"]);
    let out = run_in(dir.path(), &a);
    assert_exit(&out, 0);
    out.stdout
}

#[test]
fn same_seed_same_bytes_different_seed_differs() {
    let args = ["--agents", "30", "--duration", "1h", "--attacks", "all"];
    let with_seed = |seed: &str| {
        let mut a = args.to_vec();
        a.extend_from_slice(&["--seed", seed]);
        simulate_stdout(&a)
    };
    let a = with_seed("11");
    assert!(!a.is_empty());
    assert!(a == with_seed("11"), "the same seed must give the same bytes");
    assert!(a != with_seed("12"), "another seed must give another fleet");

    // Labels too.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let e1 = simulate(d, "one.jsonl", &["--agents", "30", "--duration", "1h", "--seed", "11"], true);
    let e2 = simulate(d, "two.jsonl", &["--agents", "30", "--duration", "1h", "--seed", "11"], true);
    assert!(std::fs::read(&e1).unwrap() == a, "--out FILE and --out - write the same events");
    assert_eq!(std::fs::read(labels_path(&e1)).unwrap(), std::fs::read(labels_path(&e2)).unwrap());
}

#[test]
fn every_line_is_a_valid_event_sorted_by_ts_and_every_agent_appears() {
    let bytes = simulate_stdout(&["--agents", "80", "--duration", "3h", "--seed", "4", "--attacks", "all"]);
    let mut prev = i64::MIN;
    let mut agents = BTreeSet::new();
    let mut ids: HashMap<(String, String), usize> = HashMap::new();
    let body = bytes.strip_suffix(b"\n").expect("newline-terminated");
    let mut n = 0;
    for (i, line) in body.split(|&b| b == b'\n').enumerate() {
        n += 1;
        let ev = decode(line, &Limits::default())
            .unwrap_or_else(|r| panic!("line {}: rejected ({r}): {}", i + 1, String::from_utf8_lossy(line)));
        let v: Value = serde_json::from_slice(line).unwrap();
        let ts = ts_ms(&v["ts"]);
        assert_eq!(ts, ev.ts_ms, "line {}: our reading of ts agrees with the decoder's", i + 1);
        assert!(ts >= prev, "line {}: ts goes backwards", i + 1);
        prev = ts;
        agents.insert(ev.agent_id.to_string());
        if let Some(id) = v.get("id").and_then(Value::as_str) {
            if let Some(first) = ids.insert((ev.agent_id.to_string(), id.to_string()), i + 1) {
                panic!("line {}: duplicate of line {first} (same agent and id)", i + 1);
            }
        }
    }
    assert!(n > 1000, "a 3h fleet of 80 agents has more than {n} events");
    assert_eq!(agents.len(), 80, "each of the 80 agents appears at least once");
}

#[test]
fn events_n_gives_exactly_n_lines() {
    for n in [1usize, 7, 1000, 5000] {
        let bytes = simulate_stdout(&["--agents", "20", "--events", &n.to_string(), "--seed", "9"]);
        let lines = bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()).count();
        assert_eq!(lines, n, "--events {n}");
        assert_eq!(bytes.iter().filter(|&&b| b == b'\n').count(), n, "--events {n}: newline-terminated lines");
    }
    // Enough events for every agent to show up.
    let bytes = simulate_stdout(&["--agents", "20", "--events", "2000", "--seed", "9"]);
    let agents: BTreeSet<String> = bytes
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice::<Value>(l).unwrap()["agent_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(agents.len(), 20);
}

#[test]
fn labels_parse_and_refer_to_agents_and_events_present() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let events =
        simulate(d, "fleet.jsonl", &["--agents", "100", "--duration", "4h", "--seed", "21", "--attacks", "all"], true);
    let all = json_lines(&events);
    let labels = json_lines(&labels_path(&events));
    assert!(!labels.is_empty(), "--attacks all gives attack windows");
    let known = [
        "exfiltration",
        "slow-exfiltration",
        "privilege-escalation",
        "prompt-injection",
        "runaway",
        "credential-hunting",
        "new-egress",
        "mimicry",
    ];
    let first = ts_ms(&all[0]["ts"]);
    let last = ts_ms(&all[all.len() - 1]["ts"]);
    let mut kinds = BTreeSet::new();
    for l in &labels {
        let o = l.as_object().expect("a label is an object");
        for k in o.keys() {
            assert!(
                ["agent_id", "session_id", "start", "end", "attack"].contains(&k.as_str()),
                "unknown label field {k}"
            );
        }
        let agent = l["agent_id"].as_str().expect("agent_id");
        let attack = l["attack"].as_str().expect("attack");
        assert!(known.contains(&attack), "attack {attack} is not a canonical name");
        kinds.insert(attack);
        let (start, end) = (ts_ms(&l["start"]), ts_ms(&l["end"]));
        assert!(start <= end, "{l}");
        assert!(start >= first + (last - first) / 10, "no attack in the first 10% of the run: {l}");
        // The window spans the attack's own events: its agent (and session) has events at both ends.
        let in_window: Vec<&Value> = all
            .iter()
            .filter(|e| e["agent_id"] == agent)
            .filter(|e| l.get("session_id").is_none() || e.get("session_id") == l.get("session_id"))
            .filter(|e| (start..=end).contains(&ts_ms(&e["ts"])))
            .collect();
        assert!(!in_window.is_empty(), "no event of the labelled agent in its window: {l}");
        assert!(in_window.iter().any(|e| ts_ms(&e["ts"]) == start), "window start is an event of the agent: {l}");
        assert!(in_window.iter().any(|e| ts_ms(&e["ts"]) == end), "window end is an event of the agent: {l}");
    }
    assert!(kinds.len() >= 4, "--attacks all over 4h gives several attack types, got {kinds:?}");
}

#[test]
fn attacks_none_gives_no_labels_and_a_named_list_only_those() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let none = simulate(d, "none.jsonl", &["--agents", "30", "--duration", "2h", "--attacks", "none"], true);
    assert!(lines(&labels_path(&none)).is_empty(), "--attacks none writes no attack windows");
    let some =
        simulate(d, "some.jsonl", &["--agents", "60", "--duration", "4h", "--attacks", "runaway,exfiltration"], true);
    let labels = json_lines(&labels_path(&some));
    assert!(!labels.is_empty());
    for l in labels {
        assert!(["runaway", "exfiltration"].contains(&l["attack"].as_str().unwrap()), "{l}");
    }
}

#[test]
fn class_names_are_the_same_for_every_seed() {
    let classes = |seed: &str| -> BTreeSet<String> {
        simulate_stdout(&["--agents", "60", "--events", "3000", "--seed", seed])
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .filter_map(|l| serde_json::from_slice::<Value>(l).unwrap()["agent"].as_str().map(str::to_string))
            .collect()
    };
    let a = classes("1");
    assert!(a.len() > 1, "several classes: {a:?}");
    assert_eq!(a, classes("2"));
}

#[test]
fn bad_options_exit_2_naming_the_option() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        vec!["--attacks", "teleportation"],
        vec!["--attacks", "runaway,nonsense"],
        vec!["--duration", "forever"],
        vec!["--duration", "10"],
        vec!["--duration", "0h"],
        vec!["--duration", ""],
        vec!["--start", "yesterday"],
        vec!["--agents", "many"],
    ] {
        let mut a = vec!["simulate", "--out", "out.jsonl"];
        a.extend_from_slice(&args);
        let out = run_in(dir.path(), &a);
        assert_exit(&out, 2);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(err.contains(args[0]) || err.contains(&args[0][2..]), "{args:?}: the error names the option: {err}");
        assert!(lines(&dir.path().join("out.jsonl")).is_empty(), "{args:?}: no events written");
    }
}
