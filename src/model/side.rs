//! Position sides and order sides.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The side of an open position. A flat position does not exist (Alpaca removes it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    /// Positive quantity.
    Long,
    /// Negative quantity.
    Short,
}

impl Side {
    /// The side implied by a signed quantity; `None` for zero.
    #[must_use]
    pub fn of_qty(qty: rust_decimal::Decimal) -> Option<Self> {
        if qty.is_sign_positive() && !qty.is_zero() {
            Some(Self::Long)
        } else if qty.is_sign_negative() && !qty.is_zero() {
            Some(Self::Short)
        } else {
            None
        }
    }

    /// `"long"` or `"short"`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Long => "long",
            Self::Short => "short",
        }
    }
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The side of an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OrderSide {
    /// Buys: opens or adds to a long, or covers a short.
    Buy,
    /// Sells: reduces a long, or opens or deepens a short.
    Sell,
}

impl OrderSide {
    /// From Alpaca's words, `"buy"` or `"sell"` (exactly: the API is lowercase); `None` for
    /// anything else, each caller saying why in its own terms.
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "buy" => Some(Self::Buy),
            "sell" => Some(Self::Sell),
            _ => None,
        }
    }

    /// `"buy"` or `"sell"`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Buy => "buy",
            Self::Sell => "sell",
        }
    }
}

impl fmt::Display for OrderSide {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
