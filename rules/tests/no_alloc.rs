//! The hot path does not allocate: evaluating the default pack on events that match no rule performs no
//! heap allocation once per-agent state and per-thread scratch space have warmed up.
//!
//! A counting global allocator wraps the system one; only this test binary uses it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use vigil_rules::{default_pack, JsonRecord, RuleState};

struct Counting;

static ALLOCS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn no_allocation_on_the_no_match_path() {
    let schema = JsonRecord::standard_schema();
    let pack = default_pack(&schema).expect("default pack compiles");
    let prose = "The Customer asked about order 1182; we shipped it on Monday and will update the ticket. ".repeat(12);
    let events: Vec<serde_json::Value> = (0..1200i64)
        .map(|i| {
            let base = serde_json::json!({"ts": i * 1000, "agent_id": format!("a{}", i % 4), "agent": "support-bot", "session_id": "s1"});
            let mut e = base.as_object().cloned().unwrap_or_default();
            let body = match i % 8 {
                0 => serde_json::json!({"kind": "llm_call", "model": "m", "tokens": {"input": 1200, "output": 90}}),
                1 => serde_json::json!({"kind": "tool_call", "tool": "crm.lookup", "args": {"customer": "C-1182"}}),
                2 => serde_json::json!({"kind": "tool_result", "tool": "crm.lookup", "payload": prose}),
                3 => serde_json::json!({"kind": "message", "role": "assistant", "content": prose}),
                4 => serde_json::json!({"kind": "net", "dest": "api.github.com:443", "method": "GET", "bytes_out": 300}),
                5 => serde_json::json!({"kind": "file", "op": "read", "path": format!("/srv/app/doc-{}.md", i % 7)}),
                6 => serde_json::json!({"kind": "process", "cmd": "git status"}),
                _ => serde_json::json!({"kind": "auth", "op": "login", "outcome": "ok"}),
            };
            if let Some(b) = body.as_object() {
                e.extend(b.clone());
            }
            serde_json::Value::Object(e)
        })
        .collect();
    let records: Vec<JsonRecord> = events.iter().map(|e| JsonRecord::new(e, &schema)).collect();
    let mut states = vec![RuleState::default(); 4];
    let mut out = Vec::with_capacity(8);
    // Warm-up (800 s of event time): per-agent state of counting rules reaches its bounds, regex caches
    // and scratch buffers exist.
    for (i, r) in records.iter().enumerate().take(800) {
        pack.evaluate(r, &mut states[i % 4], &mut out);
    }
    assert!(out.is_empty(), "these events must match no rule: {out:?}");
    let before = ALLOCS.load(Ordering::Relaxed);
    for (i, r) in records.iter().enumerate().skip(800) {
        pack.evaluate(r, &mut states[i % 4], &mut out);
    }
    let allocations = ALLOCS.load(Ordering::Relaxed) - before;
    assert!(out.is_empty());
    assert_eq!(allocations, 0, "evaluation allocated on the no-match path");
}
