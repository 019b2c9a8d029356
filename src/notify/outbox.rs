//! The durable outbox: `state_dir/outbox/<id>.json`, one file per message, keyed by channel:
//! each message records the channel that rendered it (`channel`; files from before channels
//! are email), and a flush delivers it through that channel (`Dispatch`).
//!
//! A message is written (atomically) before any attempt to send it, and its file is removed only
//! after the transport accepted it. A failed attempt rewrites the file with the attempt count,
//! the error and the next attempt time: capped exponential backoff (30 s doubling to 30 min by
//! default) with jitter, so retries survive cycles and restarts. `flush` never blocks for long:
//! each send has a timeout, the whole flush has a budget, and a connection-level failure stops
//! the flush (the server is down; the other messages keep their schedule and are tried on a later
//! flush). The `Message-ID` (`<uuid@tradewarden>`) and `Date` are fixed at enqueue time, so every
//! retry is the same message, and a duplicate delivery is recognisable.
//!
//! A message owed is never dropped because the state directory cannot be written (full, or
//! read-only): the daemon queues with `enqueue_or_hold`, which keeps a message whose file
//! cannot be written in memory; every flush first retries writing it, and sends it from memory
//! meanwhile. Likewise a failed attempt whose file cannot be rewritten keeps its backoff in
//! memory, and a delivered message whose file cannot be removed is not sent again by this
//! process. Memory is lost with the process, so each flush retries the disk first.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::channel::{Channel, Content, Dispatch, OutboxMessage, SendError, SendErrorKind};
use super::render::{Rendered, header_safe};
use crate::state::{StateError, ensure_dir, quarantine, read_json, remove_file, write_json};

/// Retry timing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// The first retry delay.
    pub base: Duration,
    /// The longest delay.
    pub cap: Duration,
    /// Up to this fraction is added at random to each delay (0.1 = up to +10%), so several
    /// watchdogs do not retry in step.
    pub jitter: f64,
    /// One send may take this long.
    pub send_timeout: Duration,
    /// One flush may take this long in total; what is left waits for the next flush.
    pub flush_budget: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            base: Duration::from_secs(30),
            cap: Duration::from_secs(30 * 60),
            jitter: 0.1,
            send_timeout: Duration::from_secs(15),
            flush_budget: Duration::from_secs(20),
        }
    }
}

impl RetryPolicy {
    /// The delay after the `attempts`-th failure (1-based), before jitter: `base * 2^(n-1)`,
    /// at most `cap`.
    #[must_use]
    pub fn delay(&self, attempts: u32) -> Duration {
        let exp = attempts.saturating_sub(1).min(30);
        self.base.saturating_mul(1 << exp).min(self.cap)
    }

    fn jittered(&self, attempts: u32) -> Duration {
        let d = self.delay(attempts);
        if self.jitter <= 0.0 {
            return d;
        }
        d.mul_f64(1.0 + self.jitter.min(1.0) * fastrand::f64())
    }
}

/// A delivered message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    /// Outbox id.
    pub id: String,
    /// Its Message-ID.
    pub message_id: String,
    /// Its subject.
    pub subject: String,
    /// The transport's receipt.
    pub receipt: String,
}

/// A message that failed this flush and waits for its next attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlushFailure {
    /// Outbox id.
    pub id: String,
    /// Its Message-ID.
    pub message_id: String,
    /// Its subject.
    pub subject: String,
    /// Failed attempts so far.
    pub attempts: u32,
    /// The next attempt.
    pub next_attempt_at: DateTime<Utc>,
    /// Why.
    pub error: SendError,
}

/// What a flush did: for the report and the log.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FlushReport {
    /// Accepted by the transport and removed from the outbox.
    pub delivered: Vec<Delivered>,
    /// Tried and failed; backed off.
    pub failed: Vec<FlushFailure>,
    /// Due, but not tried: the transport was down or the flush budget ran out.
    pub deferred: usize,
    /// Messages still in the outbox afterwards.
    pub queued: usize,
    /// Outbox files that could not be read or rewritten.
    pub problems: Vec<String>,
    /// When the oldest message still queued that has failed at least once was queued: email
    /// has been undeliverable at least since then (`None`: nothing is failing).
    pub failing_since: Option<DateTime<Utc>>,
}

/// The outbox's contents.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OutboxListing {
    /// Oldest first.
    pub messages: Vec<OutboxMessage>,
    /// Files that could not be used (corrupt ones were moved aside).
    pub problems: Vec<String>,
}

