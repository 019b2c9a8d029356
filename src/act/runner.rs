//! The gates and the act pipeline, shared by the daemon hook and the CLI. After the mode gate
//! (the caller's: observe describes, the CLI skips it), in this order:
//!
//! 1. **live guard**: a live account needs `allow_live = true` (refused, critical finding); a
//!    replayed snapshot cannot be acted on. Live is any signal saying live: the host or the key
//!    id (`AlpacaClient::mode`, checked first, before anything is read), and the account number
//!    (read once the action would otherwise go ahead, after the fresh re-read and plan, before
//!    the intent; a read that fails cannot confirm paper: no action, `skipped`);
//! 2. **silence**: alerts muted by a silence drop out;
//! 3. **daily budgets**: each action has its own (`[actions.budget]`), and the non-protective
//!    ones also share `max_per_day`, counted per UTC day from the journal. A protective action
//!    (`ActionKind::is_protective`) counts only its own, so no other action can starve it, and
//!    its refusal is a critical finding; any other refusal is a warning;
//! 4. **cooldown**: per fingerprint and action, at most one action per `cooldown`;
//! 5. **fresh re-read**: an alert whose rule was unknown this cycle drops out; the daemon
//!    re-reads the broker and re-evaluates the rules (the violation must still hold, and
//!    an unknown rule is no action); then the action re-reads what it needs and re-plans
//!    (a failed read is no action);
//! 6. **intent** journaled (fsynced; if it cannot be written, nothing is done);
//! 7. **the action**, then **confirmation** by re-polling until `confirm_timeout`;
//! 8. **outcome** journaled; a failed or unconfirmed action carries a critical finding.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::broker::ActBroker;
use super::confirm::Timing;
use super::fix_state::{self, FixPlan, Written};
use super::journal::{Intent, Journal, Ledger, Outcome, Record, Targets};
use super::plan::Plan;
use super::planner::{self, Blocked, Reads};
use super::request::{Request, Trigger, joined, known, merged, order_ids, unsilenced};
use super::{ActionReport, Executed, Hooks, Status, cancel, exec, flatten, guard};
use crate::config::{ActionKind, Config, Rule};
use crate::engine::Evaluated;
use crate::model::action::Input;
use crate::model::{Finding, Mode, Outcome as RuleOutcome, Severity, Snapshot};

/// The rule id (and check) of the findings actions report.
pub const RULE: &str = crate::model::Origin::Actions.id();

/// The result of the re-read before acting: the fresh plan and what it was made from.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The steps.
    pub plan: Plan,
    /// What was read (the intent's `broker_seen`).
    pub seen: Value,
    /// What recovery must re-read.
    pub targets: Targets,
    /// `fix_state`: the files.
    pub fix: Option<FixPlan>,
}

/// Why the pipeline stopped before acting.
#[derive(Debug, Clone)]
pub enum Stop {
    /// Nothing wrong, nothing done (silenced, cooldown, violation gone, nothing to do).
    Skipped(String),
    /// A gate said no.
    Refused(String, Option<Finding>),
}

/// The wall clock of a cycle: the injected `now` plus the time elapsed since.
#[derive(Debug, Clone, Copy)]
pub struct Clockwork {
    start: DateTime<Utc>,
    t0: std::time::Instant,
}

impl Clockwork {
    /// Starts at `now`.
    #[must_use]
    pub fn new(now: DateTime<Utc>) -> Self {
        Self { start: now, t0: std::time::Instant::now() }
    }

    /// Now.
    #[must_use]
    pub fn at(&self) -> DateTime<Utc> {
        self.start + chrono::Duration::from_std(self.t0.elapsed()).unwrap_or_default()
    }
}

/// The daemon's re-read: one fresh broker view per cycle, the rules evaluated on it.
pub struct Recheck<'s> {
    snapshot: &'s Snapshot,
    rules: &'s [Rule],
    fresh: Option<Evaluated>,
}

impl<'s> Recheck<'s> {
    /// Over this cycle's snapshot (its bot side is reused; the broker side is re-read).
    #[must_use]
    pub fn new(snapshot: &'s Snapshot, rules: &'s [Rule]) -> Self {
        Self { snapshot, rules, fresh: None }
    }

