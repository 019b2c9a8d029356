//! `flatten_shorts` and `flatten_all` (and `tradewarden flatten`): carry out a flatten plan.
//!
//! Per symbol, in plan order: cancel its open orders, wait until the broker shows them no
//! longer open (a symbol whose orders stay open is not closed: a resting sell could fill once
//! the position is flat and open a new short), re-read the position right before the close
//! (`shorts_only`: close only if it is still negative) and the symbol's open orders (any placed
//! since the plan are cancelled and waited for too), then `DELETE /v2/positions/{symbol}`.
//! A write that got no clear answer is never repeated: the confirmation re-read decides.
//! Finally poll the positions and open orders until every closed symbol is gone and no sell
//! but our closing order rests on one, or `confirm_timeout`.
//!
//! Only the positions list (`GET /v2/positions`) says "flat": a per-symbol 404, a close
//! answered 404, a symbol a close-all answer leaves out, or a per-symbol read that disagrees
//! with the list the plan was made from is checked against the list, and reported
//! `unconfirmed` unless the list agrees.

use std::collections::BTreeSet;

use rust_decimal::Decimal;
use serde_json::{Value, json};

use super::Executed;
use super::broker::ActBroker;
use super::confirm::{Polled, Timing, poll, positions_json};
use super::plan::{Plan, Step};
use crate::model::{Order, OrderSide, Position};

/// Cancels each order and records what happened; returns the ids to wait for, or the
/// failure sentence when the broker refused a cancel.
async fn cancel_all(b: &dyn ActBroker, ids: &[(String, String)], log: &mut Vec<String>) -> Result<Vec<String>, String> {
    let mut wait = Vec::new();
    let mut refused = Vec::new();
    for (id, symbol) in ids {
        match b.cancel_order(id).await {
            Ok(()) => {
                log.push(format!("cancel {id} ({symbol}): accepted"));
                wait.push(id.clone());
            }
            // A 422 ("not cancelable") may still be open (a pending cancel): waited for like
            // the rest, so a sell that survives cannot fill after the cover and re-open a short.
            Err(e) if e.order_already_closed() => {
                log.push(format!("cancel {id} ({symbol}): already closed ({e}); re-reading"));
                wait.push(id.clone());
            }
            Err(e) if e.outcome_unknown() => {
                log.push(format!("cancel {id} ({symbol}): no clear answer ({e}); not retried, re-reading"));
                wait.push(id.clone());
            }
            Err(e) => {
                log.push(format!("cancel {id} ({symbol}): refused ({e})"));
                refused.push(format!("order {id} could not be cancelled ({e})"));
            }
        }
    }
    if refused.is_empty() { Ok(wait) } else { Err(refused.join("; ")) }
}

/// Waits until none of `ids` is open.
pub(crate) async fn wait_cancelled(b: &dyn ActBroker, ids: &[String], timing: Timing) -> Polled<Vec<String>> {
    poll(timing, || async {
        let open = b.open_orders().await.map_err(|e| e.to_string())?;
        let still: Vec<String> = ids.iter().filter(|id| open.iter().any(|o| &o.id == *id)).cloned().collect();
        Ok((still.is_empty(), still))
    })
    .await
}

