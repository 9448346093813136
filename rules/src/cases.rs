//! Rule test cases: the file format, its parser, and a runner that needs nothing but the pack.
//!
//! A case file (`<pack>/tests/*.yaml`) is a list of cases; each names a rule, gives the events of one run
//! (JSON events of `spec/events.md`, written as YAML) and says whether the rule must fire on them:
//!
//! ```yaml
//! - case: credential read then upload fires
//!   rule: credential-read-then-egress
//!   expect: fire            # or no_fire
//!   events:
//!     - {ts: 1000, agent_id: a1, session_id: s1, kind: auth, op: credential_read}
//!     - {ts: 2000, agent_id: a1, session_id: s1, kind: net, dest: "paste.example:443"}
//! ```
//!
//! `vigil rules test` runs cases through the whole engine; [`run_cases`] runs them through the pack alone
//! (the caller supplies the event-to-[`Record`] mapping, e.g. [`crate::JsonRecord`]), which is how this
//! crate tests its default pack. Each case starts from empty state, kept per `agent_id`; disabled rules
//! are evaluated too, so their cases still check their logic.

use crate::error::{Diagnostic, Diagnostics, RuleError};
use crate::pack::{entries, get, read_yaml_files, Pack, Reporter};
use crate::schema::Record;
use crate::state::RuleState;
use crate::yaml::{self, Node, NodeKind, Style};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

/// What a case expects of its rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Expect {
    /// The rule fires at least once on the case's events.
    Fire,
    /// The rule never fires on the case's events.
    NoFire,
}

/// One test case.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TestCase {
    /// What the case shows (`case:` key).
    pub name: String,
    /// The id of the rule under test.
    pub rule: String,
    /// Whether the rule must fire.
    pub expect: Expect,
    /// The events, in order, as JSON objects.
    pub events: Vec<serde_json::Value>,
    /// File the case comes from.
    pub file: String,
    /// Line of its `case:` key.
    pub line: usize,
}

/// The outcome of one case.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CaseResult {
    /// The case's name.
    pub name: String,
    /// The rule under test.
    pub rule: String,
    /// What was expected.
    pub expect: Expect,
    /// File and line of the case.
    pub file: String,
    /// Line of the case.
    pub line: usize,
    /// Whether the expectation held.
    pub passed: bool,
    /// How many times the rule fired.
    pub fired: usize,
    /// Why it failed (empty when it passed).
    pub message: String,
}

/// A rule lacking a case of one kind.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Uncovered {
    /// The rule id.
    pub rule: String,
    /// The kind of case it lacks.
    pub missing: Expect,
}

/// The outcome of a run of cases.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct CaseReport {
    /// Every case's outcome, in case order.
    pub results: Vec<CaseResult>,
    /// Rules of the pack without a firing or without a non-firing case.
    pub uncovered: Vec<Uncovered>,
}

impl CaseReport {
    /// Number of cases that passed.
    pub fn passed(&self) -> usize {
        self.results.iter().filter(|r| r.passed).count()
    }

    /// Number of cases that failed.
    pub fn failed(&self) -> usize {
        self.results.len() - self.passed()
    }

    /// Whether every case passed.
    pub fn all_passed(&self) -> bool {
        self.failed() == 0
    }
}

const CASE_KEYS: &[&str] = &["case", "rule", "expect", "events", "description"];

/// Converts a YAML node into JSON: plain scalars are typed by the YAML 1.2 core schema (null, bool,
/// integer, float, else string); quoted and block scalars are strings.
fn to_json(n: &Node) -> serde_json::Value {
    use serde_json::Value as J;
    match &n.kind {
        NodeKind::Scalar(s, Style::Plain) => {
            if n.is_null() {
                return J::Null;
            }
            match s.as_str() {
                "true" | "True" | "TRUE" => return J::Bool(true),
                "false" | "False" | "FALSE" => return J::Bool(false),
                _ => {}
            }
            let numeric = s.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E'))
                && s.bytes().any(|b| b.is_ascii_digit());
            if numeric {
                if let Ok(i) = s.parse::<i64>() {
                    return J::from(i);
                }
                if let Ok(f) = s.parse::<f64>() {
                    if let Some(n) = serde_json::Number::from_f64(f) {
                        return J::Number(n);
                    }
                }
            }
            J::String(s.clone())
        }
        NodeKind::Scalar(s, _) => J::String(s.clone()),
        NodeKind::Seq(items) => J::Array(items.iter().map(to_json).collect()),
        NodeKind::Map(es) => {
            let mut m = serde_json::Map::new();
            for (k, v) in es {
                let key = match &k.kind {
                    NodeKind::Scalar(s, _) => s.clone(),
                    _ => to_json(k).to_string(),
                };
                m.insert(key, to_json(v));
            }
            J::Object(m)
        }
    }
}

