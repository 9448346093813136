//! Several recorded runs merged into one stream by event time (ties: input order), per
//! `spec/cli.md`: "several are merged by `ts`".
//!
//! Each input is read in its own batches; the merger repeatedly takes the line with the smallest `ts`
//! among the inputs' next lines and copies it into the output batch. A line whose `ts` cannot be read
//! (it will be rejected by the decoder anyway) is taken as soon as it is at the head of its input, so
//! rejects never hold up the merge.

use crate::input::{Batch, LineReader};
use std::io;
use vigil_detector::decode::{decode, Limits};

struct Input {
    reader: LineReader,
    batch: Batch,
    cursor: usize,
    /// `ts` of the line at the cursor (`i64::MIN` for unreadable ones), when there is one.
    head: Option<i64>,
}

/// Merges inputs by `ts`.
pub struct Merger {
    inputs: Vec<Input>,
    limits: Limits,
    batch_bytes: usize,
}

impl Merger {
    pub fn new(readers: Vec<LineReader>, limits: Limits, batch_bytes: usize) -> Merger {
        let inputs = readers
            .into_iter()
            .map(|reader| Input { reader, batch: Batch::default(), cursor: 0, head: None })
            .collect();
        Merger { inputs, limits, batch_bytes: (batch_bytes / 4).max(1 << 16) }
    }

    /// Bytes consumed from all inputs.
    pub fn bytes_read(&self) -> u64 {
        self.inputs.iter().map(|i| i.reader.bytes_read).sum()
    }

    fn refill(&mut self, i: usize) -> io::Result<()> {
        let limits = self.limits;
        let input = &mut self.inputs[i];
        if input.head.is_some() {
            return Ok(());
        }
        if input.cursor >= input.batch.lines.len() {
            input.cursor = 0;
            if !input.reader.next_batch(&mut input.batch, self.batch_bytes)? {
                return Ok(());
            }
        }
        let l = input.batch.lines[input.cursor];
        input.head = Some(match l.too_long {
            Some(_) => i64::MIN,
            None => decode(input.batch.bytes(&l), &limits).map(|e| e.ts_ms).unwrap_or(i64::MIN),
        });
        Ok(())
    }

    /// Fills `out` (cleared first) with about `target` bytes of merged lines; false when all inputs are
    /// exhausted.
    pub fn next_batch(&mut self, out: &mut Batch, target: usize) -> io::Result<bool> {
        out.clear();
        while out.buf.len() < target {
            for i in 0..self.inputs.len() {
                self.refill(i)?;
            }
            let Some(i) = (0..self.inputs.len())
                .filter(|&i| self.inputs[i].head.is_some())
                .min_by_key(|&i| (self.inputs[i].head, i))
            else {
                break;
            };
            let input = &mut self.inputs[i];
            let l = input.batch.lines[input.cursor];
            let start = out.buf.len();
            out.buf.extend_from_slice(input.batch.bytes(&l));
            out.lines.push(crate::input::LineRef { start, end: out.buf.len(), ..l });
            input.cursor += 1;
            input.head = None;
        }
        Ok(!out.lines.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn reader(text: &str, source: u32) -> LineReader {
        LineReader::new(Box::new(Cursor::new(text.as_bytes().to_vec())), source, 1 << 20)
    }

    #[test]
    fn merges_by_ts_with_input_order_on_ties() {
        let a = "{\"ts\":1,\"agent_id\":\"a\",\"kind\":\"x\"}\n{\"ts\":5,\"agent_id\":\"a\",\"kind\":\"x\"}\n";
        let b =
            "{\"ts\":1,\"agent_id\":\"b\",\"kind\":\"x\"}\nnot json\n{\"ts\":3,\"agent_id\":\"b\",\"kind\":\"x\"}\n";
        let mut m = Merger::new(vec![reader(a, 0), reader(b, 1)], Limits::default(), 1 << 20);
        let mut out = Batch::default();
        let mut got = Vec::new();
        while m.next_batch(&mut out, 64).unwrap() {
            for l in &out.lines {
                got.push((l.source, l.line));
            }
        }
        assert_eq!(got, vec![(0, 1), (1, 1), (1, 2), (1, 3), (0, 2)]);
    }
}
