//! The durable outbox: an append-only log of deliveries still owed, with an acknowledgement log beside it.
//!
//! # On disk (all files in the outbox directory, prefixed `webhook-` so it can share `[state] dir`)
//!
//! - `webhook-outbox-<base seq, 16 hex digits>.log`, **segments**, each holding records whose sequence numbers
//!   are at least its base. A record is
//!
//!   ```text
//!   FF 'V' 'O' '1'      magic; 0xFF never occurs in the rest of a record (ASCII header, UTF-8 payload)
//!   LLLLLLLL            payload length, 8 lowercase hex digits
//!   CCCCCCCC            CRC-32 (IEEE) of the 8 length digits followed by the payload, 8 hex digits
//!   payload:            seq (16 hex) · first-enqueue Unix ms (16 hex)
//!                       · endpoint length (4 hex) · endpoint · alert id length (4 hex) · alert id
//!                       · agent id length (4 hex) · agent id · body (the exact JSON that is POSTed, UTF-8)
//!   '\n'
//!   ```
//!
//!   Because `0xFF` cannot appear inside a record, a reader that meets a damaged record (flipped bits, a torn
//!   write) skips to the next `0xFF` and carries on: every intact record survives, however the damage fell, and
//!   nothing inside a body (which an attacker can influence through event content) can pass for a record.
//! - `webhook-outbox-acks.log`, the **acknowledgement log**: fixed 30-byte records
//!   `FF 'V' 'A' '1' · kind (1 char) · seq (16 hex) · CRC-32 of kind and seq (8 hex) · '\n'`, kind `D`
//!   (delivered), `X` (dead-lettered), `S` (released unsent: the endpoint turned to shadow mode) or `H`
//!   (high-water mark: every sequence number below it has been issued).
//!   A lost or damaged acknowledgement can only cause a duplicate delivery, never a missing one.
//! - `webhook-dead-letter.jsonl`, one JSON object per delivery given up (written by the dispatcher).
//! - `*.corrupt`: a damaged segment whose readable records are all acknowledged is renamed, not deleted, so the
//!   damage can be examined.
//!
//! # Guarantees
//! [`Outbox::append`] returns only after the records are written **and fsynced**; a batch costs one fsync (group
//! commit). Opening recovers every intact, unacknowledged record in sequence order, reports what was damaged, and
//! always starts a fresh segment, so new records never follow a torn tail. Sequence numbers are never reused
//! (the acknowledgement log carries a high-water mark), so an old acknowledgement cannot swallow a new record.
//! A segment is deleted once every record in it is acknowledged and it is no longer the one being written.
//! One outbox directory belongs to one process at a time.

use crate::error::Error;
use crate::stats::{unix_ms, OutboxStats};
use serde::Serialize;
use std::collections::{BTreeMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};

const RECORD_MAGIC: [u8; 4] = [0xFF, b'V', b'O', b'1'];
const ACK_MAGIC: [u8; 4] = [0xFF, b'V', b'A', b'1'];
const HEADER_BYTES: usize = 4 + 8 + 8;
const ACK_BYTES: usize = 4 + 1 + 16 + 8 + 1;
/// Largest payload a record may carry, in bytes.
pub const MAX_PAYLOAD_BYTES: usize = 64 << 20;
/// Longest endpoint name, alert id or agent id a record may carry, in bytes.
pub const MAX_FIELD_BYTES: usize = 0xFFFF;

const SEGMENT_PREFIX: &str = "webhook-outbox-";
const SEGMENT_SUFFIX: &str = ".log";
const ACK_FILE: &str = "webhook-outbox-acks.log";
const ACK_TMP_FILE: &str = "webhook-outbox-acks.log.tmp";
/// The dead-letter file's name inside the outbox directory.
pub const DEAD_LETTER_FILE: &str = "webhook-dead-letter.jsonl";

/// Tuning of an [`Outbox`].
#[derive(Clone, Debug)]
pub struct OutboxOptions {
    /// A new segment is started once the current one reaches this size, in bytes. Default 16 MiB.
    pub segment_max_bytes: u64,
    /// The acknowledgement log is rewritten (keeping only what still matters) beyond this size, in bytes.
    /// Default 4 MiB.
    pub ack_log_max_bytes: u64,
}

impl Default for OutboxOptions {
    fn default() -> Self {
        OutboxOptions { segment_max_bytes: 16 << 20, ack_log_max_bytes: 4 << 20 }
    }
}

/// A delivery to write: the alert's identity and the exact body to POST.
#[derive(Clone, Copy, Debug)]
pub struct NewRecord<'a> {
    /// The endpoint's name.
    pub endpoint: &'a str,
    /// The alert id (the `webhook-id`).
    pub alert_id: &'a str,
    /// The alert's agent (deliveries of one agent keep their order).
    pub agent_id: &'a str,
    /// The JSON body, byte for byte as it will be sent on every attempt.
    pub body: &'a str,
}

/// A delivery in the outbox, not yet acknowledged. The body stays on disk until [`Outbox::read_body`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pending {
    /// Outbox-wide sequence number: append order, never reused.
    pub seq: u64,
    /// The endpoint's name.
    pub endpoint: Arc<str>,
    /// The alert id.
    pub alert_id: Arc<str>,
    /// The alert's agent.
    pub agent_id: Arc<str>,
    /// When the record was first written, Unix milliseconds (the retry horizon counts from here).
    pub enqueued_unix_ms: u64,
    segment: u64,
    offset: u64,
    len: u32,
}

impl Pending {
    /// Where the record sits: (segment base, byte offset, record length in bytes).
    pub fn location(&self) -> (u64, u64, u32) {
        (self.segment, self.offset, self.len)
    }
}

/// How a delivery ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AckKind {
    /// The endpoint answered 2xx.
    Delivered,
    /// Given up into the dead-letter file.
    DeadLettered,
    /// Released without sending: the endpoint is now in shadow mode.
    Shadowed,
}

impl AckKind {
    fn code(self) -> u8 {
        match self {
            AckKind::Delivered => b'D',
            AckKind::DeadLettered => b'X',
            AckKind::Shadowed => b'S',
        }
    }
}

/// What [`Outbox::open`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OpenReport {
    /// Segment files read.
    pub segments: usize,
    /// Intact records found (pending or acknowledged).
    pub records: usize,
    /// Of those, still owed: they are delivered again.
    pub pending: usize,
    /// Unreadable stretches in segments (flipped bits, garbage); each may have held one or more records.
    pub corrupt_regions: usize,
    /// Bytes in those stretches.
    pub corrupt_bytes: u64,
    /// Bytes of a record cut short at the end of a segment (a write interrupted by a crash; never one that
    /// [`Outbox::append`] had confirmed, unless the disk lost data).
    pub torn_tail_bytes: u64,
    /// Unreadable acknowledgement records (each can only cause a duplicate delivery).
    pub corrupt_acks: usize,
    /// Damaged segments whose readable records were all acknowledged, renamed to `*.corrupt`.
    pub quarantined: Vec<PathBuf>,
}

