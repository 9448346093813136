//! The golden driver: every directory `tests/data/<case>/` (names starting with `_` skipped) is one
//! behaviour, replayed through the real binary and compared with the expected files beside it.
//!
//! A case holds (see `tests/data/README.md`):
//! - `events.jsonl` — the input, replayed as `vigil replay events.jsonl` from inside the case directory
//!   (so sources in evidence and dead letters read `events.jsonl`);
//! - `config.toml` — optional, passed as `--config config.toml`;
//! - `args.txt` — optional extra replay arguments, whitespace-separated (`#` starts a comment line);
//! - `expected_alerts.jsonl` — required: the alert lines, byte for byte;
//! - `expected_rejects.jsonl` — the dead-letter lines; when absent, no line may be rejected;
//! - `expected_scores.jsonl` — optional: when present, `--scores` is compared too;
//! - `expected_report.json` — optional: the report without `elapsed_s` and `events_per_s`;
//! - `expected_error.txt` — optional: an error case; the run must exit 2 with this stderr;
//! - `bug.txt` — a case pinning an open bug: its expected files hold the *correct* output (written by
//!   hand), so it is left out of `golden_cases` and run by the ignored `golden_cases_pinning_open_bugs`
//!   until the bug is fixed and `bug.txt` deleted.
//!
//! `VIGIL_BLESS=1 cargo test --test golden` rewrites the expected files from the current engine instead
//! of comparing (expected_alerts always; the optional ones that exist; expected_rejects whenever lines
//! were rejected). Read the diff before committing it.

mod common;

use common::*;
use serde_json::Value;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("data")
}

fn blessing() -> bool {
    std::env::var("VIGIL_BLESS").is_ok_and(|v| v == "1")
}

/// The cases: directories of `tests/data`, sorted, without those starting with `_`; split into the
/// ordinary ones and those pinning an open bug (with a `bug.txt`).
fn cases() -> (Vec<PathBuf>, Vec<PathBuf>) {
    let mut v: Vec<PathBuf> = std::fs::read_dir(data_dir())
        .expect("tests/data exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.is_dir())
        .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('_'))
        .collect();
    v.sort();
    v.into_iter().partition(|p| !p.join("bug.txt").exists())
}

