//! The client-side request budget: a token bucket shared by every clone of the client, so
//! tradewarden never spends more than `[broker] max_requests_per_minute` of the account's
//! Alpaca rate limit (200 a minute, shared with the bot it watches).
//!
//! A request takes a token; tokens refill evenly over the minute up to a full minute's worth.
//! When none is left the request waits its turn instead of being sent: a flatten of fifty
//! symbols with its confirmation polling slows down rather than starving the bot's own orders
//! with 429s. Waits are first come, first served (a reservation is taken before sleeping).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

/// `[broker] max_requests_per_minute` by default.
pub const DEFAULT_PER_MINUTE: u32 = crate::config::BrokerConfig::DEFAULT_MAX_REQUESTS_PER_MINUTE;

/// A token bucket; clones share it.
#[derive(Debug, Clone)]
pub struct RequestBudget {
    per_minute: u32,
    inner: Arc<Mutex<Bucket>>,
}

/// One token in the bucket's units: a token refills in 60 s / `per_minute`, so counting in
/// units of 1/(60·10⁹) token makes one nanosecond refill exactly `per_minute` units (integers,
/// no rounding drift).
const UNITS_PER_TOKEN: i128 = 60_000_000_000;

#[derive(Debug)]
struct Bucket {
    /// Units left ([`UNITS_PER_TOKEN`] a token); negative while requests wait for reserved tokens.
    units: i128,
    refilled_at: Instant,
    /// Requests that had to wait, for the metrics.
    waited: u64,
}

impl RequestBudget {
    /// A full bucket of `per_minute` tokens (at least one).
    #[must_use]
    pub fn per_minute(per_minute: u32) -> Self {
        let per_minute = per_minute.max(1);
        Self {
            per_minute,
            inner: Arc::new(Mutex::new(Bucket {
                units: i128::from(per_minute) * UNITS_PER_TOKEN,
                refilled_at: Instant::now(),
                waited: 0,
            })),
        }
    }

    /// The configured rate.
    #[must_use]
    pub fn limit(&self) -> u32 {
        self.per_minute
    }

    /// How many requests had to wait for a token so far.
    #[must_use]
    pub fn waited(&self) -> u64 {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner).waited
    }

    /// Takes a token, waiting until one is due when the bucket is empty.
    pub async fn acquire(&self) {
        let wait = self.reserve(Instant::now());
        if !wait.is_zero() {
            tracing::debug!(wait_ms = wait.as_millis(), limit = self.per_minute, "Request budget spent; waiting.");
            tokio::time::sleep(wait).await;
        }
    }

    /// Refills up to `now`, takes one token (possibly borrowing it) and says how long to wait
    /// before the borrowed token is due.
    fn reserve(&self, now: Instant) -> Duration {
        let rate = i128::from(self.per_minute);
        let capacity = rate * UNITS_PER_TOKEN;
        let mut b = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let elapsed = i128::try_from(now.saturating_duration_since(b.refilled_at).as_nanos()).unwrap_or(i128::MAX);
        b.units = b.units.saturating_add(elapsed.saturating_mul(rate)).min(capacity);
        b.refilled_at = now;
        b.units -= UNITS_PER_TOKEN;
        if b.units >= 0 {
            return Duration::ZERO;
        }
        b.waited += 1;
        // Round up: never send before the token is due.
        let nanos = (-b.units + rate - 1) / rate;
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }
}

impl Default for RequestBudget {
    fn default() -> Self {
        Self::per_minute(DEFAULT_PER_MINUTE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_full_minute_is_spent_at_once_then_requests_are_spaced_evenly() {
        let budget = RequestBudget::per_minute(60);
        let start = Instant::now();
        for _ in 0..60 {
            budget.acquire().await;
        }
        assert_eq!(start.elapsed(), Duration::ZERO, "a full bucket costs no wait");
        assert_eq!(budget.waited(), 0);
        budget.acquire().await;
        assert_eq!(start.elapsed(), Duration::from_secs(1), "the 61st waits one token's refill");
        budget.acquire().await;
        assert_eq!(start.elapsed(), Duration::from_secs(2));
        assert_eq!(budget.waited(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn clones_share_one_bucket_and_waiters_queue_in_order() {
        let a = RequestBudget::per_minute(2);
        let b = a.clone();
        a.acquire().await;
        b.acquire().await;
        let start = Instant::now();
        // Two waiters at once: the first is due after 30 s, the second after 60 s, never both at 30 s.
        let (first, second) = (a.clone(), b.clone());
        let t1 = tokio::spawn(async move {
            first.acquire().await;
            Instant::now()
        });
        tokio::task::yield_now().await;
        let t2 = tokio::spawn(async move {
            second.acquire().await;
            Instant::now()
        });
        let (d1, d2) = (t1.await.unwrap() - start, t2.await.unwrap() - start);
        let mut got = [d1, d2];
        got.sort();
        assert_eq!(got, [Duration::from_secs(30), Duration::from_secs(60)]);
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_bucket_refills_to_one_minute_and_no_more() {
        let budget = RequestBudget::per_minute(10);
        for _ in 0..10 {
            budget.acquire().await;
        }
        tokio::time::advance(Duration::from_secs(3600)).await;
        let start = Instant::now();
        for _ in 0..10 {
            budget.acquire().await;
        }
        assert_eq!(start.elapsed(), Duration::ZERO);
        budget.acquire().await;
        assert_eq!(start.elapsed(), Duration::from_secs(6), "an hour idle banks one minute, not sixty");
    }
}
