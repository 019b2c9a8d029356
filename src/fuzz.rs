//! Fuzzing entry points: each takes arbitrary bytes, drives one parser the way the watchdog
//! does, and asserts what must hold for every input. A panic is a bug.
//!
//! The cargo-fuzz targets in `fuzz/fuzz_targets/` are one line each, calling these; a unit test
//! replays every committed corpus file (`fuzz/corpus/<target>/`) through the same functions, so
//! `cargo test` exercises the corpus without a nightly toolchain. Targets:
//! - [`jsonl_scan`]: the reverse JSONL scanner, with default and tiny block/line limits, checked
//!   against a forward reading of the same bytes;
//! - [`bot_json`]: positions and metadata extraction from a bot file and from a log's last record;
//! - [`config_toml`]: text as `tradewarden.toml` (through `Config::load`) and as a rules file;
//! - [`broker_json`]: every `wire::parse_*`;
//! - [`timestamps`]: `parse_timestamp`, `timestamp_from_json`, `decimal_from_json`, `from_epoch`.
//!
//! Files are written into a temporary folder per thread, so calls may run in parallel.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Datelike, TimeDelta, Utc};
use serde_json::{Value, json};

use crate::checks::read_rules_file;
use crate::collect::bot::{jsonl, state};
use crate::collect::broker::wire;
use crate::config::reader::{Problems, SourceText};
use crate::config::{BotSource, Config, MetadataMapping, PositionsMapping, RuleContext};
use crate::model::{FieldRef, LogQuery, LogSummary, Matcher, Side, Sourced, Window};
use crate::num::{decimal_from_json, parse_decimal};
use crate::timestamp::{from_epoch, parse_timestamp, timestamp_from_json};

/// A fuzz target: arbitrary bytes in, a panic on a bug.
pub type Target = fn(&[u8]);

/// The targets, by name (the folder names under `fuzz/corpus/`).
pub const TARGETS: [(&str, Target); 5] = [
    ("jsonl_scan", jsonl_scan),
    ("bot_json", bot_json),
    ("config_toml", config_toml),
    ("broker_json", broker_json),
    ("timestamps", timestamps),
];

/// The "now" of every scan.
fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_766_160_000, 0).unwrap_or_default() // 2025-12-19T16:00:00Z
}

thread_local! {
    /// One scratch folder per thread, reused by every call on it (creating and removing a
    /// folder per input would cost more than most parses).
    static SCRATCH: tempfile::TempDir = tempfile::tempdir().expect("a temporary directory for fuzz inputs");
}

/// Runs `f` with this thread's scratch folder.
fn with_scratch<R>(f: impl FnOnce(&Path) -> R) -> R {
    SCRATCH.with(|d| f(d.path()))
}

fn write(path: &Path, data: &[u8]) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("create the input's folder");
    }
    std::fs::write(path, data).expect("write the fuzz input");
}

fn field(s: &str) -> FieldRef {
    FieldRef::parse(s).expect("a field name")
}

// ---- jsonl_scan ----

/// What every scan of the fuzz input is asked: the last minute, exits in the last hour, and
/// everything ever (so the whole file is read and can be compared with a forward reading).
fn scan_query() -> LogQuery {
    let exits = Matcher { fields: vec![(field("event"), json!("EXIT"))] };
    LogQuery {
        windows: vec![
            Window { within: Duration::from_secs(60), matcher: Matcher::default() },
            Window { within: Duration::from_secs(3600), matcher: exits },
            Window { within: Duration::MAX, matcher: Matcher::default() },
        ],
        last_record: true,
    }
}

/// One line as the scanner's documented rules read it.
enum Seen {
    Blank,
    /// Not a record; `json_incomplete`: the bytes are not a JSON document at all (a torn tail
    /// when it is the unterminated last line).
    Bad {
        json_incomplete: bool,
    },
    Record {
        value: Value,
        time: Option<DateTime<Utc>>,
    },
}

fn forward_line(raw: &[u8], max_line: usize, time: &FieldRef) -> Seen {
    if raw.len() > max_line {
        return Seen::Bad { json_incomplete: false };
    }
    let line = raw.strip_suffix(b"\r").unwrap_or(raw);
    if line.iter().all(u8::is_ascii_whitespace) {
        return Seen::Blank;
    }
    match serde_json::from_slice::<Value>(line) {
        Err(_) => Seen::Bad { json_incomplete: true },
        Ok(v) if !v.is_object() => Seen::Bad { json_incomplete: false },
        Ok(value) => {
            let time = time.get(&value).and_then(|v| timestamp_from_json(v).ok());
            Seen::Record { value, time }
        }
    }
}

