//! The broker as actions see it: a small trait with exactly the reads and writes remediation
//! needs, implemented by the Alpaca client (and by an in-memory fake in unit tests).
//!
//! What the trait leaves out is part of the safety argument: there is no way to submit an
//! order. Positions are only ever closed through the close-position endpoints, which size the
//! order themselves, so tradewarden cannot send an order that opens or deepens a short.
//! `close_all_positions` always asks the broker to cancel open orders first.

use std::future::Future;
use std::pin::Pin;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Serialize;

use crate::collect::broker::alpaca::{AlpacaClient, BrokerError, ConfigurationPatch};
use crate::collect::broker::wire::AlpacaOrder;
use crate::model::{AccountConfiguration, BrokerView, Mode, Order, Position};

/// A boxed, sendable future (the trait is used as `dyn`).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// An order the broker placed for us (a closing order): what the journal records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Placed {
    /// Broker id.
    pub id: String,
    /// The ticker.
    pub symbol: String,
    /// `buy` or `sell`.
    pub side: String,
    /// Shares, as the broker sized them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qty: Option<Decimal>,
    /// Order status when placed.
    pub status: String,
}

impl Placed {
    /// From Alpaca's order object.
    #[must_use]
    pub fn from_wire(o: &AlpacaOrder) -> Self {
        Self { id: o.id.clone(), symbol: o.symbol.clone(), side: o.side.clone(), qty: o.qty, status: o.status.clone() }
    }
}

/// One element of the close-all answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Closed {
    /// The position's symbol.
    pub symbol: String,
    /// The per-position HTTP status.
    pub status: u16,
    /// The closing order, when one was placed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order: Option<Placed>,
    /// The broker's error for this position, otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The reads and writes remediation uses. Writes are one attempt each; callers never retry
/// a write whose outcome is unknown, they re-read.
pub trait ActBroker: Send + Sync {
    /// Paper or live (never replay: a replay cannot be acted on).
    fn mode(&self) -> Mode;
    /// Everything an audit reads (five GETs), for re-evaluating a rule on fresh data.
    fn view(&self) -> BoxFuture<'_, BrokerView>;
    /// What the account itself says (`GET /v2/account`'s `account_number`: paper accounts
    /// are `PA...`), for the live guard: `Live` unless it says paper.
    fn account_mode(&self) -> BoxFuture<'_, Result<Mode, BrokerError>>;
    /// `GET /v2/positions`.
    fn positions(&self) -> BoxFuture<'_, Result<Vec<Position>, BrokerError>>;
    /// `GET /v2/positions/{symbol}`; `None` when flat.
    fn position<'a>(&'a self, symbol: &'a str) -> BoxFuture<'a, Result<Option<Position>, BrokerError>>;
    /// `GET /v2/orders?status=open`, complete.
    fn open_orders(&self) -> BoxFuture<'_, Result<Vec<Order>, BrokerError>>;
    /// `GET /v2/orders?status=closed&after=...`: orders submitted after `after` that are now
    /// terminal (a market order that filled at once is never among the open ones).
    fn closed_orders_since(&self, after: DateTime<Utc>) -> BoxFuture<'_, Result<Vec<Order>, BrokerError>>;
    /// `GET /v2/account/configurations`.
    fn configuration(&self) -> BoxFuture<'_, Result<AccountConfiguration, BrokerError>>;
    /// `DELETE /v2/positions/{symbol}`: the broker sizes the closing order.
    fn close_position<'a>(&'a self, symbol: &'a str) -> BoxFuture<'a, Result<Placed, BrokerError>>;
    /// `DELETE /v2/positions?cancel_orders=true`.
    fn close_all_positions(&self) -> BoxFuture<'_, Result<Vec<Closed>, BrokerError>>;
    /// `DELETE /v2/orders/{id}`.
    fn cancel_order<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), BrokerError>>;
    /// `PATCH /v2/account/configurations`.
    fn set_configuration(&self, patch: ConfigurationPatch) -> BoxFuture<'_, Result<AccountConfiguration, BrokerError>>;
}

impl ActBroker for AlpacaClient {
    fn mode(&self) -> Mode {
        Self::mode(self)
    }

