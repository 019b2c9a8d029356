//! `suspend_trading` and `enforce_no_shorting`: broker-side guards. One
//! `PATCH /v2/account/configurations` with only that field, then read the configuration back
//! until it shows the field set (a patch answer alone is not a confirmation).
//!
//! Suspending trading also blocks closes (Alpaca refuses every new order), so in a cycle it
//! runs after any flatten (see `Actor::on_cycle`'s ordering).

use serde_json::json;

use super::Executed;
use super::broker::ActBroker;
use super::confirm::{Polled, Timing, poll};
use super::plan::{Plan, Step};
use crate::collect::broker::alpaca::ConfigurationPatch;

/// Carries out a guard plan.
pub(crate) async fn execute(b: &dyn ActBroker, plan: &Plan, timing: Timing) -> Executed {
    let mut log = Vec::new();
    let mut failed = Vec::new();
    let mut unconfirmed = Vec::new();
    let mut after = serde_json::Value::Null;
    for step in &plan.steps {
        let Step::SetConfiguration { guard } = step else { continue };
        let field = guard.field();
        let patch = match guard {
            super::plan::Guard::SuspendTrade => ConfigurationPatch::suspend_trade(true),
            super::plan::Guard::NoShorting => ConfigurationPatch::no_shorting(true),
        };
        match b.set_configuration(patch).await {
            Ok(c) => {
                let says = guard.value(&c).map_or_else(|| "nothing".to_owned(), |v| format!("{field}={v}"));
                log.push(format!("PATCH {field}=true: accepted (the answer says {says})"));
            }
            Err(e) if e.outcome_unknown() => {
                log.push(format!("PATCH {field}=true: no clear answer ({e}); not retried, reading back"));
            }
            Err(e) => {
                failed.push(format!("PATCH {field}=true refused: {e}"));
                continue;
            }
        }
        let polled = poll(timing, || async {
            let c = b.configuration().await.map_err(|e| e.to_string())?;
            Ok((guard.value(&c) == Some(true), c))
        })
        .await;
        if let Some(c) = polled.last() {
            after = json!({ "configuration": { "no_shorting": c.no_shorting, "suspend_trade": c.suspend_trade } });
        }
        match polled {
            Polled::Confirmed(_) => log.push(format!("confirmed by reading the configuration back: {field}=true")),
            Polled::TimedOut(_, err) => unconfirmed.push(format!(
                "{field} not seen true within {}{}",
                humantime::format_duration(timing.timeout),
                err.map(|e| format!(" (last read failed: {e})")).unwrap_or_default()
            )),
        }
    }
    Executed::from_parts(log, failed, unconfirmed, after)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::act::Status;
    use crate::act::broker::fake::FakeBroker;
    use crate::act::plan::{Guard, configure};

    fn fast() -> Timing {
        Timing { timeout: Duration::from_millis(100), poll: Duration::from_millis(10) }
    }

    #[tokio::test]
    async fn sets_the_guard_and_reads_it_back() {
        let b = FakeBroker::new(&[], vec![]);
        let plan = configure(&b.configuration().await.unwrap(), Guard::NoShorting);
        let done = execute(&b, &plan, fast()).await;
        assert_eq!(done.status, Status::Done, "{done:?}");
        assert_eq!(b.writes(), [r#"patch:{"no_shorting":true}"#]);
        assert!(b.with(|s| s.no_shorting && !s.suspend_trade));
        assert_eq!(b.calls().last().unwrap(), "configuration", "confirmed by a read");
    }

    /// Issue 12 follow-up: a PATCH answered 200 with a body that did not parse was "refused"
    /// and never read back, though the broker had set the guard.
    #[tokio::test]
    async fn a_2xx_patch_whose_body_does_not_parse_is_read_back_not_refused() {
        let b = FakeBroker::new(&[], vec![]);
        b.with(|s| s.patch_answer_malformed = true);
        let plan = configure(&b.configuration().await.unwrap(), Guard::SuspendTrade);
        let done = execute(&b, &plan, fast()).await;
        assert_eq!(done.status, Status::Done, "{done:?}");
        assert!(done.detail.contains("no clear answer"), "{}", done.detail);
        assert_eq!(b.writes().len(), 1, "not repeated");
        assert_eq!(b.calls().last().unwrap(), "configuration", "confirmed by a read");
    }

    #[tokio::test]
    async fn a_patch_that_does_not_take_is_unconfirmed() {
        let b = FakeBroker::new(&[], vec![]);
        b.with(|s| s.patches_ignored = true);
        let plan = configure(&b.configuration().await.unwrap(), Guard::SuspendTrade);
        let done = execute(&b, &plan, fast()).await;
        assert_eq!(done.status, Status::Unconfirmed);
        assert!(done.detail.contains("suspend_trade not seen true within 100ms"), "{}", done.detail);
    }
}
