//! The JSONL reverse tail scanner: reads a log backwards from its end, newest line first, and
//! stops as soon as it has what the rules asked for, so cost follows the window, not the file
//! (design principle 4).
//!
//! The file is read in blocks from the end (`memrchr` finds the newlines; the block, the
//! partial-line carry and the line buffer are reused). Each line is parsed as a JSON object
//! and its event time read through the configured field.
//!
//! The scan stops after the first valid event (a parseable line with a valid time) older than
//! `now − horizon`, where the horizon is the largest window asked for (zero without windows,
//! so a freshness check reads back to the newest event that is not in the future). By then:
//! - the newest event has been seen (the first valid event found is at least as new as the
//!   line that stops the scan);
//! - the newest complete line has been examined (it comes before any valid event), so the
//!   last record, when asked for, is known.
//!
//! Logs are roughly but not strictly time-ordered (threads, clock steps). The scan does not
//! look past the stopping event for stragglers: an event older than the horizon proves every
//! line after it in the file was written after it, and a log whose lines are minutes out of
//! order would need an unbounded look-behind to be exact. So: an in-window event written
//! *before* an out-of-window one is not counted, and `newest_event` is the newest among the
//! lines read. That is the documented price of reading the tail only.
//!
//! Line rules:
//! - a trailing `\r` is stripped (CRLF logs), lines of only whitespace are skipped;
//! - malformed: a NUL byte, invalid UTF-8, invalid JSON, not an object, the time field missing
//!   or not a timestamp, longer than [`MAX_LINE`] (skipped without being buffered: memory stays
//!   bounded whatever the file holds);
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

use super::file::open_regular;
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

/// Parses one line (without its `\n`).
fn parse_line(bytes: &[u8], time: &FieldRef) -> Line {
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
    let value: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => return bad(format!("invalid JSON at column {}: {}", e.column(), serde_message(&e)), true),
    };
    if !value.is_object() {
        return bad(format!("is {}, expected a JSON object", json_kind(&value)), false);
    }
    let time = match time.get(&value) {
        None => Err(format!("time field `{time}` is missing")),
        Some(v) => timestamp_from_json(v).map_err(|e| about(&format!("time field `{time}`"), &e)),
    };
    Line::Record { value, time }
}

fn oversize_reason(len: u64, max_line: usize) -> String {
    if max_line == MAX_LINE {
        format!("line is {len} bytes, longer than the 1 MiB limit (skipped unread)")
    } else {
        format!("line is {len} bytes, longer than the {max_line}-byte limit (skipped unread)")
    }
}

/// `now − d`, saturating at the earliest representable time.
fn since(now: DateTime<Utc>, d: std::time::Duration) -> DateTime<Utc> {
    TimeDelta::from_std(d).ok().and_then(|d| now.checked_sub_signed(d)).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

fn scan_file(file: &File, len: u64, path: &Path, ask: Ask<'_>) -> io::Result<LogSummary> {
    let Ask { time, query, now, limits } = ask;
    let starts: Vec<DateTime<Utc>> = query.windows.iter().map(|w| since(now, w.within)).collect();
    let stop_before = since(now, query.horizon());
    let mut counts = vec![0_u64; query.windows.len()];
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
    let mut lines = ReverseLines::new(file, len, limits);
    while let Some(raw) = lines.next_line()? {
        s.lines_scanned += 1;
        s.scanned_from = raw.offset;
        let from_end = s.lines_scanned;
        let line = match raw.bytes {
            Some(b) => parse_line(b, time),
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
                        for ((count, start), w) in counts.iter_mut().zip(&starts).zip(&query.windows) {
                            if t >= *start && w.matcher.matches(&value) {
                                *count += 1;
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
    s.counts = query.windows.iter().zip(counts).map(|(w, count)| WindowCount { window: w.clone(), count }).collect();
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
