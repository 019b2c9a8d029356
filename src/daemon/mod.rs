//! `tradewarden run`: the watchdog that runs for months beside a bot.
//!
//! Start-up, in order (any failure here exits 2 with one clear sentence, before anything runs):
//! 0. the soft open-file limit is raised to the hard limit (`raise_nofile_limit`);
//! 1. SIGTERM/SIGINT handlers (`signals`), so a stop during start-up is not lost;
//! 2. the single-instance lock on the state directory (`StateLock`): a second instance exits 2
//!    naming the holder's pid;
//! 3. the broker, the email transport (credentials from the environment, never logged) and the
//!    heartbeat client;
//! 4. the status server when `[server] listen` is set (a bind failure exits 2), with its
//!    header-read timeout and a connection cap that leaves descriptors for the watchdog;
//! 5. state: temp files of writes a killed tradewarden left unfinished are removed (in the state
//!    directory, the outbox, the backups, and beside the bot's files: `state::sweep_temp_files`;
//!    the files they were for are intact), `alerts.json` is loaded (a corrupt file is moved
//!    aside and reported with the first cycle, never a crash), the actions hook recovers
//!    interrupted actions (their outcomes join the first cycle's report and email as
//!    `action_interrupted` findings), and the outbox left by a previous run is flushed.
//!
//! Then cycles run on `[schedule]` (`schedule`: no overlap, no stacking, a stop request lets
//! the running cycle finish within twice the broker timeout). Each cycle (`cycle`):
//!
//! 1. collect and evaluate (a collection that cannot start is a failed cycle: logged and
//!    counted, alerts hold, the daemon keeps running);
//! 2. load silences and take the pure lifecycle `step` (timers use the wall clock; checks use
//!    the snapshot's time, which for a replay is the recorded time);
//! 3. mark silenced findings in the report (`Report::silenced`);
//! 4. **the actions hook** (`act::Actor::on_cycle`): issue 4 lists "notify, the actions hook",
//!    but the hook runs first so that the one email of the cycle carries the actions taken or
//!    proposed. It sees firing, unsilenced alerts only. Findings it reports (rule `actions`: a
//!    refusal, a failed or unconfirmed action) join the report and the email once, as one-shot
//!    notices outside the alert book;
//! 5. render the cycle's notifications into one email and queue it in the outbox, **then** save
//!    `alerts.json` (a crash between the two re-sends a notice rather than losing one; the two
//!    are synchronous, so an abandoned cycle cannot split them). A message the state directory
//!    cannot take is held in memory by the outbox (sent from there, written when possible), and
//!    `alerts.json` is not saved while one is: nothing owed is dropped by a failed write;
//! 6. flush the outbox (bounded; failures stay queued with backoff scaled to the schedule, and
//!    go to the log, the report's `cycle.email` and the status view);
//! 7. append one line to `audits.jsonl` (rotated to `audits.jsonl.1` past 10 MB), write
//!    `last_report.json` atomically, update the status view;
//! 8. the heartbeat (`[alerts] heartbeat_url`), when the cycle completed its audit and read the
//!    broker; its `/fail` instead while email has been undeliverable longer than
//!    `[alerts] undeliverable_after`. Its `/start` goes out as each cycle begins, alongside
//!    step 1.
//!
//! On stop (signal or `--max-cycles`): the alert book is saved again, the status server stops,
//! the lock is released, exit 0.

pub mod cycle;
pub mod heartbeat;
pub mod journal;
pub mod schedule;
mod signals;
pub mod status;

use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::act::Actor;
use crate::alert::AlertBook;
use crate::clock::{Clock, SystemClock};
use crate::config::{BotSource, Config, Schedule};
use crate::notify::{Channel, Mailer, Outbox, RetryPolicy, host_name};
use crate::server::{Shared, StatusView};
use crate::state::{LockError, StateLock, sweep_temp_files};
use cycle::Daemon;
use heartbeat::Heartbeat;
use schedule::Stopped;
use status::Tally;

/// Email retry timing for a schedule: the first retry after one interval (between 1 s and
/// 30 s), doubling up to 60 intervals (at most 30 min). With the default 30 s schedule this is
/// the outbox's default policy; with a fast schedule a recovered SMTP server is used quickly.
#[must_use]
pub fn retry_policy(interval: Duration) -> RetryPolicy {
    let base = interval.clamp(Duration::from_secs(1), Duration::from_secs(30));
    let cap = base.saturating_mul(60).min(Duration::from_secs(30 * 60));
    RetryPolicy { base, cap, ..RetryPolicy::default() }
}

