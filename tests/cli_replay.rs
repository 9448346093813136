//! `vigil replay` end to end, through the real binary: bad input, unreadable input, determinism,
//! stdin and compressed inputs, merging, gates, options not built yet, the report and the alert shape
//! (`spec/cli.md`, `spec/events.md`, `spec/alerts.md`, `spec/evaluation.md`).

mod common;

use common::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write;
use std::path::Path;

/// A malformed line of the bad-input mix and what the dead-letter record must say about it.
struct Bad {
    what: &'static str,
    bytes: Vec<u8>,
    reason: &'static str,
    /// Text the `detail` must contain (the field it names), if any.
    detail: Option<&'static str>,
}

fn bad(what: &'static str, bytes: impl Into<Vec<u8>>, reason: &'static str, detail: Option<&'static str>) -> Bad {
    Bad { what, bytes: bytes.into(), reason, detail }
}

/// The `i`-th malformed line: every kind the spec rejects, in turn. `valid` is a valid event line to
/// damage. Lines that are expensive (2 MiB) come only a few times.
fn malformed(i: usize, valid: &str) -> Bad {
    const CHEAP: usize = 22;
    if i % 250 == 0 {
        // 2 MiB of an otherwise plausible event: over the 1 MiB limit.
        let mut line = format!(r#"{{"ts":0,"agent_id":"big-{i}","kind":"net","dest":"x.example:443","payload":""#);
        line.push_str(&"A".repeat(2 << 20));
        line.push_str("\"}");
        return bad("2 MiB line", line, "too_large", None);
    }
    match i % CHEAP {
        0 => bad("not JSON", format!("this is not JSON, line {i}"), "invalid_json", None),
        1 => bad("truncated JSON", &valid.as_bytes()[..valid.len() / 2], "invalid_json", None),
        2 => bad("empty line", "", "invalid_json", None),
        3 => {
            let mut b = format!(r#"{{"ts":{i},"agent_id":"caf"#).into_bytes();
            b.extend_from_slice(b"\xe9\xff-");
            b.extend_from_slice(br#"","kind":"llm_call"}"#);
            bad("invalid UTF-8", b, "invalid_utf8", None)
        }
        4 => bad("missing ts", format!(r#"{{"agent_id":"m-{i}","kind":"llm_call"}}"#), "missing_field", Some("`ts`")),
        5 => bad("missing agent_id", format!(r#"{{"ts":{i},"kind":"llm_call"}}"#), "missing_field", Some("`agent_id`")),
        6 => bad("missing kind", format!(r#"{{"ts":{i},"agent_id":"m-{i}"}}"#), "missing_field", Some("`kind`")),
        7 => bad("ts 1.5", format!(r#"{{"ts":1.5,"agent_id":"m-{i}","kind":"llm_call"}}"#), "wrong_type", Some("`ts`")),
        8 => bad(
            "agent_id 7",
            format!(r#"{{"ts":{i},"agent_id":7,"kind":"llm_call"}}"#),
            "wrong_type",
            Some("`agent_id`"),
        ),
        9 => bad(
            "tokens.input -1",
            format!(r#"{{"ts":{i},"agent_id":"m-{i}","kind":"llm_call","tokens":{{"input":-1,"output":3}}}}"#),
            "wrong_type",
            Some("tokens"),
        ),
        10 => bad(
            "unknown outcome",
            format!(r#"{{"ts":{i},"agent_id":"m-{i}","kind":"auth","op":"sudo","outcome":"maybe"}}"#),
            "invalid_value",
            Some("`outcome`"),
        ),
        11 => bad(
            "unknown role",
            format!(r#"{{"ts":{i},"agent_id":"m-{i}","kind":"message","role":"god","content":"hi"}}"#),
            "invalid_value",
            Some("`role`"),
        ),
        12 => bad(
            "bad ts text",
            format!(r#"{{"ts":"yesterday at {i}","agent_id":"m-{i}","kind":"llm_call"}}"#),
            "invalid_value",
            Some("`ts`"),
        ),
        13 => bad(
            "agent_id of 257 bytes",
            format!(r#"{{"ts":{i},"agent_id":"{}","kind":"llm_call"}}"#, "x".repeat(257)),
            "invalid_value",
            Some("`agent_id`"),
        ),
        14 => bad(
            "nesting depth 100",
            format!(
                r#"{{"ts":{i},"agent_id":"m-{i}","kind":"llm_call","extra":{}1{}}}"#,
                "[".repeat(99),
                "]".repeat(99)
            ),
            "too_deep",
            None,
        ),
        15 => bad(
            "nesting depth 100 in attrs",
            format!(
                r#"{{"ts":{i},"agent_id":"m-{i}","kind":"llm_call","attrs":{}1{}}}"#,
                r#"{"a":"#.repeat(99),
                "}".repeat(99)
            ),
            "too_deep",
            None,
        ),
        16 => bad(
            "duplicate keys",
            format!(r#"{{"ts":{i},"agent_id":"m-{i}","agent_id":"n-{i}","kind":"llm_call"}}"#),
            "duplicate_field",
            Some("`agent_id`"),
        ),
        17 => bad(
            "tool_call without tool",
            format!(r#"{{"ts":{i},"agent_id":"m-{i}","kind":"tool_call","args":{{"q":1}}}}"#),
            "missing_field",
            Some("`tool`"),
        ),
        18 => bad(
            "net without dest",
            format!(r#"{{"ts":{i},"agent_id":"m-{i}","kind":"net","bytes_out":10}}"#),
            "missing_field",
            Some("`dest`"),
        ),
        19 => bad(
            "metric without metric.value",
            format!(r#"{{"ts":{i},"agent_id":"m-{i}","kind":"metric","metric":{{"name":"cost_usd"}}}}"#),
            "missing_field",
            Some("metric.value"),
        ),
        20 => bad("whitespace only", "   \t ", "invalid_json", None),
        21 => bad("JSON that is not an object", format!("[{i},2,3]"), "wrong_type", None),
        _ => unreachable!("i % CHEAP < CHEAP"),
    }
}

/// The issue's acceptance test: 10,000 valid events with 1,000 malformed lines of every kind mixed in.
#[test]
fn bad_input_mix_is_counted_and_dead_lettered_line_by_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let sim = run_in(d, &["simulate", "--events", "10000", "--agents", "50", "--seed", "3", "--attacks", "none"]);
    assert_exit(&sim, 0);
    let valid: Vec<&[u8]> = sim.stdout.split(|&b| b == b'\n').filter(|l| !l.is_empty()).collect();
    assert_eq!(valid.len(), 10_000, "simulate --events 10000 wrote {} lines", valid.len());

    // After every 10th valid line, one malformed line; remember where each one lands.
    let mut mixed = Vec::with_capacity(sim.stdout.len() + (12 << 20));
    let mut expected: BTreeMap<u64, Bad> = BTreeMap::new();
    let mut line_no = 0u64;
    for (n, v) in valid.iter().enumerate() {
        mixed.extend_from_slice(v);
        mixed.push(b'\n');
        line_no += 1;
        if n % 10 == 9 {
            let b = malformed(n / 10, std::str::from_utf8(v).unwrap());
            mixed.extend_from_slice(&b.bytes);
            mixed.push(b'\n');
            line_no += 1;
            expected.insert(line_no, b);
        }
    }
    assert_eq!(expected.len(), 1000);
    let input = d.join("mixed.jsonl");
    std::fs::write(&input, &mixed).unwrap();

    let (report, dead, scores) = (d.join("report.json"), d.join("dead.jsonl"), d.join("scores.jsonl"));
    let out = run_in(
        d,
        &[
            "replay",
            s(&input),
            "--report",
            s(&report),
            "--dead-letter",
            s(&dead),
            "--scores",
            s(&scores),
            "--alerts",
            s(&d.join("alerts.jsonl")),
        ],
    );
    assert_exit(&out, 0);
    assert!(out.stdout.is_empty(), "alerts went to a file; stdout must stay empty");
    let r = read_json(&report);
    assert_eq!(r["events"], 10_000, "report: {r}");
    assert_eq!(r["invalid_events"], 1000, "report: {r}");
    assert_eq!(r["duplicate_events"], 0, "report: {r}");
    assert_eq!(lines(&scores).len(), 10_000, "one score line per accepted event");

    let records = lines(&dead);
    assert_eq!(records.len(), 1000, "one dead-letter line per malformed line");
    let mut seen_reasons = BTreeSet::new();
    for text in &records {
        let rec: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("dead letter not JSON ({e}): {text}"));
        for key in ["reason", "detail", "source", "position", "raw"] {
            assert!(rec.get(key).is_some(), "dead letter lacks `{key}`: {text}");
        }
        let pos = rec["position"].as_u64().unwrap_or_else(|| panic!("position is not a line number: {text}"));
        let b = expected.get(&pos).unwrap_or_else(|| panic!("line {pos} was valid yet dead-lettered: {text}"));
        let what = b.what;
        assert_eq!(rec["reason"], b.reason, "{what} (line {pos}): {text:.300}");
        seen_reasons.insert(b.reason);
        assert_eq!(rec["source"], s(&input), "{what}: source names the input");
        let detail = rec["detail"].as_str().expect("detail is a string");
        assert!(!detail.is_empty(), "{what}: empty detail");
        if let Some(needle) = b.detail {
            assert!(detail.contains(needle), "{what}: detail {detail:?} does not name {needle}");
        }
        let raw = rec["raw"].as_str().expect("raw is a string");
        match std::str::from_utf8(&b.bytes) {
            Ok(original) => {
                assert!(rec.get("raw_b64").is_none(), "{what}: raw_b64 only for invalid UTF-8");
                let cut = original.len().min(64 * 1024);
                assert_eq!(raw, &original[..cut], "{what}: raw is the line, cut at 64 KiB");
            }
            Err(_) => {
                assert_eq!(raw, String::from_utf8_lossy(&b.bytes), "{what}: raw has U+FFFD for bad bytes");
                assert_eq!(rec["raw_b64"], base64(&b.bytes), "{what}: raw_b64 holds the original bytes");
            }
        }
    }
    let positions: BTreeSet<u64> =
        records.iter().map(|t| serde_json::from_str::<Value>(t).unwrap()["position"].as_u64().unwrap()).collect();
    assert_eq!(positions.len(), 1000, "every malformed line is dead-lettered exactly once");
    assert_eq!(
        seen_reasons,
        [
            "duplicate_field",
            "invalid_json",
            "invalid_utf8",
            "invalid_value",
            "missing_field",
            "too_deep",
            "too_large",
            "wrong_type"
        ]
        .into_iter()
        .collect()
    );
}

/// The dead-letter file is created only when a line is rejected.
#[test]
fn clean_input_creates_no_dead_letter_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let events = simulate(d, "fleet.jsonl", &["--events", "500", "--agents", "5", "--attacks", "none"], false);
    let out = run_in(d, &["replay", s(&events), "--alerts", "/dev/null"]);
    assert_exit(&out, 0);
    assert!(!d.join("rejected.jsonl").exists(), "no line was rejected, yet rejected.jsonl exists");
    std::fs::write(d.join("one-bad.jsonl"), "{oops\n").unwrap();
    let out = run_in(d, &["replay", "one-bad.jsonl", "--alerts", "/dev/null"]);
    assert_exit(&out, 0);
    assert_eq!(lines(&d.join("rejected.jsonl")).len(), 1, "the default dead-letter file is rejected.jsonl");
}

fn assert_unreadable(d: &Path, path: &str) {
    let alerts = d.join("alerts.jsonl");
    let out = run_in(d, &["replay", path, "--alerts", s(&alerts)]);
    assert_exit(&out, 2);
    let err = String::from_utf8_lossy(&out.stderr);
    let err_lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(err_lines.len(), 1, "one clear line on stderr, got:\n{err}");
    assert!(err_lines[0].contains(path), "the error names the path {path}: {err}");
    assert!(!err.contains("panicked"), "a panic is not an error message: {err}");
    assert!(out.stdout.is_empty(), "no alerts on stdout");
    assert!(lines(&alerts).is_empty(), "no alerts written");
}

#[test]
fn missing_input_exits_2_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    assert_unreadable(dir.path(), &format!("{}/no-such-file.jsonl", dir.path().display()));
}

#[test]
fn directory_input_exits_2_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("a-directory")).unwrap();
    assert_unreadable(dir.path(), "a-directory");
}

#[test]
fn corrupt_compressed_input_exits_2_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let events = simulate(d, "fleet.jsonl", &["--events", "3000", "--agents", "10"], false);
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(&std::fs::read(&events).unwrap()).unwrap();
    let gz = enc.finish().unwrap();
    std::fs::write(d.join("cut.jsonl.gz"), &gz[..gz.len() / 2]).unwrap();
    let out = run_in(d, &["replay", "cut.jsonl.gz", "--alerts", "/dev/null"]);
    assert_exit(&out, 2);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cut.jsonl.gz") && !err.contains("panicked"), "{err}");
}

#[test]
fn bad_labels_exit_2_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let events = simulate(d, "fleet.jsonl", &["--events", "300", "--agents", "5"], false);
    let good = r#"{"agent_id":"a","start":"2026-01-01T00:10:00Z","end":"2026-01-01T00:11:00Z","attack":"runaway"}"#;
    std::fs::write(d.join("labels.jsonl"), format!("{good}\n{}\n", good.replace("2026-01-01T00:10:00Z", "soon")))
        .unwrap();
    let out = run_in(d, &["replay", s(&events), "--alerts", "/dev/null", "--labels", "labels.jsonl"]);
    assert_exit(&out, 2);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("labels.jsonl:2") && err.contains("start"), "names file, line and field: {err}");
}

#[test]

fn unreadable_input_error_states_its_cause_once() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_in(dir.path(), &["replay", "no-such-file.jsonl", "--alerts", "/dev/null"]);
    assert_exit(&out, 2);
    let err = String::from_utf8_lossy(&out.stderr);
    // ENOENT as this platform words it ("No such file or directory (os error 2)" on Linux).
    let cause = std::io::Error::from_raw_os_error(2).to_string();
    assert_eq!(err.matches(&cause).count(), 1, "the cause {cause:?} is stated once: {err}");
}

#[test]
fn one_unreadable_input_among_several_fails_before_any_output() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let events = simulate(d, "fleet.jsonl", &["--events", "2000", "--agents", "10"], false);
    let scores = d.join("scores.jsonl");
    let out = run_in(d, &["replay", s(&events), "missing.jsonl", "--scores", s(&scores)]);
    assert_exit(&out, 2);
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.jsonl"));
    assert!(lines(&scores).is_empty(), "nothing is processed when an input cannot be opened");
}

/// Runs a replay writing alerts, scores and report into `dir/tag.*`; returns (alerts, scores, report).
fn replay_outputs(d: &Path, inputs: &[&str], tag: &str, extra: &[&str]) -> (Vec<u8>, Vec<u8>, Value) {
    let (a, sc, r) =
        (d.join(format!("{tag}.alerts")), d.join(format!("{tag}.scores")), d.join(format!("{tag}.report")));
    let mut args = vec!["replay", "--alerts", s(&a), "--scores", s(&sc), "--report", s(&r)];
    args.extend_from_slice(extra);
    args.extend_from_slice(inputs);
    let out = run_in(d, &args);
    assert_exit(&out, 0);
    (std::fs::read(&a).unwrap(), std::fs::read(&sc).unwrap(), read_json(&r))
}

#[test]
fn replay_is_byte_identical_across_runs_and_thread_counts() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let events =
        simulate(d, "fleet.jsonl", &["--agents", "60", "--duration", "2h", "--seed", "5", "--attacks", "all"], false);
    let input = s(&events);
    let runs = [
        replay_outputs(d, &[input], "default-1", &[]),
        replay_outputs(d, &[input], "default-2", &[]),
        replay_outputs(d, &[input], "threads-1", &["--threads", "1"]),
        replay_outputs(d, &[input], "threads-2", &["--threads", "2"]),
        replay_outputs(d, &[input], "threads-7", &["--threads", "7"]),
    ];
    let (alerts, scores, report) = &runs[0];
    assert!(!alerts.is_empty(), "an attacked fleet must raise some alert, or this test proves nothing");
    for (i, (a, sc, r)) in runs.iter().enumerate().skip(1) {
        assert!(a == alerts, "run {i}: alerts differ");
        assert!(sc == scores, "run {i}: scores differ");
        assert_eq!(report_without_timing(r.clone()), report_without_timing(report.clone()), "run {i}: reports differ");
    }
    let score_lines = scores.split(|&b| b == b'\n').filter(|l| !l.is_empty()).count() as u64;
    assert_eq!(Some(score_lines), report["events"].as_u64(), "one score line per accepted event");
    let alert_text = String::from_utf8(alerts.clone()).unwrap();
    assert_eq!(Some(alert_text.lines().count() as u64), report["alerts"].as_u64());
    for l in alert_text.lines() {
        let v: Value = serde_json::from_str(l).unwrap();
        assert!(v.get("emitted_at").is_none(), "replay output has no emitted_at: {l}");
    }
}

/// Alerts with every `evidence[].source` taken out (after checking it names the input as given).
fn alerts_without_sources(text: &[u8], source: &str) -> Vec<Value> {
    let text = std::str::from_utf8(text).unwrap();
    text.lines()
        .map(|l| {
            let mut v: Value = serde_json::from_str(l).unwrap();
            for e in v["evidence"].as_array_mut().expect("evidence is an array") {
                if let Some(src) = e.as_object_mut().unwrap().remove("source") {
                    assert_eq!(src, source, "evidence source names the input");
                }
            }
            v
        })
        .collect()
}

#[test]
fn stdin_gzip_and_zstd_inputs_give_the_same_results_as_the_plain_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let events =
        simulate(d, "fleet.jsonl", &["--agents", "60", "--duration", "2h", "--seed", "5", "--attacks", "all"], false);
    let text = std::fs::read(&events).unwrap();

    let gz = d.join("fleet.jsonl.gz");
    let mut enc = flate2::write::GzEncoder::new(std::fs::File::create(&gz).unwrap(), flate2::Compression::default());
    enc.write_all(&text).unwrap();
    enc.finish().unwrap();
    let zst = d.join("fleet.jsonl.zst");
    std::fs::write(&zst, zstd::encode_all(&text[..], 3).unwrap()).unwrap();

    let (plain_alerts, plain_scores, plain_report) = replay_outputs(d, &["fleet.jsonl"], "plain", &[]);
    assert!(!plain_alerts.is_empty(), "an attacked fleet must raise some alert, or this test proves nothing");
    let plain = alerts_without_sources(&plain_alerts, "fleet.jsonl");

    let sc = d.join("stdin.scores");
    let out = run_with_stdin(d, &["replay", "--scores", s(&sc), "-"], &text);
    assert_exit(&out, 0);
    assert_eq!(alerts_without_sources(&out.stdout, "stdin"), plain, "stdin (alerts on stdout)");
    assert!(std::fs::read(&sc).unwrap() == plain_scores, "stdin: scores differ");

    for name in ["fleet.jsonl.gz", "fleet.jsonl.zst"] {
        let (a, sc, r) = replay_outputs(d, &[name], name, &[]);
        assert_eq!(alerts_without_sources(&a, name), plain, "{name}");
        assert!(sc == plain_scores, "{name}: scores differ");
        assert_eq!(report_without_timing(r), report_without_timing(plain_report.clone()), "{name}");
    }
}

/// Alerts with evidence `source` and `position` taken out (they point into different files).
fn alerts_without_positions(text: &[u8]) -> Vec<Value> {
    std::str::from_utf8(text)
        .unwrap()
        .lines()
        .map(|l| {
            let mut v: Value = serde_json::from_str(l).unwrap();
            for e in v["evidence"].as_array_mut().expect("evidence is an array") {
                e.as_object_mut().unwrap().remove("source");
                e.as_object_mut().unwrap().remove("position");
            }
            v
        })
        .collect()
}

#[test]
fn several_inputs_are_merged_by_event_time() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let args = ["--agents", "60", "--duration", "2h", "--seed", "5", "--attacks", "all"];
    let events = simulate(d, "fleet.jsonl", &args, false);
    let text = std::fs::read_to_string(&events).unwrap();
    // Split by agent: even-numbered agents (in order of first appearance) to one file, odd to another.
    let mut order: HashMap<String, usize> = HashMap::new();
    let mut parts: [Vec<(i64, &str)>; 2] = [Vec::new(), Vec::new()];
    for line in text.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        let n = order.len();
        let k = *order.entry(v["agent_id"].as_str().unwrap().to_string()).or_insert(n);
        parts[k % 2].push((ts_ms(&v["ts"]), line));
    }
    let join = |xs: &[(i64, &str)]| xs.iter().map(|(_, l)| format!("{l}\n")).collect::<String>();
    std::fs::write(d.join("even.jsonl"), join(&parts[0])).unwrap();
    std::fs::write(d.join("odd.jsonl"), join(&parts[1])).unwrap();
    // The order the spec asks for, computed here: by ts; ties by input order (then line order).
    let mut expected: Vec<(i64, usize, usize, &str)> = Vec::new();
    for (input, part) in parts.iter().enumerate() {
        for (i, (ts, line)) in part.iter().enumerate() {
            expected.push((*ts, input, i, line));
        }
    }
    expected.sort();
    let ties = expected.windows(2).filter(|w| w[0].0 == w[1].0 && w[0].1 != w[1].1).count();
    let in_order: String = expected.iter().map(|e| format!("{}\n", e.3)).collect();
    std::fs::write(d.join("expected-order.jsonl"), in_order).unwrap();

    let (alerts, scores, report) = replay_outputs(d, &["even.jsonl", "odd.jsonl"], "merged", &[]);
    let (want_alerts, want_scores, want_report) = replay_outputs(d, &["expected-order.jsonl"], "expected", &[]);
    assert!(!want_alerts.is_empty(), "an attacked fleet must raise some alert, or this test proves less");
    let score_lines: Vec<Value> =
        std::str::from_utf8(&scores).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(score_lines.len(), expected.len(), "every event of both inputs is scored once");
    for w in score_lines.windows(2) {
        assert!(
            ts_ms(&w[0]["ts"]) <= ts_ms(&w[1]["ts"]),
            "score lines out of event-time order: {} then {}",
            w[0],
            w[1]
        );
    }
    assert!(
        scores == want_scores,
        "merged scores differ from the same events in ts order, ties by input order ({ties} cross-input ties)"
    );
    assert_eq!(alerts_without_positions(&alerts), alerts_without_positions(&want_alerts), "merged alerts differ");
    assert_eq!(report_without_timing(report), report_without_timing(want_report), "merged report differs");
}

#[test]
fn merge_ties_follow_input_order() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ev = |ts: i64, agent: &str| format!("{{\"ts\":{ts},\"agent_id\":\"{agent}\",\"kind\":\"llm_call\"}}\n");
    std::fs::write(d.join("first.jsonl"), [ev(1000, "b"), ev(2000, "b"), ev(3000, "b")].concat()).unwrap();
    std::fs::write(d.join("second.jsonl"), [ev(1000, "a"), ev(1500, "a"), ev(3000, "a")].concat()).unwrap();
    let (_, scores, _) = replay_outputs(d, &["first.jsonl", "second.jsonl"], "ties", &[]);
    let got: Vec<(i64, String)> = std::str::from_utf8(&scores)
        .unwrap()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (ts_ms(&v["ts"]), v["agent_id"].as_str().unwrap().to_string())
        })
        .collect();
    // A bad line in the second input is dead-lettered under that input's name and line number.
    std::fs::write(d.join("third.jsonl"), [ev(500, "c"), "{oops\n".to_string(), ev(2500, "c")].concat()).unwrap();
    let dead = d.join("dead.jsonl");
    let out = run_in(d, &["replay", "first.jsonl", "third.jsonl", "--alerts", "/dev/null", "--dead-letter", s(&dead)]);
    assert_exit(&out, 0);
    let recs = json_lines(&dead);
    assert_eq!(recs.len(), 1, "{recs:?}");
    assert_eq!(recs[0]["source"], "third.jsonl");
    assert_eq!(recs[0]["position"], 2);
    assert_eq!(recs[0]["raw"], "{oops");

    let want: Vec<(i64, String)> = [(1000, "b"), (1000, "a"), (1500, "a"), (2000, "b"), (3000, "b"), (3000, "a")]
        .map(|(t, a)| (t, a.to_string()))
        .to_vec();
    assert_eq!(got, want);
}

#[test]
fn fail_under_gates_exit_1_below_and_refuse_nonsense_with_2() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let events =
        simulate(d, "fleet.jsonl", &["--agents", "60", "--duration", "2h", "--seed", "5", "--attacks", "all"], true);
    let labels = labels_path(&events);
    let base = ["replay", s(&events), "--alerts", "/dev/null", "--labels", s(&labels)];
    let with = |extra: &[&str]| {
        let mut a: Vec<&str> = base.to_vec();
        a.extend_from_slice(extra);
        run_in(d, &a)
    };
    assert_exit(&with(&["--fail-under", "recall=0"]), 0);
    let out = with(&["--fail-under", "recall=1.01"]);
    assert_exit(&out, 1);
    assert!(String::from_utf8_lossy(&out.stderr).contains("recall"), "the failed gate is named");
    // Several gates: one failing is enough.
    assert_exit(&with(&["--fail-under", "recall=0", "--fail-under", "events=1000000000"]), 1);
    assert_exit(&with(&["--fail-under", "recall=0", "--fail-under", "events=1"]), 0);

    let out = with(&["--fail-under", "recal=0.5"]);
    assert_exit(&out, 2);
    assert!(String::from_utf8_lossy(&out.stderr).contains("recal"), "the unknown metric is named");
    assert_exit(&with(&["--fail-under", "recall"]), 2);
    assert_exit(&with(&["--fail-under", "recall=high"]), 2);

    let out = run_in(d, &["replay", s(&events), "--alerts", "/dev/null", "--fail-under", "recall=0"]);
    assert_exit(&out, 2);
    assert!(String::from_utf8_lossy(&out.stderr).contains("--labels"), "says that recall needs --labels");
}

#[test]
fn kafka_topic_misuse_exits_2_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let events = simulate(d, "fleet.jsonl", &["--events", "100", "--agents", "5"], false);
    for (args, says) in [
        (vec!["replay", "--from", "2026-01-01T00:00:00Z", s(&events)], "--kafka-topic"),
        (vec!["replay", "--kafka-topic", "t"], "[kafka]"),
        (vec!["replay", "--kafka-topic", "t", s(&events)], "one or the other"),
    ] {
        let out = run_in(d, &args);
        assert_exit(&out, 2);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: one line: {err}");
    }
}

#[test]
fn replay_without_input_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_in(dir.path(), &["replay", "--alerts", "/dev/null"]);
    assert_exit(&out, 2);
    assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
}

