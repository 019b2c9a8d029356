//! JSON-lines state files (`actions.jsonl`, `audits.jsonl`): one record per line, appended
//! and read back by the same functions.
//!
//! Invariants:
//! - a line is appended with one `write` on an `O_APPEND` file (created 0600), so a reader
//!   never sees two records interleaved;
//! - a line cut short (the process killed mid-write, a full disk) stays as it is, and the next
//!   record starts on a fresh line: one crash costs at most the record it was writing;
//! - reading never fails on content: a line that is not a record (a torn last line included)
//!   is counted and skipped;
//! - a file with a size cap is rotated to `<name>.1` (replacing the previous one) before an
//!   append would pass the cap, so its history on disk stays under twice the cap.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::file::{ensure_dir, open_append};

/// How an append is made durable, and whether the file is size-capped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AppendPolicy {
    /// fsync the data before returning: the caller acts on the record being on disk (the
    /// action journal's intents). Otherwise the kernel writes it back in its own time.
    pub sync: bool,
    /// Rotate to `<name>.1` first when the append would make the file larger than this.
    pub rotate_at: Option<u64>,
}

/// The records of a JSON-lines file, and how many lines were not records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lines<T> {
    /// In file order.
    pub records: Vec<T>,
    /// Lines that did not parse (a torn last line included); blank lines are not counted.
    pub skipped: usize,
}

impl<T> Default for Lines<T> {
    fn default() -> Self {
        Self { records: Vec::new(), skipped: 0 }
    }
}

/// Appends `record` as one line to `path` (its folder created 0700, the file 0600 when
/// missing), rotating first when `policy` caps the size.
///
/// # Errors
/// When the record cannot be serialised, or the file cannot be rotated, opened, written or
/// (with `sync`) synced. The caller must then not rely on the record being there.
pub fn append<T: Serialize>(path: &Path, record: &T, policy: AppendPolicy) -> io::Result<()> {
    let mut line = serde_json::to_vec(record).map_err(io::Error::other)?;
    line.push(b'\n');
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        ensure_dir(dir).map_err(|e| io::Error::other(e.to_string()))?;
    }
    if let Some(cap) = policy.rotate_at {
        let len = match std::fs::metadata(path) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => 0,
            Err(e) => return Err(e),
        };
        if len > 0 && len + line.len() as u64 > cap {
            std::fs::rename(path, rotated(path))?;
        }
    }
    let mut f = open_append(path)?;
    let len = f.metadata()?.len();
    if len > 0 && !ends_with_newline(&f, len)? {
        // A torn last line: start ours on a fresh line so both stay parseable (or skipped).
        line.insert(0, b'\n');
    }
    // One write of the whole line: with O_APPEND, a reader never sees two lines interleaved.
    f.write_all(&line)?;
    if policy.sync {
        f.sync_data()?;
    }
    Ok(())
}

/// Where a size-capped file is rotated to: `<name>.1`.
#[must_use]
pub fn rotated(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(".1");
    path.with_file_name(name)
}

/// Reads a JSON-lines file; a missing file has no records.
///
/// # Errors
/// When it exists but cannot be read (the caller decides what an unknown history means).
pub fn read<T: DeserializeOwned>(path: &Path) -> io::Result<Lines<T>> {
    match std::fs::read(path) {
        // Invalid UTF-8 makes its line unparseable (skipped), not the whole file unreadable.
        Ok(bytes) => Ok(parse(&String::from_utf8_lossy(&bytes))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Lines::default()),
        Err(e) => Err(e),
    }
}

/// Parses JSON-lines text. Never fails: a line that is not a `T` is counted, not fatal.
#[must_use]
pub fn parse<T: DeserializeOwned>(text: &str) -> Lines<T> {
    let mut out = Lines::default();
    for line in text.lines() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<T>(line) {
            Ok(r) => out.records.push(r),
            Err(_) => out.skipped += 1,
        }
    }
    out
}

/// Whether a file of `len` bytes ends with a newline (else its last line was torn: a crash or a
/// full disk mid-append).
#[cfg(unix)]
fn ends_with_newline(f: &File, len: u64) -> io::Result<bool> {
    use std::os::unix::fs::FileExt;
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, len - 1)?;
    Ok(b[0] == b'\n')
}

#[cfg(not(unix))]
fn ends_with_newline(_f: &File, _len: u64) -> io::Result<bool> {
    Ok(true)
}

#[cfg(test)]
mod tests {
    use std::fs::{self, OpenOptions};

    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    struct Rec {
        n: u32,
        text: String,
    }

    fn rec(n: u32) -> Rec {
        Rec { n, text: format!("record number {n}") }
    }

