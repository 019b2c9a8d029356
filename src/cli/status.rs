//! `tradewarden status`: what an operator needs at a glance (firing and pending alerts,
//! unknown rules, the last cycle, silences, the outbox, recent actions), read from the state
//! directory the daemon writes.
//!
//! Read-only, so it is safe beside a running daemon: it takes no lock and never moves a
//! corrupt file aside (the daemon does that). A file it cannot use is named with the reason,
//! and the answer is then never "all clear": what status could not read, it cannot vouch for.
//!
//! Reading (`read_files`) is the only I/O; building the status (`build`), its exit code and
//! its text are pure functions of what was read, the configuration and `now`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use clap::{Args, ValueEnum};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{ConfigArg, FailOn, exit, load, print};
use crate::act::journal::{Journal, Ledger};
use crate::alert::{AlertBook, Phase, SilenceBook};
use crate::config::{Rule, Schedule};
use crate::daemon::cycle::LAST_REPORT;
use crate::model::{Outcome, Severity};
use crate::notify::{Outbox, OutboxMessage};
use crate::report::{CycleRecord, Report};
use crate::server::STALE_INTERVALS;
use crate::state::{StateError, read_json};

/// How many journaled actions `status` lists.
pub const RECENT_ACTIONS: usize = 10;

/// `status` arguments.
#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// Output format.
    #[arg(long, value_enum, default_value_t = StatusFormat::Text)]
    format: StatusFormat,
    /// Exit 1 when a firing alert or an unknown rule is at or above this severity.
    #[arg(long, value_enum, default_value_t = FailOn::Warning)]
    fail_on: FailOn,
}

/// `status` output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StatusFormat {
    /// Human-readable text.
    Text,
    /// One JSON document.
    Json,
}

/// Runs `status`; the exit code (0 clean, 1 firing or unknown at or above `--fail-on`, 2 the
/// configuration or a state file could not be used).
///
/// # Errors
/// Unexpected failures writing to stdout.
pub fn run(args: &StatusArgs, now: DateTime<Utc>) -> anyhow::Result<u8> {
    let cfg = match load(&args.config.config) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    let files = read_files(&cfg.state_dir);
    let status = build(&cfg.state_dir, files, &cfg.rules, &cfg.schedule, now);
    let text = match args.format {
        StatusFormat::Text => render_text(&status),
        StatusFormat::Json => serde_json::to_string_pretty(&status)? + "\n",
    };
    print(&text)?;
    Ok(exit_code(&status, args.fail_on.into()))
}

/// Everything `status` shows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Status {
    /// The state directory read.
    pub state_dir: PathBuf,
    /// When status was read.
    pub at: DateTime<Utc>,
    /// Nothing firing, pending or unknown, a recent successful cycle, every file read.
    pub all_clear: bool,
    /// The last cycle (`audits.jsonl`); `None`: no cycle yet.
    pub last_cycle: Option<LastCycle>,
    /// Firing alerts, the most severe first.
    pub firing: Vec<AlertLine>,
    /// Pending alerts (`for` not met yet).
    pub pending: Vec<AlertLine>,
    /// Rules the last cycle could not evaluate, with why.
    pub unknown_rules: Vec<UnknownRule>,
    /// Silences in force.
    pub silences: Vec<SilenceLine>,
    /// Emails waiting for delivery.
    pub outbox: OutboxLine,
    /// The last journaled actions (`actions.jsonl`), newest first.
    pub recent_actions: Vec<ActionEntry>,
    /// State files that could not be used, and why.
    pub problems: Vec<FileProblem>,
}

/// The last cycle.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LastCycle {
    /// When it started.
    pub at: DateTime<Utc>,
    /// How long it took.
    pub duration_ms: u64,
    /// Its audit completed.
    pub ok: bool,
    /// Why it did not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Seconds from its end to now.
    pub ago_secs: i64,
    /// Older than three schedule intervals: the watchdog is probably not running.
    pub stale: bool,
    /// Past this age (seconds) it is stale.
    pub stale_after_secs: u64,
    /// What else went wrong in it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}

