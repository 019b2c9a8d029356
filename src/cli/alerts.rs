//! `tradewarden alerts test`: queue a test message and try to deliver it right away.

use chrono::{DateTime, Utc};
use clap::Subcommand;

use super::{ConfigArg, exit, load, print};
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
}

/// Runs an `alerts` subcommand; the exit code.
///
/// # Errors
/// Unexpected failures writing to stdout.
pub async fn run(command: AlertsCommand, now: DateTime<Utc>) -> anyhow::Result<u8> {
    match command {
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
            let ctx = MessageContext { host: &host, config_path: &cfg.path, mode: None, now };
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
