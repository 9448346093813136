//! Instruction profile of the default rule pack per event kind, for callgrind (issue 4):
//!
//! ```sh
//! cargo build --profile bench -p vigil-benches --example rules_profile
//! EVENTS=20000 valgrind --tool=callgrind --toggle-collect='rules_profile::all_events' \
//!     target/release/examples/rules_profile
//! callgrind_annotate --inclusive=yes callgrind.out.* | grep -E 'rules_profile::(kind_|all_events)'
//! ```
//!
//! The events of the rules bench corpus (2,000 agents; `EVENTS`, default 100,000) go through
//! `Pack::evaluate` in file order twice: a first pass warms the regexes' lazy DFAs (as a long replay
//! and the criterion bench, which reuses one pack, do), then `all_events` runs them again on fresh
//! rule state, each event from a non-inlined function named after its kind. The inclusive cost of
//! `all_events` over the event count is the pack's instructions per event (the `EventRecord` included,
//! as in `rules/default_pack_evaluate`); that of `kind_<name>` over the count of that kind printed at
//! the end, the cost per event of that kind. `KIND=net` keeps the events of one kind only, so a flat
//! profile shows where that kind's instructions go.

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;
use vigil_benches::{corpus, decoded, lines, AGENTS};
use vigil_detector::rules::{default_pack, EventRecord, RuleSchema};
use vigil_detector::score::Comp;
use vigil_detector::{Engine, EngineConfig, Event};
use vigil_rules::{Pack, RuleMatch, RuleState};

type Scores = ([f64; Comp::COUNT], f64);

#[inline(always)]
fn one(pack: &Pack, ev: &Event<'_>, s: &Scores, st: &mut RuleState, out: &mut Vec<RuleMatch>) -> usize {
    out.clear();
    pack.evaluate(&EventRecord::new(ev, s.0, s.1), st, out);
    out.len()
}

macro_rules! kinds {
    ($($f:ident = $k:literal),* $(,)?) => {
        $(
            #[inline(never)]
            fn $f(pack: &Pack, ev: &Event<'_>, s: &Scores, st: &mut RuleState, out: &mut Vec<RuleMatch>) -> usize {
                // A distinct body per kind, so the linker does not fold the functions into one.
                black_box($k);
                one(pack, ev, s, st, out)
            }
        )*
        fn dispatch(pack: &Pack, ev: &Event<'_>, s: &Scores, st: &mut RuleState, out: &mut Vec<RuleMatch>) -> usize {
            match &*ev.kind_name {
                $($k => $f(pack, ev, s, st, out),)*
                _ => kind_other(pack, ev, s, st, out),
            }
        }
    };
}

kinds!(
    kind_llm_call = "llm_call",
    kind_tool_call = "tool_call",
    kind_tool_result = "tool_result",
    kind_net = "net",
    kind_metric = "metric",
    kind_message = "message",
    kind_auth = "auth",
    kind_file = "file",
    kind_process = "process",
    kind_other = "",
);

#[inline(never)]
fn all_events(pack: &Pack, events: &[(Event<'_>, Scores, usize)], states: &mut [RuleState]) -> usize {
    let mut out = Vec::new();
    let mut hits = 0;
    for (ev, s, a) in events {
        hits += dispatch(pack, ev, s, &mut states[*a], &mut out);
    }
    hits
}

fn main() {
    let events_n: u64 = std::env::var("EVENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000);
    let text = corpus(AGENTS, events_n);
    let lines = lines(&text);
    let events = decoded(&lines);
    let empty = Pack::load_sources(&[], &RuleSchema::get().schema).expect("an empty pack compiles");
    let mut engine = Engine::with_pack(EngineConfig::default(), Arc::new(empty)).expect("valid");
    let mut agent_of: HashMap<String, usize> = HashMap::new();
    let mut by_kind: HashMap<String, usize> = HashMap::new();
    let prepared: Vec<(Event<'_>, Scores, usize)> = events
        .into_iter()
        .map(|(ev, pos)| {
            let v = engine.process(&ev, pos);
            let n = agent_of.len();
            let a = *agent_of.entry(ev.agent_id.to_string()).or_insert(n);
            *by_kind.entry(ev.kind_name.to_string()).or_default() += 1;
            (ev, (v.components.map(|c| c.map_or(0.0, f64::from)), v.score), a)
        })
        .collect();
    let pack = default_pack();
    let mut states = vec![RuleState::default(); agent_of.len()];
    // `KIND=net`: only the events of one kind (so a flat profile shows that kind's costs).
    let mut prepared = prepared;
    if let Ok(k) = std::env::var("KIND") {
        prepared.retain(|(ev, _, _)| *ev.kind_name == *k);
    }
    // A first pass warms the regexes' lazy DFAs and the scratch buffers, as in a long replay (and in
    // the criterion bench, which reuses one pack); profile the second (`--toggle-collect=*all_events`).
    for (ev, s, a) in &prepared {
        black_box(one(&pack, ev, s, &mut states[*a], &mut Vec::new()));
    }
    let mut states = vec![RuleState::default(); agent_of.len()];
    let hits = black_box(all_events(&pack, &prepared, &mut states));
    let mut kinds: Vec<_> = by_kind.into_iter().collect();
    kinds.sort();
    println!("{} events, {hits} matches; by kind: {kinds:?}", prepared.len());
}
