//! A YAML document as a small tree whose every node knows where it starts, built from yaml-rust2's event
//! API, plus the mapping from an offset inside a scalar's *value* back to a line and column of the *file*
//! (so an error in a condition points at the offending token, not at the start of the `when:` line).
//!
//! Anchors are ignored and aliases are refused: rule files have no use for them, and expanding aliases is
//! how "billion laughs" inputs blow up memory.

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// Where a node starts: character index into the source, 1-based line and column.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Pos {
    pub index: usize,
    pub line: usize,
    pub col: usize,
}

impl Pos {
    fn from_marker(m: &Marker) -> Pos {
        Pos { index: m.index(), line: m.line(), col: m.col() + 1 }
    }
}

/// The style a scalar was written in (needed to map value offsets back to the source).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Style {
    Plain,
    Single,
    Double,
    Block,
}

/// A YAML node with its position.
#[derive(Clone, Debug)]
pub(crate) struct Node {
    pub pos: Pos,
    pub kind: NodeKind,
}

#[derive(Clone, Debug)]
pub(crate) enum NodeKind {
    Scalar(String, Style),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

impl Node {
    pub(crate) fn as_str(&self) -> Option<&str> {
        match &self.kind {
            NodeKind::Scalar(s, _) => Some(s),
            _ => None,
        }
    }

    /// Whether this is the null scalar (`~`, `null`, or nothing at all).
    pub(crate) fn is_null(&self) -> bool {
        matches!(&self.kind, NodeKind::Scalar(s, Style::Plain) if s.is_empty() || s == "~" || s == "null" || s == "Null" || s == "NULL")
    }

    pub(crate) fn what(&self) -> &'static str {
        match &self.kind {
            NodeKind::Scalar(..) => "a scalar",
            NodeKind::Seq(_) => "a list",
            NodeKind::Map(_) => "a mapping",
        }
    }
}

/// A parse failure: where and why.
#[derive(Debug)]
pub(crate) struct YamlError {
    pub pos: Pos,
    pub message: String,
}

/// Nesting deeper than this is refused (rule and case files are shallow; this bounds recursion).
const MAX_DEPTH: usize = 64;

enum Frame {
    Seq(Pos, Vec<Node>),
    Map(Pos, Vec<(Node, Node)>, Option<Node>),
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    docs: Vec<Node>,
    error: Option<YamlError>,
}

impl Builder {
    fn push_node(&mut self, node: Node) {
        match self.stack.last_mut() {
            None => self.docs.push(node),
            Some(Frame::Seq(_, items)) => items.push(node),
            Some(Frame::Map(_, entries, key)) => match key.take() {
                None => *key = Some(node),
                Some(k) => entries.push((k, node)),
            },
        }
    }

