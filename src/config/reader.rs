//! `TableReader`: reads a TOML table key by key, recording every problem (wrong type, missing
//! key, bad value, unknown key) with its line and column instead of stopping at the first.
//!
//! serde with `deny_unknown_fields` stops at the first error; operators fixing a config want
//! the whole list at once, so raw types are read field by field here and validated into the
//! runtime types.

use std::cell::RefCell;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rust_decimal::Decimal;
use serde::de::{DeserializeOwned, IntoDeserializer};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::problem::Problem;

/// A source file's text, for turning byte offsets into lines and columns.
#[derive(Debug)]
pub struct SourceText {
    path: PathBuf,
    text: String,
    line_starts: Vec<usize>,
}

impl SourceText {
    /// Wraps a file's text.
    #[must_use]
    pub fn new(path: &Path, text: String) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Self { path: path.to_owned(), text, line_starts }
    }

    /// The text.
    #[must_use]
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The file's path.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// 1-based line and column (in characters) of a byte offset.
    #[must_use]
    pub fn position(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line = self.line_starts.partition_point(|&s| s <= offset);
        let start = self.line_starts[line - 1];
        let column = self.text.get(start..offset).map_or(1, |s| s.chars().count() + 1);
        (line, column)
    }

    /// A problem at a byte offset.
    #[must_use]
    pub fn problem(&self, offset: usize, message: impl Into<String>) -> Problem {
        let (line, column) = self.position(offset);
        Problem { file: self.path.clone(), line, column, message: message.into() }
    }
}

/// Collected problems, shared by a reader and its sub-readers.
#[derive(Debug, Default)]
pub struct Problems(RefCell<Vec<Problem>>);

impl Problems {
    /// Records a problem.
    pub fn push(&self, p: Problem) {
        self.0.borrow_mut().push(p);
    }

    /// True when nothing was recorded.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.borrow().is_empty()
    }

    /// The problems, sorted by file and position.
    #[must_use]
    pub fn into_sorted(self) -> Vec<Problem> {
        let mut v = self.0.into_inner();
        v.sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
        v.dedup();
        v
    }
}

/// Reads one TOML table; see the module doc.
pub struct TableReader<'a, 'i> {
    src: &'a SourceText,
    problems: &'a Problems,
    table: &'a DeTable<'i>,
    span: Range<usize>,
    /// How the table is named in messages: `[bot.positions]`, `rule \`no-shorts\``.
    name: String,
    used: Vec<String>,
}

/// A TOML value with its position.
pub type Value<'i> = Spanned<DeValue<'i>>;

impl<'a, 'i> TableReader<'a, 'i> {
    /// A reader over `table`, named `name` in messages.
    #[must_use]
    pub fn new(
        src: &'a SourceText,
        problems: &'a Problems,
        table: &'a DeTable<'i>,
        span: Range<usize>,
        name: impl Into<String>,
    ) -> Self {
        Self { src, problems, table, span, name: name.into(), used: Vec::new() }
    }

