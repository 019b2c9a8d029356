//! Recording a snapshot directory (the writer of [`super::snapshot_dir`]): what one audit
//! read, so that `audit --replay DIR` reproduces the same findings. `tradewarden snapshot`
//! records from the live broker ([`record`]); the demo writes the snapshot it just collected
//! ([`write_snapshot`]).
//!
//! The directory is written under a temporary name next to DIR and renamed into place, so a
//! crash never leaves a half-written snapshot under DIR. An existing non-empty DIR is refused.
//! The bot's JSON files are copied after the collection: a bot writing them in between makes
//! the copy newer than what was audited (the logs are not affected: exactly the scanned byte
//! range is copied, whatever was appended since).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use crate::clock::Clock;
use crate::collect::bot::file::open_in_root;
use crate::collect::bot::state::MAX_STATE_BYTES;
use crate::collect::broker::Broker;
use crate::collect::snapshot_dir::{BOT_DIR, BROKER_DIR, META_FILE, RecordedError, SnapshotMeta};
use crate::collect::{CollectError, bot_root, collect};
use crate::config::{BotSource, Config};
use crate::model::{Mode, Snapshot, SourceError};

/// Why nothing was recorded.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The target exists and is not an empty directory.
    #[error("`{0}` already exists and is not an empty directory; snapshot never overwrites (choose a new directory)")]
    NotEmpty(PathBuf),
    /// The broker is a replay: there is nothing live to record.
    #[error("snapshot records the live broker, but [broker] kind is \"replay\"; copy the snapshot directory instead")]
    NotLive,
    /// Writing failed.
    #[error("cannot write `{path}`: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// Collection could not start.
    #[error(transparent)]
    Collect(#[from] CollectError),
}

/// What was recorded.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// The snapshot directory.
    pub dir: PathBuf,
    /// The collection's time: the replay's "now".
    pub taken_at: DateTime<Utc>,
    /// Paper or live.
    pub mode: Mode,
    /// `DIR/broker/` files written.
    pub broker_files: Vec<String>,
    /// Bot JSON files copied, relative to the bot root.
    pub bot_files: Vec<PathBuf>,
    /// Log tails copied.
    pub log_tails: Vec<LogTail>,
    /// Every source that failed (recorded as failed).
    pub source_errors: Vec<SourceError>,
}

/// One log tail copied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogTail {
    /// The log's name (`[logs.NAME]`).
    pub name: String,
    /// Its file, relative to the bot root.
    pub file: PathBuf,
    /// The first byte copied (offset in the original file).
    pub from: u64,
    /// Bytes copied.
    pub len: u64,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> RecordError + '_ {
    move |source| RecordError::Io { path: path.to_owned(), source }
}

