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

/// `[server] blind_after`, `header_timeout` and `max_connections` are validated like every other
/// key: file:line:column and a sentence, all problems at once, exit 2.
#[test]
fn server_limits_are_validated_with_file_and_line() {
    const BOT: &str = "[bot]\nroot = \".\"\n[bot.positions]\nfile = \"positions.json\"\n";
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("rules.toml"), "").unwrap();
    let cfg = dir.path().join("tradewarden.toml");
    std::fs::write(
        &cfg,
        format!("rules = [\"rules.toml\"]\n[server]\nblind_after = \"0 cycles\"\nheader_timeout = \"0s\"\nmax_connections = 0\n{BOT}"),
    )
    .unwrap();
    let (code, out, err) = run(bin().args(["rules", "check", "-c"]).arg(&cfg));
    assert_eq!(code, 2, "{out}{err}");
    let c = cfg.display().to_string();
    for e in [
        format!("{c}:3:15: `blind_after` in [server]: 0 cycles would call every start-up blind"),
        format!("{c}:4:18: `header_timeout` in [server] cannot be 0s"),
        format!("{c}:5:19: `max_connections` in [server] must be between 1 and 4096, not 0"),
    ] {
        assert!(err.lines().any(|l| l.starts_with(e.as_str())), "missing `{e}` in:\n{err}");
    }
    std::fs::write(&cfg, format!("rules = [\"rules.toml\"]\n[server]\nblind_after = \"soon\"\n{BOT}")).unwrap();
    let (code, _, err) = run(bin().args(["rules", "check", "-c"]).arg(&cfg));
    assert_eq!(code, 2);
    assert!(err.contains(&format!("{c}:3:15: `blind_after` in [server]")) && err.contains("\"3 cycles\""), "{err}");
    std::fs::write(
        &cfg,
        format!("rules = [\"rules.toml\"]\n[server]\nblind_after = \"90s\"\nheader_timeout = \"5s\"\nmax_connections = 16\n{BOT}"),
    )
    .unwrap();
    let (code, out, err) = run(bin().args(["rules", "check", "-c"]).arg(&cfg));
    assert_eq!(code, 0, "valid values load: {out}{err}");
}

/// Issue 17: `[server] external_url` (the status page as readers reach it, linked from every
/// email) is an http(s) URL without credentials; its host is served (the Host check allows it).
#[test]
fn external_url_is_validated_and_never_carries_credentials() {
    const BOT: &str = "[bot]\nroot = \".\"\n[bot.positions]\nfile = \"positions.json\"\n";
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("rules.toml"), "").unwrap();
    let cfg = dir.path().join("tw.toml");
    let c = cfg.display().to_string();
    for (url, says) in [
        ("https://ops:hunter2@tw.example.org/", "a user or password in the URL would be sent in every email"),
        ("ftp://tw.example.org/", "is not an http(s) URL with a host"),
        ("tw.example.org", "is not a URL"),
    ] {
        std::fs::write(&cfg, format!("rules = [\"rules.toml\"]\n[server]\nexternal_url = {url:?}\n{BOT}")).unwrap();
        let (code, out, err) = run(bin().args(["rules", "check", "-c"]).arg(&cfg));
        assert_eq!(code, 2, "{url}: {out}{err}");
        assert!(err.contains(&format!("{c}:3:16: `external_url` in [server]")) && err.contains(says), "{url}: {err}");
        assert!(!err.contains("hunter2"), "the password is not echoed: {err}");
    }
    std::fs::write(
        &cfg,
        format!("rules = [\"rules.toml\"]\n[server]\nexternal_url = \"https://tw.example.org/\"\n{BOT}"),
    )
    .unwrap();
    let (code, out, err) = run(bin().args(["rules", "check", "-c"]).arg(&cfg));
    assert_eq!(code, 0, "{out}{err}");
}

