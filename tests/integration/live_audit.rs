//! `tradewarden audit` and `tradewarden snapshot` with `[broker] kind = "alpaca"` against the
//! simulator: the phantom-exit incident, snapshot → replay round trips, failed and unreachable
//! brokers, missing credentials, and secrets that never reach any output.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

use crate::simulator::{BotDir, KEY_ID, SECRET, Sim, phantom_exit_scenario};
use crate::support::{bin, run};

type Key = (String, String, String);

fn with_keys(mut cmd: Command) -> Command {
    cmd.env("APCA_API_KEY_ID", KEY_ID).env("APCA_API_SECRET_KEY", SECRET);
    cmd
}

fn audit(config: &Path, extra: &[&str]) -> (i32, Value, String) {
    let (code, out, err) =
        run(with_keys(bin()).arg("audit").arg("-c").arg(config).args(["--format", "json"]).args(extra));
    let report: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("JSON report: {e}\n{out}\n{err}"));
    (code, report, err)
}

fn keys(report: &Value) -> BTreeSet<Key> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["rule"].as_str().unwrap().into(),
                f["code"].as_str().unwrap().into(),
                f["subject"].as_str().unwrap().into(),
            )
        })
        .collect()
}

fn outcome<'a>(report: &'a Value, rule: &str) -> &'a str {
    report["rules"].as_array().unwrap().iter().find(|r| r["id"] == rule).unwrap()["outcome"].as_str().unwrap()
}

fn has(keys: &BTreeSet<Key>, rule: &str, code: &str, subject: &str) -> bool {
    keys.contains(&(rule.to_owned(), code.to_owned(), subject.to_owned()))
}

const SHORTS: [&str; 4] = ["CHWY", "BILL", "COIN", "OKTA"];

#[test]
fn phantom_exit_against_the_simulator_reports_every_short() {
    let sim = Sim::start(&phantom_exit_scenario());
    let bot = BotDir::phantom_exit(&sim.url);
    let (code, report, err) = audit(&bot.config(), &[]);
    assert_eq!(code, 1, "critical findings: {err}");
    assert_eq!(report["mode"], "paper");
    let k = keys(&report);
    for s in SHORTS {
        assert!(has(&k, "no-shorts", "short_position", s), "{s}: {k:?}");
    }
    assert!(!has(&k, "no-shorts", "short_position", "AAPL"));
    assert!(!k.iter().any(|(_, _, subject)| subject.starts_with("broker:")), "every endpoint answered: {k:?}");
    let broker = report["sources"].as_array().unwrap().iter().find(|s| s["name"] == "broker").unwrap();
    assert_eq!(broker["status"], "ok", "{broker}");
    // The mismatches: the bot tracks longs where the broker holds shorts.
    assert_eq!(outcome(&report, "positions-match"), "violated");
    for s in SHORTS {
        assert!(has(&k, "positions-match", "side_mismatch", s), "{s}: {k:?}");
    }
    assert!(has(&k, "order-hazards", "sell_exceeds_position", "CHWY"), "{k:?}");
    // Five reads, then the recently closed orders and the recent fills (two more) because
    // positions-match found mismatches a fill seconds ago could explain.
    assert_eq!(sim.total_requests(), 7, "one audit, at most seven requests here: {:?}", sim.requests());
    assert_eq!(sim.requests().get("GET /v2/account/activities/{activity_type}"), Some(&1), "{:?}", sim.requests());
}

