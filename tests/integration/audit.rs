//! `tradewarden audit --replay` over every example snapshot, `rules test`, `rules list`:
//! exact findings, exit codes, the JSON schema, and the text and Markdown renderings.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::support::{bin, repo, run};

type Key = (String, String, String);

fn audit_json(layout: &str, snapshot: &str, extra: &[&str]) -> (i32, Value, String) {
    let (code, out, err) = run(bin()
        .arg("audit")
        .arg("-c")
        .arg(repo(&format!("examples/{layout}/tradewarden.toml")))
        .arg("--replay")
        .arg(repo(&format!("examples/{layout}/snapshots/{snapshot}")))
        .args(["--format", "json"])
        .args(extra));
    let v: Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("JSON report for {snapshot}: {e}\n{out}\n{err}"));
    (code, v, err)
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

/// The expected findings of every case in a rule-test file, read independently of the binary.
fn expectations(file: &str) -> Vec<(String, String, BTreeSet<Key>)> {
    let text = std::fs::read_to_string(repo(file)).unwrap();
    let doc: toml::Table = toml::from_str(&text).unwrap();
    doc["case"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let snap = c["snapshot"].as_str().unwrap().rsplit('/').next().unwrap().to_owned();
            let want = c["findings"]
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
                .collect();
            (c["name"].as_str().unwrap().to_owned(), snap, want)
        })
        .collect()
}

#[test]
fn every_example_snapshot_gives_exactly_the_expected_findings() {
    for (layout, file) in
        [("stock-bot", "tests/rules/stock-bot.test.toml"), ("ordinis", "tests/rules/ordinis.test.toml")]
    {
        let cases = expectations(file);
        assert!(cases.len() >= 4, "{file} has too few cases");
        for (name, snap, want) in cases {
            let (code, report, err) = audit_json(layout, &snap, &[]);
            assert_eq!(keys(&report), want, "{layout}/{snap} ({name}); stderr: {err}");
            let worst_is_warning_or_more =
                report["findings"].as_array().unwrap().iter().any(|f| f["severity"] != "info");
            assert_eq!(code, i32::from(worst_is_warning_or_more), "{layout}/{snap}: exit code");
        }
    }
}

#[test]
fn clean_snapshot_exits_zero_and_reports_every_source_ok() {
    let (code, report, _) = audit_json("stock-bot", "clean", &[]);
    assert_eq!(code, 0);
    assert_eq!(report["summary"], serde_json::json!({"critical": 0, "warning": 0, "info": 0, "unknown": 0}));
    let sources = report["sources"].as_array().unwrap();
    let names: Vec<&str> = sources.iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["broker", "positions", "metadata", "log:attribution", "log:exits", "log:run"]);
    assert!(sources.iter().all(|s| s["status"] == "ok"), "{sources:?}");
    assert!(report["rules"].as_array().unwrap().iter().all(|r| r["outcome"] == "ok"));
}

#[test]
fn json_report_follows_the_schema() {
    let (_, r, _) = audit_json("stock-bot", "phantom-exit", &[]);
    for key in ["version", "audited_at", "mode", "account", "market", "sources", "findings", "rules", "summary"] {
        assert!(r.get(key).is_some(), "missing `{key}`");
    }
    assert_eq!(r["mode"], "replay");
    assert_eq!(r["audited_at"], "2026-11-20T15:30:00Z");
    assert_eq!(r["market"]["is_open"], true);
    // Decimals are strings, never floats.
    assert_eq!(r["account"]["equity"], "74801.00");
    assert_eq!(r["account"]["status"], "ACTIVE");
    let short = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == "short_position" && f["subject"] == "CHWY")
        .unwrap();
    assert_eq!(short["check"], "no_short_positions");
    assert_eq!(short["severity"], "critical");
    assert_eq!(short["observed"]["qty"], "-1596");
    assert!(short["message"].as_str().unwrap().contains("-1596"));
    assert_eq!(r["summary"]["critical"], 9, "4 shorts, 4 side mismatches, 1 sell that deepens a short");
    let rules: Vec<(&str, &str)> = r["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| (x["id"].as_str().unwrap(), x["outcome"].as_str().unwrap()))
        .collect();
    assert!(rules.contains(&("no-shorts", "violated")));
    assert!(rules.contains(&("main-loop-alive", "ok")));
}

