//! Alpaca wire types: the JSON objects exactly as the Trading API sends them (decimals as
//! strings, signed `qty`), shared by the client (reading), the replay collector and the
//! simulator (writing). Unknown fields are ignored; fields Alpaca does not guarantee are
//! optional, including those removed on 2026-07-06 (`pattern_day_trader`, `daytrade_count`,
//! `daytrading_buying_power`, `dtbp_check`, `pdt_check`).

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::model::{Account, AccountConfiguration, MarketClock, Order, OrderSide, Position, Side, Symbol};

/// Decimals on the wire are strings; numbers are accepted too (some SDKs send them).
mod dec_str {
    use std::fmt;

    use rust_decimal::Decimal;
    use serde::de::{self, IgnoredAny, MapAccess, SeqAccess, Visitor};
    use serde::{Deserializer, Serializer};

    use crate::num::parse_decimal;

    #[expect(clippy::ref_option, reason = "serde's `with` passes a reference to the field")]
    pub(super) fn serialize<S: Serializer>(d: &Option<Decimal>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&d.to_string()),
            None => s.serialize_none(),
        }
    }

    /// Reads the value in place (no intermediate `serde_json::Value`: a 2,000-position body
    /// has 28,000 decimals). Null and `""` are `None`; the errors are `decimal_from_json`'s,
    /// raised after the whole value was read, as they were when it went through a `Value`.
    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Decimal>, D::Error> {
        d.deserialize_any(DecimalVisitor)
    }

    struct DecimalVisitor;

    impl<'de> Visitor<'de> for DecimalVisitor {
        type Value = Option<Decimal>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a decimal as a string or a number")
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(self)
        }

        fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
            if s.is_empty() { Ok(None) } else { parse_decimal(s).map(Some).map_err(E::custom) }
        }

        fn visit_i64<E: de::Error>(self, i: i64) -> Result<Self::Value, E> {
            Ok(Some(Decimal::from(i)))
        }

        fn visit_u64<E: de::Error>(self, u: u64) -> Result<Self::Value, E> {
            Ok(Some(Decimal::from(u)))
        }

        fn visit_f64<E: de::Error>(self, f: f64) -> Result<Self::Value, E> {
            // The shortest text of the float, as `decimal_from_json` reads a JSON number.
            let text = serde_json::Number::from_f64(f).map_or_else(|| f.to_string(), |n| n.to_string());
            parse_decimal(&text).map(Some).map_err(E::custom)
        }

        fn visit_bool<E: de::Error>(self, b: bool) -> Result<Self::Value, E> {
            Err(E::custom(format!("is the boolean {b}, expected a number")))
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Err(de::Error::custom("is an array, expected a number"))
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            Err(de::Error::custom("is an object, expected a number"))
        }
    }
}

/// A position object (`GET /v2/positions`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct AlpacaPosition {
    /// UUID.
    #[serde(default)]
    pub asset_id: String,
    /// Ticker.
    pub symbol: String,
    /// Exchange, e.g. `NASDAQ`.
    #[serde(default)]
    pub exchange: String,
    /// `us_equity`, ...
    #[serde(default)]
    pub asset_class: String,
    /// Marginable.
    #[serde(default)]
    pub asset_marginable: bool,
    /// Signed quantity.
    #[serde(with = "dec_str")]
    pub qty: Option<Decimal>,
    /// Not held for orders.
    #[serde(default, with = "dec_str")]
    pub qty_available: Option<Decimal>,
    /// Average entry price.
    #[serde(default, with = "dec_str")]
    pub avg_entry_price: Option<Decimal>,
    /// `long` or `short`.
    #[serde(default)]
    pub side: String,
    /// Signed market value.
    #[serde(default, with = "dec_str")]
    pub market_value: Option<Decimal>,
    /// Signed cost basis.
    #[serde(default, with = "dec_str")]
    pub cost_basis: Option<Decimal>,
    /// Unrealized P&L.
    #[serde(default, with = "dec_str")]
    pub unrealized_pl: Option<Decimal>,
    /// Unrealized P&L as a fraction.
    #[serde(default, with = "dec_str")]
    pub unrealized_plpc: Option<Decimal>,
    /// Intraday unrealized P&L.
    #[serde(default, with = "dec_str")]
    pub unrealized_intraday_pl: Option<Decimal>,
    /// Intraday unrealized P&L as a fraction.
    #[serde(default, with = "dec_str")]
    pub unrealized_intraday_plpc: Option<Decimal>,
    /// Last price.
    #[serde(default, with = "dec_str")]
    pub current_price: Option<Decimal>,
    /// Yesterday's close.
    #[serde(default, with = "dec_str")]
    pub lastday_price: Option<Decimal>,
    /// Change today as a fraction.
    #[serde(default, with = "dec_str")]
    pub change_today: Option<Decimal>,
}