impl OpenReport {
    /// True when nothing was damaged.
    pub fn is_clean(&self) -> bool {
        self.corrupt_regions == 0 && self.torn_tail_bytes == 0 && self.corrupt_acks == 0
    }
}

/// One line of `webhook-dead-letter.jsonl`.
#[derive(Clone, Debug, Serialize)]
pub struct DeadLetter<'a> {
    /// Wall clock when given up, RFC 3339 UTC with milliseconds.
    pub ts: String,
    /// The endpoint's name.
    pub endpoint: &'a str,
    /// The alert id (`webhook-id`).
    pub alert_id: &'a str,
    /// The alert's agent.
    pub agent_id: &'a str,
    /// Outbox sequence number.
    pub seq: u64,
    /// When the delivery was first enqueued, RFC 3339 UTC with milliseconds.
    pub first_enqueued_at: String,
    /// HTTP requests made.
    pub attempts: u32,
    /// Why it was given up: `rejected` (a 4xx other than 408/429, or a 3xx), `retry_horizon`,
    /// `unknown_endpoint` (the endpoint left the configuration), `corrupt` (the record failed its checksum),
    /// `invalid_request` (the record cannot form a valid request).
    pub reason: &'static str,
    /// The last HTTP status received, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_status: Option<u16>,
    /// The last transport error, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// The body that was to be sent, when readable, so an operator can re-send it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload: Option<&'a serde_json::value::RawValue>,
}

struct Segment {
    path: PathBuf,
    file: Arc<File>,
    len: u64,
    /// Records not yet acknowledged.
    pending: usize,
    /// Acknowledged sequence numbers in this segment (kept for rewriting the acknowledgement log).
    acked: Vec<u64>,
    damaged: bool,
}

struct Inner {
    next_seq: u64,
    segments: BTreeMap<u64, Segment>,
    active: u64,
    /// The active segment had a failed write: start a new one before the next append.
    roll_needed: bool,
    pending: BTreeMap<u64, Pending>,
    /// Endpoint names, shared by every pending record of the endpoint.
    endpoints: HashSet<Arc<str>>,
    acks: File,
    acks_len: u64,
}

/// The durable outbox. Cheap to share behind an `Arc`; every method takes `&self`.
pub struct Outbox {
    dir: PathBuf,
    options: OutboxOptions,
    inner: Mutex<Inner>,
    dead_letters: Mutex<Option<File>>,
    stats: Arc<OutboxStats>,
    report: OpenReport,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox").field("dir", &self.dir).finish_non_exhaustive()
    }
}

/// A record decoded from a buffer.
struct Decoded<'a> {
    seq: u64,
    enqueued_unix_ms: u64,
    endpoint: &'a str,
    alert_id: &'a str,
    agent_id: &'a str,
    body: &'a str,
    /// Total bytes on disk.
    len: usize,
}

#[derive(Debug, PartialEq, Eq)]
enum DecodeFail {
    /// The buffer ends before the record claims to.
    Truncated,
    /// The bytes are not a record.
    Corrupt,
}

fn hex_u64(b: &[u8]) -> Option<u64> {
    if b.is_empty() || b.len() > 16 {
        return None;
    }
    let mut v = 0u64;
    for &c in b {
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => return None,
        };
        v = (v << 4) | d as u64;
    }
    Some(v)
}

fn push_hex(out: &mut Vec<u8>, v: u64, digits: usize) {
    for i in (0..digits).rev() {
        out.push(b"0123456789abcdef"[((v >> (i * 4)) & 0xF) as usize]);
    }
}

fn encode_record(out: &mut Vec<u8>, seq: u64, enqueued_unix_ms: u64, r: &NewRecord<'_>) -> Result<usize, Error> {
    for (field, v) in [("endpoint", r.endpoint), ("alert_id", r.alert_id), ("agent_id", r.agent_id)] {
        if v.len() > MAX_FIELD_BYTES {
            return Err(Error::RecordTooLarge {
                alert_id: r.alert_id.chars().take(64).collect(),
                field,
                len: v.len(),
                limit: MAX_FIELD_BYTES,
            });
        }
    }
    let payload_len = 16 + 16 + 3 * 4 + r.endpoint.len() + r.alert_id.len() + r.agent_id.len() + r.body.len();
    if payload_len > MAX_PAYLOAD_BYTES {
        return Err(Error::RecordTooLarge {
            alert_id: r.alert_id.chars().take(64).collect(),
            field: "body",
            len: r.body.len(),
            limit: MAX_PAYLOAD_BYTES,
        });
    }
    let start = out.len();
    out.extend_from_slice(&RECORD_MAGIC);
    push_hex(out, payload_len as u64, 8);
    let crc_at = out.len();
    out.extend_from_slice(b"00000000");
    let payload_at = out.len();
    push_hex(out, seq, 16);
    push_hex(out, enqueued_unix_ms, 16);
    for v in [r.endpoint, r.alert_id, r.agent_id] {
        push_hex(out, v.len() as u64, 4);
        out.extend_from_slice(v.as_bytes());
    }
    out.extend_from_slice(r.body.as_bytes());
    debug_assert_eq!(out.len() - payload_at, payload_len);
    let mut h = crc32fast::Hasher::new();
    h.update(&out[start + 4..start + 12]);
    h.update(&out[payload_at..]);
    let mut crc = Vec::with_capacity(8);
    push_hex(&mut crc, h.finalize() as u64, 8);
    out[crc_at..crc_at + 8].copy_from_slice(&crc);
    out.push(b'\n');
    Ok(out.len() - start)
}

