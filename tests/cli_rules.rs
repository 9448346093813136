//! `vigil rules check|test`, and rule packs in `vigil replay` (`--rules`, `[rules] path`,
//! `--compare-rules`), through the real binary.

mod common;

use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A one-rule pack: any `net` event to `evil.example` is a high-severity alert.
const EVIL_RULE: &str = r#"
- rule: egress-to-evil
  title: "{agent_id} connected to {dest.host}"
  description: |
    Threat: egress to the test's known-bad host.
  severity: high
  tags: [exfiltration]
  action: notify
  when: kind == "net" && dest.host == "evil.example"
"#;

/// Events of one agent: ordinary tool calls, and two connections to `evil.example` in separate sessions.
fn events(dir: &Path) -> PathBuf {
    let mut text = String::new();
    for i in 0..200 {
        let ts = 1_780_000_000_000i64 + i * 1000;
        let line = match i {
            50 => format!(r#"{{"ts":{ts},"agent_id":"a-1","session_id":"s1","kind":"net","dest":"evil.example:443"}}"#),
            150 => {
                format!(r#"{{"ts":{ts},"agent_id":"a-1","session_id":"s2","kind":"net","dest":"evil.example:443"}}"#)
            }
            _ => format!(r#"{{"ts":{ts},"agent_id":"a-1","session_id":"s1","kind":"tool_call","tool":"search"}}"#),
        };
        text.push_str(&line);
        text.push('\n');
    }
    let path = dir.join("events.jsonl");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn check_accepts_the_default_pack_and_an_empty_file() {
    let out = run_in(&repo(), &["rules", "check", "rules/default"]);
    assert_exit(&out, 0);
    assert!(stderr(&out).contains("OK"), "{}", stderr(&out));

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("empty.yaml"), "# nothing here yet\n").unwrap();
    assert_exit(&run_in(dir.path(), &["rules", "check", "empty.yaml"]), 0);
}

#[test]
fn check_reports_every_error_with_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("pack")).unwrap();
    std::fs::write(
        dir.path().join("pack/a.yaml"),
        "- rule: r1\n  description: d\n  severity: high\n  when: kind == \"net\" && dest.hots == \"x\"\n",
    )
    .unwrap();
    // A disabled rule is checked too.
    std::fs::write(
        dir.path().join("pack/b.yaml"),
        "- rule: r2\n  enabled: false\n  description: d\n  severity: severe\n  when: kind == \"net\"\n",
    )
    .unwrap();
    let out = run_in(dir.path(), &["rules", "check", "pack"]);
    assert_exit(&out, 2);
    let err = stderr(&out);
    let a = err.lines().find(|l| l.contains("a.yaml:4:")).unwrap_or_else(|| panic!("no a.yaml:4 error in:\n{err}"));
    assert!(a.contains("dest.hots"), "{a}");
    assert!(err.lines().any(|l| l.contains("b.yaml:4:") && l.contains("severe")), "{err}");
}

#[test]
fn test_runs_the_default_packs_cases() {
    let out = run_in(&repo(), &["rules", "test", "rules/default"]);
    assert_exit(&out, 0);
    let err = stderr(&out);
    let summary = err.lines().last().unwrap_or_default();
    let passed: usize = summary
        .split(": ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no summary line in:\n{err}"));
    assert!(passed >= 40, "only {passed} cases passed:\n{err}");
    assert!(summary.ends_with("0 failed"), "{summary}");
}

#[test]
fn test_fails_with_exit_1_when_a_case_fails() {
    let dir = tempfile::tempdir().unwrap();
    let pack = dir.path().join("pack");
    std::fs::create_dir_all(pack.join("tests")).unwrap();
    std::fs::write(pack.join("evil.yaml"), EVIL_RULE).unwrap();
    let case = |name: &str, expect: &str, host: &str| {
        format!(
            "- case: {name}\n  rule: egress-to-evil\n  expect: {expect}\n  events:\n    - {{ts: 1000, agent_id: a1, kind: net, dest: \"{host}:443\"}}\n"
        )
    };
    let good = case("fires on evil", "fire", "evil.example") + &case("quiet on good", "no_fire", "good.example");
    std::fs::write(pack.join("tests/evil.yaml"), &good).unwrap();
    let out = run_in(dir.path(), &["rules", "test", "pack"]);
    assert_exit(&out, 0);
    assert!(stderr(&out).contains("2 case(s) passed, 0 failed"), "{}", stderr(&out));

    // A case expecting the rule to fire on a host it does not match fails, naming file and line.
    std::fs::write(pack.join("tests/evil.yaml"), good + &case("wrong", "fire", "good.example")).unwrap();
    let out = run_in(dir.path(), &["rules", "test", "pack"]);
    assert_exit(&out, 1);
    let err = stderr(&out);
    assert!(
        err.lines().any(|l| l.starts_with("FAIL") && l.contains("evil.yaml:11") && l.contains("did not fire")),
        "{err}"
    );
}