/// One alert.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertLine {
    /// `rule/subject`.
    pub fingerprint: String,
    /// Rule id.
    pub rule: String,
    /// Subject.
    pub subject: String,
    /// Severity.
    pub severity: Severity,
    /// When the episode was first seen.
    pub since: DateTime<Utc>,
    /// The finding code.
    pub code: String,
    /// The latest message.
    pub message: String,
    /// Muted by a silence (its id).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub silenced_by: Option<String>,
    /// Held while its rule could not be evaluated.
    pub unknown: bool,
}

/// A rule whose outcome was unknown.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UnknownRule {
    /// Rule id.
    pub rule: String,
    /// Its configured severity (`None`: no longer configured).
    pub severity: Option<Severity>,
    /// Why.
    pub reason: String,
}

/// A silence in force.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SilenceLine {
    /// Id (`silence rm ID`).
    pub id: String,
    /// Rule matched.
    pub rule: String,
    /// Subject matched (`None`: every subject).
    pub subject: Option<String>,
    /// When it ends.
    pub ends_at: DateTime<Utc>,
    /// Why.
    pub reason: String,
    /// Who added it.
    pub created_by: Option<String>,
}

/// The outbox.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct OutboxLine {
    /// Messages waiting.
    pub depth: usize,
    /// Of those, messages that failed at least once.
    pub failing: usize,
    /// When the oldest waiting message was queued.
    pub oldest_at: Option<DateTime<Utc>>,
    /// The oldest failing message's last error.
    pub last_error: Option<String>,
}

/// A journaled action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActionEntry {
    /// When it was decided.
    pub at: DateTime<Utc>,
    /// `flatten_shorts`, `fix_state`, `exec:NAME`, ...
    pub action: String,
    /// `daemon` or `cli`.
    pub origin: String,
    /// What it acted on.
    pub subject: String,
    /// `done`, `failed`, ...; `no outcome` when it is running or was interrupted.
    pub result: String,
    /// The outcome's sentence.
    pub detail: String,
}

/// A state file that could not be used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileProblem {
    /// The file (or folder).
    pub file: PathBuf,
    /// Why.
    pub why: String,
}

/// What was read from the state directory: `Ok(None)` a missing file, `Err` why a file
/// could not be used.
#[derive(Debug, Clone)]
pub struct Files {
    /// Why the state directory itself cannot be used.
    pub dir: Option<String>,
    /// The last record of `audits.jsonl`.
    pub last_cycle: Result<Option<CycleRecord>, String>,
    /// `last_report.json`.
    pub report: Result<Option<Report>, String>,
    /// `alerts.json`.
    pub alerts: Result<Option<AlertBook>, String>,
    /// `silences.json`.
    pub silences: Result<Option<SilenceBook>, String>,
    /// `outbox/`.
    pub outbox: Result<OutboxFiles, String>,
    /// `actions.jsonl` (and its `.1`).
    pub journal: Result<Ledger, String>,
}

/// The outbox folder as read.
#[derive(Debug, Clone, Default)]
pub struct OutboxFiles {
    /// The messages waiting.
    pub messages: Vec<OutboxMessage>,
    /// Message files that could not be read.
    pub unreadable: Vec<FileProblem>,
}

impl Default for Files {
    /// An empty state directory: every file missing.
    fn default() -> Self {
        Self {
            dir: None,
            last_cycle: Ok(None),
            report: Ok(None),
            alerts: Ok(None),
            silences: Ok(None),
            outbox: Ok(OutboxFiles::default()),
            journal: Ok(Ledger::default()),
        }
    }
}

impl Default for Status {
    fn default() -> Self {
        Self {
            state_dir: PathBuf::new(),
            at: DateTime::<Utc>::MIN_UTC,
            all_clear: false,
            last_cycle: None,
            firing: Vec::new(),
            pending: Vec::new(),
            unknown_rules: Vec::new(),
            silences: Vec::new(),
            outbox: OutboxLine::default(),
            recent_actions: Vec::new(),
            problems: Vec::new(),
        }
    }
}

fn why(e: &StateError) -> String {
    match e {
        StateError::Corrupt { message, .. } => format!("corrupt: {message}"),
        StateError::Read { source, .. } => format!("cannot be read: {source}"),
        other => other.to_string(),
    }
}

