//! Configuration problems: every one found, each with file, line and column.

use std::fmt;
use std::path::{Path, PathBuf};

/// One problem in a configuration or rules file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file.
    pub file: PathBuf,
    /// 1-based line (0 when the problem is about the file as a whole).
    pub line: usize,
    /// 1-based column in characters.
    pub column: usize,
    /// A plain sentence.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file.display(), self.message)
        } else {
            write!(f, "{}:{}:{}: {}", self.file.display(), self.line, self.column, self.message)
        }
    }
}

/// Every problem found while loading; loading fails when there is at least one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// The problems, in file order.
    pub problems: Vec<Problem>,
}

impl ConfigError {
    /// A single problem about a whole file (cannot read it, ...).
    pub fn file(path: &Path, message: impl Into<String>) -> Self {
        Self { problems: vec![Problem { file: path.to_owned(), line: 0, column: 0, message: message.into() }] }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}
