//! The JSONL reverse tail scanner: reads a log backwards from its end, newest line first, and
//! stops as soon as it has what the rules asked for, so cost follows the window, not the file
//! (design principle 4).
//!
//! The file is read in blocks from the end (`memrchr` finds the newlines; the block, the
//! partial-line carry and the line buffer are reused). Each line is parsed as a JSON object
//! and its event time read through the configured field; only the fields the scan reads are
//! kept (`record`), except for the last record, which is kept whole.
//!
//! The scan stops after the first valid event (a parseable line with a valid time) older than
//! `now − horizon`, where the horizon is the largest window asked for (zero without windows,
//! so a freshness check reads back to the newest event that is not in the future). By then:
//! - a valid event has been seen (the stopping line is one), so `newest_event` is set;
//! - the newest complete line has been examined (it comes before any valid event), so the
//!   last record, when asked for, is known.
//!
//! Logs are roughly but not strictly time-ordered (threads, clock steps). The scan does not
//! keep going past the stopping event to look for stragglers: how far out of order a log can
//! be is unknown, so any fixed look-behind is a guess and an exact answer means reading the
//! whole file. The price, by design: an in-window event written *before* an out-of-window one
//! is not counted, and `newest_event` is the newest among the lines read.
//!
//! Line rules:
//! - a trailing `\r` is stripped (CRLF logs), lines of only whitespace are skipped;
//! - malformed: a NUL byte, invalid UTF-8, invalid JSON, not an object, the time field missing
//!   or not a timestamp, longer than [`MAX_LINE`] (read through to find its start but never
//!   buffered whole: memory stays bounded whatever the file holds);
//! - the last line, when it has no trailing newline, is used if it parses as JSON; if not, it
//!   is being written: `torn_tail` is set and the line is ignored (not malformed);
//! - the last record (when asked for) is the newest complete, non-blank line; when that line is
//!   malformed, `last_record_error` says why and no older record is used in its place. It does
//!   not need a valid time field.
//!
//! A file that shrinks while being read (truncated in place, `copytruncate`) is reported
//! unavailable ("changed while reading"); a file renamed away (rotation) is read to the end
//! through the handle already open; appends after the open are ignored.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::ops::Range;
use std::path::Path;

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::Value;

use super::file::{open_in_root, open_regular};
use super::record::{Keep, Parsed, parse_kept};
use super::text::{about, json_kind, serde_message};
use crate::model::{FieldRef, LogQuery, LogSummary, MalformedLine, SourceError, Sourced, WindowCount};
use crate::timestamp::timestamp_from_json;

/// Bytes read per step, from the end backwards.
pub const BLOCK: usize = 64 * 1024;
/// Longer lines are malformed and skipped without being held in memory.
pub const MAX_LINE: usize = 1024 * 1024;
/// Malformed lines kept in the summary (all are counted).
pub const KEEP_MALFORMED: usize = 20;

/// Block and line sizes (tests use tiny ones to exercise block boundaries).
#[derive(Debug, Clone, Copy)]
struct Limits {
    block: usize,
    max_line: usize,
}

const LIMITS: Limits = Limits { block: BLOCK, max_line: MAX_LINE };

/// Scans a log backwards from its end, stopping past the largest window.
///
/// # Errors
/// `log:NAME` unavailable: the file does not exist, is not a regular file, cannot be read, or
/// shrank while being read. Malformed lines are not errors: they are counted in the summary.
pub fn scan(path: &Path, name: &str, time: &FieldRef, query: &LogQuery, now: DateTime<Utc>) -> Sourced<LogSummary> {
    scan_with(path, name, time, query, now, LIMITS)
}

/// [`scan`] for a log of the bot: `rel` under `root`. A path that resolves outside `root` (a
/// symlink out of the bot directory) is refused as unavailable, before it is opened.
///
/// # Errors
/// As [`scan`], and when the log resolves outside `root`.
pub fn scan_in(
    root: &Path,
    rel: &Path,
    name: &str,
    time: &FieldRef,
    query: &LogQuery,
    now: DateTime<Utc>,
) -> Sourced<LogSummary> {
    let path = root.join(rel);
    let source = format!("log:{name}");
    let (file, len) = open_in_root(root, &path).map_err(|m| SourceError::unavailable(&source, m))?;
    scan_open(&file, len, &path, &source, Ask { time, query, now, limits: LIMITS })
}

/// [`scan`] with the caller's block size and line limit, for the fuzzer: tiny blocks reach
/// the block-boundary paths with small inputs.
///
/// # Errors
/// As [`scan`].
#[doc(hidden)]
pub fn scan_with_limits(
    path: &Path,
    name: &str,
    time: &FieldRef,
    query: &LogQuery,
    now: DateTime<Utc>,
    block: usize,
    max_line: usize,
) -> Sourced<LogSummary> {
    scan_with(path, name, time, query, now, Limits { block, max_line })
}

/// What a scan is asked for, and with which limits.
#[derive(Debug, Clone, Copy)]
struct Ask<'a> {
    time: &'a FieldRef,
    query: &'a LogQuery,
    now: DateTime<Utc>,
    limits: Limits,
}

fn scan_with(
    path: &Path,
    name: &str,
    time: &FieldRef,
    query: &LogQuery,
    now: DateTime<Utc>,
    limits: Limits,
) -> Sourced<LogSummary> {
    let source = format!("log:{name}");
    let (file, len) = open_regular(path).map_err(|m| SourceError::unavailable(&source, m))?;
    scan_open(&file, len, path, &source, Ask { time, query, now, limits })
}

