//! The bot's JSON state: tracked positions and metadata, extracted through the mapping.
//!
//! A source is a JSON file under the bot root, or the last record of one of the bot's JSONL
//! logs (field-notes §4: one bot keeps its positions in a state file, another in the newest
//! line of `logs/positions.jsonl`). The mapping's `at` pointer selects the value: for
//! positions an object keyed by symbol or an array of objects, for metadata an object keyed
//! by symbol.
//!
//! Invariants:
//! - Nothing unknown becomes zero: a missing file is `unavailable`; a file that was read but not
//!   understood (empty, half-written, wrong shape, a bad field) is `malformed`.
//! - One bad entry makes the whole source malformed (a partial list of positions would read as
//!   "these are not held"), and the message lists every bad entry, not just the first.
//! - Files are stat'ed before they are opened and never read past 64 MiB, so a FIFO, a device or
//!   a runaway file cannot hang or exhaust the watchdog; a file resolving outside the bot root
//!   (a symlink out of it) is refused before it is opened.
//! - A file whose length or modification time changed during the read (rewritten in place by
//!   the bot) is unavailable for this cycle, never a mix of old and new bytes.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::Path;

use rust_decimal::Decimal;
use serde_json::Value;

use super::file::open_in_root;
use super::text::{about, json_kind, serde_message, shown};
use crate::config::{BotSource, MetadataMapping, PositionsMapping};
use crate::model::{FieldRef, LogSummary, Metadata, Side, SourceError, Sourced, Symbol, TrackedPosition};
use crate::num::decimal_from_json;

/// State files larger than this are refused (malformed): no bot's state is that big, and
/// reading it would cost the memory the watchdog promises not to use.
pub const MAX_STATE_BYTES: u64 = 64 * 1024 * 1024;

/// Reads the positions the bot tracks, sorted by symbol.
///
/// # Errors
/// `positions` unavailable (the file or log could not be read) or malformed (not understood;
/// the message names the file, the position in it, and every bad entry).
pub fn read_positions(
    mapping: &PositionsMapping,
    root: &Path,
    logs: &BTreeMap<String, Sourced<LogSummary>>,
) -> Sourced<Vec<TrackedPosition>> {
    const SOURCE: &str = "positions";
    let doc = load(&mapping.source, root, logs, SOURCE)?;
    let value = doc.at(&mapping.at).map_err(|m| SourceError::malformed(SOURCE, m))?;
    extract_positions(value, mapping, &doc.origin).map_err(|m| SourceError::malformed(SOURCE, m))
}

/// Reads per-symbol metadata.
///
/// # Errors
/// `metadata` unavailable or malformed, as for positions.
pub fn read_metadata(
    mapping: &MetadataMapping,
    root: &Path,
    logs: &BTreeMap<String, Sourced<LogSummary>>,
) -> Sourced<Metadata> {
    const SOURCE: &str = "metadata";
    let doc = load(&mapping.source, root, logs, SOURCE)?;
    let origin = doc.origin.clone();
    let value = doc.take_at(&mapping.at).map_err(|m| SourceError::malformed(SOURCE, m))?;
    extract_metadata(value, &mapping.at, &origin).map_err(|m| SourceError::malformed(SOURCE, m))
}

/// The positions in a JSON value (the value the mapping's `at` points to), exactly as
/// `read_positions` reads them: for `fix_state`, which must understand a file the same way
/// the audit does before it edits it.
///
/// # Errors
/// A sentence naming every bad entry.
pub fn positions_from_value(
    value: &Value,
    mapping: &PositionsMapping,
    origin: &str,
) -> Result<Vec<TrackedPosition>, String> {
    extract_positions(value, mapping, origin)
}

/// A JSON document and where it came from, for messages.
struct Doc<'a> {
    value: Cow<'a, Value>,
    /// "/srv/bot/state/executor_state.json" or "the last record of log `positions` (...)".
    origin: String,
}

impl<'a> Doc<'a> {
    /// The value at the JSON pointer `at` (`""` = the root).
    fn at(&self, at: &str) -> Result<&Value, String> {
        self.value.pointer(at).ok_or_else(|| format!("pointer `{at}` not found in {}", self.origin))
    }

    /// The value at `at`, moved out of a document read from a file (no copy), borrowed from
    /// a log's last record.
    fn take_at(self, at: &str) -> Result<Cow<'a, Value>, String> {
        let missing = || format!("pointer `{at}` not found in {}", self.origin);
        match self.value {
            Cow::Owned(mut v) => v.pointer_mut(at).map(|v| Cow::Owned(v.take())).ok_or_else(missing),
            Cow::Borrowed(v) => v.pointer(at).map(Cow::Borrowed).ok_or_else(missing),
        }
    }
}

