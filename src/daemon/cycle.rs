//! One daemon cycle, in this order (see the module doc of `daemon` for why):
//! collect → evaluate → silences → lifecycle step → mark silenced findings → actions hook →
//! render and enqueue the email → save `alerts.json` → append the transitions to
//! `alert_events.jsonl` → flush the outbox → append to `audits.jsonl` → write
//! `last_report.json` → update the status view → heartbeat (its `/start` ping goes out
//! alongside the collection).
//!
//! Nothing in a cycle is fatal: a collection that cannot start is a failed cycle (logged,
//! counted, alerts held as they were), a state file that cannot be written is a problem in the
//! record and the log, and email failures stay in the outbox for the next flush.

use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};

use super::heartbeat::Heartbeat;
use super::journal;
use super::schedule::Cycles;
use super::status::{self, CycleUpdate, Tally};
use crate::act::{ActionReport, Actor};
use crate::alert::{AlertBook, AlertState, Notification, NotifyReason, Phase, Silence, SilenceBook, step};
use crate::clock::Clock;
use crate::collect::broker::Broker;
use crate::config::Config;
use crate::model::{Finding, Outcome, Snapshot};
use crate::notify::{ActionNote, FlushReport, Mailer, MessageContext, Outbox, render};
use crate::report::{
    ActionLine, AlertCounts, CycleRecord, EmailStatus, NotificationCounts, OutcomeCounts, Report, Summary,
};
use crate::server::Shared;
use crate::state::write_atomic;

/// The last full JSON report, inside the state directory.
pub const LAST_REPORT: &str = "last_report.json";

/// The daemon's state between cycles.
pub struct Daemon {
    /// The configuration.
    pub cfg: Config,
    /// The broker.
    pub broker: Broker,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// The email transport.
    pub mailer: Mailer,
    /// The outbox.
    pub outbox: Outbox,
    /// The actions hook.
    pub actor: Actor,
    /// The alert book (as last saved, or as loaded at start).
    pub book: AlertBook,
    /// What the status server shows.
    pub shared: Arc<Shared>,
    /// The dead-man switch, when configured.
    pub heartbeat: Option<Heartbeat>,
    /// This machine's name, for emails.
    pub host: String,
    /// Actions so far.
    pub tally: Tally,
    /// Problems found outside a cycle (start-up), reported with the next cycle.
    pub carry: Vec<String>,
    /// Actions resolved outside a cycle (start-up recovery of interrupted actions): reported,
    /// and emailed, with the next cycle that completes its audit, like the cycle's own.
    pub carry_actions: Vec<ActionReport>,
    /// The `audits.jsonl` cap.
    pub audits_cap: u64,
    /// When the transport last accepted a message (this process): with the outbox's oldest
    /// failing message, whether email is undeliverable (`[alerts] undeliverable_after`).
    pub last_delivery: Option<DateTime<Utc>>,
}

impl Cycles for Daemon {
    async fn run_cycle(&mut self, start: DateTime<Utc>) {
        self.cycle(start).await;
    }

    fn intent_flag(&self) -> Option<std::sync::Arc<std::sync::atomic::AtomicBool>> {
        Some(self.actor.intent_flag())
    }
}

/// What the audit part of a cycle produced.
struct Audited {
    report: Report,
    silences: Vec<Silence>,
    /// Why the watchdog did not see what it watches ([`blind_reason`]); `None` when it did.
    /// Only a sighted cycle beats the heartbeat, and `blind_after` of these is `/healthz` 503.
    blind: Option<String>,
    /// State files this part of the cycle could not write (the outbox, `alerts.json`).
    write_errors: Vec<String>,
}

/// Why a cycle is blind, or `None`. A watchdog that cannot read the account, the positions or
/// the open orders is not watching, even when the clock and the configurations answer (a proxy
/// that caches `/v2/clock` must not make it look healthy); nor is one that cannot read anything
/// of the bot (its positions, metadata and every log all failed), even with the broker in view.
#[must_use]
pub fn blind_reason(snap: &Snapshot) -> Option<String> {
    let b = &snap.broker;
    let broker: Vec<String> = [&b.account.as_ref().err(), &b.positions.as_ref().err(), &b.orders.as_ref().err()]
        .into_iter()
        .flatten()
        .map(|e| format!("{}: {}", e.source, e.message))
        .collect();
    if !broker.is_empty() {
        return Some(broker.join("; "));
    }
    let bot = &snap.bot;
    let metadata_failed = bot.metadata.as_ref().is_none_or(Result::is_err);
    let logs_failed = snap.logs.values().all(Result::is_err);
    if let Err(e) = &bot.positions
        && metadata_failed
        && logs_failed
    {
        return Some(format!("every bot source failed; {}: {}", e.source, e.message));
    }
    None
}