impl AlpacaPosition {
    /// The domain position.
    ///
    /// # Errors
    /// When the symbol or quantity is missing or invalid, or `side` contradicts the sign.
    pub fn to_domain(&self) -> Result<Position, String> {
        let symbol = Symbol::new_checked(&self.symbol)?;
        let qty = self.qty.ok_or_else(|| format!("position {symbol} has no `qty`"))?;
        let side = match self.side.as_str() {
            "long" => Side::Long,
            "short" => Side::Short,
            "" => Side::of_qty(qty).ok_or_else(|| format!("position {symbol} has qty 0 and no side"))?,
            other => return Err(format!("position {symbol} has an unknown side `{other}`")),
        };
        // Alpaca signs short quantities; a positive qty with side=short is normalised. A
        // negative qty marked long is a contradiction no reading makes safe (a short that
        // `side` calls long): malformed.
        let qty = match side {
            Side::Short if qty > Decimal::ZERO => -qty,
            Side::Long if qty < Decimal::ZERO => {
                return Err(format!("position {symbol} has side `long` but a negative qty {qty}"));
            }
            _ => qty,
        };
        Ok(Position {
            symbol,
            qty,
            side,
            avg_entry_price: self.avg_entry_price,
            market_value: self.market_value,
            current_price: self.current_price,
            unrealized_pl: self.unrealized_pl,
            asset_class: self.asset_class.clone(),
        })
    }
}

/// An order object (`GET /v2/orders`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct AlpacaOrder {
    /// UUID.
    pub id: String,
    /// The client's id.
    #[serde(default)]
    pub client_order_id: String,
    /// Created.
    #[serde(default)]
    pub created_at: Option<DateTime<Utc>>,
    /// Updated.
    #[serde(default)]
    pub updated_at: Option<DateTime<Utc>>,
    /// Submitted.
    #[serde(default)]
    pub submitted_at: Option<DateTime<Utc>>,
    /// Filled.
    #[serde(default)]
    pub filled_at: Option<DateTime<Utc>>,
    /// Expired.
    #[serde(default)]
    pub expired_at: Option<DateTime<Utc>>,
    /// Expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    /// Cancelled.
    #[serde(default)]
    pub canceled_at: Option<DateTime<Utc>>,
    /// Failed.
    #[serde(default)]
    pub failed_at: Option<DateTime<Utc>>,
    /// Replaced.
    #[serde(default)]
    pub replaced_at: Option<DateTime<Utc>>,
    /// Replaced by.
    #[serde(default)]
    pub replaced_by: Option<String>,
    /// Replaces.
    #[serde(default)]
    pub replaces: Option<String>,
    /// Asset UUID.
    #[serde(default)]
    pub asset_id: String,
    /// Ticker.
    #[serde(default)]
    pub symbol: String,
    /// Asset class.
    #[serde(default)]
    pub asset_class: String,
    /// Dollar amount.
    #[serde(default, with = "dec_str")]
    pub notional: Option<Decimal>,
    /// Shares.
    #[serde(default, with = "dec_str")]
    pub qty: Option<Decimal>,
    /// Filled shares.
    #[serde(default, with = "dec_str")]
    pub filled_qty: Option<Decimal>,
    /// Average fill price.
    #[serde(default, with = "dec_str")]
    pub filled_avg_price: Option<Decimal>,
    /// Order class (`""`, `simple`, `bracket`, ...).
    #[serde(default)]
    pub order_class: String,
    /// Deprecated copy of `type`.
    #[serde(default)]
    pub order_type: String,
    /// Order type.
    #[serde(default, rename = "type")]
    pub kind: String,
    /// `buy` or `sell`.
    #[serde(default)]
    pub side: String,
    /// Intent, when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position_intent: Option<String>,
    /// Time in force.
    #[serde(default)]
    pub time_in_force: String,
    /// Limit price.
    #[serde(default, with = "dec_str")]
    pub limit_price: Option<Decimal>,
    /// Stop price.
    #[serde(default, with = "dec_str")]
    pub stop_price: Option<Decimal>,
    /// Status.
    #[serde(default)]
    pub status: String,
    /// Extended hours.
    #[serde(default)]
    pub extended_hours: bool,
    /// Legs.
    #[serde(default)]
    pub legs: Option<Vec<AlpacaOrder>>,
    /// Trailing percent.
    #[serde(default, with = "dec_str")]
    pub trail_percent: Option<Decimal>,
    /// Trailing price.
    #[serde(default, with = "dec_str")]
    pub trail_price: Option<Decimal>,
    /// High-water mark.
    #[serde(default, with = "dec_str")]
    pub hwm: Option<Decimal>,
}

