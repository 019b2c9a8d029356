//! Planning: from what the broker holds, the exact steps an action would take. Pure; the same
//! plan is described in observe mode, printed by `tradewarden flatten` before asking, and
//! executed in act mode (re-planned from a fresh read right before acting).
//!
//! Invariants (unit- and property-tested):
//! - `flatten` with `shorts_only` closes only symbols whose quantity is negative, never a long;
//! - every close of a symbol comes after a cancel of each open order on that symbol (so no
//!   resting sell can fill after the close and open a new short);
//! - there is no step that submits an order: closes go through the close-position endpoints,
//!   which the broker sizes.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::model::{AccountConfiguration, Order, OrderSide, Position};

/// Which symbols an action may touch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Every symbol (an account-level alert, `flatten --all` without `--symbol`).
    All,
    /// Only these.
    Symbols(BTreeSet<String>),
}

impl Scope {
    /// Whether `symbol` is in scope.
    #[must_use]
    pub fn contains(&self, symbol: &str) -> bool {
        match self {
            Self::All => true,
            Self::Symbols(s) => s.contains(symbol),
        }
    }

    /// Widens to cover `other` too.
    pub fn merge(&mut self, other: Self) {
        match (&mut *self, other) {
            (Self::All, _) => {}
            (_, Self::All) => *self = Self::All,
            (Self::Symbols(a), Self::Symbols(b)) => a.extend(b),
        }
    }

    /// `all symbols` or `CHWY, BILL`.
    #[must_use]
    pub fn describe(&self) -> String {
        match self {
            Self::All => "all symbols".into(),
            Self::Symbols(s) => s.iter().cloned().collect::<Vec<_>>().join(", "),
        }
    }
}

/// The broker setting an action turns on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Guard {
    /// `suspend_trade = true`.
    SuspendTrade,
    /// `no_shorting = true`.
    NoShorting,
}

impl Guard {
    /// The configuration field.
    #[must_use]
    pub fn field(self) -> &'static str {
        match self {
            Self::SuspendTrade => "suspend_trade",
            Self::NoShorting => "no_shorting",
        }
    }

    /// Its current value in a configuration.
    #[must_use]
    pub fn value(self, c: &AccountConfiguration) -> Option<bool> {
        match self {
            Self::SuspendTrade => c.suspend_trade,
            Self::NoShorting => c.no_shorting,
        }
    }
}

/// One step of a plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Step {
    /// `DELETE /v2/orders/{id}`.
    CancelOrder {
        /// Order id.
        id: String,
        /// Its symbol.
        symbol: String,
        /// `buy` or `sell`.
        side: String,
        /// `market`, `limit`, ...
        order_type: String,
        /// Shares still to fill.
        remaining: Option<Decimal>,
        /// Limit price, if any.
        limit_price: Option<Decimal>,
    },
    /// `DELETE /v2/positions/{symbol}`.
    ClosePosition {
        /// The symbol.
        symbol: String,
        /// Its signed quantity as seen (negative: the broker buys to cover).
        qty: Decimal,
    },
    /// `DELETE /v2/positions?cancel_orders=true`.
    CloseAll {
        /// Every position seen, (symbol, signed qty).
        positions: Vec<(String, Decimal)>,
        /// Open orders the broker cancels first.
        open_orders: usize,
    },
    /// `PATCH /v2/account/configurations`.
    SetConfiguration {
        /// The guard.
        guard: Guard,
    },
    /// An atomic rewrite of a bot file.
    WriteFile {
        /// Path relative to the bot root.
        file: String,
        /// One phrase per change.
        changes: Vec<String>,
    },
    /// `[actions.exec.NAME]`.
    Exec {
        /// The name.
        name: String,
        /// argv.
        argv: Vec<String>,
        /// The timeout, humantime.
        timeout: String,
    },
}

