//! The scenario file (design.md §9): the state the simulator starts from. Every key is
//! optional, decimals may be strings or numbers, and unknown keys are errors (a typo must not
//! silently seed a different account).
//!
//! ```json
//! { "account": { "cash": "100000" },
//!   "positions": [ { "symbol": "AAPL", "qty": "10", "avg_entry_price": "180.00" } ],
//!   "orders": [ { "symbol": "MSFT", "side": "sell", "qty": "5", "type": "limit",
//!                 "limit_price": "500.00", "submitted_at": "2026-11-20T14:00:00Z" } ],
//!   "prices": { "AAPL": "185.00", "MSFT": "415.00" },
//!   "lastday_prices": { "AAPL": "183.00" },
//!   "clock": { "is_open": true },
//!   "configurations": { "no_shorting": false, "suspend_trade": false },
//!   "auth": { "key_id": "KEY", "secret_key": "SECRET" },
//!   "faults": { "rate_limit_per_min": 200 } }
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer};

use super::faults::Faults;

/// A decimal read from a JSON number or string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dec(pub Decimal);

impl<'de> Deserialize<'de> for Dec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        crate::num::decimal_from_json(&v).and_then(in_range).map(Dec).map_err(serde::de::Error::custom)
    }
}

/// The largest magnitude the simulator accepts for any amount (a quantity, a price, cash), from
/// a scenario, the admin API or an order: the product of two such amounts (a market value), and
/// sums of many, stay far inside `Decimal`'s range (about 7.9e28), so the simulator's arithmetic
/// cannot overflow (an overflow panicked a request handler and broke the simulator for good).
pub const MAX_AMOUNT: i64 = 1_000_000_000_000;

/// `d` when its magnitude is at most [`MAX_AMOUNT`].
///
/// # Errors
/// A sentence naming the limit.
pub fn in_range(d: Decimal) -> Result<Decimal, String> {
    if d.abs() > Decimal::from(MAX_AMOUNT) {
        return Err(format!("{d} is out of the simulator's range (at most 1e12 in magnitude)"));
    }
    Ok(d)
}

/// The whole scenario.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// The account.
    #[serde(default)]
    pub account: Option<AccountSeed>,
    /// Open positions.
    #[serde(default)]
    pub positions: Option<Vec<PositionSeed>>,
    /// Orders, any status.
    #[serde(default)]
    pub orders: Option<Vec<OrderSeed>>,
    /// Current prices by symbol.
    #[serde(default)]
    pub prices: Option<BTreeMap<String, Dec>>,
    /// Yesterday's closes by symbol (for the intraday figures; default: the current price).
    #[serde(default)]
    pub lastday_prices: Option<BTreeMap<String, Dec>>,
    /// The market clock.
    #[serde(default)]
    pub clock: Option<ClockSeed>,
    /// Account configurations (the fields of `PATCH /v2/account/configurations`).
    #[serde(default)]
    pub configurations: Option<serde_json::Map<String, serde_json::Value>>,
    /// The only accepted key pair; without it any non-empty pair is accepted.
    #[serde(default)]
    pub auth: Option<AuthSeed>,
    /// Fault injection from the start.
    #[serde(default)]
    pub faults: Option<Faults>,
}

/// `account`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountSeed {
    /// UUID (default: random).
    #[serde(default)]
    pub id: Option<String>,
    /// Account number (default: `PA` and ten characters).
    #[serde(default)]
    pub account_number: Option<String>,
    /// Status, upper-cased (default `ACTIVE`).
    #[serde(default)]
    pub status: Option<String>,
    /// Currency (default `USD`).
    #[serde(default)]
    pub currency: Option<String>,
    /// Cash after the seeded positions were bought (default 100000).
    #[serde(default)]
    pub cash: Option<Dec>,
    /// Equity at yesterday's close (default: the starting equity).
    #[serde(default)]
    pub last_equity: Option<Dec>,
    /// The account may short (default true; shorting also needs a multiplier above 1 and
    /// `no_shorting` off).
    #[serde(default)]
    pub shorting_enabled: Option<bool>,
    /// Orders rejected (default false).
    #[serde(default)]
    pub trading_blocked: Option<bool>,
    /// Everything rejected (default false).
    #[serde(default)]
    pub account_blocked: Option<bool>,
    /// Transfers blocked (shown only).
    #[serde(default)]
    pub transfers_blocked: Option<bool>,
    /// Creation time (default: now).
    #[serde(default)]
    pub created_at: Option<DateTime<Utc>>,
}

/// One of `positions`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PositionSeed {
    /// Ticker.
    pub symbol: String,
    /// Quantity; negative for a short.
    pub qty: Dec,
    /// Average entry price (default: the symbol's price).
    #[serde(default)]
    pub avg_entry_price: Option<Dec>,
    /// `long` or `short`; a positive `qty` with `short` is a short.
    #[serde(default)]
    pub side: Option<String>,
    /// Yesterday's close (overrides `lastday_prices`).
    #[serde(default)]
    pub lastday_price: Option<Dec>,
    /// Asset UUID (default: random, stable per symbol).
    #[serde(default)]
    pub asset_id: Option<String>,
    /// Exchange (default `NASDAQ`).
    #[serde(default)]
    pub exchange: Option<String>,
}

