//! `open_order_hazard`: open orders that would open a short, sit open too long, duplicate each
//! other, or buy with margin that waiting sells are meant to free.
//!
//! Field notes §1: a runner sent SELL market orders for positions it no longer held; each one
//! opened or deepened a short the moment it filled. The open order is visible at the broker
//! before the fill: that is the last moment to catch it. Field notes §2: a plan-based bot sent
//! its BUYs before its SELLs had filled, so the buys consumed the margin the sells would free.
//!
//! - `sell_exceeds_position` (subject: symbol): the remaining quantity of a symbol's open sells
//!   exceeds the long position held (0 when flat; any sell while short deepens the short).
//!   Notional orders have no share quantity and are ignored here: fractional and notional sells
//!   cannot open shorts (field notes §1);
//! - `stale_order` (subject: order id): an order placed longer than `stale_after` ago;
//! - `duplicate_order` (subject: symbol): two or more open orders with the same symbol, side,
//!   type, quantity (or notional), limit and stop price; the oldest of each group is kept, the
//!   others are the duplicates (all groups of one symbol make one finding);
//! - `buy_before_sell` (subject: `account`): open buys placed within `sequence_window` of a
//!   still-open market or limit sell, before or after it: one plan's orders go out together,
//!   and in the incident the 11 BUYs were submitted 40 ms *before* the 5 SELLs, so the order
//!   of submission says nothing; what matters is that the buys are open while the sells that
//!   should free their buying power are not filled (buying power is account-wide, so any symbol
//!   counts). Orders further apart than the window are taken as unrelated plans.
//!
//! Every finding's `observed.order_ids` lists the orders `cancel_hazard_orders` would cancel:
//! for `sell_exceeds_position` only the excess over the long, newest first, never a protective
//! stop that does not by itself exceed it (`sell_order_ids` lists every sell counted); the
//! stale order; the duplicates (never the oldest); the early buys.
//!
//! Conditional orders are treated for what they are: a bracket's stop-loss leg waits with status
//! `held` and cannot fill while the take-profit leg is live, so `held` orders are left out of
//! `sell_exceeds_position`; protective stop sells (`stop`, `stop_limit`, `trailing_stop`) free no
//! buying power on a schedule, so only market and limit sells count for `buy_before_sell`.
//!
//! False positives: the two live legs of an OCO exit (both sells for the full position) still
//! add up to twice the position; good-till-cancelled limit orders that are meant to rest for days
//! are `stale_order`s (raise `stale_after`). Orders without any timestamp are never stale and
//! never take part in `buy_before_sell`.

use std::sync::Arc;
use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::{Value, json};

use super::{Absent, Kind, Param, params_json};
use super::{Evaluation, blind_source, param_or, unknown_source};
use crate::config::RuleContext;
use crate::config::reader::TableReader;
use crate::duration::format as format_duration;
use crate::model::Check;
use crate::model::{Issue, Order, OrderSide, Snapshot, Symbol};

/// The kind name.
pub const KIND: &str = "open_order_hazard";
/// What it checks, its codes and parameters.
pub const SPEC: Kind = Kind {
    name: KIND,
    description: "Open sells whose remaining quantity exceeds the long held (a short the moment they fill), \
                  orders open too long, duplicates, open buys placed within `sequence_window` (before or after) \
                  of a still-open market or limit sell (field notes §2: the buys went out 40 ms *before* the \
                  sells). Every finding lists `observed.order_ids`, the orders `cancel_hazard_orders` would \
                  cancel: for `sell_exceeds_position` only the excess over the long, newest first, never a \
                  `stop`/`stop_limit`/`trailing_stop` that does not by itself exceed it (`observed.sell_order_ids` \
                  lists every sell counted).",
    codes: &["sell_exceeds_position", "stale_order", "duplicate_order", "buy_before_sell"],
    params: &[
        Param { name: "stale_after", ty: "duration", absent: Absent::Default("\"30m\""), doc: "" },
        Param {
            name: "sequence_window",
            ty: "duration",
            absent: Absent::Default("\"5m\""),
            doc: "more than 0s, at most 24h",
        },
    ],
    example: "stale_after = \"45m\"\nsequence_window = \"90s\"\n",
    read: |r, ctx| Some(Arc::new(Params::read(r, ctx)?)),
};

/// Parameters.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Params {
    /// An open order placed longer ago than this is stale. Default `30m`.
    #[serde(with = "crate::duration::serde_humantime")]
    pub stale_after: Duration,
    /// An open buy placed this close (before or after) to a still-open market or limit sell
    /// is a `buy_before_sell`. Default `5m`.
    #[serde(with = "crate::duration::serde_humantime")]
    pub sequence_window: Duration,
}