impl Daemon {
    /// Runs one cycle; its record (also appended to `audits.jsonl`).
    pub async fn cycle(&mut self, start: DateTime<Utc>) -> CycleRecord {
        let timer = Instant::now();
        let mut rec = CycleRecord { at: start, problems: std::mem::take(&mut self.carry), ..CycleRecord::default() };
        // `URL/start` goes out alongside the audit, not before it, so a slow switch never
        // delays the collection (and the cycle by at most the heartbeat timeout); joined, so it
        // has been answered or timed out before the cycle's success or `/fail` ping, and each
        // cycle's pings arrive in order.
        let heartbeat = self.heartbeat.clone();
        let start_ping = async {
            if let Some(hb) = &heartbeat {
                hb.start().await;
            }
        };
        let (audited, ()) = tokio::join!(self.audit(start, &mut rec), start_ping);
        if audited.is_none() {
            // Nothing was stepped: the alerts hold as they were.
            rec.alerts = alert_counts(&self.book);
        }

        let flushed_at = self.clock.now();
        let flush = self.outbox.flush(&self.mailer, flushed_at).await;
        email_status(&mut rec.email, &flush);
        rec.problems.extend(flush.problems.iter().cloned());
        if !flush.delivered.is_empty() {
            self.last_delivery = Some(flushed_at);
        }
        let undeliverable = undeliverable_since(
            flush.failing_since,
            self.last_delivery,
            flushed_at,
            self.cfg.alerts.undeliverable_after,
        );
        if let Some(since) = undeliverable {
            rec.problems.push(format!(
                "no email has been delivered since {} (longer than [alerts] undeliverable_after = {}): \
                 the heartbeat reports failure until one is",
                since.to_rfc3339(),
                crate::config::duration::format(self.cfg.alerts.undeliverable_after)
            ));
        }

        rec.duration_ms = u64::try_from(timer.elapsed().as_millis()).unwrap_or(u64::MAX);
        let mut report = audited.as_ref().map(|a| a.report.clone());
        if let Some(r) = &mut report {
            r.cycle = Some(rec.clone());
        }
        let mut write_errors = audited.as_ref().map(|a| a.write_errors.clone()).unwrap_or_default();
        write_errors.extend(self.write_files(&mut rec, report.as_ref()));
        log_cycle(&rec);
        self.say_state_dir(&write_errors);

        let blind = match &audited {
            None => Some(format!("the cycle could not collect: {}", rec.error.as_deref().unwrap_or("unknown error"))),
            Some(a) => a.blind.clone(),
        };
        let sighted = blind.is_none();
        let finished = self.clock.now();
        let update = CycleUpdate {
            record: &rec,
            report: report.as_ref(),
            book: &self.book,
            silences: audited.as_ref().map(|a| a.silences.as_slice()),
            tally: &self.tally,
            broker: status::broker_counts(&self.broker),
            finished,
            interval: status::health_interval(
                &self.cfg.schedule,
                finished,
                std::time::Duration::from_millis(rec.duration_ms),
            ),
            blind,
            state_dir: &self.cfg.state_dir,
            write_errors: &write_errors,
        };
        self.shared.update(|v| status::apply(v, update));

        // A blind cycle sends no heartbeat: the dead-man switch is for "the watchdog is not
        // watching" (see `blind_reason`).
        let blind = !sighted;
        // Nor a healthy one while every notice has failed for too long: a watchdog no one can
        // hear is not watching for anyone, so the switch is told (`/fail`) instead.
        if rec.ok
            && !blind
            && let Some(hb) = &self.heartbeat
        {
            if undeliverable.is_some() {
                hb.fail().await;
            } else {
                hb.beat().await;
            }
        }
        rec
    }

