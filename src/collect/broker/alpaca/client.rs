//! `AlpacaClient`: credentials, base URL, and the transport every call goes through (one
//! attempt for writes, retries for reads, error mapping, metrics).
//!
//! Invariants:
//! - Credentials are read from the environment once and kept only as sensitive header
//!   values; `Debug` and every error message name the variables, never their values.
//! - Only GETs are retried. A write that failed may or may not have taken effect; callers
//!   re-read the broker instead of repeating it.
//! - Redirects are not followed, so the key headers are only ever sent to the configured host.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode, Url};

use super::budget::RequestBudget;
use super::endpoint::Endpoint;
use super::error::{BASE_URL_VAR, BrokerError, ClientError, KEY_ID_VAR, SECRET_KEY_VAR};
use super::metrics::Metrics;
use super::retry::{RateLimitWait, RetryPolicy, parse_reset};
use crate::collect::broker::wire::AlpacaError;
use crate::config::{BrokerConfig, DEFAULT_MAX_BODY};
use crate::model::Mode;

/// The paper-trading REST base URL (the default).
pub const PAPER_URL: &str = "https://paper-api.alpaca.markets";
/// The live-trading REST base URL.
pub const LIVE_URL: &str = "https://api.alpaca.markets";
/// The live host.
pub const LIVE_HOST: &str = "api.alpaca.markets";
/// The paper host: with loopback, the only hosts taken for paper (see [`mode_of`]).
pub const PAPER_HOST: &str = "paper-api.alpaca.markets";

/// Everything needed to build a client without the environment (tests, embedding).
#[derive(Clone)]
pub struct ClientSettings {
    /// REST base URL, without `/v2`.
    pub base_url: String,
    /// `APCA-API-KEY-ID`.
    pub key_id: String,
    /// `APCA-API-SECRET-KEY`.
    pub secret_key: String,
    /// Per-request timeout (connect, send, and read the whole body).
    pub timeout: Duration,
    /// How reads are retried.
    pub retry: RetryPolicy,
}

impl fmt::Debug for ClientSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientSettings")
            .field("base_url", &self.base_url)
            .field("key_id", &"<redacted>")
            .field("secret_key", &"<redacted>")
            .field("timeout", &self.timeout)
            .field("retry", &self.retry)
            .finish()
    }
}

/// The live Alpaca REST client. Cheap to clone: clones share the connection pool and the
/// metrics.
#[derive(Clone)]
pub struct AlpacaClient {
    http: reqwest::Client,
    base: Url,
    mode: Mode,
    timeout: Duration,
    retry: RetryPolicy,
    metrics: Metrics,
    max_body: u64,
    budget: RequestBudget,
}

impl fmt::Debug for AlpacaClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AlpacaClient")
            .field("base_url", &self.base_url())
            .field("mode", &self.mode)
            .field("credentials", &"<redacted>")
            .field("timeout", &self.timeout)
            .field("retry", &self.retry)
            .field("max_requests_per_minute", &self.budget.limit())
            .finish_non_exhaustive()
    }
}

/// What a per-item path segment names, and what a plausible one looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Item {
    /// A ticker (`AAPL`, `BRK.B`, `BTC/USD`) or an asset id (a UUID).
    Symbol,
    /// An order id: Alpaca's are UUIDs.
    OrderId,
}

impl Item {
    fn noun(self) -> &'static str {
        match self {
            Self::Symbol => "symbol",
            Self::OrderId => "order id",
        }
    }

    /// `Err(why)` unless `s` is a plausible item of this kind. Conservative on purpose: a
    /// symbol starts with a letter or digit and holds only letters, digits, `.`, `-` and `/`
    /// (so never `.`, `..`, `%2e`, empty, whitespace, `?` or `#`); an order id is a UUID.
    pub(super) fn check(self, s: &str) -> Result<(), &'static str> {
        match self {
            Self::Symbol => {
                if s.is_empty() {
                    return Err("is empty");
                }
                if s.len() > 64 {
                    return Err("is longer than any symbol");
                }
                if !s.starts_with(|c: char| c.is_ascii_alphanumeric()) {
                    return Err("does not start with a letter or digit");
                }
                if !s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '/')) {
                    return Err("holds characters no symbol has");
                }
                if s.contains("..") || s.contains("/.") || s.ends_with('/') {
                    return Err("holds a relative path");
                }
                Ok(())
            }
            Self::OrderId => {
                let b = s.as_bytes();
                let uuid = b.len() == 36
                    && b.iter()
                        .enumerate()
                        .all(|(i, c)| if matches!(i, 8 | 13 | 18 | 23) { *c == b'-' } else { c.is_ascii_hexdigit() });
                if uuid { Ok(()) } else { Err("is not a UUID") }
            }
        }
    }
}