#[test]
fn bad_config_exits_2_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let events = simulate(d, "fleet.jsonl", &["--events", "100", "--agents", "5"], false);
    for (text, key) in [
        ("[engine]\nshardz = 8\n", "shardz"),
        ("[engine]\nshards = 0\n", "engine.shards"),
        ("[detectors]\nalert_score = \"high\"\n", "alert_score"),
    ] {
        std::fs::write(d.join("bad.toml"), text).unwrap();
        let out = run_in(d, &["replay", s(&events), "--alerts", "/dev/null", "--config", "bad.toml"]);
        assert_exit(&out, 2);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("bad.toml") && err.contains(key), "names file and key {key}: {err}");
    }
    let out = run_in(d, &["replay", s(&events), "--alerts", "/dev/null", "--config", "missing.toml"]);
    assert_exit(&out, 2);
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.toml"));
}

fn num(v: &Value) -> Option<f64> {
    v.as_f64()
}

#[track_caller]
fn assert_close(got: &Value, want: Option<f64>, what: &str) {
    match (num(got), want) {
        (Some(g), Some(w)) => assert!((g - w).abs() <= 1e-6 * w.abs().max(1.0), "{what}: report {g}, expected {w}"),
        (None, None) => assert!(got.is_null(), "{what}: {got} should be null"),
        _ => panic!("{what}: report {got}, expected {want:?}"),
    }
}

