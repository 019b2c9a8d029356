//! `exposure_limits`: portfolio limits as a percentage of equity, and position counts.
//!
//! Field notes §1: the phantom-exit runner ended about 198% of equity short with every position
//! inverted, and nobody knew until orders failed for lack of buying power; a gross or short
//! exposure limit would have fired hours earlier. Field notes §2: a plan-based bot at ~142%
//! deployment had its buys rejected by a $1,000 minimum-position rule it never applied;
//! maximum positions, maximum % of equity per position and minimum position value are
//! constraints to check against what the broker actually holds.
//!
//! - `gross_exposure` (subject `account`): Σ |market value| / equity × 100 above
//!   `max_gross_exposure_pct` (always checked, default 200);
//! - `short_exposure` (`account`): Σ |market value| of shorts / equity × 100 above
//!   `max_short_exposure_pct`;
//! - `position_concentration` (symbol): |market value| / equity × 100 above `max_position_pct`;
//! - `too_many_positions` (`account`): more positions than `max_positions`;
//! - `position_too_small` (symbol): |market value| below `min_position_value`.
//!
//! Percentages need the account's equity: when it is unavailable, missing or not positive the
//! rule is unknown with a `rule_unknown` naming `equity`, and the limits that need no equity
//! (`max_positions`, `min_position_value`) are still checked. A position without a market
//! value (and no price to compute one) is a `rule_unknown` naming that symbol's `market_value`:
//! it is never counted as zero, so the sums are not computed, while the other positions' own
//! limits are still checked.
//!
//! False positives: market values move with prices, so a limit set at the bot's own target
//! fires on ordinary drift (leave headroom, or hold the rule with `for`); a position being
//! built or unwound in pieces is briefly small.

use std::sync::Arc;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::{Value, json};

use super::{Absent, Kind, Param, params_json};
use super::{Evaluation, blind_field, blind_source, param_or, unknown_source};
use crate::config::RuleContext;
use crate::config::reader::TableReader;
use crate::num::money;
use crate::model::Check;
use crate::model::{Issue, Position, Side, Snapshot};
use crate::num;

/// The kind name.
pub const KIND: &str = "exposure_limits";
/// What it checks, its codes and parameters.
pub const SPEC: Kind = Kind {
    name: KIND,
    description: "Exposure within limits. Percentages are of equity; an unset limit is not checked.",
    codes: &["gross_exposure", "short_exposure", "position_concentration", "too_many_positions", "position_too_small"],
    params: &[
        Param { name: "max_gross_exposure_pct", ty: "decimal", absent: Absent::Default("\"200\""), doc: "" },
        Param { name: "max_short_exposure_pct", ty: "decimal", absent: Absent::Off, doc: "" },
        Param { name: "max_position_pct", ty: "decimal", absent: Absent::Off, doc: "" },
        Param { name: "max_positions", ty: "integer", absent: Absent::Off, doc: "" },
        Param { name: "min_position_value", ty: "decimal", absent: Absent::Off, doc: "dollars" },
    ],
    example: concat!(
        "max_gross_exposure_pct = \"150\"\nmax_short_exposure_pct = \"0\"\nmax_position_pct = \"8\"\n",
        "max_positions = 30\nmin_position_value = \"500\"\n"
    ),
    read: |r, ctx| Some(Arc::new(Params::read(r, ctx)?)),
};

/// Parameters. Percentages are of account equity.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Params {
    /// Largest Σ |market value| in % of equity. Default `200` (Reg T overnight 2× margin).
    pub max_gross_exposure_pct: Decimal,
    /// Largest Σ |market value| of shorts in % of equity (`0` = no shorts). Default: not checked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_short_exposure_pct: Option<Decimal>,
    /// Largest single position's |market value| in % of equity. Default: not checked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_position_pct: Option<Decimal>,
    /// Most positions held at once. Default: not checked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_positions: Option<u64>,
    /// Smallest |market value| of a position, in dollars. Default: not checked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_position_value: Option<Decimal>,
}

impl Default for Params {
    fn default() -> Self {
        Self {
            max_gross_exposure_pct: Decimal::from(200),
            max_short_exposure_pct: None,
            max_position_pct: None,
            max_positions: None,
            min_position_value: None,
        }
    }
}

fn optional<'a, 'i, T>(
    r: &mut TableReader<'a, 'i>,
    key: &str,
    read: impl FnOnce(&mut TableReader<'a, 'i>, &str) -> Option<T>,
) -> Option<Option<T>> {
    param_or(r, key, None, |r, k| read(r, k).map(Some))
}