/// The summary fields a whole-file scan must produce, computed front to back.
#[derive(Debug, PartialEq)]
struct Expected {
    lines: u64,
    counts: Vec<(u64, u64)>,
    newest: Option<DateTime<Utc>>,
    malformed: u64,
    torn_tail: bool,
    last_record: Option<Value>,
    last_record_is_error: bool,
}

fn forward(data: &[u8], max_line: usize, q: &LogQuery) -> Expected {
    let time = field("ts");
    let mut raw: Vec<&[u8]> = data.split(|&b| b == b'\n').collect();
    let terminated = raw.last().is_some_and(|l| l.is_empty());
    if terminated || data.is_empty() {
        raw.pop();
    }
    let seen: Vec<Seen> = raw.iter().map(|l| forward_line(l, max_line, &time)).collect();
    let n = seen.len();
    let torn = |k: usize| k + 1 == n && !terminated && matches!(seen[k], Seen::Bad { json_incomplete: true });
    // A window counts events from `within` before now to `within` after it (clock skew);
    // matching events further ahead are counted apart.
    let spans: Vec<(DateTime<Utc>, DateTime<Utc>)> = q
        .windows
        .iter()
        .map(|w| {
            let d = TimeDelta::from_std(w.within).ok();
            (
                d.and_then(|d| now().checked_sub_signed(d)).unwrap_or(DateTime::<Utc>::MIN_UTC),
                d.and_then(|d| now().checked_add_signed(d)).unwrap_or(DateTime::<Utc>::MAX_UTC),
            )
        })
        .collect();
    let mut e = Expected {
        lines: n as u64,
        counts: vec![(0, 0); q.windows.len()],
        newest: None,
        malformed: 0,
        torn_tail: n > 0 && torn(n - 1),
        last_record: None,
        last_record_is_error: false,
    };
    for (k, s) in seen.iter().enumerate() {
        match s {
            Seen::Blank => {}
            Seen::Bad { .. } if torn(k) => {}
            Seen::Bad { .. } | Seen::Record { time: None, .. } => e.malformed += 1,
            Seen::Record { value, time: Some(t) } => {
                e.newest = Some(e.newest.map_or(*t, |n| n.max(*t)));
                for (((count, ahead), (start, end)), w) in e.counts.iter_mut().zip(&spans).zip(&q.windows) {
                    if t >= start && w.matcher.matches(value) {
                        if t <= end {
                            *count += 1;
                        } else {
                            *ahead += 1;
                        }
                    }
                }
            }
        }
    }
    if let Some(k) = (0..n).rev().find(|&k| !matches!(seen[k], Seen::Blank) && !torn(k)) {
        match &seen[k] {
            Seen::Record { value, .. } => e.last_record = Some(value.clone()),
            _ => e.last_record_is_error = true,
        }
    }
    e
}

fn observed(s: &LogSummary) -> Expected {
    Expected {
        lines: s.lines_scanned,
        counts: s.counts.iter().map(|c| (c.count, c.ahead)).collect(),
        newest: s.newest_event,
        malformed: s.malformed_count,
        torn_tail: s.torn_tail,
        last_record: s.last_record.clone(),
        last_record_is_error: s.last_record_error.is_some(),
    }
}

/// The input as a JSONL log: scanned with the real limits and with tiny ones chosen by its
/// first two bytes; each scan must read the whole file (one window is unbounded) and agree
/// with a forward reading.
///
/// # Panics
/// When the scanner disagrees with the forward reading, or on any scanner panic.
pub fn jsonl_scan(data: &[u8]) {
    with_scratch(|dir| scan_checked(dir, data));
}