/// Carries out a flatten plan (see the module doc).
pub(crate) async fn execute(b: &dyn ActBroker, plan: &Plan, shorts_only: bool, timing: Timing) -> Executed {
    let mut log: Vec<String> = Vec::new();
    let mut failed: Vec<String> = Vec::new();
    let mut closing = Closing::default();
    let mut cancels: Vec<(String, String)> = Vec::new();
    for step in &plan.steps {
        match step {
            Step::CancelOrder { id, symbol, .. } => cancels.push((id.clone(), symbol.clone())),
            Step::ClosePosition { symbol, .. } => {
                let group = std::mem::take(&mut cancels);
                let wait = match cancel_all(b, &group, &mut log).await {
                    Ok(w) => w,
                    Err(why) => {
                        failed.push(format!("{symbol} not closed: {why}"));
                        continue;
                    }
                };
                if !wait.is_empty() {
                    let polled = wait_cancelled(b, &wait, timing).await;
                    if let Polled::TimedOut(still, err) = polled {
                        let still = still.map_or_else(|| wait.join(", "), |s| s.join(", "));
                        let err = err.map(|e| format!(" (last read: {e})")).unwrap_or_default();
                        failed.push(format!(
                            "{symbol} not closed: its open orders {still} were not seen cancelled within {}{err}",
                            humantime::format_duration(timing.timeout)
                        ));
                        continue;
                    }
                }
                close_one(b, symbol, shorts_only, &mut log, &mut failed, &mut closing, timing).await;
            }
            Step::CloseAll { positions, .. } => match b.close_all_positions().await {
                Ok(results) => {
                    // A planned symbol the answer leaves out (an empty or partial 207) is not
                    // taken as closed: it is confirmed by re-reading like the rest.
                    let answered: BTreeSet<String> = results.iter().map(|r| r.symbol.clone()).collect();
                    for (s, _) in positions.iter().filter(|(s, _)| !answered.contains(s)) {
                        log.push(format!("{s}: not in the broker's answer; re-reading"));
                        closing.flat.insert(s.clone());
                    }
                    for r in results {
                        match (&r.order, &r.error) {
                            (Some(o), _) => {
                                log.push(format!(
                                    "{}: closing order {} ({} {}, {})",
                                    r.symbol,
                                    o.id,
                                    o.side,
                                    o.qty.map(|q| q.to_string()).unwrap_or_default(),
                                    o.status
                                ));
                                closing.ours.insert(o.id.clone());
                                closing.flat.insert(r.symbol);
                            }
                            // A per-position status that is not a 4xx (a 5xx, or none at
                            // all) does not say the broker refused: re-read, like a write
                            // with no clear answer.
                            (None, err) if !(400..500).contains(&r.status) => {
                                log.push(format!(
                                    "{}: no clear answer (HTTP {}: {}); not retried, re-reading",
                                    r.symbol,
                                    r.status,
                                    err.clone().unwrap_or_default()
                                ));
                                closing.flat.insert(r.symbol);
                            }
                            (None, err) => failed.push(format!(
                                "{}: not closed (HTTP {}: {})",
                                r.symbol,
                                r.status,
                                err.clone().unwrap_or_default()
                            )),
                        }
                    }
                }
                Err(e) if e.outcome_unknown() => {
                    log.push(format!("close all: no clear answer ({e}); not retried, re-reading"));
                    closing.flat.extend(positions.iter().map(|(s, _)| s.clone()));
                }
                Err(e) => failed.push(format!("close all refused: {e}")),
            },
            _ => {}
        }
    }
    confirm(b, &closing, log, failed, timing).await
}

/// What the confirmation must see in the positions list.
#[derive(Debug, Default)]
struct Closing {
    /// Symbols that must be gone from the list.
    flat: BTreeSet<String>,
    /// Symbols a per-symbol read said are no longer short: the list must not show them short.
    not_short: BTreeSet<String>,
    /// The closing orders the broker placed for us: the only sells allowed to stay open on a
    /// `flat` symbol while it closes.
    ours: BTreeSet<String>,
}

impl Closing {
    fn is_empty(&self) -> bool {
        self.flat.is_empty() && self.not_short.is_empty()
    }

    /// Whether the list still shows `p` as something this action must see gone.
    fn still_open(&self, p: &Position) -> bool {
        let s = p.symbol.as_str();
        self.flat.contains(s) || (self.not_short.contains(s) && p.qty < Decimal::ZERO)
    }

    fn names(&self) -> Vec<String> {
        self.flat.union(&self.not_short).cloned().collect()
    }