    fn view(&self) -> BoxFuture<'_, BrokerView> {
        Box::pin(Self::view(self))
    }

    fn account_mode(&self) -> BoxFuture<'_, Result<Mode, BrokerError>> {
        Box::pin(
            async move { self.account_number().await.map(|n| crate::collect::broker::alpaca::account_number_mode(&n)) },
        )
    }

    fn positions(&self) -> BoxFuture<'_, Result<Vec<Position>, BrokerError>> {
        Box::pin(async move { Self::positions(self).await.map(|f| f.value) })
    }

    fn position<'a>(&'a self, symbol: &'a str) -> BoxFuture<'a, Result<Option<Position>, BrokerError>> {
        Box::pin(self.get_position(symbol))
    }

    fn open_orders(&self) -> BoxFuture<'_, Result<Vec<Order>, BrokerError>> {
        Box::pin(async move { Self::open_orders(self).await.map(|f| f.value) })
    }

    fn closed_orders_since(&self, after: DateTime<Utc>) -> BoxFuture<'_, Result<Vec<Order>, BrokerError>> {
        Box::pin(async move { Self::closed_orders_since(self, after).await.map(|f| f.value) })
    }

    fn configuration(&self) -> BoxFuture<'_, Result<AccountConfiguration, BrokerError>> {
        Box::pin(async move { Self::configuration(self).await.map(|f| f.value) })
    }

    fn close_position<'a>(&'a self, symbol: &'a str) -> BoxFuture<'a, Result<Placed, BrokerError>> {
        Box::pin(async move { Self::close_position(self, symbol).await.map(|o| Placed::from_wire(&o)) })
    }

    fn close_all_positions(&self) -> BoxFuture<'_, Result<Vec<Closed>, BrokerError>> {
        Box::pin(async move {
            let results = Self::close_all_positions(self, true).await?;
            Ok(results
                .into_iter()
                .map(|r| match r.outcome {
                    Ok(o) => {
                        Closed { symbol: r.symbol, status: r.status, order: Some(Placed::from_wire(&o)), error: None }
                    }
                    Err(e) => Closed {
                        symbol: r.symbol,
                        status: r.status,
                        order: None,
                        error: Some(match e.code {
                            Some(c) => format!("{} (code {c})", e.message),
                            None => e.message,
                        }),
                    },
                })
                .collect())
        })
    }

    fn cancel_order<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), BrokerError>> {
        Box::pin(Self::cancel_order(self, id))
    }

    fn set_configuration(&self, patch: ConfigurationPatch) -> BoxFuture<'_, Result<AccountConfiguration, BrokerError>> {
        Box::pin(async move { self.patch_configuration(&patch).await.map(|c| c.to_domain()) })
    }
}

/// An in-memory broker with Alpaca's position semantics, a log of every call, and scripted
/// failures: the unit tests' stand-in.
#[cfg(test)]
pub(crate) mod fake {
    use std::collections::{BTreeMap, BTreeSet};
    use std::sync::Mutex;
    use std::time::Duration;

    use rust_decimal::Decimal;

    use super::*;
    use crate::collect::broker::alpaca::Endpoint;
    use crate::model::{OrderSide, Side, Symbol};

