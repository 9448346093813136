//! The condition language: lexer, syntax tree and recursive-descent parser.
//!
//! CEL-like, small on purpose. Precedence, loosest first: `||`, `&&`, comparisons (`== != < <= > >=`, `in`),
//! `+`, unary `!` and `-`, then member access and calls. Every node carries the byte span of its source
//! text, so type errors found later point at the exact token. The parser never panics and bounds its
//! recursion depth, whatever the input.

use std::fmt;

/// A byte range in the condition text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Span {
    /// First byte.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
}

impl Span {
    fn to(self, other: Span) -> Span {
        Span { start: self.start, end: other.end.max(self.start) }
    }
}

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmpOp {
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

impl CmpOp {
    /// The operator as written.
    pub fn symbol(self) -> &'static str {
        match self {
            CmpOp::Eq => "==",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }

    /// Whether the operator orders its operands (as opposed to testing equality).
    pub fn is_ordering(self) -> bool {
        !matches!(self, CmpOp::Eq | CmpOp::Ne)
    }
}

/// A node of the condition syntax tree.
#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    /// What the node is.
    pub kind: ExprKind,
    /// Where it is in the condition text.
    pub span: Span,
}

/// The kinds of syntax-tree nodes.
#[derive(Clone, Debug, PartialEq)]
pub enum ExprKind {
    /// A string literal.
    Str(String),
    /// A number literal (unary minus on a literal is folded in).
    Num(f64),
    /// `true` or `false`.
    Bool(bool),
    /// `[a, b, ...]`: a literal list (only meaningful on the right of `in`).
    List(Vec<Expr>),
    /// A name: a field path (`dest.host`), a macro or a list.
    Name(String),
    /// `!e`
    Not(Box<Expr>),
    /// `a && b`
    And(Box<Expr>, Box<Expr>),
    /// `a || b`
    Or(Box<Expr>, Box<Expr>),
    /// `a <op> b`
    Cmp(CmpOp, Box<Expr>, Box<Expr>),
    /// `a in b`
    In(Box<Expr>, Box<Expr>),
    /// `a + b` (string concatenation or numeric addition)
    Add(Box<Expr>, Box<Expr>),
    /// `f(args)`: `lower(x)`, `has(x)`.
    Call {
        /// Function name.
        name: String,
        /// Span of the name.
        name_span: Span,
        /// Arguments.
        args: Vec<Expr>,
    },
    /// `recv.m(args)`: `contains`, `startsWith`, `endsWith`, `matches`, `glob`.
    Method {
        /// The receiver.
        recv: Box<Expr>,
        /// Method name.
        name: String,
        /// Span of the method name.
        name_span: Span,
        /// Arguments.
        args: Vec<Expr>,
    },
}

/// A syntax error: where and what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyntaxError {
    /// Byte offset in the condition text.
    pub offset: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at offset {}", self.message, self.offset)
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Num(f64),
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    Dot,
    Not,
    And,
    Or,
    Cmp(CmpOp),
    Plus,
    Minus,
    Eof,
}

impl Tok {
    fn describe(&self) -> String {
        match self {
            Tok::Ident(s) => format!("`{s}`"),
            Tok::Str(_) => "a string".into(),
            Tok::Num(_) => "a number".into(),
            Tok::LParen => "`(`".into(),
            Tok::RParen => "`)`".into(),
            Tok::LBracket => "`[`".into(),
            Tok::RBracket => "`]`".into(),
            Tok::Comma => "`,`".into(),
            Tok::Dot => "`.`".into(),
            Tok::Not => "`!`".into(),
            Tok::And => "`&&`".into(),
            Tok::Or => "`||`".into(),
            Tok::Cmp(op) => format!("`{}`", op.symbol()),
            Tok::Plus => "`+`".into(),
            Tok::Minus => "`-`".into(),
            Tok::Eof => "end of condition".into(),
        }
    }
}