fn json_file<T: DeserializeOwned>(path: &Path) -> Result<Option<T>, String> {
    read_json(path).map_err(|e| why(&e))
}

/// Reads the state directory; never writes anything.
#[must_use]
pub fn read_files(dir: &Path) -> Files {
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Files { dir: Some("is not a folder".into()), ..Files::default() },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Files {
                dir: Some("does not exist: no cycle yet (`tradewarden run` creates it)".into()),
                ..Files::default()
            };
        }
        Err(e) => return Files { dir: Some(format!("cannot be read: {e}")), ..Files::default() },
    }
    let audits = dir.join(crate::daemon::journal::FILE);
    Files {
        dir: None,
        last_cycle: match crate::state::jsonl::read::<CycleRecord>(&audits) {
            // Only lines that are not records: something ran, but what it did is unreadable.
            Ok(l) if l.records.is_empty() && l.skipped > 0 => {
                Err(format!("corrupt: none of its {} lines is a cycle record", l.skipped))
            }
            Ok(l) => Ok(l.records.into_iter().last()),
            Err(e) => Err(format!("cannot be read: {e}")),
        },
        report: json_file(&dir.join(LAST_REPORT)),
        alerts: json_file(&dir.join(AlertBook::FILE)),
        silences: json_file(&dir.join(SilenceBook::FILE)),
        outbox: read_outbox(dir),
        journal: Journal::new(dir).read().map_err(|e| format!("cannot be read: {e}")),
    }
}

fn read_outbox(state_dir: &Path) -> Result<OutboxFiles, String> {
    let scan = Outbox::new(state_dir).scan().map_err(|e| format!("cannot be read: {e}"))?;
    Ok(OutboxFiles {
        messages: scan.messages,
        unreadable: scan.unreadable.into_iter().map(|(file, e)| FileProblem { file, why: why(&e) }).collect(),
    })
}

/// Builds the status from what was read. Pure.
#[must_use]
pub fn build(state_dir: &Path, files: Files, rules: &[Rule], schedule: &Schedule, now: DateTime<Utc>) -> Status {
    let mut s = Status { state_dir: state_dir.to_owned(), at: now, ..Status::default() };
    if let Some(why) = files.dir {
        s.problems.push(FileProblem { file: state_dir.to_owned(), why });
        return s;
    }
    let mut problem = |name: &str, why: String| s.problems.push(FileProblem { file: state_dir.join(name), why });

    let last = files.last_cycle.unwrap_or_else(|why| {
        problem(crate::daemon::journal::FILE, why);
        None
    });
    let completed = last.as_ref().is_some_and(|c| c.ok);
    let book = match files.alerts {
        Ok(Some(b)) => Some(b),
        // Every cycle that completes saves the book: none after one is a problem, not calm.
        Ok(None) if completed => {
            problem(AlertBook::FILE, "missing, although the last cycle completed".into());
            None
        }
        Ok(None) => None,
        Err(why) => {
            problem(AlertBook::FILE, why);
            None
        }
    };
    let report = match files.report {
        Ok(Some(r)) => Some(r),
        Ok(None) if completed => {
            problem(LAST_REPORT, "missing, although the last cycle completed: unknown rules cannot be told".into());
            None
        }
        Ok(None) => None,
        Err(why) => {
            problem(LAST_REPORT, why);
            None
        }
    };
    let silences = files.silences.unwrap_or_else(|why| {
        problem(SilenceBook::FILE, why);
        None
    });
    match files.outbox {
        Ok(o) => {
            s.outbox = outbox_line(&o.messages, o.unreadable.len());
            s.problems.extend(o.unreadable);
        }
        Err(why) => s.problems.push(FileProblem { file: state_dir.join(Outbox::DIR), why }),
    }
    match files.journal {
        Ok(ledger) => s.recent_actions = recent_actions(&ledger),
        Err(why) => s.problems.push(FileProblem { file: state_dir.join(crate::act::journal::FILE), why }),
    }

    let silences = silences.unwrap_or_default();
    if let Some(book) = &book {
        // A silence added since the last cycle mutes the alert from the next one on: show it
        // as silenced already, which is what the operator who added it expects to read.
        let silenced_by = |a: &crate::alert::AlertState| {
            silences
                .matching(&a.rule, &a.subject, &[a.last_finding.code.as_str()], now)
                .map(|x| x.id.clone())
                .or_else(|| a.silenced.then(|| a.silenced_by.clone().unwrap_or_default()))
        };
        let line = |a: &crate::alert::AlertState| AlertLine {
            fingerprint: a.fingerprint.clone(),
            rule: a.rule.clone(),
            subject: a.subject.clone(),
            severity: a.severity,
            since: a.active_since,
            code: a.last_finding.code.clone(),
            message: a.last_finding.message.clone(),
            silenced_by: silenced_by(a),
            unknown: a.unknown,
        };
        s.firing = book.in_phase(Phase::Firing).map(line).collect();
        s.pending = book.in_phase(Phase::Pending).map(line).collect();
        for v in [&mut s.firing, &mut s.pending] {
            v.sort_by(|a, b| {
                b.severity.cmp(&a.severity).then(a.since.cmp(&b.since)).then(a.fingerprint.cmp(&b.fingerprint))
            });
        }
    }
    s.unknown_rules = unknown_rules(last.as_ref(), report.as_ref(), rules);
    s.silences = silences
        .silences
        .iter()
        .filter(|x| x.is_active(now))
        .map(|x| SilenceLine {
            id: x.id.clone(),
            rule: x.rule.clone(),
            subject: x.subject.clone(),
            ends_at: x.effective_end(),
            reason: x.reason.clone(),
            created_by: x.created_by.clone(),
        })
        .collect();
    s.last_cycle = last.map(|c| last_cycle(c, schedule, now));
    s.all_clear = s.problems.is_empty()
        && s.last_cycle.as_ref().is_some_and(|c| c.ok && !c.stale)
        && s.firing.is_empty()
        && s.pending.is_empty()
        && s.unknown_rules.is_empty();
    s
}

