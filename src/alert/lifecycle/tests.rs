//! Lifecycle tests: a small simulator drives `step` cycle by cycle with an injected clock.

use std::time::Duration;

use chrono::TimeZone;
use serde_json::json;

use super::*;
use crate::alert::silence::{NewSilence, SilenceBook};
use crate::checks::no_short_positions;
use crate::clock::{Clock, ManualClock};
use crate::config::{EmailConfig, EmailTransport, When};
use crate::model::RuleOutcome;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 20, 14, 30, 0).unwrap()
}

const fn mins(m: u64) -> Duration {
    Duration::from_secs(m * 60)
}

fn rule(id: &str, hold: Option<Hold>, repeat: Option<Duration>) -> Rule {
    Rule {
        id: id.into(),
        check: std::sync::Arc::new(no_short_positions::Params {}),
        severity: Severity::Critical,
        hold,
        repeat,
        when: When::Always,
        actions: vec![],
        description: None,
        origin: "rules/test.toml".into(),
        id_offset: 0,
    }
}

fn defaults() -> AlertsConfig {
    AlertsConfig {
        repeat: mins(60),
        send_resolved: true,
        resolved_retention: mins(60),
        source_for: crate::config::DEFAULT_SOURCE_FOR,
        heartbeat_url: None,
        undeliverable_after: crate::config::DEFAULT_UNDELIVERABLE_AFTER,
        email: EmailConfig {
            transport: EmailTransport::File { dir: "mail".into() },
            from: "tw@localhost".into(),
            to: vec!["ops@localhost".into()],
        },
    }
}

fn finding(rule: &str, subject: &str) -> Finding {
    Finding {
        rule: rule.into(),
        check: "no_short_positions".into(),
        code: "short_position".into(),
        severity: Severity::Critical,
        subject: subject.into(),
        message: format!("{subject} is short"),
        observed: json!({ "qty": "-1596" }),
        expected: json!({ "qty": ">= 0" }),
    }
}

/// What a cycle says: findings as (rule, subject), and outcome overrides per rule. Rules with
/// findings default to violated, the others to ok.
struct Sim {
    book: AlertBook,
    rules: Vec<Rule>,
    defaults: AlertsConfig,
    silences: SilenceBook,
    clock: ManualClock,
}

impl Sim {
    fn new(rules: Vec<Rule>) -> Self {
        Self {
            book: AlertBook::default(),
            rules,
            defaults: defaults(),
            silences: SilenceBook::default(),
            clock: ManualClock::new(t0()),
        }
    }

    fn evaluated(&self, findings: &[(&str, &str)], outcomes: &[(&str, Outcome)]) -> Evaluated {
        let findings: Vec<Finding> = findings.iter().map(|(r, s)| finding(r, s)).collect();
        let outcomes = self
            .rules
            .iter()
            .map(|r| {
                let outcome = outcomes.iter().find(|(id, _)| *id == r.id).map_or_else(
                    || if findings.iter().any(|f| f.rule == r.id) { Outcome::Violated } else { Outcome::Ok },
                    |(_, o)| *o,
                );
                RuleOutcome { id: r.id.clone(), check: "no_short_positions".into(), outcome, reason: None }
            })
            .collect();
        Evaluated { findings, outcomes }
    }

    /// One cycle at the clock's time; the notifications as (reason, fingerprint).
    fn cycle_with(&mut self, findings: &[(&str, &str)], outcomes: &[(&str, Outcome)]) -> Vec<(NotifyReason, String)> {
        let ev = self.evaluated(findings, outcomes);
        let now = self.clock.now();
        let (book, notes) = step(&self.book, &self.rules, &ev, &self.silences.silences, &self.defaults, now);
        self.book = book;
        notes.into_iter().map(|n| (n.reason, n.alert.fingerprint)).collect()
    }

    fn cycle(&mut self, findings: &[(&str, &str)]) -> Vec<(NotifyReason, String)> {
        self.cycle_with(findings, &[])
    }

    fn advance(&self, d: Duration) {
        self.clock.advance(chrono::Duration::from_std(d).unwrap());
    }

    fn phase(&self, fp: &str) -> Option<Phase> {
        self.book.get(fp).map(|a| a.state)
    }

    fn silence(&mut self, rule: &str, subject: Option<&str>, d: Duration) -> String {
        let new = NewSilence {
            rule: rule.into(),
            subject: subject.map(Into::into),
            code: None,
            duration: d,
            reason: "test".into(),
            created_by: None,
        };
        self.silences.add(new, self.clock.now()).id
    }
}

fn fired(fp: &str) -> Vec<(NotifyReason, String)> {
    vec![(NotifyReason::Firing, fp.into())]
}
fn repeated(fp: &str) -> Vec<(NotifyReason, String)> {
    vec![(NotifyReason::Repeat, fp.into())]
}
fn resolved(fp: &str) -> Vec<(NotifyReason, String)> {
    vec![(NotifyReason::Resolved, fp.into())]
}
const NOTHING: Vec<(NotifyReason, String)> = Vec::new();
const CHWY: (&str, &str) = ("no-shorts", "CHWY");

