//! Checkpoint storage: an engine snapshot together with the source position it reflects.
//!
//! Single node: one file per checkpoint name in the state directory, replaced atomically (write a
//! temporary file, fsync it, rename it over the old one, fsync the directory) and checksummed (the
//! snapshot frame). A torn or corrupt file is reported and ignored — the detector starts cold rather
//! than from garbage. Group mode stores the same bytes in a compacted Kafka topic (`kafka.rs`).

use serde::{Deserialize, Serialize};
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use thiserror::Error;
use vigil_detector::snapshot::{frame, unframe, SnapshotError};

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("cannot write checkpoint {path}: {error}")]
    Write { path: String, error: io::Error },
    #[error("cannot read checkpoint {path}: {error}")]
    Read { path: String, error: io::Error },
    #[error("checkpoint {path} is unusable: {error}")]
    Corrupt { path: String, error: String },
}

/// An engine snapshot and the position after the last event it includes (a Kafka offset to resume
/// from, or 0 for sources that cannot be replayed).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub next_offset: i64,
    /// Unix milliseconds when it was taken (for the checkpoint-age metric and logs).
    pub taken_at_ms: i64,
    pub engine: Vec<u8>,
}

impl Checkpoint {
    /// Checksummed bytes.
    pub fn encode(&self) -> Vec<u8> {
        frame(&postcard::to_allocvec(self).expect("a checkpoint serialises"))
    }

    pub fn decode(bytes: &[u8]) -> Result<Checkpoint, SnapshotError> {
        let payload = unframe(bytes)?;
        postcard::from_bytes(payload).map_err(|e| SnapshotError::Payload(e.to_string()))
    }
}

/// A state directory.
#[derive(Clone, Debug)]
pub struct StateDir {
    dir: PathBuf,
}

impl StateDir {
    /// Opens (creating) the directory.
    pub fn open(dir: &Path) -> Result<StateDir, StoreError> {
        fs::create_dir_all(dir).map_err(|e| StoreError::Write { path: dir.display().to_string(), error: e })?;
        Ok(StateDir { dir: dir.to_path_buf() })
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    fn file(&self, name: &str) -> PathBuf {
        let safe: String =
            name.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '_' }).collect();
        self.dir.join(format!("{safe}.ckpt"))
    }

    /// Replaces checkpoint `name` atomically.
    pub fn save(&self, name: &str, ckpt: &Checkpoint) -> Result<(), StoreError> {
        let path = self.file(name);
        let tmp = path.with_extension("ckpt.tmp");
        let err = |e: io::Error| StoreError::Write { path: path.display().to_string(), error: e };
        let mut f = fs::File::create(&tmp).map_err(err)?;
        f.write_all(&ckpt.encode()).map_err(err)?;
        f.sync_all().map_err(err)?;
        drop(f);
        fs::rename(&tmp, &path).map_err(err)?;
        // Make the rename itself durable.
        if let Ok(d) = fs::File::open(&self.dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }

    /// Loads checkpoint `name`; `Ok(None)` when there is none.
    pub fn load(&self, name: &str) -> Result<Option<Checkpoint>, StoreError> {
        let path = self.file(name);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StoreError::Read { path: path.display().to_string(), error: e }),
        };
        Checkpoint::decode(&bytes)
            .map(Some)
            .map_err(|e| StoreError::Corrupt { path: path.display().to_string(), error: e.to_string() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saves_atomically_and_detects_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateDir::open(&dir.path().join("state")).unwrap();
        assert_eq!(store.load("p0").unwrap(), None);
        let c = Checkpoint { next_offset: 42, taken_at_ms: 7, engine: vec![1, 2, 3] };
        store.save("p0", &c).unwrap();
        store.save("p0", &c).unwrap();
        assert_eq!(store.load("p0").unwrap(), Some(c));
        let path = store.file("p0");
        let mut bytes = fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        fs::write(&path, &bytes).unwrap();
        assert!(matches!(store.load("p0"), Err(StoreError::Corrupt { .. })));
        fs::write(&path, &bytes[..10]).unwrap();
        assert!(matches!(store.load("p0"), Err(StoreError::Corrupt { .. })));
    }

    #[test]
    fn names_cannot_escape_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateDir::open(dir.path()).unwrap();
        assert!(store.file("../../etc/passwd").starts_with(dir.path()));
    }
}