fn read_count(r: &mut TableReader<'_, '_>, key: &str) -> Option<u64> {
    let n: i64 = r.get(key)?;
    u64::try_from(n).map_or_else(
        |_| {
            r.problem_key(key, format!("`{key}` in {} must not be negative (got {n})", r.name()));
            None
        },
        Some,
    )
}

/// A percentage for messages: two decimal places.
fn pct2(p: Decimal) -> Decimal {
    p.round_dp(2)
}

impl Params {
    /// Reads the parameters.
    pub fn read(r: &mut TableReader<'_, '_>, _ctx: &RuleContext) -> Option<Self> {
        let d = Self::default();
        let gross = param_or(r, "max_gross_exposure_pct", d.max_gross_exposure_pct, TableReader::non_negative_decimal);
        let short = optional(r, "max_short_exposure_pct", TableReader::non_negative_decimal);
        let position = optional(r, "max_position_pct", TableReader::non_negative_decimal);
        let count = optional(r, "max_positions", read_count);
        let min_value = optional(r, "min_position_value", TableReader::non_negative_decimal);
        Some(Self {
            max_gross_exposure_pct: gross?,
            max_short_exposure_pct: short?,
            max_position_pct: position?,
            max_positions: count?,
            min_position_value: min_value?,
        })
    }
}

impl Check for Params {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn params(&self) -> serde_json::Value {
        params_json(self)
    }