#[test]
fn without_for_fires_at_once_and_notifies_once() {
    let mut sim = Sim::new(vec![rule("no-shorts", None, None)]);
    assert_eq!(sim.cycle(&[CHWY]), fired("no-shorts/CHWY"));
    let a = sim.book.get("no-shorts/CHWY").unwrap();
    assert_eq!((a.state, a.fired_at, a.active_since, a.consecutive_cycles), (Phase::Firing, Some(t0()), t0(), 1));
    for _ in 0..10 {
        sim.advance(Duration::from_secs(30));
        assert_eq!(sim.cycle(&[CHWY]), NOTHING);
    }
    assert_eq!(sim.book.get("no-shorts/CHWY").unwrap().consecutive_cycles, 11);
}

#[test]
fn for_duration_stays_pending_until_it_has_elapsed() {
    let mut sim = Sim::new(vec![rule("no-shorts", Some(Hold::Duration(mins(2))), None)]);
    assert_eq!(sim.cycle(&[CHWY]), NOTHING);
    assert_eq!(sim.phase("no-shorts/CHWY"), Some(Phase::Pending));
    sim.advance(Duration::from_secs(60));
    assert_eq!(sim.cycle(&[CHWY]), NOTHING);
    sim.advance(Duration::from_secs(59));
    assert_eq!(sim.cycle(&[CHWY]), NOTHING);
    assert_eq!(sim.phase("no-shorts/CHWY"), Some(Phase::Pending));
    sim.advance(Duration::from_secs(1));
    assert_eq!(sim.cycle(&[CHWY]), fired("no-shorts/CHWY"));
    let a = sim.book.get("no-shorts/CHWY").unwrap();
    assert_eq!(a.active_since, t0());
    assert_eq!(a.fired_at, Some(t0() + chrono::Duration::minutes(2)));
}

#[test]
fn for_duration_pending_disappears_when_the_violation_clears() {
    let mut sim = Sim::new(vec![rule("no-shorts", Some(Hold::Duration(mins(2))), None)]);
    sim.cycle(&[CHWY]);
    sim.advance(mins(1));
    assert_eq!(sim.cycle(&[]), NOTHING);
    assert_eq!(sim.phase("no-shorts/CHWY"), None);
    // It comes back: the timer starts over.
    sim.advance(mins(1));
    sim.cycle(&[CHWY]);
    sim.advance(mins(1));
    assert_eq!(sim.cycle(&[CHWY]), NOTHING);
    sim.advance(mins(1));
    assert_eq!(sim.cycle(&[CHWY]), fired("no-shorts/CHWY"));
}

#[test]
fn for_cycles_fires_on_the_nth_consecutive_cycle() {
    let mut sim = Sim::new(vec![rule("no-shorts", Some(Hold::Cycles(3)), None)]);
    assert_eq!(sim.cycle(&[CHWY]), NOTHING);
    assert_eq!(sim.cycle(&[CHWY]), NOTHING);
    // A clean cycle breaks the run.
    assert_eq!(sim.cycle(&[]), NOTHING);
    assert_eq!(sim.cycle(&[CHWY]), NOTHING);
    assert_eq!(sim.cycle(&[CHWY]), NOTHING);
    assert_eq!(sim.book.get("no-shorts/CHWY").unwrap().consecutive_cycles, 2);
    // Time does not matter for a cycle count.
    sim.advance(mins(600));
    assert_eq!(sim.cycle(&[CHWY]), fired("no-shorts/CHWY"));
}

#[test]
fn repeat_is_sent_exactly_once_per_interval() {
    let mut sim = Sim::new(vec![rule("no-shorts", None, None)]);
    let mut notes = sim.cycle(&[CHWY]);
    // Three hours and a bit of 30-second cycles.
    for _ in 0..(3 * 120 + 10) {
        sim.advance(Duration::from_secs(30));
        notes.extend(sim.cycle(&[CHWY]));
    }
    let reasons: Vec<NotifyReason> = notes.iter().map(|(r, _)| *r).collect();
    assert_eq!(reasons, [NotifyReason::Firing, NotifyReason::Repeat, NotifyReason::Repeat, NotifyReason::Repeat]);
    let a = sim.book.get("no-shorts/CHWY").unwrap();
    assert_eq!(a.last_notified_at, Some(t0() + chrono::Duration::hours(3)));
}

