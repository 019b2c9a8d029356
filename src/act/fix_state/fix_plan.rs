//! The data of a fix: what the planner reads ([`FixInput`], [`ReadFile`]) and what it plans
//! ([`FixPlan`], one [`FileFix`] per file, each with the [`Stamp`] of the file as read).

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::act::plan::{Plan, Scope, Step};
use crate::config::BotConfig;
use crate::model::Position;

/// What `fix_state` reads besides the files.
#[derive(Debug, Clone, Copy)]
pub struct FixInput<'a> {
    /// `[bot]`.
    pub bot: &'a BotConfig,
    /// The bot root.
    pub root: &'a Path,
    /// The broker's positions (fresh).
    pub broker: &'a [Position],
    /// Which symbols may change.
    pub scope: &'a Scope,
    /// `[actions.fix_state] template`.
    pub template: &'a Map<String, Value>,
    /// For `{now}` in the template.
    pub now: DateTime<Utc>,
}

/// A file as read: what the unchanged-check compares against, and the owner, group and mode
/// its replacement gets back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamp {
    /// Size in bytes.
    pub len: u64,
    /// Modification time.
    pub modified: SystemTime,
    /// SHA-256 of the content, hex.
    pub sha256: String,
    /// Device and inode: which file this is, whatever name (or hard link) led to it.
    pub file_id: (u64, u64),
    /// Owner uid.
    pub uid: u32,
    /// Group gid.
    pub gid: u32,
    /// Permission bits (with set-id and sticky bits, without the file type).
    pub mode: u32,
}

/// A bot file as read: what the planner edits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadFile {
    /// Relative to the bot root, as configured.
    pub rel: String,
    /// Absolute, every symlink resolved (inside the root): the file a fix replaces.
    pub path: PathBuf,
    /// The text.
    pub text: String,
    /// Its stamp.
    pub stamp: Stamp,
}

/// One file's fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileFix {
    /// Relative to the bot root, as configured.
    pub rel: String,
    /// The bot root.
    pub root: PathBuf,
    /// Absolute, every symlink resolved (inside the root): the file replaced.
    pub path: PathBuf,
    /// As read.
    pub stamp: Stamp,
    /// The text as read.
    pub before: String,
    /// The text to write.
    pub after: String,
    /// One phrase per change.
    pub changes: Vec<String>,
}

/// Every file's fix, and what was left alone.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FixPlan {
    /// Files with changes (positions first).
    pub files: Vec<FileFix>,
    /// What was left alone and why.
    pub notes: Vec<String>,
}

impl FixPlan {
    /// Nothing to change.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// The unified diff of every file.
    #[must_use]
    pub fn diff(&self) -> String {
        self.files
            .iter()
            .map(|f| {
                similar::TextDiff::from_lines(&f.before, &f.after)
                    .unified_diff()
                    .context_radius(3)
                    .header(&format!("a/{}", f.rel), &format!("b/{}", f.rel))
                    .to_string()
            })
            .collect()
    }

    /// As plan steps.
    #[must_use]
    pub fn plan(&self) -> Plan {
        Plan {
            steps: self
                .files
                .iter()
                .map(|f| Step::WriteFile { file: f.rel.clone(), changes: f.changes.clone() })
                .collect(),
            notes: self.notes.clone(),
        }
    }
}

/// SHA-256 in hex.
#[must_use]
pub fn sha256_hex(bytes: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, bytes).as_ref().iter().map(|b| format!("{b:02x}")).collect()
}
