//! Per-endpoint request and error counters, shared between clones of the client (and, later,
//! the daemon's `/metrics` endpoint). Cheap: one short-lived lock per request.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, PoisonError};

use serde::Serialize;

use super::endpoint::Endpoint;

/// Counters for one endpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct EndpointStats {
    /// HTTP requests sent (every attempt, retries included).
    pub requests: u64,
    /// Attempts that were retries of a failed read.
    pub retries: u64,
    /// Failed attempts by kind (`BrokerError::kind`): `timeout`, `server`, `malformed`, ...
    pub errors: BTreeMap<&'static str, u64>,
}

/// Shared counters: clones count into the same table.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    inner: Arc<Mutex<BTreeMap<Endpoint, EndpointStats>>>,
}

impl Metrics {
    fn with(&self, endpoint: Endpoint, f: impl FnOnce(&mut EndpointStats)) {
        let mut map = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        f(map.entry(endpoint).or_default());
    }

    /// One request sent.
    pub fn request(&self, endpoint: Endpoint) {
        self.with(endpoint, |s| s.requests += 1);
    }

    /// One retry of a read.
    pub fn retry(&self, endpoint: Endpoint) {
        self.with(endpoint, |s| s.retries += 1);
    }

    /// One failed attempt.
    pub fn error(&self, endpoint: Endpoint, kind: &'static str) {
        self.with(endpoint, |s| *s.errors.entry(kind).or_default() += 1);
    }

    /// A copy of every counter.
    #[must_use]
    pub fn snapshot(&self) -> BTreeMap<Endpoint, EndpointStats> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Requests sent to every endpoint.
    #[must_use]
    pub fn requests_total(&self) -> u64 {
        self.snapshot().values().map(|s| s.requests).sum()
    }

    /// The counters in the Prometheus text format.
    #[must_use]
    pub fn render_prometheus(&self) -> String {
        let snap = self.snapshot();
        let mut out = String::new();
        out.push_str("# HELP tradewarden_broker_requests_total HTTP requests sent to the broker, by endpoint.\n");
        out.push_str("# TYPE tradewarden_broker_requests_total counter\n");
        for (e, s) in &snap {
            let _ = writeln!(out, "tradewarden_broker_requests_total{{endpoint=\"{}\"}} {}", e.name(), s.requests);
        }
        out.push_str("# HELP tradewarden_broker_retries_total Retried broker reads, by endpoint.\n");
        out.push_str("# TYPE tradewarden_broker_retries_total counter\n");
        for (e, s) in &snap {
            let _ = writeln!(out, "tradewarden_broker_retries_total{{endpoint=\"{}\"}} {}", e.name(), s.retries);
        }
        out.push_str("# HELP tradewarden_broker_errors_total Failed broker requests, by endpoint and kind.\n");
        out.push_str("# TYPE tradewarden_broker_errors_total counter\n");
        for (e, s) in &snap {
            for (kind, n) in &s.errors {
                let _ =
                    writeln!(out, "tradewarden_broker_errors_total{{endpoint=\"{}\",kind=\"{kind}\"}} {n}", e.name());
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_counters() {
        let m = Metrics::default();
        let c = m.clone();
        c.request(Endpoint::Positions);
        c.request(Endpoint::Positions);
        c.retry(Endpoint::Positions);
        m.error(Endpoint::Positions, "server");
        m.request(Endpoint::Clock);
        let s = m.snapshot();
        assert_eq!(s[&Endpoint::Positions].requests, 2);
        assert_eq!(s[&Endpoint::Positions].retries, 1);
        assert_eq!(s[&Endpoint::Positions].errors["server"], 1);
        assert_eq!(m.requests_total(), 3);
        let text = m.render_prometheus();
        assert!(text.contains("tradewarden_broker_requests_total{endpoint=\"positions\"} 2"), "{text}");
        assert!(text.contains("tradewarden_broker_errors_total{endpoint=\"positions\",kind=\"server\"} 1"), "{text}");
    }
}