impl Step {
    /// One exact sentence.
    #[must_use]
    pub fn describe(&self) -> String {
        match self {
            Self::CancelOrder { id, symbol, side, order_type, remaining, limit_price } => {
                let mut s = format!("cancel open {side} order {id} on {symbol} ({order_type}");
                if let Some(q) = remaining {
                    let _ = write!(s, " {q}");
                }
                if let Some(p) = limit_price {
                    let _ = write!(s, " @ {p}");
                }
                s.push(')');
                s
            }
            Self::ClosePosition { symbol, qty } => {
                let what = if *qty < Decimal::ZERO {
                    format!("the broker buys to cover {}", qty.abs())
                } else {
                    format!("the broker sells {qty}")
                };
                format!("DELETE /v2/positions/{symbol} ({what})")
            }
            Self::CloseAll { positions, open_orders } => {
                let list: Vec<String> = positions.iter().map(|(s, q)| format!("{s} {q}")).collect();
                format!(
                    "DELETE /v2/positions?cancel_orders=true (the broker cancels {open_orders} open order{}, then closes {})",
                    if *open_orders == 1 { "" } else { "s" },
                    if list.is_empty() { "nothing".into() } else { list.join(", ") }
                )
            }
            Self::SetConfiguration { guard } => {
                format!("PATCH /v2/account/configurations {{\"{}\": true}}", guard.field())
            }
            Self::WriteFile { file, changes } => format!("rewrite {file}: {}", changes.join(", ")),
            Self::Exec { name, argv, timeout } => format!(
                "run exec:{name} {} (no shell; findings as JSON on stdin; killed after {timeout})",
                serde_json::to_string(argv).unwrap_or_default()
            ),
        }
    }

    /// Whether this step writes to the broker.
    #[must_use]
    pub fn is_broker_write(&self) -> bool {
        !matches!(self, Self::WriteFile { .. } | Self::Exec { .. })
    }
}

/// The steps of one action, and notes on what it leaves alone and why.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Plan {
    /// In order.
    pub steps: Vec<Step>,
    /// "AAPL is long: flatten_shorts never touches a long", "BILL: no position".
    pub notes: Vec<String>,
}

impl Plan {
    /// Nothing to do.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// Every step, in order.
    #[must_use]
    pub fn step_texts(&self) -> Vec<String> {
        self.steps.iter().map(Step::describe).collect()
    }

    /// The steps as one sentence, then the notes.
    #[must_use]
    pub fn describe(&self) -> String {
        let mut s = if self.steps.is_empty() { "nothing to do".to_owned() } else { self.step_texts().join("; then ") };
        if !self.notes.is_empty() {
            let _ = write!(s, " ({})", self.notes.join("; "));
        }
        s
    }

    /// The symbols of close steps.
    #[must_use]
    pub fn closed_symbols(&self) -> Vec<String> {
        let mut v = Vec::new();
        for s in &self.steps {
            match s {
                Step::ClosePosition { symbol, .. } => v.push(symbol.clone()),
                Step::CloseAll { positions, .. } => v.extend(positions.iter().map(|(s, _)| s.clone())),
                _ => {}
            }
        }
        v
    }
}

fn cancel_step(o: &Order) -> Step {
    Step::CancelOrder {
        id: o.id.clone(),
        symbol: o.symbol.to_string(),
        side: o.side.as_str().to_owned(),
        order_type: o.order_type.clone(),
        remaining: o.remaining_qty(),
        limit_price: o.limit_price,
    }
}

/// Orders of a symbol, sells first (they are the dangerous ones), then by placement.
fn open_orders_of<'o>(orders: &'o [Order], symbol: &str) -> Vec<&'o Order> {
    let mut v: Vec<&Order> = orders.iter().filter(|o| o.is_open() && o.symbol.as_str() == symbol).collect();
    v.sort_by(|a, b| {
        (a.side != OrderSide::Sell, a.placed_at(), &a.id).cmp(&(b.side != OrderSide::Sell, b.placed_at(), &b.id))
    });
    v
}

