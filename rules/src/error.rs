//! What can be wrong with a rule pack or a test-case file, and where.
//!
//! Loading never stops at the first problem: every problem becomes a [`Diagnostic`] (file, line, column,
//! message) and the loader carries on with the next item, so `vigil rules check` can show them all at once.
//! The message of a diagnostic is the `Display` of a [`RuleError`]; all of them are the rule author's to fix
//! (bad input), none is retryable, and none is ever a panic.

use std::fmt;

/// Everything that can be wrong with a rule pack or a test-case file.
///
/// Every variant is the fault of the file's author: fix the file and load again. A retry without a change
/// cannot help.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RuleError {
    /// The file or directory could not be read (missing, unreadable, not UTF-8).
    #[error("cannot read: {0}")]
    Io(String),
    /// The text is not well-formed YAML.
    #[error("YAML syntax error: {0}")]
    Yaml(String),
    /// The YAML is well-formed but not shaped like a rule pack or case file (e.g. a mapping where a list of
    /// items was expected).
    #[error("{0}")]
    Structure(String),
    /// An item has a key it does not know (often a typo: `severty`).
    #[error("unknown key `{key}` in {item}{hint} (expected one of: {expected})")]
    UnknownKey {
        /// The offending key.
        key: String,
        /// What kind of item it appeared in (`rule`, `threshold`, ...).
        item: &'static str,
        /// A "did you mean" suggestion, possibly empty.
        hint: String,
        /// The keys that item accepts.
        expected: String,
    },
    /// An item lacks a key it needs.
    #[error("{item} is missing required key `{key}`")]
    MissingKey {
        /// The missing key.
        key: &'static str,
        /// What kind of item lacks it.
        item: &'static str,
    },
    /// A key has a value of the wrong form (a severity that is not `low|medium|high|critical`, a window that
    /// is not a duration, ...).
    #[error("invalid value for `{key}`: {message}")]
    InvalidValue {
        /// The key whose value is wrong.
        key: &'static str,
        /// What is wrong and what is expected.
        message: String,
    },
    /// A condition is not a well-formed expression.
    #[error("syntax error: {0}")]
    Syntax(String),
    /// A condition names a field the schema does not declare.
    #[error("unknown field `{name}`{hint}")]
    UnknownField {
        /// The name as written.
        name: String,
        /// A "did you mean" suggestion, possibly empty.
        hint: String,
    },
    /// `x in NAME` names a list that no file of the pack defines.
    #[error("unknown list `{name}`{hint}")]
    UnknownList {
        /// The list name as written.
        name: String,
        /// A "did you mean" suggestion, possibly empty.
        hint: String,
    },
    /// A condition is well-formed but its types do not fit (a string compared with a number, a string
    /// method called on a number, a list used outside `in`, ...).
    #[error("type error: {0}")]
    Type(String),
    /// `x.matches("...")` carries a regular expression the regex engine rejects.
    #[error("invalid regular expression: {0}")]
    Regex(String),
    /// A rule id, list or macro name is defined twice in the pack.
    #[error("duplicate {what} `{name}` (first defined at {first})")]
    Duplicate {
        /// `rule`, `list` or `macro`.
        what: &'static str,
        /// The duplicated name.
        name: String,
        /// `file:line` of the first definition.
        first: String,
    },
    /// Macros reference each other in a cycle.
    #[error("macro `{0}` references itself (directly or through other macros)")]
    MacroCycle(String),
    /// A pack directory holds no rule files.
    #[error("no rule files (*.yaml) found")]
    Empty,
}

/// One problem in a rule pack or case file, with its location.
///
/// `line` and `column` are 1-based and count characters; both are 0 when the problem concerns the whole file
/// (it could not be read).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct Diagnostic {
    /// The file, as named by the caller (a path, or a name such as `default/exfiltration.yaml`).
    pub file: String,
    /// 1-based line of the offending token.
    pub line: usize,
    /// 1-based column (in characters) of the offending token.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

impl Diagnostic {
    /// A diagnostic for `err` at `file:line:column`.
    pub fn new(file: impl Into<String>, line: usize, column: usize, err: RuleError) -> Self {
        Diagnostic { file: file.into(), line, column, message: err.to_string() }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(f, "{}:{}:{}: {}", self.file, self.line, self.column, self.message)
        }
    }
}

/// Every problem found while loading a pack or case file, in file order, then line and column.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    /// Whether no problem was found.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Number of problems.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The problems, in order.
    pub fn iter(&self) -> std::slice::Iter<'_, Diagnostic> {
        self.0.iter()
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

impl<'a> IntoIterator for &'a Diagnostics {
    type Item = &'a Diagnostic;
    type IntoIter = std::slice::Iter<'a, Diagnostic>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_has_file_line_column() {
        let d = Diagnostic::new(
            "a.yaml",
            3,
            14,
            RuleError::UnknownField { name: "dest.hots".into(), hint: "; did you mean `dest.host`?".into() },
        );
        assert_eq!(d.to_string(), "a.yaml:3:14: unknown field `dest.hots`; did you mean `dest.host`?");
        let io = Diagnostic::new("x.yaml", 0, 0, RuleError::Io("not found".into()));
        assert_eq!(io.to_string(), "x.yaml: cannot read: not found");
        let all = Diagnostics(vec![d, io]);
        assert_eq!(all.to_string().lines().count(), 2);
    }
}
