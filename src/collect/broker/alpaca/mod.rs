//! The live Alpaca REST client (reqwest with rustls and ring).
//!
//! - `client`: construction from `[broker]` and `APCA_API_*`, paper or live from the host,
//!   the transport (timeouts, error mapping, retries for reads only).
//! - `reads`: `view()` (the five concurrent GETs of an audit: account, positions, open
//!   orders, clock, account configurations, so one healthy audit costs five requests) and the
//!   typed reads remediation uses to re-read the broker.
//! - `writes`: close one or all positions, cancel one or all orders, patch the configuration;
//!   one attempt each, never retried.
//! - `budget`: the client-side request budget (`[broker] max_requests_per_minute`), a token
//!   bucket every request passes, reads and writes alike.
//! - `retry`: backoff and rate-limit waits (pure). `metrics`: per-endpoint counters.
//! - `error`: `ClientError` (cannot build) and `BrokerError` (a request failed).
//!
//! A failed read is an explicit `SourceError` in the `BrokerView`, never an empty list.
//! Unknown fields are ignored and fields Alpaca removed on 2026-07-06 are optional (`wire`).

mod budget;
mod client;
mod endpoint;
mod error;
mod metrics;
mod reads;
mod retry;
mod writes;

pub use budget::{DEFAULT_PER_MINUTE, RequestBudget};
pub use client::{
    AlpacaClient, ClientSettings, LIVE_HOST, LIVE_URL, PAPER_URL, account_number_mode, key_mode, mode_of,
};
pub use endpoint::Endpoint;
pub use error::{BASE_URL_VAR, BrokerError, ClientError, KEY_ID_VAR, SECRET_KEY_VAR};
pub use metrics::{EndpointStats, Metrics};
pub use reads::{
    Fetched, MAX_ORDER_PAGES, ORDERS_PAGE_LIMIT, OrderStatusFilter, RECENT_ORDERS_FILE, RECENT_ORDERS_SOURCE,
    snapshot_file,
};
pub use retry::{RateLimitWait, RetryPolicy, parse_reset};
pub use writes::{CancelOrderResult, ClosePositionResult, ConfigurationPatch};