#[test]
fn rule_repeat_overrides_the_default_and_zero_disables() {
    let mut sim = Sim::new(vec![rule("no-shorts", None, Some(mins(10))), rule("quiet", None, Some(Duration::ZERO))]);
    let q = ("quiet", "account");
    assert_eq!(sim.cycle(&[CHWY, q]).len(), 2);
    sim.advance(mins(9));
    assert_eq!(sim.cycle(&[CHWY, q]), NOTHING);
    sim.advance(mins(1));
    assert_eq!(sim.cycle(&[CHWY, q]), repeated("no-shorts/CHWY"));
    sim.advance(mins(600));
    assert_eq!(sim.cycle(&[CHWY, q]), repeated("no-shorts/CHWY"));
}

#[test]
fn firing_resolves_when_the_rule_is_ok_and_is_kept_for_retention() {
    let mut sim = Sim::new(vec![rule("no-shorts", None, None)]);
    sim.cycle(&[CHWY]);
    sim.advance(mins(5));
    assert_eq!(sim.cycle(&[]), resolved("no-shorts/CHWY"));
    let a = sim.book.get("no-shorts/CHWY").unwrap();
    assert_eq!((a.state, a.resolved_at), (Phase::Resolved, Some(t0() + chrono::Duration::minutes(5))));
    sim.advance(mins(59));
    assert_eq!(sim.cycle(&[]), NOTHING);
    assert_eq!(sim.phase("no-shorts/CHWY"), Some(Phase::Resolved));
    sim.advance(mins(1));
    assert_eq!(sim.cycle(&[]), NOTHING);
    assert_eq!(sim.phase("no-shorts/CHWY"), None);
}

#[test]
fn violated_for_other_subjects_also_resolves() {
    let mut sim = Sim::new(vec![rule("no-shorts", None, None)]);
    sim.cycle(&[CHWY, ("no-shorts", "BILL")]);
    // The rule still has a finding for BILL, none for CHWY: CHWY resolved.
    assert_eq!(sim.cycle(&[("no-shorts", "BILL")]), resolved("no-shorts/CHWY"));
    assert_eq!(sim.cycle(&[]), resolved("no-shorts/BILL"));
}

/// Issue 12: `when = "market_open"` and the market closed made the rule `skipped`, which
/// resolved the firing alert ("RESOLVED no-shorts: CHWY" while CHWY was still short).
#[test]
fn a_firing_alert_whose_rule_is_skipped_stays_firing() {
    let mut sim = Sim::new(vec![rule("no-shorts", None, None)]);
    assert_eq!(sim.cycle(&[CHWY]), fired("no-shorts/CHWY"));
    for _ in 0..5 {
        sim.advance(mins(5));
        assert_eq!(sim.cycle_with(&[], &[("no-shorts", Outcome::Skipped)]), NOTHING);
        let a = sim.book.get("no-shorts/CHWY").unwrap();
        assert_eq!((a.state, a.fired_at, a.resolved_at), (Phase::Firing, Some(t0()), None));
        // Not blind: the rule was gated, not failed.
        assert!(!a.unknown);
        assert_eq!(a.consecutive_cycles, 1);
    }
    // Still firing, so still reminded on the repeat schedule.
    sim.advance(mins(35));
    assert_eq!(sim.cycle_with(&[], &[("no-shorts", Outcome::Skipped)]), repeated("no-shorts/CHWY"));
    // Back in session and still short: the same episode, no new firing notice.
    sim.advance(mins(5));
    assert_eq!(sim.cycle(&[CHWY]), NOTHING);
    assert_eq!(sim.book.get("no-shorts/CHWY").unwrap().fired_at, Some(t0()));
    // Only an evaluated clean cycle resolves it.
    assert_eq!(sim.cycle(&[]), resolved("no-shorts/CHWY"));
}

#[test]
fn a_pending_alert_whose_rule_is_skipped_holds_its_timers() {
    let mut sim = Sim::new(vec![rule("no-shorts", Some(Hold::Cycles(3)), None)]);
    assert_eq!(sim.cycle(&[CHWY]), NOTHING);
    assert_eq!(sim.cycle(&[CHWY]), NOTHING);
    // Closed market overnight: neither reset nor advanced, and never fired.
    for _ in 0..4 {
        assert_eq!(sim.cycle_with(&[], &[("no-shorts", Outcome::Skipped)]), NOTHING);
        let a = sim.book.get("no-shorts/CHWY").unwrap();
        assert_eq!((a.state, a.consecutive_cycles), (Phase::Pending, 2));
    }
    // The `for` does not restart at the next open.
    assert_eq!(sim.cycle(&[CHWY]), fired("no-shorts/CHWY"));
}

#[test]
fn a_skipped_rule_raises_nothing_new() {
    let mut sim = Sim::new(vec![rule("no-shorts", None, None)]);
    assert_eq!(sim.cycle_with(&[], &[("no-shorts", Outcome::Skipped)]), NOTHING);
    assert!(sim.book.alerts.is_empty());
}

