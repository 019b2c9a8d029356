//! Remediation against the real simulator over loopback (issue 5's test list): the daemon's
//! actions hook driven through the library (collect → evaluate → lifecycle → `Actor::on_cycle`,
//! exactly what `tradewarden run` does each cycle), and `tradewarden flatten` / `fix` through
//! the real binary. The simulator's admin state (`/_sim/state`: every order ever placed, with
//! its `position_intent`, and request counts) is the witness of what was sent.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Value, json};
use tradewarden::act::journal::{Journal, Ledger};
use tradewarden::act::{ActionReport, Actor};
use tradewarden::alert::{AlertBook, step};
use tradewarden::clock::SystemClock;
use tradewarden::collect::broker::Broker;
use tradewarden::collect::broker::alpaca::{AlpacaClient, ClientSettings, RetryPolicy};
use tradewarden::config::Config;
use tradewarden::model::{Severity, Snapshot};

use crate::simulator::{KEY_ID, SECRET, Sim, phantom_exit_scenario};
use crate::support::{bin, repo, run};

const SHORTS: [&str; 4] = ["BILL", "CHWY", "COIN", "OKTA"];
const CLOSE: &str = "DELETE /v2/positions/{symbol_or_asset_id}";

/// Every rule of the phantom-exit audit; `no-shorts` names `flatten_shorts`.
const FLATTEN_RULES: &str = r#"
[[rule]]
id = "no-shorts"
check = "no_short_positions"
severity = "critical"
actions = ["flatten_shorts"]

[[rule]]
id = "positions-match"
check = "position_match"
severity = "critical"

[[rule]]
id = "order-hazards"
check = "open_order_hazard"
severity = "critical"
"#;

/// A bot directory (a copy of an example's `bot/`) and a configuration pointing at the sim.
struct Bot {
    dir: tempfile::TempDir,
}

impl Bot {
    /// `example`: a `bot/` folder in the repository. `actions`: the body of `[actions]` (and
    /// any `[actions.*]` tables after it).
    fn new(url: &str, example: &str, rules: &str, actions: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        crate::support::copy_dir(&repo(example), &dir.path().join("bot"));
        std::fs::write(dir.path().join("rules.toml"), rules).unwrap();
        let config = format!(
            r#"state_dir = "state"
rules = ["rules.toml"]

[broker]
kind = "alpaca"
base_url = "{url}"
timeout = "2s"
max_requests_per_minute = 100000

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
at = ""

[server]
listen = ""

[actions]
{actions}
"#
        );
        std::fs::write(dir.path().join("tradewarden.toml"), config).unwrap();
        Self { dir }
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("tradewarden.toml")
    }

    fn load(&self) -> Config {
        Config::load(&self.config()).unwrap_or_else(|e| panic!("{e}"))
    }