/// How long a running cycle may take after a stop request: long enough for the longest action
/// a cycle may run (a flatten waits up to `confirm_timeout` for its cancels, then again for its
/// closes, with a few broker calls between; an exec runs up to its timeout), plus two broker
/// calls; at least 2 s. (A cycle that has journaled an intent is not abandoned even then: see
/// `schedule::run_one`.)
#[must_use]
pub fn grace(cfg: &Config) -> Duration {
    let call = cfg.broker.timeout;
    let flatten = cfg.actions.confirm_timeout.saturating_mul(2).saturating_add(call.saturating_mul(4));
    let exec = cfg.actions.exec.values().map(|e| e.timeout).max().unwrap_or_default();
    flatten.max(exec).saturating_add(call.saturating_mul(2)).max(Duration::from_secs(2))
}

fn describe_schedule(s: &Schedule) -> String {
    match s {
        Schedule::Every(d) => format!("every {}", crate::config::duration::format(*d)),
        Schedule::Cron { source, tz, .. } => format!("cron `{source}` ({tz})"),
    }
}

/// Removes the temp files that killed tradewarden processes left in the folders it writes
/// atomically: the state directory, the outbox, `fix_state`'s backups, and the folders of the
/// bot's files (`fix_state` writes its temp file beside them). Returns how many.
fn sweep(cfg: &Config) -> usize {
    let removed: Vec<std::path::PathBuf> = sweep_dirs(cfg).iter().flat_map(|d| sweep_temp_files(d)).collect();
    for f in &removed {
        tracing::info!(file = %f.display(), "Removed a temp file an interrupted write left behind.");
    }
    removed.len()
}

/// The folders [`sweep`] cleans.
fn sweep_dirs(cfg: &Config) -> Vec<std::path::PathBuf> {
    let mut dirs = vec![cfg.state_dir.clone(), cfg.state_dir.join(Outbox::DIR), cfg.state_dir.join("backups")];
    let sources = std::iter::once(&cfg.bot.positions.source).chain(cfg.bot.metadata.as_ref().map(|m| &m.source));
    let real_root = std::fs::canonicalize(&cfg.bot.root).ok();
    for source in sources {
        if let BotSource::File(rel) = source {
            let path = cfg.bot.root.join(rel);
            if let Some(dir) = path.parent() {
                dirs.push(dir.to_owned());
            }
            // `fix_state` writes beside the file a symlink leads to (inside the root).
            if let (Ok(real), Some(root)) = (std::fs::canonicalize(&path), &real_root)
                && real.starts_with(root)
                && let Some(dir) = real.parent()
            {
                dirs.push(dir.to_owned());
            }
        }
    }
    dirs.sort();
    dirs.dedup();
    dirs
}

/// Descriptors kept free for the watchdog's own work (broker sockets, bot files, logs, the
/// state directory, SMTP) however many status connections are open.
pub const RESERVED_DESCRIPTORS: u64 = 64;

/// Raises the soft `RLIMIT_NOFILE` to the hard limit: a watchdog that runs out of descriptors
/// is blind (it cannot open a socket to the broker nor a log file), and the soft limit systemd
/// or a shell hands out (often 1024) is a convention, not what the system allows. Returns the
/// soft limit in force afterwards (`None`: unlimited).
fn raise_nofile_limit() -> Option<u64> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let before = getrlimit(Resource::Nofile);
    // An unlimited hard limit cannot be the soft one (Linux caps it at fs.nr_open): keep it.
    if let Some(hard) = before.maximum
        && before.current.is_some_and(|soft| soft < hard)
    {
        match setrlimit(Resource::Nofile, Rlimit { current: Some(hard), maximum: Some(hard) }) {
            Ok(()) => tracing::info!(from = before.current, to = hard, "Raised the open-file limit to the hard limit."),
            Err(e) => tracing::warn!(error = %e, soft = before.current, hard, "Cannot raise the open-file limit."),
        }
    }
    getrlimit(Resource::Nofile).current
}

/// The requests a minute a schedule of `interval` needs at five a cycle; `None` for a zero
/// interval (never: schedules are validated).
fn requests_per_minute(interval: Duration) -> Option<u64> {
    let ms = u64::try_from(interval.as_millis()).ok().filter(|&ms| ms > 0)?;
    Some(300_000_u64.div_ceil(ms))
}

/// The status server's connection cap: `[server] max_connections`, but never more than the
/// descriptors left after [`RESERVED_DESCRIPTORS`] (at least one, so the server still answers).
#[must_use]
pub fn connection_cap(configured: usize, nofile: Option<u64>) -> usize {
    match nofile {
        None => configured,
        Some(n) => {
            let spare = usize::try_from(n.saturating_sub(RESERVED_DESCRIPTORS)).unwrap_or(usize::MAX);
            configured.min(spare).max(1)
        }
    }
}

