//! Type-checking and compilation of conditions into evaluator trees, and their evaluation.
//!
//! A condition compiles into a [`Cond`]: a tree of enum nodes whose leaves read fields by [`FieldId`],
//! compare against literals stored in their final form (precompiled regexes, substring finders, hash sets
//! of list items), and never allocate: `lower(x)` and `a + b` write into per-thread scratch buffers, and a
//! string that is already lower-case is used as is. Types are checked while compiling; only fields under a
//! dynamic prefix (`attrs.x`) are typed at run time, where a mismatch makes the comparison false.

use crate::error::RuleError;
use crate::expr::{CmpOp, Expr, ExprKind, Span};
use crate::prefilter::{CaselessPrefilter, Prefilter};
use crate::schema::{FieldId, FieldType, Record, Resolved, Schema};
use crate::util::{
    closest, head8, hint, needs_lowering, push_lower, tail8, with_scratch, Glob, ShortSearch, SHORT_HAYSTACK,
};
use regex::Regex;
#[cfg(test)]
use rustc_hash::FxHashMap;
use rustc_hash::FxHashSet;
use std::cell::Cell;
use std::cmp::Ordering;
use std::sync::Arc;

/// The evaluation context of one record: the record, and the memo of macros already evaluated on it
/// (a macro used by several rules, such as a costly regex test, runs once per record).
pub(crate) struct Cx<'r> {
    pub rec: &'r dyn Record,
    known: Cell<u64>,
    value: Cell<u64>,
}

impl<'r> Cx<'r> {
    #[inline]
    pub(crate) fn new(rec: &'r dyn Record) -> Self {
        Cx { rec, known: Cell::new(0), value: Cell::new(0) }
    }
}

/// Macros beyond this many are not memoised (their slot is [`NO_MEMO`]).
pub(crate) const MEMO_SLOTS: usize = 64;
/// The memo slot of a macro that is not memoised.
pub(crate) const NO_MEMO: u8 = u8::MAX;

/// A value read or computed during evaluation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Value<'a> {
    Str(&'a str),
    Num(f64),
    Bool(bool),
}

/// The items of a list, ready for `in`: exact strings in a hash set; glob patterns as prefix and suffix
/// tests and one combined anchored regex for the rest; and the items as numbers when every item is one.
#[derive(Debug, Default)]
pub(crate) struct ListSet {
    exact: FxHashSet<Box<str>>,
    /// A bit per [`exact_key`] of the exact items: most strings outside the list are rejected by one bit
    /// test instead of hashing the whole string and probing the set (a host is looked up in several lists
    /// per network event, and is in few of them).
    exact_keys: [u64; EXACT_KEY_WORDS],
    prefixes: Vec<Affix>,
    suffixes: Vec<Affix>,
    /// First bytes of the prefixes and last bytes of the suffixes: most strings are rejected by a lookup.
    prefix_first: Box<[bool]>,
    suffix_last: Box<[bool]>,
    /// `*x*` globs: substrings.
    infixes: Vec<memchr::memmem::Finder<'static>>,
    /// The same, for short strings.
    infixes_short: ShortSearch,
    /// Every other glob, as one regex `^(?:g1|g2|...)$`.
    rest: Option<Regex>,
    nums: Option<Box<[f64]>>,
}

/// Words of [`ListSet::exact_keys`] (64 bits each).
const EXACT_KEY_WORDS: usize = 16;

/// A small hash of a string's length and first and last bytes, below `64 * EXACT_KEY_WORDS`: equal strings
/// have equal keys, so a string whose key bit is clear is not an exact item.
#[inline]
fn exact_key(b: &[u8]) -> usize {
    let (first, last) = match b {
        [] => (0, 0),
        [f, .., l] => (*f as usize, *l as usize),
        [f] => (*f as usize, *f as usize),
    };
    (b.len().wrapping_mul(97) ^ first.wrapping_mul(13) ^ last.wrapping_mul(257)) % (64 * EXACT_KEY_WORDS)
}

/// The fixed start of an `abc*` glob or the fixed end of an `*abc`, with the (up to) 8 bytes next to the
/// string's edge packed into an integer ([`head8`], [`tail8`]): a string is told apart from most affixes
/// by one masked compare, without a `memcmp` call per affix (host lists hold dozens of `*.domain`s).
#[derive(Debug)]
struct Affix {
    /// The affix's first (prefix) or last (suffix) `min(8, len)` bytes, packed.
    key: u64,
    /// Which bits of a packed string `key` covers.
    mask: u64,
    text: Box<[u8]>,
}

impl Affix {
    fn prefix(p: &str) -> Affix {
        let k = p.len().min(8) as u32;
        let mask = u64::MAX.checked_shr(64 - 8 * k).unwrap_or(0);
        Affix { key: head8(p.as_bytes()), mask, text: p.as_bytes().into() }
    }

    fn suffix(p: &str) -> Affix {
        let k = p.len().min(8) as u32;
        let mask = u64::MAX.checked_shl(64 - 8 * k).unwrap_or(0);
        Affix { key: tail8(p.as_bytes()), mask, text: p.as_bytes().into() }
    }

    /// Whether `s` starts with this prefix; `head` is `head8(s)`.
    #[inline]
    fn starts(&self, s: &[u8], head: u64) -> bool {
        let n = self.text.len();
        s.len() >= n && head & self.mask == self.key && (n <= 8 || s[8..n] == self.text[8..])
    }

    /// Whether `s` ends with this suffix; `tail` is `tail8(s)`.
    #[inline]
    fn ends(&self, s: &[u8], tail: u64) -> bool {
        let n = self.text.len();
        s.len() >= n && tail & self.mask == self.key && (n <= 8 || s[s.len() - n..s.len() - 8] == self.text[..n - 8])
    }
}

/// A glob as regex source: `*` is `.*`, `?` is `.`, everything else literal.
fn glob_regex(g: &str) -> String {
    let mut out = String::new();
    let mut lit = String::new();
    for c in g.chars() {
        match c {
            '*' | '?' => {
                out.push_str(&regex::escape(&lit));
                lit.clear();
                out.push_str(if c == '*' { ".*" } else { "." });
            }
            c => lit.push(c),
        }
    }
    out.push_str(&regex::escape(&lit));
    out
}

impl ListSet {
    pub(crate) fn new<'a>(items: impl IntoIterator<Item = &'a str>) -> ListSet {
        let mut set = ListSet::default();
        let mut nums = Vec::new();
        let mut all_num = true;
        let mut rest = Vec::new();
        for it in items {
            if it.contains(['*', '?']) {
                match Glob::new(it) {
                    Glob::Prefix(p) => set.prefixes.push(Affix::prefix(&p)),
                    Glob::Suffix(p) => set.suffixes.push(Affix::suffix(&p)),
                    Glob::Contains(f) => set.infixes.push(*f),
                    _ => rest.push(glob_regex(it)),
                }
            } else {
                let k = exact_key(it.as_bytes());
                set.exact_keys[k / 64] |= 1 << (k % 64);
                set.exact.insert(it.into());
            }
            match it.trim().parse::<f64>() {
                Ok(n) if n.is_finite() && all_num => nums.push(n),
                _ => all_num = false,
            }
        }
        set.infixes_short = ShortSearch::new(set.infixes.iter().map(|f| f.needle()));
        let mut first = vec![false; 256];
        let mut last = vec![false; 256];
        for p in &set.prefixes {
            match p.text.first() {
                Some(&b) => first[b as usize] = true,
                None => first.iter_mut().for_each(|x| *x = true),
            }
        }
        for p in &set.suffixes {
            match p.text.last() {
                Some(&b) => last[b as usize] = true,
                None => last.iter_mut().for_each(|x| *x = true),
            }
        }
        set.prefix_first = first.into();
        set.suffix_last = last.into();
        if !rest.is_empty() {
            // Globs are plain text with `.*` and `.`: always a valid, small regex.
            set.rest =
                regex::RegexBuilder::new(&format!("(?s)^(?:{})$", rest.join("|"))).size_limit(1 << 22).build().ok();
        }
        if all_num {
            set.nums = Some(nums.into());
        }
        set
    }

    /// Whether the list has no items.
    pub(crate) fn is_empty(&self) -> bool {
        self.exact.is_empty()
            && self.prefixes.is_empty()
            && self.suffixes.is_empty()
            && self.infixes.is_empty()
            && self.rest.is_none()
    }

    #[inline]
    pub(crate) fn contains_str(&self, s: &str) -> bool {
        let b = s.as_bytes();
        let k = exact_key(b);
        (self.exact_keys[k / 64] & 1 << (k % 64) != 0 && self.exact.contains(s))
            || (!self.prefixes.is_empty()
                && self.prefix_first.get(b.first().copied().unwrap_or(0) as usize) != Some(&false)
                && {
                    let head = head8(b);
                    self.prefixes.iter().any(|p| p.starts(b, head))
                })
            || (!self.suffixes.is_empty()
                && self.suffix_last.get(b.last().copied().unwrap_or(0) as usize) != Some(&false)
                && {
                    let tail = tail8(b);
                    self.suffixes.iter().any(|p| p.ends(b, tail))
                })
            || (!self.infixes.is_empty()
                && if s.len() < SHORT_HAYSTACK {
                    self.infixes_short.any_in(s.as_bytes())
                } else {
                    self.infixes.iter().any(|f| f.find(s.as_bytes()).is_some())
                })
            || self.rest.as_ref().is_some_and(|r| r.is_match(s))
    }

    #[inline]
    fn contains_num(&self, n: f64) -> bool {
        self.nums.as_deref().is_some_and(|ns| ns.contains(&n))
    }

    /// The exact items, when the list has no glob (for the rule index).
    pub(crate) fn exact_items(&self) -> Option<Vec<&str>> {
        if self.prefixes.is_empty() && self.suffixes.is_empty() && self.infixes.is_empty() && self.rest.is_none() {
            let mut v: Vec<&str> = self.exact.iter().map(|s| &**s).collect();
            v.sort_unstable();
            Some(v)
        } else {
            None
        }
    }
}

