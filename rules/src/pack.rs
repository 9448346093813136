//! Rule packs: loading YAML items (lists, macros, rules) from many files, compiling them against a schema,
//! indexing rules by what they can match, and evaluating a record against the pack.
//!
//! Loading is two-pass so that a rule may use lists and macros defined in any file of the pack: the first
//! pass reads every file's items and checks their keys, the second compiles conditions (macros on demand,
//! with cycle detection) and rules in file order. Every problem becomes a diagnostic and loading carries on;
//! a pack with any diagnostic is refused as a whole.

use crate::compile::{Compiler, Cond, Cx, Key, ListSet, Names, Operand, Trigger, MEMO_SLOTS, NO_MEMO};
use crate::error::{Diagnostic, Diagnostics, RuleError};
use crate::expr;
use crate::schema::{FieldId, FieldType, Record, Schema};
use crate::state::{GroupBy, Measure, RuleMatch, RuleState, Sequence, SlotRef, Threshold, MAX_DISTINCT, MAX_STEPS};
use crate::util::{closest, fnv, fnv_more, head8, hint, parse_duration_ms};
use crate::yaml::{self, Node, NodeKind, Pos, Source, Style};
use rustc_hash::FxHashMap;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// How bad a rule's finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth a look.
    Low,
    /// Likely unwanted behaviour.
    Medium,
    /// Likely an attack or a serious policy breach.
    High,
    /// An attack in progress, near certain.
    Critical,
}

impl Severity {
    /// The name used in rule files and alerts.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    fn parse(s: &str) -> Option<Severity> {
        Some(match s {
            "low" => Severity::Low,
            "medium" => Severity::Medium,
            "high" => Severity::High,
            "critical" => Severity::Critical,
            _ => return None,
        })
    }
}

/// The containment action a rule asks for when it fires.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Record only.
    None,
    /// Tell people (the default).
    Notify,
    /// Cut the agent off from tools and network.
    Contain,
    /// Stop the agent.
    Kill,
}

impl Action {
    /// The name used in rule files and alerts.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::None => "none",
            Action::Notify => "notify",
            Action::Contain => "contain",
            Action::Kill => "kill",
        }
    }

    fn parse(s: &str) -> Option<Action> {
        Some(match s {
            "none" => Action::None,
            "notify" => Action::Notify,
            "contain" => Action::Contain,
            "kill" => Action::Kill,
            _ => return None,
        })
    }
}

/// Whether a rule judges single events or keeps state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleKind {
    /// Fires on one event.
    Stateless,
    /// Fires when a count, distinct count or sum within a window reaches a threshold.
    Threshold,
    /// Fires when ordered steps happen within a window.
    Sequence,
}

/// What a rule is, as written in its file (the compiled form stays private).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RuleInfo {
    /// Unique id (`rule:` key); alerts name the rule `rule:<id>`.
    pub id: String,
    /// One-line title; may hold `{field}` placeholders, filled by [`Pack::title`].
    pub title: String,
    /// The threat and the known false positives.
    pub description: String,
    /// Severity of a finding.
    pub severity: Severity,
    /// Attack classes (`exfiltration`, `credential-access`, ...).
    pub tags: Vec<String>,
    /// Containment action asked for.
    pub action: Action,
    /// Disabled rules are compiled and checked but [`Pack::evaluate`] skips them.
    pub enabled: bool,
    /// Stateless, threshold or sequence.
    pub kind: RuleKind,
    /// The `when` condition as written (empty for a sequence without one).
    pub when: String,
    /// File the rule comes from.
    pub file: String,
    /// Line of its `rule:` key.
    pub line: usize,
}

#[derive(Clone, Debug)]
enum TitlePart {
    Lit(String),
    Field(Operand),
}

#[derive(Clone, Debug)]
enum Logic {
    Stateless,
    Threshold(Box<Threshold>),
    Sequence(Box<Sequence>),
}

/// The conditions of a rule, as compiled or specialised for one value of `kind`.
#[derive(Clone, Debug)]
struct Conds {
    when: Cond,
    exceptions: Option<Cond>,
    /// A sequence's steps (empty otherwise).
    steps: Box<[Cond]>,
    /// A sequence's `until`.
    until: Option<Cond>,
}

impl Conds {
    /// Every condition with its direct leaves (see [`Cond::direct_leaves`]).
    fn direct_leaves(&mut self) {
        self.when.direct_leaves();
        self.exceptions.iter_mut().for_each(Cond::direct_leaves);
        self.steps.iter_mut().for_each(Cond::direct_leaves);
        self.until.iter_mut().for_each(Cond::direct_leaves);
    }

    fn each(&self) -> impl Iterator<Item = &Cond> {
        std::iter::once(&self.when).chain(&self.exceptions).chain(self.steps.iter()).chain(&self.until)
    }

    fn each_mut(&mut self) -> impl Iterator<Item = &mut Cond> {
        std::iter::once(&mut self.when).chain(&mut self.exceptions).chain(self.steps.iter_mut()).chain(&mut self.until)
    }

    /// Every condition with plain field tests first in its `&&`s (see [`Cond::field_tests_first`]).
    fn field_tests_first(&mut self) {
        self.when.field_tests_first();
        self.exceptions.iter_mut().for_each(Cond::field_tests_first);
        self.steps.iter_mut().for_each(Cond::field_tests_first);
        self.until.iter_mut().for_each(Cond::field_tests_first);
    }

    fn specialize(&self, kind: FieldId, value: &str) -> Conds {
        Conds {
            when: self.when.specialize(kind, value),
            exceptions: self.exceptions.as_ref().map(|e| e.specialize(kind, value)),
            steps: self.steps.iter().map(|c| c.specialize(kind, value)).collect(),
            until: self.until.as_ref().map(|c| c.specialize(kind, value)),
        }
    }

    /// Whether the rule can never act on a record with these conditions.
    fn never(&self) -> bool {
        let f = |c: &Cond| matches!(c, Cond::Const(false));
        f(&self.when)
            || self.exceptions.as_ref().is_some_and(|e| matches!(e, Cond::Const(true)))
            || (!self.steps.is_empty() && self.steps.iter().all(f) && self.until.as_ref().is_none_or(f))
    }
}

#[derive(Clone, Debug)]
struct Compiled {
    conds: Conds,
    logic: Logic,
    title: Vec<TitlePart>,
    /// The detail of a stateless match (``matched `<when>` ``), formatted once at load: a match then
    /// costs one copy instead of a `format!` over the whole condition text.
    matched: Box<str>,
    /// Index among stateful rules (state slot); unused for stateless rules.
    slot: usize,
}

/// The candidate rules of one `kind` value, sorted, with their conditions specialised for it.
#[derive(Clone, Debug, Default)]
struct KindEntry {
    rules: Box<[u32]>,
    conds: Box<[Conds]>,
}

/// The candidates of each indexed `kind` value. Kinds are a handful of short names: an event's kind is
/// found by its length and first 8 bytes (one integer compare per entry) instead of by hashing it.
#[derive(Clone, Debug, Default)]
struct ByKind(Box<[(Box<str>, u64, KindEntry)]>);

impl ByKind {
    #[inline]
    fn get(&self, kind: &str) -> Option<&KindEntry> {
        let (k, head) = (kind.as_bytes(), head8(kind.as_bytes()));
        let same = |name: &[u8]| name.len() == k.len() && (k.len() <= 8 || name[8..] == k[8..]);
        self.0.iter().find(|(name, h, _)| *h == head && same(name.as_bytes())).map(|(_, _, e)| e)
    }

    fn entries_mut(&mut self) -> impl Iterator<Item = &mut KindEntry> {
        self.0.iter_mut().map(|(_, _, e)| e)
    }
}

/// Candidate rules per `kind` and per `tool` value, each list sorted by rule index.
#[derive(Clone, Debug, Default)]
struct Index {
    by_kind: ByKind,
    /// Rules with no kind or tool constraint: the candidates of an event whose kind has no list.
    any: Box<[u32]>,
    by_tool: FxHashMap<Box<str>, Box<[u32]>>,
}

impl Index {
    fn build(triggers: &[(usize, Trigger)], rules: &[Compiled], kind_field: Option<FieldId>) -> Index {
        let mut any = Vec::new();
        let mut kinds: BTreeMap<Box<str>, Vec<u32>> = BTreeMap::new();
        let mut tools: BTreeMap<Box<str>, Vec<u32>> = BTreeMap::new();
        for (r, t) in triggers {
            let r = *r as u32;
            match t {
                Trigger::Any => any.push(r),
                Trigger::Keys(ks) => {
                    for k in ks {
                        match k {
                            Key::Kind(v) => kinds.entry(v.clone()).or_default().push(r),
                            Key::Tool(v) => tools.entry(v.clone()).or_default().push(r),
                        }
                    }
                }
            }
        }
        let finish = |mut v: Vec<u32>| -> Box<[u32]> {
            v.sort_unstable();
            v.dedup();
            v.into()
        };
        let by_kind = kinds
            .into_iter()
            .map(|(k, v)| {
                let list = finish(v.into_iter().chain(any.iter().copied()).collect());
                let mut entry = KindEntry::default();
                let (mut rs, mut cs) = (Vec::new(), Vec::new());
                for r in list.iter() {
                    let conds = match kind_field {
                        Some(f) => rules[*r as usize].conds.specialize(f, &k),
                        None => rules[*r as usize].conds.clone(),
                    };
                    if !conds.never() {
                        let mut conds = conds;
                        conds.field_tests_first();
                        rs.push(*r);
                        cs.push(conds);
                    }
                }
                entry.rules = rs.into();
                entry.conds = cs.into();
                let head = head8(k.as_bytes());
                (k, head, entry)
            })
            .collect();
        Index {
            by_kind: ByKind(by_kind),
            by_tool: tools.into_iter().map(|(k, v)| (k, finish(v))).collect(),
            any: finish(any),
        }
    }
}

