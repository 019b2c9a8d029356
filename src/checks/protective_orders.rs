//! `protective_orders`: every long position is covered by resting protective sells (stop,
//! stop-limit, trailing stop), and no protective sell is larger than the position it protects.
//!
//! Field notes §1 and §2 (and issue 16): a bot that thinks it holds a position manages its exits;
//! when it does not (a crash, a phantom exit), the broker-side stop is the only exit left, so an
//! uncovered long is a position nobody can close in time. The reverse is as bad: a stop sized for
//! a position that was partly sold, or that is gone, sells shares the account does not hold when
//! it fires, and that opens a short.
//!
//! - `unprotected_position`: a long whose resting protective sells cover less than
//!   `min_coverage_pct` of its quantity (a notional protective order covers nothing countable);
//! - `stop_oversized`: the protective sells resting on a symbol add up to more than the long held
//!   there (or there is no long at all): firing would open a short.
//!
//! A short position is `no_short_positions`' business, and its protective orders are buys: both
//! are left alone here. When the positions or the open orders cannot be read, the rule is
//! unknown.
//!
//! False positives: a bot that protects with a mental stop (its own exit logic, no broker
//! order): do not use this rule for it, or lower `min_coverage_pct`.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::json;

use super::{Absent, Evaluation, Kind, Param, param_or, params_json, unknown_source};
use crate::config::RuleContext;
use crate::config::reader::TableReader;
use crate::model::{Check, Issue, Order, OrderSide, Snapshot};

/// The kind name.
pub const KIND: &str = "protective_orders";
/// What it checks, its codes and parameters.
pub const SPEC: Kind = Kind {
    name: KIND,
    description: "Every long is covered by resting stop / stop-limit / trailing-stop sells for at least \
                  `min_coverage_pct` of its quantity, and the protective sells on a symbol never exceed the long \
                  held (firing them would open a short).",
    codes: &["unprotected_position", "stop_oversized"],
    params: &[Param {
        name: "min_coverage_pct",
        ty: "decimal",
        absent: Absent::Default("\"100\""),
        doc: "of each long's quantity",
    }],
    example: "min_coverage_pct = \"50\"\n",
    read: |r, ctx| Some(Arc::new(Params::read(r, ctx)?)),
};

/// The order types that protect a position at the broker.
const PROTECTIVE_TYPES: [&str; 3] = ["stop", "stop_limit", "trailing_stop"];

/// Parameters.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Params {
    /// The share of each long's quantity its protective sells must cover, in percent.
    pub min_coverage_pct: Decimal,
}

impl Default for Params {
    fn default() -> Self {
        Self { min_coverage_pct: Decimal::ONE_HUNDRED }
    }
}

impl Params {
    /// Reads the parameters.
    pub fn read(r: &mut TableReader<'_, '_>, _ctx: &RuleContext) -> Option<Self> {
        let d = Self::default();
        let pct = param_or(r, "min_coverage_pct", d.min_coverage_pct, TableReader::non_negative_decimal)?;
        Some(Self { min_coverage_pct: pct })
    }
}

/// The shares the resting protective sells on one symbol would sell.
fn protective_sells(orders: &[Order]) -> BTreeMap<&str, (Decimal, Vec<&str>)> {
    let mut by_symbol: BTreeMap<&str, (Decimal, Vec<&str>)> = BTreeMap::new();
    for o in orders {
        if o.side != OrderSide::Sell || !PROTECTIVE_TYPES.contains(&o.order_type.as_str()) {
            continue;
        }
        let e = by_symbol.entry(o.symbol.as_str()).or_default();
        e.0 = e.0.saturating_add(o.remaining_qty().unwrap_or_default());
        e.1.push(o.id.as_str());
    }
    by_symbol
}

impl Check for Params {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn params(&self) -> serde_json::Value {
        params_json(self)
    }