    fn fail(&mut self, pos: Pos, message: &str) {
        if self.error.is_none() {
            self.error = Some(YamlError { pos, message: message.to_string() });
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        if self.error.is_some() {
            return;
        }
        let pos = Pos::from_marker(&mark);
        match ev {
            Event::Scalar(_, _, _, Some(tag))
            | Event::SequenceStart(_, Some(tag))
            | Event::MappingStart(_, Some(tag)) => {
                let msg = format!(
                    "YAML tag `{}{}` is not supported (a condition starting with `!` must be quoted: `when: '!(...)'`)",
                    tag.handle, tag.suffix
                );
                self.fail(pos, &msg);
            }
            Event::Scalar(value, style, _, None) => {
                let style = match style {
                    TScalarStyle::Plain => Style::Plain,
                    TScalarStyle::SingleQuoted => Style::Single,
                    TScalarStyle::DoubleQuoted => Style::Double,
                    TScalarStyle::Literal | TScalarStyle::Folded => Style::Block,
                };
                self.push_node(Node { pos, kind: NodeKind::Scalar(value, style) });
            }
            Event::SequenceStart(..) | Event::MappingStart(..) => {
                if self.stack.len() >= MAX_DEPTH {
                    self.fail(pos, "nesting too deep");
                    return;
                }
                if matches!(ev, Event::SequenceStart(..)) {
                    self.stack.push(Frame::Seq(pos, Vec::new()));
                } else {
                    self.stack.push(Frame::Map(pos, Vec::new(), None));
                }
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let node = match self.stack.pop() {
                    Some(Frame::Seq(p, items)) => Node { pos: p, kind: NodeKind::Seq(items) },
                    // A block mapping's marker is not where it starts to the eye: use its first key.
                    Some(Frame::Map(p, entries, _)) => {
                        Node { pos: entries.first().map_or(p, |(k, _)| k.pos), kind: NodeKind::Map(entries) }
                    }
                    None => return,
                };
                self.push_node(node);
            }
            Event::Alias(_) => self.fail(pos, "aliases (*name) are not supported in rule files"),
            _ => {}
        }
    }
}

/// Parses every document of `text`. A document that is empty yields no node.
pub(crate) fn parse(text: &str) -> Result<Vec<Node>, YamlError> {
    let mut b = Builder::default();
    let mut parser = Parser::new_from_str(text);
    if let Err(e) = parser.load(&mut b, true) {
        let m = e.marker();
        return Err(YamlError { pos: Pos::from_marker(m), message: e.info().to_string() });
    }
    if let Some(e) = b.error {
        return Err(e);
    }
    Ok(b.docs.into_iter().filter(|d| !d.is_null()).collect())
}

/// A source file's characters and line starts, to turn scalar-value offsets into file positions.
pub(crate) struct Source {
    chars: Vec<char>,
    line_starts: Vec<usize>,
}

impl Source {
    pub(crate) fn new(text: &str) -> Source {
        let chars: Vec<char> = text.chars().collect();
        let mut line_starts = vec![0];
        for (i, &c) in chars.iter().enumerate() {
            if c == '\n' {
                line_starts.push(i + 1);
            }
        }
        Source { chars, line_starts }
    }

    fn line_col(&self, index: usize) -> (usize, usize) {
        let line = self.line_starts.partition_point(|&s| s <= index).max(1);
        let start = self.line_starts[line - 1];
        (line, index - start + 1)
    }

    /// The file position (line, column) of byte offset `offset` of the value of scalar `node`.
    ///
    /// Walks the scalar's source text alongside its value, skipping what YAML removed (quotes, escapes,
    /// folded line breaks and indentation). Exact for plain, quoted and block scalars; if the walk ever
    /// loses track it falls back to the scalar's start.
    pub(crate) fn locate(&self, node: &Node, offset: usize) -> (usize, usize) {
        let fallback = (node.pos.line, node.pos.col);
        let (value, style) = match &node.kind {
            NodeKind::Scalar(v, s) => (v.as_str(), *s),
            _ => return fallback,
        };
        let offset = offset.min(value.len());
        let target = value.char_indices().take_while(|&(b, _)| b < offset).count();
        let mut i = node.pos.index;
        match style {
            Style::Plain => {}
            Style::Single | Style::Double => i += 1,
            Style::Block => {
                // The marker is either at the `|`/`>` indicator or at the content.
                if matches!(self.chars.get(i), Some('|') | Some('>')) {
                    while i < self.chars.len() && self.chars[i] != '\n' {
                        i += 1;
                    }
                }
            }
        }
        let mut last_end = i;
        for (k, c) in value.chars().enumerate() {
            match self.align(&mut i, c, style) {
                Some(start) => {
                    if k == target {
                        return self.line_col(start);
                    }
                    last_end = i;
                }
                None => return fallback,
            }
        }
        // Offset at the end of the value: just after its last character.
        if last_end <= self.chars.len() {
            self.line_col(last_end)
        } else {
            fallback
        }
    }