/// A compiled, immutable rule pack. `Send + Sync`: share it with `Arc` (see [`crate::PackHandle`]).
#[derive(Clone, Debug)]
pub struct Pack {
    infos: Vec<RuleInfo>,
    rules: Vec<Compiled>,
    index: Index,
    kind_field: Option<FieldId>,
    tool_field: Option<FieldId>,
    /// Fingerprint of each stateful rule's definition, by slot.
    slot_fps: Vec<u64>,
    fingerprint: u64,
}

impl Pack {
    /// Loads a pack from a directory (every `*.yaml` file directly in it, by name order; sub-directories
    /// such as `tests/` are not read) or from one file. Returns every problem found, each with its location.
    pub fn load_dir_or_file(path: &Path, schema: &Schema) -> Result<Pack, Diagnostics> {
        let files = read_yaml_files(path)?;
        Pack::load_sources(&files, schema)
    }

    /// Loads a pack from `(file name, text)` pairs (the compiled-in default pack uses this). Names are used
    /// in diagnostics and [`RuleInfo::file`].
    pub fn load_sources(files: &[(String, String)], schema: &Schema) -> Result<Pack, Diagnostics> {
        let mut l = Loader::new(schema, files);
        let mut rule_nodes = Vec::new();
        for (i, (_, text)) in files.iter().enumerate() {
            rule_nodes.extend(l.read_file(i, text));
        }
        let mut seen: BTreeMap<String, (usize, usize)> = BTreeMap::new();
        let mut infos = Vec::new();
        let mut rules = Vec::new();
        let mut slot_fps = Vec::new();
        for (file, node) in &rule_nodes {
            if let Some((info, mut compiled, fp)) = l.compile_rule(*file, node) {
                if let Some(&(f, line)) = seen.get(&info.id) {
                    let first = format!("{}:{}", l.files[f].0, line);
                    l.at(*file, node.pos, RuleError::Duplicate { what: "rule", name: info.id.clone(), first });
                    continue;
                }
                seen.insert(info.id.clone(), (*file, info.line));
                if !matches!(compiled.logic, Logic::Stateless) {
                    compiled.slot = slot_fps.len();
                    slot_fps.push(fp);
                }
                infos.push(info);
                rules.push(compiled);
            }
        }
        l.compile_unused_macros();
        if !l.diags.is_empty() {
            let mut d = std::mem::take(&mut l.diags);
            d.sort_by_key(|a| (a.0, a.1, a.2));
            return Err(Diagnostics(
                d.into_iter().map(|(f, line, col, e)| Diagnostic::new(l.files[f].0.clone(), line, col, e)).collect(),
            ));
        }
        let kind_field = schema.lookup("kind").map(|(id, _)| id);
        let tool_field = schema.lookup("tool").map(|(id, _)| id);
        let triggers: Vec<(usize, Trigger)> = rules
            .iter()
            .enumerate()
            .filter(|(i, _)| infos[*i].enabled)
            .map(|(i, r)| (i, trigger_of(r, kind_field, tool_field)))
            .collect();
        let mut fingerprint = fnv(b"vigil-pack");
        for fp in &slot_fps {
            fingerprint = fnv_more(fingerprint, &fp.to_le_bytes());
        }
        // The index is built from the conditions as written (its keys come from their first
        // conjuncts); then field tests go first, here and in the index.
        let mut index = Index::build(&triggers, &rules, kind_field);
        for r in &mut rules {
            r.conds.field_tests_first();
        }
        // Last: the rewritten leaves are for evaluation only.
        for r in &mut rules {
            r.conds.direct_leaves();
        }
        for e in index.by_kind.entries_mut() {
            e.conds.iter_mut().for_each(Conds::direct_leaves);
        }
        memo_list_lookups(&mut rules, &mut index, l.macros.len());
        Ok(Pack { index, infos, rules, kind_field, tool_field, slot_fps, fingerprint })
    }

    /// This pack with every list lookup searched each time it is asked (see [`memo_list_lookups`]): the
    /// reference that tests compare the memoised lookups with.
    #[cfg(test)]
    pub(crate) fn without_list_memo(&self) -> Pack {
        let mut p = self.clone();
        p.rules.iter_mut().flat_map(|r| r.conds.each_mut()).for_each(Cond::unmemo_list_lookups);
        for e in p.index.by_kind.entries_mut() {
            e.conds.iter_mut().flat_map(Conds::each_mut).for_each(Cond::unmemo_list_lookups);
        }
        p
    }

    /// Every rule of the pack, enabled or not, in file order (file names sorted, then order in the file).
    pub fn rules(&self) -> &[RuleInfo] {
        &self.infos
    }

    /// The index of rule `id` in [`Pack::rules`].
    pub fn rule_index(&self, id: &str) -> Option<usize> {
        self.infos.iter().position(|r| r.id == id)
    }

    /// Fingerprint of the stateful part of the pack (what [`RuleState`] is tied to).
    pub fn fingerprint(&self) -> u64 {
        self.fingerprint
    }

    /// Evaluates every enabled rule that could match `rec` (by the kind/tool index), appending matches to
    /// `out` in rule order. Advances the state of stateful rules. Allocates nothing unless a rule matches or
    /// a stateful rule starts tracking a new key.
    #[inline]
    pub fn evaluate(&self, rec: &dyn Record, state: &mut RuleState, out: &mut Vec<RuleMatch>) {
        let cx = Cx::new(rec);
        let (kind_list, spec): (&[u32], Option<&[Conds]>) =
            match self.kind_field.and_then(|f| rec.str(f)).and_then(|k| self.index.by_kind.get(k)) {
                Some(e) => (&e.rules, Some(&e.conds)),
                None => (&self.index.any, None),
            };
        // (The default pack indexes no rule by tool: then the tool is not even read.)
        let tool_list: &[u32] = match self.index.by_tool.is_empty() {
            true => &[],
            false => {
                self.tool_field.and_then(|f| rec.str(f)).and_then(|t| self.index.by_tool.get(t)).map_or(&[], |b| b)
            }
        };
        if tool_list.is_empty() {
            // The usual case (always, with the default pack): the kind's candidates alone, in rule order.
            match spec {
                Some(spec) => {
                    for (&r, conds) in kind_list.iter().zip(spec) {
                        self.eval_rule(r as usize, conds, &cx, state, out);
                    }
                }
                None => {
                    for &r in kind_list {
                        if let Some(rule) = self.rules.get(r as usize) {
                            self.eval_rule(r as usize, &rule.conds, &cx, state, out);
                        }
                    }
                }
            }
            return;
        }
        let (mut i, mut j) = (0, 0);
        loop {
            let (r, conds) = match (kind_list.get(i), tool_list.get(j)) {
                (Some(&a), Some(&b)) if a <= b => {
                    i += 1;
                    if a == b {
                        j += 1;
                    }
                    (a, spec.map(|s| &s[i - 1]))
                }
                (_, Some(&b)) => {
                    j += 1;
                    (b, None)
                }
                (Some(&a), None) => {
                    i += 1;
                    (a, spec.map(|s| &s[i - 1]))
                }
                (None, None) => break,
            };
            let r = r as usize;
            self.eval_rule(r, conds.unwrap_or(&self.rules[r].conds), &cx, state, out);
        }
    }

    /// Like [`Pack::evaluate`] but over every rule, disabled ones included, without the index. For rule
    /// tests (a disabled rule's cases still check its logic), not for the hot path.
    pub fn evaluate_all(&self, rec: &dyn Record, state: &mut RuleState, out: &mut Vec<RuleMatch>) {
        let cx = Cx::new(rec);
        for r in 0..self.rules.len() {
            self.eval_rule(r, &self.rules[r].conds, &cx, state, out);
        }
    }

    /// How many rules [`Pack::evaluate`] would test on `rec` (a measure of the index's selectivity).
    pub fn candidate_count(&self, rec: &dyn Record) -> usize {
        let kind_list: &[u32] = match self.kind_field.and_then(|f| rec.str(f)) {
            Some(k) => self.index.by_kind.get(k).map_or(&self.index.any, |e| &e.rules),
            None => &self.index.any,
        };
        let tool_list: &[u32] =
            self.tool_field.and_then(|f| rec.str(f)).and_then(|t| self.index.by_tool.get(t)).map_or(&[], |b| &**b);
        let mut all: Vec<u32> = kind_list.iter().chain(tool_list).copied().collect();
        all.sort_unstable();
        all.dedup();
        all.len()
    }

    /// Evaluates rule `r` with conditions `conds` on the record: its `when` here, in the candidate
    /// loop (most candidates stop at it), and the rest out of line in [`Pack::when_holds`].
    #[inline(always)]
    fn eval_rule(&self, r: usize, conds: &Conds, cx: &Cx<'_>, state: &mut RuleState, out: &mut Vec<RuleMatch>) {
        if conds.when.eval(cx) {
            self.when_holds(r, conds, cx, state, out);
        }
    }

    /// The rest of [`Pack::eval_rule`] once `when` holds: exceptions, then the rule's logic.
    #[inline(never)]
    fn when_holds(&self, r: usize, conds: &Conds, cx: &Cx<'_>, state: &mut RuleState, out: &mut Vec<RuleMatch>) {
        let rule = &self.rules[r];
        if conds.exceptions.as_ref().is_some_and(|e| e.eval(cx)) {
            return;
        }
        let at = SlotRef { pack: self.fingerprint, rule_fps: &self.slot_fps, slot: rule.slot };
        match &rule.logic {
            Logic::Stateless => out.push(RuleMatch {
                rule: r,
                group_key: String::new(),
                detail: rule.matched.to_string(),
                step_ts: vec![cx.rec.ts_ms()],
            }),
            Logic::Threshold(t) => {
                if let Some(m) = t.update(r, cx, state, at) {
                    out.push(m);
                }
            }
            Logic::Sequence(s) => {
                let idle = state.idle(&at);
                let (mask, until) = Sequence::classify(&conds.steps, conds.until.as_ref(), idle, cx);
                if mask == 0 && !until {
                    return;
                }
                if let Some(m) = s.update(r, cx, mask, until, state, at) {
                    out.push(m);
                }
            }
        }
    }

