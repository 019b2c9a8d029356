//! Mutations: orders submitted, replaced and cancelled, positions closed, and the admin
//! changes (`/_sim` prices and clock, the configuration patch).

use std::collections::BTreeMap;

use rust_decimal::{Decimal, RoundingStrategy};
use serde::Serialize;
use uuid::Uuid;

use super::rules::{QTY_DP, notional_shares};
use super::seed::check_price;
use super::{Asset, SimBroker};
use crate::collect::broker::wire::{AlpacaAccountConfiguration, AlpacaClock, AlpacaOrder};
use crate::model::OrderSide;
use crate::sim::error::ApiError;
use crate::sim::order::{Intent, OrderStatus, OrderType, SimOrder, TimeInForce};
use crate::sim::request::{CloseQuery, ConfigPatch, OrderRequest, ReplaceRequest};

/// One element of the 207 answer of `DELETE /v2/orders`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CancelResult {
    /// The order.
    pub id: String,
    /// HTTP status for it.
    pub status: u16,
}

/// One element of the 207 answer of `DELETE /v2/positions`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CloseResult {
    /// The symbol.
    pub symbol: String,
    /// HTTP status for it.
    pub status: u16,
    /// The closing order (200), else the error body.
    pub body: serde_json::Value,
}

impl SimBroker {
    /// `PATCH /v2/account/configurations`: absent fields are unchanged; the whole object is
    /// returned.
    pub fn patch_configuration(&mut self, patch: &ConfigPatch) -> AlpacaAccountConfiguration {
        self.config.apply(patch);
        self.config.to_wire()
    }

    /// Opens or closes the market (`POST /_sim/clock`).
    pub fn set_market_open(&mut self, open: bool) -> AlpacaClock {
        self.market_open = open;
        self.clock()
    }

    /// Sets prices (`POST /_sim/prices`) and fills the resting orders they reach, oldest first.
    /// Returns the orders that filled.
    ///
    /// # Errors
    /// A sentence when a symbol or price is invalid (then nothing changes).
    pub fn set_prices(&mut self, prices: &BTreeMap<String, Decimal>) -> Result<Vec<AlpacaOrder>, String> {
        for (symbol, price) in prices {
            check_price(symbol, *price)?;
        }
        for (symbol, price) in prices {
            self.prices.insert(symbol.clone(), *price);
            self.lastday.entry(symbol.clone()).or_insert(*price);
            self.asset(symbol);
        }
        let mut filled = Vec::new();
        for i in 0..self.orders.len() {
            if self.orders[i].status.is_open() && prices.contains_key(&self.orders[i].symbol) && self.evaluate(i) {
                filled.push(self.orders[i].to_wire());
            }
        }
        Ok(filled)
    }

    /// `POST /v2/orders`.
    ///
    /// # Errors
    /// 403 for account rules (suspended, shorting, insufficient qty or buying power); 422 for a
    /// duplicate `client_order_id`, a symbol without a price, or an invalid field.
    pub fn submit(&mut self, req: &OrderRequest) -> Result<AlpacaOrder, ApiError> {
        self.check_can_trade()?;
        req.validate()?;
        if let Some(cid) = &req.client_order_id
            && self.client_id_taken(cid)
        {
            return Err(ApiError::invalid("client_order_id must be unique"));
        }
        let mark = self.mark(&req.symbol)?;
        let shares = match req.notional {
            Some(n) => notional_shares(n, mark).ok_or_else(|| ApiError::invalid("notional / price is out of range"))?,
            None => req.qty.unwrap_or_default().normalize(),
        };
        if shares <= Decimal::ZERO {
            return Err(ApiError::invalid("notional is too small for one share fraction"));
        }
        let fractional = !shares.fract().is_zero();
        if fractional && !self.config.fractional_trading {
            return Err(ApiError::forbidden("fractional trading is not enabled for this account"));
        }
        let intent = self.intent_for(&req.symbol, req.side, shares, fractional || req.notional.is_some(), None)?;
        let now = self.clock.now();
        let asset_id = self.asset(&req.symbol).id;
        let mut order =
            SimOrder::new(&req.symbol, asset_id, req.side, intent, shares, req.client_order_id.clone(), now);
        order.notional = req.notional;
        order.kind = req.kind;
        order.time_in_force = req.time_in_force;
        order.limit_price = req.limit_price;
        order.stop_price = req.stop_price;
        order.trail_price = req.trail_price;
        order.trail_percent = req.trail_percent;
        order.extended_hours = req.extended_hours;
        self.check_buying_power(&order, mark, None)?;
        Ok(self.accept(order))
    }

