//! Writes, for remediation: close one or all positions, cancel one or all orders, patch the
//! account configuration. Each is exactly one request, never retried: when a write fails
//! without a clear answer (`BrokerError::outcome_unknown`), the broker may have acted anyway,
//! so the caller re-reads positions and orders rather than repeating it.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::client::{AlpacaClient, Item};
use super::endpoint::Endpoint;
use super::error::BrokerError;
use crate::collect::broker::wire::{AlpacaAccountConfiguration, AlpacaError, AlpacaOrder};

/// One element of the 207 answer to `DELETE /v2/positions`.
#[derive(Debug, Clone, PartialEq)]
pub struct ClosePositionResult {
    /// The position's symbol.
    pub symbol: String,
    /// The per-position HTTP status (200 when a closing order was placed).
    pub status: u16,
    /// The closing order, or Alpaca's error for this position.
    pub outcome: Result<AlpacaOrder, AlpacaError>,
}

/// One element of the 207 answer to `DELETE /v2/orders`.
#[derive(Debug, Clone, PartialEq)]
pub struct CancelOrderResult {
    /// The order id.
    pub id: String,
    /// The per-order HTTP status (200 when the cancel request was accepted).
    pub status: u16,
    /// The element's `body`, when Alpaca sent one.
    pub body: Option<Value>,
}

impl CancelOrderResult {
    /// True when the cancel request was accepted (2xx). Cancellation is asynchronous: the
    /// order may still be `pending_cancel`.
    #[must_use]
    pub fn accepted(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// A `PATCH /v2/account/configurations` body: only the fields set are sent; Alpaca leaves the
/// others unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct ConfigurationPatch {
    /// Long-only mode: sells that would open or deepen a short are refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_shorting: Option<bool>,
    /// Refuse every new order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suspend_trade: Option<bool>,
    /// `all` or `none`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trade_confirm_email: Option<String>,
    /// Fractional trading.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fractional_trading: Option<bool>,
    /// `"1"`, `"2"` or `"4"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_margin_multiplier: Option<String>,
    /// 0..3.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_options_trading_level: Option<u8>,
    /// PTP entries without exception.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ptp_no_exception_entry: Option<bool>,
    /// Overnight trading disabled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disable_overnight_trading: Option<bool>,
}

impl ConfigurationPatch {
    /// `{"no_shorting": value}`.
    #[must_use]
    pub fn no_shorting(value: bool) -> Self {
        Self { no_shorting: Some(value), ..Self::default() }
    }

    /// `{"suspend_trade": value}`.
    #[must_use]
    pub fn suspend_trade(value: bool) -> Self {
        Self { suspend_trade: Some(value), ..Self::default() }
    }
}

#[derive(Deserialize)]
struct RawCloseResult {
    #[serde(default)]
    symbol: String,
    #[serde(default)]
    status: Option<u16>,
    #[serde(default)]
    body: Value,
}

#[derive(Deserialize)]
struct RawCancelResult {
    id: String,
    status: u16,
    #[serde(default)]
    body: Option<Value>,
}

/// An empty 2xx body is an empty list (Alpaca's answer with nothing to close is unverified).
fn list<T: serde::de::DeserializeOwned>(body: &[u8], what: &str) -> Result<Vec<T>, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Vec::new());
    }
    serde_json::from_slice(body).map_err(|e| format!("{what} body: {e}"))
}

fn parse_close_all(body: &[u8]) -> Result<Vec<ClosePositionResult>, String> {
    let raw: Vec<RawCloseResult> = list(body, "close-all-positions")?;
    raw.into_iter()
        .enumerate()
        .map(|(i, r)| {
            // `status` is required by the spec; without it, an order body means success.
            let status = r.status.unwrap_or(if r.body.get("id").is_some() { 200 } else { 0 });
            let outcome = if (200..300).contains(&status) {
                let order: AlpacaOrder = serde_json::from_value(r.body)
                    .map_err(|e| format!("[{i}] ({}): status {status} but the body is not an order: {e}", r.symbol))?;
                Ok(order)
            } else {
                // A per-symbol error is server text inside a 2xx body: redacted like any error.
                let mut e = serde_json::from_value::<AlpacaError>(r.body.clone())
                    .unwrap_or_else(|_| AlpacaError { message: r.body.to_string(), ..AlpacaError::default() });
                e.message = crate::redact::redact(&e.message);
                Err(e)
            };
            Ok(ClosePositionResult { symbol: r.symbol, status, outcome })
        })
        .collect()
}

