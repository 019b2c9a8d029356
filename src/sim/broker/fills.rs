//! Fills: when a resting order's price is reached, and how a fill books cash and position.

use rust_decimal::Decimal;

use super::{Holding, SimBroker};
use crate::model::OrderSide;
use crate::sim::order::{OrderStatus, OrderType};

/// Decimal places kept for average prices.
const PRICE_DP: u32 = 6;

fn limit_crossed(buy: bool, mark: Decimal, limit: Option<Decimal>) -> bool {
    limit.is_some_and(|l| if buy { mark <= l } else { mark >= l })
}

fn stop_reached(buy: bool, mark: Decimal, stop: Option<Decimal>) -> bool {
    stop.is_some_and(|s| if buy { mark >= s } else { mark <= s })
}

impl SimBroker {
    /// Fills order `idx` if the current price allows; true when it filled.
    pub(super) fn evaluate(&mut self, idx: usize) -> bool {
        let now = self.clock.now();
        let Some(mark) = self.prices.get(&self.orders[idx].symbol).copied() else {
            return false;
        };
        let o = &mut self.orders[idx];
        if !o.status.is_open() || o.remaining().is_zero() {
            return false;
        }
        let buy = o.side == OrderSide::Buy;
        let fills = match o.kind {
            OrderType::Market => true,
            OrderType::Limit => limit_crossed(buy, mark, o.limit_price),
            OrderType::Stop | OrderType::StopLimit => {
                if !o.triggered && stop_reached(buy, mark, o.stop_price) {
                    o.triggered = true;
                    o.updated_at = now;
                }
                o.triggered && (o.kind == OrderType::Stop || limit_crossed(buy, mark, o.limit_price))
            }
            OrderType::TrailingStop => {
                let hwm = match o.hwm {
                    Some(h) if buy => h.min(mark),
                    Some(h) => h.max(mark),
                    None => mark,
                };
                let offset =
                    o.trail_price.unwrap_or_else(|| hwm * o.trail_percent.unwrap_or_default() / Decimal::ONE_HUNDRED);
                let stop = (if buy { hwm + offset } else { hwm - offset }).round_dp(PRICE_DP).normalize();
                o.hwm = Some(hwm);
                o.stop_price = Some(stop);
                stop_reached(buy, mark, Some(stop))
            }
        };
        if fills {
            let (symbol, side, qty) = (o.symbol.clone(), o.side, o.remaining());
            o.filled_avg_price = Some(match o.filled_avg_price {
                Some(prev) if !o.filled_qty.is_zero() => {
                    ((prev * o.filled_qty + mark * qty) / (o.filled_qty + qty)).round_dp(PRICE_DP).normalize()
                }
                _ => mark,
            });
            o.filled_qty += qty;
            o.status = OrderStatus::Filled;
            o.filled_at = Some(now);
            o.updated_at = now;
            self.trade(&symbol, side, qty, mark);
        }
        fills
    }

    /// Books a fill: cash and position.
    fn trade(&mut self, symbol: &str, side: OrderSide, qty: Decimal, price: Decimal) {
        let value = qty * price;
        let signed = match side {
            OrderSide::Buy => {
                self.account.cash -= value;
                qty
            }
            OrderSide::Sell => {
                self.account.cash += value;
                -qty
            }
        };
        let (old_qty, old_avg) =
            self.positions.get(symbol).map_or((Decimal::ZERO, price), |h| (h.qty, h.avg_entry_price));
        let new_qty = (old_qty + signed).normalize();
        let adding = old_qty.is_zero() || old_qty.is_sign_negative() == signed.is_sign_negative();
        let avg = if adding {
            ((old_qty.abs() * old_avg + value) / new_qty.abs()).round_dp(PRICE_DP)
        } else if new_qty.is_zero() || new_qty.is_sign_negative() == old_qty.is_sign_negative() {
            old_avg
        } else {
            price
        };
        if new_qty.is_zero() {
            self.positions.remove(symbol);
        } else {
            self.positions.insert(symbol.to_owned(), Holding { qty: new_qty, avg_entry_price: avg });
        }
    }
}
