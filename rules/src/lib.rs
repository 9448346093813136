//! The vigil rule language: detection rules that people can read, compiled into evaluators fast enough to
//! run on every event.
//!
//! # What this crate owns
//!
//! Rule packs are YAML files of Falco-style items — `list`s, `macro`s and `rule`s — so a detection
//! engineer can review them like code and a SOC analyst can read the rule behind an alert. A rule's `when`
//! is a CEL-like condition over an event's fields (`kind == "net" && !(dest.host in egress_allow)`), and a
//! rule may also be stateful: a `threshold` (count, distinct count or sum per `by` key within a window) or a
//! `sequence` (ordered steps per `by` key within a window, reset by `until`). This crate loads packs
//! ([`Pack::load_dir_or_file`]), type-checks them and reports **every** problem with its file, line and
//! column ([`Diagnostics`]), compiles them, indexes rules by the `kind` and `tool` values they can match,
//! evaluates records against them ([`Pack::evaluate`]), keeps the bounded per-agent
//! state of stateful rules ([`RuleState`]), swaps packs atomically while events flow ([`PackHandle`]), and
//! ships the default pack with its test cases ([`default_pack`], [`run_cases`]).
//!
//! # What it must not know
//!
//! Not the detector's event type, nor Kafka, HTTP, tokio or the wall clock. The caller describes what a
//! record has with a [`Schema`] (field name → id and type; prefixes such as `attrs.` for open-ended
//! fields) and hands records through the small [`Record`] trait; time is the record's own event time. So
//! the rule engine can be tested, benchmarked and reasoned about on its own, and the detector stays free to
//! change how it stores events.
//!
//! # Design choices
//!
//! - **Compile, don't interpret.** Conditions become trees of small enum nodes holding their literals in
//!   final form: regexes compiled at load, substring finders built, list items interned into hash sets
//!   (globs as prefix/suffix tests and one combined regex), field names resolved to ids. Evaluation reads
//!   borrowed strings and allocates nothing on the no-match path (`lower()` and `+` use per-thread scratch
//!   buffers; a test with a counting allocator holds this).
//! - **Index, then specialise.** Each enabled rule's top-level `kind == ..`/`kind in [..]`/`tool == ..`
//!   conjuncts (through macros and `||`) decide which events can reach it; an event only meets the rules
//!   listed under its kind and tool. For each indexed kind the rules' conditions are also specialised at
//!   load (`kind` tests folded to constants, dead branches removed), so a rule spanning several kinds pays
//!   only for the branch of the event's kind.
//! - **Skip the text you need not read.** A regex is preceded by a prefilter made from its syntax tree:
//!   literals one of which every match must contain, searched with SIMD substring search (or "any
//!   non-ASCII character" for regexes that only match non-ASCII text). Most payloads are rejected without
//!   running the regex. A macro is evaluated once per record however many rules use it, and so is a
//!   list lookup (`dest.host in egress_allow`) that several conditions make.
//! - **Missing means false.** A comparison, `in` or string method on a field the record lacks is false
//!   (so `!(x == "a")` is true); `has(x)` tests presence. Fields under a dynamic prefix are typed per record,
//!   and a type mismatch is false as well.
//! - **Bounded, deterministic state.** Stateful rules keep at most a fixed number of keys and entries per
//!   agent ([`MAX_KEYS`], [`MAX_ENTRIES`], [`MAX_DISTINCT`], [`MAX_STEPS`]), run on event time, never
//!   iterate hash maps into output, and hash with a fixed function so a checkpoint restores the same
//!   behaviour. State follows a pack swap when the rule's definition is unchanged.
//! - **All errors at once.** Loading never stops at the first problem; a pack with any problem is refused
//!   whole, and a refused swap leaves the running pack in place.
//!
//! # Semantics of stateful rules
//!
//! `when` and `exceptions` filter the events a stateful rule sees (for a sequence, `when` is optional).
//! A `threshold` fires when, within `window` of event time, per `by` key, the count of such events, the
//! number of distinct values of `distinct`, or the sum of the `sum` fields reaches `count`; the key then
//! starts over. A `sequence` fires when its steps match in order within `window` of the first step, per
//! `by` key (the latest start is kept, so a repeated first step restarts the window; one event advances a
//! sequence by one step at most); an event matching `until` clears the key. A missing `by` field counts
//! as the empty string. Matches carry the `by` values (`group_key`), a detail with the numbers, and the
//! event times of the events that made them.
//!
//! # The condition language
//!
//! Literals (`"s"`, `'s'`, raw `r"s"`, numbers, `true`, `false`, lists `[..]`), field paths, `== != < <= >
//! >=`, `&& || !`, parentheses, `x in list_name`, `x in ["a", "b"]` (list items with `*` or `?` are globs),
//! string methods `contains`, `startsWith`, `endsWith`, `matches` (regex, unanchored), `glob`, functions
//! `lower(x)` and `has(x)`, `+` (string concatenation or numeric addition), and macros by name. In string
//! literals `\\ \" \' \n \t \r` are escapes and any other backslash is kept, so regexes read naturally.
//! A condition that starts with `!` must be quoted in YAML (`!` starts a YAML tag).

mod cases;
mod compile;
mod default_pack;
mod error;
pub mod expr;
mod handle;
mod json_record;
mod pack;
mod prefilter;
mod schema;
mod state;
mod util;
mod yaml;

pub use cases::{load_cases, parse_cases, run_cases, CaseReport, CaseResult, Expect, TestCase, Uncovered};
pub use default_pack::{default_case_sources, default_pack, default_sources};
pub use error::{Diagnostic, Diagnostics, RuleError};
pub use handle::PackHandle;
pub use json_record::{host_and_port_of, host_of, port_of, JsonRecord, FIRST_SEEN_TOOL, SCORE_COMPONENTS};
pub use pack::{read_yaml_files, Action, Pack, RuleInfo, RuleKind, Severity};
pub use schema::{Dynamic, FieldId, FieldType, Record, Schema};
pub use state::{RuleMatch, RuleState, MAX_DISTINCT, MAX_ENTRIES, MAX_EVIDENCE, MAX_KEYS, MAX_STEPS};