    /// Collect, evaluate, lifecycle, actions, email: `None` when collection could not start.
    async fn audit(&mut self, start: DateTime<Utc>, rec: &mut CycleRecord) -> Option<Audited> {
        let snap = match crate::collect::collect(&self.cfg, &self.broker, &*self.clock).await {
            Ok(s) => s,
            Err(e) => {
                rec.error = Some(e.to_string());
                return None;
            }
        };
        rec.ok = true;
        rec.mode = Some(snap.mode);
        rec.failed_sources = snap.source_errors().into_iter().map(|e| e.source.clone()).collect();
        let evaluated = crate::engine::evaluate(&self.cfg.rules, &snap, snap.taken_at);
        let loaded = SilenceBook::load(&self.cfg.state_dir, start);
        if let Some(p) = loaded.problem {
            tracing::warn!(problem = %p, "Silences file unusable.");
            rec.problems.push(p);
        }
        let silences = loaded.value.active(start);
        let (book, mut notes) = step(&self.book, &self.cfg.rules, &evaluated, &silences, &self.cfg.alerts, start);
        let mut report = Report::build(&snap, &evaluated);
        rec.rules = outcome_counts(&report);

        // The actions hook runs before the email is rendered, so the email carries what was
        // done or proposed. It sees only firing, unsilenced alerts (`AlertBook::actionable`).
        let fresh = self.actor.on_cycle(&self.cfg, &book, &snap, &evaluated, start).await;
        self.tally.add(&fresh);
        // Start-up recovery first (already in the tally): an interrupted action is news the
        // operator hears like any other action, in the first cycle that can report it.
        let mut actions = std::mem::take(&mut self.carry_actions);
        actions.extend(fresh);
        rec.actions = actions.iter().map(ActionLine::from).collect();
        // Findings the hook reports (a refusal, a failed or unconfirmed action) join this
        // cycle's report, and its email as one-shot notices: they describe an event, so they
        // have no lifecycle (nothing "resolves" because no action was tried next cycle).
        report.add_findings(actions.iter().filter_map(|a| a.finding.clone()));
        report.mark_silenced(&book, &silences);
        rec.summary = report.summary;
        let one_shots: Vec<Notification> = actions
            .iter()
            .filter_map(|a| a.finding.as_ref())
            .filter(|f| !report.is_silenced(f))
            .map(|f| one_shot(f, start))
            .collect();
        notes.extend(one_shots);

        // Enqueue before saving the book that records the notices as sent: a crash in between
        // re-sends (the same alert, a new message) rather than losing a notice. A message whose
        // file cannot be written (a full or read-only state directory) is held by the outbox
        // in memory, sent from there and written when possible: the notices (and the actions'
        // one-shot notices, which no later cycle would owe again) are never dropped. While any
        // message is held in memory only, the book is not saved either, so a crash then makes
        // the restart owe those notices again rather than lose them.
        let mut write_errors = Vec::new();
        let before = rec.problems.len();
        let firing = book.alerts.values().filter(|a| a.state == Phase::Firing).count();
        rec.email.queued = self.enqueue(&notes, &actions, &snap, firing, start, &mut rec.problems);
        write_errors.extend(rec.problems[before..].iter().cloned());
        if self.outbox.held_count() == 0 {
            if let Err(e) = book.save(&self.cfg.state_dir) {
                tracing::error!(error = %e, "Cannot save the alert state.");
                write_errors.push(e.to_string());
                rec.problems.push(e.to_string());
            }
        } else {
            let p = format!(
                "{} not saved: {} email(s) are held in memory only (the state directory cannot be written); \
                 a restart now would re-send their notices",
                self.cfg.state_dir.join(AlertBook::FILE).display(),
                self.outbox.held_count()
            );
            tracing::error!(problem = %p, "Alert state not saved.");
            write_errors.push(p.clone());
            rec.problems.push(p);
        }
        // The transitions go to the history log whether or not the book was saved: they
        // happened (the book is adopted in memory either way).
        let events = crate::alert::event::transitions(&self.book, &book, start);
        if let Err(e) = crate::alert::event::append(&self.cfg.state_dir, &events, crate::alert::event::CAP) {
            let p = format!("cannot append to `{}`: {e}", self.cfg.state_dir.join(crate::alert::event::FILE).display());
            tracing::error!(problem = %p, "Alert history not written.");
            write_errors.push(p.clone());
            rec.problems.push(p);
        }
        self.book = book;
        rec.notifications = notification_counts(&notes);
        rec.alerts = alert_counts(&self.book);
        Some(Audited { report, silences, blind: blind_reason(&snap), write_errors })
    }

