//! Recorded-run inputs: JSON Lines files (plain, gzip or zstd, detected by their magic bytes) and
//! stdin, read in large batches of whole lines.
//!
//! A batch is one buffer holding many complete lines, read straight from the source (no copy per
//! line); the next batch starts with the unfinished tail of the previous one. A line longer than the
//! event size limit is never held whole: its first 64 KiB are kept (for the dead-letter record) and
//! the rest is skipped up to the next newline, so memory stays bounded whatever the input holds.

use crate::ReplayError;
use std::fs::File;
use std::io::{self, BufReader, Read};
use vigil_detector::dead_letter::RAW_LIMIT;

/// One line of a batch: a byte range of the batch buffer and where it came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LineRef {
    pub start: usize,
    pub end: usize,
    /// Index of the input it came from.
    pub source: u32,
    /// 1-based line number within that input.
    pub line: u64,
    /// For a line over the size limit: its full length (the range then holds only its start).
    pub too_long: Option<u64>,
}

/// Many complete lines in one buffer.
#[derive(Default)]
pub struct Batch {
    pub buf: Vec<u8>,
    pub lines: Vec<LineRef>,
}

impl Batch {
    pub fn clear(&mut self) {
        self.buf.clear();
        self.lines.clear();
    }

    /// The bytes of line `l`.
    #[inline]
    pub fn bytes(&self, l: &LineRef) -> &[u8] {
        &self.buf[l.start..l.end]
    }
}

/// Opens an input path (`-` = stdin), decompressing gzip or zstd when its first bytes say so.
pub fn open(path: &str) -> Result<Box<dyn Read + Send>, ReplayError> {
    let open_err = |e: io::Error| ReplayError::Open { path: path.to_string(), error: e };
    let raw: Box<dyn Read + Send> = if path == "-" {
        Box::new(io::stdin())
    } else {
        let f = File::open(path).map_err(open_err)?;
        if f.metadata().map(|m| m.is_dir()).unwrap_or(false) {
            return Err(open_err(io::Error::other("is a directory")));
        }
        Box::new(f)
    };
    let mut r = BufReader::with_capacity(1 << 16, raw);
    let magic = {
        use std::io::BufRead;
        let b = r.fill_buf().map_err(open_err)?;
        [b.first().copied(), b.get(1).copied(), b.get(2).copied(), b.get(3).copied()]
    };
    Ok(match magic {
        [Some(0x1f), Some(0x8b), _, _] => Box::new(flate2::read::MultiGzDecoder::new(r)),
        [Some(0x28), Some(0xb5), Some(0x2f), Some(0xfd)] => {
            Box::new(zstd::stream::read::Decoder::with_buffer(r).map_err(open_err)?)
        }
        _ => Box::new(r),
    })
}

/// Reads one input in batches of whole lines.
pub struct LineReader {
    src: Box<dyn Read + Send>,
    source: u32,
    /// Unfinished line carried into the next batch.
    carry: Vec<u8>,
    next_line: u64,
    max_line: usize,
    eof: bool,
    /// Bytes consumed from the source (after decompression).
    pub bytes_read: u64,
}

/// Size of each read from the source.
const READ_CHUNK: usize = 1 << 18;

impl LineReader {
    pub fn new(src: Box<dyn Read + Send>, source: u32, max_line: usize) -> LineReader {
        LineReader { src, source, carry: Vec::new(), next_line: 1, max_line, eof: false, bytes_read: 0 }
    }

    pub fn is_done(&self) -> bool {
        self.eof && self.carry.is_empty()
    }

    /// Appends up to [`READ_CHUNK`] bytes to `buf`; 0 at the end of the input.
    fn read_some(&mut self, buf: &mut Vec<u8>) -> io::Result<usize> {
        let len = buf.len();
        buf.reserve(READ_CHUNK);
        // `read_to_end` reads into the spare capacity without zero-filling it first (a `resize` here
        // cost about one instruction per input byte); `take` bounds it to one chunk.
        if let Err(e) = (&mut self.src).take(READ_CHUNK as u64).read_to_end(buf) {
            buf.truncate(len);
            return Err(e);
        }
        let n = buf.len() - len;
        self.bytes_read += n as u64;
        if n == 0 {
            self.eof = true;
        }
        Ok(n)
    }

    fn push_line(&mut self, batch: &mut Batch, start: usize, end: usize, too_long: Option<u64>) {
        let mut e = end;
        if too_long.is_none() && e > start && batch.buf[e - 1] == b'\r' {
            e -= 1;
        }
        batch.lines.push(LineRef { start, end: e, source: self.source, line: self.next_line, too_long });
        self.next_line += 1;
    }

    /// Skips the rest of an over-long line whose first bytes are `batch.buf[start..]` and whose length
    /// so far is `seen`; keeps at most [`RAW_LIMIT`] bytes of it, then continues after its newline.
    fn skip_long_line(&mut self, batch: &mut Batch, start: usize, mut seen: u64) -> io::Result<()> {
        batch.buf.truncate(start + RAW_LIMIT.min(batch.buf.len() - start));
        let mut scratch = Vec::with_capacity(READ_CHUNK);
        loop {
            scratch.clear();
            if self.read_some(&mut scratch)? == 0 {
                let end = batch.buf.len();
                self.push_line(batch, start, end, Some(seen));
                return Ok(());
            }
            if let Some(i) = memchr::memchr(b'\n', &scratch) {
                seen += i as u64;
                let end = batch.buf.len();
                self.push_line(batch, start, end, Some(seen));
                self.carry.extend_from_slice(&scratch[i + 1..]);
                return Ok(());
            }
            seen += scratch.len() as u64;
        }
    }

