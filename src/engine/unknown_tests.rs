//! Issue 12, "blind must look blind": an unknown rule weighs as much as that rule violated.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::json;

use super::evaluate;
use crate::checks::testkit::SnapshotBuilder;
use crate::checks::{Check, account_health, no_short_positions};
use crate::config::{Rule, When};
use crate::model::{BrokerView, Outcome, Severity, Snapshot};

fn rule(id: &str, check: Arc<dyn Check>, severity: Severity, when: When) -> Rule {
    Rule {
        id: id.into(),
        check,
        severity,
        hold: None,
        repeat: None,
        when,
        actions: vec![],
        description: None,
        origin: "rules/test.toml".into(),
        id_offset: 0,
    }
}

fn rules() -> Vec<Rule> {
    vec![
        rule("no-shorts", Arc::new(no_short_positions::Params {}), Severity::Critical, When::Always),
        rule("account", Arc::new(account_health::Params::default()), Severity::Warning, When::Always),
        rule("shorts-while-open", Arc::new(no_short_positions::Params {}), Severity::Info, When::MarketOpen),
    ]
}

fn broker_down() -> (Snapshot, DateTime<Utc>) {
    let mut snap = SnapshotBuilder::new().build();
    snap.broker = BrokerView::unavailable("connection refused");
    let now = snap.taken_at;
    (snap, now)
}

/// With every broker call failing, every rule used to be `?` with no finding, so
/// `--fail-on critical` exited 0. Now each blind rule has a `rule_unknown` finding at its own
/// severity, subject the failed source it needed first.
#[test]
fn with_the_broker_down_every_blind_rule_is_a_finding_at_its_own_severity() {
    let (snap, now) = broker_down();
    let ev = evaluate(&rules(), &snap, now);
    let blind: Vec<(&str, &str, Severity)> = ev
        .findings
        .iter()
        .filter(|f| f.code == "rule_unknown")
        .map(|f| (f.rule.as_str(), f.subject.as_str(), f.severity))
        .collect();
    assert_eq!(
        blind,
        [
            ("no-shorts", "broker:positions", Severity::Critical),
            ("account", "broker:account", Severity::Warning),
            ("shorts-while-open", "broker:clock", Severity::Info),
        ]
    );
    for o in &ev.outcomes {
        assert_eq!(o.outcome, Outcome::Unknown, "{o:?}");
    }
    let f = ev.findings.iter().find(|f| f.rule == "no-shorts").unwrap();
    assert_eq!(f.check, "no_short_positions");
    assert_eq!(f.observed, json!({ "source": "broker:positions", "status": "unavailable" }));
    assert_eq!(ev.outcomes[0].reason.as_deref(), Some("broker:positions is unavailable"));
    assert_eq!(
        ev.outcomes[2].reason.as_deref(),
        Some("`when` needs the market clock, but broker:clock is unavailable")
    );
    assert_eq!(ev.findings.iter().map(|f| f.severity).max(), Some(Severity::Critical));
}

/// Rules skipped by `when` are not unknown: no `rule_unknown`.
#[test]
fn a_rule_skipped_by_when_is_not_unknown() {
    let mut snap = SnapshotBuilder::new().build();
    if let Ok(c) = &mut snap.broker.clock {
        c.is_open = false;
    }
    let now = snap.taken_at;
    let ev = evaluate(&rules(), &snap, now);
    assert_eq!(ev.outcome("shorts-while-open"), Some(Outcome::Skipped));
    assert!(ev.findings.is_empty(), "{:#?}", ev.findings);
}

/// A rule blind in part keeps the findings of the parts it could see, and stays `unknown`
/// (so nothing of it resolves and no action runs on it).
#[test]
fn a_partly_blind_rule_is_unknown_with_its_findings_and_the_blind_part() {
    let snap = SnapshotBuilder::new()
        .account_with(|a| {
            a.buying_power = None;
            a.status = "ACCOUNT_CLOSED".into();
        })
        .build();
    let now = snap.taken_at;
    let ev = evaluate(&rules(), &snap, now);
    assert_eq!(ev.outcome("account"), Some(Outcome::Unknown));
    let got: Vec<(&str, &str, Severity)> =
        ev.findings.iter().map(|f| (f.code.as_str(), f.subject.as_str(), f.severity)).collect();
    assert_eq!(
        got,
        [("account_blocked", "account", Severity::Warning), ("rule_unknown", "account", Severity::Warning)]
    );
    assert!(ev.findings[1].message.contains("buying_power"), "{}", ev.findings[1].message);
}