#[test]
fn send_resolved_false_resolves_quietly() {
    let mut sim = Sim::new(vec![rule("no-shorts", None, None)]);
    sim.defaults.send_resolved = false;
    sim.cycle(&[CHWY]);
    assert_eq!(sim.cycle(&[]), NOTHING);
    assert_eq!(sim.phase("no-shorts/CHWY"), Some(Phase::Resolved));
}

#[test]
fn a_resolved_alert_that_reappears_starts_over() {
    let mut sim = Sim::new(vec![rule("no-shorts", Some(Hold::Cycles(2)), None)]);
    sim.cycle(&[CHWY]);
    assert_eq!(sim.cycle(&[CHWY]), fired("no-shorts/CHWY"));
    assert_eq!(sim.cycle(&[]), resolved("no-shorts/CHWY"));
    sim.advance(mins(5));
    assert_eq!(sim.cycle(&[CHWY]), NOTHING);
    let a = sim.book.get("no-shorts/CHWY").unwrap();
    assert_eq!(a.state, Phase::Pending);
    assert_eq!(a.active_since, t0() + chrono::Duration::minutes(5));
    assert_eq!((a.fired_at, a.resolved_at, a.last_notified_at, a.consecutive_cycles), (None, None, None, 1));
    assert_eq!(sim.cycle(&[CHWY]), fired("no-shorts/CHWY"));
}

#[test]
fn unknown_holds_a_firing_alert_and_nothing_resolves_on_missing_data() {
    let mut sim = Sim::new(vec![rule("no-shorts", None, None)]);
    sim.cycle(&[CHWY]);
    for _ in 0..5 {
        sim.advance(mins(5));
        assert_eq!(sim.cycle_with(&[], &[("no-shorts", Outcome::Unknown)]), NOTHING);
        let a = sim.book.get("no-shorts/CHWY").unwrap();
        assert_eq!(a.state, Phase::Firing);
        assert!(a.unknown);
        assert_eq!(a.consecutive_cycles, 1);
    }
    // Still firing, still reminded.
    sim.advance(mins(35));
    assert_eq!(sim.cycle_with(&[], &[("no-shorts", Outcome::Unknown)]), repeated("no-shorts/CHWY"));
    // The data comes back and the short is gone: now it resolves.
    sim.advance(mins(1));
    assert_eq!(sim.cycle(&[]), resolved("no-shorts/CHWY"));
    assert!(!sim.book.get("no-shorts/CHWY").unwrap().unknown);
}

#[test]
fn unknown_freezes_a_pending_alert_without_resetting_it() {
    let mut sim = Sim::new(vec![rule("no-shorts", Some(Hold::Cycles(3)), None)]);
    sim.cycle(&[CHWY]);
    sim.cycle(&[CHWY]);
    for _ in 0..4 {
        assert_eq!(sim.cycle_with(&[], &[("no-shorts", Outcome::Unknown)]), NOTHING);
        let a = sim.book.get("no-shorts/CHWY").unwrap();
        assert_eq!((a.state, a.consecutive_cycles), (Phase::Pending, 2));
    }
    assert_eq!(sim.cycle(&[CHWY]), fired("no-shorts/CHWY"));
}

#[test]
fn unknown_time_counts_towards_a_duration_hold() {
    let mut sim = Sim::new(vec![rule("no-shorts", Some(Hold::Duration(mins(5))), None)]);
    sim.cycle(&[CHWY]);
    sim.advance(mins(10));
    // Still blind: it cannot fire without seeing the violation.
    assert_eq!(sim.cycle_with(&[], &[("no-shorts", Outcome::Unknown)]), NOTHING);
    assert_eq!(sim.phase("no-shorts/CHWY"), Some(Phase::Pending));
    assert_eq!(sim.cycle(&[CHWY]), fired("no-shorts/CHWY"));
}

#[test]
fn a_configured_rule_without_an_outcome_holds() {
    let mut sim = Sim::new(vec![rule("no-shorts", None, None)]);
    sim.cycle(&[CHWY]);
    let ev = Evaluated { findings: vec![], outcomes: vec![] };
    let (book, notes) = step(&sim.book, &sim.rules, &ev, &[], &sim.defaults, t0());
    assert!(notes.is_empty());
    assert_eq!(book.get("no-shorts/CHWY").unwrap().state, Phase::Firing);
}

#[test]
fn an_alert_of_a_removed_rule_is_dropped_silently() {
    let mut sim = Sim::new(vec![rule("no-shorts", None, None)]);
    sim.cycle(&[CHWY]);
    sim.rules.clear();
    assert_eq!(sim.cycle(&[]), NOTHING);
    assert!(sim.book.alerts.is_empty());
}

