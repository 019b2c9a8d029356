//! When to retry a read, and how long to wait: pure functions, so they are tested without a
//! server or a clock.
//!
//! Reads (GETs) are retried on no response, timeouts and 5xx, with capped exponential backoff
//! and jitter. A 429 waits until `X-RateLimit-Reset` when that is soon enough, else gives up.
//! Writes are never retried: their outcome is unknown after a failure, and the caller must
//! re-read the broker instead.

use std::time::Duration;

/// How reads are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (1 = never retry).
    pub max_attempts: u32,
    /// The first backoff; it doubles after each failure.
    pub base_delay: Duration,
    /// The largest backoff.
    pub max_delay: Duration,
    /// The longest wait for a rate-limit reset; a later reset gives up at once.
    pub max_rate_limit_wait: Duration,
}

impl Default for RetryPolicy {
    /// 3 attempts, 200 ms doubling up to 2 s, and up to 10 s for a rate-limit reset.
    fn default() -> Self {
        Self {
            max_attempts: 3,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(2),
            max_rate_limit_wait: Duration::from_secs(10),
        }
    }
}

/// Extra time after a rate-limit reset, so the retry does not land in the old window
/// (`X-RateLimit-Reset` has a resolution of one second).
const RESET_MARGIN: Duration = Duration::from_millis(100);

impl RetryPolicy {
    /// No retries at all.
    #[must_use]
    pub fn none() -> Self {
        Self { max_attempts: 1, ..Self::default() }
    }

    /// The backoff before attempt `failed + 1`, after `failed` (≥ 1) failures: the capped
    /// exponential delay `d = min(max_delay, base_delay × 2^(failed-1))`, jittered into
    /// `[d/2, d]` by `unit` (a random number in `[0, 1)`), so concurrent clients spread out.
    #[must_use]
    pub fn backoff(&self, failed: u32, unit: f64) -> Duration {
        let exp = failed.saturating_sub(1).min(30);
        let d = self.base_delay.saturating_mul(1 << exp).min(self.max_delay);
        let half = d / 2;
        half + half.mul_f64(unit.clamp(0.0, 1.0))
    }

    /// How long to wait after a 429, given the time until the limit resets (from
    /// `X-RateLimit-Reset`, see [`parse_reset`]). `GiveUp` when the reset is further away than
    /// `max_rate_limit_wait`. Without a usable header the normal backoff applies.
    #[must_use]
    pub fn rate_limit_wait(&self, reset_in: Option<Duration>, failed: u32, unit: f64) -> RateLimitWait {
        match reset_in {
            None => RateLimitWait::Wait(self.backoff(failed, unit)),
            Some(until) if until > self.max_rate_limit_wait => RateLimitWait::GiveUp(until),
            Some(until) => RateLimitWait::Wait(until + RESET_MARGIN.mul_f64(1.0 + unit.clamp(0.0, 1.0))),
        }
    }
}

/// The time until the rate limit resets, from `X-RateLimit-Reset` (UNIX seconds; a small
/// number is taken as seconds from now, which some proxies send) and the current UNIX time in
/// milliseconds. A reset in the past gives zero; a missing or unreadable header gives `None`.
#[must_use]
pub fn parse_reset(header: Option<&str>, now_ms: u64) -> Option<Duration> {
    let reset = header?.trim().parse::<u64>().ok()?;
    // Anything below 2001-09-09 is taken as seconds from now rather than an epoch.
    let reset_ms = if reset < 1_000_000_000 { now_ms + reset * 1000 } else { reset.saturating_mul(1000) };
    Some(Duration::from_millis(reset_ms.saturating_sub(now_ms)))
}

/// The decision after a 429.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateLimitWait {
    /// Sleep this long, then retry.
    Wait(Duration),
    /// The limit resets in this long, beyond the cap: report rate limited.
    GiveUp(Duration),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let p = RetryPolicy::default();
        assert_eq!(p.backoff(1, 0.0), Duration::from_millis(100));
        assert_eq!(p.backoff(1, 1.0), Duration::from_millis(200));
        assert_eq!(p.backoff(2, 1.0), Duration::from_millis(400));
        assert_eq!(p.backoff(3, 0.5), Duration::from_millis(600));
        assert_eq!(p.backoff(10, 1.0), Duration::from_secs(2));
        assert_eq!(p.backoff(1000, 1.0), Duration::from_secs(2));
        for failed in 1..20 {
            for unit in [0.0, 0.3, 0.999] {
                let d = p.backoff(failed, unit);
                assert!(d <= p.max_delay && d >= Duration::from_millis(100), "{failed} {unit} {d:?}");
            }
        }
    }

    #[test]
    fn rate_limit_waits_for_a_near_reset_and_gives_up_on_a_far_one() {
        let p = RetryPolicy::default();
        let now_ms = 1_800_000_000_500;
        let soon = parse_reset(Some("1800000003"), now_ms);
        assert_eq!(soon, Some(Duration::from_millis(2500)));
        assert_eq!(p.rate_limit_wait(soon, 1, 0.0), RateLimitWait::Wait(Duration::from_millis(2600)));
        let far = parse_reset(Some(" 1800000060 "), now_ms);
        assert_eq!(p.rate_limit_wait(far, 1, 0.0), RateLimitWait::GiveUp(Duration::from_millis(59_500)));
        // A reset already past: retry almost at once.
        let past = parse_reset(Some("1700000000"), now_ms);
        assert_eq!(p.rate_limit_wait(past, 1, 0.0), RateLimitWait::Wait(RESET_MARGIN));
        // Seconds from now.
        assert_eq!(parse_reset(Some("2"), now_ms), Some(Duration::from_secs(2)));
        // No usable header: the normal backoff.
        assert_eq!(parse_reset(Some("soon"), now_ms), None);
        assert_eq!(p.rate_limit_wait(None, 2, 1.0), RateLimitWait::Wait(Duration::from_millis(400)));
    }
}