#[test]
fn snapshot_then_replay_reproduces_the_live_findings() {
    let sim = Sim::start(&phantom_exit_scenario());
    let bot = BotDir::phantom_exit(&sim.url);
    let (_, live, _) = audit(&bot.config(), &[]);

    let out = bot.dir.path().join("snap");
    let (code, stdout, stderr) = run(with_keys(bin()).arg("snapshot").arg("-c").arg(bot.config()).arg("-o").arg(&out));
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.contains("wrote") && stdout.contains("--replay"), "{stdout}");
    assert_eq!(sim.total_requests(), 14, "the snapshot is one more seven-request collection");
    for f in [
        "account.json",
        "positions.json",
        "orders.json",
        "clock.json",
        "account_configurations.json",
        "recent_orders.json",
    ] {
        assert!(out.join("broker").join(f).is_file(), "{f}");
    }
    let positions: Vec<Value> =
        serde_json::from_slice(&std::fs::read(out.join("broker/positions.json")).unwrap()).unwrap();
    assert_eq!(positions.len(), 5);
    assert!(out.join("bot/state/executor_state.json").is_file());
    assert!(out.join("bot/state/position_metadata.json").is_file());
    let meta = std::fs::read_to_string(out.join("snapshot.toml")).unwrap();
    assert!(meta.contains("taken_at = ") && meta.contains("mode = \"paper\""), "{meta}");

    let (replay_code, replayed, err) = audit(&bot.config(), &["--replay", out.to_str().unwrap()]);
    assert_eq!(replayed["mode"], "replay");
    assert_eq!(keys(&replayed), keys(&live), "replay vs live; stderr: {err}");
    assert_eq!(replay_code, 1);
    let k = keys(&replayed);
    for s in SHORTS {
        assert!(has(&k, "no-shorts", "short_position", s), "{s}: {k:?}");
    }
    let outcomes = |r: &Value| -> Vec<(String, String)> {
        r["rules"].as_array().unwrap().iter().map(|o| (o["id"].to_string(), o["outcome"].to_string())).collect()
    };
    assert_eq!(outcomes(&replayed), outcomes(&live));

    // A snapshot never overwrites.
    let (code, _, stderr) = run(with_keys(bin()).arg("snapshot").arg("-c").arg(bot.config()).arg("-o").arg(&out));
    assert_eq!(code, 2);
    assert!(stderr.contains("not an empty directory"), "{stderr}");
}

#[test]
fn a_failed_endpoint_is_recorded_and_replayed_as_failed() {
    let sim = Sim::start(&phantom_exit_scenario());
    let bot = BotDir::phantom_exit(&sim.url);
    sim.faults(&json!({ "error_rate": 1.0, "seed": 1 }));
    let (_, live, _) = audit(&bot.config(), &[]);
    let out = bot.dir.path().join("snap");
    let (code, _, stderr) = run(with_keys(bin()).arg("snapshot").arg("-c").arg(bot.config()).arg("-o").arg(&out));
    assert_eq!(code, 0, "an outage is worth recording: {stderr}");
    assert!(stderr.contains("recorded as failed"), "{stderr}");
    assert!(!out.join("broker/positions.json").exists(), "a failed endpoint has no file");
    let (_, replayed, _) = audit(&bot.config(), &["--replay", out.to_str().unwrap()]);
    assert_eq!(keys(&replayed), keys(&live));
    assert!(has(&keys(&replayed), "source", "source_unavailable", "broker:configurations"));
}

#[test]
fn a_failed_positions_fetch_never_yields_orphans_or_untracked_positions() {
    let sim = Sim::start(&phantom_exit_scenario());
    let bot = BotDir::phantom_exit(&sim.url);
    sim.faults(&json!({ "error_rate": 1.0, "seed": 1 }));
    let (code, report, _) = audit(&bot.config(), &[]);
    assert_eq!(code, 1);
    let k = keys(&report);
    assert!(has(&k, "source", "source_unavailable", "broker:positions"), "{k:?}");
    for (_, code, _) in &k {
        assert!(code != "orphaned_position" && code != "untracked_position" && code != "short_position", "{k:?}");
    }
    for rule in ["no-shorts", "positions-match", "metadata-complete", "exposure"] {
        assert_eq!(outcome(&report, rule), "unknown", "{rule}");
    }
    assert_eq!(
        sim.requests().get("GET /v2/positions").copied(),
        Some(3),
        "retried, then reported: {:?}",
        sim.requests()
    );
}

#[test]
fn an_unreachable_broker_is_source_unavailable_and_exit_one() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let bot = BotDir::phantom_exit(&format!("http://127.0.0.1:{port}"));
    let (code, report, err) = audit(&bot.config(), &[]);
    assert_eq!(code, 1, "{err}");
    let k = keys(&report);
    for e in ["account", "positions", "orders", "clock", "configurations"] {
        assert!(has(&k, "source", "source_unavailable", &format!("broker:{e}")), "{e}: {k:?}");
    }
    let broker = report["sources"].as_array().unwrap().iter().find(|s| s["name"] == "broker").unwrap();
    assert_eq!(broker["status"], "unavailable");
    assert!(broker["error"].as_str().unwrap().contains("cannot reach the broker"), "{broker}");
    for rule in ["no-shorts", "positions-match", "order-hazards", "exposure", "account"] {
        assert_eq!(outcome(&report, rule), "unknown", "{rule}");
    }
}