#[test]
fn source_findings_follow_the_same_lifecycle() {
    let mut sim = Sim::new(vec![rule("no-shorts", None, None)]);
    let broker = ("source", "broker:positions");
    // `source_for` (default 2 cycles): the first failed cycle is pending.
    assert_eq!(sim.cycle_with(&[broker], &[("no-shorts", Outcome::Unknown)]), NOTHING);
    assert_eq!(sim.cycle_with(&[broker], &[("no-shorts", Outcome::Unknown)]), fired("source/broker:positions"));
    sim.advance(mins(61));
    assert_eq!(sim.cycle_with(&[broker], &[("no-shorts", Outcome::Unknown)]), repeated("source/broker:positions"));
    assert_eq!(sim.cycle(&[]), resolved("source/broker:positions"));
}

#[test]
fn a_source_failing_one_cycle_at_a_time_never_emails() {
    let mut sim = Sim::new(vec![rule("no-shorts", None, None)]);
    let broker = ("source", "broker:positions");
    for _ in 0..5 {
        assert_eq!(sim.cycle_with(&[broker], &[("no-shorts", Outcome::Unknown)]), NOTHING);
        assert_eq!(sim.cycle(&[]), NOTHING, "a pending source alert goes away silently");
    }
    // `source_for = "1 cycle"` (or "0s"): at once, as rules without `for`.
    for hold in [crate::config::Hold::Cycles(1), crate::config::Hold::Duration(mins(0))] {
        let mut sim = Sim::new(vec![rule("no-shorts", None, None)]);
        sim.defaults.source_for = hold;
        assert_eq!(
            sim.cycle_with(&[broker], &[("no-shorts", Outcome::Unknown)]),
            fired("source/broker:positions"),
            "{hold}"
        );
    }
}

#[test]
fn several_findings_for_one_fingerprint_make_one_alert() {
    let rules = vec![rule("positions-match", None, None)];
    let mut a = finding("positions-match", "CHWY");
    a.code = "quantity_mismatch".into();
    a.severity = Severity::Warning;
    let mut b = a.clone();
    b.code = "entry_price_mismatch".into();
    b.severity = Severity::Critical;
    let ev = Evaluated {
        findings: vec![a, b],
        outcomes: vec![RuleOutcome {
            id: "positions-match".into(),
            check: "position_match".into(),
            outcome: Outcome::Violated,
            reason: None,
        }],
    };
    let (book, notes) = step(&AlertBook::default(), &rules, &ev, &[], &defaults(), t0());
    assert_eq!(notes.len(), 1);
    let alert = book.get("positions-match/CHWY").unwrap();
    assert_eq!(alert.severity, Severity::Critical);
    assert_eq!(alert.last_finding.code, "quantity_mismatch");
    assert_eq!(
        alert.findings().map(|f| f.code.as_str()).collect::<Vec<_>>(),
        ["quantity_mismatch", "entry_price_mismatch"]
    );
}

#[test]
fn restart_restores_firing_without_renotifying_and_keeps_pending_timers() {
    let mut sim = Sim::new(vec![rule("no-shorts", None, None), rule("slow", Some(Hold::Duration(mins(10))), None)]);
    let slow = ("slow", "account");
    assert_eq!(sim.cycle(&[CHWY, slow]), fired("no-shorts/CHWY"));
    sim.advance(mins(6));
    sim.cycle(&[CHWY, slow]);

    // "Restart": the book goes through its file and back.
    let dir = tempfile::tempdir().unwrap();
    sim.book.save(dir.path()).unwrap();
    let loaded = AlertBook::load(dir.path(), sim.clock.now());
    assert_eq!(loaded.problem, None);
    assert_eq!(loaded.value, sim.book);
    sim.book = loaded.value;

    sim.advance(mins(2));
    assert_eq!(sim.cycle(&[CHWY, slow]), NOTHING, "no firing notice is re-sent after a restart");
    sim.advance(mins(2));
    assert_eq!(sim.cycle(&[CHWY, slow]), fired("slow/account"), "the `for` timer survived the restart");
    sim.advance(mins(50));
    assert_eq!(sim.cycle(&[CHWY, slow]), repeated("no-shorts/CHWY"), "the repeat schedule survived too");
}

#[test]
fn a_silenced_alert_progresses_but_sends_nothing() {
    let mut sim = Sim::new(vec![rule("no-shorts", Some(Hold::Cycles(2)), None)]);
    let id = sim.silence("no-shorts", None, mins(120));
    assert_eq!(sim.cycle(&[CHWY]), NOTHING);
    assert_eq!(sim.cycle(&[CHWY]), NOTHING);
    let a = sim.book.get("no-shorts/CHWY").unwrap();
    assert_eq!(a.state, Phase::Firing);
    assert!(a.silenced);
    assert_eq!(a.silenced_by.as_deref(), Some(id.as_str()));
    assert!(!a.is_actionable());
    assert_eq!(sim.book.actionable().count(), 0);
    assert!(sim.book.is_silenced(&finding("no-shorts", "CHWY")));
    sim.advance(mins(90));
    assert_eq!(sim.cycle(&[CHWY]), NOTHING, "no repeat while silenced");
    // The silence ends; the alert was never announced, so it is now.
    sim.advance(mins(30));
    assert_eq!(sim.cycle(&[CHWY]), fired("no-shorts/CHWY"));
    let a = sim.book.get("no-shorts/CHWY").unwrap();
    assert!(!a.silenced && a.is_actionable());
}

