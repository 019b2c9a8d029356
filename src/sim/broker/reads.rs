//! Reads: the `GET` endpoints as Alpaca answers them, and the queries the rules ask.

use std::collections::BTreeMap;

use chrono::{Days, NaiveDate};
use rust_decimal::Decimal;
use uuid::Uuid;

use super::{Holding, SimBroker};
use crate::collect::broker::wire::{
    AlpacaAccount, AlpacaAccountConfiguration, AlpacaClock, AlpacaOrder, AlpacaPosition,
};
use crate::model::OrderSide;
use crate::sim::account::{Figures, figures};
use crate::sim::error::ApiError;
use crate::sim::market::{self, CalendarDay};
use crate::sim::order::{Intent, SimOrder};
use crate::sim::request::{OrdersQuery, StatusFilter};

/// Decimal places kept for ratios (`unrealized_plpc`, `change_today`...).
const RATIO_DP: u32 = 10;

fn ratio(a: Decimal, b: Decimal) -> Decimal {
    // Checked: a tiny cost basis under a large P/L would overflow (and panic the handler).
    a.checked_div(b).map_or(Decimal::ZERO, |r| r.round_dp(RATIO_DP).normalize())
}

impl SimBroker {
    /// `GET /v2/account`.
    #[must_use]
    pub fn account(&self) -> AlpacaAccount {
        let f = self.figures(None);
        AlpacaAccount {
            id: self.account.id.to_string(),
            account_number: self.account.number.clone(),
            status: self.account.status.clone(),
            crypto_status: None,
            currency: Some(self.account.currency.clone()),
            cash: Some(f.cash),
            buying_power: Some(f.buying_power),
            regt_buying_power: Some(f.buying_power),
            non_marginable_buying_power: Some(f.non_marginable_buying_power),
            portfolio_value: Some(f.equity),
            equity: Some(f.equity),
            last_equity: Some(self.account.last_equity),
            long_market_value: Some(f.long_market_value),
            short_market_value: Some(f.short_market_value),
            position_market_value: Some(f.long_market_value + f.short_market_value),
            initial_margin: Some(f.initial_margin),
            maintenance_margin: Some(f.maintenance_margin),
            multiplier: Some(self.config.max_margin_multiplier.clone()),
            shorting_enabled: Some(self.account.shorting_enabled && f.multiplier > Decimal::ONE),
            trading_blocked: Some(self.account.trading_blocked),
            transfers_blocked: Some(self.account.transfers_blocked),
            account_blocked: Some(self.account.account_blocked),
            trade_suspended_by_user: Some(self.config.suspend_trade),
            created_at: Some(self.account.created_at),
        }
    }

    /// The account figures; `excluding` leaves one open order out of the exposure.
    #[must_use]
    pub(super) fn figures(&self, excluding: Option<Uuid>) -> Figures {
        let exposure: Decimal = self
            .orders
            .iter()
            .filter(|o| o.status.is_open() && o.intent.opens() && Some(o.id) != excluding)
            .map(|o| o.remaining() * o.reference_price(self.prices.get(&o.symbol).copied().unwrap_or_default()))
            .sum();
        figures(
            self.account.cash,
            self.positions.iter().map(|(s, h)| (h.qty, self.prices.get(s).copied().unwrap_or(h.avg_entry_price))),
            self.config.multiplier(),
            exposure,
        )
    }

    /// `GET /v2/positions`, by symbol.
    #[must_use]
    pub fn positions(&self) -> Vec<AlpacaPosition> {
        self.positions.iter().map(|(s, h)| self.position_wire(s, *h)).collect()
    }

    /// `GET /v2/positions/{symbol_or_asset_id}`.
    ///
    /// # Errors
    /// 404 40410000 "position does not exist".
    pub fn position(&self, key: &str) -> Result<AlpacaPosition, ApiError> {
        let symbol = self.position_symbol(key).ok_or_else(|| ApiError::not_found("position does not exist"))?;
        Ok(self.position_wire(&symbol, self.positions[&symbol]))
    }

    pub(super) fn position_symbol(&self, key: &str) -> Option<String> {
        let plain = key.split(':').next().unwrap_or(key);
        if self.positions.contains_key(plain) {
            return Some(plain.to_owned());
        }
        let id = Uuid::parse_str(key).ok()?;
        self.positions.keys().find(|s| self.assets.get(*s).is_some_and(|a| a.id == id)).cloned()
    }

    fn position_wire(&self, symbol: &str, h: Holding) -> AlpacaPosition {
        let price = self.prices.get(symbol).copied().unwrap_or(h.avg_entry_price);
        let lastday = self.lastday.get(symbol).copied().unwrap_or(price);
        let market_value = h.qty * price;
        let cost_basis = h.qty * h.avg_entry_price;
        let unrealized = market_value - cost_basis;
        let intraday = h.qty * (price - lastday);
        let long = h.qty > Decimal::ZERO;
        let held = self.held(symbol, if long { OrderSide::Sell } else { OrderSide::Buy }, None);
        let (asset_id, exchange) = self
            .assets
            .get(symbol)
            .map_or_else(|| (String::new(), "NASDAQ".to_owned()), |a| (a.id.to_string(), a.exchange.clone()));
        AlpacaPosition {
            asset_id,
            symbol: symbol.to_owned(),
            exchange,
            asset_class: "us_equity".into(),
            asset_marginable: true,
            qty: Some(h.qty),
            qty_available: Some(if long { h.qty - held } else { h.qty + held }),
            avg_entry_price: Some(h.avg_entry_price),
            side: if long { "long" } else { "short" }.into(),
            market_value: Some(market_value),
            cost_basis: Some(cost_basis),
            unrealized_pl: Some(unrealized),
            unrealized_plpc: Some(ratio(unrealized, cost_basis.abs())),
            unrealized_intraday_pl: Some(intraday),
            unrealized_intraday_plpc: Some(ratio(intraday, (h.qty * lastday).abs())),
            current_price: Some(price),
            lastday_price: Some(lastday),
            change_today: Some(ratio(price - lastday, lastday)),
        }
    }