/// Flatten: per symbol in scope, cancel its open orders (both sides: a resting sell would
/// open a new short once the position is flat, and a resting buy holds the shares a cover
/// needs), then close the position through the broker. With `shorts_only`, longs are never
/// touched. `All` without `shorts_only` is one close-all request.
#[must_use]
pub fn flatten(positions: &[Position], orders: &[Order], scope: &Scope, shorts_only: bool) -> Plan {
    let mut plan = Plan::default();
    if !shorts_only && *scope == Scope::All {
        if positions.is_empty() {
            plan.notes.push("no open positions".into());
        } else {
            let mut all: Vec<(String, Decimal)> = positions.iter().map(|p| (p.symbol.to_string(), p.qty)).collect();
            all.sort();
            plan.steps
                .push(Step::CloseAll { positions: all, open_orders: orders.iter().filter(|o| o.is_open()).count() });
        }
        return plan;
    }
    let mut sorted: Vec<&Position> = positions.iter().filter(|p| scope.contains(p.symbol.as_str())).collect();
    sorted.sort_by(|a, b| a.symbol.cmp(&b.symbol));
    for p in sorted {
        let symbol = p.symbol.as_str();
        if p.qty.is_zero() {
            continue;
        }
        if shorts_only && p.qty > Decimal::ZERO {
            if let Scope::Symbols(_) = scope {
                plan.notes.push(format!("{symbol} is long {}: flatten_shorts never touches a long", p.qty));
            }
            continue;
        }
        plan.steps.extend(open_orders_of(orders, symbol).into_iter().map(cancel_step));
        plan.steps.push(Step::ClosePosition { symbol: symbol.to_owned(), qty: p.qty });
    }
    if let Scope::Symbols(wanted) = scope {
        for s in wanted {
            if !positions.iter().any(|p| p.symbol.as_str() == s) {
                plan.notes.push(format!("{s}: no position at the broker"));
            }
        }
    }
    if plan.steps.is_empty() && plan.notes.is_empty() {
        plan.notes.push(if shorts_only { "no short positions".into() } else { "no open positions".into() });
    }
    plan
}

/// Cancel exactly the named orders that are still open.
#[must_use]
pub fn cancel(orders: &[Order], ids: &BTreeSet<String>) -> Plan {
    let mut plan = Plan::default();
    for id in ids {
        match orders.iter().find(|o| &o.id == id) {
            Some(o) if o.is_open() => plan.steps.push(cancel_step(o)),
            _ => plan.notes.push(format!("order {id} is no longer open")),
        }
    }
    if ids.is_empty() {
        plan.notes.push("the findings name no orders".into());
    }
    plan
}