    /// The title of rule `rule` with its `{field}` placeholders filled from `rec` (`?` for a missing field;
    /// values cut at 64 characters).
    pub fn title(&self, rule: usize, rec: &dyn Record) -> String {
        let Some(c) = self.rules.get(rule) else {
            return String::new();
        };
        let cx = Cx::new(rec);
        let mut s = String::new();
        for p in &c.title {
            match p {
                TitlePart::Lit(l) => s.push_str(l),
                TitlePart::Field(op) => {
                    let mut v = String::new();
                    if !op.render(&cx, &mut v) {
                        v.push('?');
                    }
                    let clean: String = v.chars().map(|c| if c.is_control() { ' ' } else { c }).take(64).collect();
                    s.push_str(&clean);
                    if v.chars().count() > 64 {
                        s.push('…');
                    }
                }
            }
        }
        s
    }
}

/// Gives every list lookup (`field in list`) that appears more than once in the pack a memo slot of its
/// own, after the macros' slots, so that a record searches the list for that field once (see
/// [`Cond::memo_list_lookups`]). Lookups beyond the free slots stay as they are.
fn memo_list_lookups(rules: &mut [Compiled], index: &mut Index, macros: usize) {
    type Key = (FieldId, *const ListSet);
    let mut seen: BTreeMap<Key, usize> = BTreeMap::new();
    let mut count = |id: FieldId, set: &Arc<ListSet>| *seen.entry((id, Arc::as_ptr(set))).or_default() += 1;
    for c in rules.iter().flat_map(|r| r.conds.each()) {
        c.each_list_lookup(&mut count);
    }
    let mut slots: BTreeMap<Key, u8> = BTreeMap::new();
    // `seen` is ordered by field and address: which lookup gets which slot does not matter, as each
    // slot only ever holds its own lookup's result.
    for (key, n) in seen {
        let next = macros + slots.len();
        if n > 1 && next < MEMO_SLOTS {
            slots.insert(key, next as u8);
        }
    }
    let slot_of = |id: FieldId, set: &Arc<ListSet>| slots.get(&(id, Arc::as_ptr(set))).copied();
    for c in rules.iter_mut().flat_map(|r| r.conds.each_mut()) {
        c.memo_list_lookups(&slot_of);
    }
    for e in index.by_kind.entries_mut() {
        for c in e.conds.iter_mut().flat_map(Conds::each_mut) {
            c.memo_list_lookups(&slot_of);
        }
    }
}

fn trigger_of(r: &Compiled, kind: Option<FieldId>, tool: Option<FieldId>) -> Trigger {
    let when = Trigger::of(&r.conds.when, kind, tool);
    match (&r.logic, &when) {
        (Logic::Sequence(s), Trigger::Any) => {
            Trigger::union(s.steps.iter().chain(s.until.iter()).map(|c| Trigger::of(c, kind, tool)))
        }
        _ => when,
    }
}

/// Reads the `.yaml` files of a pack directory (by name order), or one file, as `(name, text)` pairs
/// for [`Pack::load_sources`] (a watcher compares them to decide whether to recompile).
pub fn read_yaml_files(path: &Path) -> Result<Vec<(String, String)>, Diagnostics> {
    let name = path.display().to_string();
    let io = |n: String, e: String| Diagnostics(vec![Diagnostic::new(n, 0, 0, RuleError::Io(e))]);
    let meta = std::fs::metadata(path).map_err(|e| io(name.clone(), e.to_string()))?;
    let mut paths = Vec::new();
    if meta.is_dir() {
        let rd = std::fs::read_dir(path).map_err(|e| io(name.clone(), e.to_string()))?;
        for entry in rd {
            let entry = entry.map_err(|e| io(name.clone(), e.to_string()))?;
            let p = entry.path();
            if p.is_file() && p.extension().is_some_and(|x| x == "yaml") {
                paths.push(p);
            }
        }
        paths.sort();
        if paths.is_empty() {
            return Err(Diagnostics(vec![Diagnostic::new(name, 0, 0, RuleError::Empty)]));
        }
    } else {
        paths.push(path.to_path_buf());
    }
    let mut files = Vec::new();
    let mut diags = Vec::new();
    for p in paths {
        let n = p.display().to_string();
        match std::fs::read(&p) {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(t) => files.push((n, t)),
                Err(_) => diags.push(Diagnostic::new(n, 0, 0, RuleError::Io("not valid UTF-8".into()))),
            },
            Err(e) => diags.push(Diagnostic::new(n, 0, 0, RuleError::Io(e.to_string()))),
        }
    }
    if diags.is_empty() {
        Ok(files)
    } else {
        Err(Diagnostics(diags))
    }
}

/// The entries of a mapping node.
pub(crate) fn entries(n: &Node) -> Option<&[(Node, Node)]> {
    match &n.kind {
        NodeKind::Map(es) => Some(es),
        _ => None,
    }
}

/// The value of key `k` in mapping entries.
pub(crate) fn get<'a>(es: &'a [(Node, Node)], k: &str) -> Option<&'a Node> {
    es.iter().find(|(key, _)| key.as_str() == Some(k)).map(|(_, v)| v)
}

/// Whether `s` can be referenced from a condition as a list or macro name.
fn is_ident(s: &str) -> bool {
    let mut c = s.chars();
    c.next().is_some_and(|f| f.is_ascii_alphabetic() || f == '_')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_')
        && !matches!(s, "true" | "false" | "in" | "has" | "lower")
}

struct ListDef {
    file: usize,
    pos: Pos,
    items: Vec<String>,
}

struct MacroDef {
    file: usize,
    pos: Pos,
    node: Node,
}

enum MacroState {
    InProgress,
    Done(Option<Box<Cond>>),
}

/// Diagnostics as (file index, line, column, error).
type Diag = (usize, usize, usize, RuleError);

/// Shared by pack and case-file loading: diagnostics with file positions.
pub(crate) struct Reporter<'f> {
    pub files: Vec<(String, Source)>,
    pub diags: Vec<Diag>,
    _p: std::marker::PhantomData<&'f ()>,
}

impl Reporter<'_> {
    pub(crate) fn new(files: &[(String, String)]) -> Self {
        Reporter {
            files: files.iter().map(|(n, t)| (n.clone(), Source::new(t))).collect(),
            diags: Vec::new(),
            _p: std::marker::PhantomData,
        }
    }

    pub(crate) fn at(&mut self, file: usize, pos: Pos, e: RuleError) {
        self.diags.push((file, pos.line, pos.col, e));
    }

    pub(crate) fn at_offset(&mut self, file: usize, node: &Node, offset: usize, e: RuleError) {
        let (line, col) = self.files[file].1.locate(node, offset);
        self.diags.push((file, line, col, e));
    }

    /// Checks that mapping entries only use `allowed` keys, each once.
    pub(crate) fn check_keys(
        &mut self,
        file: usize,
        es: &[(Node, Node)],
        allowed: &'static [&'static str],
        item: &'static str,
    ) {
        let mut seen: Vec<&str> = Vec::new();
        for (k, _) in es {
            let Some(name) = k.as_str() else {
                self.at(file, k.pos, RuleError::Structure(format!("keys of a {item} must be strings")));
                continue;
            };
            if !allowed.contains(&name) {
                let h = hint(closest(name, allowed.iter().copied()));
                self.at(
                    file,
                    k.pos,
                    RuleError::UnknownKey { key: name.to_string(), item, hint: h, expected: allowed.join(", ") },
                );
            } else if seen.contains(&name) {
                self.at(file, k.pos, RuleError::Structure(format!("duplicate key `{name}` in {item}")));
            }
            seen.push(name);
        }
    }

    /// A string scalar, or a diagnostic.
    pub(crate) fn string<'n>(&mut self, file: usize, n: &'n Node, key: &'static str) -> Option<&'n str> {
        match n.as_str() {
            Some(s) => Some(s),
            None => {
                self.at(
                    file,
                    n.pos,
                    RuleError::InvalidValue { key, message: format!("expected a string, found {}", n.what()) },
                );
                None
            }
        }
    }

    /// A list of string scalars (a single scalar counts as a one-item list), or a diagnostic.
    pub(crate) fn strings<'n>(&mut self, file: usize, n: &'n Node, key: &'static str) -> Option<Vec<(&'n str, Pos)>> {
        match &n.kind {
            NodeKind::Seq(items) => {
                let mut out = Vec::new();
                let mut ok = true;
                for it in items {
                    match it.as_str() {
                        Some(s) => out.push((s, it.pos)),
                        None => {
                            ok = false;
                            self.at(
                                file,
                                it.pos,
                                RuleError::InvalidValue {
                                    key,
                                    message: format!("items must be strings, found {}", it.what()),
                                },
                            );
                        }
                    }
                }
                ok.then_some(out)
            }
            NodeKind::Scalar(s, _) if n.is_null() => {
                let _ = s;
                Some(Vec::new())
            }
            NodeKind::Scalar(s, _) => Some(vec![(s.as_str(), n.pos)]),
            NodeKind::Map(_) => {
                self.at(
                    file,
                    n.pos,
                    RuleError::InvalidValue { key, message: "expected a list, found a mapping".into() },
                );
                None
            }
        }
    }
}