    /// The table's name in messages.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The source file.
    #[must_use]
    pub fn source(&self) -> &'a SourceText {
        self.src
    }

    /// True when the key is present.
    #[must_use]
    pub fn has(&self, key: &str) -> bool {
        self.table.contains_key(key)
    }

    /// The raw value of a key, marking it used.
    pub fn raw(&mut self, key: &str) -> Option<&'a Value<'i>> {
        let v = self.table.get(key)?;
        self.used.push(key.to_owned());
        Some(v)
    }

    /// Records a problem at the table itself.
    pub fn problem(&self, message: impl Into<String>) {
        self.problems.push(self.src.problem(self.span.start, message));
    }

    /// Records a problem at a value.
    pub fn problem_at(&self, value: &Value<'_>, message: impl Into<String>) {
        self.problems.push(self.src.problem(value.span().start, message));
    }

    /// Records a problem at a key's value (or the table when the key is absent).
    pub fn problem_key(&self, key: &str, message: impl Into<String>) {
        match self.table.get(key) {
            Some(v) => self.problem_at(v, message),
            None => self.problem(message),
        }
    }

    fn missing(&self, key: &str) {
        self.problem(format!("{} is missing the required key `{key}`", self.name));
    }

    /// An optional key deserialized with serde; a wrong type is a problem.
    pub fn get<T: DeserializeOwned>(&mut self, key: &str) -> Option<T> {
        let v = self.raw(key)?;
        match T::deserialize(v.clone().into_deserializer()) {
            Ok(t) => Some(t),
            Err(e) => {
                let at = e.span().map_or(v.span().start, |s| s.start);
                self.problems.push(self.src.problem(at, format!("`{key}` in {}: {}", self.name, e.message().trim())));
                None
            }
        }
    }

    /// A required key deserialized with serde.
    pub fn require<T: DeserializeOwned>(&mut self, key: &str) -> Option<T> {
        if !self.has(key) {
            self.missing(key);
            return None;
        }
        self.get(key)
    }

    /// An optional string key turned into `T` by `parse`; its error becomes a problem.
    pub fn get_parsed<T>(&mut self, key: &str, parse: impl FnOnce(&str) -> Result<T, String>) -> Option<T> {
        let v = self.raw(key)?;
        let DeValue::String(s) = v.get_ref() else {
            self.problem_at(v, format!("`{key}` in {} must be a string", self.name));
            return None;
        };
        match parse(s) {
            Ok(t) => Some(t),
            Err(e) => {
                self.problem_at(v, format!("`{key}` in {}: {e}", self.name));
                None
            }
        }
    }

    /// A required string key turned into `T` by `parse`.
    pub fn require_parsed<T>(&mut self, key: &str, parse: impl FnOnce(&str) -> Result<T, String>) -> Option<T> {
        if !self.has(key) {
            self.missing(key);
            return None;
        }
        self.get_parsed(key, parse)
    }

    /// An optional humantime duration (`"30s"`, `"5m"`, `"2h"`), at most
    /// [`duration::MAX`](crate::duration::MAX).
    pub fn duration(&mut self, key: &str) -> Option<Duration> {
        self.get_parsed(key, crate::duration::parse_config)
    }

    /// A required humantime duration, at most [`duration::MAX`](crate::duration::MAX).
    pub fn require_duration(&mut self, key: &str) -> Option<Duration> {
        self.require_parsed(key, crate::duration::parse_config)
    }

    /// An optional size in bytes: a TOML integer (`4194304`) or a string with a unit (`"4MiB"`,
    /// `"512KiB"`, `"8MB"`, `"100B"`), which must lie in `min..=max`.
    pub fn byte_size(&mut self, key: &str, min: u64, max: u64) -> Option<u64> {
        let v = self.raw(key)?;
        let parsed = match v.get_ref() {
            DeValue::Integer(i) if i.radix() == 10 => {
                i.as_str().parse::<u64>().map_err(|_| format!("`{}` is not a number of bytes", i.as_str()))
            }
            DeValue::String(s) => parse_byte_size(s),
            _ => Err("must be a number of bytes or a string like \"4MiB\"".to_owned()),
        };
        let checked = parsed.and_then(|n| {
            if (min..=max).contains(&n) {
                Ok(n)
            } else {
                Err(format!("{n} bytes is outside the accepted range {min}..={max} bytes"))
            }
        });
        match checked {
            Ok(n) => Some(n),
            Err(e) => {
                self.problem_at(v, format!("`{key}` in {}: {e}", self.name));
                None
            }
        }
    }

    /// An optional decimal, written as a string (`"1.5"`) or a TOML number (`1.5`), read from
    /// its text, never through a float.
    pub fn decimal(&mut self, key: &str) -> Option<Decimal> {
        let v = self.raw(key)?;
        let parsed = match v.get_ref() {
            DeValue::String(s) => crate::num::parse_decimal(s),
            DeValue::Integer(i) if i.radix() == 10 => crate::num::parse_decimal(i.as_str()),
            DeValue::Float(f) => crate::num::parse_decimal(f.as_str()),
            _ => Err("must be a number or a decimal string".to_owned()),
        };
        match parsed {
            Ok(d) => Some(d),
            Err(e) => {
                self.problem_at(v, format!("`{key}` in {}: {e}", self.name));
                None
            }
        }
    }

    /// An optional decimal that must be zero or more.
    pub fn non_negative_decimal(&mut self, key: &str) -> Option<Decimal> {
        let d = self.decimal(key)?;
        if d.is_sign_negative() && !d.is_zero() {
            self.problem_key(key, format!("`{key}` in {} must not be negative", self.name));
            return None;
        }
        Some(d)
    }

    /// An optional sub-table.
    pub fn table(&mut self, key: &str) -> Option<TableReader<'a, 'i>> {
        let v = self.raw(key)?;
        match v.get_ref() {
            DeValue::Table(t) => Some(TableReader::new(self.src, self.problems, t, v.span(), self.child_name(key))),
            _ => {
                self.problem_at(v, format!("`{key}` in {} must be a table", self.name));
                None
            }
        }
    }

    fn child_name(&self, key: &str) -> String {
        if self.name.starts_with('[') && self.name.ends_with(']') {
            format!("[{}.{key}]", &self.name[1..self.name.len() - 1])
        } else if self.name == "the top level" {
            format!("[{key}]")
        } else {
            format!("`{key}` in {}", self.name)
        }
    }

    /// The sub-tables of a table of tables (`[logs.run]`, `[logs.exits]`), by key, in order.
    pub fn named_tables(&mut self, key: &str) -> Vec<(String, TableReader<'a, 'i>)> {
        let Some(v) = self.raw(key) else { return Vec::new() };
        let DeValue::Table(t) = v.get_ref() else {
            self.problem_at(v, format!("`{key}` must be a table of tables"));
            return Vec::new();
        };
        let parent = self.child_name(key);
        let parent = parent.trim_start_matches('[').trim_end_matches(']').to_owned();
        let mut out = Vec::new();
        for (k, item) in t.iter() {
            let name = k.get_ref().to_string();
            match item.get_ref() {
                DeValue::Table(inner) => {
                    out.push((
                        name.clone(),
                        TableReader::new(self.src, self.problems, inner, item.span(), format!("[{parent}.{name}]")),
                    ));
                }
                _ => self.problem_at(item, format!("`{parent}.{name}` must be a table")),
            }
        }
        out
    }

    /// An array of tables (`[[rule]]`).
    pub fn array_of_tables(&mut self, key: &str) -> Vec<TableReader<'a, 'i>> {
        let Some(v) = self.raw(key) else { return Vec::new() };
        let DeValue::Array(items) = v.get_ref() else {
            self.problem_at(v, format!("`{key}` must be an array of tables (`[[{key}]]`)"));
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            match item.get_ref() {
                DeValue::Table(t) => {
                    out.push(TableReader::new(self.src, self.problems, t, item.span(), format!("[[{key}]] #{}", i + 1)))
                }
                _ => self.problem_at(item, format!("item {} of `{key}` must be a table", i + 1)),
            }
        }
        out
    }

    /// Renames the table in later messages (a rule, once its id is known).
    pub fn rename(&mut self, name: impl Into<String>) {
        self.name = name.into();
    }

    /// Every key present, in order.
    #[must_use]
    pub fn keys(&self) -> Vec<String> {
        self.table.keys().map(|k| k.get_ref().to_string()).collect()
    }

    /// Reports every key that was not read as unknown, listing the expected ones.
    pub fn finish(&self, expected: &[&str]) {
        for (k, v) in self.table.iter() {
            let key: &str = k.get_ref();
            if !self.used.iter().any(|u| u == key) {
                let mut msg = format!("unknown key `{key}` in {}", self.name);
                if let Some(close) = closest(key, expected) {
                    msg.push_str(&format!("; did you mean `{close}`?"));
                } else if !expected.is_empty() {
                    msg.push_str(&format!("; expected one of: {}", expected.join(", ")));
                }
                let at = k.span().start.min(v.span().start);
                self.problems.push(self.src.problem(at, msg));
            }
        }
    }
}

