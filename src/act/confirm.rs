//! Confirmation: re-poll the broker until the effect is seen or a deadline passes. A read
//! that fails while polling is not a confirmation and not a refutation: polling goes on until
//! the deadline, and the last error is reported.

use std::future::Future;
use std::time::Duration;

use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::model::{Order, Position};

/// How long to wait for an effect, and how often to look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// `[actions] confirm_timeout`: the deadline for each wait.
    pub timeout: Duration,
    /// The first interval between reads; it doubles after each read up to `MAX_POLL`.
    pub poll: Duration,
}

impl Timing {
    /// The default first poll interval: short, so a fast broker confirms fast.
    pub const DEFAULT_POLL: Duration = Duration::from_millis(250);
    /// The longest interval between reads. A constant 250 ms was 240 GETs a minute while a
    /// close was pending, above Alpaca's 200 a minute, which the bot shares: backing off to
    /// 2 s keeps a long wait at 30 a minute.
    pub const MAX_POLL: Duration = Duration::from_secs(2);
}

/// What polling ended with.
#[derive(Debug, Clone, PartialEq)]
pub enum Polled<T> {
    /// The effect was seen; the last read.
    Confirmed(T),
    /// The deadline passed; the last successful read (if any) and the last error (if any).
    TimedOut(Option<T>, Option<String>),
}

impl<T> Polled<T> {
    /// Whether it was confirmed.
    pub fn confirmed(&self) -> bool {
        matches!(self, Self::Confirmed(_))
    }

    /// The last read.
    pub fn last(&self) -> Option<&T> {
        match self {
            Self::Confirmed(t) | Self::TimedOut(Some(t), _) => Some(t),
            Self::TimedOut(None, _) => None,
        }
    }
}

/// Calls `probe` until it says done (`Ok((true, seen))`) or `timing.timeout` passes; always
/// probes at least once.
pub async fn poll<T, F, Fut>(timing: Timing, mut probe: F) -> Polled<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(bool, T), String>>,
{
    let deadline = Instant::now() + timing.timeout;
    let mut interval = timing.poll;
    let mut last = None;
    let mut last_err = None;
    loop {
        match probe().await {
            Ok((true, seen)) => return Polled::Confirmed(seen),
            Ok((false, seen)) => last = Some(seen),
            Err(e) => last_err = Some(e),
        }
        let now = Instant::now();
        if now >= deadline {
            return Polled::TimedOut(last, last_err);
        }
        tokio::time::sleep(interval.min(deadline - now)).await;
        // Back off: a slow confirmation is not a reason to read the broker harder.
        interval = interval.saturating_mul(2).min(Timing::MAX_POLL.max(timing.poll));
    }
}

/// Positions as the journal records them: symbol and signed qty.
#[must_use]
pub fn positions_json(positions: &[Position]) -> Value {
    #[derive(Serialize)]
    struct P<'a> {
        symbol: &'a str,
        qty: Decimal,
        side: &'a str,
    }
    let v: Vec<P<'_>> =
        positions.iter().map(|p| P { symbol: p.symbol.as_str(), qty: p.qty, side: p.side.as_str() }).collect();
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// Open orders as the journal records them.
#[must_use]
pub fn orders_json(orders: &[Order]) -> Value {
    Value::Array(
        orders
            .iter()
            .map(|o| {
                json!({
                    "id": o.id, "symbol": o.symbol.as_str(), "side": o.side.as_str(), "type": o.order_type,
                    "qty": o.qty, "filled_qty": o.filled_qty, "limit_price": o.limit_price, "status": o.status,
                })
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn polls_until_done_or_the_deadline() {
        let t = Timing { timeout: Duration::from_millis(200), poll: Duration::from_millis(10) };
        let mut n = 0;
        let r = poll(t, || {
            n += 1;
            let k = n;
            async move { if k < 3 { Err("down".to_owned()) } else { Ok((k == 4, k)) } }
        })
        .await;
        assert_eq!(r, Polled::Confirmed(4));
        let started = std::time::Instant::now();
        let r: Polled<u32> = poll(t, || async { Ok((false, 7)) }).await;
        assert_eq!(r, Polled::TimedOut(Some(7), None));
        assert!(started.elapsed() >= Duration::from_millis(200));
        let r: Polled<u32> =
            poll(Timing { timeout: Duration::ZERO, ..t }, || async { Err::<(bool, u32), _>("x".to_owned()) }).await;
        assert_eq!(r, Polled::TimedOut(None, Some("x".into())), "probed once even with no time");
    }

    /// Issue 12 follow-up: confirmation polled every 250 ms for as long as the close was
    /// pending, 240 GETs a minute against Alpaca's 200 (shared with the bot). It backs off:
    /// 250 ms doubling to 2 s, so a 60 s wait reads about 33 times, not 241.
    #[tokio::test(start_paused = true)]
    async fn a_pending_confirmation_backs_off_to_two_seconds() {
        let t = Timing { timeout: Duration::from_secs(60), poll: Timing::DEFAULT_POLL };
        let mut at = Vec::new();
        let start = Instant::now();
        let r: Polled<u32> = poll(t, || {
            at.push(Instant::now() - start);
            async { Ok((false, 0)) }
        })
        .await;
        assert!(!r.confirmed());
        let gaps: Vec<u128> = at.windows(2).map(|w| (w[1] - w[0]).as_millis()).collect();
        assert_eq!(gaps[..5], [250, 500, 1000, 2000, 2000], "{gaps:?}");
        assert!(gaps.iter().all(|g| *g <= 2000), "{gaps:?}");
        assert!(at.len() <= 35, "{} reads in a minute", at.len());
    }
}