fn load<'a>(
    source: &BotSource,
    root: &Path,
    logs: &'a BTreeMap<String, Sourced<LogSummary>>,
    name: &str,
) -> Sourced<Doc<'a>> {
    match source {
        BotSource::File(rel) => {
            let path = root.join(rel);
            let value = read_json_file(root, &path, name)?;
            Ok(Doc { value: Cow::Owned(value), origin: path.display().to_string() })
        }
        BotSource::Log(log) => {
            let summary = match logs.get(log) {
                None => return Err(SourceError::unavailable(name, format!("log `{log}` is not configured"))),
                Some(Err(e)) => {
                    return Err(SourceError {
                        source: name.into(),
                        kind: e.kind,
                        message: format!("log `{log}`: {}", e.message),
                    });
                }
                Some(Ok(s)) => s,
            };
            if let Some(reason) = &summary.last_record_error {
                return Err(SourceError::malformed(
                    name,
                    format!(
                        "log `{log}`: the newest complete line of {} is not a usable record: {reason}",
                        summary.file
                    ),
                ));
            }
            match &summary.last_record {
                Some(record) => Ok(Doc {
                    value: Cow::Borrowed(record),
                    origin: format!("the last record of log `{log}` ({})", summary.file),
                }),
                None => {
                    Err(SourceError::malformed(name, format!("log `{log}` has no complete record ({})", summary.file)))
                }
            }
        }
    }
}

/// A test's hook on a file path.
#[cfg(test)]
pub(super) type PathHook = Box<dyn FnMut(&Path)>;

#[cfg(test)]
thread_local! {
    /// Test seam: runs between reading a state file and checking that it did not change, so a
    /// test can change the file at exactly the moment a racing bot would.
    pub(super) static AFTER_READ: std::cell::RefCell<Option<PathHook>> = const { std::cell::RefCell::new(None) };
}

/// Reads and parses a whole JSON file of the bot (inside `root`).
fn read_json_file(root: &Path, path: &Path, name: &str) -> Sourced<Value> {
    let (file, len) = open_in_root(root, path).map_err(|m| SourceError::unavailable(name, m))?;
    let shown_path = path.display();
    let modified_before = file.metadata().and_then(|m| m.modified()).ok();
    let too_big = |n: u64| {
        SourceError::malformed(name, format!("{shown_path} is {n} bytes, over the {} MiB limit", MAX_STATE_BYTES >> 20))
    };
    if len > MAX_STATE_BYTES {
        return Err(too_big(len));
    }
    // `len` fits: it is at most 64 MiB. `take` bounds a file that grows while being read.
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    (&file)
        .take(MAX_STATE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| SourceError::unavailable(name, format!("cannot read {shown_path}: {e}")))?;
    if bytes.len() as u64 > MAX_STATE_BYTES {
        return Err(too_big(bytes.len() as u64));
    }
    #[cfg(test)]
    AFTER_READ.with_borrow_mut(|hook| hook.as_mut().map(|h| h(path)));
    // A bot rewriting the file in place while we read can hand us old bytes followed by new
    // ones, which may even parse. The length and modification time before and after the read
    // must agree, else the read is discarded.
    let after = file.metadata().ok();
    let modified_after = after.as_ref().and_then(|m| m.modified().ok());
    if bytes.len() as u64 != len || after.map(|m| m.len()) != Some(len) || modified_after != modified_before {
        return Err(SourceError::unavailable(
            name,
            format!("{shown_path} changed while being read (the bot is writing it); it is read again next cycle"),
        ));
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        let what = if bytes.is_empty() {
            "is empty".to_owned()
        } else {
            format!("holds only whitespace ({} bytes)", bytes.len())
        };
        return Err(SourceError::malformed(name, format!("{shown_path} {what}: probably being written")));
    }
    crate::collect::json_from_bytes(&bytes).map_err(|e| {
        let (line, column) = (e.line(), e.column());
        let offset = byte_offset(&bytes, line, column);
        let hint = if e.is_eof() { " (the file ends early: probably half-written)" } else { "" };
        SourceError::malformed(
            name,
            format!(
                "{shown_path} is not valid JSON: {} at line {line}, column {column} (byte {offset}){hint}",
                serde_message(&e)
            ),
        )
    })
}

/// The 0-based byte offset of serde_json's (1-based line, 1-based byte column) position.
/// Column 0 (serde's "before the first byte of the line") maps to the line's start.
fn byte_offset(bytes: &[u8], line: usize, column: usize) -> usize {
    let line_start = match line {
        0 | 1 => 0,
        n => memchr::memchr_iter(b'\n', bytes).nth(n - 2).map_or(bytes.len(), |i| i + 1),
    };
    (line_start + column.saturating_sub(1)).min(bytes.len())
}

