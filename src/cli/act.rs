//! `tradewarden flatten` and `tradewarden fix`: manual actions with the daemon's gates except
//! mode. Each first resolves interrupted intents, reads the broker (and the bot's files),
//! prints exactly what it will do, asks on a terminal unless `--yes` (without a terminal and
//! without `--yes` it refuses), then acts behind the live guard, the budget, the cooldown, a
//! fresh re-read (which must match what was shown), the journal and the confirmation.
//!
//! Whatever it did (an action taken, failed or unconfirmed, and interrupted actions it resolved)
//! is also sent like the daemon's notices: one message through the configured channel, queued
//! in the outbox first, so the rest of the team hears of a flatten run by hand too.
//!
//! Exit codes: 0 done (or nothing to do, or `--dry-run`), 1 failed or unconfirmed, 2 nothing
//! was done because a gate, the operator or the environment said no (live guard, budget,
//! cooldown, no terminal, declined, unreadable broker, bad configuration).

use std::io::{BufRead, IsTerminal, Write};

use chrono::Utc;
use clap::{ArgGroup, Args};

use super::{ConfigArg, exit, load, print};
use crate::act::{ActionReport, Actor, Manual, Preview, Status};
use crate::collect::broker::Broker;
use crate::config::Config;
use crate::model::Mode;
use crate::notify::{ActionNote, Channel, Mailer, MessageContext, Outbox, RetryPolicy, host_name, render};

/// Exit code: failed or unconfirmed.
pub const FAILED: u8 = 1;
/// Exit code: nothing done, refused.
pub const REFUSED: u8 = 2;

/// `tradewarden flatten`.
#[derive(Debug, Clone, Args)]
#[command(group(ArgGroup::new("what").required(true).args(["shorts_only", "all"])))]
pub struct FlattenArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Close short positions only (buy to cover); longs are never touched.
    #[arg(long)]
    pub shorts_only: bool,
    /// Close every position (with --symbol: those symbols, long or short).
    #[arg(long)]
    pub all: bool,
    /// Only this symbol (repeatable).
    #[arg(long = "symbol", value_name = "S")]
    pub symbols: Vec<String>,
    /// Print the plan and stop.
    #[arg(long)]
    pub dry_run: bool,
    /// Do not ask (required when stdin is not a terminal).
    #[arg(long)]
    pub yes: bool,
}

/// `tradewarden fix`.
#[derive(Debug, Clone, Args)]
pub struct FixArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Print the diff and stop.
    #[arg(long)]
    pub dry_run: bool,
    /// Do not ask (required when stdin is not a terminal).
    #[arg(long)]
    pub yes: bool,
}

/// Runs `tradewarden flatten`.
///
/// # Errors
/// I/O on stdout.
pub async fn flatten(args: FlattenArgs) -> anyhow::Result<u8> {
    let manual = Manual::Flatten { shorts_only: args.shorts_only, symbols: args.symbols.clone() };
    run(&args.config, &manual, args.dry_run, args.yes).await
}

/// Runs `tradewarden fix`.
///
/// # Errors
/// I/O on stdout.
pub async fn fix(args: FixArgs) -> anyhow::Result<u8> {
    run(&args.config, &Manual::Fix, args.dry_run, args.yes).await
}

fn setup(config: &ConfigArg) -> Result<(Config, Broker), u8> {
    let cfg = load(&config.config)?;
    let broker = Broker::for_config(&cfg, None).map_err(|e| {
        eprintln!("error: {e}");
        exit::ERROR
    })?;
    if let Broker::Replay(_) = broker {
        eprintln!("error: [broker] kind = \"replay\": a recorded snapshot cannot be acted on; nothing done");
        return Err(REFUSED);
    }
    Ok((cfg, broker))
}

async fn run(config: &ConfigArg, manual: &Manual, dry_run: bool, yes: bool) -> anyhow::Result<u8> {
    let (cfg, broker) = match setup(config) {
        Ok(x) => x,
        Err(code) => return Ok(code),
    };
    let mut actor = Actor::new(&cfg, &broker);
    // The live guard comes before anything is read: on a live account without allow_live,
    // nothing is touched at all (a dry run may still look).
    if !dry_run && let Some(why) = actor.live_refusal(&cfg) {
        eprintln!("refused: {why}; set allow_live = true in [actions] to act on a live account. Nothing done.");
        return Ok(REFUSED);
    }
    if dry_run {
        // A dry run writes nothing, the journal included: resolving the daemon's interrupted
        // actions here would journal them "recovered" and show them only on this terminal, so
        // the daemon would never report them. It only says they are there.
        let pending = crate::act::journal::Journal::new(&cfg.state_dir).read().map(|l| l.unresolved().len());
        match pending {
            Ok(0) => {}
            Ok(n) => eprintln!(
                "note: {n} interrupted action(s) in the journal are unresolved; a dry run leaves them for the \
                 daemon (or a real run) to resolve and report"
            ),
            Err(e) => eprintln!("note: cannot read the action journal ({e}); a dry run leaves it as it is"),
        }
    } else {
        let recovered = actor.recover(Utc::now()).await;
        for r in &recovered {
            eprintln!("recovery: {} {}: {}", r.action, r.result, r.detail);
        }
        tell(&cfg, broker.mode(), &recovered).await;
    }
    if actor.has_unresolved() && !dry_run {
        eprintln!("refused: an interrupted action in the journal could not be resolved; nothing done");
        return Ok(REFUSED);
    }
    let preview = match actor.preview(&cfg, manual, Utc::now()).await {
        Ok(p) => p,
        Err(why) => {
            eprintln!("error: {why}; nothing done");
            return Ok(REFUSED);
        }
    };
    print(&render_preview(manual, &preview))?;
    if preview.plan().is_empty() {
        print("Nothing to do.\n")?;
        return Ok(exit::CLEAN);
    }
    if dry_run {
        print("Dry run: nothing sent to the broker, no bot file written.\n")?;
        return Ok(exit::CLEAN);
    }
    if !yes {
        if !std::io::stdin().is_terminal() {
            eprintln!(
                "refused: stdin is not a terminal, so there is no one to ask; pass --yes to proceed. Nothing done."
            );
            return Ok(REFUSED);
        }
        if !ask().await? {
            eprintln!("Declined. Nothing done.");
            return Ok(REFUSED);
        }
    }
    let (report, nothing_to_do) = actor.run_manual(&cfg, manual, &preview, Utc::now()).await;
    print(&render_report(&report))?;
    tell(&cfg, broker.mode(), std::slice::from_ref(&report)).await;
    Ok(code(&report, nothing_to_do))
}