/// Issue 12 (a): with every broker call failing, `audit --fail-on critical` printed every rule
/// `?` and exited 0. A blind rule now weighs as much as that rule violated: a `rule_unknown`
/// finding at the rule's own severity, counted by `--fail-on`, the exit code and the summary.
#[test]
fn a_broker_down_audit_fails_at_fail_on_critical_and_counts_the_unknown_rules() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let bot = BotDir::phantom_exit(&format!("http://127.0.0.1:{port}"));
    let (code, report, err) = audit(&bot.config(), &["--fail-on", "critical"]);
    assert_eq!(code, 1, "a blind critical rule fails --fail-on critical: {err}");
    let rules = report["rules"].as_array().unwrap();
    let unknown: Vec<&str> =
        rules.iter().filter(|r| r["outcome"] == "unknown").map(|r| r["id"].as_str().unwrap()).collect();
    assert!(unknown.len() >= 5, "{rules:?}");
    assert_eq!(report["summary"]["unknown"], unknown.len(), "{}", report["summary"]);
    let findings = report["findings"].as_array().unwrap();
    for id in &unknown {
        assert!(findings.iter().any(|f| f["rule"] == *id && f["code"] == "rule_unknown"), "{id}: {findings:?}");
    }
    let no_shorts = findings.iter().find(|f| f["rule"] == "no-shorts" && f["code"] == "rule_unknown").unwrap();
    assert_eq!(no_shorts["severity"], "critical");
    assert_eq!(no_shorts["subject"], "broker:positions");
    let critical = findings.iter().filter(|f| f["severity"] == "critical").count();
    assert!(critical >= 1);
    assert_eq!(report["summary"]["critical"], critical);

    let (code, out, err) =
        run(with_keys(bin()).arg("audit").arg("-c").arg(bot.config()).args(["--fail-on", "critical"]));
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(out.contains(&format!("({} rules unknown)", unknown.len())), "{out}");
    assert!(out.contains("CRITICAL rule_unknown broker:positions: unknown, not OK:"), "{out}");
}

#[test]
fn missing_credentials_exit_two_naming_the_variables() {
    let bot = BotDir::phantom_exit("http://127.0.0.1:9");
    let (code, out, err) = run(bin().arg("audit").arg("-c").arg(bot.config()).env("APCA_API_KEY_ID", KEY_ID));
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("APCA_API_SECRET_KEY is not set"), "{err}");
    assert!(!err.contains(KEY_ID), "{err}");
    let (code, _, err) = run(bin().arg("snapshot").arg("-c").arg(bot.config()).arg("-o").arg(bot.dir.path().join("s")));
    assert_eq!(code, 2);
    assert!(err.contains("APCA_API_KEY_ID and APCA_API_SECRET_KEY are not set"), "{err}");
}

#[test]
fn secrets_never_appear_in_any_output_even_on_401() {
    let sim = Sim::start(&phantom_exit_scenario());
    let bot = BotDir::phantom_exit(&sim.url);
    let wrong = "wrong-secret-9c2e41d07b";
    for format in ["text", "json", "markdown"] {
        let (code, out, err) = run(bin()
            .arg("audit")
            .arg("-c")
            .arg(bot.config())
            .args(["--format", format])
            .env("APCA_API_KEY_ID", KEY_ID)
            .env("APCA_API_SECRET_KEY", wrong)
            .env("RUST_LOG", "trace"));
        assert_eq!(code, 1, "{format}");
        let all = format!("{out}{err}");
        assert!(all.contains("APCA_API_SECRET_KEY"), "{format}: the message names the variable");
        assert!(!all.contains(wrong) && !all.contains(SECRET), "{format}: a secret leaked");
    }
    // The right keys, with trace logging, a snapshot and its summary: still nothing.
    let out_dir = bot.dir.path().join("snap");
    let (code, out, err) = run(with_keys(bin())
        .arg("--log-json")
        .arg("snapshot")
        .arg("-c")
        .arg(bot.config())
        .arg("-o")
        .arg(&out_dir)
        .env("RUST_LOG", "trace"));
    assert_eq!(code, 0, "{err}");
    assert!(!format!("{out}{err}").contains(SECRET));
    for entry in crate::util::files_under(&out_dir) {
        let bytes = std::fs::read(&entry).unwrap();
        assert!(!String::from_utf8_lossy(&bytes).contains(SECRET), "{}", entry.display());
    }
}