fn last_cycle(c: CycleRecord, schedule: &Schedule, now: DateTime<Utc>) -> LastCycle {
    let took = std::time::Duration::from_millis(c.duration_ms);
    let finished = c.at + chrono::Duration::from_std(took).unwrap_or_default();
    let interval = crate::daemon::status::health_interval(schedule, finished, took);
    let stale_after = interval.saturating_mul(STALE_INTERVALS);
    let ago = now.signed_duration_since(finished);
    LastCycle {
        at: c.at,
        duration_ms: c.duration_ms,
        ok: c.ok,
        error: c.error,
        ago_secs: ago.num_seconds(),
        stale: ago.to_std().is_ok_and(|a| a > stale_after),
        stale_after_secs: stale_after.as_secs(),
        problems: c.problems,
    }
}

/// The rules the last cycle could not evaluate: those of `last_report.json`, or every
/// configured rule when the last cycle could not collect at all (it kept no report).
fn unknown_rules(last: Option<&CycleRecord>, report: Option<&Report>, rules: &[Rule]) -> Vec<UnknownRule> {
    let severity = |id: &str| rules.iter().find(|r| r.id == id).map(|r| r.severity);
    if let Some(c) = last.filter(|c| !c.ok) {
        let why = format!("the last cycle could not collect: {}", c.error.as_deref().unwrap_or("unknown error"));
        return rules
            .iter()
            .map(|r| UnknownRule { rule: r.id.clone(), severity: Some(r.severity), reason: why.clone() })
            .collect();
    }
    report
        .map(|r| {
            r.rules
                .iter()
                .filter(|o| o.outcome == Outcome::Unknown)
                .map(|o| UnknownRule {
                    rule: o.id.clone(),
                    severity: severity(&o.id),
                    reason: o.reason.clone().unwrap_or_else(|| "no reason recorded".into()),
                })
                .collect()
        })
        .unwrap_or_default()
}