    /// Open sells (not our closing orders) on a symbol this action closes: one of them could
    /// fill once the symbol is flat and open a short, so the symbol is not called flat.
    fn resting_sells<'o>(&self, open: &'o [Order]) -> Vec<&'o Order> {
        open.iter()
            .filter(|o| {
                o.side == OrderSide::Sell && self.flat.contains(o.symbol.as_str()) && !self.ours.contains(&o.id)
            })
            .collect()
    }
}

async fn close_one(
    b: &dyn ActBroker,
    symbol: &str,
    shorts_only: bool,
    log: &mut Vec<String>,
    failed: &mut Vec<String>,
    closing: &mut Closing,
    timing: Timing,
) {
    match b.position(symbol).await {
        Err(e) => failed.push(format!("{symbol} not closed: the position could not be re-read ({e})")),
        // The list the plan was made from showed this position: a per-symbol 404 disagrees
        // with it, so "flat" is only taken from the list (else the action is unconfirmed).
        Ok(None) => {
            log.push(format!(
                "{symbol}: GET /v2/positions/{symbol} answered no position, but the positions list showed one; \
                 nothing sent, confirming against the list"
            ));
            closing.flat.insert(symbol.to_owned());
        }
        Ok(Some(p)) if shorts_only && p.qty >= Decimal::ZERO => {
            log.push(format!(
                "{symbol}: no longer short ({}), not touched; confirming against the positions list",
                p.qty
            ));
            closing.not_short.insert(symbol.to_owned());
        }
        Ok(Some(p)) => {
            // The cancel list was made at plan time: an order placed since (a bot's new sell)
            // would rest through the close and could fill once the symbol is flat, opening a
            // short. Re-read the symbol's open orders right before the close and cancel-and-wait
            // any that remain; a symbol whose orders cannot be read or cleared is not closed.
            if let Err(why) = clear_new_orders(b, symbol, log, timing).await {
                failed.push(format!("{symbol} not closed: {why}"));
                return;
            }
            close_position(b, symbol, p.qty, log, failed, closing).await;
        }
    }
}

/// Cancels every order still open on `symbol` (the ones placed after the plan) and waits
/// until the broker shows none of them open.
async fn clear_new_orders(
    b: &dyn ActBroker,
    symbol: &str,
    log: &mut Vec<String>,
    timing: Timing,
) -> Result<(), String> {
    let open = b.open_orders().await.map_err(|e| format!("its open orders could not be re-read ({e})"))?;
    let new: Vec<(String, String)> =
        open.iter().filter(|o| o.symbol.as_str() == symbol).map(|o| (o.id.clone(), symbol.to_owned())).collect();
    if new.is_empty() {
        return Ok(());
    }
    log.push(format!(
        "{symbol}: open orders placed after the plan ({}); cancelling before the close",
        new.iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>().join(", ")
    ));
    let wait = cancel_all(b, &new, log).await?;
    if let Polled::TimedOut(still, err) = wait_cancelled(b, &wait, timing).await {
        let still = still.map_or_else(|| wait.join(", "), |s| s.join(", "));
        let err = err.map(|e| format!(" (last read: {e})")).unwrap_or_default();
        return Err(format!(
            "its open orders {still} were not seen cancelled within {}{err}",
            humantime::format_duration(timing.timeout)
        ));
    }
    Ok(())
}

async fn close_position(
    b: &dyn ActBroker,
    symbol: &str,
    qty: Decimal,
    log: &mut Vec<String>,
    failed: &mut Vec<String>,
    closing: &mut Closing,
) {
    match b.close_position(symbol).await {
        Ok(o) => {
            log.push(format!(
                "{symbol} ({}): closing order {} ({} {}, {})",
                qty,
                o.id,
                o.side,
                o.qty.map(|q| q.to_string()).unwrap_or_default(),
                o.status
            ));
            closing.ours.insert(o.id);
            closing.flat.insert(symbol.to_owned());
        }
        // A 404 right after a re-read that showed the position: confirmed by re-reading,
        // not taken on the broker's word.
        Err(e) if e.is_not_found() => {
            log.push(format!("{symbol}: the close answered no position ({e}); confirming against the list"));
            closing.flat.insert(symbol.to_owned());
        }
        Err(e) if e.outcome_unknown() => {
            log.push(format!("{symbol}: close got no clear answer ({e}); not retried, re-reading"));
            closing.flat.insert(symbol.to_owned());
        }
        Err(e) => failed.push(format!("{symbol} not closed: {e}")),
    }
}