/// The outbox folder as read, without touching it ([`Outbox::scan`]).
#[derive(Debug, Default)]
pub struct OutboxScan {
    /// The messages, in no particular order.
    pub messages: Vec<OutboxMessage>,
    /// Files that could not be read, with why.
    pub unreadable: Vec<(PathBuf, StateError)>,
}

/// What the outbox knows better than its folder, when the folder cannot be written.
#[derive(Debug, Default)]
struct Held {
    /// Messages (by id) newer in memory than on disk: never written, or a failed attempt whose
    /// rewrite failed. Each flush writes them first; what is written leaves memory.
    messages: BTreeMap<String, OutboxMessage>,
    /// Delivered, but their file could not be removed: never sent again by this process.
    delivered: BTreeSet<String>,
}

/// The outbox folder and its retry policy.
#[derive(Debug, Clone)]
pub struct Outbox {
    dir: PathBuf,
    policy: RetryPolicy,
    held: Arc<Mutex<Held>>,
}

impl Outbox {
    /// The folder name inside the state directory.
    pub const DIR: &'static str = "outbox";

    /// The outbox of a state directory (nothing is touched until used).
    #[must_use]
    pub fn new(state_dir: &Path) -> Self {
        Self { dir: state_dir.join(Self::DIR), policy: RetryPolicy::default(), held: Arc::default() }
    }

    /// The same outbox with another retry policy.
    #[must_use]
    pub fn with_policy(mut self, policy: RetryPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The folder.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The retry policy.
    #[must_use]
    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }

    /// The file of a message.
    #[must_use]
    pub fn path_of(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    /// Queues a rendered notice for `channel`: rendered by the channel, with a fresh id and
    /// Message-ID, due now, written atomically before this returns.
    ///
    /// # Errors
    /// When the file cannot be written (the message is then not queued).
    pub fn queue(
        &self,
        channel: &dyn Channel,
        notice: &Rendered,
        now: DateTime<Utc>,
    ) -> Result<OutboxMessage, StateError> {
        self.write_new(Self::message(channel.name(), &notice.subject, channel.render(notice), now))
    }

    pub(super) fn write_new(&self, msg: OutboxMessage) -> Result<OutboxMessage, StateError> {
        ensure_dir(&self.dir)?;
        write_json(&self.path_of(&msg.id), &msg)?;
        Ok(msg)
    }

    /// Queues like `queue`, but never loses the message: when its file cannot be written, the
    /// message is held in memory (sent from there, and written at each flush until that
    /// works) and the error is returned beside it, for the report.
    pub fn queue_or_hold(
        &self,
        channel: &dyn Channel,
        notice: &Rendered,
        now: DateTime<Utc>,
    ) -> (OutboxMessage, Option<StateError>) {
        let msg = Self::message(channel.name(), &notice.subject, channel.render(notice), now);
        match ensure_dir(&self.dir).and_then(|()| write_json(&self.path_of(&msg.id), &msg)) {
            Ok(()) => (msg, None),
            Err(e) => {
                self.held().messages.insert(msg.id.clone(), msg.clone());
                (msg, Some(e))
            }
        }
    }

    /// Messages held in memory because their file could not be written (yet).
    #[must_use]
    pub fn held_count(&self) -> usize {
        self.held().messages.len()
    }

    fn held(&self) -> std::sync::MutexGuard<'_, Held> {
        // The data stays consistent whatever panicked: each field is updated in one step.
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn message(channel: &str, subject: &str, content: Content, now: DateTime<Utc>) -> OutboxMessage {
        let uuid = uuid::Uuid::new_v4();
        OutboxMessage {
            id: uuid.simple().to_string(),
            message_id: format!("<{}@tradewarden>", uuid.hyphenated()),
            created_at: now,
            channel: channel.to_owned(),
            subject: header_safe(subject),
            content,
            attempts: 0,
            next_attempt_at: now,
            last_attempt_at: None,
            last_error: None,
        }
    }

    /// Tries once more to write the messages held in memory (at exit: memory is about to be
    /// lost); the problems of those that still cannot be written.
    pub fn write_held_now(&self) -> Vec<String> {
        let mut problems = Vec::new();
        self.write_held(&mut problems);
        problems
    }

    /// Writes the messages held in memory to their files; what is written leaves memory.
    /// Retries removing the files of messages delivered earlier.
    fn write_held(&self, problems: &mut Vec<String>) {
        let mut held = self.held();
        let pending: Vec<OutboxMessage> = held.messages.values().cloned().collect();
        for msg in pending {
            match ensure_dir(&self.dir).and_then(|()| write_json(&self.path_of(&msg.id), &msg)) {
                Ok(()) => {
                    held.messages.remove(&msg.id);
                }
                Err(e) => problems.push(format!(
                    "message {} (`{}`) is held in memory only: {e}; it is sent from memory and written when possible",
                    msg.message_id, msg.subject
                )),
            }
        }
        let delivered: Vec<String> = held.delivered.iter().cloned().collect();
        for id in delivered {
            if remove_file(&self.path_of(&id)).is_ok() {
                held.delivered.remove(&id);
            }
        }
    }

    /// Every queued message, oldest first. A corrupt file is moved aside and reported; temp
    /// files of interrupted writes are ignored.
    #[must_use]
    pub fn list(&self, now: DateTime<Utc>) -> OutboxListing {
        let mut out = OutboxListing::default();
        self.list_files(now, &mut out);
        // Memory knows better: a held message replaces its file, a delivered one is gone.
        let held = self.held();
        out.messages.retain(|m| !held.delivered.contains(&m.id) && !held.messages.contains_key(&m.id));
        out.messages.extend(held.messages.values().cloned());
        drop(held);
        out.messages.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        out
    }

    fn list_files(&self, now: DateTime<Utc>, out: &mut OutboxListing) {
        let scan = match self.scan() {
            Ok(s) => s,
            Err(e) => {
                out.problems.push(format!("cannot read outbox `{}`: {e}", self.dir.display()));
                return;
            }
        };
        out.messages.extend(scan.messages);
        for (path, e) in scan.unreadable {
            out.problems.push(match e {
                // An unreadable message cannot be sent; keep it aside for a human.
                StateError::Corrupt { .. } => match quarantine(&path, now) {
                    Ok(to) => format!("{e}; moved aside to `{}`", to.display()),
                    Err(m) => format!("{e}; could not move it aside ({m})"),
                },
                e => e.to_string(),
            });
        }
    }

    /// The message files as they are, read only (`tradewarden status` beside a running daemon):
    /// the messages, and each file that could not be read with why. Temp files of interrupted
    /// writes are not messages. A missing folder is an empty outbox.
    ///
    /// # Errors
    /// When the folder exists but cannot be read.
    pub fn scan(&self) -> std::io::Result<OutboxScan> {
        let mut out = OutboxScan::default();
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(e),
        };
        for path in entries.flatten().map(|e| e.path()) {
            let temp = path.file_name().is_some_and(|n| n.to_string_lossy().starts_with(crate::state::TEMP_PREFIX));
            if temp || path.extension().is_none_or(|x| x != "json") {
                continue;
            }
            match read_json::<OutboxMessage>(&path) {
                Ok(Some(m)) => out.messages.push(m),
                Ok(None) => {}
                Err(e) => out.unreadable.push((path, e)),
            }
        }
        Ok(out)
    }

