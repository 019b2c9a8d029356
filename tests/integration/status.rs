//! `tradewarden status` and `tradewarden alerts history` through the real binary, reading the
//! state a real `tradewarden run` left beside the simulator.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::simulator::{KEY_ID, SECRET, Sim};
use crate::support::{bin, run};
use crate::util::config_dir;

/// A bot tracking AAPL 10, one rule (`no-shorts`, critical), the simulator at `url`.
fn setup(url: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("bot/state")).unwrap();
    std::fs::write(
        dir.path().join("bot/state/executor_state.json"),
        r#"{ "opens": { "AAPL": { "qty": 10, "entry_price": 187.25 } } }"#,
    )
    .unwrap();
    std::fs::write(
        dir.path().join("rules.toml"),
        "[[rule]]\nid = \"no-shorts\"\ncheck = \"no_short_positions\"\nseverity = \"critical\"\n",
    )
    .unwrap();
    let config = dir.path().join("tradewarden.toml");
    std::fs::write(
        &config,
        format!(
            "state_dir = \"state\"\nrules = [\"rules.toml\"]\n\n[broker]\nkind = \"alpaca\"\nbase_url = {url:?}\n\
             timeout = \"2s\"\nmax_requests_per_minute = 100000\n\n[bot]\nroot = \"bot\"\n\n[bot.positions]\n\
             file = \"state/executor_state.json\"\nat = \"/opens\"\n\n[schedule]\nevery = \"1m\"\n\n[server]\nlisten = \"\"\n"
        ),
    )
    .unwrap();
    (dir, config)
}

fn scenario(short: bool) -> Value {
    let mut positions = vec![json!({ "symbol": "AAPL", "qty": "10", "avg_entry_price": "187.25" })];
    if short {
        positions.push(json!({ "symbol": "CHWY", "qty": "-1596", "avg_entry_price": "38.10" }));
    }
    json!({
        "account": { "cash": "100000" },
        "positions": positions,
        "prices": { "AAPL": "190.10", "CHWY": "40.00" },
        "clock": { "is_open": true },
        "auth": { "key_id": KEY_ID, "secret_key": SECRET }
    })
}

/// One real cycle: `tradewarden run --max-cycles 1`.
fn one_cycle(config: &Path) {
    let (code, out, err) = run(bin()
        .args(["run", "--max-cycles", "1", "-c"])
        .arg(config)
        .env("APCA_API_KEY_ID", KEY_ID)
        .env("APCA_API_SECRET_KEY", SECRET));
    assert_eq!(code, 0, "{out}{err}");
}

fn tw(args: &[&str], config: &Path) -> (i32, String, String) {
    run(bin().args(args).arg("-c").arg(config))
}

/// After a real cycle that saw the short, `status` shows the firing alert and exits 1; with
/// `--fail-on` above it, 0; its JSON has the same.
#[test]
fn status_after_a_cycle_shows_the_firing_alert_and_exits_one() {
    let sim = Sim::start(&scenario(true));
    let (_dir, config) = setup(&sim.url);
    one_cycle(&config);

    let (code, out, err) = tw(&["status"], &config);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("FIRING: 1"), "{out}");
    assert!(out.contains("CRITICAL") && out.contains("no-shorts/CHWY"), "{out}");
    assert!(out.contains("ago), ok, took"), "the last cycle, how long ago: {out}");
    assert!(!out.contains("all clear") && !out.contains("no cycle yet"), "{out}");

    let (code, out, err) = run(bin().args(["status", "--format", "json", "--fail-on", "critical", "-c"]).arg(&config));
    assert_eq!(code, 1, "{out}{err}");
    let doc: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["firing"][0]["fingerprint"], "no-shorts/CHWY", "{doc}");
    assert_eq!(doc["last_cycle"]["ok"], true, "{doc}");
    assert_eq!((doc["all_clear"].clone(), doc["problems"].clone()), (json!(false), json!([])), "{doc}");

    // Silenced, the same alert no longer fails the exit code (it is still listed).
    let (code, out, err) = tw(&["silence", "add", "--rule", "no-shorts", "--for", "1h", "--reason", "known"], &config);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = tw(&["status"], &config);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("no-shorts/CHWY") && out.contains("[silenced by "), "{out}");
    assert!(out.contains("silences in force: 1"), "{out}");
}

/// An empty state directory: no cycle yet, not "all clear", exit 0; a missing one: exit 2.
#[test]
fn status_on_an_empty_state_dir_says_no_cycle_yet() {
    let (dir, config) = config_dir("");
    std::fs::create_dir_all(dir.path().join("state")).unwrap();
    let (code, out, err) = tw(&["status"], &config);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("no cycle yet") && !out.contains("all clear"), "{out}");

    std::fs::remove_dir(dir.path().join("state")).unwrap();
    let (code, out, err) = tw(&["status"], &config);
    assert_eq!(code, 2, "{out}{err}");
    assert!(out.contains("state: does not exist") && out.contains("the state directory cannot be used"), "{out}");
}

/// A corrupt `alerts.json` is named, with why; status exits 2, says nothing is clear, and
/// leaves the file where it is (the daemon moves it aside, not status).
#[test]
fn status_names_a_corrupt_alerts_file() {
    let sim = Sim::start(&scenario(false));
    let (dir, config) = setup(&sim.url);
    one_cycle(&config);
    let alerts = dir.path().join("state/alerts.json");
    std::fs::write(&alerts, "{ not json").unwrap();

    let (code, out, err) = tw(&["status"], &config);
    assert_eq!(code, 2, "{out}{err}");
    assert!(out.contains(&format!("{}: corrupt", alerts.display())), "{out}");
    assert!(out.contains("UNKNOWN: 1 state file could not be used") && !out.contains("all clear"), "{out}");
    assert_eq!(std::fs::read_to_string(&alerts).unwrap(), "{ not json", "status never moves a file");

    // Repaired (the clean cycle's book), it is all clear.
    std::fs::remove_file(&alerts).unwrap();
    one_cycle(&config);
    let (code, out, err) = tw(&["status"], &config);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("all clear"), "{out}");
}

/// Two real cycles: the short fires, then the simulator's admin API removes it and it
/// resolves; `alerts history --since 1h` lists firing then resolved.
#[test]
fn alerts_history_lists_firing_then_resolved() {
    let sim = Sim::start(&scenario(true));
    let (_dir, config) = setup(&sim.url);
    one_cycle(&config);
    let (status, body) = sim.call("POST", "/_sim/scenario", Some(&scenario(false)));
    assert_eq!(status, 200, "{body}");
    one_cycle(&config);

    let (code, out, err) = tw(&["alerts", "history", "--since", "1h"], &config);
    assert_eq!(code, 0, "{out}{err}");
    let lines: Vec<&str> = out.lines().filter(|l| l.contains("no-shorts/CHWY")).collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(lines[0].contains(" firing ") && lines[0].contains("critical"), "{out}");
    assert!(lines[1].contains(" resolved ") && lines[1].contains("(was firing)"), "{out}");

    let (code, out, err) = tw(&["alerts", "history", "--since", "soon"], &config);
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("--since"), "{err}");
}