/// Issue 17: `rules check` lists every problem at once: a `[schedule]` with both `every` and
/// `cron` also gets each value's own problem, beside a duplicate rule id and the other tables'
/// problems; a `[bot] root` that does not exist is a warning, not an error.
#[test]
fn every_problem_comes_in_one_run_and_a_missing_bot_root_is_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let rule = "[[rule]]\nid = \"a\"\ncheck = \"no_short_positions\"\nseverity = \"critical\"\n";
    std::fs::write(dir.path().join("rules.toml"), format!("{rule}\n{rule}")).unwrap();
    let cfg = dir.path().join("tw.toml");
    std::fs::write(
        &cfg,
        "rules = [\"rules.toml\"]\n[broker]\ntimeout = \"soon\"\n[bot]\nroot = \"nowhere\"\n[bot.positions]\n\
         file = \"state.json\"\n[schedule]\nevery = \"soon\"\ncron = \"61 * * * *\"\n",
    )
    .unwrap();
    let (code, out, err) = run(bin().args(["rules", "check", "-c"]).arg(&cfg));
    assert_eq!(code, 2, "{out}{err}");
    let c = cfg.display().to_string();
    for e in [
        format!("{}:7:6: rule id `a` is defined twice", dir.path().join("rules.toml").display()),
        format!("{c}:3:11: `timeout` in [broker]"),
        format!("{c}:10:8: [schedule] takes `every` or `cron`, not both"),
        format!("{c}:9:9: `every` in [schedule]"),
        format!("{c}:10:8: `cron` in [schedule]: `61 * * * *`: the minute field `61` is not valid (minute is 0-59)"),
    ] {
        assert!(err.lines().any(|l| l.starts_with(e.as_str())), "missing `{e}` in:\n{err}");
    }
    assert!(err.contains("5 problems found"), "{err}");

    std::fs::write(dir.path().join("rules.toml"), rule).unwrap();
    std::fs::write(
        &cfg,
        "rules = [\"rules.toml\"]\n[bot]\nroot = \"nowhere\"\n[bot.positions]\nfile = \"state.json\"\n",
    )
    .unwrap();
    let (code, out, err) = run(bin().args(["rules", "check", "-c"]).arg(&cfg));
    assert_eq!(code, 0, "a missing root is not an error: {out}{err}");
    assert!(err.contains("warning:") && err.contains("[bot] root") && err.contains("nowhere"), "{err}");
    std::fs::create_dir(dir.path().join("nowhere")).unwrap();
    let (_, _, err) = run(bin().args(["rules", "check", "-c"]).arg(&cfg));
    assert!(!err.contains("warning:"), "{err}");
}

/// `[broker] max_requests_per_minute` (the client-side request budget) is a whole number in
/// 1..=100000: 0, a negative or a string is a located problem, exit 2.
#[test]
fn max_requests_per_minute_is_validated_with_file_and_line() {
    const BOT: &str = "[bot]\nroot = \".\"\n[bot.positions]\nfile = \"positions.json\"\n";
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("rules.toml"), "").unwrap();
    let cfg = dir.path().join("tradewarden.toml");
    let c = cfg.display().to_string();
    for (value, expected) in [
        ("0", format!("{c}:3:27: `max_requests_per_minute` in [broker] must be between 1 and 100000, not 0")),
        ("-5", format!("{c}:3:27: `max_requests_per_minute` in [broker] must be between 1 and 100000, not -5")),
        ("\"lots\"", format!("{c}:3:27: ")),
    ] {
        std::fs::write(&cfg, format!("rules = [\"rules.toml\"]\n[broker]\nmax_requests_per_minute = {value}\n{BOT}"))
            .unwrap();
        let (code, out, err) = run(bin().args(["rules", "check", "-c"]).arg(&cfg));
        assert_eq!(code, 2, "{value}: {out}{err}");
        assert!(err.lines().any(|l| l.starts_with(expected.as_str())), "{value}: missing `{expected}` in:\n{err}");
    }
    std::fs::write(&cfg, format!("rules = [\"rules.toml\"]\n[broker]\nmax_requests_per_minute = 150\n{BOT}")).unwrap();
    let (code, out, err) = run(bin().args(["rules", "check", "-c"]).arg(&cfg));
    assert_eq!(code, 0, "a valid value loads: {out}{err}");
}