/// An operand: where a value comes from.
#[derive(Clone, Debug)]
pub(crate) enum Operand {
    Field(FieldId, FieldType),
    /// A field under a dynamic prefix: (prefix with its dot, rest of the name).
    Dyn(Box<(Box<str>, Box<str>)>),
    Str(Box<str>),
    Num(f64),
    Bool(bool),
    Lower(Box<Operand>),
    Concat(Box<Operand>, Box<Operand>),
    Add(Box<Operand>, Box<Operand>),
    Cond(Box<Cond>),
}

/// A compiled regex with its literal prefilter.
#[derive(Clone, Debug)]
pub(crate) struct Matcher {
    re: Regex,
    pre: Option<Prefilter>,
    /// For a regex applied to `lower(x)`: its prefilter on the original text, built once where the
    /// condition is compiled and shared by its copies (macro bodies are copied into every rule and
    /// kind that uses them).
    caseless: Option<Arc<CaselessPrefilter>>,
}

/// A string method with its argument compiled.
#[derive(Clone, Debug)]
pub(crate) enum Method {
    Contains(Box<memchr::memmem::Finder<'static>>),
    StartsWith(Box<str>),
    EndsWith(Box<str>),
    Matches(Box<Matcher>),
    Glob(Glob),
}

impl Method {
    #[inline]
    pub(crate) fn test(&self, s: &str) -> bool {
        match self {
            Method::Contains(f) => f.find(s.as_bytes()).is_some(),
            Method::StartsWith(p) => s.starts_with(&**p),
            Method::EndsWith(p) => s.ends_with(&**p),
            Method::Matches(m) => m.pre.as_ref().is_none_or(|p| p.may_match(s)) && m.re.is_match(s),
            Method::Glob(g) => g.is_match(s),
        }
    }
}

/// A compiled condition.
#[derive(Clone, Debug)]
pub(crate) enum Cond {
    Const(bool),
    And(Box<[Cond]>),
    Or(Box<[Cond]>),
    Not(Box<Cond>),
    Has(Operand),
    Truthy(Operand),
    Cmp(CmpOp, Operand, Operand),
    In(Operand, Arc<ListSet>),
    Method(Operand, Box<Method>),
    /// A macro's body, memoised per record in slot `.0` (unless it is [`NO_MEMO`]).
    Macro(u8, Box<Cond>),
    /// `Cmp(op, Field(id, Str), Str(lit))`, the commonest leaf, read without the operand dispatch
    /// (see [`Cond::direct_leaves`]).
    StrField(CmpOp, FieldId, Box<str>),
    /// `Cmp(op, Field(id, Num), Num(lit))`, likewise.
    NumField(CmpOp, FieldId, f64),
    /// `In(Field(id, Str), set)`, likewise.
    InField(FieldId, Arc<ListSet>),
    /// `Method(Field(id, Str), m)`, likewise.
    MethodField(FieldId, Box<Method>),
    /// An [`Cond::InField`] lookup that several conditions of the pack make (`dest.host in egress_allow`
    /// in a macro and in three rules), memoised per record in slot `.0` like a macro (see
    /// [`Cond::memo_list_lookups`]).
    InFieldMemo(u8, FieldId, Arc<ListSet>),
    /// `Method(Lower(Field(id, Str)), m)` with a regex `m` that has a [`CaselessPrefilter`]: the
    /// prefilter reads the field as it is, and only a text it lets through is lower-cased and tested
    /// (see [`Cond::direct_leaves`]).
    LowerMatchField(FieldId, Box<(Arc<CaselessPrefilter>, Method)>),
}

impl Operand {
    /// The value of a simple operand without scratch space; `Err` for computed ones.
    #[inline]
    fn simple<'r>(&'r self, rec: &'r dyn Record) -> Result<Option<Value<'r>>, ()> {
        Ok(match self {
            Operand::Field(id, FieldType::Str) => rec.str(*id).map(Value::Str),
            Operand::Field(id, FieldType::Num) => rec.num(*id).map(Value::Num),
            Operand::Field(id, FieldType::Bool) => rec.boolean(*id).map(Value::Bool),
            Operand::Dyn(pn) => rec.dynamic(&pn.0, &pn.1).map(|d| match d {
                crate::schema::Dynamic::Str(s) => Value::Str(s),
                crate::schema::Dynamic::Num(x) => Value::Num(x),
                crate::schema::Dynamic::Bool(b) => Value::Bool(b),
            }),
            Operand::Str(s) => Some(Value::Str(s)),
            Operand::Num(n) => Some(Value::Num(*n)),
            Operand::Bool(b) => Some(Value::Bool(*b)),
            _ => return Err(()),
        })
    }

    /// Calls `f` with the operand's value (computed ones live in scratch space for the duration of `f`).
    fn with(&self, cx: &Cx<'_>, f: &mut dyn FnMut(Option<Value<'_>>) -> bool) -> bool {
        match self {
            Operand::Lower(inner) => inner.with(cx, &mut |v| match v {
                Some(Value::Str(s)) => with_lower(s, |l| f(Some(Value::Str(l)))),
                other => f(other),
            }),
            Operand::Concat(a, b) => a.with(cx, &mut |va| match va {
                Some(Value::Str(sa)) => b.with(cx, &mut |vb| match vb {
                    Some(Value::Str(sb)) => with_scratch(|buf| {
                        buf.push_str(sa);
                        buf.push_str(sb);
                        f(Some(Value::Str(buf)))
                    }),
                    _ => f(None),
                }),
                _ => f(None),
            }),
            Operand::Add(a, b) => {
                let x = a.num(cx);
                let y = b.num(cx);
                match (x, y) {
                    (Some(x), Some(y)) => f(Some(Value::Num(x + y))),
                    _ => f(None),
                }
            }
            Operand::Cond(c) => f(Some(Value::Bool(c.eval(cx)))),
            simple => match simple.simple(cx.rec) {
                Ok(v) => f(v),
                Err(()) => f(None),
            },
        }
    }

    fn num(&self, cx: &Cx<'_>) -> Option<f64> {
        match self.simple(cx.rec) {
            Ok(Some(Value::Num(n))) => Some(n),
            Ok(_) => None,
            Err(()) => {
                let mut out = None;
                self.with(cx, &mut |v| {
                    if let Some(Value::Num(n)) = v {
                        out = Some(n);
                    }
                    true
                });
                out
            }
        }
    }

    fn is_present(&self, rec: &dyn Record) -> bool {
        match self {
            Operand::Field(id, FieldType::Str) => rec.str(*id).is_some(),
            Operand::Field(id, FieldType::Num) => rec.num(*id).is_some(),
            Operand::Field(id, FieldType::Bool) => rec.boolean(*id).is_some(),
            Operand::Dyn(pn) => rec.dynamic(&pn.0, &pn.1).is_some(),
            _ => true,
        }
    }

    /// Renders the operand's value (for titles and group keys); `None` when missing.
    pub(crate) fn render(&self, cx: &Cx<'_>, out: &mut String) -> bool {
        self.with(cx, &mut |v| {
            match v {
                Some(Value::Str(s)) => out.push_str(s),
                Some(Value::Num(n)) => push_num(out, n),
                Some(Value::Bool(b)) => out.push_str(if b { "true" } else { "false" }),
                None => return false,
            }
            true
        })
    }

    /// The operand's value as a stable hash (for distinct counts and group keys); `None` when missing.
    pub(crate) fn hash_into(&self, cx: &Cx<'_>, h: u64) -> Option<u64> {
        let mut out = None;
        self.with(cx, &mut |v| {
            out = match v {
                Some(Value::Str(s)) => Some(crate::util::fnv_more(h, s.as_bytes())),
                Some(Value::Num(n)) => Some(crate::util::fnv_more(h, &n.to_bits().to_le_bytes())),
                Some(Value::Bool(b)) => Some(crate::util::fnv_more(h, &[b as u8])),
                None => None,
            };
            true
        });
        out
    }

