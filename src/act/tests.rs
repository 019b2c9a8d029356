//! The gates, end to end through `Actor::on_cycle` and `recover`, with the in-memory broker,
//! a real configuration and the real alert lifecycle; the clock is injected.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use rust_decimal::dec;
use serde_json::json;

use super::broker::fake::{CloseMode, FakeBroker, order};
use super::confirm::Timing;
use super::journal::{Intent, Journal, Ledger, Outcome, Record};
use super::request::requests;
use super::runner::{Clockwork, Runner};
use super::*;
use crate::alert::{AlertBook, Silence, step};
use crate::config::Config;
use crate::model::{ActionKind, BotView, Mode, Order, OrderSide, Severity, Snapshot};

struct Env {
    dir: tempfile::TempDir,
    cfg: Config,
}

fn env(actions: &str, rules: &str) -> Env {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("rules.toml"), rules).unwrap();
    std::fs::create_dir_all(dir.path().join("bot")).unwrap();
    let toml = format!(
        r#"state_dir = "state"
rules = ["rules.toml"]
[broker]
kind = "alpaca"
base_url = "http://127.0.0.1:9"
[bot]
root = "bot"
[bot.positions]
file = "positions.json"
at = "/opens"
[actions]
{actions}
"#
    );
    std::fs::write(dir.path().join("tradewarden.toml"), toml).unwrap();
    let cfg = Config::load(&dir.path().join("tradewarden.toml")).unwrap_or_else(|e| panic!("{e}"));
    Env { dir, cfg }
}

const ACT: &str = "mode = \"act\"\nconfirm_timeout = \"200ms\"\n";

const NO_SHORTS: &str = r#"
[[rule]]
id = "no-shorts"
check = "no_short_positions"
severity = "critical"
actions = ["flatten_shorts"]
"#;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 20, 15, 30, 0).unwrap()
}

fn phantom() -> Arc<FakeBroker> {
    Arc::new(FakeBroker::new(
        &[("AAPL", 10), ("CHWY", -1596), ("BILL", -413)],
        vec![order("o-chwy", "CHWY", OrderSide::Sell, 1596), order("o-aapl", "AAPL", OrderSide::Sell, 5)],
    ))
}

fn actor(e: &Env, b: &Arc<FakeBroker>) -> Actor {
    let ops: Arc<dyn ActBroker> = b.clone();
    Actor::with_broker(&e.cfg, ops).with_poll_interval(Duration::from_millis(10))
}

/// One daemon cycle: snapshot from the fake, evaluate, lifecycle, then the hook. `after_snapshot`
/// changes the broker between the snapshot and the actions.
async fn cycle_with(
    e: &Env,
    b: &Arc<FakeBroker>,
    a: &mut Actor,
    silences: &[Silence],
    after_snapshot: impl FnOnce(&FakeBroker),
) -> Vec<ActionReport> {
    let snap = Snapshot {
        taken_at: now(),
        mode: b.mode(),
        broker: b.view().await,
        bot: BotView { positions: Ok(Vec::new()), metadata: None },
        logs: BTreeMap::new(),
    };
    let ev = crate::engine::evaluate(&e.cfg.rules, &snap, now());
    let (book, _) = step(&AlertBook::default(), &e.cfg.rules, &ev, silences, &e.cfg.alerts, now());
    after_snapshot(b);
    b.with(|s| s.calls.clear());
    a.on_cycle(&e.cfg, &book, &snap, &ev, now()).await
}

async fn cycle(e: &Env, b: &Arc<FakeBroker>, a: &mut Actor) -> Vec<ActionReport> {
    cycle_with(e, b, a, &[], |_| {}).await
}

fn ledger(e: &Env) -> Ledger {
    Journal::new(&e.cfg.state_dir).read().unwrap()
}

fn intent(id: &str, at: DateTime<Utc>, action: &str, fingerprint: &str, targets: serde_json::Value) -> Intent {
    Intent {
        id: id.into(),
        at,
        action: action.into(),
        origin: "daemon".into(),
        rules: vec!["no-shorts".into()],
        fingerprints: vec![fingerprint.into()],
        subject: "CHWY".into(),
        why: vec![],
        steps: vec!["DELETE /v2/positions/CHWY (the broker buys to cover 1596)".into()],
        // As the journal reads a line of the untyped format.
        targets: serde_json::from_value(targets).unwrap(),
        broker_seen: serde_json::Value::Null,
        diff: None,
    }
}

fn done(id: &str, at: DateTime<Utc>) -> Outcome {
    Outcome {
        id: id.into(),
        at,
        action: "flatten_shorts".into(),
        result: "done".into(),
        detail: String::new(),
        steps: vec![],
        broker_after: serde_json::Value::Null,
        diff: None,
        exec: None,
    }
}

#[tokio::test]
async fn observe_mode_describes_the_exact_steps_and_sends_nothing() {
    let e = env("mode = \"observe\"", NO_SHORTS);
    let b = phantom();
    let mut a = actor(&e, &b);
    let out = cycle(&e, &b, &mut a).await;
    assert_eq!(out.len(), 1, "one flatten for both shorts: {out:?}");
    let r = &out[0];
    assert_eq!((r.action.as_str(), r.result.as_str()), ("flatten_shorts", "described"));
    assert_eq!(r.subject, "BILL,CHWY");
    assert_eq!(
        r.detail,
        "observe mode, nothing sent: would DELETE /v2/positions/BILL (the broker buys to cover 413); then \
         cancel open sell order o-chwy on CHWY (limit 1596 @ 45); then DELETE /v2/positions/CHWY (the broker buys to cover 1596)"
    );
    assert!(b.calls().is_empty(), "observe mode reads nothing more and sends nothing: {:?}", b.calls());
    assert!(!e.cfg.state_dir.join("actions.jsonl").exists());
}