/// One of `orders`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderSeed {
    /// UUID (default: random).
    #[serde(default)]
    pub id: Option<String>,
    /// Client id (default: a UUID).
    #[serde(default)]
    pub client_order_id: Option<String>,
    /// Ticker.
    pub symbol: String,
    /// `buy` or `sell`.
    pub side: String,
    /// Shares (or `notional`).
    #[serde(default)]
    pub qty: Option<Dec>,
    /// Dollars.
    #[serde(default)]
    pub notional: Option<Dec>,
    /// Type (default: `limit` with a limit price, else `market`).
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// Limit price.
    #[serde(default)]
    pub limit_price: Option<Dec>,
    /// Stop price.
    #[serde(default)]
    pub stop_price: Option<Dec>,
    /// Trailing dollars.
    #[serde(default)]
    pub trail_price: Option<Dec>,
    /// Trailing percent.
    #[serde(default)]
    pub trail_percent: Option<Dec>,
    /// Time in force (default `day`).
    #[serde(default)]
    pub time_in_force: Option<String>,
    /// Status (default `new`).
    #[serde(default)]
    pub status: Option<String>,
    /// Submitted (default: now).
    #[serde(default)]
    pub submitted_at: Option<DateTime<Utc>>,
    /// Created (default: `submitted_at`).
    #[serde(default)]
    pub created_at: Option<DateTime<Utc>>,
    /// Last update (default: `submitted_at`).
    #[serde(default)]
    pub updated_at: Option<DateTime<Utc>>,
    /// Filled shares (default 0; `qty` for a filled order).
    #[serde(default)]
    pub filled_qty: Option<Dec>,
    /// Average fill price.
    #[serde(default)]
    pub filled_avg_price: Option<Dec>,
    /// Extended hours (default false).
    #[serde(default)]
    pub extended_hours: Option<bool>,
}

/// `clock`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClockSeed {
    /// The market is open (default true: tests should not depend on the hour they run at).
    #[serde(default)]
    pub is_open: Option<bool>,
}

/// `auth`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSeed {
    /// `APCA-API-KEY-ID`.
    pub key_id: String,
    /// `APCA-API-SECRET-KEY`.
    pub secret_key: String,
}

impl std::fmt::Debug for AuthSeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The secret never reaches a log.
        f.debug_struct("AuthSeed").field("key_id", &self.key_id).field("secret_key", &"<redacted>").finish()
    }
}

impl Scenario {
    /// Parses scenario JSON.
    ///
    /// # Errors
    /// serde's message with the line and column.
    pub fn from_json(text: &str) -> Result<Self, String> {
        serde_json::from_str(text).map_err(|e| format!("invalid scenario: {e}"))
    }

    /// Reads and parses a scenario file.
    ///
    /// # Errors
    /// A sentence naming the file and what was wrong.
    pub fn from_file(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Self::from_json(&text).map_err(|e| format!("{}: {e}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use rust_decimal::dec;

    use super::*;

    #[test]
    fn the_shipped_example_scenario_loads() {
        let s = Scenario::from_json(include_str!("../../examples/sim/phantom-exit.json")).unwrap();
        let positions = s.positions.unwrap();
        assert_eq!(positions.len(), 5);
        assert_eq!(s.orders.unwrap().len(), 1);
    }

    #[test]
    fn the_design_example_parses() {
        let s = Scenario::from_json(
            r#"{ "account": { "cash": "100000" },
                 "positions": [ { "symbol": "AAPL", "qty": "10", "avg_entry_price": "180.00" } ],
                 "orders": [ { "symbol": "MSFT", "side": "sell", "qty": "5", "type": "limit",
                               "limit_price": "500.00", "submitted_at": "2026-11-20T14:00:00Z" } ],
                 "prices": { "AAPL": "185.00", "MSFT": 415 },
                 "clock": { "is_open": true },
                 "configurations": { "no_shorting": false, "suspend_trade": false },
                 "auth": { "key_id": "KEY", "secret_key": "SECRET" } }"#,
        )
        .unwrap();
        assert_eq!(s.account.unwrap().cash, Some(Dec(dec!(100000))));
        assert_eq!(s.positions.unwrap()[0].qty, Dec(dec!(10)));
        assert_eq!(s.prices.unwrap()["MSFT"], Dec(dec!(415)));
        assert_eq!(s.orders.unwrap()[0].kind.as_deref(), Some("limit"));
        assert!(!format!("{:?}", s.auth.unwrap()).contains("SECRET"));
    }

    #[test]
    fn everything_is_optional_and_typos_are_errors() {
        assert_eq!(Scenario::from_json("{}").unwrap(), Scenario::default());
        assert_eq!(Scenario::from_json(r#"{"account":null,"positions":null}"#).unwrap(), Scenario::default());
        let e = Scenario::from_json(r#"{"acount":{}}"#).unwrap_err();
        assert!(e.contains("unknown field `acount`"), "{e}");
        let e = Scenario::from_json(r#"{"positions":[{"symbol":"A","qty":"ten"}]}"#).unwrap_err();
        assert!(e.contains("not a decimal"), "{e}");
    }
}
