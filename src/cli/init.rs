//! `tradewarden init [--dir DIR] [--layout stock-bot|ordinis|auto]`: writes a commented starter
//! `tradewarden.toml` beside a bot, from the shipped examples, and says what it guessed. It never
//! overwrites a file.

use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};

use super::{exit, print};
use crate::config::{BotSource, Config, MetadataMapping};
use crate::model::FieldRef;

/// The bot layouts tradewarden ships an example for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Layout {
    /// JSON state files (`state/executor_state.json`, `state/position_metadata.json`) and JSONL logs.
    StockBot,
    /// Everything JSONL; the positions are the last record of `logs/positions.jsonl`.
    Ordinis,
    /// Look at the bot's folder and pick one.
    Auto,
}

/// `tradewarden init`.
#[derive(Debug, Clone, Args)]
pub struct InitArgs {
    /// The bot's folder: the configuration is written there, with `[bot] root = "."`.
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub dir: PathBuf,
    /// The bot's layout.
    #[arg(long, value_enum, default_value_t = Layout::Auto)]
    pub layout: Layout,
}

const STOCK_BOT: &str = include_str!("../../examples/stock-bot/tradewarden.toml");
const ORDINIS: &str = include_str!("../../examples/ordinis/tradewarden.toml");
const ORDINIS_RULES: &str = include_str!("../../examples/ordinis/rules.toml");

/// The files the written configuration reads, relative to the bot's folder: each with the
/// table naming it and, for a log, its `time` field. Read back from the configuration itself,
/// so the list can never drift from the examples.
fn expected(cfg: &Config) -> Vec<(PathBuf, String, Option<FieldRef>)> {
    let mut out = Vec::new();
    if let BotSource::File(f) = &cfg.bot.positions.source {
        out.push((f.clone(), "[bot.positions]".to_owned(), None));
    }
    if let Some(MetadataMapping { source: BotSource::File(f), .. }) = &cfg.bot.metadata {
        out.push((f.clone(), "[bot.metadata]".to_owned(), None));
    }
    for (name, log) in &cfg.logs {
        out.push((log.file.clone(), format!("[logs.{name}]"), Some(log.time.clone())));
    }
    out
}

/// Whether the last complete line of a JSONL file (read from its last 64 KiB) is a JSON object
/// with the field `time`: `Some(false)` when it is not, `None` when there is no line to tell.
fn last_line_has(path: &Path, time: &FieldRef) -> Option<bool> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path).ok()?;
    let len = f.metadata().ok()?.len();
    f.seek(SeekFrom::Start(len.saturating_sub(64 << 10))).ok()?;
    let mut tail = Vec::new();
    f.read_to_end(&mut tail).ok()?;
    let text = String::from_utf8_lossy(&tail);
    let line = text.lines().rev().find(|l| !l.trim().is_empty())?;
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    Some(time.get(&v).is_some())
}

/// The layout of the bot in `dir`, and why: the file that told.
#[must_use]
pub fn guess(dir: &Path) -> (Layout, String) {
    if dir.join("state/executor_state.json").is_file() {
        (Layout::StockBot, "found state/executor_state.json".into())
    } else if dir.join("logs/positions.jsonl").is_file() {
        (Layout::Ordinis, "found logs/positions.jsonl".into())
    } else {
        (
            Layout::StockBot,
            "found neither state/executor_state.json nor logs/positions.jsonl: starting from the stock-bot \
             layout, whose [bot.positions] and [logs.*] you must point at the bot's own files"
                .into(),
        )
    }
}

/// The starter configuration of a layout: the example's, without its header, the bot at `.`.
#[must_use]
pub fn config_text(layout: Layout, why: &str) -> String {
    let example = if layout == Layout::Ordinis { ORDINIS } else { STOCK_BOT };
    // The example's own header explains the example; the settings start at `state_dir`.
    let start = example.find("\nstate_dir").map_or(0, |i| i + 1);
    let body = example[start..].replacen("root = \"bot\"", "root = \".\"", 1);
    let name = if layout == Layout::Ordinis { "ordinis" } else { "stock-bot" };
    format!(
        "# tradewarden beside this bot, written by `tradewarden init` (layout {name}: {why}).\n\
         # Check it:  tradewarden rules check -c tradewarden.toml\n\
         # Then, with paper keys in APCA_API_KEY_ID and APCA_API_SECRET_KEY:\n\
         #            tradewarden audit -c tradewarden.toml      (one audit, read-only)\n\
         #            tradewarden run -c tradewarden.toml        (the watchdog, observe mode)\n\n{body}"
    )
}

/// Runs `init`; the exit code (2 when a file is in the way or cannot be written).
///
/// # Errors
/// Writing to stdout.
pub fn run(args: &InitArgs) -> anyhow::Result<u8> {
    let dir = &args.dir;
    if !dir.is_dir() {
        eprintln!("error: {} is not a folder; pass the bot's folder with --dir", dir.display());
        return Ok(exit::ERROR);
    }
    let (layout, why) = match args.layout {
        Layout::Auto => guess(dir),
        chosen => (chosen, "chosen with --layout".to_owned()),
    };
    let mut files = vec![(dir.join("tradewarden.toml"), config_text(layout, &why))];
    if layout == Layout::Ordinis {
        files.push((dir.join("rules.toml"), ORDINIS_RULES.to_owned()));
    }
    if let Some((path, _)) = files.iter().find(|(p, _)| p.exists()) {
        eprintln!("error: {} exists; nothing written (init never overwrites a file)", path.display());
        return Ok(exit::ERROR);
    }
    for (path, text) in &files {
        if let Err(e) = std::fs::write(path, text) {
            eprintln!("error: cannot write {}: {e}", path.display());
            return Ok(exit::ERROR);
        }
    }
    let mut out = String::new();
    for (path, _) in &files {
        out.push_str(&format!("wrote {}\n", path.display()));
    }
    out.push_str(&format!("layout: {}\n", why));
    // Read back what was written: a starter that does not load is said, not hidden.
    let cfg = match Config::load(&files[0].0) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: the configuration written does not load:\n{e}");
            return Ok(exit::ERROR);
        }
    };
    for (file, table, time) in expected(&cfg) {
        let path = dir.join(&file);
        let seen = if path.is_file() { "found  " } else { "MISSING" };
        let stamp = match time.map(|t| (last_line_has(&path, &t), t)) {
            Some((Some(true), t)) => format!("; its last line has `{}`", t.as_str()),
            Some((Some(false), t)) => format!("; its last line has no `{}`: set `time` in {table}", t.as_str()),
            _ => String::new(),
        };
        out.push_str(&format!("  {seen} {}  ({table}{stamp})\n", file.display()));
    }
    out.push_str(&format!("next: tradewarden rules check -c {}\n", dir.join("tradewarden.toml").display()));
    print(&out)?;
    Ok(exit::CLEAN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_starter_config_is_the_example_with_the_bot_at_its_own_folder() {
        let text = config_text(Layout::StockBot, "found state/executor_state.json");
        assert!(text.starts_with("# tradewarden beside this bot, written by `tradewarden init` (layout stock-bot"));
        assert!(text.contains("\nstate_dir = \"state\"\n") && text.contains("\nroot = \".\"\n"), "{text}");
        assert!(!text.contains("examples/"), "no path into the repository: {text}");
        let text = config_text(Layout::Ordinis, "x");
        assert!(text.contains("log = \"positions\"") && text.contains("\nroot = \".\"\n"), "{text}");
    }
}
