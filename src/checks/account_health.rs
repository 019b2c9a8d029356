//! `account_health`: the account can trade, has buying power, and (optionally) cannot short.
//!
//! Field notes §1: the phantom-exit runner was only noticed when new orders failed with
//! "insufficient buying power"; the account had a `no_shorting` configuration that would have
//! refused every sell that opened a short, and it was off. A blocked or suspended account, or
//! negative buying power, means the bot's orders are failing right now.
//!
//! - `account_blocked` (subject `account`): status is not `ACTIVE`, or `account_blocked`,
//!   `trading_blocked` or `trade_suspended_by_user` is true; one finding naming every flag;
//! - `negative_buying_power` (`account`): buying power below zero;
//! - `shorting_enabled` (`account`), only with `expect_no_shorting = true`: the broker-side
//!   guard `no_shorting` is not on (false or not reported).
//!
//! The account is required (unknown without it). Each condition is judged on its own: an
//! account that does not report its buying power gets a `rule_unknown` naming `buying_power`
//! (never read as zero) while its status and flags are still checked; with
//! `expect_no_shorting`, unreadable account configurations are a `rule_unknown` of their own.
//!
//! False positives: `trade_suspended_by_user` is also what the `suspend_trading` action sets,
//! so after that action this rule fires until trading is resumed (intended: it stays visible).

use std::sync::Arc;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::{Value, json};

use super::{Absent, Kind, Param, params_json};
use super::{Evaluation, blind_field, blind_source, param_or, unknown_source};
use crate::config::RuleContext;
use crate::config::reader::TableReader;
use crate::model::Check;
use crate::model::{Issue, Snapshot};

/// The kind name.
pub const KIND: &str = "account_health";
/// What it checks, its codes and parameters.
pub const SPEC: Kind = Kind {
    name: KIND,
    description: "The account is not blocked and its buying power is not negative; with `expect_no_shorting`, \
                  shorting is off at the broker.",
    codes: &["account_blocked", "negative_buying_power", "shorting_enabled"],
    params: &[Param {
        name: "expect_no_shorting",
        ty: "boolean",
        absent: Absent::Default("false"),
        doc: "the broker-side `no_shorting` guard must be on",
    }],
    example: "expect_no_shorting = true\n",
    read: |r, ctx| Some(Arc::new(Params::read(r, ctx)?)),
};

/// Parameters.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Params {
    /// Expect the broker-side `no_shorting` guard to be on (long-only bots). Default `false`.
    pub expect_no_shorting: bool,
}

impl Params {
    /// Reads the parameters.
    pub fn read(r: &mut TableReader<'_, '_>, _ctx: &RuleContext) -> Option<Self> {
        let expect_no_shorting = param_or(r, "expect_no_shorting", false, |r, k| r.get::<bool>(k));
        Some(Self { expect_no_shorting: expect_no_shorting? })
    }
}

impl Check for Params {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn params(&self) -> serde_json::Value {
        params_json(self)
    }