    /// Whether `t`'s violation still holds on the fresh read; if so, the orders the fresh
    /// findings name (the alert's ids may be stale: an order named then may have filled, and
    /// the duplicates or the excess are different now).
    async fn holds(&mut self, b: &dyn ActBroker, at: DateTime<Utc>, t: &Trigger) -> Result<BTreeSet<String>, String> {
        if self.fresh.is_none() {
            let view = b.view().await;
            let mut snap = Snapshot {
                taken_at: at,
                mode: self.snapshot.mode,
                broker: view,
                bot: self.snapshot.bot.clone(),
                logs: self.snapshot.logs.clone(),
            };
            // As the cycle's collection: a fill seconds ago settles on the re-read too.
            if let Some(after) = crate::collect::recent_orders_after(self.rules, &snap, at) {
                snap.broker.recent_orders = Some(b.closed_orders_since(after).await.map_err(|e| {
                    let mut se = e.to_source_error();
                    se.source = crate::collect::broker::alpaca::RECENT_ORDERS_SOURCE.to_owned();
                    se
                }));
            }
            self.fresh = Some(crate::engine::evaluate(self.rules, &snap, at));
        }
        let ev = self.fresh.as_ref().ok_or("no re-read")?;
        match ev.outcomes.iter().find(|o| o.id == t.rule) {
            Some(o) if o.outcome == RuleOutcome::Unknown => Err(format!(
                "{}: unknown on the re-read ({}); no action on incomplete data",
                t.fingerprint,
                o.reason.clone().unwrap_or_default()
            )),
            Some(_) if ev.findings.iter().any(|f| f.fingerprint() == t.fingerprint) => {
                Ok(order_ids(ev.findings.iter().filter(|f| f.fingerprint() == t.fingerprint)))
            }
            _ => Err(format!("{}: the violation is gone on the re-read", t.fingerprint)),
        }
    }
}

/// A finding of rule `actions`.
#[must_use]
pub fn finding(code: &str, severity: Severity, action: &str, message: String, observed: Value) -> Finding {
    Finding {
        rule: RULE.into(),
        check: RULE.into(),
        code: code.into(),
        severity,
        subject: action.into(),
        message,
        observed,
        expected: json!({}),
    }
}

/// Why the live guard refuses.
pub const LIVE_REFUSAL: &str = "the broker is a live account (real money) and [actions] allow_live is not true";

/// The live guard; `Some(refusal)` when acting is not allowed on this account (a live one
/// refuses the live-guarded actions of the action table without `allow_live`).
#[must_use]
pub fn live_guard(mode: Mode, allow_live: bool, kind: &ActionKind) -> Option<Stop> {
    match mode {
        Mode::Replay => Some(Stop::Skipped("the broker is a replayed snapshot: there is nothing to act on".into())),
        Mode::Live if !allow_live && kind.is_live_guarded() => {
            let action = &kind.to_string();
            let msg = format!("{action} refused: {LIVE_REFUSAL}");
            let f = finding("action_refused", Severity::Critical, action, msg.clone(), json!({ "mode": "live" }));
            Some(Stop::Refused(msg, Some(f)))
        }
        _ => None,
    }
}

/// The daily budgets (gate 3): the action's own, then, for a non-protective action, the
/// shared `max_per_day`. `Some(refusal)` when one is spent.
fn budget_gate(
    acfg: &crate::config::ActionsConfig,
    kind: &ActionKind,
    ledger: &Ledger,
    day: chrono::NaiveDate,
) -> Option<Stop> {
    let action = kind.to_string();
    let protective = kind.is_protective();
    let own = acfg.budget_of(kind);
    let spent_own = ledger.spent_where(day, |a| a == action);
    let source = if acfg.budget.contains_key(&action) {
        format!("[actions.budget] {action} = {own}")
    } else if protective {
        format!("the default budget of a protective action, {own}")
    } else {
        format!("max_per_day = {own}")
    };
    let (spent, limit, what) = if spent_own >= own {
        (spent_own, own, format!("its daily budget is spent ({spent_own} of {source} today, UTC)"))
    } else if !protective {
        let shared = ledger.spent_where(day, |a| !ActionKind::is_protective_name(a));
        if shared < acfg.max_per_day {
            return None;
        }
        (
            shared,
            acfg.max_per_day,
            format!(
                "the daily budget of non-protective actions is spent ({shared} of max_per_day = {} today, UTC)",
                acfg.max_per_day
            ),
        )
    } else {
        return None;
    };
    let msg = format!("{action} not taken: {what}");
    // A protective action refused leaves the account exposed: as loud as a failed one.
    let severity = if protective { Severity::Critical } else { Severity::Warning };
    let observed = json!({ "spent": spent, "budget": limit, "protective": protective });
    let f = finding("action_budget_exhausted", severity, &action, msg.clone(), observed);
    Some(Stop::Refused(msg, Some(f)))
}

