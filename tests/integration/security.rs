//! Issue 8, security: secrets never leave (stdout, stderr, logs at trace level, state, snapshot,
//! email, status page); the state directory is private (0700, files 0600); the status server
//! binds loopback by default and serves nothing secret; a bot file symlinked outside the bot
//! root reaches neither a report nor a snapshot.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde_json::{Value, json};
use tradewarden::clock::{Clock, SystemClock};
use tradewarden::collect::broker::Broker;
use tradewarden::collect::broker::alpaca::{AlpacaClient, ClientSettings, RetryPolicy};
use tradewarden::config::Config;
use tradewarden::report::Report;
use tradewarden::server::{AllowedHosts, Shared, StatusView, router};

use crate::simulator::{BotDir, Sim, phantom_exit_scenario};
use crate::support::{bin, run};
use crate::util::SmtpServer;

const KEY_ID: &str = "SEKRET-KEY-ID-5f2c";
const SECRET: &str = "SEKRET-SECRET-9d1e";
const SMTP_USER: &str = "SEKRET-SMTP-USER-31b0";
const SMTP_PASS: &str = "SEKRET-SMTP-PASS-77aa";
const SECRETS: [&str; 4] = [KEY_ID, SECRET, SMTP_USER, SMTP_PASS];

fn scenario() -> Value {
    let mut s = phantom_exit_scenario();
    s["auth"] = json!({ "key_id": KEY_ID, "secret_key": SECRET });
    s
}

/// The binary with every secret in its environment and logging at trace level.
fn secret_env(mut cmd: Command) -> Command {
    cmd.env("APCA_API_KEY_ID", KEY_ID)
        .env("APCA_API_SECRET_KEY", SECRET)
        .env("TRADEWARDEN_SMTP_USERNAME", SMTP_USER)
        .env("TRADEWARDEN_SMTP_PASSWORD", SMTP_PASS)
        .env("RUST_LOG", "trace");
    cmd
}

fn assert_no_secret(what: &str, text: &str) {
    for s in SECRETS {
        assert!(!text.contains(s), "{what} contains the secret `{s}`");
    }
}

/// A configuration beside the phantom-exit bot with `[alerts.email]` as given.
fn config_with(bot: &BotDir, email: &str) -> PathBuf {
    let base = std::fs::read_to_string(bot.config()).unwrap();
    let path = bot.dir.path().join(format!("tradewarden-{}.toml", email.len()));
    std::fs::write(&path, format!("{base}\n{email}")).unwrap();
    path
}