/// Scans an open file of `len` bytes (its length when opened).
fn scan_open(file: &File, len: u64, path: &Path, source: &str, ask: Ask<'_>) -> Sourced<LogSummary> {
    let scanned = scan_file(file, len, path, ask);
    // Re-stat whatever happened: a file truncated under us may have fed us a mix of old and
    // new bytes, or ended early (an `UnexpectedEof` from a read).
    match file.metadata() {
        Ok(m) if m.len() < len => {
            return Err(SourceError::unavailable(
                source,
                format!(
                    "{} changed while reading: it shrank from {len} to {} bytes (truncated or rotated); \
                     it is read again next cycle",
                    path.display(),
                    m.len()
                ),
            ));
        }
        Ok(_) => {}
        Err(e) => return Err(SourceError::unavailable(source, format!("cannot stat {}: {e}", path.display()))),
    }
    scanned.map_err(|e| SourceError::unavailable(source, format!("cannot read {}: {e}", path.display())))
}

/// What one line turned out to be.
#[derive(Debug)]
enum Line {
    /// Empty or only whitespace: skipped, not malformed.
    Blank,
    /// Not a record.
    Bad(Bad),
    /// A JSON object; its event time, or why it has none.
    Record { value: Value, time: Result<DateTime<Utc>, String> },
}

#[derive(Debug)]
struct Bad {
    reason: String,
    /// The bytes are not (yet) a JSON document: when the last line has no newline, it is being
    /// written (a torn tail), not malformed.
    incomplete: bool,
}

/// Parses one line (without its `\n`): the whole record, or with `keep` only the fields the
/// scan reads (same validation and errors; see `record`).
fn parse_line(bytes: &[u8], time: &FieldRef, keep: Option<&Keep>) -> Line {
    let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Line::Blank;
    }
    let bad = |reason: String, incomplete: bool| Line::Bad(Bad { reason, incomplete });
    if let Some(i) = memchr::memchr(0, bytes) {
        return bad(format!("contains a NUL byte at column {}", i + 1), true);
    }
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => return bad(format!("invalid UTF-8 at column {}", e.valid_up_to() + 1), true),
    };
    let parsed = match keep {
        None => serde_json::from_str::<Value>(text)
            .map(|v| if v.is_object() { Parsed::Object(v) } else { Parsed::NotObject(json_kind(&v)) }),
        Some(keep) => parse_kept(text, keep),
    };
    let value = match parsed {
        Ok(Parsed::Object(v)) => v,
        Ok(Parsed::NotObject(kind)) => return bad(format!("is {kind}, expected a JSON object"), false),
        Err(e) => return bad(format!("invalid JSON at column {}: {}", e.column(), serde_message(&e)), true),
    };
    let time = match time.get(&value) {
        None => Err(format!("time field `{time}` is missing")),
        Some(v) => timestamp_from_json(v).map_err(|e| about(&format!("time field `{time}`"), &e)),
    };
    Line::Record { value, time }
}

fn oversize_reason(len: u64, max_line: usize) -> String {
    if max_line == MAX_LINE {
        format!("line is {len} bytes, longer than the 1 MiB limit (skipped)")
    } else {
        format!("line is {len} bytes, longer than the {max_line}-byte limit (skipped)")
    }
}