fn err<T>(offset: usize, message: impl Into<String>) -> Result<T, SyntaxError> {
    Err(SyntaxError { offset, message: message.into() })
}

fn lex(src: &str) -> Result<Vec<(Tok, Span)>, SyntaxError> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let start = i;
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let two = |x: u8| b.get(i + 1) == Some(&x);
        let (tok, len) = match c {
            b'(' => (Tok::LParen, 1),
            b')' => (Tok::RParen, 1),
            b'[' => (Tok::LBracket, 1),
            b']' => (Tok::RBracket, 1),
            b',' => (Tok::Comma, 1),
            b'.' if !b.get(i + 1).is_some_and(u8::is_ascii_digit) => (Tok::Dot, 1),
            b'+' => (Tok::Plus, 1),
            b'-' => (Tok::Minus, 1),
            b'!' if two(b'=') => (Tok::Cmp(CmpOp::Ne), 2),
            b'!' => (Tok::Not, 1),
            b'&' if two(b'&') => (Tok::And, 2),
            b'&' => return err(i, "unexpected `&`; use `&&`"),
            b'|' if two(b'|') => (Tok::Or, 2),
            b'|' => return err(i, "unexpected `|`; use `||`"),
            b'=' if two(b'=') => (Tok::Cmp(CmpOp::Eq), 2),
            b'=' => return err(i, "unexpected `=`; use `==` to compare"),
            b'<' if two(b'=') => (Tok::Cmp(CmpOp::Le), 2),
            b'<' => (Tok::Cmp(CmpOp::Lt), 1),
            b'>' if two(b'=') => (Tok::Cmp(CmpOp::Ge), 2),
            b'>' => (Tok::Cmp(CmpOp::Gt), 1),
            b'"' | b'\'' => {
                let (s, len) = lex_string(src, i, false)?;
                (Tok::Str(s), len)
            }
            b'r' if matches!(b.get(i + 1), Some(b'"') | Some(b'\'')) => {
                let (s, len) = lex_string(src, i + 1, true)?;
                (Tok::Str(s), len + 1)
            }
            b'0'..=b'9' | b'.' => {
                let mut j = i;
                while j < b.len() && (b[j].is_ascii_digit() || b[j] == b'.' || b[j] == b'_') {
                    j += 1;
                }
                if j < b.len() && (b[j] == b'e' || b[j] == b'E') {
                    let mut k = j + 1;
                    if k < b.len() && (b[k] == b'+' || b[k] == b'-') {
                        k += 1;
                    }
                    if k < b.len() && b[k].is_ascii_digit() {
                        j = k;
                        while j < b.len() && b[j].is_ascii_digit() {
                            j += 1;
                        }
                    }
                }
                if j < b.len() && (b[j].is_ascii_alphabetic() || b[j] == b'_') {
                    return err(j, "unexpected character after number");
                }
                let text: String = src[i..j].chars().filter(|&c| c != '_').collect();
                match text.parse::<f64>() {
                    Ok(n) if n.is_finite() => (Tok::Num(n), j - i),
                    _ => return err(i, format!("invalid number `{}`", &src[i..j])),
                }
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let mut j = i;
                while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
                    j += 1;
                }
                (Tok::Ident(src[i..j].to_string()), j - i)
            }
            _ => {
                let ch = src[i..].chars().next().unwrap_or('?');
                return err(i, format!("unexpected character `{ch}`"));
            }
        };
        i += len;
        out.push((tok, Span { start, end: i }));
    }
    out.push((Tok::Eof, Span { start: src.len(), end: src.len() }));
    Ok(out)
}