#[test]
fn secrets_never_reach_any_output_state_snapshot_or_email() {
    let sim = Sim::start(&scenario());
    let bot = BotDir::phantom_exit(&sim.url);
    let smtp = SmtpServer::start();
    let smtp_config = config_with(
        &bot,
        &format!(
            "[alerts.email]\ntransport = \"smtp\"\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\n\
             username_env = \"TRADEWARDEN_SMTP_USERNAME\"\npassword_env = \"TRADEWARDEN_SMTP_PASSWORD\"\n\
             from = \"tradewarden@example.com\"\nto = [\"ops@example.com\"]\n",
            smtp.port
        ),
    );
    let file_config = bot.config(); // no [alerts.email]: .eml files under state_dir
    let snap = bot.dir.path().join("snap");
    let c = |p: &Path| p.to_str().unwrap().to_owned();
    let runs: Vec<(Vec<String>, &[i32])> = vec![
        (vec!["audit".into(), "-c".into(), c(&file_config), "--format".into(), "json".into()], &[1]),
        (vec!["audit".into(), "-c".into(), c(&file_config), "--format".into(), "text".into()], &[1]),
        (
            vec![
                "--log-json".into(),
                "audit".into(),
                "-c".into(),
                c(&file_config),
                "--format".into(),
                "markdown".into(),
            ],
            &[1],
        ),
        (vec!["snapshot".into(), "-c".into(), c(&file_config), "-o".into(), c(&snap)], &[0]),
        (vec!["audit".into(), "-c".into(), c(&file_config), "--replay".into(), c(&snap)], &[1]),
        (vec!["alerts".into(), "test".into(), "-c".into(), c(&file_config)], &[0]),
        // aiosmtpd offers no AUTH on plain text: the message stays queued (exit 1), and the
        // error that says so must not carry the credentials either.
        (vec!["alerts".into(), "test".into(), "-c".into(), c(&smtp_config)], &[0, 1]),
        (
            ["silence", "add", "-c", &c(&file_config), "--rule", "no-shorts", "--for", "1h", "--reason", "flattening"]
                .map(str::to_owned)
                .to_vec(),
            &[0],
        ),
    ];
    for (args, codes) in &runs {
        let (code, out, err) = run(secret_env(bin()).args(args));
        assert!(codes.contains(&code), "{args:?}: exit {code}\n{out}\n{err}");
        assert_no_secret(&format!("stdout of {args:?}"), &out);
        assert_no_secret(&format!("stderr of {args:?}"), &err);
    }
    // Every file the runs left: state (outbox, .eml, silences, locks), the snapshot, configs.
    let files: Vec<PathBuf> = crate::util::entries_under(bot.dir.path()).into_iter().filter(|p| p.is_file()).collect();
    assert!(files.iter().any(|p| p.extension().is_some_and(|e| e == "eml")), "an .eml was written: {files:?}");
    assert!(files.iter().any(|p| p.starts_with(&snap)), "the snapshot was written");
    for f in &files {
        assert_no_secret(&f.display().to_string(), &String::from_utf8_lossy(&std::fs::read(f).unwrap()));
    }
    for m in smtp.messages() {
        assert_no_secret("a delivered message", &m);
    }
}

#[test]
fn the_state_directory_is_private() {
    let sim = Sim::start(&scenario());
    let bot = BotDir::phantom_exit(&sim.url);
    let cfg = bot.config();
    let cfg = cfg.to_str().unwrap();
    for args in [
        vec!["audit", "-c", cfg],
        vec!["alerts", "test", "-c", cfg],
        vec!["silence", "add", "-c", cfg, "--rule", "no-shorts", "--for", "1h", "--reason", "x"],
    ] {
        let (code, out, err) = run(secret_env(bin()).args(&args));
        assert!(code == 0 || code == 1, "{args:?}: {out}{err}");
    }
    let state = bot.dir.path().join("state");
    let mode = |p: &Path| std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&state), 0o700, "{}", state.display());
    let entries = crate::util::entries_under(&state);
    assert!(entries.iter().any(|p| p.extension().is_some_and(|e| e == "eml")), "{entries:?}");
    assert!(entries.iter().any(|p| p.ends_with("silences.json")), "{entries:?}");
    for p in entries {
        let want = if p.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(mode(&p), want, "{}: {:o}", p.display(), mode(&p));
    }
}

#[test]
fn the_status_server_binds_loopback_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("tradewarden.toml");
    std::fs::write(dir.path().join("rules.toml"), "").unwrap();
    std::fs::write(&cfg, "rules = [\"rules.toml\"]\n[bot]\n[bot.positions]\nfile = \"p.json\"\n").unwrap();
    let listen = Config::load(&cfg).unwrap().server.listen.unwrap();
    assert!(listen.ip().is_loopback(), "{listen}");
    assert_eq!(listen.to_string(), "127.0.0.1:9464");
    // An empty [server] table keeps the default.
    std::fs::write(&cfg, "rules = [\"rules.toml\"]\n[bot]\n[bot.positions]\nfile = \"p.json\"\n[server]\n").unwrap();
    assert!(Config::load(&cfg).unwrap().server.listen.unwrap().ip().is_loopback());
}

