//! Requests: an action and the triggers (firing alerts, or the operator) asking for it, and
//! the filters both modes apply to them (silence, a rule not evaluated this cycle).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::plan::Scope;
use crate::alert::{AlertBook, AlertState};
use crate::config::Config;
use crate::engine::Evaluated;
use crate::model::{ActionKind, Finding, Outcome as RuleOutcome, Snapshot};

/// Who runs an action: the daemon for a firing alert, or the operator's command. (Not
/// [`model::Origin`](crate::model::Origin), the pseudo-rule a finding comes from.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    /// A firing alert in a daemon cycle.
    Daemon,
    /// `tradewarden flatten` / `fix`.
    Cli,
}

impl Caller {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Daemon => "daemon",
            Self::Cli => "cli",
        }
    }
}

/// One alert (or the operator's command) asking for an action.
#[derive(Debug, Clone, PartialEq)]
pub struct Trigger {
    /// The cooldown key (`rule/subject`, or `cli/...`).
    pub fingerprint: String,
    /// The rule (`cli` for a command).
    pub rule: String,
    /// The subject.
    pub subject: String,
    /// Its findings (the exec's stdin, the journal's "why").
    pub findings: Vec<Finding>,
    /// The silence muting it.
    pub silenced_by: Option<String>,
    /// Its rule was not evaluated this cycle (unknown, or skipped by its `when`).
    pub unknown: bool,
    /// The symbols it is about.
    pub scope: Scope,
    /// The orders its findings name (`observed.order_ids`).
    pub order_ids: BTreeSet<String>,
}

/// An action and the triggers asking for it.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The action.
    pub kind: ActionKind,
    /// Daemon or CLI.
    pub origin: Caller,
    /// Who asks.
    pub triggers: Vec<Trigger>,
}

/// The symbol an alert is about, when its subject is one the snapshot knows (held at the
/// broker, tracked by the bot, or in its metadata); else the action's scope is every symbol.
fn scope_of(alert: &AlertState, snapshot: &Snapshot) -> Scope {
    let s = alert.subject.as_str();
    let known = snapshot.broker.positions.as_ref().is_ok_and(|p| p.iter().any(|p| p.symbol.as_str() == s))
        || snapshot.bot.positions.as_ref().is_ok_and(|p| p.iter().any(|p| p.symbol.as_str() == s))
        || matches!(&snapshot.bot.metadata, Some(Ok(m)) if m.keys().any(|k| k.as_str() == s));
    if known { Scope::Symbols([s.to_owned()].into()) } else { Scope::All }
}

/// The orders findings name (`observed.order_ids`, as `open_order_hazard` reports them): what
/// `cancel_hazard_orders` cancels, from the alert and again from the re-read's findings.
pub(crate) fn order_ids<'f>(findings: impl IntoIterator<Item = &'f Finding>) -> BTreeSet<String> {
    findings
        .into_iter()
        .flat_map(|f| f.observed.get("order_ids").and_then(Value::as_array).cloned().unwrap_or_default())
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect()
}

/// One request per action named by firing alerts' rules, in the cycle's order. Silenced
/// alerts take no part (no action, no description: the report lists them as silenced).
pub(crate) fn requests(
    config: &Config,
    alerts: &AlertBook,
    snapshot: &Snapshot,
    evaluated: &Evaluated,
) -> Vec<Request> {
    let mut by_kind: BTreeMap<(u8, ActionKind), Vec<Trigger>> = BTreeMap::new();
    for alert in alerts.actionable() {
        let Some(rule) = config.rules.iter().find(|r| r.id == alert.rule) else { continue };
        for action in &rule.actions {
            // A skipped rule (its `when` does not hold) holds its alerts firing, but was not
            // evaluated this cycle either: no action on it, exactly as for unknown.
            let unknown = alert.unknown
                || matches!(evaluated.outcome(&rule.id), Some(RuleOutcome::Unknown | RuleOutcome::Skipped));
            by_kind.entry((action.priority(), action.clone())).or_default().push(Trigger {
                fingerprint: alert.fingerprint.clone(),
                rule: alert.rule.clone(),
                subject: alert.subject.clone(),
                findings: alert.findings().cloned().collect(),
                silenced_by: None,
                unknown,
                // flatten_all is the broker's close-all, whatever the alert is about.
                scope: if action.spec().account_wide { Scope::All } else { scope_of(alert, snapshot) },
                order_ids: order_ids(alert.findings()),
            });
        }
    }
    by_kind.into_iter().map(|((_, kind), triggers)| Request { kind, origin: Caller::Daemon, triggers }).collect()
}

/// The merged scope and order ids of the triggers.
pub(crate) fn merged(triggers: &[Trigger]) -> (Scope, BTreeSet<String>) {
    let mut scope: Option<Scope> = None;
    let mut ids = BTreeSet::new();
    for t in triggers {
        match &mut scope {
            None => scope = Some(t.scope.clone()),
            Some(s) => s.merge(t.scope.clone()),
        }
        ids.extend(t.order_ids.iter().cloned());
    }
    (scope.unwrap_or(Scope::Symbols(BTreeSet::new())), ids)
}

pub(crate) fn joined(triggers: &[Trigger], f: impl Fn(&Trigger) -> &str) -> String {
    let mut v: Vec<&str> = Vec::new();
    for t in triggers {
        let s = f(t);
        if !v.contains(&s) {
            v.push(s);
        }
    }
    v.join(",")
}

/// Gate 2, silence: the triggers no silence mutes; `Err(why)` when every one is muted.
pub(crate) fn unsilenced(triggers: &[Trigger]) -> Result<Vec<Trigger>, String> {
    let (muted, live): (Vec<&Trigger>, Vec<&Trigger>) = triggers.iter().partition(|t| t.silenced_by.is_some());
    if live.is_empty() {
        let by: BTreeSet<&str> = muted.iter().filter_map(|t| t.silenced_by.as_deref()).collect();
        return Err(format!("silenced by {}", by.into_iter().collect::<Vec<_>>().join(", ")));
    }
    Ok(live.into_iter().cloned().collect())
}

/// Gate 5's first half: a trigger whose rule was not evaluated this cycle (unknown, or skipped
/// by its `when`) drops out; the ones kept, and why each other one went.
pub(crate) fn known(triggers: Vec<Trigger>) -> (Vec<Trigger>, Vec<String>) {
    let mut gone = Vec::new();
    let kept = triggers
        .into_iter()
        .filter(|t| {
            if t.unknown {
                gone.push(format!(
                    "{}: its rule is unknown this cycle or skipped by its `when`; no action on incomplete data",
                    t.fingerprint
                ));
            }
            !t.unknown
        })
        .collect();
    (kept, gone)
}
