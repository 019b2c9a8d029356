//! What a JSONL log scan is asked for (`LogQuery`) and what it found (`LogSummary`).

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use super::FieldRef;

/// Equality on fields of a record: `match = { event = "EXIT" }`. Every field must be equal.
///
/// Numbers compare by value whether the bot wrote them as numbers or strings (`1`, `1.0` and
/// `"1"` are equal), since bots write both; strings compare exactly.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Matcher {
    /// (field, expected value) pairs.
    pub fields: Vec<(FieldRef, Value)>,
}

impl Matcher {
    /// True when every field of the matcher is present in `record` with an equal value.
    #[must_use]
    pub fn matches(&self, record: &Value) -> bool {
        self.fields.iter().all(|(field, want)| field.get(record).is_some_and(|got| values_equal(got, want)))
    }

    /// True when it has no fields (matches everything).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }
}

fn values_equal(got: &Value, want: &Value) -> bool {
    if got == want {
        return true;
    }
    match (got, want) {
        (Value::Number(_) | Value::String(_), Value::Number(_)) | (Value::Number(_), Value::String(_)) => {
            match (crate::num::decimal_from_json(got), crate::num::decimal_from_json(want)) {
                (Ok(a), Ok(b)) => a == b,
                _ => false,
            }
        }
        _ => false,
    }
}

/// One window a rule asks about: events within `within` of now, optionally matching.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Window {
    /// How far back from now.
    #[serde(with = "crate::duration::serde_humantime")]
    pub within: Duration,
    /// Only events matching this count.
    pub matcher: Matcher,
}

/// What the rules need from one log. The scan stops once it is older than the largest window
/// (and has found the newest event), so cost follows the window, not the file.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct LogQuery {
    /// Windows to count events in.
    pub windows: Vec<Window>,
    /// The last complete, parseable record is wanted (positions kept in a log).
    pub last_record: bool,
}

impl LogQuery {
    /// The largest window, zero when there is none.
    #[must_use]
    pub fn horizon(&self) -> Duration {
        self.windows.iter().map(|w| w.within).max().unwrap_or_default()
    }

    /// Adds a window unless an equal one is already asked for.
    pub fn add_window(&mut self, window: Window) {
        if !self.windows.contains(&window) {
            self.windows.push(window);
        }
    }
}

/// A line that could not be used.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MalformedLine {
    /// Byte offset of the line's start in the file.
    pub offset: u64,
    /// 1-based line number, known when the scan reached the start of the file.
    pub line: Option<u64>,
    /// 1-based position counted from the end of the file (1 = last line).
    pub from_end: u64,
    /// What was wrong, naming the field when one was.
    pub reason: String,
}

/// The result of scanning one log backwards.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LogSummary {
    /// The log's file as configured (absolute path).
    pub file: String,
    /// The file's size when scanned.
    pub file_len: u64,
    /// The newest event time among parseable lines.
    pub newest_event: Option<DateTime<Utc>>,
    /// Event counts per window asked for.
    pub counts: Vec<WindowCount>,
    /// Lines looked at.
    pub lines_scanned: u64,
    /// Bytes read.
    pub bytes_scanned: u64,
    /// Offset where the scan stopped (everything from here to `file_len` was read).
    pub scanned_from: u64,
    /// Number of malformed lines seen in the scanned part.
    pub malformed_count: u64,
    /// The first few malformed lines (newest first), for the report.
    pub malformed: Vec<MalformedLine>,
    /// The last complete parseable record, when asked for.
    pub last_record: Option<Value>,
    /// Why the newest complete line could not serve as the last record (it was malformed):
    /// an older record is never silently used in its place.
    pub last_record_error: Option<String>,
    /// True when the last line had no newline and did not parse (being written; ignored).
    pub torn_tail: bool,
}

/// Events seen within one window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WindowCount {
    /// The window.
    pub window: Window,
    /// Events in it (matching its matcher), including those dated up to the window's length
    /// ahead of now (clock skew).
    pub count: u64,
    /// Matching events dated further ahead than that: bad timestamps or a clock difference,
    /// never counted as activity.
    #[serde(skip_serializing_if = "is_zero")]
    pub ahead: u64,
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if passes a reference
fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl LogSummary {
    /// The count for `window`, if it was asked for.
    #[must_use]
    pub fn count(&self, window: &Window) -> Option<u64> {
        self.counts.iter().find(|c| &c.window == window).map(|c| c.count)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn matcher_compares_numbers_by_value() {
        let m = Matcher {
            fields: vec![(FieldRef::parse("event").unwrap(), json!("EXIT")), (FieldRef::parse("n").unwrap(), json!(1))],
        };
        assert!(m.matches(&json!({"event": "EXIT", "n": "1.0"})));
        assert!(m.matches(&json!({"event": "EXIT", "n": 1})));
        assert!(!m.matches(&json!({"event": "exit", "n": 1})));
        assert!(!m.matches(&json!({"event": "EXIT"})));
        assert!(Matcher::default().matches(&json!({})));
    }
}
