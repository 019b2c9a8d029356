//! `tradewarden demo`: the phantom-exit incident of field notes §1, end to end, with no
//! credentials and no network: an in-process simulator on loopback seeded with the incident, a
//! bot directory and a configuration written to disk, an audit, the remediation in act mode
//! (flatten the shorts), a second audit, and the alert email through the file transport.
//!
//! Like `cli.rs` this is a command at the binary's edge, so it reports errors with anyhow.

use std::fmt::Write as _;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use chrono::{DateTime, Duration, Utc};
use serde_json::json;

use crate::act::{ActionReport, Actor, Manual};
use crate::alert::{AlertBook, step};
use crate::clock::{Clock, SystemClock};
use crate::collect::broker::Broker;
use crate::collect::broker::alpaca::AlpacaClient;
use crate::config::Config;
use crate::engine::Evaluated;
use crate::model::Snapshot;
use crate::notify::{ActionNote, Mailer, MessageContext, Outbox, host_name, render};
use crate::report::{Report, render_text};
use crate::sim::{Scenario, spawn};

/// The default pack, written into the demo directory.
const DEFAULT_RULES: &str = include_str!("../../rules/default.toml");

/// The shorts the runner opened by "exiting" positions it no longer held (field notes §1).
const SHORTS: [(&str, u32, &str, &str); 4] = [
    ("CHWY", 1596, "38.10", "40.00"),
    ("BILL", 413, "83.00", "85.00"),
    ("COIN", 72, "325.00", "330.00"),
    ("OKTA", 170, "108.00", "110.00"),
];

/// What the demo left behind, for the closing summary.
#[derive(Debug)]
pub struct DemoOutcome {
    /// Critical findings before and after the remediation.
    pub critical_before: usize,
    /// Critical findings after.
    pub critical_after: usize,
    /// The .eml file written, if the email went out.
    pub email: Option<PathBuf>,
}

fn scenario(now: DateTime<Utc>) -> String {
    let mut positions = vec![json!({"symbol": "AAPL", "qty": "10", "avg_entry_price": "187.25"})];
    let mut prices = serde_json::Map::new();
    prices.insert("AAPL".into(), json!("190.10"));
    for (sym, qty, entry, price) in SHORTS {
        positions.push(json!({"symbol": sym, "qty": format!("-{qty}"), "avg_entry_price": entry}));
        prices.insert(sym.into(), json!(price));
    }
    // One more "exit" is already on its way: a resting sell that would deepen the CHWY short.
    let order = json!({"symbol": "CHWY", "side": "sell", "qty": "1596", "type": "limit", "limit_price": "45.00",
                       "submitted_at": (now - Duration::minutes(2)).to_rfc3339()});
    serde_json::to_string_pretty(&json!({
        "account": {"cash": "214305"},
        "positions": positions,
        "orders": [order],
        "prices": prices,
        "clock": {"is_open": true},
        "configurations": {"no_shorting": false, "suspend_trade": false},
    }))
    .expect("static JSON")
}

/// Writes the bot's directory: it still tracks all five positions as longs.
fn write_bot(root: &Path, now: DateTime<Utc>) -> anyhow::Result<()> {
    std::fs::create_dir_all(root.join("state"))?;
    std::fs::create_dir_all(root.join("logs"))?;
    let mut opens = serde_json::Map::new();
    let mut meta = serde_json::Map::new();
    opens.insert("AAPL".into(), json!({"qty": 10, "entry_price": "187.25", "strategy": "rsi_reversion"}));
    for (sym, qty, entry, _) in SHORTS {
        opens.insert(sym.into(), json!({"qty": qty, "entry_price": entry, "strategy": "rsi_reversion"}));
    }
    for sym in opens.keys() {
        meta.insert(sym.clone(), json!({"entry_score": 0.74, "entry_ts": (now - Duration::hours(5)).to_rfc3339(), "components": {"rsi": 0.4, "trend": 0.3}}));
    }
    let state = json!({"updated_at": (now - Duration::seconds(20)).to_rfc3339(), "opens": opens});
    std::fs::write(root.join("state/executor_state.json"), serde_json::to_string_pretty(&state)?)?;
    std::fs::write(root.join("state/position_metadata.json"), serde_json::to_string_pretty(&meta)?)?;
    let mut run = String::new();
    let mut exits = String::new();
    for m in (1..=180).rev() {
        let t = (now - Duration::minutes(m)).to_rfc3339();
        let _ = writeln!(run, "{}", json!({"ts": t, "event": "CYCLE", "positions": 5}));
        if m % 10 == 0 {
            let _ = writeln!(
                exits,
                "{}",
                json!({"ts": t, "event": "EXIT_EVAL", "symbol": "CHWY", "decision": "exit", "rsi": 71.3})
            );
        }
    }
    std::fs::write(root.join("logs/run.jsonl"), run)?;
    std::fs::write(root.join("logs/exits.jsonl"), exits)?;
    Ok(())
}