    /// Every limit exceeded. Each limit is judged on what it needs: a limit that cannot be
    /// computed (no equity, a position without a value, an overflow) is a `rule_unknown`
    /// naming the field, and the limits that do not need it are still checked.
    fn evaluate(&self, snap: &Snapshot, _now: DateTime<Utc>) -> Evaluation {
        let positions = match &snap.broker.positions {
            Ok(p) => p,
            Err(e) => return unknown_source(e),
        };
        let mut blind = Vec::new();
        // Percentages need equity; counts and dollar minimums do not.
        let equity = match &snap.broker.account {
            Err(e) => {
                let mut b = blind_source(e);
                b.message = format!("exposure percentages need the account's equity, but {}", b.message);
                blind.push(b);
                None
            }
            Ok(a) => match a.equity {
                None => {
                    blind.push(blind_field(
                        "account",
                        "equity",
                        Value::Null,
                        "the account reports no equity, so exposure percentages cannot be computed".into(),
                    ));
                    None
                }
                Some(e) if e <= Decimal::ZERO => {
                    blind.push(blind_field(
                        "account",
                        "equity",
                        Value::String(e.to_string()),
                        format!("account equity is {e}, not positive, so exposure percentages are undefined"),
                    ));
                    None
                }
                Some(e) => Some(e),
            },
        };
        let mut values: Vec<(&Position, Decimal)> = Vec::with_capacity(positions.len());
        // A position without a value is never counted as zero: the sums are unknown.
        let mut all_valued = true;
        for p in positions {
            match p.abs_market_value() {
                // Normalized: `197850`, not `197850.0` (a value, so comparisons are unchanged).
                Some(v) => values.push((p, v.normalize())),
                None => {
                    all_valued = false;
                    blind.push(blind_field(
                        p.symbol.as_str(),
                        "market_value",
                        Value::Null,
                        format!(
                            "the broker reported neither a market value nor a price for {}, so exposure cannot be summed",
                            p.symbol
                        ),
                    ));
                }
            }
        }
        let overflow = |what: &str| {
            blind_field(
                "account",
                what,
                Value::Null,
                format!("{what} overflowed the decimal range, so its limit cannot be checked"),
            )
        };

        let mut issues = Vec::new();
        if let (Some(equity), true) = (equity, all_valued) {
            let pct = |v: Decimal| num::percent_of(v, equity);
            match checked_sum(values.iter().map(|(_, v)| *v)).map(|d| d.normalize()).and_then(|g| Some((g, pct(g)?))) {
                None => blind.push(overflow("gross_exposure_pct")),
                Some((gross, gross_pct)) if gross_pct > self.max_gross_exposure_pct => issues.push(Issue {
                    code: "gross_exposure",
                    subject: "account".into(),
                    message: format!(
                        "gross exposure is {}% of equity ({} of {}), above the {}% limit",
                        pct2(gross_pct),
                        money(gross),
                        money(equity),
                        self.max_gross_exposure_pct
                    ),
                    observed: json!({
                        "gross_exposure_pct": pct2(gross_pct).to_string(),
                        "gross_market_value": gross.to_string(),
                        "equity": equity.to_string(),
                    }),
                    expected: json!({ "max_gross_exposure_pct": self.max_gross_exposure_pct.to_string() }),
                }),
                Some(_) => {}
            }
            if let Some(max) = self.max_short_exposure_pct {
                let shorts: Vec<&(&Position, Decimal)> =
                    values.iter().filter(|(p, _)| p.side == Side::Short || p.qty < Decimal::ZERO).collect();
                match checked_sum(shorts.iter().map(|(_, v)| *v)).map(|d| d.normalize()).and_then(|s| Some((s, pct(s)?)))
                {
                    None => blind.push(overflow("short_exposure_pct")),
                    Some((short, short_pct)) if short_pct > max => issues.push(Issue {
                        code: "short_exposure",
                        subject: "account".into(),
                        message: format!(
                            "short exposure is {}% of equity ({} in {} short position(s), equity {}), above the {max}% limit",
                            pct2(short_pct),
                            money(short),
                            shorts.len(),
                            money(equity)
                        ),
                        observed: json!({
                            "short_exposure_pct": pct2(short_pct).to_string(),
                            "short_market_value": short.to_string(),
                            "short_positions": shorts.len(),
                            "equity": equity.to_string(),
                        }),
                        expected: json!({ "max_short_exposure_pct": max.to_string() }),
                    }),
                    Some(_) => {}
                }
            }
        }
        // The count needs no value and no equity: every position the broker lists counts.
        if let Some(max) = self.max_positions
            && positions.len() as u64 > max
        {
            issues.push(Issue {
                code: "too_many_positions",
                subject: "account".into(),
                message: format!("the broker holds {} positions, above the limit of {max}", positions.len()),
                observed: json!({ "positions": positions.len() }),
                expected: json!({ "max_positions": max }),
            });
        }
        for (p, value) in &values {
            let symbol = &p.symbol;
            if let (Some(max), Some(equity)) = (self.max_position_pct, equity) {
                match num::percent_of(*value, equity) {
                    None => blind.push(overflow("position_pct")),
                    Some(share) if share > max => issues.push(Issue {
                        code: "position_concentration",
                        subject: symbol.to_string(),
                        message: format!(
                            "{symbol} is {}% of equity ({} of {}), above the {max}% limit",
                            pct2(share),
                            money(*value),
                            money(equity)
                        ),
                        observed: json!({
                            "position_pct": pct2(share).to_string(),
                            "market_value": value.to_string(),
                            "equity": equity.to_string(),
                        }),
                        expected: json!({ "max_position_pct": max.to_string() }),
                    }),
                    Some(_) => {}
                }
            }
            if let Some(min) = self.min_position_value
                && *value < min
            {
                issues.push(Issue {
                    code: "position_too_small",
                    subject: symbol.to_string(),
                    message: format!("{symbol} is worth {}, below the {} minimum position value", money(*value), money(min)),
                    observed: json!({ "market_value": value.to_string(), "qty": p.qty.to_string() }),
                    expected: json!({ "min_position_value": min.to_string() }),
                });
            }
        }
        Evaluation::partial(issues, blind)
    }
}