#[tokio::test]
async fn act_mode_flattens_every_short_once_with_one_intent_and_one_outcome() {
    let e = env(ACT, NO_SHORTS);
    let b = phantom();
    let mut a = actor(&e, &b);
    let out = cycle(&e, &b, &mut a).await;
    assert_eq!(out.len(), 1);
    let r = &out[0];
    assert_eq!(r.result, "done", "{r:?}");
    assert!(r.finding.is_none());
    assert_eq!(b.writes(), ["close:BILL", "cancel:o-chwy", "close:CHWY"]);
    assert_eq!(b.qty("AAPL"), dec!(10), "the long is untouched");
    assert!(b.with(|s| s.placed.iter().all(|p| p.side == "buy")));
    let l = ledger(&e);
    assert_eq!((l.intents.len(), l.outcomes.len()), (1, 1));
    let i = &l.intents[0];
    assert_eq!(i.fingerprints, ["no-shorts/BILL", "no-shorts/CHWY"]);
    assert_eq!(i.targets.symbols(), ["BILL", "CHWY"]);
    assert!(i.why[0].contains("short_position"), "{:?}", i.why);
    assert!(i.broker_seen["positions"].as_array().unwrap().len() == 3);
    assert_eq!(l.outcome(&i.id).unwrap().result, "done");
    assert_eq!(r.journal_id.as_deref(), Some(i.id.as_str()));
}

#[tokio::test]
async fn the_live_guard_refuses_before_touching_anything() {
    let e = env(ACT, NO_SHORTS);
    let b = phantom();
    b.with(|s| s.mode = Some(Mode::Live));
    let mut a = actor(&e, &b);
    let out = cycle(&e, &b, &mut a).await;
    let r = &out[0];
    assert_eq!(r.result, "refused");
    let f = r.finding.as_ref().unwrap();
    assert_eq!((f.rule.as_str(), f.code.as_str(), f.severity), ("actions", "action_refused", Severity::Critical));
    assert!(f.message.contains("allow_live"), "{}", f.message);
    assert!(b.calls().is_empty(), "no read, no write: {:?}", b.calls());
    assert!(!e.cfg.state_dir.join("actions.jsonl").exists());

    let e = env(&format!("{ACT}allow_live = true"), NO_SHORTS);
    let mut a = actor(&e, &b);
    assert_eq!(cycle(&e, &b, &mut a).await[0].result, "done", "allowed explicitly");
}

/// Issue 12 §3g: the host and the key said paper, but the account is live: no action without
/// `allow_live`, and an account that cannot be read cannot confirm paper either.
#[tokio::test]
async fn an_account_that_says_live_is_refused_without_allow_live() {
    let e = env(ACT, NO_SHORTS);
    let b = phantom();
    b.with(|s| s.account_number = Some("3XK8Q1ZT7M".into()));
    let mut a = actor(&e, &b);
    let out = cycle(&e, &b, &mut a).await;
    let r = &out[0];
    assert_eq!(r.result, "refused", "{r:?}");
    let f = r.finding.as_ref().unwrap();
    assert_eq!((f.code.as_str(), f.severity), ("action_refused", Severity::Critical));
    assert!(f.message.contains("the account says it is live") && f.message.contains("allow_live"), "{}", f.message);
    assert!(b.writes().is_empty(), "{:?}", b.writes());
    assert!(ledger(&e).intents.is_empty());
    // An account that cannot be read cannot confirm paper: no action.
    let b = phantom();
    b.with(|s| s.account_read_fails = true);
    let mut a = actor(&e, &b);
    let out = cycle(&e, &b, &mut a).await;
    assert_eq!(out[0].result, "skipped", "{out:?}");
    assert!(out[0].detail.starts_with("cannot re-read the account to confirm it is paper"), "{}", out[0].detail);
    assert!(b.writes().is_empty(), "{:?}", b.writes());
    assert!(ledger(&e).intents.is_empty());
    let b = phantom();
    b.with(|s| s.account_number = Some("3XK8Q1ZT7M".into()));
    let e = env(&format!("{ACT}allow_live = true"), NO_SHORTS);
    let mut a = actor(&e, &b);
    assert_eq!(cycle(&e, &b, &mut a).await[0].result, "done", "allowed explicitly");
}

#[tokio::test]
async fn silenced_alerts_take_no_part() {
    let e = env(ACT, NO_SHORTS);
    let b = phantom();
    let mut a = actor(&e, &b);
    let s = |subject: &str| Silence {
        id: format!("s-{subject}"),
        rule: "no-shorts".into(),
        subject: Some(subject.into()),
        code: None,
        starts_at: now() - chrono::Duration::hours(1),
        ends_at: now() + chrono::Duration::hours(1),
        reason: "handled by hand".into(),
        created_by: None,
    };
    let out = cycle_with(&e, &b, &mut a, &[s("CHWY"), s("BILL")], |_| {}).await;
    assert!(out.is_empty(), "a silenced alert takes no part: {out:?}");
    assert!(b.writes().is_empty());
    // One silenced, one not: only BILL is flattened.
    let out = cycle_with(&e, &b, &mut a, &[s("CHWY")], |_| {}).await;
    assert_eq!(out[0].result, "done");
    assert_eq!(b.writes(), ["close:BILL"]);
    assert_eq!(b.qty("CHWY"), dec!(-1596));
}

