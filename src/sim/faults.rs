//! Fault injection and the rate limit, decided per trading-API request.
//!
//! Each request draws exactly one number from a PRNG seeded by `seed`, so the same seed and the
//! same sequence of requests give the same faults. The number is compared against the
//! cumulative rates in a fixed order: error (500 50010000), then timeout (the request is held
//! for [`TIMEOUT_HOLD`] and then answered 504, by which time any client has given up), then
//! malformed (the real response, its body truncated). `latency_ms` delays every request.
//!
//! The rate limit is a fixed window of one minute that starts with the first request after
//! the faults were set: at most `rate_limit_per_min` requests, then 429 42910000 until the
//! window ends. While a limit is set (0 turns it off), every response carries
//! `X-RateLimit-Limit`, `X-RateLimit-Remaining` and `X-RateLimit-Reset` (UNIX seconds).

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How long an injected timeout holds the request before answering.
pub const TIMEOUT_HOLD: Duration = Duration::from_secs(60);

/// The window of the rate limit.
const WINDOW_MS: u64 = 60_000;

/// Fault settings (`POST /_sim/faults`). Absent keys take their defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Added to every request.
    pub latency_ms: u64,
    /// Probability of a 500.
    pub error_rate: f64,
    /// Probability of holding the request past any client timeout.
    pub timeout_rate: f64,
    /// Probability of a truncated JSON body.
    pub malformed_rate: f64,
    /// Requests allowed per minute; 0 disables the limit. Alpaca's is 200.
    pub rate_limit_per_min: u32,
    /// PRNG seed; without one the faults are not reproducible.
    pub seed: Option<u64>,
}

impl Default for Faults {
    fn default() -> Self {
        Self {
            latency_ms: 0,
            error_rate: 0.0,
            timeout_rate: 0.0,
            malformed_rate: 0.0,
            rate_limit_per_min: 200,
            seed: None,
        }
    }
}

impl Faults {
    /// Checks the rates are probabilities.
    ///
    /// # Errors
    /// A sentence naming the bad field.
    pub fn validate(&self) -> Result<(), String> {
        for (name, rate) in [
            ("error_rate", self.error_rate),
            ("timeout_rate", self.timeout_rate),
            ("malformed_rate", self.malformed_rate),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                return Err(format!("`{name}` must be between 0 and 1, got {rate}"));
            }
        }
        if self.error_rate + self.timeout_rate + self.malformed_rate > 1.0 + f64::EPSILON {
            return Err("`error_rate` + `timeout_rate` + `malformed_rate` must not exceed 1".into());
        }
        Ok(())
    }
}

/// What happens to one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Injected {
    /// Nothing: handle it.
    None,
    /// 500 50010000.
    Error,
    /// Hold, then 504.
    Timeout,
    /// Truncated body.
    Malformed,
}

/// The rate-limit headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateInfo {
    /// `X-RateLimit-Limit`.
    pub limit: u32,
    /// `X-RateLimit-Remaining`.
    pub remaining: u32,
    /// `X-RateLimit-Reset`, UNIX seconds.
    pub reset: u64,
}

/// The decision for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Delay before anything else.
    pub latency: Duration,
    /// Headers to send, when a limit is set.
    pub rate: Option<RateInfo>,
    /// Over the limit: 429.
    pub limited: bool,
    /// The injected fault.
    pub fault: Injected,
}

/// The faults in force, the PRNG and the rate-limit window.
#[derive(Debug)]
pub struct FaultState {
    faults: Faults,
    rng: fastrand::Rng,
    window_start_ms: Option<u64>,
    count: u32,
}

impl FaultState {
    /// Starts with `faults` and a fresh window.
    #[must_use]
    pub fn new(faults: Faults) -> Self {
        let rng = faults.seed.map_or_else(fastrand::Rng::new, fastrand::Rng::with_seed);
        Self { faults, rng, window_start_ms: None, count: 0 }
    }

