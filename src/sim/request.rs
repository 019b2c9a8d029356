//! What clients send: order bodies, replace bodies, configuration patches and query strings.
//!
//! Both styles of the SDKs are accepted (alpaca-api.md §6.2, §7.3): decimals as JSON numbers or
//! strings, `null` and `""` meaning "absent", booleans as JSON booleans or strings, and booleans
//! in query strings in any case (`true`, `True`, `TRUE`). Every rejection is an Alpaca error
//! body (422 40010001 for a bad field, 400 40010000 for a body that is not a JSON object).

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde_json::{Map, Value};

use super::error::ApiError;
use super::order::{OrderType, TimeInForce};
use crate::model::OrderSide;

/// The longest accepted `client_order_id`.
pub const MAX_CLIENT_ORDER_ID: usize = 128;

/// `POST /v2/orders`, parsed and checked field by field (the account-dependent rules live in
/// the broker).
#[derive(Debug, Clone, PartialEq)]
pub struct OrderRequest {
    /// Ticker.
    pub symbol: String,
    /// Buy or sell.
    pub side: OrderSide,
    /// Type.
    pub kind: OrderType,
    /// Time in force.
    pub time_in_force: TimeInForce,
    /// Shares (exactly one of `qty` and `notional`).
    pub qty: Option<Decimal>,
    /// Dollars.
    pub notional: Option<Decimal>,
    /// Limit price.
    pub limit_price: Option<Decimal>,
    /// Stop price.
    pub stop_price: Option<Decimal>,
    /// Trailing dollars.
    pub trail_price: Option<Decimal>,
    /// Trailing percent.
    pub trail_percent: Option<Decimal>,
    /// Extended hours.
    pub extended_hours: bool,
    /// The client's id, when given.
    pub client_order_id: Option<String>,
}

impl OrderRequest {
    /// Parses and validates a JSON body.
    ///
    /// # Errors
    /// 400 when the body is not a JSON object; 422 40010001 naming the first bad field.
    pub fn from_json(body: &[u8]) -> Result<Self, ApiError> {
        let map = object(body)?;
        let symbol = string(&map, "symbol")?.ok_or_else(|| ApiError::invalid("symbol is required"))?;
        crate::model::Symbol::new_checked(&symbol).map_err(|_| ApiError::invalid("invalid symbol"))?;
        let side = match string(&map, "side")? {
            Some(s) => OrderSide::parse(&s).ok_or_else(|| ApiError::invalid("invalid side"))?,
            None => return Err(ApiError::invalid("side is required")),
        };
        let kind_text = match string(&map, "type")? {
            Some(t) => Some(t),
            None => string(&map, "order_type")?,
        };
        let kind = match kind_text.as_deref() {
            Some(t) => OrderType::parse(t).ok_or_else(|| ApiError::invalid("invalid order type"))?,
            None => return Err(ApiError::invalid("order type is required")),
        };
        let time_in_force = match string(&map, "time_in_force")?.as_deref() {
            Some(t) => TimeInForce::parse(t).ok_or_else(|| ApiError::invalid("invalid time_in_force"))?,
            None => return Err(ApiError::invalid("time_in_force is required")),
        };
        if let Some(class) = string(&map, "order_class")?
            && class != "simple"
        {
            return Err(ApiError::invalid(format!(
                "order_class `{class}` is not supported by the simulator (only simple orders)"
            )));
        }
        let req = Self {
            symbol,
            side,
            kind,
            time_in_force,
            qty: decimal(&map, "qty")?,
            notional: decimal(&map, "notional")?,
            limit_price: decimal(&map, "limit_price")?,
            stop_price: decimal(&map, "stop_price")?,
            trail_price: decimal(&map, "trail_price")?,
            trail_percent: decimal(&map, "trail_percent")?,
            extended_hours: boolean(&map, "extended_hours")?.unwrap_or(false),
            client_order_id: string(&map, "client_order_id")?,
        };
        req.validate()?;
        Ok(req)
    }

