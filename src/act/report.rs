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

    /// What it did, in a word or two for an email subject (`flattened`), when it was done.
    #[must_use]
    pub fn done_word(&self) -> Option<&'static str> {
        (self.status() == Some(Status::Done)).then(|| ActionKind::from_name(&self.action).map(|k| k.spec().done))?
    }

    /// The result as a `Status`, when it is one.
    #[must_use]
    pub fn status(&self) -> Option<Status> {
        serde_json::from_value(Value::String(self.result.clone())).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_done_action_has_a_done_word_from_the_action_table() {
        let r = |action: &str, status: Status| {
            ActionReport::of(
                &ActionKind::from_name(action).unwrap(),
                &[],
                DateTime::<Utc>::MIN_UTC,
                status,
                String::new(),
            )
        };
        assert_eq!(r("flatten_shorts", Status::Done).done_word(), Some("flattened"));
        assert_eq!(r("enforce_no_shorting", Status::Done).done_word(), Some("shorting disabled"));
        assert_eq!(r("exec:stop-bot", Status::Done).done_word(), Some("command run"));
        assert_eq!(r("flatten_shorts", Status::Failed).done_word(), None);
        assert_eq!(r("fix_state", Status::Described).done_word(), None);
    }
}
