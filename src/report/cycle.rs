//! What `tradewarden run` adds to a report: which findings are silenced, and what the cycle did
//! with them (notifications, email delivery, actions, problems). The same `CycleRecord` is the
//! line the daemon appends to `state_dir/audits.jsonl`.
//!
//! Both additions are absent from `audit` output (empty `silenced` and null `cycle` are not
//! serialised), so the JSON report schema stays backward-compatible.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Summary;
use crate::act::ActionReport;
use crate::model::Mode;

/// A finding's alert that a silence mutes: it stays in the report, but sends no email and
/// triggers no action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SilencedAlert {
    /// `rule/subject`: the findings with this rule and subject are silenced.
    pub fingerprint: String,
    /// Rule id.
    pub rule: String,
    /// Subject.
    pub subject: String,
    /// The silence's id (`silence rm ID`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub silence: Option<String>,
    /// When the silence ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<DateTime<Utc>>,
    /// Why, in the operator's words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Rules by outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct OutcomeCounts {
    /// Evaluated, nothing wrong.
    pub ok: usize,
    /// Findings emitted.
    pub violated: usize,
    /// An input failed.
    pub unknown: usize,
    /// `when` did not hold.
    pub skipped: usize,
}

/// Alerts by phase after the cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AlertCounts {
    /// `for` not met yet.
    pub pending: usize,
    /// Firing.
    pub firing: usize,
    /// Resolved, kept for the retention window.
    pub resolved: usize,
    /// Of those, muted by a silence.
    pub silenced: usize,
}

/// Notifications the cycle owed (all grouped into one email).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct NotificationCounts {
    /// Started firing.
    pub firing: usize,
    /// Still firing, `repeat` elapsed.
    pub repeat: usize,
    /// Resolved.
    pub resolved: usize,
}

/// Email in this cycle: what was queued and what the outbox flush did.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct EmailStatus {
    /// The Message-ID of the message this cycle queued, if it owed one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queued: Option<String>,
    /// Messages delivered by this cycle's flush (this cycle's and older ones).
    pub delivered: usize,
    /// Messages that failed this flush and wait for a retry.
    pub failed: usize,
    /// Messages still in the outbox afterwards.
    pub outbox: usize,
    /// Why deliveries failed (no secrets).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

/// One action the hook ran or described: the [`ActionReport`] without its time and finding
/// (the report lists findings on their own), derived from it by `From` and nothing else.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionLine {
    /// `flatten_shorts`, `exec:stop-bot`, ...
    pub action: String,
    /// The rule whose alert asked for it.
    pub rule: String,
    /// The alert's subject.
    pub subject: String,
    /// `described`, `done`, `refused`, `skipped`, `failed`, `unconfirmed`, `recovered`.
    pub result: String,
    /// One sentence.
    pub detail: String,
    /// `fix_state`: the unified diff (written, or that would be written).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
    /// The id of its intent and outcome in `state_dir/actions.jsonl`, when it was journaled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub journal_id: Option<String>,
}

impl From<&ActionReport> for ActionLine {
    fn from(a: &ActionReport) -> Self {
        let ActionReport { at: _, action, rule, subject, result, detail, finding: _, diff, journal_id } = a.clone();
        Self { action, rule, subject, result, detail, diff, journal_id }
    }
}

/// One daemon cycle: a line of `audits.jsonl`, and the `cycle` of the report it produced.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct CycleRecord {
    /// When the cycle started.
    pub at: DateTime<Utc>,
    /// How long it took, in milliseconds.
    pub duration_ms: u64,
    /// The audit completed (collect and evaluate); false when collection could not start.
    pub ok: bool,
    /// Why the audit did not complete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// paper, live or replay (absent when the audit did not complete).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
    /// Findings by severity.
    pub summary: Summary,
    /// Rules by outcome.
    pub rules: OutcomeCounts,
    /// The sources that failed this cycle (`broker:positions`, `metadata`, `log:run`, ...):
    /// the rules that need them were unknown, and no action could rely on them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed_sources: Vec<String>,
    /// Alerts by phase.
    pub alerts: AlertCounts,
    /// Notifications owed.
    pub notifications: NotificationCounts,
    /// Email.
    pub email: EmailStatus,
    /// Actions run or described.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<ActionLine>,
    /// Anything else that went wrong (a state file moved aside, a write that failed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use serde_json::json;

    use super::*;

    /// The report's `cycle.actions` keep their JSON shape: an action report less its time and
    /// finding, optional fields left out when empty.
    #[test]
    fn an_action_line_is_the_action_report_less_time_and_finding() {
        let mut a = ActionReport {
            at: Utc.with_ymd_and_hms(2026, 11, 20, 15, 30, 0).unwrap(),
            action: "flatten_shorts".into(),
            rule: "no-shorts".into(),
            subject: "CHWY".into(),
            result: "done".into(),
            detail: "closed".into(),
            finding: None,
            diff: None,
            journal_id: Some("j-1".into()),
        };
        assert_eq!(
            serde_json::to_value(ActionLine::from(&a)).unwrap(),
            json!({ "action": "flatten_shorts", "rule": "no-shorts", "subject": "CHWY", "result": "done",
                    "detail": "closed", "journal_id": "j-1" })
        );
        a.diff = Some("--- a\n+++ b\n".into());
        a.journal_id = None;
        let line = ActionLine::from(&a);
        assert_eq!((line.diff.as_deref(), line.journal_id), (Some("--- a\n+++ b\n"), None));
    }
}