/// Refuses a target that exists and is not an empty directory.
fn check_target(out: &Path) -> Result<(), RecordError> {
    match std::fs::read_dir(out).map(|mut entries| entries.next().is_none()) {
        Ok(true) => Ok(()),
        Ok(false) => Err(RecordError::NotEmpty(out.to_owned())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(_) if out.exists() => Err(RecordError::NotEmpty(out.to_owned())),
        Err(e) => Err(io(out)(e)),
    }
}

/// Collects once from the live broker and the bot's files, and writes the snapshot directory.
///
/// # Errors
/// `NotEmpty` for an existing non-empty target, `NotLive` for a replay broker, `Io` when
/// writing fails (the target is then left untouched).
pub async fn record(config: &Config, broker: &Broker, clock: &dyn Clock, out: &Path) -> Result<Recorded, RecordError> {
    if matches!(broker, Broker::Replay(_)) {
        return Err(RecordError::NotLive);
    }
    check_target(out)?;
    let snap = collect(config, broker, clock).await?;
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(io(&parent))?;
    let staging = tempfile::Builder::new().prefix(".tradewarden-snapshot-").tempdir_in(&parent).map_err(io(&parent))?;
    let mut recorded = write_snapshot(config, &snap, &bot_root(config, broker), staging.path())?;
    // Re-check: the target may have been filled while the broker was being read.
    check_target(out)?;
    if out.exists() {
        std::fs::remove_dir(out).map_err(io(out))?;
    }
    let path = staging.keep();
    std::fs::rename(&path, out).map_err(io(out))?;
    recorded.dir = out.to_owned();
    Ok(recorded)
}

/// Writes the snapshot of `snap` into the (empty) directory `dir`.
///
/// # Errors
/// When a file cannot be written.
pub fn write_snapshot(config: &Config, snap: &Snapshot, root: &Path, dir: &Path) -> Result<Recorded, RecordError> {
    let errors: BTreeMap<String, RecordedError> = snap
        .broker
        .errors()
        .into_iter()
        .map(|e| (e.source.clone(), RecordedError { kind: e.kind, message: e.message.clone() }))
        .collect();
    let meta = SnapshotMeta::new(snap.taken_at, snap.mode.as_str(), errors);
    let toml_text = meta.to_toml().map_err(|e| io(dir)(std::io::Error::other(e)))?;
    let meta_path = dir.join(META_FILE);
    std::fs::write(&meta_path, toml_text).map_err(io(&meta_path))?;

    let broker_dir = dir.join(BROKER_DIR);
    std::fs::create_dir_all(&broker_dir).map_err(io(&broker_dir))?;
    let mut broker_files = Vec::new();
    for (file, body) in &snap.broker.bodies {
        let path = broker_dir.join(file);
        std::fs::write(&path, body).map_err(io(&path))?;
        broker_files.push(file.clone());
    }

    let bot_dir = dir.join(BOT_DIR);
    std::fs::create_dir_all(&bot_dir).map_err(io(&bot_dir))?;
    let mut bot_files: Vec<PathBuf> = Vec::new();
    let sources = [Some(&config.bot.positions.source), config.bot.metadata.as_ref().map(|m| &m.source)];
    for rel in sources.iter().flatten().filter_map(|s| match s {
        BotSource::File(rel) => Some(rel),
        BotSource::Log(_) => None,
    }) {
        if bot_files.contains(rel) {
            continue;
        }
        let dst = bot_dir.join(rel);
        if let Some(p) = dst.parent() {
            std::fs::create_dir_all(p).map_err(io(p))?;
        }
        // Opened like the collector opens it: a file that is missing, not a regular file (a
        // FIFO would block a plain copy) or outside the bot root (a symlink out of it would
        // copy any file into the snapshot) is not copied; the audit reported why, and the
        // replay sees it missing.
        let src = root.join(rel);
        let Ok((file, _)) = open_in_root(root, &src) else { continue };
        let mut out = File::create(&dst).map_err(io(&dst))?;
        std::io::copy(&mut file.take(MAX_STATE_BYTES + 1), &mut out).map_err(io(&src))?;
        out.sync_all().map_err(io(&dst))?;
        bot_files.push(rel.clone());
    }

    let mut log_tails = Vec::new();
    for (name, lc) in &config.logs {
        let Some(Ok(summary)) = snap.logs.get(name) else { continue };
        let feeds_bot = sources.iter().flatten().any(|s| matches!(s, BotSource::Log(n) if n == name));
        let dst = bot_dir.join(&lc.file);
        if let Some(p) = dst.parent() {
            std::fs::create_dir_all(p).map_err(io(p))?;
        }
        let src = root.join(&lc.file);
        let Ok((file, _)) = open_in_root(root, &src) else { continue };
        let (from, len) = copy_tail(file, &dst, summary.scanned_from, summary.file_len, feeds_bot).map_err(io(&src))?;
        log_tails.push(LogTail { name: name.clone(), file: lc.file.clone(), from, len });
    }

    Ok(Recorded {
        dir: dir.to_owned(),
        taken_at: snap.taken_at,
        mode: snap.mode,
        broker_files,
        bot_files,
        log_tails,
        source_errors: snap.source_errors().into_iter().cloned().collect(),
    })
}

/// The start of the line offset `pos` is in: just after the last `\n` before `pos`, or 0.
/// A `pos` that is already a line start is returned unchanged.
fn line_start(file: &mut File, pos: u64) -> std::io::Result<u64> {
    const CHUNK: u64 = 64 * 1024;
    let mut end = pos;
    let mut buf = vec![0u8; usize::try_from(CHUNK).unwrap_or(65_536)];
    while end > 0 {
        let start = end.saturating_sub(CHUNK);
        let n = usize::try_from(end - start).unwrap_or(0);
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(&mut buf[..n])?;
        if let Some(i) = memchr::memrchr(b'\n', &buf[..n]) {
            return Ok(start + i as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}

/// Copies bytes `[from, file_len)` of the open log `file` to `dst`, where `from` is `scanned_from` moved
/// back to the start of its line, and, with `last_record`, back to the start of the last
/// complete (newline-terminated) line. Returns `(from, bytes copied)`. When the file shrank
/// since the scan (rotated), what is left is copied.
///
/// # Errors
/// When reading or writing fails.
pub fn copy_tail(
    mut file: File,
    dst: &Path,
    scanned_from: u64,
    file_len: u64,
    last_record: bool,
) -> std::io::Result<(u64, u64)> {
    let end = file_len.min(file.metadata()?.len());
    let mut from = line_start(&mut file, scanned_from.min(end))?;
    if last_record && end > 0 {
        // The last '\n' before `end` terminates the last complete line; its start is the
        // line start before that newline.
        let after_last_newline = line_start(&mut file, end)?;
        if after_last_newline > 0 {
            from = from.min(line_start(&mut file, after_last_newline - 1)?);
        }
    }
    file.seek(SeekFrom::Start(from))?;
    let mut out = File::create(dst)?;
    let copied = std::io::copy(&mut (&mut file).take(end - from), &mut out)?;
    out.sync_all()?;
    Ok((from, copied))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tail(content: &str, scanned_from: u64, file_len: u64, last_record: bool) -> (u64, String) {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("a.jsonl");
        let dst = dir.path().join("b.jsonl");
        std::fs::write(&src, content).unwrap();
        let (from, len) = copy_tail(File::open(&src).unwrap(), &dst, scanned_from, file_len, last_record).unwrap();
        let out = std::fs::read_to_string(&dst).unwrap();
        assert_eq!(out.len() as u64, len);
        (from, out)
    }

    #[test]
    fn copies_exactly_the_scanned_range() {
        let text = "{\"a\":1}\n{\"a\":2}\n{\"a\":3}\n";
        assert_eq!(tail(text, 8, 24, false), (8, "{\"a\":2}\n{\"a\":3}\n".into()));
        // Appended after the scan: not copied.
        let grown = format!("{text}{{\"a\":4}}\n");
        assert_eq!(tail(&grown, 16, 24, false), (16, "{\"a\":3}\n".into()));
        // Nothing scanned (an empty log): an empty file.
        assert_eq!(tail("", 0, 0, false), (0, String::new()));
    }

    #[test]
    fn widens_to_whole_lines_and_the_last_record() {
        let text = "{\"a\":1}\n{\"a\":2}\n{\"a\":3}\n{\"torn\":";
        // Mid-line start: back to the line's start.
        assert_eq!(tail(text, 11, 32, false).0, 8);
        // Scanned only the torn tail, but the positions come from this log: include the last
        // complete record.
        assert_eq!(tail(text, 24, 32, true), (16, "{\"a\":3}\n{\"torn\":".into()));
        assert_eq!(tail(text, 24, 32, false), (24, "{\"torn\":".into()));
        // A file with no newline at all.
        assert_eq!(tail("{\"a\":1}", 7, 7, true), (0, "{\"a\":1}".into()));
    }

    #[test]
    fn refuses_a_non_empty_target() {
        let dir = tempfile::tempdir().unwrap();
        assert!(check_target(&dir.path().join("new")).is_ok());
        assert!(check_target(dir.path()).is_ok());
        std::fs::write(dir.path().join("x"), "").unwrap();
        assert!(matches!(check_target(dir.path()), Err(RecordError::NotEmpty(_))));
        assert!(matches!(check_target(&dir.path().join("x")), Err(RecordError::NotEmpty(_))));
    }

    /// `write_snapshot` then a replay of the directory: the same broker view (a failed read
    /// replayed as failed, "when recorded"), the same bot view, the same time.
    #[tokio::test]
    async fn a_written_snapshot_replays_the_same_view() {
        use chrono::TimeZone;

        use crate::collect::broker::replay::ReplayBroker;
        use crate::collect::broker::wire;
        use crate::collect::snapshot_dir::BrokerFile;
        use crate::model::BrokerView;

        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("bot")).unwrap();
        std::fs::write(root.join("bot/positions.json"), r#"{"opens": {"AAPL": {"qty": 10, "entry_price": 180}}}"#)
            .unwrap();
        std::fs::write(
            root.join("rules.toml"),
            "[[rule]]\nid = \"no-shorts\"\ncheck = \"no_short_positions\"\nseverity = \"critical\"\n",
        )
        .unwrap();
        std::fs::write(
            root.join("tradewarden.toml"),
            "state_dir = \"state\"\nrules = [\"rules.toml\"]\n[broker]\nkind = \"alpaca\"\n\
             base_url = \"http://127.0.0.1:9\"\n[bot]\nroot = \"bot\"\n[bot.positions]\n\
             file = \"positions.json\"\nat = \"/opens\"\n",
        )
        .unwrap();
        let cfg = Config::load(&root.join("tradewarden.toml")).unwrap_or_else(|e| panic!("{e}"));

        // Alpaca bodies: a long and a short, an open order, a filled one.
        let taken_at = Utc.with_ymd_and_hms(2026, 11, 20, 15, 30, 0).unwrap() + chrono::Duration::milliseconds(125);
        let clock = crate::clock::ManualClock::new(taken_at);
        let order = |id: &str, symbol: &str, side: &str, status: &str| {
            format!(
                r#"{{"id":"{id}","client_order_id":"c-{id}","symbol":"{symbol}","side":"{side}","qty":"5",
                    "filled_qty":"0","type":"limit","limit_price":"200","status":"{status}",
                    "created_at":"2026-11-20T15:29:00Z"}}"#
            )
        };
        let bodies: BTreeMap<String, Vec<u8>> = [
            (BrokerFile::Account, r#"{"id":"291f9c46-9fe1-49e8-934f-934869bb2adf","account_number":"PA1","status":"ACTIVE","cash":"1000.5","equity":"100454.55","shorting_enabled":true}"#.to_owned()),
            (BrokerFile::Positions, r#"[{"symbol":"AAPL","qty":"10","side":"long","avg_entry_price":"180"},{"symbol":"CHWY","qty":"-20","side":"short","avg_entry_price":"30.5"}]"#.to_owned()),
            (BrokerFile::Orders, format!("[{}]", order("o-1", "AAPL", "sell", "new"))),
            (BrokerFile::Configurations, r#"{"no_shorting":false,"suspend_trade":false,"max_margin_multiplier":"2"}"#.to_owned()),
            (BrokerFile::RecentOrders, format!("[{}]", order("o-2", "CHWY", "buy", "filled"))),
        ]
        .into_iter()
        .map(|(f, b)| (f.file_name().to_owned(), b.into_bytes()))
        .collect();
        let file = |f: BrokerFile| bodies[f.file_name()].as_slice();
        let broker = BrokerView {
            account: Ok(wire::parse_account(file(BrokerFile::Account)).unwrap()),
            positions: Ok(wire::parse_positions(file(BrokerFile::Positions)).unwrap()),
            orders: Ok(wire::parse_orders(file(BrokerFile::Orders)).unwrap()),
            clock: Err(SourceError::unavailable(BrokerFile::Clock.source(), "HTTP 500")),
            configuration: Some(Ok(wire::parse_configuration(file(BrokerFile::Configurations)).unwrap())),
            recent_orders: Some(Ok(wire::parse_orders(file(BrokerFile::RecentOrders)).unwrap())),
            bodies,
        };
        assert_eq!(broker.positions.as_ref().map(Vec::len), Ok(2));
        assert_eq!(broker.recent_orders.as_ref().map(|r| r.as_ref().map(Vec::len)), Some(Ok(1)));
        let (bot, logs) = super::super::bot::collect_bot(&cfg, &cfg.bot.root, taken_at);
        assert!(bot.positions.is_ok(), "{:?}", bot.positions);
        let snap = Snapshot { taken_at, mode: Mode::Paper, broker, bot, logs };

        let out = root.join("snap");
        std::fs::create_dir_all(&out).unwrap();
        let rec = write_snapshot(&cfg, &snap, &cfg.bot.root, &out).unwrap();
        assert_eq!(rec.broker_files.len(), 5, "a failed read has no file");
        assert_eq!(rec.bot_files, [PathBuf::from("positions.json")]);

        let replay = Broker::Replay(ReplayBroker::new(&out));
        let replayed = collect(&cfg, &replay, &clock).await.unwrap();
        assert_eq!(replayed.taken_at, snap.taken_at);
        assert_eq!(replayed.mode, Mode::Replay);
        let mut expected = snap.broker.clone();
        expected.bodies.clear();
        expected.clock = Err(SourceError::unavailable(BrokerFile::Clock.source(), "when recorded: HTTP 500"));
        assert_eq!(replayed.broker, expected);
        assert_eq!(replayed.bot, snap.bot);
    }
}