    /// Renders the notifications into one message and queues it (held in memory when its file
    /// cannot be written, with a problem saying so); its Message-ID.
    fn enqueue(
        &self,
        notes: &[Notification],
        actions: &[ActionReport],
        snap: &crate::model::Snapshot,
        firing_total: usize,
        now: DateTime<Utc>,
        problems: &mut Vec<String>,
    ) -> Option<String> {
        let notes_for_actions: Vec<ActionNote> = actions.iter().map(action_note).collect();
        let ctx = MessageContext {
            host: &self.host,
            config_path: &self.cfg.path,
            status_url: self.cfg.server.external_url.as_deref(),
            firing_total: Some(firing_total),
            mode: Some(snap.mode),
            now,
        };
        let rendered = render(notes, &notes_for_actions, &ctx)?;
        let (msg, unwritten) = self.outbox.queue_or_hold(&self.mailer, &rendered, now);
        match unwritten {
            None => tracing::info!(message_id = %msg.message_id, subject = %msg.subject, "Email queued."),
            Some(e) => {
                let p = format!(
                    "cannot write the email `{}` ({}) to the outbox: {e}; it is held in memory, sent from there \
                     and written when the state directory can be written again",
                    msg.subject, msg.message_id
                );
                tracing::error!(problem = %p, "Email held in memory.");
                problems.push(p);
            }
        }
        Some(msg.message_id)
    }

    /// Appends the record to `audits.jsonl` and writes `last_report.json`; what failed.
    fn write_files(&self, rec: &mut CycleRecord, report: Option<&Report>) -> Vec<String> {
        let dir = &self.cfg.state_dir;
        let mut failed = Vec::new();
        if let Err(e) = journal::append(dir, rec, self.audits_cap) {
            let p = format!("cannot append to `{}`: {e}", dir.join(journal::FILE).display());
            tracing::error!(problem = %p, "Audit history not written.");
            failed.push(p.clone());
            rec.problems.push(p);
        }
        if let Some(r) = report
            && let Err(e) = write_atomic(&dir.join(LAST_REPORT), (r.to_json() + "\n").as_bytes())
        {
            tracing::error!(error = %e, "Cannot write the last report.");
            failed.push(e.to_string());
            rec.problems.push(e.to_string());
        }
        failed
    }

    /// Says loudly that the state directory refuses writes: one ERROR line on stderr for every
    /// cycle while it lasts, and one line when a cycle writes everything again. (The view, so
    /// `/healthz` and `/metrics`, gets the same facts from `status::apply`.)
    fn say_state_dir(&self, write_errors: &[String]) {
        let before = self.shared.view.read().unwrap_or_else(std::sync::PoisonError::into_inner).state_dir.clone();
        let dir = self.cfg.state_dir.display();
        match (before, write_errors.is_empty()) {
            (before, false) => {
                let cycles = before.map_or(0, |p| p.cycles).saturating_add(1);
                tracing::error!(
                    state_dir = %dir,
                    cycles,
                    errors = %write_errors.join("; "),
                    "STATE DIRECTORY NOT WRITABLE: this cycle's state files were not saved; /healthz answers 503 until they are."
                );
            }
            (Some(p), true) => {
                tracing::warn!(
                    state_dir = %dir,
                    after_cycles = p.cycles,
                    "State directory writable again: this cycle saved its state files."
                );
            }
            (None, true) => {}
        }
    }

    /// Saves the alert book (at exit).
    ///
    /// # Errors
    /// When it cannot be written.
    pub fn persist(&self) -> Result<(), String> {
        // Same rule as in a cycle: while an email is held in memory only, the book on disk
        // keeps owing its notices (the restart re-sends them rather than losing them).
        let held = self.outbox.held_count();
        if held > 0 {
            return Err(format!(
                "{held} email(s) could not be written to the outbox and are lost with this process; the alert \
                 state is left as last saved, so the next start owes their alerts' notices again"
            ));
        }
        self.book.save(&self.cfg.state_dir).map_err(|e| e.to_string())
    }
}

