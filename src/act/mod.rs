//! Remediation (design.md §6): the actions rules name, behind safety gates, in the daemon
//! (`Actor::on_cycle`) and as commands (`tradewarden flatten`, `tradewarden fix`, in `cmd`).
//!
//! | action | effect |
//! |---|---|
//! | `flatten_shorts` | per short: cancel its open orders, then `DELETE /v2/positions/{symbol}` |
//! | `flatten_all` | `DELETE /v2/positions?cancel_orders=true` |
//! | `cancel_hazard_orders` | cancel exactly the orders `open_order_hazard` findings name |
//! | `suspend_trading` | `PATCH /v2/account/configurations {"suspend_trade": true}` |
//! | `enforce_no_shorting` | `PATCH /v2/account/configurations {"no_shorting": true}` |
//! | `fix_state` | rewrite the bot's positions/metadata files to match the broker |
//! | `exec:NAME` | run `[actions.exec.NAME]` (argv, no shell, findings on stdin, timeout) |
//!
//! The gates, in order: mode (observe describes the exact steps and sends nothing), then the
//! `runner` pipeline: live guard, silence, daily budgets, cooldown, fresh re-read, intent,
//! action, confirmation, outcome. The overriding rule is that tradewarden never makes things
//! worse: no order it sends can open or deepen a short (`broker::ActBroker` has no way to
//! submit one), nothing runs on incomplete data, and every write is journaled before it is
//! made (`journal`), so a crash is resolved by re-reading, never by repeating.
//!
//! Within a cycle, each action runs at most once, for all the firing alerts that name it
//! (one intent, one budget unit), in this order: `enforce_no_shorting`,
//! `cancel_hazard_orders`, `flatten_shorts`, `flatten_all`, `exec:*`, `fix_state`,
//! `suspend_trading` (last: a suspended account cannot close positions either).
//!
//! Modules: `plan` (pure planning and descriptions), `runner` (the gates), `flatten`,
//! `cancel`, `guard`, `fix_state` (+ `json_edit`), `exec` (the actions), `confirm` (polling),
//! `journal`, `recover`, `broker` (the trait), `cmd` (the CLI).

pub mod broker;
mod cancel;
pub mod confirm;
pub mod exec;
pub mod fix_state;
mod flatten;
mod guard;
pub mod journal;
pub mod json_edit;
pub mod plan;
mod recover;
pub mod runner;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::alert::{AlertBook, AlertState};
use crate::collect::broker::Broker;
use crate::config::{ActionKind, ActionMode, Config};
use crate::engine::Evaluated;
use crate::model::{Mode, Outcome as RuleOutcome, Severity, Snapshot};
pub use broker::ActBroker;
use confirm::Timing;
use journal::{Journal, Ledger, Outcome, Record};
use plan::{Guard, Plan, Scope, Step};
use runner::{ActionsLock, Clockwork, Origin, Prepared, Recheck, Request, Runner, Stop, Trigger, finding};

/// What happened to an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Observe mode: the exact steps it would take; nothing sent.
    Described,
    /// Done and confirmed.
    Done,
    /// A gate said no (live guard, budget, a busy or changed file, ...).
    Refused,
    /// Nothing to do, or not now (silenced, cooldown, violation gone, source unknown).
    Skipped,
    /// The broker refused a write, or a command failed.
    Failed,
    /// Done, but the effect was not seen before `confirm_timeout`.
    Unconfirmed,
    /// An interrupted action (no outcome in the journal) resolved at start-up by re-reading.
    Recovered,
}

impl Status {
    /// The lowercase name, as in `ActionReport::result`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Described => "described",
            Self::Done => "done",
            Self::Refused => "refused",
            Self::Skipped => "skipped",
            Self::Failed => "failed",
            Self::Unconfirmed => "unconfirmed",
            Self::Recovered => "recovered",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

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
    /// The result as a `Status`, when it is one.
    #[must_use]
    pub fn status(&self) -> Option<Status> {
        serde_json::from_value(Value::String(self.result.clone())).ok()
    }
}