/// Parses case files given as `(file name, text)` pairs. Returns every problem found.
pub fn parse_cases(files: &[(String, String)]) -> Result<Vec<TestCase>, Diagnostics> {
    let mut rep = Reporter::new(files);
    let mut cases = Vec::new();
    for (fi, (name, text)) in files.iter().enumerate() {
        let docs = match yaml::parse(text) {
            Ok(d) => d,
            Err(e) => {
                rep.at(fi, e.pos, RuleError::Yaml(e.message));
                continue;
            }
        };
        for doc in docs {
            let NodeKind::Seq(items) = &doc.kind else {
                rep.at(fi, doc.pos, RuleError::Structure("a case file is a list of cases (`- case: ...`)".into()));
                continue;
            };
            for item in items {
                if let Some(c) = parse_case(&mut rep, fi, name, item) {
                    cases.push(c);
                }
            }
        }
    }
    if rep.diags.is_empty() {
        Ok(cases)
    } else {
        let mut d = std::mem::take(&mut rep.diags);
        d.sort_by_key(|a| (a.0, a.1, a.2));
        Err(Diagnostics(d.into_iter().map(|(f, l, c, e)| Diagnostic::new(files[f].0.clone(), l, c, e)).collect()))
    }
}

fn parse_case(rep: &mut Reporter<'_>, fi: usize, file: &str, item: &Node) -> Option<TestCase> {
    let Some(es) = entries(item) else {
        rep.at(fi, item.pos, RuleError::Structure(format!("expected a case (`- case: NAME`), found {}", item.what())));
        return None;
    };
    rep.check_keys(fi, es, CASE_KEYS, "case");
    let mut ok = true;
    let mut required = |rep: &mut Reporter<'_>, key: &'static str| {
        let n = get(es, key);
        if n.is_none() {
            rep.at(fi, item.pos, RuleError::MissingKey { key, item: "case" });
            ok = false;
        }
        n
    };
    let name_node = required(rep, "case");
    let rule_node = required(rep, "rule");
    let expect_node = required(rep, "expect");
    let events_node = required(rep, "events");
    let name = name_node.and_then(|n| rep.string(fi, n, "case")).map(str::to_string);
    let rule = rule_node.and_then(|n| rep.string(fi, n, "rule")).map(str::to_string);
    let expect = expect_node.and_then(|n| match n.as_str() {
        Some("fire") => Some(Expect::Fire),
        Some("no_fire") => Some(Expect::NoFire),
        _ => {
            rep.at(
                fi,
                n.pos,
                RuleError::InvalidValue { key: "expect", message: "expected `fire` or `no_fire`".into() },
            );
            None
        }
    });
    let events = events_node.and_then(|n| match &n.kind {
        NodeKind::Seq(items) if !items.is_empty() => {
            let mut evs = Vec::new();
            for it in items {
                if matches!(it.kind, NodeKind::Map(_)) {
                    evs.push(to_json(it));
                } else {
                    rep.at(
                        fi,
                        it.pos,
                        RuleError::InvalidValue {
                            key: "events",
                            message: format!("an event is a mapping of its fields, found {}", it.what()),
                        },
                    );
                }
            }
            (evs.len() == items.len()).then_some(evs)
        }
        _ => {
            rep.at(
                fi,
                n.pos,
                RuleError::InvalidValue { key: "events", message: "expected a non-empty list of events".into() },
            );
            None
        }
    });
    if !ok {
        return None;
    }
    Some(TestCase {
        name: name?,
        rule: rule?,
        expect: expect?,
        events: events?,
        file: file.to_string(),
        line: item.pos.line,
    })
}

/// Loads the cases of a pack: `PATH/tests/*.yaml` when `path` is a directory (none if it has no `tests/`),
/// or the file `path` itself.
pub fn load_cases(path: &Path) -> Result<Vec<TestCase>, Diagnostics> {
    let files = if path.is_dir() {
        let tests = path.join("tests");
        if !tests.is_dir() {
            return Ok(Vec::new());
        }
        match read_yaml_files(&tests) {
            Ok(f) => f,
            Err(d) if d.iter().all(|x| x.message == RuleError::Empty.to_string()) => return Ok(Vec::new()),
            Err(d) => return Err(d),
        }
    } else {
        read_yaml_files(path)?
    };
    parse_cases(&files)
}