/// Every figure of evaluation.md, recomputed here from the alerts, labels and events.
#[test]
fn report_has_every_field_and_the_evaluation_adds_up() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let events =
        simulate(d, "fleet.jsonl", &["--agents", "200", "--duration", "6h", "--seed", "7", "--attacks", "all"], true);
    let labels = json_lines(&labels_path(&events));
    let (alerts_text, _, r) = replay_outputs(d, &[s(&events)], "eval", &["--labels", s(&labels_path(&events))]);
    for key in [
        "events",
        "invalid_events",
        "duplicate_events",
        "late_events",
        "agents",
        "alerts",
        "elapsed_s",
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
        "by_attack",
    ] {
        assert!(r.get(key).is_some(), "report lacks `{key}`: {r}");
    }
    let all = json_lines(&events);
    let alerts: Vec<Value> =
        std::str::from_utf8(&alerts_text).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(!alerts.is_empty() && !labels.is_empty());
    assert_eq!(r["events"].as_u64(), Some(all.len() as u64));
    assert_eq!(r["invalid_events"], 0);
    assert_eq!(r["alerts"].as_u64(), Some(alerts.len() as u64));
    let agents: BTreeSet<&str> = all.iter().map(|e| e["agent_id"].as_str().unwrap()).collect();
    assert_eq!(r["agents"].as_u64(), Some(agents.len() as u64));
    assert_eq!(agents.len(), 200);

    // Matching per evaluation.md, grace 60 s.
    let grace = 60_000;
    let mut first_match: Vec<Option<i64>> = vec![None; labels.len()];
    let mut true_alerts = 0u64;
    for a in &alerts {
        let t = rfc3339_ms(a["ts"].as_str().unwrap()).unwrap();
        let mut matched = false;
        for (i, l) in labels.iter().enumerate() {
            let session_ok = l.get("session_id").is_none() || l["session_id"] == a["session_id"];
            if l["agent_id"] == a["agent_id"] && session_ok && t >= ts_ms(&l["start"]) && t <= ts_ms(&l["end"]) + grace
            {
                matched = true;
                first_match[i] = Some(first_match[i].map_or(t, |m: i64| m.min(t)));
            }
        }
        true_alerts += matched as u64;
    }
    let n = labels.len() as f64;
    let mut delays: Vec<f64> = Vec::new();
    let mut by: BTreeMap<String, (u64, u64, Vec<f64>)> = BTreeMap::new();
    for (l, m) in labels.iter().zip(&first_match) {
        let e = by.entry(l["attack"].as_str().unwrap().to_string()).or_default();
        e.0 += 1;
        if let Some(t) = m {
            let delay = (t - ts_ms(&l["start"])) as f64 / 1000.0;
            delays.push(delay);
            e.1 += 1;
            e.2.push(delay);
        }
    }
    let detected = delays.len() as f64;
    assert!(detected > 0.0, "some attack must be detected, or the delay figures go untested");
    let false_alerts = alerts.len() as u64 - true_alerts;
    assert_eq!(r["attacks"].as_u64(), Some(labels.len() as u64));
    assert_eq!(r["detected"].as_u64(), Some(delays.len() as u64));
    assert_eq!(r["false_alerts"].as_u64(), Some(false_alerts));
    let recall = detected / n;
    let precision = true_alerts as f64 / alerts.len() as f64;
    assert_close(&r["recall"], Some(recall), "recall");
    assert_close(&r["precision"], Some(precision), "precision");
    assert_close(
        &r["f1"],
        Some(if recall + precision > 0.0 { 2.0 * recall * precision / (recall + precision) } else { 0.0 }),
        "f1",
    );
    assert_close(&r["delay_s_mean"], Some(delays.iter().sum::<f64>() / detected), "delay_s_mean");
    let mut sorted = delays.clone();
    sorted.sort_by(f64::total_cmp);
    let p95 = r["delay_s_p95"].as_f64().expect("delay_s_p95 is a number when something was detected");
    let lo = sorted[((0.9 * detected).ceil() as usize).clamp(1, sorted.len()) - 1];
    assert!(p95 >= lo - 1e-9 && p95 <= sorted[sorted.len() - 1] + 1e-9, "delay_s_p95 {p95} outside [{lo}, max]");

    let mut spans: HashMap<&str, (i64, i64)> = HashMap::new();
    for e in &all {
        let t = ts_ms(&e["ts"]);
        let s = spans.entry(e["agent_id"].as_str().unwrap()).or_insert((t, t));
        s.0 = s.0.min(t);
        s.1 = s.1.max(t);
    }
    let agent_hours: f64 = spans.values().map(|(a, b)| (b - a) as f64 / 3_600_000.0).sum();
    assert_close(
        &r["false_alerts_per_agent_hour"],
        Some(false_alerts as f64 / agent_hours),
        "false_alerts_per_agent_hour",
    );

    let by_attack = r["by_attack"].as_object().expect("by_attack is an object");
    assert_eq!(by_attack.keys().cloned().collect::<BTreeSet<_>>(), by.keys().cloned().collect::<BTreeSet<_>>());
    for (name, (attacks, det, ds)) in &by {
        let v = &by_attack[name];
        for key in ["attacks", "detected", "recall", "delay_s_mean"] {
            assert!(v.get(key).is_some(), "by_attack.{name} lacks {key}");
        }
        assert_eq!(v["attacks"].as_u64(), Some(*attacks), "by_attack.{name}.attacks");
        assert_eq!(v["detected"].as_u64(), Some(*det), "by_attack.{name}.detected");
        assert_close(&v["recall"], Some(*det as f64 / *attacks as f64), &format!("by_attack.{name}.recall"));
        let mean = (!ds.is_empty()).then(|| ds.iter().sum::<f64>() / ds.len() as f64);
        assert_close(&v["delay_s_mean"], mean, &format!("by_attack.{name}.delay_s_mean"));
    }
}