    /// `PATCH /v2/orders/{order_id}`: a new order replaces an open one.
    ///
    /// # Errors
    /// 404 unknown; 422 finished, not replaceable now, nothing to change, a field the order
    /// type does not take, or a duplicate `client_order_id`; 403 as for a new order.
    pub fn replace(&mut self, id: &str, req: &ReplaceRequest) -> Result<AlpacaOrder, ApiError> {
        self.check_can_trade()?;
        let idx = self.find_order(id)?;
        let old = self.orders[idx].clone();
        if old.status.is_terminal() {
            return Err(ApiError::unprocessable(format!("order is already in \"{}\" state", old.status.as_str())));
        }
        if matches!(
            old.status,
            OrderStatus::Accepted | OrderStatus::PendingNew | OrderStatus::PendingCancel | OrderStatus::PendingReplace
        ) {
            return Err(ApiError::unprocessable(format!(
                "order is in \"{}\" state and cannot be replaced yet",
                old.status.as_str()
            )));
        }
        if req.is_empty() {
            return Err(ApiError::invalid(
                "nothing to replace: give qty, time_in_force, limit_price, stop_price, trail or client_order_id",
            ));
        }
        let kind = old.kind;
        if req.limit_price.is_some() && !kind.needs_limit() {
            return Err(ApiError::invalid(format!("limit_price is not allowed for {} orders", kind.as_str())));
        }
        if req.stop_price.is_some() && !kind.needs_stop() {
            return Err(ApiError::invalid(format!("stop_price is not allowed for {} orders", kind.as_str())));
        }
        if req.trail.is_some() && kind != OrderType::TrailingStop {
            return Err(ApiError::invalid("trail is only for trailing_stop orders"));
        }
        if let Some(cid) = &req.client_order_id
            && self.client_id_taken(cid)
        {
            return Err(ApiError::invalid("client_order_id must be unique"));
        }
        let shares = req.qty.map_or_else(|| old.remaining(), |q| q.normalize());
        let time_in_force = req.time_in_force.unwrap_or(old.time_in_force);
        let fractional = !shares.fract().is_zero();
        if fractional && (!matches!(kind, OrderType::Market | OrderType::Limit) || time_in_force != TimeInForce::Day) {
            return Err(ApiError::invalid("fractional orders must be market or limit orders with time_in_force day"));
        }
        let intent = self.intent_for(&old.symbol, old.side, shares, fractional, Some(old.id))?;
        let mark = self.mark(&old.symbol)?;
        let now = self.clock.now();
        let trail = |given: Option<Decimal>| given.map(|g| req.trail.unwrap_or(g));
        // The replacement keeps the old order's symbol, side, type, extended hours and whether
        // its stop was reached; a trailing stop's stop and best price start over.
        let mut order =
            SimOrder::new(&old.symbol, old.asset_id, old.side, intent, shares, req.client_order_id.clone(), now);
        order.replaces = Some(old.id);
        order.kind = kind;
        order.time_in_force = time_in_force;
        order.extended_hours = old.extended_hours;
        order.triggered = old.triggered;
        order.limit_price = req.limit_price.or(old.limit_price);
        order.stop_price = if kind == OrderType::TrailingStop { None } else { req.stop_price.or(old.stop_price) };
        order.trail_price = trail(old.trail_price);
        order.trail_percent = trail(old.trail_percent);
        self.check_buying_power(&order, mark, Some(old.id))?;
        let o = &mut self.orders[idx];
        o.status = OrderStatus::Replaced;
        o.replaced_at = Some(now);
        o.updated_at = now;
        o.replaced_by = Some(order.id);
        Ok(self.accept(order))
    }

    /// `DELETE /v2/orders/{order_id}`.
    ///
    /// # Errors
    /// 404 unknown; 422 42210000 when the order is already finished.
    pub fn cancel(&mut self, id: &str) -> Result<(), ApiError> {
        let idx = self.find_order(id)?;
        let now = self.clock.now();
        let o = &mut self.orders[idx];
        if o.status.is_terminal() {
            return Err(ApiError::unprocessable(format!("order is already in \"{}\" state", o.status.as_str())));
        }
        o.status = OrderStatus::Canceled;
        o.canceled_at = Some(now);
        o.updated_at = now;
        Ok(())
    }