impl AlpacaClient {
    /// `DELETE /v2/positions/{symbol}`: closes the whole position (long or short) with a
    /// market order the broker sizes; returns that order.
    ///
    /// # Errors
    /// `BadTarget` (nothing sent) for a symbol that cannot name one position; `NotFound` when
    /// there is no position; `Rejected` (403 40310000) when its shares are held by open
    /// orders; transport and 5xx errors leave the outcome unknown.
    pub async fn close_position(&self, symbol: &str) -> Result<AlpacaOrder, BrokerError> {
        let endpoint = Endpoint::ClosePosition;
        let url = self.item_url(endpoint, "positions", symbol, Item::Symbol)?;
        let reply = self.write(endpoint, url, None).await?;
        self.parse(endpoint, &reply, |b| serde_json::from_slice(b).map_err(|e| format!("order body: {e}")))
    }

    /// `DELETE /v2/positions` (with `cancel_orders=true` when asked): one result per position,
    /// each either the closing order or Alpaca's error for it (HTTP 207).
    ///
    /// # Errors
    /// The request as a whole failed (5xx "failed to liquidate", transport, auth).
    pub async fn close_all_positions(&self, cancel_orders: bool) -> Result<Vec<ClosePositionResult>, BrokerError> {
        let endpoint = Endpoint::CloseAllPositions;
        let query: &[(&str, &str)] = if cancel_orders { &[("cancel_orders", "true")] } else { &[] };
        let reply = self.write(endpoint, self.url(&["positions"], query), None).await?;
        self.parse(endpoint, &reply, parse_close_all)
    }

    /// `DELETE /v2/orders/{id}`: asks the broker to cancel one order (204).
    ///
    /// # Errors
    /// `BadTarget` (nothing sent) for an id that is not a UUID; `NotFound` (404) for an
    /// unknown order; `Rejected` (422 42210000) for one that is already filled, cancelled or
    /// expired.
    pub async fn cancel_order(&self, id: &str) -> Result<(), BrokerError> {
        let url = self.item_url(Endpoint::CancelOrder, "orders", id, Item::OrderId)?;
        self.write(Endpoint::CancelOrder, url, None).await.map(|_| ())
    }

    /// `DELETE /v2/orders`: asks the broker to cancel every open order; one `(id, status)`
    /// per order (HTTP 207).
    ///
    /// # Errors
    /// The request as a whole failed.
    pub async fn cancel_all_orders(&self) -> Result<Vec<CancelOrderResult>, BrokerError> {
        let endpoint = Endpoint::CancelAllOrders;
        let reply = self.write(endpoint, self.url(&["orders"], &[]), None).await?;
        self.parse(endpoint, &reply, |b| {
            let raw: Vec<RawCancelResult> = list(b, "cancel-all-orders")?;
            Ok(raw.into_iter().map(|r| CancelOrderResult { id: r.id, status: r.status, body: r.body }).collect())
        })
    }

    /// `PATCH /v2/account/configurations` with only the fields set; returns the complete
    /// configuration after the change.
    ///
    /// # Errors
    /// The request failed, or the answer was not a configuration object.
    pub async fn patch_configuration(
        &self,
        patch: &ConfigurationPatch,
    ) -> Result<AlpacaAccountConfiguration, BrokerError> {
        let endpoint = Endpoint::PatchConfigurations;
        let body = serde_json::to_value(patch).unwrap_or(Value::Null);
        let reply = self.write(endpoint, self.url(&["account", "configurations"], &[]), Some(&body)).await?;
        self.parse(endpoint, &reply, |b| {
            serde_json::from_slice(b).map_err(|e| format!("account configurations body: {e}"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_all_mixes_orders_and_errors() {
        let body = br#"[
          {"symbol":"TSLA","status":200,"body":{"id":"28a8ef73-bb0f-40ba-998e-f8dbbdb9e8a9","symbol":"TSLA","side":"sell","qty":"10","status":"accepted"}},
          {"symbol":"MSFT","status":403,"body":{"code":40310000,"message":"insufficient qty available for order (requested: 15, available: 0)","symbol":"MSFT","existing_qty":"-15","held_for_orders":"-15","available":"0"}}
        ]"#;
        let r = parse_close_all(body).unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].outcome.as_ref().unwrap().id, "28a8ef73-bb0f-40ba-998e-f8dbbdb9e8a9");
        let e = r[1].outcome.as_ref().unwrap_err();
        assert_eq!((r[1].status, e.code), (403, Some(40_310_000)));
        assert!(parse_close_all(b"").unwrap().is_empty());
        assert!(parse_close_all(br#"[{"symbol":"X","status":200,"body":{"code":1}}]"#).is_err());
    }

    #[test]
    fn patch_sends_only_what_is_set() {
        assert_eq!(serde_json::to_string(&ConfigurationPatch::no_shorting(true)).unwrap(), r#"{"no_shorting":true}"#);
        assert_eq!(serde_json::to_string(&ConfigurationPatch::default()).unwrap(), "{}");
    }
}
