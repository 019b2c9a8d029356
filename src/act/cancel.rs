//! `cancel_hazard_orders`: cancel exactly the open orders that `open_order_hazard` findings
//! name (`observed.order_ids`), nothing else; then re-poll the open orders until none of them
//! is open, or `confirm_timeout`.

use serde_json::json;

use super::Executed;
use super::broker::ActBroker;
use super::confirm::{Polled, Timing, orders_json, poll};
use super::plan::{Plan, Step};

/// Carries out a cancel plan.
pub(crate) async fn execute(b: &dyn ActBroker, plan: &Plan, timing: Timing) -> Executed {
    let mut log = Vec::new();
    let mut failed = Vec::new();
    let mut wait: Vec<String> = Vec::new();
    for step in &plan.steps {
        let Step::CancelOrder { id, symbol, .. } = step else { continue };
        match b.cancel_order(id).await {
            Ok(()) => {
                log.push(format!("cancel {id} ({symbol}): accepted"));
                wait.push(id.clone());
            }
            // 422 means "not cancelable", which is not "closed" (a pending cancel, an order
            // being replaced): waited for like the rest, so only a re-read says it is gone.
            Err(e) if e.order_already_closed() => {
                log.push(format!("cancel {id} ({symbol}): no longer open ({e}); re-reading"));
                wait.push(id.clone());
            }
            Err(e) if e.outcome_unknown() => {
                log.push(format!("cancel {id} ({symbol}): no clear answer ({e}); not retried, re-reading"));
                wait.push(id.clone());
            }
            Err(e) => failed.push(format!("order {id} ({symbol}) could not be cancelled: {e}")),
        }
    }
    let mut unconfirmed = Vec::new();
    let mut after = serde_json::Value::Null;
    if !wait.is_empty() {
        let polled = poll(timing, || async {
            let open = b.open_orders().await.map_err(|e| e.to_string())?;
            let still = wait.iter().any(|id| open.iter().any(|o| &o.id == id));
            Ok((!still, open))
        })
        .await;
        if let Some(open) = polled.last() {
            after = json!({ "open_orders": orders_json(open) });
        }
        match polled {
            Polled::Confirmed(_) => log.push(format!("confirmed cancelled: {}", wait.join(", "))),
            Polled::TimedOut(last, err) => {
                let still: Vec<String> = match &last {
                    Some(open) => wait.iter().filter(|id| open.iter().any(|o| &o.id == *id)).cloned().collect(),
                    None => wait.clone(),
                };
                let err = err.map(|e| format!(" (last read failed: {e})")).unwrap_or_default();
                unconfirmed.push(format!(
                    "still open after {}: {}{err}",
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
    use std::collections::BTreeSet;
    use std::time::Duration;

    use super::*;
    use crate::act::Status;
    use crate::act::broker::fake::{FakeBroker, order};
    use crate::act::plan::cancel;
    use crate::model::OrderSide;

    fn fast() -> Timing {
        Timing { timeout: Duration::from_millis(100), poll: Duration::from_millis(10) }
    }

    #[tokio::test]
    async fn cancels_exactly_the_flagged_orders() {
        let b = FakeBroker::new(
            &[("CHWY", 10)],
            vec![
                order("flagged", "CHWY", OrderSide::Sell, 50),
                order("innocent", "CHWY", OrderSide::Sell, 5),
                order("other", "AAPL", OrderSide::Buy, 1),
            ],
        );
        let ids: BTreeSet<String> = ["flagged".to_owned()].into();
        let plan = cancel(&b.open_orders().await.unwrap(), &ids);
        let done = execute(&b, &plan, fast()).await;
        assert_eq!(done.status, Status::Done, "{done:?}");
        assert_eq!(b.writes(), ["cancel:flagged"]);
        let open: Vec<String> = b.with(|s| s.orders.iter().filter(|o| o.is_open()).map(|o| o.id.clone()).collect());
        assert_eq!(open, ["innocent", "other"]);
    }

    #[tokio::test]
    async fn a_cancel_that_does_not_take_is_unconfirmed() {
        let b = FakeBroker::new(&[], vec![order("x", "CHWY", OrderSide::Sell, 50)]);
        b.with(|s| s.cancels_stick = true);
        let plan = cancel(&b.open_orders().await.unwrap(), &["x".to_owned()].into());
        let done = execute(&b, &plan, fast()).await;
        assert_eq!(done.status, Status::Unconfirmed);
        assert!(done.detail.contains("still open after 100ms: x"), "{}", done.detail);
    }

    #[tokio::test]
    async fn a_422_not_cancelable_order_still_open_is_unconfirmed_not_done() {
        let b = FakeBroker::new(&[], vec![order("x", "CHWY", OrderSide::Sell, 50)]);
        b.with(|s| s.cancels_422 = true);
        let plan = cancel(&b.open_orders().await.unwrap(), &["x".to_owned()].into());
        let done = execute(&b, &plan, fast()).await;
        assert_eq!(done.status, Status::Unconfirmed, "{done:?}");
        assert!(done.detail.contains("still open after 100ms: x"), "{}", done.detail);
    }
}
