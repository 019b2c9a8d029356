//! `no_short_positions`: a long-only bot must never hold a negative quantity.
//!
//! Field notes §1: a runner that sold positions it no longer held went -1,596 CHWY, -413 BILL
//! and more, about 198% of equity short, and nobody noticed until orders failed. Any broker
//! position with a negative quantity (or `side = short`) is a finding.
//!
//! False positives: none for a long-only bot; do not use this rule for a bot that shorts.

use std::sync::Arc;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::json;

use super::{Kind, params_json};
use super::{Evaluation, unknown_source};
use crate::config::RuleContext;
use crate::config::reader::TableReader;
use crate::model::Check;
use crate::model::{Issue, Side, Snapshot};

/// The kind name.
pub const KIND: &str = "no_short_positions";
/// What it checks, its codes and (no) parameters.
pub const SPEC: Kind = Kind {
    name: KIND,
    description: "Any broker position with negative qty / side short (long-only bots).",
    codes: &["short_position"],
    params: &[],
    example: "",
    read: |r, ctx| Some(Arc::new(Params::read(r, ctx)?)),
};

/// No parameters.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Params {}

impl Params {
    /// Reads the parameters (there are none).
    pub fn read(_r: &mut TableReader<'_, '_>, _ctx: &RuleContext) -> Option<Self> {
        Some(Self {})
    }
}

impl Check for Params {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn params(&self) -> serde_json::Value {
        params_json(self)
    }

    /// One `short_position` per short at the broker.
    fn evaluate(&self, snap: &Snapshot, _now: DateTime<Utc>) -> Evaluation {
        let positions = match &snap.broker.positions {
            Ok(p) => p,
            Err(e) => return unknown_source(e),
        };
        let issues = positions
            .iter()
            .filter(|p| p.side == Side::Short || p.qty < Decimal::ZERO)
            .map(|p| Issue {
                code: "short_position",
                subject: p.symbol.to_string(),
                message: format!("{} is short {} at the broker; this bot is long-only", p.symbol, p.qty),
                observed: json!({
                    "qty": p.qty.to_string(),
                    "side": p.side.as_str(),
                    "market_value": p.market_value.map(|v| v.to_string()),
                }),
                expected: json!({ "qty": ">= 0" }),
            })
            .collect();
        Evaluation::Checked(issues)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::testkit::SnapshotBuilder;

    #[test]
    fn flags_each_short_and_only_shorts() {
        let snap = SnapshotBuilder::new().position("CHWY", "-1596", "25.00").position("AAPL", "10", "180").build();
        let Evaluation::Checked(issues) = Params::default().evaluate(&snap, snap.taken_at) else { panic!() };
        assert_eq!(issues.len(), 1);
        assert_eq!(issues[0].subject, "CHWY");
        assert_eq!(issues[0].observed["qty"], "-1596");
    }

    #[test]
    fn clean_account_is_ok() {
        let snap = SnapshotBuilder::new().position("AAPL", "10", "180").build();
        assert_eq!(Params::default().evaluate(&snap, snap.taken_at), Evaluation::Checked(vec![]));
    }

    #[test]
    fn failed_positions_fetch_is_unknown_not_ok() {
        let snap = SnapshotBuilder::new().broker_positions_unavailable().build();
        assert!(matches!(Params::default().evaluate(&snap, snap.taken_at), Evaluation::Unknown(_)));
    }
}