#[test]
fn missing_broker_files_give_source_unavailable_and_unknown_rules_never_orphans() {
    let (code, r, _) = audit_json("stock-bot", "broker-down", &[]);
    assert_eq!(code, 1, "source findings are warnings: exit 1 at the default --fail-on warning");
    // Only source findings and, per blind rule, a `rule_unknown` naming the failed source.
    assert!(
        r["findings"].as_array().unwrap().iter().all(|f| (f["rule"] == "source" && f["code"] == "source_unavailable")
            || (f["code"] == "rule_unknown" && f["subject"].as_str().unwrap().starts_with("broker:")))
    );
    let broker = r["sources"].as_array().unwrap().iter().find(|s| s["name"] == "broker").unwrap();
    assert_eq!(broker["status"], "unavailable");
    assert!(r["rules"].as_array().unwrap().iter().all(|x| x["outcome"] == "unknown"));
    assert!(r["account"].is_null());
    // The bot still tracks AAPL, MSFT, NVDA; with the broker unknown, nothing is orphaned.
    let recon = r["reconciliation"].as_array().unwrap();
    assert!(recon.iter().all(|row| row["status"] == "unknown"), "{recon:?}");
    // Issue 12: a blind critical rule weighs as that rule violated (this exited 0).
    let (code, r, _) = audit_json("stock-bot", "broker-down", &["--fail-on", "critical"]);
    assert_eq!(code, 1);
    let critical = r["findings"].as_array().unwrap().iter().filter(|f| f["severity"] == "critical").count();
    assert_eq!(r["summary"]["critical"], critical);
    assert_eq!(r["summary"]["unknown"], 8, "{}", r["summary"]);
}

#[test]
fn truncated_metadata_is_source_malformed_naming_the_file() {
    let (_, r, _) = audit_json("stock-bot", "metadata-truncated", &[]);
    let f = &r["findings"][0];
    assert_eq!((f["code"].as_str(), f["subject"].as_str()), (Some("source_malformed"), Some("metadata")));
    let msg = f["message"].as_str().unwrap();
    assert!(msg.contains("position_metadata.json"), "{msg}");
    assert!(msg.contains("line"), "the message locates the damage: {msg}");
}

#[test]
fn text_report_has_marks_and_reconciliation_without_colour_off_a_tty() {
    let (code, out, _) = run(bin()
        .arg("audit")
        .arg("-c")
        .arg(repo("examples/stock-bot/tradewarden.toml"))
        .arg("--replay")
        .arg(repo("examples/stock-bot/snapshots/drift")));
    assert_eq!(code, 1);
    assert!(out.contains("✓ no-shorts"), "{out}");
    assert!(out.contains("✗ positions-match"), "{out}");
    assert!(out.contains("symbol | broker qty | bot qty | metadata | status"), "{out}");
    assert!(out.lines().any(|l| l.starts_with("TSLA") && l.contains("orphaned")), "{out}");
    assert!(out.lines().any(|l| l.starts_with("AMD") && l.contains("untracked")), "{out}");
    assert!(!out.contains('\u{1b}'), "no ANSI colour when stdout is not a terminal");
}

#[test]
fn markdown_report_has_tables() {
    let (_, out, _) = run(bin()
        .arg("audit")
        .arg("-c")
        .arg(repo("examples/stock-bot/tradewarden.toml"))
        .arg("--replay")
        .arg(repo("examples/stock-bot/snapshots/phantom-exit"))
        .args(["--format", "markdown"]));
    assert!(out.contains("| severity | rule | code | subject | message |"), "{out}");
    assert!(out.contains("| critical | no-shorts | short_position | CHWY |"), "{out}");
}