/// Since when email is undeliverable, when that has lasted at least `after`: a message owed
/// has failed since `failing_since` and nothing was delivered within `after` either.
fn undeliverable_since(
    failing_since: Option<DateTime<Utc>>,
    last_delivery: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    after: std::time::Duration,
) -> Option<DateTime<Utc>> {
    let after = chrono::Duration::from_std(after).unwrap_or(chrono::Duration::MAX);
    let since = failing_since?;
    let long = |t: DateTime<Utc>| now.signed_duration_since(t) >= after;
    (long(since) && last_delivery.is_none_or(long)).then_some(since)
}

/// A finding from the actions hook as a notice of its own (never stored in the alert book).
fn one_shot(f: &Finding, now: DateTime<Utc>) -> Notification {
    Notification {
        reason: NotifyReason::Firing,
        alert: AlertState {
            fingerprint: f.fingerprint(),
            rule: f.rule.clone(),
            subject: f.subject.clone(),
            severity: f.severity,
            state: Phase::Firing,
            active_since: now,
            fired_at: Some(now),
            resolved_at: None,
            last_seen_at: now,
            last_notified_at: Some(now),
            repeat_from: None,
            consecutive_cycles: 1,
            last_finding: f.clone(),
            other_findings: Vec::new(),
            unknown: false,
            silenced: false,
            silenced_by: None,
        },
    }
}

fn action_note(a: &ActionReport) -> ActionNote {
    ActionNote {
        fingerprint: Some(format!("{}/{}", a.rule, a.subject)),
        description: format!("{} ({}): {}", a.action, a.result, a.detail),
        taken: a.result == "done",
        detail: a.diff.clone(),
        done: a.done_word().map(str::to_owned),
    }
}

fn outcome_counts(r: &Report) -> OutcomeCounts {
    let mut c = OutcomeCounts::default();
    for o in &r.rules {
        match o.outcome {
            Outcome::Ok => c.ok += 1,
            Outcome::Violated => c.violated += 1,
            Outcome::Unknown => c.unknown += 1,
            Outcome::Skipped => c.skipped += 1,
        }
    }
    c
}

fn alert_counts(book: &AlertBook) -> AlertCounts {
    AlertCounts {
        pending: book.in_phase(Phase::Pending).count(),
        firing: book.in_phase(Phase::Firing).count(),
        resolved: book.in_phase(Phase::Resolved).count(),
        silenced: book.alerts.values().filter(|a| a.silenced).count(),
    }
}

fn notification_counts(notes: &[Notification]) -> NotificationCounts {
    let n = |r: NotifyReason| notes.iter().filter(|x| x.reason == r).count();
    NotificationCounts {
        firing: n(NotifyReason::Firing),
        repeat: n(NotifyReason::Repeat),
        resolved: n(NotifyReason::Resolved),
    }
}

fn email_status(e: &mut EmailStatus, flush: &FlushReport) {
    e.delivered = flush.delivered.len();
    e.failed = flush.failed.len();
    e.outbox = flush.queued;
    e.errors = flush.failed.iter().map(|f| format!("{}: {}", f.subject, f.error.message)).collect();
}

