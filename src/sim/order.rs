//! Orders inside the simulator: their types, statuses and how they look on the wire.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use uuid::Uuid;

use crate::collect::broker::wire::AlpacaOrder;
use crate::model::OrderSide;

/// The order type (`type` on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderType {
    /// Fills at once at the symbol's price.
    Market,
    /// Rests until the price reaches `limit_price`.
    Limit,
    /// Becomes a market order when the price reaches `stop_price`.
    Stop,
    /// Becomes a limit order when the price reaches `stop_price`.
    StopLimit,
    /// A stop that follows the best price by `trail_price` or `trail_percent`.
    TrailingStop,
}

impl OrderType {
    /// Parses the wire name.
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "market" => Self::Market,
            "limit" => Self::Limit,
            "stop" => Self::Stop,
            "stop_limit" => Self::StopLimit,
            "trailing_stop" => Self::TrailingStop,
            _ => return None,
        })
    }

    /// The wire name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Market => "market",
            Self::Limit => "limit",
            Self::Stop => "stop",
            Self::StopLimit => "stop_limit",
            Self::TrailingStop => "trailing_stop",
        }
    }

    /// Types that need `limit_price`.
    #[must_use]
    pub fn needs_limit(self) -> bool {
        matches!(self, Self::Limit | Self::StopLimit)
    }

    /// Types that need `stop_price`.
    #[must_use]
    pub fn needs_stop(self) -> bool {
        matches!(self, Self::Stop | Self::StopLimit)
    }
}

/// Time in force. `opg` and `cls` are kept as given and behave like `day`; day orders never
/// expire in the simulator (no session ends).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeInForce {
    /// Day.
    Day,
    /// Good till cancelled.
    Gtc,
    /// At the open.
    Opg,
    /// At the close.
    Cls,
    /// Immediate or cancel: what does not fill at once is cancelled.
    Ioc,
    /// Fill or kill: fills entirely at once or is cancelled (fills are never partial here).
    Fok,
}

impl TimeInForce {
    /// Parses the wire name (lower-case only, like Alpaca).
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "day" => Self::Day,
            "gtc" => Self::Gtc,
            "opg" => Self::Opg,
            "cls" => Self::Cls,
            "ioc" => Self::Ioc,
            "fok" => Self::Fok,
            _ => return None,
        })
    }

    /// The wire name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Day => "day",
            Self::Gtc => "gtc",
            Self::Opg => "opg",
            Self::Cls => "cls",
            Self::Ioc => "ioc",
            Self::Fok => "fok",
        }
    }
}

/// Alpaca's order statuses (alpaca-api.md §4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderStatus {
    /// Working.
    New,
    /// Partly filled (never produced by the simulator's own fills; seeds may use it).
    PartiallyFilled,
    /// Filled.
    Filled,
    /// Done for the day.
    DoneForDay,
    /// Cancelled.
    Canceled,
    /// Expired.
    Expired,
    /// Replaced by another order.
    Replaced,
    /// Cancel requested.
    PendingCancel,
    /// Replace requested.
    PendingReplace,
    /// Accepted, not yet routed.
    Accepted,
    /// Received, not yet accepted.
    PendingNew,
    /// Accepted for bidding.
    AcceptedForBidding,
    /// Stopped.
    Stopped,
    /// Rejected.
    Rejected,
    /// Suspended.
    Suspended,
    /// Calculated.
    Calculated,
    /// Held (inactive bracket legs).
    Held,
}

impl OrderStatus {
    const ALL: [Self; 17] = [
        Self::New,
        Self::PartiallyFilled,
        Self::Filled,
        Self::DoneForDay,
        Self::Canceled,
        Self::Expired,
        Self::Replaced,
        Self::PendingCancel,
        Self::PendingReplace,
        Self::Accepted,
        Self::PendingNew,
        Self::AcceptedForBidding,
        Self::Stopped,
        Self::Rejected,
        Self::Suspended,
        Self::Calculated,
        Self::Held,
    ];

    /// Parses the wire name.
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// The wire name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::New => "new",
            Self::PartiallyFilled => "partially_filled",
            Self::Filled => "filled",
            Self::DoneForDay => "done_for_day",
            Self::Canceled => "canceled",
            Self::Expired => "expired",
            Self::Replaced => "replaced",
            Self::PendingCancel => "pending_cancel",
            Self::PendingReplace => "pending_replace",
            Self::Accepted => "accepted",
            Self::PendingNew => "pending_new",
            Self::AcceptedForBidding => "accepted_for_bidding",
            Self::Stopped => "stopped",
            Self::Rejected => "rejected",
            Self::Suspended => "suspended",
            Self::Calculated => "calculated",
            Self::Held => "held",
        }
    }

    /// Terminal: filled, canceled, expired, replaced, rejected. Everything else is open
    /// (`GET /v2/orders?status=open`) and can still be cancelled.
    #[must_use]
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Filled | Self::Canceled | Self::Expired | Self::Replaced | Self::Rejected)
    }

    /// Open (not terminal).
    #[must_use]
    pub fn is_open(self) -> bool {
        !self.is_terminal()
    }
}