/// `now − d`, saturating at the earliest representable time.
fn since(now: DateTime<Utc>, d: std::time::Duration) -> DateTime<Utc> {
    TimeDelta::from_std(d).ok().and_then(|d| now.checked_sub_signed(d)).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// `now + d`, saturating at the latest representable time: the newest event a window of `d`
/// counts. An event dated up to a window's length ahead is clock skew between the bot and the
/// watchdog; further ahead it is a bad timestamp, which must not keep a window full for ever.
fn until(now: DateTime<Utc>, d: std::time::Duration) -> DateTime<Utc> {
    TimeDelta::from_std(d).ok().and_then(|d| now.checked_add_signed(d)).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

fn scan_file(file: &File, len: u64, path: &Path, ask: Ask<'_>) -> io::Result<LogSummary> {
    let Ask { time, query, now, limits } = ask;
    let spans: Vec<(DateTime<Utc>, DateTime<Utc>)> =
        query.windows.iter().map(|w| (since(now, w.within), until(now, w.within))).collect();
    let stop_before = since(now, query.horizon());
    let mut counts = vec![(0_u64, 0_u64); query.windows.len()];
    let mut s = LogSummary {
        file: path.display().to_string(),
        file_len: len,
        newest_event: None,
        counts: Vec::new(),
        lines_scanned: 0,
        bytes_scanned: 0,
        scanned_from: len,
        malformed_count: 0,
        malformed: Vec::new(),
        last_record: None,
        last_record_error: None,
        torn_tail: false,
    };
    let mut want_last = query.last_record;
    let keep = Keep::for_scan(time, query);
    let mut lines = ReverseLines::new(file, len, limits);
    while let Some(raw) = lines.next_line()? {
        s.lines_scanned += 1;
        s.scanned_from = raw.offset;
        let from_end = s.lines_scanned;
        let line = match raw.bytes {
            // The last record is kept whole; other lines only for their time and matchers.
            Some(b) => parse_line(b, time, (!want_last).then_some(&keep)),
            None => Line::Bad(Bad { reason: oversize_reason(raw.len, limits.max_line), incomplete: false }),
        };
        let past_horizon = match line {
            Line::Blank => false,
            Line::Bad(bad) => {
                if !raw.terminated && bad.incomplete {
                    s.torn_tail = true;
                    continue;
                }
                if want_last {
                    want_last = false;
                    s.last_record_error = Some(format!("{} (byte {})", bad.reason, raw.offset));
                }
                note_malformed(&mut s, raw.offset, from_end, bad.reason);
                false
            }
            Line::Record { value, time } => {
                let past = match time {
                    Ok(t) => {
                        s.newest_event = Some(s.newest_event.map_or(t, |n| n.max(t)));
                        for (((count, ahead), (start, end)), w) in counts.iter_mut().zip(&spans).zip(&query.windows) {
                            if t >= *start && w.matcher.matches(&value) {
                                if t <= *end {
                                    *count += 1;
                                } else {
                                    *ahead += 1;
                                }
                            }
                        }
                        t < stop_before
                    }
                    Err(reason) => {
                        note_malformed(&mut s, raw.offset, from_end, reason);
                        false
                    }
                };
                if want_last {
                    want_last = false;
                    s.last_record = Some(value);
                }
                past
            }
        };
        if past_horizon && !want_last {
            break;
        }
    }
    s.bytes_scanned = lines.bytes_read;
    // Line numbers are known once the scan has reached the first line of the file.
    if s.scanned_from == 0 {
        let total = s.lines_scanned;
        for m in &mut s.malformed {
            m.line = Some(total + 1 - m.from_end);
        }
    }
    s.counts = query
        .windows
        .iter()
        .zip(counts)
        .map(|(w, (count, ahead))| WindowCount { window: w.clone(), count, ahead })
        .collect();
    Ok(s)
}

fn note_malformed(s: &mut LogSummary, offset: u64, from_end: u64, reason: String) {
    s.malformed_count += 1;
    if s.malformed.len() < KEEP_MALFORMED {
        s.malformed.push(MalformedLine { offset, line: None, from_end, reason });
    }
}

/// One physical line, as the reverse reader hands it out.
struct RawLine<'a> {
    /// Byte offset of its first byte.
    offset: u64,
    /// Its length without the `\n`.
    len: u64,
    /// Its bytes without the `\n`; `None` when longer than the limit (never buffered).
    bytes: Option<&'a [u8]>,
    /// False only for a last line with no trailing newline.
    terminated: bool,
}

/// Yields a file's lines from the last to the first with bounded memory: one block, plus at
/// most `max_line` bytes of a line that spans blocks.
struct ReverseLines<'f> {
    file: &'f File,
    max_line: usize,
    /// The current block, `block[..cursor]` not yet consumed; it starts at `block_start`.
    block: Vec<u8>,
    block_start: u64,
    cursor: usize,
    /// Everything from `pos` to the end of the file has been read.
    pos: u64,
    /// The end (exclusive, before its `\n`) of the line being assembled.
    line_end: u64,
    /// The part of that line already read from later blocks, in file order.
    carry: Vec<u8>,
    /// That line is longer than `max_line`: `carry` was dropped and stays empty.
    oversize: bool,
    /// Where a line split across blocks is assembled.
    line: Vec<u8>,
    started: bool,
    /// A line ending at `line_end` is still to be handed out.
    more: bool,
    /// The file ends with `\n`.
    tail_terminated: bool,
    emitted: u64,
    bytes_read: u64,
}

impl<'f> ReverseLines<'f> {
    fn new(file: &'f File, len: u64, limits: Limits) -> Self {
        Self {
            file,
            max_line: limits.max_line,
            block: vec![0; limits.block.max(1)],
            block_start: len,
            cursor: 0,
            pos: len,
            line_end: len,
            carry: Vec::new(),
            oversize: false,
            line: Vec::new(),
            started: false,
            more: false,
            tail_terminated: false,
            emitted: 0,
            bytes_read: 0,
        }
    }

