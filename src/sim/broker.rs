//! The simulated brokerage account: a pure, synchronous state machine (no I/O, time from an
//! injected [`Clock`]). The HTTP layer parses requests, calls one method, and serializes what
//! comes back; every rejection is an [`ApiError`] with Alpaca's status and code.
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

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Days, NaiveDate, Utc};
use rust_decimal::{Decimal, RoundingStrategy};
use serde::Serialize;
use uuid::Uuid;

use super::account::{Figures, figures};
use super::error::ApiError;
use super::market::{self, CalendarDay};
use super::order::{Intent, OrderStatus, OrderType, SimOrder, TimeInForce};
use super::request::{CloseQuery, ConfigPatch, OrderRequest, OrdersQuery, ReplaceRequest, StatusFilter};
use super::scenario::{OrderSeed, PositionSeed, Scenario};
use crate::clock::Clock;
use crate::collect::broker::wire::{
    AlpacaAccount, AlpacaAccountConfiguration, AlpacaClock, AlpacaOrder, AlpacaPosition,
};
use crate::model::{OrderSide, Symbol};

/// Exchanges alpaca-py accepts in a position.
const EXCHANGES: [&str; 13] =
    ["AMEX", "ARCA", "ASCX", "BATS", "NYSE", "NASDAQ", "NYSEARCA", "FTXU", "CBSE", "GNSS", "ERSX", "OTC", "CRYPTO"];

/// Decimal places kept for average prices.
const PRICE_DP: u32 = 6;
/// Decimal places kept for ratios (`unrealized_plpc`, `change_today`...).
const RATIO_DP: u32 = 10;
/// Decimal places of a share quantity (Alpaca allows 9).
const QTY_DP: u32 = 9;

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

#[derive(Debug, Clone, PartialEq, Eq)]
struct Configuration {
    trade_confirm_email: String,
    suspend_trade: bool,
    no_shorting: bool,
    fractional_trading: bool,
    max_margin_multiplier: String,
    max_options_trading_level: u8,
    ptp_no_exception_entry: bool,
    disable_overnight_trading: bool,
}

impl Default for Configuration {
    fn default() -> Self {
        Self {
            trade_confirm_email: "all".into(),
            suspend_trade: false,
            no_shorting: false,
            fractional_trading: true,
            max_margin_multiplier: "2".into(),
            max_options_trading_level: 0,
            ptp_no_exception_entry: false,
            disable_overnight_trading: false,
        }
    }
}

impl Configuration {
    fn apply(&mut self, p: &ConfigPatch) {
        if let Some(v) = &p.trade_confirm_email {
            self.trade_confirm_email.clone_from(v);
        }
        if let Some(v) = &p.max_margin_multiplier {
            self.max_margin_multiplier.clone_from(v);
        }
        let flags = [
            (&mut self.suspend_trade, p.suspend_trade),
            (&mut self.no_shorting, p.no_shorting),
            (&mut self.fractional_trading, p.fractional_trading),
            (&mut self.ptp_no_exception_entry, p.ptp_no_exception_entry),
            (&mut self.disable_overnight_trading, p.disable_overnight_trading),
        ];
        for (field, value) in flags {
            if let Some(v) = value {
                *field = v;
            }
        }
        if let Some(v) = p.max_options_trading_level {
            self.max_options_trading_level = v;
        }
    }

    fn multiplier(&self) -> Decimal {
        crate::num::parse_decimal(&self.max_margin_multiplier).unwrap_or(Decimal::ONE)
    }

