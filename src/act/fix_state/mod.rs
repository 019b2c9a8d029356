//! `fix_state` (and `tradewarden fix`): rewrite the bot's positions file, and its metadata
//! file when configured, to match the broker.
//!
//! What changes, for symbols in scope:
//! - an entry the bot tracks that the broker does not hold is removed (orphaned);
//! - a position the broker holds that the bot does not track is added: quantity and average
//!   entry price from the broker, every other field from `[actions.fix_state] template`
//!   (default `{ added_by = "tradewarden", added_at = "{now}" }`; `{now}` and `{symbol}` in
//!   strings are replaced);
//! - a tracked quantity that differs from the broker's is corrected (and the side field, when
//!   mapped and present, follows the sign in the bot's own words: long/short or buy/sell);
//! - metadata: entries for symbols the broker does not hold are removed, and symbols it holds
//!   without an entry get one from the template.
//!
//! For a long-only bot a short at the broker is never written into its state (it would tell
//! the bot it holds a position it must not hold): it is left as is, with a note to flatten it.
//!
//! What does not change: every other byte. The file is edited in place through byte spans
//! (`json_edit`): key order, indentation, untouched entries, number formats (`10`, `20.0`,
//! `"5"`: a corrected quantity is written in the type the bot used, with at least its decimal
//! places) stay as the bot wrote them. The edited text is then checked against the intended
//! change as parsed JSON; any difference refuses the fix.
//!
//! Writing is refused when the file changed since it was read (size, modification time or
//! SHA-256, or its owner, group, mode or inode), or was modified within `quiet_for` (the bot is
//! probably writing it). Each file is backed up to `state_dir/backups/<name>.<timestamp>` first
//! (0600, tradewarden's own: never readable by more than the original), then replaced
//! atomically (temp file in the same folder, created 0600, given the original's owner, group
//! and mode, fsync, one more unchanged-check, rename, fsync of the folder): the bot, running as
//! its own user, can still read and write its state. Positions kept in a JSONL log (the ordinis
//! layout) are refused: a log is the bot's history, not a state file.
//!
//! One file, one write: when positions and metadata live in the same file (one path, or a
//! symlink to it), the metadata edit is planned on the positions edit's result and the file is
//! backed up and replaced once; two writes planned from the text as read would each undo the
//! other. The same file under two names (hard links) is refused.
//!
//! Files are read and re-checked through the collectors' `open_in_root`: a state file, or a
//! folder on its path, that is a symlink leading out of `[bot].root` is refused, so a fix never
//! reads or writes outside the bot's directory. A symlink inside the root is followed: the
//! file it leads to is replaced, and the link is kept.
//!
//! The module is split in two halves with the data between them: `edit` is the pure
//! planner (texts in, a [`FixPlan`] with each file's new text and diff out; `json_edit` is
//! its byte-span JSON editor), `file` the I/O (read inside the root, unchanged-checks,
//! backup, atomic write keeping owner, group and mode); `busy` says when the bot is busy
//! with its files; `fix_plan` holds the data.
//! [`plan`] joins them: read, then plan.

mod busy;
mod edit;
mod file;
mod fix_plan;
pub mod json_edit;

pub use busy::{check_quiet, working_orders};
pub use edit::{log_refusal, plan_edits};
pub(crate) use file::read_in_root;
pub use file::{Written, check_unchanged, confirm, read_file, read_stamped, write};
pub use fix_plan::{FileFix, FixInput, FixPlan, ReadFile, Stamp, sha256_hex};

use std::path::Path;

use crate::config::{BotConfig, BotSource, MetadataMapping};

/// The bot's files a fix is planned from, as read: the read half of [`plan`], done at the edge
/// so the planner (`act::planner::plan_for`) stays pure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BotFiles {
    /// The positions file.
    pub positions: ReadFile,
    /// The metadata file, when one is configured: read, or why not. It is reported in its
    /// turn: a positions file the planner refuses is reported first.
    pub metadata: Option<Result<ReadFile, String>>,
}

/// Reads the bot's positions file, and its metadata file when configured, inside `root`.
///
/// # Errors
/// A refusal: positions kept in a log, or the positions file missing or unreadable.
pub fn read_bot_files(bot: &BotConfig, root: &Path) -> Result<BotFiles, String> {
    let rel = match &bot.positions.source {
        BotSource::Log(log) => return Err(log_refusal(log)),
        BotSource::File(rel) => rel,
    };
    let positions = read_file(root, rel)?;
    let metadata = match &bot.metadata {
        Some(MetadataMapping { source: BotSource::File(mrel), .. }) => Some(read_file(root, mrel)),
        _ => None,
    };
    Ok(BotFiles { positions, metadata })
}

/// Plans the fix from the files as they are now and the broker's positions: reads them
/// ([`read_bot_files`]), then plans the edits (`edit`).
///
/// # Errors
/// A refusal: positions kept in a log, a file missing or not understood (no action on
/// incomplete data), or an edit that would not produce exactly the intended change.
pub fn plan(input: &FixInput<'_>) -> Result<FixPlan, String> {
    let files = read_bot_files(input.bot, input.root)?;
    plan_edits(input, files.positions, files.metadata)
}

#[cfg(test)]
mod tests;
