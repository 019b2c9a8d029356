//! `rules check` on broken configurations: every problem at once, with file:line:column, exit 2.

use crate::support::{bin, run};

#[test]
fn every_problem_is_listed_with_its_line_then_exit_two() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.toml");
    std::fs::write(
        &rules,
        r#"[[rule]]
id = "no-shorts"
check = "no_short_positions"
severity = "critical"

[[rule]]
id = "stale"
check = "log_freshness"
severity = "urgent"
log = "nope"
max_age = "five minutes"

[[rule]]
id = "no-shorts"
check = "no_short_positions"
severity = "info"

[[rule]]
id = "mystery"
check = "crystal_ball"
severity = "info"
actions = ["flatten"]
"#,
    )
    .unwrap();
    let cfg = dir.path().join("tradewarden.toml");
    std::fs::write(
        &cfg,
        r#"rules = ["rules.toml", "missing.toml"]
colour = "blue"

[broker]
kind = "alpaca"
timeout = "fast"

[bot]
root = "."

[bot.positions]
file = "/etc/passwd"
qty = "qty"

[logs.run]
file = "logs/run.jsonl"
tiem = "ts"

[schedule]
cron = "0 30 9 * * Mon-Fri"

[alerts.email]
transport = "smtp"
tls = "sometimes"
to = ["not an address"]

[actions]
mode = "yolo"

[server]
listen = "everywhere"

[alerts]
source_for = "0 cycles"
"#,
    )
    .unwrap();
    let (code, out, err) = run(bin().args(["rules", "check", "-c"]).arg(&cfg));
    assert_eq!(code, 2, "{out}{err}");
    let c = cfg.display().to_string();
    let r = rules.display().to_string();
    let expected = [
        format!("{c}:1:24: cannot read rules file"),
        format!("{c}:2:1: unknown key `colour` in the top level"),
        format!("{c}:6:11: `timeout` in [broker]"),
        format!("{c}:12:8: `file` in [bot.positions] must be a path inside [bot].root"),
        format!("{c}:17:1: unknown key `tiem` in [logs.run]; did you mean `time`?"),
        format!("{c}:20:8: `cron` in [schedule]"),
        format!("{c}:22:1: [alerts.email] is missing the required key `host`"),
        format!("{c}:24:7: `tls` in [alerts.email]: unknown tls mode `sometimes`"),
        format!("{c}:25:6: `to` in [alerts.email]: `not an address` is not an email address"),
        format!("{c}:28:8: `mode` in [actions]: unknown mode `yolo`"),
        format!("{c}:31:10: `listen` in [server]: `everywhere` is not an address"),
        format!("{c}:34:14: `source_for` in [alerts]: a hold of 0 cycles means none: use \"0s\" to fire at once"),
        format!("{r}:9:12: `severity` in rule `stale`: unknown severity `urgent`"),
        format!("{r}:10:7: `log` in rule `stale` names `nope`, but there is no [logs.nope] table"),
        format!("{r}:11:11: `max_age` in rule `stale`"),
        format!("{r}:14:6: rule id `no-shorts` is defined twice"),
        format!("{r}:20:9: unknown check kind `crystal_ball`"),
        format!("{r}:22:11: rule `mystery`: unknown action `flatten`"),
    ];
    for e in &expected {
        assert!(err.lines().any(|l| l.starts_with(e.as_str())), "missing `{e}` in:\n{err}");
    }
    assert!(err.contains(&format!("{} problems found", expected.len())), "{err}");
    assert!(out.is_empty(), "nothing on stdout: {out}");
}

#[test]
fn a_toml_syntax_error_is_located() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("tradewarden.toml");
    std::fs::write(&cfg, "[bot]\nroot = \"x\n").unwrap();
    let (code, _, err) = run(bin().args(["rules", "check", "-c"]).arg(&cfg));
    assert_eq!(code, 2);
    assert!(err.contains(&format!("{}:2:", cfg.display())), "{err}");
    assert!(err.contains("TOML syntax"), "{err}");
}

#[test]
fn the_shipped_examples_are_valid() {
    for cfg in ["examples/stock-bot/tradewarden.toml", "examples/ordinis/tradewarden.toml"] {
        let (code, out, err) = run(bin().args(["rules", "check", "-c"]).arg(crate::support::repo(cfg)));
        assert_eq!(code, 0, "{cfg}: {err}");
        assert!(out.contains("ok ("), "{out}");
    }
}

/// Issue 12: a rule named `source` was taken for the built-in source rule (its `for` replaced
/// by `source_for`, resolved when no source failed); `actions` and `cli` are the pseudo-rules of
/// action findings and CLI triggers. And `to = []` passed, so every email failed forever.
#[test]
fn reserved_rule_ids_and_an_empty_recipient_list_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.toml");
    let mut text = String::new();
    for id in ["source", "actions", "cli"] {
        text.push_str(&format!("[[rule]]\nid = \"{id}\"\ncheck = \"no_short_positions\"\nseverity = \"critical\"\n\n"));
    }
    std::fs::write(&rules, text).unwrap();
    let cfg = dir.path().join("tradewarden.toml");
    std::fs::write(&cfg, "rules = [\"rules.toml\"]\n\n[alerts.email]\ntransport = \"file\"\nto = []\n").unwrap();
    let (code, out, err) = run(bin().args(["rules", "check", "-c"]).arg(&cfg));
    assert_eq!(code, 2, "{out}{err}");
    let (c, r) = (cfg.display().to_string(), rules.display().to_string());
    let expected = [
        format!("{c}:5:6: `to` in [alerts.email] needs at least one recipient"),
        format!("{r}:2:6: rule id `source` is reserved"),
        format!("{r}:7:6: rule id `actions` is reserved"),
        format!("{r}:12:6: rule id `cli` is reserved"),
    ];
    for e in &expected {
        assert!(err.lines().any(|l| l.starts_with(e.as_str())), "missing `{e}` in:\n{err}");
    }
}