/// What an action's execution produced.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Executed {
    pub(crate) status: Status,
    pub(crate) detail: String,
    pub(crate) steps: Vec<String>,
    pub(crate) after: Value,
    pub(crate) diff: Option<String>,
    pub(crate) exec: Option<Value>,
}

impl Executed {
    /// `failed` when anything failed, else `unconfirmed` when an effect was not seen, else
    /// `done`; the detail lists failures, then unconfirmed effects, then what was done.
    pub(crate) fn from_parts(log: Vec<String>, failed: Vec<String>, unconfirmed: Vec<String>, after: Value) -> Self {
        let status = if !failed.is_empty() {
            Status::Failed
        } else if !unconfirmed.is_empty() {
            Status::Unconfirmed
        } else {
            Status::Done
        };
        let detail = failed.iter().chain(&unconfirmed).chain(&log).cloned().collect::<Vec<_>>().join("; ");
        Self { status, detail, steps: log, after, diff: None, exec: None }
    }

    pub(crate) fn failed(why: String) -> Self {
        Self::from_parts(Vec::new(), vec![why], Vec::new(), Value::Null)
    }
}

/// Test seams: a callback right before `fix_state` writes, and (debug builds only, from
/// `TRADEWARDEN_TEST_PAUSE_AFTER_WRITE_MS`) a pause between an action's writes and its
/// outcome record, so a test can kill the process there.
#[derive(Clone, Default)]
pub struct Hooks {
    before_fix_write: Option<Arc<dyn Fn() + Send + Sync>>,
    pause_after_write: Option<Duration>,
}

impl fmt::Debug for Hooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hooks")
            .field("before_fix_write", &self.before_fix_write.is_some())
            .field("pause_after_write", &self.pause_after_write)
            .finish()
    }
}

impl Hooks {
    fn from_env() -> Self {
        let mut h = Self::default();
        if cfg!(debug_assertions) {
            h.pause_after_write = std::env::var("TRADEWARDEN_TEST_PAUSE_AFTER_WRITE_MS")
                .ok()
                .and_then(|v| v.parse::<u64>().ok())
                .map(Duration::from_millis);
        }
        h
    }

    pub(crate) fn before_fix_write(&self) {
        if let Some(f) = &self.before_fix_write {
            f();
        }
    }

    pub(crate) async fn pause_after_write(&self) {
        if let Some(d) = self.pause_after_write {
            tracing::warn!(
                ms = d.as_millis(),
                "Test pause after an action's writes (TRADEWARDEN_TEST_PAUSE_AFTER_WRITE_MS)."
            );
            tokio::time::sleep(d).await;
        }
    }
}

/// What the operator asks for on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Manual {
    /// `tradewarden flatten`.
    Flatten {
        /// `--shorts-only` (else `--all`).
        shorts_only: bool,
        /// `--symbol`s (empty: every symbol).
        symbols: Vec<String>,
    },
    /// `tradewarden fix`.
    Fix,
}

/// A manual action's plan, shown before asking.
#[derive(Debug, Clone)]
pub struct Preview {
    prepared: Prepared,
}

impl Preview {
    /// The steps.
    #[must_use]
    pub fn plan(&self) -> &Plan {
        &self.prepared.plan
    }

    /// `fix`: the diff.
    #[must_use]
    pub fn diff(&self) -> Option<String> {
        self.prepared.fix.as_ref().map(fix_state::FixPlan::diff)
    }
}

/// How long to wait for another tradewarden's action to finish.
const LOCK_WAIT: Duration = Duration::from_secs(60);

