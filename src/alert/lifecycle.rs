//! The alert lifecycle: a pure `step` from one cycle's evaluation to the next alert book, and
//! the notifications that cycle owes.
//!
//! An alert is keyed by its fingerprint (`rule/subject`). Its phases:
//!
//! - **pending**: the violation was seen but the rule's `for` is not met yet. With no `for` an
//!   alert goes straight to firing in the cycle it is first seen.
//! - **firing**: `for` met. Notified once on entry, then again every `repeat` (the rule's, else
//!   `[alerts] repeat`; zero disables repeats) while it keeps firing.
//! - **resolved**: the violation is gone *and the rule was evaluated* (outcome ok, or violated
//!   for other subjects). A resolved notice is sent when `send_resolved` is on and the
//!   firing notice went out. Kept for `resolved_retention`, then dropped. A resolved alert that
//!   reappears starts a new episode (pending again, timers from zero).
//!
//! **Unknown holds.** When a rule's outcome is unknown (a source it needs failed), its alerts
//! hold their phase exactly: a firing alert stays firing (and keeps its repeat schedule: it is
//! still firing, and now the watchdog is also blind); a pending alert stays pending, its timers
//! neither reset nor advance (`consecutive_cycles` is frozen; `active_since` is kept, so for a
//! duration `for` the blind time counts once the violation is seen again, erring towards
//! alerting); nothing resolves on missing data. Source findings (rule `source`) go through the
//! same lifecycle with `[alerts] source_for` as their `for` (default 2 cycles: one failed cycle,
//! retries included, is pending, so a flaky broker does not email firing and resolved in turn)
//! and the default `repeat`; their absence means the source is healthy again, so they resolve
//! (a pending one silently).
//!
//! **Blind rules.** A rule that is unknown also reports a `rule_unknown` finding at its own
//! severity, subject the failed source (or the thing whose field is missing), so the operator
//! hears that the watchdog is blind. When the blindness comes from a failed source, its alert
//! waits `[alerts] source_for` like the source finding. An alert made only of `rule_unknown`
//! findings resolves when the rule is next evaluated without that blindness, and is never
//! actionable.
//!
//! **Skipped holds too.** A rule whose `when` does not hold (`market_open` while the market is
//! closed) was not checked, so its alerts hold exactly as for unknown: a firing alert stays
//! firing and keeps its repeat schedule (the short is presumably still there; the operator hears
//! about it until it is gone or silenced), a pending one stays pending with frozen timers. Only
//! a cycle that evaluates the rule can resolve its alerts, and the `for` hold does not restart
//! at the next open. Actions skip such alerts (the rule was not evaluated this cycle).
//!
//! **Silences.** A silenced alert still moves through its phases (and appears in reports,
//! marked `silenced`), but produces no notification, and actions skip it. When a silence ends
//! while the alert is still firing: if no firing notice was ever sent, it is sent on the next
//! cycle; otherwise nothing is re-sent at once, and the repeat interval restarts from the end
//! of the silence (the operator silenced it knowingly; the next reminder comes one `repeat`
//! later). An alert that resolves while silenced sends no resolved notice, and neither does
//! one whose firing notice was never sent.
//!
//! **Retired rules.** An alert whose rule is no longer configured is dropped without a notice:
//! it can never be evaluated again, and a "resolved" would claim something nobody checked.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::silence::Silence;
use crate::checks::RULE_UNKNOWN;
use crate::config::{AlertsConfig, Hold, Rule};
use crate::engine::{Evaluated, blinding_source};
use crate::model::{Finding, Origin, Outcome, Severity};
use crate::state::{Loaded, StateError, load_or_default, write_json};

/// An alert's phase. (Inactive alerts are simply absent from the book.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// Seen, `for` not met yet.
    Pending,
    /// Firing: notified and eligible for actions.
    Firing,
    /// Was firing, now gone; kept for the retention window.
    Resolved,
}

impl Phase {
    /// `pending`, `firing` or `resolved`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Firing => "firing",
            Self::Resolved => "resolved",
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One alert: a fingerprint's current episode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertState {
    /// `rule/subject`.
    pub fingerprint: String,
    /// The rule id (`source` for source findings).
    pub rule: String,
    /// The finding subject.
    pub subject: String,
    /// The worst severity of its findings in the last cycle they were seen.
    pub severity: Severity,
    /// Pending, firing or resolved.
    pub state: Phase,
    /// When this episode was first seen.
    pub active_since: DateTime<Utc>,
    /// When it started firing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fired_at: Option<DateTime<Utc>>,
    /// When it resolved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<DateTime<Utc>>,
    /// The last cycle in which the violation was seen.
    pub last_seen_at: DateTime<Utc>,
    /// The last notification actually queued for this episode (firing, repeat or resolved).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_notified_at: Option<DateTime<Utc>>,
    /// Where the repeat interval is counted from: the last notice, or the end of a silence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat_from: Option<DateTime<Utc>>,
    /// Consecutive evaluated cycles in which the violation was seen (frozen while unknown).
    pub consecutive_cycles: u32,
    /// The finding as last seen (the first, when a rule reported several for one subject).
    pub last_finding: Finding,
    /// Further findings for the same fingerprint in that cycle (other codes).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub other_findings: Vec<Finding>,
    /// The rule's outcome was unknown in the last cycle: the phase is held, not re-checked.
    #[serde(default)]
    pub unknown: bool,
    /// Muted by a silence in the last cycle.
    #[serde(default)]
    pub silenced: bool,
    /// The id of that silence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub silenced_by: Option<String>,
}

