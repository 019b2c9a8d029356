//! The state machine's rules, one test per rule, without HTTP.

use std::str::FromStr;

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use rust_decimal::{Decimal, dec};

use super::*;
use crate::clock::ManualClock;
use crate::model::OrderSide;
use crate::sim::order::{OrderType, TimeInForce};
use crate::sim::request::{CloseQuery, ConfigPatch, OrderRequest, OrdersQuery, ReplaceRequest, StatusFilter};
use crate::sim::scenario::Scenario;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 12, 15, 0, 0).unwrap()
}

fn sim_with_clock(json: &str) -> (SimBroker, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(t0()));
    let b = SimBroker::from_scenario(&Scenario::from_json(json).unwrap(), clock.clone()).unwrap();
    (b, clock)
}

fn sim(json: &str) -> SimBroker {
    sim_with_clock(json).0
}

/// AAPL at 185, MSFT at 415, 100000 cash, 2× margin.
fn basic() -> SimBroker {
    sim(r#"{"prices": {"AAPL": "185.00", "MSFT": "415.00"}}"#)
}

fn req(symbol: &str, side: OrderSide, qty: Decimal) -> OrderRequest {
    OrderRequest {
        symbol: symbol.into(),
        side,
        kind: OrderType::Market,
        time_in_force: TimeInForce::Day,
        qty: Some(qty),
        notional: None,
        limit_price: None,
        stop_price: None,
        trail_price: None,
        trail_percent: None,
        extended_hours: false,
        client_order_id: None,
    }
}

fn buy(symbol: &str, qty: Decimal) -> OrderRequest {
    req(symbol, OrderSide::Buy, qty)
}

fn sell(symbol: &str, qty: Decimal) -> OrderRequest {
    req(symbol, OrderSide::Sell, qty)
}

fn limit(mut r: OrderRequest, price: Decimal) -> OrderRequest {
    r.kind = OrderType::Limit;
    r.limit_price = Some(price);
    r.time_in_force = TimeInForce::Gtc;
    r
}

fn with_id(mut r: OrderRequest, id: &str) -> OrderRequest {
    r.client_order_id = Some(id.into());
    r
}

fn qty_of(b: &SimBroker, symbol: &str) -> Option<Decimal> {
    b.position(symbol).ok().and_then(|p| p.qty)
}

fn prices(pairs: &[(&str, &str)]) -> BTreeMap<String, Decimal> {
    pairs.iter().map(|(s, p)| ((*s).to_owned(), Decimal::from_str(p).unwrap())).collect()
}

/// equity = cash + long + short, and the positions add up to the account's market values.
fn assert_consistent(b: &SimBroker) {
    let a = b.account();
    let (cash, long, short, equity) =
        (a.cash.unwrap(), a.long_market_value.unwrap(), a.short_market_value.unwrap(), a.equity.unwrap());
    assert_eq!(equity, cash + long + short);
    assert_eq!(a.portfolio_value, a.equity);
    let positions = b.positions();
    let sum = |short_side: bool| -> Decimal {
        positions.iter().filter(|p| (p.side == "short") == short_side).map(|p| p.market_value.unwrap()).sum()
    };
    assert_eq!(long, sum(false));
    assert_eq!(short, sum(true));
    assert!(a.buying_power.unwrap() >= Decimal::ZERO);
}

#[test]
fn market_buy_fills_at_once_at_the_price() {
    let mut b = basic();
    let o = b.submit(&buy("AAPL", dec!(10))).unwrap();
    assert_eq!(o.status, "filled");
    assert_eq!(o.filled_qty, Some(dec!(10)));
    assert_eq!(o.filled_avg_price, Some(dec!(185.00)));
    assert_eq!(o.position_intent.as_deref(), Some("buy_to_open"));
    let p = b.position("AAPL").unwrap();
    assert_eq!((p.qty, p.side.as_str()), (Some(dec!(10)), "long"));
    assert_eq!(p.market_value, Some(dec!(1850.00)));
    let a = b.account();
    assert_eq!(a.cash, Some(dec!(98150.00)));
    assert_eq!(a.equity, Some(dec!(100000)));
    assert_eq!(a.buying_power, Some(dec!(200000) - dec!(1850)));
    assert_consistent(&b);
}

#[test]
fn market_orders_fill_while_the_market_is_closed() {
    let mut b = sim(r#"{"prices": {"AAPL": "185"}, "clock": {"is_open": false}}"#);
    assert!(!b.clock().is_open);
    assert_eq!(b.submit(&buy("AAPL", dec!(1))).unwrap().status, "filled");
}

#[test]
fn sell_from_flat_opens_a_short() {
    let mut b = basic();
    let o = b.submit(&sell("MSFT", dec!(15))).unwrap();
    assert_eq!(o.position_intent.as_deref(), Some("sell_to_open"));
    let p = b.position("MSFT").unwrap();
    assert_eq!(p.qty, Some(dec!(-15)));
    assert_eq!(p.side, "short");
    assert_eq!(p.market_value, Some(dec!(-6225.00)));
    assert_eq!(p.cost_basis, Some(dec!(-6225.00)));
    assert_eq!(p.avg_entry_price, Some(dec!(415.00)));
    assert_eq!(p.qty_available, Some(dec!(-15)));
    let a = b.account();
    assert_eq!(a.cash, Some(dec!(106225.00)));
    assert_eq!(a.short_market_value, Some(dec!(-6225.00)));
    assert_eq!(a.equity, Some(dec!(100000)));
    assert_consistent(&b);
}

#[test]
fn sells_while_short_deepen_it_at_a_weighted_entry() {
    let mut b = basic();
    b.submit(&sell("MSFT", dec!(10))).unwrap();
    b.set_prices(&prices(&[("MSFT", "420.00")])).unwrap();
    b.submit(&sell("MSFT", dec!(10))).unwrap();
    let p = b.position("MSFT").unwrap();
    assert_eq!(p.qty, Some(dec!(-20)));
    assert_eq!(p.avg_entry_price, Some(dec!(417.50)));
    assert_eq!(p.unrealized_pl, Some(dec!(-50.00)));
    assert_consistent(&b);
}

#[test]
fn no_shorting_refuses_a_short() {
    let mut b = sim(r#"{"prices": {"MSFT": "415"}, "configurations": {"no_shorting": true}}"#);
    let e = b.submit(&sell("MSFT", dec!(1))).unwrap_err();
    assert_eq!((e.status, e.body.code), (403, Some(40_310_000)));
    assert_eq!(e.body.message, "account is not allowed to short");
    assert!(b.positions().is_empty());
    // Also when the account is not enabled for shorting, or is a cash account.
    let mut b = sim(r#"{"prices": {"MSFT": "415"}, "account": {"shorting_enabled": false}}"#);
    assert_eq!(b.submit(&sell("MSFT", dec!(1))).unwrap_err().body.message, "account is not allowed to short");
    let mut b = sim(r#"{"prices": {"MSFT": "415"}, "configurations": {"max_margin_multiplier": "1"}}"#);
    assert_eq!(b.submit(&sell("MSFT", dec!(1))).unwrap_err().status, 403);
    assert_eq!(b.account().shorting_enabled, Some(false));
}

#[test]
fn no_shorting_also_stops_deepening_but_not_covering() {
    let mut b = basic();
    b.submit(&sell("MSFT", dec!(10))).unwrap();
    b.patch_configuration(&ConfigPatch { no_shorting: Some(true), ..ConfigPatch::default() });
    assert_eq!(b.submit(&sell("MSFT", dec!(1))).unwrap_err().status, 403);
    assert_eq!(b.submit(&buy("MSFT", dec!(4))).unwrap().position_intent.as_deref(), Some("buy_to_close"));
    assert_eq!(qty_of(&b, "MSFT"), Some(dec!(-6)));
}

#[test]
fn selling_more_than_a_long_is_403_with_the_fields() {
    let mut b =
        sim(r#"{"prices": {"AAPL": "185"}, "positions": [{"symbol": "AAPL", "qty": "7", "avg_entry_price": "180"}]}"#);
    let e = b.submit(&sell("AAPL", dec!(12))).unwrap_err();
    assert_eq!((e.status, e.body.code), (403, Some(40_310_000)));
    assert_eq!(e.body.message, "insufficient qty available for order (requested: 12, available: 7)");
    assert_eq!(e.body.symbol.as_deref(), Some("AAPL"));
    assert_eq!(e.body.available, Some(dec!(7)));
    assert_eq!(e.body.existing_qty, Some(dec!(7)));
    assert_eq!(e.body.held_for_orders, Some(dec!(0)));
    assert_eq!(qty_of(&b, "AAPL"), Some(dec!(7)), "nothing changed");
}

#[test]
fn open_sells_hold_shares() {
    let mut b = sim(r#"{"prices": {"AAPL": "185"}, "positions": [{"symbol": "AAPL", "qty": "10"}]}"#);
    let resting = b.submit(&limit(sell("AAPL", dec!(6)), dec!(200))).unwrap();
    assert_eq!(resting.status, "new");
    assert_eq!(b.position("AAPL").unwrap().qty_available, Some(dec!(4)));
    let e = b.submit(&sell("AAPL", dec!(5))).unwrap_err();
    assert_eq!(e.body.available, Some(dec!(4)));
    assert_eq!(e.body.held_for_orders, Some(dec!(6)));
    assert_eq!(b.submit(&sell("AAPL", dec!(4))).unwrap().status, "filled");
    assert_eq!(qty_of(&b, "AAPL"), Some(dec!(6)));
}

#[test]
fn a_position_disappears_at_zero() {
    let mut b = basic();
    b.submit(&buy("AAPL", dec!(5))).unwrap();
    b.submit(&sell("AAPL", dec!(5))).unwrap();
    assert!(b.positions().is_empty());
    let e = b.position("AAPL").unwrap_err();
    assert_eq!((e.status, e.body.code, e.body.message.as_str()), (404, Some(40_410_000), "position does not exist"));
    assert_eq!(b.account().cash, Some(dec!(100000.00)));
    assert_consistent(&b);
}

#[test]
fn buying_more_than_a_short_is_403() {
    let mut b = basic();
    b.submit(&sell("MSFT", dec!(5))).unwrap();
    let e = b.submit(&buy("MSFT", dec!(8))).unwrap_err();
    assert_eq!(e.status, 403);
    assert_eq!(e.body.message, "insufficient qty available for order (requested: 8, available: 5)");
    assert_eq!(e.body.existing_qty, Some(dec!(-5)));
    assert_eq!(e.body.available, Some(dec!(-5)));
    b.submit(&buy("MSFT", dec!(5))).unwrap();
    assert!(b.positions().is_empty());
}

#[test]
fn opposite_opening_orders_conflict_while_flat() {
    let mut b = basic();
    b.submit(&limit(sell("MSFT", dec!(5)), dec!(500))).unwrap();
    let e = b.submit(&buy("MSFT", dec!(1))).unwrap_err();
    assert_eq!((e.status, e.body.message.as_str()), (403, "cannot open a long buy while a short sell order is open"));
    let mut b = basic();
    b.submit(&limit(buy("AAPL", dec!(5)), dec!(100))).unwrap();
    let e = b.submit(&sell("AAPL", dec!(1))).unwrap_err();
    assert_eq!(e.body.message, "cannot open a short sell while a long buy order is open");
}

#[test]
fn fractional_and_notional_shorts_are_refused() {
    let mut b = basic();
    let e = b.submit(&sell("MSFT", dec!(1.5))).unwrap_err();
    assert_eq!((e.status, e.body.message.as_str()), (403, "fractional orders are not allowed to short"));
    let mut n = sell("MSFT", dec!(1));
    n.qty = None;
    n.notional = Some(dec!(830));
    assert_eq!(b.submit(&n).unwrap_err().status, 403);
}

#[test]
fn notional_buy_becomes_fractional_shares() {
    let mut b = basic();
    let mut n = buy("AAPL", dec!(1));
    n.qty = None;
    n.notional = Some(dec!(250.5));
    let o = b.submit(&n).unwrap();
    assert_eq!(o.qty, None);
    assert_eq!(o.notional, Some(dec!(250.5)));
    assert_eq!(o.filled_qty, Some(dec!(1.354054054)));
    assert_eq!(qty_of(&b, "AAPL"), Some(dec!(1.354054054)));
    assert_consistent(&b);
    b.patch_configuration(&ConfigPatch { fractional_trading: Some(false), ..ConfigPatch::default() });
    assert_eq!(b.submit(&buy("AAPL", dec!(0.5))).unwrap_err().status, 403);
}

#[test]
fn duplicate_client_order_id_is_422_even_after_a_cancel() {
    let mut b = basic();
    let o = b.submit(&with_id(limit(buy("AAPL", dec!(1)), dec!(100)), "bot-1")).unwrap();
    let e = b.submit(&with_id(buy("AAPL", dec!(1)), "bot-1")).unwrap_err();
    assert_eq!((e.status, e.body.code), (422, Some(40_010_001)));
    assert_eq!(e.body.message, "client_order_id must be unique");
    b.cancel(&o.id).unwrap();
    assert_eq!(b.submit(&with_id(buy("AAPL", dec!(1)), "bot-1")).unwrap_err().status, 422);
    assert_eq!(b.order_by_client_id("bot-1").unwrap().id, o.id);
}

#[test]
fn a_symbol_without_a_price_is_422() {
    let mut b = basic();
    let e = b.submit(&buy("ZZZZ", dec!(1))).unwrap_err();
    assert_eq!((e.status, e.body.code), (422, Some(42_210_000)));
    assert!(e.body.message.contains("ZZZZ"));
}

#[test]
fn cancel_rules() {
    let mut b = basic();
    let open = b.submit(&limit(buy("AAPL", dec!(1)), dec!(100))).unwrap();
    let filled = b.submit(&buy("MSFT", dec!(1))).unwrap();
    let e = b.cancel(&filled.id).unwrap_err();
    assert_eq!((e.status, e.body.code), (422, Some(42_210_000)));
    assert_eq!(e.body.message, "order is already in \"filled\" state");
    b.cancel(&open.id).unwrap();
    let o = b.order(&open.id).unwrap();
    assert_eq!(o.status, "canceled");
    assert!(o.canceled_at.is_some());
    assert_eq!(b.cancel(&open.id).unwrap_err().body.message, "order is already in \"canceled\" state");
    assert_eq!(b.cancel(&Uuid::new_v4().to_string()).unwrap_err().status, 404);
    assert_eq!(b.cancel("not-a-uuid").unwrap_err().status, 422);
    assert_eq!(b.order(&Uuid::new_v4().to_string()).unwrap_err().status, 404);
}

#[test]
fn cancel_all_reports_each_open_order() {
    let mut b = basic();
    let a = b.submit(&limit(buy("AAPL", dec!(1)), dec!(100))).unwrap();
    let c = b.submit(&limit(buy("MSFT", dec!(1)), dec!(100))).unwrap();
    b.submit(&buy("AAPL", dec!(1))).unwrap();
    let r = b.cancel_all();
    assert_eq!(r, vec![CancelResult { id: a.id.clone(), status: 200 }, CancelResult { id: c.id, status: 200 }]);
    assert!(b.orders(&OrdersQuery::default()).is_empty());
    assert!(b.cancel_all().is_empty());
}

#[test]
fn limit_orders_rest_until_the_price_crosses() {
    let mut b = basic();
    let buy_order = b.submit(&limit(buy("AAPL", dec!(10)), dec!(180))).unwrap();
    assert_eq!(buy_order.status, "new");
    assert!(b.positions().is_empty());
    // Not reached: rests.
    assert!(b.set_prices(&prices(&[("AAPL", "181")])).unwrap().is_empty());
    assert_eq!(b.order(&buy_order.id).unwrap().status, "new");
    // Crossed: fills at the price, which is better than the limit.
    let filled = b.set_prices(&prices(&[("AAPL", "179.50")])).unwrap();
    assert_eq!(filled.len(), 1);
    assert_eq!(filled[0].status, "filled");
    assert_eq!(filled[0].filled_avg_price, Some(dec!(179.50)));
    assert_eq!(qty_of(&b, "AAPL"), Some(dec!(10)));
    assert_eq!(b.account().cash, Some(dec!(100000) - dec!(1795)));
    // A sell limit fills at or above.
    let s = b.submit(&limit(sell("AAPL", dec!(10)), dec!(190))).unwrap();
    assert_eq!(s.status, "new");
    b.set_prices(&prices(&[("AAPL", "190")])).unwrap();
    assert_eq!(b.order(&s.id).unwrap().status, "filled");
    assert!(b.positions().is_empty());
    assert_consistent(&b);
}

#[test]
fn a_marketable_limit_fills_at_once() {
    let mut b = basic();
    let o = b.submit(&limit(buy("AAPL", dec!(1)), dec!(200))).unwrap();
    assert_eq!((o.status.as_str(), o.filled_avg_price), ("filled", Some(dec!(185.00))));
}

#[test]
fn ioc_that_does_not_fill_is_cancelled() {
    let mut b = basic();
    let mut r = limit(buy("AAPL", dec!(1)), dec!(100));
    r.time_in_force = TimeInForce::Ioc;
    assert_eq!(b.submit(&r).unwrap().status, "canceled");
}

#[test]
fn stops_and_trailing_stops_trigger_on_prices() {
    let mut b = sim(r#"{"prices": {"AAPL": "100"}, "positions": [{"symbol": "AAPL", "qty": "20"}]}"#);
    let mut stop = sell("AAPL", dec!(5));
    stop.kind = OrderType::Stop;
    stop.stop_price = Some(dec!(95));
    let stop = b.submit(&stop).unwrap();
    let mut trail = sell("AAPL", dec!(5));
    trail.kind = OrderType::TrailingStop;
    trail.trail_percent = Some(dec!(10));
    let trail = b.submit(&trail).unwrap();
    assert_eq!(trail.stop_price, Some(dec!(90)));
    let mut sl = sell("AAPL", dec!(5));
    sl.kind = OrderType::StopLimit;
    sl.stop_price = Some(dec!(96));
    sl.limit_price = Some(dec!(97));
    let sl = b.submit(&sl).unwrap();
    assert_eq!(b.position("AAPL").unwrap().qty_available, Some(dec!(5)));
    // The trailing stop follows the high.
    b.set_prices(&prices(&[("AAPL", "120")])).unwrap();
    assert_eq!(b.order(&trail.id).unwrap().stop_price, Some(dec!(108)));
    assert_eq!(b.order(&trail.id).unwrap().hwm, Some(dec!(120)));
    // 107: the trailing stop (108) triggers, the others do not.
    let filled = b.set_prices(&prices(&[("AAPL", "107")])).unwrap();
    assert_eq!(filled.iter().map(|o| o.id.clone()).collect::<Vec<_>>(), vec![trail.id]);
    // 95: the stop fills; the stop-limit triggers at 96 but its sell limit of 97 is not met.
    let filled = b.set_prices(&prices(&[("AAPL", "95")])).unwrap();
    assert_eq!(filled.iter().map(|o| o.id.clone()).collect::<Vec<_>>(), vec![stop.id]);
    assert_eq!(b.order(&sl.id).unwrap().status, "new");
    b.set_prices(&prices(&[("AAPL", "97.5")])).unwrap();
    assert_eq!(b.order(&sl.id).unwrap().filled_avg_price, Some(dec!(97.5)));
    assert_eq!(qty_of(&b, "AAPL"), Some(dec!(5)));
    assert_consistent(&b);
}

#[test]
fn buying_power_limits_opening_orders() {
    let mut b = sim(r#"{"account": {"cash": "10000"}, "prices": {"AAPL": "100"}}"#);
    assert_eq!(b.account().buying_power, Some(dec!(20000)));
    let e = b.submit(&buy("AAPL", dec!(201))).unwrap_err();
    assert_eq!(e.status, 403);
    assert!(e.body.message.starts_with("insufficient buying power"), "{}", e.body.message);
    // Open orders reserve buying power.
    b.submit(&limit(buy("AAPL", dec!(150)), dec!(90))).unwrap();
    assert_eq!(b.account().buying_power, Some(dec!(20000) - dec!(13500)));
    assert_eq!(b.submit(&buy("AAPL", dec!(70))).unwrap_err().status, 403);
    b.submit(&buy("AAPL", dec!(60))).unwrap();
    assert_consistent(&b);
}

#[test]
fn close_position_whole_part_and_percentage() {
    let mut b = sim(r#"{"prices": {"AAPL": "185", "MSFT": "415"},
            "positions": [{"symbol": "AAPL", "qty": "10", "avg_entry_price": "180"},
                          {"symbol": "MSFT", "qty": "-15", "avg_entry_price": "412.30"}]}"#);
    let o = b.close_position("AAPL", &CloseQuery { qty: Some(dec!(3)), percentage: None }).unwrap();
    assert_eq!((o.side.as_str(), o.qty, o.status.as_str()), ("sell", Some(dec!(3)), "filled"));
    assert_eq!(o.kind, "market");
    assert_eq!(qty_of(&b, "AAPL"), Some(dec!(7)));
    b.close_position("AAPL", &CloseQuery { qty: None, percentage: Some(dec!(50)) }).unwrap();
    assert_eq!(qty_of(&b, "AAPL"), Some(dec!(4)), "half of 7 rounds down to whole shares");
    let o = b.close_position("MSFT", &CloseQuery::default()).unwrap();
    assert_eq!((o.side.as_str(), o.qty), ("buy", Some(dec!(15))));
    assert_eq!(qty_of(&b, "MSFT"), None);
    let e = b.close_position("MSFT", &CloseQuery::default()).unwrap_err();
    assert_eq!((e.status, e.body.code), (404, Some(40_410_000)));
    let e = b.close_position("AAPL", &CloseQuery { qty: Some(dec!(5)), percentage: None }).unwrap_err();
    assert_eq!(e.status, 403);
    assert_consistent(&b);
}

#[test]
fn close_position_by_asset_id() {
    let id = "a2b34a5f-6134-4581-9af9-601aa0fa30d4";
    let mut b = sim(&format!(
        r#"{{"positions": [{{"symbol": "TSLA", "qty": "2", "avg_entry_price": "250", "asset_id": "{id}"}}]}}"#
    ));
    assert_eq!(b.position(id).unwrap().symbol, "TSLA");
    assert_eq!(b.position("TSLA").unwrap().asset_id, id);
    b.close_position(id, &CloseQuery::default()).unwrap();
    assert!(b.positions().is_empty());
}

#[test]
fn close_all_honours_cancel_orders() {
    let scenario = r#"{"prices": {"AAPL": "185", "MSFT": "415"},
        "positions": [{"symbol": "AAPL", "qty": "10"}, {"symbol": "MSFT", "qty": "-15"}],
        "orders": [{"symbol": "MSFT", "side": "buy", "qty": "15", "type": "limit", "limit_price": "300"}]}"#;
    // Without cancel_orders the held short cannot be closed.
    let mut b = sim(scenario);
    let r = b.close_all(false);
    assert_eq!(r.iter().map(|c| (c.symbol.as_str(), c.status)).collect::<Vec<_>>(), [("AAPL", 200), ("MSFT", 403)]);
    assert_eq!(r[1].body["code"], 40_310_000);
    assert_eq!(r[1].body["held_for_orders"], "-15");
    assert_eq!(r[0].body["side"], "sell");
    assert_eq!(qty_of(&b, "MSFT"), Some(dec!(-15)));
    // With it, the order is cancelled first and everything closes.
    let mut b = sim(scenario);
    let r = b.close_all(true);
    assert!(r.iter().all(|c| c.status == 200));
    assert!(b.positions().is_empty());
    assert_eq!(b.orders(&OrdersQuery { status: StatusFilter::Closed, ..OrdersQuery::default() }).len(), 3);
    assert_eq!(b.all_orders()[0].status, "canceled");
    assert!(b.close_all(true).is_empty());
    assert_consistent(&b);
}

#[test]
fn replace_makes_a_new_order() {
    let mut b = basic();
    let old = b.submit(&with_id(limit(buy("AAPL", dec!(10)), dec!(150)), "a")).unwrap();
    let new = b
        .replace(
            &old.id,
            &ReplaceRequest { qty: Some(dec!(5)), limit_price: Some(dec!(160)), ..ReplaceRequest::default() },
        )
        .unwrap();
    assert_ne!(new.id, old.id);
    assert_eq!(new.replaces.as_deref(), Some(old.id.as_str()));
    assert_eq!((new.qty, new.limit_price, new.status.as_str()), (Some(dec!(5)), Some(dec!(160)), "new"));
    let old_now = b.order(&old.id).unwrap();
    assert_eq!(old_now.status, "replaced");
    assert_eq!(old_now.replaced_by.as_deref(), Some(new.id.as_str()));
    assert_eq!(b.orders(&OrdersQuery::default()).len(), 1);
    // Replacing a finished order, or with nothing to change, is refused.
    assert_eq!(
        b.replace(&old.id, &ReplaceRequest { qty: Some(dec!(1)), ..ReplaceRequest::default() }).unwrap_err().status,
        422
    );
    assert_eq!(b.replace(&new.id, &ReplaceRequest::default()).unwrap_err().status, 422);
    let e = b.replace(&new.id, &ReplaceRequest { stop_price: Some(dec!(1)), ..ReplaceRequest::default() }).unwrap_err();
    assert!(e.body.message.contains("stop_price"));
    // A replacement that becomes marketable fills.
    let filled =
        b.replace(&new.id, &ReplaceRequest { limit_price: Some(dec!(190)), ..ReplaceRequest::default() }).unwrap();
    assert_eq!(filled.status, "filled");
    assert_eq!(qty_of(&b, "AAPL"), Some(dec!(5)));
}

#[test]
fn replace_keeps_the_hold_rules() {
    let mut b = sim(r#"{"prices": {"AAPL": "185"}, "positions": [{"symbol": "AAPL", "qty": "10"}]}"#);
    let o = b.submit(&limit(sell("AAPL", dec!(10)), dec!(200))).unwrap();
    // Its own hold does not count against it; more than the position does.
    b.replace(&o.id, &ReplaceRequest { limit_price: Some(dec!(210)), ..ReplaceRequest::default() }).unwrap();
    let open = b.orders(&OrdersQuery::default());
    let e = b.replace(&open[0].id, &ReplaceRequest { qty: Some(dec!(11)), ..ReplaceRequest::default() }).unwrap_err();
    assert_eq!(e.status, 403);
}

#[test]
fn order_listing_filters_and_sorts() {
    let (mut b, clock) = sim_with_clock(r#"{"prices": {"AAPL": "185", "MSFT": "415"}}"#);
    let mut ids = Vec::new();
    for (i, r) in
        [buy("AAPL", dec!(1)), limit(buy("AAPL", dec!(1)), dec!(100)), limit(sell("MSFT", dec!(1)), dec!(500))]
            .into_iter()
            .enumerate()
    {
        clock.set(t0() + chrono::Duration::minutes(i64::try_from(i).unwrap()));
        ids.push(b.submit(&r).unwrap().id);
    }
    let list = |q: OrdersQuery| b.orders(&q).into_iter().map(|o| o.id).collect::<Vec<_>>();
    assert_eq!(list(OrdersQuery::default()), [ids[2].clone(), ids[1].clone()], "open, newest first");
    assert_eq!(list(OrdersQuery { status: StatusFilter::Closed, ..OrdersQuery::default() }), [ids[0].clone()]);
    assert_eq!(list(OrdersQuery { status: StatusFilter::All, ascending: true, ..OrdersQuery::default() }), ids);
    assert_eq!(list(OrdersQuery { status: StatusFilter::All, limit: 1, ..OrdersQuery::default() }), [ids[2].clone()]);
    let only_msft =
        OrdersQuery { status: StatusFilter::All, symbols: Some(vec!["MSFT".into()]), ..OrdersQuery::default() };
    assert_eq!(list(only_msft), [ids[2].clone()]);
    let buys = OrdersQuery { status: StatusFilter::All, side: Some(OrderSide::Buy), ..OrdersQuery::default() };
    assert_eq!(list(buys).len(), 2);
    let window = OrdersQuery {
        status: StatusFilter::All,
        after: Some(t0()),
        until: Some(t0() + chrono::Duration::minutes(2)),
        ..OrdersQuery::default()
    };
    assert_eq!(list(window), [ids[1].clone()], "after and until are exclusive");
}

#[test]
fn configuration_patch_leaves_absent_fields() {
    let mut b = basic();
    let c = b.patch_configuration(&ConfigPatch { suspend_trade: Some(true), ..ConfigPatch::default() });
    assert_eq!(
        (c.suspend_trade, c.no_shorting, c.max_margin_multiplier.as_deref()),
        (Some(true), Some(false), Some("2"))
    );
    assert_eq!(c.ptp_no_exception_entry, Some(false));
    assert_eq!(b.account().trade_suspended_by_user, Some(true));
    let e = b.submit(&buy("AAPL", dec!(1))).unwrap_err();
    assert_eq!(e.status, 403);
    b.patch_configuration(&ConfigPatch {
        suspend_trade: Some(false),
        max_margin_multiplier: Some("4".into()),
        ..ConfigPatch::default()
    });
    assert_eq!(b.account().buying_power, Some(dec!(400000)));
    b.submit(&buy("AAPL", dec!(1))).unwrap();
}

#[test]
fn blocked_or_inactive_accounts_cannot_trade() {
    for account in [r#"{"trading_blocked": true}"#, r#"{"account_blocked": true}"#, r#"{"status": "inactive"}"#] {
        let mut b = sim(&format!(r#"{{"account": {account}, "prices": {{"AAPL": "1"}}}}"#));
        assert_eq!(b.submit(&buy("AAPL", dec!(1))).unwrap_err().status, 403, "{account}");
    }
    assert_eq!(sim(r#"{"account": {"status": "inactive"}}"#).account().status, "INACTIVE");
}

#[test]
fn scenario_seeds_and_defaults() {
    let b = sim(r#"{"account": {"cash": "50000", "last_equity": "49000"},
            "positions": [{"symbol": "AAPL", "qty": "10", "avg_entry_price": "180.00"},
                          {"symbol": "TSLA", "qty": "3", "side": "short", "avg_entry_price": "250", "lastday_price": "240"}],
            "orders": [{"symbol": "MSFT", "side": "sell", "qty": "5", "type": "limit", "limit_price": "500.00",
                        "submitted_at": "2026-11-20T14:00:00Z", "client_order_id": "seed-1"},
                       {"symbol": "AAPL", "side": "sell", "qty": 2, "status": "filled", "filled_avg_price": 181}],
            "prices": {"AAPL": "185.00", "MSFT": "415.00"}}"#);
    let a = b.account();
    assert_eq!(a.cash, Some(dec!(50000)));
    assert_eq!(a.last_equity, Some(dec!(49000)));
    assert_eq!(b.positions().len(), 2);
    let t = b.position("TSLA").unwrap();
    assert_eq!((t.qty, t.side.as_str(), t.current_price), (Some(dec!(-3)), "short", Some(dec!(250))));
    assert_eq!(t.unrealized_intraday_pl, Some(dec!(-30)));
    assert_eq!(t.change_today, Some(dec!(0.0416666667)));
    let seeded = b.order_by_client_id("seed-1").unwrap();
    assert_eq!((seeded.status.as_str(), seeded.position_intent.as_deref()), ("new", Some("sell_to_open")));
    assert_eq!(seeded.submitted_at.unwrap().to_rfc3339(), "2026-11-20T14:00:00+00:00");
    let all = b.all_orders();
    assert_eq!(all[1].filled_qty, Some(dec!(2)));
    assert_eq!(all[1].status, "filled");
    assert!(b.clock().is_open, "open by default");
    assert_consistent(&b);
    // Default account: 100000 cash, ACTIVE, a UUID id.
    let d = sim("{}").account();
    assert_eq!((d.cash, d.status.as_str()), (Some(dec!(100000)), "ACTIVE"));
    assert!(Uuid::parse_str(&d.id).is_ok());
}

#[test]
fn scenario_problems_are_all_reported() {
    let bad = r#"{"prices": {"AAPL": "-1"},
        "positions": [{"symbol": "MSFT", "qty": "0"}, {"symbol": "X", "qty": "1"}],
        "orders": [{"symbol": "AAPL", "side": "hold", "qty": "1"}],
        "configurations": {"max_margin_multiplier": "3"}}"#;
    let e = SimBroker::from_scenario(&Scenario::from_json(bad).unwrap(), Arc::new(ManualClock::new(t0()))).unwrap_err();
    for needle in ["prices:", "positions[0]", "positions[1]", "orders[0]", "configurations:"] {
        assert!(e.contains(needle), "{needle} in {e}");
    }
}

#[test]
fn calendar_defaults_and_range() {
    let b = basic();
    let d = |s| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
    assert_eq!(b.calendar(Some(d("2025-03-10")), Some(d("2025-03-16"))).len(), 5);
    let next_month = b.calendar(None, None);
    assert_eq!(next_month[0].date, "2025-03-12");
    assert!((20..=23).contains(&next_month.len()));
}

#[test]
fn round_trip_through_the_clients_wire_types() {
    // What the simulator writes, the tradewarden client reads back into the domain model.
    let mut b = basic();
    b.submit(&sell("MSFT", dec!(3))).unwrap();
    let body = serde_json::to_vec(&b.positions()).unwrap();
    let p = crate::collect::broker::wire::parse_positions(&body).unwrap();
    assert_eq!(p[0].qty, dec!(-3));
    let body = serde_json::to_vec(&b.all_orders()).unwrap();
    assert_eq!(crate::collect::broker::wire::parse_orders(&body).unwrap().len(), 1);
    let body = serde_json::to_vec(&b.account()).unwrap();
    assert!(crate::collect::broker::wire::parse_account(&body).unwrap().equity.is_some());
    let body = serde_json::to_vec(&b.clock()).unwrap();
    assert!(crate::collect::broker::wire::parse_clock(&body).unwrap().is_open);
}