/// The status page over HTTP, with a view built from a real collection against the
/// simulator through a client holding the secrets: no endpoint shows them.
#[tokio::test]
async fn the_status_server_serves_nothing_secret() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let sim = Sim::start(&scenario());
    let bot = BotDir::phantom_exit(&sim.url);
    let config = Config::load(&bot.config()).unwrap();
    let client = AlpacaClient::new(&ClientSettings {
        base_url: sim.url.clone(),
        key_id: KEY_ID.into(),
        secret_key: SECRET.into(),
        timeout: Duration::from_secs(5),
        retry: RetryPolicy::default(),
    })
    .unwrap();
    assert_no_secret("the client's Debug", &format!("{client:?}"));
    let broker = Broker::Alpaca(client);
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let snap = tradewarden::collect::collect(&config, &broker, clock.as_ref()).await.unwrap();
    assert!(snap.broker.positions.is_ok(), "authenticated with the secrets");
    let ev = tradewarden::engine::evaluate(&config.rules, &snap, snap.taken_at);
    let mut view =
        StatusView::new(snap.taken_at, "host".into(), bot.config().display().to_string(), Duration::from_secs(30));
    view.report = Some(Report::build(&snap, &ev));
    view.cycles = 1;
    view.last_cycle_at = Some(snap.taken_at);
    let shared = Arc::new(Shared { view: RwLock::new(view), clock });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        axum::serve(listener, router(shared, Arc::new(AllowedHosts::new(Some(addr), &[])))).await
    });
    let http = reqwest::Client::new();
    for path in ["/", "/api/status", "/metrics", "/healthz"] {
        let body = http.get(format!("http://{addr}{path}")).send().await.unwrap().text().await.unwrap();
        assert_no_secret(path, &body);
        if path == "/api/status" {
            assert!(body.contains("CHWY"), "the real report is served: {body}");
        }
    }
    server.abort();
}

#[test]
fn a_bot_file_symlinked_outside_the_root_reaches_no_report_and_no_snapshot() {
    let sim = Sim::start(&scenario());
    let bot = BotDir::phantom_exit(&sim.url);
    let secret_file = bot.dir.path().join("id_rsa");
    std::fs::write(&secret_file, "{\"opens\": {}, \"key\": \"-----BEGIN OPENSSH PRIVATE KEY----- SEKRET-FILE\"}")
        .unwrap();
    let state = bot.dir.path().join("bot/state/executor_state.json");
    std::fs::remove_file(&state).unwrap();
    std::os::unix::fs::symlink(&secret_file, &state).unwrap();
    // A FIFO in place of the metadata file: nothing may block on it.
    let meta = bot.dir.path().join("bot/state/position_metadata.json");
    std::fs::remove_file(&meta).unwrap();
    assert!(Command::new("mkfifo").arg(&meta).status().unwrap().success());

    let (code, out, err) = run(secret_env(bin()).arg("audit").arg("-c").arg(bot.config()).args(["--format", "json"]));
    assert_eq!(code, 1, "{err}");
    assert!(!out.contains("SEKRET-FILE") && !err.contains("SEKRET-FILE"));
    let report: Value = serde_json::from_str(&out).unwrap();
    let source = |name: &str| report["sources"].as_array().unwrap().iter().find(|s| s["name"] == name).unwrap().clone();
    assert_eq!(source("positions")["status"], "unavailable");
    assert!(source("positions")["error"].as_str().unwrap().contains("outside the bot root"), "{report}");
    assert!(source("metadata")["error"].as_str().unwrap().contains("(it is a FIFO)"), "{report}");

    let snap = bot.dir.path().join("snap");
    let (code, _, err) = run(secret_env(bin()).arg("snapshot").arg("-c").arg(bot.config()).arg("-o").arg(&snap));
    assert_eq!(code, 0, "{err}");
    for f in crate::util::entries_under(&snap).into_iter().filter(|p| p.is_file()) {
        assert!(!String::from_utf8_lossy(&std::fs::read(&f).unwrap()).contains("SEKRET-FILE"), "{}", f.display());
    }
    assert!(!snap.join("bot/state/executor_state.json").exists(), "a refused file is not copied");
    assert!(!snap.join("bot/state/position_metadata.json").exists(), "a FIFO is not copied");
}