/// A response with a 2xx status.
#[derive(Debug, Clone)]
pub(super) struct Reply {
    pub(super) status: u16,
    pub(super) body: Vec<u8>,
}

/// Paper or live, from the URL's host. Fails closed: only Alpaca's paper host and loopback (a
/// simulator) are paper; anything else (the live host, with or without a trailing dot, an IP
/// address, a proxy in front of either) is live, so acting on it needs `allow_live`.
#[must_use]
pub fn mode_of(url: &Url) -> Mode {
    let paper = url.host_str().is_some_and(|h| {
        let h = h.trim_end_matches('.');
        let ip = h.trim_start_matches('[').trim_end_matches(']').parse::<std::net::IpAddr>();
        match ip {
            Ok(ip) => ip.is_loopback(),
            Err(_) => h.eq_ignore_ascii_case(PAPER_HOST) || h.eq_ignore_ascii_case("localhost"),
        }
    });
    if paper { Mode::Paper } else { Mode::Live }
}

/// What a key id says: Alpaca's paper key ids start with `PK`, live ones with `AK`; anything
/// else (a test key, a token) says nothing, and the other signals decide.
#[must_use]
pub fn key_mode(key_id: &str) -> Option<Mode> {
    let k = key_id.trim().as_bytes();
    match k.get(..2).map(<[u8]>::to_ascii_uppercase).as_deref() {
        Some(b"PK") => Some(Mode::Paper),
        Some(b"AK") => Some(Mode::Live),
        _ => None,
    }
}

/// What the account number (`GET /v2/account`) says. Paper accounts are numbered `PA...`
/// (alpaca-api.md §2.4); anything else, an empty or missing number included, is not known to
/// be paper and counts as live (fail closed).
#[must_use]
pub fn account_number_mode(account_number: &str) -> Mode {
    let n = account_number.trim().as_bytes();
    if n.len() > 2 && n[..2].eq_ignore_ascii_case(b"PA") { Mode::Paper } else { Mode::Live }
}

/// Parses and normalises a base URL: absolute http(s) with a host; trailing slashes and a
/// trailing `/v2` are dropped (every path this client sends starts with `/v2`).
fn parse_base(url: &str, origin: &'static str) -> Result<Url, ClientError> {
    let bad = |reason: String| ClientError::BadBaseUrl { url: url.to_owned(), origin, reason };
    let trimmed = url.trim().trim_end_matches('/');
    let trimmed = trimmed.strip_suffix("/v2").unwrap_or(trimmed).trim_end_matches('/');
    let parsed = Url::parse(trimmed).map_err(|e| bad(e.to_string()))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(bad(format!("the scheme must be http or https, not `{}`", parsed.scheme())));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(bad("there is no host".into()));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(bad("a base URL has no query or fragment".into()));
    }
    // The keys travel in headers: plain http only to this machine (`APCA_API_BASE_URL` is not
    // in any file config validation reads, so the client checks too).
    crate::config::cleartext::check_url(parsed.as_str(), "the API keys").map_err(bad)?;
    Ok(parsed)
}

fn sensitive(value: &str, var: &'static str) -> Result<HeaderValue, ClientError> {
    let mut v = HeaderValue::from_str(value).map_err(|_| ClientError::BadCredential { var })?;
    v.set_sensitive(true);
    Ok(v)
}