/// The longest `sequence_window`: a plan goes out in seconds; a day-wide window would tie
/// every buy of the session to every resting sell.
const MAX_SEQUENCE_WINDOW: Duration = Duration::from_secs(24 * 3600);

impl Default for Params {
    fn default() -> Self {
        Self { stale_after: Duration::from_secs(30 * 60), sequence_window: Duration::from_secs(5 * 60) }
    }
}

impl Params {
    /// Reads the parameters.
    pub fn read(r: &mut TableReader<'_, '_>, _ctx: &RuleContext) -> Option<Self> {
        let stale_after = param_or(r, "stale_after", Self::default().stale_after, TableReader::duration);
        let sequence_window = param_or(r, "sequence_window", Self::default().sequence_window, TableReader::duration)
            .and_then(|w| {
                if w.is_zero() || w > MAX_SEQUENCE_WINDOW {
                    r.problem_key(
                        "sequence_window",
                        format!(
                            "`sequence_window` in {} must be more than 0s and at most 24h (it was {})",
                            r.name(),
                            format_duration(w)
                        ),
                    );
                    None
                } else {
                    Some(w)
                }
            });
        Some(Self { stale_after: stale_after?, sequence_window: sequence_window? })
    }


    fn stale(&self, open: &[&Order], now: DateTime<Utc>) -> Vec<Issue> {
        let limit = format_duration(self.stale_after);
        let mut stale: Vec<(&Order, DateTime<Utc>, Duration)> = open
            .iter()
            .filter_map(|o| {
                let placed = o.placed_at()?;
                let age = (now - placed).to_std().ok()?;
                (age > self.stale_after).then_some((*o, placed, age))
            })
            .collect();
        stale.sort_by(|a, b| (a.1, &a.0.id).cmp(&(b.1, &b.0.id)));
        stale
            .into_iter()
            .map(|(o, placed, age)| {
                let age = Duration::from_secs(age.as_secs());
                Issue {
                    code: "stale_order",
                    subject: o.id.clone(),
                    message: format!(
                        "order {} ({}) has been open for {} (placed {}), longer than {limit}",
                        o.id,
                        describe(o),
                        format_duration(age),
                        placed.to_rfc3339()
                    ),
                    observed: json!({
                        "order_ids": [o.id],
                        "symbol": o.symbol.as_str(),
                        "side": o.side.as_str(),
                        "type": o.order_type,
                        "status": o.status,
                        "placed_at": placed.to_rfc3339(),
                        "age_secs": age.as_secs(),
                    }),
                    expected: json!({ "stale_after": limit, "stale_after_secs": self.stale_after.as_secs() }),
                }
            })
            .collect()
    }

    /// Open buys within `sequence_window` of a still-open market or limit sell (field notes §2).
    fn buys_near_sells(&self, open: &[&Order]) -> Vec<Issue> {
        let window = chrono::Duration::from_std(self.sequence_window).unwrap_or(chrono::Duration::MAX);
        let timed = |side: OrderSide| -> Vec<(&Order, DateTime<Utc>)> {
            let mut v: Vec<(&Order, DateTime<Utc>)> =
                open.iter().filter(|o| o.side == side).filter_map(|o| Some((*o, o.placed_at()?))).collect();
            v.sort_by(|a, b| (a.1, &a.0.id).cmp(&(b.1, &b.0.id)));
            v
        };
        let mut sells = timed(OrderSide::Sell);
        // Protective stops free no buying power on a schedule (see the module notes).
        sells.retain(|(o, _)| matches!(o.order_type.as_str(), "market" | "limit"));
        let mut waited_on = vec![false; sells.len()];
        let mut buys: Vec<&Order> = Vec::new();
        for (buy, placed) in timed(OrderSide::Buy) {
            let mut near = false;
            for (i, (_, sold)) in sells.iter().enumerate() {
                if (placed - *sold).abs() <= window {
                    waited_on[i] = true;
                    near = true;
                }
            }
            if near {
                buys.push(buy);
            }
        }
        if buys.is_empty() {
            return Vec::new();
        }
        let sells: Vec<(&Order, DateTime<Utc>)> =
            sells.into_iter().zip(waited_on).filter_map(|(s, w)| w.then_some(s)).collect();
        let first_sell = sells[0].1;
        let sell_orders: Vec<&Order> = sells.iter().map(|s| s.0).collect();
        let earlier = buys.iter().filter(|b| b.placed_at().is_some_and(|t| t < first_sell)).count();
        let window_text = format_duration(self.sequence_window);
        vec![Issue {
            code: "buy_before_sell",
            subject: "account".into(),
            message: format!(
                "{} open buy order(s) were placed within {window_text} of {} still-open sell order(s) ({earlier} of them before the first sell, placed {}); the buys consume buying power the sells would free: sells must fill before buys go out",
                buys.len(),
                sell_orders.len(),
                first_sell.to_rfc3339()
            ),
            observed: json!({
                "order_ids": ids(&buys),
                "buy_symbols": buys.iter().map(|o| o.symbol.as_str()).collect::<Vec<_>>(),
                "sell_order_ids": ids(&sell_orders),
                "first_sell_placed_at": first_sell.to_rfc3339(),
            }),
            expected: json!({
                "open_buys_near_open_sells": 0,
                "sequence_window": window_text,
                "sequence_window_secs": self.sequence_window.as_secs(),
            }),
        }]
    }
}