#[test]
fn report_ratios_with_nothing_to_divide_by_are_null() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let events = simulate(d, "fleet.jsonl", &["--events", "300", "--agents", "5", "--attacks", "none"], false);
    std::fs::write(d.join("empty-labels.jsonl"), "").unwrap();
    let (alerts, _, r) = replay_outputs(d, &[s(&events)], "null", &["--labels", "empty-labels.jsonl"]);
    assert_eq!(r["attacks"], 0);
    assert_eq!(r["detected"], 0);
    assert!(r["recall"].is_null(), "recall with no windows: {r}");
    assert!(r["delay_s_mean"].is_null() && r["delay_s_p95"].is_null(), "{r}");
    if alerts.is_empty() {
        assert!(r["precision"].is_null(), "precision with no alerts: {r}");
    }
}

/// Collects every string inside `v` with the key it sits under.
fn strings<'a>(v: &'a Value, key: &'a str, out: &mut Vec<(&'a str, &'a str)>) {
    match v {
        Value::String(s) => out.push((key, s)),
        Value::Array(a) => a.iter().for_each(|x| strings(x, key, out)),
        Value::Object(m) => m.iter().for_each(|(k, x)| strings(x, k, out)),
        _ => {}
    }
}

#[test]
fn every_alert_has_the_shape_of_alerts_md() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let events =
        simulate(d, "fleet.jsonl", &["--agents", "200", "--duration", "6h", "--seed", "7", "--attacks", "all"], false);
    let all = json_lines(&events);
    let alerts_path = d.join("alerts.jsonl");
    assert_exit(&run_in(d, &["replay", s(&events), "--alerts", s(&alerts_path)]), 0);
    let alerts = json_lines(&alerts_path);
    assert!(alerts.len() >= 5, "expected several alerts from an attacked fleet, got {}", alerts.len());

    // Long payload texts of the input: none may appear whole in an alert.
    let mut long_texts: BTreeSet<String> = BTreeSet::new();
    for e in &all {
        for f in ["payload", "content", "cmd"] {
            if let Some(t) = e.get(f).and_then(Value::as_str).filter(|t| t.len() >= 64) {
                long_texts.insert(t.to_string());
            }
        }
        if let Some(a) = e.get("args").filter(|a| !a.is_null()) {
            let t = a.as_str().map(str::to_string).unwrap_or_else(|| a.to_string());
            if t.len() >= 64 {
                long_texts.insert(t);
            }
        }
    }
    assert!(!long_texts.is_empty());

    let agents: BTreeSet<&str> = all.iter().map(|e| e["agent_id"].as_str().unwrap()).collect();
    let mut ids = BTreeSet::new();
    let alert_lines = lines(&alerts_path);
    for (a, line) in alerts.iter().zip(&alert_lines) {
        let o = a.as_object().expect("an alert is an object");
        for key in [
            "id",
            "ts",
            "agent_id",
            "agent",
            "detector",
            "components",
            "severity",
            "score",
            "title",
            "reason",
            "evidence",
            "tags",
            "action",
        ] {
            assert!(o.contains_key(key), "alert lacks `{key}`: {line}");
        }
        let known = [
            "id",
            "ts",
            "agent_id",
            "agent",
            "session_id",
            "detector",
            "components",
            "severity",
            "score",
            "title",
            "reason",
            "evidence",
            "tags",
            "action",
            "suppressed_action",
        ];
        for k in o.keys() {
            assert!(known.contains(&k.as_str()), "unexpected field `{k}` (emitted_at is absent in replay): {line}");
        }
        let id = a["id"].as_str().expect("id is a string");
        assert!(!id.is_empty() && ids.insert(id.to_string()), "ids are non-empty and unique: {id}");
        let ts = a["ts"].as_str().expect("ts is a string");
        let b = ts.as_bytes();
        assert!(
            b.len() == 24
                && b[10] == b'T'
                && b[19] == b'.'
                && b[20..23].iter().all(u8::is_ascii_digit)
                && b[23] == b'Z',
            "ts has exactly three fraction digits and Z: {ts}"
        );
        assert!(rfc3339_ms(ts).is_some(), "ts parses: {ts}");
        assert!(agents.contains(a["agent_id"].as_str().unwrap()), "alert for an agent of the input");
        assert!(a["agent"].as_str().is_some_and(|s| !s.is_empty()));
        if let Some(sid) = a.get("session_id") {
            assert!(sid.is_string(), "session_id is a string when present");
        }
        let detector = a["detector"].as_str().unwrap();
        let comps = a["components"].as_object().expect("components is an object");
        assert!(!comps.is_empty());
        for (name, v) in comps {
            let x = v.as_f64().unwrap_or_else(|| panic!("component {name} is not a number"));
            assert!((0.0..=1.0).contains(&x), "component {name} = {x} outside [0, 1]");
        }
        let builtin =
            ["rate", "tokens", "sequence", "entropy", "escalation", "metric", "first_seen", "class_change", "vigil"];
        assert!(
            builtin.contains(&detector) || detector.starts_with("rule:") || detector.starts_with("model:"),
            "unknown detector {detector}"
        );
        if builtin.contains(&detector) && detector != "vigil" {
            assert!(comps.contains_key(detector), "the detector's own component is among the components: {line}");
        }
        assert!(["low", "medium", "high", "critical"].contains(&a["severity"].as_str().unwrap()), "{line}");
        let score = a["score"].as_f64().expect("score is a number");
        assert!((0.0..=1.0).contains(&score), "score {score} outside [0, 1]");
        let title = a["title"].as_str().unwrap();
        assert!(!title.is_empty() && !title.contains('\n'), "title is one line: {title:?}");
        assert!(!a["reason"].as_str().unwrap().is_empty());
        assert!(a["tags"].as_array().expect("tags is an array").iter().all(Value::is_string));
        assert!(["none", "notify", "contain", "kill"].contains(&a["action"].as_str().unwrap()), "{line}");
        if let Some(sa) = a.get("suppressed_action") {
            assert!(["notify", "contain", "kill"].contains(&sa.as_str().unwrap()), "{line}");
        }

        let evidence = a["evidence"].as_array().expect("evidence is an array");
        assert!(!evidence.is_empty(), "an alert shows its evidence: {line}");
        for e in evidence {
            assert!(e["ts"].as_str().is_some_and(|t| rfc3339_ms(t).is_some()), "evidence ts: {e}");
            assert!(e["kind"].is_string(), "evidence kind: {e}");
            assert!(e.get("id").is_some() || e.get("position").is_some(), "evidence names its event: {e}");
            if let Some(p) = e.get("payload") {
                assert!(p.get("text").is_none(), "full payload text by default: {e}");
                let len = p["len"].as_u64().expect("payload len");
                assert!(p["sha256"].as_str().is_some_and(|h| h.len() == 64), "payload sha256: {e}");
                assert!(p["bits_per_byte"].is_number(), "payload entropy: {e}");
                if let Some(prefix) = p.get("prefix") {
                    let prefix = prefix.as_str().unwrap();
                    assert!(prefix.chars().count() <= 16, "at most 16 leading characters: {prefix:?}");
                    assert!((prefix.len() as u64) <= len);
                }
            }
            let mut ss = Vec::new();
            strings(e, "", &mut ss);
            for (k, s) in ss {
                assert!(k == "sha256" || s.chars().count() <= 64, "evidence string `{k}` of {} chars: {s}", s.len());
            }
        }
        for t in &long_texts {
            assert!(!line.contains(t.as_str()), "payload text copied whole into an alert: {t:.80}");
        }
    }
}