fn spend(e: &Env, action: &str, n: usize) {
    let j = Journal::new(&e.cfg.state_dir);
    for k in 0..n {
        let id = format!("{action}-{k}");
        let at = now() - chrono::Duration::minutes(i64::try_from(k).unwrap() * 20 + 20);
        j.append(&Record::Intent(intent(&id, at, action, &format!("other/{action}-{k}"), json!({})))).unwrap();
        j.append(&Record::Outcome(done(&id, at))).unwrap();
    }
}

const EXEC_X: &str = "\n[actions.exec.x]\ncommand = [\"true\"]\n";

/// Issue 12 §3e: `exec:` hooks on a persistent warning spent the one shared daily budget, and
/// `flatten_shorts` was then refused while a -1596 short stayed open all day.
#[tokio::test]
async fn exec_hooks_spending_the_daily_budget_never_starve_flatten_shorts() {
    let e = env(&format!("{ACT}max_per_day = 2{EXEC_X}"), NO_SHORTS);
    spend(&e, "exec:x", 5);
    let b = phantom();
    let mut a = actor(&e, &b);
    let out = cycle(&e, &b, &mut a).await;
    assert_eq!(out[0].result, "done", "{out:?}");
    assert_eq!(b.qty("CHWY"), dec!(0));
}

#[tokio::test]
async fn a_spent_protective_budget_refuses_with_a_critical_finding() {
    let e = env(&format!("{ACT}[actions.budget]\nflatten_shorts = 2\n"), NO_SHORTS);
    spend(&e, "flatten_shorts", 2);
    let b = phantom();
    let mut a = actor(&e, &b);
    let out = cycle(&e, &b, &mut a).await;
    let r = &out[0];
    assert_eq!(r.result, "refused");
    let f = r.finding.as_ref().unwrap();
    assert_eq!((f.code.as_str(), f.severity), ("action_budget_exhausted", Severity::Critical));
    assert!(f.message.contains("2 of [actions.budget] flatten_shorts = 2"), "{}", f.message);
    assert!(b.writes().is_empty());

    // Without [actions.budget], a protective action has its own default, not max_per_day.
    let e = env(&format!("{ACT}max_per_day = 1"), NO_SHORTS);
    spend(&e, "flatten_shorts", 9);
    let mut a = actor(&e, &b);
    assert_eq!(cycle(&e, &b, &mut a).await[0].result, "done");
    let e = env(&format!("{ACT}max_per_day = 1"), NO_SHORTS);
    spend(&e, "flatten_shorts", 10);
    let b = phantom();
    let mut a = actor(&e, &b);
    let out = cycle(&e, &b, &mut a).await;
    let f = out[0].finding.as_ref().unwrap();
    assert_eq!(f.severity, Severity::Critical);
    assert!(f.message.contains("10 of the default budget of a protective action, 10"), "{}", f.message);
}

#[tokio::test]
async fn non_protective_actions_share_max_per_day_and_are_refused_with_a_warning() {
    let rules = NO_SHORTS.replace("[\"flatten_shorts\"]", "[\"exec:x\"]");
    // Protective actions spent today do not count against max_per_day.
    let e = env(&format!("{ACT}max_per_day = 2{EXEC_X}"), &rules);
    spend(&e, "flatten_shorts", 5);
    spend(&e, "fix_state", 1);
    let b = phantom();
    let mut a = actor(&e, &b);
    assert_eq!(cycle(&e, &b, &mut a).await[0].result, "done");
    spend(&e, "fix_state", 1);
    let mut a = actor(&e, &b);
    let out = cycle(&e, &b, &mut a).await;
    let f = out[0].finding.as_ref().unwrap();
    assert_eq!((out[0].result.as_str(), f.severity), ("refused", Severity::Warning));
    assert!(f.message.contains("3 of max_per_day = 2"), "{}", f.message);
    // An own budget below the shared one.
    let e = env(&format!("{ACT}max_per_day = 9{EXEC_X}[actions.budget]\n\"exec:x\" = 1\n"), &rules);
    spend(&e, "exec:x", 1);
    let mut a = actor(&e, &b);
    let out = cycle(&e, &b, &mut a).await;
    let f = out[0].finding.as_ref().unwrap();
    assert!(f.message.contains("1 of [actions.budget] exec:x = 1"), "{}", f.message);
}

#[test]
fn budget_keys_and_values_are_checked_with_their_line() {
    let err = |actions: &str| {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("rules.toml"), NO_SHORTS).unwrap();
        let toml = format!(
            "state_dir = \"state\"\nrules = [\"rules.toml\"]\n[broker]\nkind = \"alpaca\"\n[bot]\nroot = \".\"\n\
             [bot.positions]\nfile = \"p.json\"\nat = \"/opens\"\n[actions]\n{actions}\n"
        );
        std::fs::write(dir.path().join("tradewarden.toml"), toml).unwrap();
        Config::load(&dir.path().join("tradewarden.toml")).map(|_| ()).unwrap_err().to_string()
    };
    let e = err("[actions.budget]\nflaten_shorts = 3");
    assert!(e.contains("tradewarden.toml:12:") && e.contains("unknown action `flaten_shorts`"), "{e}");
    let e = err("[actions.budget]\n\"exec:nope\" = 3");
    assert!(e.contains("tradewarden.toml:12:") && e.contains("names no [actions.exec.nope] table"), "{e}");
    let e = err("[actions.budget]\nfix_state = -1");
    assert!(e.contains("tradewarden.toml:12:") && e.contains("`fix_state` in [actions.budget]"), "{e}");
    let e = err("[actions.budget]\nflatten_shorts = 0");
    assert!(e.contains("tradewarden.toml:12:") && e.contains("flatten_shorts is protective"), "{e}");
    let e = err("[actions.budget]\nfix_state = \"ten\"");
    assert!(e.contains("tradewarden.toml:12:"), "{e}");
}