fn scan_checked(dir: &Path, data: &[u8]) {
    let path = dir.join("run.jsonl");
    write(&path, data);
    let q = scan_query();
    let time = field("ts");
    // Tiny blocks reach every block-boundary path; at least a sixteenth of the input, so a
    // 4 KiB input costs a few dozen reads, not thousands.
    let block = (1 + usize::from(data.first().copied().unwrap_or(0) % 32)).max(data.len() / 16);
    let max_line = 1 + usize::from(data.get(1).copied().unwrap_or(255));
    for (block, max_line) in [(jsonl::BLOCK, jsonl::MAX_LINE), (block, max_line)] {
        let s = jsonl::scan_with_limits(&path, "run", &time, &q, now(), block, max_line)
            .unwrap_or_else(|e| panic!("a readable regular file is never unavailable: {e}"));
        assert_eq!(s.file_len, data.len() as u64);
        assert_eq!(s.scanned_from, 0, "an unbounded window reads the whole file");
        assert_eq!(s.bytes_scanned, s.file_len);
        assert!(s.malformed.len() <= jsonl::KEEP_MALFORMED);
        assert!(s.malformed.iter().all(|m| m.offset < s.file_len.max(1) && m.line.is_some()));
        assert_eq!(observed(&s), forward(data, max_line, &q), "block {block}, max_line {max_line}");
    }
}

// ---- bot_json ----

/// The stock-bot mapping (`/opens` keyed by symbol), an array mapping with a side field and a
/// pointer field, and the document root keyed by symbol.
fn mappings(source: &BotSource) -> [PositionsMapping; 3] {
    [
        PositionsMapping {
            source: source.clone(),
            at: "/opens".into(),
            symbol: field("symbol"),
            qty: field("qty"),
            entry_price: Some(field("entry_price")),
            side: None,
        },
        PositionsMapping {
            source: source.clone(),
            at: "/positions".into(),
            symbol: field("symbol"),
            qty: field("quantity"),
            entry_price: Some(field("/price/avg")),
            side: Some(field("side")),
        },
        PositionsMapping {
            source: source.clone(),
            at: String::new(),
            symbol: field("symbol"),
            qty: field("qty"),
            entry_price: None,
            side: Some(field("side")),
        },
    ]
}

fn check_positions(got: &Sourced<Vec<crate::model::TrackedPosition>>) {
    let Ok(positions) = got else { return };
    for w in positions.windows(2) {
        assert!(w[0].symbol < w[1].symbol, "sorted, one entry per symbol: {positions:?}");
    }
    for p in positions {
        match p.side {
            Some(Side::Long) => assert!(p.qty >= rust_decimal::Decimal::ZERO, "{p:?}"),
            Some(Side::Short) => assert!(p.qty <= rust_decimal::Decimal::ZERO, "{p:?}"),
            None => assert!(p.qty.is_zero(), "no side only for a zero quantity: {p:?}"),
        }
    }
}

/// The input as the bot's state file, then as a log whose last record holds the positions.
///
/// # Panics
/// On an extraction panic, or a result breaking the invariants (sorted unique symbols, the
/// side agreeing with the sign of the quantity).
pub fn bot_json(data: &[u8]) {
    with_scratch(|root| extract_checked(root, data));
}

fn extract_checked(root: &Path, data: &[u8]) {
    write(&root.join("state/bot.json"), data);
    write(&root.join("logs/positions.jsonl"), data);
    let no_logs = BTreeMap::new();
    for m in mappings(&BotSource::File(PathBuf::from("state/bot.json"))) {
        check_positions(&state::read_positions(&m, root, &no_logs));
    }
    for at in ["", "/meta"] {
        let m = MetadataMapping { source: BotSource::File(PathBuf::from("state/bot.json")), at: at.into() };
        let _ = state::read_metadata(&m, root, &no_logs);
    }
    let q = LogQuery { windows: vec![], last_record: true };
    let summary = jsonl::scan_in(root, Path::new("logs/positions.jsonl"), "positions", &field("ts"), &q, now());
    let logs = BTreeMap::from([("positions".to_owned(), summary)]);
    for m in mappings(&BotSource::Log("positions".into())) {
        check_positions(&state::read_positions(&m, root, &logs));
    }
    let m = MetadataMapping { source: BotSource::Log("positions".into()), at: String::new() };
    let _ = state::read_metadata(&m, root, &logs);
}

// ---- config_toml ----

const RULES: &str = include_str!("../rules/default.toml");

/// The input as `tradewarden.toml` (next to a valid `rules/default.toml`, the default rules
/// path) through `Config::load`, and as a rules file through `read_rules_file`.
///
/// # Panics
/// On any panic while loading; `Config::load` must turn every input into a config or problems.
pub fn config_toml(data: &[u8]) {
    with_scratch(|dir| load_checked(dir, data));
}