    fn to_wire(&self) -> AlpacaAccountConfiguration {
        AlpacaAccountConfiguration {
            trade_confirm_email: Some(self.trade_confirm_email.clone()),
            suspend_trade: Some(self.suspend_trade),
            no_shorting: Some(self.no_shorting),
            fractional_trading: Some(self.fractional_trading),
            max_margin_multiplier: Some(self.max_margin_multiplier.clone()),
            max_options_trading_level: Some(self.max_options_trading_level),
            ptp_no_exception_entry: Some(self.ptp_no_exception_entry),
            disable_overnight_trading: Some(self.disable_overnight_trading),
        }
    }
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

fn ratio(a: Decimal, b: Decimal) -> Decimal {
    // Checked: a tiny cost basis under a large P/L would overflow (and panic the handler).
    a.checked_div(b).map_or(Decimal::ZERO, |r| r.round_dp(RATIO_DP).normalize())
}

fn limit_crossed(buy: bool, mark: Decimal, limit: Option<Decimal>) -> bool {
    limit.is_some_and(|l| if buy { mark <= l } else { mark >= l })
}

fn stop_reached(buy: bool, mark: Decimal, stop: Option<Decimal>) -> bool {
    stop.is_some_and(|s| if buy { mark >= s } else { mark <= s })
}

fn parse_uuid(text: &str, what: &str) -> Result<Uuid, String> {
    Uuid::parse_str(text).map_err(|_| format!("{what} `{text}` is not a UUID"))
}

fn check_price(symbol: &str, price: Decimal) -> Result<(), String> {
    Symbol::new_checked(symbol)?;
    if price <= Decimal::ZERO {
        return Err(format!("the price of `{symbol}` must be positive, got {price}"));
    }
    Ok(())
}

impl SimBroker {
    /// The account a scenario describes.
    ///
    /// # Errors
    /// Every problem found in the scenario, one per line.
    pub fn from_scenario(scenario: &Scenario, clock: Arc<dyn Clock>) -> Result<Self, String> {
        let now = clock.now();
        let mut problems = Vec::new();
        let seed = scenario.account.clone().unwrap_or_default();
        let id = match seed.id.as_deref().map(|t| parse_uuid(t, "account id")) {
            None => Uuid::new_v4(),
            Some(Ok(u)) => u,
            Some(Err(e)) => {
                problems.push(e);
                Uuid::new_v4()
            }
        };
        let number = seed.account_number.clone().unwrap_or_else(|| {
            let hex = Uuid::new_v4().simple().to_string().to_ascii_uppercase();
            format!("PA{}", &hex[..10])
        });
        let mut config = Configuration::default();
        if let Some(map) = &scenario.configurations {
            match ConfigPatch::from_map(map) {
                Ok(p) => config.apply(&p),
                Err(e) => problems.push(format!("configurations: {}", e.body.message)),
            }
        }
        let mut broker = Self {
            clock,
            account: AccountState {
                id,
                number,
                status: seed.status.as_deref().unwrap_or("ACTIVE").to_ascii_uppercase(),
                currency: seed.currency.clone().unwrap_or_else(|| "USD".into()),
                cash: seed.cash.map_or(Decimal::new(100_000, 0), |d| d.0),
                last_equity: Decimal::ZERO,
                shorting_enabled: seed.shorting_enabled.unwrap_or(true),
                trading_blocked: seed.trading_blocked.unwrap_or(false),
                account_blocked: seed.account_blocked.unwrap_or(false),
                transfers_blocked: seed.transfers_blocked.unwrap_or(false),
                created_at: seed.created_at.unwrap_or(now),
            },
            config,
            positions: BTreeMap::new(),
            orders: Vec::new(),
            prices: BTreeMap::new(),
            lastday: BTreeMap::new(),
            assets: BTreeMap::new(),
            market_open: scenario.clock.as_ref().and_then(|c| c.is_open).unwrap_or(true),
            next_seq: 0,
        };
        for (symbol, price) in scenario.prices.iter().flatten() {
            match check_price(symbol, price.0) {
                Ok(()) => {
                    broker.prices.insert(symbol.clone(), price.0);
                }
                Err(e) => problems.push(format!("prices: {e}")),
            }
        }
        for (symbol, price) in scenario.lastday_prices.iter().flatten() {
            match check_price(symbol, price.0) {
                Ok(()) => {
                    broker.lastday.insert(symbol.clone(), price.0);
                }
                Err(e) => problems.push(format!("lastday_prices: {e}")),
            }
        }
        for (i, p) in scenario.positions.iter().flatten().enumerate() {
            if let Err(e) = broker.seed_position(p) {
                problems.push(format!("positions[{i}] ({}): {e}", p.symbol));
            }
        }
        for (i, o) in scenario.orders.iter().flatten().enumerate() {
            if let Err(e) = broker.seed_order(o, now) {
                problems.push(format!("orders[{i}] ({}): {e}", o.symbol));
            }
        }
        let prices: Vec<(String, Decimal)> = broker.prices.iter().map(|(s, p)| (s.clone(), *p)).collect();
        for (symbol, price) in prices {
            broker.lastday.entry(symbol.clone()).or_insert(price);
            broker.asset(&symbol);
        }
        broker.account.last_equity = seed.last_equity.map_or_else(|| broker.figures(None).equity, |d| d.0);
        if problems.is_empty() { Ok(broker) } else { Err(problems.join("\n")) }
    }