#[tokio::test]
async fn the_cooldown_is_per_fingerprint_and_action() {
    let e = env(ACT, NO_SHORTS);
    let j = Journal::new(&e.cfg.state_dir);
    let recent = now() - chrono::Duration::minutes(3);
    j.append(&Record::Intent(intent("a", recent, "flatten_shorts", "no-shorts/CHWY", json!({})))).unwrap();
    j.append(&Record::Outcome(done("a", recent))).unwrap();
    let b = phantom();
    let mut a = actor(&e, &b);
    let out = cycle(&e, &b, &mut a).await;
    assert_eq!(out[0].result, "done");
    assert_eq!(b.writes(), ["close:BILL"], "CHWY is cooling down, BILL is not");
    // Both cooling now.
    b.with(|s| {
        s.positions.insert("BILL".into(), dec!(-5));
    });
    let out = cycle(&e, &b, &mut a).await;
    assert_eq!(out[0].result, "skipped");
    assert!(out[0].detail.starts_with("cooldown: no-shorts/BILL"), "{}", out[0].detail);
    assert!(b.writes().is_empty());
}

#[tokio::test]
async fn a_violation_gone_on_the_re_read_means_no_action() {
    let e = env(ACT, NO_SHORTS);
    let b = phantom();
    let mut a = actor(&e, &b);
    let out = cycle_with(&e, &b, &mut a, &[], |b| {
        // Covered by someone else between the audit and the action.
        b.with(|s| {
            s.positions.remove("CHWY");
            s.positions.remove("BILL");
        });
    })
    .await;
    assert_eq!(out[0].result, "skipped");
    assert!(out[0].detail.contains("no-shorts/CHWY: the violation is gone on the re-read"), "{}", out[0].detail);
    assert!(b.writes().is_empty());
    assert_eq!(b.calls(), ["view"], "the re-read");
    assert!(ledger(&e).intents.is_empty(), "no intent for no action");
}

#[tokio::test]
async fn a_failed_re_read_or_an_unknown_rule_means_no_action() {
    let e = env(ACT, NO_SHORTS);
    let b = phantom();
    let mut a = actor(&e, &b);
    let out = cycle_with(&e, &b, &mut a, &[], |b| b.with(|s| s.reads_fail = true)).await;
    assert_eq!(out[0].result, "skipped");
    assert!(out[0].detail.contains("unknown on the re-read"), "{}", out[0].detail);
    assert!(b.writes().is_empty());

    // The re-evaluation passes but the action's own re-read fails.
    let b = phantom();
    let snap = Snapshot {
        taken_at: now(),
        mode: b.mode(),
        broker: b.view().await,
        bot: BotView { positions: Ok(Vec::new()), metadata: None },
        logs: BTreeMap::new(),
    };
    let ev = crate::engine::evaluate(&e.cfg.rules, &snap, now());
    let (book, _) = step(&AlertBook::default(), &e.cfg.rules, &ev, &[], &e.cfg.alerts, now());
    let hooks = Hooks::default();
    let runner = Runner {
        cfg: &e.cfg,
        broker: &*b,
        journal: Journal::new(&e.cfg.state_dir),
        timing: Timing { timeout: Duration::from_millis(50), poll: Duration::from_millis(10) },
        clock: Clockwork::new(now()),
        hooks: &hooks,
    };
    b.with(|s| s.reads_fail = true);
    let reqs = requests(&e.cfg, &book, &snap, &ev);
    let (r, _) = runner.run(&reqs[0], &mut Ledger::default(), None, None).await;
    assert_eq!(r.result, "skipped");
    assert!(r.detail.starts_with("cannot re-read the positions"), "{}", r.detail);
    assert!(b.writes().is_empty());

    // The rule was unknown this cycle (a firing alert holds while unknown): no action.
    let mut unknown_req = reqs[0].clone();
    unknown_req.triggers.iter_mut().for_each(|t| t.unknown = true);
    b.with(|s| s.reads_fail = false);
    let (r, _) = runner.run(&unknown_req, &mut Ledger::default(), None, None).await;
    assert_eq!(r.result, "skipped");
    assert!(r.detail.contains("its rule is unknown this cycle"), "{}", r.detail);
    assert!(b.writes().is_empty());
}

#[tokio::test]
async fn an_unconfirmed_flatten_is_a_critical_finding() {
    let e = env(ACT, NO_SHORTS);
    let b = Arc::new(FakeBroker::new(&[("OKTA", -170)], vec![]));
    b.with(|s| s.close_mode = CloseMode::NeverFill);
    let mut a = actor(&e, &b);
    let out = cycle(&e, &b, &mut a).await;
    let r = &out[0];
    assert_eq!(r.result, "unconfirmed");
    let f = r.finding.as_ref().unwrap();
    assert_eq!((f.code.as_str(), f.severity), ("action_unconfirmed", Severity::Critical));
    assert_eq!(ledger(&e).outcomes.values().next().unwrap().result, "unconfirmed");
    // Unconfirmed counts against the budget and starts the cooldown: not repeated next cycle.
    let out = cycle(&e, &b, &mut a).await;
    assert_eq!(out[0].result, "skipped");
    assert_eq!(b.writes(), Vec::<String>::new());
}

