//! The bot's side: JSON state files and JSONL logs, read through the configured mapping.

pub(crate) mod file;
pub mod jsonl;
mod record;
pub mod state;
mod text;

#[cfg(test)]
mod hostile_tests;

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, Utc};

use crate::config::Config;
use crate::model::{BotView, LogSummary, Sourced};

/// Reads the bot's logs (each scanned only as far back as the rules need), then its
/// positions and metadata (which may come from the last record of a log).
#[must_use]
pub fn collect_bot(
    config: &Config,
    root: &Path,
    now: DateTime<Utc>,
) -> (BotView, BTreeMap<String, Sourced<LogSummary>>) {
    let queries = config.log_queries();
    let mut logs = BTreeMap::new();
    for (name, lc) in &config.logs {
        let query = queries.get(name).cloned().unwrap_or_default();
        logs.insert(name.clone(), jsonl::scan_in(root, &lc.file, name, &lc.time, &query, now));
    }
    let positions = state::read_positions(&config.bot.positions, root, &logs);
    let metadata = config.bot.metadata.as_ref().map(|m| state::read_metadata(m, root, &logs));
    (BotView { positions, metadata }, logs)
}
