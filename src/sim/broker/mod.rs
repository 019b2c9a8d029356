//! The simulated brokerage account: a pure, synchronous state machine (no I/O, time from an
//! injected [`Clock`]). The HTTP layer parses requests, calls one method, and serializes what
//! comes back; every rejection is an [`ApiError`](crate::sim::ApiError) with Alpaca's status
//! and code.
//!
//! Position rules (Alpaca's, alpaca-api.md §4.1):
//! - a sell while flat opens a short, a sell while short deepens it; both need shorting
//!   (`shorting_enabled`, a multiplier above 1, `no_shorting` off), else 403 "account is not
//!   allowed to short"; fractional and notional shorts are refused;
//! - a sell while long may not exceed the long minus what open sells already hold (403
//!   "insufficient qty available for order" with `available`, `existing_qty`,
//!   `held_for_orders`, `symbol`); one order never flips a position; a buy while short is the
//!   mirror image;
//! - while flat, a buy is refused when a short-opening sell is open, and the reverse;
//! - orders that open or add to a position need buying power (see [`super::account`]);
//! - a position disappears when it reaches zero.
//!
//! Fills: market orders fill at once, whole, at the symbol's price, also while the clock says
//! the market is closed (it keeps tests simple). Limit orders fill when the price reaches them
//! (a buy at or below the limit, a sell at or above), at the price, which is never worse than
//! the limit; a marketable limit fills at once. Stops trigger when the price reaches the stop
//! (a buy at or above, a sell at or below), then fill as market or limit orders; trailing stops
//! follow the best price since submission. Fills are never partial. `ioc` and `fok` orders that
//! do not fill at once are cancelled. Day orders never expire (no session ends here).
//!
//! The account is split by concept: `seed` (a scenario into an account), `reads` (the
//! `GET` endpoints), `rules` (who may trade what), `mutations` (orders and positions
//! changing), `fills` (prices reaching orders), `configuration` (the account switches).

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use uuid::Uuid;

use crate::clock::Clock;
use crate::sim::order::SimOrder;
use configuration::Configuration;

mod configuration;
mod fills;
mod mutations;
mod reads;
mod rules;
mod seed;

pub use mutations::{CancelResult, CloseResult};

/// An open position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Holding {
    /// Signed, never zero.
    qty: Decimal,
    /// Always positive.
    avg_entry_price: Decimal,
}

/// What the simulator knows about a symbol.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Asset {
    id: Uuid,
    exchange: String,
}

/// The account's own fields; its figures are computed (see [`super::account`]).
#[derive(Debug, Clone, PartialEq)]
struct AccountState {
    id: Uuid,
    number: String,
    status: String,
    currency: String,
    cash: Decimal,
    last_equity: Decimal,
    shorting_enabled: bool,
    trading_blocked: bool,
    account_blocked: bool,
    transfers_blocked: bool,
    created_at: DateTime<Utc>,
}

/// The simulated account.
pub struct SimBroker {
    clock: Arc<dyn Clock>,
    account: AccountState,
    config: Configuration,
    positions: BTreeMap<String, Holding>,
    /// In submission order.
    orders: Vec<SimOrder>,
    prices: BTreeMap<String, Decimal>,
    lastday: BTreeMap<String, Decimal>,
    assets: BTreeMap<String, Asset>,
    market_open: bool,
    next_seq: u64,
}

impl std::fmt::Debug for SimBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimBroker")
            .field("positions", &self.positions.len())
            .field("orders", &self.orders.len())
            .field("prices", &self.prices)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests;