#[tokio::test]
async fn actions_run_in_a_safe_order_with_suspend_trading_last() {
    let rules = r#"
[[rule]]
id = "no-shorts"
check = "no_short_positions"
severity = "critical"
actions = ["suspend_trading", "flatten_shorts", "enforce_no_shorting"]
"#;
    let e = env(ACT, rules);
    let b = phantom();
    let mut a = actor(&e, &b);
    let out = cycle(&e, &b, &mut a).await;
    let actions: Vec<(&str, &str)> = out.iter().map(|r| (r.action.as_str(), r.result.as_str())).collect();
    assert_eq!(actions, [("enforce_no_shorting", "done"), ("flatten_shorts", "done"), ("suspend_trading", "done")]);
    assert_eq!(
        b.writes(),
        [
            r#"patch:{"no_shorting":true}"#,
            "close:BILL",
            "cancel:o-chwy",
            "close:CHWY",
            r#"patch:{"suspend_trade":true}"#
        ]
    );
    let l = ledger(&e);
    assert_eq!((l.intents.len(), l.outcomes.len()), (3, 3));
}

#[tokio::test]
async fn cancel_hazard_orders_cancels_exactly_the_flagged_orders() {
    let rules = r#"
[[rule]]
id = "order-hazards"
check = "open_order_hazard"
severity = "critical"
actions = ["cancel_hazard_orders"]
"#;
    let e = env(ACT, rules);
    // A sell of 50 against a long of 10: it would open a short. The small sell is fine.
    let b = Arc::new(FakeBroker::new(
        &[("CHWY", 10), ("AAPL", 5)],
        vec![order("bad", "CHWY", OrderSide::Sell, 50), order("ok", "AAPL", OrderSide::Sell, 5)],
    ));
    b.with(|s| {
        for o in &mut s.orders {
            o.submitted_at = Some(now() - chrono::Duration::minutes(1));
        }
    });
    let mut a = actor(&e, &b);
    let out = cycle(&e, &b, &mut a).await;
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!((out[0].result.as_str(), out[0].subject.as_str()), ("done", "CHWY"), "{:?}", out[0]);
    assert_eq!(b.writes(), ["cancel:bad"]);
}

/// Issue 12 follow-up: the ids to cancel came from the alert's findings, not from the fresh
/// re-check: when the oldest of three duplicates filled between the audit and the action,
/// both remaining ones were cancelled (the one to keep with them).
#[tokio::test]
async fn the_orders_cancelled_come_from_the_fresh_re_check_not_the_alert() {
    let rules = r#"
[[rule]]
id = "order-hazards"
check = "open_order_hazard"
severity = "critical"
actions = ["cancel_hazard_orders"]
"#;
    let e = env(ACT, rules);
    let b = Arc::new(FakeBroker::new(
        &[],
        vec![
            order("d1", "AAPL", OrderSide::Buy, 5),
            order("d2", "AAPL", OrderSide::Buy, 5),
            order("d3", "AAPL", OrderSide::Buy, 5),
        ],
    ));
    b.with(|s| {
        for (o, mins) in s.orders.iter_mut().zip([3, 2, 1]) {
            o.submitted_at = Some(now() - chrono::Duration::minutes(mins));
        }
    });
    let mut a = actor(&e, &b);
    // The alert names d2 and d3 (d1 is kept); then d1 fills.
    let out = cycle_with(&e, &b, &mut a, &[], |b| {
        b.with(|s| s.orders[0].status = "filled".into());
    })
    .await;
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].result, "done", "{:?}", out[0]);
    assert_eq!(b.writes(), ["cancel:d3"], "d2 is now the one to keep");
    assert!(b.with(|s| s.orders[1].is_open()), "d2 still open");
}

#[tokio::test]
async fn recover_resolves_an_interrupted_flatten_without_repeating_it() {
    let e = env(ACT, NO_SHORTS);
    let j = Journal::new(&e.cfg.state_dir);
    let at = now() - chrono::Duration::minutes(1);
    j.append(&Record::Intent(intent(
        "x",
        at,
        "flatten_shorts",
        "no-shorts/CHWY",
        json!({"symbols": ["CHWY", "BILL"]}),
    )))
    .unwrap();
    // The close of CHWY went through before the crash; BILL's did not.
    let b = Arc::new(FakeBroker::new(&[("BILL", -413)], vec![]));
    let mut a = actor(&e, &b);
    let out = a.recover(now()).await;
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].result, "recovered");
    assert!(
        out[0].detail.ends_with("re-read: CHWY is flat; BILL is still short -413 (left for the next cycle's gates)"),
        "{}",
        out[0].detail
    );
    let f = out[0].finding.as_ref().unwrap();
    assert_eq!(f.code, "action_interrupted");
    assert_eq!(f.severity, Severity::Critical, "a short is still open");
    assert_eq!(f.observed["reread"], "CHWY is flat; BILL is still short -413 (left for the next cycle's gates)");
    assert!(b.writes().is_empty(), "never repeated: {:?}", b.writes());
    let l = ledger(&e);
    assert!(l.unresolved().is_empty());
    assert_eq!(l.spent(now().date_naive()), 1, "the interrupted attempt counts");
    assert!(a.recover(now()).await.is_empty(), "resolved once");
}

