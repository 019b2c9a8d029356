//! Alpaca's trading rules: who may trade, what an order does to the position (its intent),
//! and whether buying power covers it.

use rust_decimal::{Decimal, RoundingStrategy};
use uuid::Uuid;

use super::SimBroker;
use crate::model::OrderSide;
use crate::sim::error::ApiError;
use crate::sim::order::{Intent, SimOrder};

/// Decimal places of a share quantity (Alpaca allows 9).
pub(super) const QTY_DP: u32 = 9;

/// The shares a notional order buys at `price`, cut to Alpaca's share precision; `None` when
/// the quotient is out of the simulator's range.
pub(super) fn notional_shares(notional: Decimal, price: Decimal) -> Option<Decimal> {
    notional
        .checked_div(price)
        .and_then(|s| crate::sim::scenario::in_range(s).ok())
        .map(|s| s.round_dp_with_strategy(QTY_DP, RoundingStrategy::ToZero).normalize())
}

impl SimBroker {
    pub(super) fn shorting_allowed(&self) -> bool {
        self.account.shorting_enabled && !self.config.no_shorting && self.config.multiplier() > Decimal::ONE
    }

    pub(super) fn check_can_trade(&self) -> Result<(), ApiError> {
        if self.account.account_blocked {
            return Err(ApiError::forbidden("account is blocked"));
        }
        if self.account.trading_blocked {
            return Err(ApiError::forbidden("trading is blocked for this account"));
        }
        if self.account.status != "ACTIVE" {
            return Err(ApiError::forbidden(format!("account is not active (status {})", self.account.status)));
        }
        if self.config.suspend_trade {
            return Err(ApiError::forbidden("trading is suspended for this account (suspend_trade)"));
        }
        Ok(())
    }

    /// The position rules; the intent of an acceptable order.
    pub(super) fn intent_for(
        &self,
        symbol: &str,
        side: OrderSide,
        shares: Decimal,
        fractional_or_notional: bool,
        excluding: Option<Uuid>,
    ) -> Result<Intent, ApiError> {
        let pos = self.position_qty(symbol);
        match side {
            OrderSide::Sell if pos > Decimal::ZERO => {
                let held = self.held(symbol, OrderSide::Sell, excluding);
                if shares > pos - held {
                    return Err(ApiError::insufficient_qty(symbol, shares, pos, held));
                }
                Ok(Intent::SellToClose)
            }
            OrderSide::Sell => {
                if !self.shorting_allowed() {
                    return Err(ApiError::forbidden("account is not allowed to short"));
                }
                if fractional_or_notional {
                    return Err(ApiError::forbidden("fractional orders are not allowed to short"));
                }
                if pos.is_zero() && self.open_with_intent(symbol, Intent::BuyToOpen, excluding) {
                    return Err(ApiError::forbidden("cannot open a short sell while a long buy order is open"));
                }
                Ok(Intent::SellToOpen)
            }
            OrderSide::Buy if pos < Decimal::ZERO => {
                let held = self.held(symbol, OrderSide::Buy, excluding);
                if shares > -pos - held {
                    return Err(ApiError::insufficient_qty(symbol, shares, pos, held));
                }
                Ok(Intent::BuyToClose)
            }
            OrderSide::Buy => {
                if pos.is_zero() && self.open_with_intent(symbol, Intent::SellToOpen, excluding) {
                    return Err(ApiError::forbidden("cannot open a long buy while a short sell order is open"));
                }
                Ok(Intent::BuyToOpen)
            }
        }
    }

    pub(super) fn check_buying_power(
        &self,
        order: &SimOrder,
        mark: Decimal,
        excluding: Option<Uuid>,
    ) -> Result<(), ApiError> {
        if !order.intent.opens() {
            return Ok(());
        }
        let need = order.remaining() * order.reference_price(mark);
        let available = self.figures(excluding).buying_power;
        if need > available {
            return Err(ApiError::forbidden(format!(
                "insufficient buying power (required: {}, available: {})",
                need.round_dp(2),
                available.round_dp(2)
            )));
        }
        Ok(())
    }
}