#[test]
fn when_a_silence_ends_an_announced_alert_is_not_resent_at_once() {
    let mut sim = Sim::new(vec![rule("no-shorts", None, None)]);
    assert_eq!(sim.cycle(&[CHWY]), fired("no-shorts/CHWY"));
    sim.advance(mins(10));
    let id = sim.silence("no-shorts", Some("CHWY"), mins(120));
    assert_eq!(sim.cycle(&[CHWY]), NOTHING);
    // The operator removes the silence early, long after a repeat would have been due.
    sim.advance(mins(100));
    assert!(sim.silences.remove(&id).is_some());
    assert_eq!(sim.cycle(&[CHWY]), NOTHING, "no immediate re-send");
    sim.advance(mins(59));
    assert_eq!(sim.cycle(&[CHWY]), NOTHING);
    sim.advance(mins(1));
    assert_eq!(sim.cycle(&[CHWY]), repeated("no-shorts/CHWY"), "one repeat interval after the silence ended");
}

#[test]
fn resolving_while_silenced_sends_no_notice() {
    let mut sim = Sim::new(vec![rule("no-shorts", None, None)]);
    sim.cycle(&[CHWY]);
    sim.silence("no-shorts", None, mins(60));
    assert_eq!(sim.cycle(&[]), NOTHING);
    let a = sim.book.get("no-shorts/CHWY").unwrap();
    assert_eq!(a.state, Phase::Resolved);
    assert!(a.silenced);
}

#[test]
fn a_subject_silence_mutes_only_that_subject_and_expired_ones_do_nothing() {
    let mut sim = Sim::new(vec![rule("no-shorts", None, None)]);
    sim.silence("no-shorts", Some("CHWY"), mins(30));
    let bill = ("no-shorts", "BILL");
    assert_eq!(sim.cycle(&[CHWY, bill]), fired("no-shorts/BILL"));
    assert!(sim.book.get("no-shorts/CHWY").unwrap().silenced);
    assert!(!sim.book.get("no-shorts/BILL").unwrap().silenced);
    // An expired silence still in the list does not count.
    sim.advance(mins(30));
    assert_eq!(sim.cycle(&[CHWY, bill]), fired("no-shorts/CHWY"));
}

/// Issue 17: a `--code` silence mutes an alert while its findings have that code; when the
/// same rule and subject report another code, that is news: the silence no longer matches and
/// the alert, never announced, fires.
#[test]
fn a_code_silence_mutes_only_that_code_and_a_new_code_is_news() {
    let mut sim = Sim::new(vec![rule("no-shorts", None, None)]);
    let mut other = NewSilence {
        rule: "no-shorts".into(),
        subject: None,
        code: Some("not_this_one".into()),
        duration: mins(120),
        reason: "test".into(),
        created_by: None,
    };
    sim.silences.add(other.clone(), sim.clock.now());
    other.code = Some("short_position".into());
    let id = sim.silences.add(other, sim.clock.now()).id;
    assert_eq!(sim.cycle(&[CHWY]), NOTHING, "muted by the short_position silence");
    assert_eq!(sim.book.get("no-shorts/CHWY").unwrap().silenced_by.as_deref(), Some(id.as_str()));
    // Next cycle the same fingerprint reports another code as well.
    sim.advance(mins(1));
    let mut ev = sim.evaluated(&[CHWY, CHWY], &[]);
    ev.findings[1].code = "side_mismatch".into();
    let (book, notes) = step(&sim.book, &sim.rules, &ev, &sim.silences.silences, &sim.defaults, sim.clock.now());
    let notes: Vec<_> = notes.into_iter().map(|n| (n.reason, n.alert.fingerprint)).collect();
    assert_eq!(notes, fired("no-shorts/CHWY"));
    assert!(!book.get("no-shorts/CHWY").unwrap().silenced);
}

#[test]
fn step_is_pure() {
    let rules = vec![rule("no-shorts", Some(Hold::Cycles(2)), None)];
    let sim = Sim::new(rules.clone());
    let ev = sim.evaluated(&[CHWY], &[]);
    let a = step(&sim.book, &rules, &ev, &[], &sim.defaults, t0());
    let b = step(&sim.book, &rules, &ev, &[], &sim.defaults, t0());
    assert_eq!(a, b);
}

mod props {
    use proptest::prelude::*;

    use super::*;

    #[derive(Debug, Clone, Copy)]
    enum Input {
        Present,
        Absent,
        Unknown,
    }

    fn input() -> impl Strategy<Value = Input> {
        prop_oneof![Just(Input::Present), Just(Input::Absent), Just(Input::Unknown)]
    }