/// Runs actions for firing alerts (the daemon) and for the operator (the CLI).
pub struct Actor {
    broker: Option<Arc<dyn ActBroker>>,
    mode: Mode,
    state_dir: PathBuf,
    /// `[bot].root`: recovery re-reads `fix_state`'s files only inside it.
    bot_root: PathBuf,
    poll: Duration,
    hooks: Hooks,
    /// Interrupted intents that could not be resolved yet (the broker was unreachable).
    unresolved: bool,
    /// Interrupted intents already reported as unresolved (reported once, not every retry).
    announced: BTreeSet<String>,
    /// Raised when this actor journals an intent (see [`Actor::intent_flag`]).
    intent_flag: Arc<std::sync::atomic::AtomicBool>,
}

impl fmt::Debug for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Actor").field("mode", &self.mode).field("state_dir", &self.state_dir).finish_non_exhaustive()
    }
}

impl Actor {
    /// An actor for this configuration and broker. A replayed broker can only describe.
    #[must_use]
    pub fn new(config: &Config, broker: &Broker) -> Self {
        let ops: Option<Arc<dyn ActBroker>> = match broker {
            Broker::Alpaca(c) => Some(Arc::new(c.clone())),
            Broker::Replay(_) => None,
        };
        Self {
            broker: ops,
            mode: broker.mode(),
            state_dir: config.state_dir.clone(),
            bot_root: config.bot.root.clone(),
            poll: Timing::DEFAULT_POLL,
            hooks: Hooks::from_env(),
            unresolved: true,
            announced: BTreeSet::new(),
            intent_flag: Arc::default(),
        }
    }

    /// An actor over any `ActBroker` (tests, embedding).
    #[must_use]
    pub fn with_broker(config: &Config, broker: Arc<dyn ActBroker>) -> Self {
        let mode = broker.mode();
        Self {
            broker: Some(broker),
            mode,
            state_dir: config.state_dir.clone(),
            bot_root: config.bot.root.clone(),
            poll: Timing::DEFAULT_POLL,
            hooks: Hooks::from_env(),
            unresolved: true,
            announced: BTreeSet::new(),
            intent_flag: Arc::default(),
        }
    }

    /// Raised whenever this actor journals an intent; the daemon lowers it at each cycle's
    /// start, so a raised flag means the running cycle has acted and must not be abandoned
    /// before its outcome and notice.
    #[must_use]
    pub fn intent_flag(&self) -> Arc<std::sync::atomic::AtomicBool> {
        Arc::clone(&self.intent_flag)
    }

    /// Polls for confirmation this often (default 250 ms).
    #[must_use]
    pub fn with_poll_interval(mut self, poll: Duration) -> Self {
        self.poll = poll;
        self
    }

    /// Calls `f` right before `fix_state` writes (after its first unchanged-check): tests
    /// modify the file there.
    #[doc(hidden)]
    #[must_use]
    pub fn with_before_fix_write(mut self, f: Arc<dyn Fn() + Send + Sync>) -> Self {
        self.hooks.before_fix_write = Some(f);
        self
    }

    fn timing(&self, config: &Config) -> Timing {
        Timing { timeout: config.actions.confirm_timeout, poll: self.poll }
    }

    /// Whether interrupted intents are still unresolved.
    #[must_use]
    pub fn has_unresolved(&self) -> bool {
        self.unresolved
    }