impl Check for Params {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn params(&self) -> serde_json::Value {
        params_json(self)
    }

    /// Every hazard among the open orders.
    fn evaluate(&self, snap: &Snapshot, now: DateTime<Utc>) -> Evaluation {
        let orders = match &snap.broker.orders {
            Ok(o) => o,
            Err(e) => return unknown_source(e),
        };
        let open: Vec<&Order> = orders.iter().filter(|o| o.is_open()).collect();
        // Only `sell_exceeds_position` needs the positions: without them it is a `rule_unknown`,
        // and the hazards judged on the orders alone are still checked.
        let (mut issues, blind) = match &snap.broker.positions {
            Ok(positions) => {
                let held: BTreeMap<&Symbol, Decimal> = positions.iter().map(|p| (&p.symbol, p.qty)).collect();
                (sells_exceeding(&open, &held), Vec::new())
            }
            Err(e) => {
                let mut b = blind_source(e);
                b.message = format!("sells cannot be compared with positions: {}", b.message);
                (Vec::new(), vec![b])
            }
        };
        issues.extend(duplicates(&open));
        issues.extend(self.stale(&open, now));
        issues.extend(self.buys_near_sells(&open));
        Evaluation::partial(issues, blind)
    }
}

/// `sell 10 AAPL limit 500.00` (notional orders show `$amount`).
fn describe(o: &Order) -> String {
    let size = match (o.qty, o.notional) {
        (Some(q), _) => q.to_string(),
        (None, Some(n)) => crate::num::money(n),
        (None, None) => "?".to_owned(),
    };
    let mut s = format!("{} {size} {} {}", o.side, o.symbol, o.order_type);
    if let Some(p) = o.limit_price {
        s.push_str(&format!(" limit {p}"));
    }
    if let Some(p) = o.stop_price {
        s.push_str(&format!(" stop {p}"));
    }
    s
}

fn ids(orders: &[&Order]) -> Vec<String> {
    orders.iter().map(|o| o.id.clone()).collect()
}

/// Oldest first; orders without a time last; then by id, so results are stable.
fn by_placement(a: &&Order, b: &&Order) -> std::cmp::Ordering {
    let key = |o: &Order| (o.placed_at().is_none(), o.placed_at(), o.id.clone());
    key(a).cmp(&key(b))
}

fn sells_exceeding(open: &[&Order], held: &BTreeMap<&Symbol, Decimal>) -> Vec<Issue> {
    let mut sells: BTreeMap<&Symbol, (Decimal, Vec<&Order>)> = BTreeMap::new();
    for o in open.iter().filter(|o| o.side == OrderSide::Sell && o.status != "held") {
        if let Some(q) = o.remaining_qty().filter(|q| *q > Decimal::ZERO) {
            let e = sells.entry(&o.symbol).or_default();
            e.0 = e.0.saturating_add(q);
            e.1.push(o);
        }
    }
    let mut issues = Vec::new();
    for (symbol, (total, mut orders)) in sells {
        let position = held.get(symbol).copied().unwrap_or_default();
        let long = position.max(Decimal::ZERO);
        if total <= long {
            continue;
        }
        orders.sort_by(by_placement);
        let message = if position > Decimal::ZERO {
            format!(
                "open sell orders for {symbol} total {total} shares but the broker holds {position} long; filling them would open a short of {}",
                total.saturating_sub(position)
            )
        } else if position.is_zero() {
            format!(
                "open sell orders for {symbol} total {total} shares but the broker holds no {symbol}; filling them would open a short of {total}"
            )
        } else {
            format!(
                "open sell orders for {symbol} total {total} shares while the broker is already short {}; filling them would deepen the short to {}",
                position.abs(),
                total.saturating_sub(position)
            )
        };
        let excess = excess_sells(&orders, total, long);
        issues.push(Issue {
            code: "sell_exceeds_position",
            subject: symbol.to_string(),
            message,
            observed: json!({
                "order_ids": ids(&excess),
                "sell_order_ids": ids(&orders),
                "sell_qty": total.to_string(),
                "position_qty": position.to_string(),
            }),
            expected: json!({ "max_sell_qty": long.to_string() }),
        });
    }
    issues
}

