//! Seeding: the account a scenario describes, every problem in it reported at once.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use uuid::Uuid;

use super::configuration::Configuration;
use super::rules::notional_shares;
use super::{AccountState, Asset, Holding, SimBroker};
use crate::clock::Clock;
use crate::model::{OrderSide, Symbol};
use crate::sim::order::{Intent, OrderStatus, OrderType, SimOrder, TimeInForce};
use crate::sim::request::ConfigPatch;
use crate::sim::scenario::{OrderSeed, PositionSeed, Scenario};

/// Exchanges alpaca-py accepts in a position.
const EXCHANGES: [&str; 13] =
    ["AMEX", "ARCA", "ASCX", "BATS", "NYSE", "NASDAQ", "NYSEARCA", "FTXU", "CBSE", "GNSS", "ERSX", "OTC", "CRYPTO"];

fn parse_uuid(text: &str, what: &str) -> Result<Uuid, String> {
    Uuid::parse_str(text).map_err(|_| format!("{what} `{text}` is not a UUID"))
}

pub(super) fn check_price(symbol: &str, price: Decimal) -> Result<(), String> {
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
                notional_shares(n.0, *p).ok_or("notional / price is out of the simulator's range")?
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
        let hwm = (kind == OrderType::TrailingStop).then(|| self.prices.get(&o.symbol).copied()).flatten();
        let mut order = SimOrder::new(&o.symbol, asset_id, side, intent, shares, Some(client_order_id), submitted_at);
        order.id = id;
        order.seq = seq;
        order.created_at = o.created_at.unwrap_or(submitted_at);
        order.updated_at = updated_at;
        order.filled_at = (status == OrderStatus::Filled).then_some(updated_at);
        order.canceled_at = (status == OrderStatus::Canceled).then_some(updated_at);
        order.replaced_at = (status == OrderStatus::Replaced).then_some(updated_at);
        order.notional = o.notional.map(|n| n.0);
        order.filled_qty = filled_qty;
        order.filled_avg_price = o.filled_avg_price.map(|p| p.0);
        order.kind = kind;
        order.time_in_force = time_in_force;
        order.limit_price = o.limit_price.map(|p| p.0);
        order.stop_price = o.stop_price.map(|p| p.0);
        order.trail_price = o.trail_price.map(|p| p.0);
        order.trail_percent = o.trail_percent.map(|p| p.0);
        order.hwm = hwm;
        order.status = status;
        order.extended_hours = o.extended_hours.unwrap_or(false);
        self.orders.push(order);
        Ok(())
    }
}