    /// `DELETE /v2/orders`: cancels every open order (synchronously: they are `canceled` at
    /// once, never `pending_cancel`).
    pub fn cancel_all(&mut self) -> Vec<CancelResult> {
        let open: Vec<String> = self.orders.iter().filter(|o| o.status.is_open()).map(|o| o.id.to_string()).collect();
        open.into_iter()
            .map(|id| {
                let status = match self.cancel(&id) {
                    Ok(()) => 200,
                    Err(e) => e.status,
                };
                CancelResult { id, status }
            })
            .collect()
    }

    /// `DELETE /v2/positions/{symbol_or_asset_id}`: a market order on the other side, filled
    /// at once.
    ///
    /// # Errors
    /// 404 when there is no position; 403 when open orders hold the shares or trading is not
    /// allowed; 422 for a quantity that rounds to nothing.
    pub fn close_position(&mut self, key: &str, q: &CloseQuery) -> Result<AlpacaOrder, ApiError> {
        let symbol =
            self.position_symbol(key).ok_or_else(|| ApiError::not_found(format!("position not found: {key}")))?;
        self.check_can_trade()?;
        let pos = self.positions[&symbol].qty;
        let side = if pos > Decimal::ZERO { OrderSide::Sell } else { OrderSide::Buy };
        let shares = match (q.qty, q.percentage) {
            (Some(qty), _) => qty,
            (None, Some(pct)) => {
                let raw = pos.abs() * pct / Decimal::ONE_HUNDRED;
                if pos.fract().is_zero() {
                    raw.floor()
                } else {
                    raw.round_dp_with_strategy(QTY_DP, RoundingStrategy::ToZero)
                }
            }
            (None, None) => pos.abs(),
        }
        .normalize();
        if shares <= Decimal::ZERO {
            return Err(ApiError::invalid("the quantity to close rounds to zero shares"));
        }
        let held = self.held(&symbol, side, None);
        if shares > pos.abs() - held {
            return Err(ApiError::insufficient_qty(&symbol, shares, pos, held));
        }
        self.mark(&symbol)?;
        let now = self.clock.now();
        let intent = if side == OrderSide::Sell { Intent::SellToClose } else { Intent::BuyToClose };
        let asset_id = self.asset(&symbol).id;
        let order = SimOrder::new(&symbol, asset_id, side, intent, shares, None, now);
        Ok(self.accept(order))
    }

    /// `DELETE /v2/positions`: optionally cancels every open order first, then closes each
    /// position (by symbol); one result per position.
    pub fn close_all(&mut self, cancel_orders: bool) -> Vec<CloseResult> {
        if cancel_orders {
            self.cancel_all();
        }
        let symbols: Vec<String> = self.positions.keys().cloned().collect();
        symbols
            .into_iter()
            .map(|symbol| match self.close_position(&symbol, &CloseQuery::default()) {
                Ok(order) => CloseResult { symbol, status: 200, body: serde_json::to_value(order).unwrap_or_default() },
                Err(e) => {
                    CloseResult { symbol, status: e.status, body: serde_json::to_value(e.body).unwrap_or_default() }
                }
            })
            .collect()
    }

    pub(super) fn bump_seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    /// Stores a new order, fills it if it can fill now, and cancels an unfilled ioc/fok.
    fn accept(&mut self, mut order: SimOrder) -> AlpacaOrder {
        order.seq = self.bump_seq();
        self.orders.push(order);
        let idx = self.orders.len() - 1;
        self.evaluate(idx);
        let o = &mut self.orders[idx];
        if o.status.is_open() && matches!(o.time_in_force, TimeInForce::Ioc | TimeInForce::Fok) {
            o.status = OrderStatus::Canceled;
            o.canceled_at = Some(o.updated_at);
        }
        o.to_wire()
    }

    pub(super) fn asset(&mut self, symbol: &str) -> &Asset {
        self.assets.entry(symbol.to_owned()).or_insert_with(|| Asset { id: Uuid::new_v4(), exchange: "NASDAQ".into() })
    }
}