/// `cmd` is payload text too (events.md: entropy reads `args`, `payload`, `content`, `cmd`): an alert
/// on a process with a long, encoded command line must not carry that command line whole.
#[test]

fn long_cmd_is_not_copied_whole_into_evidence() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut text = String::new();
    let t0 = 1_767_225_600_000i64;
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    // An ordinary history of long-enough plain command lines for the class, then an encoded one.
    let ordinary = |i: u64| match i % 2 {
        0 => format!("cargo build --release --target x86_64-unknown-linux-gnu -p crate-{}", i % 10),
        _ => format!("git log --oneline --decorate --graph --all --max-count=200 -- src/module{}.rs", i % 10),
    };
    let event = |ts: i64, agent: u64, cmd: &str| {
        format!(
            "{{\"ts\":{ts},\"agent_id\":\"builder-{agent}\",\"agent\":\"builder\",\"kind\":\"process\",\"cmd\":\"{cmd}\"}}\n"
        )
    };
    for i in 0..1500u64 {
        text.push_str(&event(t0 + i as i64 * 2000, i % 5, &ordinary(next())));
    }
    const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let blob: String = (0..4000).map(|_| B64[(next() % 64) as usize] as char).collect();
    let secret = format!("echo {blob} | base64 -d | sh");
    text.push_str(&event(t0 + 1500 * 2000, 1, &secret));
    std::fs::write(d.join("events.jsonl"), text).unwrap();
    // Class baselines learn at barriers; make them frequent in this short input.
    std::fs::write(d.join("config.toml"), "[engine]\nclass_sync_events = 50\n").unwrap();
    let alerts = d.join("alerts.jsonl");
    assert_exit(&run_in(d, &["replay", "events.jsonl", "--config", "config.toml", "--alerts", s(&alerts)]), 0);
    let got = json_lines(&alerts);
    assert!(
        got.iter().any(|a| a["agent_id"] == "builder-1" && a["detector"] == "entropy"),
        "the encoded command raises an entropy alert: {got:?}"
    );
    for l in lines(&alerts) {
        assert!(!l.contains(&blob), "the whole encoded command line is in the alert: {l:.300}");
    }
}