/// One position's fields, before the symbol is attached.
struct Fields {
    qty: Decimal,
    side: Option<Side>,
    entry_price: Option<Decimal>,
}

fn extract_positions(value: &Value, m: &PositionsMapping, origin: &str) -> Result<Vec<TrackedPosition>, String> {
    let mut out = Vec::new();
    // One string per bad entry: "`AAPL`: field `qty` is missing, field `side` ...".
    let mut bad = Vec::new();
    match value {
        Value::Object(map) => {
            for (key, entry) in map {
                let mut problems = Vec::new();
                let symbol =
                    Symbol::new_checked(key).map_err(|e| problems.push(format!("not a valid symbol: {e}"))).ok();
                let fields = read_fields(entry, m, &mut problems);
                match (symbol, fields) {
                    (Some(symbol), Some(f)) if problems.is_empty() => {
                        out.push(TrackedPosition { symbol, qty: f.qty, side: f.side, entry_price: f.entry_price })
                    }
                    _ => bad.push(format!("`{}`: {}", shown(key), problems.join(", "))),
                }
            }
        }
        Value::Array(items) => {
            let mut seen: HashMap<Symbol, usize> = HashMap::new();
            for (i, entry) in items.iter().enumerate() {
                let mut problems = Vec::new();
                let symbol = if entry.is_object() { read_symbol(entry, &m.symbol, &mut problems) } else { None };
                if let Some(s) = &symbol
                    && let Some(first) = seen.insert(s.clone(), i)
                {
                    problems.push(format!("duplicate symbol (also at index {first})"));
                }
                let fields = read_fields(entry, m, &mut problems);
                let label = match &symbol {
                    Some(s) => format!("index {i} (`{s}`)"),
                    None => format!("index {i}"),
                };
                match (symbol, fields) {
                    (Some(symbol), Some(f)) if problems.is_empty() => {
                        out.push(TrackedPosition { symbol, qty: f.qty, side: f.side, entry_price: f.entry_price })
                    }
                    _ => bad.push(format!("{label}: {}", problems.join(", "))),
                }
            }
        }
        other => {
            return Err(format!(
                "the value {} in {origin} is {}, expected an object keyed by symbol or an array of positions",
                where_at(&m.at),
                json_kind(other)
            ));
        }
    }
    if !bad.is_empty() {
        let entries = if bad.len() == 1 { "entry" } else { "entries" };
        return Err(format!(
            "{} bad position {entries} {} in {origin}: {}",
            bad.len(),
            where_at(&m.at),
            bad.join("; ")
        ));
    }
    out.sort_by(|a, b| a.symbol.cmp(&b.symbol));
    Ok(out)
}

/// "at `/opens`" or "at the document root".
fn where_at(at: &str) -> String {
    if at.is_empty() { "at the document root".into() } else { format!("at `{at}`") }
}

/// The symbol of an array entry (an object), via the mapping's `symbol` field.
fn read_symbol(entry: &Value, field: &FieldRef, problems: &mut Vec<String>) -> Option<Symbol> {
    match field.get(entry) {
        None => {
            problems.push(format!("symbol field `{field}` is missing"));
            None
        }
        Some(Value::String(s)) => {
            Symbol::new_checked(s).map_err(|e| problems.push(format!("field `{field}`: {e}"))).ok()
        }
        Some(other) => {
            problems.push(format!("symbol field `{field}` is {}, expected a string", json_kind(other)));
            None
        }
    }
}

/// qty, side and entry price of one entry; every problem is pushed, `None` when there was any.
fn read_fields(entry: &Value, m: &PositionsMapping, problems: &mut Vec<String>) -> Option<Fields> {
    if !entry.is_object() {
        problems.push(format!("is {}, expected an object", json_kind(entry)));
        return None;
    }
    let before = problems.len();
    let qty = match m.qty.get(entry) {
        None => {
            problems.push(format!("field `{}` is missing", m.qty));
            None
        }
        Some(v) => decimal_from_json(v).map_err(|e| problems.push(about(&format!("field `{}`", m.qty), &e))).ok(),
    };
    let entry_price = match m.entry_price.as_ref().and_then(|f| f.get(entry).map(|v| (f, v))) {
        None | Some((_, Value::Null)) => None,
        Some((f, v)) => decimal_from_json(v).map_err(|e| problems.push(about(&format!("field `{f}`"), &e))).ok(),
    };
    let side = match m.side.as_ref().and_then(|f| f.get(entry).map(|v| (f, v))) {
        None | Some((_, Value::Null)) => None,
        Some((f, Value::String(s))) => match s.trim().to_ascii_lowercase().as_str() {
            "long" | "buy" => Some(Side::Long),
            "short" | "sell" => Some(Side::Short),
            _ => {
                problems.push(format!("field `{f}`: `{}` is not long, short, buy or sell", shown(s)));
                None
            }
        },
        Some((f, other)) => {
            problems.push(format!("field `{f}` is {}, expected long, short, buy or sell", json_kind(other)));
            None
        }
    };
    let mut qty = qty?;
    if problems.len() > before {
        return None;
    }
    match side {
        Some(Side::Short) if qty > Decimal::ZERO => qty = -qty,
        Some(Side::Long) if qty < Decimal::ZERO => {
            let side_field = m.side.as_ref().map_or("side", FieldRef::as_str);
            problems.push(format!("field `{side_field}` says long but field `{}` is negative ({qty})", m.qty));
            return None;
        }
        _ => {}
    }
    Some(Fields { qty, side: side.or_else(|| Side::of_qty(qty)), entry_price })
}