    fn file(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn ledger(&self) -> Ledger {
        Journal::new(&self.dir.path().join("state")).read().unwrap()
    }

    /// Sets the bot files' modification time an hour back (older than `quiet_for`).
    fn settle_files(&self) {
        for f in ["bot/state/executor_state.json", "bot/state/position_metadata.json"] {
            let file = std::fs::File::options().write(true).open(self.file(f)).unwrap();
            file.set_modified(SystemTime::now() - Duration::from_secs(3600)).unwrap();
        }
    }

    fn cli(&self, args: &[&str]) -> Command {
        let mut c = bin();
        c.args(args).arg("-c").arg(self.config());
        c.env("APCA_API_KEY_ID", KEY_ID).env("APCA_API_SECRET_KEY", SECRET).stdin(Stdio::null());
        c
    }
}

fn broker(url: &str) -> Broker {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = AlpacaClient::new(&ClientSettings {
        base_url: url.to_owned(),
        key_id: KEY_ID.to_owned(),
        secret_key: SECRET.to_owned(),
        timeout: Duration::from_secs(5),
        retry: RetryPolicy {
            max_attempts: 2,
            base_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(20),
            max_rate_limit_wait: Duration::from_secs(1),
        },
    })
    .unwrap();
    Broker::Alpaca(client)
}

/// Collect, evaluate and step the lifecycle, as one daemon cycle does before its hook.
async fn audit(cfg: &Config, b: &Broker) -> (Snapshot, tradewarden::engine::Evaluated, AlertBook) {
    let snap = tradewarden::collect::collect(cfg, b, &SystemClock).await.unwrap();
    let ev = tradewarden::engine::evaluate(&cfg.rules, &snap, snap.taken_at);
    let (book, _) = step(&AlertBook::default(), &cfg.rules, &ev, &[], &cfg.alerts, snap.taken_at);
    (snap, ev, book)
}

/// One daemon cycle's actions.
async fn cycle(cfg: &Config, b: &Broker, actor: &mut Actor) -> Vec<ActionReport> {
    let (snap, ev, book) = audit(cfg, b).await;
    actor.on_cycle(cfg, &book, &snap, &ev, snap.taken_at).await
}

fn actor(cfg: &Config, b: &Broker) -> Actor {
    Actor::new(cfg, b).with_poll_interval(Duration::from_millis(20))
}

fn order_ids(state: &Value) -> BTreeSet<String> {
    state["orders"].as_array().unwrap().iter().map(|o| o["id"].as_str().unwrap().to_owned()).collect()
}

/// Orders placed after `before`.
fn new_orders(state: &Value, before: &BTreeSet<String>) -> Vec<Value> {
    state["orders"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| !before.contains(o["id"].as_str().unwrap()))
        .cloned()
        .collect()
}

fn qty(state: &Value, symbol: &str) -> Option<String> {
    state["positions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["symbol"] == symbol)
        .map(|p| p["qty"].as_str().unwrap().to_owned())
}

fn count(sim: &Sim, key: &str) -> u64 {
    sim.requests().get(key).copied().unwrap_or(0)
}

/// No order the test did not seed may open or deepen a short: in the simulator, a sell that
/// does either is recorded with `position_intent = sell_to_open`.
fn assert_no_short_opening_order(state: &Value, before: &BTreeSet<String>) {
    for o in new_orders(state, before) {
        assert_ne!(o["position_intent"], "sell_to_open", "an order opened or deepened a short: {o}");
    }
}

/// The phantom-exit incident after flatten_shorts: every short flat, the long untouched, the
/// four closes were buys to cover, and the resting CHWY sell was cancelled.
fn assert_flattened(sim: &Sim, seeded: &BTreeSet<String>) {
    let state = sim.state();
    for s in SHORTS {
        assert_eq!(qty(&state, s), None, "{s} is flat");
    }
    assert_eq!(qty(&state, "AAPL").as_deref(), Some("10"), "the long is untouched");
    let placed = new_orders(&state, seeded);
    assert_eq!(placed.len(), 4, "one close per short: {placed:#?}");
    for o in &placed {
        assert_eq!((o["side"].as_str(), o["position_intent"].as_str()), (Some("buy"), Some("buy_to_close")), "{o}");
        assert_eq!(o["status"], "filled");
    }
    let symbols: BTreeSet<&str> = placed.iter().map(|o| o["symbol"].as_str().unwrap()).collect();
    assert_eq!(symbols, SHORTS.into_iter().collect());
    assert_no_short_opening_order(&state, seeded);
    let seeded_sell =
        state["orders"].as_array().unwrap().iter().find(|o| seeded.contains(o["id"].as_str().unwrap())).unwrap();
    assert_eq!(seeded_sell["status"], "canceled", "the sell that would deepen CHWY was cancelled first");
    assert_eq!(count(sim, "POST /v2/orders"), 0, "tradewarden never submits an order");
    assert_eq!(count(sim, "DELETE /v2/positions"), 0, "no close-all");
}

const ACT: &str = "mode = \"act\"\nconfirm_timeout = \"5s\"\n";

#[tokio::test]
async fn phantom_exit_in_act_mode_flattens_every_short_and_never_opens_one() {
    let sim = Sim::start(&phantom_exit_scenario());
    let seeded = order_ids(&sim.state());
    let bot = Bot::new(&sim.url, "examples/stock-bot/snapshots/phantom-exit/bot", FLATTEN_RULES, ACT);
    let cfg = bot.load();
    let b = broker(&sim.url);
    let mut a = actor(&cfg, &b);
    assert!(a.recover(chrono::Utc::now()).await.is_empty());
    let out = cycle(&cfg, &b, &mut a).await;
    assert_eq!(out.len(), 1, "one action for the four shorts: {out:#?}");
    let r = &out[0];
    assert_eq!((r.action.as_str(), r.result.as_str()), ("flatten_shorts", "done"), "{r:#?}");
    assert_eq!(r.subject, "BILL,CHWY,COIN,OKTA");
    assert!(r.finding.is_none());
    assert_flattened(&sim, &seeded);
    assert_eq!(count(&sim, CLOSE), 4);
    assert_eq!(count(&sim, "DELETE /v2/orders/{order_id}"), 1);

    let l = bot.ledger();
    assert_eq!((l.intents.len(), l.outcomes.len()), (1, 1), "one intent and one outcome");
    let i = &l.intents[0];
    assert_eq!(i.action, "flatten_shorts");
    assert_eq!(i.rules, ["no-shorts"]);
    assert_eq!(i.steps.len(), 5, "{:?}", i.steps);
    assert!(i.steps.iter().any(|s| s == "DELETE /v2/positions/CHWY (the broker buys to cover 1596)"), "{:?}", i.steps);
    assert_eq!(i.broker_seen["positions"].as_array().unwrap().len(), 5, "the state seen on the re-read");
    let o = l.outcome(&i.id).unwrap();
    assert_eq!(o.result, "done");
    assert!(o.broker_after["positions"].as_array().unwrap().len() == 1, "{}", o.broker_after);

    // The next cycle: nothing is short, nothing fires, nothing is sent.
    let before = sim.requests();
    let out = cycle(&cfg, &b, &mut a).await;
    assert!(out.is_empty(), "{out:#?}");
    let after = sim.requests();
    assert_eq!(before.get(CLOSE), after.get(CLOSE));
    assert_eq!(bot.ledger().intents.len(), 1);
}

#[tokio::test]
async fn observe_mode_sends_nothing_and_says_what_it_would_do() {
    let sim = Sim::start(&phantom_exit_scenario());
    let bot = Bot::new(&sim.url, "examples/stock-bot/snapshots/phantom-exit/bot", FLATTEN_RULES, "mode = \"observe\"");
    let cfg = bot.load();
    let b = broker(&sim.url);
    let mut a = actor(&cfg, &b);
    let out = cycle(&cfg, &b, &mut a).await;
    let r = &out[0];
    assert_eq!(r.result, "described");
    let id = sim.state()["orders"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        r.detail,
        format!(
            "observe mode, nothing sent: would DELETE /v2/positions/BILL (the broker buys to cover 413); then \
             cancel open sell order {id} on CHWY (limit 1596 @ 45.00); then DELETE /v2/positions/CHWY (the broker \
             buys to cover 1596); then DELETE /v2/positions/COIN (the broker buys to cover 72); then DELETE \
             /v2/positions/OKTA (the broker buys to cover 170)"
        )
    );
    let requests = sim.requests();
    assert!(requests.keys().all(|k| k.starts_with("GET ")), "reads only: {requests:?}");
    // The audit's five reads, and the recently closed orders and fills (positions-match disagrees).
    assert_eq!(sim.total_requests(), 7, "the audit's seven reads, nothing else: {:?}", sim.requests());
    assert!(!bot.file("state/actions.jsonl").exists(), "nothing journaled");
    for s in SHORTS {
        assert!(qty(&sim.state(), s).is_some());
    }
}

#[tokio::test]
async fn a_violation_gone_on_the_re_read_means_no_action() {
    let sim = Sim::start(&phantom_exit_scenario());
    let bot = Bot::new(&sim.url, "examples/stock-bot/snapshots/phantom-exit/bot", FLATTEN_RULES, ACT);
    let cfg = bot.load();
    let b = broker(&sim.url);
    let mut a = actor(&cfg, &b);
    let (snap, ev, book) = audit(&cfg, &b).await;
    // Between the audit and the action, someone covered every short.
    let mut healed = phantom_exit_scenario();
    healed["positions"] = json!([{ "symbol": "AAPL", "qty": "10", "avg_entry_price": "187.25" }]);
    healed["orders"] = json!([]);
    let (status, body) = sim.call("POST", "/_sim/scenario", Some(&healed));
    assert_eq!(status, 200, "{body}");
    let out = a.on_cycle(&cfg, &book, &snap, &ev, snap.taken_at).await;
    assert_eq!(out[0].result, "skipped");
    assert!(out[0].detail.contains("no-shorts/CHWY: the violation is gone on the re-read"), "{}", out[0].detail);
    assert_eq!(count(&sim, CLOSE), 0);
    assert_eq!(count(&sim, "DELETE /v2/orders/{order_id}"), 0);
    assert!(bot.ledger().intents.is_empty(), "no intent without an action");
}

#[tokio::test]
async fn a_spent_budget_means_no_action_and_a_finding() {
    let sim = Sim::start(&phantom_exit_scenario());
    // max_per_day does not bound a protective action: its own budget does.
    let bot = Bot::new(
        &sim.url,
        "examples/stock-bot/snapshots/phantom-exit/bot",
        FLATTEN_RULES,
        &format!("{ACT}max_per_day = 0\ncooldown = \"0s\"\n[actions.budget]\nflatten_shorts = 1"),
    );
    let cfg = bot.load();
    let b = broker(&sim.url);
    let mut a = actor(&cfg, &b);
    assert_eq!(cycle(&cfg, &b, &mut a).await[0].result, "done");
    // The shorts are back (the bot did it again): the day's budget is spent.
    let (status, _) = sim.call("POST", "/_sim/scenario", Some(&phantom_exit_scenario()));
    assert_eq!(status, 200);
    let out = cycle(&cfg, &b, &mut a).await;
    let r = &out[0];
    assert_eq!(r.result, "refused");
    let f = r.finding.as_ref().expect("a finding");
    // Protective: refusing it leaves the short open, so it is as loud as a failure.
    assert_eq!(
        (f.rule.as_str(), f.code.as_str(), f.severity),
        ("actions", "action_budget_exhausted", Severity::Critical)
    );
    assert_eq!(count(&sim, CLOSE), 0, "nothing sent after the reload");
    assert_eq!(bot.ledger().intents.len(), 1);
}

/// Issue 12 §3g: live-format keys (`AK...`) behind a loopback URL (a local proxy or tunnel)
/// counted as paper, and tradewarden acted without `allow_live`. Every signal counts now: the
/// key id, and what the account says (a paper account number starts with `PA`).
#[tokio::test]
async fn live_keys_behind_a_loopback_proxy_are_refused_without_allow_live() {
    const LIVE_KEY: &str = "AKLIVEKEYID0001";
    let mut scenario = phantom_exit_scenario();
    scenario["auth"] = serde_json::json!({ "key_id": LIVE_KEY, "secret_key": SECRET });
    let sim = Sim::start(&scenario);
    let bot = Bot::new(&sim.url, "examples/stock-bot/snapshots/phantom-exit/bot", FLATTEN_RULES, ACT);
    let cli = |bot: &Bot| {
        let mut c = bin();
        c.args(["flatten", "--shorts-only", "--yes", "-c"]).arg(bot.config());
        c.env("APCA_API_KEY_ID", LIVE_KEY).env("APCA_API_SECRET_KEY", SECRET).stdin(Stdio::null());
        c
    };
    let (code, out, err) = run(&mut cli(&bot));
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("live account") && err.contains("allow_live = true"), "{err}");
    assert_eq!(count(&sim, CLOSE), 0);
    assert_eq!(sim.total_requests(), 0, "refused before anything is read: {:?}", sim.requests());
    assert!(!bot.file("state/actions.jsonl").exists());

    // Paper-format keys, but the account says live (its number is not a paper `PA...` one):
    // the daemon hook and the command are refused before any write, with a critical finding.
    let mut scenario = phantom_exit_scenario();
    scenario["account"]["account_number"] = "3XK8Q1ZT7M".into();
    let sim = Sim::start(&scenario);
    let bot = Bot::new(&sim.url, "examples/stock-bot/snapshots/phantom-exit/bot", FLATTEN_RULES, ACT);
    let cfg = bot.load();
    let b = broker(&sim.url);
    let mut a = actor(&cfg, &b);
    let out = cycle(&cfg, &b, &mut a).await;
    let f = out[0].finding.as_ref().unwrap_or_else(|| panic!("{out:#?}"));
    assert_eq!(
        (out[0].result.as_str(), f.code.as_str(), f.severity),
        ("refused", "action_refused", Severity::Critical)
    );
    assert!(f.message.contains("the account says it is live") && f.message.contains("allow_live"), "{}", f.message);
    let (code, out, err) = run(&mut bot.cli(&["flatten", "--shorts-only", "--yes"]));
    assert_eq!(code, 2, "{out}{err}");
    assert!(out.contains("the account says it is live"), "{out}{err}");
    assert_eq!(count(&sim, CLOSE), 0);
    assert_eq!(count(&sim, "DELETE /v2/orders/{order_id}"), 0);
    assert!(bot.ledger().intents.is_empty());

    // allow_live = true is the explicit yes.
    let bot = Bot::new(
        &sim.url,
        "examples/stock-bot/snapshots/phantom-exit/bot",
        FLATTEN_RULES,
        &format!("{ACT}allow_live = true"),
    );
    let cfg = bot.load();
    let mut a = actor(&cfg, &b);
    assert_eq!(cycle(&cfg, &b, &mut a).await[0].result, "done");
    assert_eq!(count(&sim, CLOSE), 4);
}

#[tokio::test]
async fn a_live_account_without_allow_live_is_refused() {
    // The daemon hook: a client for the live host; the snapshot comes from the simulator.
    let sim = Sim::start(&phantom_exit_scenario());
    let bot = Bot::new(&sim.url, "examples/stock-bot/snapshots/phantom-exit/bot", FLATTEN_RULES, ACT);
    let cfg = bot.load();
    let (snap, ev, book) = audit(&cfg, &broker(&sim.url)).await;
    let live = broker("https://api.alpaca.markets");
    let mut a = actor(&cfg, &live);
    let started = Instant::now();
    let out = a.on_cycle(&cfg, &book, &snap, &ev, snap.taken_at).await;
    assert!(started.elapsed() < Duration::from_secs(1), "refused before any request");
    let f = out[0].finding.as_ref().unwrap();
    assert_eq!(
        (out[0].result.as_str(), f.code.as_str(), f.severity),
        ("refused", "action_refused", Severity::Critical)
    );
    assert!(f.message.contains("live account") && f.message.contains("allow_live"), "{}", f.message);
    assert!(!bot.file("state/actions.jsonl").exists());

    // The command: refused before anything is read (the live host is never contacted).
    let live_bot =
        Bot::new("https://api.alpaca.markets", "examples/stock-bot/snapshots/phantom-exit/bot", FLATTEN_RULES, ACT);
    let started = Instant::now();
    let (code, out, err) = run(&mut live_bot.cli(&["flatten", "--shorts-only", "--yes"]));
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("live account") && err.contains("allow_live = true"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(!live_bot.file("state/actions.jsonl").exists());
}

#[test]
fn the_flatten_command_shows_the_plan_then_acts_behind_the_gates() {
    let sim = Sim::start(&phantom_exit_scenario());
    let seeded = order_ids(&sim.state());
    let bot =
        Bot::new(&sim.url, "examples/stock-bot/snapshots/phantom-exit/bot", FLATTEN_RULES, "confirm_timeout = \"5s\"");

    // A dry run prints the plan and sends nothing.
    let (code, out, err) = run(&mut bot.cli(&["flatten", "--shorts-only", "--dry-run"]));
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with(
            "tradewarden flatten (shorts only) will:\n  1. DELETE /v2/positions/BILL (the broker buys to cover 413)\n"
        ),
        "{out}"
    );
    assert!(
        out.contains("DELETE /v2/positions/CHWY (the broker buys to cover 1596)") && out.contains("Dry run"),
        "{out}"
    );
    assert!(!out.contains("AAPL"), "{out}");
    // Without a terminal and without --yes: refused.
    let (code, _, err) = run(&mut bot.cli(&["flatten", "--shorts-only"]));
    assert_eq!(code, 2);
    assert!(err.contains("not a terminal") && err.contains("--yes"), "{err}");
    assert_eq!(count(&sim, CLOSE), 0);
    let mails = |bot: &Bot| -> Vec<String> {
        std::fs::read_dir(bot.file("state/mail"))
            .map(|d| d.map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap()).collect())
            .unwrap_or_default()
    };
    assert!(mails(&bot).is_empty(), "a dry run and a refusal did nothing, and send nothing");

