//! Alert transitions: what changed in the alert book from one cycle to the next, as records
//! the daemon appends to `state_dir/alert_events.jsonl` (read back by `alerts history`).
//!
//! The book itself only holds the current episode of each alert, so without this log a
//! short that fired at 10:02 and resolved at 10:07 leaves no trace once the resolved alert
//! passes its retention. `transitions` is a pure diff of two books; the file I/O is
//! `state::jsonl`'s (one line per record, a torn line skipped on reading, rotated at the cap).
//!
//! The log is history, not a decision input: it is written after the step, not fsynced, and
//! a crash between saving the book and appending may lose (or, when the book was not saved,
//! repeat) one cycle's records.

use std::io;
use std::path::Path;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::lifecycle::{AlertBook, AlertState, Phase};
use crate::model::Severity;
use crate::state::jsonl::{self, AppendPolicy, Lines};

/// The file name inside the state directory.
pub const FILE: &str = "alert_events.jsonl";
/// Past 10 MB the log is rotated to `alert_events.jsonl.1` (replacing the one before).
pub const CAP: u64 = 10 * 1024 * 1024;

/// Where an alert went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transition {
    /// An episode began; the rule's `for` is not met yet.
    Pending,
    /// It started firing.
    Firing,
    /// It was firing and the violation is gone (the rule was evaluated).
    Resolved,
    /// It left the book without resolving: a pending alert whose violation went away before
    /// its `for` was met, or an alert whose rule is no longer configured.
    Inactive,
}

impl Transition {
    /// `pending`, `firing`, `resolved` or `inactive`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Firing => "firing",
            Self::Resolved => "resolved",
            Self::Inactive => "inactive",
        }
    }
}

/// One transition of one alert: a line of `alert_events.jsonl`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertEvent {
    /// The cycle's time.
    pub at: DateTime<Utc>,
    /// `rule/subject`.
    pub fingerprint: String,
    /// The rule id (`source` for source findings).
    pub rule: String,
    /// The finding subject.
    pub subject: String,
    /// The alert's severity at the transition.
    pub severity: Severity,
    /// Where it went.
    pub event: Transition,
    /// The phase it left (`None`: it was not in the book).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<Phase>,
    /// The finding code last seen (`short_position`, `rule_unknown`, ...).
    pub code: String,
    /// The finding message last seen.
    pub message: String,
    /// Muted by a silence at the time (no notice was sent for it).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub silenced: bool,
}

impl AlertEvent {
    fn new(a: &AlertState, event: Transition, from: Option<Phase>, at: DateTime<Utc>) -> Self {
        Self {
            at,
            fingerprint: a.fingerprint.clone(),
            rule: a.rule.clone(),
            subject: a.subject.clone(),
            severity: a.severity,
            event,
            from,
            code: a.last_finding.code.clone(),
            message: a.last_finding.message.clone(),
            silenced: a.silenced,
        }
    }
}

/// The transitions from `prev` to `next` (one cycle's step), ordered by fingerprint. Pure.
///
/// A resolved alert that comes back is a new episode (pending or firing from resolved); a
/// resolved alert dropped after its retention is no transition (it had already resolved).
#[must_use]
pub fn transitions(prev: &AlertBook, next: &AlertBook, at: DateTime<Utc>) -> Vec<AlertEvent> {
    let mut out = Vec::new();
    for (fp, a) in &next.alerts {
        match prev.alerts.get(fp) {
            None => out.push(AlertEvent::new(a, to_transition(a.state), None, at)),
            Some(b) if b.state != a.state || b.active_since != a.active_since => {
                out.push(AlertEvent::new(a, to_transition(a.state), Some(b.state), at));
            }
            Some(_) => {}
        }
    }
    for (fp, b) in &prev.alerts {
        if b.state != Phase::Resolved && !next.alerts.contains_key(fp) {
            out.push(AlertEvent::new(b, Transition::Inactive, Some(b.state), at));
        }
    }
    out.sort_by(|x, y| x.fingerprint.cmp(&y.fingerprint));
    out
}

fn to_transition(p: Phase) -> Transition {
    match p {
        Phase::Pending => Transition::Pending,
        Phase::Firing => Transition::Firing,
        Phase::Resolved => Transition::Resolved,
    }
}

/// Appends the records, one line each, rotating first when the file would pass `cap` bytes.
/// Not fsynced: a record lost to a power cut costs history, never a decision.
///
/// # Errors
/// When the file cannot be rotated or written (the records after the failing one are not
/// written either).
pub fn append(state_dir: &Path, events: &[AlertEvent], cap: u64) -> io::Result<()> {
    let path = state_dir.join(FILE);
    for e in events {
        jsonl::append(&path, e, AppendPolicy { sync: false, rotate_at: Some(cap) })?;
    }
    Ok(())
}