    /// The rules that depend only on the request itself.
    ///
    /// # Errors
    /// 422 40010001 with a sentence naming the rule.
    pub fn validate(&self) -> Result<(), ApiError> {
        match (self.qty, self.notional) {
            (Some(_), Some(_)) => return Err(ApiError::invalid("only one of qty or notional can be specified")),
            (None, None) => return Err(ApiError::invalid("qty or notional is required")),
            (Some(q), None) if q <= Decimal::ZERO => return Err(ApiError::invalid("qty must be > 0")),
            (None, Some(n)) if n <= Decimal::ZERO => return Err(ApiError::invalid("notional must be > 0")),
            _ => {}
        }
        if self.notional.is_some() && (self.kind != OrderType::Market || self.time_in_force != TimeInForce::Day) {
            return Err(ApiError::invalid("notional orders must be market orders with time_in_force day"));
        }
        if self.qty.is_some_and(|q| !q.fract().is_zero())
            && (!matches!(self.kind, OrderType::Market | OrderType::Limit) || self.time_in_force != TimeInForce::Day)
        {
            return Err(ApiError::invalid("fractional orders must be market or limit orders with time_in_force day"));
        }
        if self.kind.needs_limit() && self.limit_price.is_none() {
            return Err(ApiError::invalid(format!("limit_price is required for {} orders", self.kind.as_str())));
        }
        if !self.kind.needs_limit() && self.limit_price.is_some() {
            return Err(ApiError::invalid(format!("limit_price is not allowed for {} orders", self.kind.as_str())));
        }
        if self.kind.needs_stop() && self.stop_price.is_none() {
            return Err(ApiError::invalid(format!("stop_price is required for {} orders", self.kind.as_str())));
        }
        if !self.kind.needs_stop() && self.stop_price.is_some() {
            return Err(ApiError::invalid(format!("stop_price is not allowed for {} orders", self.kind.as_str())));
        }
        let trails = usize::from(self.trail_price.is_some()) + usize::from(self.trail_percent.is_some());
        if self.kind == OrderType::TrailingStop && trails != 1 {
            return Err(ApiError::invalid("trailing_stop orders need exactly one of trail_price or trail_percent"));
        }
        if self.kind != OrderType::TrailingStop && trails != 0 {
            return Err(ApiError::invalid("trail_price and trail_percent are only for trailing_stop orders"));
        }
        for (name, value) in [
            ("limit_price", self.limit_price),
            ("stop_price", self.stop_price),
            ("trail_price", self.trail_price),
            ("trail_percent", self.trail_percent),
        ] {
            if value.is_some_and(|v| v <= Decimal::ZERO) {
                return Err(ApiError::invalid(format!("{name} must be > 0")));
            }
        }
        if self.trail_percent.is_some_and(|p| p >= Decimal::ONE_HUNDRED) {
            return Err(ApiError::invalid("trail_percent must be below 100"));
        }
        if self.extended_hours
            && (self.kind != OrderType::Limit || !matches!(self.time_in_force, TimeInForce::Day | TimeInForce::Gtc))
        {
            return Err(ApiError::invalid("extended hours orders must be limit orders with time_in_force day or gtc"));
        }
        check_client_order_id(self.client_order_id.as_deref())
    }
}

fn check_client_order_id(id: Option<&str>) -> Result<(), ApiError> {
    if id.is_some_and(|c| c.chars().count() > MAX_CLIENT_ORDER_ID) {
        return Err(ApiError::invalid(format!(
            "client_order_id must be no more than {MAX_CLIENT_ORDER_ID} characters"
        )));
    }
    Ok(())
}

/// `PATCH /v2/orders/{order_id}`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReplaceRequest {
    /// New quantity.
    pub qty: Option<Decimal>,
    /// New time in force.
    pub time_in_force: Option<TimeInForce>,
    /// New limit price.
    pub limit_price: Option<Decimal>,
    /// New stop price.
    pub stop_price: Option<Decimal>,
    /// New trail (dollars or percent, as the order was).
    pub trail: Option<Decimal>,
    /// New client id.
    pub client_order_id: Option<String>,
}

impl ReplaceRequest {
    /// Parses a JSON body (an empty body is an empty request).
    ///
    /// # Errors
    /// 400 when the body is not a JSON object; 422 40010001 naming a bad field.
    pub fn from_json(body: &[u8]) -> Result<Self, ApiError> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self::default());
        }
        let map = object(body)?;
        let time_in_force = match string(&map, "time_in_force")? {
            Some(t) => Some(TimeInForce::parse(&t).ok_or_else(|| ApiError::invalid("invalid time_in_force"))?),
            None => None,
        };
        let req = Self {
            qty: decimal(&map, "qty")?,
            time_in_force,
            limit_price: decimal(&map, "limit_price")?,
            stop_price: decimal(&map, "stop_price")?,
            trail: decimal(&map, "trail")?,
            client_order_id: string(&map, "client_order_id")?,
        };
        for (name, value) in
            [("qty", req.qty), ("limit_price", req.limit_price), ("stop_price", req.stop_price), ("trail", req.trail)]
        {
            if value.is_some_and(|v| v <= Decimal::ZERO) {
                return Err(ApiError::invalid(format!("{name} must be > 0")));
            }
        }
        check_client_order_id(req.client_order_id.as_deref())?;
        Ok(req)
    }

    /// Nothing to change.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// A change to the account configurations. `None` leaves a field unchanged (alpaca-py sends