    // Observe mode does not apply to the command (it is the operator's decision).
    let (code, out, err) = run(&mut bot.cli(&["flatten", "--shorts-only", "--yes"]));
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("flatten_shorts: done:"), "{out}");
    assert_flattened(&sim, &seeded);
    let l = bot.ledger();
    assert_eq!((l.intents.len(), l.outcomes.len()), (1, 1));
    assert_eq!(l.intents[0].origin, "cli");
    // Review (issue 12): an action run by hand was not emailed. It goes out like the
    // daemon's, through the configured channel (here `.eml` files).
    let sent = mails(&bot);
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!(sent[0].contains("flatten_shorts (done, by hand)") && sent[0].contains("1 action taken"), "{}", sent[0]);
    assert!(err.contains("notice") && err.contains("sent via"), "{err}");

    // Nothing left: exit 0, nothing sent.
    let (code, out, _) = run(&mut bot.cli(&["flatten", "--shorts-only", "--yes"]));
    assert_eq!(code, 0);
    assert!(out.contains("Nothing to do."), "{out}");
    assert_eq!(count(&sim, CLOSE), 4);
    assert_eq!(mails(&bot).len(), 1, "nothing done, nothing sent");

    // --all --symbol AAPL closes the long (a sell to close, never to open).
    let (code, out, err) = run(&mut bot.cli(&["flatten", "--all", "--symbol", "AAPL", "--yes"]));
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("DELETE /v2/positions/AAPL (the broker sells 10)"), "{out}");
    let state = sim.state();
    assert_eq!(qty(&state, "AAPL"), None);
    assert_no_short_opening_order(&state, &seeded);
}