/// What an order does to the position, decided when it is accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intent {
    /// Opens or adds to a long.
    BuyToOpen,
    /// Covers a short.
    BuyToClose,
    /// Opens or deepens a short.
    SellToOpen,
    /// Reduces a long.
    SellToClose,
}

impl Intent {
    /// The wire name (`position_intent`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BuyToOpen => "buy_to_open",
            Self::BuyToClose => "buy_to_close",
            Self::SellToOpen => "sell_to_open",
            Self::SellToClose => "sell_to_close",
        }
    }

    /// Opens or increases exposure (and so uses buying power).
    #[must_use]
    pub fn opens(self) -> bool {
        matches!(self, Self::BuyToOpen | Self::SellToOpen)
    }
}

/// An order held by the simulator.
#[derive(Debug, Clone, PartialEq)]
pub struct SimOrder {
    /// UUID.
    pub id: Uuid,
    /// The client's id (unique across all orders).
    pub client_order_id: String,
    /// Submission sequence: ties between equal timestamps are broken by it.
    pub seq: u64,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Submitted.
    pub submitted_at: DateTime<Utc>,
    /// Filled.
    pub filled_at: Option<DateTime<Utc>>,
    /// Cancelled.
    pub canceled_at: Option<DateTime<Utc>>,
    /// Replaced.
    pub replaced_at: Option<DateTime<Utc>>,
    /// The order that replaced this one.
    pub replaced_by: Option<Uuid>,
    /// The order this one replaced.
    pub replaces: Option<Uuid>,
    /// Ticker.
    pub symbol: String,
    /// The asset's UUID.
    pub asset_id: Uuid,
    /// Dollar amount, for notional orders (then `qty` is not shown).
    pub notional: Option<Decimal>,
    /// Shares to trade: the ordered quantity, or the notional converted at acceptance.
    pub shares: Decimal,
    /// Shares filled.
    pub filled_qty: Decimal,
    /// Average fill price.
    pub filled_avg_price: Option<Decimal>,
    /// Type.
    pub kind: OrderType,
    /// Buy or sell.
    pub side: OrderSide,
    /// What it does to the position.
    pub intent: Intent,
    /// Time in force.
    pub time_in_force: TimeInForce,
    /// Limit price.
    pub limit_price: Option<Decimal>,
    /// Stop price (for trailing stops: the current trailing stop).
    pub stop_price: Option<Decimal>,
    /// Trailing amount in dollars.
    pub trail_price: Option<Decimal>,
    /// Trailing amount in percent.
    pub trail_percent: Option<Decimal>,
    /// Best price seen since submission (trailing stops).
    pub hwm: Option<Decimal>,
    /// A stop or stop-limit whose stop was reached.
    pub triggered: bool,
    /// Status.
    pub status: OrderStatus,
    /// Extended hours.
    pub extended_hours: bool,
}