fn outbox_line(messages: &[OutboxMessage], unreadable: usize) -> OutboxLine {
    let failing: Vec<&OutboxMessage> = messages.iter().filter(|m| m.attempts > 0).collect();
    OutboxLine {
        depth: messages.len() + unreadable,
        failing: failing.len(),
        oldest_at: messages.iter().map(|m| m.created_at).min(),
        last_error: failing.iter().min_by_key(|m| m.created_at).and_then(|m| m.last_error.clone()),
    }
}

fn recent_actions(ledger: &Ledger) -> Vec<ActionEntry> {
    ledger
        .intents
        .iter()
        .rev()
        .take(RECENT_ACTIONS)
        .map(|i| {
            let outcome = ledger.outcome(&i.id);
            ActionEntry {
                at: i.at,
                action: i.action.clone(),
                origin: i.origin.clone(),
                subject: i.subject.clone(),
                result: outcome.map_or_else(|| "no outcome".to_owned(), |o| o.result.clone()),
                detail: outcome.map_or_else(
                    || "running, or interrupted (resolved at the next start of `tradewarden run`)".to_owned(),
                    |o| o.detail.clone(),
                ),
            }
        })
        .collect()
}

/// 2 when a state file (or the folder) could not be used; 1 when an unsilenced firing alert
/// or an unknown rule is at or above `threshold` (an unknown rule no longer configured
/// counts: its severity is not known); else 0.
#[must_use]
pub fn exit_code(s: &Status, threshold: Severity) -> u8 {
    if !s.problems.is_empty() {
        return exit::ERROR;
    }
    let firing = s.firing.iter().any(|a| a.silenced_by.is_none() && a.severity >= threshold);
    let unknown = s.unknown_rules.iter().any(|u| u.severity.is_none_or(|sev| sev >= threshold));
    if firing || unknown { exit::FINDINGS } else { exit::CLEAN }
}

fn time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

fn ago(secs: i64) -> String {
    if secs < 0 {
        return "in the future (clock skew?)".into();
    }
    format!("{} ago", crate::duration::format(std::time::Duration::from_secs(secs.unsigned_abs())))
}