impl AlpacaOrder {
    /// The domain order.
    ///
    /// # Errors
    /// When the symbol or side is missing or invalid.
    pub fn to_domain(&self) -> Result<Order, String> {
        let symbol = Symbol::new_checked(&self.symbol).map_err(|e| format!("order {}: {e}", self.id))?;
        let side = OrderSide::parse(&self.side)
            .ok_or_else(|| format!("order {} has an unknown side `{}`", self.id, self.side))?;
        Ok(Order {
            id: self.id.clone(),
            client_order_id: self.client_order_id.clone(),
            symbol,
            side,
            order_type: if self.kind.is_empty() { self.order_type.clone() } else { self.kind.clone() },
            qty: self.qty,
            notional: self.notional,
            filled_qty: self.filled_qty.unwrap_or_default(),
            limit_price: self.limit_price,
            stop_price: self.stop_price,
            status: self.status.clone(),
            created_at: self.created_at,
            submitted_at: self.submitted_at,
            updated_at: self.updated_at,
            filled_at: self.filled_at,
        })
    }
}

/// The account object (`GET /v2/account`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct AlpacaAccount {
    /// UUID.
    pub id: String,
    /// Account number.
    #[serde(default)]
    pub account_number: String,
    /// Upper-case status.
    pub status: String,
    /// Crypto status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crypto_status: Option<String>,
    /// Currency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    /// Cash.
    #[serde(default, with = "dec_str")]
    pub cash: Option<Decimal>,
    /// Buying power.
    #[serde(default, with = "dec_str")]
    pub buying_power: Option<Decimal>,
    /// Reg T buying power.
    #[serde(default, with = "dec_str")]
    pub regt_buying_power: Option<Decimal>,
    /// Non-marginable buying power.
    #[serde(default, with = "dec_str")]
    pub non_marginable_buying_power: Option<Decimal>,
    /// Portfolio value.
    #[serde(default, with = "dec_str")]
    pub portfolio_value: Option<Decimal>,
    /// Equity.
    #[serde(default, with = "dec_str")]
    pub equity: Option<Decimal>,
    /// Yesterday's equity.
    #[serde(default, with = "dec_str")]
    pub last_equity: Option<Decimal>,
    /// Long market value.
    #[serde(default, with = "dec_str")]
    pub long_market_value: Option<Decimal>,
    /// Short market value (negative).
    #[serde(default, with = "dec_str")]
    pub short_market_value: Option<Decimal>,
    /// Position market value.
    #[serde(default, with = "dec_str")]
    pub position_market_value: Option<Decimal>,
    /// Initial margin.
    #[serde(default, with = "dec_str")]
    pub initial_margin: Option<Decimal>,
    /// Maintenance margin.
    #[serde(default, with = "dec_str")]
    pub maintenance_margin: Option<Decimal>,
    /// Multiplier, `"1"`, `"2"` or `"4"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multiplier: Option<String>,
    /// Shorting enabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shorting_enabled: Option<bool>,
    /// Trading blocked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trading_blocked: Option<bool>,
    /// Transfers blocked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transfers_blocked: Option<bool>,
    /// Account blocked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_blocked: Option<bool>,
    /// Trading suspended by the user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trade_suspended_by_user: Option<bool>,
    /// Created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<DateTime<Utc>>,
}

impl AlpacaAccount {
    /// The domain account.
    #[must_use]
    pub fn to_domain(&self) -> Account {
        Account {
            id: self.id.clone(),
            status: self.status.clone(),
            equity: self.equity,
            cash: self.cash,
            buying_power: self.buying_power,
            long_market_value: self.long_market_value,
            short_market_value: self.short_market_value,
            shorting_enabled: self.shorting_enabled,
            trading_blocked: self.trading_blocked,
            account_blocked: self.account_blocked,
            trade_suspended_by_user: self.trade_suspended_by_user,
            currency: self.currency.clone(),
        }
    }
}