async fn confirm(
    b: &dyn ActBroker,
    closing: &Closing,
    mut log: Vec<String>,
    failed: Vec<String>,
    timing: Timing,
) -> Executed {
    let mut after = Value::Null;
    let mut unconfirmed = Vec::new();
    if !closing.is_empty() {
        // Flat means both: the list no longer shows the position, and no sell rests on it.
        let polled = poll(timing, || async {
            let ps = b.positions().await.map_err(|e| e.to_string())?;
            let open = if closing.flat.is_empty() {
                Vec::new()
            } else {
                b.open_orders().await.map_err(|e| format!("open orders: {e}"))?
            };
            let done = !ps.iter().any(|p| closing.still_open(p)) && closing.resting_sells(&open).is_empty();
            Ok((done, (ps, open)))
        })
        .await;
        if let Some((ps, _)) = polled.last() {
            after = json!({ "positions": positions_json(ps) });
        }
        match &polled {
            Polled::Confirmed(_) => {
                log.push(format!("confirmed flat: {}", closing.names().join(", ")));
            }
            Polled::TimedOut(last, err) => {
                let still: Vec<String> = match last {
                    Some((ps, open)) => ps
                        .iter()
                        .filter(|p| closing.still_open(p))
                        .map(|p: &Position| format!("{} {}", p.symbol, p.qty))
                        .chain(closing.resting_sells(open).into_iter().map(|o| {
                            format!(
                                "{} has open sell order {} ({}) that could open a short",
                                o.symbol,
                                o.id,
                                o.qty.map(|q| q.to_string()).unwrap_or_else(|| "notional".into())
                            )
                        }))
                        .collect(),
                    None => closing.names(),
                };
                let err = err.as_ref().map(|e| format!(" (last read failed: {e})")).unwrap_or_default();
                unconfirmed.push(format!(
                    "not seen flat within {}: {}{err}",
                    humantime::format_duration(timing.timeout),
                    still.join(", ")
                ));
            }
        }
    }
    Executed::from_parts(log, failed, unconfirmed, after)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use rust_decimal::dec;

    use super::*;
    use crate::act::Status;
    use crate::act::broker::fake::{CloseMode, FakeBroker, order};
    use crate::act::plan::{Scope, flatten};
    use crate::model::OrderSide;

    fn fast() -> Timing {
        Timing { timeout: Duration::from_millis(150), poll: Duration::from_millis(10) }
    }

    fn phantom() -> FakeBroker {
        FakeBroker::new(
            &[("AAPL", 10), ("CHWY", -1596), ("BILL", -413)],
            vec![order("o-chwy", "CHWY", OrderSide::Sell, 1596), order("o-aapl", "AAPL", OrderSide::Sell, 5)],
        )
    }

    async fn plan_of(b: &FakeBroker, scope: &Scope, shorts_only: bool) -> Plan {
        let p = b.positions().await.unwrap();
        let o = b.open_orders().await.unwrap();
        flatten(&p, &o, scope, shorts_only)
    }

    #[tokio::test]
    async fn flattens_shorts_cancelling_first_and_leaves_longs_alone() {
        let b = phantom();
        let plan = plan_of(&b, &Scope::All, true).await;
        let done = execute(&b, &plan, true, fast()).await;
        assert_eq!(done.status, Status::Done, "{done:?}");
        assert_eq!(b.writes(), ["close:BILL", "cancel:o-chwy", "close:CHWY"]);
        assert_eq!((b.qty("CHWY"), b.qty("BILL"), b.qty("AAPL")), (dec!(0), dec!(0), dec!(10)));
        assert!(b.with(|s| s.placed.iter().all(|p| p.side == "buy")), "only covers");
        assert!(b.with(|s| s.orders.iter().any(|o| o.id == "o-aapl" && o.is_open())), "the long's order untouched");
        assert!(done.detail.contains("confirmed flat: BILL, CHWY"), "{}", done.detail);
    }

    #[tokio::test]
    async fn a_symbol_that_is_no_longer_short_at_close_time_is_not_touched() {
        let b = phantom();
        let plan = plan_of(&b, &Scope::All, true).await;
        // Between the plan and the close, BILL was covered by someone else and went long.
        b.with(|s| s.positions.insert("BILL".into(), dec!(3)));
        let done = execute(&b, &plan, true, fast()).await;
        assert_eq!(done.status, Status::Done);
        assert!(!b.writes().contains(&"close:BILL".to_owned()), "{:?}", b.writes());
        assert_eq!(b.qty("BILL"), dec!(3));
        assert!(done.steps.iter().any(|s| s.contains("BILL: no longer short (3), not touched")), "{:?}", done.steps);
    }

    /// Issue 12 §3a: the per-symbol re-read answered 404 while the positions list showed the
    /// short; it was journaled `done: already flat` and emailed as done, and the short stayed.
    #[tokio::test]
    async fn a_per_symbol_404_while_the_list_shows_the_short_is_unconfirmed() {
        let b = phantom();
        let plan = plan_of(&b, &Scope::Symbols(["BILL".to_owned()].into()), true).await;
        b.with(|s| s.position_404.insert("BILL".into()));
        let done = execute(&b, &plan, true, fast()).await;
        assert_eq!(done.status, Status::Unconfirmed, "{done:?}");
        assert!(done.detail.contains("not seen flat within 150ms: BILL -413"), "{}", done.detail);
        assert!(b.writes().is_empty(), "nothing sent on a disagreement: {:?}", b.writes());
        assert_eq!(b.calls().last().map(String::as_str), Some("orders"), "{:?}", b.calls());
        assert!(b.calls().iter().rev().nth(1).is_some_and(|c| c == "positions"), "the list decides: {:?}", b.calls());
        assert_eq!(done.after["positions"].as_array().map(Vec::len), Some(3), "{}", done.after);

        // When the list agrees, the 404 was right: done.
        let b = phantom();
        let plan = plan_of(&b, &Scope::Symbols(["BILL".to_owned()].into()), true).await;
        b.with(|s| {
            s.position_404.insert("BILL".into());
            s.positions.remove("BILL");
        });
        let done = execute(&b, &plan, true, fast()).await;
        assert_eq!(done.status, Status::Done, "{done:?}");
        assert!(done.detail.contains("confirmed flat: BILL"), "{}", done.detail);
    }

    #[tokio::test]
    async fn a_per_symbol_read_saying_long_while_the_list_shows_the_short_is_unconfirmed() {
        let b = phantom();
        let plan = plan_of(&b, &Scope::Symbols(["BILL".to_owned()].into()), true).await;
        b.with(|s| s.position_says.insert("BILL".into(), dec!(3)));
        let done = execute(&b, &plan, true, fast()).await;
        assert_eq!(done.status, Status::Unconfirmed, "{done:?}");
        assert!(done.detail.contains("BILL -413"), "{}", done.detail);
        assert!(b.writes().is_empty(), "{:?}", b.writes());
    }

    /// Issue 12 follow-up: a sell the bot placed after the plan (OKTA, 50 @200) was never
    /// looked for: the close went out, "confirmed flat" was reported, and the resting sell
    /// later filled into a new short of -50.
    #[tokio::test]
    async fn a_sell_placed_after_the_plan_is_cancelled_before_the_symbol_is_called_flat() {
        // Placed between the plan and the close: cancelled and waited for, then closed.
        let b = FakeBroker::new(&[("OKTA", -170)], vec![]);
        let plan = plan_of(&b, &Scope::All, true).await;
        b.with(|s| s.place_on_call = Some(("position:OKTA".into(), order("late", "OKTA", OrderSide::Sell, 50))));
        let done = execute(&b, &plan, true, fast()).await;
        assert_eq!(done.status, Status::Done, "{done:?}");
        assert_eq!(b.writes(), ["cancel:late", "close:OKTA"], "the new sell is cancelled before the close");
        assert!(b.with(|s| s.orders.iter().all(|o| !o.is_open())), "no sell left resting");
        assert!(done.detail.contains("placed after the plan (late)"), "{}", done.detail);

        // One that will not cancel: the symbol is not closed.
        let b = FakeBroker::new(&[("OKTA", -170)], vec![]);
        let plan = plan_of(&b, &Scope::All, true).await;
        b.with(|s| {
            s.cancels_stick = true;
            s.place_on_call = Some(("position:OKTA".into(), order("late", "OKTA", OrderSide::Sell, 50)));
        });
        let done = execute(&b, &plan, true, fast()).await;
        assert_eq!(done.status, Status::Failed, "{done:?}");
        assert_eq!(b.writes(), ["cancel:late"], "no close while the new sell rests");

        // Placed after the close went out (too late to cancel first): the position is gone, but
        // a resting sell on it could open a short, so the symbol is not called flat.
        for (shorts_only, trigger) in [(true, "close:OKTA"), (false, "close_all")] {
            let b = FakeBroker::new(&[("OKTA", -170)], vec![]);
            let plan = plan_of(&b, &Scope::All, shorts_only).await;
            b.with(|s| s.place_on_call = Some((trigger.into(), order("later", "OKTA", OrderSide::Sell, 50))));
            let done = execute(&b, &plan, shorts_only, fast()).await;
            assert_eq!(done.status, Status::Unconfirmed, "{trigger}: {done:?}");
            assert!(
                done.detail.contains("OKTA has open sell order later (50) that could open a short"),
                "{trigger}: {}",
                done.detail
            );
            assert!(!done.detail.contains("confirmed flat"), "{}", done.detail);
        }
    }

    #[tokio::test]
    async fn orders_that_stay_open_block_the_close() {
        let b = phantom();
        b.with(|s| s.cancels_stick = true);
        let plan = plan_of(&b, &Scope::Symbols(["CHWY".to_owned()].into()), true).await;
        let done = execute(&b, &plan, true, fast()).await;
        assert_eq!(done.status, Status::Failed);
        assert_eq!(b.writes(), ["cancel:o-chwy"], "no close while its sell rests");
        assert!(done.detail.contains("CHWY not closed"), "{}", done.detail);
    }

    #[tokio::test]
    async fn a_resting_sell_answered_422_on_cancel_still_blocks_the_close() {
        let b = phantom();
        b.with(|s| s.cancels_422 = true);
        let plan = plan_of(&b, &Scope::Symbols(["CHWY".to_owned()].into()), true).await;
        let done = execute(&b, &plan, true, fast()).await;
        assert_eq!(done.status, Status::Failed, "{done:?}");
        assert_eq!(b.writes(), ["cancel:o-chwy"], "no close while its sell rests");
        assert!(done.detail.contains("CHWY not closed"), "{}", done.detail);
    }

    #[tokio::test]
    async fn an_unknown_close_outcome_is_confirmed_by_re_reading_never_repeated() {
        let b = FakeBroker::new(&[("OKTA", -170)], vec![]);
        b.with(|s| s.close_mode = CloseMode::FillButTimeout);
        let plan = plan_of(&b, &Scope::All, true).await;
        let done = execute(&b, &plan, true, fast()).await;
        assert_eq!(done.status, Status::Done, "the re-read shows it flat: {done:?}");
        assert_eq!(b.writes(), ["close:OKTA"], "exactly one close");
    }

    /// Issue 12 follow-up: a close (or close-all) answered 2xx with a body that did not parse
    /// was reported "not closed" / "refused" with no re-read, though the broker had acted.
    #[tokio::test]
    async fn a_2xx_close_whose_body_does_not_parse_is_confirmed_by_re_reading_not_refused() {
        for shorts_only in [true, false] {
            let b = FakeBroker::new(&[("OKTA", -170)], vec![]);
            b.with(|s| s.close_mode = CloseMode::FillButMalformed);
            let plan = plan_of(&b, &Scope::All, shorts_only).await;
            let done = execute(&b, &plan, shorts_only, fast()).await;
            assert_eq!(done.status, Status::Done, "shorts_only {shorts_only}: {done:?}");
            assert!(
                done.detail.contains("no clear answer") && done.detail.contains("confirmed flat: OKTA"),
                "{}",
                done.detail
            );
            assert_eq!(b.writes().len(), 1, "exactly one close: {:?}", b.writes());
        }
    }

    #[tokio::test]
    async fn a_close_all_element_without_a_4xx_status_is_re_read_not_refused() {
        let b = FakeBroker::new(&[("OKTA", -170), ("AAPL", 10)], vec![]);
        b.with(|s| s.close_mode = CloseMode::FillButNoStatus);
        let plan = plan_of(&b, &Scope::All, false).await;
        let done = execute(&b, &plan, false, fast()).await;
        assert_eq!(done.status, Status::Done, "{done:?}");
        assert!(done.detail.contains("OKTA: no clear answer (HTTP 0"), "{}", done.detail);
        assert!(done.detail.contains("confirmed flat: AAPL, OKTA"), "{}", done.detail);
    }

    #[tokio::test]
    async fn a_close_that_never_fills_is_unconfirmed_and_a_rejected_one_failed() {
        let b = FakeBroker::new(&[("OKTA", -170)], vec![]);
        b.with(|s| s.close_mode = CloseMode::NeverFill);
        let plan = plan_of(&b, &Scope::All, true).await;
        let done = execute(&b, &plan, true, fast()).await;
        assert_eq!(done.status, Status::Unconfirmed);
        assert!(done.detail.contains("not seen flat within 150ms: OKTA -170"), "{}", done.detail);
        assert_eq!(b.writes(), ["close:OKTA"]);

        let b = FakeBroker::new(&[("OKTA", -170)], vec![]);
        b.with(|s| s.close_mode = CloseMode::Reject);
        let done = execute(&b, &plan, true, fast()).await;
        assert_eq!(done.status, Status::Failed);
        assert!(done.detail.contains("insufficient qty"), "{}", done.detail);
    }

    #[tokio::test]
    async fn a_close_the_broker_answers_with_nothing_is_confirmed_by_re_reading_not_trusted() {
        // 404 on a position the re-read just showed; an empty close-all answer.
        for (shorts_only, scope) in [(true, Scope::Symbols(["OKTA".to_owned()].into())), (false, Scope::All)] {
            let b = FakeBroker::new(&[("OKTA", -170)], vec![]);
            b.with(|s| s.close_mode = CloseMode::AnswerNothing);
            let plan = plan_of(&b, &scope, shorts_only).await;
            let done = execute(&b, &plan, shorts_only, fast()).await;
            assert_eq!(done.status, Status::Unconfirmed, "shorts_only {shorts_only}: {done:?}");
            assert!(done.detail.contains("OKTA -170"), "{}", done.detail);
        }
    }

    #[tokio::test]
    async fn flatten_all_is_one_close_all_request() {
        let b = phantom();
        let plan = plan_of(&b, &Scope::All, false).await;
        let done = execute(&b, &plan, false, fast()).await;
        assert_eq!(done.status, Status::Done);
        assert_eq!(b.writes(), ["close_all"]);
        assert!(b.with(|s| s.positions.is_empty() && s.orders.iter().all(|o| !o.is_open())));
    }
}