/// Control characters out, so a value from a file stays on its line.
fn clean(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

/// The status as text: the verdict first, then one section per concern.
#[must_use]
pub fn render_text(s: &Status) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "tradewarden status of {} at {}", s.state_dir.display(), time(s.at));
    let _ = writeln!(o, "{}", headline(s));
    if !s.problems.is_empty() {
        let _ = writeln!(o, "\nstate files that could not be used (status cannot vouch for what they hold):");
        for p in &s.problems {
            let _ = writeln!(o, "  {}: {}", p.file.display(), clean(&p.why));
        }
    }
    let _ = writeln!(o, "\nlast cycle:");
    match &s.last_cycle {
        None => {
            let _ = writeln!(o, "  no cycle yet");
        }
        Some(c) => {
            let result = if c.ok {
                "ok".to_owned()
            } else {
                format!("ERROR: {}", clean(c.error.as_deref().unwrap_or("unknown error")))
            };
            let stale = if c.stale {
                format!(
                    " STALE: older than {} schedule intervals ({}); is `tradewarden run` running?",
                    STALE_INTERVALS,
                    crate::duration::format(std::time::Duration::from_secs(c.stale_after_secs))
                )
            } else {
                String::new()
            };
            let took = crate::duration::format(std::time::Duration::from_millis(c.duration_ms));
            let _ = writeln!(o, "  {} ({}), {result}, took {took}{stale}", time(c.at), ago(c.ago_secs));
            for p in &c.problems {
                let _ = writeln!(o, "  problem: {}", clean(p));
            }
        }
    }
    for (title, alerts) in [("firing", &s.firing), ("pending", &s.pending)] {
        let _ =
            writeln!(o, "\n{title}: {}", if alerts.is_empty() { "none".to_owned() } else { alerts.len().to_string() });
        for a in alerts {
            let mut notes = String::new();
            if let Some(id) = &a.silenced_by {
                let _ = write!(notes, " [silenced by {id}]");
            }
            if a.unknown {
                notes.push_str(" [held: the rule could not be evaluated]");
            }
            let _ = writeln!(
                o,
                "  {:<8} {}  since {}  {}: {}{notes}",
                a.severity.as_str().to_uppercase(),
                a.fingerprint,
                time(a.since),
                a.code,
                clean(&a.message)
            );
        }
    }
    let _ = writeln!(
        o,
        "\nunknown rules: {}",
        if s.unknown_rules.is_empty() { "none".to_owned() } else { s.unknown_rules.len().to_string() }
    );
    for u in &s.unknown_rules {
        let sev = u.severity.map_or("(not configured)", Severity::as_str);
        let _ = writeln!(o, "  {} ({sev}): {}", u.rule, clean(&u.reason));
    }
    let _ = writeln!(
        o,
        "\nsilences in force: {}",
        if s.silences.is_empty() { "none".to_owned() } else { s.silences.len().to_string() }
    );
    for x in &s.silences {
        let by = x.created_by.as_deref().map(|b| format!(" by {}", clean(b))).unwrap_or_default();
        let _ = writeln!(
            o,
            "  {}  {}/{}  until {}{by}: {}",
            x.id,
            clean(&x.rule),
            x.subject.as_deref().map_or_else(|| "*".to_owned(), clean),
            time(x.ends_at),
            clean(&x.reason)
        );
    }
    let ob = &s.outbox;
    let _ = write!(o, "\noutbox: {} message{} waiting", ob.depth, if ob.depth == 1 { "" } else { "s" });
    if let Some(t) = ob.oldest_at {
        let _ = write!(o, ", oldest queued {}", time(t));
    }
    if ob.failing > 0 {
        let _ = write!(o, ", {} failing", ob.failing);
        if let Some(e) = &ob.last_error {
            let _ = write!(o, " (last error: {})", clean(e));
        }
    }
    o.push('\n');
    let _ = writeln!(
        o,
        "\nrecent actions: {}",
        if s.recent_actions.is_empty() {
            "none journaled".to_owned()
        } else {
            format!("last {}", s.recent_actions.len())
        }
    );
    for a in &s.recent_actions {
        let _ = writeln!(
            o,
            "  {}  {} {} ({}): {}: {}",
            time(a.at),
            a.action,
            clean(&a.subject),
            a.origin,
            a.result,
            clean(&a.detail)
        );
    }
    o
}

