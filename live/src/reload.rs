//! Hot reload of the rule pack (`[rules] path`).
//!
//! A watcher thread reads the pack's files every few seconds and recompiles when their names or
//! contents changed. A pack that compiles is published on a `watch` channel; the engine thread(s) pick
//! it up between records (`Engine::set_pack`, so no event sees half a pack, and rule state of unchanged
//! rules carries over). A pack that does not compile is refused with a log line and
//! `vigil_reloads_total{kind="rules",outcome="error"}`; the running pack stays.

use crate::metrics::Metrics;
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use vigil_rules::Pack;

/// How often the pack's files are read.
pub const POLL_INTERVAL: Duration = Duration::from_secs(2);

/// Watches one pack path; see the module documentation.
pub struct PackWatcher {
    path: PathBuf,
    last: u64,
    tx: watch::Sender<Arc<Pack>>,
    metrics: Arc<Metrics>,
}

/// A fingerprint of the pack's sources: file names and contents (or the read error).
fn fingerprint(sources: &Result<Vec<(String, String)>, String>) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    match sources {
        Ok(files) => files.hash(&mut h),
        Err(e) => e.hash(&mut h),
    }
    h.finish()
}

fn read(path: &std::path::Path) -> Result<Vec<(String, String)>, String> {
    vigil_rules::read_yaml_files(path).map_err(|d| d.0.iter().map(|x| x.to_string()).collect::<Vec<_>>().join("\n"))
}

impl PackWatcher {
    /// Loads the pack at `path` (an error if it does not compile: the detector must not start without
    /// its rules) and returns the watcher with the receiving end engines poll.
    pub fn start(path: PathBuf, metrics: Arc<Metrics>) -> Result<(PackWatcher, watch::Receiver<Arc<Pack>>), String> {
        let sources = read(&path);
        let last = fingerprint(&sources);
        let pack = vigil_detector::rules::load_sources(&sources?)?;
        let (tx, rx) = watch::channel(Arc::new(pack));
        Ok((PackWatcher { path, last, tx, metrics }, rx))
    }

    /// Checks the files once; returns whether a new pack was published.
    pub fn poll(&mut self) -> bool {
        let sources = read(&self.path);
        let fp = fingerprint(&sources);
        if fp == self.last {
            return false;
        }
        self.last = fp;
        match sources.and_then(|s| vigil_detector::rules::load_sources(&s)) {
            Ok(pack) => {
                let rules = pack.rules().len();
                self.tx.send_replace(Arc::new(pack));
                self.metrics.reloads.with_label_values(&["rules", "ok"]).inc();
                tracing::info!(path = %self.path.display(), rules, "Rule pack reloaded.");
                true
            }
            Err(e) => {
                self.metrics.reloads.with_label_values(&["rules", "error"]).inc();
                tracing::error!(path = %self.path.display(), errors = %e, "Rule pack refused; the running pack stays.");
                false
            }
        }
    }

    /// Polls every [`POLL_INTERVAL`] on a thread of its own until `stop` is set.
    pub fn spawn(mut self, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
        std::thread::Builder::new()
            .name("vigil-rules-watch".into())
            .spawn(move || {
                // Sleep in small steps so shutdown is prompt; poll at the interval.
                let step = Duration::from_millis(100);
                'watch: loop {
                    let mut slept = Duration::ZERO;
                    while slept < POLL_INTERVAL {
                        if stop.load(Ordering::Acquire) || self.tx.is_closed() {
                            break 'watch;
                        }
                        std::thread::sleep(step);
                        slept += step;
                    }
                    self.poll();
                }
            })
            .expect("spawning a thread")
    }
}

/// The engine side: a pack receiver checked between records.
pub struct PackUpdates(Option<watch::Receiver<Arc<Pack>>>);

impl PackUpdates {
    /// No reloads (the built-in pack, or a test).
    pub fn none() -> PackUpdates {
        PackUpdates(None)
    }

    pub fn new(rx: watch::Receiver<Arc<Pack>>) -> PackUpdates {
        PackUpdates(Some(rx))
    }

    /// The current pack.
    pub fn current(&self) -> Option<Arc<Pack>> {
        self.0.as_ref().map(|rx| Arc::clone(&rx.borrow()))
    }

    /// A newly published pack, once.
    pub fn take_new(&mut self) -> Option<Arc<Pack>> {
        let rx = self.0.as_mut()?;
        if rx.has_changed().unwrap_or(false) {
            Some(Arc::clone(&rx.borrow_and_update()))
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULE: &str = "- rule: r1\n  description: d\n  severity: high\n  when: kind == \"net\"\n";

    #[test]
    fn publishes_good_packs_and_refuses_broken_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pack.yaml");
        std::fs::write(&path, RULE).unwrap();
        let metrics = Arc::new(Metrics::new());
        let (mut w, rx) = PackWatcher::start(path.clone(), Arc::clone(&metrics)).unwrap();
        let mut updates = PackUpdates::new(rx);
        assert_eq!(updates.current().unwrap().rules()[0].id, "r1");
        assert!(updates.take_new().is_none());
        assert!(!w.poll(), "unchanged files are not recompiled");

        std::fs::write(&path, RULE.replace("r1", "r2")).unwrap();
        assert!(w.poll());
        assert_eq!(updates.take_new().unwrap().rules()[0].id, "r2");
        assert!(updates.take_new().is_none(), "a pack is delivered once");

        std::fs::write(&path, "- rule: r3\n  severity: extreme\n").unwrap();
        assert!(!w.poll());
        assert!(updates.take_new().is_none());
        assert_eq!(updates.current().unwrap().rules()[0].id, "r2", "the running pack stays");
        let text = metrics.render();
        assert!(text.contains("vigil_reloads_total{kind=\"rules\",outcome=\"error\"} 1"), "{text}");
        assert!(text.contains("vigil_reloads_total{kind=\"rules\",outcome=\"ok\"} 1"), "{text}");

        // A broken pack must not keep the watcher from taking the next good one.
        std::fs::write(&path, RULE.replace("r1", "r4")).unwrap();
        assert!(w.poll());
        assert_eq!(updates.take_new().unwrap().rules()[0].id, "r4");
    }

    #[test]
    fn a_broken_pack_at_start_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pack.yaml");
        std::fs::write(&path, "- rule: r3\n  severity: extreme\n").unwrap();
        let e = PackWatcher::start(path, Arc::new(Metrics::new())).err().unwrap();
        assert!(e.contains("pack.yaml:"), "{e}");
        let e = PackWatcher::start(dir.path().join("missing"), Arc::new(Metrics::new())).err().unwrap();
        assert!(e.contains("missing"), "{e}");
    }
}