fn write_config(dir: &Path, url: &str) -> anyhow::Result<PathBuf> {
    // The default pack, plus the broker-side guard as the `account` rule's action.
    let rules = DEFAULT_RULES.replace(
        "expect_no_shorting = true\n",
        "expect_no_shorting = true\nactions = [\"enforce_no_shorting\"]   # added by the demo\n",
    );
    std::fs::write(dir.join("default.toml"), rules)?;
    let cfg = format!(
        r#"# Written by `tradewarden demo`: the stock-bot layout beside a local simulator.
state_dir = "state"
rules = ["default.toml"]

[broker]
kind = "alpaca"
base_url = "{url}"        # the demo's simulator (gone when the demo ends)
timeout = "5s"

[bot]
root = "bot"
long_only = true

[bot.positions]
file = "state/executor_state.json"
at = "/opens"
qty = "qty"
entry_price = "entry_price"

[bot.metadata]
file = "state/position_metadata.json"

[logs.run]
file = "logs/run.jsonl"
time = "ts"

[logs.exits]
file = "logs/exits.jsonl"
time = "ts"

[alerts.email]
transport = "file"
dir = "state/mail"
from = "tradewarden@demo.local"
to = ["operator@demo.local"]

[actions]
mode = "act"                 # the demo acts; the default is "observe"
max_per_day = 10
cooldown = "1m"
confirm_timeout = "5s"

[actions.fix_state]
quiet_for = "0s"             # the demo's bot is not running; beside a real bot keep the 30s default
template = {{ added_by = "tradewarden" }}

[server]
listen = ""
"#
    );
    let path = dir.join("tradewarden.toml");
    std::fs::write(&path, cfg)?;
    Ok(path)
}

struct Printer {
    color: bool,
}

impl Printer {
    fn step(&self, n: u8, text: &str) {
        let head = format!("[{n}/7]");
        if self.color {
            println!("\n\x1b[1;36m{head}\x1b[0m \x1b[1m{text}\x1b[0m");
        } else {
            println!("\n{head} {text}");
        }
    }
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("    {l}\n")).collect()
}

async fn audit(cfg: &Config, broker: &Broker, clock: &dyn Clock) -> anyhow::Result<(Snapshot, Evaluated, Report)> {
    let snap = crate::collect::collect(cfg, broker, clock).await?;
    let evaluated = crate::engine::evaluate(&cfg.rules, &snap, snap.taken_at);
    let report = Report::build(&snap, &evaluated);
    Ok((snap, evaluated, report))
}

/// The file the demo writes into a folder it created, so a later run may clear it.
pub const MARKER: &str = ".tradewarden-demo";