const LIST_KEYS: &[&str] = &["list", "items", "description"];
const MACRO_KEYS: &[&str] = &["macro", "condition", "description"];
const RULE_KEYS: &[&str] = &[
    "rule",
    "title",
    "description",
    "severity",
    "tags",
    "action",
    "enabled",
    "when",
    "exceptions",
    "threshold",
    "sequence",
];
const THRESHOLD_KEYS: &[&str] = &["count", "distinct", "sum", "by", "window"];
const SEQUENCE_KEYS: &[&str] = &["steps", "until", "by", "window"];

/// Largest window a stateful rule may use.
const MAX_WINDOW_MS: i64 = 7 * 86_400_000;

struct Loader<'s> {
    schema: &'s Schema,
    rep: Reporter<'s>,
    files: Vec<(String, ())>,
    diags: Vec<Diag>,
    lists: BTreeMap<String, ListDef>,
    list_sets: FxHashMap<String, Arc<ListSet>>,
    macros: BTreeMap<String, MacroDef>,
    macro_state: FxHashMap<String, MacroState>,
}

impl Names for Loader<'_> {
    fn schema(&self) -> &Schema {
        self.schema
    }

    fn list(&mut self, name: &str) -> Option<Arc<ListSet>> {
        if let Some(s) = self.list_sets.get(name) {
            return Some(s.clone());
        }
        let def = self.lists.get(name)?;
        let set = Arc::new(ListSet::new(def.items.iter().map(String::as_str)));
        self.list_sets.insert(name.to_string(), set.clone());
        Some(set)
    }

    fn list_names(&self) -> Vec<&str> {
        self.lists.keys().map(String::as_str).collect()
    }

    fn macro_cond(&mut self, name: &str) -> Option<Result<Cond, Option<RuleError>>> {
        match self.macro_state.get(name) {
            Some(MacroState::InProgress) => return Some(Err(Some(RuleError::MacroCycle(name.to_string())))),
            Some(MacroState::Done(Some(c))) => return Some(Ok((**c).clone())),
            Some(MacroState::Done(None)) => return Some(Err(None)),
            None => {}
        }
        let (file, node) = {
            let def = self.macros.get(name)?;
            (def.file, def.node.clone())
        };
        self.macro_state.insert(name.to_string(), MacroState::InProgress);
        let slot = self.macros.keys().position(|k| k == name).filter(|&i| i < MEMO_SLOTS).map_or(NO_MEMO, |i| i as u8);
        let c = self.condition(file, &node, "condition").map(|(c, _)| Cond::Macro(slot, Box::new(c)));
        let result = match &c {
            Some(c) => Ok(c.clone()),
            None => Err(None),
        };
        self.macro_state.insert(name.to_string(), MacroState::Done(c.map(Box::new)));
        Some(result)
    }

    fn macro_names(&self) -> Vec<&str> {
        self.macros.keys().map(String::as_str).collect()
    }
}

impl<'s> Loader<'s> {
    fn new(schema: &'s Schema, files: &[(String, String)]) -> Self {
        Loader {
            schema,
            rep: Reporter::new(files),
            files: files.iter().map(|(n, _)| (n.clone(), ())).collect(),
            diags: Vec::new(),
            lists: BTreeMap::new(),
            list_sets: FxHashMap::default(),
            macros: BTreeMap::new(),
            macro_state: FxHashMap::default(),
        }
    }

    fn flush(&mut self) {
        self.diags.append(&mut self.rep.diags);
    }

    fn at(&mut self, file: usize, pos: Pos, e: RuleError) {
        self.rep.at(file, pos, e);
        self.flush();
    }

    /// First pass over one file: collects lists and macros, returns rule nodes for the second pass.
    fn read_file(&mut self, file: usize, text: &str) -> Vec<(usize, Node)> {
        let mut rules = Vec::new();
        let docs = match yaml::parse(text) {
            Ok(d) => d,
            Err(e) => {
                self.at(file, e.pos, RuleError::Yaml(e.message));
                return rules;
            }
        };
        for doc in docs {
            // A file holding only comments (or an explicit null) has no items: a valid, empty file.
            if matches!(&doc.kind, NodeKind::Scalar(s, Style::Plain) if s.is_empty() || s == "~" || s == "null") {
                continue;
            }
            let NodeKind::Seq(items) = doc.kind else {
                self.at(
                    file,
                    doc.pos,
                    RuleError::Structure(
                        "a rule file is a list of items (`- rule: ...`, `- list: ...`, `- macro: ...`)".into(),
                    ),
                );
                continue;
            };
            for item in items {
                let Some(es) = entries(&item) else {
                    self.at(
                        file,
                        item.pos,
                        RuleError::Structure(format!(
                            "expected an item (`- rule: ID`, `- list: NAME` or `- macro: NAME`), found {}",
                            item.what()
                        )),
                    );
                    continue;
                };
                let kinds: Vec<&str> = ["rule", "list", "macro"].into_iter().filter(|k| get(es, k).is_some()).collect();
                match kinds.as_slice() {
                    ["rule"] => rules.push((file, item.clone())),
                    ["list"] => self.read_list(file, &item),
                    ["macro"] => self.read_macro(file, &item),
                    [] => self.at(
                        file,
                        item.pos,
                        RuleError::Structure("item has none of the keys `rule`, `list`, `macro`".into()),
                    ),
                    _ => self.at(
                        file,
                        item.pos,
                        RuleError::Structure(format!(
                            "item has more than one of the keys {}",
                            kinds.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ")
                        )),
                    ),
                }
            }
        }
        rules
    }

    fn def_name(&mut self, file: usize, n: &Node, what: &'static str) -> Option<String> {
        let name = self.rep.string(file, n, what)?.to_string();
        self.flush();
        if !is_ident(&name) {
            self.at(
                file,
                n.pos,
                RuleError::InvalidValue {
                    key: what,
                    message: format!(
                        "`{name}` is not a valid {what} name (letters, digits and `_`, not starting with a digit)"
                    ),
                },
            );
            return None;
        }
        let first =
            self.lists.get(&name).map(|d| (d.file, d.pos)).or_else(|| self.macros.get(&name).map(|d| (d.file, d.pos)));
        if let Some((f, p)) = first {
            let first = format!("{}:{}", self.files[f].0, p.line);
            self.at(file, n.pos, RuleError::Duplicate { what, name, first });
            return None;
        }
        if self.schema.resolve(&name).is_some() {
            self.at(
                file,
                n.pos,
                RuleError::InvalidValue {
                    key: what,
                    message: format!("`{name}` is a field name; pick another {what} name"),
                },
            );
            return None;
        }
        Some(name)
    }

    fn read_list(&mut self, file: usize, item: &Node) {
        let Some(es) = entries(item) else { return };
        self.rep.check_keys(file, es, LIST_KEYS, "list");
        self.flush();
        let Some(name_node) = get(es, "list") else { return };
        let name = self.def_name(file, name_node, "list");
        let items = match get(es, "items") {
            Some(n) => self.rep.strings(file, n, "items"),
            None => {
                self.rep.at(file, item.pos, RuleError::MissingKey { key: "items", item: "list" });
                None
            }
        };
        self.flush();
        if let (Some(name), Some(items)) = (name, items) {
            self.lists.insert(
                name,
                ListDef { file, pos: name_node.pos, items: items.into_iter().map(|(s, _)| s.to_string()).collect() },
            );
        }
    }

    fn read_macro(&mut self, file: usize, item: &Node) {
        let Some(es) = entries(item) else { return };
        self.rep.check_keys(file, es, MACRO_KEYS, "macro");
        self.flush();
        let Some(name_node) = get(es, "macro") else { return };
        let name = self.def_name(file, name_node, "macro");
        let cond = get(es, "condition");
        if cond.is_none() {
            self.at(file, item.pos, RuleError::MissingKey { key: "condition", item: "macro" });
        }
        if let (Some(name), Some(cond)) = (name, cond) {
            self.macros.insert(name, MacroDef { file, pos: name_node.pos, node: cond.clone() });
        }
    }

    /// Compiles macros no rule used, so their errors are reported too.
    fn compile_unused_macros(&mut self) {
        let names: Vec<String> = self.macros.keys().cloned().collect();
        for n in names {
            let _ = self.macro_cond(&n);
        }
    }

    /// Parses and compiles the condition in scalar `node`.
    fn condition(&mut self, file: usize, node: &Node, key: &'static str) -> Option<(Cond, String)> {
        let text = match &node.kind {
            NodeKind::Scalar(s, _) => s.clone(),
            _ => {
                self.at(
                    file,
                    node.pos,
                    RuleError::InvalidValue {
                        key,
                        message: format!("expected a condition (a string), found {}", node.what()),
                    },
                );
                return None;
            }
        };
        let e = match expr::parse(&text) {
            Ok(e) => e,
            Err(se) => {
                self.rep.at_offset(file, node, se.offset, RuleError::Syntax(se.message));
                self.flush();
                return None;
            }
        };
        let mut c = Compiler { names: self, errors: Vec::new() };
        let r = c.cond(&e);
        let errors = std::mem::take(&mut c.errors);
        let failed = r.is_err() || !errors.is_empty();
        for (off, err) in errors {
            self.rep.at_offset(file, node, off, err);
        }
        self.flush();
        if failed {
            None
        } else {
            r.ok().map(|c| (c, text))
        }
    }

    fn field_list(&mut self, file: usize, n: &Node, key: &'static str) -> Option<GroupBy> {
        let names = self.rep.strings(file, n, key);
        self.flush();
        let names = names?;
        let mut by = GroupBy::default();
        let mut ok = true;
        for (name, pos) in names {
            match Compiler::field_operand(self.schema, name) {
                Ok((op, _)) => {
                    by.fields.push(op);
                    by.names.push(name.to_string());
                }
                Err(e) => {
                    self.at(file, pos, e);
                    ok = false;
                }
            }
        }
        ok.then_some(by)
    }

