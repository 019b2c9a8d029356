//! Issue 12 §3 b–d through the real binary against the simulator: `position_match` settles a
//! symbol only while its order shows recent activity, and says what the reconciliation table
//! says; `tradewarden fix` writes positions and metadata kept in one file once, with both edits,
//! and gives a replaced bot file its owner, group and mode back.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use chrono::Utc;
use serde_json::{Value, json};

use crate::simulator::{KEY_ID, SECRET, Sim};
use crate::support::{bin, run};

const RULES: &str = r#"
[[rule]]
id = "positions-match"
check = "position_match"
severity = "critical"
actions = ["fix_state"]
"#;

/// A bot folder with `files` (relative path → content) and a configuration pointing at the
/// simulator; `bot_tables` is everything from `[bot.positions]` on.
struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    fn new(url: &str, files: &[(&str, &str)], bot_tables: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        for (rel, text) in files {
            let path = dir.path().join("bot").join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, text).unwrap();
            // Older than quiet_for: the bot is not writing it.
            let f = std::fs::File::options().write(true).open(&path).unwrap();
            f.set_modified(SystemTime::now() - Duration::from_secs(3600)).unwrap();
        }
        std::fs::write(dir.path().join("rules.toml"), RULES).unwrap();
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

{bot_tables}
[server]
listen = ""

[actions]
mode = "act"
confirm_timeout = "5s"
"#
        );
        std::fs::write(dir.path().join("tradewarden.toml"), config).unwrap();
        Self { dir }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn cli(&self, args: &[&str]) -> Command {
        let mut c = bin();
        c.args(args).arg("-c").arg(self.path("tradewarden.toml"));
        c.env("APCA_API_KEY_ID", KEY_ID).env("APCA_API_SECRET_KEY", SECRET).stdin(Stdio::null());
        c
    }

    fn audit(&self) -> Value {
        let (_, out, err) = run(&mut self.cli(&["audit", "--format", "json"]));
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}{err}"))
    }
}

fn scenario(positions: Value, orders: Value) -> Value {
    json!({
        "positions": positions,
        "orders": orders,
        "prices": { "AAPL": "180.00", "MSFT": "415.00" },
        "clock": { "is_open": true },
        "auth": { "key_id": KEY_ID, "secret_key": SECRET }
    })
}

/// (code, subject) or (symbol, status).
type Pairs = Vec<(String, String)>;

/// The rule's outcome, its (code, subject) findings, and the table's (symbol, status) rows.
fn verdict(report: &Value) -> (String, Pairs, Pairs) {
    let s = |v: &Value| v.as_str().unwrap().to_owned();
    let rule = report["rules"].as_array().unwrap().iter().find(|r| r["id"] == "positions-match").unwrap();
    let findings = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] == "positions-match")
        .map(|f| (s(&f["code"]), s(&f["subject"])))
        .collect();
    let rows =
        report["reconciliation"].as_array().unwrap().iter().map(|r| (s(&r["symbol"]), s(&r["status"]))).collect();
    (s(&rule["outcome"]), findings, rows)
}

fn pair(a: &str, b: &str) -> (String, String) {
    (a.to_owned(), b.to_owned())
}

const POSITIONS_ONLY: &str = r#"[bot.positions]
file = "state/executor_state.json"
at = "/opens"
qty = "qty"
entry_price = "entry_price"
"#;

/// Issue 12 §3b: a buy for 5000 AAPL filled 20 and rested for two days. The broker held 20,
/// the bot tracked 5000; the table said "mismatch" and position_match stayed green, because a
/// partly filled order settled its symbol for as long as it rested.
#[test]
fn a_partly_filled_order_resting_for_days_is_a_mismatch_for_the_rule_and_the_table() {
    let state = r#"{"opens": {"AAPL": {"qty": 5000, "entry_price": 180}}}"#;
    let order = |at: chrono::DateTime<Utc>| {
        json!([{ "symbol": "AAPL", "side": "buy", "qty": "5000", "type": "limit", "limit_price": "170.00",
                 "status": "partially_filled", "filled_qty": "20", "filled_avg_price": "170.00",
                 "submitted_at": at.to_rfc3339(), "updated_at": at.to_rfc3339() }])
    };
    let held = json!([{ "symbol": "AAPL", "qty": "20", "avg_entry_price": "180.00" }]);

    let sim = Sim::start(&scenario(held.clone(), order(Utc::now() - chrono::Duration::days(2))));
    let s = Setup::new(&sim.url, &[("state/executor_state.json", state)], POSITIONS_ONLY);
    let report = s.audit();
    assert_eq!(
        verdict(&report),
        ("violated".into(), vec![pair("quantity_mismatch", "AAPL")], vec![pair("AAPL", "mismatch")]),
        "{report:#}"
    );

    // The same order filling right now: the symbol settles, and the table says so too.
    let sim = Sim::start(&scenario(held, order(Utc::now())));
    let s = Setup::new(&sim.url, &[("state/executor_state.json", state)], POSITIONS_ONLY);
    let report = s.audit();
    assert_eq!(verdict(&report), ("ok".into(), vec![], vec![pair("AAPL", "settling")]), "{report:#}");
}