/// Lexes a quoted string starting at the quote at byte `i`; returns the value and the length consumed.
/// Escapes: `\\ \" \' \n \t \r`; any other backslash is kept as written (so regexes read naturally:
/// `"\d+"`). Raw strings (`r"..."`) keep every backslash.
fn lex_string(src: &str, i: usize, raw: bool) -> Result<(String, usize), SyntaxError> {
    let bytes = src.as_bytes();
    let quote = bytes[i];
    let mut out = String::new();
    let mut chars = src[i + 1..].char_indices();
    while let Some((k, c)) = chars.next() {
        let at = i + 1 + k;
        if c as u32 == quote as u32 {
            return Ok((out, at + 1 - i));
        }
        if c == '\\' && !raw {
            match chars.next() {
                Some((_, '\\')) => out.push('\\'),
                Some((_, '"')) => out.push('"'),
                Some((_, '\'')) => out.push('\''),
                Some((_, 'n')) => out.push('\n'),
                Some((_, 't')) => out.push('\t'),
                Some((_, 'r')) => out.push('\r'),
                Some((_, other)) => {
                    out.push('\\');
                    out.push(other);
                }
                None => break,
            }
            continue;
        }
        out.push(c);
    }
    err(i, "unterminated string")
}

/// Deepest nesting the parser accepts.
const MAX_DEPTH: usize = 64;

struct Parser {
    toks: Vec<(Tok, Span)>,
    pos: usize,
    depth: usize,
}

/// Parses a condition into its syntax tree.
pub fn parse(src: &str) -> Result<Expr, SyntaxError> {
    let toks = lex(src)?;
    let mut p = Parser { toks, pos: 0, depth: 0 };
    if p.peek() == &Tok::Eof {
        return err(0, "empty condition");
    }
    let e = p.or()?;
    if p.peek() != &Tok::Eof {
        let (t, s) = p.cur();
        return err(s.start, format!("unexpected {}", t.describe()));
    }
    Ok(e)
}

impl Parser {
    fn peek(&self) -> &Tok {
        &self.toks[self.pos.min(self.toks.len() - 1)].0
    }

    fn cur(&self) -> (Tok, Span) {
        self.toks[self.pos.min(self.toks.len() - 1)].clone()
    }

    fn bump(&mut self) -> (Tok, Span) {
        let t = self.cur();
        if self.pos < self.toks.len() - 1 {
            self.pos += 1;
        }
        t
    }

    fn expect(&mut self, want: Tok, what: &str) -> Result<Span, SyntaxError> {
        let (t, s) = self.cur();
        if t == want {
            self.bump();
            Ok(s)
        } else {
            err(s.start, format!("expected {what}, found {}", t.describe()))
        }
    }