    pub(crate) fn number(&self, cx: &Cx<'_>) -> Option<f64> {
        self.num(cx)
    }
}

/// Calls `f` with the lower case of `s` (`s` itself when lower-casing would not change it; otherwise
/// a scratch buffer).
#[inline]
fn with_lower<R>(s: &str, f: impl FnOnce(&str) -> R) -> R {
    if needs_lowering(s) {
        with_scratch(|buf| {
            if s.is_ascii() {
                buf.push_str(s);
                buf.make_ascii_lowercase();
            } else {
                push_lower(buf, s);
            }
            f(buf)
        })
    } else {
        f(s)
    }
}

/// Formats a number the way users write it: integers without a fraction.
pub(crate) fn push_num(out: &mut String, n: f64) {
    use std::fmt::Write;
    if n.fract() == 0.0 && n.abs() < 9.0e15 {
        let _ = write!(out, "{}", n as i64);
    } else {
        let _ = write!(out, "{n}");
    }
}

#[inline]
fn ordered(op: CmpOp, o: Ordering) -> bool {
    match op {
        CmpOp::Eq => o == Ordering::Equal,
        CmpOp::Ne => o != Ordering::Equal,
        CmpOp::Lt => o == Ordering::Less,
        CmpOp::Le => o != Ordering::Greater,
        CmpOp::Gt => o == Ordering::Greater,
        CmpOp::Ge => o != Ordering::Less,
    }
}

#[inline]
fn compare(op: CmpOp, a: Option<Value<'_>>, b: Option<Value<'_>>) -> bool {
    match (a, b) {
        (Some(Value::Str(x)), Some(Value::Str(y))) => match op {
            CmpOp::Eq => x == y,
            CmpOp::Ne => x != y,
            _ => ordered(op, x.cmp(y)),
        },
        (Some(Value::Num(x)), Some(Value::Num(y))) => x.partial_cmp(&y).is_some_and(|o| ordered(op, o)),
        (Some(Value::Bool(x)), Some(Value::Bool(y))) => match op {
            CmpOp::Eq => x == y,
            CmpOp::Ne => x != y,
            _ => false,
        },
        _ => false,
    }
}

#[inline]
fn in_set(v: Option<Value<'_>>, set: &ListSet) -> bool {
    match v {
        Some(Value::Str(s)) => set.contains_str(s),
        Some(Value::Num(n)) => set.contains_num(n),
        _ => false,
    }
}

impl Cond {
    /// Evaluates the condition on the context's record.
    ///
    /// This is a dispatcher only: every arm is a call in tail position (or a constant), so the function
    /// needs no stack frame of its own. It runs for every candidate rule and composite node; with all
    /// the node kinds inlined it saved and restored six registers on each call, whatever the node.
    pub(crate) fn eval(&self, cx: &Cx<'_>) -> bool {
        match self {
            Cond::Const(b) => *b,
            Cond::And(cs) => eval_all(cs, cx),
            Cond::Or(cs) => eval_any(cs, cx),
            Cond::Not(c) => eval_not(c, cx),
            Cond::StrField(op, id, lit) => str_field_leaf(cx.rec, *op, *id, lit),
            Cond::NumField(op, id, lit) => num_field_leaf(cx.rec, *op, *id, *lit),
            Cond::InField(id, set) => in_field(cx.rec, *id, set),
            Cond::InFieldMemo(slot, id, set) => in_field_memo(cx, *slot, *id, set),
            Cond::MethodField(id, m) => method_field(cx.rec, *id, m),
            Cond::LowerMatchField(id, pm) => lower_match_field(cx.rec, *id, &pm.0, &pm.1),
            Cond::Macro(slot, c) => eval_macro(cx, *slot, c),
            general => general.eval_general(cx),
        }
    }

    /// The nodes that read operands in general form (computed values, dynamic fields, `has`): rarer than
    /// the direct leaves.
    #[inline(never)]
    fn eval_general(&self, cx: &Cx<'_>) -> bool {
        let rec = cx.rec;
        match self {
            Cond::Has(o) => o.is_present(rec),
            Cond::Truthy(o) => match o.simple(rec) {
                Ok(v) => v == Some(Value::Bool(true)),
                Err(()) => o.with(cx, &mut |v| v == Some(Value::Bool(true))),
            },
            Cond::Cmp(op, l, r) => match (l.simple(rec), r.simple(rec)) {
                (Ok(a), Ok(b)) => compare(*op, a, b),
                _ => l.with(cx, &mut |a| r.with(cx, &mut |b| compare(*op, a, b))),
            },
            Cond::In(o, set) => match o.simple(rec) {
                Ok(v) => in_set(v, set),
                Err(()) => o.with(cx, &mut |v| in_set(v, set)),
            },
            Cond::Method(o, m) => match o.simple(rec) {
                Ok(Some(Value::Str(s))) => m.test(s),
                Ok(_) => false,
                Err(()) => o.with(cx, &mut |v| match v {
                    Some(Value::Str(s)) => m.test(s),
                    _ => false,
                }),
            },
            // The other kinds are evaluated by `eval` itself and never come here.
            other => other.eval(cx),
        }
    }

    /// Evaluates an operand of `&&`, `||` or `!`: the direct comparisons, and a macro or list lookup
    /// already memoised on this record, right here; everything else through [`Cond::eval`]. The same evaluation as `eval` (the
    /// leaves share their code), without a call per leaf: most nodes of a rule are leaves.
    #[inline(always)]
    fn eval_child(&self, cx: &Cx<'_>) -> bool {
        match self {
            Cond::Const(b) => *b,
            Cond::StrField(op, id, lit) => str_field(cx.rec, *op, *id, lit),
            Cond::NumField(op, id, lit) => num_field(cx.rec, *op, *id, *lit),
            c @ (Cond::Macro(slot, _) | Cond::InFieldMemo(slot, ..)) => cx.memo(*slot).unwrap_or_else(|| c.eval(cx)),
            c => c.eval(cx),
        }
    }
}

impl Cx<'_> {
    /// The value memoised in `slot` (a macro's or a list lookup's) on this record, if it has been
    /// evaluated.
    #[inline(always)]
    fn memo(&self, slot: u8) -> Option<bool> {
        if slot as usize >= MEMO_SLOTS {
            return None;
        }
        let bit = 1u64 << slot;
        (self.known.get() & bit != 0).then(|| self.value.get() & bit != 0)
    }

    /// Records the value of the macro or list lookup memoised in `slot` (nothing for [`NO_MEMO`]).
    #[inline]
    fn remember(&self, slot: u8, v: bool) {
        if (slot as usize) < MEMO_SLOTS {
            let bit = 1u64 << slot;
            self.known.set(self.known.get() | bit);
            if v {
                self.value.set(self.value.get() | bit);
            }
        }
    }
}

/// `field <op> literal` on a string field (false when the field is missing).
#[inline(always)]
fn str_field(rec: &dyn Record, op: CmpOp, id: FieldId, lit: &str) -> bool {
    rec.str(id).is_some_and(|x| match op {
        CmpOp::Eq => x == lit,
        CmpOp::Ne => x != lit,
        _ => ordered(op, x.cmp(lit)),
    })
}

/// `field <op> literal` on a numeric field (false when the field is missing or NaN).
#[inline(always)]
fn num_field(rec: &dyn Record, op: CmpOp, id: FieldId, lit: f64) -> bool {
    rec.num(id).is_some_and(|x| x.partial_cmp(&lit).is_some_and(|o| ordered(op, o)))
}

// The out-of-line bodies of `Cond::eval`'s arms (see there).

#[inline(never)]
fn eval_all(cs: &[Cond], cx: &Cx<'_>) -> bool {
    cs.iter().all(|c| c.eval_child(cx))
}

#[inline(never)]
fn eval_any(cs: &[Cond], cx: &Cx<'_>) -> bool {
    cs.iter().any(|c| c.eval_child(cx))
}

#[inline(never)]
fn eval_not(c: &Cond, cx: &Cx<'_>) -> bool {
    !c.eval_child(cx)
}

#[inline(never)]
fn str_field_leaf(rec: &dyn Record, op: CmpOp, id: FieldId, lit: &str) -> bool {
    str_field(rec, op, id, lit)
}

#[inline(never)]
fn num_field_leaf(rec: &dyn Record, op: CmpOp, id: FieldId, lit: f64) -> bool {
    num_field(rec, op, id, lit)
}

#[inline(never)]
fn in_field(rec: &dyn Record, id: FieldId, set: &ListSet) -> bool {
    rec.str(id).is_some_and(|s| set.contains_str(s))
}