    proptest! {
        /// Over any sequence of cycles: at most one firing notice per episode; never a notice
        /// while silenced; never resolved on an unknown cycle; every resolved notice follows a
        /// firing notice of the same episode.
        #[test]
        fn invariants(
            cycles in proptest::collection::vec((input(), any::<bool>(), 0u64..120), 1..80),
            hold in prop_oneof![Just(None), (1u32..4).prop_map(|n| Some(Hold::Cycles(n))), (1u64..20).prop_map(|m| Some(Hold::Duration(mins(m))))],
        ) {
            let mut sim = Sim::new(vec![rule("no-shorts", hold, Some(mins(30)))]);
            let mut announced = false;
            for (input, silenced, step_mins) in cycles {
                sim.silences.silences.clear();
                if silenced {
                    sim.silence("no-shorts", None, mins(1));
                }
                let before = sim.phase("no-shorts/CHWY");
                let notes = match input {
                    Input::Present => sim.cycle(&[CHWY]),
                    Input::Absent => sim.cycle(&[]),
                    Input::Unknown => sim.cycle_with(&[], &[("no-shorts", Outcome::Unknown)]),
                };
                let after = sim.phase("no-shorts/CHWY");
                if silenced {
                    prop_assert!(notes.is_empty());
                }
                if matches!(input, Input::Unknown) && matches!(before, Some(Phase::Pending | Phase::Firing)) {
                    prop_assert_eq!(before, after, "an unknown cycle holds the phase");
                }
                for (reason, _) in &notes {
                    match reason {
                        NotifyReason::Firing => { prop_assert!(!announced); announced = true; }
                        NotifyReason::Repeat => prop_assert!(announced),
                        NotifyReason::Resolved => { prop_assert!(announced); announced = false; }
                    }
                }
                if matches!(after, None | Some(Phase::Resolved)) {
                    announced = false;
                }
                if after == Some(Phase::Firing) && !silenced {
                    prop_assert!(announced, "a firing, unsilenced alert has been announced");
                }
                sim.advance(mins(step_mins));
            }
        }

        /// Restarting at any cycle changes nothing: the book round-trips through its JSON state
        /// file, and the notices and the book after every later cycle are the same as without
        /// the restart (`for` timers, repeat timers and resolved retention survive).
        #[test]
        fn a_restart_through_the_state_file_changes_nothing(
            cycles in proptest::collection::vec((input(), any::<bool>(), 0u64..120), 1..60),
            hold in prop_oneof![Just(None), (1u32..4).prop_map(|n| Some(Hold::Cycles(n))), (1u64..20).prop_map(|m| Some(Hold::Duration(mins(m))))],
        ) {
            let rules = vec![rule("no-shorts", hold, Some(mins(30)))];
            let mut kept = Sim::new(rules.clone());
            let mut restarted = Sim::new(rules);
            for (input, silenced, step_mins) in cycles {
                kept.silences.silences.clear();
                if silenced {
                    kept.silence("no-shorts", None, mins(1));
                }
                restarted.silences = kept.silences.clone();
                let run = |sim: &mut Sim| match input {
                    Input::Present => sim.cycle(&[CHWY]),
                    Input::Absent => sim.cycle(&[]),
                    Input::Unknown => sim.cycle_with(&[], &[("no-shorts", Outcome::Unknown)]),
                };
                prop_assert_eq!(run(&mut kept), run(&mut restarted));
                let json = serde_json::to_string(&restarted.book).unwrap();
                restarted.book = serde_json::from_str(&json).unwrap();
                prop_assert_eq!(&kept.book, &restarted.book);
                kept.advance(mins(step_mins));
                restarted.advance(mins(step_mins));
            }
        }
    }
}

/// Runs the real engine over snapshots and steps the lifecycle: (notices, book) per cycle.
struct Engine {
    rules: Vec<Rule>,
    book: AlertBook,
    now: DateTime<Utc>,
}

impl Engine {
    fn new(rules: Vec<Rule>) -> Self {
        Self { rules, book: AlertBook::default(), now: t0() }
    }

    fn cycle(&mut self, snap: crate::checks::testkit::SnapshotBuilder) -> Vec<(NotifyReason, String)> {
        self.now += chrono::Duration::minutes(1);
        let ev = crate::engine::evaluate(&self.rules, &snap.at(self.now).build(), self.now);
        let (book, notes) = step(&self.book, &self.rules, &ev, &[], &defaults(), self.now);
        self.book = book;
        notes.into_iter().map(|n| (n.reason, n.alert.fingerprint)).collect()
    }
}