/// The clock (`GET /v2/clock`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlpacaClock {
    /// Broker time (Eastern, with offset).
    pub timestamp: DateTime<chrono::FixedOffset>,
    /// Open now.
    pub is_open: bool,
    /// Next open.
    #[serde(default)]
    pub next_open: Option<DateTime<chrono::FixedOffset>>,
    /// Next close.
    #[serde(default)]
    pub next_close: Option<DateTime<chrono::FixedOffset>>,
}

impl AlpacaClock {
    /// The domain clock.
    #[must_use]
    pub fn to_domain(&self) -> MarketClock {
        MarketClock {
            timestamp: self.timestamp.with_timezone(&Utc),
            is_open: self.is_open,
            next_open: self.next_open.map(|t| t.with_timezone(&Utc)),
            next_close: self.next_close.map(|t| t.with_timezone(&Utc)),
        }
    }
}

/// Account configurations (`GET /v2/account/configurations`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct AlpacaAccountConfiguration {
    /// `all` or `none`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trade_confirm_email: Option<String>,
    /// Trading suspended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspend_trade: Option<bool>,
    /// Long-only mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_shorting: Option<bool>,
    /// Fractional trading.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fractional_trading: Option<bool>,
    /// `"1"`, `"2"` or `"4"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_margin_multiplier: Option<String>,
    /// 0..3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_options_trading_level: Option<u8>,
    /// PTP entries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ptp_no_exception_entry: Option<bool>,
    /// Overnight trading disabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_overnight_trading: Option<bool>,
}

impl AlpacaAccountConfiguration {
    /// The domain configuration.
    #[must_use]
    pub fn to_domain(&self) -> AccountConfiguration {
        AccountConfiguration {
            no_shorting: self.no_shorting,
            suspend_trade: self.suspend_trade,
            fractional_trading: self.fractional_trading,
            max_margin_multiplier: self.max_margin_multiplier.clone(),
        }
    }
}

/// An Alpaca error body: `{"code": 40310000, "message": "..."}` (extra fields ignored).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct AlpacaError {
    /// 8-digit code.
    #[serde(default)]
    pub code: Option<u64>,
    /// Message.
    #[serde(default)]
    pub message: String,
    /// The symbol of a rejected order or close (403 insufficient qty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub symbol: Option<String>,
    /// Signed quantity held (403 insufficient qty); a string on the wire.
    #[serde(default, with = "dec_str", skip_serializing_if = "Option::is_none")]
    pub existing_qty: Option<Decimal>,
    /// Quantity held by open orders (403 insufficient qty); a string on the wire.
    #[serde(default, with = "dec_str", skip_serializing_if = "Option::is_none")]
    pub held_for_orders: Option<Decimal>,
    /// Quantity still available (403 insufficient qty); a string on the wire.
    #[serde(default, with = "dec_str", skip_serializing_if = "Option::is_none")]
    pub available: Option<Decimal>,
}

/// Parses the positions body.
///
/// # Errors
/// A sentence naming the element and field that was wrong.
pub fn parse_positions(body: &[u8]) -> Result<Vec<Position>, String> {
    let raw: Vec<AlpacaPosition> = crate::collect::json_from_bytes(body).map_err(|e| format!("positions body: {e}"))?;
    let positions: Vec<Position> = raw
        .iter()
        .enumerate()
        .map(|(i, p)| p.to_domain().map_err(|e| format!("positions[{i}]: {e}")))
        .collect::<Result<_, _>>()?;
    // Alpaca holds one position per symbol. A list that repeats one cannot be trusted: merging
    // or picking either entry could hide a short, so the whole source is malformed.
    no_repeats("positions", positions.iter().map(|p| p.symbol.as_str()), "symbol")?;
    Ok(positions)
}

/// `Err` naming the first key that appears twice in a list (`positions[3]: symbol `AAPL` is
/// also at positions[0]`).
fn no_repeats<'a>(list: &str, keys: impl Iterator<Item = &'a str>, what: &str) -> Result<(), String> {
    let mut seen: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for (i, k) in keys.enumerate() {
        if let Some(first) = seen.insert(k, i) {
            return Err(format!(
                "{list}[{i}]: {what} `{k}` is also at {list}[{first}]; a list that repeats a {what} cannot be trusted"
            ));
        }
    }
    Ok(())
}