fn read_text(path: &Path) -> Option<String> {
    match std::fs::read_to_string(path) {
        Ok(t) => Some(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => panic!("cannot read {}: {e}", path.display()),
    }
}

/// Compares two JSON Lines texts line by line; describes the first difference.
fn compare_lines(what: &str, expected: &str, actual: &str, problems: &mut String) {
    if expected == actual {
        return;
    }
    let (e, a): (Vec<&str>, Vec<&str>) = (expected.lines().collect(), actual.lines().collect());
    if e.len() == a.len() {
        let _ = writeln!(problems, "  {what} differ ({} lines)", e.len());
    } else {
        let _ = writeln!(problems, "  {what}: expected {} lines, got {}", e.len(), a.len());
    }
    for i in 0..e.len().max(a.len()) {
        if e.get(i) != a.get(i) {
            let _ = writeln!(problems, "    first difference at line {}:", i + 1);
            let _ = writeln!(problems, "      expected: {}", e.get(i).unwrap_or(&"<none>"));
            let _ = writeln!(problems, "      actual:   {}", a.get(i).unwrap_or(&"<none>"));
            return;
        }
    }
    let _ = writeln!(problems, "    (the texts differ in line endings)");
}

fn report_text(report: &Path) -> String {
    let r = report_without_timing(read_json(report));
    serde_json::to_string_pretty(&r).expect("a JSON value serialises") + "\n"
}

/// Runs one case; returns what went wrong (empty when it passed or was blessed).
fn run_case(case: &Path) -> String {
    let name = case.file_name().unwrap().to_string_lossy().to_string();
    let mut problems = String::new();
    let events = case.join("events.jsonl");
    if !events.is_file() {
        return format!("  no events.jsonl in {}\n", case.display());
    }
    let n_lines = std::fs::read(&events).unwrap().split(|&b| b == b'\n').count();
    if n_lines > 5001 {
        let _ = writeln!(problems, "  events.jsonl has {n_lines} lines: keep golden cases under 5,000");
    }
    let tmp = tempfile::tempdir().unwrap();
    let (alerts, rejects, scores, report) = (
        tmp.path().join("alerts.jsonl"),
        tmp.path().join("rejects.jsonl"),
        tmp.path().join("scores.jsonl"),
        tmp.path().join("report.json"),
    );
    let mut args: Vec<String> = ["replay", "events.jsonl", "--alerts", s(&alerts), "--dead-letter", s(&rejects)]
        .iter()
        .map(|x| x.to_string())
        .collect();
    args.extend(["--report".to_string(), s(&report).to_string()]);
    if case.join("config.toml").is_file() {
        args.extend(["--config".to_string(), "config.toml".to_string()]);
    }
    let expected_scores = case.join("expected_scores.jsonl");
    if expected_scores.is_file() {
        args.extend(["--scores".to_string(), s(&scores).to_string()]);
    }
    if let Some(extra) = read_text(&case.join("args.txt")) {
        for line in extra.lines().filter(|l| !l.trim_start().starts_with('#')) {
            args.extend(line.split_whitespace().map(str::to_string));
        }
    }
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run_in(case, &argv);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let bless = blessing();

    let expected_error = case.join("expected_error.txt");
    if expected_error.is_file() {
        if out.status.code() != Some(2) {
            let _ = writeln!(problems, "  expected exit 2, got {:?}; stderr:\n{stderr}", out.status.code());
        }
        if bless {
            std::fs::write(&expected_error, &stderr).unwrap();
        } else {
            let want = read_text(&expected_error).unwrap();
            if want.trim_end() != stderr.trim_end() {
                let _ = writeln!(
                    problems,
                    "  stderr differs:\n    expected: {}\n    actual:   {}",
                    want.trim_end(),
                    stderr.trim_end()
                );
            }
        }
        if !lines(&alerts).is_empty() {
            let _ = writeln!(problems, "  an error case wrote alerts");
        }
        return if problems.is_empty() { problems } else { format!("case {name}:\n{problems}") };
    }

    if out.status.code() != Some(0) {
        return format!("case {name}:\n  exit {:?}; stderr:\n{stderr}", out.status.code());
    }
    let actual_alerts = read_text(&alerts).unwrap_or_default();
    let actual_rejects = read_text(&rejects).unwrap_or_default();
    let expected_rejects = case.join("expected_rejects.jsonl");
    let expected_report = case.join("expected_report.json");
    if bless {
        std::fs::write(case.join("expected_alerts.jsonl"), &actual_alerts).unwrap();
        if !actual_rejects.is_empty() {
            std::fs::write(&expected_rejects, &actual_rejects).unwrap();
        } else if expected_rejects.exists() {
            std::fs::remove_file(&expected_rejects).unwrap();
        }
        if expected_scores.is_file() {
            std::fs::write(&expected_scores, read_text(&scores).unwrap_or_default()).unwrap();
        }
        if expected_report.is_file() {
            std::fs::write(&expected_report, report_text(&report)).unwrap();
        }
        eprintln!(
            "blessed {name}: {} alerts, {} rejects",
            actual_alerts.lines().count(),
            actual_rejects.lines().count()
        );
        return String::new();
    }

    match read_text(&case.join("expected_alerts.jsonl")) {
        Some(want) => compare_lines("alerts", &want, &actual_alerts, &mut problems),
        None => problems.push_str("  no expected_alerts.jsonl (bless the case with VIGIL_BLESS=1)\n"),
    }
    let want_rejects = read_text(&expected_rejects).unwrap_or_default();
    compare_lines("dead letters", &want_rejects, &actual_rejects, &mut problems);
    if expected_scores.is_file() {
        let want = read_text(&expected_scores).unwrap();
        compare_lines("scores", &want, &read_text(&scores).unwrap_or_default(), &mut problems);
    }
    if let Some(want) = read_text(&expected_report) {
        let want: Value = serde_json::from_str(&want).expect("expected_report.json is JSON");
        let got = report_without_timing(read_json(&report));
        if want != got {
            let _ = writeln!(problems, "  report differs:\n    expected: {want}\n    actual:   {got}");
        }
    }
    if problems.is_empty() {
        problems
    } else {
        format!("case {name}:\n{problems}")
    }
}

#[test]
fn golden_cases() {
    let (cases, bugs) = cases();
    for b in &bugs {
        eprintln!("skipping {} (open bug, see its bug.txt)", b.display());
    }
    assert!(cases.len() >= 5, "tests/data holds the golden cases; found only {}", cases.len());
    let mut failures = String::new();
    for case in &cases {
        failures.push_str(&run_case(case));
    }
    assert!(
        failures.is_empty(),
        "golden cases failed (if the change is intended, rerun with VIGIL_BLESS=1 and review the diff):\n{failures}"
    );
}

#[test]
#[ignore = "runs the golden cases that pin open bugs (directories with a bug.txt), whose expectations are hand-written"]
fn golden_cases_pinning_open_bugs() {
    let (_, bugs) = cases();
    assert!(!blessing(), "cases pinning bugs hold hand-written expectations: never bless them");
    let failures: String = bugs.iter().map(|c| run_case(c)).collect();
    assert!(failures.is_empty(), "{failures}");
}

/// The template is skipped by the driver (its name starts with `_`) but must stay a working case.
#[test]
fn template_case_is_a_working_case() {
    let problems = run_case(&data_dir().join("_template"));
    assert!(problems.is_empty(), "{problems}");
}

/// The driver itself: a wrong expectation must fail, with the difference shown.
#[test]
fn driver_reports_a_difference() {
    let dir = tempfile::tempdir().unwrap();
    let case = dir.path().join("wrong");
    std::fs::create_dir(&case).unwrap();
    std::fs::write(case.join("events.jsonl"), "{\"ts\":0,\"agent_id\":\"a\",\"kind\":\"llm_call\"}\nnot json\n")
        .unwrap();
    std::fs::write(case.join("expected_alerts.jsonl"), "{\"id\":\"made-up\"}\n").unwrap();
    if blessing() {
        return; // blessing would overwrite the made-up expectation
    }
    let problems = run_case(&case);
    assert!(problems.contains("alerts: expected 1 lines, got 0"), "{problems}");
    assert!(problems.contains("dead letters: expected 0 lines, got 1"), "{problems}");
}