/// the whole model, nulls included); unknown fields are ignored.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConfigPatch {
    /// `all` or `none`.
    pub trade_confirm_email: Option<String>,
    /// New orders blocked.
    pub suspend_trade: Option<bool>,
    /// Long-only.
    pub no_shorting: Option<bool>,
    /// Fractional trading.
    pub fractional_trading: Option<bool>,
    /// `1`, `2` or `4`.
    pub max_margin_multiplier: Option<String>,
    /// 0..3.
    pub max_options_trading_level: Option<u8>,
    /// PTP entries.
    pub ptp_no_exception_entry: Option<bool>,
    /// Overnight trading disabled.
    pub disable_overnight_trading: Option<bool>,
}

impl ConfigPatch {
    /// Parses a JSON body.
    ///
    /// # Errors
    /// 400 when the body is not a JSON object; 422 40010001 naming a bad field.
    pub fn from_json(body: &[u8]) -> Result<Self, ApiError> {
        Self::from_map(&object(body)?)
    }

    /// Reads the fields of a JSON object.
    ///
    /// # Errors
    /// 422 40010001 naming a bad field.
    pub fn from_map(map: &Map<String, Value>) -> Result<Self, ApiError> {
        let trade_confirm_email = string(map, "trade_confirm_email")?;
        if trade_confirm_email.as_deref().is_some_and(|t| t != "all" && t != "none") {
            return Err(ApiError::invalid("trade_confirm_email must be `all` or `none`"));
        }
        let max_margin_multiplier = decimal(map, "max_margin_multiplier")?.map(|m| m.normalize().to_string());
        if max_margin_multiplier.as_deref().is_some_and(|m| !["1", "2", "4"].contains(&m)) {
            return Err(ApiError::invalid("max_margin_multiplier must be 1, 2 or 4"));
        }
        let max_options_trading_level = match decimal(map, "max_options_trading_level")? {
            None => None,
            Some(level) => Some(
                u8::try_from(level.normalize().mantissa())
                    .ok()
                    .filter(|l| *l <= 3 && level.fract().is_zero())
                    .ok_or_else(|| ApiError::invalid("max_options_trading_level must be 0, 1, 2 or 3"))?,
            ),
        };
        Ok(Self {
            trade_confirm_email,
            suspend_trade: boolean(map, "suspend_trade")?,
            no_shorting: boolean(map, "no_shorting")?,
            fractional_trading: boolean(map, "fractional_trading")?,
            max_margin_multiplier,
            max_options_trading_level,
            ptp_no_exception_entry: boolean(map, "ptp_no_exception_entry")?,
            disable_overnight_trading: boolean(map, "disable_overnight_trading")?,
        })
    }
}

/// `status` of `GET /v2/orders`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusFilter {
    /// Not terminal (the default).
    Open,
    /// Terminal.
    Closed,
    /// Everything.
    All,
}

/// The query of `GET /v2/orders`.
#[derive(Debug, Clone, PartialEq)]
pub struct OrdersQuery {
    /// Which orders.
    pub status: StatusFilter,
    /// At most this many (1..=500, default 50).
    pub limit: usize,
    /// Submitted strictly after.
    pub after: Option<DateTime<Utc>>,
    /// Submitted strictly before.
    pub until: Option<DateTime<Utc>>,
    /// Oldest first.
    pub ascending: bool,
    /// Only these symbols.
    pub symbols: Option<Vec<String>>,
    /// Only this side.
    pub side: Option<OrderSide>,
}

impl Default for OrdersQuery {
    fn default() -> Self {
        Self {
            status: StatusFilter::Open,
            limit: 50,
            after: None,
            until: None,
            ascending: false,
            symbols: None,
            side: None,
        }
    }
}

