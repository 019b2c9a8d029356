//! Alpaca error responses: an HTTP status plus the body `{"code": <8 digits>, "message": "..."}`.
//!
//! The code is the HTTP status followed by a five-digit suffix (alpaca-api.md §1.5). The few
//! codes used here are the ones seen in the sources; the messages follow them where known.

use std::fmt;

use rust_decimal::Decimal;

use crate::collect::broker::wire::AlpacaError;

/// A rejected request: the HTTP status and the Alpaca error body.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// HTTP status.
    pub status: u16,
    /// The JSON body (boxed: it is large, and errors travel in every `Result`).
    pub body: Box<AlpacaError>,
}

impl ApiError {
    /// Any status, code and message.
    #[must_use]
    pub fn new(status: u16, code: u64, message: impl Into<String>) -> Self {
        Self {
            status,
            body: Box::new(AlpacaError { code: Some(code), message: message.into(), ..AlpacaError::default() }),
        }
    }

    /// 400 40010000: the body is not JSON of the expected shape.
    #[must_use]
    pub fn bad_body(message: impl Into<String>) -> Self {
        Self::new(400, 40_010_000, message)
    }

    /// 401 40110000: missing or wrong API keys.
    #[must_use]
    pub fn unauthorized() -> Self {
        Self::new(401, 40_110_000, "request is not authorized")
    }

    /// 403 40310000: a rule of the account forbids it (shorting, buying power, suspension).
    #[must_use]
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(403, 40_310_000, message)
    }

    /// 403 40310000 "insufficient qty available for order", with the fields Alpaca adds. The
    /// quantities carry the sign of the position (negative for a short).
    #[must_use]
    pub fn insufficient_qty(symbol: &str, requested: Decimal, existing: Decimal, held: Decimal) -> Self {
        let sign = if existing.is_sign_negative() { Decimal::NEGATIVE_ONE } else { Decimal::ONE };
        let available = (existing.abs() - held.abs()).max(Decimal::ZERO);
        let mut e = Self::forbidden(format!(
            "insufficient qty available for order (requested: {}, available: {})",
            requested.normalize(),
            available.normalize()
        ));
        e.body.symbol = Some(symbol.to_owned());
        e.body.existing_qty = Some(existing.normalize());
        e.body.held_for_orders = Some((held.abs() * sign).normalize());
        e.body.available = Some((available * sign).normalize());
        e
    }

    /// 404 40410000.
    #[must_use]
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(404, 40_410_000, message)
    }

    /// 405 40510000: the path exists, the method does not.
    #[must_use]
    pub fn method_not_allowed() -> Self {
        Self::new(405, 40_510_000, "method not allowed")
    }

    /// 422 40010001: a field is missing or invalid (also the duplicate `client_order_id`).
    #[must_use]
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(422, 40_010_001, message)
    }

    /// 422 42210000: well-formed but not possible now (finished order, unknown symbol).
    #[must_use]
    pub fn unprocessable(message: impl Into<String>) -> Self {
        Self::new(422, 42_210_000, message)
    }

    /// 429 42910000.
    #[must_use]
    pub fn rate_limited() -> Self {
        Self::new(429, 42_910_000, "rate limit exceeded")
    }

    /// 500 50010000.
    #[must_use]
    pub fn internal() -> Self {
        Self::new(500, 50_010_000, "internal server error")
    }

    /// 504 50410000: what a client that waited out an injected timeout finally gets.
    #[must_use]
    pub fn gateway_timeout() -> Self {
        Self::new(504, 50_410_000, "gateway timeout")
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.status, self.body.code.unwrap_or_default(), self.body.message)
    }
}

impl std::error::Error for ApiError {}

#[cfg(test)]
mod tests {
    use rust_decimal::dec;

    use super::*;

    #[test]
    fn insufficient_qty_has_alpacas_fields_as_strings() {
        let e = ApiError::insufficient_qty("MSFT", dec!(12), dec!(7), dec!(0));
        assert_eq!(e.status, 403);
        let v = serde_json::to_value(&e.body).unwrap();
        assert_eq!(v["code"], 40_310_000);
        assert_eq!(v["message"], "insufficient qty available for order (requested: 12, available: 7)");
        assert_eq!(v["available"], "7");
        assert_eq!(v["existing_qty"], "7");
        assert_eq!(v["held_for_orders"], "0");
        assert_eq!(v["symbol"], "MSFT");
    }

    #[test]
    fn short_side_quantities_are_negative() {
        let e = ApiError::insufficient_qty("MSFT", dec!(15), dec!(-15), dec!(15));
        let v = serde_json::to_value(&e.body).unwrap();
        assert_eq!(v["existing_qty"], "-15");
        assert_eq!(v["held_for_orders"], "-15");
        assert_eq!(v["available"], "0");
    }

    #[test]
    fn plain_errors_have_only_code_and_message() {
        let v = serde_json::to_value(&ApiError::unauthorized().body).unwrap();
        assert_eq!(v, serde_json::json!({"code": 40_110_000, "message": "request is not authorized"}));
    }
}
