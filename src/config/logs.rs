//! `[logs.NAME]`: the bot's JSONL logs, by name (rules and `[bot]` refer to them).

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::paths::relative_bot_path;
use super::reader::TableReader;
use crate::model::FieldRef;

/// `[logs.NAME]`.
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// The JSONL file, relative to the bot root.
    pub file: PathBuf,
    /// The event-time field.
    pub time: FieldRef,
}

pub(super) fn read_logs(top: &mut TableReader<'_, '_>) -> BTreeMap<String, LogConfig> {
    let mut out = BTreeMap::new();
    for (name, mut t) in top.named_tables("logs") {
        let file = t.require::<String>("file").and_then(|f| relative_bot_path(&t, "file", &f));
        let time = t.get_parsed("time", FieldRef::parse).unwrap_or(FieldRef::Name("ts".into()));
        t.finish(&["file", "time"]);
        if let Some(file) = file {
            out.insert(name, LogConfig { file, time });
        }
    }
    out
}