#[inline(never)]
fn in_field_memo(cx: &Cx<'_>, slot: u8, id: FieldId, set: &ListSet) -> bool {
    match cx.memo(slot) {
        Some(v) => v,
        None => {
            let v = cx.rec.str(id).is_some_and(|s| set.contains_str(s));
            cx.remember(slot, v);
            v
        }
    }
}

#[inline(never)]
fn method_field(rec: &dyn Record, id: FieldId, m: &Method) -> bool {
    rec.str(id).is_some_and(|s| m.test(s))
}

/// A text the caseless prefilter lets through is lower-cased and tested in full (the regex with its
/// own prefilter, which rejects short texts the caseless one does not look at).
#[inline(never)]
fn lower_match_field(rec: &dyn Record, id: FieldId, pre: &CaselessPrefilter, m: &Method) -> bool {
    rec.str(id).is_some_and(|s| !pre.rejects(s) && with_lower(s, |l| m.test(l)))
}

#[inline(never)]
fn eval_macro(cx: &Cx<'_>, slot: u8, c: &Cond) -> bool {
    match cx.memo(slot) {
        Some(v) => v,
        None => {
            let v = c.eval(cx);
            cx.remember(slot, v);
            v
        }
    }
}

impl Cond {
    /// Whether this is a plain field test: a comparison, `has` or truth test of fields and literals
    /// (possibly negated). It costs a field read and a compare, and is often selective
    /// (`score.first_seen >= 0.2`, `outcome == "denied"`).
    fn is_field_test(&self) -> bool {
        let plain =
            |o: &Operand| matches!(o, Operand::Field(..) | Operand::Str(_) | Operand::Num(_) | Operand::Bool(_));
        match self {
            Cond::Cmp(_, a, b) => plain(a) && plain(b),
            Cond::Has(o) | Cond::Truthy(o) => plain(o),
            Cond::Not(c) => c.is_field_test(),
            _ => false,
        }
    }

    /// Moves the plain field tests of every `&&` ahead of its other operands (list lookups, string
    /// searches, regexes, macros), keeping the written order otherwise. Conditions have no side effects
    /// and every test is total (a missing field makes it false, never an error), so the result is the
    /// same in any order; only the work done before `&&` meets a false operand shrinks. Rules are
    /// written for people to read (`shell_spawn && !(agent in shell_classes) && score.first_seen >=
    /// 0.2`); this tests the score first. (Whether a list or a regex is the better first test depends
    /// on the traffic, so those keep the author's order.)
    pub(crate) fn field_tests_first(&mut self) {
        match self {
            Cond::And(cs) => {
                cs.iter_mut().for_each(Cond::field_tests_first);
                cs.sort_by_key(|c| !c.is_field_test());
            }
            Cond::Or(cs) => cs.iter_mut().for_each(Cond::field_tests_first),
            Cond::Not(c) | Cond::Macro(_, c) => c.field_tests_first(),
            _ => {}
        }
    }

    /// Rewrites every comparison of a schema field with a literal of its type, list lookup and string
    /// method of a string field into the direct leaf ([`Cond::StrField`], [`Cond::NumField`],
    /// [`Cond::InField`], [`Cond::MethodField`]) that evaluates it the same way ([`compare`],
    /// [`in_set`]: a missing field is false) with one field read and no operand dispatch. Run last, on conditions ready for
    /// evaluation: the index and specialisation look for the general form.
    pub(crate) fn direct_leaves(&mut self) {
        match self {
            Cond::And(cs) | Cond::Or(cs) => cs.iter_mut().for_each(Cond::direct_leaves),
            Cond::Not(c) | Cond::Macro(_, c) => c.direct_leaves(),
            Cond::Cmp(op, Operand::Field(id, FieldType::Str), Operand::Str(lit)) => {
                *self = Cond::StrField(*op, *id, std::mem::take(lit));
            }
            Cond::Cmp(op, Operand::Field(id, FieldType::Num), Operand::Num(lit)) => {
                *self = Cond::NumField(*op, *id, *lit);
            }
            Cond::In(Operand::Field(id, FieldType::Str), set) => *self = Cond::InField(*id, set.clone()),
            Cond::Method(Operand::Field(_, FieldType::Str), _) => {
                if let Cond::Method(Operand::Field(id, _), m) = std::mem::replace(self, Cond::Const(false)) {
                    *self = Cond::MethodField(id, m);
                }
            }
            Cond::Method(Operand::Lower(inner), m) => {
                if let (Operand::Field(id, FieldType::Str), Method::Matches(re)) = (&**inner, &**m) {
                    if let Some(pre) = &re.caseless {
                        *self = Cond::LowerMatchField(*id, Box::new((pre.clone(), (**m).clone())));
                    }
                }
            }
            _ => {}
        }
    }

    /// Calls `f` with every [`Cond::InField`] lookup of the condition (macro bodies included).
    pub(crate) fn each_list_lookup(&self, f: &mut impl FnMut(FieldId, &Arc<ListSet>)) {
        match self {
            Cond::And(cs) | Cond::Or(cs) => cs.iter().for_each(|c| c.each_list_lookup(f)),
            Cond::Not(c) | Cond::Macro(_, c) => c.each_list_lookup(f),
            Cond::InField(id, set) => f(*id, set),
            _ => {}
        }
    }

    /// Turns the [`Cond::InField`] lookups that `slot_of` gives a memo slot into [`Cond::InFieldMemo`]:
    /// a record then searches a list for a field's value once however many conditions ask. Lookups are
    /// pure functions of the record, so only the work changes. Run after [`Cond::direct_leaves`].
    pub(crate) fn memo_list_lookups(&mut self, slot_of: &impl Fn(FieldId, &Arc<ListSet>) -> Option<u8>) {
        match self {
            Cond::And(cs) | Cond::Or(cs) => cs.iter_mut().for_each(|c| c.memo_list_lookups(slot_of)),
            Cond::Not(c) | Cond::Macro(_, c) => c.memo_list_lookups(slot_of),
            Cond::InField(id, set) => {
                if let Some(slot) = slot_of(*id, set) {
                    *self = Cond::InFieldMemo(slot, *id, set.clone());
                }
            }
            _ => {}
        }
    }

    /// The inverse of [`Cond::memo_list_lookups`], for tests that compare with unmemoised lookups.
    #[cfg(test)]
    pub(crate) fn unmemo_list_lookups(&mut self) {
        match self {
            Cond::And(cs) | Cond::Or(cs) => cs.iter_mut().for_each(Cond::unmemo_list_lookups),
            Cond::Not(c) | Cond::Macro(_, c) => c.unmemo_list_lookups(),
            Cond::InFieldMemo(_, id, set) => *self = Cond::InField(*id, set.clone()),
            _ => {}
        }
    }

    /// This condition with the value of field `kind` known: tests of it become constants and the tree is
    /// simplified. Exact for every record whose field `kind` is `value`.
    pub(crate) fn specialize(&self, kind: FieldId, value: &str) -> Cond {
        let is_kind = |o: &Operand| matches!(o, Operand::Field(id, FieldType::Str) if *id == kind);
        match self {
            Cond::Cmp(op, l, Operand::Str(v)) if is_kind(l) => {
                Cond::Const(compare(*op, Some(Value::Str(value)), Some(Value::Str(v))))
            }
            Cond::In(o, set) if is_kind(o) => Cond::Const(set.contains_str(value)),
            Cond::Has(o) if is_kind(o) => Cond::Const(true),
            Cond::Method(o, m) if is_kind(o) => Cond::Const(m.test(value)),
            Cond::Not(c) => match c.specialize(kind, value) {
                Cond::Const(b) => Cond::Const(!b),
                c => Cond::Not(Box::new(c)),
            },
            Cond::And(cs) | Cond::Or(cs) => {
                let and = matches!(self, Cond::And(_));
                let mut out = Vec::new();
                for c in cs.iter() {
                    match c.specialize(kind, value) {
                        Cond::Const(b) if b == and => {}
                        Cond::Const(b) => return Cond::Const(b),
                        c => out.push(c),
                    }
                }
                match out.len() {
                    0 => Cond::Const(and),
                    1 => out.pop().unwrap_or(Cond::Const(and)),
                    _ if and => Cond::And(out.into()),
                    _ => Cond::Or(out.into()),
                }
            }
            Cond::Macro(slot, c) => match c.specialize(kind, value) {
                Cond::Const(b) => Cond::Const(b),
                c => Cond::Macro(*slot, Box::new(c)),
            },
            c => c.clone(),
        }
    }
}

/// The static type of an expression.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ty {
    Str,
    Num,
    Bool,
    /// A dynamic field: typed per record.
    Dyn,
}

impl Ty {
    fn name(self) -> &'static str {
        match self {
            Ty::Str => "string",
            Ty::Num => "number",
            Ty::Bool => "bool",
            Ty::Dyn => "dynamic",
        }
    }
    fn of(t: FieldType) -> Ty {
        match t {
            FieldType::Str => Ty::Str,
            FieldType::Num => Ty::Num,
            FieldType::Bool => Ty::Bool,
        }
    }
}