/// Turn a guard on, unless it already is.
#[must_use]
pub fn configure(config: &AccountConfiguration, guard: Guard) -> Plan {
    let mut plan = Plan::default();
    if guard.value(config) == Some(true) {
        plan.notes.push(format!("{} is already true", guard.field()));
    } else {
        plan.steps.push(Step::SetConfiguration { guard });
    }
    plan
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use rust_decimal::dec;

    use super::*;
    use crate::act::broker::fake::{order, position};

    fn syms(s: &[&str]) -> Scope {
        Scope::Symbols(s.iter().map(|s| (*s).to_owned()).collect())
    }

    fn phantom() -> (Vec<Position>, Vec<Order>) {
        (
            vec![
                position("AAPL", dec!(10)),
                position("CHWY", dec!(-1596)),
                position("BILL", dec!(-413)),
                position("COIN", dec!(-72)),
            ],
            vec![order("o-chwy", "CHWY", OrderSide::Sell, 1596), order("o-aapl", "AAPL", OrderSide::Sell, 10)],
        )
    }

    #[test]
    fn flatten_shorts_cancels_then_closes_each_short_and_never_a_long() {
        let (p, o) = phantom();
        let plan = flatten(&p, &o, &Scope::All, true);
        let texts = plan.step_texts();
        assert_eq!(
            texts,
            [
                "DELETE /v2/positions/BILL (the broker buys to cover 413)",
                "cancel open sell order o-chwy on CHWY (limit 1596 @ 45)",
                "DELETE /v2/positions/CHWY (the broker buys to cover 1596)",
                "DELETE /v2/positions/COIN (the broker buys to cover 72)",
            ]
        );
        assert_eq!(plan.closed_symbols(), ["BILL", "CHWY", "COIN"]);
        assert!(!plan.describe().contains("AAPL"), "{}", plan.describe());
    }

    #[test]
    fn flatten_shorts_with_symbols_notes_longs_and_missing_symbols() {
        let (p, o) = phantom();
        let plan = flatten(&p, &o, &syms(&["AAPL", "CHWY", "MSFT"]), true);
        assert_eq!(plan.closed_symbols(), ["CHWY"]);
        assert_eq!(
            plan.notes,
            ["AAPL is long 10: flatten_shorts never touches a long", "MSFT: no position at the broker"]
        );
    }

    #[test]
    fn flatten_all_is_one_close_all_and_flatten_symbols_closes_either_side() {
        let (p, o) = phantom();
        let plan = flatten(&p, &o, &Scope::All, false);
        assert_eq!(plan.steps.len(), 1);
        assert_eq!(
            plan.describe(),
            "DELETE /v2/positions?cancel_orders=true (the broker cancels 2 open orders, then closes AAPL 10, BILL -413, CHWY -1596, COIN -72)"
        );
        let plan = flatten(&p, &o, &syms(&["AAPL"]), false);
        assert_eq!(
            plan.step_texts(),
            [
                "cancel open sell order o-aapl on AAPL (limit 10 @ 45)",
                "DELETE /v2/positions/AAPL (the broker sells 10)"
            ]
        );
        assert_eq!(flatten(&[], &[], &Scope::All, true).describe(), "nothing to do (no short positions)");
    }

    #[test]
    fn cancel_names_exactly_the_open_ones_and_guards_are_idempotent() {
        let (_, mut o) = phantom();
        o[1].status = "filled".into();
        let ids: BTreeSet<String> = ["o-chwy", "o-aapl", "gone"].iter().map(|s| (*s).to_owned()).collect();
        let plan = cancel(&o, &ids);
        assert_eq!(plan.step_texts(), ["cancel open sell order o-chwy on CHWY (limit 1596 @ 45)"]);
        assert_eq!(plan.notes, ["order gone is no longer open", "order o-aapl is no longer open"]);
        let mut c = AccountConfiguration {
            no_shorting: Some(false),
            suspend_trade: None,
            fractional_trading: None,
            max_margin_multiplier: None,
        };
        assert_eq!(
            configure(&c, Guard::NoShorting).describe(),
            "PATCH /v2/account/configurations {\"no_shorting\": true}"
        );
        assert_eq!(configure(&c, Guard::SuspendTrade).steps.len(), 1, "unknown is not set");
        c.no_shorting = Some(true);
        assert!(configure(&c, Guard::NoShorting).is_empty());
    }

    proptest! {
        /// Whatever the account holds: flatten_shorts closes only shorts, each after cancels
        /// of every open order on its symbol, and never closes or cancels on a long-only symbol.
        #[test]
        fn flatten_shorts_invariants(
            held in proptest::collection::btree_map("[A-E]", -50i64..50, 0..5),
            raw_orders in proptest::collection::vec(("[A-F]", any::<bool>(), 1i64..100), 0..6),
            scoped in proptest::option::of(proptest::collection::btree_set("[A-F]", 0..4)),
        ) {
            let positions: Vec<Position> =
                held.iter().filter(|(_, q)| **q != 0).map(|(s, q)| position(s, Decimal::from(*q))).collect();
            let orders: Vec<Order> = raw_orders
                .iter()
                .enumerate()
                .map(|(i, (s, sell, q))| order(&format!("o{i}"), s, if *sell { OrderSide::Sell } else { OrderSide::Buy }, *q))
                .collect();
            let scope = scoped.map_or(Scope::All, Scope::Symbols);
            let plan = flatten(&positions, &orders, &scope, true);
            let mut cancelled: BTreeSet<String> = BTreeSet::new();
            for step in &plan.steps {
                match step {
                    Step::CancelOrder { id, symbol, .. } => {
                        let qty = held.get(symbol).copied().unwrap_or(0);
                        prop_assert!(qty < 0, "cancel {id} on non-short {symbol}");
                        cancelled.insert(id.clone());
                    }
                    Step::ClosePosition { symbol, qty } => {
                        prop_assert!(*qty < Decimal::ZERO, "close of a long {symbol}");
                        prop_assert!(scope.contains(symbol));
                        for o in orders.iter().filter(|o| o.symbol.as_str() == symbol) {
                            prop_assert!(cancelled.contains(&o.id), "{symbol} closed before {} was cancelled", o.id);
                        }
                    }
                    other => prop_assert!(false, "unexpected step {other:?}"),
                }
            }
            let shorts_in_scope = positions.iter().filter(|p| p.qty < Decimal::ZERO && scope.contains(p.symbol.as_str())).count();
            prop_assert_eq!(plan.closed_symbols().len(), shorts_in_scope);
        }
    }
}