fn log_cycle(rec: &CycleRecord) {
    let Summary { critical, warning, info, .. } = rec.summary;
    if rec.ok {
        tracing::info!(
            duration_ms = rec.duration_ms,
            critical,
            warning,
            info,
            rules_violated = rec.rules.violated,
            rules_unknown = rec.rules.unknown,
            firing = rec.alerts.firing,
            pending = rec.alerts.pending,
            silenced = rec.alerts.silenced,
            notified = rec.notifications.firing + rec.notifications.repeat + rec.notifications.resolved,
            emails_delivered = rec.email.delivered,
            emails_failed = rec.email.failed,
            outbox = rec.email.outbox,
            actions = rec.actions.len(),
            "Cycle done."
        );
    } else {
        tracing::error!(
            duration_ms = rec.duration_ms,
            error = rec.error.as_deref().unwrap_or("unknown"),
            outbox = rec.email.outbox,
            "Cycle failed: the audit could not run; alerts hold their state."
        );
    }
    for p in &rec.problems {
        tracing::warn!(problem = %p, "Cycle problem.");
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::RwLock;
    use std::time::Duration;

    use chrono::TimeZone;

    use super::*;
    use crate::alert::NewSilence;
    use crate::clock::ManualClock;
    use crate::server::StatusView;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 20, 15, 0, 0).unwrap()
    }

    /// Review 2 (issue 12): with account, positions and orders failing while `/v2/clock`
    /// answered, `/healthz` said 200 and `tradewarden_blind` was 0; so with every bot source
    /// unreadable. Each of the three rule reads failing alone is blind; the clock or the
    /// configurations failing alone are not; the bot is blind only when nothing of it was read.
    #[test]
    fn blind_is_any_rule_read_failing_or_every_bot_source_failing() {
        use crate::checks::testkit::SnapshotBuilder as S;
        assert_eq!(blind_reason(&S::new().build()), None);
        assert_eq!(blind_reason(&S::new().broker_clock_unavailable().configuration_unavailable().build()), None);
        for (name, snap) in [
            ("account", S::new().broker_account_unavailable().build()),
            ("positions", S::new().broker_positions_unavailable().build()),
            ("orders", S::new().broker_orders_unavailable().build()),
        ] {
            let why = blind_reason(&snap).unwrap_or_else(|| panic!("{name} failing is blind"));
            assert!(why.contains(&format!("broker:{name}")), "{name}: {why}");
        }
        let two = blind_reason(&S::new().broker_account_unavailable().broker_orders_unavailable().build()).unwrap();
        assert!(two.contains("broker:account") && two.contains("broker:orders"), "{two}");
        // The bot: positions unreadable but a log read is not blind; nothing read is.
        let log_ok = crate::checks::testkit::log_summary(Some(5), vec![]);
        assert_eq!(blind_reason(&S::new().bot_positions_malformed().log("run", log_ok).build()), None);
        let why = blind_reason(&S::new().bot_positions_malformed().log_unavailable("run").build()).unwrap();
        assert!(why.starts_with("every bot source failed"), "{why}");
        assert!(blind_reason(&S::new().bot_positions_malformed().build()).is_some(), "no log, no metadata");
        assert_eq!(
            blind_reason(&S::new().bot_positions_malformed().metadata("AAPL", serde_json::json!({})).build()),
            None,
            "metadata was read"
        );
    }

    /// A replay of the phantom-exit snapshot with one rule (`no-shorts`, flatten_shorts) and
    /// `.eml` files for email.
    fn config(dir: &Path, snapshot: &Path) -> Config {
        std::fs::write(
            dir.join("rules.toml"),
            "[[rule]]\nid = \"no-shorts\"\ncheck = \"no_short_positions\"\nseverity = \"critical\"\nactions = [\"flatten_shorts\"]\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("tradewarden.toml"),
            format!(
                "state_dir = \"state\"\nrules = [\"rules.toml\"]\n[broker]\nkind = \"replay\"\ndir = {:?}\n\
                 [bot]\nroot = \"bot\"\n[bot.positions]\nfile = \"state/executor_state.json\"\nat = \"/opens\"\n\
                 [schedule]\nevery = \"30s\"\n[alerts]\nrepeat = \"1h\"\n[server]\nlisten = \"\"\n",
                snapshot.to_str().unwrap()
            ),
        )
        .unwrap();
        Config::load(&dir.join("tradewarden.toml")).unwrap()
    }

    fn phantom_exit() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/stock-bot/snapshots/phantom-exit")
    }

    fn daemon(cfg: Config, clock: Arc<ManualClock>) -> Daemon {
        let broker = crate::collect::broker::Broker::for_config(&cfg, None).unwrap();
        let mailer = Mailer::from_config(&cfg.alerts.email, Duration::from_secs(5)).unwrap();
        let view = StatusView::new(clock.now(), "host".into(), "cfg".into(), Duration::from_secs(30));
        let shared = Arc::new(Shared { view: RwLock::new(view), clock: clock.clone() });
        let book = AlertBook::load(&cfg.state_dir, clock.now()).value;
        Daemon {
            actor: Actor::new(&cfg, &broker),
            outbox: Outbox::new(&cfg.state_dir),
            cfg,
            broker,
            clock,
            mailer,
            book,
            shared,
            heartbeat: None,
            host: "host".into(),
            tally: Tally::default(),
            carry: Vec::new(),
            carry_actions: Vec::new(),
            audits_cap: journal::CAP,
            last_delivery: None,
        }
    }

    fn mails(cfg: &Config) -> usize {
        std::fs::read_dir(cfg.state_dir.join("mail")).map(|d| d.count()).unwrap_or(0)
    }

    #[tokio::test]
    async fn one_email_per_owed_cycle_repeat_by_the_clock_and_no_resend_after_restart() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path(), &phantom_exit());
        let clock = Arc::new(ManualClock::new(t0()));
        let mut d = daemon(cfg.clone(), clock.clone());

        let r = d.cycle(clock.now()).await;
        assert!(r.ok && r.email.queued.is_some() && r.email.delivered == 1, "{r:?}");
        assert_eq!((r.notifications.firing, r.alerts.firing), (4, 4), "{r:?}");
        assert_eq!(r.actions.len(), 1, "one flatten_shorts described for the four shorts");
        assert_eq!((r.actions[0].result.as_str(), r.actions[0].subject.as_str()), ("described", "BILL,CHWY,COIN,OKTA"));
        assert_eq!(mails(&cfg), 1);

        clock.advance(chrono::Duration::seconds(30));
        let r = d.cycle(clock.now()).await;
        assert!(r.email.queued.is_none() && r.notifications == NotificationCounts::default(), "{r:?}");

        // A restart: a new daemon from the state on disk owes nothing.
        drop(d);
        let mut d = daemon(cfg.clone(), clock.clone());
        clock.advance(chrono::Duration::seconds(30));
        assert!(d.cycle(clock.now()).await.email.queued.is_none());
        assert_eq!(mails(&cfg), 1);

        // An hour after the first notice: one repeat for all four, in one email.
        clock.set(t0() + chrono::Duration::hours(1));
        let r = d.cycle(clock.now()).await;
        assert_eq!(r.notifications.repeat, 4, "{r:?}");
        assert_eq!(mails(&cfg), 2);

        let lines = std::fs::read_to_string(cfg.state_dir.join(journal::FILE)).unwrap();
        assert_eq!(lines.lines().count(), 4);
        let last: Report = serde_json::from_slice(&std::fs::read(cfg.state_dir.join(LAST_REPORT)).unwrap()).unwrap();
        assert_eq!(last.cycle.unwrap().notifications.repeat, 4);
        let view = d.shared.snapshot();
        assert_eq!((view.cycles, view.alerts.len(), view.outbox_depth), (2, 4, 0), "this daemon ran two cycles");
    }

    /// Each cycle appends its transitions to `alert_events.jsonl`: four shorts firing at once,
    /// nothing while they keep firing, and a restart from the saved book adds nothing either.
    #[tokio::test]
    async fn a_cycle_logs_its_alert_transitions_once() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path(), &phantom_exit());
        let clock = Arc::new(ManualClock::new(t0()));
        let mut d = daemon(cfg.clone(), clock.clone());
        d.cycle(clock.now()).await;
        let read = || crate::alert::event::read(&cfg.state_dir).unwrap().records;
        let events = read();
        assert_eq!(events.len(), 4, "{events:?}");
        assert!(events.iter().all(|e| e.event == crate::alert::Transition::Firing && e.at == t0()), "{events:?}");
        clock.advance(chrono::Duration::seconds(30));
        d.cycle(clock.now()).await;
        drop(d);
        let mut d = daemon(cfg.clone(), clock.clone());
        clock.advance(chrono::Duration::seconds(30));
        d.cycle(clock.now()).await;
        assert_eq!(read().len(), 4, "no transition while they keep firing");
    }

    #[test]
    fn email_is_undeliverable_only_when_a_message_failed_and_nothing_was_delivered_for_the_whole_window() {
        let hour = Duration::from_secs(3600);
        let at = |m: i64| t0() + chrono::Duration::minutes(m);
        assert_eq!(undeliverable_since(None, None, at(120), hour), None, "nothing failing");
        assert_eq!(undeliverable_since(Some(at(0)), None, at(59), hour), None, "not long enough yet");
        assert_eq!(undeliverable_since(Some(at(0)), None, at(60), hour), Some(at(0)));
        assert_eq!(undeliverable_since(Some(at(0)), Some(at(30)), at(80), hour), None, "a delivery within the hour");
        assert_eq!(undeliverable_since(Some(at(0)), Some(at(10)), at(80), hour), Some(at(0)));
    }

    #[tokio::test]
    async fn an_email_that_cannot_be_written_to_the_outbox_is_still_sent_and_the_book_waits_for_it() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path(), &phantom_exit());
        let clock = Arc::new(ManualClock::new(t0()));
        let mut d = daemon(cfg.clone(), clock.clone());
        // The outbox folder cannot be created (a file is in the way): as with a full disk.
        std::fs::create_dir_all(&cfg.state_dir).unwrap();
        std::fs::write(cfg.state_dir.join(Outbox::DIR), "in the way").unwrap();

        let r = d.cycle(clock.now()).await;
        assert!(r.email.queued.is_some(), "the notices are queued (in memory): {r:?}");
        assert_eq!(r.email.delivered, 1, "and sent from there: {r:?}");
        assert_eq!(mails(&cfg), 1);
        assert!(r.problems.iter().any(|p| p.contains("held in memory")), "{:?}", r.problems);
        assert!(!cfg.state_dir.join(AlertBook::FILE).exists(), "not saved while its email was held in memory only");
        assert_eq!(d.book.in_phase(Phase::Firing).count(), 4, "adopted in memory");

        clock.advance(chrono::Duration::seconds(30));
        let r = d.cycle(clock.now()).await;
        assert!(r.email.queued.is_none(), "nothing owed twice: {r:?}");
        assert_eq!(mails(&cfg), 1);
        assert!(cfg.state_dir.join(AlertBook::FILE).exists(), "saved once nothing is held");
    }

    #[tokio::test]
    async fn silenced_findings_are_reported_and_neither_emailed_nor_acted_on() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path(), &phantom_exit());
        let clock = Arc::new(ManualClock::new(t0()));
        let new = NewSilence {
            rule: "no-shorts".into(),
            subject: Some("CHWY".into()),
            code: None,
            duration: Duration::from_secs(3600),
            reason: "by hand".into(),
            created_by: None,
        };
        SilenceBook::update(&cfg.state_dir, t0(), |b| b.add(new, t0())).unwrap();
        let mut d = daemon(cfg.clone(), clock.clone());
        let r = d.cycle(clock.now()).await;
        assert_eq!((r.notifications.firing, r.alerts.silenced), (3, 1), "{r:?}");
        assert!(r.actions.iter().all(|a| a.subject != "CHWY"), "{:?}", r.actions);
        let last: Report = serde_json::from_slice(&std::fs::read(cfg.state_dir.join(LAST_REPORT)).unwrap()).unwrap();
        assert!(last.findings.iter().any(|f| f.subject == "CHWY"));
        assert_eq!(last.silenced.len(), 1);
        assert_eq!(last.silenced[0].reason.as_deref(), Some("by hand"));
        let mail = std::fs::read_dir(cfg.state_dir.join("mail")).unwrap().next().unwrap().unwrap().path();
        let text = std::fs::read_to_string(mail).unwrap();
        assert!(!text.contains("CHWY") && text.contains("BILL"), "the silenced short is not emailed");
    }

    #[tokio::test]
    async fn a_failed_collection_holds_the_alerts_and_sends_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path(), &phantom_exit());
        let clock = Arc::new(ManualClock::new(t0()));
        let mut d = daemon(cfg.clone(), clock.clone());
        d.cycle(clock.now()).await;
        let before = d.book.clone();

        // The same state, now reading a snapshot directory that is not one.
        let broken = dir.path().join("broken");
        std::fs::create_dir_all(&broken).unwrap();
        let mut d = daemon(config(dir.path(), &broken), clock.clone());
        clock.advance(chrono::Duration::hours(2));
        let r = d.cycle(clock.now()).await;
        assert!(!r.ok && r.error.as_deref().unwrap_or_default().contains("snapshot"), "{r:?}");
        assert_eq!(r.alerts.firing, 4, "nothing resolves on missing data");
        assert_eq!(d.book, before);
        assert_eq!(mails(&cfg), 1);
        let view = d.shared.snapshot();
        assert!(view.history.back().unwrap().failed && view.last_success_at.is_none());
    }
}