/// Makes `dir` the demo's: created (with the marker) when missing or empty; an existing folder
/// with anything in it is used only when it carries the marker, since the demo deletes `state`,
/// `bot` and `reports` and overwrites `tradewarden.toml` there (a user's files, otherwise).
fn claim_dir(dir: &Path) -> anyhow::Result<()> {
    let marker = dir.join(MARKER);
    if marker.is_file() {
        return Ok(());
    }
    let empty = match std::fs::read_dir(dir) {
        Ok(mut entries) => entries.next().is_none(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
        Err(e) => return Err(anyhow::anyhow!("cannot read {}: {e}", dir.display())),
    };
    if !empty {
        anyhow::bail!(
            "{} is not empty and was not created by `tradewarden demo` (no {MARKER} file): refusing to \
             delete or overwrite anything in it; choose a new folder with --dir",
            dir.display()
        );
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    std::fs::write(&marker, "written by `tradewarden demo`: it may clear state/, bot/, reports/ here\n")
        .with_context(|| format!("cannot write {}", marker.display()))?;
    Ok(())
}

/// Runs the demo in `dir`, printing as it goes.
///
/// # Errors
/// When the demo directory cannot be written or the simulator cannot start.
pub async fn run(dir: &Path) -> anyhow::Result<DemoOutcome> {
    let started = Instant::now();
    let clock = SystemClock;
    let p = Printer { color: std::io::stdout().is_terminal() };
    let now = clock.now();
    claim_dir(dir)?;
    let dir = std::path::absolute(dir)?;
    // A fresh run: the demo owns these paths (the marker proves it wrote them).
    for sub in ["state", "bot", "reports"] {
        let _ = std::fs::remove_dir_all(dir.join(sub));
    }
    println!("tradewarden demo: the phantom-exit short of the field notes, end to end, on a local simulator");
    println!("(no credentials, no network; everything is written under {})", dir.display());

    let scenario_text = scenario(now);
    std::fs::write(dir.join("scenario.json"), &scenario_text)?;
    let sim = spawn(Scenario::from_json(&scenario_text).map_err(anyhow::Error::msg)?, "127.0.0.1:0".parse()?).await?;
    p.step(1, &format!("A simulated Alpaca paper account is listening on {}", sim.url()));
    println!("    The bot's exit signals sold CHWY, BILL, COIN and OKTA after those longs were already closed:");
    println!("    each sell opened a short, and one more sell (CHWY 1596) is still open.");

    write_bot(&dir.join("bot"), now)?;
    let cfg_path = write_config(&dir, &sim.url())?;
    let cfg = Config::load(&cfg_path).map_err(|e| anyhow::anyhow!("{e}"))?;
    p.step(2, "Wrote the bot's directory (it still tracks five longs) and a configuration");
    println!(
        "    {}\n    {}\n    {}",
        cfg_path.display(),
        dir.join("bot/state/executor_state.json").display(),
        dir.join("default.toml").display()
    );

    let demo_keys = |name: &str| match name {
        "APCA_API_KEY_ID" => Some("demo-key".to_owned()),
        "APCA_API_SECRET_KEY" => Some("demo-secret".to_owned()),
        _ => None,
    };
    let client = AlpacaClient::from_lookup(&cfg.broker, demo_keys).map_err(|e| anyhow::anyhow!("{e}"))?;
    let broker = Broker::Alpaca(client);

    let (snap, evaluated, before) = audit(&cfg, &broker, &clock).await?;
    std::fs::create_dir_all(dir.join("reports"))?;
    std::fs::write(dir.join("reports/before.json"), before.to_json())?;
    let snapshot_dir = dir.join("reports/incident-snapshot");
    std::fs::create_dir_all(&snapshot_dir)?;
    if let Err(e) = crate::collect::record::write_snapshot(&cfg, &snap, &cfg.bot.root, &snapshot_dir) {
        tracing::warn!("could not record the incident snapshot: {e}");
    }
    p.step(3, "Audit: what tradewarden sees");
    print!("{}", indent(&render_text(&before, p.color)));

    let (book, notes) = step(&AlertBook::default(), &cfg.rules, &evaluated, &[], &cfg.alerts, snap.taken_at);
    p.step(4, "Remediation in act mode: the firing alerts' actions, behind the safety gates");
    let mut actor = Actor::new(&cfg, &broker);
    let actions = actor.on_cycle(&cfg, &book, &snap, &evaluated, clock.now()).await;
    if actions.is_empty() {
        println!("    no action was due");
    }
    for a in &actions {
        print_action(a);
    }

    p.step(5, "Repair the bot's state to match the broker (fix_state, the same gates as `tradewarden fix`)");
    let mut repaired = None;
    match actor.preview(&cfg, &Manual::Fix, clock.now()).await {
        Ok(preview) => {
            if let Some(diff) = preview.diff() {
                print!("{}", indent(&diff));
            }
            let (report, _) = actor.run_manual(&cfg, &Manual::Fix, &preview, clock.now()).await;
            print_action(&report);
            repaired = Some(report);
        }
        Err(why) => println!("    nothing to repair: {why}"),
    }

    let (_, _, after) = audit(&cfg, &broker, &clock).await?;
    std::fs::write(dir.join("reports/after.json"), after.to_json())?;
    p.step(6, "Audit again, after the remediation");
    print!("{}", indent(&render_text(&after, p.color)));

    let mut all_actions = actions.clone();
    all_actions.extend(repaired);
    let action_notes: Vec<ActionNote> = all_actions
        .iter()
        .map(|a| ActionNote {
            fingerprint: Some(format!("{}/{}", a.rule, a.subject)),
            description: format!("{} {}: {} ({})", a.action, a.subject, a.detail, a.result),
            taken: a.result == "done",
            detail: a.diff.clone(),
            done: a.done_word().map(str::to_owned),
        })
        .collect();
    let host = host_name();
    let ctx = MessageContext {
        host: &host,
        config_path: &cfg.path,
        status_url: cfg.server.external_url.as_deref(),
        firing_total: None,
        mode: Some(snap.mode),
        now: snap.taken_at,
    };
    let mut email = None;
    if let Some(rendered) = render(&notes, &action_notes, &ctx) {
        let mail_dir = dir.join("state/mail");
        let outbox = Outbox::new(&cfg.state_dir);
        outbox.enqueue(&rendered, &cfg.alerts.email.from, &cfg.alerts.email.to, snap.taken_at)?;
        let flushed = outbox.flush(&Mailer::file(&mail_dir), clock.now()).await;
        email = newest_eml(&mail_dir);
        p.step(7, "The alert email (file transport), as `tradewarden run` sends it");
        println!("    Subject: {}", rendered.subject);
        if let Some(path) = &email {
            println!("    {}", path.display());
        }
        for f in &flushed.failed {
            println!("    delivery failed: {f:?}");
        }
    }
    sim.shutdown().await?;

    let outcome =
        DemoOutcome { critical_before: before.summary.critical, critical_after: after.summary.critical, email };
    println!(
        "\nDone in {:.1} s. Critical findings: {} before, {} after.",
        started.elapsed().as_secs_f64(),
        outcome.critical_before,
        outcome.critical_after
    );
    println!("\nWhere to look:");
    println!("  reports   {}  and  after.json", dir.join("reports/before.json").display());
    if let Some(e) = &outcome.email {
        println!("  email     {}", e.display());
    }
    println!("  journal   {}", dir.join("state/actions.jsonl").display());
    println!("  snapshot  {}", dir.join("reports/incident-snapshot").display());
    println!("\nTry next:");
    let c = cfg_path.display();
    println!("  tradewarden audit -c {c} --replay {}", dir.join("reports/incident-snapshot").display());
    println!(
        "  tradewarden audit -c {c} --replay {} --format markdown",
        dir.join("reports/incident-snapshot").display()
    );
    println!("  tradewarden rules list -c {c}");
    println!("  tradewarden sim --scenario {} --listen 127.0.0.1:9465", dir.join("scenario.json").display());
    println!("  README.md: point tradewarden at your own bot with Alpaca paper keys, then `tradewarden run`.");
    std::io::stdout().flush()?;
    Ok(outcome)
}

fn print_action(a: &ActionReport) {
    let mark = match a.result.as_str() {
        "done" => "✓",
        "described" => "·",
        _ => "✗",
    };
    println!("    {mark} {} {} ({})", a.action, a.subject, a.result);
    for part in a.detail.split("; ") {
        println!("        {part}");
    }
}

fn newest_eml(dir: &Path) -> Option<PathBuf> {
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
        .max_by_key(|e| e.metadata().and_then(|m| m.modified()).ok())
        .map(|e| e.path())
}