#[tokio::test]
async fn an_unreadable_broker_leaves_the_intent_for_the_next_cycle() {
    let e = env(ACT, NO_SHORTS);
    let j = Journal::new(&e.cfg.state_dir);
    j.append(&Record::Intent(intent("x", now(), "flatten_shorts", "no-shorts/CHWY", json!({"symbols": ["CHWY"]}))))
        .unwrap();
    let b = Arc::new(FakeBroker::new(&[], vec![]));
    b.with(|s| s.reads_fail = true);
    let mut a = actor(&e, &b);
    let out = a.recover(now()).await;
    assert_eq!(out[0].result, "skipped");
    assert!(a.has_unresolved());
    // Unknown is never OK: the operator hears of the interrupted action at once, and once.
    let f = out[0].finding.as_ref().expect("an interrupted action the re-read cannot resolve is a finding");
    assert_eq!((f.code.as_str(), f.severity), ("action_interrupted", Severity::Critical));
    let out = cycle(&e, &b, &mut a).await;
    assert_eq!(out[0].result, "skipped");
    assert!(out[0].finding.is_none(), "not again on every failed retry: {out:?}");
    b.with(|s| s.reads_fail = false);
    let out = cycle(&e, &b, &mut a).await;
    assert_eq!(out[0].result, "recovered", "retried by the next cycle: {out:?}");
    assert!(!a.has_unresolved());
    let f = out[0].finding.as_ref().unwrap();
    assert_eq!((f.code.as_str(), f.severity), ("action_interrupted", Severity::Warning), "CHWY is flat now");
}

#[tokio::test]
async fn an_interrupted_action_the_start_up_could_not_resolve_is_resolved_by_an_observe_mode_cycle_too() {
    let e = env("mode = \"observe\"\n", NO_SHORTS);
    let j = Journal::new(&e.cfg.state_dir);
    j.append(&Record::Intent(intent("x", now(), "flatten_shorts", "no-shorts/CHWY", json!({"symbols": ["CHWY"]}))))
        .unwrap();
    let b = Arc::new(FakeBroker::new(&[], vec![]));
    b.with(|s| s.reads_fail = true);
    let mut a = actor(&e, &b);
    assert_eq!(a.recover(now()).await[0].result, "skipped");
    b.with(|s| s.reads_fail = false);
    let out = cycle(&e, &b, &mut a).await;
    assert!(out.iter().any(|r| r.result == "recovered"), "the resolution is owed in observe mode too: {out:?}");
    assert!(!a.has_unresolved());
    assert!(b.writes().is_empty());
}

#[tokio::test]
async fn an_interrupted_cancel_whose_order_is_still_open_is_critical() {
    let e = env(ACT, NO_SHORTS);
    let j = Journal::new(&e.cfg.state_dir);
    j.append(&Record::Intent(intent("x", now(), "cancel_hazard_orders", "hazard/CHWY", json!({"order_ids": ["bad"]}))))
        .unwrap();
    let b = Arc::new(FakeBroker::new(&[("CHWY", 10)], vec![order("bad", "CHWY", OrderSide::Sell, 50)]));
    let out = actor(&e, &b).recover(now()).await;
    let f = out[0].finding.as_ref().unwrap();
    assert_eq!((f.code.as_str(), f.severity), ("action_interrupted", Severity::Critical), "{out:?}");
    assert!(f.message.contains("order bad is still open"), "{}", f.message);
}

#[tokio::test]
async fn an_unreadable_journal_means_no_action() {
    let e = env(ACT, NO_SHORTS);
    std::fs::create_dir_all(e.cfg.state_dir.join("actions.jsonl")).unwrap();
    let b = phantom();
    let mut a = actor(&e, &b);
    a.unresolved = false;
    let out = cycle(&e, &b, &mut a).await;
    assert_eq!(out[0].result, "refused");
    assert_eq!(out[0].finding.as_ref().unwrap().severity, Severity::Critical);
    assert!(b.writes().is_empty());
}

#[tokio::test]
async fn a_replay_broker_only_describes() {
    let e = env(ACT, NO_SHORTS);
    let replay =
        crate::collect::broker::Broker::Replay(crate::collect::broker::replay::ReplayBroker::new(e.dir.path()));
    let mut a = Actor::new(&e.cfg, &replay);
    let b = phantom();
    let out = cycle(&e, &b, &mut a).await;
    assert_eq!(out[0].result, "skipped");
    assert!(out[0].detail.contains("replayed snapshot"), "{}", out[0].detail);
}

#[tokio::test]
async fn flatten_all_closes_everything_through_the_broker_whatever_the_alert_is_about() {
    let rules = NO_SHORTS.replace("flatten_shorts", "flatten_all");
    let e = env(ACT, &rules);
    let b = phantom();
    let mut a = actor(&e, &b);
    let out = cycle(&e, &b, &mut a).await;
    assert_eq!((out[0].action.as_str(), out[0].result.as_str()), ("flatten_all", "done"), "{out:?}");
    assert_eq!(b.writes(), ["close_all"]);
    assert!(b.with(|s| s.positions.is_empty()));
    let l = ledger(&e);
    assert_eq!(l.intents[0].targets.symbols(), ["AAPL", "BILL", "CHWY"]);
}

