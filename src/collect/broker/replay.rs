//! The replay broker: reads a snapshot directory written by `tradewarden snapshot` (or by
//! hand). A missing broker file means that source was unavailable when recorded.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use super::wire;
use crate::collect::snapshot_dir::{BOT_DIR, BROKER_DIR, BrokerFile, META_FILE, RecordedError, SnapshotMeta};
use crate::model::{BrokerView, SourceError, Sourced};

/// A snapshot directory.
#[derive(Debug, Clone)]
pub struct ReplayBroker {
    dir: PathBuf,
}

impl ReplayBroker {
    /// A replay of `dir`.
    #[must_use]
    pub fn new(dir: &Path) -> Self {
        Self { dir: dir.to_owned() }
    }

    /// The snapshot directory.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The bot root inside the snapshot: `DIR/bot`.
    #[must_use]
    pub fn bot_root(&self) -> PathBuf {
        self.dir.join(BOT_DIR)
    }

    /// `taken_at` from `DIR/snapshot.toml`: the audit's "now".
    ///
    /// # Errors
    /// A sentence naming the file and what was wrong.
    pub fn taken_at(&self) -> Result<DateTime<Utc>, String> {
        let meta = SnapshotMeta::read(&self.dir)?;
        meta.taken_at().map_err(|e| format!("{}: taken_at {e}", self.dir.join(META_FILE).display()))
    }

    /// The broker errors recorded in `snapshot.toml` (none when it cannot be read; `taken_at`
    /// reports that).
    fn recorded_errors(&self) -> BTreeMap<String, RecordedError> {
        SnapshotMeta::read(&self.dir).map(|m| m.errors).unwrap_or_default()
    }

    fn path(&self, file: BrokerFile) -> PathBuf {
        self.dir.join(BROKER_DIR).join(file.file_name())
    }

    fn read(&self, file: BrokerFile) -> Sourced<Vec<u8>> {
        let path = self.path(file);
        let source = file.source().to_owned();
        std::fs::read(&path).map_err(|e| match self.recorded_errors().remove(&source) {
            Some(r) => SourceError { source, kind: r.kind, message: format!("when recorded: {}", r.message) },
            None => SourceError::unavailable(source, format!("{} was not recorded ({e})", path.display())),
        })
    }

    fn parse<T>(&self, file: BrokerFile, parse: impl Fn(&[u8]) -> Result<T, String>) -> Sourced<T> {
        let body = self.read(file)?;
        parse(&body).map_err(|e| SourceError::malformed(file.source(), format!("{}: {e}", self.path(file).display())))
    }

    /// A read a snapshot may lack without having failed (the configurations and the recently
    /// closed orders: recorded before they were read at all, or when no rule needed them):
    /// `None`, not read, when neither recorded nor recorded as failed.
    fn parse_optional<T>(&self, file: BrokerFile, parse: impl Fn(&[u8]) -> Result<T, String>) -> Option<Sourced<T>> {
        (self.path(file).exists() || self.recorded_errors().contains_key(file.source()))
            .then(|| self.parse(file, parse))
    }

    /// Everything recorded.
    #[must_use]
    pub fn view(&self) -> BrokerView {
        BrokerView {
            account: self.parse(BrokerFile::Account, wire::parse_account),
            positions: self.parse(BrokerFile::Positions, wire::parse_positions),
            orders: self.parse(BrokerFile::Orders, wire::parse_orders),
            clock: self.parse(BrokerFile::Clock, wire::parse_clock),
            configuration: self.parse_optional(BrokerFile::Configurations, wire::parse_configuration),
            recent_orders: self.parse_optional(BrokerFile::RecentOrders, wire::parse_orders),
            bodies: BTreeMap::new(),
        }
    }
}
