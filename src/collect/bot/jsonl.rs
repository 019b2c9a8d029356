//! The JSONL reverse tail scanner. STUB.

use std::path::Path;

use chrono::{DateTime, Utc};

use crate::model::{FieldRef, LogQuery, LogSummary, SourceError, Sourced};

/// Scans a log backwards from its end, stopping past the largest window.
pub fn scan(_path: &Path, name: &str, _time: &FieldRef, _query: &LogQuery, _now: DateTime<Utc>) -> Sourced<LogSummary> {
    Err(SourceError::unavailable(format!("log:{name}"), "not implemented"))
}