    /// The previous line, or `None` at the start of the file.
    fn next_line(&mut self) -> io::Result<Option<RawLine<'_>>> {
        if !self.started {
            self.started = true;
            if !self.fill()? {
                return Ok(None); // empty file
            }
            self.more = true;
            if self.block[self.cursor - 1] == b'\n' {
                // The final `\n` ends the last line; nothing follows it.
                self.cursor -= 1;
                self.line_end -= 1;
                self.tail_terminated = true;
            }
        }
        if !self.more {
            return Ok(None);
        }
        loop {
            if let Some(i) = memchr::memrchr(b'\n', &self.block[..self.cursor]) {
                let start = self.block_start + i as u64 + 1;
                let seg = i + 1..self.cursor;
                self.cursor = i;
                let end = std::mem::replace(&mut self.line_end, start - 1);
                return Ok(Some(self.emit(start, end, seg)));
            }
            // The line starts in an earlier block: keep what this block holds of it.
            self.hold(0..self.cursor);
            self.cursor = 0;
            if !self.fill()? {
                self.more = false;
                let end = self.line_end;
                return Ok(Some(self.emit(0, end, 0..0)));
            }
        }
    }

    /// Prepends `block[seg]` to the carried part of the current line, unless that makes it
    /// longer than the limit (then the line is only measured from here on).
    fn hold(&mut self, seg: Range<usize>) {
        if self.oversize || seg.is_empty() {
            return;
        }
        if self.carry.len() + seg.len() > self.max_line {
            self.oversize = true;
            self.carry.clear();
            return;
        }
        self.carry.splice(0..0, self.block[seg].iter().copied());
    }

    /// Hands out the line `[start, end)` whose first bytes are `block[seg]`.
    fn emit(&mut self, start: u64, end: u64, seg: Range<usize>) -> RawLine<'_> {
        let terminated = self.emitted > 0 || self.tail_terminated;
        self.emitted += 1;
        let len = end - start;
        let oversize = std::mem::take(&mut self.oversize) || len > self.max_line as u64;
        let bytes = if oversize {
            self.carry.clear();
            None
        } else if self.carry.is_empty() {
            Some(&self.block[seg])
        } else {
            self.line.clear();
            self.line.extend_from_slice(&self.block[seg]);
            self.line.extend_from_slice(&self.carry);
            self.carry.clear();
            Some(&self.line[..])
        };
        RawLine { offset: start, len, bytes, terminated }
    }

    /// Reads the block before `pos`; false at the start of the file.
    fn fill(&mut self) -> io::Result<bool> {
        if self.pos == 0 {
            return Ok(false);
        }
        let n = usize::try_from(self.pos).map_or(self.block.len(), |p| p.min(self.block.len()));
        let start = self.pos - n as u64;
        let mut f = self.file;
        f.seek(SeekFrom::Start(start))?;
        f.read_exact(&mut self.block[..n])?;
        self.block_start = start;
        self.pos = start;
        self.cursor = n;
        self.bytes_read += n as u64;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::time::Duration;

    use proptest::prelude::*;
    use serde_json::json;

    use super::*;
    use crate::model::{Matcher, SourceErrorKind, Window};

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2025-12-19T16:00:00Z").unwrap().with_timezone(&Utc)
    }

    /// RFC 3339 text `secs` before now.
    fn ago(secs: i64) -> String {
        (now() - TimeDelta::seconds(secs)).to_rfc3339()
    }

    fn ts() -> FieldRef {
        FieldRef::parse("ts").unwrap()
    }

    fn window(secs: u64) -> Window {
        Window { within: Duration::from_secs(secs), matcher: Matcher::default() }
    }

    fn window_matching(secs: u64, field: &str, value: &str) -> Window {
        Window {
            within: Duration::from_secs(secs),
            matcher: Matcher { fields: vec![(FieldRef::parse(field).unwrap(), json!(value))] },
        }
    }

    fn query(windows: Vec<Window>, last_record: bool) -> LogQuery {
        LogQuery { windows, last_record }
    }

    struct Log {
        _dir: tempfile::TempDir,
        path: PathBuf,
    }

    fn log(bytes: impl AsRef<[u8]>) -> Log {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.jsonl");
        std::fs::write(&path, bytes).unwrap();
        Log { _dir: dir, path }
    }

    impl Log {
        fn scan(&self, q: &LogQuery) -> LogSummary {
            scan(&self.path, "run", &ts(), q, now()).unwrap()
        }

        fn scan_small(&self, q: &LogQuery, block: usize, max_line: usize) -> LogSummary {
            scan_with(&self.path, "run", &ts(), q, now(), Limits { block, max_line }).unwrap()
        }
    }

    fn event(secs_ago: i64, name: &str) -> String {
        format!("{{\"ts\": \"{}\", \"event\": \"{name}\"}}\n", ago(secs_ago))
    }

    fn reasons(s: &LogSummary) -> Vec<(u64, Option<u64>, u64, &str)> {
        s.malformed.iter().map(|m| (m.offset, m.line, m.from_end, m.reason.as_str())).collect()
    }

    #[test]
    fn counts_windows_and_matchers_and_finds_the_newest_event() {
        let text = [
            event(7200, "CYCLE"),
            event(3000, "EXIT"),
            event(1000, "CYCLE"),
            event(100, "EXIT"),
            event(50, "CYCLE"),
            event(10, "CYCLE"),
        ]
        .concat();
        let l = log(&text);
        let windows = vec![window(3600), window_matching(3600, "event", "EXIT"), window(60), window(5)];
        let s = l.scan(&query(windows.clone(), false));
        assert_eq!(s.newest_event, Some(now() - TimeDelta::seconds(10)));
        assert_eq!(s.counts.iter().map(|c| c.count).collect::<Vec<_>>(), vec![5, 2, 2, 0]);
        assert_eq!(s.count(&windows[1]), Some(2));
        // Stopped at the 2 h old line, the first older than the largest window: all read.
        assert_eq!((s.lines_scanned, s.scanned_from, s.bytes_scanned), (6, 0, text.len() as u64));
        assert_eq!(s.file_len, text.len() as u64);
        assert_eq!(s.file, l.path.display().to_string());
        assert_eq!((s.malformed_count, s.torn_tail, s.last_record.clone()), (0, false, None));
    }

    #[test]
    fn events_ahead_by_up_to_the_window_count_further_ahead_they_are_set_apart() {
        let l = log([event(-30, "CYCLE"), event(-60, "CYCLE"), event(-61, "CYCLE"), event(-5000, "CYCLE")].concat());
        let s = l.scan(&query(vec![window(60), window(3600)], false));
        assert_eq!((s.counts[0].count, s.counts[0].ahead), (2, 2));
        assert_eq!((s.counts[1].count, s.counts[1].ahead), (3, 1));
        assert_eq!(s.newest_event, Some(now() + TimeDelta::seconds(5000)));
    }

    #[test]
    fn without_windows_it_reads_back_to_the_newest_past_event_only() {
        let l = log([event(300, "A"), event(200, "A"), event(100, "A"), event(-10, "FUTURE")].concat());
        let s = l.scan(&query(vec![], false));
        assert_eq!(s.lines_scanned, 2);
        assert_eq!(s.newest_event, Some(now() + TimeDelta::seconds(10)));
        assert!(s.counts.is_empty());
    }

    #[test]
    fn stops_at_the_first_event_past_the_horizon_even_if_older_lines_are_out_of_order() {
        // Documented: an in-window event written before an out-of-window one is not counted.
        let first = event(30, "LATE");
        let second = event(4000, "OLD");
        let l = log([first.clone(), second.clone(), event(20, "A"), event(10, "A")].concat());
        let s = l.scan(&query(vec![window(3600)], false));
        assert_eq!(s.counts[0].count, 2);
        assert_eq!(s.lines_scanned, 3);
        assert_eq!(s.scanned_from, first.len() as u64);
        assert!(s.bytes_scanned >= s.file_len - s.scanned_from);
    }

    #[test]
    fn an_empty_file_is_not_an_error() {
        let s = log("").scan(&query(vec![window(60)], true));
        assert_eq!(s.newest_event, None);
        assert_eq!(s.counts[0].count, 0);
        assert_eq!((s.lines_scanned, s.bytes_scanned, s.scanned_from, s.file_len), (0, 0, 0, 0));
        assert_eq!((s.last_record, s.last_record_error), (None, None));
    }

    #[test]
    fn a_missing_file_or_a_directory_is_unavailable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nope.jsonl");
        let e = scan(&path, "run", &ts(), &LogQuery::default(), now()).unwrap_err();
        assert_eq!(e, SourceError::unavailable("log:run", format!("{} does not exist", path.display())));
        let e = scan(dir.path(), "run", &ts(), &LogQuery::default(), now()).unwrap_err();
        assert_eq!((e.source.as_str(), e.kind), ("log:run", SourceErrorKind::Unavailable));
        assert!(e.message.ends_with("is not a regular file (it is a directory)"), "{e}");
    }

    #[test]
    fn a_torn_last_line_is_ignored_not_malformed() {
        let complete = event(20, "A");
        for torn in ["{\"ts\": \"2025-12", "{\"ts\": \"2025-12-19T15:59:50Z\", \"ev", "{\0\0\0", "\0\0\0\0"] {
            let l = log(format!("{complete}{torn}"));
            let s = l.scan(&query(vec![window(60)], true));
            assert!(s.torn_tail, "{torn:?}");
            assert_eq!(s.malformed_count, 0, "{torn:?}");
            assert_eq!(s.counts[0].count, 1);
            assert_eq!(s.last_record, Some(serde_json::from_str(&complete).unwrap()));
            assert_eq!(s.last_record_error, None);
        }
        // A multi-byte character cut in half is torn too.
        let l = log([complete.as_bytes(), b"{\"ts\": \"caf\xc3"].concat());
        assert!(l.scan(&query(vec![], false)).torn_tail);
    }

    #[test]
    fn an_unterminated_last_line_that_parses_is_used() {
        let last = event(5, "B");
        let l = log(format!("{}{}", event(20, "A"), last.trim_end()));
        let s = l.scan(&query(vec![window(60)], true));
        assert!(!s.torn_tail);
        assert_eq!(s.counts[0].count, 2);
        assert_eq!(s.newest_event, Some(now() - TimeDelta::seconds(5)));
        assert_eq!(s.last_record, Some(serde_json::from_str(&last).unwrap()));
        // Complete JSON that is not an object is malformed, not torn.
        let first = event(20, "A");
        let s = log(format!("{first}[1, 2]")).scan(&query(vec![], true));
        assert!(!s.torn_tail);
        assert_eq!(s.malformed_count, 1);
        let want = format!("is an array, expected a JSON object (byte {})", first.len());
        assert_eq!(s.last_record_error, Some(want));
    }

    #[test]
    fn crlf_and_blank_lines() {
        let text = format!("\r\n{}\r\n   \r\n{}\r\n\n\r\n", event(20, "A").trim_end(), event(10, "EXIT").trim_end());
        let s = log(&text).scan(&query(vec![window(60), window_matching(60, "event", "EXIT")], true));
        assert_eq!(s.counts.iter().map(|c| c.count).collect::<Vec<_>>(), vec![2, 1]);
        assert_eq!(s.malformed_count, 0);
        assert_eq!(s.lines_scanned, 6);
        assert_eq!(s.last_record.unwrap()["event"], json!("EXIT"));
        assert!(!s.torn_tail);
    }

    #[test]
    fn malformed_lines_with_line_numbers_offsets_and_reasons() {
        let lines: Vec<Vec<u8>> = vec![
            event(500, "A").into_bytes(),          // line 1
            b"not json\n".to_vec(),                // 2
            b"[1, 2]\n".to_vec(),                  // 3
            b"{\"event\": \"A\"}\n".to_vec(),      // 4
            b"{\"ts\": \"yesterday\"}\n".to_vec(), // 5
            b"{\"ts\": null}\n".to_vec(),          // 6
            b"{\"ts\": \"x\0\"}\n".to_vec(),       // 7
            b"{\"ts\": \"caf\xe9\"}\n".to_vec(),   // 8
            b"{\"ts\": 1766160000} {}\n".to_vec(), // 9
            b"\n".to_vec(),                        // 10
            event(10, "A").into_bytes(),           // 11
        ];
        let offsets: Vec<u64> = lines
            .iter()
            .scan(0_u64, |at, l| {
                let o = *at;
                *at += l.len() as u64;
                Some(o)
            })
            .collect();
        let l = log(lines.concat());
        let s = l.scan(&query(vec![window(3600)], false));
        assert_eq!(s.counts[0].count, 2);
        assert_eq!(s.malformed_count, 8);
        let want: Vec<(u64, Option<u64>, u64, &str)> = vec![
            (offsets[8], Some(9), 3, "invalid JSON at column 20: trailing characters"),
            (offsets[7], Some(8), 4, "invalid UTF-8 at column 12"),
            (offsets[6], Some(7), 5, "contains a NUL byte at column 10"),
            (offsets[5], Some(6), 6, "time field `ts` is null, expected a timestamp"),
            (
                offsets[4],
                Some(5),
                7,
                "time field `ts`: `yesterday` is not a timestamp (RFC 3339, ISO 8601, or epoch seconds/ms)",
            ),
            (offsets[3], Some(4), 8, "time field `ts` is missing"),
            (offsets[2], Some(3), 9, "is an array, expected a JSON object"),
            (offsets[1], Some(2), 10, "invalid JSON at column 2: expected ident"),
        ];
        assert_eq!(reasons(&s), want);
    }

    #[test]
    fn without_reaching_the_start_there_are_no_line_numbers() {
        let text = [event(9000, "A"), event(8000, "A"), "garbage\n".into(), event(10, "A")].concat();
        let s = log(&text).scan(&query(vec![window(3600)], false));
        assert_eq!(s.malformed_count, 1);
        assert_eq!(s.lines_scanned, 3);
        let at = (event(9000, "A").len() + event(8000, "A").len()) as u64;
        assert_eq!(reasons(&s), vec![(at, None, 2, "invalid JSON at column 1: expected value")]);
    }

    #[test]
    fn only_the_first_twenty_malformed_lines_are_kept() {
        let text = [event(5000, "A"), "x\n".repeat(30), event(1, "A")].concat();
        let s = log(&text).scan(&query(vec![window(3600)], false));
        assert_eq!(s.malformed_count, 30);
        assert_eq!(s.malformed.len(), KEEP_MALFORMED);
        assert_eq!(s.malformed[0].from_end, 2);
        assert_eq!(s.malformed[0].line, Some(31));
    }

    #[test]
    fn epoch_seconds_and_milliseconds_and_a_pointer_time_field() {
        let secs = (now() - TimeDelta::seconds(30)).timestamp();
        let text = format!(
            "{{\"meta\": {{\"t\": {secs}}}}}\n{{\"meta\": {{\"t\": {}}}}}\n{{\"meta\": {{\"t\": \"{}\"}}}}\n",
            (secs + 10) * 1000,
            secs + 20
        );
        let l = log(&text);
        let time = FieldRef::parse("/meta/t").unwrap();
        let s = scan(&l.path, "run", &time, &query(vec![window(60), window(15)], false), now()).unwrap();
        assert_eq!(s.newest_event, Some(now() - TimeDelta::seconds(10)));
        assert_eq!(s.counts.iter().map(|c| c.count).collect::<Vec<_>>(), vec![3, 1]);
        assert_eq!(s.malformed_count, 0);
    }

    #[test]
    fn the_last_record_is_the_newest_complete_line_and_never_an_older_one() {
        let older = event(30, "A");
        let l = log(format!("{older}{{\"positions\": [\n"));
        let s = l.scan(&query(vec![], true));
        // The newest complete line is malformed: no fallback to `older`.
        assert_eq!(s.last_record, None);
        assert_eq!(
            s.last_record_error,
            Some(format!("invalid JSON at column 15: EOF while parsing a list (byte {})", older.len()))
        );
        // A record without a time field is still a record (and a malformed event).
        let s = log(format!("{older}{{\"positions\": []}}\n")).scan(&query(vec![], true));
        assert_eq!(s.last_record, Some(json!({"positions": []})));
        assert_eq!(s.last_record_error, None);
        assert_eq!(s.malformed_count, 1);
        // Not asked for: not kept.
        assert_eq!(log(&older).scan(&query(vec![], false)).last_record, None);
    }

    #[test]
    fn the_last_record_is_found_even_when_the_newest_event_is_old() {
        let s = log([event(9000, "A"), "{\"positions\": []}\n".into()].concat()).scan(&query(vec![window(60)], true));
        assert_eq!(s.last_record, Some(json!({"positions": []})));
        assert_eq!(s.newest_event, Some(now() - TimeDelta::seconds(9000)));
    }

    #[test]
    fn cost_follows_the_window_not_the_file() {
        // 24 hours at one event per second (about 7 MB); a 1 h window.
        let mut text = String::with_capacity(8 << 20);
        let start = now() - TimeDelta::seconds(86_399);
        for i in 0..86_400_i64 {
            let t = start + TimeDelta::seconds(i);
            text.push_str(&format!(
                "{{\"ts\": \"{}\", \"event\": \"CYCLE\", \"n\": {i}, \"positions\": 12}}\n",
                t.to_rfc3339()
            ));
        }
        let l = log(&text);
        let s = l.scan(&query(vec![window(3600), window(300)], false));
        assert_eq!(s.newest_event, Some(now()));
        assert_eq!(s.counts.iter().map(|c| c.count).collect::<Vec<_>>(), vec![3601, 301]);
        assert_eq!(s.lines_scanned, 3602);
        assert!(s.file_len > 6_000_000, "{}", s.file_len);
        assert!(s.bytes_scanned * 20 < s.file_len, "read {} of {} bytes", s.bytes_scanned, s.file_len);
        assert!(s.bytes_scanned >= s.file_len - s.scanned_from);
        assert!(s.bytes_scanned < s.file_len - s.scanned_from + BLOCK as u64);
    }

    #[test]
    fn a_line_over_one_mib_is_reported_and_skipped_without_buffering() {
        let before = event(30, "A");
        let huge = format!("{{\"ts\": \"{}\", \"pad\": \"{}\"}}\n", ago(20), "x".repeat(3 << 20));
        let text = [before.clone(), huge.clone(), event(10, "A")].concat();
        let s = log(&text).scan(&query(vec![window(60)], false));
        assert_eq!(s.counts[0].count, 2);
        assert_eq!(s.malformed_count, 1);
        assert_eq!(
            reasons(&s),
            vec![(
                before.len() as u64,
                Some(2),
                2,
                format!("line is {} bytes, longer than the 1 MiB limit (skipped)", huge.len() - 1).as_str()
            )]
        );
        // An unterminated oversize last line cannot be judged torn: it is malformed.
        let s = log([before, huge.trim_end().to_owned()].concat()).scan(&query(vec![], true));
        assert!(!s.torn_tail);
        assert_eq!(s.malformed_count, 1);
        assert!(s.last_record_error.unwrap().starts_with("line is 3145"));
    }

    #[test]
    fn tiny_blocks_and_line_limits() {
        let lines = [
            event(50, "A"),
            format!("{{\"ts\": \"{}\", \"pad\": \"{}\"}}\n", ago(40), "y".repeat(100)),
            event(30, "B"),
        ];
        let text = lines.concat();
        for block in [1, 2, 7, 64, 1000] {
            let s = log(&text).scan_small(&query(vec![window(60)], true), block, 80);
            assert_eq!(s.counts[0].count, 2, "block {block}");
            assert_eq!(
                reasons(&s),
                vec![(
                    lines[0].len() as u64,
                    Some(2),
                    2,
                    format!("line is {} bytes, longer than the 80-byte limit (skipped)", lines[1].len() - 1).as_str()
                )],
                "block {block}"
            );
            assert_eq!(s.last_record.unwrap()["event"], json!("B"));
            assert_eq!(s.bytes_scanned, text.len() as u64);
        }
    }

    #[test]
    fn a_file_that_shrinks_while_being_read_is_unavailable() {
        let l = log([event(20, "A"), event(10, "A")].concat());
        let (file, len) = open_regular(&l.path).unwrap();
        // As if the file had been 1000 bytes longer when it was opened, then truncated.
        let q = query(vec![window(60)], false);
        let ask = Ask { time: &ts(), query: &q, now: now(), limits: LIMITS };
        let e = scan_open(&file, len + 1000, &l.path, "log:run", ask).unwrap_err();
        assert_eq!(e.kind, SourceErrorKind::Unavailable);
        assert_eq!(
            e.message,
            format!(
                "{} changed while reading: it shrank from {} to {len} bytes (truncated or rotated); \
                 it is read again next cycle",
                l.path.display(),
                len + 1000
            )
        );
    }

    // ---- property: the reverse scanner agrees with a straightforward forward scan ----

    /// The obvious implementation: read the whole file, split it into lines, decide from the
    /// front which lines the scan must look at, summarise those.
    fn forward_scan(bytes: &[u8], file: &str, q: &LogQuery, max_line: usize) -> LogSummary {
        let time = ts();
        let mut lines: Vec<(u64, &[u8], bool)> = Vec::new();
        let mut start = 0;
        for (i, &b) in bytes.iter().enumerate() {
            if b == b'\n' {
                lines.push((start as u64, &bytes[start..i], true));
                start = i + 1;
            }
        }
        if start < bytes.len() {
            lines.push((start as u64, &bytes[start..], false));
        }
        let parsed: Vec<Line> = lines
            .iter()
            .map(|(_, b, _)| {
                if b.len() > max_line {
                    Line::Bad(Bad { reason: oversize_reason(b.len() as u64, max_line), incomplete: false })
                } else {
                    parse_line(b, &time, None)
                }
            })
            .collect();
        let torn = |k: usize| !lines[k].2 && matches!(&parsed[k], Line::Bad(b) if b.incomplete);
        let stop_before = since(now(), q.horizon());
        let first = (0..lines.len())
            .rev()
            .find(|&k| matches!(&parsed[k], Line::Record { time: Ok(t), .. } if *t < stop_before))
            .unwrap_or(0);
        let examined = first..lines.len();
        let mut s = LogSummary {
            file: file.to_owned(),
            file_len: bytes.len() as u64,
            newest_event: None,
            counts: Vec::new(),
            lines_scanned: examined.len() as u64,
            bytes_scanned: 0,
            scanned_from: lines.get(first).map_or(bytes.len() as u64, |l| l.0),
            malformed_count: 0,
            malformed: Vec::new(),
            last_record: None,
            last_record_error: None,
            torn_tail: !lines.is_empty() && torn(lines.len() - 1),
        };
        let times: Vec<DateTime<Utc>> = examined
            .clone()
            .filter_map(|k| match &parsed[k] {
                Line::Record { time: Ok(t), .. } => Some(*t),
                _ => None,
            })
            .collect();
        s.newest_event = times.iter().max().copied();
        s.counts = q
            .windows
            .iter()
            .map(|w| {
                let matching = |k: &usize| match &parsed[*k] {
                    Line::Record { value, time: Ok(t) } => {
                        (*t >= since(now(), w.within) && w.matcher.matches(value)).then_some(*t)
                    }
                    _ => None,
                };
                let times: Vec<_> = examined.clone().filter_map(|k| matching(&k)).collect();
                let end = until(now(), w.within);
                WindowCount {
                    window: w.clone(),
                    count: times.iter().filter(|t| **t <= end).count() as u64,
                    ahead: times.iter().filter(|t| **t > end).count() as u64,
                }
            })
            .collect();
        for k in examined.clone().rev() {
            let reason = match &parsed[k] {
                Line::Bad(b) if !torn(k) => b.reason.clone(),
                Line::Record { time: Err(e), .. } => e.clone(),
                _ => continue,
            };
            s.malformed_count += 1;
            if s.malformed.len() < KEEP_MALFORMED {
                let from_end = (lines.len() - k) as u64;
                s.malformed.push(MalformedLine {
                    offset: lines[k].0,
                    line: (first == 0).then_some(k as u64 + 1),
                    from_end,
                    reason,
                });
            }
        }
        if q.last_record
            && let Some(k) = (0..lines.len()).rev().find(|&k| !matches!(parsed[k], Line::Blank) && !torn(k))
        {
            assert!(examined.contains(&k), "the last record is always among the lines examined");
            match &parsed[k] {
                Line::Record { value, .. } => s.last_record = Some(value.clone()),
                Line::Bad(b) => s.last_record_error = Some(format!("{} (byte {})", b.reason, lines[k].0)),
                Line::Blank => unreachable!(),
            }
        }
        s
    }

    #[derive(Debug, Clone)]
    enum Gen {
        Event { secs_ago: i64, format: u8, exit: bool, pad: usize },
        Blank(u8),
        Garbage(u8),
    }

    fn render(g: &Gen) -> Vec<u8> {
        match g {
            Gen::Event { secs_ago, format, exit, pad } => {
                let t = now() - TimeDelta::seconds(*secs_ago);
                let time = match format {
                    0 => format!("\"{}\"", t.to_rfc3339()),
                    1 => format!(
                        "\"{}\"",
                        t.with_timezone(&chrono::FixedOffset::west_opt(5 * 3600).unwrap()).to_rfc3339()
                    ),
                    2 => t.timestamp().to_string(),
                    3 => t.timestamp_millis().to_string(),
                    4 => format!("\"{}\"", t.timestamp()),
                    _ => format!("\"{}\"", t.format("%Y-%m-%d %H:%M:%S")),
                };
                let event = if *exit { "EXIT" } else { "CYCLE" };
                format!("{{\"ts\": {time}, \"event\": \"{event}\", \"pad\": \"{}\"}}", "p".repeat(*pad)).into_bytes()
            }
            Gen::Blank(k) => [&b""[..], b"   ", b"\t"][usize::from(*k) % 3].to_vec(),
            Gen::Garbage(k) => [
                &b"not json"[..],
                b"[1, 2]",
                b"{\"event\": \"EXIT\"}",
                b"{\"ts\": \"yesterday\"}",
                b"{\"ts\": null}",
                b"{\"ts\": \"\0\"}",
                b"\xff\xfe{}",
                b"\"text\"",
                b"{\"ts\": 1766160000} {}",
                b"{\"ts\": \"2025-12",
            ][usize::from(*k) % 10]
                .to_vec(),
        }
    }

    fn gen_line() -> impl Strategy<Value = Gen> {
        prop_oneof![
            6 => (-600_i64..14_400, 0_u8..6, any::<bool>(), prop_oneof![3 => 0_usize..8, 1 => 0_usize..200])
                .prop_map(|(secs_ago, format, exit, pad)| Gen::Event { secs_ago, format, exit, pad }),
            1 => any::<u8>().prop_map(Gen::Blank),
            2 => any::<u8>().prop_map(Gen::Garbage),
        ]
    }

    /// How the file ends.
    #[derive(Debug, Clone)]
    enum Tail {
        Newline,
        /// The last line without its newline.
        Unterminated,
        /// The last line cut after this many bytes, without its newline.
        Cut(usize),
    }

    fn render_log(lines: &mut [(Gen, bool)], sorted: bool, tail: &Tail) -> Vec<u8> {
        if sorted {
            // Time-ordered, oldest first, as bots mostly write them.
            let mut times: Vec<i64> = lines
                .iter()
                .filter_map(|(g, _)| match g {
                    Gen::Event { secs_ago, .. } => Some(*secs_ago),
                    _ => None,
                })
                .collect();
            times.sort_unstable_by(|a, b| b.cmp(a));
            let mut it = times.into_iter();
            for (g, _) in lines.iter_mut() {
                if let Gen::Event { secs_ago, .. } = g {
                    *secs_ago = it.next().unwrap();
                }
            }
        }
        let mut bytes = Vec::new();
        let n = lines.len();
        for (i, (g, crlf)) in lines.iter().enumerate() {
            let mut line = render(g);
            if i + 1 == n {
                match tail {
                    Tail::Newline => {}
                    Tail::Unterminated => {
                        bytes.extend_from_slice(&line);
                        break;
                    }
                    Tail::Cut(at) => {
                        line.truncate((*at).min(line.len()));
                        bytes.extend_from_slice(&line);
                        break;
                    }
                }
            }
            bytes.extend_from_slice(&line);
            bytes.extend_from_slice(if *crlf { b"\r\n" } else { b"\n" });
        }
        bytes
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        #[test]
        fn reverse_scan_agrees_with_a_forward_scan(
            mut lines in prop::collection::vec((gen_line(), any::<bool>()), 0..40),
            sorted in any::<bool>(),
            tail in prop_oneof![Just(Tail::Newline), Just(Tail::Unterminated), (1_usize..200).prop_map(Tail::Cut)],
            windows in prop::collection::vec((prop::sample::select(vec![0_u64, 60, 600, 3600, 7200]), any::<bool>()), 0..3),
            last_record in any::<bool>(),
            block in prop_oneof![1_usize..16, 16_usize..200, Just(BLOCK)],
            max_line in prop_oneof![20_usize..160, Just(MAX_LINE)],
        ) {
            let bytes = render_log(&mut lines, sorted, &tail);
            let q = LogQuery {
                windows: windows
                    .into_iter()
                    .map(|(secs, exit)| if exit { window_matching(secs, "event", "EXIT") } else { window(secs) })
                    .collect(),
                last_record,
            };
            let l = log(&bytes);
            let got = l.scan_small(&q, block, max_line);
            let mut want = forward_scan(&bytes, &l.path.display().to_string(), &q, max_line);
            prop_assert!(got.bytes_scanned >= got.file_len - got.scanned_from);
            prop_assert!(got.bytes_scanned <= got.file_len);
            want.bytes_scanned = got.bytes_scanned;
            prop_assert_eq!(got, want);
        }
    }
}