fn decode_record(buf: &[u8]) -> Result<Decoded<'_>, DecodeFail> {
    if buf.len() < 4 {
        return if RECORD_MAGIC.starts_with(buf) { Err(DecodeFail::Truncated) } else { Err(DecodeFail::Corrupt) };
    }
    if buf[..4] != RECORD_MAGIC {
        return Err(DecodeFail::Corrupt);
    }
    if buf.len() < HEADER_BYTES {
        return Err(DecodeFail::Truncated);
    }
    let payload_len = hex_u64(&buf[4..12]).ok_or(DecodeFail::Corrupt)? as usize;
    if payload_len > MAX_PAYLOAD_BYTES {
        return Err(DecodeFail::Corrupt);
    }
    let crc = hex_u64(&buf[12..20]).ok_or(DecodeFail::Corrupt)? as u32;
    let total = HEADER_BYTES + payload_len + 1;
    if buf.len() < total {
        return Err(DecodeFail::Truncated);
    }
    let payload = &buf[HEADER_BYTES..HEADER_BYTES + payload_len];
    let mut h = crc32fast::Hasher::new();
    h.update(&buf[4..12]);
    h.update(payload);
    if h.finalize() != crc || buf[total - 1] != b'\n' {
        return Err(DecodeFail::Corrupt);
    }
    // The checksum matched: from here on a failure means a record we did not write (or a CRC collision).
    let mut p = payload;
    let mut take = |n: usize| -> Result<&[u8], DecodeFail> {
        if p.len() < n {
            return Err(DecodeFail::Corrupt);
        }
        let (a, b) = p.split_at(n);
        p = b;
        Ok(a)
    };
    let seq = hex_u64(take(16)?).ok_or(DecodeFail::Corrupt)?;
    let enqueued_unix_ms = hex_u64(take(16)?).ok_or(DecodeFail::Corrupt)?;
    let mut fields = [""; 3];
    for f in &mut fields {
        let n = hex_u64(take(4)?).ok_or(DecodeFail::Corrupt)? as usize;
        *f = std::str::from_utf8(take(n)?).map_err(|_| DecodeFail::Corrupt)?;
    }
    let body = std::str::from_utf8(p).map_err(|_| DecodeFail::Corrupt)?;
    Ok(Decoded {
        seq,
        enqueued_unix_ms,
        endpoint: fields[0],
        alert_id: fields[1],
        agent_id: fields[2],
        body,
        len: total,
    })
}

fn encode_ack(out: &mut Vec<u8>, kind: u8, seq: u64) {
    let start = out.len();
    out.extend_from_slice(&ACK_MAGIC);
    out.push(kind);
    push_hex(out, seq, 16);
    let crc = crc32fast::hash(&out[start + 4..start + 21]);
    push_hex(out, crc as u64, 8);
    out.push(b'\n');
}

fn decode_ack(buf: &[u8]) -> Option<(u8, u64)> {
    if buf.len() < ACK_BYTES || buf[..4] != ACK_MAGIC || buf[ACK_BYTES - 1] != b'\n' {
        return None;
    }
    let crc = hex_u64(&buf[21..29])? as u32;
    if crc32fast::hash(&buf[4..21]) != crc {
        return None;
    }
    let kind = buf[4];
    if !matches!(kind, b'D' | b'X' | b'S' | b'H') {
        return None;
    }
    Some((kind, hex_u64(&buf[5..21])?))
}

/// Position of the next 0xFF at or after `from`, or `buf.len()`.
fn next_sync(buf: &[u8], from: usize) -> usize {
    buf.get(from..).and_then(|b| b.iter().position(|&c| c == 0xFF)).map_or(buf.len(), |p| from + p)
}

/// Result of scanning one segment's bytes.
#[derive(Default)]
struct Scan {
    /// (offset, record length, decoded fields copied out).
    records: Vec<(u64, u32, OwnedRecord)>,
    corrupt_regions: usize,
    corrupt_bytes: u64,
    torn_tail_bytes: u64,
}

struct OwnedRecord {
    seq: u64,
    enqueued_unix_ms: u64,
    endpoint: String,
    alert_id: String,
    agent_id: String,
}

fn scan_segment(buf: &[u8]) -> Scan {
    let mut scan = Scan::default();
    let mut pos = 0usize;
    // Start of the current unreadable stretch, and whether its first failure was a cut-short record.
    let mut bad: Option<(usize, bool)> = None;
    while pos < buf.len() {
        match decode_record(&buf[pos..]) {
            Ok(d) => {
                if let Some((start, _)) = bad.take() {
                    scan.corrupt_regions += 1;
                    scan.corrupt_bytes += (pos - start) as u64;
                }
                scan.records.push((
                    pos as u64,
                    d.len as u32,
                    OwnedRecord {
                        seq: d.seq,
                        enqueued_unix_ms: d.enqueued_unix_ms,
                        endpoint: d.endpoint.to_owned(),
                        alert_id: d.alert_id.to_owned(),
                        agent_id: d.agent_id.to_owned(),
                    },
                ));
                pos += d.len;
            }
            Err(fail) => {
                if bad.is_none() {
                    bad = Some((pos, fail == DecodeFail::Truncated));
                }
                pos = next_sync(buf, pos + 1);
            }
        }
    }
    if let Some((start, truncated)) = bad {
        if truncated {
            scan.torn_tail_bytes += (buf.len() - start) as u64;
        } else {
            scan.corrupt_regions += 1;
            scan.corrupt_bytes += (buf.len() - start) as u64;
        }
    }
    scan
}

fn segment_path(dir: &Path, base: u64) -> PathBuf {
    dir.join(format!("{SEGMENT_PREFIX}{base:016x}{SEGMENT_SUFFIX}"))
}

fn parse_segment_name(name: &str) -> Option<u64> {
    let hex = name.strip_prefix(SEGMENT_PREFIX)?.strip_suffix(SEGMENT_SUFFIX)?;
    if hex.len() != 16 {
        return None;
    }
    hex_u64(hex.as_bytes())
}

fn sync_dir(dir: &Path) -> Result<(), Error> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| Error::io("fsync directory", dir, e))
}

fn open_segment_file(path: &Path) -> Result<File, Error> {
    OpenOptions::new().read(true).append(true).create_new(true).open(path).map_err(|e| Error::io("create", path, e))
}

impl Outbox {
    /// Opens (creating if needed) the outbox in `dir` with default options.
    pub fn open(dir: impl AsRef<Path>) -> Result<(Outbox, OpenReport), Error> {
        Outbox::open_with(dir, OutboxOptions::default())
    }

