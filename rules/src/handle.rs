//! A swappable pack: readers take the current pack with one atomic load (wait-free, no lock), a writer
//! replaces it atomically. A new pack that fails to load is refused and the current one stays.
//!
//! Readers should take the pack once per batch of events ([`PackHandle::current`]) and use that `Arc` for
//! the whole batch, so a batch is judged by one pack. Per-agent [`crate::RuleState`] notices the swap by
//! the pack fingerprint and keeps the state of rules whose definition did not change.

use crate::error::Diagnostics;
use crate::pack::Pack;
use crate::schema::Schema;
use arc_swap::ArcSwap;
use std::path::Path;
use std::sync::Arc;

/// The current pack, replaceable while events flow.
#[derive(Debug)]
pub struct PackHandle {
    current: ArcSwap<Pack>,
}

impl PackHandle {
    /// A handle serving `pack`.
    pub fn new(pack: Pack) -> Self {
        Self::from_arc(Arc::new(pack))
    }

    /// A handle serving an already shared pack.
    pub fn from_arc(pack: Arc<Pack>) -> Self {
        PackHandle { current: ArcSwap::new(pack) }
    }

    /// The current pack. Cheap (an atomic load and a reference-count increment); hold it for a batch.
    pub fn current(&self) -> Arc<Pack> {
        self.current.load_full()
    }

    /// Replaces the pack; returns the previous one.
    pub fn swap(&self, pack: Pack) -> Arc<Pack> {
        self.current.swap(Arc::new(pack))
    }

    /// Loads a pack from `path` and, if it is valid, makes it current and returns the previous one. If it
    /// is not, returns every problem and keeps serving the current pack.
    pub fn reload(&self, path: &Path, schema: &Schema) -> Result<Arc<Pack>, Diagnostics> {
        let pack = Pack::load_dir_or_file(path, schema)?;
        Ok(self.swap(pack))
    }

    /// Like [`PackHandle::reload`], from `(file name, text)` pairs.
    pub fn reload_sources(&self, files: &[(String, String)], schema: &Schema) -> Result<Arc<Pack>, Diagnostics> {
        let pack = Pack::load_sources(files, schema)?;
        Ok(self.swap(pack))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json_record::JsonRecord;
    use crate::state::RuleState;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    fn pack_src(title: &str) -> Vec<(String, String)> {
        vec![(
            "p.yaml".to_string(),
            format!("- rule: r\n  title: {title}\n  description: d\n  severity: low\n  when: kind == 'net'\n"),
        )]
    }

    #[test]
    fn pack_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Pack>();
        check::<PackHandle>();
    }

    #[test]
    fn invalid_reload_keeps_old_pack() {
        let schema = JsonRecord::standard_schema();
        let h = PackHandle::new(Pack::load_sources(&pack_src("one"), &schema).unwrap());
        let bad = vec![("p.yaml".to_string(), "- rule: r\n  when: kind == \n".to_string())];
        let err = h.reload_sources(&bad, &schema).unwrap_err();
        assert!(!err.is_empty());
        assert_eq!(h.current().rules()[0].title, "one");
        let old = h.reload_sources(&pack_src("two"), &schema).unwrap();
        assert_eq!(old.rules()[0].title, "one");
        assert_eq!(h.current().rules()[0].title, "two");
        let missing = h.reload(Path::new("/nonexistent/pack"), &schema).unwrap_err();
        assert!(missing.to_string().contains("cannot read"));
        assert_eq!(h.current().rules()[0].title, "two");
    }

    #[test]
    fn concurrent_readers_see_whole_packs() {
        let schema = JsonRecord::standard_schema();
        let h = Arc::new(PackHandle::new(Pack::load_sources(&pack_src("v0"), &schema).unwrap()));
        let stop = Arc::new(AtomicBool::new(false));
        let evaluated = Arc::new(AtomicUsize::new(0));
        let ev = serde_json::json!({"ts": 1, "agent_id": "a", "kind": "net", "dest": "x.com"});
        let readers: Vec<_> = (0..4)
            .map(|_| {
                let (h, stop, evaluated, schema, ev) =
                    (h.clone(), stop.clone(), evaluated.clone(), schema.clone(), ev.clone());
                std::thread::spawn(move || {
                    let rec = JsonRecord::new(&ev, &schema);
                    let mut st = RuleState::default();
                    let mut out = Vec::new();
                    let mut seen = std::collections::BTreeSet::new();
                    while !stop.load(Ordering::Relaxed) || seen.is_empty() {
                        let pack = h.current();
                        // A batch: the same pack throughout.
                        for _ in 0..10 {
                            out.clear();
                            pack.evaluate(&rec, &mut st, &mut out);
                            assert_eq!(out.len(), 1);
                            assert_eq!(out[0].rule, 0);
                        }
                        let t = pack.rules()[0].title.clone();
                        assert!(t.starts_with('v'), "{t}");
                        seen.insert(t);
                        evaluated.fetch_add(10, Ordering::Relaxed);
                    }
                    seen
                })
            })
            .collect();
        for i in 1..=50 {
            let src = pack_src(&format!("v{i}"));
            h.reload_sources(&src, &schema).unwrap();
            // Every other round, try an invalid pack: refused, nothing changes.
            let bad = vec![("p.yaml".to_string(), format!("- rule: r{i}\n  when: (\n"))];
            assert!(h.reload_sources(&bad, &schema).is_err());
            std::thread::yield_now();
        }
        stop.store(true, Ordering::Relaxed);
        for r in readers {
            let seen = r.join().expect("reader thread panicked");
            assert!(!seen.is_empty());
        }
        assert_eq!(h.current().rules()[0].title, "v50");
        assert!(evaluated.load(Ordering::Relaxed) > 0);
    }
}
