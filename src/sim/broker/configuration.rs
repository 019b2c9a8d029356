//! The account configuration (`GET/PATCH /v2/account/configurations`): the switches the
//! rules read (suspended trading, no shorting, fractional trading, the margin multiplier).

use rust_decimal::Decimal;

use crate::collect::broker::wire::AlpacaAccountConfiguration;
use crate::sim::request::ConfigPatch;

/// The configuration as the simulator keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Configuration {
    pub(super) trade_confirm_email: String,
    pub(super) suspend_trade: bool,
    pub(super) no_shorting: bool,
    pub(super) fractional_trading: bool,
    pub(super) max_margin_multiplier: String,
    pub(super) max_options_trading_level: u8,
    pub(super) ptp_no_exception_entry: bool,
    pub(super) disable_overnight_trading: bool,
}

impl Default for Configuration {
    fn default() -> Self {
        Self {
            trade_confirm_email: "all".into(),
            suspend_trade: false,
            no_shorting: false,
            fractional_trading: true,
            max_margin_multiplier: "2".into(),
            max_options_trading_level: 0,
            ptp_no_exception_entry: false,
            disable_overnight_trading: false,
        }
    }
}

impl Configuration {
    pub(super) fn apply(&mut self, p: &ConfigPatch) {
        if let Some(v) = &p.trade_confirm_email {
            self.trade_confirm_email.clone_from(v);
        }
        if let Some(v) = &p.max_margin_multiplier {
            self.max_margin_multiplier.clone_from(v);
        }
        let flags = [
            (&mut self.suspend_trade, p.suspend_trade),
            (&mut self.no_shorting, p.no_shorting),
            (&mut self.fractional_trading, p.fractional_trading),
            (&mut self.ptp_no_exception_entry, p.ptp_no_exception_entry),
            (&mut self.disable_overnight_trading, p.disable_overnight_trading),
        ];
        for (field, value) in flags {
            if let Some(v) = value {
                *field = v;
            }
        }
        if let Some(v) = p.max_options_trading_level {
            self.max_options_trading_level = v;
        }
    }

    pub(super) fn multiplier(&self) -> Decimal {
        crate::num::parse_decimal(&self.max_margin_multiplier).unwrap_or(Decimal::ONE)
    }

    pub(super) fn to_wire(&self) -> AlpacaAccountConfiguration {
        AlpacaAccountConfiguration {
            trade_confirm_email: Some(self.trade_confirm_email.clone()),
            suspend_trade: Some(self.suspend_trade),
            no_shorting: Some(self.no_shorting),
            fractional_trading: Some(self.fractional_trading),
            max_margin_multiplier: Some(self.max_margin_multiplier.clone()),
            max_options_trading_level: Some(self.max_options_trading_level),
            ptp_no_exception_entry: Some(self.ptp_no_exception_entry),
            disable_overnight_trading: Some(self.disable_overnight_trading),
        }
    }
}