    /// Tries every message due at `now`, oldest first, within the flush budget, each through
    /// the channel it records. Never fails: everything that went wrong is in the report (and
    /// the log). A connection-level failure stops the flush for that channel only.
    pub async fn flush<D: Dispatch + ?Sized>(&self, channels: &D, now: DateTime<Utc>) -> FlushReport {
        let mut problems = Vec::new();
        self.write_held(&mut problems);
        let listing = self.list(now);
        problems.extend(listing.problems);
        let mut report = FlushReport { problems, ..FlushReport::default() };
        let started = Instant::now();
        // Channels whose transport failed at the connection level during this flush.
        let mut down: BTreeSet<String> = BTreeSet::new();
        let mut remaining = 0;
        // The oldest message still owed that has failed: delivery fails since then.
        let mut failing_since: Option<DateTime<Utc>> = None;
        let mut failing = |created: DateTime<Utc>, failed: bool| {
            if failed {
                failing_since = Some(failing_since.map_or(created, |f| f.min(created)));
            }
        };
        for msg in listing.messages {
            let due = msg.next_attempt_at <= now;
            if !due {
                remaining += 1;
                failing(msg.created_at, msg.attempts > 0);
                continue;
            }
            let Some(channel) = channels.channel(&msg.channel) else {
                // Kept for when that channel is configured again; never dropped.
                report.problems.push(unknown_channel(&msg));
                remaining += 1;
                failing(msg.created_at, msg.attempts > 0);
                continue;
            };
            if down.contains(&msg.channel) || started.elapsed() >= self.policy.flush_budget {
                report.deferred += 1;
                remaining += 1;
                failing(msg.created_at, msg.attempts > 0);
                continue;
            }
            let (created, name) = (msg.created_at, msg.channel.clone());
            match self.attempt(channel, msg, now, &mut report).await {
                Attempt::Delivered => {}
                Attempt::Failed { stop } => {
                    remaining += 1;
                    if stop {
                        down.insert(name);
                    }
                    failing(created, true);
                }
            }
        }
        report.queued = remaining;
        report.failing_since = failing_since;
        report
    }

