//! Open orders as the broker reports them.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Serialize;

use super::{OrderSide, Symbol};

/// An order. Only what checks and actions need; the wire type keeps the rest.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Order {
    /// Broker id (a UUID).
    pub id: String,
    /// The bot's id for it.
    pub client_order_id: String,
    /// The ticker.
    pub symbol: Symbol,
    /// Buy or sell.
    pub side: OrderSide,
    /// `market`, `limit`, `stop`, `stop_limit`, `trailing_stop`.
    pub order_type: String,
    /// Ordered shares; `None` for a notional order.
    pub qty: Option<Decimal>,
    /// Dollar amount of a notional order.
    pub notional: Option<Decimal>,
    /// Shares filled so far.
    pub filled_qty: Decimal,
    /// Limit price, if any.
    pub limit_price: Option<Decimal>,
    /// Stop price, if any.
    pub stop_price: Option<Decimal>,
    /// Alpaca's order status (`new`, `accepted`, `partially_filled`, ...).
    pub status: String,
    /// When it was created.
    pub created_at: Option<DateTime<Utc>>,
    /// When it was submitted.
    pub submitted_at: Option<DateTime<Utc>>,
    /// Last update.
    pub updated_at: Option<DateTime<Utc>>,
    /// When it (last) filled: Alpaca sets it on a partial fill too, and a broker may move it
    /// without `updated_at`, so it counts as activity.
    pub filled_at: Option<DateTime<Utc>>,
}

/// Terminal statuses: these orders will not change again.
pub const TERMINAL_STATUSES: [&str; 5] = ["filled", "canceled", "expired", "replaced", "rejected"];

impl Order {
    /// Shares still to fill: `qty - filled_qty`, never below zero (saturating at Decimal's
    /// range, which a hostile body can reach). `None` for notional orders.
    #[must_use]
    pub fn remaining_qty(&self) -> Option<Decimal> {
        self.qty.map(|q| q.saturating_sub(self.filled_qty).max(Decimal::ZERO))
    }

    /// The most recent of the order's own timestamps: when it last showed activity.
    #[must_use]
    pub fn last_activity(&self) -> Option<DateTime<Utc>> {
        [self.updated_at, self.filled_at, self.submitted_at, self.created_at].into_iter().flatten().max()
    }

    /// When it was placed (submitted, else created).
    #[must_use]
    pub fn placed_at(&self) -> Option<DateTime<Utc>> {
        self.submitted_at.or(self.created_at)
    }

    /// True when the status is not terminal.
    #[must_use]
    pub fn is_open(&self) -> bool {
        !TERMINAL_STATUSES.contains(&self.status.as_str())
    }
}