    fn window(&mut self, file: usize, es: &[(Node, Node)], parent: &Node, item: &'static str) -> Option<i64> {
        let Some(n) = get(es, "window") else {
            self.at(file, parent.pos, RuleError::MissingKey { key: "window", item });
            return None;
        };
        let s = self.rep.string(file, n, "window");
        self.flush();
        match s.and_then(parse_duration_ms) {
            Some(ms) if ms <= MAX_WINDOW_MS => Some(ms),
            Some(_) => {
                self.at(file, n.pos, RuleError::InvalidValue { key: "window", message: "at most 7d".into() });
                None
            }
            None => {
                if s.is_some() {
                    self.at(
                        file,
                        n.pos,
                        RuleError::InvalidValue {
                            key: "window",
                            message: "expected a duration such as `30s`, `10m`, `1h` (a bare number is seconds)".into(),
                        },
                    );
                }
                None
            }
        }
    }

    fn title(&mut self, file: usize, node: &Node, text: &str) -> Option<Vec<TitlePart>> {
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut ok = true;
        let mut it = text.char_indices().peekable();
        while let Some((i, c)) = it.next() {
            match c {
                '{' if it.peek().map(|x| x.1) == Some('{') => {
                    it.next();
                    lit.push('{');
                }
                '}' if it.peek().map(|x| x.1) == Some('}') => {
                    it.next();
                    lit.push('}');
                }
                '{' => {
                    let rest = &text[i + 1..];
                    let Some(end) = rest.find('}') else {
                        self.rep.at_offset(
                            file,
                            node,
                            i,
                            RuleError::InvalidValue {
                                key: "title",
                                message: "unclosed `{` (write `{{` for a literal brace)".into(),
                            },
                        );
                        ok = false;
                        break;
                    };
                    let name = rest[..end].trim();
                    match Compiler::field_operand(self.schema, name) {
                        Ok((op, _)) => {
                            if !lit.is_empty() {
                                parts.push(TitlePart::Lit(std::mem::take(&mut lit)));
                            }
                            parts.push(TitlePart::Field(op));
                        }
                        Err(e) => {
                            self.rep.at_offset(file, node, i + 1, e);
                            ok = false;
                        }
                    }
                    for _ in 0..rest[..end].chars().count() + 1 {
                        it.next();
                    }
                }
                c => lit.push(c),
            }
        }
        self.flush();
        if !lit.is_empty() {
            parts.push(TitlePart::Lit(lit));
        }
        ok.then_some(parts)
    }

    /// Second pass: compiles one rule. Returns its info, compiled form and state fingerprint.
    fn compile_rule(&mut self, file: usize, item: &Node) -> Option<(RuleInfo, Compiled, u64)> {
        let es = entries(item)?;
        self.rep.check_keys(file, es, RULE_KEYS, "rule");
        self.flush();
        let mut ok = true;
        let id_node = get(es, "rule")?;
        let id = self.rep.string(file, id_node, "rule").map(str::to_string);
        self.flush();
        let id = match id {
            Some(id) if !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c)) => id,
            Some(id) => {
                self.at(
                    file,
                    id_node.pos,
                    RuleError::InvalidValue {
                        key: "rule",
                        message: format!("`{id}` is not a valid rule id (letters, digits, `-`, `_`, `.`, `:`)"),
                    },
                );
                ok = false;
                id
            }
            None => return None,
        };
        let required = |l: &mut Self, key: &'static str| -> Option<&Node> {
            let n = get(es, key);
            if n.is_none() {
                l.at(file, item.pos, RuleError::MissingKey { key, item: "rule" });
            }
            n
        };
        let description = match required(self, "description") {
            Some(n) => {
                let s = self.rep.string(file, n, "description").map(str::to_string);
                self.flush();
                match s {
                    Some(s) if !s.trim().is_empty() => s,
                    Some(_) => {
                        self.at(
                            file,
                            n.pos,
                            RuleError::InvalidValue { key: "description", message: "must not be empty".into() },
                        );
                        ok = false;
                        String::new()
                    }
                    None => {
                        ok = false;
                        String::new()
                    }
                }
            }
            None => {
                ok = false;
                String::new()
            }
        };
        let severity = match required(self, "severity") {
            Some(n) => match n.as_str().and_then(Severity::parse) {
                Some(s) => s,
                None => {
                    self.at(
                        file,
                        n.pos,
                        RuleError::InvalidValue {
                            key: "severity",
                            message: format!("expected one of low, medium, high, critical, found {}", shown(n)),
                        },
                    );
                    ok = false;
                    Severity::Low
                }
            },
            None => {
                ok = false;
                Severity::Low
            }
        };
        let action = match get(es, "action") {
            None => Action::Notify,
            Some(n) => match n.as_str().and_then(Action::parse) {
                Some(a) => a,
                None => {
                    self.at(
                        file,
                        n.pos,
                        RuleError::InvalidValue {
                            key: "action",
                            message: format!("expected one of none, notify, contain, kill, found {}", shown(n)),
                        },
                    );
                    ok = false;
                    Action::Notify
                }
            },
        };
        let enabled = match get(es, "enabled") {
            None => true,
            Some(n) => match n.as_str() {
                Some("true") => true,
                Some("false") => false,
                _ => {
                    self.at(
                        file,
                        n.pos,
                        RuleError::InvalidValue { key: "enabled", message: "expected true or false".into() },
                    );
                    ok = false;
                    true
                }
            },
        };
        let tags = match get(es, "tags") {
            None => Vec::new(),
            Some(n) => {
                let t = self.rep.strings(file, n, "tags");
                self.flush();
                match t {
                    Some(t) => t.into_iter().map(|(s, _)| s.to_string()).collect(),
                    None => {
                        ok = false;
                        Vec::new()
                    }
                }
            }
        };
        let title_text = match get(es, "title") {
            None => id.clone(),
            Some(n) => {
                let s = self.rep.string(file, n, "title").map(str::to_string);
                self.flush();
                s.unwrap_or_else(|| {
                    ok = false;
                    id.clone()
                })
            }
        };
        let title = match get(es, "title") {
            Some(n) if n.as_str().is_some() => self.title(file, n, &title_text),
            _ => Some(vec![TitlePart::Lit(title_text.clone())]),
        };
        ok &= title.is_some();

        let threshold = get(es, "threshold");
        let sequence = get(es, "sequence");
        if let (Some(_), Some(s)) = (threshold, sequence) {
            self.at(file, s.pos, RuleError::Structure("a rule has either `threshold` or `sequence`, not both".into()));
            ok = false;
        }
        let when_node = get(es, "when");
        let (when, when_text) = match when_node {
            Some(n) => match self.condition(file, n, "when") {
                Some(c) => c,
                None => {
                    ok = false;
                    (Cond::Const(false), String::new())
                }
            },
            None if sequence.is_some() => (Cond::Const(true), String::new()),
            None => {
                self.at(file, item.pos, RuleError::MissingKey { key: "when", item: "rule" });
                ok = false;
                (Cond::Const(false), String::new())
            }
        };
        let mut exception_texts = Vec::new();
        let exceptions = match get(es, "exceptions") {
            None => None,
            Some(n) => match &n.kind {
                NodeKind::Seq(items) => {
                    let mut cs = Vec::new();
                    for it in items {
                        match self.condition(file, it, "exceptions") {
                            Some((c, t)) => {
                                cs.push(c);
                                exception_texts.push(t);
                            }
                            None => ok = false,
                        }
                    }
                    (!cs.is_empty()).then(|| Cond::Or(cs.into()))
                }
                _ if n.is_null() => None,
                _ => {
                    self.at(
                        file,
                        n.pos,
                        RuleError::InvalidValue { key: "exceptions", message: "expected a list of conditions".into() },
                    );
                    ok = false;
                    None
                }
            },
        };

        let mut spec_text = String::new();
        let (logic, kind) = if let Some(t) = threshold {
            match self.threshold(file, t, &when_text, &mut spec_text) {
                Some(th) => (Logic::Threshold(Box::new(th)), RuleKind::Threshold),
                None => {
                    ok = false;
                    (Logic::Stateless, RuleKind::Threshold)
                }
            }
        } else if let Some(s) = sequence {
            match self.sequence(file, s, &mut spec_text) {
                Some(sq) => (Logic::Sequence(Box::new(sq)), RuleKind::Sequence),
                None => {
                    ok = false;
                    (Logic::Stateless, RuleKind::Sequence)
                }
            }
        } else {
            (Logic::Stateless, RuleKind::Stateless)
        };
        if !ok {
            return None;
        }
        let mut fp = fnv(id.as_bytes());
        for t in std::iter::once(&when_text).chain(exception_texts.iter()) {
            fp = fnv_more(fp, t.as_bytes());
        }
        fp = fnv_more(fp, spec_text.as_bytes());
        let info = RuleInfo {
            id,
            title: title_text,
            description,
            severity,
            tags,
            action,
            enabled,
            kind,
            when: when_text,
            file: self.files[file].0.clone(),
            line: id_node.pos.line,
        };
        let (steps, until) = match &logic {
            Logic::Sequence(s) => (s.steps.clone().into(), s.until.clone()),
            _ => (Box::default(), None),
        };
        let compiled = Compiled {
            conds: Conds { when, exceptions, steps, until },
            logic,
            title: title.unwrap_or_default(),
            matched: format!("matched `{}`", info.when).into(),
            slot: 0,
        };
        Some((info, compiled, fp))
    }

    fn threshold(&mut self, file: usize, n: &Node, when_text: &str, spec: &mut String) -> Option<Threshold> {
        let Some(es) = entries(n) else {
            self.at(
                file,
                n.pos,
                RuleError::InvalidValue {
                    key: "threshold",
                    message: format!("expected a mapping, found {}", n.what()),
                },
            );
            return None;
        };
        self.rep.check_keys(file, es, THRESHOLD_KEYS, "threshold");
        self.flush();
        let mut ok = true;
        let count = match get(es, "count") {
            None => {
                self.at(file, n.pos, RuleError::MissingKey { key: "count", item: "threshold" });
                None
            }
            Some(c) => match c.as_str().and_then(|s| s.trim().parse::<f64>().ok()) {
                Some(x) if x.is_finite() && (1.0..=1e15).contains(&x) => Some(x),
                _ => {
                    self.at(
                        file,
                        c.pos,
                        RuleError::InvalidValue { key: "count", message: "expected a number of at least 1".into() },
                    );
                    None
                }
            },
        };
        let window = self.window(file, es, n, "threshold");
        let by = match get(es, "by") {
            Some(b) => self.field_list(file, b, "by"),
            None => Some(GroupBy::default()),
        };
        let distinct = get(es, "distinct");
        let sum = get(es, "sum");
        let measure = match (distinct, sum) {
            (Some(_), Some(s)) => {
                self.at(file, s.pos, RuleError::Structure("a threshold has `distinct` or `sum`, not both".into()));
                None
            }
            (Some(d), None) => {
                let name = self.rep.string(file, d, "distinct").map(str::to_string);
                self.flush();
                match name.map(|nm| (Compiler::field_operand(self.schema, &nm), nm)) {
                    Some((Ok((op, _)), nm)) => {
                        if count.is_some_and(|c| c > MAX_DISTINCT as f64) {
                            self.at(
                                file,
                                d.pos,
                                RuleError::InvalidValue {
                                    key: "count",
                                    message: format!("a distinct count threshold is at most {MAX_DISTINCT}"),
                                },
                            );
                            ok = false;
                        }
                        Some(Measure::Distinct(op, nm))
                    }
                    Some((Err(e), _)) => {
                        self.at(file, d.pos, e);
                        None
                    }
                    None => None,
                }
            }
            (None, Some(s)) => {
                let names = self.rep.strings(file, s, "sum");
                self.flush();
                match names {
                    Some(names) if !names.is_empty() => {
                        let mut ops = Vec::new();
                        let mut ns = Vec::new();
                        for (nm, pos) in names {
                            match Compiler::field_operand(self.schema, nm) {
                                Ok((_, Some(t))) if t != FieldType::Num => {
                                    self.at(
                                        file,
                                        pos,
                                        RuleError::Type(format!(
                                            "`sum` needs numeric fields; `{nm}` is a {}",
                                            t.name()
                                        )),
                                    );
                                    ok = false;
                                }
                                Ok((op, _)) => {
                                    ops.push(op);
                                    ns.push(nm.to_string());
                                }
                                Err(e) => {
                                    self.at(file, pos, e);
                                    ok = false;
                                }
                            }
                        }
                        Some(Measure::Sum(ops, ns))
                    }
                    Some(_) => {
                        self.at(
                            file,
                            s.pos,
                            RuleError::InvalidValue { key: "sum", message: "expected at least one field".into() },
                        );
                        None
                    }
                    None => None,
                }
            }
            (None, None) => Some(Measure::Count),
        };
        let (count, window, by, measure) = (count?, window?, by?, measure?);
        if !ok {
            return None;
        }
        spec.push_str(&format!(
            "threshold count={count} window={window} by={:?} measure={}",
            by.names,
            match &measure {
                Measure::Count => "count".to_string(),
                Measure::Distinct(_, n) => format!("distinct {n}"),
                Measure::Sum(_, ns) => format!("sum {ns:?}"),
            }
        ));
        Some(Threshold { count, measure, by, window_ms: window, when_text: when_text.to_string() })
    }

    fn sequence(&mut self, file: usize, n: &Node, spec: &mut String) -> Option<Sequence> {
        let Some(es) = entries(n) else {
            self.at(
                file,
                n.pos,
                RuleError::InvalidValue { key: "sequence", message: format!("expected a mapping, found {}", n.what()) },
            );
            return None;
        };
        self.rep.check_keys(file, es, SEQUENCE_KEYS, "sequence");
        self.flush();
        let window = self.window(file, es, n, "sequence");
        let by = match get(es, "by") {
            Some(b) => self.field_list(file, b, "by"),
            None => Some(GroupBy::default()),
        };
        let mut ok = true;
        let mut steps = Vec::new();
        let mut texts = Vec::new();
        match get(es, "steps") {
            None => {
                self.at(file, n.pos, RuleError::MissingKey { key: "steps", item: "sequence" });
                ok = false;
            }
            Some(s) => match &s.kind {
                NodeKind::Seq(items) if (2..=MAX_STEPS).contains(&items.len()) => {
                    for it in items {
                        match self.condition(file, it, "steps") {
                            Some((c, t)) => {
                                steps.push(c);
                                texts.push(t);
                            }
                            None => ok = false,
                        }
                    }
                }
                _ => {
                    self.at(
                        file,
                        s.pos,
                        RuleError::InvalidValue {
                            key: "steps",
                            message: format!("expected a list of 2 to {MAX_STEPS} conditions"),
                        },
                    );
                    ok = false;
                }
            },
        }
        let until = match get(es, "until") {
            None => None,
            Some(u) => match self.condition(file, u, "until") {
                Some((c, t)) => {
                    texts.push(format!("until {t}"));
                    Some(c)
                }
                None => {
                    ok = false;
                    None
                }
            },
        };
        let (window, by) = (window?, by?);
        if !ok {
            return None;
        }
        spec.push_str(&format!("sequence window={window} by={:?} steps={texts:?}", by.names));
        Some(Sequence { steps, until, by, window_ms: window })
    }
}