impl AlertState {
    /// Every finding of the last sighting: `last_finding` then `other_findings`.
    pub fn findings(&self) -> impl Iterator<Item = &Finding> {
        std::iter::once(&self.last_finding).chain(&self.other_findings)
    }

    /// Firing, not silenced, and about a violation (not only about the rule being blind):
    /// actions may run for it. Unknown never triggers an action.
    #[must_use]
    pub fn is_actionable(&self) -> bool {
        self.state == Phase::Firing && !self.silenced && self.findings().any(|f| f.code != RULE_UNKNOWN)
    }
}

/// Every alert the watchdog knows, persisted as `state_dir/alerts.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertBook {
    /// File format version.
    pub version: u32,
    /// The `now` of the step that produced it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<DateTime<Utc>>,
    /// By fingerprint.
    #[serde(default)]
    pub alerts: BTreeMap<String, AlertState>,
}

impl Default for AlertBook {
    fn default() -> Self {
        Self { version: Self::VERSION, updated_at: None, alerts: BTreeMap::new() }
    }
}

impl AlertBook {
    /// The file name inside the state directory.
    pub const FILE: &'static str = "alerts.json";
    /// The current file format version.
    pub const VERSION: u32 = 1;

    /// Loads `state_dir/alerts.json`: empty when missing; a corrupt file is moved aside and
    /// reported in `problem`, and the book starts empty. Never fails.
    #[must_use]
    pub fn load(state_dir: &Path, now: DateTime<Utc>) -> Loaded<Self> {
        load_or_default(&state_dir.join(Self::FILE), now)
    }

    /// Writes `state_dir/alerts.json` atomically.
    ///
    /// # Errors
    /// When it cannot be written; the previous file is then intact.
    pub fn save(&self, state_dir: &Path) -> Result<(), StateError> {
        write_json(&state_dir.join(Self::FILE), self)
    }

    /// An alert by fingerprint.
    #[must_use]
    pub fn get(&self, fingerprint: &str) -> Option<&AlertState> {
        self.alerts.get(fingerprint)
    }

    /// Alerts in a phase.
    pub fn in_phase(&self, phase: Phase) -> impl Iterator<Item = &AlertState> {
        self.alerts.values().filter(move |a| a.state == phase)
    }

    /// Firing, unsilenced alerts: the ones actions may act on.
    pub fn actionable(&self) -> impl Iterator<Item = &AlertState> {
        self.alerts.values().filter(|a| a.is_actionable())
    }

    /// Whether the alert for a finding is silenced (for marking findings in reports).
    #[must_use]
    pub fn is_silenced(&self, finding: &Finding) -> bool {
        self.alerts.get(&finding.fingerprint()).is_some_and(|a| a.silenced)
    }
}

/// Why a notification is sent (Alertmanager's `NotifyReason`, reduced to what one alert needs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NotifyReason {
    /// It started firing (or its first notice was held back by a silence that has ended).
    Firing,
    /// Still firing; `repeat` has elapsed since the last notice.
    Repeat,
    /// It resolved.
    Resolved,
}

impl NotifyReason {
    /// `firing`, `repeat` or `resolved`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Firing => "firing",
            Self::Repeat => "repeat",
            Self::Resolved => "resolved",
        }
    }
}

/// A notification owed by this cycle: why, and the alert as it is after the step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// Firing, repeat or resolved.
    pub reason: NotifyReason,
    /// The alert.
    pub alert: AlertState,
}

/// The timing policy that applies to one rule.
#[derive(Debug, Clone, Copy)]
struct Policy {
    hold: Option<Hold>,
    repeat: Duration,
    send_resolved: bool,
    retention: Duration,
}

/// What this cycle says about a fingerprint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Signal {
    /// The violation was seen.
    Present,
    /// The rule was evaluated and the violation is gone.
    Absent,
    /// The rule could not be evaluated: hold.
    Unknown,
    /// The rule was not evaluated because its `when` does not hold: hold, but not blind.
    Skipped,
    /// The rule is no longer configured.
    Retired,
}

