//! Helpers shared by the integration tests: run the real `vigil` binary, read its JSON Lines, parse
//! event times independently of the code under test.
//!
//! Each test binary compiles this module separately and uses a different subset of it.
#![allow(dead_code)]

pub mod live;
pub mod receiver;

use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The binary under test.
pub fn vigil() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_vigil"));
    // Configuration must come from the test alone.
    for (k, _) in std::env::vars() {
        if k.starts_with("VIGIL_") {
            c.env_remove(k);
        }
    }
    c
}

/// Runs `vigil ARGS` in `cwd` with no stdin.
pub fn run_in(cwd: &Path, args: &[&str]) -> Output {
    vigil().current_dir(cwd).args(args).stdin(Stdio::null()).output().expect("cannot start vigil")
}

/// Runs `vigil ARGS` in `cwd` with `input` on stdin.
pub fn run_with_stdin(cwd: &Path, args: &[&str], input: &[u8]) -> Output {
    let mut child = vigil()
        .current_dir(cwd)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot start vigil");
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let data = input.to_vec();
    // Feed stdin from a thread so a full stdout pipe cannot deadlock the child.
    let feeder = std::thread::spawn(move || {
        let _ = stdin.write_all(&data);
    });
    let out = child.wait_with_output().expect("vigil did not finish");
    feeder.join().expect("stdin feeder panicked");
    out
}

/// Asserts that a run exited with `code`, showing its stderr when not.
#[track_caller]
pub fn assert_exit(out: &Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "expected exit {code}, got {:?}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `vigil simulate ARGS --out DIR/NAME` (plus `--labels DIR/NAME.labels` when `labels`) and
/// returns the events path.
pub fn simulate(dir: &Path, name: &str, args: &[&str], labels: bool) -> PathBuf {
    let out = dir.join(name);
    let mut full: Vec<String> = vec!["simulate".into()];
    full.extend(args.iter().map(|s| s.to_string()));
    full.push("--out".into());
    full.push(out.to_str().expect("utf-8 path").into());
    if labels {
        full.push("--labels".into());
        full.push(labels_path(&out).to_str().expect("utf-8 path").into());
    }
    let full: Vec<&str> = full.iter().map(String::as_str).collect();
    let o = run_in(dir, &full);
    assert_exit(&o, 0);
    out
}

/// Where [`simulate`] writes the labels of `events`.
pub fn labels_path(events: &Path) -> PathBuf {
    let mut s = events.as_os_str().to_owned();
    s.push(".labels");
    PathBuf::from(s)
}

pub fn s(p: &Path) -> &str {
    p.to_str().expect("test paths are UTF-8")
}

/// The lines of a text file (without newlines); an absent file has none.
pub fn lines(path: &Path) -> Vec<String> {
    match std::fs::read_to_string(path) {
        Ok(t) => t.lines().map(str::to_string).collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => panic!("cannot read {}: {e}", path.display()),
    }
}

/// Every line of a JSON Lines file, parsed; panics naming the line when one is not JSON.
pub fn json_lines(path: &Path) -> Vec<Value> {
    lines(path)
        .iter()
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("{}:{}: not JSON ({e}): {l}", path.display(), i + 1))
        })
        .collect()
}

pub fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: not JSON: {e}", path.display()))
}

/// A report without the two wall-clock figures (the only ones allowed to differ between runs).
pub fn report_without_timing(mut r: Value) -> Value {
    let m = r.as_object_mut().expect("the report is a JSON object");
    assert!(m.remove("elapsed_s").is_some(), "report lacks elapsed_s");
    assert!(m.remove("events_per_s").is_some(), "report lacks events_per_s");
    r
}

/// Event time in epoch milliseconds of a `ts` value (integer milliseconds or RFC 3339 text), parsed
/// here rather than by the code under test.
pub fn ts_ms(v: &Value) -> i64 {
    match v {
        Value::Number(n) => n.as_i64().unwrap_or_else(|| panic!("ts {n} is not an integer")),
        Value::String(s) => rfc3339_ms(s).unwrap_or_else(|| panic!("ts {s:?} is not RFC 3339")),
        other => panic!("ts {other} is neither a number nor a string"),
    }
}

/// A small RFC 3339 parser (`YYYY-MM-DDTHH:MM:SS[.fff]` then `Z` or `±HH:MM`), to milliseconds.
pub fn rfc3339_ms(s: &str) -> Option<i64> {
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't') || b[13] != b':' {
        return None;
    }
    let (y, mo, d, h, mi, sec) = (num(0..4)?, num(5..7)?, num(8..10)?, num(11..13)?, num(14..16)?, num(17..19)?);
    let mut i = 19;
    let mut ms = 0i64;
    if b[i] == b'.' {
        let start = i + 1;
        i = start;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let frac = &s[start..i];
        let three: String = frac.chars().chain("000".chars()).take(3).collect();
        ms = three.parse().ok()?;
    }
    let offset_min = match &s[i..] {
        "Z" | "z" => 0,
        o if o.len() == 6 => {
            let sign = if o.starts_with('-') { -1 } else { 1 };
            sign * (o[1..3].parse::<i64>().ok()? * 60 + o[4..6].parse::<i64>().ok()?)
        }
        _ => return None,
    };
    // Days from civil (Howard Hinnant's algorithm).
    let yy = if mo <= 2 { y - 1 } else { y };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let doy = (153 * (if mo > 2 { mo - 3 } else { mo + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 86_400 + h * 3600 + mi * 60 + sec) - offset_min * 60) * 1000 + ms)
}

/// Standard base64 (with padding), to check `raw_b64` independently of the code under test.
pub fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |acc, (i, &b)| acc | (b as u32) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn helpers_parse_what_they_claim() {
    assert_eq!(rfc3339_ms("1970-01-01T00:00:00Z"), Some(0));
    assert_eq!(rfc3339_ms("2026-01-01T00:00:00.573Z"), Some(1_767_225_600_573));
    assert_eq!(rfc3339_ms("2026-01-01T01:00:00.5+01:00"), Some(1_767_225_600_500));
    assert_eq!(rfc3339_ms("yesterday"), None);
    assert_eq!(base64(b"a\xffb"), "Yf9i");
    assert_eq!(base64(b"ab"), "YWI=");
    assert_eq!(base64(b"a"), "YQ==");
}
