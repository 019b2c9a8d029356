//! `Actor`: runs the actions of firing alerts in a daemon cycle (or describes them in observe
//! mode), the operator's `flatten` and `fix`, and the start-up recovery of interrupted ones.

use std::collections::BTreeSet;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::broker::ActBroker;
use super::confirm::Timing;
use super::hooks::Hooks;
use super::journal::ActionsLock;
use super::journal::{self, Journal, Ledger, Outcome, Record};
use super::manual::{Manual, Preview};
use super::observe::describe;
use super::plan::Scope;
use super::recover;
use super::request::{Request, requests};
use super::runner::{self, Clockwork, Recheck, Runner, Stop, finding};
use super::{ActionReport, Status};
use crate::alert::AlertBook;
use crate::collect::broker::Broker;
use crate::config::{ActionMode, Config};
use crate::engine::Evaluated;
use crate::model::{Mode, Severity, Snapshot};

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
    pub(super) unresolved: bool,
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
        Self::build(config, ops, broker.mode())
    }

    /// An actor over any `ActBroker` (tests, embedding).
    #[must_use]
    pub fn with_broker(config: &Config, broker: Arc<dyn ActBroker>) -> Self {
        let mode = broker.mode();
        Self::build(config, Some(broker), mode)
    }

    fn build(config: &Config, broker: Option<Arc<dyn ActBroker>>, mode: Mode) -> Self {
        Self {
            broker,
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

    /// The CLI's first step: a fresh read and the plan (and diff) to show the operator.
    ///
    /// # Errors
    /// When there is no live broker, or the read fails or is refused (no plan on incomplete
    /// data).
    pub async fn preview(&self, config: &Config, manual: &Manual, now: DateTime<Utc>) -> Result<Preview, String> {
        let b = self.broker.clone().ok_or("the broker is a replayed snapshot: there is nothing to act on")?;
        let req = manual.request();
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
        let mut req = manual.request();
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

/// A request not taken, for a reason before any gate (no broker, the lock, the journal).
fn skipped(req: &Request, at: DateTime<Utc>, why: &str) -> ActionReport {
    ActionReport::of(&req.kind, &req.triggers, at, Status::Skipped, why.to_owned())
}
