//! Remediation: the actions rules name (flatten, cancel, broker-side guards, state repair,
//! exec), behind safety gates. STUB: the daemon's hook is fixed here; the gates and the
//! actions themselves are built in the remediation work (issue 5).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::alert::AlertBook;
use crate::collect::broker::Broker;
use crate::config::{ActionMode, Config};
use crate::engine::Evaluated;
use crate::model::Snapshot;

/// What happened to one action in a cycle: for the report, the email, the status page and the
/// metrics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionReport {
    /// When.
    pub at: DateTime<Utc>,
    /// The action (`flatten_shorts`, `exec:stop-bot`, ...).
    pub action: String,
    /// The rule whose alert asked for it.
    pub rule: String,
    /// The alert's subject.
    pub subject: String,
    /// `described` (observe mode), `done`, `refused`, `skipped`, `failed` or `unconfirmed`.
    pub result: String,
    /// One sentence: what was (or would be) done, or why not.
    pub detail: String,
    /// A finding the daemon adds to this cycle's report and email: a refusal by the live
    /// guard or an exhausted budget, a failed or unconfirmed action (rule `actions`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finding: Option<crate::model::Finding>,
}

/// Runs actions for firing alerts.
pub struct Actor {
    mode: ActionMode,
}

impl Actor {
    /// An actor for this configuration and broker.
    #[must_use]
    pub fn new(config: &Config, _broker: &Broker) -> Self {
        Self { mode: config.actions.mode }
    }

    /// Resolves intents journaled without an outcome (a crash mid-action) by re-reading the
    /// broker; called once at start-up.
    pub async fn recover(&mut self, _now: DateTime<Utc>) -> Vec<ActionReport> {
        Vec::new()
    }

    /// The actions hook of a cycle: for every firing, unsilenced alert whose rule names
    /// actions, run them behind the gates (or describe them in observe mode).
    pub async fn on_cycle(
        &mut self,
        config: &Config,
        alerts: &AlertBook,
        _snapshot: &Snapshot,
        _evaluated: &Evaluated,
        now: DateTime<Utc>,
    ) -> Vec<ActionReport> {
        let mut out = Vec::new();
        for alert in alerts.actionable() {
            let Some(rule) = config.rules.iter().find(|r| r.id == alert.rule) else { continue };
            for action in &rule.actions {
                out.push(ActionReport {
                    at: now,
                    action: action.to_string(),
                    rule: alert.rule.clone(),
                    subject: alert.subject.clone(),
                    result: if self.mode == ActionMode::Observe { "described".into() } else { "skipped".into() },
                    detail: format!("would run {action} for {} (remediation is not built yet)", alert.fingerprint),
                    finding: None,
                });
            }
        }
        out
    }
}
