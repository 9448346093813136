//! The vigil detection engine: events in, scores and alerts out.
//!
//! This crate owns the path from a decoded [`event::Event`] to a [`shard::Verdict`]: the input contract
//! ([`decode`]), per-agent and per-class state ([`state`]), the statistical components that map event
//! fields onto `vigil-models` statistics ([`score`]), fusion and alerting ([`shard`], [`alert`],
//! [`explain`]). It is synchronous, deterministic and free of I/O: time comes from the events, never
//! from the wall clock, and nothing here knows about files, Kafka or HTTP — sources and sinks live at
//! the edges (`vigil-replay`, the live detector) and feed it.
//!
//! ```text
//! bytes ──decode──▶ Event ──Engine::shard_of──▶ Shard::process ──▶ Verdict { score, components, alert }
//!                                               │ advance time (windows)
//!                                               │ score components ──▶ p-values
//!                                               │ fuse ──▶ score; group, cooldown, actions ──▶ alert
//!                                               └ learn (weight reduced for anomalous events)
//! ```

pub mod alert;
pub mod blast;
pub mod classes;
pub mod config;
pub mod dead_letter;
pub mod decode;
pub mod engine;
pub mod event;
pub mod explain;
pub mod hash;
pub mod json;
pub mod output;
pub mod rules;
pub mod score;
pub mod shard;
pub mod snapshot;
pub mod state;
pub mod time;

pub use alert::{Alert, Position};
pub use config::EngineConfig;
pub use decode::{decode, decode_into, Limits, Reason, Reject};
pub use engine::Engine;
pub use event::{Event, Kind};
pub use shard::{Shard, ShardStats, Verdict};