#[tokio::test]
async fn the_runner_itself_refuses_silenced_triggers() {
    let e = env(ACT, NO_SHORTS);
    let b = phantom();
    let snap = Snapshot {
        taken_at: now(),
        mode: b.mode(),
        broker: b.view().await,
        bot: BotView { positions: Ok(Vec::new()), metadata: None },
        logs: BTreeMap::new(),
    };
    let ev = crate::engine::evaluate(&e.cfg.rules, &snap, now());
    let (book, _) = step(&AlertBook::default(), &e.cfg.rules, &ev, &[], &e.cfg.alerts, now());
    let mut req = requests(&e.cfg, &book, &snap, &ev).remove(0);
    req.triggers.iter_mut().for_each(|t| t.silenced_by = Some("s-1".into()));
    let hooks = Hooks::default();
    let runner = Runner {
        cfg: &e.cfg,
        broker: &*b,
        journal: Journal::new(&e.cfg.state_dir),
        timing: Timing { timeout: Duration::from_millis(50), poll: Duration::from_millis(10) },
        clock: Clockwork::new(now()),
        hooks: &hooks,
    };
    b.with(|s| s.calls.clear());
    let (r, _) = runner.run(&req, &mut Ledger::default(), None, None).await;
    assert_eq!((r.result.as_str(), r.detail.as_str()), ("skipped", "silenced by s-1"));
    assert!(b.calls().is_empty());
}

/// The property of the one planner: on the same broker state, what observe mode describes
/// (from the cycle's snapshot) is exactly what act mode would do (from its fresh re-read):
/// the same steps and notes, or the same refusal.
#[test]
fn observe_describes_exactly_what_act_would_do_on_the_same_reads() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config as RunConfig, TestRunner};

    use super::observe::describe;
    use super::plan::Scope;
    use super::request::{Caller, Request, Trigger};
    use super::runner::{Prepared, Stop};

    let e = env(&format!("{ACT}{EXEC_X}"), NO_SHORTS);
    let kinds = [
        ActionKind::FlattenShorts,
        ActionKind::FlattenAll,
        ActionKind::CancelHazardOrders,
        ActionKind::SuspendTrading,
        ActionKind::EnforceNoShorting,
        ActionKind::FixState,
        ActionKind::Exec("x".into()),
        ActionKind::Exec("gone".into()),
    ];
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let strategy = (
        0..kinds.len(),
        proptest::collection::btree_map("[A-D]", -50i64..50, 0..4),
        proptest::collection::vec(("[A-E]", any::<bool>(), 1i64..100, any::<bool>()), 0..5),
        (any::<bool>(), any::<bool>()),
        proptest::option::of(proptest::collection::btree_set("[A-E]", 0..3)),
        proptest::collection::btree_set("o[0-5]", 0..3),
    );
    let mut runner = TestRunner::new(RunConfig { cases: 128, ..RunConfig::default() });
    runner
        .run(&strategy, |(k, held, raw_orders, (no_shorting, suspend_trade), scoped, ids)| {
            let kind = kinds[k].clone();
            let held: Vec<(&str, i64)> = held.iter().map(|(s, q)| (s.as_str(), *q)).collect();
            let orders: Vec<Order> = raw_orders
                .iter()
                .enumerate()
                .map(|(i, (s, sell, q, open))| {
                    let mut o = order(&format!("o{i}"), s, if *sell { OrderSide::Sell } else { OrderSide::Buy }, *q);
                    if !open {
                        o.status = "filled".into();
                    }
                    o
                })
                .collect();
            let b = FakeBroker::new(&held, orders);
            b.with(|s| (s.no_shorting, s.suspend_trade) = (no_shorting, suspend_trade));
            let trigger = Trigger {
                fingerprint: "no-shorts/x".into(),
                rule: "no-shorts".into(),
                subject: "x".into(),
                findings: Vec::new(),
                silenced_by: None,
                unknown: false,
                scope: scoped.map_or(Scope::All, Scope::Symbols),
                order_ids: ids,
            };
            let req = Request { kind: kind.clone(), origin: Caller::Daemon, triggers: vec![trigger] };
            let (observed, prepared) = rt.block_on(async {
                let snap = Snapshot {
                    taken_at: now(),
                    mode: b.mode(),
                    broker: b.view().await,
                    bot: BotView { positions: Ok(Vec::new()), metadata: None },
                    logs: BTreeMap::new(),
                };
                let observed = describe(&e.cfg, &req, &snap, now());
                let hooks = Hooks::default();
                let r = Runner {
                    cfg: &e.cfg,
                    broker: &b,
                    journal: Journal::new(&e.cfg.state_dir),
                    timing: Timing { timeout: Duration::from_millis(50), poll: Duration::from_millis(10) },
                    clock: Clockwork::new(now()),
                    hooks: &hooks,
                };
                (observed, r.prepare(&kind, &req.triggers).await)
            });
            let expected = match &prepared {
                Ok(Prepared { plan, .. }) if plan.is_empty() => {
                    format!("observe mode: nothing to do ({})", plan.notes.join("; "))
                }
                Ok(Prepared { plan, .. }) => format!("observe mode, nothing sent: would {}", plan.describe()),
                Err(Stop::Skipped(why)) => format!("observe mode: {why}"),
                Err(Stop::Refused(why, _)) => format!("observe mode: {}", why.trim_start_matches("refused: ")),
            };
            prop_assert_eq!(&observed.detail, &expected, "{}: act prepared {:?}", kind, prepared.map(|p| p.plan));
            prop_assert_eq!(observed.result.as_str(), "described");
            Ok(())
        })
        .unwrap();
}