impl SimOrder {
    /// A new order accepted `now`: a fresh id, status `new`, nothing filled, and the terms of
    /// a market day order (no prices, regular hours) until the caller sets its own. Without a
    /// `client_order_id` it gets a fresh UUID, as Alpaca does. `seq` is set when the broker
    /// stores it.
    #[must_use]
    pub fn new(
        symbol: &str,
        asset_id: Uuid,
        side: OrderSide,
        intent: Intent,
        shares: Decimal,
        client_order_id: Option<String>,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            id: Uuid::new_v4(),
            client_order_id: client_order_id.unwrap_or_else(|| Uuid::new_v4().to_string()),
            seq: 0,
            created_at: now,
            updated_at: now,
            submitted_at: now,
            filled_at: None,
            canceled_at: None,
            replaced_at: None,
            replaced_by: None,
            replaces: None,
            symbol: symbol.to_owned(),
            asset_id,
            notional: None,
            shares,
            filled_qty: Decimal::ZERO,
            filled_avg_price: None,
            kind: OrderType::Market,
            side,
            intent,
            time_in_force: TimeInForce::Day,
            limit_price: None,
            stop_price: None,
            trail_price: None,
            trail_percent: None,
            hwm: None,
            triggered: false,
            status: OrderStatus::New,
            extended_hours: false,
        }
    }

    /// Shares still to fill.
    #[must_use]
    pub fn remaining(&self) -> Decimal {
        (self.shares - self.filled_qty).max(Decimal::ZERO)
    }

    /// The price used to size its buying-power need: the limit, else the stop, else `mark`.
    #[must_use]
    pub fn reference_price(&self, mark: Decimal) -> Decimal {
        self.limit_price.or(if self.kind == OrderType::TrailingStop { None } else { self.stop_price }).unwrap_or(mark)
    }

    /// The order as Alpaca sends it.
    #[must_use]
    pub fn to_wire(&self) -> AlpacaOrder {
        AlpacaOrder {
            id: self.id.to_string(),
            client_order_id: self.client_order_id.clone(),
            created_at: Some(self.created_at),
            updated_at: Some(self.updated_at),
            submitted_at: Some(self.submitted_at),
            filled_at: self.filled_at,
            expired_at: None,
            expires_at: None,
            canceled_at: self.canceled_at,
            failed_at: None,
            replaced_at: self.replaced_at,
            replaced_by: self.replaced_by.map(|u| u.to_string()),
            replaces: self.replaces.map(|u| u.to_string()),
            asset_id: self.asset_id.to_string(),
            symbol: self.symbol.clone(),
            asset_class: "us_equity".into(),
            notional: self.notional,
            qty: if self.notional.is_some() { None } else { Some(self.shares) },
            filled_qty: Some(self.filled_qty),
            filled_avg_price: self.filled_avg_price,
            order_class: String::new(),
            order_type: self.kind.as_str().into(),
            kind: self.kind.as_str().into(),
            side: self.side.as_str().into(),
            position_intent: Some(self.intent.as_str().into()),
            time_in_force: self.time_in_force.as_str().into(),
            limit_price: self.limit_price,
            stop_price: self.stop_price,
            status: self.status.as_str().into(),
            extended_hours: self.extended_hours,
            legs: None,
            trail_percent: self.trail_percent,
            trail_price: self.trail_price,
            hwm: self.hwm,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for s in OrderStatus::ALL {
            assert_eq!(OrderStatus::parse(s.as_str()), Some(s));
        }
        for t in ["market", "limit", "stop", "stop_limit", "trailing_stop"] {
            assert_eq!(OrderType::parse(t).unwrap().as_str(), t);
        }
        for t in ["day", "gtc", "opg", "cls", "ioc", "fok"] {
            assert_eq!(TimeInForce::parse(t).unwrap().as_str(), t);
        }
        assert_eq!(OrderStatus::parse("open"), None);
        assert_eq!(TimeInForce::parse("gtd"), None);
    }

    #[test]
    fn a_new_order_is_working_unfilled_and_takes_a_given_client_id() {
        let now = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let asset = Uuid::new_v4();
        let shares = Decimal::new(15, 1);
        let a = SimOrder::new("AAPL", asset, OrderSide::Sell, Intent::SellToClose, shares, None, now);
        let b = SimOrder::new("AAPL", asset, OrderSide::Sell, Intent::SellToClose, shares, Some("mine".into()), now);
        assert_ne!(a.id, b.id);
        assert!(Uuid::parse_str(&a.client_order_id).is_ok(), "a fresh UUID: {}", a.client_order_id);
        assert_eq!(b.client_order_id, "mine");
        assert_eq!((a.status, a.kind, a.time_in_force), (OrderStatus::New, OrderType::Market, TimeInForce::Day));
        assert_eq!((a.created_at, a.updated_at, a.submitted_at), (now, now, now));
        assert_eq!((a.remaining(), a.filled_qty, a.filled_avg_price), (shares, Decimal::ZERO, None));
        assert_eq!(
            (a.symbol.as_str(), a.asset_id, a.side, a.intent),
            ("AAPL", asset, OrderSide::Sell, Intent::SellToClose)
        );
        assert!(a.limit_price.is_none() && a.stop_price.is_none() && a.hwm.is_none() && !a.triggered);
        let wire = a.to_wire();
        assert_eq!((wire.status.as_str(), wire.qty), ("new", Some(shares)));
    }

    #[test]
    fn terminal_statuses_match_the_model() {
        let terminal: Vec<&str> =
            OrderStatus::ALL.into_iter().filter(|s| s.is_terminal()).map(OrderStatus::as_str).collect();
        assert_eq!(terminal, crate::model::TERMINAL_STATUSES.to_vec());
    }
}
