//! Reads: the five GETs of an audit (`view`), and the typed reads remediation uses to re-read
//! the broker before and after acting. Every read is retried (see `retry`); a read that still
//! fails is an error, never an empty list.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value;

use super::client::{AlpacaClient, Item, Reply};
use super::endpoint::Endpoint;
use super::error::BrokerError;
use crate::collect::broker::wire::{self, AlpacaAccountConfiguration, AlpacaPosition};
use crate::collect::snapshot_dir::BrokerFile;
use crate::model::{Account, AccountConfiguration, BrokerView, MarketClock, Order, Position, SourceError, Sourced};

/// The largest page `GET /v2/orders` returns (Alpaca's maximum `limit`).
pub const ORDERS_PAGE_LIMIT: usize = 500;
/// Pages read before giving up on an order list (10,000 orders).
pub const MAX_ORDER_PAGES: usize = 20;
/// `page_size` of an activities read (Alpaca's largest).
pub const FILLS_PAGE_SIZE: usize = 100;
/// At most this many pages of fills in one recent-orders read (1,000 fills in the window):
/// past it the read is `Incomplete`, never a silently shortened list.
pub const MAX_FILL_PAGES: usize = 10;
/// At most this many orders read one by one because they filled in the window but were
/// submitted before it; past it the read is `Incomplete`.
pub const MAX_FILLED_ORDER_LOOKUPS: usize = 50;

/// A parsed read and the body exactly as received (what `snapshot` records).
#[derive(Debug, Clone, PartialEq)]
pub struct Fetched<T> {
    /// The parsed value.
    pub value: T,
    /// The body as received (for a paged order list, the pages' elements in one array).
    pub body: Vec<u8>,
}

/// Which orders `list_orders` asks for (`status=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderStatusFilter {
    /// Every non-terminal order.
    Open,
    /// Terminal orders.
    Closed,
    /// Both.
    All,
}

impl OrderStatusFilter {
    fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Closed => "closed",
            Self::All => "all",
        }
    }
}

/// The snapshot file the recently closed orders are recorded in (`DIR/broker/<file>`; optional).
pub const RECENT_ORDERS_FILE: &str = BrokerFile::RecentOrders.file_name();
/// Their source name in errors and in `snapshot.toml`.
pub const RECENT_ORDERS_SOURCE: &str = BrokerFile::RecentOrders.source();

/// The snapshot file each audit read is recorded in (`DIR/broker/<file>`).
#[must_use]
pub fn snapshot_file(endpoint: Endpoint) -> Option<&'static str> {
    let file = match endpoint {
        Endpoint::Account => BrokerFile::Account,
        Endpoint::Positions => BrokerFile::Positions,
        Endpoint::Orders => BrokerFile::Orders,
        Endpoint::Clock => BrokerFile::Clock,
        Endpoint::Configurations => BrokerFile::Configurations,
        _ => return None,
    };
    Some(file.file_name())
}

/// When an order was submitted (else created): the key `until` pages by.
fn order_time(o: &Value) -> Option<DateTime<Utc>> {
    ["submitted_at", "created_at"].iter().find_map(|k| {
        o.get(k).and_then(Value::as_str).and_then(|s| DateTime::parse_from_rfc3339(s).ok()).map(|t| t.to_utc())
    })
}

impl AlpacaClient {
    async fn read<T>(
        &self,
        endpoint: Endpoint,
        segments: &[&str],
        parse: impl FnOnce(&[u8]) -> Result<T, String>,
    ) -> Result<Fetched<T>, BrokerError> {
        let (reply, _) = self.get(endpoint, self.url(segments, &[])).await;
        let reply = reply?;
        let value = self.parse(endpoint, &reply, parse)?;
        Ok(Fetched { value, body: reply.body })
    }

    /// `GET /v2/account`.
    ///
    /// # Errors
    /// The request failed after retries, or the body was not an account.
    pub async fn account(&self) -> Result<Fetched<Account>, BrokerError> {
        self.read(Endpoint::Account, &["account"], wire::parse_account).await
    }

    /// `GET /v2/account`'s `account_number` (empty when absent), for the live guard.
    ///
    /// # Errors
    /// The request failed after retries, or the body was not an account.
    pub async fn account_number(&self) -> Result<String, BrokerError> {
        let f = self.read(Endpoint::Account, &["account"], wire::parse_account).await?;
        let raw: wire::AlpacaAccount = serde_json::from_slice(&f.body).map_err(|e| BrokerError::Malformed {
            endpoint: Endpoint::Account,
            status: 200,
            message: format!("account body: {e}"),
        })?;
        Ok(raw.account_number)
    }