    /// Fills `batch` (cleared first) with whole lines, about `target` bytes of them; `Ok(false)` when
    /// the input is exhausted and the batch is empty.
    pub fn next_batch(&mut self, batch: &mut Batch, target: usize) -> io::Result<bool> {
        batch.clear();
        self.fill(batch, target)?;
        Ok(!batch.lines.is_empty())
    }

    /// Appends whole lines to `batch` (not cleared) until it holds about `target` more bytes.
    pub fn fill(&mut self, batch: &mut Batch, target: usize) -> io::Result<()> {
        let base = batch.buf.len();
        let lines_before = batch.lines.len();
        let mut line_start = base;
        batch.buf.append(&mut self.carry);
        let mut scan = base;
        loop {
            while let Some(i) = memchr::memchr(b'\n', &batch.buf[scan..]) {
                let nl = scan + i;
                if nl - line_start > self.max_line {
                    // Over the limit yet complete in the buffer: keep its start only.
                    let len = (nl - line_start) as u64;
                    let keep = RAW_LIMIT.min(nl - line_start);
                    let tail = batch.buf.split_off(nl + 1);
                    batch.buf.truncate(line_start + keep);
                    self.push_line(batch, line_start, line_start + keep, Some(len));
                    line_start = batch.buf.len();
                    batch.buf.extend_from_slice(&tail);
                    scan = line_start;
                    continue;
                }
                self.push_line(batch, line_start, nl, None);
                line_start = nl + 1;
                scan = line_start;
            }
            scan = batch.buf.len();
            let partial = batch.buf.len() - line_start;
            if partial > self.max_line {
                self.skip_long_line(batch, line_start, partial as u64)?;
                line_start = batch.buf.len();
                batch.buf.append(&mut self.carry);
                scan = line_start;
                if self.eof {
                    break;
                }
                continue;
            }
            let got_lines = batch.lines.len() > lines_before;
            if (got_lines && batch.buf.len() - base >= target) || self.eof {
                break;
            }
            self.read_some(&mut batch.buf)?;
        }
        if self.eof && line_start < batch.buf.len() {
            // A last line without a newline.
            let end = batch.buf.len();
            self.push_line(batch, line_start, end, None);
            line_start = end;
        }
        self.carry.extend_from_slice(&batch.buf[line_start..]);
        batch.buf.truncate(line_start);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn lines(input: &[u8], max_line: usize, target: usize) -> Vec<(u64, Vec<u8>, Option<u64>)> {
        let mut r = LineReader::new(Box::new(Cursor::new(input.to_vec())), 0, max_line);
        let mut out = Vec::new();
        let mut batch = Batch::default();
        while r.next_batch(&mut batch, target).unwrap() {
            for l in &batch.lines {
                out.push((l.line, batch.bytes(l).to_vec(), l.too_long));
            }
        }
        out
    }

    #[test]
    fn splits_lines_across_batches() {
        let input = b"a\nbb\r\n\nccc\nlast";
        for target in [1, 3, 1000] {
            let got = lines(input, 100, target);
            let texts: Vec<&[u8]> = got.iter().map(|l| &l.1[..]).collect();
            assert_eq!(texts, vec![&b"a"[..], b"bb", b"", b"ccc", b"last"], "target {target}");
            assert_eq!(got.iter().map(|l| l.0).collect::<Vec<_>>(), vec![1, 2, 3, 4, 5]);
        }
    }

    #[test]
    fn long_lines_keep_only_their_start() {
        let long = vec![b'x'; 3 * RAW_LIMIT];
        let mut input = b"ok\n".to_vec();
        input.extend_from_slice(&long);
        input.extend_from_slice(b"\nafter\n");
        input.extend_from_slice(&long);
        for target in [10, 1 << 20] {
            let got = lines(&input, 1000, target);
            assert_eq!(got.len(), 4, "target {target}");
            assert_eq!(got[0].1, b"ok");
            assert_eq!(got[1].1.len(), RAW_LIMIT);
            assert_eq!(got[1].2, Some(long.len() as u64));
            assert_eq!(got[2].1, b"after");
            assert_eq!(got[2].0, 3);
            assert_eq!(got[3].2, Some(long.len() as u64));
        }
    }

    #[test]
    fn decompresses_gzip_and_zstd() {
        use std::io::Write;
        let text = b"{\"a\":1}\n{\"b\":2}\n".repeat(1000);
        let dir = tempfile::tempdir().unwrap();
        let gz = dir.path().join("x.jsonl.gz");
        let mut e = flate2::write::GzEncoder::new(File::create(&gz).unwrap(), flate2::Compression::fast());
        e.write_all(&text).unwrap();
        e.finish().unwrap();
        let zst = dir.path().join("x.jsonl.zst");
        std::fs::write(&zst, zstd::encode_all(&text[..], 1).unwrap()).unwrap();
        for p in [gz, zst] {
            let mut r = open(p.to_str().unwrap()).unwrap();
            let mut out = Vec::new();
            r.read_to_end(&mut out).unwrap();
            assert_eq!(out, text);
        }
    }

    #[test]
    fn missing_files_are_open_errors() {
        assert!(matches!(open("/nonexistent/x.jsonl"), Err(ReplayError::Open { .. })));
        assert!(matches!(open("/"), Err(ReplayError::Open { .. })));
    }
}