    /// Opens (creating if needed) the outbox in `dir`: recovers every intact unacknowledged record, reports and
    /// skips damage, deletes fully acknowledged segments and starts a fresh segment.
    pub fn open_with(dir: impl AsRef<Path>, options: OutboxOptions) -> Result<(Outbox, OpenReport), Error> {
        let dir = dir.as_ref().to_path_buf();
        fs::create_dir_all(&dir).map_err(|e| Error::io("create directory", &dir, e))?;
        let mut report = OpenReport::default();

        // 1. Acknowledgements and the high-water mark.
        let ack_path = dir.join(ACK_FILE);
        let mut acked: HashSet<u64> = HashSet::new();
        let mut next_seq = 0u64;
        match fs::read(&ack_path) {
            Ok(buf) => {
                let mut pos = 0;
                let mut in_bad = false;
                while pos < buf.len() {
                    match decode_ack(&buf[pos..]) {
                        Some((kind, seq)) => {
                            if kind == b'H' {
                                next_seq = next_seq.max(seq);
                            } else {
                                acked.insert(seq);
                                next_seq = next_seq.max(seq.saturating_add(1));
                            }
                            in_bad = false;
                            pos += ACK_BYTES;
                        }
                        None => {
                            if !in_bad {
                                report.corrupt_acks += 1;
                                in_bad = true;
                            }
                            pos = next_sync(&buf, pos + 1);
                        }
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("read", &ack_path, e)),
        }

        // 2. Segments, in base order.
        let mut bases = Vec::new();
        for entry in fs::read_dir(&dir).map_err(|e| Error::io("list", &dir, e))? {
            let entry = entry.map_err(|e| Error::io("list", &dir, e))?;
            if let Some(base) = entry.file_name().to_str().and_then(parse_segment_name) {
                bases.push(base);
            }
        }
        bases.sort_unstable();
        let mut segments = BTreeMap::new();
        let mut pending = BTreeMap::new();
        let mut names: HashSet<Arc<str>> = HashSet::new();
        let mut seen: HashSet<u64> = HashSet::new();
        for &base in &bases {
            let path = segment_path(&dir, base);
            let buf = fs::read(&path).map_err(|e| Error::io("read", &path, e))?;
            let scan = scan_segment(&buf);
            report.segments += 1;
            report.corrupt_regions += scan.corrupt_regions;
            report.corrupt_bytes += scan.corrupt_bytes;
            report.torn_tail_bytes += scan.torn_tail_bytes;
            if scan.corrupt_regions > 0 || scan.torn_tail_bytes > 0 {
                tracing::warn!(
                    path = %path.display(),
                    corrupt_regions = scan.corrupt_regions,
                    corrupt_bytes = scan.corrupt_bytes,
                    torn_tail_bytes = scan.torn_tail_bytes,
                    "Damaged webhook outbox segment; intact records recovered, damaged bytes skipped."
                );
            }
            let mut seg = Segment {
                path: path.clone(),
                file: Arc::new(File::open(&path).map_err(|e| Error::io("open", &path, e))?),
                len: buf.len() as u64,
                pending: 0,
                acked: Vec::new(),
                damaged: scan.corrupt_regions > 0,
            };
            for (offset, len, r) in scan.records {
                if !seen.insert(r.seq) {
                    continue; // a duplicate cannot come from us; ignore it
                }
                report.records += 1;
                next_seq = next_seq.max(r.seq.saturating_add(1));
                if acked.contains(&r.seq) {
                    seg.acked.push(r.seq);
                } else {
                    seg.pending += 1;
                    pending.insert(
                        r.seq,
                        Pending {
                            seq: r.seq,
                            endpoint: intern(&mut names, &r.endpoint),
                            alert_id: r.alert_id.into(),
                            agent_id: r.agent_id.into(),
                            enqueued_unix_ms: r.enqueued_unix_ms,
                            segment: base,
                            offset,
                            len,
                        },
                    );
                }
            }
            next_seq = next_seq.max(base);
            segments.insert(base, seg);
        }
        report.pending = pending.len();

        // 3. Drop segments nothing is owed from (damaged ones are kept aside for examination).
        let done: Vec<u64> = segments.iter().filter(|(_, s)| s.pending == 0).map(|(b, _)| *b).collect();
        for base in done {
            let seg = segments.remove(&base).expect("base listed from the map");
            if let Some(q) = retire_segment(&seg) {
                report.quarantined.push(q);
            }
        }

        // 4. A fresh active segment, and a compact acknowledgement log with the high-water mark.
        let active_path = segment_path(&dir, next_seq);
        let file = open_segment_file(&active_path)?;
        segments.insert(
            next_seq,
            Segment { path: active_path, file: Arc::new(file), len: 0, pending: 0, acked: Vec::new(), damaged: false },
        );
        sync_dir(&dir)?;
        let (acks, acks_len) = rewrite_acks(&dir, next_seq, &segments)?;
        let mut endpoints: HashSet<Arc<str>> = HashSet::new();
        for p in pending.values() {
            endpoints.insert(p.endpoint.clone());
        }
        let inner =
            Inner { next_seq, segments, active: next_seq, roll_needed: false, pending, endpoints, acks, acks_len };

        let stats = Arc::new(OutboxStats::default());
        stats
            .corrupt_records
            .store((report.corrupt_regions + usize::from(report.torn_tail_bytes > 0)) as u64, Ordering::Relaxed);
        stats.corrupt_acks.store(report.corrupt_acks as u64, Ordering::Relaxed);
        stats.torn_tail_bytes.store(report.torn_tail_bytes, Ordering::Relaxed);
        if report.corrupt_acks > 0 {
            tracing::warn!(
                corrupt_acks = report.corrupt_acks,
                "Damaged webhook acknowledgement records skipped; affected deliveries may be repeated."
            );
        }
        tracing::info!(
            dir = %dir.display(),
            segments = report.segments,
            pending = report.pending,
            "Webhook outbox opened."
        );
        let returned = report.clone();
        let outbox = Outbox { dir, options, inner: Mutex::new(inner), dead_letters: Mutex::new(None), stats, report };
        Ok((outbox, returned))
    }

    /// The outbox directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// What opening found.
    pub fn open_report(&self) -> &OpenReport {
        &self.report
    }

    /// Outbox-wide counters.
    pub fn stats(&self) -> Arc<OutboxStats> {
        self.stats.clone()
    }

    /// Every unacknowledged record, in sequence (append) order.
    pub fn pending(&self) -> Vec<Pending> {
        self.lock().pending.values().cloned().collect()
    }

    /// Number of unacknowledged records.
    pub fn pending_len(&self) -> usize {
        self.lock().pending.len()
    }

    /// Appends one record; see [`Outbox::append_batch`].
    pub fn append(&self, record: NewRecord<'_>) -> Result<Pending, Error> {
        Ok(self.append_batch(&[record])?.remove(0))
    }

    /// Appends records in order, with one fsync for the batch; returns only once they are durable. An error
    /// means none of them may be counted as written (some may still be delivered: at least once).
    pub fn append_batch(&self, records: &[NewRecord<'_>]) -> Result<Vec<Pending>, Error> {
        if records.is_empty() {
            return Ok(Vec::new());
        }
        let now = unix_ms();
        let mut guard = self.lock();
        let inner = &mut *guard;
        let active_len = inner.segments.get(&inner.active).map_or(0, |s| s.len);
        if inner.roll_needed || active_len >= self.options.segment_max_bytes {
            self.roll(inner)?;
        }
        let first_seq = inner.next_seq;
        let mut buf = Vec::with_capacity(records.iter().map(|r| r.body.len() + 128).sum());
        let mut spans = Vec::with_capacity(records.len());
        for (i, r) in records.iter().enumerate() {
            let at = buf.len();
            let n = encode_record(&mut buf, first_seq + i as u64, now, r)?;
            spans.push((at, n));
        }
        let active = inner.active;
        let seg = inner.segments.get_mut(&active).expect("the active segment is always in the map");
        let base_offset = seg.len;
        let written = (&*seg.file).write_all(&buf).and_then(|()| seg.file.sync_data());
        if let Err(e) = written {
            // Cut back what may have been written; if even that fails, the next append starts a new segment
            // (readers skip the torn bytes). Sequence numbers are not reused either way.
            if seg.file.set_len(base_offset).is_err() {
                inner.roll_needed = true;
            }
            inner.next_seq = first_seq + records.len() as u64;
            return Err(Error::io("append to", seg.path.clone(), e));
        }
        seg.len += buf.len() as u64;
        seg.pending += records.len();
        inner.next_seq = first_seq + records.len() as u64;
        let mut out = Vec::with_capacity(records.len());
        for (i, (r, (at, n))) in records.iter().zip(spans).enumerate() {
            let p = Pending {
                seq: first_seq + i as u64,
                endpoint: intern(&mut inner.endpoints, r.endpoint),
                alert_id: r.alert_id.into(),
                agent_id: r.agent_id.into(),
                enqueued_unix_ms: now,
                segment: active,
                offset: base_offset + at as u64,
                len: n as u32,
            };
            inner.pending.insert(p.seq, p.clone());
            out.push(p);
        }
        Ok(out)
    }

    /// Reads a pending record's body back, verifying its checksum. `Err(Error::Corrupt)` when the bytes on disk
    /// no longer match (counted in [`OutboxStats::corrupt_records`]); the caller dead-letters it.
    pub fn read_body(&self, p: &Pending) -> Result<String, Error> {
        let (file, path) = {
            let inner = self.lock();
            let seg = inner.segments.get(&p.segment).ok_or_else(|| Error::Corrupt {
                path: segment_path(&self.dir, p.segment),
                offset: p.offset,
                seq: p.seq,
            })?;
            (seg.file.clone(), seg.path.clone())
        };
        let mut buf = vec![0u8; p.len as usize];
        file.read_exact_at(&mut buf, p.offset).map_err(|e| Error::io("read", &path, e))?;
        match decode_record(&buf) {
            Ok(d) if d.seq == p.seq && d.len == buf.len() => Ok(d.body.to_owned()),
            _ => {
                self.stats.corrupt_records.fetch_add(1, Ordering::Relaxed);
                tracing::error!(
                    path = %path.display(),
                    offset = p.offset,
                    seq = p.seq,
                    "Webhook outbox record failed its checksum on read; it will be dead-lettered."
                );
                Err(Error::Corrupt { path, offset: p.offset, seq: p.seq })
            }
        }
    }

    /// Records how deliveries ended, with one fsync; deletes segments nothing is owed from any more. Unknown or
    /// already acknowledged sequence numbers are ignored. Returns how many records were newly acknowledged.
    pub fn ack(&self, acks: &[(u64, AckKind)]) -> Result<usize, Error> {
        let mut guard = self.lock();
        let inner = &mut *guard;
        let fresh: Vec<(u64, AckKind)> = acks.iter().copied().filter(|(s, _)| inner.pending.contains_key(s)).collect();
        if fresh.is_empty() {
            return Ok(0);
        }
        let mut buf = Vec::with_capacity(fresh.len() * ACK_BYTES);
        for (seq, kind) in &fresh {
            encode_ack(&mut buf, kind.code(), *seq);
        }
        let path = self.dir.join(ACK_FILE);
        (&inner.acks)
            .write_all(&buf)
            .and_then(|()| inner.acks.sync_data())
            .map_err(|e| Error::io("append to", &path, e))?;
        inner.acks_len += buf.len() as u64;
        let mut newly = 0;
        for (seq, _) in fresh {
            let Some(p) = inner.pending.remove(&seq) else { continue };
            newly += 1;
            let active = inner.active;
            if let Some(seg) = inner.segments.get_mut(&p.segment) {
                seg.pending -= 1;
                seg.acked.push(seq);
                if seg.pending == 0 && p.segment != active {
                    let seg = inner.segments.remove(&p.segment).expect("segment present: just looked up");
                    retire_segment(&seg);
                }
            }
        }
        if inner.acks_len > self.options.ack_log_max_bytes {
            let (acks, len) = rewrite_acks(&self.dir, inner.next_seq, &inner.segments)?;
            inner.acks = acks;
            inner.acks_len = len;
        }
        Ok(newly)
    }

    /// Appends a dead-letter line to `webhook-dead-letter.jsonl` and fsyncs it.
    pub fn write_dead_letter(&self, record: &DeadLetter<'_>) -> Result<(), Error> {
        let path = self.dir.join(DEAD_LETTER_FILE);
        let mut line = serde_json::to_vec(record).expect("a dead letter always serialises");
        line.push(b'\n');
        let mut guard = self.dead_letters.lock().unwrap_or_else(|p| p.into_inner());
        if guard.is_none() {
            let f =
                OpenOptions::new().create(true).append(true).open(&path).map_err(|e| Error::io("open", &path, e))?;
            *guard = Some(f);
        }
        let f = guard.as_mut().expect("opened just above");
        f.write_all(&line).and_then(|()| f.sync_data()).map_err(|e| Error::io("append to", &path, e))
    }

    /// Path of the dead-letter file.
    pub fn dead_letter_path(&self) -> PathBuf {
        self.dir.join(DEAD_LETTER_FILE)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the maps inconsistent with the disk in a harmful way:
        // at worst a record is delivered twice.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn roll(&self, inner: &mut Inner) -> Result<(), Error> {
        let base = inner.next_seq;
        let path = segment_path(&self.dir, base);
        let file = open_segment_file(&path)?;
        sync_dir(&self.dir)?;
        let old = inner.active;
        inner.segments.insert(
            base,
            Segment { path, file: Arc::new(file), len: 0, pending: 0, acked: Vec::new(), damaged: false },
        );
        inner.active = base;
        inner.roll_needed = false;
        if inner.segments.get(&old).is_some_and(|s| s.pending == 0) {
            let seg = inner.segments.remove(&old).expect("checked just above");
            retire_segment(&seg);
        }
        Ok(())
    }
}

fn intern(set: &mut HashSet<Arc<str>>, s: &str) -> Arc<str> {
    if let Some(a) = set.get(s) {
        return a.clone();
    }
    let a: Arc<str> = s.into();
    set.insert(a.clone());
    a
}

/// Deletes a segment nothing is owed from, or renames it to `*.corrupt` when it was damaged. A failure is logged
/// and otherwise ignored: the file is read again at the next open, which at worst repeats deliveries.
fn retire_segment(seg: &Segment) -> Option<PathBuf> {
    if seg.damaged {
        let q = seg.path.with_extension("corrupt");
        match fs::rename(&seg.path, &q) {
            Ok(()) => {
                tracing::warn!(path = %q.display(), "Damaged webhook outbox segment set aside.");
                Some(q)
            }
            Err(e) => {
                tracing::warn!(path = %seg.path.display(), error = %e, "Cannot set aside a damaged outbox segment.");
                None
            }
        }
    } else {
        if let Err(e) = fs::remove_file(&seg.path) {
            tracing::warn!(path = %seg.path.display(), error = %e, "Cannot delete a finished outbox segment.");
        }
        None
    }
}

/// Writes a new acknowledgement log (high-water mark + acknowledgements still relevant) beside the old one,
/// fsyncs it and renames it into place; returns the log opened for appending, and its length.
fn rewrite_acks(dir: &Path, next_seq: u64, segments: &BTreeMap<u64, Segment>) -> Result<(File, u64), Error> {
    let tmp = dir.join(ACK_TMP_FILE);
    let path = dir.join(ACK_FILE);
    let mut buf = Vec::new();
    encode_ack(&mut buf, b'H', next_seq);
    for seg in segments.values() {
        for &seq in &seg.acked {
            encode_ack(&mut buf, b'D', seq);
        }
    }
    let mut f = File::create(&tmp).map_err(|e| Error::io("create", &tmp, e))?;
    f.write_all(&buf).and_then(|()| f.sync_all()).map_err(|e| Error::io("write", &tmp, e))?;
    fs::rename(&tmp, &path).map_err(|e| Error::io("rename", &tmp, e))?;
    sync_dir(dir)?;
    let acks = OpenOptions::new().append(true).open(&path).map_err(|e| Error::io("open", &path, e))?;
    Ok((acks, buf.len() as u64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rec<'a>(agent: &'a str, id: &'a str, body: &'a str) -> NewRecord<'a> {
        NewRecord { endpoint: "ep", alert_id: id, agent_id: agent, body }
    }

    fn segment_files(dir: &Path) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.file_name().and_then(|n| n.to_str()).and_then(parse_segment_name).is_some())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn records_round_trip_and_resist_lookalikes() {
        let mut buf = Vec::new();
        let body = "{\"k\":\"ünïcødé \\u00ff VO1\"}";
        let n = encode_record(&mut buf, 7, 1234, &rec("agent-ä", "va-1", body)).unwrap();
        assert_eq!(n, buf.len());
        assert_eq!(buf.iter().filter(|&&b| b == 0xFF).count(), 1, "0xFF only in the magic");
        let d = decode_record(&buf).unwrap();
        assert_eq!(
            (d.seq, d.enqueued_unix_ms, d.endpoint, d.alert_id, d.agent_id, d.body),
            (7, 1234, "ep", "va-1", "agent-ä", body)
        );
        for cut in 0..buf.len() {
            assert_eq!(decode_record(&buf[..cut]).err(), Some(DecodeFail::Truncated), "cut at {cut}");
        }
        for i in 0..buf.len() {
            let mut b = buf.clone();
            b[i] ^= 0x01;
            assert!(decode_record(&b).is_err(), "flip at {i} went unnoticed");
        }
    }

    #[test]
    fn acks_round_trip() {
        let mut buf = Vec::new();
        encode_ack(&mut buf, b'D', 42);
        assert_eq!(buf.len(), ACK_BYTES);
        assert_eq!(decode_ack(&buf), Some((b'D', 42)));
        for i in 0..buf.len() {
            let mut b = buf.clone();
            b[i] ^= 0x10;
            assert_eq!(decode_ack(&b), None, "flip at {i}");
        }
    }

    #[test]
    fn append_drop_reopen_recovers_everything_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let bodies: Vec<String> = (0..50).map(|i| format!("{{\"n\":{i}}}")).collect();
        {
            let (ob, report) = Outbox::open(dir.path()).unwrap();
            assert!(report.is_clean());
            for (i, b) in bodies.iter().enumerate().take(10) {
                ob.append(rec(&format!("a{}", i % 3), &format!("id{i}"), b)).unwrap();
            }
            let batch: Vec<(String, String)> = (10..50).map(|i| (format!("a{}", i % 3), format!("id{i}"))).collect();
            let recs: Vec<NewRecord<'_>> = batch.iter().zip(&bodies[10..]).map(|((a, id), b)| rec(a, id, b)).collect();
            ob.append_batch(&recs).unwrap();
            // Dropped without acknowledging anything: as if killed.
        }
        let (ob, report) = Outbox::open(dir.path()).unwrap();
        assert!(report.is_clean(), "{report:?}");
        assert_eq!(report.pending, 50);
        let pending = ob.pending();
        assert_eq!(pending.iter().map(|p| p.seq).collect::<Vec<_>>(), (0..50).collect::<Vec<_>>());
        for (i, p) in pending.iter().enumerate() {
            assert_eq!(&*p.alert_id, format!("id{i}"));
            assert_eq!(&*p.agent_id, format!("a{}", i % 3));
            assert_eq!(ob.read_body(p).unwrap(), bodies[i]);
        }
    }

    #[test]
    fn acknowledged_records_stay_acknowledged_and_segments_are_compacted() {
        let dir = tempfile::tempdir().unwrap();
        let opts = OutboxOptions { segment_max_bytes: 300, ack_log_max_bytes: 200 };
        let body = "{\"pad\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}";
        let ids: Vec<String> = (0..20).map(|i| format!("id{i}")).collect();
        {
            let (ob, _) = Outbox::open_with(dir.path(), opts.clone()).unwrap();
            let ps: Vec<Pending> = ids.iter().map(|id| ob.append(rec("a", id, body)).unwrap()).collect();
            assert!(segment_files(dir.path()).len() > 3);
            // Acknowledge all but #5 and #17.
            let acks: Vec<(u64, AckKind)> =
                ps.iter().filter(|p| p.seq != 5 && p.seq != 17).map(|p| (p.seq, AckKind::Delivered)).collect();
            assert_eq!(ob.ack(&acks).unwrap(), 18);
            assert_eq!(ob.ack(&acks).unwrap(), 0, "acks are idempotent");
            assert_eq!(ob.pending_len(), 2);
        }
        let (ob, report) = Outbox::open_with(dir.path(), opts.clone()).unwrap();
        assert!(report.is_clean(), "{report:?}");
        let seqs: Vec<u64> = ob.pending().iter().map(|p| p.seq).collect();
        assert_eq!(seqs, [5, 17]);
        // Only segments holding a pending record, plus the fresh active one, are left.
        assert_eq!(segment_files(dir.path()).len(), 3);
        let p = ob.append(rec("a", "new", body)).unwrap();
        assert_eq!(p.seq, 20, "sequence numbers continue");
        let all: Vec<(u64, AckKind)> = ob.pending().iter().map(|p| (p.seq, AckKind::DeadLettered)).collect();
        ob.ack(&all).unwrap();
        drop(ob);
        let (ob, _) = Outbox::open_with(dir.path(), opts).unwrap();
        assert_eq!(ob.pending_len(), 0);
        assert_eq!(segment_files(dir.path()).len(), 1, "only the fresh active segment");
        // Sequence numbers are never reused, even with every segment gone.
        assert_eq!(ob.append(rec("a", "newer", body)).unwrap().seq, 21);
    }

    #[test]
    fn corrupt_middle_and_torn_tail_are_reported_and_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let body = "{\"alert\":\"some body text of moderate length\"}";
        let ids: Vec<String> = (0..30).map(|i| format!("id{i}")).collect();
        let spans: Vec<(u64, u32)>;
        let seg;
        {
            let (ob, _) = Outbox::open(dir.path()).unwrap();
            let recs: Vec<NewRecord<'_>> = ids.iter().map(|id| rec("a", id, body)).collect();
            let ps = ob.append_batch(&recs).unwrap();
            spans = ps.iter().map(|p| (p.offset, p.len)).collect();
            seg = segment_path(dir.path(), ps[0].segment);
        }
        let mut bytes = fs::read(&seg).unwrap();
        // Flip a byte inside record 12, and cut record 29 short.
        let (off12, len12) = spans[12];
        bytes[(off12 + len12 as u64 / 2) as usize] ^= 0x5A;
        let (off29, _) = spans[29];
        bytes.truncate(off29 as usize + 7);
        fs::write(&seg, &bytes).unwrap();

        let (ob, report) = Outbox::open(dir.path()).unwrap();
        assert_eq!(report.corrupt_regions, 1, "{report:?}");
        assert_eq!(report.torn_tail_bytes, 7);
        assert!(!report.is_clean());
        let got: Vec<String> = ob.pending().iter().map(|p| p.alert_id.to_string()).collect();
        let want: Vec<String> = (0..29).filter(|&i| i != 12).map(|i| format!("id{i}")).collect();
        assert_eq!(got, want);
        assert_eq!(ob.stats().corrupt_records.load(Ordering::Relaxed), 2);
        // Once everything readable is acknowledged, the damaged segment is set aside, not deleted.
        let all: Vec<(u64, AckKind)> = ob.pending().iter().map(|p| (p.seq, AckKind::Delivered)).collect();
        ob.ack(&all).unwrap();
        assert!(seg.with_extension("corrupt").exists());
    }