#[test]
fn replay_refuses_a_missing_or_broken_pack() {
    let dir = tempfile::tempdir().unwrap();
    let ev = events(dir.path());
    let out = run_in(dir.path(), &["replay", s(&ev), "--rules", "no-such-pack"]);
    assert_exit(&out, 2);
    assert!(stderr(&out).contains("no-such-pack"), "{}", stderr(&out));

    std::fs::write(dir.path().join("bad.yaml"), "- rule: x\n  severity: low\n").unwrap();
    let out = run_in(dir.path(), &["replay", s(&ev), "--rules", "bad.yaml"]);
    assert_exit(&out, 2);
    assert!(stderr(&out).contains("bad.yaml:1:"), "{}", stderr(&out));
}

#[test]
fn replay_uses_the_pack_from_the_flag_or_the_config() {
    let dir = tempfile::tempdir().unwrap();
    let ev = events(dir.path());
    std::fs::write(dir.path().join("evil.yaml"), EVIL_RULE).unwrap();
    let rule_alerts = |alerts: &Path| -> Vec<Value> {
        json_lines(alerts).into_iter().filter(|a| a["detector"] == "rule:egress-to-evil").collect()
    };

    let out = run_in(dir.path(), &["replay", s(&ev), "--rules", "evil.yaml", "--alerts", "flag.jsonl"]);
    assert_exit(&out, 0);
    let hits = rule_alerts(&dir.path().join("flag.jsonl"));
    // One alert per session: the two connections are in different sessions, so neither groups.
    assert_eq!(hits.len(), 2, "{hits:?}");
    assert_eq!(hits[0]["severity"], "high");
    assert_eq!(hits[0]["title"], "a-1 connected to evil.example");
    assert_eq!(hits[0]["tags"], serde_json::json!(["exfiltration"]));
    assert!(hits[0]["reason"].as_str().unwrap().starts_with("rule egress-to-evil"), "{}", hits[0]["reason"]);

    std::fs::write(dir.path().join("vigil.toml"), "[rules]\npath = \"evil.yaml\"\n").unwrap();
    let out = run_in(dir.path(), &["replay", s(&ev), "--config", "vigil.toml", "--alerts", "config.jsonl"]);
    assert_exit(&out, 0);
    assert_eq!(lines(&dir.path().join("flag.jsonl")), lines(&dir.path().join("config.jsonl")));

    // The built-in pack has no such rule.
    let out = run_in(dir.path(), &["replay", s(&ev), "--alerts", "default.jsonl"]);
    assert_exit(&out, 0);
    assert!(rule_alerts(&dir.path().join("default.jsonl")).is_empty());
}

#[test]
fn compare_rules_reports_the_alerts_a_new_rule_adds() {
    let dir = tempfile::tempdir().unwrap();
    let ev = events(dir.path());
    std::fs::write(dir.path().join("old.yaml"), "# the old pack had no rules\n").unwrap();
    std::fs::write(dir.path().join("new.yaml"), EVIL_RULE).unwrap();
    let args = [
        "replay",
        s(&ev),
        "--rules",
        "new.yaml",
        "--compare-rules",
        "old.yaml",
        "--alerts",
        "diff.jsonl",
        "--report",
        "report.json",
    ];
    let out = run_in(dir.path(), &args);
    assert_exit(&out, 0);
    let diff = json_lines(&dir.path().join("diff.jsonl"));
    let added: Vec<&Value> = diff.iter().filter(|d| d["diff"] == "added").collect();
    assert_eq!(added.len(), 2, "{diff:?}");
    assert!(added.iter().all(|d| d["detector"] == "rule:egress-to-evil"), "{added:?}");
    // Every diff line is an alert line with the marker first.
    assert!(diff.iter().all(|d| d["id"].as_str().is_some_and(|id| id.starts_with("va-"))));
    let report = read_json(&dir.path().join("report.json"));
    let by = &report["compare_rules"]["by_detector"]["rule:egress-to-evil"];
    assert_eq!(by["added"], 2, "{report}");
    assert_eq!(report["compare_rules"]["added"].as_u64(), Some(added.len() as u64));
    let removed = diff.iter().filter(|d| d["diff"] == "removed").count() as u64;
    assert_eq!(report["compare_rules"]["removed"].as_u64(), Some(removed));

    // Swapping the packs swaps added and removed.
    let swapped = args.map(|a| match a {
        "new.yaml" => "old.yaml",
        "old.yaml" => "new.yaml",
        "diff.jsonl" => "back.jsonl",
        "report.json" => "back.json",
        other => other,
    });
    assert_exit(&run_in(dir.path(), &swapped), 0);
    let back = json_lines(&dir.path().join("back.jsonl"));
    let rule_removed = back.iter().filter(|d| d["diff"] == "removed" && d["detector"] == "rule:egress-to-evil").count();
    assert_eq!(rule_removed, 2, "{back:?}");
}