    /// Finds the source position producing value character `c`, starting at `*i`; advances `*i` past it.
    fn align(&self, i: &mut usize, c: char, style: Style) -> Option<usize> {
        let mut skipped = 0;
        while *i < self.chars.len() {
            let s = self.chars[*i];
            if style == Style::Double && s == '\\' {
                let next = self.chars.get(*i + 1).copied();
                match next {
                    Some('\n') | Some('\r') => {
                        *i += 2;
                        continue;
                    }
                    Some('x') => return Some(self.take(i, 4)),
                    Some('u') => return Some(self.take(i, 6)),
                    Some('U') => return Some(self.take(i, 10)),
                    Some(_) => return Some(self.take(i, 2)),
                    None => return None,
                }
            }
            if style == Style::Single && s == '\'' && c == '\'' && self.chars.get(*i + 1) == Some(&'\'') {
                return Some(self.take(i, 2));
            }
            if s == c {
                return Some(self.take(i, 1));
            }
            // Something YAML removed: line folding, indentation, a closing quote of a continued line.
            *i += 1;
            skipped += 1;
            if skipped > 4096 {
                return None;
            }
        }
        None
    }

    fn take(&self, i: &mut usize, n: usize) -> usize {
        let start = *i;
        *i = (*i + n).min(self.chars.len());
        start
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scalar_at<'a>(n: &'a Node, path: &[&str]) -> &'a Node {
        let mut cur = n;
        for p in path {
            cur = match &cur.kind {
                NodeKind::Map(es) => &es.iter().find(|(k, _)| k.as_str() == Some(p)).unwrap().1,
                NodeKind::Seq(items) => &items[p.parse::<usize>().unwrap()],
                _ => panic!("not a container"),
            };
        }
        cur
    }

    fn loc_of(text: &str, path: &[&str], needle: &str) -> (usize, usize) {
        let docs = parse(text).unwrap();
        let src = Source::new(text);
        let node = scalar_at(&docs[0], path);
        let off = node.as_str().unwrap().find(needle).unwrap();
        src.locate(node, off)
    }

    #[test]
    fn positions_in_plain_quoted_and_block_scalars() {
        let t = "- rule: x\n  when: kind == \"net\" && dest.hots == 'a'\n";
        assert_eq!(loc_of(t, &["0", "when"], "dest.hots"), (2, 26));
        let t = "- rule: x\n  when: \"kind == \\\"net\\\" && dest.hots == 'a'\"\n";
        assert_eq!(loc_of(t, &["0", "when"], "dest.hots"), (2, 29));
        let t = "- rule: x\n  when: 'kind == ''net'' && dest.hots == 1'\n";
        assert_eq!(loc_of(t, &["0", "when"], "dest.hots"), (2, 29));
        let t = "- rule: x\n  when: |\n    kind == \"net\"\n      && dest.hots == 1\n";
        assert_eq!(loc_of(t, &["0", "when"], "dest.hots"), (4, 10));
        let t = "- rule: x\n  when: >-\n    kind == \"net\"\n    && dest.hots == 1\n";
        assert_eq!(loc_of(t, &["0", "when"], "dest.hots"), (4, 8));
        let t = "- rule: x\n  when: kind == \"net\"\n    && dest.hots == 1\n";
        assert_eq!(loc_of(t, &["0", "when"], "dest.hots"), (3, 8));
        let t = "- rule: x\n  when: kind == \"né\" && dest.hots == 1\n";
        assert_eq!(loc_of(t, &["0", "when"], "dest.hots"), (2, 25));
    }

    #[test]
    fn end_offset_points_after_value() {
        let t = "when: a &&\n";
        let docs = parse(t).unwrap();
        let src = Source::new(t);
        let n = scalar_at(&docs[0], &["when"]);
        assert_eq!(src.locate(n, n.as_str().unwrap().len()), (1, 11));
    }

    #[test]
    fn errors_and_aliases() {
        let e = parse("- a: [1, 2\n").unwrap_err();
        assert!(e.pos.line >= 1);
        let e = parse("- &a x\n- *a\n").unwrap_err();
        assert!(e.message.contains("aliases"));
        assert!(parse("").unwrap().is_empty());
        assert!(parse("# only a comment\n").unwrap().is_empty());
        let deep = "[".repeat(200) + &"]".repeat(200);
        assert!(parse(&deep).is_err());
        let e = parse("when: !(a == 1)\n").unwrap_err();
        assert!(e.message.contains("must be quoted"), "{}", e.message);
    }
}