    /// The live guard alone (the CLI checks it before reading anything): `Some(why)` when
    /// acting is refused on this account.
    #[must_use]
    pub fn live_refusal(&self, config: &Config) -> Option<&'static str> {
        match self.mode {
            Mode::Live if !config.actions.allow_live => Some(runner::LIVE_REFUSAL),
            Mode::Replay => Some("the broker is a replayed snapshot: there is nothing to act on"),
            _ => None,
        }
    }

    /// Resolves intents journaled without an outcome (a crash mid-action) by re-reading the
    /// broker; called once at start-up (and retried by `on_cycle` while any stays
    /// unresolved). The action is never repeated.
    pub async fn recover(&mut self, now: DateTime<Utc>) -> Vec<ActionReport> {
        let clock = Clockwork::new(now);
        let journal = Journal::new(&self.state_dir);
        let ledger = match journal.read() {
            Ok(l) => l,
            Err(e) => {
                return vec![recovery_problem(clock.at(), format!("cannot read {} ({e})", journal.path().display()))];
            }
        };
        if ledger.unresolved().is_empty() {
            self.unresolved = false;
            return Vec::new();
        }
        let Some(b) = self.broker.clone() else {
            self.unresolved = false;
            return vec![recovery_problem(
                clock.at(),
                "interrupted actions are in the journal, but the broker is a replay: resolve them against the live broker"
                    .into(),
            )];
        };
        let _lock = match ActionsLock::acquire(&self.state_dir, LOCK_WAIT).await {
            Ok(l) => l,
            Err(e) => return vec![recovery_problem(clock.at(), e)],
        };
        // Re-read under the lock: another process may have resolved some.
        let ledger = journal.read().unwrap_or(ledger);
        let mut out = Vec::new();
        let mut left = false;
        for intent in ledger.unresolved() {
            match recover::resolve(&*b, intent, &self.bot_root).await {
                Ok((what, after, severity)) => {
                    let reread = after.clone();
                    let detail = format!(
                        "interrupted at {} before its outcome was journaled; re-read: {what}",
                        intent.at.to_rfc3339()
                    );
                    let outcome = Outcome {
                        id: intent.id.clone(),
                        at: clock.at(),
                        action: intent.action.clone(),
                        result: Status::Recovered.as_str().into(),
                        detail: detail.clone(),
                        steps: Vec::new(),
                        broker_after: after,
                        diff: None,
                        exec: None,
                    };
                    let found = finding(
                        "action_interrupted",
                        severity,
                        &intent.action,
                        format!("{} was {detail}", intent.action),
                        json!({
                            "journal_id": intent.id,
                            "interrupted_at": intent.at,
                            "steps": intent.steps,
                            "reread": what,
                            "broker_after": reread,
                        }),
                    );
                    if let Err(e) = journal.append(&Record::Outcome(outcome)) {
                        // What the re-read showed is news now, even if it cannot be recorded
                        // (a full disk): reported once, and the recording retried next cycle.
                        left = true;
                        let first = self.announced.insert(intent.id.clone());
                        out.push(intent_report(
                            intent,
                            clock.at(),
                            Status::Skipped,
                            format!("{detail}; the recovery cannot be journaled ({e}), so it is retried next cycle"),
                            first.then_some(found),
                        ));
                        continue;
                    }
                    out.push(intent_report(intent, clock.at(), Status::Recovered, detail.clone(), Some(found)));
                }
                Err(e) => {
                    left = true;
                    let detail = format!(
                        "an interrupted {} (at {}) cannot be resolved yet: the re-read failed ({e}); retried next cycle",
                        intent.action,
                        intent.at.to_rfc3339()
                    );
                    // Unknown is never OK: the operator hears of it at once (it may have sent an
                    // order; what is true now is unknown), but once per intent, not every
                    // cycle the retry fails; the resolution is reported when it comes.
                    let first = self.announced.insert(intent.id.clone());
                    let found = first.then(|| {
                        finding(
                            "action_interrupted",
                            Severity::Critical,
                            &intent.action,
                            format!("{} was {detail}", intent.action),
                            json!({
                                "journal_id": intent.id,
                                "interrupted_at": intent.at,
                                "steps": intent.steps,
                                "reread": Value::Null,
                            }),
                        )
                    });
                    out.push(intent_report(intent, clock.at(), Status::Skipped, detail, found));
                }
            }
        }
        self.unresolved = left;
        out
    }

    /// The actions hook of a cycle: for every firing alert whose rule names actions, run them
    /// behind the gates (or describe them in observe mode). See the module doc for the order.
    pub async fn on_cycle(
        &mut self,
        config: &Config,
        alerts: &AlertBook,
        snapshot: &Snapshot,
        evaluated: &Evaluated,
        now: DateTime<Utc>,
    ) -> Vec<ActionReport> {
        let mut out = Vec::new();
        // In any mode: recovery only re-reads and journals what it found (the start-up does it
        // in observe mode too), and an interrupted action's resolution is owed to the operator.
        if self.unresolved {
            out.extend(self.recover(now).await);
        }
        let requests = requests(config, alerts, snapshot, evaluated);
        if requests.is_empty() {
            return out;
        }
        let clock = Clockwork::new(now);
        if config.actions.mode == ActionMode::Observe {
            for req in &requests {
                out.push(describe(config, req, snapshot, clock.at()));
            }
            return out;
        }
        let Some(b) = self.broker.clone() else {
            for req in &requests {
                out.push(skipped(req, clock.at(), "the broker is a replayed snapshot: there is nothing to act on"));
            }
            return out;
        };
        if self.live_refusal(config).is_some() {
            // Refused by the live guard before the journal or the broker is touched.
            let hooks = Hooks::default();
            let r = Runner {
                cfg: config,
                broker: &*b,
                journal: Journal::new(&self.state_dir),
                timing: self.timing(config),
                clock,
                hooks: &hooks,
            };
            for req in &requests {
                out.push(r.run(req, &mut Ledger::default(), None, None).await.0);
            }
            return out;
        }
        let _lock = match ActionsLock::acquire(&self.state_dir, LOCK_WAIT).await {
            Ok(l) => l,
            Err(e) => {
                for req in &requests {
                    out.push(skipped(req, clock.at(), &e));
                }
                return out;
            }
        };
        let journal = Journal::new(&self.state_dir).flagging(self.intent_flag());
        let mut ledger = match journal.read() {
            Ok(l) => l,
            Err(e) => {
                for req in &requests {
                    let msg = format!(
                        "{} not taken: the action journal {} cannot be read ({e}), so the budget and cooldown are unknown",
                        req.kind,
                        journal.path().display()
                    );
                    let mut r = skipped(req, clock.at(), &msg);
                    r.result = Status::Refused.as_str().into();
                    r.finding =
                        Some(finding("action_refused", Severity::Critical, &req.kind.to_string(), msg, json!({})));
                    out.push(r);
                }
                return out;
            }
        };
        let runner =
            Runner { cfg: config, broker: &*b, journal, timing: self.timing(config), clock, hooks: &self.hooks };
        let mut recheck = Recheck::new(snapshot, &config.rules);
        for req in &requests {
            let (rep, _) = runner.run(req, &mut ledger, Some(&mut recheck), None).await;
            out.push(rep);
        }
        out
    }

    fn manual_request(manual: &Manual) -> Request {
        let (kind, scope, key, subject) = match manual {
            Manual::Flatten { shorts_only, symbols } => {
                let kind = if *shorts_only { ActionKind::FlattenShorts } else { ActionKind::FlattenAll };
                let scope = if symbols.is_empty() {
                    Scope::All
                } else {
                    Scope::Symbols(symbols.iter().map(|s| s.trim().to_ascii_uppercase()).collect())
                };
                let subject = if symbols.is_empty() { "all".to_owned() } else { scope.describe().replace(", ", ",") };
                let key = format!("cli/{kind}:{subject}");
                (kind, scope, key, subject)
            }
            Manual::Fix => (ActionKind::FixState, Scope::All, "cli/fix_state".to_owned(), "bot state".to_owned()),
        };
        Request {
            kind,
            origin: Origin::Cli,
            triggers: vec![Trigger {
                fingerprint: key,
                rule: "cli".into(),
                subject,
                findings: Vec::new(),
                silenced_by: None,
                unknown: false,
                scope,
                order_ids: BTreeSet::new(),
            }],
        }
    }

    /// The CLI's first step: a fresh read and the plan (and diff) to show the operator.
    ///
    /// # Errors
    /// When there is no live broker, or the read fails or is refused (no plan on incomplete
    /// data).
    pub async fn preview(&self, config: &Config, manual: &Manual, now: DateTime<Utc>) -> Result<Preview, String> {
        let b = self.broker.clone().ok_or("the broker is a replayed snapshot: there is nothing to act on")?;
        let req = Self::manual_request(manual);
        let hooks = Hooks::default();
        let r = Runner {
            cfg: config,
            broker: &*b,
            journal: Journal::new(&self.state_dir),
            timing: self.timing(config),
            clock: Clockwork::new(now),
            hooks: &hooks,
        };
        r.prepare(&req.kind, &req.triggers).await.map(|prepared| Preview { prepared }).map_err(|s| match s {
            Stop::Skipped(why) | Stop::Refused(why, _) => why,
        })
    }

    /// The CLI's second step: act on what the operator approved, behind every gate but mode.
    /// Returns the report and whether there was simply nothing to do any more.
    pub async fn run_manual(
        &mut self,
        config: &Config,
        manual: &Manual,
        approved: &Preview,
        now: DateTime<Utc>,
    ) -> (ActionReport, bool) {
        let clock = Clockwork::new(now);
        let mut req = Self::manual_request(manual);
        // Act on what was shown: a flatten of every short becomes a flatten of the shorts shown.
        if let Manual::Flatten { shorts_only: true, .. } = manual {
            req.triggers[0].scope = Scope::Symbols(approved.plan().closed_symbols().into_iter().collect());
        }
        let Some(b) = self.broker.clone() else {
            return (skipped(&req, clock.at(), "the broker is a replayed snapshot: there is nothing to act on"), false);
        };
        let _lock = match ActionsLock::acquire(&self.state_dir, LOCK_WAIT).await {
            Ok(l) => l,
            Err(e) => return (skipped(&req, clock.at(), &e), false),
        };
        let journal = Journal::new(&self.state_dir);
        let mut ledger = match journal.read() {
            Ok(l) => l,
            Err(e) => {
                let mut r = skipped(&req, clock.at(), &format!("the action journal cannot be read ({e})"));
                r.result = Status::Refused.as_str().into();
                return (r, false);
            }
        };
        let runner =
            Runner { cfg: config, broker: &*b, journal, timing: self.timing(config), clock, hooks: &self.hooks };
        runner.run(&req, &mut ledger, None, Some(&approved.prepared)).await
    }
}