impl OrdersQuery {
    /// Reads the query parameters (unknown ones, like `asset_class`, are ignored).
    ///
    /// # Errors
    /// 422 40010001 naming a bad parameter.
    pub fn from_query(q: &HashMap<String, String>) -> Result<Self, ApiError> {
        let mut out = Self::default();
        if let Some(s) = param(q, "status") {
            out.status = match s.to_ascii_lowercase().as_str() {
                "open" => StatusFilter::Open,
                "closed" => StatusFilter::Closed,
                "all" => StatusFilter::All,
                _ => return Err(ApiError::invalid("status must be open, closed or all")),
            };
        }
        if let Some(l) = param(q, "limit") {
            out.limit = l
                .parse::<usize>()
                .ok()
                .filter(|l| (1..=500).contains(l))
                .ok_or_else(|| ApiError::invalid("limit must be an integer from 1 to 500"))?;
        }
        out.after = param(q, "after").map(|t| query_time(t, "after")).transpose()?;
        out.until = param(q, "until").map(|t| query_time(t, "until")).transpose()?;
        if let Some(d) = param(q, "direction") {
            out.ascending = match d.to_ascii_lowercase().as_str() {
                "asc" => true,
                "desc" => false,
                _ => return Err(ApiError::invalid("direction must be asc or desc")),
            };
        }
        if let Some(n) = param(q, "nested") {
            query_bool(n, "nested")?;
        }
        if let Some(s) = param(q, "symbols") {
            let list: Vec<String> = s.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect();
            if !list.is_empty() {
                out.symbols = Some(list);
            }
        }
        if let Some(s) = param(q, "side") {
            out.side = Some(
                OrderSide::parse(&s.to_ascii_lowercase())
                    .ok_or_else(|| ApiError::invalid("side must be buy or sell"))?,
            );
        }
        Ok(out)
    }
}

/// The query of `DELETE /v2/positions/{symbol}`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CloseQuery {
    /// Shares to close.
    pub qty: Option<Decimal>,
    /// Percent of the position to close.
    pub percentage: Option<Decimal>,
}

impl CloseQuery {
    /// Reads `qty` and `percentage`.
    ///
    /// # Errors
    /// 422 40010001 when a value is not a number, is out of range, or both are given.
    pub fn from_query(q: &HashMap<String, String>) -> Result<Self, ApiError> {
        let read = |name: &str| {
            param(q, name)
                .map(|v| {
                    crate::num::parse_decimal(v)
                        .and_then(super::scenario::in_range)
                        .map_err(|_| ApiError::invalid(format!("invalid {name}")))
                })
                .transpose()
        };
        let out = Self { qty: read("qty")?, percentage: read("percentage")? };
        if out.qty.is_some() && out.percentage.is_some() {
            return Err(ApiError::invalid("only one of qty or percentage can be specified"));
        }
        if out.qty.is_some_and(|q| q <= Decimal::ZERO) {
            return Err(ApiError::invalid("qty must be > 0"));
        }
        if out.percentage.is_some_and(|p| p <= Decimal::ZERO || p > Decimal::ONE_HUNDRED) {
            return Err(ApiError::invalid("percentage must be between 0 and 100"));
        }
        Ok(out)
    }
}

/// A non-empty query parameter.
#[must_use]
pub fn param<'a>(q: &'a HashMap<String, String>, name: &str) -> Option<&'a str> {
    q.get(name).map(String::as_str).filter(|v| !v.trim().is_empty())
}

/// A boolean query value in any case: `true`, `True`, `TRUE`, `false`...
///
/// # Errors
/// 422 40010001 naming the parameter.
pub fn query_bool(value: &str, name: &str) -> Result<bool, ApiError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(ApiError::invalid(format!("{name} must be true or false"))),
    }
}

/// A timestamp in a query: RFC 3339 (a `+` decoded to a space is tolerated) or a date (UTC
/// midnight).
///
/// # Errors
/// 422 40010001 naming the parameter.
pub fn query_time(value: &str, name: &str) -> Result<DateTime<Utc>, ApiError> {
    let v = value.trim().replace(' ', "+");
    if let Ok(t) = DateTime::parse_from_rfc3339(&v) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(d) = NaiveDate::parse_from_str(&v, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc());
    }
    crate::timestamp::parse_timestamp(&v).map_err(|_| ApiError::invalid(format!("invalid {name}")))
}

/// A date in a query: `YYYY-MM-DD`, or the date part of an RFC 3339 timestamp.
///
/// # Errors
/// 422 40010001 naming the parameter.
pub fn query_date(value: &str, name: &str) -> Result<NaiveDate, ApiError> {
    let v = value.trim();
    NaiveDate::parse_from_str(v.get(..10).unwrap_or(v), "%Y-%m-%d")
        .map_err(|_| ApiError::invalid(format!("invalid {name}: expected YYYY-MM-DD")))
}