/// Why the watchdog could not start (the command line prints it and exits 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StartError(String);

fn fail(message: impl std::fmt::Display) -> Result<(), StartError> {
    Err(StartError(message.to_string()))
}

/// Runs the daemon until `max_cycles` cycles ran or a stop signal.
///
/// # Errors
/// When it could not start: signal handlers, the state lock, the broker, the status server.
pub async fn run(cfg: Config, max_cycles: Option<u64>) -> Result<(), StartError> {
    let nofile = raise_nofile_limit();
    let mut shutdown = match signals::install() {
        Ok(s) => s,
        Err(e) => return fail(format!("cannot install signal handlers: {e}")),
    };
    let lock = match StateLock::acquire(&cfg.state_dir) {
        Ok(l) => l,
        Err(LockError::Held { dir, pid }) => {
            let pid = pid.map_or_else(|| "pid unknown".to_owned(), |p| format!("pid {p}"));
            return fail(format!("another tradewarden run holds {} ({pid})", dir.display()));
        }
        Err(e) => return fail(e),
    };
    let broker = match crate::collect::broker::Broker::for_config(&cfg, None) {
        Ok(b) => b,
        Err(e) => return fail(e),
    };
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let now = clock.now();
    let interval = cfg.schedule.nominal_interval(now);
    if let crate::collect::broker::Broker::Alpaca(_) = &broker
        && let Some(needed) = requests_per_minute(interval)
        && needed > u64::from(cfg.broker.max_requests_per_minute)
    {
        tracing::warn!(
            needed,
            budget = cfg.broker.max_requests_per_minute,
            "The schedule needs about {needed} requests a minute (five a cycle) but [broker] \
             max_requests_per_minute is {}: cycles will be slowed to the budget.",
            cfg.broker.max_requests_per_minute
        );
    }
    let policy = retry_policy(interval);
    let mailer = match Mailer::from_config(&cfg.alerts.email, policy.send_timeout) {
        Ok(m) => m,
        Err(e) => return fail(e),
    };
    let heartbeat = match cfg.alerts.heartbeat_url.as_deref().map(Heartbeat::new).transpose() {
        Ok(h) => h,
        Err(e) => return fail(e),
    };
    let host = host_name();
    let mut view = StatusView::new(
        now,
        host.clone(),
        cfg.path.display().to_string(),
        status::health_interval(&cfg.schedule, now, Duration::ZERO),
    );
    view.blind_after = cfg.server.blind_after;
    let shared = Arc::new(Shared { view: RwLock::new(view), clock: clock.clone() });

    let mut server = None;
    if let Some(addr) = cfg.server.listen {
        let listener = match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => l,
            Err(e) => return fail(format!("cannot listen on {addr} ([server] listen): {e}")),
        };
        let bound = listener.local_addr().unwrap_or(addr);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let limits = crate::server::Limits {
            header_timeout: cfg.server.header_timeout,
            max_connections: connection_cap(cfg.server.max_connections, nofile),
        };
        let hosts = crate::server::AllowedHosts::new(Some(bound), &cfg.server.allowed_hosts);
        let task = tokio::spawn(crate::server::serve(listener, shared.clone(), limits, hosts, async move {
            let _ = stopped.await;
        }));
        tracing::info!(
            url = %format!("http://{bound}/"),
            max_connections = limits.max_connections,
            open_file_limit = nofile,
            "Status server listening."
        );
        server = Some((stop, task));
    }

    sweep(&cfg);
    let mut carry = Vec::new();
    let loaded = AlertBook::load(&cfg.state_dir, now);
    if let Some(p) = loaded.problem {
        tracing::warn!(problem = %p, "Alert state unusable.");
        carry.push(p);
    }
    let mut actor = Actor::new(&cfg, &broker);
    let mut tally = Tally::default();
    // Recovered actions are news: they join the first cycle's report and email.
    let carry_actions = actor.recover(now).await;
    tally.add(&carry_actions);
    let outbox = Outbox::new(&cfg.state_dir).with_policy(policy);
    let left = outbox.flush(&mailer, now).await;
    if !left.delivered.is_empty() || left.queued > 0 {
        tracing::info!(
            delivered = left.delivered.len(),
            still_queued = left.queued,
            "Flushed the outbox left by a previous run."
        );
    }
    carry.extend(left.problems);
    let last_delivery = (!left.delivered.is_empty()).then_some(now);

    tracing::info!(
        config = %cfg.path.display(),
        state_dir = %cfg.state_dir.display(),
        schedule = %describe_schedule(&cfg.schedule),
        mode = %broker.mode(),
        email = %mailer.describe(),
        alerts = loaded.value.alerts.len(),
        pid = std::process::id(),
        "Watchdog started."
    );
    let grace = grace(&cfg);
    let schedule = cfg.schedule.clone();
    let mut daemon = Daemon {
        cfg,
        broker,
        clock: clock.clone(),
        mailer,
        outbox,
        actor,
        book: loaded.value,
        shared,
        heartbeat,
        host,
        tally,
        carry,
        carry_actions,
        audits_cap: journal::CAP,
        last_delivery,
    };
    let end = schedule::run_loop(&schedule, &*clock, max_cycles, grace, &mut shutdown, &mut daemon).await;

    for p in daemon.outbox.write_held_now() {
        tracing::error!(problem = %p, "An email held in memory cannot be written at exit.");
    }
    if let Err(e) = daemon.persist() {
        tracing::error!(error = %e, "Cannot save the alert state at exit.");
    }
    if let Some((stop, task)) = server {
        let _ = stop.send(());
        if tokio::time::timeout(Duration::from_secs(3), task).await.is_err() {
            tracing::warn!("The status server did not stop within 3 s.");
        }
    }
    drop(lock);
    let why = match end.stopped {
        Stopped::MaxCycles => "--max-cycles reached",
        Stopped::Requested => "stop requested",
        Stopped::ScheduleEnded => "the schedule has no further fire time",
    };
    let last = match end.last {
        None => "none",
        Some(schedule::CycleEnd::Finished) => "finished",
        Some(schedule::CycleEnd::Abandoned) => "abandoned at the stop",
    };
    tracing::info!(cycles = end.cycles, last_cycle = last, reason = why, "Watchdog stopped.");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedules_request_rate_is_five_a_cycle() {
        assert_eq!(requests_per_minute(Duration::from_secs(1)), Some(300), "every 1s: over the default 100");
        assert_eq!(requests_per_minute(Duration::from_secs(30)), Some(10));
        assert_eq!(requests_per_minute(Duration::from_secs(7)), Some(43), "rounded up");
        assert_eq!(requests_per_minute(Duration::ZERO), None);
    }

    #[test]
    fn the_connection_cap_leaves_descriptors_for_the_watchdog() {
        assert_eq!(connection_cap(64, Some(1024)), 64);
        assert_eq!(connection_cap(64, Some(100)), 36, "100 descriptors, 64 reserved");
        assert_eq!(connection_cap(64, Some(10)), 1, "the server still answers one probe");
        assert_eq!(connection_cap(64, None), 64);
    }

    #[test]
    fn the_sweep_covers_the_folder_a_bot_file_links_to_inside_the_root_only() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("bot");
        std::fs::create_dir_all(root.join("state")).unwrap();
        std::fs::create_dir_all(root.join("data")).unwrap();
        std::fs::write(root.join("data/positions.json"), "{}").unwrap();
        std::os::unix::fs::symlink("../data/positions.json", root.join("state/positions.json")).unwrap();
        let outside = dir.path().join("elsewhere");
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("meta.json"), "{}").unwrap();
        std::os::unix::fs::symlink(outside.join("meta.json"), root.join("state/meta.json")).unwrap();
        std::fs::write(dir.path().join("rules.toml"), "").unwrap();
        std::fs::write(
            dir.path().join("tradewarden.toml"),
            "state_dir = \"st\"\nrules = [\"rules.toml\"]\n[bot]\nroot = \"bot\"\n\
             [bot.positions]\nfile = \"state/positions.json\"\n[bot.metadata]\nfile = \"state/meta.json\"\n",
        )
        .unwrap();
        let cfg = Config::load(&dir.path().join("tradewarden.toml")).unwrap();
        let dirs = sweep_dirs(&cfg);
        let real = |p: &std::path::Path| std::fs::canonicalize(p).unwrap();
        assert!(dirs.contains(&real(&root.join("data"))), "the linked file's folder: {dirs:?}");
        assert!(dirs.contains(&root.join("state")), "{dirs:?}");
        let outside = real(&outside);
        assert!(!dirs.iter().any(|d| d.starts_with(&outside)), "never a folder outside the root: {dirs:?}");
        // A temp file a killed fix left beside the linked file is removed.
        let pid = 2_000_000_000_u32; // no such process
        let litter = root.join(format!("data/.positions.json.tradewarden-{pid}-0.tmp"));
        std::fs::write(&litter, "{}").unwrap();
        assert_eq!(sweep(&cfg), 1);
        assert!(!litter.exists());
    }
}