/// Polls `f` until it holds or `secs` pass.
fn wait_for(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    f()
}

#[test]
fn a_process_killed_after_the_intent_is_resolved_on_restart_without_a_second_close() {
    let sim = Sim::start(&phantom_exit_scenario());
    let seeded = order_ids(&sim.state());
    let bot =
        Bot::new(&sim.url, "examples/stock-bot/snapshots/phantom-exit/bot", FLATTEN_RULES, "confirm_timeout = \"5s\"");
    // Pauses after the writes, before the outcome is journaled (debug builds only).
    let mut child = bot
        .cli(&["flatten", "--shorts-only", "--yes"])
        .env("TRADEWARDEN_TEST_PAUSE_AFTER_WRITE_MS", "60000")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let journal = bot.file("state/actions.jsonl");
    let ready = wait_for(30, || {
        count(&sim, CLOSE) == 4 && std::fs::read_to_string(&journal).is_ok_and(|t| t.contains("\"kind\":\"intent\""))
    });
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(ready, "the intent was journaled and the closes sent: {:?}", sim.requests());
    let l = bot.ledger();
    assert_eq!((l.intents.len(), l.outcomes.len()), (1, 0), "killed between intent and outcome");

    // Issue 12 follow-up: a dry run neither resolves nor journals the interrupted action (it
    // would have journaled it "recovered" and told only its own terminal); it says it is there.
    let journal_before = std::fs::read_to_string(&journal).unwrap();
    let (code, out, err) = run(&mut bot.cli(&["flatten", "--shorts-only", "--dry-run"]));
    assert_eq!(code, 0, "{out}{err}");
    assert!(!err.contains("recovery:"), "{err}");
    assert!(err.contains("1 interrupted action(s) in the journal are unresolved"), "{err}");
    assert_eq!(std::fs::read_to_string(&journal).unwrap(), journal_before, "a dry run journals nothing");

    // The restart resolves the intent by re-reading the broker; it does not close again.
    let (code, out, err) = run(&mut bot.cli(&["flatten", "--shorts-only", "--yes"]));
    assert_eq!(code, 0, "{out}{err}");
    assert!(err.contains("recovery: flatten_shorts recovered"), "{err}");
    for s in SHORTS {
        assert!(err.contains(&format!("{s} is flat")), "{s}: {err}");
    }
    assert!(out.contains("Nothing to do."), "{out}");
    assert_eq!(count(&sim, CLOSE), 4, "no second close");
    assert_flattened(&sim, &seeded);
    let l = bot.ledger();
    assert_eq!((l.intents.len(), l.outcomes.len()), (1, 1));
    assert_eq!(l.outcome(&l.intents[0].id).unwrap().result, "recovered");
}

#[tokio::test]
async fn an_interrupted_intent_whose_close_never_went_out_is_left_for_the_gates_not_repeated() {
    let sim = Sim::start(&phantom_exit_scenario());
    let bot = Bot::new(&sim.url, "examples/stock-bot/snapshots/phantom-exit/bot", FLATTEN_RULES, ACT);
    std::fs::create_dir_all(bot.file("state")).unwrap();
    let intent = json!({
        "kind": "intent", "id": "0b7e2a52-1111-4c1e-9d7e-000000000001", "at": chrono::Utc::now().to_rfc3339(),
        "action": "flatten_shorts", "origin": "daemon", "rules": ["no-shorts"], "fingerprints": ["no-shorts/CHWY"],
        "subject": "CHWY", "why": [], "steps": ["DELETE /v2/positions/CHWY (the broker buys to cover 1596)"],
        "targets": { "symbols": ["CHWY"], "shorts_only": true, "order_ids": [] }, "broker_seen": null
    });
    std::fs::write(bot.file("state/actions.jsonl"), format!("{intent}\n")).unwrap();
    // A dry run leaves the daemon's intent to the daemon (it would otherwise be journaled
    // "recovered" and shown only on this terminal).
    let (code, out, err) = run(&mut bot.cli(&["flatten", "--shorts-only", "--dry-run"]));
    assert_eq!(code, 0, "{out}{err}");
    assert!(!err.contains("recovery:") && err.contains("1 interrupted action(s)"), "{err}");
    assert_eq!(bot.ledger().outcomes.len(), 0, "a dry run journals nothing");
    // The daemon's recovery (at start-up, and each cycle while any is left) resolves it.
    let cfg = bot.load();
    let b = broker(&sim.url);
    let found = actor(&cfg, &b).recover(chrono::Utc::now()).await;
    let details: Vec<&str> = found.iter().map(|r| r.detail.as_str()).collect();
    assert!(
        details.iter().any(|d| d.contains("CHWY is still short -1596 (left for the next cycle's gates)")),
        "{details:?}"
    );
    assert_eq!(count(&sim, CLOSE), 0, "recovery re-reads; it never closes");
    let l = bot.ledger();
    assert_eq!(l.outcomes.len(), 1);
    assert!(l.unresolved().is_empty());
}

const HAZARD_RULES: &str = r#"
[[rule]]
id = "order-hazards"
check = "open_order_hazard"
severity = "critical"
actions = ["cancel_hazard_orders"]
"#;