fn load_checked(dir: &Path, data: &[u8]) {
    let path = dir.join("tradewarden.toml");
    if !dir.join("rules/default.toml").is_file() {
        write(&dir.join("rules/default.toml"), RULES.as_bytes());
    }
    write(&path, data);
    match Config::load(&path) {
        Ok(cfg) => {
            let _ = cfg.log_queries();
            let _ = cfg.rule_context();
        }
        Err(e) => {
            assert!(!e.problems.is_empty());
            let _ = e.to_string();
        }
    }
    let text = String::from_utf8_lossy(data).into_owned();
    let rules_path = dir.join("rules/extra.toml");
    let src = SourceText::new(&rules_path, text);
    let problems = Problems::default();
    let ctx = RuleContext {
        logs: BTreeSet::from(["run".to_owned(), "exits".to_owned()]),
        execs: BTreeSet::from(["stop-bot".to_owned()]),
    };
    let _ = read_rules_file(&src, &problems, &ctx);
    for p in problems.into_sorted() {
        assert!(p.line <= src.text().lines().count() + 1, "{p}");
    }
}

// ---- broker_json ----

/// The input as the body of every Alpaca endpoint the watchdog reads.
///
/// # Panics
/// On a parser panic, or a short position with a positive quantity.
pub fn broker_json(data: &[u8]) {
    if let Ok(positions) = wire::parse_positions(data) {
        for p in positions {
            if p.side == Side::Short {
                assert!(p.qty <= rust_decimal::Decimal::ZERO, "{p:?}");
            }
        }
    }
    let _ = wire::parse_orders(data);
    let _ = wire::parse_account(data);
    let _ = wire::parse_clock(data);
    let _ = wire::parse_configuration(data);
}

// ---- timestamps ----

/// The input as timestamp and decimal text, and (when it is JSON) as a value.
///
/// # Panics
/// On a parser panic, or when a decimal or a timestamp does not survive a round trip through
/// its own text.
pub fn timestamps(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let string = Value::String(text.clone().into_owned());
    let mut values = vec![string];
    if let Ok(v) = serde_json::from_slice::<Value>(data) {
        values.push(v);
    }
    if let Ok(t) = parse_timestamp(&text)
        && (0..=9999).contains(&t.year())
    {
        let again = parse_timestamp(&t.to_rfc3339());
        assert_eq!(again, Ok(t), "{text:?} → {t}");
    }
    // A JSON number of at most 15 significant digits is read exactly as written (serde_json's
    // default float parser was one ULP off on some: `float_roundtrip` is on).
    if let Some(Value::Number(_)) = values.get(1)
        && let Ok(d) = parse_decimal(&text)
        && d.mantissa().unsigned_abs() < 1_000_000_000_000_000
        && !text.contains(['e', 'E'])
        && text.split('.').nth(1).is_none_or(|fraction| fraction.trim_end().len() <= 28)
    {
        assert_eq!(decimal_from_json(&values[1]), Ok(d), "{text:?} as a JSON number");
    }
    for v in &values {
        let _ = timestamp_from_json(v);
        if let Ok(d) = decimal_from_json(v) {
            assert_eq!(parse_decimal(&d.to_string()), Ok(d), "{v}");
            let _ = from_epoch(d);
        }
    }
    if let Ok(d) = parse_decimal(&text) {
        let _ = from_epoch(d);
    }
}

#[cfg(test)]
mod tests {
    use std::panic::{AssertUnwindSafe, catch_unwind};

    use super::*;

    /// Every file of `fuzz/corpus/<target>/` and `fuzz/regressions/<target>/` through its target.
    #[test]
    fn the_committed_corpus_and_regressions_replay_cleanly() {
        let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
        let mut failures = Vec::new();
        for (name, target) in TARGETS {
            let mut inputs = 0;
            for kind in ["corpus", "regressions"] {
                let Ok(entries) = std::fs::read_dir(fuzz.join(kind).join(name)) else { continue };
                for path in entries.map(|e| e.unwrap().path()) {
                    let data = std::fs::read(&path).unwrap();
                    inputs += 1;
                    if catch_unwind(AssertUnwindSafe(|| target(&data))).is_err() {
                        failures.push(path.display().to_string());
                    }
                }
            }
            assert!(inputs > 0, "no committed inputs for fuzz target `{name}`");
        }
        assert!(failures.is_empty(), "inputs that fail: {failures:#?}");
    }
}