/// Parses the open-orders body.
///
/// # Errors
/// A sentence naming the element and field that was wrong.
pub fn parse_orders(body: &[u8]) -> Result<Vec<Order>, String> {
    let raw: Vec<AlpacaOrder> = crate::collect::json_from_bytes(body).map_err(|e| format!("orders body: {e}"))?;
    let orders: Vec<Order> = raw
        .iter()
        .enumerate()
        .map(|(i, o)| o.to_domain().map_err(|e| format!("orders[{i}]: {e}")))
        .collect::<Result<_, _>>()?;
    // An order id is unique; a repeated one (with possibly different quantities or states)
    // cannot be resolved by picking either copy.
    no_repeats("orders", orders.iter().map(|o| o.id.as_str()), "id")?;
    Ok(orders)
}

/// Parses the account body.
///
/// # Errors
/// A sentence naming what was wrong.
pub fn parse_account(body: &[u8]) -> Result<Account, String> {
    serde_json::from_slice::<AlpacaAccount>(body).map(|a| a.to_domain()).map_err(|e| format!("account body: {e}"))
}

/// Parses the clock body.
///
/// # Errors
/// A sentence naming what was wrong.
pub fn parse_clock(body: &[u8]) -> Result<MarketClock, String> {
    serde_json::from_slice::<AlpacaClock>(body).map(|c| c.to_domain()).map_err(|e| format!("clock body: {e}"))
}