/// Sends what was done (taken, failed, unconfirmed or recovered) and every interrupted action
/// found (an `action_interrupted` finding, resolved or not: an order may have gone out) as one
/// message through the configured channel: queued in the outbox, then tried once; one that
/// cannot go now stays queued for `tradewarden run` to retry. A refusal that did nothing is the
/// terminal's business only. Best effort: it never changes the exit code, and says on stderr
/// what became of it.
async fn tell(cfg: &Config, mode: Mode, reports: &[ActionReport]) {
    let interrupted = |r: &ActionReport| r.finding.as_ref().is_some_and(|f| f.code == "action_interrupted");
    let notes: Vec<ActionNote> = reports
        .iter()
        .filter(|r| {
            interrupted(r)
                || matches!(r.status(), Some(Status::Done | Status::Failed | Status::Unconfirmed | Status::Recovered))
        })
        .map(|r| {
            let finding = r.finding.as_ref().map_or_else(String::new, |f| {
                format!(" [{} {}: {}]", f.severity.as_str().to_uppercase(), f.code, f.message)
            });
            ActionNote {
                fingerprint: Some(format!("{}/{}", r.rule, r.subject)),
                description: format!("{} ({}, by hand): {}{finding}", r.action, r.result, r.detail),
                taken: true,
                detail: r.diff.clone(),
                done: r.done_word().map(str::to_owned),
            }
        })
        .collect();
    let now = Utc::now();
    let host = host_name();
    let ctx = MessageContext {
        host: &host,
        config_path: &cfg.path,
        status_url: cfg.server.external_url.as_deref(),
        firing_total: None,
        mode: Some(mode),
        now,
    };
    let Some(rendered) = render(&[], &notes, &ctx) else { return };
    let policy = RetryPolicy::default();
    let mailer = match Mailer::from_config(&cfg.alerts.email, policy.send_timeout) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("warning: the action notice cannot be sent: {e}");
            return;
        }
    };
    let outbox = Outbox::new(&cfg.state_dir).with_policy(policy);
    let msg = match outbox.queue(&mailer, &rendered, now) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("warning: the action notice cannot be queued: {e}");
            return;
        }
    };
    let report = outbox.deliver(&mailer, &msg.id, now).await.unwrap_or_default();
    if report.delivered.is_empty() {
        let why = report.failed.first().map_or_else(|| "unknown error".to_owned(), |f| f.error.message.clone());
        eprintln!(
            "notice {} not sent via {} ({why}); it stays queued for `tradewarden run` to retry",
            msg.message_id,
            mailer.describe()
        );
    } else {
        eprintln!("notice {} sent via {}", msg.message_id, mailer.describe());
    }
}

fn code(report: &ActionReport, nothing_to_do: bool) -> u8 {
    match report.status() {
        Some(Status::Done) => exit::CLEAN,
        Some(Status::Skipped) if nothing_to_do => exit::CLEAN,
        Some(Status::Failed | Status::Unconfirmed) => FAILED,
        _ => REFUSED,
    }
}

fn render_preview(manual: &Manual, p: &Preview) -> String {
    let mut s = String::new();
    let what = match manual {
        Manual::Flatten { shorts_only: true, .. } => "flatten (shorts only)",
        Manual::Flatten { shorts_only: false, .. } => "flatten (all)",
        Manual::Fix => "fix",
    };
    if !p.plan().is_empty() {
        s.push_str(&format!("tradewarden {what} will:\n"));
        for (i, step) in p.plan().step_texts().iter().enumerate() {
            s.push_str(&format!("  {}. {step}\n", i + 1));
        }
    }
    for n in &p.plan().notes {
        s.push_str(&format!("  note: {n}\n"));
    }
    if let Some(d) = p.diff().filter(|d| !d.is_empty()) {
        s.push('\n');
        s.push_str(&d);
        if !d.ends_with('\n') {
            s.push('\n');
        }
    }
    s
}

fn render_report(r: &ActionReport) -> String {
    let mut s = format!("{}: {}: {}\n", r.action, r.result, r.detail);
    if let Some(id) = &r.journal_id {
        s.push_str(&format!("journal id: {id}\n"));
    }
    if let Some(f) = &r.finding {
        s.push_str(&format!("{} {}: {}\n", f.severity.as_str().to_uppercase(), f.code, f.message));
    }
    s
}

async fn ask() -> anyhow::Result<bool> {
    eprint!("Proceed? [y/N] ");
    std::io::stderr().flush()?;
    let line = tokio::task::spawn_blocking(|| {
        let mut l = String::new();
        std::io::stdin().lock().read_line(&mut l).map(|_| l)
    })
    .await??;
    Ok(matches!(line.trim().to_ascii_lowercase().as_str(), "y" | "yes"))
}