/// What the compiler resolves names against. Implemented by the pack loader, which knows the lists and
/// macros of every file and compiles macros on demand.
pub(crate) trait Names {
    fn schema(&self) -> &Schema;
    /// The set of list `name`, if it exists.
    fn list(&mut self, name: &str) -> Option<Arc<ListSet>>;
    /// Every list name (for hints).
    fn list_names(&self) -> Vec<&str>;
    /// The compiled body of macro `name`: `None` if no such macro, `Some(Err(msg))` if it cannot be used
    /// here (a cycle: `msg` says so; or its own errors, already reported: empty `msg`).
    fn macro_cond(&mut self, name: &str) -> Option<Result<Cond, Option<RuleError>>>;
    /// Every macro name (for hints).
    fn macro_names(&self) -> Vec<&str>;
}

/// Compiles one parsed condition; type errors are collected as (byte offset, error).
pub(crate) struct Compiler<'n> {
    pub names: &'n mut dyn Names,
    pub errors: Vec<(usize, RuleError)>,
}

struct Typed {
    op: Operand,
    ty: Ty,
}

type R<T> = Result<T, ()>;

impl Compiler<'_> {
    fn fail<T>(&mut self, at: Span, e: RuleError) -> R<T> {
        self.errors.push((at.start, e));
        Err(())
    }

    fn type_err<T>(&mut self, at: Span, msg: impl Into<String>) -> R<T> {
        self.fail(at, RuleError::Type(msg.into()))
    }

    /// Compiles `e` in condition position (it must be boolean).
    pub(crate) fn cond(&mut self, e: &Expr) -> R<Cond> {
        match &e.kind {
            ExprKind::Bool(b) => Ok(Cond::Const(*b)),
            ExprKind::Not(x) => Ok(match self.cond(x)? {
                Cond::Not(inner) => *inner,
                Cond::Const(b) => Cond::Const(!b),
                c => Cond::Not(Box::new(c)),
            }),
            ExprKind::And(a, b) | ExprKind::Or(a, b) => {
                let is_and = matches!(e.kind, ExprKind::And(..));
                let l = self.cond(a);
                let r = self.cond(b);
                let (l, r) = (l?, r?);
                let mut parts = Vec::new();
                for c in [l, r] {
                    match c {
                        Cond::And(cs) if is_and => parts.extend(cs.into_vec()),
                        Cond::Or(cs) if !is_and => parts.extend(cs.into_vec()),
                        // `true && x` is `x`; `false && x` is `false` (and the same for `||`).
                        Cond::Const(b) if b == is_and => {}
                        Cond::Const(b) => return Ok(Cond::Const(b)),
                        c => parts.push(c),
                    }
                }
                Ok(match parts.len() {
                    0 => Cond::Const(is_and),
                    1 => parts.pop().unwrap_or(Cond::Const(is_and)),
                    _ if is_and => Cond::And(parts.into()),
                    _ => Cond::Or(parts.into()),
                })
            }
            ExprKind::Cmp(op, a, b) => {
                let l = self.value(a);
                let r = self.value(b);
                let (l, r) = (l?, r?);
                let ok = l.ty == r.ty || l.ty == Ty::Dyn || r.ty == Ty::Dyn;
                if !ok {
                    return self.type_err(
                        b.span,
                        format!("cannot compare {} with {} using `{}`", l.ty.name(), r.ty.name(), op.symbol()),
                    );
                }
                if op.is_ordering() && (l.ty == Ty::Bool || r.ty == Ty::Bool) {
                    return self.type_err(b.span, format!("`{}` does not apply to bools", op.symbol()));
                }
                // Field on the left, literal on the right: the form the rule index recognises.
                let literal = |o: &Operand| matches!(o, Operand::Str(_) | Operand::Num(_) | Operand::Bool(_));
                if literal(&l.op) && !literal(&r.op) {
                    let flipped = match op {
                        CmpOp::Lt => CmpOp::Gt,
                        CmpOp::Le => CmpOp::Ge,
                        CmpOp::Gt => CmpOp::Lt,
                        CmpOp::Ge => CmpOp::Le,
                        o => *o,
                    };
                    return Ok(Cond::Cmp(flipped, r.op, l.op));
                }
                Ok(Cond::Cmp(*op, l.op, r.op))
            }
            ExprKind::In(a, b) => {
                let l = self.value(a);
                let set = self.list_operand(b);
                let (l, set) = (l?, set?);
                match l.ty {
                    Ty::Str | Ty::Dyn => {}
                    Ty::Num => {
                        if set.nums.is_none() {
                            return self
                                .type_err(b.span, "a number is tested against a list whose items are not all numbers");
                        }
                    }
                    Ty::Bool => return self.type_err(a.span, "`in` does not apply to bools"),
                }
                if set.is_empty() {
                    // Nothing is in an empty list (lists left empty for operators to fill).
                    return Ok(Cond::Const(false));
                }
                Ok(Cond::In(l.op, set))
            }
            ExprKind::Method { recv, name, name_span, args } => {
                let r = self.value(recv);
                let m = self.method(name, *name_span, args, e.span);
                let (r, mut m) = (r?, m?);
                if !matches!(r.ty, Ty::Str | Ty::Dyn) {
                    return self
                        .type_err(recv.span, format!("`.{name}()` applies to strings, not to a {}", r.ty.name()));
                }
                if let (Operand::Lower(_), Method::Matches(mm)) = (&r.op, &mut m) {
                    mm.caseless = CaselessPrefilter::new(mm.re.as_str()).map(Arc::new);
                }
                Ok(Cond::Method(r.op, Box::new(m)))
            }
            ExprKind::Call { name, name_span, args } if name == "has" => {
                if args.len() != 1 {
                    return self.type_err(*name_span, "`has` takes exactly one field");
                }
                match &args[0].kind {
                    ExprKind::Name(n) => match self.names.schema().resolve(n) {
                        Some(Resolved::Field(id, ty)) => Ok(Cond::Has(Operand::Field(id, ty))),
                        Some(Resolved::Dynamic(p, rest)) => {
                            let prefix = self.names.schema().prefix(p).into();
                            Ok(Cond::Has(Operand::Dyn(Box::new((prefix, rest.into())))))
                        }
                        None => self.unknown_field(args[0].span, n),
                    },
                    _ => self.type_err(args[0].span, "`has` takes a field name"),
                }
            }
            ExprKind::Name(n) => {
                let t = self.name(n, e.span)?;
                match t.ty {
                    Ty::Bool => Ok(match t.op {
                        Operand::Cond(c) => *c,
                        op => Cond::Truthy(op),
                    }),
                    Ty::Dyn => Ok(Cond::Truthy(t.op)),
                    ty => self.type_err(
                        e.span,
                        format!("`{n}` is a {} field, not a condition (compare it: `{n} == ...`)", ty.name()),
                    ),
                }
            }
            _ => {
                let t = self.value(e)?;
                match t.ty {
                    Ty::Bool | Ty::Dyn => Ok(match t.op {
                        Operand::Cond(c) => *c,
                        op => Cond::Truthy(op),
                    }),
                    ty => self.type_err(e.span, format!("a {} is not a condition", ty.name())),
                }
            }
        }
    }

    fn unknown_field<T>(&mut self, at: Span, n: &str) -> R<T> {
        let h = hint(self.names.schema().closest(n));
        self.fail(at, RuleError::UnknownField { name: n.to_string(), hint: h })
    }

    fn name(&mut self, n: &str, span: Span) -> R<Typed> {
        match self.names.schema().resolve(n) {
            Some(Resolved::Field(id, ty)) => return Ok(Typed { op: Operand::Field(id, ty), ty: Ty::of(ty) }),
            Some(Resolved::Dynamic(p, rest)) => {
                let prefix = self.names.schema().prefix(p).into();
                return Ok(Typed { op: Operand::Dyn(Box::new((prefix, rest.into()))), ty: Ty::Dyn });
            }
            None => {}
        }
        match self.names.macro_cond(n) {
            Some(Ok(c)) => return Ok(Typed { op: Operand::Cond(Box::new(c)), ty: Ty::Bool }),
            Some(Err(Some(e))) => return self.fail(span, e),
            Some(Err(None)) => return Err(()),
            None => {}
        }
        if self.names.list(n).is_some() {
            return self.type_err(span, format!("list `{n}` can only be used on the right of `in` (`x in {n}`)"));
        }
        if n.contains('.') {
            return self.unknown_field(span, n);
        }
        let mut candidates: Vec<&str> = self.names.schema().fields().map(|(_, n, _)| n).collect();
        let macros = self.names.macro_names();
        candidates.extend(macros);
        let h = hint(closest(n, candidates.into_iter()));
        self.fail(span, RuleError::UnknownField { name: n.to_string(), hint: format!(" (not a field or macro){h}") })
    }

    fn value(&mut self, e: &Expr) -> R<Typed> {
        match &e.kind {
            ExprKind::Str(s) => Ok(Typed { op: Operand::Str(s.as_str().into()), ty: Ty::Str }),
            ExprKind::Num(n) => Ok(Typed { op: Operand::Num(*n), ty: Ty::Num }),
            ExprKind::Bool(b) => Ok(Typed { op: Operand::Bool(*b), ty: Ty::Bool }),
            ExprKind::Name(n) => self.name(n, e.span),
            ExprKind::List(_) => self.type_err(e.span, "a list can only appear on the right of `in`"),
            ExprKind::Call { name, name_span, args } if name == "lower" => {
                if args.len() != 1 {
                    return self.type_err(*name_span, "`lower` takes exactly one argument");
                }
                let a = self.value(&args[0])?;
                match a.ty {
                    Ty::Str | Ty::Dyn => {}
                    t => {
                        return self
                            .type_err(args[0].span, format!("`lower` applies to strings, not to a {}", t.name()))
                    }
                }
                Ok(Typed {
                    op: match a.op {
                        Operand::Str(s) => Operand::Str(s.to_lowercase().into()),
                        l @ Operand::Lower(_) => l,
                        op => Operand::Lower(Box::new(op)),
                    },
                    ty: a.ty,
                })
            }
            ExprKind::Call { name, name_span, .. } if name != "has" => {
                self.type_err(*name_span, format!("unknown function `{name}`; functions are `lower(x)` and `has(x)`"))
            }
            ExprKind::Add(a, b) => {
                let l = self.value(a);
                let r = self.value(b);
                let (l, r) = (l?, r?);
                let ty = match (l.ty, r.ty) {
                    (Ty::Num, Ty::Num) => Ty::Num,
                    (Ty::Str | Ty::Dyn, Ty::Str | Ty::Dyn) => Ty::Str,
                    (x, y) => return self.type_err(b.span, format!("cannot add a {} and a {}", x.name(), y.name())),
                };
                Ok(Typed {
                    op: if ty == Ty::Num {
                        Operand::Add(Box::new(l.op), Box::new(r.op))
                    } else {
                        Operand::Concat(Box::new(l.op), Box::new(r.op))
                    },
                    ty,
                })
            }
            _ => {
                let c = self.cond(e)?;
                Ok(Typed { op: Operand::Cond(Box::new(c)), ty: Ty::Bool })
            }
        }
    }

    fn list_operand(&mut self, e: &Expr) -> R<Arc<ListSet>> {
        match &e.kind {
            ExprKind::Name(n) => match self.names.list(n) {
                Some(set) => Ok(set),
                None => {
                    let h = hint(closest(n, self.names.list_names().into_iter()));
                    self.fail(e.span, RuleError::UnknownList { name: n.clone(), hint: h })
                }
            },
            ExprKind::List(items) => {
                let mut strs = Vec::new();
                let mut kinds = (false, false);
                let mut bad = false;
                for it in items {
                    match &it.kind {
                        ExprKind::Str(s) => {
                            kinds.0 = true;
                            strs.push(s.clone());
                        }
                        ExprKind::Num(n) => {
                            kinds.1 = true;
                            let mut s = String::new();
                            push_num(&mut s, *n);
                            strs.push(s);
                        }
                        _ => {
                            self.errors.push((
                                it.span.start,
                                RuleError::Type("list items must be string or number literals".into()),
                            ));
                            bad = true;
                        }
                    }
                }
                if bad {
                    return Err(());
                }
                if kinds.0 && kinds.1 {
                    return self.type_err(e.span, "a list mixes strings and numbers");
                }
                Ok(Arc::new(ListSet::new(strs.iter().map(String::as_str))))
            }
            _ => self.type_err(e.span, "the right of `in` must be a list name or a list literal `[...]`"),
        }
    }

    fn method(&mut self, name: &str, name_span: Span, args: &[Expr], whole: Span) -> R<Method> {
        let known = ["contains", "startsWith", "startswith", "endsWith", "endswith", "matches", "glob"];
        if !known.contains(&name) {
            let h = hint(closest(name, known.into_iter()));
            return self.type_err(
                name_span,
                format!("unknown method `{name}`; methods are contains, startsWith, endsWith, matches, glob{h}"),
            );
        }
        let arg = match args {
            [a] => a,
            _ => return self.type_err(whole, format!("`.{name}()` takes exactly one argument")),
        };
        let lit = match &arg.kind {
            ExprKind::Str(s) => s.as_str(),
            _ => return self.type_err(arg.span, format!("`.{name}()` takes a string literal")),
        };
        Ok(match name {
            "contains" => Method::Contains(Box::new(memchr::memmem::Finder::new(lit.as_bytes()).into_owned())),
            "startsWith" | "startswith" => Method::StartsWith(lit.into()),
            "endsWith" | "endswith" => Method::EndsWith(lit.into()),
            "glob" => Method::Glob(Glob::new(lit)),
            _ => match regex::RegexBuilder::new(lit).size_limit(1 << 20).build() {
                Ok(re) => Method::Matches(Box::new(Matcher { re, pre: Prefilter::new(lit), caseless: None })),
                Err(e) => {
                    let msg = e.to_string();
                    let short = msg
                        .lines()
                        .rev()
                        .find(|l| !l.trim().is_empty())
                        .unwrap_or("invalid")
                        .trim_start_matches("error: ")
                        .to_string();
                    return self.fail(arg.span, RuleError::Regex(short));
                }
            },
        })
    }

    /// Compiles a field reference used outside conditions (`by`, `distinct`, `sum`, title placeholders).
    pub(crate) fn field_operand(schema: &Schema, name: &str) -> Result<(Operand, Option<FieldType>), RuleError> {
        match schema.resolve(name) {
            Some(Resolved::Field(id, ty)) => Ok((Operand::Field(id, ty), Some(ty))),
            Some(Resolved::Dynamic(p, rest)) => {
                Ok((Operand::Dyn(Box::new((schema.prefix(p).into(), rest.into()))), None))
            }
            None => Err(RuleError::UnknownField { name: name.to_string(), hint: hint(schema.closest(name)) }),
        }
    }
}

