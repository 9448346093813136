//! Hot reload of the rule pack (`[rules] path`) and the learned models (`[models] dir`).
//!
//! A watcher thread reads the files every few seconds and reloads when their names or contents
//! changed. What loads is published on a `watch` channel; the engine thread(s) pick it up between
//! records (`Engine::set_pack` / `Engine::set_models`, so no event sees half a pack, and state
//! carries over). What does not load is refused with a log line and
//! `vigil_reloads_total{kind="rules"|"models",outcome="error"}`; the running version stays.

use crate::metrics::Metrics;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use vigil_detector::score::model::ModelSet;
use vigil_rules::Pack;

/// How often the files are read.
pub const POLL_INTERVAL: Duration = Duration::from_secs(2);

/// Something loaded from files and swapped while events flow.
pub trait Reloadable: Sized + Send + Sync + 'static {
    /// The `kind` label of `vigil_reloads_total`.
    const KIND: &'static str;
    /// What is read on every poll; its hash decides whether to load.
    type Sources: Hash;
    fn read(path: &Path) -> Result<Self::Sources, String>;
    fn load(path: &Path, sources: Self::Sources) -> Result<Self, String>;
    /// For the log line of a reload.
    fn summary(&self) -> String;
}

impl Reloadable for Pack {
    const KIND: &'static str = "rules";
    type Sources = Vec<(String, String)>;

    fn read(path: &Path) -> Result<Self::Sources, String> {
        vigil_rules::read_yaml_files(path).map_err(|d| d.0.iter().map(|x| x.to_string()).collect::<Vec<_>>().join("\n"))
    }

    fn load(_: &Path, sources: Self::Sources) -> Result<Pack, String> {
        vigil_detector::rules::load_sources(&sources)
    }

    fn summary(&self) -> String {
        format!("{} rules", self.rules().len())
    }
}

impl Reloadable for ModelSet {
    const KIND: &'static str = "models";
    /// Names and contents of the directory's `*.json` artifacts.
    type Sources = Vec<(String, Vec<u8>)>;

    fn read(path: &Path) -> Result<Self::Sources, String> {
        let entries = std::fs::read_dir(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut files = Vec::new();
        for entry in entries {
            let p = entry.map_err(|e| format!("{}: {e}", path.display()))?.path();
            if p.extension().is_some_and(|x| x == "json") {
                let bytes = std::fs::read(&p).map_err(|e| format!("{}: {e}", p.display()))?;
                files.push((p.display().to_string(), bytes));
            }
        }
        files.sort();
        Ok(files)
    }

    fn load(path: &Path, sources: Self::Sources) -> Result<ModelSet, String> {
        if sources.is_empty() {
            return Err(format!("{} holds no model artifacts (*.json written by `vigil train`)", path.display()));
        }
        ModelSet::load_dir(path).map_err(|e| e.to_string())
    }

    fn summary(&self) -> String {
        format!("models for {}", self.classes().join(", "))
    }
}

/// Watches one path; see the module documentation.
pub struct Watcher<T: Reloadable> {
    path: PathBuf,
    last: u64,
    tx: watch::Sender<Arc<T>>,
    metrics: Arc<Metrics>,
}

pub type PackWatcher = Watcher<Pack>;

/// A fingerprint of what was read (or of the read error).
fn fingerprint<S: Hash>(sources: &Result<S, String>) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    match sources {
        Ok(s) => s.hash(&mut h),
        Err(e) => e.hash(&mut h),
    }
    h.finish()
}

impl<T: Reloadable> Watcher<T> {
    /// Loads what is at `path` (an error if it does not load: the detector must not start without
    /// it) and returns the watcher with the receiving end engines poll.
    pub fn start(path: PathBuf, metrics: Arc<Metrics>) -> Result<(Watcher<T>, watch::Receiver<Arc<T>>), String> {
        let sources = T::read(&path);
        let last = fingerprint(&sources);
        let value = T::load(&path, sources?)?;
        let (tx, rx) = watch::channel(Arc::new(value));
        Ok((Watcher { path, last, tx, metrics }, rx))
    }

    /// Checks the files once; returns whether a new version was published.
    pub fn poll(&mut self) -> bool {
        let sources = T::read(&self.path);
        let fp = fingerprint(&sources);
        if fp == self.last {
            return false;
        }
        self.last = fp;
        match sources.and_then(|s| T::load(&self.path, s)) {
            Ok(value) => {
                let summary = value.summary();
                self.tx.send_replace(Arc::new(value));
                self.metrics.reloads.with_label_values(&[T::KIND, "ok"]).inc();
                tracing::info!(kind = T::KIND, path = %self.path.display(), %summary, "Reloaded.");
                true
            }
            Err(e) => {
                self.metrics.reloads.with_label_values(&[T::KIND, "error"]).inc();
                tracing::error!(kind = T::KIND, path = %self.path.display(), errors = %e, "Reload refused; the running version stays.");
                false
            }
        }
    }

    /// Polls every [`POLL_INTERVAL`] on a thread of its own until `stop` is set.
    pub fn spawn(mut self, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
        std::thread::Builder::new()
            .name(format!("vigil-{}-watch", T::KIND))
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

/// The engine side: a receiver checked between records.
pub struct Updates<T>(Option<watch::Receiver<Arc<T>>>);

pub type PackUpdates = Updates<Pack>;
pub type ModelUpdates = Updates<ModelSet>;

impl<T> Updates<T> {
    /// No reloads (the built-in pack, no models, or a test).
    pub fn none() -> Updates<T> {
        Updates(None)
    }

    pub fn new(rx: watch::Receiver<Arc<T>>) -> Updates<T> {
        Updates(Some(rx))
    }

    /// The current version.
    pub fn current(&self) -> Option<Arc<T>> {
        self.0.as_ref().map(|rx| Arc::clone(&rx.borrow()))
    }

    /// A newly published version, once.
    pub fn take_new(&mut self) -> Option<Arc<T>> {
        let rx = self.0.as_mut()?;
        if rx.has_changed().unwrap_or(false) {
            Some(Arc::clone(&rx.borrow_and_update()))
        } else {
            None
        }
    }
}

/// Starts watching `path` when given; the updates engines poll and the watcher thread.
pub fn watch<T: Reloadable>(
    path: Option<&Path>,
    metrics: &Arc<Metrics>,
    stop: &Arc<AtomicBool>,
) -> Result<(Updates<T>, Option<std::thread::JoinHandle<()>>), String> {
    match path {
        Some(p) => {
            let (w, rx) = Watcher::<T>::start(p.to_path_buf(), Arc::clone(metrics))?;
            Ok((Updates::new(rx), Some(w.spawn(Arc::clone(stop)))))
        }
        None => Ok((Updates::none(), None)),
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
