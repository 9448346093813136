//! The crate's one error type, and the receiver's verdict on a signature.

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong in this crate, each variant saying whose fault it is and whether retrying helps.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A `[[webhook]]` key is invalid (the operator's configuration; fix the key, retrying cannot help).
    #[error("[[webhook]] {endpoint:?}: key `{key}`: {message}")]
    Config {
        /// The endpoint's `name` (or `#<index>` when the name itself is missing or bad).
        endpoint: String,
        /// The offending key, as written in the configuration file.
        key: &'static str,
        /// What is wrong and what would be right.
        message: String,
    },
    /// The outbox directory could not be read or written (the machine: disk full, permissions, I/O error).
    /// The caller must not count the source position as done; retrying later may help.
    #[error("webhook outbox: cannot {op} {path}: {source}")]
    Io {
        /// What the outbox was doing.
        op: &'static str,
        /// The file or directory concerned.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// A record in the outbox no longer matches its checksum (the disk or another process damaged it). The
    /// delivery is dead-lettered; retrying cannot help.
    #[error("webhook outbox: record {seq} at {path}:{offset} is damaged")]
    Corrupt {
        /// The segment file.
        path: PathBuf,
        /// Byte offset of the record.
        offset: u64,
        /// The record's sequence number.
        seq: u64,
    },
    /// A record is too large for the outbox format (our bug or an absurd alert; retrying cannot help).
    #[error("webhook outbox: record for alert {alert_id:?} is too large ({field}: {len} bytes, limit {limit})")]
    RecordTooLarge {
        /// The alert concerned.
        alert_id: String,
        /// Which field overflowed.
        field: &'static str,
        /// Its length in bytes.
        len: usize,
        /// The format's limit in bytes.
        limit: usize,
    },
    /// An endpoint in `enforce` mode needs a durable outbox, and none was given (wiring bug: configure `[state] dir`).
    #[error("[[webhook]] {endpoint:?}: mode \"enforce\" needs a durable outbox; configure `[state] dir`")]
    OutboxRequired {
        /// The endpoint's name.
        endpoint: String,
    },
    /// The dispatcher was started outside a tokio runtime (wiring bug).
    #[error("the webhook dispatcher must be started inside a tokio runtime")]
    NoRuntime,
    /// A signature did not verify (the sender's fault, or a forgery; retrying the same request cannot help).
    #[error("webhook signature rejected: {0}")]
    Verify(#[from] VerifyError),
}

impl Error {
    /// True when trying the same operation again later can succeed (I/O trouble), false when something has to be
    /// fixed first (configuration, wiring, input).
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Io { .. })
    }

    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Error {
        Error::Io { op, path: path.into(), source }
    }
}

/// Why a receiver rejects a webhook (see [`crate::verify`]). Every variant means "do not act on this request".
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The receiver has no secret to check against (its own configuration).
    #[error("no secret configured")]
    NoSecrets,
    /// `webhook-timestamp` is missing or not a whole number of Unix seconds.
    #[error("webhook-timestamp is not a Unix time in seconds")]
    InvalidTimestamp,
    /// `webhook-timestamp` is more than the tolerance away from the receiver's clock (a replay, or a bad clock).
    #[error("webhook-timestamp is {skew_secs} s from now (tolerance {tolerance_secs} s)")]
    TimestampOutOfTolerance {
        /// Timestamp minus now, in seconds (negative: in the past).
        skew_secs: i64,
        /// The allowed distance, in seconds.
        tolerance_secs: i64,
    },
    /// `webhook-signature` holds no `v1,<base64>` entry at all.
    #[error("webhook-signature holds no v1 signature")]
    NoSignature,
    /// No `v1` signature matched any secret (tampered body, id or timestamp, wrong secret, or a forgery).
    #[error("no signature matches")]
    Mismatch,
}

impl VerifyError {
    /// A short fixed label for a metric (`vigil_webhook_signature_failures_total{reason=...}`).
    pub fn reason(&self) -> &'static str {
        match self {
            VerifyError::NoSecrets => "no_secret",
            VerifyError::InvalidTimestamp => "invalid_timestamp",
            VerifyError::TimestampOutOfTolerance { .. } => "timestamp_out_of_tolerance",
            VerifyError::NoSignature => "no_signature",
            VerifyError::Mismatch => "mismatch",
        }
    }
}