fn object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(ApiError::bad_body("request body must be a JSON object")),
        Err(e) => Err(ApiError::bad_body(format!("request body format is invalid: {e}"))),
    }
}

/// A string field; `null` and `""` are absent.
fn string(map: &Map<String, Value>, key: &str) -> Result<Option<String>, ApiError> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ApiError::invalid(format!("{key} must be a string"))),
    }
}

/// A decimal field, as a JSON number or a string; `null` and `""` are absent.
fn decimal(map: &Map<String, Value>, key: &str) -> Result<Option<Decimal>, ApiError> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        // alpaca-py sends floats (`180.0`); echo them the way they were meant (`180`).
        Some(v) => crate::num::decimal_from_json(v)
            .and_then(super::scenario::in_range)
            .map(|d| Some(d.normalize()))
            .map_err(|_| ApiError::invalid(format!("invalid {key}"))),
    }
}

/// A boolean field, as a JSON boolean or a string in any case; `null` and `""` are absent.
fn boolean(map: &Map<String, Value>, key: &str) -> Result<Option<bool>, ApiError> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => query_bool(s, key).map(Some),
        Some(_) => Err(ApiError::invalid(format!("{key} must be true or false"))),
    }
}

#[cfg(test)]
mod tests {
    use rust_decimal::dec;

    use super::*;

    fn order(body: &str) -> Result<OrderRequest, ApiError> {
        OrderRequest::from_json(body.as_bytes())
    }