fn extract_metadata(value: Cow<'_, Value>, at: &str, origin: &str) -> Result<Metadata, String> {
    let map = match value {
        // Each symbol's metadata is moved into the result, not copied.
        Cow::Owned(Value::Object(map)) => map,
        Cow::Borrowed(Value::Object(map)) => map.clone(),
        other => {
            return Err(format!(
                "the value {} in {origin} is {}, expected an object keyed by symbol",
                where_at(at),
                json_kind(&other)
            ));
        }
    };
    let mut out = Metadata::new();
    let mut bad = Vec::new();
    for (key, v) in map {
        match Symbol::new_checked(&key) {
            Ok(s) => {
                out.insert(s, v);
            }
            Err(e) => bad.push(format!("`{}`: {e}", shown(&key))),
        }
    }
    if bad.is_empty() {
        Ok(out)
    } else {
        let keys = if bad.len() == 1 { "key is not a valid symbol" } else { "keys are not valid symbols" };
        Err(format!("{} {keys} {} in {origin}: {}", bad.len(), where_at(at), bad.join("; ")))
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use rust_decimal::dec;
    use serde_json::json;

    use super::*;
    use crate::model::SourceErrorKind;

    type Logs = BTreeMap<String, Sourced<LogSummary>>;

    fn field(s: &str) -> FieldRef {
        FieldRef::parse(s).unwrap()
    }

    /// The stock-bot layout: `state/executor_state.json`, `/opens` keyed by symbol.
    fn stock_bot() -> PositionsMapping {
        PositionsMapping {
            source: BotSource::File(PathBuf::from("state/executor_state.json")),
            at: "/opens".into(),
            symbol: field("symbol"),
            qty: field("qty"),
            entry_price: Some(field("entry_price")),
            side: None,
        }
    }

    /// The ordinis layout: the last record of `logs/positions.jsonl`, an array of positions.
    fn ordinis() -> PositionsMapping {
        PositionsMapping {
            source: BotSource::Log("positions".into()),
            at: "/positions".into(),
            symbol: field("symbol"),
            qty: field("quantity"),
            entry_price: Some(field("avg_price")),
            side: None,
        }
    }

    struct Bot {
        dir: tempfile::TempDir,
    }

    impl Bot {
        fn new() -> Self {
            Self { dir: tempfile::tempdir().unwrap() }
        }

        fn root(&self) -> &Path {
            self.dir.path()
        }

        fn write(&self, rel: &str, text: &str) -> PathBuf {
            let p = self.root().join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, text).unwrap();
            p
        }

        fn state(&self, text: &str) -> PathBuf {
            self.write("state/executor_state.json", text)
        }

        fn positions(&self, m: &PositionsMapping) -> Sourced<Vec<TrackedPosition>> {
            read_positions(m, self.root(), &Logs::new())
        }

        fn malformed(&self, m: &PositionsMapping) -> String {
            let e = self.positions(m).unwrap_err();
            assert_eq!((e.source.as_str(), e.kind), ("positions", SourceErrorKind::Malformed), "{e}");
            e.message
        }
    }

    fn tracked(symbol: &str, qty: Decimal, side: Option<Side>, entry_price: Option<Decimal>) -> TrackedPosition {
        TrackedPosition { symbol: Symbol::new(symbol), qty, side, entry_price }
    }

    fn summary_with(record: Option<Value>) -> LogSummary {
        LogSummary {
            file: "/bot/logs/positions.jsonl".into(),
            file_len: 100,
            newest_event: None,
            counts: Vec::new(),
            lines_scanned: 1,
            bytes_scanned: 100,
            scanned_from: 0,
            malformed_count: 0,
            malformed: Vec::new(),
            last_record: record,
            last_record_error: None,
            torn_tail: false,
        }
    }

    fn logs_with(summary: Sourced<LogSummary>) -> Logs {
        BTreeMap::from([("positions".to_owned(), summary)])
    }

    #[test]
    fn stock_bot_layout_with_numbers_as_ints_strings_and_floats() {
        let bot = Bot::new();
        bot.state(
            r#"{"opens": {
                "MSFT": {"qty": "5.5", "entry_price": 410.25, "entry_ts": "2025-12-19T15:00:00Z"},
                "AAPL": {"qty": 10, "entry_price": "180.5", "components": {"rsi": 30}},
                "NVDA": {"qty": 3.0, "entry_price": null},
                "COIN": {"qty": "-72"}
            }, "cash": "1000"}"#,
        );
        assert_eq!(
            bot.positions(&stock_bot()).unwrap(),
            vec![
                tracked("AAPL", dec!(10), Some(Side::Long), Some(dec!(180.5))),
                tracked("COIN", dec!(-72), Some(Side::Short), None),
                tracked("MSFT", dec!(5.5), Some(Side::Long), Some(dec!(410.25))),
                tracked("NVDA", dec!(3), Some(Side::Long), None),
            ]
        );
    }

    #[test]
    fn zero_quantities_are_kept_without_a_side() {
        let bot = Bot::new();
        bot.state(r#"{"opens": {"AAPL": {"qty": "0"}}}"#);
        assert_eq!(bot.positions(&stock_bot()).unwrap(), vec![tracked("AAPL", dec!(0), None, None)]);
    }

    #[test]
    fn an_empty_object_is_no_positions() {
        let bot = Bot::new();
        bot.state(r#"{"opens": {}}"#);
        assert_eq!(bot.positions(&stock_bot()).unwrap(), vec![]);
    }

    #[test]
    fn ordinis_layout_from_the_last_record_of_a_log() {
        let record = json!({
            "ts": "2025-12-19T16:05:11.878296+00:00",
            "equity": "100000.00",
            "positions": [
                {"symbol": "AAPL", "quantity": "10", "avg_price": 180.5},
                {"symbol": "CHWY", "quantity": -1596, "avg_price": "30.10"}
            ]
        });
        let logs = logs_with(Ok(summary_with(Some(record))));
        assert_eq!(
            read_positions(&ordinis(), Path::new("/nonexistent"), &logs).unwrap(),
            vec![
                tracked("AAPL", dec!(10), Some(Side::Long), Some(dec!(180.5))),
                tracked("CHWY", dec!(-1596), Some(Side::Short), Some(dec!(30.10))),
            ]
        );
    }

    #[test]
    fn ordinis_layout_end_to_end_through_the_scanner() {
        let bot = Bot::new();
        let log = bot.write(
            "logs/positions.jsonl",
            concat!(
                r#"{"ts": "2025-12-19T15:55:00+00:00", "positions": [{"symbol": "AAPL", "quantity": "5", "avg_price": 180}]}"#,
                "\n",
                r#"{"ts": "2025-12-19T16:00:00+00:00", "positions": [{"symbol": "AAPL", "quantity": "10", "avg_price": 180.5}]}"#,
                "\n",
                r#"{"ts": "2025-12-19T16:05:00+00:00", "positions": [{"symbol": "AAP"#,
            ),
        );
        let now = chrono::DateTime::parse_from_rfc3339("2025-12-19T16:06:00Z").unwrap().with_timezone(&chrono::Utc);
        let query = crate::model::LogQuery { windows: Vec::new(), last_record: true };
        let summary = super::super::jsonl::scan(&log, "positions", &field("ts"), &query, now);
        assert!(summary.as_ref().unwrap().torn_tail);
        let logs = logs_with(summary);
        assert_eq!(
            read_positions(&ordinis(), bot.root(), &logs).unwrap(),
            vec![tracked("AAPL", dec!(10), Some(Side::Long), Some(dec!(180.5)))]
        );
    }

    #[test]
    fn quantities_through_a_pointer() {
        let bot = Bot::new();
        bot.state(r#"{"opens": {"AAPL": {"fill": {"qty": "7", "px": "101.5"}}}}"#);
        let m = PositionsMapping { qty: field("/fill/qty"), entry_price: Some(field("/fill/px")), ..stock_bot() };
        assert_eq!(bot.positions(&m).unwrap(), vec![tracked("AAPL", dec!(7), Some(Side::Long), Some(dec!(101.5)))]);
        bot.state(r#"{"opens": {"AAPL": {"fill": {}}}}"#);
        let msg = bot.malformed(&m);
        assert!(msg.contains("`AAPL`: field `/fill/qty` is missing"), "{msg}");
    }

    #[test]
    fn the_side_field_signs_the_quantity() {
        let bot = Bot::new();
        bot.state(
            r#"{"opens": {
                "CHWY": {"qty": "1596", "side": "SHORT"},
                "BILL": {"qty": 413, "side": "sell"},
                "OKTA": {"qty": -170, "side": "short"},
                "AAPL": {"qty": 10, "side": "Buy"},
                "MSFT": {"qty": 5, "side": " long "},
                "COIN": {"qty": 72, "side": null},
                "NVDA": {"qty": 0, "side": "short"}
            }}"#,
        );
        let m = PositionsMapping { side: Some(field("side")), entry_price: None, ..stock_bot() };
        assert_eq!(
            bot.positions(&m).unwrap(),
            vec![
                tracked("AAPL", dec!(10), Some(Side::Long), None),
                tracked("BILL", dec!(-413), Some(Side::Short), None),
                tracked("CHWY", dec!(-1596), Some(Side::Short), None),
                tracked("COIN", dec!(72), Some(Side::Long), None),
                tracked("MSFT", dec!(5), Some(Side::Long), None),
                tracked("NVDA", dec!(0), Some(Side::Short), None),
                tracked("OKTA", dec!(-170), Some(Side::Short), None),
            ]
        );
    }

    #[test]
    fn a_long_side_with_a_negative_quantity_is_a_contradiction() {
        let bot = Bot::new();
        bot.state(r#"{"opens": {"AAPL": {"qty": -10, "side": "long"}, "MSFT": {"qty": 1, "side": "flat"}, "X": {"qty": 1, "side": 1}}}"#);
        let m = PositionsMapping { side: Some(field("side")), ..stock_bot() };
        let msg = bot.malformed(&m);
        assert!(msg.starts_with("3 bad position entries at `/opens` in "), "{msg}");
        assert!(msg.contains("`AAPL`: field `side` says long but field `qty` is negative (-10)"), "{msg}");
        assert!(msg.contains("`MSFT`: field `side`: `flat` is not long, short, buy or sell"), "{msg}");
        assert!(msg.contains("`X`: field `side` is a number, expected long, short, buy or sell"), "{msg}");
    }

    #[test]
    fn every_bad_entry_is_listed_object_form() {
        let bot = Bot::new();
        let path = bot.state(
            r#"{"opens": {
                "AAPL": {"entry_price": "180"},
                "MSFT": {"qty": "abc", "entry_price": "n/a"},
                "BAD SYM": {"qty": 1},
                "TSLA": 5,
                "COIN": {"qty": null},
                "OK": {"qty": 1}
            }}"#,
        );
        let msg = bot.malformed(&stock_bot());
        assert!(msg.starts_with(&format!("5 bad position entries at `/opens` in {}: ", path.display())), "{msg}");
        for want in [
            "`AAPL`: field `qty` is missing",
            "`MSFT`: field `qty`: `abc` is not a decimal number, field `entry_price`: `n/a` is not a decimal number",
            "`BAD SYM`: not a valid symbol: symbol `BAD SYM` contains the character ' '",
            "`TSLA`: is a number, expected an object",
            "`COIN`: field `qty` is null, expected a number",
        ] {
            assert!(msg.contains(want), "missing {want:?} in {msg}");
        }
        assert!(!msg.contains("`OK`"), "{msg}");
    }

    #[test]
    fn every_bad_entry_is_listed_array_form() {
        let bot = Bot::new();
        bot.write(
            "state/positions.json",
            r#"[
                {"symbol": "AAPL", "quantity": 1},
                {"symbol": "AAPL", "quantity": 2},
                {"quantity": 3},
                {"symbol": 42, "quantity": 4},
                {"symbol": "", "quantity": 5},
                "MSFT",
                {"symbol": "NVDA", "quantity": true}
            ]"#,
        );
        let m =
            PositionsMapping { source: BotSource::File("state/positions.json".into()), at: String::new(), ..ordinis() };
        let msg = bot.malformed(&m);
        assert!(msg.starts_with("6 bad position entries at the document root in "), "{msg}");
        for want in [
            "index 1 (`AAPL`): duplicate symbol (also at index 0)",
            "index 2: symbol field `symbol` is missing",
            "index 3: symbol field `symbol` is a number, expected a string",
            "index 4: field `symbol`: a symbol cannot be empty",
            "index 5: is a string, expected an object",
            "index 6 (`NVDA`): field `quantity` is the boolean true, expected a number",
        ] {
            assert!(msg.contains(want), "missing {want:?} in {msg}");
        }
    }

    #[test]
    fn an_entry_price_that_is_not_a_number_is_malformed() {
        let bot = Bot::new();
        bot.state(r#"{"opens": {"AAPL": {"qty": 1, "entry_price": {"px": 1}}}}"#);
        let msg = bot.malformed(&stock_bot());
        assert!(msg.contains("`AAPL`: field `entry_price` is an object, expected a number"), "{msg}");
    }

    #[test]
    fn a_missing_pointer_or_a_wrong_shape_is_malformed() {
        let bot = Bot::new();
        let path = bot.state(r#"{"open": {}}"#);
        assert_eq!(bot.malformed(&stock_bot()), format!("pointer `/opens` not found in {}", path.display()));
        bot.state(r#"{"opens": "AAPL"}"#);
        let msg = bot.malformed(&stock_bot());
        assert!(msg.starts_with("the value at `/opens` in "), "{msg}");
        assert!(msg.ends_with("is a string, expected an object keyed by symbol or an array of positions"), "{msg}");
    }

    #[test]
    fn a_missing_file_is_unavailable() {
        let bot = Bot::new();
        let e = bot.positions(&stock_bot()).unwrap_err();
        assert_eq!(e.kind, SourceErrorKind::Unavailable);
        assert_eq!(e.source, "positions");
        let want = format!("{} does not exist", bot.root().join("state/executor_state.json").display());
        assert_eq!(e.message, want);
    }

    #[test]
    fn a_directory_or_a_fifo_is_unavailable_and_never_blocks() {
        let bot = Bot::new();
        std::fs::create_dir_all(bot.root().join("state/executor_state.json")).unwrap();
        let e = bot.positions(&stock_bot()).unwrap_err();
        assert_eq!(e.kind, SourceErrorKind::Unavailable);
        assert!(e.message.ends_with("is not a regular file (it is a directory)"), "{e}");

        let fifo = bot.root().join("state/fifo.json");
        if std::process::Command::new("mkfifo").arg(&fifo).status().is_ok_and(|s| s.success()) {
            let m = PositionsMapping { source: BotSource::File("state/fifo.json".into()), ..stock_bot() };
            let e = bot.positions(&m).unwrap_err();
            assert_eq!(e.kind, SourceErrorKind::Unavailable);
            assert!(e.message.ends_with("is not a regular file (it is a FIFO)"), "{e}");
        }
    }

    #[test]
    fn a_file_over_64_mib_is_malformed() {
        let bot = Bot::new();
        let path = bot.state("{}");
        // Sparse: costs no disk and is never read.
        std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(MAX_STATE_BYTES + 1).unwrap();
        let msg = bot.malformed(&stock_bot());
        assert_eq!(msg, format!("{} is {} bytes, over the 64 MiB limit", path.display(), MAX_STATE_BYTES + 1));
    }

    #[test]
    fn an_empty_file_is_malformed() {
        let bot = Bot::new();
        let path = bot.state("");
        assert_eq!(bot.malformed(&stock_bot()), format!("{} is empty: probably being written", path.display()));
        bot.state(" \n");
        assert!(bot.malformed(&stock_bot()).ends_with("holds only whitespace (2 bytes): probably being written"));
    }

    #[test]
    fn a_half_written_file_is_malformed_with_its_position() {
        let bot = Bot::new();
        let text = "{\"opens\": {\n  \"AAPL\": {\"qty\": 1";
        let path = bot.state(text);
        let msg = bot.malformed(&stock_bot());
        assert_eq!(
            msg,
            format!(
                "{} is not valid JSON: EOF while parsing an object at line 2, column 19 (byte {}) \
                 (the file ends early: probably half-written)",
                path.display(),
                text.len() - 1
            )
        );
    }

    #[test]
    fn invalid_json_names_line_column_and_byte() {
        let bot = Bot::new();
        let text = "{\n  \"opens\": {\n    \"AAPL\": {\"qty\": x}\n  }\n}\n";
        let path = bot.state(text);
        let x = text.find('x').unwrap();
        assert_eq!(
            bot.malformed(&stock_bot()),
            format!("{} is not valid JSON: expected value at line 3, column 21 (byte {x})", path.display())
        );
        let text = "{\"opens\": {}} trailing";
        bot.state(text);
        let t = text.find('t').unwrap();
        assert!(bot.malformed(&stock_bot()).ends_with(&format!("trailing characters at line 1, column 15 (byte {t})")));
    }

    #[test]
    fn byte_offsets_from_line_and_column() {
        let b = b"ab\ncd\n\nef";
        assert_eq!(byte_offset(b, 1, 1), 0);
        assert_eq!(byte_offset(b, 1, 0), 0);
        assert_eq!(byte_offset(b, 2, 2), 4);
        assert_eq!(byte_offset(b, 4, 1), 7);
        assert_eq!(byte_offset(b, 9, 9), b.len());
    }

    #[test]
    fn log_sources_carry_the_logs_problem() {
        let m = ordinis();
        let root = Path::new("/nonexistent");

        let logs =
            logs_with(Err(SourceError::unavailable("log:positions", "/bot/logs/positions.jsonl does not exist")));
        let e = read_positions(&m, root, &logs).unwrap_err();
        assert_eq!(
            e,
            SourceError::unavailable("positions", "log `positions`: /bot/logs/positions.jsonl does not exist")
        );

        let logs = logs_with(Err(SourceError::malformed("log:positions", "bad")));
        assert_eq!(
            read_positions(&m, root, &logs).unwrap_err(),
            SourceError::malformed("positions", "log `positions`: bad")
        );

        let mut s = summary_with(Some(json!({"positions": []})));
        s.last_record_error = Some("invalid JSON at column 3: expected value (byte 120)".into());
        let e = read_positions(&m, root, &logs_with(Ok(s))).unwrap_err();
        assert_eq!(e.kind, SourceErrorKind::Malformed);
        assert_eq!(
            e.message,
            "log `positions`: the newest complete line of /bot/logs/positions.jsonl is not a usable record: \
             invalid JSON at column 3: expected value (byte 120)"
        );

        let e = read_positions(&m, root, &logs_with(Ok(summary_with(None)))).unwrap_err();
        assert_eq!(
            e,
            SourceError::malformed("positions", "log `positions` has no complete record (/bot/logs/positions.jsonl)")
        );

        let e = read_positions(&m, root, &logs_with(Ok(summary_with(Some(json!({"ts": 1})))))).unwrap_err();
        assert_eq!(
            e.message,
            "pointer `/positions` not found in the last record of log `positions` (/bot/logs/positions.jsonl)"
        );
    }

    fn metadata_mapping(at: &str) -> MetadataMapping {
        MetadataMapping { source: BotSource::File("state/position_metadata.json".into()), at: at.into() }
    }

    #[test]
    fn metadata_keyed_by_symbol() {
        let bot = Bot::new();
        bot.write(
            "state/position_metadata.json",
            r#"{"AAPL": {"entry_score": 0.8, "entry_ts": "2025-12-19T15:00:00Z"}, "MSFT": null}"#,
        );
        let got = read_metadata(&metadata_mapping(""), bot.root(), &Logs::new()).unwrap();
        assert_eq!(
            got,
            Metadata::from([
                (Symbol::new("AAPL"), json!({"entry_score": 0.8, "entry_ts": "2025-12-19T15:00:00Z"})),
                (Symbol::new("MSFT"), Value::Null),
            ])
        );
    }

    #[test]
    fn metadata_problems() {
        let bot = Bot::new();
        let path = bot.write("state/position_metadata.json", r#"{"meta": {"AAPL": {}, "A B": {}, "": 1}, "list": []}"#);
        let e = read_metadata(&metadata_mapping("/meta"), bot.root(), &Logs::new()).unwrap_err();
        assert_eq!(e.source, "metadata");
        assert_eq!(e.kind, SourceErrorKind::Malformed);
        assert_eq!(
            e.message,
            format!(
                "2 keys are not valid symbols at `/meta` in {}: ``: a symbol cannot be empty; \
                 `A B`: symbol `A B` contains the character ' '",
                path.display()
            )
        );
        let e = read_metadata(&metadata_mapping("/list"), bot.root(), &Logs::new()).unwrap_err();
        assert_eq!(
            e.message,
            format!("the value at `/list` in {} is an array, expected an object keyed by symbol", path.display())
        );
        let e = read_metadata(&metadata_mapping("/nope"), bot.root(), &Logs::new()).unwrap_err();
        assert_eq!(e.message, format!("pointer `/nope` not found in {}", path.display()));
        let e = read_metadata(&metadata_mapping(""), Path::new("/nonexistent"), &Logs::new()).unwrap_err();
        assert_eq!((e.source.as_str(), e.kind), ("metadata", SourceErrorKind::Unavailable));
    }

    #[test]
    fn metadata_from_a_log_record() {
        let m = MetadataMapping { source: BotSource::Log("positions".into()), at: "/meta".into() };
        let logs = logs_with(Ok(summary_with(Some(json!({"meta": {"AAPL": {"entry_score": 1}}})))));
        let got = read_metadata(&m, Path::new("/nonexistent"), &logs).unwrap();
        assert_eq!(got, Metadata::from([(Symbol::new("AAPL"), json!({"entry_score": 1}))]));
        let e = read_metadata(&m, Path::new("/nonexistent"), &logs_with(Ok(summary_with(None)))).unwrap_err();
        assert_eq!(e.source, "metadata");
    }
}