/// Protective exits: they fire only on an adverse move, to get out of a long.
fn is_protective(o: &Order) -> bool {
    matches!(o.order_type.as_str(), "stop" | "stop_limit" | "trailing_stop")
}

/// The sells `cancel_hazard_orders` may cancel: only the excess over the long, newest first
/// (the most recent order is the one that went past the position), so a long keeps the exits
/// it can fill; a protective stop that does not by itself exceed the long is never one of them
/// (cancelling a stop-loss to make room for a take-profit would leave the long unprotected).
/// `orders` is oldest first; the result is too.
fn excess_sells<'o>(orders: &[&'o Order], total: Decimal, long: Decimal) -> Vec<&'o Order> {
    let mut remaining = total;
    let mut out = Vec::new();
    for o in orders.iter().rev() {
        if remaining <= long {
            break;
        }
        let q = o.remaining_qty().unwrap_or_default();
        if is_protective(o) && q <= long {
            continue;
        }
        remaining = remaining.saturating_sub(q);
        out.push(*o);
    }
    out.reverse();
    out
}

/// Orders that are the same request: symbol, side, type, size, limit and stop.
fn same_request(a: &Order, b: &Order) -> bool {
    a.symbol == b.symbol
        && a.side == b.side
        && a.order_type == b.order_type
        && a.qty == b.qty
        && (a.qty.is_some() || a.notional == b.notional)
        && a.limit_price == b.limit_price
        && a.stop_price == b.stop_price
}

