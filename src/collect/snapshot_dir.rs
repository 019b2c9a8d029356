//! The snapshot directory format (design.md §3): what `tradewarden snapshot` writes
//! ([`super::record`]) and `audit --replay DIR` reads ([`super::broker::replay`]). Both sides
//! take the file names, the broker table and `snapshot.toml` from here, so they cannot drift.
//!
//! ```text
//! DIR/snapshot.toml          taken_at (the collection's "now"), mode, and the broker errors
//! DIR/broker/*.json          the response bodies exactly as received; a failed endpoint has no file
//! DIR/bot/<path>             the bot's positions/metadata JSON files, copied whole (not a
//!                            file the collector refuses: missing, not regular, or leading
//!                            outside the bot root)
//! DIR/bot/<log path>         each log's tail: the bytes the scan read (`scanned_from` to
//!                            `file_len`), widened to whole lines, and to the last complete
//!                            record when the bot's positions or metadata come from that log
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use crate::model::SourceErrorKind;

/// `DIR/snapshot.toml`.
pub const META_FILE: &str = "snapshot.toml";
/// `DIR/broker/`: the broker's response bodies.
pub const BROKER_DIR: &str = "broker";
/// `DIR/bot/`: the bot's files and log tails, at their paths under the bot root.
pub const BOT_DIR: &str = "bot";

/// The first line of `snapshot.toml`, for people who find the directory.
const META_HEADER: &str = "# Recorded by `tradewarden snapshot`. Replay: tradewarden audit -c CONFIG --replay DIR\n";

/// A broker read recorded in a snapshot: the one table of its source name (in findings,
/// errors and `snapshot.toml`) and its file under `DIR/broker/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BrokerFile {
    /// `GET /v2/account`.
    Account,
    /// `GET /v2/positions`.
    Positions,
    /// `GET /v2/orders?status=open`.
    Orders,
    /// `GET /v2/clock`.
    Clock,
    /// `GET /v2/account/configurations`.
    Configurations,
    /// `GET /v2/orders?status=closed&after=...`: the recently closed orders.
    RecentOrders,
}

impl BrokerFile {
    /// Every broker file, in the order the view lists them.
    pub const ALL: [Self; 6] =
        [Self::Account, Self::Positions, Self::Orders, Self::Clock, Self::Configurations, Self::RecentOrders];

    /// The file under `DIR/broker/`.
    #[must_use]
    pub const fn file_name(self) -> &'static str {
        match self {
            Self::Account => "account.json",
            Self::Positions => "positions.json",
            Self::Orders => "orders.json",
            Self::Clock => "clock.json",
            Self::Configurations => "account_configurations.json",
            Self::RecentOrders => "recent_orders.json",
        }
    }

    /// The source name: `broker:positions`.
    #[must_use]
    pub const fn source(self) -> &'static str {
        match self {
            Self::Account => "broker:account",
            Self::Positions => "broker:positions",
            Self::Orders => "broker:orders",
            Self::Clock => "broker:clock",
            Self::Configurations => "broker:configurations",
            Self::RecentOrders => "broker:recent_orders",
        }
    }
}

/// `DIR/snapshot.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotMeta {
    /// The collection's time, RFC 3339: the replay's "now".
    pub taken_at: String,
    /// `paper` or `live`; for people reading the directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// The tradewarden that wrote it; for people reading the directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorded_by: Option<String>,
    /// Broker reads that failed when recorded, by source (`broker:positions`): replayed as the
    /// same error instead of "not recorded".
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub errors: BTreeMap<String, RecordedError>,
}

/// A source error as `tradewarden snapshot` records it in `snapshot.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordedError {
    /// `unavailable` or `malformed`.
    pub kind: SourceErrorKind,
    /// The message at the time.
    pub message: String,
}

impl SnapshotMeta {
    /// The metadata this tradewarden records.
    #[must_use]
    pub fn new(taken_at: DateTime<Utc>, mode: &str, errors: BTreeMap<String, RecordedError>) -> Self {
        Self {
            taken_at: taken_at.to_rfc3339_opts(SecondsFormat::AutoSi, true),
            mode: Some(mode.to_owned()),
            recorded_by: Some(concat!("tradewarden ", env!("CARGO_PKG_VERSION"), " snapshot").to_owned()),
            errors,
        }
    }

    /// Reads `DIR/snapshot.toml`.
    ///
    /// # Errors
    /// A sentence naming the file and what was wrong.
    pub fn read(dir: &Path) -> Result<Self, String> {
        let path = dir.join(META_FILE);
        let text = std::fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| format!("{}: {}", path.display(), e.message()))
    }

    /// The file's text: a header line, then the TOML.
    ///
    /// # Errors
    /// When serializing fails.
    pub fn to_toml(&self) -> Result<String, String> {
        toml::to_string(self).map(|t| format!("{META_HEADER}{t}")).map_err(|e| e.to_string())
    }

    /// `taken_at` parsed.
    ///
    /// # Errors
    /// When it is not a timestamp.
    pub fn taken_at(&self) -> Result<DateTime<Utc>, String> {
        crate::timestamp::parse_timestamp(&self.taken_at)
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn the_table_has_one_file_and_one_source_per_read() {
        let files: std::collections::BTreeSet<_> = BrokerFile::ALL.iter().map(|f| f.file_name()).collect();
        let sources: std::collections::BTreeSet<_> = BrokerFile::ALL.iter().map(|f| f.source()).collect();
        assert_eq!((files.len(), sources.len()), (BrokerFile::ALL.len(), BrokerFile::ALL.len()));
        for f in BrokerFile::ALL {
            assert!(f.source().starts_with("broker:") && f.file_name().ends_with(".json"), "{f:?}");
        }
    }

    #[test]
    fn meta_round_trips_through_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let at = Utc.with_ymd_and_hms(2026, 11, 20, 15, 30, 0).unwrap() + chrono::Duration::milliseconds(250);
        let errors = [(
            BrokerFile::Clock.source().to_owned(),
            RecordedError { kind: SourceErrorKind::Unavailable, message: "HTTP 500".into() },
        )]
        .into_iter()
        .collect();
        let meta = SnapshotMeta::new(at, "paper", errors);
        let text = meta.to_toml().unwrap();
        assert!(text.starts_with("# Recorded by `tradewarden snapshot`"), "{text}");
        std::fs::write(dir.path().join(META_FILE), &text).unwrap();
        let read = SnapshotMeta::read(dir.path()).unwrap();
        assert_eq!(read, meta);
        assert_eq!(read.taken_at().unwrap(), at);
        // Written by hand: only `taken_at` is needed; an unknown key is refused.
        std::fs::write(dir.path().join(META_FILE), "taken_at = \"2026-11-20T15:30:00Z\"\n").unwrap();
        assert!(SnapshotMeta::read(dir.path()).unwrap().errors.is_empty());
        std::fs::write(dir.path().join(META_FILE), "taken_at = \"2026-11-20T15:30:00Z\"\nmood = 1\n").unwrap();
        assert!(SnapshotMeta::read(dir.path()).unwrap_err().contains("snapshot.toml"));
    }
}
