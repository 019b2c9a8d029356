//! Positions: what the broker holds, and what the bot believes it holds.

use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::Value;

use super::{Side, Symbol};

/// A broker position. `qty` is signed as Alpaca reports it (negative for a short); `side`
/// always agrees with its sign.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Position {
    /// The ticker.
    pub symbol: Symbol,
    /// Signed shares: negative for a short.
    pub qty: Decimal,
    /// Long or short (from the broker's `side`, else the sign of `qty`).
    pub side: Side,
    /// Average entry price, always positive.
    pub avg_entry_price: Option<Decimal>,
    /// Signed market value (negative for a short), when the broker reported it.
    pub market_value: Option<Decimal>,
    /// Last price, when reported.
    pub current_price: Option<Decimal>,
    /// Unrealized P&L in dollars, when reported.
    pub unrealized_pl: Option<Decimal>,
    /// `us_equity`, `crypto`, ... (empty when not reported).
    pub asset_class: String,
}

impl Position {
    /// |market value|, falling back to |qty| × price when the broker left it out.
    #[must_use]
    pub fn abs_market_value(&self) -> Option<Decimal> {
        // Checked: `qty * price` can leave Decimal's range (a hostile body); then it is unknown.
        self.market_value
            .map(|v| v.abs())
            .or_else(|| self.current_price.and_then(|p| self.qty.checked_mul(p)).map(|v| v.abs()))
    }
}

/// A position as the bot tracks it, read from its state file or log through the mapping.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrackedPosition {
    /// The ticker.
    pub symbol: Symbol,
    /// Signed quantity as the bot has it (a bot that writes a positive qty plus `side = short`
    /// is normalised to a negative qty).
    pub qty: Decimal,
    /// The bot's side: from its `side` field when mapped, else the sign of `qty`.
    pub side: Option<Side>,
    /// The bot's entry price, when mapped and present.
    pub entry_price: Option<Decimal>,
}

/// Per-symbol metadata the bot keeps (entry score, components, timestamps): free-form JSON.
pub type Metadata = std::collections::BTreeMap<Symbol, Value>;