/// Reads the log, the rotated file first: every record in file order, and the lines that
/// were not records. Missing files have no records.
///
/// # Errors
/// When a file exists but cannot be read.
pub fn read(state_dir: &Path) -> io::Result<Lines<AlertEvent>> {
    let path = state_dir.join(FILE);
    let mut lines: Lines<AlertEvent> = jsonl::read(&jsonl::rotated(&path))?;
    let now = jsonl::read(&path)?;
    lines.records.extend(now.records);
    lines.skipped += now.skipped;
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use chrono::TimeZone;
    use serde_json::json;

    use super::*;
    use crate::model::Finding;

    fn t(min: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 6, 10, min, 0).unwrap()
    }

    fn alert(subject: &str, state: Phase, since: DateTime<Utc>) -> AlertState {
        let finding: Finding = serde_json::from_value(json!({
            "rule": "no-shorts", "check": "no_short_positions", "code": "short_position",
            "severity": "critical", "subject": subject, "message": format!("{subject} short -1596"),
            "observed": null, "expected": null
        }))
        .unwrap();
        AlertState {
            fingerprint: format!("no-shorts/{subject}"),
            rule: "no-shorts".into(),
            subject: subject.into(),
            severity: Severity::Critical,
            state,
            active_since: since,
            fired_at: None,
            resolved_at: None,
            last_seen_at: since,
            last_notified_at: None,
            repeat_from: None,
            consecutive_cycles: 1,
            last_finding: finding,
            other_findings: Vec::new(),
            unknown: false,
            silenced: false,
            silenced_by: None,
        }
    }

    fn book(alerts: &[AlertState]) -> AlertBook {
        AlertBook {
            alerts: alerts.iter().map(|a| (a.fingerprint.clone(), a.clone())).collect::<BTreeMap<_, _>>(),
            ..AlertBook::default()
        }
    }

    /// A record names the alert (rule, subject, fingerprint), its severity, where it went and
    /// from where, the finding's code and message, and the cycle's time; on disk it is one
    /// JSON object per line with exactly those fields.
    #[test]
    fn a_transition_record_carries_the_alert_the_phases_and_the_time() {
        let prev = book(&[alert("CHWY", Phase::Pending, t(0))]);
        let next = book(&[alert("CHWY", Phase::Firing, t(0))]);
        let events = transitions(&prev, &next, t(2));
        assert_eq!(events.len(), 1, "{events:?}");
        assert_eq!(
            serde_json::to_value(&events[0]).unwrap(),
            json!({ "at": "2026-12-06T10:02:00Z", "fingerprint": "no-shorts/CHWY", "rule": "no-shorts",
                    "subject": "CHWY", "severity": "critical", "event": "firing", "from": "pending",
                    "code": "short_position", "message": "CHWY short -1596" })
        );
        let dir = tempfile::tempdir().unwrap();
        append(dir.path(), &events, CAP).unwrap();
        append(dir.path(), &events, CAP).unwrap();
        let back = read(dir.path()).unwrap();
        assert_eq!((back.records.len(), back.skipped), (2, 0));
        assert_eq!(back.records[1], events[0]);
    }

    #[test]
    fn every_phase_change_is_one_transition_and_an_unchanged_alert_none() {
        let same = alert("AAPL", Phase::Firing, t(0));
        let prev = book(&[
            same.clone(),
            alert("BILL", Phase::Firing, t(0)),
            alert("COIN", Phase::Pending, t(0)),
            alert("OKTA", Phase::Resolved, t(0)),
            alert("ZM", Phase::Resolved, t(0)),
        ]);
        let next = book(&[
            same,
            alert("BILL", Phase::Resolved, t(0)),
            // OKTA came back: a new episode.
            alert("OKTA", Phase::Pending, t(5)),
            alert("CHWY", Phase::Firing, t(5)),
        ]);
        let got: Vec<(String, Transition, Option<Phase>)> =
            transitions(&prev, &next, t(5)).into_iter().map(|e| (e.subject, e.event, e.from)).collect();
        assert_eq!(
            got,
            vec![
                ("BILL".into(), Transition::Resolved, Some(Phase::Firing)),
                ("CHWY".into(), Transition::Firing, None),
                ("COIN".into(), Transition::Inactive, Some(Phase::Pending)),
                ("OKTA".into(), Transition::Pending, Some(Phase::Resolved)),
            ],
            "ZM, resolved and past its retention, is dropped without a transition"
        );
    }

    #[test]
    fn the_log_rotates_past_its_cap_and_reading_joins_both_files() {
        let dir = tempfile::tempdir().unwrap();
        let events = transitions(&AlertBook::default(), &book(&[alert("CHWY", Phase::Firing, t(0))]), t(0));
        let one = serde_json::to_vec(&events[0]).unwrap().len() as u64 + 1;
        for _ in 0..3 {
            append(dir.path(), &events, one * 2).unwrap();
        }
        assert!(dir.path().join("alert_events.jsonl.1").exists());
        assert_eq!(read(dir.path()).unwrap().records.len(), 3);
    }
}