    /// `GET /v2/orders`.
    #[must_use]
    pub fn orders(&self, q: &OrdersQuery) -> Vec<AlpacaOrder> {
        let mut picked: Vec<&SimOrder> = self
            .orders
            .iter()
            .filter(|o| match q.status {
                StatusFilter::Open => o.status.is_open(),
                StatusFilter::Closed => o.status.is_terminal(),
                StatusFilter::All => true,
            })
            .filter(|o| q.symbols.as_ref().is_none_or(|s| s.contains(&o.symbol)))
            .filter(|o| q.side.is_none_or(|s| s == o.side))
            .filter(|o| q.after.is_none_or(|t| o.submitted_at > t))
            .filter(|o| q.until.is_none_or(|t| o.submitted_at < t))
            .collect();
        picked.sort_by_key(|o| (o.submitted_at, o.seq));
        if !q.ascending {
            picked.reverse();
        }
        picked.into_iter().take(q.limit).map(SimOrder::to_wire).collect()
    }

    /// Every order, any status, in submission order.
    #[must_use]
    pub fn all_orders(&self) -> Vec<AlpacaOrder> {
        self.orders.iter().map(SimOrder::to_wire).collect()
    }

    pub(super) fn find_order(&self, id: &str) -> Result<usize, ApiError> {
        let id = Uuid::parse_str(id).map_err(|_| ApiError::invalid("order_id is missing"))?;
        self.orders.iter().position(|o| o.id == id).ok_or_else(|| ApiError::not_found("order not found"))
    }

    /// `GET /v2/orders/{order_id}`.
    ///
    /// # Errors
    /// 404 when unknown; 422 when the id is not a UUID.
    pub fn order(&self, id: &str) -> Result<AlpacaOrder, ApiError> {
        Ok(self.orders[self.find_order(id)?].to_wire())
    }

    /// `GET /v2/orders:by_client_order_id`.
    ///
    /// # Errors
    /// 404 when no order has that id.
    pub fn order_by_client_id(&self, client_order_id: &str) -> Result<AlpacaOrder, ApiError> {
        self.orders
            .iter()
            .find(|o| o.client_order_id == client_order_id)
            .map(SimOrder::to_wire)
            .ok_or_else(|| ApiError::not_found("order not found"))
    }

    /// `GET /v2/clock`.
    #[must_use]
    pub fn clock(&self) -> AlpacaClock {
        market::clock(self.clock.now(), self.market_open)
    }

    /// `GET /v2/calendar`: weekdays (holidays are not modelled). Without `start`, 30 days
    /// before `end` or today; without `end`, 30 days after `start`.
    #[must_use]
    pub fn calendar(&self, start: Option<NaiveDate>, end: Option<NaiveDate>) -> Vec<CalendarDay> {
        let today = market::today(self.clock.now());
        let start = start.unwrap_or_else(|| end.map_or(today, |e| e - Days::new(30)));
        let end = end.unwrap_or_else(|| start + Days::new(30));
        market::calendar(start, end)
    }

    /// `GET /v2/account/configurations`.
    #[must_use]
    pub fn configuration(&self) -> AlpacaAccountConfiguration {
        self.config.to_wire()
    }

    /// Current prices.
    #[must_use]
    pub fn prices(&self) -> &BTreeMap<String, Decimal> {
        &self.prices
    }

    pub(super) fn client_id_taken(&self, client_order_id: &str) -> bool {
        self.orders.iter().any(|o| o.client_order_id == client_order_id)
    }

    pub(super) fn mark(&self, symbol: &str) -> Result<Decimal, ApiError> {
        self.prices.get(symbol).copied().ok_or_else(|| {
            ApiError::unprocessable(format!("invalid symbol: the simulator has no price for `{symbol}`"))
        })
    }

    pub(super) fn position_qty(&self, symbol: &str) -> Decimal {
        self.positions.get(symbol).map_or(Decimal::ZERO, |h| h.qty)
    }

    /// Shares that open orders on `side` still hold in `symbol`.
    pub(super) fn held(&self, symbol: &str, side: OrderSide, excluding: Option<Uuid>) -> Decimal {
        self.orders
            .iter()
            .filter(|o| o.symbol == symbol && o.side == side && o.status.is_open() && Some(o.id) != excluding)
            .map(SimOrder::remaining)
            .sum()
    }

    pub(super) fn open_with_intent(&self, symbol: &str, intent: Intent, excluding: Option<Uuid>) -> bool {
        self.orders
            .iter()
            .any(|o| o.symbol == symbol && o.intent == intent && o.status.is_open() && Some(o.id) != excluding)
    }
}