/// Which values of `kind` / `tool` an event must have for a condition to possibly hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Trigger {
    /// No constraint found: every event is a candidate.
    Any,
    /// The event must match one of these keys (an empty list: never).
    Keys(Vec<Key>),
}

/// One index key.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Key {
    Kind(Box<str>),
    Tool(Box<str>),
}

impl Trigger {
    /// The trigger of `c`, from its top-level `kind == ..`, `kind in [..]`, `tool == ..`, `tool in [..]`
    /// conjuncts (through `||` when every branch has one).
    pub(crate) fn of(c: &Cond, kind: Option<FieldId>, tool: Option<FieldId>) -> Trigger {
        let key = |id: &FieldId, v: &str| -> Option<Key> {
            if Some(*id) == kind {
                Some(Key::Kind(v.into()))
            } else if Some(*id) == tool {
                Some(Key::Tool(v.into()))
            } else {
                None
            }
        };
        match c {
            Cond::Const(false) => Trigger::Keys(Vec::new()),
            Cond::Cmp(CmpOp::Eq, Operand::Field(id, _), Operand::Str(v)) => {
                key(id, v).map_or(Trigger::Any, |k| Trigger::Keys(vec![k]))
            }
            Cond::In(Operand::Field(id, _), set) if Some(*id) == kind || Some(*id) == tool => match set.exact_items() {
                Some(items) => Trigger::Keys(items.iter().filter_map(|v| key(id, v)).collect()),
                None => Trigger::Any,
            },
            Cond::And(cs) => {
                let keyed: Vec<Vec<Key>> = cs
                    .iter()
                    .filter_map(|c| match Trigger::of(c, kind, tool) {
                        Trigger::Keys(ks) => Some(ks),
                        Trigger::Any => None,
                    })
                    .collect();
                let tool_only = |ks: &Vec<Key>| ks.iter().all(|k| matches!(k, Key::Tool(_)));
                let pick = keyed
                    .iter()
                    .find(|ks| ks.is_empty())
                    .or_else(|| keyed.iter().find(|ks| tool_only(ks)))
                    .or_else(|| keyed.first());
                pick.map_or(Trigger::Any, |ks| Trigger::Keys(ks.clone()))
            }
            Cond::Or(cs) => Trigger::union(cs.iter().map(|c| Trigger::of(c, kind, tool))),
            Cond::Macro(_, c) => Trigger::of(c, kind, tool),
            _ => Trigger::Any,
        }
    }