/// The expected key closest to a misspelt one (edit distance at most 2).
fn closest<'e>(key: &str, expected: &[&'e str]) -> Option<&'e str> {
    expected
        .iter()
        .map(|e| (edit_distance(key, e), *e))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, e)| e)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// `"4MiB"`, `"512 KiB"`, `"8MB"`, `"100B"`, `"4096"`: a whole number of bytes.
fn parse_byte_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let bad = || format!("`{text}` is not a size; write it like \"4MiB\", \"512KiB\" or 4194304");
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1000,
        "kib" => 1 << 10,
        "mb" => 1_000_000,
        "mib" => 1 << 20,
        "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        _ => return Err(bad()),
    };
    num.parse::<u64>().ok().and_then(|n| n.checked_mul(factor)).ok_or_else(bad)
}

/// Parses a whole TOML file, turning a syntax error into a problem with its position.
///
/// # Errors
/// The syntax errors, as problems.
pub fn parse_document<'i>(src: &'i SourceText) -> Result<Spanned<DeTable<'i>>, Vec<Problem>> {
    let (doc, errors) = DeTable::parse_recoverable(src.text());
    if errors.is_empty() {
        Ok(doc)
    } else {
        Err(errors
            .iter()
            .map(|e| src.problem(e.span().map_or(0, |s| s.start), format!("TOML syntax: {}", e.message().trim())))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based() {
        let s = SourceText::new(Path::new("x.toml"), "a = 1\nbé = 2\n".into());
        assert_eq!(s.position(0), (1, 1));
        assert_eq!(s.position(6), (2, 1));
        assert_eq!(s.position(9), (2, 3));
    }

    #[test]
    fn collects_every_problem() {
        let src = SourceText::new(Path::new("c.toml"), "a = \"x\"\nb = \"10 parsecs\"\nzz = 1\n".into());
        let doc = parse_document(&src).unwrap();
        let problems = Problems::default();
        let mut r = TableReader::new(&src, &problems, doc.get_ref(), doc.span(), "the top level");
        assert_eq!(r.get::<i64>("a"), None);
        assert_eq!(r.duration("b"), None);
        assert!(r.require::<String>("c").is_none());
        r.finish(&["a", "b", "c", "z"]);
        let p = problems.into_sorted();
        assert_eq!(p.len(), 4, "{p:#?}");
        assert_eq!((p[1].line, p[1].column), (1, 5));
        assert_eq!(p[2].line, 2);
        assert!(p[3].message.contains("unknown key `zz`"), "{}", p[3].message);
        assert!(p[3].message.contains("did you mean `z`"), "{}", p[3].message);
    }
}