/// An error body for a response whose body was not Alpaca's JSON.
#[allow(clippy::needless_update, reason = "the wire type may grow optional fields (403 details)")]
fn error_body(code: Option<u64>, message: String) -> AlpacaError {
    AlpacaError { code, message, ..AlpacaError::default() }
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// What the transport said, without reqwest's and hyper's wrappers: the innermost causes,
/// e.g. `tcp connect error: Connection refused (os error 111)` or `dns error: ...`.
fn cause(e: &reqwest::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    // The outer layers are generic ("client error (Connect)"); the last two say what happened.
    let keep = parts.len().saturating_sub(2);
    let inner = parts.split_off(keep);
    if inner.is_empty() { e.to_string() } else { inner.join(": ") }
}

impl AlpacaClient {
    /// Builds the client from `[broker]` and the environment: `APCA_API_KEY_ID` and
    /// `APCA_API_SECRET_KEY` (both required), the base URL from `base_url`, else
    /// `APCA_API_BASE_URL`, else paper.
    ///
    /// # Errors
    /// A missing or unusable credential (naming the variable, never its value), or a bad URL.
    pub fn from_env(config: &BrokerConfig) -> Result<Self, ClientError> {
        Self::from_lookup(config, |name| std::env::var(name).ok())
    }

    /// [`from_env`](Self::from_env) with the environment given as a lookup function.
    ///
    /// # Errors
    /// As for `from_env`.
    pub fn from_lookup(config: &BrokerConfig, lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ClientError> {
        let non_empty = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let (url, origin) = match (&config.base_url, non_empty(BASE_URL_VAR)) {
            (Some(u), _) => (u.clone(), "[broker] base_url"),
            (None, Some(u)) => (u, BASE_URL_VAR),
            (None, None) => (PAPER_URL.to_owned(), "the default"),
        };
        let base = parse_base(&url, origin)?;
        let key_id = non_empty(KEY_ID_VAR);
        let secret_key = non_empty(SECRET_KEY_VAR);
        let (Some(key_id), Some(secret_key)) = (key_id.as_ref(), secret_key.as_ref()) else {
            let mut missing = Vec::new();
            if key_id.is_none() {
                missing.push(KEY_ID_VAR);
            }
            if secret_key.is_none() {
                missing.push(SECRET_KEY_VAR);
            }
            let base_url = base.as_str().trim_end_matches('/').to_owned();
            return Err(ClientError::MissingCredentials { missing, mode: mode_of(&base), base_url });
        };
        Ok(Self::build(base, key_id.trim(), secret_key.trim(), config.timeout, RetryPolicy::default())?
            .with_max_body(config.max_body)
            .with_request_budget(RequestBudget::per_minute(config.max_requests_per_minute)))
    }

    /// Builds a client from explicit settings.
    ///
    /// # Errors
    /// A bad base URL or a credential that cannot be sent as a header.
    pub fn new(settings: &ClientSettings) -> Result<Self, ClientError> {
        let base = parse_base(&settings.base_url, "the settings")?;
        Self::build(base, &settings.key_id, &settings.secret_key, settings.timeout, settings.retry)
    }

    fn build(
        base: Url,
        key_id: &str,
        secret_key: &str,
        timeout: Duration,
        retry: RetryPolicy,
    ) -> Result<Self, ClientError> {
        // reqwest is built with `rustls-no-provider`; without a process-wide provider, building
        // a client panics. The binary installs ring first thing; this covers library users.
        let _ = rustls::crypto::ring::default_provider().install_default();
        // Both are secrets (Alpaca key ids are sensitive too): any text a server sends back
        // is redacted of them before it becomes an error message.
        crate::redact::add_secret(key_id);
        crate::redact::add_secret(secret_key);
        let mut headers = HeaderMap::new();
        headers.insert("APCA-API-KEY-ID", sensitive(key_id, KEY_ID_VAR)?);
        headers.insert("APCA-API-SECRET-KEY", sensitive(secret_key, SECRET_KEY_VAR)?);
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("tradewarden/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ClientError::Http(e.to_string()))?;
        // Live when any signal says live: the host, or a live key behind a loopback proxy or
        // tunnel (the host alone would call that paper). The account is checked before acting.
        let mode =
            if mode_of(&base) == Mode::Live || key_mode(key_id) == Some(Mode::Live) { Mode::Live } else { Mode::Paper };
        Ok(Self {
            http,
            base,
            mode,
            timeout,
            retry,
            metrics: Metrics::default(),
            max_body: DEFAULT_MAX_BODY,
            budget: RequestBudget::default(),
        })
    }

    /// Replaces the retry policy (tests use short delays).
    #[must_use]
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Counts into `metrics` (shared with the daemon's `/metrics`) instead of its own table.
    #[must_use]
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// Spends `budget` (`[broker] max_requests_per_minute`), shared with every clone.
    #[must_use]
    pub fn with_request_budget(mut self, budget: RequestBudget) -> Self {
        self.budget = budget;
        self
    }

    /// The request budget.
    #[must_use]
    pub fn request_budget(&self) -> &RequestBudget {
        &self.budget
    }

    /// Reads at most `bytes` of any response body (`[broker] max_body`).
    #[must_use]
    pub fn with_max_body(mut self, bytes: u64) -> Self {
        self.max_body = bytes;
        self
    }

    /// Paper or live, from the base URL's host and the key id (live when either says live).
    /// Acting on "paper" also needs the account to say paper (`ActBroker::account_mode`).
    #[must_use]
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The base URL, without a trailing slash.
    #[must_use]
    pub fn base_url(&self) -> &str {
        self.base.as_str().trim_end_matches('/')
    }

    /// The per-request timeout.
    #[must_use]
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The retry policy.
    #[must_use]
    pub fn retry_policy(&self) -> RetryPolicy {
        self.retry
    }

    /// The per-endpoint counters.
    #[must_use]
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// `base` + `/v2/...` path segments (percent-encoded) + query pairs.
    pub(super) fn url(&self, segments: &[&str], query: &[(&str, &str)]) -> Url {
        let mut u = self.base.clone();
        if let Ok(mut path) = u.path_segments_mut() {
            path.pop_if_empty().push("v2").extend(segments);
        }
        if !query.is_empty() {
            u.query_pairs_mut().extend_pairs(query);
        }
        u
    }

    /// The URL of one item, `base/v2/{collection}/{item}`, or `BadTarget` when `item` cannot
    /// name exactly one item. The url crate drops `.` and `..` segments, so "cancel order `..`"
    /// would become `DELETE /v2/orders` (cancel everything): the item is validated first, and
    /// the built URL is checked to still end in that one encoded segment.
    pub(super) fn item_url(
        &self,
        endpoint: Endpoint,
        collection: &str,
        item: &str,
        kind: Item,
    ) -> Result<Url, BrokerError> {
        let bad = |why: &str| BrokerError::BadTarget {
            endpoint,
            message: format!("{} {item:?} {why}; a per-item request is never sent for it", kind.noun()),
        };
        kind.check(item).map_err(&bad)?;
        let url = self.url(&[collection, item], &[]);
        let base_len = self.base.path_segments().map_or(0, |s| s.filter(|s| !s.is_empty()).count());
        let segs: Vec<&str> = url.path_segments().map(Iterator::collect).unwrap_or_default();
        let ok = segs.len() == base_len + 3
            && segs[segs.len() - 2] == collection
            && segs.last().is_some_and(|last| !last.is_empty());
        if ok { Ok(url) } else { Err(bad("does not build a one-item path")) }
    }

    /// Sends one request. 2xx is a `Reply`; everything else is mapped to a `BrokerError`.
    /// Counts the request, and the error by kind.
    pub(super) async fn send_once(
        &self,
        endpoint: Endpoint,
        url: Url,
        body: Option<&serde_json::Value>,
    ) -> Result<Reply, BrokerError> {
        self.budget.acquire().await;
        self.metrics.request(endpoint);
        // Every error carries text from the server or the path to it (an error body, a proxy
        // page echoing the request headers): redacted here, where it enters.
        let result = self.exchange(endpoint, url, body).await.map_err(BrokerError::redacted);
        if let Err(e) = &result {
            self.metrics.error(endpoint, e.kind());
        }
        result
    }

    async fn exchange(
        &self,
        endpoint: Endpoint,
        url: Url,
        body: Option<&serde_json::Value>,
    ) -> Result<Reply, BrokerError> {
        let method: Method = endpoint.method();
        let target = match (url.host_str(), url.port_or_known_default()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            _ => url.to_string(),
        };
        let mut req = self.http.request(method, url);
        if let Some(b) = body {
            req = req.json(b);
        }
        let transport = |e: reqwest::Error| {
            if e.is_timeout() {
                BrokerError::Timeout { endpoint, after: self.timeout }
            } else {
                BrokerError::Unreachable { endpoint, message: format!("{target}: {}", cause(&e)) }
            }
        };
        let mut resp = req.send().await.map_err(transport)?;
        let status = resp.status();
        let reset = resp.headers().get("x-ratelimit-reset").and_then(|v| v.to_str().ok()).map(str::to_owned);
        // Read in chunks and stop at the cap: a 1.2 GB (or endless) body must cost at most
        // `max_body` of memory, not all of it. A declared length over the cap is refused
        // before anything is read.
        let too_big = || BrokerError::Malformed {
            endpoint,
            status: status.as_u16(),
            message: format!(
                "the response body is larger than [broker] max_body ({} bytes); not read further",
                self.max_body
            ),
        };
        if resp.content_length().is_some_and(|n| n > self.max_body) {
            return Err(too_big());
        }
        let cap = usize::try_from(self.max_body).unwrap_or(usize::MAX);
        let mut bytes: Vec<u8> = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(transport)? {
            if bytes.len().saturating_add(chunk.len()) > cap {
                return Err(too_big());
            }
            bytes.extend_from_slice(&chunk);
        }
        if status.is_success() {
            return Ok(Reply { status: status.as_u16(), body: bytes });
        }
        Err(self.http_error(endpoint, status, &bytes, reset.as_deref()))
    }

    fn http_error(&self, endpoint: Endpoint, status: StatusCode, body: &[u8], reset: Option<&str>) -> BrokerError {
        let parsed: Option<AlpacaError> =
            serde_json::from_slice::<AlpacaError>(body).ok().filter(|e| e.code.is_some() || !e.message.is_empty());
        let (code, message) = match &parsed {
            Some(e) => (e.code, e.message.clone()),
            None => {
                // Redacted before it is cut: a secret straddling the cut would otherwise leave
                // its first characters behind, where no redaction can recognise them.
                let text = crate::redact::redact(&String::from_utf8_lossy(body));
                let text = text.trim();
                let short: String = text.chars().take(200).collect();
                (None, if short.len() < text.len() { format!("{short}…") } else { short })
            }
        };
        let s = status.as_u16();
        match s {
            // A 403 on a read, or one without an Alpaca code (`{"message": "forbidden."}`), is
            // about the keys; a 403 with a code on a write is a trading refusal (40310000).
            401 => BrokerError::Unauthorized { endpoint, status: s, code, message, mode: self.mode },
            403 if endpoint.is_read() || code.is_none() => {
                BrokerError::Unauthorized { endpoint, status: s, code, message, mode: self.mode }
            }
            404 => BrokerError::NotFound { endpoint, code, message },
            429 => BrokerError::RateLimited { endpoint, reset_in: parse_reset(reset, now_ms()) },
            400..=499 => BrokerError::Rejected {
                endpoint,
                status: s,
                code,
                message: message.clone(),
                body: Box::new(parsed.unwrap_or_else(|| error_body(code, message))),
            },
            _ => BrokerError::Server { endpoint, status: s, code, message },
        }
    }

    /// A GET with retries: no response, timeouts and 5xx back off and retry; a 429 waits for
    /// the reset when it is near enough. Returns the result and the number of attempts made.
    pub(super) async fn get(&self, endpoint: Endpoint, url: Url) -> (Result<Reply, BrokerError>, u32) {
        debug_assert!(endpoint.is_read(), "only reads are retried");
        let mut failed = 0u32;
        loop {
            if failed > 0 {
                self.metrics.retry(endpoint);
            }
            let err = match self.send_once(endpoint, url.clone(), None).await {
                Ok(reply) => return (Ok(reply), failed + 1),
                Err(e) => e,
            };
            failed += 1;
            let wait = match &err {
                BrokerError::RateLimited { reset_in, .. } => {
                    match self.retry.rate_limit_wait(*reset_in, failed, fastrand::f64()) {
                        RateLimitWait::Wait(d) => Some(d),
                        RateLimitWait::GiveUp(_) => None,
                    }
                }
                e if e.is_transient() => Some(self.retry.backoff(failed, fastrand::f64())),
                _ => None,
            };
            match wait {
                Some(d) if failed < self.retry.max_attempts => {
                    tracing::debug!(endpoint = endpoint.name(), attempt = failed, wait_ms = d.as_millis(), error = %err, "Retrying a broker read.");
                    tokio::time::sleep(d).await;
                }
                _ => return (Err(err), failed),
            }
        }
    }

    /// A write: exactly one attempt, never retried.
    pub(super) async fn write(
        &self,
        endpoint: Endpoint,
        url: Url,
        body: Option<&serde_json::Value>,
    ) -> Result<Reply, BrokerError> {
        debug_assert!(!endpoint.is_read());
        let result = self.send_once(endpoint, url, body).await;
        match &result {
            Ok(r) => tracing::info!(endpoint = endpoint.name(), status = r.status, "Broker write accepted."),
            Err(e) => tracing::warn!(endpoint = endpoint.name(), error = %e, "Broker write failed; not retried."),
        }
        result
    }

    /// Parses a 2xx body; a failure is `Malformed` (and counted).
    pub(super) fn parse<T>(
        &self,
        endpoint: Endpoint,
        reply: &Reply,
        parse: impl FnOnce(&[u8]) -> Result<T, String>,
    ) -> Result<T, BrokerError> {
        parse(&reply.body).map_err(|message| {
            self.metrics.error(endpoint, "malformed");
            // A parser's message may quote the body.
            BrokerError::Malformed { endpoint, status: reply.status, message }.redacted()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(base_url: Option<&str>) -> BrokerConfig {
        BrokerConfig {
            kind: crate::config::BrokerKind::Alpaca,
            base_url: base_url.map(str::to_owned),
            timeout: Duration::from_secs(3),
            replay_dir: None,
            max_body: crate::config::DEFAULT_MAX_BODY,
            max_requests_per_minute: BrokerConfig::DEFAULT_MAX_REQUESTS_PER_MINUTE,
        }
    }

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| (*v).to_owned())
    }

    const KEYS: [(&str, &str); 2] = [("APCA_API_KEY_ID", "PKTESTKEY"), ("APCA_API_SECRET_KEY", "s3cr3t-value")];

    #[test]
    fn base_url_precedence_and_mode_from_host() {
        let c = AlpacaClient::from_lookup(&cfg(None), env(&KEYS)).unwrap();
        assert_eq!(c.base_url(), PAPER_URL);
        assert_eq!(c.mode(), Mode::Paper);

        let with_env = [KEYS[0], KEYS[1], ("APCA_API_BASE_URL", "https://api.alpaca.markets/")];
        let c = AlpacaClient::from_lookup(&cfg(None), env(&with_env)).unwrap();
        assert_eq!(c.base_url(), LIVE_URL);
        assert_eq!(c.mode(), Mode::Live);

        let c = AlpacaClient::from_lookup(&cfg(Some("http://127.0.0.1:8080/")), env(&with_env)).unwrap();
        assert_eq!(c.base_url(), "http://127.0.0.1:8080");
        assert_eq!(c.mode(), Mode::Paper);

        let c = AlpacaClient::from_lookup(&cfg(Some("https://API.Alpaca.Markets/v2/")), env(&KEYS)).unwrap();
        assert_eq!(c.mode(), Mode::Live);
        assert_eq!(c.url(&["account"], &[]).as_str(), "https://api.alpaca.markets/v2/account");
    }

    #[test]
    fn only_the_paper_host_and_loopback_are_paper() {
        let mode = |u: &str| mode_of(&Url::parse(u).unwrap());
        for paper in [
            "https://paper-api.alpaca.markets",
            "https://PAPER-API.alpaca.markets.",
            "http://127.0.0.1:9000",
            "http://[::1]:9000",
            "http://localhost:9000",
        ] {
            assert_eq!(mode(paper), Mode::Paper, "{paper}");
        }
        for live in [
            "https://api.alpaca.markets",
            "https://api.alpaca.markets.",
            "https://alpaca-proxy.internal.example",
            "http://10.0.0.5:8080",
            "http://192.168.1.2",
        ] {
            assert_eq!(mode(live), Mode::Live, "{live}");
        }
    }

    /// Issue 12 §3g: live-format keys behind a loopback URL (a local proxy or tunnel) counted
    /// as paper, and tradewarden acted without `allow_live`.
    #[test]
    fn live_keys_behind_a_loopback_url_are_live() {
        for (url, key, want) in [
            ("http://127.0.0.1:8080", "AKLIVEKEY123", Mode::Live),
            ("http://localhost:8080", "ak-live", Mode::Live),
            ("https://paper-api.alpaca.markets", "AKLIVEKEY123", Mode::Live),
            ("https://api.alpaca.markets", "PKTESTKEY", Mode::Live),
            ("http://127.0.0.1:8080", "PKTESTKEY", Mode::Paper),
            ("http://127.0.0.1:8080", "demo-key", Mode::Paper),
        ] {
            let keys = [("APCA_API_KEY_ID", key), KEYS[1]];
            let c = AlpacaClient::from_lookup(&cfg(Some(url)), env(&keys)).unwrap();
            assert_eq!(c.mode(), want, "{url} with {key}");
        }
        assert_eq!(key_mode(" PK1"), Some(Mode::Paper));
        assert_eq!(key_mode("token"), None);
        assert_eq!(account_number_mode("PA3XK8Q1ZT7M"), Mode::Paper);
        for live in ["", "PA", "3XK8Q1ZT7M", "LA123", " "] {
            assert_eq!(account_number_mode(live), Mode::Live, "{live:?}");
        }
    }

    #[test]
    fn an_http_apca_api_base_url_to_a_remote_host_is_refused_before_any_key_is_sent() {
        let e = AlpacaClient::from_lookup(
            &cfg(None),
            env(&[KEYS[0], KEYS[1], (BASE_URL_VAR, "http://api.alpaca.markets")]),
        )
        .unwrap_err();
        let s = e.to_string();
        assert!(s.contains("from APCA_API_BASE_URL") && s.contains("plain http to `api.alpaca.markets`"), "{s}");
        let local = env(&[KEYS[0], KEYS[1], (BASE_URL_VAR, "http://127.0.0.1:9")]);
        assert!(AlpacaClient::from_lookup(&cfg(None), local).is_ok(), "loopback stays allowed (the simulator)");
    }

    #[test]
    fn missing_or_empty_credentials_name_the_variables() {
        let e = AlpacaClient::from_lookup(&cfg(None), env(&[])).unwrap_err();
        let s = e.to_string();
        assert!(s.contains("APCA_API_KEY_ID and APCA_API_SECRET_KEY are not set"), "{s}");
        let e = AlpacaClient::from_lookup(&cfg(None), env(&[KEYS[0], ("APCA_API_SECRET_KEY", "  ")])).unwrap_err();
        let s = e.to_string();
        assert!(s.contains("APCA_API_SECRET_KEY is not set") && !s.contains("PKTESTKEY"), "{s}");
        assert!(s.contains("paper keys for https://paper-api.alpaca.markets"), "{s}");
        let e = AlpacaClient::from_lookup(&cfg(None), env(&[KEYS[0], ("APCA_API_SECRET_KEY", "a\nb")])).unwrap_err();
        assert_eq!(e, ClientError::BadCredential { var: SECRET_KEY_VAR });
    }

    #[test]
    fn bad_base_urls_are_refused() {
        let bad = [("APCA_API_BASE_URL", "ftp://x"), KEYS[0], KEYS[1]];
        let e = AlpacaClient::from_lookup(&cfg(None), env(&bad)).unwrap_err();
        assert!(e.to_string().contains("APCA_API_BASE_URL"), "{e}");
        let bad = [("APCA_API_BASE_URL", "not a url"), KEYS[0], KEYS[1]];
        assert!(AlpacaClient::from_lookup(&cfg(None), env(&bad)).is_err());
    }

    #[test]
    fn debug_never_shows_credentials() {
        let c = AlpacaClient::from_lookup(&cfg(None), env(&KEYS)).unwrap();
        let d = format!("{c:?}");
        assert!(!d.contains("PKTESTKEY") && !d.contains("s3cr3t-value"), "{d}");
        let s = ClientSettings {
            base_url: PAPER_URL.into(),
            key_id: "PKTESTKEY".into(),
            secret_key: "s3cr3t-value".into(),
            timeout: Duration::from_secs(1),
            retry: RetryPolicy::default(),
        };
        let d = format!("{s:?}");
        assert!(!d.contains("PKTESTKEY") && !d.contains("s3cr3t-value"), "{d}");
    }

    #[test]
    fn urls_encode_path_segments_and_queries() {
        let c = AlpacaClient::from_lookup(&cfg(Some("http://127.0.0.1:9/prefix/")), env(&KEYS)).unwrap();
        assert_eq!(c.url(&["positions", "BTC/USD"], &[]).as_str(), "http://127.0.0.1:9/prefix/v2/positions/BTC%2FUSD");
        assert_eq!(
            c.url(&["orders"], &[("status", "open"), ("until", "2026-01-01T00:00:00.000000001Z")]).as_str(),
            "http://127.0.0.1:9/prefix/v2/orders?status=open&until=2026-01-01T00%3A00%3A00.000000001Z"
        );
    }
}
