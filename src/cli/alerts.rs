//! `tradewarden alerts test`: queue a test message and try to deliver it right away.
//! `tradewarden alerts history`: the alert transitions the daemon logged (`alert_events.jsonl`).

use std::fmt::Write as _;
use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::Subcommand;

use super::{ConfigArg, exit, load, print};
use crate::alert::AlertEvent;
use crate::notify::{Channel, Mailer, MessageContext, Outbox, RetryPolicy, host_name, render_test};

/// Exit code when the test message could not be delivered and stays queued.
pub const QUEUED: u8 = 1;

/// `alerts` subcommands.
#[derive(Debug, Subcommand)]
pub enum AlertsCommand {
    /// Send a test email through the configured transport (exit 0 delivered, 1 queued for retry).
    Test {
        #[command(flatten)]
        config: ConfigArg,
    },
    /// List alert transitions (pending, firing, resolved, inactive) the watchdog logged, oldest
    /// first.
    History {
        #[command(flatten)]
        config: ConfigArg,
        /// How far back, like `30m`, `24h` or `7d`.
        #[arg(long, value_name = "DURATION", default_value = "24h", value_parser = parse_since)]
        since: Duration,
    },
}

fn parse_since(s: &str) -> Result<Duration, String> {
    let d = crate::duration::parse_config(s)?;
    if d.is_zero() { Err("the duration must be more than zero".into()) } else { Ok(d) }
}

/// Runs an `alerts` subcommand; the exit code.
///
/// # Errors
/// Unexpected failures writing to stdout.
pub async fn run(command: AlertsCommand, now: DateTime<Utc>) -> anyhow::Result<u8> {
    match command {
        AlertsCommand::History { config, since } => history(&config, since, now),
        AlertsCommand::Test { config } => {
            let cfg = match load(&config.config) {
                Ok(c) => c,
                Err(code) => return Ok(code),
            };
            let policy = RetryPolicy::default();
            let mailer = match Mailer::from_config(&cfg.alerts.email, policy.send_timeout) {
                Ok(m) => m,
                Err(e) => {
                    eprintln!("error: {e}");
                    return Ok(exit::ERROR);
                }
            };
            let host = host_name();
            let ctx = MessageContext {
                host: &host,
                config_path: &cfg.path,
                status_url: cfg.server.external_url.as_deref(),
                firing_total: None,
                mode: None,
                now,
            };
            let rendered = render_test(&ctx, &mailer.describe());
            let outbox = Outbox::new(&cfg.state_dir).with_policy(policy);
            let msg = match outbox.queue(&mailer, &rendered, now) {
                Ok(m) => m,
                Err(e) => {
                    eprintln!("error: cannot queue the test message: {e}");
                    return Ok(exit::ERROR);
                }
            };
            let report = outbox.deliver(&mailer, &msg.id, now).await.unwrap_or_default();
            if let Some(d) = report.delivered.first() {
                print(&format!(
                    "test message {} delivered to {}: {}\n",
                    d.message_id,
                    cfg.alerts.email.to.join(", "),
                    d.receipt
                ))?;
                for p in &report.problems {
                    eprintln!("warning: {p}");
                }
                return Ok(exit::CLEAN);
            }
            let why = report.failed.first().map_or_else(|| "unknown error".to_owned(), |f| f.error.message.clone());
            let next = report
                .failed
                .first()
                .map(|f| format!(" (next attempt after {})", f.next_attempt_at.format("%Y-%m-%d %H:%M:%S UTC")))
                .unwrap_or_default();
            print(&format!(
                "test message {} NOT delivered via {}: {why}\nit stays queued in {} and will be retried by `tradewarden run`{next}\n",
                msg.message_id,
                mailer.describe(),
                outbox.path_of(&msg.id).display(),
            ))?;
            Ok(QUEUED)
        }
    }
}

/// `alerts history`: the transitions logged since `now - since`, oldest first.
fn history(config: &ConfigArg, since: Duration, now: DateTime<Utc>) -> anyhow::Result<u8> {
    let cfg = match load(&config.config) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    let path = cfg.state_dir.join(crate::alert::event::FILE);
    let lines = match crate::alert::event::read(&cfg.state_dir) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: cannot read `{}`: {e}", path.display());
            return Ok(exit::ERROR);
        }
    };
    if lines.skipped > 0 {
        eprintln!(
            "warning: {} line{} of `{}` (or its `.1`) are not transition records and were skipped",
            lines.skipped,
            if lines.skipped == 1 { "" } else { "s" },
            path.display()
        );
    }
    let from = chrono::Duration::from_std(since)
        .ok()
        .and_then(|d| now.checked_sub_signed(d))
        .unwrap_or(DateTime::<Utc>::MIN_UTC);
    let events: Vec<&AlertEvent> = lines.records.iter().filter(|e| e.at >= from).collect();
    print(&render_history(&events, from, &path, path.exists()))?;
    Ok(exit::CLEAN)
}

/// The history as text: one line per transition, or a sentence saying why there is none.
fn render_history(events: &[&AlertEvent], from: DateTime<Utc>, path: &std::path::Path, exists: bool) -> String {
    let when = from.format("%Y-%m-%d %H:%M:%S UTC");
    if events.is_empty() {
        return if exists {
            format!("no alert transitions since {when}\n")
        } else {
            format!(
                "no alert transitions yet: `{}` does not exist (it is written by `tradewarden run`)\n",
                path.display()
            )
        };
    }
    let mut out = format!("alert transitions since {when} (oldest first):\n");
    for e in events {
        let from = e.from.map(|p| format!(" (was {p})")).unwrap_or_default();
        let silenced = if e.silenced { " [silenced]" } else { "" };
        let _ = writeln!(
            out,
            "{}  {:<8}  {:<8}  {}  {}: {}{from}{silenced}",
            e.at.format("%Y-%m-%d %H:%M:%S UTC"),
            e.event.as_str(),
            e.severity.as_str(),
            e.fingerprint,
            e.code,
            one_line(&e.message),
        );
    }
    out
}

/// Control characters (a newline in a message) out, so a record stays one line.
fn one_line(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}