    /// How the fake answers a close.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub(crate) enum CloseMode {
        /// Fill at once.
        #[default]
        Fill,
        /// Accept but never fill (confirmation must time out).
        NeverFill,
        /// Fill, but answer with a timeout (the outcome is unknown to the caller).
        FillButTimeout,
        /// Reject with 403.
        Reject,
        /// Answer a close with 404 and a close-all with an empty list, closing nothing (a
        /// broker whose answer and state disagree).
        AnswerNothing,
        /// Fill, but answer 200 (207 for a close-all) with a body that does not parse.
        FillButMalformed,
        /// Close-all only: fill, but every element of the answer has no status and no order.
        FillButNoStatus,
    }

    #[derive(Debug, Default)]
    pub(crate) struct State {
        pub(crate) mode: Option<Mode>,
        pub(crate) positions: BTreeMap<String, Decimal>,
        pub(crate) orders: Vec<Order>,
        pub(crate) no_shorting: bool,
        pub(crate) suspend_trade: bool,
        /// Every call, in order: `positions`, `cancel:ID`, `close:SYM`, `close_all`, ...
        pub(crate) calls: Vec<String>,
        pub(crate) close_mode: CloseMode,
        /// Reads fail while set.
        pub(crate) reads_fail: bool,
        /// Cancels are accepted but the orders stay open.
        pub(crate) cancels_stick: bool,
        /// Cancels answer 422 "not cancelable" and the orders stay open (a pending cancel).
        pub(crate) cancels_422: bool,
        /// Patches are accepted but do not take effect.
        pub(crate) patches_ignored: bool,
        /// Patches take effect, but the answer (200) has a body that does not parse.
        pub(crate) patch_answer_malformed: bool,
        /// Symbols whose per-symbol read answers 404 while the list still shows them (a
        /// broker whose endpoints disagree).
        pub(crate) position_404: BTreeSet<String>,
        /// Symbols whose per-symbol read answers this quantity instead of the list's.
        pub(crate) position_says: BTreeMap<String, Decimal>,
        /// `GET /v2/account`'s `account_number` (unset: a paper number).
        pub(crate) account_number: Option<String>,
        /// The account read fails (the others answer).
        pub(crate) account_read_fails: bool,
        /// Every order the fake placed (closes), for the invariant checks.
        pub(crate) placed: Vec<Placed>,
        /// `(call, order)`: once a call of that name is made (`position:OKTA`, `close:OKTA`),
        /// the order appears open: a bot placing an order while an action runs.
        pub(crate) place_on_call: Option<(String, Order)>,
    }

    /// The fake broker.
    #[derive(Debug, Default)]
    pub(crate) struct FakeBroker {
        pub(crate) state: Mutex<State>,
    }

    pub(crate) fn order(id: &str, symbol: &str, side: OrderSide, qty: i64) -> Order {
        Order {
            id: id.into(),
            client_order_id: format!("c-{id}"),
            symbol: Symbol::new(symbol),
            side,
            order_type: "limit".into(),
            qty: Some(Decimal::from(qty)),
            notional: None,
            filled_qty: Decimal::ZERO,
            limit_price: Some(Decimal::from(45)),
            stop_price: None,
            status: "new".into(),
            created_at: None,
            submitted_at: None,
            updated_at: None,
            filled_at: None,
        }
    }

    pub(crate) fn position(symbol: &str, qty: Decimal) -> Position {
        Position {
            symbol: Symbol::new(symbol),
            qty,
            side: if qty < Decimal::ZERO { Side::Short } else { Side::Long },
            avg_entry_price: Some(Decimal::from(100)),
            market_value: None,
            current_price: None,
            unrealized_pl: None,
            asset_class: "us_equity".into(),
        }
    }

    fn malformed(endpoint: Endpoint, status: u16) -> BrokerError {
        BrokerError::Malformed { endpoint, status, message: "fake: a truncated body".into() }
    }

    fn err_read(endpoint: Endpoint) -> BrokerError {
        BrokerError::Unreachable { endpoint, message: "fake: reads fail".into() }
    }

    impl FakeBroker {
        pub(crate) fn new(positions: &[(&str, i64)], orders: Vec<Order>) -> Self {
            let s = State {
                positions: positions.iter().map(|(s, q)| ((*s).to_owned(), Decimal::from(*q))).collect(),
                orders,
                ..State::default()
            };
            Self { state: Mutex::new(s) }
        }

        pub(crate) fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
            let mut s = self.state.lock().unwrap();
            let r = f(&mut s);
            if s.place_on_call.as_ref().is_some_and(|(call, _)| s.calls.last() == Some(call))
                && let Some((_, o)) = s.place_on_call.take()
            {
                s.orders.push(o);
            }
            r
        }

        pub(crate) fn calls(&self) -> Vec<String> {
            self.with(|s| s.calls.clone())
        }

        /// The calls that change something at the broker.
        pub(crate) fn writes(&self) -> Vec<String> {
            self.calls()
                .into_iter()
                .filter(|c| c.starts_with("cancel:") || c.starts_with("close") || c.starts_with("patch"))
                .collect()
        }

        pub(crate) fn qty(&self, symbol: &str) -> Decimal {
            self.with(|s| s.positions.get(symbol).copied().unwrap_or_default())
        }

        fn read<T>(&self, name: &str, endpoint: Endpoint, f: impl FnOnce(&State) -> T) -> Result<T, BrokerError> {
            self.with(|s| {
                s.calls.push(name.to_owned());
                if s.reads_fail { Err(err_read(endpoint)) } else { Ok(f(s)) }
            })
        }
    }

    fn positions_of(s: &State) -> Vec<Position> {
        s.positions.iter().filter(|(_, q)| !q.is_zero()).map(|(sym, q)| position(sym, *q)).collect()
    }

    impl ActBroker for FakeBroker {
        fn mode(&self) -> Mode {
            self.with(|s| s.mode.unwrap_or(Mode::Paper))
        }

        fn view(&self) -> BoxFuture<'_, BrokerView> {
            Box::pin(async move {
                self.with(|s| {
                    s.calls.push("view".into());
                    if s.reads_fail {
                        return BrokerView::unavailable("fake: reads fail");
                    }
                    let mut v = BrokerView::unavailable("not faked");
                    v.positions = Ok(positions_of(s));
                    v.orders = Ok(s.orders.iter().filter(|o| o.is_open()).cloned().collect());
                    v.configuration = Some(Ok(AccountConfiguration {
                        no_shorting: Some(s.no_shorting),
                        suspend_trade: Some(s.suspend_trade),
                        fractional_trading: None,
                        max_margin_multiplier: None,
                    }));
                    v
                })
            })
        }

        fn account_mode(&self) -> BoxFuture<'_, Result<Mode, BrokerError>> {
            Box::pin(async move {
                if self.with(|s| s.account_read_fails) {
                    return Err(err_read(Endpoint::Account));
                }
                self.read("account", Endpoint::Account, |s| {
                    crate::collect::broker::alpaca::account_number_mode(
                        s.account_number.as_deref().unwrap_or("PA0FAKE00001"),
                    )
                })
            })
        }

        fn positions(&self) -> BoxFuture<'_, Result<Vec<Position>, BrokerError>> {
            Box::pin(async move { self.read("positions", Endpoint::Positions, positions_of) })
        }

        fn position<'a>(&'a self, symbol: &'a str) -> BoxFuture<'a, Result<Option<Position>, BrokerError>> {
            Box::pin(async move {
                self.read(&format!("position:{symbol}"), Endpoint::Position, |s| {
                    if s.position_404.contains(symbol) {
                        return None;
                    }
                    if let Some(q) = s.position_says.get(symbol) {
                        return Some(position(symbol, *q));
                    }
                    s.positions.get(symbol).filter(|q| !q.is_zero()).map(|q| position(symbol, *q))
                })
            })
        }

        fn open_orders(&self) -> BoxFuture<'_, Result<Vec<Order>, BrokerError>> {
            Box::pin(async move {
                self.read("orders", Endpoint::Orders, |s| s.orders.iter().filter(|o| o.is_open()).cloned().collect())
            })
        }

        fn closed_orders_since(&self, after: DateTime<Utc>) -> BoxFuture<'_, Result<Vec<Order>, BrokerError>> {
            Box::pin(async move {
                self.read("closed_orders", Endpoint::Orders, |s| {
                    s.orders
                        .iter()
                        .filter(|o| !o.is_open() && o.placed_at().is_some_and(|t| t > after))
                        .cloned()
                        .collect()
                })
            })
        }

        fn configuration(&self) -> BoxFuture<'_, Result<AccountConfiguration, BrokerError>> {
            Box::pin(async move {
                self.read("configuration", Endpoint::Configurations, |s| AccountConfiguration {
                    no_shorting: Some(s.no_shorting),
                    suspend_trade: Some(s.suspend_trade),
                    fractional_trading: None,
                    max_margin_multiplier: None,
                })
            })
        }

        fn close_position<'a>(&'a self, symbol: &'a str) -> BoxFuture<'a, Result<Placed, BrokerError>> {
            Box::pin(async move {
                self.with(|s| {
                    s.calls.push(format!("close:{symbol}"));
                    let Some(q) = s.positions.get(symbol).copied().filter(|q| !q.is_zero()) else {
                        return Err(BrokerError::NotFound {
                            endpoint: Endpoint::ClosePosition,
                            code: Some(40_410_000),
                            message: format!("position not found: {symbol}"),
                        });
                    };
                    let placed = Placed {
                        id: format!("close-{symbol}-{}", s.placed.len()),
                        symbol: symbol.to_owned(),
                        side: if q < Decimal::ZERO { "buy".into() } else { "sell".into() },
                        qty: Some(q.abs()),
                        status: "filled".into(),
                    };
                    match s.close_mode {
                        CloseMode::Reject => {
                            return Err(BrokerError::Rejected {
                                endpoint: Endpoint::ClosePosition,
                                status: 403,
                                code: Some(40_310_000),
                                message: "insufficient qty available for order".into(),
                                body: Box::default(),
                            });
                        }
                        CloseMode::AnswerNothing => {
                            return Err(BrokerError::NotFound {
                                endpoint: Endpoint::ClosePosition,
                                code: Some(40_410_000),
                                message: format!("position not found: {symbol}"),
                            });
                        }
                        CloseMode::NeverFill => {}
                        CloseMode::Fill
                        | CloseMode::FillButTimeout
                        | CloseMode::FillButMalformed
                        | CloseMode::FillButNoStatus => {
                            s.positions.remove(symbol);
                        }
                    }
                    s.placed.push(placed.clone());
                    if s.close_mode == CloseMode::FillButTimeout {
                        return Err(BrokerError::Timeout {
                            endpoint: Endpoint::ClosePosition,
                            after: Duration::from_secs(10),
                        });
                    }
                    if s.close_mode == CloseMode::FillButMalformed {
                        return Err(malformed(Endpoint::ClosePosition, 200));
                    }
                    Ok(placed)
                })
            })
        }

        fn close_all_positions(&self) -> BoxFuture<'_, Result<Vec<Closed>, BrokerError>> {
            Box::pin(async move {
                self.with(|s| {
                    s.calls.push("close_all".into());
                    if s.close_mode == CloseMode::AnswerNothing {
                        return Ok(Vec::new());
                    }
                    for o in &mut s.orders {
                        if o.is_open() {
                            o.status = "canceled".into();
                        }
                    }
                    let symbols: BTreeSet<String> = s.positions.keys().cloned().collect();
                    let mut out = Vec::new();
                    for sym in symbols {
                        let q = s.positions.remove(&sym).unwrap_or_default();
                        let placed = Placed {
                            id: format!("close-{sym}"),
                            symbol: sym.clone(),
                            side: if q < Decimal::ZERO { "buy".into() } else { "sell".into() },
                            qty: Some(q.abs()),
                            status: "filled".into(),
                        };
                        s.placed.push(placed.clone());
                        if s.close_mode == CloseMode::FillButNoStatus {
                            out.push(Closed { symbol: sym, status: 0, order: None, error: Some("{}".into()) });
                            continue;
                        }
                        out.push(Closed { symbol: sym, status: 200, order: Some(placed), error: None });
                    }
                    if s.close_mode == CloseMode::FillButMalformed {
                        return Err(malformed(Endpoint::CloseAllPositions, 207));
                    }
                    Ok(out)
                })
            })
        }

        fn cancel_order<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), BrokerError>> {
            Box::pin(async move {
                self.with(|s| {
                    s.calls.push(format!("cancel:{id}"));
                    let stick = s.cancels_stick;
                    let not_cancelable = s.cancels_422;
                    match s.orders.iter_mut().find(|o| o.id == id) {
                        None => Err(BrokerError::NotFound {
                            endpoint: Endpoint::CancelOrder,
                            code: None,
                            message: "order not found".into(),
                        }),
                        Some(o) if !o.is_open() || not_cancelable => Err(BrokerError::Rejected {
                            endpoint: Endpoint::CancelOrder,
                            status: 422,
                            code: Some(42_210_000),
                            message: format!("order is already in \"{}\" state", o.status),
                            body: Box::default(),
                        }),
                        Some(o) => {
                            if !stick {
                                o.status = "canceled".into();
                            }
                            Ok(())
                        }
                    }
                })
            })
        }

        fn set_configuration(
            &self,
            patch: ConfigurationPatch,
        ) -> BoxFuture<'_, Result<AccountConfiguration, BrokerError>> {
            Box::pin(async move {
                self.with(|s| {
                    s.calls.push(format!("patch:{}", serde_json::to_string(&patch).unwrap_or_default()));
                    if !s.patches_ignored {
                        if let Some(v) = patch.no_shorting {
                            s.no_shorting = v;
                        }
                        if let Some(v) = patch.suspend_trade {
                            s.suspend_trade = v;
                        }
                    }
                    if s.patch_answer_malformed {
                        return Err(malformed(Endpoint::PatchConfigurations, 200));
                    }
                    Ok(AccountConfiguration {
                        no_shorting: Some(s.no_shorting),
                        suspend_trade: Some(s.suspend_trade),
                        fractional_trading: None,
                        max_margin_multiplier: None,
                    })
                })
            })
        }
    }
}