#[test]
fn rules_test_files_pass_through_the_binary() {
    for file in ["tests/rules/stock-bot.test.toml", "tests/rules/ordinis.test.toml"] {
        let (code, out, err) = run(bin().args(["rules", "test"]).arg(repo(file)));
        assert_eq!(code, 0, "{file}\n{out}\n{err}");
        let n = expectations(file).len();
        assert!(out.contains(&format!("{n} passed, 0 failed")), "{out}");
    }
}

#[test]
fn a_failing_rule_test_reports_what_differs_and_exits_one() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.test.toml");
    let cfg = repo("examples/stock-bot/tradewarden.toml");
    let snap = repo("examples/stock-bot/snapshots/loop-dead");
    std::fs::write(
        &file,
        format!(
            "config = {cfg:?}\n[[case]]\nname = \"wrong\"\nsnapshot = {snap:?}\nfindings = [ {{ rule = \"no-shorts\", code = \"short_position\", subject = \"AAPL\" }} ]\n"
        ),
    )
    .unwrap();
    let (code, out, _) = run(bin().args(["rules", "test"]).arg(&file));
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("FAIL wrong"), "{out}");
    assert!(out.contains("missing finding: no-shorts short_position AAPL"), "{out}");
    assert!(out.contains("unexpected finding: main-loop-alive log_stale run"), "{out}");
    assert!(out.contains("0 passed, 1 failed"), "{out}");
}

