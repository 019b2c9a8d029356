//! `[bot]`: where the bot keeps its positions and metadata (a JSON file or a log's last record).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::logs::LogConfig;
use super::paths::{relative_bot_path, resolve};
use super::reader::TableReader;
use crate::model::{FieldRef, check_pointer};

/// Where the bot keeps a view: a JSON file under the bot root, or the last record of a log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BotSource {
    /// A JSON file, relative to the bot root.
    File(PathBuf),
    /// The last record of the named `[logs.NAME]`.
    Log(String),
}

/// `[bot.positions]`: how to read the positions the bot tracks.
#[derive(Debug, Clone)]
pub struct PositionsMapping {
    /// File or log.
    pub source: BotSource,
    /// JSON pointer to an object keyed by symbol, or to an array.
    pub at: String,
    /// Array form: the field naming the symbol.
    pub symbol: FieldRef,
    /// The quantity field.
    pub qty: FieldRef,
    /// The entry-price field, if the bot keeps one.
    pub entry_price: Option<FieldRef>,
    /// The side field; else the sign of qty.
    pub side: Option<FieldRef>,
}

/// `[bot.metadata]`: per-position metadata keyed by symbol.
#[derive(Debug, Clone)]
pub struct MetadataMapping {
    /// File or log.
    pub source: BotSource,
    /// JSON pointer to the object keyed by symbol (`""` = the root).
    pub at: String,
}

/// `[bot]`.
#[derive(Debug, Clone)]
pub struct BotConfig {
    /// The base of every bot path.
    pub root: PathBuf,
    /// The bot never means to hold a short.
    pub long_only: bool,
    /// Its positions.
    pub positions: PositionsMapping,
    /// Its metadata, if any.
    pub metadata: Option<MetadataMapping>,
}

pub(super) fn read_source(r: &mut TableReader<'_, '_>, logs: &BTreeMap<String, LogConfig>) -> Option<BotSource> {
    match (r.has("file"), r.has("log")) {
        (true, true) => {
            r.problem_key("log", format!("{} takes `file` or `log`, not both", r.name()));
            let _ = r.raw("file");
            let _ = r.raw("log");
            None
        }
        (false, false) => {
            r.problem(format!("{} needs `file` (a JSON file) or `log` (the last record of a [logs.NAME])", r.name()));
            None
        }
        (true, false) => {
            let f: String = r.require("file")?;
            relative_bot_path(r, "file", &f).map(BotSource::File)
        }
        (false, true) => {
            let name: String = r.require("log")?;
            if logs.contains_key(&name) {
                Some(BotSource::Log(name))
            } else {
                r.problem_key("log", format!("{} names log `{name}`, but there is no [logs.{name}]", r.name()));
                None
            }
        }
    }
}

pub(super) fn read_bot(
    r: Option<TableReader<'_, '_>>,
    dir: &Path,
    logs: &BTreeMap<String, LogConfig>,
) -> Option<BotConfig> {
    let Some(mut r) = r else {
        // Report at the top of the file: [bot] is required.
        return None;
    };
    let root = resolve(dir, &r.get::<String>("root").unwrap_or_else(|| ".".into()));
    let long_only = r.get::<bool>("long_only").unwrap_or(true);
    let positions = match r.table("positions") {
        Some(mut p) => {
            let source = read_source(&mut p, logs);
            let at = p.get_parsed("at", |s| check_pointer(s).map(|()| s.to_owned())).unwrap_or_default();
            let symbol = p.get_parsed("symbol", FieldRef::parse).unwrap_or(FieldRef::Name("symbol".into()));
            let qty = p.get_parsed("qty", FieldRef::parse).unwrap_or(FieldRef::Name("qty".into()));
            let entry_price = p.get_parsed("entry_price", FieldRef::parse);
            let side = p.get_parsed("side", FieldRef::parse);
            p.finish(&["file", "log", "at", "symbol", "qty", "entry_price", "side"]);
            source.map(|source| PositionsMapping { source, at, symbol, qty, entry_price, side })
        }
        None => {
            r.problem("[bot] needs a [bot.positions] table: where the bot keeps its open positions");
            None
        }
    };
    let metadata = match r.table("metadata") {
        Some(mut m) => {
            let source = read_source(&mut m, logs);
            let at = m.get_parsed("at", |s| check_pointer(s).map(|()| s.to_owned())).unwrap_or_default();
            m.finish(&["file", "log", "at"]);
            Some(source.map(|source| MetadataMapping { source, at }))
        }
        None => None,
    };
    r.finish(&["root", "long_only", "positions", "metadata"]);
    Some(BotConfig {
        root,
        long_only,
        positions: positions?,
        metadata: match metadata {
            Some(m) => Some(m?),
            None => None,
        },
    })
}