/// One line: the worst thing first. Never "all clear" unless `all_clear`.
fn headline(s: &Status) -> String {
    let mut parts = Vec::new();
    if s.problems.first().is_some_and(|p| p.file == s.state_dir) {
        parts.push("UNKNOWN: the state directory cannot be used".to_owned());
    } else if !s.problems.is_empty() {
        parts.push(format!(
            "UNKNOWN: {} state file{} could not be used",
            s.problems.len(),
            if s.problems.len() == 1 { "" } else { "s" }
        ));
    }
    match &s.last_cycle {
        None if s.problems.is_empty() => parts.push("no cycle yet".into()),
        None => {}
        Some(c) if c.stale => parts.push("STALE: the last cycle is too old".into()),
        Some(c) if !c.ok => parts.push("the last cycle FAILED".into()),
        Some(_) => {}
    }
    if !s.firing.is_empty() {
        parts.push(format!("FIRING: {}", s.firing.len()));
    }
    if !s.pending.is_empty() {
        parts.push(format!("pending: {}", s.pending.len()));
    }
    if !s.unknown_rules.is_empty() {
        parts.push(format!("UNKNOWN rules: {}", s.unknown_rules.len()));
    }
    if s.all_clear {
        parts.push("all clear".into());
    }
    parts.join("; ")
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 6, 10, 0, 0).unwrap()
    }

    fn every(secs: u64) -> Schedule {
        Schedule::Every(std::time::Duration::from_secs(secs))
    }

    fn cycle(ok: bool) -> CycleRecord {
        CycleRecord { at: t0(), duration_ms: 500, ok, ..CycleRecord::default() }
    }

    fn files(last: Option<CycleRecord>) -> Files {
        let report = last.as_ref().filter(|c| c.ok).map(|_| {
            serde_json::from_value::<Report>(serde_json::json!({
                "version": "1", "audited_at": "2026-12-06T10:00:00Z", "mode": "paper", "account": null,
                "market": null, "sources": [], "findings": [], "rules": [], "summary":
                {"critical": 0, "warning": 0, "info": 0, "unknown": 0}, "reconciliation": []
            }))
            .unwrap()
        });
        Files {
            dir: None,
            last_cycle: Ok(last),
            report: Ok(report),
            alerts: Ok(Some(AlertBook::default())),
            silences: Ok(None),
            outbox: Ok(OutboxFiles::default()),
            journal: Ok(Ledger::default()),
        }
    }

    /// Stale past three schedule intervals after the cycle ended; all clear only before that.
    #[test]
    fn a_cycle_older_than_three_intervals_is_stale_and_never_all_clear() {
        let dir = Path::new("/state");
        let fresh = build(dir, files(Some(cycle(true))), &[], &every(30), t0() + chrono::Duration::seconds(90));
        let c = fresh.last_cycle.as_ref().unwrap();
        assert!(!c.stale && fresh.all_clear, "{fresh:?}");
        assert_eq!((c.ago_secs, c.stale_after_secs), (89, 90));
        let old = build(dir, files(Some(cycle(true))), &[], &every(30), t0() + chrono::Duration::seconds(92));
        assert!(old.last_cycle.as_ref().unwrap().stale && !old.all_clear, "{old:?}");
        assert!(render_text(&old).contains("STALE"), "{}", render_text(&old));
        assert_eq!(exit_code(&old, Severity::Warning), exit::CLEAN);
    }

    /// A failed last cycle kept no report: every configured rule is unknown, with its error.
    #[test]
    fn a_failed_last_cycle_makes_every_rule_unknown() {
        let mut c = cycle(false);
        c.error = Some("not a snapshot directory".into());
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("rules.toml"),
            "[[rule]]\nid = \"no-shorts\"\ncheck = \"no_short_positions\"\nseverity = \"critical\"\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("tradewarden.toml"),
            "state_dir = \"state\"\nrules = [\"rules.toml\"]\n[bot]\nroot = \"bot\"\n[bot.positions]\nfile = \"x.json\"\n",
        )
        .unwrap();
        let rules = crate::config::Config::load(&dir.path().join("tradewarden.toml")).unwrap().rules;
        let s = build(Path::new("/state"), files(Some(c)), &rules, &every(30), t0());
        assert_eq!(s.unknown_rules.len(), rules.len());
        assert!(s.unknown_rules.iter().all(|u| u.reason.contains("not a snapshot directory")), "{s:?}");
        assert_eq!(exit_code(&s, Severity::Info), exit::FINDINGS);
    }

    /// An `audits.jsonl` with lines but no record is not "no cycle yet": it is named.
    #[test]
    fn an_audit_history_without_a_record_is_named_not_taken_for_no_cycle_yet() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("audits.jsonl"), "{\"at\": \"torn\n").unwrap();
        let s = build(dir.path(), read_files(dir.path()), &[], &every(30), t0());
        assert_eq!(s.problems.len(), 1, "{s:?}");
        assert!(s.problems[0].file.ends_with("audits.jsonl") && s.problems[0].why.starts_with("corrupt"), "{s:?}");
        assert!(!headline(&s).contains("no cycle yet"), "{}", headline(&s));
        assert_eq!(exit_code(&s, Severity::Warning), exit::ERROR);
    }

    /// A file that could not be used is named, makes the exit 2, and is never all clear.
    #[test]
    fn an_unusable_file_is_named_and_exits_two() {
        let mut f = files(Some(cycle(true)));
        f.silences = Err("corrupt: expected value at line 1 column 1".into());
        let s = build(Path::new("/state"), f, &[], &every(30), t0());
        assert!(!s.all_clear);
        assert_eq!(
            s.problems,
            vec![FileProblem {
                file: "/state/silences.json".into(),
                why: "corrupt: expected value at line 1 column 1".into()
            }]
        );
        assert_eq!(exit_code(&s, Severity::Critical), exit::ERROR);
        let text = render_text(&s);
        assert!(text.contains("/state/silences.json: corrupt") && !text.contains("all clear"), "{text}");
    }
}