/// The report of one interrupted intent (recovered, or left for the next cycle).
fn intent_report(
    intent: &journal::Intent,
    at: DateTime<Utc>,
    result: Status,
    detail: String,
    finding: Option<crate::model::Finding>,
) -> ActionReport {
    ActionReport {
        at,
        action: intent.action.clone(),
        rule: intent.rules.join(","),
        subject: intent.subject.clone(),
        result: result.as_str().into(),
        detail,
        finding,
        diff: None,
        journal_id: Some(intent.id.clone()),
    }
}

fn recovery_problem(at: DateTime<Utc>, why: String) -> ActionReport {
    ActionReport {
        at,
        action: "recover".into(),
        rule: runner::RULE.into(),
        subject: "journal".into(),
        result: Status::Skipped.as_str().into(),
        detail: why,
        finding: None,
        diff: None,
        journal_id: None,
    }
}

fn skipped(req: &Request, at: DateTime<Utc>, why: &str) -> ActionReport {
    let rules: BTreeSet<&str> = req.triggers.iter().map(|t| t.rule.as_str()).collect();
    ActionReport {
        at,
        action: req.kind.to_string(),
        rule: rules.into_iter().collect::<Vec<_>>().join(","),
        subject: req.triggers.iter().map(|t| t.subject.as_str()).collect::<Vec<_>>().join(","),
        result: Status::Skipped.as_str().into(),
        detail: why.to_owned(),
        finding: None,
        diff: None,
        journal_id: None,
    }
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

fn order_ids(alert: &AlertState) -> BTreeSet<String> {
    alert
        .findings()
        .flat_map(|f| f.observed.get("order_ids").and_then(Value::as_array).cloned().unwrap_or_default())
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect()
}

/// One request per action named by firing alerts' rules, in the cycle's order. Silenced
/// alerts take no part (no action, no description: the report lists them as silenced).
fn requests(config: &Config, alerts: &AlertBook, snapshot: &Snapshot, evaluated: &Evaluated) -> Vec<Request> {
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
                scope: if *action == ActionKind::FlattenAll { Scope::All } else { scope_of(alert, snapshot) },
                order_ids: order_ids(alert),
            });
        }
    }
    by_kind.into_iter().map(|((_, kind), triggers)| Request { kind, origin: Origin::Daemon, triggers }).collect()
}