fn duplicates(open: &[&Order]) -> Vec<Issue> {
    // Group (open orders per cycle are few: a linear grouping is enough, and Decimal equality
    // is by value, so 10 and 10.0 are the same quantity).
    let mut groups: Vec<Vec<&Order>> = Vec::new();
    for o in open {
        match groups.iter_mut().find(|g| same_request(g[0], o)) {
            Some(g) => g.push(o),
            None => groups.push(vec![o]),
        }
    }
    let mut per_symbol: BTreeMap<&Symbol, Vec<Vec<&Order>>> = BTreeMap::new();
    for mut g in groups.into_iter().filter(|g| g.len() > 1) {
        g.sort_by(by_placement);
        per_symbol.entry(&g[0].symbol).or_default().push(g);
    }
    per_symbol
        .into_iter()
        .map(|(symbol, groups)| {
            let dup_ids: Vec<String> = groups.iter().flat_map(|g| ids(&g[1..])).collect();
            let kept: Vec<String> = groups.iter().map(|g| g[0].id.clone()).collect();
            let told: Vec<String> =
                groups.iter().map(|g| format!("{} × {} (oldest {} kept)", g.len(), describe(g[0]), g[0].id)).collect();
            let listed: Vec<Value> = groups
                .iter()
                .map(|g| {
                    json!({
                        "side": g[0].side.as_str(),
                        "type": g[0].order_type,
                        "qty": g[0].qty.map(|q| q.to_string()),
                        "notional": g[0].notional.map(|n| n.to_string()),
                        "limit_price": g[0].limit_price.map(|p| p.to_string()),
                        "stop_price": g[0].stop_price.map(|p| p.to_string()),
                        "order_ids": ids(g),
                    })
                })
                .collect();
            Issue {
                code: "duplicate_order",
                subject: symbol.to_string(),
                message: format!("{symbol} has identical open orders: {}", told.join("; ")),
                observed: json!({ "order_ids": dup_ids, "kept_order_ids": kept, "groups": listed }),
                expected: json!({ "identical_open_orders": 1 }),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::checks::testkit::{
        SnapshotBuilder, assert_problems, blind, codes, d, issues, read_ok, read_params, unknown,
    };

    fn eval(b: SnapshotBuilder) -> Evaluation {
        let snap = b.build();
        Params::default().evaluate(&snap, snap.taken_at)
    }

    fn found(b: SnapshotBuilder, code: &str) -> Vec<Issue> {
        issues(eval(b)).into_iter().filter(|i| i.code == code).collect()
    }

    /// (case, broker qty (None = flat), sells as (qty, filled), expected order ids).
    type Case = (&'static str, Option<&'static str>, Vec<(&'static str, &'static str)>, Vec<&'static str>);

    #[test]
    fn calm_orders_are_ok() {
        let b = SnapshotBuilder::new()
            .position("AAPL", "10", "180")
            .order("s1", "AAPL", OrderSide::Sell, "10", 60)
            // Buys of an earlier plan (20 minutes before the sell), not waiting on it.
            .order("b1", "MSFT", OrderSide::Buy, "5", 1260)
            .order_with("b2", "MSFT", OrderSide::Buy, "5", 1200, |o| o.order_type = "limit".into());
        assert_eq!(eval(b), Evaluation::Checked(vec![]));
    }

    #[test]
    fn sell_exceeds_position_table() {
        let cases: Vec<Case> = vec![
            ("sell all of a long", Some("10"), vec![("10", "0")], vec![]),
            ("phantom exit from flat", None, vec![("16", "0")], vec!["s0"]),
            // Only the excess, newest first: s0 (placed after s1) alone takes it back to 10.
            ("two sells add up past the long", Some("10"), vec![("6", "0"), ("6", "0")], vec!["s0"]),
            ("partly filled sell counts its remainder", Some("4"), vec![("10", "6")], vec![]),
            ("any sell while short deepens it", Some("-1596"), vec![("1", "0")], vec!["s0"]),
            ("fractional sell within the long", Some("0.5"), vec![("0.5", "0")], vec![]),
        ];
        for (case, qty, sells, want) in cases {
            let mut b = SnapshotBuilder::new();
            if let Some(q) = qty {
                b = b.position("CHWY", q, "25");
            }
            for (i, (q, filled)) in sells.iter().enumerate() {
                let filled = d(filled);
                b = b.order_with(&format!("s{i}"), "CHWY", OrderSide::Sell, q, 600 + i64::try_from(i).unwrap(), |o| {
                    o.filled_qty = filled;
                    o.order_type = format!("limit{i}");
                });
            }
            let got = found(b, "sell_exceeds_position");
            if want.is_empty() {
                assert!(got.is_empty(), "{case}: {got:#?}");
            } else {
                assert_eq!(got.len(), 1, "{case}");
                assert_eq!(got[0].subject, "CHWY");
                // Oldest first: s1 was placed before s0.
                let mut want: Vec<&str> = want;
                want.sort_by_key(|id| std::cmp::Reverse(*id));
                assert_eq!(got[0].observed["order_ids"], json!(want), "{case}");
            }
        }
    }

    /// Issue 12 follow-up: a long of 100 with a stop-loss and a take-profit sell, each for the
    /// full size, were both named (and both cancelled), leaving the long with no exit at all.
    #[test]
    fn a_long_with_a_stop_loss_and_a_take_profit_keeps_its_stop_and_only_the_excess_is_named() {
        let b = SnapshotBuilder::new()
            .position("AAPL", "100", "180")
            .order_with("stop-loss", "AAPL", OrderSide::Sell, "100", 600, |o| o.order_type = "stop".into())
            .order_with("take-profit", "AAPL", OrderSide::Sell, "100", 500, |o| o.order_type = "limit".into());
        let got = found(b, "sell_exceeds_position");
        assert_eq!(got[0].observed["order_ids"], json!(["take-profit"]), "{got:#?}");
        assert_eq!(got[0].observed["sell_order_ids"], json!(["stop-loss", "take-profit"]));
        // A stop larger than the long is itself the hazard: it is named.
        let b = SnapshotBuilder::new().position("AAPL", "100", "180").order_with(
            "big-stop",
            "AAPL",
            OrderSide::Sell,
            "150",
            600,
            |o| o.order_type = "stop".into(),
        );
        assert_eq!(found(b, "sell_exceeds_position")[0].observed["order_ids"], json!(["big-stop"]));
        // Three limit sells of 50 on a long of 100: only the newest is the excess.
        let mut b = SnapshotBuilder::new().position("AAPL", "100", "180");
        for (id, age) in [("a", 900), ("b", 800), ("c", 700)] {
            b = b.order_with(id, "AAPL", OrderSide::Sell, "50", age, |o| o.order_type = "limit".into());
        }
        assert_eq!(found(b, "sell_exceeds_position")[0].observed["order_ids"], json!(["c"]));
    }

    #[test]
    fn notional_sells_cannot_open_shorts() {
        let b = SnapshotBuilder::new().order_with("n1", "AAPL", OrderSide::Sell, "1", 10, |o| {
            o.qty = None;
            o.notional = Some(d("500"));
        });
        assert!(found(b, "sell_exceeds_position").is_empty());
    }

    #[test]
    fn sell_exceeds_message_has_the_numbers() {
        let b = SnapshotBuilder::new().position("CHWY", "50", "25").order("s1", "CHWY", OrderSide::Sell, "100", 10);
        let i = &found(b, "sell_exceeds_position")[0];
        assert_eq!(
            i.message,
            "open sell orders for CHWY total 100 shares but the broker holds 50 long; filling them would open a short of 50"
        );
        assert_eq!(i.observed["sell_qty"], "100");
        assert_eq!(i.observed["position_qty"], "50");
        assert_eq!(i.expected["max_sell_qty"], "50");
    }

    #[test]
    fn stale_orders_by_age() {
        let b = SnapshotBuilder::new()
            .position("AAPL", "100", "180")
            .order("young", "AAPL", OrderSide::Sell, "1", 1800)
            .order_with("old", "AAPL", OrderSide::Sell, "2", 1801, |o| o.order_type = "limit".into())
            .order_with("untimed", "AAPL", OrderSide::Sell, "3", 9999, |o| {
                o.created_at = None;
                o.submitted_at = None;
            });
        let got = found(b, "stale_order");
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].subject, "old");
        assert_eq!(got[0].observed["order_ids"], json!(["old"]));
        assert_eq!(got[0].observed["age_secs"], 1801);
        assert!(got[0].message.contains("open for 30m 1s"), "{}", got[0].message);
    }

    #[test]
    fn stale_after_is_configurable() {
        let p = Params { stale_after: Duration::from_secs(60), ..Params::default() };
        let snap = SnapshotBuilder::new().order("o1", "AAPL", OrderSide::Buy, "1", 61).build();
        assert_eq!(codes(p.evaluate(&snap, snap.taken_at)), vec![("stale_order", "o1".to_owned())]);
    }

    #[test]
    fn duplicates_keep_the_oldest() {
        let b = SnapshotBuilder::new()
            .order("b2", "AAPL", OrderSide::Buy, "10", 20)
            .order("b1", "AAPL", OrderSide::Buy, "10.0", 30)
            .order("b3", "AAPL", OrderSide::Buy, "10", 10)
            .order("other-qty", "AAPL", OrderSide::Buy, "11", 10)
            .order_with("other-type", "AAPL", OrderSide::Buy, "10", 10, |o| {
                o.order_type = "limit".into();
                o.limit_price = Some(d("180"));
            })
            .order("other-symbol", "MSFT", OrderSide::Buy, "10", 10);
        let got = found(b, "duplicate_order");
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].subject, "AAPL");
        assert_eq!(got[0].observed["order_ids"], json!(["b2", "b3"]));
        assert_eq!(got[0].observed["kept_order_ids"], json!(["b1"]));
    }

    #[test]
    fn duplicate_groups_of_one_symbol_make_one_finding() {
        let b = SnapshotBuilder::new()
            .position("AAPL", "100", "180")
            .order("b1", "AAPL", OrderSide::Buy, "10", 30)
            .order("b2", "AAPL", OrderSide::Buy, "10", 20)
            .order("s1", "AAPL", OrderSide::Sell, "5", 300)
            .order("s2", "AAPL", OrderSide::Sell, "5", 200);
        let got = found(b, "duplicate_order");
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].observed["groups"].as_array().unwrap().len(), 2);
        let mut dup: Vec<String> = serde_json::from_value(got[0].observed["order_ids"].clone()).unwrap();
        dup.sort();
        assert_eq!(dup, ["b2", "s2"]);
    }

    #[test]
    fn notional_duplicates_compare_the_amount() {
        let notional = |amount: &'static str| {
            move |o: &mut Order| {
                o.qty = None;
                o.notional = Some(d(amount));
            }
        };
        let b = SnapshotBuilder::new()
            .order_with("n1", "AAPL", OrderSide::Buy, "1", 30, notional("500"))
            .order_with("n2", "AAPL", OrderSide::Buy, "1", 20, notional("500"))
            .order_with("n3", "AAPL", OrderSide::Buy, "1", 10, notional("900"));
        assert_eq!(found(b, "duplicate_order")[0].observed["order_ids"], json!(["n2"]));
    }

    /// Field notes §2: `buys` buys submitted first, then `sells` sells, all within 40 ms.
    fn burst(mut b: SnapshotBuilder, buys: usize, sells: usize) -> SnapshotBuilder {
        let symbols = ["CHWY", "BILL", "COIN", "OKTA", "SNOW", "NET", "DDOG", "ZS", "CRWD", "MDB", "PANW"];
        let at = crate::checks::testkit::t0() - chrono::Duration::seconds(2); // the builder's now is t0
        for (i, sym) in symbols.iter().take(buys).enumerate() {
            let ms = i64::try_from(i).unwrap() * 2;
            b = b.order_with(&format!("buy-{i}"), sym, OrderSide::Buy, "10", 0, |o| {
                o.submitted_at = Some(at + chrono::Duration::milliseconds(ms));
                o.created_at = o.submitted_at;
            });
        }
        for i in 0..sells {
            let ms = 30 + i64::try_from(i).unwrap() * 2;
            let sym = ["AAPL", "MSFT", "NVDA", "AMD", "META"][i];
            b = b.position(sym, "100", "100").order_with(&format!("sell-{i}"), sym, OrderSide::Sell, "10", 0, |o| {
                o.order_type = "limit".into();
                o.limit_price = Some(d("100"));
                o.submitted_at = Some(at + chrono::Duration::milliseconds(ms));
                o.created_at = o.submitted_at;
            });
        }
        b
    }

    #[test]
    fn eleven_buys_submitted_40ms_before_five_sells_are_a_buy_before_sell() {
        // Field notes §2, the incident the code exists for: the old check only flagged buys
        // placed at or after an open sell, so buys sent first (the incident) passed.
        let got = found(burst(SnapshotBuilder::new(), 11, 5), "buy_before_sell");
        assert_eq!(got.len(), 1, "{got:#?}");
        assert_eq!(got[0].subject, "account");
        let buys: Vec<String> = (0..11).map(|i| format!("buy-{i}")).collect();
        let sells: Vec<String> = (0..5).map(|i| format!("sell-{i}")).collect();
        assert_eq!(got[0].observed["order_ids"], json!(buys));
        assert_eq!(got[0].observed["sell_order_ids"], json!(sells));
        assert_eq!(got[0].expected["sequence_window"], "5m");
        assert!(
            got[0].message.starts_with(
                "11 open buy order(s) were placed within 5m of 5 still-open sell order(s) (11 of them before the first sell"
            ),
            "{}",
            got[0].message
        );
    }

    #[test]
    fn buys_within_the_window_of_an_open_sell_before_or_after_it() {
        let b = SnapshotBuilder::new()
            .position("AAPL", "100", "180")
            .order("sell", "AAPL", OrderSide::Sell, "10", 600)
            .order("before-in", "NVDA", OrderSide::Buy, "1", 900) // 5m before: in (inclusive)
            .order("before-out", "TSLA", OrderSide::Buy, "1", 901) // 5m 1s before: out
            .order("after-in", "AMD", OrderSide::Buy, "1", 300) // 5m after: in
            .order("after-out", "META", OrderSide::Buy, "1", 299); // 5m 1s after: out
        let got = found(b, "buy_before_sell");
        assert_eq!(got[0].observed["order_ids"], json!(["before-in", "after-in"]));
        assert_eq!(got[0].observed["sell_order_ids"], json!(["sell"]));
        // A wider window takes them all; buys with no open sell near them are never flagged.
        let p = Params { sequence_window: Duration::from_secs(3600), ..Params::default() };
        let snap = SnapshotBuilder::new()
            .position("AAPL", "100", "180")
            .order("sell", "AAPL", OrderSide::Sell, "10", 600)
            .order("b1", "TSLA", OrderSide::Buy, "1", 901)
            .order("b2", "META", OrderSide::Buy, "1", 299)
            .build();
        let all = issues(p.evaluate(&snap, snap.taken_at));
        let got: Vec<&Issue> = all.iter().filter(|i| i.code == "buy_before_sell").collect();
        assert_eq!(got[0].observed["order_ids"], json!(["b1", "b2"]));
    }

    #[test]
    fn held_bracket_legs_and_protective_stops_are_not_hazards() {
        let b = SnapshotBuilder::new()
            .position("AAPL", "10", "180")
            .order_with("tp", "AAPL", OrderSide::Sell, "10", 60, |o| o.order_type = "limit".into())
            .order_with("sl", "AAPL", OrderSide::Sell, "10", 60, |o| {
                o.order_type = "stop".into();
                o.stop_price = Some(crate::checks::testkit::d("170"));
                o.status = "held".into();
            })
            .order_with("stop2", "AAPL", OrderSide::Sell, "10", 120, |o| {
                o.order_type = "stop".into();
                o.stop_price = Some(crate::checks::testkit::d("165"));
            })
            .order("buy", "MSFT", OrderSide::Buy, "5", 30);
        let issues = match eval(b) {
            Evaluation::Checked(i) => i,
            other => panic!("{other:?}"),
        };
        let codes: Vec<&str> = issues.iter().map(|i| i.code).collect();
        // tp (10) + stop2 (10) exceed the 10 held; the held leg is not counted.
        assert_eq!(codes, ["sell_exceeds_position", "buy_before_sell"], "{issues:#?}");
        assert_eq!(issues[0].observed["sell_qty"], "20");
        assert_eq!(issues[1].observed["sell_order_ids"], json!(["tp"]));
    }

    #[test]
    fn buys_of_another_plan_are_fine() {
        // A buy 16 minutes before (or after) a resting sell belongs to another plan.
        let b = SnapshotBuilder::new()
            .position("AAPL", "100", "180")
            .order("b1", "MSFT", OrderSide::Buy, "1", 1000)
            .order("s1", "AAPL", OrderSide::Sell, "10", 40)
            .order_with("s2", "AAPL", OrderSide::Sell, "1", 1100, |o| o.order_type = "stop".into());
        assert!(found(b, "buy_before_sell").is_empty());
        let b = SnapshotBuilder::new()
            .position("AAPL", "100", "180")
            .order("s1", "AAPL", OrderSide::Sell, "10", 1100)
            .order("b1", "MSFT", OrderSide::Buy, "1", 100);
        assert!(found(b, "buy_before_sell").is_empty());
    }

    #[test]
    fn every_finding_names_orders_to_cancel() {
        let b = SnapshotBuilder::new()
            .order("s1", "CHWY", OrderSide::Sell, "5", 4000)
            .order("s2", "CHWY", OrderSide::Sell, "5", 3000)
            .order("b1", "AAPL", OrderSide::Buy, "1", 2900);
        let all = issues(eval(b));
        let kinds: Vec<&str> = all.iter().map(|i| i.code).collect();
        assert_eq!(
            kinds,
            [
                "sell_exceeds_position",
                "duplicate_order",
                "stale_order",
                "stale_order",
                "stale_order",
                "buy_before_sell"
            ]
        );
        for i in &all {
            assert!(!i.observed["order_ids"].as_array().unwrap().is_empty(), "{i:?}");
        }
    }

    #[test]
    fn terminal_orders_are_ignored() {
        let b =
            SnapshotBuilder::new().order_with("f1", "CHWY", OrderSide::Sell, "5", 4000, |o| o.status = "filled".into());
        assert_eq!(eval(b), Evaluation::Checked(vec![]));
    }

    #[test]
    fn unknown_without_orders_or_positions() {
        assert!(unknown(eval(SnapshotBuilder::new().broker_orders_unavailable())).contains("broker:orders"));
        let b = SnapshotBuilder::new().order("s1", "CHWY", OrderSide::Sell, "5", 1).broker_positions_unavailable();
        assert!(unknown(eval(b)).contains("broker:positions"));
    }

    /// Issue 12: unreadable positions made the whole rule unknown, hiding hazards that need
    /// only the orders (a stale order). Now only `sell_exceeds_position` is blind.
    #[test]
    fn unreadable_positions_do_not_hide_a_stale_order() {
        let b = SnapshotBuilder::new().order("old", "AAPL", OrderSide::Sell, "2", 4000).broker_positions_unavailable();
        let got = blind(eval(b));
        let blind_pairs: Vec<(&str, &str)> = got.blind.iter().map(|i| (i.code, i.subject.as_str())).collect();
        assert_eq!(blind_pairs, [("rule_unknown", "broker:positions")]);
        let found: Vec<(&str, &str)> = got.issues.iter().map(|i| (i.code, i.subject.as_str())).collect();
        assert_eq!(found, [("stale_order", "old")]);
    }

    #[test]
    fn reads_parameters_and_defaults() {
        assert_eq!(read_ok("", Params::read, &SPEC), Params::default());
        assert_eq!(read_ok("stale_after = \"2h\"\n", Params::read, &SPEC).stale_after, Duration::from_secs(7200));
        assert_eq!(
            read_ok("sequence_window = \"30s\"\n", Params::read, &SPEC).sequence_window,
            Duration::from_secs(30)
        );
        assert_eq!(Params::default().sequence_window, Duration::from_secs(300));
        let got = read_params("sequence_window = \"0s\"\n", Params::read, &SPEC);
        assert!(got.0.is_none());
        assert_problems(&got, &[(1, "`sequence_window` in")]);
        let got = read_params("sequence_window = \"2days\"\n", Params::read, &SPEC);
        assert_problems(&got, &[(1, "must be more than 0s and at most 24h (it was 2days)")]);
        let got = read_params("\nstale_after = \"later\"\nstale = \"1m\"\n", Params::read, &SPEC);
        assert!(got.0.is_none());
        assert_problems(&got, &[(2, "`later` is not a duration"), (3, "unknown key `stale`")]);
    }
}
