//! The account figures, derived from cash, positions, prices and open orders.
//!
//! The model (simple, Reg-T flavoured, and always self-consistent):
//! - fills move cash: a buy pays `qty × price`, a sell (including a short sale) receives it;
//! - `long_market_value` = Σ qty × price over longs, `short_market_value` the same over shorts
//!   (negative); `position_market_value` = long + short;
//! - `equity` = `portfolio_value` = cash + long_market_value + short_market_value;
//! - `multiplier` = the configuration's `max_margin_multiplier` (1, 2 or 4);
//! - `initial_margin` = Σ |market value| / multiplier; `maintenance_margin` = 25 % of longs
//!   plus 30 % of shorts;
//! - `buying_power` = `regt_buying_power` = max(0, (equity − initial_margin) × multiplier −
//!   the open orders' exposure), where exposure is the remaining size of open orders that
//!   open or add to a position, valued at their limit (else stop, else current) price. So with
//!   2× and no positions buying power is twice the cash, and each fill uses exactly its value;
//! - `non_marginable_buying_power` = buying_power / multiplier.

use rust_decimal::Decimal;

/// The computed figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Figures {
    /// Cash.
    pub cash: Decimal,
    /// Σ market value of longs.
    pub long_market_value: Decimal,
    /// Σ market value of shorts (≤ 0).
    pub short_market_value: Decimal,
    /// cash + long + short.
    pub equity: Decimal,
    /// 1, 2 or 4.
    pub multiplier: Decimal,
    /// Σ |market value| / multiplier.
    pub initial_margin: Decimal,
    /// 25 % of longs + 30 % of shorts.
    pub maintenance_margin: Decimal,
    /// What new orders may still use.
    pub buying_power: Decimal,
    /// buying power / multiplier.
    pub non_marginable_buying_power: Decimal,
}

/// Computes the figures. `positions` are `(signed qty, price)`; `exposure` is the value of open
/// orders that open or add to positions.
#[must_use]
pub fn figures(
    cash: Decimal,
    positions: impl IntoIterator<Item = (Decimal, Decimal)>,
    multiplier: Decimal,
    exposure: Decimal,
) -> Figures {
    let multiplier = multiplier.max(Decimal::ONE);
    let (mut long, mut short) = (Decimal::ZERO, Decimal::ZERO);
    for (qty, price) in positions {
        let value = qty * price;
        if qty.is_sign_negative() {
            short += value;
        } else {
            long += value;
        }
    }
    let equity = cash + long + short;
    let initial_margin = (long - short) / multiplier;
    let maintenance_margin = long * Decimal::new(25, 2) - short * Decimal::new(30, 2);
    let buying_power = ((equity - initial_margin) * multiplier - exposure).max(Decimal::ZERO);
    Figures {
        cash,
        long_market_value: long,
        short_market_value: short,
        equity,
        multiplier,
        initial_margin,
        maintenance_margin,
        buying_power,
        non_marginable_buying_power: buying_power / multiplier,
    }
}

#[cfg(test)]
mod tests {
    use rust_decimal::dec;

    use super::*;

    #[test]
    fn flat_margin_account_has_twice_its_cash() {
        let f = figures(dec!(100000), [], dec!(2), dec!(0));
        assert_eq!(f.equity, dec!(100000));
        assert_eq!(f.buying_power, dec!(200000));
        assert_eq!(f.non_marginable_buying_power, dec!(100000));
    }

    #[test]
    fn a_fill_uses_exactly_its_value() {
        // Bought 10 at 185 out of 100000 cash.
        let f = figures(dec!(98150), [(dec!(10), dec!(185))], dec!(2), dec!(0));
        assert_eq!(f.long_market_value, dec!(1850));
        assert_eq!(f.equity, dec!(100000));
        assert_eq!(f.buying_power, dec!(200000) - dec!(1850));
        // Cash account: buying power is the cash.
        let f = figures(dec!(98150), [(dec!(10), dec!(185))], dec!(1), dec!(0));
        assert_eq!(f.buying_power, dec!(98150));
    }

    #[test]
    fn shorts_are_negative_and_equity_is_consistent() {
        // Shorted 15 at 412.30 (cash received), now at 415.10; long 10 at 262.40.
        let cash = dec!(100000) + dec!(15) * dec!(412.30) - dec!(10) * dec!(250);
        let f = figures(cash, [(dec!(-15), dec!(415.10)), (dec!(10), dec!(262.40))], dec!(2), dec!(1000));
        assert_eq!(f.short_market_value, dec!(-6226.50));
        assert_eq!(f.long_market_value, dec!(2624.00));
        assert_eq!(f.equity, f.cash + f.long_market_value + f.short_market_value);
        assert_eq!(f.initial_margin, (dec!(6226.50) + dec!(2624.00)) / dec!(2));
        assert_eq!(f.maintenance_margin, dec!(2624.00) * dec!(0.25) + dec!(6226.50) * dec!(0.30));
        assert_eq!(f.buying_power, (f.equity - f.initial_margin) * dec!(2) - dec!(1000));
    }

    #[test]
    fn buying_power_never_negative() {
        let f = figures(dec!(-5000), [(dec!(100), dec!(50))], dec!(2), dec!(0));
        assert_eq!(f.equity, dec!(0));
        assert_eq!(f.buying_power, dec!(0));
    }
}
