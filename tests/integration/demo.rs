//! `tradewarden demo`, the README's main job: the phantom-exit incident end to end with no
//! credentials and no network. The demo's own outputs are checked, not just its exit code.

use serde_json::Value;

use crate::support::{bin, run};

#[test]
fn the_demo_flattens_the_shorts_repairs_the_state_and_writes_the_email() {
    let dir = tempfile::tempdir().unwrap();
    let demo = dir.path().join("tradewarden-demo");
    let (code, out, err) = run(bin().arg("demo").arg("--dir").arg(&demo).env_remove("RUST_LOG"));
    assert_eq!(code, 0, "{out}\n{err}");
    for step in 1..=7 {
        assert!(out.contains(&format!("[{step}/7]")), "step {step} missing:\n{out}");
    }
    assert!(out.contains("Critical findings: 9 before, 0 after."), "{out}");
    assert!(!err.contains("WARN") && !err.contains("ERROR"), "the demo ran without warnings: {err}");

    let read = |name: &str| -> Value {
        serde_json::from_str(&std::fs::read_to_string(demo.join("reports").join(name)).unwrap()).unwrap()
    };
    let before = read("before.json");
    let shorts: Vec<&str> = before["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["code"] == "short_position")
        .map(|f| f["subject"].as_str().unwrap())
        .collect();
    assert_eq!(shorts.len(), 4, "{shorts:?}");
    let after = read("after.json");
    assert_eq!(after["findings"], serde_json::json!([]), "everything repaired");
    assert!(after["reconciliation"].as_array().unwrap().iter().all(|r| r["status"] == "ok"));

    // Every action journaled with an intent before and an outcome after.
    let journal = std::fs::read_to_string(demo.join("state/actions.jsonl")).unwrap();
    let records: Vec<Value> = journal.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let intents = records.iter().filter(|r| r["kind"] == "intent").count();
    let outcomes = records.iter().filter(|r| r["kind"] == "outcome").count();
    assert!(intents >= 4 && intents == outcomes, "{journal}");
    let actions: Vec<&str> =
        records.iter().filter(|r| r["kind"] == "intent").map(|r| r["action"].as_str().unwrap()).collect();
    for a in ["flatten_shorts", "cancel_hazard_orders", "enforce_no_shorting", "fix_state"] {
        assert!(actions.contains(&a), "{a} not journaled: {actions:?}");
    }

    // The bot's state now matches the broker (AAPL only), with a backup of the old one.
    let state: Value =
        serde_json::from_str(&std::fs::read_to_string(demo.join("bot/state/executor_state.json")).unwrap()).unwrap();
    assert_eq!(state["opens"].as_object().unwrap().keys().collect::<Vec<_>>(), ["AAPL"]);
    assert!(std::fs::read_dir(demo.join("state/backups")).unwrap().count() >= 1);

    // The alert email went out through the file transport.
    let eml = std::fs::read_dir(demo.join("state/mail"))
        .unwrap()
        .flatten()
        .find(|e| e.path().extension().is_some_and(|x| x == "eml"))
        .expect("an .eml file")
        .path();
    let raw = std::fs::read_to_string(eml).unwrap();
    assert!(raw.contains("Subject: [tradewarden] CRITICAL no-shorts:"), "{raw}");
    assert!(raw.contains("text/html") && raw.contains("text/plain"));

    // The recorded incident replays to the same critical findings.
    let (code, replay, _) = run(bin()
        .arg("audit")
        .arg("-c")
        .arg(demo.join("tradewarden.toml"))
        .arg("--replay")
        .arg(demo.join("reports/incident-snapshot"))
        .args(["--format", "json"]));
    assert_eq!(code, 1);
    let replay: Value = serde_json::from_str(&replay).unwrap();
    assert_eq!(replay["summary"]["critical"], before["summary"]["critical"]);

    // Issue 17: the "Try next" commands work from any directory (absolute paths, no repo files).
    let next: Vec<&str> = out
        .split("\nTry next:\n")
        .nth(1)
        .unwrap()
        .lines()
        .filter_map(|l| l.trim().strip_prefix("tradewarden "))
        .filter(|l| !l.starts_with("sim "))
        .collect();
    assert!(next.len() >= 3, "{out}");
    let elsewhere = tempfile::tempdir().unwrap();
    for cmd in next {
        let mut c = bin();
        c.args(cmd.split_whitespace()).current_dir(elsewhere.path());
        let (code, o, e) = run(&mut c);
        assert!(code == 0 || code == 1, "`tradewarden {cmd}` from another directory: {code}\n{o}{e}");
    }
}

#[test]
fn running_the_demo_twice_starts_fresh() {
    let dir = tempfile::tempdir().unwrap();
    for _ in 0..2 {
        let (code, out, err) = run(bin().arg("demo").arg("--dir").arg(dir.path()));
        assert_eq!(code, 0, "{out}\n{err}");
        assert!(out.contains("Critical findings: 9 before, 0 after."), "{out}");
    }
}

/// Issue 12: `demo --dir DIR` deleted `DIR/state`, `DIR/bot`, `DIR/reports` and overwrote
/// `DIR/tradewarden.toml` in any folder. A non-empty folder it did not create is refused,
/// untouched, exit 2.
#[test]
fn the_demo_refuses_a_users_folder_and_touches_nothing_in_it() {
    let dir = tempfile::tempdir().unwrap();
    let user = dir.path().join("my-bot");
    std::fs::create_dir_all(user.join("state")).unwrap();
    std::fs::write(user.join("state/positions.json"), "{\"AAPL\": 10}").unwrap();
    std::fs::write(user.join("tradewarden.toml"), "# mine\n").unwrap();
    let (code, out, err) = run(bin().arg("demo").arg("--dir").arg(&user).env_remove("RUST_LOG"));
    assert_eq!(code, 2, "{out}\n{err}");
    assert!(err.contains("is not empty and was not created by `tradewarden demo`"), "{err}");
    assert_eq!(std::fs::read_to_string(user.join("state/positions.json")).unwrap(), "{\"AAPL\": 10}");
    assert_eq!(std::fs::read_to_string(user.join("tradewarden.toml")).unwrap(), "# mine\n");
    assert!(!user.join(".tradewarden-demo").exists() && !user.join("bot").exists());
}