    #[test]
    fn corrupt_acknowledgements_only_cause_redelivery() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (ob, _) = Outbox::open(dir.path()).unwrap();
            let ps: Vec<Pending> = (0..4).map(|i| ob.append(rec("a", &format!("id{i}"), "{}")).unwrap()).collect();
            ob.ack(&ps.iter().map(|p| (p.seq, AckKind::Delivered)).collect::<Vec<_>>()).unwrap();
            // Keep the segment alive (active) so the acks matter on reopen.
        }
        let ack_path = dir.path().join(ACK_FILE);
        let mut b = fs::read(&ack_path).unwrap();
        // Records: H, then D x4 were written by the appends above after the initial rewrite.
        let second_d = ACK_BYTES * 2 + 10;
        b[second_d] ^= 0x01;
        fs::write(&ack_path, &b).unwrap();
        let (ob, report) = Outbox::open(dir.path()).unwrap();
        assert_eq!(report.corrupt_acks, 1);
        assert_eq!(ob.pending().iter().map(|p| p.seq).collect::<Vec<_>>(), [1]);
    }

    #[test]
    fn dead_letters_are_json_lines() {
        let dir = tempfile::tempdir().unwrap();
        let (ob, _) = Outbox::open(dir.path()).unwrap();
        let raw = serde_json::value::RawValue::from_string("{\"a\":1}".into()).unwrap();
        for reason in ["rejected", "retry_horizon"] {
            ob.write_dead_letter(&DeadLetter {
                ts: "2026-01-01T00:00:00.000Z".into(),
                endpoint: "ep",
                alert_id: "va-1",
                agent_id: "a",
                seq: 3,
                first_enqueued_at: "2026-01-01T00:00:00.000Z".into(),
                attempts: 2,
                reason,
                last_status: Some(400),
                last_error: None,
                payload: Some(&raw),
            })
            .unwrap();
        }
        let text = fs::read_to_string(ob.dead_letter_path()).unwrap();
        let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1]["reason"], "retry_horizon");
        assert_eq!(lines[0]["last_status"], 400);
        assert_eq!(lines[0]["payload"]["a"], 1);
        assert!(lines[0].get("last_error").is_none());
    }

    const CHILD_DIR_VAR: &str = "VIGIL_WEBHOOK_OUTBOX_CHILD_DIR";

    /// The child half of `sigkill_at_any_point_loses_nothing_confirmed`: appends and acknowledges records as
    /// fast as it can, printing each confirmation after the call returned, until it is killed. Does nothing
    /// unless started by that test.
    #[test]
    fn sigkill_child() {
        let Ok(dir) = std::env::var(CHILD_DIR_VAR) else { return };
        let (ob, _) =
            Outbox::open_with(&dir, OutboxOptions { segment_max_bytes: 4096, ack_log_max_bytes: 2048 }).unwrap();
        let mut out = std::io::stdout().lock();
        writeln!(out).unwrap(); // the test harness's "test ... " prefix ends on its own line
        for i in 0u64.. {
            let id = format!("id{i}");
            let body = format!("{{\"i\":{i},\"pad\":\"{}\"}}", "p".repeat((i % 200) as usize));
            let p = ob.append(rec(&format!("agent{}", i % 7), &id, &body)).unwrap();
            writeln!(out, "appended {} {id}", p.seq).unwrap();
            if i % 3 == 0 {
                writeln!(out, "acking {}", p.seq).unwrap();
                out.flush().unwrap();
                ob.ack(&[(p.seq, AckKind::Delivered)]).unwrap();
                writeln!(out, "acked {}", p.seq).unwrap();
            }
            out.flush().unwrap();
        }
    }

    /// A real SIGKILL while records are being appended and acknowledged, repeated at several moments: every
    /// append that returned is pending after the restart unless its acknowledgement returned too, in order.
    #[test]
    fn sigkill_at_any_point_loses_nothing_confirmed() {
        use std::io::{BufRead, BufReader};
        use std::process::{Command, Stdio};
        let dir = tempfile::tempdir().unwrap();
        let mut appended: Vec<(u64, String)> = Vec::new();
        let mut acking: HashSet<u64> = HashSet::new();
        let mut acked: HashSet<u64> = HashSet::new();
        for (round, kill_after) in [40usize, 7, 150, 1, 90].into_iter().enumerate() {
            let mut child = Command::new(std::env::current_exe().unwrap())
                .args(["--exact", "outbox::tests::sigkill_child", "--nocapture", "--test-threads=1"])
                .env(CHILD_DIR_VAR, dir.path())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
            let mut seen = 0;
            let mut killed = false;
            // Read on after the kill too: the pipe keeps what the child printed before it died.
            while let Some(Ok(line)) = lines.next() {
                let mut parts = line.split(' ');
                match parts.next() {
                    Some("appended") => {
                        let seq = parts.next().unwrap().parse().unwrap();
                        appended.push((seq, parts.next().unwrap().to_string()));
                        seen += 1;
                    }
                    Some("acking") => {
                        acking.insert(parts.next().unwrap().parse().unwrap());
                    }
                    Some("acked") => {
                        acked.insert(parts.next().unwrap().parse().unwrap());
                    }
                    _ => {}
                }
                if seen >= kill_after && !killed {
                    child.kill().unwrap(); // SIGKILL
                    killed = true;
                }
            }
            child.wait().unwrap();
            let (ob, report) = Outbox::open(dir.path()).unwrap();
            assert_eq!(report.corrupt_regions, 0, "round {round}: {report:?}");
            let pending: Vec<(u64, String)> = ob.pending().iter().map(|p| (p.seq, p.alert_id.to_string())).collect();
            let pending_seqs: HashSet<u64> = pending.iter().map(|p| p.0).collect();
            for (seq, id) in &appended {
                // An acknowledgement under way when the child died may or may not have landed.
                if !acking.contains(seq) {
                    assert!(pending_seqs.contains(seq), "round {round}: confirmed {id} (seq {seq}) lost");
                }
            }
            for seq in &acked {
                assert!(!pending_seqs.contains(seq), "round {round}: acknowledged {seq} came back");
            }
            assert!(pending.windows(2).all(|w| w[0].0 < w[1].0), "in order");
            for p in ob.pending() {
                assert!(ob.read_body(&p).unwrap().contains(&format!("\"i\":{}", &p.alert_id[2..])));
            }
        }
        assert!(appended.len() >= 288);
        assert!(acked.len() >= 90);
    }

    /// A pristine segment of `n` records written by the outbox, with each record's byte span.
    fn pristine(n: usize, seed: u64) -> (Vec<u8>, Vec<(usize, usize, String)>) {
        let dir = tempfile::tempdir().unwrap();
        let (ob, _) = Outbox::open(dir.path()).unwrap();
        let mut bodies = Vec::new();
        for i in 0..n {
            let len = ((seed.wrapping_mul(31).wrapping_add(i as u64 * 17)) % 90) as usize;
            bodies.push(format!("{{\"i\":{i},\"t\":\"{}é\"}}", "x".repeat(len)));
        }
        let ids: Vec<String> = (0..n).map(|i| format!("id{i}")).collect();
        let recs: Vec<NewRecord<'_>> = ids.iter().zip(&bodies).map(|(id, b)| rec("agent", id, b)).collect();
        let ps = ob.append_batch(&recs).unwrap();
        let bytes = fs::read(segment_path(dir.path(), ps[0].segment)).unwrap();
        let spans = ps.iter().map(|p| (p.offset as usize, p.len as usize, p.alert_id.to_string())).collect();
        (bytes, spans)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        /// However bytes are flipped and wherever the file is cut: opening never panics, recovers only records
        /// that were written (in order), and recovers every record whose bytes are untouched.
        #[test]
        fn any_damage_keeps_every_intact_record(
            n in 1usize..25,
            seed in any::<u64>(),
            flips in proptest::collection::vec((any::<proptest::sample::Index>(), 1u8..=255), 0..4),
            cut in proptest::option::of(any::<proptest::sample::Index>()),
        ) {
            let (mut bytes, spans) = pristine(n, seed);
            let mut touched = Vec::new();
            for (at, mask) in &flips {
                let i = at.index(bytes.len());
                bytes[i] ^= mask;
                touched.push(i);
            }
            let end = cut.map_or(bytes.len(), |c| c.index(bytes.len() + 1));
            bytes.truncate(end);
            let dir = tempfile::tempdir().unwrap();
            fs::write(segment_path(dir.path(), 0), &bytes).unwrap();
            let (ob, report) = Outbox::open(dir.path()).unwrap();
            let got: Vec<String> = ob.pending().iter().map(|p| p.alert_id.to_string()).collect();
            let written: Vec<&String> = spans.iter().map(|(_, _, id)| id).collect();
            // Only written records, in order.
            let mut it = written.iter();
            for g in &got {
                prop_assert!(it.any(|w| *w == g), "recovered {g} out of order or never written");
            }
            // Every intact record.
            for (off, len, id) in &spans {
                let intact = off + len <= end && !touched.iter().any(|&t| t >= *off && t < off + len);
                if intact {
                    prop_assert!(got.contains(id), "lost intact record {id}; report {report:?}");
                }
            }
            // A loss is always reported, unless the file was cut exactly before a record (indistinguishable
            // from never having written it).
            let lost_visibly = spans.iter().any(|(off, _, id)| *off < end && !got.contains(id));
            if lost_visibly {
                prop_assert!(!report.is_clean(), "silent loss; report {report:?}");
            }
            for p in ob.pending() {
                prop_assert!(ob.read_body(&p).is_ok());
            }
        }
    }
}