    /// The account's flags, buying power and (optionally) shorting guard.
    fn evaluate(&self, snap: &Snapshot, _now: DateTime<Utc>) -> Evaluation {
        let account = match &snap.broker.account {
            Ok(a) => a,
            Err(e) => return unknown_source(e),
        };
        // Each condition stands alone: what one of them cannot see is a `rule_unknown` naming
        // it, and never hides the others (a missing buying_power must not hide a closed account).
        let mut blind = Vec::new();
        let no_shorting = if self.expect_no_shorting {
            match &snap.broker.configuration {
                None => {
                    blind.push(blind_field(
                        "account",
                        "configurations",
                        Value::Null,
                        "expect_no_shorting needs the account configurations, which were not fetched (or not recorded)"
                            .into(),
                    ));
                    None
                }
                Some(Err(e)) => {
                    let mut b = blind_source(e);
                    b.message = format!("expect_no_shorting needs the account configurations, but {}", b.message);
                    blind.push(b);
                    None
                }
                Some(Ok(c)) => Some(c.no_shorting),
            }
        } else {
            None
        };
        if account.buying_power.is_none() {
            blind.push(blind_field(
                "account",
                "buying_power",
                Value::Null,
                "the account reports no buying_power, so negative buying power cannot be checked".into(),
            ));
        }

        let mut issues = Vec::new();
        let mut flags: Vec<String> = Vec::new();
        if !account.status.eq_ignore_ascii_case("ACTIVE") {
            flags.push(format!("status is {}", account.status));
        }
        for (name, value) in [
            ("account_blocked", account.account_blocked),
            ("trading_blocked", account.trading_blocked),
            ("trade_suspended_by_user", account.trade_suspended_by_user),
        ] {
            if value == Some(true) {
                flags.push(format!("{name} is true"));
            }
        }
        if !flags.is_empty() {
            issues.push(Issue {
                code: "account_blocked",
                subject: "account".into(),
                message: format!("the account cannot trade normally: {}", flags.join(", ")),
                observed: json!({
                    "status": account.status,
                    "account_blocked": account.account_blocked,
                    "trading_blocked": account.trading_blocked,
                    "trade_suspended_by_user": account.trade_suspended_by_user,
                }),
                expected: json!({
                    "status": "ACTIVE",
                    "account_blocked": false,
                    "trading_blocked": false,
                    "trade_suspended_by_user": false,
                }),
            });
        }
        if let Some(buying_power) = account.buying_power
            && buying_power < Decimal::ZERO
        {
            issues.push(Issue {
                code: "negative_buying_power",
                subject: "account".into(),
                message: format!("the account's buying power is {buying_power}, below zero"),
                observed: json!({
                    "buying_power": buying_power.to_string(),
                    "equity": account.equity.map(|e| e.to_string()),
                }),
                expected: json!({ "buying_power": ">= 0" }),
            });
        }
        if let Some(no_shorting) = no_shorting
            && no_shorting != Some(true)
        {
            let seen = no_shorting.map_or_else(|| "not reported".to_owned(), |b| b.to_string());
            issues.push(Issue {
                code: "shorting_enabled",
                subject: "account".into(),
                message: format!(
                    "the broker-side no_shorting guard is off ({seen}), so a sell larger than a long position can open a short"
                ),
                observed: json!({
                    "no_shorting": no_shorting.map_or(Value::Null, Value::Bool),
                    "shorting_enabled": account.shorting_enabled,
                }),
                expected: json!({ "no_shorting": true }),
            });
        }
        Evaluation::partial(issues, blind)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::checks::testkit::{
        SnapshotBuilder, assert_problems, blind, codes, d, issues, read_ok, read_params, unknown,
    };

    fn eval(p: &Params, b: SnapshotBuilder) -> Evaluation {
        let snap = b.build();
        p.evaluate(&snap, snap.taken_at)
    }

    const GUARDED: Params = Params { expect_no_shorting: true };

    #[test]
    fn healthy_account_is_ok() {
        assert_eq!(eval(&Params::default(), SnapshotBuilder::new()), Evaluation::Checked(vec![]));
        let b = SnapshotBuilder::new().configuration_with(|c| c.no_shorting = Some(true));
        assert_eq!(eval(&GUARDED, b), Evaluation::Checked(vec![]));
        // Without the expectation, the configuration is not needed.
        assert_eq!(eval(&Params::default(), SnapshotBuilder::new().no_configuration()), Evaluation::Checked(vec![]));
    }

    #[test]
    fn each_blocking_flag() {
        let cases: Vec<(&str, SnapshotBuilder, &str)> = vec![
            (
                "status",
                SnapshotBuilder::new().account_with(|a| a.status = "ACCOUNT_UPDATED".into()),
                "status is ACCOUNT_UPDATED",
            ),
            (
                "account",
                SnapshotBuilder::new().account_with(|a| a.account_blocked = Some(true)),
                "account_blocked is true",
            ),
            (
                "trading",
                SnapshotBuilder::new().account_with(|a| a.trading_blocked = Some(true)),
                "trading_blocked is true",
            ),
            (
                "suspended",
                SnapshotBuilder::new().account_with(|a| a.trade_suspended_by_user = Some(true)),
                "trade_suspended_by_user is true",
            ),
        ];
        for (case, b, flag) in cases {
            let got = issues(eval(&Params::default(), b));
            assert_eq!(got.len(), 1, "{case}");
            assert_eq!((got[0].code, got[0].subject.as_str()), ("account_blocked", "account"), "{case}");
            assert_eq!(got[0].message, format!("the account cannot trade normally: {flag}"), "{case}");
        }
    }

    #[test]
    fn one_finding_names_every_flag() {
        let b = SnapshotBuilder::new().account_with(|a| {
            a.status = "REJECTED".into();
            a.trading_blocked = Some(true);
            a.trade_suspended_by_user = Some(true);
        });
        let got = issues(eval(&Params::default(), b));
        assert_eq!(got.len(), 1);
        assert_eq!(
            got[0].message,
            "the account cannot trade normally: status is REJECTED, trading_blocked is true, trade_suspended_by_user is true"
        );
        assert_eq!(got[0].observed["trading_blocked"], json!(true));
        // Unreported flags are not read as blocked.
        let b = SnapshotBuilder::new().account_with(|a| {
            a.account_blocked = None;
            a.trading_blocked = None;
        });
        assert_eq!(eval(&Params::default(), b), Evaluation::Checked(vec![]));
    }

    #[test]
    fn negative_buying_power() {
        let b = SnapshotBuilder::new().account_with(|a| a.buying_power = Some(d("-36012.50")));
        let got = issues(eval(&Params::default(), b));
        assert_eq!(codes(Evaluation::Checked(got.clone())), vec![("negative_buying_power", "account".to_owned())]);
        assert_eq!(got[0].observed["buying_power"], "-36012.50");
        assert_eq!(got[0].message, "the account's buying power is -36012.50, below zero");
        let b = SnapshotBuilder::new().account_with(|a| a.buying_power = Some(d("0")));
        assert_eq!(eval(&Params::default(), b), Evaluation::Checked(vec![]));
    }

    #[test]
    fn shorting_guard() {
        for (no_shorting, fires) in [(Some(false), true), (None, true), (Some(true), false)] {
            let b = SnapshotBuilder::new().configuration_with(|c| c.no_shorting = no_shorting);
            let got = codes(eval(&GUARDED, b));
            let want = if fires { vec![("shorting_enabled", "account".to_owned())] } else { vec![] };
            assert_eq!(got, want, "{no_shorting:?}");
        }
        // Not expected: never reported.
        assert_eq!(eval(&Params::default(), SnapshotBuilder::new()), Evaluation::Checked(vec![]));
    }

    #[test]
    fn unknown_inputs() {
        assert!(
            unknown(eval(&Params::default(), SnapshotBuilder::new().broker_account_unavailable()))
                .contains("broker:account")
        );
        assert!(unknown(eval(&GUARDED, SnapshotBuilder::new().no_configuration())).contains("not fetched"));
        let got = blind(eval(&GUARDED, SnapshotBuilder::new().configuration_unavailable()));
        assert_eq!(got.blind[0].subject, "broker:configurations");
        assert_eq!(got.blind[0].observed, json!({ "source": "broker:configurations", "status": "unavailable" }));
        let b = SnapshotBuilder::new().account_with(|a| a.buying_power = None);
        assert_eq!(
            unknown(eval(&Params::default(), b)),
            "the account reports no buying_power, so negative buying power cannot be checked"
        );
    }

    /// Issue 12: an account without `buying_power` made the whole rule unknown, hiding a
    /// blocked, closed account. Each condition is now judged on its own, and the missing field
    /// is a `rule_unknown` naming it.
    #[test]
    fn a_missing_buying_power_names_the_field_and_does_not_hide_a_closed_blocked_account() {
        let b = SnapshotBuilder::new().account_with(|a| {
            a.buying_power = None;
            a.status = "ACCOUNT_CLOSED".into();
            a.trading_blocked = Some(true);
            a.account_blocked = Some(true);
        });
        let got = blind(eval(&Params::default(), b));
        assert_eq!(got.blind.len(), 1, "{got:#?}");
        assert_eq!((got.blind[0].code, got.blind[0].subject.as_str()), ("rule_unknown", "account"));
        assert_eq!(got.blind[0].observed, json!({ "field": "buying_power", "value": null }));
        assert_eq!(got.issues.len(), 1, "{got:#?}");
        assert_eq!(got.issues[0].code, "account_blocked");
        assert_eq!(
            got.issues[0].message,
            "the account cannot trade normally: status is ACCOUNT_CLOSED, account_blocked is true, trading_blocked is true"
        );
    }

    /// The same class: unreadable account configurations (needed only by
    /// `expect_no_shorting`) made the whole rule unknown, hiding a blocked account and negative
    /// buying power.
    #[test]
    fn unreadable_configurations_do_not_hide_a_blocked_account_or_negative_buying_power() {
        let blocked = || {
            SnapshotBuilder::new().account_with(|a| {
                a.trading_blocked = Some(true);
                a.buying_power = Some(d("-10"));
            })
        };
        for b in [blocked().no_configuration(), blocked().configuration_unavailable()] {
            let got = blind(eval(&GUARDED, b));
            let codes: Vec<&str> = got.issues.iter().map(|i| i.code).collect();
            assert_eq!(codes, ["account_blocked", "negative_buying_power"], "{got:#?}");
            assert_eq!(got.blind.len(), 1, "{got:#?}");
            assert!(got.blind[0].message.contains("expect_no_shorting needs the account configurations"));
        }
    }

    #[test]
    fn reads_parameters_and_defaults() {
        assert_eq!(read_ok("", Params::read, &SPEC), Params::default());
        assert_eq!(read_ok("expect_no_shorting = true\n", Params::read, &SPEC), GUARDED);
        let got = read_params("expect_no_shorting = \"yes\"\nexpect_no_shortin = true\n", Params::read, &SPEC);
        assert!(got.0.is_none());
        assert_problems(&got, &[(1, "`expect_no_shorting` in rule `t`"), (2, "did you mean `expect_no_shorting`?")]);
    }
}