    /// `GET /v2/positions`.
    ///
    /// # Errors
    /// The request failed after retries, or the body was not a list of positions.
    pub async fn positions(&self) -> Result<Fetched<Vec<Position>>, BrokerError> {
        self.read(Endpoint::Positions, &["positions"], wire::parse_positions).await
    }

    /// `GET /v2/positions/{symbol}`: `None` when there is no open position (404). A 404 is
    /// only this endpoint's word: callers deciding "flat" confirm it against the list.
    ///
    /// # Errors
    /// `BadTarget` (nothing sent) for a symbol that cannot name one position; any other
    /// failure, after retries.
    pub async fn get_position(&self, symbol: &str) -> Result<Option<Position>, BrokerError> {
        let url = self.item_url(Endpoint::Position, "positions", symbol, super::client::Item::Symbol)?;
        let (reply, _) = self.get(Endpoint::Position, url).await;
        match reply.and_then(|r| self.parse(Endpoint::Position, &r, parse_position)) {
            Ok(p) => Ok(Some(p)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `GET /v2/clock`.
    ///
    /// # Errors
    /// The request failed after retries, or the body was not a clock.
    pub async fn clock(&self) -> Result<Fetched<MarketClock>, BrokerError> {
        self.read(Endpoint::Clock, &["clock"], wire::parse_clock).await
    }

    /// `GET /v2/account/configurations`, as the domain type.
    ///
    /// # Errors
    /// The request failed after retries, or the body was not a configuration object.
    pub async fn configuration(&self) -> Result<Fetched<AccountConfiguration>, BrokerError> {
        self.read(Endpoint::Configurations, &["account", "configurations"], wire::parse_configuration).await
    }

    /// `GET /v2/account/configurations`, every field as Alpaca sent it (to compare with a
    /// patch, or to restore it).
    ///
    /// # Errors
    /// The request failed after retries, or the body was not a configuration object.
    pub async fn get_configuration(&self) -> Result<AlpacaAccountConfiguration, BrokerError> {
        let f = self
            .read(Endpoint::Configurations, &["account", "configurations"], |b| {
                serde_json::from_slice::<AlpacaAccountConfiguration>(b)
                    .map_err(|e| format!("account configurations body: {e}"))
            })
            .await?;
        Ok(f.value)
    }

    /// `GET /v2/orders?status=open`, every page.
    ///
    /// # Errors
    /// A page failed after retries, the list could not be paged to its end, or a body was not
    /// a list of orders.
    pub async fn open_orders(&self) -> Result<Fetched<Vec<Order>>, BrokerError> {
        let (reply, _) = self.orders_reply(OrderStatusFilter::Open, &[], None).await;
        let reply = reply?;
        let value = self.parse(Endpoint::Orders, &reply, wire::parse_orders)?;
        Ok(Fetched { value, body: reply.body })
    }

    /// `GET /v2/orders?status=...&symbols=...`, every page (newest first).
    ///
    /// # Errors
    /// As for `open_orders`.
    pub async fn list_orders(&self, status: OrderStatusFilter, symbols: &[&str]) -> Result<Vec<Order>, BrokerError> {
        let (reply, _) = self.orders_reply(status, symbols, None).await;
        let reply = reply?;
        self.parse(Endpoint::Orders, &reply, wire::parse_orders)
    }

    /// The orders that closed or filled recently: `GET /v2/orders?status=closed&after=`
    /// (every page: those submitted after `after` that reached a terminal status), plus every
    /// order with a fill after `after` whatever its submission time. Alpaca's `after` on orders
    /// compares submission times, so a limit order that rested for days and filled a second ago
    /// is in neither the open nor the closed list; the FILL activities (dated by transaction
    /// time, `GET /v2/account/activities/FILL?after=`) name it, and it is read by id
    /// (`GET /v2/orders/{id}`). The body is the combined array, so a replay sees the same.
    ///
    /// # Errors
    /// As for `open_orders`; a read that cannot be completed (too many fills or lookups) is
    /// `Incomplete`, never a shorter list.
    pub async fn closed_orders_since(&self, after: DateTime<Utc>) -> Result<Fetched<Vec<Order>>, BrokerError> {
        let (reply, _) = self.orders_reply(OrderStatusFilter::Closed, &[], Some(after)).await;
        let reply = reply?;
        // Parsed first, so a bad body is named by the orders parser.
        self.parse(Endpoint::Orders, &reply, wire::parse_orders)?;
        let mut items: Vec<Value> = serde_json::from_slice(&reply.body).map_err(|e| BrokerError::Malformed {
            endpoint: Endpoint::Orders,
            status: reply.status,
            message: e.to_string(),
        })?;
        let known: HashSet<String> =
            items.iter().filter_map(|o| o.get("id").and_then(Value::as_str)).map(str::to_owned).collect();
        let mut missing: Vec<String> = Vec::new();
        for id in self.filled_order_ids_since(after).await? {
            if !known.contains(&id) && !missing.contains(&id) {
                missing.push(id);
            }
        }
        if missing.len() > MAX_FILLED_ORDER_LOOKUPS {
            return Err(BrokerError::Incomplete {
                endpoint: Endpoint::Order,
                message: format!(
                    "{} orders submitted earlier filled since {}: more than the {MAX_FILLED_ORDER_LOOKUPS} read one by one",
                    missing.len(),
                    after.to_rfc3339()
                ),
            });
        }
        for id in &missing {
            let url = self.item_url(Endpoint::Order, "orders", id, Item::OrderId)?;
            let (one, _) = self.get(Endpoint::Order, url).await;
            let one = one?;
            let value: Value = serde_json::from_slice(&one.body).map_err(|e| BrokerError::Malformed {
                endpoint: Endpoint::Order,
                status: one.status,
                message: e.to_string(),
            })?;
            items.push(value);
        }
        let body = if missing.is_empty() { reply.body } else { serde_json::to_vec(&items).unwrap_or_default() };
        let combined = Reply { status: reply.status, body };
        let value = self.parse(Endpoint::Orders, &combined, wire::parse_orders)?;
        Ok(Fetched { value, body: combined.body })
    }

    /// The ids of the orders with a FILL activity after `after` (transaction time), every
    /// page (`page_token` = the last activity's id), newest first.
    async fn filled_order_ids_since(&self, after: DateTime<Utc>) -> Result<Vec<String>, BrokerError> {
        let endpoint = Endpoint::Fills;
        let after_text = after.to_rfc3339_opts(SecondsFormat::Nanos, true);
        let size = FILLS_PAGE_SIZE.to_string();
        let mut ids = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..MAX_FILL_PAGES {
            let mut query = vec![("after", after_text.as_str()), ("direction", "desc"), ("page_size", size.as_str())];
            if let Some(t) = &token {
                query.push(("page_token", t.as_str()));
            }
            let (reply, _) = self.get(endpoint, self.url(&["account", "activities", "FILL"], &query)).await;
            let reply = reply?;
            let page: Vec<Value> = self.parse(endpoint, &reply, |b| {
                serde_json::from_slice(b).map_err(|e| format!("the FILL activities are not a JSON array: {e}"))
            })?;
            for a in &page {
                let Some(id) = a.get("order_id").and_then(Value::as_str) else {
                    return Err(BrokerError::Malformed {
                        endpoint,
                        status: reply.status,
                        message: "a FILL activity has no `order_id`".to_owned(),
                    });
                };
                ids.push(id.to_owned());
            }
            if page.len() < FILLS_PAGE_SIZE {
                return Ok(ids);
            }
            token = page.last().and_then(|a| a.get("id")).and_then(Value::as_str).map(str::to_owned);
            if token.is_none() {
                return Err(BrokerError::Malformed {
                    endpoint,
                    status: reply.status,
                    message: "a full page of FILL activities ends with one that has no `id` to page from".to_owned(),
                });
            }
        }
        Err(BrokerError::Incomplete {
            endpoint,
            message: format!("more than {} fills since {}", MAX_FILL_PAGES * FILLS_PAGE_SIZE, after.to_rfc3339()),
        })
    }

    /// Reads an order list. One request (`limit=500`, newest first) unless exactly 500 came
    /// back; only then is the next page asked for, with `until` just after the oldest
    /// submission time seen (both bounds are exclusive, so orders sharing that instant are
    /// read again and dropped by id). So an account with more than 500 open orders costs
    /// extra requests: one per further 500. Never a partial list: a page that fails fails
    /// the whole read, and a list that cannot be paged to its end (over
    /// `MAX_ORDER_PAGES` pages, or more than 500 orders submitted at one instant) is
    /// `Incomplete`. A paged body is recorded as one array of every page's elements.
    async fn orders_reply(
        &self,
        status: OrderStatusFilter,
        symbols: &[&str],
        after: Option<DateTime<Utc>>,
    ) -> (Result<Reply, BrokerError>, u32) {
        let endpoint = Endpoint::Orders;
        let limit = ORDERS_PAGE_LIMIT.to_string();
        let joined = symbols.join(",");
        let after_text = after.map(|t| t.to_rfc3339_opts(SecondsFormat::Nanos, true));
        let mut until: Option<DateTime<Utc>> = None;
        let mut all: Vec<Value> = Vec::new();
        let mut seen: HashSet<String> = HashSet::new();
        for page in 1..=MAX_ORDER_PAGES {
            let until_text = until.map(|t| t.to_rfc3339_opts(SecondsFormat::Nanos, true));
            let mut query = vec![("status", status.as_str()), ("limit", limit.as_str()), ("direction", "desc")];
            if !joined.is_empty() {
                query.push(("symbols", joined.as_str()));
            }
            if let Some(a) = &after_text {
                query.push(("after", a.as_str()));
            }
            if let Some(u) = &until_text {
                query.push(("until", u.as_str()));
            }
            let (reply, attempts) = self.get(endpoint, self.url(&["orders"], &query)).await;
            let reply = match reply {
                Ok(r) => r,
                Err(e) => return (Err(e), attempts),
            };
            let Ok(items) = serde_json::from_slice::<Vec<Value>>(&reply.body) else {
                if page == 1 {
                    // Let the parser name what is wrong with it.
                    return (Ok(reply), attempts);
                }
                let e = BrokerError::Malformed {
                    endpoint,
                    status: reply.status,
                    message: format!("orders page {page} is not a JSON array"),
                };
                self.metrics().error(endpoint, e.kind());
                return (Err(e), attempts);
            };
            if page == 1 && items.len() < ORDERS_PAGE_LIMIT {
                return (Ok(reply), attempts);
            }
            let full = items.len() >= ORDERS_PAGE_LIMIT;
            let mut oldest: Option<DateTime<Utc>> = None;
            // Orders repeated across pages are expected (the boundary instant is read twice)
            // and dropped by id; an id repeated within one page is a malformed list.
            let mut on_page: HashSet<String> = HashSet::new();
            for item in items {
                let Some(t) = order_time(&item) else {
                    let e = BrokerError::Malformed {
                        endpoint,
                        status: reply.status,
                        message: "an order in a full page has no `submitted_at`, so the list cannot be paged".into(),
                    };
                    self.metrics().error(endpoint, e.kind());
                    return (Err(e), attempts);
                };
                oldest = Some(oldest.map_or(t, |o| o.min(t)));
                let id = item.get("id").and_then(Value::as_str).unwrap_or_default().to_owned();
                if !id.is_empty() && !on_page.insert(id.clone()) {
                    let e = BrokerError::Malformed {
                        endpoint,
                        status: reply.status,
                        message: format!(
                            "orders page {page}: id `{id}` appears twice; a list that repeats an id cannot be trusted"
                        ),
                    };
                    self.metrics().error(endpoint, e.kind());
                    return (Err(e), attempts);
                }
                if id.is_empty() || seen.insert(id) {
                    all.push(item);
                }
            }
            if !full {
                let body = serde_json::to_vec(&all).unwrap_or_default();
                return (Ok(Reply { status: reply.status, body }), attempts);
            }
            // Checked: a body dated at chrono's last instant cannot be paged past (no panic).
            let next = oldest.and_then(|t| t.checked_add_signed(chrono::Duration::nanoseconds(1)));
            if next.is_none() || until.is_some_and(|u| next >= Some(u)) {
                let e = BrokerError::Incomplete {
                    endpoint,
                    message: format!(
                        "more than {ORDERS_PAGE_LIMIT} orders were submitted at {}; they cannot be paged by time",
                        oldest.map_or_else(String::new, |t| t.to_rfc3339())
                    ),
                };
                self.metrics().error(endpoint, e.kind());
                return (Err(e), attempts);
            }
            until = next;
        }
        let e = BrokerError::Incomplete {
            endpoint,
            message: format!(
                "more than {} orders ({MAX_ORDER_PAGES} pages of {ORDERS_PAGE_LIMIT}); refusing a partial list",
                MAX_ORDER_PAGES * ORDERS_PAGE_LIMIT
            ),
        };
        self.metrics().error(endpoint, e.kind());
        (Err(e), 1)
    }

    /// Everything an audit needs, in five concurrent GETs (account, positions, open orders,
    /// clock, account configurations), each retried on its own. Each endpoint that still
    /// fails carries its error; bodies that arrived are kept in `bodies` (even when they did
    /// not parse, so a replay of the snapshot reports the same `source_malformed`). The
    /// recently closed orders are a sixth read made only when a settle needs them
    /// (`recent_orders`).
    pub async fn view(&self) -> BrokerView {
        let (account, positions, orders, clock, configuration) = tokio::join!(
            self.get(Endpoint::Account, self.url(&["account"], &[])),
            self.get(Endpoint::Positions, self.url(&["positions"], &[])),
            self.orders_reply(OrderStatusFilter::Open, &[], None),
            self.get(Endpoint::Clock, self.url(&["clock"], &[])),
            self.get(Endpoint::Configurations, self.url(&["account", "configurations"], &[])),
        );
        let mut bodies = BTreeMap::new();
        let account = self.settle(Endpoint::Account, account, &mut bodies, wire::parse_account);
        let positions = self.settle(Endpoint::Positions, positions, &mut bodies, wire::parse_positions);
        let orders = self.settle(Endpoint::Orders, orders, &mut bodies, wire::parse_orders);
        let clock = self.settle(Endpoint::Clock, clock, &mut bodies, wire::parse_clock);
        let configuration =
            Some(self.settle(Endpoint::Configurations, configuration, &mut bodies, wire::parse_configuration));
        BrokerView { account, positions, orders, clock, configuration, recent_orders: None, bodies }
    }

    /// The orders that closed or filled since `after` (`closed_orders_since`), as a
    /// source of the view (`broker:recent_orders`), its body recorded in `bodies` as
    /// `recent_orders.json` for a snapshot.
    pub async fn recent_orders(
        &self,
        after: DateTime<Utc>,
        bodies: &mut BTreeMap<String, Vec<u8>>,
    ) -> Sourced<Vec<Order>> {
        match self.closed_orders_since(after).await {
            Ok(f) => {
                bodies.insert(RECENT_ORDERS_FILE.to_owned(), f.body);
                Ok(f.value)
            }
            Err(e) => {
                let mut se: SourceError = e.to_source_error();
                // Its own source, so a failure is not mistaken for the open orders'.
                se.source = RECENT_ORDERS_SOURCE.to_owned();
                Err(se)
            }
        }
    }

    fn settle<T>(
        &self,
        endpoint: Endpoint,
        (reply, attempts): (Result<Reply, BrokerError>, u32),
        bodies: &mut BTreeMap<String, Vec<u8>>,
        parse: impl FnOnce(&[u8]) -> Result<T, String>,
    ) -> Sourced<T> {
        let reply = reply.map_err(|e| {
            let mut se: SourceError = e.to_source_error();
            if attempts > 1 {
                se.message.push_str(&format!(" (after {attempts} attempts)"));
            }
            se
        })?;
        let parsed = self.parse(endpoint, &reply, parse).map_err(|e| e.to_source_error());
        if let Some(file) = snapshot_file(endpoint) {
            bodies.insert(file.to_owned(), reply.body);
        }
        parsed
    }
}

fn parse_position(body: &[u8]) -> Result<Position, String> {
    serde_json::from_slice::<AlpacaPosition>(body)
        .map_err(|e| format!("position body: {e}"))
        .and_then(|p| p.to_domain())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_time_prefers_submission() {
        let o = serde_json::json!({"created_at": "2026-01-01T00:00:00Z", "submitted_at": "2026-01-01T00:00:01.5Z"});
        assert_eq!(order_time(&o).unwrap().to_rfc3339(), "2026-01-01T00:00:01.500+00:00");
        assert!(order_time(&serde_json::json!({"submitted_at": null})).is_none());
    }

    #[test]
    fn every_audit_read_has_a_snapshot_file() {
        for e in [Endpoint::Account, Endpoint::Positions, Endpoint::Orders, Endpoint::Clock, Endpoint::Configurations] {
            let file = snapshot_file(e).unwrap();
            // The live source name and the replayed one are the same (`broker:positions`).
            let recorded = BrokerFile::ALL.into_iter().find(|f| f.file_name() == file).unwrap();
            assert_eq!(e.source(), recorded.source(), "{e:?}");
        }
        assert_eq!(snapshot_file(Endpoint::ClosePosition), None);
    }
}
