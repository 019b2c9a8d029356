//! [`Sim`]: the simulator's whole state behind one lock (the account, the accepted key pair, the
//! faults, the request counts). The HTTP layer and in-process callers (the demo, tests) use the
//! same methods; the admin endpoints are thin wrappers around them.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use rust_decimal::Decimal;
use serde_json::json;

use super::broker::SimBroker;
use super::faults::{Decision, FaultState, Faults};
use super::scenario::{AuthSeed, Scenario};
use crate::clock::{Clock, SystemClock};
use crate::collect::broker::wire::{AlpacaClock, AlpacaOrder};

/// The simulator's state.
pub struct Sim {
    clock: Arc<dyn Clock>,
    inner: Mutex<Inner>,
}

struct Inner {
    broker: SimBroker,
    auth: Option<AuthSeed>,
    faults: FaultState,
    /// `"METHOD /v2/template"` → count.
    requests: BTreeMap<String, u64>,
    /// Faults applied so far, by kind (`error`, `timeout`, `malformed`, `rate_limited`,
    /// `delayed`): what a soak test reports as "faults injected".
    injected: BTreeMap<&'static str, u64>,
}

impl std::fmt::Debug for Sim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sim").finish_non_exhaustive()
    }
}

fn build(scenario: &Scenario, clock: &Arc<dyn Clock>) -> Result<Inner, String> {
    let broker = SimBroker::from_scenario(scenario, Arc::clone(clock));
    let faults = scenario.faults.clone().unwrap_or_default();
    let fault_check = faults.validate().map_err(|e| format!("faults: {e}"));
    match (broker, fault_check) {
        (Ok(broker), Ok(())) => Ok(Inner {
            broker,
            auth: scenario.auth.clone(),
            faults: FaultState::new(faults),
            requests: BTreeMap::new(),
            injected: BTreeMap::new(),
        }),
        (Err(a), Err(b)) => Err(format!("{a}\n{b}")),
        (Err(e), _) | (_, Err(e)) => Err(e),
    }
}

impl Sim {
    /// A simulator seeded by `scenario`, on the system clock.
    ///
    /// # Errors
    /// Every problem in the scenario, one per line.
    pub fn new(scenario: &Scenario) -> Result<Self, String> {
        Self::with_clock(scenario, Arc::new(SystemClock))
    }

    /// The same, on the given clock.
    ///
    /// # Errors
    /// Every problem in the scenario, one per line.
    pub fn with_clock(scenario: &Scenario, clock: Arc<dyn Clock>) -> Result<Self, String> {
        let inner = build(scenario, &clock)?;
        Ok(Self { clock, inner: Mutex::new(inner) })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Replaces the whole state (`POST /_sim/scenario`): account, auth, faults; request
    /// and fault counts start again from zero.
    ///
    /// # Errors
    /// Every problem in the scenario; then nothing changes.
    pub fn load(&self, scenario: &Scenario) -> Result<(), String> {
        let inner = build(scenario, &self.clock)?;
        *self.lock() = inner;
        Ok(())
    }

    /// Runs `f` on the account under the lock.
    pub fn with_broker<R>(&self, f: impl FnOnce(&mut SimBroker) -> R) -> R {
        f(&mut self.lock().broker)
    }

    /// Sets prices and fills the resting orders they reach (`POST /_sim/prices`).
    ///
    /// # Errors
    /// A sentence when a symbol or price is invalid; then nothing changes.
    pub fn set_prices(&self, prices: &BTreeMap<String, Decimal>) -> Result<Vec<AlpacaOrder>, String> {
        self.with_broker(|b| b.set_prices(prices))
    }

    /// Opens or closes the market (`POST /_sim/clock`).
    pub fn set_market_open(&self, open: bool) -> AlpacaClock {
        self.with_broker(|b| b.set_market_open(open))
    }

    /// Replaces the fault settings (`POST /_sim/faults`); the rate-limit window starts again.
    ///
    /// # Errors
    /// A sentence when a rate is not a probability.
    pub fn set_faults(&self, faults: Faults) -> Result<Faults, String> {
        faults.validate()?;
        self.lock().faults = FaultState::new(faults.clone());
        Ok(faults)
    }

    /// The fault settings in force.
    #[must_use]
    pub fn faults(&self) -> Faults {
        self.lock().faults.faults().clone()
    }

    /// Requests received per `"METHOD /v2/path-template"`.
    #[must_use]
    pub fn requests(&self) -> BTreeMap<String, u64> {
        self.lock().requests.clone()
    }

    /// `GET /_sim/state`: positions, every order (any status, in submission order), request
    /// counts, plus the account, configurations, clock, prices, the faults in force and the
    /// faults applied so far by kind (`injected`).
    #[must_use]
    pub fn state(&self) -> serde_json::Value {
        let inner = self.lock();
        let b = &inner.broker;
        json!({
            "positions": b.positions(),
            "orders": b.all_orders(),
            "requests": inner.requests,
            "account": b.account(),
            "configurations": b.configuration(),
            "clock": b.clock(),
            "prices": b.prices().iter().map(|(s, p)| (s.clone(), p.to_string())).collect::<BTreeMap<_, _>>(),
            "faults": inner.faults.faults(),
            "injected": inner.injected,
        })
    }

    /// Counts a trading-API request and decides its faults.
    pub(crate) fn on_request(&self, key: &str, now_ms: u64) -> Decision {
        let mut inner = self.lock();
        *inner.requests.entry(key.to_owned()).or_insert(0) += 1;
        inner.faults.decide(now_ms)
    }

    /// Counts a fault as applied to a request: `error`, `timeout`, `malformed`,
    /// `rate_limited` (a 429) or `delayed` (`latency_ms`).
    pub(crate) fn count_injected(&self, kind: &'static str) {
        *self.lock().injected.entry(kind).or_insert(0) += 1;
    }

    /// Whether the key pair may use the trading API: with a scenario `auth`, exactly that
    /// pair; without, any non-empty pair, or any non-empty OAuth bearer token.
    pub(crate) fn authorized(&self, key_id: Option<&str>, secret: Option<&str>, bearer: Option<&str>) -> bool {
        let inner = self.lock();
        match &inner.auth {
            Some(a) => key_id == Some(a.key_id.as_str()) && secret == Some(a.secret_key.as_str()),
            None => {
                let present = |v: Option<&str>| v.is_some_and(|s| !s.trim().is_empty());
                (present(key_id) && present(secret)) || present(bearer)
            }
        }
    }
}