    fn tear(path: &Path, bytes: &[u8]) {
        let mut f = OpenOptions::new().create(true).append(true).open(path).unwrap();
        f.write_all(bytes).unwrap();
    }

    #[test]
    fn missing_is_empty_and_records_round_trip_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/x.jsonl");
        assert_eq!(read::<Rec>(&path).unwrap(), Lines::default());
        for n in 0..3 {
            append(&path, &rec(n), AppendPolicy { sync: n == 1, rotate_at: None }).unwrap();
        }
        assert_eq!(read::<Rec>(&path).unwrap(), Lines { records: vec![rec(0), rec(1), rec(2)], skipped: 0 });
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!((mode(&path), mode(path.parent().unwrap())), (0o600, 0o700));
        }
    }

    #[test]
    fn a_torn_tail_is_skipped_and_the_next_append_starts_a_fresh_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.jsonl");
        append(&path, &rec(1), AppendPolicy::default()).unwrap();
        let whole = serde_json::to_string(&rec(2)).unwrap();
        tear(&path, &whole.as_bytes()[..whole.len() / 2]);
        assert_eq!(read::<Rec>(&path).unwrap(), Lines { records: vec![rec(1)], skipped: 1 });
        append(&path, &rec(3), AppendPolicy::default()).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 3, "{text}");
        assert_eq!(read::<Rec>(&path).unwrap(), Lines { records: vec![rec(1), rec(3)], skipped: 1 });
        // Invalid UTF-8 costs its line only.
        tear(&path, b"\xff\xfe\n");
        append(&path, &rec(4), AppendPolicy::default()).unwrap();
        assert_eq!(read::<Rec>(&path).unwrap(), Lines { records: vec![rec(1), rec(3), rec(4)], skipped: 2 });
    }

    #[test]
    fn a_capped_file_rotates_before_passing_the_cap() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audits.jsonl");
        let one = serde_json::to_vec(&rec(1)).unwrap().len() as u64 + 1;
        let capped = AppendPolicy { sync: false, rotate_at: Some(one * 3) };
        for n in 1..=3 {
            append(&path, &rec(n), capped).unwrap();
        }
        let full = fs::read_to_string(&path).unwrap();
        append(&path, &rec(4), capped).unwrap();
        assert_eq!(rotated(&path), dir.path().join("audits.jsonl.1"));
        assert_eq!(fs::read_to_string(rotated(&path)).unwrap(), full);
        assert_eq!(read::<Rec>(&path).unwrap().records, [rec(4)]);
        // A record larger than the cap still goes in (into a fresh file).
        let big = AppendPolicy { sync: false, rotate_at: Some(1) };
        append(&path, &rec(5), big).unwrap();
        assert_eq!(read::<Rec>(&path).unwrap().records, [rec(5)]);
        assert_eq!(read::<Rec>(&rotated(&path)).unwrap().records, [rec(4)]);
    }

    #[test]
    fn a_file_that_cannot_be_read_is_an_error_not_an_empty_history() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("actions.jsonl");
        fs::create_dir(&path).unwrap();
        assert!(read::<Rec>(&path).is_err());
        assert!(append(&path, &rec(1), AppendPolicy { sync: true, rotate_at: None }).is_err());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

        /// Whatever the records (newlines, quotes, any Unicode in their text) and wherever a
        /// crash cuts an append short, reading gives back every whole record in order and
        /// counts each torn one, and the next append is never lost to the torn line.
        #[test]
        fn every_whole_record_survives_any_torn_appends(
            steps in proptest::collection::vec((any_text(), proptest::option::of(0.0f64..1.0)), 1..12),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("x.jsonl");
            let mut whole = Vec::new();
            let mut torn = 0;
            let mut last_torn = false;
            for (n, (text, cut_at)) in (0u32..).zip(steps) {
                let r = Rec { n, text };
                match cut_at {
                    Some(at) => {
                        let line = serde_json::to_vec(&r).unwrap();
                        // A strict, non-empty prefix: what a crash mid-write leaves. Two crashes
                        // in a row (no append between) leave one torn line.
                        let cut = 1 + ((line.len() - 2) as f64 * at) as usize;
                        tear(&path, &line[..cut]);
                        torn += usize::from(!last_torn);
                        last_torn = true;
                    }
                    None => {
                        append(&path, &r, AppendPolicy::default()).unwrap();
                        whole.push(r);
                        last_torn = false;
                    }
                }
            }
            let read = read::<Rec>(&path).unwrap();
            proptest::prop_assert_eq!(read.records, whole);
            proptest::prop_assert_eq!(read.skipped, torn);
        }
    }

    fn any_text() -> impl proptest::strategy::Strategy<Value = String> {
        proptest::string::string_regex("(?s).{0,40}").unwrap()
    }
}
