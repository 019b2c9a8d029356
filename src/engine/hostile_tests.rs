//! Every shipped rule over snapshots holding the extremes a broker body or a bot file can carry:
//! decimals at the ends of `Decimal`'s range, negative zero, 28-digit fractions, zero and
//! negative equity, timestamps from year 1 to the end of chrono's range. Rules may find
//! anything; they must never panic (a panicking check takes the whole watchdog down).

use std::path::Path;
use std::sync::LazyLock;

use chrono::{DateTime, TimeDelta, Utc};
use proptest::prelude::*;
use rust_decimal::Decimal;
use serde_json::json;

use super::evaluate;
use crate::checks::testkit::{SnapshotBuilder, log_summary, t0};
use crate::config::{Config, Rule};
use crate::model::{OrderSide, Side, Symbol, TrackedPosition};

/// The rules of both example configurations (every check kind, default and tuned parameters).
static RULES: LazyLock<Vec<Rule>> = LazyLock::new(|| {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut rules = Vec::new();
    for cfg in ["examples/stock-bot/tradewarden.toml", "examples/ordinis/tradewarden.toml"] {
        let cfg = Config::load(&root.join(cfg)).unwrap();
        rules.extend(cfg.rules);
    }
    rules
});

fn extreme_decimal() -> impl Strategy<Value = Decimal> {
    prop_oneof![
        3 => prop::sample::select(vec![
            Decimal::MAX,
            Decimal::MIN,
            Decimal::ZERO,
            Decimal::from_parts(0, 0, 0, true, 0),
            Decimal::new(1, 28),
            Decimal::new(-1, 28),
            Decimal::from_i128_with_scale((1_i128 << 96) - 1, 28),
            Decimal::ONE,
            Decimal::NEGATIVE_ONE,
        ]),
        2 => (any::<i128>(), 0_u32..=28).prop_map(|(m, s)| Decimal::from_i128_with_scale(m % (1_i128 << 96), s)),
        1 => (-10_000_i64..10_000).prop_map(Decimal::from),
    ]
}

fn extreme_time() -> impl Strategy<Value = DateTime<Utc>> {
    prop_oneof![
        Just(DateTime::<Utc>::MIN_UTC),
        Just(DateTime::<Utc>::MAX_UTC),
        Just(DateTime::parse_from_rfc3339("0001-01-01T00:00:00Z").unwrap().to_utc()),
        Just(DateTime::parse_from_rfc3339("9999-12-31T23:59:59Z").unwrap().to_utc()),
        (-1_000_000_i64..1_000_000).prop_map(|s| t0() + TimeDelta::seconds(s)),
    ]
}

#[derive(Debug, Clone)]
struct Pos {
    qty: Decimal,
    entry: Decimal,
    price: Decimal,
    tracked: Option<Decimal>,
    tracked_entry: Decimal,
    order: Option<(bool, Decimal, Decimal, DateTime<Utc>)>,
}