/// Issue 13: only act mode refused fix_state while an order was filling; observe described a
/// rewrite act would never make.
#[tokio::test]
async fn observe_describes_fix_state_waiting_for_a_filling_order() {
    let rules = NO_SHORTS.replace("flatten_shorts", "fix_state");
    let e = env("mode = \"observe\"\n", &rules);
    let b = phantom();
    let mut a = actor(&e, &b);
    let out = cycle(&e, &b, &mut a).await;
    let r = out.iter().find(|r| r.action == "fix_state").unwrap();
    assert_eq!(r.result, "described");
    assert!(
        r.detail.starts_with("observe mode: orders for CHWY are filling or changed within quiet_for"),
        "{}",
        r.detail
    );
    assert!(r.diff.is_none());
}

/// A rule not evaluated this cycle is no action in act mode; observe says so rather than
/// describing a plan.
#[test]
fn observe_leaves_out_triggers_whose_rule_was_not_evaluated() {
    use super::observe::describe;
    use super::plan::Scope;
    use super::request::{Caller, Request, Trigger};

    let e = env("mode = \"observe\"\n", NO_SHORTS);
    let trigger = |unknown: bool| Trigger {
        fingerprint: format!("no-shorts/{unknown}"),
        rule: "no-shorts".into(),
        subject: "CHWY".into(),
        findings: Vec::new(),
        silenced_by: None,
        unknown,
        scope: Scope::All,
        order_ids: Default::default(),
    };
    let snap = Snapshot {
        taken_at: now(),
        mode: Mode::Paper,
        broker: crate::model::BrokerView::unavailable("not read"),
        bot: BotView { positions: Ok(Vec::new()), metadata: None },
        logs: BTreeMap::new(),
    };
    let req = Request { kind: ActionKind::FlattenShorts, origin: Caller::Daemon, triggers: vec![trigger(true)] };
    let r = describe(&e.cfg, &req, &snap, now());
    assert_eq!(
        (r.result.as_str(), r.detail.as_str()),
        (
            "described",
            "observe mode: no action would be taken: no-shorts/true: its rule is unknown this cycle or skipped by \
             its `when`; no action on incomplete data"
        )
    );
    let req = Request { triggers: vec![trigger(true), trigger(false)], ..req };
    let r = describe(&e.cfg, &req, &snap, now());
    assert!(r.detail.starts_with("observe mode: the positions cannot be read this cycle"), "{}", r.detail);
}

/// Review 2 (issue 12): `flatten::confirm` calls a symbol flat only when the list no longer
/// shows it *and* no sell rests on it (one could fill and open a short). Recovery of an
/// interrupted flatten read only the positions: a flat CHWY with a 1596-share sell resting on
/// it was "CHWY is flat", a warning.
#[tokio::test]
async fn an_interrupted_flatten_with_a_sell_resting_on_the_flat_symbol_is_not_called_flat() {
    let e = env(ACT, NO_SHORTS);
    let j = Journal::new(&e.cfg.state_dir);
    j.append(&Record::Intent(intent("x", now(), "flatten_shorts", "no-shorts/CHWY", json!({"symbols": ["CHWY"]}))))
        .unwrap();
    let b = Arc::new(FakeBroker::new(&[], vec![order("s1", "CHWY", OrderSide::Sell, 1596)]));
    let out = actor(&e, &b).recover(now()).await;
    let f = out[0].finding.as_ref().unwrap();
    assert!(!out[0].detail.contains("CHWY is flat"), "{}", out[0].detail);
    assert!(out[0].detail.contains("sell order s1 (1596) rests on it"), "{}", out[0].detail);
    assert_eq!(f.severity, Severity::Critical, "{out:?}");
    assert!(b.writes().is_empty(), "recovery never acts");
}

/// Review 2 (issue 12): recovery's own rule is "critical when the danger the action was for is
/// still there"; an interrupted `enforce_no_shorting` whose guard is still off was a warning.
#[tokio::test]
async fn an_interrupted_guard_still_off_is_critical_and_one_now_on_a_warning() {
    let e = env(ACT, NO_SHORTS);
    let j = Journal::new(&e.cfg.state_dir);
    j.append(&Record::Intent(intent(
        "x",
        now(),
        "enforce_no_shorting",
        "no-shorts/CHWY",
        json!({"field": "no_shorting"}),
    )))
    .unwrap();
    let b = Arc::new(FakeBroker::new(&[("CHWY", -1596)], vec![]));
    let out = actor(&e, &b).recover(now()).await;
    let f = out[0].finding.as_ref().unwrap();
    assert!(out[0].detail.contains("no_shorting is still false"), "{}", out[0].detail);
    assert_eq!(f.severity, Severity::Critical, "{out:?}");

    let e = env(ACT, NO_SHORTS);
    let j = Journal::new(&e.cfg.state_dir);
    j.append(&Record::Intent(intent(
        "y",
        now(),
        "enforce_no_shorting",
        "no-shorts/CHWY",
        json!({"field": "no_shorting"}),
    )))
    .unwrap();
    let b = Arc::new(FakeBroker::new(&[("CHWY", -1596)], vec![]));
    b.with(|s| s.no_shorting = true);
    let out = actor(&e, &b).recover(now()).await;
    assert!(out[0].detail.contains("no_shorting is true at the broker"), "{}", out[0].detail);
    assert_eq!(out[0].finding.as_ref().unwrap().severity, Severity::Warning);
}
