//! `state_dir/audits.jsonl`: one JSON line per cycle (`CycleRecord`), size-capped by rotation:
//! when appending would pass the cap, the file becomes `audits.jsonl.1` (replacing the previous
//! one) and a new file starts. So the history on disk stays under twice the cap. The line I/O is
//! `state::jsonl`'s.
//!
//! A line cut short (the process killed in the middle of a multi-page write, or a full disk)
//! stays as it is, and the next record starts on a fresh line, so one crash costs at most the
//! record it was writing, never the next one too.

use std::io;
use std::path::Path;

use crate::report::CycleRecord;
use crate::state::jsonl::{self, AppendPolicy};

/// The file name inside the state directory.
pub const FILE: &str = "audits.jsonl";
/// The default cap: 10 MB.
pub const CAP: u64 = 10 * 1024 * 1024;

/// Appends one record as a line, rotating first when the file would pass `cap` bytes. Not
/// fsynced: a cycle record lost to a power cut costs history, never a decision.
///
/// # Errors
/// When the file cannot be rotated or written.
pub fn append(state_dir: &Path, record: &CycleRecord, cap: u64) -> io::Result<()> {
    jsonl::append(&state_dir.join(FILE), record, AppendPolicy { sync: false, rotate_at: Some(cap) })
}

#[cfg(test)]
mod tests {
    use std::fs::{self, OpenOptions};
    use std::io::Write;

    use chrono::TimeZone;

    use super::*;

    fn record(i: u64) -> CycleRecord {
        CycleRecord {
            at: chrono::Utc.with_ymd_and_hms(2026, 11, 20, 14, 30, 0).unwrap(),
            duration_ms: i,
            ok: true,
            ..CycleRecord::default()
        }
    }

    #[test]
    fn appends_lines_and_rotates_past_the_cap() {
        let dir = tempfile::tempdir().unwrap();
        let one = serde_json::to_vec(&record(1)).unwrap().len() as u64 + 1;
        let cap = one * 3;
        for i in 0..3 {
            append(dir.path(), &record(i), cap).unwrap();
        }
        let text = fs::read_to_string(dir.path().join(FILE)).unwrap();
        assert_eq!(text.lines().count(), 3);
        for line in text.lines() {
            let r: CycleRecord = serde_json::from_str(line).unwrap();
            assert!(r.ok);
        }
        append(dir.path(), &record(3), cap).unwrap();
        assert_eq!(fs::read_to_string(dir.path().join(FILE)).unwrap().lines().count(), 1);
        assert_eq!(fs::read_to_string(dir.path().join("audits.jsonl.1")).unwrap(), text);
    }

    /// Found by the crash tests' review: a record cut short by a crash (or a full disk) used to
    /// swallow the next record too, appended onto the same line.
    #[test]
    fn a_torn_last_line_does_not_take_the_next_record_with_it() {
        let dir = tempfile::tempdir().unwrap();
        append(dir.path(), &record(1), CAP).unwrap();
        let full = serde_json::to_string(&record(2)).unwrap();
        let mut f = OpenOptions::new().append(true).open(dir.path().join(FILE)).unwrap();
        f.write_all(&full.as_bytes()[..full.len() / 2]).unwrap();
        drop(f);
        append(dir.path(), &record(3), CAP).unwrap();
        let text = fs::read_to_string(dir.path().join(FILE)).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(serde_json::from_str::<CycleRecord>(lines[1]).is_err(), "the torn record stays torn");
        let last: CycleRecord = serde_json::from_str(lines[2]).unwrap();
        assert_eq!(last.duration_ms, 3, "the next record is whole, on its own line");
    }
}
