//! The replay broker: reads a snapshot directory written by `tradewarden snapshot` (or by
//! hand). A missing broker file means that source was unavailable when recorded.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use super::wire;
use crate::model::{BrokerView, SourceError, SourceErrorKind, Sourced};

/// A snapshot directory.
#[derive(Debug, Clone)]
pub struct ReplayBroker {
    dir: PathBuf,
}

/// `DIR/snapshot.toml`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SnapshotMeta {
    taken_at: String,
    #[serde(default)]
    #[expect(dead_code, reason = "recorded for people reading the directory")]
    mode: Option<String>,
    #[serde(default)]
    #[expect(dead_code, reason = "recorded for people reading the directory")]
    recorded_by: Option<String>,
    /// Broker endpoints that failed when recorded, by source (`broker:positions`): replayed
    /// as the same error instead of "not recorded".
    #[serde(default)]
    errors: BTreeMap<String, RecordedError>,
}

/// A source error as `tradewarden snapshot` records it in `snapshot.toml`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordedError {
    /// `unavailable` or `malformed`.
    pub kind: SourceErrorKind,
    /// The message at the time.
    pub message: String,
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
        self.dir.join("bot")
    }

    /// `taken_at` from `DIR/snapshot.toml`: the audit's "now".
    ///
    /// # Errors
    /// A sentence naming the file and what was wrong.
    pub fn taken_at(&self) -> Result<DateTime<Utc>, String> {
        let path = self.dir.join("snapshot.toml");
        let text = std::fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let meta: SnapshotMeta = toml::from_str(&text).map_err(|e| format!("{}: {}", path.display(), e.message()))?;
        crate::timestamp::parse_timestamp(&meta.taken_at).map_err(|e| format!("{}: taken_at {e}", path.display()))
    }

    /// The broker errors recorded in `snapshot.toml` (none when it cannot be read; `taken_at`
    /// reports that).
    fn recorded_errors(&self) -> BTreeMap<String, RecordedError> {
        std::fs::read_to_string(self.dir.join("snapshot.toml"))
            .ok()
            .and_then(|t| toml::from_str::<SnapshotMeta>(&t).ok())
            .map(|m| m.errors)
            .unwrap_or_default()
    }

    fn read(&self, file: &str) -> Sourced<Vec<u8>> {
        let path = self.dir.join("broker").join(file);
        let source =
            format!("broker:{}", file.trim_end_matches(".json").replace("account_configurations", "configurations"));
        std::fs::read(&path).map_err(|e| match self.recorded_errors().remove(&source) {
            Some(r) => SourceError { source, kind: r.kind, message: format!("when recorded: {}", r.message) },
            None => SourceError::unavailable(source, format!("{} was not recorded ({e})", path.display())),
        })
    }

    fn parse<T>(&self, file: &str, parse: impl Fn(&[u8]) -> Result<T, String>) -> Sourced<T> {
        let body = self.read(file)?;
        let endpoint = file.trim_end_matches(".json").replace("account_configurations", "configurations");
        let path = self.dir.join("broker").join(file);
        parse(&body)
            .map_err(|e| SourceError::malformed(format!("broker:{endpoint}"), format!("{}: {e}", path.display())))
    }

    /// Everything recorded.
    #[must_use]
    pub fn view(&self) -> BrokerView {
        let configuration = if self.dir.join("broker/account_configurations.json").exists()
            || self.recorded_errors().contains_key("broker:configurations")
        {
            Some(self.parse("account_configurations.json", wire::parse_configuration))
        } else {
            None
        };
        // Optional: snapshots recorded without a settling rule (or before it was read) have none.
        let recent = super::alpaca::RECENT_ORDERS_FILE;
        let recent_orders = (self.dir.join("broker").join(recent).exists()
            || self.recorded_errors().contains_key(super::alpaca::RECENT_ORDERS_SOURCE))
        .then(|| self.parse(recent, wire::parse_orders));
        BrokerView {
            account: self.parse("account.json", wire::parse_account),
            positions: self.parse("positions.json", wire::parse_positions),
            orders: self.parse("orders.json", wire::parse_orders),
            clock: self.parse("clock.json", wire::parse_clock),
            configuration,
            recent_orders,
            bodies: BTreeMap::new(),
        }
    }
}
