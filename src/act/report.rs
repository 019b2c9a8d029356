//! `ActionReport`: what happened to one action in a cycle, the one record the report, the
//! email, the status page and the metrics are made from (`report::ActionLine` is derived from
//! it by one function).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Status;
use super::request::{Trigger, joined};
use crate::model::ActionKind;

/// What happened to one action in a cycle: for the report, the email, the status page and the
/// metrics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionReport {
    /// When.
    pub at: DateTime<Utc>,
    /// The action (`flatten_shorts`, `exec:stop-bot`, ...).
    pub action: String,
    /// The rule whose alert asked for it (comma-separated when several alerts did).
    pub rule: String,
    /// The alert's subject (comma-separated when several).
    pub subject: String,
    /// `described` (observe mode), `done`, `refused`, `skipped`, `failed`, `unconfirmed`,
    /// or `recovered` (start-up: an interrupted action resolved by re-reading).
    pub result: String,
    /// What was (or would be) done, or why not.
    pub detail: String,
    /// A finding the daemon adds to this cycle's report and email: a refusal by the live
    /// guard or an exhausted budget, a failed or unconfirmed action (rule `actions`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finding: Option<crate::model::Finding>,
    /// `fix_state`: the unified diff (written, or that would be written in observe mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
    /// The id linking the intent and outcome records in `state_dir/actions.jsonl`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub journal_id: Option<String>,
}

impl ActionReport {
    /// The report of `kind` for these triggers (their rules and subjects, each once, in order),
    /// with no finding, diff or journal id yet.
    #[must_use]
    pub(crate) fn of(
        kind: &ActionKind,
        triggers: &[Trigger],
        at: DateTime<Utc>,
        status: Status,
        detail: String,
    ) -> Self {
        Self {
            at,
            action: kind.to_string(),
            rule: joined(triggers, |t| &t.rule),
            subject: joined(triggers, |t| &t.subject),
            result: status.as_str().into(),
            detail,
            finding: None,
            diff: None,
            journal_id: None,
        }
    }

    /// The result as a `Status`, when it is one.
    #[must_use]
    pub fn status(&self) -> Option<Status> {
        serde_json::from_value(Value::String(self.result.clone())).ok()
    }
}