/// Runs `cases` through `pack` alone: each case from empty state (one [`RuleState`] per `agent_id`),
/// every rule evaluated (disabled ones too), and the case's rule checked against its expectation. Also
/// lists the pack's rules that lack a firing or a non-firing case.
pub fn run_cases(
    pack: &Pack,
    cases: &[TestCase],
    make_record: impl Fn(&serde_json::Value) -> Box<dyn Record>,
) -> CaseReport {
    let mut report = CaseReport::default();
    let mut out = Vec::new();
    for case in cases {
        let mut result = CaseResult {
            name: case.name.clone(),
            rule: case.rule.clone(),
            expect: case.expect,
            file: case.file.clone(),
            line: case.line,
            passed: false,
            fired: 0,
            message: String::new(),
        };
        let Some(idx) = pack.rule_index(&case.rule) else {
            result.message = format!("no rule `{}` in the pack", case.rule);
            report.results.push(result);
            continue;
        };
        let mut states: BTreeMap<String, RuleState> = BTreeMap::new();
        let mut first_detail = None;
        for ev in &case.events {
            let agent = ev.get("agent_id").and_then(|a| a.as_str()).unwrap_or("").to_string();
            let rec = make_record(ev);
            out.clear();
            pack.evaluate_all(rec.as_ref(), states.entry(agent).or_default(), &mut out);
            for m in out.iter().filter(|m| m.rule == idx) {
                result.fired += 1;
                if first_detail.is_none() {
                    first_detail = Some(m.detail.clone());
                }
            }
        }
        result.passed = match case.expect {
            Expect::Fire => result.fired > 0,
            Expect::NoFire => result.fired == 0,
        };
        if !result.passed {
            result.message = match case.expect {
                Expect::Fire => "expected the rule to fire; it did not".to_string(),
                Expect::NoFire => format!(
                    "expected no match; the rule fired {} time(s): {}",
                    result.fired,
                    first_detail.unwrap_or_default()
                ),
            };
        }
        report.results.push(result);
    }
    for r in pack.rules() {
        for e in [Expect::Fire, Expect::NoFire] {
            if !cases.iter().any(|c| c.rule == r.id && c.expect == e) {
                report.uncovered.push(Uncovered { rule: r.id.clone(), missing: e });
            }
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json_record::JsonRecord;
    use proptest::prelude::*;

    fn files(t: &str) -> Vec<(String, String)> {
        vec![("c.yaml".to_string(), t.to_string())]
    }

    #[test]
    fn parses_cases_with_typed_scalars() {
        let t = "- case: one\n  rule: r\n  expect: fire\n  events:\n    - {ts: 1000, agent_id: a, kind: net, bytes_out: 2.5, privileged: true, dest: '443', x: ~}\n";
        let cs = parse_cases(&files(t)).unwrap();
        assert_eq!(cs.len(), 1);
        assert_eq!(cs[0].expect, Expect::Fire);
        assert_eq!(cs[0].line, 1);
        assert_eq!(
            cs[0].events[0],
            serde_json::json!({"ts": 1000, "agent_id": "a", "kind": "net", "bytes_out": 2.5, "privileged": true, "dest": "443", "x": null})
        );
    }

    #[test]
    fn reports_case_errors() {
        let t = "- case: one\n  rule: r\n  expect: maybe\n  events: []\n  extra: 1\n- rule: r\n";
        let d = parse_cases(&files(t)).unwrap_err();
        let msgs: Vec<String> = d.iter().map(|d| d.to_string()).collect();
        assert!(msgs.iter().any(|m| m.starts_with("c.yaml:3:11: invalid value for `expect`")), "{msgs:?}");
        assert!(msgs.iter().any(|m| m.starts_with("c.yaml:4:11: invalid value for `events`")), "{msgs:?}");
        assert!(msgs.iter().any(|m| m.starts_with("c.yaml:5:3: unknown key `extra`")), "{msgs:?}");
        assert!(msgs.iter().any(|m| m.contains("missing required key `case`")), "{msgs:?}");
    }

    #[test]
    fn runs_cases_and_reports_coverage() {
        let schema = JsonRecord::standard_schema();
        let pack = Pack::load_sources(
            &files("- rule: r\n  description: d\n  severity: low\n  when: kind == 'net'\n- rule: s\n  description: d\n  severity: low\n  when: kind == 'file'\n"),
            &schema,
        )
        .unwrap();
        let t = "- case: fires\n  rule: r\n  expect: fire\n  events: [{ts: 1, agent_id: a, kind: net, dest: x}]\n- case: wrongly quiet\n  rule: r\n  expect: no_fire\n  events: [{ts: 1, agent_id: a, kind: net, dest: x}]\n- case: ghost\n  rule: nope\n  expect: fire\n  events: [{ts: 1}]\n";
        let cases = parse_cases(&files(t)).unwrap();
        let report = run_cases(&pack, &cases, |v| Box::new(JsonRecord::new(v, &schema)));
        assert_eq!(report.passed(), 1);
        assert_eq!(report.failed(), 2);
        assert!(report.results[1].message.contains("fired 1 time"));
        assert!(report.results[2].message.contains("no rule `nope`"));
        assert_eq!(
            report.uncovered,
            vec![
                Uncovered { rule: "s".into(), missing: Expect::Fire },
                Uncovered { rule: "s".into(), missing: Expect::NoFire }
            ]
        );
    }

    proptest! {
        #[test]
        fn case_parser_never_panics(s in "[-a-z:{}\\[\\], \\n'\"#&*!|>0-9]{0,300}") {
            let _ = parse_cases(&files(&s));
        }
    }
}