/// A node as an error message shows it: a scalar quoted, anything else by its kind.
fn shown(n: &Node) -> String {
    match n.as_str() {
        Some(s) => format!("{s:?}"),
        None => n.what().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::Dynamic;

    pub(crate) fn schema() -> Schema {
        let mut s = Schema::new();
        for (n, t) in [
            ("kind", FieldType::Str),
            ("tool", FieldType::Str),
            ("dest.host", FieldType::Str),
            ("op", FieldType::Str),
            ("outcome", FieldType::Str),
            ("session_id", FieldType::Str),
            ("path", FieldType::Str),
            ("agent", FieldType::Str),
            ("bytes_out", FieldType::Num),
            ("tokens.input", FieldType::Num),
            ("score.entropy", FieldType::Num),
            ("privileged", FieldType::Bool),
        ] {
            s.field(n, t);
        }
        s.dynamic_prefix("attrs.");
        s
    }

    /// A record: field name -> string/number/bool, plus a ts.
    struct R {
        ts: i64,
        f: Vec<(&'static str, Dynamic<'static>)>,
        names: Vec<String>,
    }

    fn rec(ts: i64, f: Vec<(&'static str, Dynamic<'static>)>) -> R {
        R { ts, f, names: schema().fields().map(|(_, n, _)| n.to_string()).collect() }
    }

    impl R {
        fn get(&self, id: FieldId) -> Option<Dynamic<'static>> {
            let n = self.names.get(id.index())?;
            self.f.iter().find(|(k, _)| k == n).map(|(_, v)| *v)
        }
    }

    impl Record for R {
        fn str(&self, f: FieldId) -> Option<&str> {
            match self.get(f) {
                Some(Dynamic::Str(s)) => Some(s),
                _ => None,
            }
        }
        fn num(&self, f: FieldId) -> Option<f64> {
            match self.get(f) {
                Some(Dynamic::Num(s)) => Some(s),
                _ => None,
            }
        }
        fn boolean(&self, f: FieldId) -> Option<bool> {
            match self.get(f) {
                Some(Dynamic::Bool(s)) => Some(s),
                _ => None,
            }
        }
        fn dynamic(&self, p: &str, n: &str) -> Option<Dynamic<'_>> {
            let full = format!("{p}{n}");
            self.f.iter().find(|(k, _)| *k == full).map(|(_, v)| *v)
        }
        fn ts_ms(&self) -> i64 {
            self.ts
        }
    }

    use Dynamic::{Num as N, Str as S};

    fn load(files: &[(&str, &str)]) -> Result<Pack, Diagnostics> {
        let files: Vec<(String, String)> = files.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
        Pack::load_sources(&files, &schema())
    }

    const BASIC: &str = r#"
- list: egress_allow
  items: [api.github.com, "*.internal"]
- macro: is_net
  condition: kind == "net"
- rule: egress-off-allowlist
  title: Egress to {dest.host}
  description: Threat. False positives.
  severity: high
  tags: [exfiltration]
  action: contain
  when: is_net && !(dest.host in egress_allow)
  exceptions:
    - agent in ["research-agent"]
- rule: denied-burst
  description: Threat. False positives.
  severity: medium
  when: kind == "auth" && outcome == "denied"
  threshold:
    count: 3
    window: 60s
- rule: distinct-hosts
  description: d
  severity: low
  enabled: false
  when: is_net
  threshold:
    count: 3
    distinct: dest.host
    window: 1m
- rule: cred-then-egress
  description: d
  severity: critical
  sequence:
    by: [session_id]
    window: 10m
    steps:
      - kind == "auth" && op == "credential_read"
      - is_net && !(dest.host in egress_allow)
    until: kind == "message"
- rule: token-burn
  description: d
  severity: medium
  when: kind == "llm_call"
  threshold:
    sum: tokens.input
    count: 1000
    window: 1m