    fn seed_position(&mut self, p: &PositionSeed) -> Result<(), String> {
        Symbol::new_checked(&p.symbol)?;
        if self.positions.contains_key(&p.symbol) {
            return Err("a second position for the same symbol".into());
        }
        let mut qty = p.qty.0.normalize();
        if qty.is_zero() {
            return Err("qty must not be 0 (flat positions do not exist)".into());
        }
        match p.side.as_deref() {
            None => {}
            Some("long") if qty.is_sign_negative() => return Err("side `long` with a negative qty".into()),
            Some("long") => {}
            Some("short") => qty = -qty.abs(),
            Some(other) => return Err(format!("side must be `long` or `short`, got `{other}`")),
        }
        let avg = match (p.avg_entry_price, self.prices.get(&p.symbol)) {
            (Some(a), _) => a.0,
            (None, Some(price)) => *price,
            (None, None) => return Err("needs `avg_entry_price` or a price in `prices`".into()),
        };
        if avg <= Decimal::ZERO {
            return Err("avg_entry_price must be positive".into());
        }
        let exchange = p.exchange.clone().unwrap_or_else(|| "NASDAQ".into());
        if !EXCHANGES.contains(&exchange.as_str()) {
            return Err(format!("exchange `{exchange}` is not one Alpaca reports (e.g. NASDAQ, NYSE, ARCA)"));
        }
        let id = match &p.asset_id {
            Some(t) => parse_uuid(t, "asset_id")?,
            None => Uuid::new_v4(),
        };
        self.assets.insert(p.symbol.clone(), Asset { id, exchange });
        // A position always has a mark, so it can be valued and closed.
        self.prices.entry(p.symbol.clone()).or_insert(avg);
        if let Some(l) = p.lastday_price {
            check_price(&p.symbol, l.0)?;
            self.lastday.insert(p.symbol.clone(), l.0);
        }
        self.positions.insert(p.symbol.clone(), Holding { qty, avg_entry_price: avg });
        Ok(())
    }

    fn seed_order(&mut self, o: &OrderSeed, now: DateTime<Utc>) -> Result<(), String> {
        Symbol::new_checked(&o.symbol)?;
        let side =
            OrderSide::parse(&o.side).ok_or_else(|| format!("side must be `buy` or `sell`, got `{}`", o.side))?;
        let kind = match &o.kind {
            Some(k) => OrderType::parse(k).ok_or_else(|| format!("unknown type `{k}`"))?,
            None if o.limit_price.is_some() => OrderType::Limit,
            None => OrderType::Market,
        };
        let time_in_force = match &o.time_in_force {
            Some(t) => TimeInForce::parse(t).ok_or_else(|| format!("unknown time_in_force `{t}`"))?,
            None => TimeInForce::Day,
        };
        let status = match &o.status {
            Some(s) => OrderStatus::parse(s).ok_or_else(|| format!("unknown status `{s}`"))?,
            None => OrderStatus::New,
        };
        let shares = match (o.qty, o.notional, self.prices.get(&o.symbol)) {
            (Some(q), None, _) => q.0.normalize(),
            (None, Some(n), Some(p)) => {
                n.0.checked_div(*p)
                    .and_then(|s| super::scenario::in_range(s).ok())
                    .ok_or("notional / price is out of the simulator's range")?
                    .round_dp_with_strategy(QTY_DP, RoundingStrategy::ToZero)
                    .normalize()
            }
            (None, Some(_), None) => return Err("a notional order needs a price in `prices`".into()),
            _ => return Err("needs exactly one of `qty` and `notional`".into()),
        };
        if shares <= Decimal::ZERO {
            return Err("qty must be positive".into());
        }
        if kind.needs_limit() && o.limit_price.is_none() {
            return Err(format!("a {} order needs `limit_price`", kind.as_str()));
        }
        if kind.needs_stop() && o.stop_price.is_none() {
            return Err(format!("a {} order needs `stop_price`", kind.as_str()));
        }
        if kind == OrderType::TrailingStop && o.trail_price.is_none() == o.trail_percent.is_none() {
            return Err("a trailing_stop order needs exactly one of `trail_price` and `trail_percent`".into());
        }
        let id = match &o.id {
            Some(t) => parse_uuid(t, "id")?,
            None => Uuid::new_v4(),
        };
        if self.orders.iter().any(|x| x.id == id) {
            return Err(format!("duplicate order id {id}"));
        }
        let client_order_id = o.client_order_id.clone().unwrap_or_else(|| Uuid::new_v4().to_string());
        if self.client_id_taken(&client_order_id) {
            return Err(format!("duplicate client_order_id `{client_order_id}`"));
        }
        let pos = self.position_qty(&o.symbol);
        let intent = match side {
            OrderSide::Buy if pos.is_sign_negative() && !pos.is_zero() => Intent::BuyToClose,
            OrderSide::Buy => Intent::BuyToOpen,
            OrderSide::Sell if pos > Decimal::ZERO => Intent::SellToClose,
            OrderSide::Sell => Intent::SellToOpen,
        };
        let submitted_at = o.submitted_at.unwrap_or(now);
        let updated_at = o.updated_at.unwrap_or(submitted_at);
        let filled_qty = match (o.filled_qty, status) {
            (Some(f), _) => f.0.normalize(),
            (None, OrderStatus::Filled) => shares,
            (None, _) => Decimal::ZERO,
        };
        let asset_id = self.asset(&o.symbol).id;
        let seq = self.bump_seq();
        self.orders.push(SimOrder {
            id,
            client_order_id,
            seq,
            created_at: o.created_at.unwrap_or(submitted_at),
            updated_at,
            submitted_at,
            filled_at: (status == OrderStatus::Filled).then_some(updated_at),
            canceled_at: (status == OrderStatus::Canceled).then_some(updated_at),
            replaced_at: (status == OrderStatus::Replaced).then_some(updated_at),
            replaced_by: None,
            replaces: None,
            symbol: o.symbol.clone(),
            asset_id,
            notional: o.notional.map(|n| n.0),
            shares,
            filled_qty,
            filled_avg_price: o.filled_avg_price.map(|p| p.0),
            kind,
            side,
            intent,
            time_in_force,
            limit_price: o.limit_price.map(|p| p.0),
            stop_price: o.stop_price.map(|p| p.0),
            trail_price: o.trail_price.map(|p| p.0),
            trail_percent: o.trail_percent.map(|p| p.0),
            hwm: (kind == OrderType::TrailingStop).then(|| self.prices.get(&o.symbol).copied()).flatten(),
            triggered: false,
            status,
            extended_hours: o.extended_hours.unwrap_or(false),
        });
        Ok(())
    }

