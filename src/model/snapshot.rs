//! `Snapshot`: everything one audit saw, as plain data. Checks read it and nothing else.
//!
//! Every source is a `Result`: a source that failed carries its error, so a failed fetch can
//! never be mistaken for "no positions" or "no orders".

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Account, AccountConfiguration, LogSummary, MarketClock, Metadata, Order, Position, TrackedPosition};

/// A source's value, or why it could not be had.
pub type Sourced<T> = Result<T, SourceError>;

/// Why a source has no value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceErrorKind {
    /// Could not be read at all: missing file, connection refused, timeout, HTTP error.
    Unavailable,
    /// Read, but not understood: bad JSON, half-written file, wrong shape, bad field.
    Malformed,
}

impl SourceErrorKind {
    /// The finding code for this kind: `source_unavailable` or `source_malformed`.
    #[must_use]
    pub fn code(self) -> &'static str {
        match self {
            Self::Unavailable => "source_unavailable",
            Self::Malformed => "source_malformed",
        }
    }

    /// `unavailable` or `malformed`, as the report's source status.
    #[must_use]
    pub fn status(self) -> &'static str {
        match self {
            Self::Unavailable => "unavailable",
            Self::Malformed => "malformed",
        }
    }
}

/// A source that failed, and exactly what was wrong (file, line or byte, field).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceError {
    /// Which source: `broker:positions`, `positions`, `metadata`, `log:run`, ...
    pub source: String,
    /// Unavailable or malformed.
    pub kind: SourceErrorKind,
    /// A plain sentence: what was wrong and where.
    pub message: String,
}

impl SourceError {
    /// A source that could not be read.
    pub fn unavailable(source: impl Into<String>, message: impl Into<String>) -> Self {
        Self { source: source.into(), kind: SourceErrorKind::Unavailable, message: message.into() }
    }

    /// A source that was read but not understood.
    pub fn malformed(source: impl Into<String>, message: impl Into<String>) -> Self {
        Self { source: source.into(), kind: SourceErrorKind::Malformed, message: message.into() }
    }
}

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.source, self.kind.status(), self.message)
    }
}

impl std::error::Error for SourceError {}

/// Which kind of account the audit looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// A paper account.
    Paper,
    /// A live (real money) account.
    Live,
    /// A recorded snapshot directory.
    Replay,
}

impl Mode {
    /// `paper`, `live` or `replay`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Paper => "paper",
            Self::Live => "live",
            Self::Replay => "replay",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The broker's side of the snapshot.
#[derive(Debug, Clone, PartialEq)]
pub struct BrokerView {
    /// `GET /v2/account`.
    pub account: Sourced<Account>,
    /// `GET /v2/positions`.
    pub positions: Sourced<Vec<Position>>,
    /// `GET /v2/orders?status=open`.
    pub orders: Sourced<Vec<Order>>,
    /// `GET /v2/clock`.
    pub clock: Sourced<MarketClock>,
    /// `GET /v2/account/configurations`; `None` when not fetched or not recorded.
    pub configuration: Option<Sourced<AccountConfiguration>>,
    /// `GET /v2/orders?status=closed&after=...`: orders that closed (filled, canceled...) among
    /// those submitted within the largest `settle`, so a fill seconds ago still settles its
    /// symbol. `None` when not read (no rule settles) or not recorded.
    pub recent_orders: Option<Sourced<Vec<Order>>>,
    /// Response bodies exactly as received, keyed by snapshot file name (`positions.json`),
    /// so `tradewarden snapshot` can record them. Empty for replay.
    pub bodies: BTreeMap<String, Vec<u8>>,
}

/// The source names of the reads every rule needs (account, positions, open orders): while
/// one fails the watchdog is blind, and no silence may hide that.
pub const RULE_READ_SOURCES: [&str; 3] = ["broker:account", "broker:positions", "broker:orders"];

impl BrokerView {
    /// A view where every endpoint failed with the same error (broker unreachable).
    #[must_use]
    pub fn unavailable(message: &str) -> Self {
        let e = |endpoint: &str| SourceError::unavailable(format!("broker:{endpoint}"), message);
        Self {
            account: Err(e("account")),
            positions: Err(e("positions")),
            orders: Err(e("orders")),
            clock: Err(e("clock")),
            configuration: Some(Err(e("configurations"))),
            recent_orders: None,
            bodies: BTreeMap::new(),
        }
    }

    /// True when the reads the rules need were all made: account, positions and open orders
    /// (the clock and the configurations only inform a few checks). The heartbeat beats only
    /// then.
    #[must_use]
    pub fn rule_reads_ok(&self) -> bool {
        // The same three as `RULE_READ_SOURCES`.
        self.account.is_ok() && self.positions.is_ok() && self.orders.is_ok()
    }

    /// Every endpoint error, in a stable order.
    #[must_use]
    pub fn errors(&self) -> Vec<&SourceError> {
        let mut v = Vec::new();
        if let Err(e) = &self.account {
            v.push(e);
        }
        if let Err(e) = &self.positions {
            v.push(e);
        }
        if let Err(e) = &self.orders {
            v.push(e);
        }
        if let Err(e) = &self.clock {
            v.push(e);
        }
        if let Some(Err(e)) = &self.configuration {
            v.push(e);
        }
        if let Some(Err(e)) = &self.recent_orders {
            v.push(e);
        }
        v
    }
}

/// The bot's side of the snapshot.
#[derive(Debug, Clone, PartialEq)]
pub struct BotView {
    /// The positions the bot tracks.
    pub positions: Sourced<Vec<TrackedPosition>>,
    /// Per-symbol metadata; `None` when no metadata mapping is configured.
    pub metadata: Option<Sourced<Metadata>>,
}

/// Everything one audit saw.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// When it was taken: the audit's "now" (for a replay, the recorded time).
    pub taken_at: DateTime<Utc>,
    /// Paper, live or replay.
    pub mode: Mode,
    /// The broker.
    pub broker: BrokerView,
    /// The bot's files.
    pub bot: BotView,
    /// Each configured log, by name.
    pub logs: BTreeMap<String, Sourced<LogSummary>>,
}

impl Snapshot {
    /// Every source error in the snapshot: broker endpoints, bot files, logs.
    #[must_use]
    pub fn source_errors(&self) -> Vec<&SourceError> {
        let mut v = self.broker.errors();
        if let Err(e) = &self.bot.positions {
            v.push(e);
        }
        if let Some(Err(e)) = &self.bot.metadata {
            v.push(e);
        }
        for log in self.logs.values() {
            if let Err(e) = log {
                v.push(e);
            }
        }
        v
    }
}