const ONE_FILE: &str = r#"{
  "opens": {
    "AAPL": { "qty": 10, "entry_price": 180 },
    "MSFT": { "qty": 5, "entry_price": 415 }
  },
  "metadata": {
    "AAPL": { "entry_score": 0.82 },
    "MSFT": { "entry_score": 0.81 }
  }
}
"#;

/// Issue 12 §3c: positions and metadata in one file; the metadata edit, computed from the text
/// as read, replaced the positions edit: MSFT (sold) came back into the bot's positions.
#[test]
fn fix_on_positions_and_metadata_in_one_file_writes_both_edits_once() {
    let sim = Sim::start(&scenario(json!([{ "symbol": "AAPL", "qty": "10", "avg_entry_price": "180" }]), json!([])));
    let tables = r#"[bot.positions]
file = "state/bot.json"
at = "/opens"
qty = "qty"
entry_price = "entry_price"

[bot.metadata]
file = "state/bot.json"
at = "/metadata"
"#;
    let s = Setup::new(&sim.url, &[("state/bot.json", ONE_FILE)], tables);
    let (code, out, err) = run(&mut s.cli(&["fix", "--yes"]));
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("fix_state: done:"), "{out}");
    let after: Value = serde_json::from_str(&std::fs::read_to_string(s.path("bot/state/bot.json")).unwrap()).unwrap();
    assert_eq!(
        after,
        json!({ "opens": { "AAPL": { "qty": 10, "entry_price": 180 } }, "metadata": { "AAPL": { "entry_score": 0.82 } } })
    );
    let backups: Vec<_> = std::fs::read_dir(s.path("state/backups")).unwrap().collect();
    assert_eq!(backups.len(), 1, "backed up once: {backups:?}");
    // The bot and the broker now agree.
    assert_eq!(verdict(&s.audit()), ("ok".into(), vec![], vec![pair("AAPL", "ok")]));
}

fn owner(path: &Path) -> (u32, u32, u32) {
    let m = std::fs::metadata(path).unwrap();
    (m.uid(), m.gid(), m.mode() & 0o7777)
}

/// Issue 12 §3d: fix_state replaced the bot's file (its user's, 0640) with a root-owned one,
/// and the bot could no longer read its own state. Tests run as root here and in CI; as
/// another user the file is the test's own (the mode is still checked).
#[test]
fn fix_keeps_the_bots_owner_group_and_mode_and_the_backup_is_no_wider() {
    let sim = Sim::start(&scenario(json!([{ "symbol": "AAPL", "qty": "10", "avg_entry_price": "180" }]), json!([])));
    let tables = format!("{POSITIONS_ONLY}\n[bot.metadata]\nfile = \"state/position_metadata.json\"\nat = \"\"\n");
    let s = Setup::new(
        &sim.url,
        &[
            ("state/executor_state.json", r#"{"opens": {"AAPL": {"qty": 10}, "MSFT": {"qty": 5}}}"#),
            ("state/position_metadata.json", r#"{"AAPL": {}, "MSFT": {}}"#),
        ],
        &tables,
    );
    let root = rustix::process::geteuid().is_root();
    let (uid, gid) =
        if root { (1234, 1234) } else { (rustix::process::geteuid().as_raw(), rustix::process::getegid().as_raw()) };
    let state = s.path("bot/state/executor_state.json");
    let meta = s.path("bot/state/position_metadata.json");
    for (f, mode) in [(&state, 0o640), (&meta, 0o600)] {
        std::os::unix::fs::chown(f, Some(uid), Some(gid)).unwrap();
        std::fs::set_permissions(f, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    let (code, out, err) = run(&mut s.cli(&["fix", "--yes"]));
    assert_eq!(code, 0, "{out}{err}");
    assert!(!std::fs::read_to_string(&state).unwrap().contains("MSFT"), "fixed");
    assert_eq!(owner(&state), (uid, gid, 0o640));
    assert_eq!(owner(&meta), (uid, gid, 0o600));
    for b in std::fs::read_dir(s.path("state/backups")).unwrap() {
        let (_, _, mode) = owner(&b.unwrap().path());
        assert_eq!(mode & 0o077, 0, "a backup is no wider than tradewarden's own: {mode:04o}");
    }
}