/// Issue 12: a rule blind because the broker failed reports `rule_unknown`, which goes through
/// the lifecycle like the source finding: `source_for` covers it, so a broker failing every
/// other cycle emails neither firing nor resolved, for the source or for the blind rule.
#[test]
fn a_flaky_broker_blinding_a_rule_never_emails_firing_and_resolved_in_turn() {
    use crate::checks::testkit::SnapshotBuilder;
    let mut e = Engine::new(vec![rule("no-shorts", None, None)]);
    for _ in 0..4 {
        assert_eq!(e.cycle(SnapshotBuilder::new().broker_positions_unavailable()), NOTHING);
        let a = e.book.get("no-shorts/broker:positions").expect("the blind rule is an alert");
        assert_eq!((a.state, a.last_finding.code.as_str()), (Phase::Pending, "rule_unknown"));
        assert_eq!(e.cycle(SnapshotBuilder::new()), NOTHING, "a pending blind alert goes away silently");
        assert!(e.book.alerts.is_empty(), "{:#?}", e.book);
    }
}

/// Issue 12: a blind rule is heard of (firing after `source_for`, at the rule's severity),
/// resolves when the rule is evaluated again, and never triggers an action.
#[test]
fn a_blind_rule_fires_at_its_severity_resolves_when_seen_again_and_is_never_actionable() {
    use crate::checks::testkit::SnapshotBuilder;
    let mut e = Engine::new(vec![rule("no-shorts", None, None)]);
    let blind = "no-shorts/broker:positions";
    assert_eq!(e.cycle(SnapshotBuilder::new().broker_positions_unavailable()), NOTHING);
    // One outage: the source's alert and one per blind rule.
    let both = [fired(blind), fired("source/broker:positions")].concat();
    assert_eq!(e.cycle(SnapshotBuilder::new().broker_positions_unavailable()), both);
    let a = e.book.get(blind).unwrap();
    assert_eq!((a.state, a.severity), (Phase::Firing, Severity::Critical));
    assert!(!a.is_actionable(), "unknown never triggers an action");
    // (The source's own alert names no rule, so it has no actions either.)
    assert!(e.book.actionable().all(|a| a.rule == "source"));
    assert_eq!(e.cycle(SnapshotBuilder::new()), [resolved(blind), resolved("source/broker:positions")].concat());
}

/// A firing violation stays firing while its rule is blind (unknown never resolves), next to
/// the blind alert; both resolve once the data is back and clean.
#[test]
fn a_firing_short_stays_firing_while_the_broker_is_down() {
    use crate::checks::testkit::SnapshotBuilder;
    let mut e = Engine::new(vec![rule("no-shorts", None, None)]);
    assert_eq!(e.cycle(SnapshotBuilder::new().position("CHWY", "-1596", "25")), fired("no-shorts/CHWY"));
    for _ in 0..3 {
        e.cycle(SnapshotBuilder::new().broker_positions_unavailable());
        let a = e.book.get("no-shorts/CHWY").unwrap();
        assert_eq!(a.state, Phase::Firing);
        assert!(a.unknown && a.is_actionable());
    }
    assert_eq!(e.book.get("no-shorts/broker:positions").unwrap().state, Phase::Firing);
    let notes = e.cycle(SnapshotBuilder::new());
    let want =
        [resolved("no-shorts/CHWY"), resolved("no-shorts/broker:positions"), resolved("source/broker:positions")];
    assert_eq!(notes, want.concat());
}

/// A blind alert is about one blindness: when the rule is blind for another reason, the old
/// one resolves (its source is back) and the new one starts its own episode.
#[test]
fn a_blind_alert_resolves_when_its_source_is_back_even_if_another_blinds_the_rule() {
    use crate::checks::testkit::SnapshotBuilder;
    let mut e = Engine::new(vec![rule("no-shorts", None, Some(Duration::ZERO))]);
    e.cycle(SnapshotBuilder::new().broker_positions_unavailable());
    e.cycle(SnapshotBuilder::new().broker_positions_unavailable());
    assert_eq!(e.book.get("no-shorts/broker:positions").unwrap().state, Phase::Firing);
    // Now the positions are back but the rule's `when` needs the clock, which is down.
    let mut gated = rule("no-shorts", None, None);
    gated.when = When::MarketOpen;
    e.rules = vec![gated];
    let clock_down = || {
        let mut s = SnapshotBuilder::new().build();
        s.broker.clock = Err(crate::model::SourceError::unavailable("broker:clock", "connection refused"));
        s
    };
    e.now += chrono::Duration::minutes(1);
    let ev = crate::engine::evaluate(&e.rules, &clock_down(), e.now);
    let (book, notes) = step(&e.book, &e.rules, &ev, &[], &defaults(), e.now);
    let notes: Vec<(NotifyReason, String)> = notes.into_iter().map(|n| (n.reason, n.alert.fingerprint)).collect();
    assert_eq!(notes, [resolved("no-shorts/broker:positions"), resolved("source/broker:positions")].concat());
    assert_eq!(book.get("no-shorts/broker:clock").unwrap().state, Phase::Pending);
}