#[tokio::test]
async fn cancel_hazard_orders_cancels_exactly_the_flagged_orders() {
    let mut scenario = phantom_exit_scenario();
    // An innocent order beside the hazard: selling half of a long.
    scenario["orders"].as_array_mut().unwrap().push(json!({
        "symbol": "AAPL", "side": "sell", "qty": "5", "type": "limit", "limit_price": "300.00",
        "submitted_at": (chrono::Utc::now() - chrono::Duration::minutes(2)).to_rfc3339()
    }));
    let sim = Sim::start(&scenario);
    let bot = Bot::new(&sim.url, "examples/stock-bot/snapshots/phantom-exit/bot", HAZARD_RULES, ACT);
    let cfg = bot.load();
    let b = broker(&sim.url);
    let mut a = actor(&cfg, &b);
    let out = cycle(&cfg, &b, &mut a).await;
    assert_eq!(out.len(), 1, "{out:#?}");
    assert_eq!((out[0].action.as_str(), out[0].result.as_str()), ("cancel_hazard_orders", "done"), "{:#?}", out[0]);
    let state = sim.state();
    let status: Vec<(String, String)> = state["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (o["symbol"].as_str().unwrap().to_owned(), o["status"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(status, [("CHWY".to_owned(), "canceled".to_owned()), ("AAPL".to_owned(), "new".to_owned())]);
    assert_eq!(count(&sim, "DELETE /v2/orders/{order_id}"), 1);
    assert_eq!(count(&sim, CLOSE), 0);
    let l = bot.ledger();
    let chwy = state["orders"][0]["id"].as_str().unwrap();
    assert_eq!(l.intents[0].targets.order_ids(), [chwy]);
}

#[tokio::test]
async fn broker_guards_are_confirmed_by_reading_the_configuration_back() {
    let rules = r#"
[[rule]]
id = "account"
check = "account_health"
severity = "warning"
expect_no_shorting = true
actions = ["suspend_trading", "enforce_no_shorting"]
"#;
    let sim = Sim::start(&phantom_exit_scenario());
    let bot = Bot::new(&sim.url, "examples/stock-bot/snapshots/phantom-exit/bot", rules, ACT);
    let cfg = bot.load();
    let b = broker(&sim.url);
    let mut a = actor(&cfg, &b);
    let out = cycle(&cfg, &b, &mut a).await;
    let got: Vec<(&str, &str)> = out.iter().map(|r| (r.action.as_str(), r.result.as_str())).collect();
    assert_eq!(got, [("enforce_no_shorting", "done"), ("suspend_trading", "done")], "{out:#?}");
    let c = &sim.state()["configurations"];
    assert_eq!((c["no_shorting"].as_bool(), c["suspend_trade"].as_bool()), (Some(true), Some(true)));
    assert_eq!(count(&sim, "PATCH /v2/account/configurations"), 2);
    let l = bot.ledger();
    for i in &l.intents {
        let o = l.outcome(&i.id).unwrap();
        assert!(o.steps.iter().any(|s| s.starts_with("confirmed by reading the configuration back")), "{o:?}");
    }
    // Already set: nothing to do next time (the violation of the rule is gone as well).
    let before = count(&sim, "PATCH /v2/account/configurations");
    let _ = cycle(&cfg, &b, &mut a).await;
    assert_eq!(count(&sim, "PATCH /v2/account/configurations"), before);
}

/// The stock-bot example's broker after a day of trading: MSFT sold, NVDA partly sold
/// (20 → 12), TSLA bought (the bot lost track of it), AAPL as tracked.
fn stock_bot_scenario() -> Value {
    json!({
        "positions": [
            { "symbol": "AAPL", "qty": "10", "avg_entry_price": "187.25" },
            { "symbol": "NVDA", "qty": "12", "avg_entry_price": "131.40" },
            { "symbol": "TSLA", "qty": "4", "avg_entry_price": "250.50" }
        ],
        "prices": { "AAPL": "190.10", "NVDA": "135.00", "TSLA": "255.00", "MSFT": "415.00" },
        "clock": { "is_open": true },
        "auth": { "key_id": KEY_ID, "secret_key": SECRET }
    })
}

const FIX_ACTIONS: &str = r#"mode = "act"
confirm_timeout = "5s"

[actions.fix_state]
template = { added_by = "tradewarden", strategy = "unknown" }
"#;

const FIX_RULES: &str = r#"
[[rule]]
id = "positions-match"
check = "position_match"
severity = "critical"
actions = ["fix_state"]
"#;

const EXPECTED_STATE: &str = r#"{
  "updated_at": "2026-11-20T15:29:20+00:00",
  "opens": {
    "AAPL": {
      "qty": 10,
      "entry_price": 187.25,
      "strategy": "rsi_reversion"
    },
    "NVDA": {
      "qty": 12.0,
      "entry_price": "131.4",
      "strategy": "breakout"
    },
    "TSLA": {
      "qty": 4,
      "entry_price": "250.5",
      "added_by": "tradewarden",
      "strategy": "unknown"
    }
  },
  "cash_reserved": "0"
}
"#;

const EXPECTED_DIFF: &str = r#"--- a/state/executor_state.json
+++ b/state/executor_state.json
@@ -6,15 +6,16 @@
       "entry_price": 187.25,
       "strategy": "rsi_reversion"
     },
-    "MSFT": {
-      "qty": "5",
-      "entry_price": "412.30",
-      "strategy": "rsi_reversion"
-    },
     "NVDA": {
-      "qty": 20.0,
+      "qty": 12.0,
       "entry_price": "131.4",
       "strategy": "breakout"
+    },
+    "TSLA": {
+      "qty": 4,
+      "entry_price": "250.5",
+      "added_by": "tradewarden",
+      "strategy": "unknown"
     }
   },
   "cash_reserved": "0"
--- a/state/position_metadata.json
+++ b/state/position_metadata.json
@@ -9,16 +9,6 @@
       "volume": 0.1
     }
   },
-  "MSFT": {
-    "entry_score": "0.81",
-    "entry_ts": "2026-11-20T10:30:00+00:00",
-    "strategy": "rsi_reversion",
-    "components": {
-      "rsi": 0.4,
-      "trend": 0.3,
-      "volume": 0.1
-    }
-  },
   "NVDA": {
     "entry_score": 0.77,
     "entry_ts": "2026-11-19T13:30:00+00:00",
@@ -28,5 +18,9 @@
       "trend": 0.3,
       "volume": 0.1
     }
+  },
+  "TSLA": {
+    "added_by": "tradewarden",
+    "strategy": "unknown"
   }
 }
"#;

#[test]
fn fix_on_the_stock_bot_example_writes_the_expected_file_and_diff() {
    let sim = Sim::start(&stock_bot_scenario());
    let bot = Bot::new(&sim.url, "examples/stock-bot/bot", FIX_RULES, FIX_ACTIONS);
    bot.settle_files();
    let state_file = bot.file("bot/state/executor_state.json");
    let original = std::fs::read_to_string(&state_file).unwrap();

    let (code, out, err) = run(&mut bot.cli(&["fix", "--dry-run"]));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(EXPECTED_DIFF), "the diff:\n{out}");
    assert_eq!(std::fs::read_to_string(&state_file).unwrap(), original, "a dry run writes nothing");

    let (code, out, err) = run(&mut bot.cli(&["fix", "--yes"]));
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("tradewarden fix will:\n  1. rewrite state/executor_state.json: remove MSFT (not held at the broker), set NVDA quantity 20 → 12, add TSLA 4 @ 250.5 (untracked)\n"), "{out}");
    assert!(out.contains(EXPECTED_DIFF), "{out}");
    assert!(out.contains("fix_state: done:"), "{out}");
    assert_eq!(std::fs::read_to_string(&state_file).unwrap(), EXPECTED_STATE);

    // The backup is the original; the journal has the diff; the fix is confirmed.
    let backups: Vec<PathBuf> =
        std::fs::read_dir(bot.file("state/backups")).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(backups.len(), 2, "{backups:?}");
    let b =
        backups.iter().find(|p| p.file_name().unwrap().to_string_lossy().starts_with("executor_state.json.")).unwrap();
    assert_eq!(std::fs::read_to_string(b).unwrap(), original);
    let l = bot.ledger();
    assert_eq!((l.intents.len(), l.outcomes.len()), (1, 1));
    assert_eq!(l.intents[0].diff.as_deref(), Some(EXPECTED_DIFF));
    let o = l.outcome(&l.intents[0].id).unwrap();
    assert_eq!((o.result.as_str(), o.diff.as_deref()), ("done", Some(EXPECTED_DIFF)));

    // Now the bot agrees with the broker: the audit's position_match is clean, and a second
    // fix has nothing to do.
    let (code, out, _) = run(&mut bot.cli(&["fix", "--yes"]));
    assert_eq!(code, 0);
    assert!(out.contains("Nothing to do."), "{out}");
    let (_, report, _) = run(&mut bot.cli(&["audit", "--format", "json"]));
    let report: Value = serde_json::from_str(&report).unwrap();
    let rule = report["rules"].as_array().unwrap().iter().find(|r| r["id"] == "positions-match").unwrap();
    assert_eq!(rule["outcome"], "ok", "{report}");
}