/// The sum, or `None` past Decimal's range (hostile market values must not panic a `sum`).
fn checked_sum(mut values: impl Iterator<Item = Decimal>) -> Option<Decimal> {
    values.try_fold(Decimal::ZERO, Decimal::checked_add)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::checks::testkit::{
        SnapshotBuilder, assert_problems, blind, codes, d, issues, read_ok, read_params, unknown,
    };

    /// The example rule of design.md §4.
    fn example() -> Params {
        read_ok(
            "max_gross_exposure_pct = \"150\"\nmax_short_exposure_pct = \"0\"\nmax_position_pct = \"8\"\nmax_positions = 30\nmin_position_value = \"500\"\n",
            Params::read,
            &SPEC,
        )
    }

    fn eval(p: &Params, b: SnapshotBuilder) -> Evaluation {
        let snap = b.build();
        p.evaluate(&snap, snap.taken_at)
    }

    fn pairs(v: &[(&'static str, &str)]) -> Vec<(&'static str, String)> {
        v.iter().map(|(c, s)| (*c, (*s).to_owned())).collect()
    }

    /// (case, parameters, snapshot, expected (code, subject) pairs).
    type Case = (&'static str, Params, SnapshotBuilder, Vec<(&'static str, &'static str)>);

    #[test]
    fn within_limits_is_ok() {
        let b = SnapshotBuilder::new().position("AAPL", "40", "180").position("MSFT", "15", "400");
        assert_eq!(eval(&example(), b), Evaluation::Checked(vec![]));
        assert_eq!(eval(&Params::default(), SnapshotBuilder::new()), Evaluation::Checked(vec![]));
    }

    #[test]
    fn phantom_exit_shorts_trip_gross_and_short_limits() {
        // Field notes §1: every position inverted, about 198% of equity short.
        let b = SnapshotBuilder::new()
            .position("CHWY", "-1596", "25") // 39,900
            .position("BILL", "-413", "100") // 41,300
            .position("COIN", "-72", "250") // 18,000
            .position("OKTA", "-170", "90") // 15,300
            .position("SNOW", "-500", "166.7"); // 83,350: total 197,850
        let p = Params { max_position_pct: None, min_position_value: None, ..example() };
        let got = issues(eval(&p, b));
        let kinds: Vec<&str> = got.iter().map(|i| i.code).collect();
        assert_eq!(kinds, ["gross_exposure", "short_exposure"]);
        assert_eq!(got[0].observed["gross_exposure_pct"], "197.85");
        assert_eq!(got[1].observed["short_exposure_pct"], "197.85");
        assert_eq!(got[1].observed["short_positions"], 5);
        assert_eq!(got[0].message, "gross exposure is 197.85% of equity ($197850.00 of $100000.00), above the 150% limit");
    }

    #[test]
    fn each_limit() {
        let cases: Vec<Case> = vec![
            (
                "gross above the default 200%",
                Params::default(),
                SnapshotBuilder::new().position("AAPL", "1000", "150").position("MSFT", "200", "260"),
                vec![("gross_exposure", "account")],
            ),
            (
                "gross exactly at the limit",
                Params::default(),
                SnapshotBuilder::new().position("AAPL", "1000", "200"),
                vec![],
            ),
            (
                "any short against a 0% short limit",
                Params { max_short_exposure_pct: Some(d("0")), ..Params::default() },
                SnapshotBuilder::new().position("CHWY", "-1", "25"),
                vec![("short_exposure", "account")],
            ),
            ("short limit not set", Params::default(), SnapshotBuilder::new().position("CHWY", "-1", "25"), vec![]),
            (
                "concentration",
                Params { max_position_pct: Some(d("8")), ..Params::default() },
                SnapshotBuilder::new().position("AAPL", "50", "180").position("MSFT", "10", "400"),
                vec![("position_concentration", "AAPL")],
            ),
            (
                "concentration of a short counts its size",
                Params { max_position_pct: Some(d("8")), ..Params::default() },
                SnapshotBuilder::new().position("CHWY", "-400", "25"),
                vec![("position_concentration", "CHWY")],
            ),
            (
                "too many positions",
                Params { max_positions: Some(1), ..Params::default() },
                SnapshotBuilder::new().position("AAPL", "1", "180").position("MSFT", "1", "400"),
                vec![("too_many_positions", "account")],
            ),
            (
                "zero positions allowed",
                Params { max_positions: Some(0), ..Params::default() },
                SnapshotBuilder::new(),
                vec![],
            ),
            (
                "too small",
                Params { min_position_value: Some(d("1000")), ..Params::default() },
                SnapshotBuilder::new().position("AAPL", "5", "180").position("MSFT", "3", "400"),
                vec![("position_too_small", "AAPL")],
            ),
        ];
        for (case, p, b, want) in cases {
            assert_eq!(codes(eval(&p, b)), pairs(&want), "{case}");
        }
    }

    #[test]
    fn market_value_falls_back_to_price_and_never_to_zero() {
        let p = Params { min_position_value: Some(d("1000")), ..Params::default() };
        let b = SnapshotBuilder::new().position("AAPL", "5", "180").last_position_with(|p| p.market_value = None);
        assert_eq!(codes(eval(&p, b)), pairs(&[("position_too_small", "AAPL")]));
        let b = SnapshotBuilder::new().position("AAPL", "5", "180").last_position_with(|p| {
            p.market_value = None;
            p.current_price = None;
        });
        assert!(unknown(eval(&p, b)).contains("AAPL"));
    }

    /// Issue 12: a position without a market value (or price) made the whole rule unknown
    /// with only a reason; now it is a `rule_unknown` naming that symbol's `market_value`, the
    /// sums are not computed (never counted as zero), and the other positions' limits and the
    /// count are still checked.
    #[test]
    fn a_position_without_market_value_is_named_and_does_not_hide_the_other_limits() {
        let p = example();
        let b = SnapshotBuilder::new()
            .position("AAPL", "5", "180")
            .last_position_with(|p| {
                p.market_value = None;
                p.current_price = None;
            })
            .position("TINY", "1", "10")
            .position("BIG", "1000", "100");
        let got = blind(eval(&Params { max_positions: Some(2), ..p }, b));
        let blind_pairs: Vec<(&str, &str)> = got.blind.iter().map(|i| (i.code, i.subject.as_str())).collect();
        assert_eq!(blind_pairs, [("rule_unknown", "AAPL")]);
        assert_eq!(got.blind[0].observed, json!({ "field": "market_value", "value": null }));
        let found: Vec<(&str, &str)> = got.issues.iter().map(|i| (i.code, i.subject.as_str())).collect();
        assert_eq!(
            found,
            [("too_many_positions", "account"), ("position_too_small", "TINY"), ("position_concentration", "BIG")]
        );
    }

    /// The same class for equity: missing or not positive equity is a `rule_unknown` naming
    /// `equity` (with what was seen), and the limits that need no equity are still checked.
    #[test]
    fn impossible_equity_is_named_and_does_not_hide_the_count_or_minimum_value() {
        let two = || SnapshotBuilder::new().position("AAPL", "1", "10").position("MSFT", "40", "400");
        for (b, value) in [
            (two().account_with(|a| a.equity = None), Value::Null),
            (two().equity("-50"), json!("-50")),
            (two().equity("0"), json!("0")),
        ] {
            let got = blind(eval(&Params { max_positions: Some(1), ..example() }, b));
            assert_eq!(got.blind.len(), 1, "{got:#?}");
            assert_eq!((got.blind[0].code, got.blind[0].subject.as_str()), ("rule_unknown", "account"));
            assert_eq!(got.blind[0].observed, json!({ "field": "equity", "value": value }));
            let found: Vec<(&str, &str)> = got.issues.iter().map(|i| (i.code, i.subject.as_str())).collect();
            assert_eq!(found, [("too_many_positions", "account"), ("position_too_small", "AAPL")]);
        }
        // Account unreadable: the same, the blind part names the failed source.
        let got = blind(eval(&Params { max_positions: Some(1), ..example() }, two().broker_account_unavailable()));
        assert_eq!(got.blind[0].subject, "broker:account");
        assert_eq!(got.issues.len(), 2, "{got:#?}");
    }

    #[test]
    fn unknown_without_positions_or_equity() {
        let p = Params::default();
        assert!(unknown(eval(&p, SnapshotBuilder::new().broker_positions_unavailable())).contains("broker:positions"));
        assert!(unknown(eval(&p, SnapshotBuilder::new().broker_account_unavailable())).contains("broker:account"));
        let b = SnapshotBuilder::new().account_with(|a| a.equity = None);
        assert_eq!(unknown(eval(&p, b)), "the account reports no equity, so exposure percentages cannot be computed");
        let b = SnapshotBuilder::new().equity("-50");
        assert!(unknown(eval(&p, b)).contains("account equity is -50"));
        let b = SnapshotBuilder::new().equity("0");
        assert!(unknown(eval(&p, b)).contains("account equity is 0"));
    }

    #[test]
    fn reads_parameters_and_defaults() {
        assert_eq!(read_ok("", Params::read, &SPEC), Params::default());
        assert_eq!(
            example(),
            Params {
                max_gross_exposure_pct: d("150"),
                max_short_exposure_pct: Some(d("0")),
                max_position_pct: Some(d("8")),
                max_positions: Some(30),
                min_position_value: Some(d("500")),
            }
        );
    }

    #[test]
    fn reports_every_parameter_problem_with_its_line() {
        let got = read_params(
            "max_gross_exposure_pct = \"-1\"\nmax_short_exposure_pct = true\nmax_position_pct = \"8%\"\nmax_positions = -3\nmin_position_value = \"-500\"\nmax_position = 3\n",
            Params::read,
            &SPEC,
        );
        assert!(got.0.is_none());
        assert_problems(
            &got,
            &[
                (1, "must not be negative"),
                (2, "must be a number or a decimal string"),
                (3, "`8%` is not a decimal number"),
                (4, "`max_positions` in rule `t` must not be negative (got -3)"),
                (5, "`min_position_value` in rule `t` must not be negative"),
                (6, "did you mean `max_positions`?"),
            ],
        );
    }
}