    /// The union of triggers: a candidate for any of them.
    pub(crate) fn union(ts: impl Iterator<Item = Trigger>) -> Trigger {
        let mut keys = Vec::new();
        for t in ts {
            match t {
                Trigger::Any => return Trigger::Any,
                Trigger::Keys(ks) => keys.extend(ks),
            }
        }
        keys.sort();
        keys.dedup();
        Trigger::Keys(keys)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::expr;
    use crate::schema::Dynamic;

    type ListMap = FxHashMap<String, Arc<ListSet>>;

    /// A schema, lists and macros for tests.
    pub(crate) struct TestNames {
        pub schema: Schema,
        pub lists: ListMap,
        pub macros: FxHashMap<String, String>,
    }

    impl Names for TestNames {
        fn schema(&self) -> &Schema {
            &self.schema
        }
        fn list(&mut self, name: &str) -> Option<Arc<ListSet>> {
            self.lists.get(name).cloned()
        }
        fn list_names(&self) -> Vec<&str> {
            self.lists.keys().map(String::as_str).collect()
        }
        fn macro_cond(&mut self, name: &str) -> Option<Result<Cond, Option<RuleError>>> {
            let src = self.macros.get(name)?.clone();
            let e = expr::parse(&src).ok()?;
            let mut c = Compiler { names: self, errors: Vec::new() };
            Some(c.cond(&e).map_err(|_| None))
        }
        fn macro_names(&self) -> Vec<&str> {
            self.macros.keys().map(String::as_str).collect()
        }
    }

    pub(crate) fn names() -> TestNames {
        let mut schema = Schema::new();
        for (n, t) in [
            ("kind", FieldType::Str),
            ("tool", FieldType::Str),
            ("dest.host", FieldType::Str),
            ("cmd", FieldType::Str),
            ("agent", FieldType::Str),
            ("bytes_out", FieldType::Num),
            ("score.entropy", FieldType::Num),
            ("privileged", FieldType::Bool),
        ] {
            schema.field(n, t);
        }
        schema.dynamic_prefix("attrs.");
        let mut lists = ListMap::default();
        lists.insert("egress_allow".into(), Arc::new(ListSet::new(["api.github.com", "*.internal"])));
        lists.insert("ports".into(), Arc::new(ListSet::new(["22", "443"])));
        let mut macros = FxHashMap::default();
        macros.insert("is_net".into(), "kind == 'net'".into());
        TestNames { schema, lists, macros }
    }

    /// A record of (field name, value) pairs.
    pub(crate) struct Rec(pub Vec<(&'static str, Value<'static>)>, pub Schema);

    impl Rec {
        fn get(&self, f: FieldId) -> Option<Value<'static>> {
            let name = self.1.name(f)?;
            self.0.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
        }
    }

