//! The account, its configuration (broker-side guards) and the market clock.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Serialize;

/// The trading account. Alpaca guarantees only `id` and `status`; everything else is optional
/// (fields removed on 2026-07-06, such as `pattern_day_trader`, are simply absent).
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Account {
    /// Account id (UUID).
    pub id: String,
    /// Upper-case status, `ACTIVE` when trading normally.
    pub status: String,
    /// Equity = cash + long market value + short market value.
    pub equity: Option<Decimal>,
    /// Cash.
    pub cash: Option<Decimal>,
    /// Buying power.
    pub buying_power: Option<Decimal>,
    /// Long market value.
    pub long_market_value: Option<Decimal>,
    /// Short market value (negative).
    pub short_market_value: Option<Decimal>,
    /// True when the account may short.
    pub shorting_enabled: Option<bool>,
    /// Trading blocked by the broker.
    pub trading_blocked: Option<bool>,
    /// Account blocked by the broker.
    pub account_blocked: Option<bool>,
    /// Trading suspended by the user (`suspend_trade`).
    pub trade_suspended_by_user: Option<bool>,
    /// Currency, `USD` usually.
    pub currency: Option<String>,
}

/// Broker-side account configuration (`GET /v2/account/configurations`).
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct AccountConfiguration {
    /// Long-only mode: sells that would open or deepen a short are refused.
    pub no_shorting: Option<bool>,
    /// New orders are refused.
    pub suspend_trade: Option<bool>,
    /// Fractional trading allowed.
    pub fractional_trading: Option<bool>,
    /// `"1"`, `"2"` or `"4"`.
    pub max_margin_multiplier: Option<String>,
}

/// The market clock (`GET /v2/clock`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MarketClock {
    /// The broker's time.
    pub timestamp: DateTime<Utc>,
    /// True while the regular session is open.
    pub is_open: bool,
    /// Next open.
    pub next_open: Option<DateTime<Utc>>,
    /// Next close.
    pub next_close: Option<DateTime<Utc>>,
}