fn pos() -> impl Strategy<Value = Pos> {
    (
        extreme_decimal(),
        extreme_decimal(),
        extreme_decimal(),
        prop::option::of(extreme_decimal()),
        extreme_decimal(),
        prop::option::of((any::<bool>(), extreme_decimal(), extreme_decimal(), extreme_time())),
    )
        .prop_map(|(qty, entry, price, tracked, tracked_entry, order)| Pos {
            qty,
            entry,
            price,
            tracked,
            tracked_entry,
            order,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1500))]

    #[test]
    fn no_rule_panics_on_extreme_values(
        positions in prop::collection::vec(pos(), 0..6),
        equity in extreme_decimal(),
        buying_power in extreme_decimal(),
        newest in prop::option::of(extreme_time()),
        now in prop_oneof![4 => Just(t0()), 1 => extreme_time()],
        score in extreme_decimal(),
    ) {
        let rules = &*RULES;
        let mut b = SnapshotBuilder::new().equity(&equity.to_string()).account_with(|a| a.buying_power = Some(buying_power));
        for (i, p) in positions.iter().enumerate() {
            let symbol = format!("S{i}");
            b = b.position_priced(&symbol, "1", "1", "1").last_position_with(|bp| {
                bp.qty = p.qty;
                bp.side = if p.qty.is_sign_negative() && !p.qty.is_zero() { Side::Short } else { Side::Long };
                bp.avg_entry_price = Some(p.entry);
                bp.current_price = Some(p.price);
                bp.market_value = p.qty.checked_mul(p.price);
            });
            if let Some((sell, qty, limit, at)) = p.order {
                let side = if sell { OrderSide::Sell } else { OrderSide::Buy };
                b = b.order_with(&format!("o{i}"), &symbol, side, "1", 0, |o| {
                    o.qty = Some(qty);
                    o.filled_qty = qty.abs();
                    o.limit_price = Some(limit);
                    o.submitted_at = Some(at);
                    o.created_at = Some(at);
                    o.updated_at = Some(at);
                });
            }
            b = b.metadata(&symbol, json!({
                "entry_score": score.to_string(),
                "entry_ts": newest.map(|t| t.to_rfc3339()),
                "components": {"rsi": score.to_string()},
            }));
        }
        for log in ["run", "exits", "attribution", "events", "trades", "positions"] {
            let mut s = log_summary(None, vec![]);
            s.newest_event = newest;
            b = b.log(log, s);
        }
        let mut snap = b.at(now).build();
        if let Ok(tracked) = &mut snap.bot.positions {
            for (i, p) in positions.iter().enumerate() {
                if let Some(t) = p.tracked {
                    tracked.push(TrackedPosition {
                        symbol: Symbol::new(&format!("S{i}")),
                        qty: t,
                        side: Side::of_qty(t),
                        entry_price: Some(p.tracked_entry),
                    });
                }
            }
        }
        let ev = evaluate(rules, &snap, now);
        prop_assert_eq!(ev.outcomes.len(), rules.len());
    }
}

/// The panics the property found, one by one.
#[test]
fn regressions_found_by_the_property() {
    use crate::checks::testkit::d;

    let max = Decimal::MAX;
    // open_order_hazard: `qty - filled_qty` and the sum of a symbol's sells overflowed.
    let b = SnapshotBuilder::new()
        .position("CHWY", "10", "40")
        .order_with("a", "CHWY", OrderSide::Sell, "1", 60, |o| {
            o.qty = Some(max);
            o.filled_qty = Decimal::MIN;
        })
        .order_with("b", "CHWY", OrderSide::Sell, "1", 60, |o| o.qty = Some(max));
    let snap = b.build();
    let ev = evaluate(&RULES, &snap, t0());
    assert!(ev.findings.iter().any(|f| f.code == "sell_exceeds_position"), "{:?}", ev.findings);

    // exposure_limits: the sum of market values overflowed; now the rule is unknown.
    let snap = SnapshotBuilder::new()
        .position_priced("A", "1", "1", "1")
        .last_position_with(|p| p.market_value = Some(max))
        .position_priced("B", "1", "1", "1")
        .last_position_with(|p| p.market_value = Some(max))
        .build();
    let ev = evaluate(&RULES, &snap, t0());
    assert_eq!(ev.outcome("exposure"), Some(crate::model::Outcome::Unknown));

    // Position::abs_market_value: qty × price overflowed without a market value.
    let snap = SnapshotBuilder::new()
        .position_priced("A", "1", "1", "1")
        .last_position_with(|p| {
            p.qty = max;
            p.market_value = None;
            p.current_price = Some(d("10"));
        })
        .build();
    let positions = snap.broker.positions.as_ref().unwrap();
    assert_eq!(positions[0].abs_market_value(), None);
    let _ = evaluate(&RULES, &snap, t0());

    // position_match: the sum of tracked lots and the difference overflowed.
    let mut snap = SnapshotBuilder::new().position("A", "-1", "1").build();
    if let Ok(tracked) = &mut snap.bot.positions {
        for q in [max, max, Decimal::MIN] {
            tracked.push(TrackedPosition {
                symbol: Symbol::new("A"),
                qty: q,
                side: Side::of_qty(q),
                entry_price: None,
            });
        }
    }
    let _ = evaluate(&RULES, &snap, t0());

    // metadata_complete: `now + skew` overflowed at the end of time.
    let snap = SnapshotBuilder::new()
        .position("A", "1", "1")
        .metadata("A", json!({"entry_ts": "2026-11-20T15:00:00Z", "entry_score": 1, "components": {}}))
        .build();
    let ev = evaluate(&RULES, &snap, DateTime::<Utc>::MAX_UTC);
    assert_eq!(ev.outcomes.len(), RULES.len());
}