/// Observe mode: the exact steps, planned from this cycle's snapshot; nothing is sent.
fn describe(config: &Config, req: &Request, snapshot: &Snapshot, at: DateTime<Utc>) -> ActionReport {
    let live: Vec<Trigger> = req.triggers.iter().filter(|t| t.silenced_by.is_none()).cloned().collect();
    if live.is_empty() {
        let by: Vec<String> = req.triggers.iter().filter_map(|t| t.silenced_by.clone()).collect();
        return skipped(req, at, &format!("silenced by {}", by.join(", ")));
    }
    let mut scope = live[0].scope.clone();
    let mut ids = BTreeSet::new();
    for t in &live {
        scope.merge(t.scope.clone());
        ids.extend(t.order_ids.iter().cloned());
    }
    let b = &snapshot.broker;
    let unknown = |what: &str| format!("{what} is unknown this cycle, so no action would be taken");
    let mut diff = None;
    let planned: Result<Plan, String> = match &req.kind {
        ActionKind::FlattenShorts | ActionKind::FlattenAll => match (&b.positions, &b.orders) {
            (Ok(p), Ok(o)) => Ok(plan::flatten(p, o, &scope, req.kind == ActionKind::FlattenShorts)),
            _ => Err(unknown("the broker's positions or open orders")),
        },
        ActionKind::CancelHazardOrders => match &b.orders {
            Ok(o) => Ok(plan::cancel(o, &ids)),
            Err(_) => Err(unknown("the broker's open orders")),
        },
        ActionKind::SuspendTrading | ActionKind::EnforceNoShorting => {
            let g = if req.kind == ActionKind::SuspendTrading { Guard::SuspendTrade } else { Guard::NoShorting };
            match &b.configuration {
                Some(Ok(c)) => Ok(plan::configure(c, g)),
                _ => Err(unknown("the account configuration")),
            }
        }
        ActionKind::FixState => match &b.positions {
            Ok(p) => {
                let input = fix_state::FixInput {
                    bot: &config.bot,
                    root: &config.bot.root,
                    broker: p,
                    scope: &scope,
                    template: &config.actions.fix_state_template,
                    now: at,
                };
                fix_state::plan(&input).map(|f| {
                    if !f.is_empty() {
                        diff = Some(f.diff());
                    }
                    f.plan()
                })
            }
            Err(_) => Err(unknown("the broker's positions")),
        },
        ActionKind::Exec(name) => match config.actions.exec.get(name) {
            Some(e) => Ok(Plan {
                steps: vec![Step::Exec {
                    name: name.clone(),
                    argv: e.command.clone(),
                    timeout: humantime::format_duration(e.timeout).to_string(),
                }],
                notes: Vec::new(),
            }),
            None => Err(format!("no [actions.exec.{name}] table")),
        },
    };
    // Silenced alerts are left out without being named: a silence keeps them out of email.
    let detail = match planned {
        Ok(p) if p.is_empty() => format!("observe mode: nothing to do ({})", p.notes.join("; ")),
        Ok(p) => format!("observe mode, nothing sent: would {}", p.describe()),
        Err(why) => format!("observe mode: {why}"),
    };
    let mut r = skipped(&Request { kind: req.kind.clone(), origin: req.origin, triggers: live }, at, &detail);
    r.result = Status::Described.as_str().into();
    r.diff = diff;
    r
}

#[cfg(test)]
mod tests;