/// Parses the account-configurations body.
///
/// # Errors
/// A sentence naming what was wrong.
pub fn parse_configuration(body: &[u8]) -> Result<AccountConfiguration, String> {
    serde_json::from_slice::<AlpacaAccountConfiguration>(body)
        .map(|c| c.to_domain())
        .map_err(|e| format!("account configurations body: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_position_from_the_docs() {
        let body = br#"[{"asset_id":"7e215741-b6f9-40ba-b2fc-4dd0a3aca6e9","symbol":"MSFT","exchange":"NASDAQ",
          "asset_class":"us_equity","asset_marginable":true,"qty":"-15","qty_available":"-15",
          "avg_entry_price":"412.30","side":"short","market_value":"-6226.50","cost_basis":"-6184.50",
          "unrealized_pl":"-42.00","unrealized_plpc":"-0.0067911715","unrealized_intraday_pl":"43.50",
          "unrealized_intraday_plpc":"0.0069377990","current_price":"415.10","lastday_price":"418.00",
          "change_today":"-0.0069377990","some_future_field":{"x":1}}]"#;
        let p = parse_positions(body).unwrap();
        assert_eq!(p[0].qty.to_string(), "-15");
        assert_eq!(p[0].side, Side::Short);
        assert_eq!(p[0].market_value.unwrap().to_string(), "-6226.50");
    }

    /// Issue 12 (d): a positions list naming a symbol twice (a long and a short AAPL) was
    /// merged downstream (a map by symbol kept one entry), so a short could vanish. The list is
    /// now malformed, never merged or picked from.
    #[test]
    fn a_positions_list_repeating_a_symbol_is_malformed_never_merged() {
        let body = br#"[{"symbol":"AAPL","qty":"10","side":"long"},{"symbol":"MSFT","qty":"1"},
                        {"symbol":"AAPL","qty":"-40","side":"short"}]"#;
        let e = parse_positions(body).unwrap_err();
        assert_eq!(
            e,
            "positions[2]: symbol `AAPL` is also at positions[0]; a list that repeats a symbol cannot be trusted"
        );
        // Symbols are case-sensitive, as Alpaca's are: `aapl` is another symbol.
        assert_eq!(parse_positions(br#"[{"symbol":"AAPL","qty":"1"},{"symbol":"aapl","qty":"1"}]"#).unwrap().len(), 2);
    }

    /// The same class for orders: one id twice (say, once `new` and once `filled`) cannot be
    /// resolved by keeping either.
    #[test]
    fn an_orders_list_repeating_an_id_is_malformed() {
        let order = |status: &str| {
            format!(
                r#"{{"id":"o-1","symbol":"AAPL","side":"sell","qty":"5","filled_qty":"0","type":"market","status":"{status}","created_at":"2026-11-20T14:00:00Z"}}"#
            )
        };
        let body = format!("[{},{}]", order("new"), order("filled"));
        let e = parse_orders(body.as_bytes()).unwrap_err();
        assert!(e.starts_with("orders[1]: id `o-1` is also at orders[0]"), "{e}");
        assert_eq!(parse_orders(format!("[{}]", order("new")).as_bytes()).unwrap().len(), 1);
    }

    #[test]
    fn account_without_removed_pdt_fields() {
        let a =
            parse_account(br#"{"id":"291f9c46-9fe1-49e8-934f-934869bb2adf","status":"ACTIVE","equity":"100454.55"}"#)
                .unwrap();
        assert_eq!(a.equity.unwrap().to_string(), "100454.55");
        assert_eq!(a.cash, None);
    }

    #[test]
    fn bad_bodies_name_the_problem() {
        assert!(parse_positions(b"{").unwrap_err().contains("positions body"));
        assert!(parse_positions(br#"[{"symbol":"A","qty":"x"}]"#).is_err());
        assert!(parse_positions(br#"[{"symbol":"A"}]"#).unwrap_err().contains("qty"));
        let contradiction = parse_positions(br#"[{"symbol":"A","qty":"-5","side":"long"}]"#).unwrap_err();
        assert!(contradiction.contains("side `long` but a negative qty -5"), "{contradiction}");
        let normalised = parse_positions(br#"[{"symbol":"A","qty":"5","side":"short"}]"#).unwrap();
        assert_eq!((normalised[0].qty, normalised[0].side), (Decimal::from(-5), Side::Short));
        assert!(parse_orders(br#"[{"id":"1","symbol":"A","side":"hold"}]"#).unwrap_err().contains("orders[0]"));
    }

    #[test]
    fn clock_with_nanoseconds_and_offset() {
        let c = parse_clock(br#"{"timestamp":"2025-03-12T11:42:07.318204551-04:00","is_open":true,"next_open":"2025-03-13T09:30:00-04:00","next_close":"2025-03-12T16:00:00-04:00"}"#).unwrap();
        assert!(c.is_open);
        assert_eq!(c.timestamp.to_rfc3339(), "2025-03-12T15:42:07.318204551+00:00");
    }

    /// Hostile bodies: each is an error naming the body, or a value, never a panic or a
    /// stack overflow.
    #[test]
    fn hostile_bodies() {
        let deep = "[".repeat(100_000);
        for parse in [
            |b: &[u8]| parse_positions(b).map(|_| ()),
            |b: &[u8]| parse_orders(b).map(|_| ()),
            |b: &[u8]| parse_account(b).map(|_| ()),
            |b: &[u8]| parse_clock(b).map(|_| ()),
            |b: &[u8]| parse_configuration(b).map(|_| ()),
        ] {
            // serde_json stops at 128 levels, or the typed reader refuses the first `[`.
            let e = parse(deep.as_bytes()).unwrap_err();
            assert!(e.contains("body: "), "{e}");
            for body in [&b"\0"[..], b"\xff\xfe[]", b"", b"null", b"[NaN]", b"{\"qty\": Infinity}"] {
                assert!(parse(body).is_err(), "{body:?}");
            }
        }
        // NaN, infinities and numbers beyond Decimal's range: errors, never zero.
        for qty in ["\"NaN\"", "\"Infinity\"", "1e400", "\"1e400\"", "1234567890123456789012345678901234567890"] {
            let body = format!("[{{\"symbol\":\"A\",\"qty\":{qty},\"side\":\"long\"}}]");
            assert!(parse_positions(body.as_bytes()).is_err(), "{qty}");
        }
        // A repeated field is an error, not "last wins": the broker never sends one.
        let e = parse_positions(br#"[{"symbol":"A","qty":"1","qty":"-5","side":"long"}]"#).unwrap_err();
        assert!(e.contains("duplicate field `qty`"), "{e}");
        // Negative zero is not short; without a side it has no side to take.
        let p = parse_positions(br#"[{"symbol":"A","qty":"-0","side":"long"}]"#).unwrap();
        assert_eq!((p[0].side, p[0].qty < Decimal::ZERO, p[0].qty.is_zero()), (Side::Long, false, true));
        assert!(parse_positions(br#"[{"symbol":"A","qty":"-0"}]"#).unwrap_err().contains("qty 0 and no side"));
        // Far-future and far-past times parse; out of chrono's range is an error.
        let c =
            parse_clock(br#"{"timestamp":"9999-12-31T23:59:59Z","is_open":true,"next_open":"0001-01-01T00:00:00Z"}"#)
                .unwrap();
        assert_eq!(c.timestamp.to_rfc3339(), "9999-12-31T23:59:59+00:00");
        assert!(parse_clock(br#"{"timestamp":"+275760-09-14T00:00:00Z","is_open":true}"#).is_err());
        let o = parse_orders(
            br#"[{"id":"1","symbol":"A","side":"sell","qty":"79228162514264337593543950335","submitted_at":"0001-01-01T00:00:00Z"}]"#,
        )
        .unwrap();
        assert_eq!(o[0].qty, Some(Decimal::MAX));
    }
}