/// Issue 17: `absent = [{rule = "no-short", code = "short_postion"}]` passed for ever (no rule
/// emits that). An expectation naming an unknown rule or a code its rule never emits is an
/// error of the test file: exit 2, naming each.
#[test]
fn a_rule_test_expecting_an_unknown_rule_or_code_is_an_error_not_a_pass() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("typo.test.toml");
    let cfg = repo("examples/stock-bot/tradewarden.toml");
    let snap = repo("examples/stock-bot/snapshots/clean");
    let case = |expect: &str| format!("config = {cfg:?}\n[[case]]\nname = \"typo\"\nsnapshot = {snap:?}\n{expect}\n");
    for (expect, says) in [
        (r#"absent = [ { rule = "no-short", code = "short_position" } ]"#, "no rule `no-short` (rules: no-shorts,"),
        (
            r#"absent = [ { rule = "no-shorts", code = "short_postion" } ]"#,
            "rule `no-shorts` never emits code `short_postion` (its codes: short_position, rule_unknown)",
        ),
        (r#"contains = [ { rule = "source", code = "source_gone" } ]"#, "rule `source` never emits code `source_gone`"),
        (r#"outcomes = { "main-loop" = "ok" }"#, "outcome of no rule `main-loop`"),
    ] {
        std::fs::write(&file, case(expect)).unwrap();
        let (code, out, err) = run(bin().args(["rules", "test"]).arg(&file));
        assert_eq!(code, 2, "{expect}: {out}{err}");
        assert!(err.contains(says), "{expect}: {err}");
    }
    std::fs::write(&file, case(r#"absent = [ { rule = "no-shorts", code = "short_position" }, { rule = "source", code = "source_unavailable" } ]"#)).unwrap();
    let (code, out, err) = run(bin().args(["rules", "test"]).arg(&file));
    assert_eq!(code, 0, "valid expectations still pass: {out}{err}");
}

#[test]
fn rules_list_shows_kinds_and_parameters() {
    let (code, out, _) = run(bin().args(["rules", "list", "-c"]).arg(repo("examples/stock-bot/tradewarden.toml")));
    assert_eq!(code, 0);
    for (id, kind) in [
        ("no-shorts", "no_short_positions"),
        ("positions-match", "position_match"),
        ("metadata-complete", "metadata_complete"),
        ("main-loop-alive", "log_freshness"),
        ("exits-evaluated", "log_activity"),
        ("order-hazards", "open_order_hazard"),
        ("exposure", "exposure_limits"),
        ("account", "account_health"),
    ] {
        assert!(out.contains(&format!("{id} ({kind}")), "{id}: {out}");
    }
    assert!(out.contains("max_age = \"5m\""), "{out}");
    assert!(out.contains("for 2 cycles"), "{out}");
}

/// Issue 17: copying `examples/stock-bot/tradewarden.toml` next to a bot failed with `cannot read
/// rules file .../rules/default.toml`, and so did a configuration with no `rules` key. The default
/// pack is built in: no `rules` key (or `builtin:default`) uses it, wherever the file is.
#[test]
fn the_default_rule_pack_is_built_in_and_a_copied_example_works_anywhere() {
    let dir = tempfile::tempdir().unwrap();
    let copied = dir.path().join("tradewarden.toml");
    std::fs::copy(repo("examples/stock-bot/tradewarden.toml"), &copied).unwrap();
    let (code, out, err) = run(bin().args(["rules", "check", "-c"]).arg(&copied));
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("ok (8 rules from 1 file)"), "{out}");

    let bare = dir.path().join("bare.toml");
    std::fs::write(&bare, "[bot]\nroot = \".\"\n[bot.positions]\nfile = \"state.json\"\n").unwrap();
    let (code, out, err) = run(bin().args(["rules", "list", "-c"]).arg(&bare));
    assert_eq!(code, 2, "the default pack needs [logs.run] and [logs.exits]: {out}{err}");
    assert!(err.contains("builtin:default:"), "problems in the built-in pack are located in it: {err}");

    let own = dir.path().join("own.toml");
    std::fs::write(
        dir.path().join("mine.toml"),
        "[[rule]]\nid = \"shorts\"\ncheck = \"no_short_positions\"\nseverity = \"critical\"\n",
    )
    .unwrap();
    std::fs::write(&own, "rules = [\"mine.toml\"]\n[bot]\nroot = \".\"\n[bot.positions]\nfile = \"state.json\"\n")
        .unwrap();
    let (code, out, _) = run(bin().args(["rules", "list", "-c"]).arg(&own));
    assert_eq!(code, 0);
    assert!(out.starts_with(&format!("rules from {}\n", dir.path().join("mine.toml").display())), "{out}");

    std::fs::write(&own, "rules = [\"builtin:nope\"]\n[bot]\nroot = \".\"\n[bot.positions]\nfile = \"state.json\"\n")
        .unwrap();
    let (code, _, err) = run(bin().args(["rules", "check", "-c"]).arg(&own));
    assert_eq!(code, 2);
    assert!(
        err.contains(":1:10: cannot read rules file `builtin:nope`: no such built-in pack; built in: builtin:default"),
        "{err}"
    );
    let (code, out, _) = run(bin().args(["rules", "list", "-c"]).arg(repo("examples/stock-bot/tradewarden.toml")));
    assert_eq!(code, 0);
    assert!(out.starts_with("rules from builtin:default (built into tradewarden)\n"), "{out}");
}

#[test]
fn unknown_replay_directory_cannot_run() {
    let (code, _, err) = run(bin()
        .arg("audit")
        .arg("-c")
        .arg(repo("examples/stock-bot/tradewarden.toml"))
        .arg("--replay")
        .arg(repo("examples/stock-bot/snapshots/does-not-exist")));
    assert_eq!(code, 2);
    assert!(err.contains("snapshot.toml"), "{err}");
}

#[test]
fn replay_flag_gives_the_directory_a_replay_broker_without_dir_needs() {
    // Incident: `[broker] kind = "replay"` without `dir` and `audit --replay DIR` was refused
    // with "needs `dir` ... or pass --replay DIR" although --replay DIR was passed.
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(repo("examples/stock-bot/tradewarden.toml")).unwrap();
    let rules = repo("rules/default.toml");
    let text = text
        .replace("kind = \"alpaca\"", "kind = \"replay\"")
        .replace("\"../../rules/default.toml\"", &format!("{:?}", rules.display().to_string()));
    assert!(text.contains("kind = \"replay\"") && !text.contains("../../rules"), "{text}");
    let cfg = dir.path().join("tradewarden.toml");
    std::fs::write(&cfg, &text).unwrap();
    let clean = repo("examples/stock-bot/snapshots/clean");

    let (code, out, err) =
        run(bin().arg("audit").arg("-c").arg(&cfg).arg("--replay").arg(&clean).args(["--format", "json"]));
    assert_eq!(code, 0, "{out}\n{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["mode"], "replay");
    assert!(report["sources"].as_array().unwrap().iter().all(|s| s["status"] == "ok"), "{out}");

    // `rules test` replays each case's snapshot: the same configuration is valid there.
    let tests = dir.path().join("replay.test.toml");
    let case = format!(
        "config = \"tradewarden.toml\"\n[[case]]\nname = \"clean\"\nsnapshot = {:?}\nfindings = []\n",
        clean.display().to_string()
    );
    std::fs::write(&tests, case).unwrap();
    let (code, out, err) = run(bin().args(["rules", "test"]).arg(&tests));
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("1 passed, 0 failed"), "{out}");

    // Without the flag the missing `dir` is still an error, and says how to give one.
    let (code, _, err) = run(bin().arg("audit").arg("-c").arg(&cfg));
    assert_eq!(code, 2);
    assert!(err.contains("kind = \"replay\" needs `dir`"), "{err}");
}

/// Issue 12 (d): a broker positions list naming a symbol twice (here the clean snapshot's
/// AAPL long, plus a short AAPL) was merged by symbol and the short could vanish. Through the
/// real binary: the positions source is malformed naming both entries, and every rule that
/// needs it is unknown and counted (exit 1 even at `--fail-on critical`).
#[test]
fn a_broker_positions_list_repeating_a_symbol_is_source_malformed_never_merged() {
    let dir = tempfile::tempdir().unwrap();
    let snap = dir.path().join("snap");
    crate::support::copy_dir(&repo("examples/stock-bot/snapshots/clean"), &snap);
    let file = snap.join("broker/positions.json");
    let mut positions: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let mut short = positions.iter().find(|p| p["symbol"] == "AAPL").unwrap().clone();
    short["qty"] = "-40".into();
    short["side"] = "short".into();
    short["market_value"] = "-7604.00".into();
    positions.push(short);
    std::fs::write(&file, serde_json::to_vec(&positions).unwrap()).unwrap();

    let (code, out, err) = run(bin()
        .arg("audit")
        .arg("-c")
        .arg(repo("examples/stock-bot/tradewarden.toml"))
        .arg("--replay")
        .arg(&snap)
        .args(["--format", "json", "--fail-on", "critical"]));
    let r: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}\n{out}\n{err}"));
    assert_eq!(code, 1, "{out}");
    let k = keys(&r);
    assert!(k.contains(&("source".into(), "source_malformed".into(), "broker:positions".into())), "{k:?}");
    let f = r["findings"].as_array().unwrap().iter().find(|f| f["subject"] == "broker:positions").unwrap();
    let n = positions.len() - 1;
    assert!(
        f["message"].as_str().unwrap().contains(&format!("positions[{n}]: symbol `AAPL` is also at positions[0]")),
        "{f}"
    );
    assert!(k.contains(&("no-shorts".into(), "rule_unknown".into(), "broker:positions".into())), "{k:?}");
    let outcome = |id: &str| r["rules"].as_array().unwrap().iter().find(|x| x["id"] == id).unwrap()["outcome"].clone();
    assert_eq!(outcome("no-shorts"), "unknown");
    assert!(!k.iter().any(|(_, code, _)| code == "short_position"), "nothing is picked from the list: {k:?}");
}