"#;

    fn run(p: &Pack, events: &[R]) -> Vec<(String, String)> {
        let mut st = RuleState::default();
        let mut out = Vec::new();
        let mut all = Vec::new();
        for e in events {
            out.clear();
            p.evaluate(e, &mut st, &mut out);
            for m in &out {
                all.push((p.rules()[m.rule].id.clone(), m.detail.clone()));
            }
        }
        all
    }

    #[test]
    fn loads_and_evaluates() {
        let p = load(&[("basic.yaml", BASIC)]).unwrap_or_else(|d| panic!("{d}"));
        assert_eq!(p.rules().len(), 5);
        let r0 = &p.rules()[0];
        assert_eq!(r0.id, "egress-off-allowlist");
        assert_eq!(r0.severity, Severity::High);
        assert_eq!(r0.action, Action::Contain);
        assert_eq!(r0.kind, RuleKind::Stateless);
        assert_eq!(r0.line, 6);
        assert!(!p.rules()[2].enabled);
        assert_eq!(p.rules()[3].kind, RuleKind::Sequence);

        let ev = rec(1, vec![("kind", S("net")), ("dest.host", S("paste.example"))]);
        assert_eq!(p.title(0, &ev), "Egress to paste.example");
        let m = run(&p, &[ev]);
        assert_eq!(m.len(), 1, "{m:?}");
        let allowed = rec(1, vec![("kind", S("net")), ("dest.host", S("db.internal"))]);
        assert!(run(&p, &[allowed]).is_empty());
        let excepted = rec(1, vec![("kind", S("net")), ("dest.host", S("x.com")), ("agent", S("research-agent"))]);
        assert!(run(&p, &[excepted]).is_empty());
        let missing = rec(1, vec![("kind", S("net"))]);
        assert_eq!(p.title(0, &missing), "Egress to ?");
    }

    #[test]
    fn threshold_counts_within_window() {
        let p = load(&[("basic.yaml", BASIC)]).unwrap();
        let denied = |ts| rec(ts, vec![("kind", S("auth")), ("outcome", S("denied"))]);
        // Three within 60 s: fires once, then starts over.
        let m = run(&p, &[denied(0), denied(10_000), denied(20_000)]);
        assert_eq!(m.len(), 1);
        assert!(m[0].1.contains("3 events"), "{}", m[0].1);
        assert!(m[0].1.contains("within 1m (threshold 3)"), "{}", m[0].1);
        // Spread over more than the window: never.
        assert!(run(&p, &[denied(0), denied(40_000), denied(80_000), denied(120_000)]).is_empty());
        // Sum of tokens.
        let llm = |ts, n| rec(ts, vec![("kind", S("llm_call")), ("tokens.input", N(n))]);
        let m = run(&p, &[llm(0, 400.0), llm(1000, 400.0), llm(2000, 400.0)]);
        assert_eq!(m.len(), 1);
        assert!(m[0].1.starts_with("sum of tokens.input = 1200"), "{}", m[0].1);
    }

    #[test]
    fn sequence_in_order_within_window_and_until() {
        let p = load(&[("basic.yaml", BASIC)]).unwrap();
        let cred = |ts, s| rec(ts, vec![("kind", S("auth")), ("op", S("credential_read")), ("session_id", S(s))]);
        let net = |ts, s| rec(ts, vec![("kind", S("net")), ("dest.host", S("evil.example")), ("session_id", S(s))]);
        let msg = |ts, s| rec(ts, vec![("kind", S("message")), ("session_id", S(s))]);
        let seq = |v: Vec<(String, String)>| v.into_iter().filter(|(id, _)| id == "cred-then-egress").count();
        assert_eq!(seq(run(&p, &[cred(0, "a"), net(1000, "a")])), 1);
        // Wrong order, other session, too late, reset by until.
        assert_eq!(seq(run(&p, &[net(0, "a"), cred(1000, "a")])), 0);
        assert_eq!(seq(run(&p, &[cred(0, "a"), net(1000, "b")])), 0);
        assert_eq!(seq(run(&p, &[cred(0, "a"), net(601_000, "a")])), 0);
        assert_eq!(seq(run(&p, &[cred(0, "a"), msg(500, "a"), net(1000, "a")])), 0);
        // A later first step restarts the window.
        assert_eq!(seq(run(&p, &[cred(0, "a"), cred(500_000, "a"), net(900_000, "a")])), 1);
        let all = run(&p, &[cred(0, "a"), net(1000, "a")]);
        let d = &all.iter().find(|(id, _)| id == "cred-then-egress").unwrap().1;
        assert!(d.contains("step 1 at 1970-01-01T00:00:00.000Z, step 2 at 1970-01-01T00:00:01.000Z"), "{d}");
        assert!(d.contains("for session_id=a"), "{d}");
    }

    #[test]
    fn index_limits_candidates() {
        let p = load(&[("basic.yaml", BASIC)]).unwrap();
        let net = rec(0, vec![("kind", S("net"))]);
        let other = rec(0, vec![("kind", S("metric"))]);
        // net: egress rule + sequence (step 2); distinct-hosts is disabled.
        assert_eq!(p.candidate_count(&net), 2);
        assert_eq!(p.candidate_count(&other), 0);
    }

    #[test]
    fn repeated_list_lookups_are_memoised_and_agree() {
        let src =
            "- list: l\n  items: [a.com, '*.internal']\n- macro: m\n  condition: kind == 'net' && dest.host in l\n\
- rule: in-macro\n  description: d\n  severity: low\n  when: m && bytes_out > 1\n\
- rule: negated\n  description: d\n  severity: low\n  when: kind == 'net' && !(dest.host in l)\n\
- rule: again\n  description: d\n  severity: low\n  when: kind == 'net' && (dest.host in l || has(agent))\n\
- rule: once\n  description: d\n  severity: low\n  when: kind == 'net' && agent in l\n";
        let p = load(&[("m.yaml", src)]).unwrap();
        fn count(c: &Cond, memoised: &mut usize, plain: &mut usize) {
            match c {
                Cond::And(cs) | Cond::Or(cs) => cs.iter().for_each(|c| count(c, memoised, plain)),
                Cond::Not(c) | Cond::Macro(_, c) => count(c, memoised, plain),
                Cond::InFieldMemo(..) => *memoised += 1,
                Cond::InField(..) => *plain += 1,
                _ => {}
            }
        }
        let (mut memoised, mut plain) = (0, 0);
        p.rules.iter().for_each(|r| count(&r.conds.when, &mut memoised, &mut plain));
        // `dest.host in l` (three times) is memoised; `agent in l` (once) is not.
        assert_eq!((memoised, plain), (3, 1));
        for (host, agent, want) in [
            ("a.com", "x", vec!["in-macro", "again"]),
            ("db.internal", "a.com", vec!["in-macro", "again", "once"]),
            ("b.com", "", vec!["negated", "again"]),
        ] {
            let e =
                rec(0, vec![("kind", S("net")), ("dest.host", S(host)), ("agent", S(agent)), ("bytes_out", N(5.0))]);
            let fired: Vec<String> = run(&p, &[e]).into_iter().map(|(id, _)| id).collect();
            assert_eq!(fired, want, "{host} {agent}");
        }
    }

    #[test]
    fn kind_table_finds_exactly_its_kinds() {
        let names = ["net", "file", "tool_call", "tool_result", "llm_call", "tool_calls", "", "a_very_long_kind_name"];
        let table = ByKind(
            names
                .iter()
                .enumerate()
                .map(|(i, n)| {
                    ((*n).into(), head8(n.as_bytes()), KindEntry { rules: vec![i as u32].into(), conds: [].into() })
                })
                .collect(),
        );
        for (i, n) in names.iter().enumerate() {
            assert_eq!(table.get(n).map(|e| &*e.rules), Some(&[i as u32][..]), "{n}");
        }
        for other in ["ne", "nett", "tool_cal", "tool_resulx", "a_very_long_kind_namf", "llm_call\0", "NET"] {
            assert!(table.get(other).is_none(), "{other}");
        }
    }

    #[test]
    fn disabled_rules_only_in_evaluate_all() {
        let p = load(&[("basic.yaml", BASIC)]).unwrap();
        let mut st = RuleState::default();
        let mut out = Vec::new();
        for (i, h) in ["a.com", "b.com", "c.com"].into_iter().enumerate() {
            let e = rec(i as i64, vec![("kind", S("net")), ("dest.host", S(h))]);
            p.evaluate_all(&e, &mut st, &mut out);
        }
        assert!(out.iter().any(|m| p.rules()[m.rule].id == "distinct-hosts"));
    }

    fn errors(files: &[(&str, &str)]) -> Vec<String> {
        match load(files) {
            Ok(_) => panic!("expected errors"),
            Err(d) => d.iter().map(|d| d.to_string()).collect(),
        }
    }

    #[test]
    fn reports_every_error_with_location() {
        let bad = r#"- rule: a
  description: d
  severity: high
  when: kind == "net" && dest.hots == "x"
- rule: b
  description: d
  severity: urgent
  when: kind == 5
- rule: c
  description: d
  severity: low
  when: dest.host in no_such_list
  severty: low
- rule: a
  description: d
  severity: low
  when: kind == "x" &&
"#;
        let e = errors(&[("bad.yaml", bad)]);
        let want = [
            "bad.yaml:4:26: unknown field `dest.hots`; did you mean `dest.host`?",
            "bad.yaml:7:13: invalid value for `severity`",
            "bad.yaml:8:17: type error: cannot compare string with number",
            "bad.yaml:12:22: unknown list `no_such_list`",
            "bad.yaml:13:3: unknown key `severty` in rule",
            "bad.yaml:17:23: syntax error: expected a value",
        ];
        for w in want {
            assert!(e.iter().any(|x| x.starts_with(w)), "missing {w:?} in {e:#?}");
        }
        assert_eq!(e.len(), want.len(), "{e:#?}");
    }

    #[test]
    fn cross_file_references_and_duplicates() {
        let lists = "- list: hosts\n  items: [a.com]\n- macro: m\n  condition: kind == 'net'\n";
        let rules = "- rule: r\n  description: d\n  severity: low\n  when: m && dest.host in hosts\n";
        let p = load(&[("a.yaml", lists), ("b.yaml", rules)]).unwrap();
        assert_eq!(p.rules()[0].file, "b.yaml");
        let e = errors(&[("a.yaml", lists), ("b.yaml", rules), ("c.yaml", rules)]);
        assert_eq!(e, vec!["c.yaml:1:3: duplicate rule `r` (first defined at b.yaml:1)"]);
        let e = errors(&[("a.yaml", lists), ("b.yaml", lists)]);
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(e[0].contains("duplicate list `hosts` (first defined at a.yaml:1)"));
    }

    #[test]
    fn macro_cycles_and_errors_reported_once() {
        let src = "- macro: a\n  condition: b\n- macro: b\n  condition: a\n- macro: bad\n  condition: kind == 1\n- rule: r\n  description: d\n  severity: low\n  when: bad || bad\n";
        let e = errors(&[("m.yaml", src)]);
        assert!(e.iter().any(|x| x.contains("references itself")), "{e:?}");
        assert_eq!(e.iter().filter(|x| x.contains("cannot compare")).count(), 1, "{e:?}");
    }

    #[test]
    fn structure_errors() {
        let e = errors(&[("s.yaml", "rule: x\n")]);
        assert!(e[0].contains("list of items"), "{e:?}");
        let e = errors(&[("s.yaml", "- rule: x\n  list: y\n")]);
        assert!(e[0].contains("more than one"), "{e:?}");
        let e = errors(&[("s.yaml", "- foo: x\n")]);
        assert!(e[0].contains("none of the keys"), "{e:?}");
        let e = errors(&[("s.yaml", "- rule: x\n  description: d\n  severity: low\n  when: [a]\n")]);
        assert!(e[0].contains("expected a condition"), "{e:?}");
        let e = errors(&[("s.yaml", "- rule: x\n  description: d\n  severity: low\n  when: kind == 'a'\n  threshold:\n    count: 0\n    window: 5y\n    cout: 1\n")]);
        assert_eq!(e.len(), 3, "{e:?}");
        let e = errors(&[("s.yaml", "- list: kind\n  items: []\n")]);
        assert!(e[0].contains("is a field name"), "{e:?}");
        let e = errors(&[("s.yaml", "- rule: [\n")]);
        assert!(e[0].contains("YAML syntax error"), "{e:?}");
        let e = errors(&[(
            "s.yaml",
            "- rule: x\n  title: 'Bad {dest.hots}'\n  description: d\n  severity: low\n  when: 'true'\n",
        )]);
        assert!(e[0].starts_with("s.yaml:2:16: unknown field `dest.hots`"), "{e:?}");
        // An empty file is a valid (empty) pack file.
        assert!(load(&[("e.yaml", "")]).unwrap().rules().is_empty());
        assert!(load(&[("c.yaml", "# nothing yet\n")]).unwrap().rules().is_empty());
        assert!(load(&[("n.yaml", "~\n")]).unwrap().rules().is_empty());
    }

    #[test]
    fn state_survives_identical_reload_and_resets_on_change() {
        let p1 = load(&[("basic.yaml", BASIC)]).unwrap();
        let p2 = load(&[("basic.yaml", BASIC)]).unwrap();
        assert_eq!(p1.fingerprint(), p2.fingerprint());
        let changed = BASIC.replace("count: 3\n    window: 60s", "count: 4\n    window: 60s");
        let p3 = load(&[("basic.yaml", &changed)]).unwrap();
        assert_ne!(p1.fingerprint(), p3.fingerprint());
        let denied = |ts| rec(ts, vec![("kind", S("auth")), ("outcome", S("denied"))]);
        let mut st = RuleState::default();
        let mut out = Vec::new();
        p1.evaluate(&denied(0), &mut st, &mut out);
        p1.evaluate(&denied(1), &mut st, &mut out);
        let mut st2 = st.clone();
        p2.evaluate(&denied(2), &mut st, &mut out);
        assert_eq!(out.len(), 1, "same definition keeps its count");
        out.clear();
        p3.evaluate(&denied(2), &mut st2, &mut out);
        assert!(out.is_empty(), "changed definition starts over");
        // Checkpoint round trip.
        let json = serde_json::to_string(&st2).unwrap();
        let back: RuleState = serde_json::from_str(&json).unwrap();
        assert_eq!(back, st2);
    }

    #[test]
    fn tool_index_and_kind_index_merge_without_duplicates() {
        let src = "- rule: by-tool\n  description: d\n  severity: low\n  when: kind == 'tool_call' && tool == 'shell'\n- rule: by-kind\n  description: d\n  severity: low\n  when: kind == 'tool_call'\n- rule: any\n  description: d\n  severity: low\n  when: has(agent)\n";
        let p = load(&[("t.yaml", src)]).unwrap();
        let ev = rec(0, vec![("kind", S("tool_call")), ("tool", S("shell")), ("agent", S("x"))]);
        assert_eq!(p.candidate_count(&ev), 3);
        let fired: Vec<String> = run(&p, &[ev]).into_iter().map(|(id, _)| id).collect();
        assert_eq!(fired, vec!["by-tool", "by-kind", "any"]);
        let other = rec(0, vec![("kind", S("tool_call")), ("tool", S("search"))]);
        assert_eq!(p.candidate_count(&other), 2);
        let fired: Vec<String> = run(&p, &[other]).into_iter().map(|(id, _)| id).collect();
        assert_eq!(fired, vec!["by-kind"]);
    }

    #[test]
    fn threshold_keys_are_bounded_and_grouped() {
        let src = "- rule: per-host\n  description: d\n  severity: low\n  when: kind == 'net'\n  threshold:\n    count: 2\n    by: [dest.host]\n    window: 1h\n";
        let p = load(&[("t.yaml", src)]).unwrap();
        let hosts: Vec<&'static str> = (0..40).map(|i| &*Box::leak(format!("h{i}.example").into_boxed_str())).collect();
        let mut st = RuleState::default();
        let mut out = Vec::new();
        for (i, h) in hosts.iter().enumerate() {
            p.evaluate(&rec(i as i64, vec![("kind", S("net")), ("dest.host", S(h))]), &mut st, &mut out);
        }
        assert!(out.is_empty(), "one event per host never reaches 2");
        let json = serde_json::to_value(&st).unwrap();
        let keys = json["inner"]["slots"][0]["keys"].as_array().map(Vec::len).unwrap_or(0);
        assert!(keys <= crate::state::MAX_KEYS, "{keys} keys");
        // The most recent host is still tracked: a second event fires, grouped by host.
        p.evaluate(&rec(100, vec![("kind", S("net")), ("dest.host", S(hosts[39]))]), &mut st, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].group_key, "h39.example");
        assert_eq!(out[0].step_ts, vec![39, 100]);
        assert!(out[0].detail.contains("for dest.host=h39.example"), "{}", out[0].detail);
    }

    #[test]
    fn three_step_sequence_needs_every_step_in_order() {
        let src = "- rule: abc\n  description: d\n  severity: low\n  sequence:\n    window: 1m\n    steps:\n      - kind == 'auth'\n      - kind == 'file'\n      - kind == 'net'\n";
        let p = load(&[("t.yaml", src)]).unwrap();
        let e = |ts, k| rec(ts, vec![("kind", S(k))]);
        assert_eq!(run(&p, &[e(0, "auth"), e(1, "file"), e(2, "net")]).len(), 1);
        assert_eq!(run(&p, &[e(0, "auth"), e(2, "net")]).len(), 0);
        assert_eq!(run(&p, &[e(0, "file"), e(1, "auth"), e(2, "net")]).len(), 0);
        assert_eq!(run(&p, &[e(0, "auth"), e(1, "file"), e(70_000, "net")]).len(), 0);
        assert_eq!(run(&p, &[e(0, "auth"), e(1, "file"), e(2, "file"), e(3, "net")]).len(), 1);
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        fn fragment() -> impl Strategy<Value = String> {
            prop_oneof![
                Just("- rule: r\n".to_string()),
                Just("  description: d\n".to_string()),
                Just("  severity: high\n".to_string()),
                Just("  when: kind == \"net\" && dest.host in l\n".to_string()),
                Just("  when: '!(x'\n".to_string()),
                Just("  threshold:\n    count: 3\n    window: 1m\n".to_string()),
                Just("  sequence:\n    window: 5m\n    steps: [a, \"kind == 'x'\"]\n".to_string()),
                Just("- list: l\n  items: [a, \"*.b\"]\n".to_string()),
                Just("- macro: a\n  condition: kind == 'net'\n".to_string()),
                Just("  exceptions:\n    - agent in l\n".to_string()),
                Just("  title: x {dest.host} {\n".to_string()),
                "[ -~\n]{0,40}".prop_map(|s| s),
            ]
        }

        proptest! {
            #[test]
            fn loading_never_panics(parts in proptest::collection::vec(fragment(), 0..12)) {
                let text = parts.concat();
                match load(&[("p.yaml", &text)]) {
                    Ok(p) => {
                        for r in p.rules() {
                            prop_assert!(!r.id.is_empty());
                        }
                    }
                    Err(d) => {
                        prop_assert!(!d.is_empty());
                        let lines = text.lines().count().max(1) + 1;
                        for x in d.iter() {
                            prop_assert!(x.line <= lines, "{x} beyond {lines} lines");
                        }
                    }
                }
            }

            #[test]
            fn conditions_never_panic_at_load_or_evaluation(cond in "[a-z_. ()!&|=<>\"'\\[\\],0-9*]{0,60}") {
                let text = format!("- rule: r\n  description: d\n  severity: low\n  when: '{}'\n", cond.replace('\'', "''"));
                if let Ok(p) = load(&[("p.yaml", &text)]) {
                    let mut st = RuleState::default();
                    let mut out = Vec::new();
                    p.evaluate(&rec(0, vec![("kind", S("net")), ("bytes_out", N(1.0))]), &mut st, &mut out);
                    p.evaluate_all(&rec(1, vec![]), &mut st, &mut out);
                }
            }
        }
    }
}