    /// The settings in force.
    #[must_use]
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// Decides the fate of a request arriving at `now_ms` (UNIX milliseconds).
    pub fn decide(&mut self, now_ms: u64) -> Decision {
        let draw = self.rng.f64();
        let f = &self.faults;
        let fault = if draw < f.error_rate {
            Injected::Error
        } else if draw < f.error_rate + f.timeout_rate {
            Injected::Timeout
        } else if draw < f.error_rate + f.timeout_rate + f.malformed_rate {
            Injected::Malformed
        } else {
            Injected::None
        };
        let (rate, limited) = if f.rate_limit_per_min == 0 {
            (None, false)
        } else {
            let start = match self.window_start_ms {
                Some(s) if now_ms < s + WINDOW_MS => s,
                _ => {
                    self.count = 0;
                    self.window_start_ms = Some(now_ms);
                    now_ms
                }
            };
            self.count = self.count.saturating_add(1);
            let limit = f.rate_limit_per_min;
            let info = RateInfo {
                limit,
                remaining: limit.saturating_sub(self.count),
                reset: (start + WINDOW_MS).div_ceil(1000),
            };
            (Some(info), self.count > limit)
        };
        Decision { latency: Duration::from_millis(f.latency_ms), rate, limited, fault }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(f: Faults) -> FaultState {
        f.validate().unwrap();
        FaultState::new(f)
    }

    #[test]
    fn defaults_are_quiet_with_alpacas_limit() {
        let mut s = with(Faults::default());
        let d = s.decide(1_000_000);
        assert_eq!(d.fault, Injected::None);
        assert_eq!(d.latency, Duration::ZERO);
        assert_eq!(d.rate, Some(RateInfo { limit: 200, remaining: 199, reset: 1060 }));
        assert!(!d.limited);
    }

    #[test]
    fn rate_limit_window() {
        let mut s = with(Faults { rate_limit_per_min: 2, ..Faults::default() });
        assert!(!s.decide(0).limited);
        let d = s.decide(10);
        assert!(!d.limited);
        assert_eq!(d.rate.unwrap().remaining, 0);
        let d = s.decide(59_999);
        assert!(d.limited);
        assert_eq!(d.rate.unwrap(), RateInfo { limit: 2, remaining: 0, reset: 60 });
        let d = s.decide(60_000);
        assert!(!d.limited, "a new window");
        assert_eq!(d.rate.unwrap(), RateInfo { limit: 2, remaining: 1, reset: 120 });
    }

    #[test]
    fn zero_disables_the_limit() {
        let mut s = with(Faults { rate_limit_per_min: 0, ..Faults::default() });
        for i in 0..1000 {
            let d = s.decide(i);
            assert!(!d.limited && d.rate.is_none());
        }
    }

    #[test]
    fn same_seed_same_faults() {
        let f = Faults { error_rate: 0.2, timeout_rate: 0.1, malformed_rate: 0.2, seed: Some(7), ..Faults::default() };
        let run = |f: &Faults| {
            let mut s = FaultState::new(f.clone());
            (0..200).map(|i| s.decide(i).fault).collect::<Vec<_>>()
        };
        let a = run(&f);
        assert_eq!(a, run(&f));
        assert_ne!(a, run(&Faults { seed: Some(8), ..f.clone() }));
        let count = |k| a.iter().filter(|x| **x == k).count();
        assert!((20..60).contains(&count(Injected::Error)), "{}", count(Injected::Error));
        assert!((5..40).contains(&count(Injected::Timeout)));
        assert!((20..60).contains(&count(Injected::Malformed)));
    }

    #[test]
    fn certain_faults_and_latency() {
        let mut s = with(Faults { error_rate: 1.0, latency_ms: 25, ..Faults::default() });
        let d = s.decide(0);
        assert_eq!(d.fault, Injected::Error);
        assert_eq!(d.latency, Duration::from_millis(25));
        let mut s = with(Faults { timeout_rate: 1.0, ..Faults::default() });
        assert_eq!(s.decide(0).fault, Injected::Timeout);
    }

    #[test]
    fn validation() {
        assert!(Faults { error_rate: 1.5, ..Faults::default() }.validate().is_err());
        assert!(Faults { error_rate: -0.1, ..Faults::default() }.validate().is_err());
        assert!(Faults { error_rate: 0.6, malformed_rate: 0.6, ..Faults::default() }.validate().is_err());
        let f: Faults = serde_json::from_str(r#"{"rate_limit_per_min": 5, "seed": 1}"#).unwrap();
        assert_eq!((f.rate_limit_per_min, f.seed, f.latency_ms), (5, Some(1), 0));
        assert!(serde_json::from_str::<Faults>(r#"{"rate_limit": 5}"#).is_err());
    }
}