/// `every = "300000y"` passed `rules check` and panicked in `run` (exit 101, `now + every`
/// overflowed chrono's calendar). Every duration in the configuration and the rules is now
/// range-checked when it is read: each absurd value is a located problem, exit 2, in both
/// `rules check` and `run`, and nothing panics.
#[test]
fn every_300000y_and_every_other_absurd_duration_is_a_located_problem_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.toml");
    std::fs::write(
        &rules,
        r#"[[rule]]
id = "fresh"
check = "log_freshness"
severity = "warning"
log = "run"
max_age = "300000y"
for = "300000y"
repeat = "300000y"

[[rule]]
id = "busy"
check = "log_activity"
severity = "warning"
log = "run"
within = "300000y"

[[rule]]
id = "stale"
check = "open_order_hazard"
severity = "warning"
stale_after = "300000y"

[[rule]]
id = "match"
check = "position_match"
severity = "warning"
settle = "300000y"
"#,
    )
    .unwrap();
    let cfg = dir.path().join("tradewarden.toml");
    std::fs::write(
        &cfg,
        r#"rules = ["rules.toml"]
state_dir = "state"

[broker]
timeout = "300000y"

[bot]
root = "."

[bot.positions]
file = "state.json"

[logs.run]
file = "run.jsonl"

[schedule]
every = "300000y"

[alerts]
repeat = "300000y"
resolved_retention = "300000y"
source_for = "300000y"

[actions]
cooldown = "300000y"
confirm_timeout = "300000y"

[actions.fix_state]
quiet_for = "300000y"

[actions.exec.stop]
command = ["true"]
timeout = "300000y"
"#,
    )
    .unwrap();
    let c = cfg.display().to_string();
    let r = rules.display().to_string();
    let expected = [
        format!("{c}:5:11: `timeout` in [broker]"),
        format!("{c}:17:9: `every` in [schedule]"),
        format!("{c}:20:10: `repeat` in [alerts]"),
        format!("{c}:21:22: `resolved_retention` in [alerts]"),
        format!("{c}:22:14: `source_for` in [alerts]"),
        format!("{c}:25:12: `cooldown` in [actions]"),
        format!("{c}:26:19: `confirm_timeout` in [actions]"),
        format!("{c}:29:13: `quiet_for` in [actions.fix_state]"),
        format!("{c}:33:11: `timeout` in [actions.exec.stop]"),
        format!("{r}:6:11: `max_age` in rule `fresh`"),
        format!("{r}:7:7: `for` in rule `fresh`"),
        format!("{r}:8:10: `repeat` in rule `fresh`"),
        format!("{r}:15:10: `within` in rule `busy`"),
        format!("{r}:21:15: `stale_after` in rule `stale`"),
        format!("{r}:27:10: `settle` in rule `match`"),
    ];
    for args in [&["rules", "check", "-c"][..], &["run", "--max-cycles", "1", "-c"][..]] {
        let (code, out, err) = run(bin().args(args).arg(&cfg).current_dir(dir.path()));
        assert_eq!(code, 2, "{args:?}: {out}{err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        for e in &expected {
            let line = err.lines().find(|l| l.starts_with(e.as_str()));
            assert!(line.is_some_and(|l| l.contains("longer than the limit")), "{args:?}: missing `{e}` in:\n{err}");
        }
        assert!(err.contains(&format!("{} problems found", expected.len())), "{args:?}: {err}");
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

/// Review (issue 12, "Trust"): `http://` broker URLs were accepted for any host (live keys in
/// plain-text headers), as were a plain-http heartbeat URL (its token) and `tls = "none"` with a
/// login to a remote SMTP host (lettre sends AUTH in the clear). Each is now a config error with
/// file:line, all at once, exit 2; the same settings pointing at loopback stay valid.
#[test]
fn cleartext_credentials_to_a_remote_host_are_config_errors_listed_at_once() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("rules.toml"), "").unwrap();
    let cfg = dir.path().join("tradewarden.toml");
    let write = |broker: &str, heartbeat: &str, smtp: &str| {
        std::fs::write(
            &cfg,
            format!(
                "rules = [\"rules.toml\"]\n[broker]\nbase_url = \"http://{broker}\"\n\
                 [alerts]\nheartbeat_url = \"http://{heartbeat}/ping/3f1c-token\"\n\
                 [alerts.email]\ntransport = \"smtp\"\nhost = \"{smtp}\"\ntls = \"none\"\n\
                 username_env = \"SMTP_USER\"\npassword_env = \"SMTP_PASSWORD\"\n\
                 [bot]\nroot = \".\"\n[bot.positions]\nfile = \"positions.json\"\n"
            ),
        )
        .unwrap();
    };
    write("api.alpaca.markets", "hc-ping.example", "smtp.example.com");
    let (code, out, err) = run(bin().args(["rules", "check", "-c"]).arg(&cfg));
    assert_eq!(code, 2, "{out}{err}");
    let c = cfg.display().to_string();
    for (line, text) in [
        (3, "is plain http to `api.alpaca.markets`: the API keys"),
        (5, "is plain http to `hc-ping.example`: the heartbeat URL"),
        (
            9,
            "tls = \"none\" with `username_env`/`password_env` would send the password to `smtp.example.com` unencrypted",
        ),
    ] {
        let prefix = format!("{c}:{line}:");
        assert!(
            err.lines().any(|l| l.starts_with(&prefix) && l.contains(text)),
            "missing {prefix} `{text}` in:\n{err}"
        );
    }

    for (broker, heartbeat, smtp) in
        [("127.0.0.1:8080", "localhost:9", "127.0.0.1"), ("[::1]:8080", "127.0.0.1:9", "localhost")]
    {
        write(broker, heartbeat, smtp);
        let (code, out, err) = run(bin().args(["rules", "check", "-c"]).arg(&cfg));
        assert_eq!(code, 0, "plain text to this machine stays valid: {out}{err}");
    }
}