/// A read that failed: no action on incomplete data.
fn unreadable(input: Input, why: &str) -> Stop {
    Stop::Skipped(format!("cannot re-read {} ({why}): no action on incomplete data", input.what()))
}

/// Everything one action run needs.
pub struct Runner<'a> {
    /// The configuration.
    pub cfg: &'a Config,
    /// The broker.
    pub broker: &'a dyn ActBroker,
    /// The journal.
    pub journal: Journal,
    /// Confirmation timing.
    pub timing: Timing,
    /// The clock.
    pub clock: Clockwork,
    /// Test hooks.
    pub hooks: &'a Hooks,
}

impl Runner<'_> {
    fn report(&self, req: &Request, triggers: &[Trigger], status: Status, detail: String) -> ActionReport {
        let t = if triggers.is_empty() { &req.triggers[..] } else { triggers };
        ActionReport::of(&req.kind, t, self.clock.at(), status, detail)
    }

    fn stopped(&self, req: &Request, triggers: &[Trigger], stop: Stop) -> ActionReport {
        match stop {
            Stop::Skipped(why) => self.report(req, triggers, Status::Skipped, why),
            Stop::Refused(why, f) => {
                let mut r = self.report(req, triggers, Status::Refused, why);
                r.finding = f;
                r
            }
        }
    }

    /// The live guard on what the account says: `Some(refusal)` unless it says paper.
    async fn account_guard(&self, action: &str) -> Option<Stop> {
        let why = match self.broker.account_mode().await {
            Ok(Mode::Paper) => return None,
            Ok(_) => "the account says it is live (its account number is not a paper `PA...` one)".to_owned(),
            // Not known to be paper: no action, like any other failed re-read (nothing was
            // done, so it is skipped rather than refused).
            Err(e) => {
                return Some(Stop::Skipped(format!(
                    "cannot re-read the account to confirm it is paper ({e}): no action on incomplete data"
                )));
            }
        };
        let msg = format!("{action} refused: {why}, and [actions] allow_live is not true");
        let f = finding("action_refused", Severity::Critical, action, msg.clone(), json!({ "mode": "live" }));
        Some(Stop::Refused(msg, Some(f)))
    }

    /// The fresh, action-specific re-read (the reads the action table says it needs, in
    /// order; the first that fails is no action), then the plan ([`planner::plan_for`]).
    pub async fn prepare(&self, kind: &ActionKind, triggers: &[Trigger]) -> Result<Prepared, Stop> {
        let (scope, ids) = merged(triggers);
        let now = self.clock.at();
        let reads = self.reread(kind, now).await?;
        let inputs = reads.inputs(scope, ids);
        let planned = planner::plan_for(kind, &inputs, self.cfg, self.clock.at()).map_err(|b| match b {
            Blocked::Unknown(input, why) => unreadable(input, &why),
            Blocked::Waiting(why) => Stop::Skipped(why),
            Blocked::NoExec(name) => Stop::Skipped(format!("no [actions.exec.{name}] table")),
            Blocked::Refused(e) => {
                let action = kind.to_string();
                let f =
                    finding("action_refused", Severity::Warning, &action, format!("{action} refused: {e}"), json!({}));
                Stop::Refused(format!("refused: {e}"), Some(f))
            }
        })?;
        let seen = planner::seen(kind, &inputs);
        Ok(Prepared { plan: planned.plan, seen, targets: planned.targets, fix: planned.fix })
    }

    /// The reads `kind` needs, from the broker (and the bot's files), in the table's order.
    async fn reread(&self, kind: &ActionKind, now: DateTime<Utc>) -> Result<Reads, Stop> {
        let b = self.broker;
        let mut reads = Reads::default();
        for input in kind.needs() {
            let failed = |e: &dyn std::fmt::Display| unreadable(*input, &e.to_string());
            match input {
                Input::Positions => reads.positions = Some(b.positions().await.map_err(|e| failed(&e))?),
                Input::OpenOrders => reads.open_orders = Some(b.open_orders().await.map_err(|e| failed(&e))?),
                Input::ClosedOrders => {
                    let since = planner::closed_since(self.cfg.actions.quiet_for, now);
                    reads.closed_orders = Some(b.closed_orders_since(since).await.map_err(|e| failed(&e))?);
                }
                Input::Configuration => reads.configuration = Some(b.configuration().await.map_err(|e| failed(&e))?),
                Input::BotFiles => {
                    reads.bot_files = Some(super::fix_state::read_bot_files(&self.cfg.bot, &self.cfg.bot.root));
                }
            }
        }
        Ok(reads)
    }

    /// Gates 1 to 8 (see the module doc) for one request. `recheck` is the daemon's
    /// re-evaluation; `expect` is what the operator approved (the CLI): a fresh plan that
    /// differs from it is refused.
    pub async fn run(
        &self,
        req: &Request,
        ledger: &mut Ledger,
        recheck: Option<&mut Recheck<'_>>,
        expect: Option<&Prepared>,
    ) -> (ActionReport, bool) {
        let action = req.kind.to_string();
        let acfg = &self.cfg.actions;
        let now = self.clock.at();
        // 1. live guard
        if let Some(stop) = live_guard(self.broker.mode(), acfg.allow_live, &req.kind) {
            return (self.stopped(req, &req.triggers, stop), false);
        }
        // 2. silence
        let mut triggers = match unsilenced(&req.triggers) {
            Ok(t) => t,
            Err(why) => return (self.stopped(req, &req.triggers, Stop::Skipped(why)), false),
        };
        // 3. budgets
        if let Some(stop) = budget_gate(acfg, &req.kind, ledger, now.date_naive()) {
            return (self.stopped(req, &triggers, stop), false);
        }
        // 4. cooldown
        let cooldown = chrono::Duration::from_std(acfg.cooldown).unwrap_or(chrono::Duration::MAX);
        let mut cooling = Vec::new();
        triggers.retain(|t| {
            let Some(last) = ledger.last_acted(&t.fingerprint, &action) else { return true };
            // An end beyond the calendar is "never again".
            let until = last.checked_add_signed(cooldown);
            if until.is_some_and(|u| now >= u) {
                return true;
            }
            let next = until.map_or_else(|| "never".to_owned(), |u| u.to_rfc3339());
            cooling.push(format!("{} (last at {}, next after {next})", t.fingerprint, last.to_rfc3339()));
            false
        });
        if triggers.is_empty() {
            return (
                self.stopped(req, &req.triggers, Stop::Skipped(format!("cooldown: {}", cooling.join("; ")))),
                false,
            );
        }
        // 5. re-read
        let (kept, mut gone) = known(triggers);
        triggers = kept;
        if let Some(r) = recheck {
            let mut kept = Vec::new();
            for mut t in triggers {
                match r.holds(self.broker, now, &t).await {
                    Ok(fresh_ids) => {
                        t.order_ids = fresh_ids;
                        kept.push(t);
                    }
                    Err(why) => gone.push(why),
                }
            }
            triggers = kept;
        }
        if triggers.is_empty() {
            return (self.stopped(req, &req.triggers, Stop::Skipped(gone.join("; "))), false);
        }
        let prepared = match self.prepare(&req.kind, &triggers).await {
            Ok(p) => p,
            Err(stop) => return (self.stopped(req, &triggers, stop), false),
        };
        if let Some(e) = expect
            && let Err(why) = same_as_approved(e, &prepared)
        {
            return (self.stopped(req, &triggers, Stop::Refused(why, None)), false);
        }
        if prepared.plan.is_empty() {
            let mut why = format!("nothing to do on the re-read ({})", prepared.plan.notes.join("; "));
            if !gone.is_empty() {
                why.push_str(&format!("; {}", gone.join("; ")));
            }
            return (self.stopped(req, &triggers, Stop::Skipped(why)), true);
        }
        // 1b. live guard, the account's side: only when the action would otherwise go ahead
        // (host and key said paper, every other gate passed, there is a plan), before the
        // intent and any write.
        if !acfg.allow_live
            && req.kind.is_live_guarded()
            && let Some(stop) = self.account_guard(&action).await
        {
            return (self.stopped(req, &triggers, stop), false);
        }
        // 6. intent
        let diff = prepared.fix.as_ref().map(FixPlan::diff);
        let intent = Intent {
            id: uuid::Uuid::new_v4().to_string(),
            at: self.clock.at(),
            action: action.clone(),
            origin: req.origin.as_str().into(),
            rules: triggers.iter().map(|t| t.rule.clone()).collect::<BTreeSet<_>>().into_iter().collect(),
            fingerprints: triggers.iter().map(|t| t.fingerprint.clone()).collect(),
            subject: joined(&triggers, |t| &t.subject),
            why: triggers
                .iter()
                .flat_map(|t| {
                    if t.findings.is_empty() {
                        vec![format!("{}: requested by the operator", t.fingerprint)]
                    } else {
                        t.findings.iter().map(|f| format!("{} ({}): {}", f.fingerprint(), f.code, f.message)).collect()
                    }
                })
                .collect(),
            steps: prepared.plan.step_texts(),
            targets: prepared.targets.clone(),
            broker_seen: prepared.seen.clone(),
            diff: diff.clone(),
        };
        if let Err(e) = self.journal.append(&Record::Intent(intent.clone())) {
            let msg = format!(
                "{action} not taken: the intent cannot be journaled in {} ({e})",
                self.journal.path().display()
            );
            let f = finding("action_refused", Severity::Critical, &action, msg.clone(), json!({}));
            return (self.stopped(req, &triggers, Stop::Refused(msg, Some(f))), false);
        }
        ledger.push(Record::Intent(intent.clone()));
        // 7. act and confirm
        let executed = self.execute(&req.kind, &triggers, &prepared).await;
        self.hooks.pause_after_write().await;
        // 8. outcome
        let outcome = Outcome {
            id: intent.id.clone(),
            at: self.clock.at(),
            action: action.clone(),
            result: executed.status.as_str().into(),
            detail: executed.detail.clone(),
            steps: executed.steps.clone(),
            broker_after: executed.after.clone(),
            diff: executed.diff.clone(),
            exec: executed.exec.clone(),
        };
        let mut detail = executed.detail.clone();
        match self.journal.append(&Record::Outcome(outcome.clone())) {
            Ok(()) => ledger.push(Record::Outcome(outcome)),
            Err(e) => detail
                .push_str(&format!(" (the outcome could not be journaled: {e}; it is resolved at the next start)")),
        }
        let mut report = self.report(req, &triggers, executed.status, detail);
        report.diff = executed.diff.or(diff);
        report.journal_id = Some(intent.id);
        // A journaled action that did not end well is a finding: (code, severity, verb, and
        // whether its subject is worth naming: a refusal touched nothing).
        let bad = match executed.status {
            Status::Failed => Some(("action_failed", Severity::Critical, "failed", true)),
            Status::Unconfirmed => Some(("action_unconfirmed", Severity::Critical, "was not confirmed", true)),
            Status::Refused => Some(("action_refused", Severity::Warning, "refused", false)),
            _ => None,
        };
        report.finding = bad.map(|(code, severity, verb, with_subject)| {
            let observed = if with_subject {
                json!({ "journal_id": report.journal_id, "subject": report.subject })
            } else {
                json!({ "journal_id": report.journal_id })
            };
            finding(code, severity, &action, format!("{action} {verb}: {}", report.detail), observed)
        });
        (report, false)
    }

    async fn execute(&self, kind: &ActionKind, triggers: &[Trigger], prepared: &Prepared) -> Executed {
        let b = self.broker;
        match kind {
            ActionKind::FlattenShorts => flatten::execute(b, &prepared.plan, true, self.timing).await,
            ActionKind::FlattenAll => flatten::execute(b, &prepared.plan, false, self.timing).await,
            ActionKind::CancelHazardOrders => cancel::execute(b, &prepared.plan, self.timing).await,
            ActionKind::SuspendTrading | ActionKind::EnforceNoShorting => {
                guard::execute(b, &prepared.plan, self.timing).await
            }
            ActionKind::FixState => {
                let Some(fix) = &prepared.fix else { return Executed::failed("no fix planned".into()) };
                let backups = self.cfg.state_dir.join("backups");
                let hook = || self.hooks.before_fix_write();
                let mut e = match fix_state::write(fix, &backups, self.cfg.actions.quiet_for, self.clock.at(), &hook) {
                    Written::Done(log) => match fix_state::confirm(fix) {
                        Ok(()) => Executed::from_parts(log, vec![], vec![], Value::Null),
                        Err(e) => Executed::from_parts(log, vec![], vec![e], Value::Null),
                    },
                    Written::Refused(why) => Executed {
                        status: Status::Refused,
                        detail: format!("nothing written: {why}"),
                        steps: vec![],
                        after: Value::Null,
                        diff: None,
                        exec: None,
                    },
                    Written::Failed(why) => Executed::failed(why),
                };
                if e.status == Status::Done {
                    e.diff = Some(fix.diff());
                }
                e
            }
            ActionKind::Exec(name) => self.exec(name, triggers).await,
        }
    }

    async fn exec(&self, name: &str, triggers: &[Trigger]) -> Executed {
        let Some(e) = self.cfg.actions.exec.get(name) else {
            return Executed::failed(format!("no [actions.exec.{name}] table"));
        };
        let mut findings: Vec<&Finding> = triggers.iter().flat_map(|t| &t.findings).collect();
        findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
        let first = findings.first();
        let trig = triggers.first();
        let env: Vec<(String, String)> = vec![
            ("TRADEWARDEN_ACTION".into(), format!("exec:{name}")),
            (
                "TRADEWARDEN_RULE".into(),
                first.map_or_else(|| trig.map(|t| t.rule.clone()).unwrap_or_default(), |f| f.rule.clone()),
            ),
            ("TRADEWARDEN_CODE".into(), first.map(|f| f.code.clone()).unwrap_or_default()),
            (
                "TRADEWARDEN_SUBJECT".into(),
                first.map_or_else(|| trig.map(|t| t.subject.clone()).unwrap_or_default(), |f| f.subject.clone()),
            ),
            ("TRADEWARDEN_SEVERITY".into(), first.map(|f| f.severity.as_str().to_owned()).unwrap_or_default()),
            ("TRADEWARDEN_FINGERPRINT".into(), joined(triggers, |t| &t.fingerprint)),
            ("TRADEWARDEN_MODE".into(), self.broker.mode().as_str().into()),
        ];
        let stdin = json!({
            "action": format!("exec:{name}"),
            "at": self.clock.at(),
            "mode": self.broker.mode(),
            "findings": findings,
        });
        let stdin = serde_json::to_vec_pretty(&stdin).unwrap_or_default();
        let env = exec::child_env(std::env::vars_os(), &env, &exec::hidden_env(&self.cfg.alerts));
        match exec::run(&e.command, e.timeout, &self.cfg.dir, env, stdin).await {
            Err(why) => Executed::failed(why),
            Ok(run) => {
                let status_text = run.status_text(e.timeout);
                let mut out = if run.succeeded() {
                    Executed::from_parts(
                        vec![format!("ran {:?}: {status_text}", e.command)],
                        vec![],
                        vec![],
                        Value::Null,
                    )
                } else {
                    Executed::from_parts(vec![], vec![format!("{:?}: {status_text}", e.command)], vec![], Value::Null)
                };
                out.exec = serde_json::to_value(&run).ok();
                out
            }
        }
    }
}

/// The operator approved a plan; the fresh one must be the same.
fn same_as_approved(approved: &Prepared, fresh: &Prepared) -> Result<(), String> {
    match (&approved.fix, &fresh.fix) {
        (Some(a), Some(f)) => {
            let key = |p: &FixPlan| -> Vec<(String, String, String)> {
                p.files.iter().map(|f| (f.rel.clone(), f.stamp.sha256.clone(), f.after.clone())).collect()
            };
            if key(a) == key(f) {
                Ok(())
            } else {
                Err("refused: the bot's files or the broker changed since the diff was shown; nothing written \
                     (run `tradewarden fix` again to see the new diff)"
                    .into())
            }
        }
        _ => {
            let extra: Vec<String> = fresh
                .plan
                .closed_symbols()
                .into_iter()
                .filter(|s| !approved.plan.closed_symbols().contains(s))
                .collect();
            if extra.is_empty() {
                Ok(())
            } else {
                Err(format!(
                    "refused: the fresh read would also close {}, which was not in the plan shown; nothing sent",
                    extra.join(", ")
                ))
            }
        }
    }
}