    /// Tries one message now, whatever its schedule (`alerts test`). `None` when no such
    /// message is queued.
    pub async fn deliver<D: Dispatch + ?Sized>(
        &self,
        channels: &D,
        id: &str,
        now: DateTime<Utc>,
    ) -> Option<FlushReport> {
        let msg = match read_json::<OutboxMessage>(&self.path_of(id)) {
            Ok(Some(m)) => m,
            _ => return None,
        };
        let mut report = FlushReport::default();
        let Some(channel) = channels.channel(&msg.channel) else {
            report.problems.push(unknown_channel(&msg));
            report.queued = 1;
            return Some(report);
        };
        if let Attempt::Failed { .. } = self.attempt(channel, msg, now, &mut report).await {
            report.queued = 1;
        }
        Some(report)
    }

    async fn attempt(
        &self,
        channel: &dyn Channel,
        mut msg: OutboxMessage,
        now: DateTime<Utc>,
        report: &mut FlushReport,
    ) -> Attempt {
        let sent = match tokio::time::timeout(self.policy.send_timeout, channel.deliver(&msg)).await {
            Ok(r) => r,
            Err(_) => Err(SendError::connection(format!(
                "no answer within {}",
                crate::config::duration::format(self.policy.send_timeout)
            ))),
        };
        match sent {
            Ok(receipt) => {
                tracing::info!(id = %msg.id, message_id = %msg.message_id, receipt = %receipt, "Email delivered.");
                self.held().messages.remove(&msg.id);
                // A message held in memory only has no file: removing it is Ok.
                if let Err(e) = remove_file(&self.path_of(&msg.id)) {
                    // Not sent again by this process; the file is removed at a later flush.
                    self.held().delivered.insert(msg.id.clone());
                    report.problems.push(format!(
                        "message {} was delivered but its outbox file could not be removed ({e}); it may be \
                         delivered again with the same Message-ID",
                        msg.message_id
                    ));
                }
                report.delivered.push(Delivered {
                    id: msg.id,
                    message_id: msg.message_id,
                    subject: msg.subject,
                    receipt,
                });
                Attempt::Delivered
            }
            Err(error) => {
                msg.attempts = msg.attempts.saturating_add(1);
                msg.last_attempt_at = Some(now);
                msg.last_error = Some(error.message.clone());
                let delay =
                    chrono::Duration::from_std(self.policy.jittered(msg.attempts)).unwrap_or(chrono::Duration::MAX);
                msg.next_attempt_at = now + delay;
                tracing::warn!(
                    id = %msg.id,
                    message_id = %msg.message_id,
                    attempts = msg.attempts,
                    next_attempt_at = %msg.next_attempt_at,
                    channel = %msg.channel,
                    error = %error.message,
                    // The wording the operators' log searches (and the daemon test) know.
                    "Email delivery failed; it stays queued."
                );
                if let Err(e) = write_json(&self.path_of(&msg.id), &msg) {
                    // The backoff holds in memory; the file is rewritten at a later flush.
                    report.problems.push(format!("cannot record the failed attempt of {}: {e}", msg.message_id));
                    self.held().messages.insert(msg.id.clone(), msg.clone());
                } else {
                    self.held().messages.remove(&msg.id);
                }
                let stop = error.kind == SendErrorKind::Connection;
                report.failed.push(FlushFailure {
                    id: msg.id,
                    message_id: msg.message_id,
                    subject: msg.subject,
                    attempts: msg.attempts,
                    next_attempt_at: msg.next_attempt_at,
                    error,
                });
                Attempt::Failed { stop }
            }
        }
    }
}

/// The problem of a message whose channel is not configured.
fn unknown_channel(msg: &OutboxMessage) -> String {
    format!(
        "message {} (`{}`) is for the `{}` channel, which is not configured; it stays queued",
        msg.message_id, msg.subject, msg.channel
    )
}

enum Attempt {
    Delivered,
    Failed { stop: bool },
}

#[cfg(test)]
mod tests;