/// Review (issue 12, "Trust"): the status server shows positions and equity without a login, so
/// listening on a non-loopback address needs `[server] allow_remote = true`; `allowed_hosts`
/// entries are host names without a port.
#[test]
fn a_non_loopback_listen_needs_allow_remote() {
    const BOT: &str = "[bot]\nroot = \".\"\n[bot.positions]\nfile = \"positions.json\"\n";
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("rules.toml"), "").unwrap();
    let cfg = dir.path().join("tradewarden.toml");
    let c = cfg.display().to_string();
    std::fs::write(
        &cfg,
        format!("rules = [\"rules.toml\"]\n[server]\nlisten = \"0.0.0.0:9464\"\nallowed_hosts = [\"tw.example.org:9464\"]\n{BOT}"),
    )
    .unwrap();
    let (code, out, err) = run(bin().args(["rules", "check", "-c"]).arg(&cfg));
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.lines().any(|l| l.starts_with(&format!("{c}:3:10: `listen` in [server] is 0.0.0.0:9464"))
            && l.contains("allow_remote = true")),
        "{err}"
    );
    assert!(
        err.lines().any(|l| l.starts_with(&format!("{c}:4:"))
            && l.contains("`tw.example.org:9464` is not a host name or address without a port")),
        "{err}"
    );
    std::fs::write(
        &cfg,
        format!(
            "rules = [\"rules.toml\"]\n[server]\nlisten = \"0.0.0.0:9464\"\nallow_remote = true\nallowed_hosts = [\"tw.example.org\"]\n{BOT}"
        ),
    )
    .unwrap();
    let (code, out, err) = run(bin().args(["rules", "check", "-c"]).arg(&cfg));
    assert_eq!(code, 0, "an explicit opt-in loads: {out}{err}");
}

/// The same rule for `APCA_API_BASE_URL`, which no configuration file holds: `audit` refuses to
/// build the client (exit 2, naming the variable) instead of sending the keys in plain text.
#[test]
fn an_http_apca_api_base_url_to_a_remote_host_is_exit_2_naming_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("rules.toml"), "").unwrap();
    std::fs::write(dir.path().join("positions.json"), "{}").unwrap();
    let cfg = dir.path().join("tradewarden.toml");
    std::fs::write(
        &cfg,
        "rules = [\"rules.toml\"]\n[bot]\nroot = \".\"\n[bot.positions]\nfile = \"positions.json\"\n[server]\nlisten = \"\"\n",
    )
    .unwrap();
    let (code, out, err) = run(bin()
        .args(["audit", "-c"])
        .arg(&cfg)
        .env("APCA_API_KEY_ID", "PKTESTKEY")
        .env("APCA_API_SECRET_KEY", "s3cr3t-value")
        .env("APCA_API_BASE_URL", "http://api.alpaca.markets"));
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("(from APCA_API_BASE_URL)") && err.contains("plain http to `api.alpaca.markets`"), "{err}");
    assert!(!err.contains("s3cr3t-value") && !out.contains("s3cr3t-value"));
}