    #[test]
    fn alpaca_py_body_with_numbers() {
        let r = order(r#"{"symbol":"AAPL","qty":10.0,"side":"buy","type":"market","time_in_force":"day","client_order_id":"abc-1"}"#)
            .unwrap();
        assert_eq!(r.qty.unwrap().to_string(), "10", "echoed as the client meant it");
        assert_eq!(r.side, OrderSide::Buy);
        assert_eq!(r.kind, OrderType::Market);
        assert_eq!(r.client_order_id.as_deref(), Some("abc-1"));
        let r = order(r#"{"symbol":"AAPL","qty":1.5,"side":"sell","type":"limit","time_in_force":"day","extended_hours":true,"limit_price":101.25}"#).unwrap();
        assert_eq!(r.limit_price, Some(dec!(101.25)));
        assert!(r.extended_hours);
    }

    #[test]
    fn go_style_body_with_strings_nulls_and_empties() {
        let r = order(
            r#"{"symbol":"MSFT","qty":"15","notional":null,"side":"sell","type":"limit","limit_price":"412.30",
               "stop_price":null,"time_in_force":"day","client_order_id":"","order_class":"","extended_hours":"false"}"#,
        )
        .unwrap();
        assert_eq!(r.qty, Some(dec!(15)));
        assert_eq!(r.client_order_id, None);
        assert!(!r.extended_hours);
    }

    #[test]
    fn field_rules() {
        let base = |extra: &str| format!(r#"{{"symbol":"A","side":"buy","time_in_force":"day",{extra}}}"#);
        let msg = |extra: &str| order(&base(extra)).unwrap_err().body.message;
        assert_eq!(msg(r#""type":"market""#), "qty or notional is required");
        assert_eq!(msg(r#""type":"market","qty":1,"notional":5"#), "only one of qty or notional can be specified");
        assert_eq!(msg(r#""type":"market","qty":0"#), "qty must be > 0");
        assert_eq!(msg(r#""type":"limit","qty":1"#), "limit_price is required for limit orders");
        assert_eq!(
            msg(r#""type":"stop_limit","qty":1,"limit_price":1"#),
            "stop_price is required for stop_limit orders"
        );
        assert!(msg(r#""type":"trailing_stop","qty":1"#).contains("exactly one"));
        assert_eq!(msg(r#""type":"bogus","qty":1"#), "invalid order type");
        assert_eq!(msg(r#""type":"market","qty":"x""#), "invalid qty");
        assert!(msg(r#""type":"market","qty":1,"order_class":"bracket""#).contains("not supported"));
        assert!(msg(r#""type":"market","qty":1,"extended_hours":true"#).contains("extended hours"));
        assert!(msg(r#""type":"stop","qty":1.5,"stop_price":3"#).contains("fractional"));
        let long_id = "x".repeat(129);
        assert!(msg(&format!(r#""type":"market","qty":1,"client_order_id":"{long_id}""#)).contains("128"));
        let e = order(r#"{"symbol":"A","side":"buy","type":"market","qty":1,"time_in_force":"gtd"}"#).unwrap_err();
        assert_eq!((e.status, e.body.code), (422, Some(40_010_001)));
        assert_eq!(order("[1]").unwrap_err().status, 400);
        assert_eq!(order("{").unwrap_err().status, 400);
    }

    #[test]
    fn config_patch_reads_what_alpaca_py_sends() {
        let p = ConfigPatch::from_json(
            br#"{"dtbp_check":null,"fractional_trading":true,"max_margin_multiplier":"4","no_shorting":true,
                 "pdt_check":null,"suspend_trade":false,"trade_confirm_email":"all","ptp_no_exception_entry":false,
                 "max_options_trading_level":null}"#,
        )
        .unwrap();
        assert_eq!(p.no_shorting, Some(true));
        assert_eq!(p.max_margin_multiplier.as_deref(), Some("4"));
        assert_eq!(p.max_options_trading_level, None);
        assert_eq!(
            ConfigPatch::from_json(br#"{"max_margin_multiplier":2}"#).unwrap().max_margin_multiplier.unwrap(),
            "2"
        );
        assert!(ConfigPatch::from_json(br#"{"max_margin_multiplier":"3"}"#).is_err());
        assert!(ConfigPatch::from_json(br#"{"trade_confirm_email":"some"}"#).is_err());
        assert!(ConfigPatch::from_json(br#"{"max_options_trading_level":4}"#).is_err());
        assert_eq!(
            ConfigPatch::from_json(br#"{"max_options_trading_level":2}"#).unwrap().max_options_trading_level,
            Some(2)
        );
        assert_eq!(ConfigPatch::from_json(br#"{"no_shorting":"TRUE"}"#).unwrap().no_shorting, Some(true));
    }

    fn q(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn orders_query() {
        let o = OrdersQuery::from_query(&q(&[])).unwrap();
        assert_eq!(o, OrdersQuery::default());
        let o = OrdersQuery::from_query(&q(&[
            ("status", "closed"),
            ("limit", "500"),
            ("after", "2024-05-01T00:00:00+00:00"),
            ("until", "2024-05-02T00:00:00 00:00"),
            ("direction", "asc"),
            ("nested", "True"),
            ("symbols", "AAPL,MSFT"),
            ("side", "sell"),
        ]))
        .unwrap();
        assert_eq!(o.status, StatusFilter::Closed);
        assert_eq!(o.limit, 500);
        assert_eq!(o.until.unwrap().to_rfc3339(), "2024-05-02T00:00:00+00:00");
        assert!(o.ascending);
        assert_eq!(o.symbols.unwrap(), ["AAPL", "MSFT"]);
        assert_eq!(o.side, Some(OrderSide::Sell));
        for bad in [("status", "pending"), ("limit", "501"), ("limit", "0"), ("after", "yesterday"), ("nested", "yes")]
        {
            assert_eq!(OrdersQuery::from_query(&q(&[bad])).unwrap_err().status, 422, "{bad:?}");
        }
    }

    #[test]
    fn booleans_in_any_case() {
        for t in ["true", "True", "TRUE"] {
            assert!(query_bool(t, "x").unwrap());
        }
        assert!(!query_bool("False", "x").unwrap());
        assert!(query_bool("1", "x").is_err());
    }

    #[test]
    fn close_query() {
        assert_eq!(CloseQuery::from_query(&q(&[("qty", "3")])).unwrap().qty, Some(dec!(3)));
        assert_eq!(CloseQuery::from_query(&q(&[("percentage", "50")])).unwrap().percentage, Some(dec!(50)));
        assert!(CloseQuery::from_query(&q(&[("qty", "3"), ("percentage", "50")])).is_err());
        assert!(CloseQuery::from_query(&q(&[("percentage", "101")])).is_err());
        assert!(CloseQuery::from_query(&q(&[("qty", "-1")])).is_err());
    }

    #[test]
    fn replace_request() {
        let r = ReplaceRequest::from_json(br#"{"qty":5,"limit_price":"101.5","time_in_force":"gtc"}"#).unwrap();
        assert_eq!(r.qty, Some(dec!(5)));
        assert_eq!(r.time_in_force, Some(TimeInForce::Gtc));
        assert!(ReplaceRequest::from_json(b"").unwrap().is_empty());
        assert!(ReplaceRequest::from_json(br#"{"qty":0}"#).is_err());
    }
}