#[tokio::test]
async fn fix_state_refuses_a_file_modified_during_the_fix() {
    let sim = Sim::start(&stock_bot_scenario());
    let bot = Bot::new(&sim.url, "examples/stock-bot/bot", FIX_RULES, FIX_ACTIONS);
    bot.settle_files();
    let cfg = bot.load();
    let b = broker(&sim.url);
    let state_file = bot.file("bot/state/executor_state.json");
    let touched = state_file.clone();
    // The bot writes its state while tradewarden is about to.
    let bots_write =
        std::fs::read_to_string(&state_file).unwrap().replace("\"cash_reserved\": \"0\"", "\"cash_reserved\": \"1\"");
    let written = bots_write.clone();
    let mut a = actor(&cfg, &b).with_before_fix_write(Arc::new(move || std::fs::write(&touched, &written).unwrap()));
    let out = cycle(&cfg, &b, &mut a).await;
    let r = out.iter().find(|r| r.action == "fix_state").unwrap();
    assert_eq!(r.result, "refused", "{r:#?}");
    assert!(r.detail.contains("changed since it was read"), "{}", r.detail);
    assert_eq!(r.finding.as_ref().unwrap().code, "action_refused");
    assert_eq!(std::fs::read_to_string(&state_file).unwrap(), bots_write, "the bot's write survives");
    assert!(!bot.file("state/backups").exists() || std::fs::read_dir(bot.file("state/backups")).unwrap().count() == 0);
    let l = bot.ledger();
    assert_eq!(l.outcome(&l.intents[0].id).unwrap().result, "refused");
    assert_eq!(l.spent(chrono::Utc::now().date_naive()), 0, "a refusal uses no budget");

    // A file the bot wrote moments ago is not touched either (quiet_for, default 30 s).
    let (code, out, err) = run(&mut bot.cli(&["fix", "--yes"]));
    assert_eq!(code, 2, "{out}{err}");
    assert!(out.contains("within quiet_for (30s)"), "{out}");
    assert_eq!(std::fs::read_to_string(&state_file).unwrap(), bots_write);
}

/// Issue 12 follow-up: a market order fills at once and is never among the open orders, so
/// neither `settle` nor fix_state's in-flight check saw it: the audit reported the fresh
/// position as untracked and fix_state wrote the fill while the bot was recording it (the bot
/// then counts it twice and later sells shares it does not hold).
#[test]
fn a_fill_seconds_ago_blocks_fix_state_and_settles() {
    let mut scenario = stock_bot_scenario();
    // TSLA was bought by a market order that filled just now (submitted at the sim's now).
    scenario["orders"] = json!([{ "symbol": "TSLA", "side": "buy", "qty": "4", "type": "market",
                                  "status": "filled", "filled_avg_price": "250.50" }]);
    let sim = Sim::start(&scenario);
    let rules = "[[rule]]\nid = \"positions-match\"\ncheck = \"position_match\"\nseverity = \"critical\"\n\
                 settle = \"10m\"\nactions = [\"fix_state\"]\n";
    let bot = Bot::new(&sim.url, "examples/stock-bot/bot", rules, FIX_ACTIONS);
    bot.settle_files();
    let state_file = bot.file("bot/state/executor_state.json");
    let original = std::fs::read_to_string(&state_file).unwrap();

    // The audit settles TSLA (its fill is recent) and still reports the real mismatches.
    let (_, report, err) = run(&mut bot.cli(&["audit", "--format", "json"]));
    let report: Value = serde_json::from_str(&report).unwrap_or_else(|e| panic!("{e}: {err}"));
    let findings = report["findings"].as_array().unwrap();
    let subjects: Vec<&str> = findings.iter().filter_map(|f| f["subject"].as_str()).collect();
    assert!(!subjects.contains(&"TSLA"), "a fill seconds ago settles its symbol: {report}");
    assert!(subjects.contains(&"MSFT") && subjects.contains(&"NVDA"), "{report}");
    // One extra read for it: the open orders and the recently closed ones.
    assert_eq!(sim.requests().get("GET /v2/orders"), Some(&2), "{:?}", sim.requests());

    // fix_state waits: the bot may be recording that fill right now.
    let (code, out, err) = run(&mut bot.cli(&["fix", "--yes"]));
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("orders for TSLA are filling or changed within quiet_for (30s)"), "{out}{err}");
    assert_eq!(std::fs::read_to_string(&state_file).unwrap(), original, "nothing written");
}

#[test]
fn fix_refuses_the_ordinis_log_layout_with_an_explanation() {
    let sim = Sim::start(&stock_bot_scenario());
    let dir = tempfile::tempdir().unwrap();
    crate::support::copy_dir(&repo("examples/ordinis"), dir.path());
    let config = std::fs::read_to_string(dir.path().join("tradewarden.toml"))
        .unwrap()
        .replace("kind = \"alpaca\"\n", &format!("kind = \"alpaca\"\nbase_url = \"{}\"\n", sim.url));
    std::fs::write(dir.path().join("tradewarden.toml"), config).unwrap();
    let (code, out, err) = run(bin()
        .args(["fix", "--yes", "-c"])
        .arg(dir.path().join("tradewarden.toml"))
        .env("APCA_API_KEY_ID", KEY_ID)
        .env("APCA_API_SECRET_KEY", SECRET)
        .stdin(Stdio::null()));
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("JSONL log `positions`") && err.contains("does not edit a log"), "{err}");
    assert!(err.contains("re-sync"), "{err}");
}