    fn evaluate(&self, snap: &Snapshot, _now: DateTime<Utc>) -> Evaluation {
        let positions = match &snap.broker.positions {
            Ok(p) => p,
            Err(e) => return unknown_source(e),
        };
        let orders = match &snap.broker.orders {
            Ok(o) => o,
            Err(e) => return unknown_source(e),
        };
        let sells = protective_sells(orders);
        let longs: BTreeMap<&str, Decimal> =
            positions.iter().filter(|p| p.qty > Decimal::ZERO).map(|p| (p.symbol.as_str(), p.qty)).collect();
        let mut issues = Vec::new();
        for (symbol, held) in &longs {
            let (covered, ids) = sells.get(symbol).cloned().unwrap_or_default();
            let needed = (*held * self.min_coverage_pct / Decimal::ONE_HUNDRED).normalize();
            if covered < needed {
                issues.push(Issue {
                    code: "unprotected_position",
                    subject: (*symbol).to_owned(),
                    message: format!(
                        "{symbol}: long {held}, protective sells resting for {covered} (need {needed}, {}% of it)",
                        self.min_coverage_pct
                    ),
                    observed: json!({ "qty": held.to_string(), "covered": covered.to_string(), "orders": ids }),
                    expected: json!({ "covered": format!(">= {needed}") }),
                });
            }
        }
        for (symbol, (selling, ids)) in &sells {
            let held = longs.get(symbol).copied().unwrap_or_default();
            if *selling > held {
                issues.push(Issue {
                    code: "stop_oversized",
                    subject: (*symbol).to_owned(),
                    message: format!(
                        "{symbol}: protective sells for {selling} rest on a long of {held}: firing them would open a \
                         short of {}",
                        *selling - held
                    ),
                    observed: json!({ "qty": held.to_string(), "selling": selling.to_string(), "orders": ids }),
                    expected: json!({ "selling": format!("<= {held}") }),
                });
            }
        }
        Evaluation::Checked(issues)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::testkit::{SnapshotBuilder, d};

    fn stop(kind: &'static str) -> impl FnOnce(&mut Order) {
        move |o| o.order_type = kind.into()
    }

    fn codes(e: &Evaluation) -> Vec<(String, String)> {
        let Evaluation::Checked(issues) = e else { panic!("{e:?}") };
        issues.iter().map(|i| (i.code.to_owned(), i.subject.clone())).collect()
    }

    #[test]
    fn a_long_covered_by_stops_is_ok_and_one_without_is_unprotected() {
        let snap = SnapshotBuilder::new()
            .position("AAPL", "10", "180")
            .position("MSFT", "20", "400")
            .order_with("s1", "AAPL", OrderSide::Sell, "6", 60, stop("stop"))
            .order_with("s2", "AAPL", OrderSide::Sell, "4", 60, stop("trailing_stop"))
            .order_with("l1", "MSFT", OrderSide::Sell, "20", 60, stop("limit"))
            .build();
        let e = Params::default().evaluate(&snap, snap.taken_at);
        assert_eq!(codes(&e), [("unprotected_position".into(), "MSFT".into())], "a limit sell is no protection");
        let half = Params { min_coverage_pct: d("50") };
        let snap = SnapshotBuilder::new()
            .position("AAPL", "10", "180")
            .order_with("s1", "AAPL", OrderSide::Sell, "5", 60, stop("stop_limit"))
            .build();
        assert!(codes(&half.evaluate(&snap, snap.taken_at)).is_empty());
        assert_eq!(codes(&Params::default().evaluate(&snap, snap.taken_at)).len(), 1);
    }

    #[test]
    fn a_stop_larger_than_the_long_or_with_no_long_would_open_a_short() {
        let snap = SnapshotBuilder::new()
            .position("AAPL", "10", "180")
            .order_with("s1", "AAPL", OrderSide::Sell, "15", 60, stop("stop"))
            .order_with("s2", "CHWY", OrderSide::Sell, "1596", 60, stop("stop"))
            .build();
        let e = Params::default().evaluate(&snap, snap.taken_at);
        assert_eq!(codes(&e), [("stop_oversized".into(), "AAPL".into()), ("stop_oversized".into(), "CHWY".into())]);
        let Evaluation::Checked(issues) = e else { unreachable!() };
        assert!(issues[1].message.contains("open a short of 1596"), "{}", issues[1].message);
    }

    #[test]
    fn shorts_and_their_buy_stops_are_left_to_no_short_positions() {
        let snap = SnapshotBuilder::new()
            .position("CHWY", "-1596", "25")
            .order_with("b1", "CHWY", OrderSide::Buy, "1596", 60, stop("stop"))
            .build();
        assert!(codes(&Params::default().evaluate(&snap, snap.taken_at)).is_empty());
    }

    #[test]
    fn unreadable_positions_or_orders_are_unknown_not_ok() {
        for snap in [
            SnapshotBuilder::new().broker_positions_unavailable().build(),
            SnapshotBuilder::new().broker_orders_unavailable().build(),
        ] {
            assert!(matches!(Params::default().evaluate(&snap, snap.taken_at), Evaluation::Unknown(_)));
        }
    }
}