fn chrono(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

fn elapsed(since: DateTime<Utc>, now: DateTime<Utc>, d: Duration) -> bool {
    now.signed_duration_since(since) >= chrono(d)
}

/// Whether an alert that is firing after this step owes a notice: the pure decision
/// (Alertmanager's `needsUpdate`). Never while silenced; `Firing` when no notice was ever sent
/// for this episode; `Repeat` when `repeat` (non-zero) has elapsed since `repeat_from`.
#[must_use]
pub fn decide(alert: &AlertState, repeat: Duration, now: DateTime<Utc>) -> Option<NotifyReason> {
    if alert.state != Phase::Firing || alert.silenced {
        return None;
    }
    let Some(last) = alert.last_notified_at else { return Some(NotifyReason::Firing) };
    let from = alert.repeat_from.unwrap_or(last);
    (!repeat.is_zero() && elapsed(from, now, repeat)).then_some(NotifyReason::Repeat)
}

/// One cycle of the lifecycle. Pure: the same inputs give the same outputs, and nothing is read
/// or written. `silences` may include expired ones; only those active at `now` count.
///
/// Returns the new book and the notifications owed, ordered by fingerprint.
#[must_use]
pub fn step(
    prev: &AlertBook,
    rules: &[Rule],
    evaluated: &Evaluated,
    silences: &[Silence],
    defaults: &AlertsConfig,
    now: DateTime<Utc>,
) -> (AlertBook, Vec<Notification>) {
    let mut seen: BTreeMap<String, Vec<&Finding>> = BTreeMap::new();
    for f in &evaluated.findings {
        seen.entry(f.fingerprint()).or_default().push(f);
    }
    let fingerprints: BTreeSet<&String> = prev.alerts.keys().chain(seen.keys()).collect();

    let mut next = AlertBook { version: AlertBook::VERSION, updated_at: Some(now), alerts: BTreeMap::new() };
    let mut notes = Vec::new();
    for fp in fingerprints {
        let before = prev.alerts.get(fp);
        let found = seen.get(fp).map(Vec::as_slice);
        let (rule_id, subject) = match (found, before) {
            (Some(f), _) => (f[0].rule.as_str(), f[0].subject.as_str()),
            (None, Some(a)) => (a.rule.as_str(), a.subject.as_str()),
            (None, None) => continue,
        };
        let rule = rules.iter().find(|r| r.id == rule_id);
        // A rule blind because a source failed waits like the source finding itself, so one
        // failed cycle (a flaky broker) emails neither firing nor resolved.
        let caused_by_source = match (found, before) {
            (Some(f), _) => f.iter().all(|f| blinding_source(f).is_some()),
            (None, Some(a)) => a.findings().all(|f| blinding_source(f).is_some()),
            (None, None) => false,
        };
        let policy = Policy {
            hold: if Origin::of(rule_id) == Some(Origin::Source) || caused_by_source {
                Some(defaults.source_for)
            } else {
                rule.and_then(|r| r.hold)
            },
            repeat: rule.and_then(|r| r.repeat).unwrap_or(defaults.repeat),
            send_resolved: defaults.send_resolved,
            retention: defaults.resolved_retention,
        };
        // An alert that only says "this rule is blind" (`rule_unknown`) is about the blindness:
        // once the rule is evaluated again without it, it is gone, even if the rule is blind
        // for another reason now (that one is its own alert).
        let only_blind = before.is_some_and(|a| a.findings().all(|f| f.code == RULE_UNKNOWN));
        let signal = if found.is_some() {
            Signal::Present
        } else if Origin::of(rule_id) == Some(Origin::Source)
            || (only_blind && rule.is_some() && evaluated.outcome(rule_id).is_some())
        {
            Signal::Absent
        } else {
            match (evaluated.outcome(rule_id), rule) {
                (Some(Outcome::Unknown), _) => Signal::Unknown,
                // A `when` gate says nothing about the violation: it was not checked.
                (Some(Outcome::Skipped), _) => Signal::Skipped,
                (Some(Outcome::Ok | Outcome::Violated), _) => Signal::Absent,
                // Configured but no outcome: no data, so hold.
                (None, Some(_)) => Signal::Unknown,
                (None, None) => Signal::Retired,
            }
        };
        // The codes a `--code` silence is matched against: this sighting's, else the last one's.
        let codes: Vec<&str> = match (found, before) {
            (Some(f), _) => f.iter().map(|f| f.code.as_str()).collect(),
            (None, Some(a)) => a.findings().map(|f| f.code.as_str()).collect(),
            (None, None) => Vec::new(),
        };
        let silence = silences.iter().find(|s| s.is_active(now) && s.matches(rule_id, subject, codes.iter().copied()));
        let (alert, reason) = advance(fp, before, found, signal, policy, silence, now);
        if let Some(mut alert) = alert {
            if let Some(reason) = reason {
                alert.last_notified_at = Some(now);
                alert.repeat_from = Some(now);
                notes.push(Notification { reason, alert: alert.clone() });
            }
            next.alerts.insert(fp.clone(), alert);
        }
    }
    (next, notes)
}

/// Moves one fingerprint forward; the alert to keep (if any) and the notice it owes.
fn advance(
    fp: &str,
    before: Option<&AlertState>,
    found: Option<&[&Finding]>,
    signal: Signal,
    policy: Policy,
    silence: Option<&Silence>,
    now: DateTime<Utc>,
) -> (Option<AlertState>, Option<NotifyReason>) {
    match signal {
        Signal::Retired => (None, None),
        Signal::Present => {
            let findings = found.unwrap_or_default();
            let Some(first) = findings.first() else { return (before.cloned(), None) };
            let mut a = match before {
                Some(b) if b.state != Phase::Resolved => {
                    let mut a = b.clone();
                    a.consecutive_cycles = a.consecutive_cycles.saturating_add(1);
                    a
                }
                // New, or a resolved alert that came back: a new episode.
                _ => AlertState {
                    fingerprint: fp.to_owned(),
                    rule: first.rule.clone(),
                    subject: first.subject.clone(),
                    severity: first.severity,
                    state: Phase::Pending,
                    active_since: now,
                    fired_at: None,
                    resolved_at: None,
                    last_seen_at: now,
                    last_notified_at: None,
                    repeat_from: None,
                    consecutive_cycles: 1,
                    last_finding: (*first).clone(),
                    other_findings: Vec::new(),
                    unknown: false,
                    silenced: false,
                    silenced_by: None,
                },
            };
            a.last_seen_at = now;
            a.last_finding = (*first).clone();
            a.other_findings = findings[1..].iter().map(|f| (*f).clone()).collect();
            a.severity = findings.iter().map(|f| f.severity).max().unwrap_or(first.severity);
            a.unknown = false;
            apply_silence(&mut a, silence, now);
            if a.state == Phase::Pending && hold_met(&a, policy.hold, now) {
                a.state = Phase::Firing;
                a.fired_at = Some(now);
            }
            let reason = decide(&a, policy.repeat, now);
            (Some(a), reason)
        }
        Signal::Unknown | Signal::Skipped => {
            let Some(b) = before else { return (None, None) };
            let mut a = b.clone();
            if a.state == Phase::Resolved {
                return resolved_kept(a, policy, silence, now);
            }
            // Skipped holds the phase like unknown, but the watchdog is not blind: no note.
            a.unknown = signal == Signal::Unknown;
            apply_silence(&mut a, silence, now);
            let reason = decide(&a, policy.repeat, now);
            (Some(a), reason)
        }
        Signal::Absent => {
            let Some(b) = before else { return (None, None) };
            let mut a = b.clone();
            match a.state {
                Phase::Pending => (None, None),
                Phase::Resolved => resolved_kept(a, policy, silence, now),
                Phase::Firing => {
                    a.state = Phase::Resolved;
                    a.resolved_at = Some(now);
                    a.unknown = false;
                    apply_silence(&mut a, silence, now);
                    let announce = policy.send_resolved && !a.silenced && a.last_notified_at.is_some();
                    (Some(a), announce.then_some(NotifyReason::Resolved))
                }
            }
        }
    }
}

/// A resolved alert: kept until its retention has passed.
fn resolved_kept(
    mut a: AlertState,
    policy: Policy,
    silence: Option<&Silence>,
    now: DateTime<Utc>,
) -> (Option<AlertState>, Option<NotifyReason>) {
    let resolved_at = a.resolved_at.unwrap_or(a.last_seen_at);
    if elapsed(resolved_at, now, policy.retention) {
        return (None, None);
    }
    a.unknown = false;
    apply_silence(&mut a, silence, now);
    (Some(a), None)
}

fn hold_met(a: &AlertState, hold: Option<Hold>, now: DateTime<Utc>) -> bool {
    match hold {
        None => true,
        Some(Hold::Duration(d)) => elapsed(a.active_since, now, d),
        Some(Hold::Cycles(n)) => a.consecutive_cycles >= n,
    }
}

/// Marks the alert silenced or not; when a silence lifts from a firing alert that was already
/// notified, the repeat interval restarts now (no immediate re-send).
fn apply_silence(a: &mut AlertState, silence: Option<&Silence>, now: DateTime<Utc>) {
    let was = a.silenced;
    a.silenced = silence.is_some();
    a.silenced_by = silence.map(|s| s.id.clone());
    if was && !a.silenced && a.state == Phase::Firing && a.last_notified_at.is_some() {
        a.repeat_from = Some(now);
    }
}

#[cfg(test)]
mod tests;