    // ----- reading -------------------------------------------------------------------------

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
    fn figures(&self, excluding: Option<Uuid>) -> Figures {
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

    fn position_symbol(&self, key: &str) -> Option<String> {
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

    fn find_order(&self, id: &str) -> Result<usize, ApiError> {
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

    // ----- changing ------------------------------------------------------------------------

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
            Some(n) => n
                .checked_div(mark)
                .and_then(|s| super::scenario::in_range(s).ok())
                .ok_or_else(|| ApiError::invalid("notional / price is out of range"))?
                .round_dp_with_strategy(QTY_DP, RoundingStrategy::ToZero)
                .normalize(),
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
        let order = SimOrder {
            id: Uuid::new_v4(),
            client_order_id: req.client_order_id.clone().unwrap_or_else(|| Uuid::new_v4().to_string()),
            seq: 0,
            created_at: now,
            updated_at: now,
            submitted_at: now,
            filled_at: None,
            canceled_at: None,
            replaced_at: None,
            replaced_by: None,
            replaces: None,
            symbol: req.symbol.clone(),
            asset_id: self.asset(&req.symbol).id,
            notional: req.notional,
            shares,
            filled_qty: Decimal::ZERO,
            filled_avg_price: None,
            kind: req.kind,
            side: req.side,
            intent,
            time_in_force: req.time_in_force,
            limit_price: req.limit_price,
            stop_price: req.stop_price,
            trail_price: req.trail_price,
            trail_percent: req.trail_percent,
            hwm: None,
            triggered: false,
            status: OrderStatus::New,
            extended_hours: req.extended_hours,
        };
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
        let order = SimOrder {
            id: Uuid::new_v4(),
            client_order_id: req.client_order_id.clone().unwrap_or_else(|| Uuid::new_v4().to_string()),
            seq: 0,
            created_at: now,
            updated_at: now,
            submitted_at: now,
            filled_at: None,
            canceled_at: None,
            replaced_at: None,
            replaced_by: None,
            replaces: Some(old.id),
            notional: None,
            shares,
            filled_qty: Decimal::ZERO,
            filled_avg_price: None,
            intent,
            time_in_force,
            limit_price: req.limit_price.or(old.limit_price),
            stop_price: if kind == OrderType::TrailingStop { None } else { req.stop_price.or(old.stop_price) },
            trail_price: trail(old.trail_price),
            trail_percent: trail(old.trail_percent),
            hwm: None,
            status: OrderStatus::New,
            ..old.clone()
        };
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
        let order = SimOrder {
            id: Uuid::new_v4(),
            client_order_id: Uuid::new_v4().to_string(),
            seq: 0,
            created_at: now,
            updated_at: now,
            submitted_at: now,
            filled_at: None,
            canceled_at: None,
            replaced_at: None,
            replaced_by: None,
            replaces: None,
            symbol: symbol.clone(),
            asset_id: self.asset(&symbol).id,
            notional: None,
            shares,
            filled_qty: Decimal::ZERO,
            filled_avg_price: None,
            kind: OrderType::Market,
            side,
            intent: if side == OrderSide::Sell { Intent::SellToClose } else { Intent::BuyToClose },
            time_in_force: TimeInForce::Day,
            limit_price: None,
            stop_price: None,
            trail_price: None,
            trail_percent: None,
            hwm: None,
            triggered: false,
            status: OrderStatus::New,
            extended_hours: false,
        };
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

    // ----- internals -----------------------------------------------------------------------

    fn bump_seq(&mut self) -> u64 {
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

    fn asset(&mut self, symbol: &str) -> &Asset {
        self.assets.entry(symbol.to_owned()).or_insert_with(|| Asset { id: Uuid::new_v4(), exchange: "NASDAQ".into() })
    }

    fn client_id_taken(&self, client_order_id: &str) -> bool {
        self.orders.iter().any(|o| o.client_order_id == client_order_id)
    }

    fn mark(&self, symbol: &str) -> Result<Decimal, ApiError> {
        self.prices.get(symbol).copied().ok_or_else(|| {
            ApiError::unprocessable(format!("invalid symbol: the simulator has no price for `{symbol}`"))
        })
    }

    fn position_qty(&self, symbol: &str) -> Decimal {
        self.positions.get(symbol).map_or(Decimal::ZERO, |h| h.qty)
    }

    /// Shares that open orders on `side` still hold in `symbol`.
    fn held(&self, symbol: &str, side: OrderSide, excluding: Option<Uuid>) -> Decimal {
        self.orders
            .iter()
            .filter(|o| o.symbol == symbol && o.side == side && o.status.is_open() && Some(o.id) != excluding)
            .map(SimOrder::remaining)
            .sum()
    }

    fn open_with_intent(&self, symbol: &str, intent: Intent, excluding: Option<Uuid>) -> bool {
        self.orders
            .iter()
            .any(|o| o.symbol == symbol && o.intent == intent && o.status.is_open() && Some(o.id) != excluding)
    }

    fn shorting_allowed(&self) -> bool {
        self.account.shorting_enabled && !self.config.no_shorting && self.config.multiplier() > Decimal::ONE
    }

    fn check_can_trade(&self) -> Result<(), ApiError> {
        if self.account.account_blocked {
            return Err(ApiError::forbidden("account is blocked"));
        }
        if self.account.trading_blocked {
            return Err(ApiError::forbidden("trading is blocked for this account"));
        }
        if self.account.status != "ACTIVE" {
            return Err(ApiError::forbidden(format!("account is not active (status {})", self.account.status)));
        }
        if self.config.suspend_trade {
            return Err(ApiError::forbidden("trading is suspended for this account (suspend_trade)"));
        }
        Ok(())
    }

    /// The position rules; the intent of an acceptable order.
    fn intent_for(
        &self,
        symbol: &str,
        side: OrderSide,
        shares: Decimal,
        fractional_or_notional: bool,
        excluding: Option<Uuid>,
    ) -> Result<Intent, ApiError> {
        let pos = self.position_qty(symbol);
        match side {
            OrderSide::Sell if pos > Decimal::ZERO => {
                let held = self.held(symbol, OrderSide::Sell, excluding);
                if shares > pos - held {
                    return Err(ApiError::insufficient_qty(symbol, shares, pos, held));
                }
                Ok(Intent::SellToClose)
            }
            OrderSide::Sell => {
                if !self.shorting_allowed() {
                    return Err(ApiError::forbidden("account is not allowed to short"));
                }
                if fractional_or_notional {
                    return Err(ApiError::forbidden("fractional orders are not allowed to short"));
                }
                if pos.is_zero() && self.open_with_intent(symbol, Intent::BuyToOpen, excluding) {
                    return Err(ApiError::forbidden("cannot open a short sell while a long buy order is open"));
                }
                Ok(Intent::SellToOpen)
            }
            OrderSide::Buy if pos < Decimal::ZERO => {
                let held = self.held(symbol, OrderSide::Buy, excluding);
                if shares > -pos - held {
                    return Err(ApiError::insufficient_qty(symbol, shares, pos, held));
                }
                Ok(Intent::BuyToClose)
            }
            OrderSide::Buy => {
                if pos.is_zero() && self.open_with_intent(symbol, Intent::SellToOpen, excluding) {
                    return Err(ApiError::forbidden("cannot open a long buy while a short sell order is open"));
                }
                Ok(Intent::BuyToOpen)
            }
        }
    }

    fn check_buying_power(&self, order: &SimOrder, mark: Decimal, excluding: Option<Uuid>) -> Result<(), ApiError> {
        if !order.intent.opens() {
            return Ok(());
        }
        let need = order.remaining() * order.reference_price(mark);
        let available = self.figures(excluding).buying_power;
        if need > available {
            return Err(ApiError::forbidden(format!(
                "insufficient buying power (required: {}, available: {})",
                need.round_dp(2),
                available.round_dp(2)
            )));
        }
        Ok(())
    }

    /// Fills order `idx` if the current price allows; true when it filled.
    fn evaluate(&mut self, idx: usize) -> bool {
        let now = self.clock.now();
        let Some(mark) = self.prices.get(&self.orders[idx].symbol).copied() else {
            return false;
        };
        let o = &mut self.orders[idx];
        if !o.status.is_open() || o.remaining().is_zero() {
            return false;
        }
        let buy = o.side == OrderSide::Buy;
        let fills = match o.kind {
            OrderType::Market => true,
            OrderType::Limit => limit_crossed(buy, mark, o.limit_price),
            OrderType::Stop | OrderType::StopLimit => {
                if !o.triggered && stop_reached(buy, mark, o.stop_price) {
                    o.triggered = true;
                    o.updated_at = now;
                }
                o.triggered && (o.kind == OrderType::Stop || limit_crossed(buy, mark, o.limit_price))
            }
            OrderType::TrailingStop => {
                let hwm = match o.hwm {
                    Some(h) if buy => h.min(mark),
                    Some(h) => h.max(mark),
                    None => mark,
                };
                let offset =
                    o.trail_price.unwrap_or_else(|| hwm * o.trail_percent.unwrap_or_default() / Decimal::ONE_HUNDRED);
                let stop = (if buy { hwm + offset } else { hwm - offset }).round_dp(PRICE_DP).normalize();
                o.hwm = Some(hwm);
                o.stop_price = Some(stop);
                stop_reached(buy, mark, Some(stop))
            }
        };
        if fills {
            let (symbol, side, qty) = (o.symbol.clone(), o.side, o.remaining());
            o.filled_avg_price = Some(match o.filled_avg_price {
                Some(prev) if !o.filled_qty.is_zero() => {
                    ((prev * o.filled_qty + mark * qty) / (o.filled_qty + qty)).round_dp(PRICE_DP).normalize()
                }
                _ => mark,
            });
            o.filled_qty += qty;
            o.status = OrderStatus::Filled;
            o.filled_at = Some(now);
            o.updated_at = now;
            self.trade(&symbol, side, qty, mark);
        }
        fills
    }

    /// Books a fill: cash and position.
    fn trade(&mut self, symbol: &str, side: OrderSide, qty: Decimal, price: Decimal) {
        let value = qty * price;
        let signed = match side {
            OrderSide::Buy => {
                self.account.cash -= value;
                qty
            }
            OrderSide::Sell => {
                self.account.cash += value;
                -qty
            }
        };
        let (old_qty, old_avg) =
            self.positions.get(symbol).map_or((Decimal::ZERO, price), |h| (h.qty, h.avg_entry_price));
        let new_qty = (old_qty + signed).normalize();
        let adding = old_qty.is_zero() || old_qty.is_sign_negative() == signed.is_sign_negative();
        let avg = if adding {
            ((old_qty.abs() * old_avg + value) / new_qty.abs()).round_dp(PRICE_DP)
        } else if new_qty.is_zero() || new_qty.is_sign_negative() == old_qty.is_sign_negative() {
            old_avg
        } else {
            price
        };
        if new_qty.is_zero() {
            self.positions.remove(symbol);
        } else {
            self.positions.insert(symbol.to_owned(), Holding { qty: new_qty, avg_entry_price: avg });
        }
    }
}

#[cfg(test)]
mod tests;
