//! Brokers: where the broker's view of the account comes from (live Alpaca, or a replayed
//! snapshot directory).

pub mod alpaca;
pub mod replay;
pub mod wire;

use chrono::{DateTime, Utc};

use crate::config::{BrokerKind, Config};
use crate::model::{BrokerView, Mode};

/// A broker source.
#[derive(Debug, Clone)]
pub enum Broker {
    /// A recorded snapshot directory.
    Replay(replay::ReplayBroker),
    /// The Alpaca REST API.
    Alpaca(alpaca::AlpacaClient),
}

impl Broker {
    /// The broker a configuration names: `replay` (a directory given here wins, as
    /// `--replay DIR` does), then `[broker] kind`.
    ///
    /// # Errors
    /// When the broker cannot be set up (a replay without a directory, missing credentials).
    pub fn for_config(cfg: &Config, replay: Option<&std::path::Path>) -> Result<Self, String> {
        if let Some(dir) = replay {
            return Ok(Self::Replay(replay::ReplayBroker::new(dir)));
        }
        match cfg.broker.kind {
            BrokerKind::Replay => {
                let dir = cfg.broker.replay_dir.as_deref().ok_or("[broker] kind = \"replay\" needs `dir`")?;
                Ok(Self::Replay(replay::ReplayBroker::new(dir)))
            }
            BrokerKind::Alpaca => {
                alpaca::AlpacaClient::from_env(&cfg.broker).map(Self::Alpaca).map_err(|e| e.to_string())
            }
        }
    }

    /// Reads the broker's view: account, positions, open orders, clock, configurations.
    /// Every endpoint that fails carries its error; nothing is ever read as empty.
    pub async fn view(&self) -> BrokerView {
        match self {
            Self::Replay(r) => r.view(),
            Self::Alpaca(c) => c.view().await,
        }
    }

    /// Adds the orders closed among those submitted after `after` to `view` (a sixth read,
    /// made only when a settle needs it). A replay has them already, when recorded.
    pub async fn add_recent_orders(&self, view: &mut BrokerView, after: DateTime<Utc>) {
        if let Self::Alpaca(c) = self {
            view.recent_orders = Some(c.recent_orders(after, &mut view.bodies).await);
        }
    }

    /// Paper, live (from the Alpaca base URL's host: only `api.alpaca.markets` is live) or
    /// replay.
    #[must_use]
    pub fn mode(&self) -> Mode {
        match self {
            Self::Replay(_) => Mode::Replay,
            Self::Alpaca(c) => c.mode(),
        }
    }

    /// For a replay, the recorded time (the audit's "now").
    ///
    /// # Errors
    /// When the snapshot's `snapshot.toml` is missing or invalid.
    pub fn recorded_at(&self) -> Result<Option<DateTime<Utc>>, String> {
        match self {
            Self::Replay(r) => r.taken_at().map(Some),
            Self::Alpaca(_) => Ok(None),
        }
    }
}