    impl Record for Rec {
        fn str(&self, f: FieldId) -> Option<&str> {
            match self.get(f) {
                Some(Value::Str(s)) => Some(s),
                _ => None,
            }
        }
        fn num(&self, f: FieldId) -> Option<f64> {
            match self.get(f) {
                Some(Value::Num(n)) => Some(n),
                _ => None,
            }
        }
        fn boolean(&self, f: FieldId) -> Option<bool> {
            match self.get(f) {
                Some(Value::Bool(b)) => Some(b),
                _ => None,
            }
        }
        fn dynamic(&self, prefix: &str, name: &str) -> Option<Dynamic<'_>> {
            let full = format!("{prefix}{name}");
            self.0.iter().find(|(n, _)| *n == full).map(|(_, v)| match v {
                Value::Str(s) => Dynamic::Str(s),
                Value::Num(n) => Dynamic::Num(*n),
                Value::Bool(b) => Dynamic::Bool(*b),
            })
        }
        fn ts_ms(&self) -> i64 {
            0
        }
    }

    fn compile(src: &str) -> Result<Cond, Vec<(usize, RuleError)>> {
        let mut n = names();
        let e = expr::parse(src).unwrap();
        let mut c = Compiler { names: &mut n, errors: Vec::new() };
        match c.cond(&e) {
            Ok(cond) if c.errors.is_empty() => Ok(cond),
            _ => Err(c.errors),
        }
    }

    fn eval(src: &str, fields: Vec<(&'static str, Value<'static>)>) -> bool {
        let c = compile(src).unwrap_or_else(|e| panic!("{src}: {e:?}"));
        let rec = Rec(fields, names().schema);
        c.eval(&Cx::new(&rec))
    }

    use Value::{Bool as B, Num as N, Str as S};

    #[test]
    fn evaluates() {
        let net = || vec![("kind", S("net")), ("dest.host", S("evil.example")), ("bytes_out", N(5000.0))];
        assert!(eval("kind == 'net'", net()));
        assert!(eval("'net' == kind", net()));
        assert!(eval("is_net && !(dest.host in egress_allow)", net()));
        assert!(!eval("dest.host in egress_allow", net()));
        assert!(eval("dest.host in egress_allow", vec![("dest.host", S("db.internal"))]));
        assert!(eval("bytes_out > 4096 && bytes_out <= 5000", net()));
        assert!(eval("1000 < bytes_out", net()));
        assert!(eval("bytes_out in [5000, 6000]", net()));
        assert!(!eval("bytes_out in ports", net()));
        assert!(eval("bytes_out in ports", vec![("bytes_out", N(443.0))]));
        assert!(eval("dest.host.endsWith('.example') && dest.host.startsWith('evil')", net()));
        assert!(eval("dest.host.matches('^e[a-z]+\\\\.ex') && dest.host.glob('*.example')", net()));
        assert!(eval("dest.host.contains('l.ex')", net()));
        assert!(eval("lower(cmd).contains('ignore previous')", vec![("cmd", S("IGNORE Previous"))]));
        assert!(eval("lower(cmd) == 'rm'", vec![("cmd", S("rm"))]));
        assert!(!eval("lower(cmd) == 'RM'", vec![("cmd", S("Rm"))]));
        assert!(eval("agent + ':' + cmd in ['a:b']", vec![("agent", S("a")), ("cmd", S("b"))]));
        assert!(!eval("agent + ':' + cmd in ['a:b']", vec![("agent", S("a"))]));
        assert!(eval("bytes_out + 1 == 5001", net()));
        assert!(eval("privileged", vec![("privileged", B(true))]));
        assert!(!eval("privileged", vec![]));
        assert!(eval("!privileged", vec![]));
        assert!(eval("privileged == false", vec![("privileged", B(false))]));
        assert!(eval("has(dest.host) && !has(cmd)", net()));
        // Missing fields: every comparison is false.
        assert!(!eval("tool == 'x'", net()));
        assert!(!eval("tool != 'x'", net()));
        assert!(eval("!(tool == 'x')", net()));
        assert!(!eval("score.entropy >= 0", net()));
        // Dynamic fields are typed at run time.
        assert!(eval("attrs.region == 'eu'", vec![("attrs.region", S("eu"))]));
        assert!(!eval("attrs.region == 'eu'", vec![("attrs.region", N(1.0))]));
        assert!(eval("attrs.n > 3", vec![("attrs.n", N(4.0))]));
        assert!(eval("attrs.flag", vec![("attrs.flag", B(true))]));
        assert!(eval("has(attrs.flag)", vec![("attrs.flag", B(false))]));
        assert!(eval("attrs.host in egress_allow", vec![("attrs.host", S("x.internal"))]));
        assert!(eval("lower(attrs.x).startsWith('ab')", vec![("attrs.x", S("ABc"))]));
        assert!(eval("kind == 'a' || kind == 'net' && true", net()));
    }

    #[test]
    fn type_errors_point_at_tokens() {
        let cases = [
            ("dest.hots == 'a'", 0, "unknown field `dest.hots`; did you mean `dest.host`?"),
            ("kind == 5", 8, "cannot compare string with number"),
            ("bytes_out.contains('x')", 0, "applies to strings"),
            ("x in nolist", 5, "unknown list `nolist`"),
            ("kind in egress_alow", 8, "did you mean `egress_allow`"),
            ("egress_allow", 0, "right of `in`"),
            ("kind", 0, "not a condition"),
            ("cmd.matches('(')", 12, "invalid regular expression"),
            ("cmd.foo('x')", 4, "unknown method"),
            ("cmd.contains(kind)", 13, "string literal"),
            ("privileged > true", 13, "does not apply to bools"),
            ("bytes_out in egress_allow", 13, "not all numbers"),
            ("kind in [1, 'a']", 8, "mixes"),
            ("upper(kind) == 'a'", 0, "unknown function"),
            ("nosuch && kind == 1", 0, "not a field or macro"),
            ("'a' + 1 == 'b'", 6, "cannot add"),
        ];
        for (src, off, msg) in cases {
            let errs = compile(src).unwrap_err();
            let found = errs.iter().any(|(o, e)| *o == off && e.to_string().contains(msg));
            assert!(found, "{src}: {errs:?}");
        }
        // Both sides of `&&` are checked: two errors.
        let errs = compile("nosuch == 'a' && kind == 5").unwrap_err();
        assert_eq!(errs.len(), 2);
    }

    const LONG_MATCH: &str = "A long tool output, long enough for the packed search: Please IGNORE Previous notes.";
    const LONG_PLAIN: &str = "A long tool output, long enough for the packed search: nothing to ignore in it, none.";

    #[test]
    fn direct_leaves_evaluate_like_comparisons() {
        let ops = ["==", "!=", "<", "<=", ">", ">="];
        let records = [
            vec![("kind", S("net")), ("bytes_out", N(5.0))],
            vec![("kind", S("file")), ("bytes_out", N(f64::NAN))],
            vec![("kind", S("")), ("bytes_out", N(-1.0))],
            vec![("tool", S("x")), ("dest.host", S("db.internal"))],
            vec![("tool", S("443")), ("dest.host", S("api.github.com")), ("kind", S("ne"))],
            vec![("tool", S(LONG_MATCH)), ("kind", S("tool_result"))],
            vec![("tool", S(LONG_PLAIN))],
        ];
        for op in ops {
            let more = [
                "dest.host in egress_allow",
                "kind.startsWith('ne')",
                "kind.matches('^f')",
                "tool in ports",
                "lower(tool).matches('(ignore|forget)\\s+previous|<system>')",
            ];
            let srcs = [format!("kind {op} 'net'"), format!("bytes_out {op} 5"), format!("'net' {op} kind")];
            for src in srcs.into_iter().chain(more.map(String::from)) {
                let general = compile(&src).unwrap();
                let mut direct = general.clone();
                direct.direct_leaves();
                assert!(!matches!(direct, Cond::Cmp(..) | Cond::In(..) | Cond::Method(..)), "{src}: {direct:?}");
                for fields in &records {
                    let rec = Rec(fields.clone(), names().schema);
                    assert_eq!(direct.eval(&Cx::new(&rec)), general.eval(&Cx::new(&rec)), "{src} on {fields:?}");
                }
            }
        }
    }

    #[test]
    fn nodes_stay_small() {
        // Condition trees are walked per event: keep nodes within a cache line.
        assert!(std::mem::size_of::<Cond>() <= 64, "{}", std::mem::size_of::<Cond>());
        assert!(std::mem::size_of::<Operand>() <= 24, "{}", std::mem::size_of::<Operand>());
    }

    #[test]
    fn list_sets_match_globs() {
        let set = ListSet::new(["a.com", "*.internal", "api.*", "*ssh*", "*/.ssh/id_*", "x?z", "*[1]*"]);
        for (s, want) in [
            ("a.com", true),
            ("b.com", false),
            ("db.internal", true),
            ("api.github.com", true),
            ("/home/u/.ssh/id_rsa", true),
            ("~/.ssh/id_ed25519", true),
            ("xyz", true),
            ("xyyz", false),
            ("has[1]brackets", true),
            ("line\nbreak.internal", true),
            ("", false),
        ] {
            assert_eq!(set.contains_str(s), want, "{s}");
        }
        assert!(set.exact_items().is_none());
        assert_eq!(ListSet::new(["b", "a"]).exact_items(), Some(vec!["a", "b"]));
    }

    use proptest::strategy::Strategy;

    proptest::proptest! {
        /// A list lookup (exact items hashed, prefixes and suffixes compared as packed integers first)
        /// agrees with matching each item as a glob on its own, on strings made of the items' pieces.
        #[test]
        fn list_sets_agree_with_item_by_item_globs(parts in proptest::collection::vec(proptest::prop_oneof![
            proptest::string::string_regex("[a-z0-9.:/]{0,3}").unwrap(),
            proptest::sample::select(vec![
                "a.com", "api.", "example", ".internal", "172.16.", "1", "\u{e9}", "-very-long-suffix.example.org",
                "prefix-longer-than-8/", "x", ".",
            ]).prop_map(String::from),
        ], 0..6)) {
            let items = [
                "a.com", "*.internal", "api.*", "172.16.*", "1*", "*.a.com", "*-very-long-suffix.example.org",
                "prefix-longer-than-8/*", "*x", "*\u{e9}", "*", "exact",
            ];
            let s = parts.concat();
            for n in 1..=items.len() {
                // Every prefix of the item list, so each kind of item is also tested alone and in small sets.
                let set = ListSet::new(items[..n].iter().copied());
                let want = items[..n].iter().any(|g| Glob::new(g).is_match(&s));
                proptest::prop_assert_eq!(set.contains_str(&s), want, "{:?} in {:?}", s, &items[..n]);
            }
            for g in items {
                let set = ListSet::new([g]);
                proptest::prop_assert_eq!(set.contains_str(&s), Glob::new(g).is_match(&s), "{:?} in [{:?}]", s, g);
            }
        }

        /// The key filter in front of the exact items' hash set rejects no item: a lookup of exact items
        /// is membership, for the items themselves, strings next to them (same length, first or last
        /// byte) and the empty string.
        #[test]
        fn exact_item_filter_rejects_no_item(
            items in proptest::collection::vec(proptest::string::string_regex("[a-c.:\u{e9}0-9]{0,12}").unwrap(), 0..40),
            probes in proptest::collection::vec(proptest::string::string_regex("[a-c.:\u{e9}0-9]{0,12}").unwrap(), 0..20),
        ) {
            let set = ListSet::new(items.iter().map(String::as_str));
            for s in items.iter().chain(&probes).map(String::as_str).chain([""]) {
                proptest::prop_assert_eq!(set.contains_str(s), items.iter().any(|i| i == s), "{:?} in {:?}", s, items);
            }
        }
    }

    #[test]
    fn field_tests_go_first_and_results_stay() {
        let src = "cmd.matches('a+b') && (dest.host in egress_allow || bytes_out > 5) && !(bytes_out > 1)";
        let mut c = compile(src).unwrap();
        c.field_tests_first();
        let Cond::And(cs) = &c else { panic!("{c:?}") };
        assert!(matches!(cs[0], Cond::Not(..)), "{cs:?}");
        assert!(matches!(cs[1], Cond::Method(..)), "{cs:?}");
        assert!(matches!(cs[2], Cond::Or(..)), "{cs:?}");
        for (cmd, host, bytes) in
            [("aab", "x.internal", 0.0), ("aab", "x.com", 2.0), ("ab", "x.com", 9.0), ("c", "", 0.0)]
        {
            let f = vec![("cmd", Value::Str(cmd)), ("dest.host", Value::Str(host)), ("bytes_out", Value::Num(bytes))];
            let rec = Rec(f, names().schema);
            assert_eq!(c.eval(&Cx::new(&rec)), compile(src).unwrap().eval(&Cx::new(&rec)));
        }
    }

    #[test]
    fn specialization_folds_kind_tests() {
        let n = names();
        let kind = n.schema.lookup("kind").map(|x| x.0).unwrap();
        let c = compile("(kind == 'net' && bytes_out > 1) || (kind in ['file'] && has(cmd)) || is_net").unwrap();
        match c.specialize(kind, "metric") {
            Cond::Const(false) => {}
            other => panic!("{other:?}"),
        }
        match c.specialize(kind, "net") {
            Cond::Or(cs) => assert_eq!(cs.len(), 1, "{cs:?}"),
            Cond::Const(true) => {}
            other => panic!("{other:?}"),
        }
        match c.specialize(kind, "file") {
            Cond::Has(_) => {}
            other => panic!("{other:?}"),
        }
        let c = compile("!(kind == 'net') && kind != 'file'").unwrap();
        assert!(matches!(c.specialize(kind, "auth"), Cond::Const(true)));
        assert!(matches!(c.specialize(kind, "file"), Cond::Const(false)));
    }

    #[test]
    fn triggers() {
        let n = names();
        let kind = n.schema.lookup("kind").map(|x| x.0);
        let tool = n.schema.lookup("tool").map(|x| x.0);
        let t = |src: &str| Trigger::of(&compile(src).unwrap(), kind, tool);
        let k = |s: &str| Key::Kind(s.into());
        assert_eq!(t("kind == 'net' && bytes_out > 1"), Trigger::Keys(vec![k("net")]));
        assert_eq!(t("is_net && bytes_out > 1"), Trigger::Keys(vec![k("net")]));
        assert_eq!(t("kind in ['net', 'file']"), Trigger::Keys(vec![k("file"), k("net")]));
        assert_eq!(t("kind == 'tool_call' && tool == 'shell'"), Trigger::Keys(vec![Key::Tool("shell".into())]));
        assert_eq!(t("kind == 'net' || kind == 'file'"), Trigger::Keys(vec![k("file"), k("net")]));
        assert_eq!(t("kind == 'net' || bytes_out > 1"), Trigger::Any);
        assert_eq!(t("kind != 'net'"), Trigger::Any);
        assert_eq!(t("!(kind == 'net')"), Trigger::Any);
        assert_eq!(t("false && kind == 'net'"), Trigger::Keys(vec![]));
        assert_eq!(t("kind in egress_allow"), Trigger::Any);
    }
}