    fn enter(&mut self) -> Result<(), SyntaxError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            let (_, s) = self.cur();
            return err(s.start, "condition nested too deeply");
        }
        Ok(())
    }

    fn or(&mut self) -> Result<Expr, SyntaxError> {
        self.enter()?;
        let mut l = self.and()?;
        while self.peek() == &Tok::Or {
            self.bump();
            let r = self.and()?;
            let span = l.span.to(r.span);
            l = Expr { kind: ExprKind::Or(Box::new(l), Box::new(r)), span };
        }
        self.depth -= 1;
        Ok(l)
    }

    fn and(&mut self) -> Result<Expr, SyntaxError> {
        let mut l = self.relation()?;
        while self.peek() == &Tok::And {
            self.bump();
            let r = self.relation()?;
            let span = l.span.to(r.span);
            l = Expr { kind: ExprKind::And(Box::new(l), Box::new(r)), span };
        }
        Ok(l)
    }

    fn relation(&mut self) -> Result<Expr, SyntaxError> {
        let l = self.additive()?;
        let op = match self.peek() {
            Tok::Cmp(op) => Some(*op),
            Tok::Ident(s) if s == "in" => None,
            _ => return Ok(l),
        };
        self.bump();
        let r = self.additive()?;
        let span = l.span.to(r.span);
        let kind = match op {
            Some(op) => ExprKind::Cmp(op, Box::new(l), Box::new(r)),
            None => ExprKind::In(Box::new(l), Box::new(r)),
        };
        let e = Expr { kind, span };
        match self.cur() {
            (Tok::Cmp(_), s) => err(s.start, "comparisons do not chain; combine them with `&&` or add parentheses"),
            (Tok::Ident(w), s) if w == "in" => {
                err(s.start, "comparisons do not chain; combine them with `&&` or add parentheses")
            }
            _ => Ok(e),
        }
    }

    fn additive(&mut self) -> Result<Expr, SyntaxError> {
        let mut l = self.unary()?;
        while self.peek() == &Tok::Plus {
            self.bump();
            let r = self.unary()?;
            let span = l.span.to(r.span);
            l = Expr { kind: ExprKind::Add(Box::new(l), Box::new(r)), span };
        }
        Ok(l)
    }

    fn unary(&mut self) -> Result<Expr, SyntaxError> {
        match self.cur() {
            (Tok::Not, s) => {
                self.bump();
                self.enter()?;
                let e = self.unary()?;
                self.depth -= 1;
                let span = s.to(e.span);
                Ok(Expr { kind: ExprKind::Not(Box::new(e)), span })
            }
            (Tok::Minus, s) => {
                self.bump();
                match self.bump() {
                    (Tok::Num(n), ns) => Ok(Expr { kind: ExprKind::Num(-n), span: s.to(ns) }),
                    (t, ts) => err(ts.start, format!("`-` must be followed by a number, found {}", t.describe())),
                }
            }
            _ => self.postfix(),
        }
    }

    fn postfix(&mut self) -> Result<Expr, SyntaxError> {
        let mut e = self.primary()?;
        while self.peek() == &Tok::Dot {
            self.bump();
            let (t, s) = self.bump();
            let name = match t {
                Tok::Ident(n) => n,
                t => return err(s.start, format!("expected a method name after `.`, found {}", t.describe())),
            };
            if self.peek() != &Tok::LParen {
                return err(
                    s.start,
                    format!(
                        "`.{name}` must be a method call (`.{name}(...)`); field paths cannot follow a call or literal"
                    ),
                );
            }
            let args = self.args()?;
            let span = e.span.to(self.toks[self.pos.saturating_sub(1)].1);
            e = Expr { kind: ExprKind::Method { recv: Box::new(e), name, name_span: s, args }, span };
        }
        Ok(e)
    }

    fn args(&mut self) -> Result<Vec<Expr>, SyntaxError> {
        self.expect(Tok::LParen, "`(`")?;
        let mut args = Vec::new();
        if self.peek() == &Tok::RParen {
            self.bump();
            return Ok(args);
        }
        loop {
            args.push(self.or()?);
            match self.bump() {
                (Tok::Comma, _) => continue,
                (Tok::RParen, _) => return Ok(args),
                (t, s) => return err(s.start, format!("expected `,` or `)`, found {}", t.describe())),
            }
        }
    }

    fn primary(&mut self) -> Result<Expr, SyntaxError> {
        let (t, s) = self.bump();
        match t {
            Tok::Str(v) => Ok(Expr { kind: ExprKind::Str(v), span: s }),
            Tok::Num(n) => Ok(Expr { kind: ExprKind::Num(n), span: s }),
            Tok::LParen => {
                let mut e = self.or()?;
                let end = self.expect(Tok::RParen, "`)`")?;
                e.span = s.to(end);
                Ok(e)
            }
            Tok::LBracket => {
                self.enter()?;
                let mut items = Vec::new();
                if self.peek() == &Tok::RBracket {
                    let end = self.bump().1;
                    self.depth -= 1;
                    return Ok(Expr { kind: ExprKind::List(items), span: s.to(end) });
                }
                loop {
                    items.push(self.additive()?);
                    match self.bump() {
                        (Tok::Comma, _) if self.peek() == &Tok::RBracket => {
                            let end = self.bump().1;
                            self.depth -= 1;
                            return Ok(Expr { kind: ExprKind::List(items), span: s.to(end) });
                        }
                        (Tok::Comma, _) => continue,
                        (Tok::RBracket, end) => {
                            self.depth -= 1;
                            return Ok(Expr { kind: ExprKind::List(items), span: s.to(end) });
                        }
                        (t, ts) => return err(ts.start, format!("expected `,` or `]`, found {}", t.describe())),
                    }
                }
            }
            Tok::Ident(name) => {
                match name.as_str() {
                    "true" => return Ok(Expr { kind: ExprKind::Bool(true), span: s }),
                    "false" => return Ok(Expr { kind: ExprKind::Bool(false), span: s }),
                    "in" => return err(s.start, "unexpected `in`"),
                    _ => {}
                }
                if self.peek() == &Tok::LParen {
                    let args = self.args()?;
                    let span = s.to(self.toks[self.pos.saturating_sub(1)].1);
                    return Ok(Expr { kind: ExprKind::Call { name, name_span: s, args }, span });
                }
                // A dotted path: segments joined while the next segment is not a method call.
                let mut path = name;
                let mut span = s;
                while self.peek() == &Tok::Dot {
                    let is_method = matches!(self.toks.get(self.pos + 2), Some((Tok::LParen, _)));
                    let next_ident = matches!(self.toks.get(self.pos + 1), Some((Tok::Ident(_), _)));
                    if is_method || !next_ident {
                        break;
                    }
                    self.bump();
                    if let (Tok::Ident(seg), ss) = self.bump() {
                        path.push('.');
                        path.push_str(&seg);
                        span = span.to(ss);
                    }
                }
                Ok(Expr { kind: ExprKind::Name(path), span })
            }
            t => err(s.start, format!("expected a value, found {}", t.describe())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn p(s: &str) -> Expr {
        parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn precedence() {
        let e = p("a == 1 || b == 2 && !c");
        match e.kind {
            ExprKind::Or(_, r) => assert!(matches!(r.kind, ExprKind::And(..))),
            k => panic!("{k:?}"),
        }
        let e = p("!(dest.host in egress_allow)");
        match e.kind {
            ExprKind::Not(inner) => match inner.kind {
                ExprKind::In(l, r) => {
                    assert_eq!(l.kind, ExprKind::Name("dest.host".into()));
                    assert_eq!(r.kind, ExprKind::Name("egress_allow".into()));
                }
                k => panic!("{k:?}"),
            },
            k => panic!("{k:?}"),
        }
    }

    #[test]
    fn methods_and_paths() {
        let e = p("dest.host.endsWith('.internal')");
        match e.kind {
            ExprKind::Method { recv, name, .. } => {
                assert_eq!(name, "endsWith");
                assert_eq!(recv.kind, ExprKind::Name("dest.host".into()));
            }
            k => panic!("{k:?}"),
        }
        let e = p("lower(cmd).contains(\"rm\")");
        assert!(matches!(e.kind, ExprKind::Method { .. }));
        let e = p("score.entropy >= .5");
        assert!(matches!(e.kind, ExprKind::Cmp(CmpOp::Ge, _, _)));
        let e = p("x in [1, -2, 3e2,]");
        match e.kind {
            ExprKind::In(_, r) => match r.kind {
                ExprKind::List(items) => {
                    assert_eq!(items.len(), 3);
                    assert_eq!(items[1].kind, ExprKind::Num(-2.0));
                    assert_eq!(items[2].kind, ExprKind::Num(300.0));
                }
                k => panic!("{k:?}"),
            },
            k => panic!("{k:?}"),
        }
        let e = p(r#"cmd.matches("rm\s+-rf") && cmd.matches(r'a\"b')"#);
        match e.kind {
            ExprKind::And(l, r) => {
                match l.kind {
                    ExprKind::Method { args, .. } => assert_eq!(args[0].kind, ExprKind::Str("rm\\s+-rf".into())),
                    k => panic!("{k:?}"),
                }
                match r.kind {
                    ExprKind::Method { args, .. } => assert_eq!(args[0].kind, ExprKind::Str("a\\\"b".into())),
                    k => panic!("{k:?}"),
                }
            }
            k => panic!("{k:?}"),
        }
    }

    #[test]
    fn spans_point_at_tokens() {
        let src = "kind == \"net\" && dest.hots == 'a'";
        let e = p(src);
        match e.kind {
            ExprKind::And(_, r) => match r.kind {
                ExprKind::Cmp(_, l, _) => assert_eq!(&src[l.span.start..l.span.end], "dest.hots"),
                k => panic!("{k:?}"),
            },
            k => panic!("{k:?}"),
        }
    }

    #[test]
    fn syntax_errors() {
        let cases = [
            ("", 0, "empty"),
            ("kind = \"x\"", 5, "use `==`"),
            ("kind == ", 8, "expected a value"),
            ("a & b", 2, "use `&&`"),
            ("(a == 1", 7, "expected `)`"),
            ("a == 'x", 5, "unterminated"),
            ("a == 1 == 2", 7, "do not chain"),
            ("a ==) ", 4, "expected a value"),
            ("lower(x).contains", 9, "method call"),
            ("a == 1 b", 7, "unexpected `b`"),
            ("a # b", 2, "unexpected character"),
            ("12abc", 2, "after number"),
        ];
        for (src, off, msg) in cases {
            let e = parse(src).unwrap_err();
            assert!(e.message.contains(msg), "{src}: {e}");
            assert_eq!(e.offset, off, "{src}: {e}");
        }
        let deep = "(".repeat(500) + "a" + &")".repeat(500);
        assert!(parse(&deep).unwrap_err().message.contains("deeply"));
        let nots = "!".repeat(500) + "a";
        assert!(parse(&nots).is_err());
        let lists = "x in ".to_string() + &"[".repeat(500);
        assert!(parse(&lists).is_err());
    }

    proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,200}") {
            let _ = parse(&s);
        }

        #[test]
        fn never_panics_on_token_soup(toks in proptest::collection::vec(
            prop_oneof![
                Just("a"), Just("b.c"), Just("("), Just(")"), Just("["), Just("]"), Just(","), Just("."),
                Just("!"), Just("&&"), Just("||"), Just("=="), Just("<"), Just("in"), Just("+"), Just("-"),
                Just("'s'"), Just("1"), Just("lower"), Just("contains"), Just("true"),
            ], 0..40)) {
            let src = toks.join(" ");
            if let Err(e) = parse(&src) {
                prop_assert!(e.offset <= src.len());
            }
        }

        #[test]
        fn spans_stay_in_bounds(a in "f_[a-z]{1,8}(\\.[a-z]{1,8})?", lit in "[ -~&&[^'\\\\]]{0,12}", n in 0u32..10_000) {
            let src = format!("{a} == '{lit}' && {a} >= {n} || !({a}.contains('{lit}'))");
            let e = parse(&src).unwrap();
            fn walk(e: &Expr, len: usize) {
                assert!(e.span.start <= e.span.end && e.span.end <= len);
                match &e.kind {
                    ExprKind::Not(x) => walk(x, len),
                    ExprKind::And(x, y) | ExprKind::Or(x, y) | ExprKind::Cmp(_, x, y)
                    | ExprKind::In(x, y) | ExprKind::Add(x, y) => { walk(x, len); walk(y, len) }
                    ExprKind::Method { recv, args, .. } => { walk(recv, len); args.iter().for_each(|a| walk(a, len)) }
                    ExprKind::Call { args, .. } | ExprKind::List(args) => args.iter().for_each(|a| walk(a, len)),
                    _ => {}
                }
            }
            walk(&e, src.len());
        }
    }
}