#[tokio::test]
async fn exec_runs_the_command_and_its_timeout_kills() {
    let actions = r#"mode = "act"
confirm_timeout = "5s"

[actions.exec.record]
command = ["/bin/sh", "-c", "cat > exec-stdin.json; env > exec-env.txt"]
timeout = "10s"

[actions.exec.hang]
command = ["/bin/sh", "-c", "echo started; sleep 30"]
timeout = "300ms"
"#;
    let rules = r#"
[[rule]]
id = "no-shorts"
check = "no_short_positions"
severity = "critical"
actions = ["exec:record", "exec:hang"]
"#;
    let sim = Sim::start(&phantom_exit_scenario());
    let bot = Bot::new(&sim.url, "examples/stock-bot/snapshots/phantom-exit/bot", rules, actions);
    let cfg = bot.load();
    let b = broker(&sim.url);
    let mut a = actor(&cfg, &b);
    let started = Instant::now();
    let out = cycle(&cfg, &b, &mut a).await;
    assert!(started.elapsed() < Duration::from_secs(8), "the hang was killed: {:?}", started.elapsed());
    let got: Vec<(&str, &str)> = out.iter().map(|r| (r.action.as_str(), r.result.as_str())).collect();
    assert_eq!(got, [("exec:hang", "failed"), ("exec:record", "done")], "{out:#?}");
    let hang = &out[0];
    assert!(hang.detail.contains("killed after 300ms (timeout)"), "{}", hang.detail);
    assert_eq!(hang.finding.as_ref().unwrap().code, "action_failed");

    // stdin: the findings as JSON; the environment names the alert.
    let stdin: Value = serde_json::from_str(&std::fs::read_to_string(bot.file("exec-stdin.json")).unwrap()).unwrap();
    assert_eq!(stdin["action"], "exec:record");
    let findings = stdin["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 4);
    assert!(findings.iter().all(|f| f["code"] == "short_position" && f["rule"] == "no-shorts"));
    let env = std::fs::read_to_string(bot.file("exec-env.txt")).unwrap();
    for line in [
        "TRADEWARDEN_RULE=no-shorts",
        "TRADEWARDEN_CODE=short_position",
        "TRADEWARDEN_SEVERITY=critical",
        "TRADEWARDEN_MODE=paper",
        "TRADEWARDEN_ACTION=exec:record",
    ] {
        assert!(env.lines().any(|l| l == line), "{line}:\n{env}");
    }
    assert!(
        env.lines().any(|l| l.starts_with("TRADEWARDEN_SUBJECT=") && SHORTS.iter().any(|s| l.ends_with(s))),
        "{env}"
    );
    assert!(
        env.lines().any(|l| l == "TRADEWARDEN_FINGERPRINT=no-shorts/BILL,no-shorts/CHWY,no-shorts/COIN,no-shorts/OKTA"),
        "{env}"
    );
    assert!(!env.contains("APCA_"), "{env}");

    // Exit status and output are journaled.
    let l = bot.ledger();
    let by_action = |a: &str| {
        let i = l.intents.iter().find(|i| i.action == a).unwrap();
        l.outcome(&i.id).unwrap().exec.clone().unwrap()
    };
    let rec = by_action("exec:record");
    assert_eq!((rec["exit_code"].as_i64(), rec["timed_out"].as_bool()), (Some(0), Some(false)));
    let hang = by_action("exec:hang");
    assert_eq!((hang["timed_out"].as_bool(), hang["signal"].as_i64()), (Some(true), Some(9)));
    assert_eq!(hang["stdout"], "started\n");
}

#[test]
fn the_daemon_in_act_mode_flattens_the_phantom_exit_shorts_once_and_emails_it() {
    let sim = Sim::start(&phantom_exit_scenario());
    let seeded = order_ids(&sim.state());
    let actions = format!("{ACT}\n[schedule]\nevery = \"100ms\"\n");
    let bot = Bot::new(&sim.url, "examples/stock-bot/snapshots/phantom-exit/bot", FLATTEN_RULES, &actions);
    let (code, out, err) = run(&mut bot.cli(&["run", "--max-cycles", "3"]));
    assert_eq!(code, 0, "{out}{err}");
    assert_flattened(&sim, &seeded);
    assert_eq!(count(&sim, CLOSE), 4, "flattened once, in the first cycle");
    let l = bot.ledger();
    assert_eq!((l.intents.len(), l.outcomes.len()), (1, 1));
    assert_eq!(l.outcome(&l.intents[0].id).unwrap().result, "done");
    let mails: Vec<String> = std::fs::read_dir(bot.file("state/mail"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    assert!(mails.iter().any(|m| m.contains("flatten_shorts (done)")), "the email says what was done: {mails:?}");
}

#[test]
fn an_action_taken_while_its_alert_is_already_firing_is_emailed_too() {
    // The bot goes short again after tradewarden flattened it, before the alerts could
    // resolve: the second close owes no alert notice (no-shorts is still firing), but the
    // operator hears of every order tradewarden sends. Two runs of one cycle each on the same
    // state directory (the alert state persists), so the bot's move lands between the cycles
    // whatever the machine's speed.
    let sim = Sim::start(&phantom_exit_scenario());
    let actions = format!("{ACT}cooldown = \"0s\"\n");
    let bot = Bot::new(&sim.url, "examples/stock-bot/snapshots/phantom-exit/bot", FLATTEN_RULES, &actions);
    let (code, out, err) = run(&mut bot.cli(&["run", "--max-cycles", "1"]));
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(count(&sim, CLOSE), 4, "the first cycle flattened the four shorts");
    // The bot sells what it no longer holds, again: the broker is as it was before cycle 1,
    // so every alert stays firing and none resolves (no notice is owed in cycle 2).
    let (status, _) = sim.call("POST", "/_sim/scenario", Some(&phantom_exit_scenario()));
    assert_eq!(status, 200);
    let (code, out, err) = run(&mut bot.cli(&["run", "--max-cycles", "1"]));
    assert_eq!(code, 0, "{out}{err}");
    let audits = bot.file("state/audits.jsonl");

    let records: Vec<Value> =
        std::fs::read_to_string(&audits).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let second = &records[1];
    assert_eq!(second["actions"][0]["result"], "done", "{second}");
    let owed = &second["notifications"];
    let owed = (owed["firing"].as_u64(), owed["repeat"].as_u64(), owed["resolved"].as_u64());
    assert_eq!(owed, (Some(0), Some(0), Some(0)), "no notice owed: {second}");
    let queued = second["email"]["queued"].as_str().unwrap_or_else(|| panic!("an email was queued: {second}"));
    let mails: Vec<String> = std::fs::read_dir(bot.file("state/mail"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .filter(|m| m.contains(queued))
        .collect();
    assert_eq!(mails.len(), 1, "the second cycle's message");
    let subject = crate::util::header(&mails[0], "Subject").unwrap();
    assert!(subject.starts_with("[tradewarden] ACTION TAKEN: flatten_shorts (done)"), "{subject}");
    assert!(mails[0].contains("1 action taken"), "{}", mails[0]);
}

/// Runs `command_line` on a pseudo-terminal (util-linux `script`), typing `input`; (exit code,
/// everything the terminal showed).
fn on_a_terminal(command_line: &str, input: &str) -> (i32, String) {
    use std::io::Write as _;
    let mut child = Command::new("script")
        .args(["-qec", command_line, "/dev/null"])
        .env("APCA_API_KEY_ID", KEY_ID)
        .env("APCA_API_SECRET_KEY", SECRET)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("util-linux `script` runs");
    child.stdin.as_mut().unwrap().write_all(input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn on_a_terminal_flatten_shows_the_plan_and_asks_before_acting() {
    let sim = Sim::start(&phantom_exit_scenario());
    let seeded = order_ids(&sim.state());
    let bot =
        Bot::new(&sim.url, "examples/stock-bot/snapshots/phantom-exit/bot", FLATTEN_RULES, "confirm_timeout = \"5s\"");
    let line = format!("{} flatten --shorts-only -c {}", env!("CARGO_BIN_EXE_tradewarden"), bot.config().display());

    let (code, screen) = on_a_terminal(&line, "n\n");
    assert!(screen.contains("DELETE /v2/positions/CHWY (the broker buys to cover 1596)"), "{screen}");
    assert!(screen.contains("Proceed? [y/N]"), "{screen}");
    assert!(screen.contains("Declined. Nothing done."), "{screen}");
    assert_eq!(code, 2, "{screen}");
    assert_eq!(count(&sim, CLOSE), 0, "declining sends nothing");

    let (code, screen) = on_a_terminal(&line, "y\n");
    assert_eq!(code, 0, "{screen}");
    assert!(screen.contains("flatten_shorts: done:"), "{screen}");
    assert_flattened(&sim, &seeded);
}

/// Issue 12 follow-up, at the simulator: with 400 ms latency the bot posted a limit sell of 50
/// OKTA @200 while `flatten --shorts-only` ran; the close went out, "confirmed flat" was
/// printed with the sell still open, and when OKTA rose to 210 the sell filled into a -50 short.
/// The sell is posted the moment OKTA's re-read arrives (long after the plan was made).
#[test]
fn a_sell_placed_after_the_plan_is_cancelled_before_the_symbol_is_called_flat() {
    let sim = Sim::start(&phantom_exit_scenario());
    let bot = Bot::new(&sim.url, "examples/stock-bot/snapshots/phantom-exit/bot", FLATTEN_RULES, ACT);
    sim.faults(&json!({ "latency_ms": 400, "rate_limit_per_min": 0 }));
    let child = bot.cli(&["flatten", "--shorts-only", "--yes"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn();
    let child = child.unwrap();
    // BILL, CHWY, COIN, then OKTA: the fourth per-symbol read is OKTA's.
    let started = Instant::now();
    while count(&sim, "GET /v2/positions/{symbol_or_asset_id}") < 4 {
        assert!(started.elapsed() < Duration::from_secs(60), "OKTA never re-read: {:?}", sim.requests());
        std::thread::sleep(Duration::from_millis(10));
    }
    let sell = json!({ "symbol": "OKTA", "qty": "50", "side": "sell", "type": "limit", "limit_price": "200",
                       "time_in_force": "gtc" });
    let (status, placed) = sim.call("POST", "/v2/orders", Some(&sell));
    assert_eq!(status, 200, "{placed}");
    let late = placed["id"].as_str().unwrap().to_owned();
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    sim.faults(&json!({ "latency_ms": 0 }));
    let state = sim.state();
    let o = state["orders"].as_array().unwrap().iter().find(|o| o["id"] == late.as_str()).unwrap().clone();
    assert_eq!(o["status"], "canceled", "the late sell is cancelled: {o}\n{stdout}{stderr}");
    assert!(stdout.contains(&format!("open orders placed after the plan ({late})")), "{stdout}{stderr}");
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    // OKTA rises through the old limit: nothing rests to fill, it stays flat.
    let (status, body) = sim.call("POST", "/_sim/prices", Some(&json!({ "OKTA": "210" })));
    assert_eq!(status, 200, "{body}");
    assert_eq!(qty(&sim.state(), "OKTA"), None, "OKTA stays flat");
}

/// review2: Alpaca's `after` filters closed orders by *submission* time (alpaca-api.md §orders),
/// so a limit order that rested for two days and filled a second ago is neither open nor among
/// `closed_orders_since(now - quiet_for)`: fix_state does not wait and writes the fill the bot
/// is recording right now (the double count `a_fill_seconds_ago_blocks_fix_state_and_settles`
/// exists to prevent).
#[test]
fn a_fill_seconds_ago_of_an_order_resting_for_days_blocks_fix_state() {
    let now = chrono::Utc::now();
    let two_days_ago = (now - chrono::Duration::days(2)).to_rfc3339();
    let mut scenario = stock_bot_scenario();
    scenario["orders"] = json!([{ "symbol": "TSLA", "side": "buy", "qty": "4", "type": "limit",
                                  "limit_price": "250.50", "time_in_force": "gtc",
                                  "status": "filled", "filled_avg_price": "250.50",
                                  "submitted_at": two_days_ago, "updated_at": now.to_rfc3339() }]);
    let sim = Sim::start(&scenario);
    let rules = "[[rule]]\nid = \"positions-match\"\ncheck = \"position_match\"\nseverity = \"critical\"\n\
                 settle = \"10m\"\nactions = [\"fix_state\"]\n";
    let bot = Bot::new(&sim.url, "examples/stock-bot/bot", rules, FIX_ACTIONS);
    bot.settle_files();
    let state_file = bot.file("bot/state/executor_state.json");
    let original = std::fs::read_to_string(&state_file).unwrap();
    let (code, out, err) = run(&mut bot.cli(&["fix", "--yes"]));
    assert_eq!(code, 2, "fix_state must wait for the fill the bot is recording: {out}{err}");
    assert_eq!(std::fs::read_to_string(&state_file).unwrap(), original, "nothing written");
}

/// Review 3 (issue 12, "you hear of every action"): `flatten`/`fix` email what they resolved,
/// but an interrupted action whose re-read fails is reported with status `skipped` and a
/// critical `action_interrupted` finding, which `cli::act::tell` filters out (it sends only
/// done/failed/unconfirmed/recovered). The command then refuses (exit 2) and nobody but the
/// terminal hears that an order may have gone out while the truth is unknown.
#[test]
fn an_unresolvable_interrupted_action_found_by_the_flatten_command_is_emailed() {
    let sim = Sim::start(&phantom_exit_scenario());
    let bot =
        Bot::new(&sim.url, "examples/stock-bot/snapshots/phantom-exit/bot", FLATTEN_RULES, "confirm_timeout = \"5s\"");
    std::fs::create_dir_all(bot.file("state")).unwrap();
    let intent = json!({
        "kind": "intent", "id": "11111111-2222-3333-4444-555555555555", "at": "2026-12-06T03:00:00Z",
        "action": "flatten_shorts", "origin": "daemon", "rules": ["no-shorts"], "fingerprints": ["no-shorts/CHWY"],
        "subject": "CHWY", "why": [], "steps": ["DELETE /v2/positions/CHWY"],
        "targets": {"symbols": ["CHWY"], "shorts_only": true, "order_ids": []}, "broker_seen": null
    });
    std::fs::write(bot.file("state/actions.jsonl"), format!("{intent}\n")).unwrap();
    sim.faults(&json!({"error_rate": 1.0, "seed": 1}));
    let (code, out, err) = run(&mut bot.cli(&["flatten", "--shorts-only", "--yes"]));
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("cannot be resolved yet"), "{err}");
    let sent: Vec<String> = std::fs::read_dir(bot.file("state/mail"))
        .map(|d| d.map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap()).collect())
        .unwrap_or_default();
    let queued = std::fs::read_dir(bot.file("state/outbox")).map(|d| d.count()).unwrap_or(0);
    assert!(
        sent.iter().any(|m| m.contains("action_interrupted")) || queued > 0,
        "the critical action_interrupted was neither sent nor queued: {err}"
    );
}
