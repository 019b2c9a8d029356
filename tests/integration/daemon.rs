//! `tradewarden run` as a process: the real binary beside the real simulator (`tradewarden sim`)
//! and a real SMTP server (aiosmtpd), with one-second cycles. Every wait polls for a condition
//! with a deadline; nothing relies on a fixed sleep being long enough.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tradewarden::alert::{AlertBook, Phase};

use crate::simulator::{KEY_ID, SECRET, Sim, phantom_exit_scenario};
use crate::support::{bin, repo, run};
use crate::util::{SmtpServer, free_port, header, smtp_email_table};

/// How long any single condition may take to come true.
const DEADLINE: Duration = Duration::from_secs(30);

/// A running `tradewarden run`; killed on drop. Its stderr goes to a file, shown on failure.
struct Running {
    child: Child,
    log: PathBuf,
}

impl Running {
    fn start(config: &Path, args: &[&str]) -> Self {
        let dir = config.parent().unwrap();
        let n = std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("run-"))
            .count();
        let log = dir.join(format!("run-{n}.log"));
        let child = bin()
            .arg("run")
            .arg("-c")
            .arg(config)
            .args(args)
            .env("APCA_API_KEY_ID", KEY_ID)
            .env("APCA_API_SECRET_KEY", SECRET)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("tradewarden run starts");
        Self { child, log }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn signal(&self, sig: &str) {
        let (code, _, err) = run(std::process::Command::new("kill").args([sig, &self.pid().to_string()]));
        assert_eq!(code, 0, "kill {sig}: {err}");
    }

    /// Waits for the process to exit (panics after the deadline).
    fn wait(&mut self) -> ExitStatus {
        let end = Instant::now() + DEADLINE;
        while Instant::now() < end {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("tradewarden run did not exit within {DEADLINE:?}\n{}", self.stderr());
    }

    /// Polls `cond` until it holds (panics after the deadline, showing `what` and the log).
    fn until(&mut self, what: &str, mut cond: impl FnMut() -> bool) {
        let end = Instant::now() + DEADLINE;
        while Instant::now() < end {
            if cond() {
                return;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("tradewarden run exited ({status}) while waiting for {what}\n{}", self.stderr());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("timed out waiting for {what}\n{}", self.stderr());
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The records in `state/audits.jsonl`.
fn cycles(state: &Path) -> Vec<Value> {
    std::fs::read_to_string(state.join("audits.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("every audits.jsonl line is JSON"))
        .collect()
}

fn subjects(server: &SmtpServer) -> Vec<String> {
    server.messages().iter().map(|m| header(m, "Subject").unwrap_or_default()).collect()
}

/// A bot whose tracked positions are AAPL 10 (what the clean scenario holds).
const BOT_STATE: &str = r#"{ "opens": { "AAPL": { "qty": 10, "entry_price": 187.25 } } }"#;

fn clean_scenario() -> Value {
    json!({
        "account": { "cash": "100000" },
        "positions": [ { "symbol": "AAPL", "qty": "10", "avg_entry_price": "187.25" } ],
        "prices": { "AAPL": "190.10", "CHWY": "40.00" },
        "clock": { "is_open": true },
        "auth": { "key_id": KEY_ID, "secret_key": SECRET }
    })
}

/// The clean scenario plus the phantom-exit short: CHWY -1596.
fn short_scenario() -> Value {
    let mut s = clean_scenario();
    s["positions"]
        .as_array_mut()
        .unwrap()
        .push(json!({ "symbol": "CHWY", "qty": "-1596", "avg_entry_price": "38.10" }));
    s
}

/// A tempdir with a bot tracking AAPL 10, one rule (`no-shorts`, critical, with the actions of
/// the default pack), and a configuration reading the simulator at `url` every second. The
/// status server listens on `listen` (`""` disables it: tests run in parallel, so never the
/// default port).
fn setup(url: &str, listen: &str, extra: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("bot/state")).unwrap();
    std::fs::write(dir.path().join("bot/state/executor_state.json"), BOT_STATE).unwrap();
    std::fs::write(
        dir.path().join("rules.toml"),
        "[[rule]]\nid = \"no-shorts\"\ncheck = \"no_short_positions\"\nseverity = \"critical\"\nactions = [\"flatten_shorts\"]\n",
    )
    .unwrap();
    let config = dir.path().join("tradewarden.toml");
    std::fs::write(
        &config,
        format!(
            "state_dir = \"state\"\nrules = [\"rules.toml\"]\n\n[broker]\nkind = \"alpaca\"\nbase_url = {url:?}\ntimeout = \"2s\"\nmax_requests_per_minute = 100000\n\n\
             [bot]\nroot = \"bot\"\n\n[bot.positions]\nfile = \"state/executor_state.json\"\nat = \"/opens\"\n\n\
             [schedule]\nevery = \"1s\"\n\n[server]\nlisten = {listen:?}\n\n{extra}"
        ),
    )
    .unwrap();
    (dir, config)
}

fn alerts_table(repeat: &str, smtp_port: u16) -> String {
    format!("[alerts]\nrepeat = \"{repeat}\"\n\n{}", smtp_email_table(smtp_port))
}

fn http_get(addr: &str, path: &str) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    (head.split_whitespace().nth(1).unwrap().parse().unwrap(), body.to_owned())
}

const SUBJECT: &str = "[tradewarden] CRITICAL no-shorts: CHWY short -1596 (paper)";

/// A short appears: one firing email; `repeat` elapses: one repeat; fixed through the sim's
/// admin API: one resolved email. The status server answers meanwhile.
#[test]
fn a_short_fires_once_repeats_once_and_resolves_once() {
    let sim = Sim::start(&clean_scenario());
    let smtp = SmtpServer::start();
    let listen = format!("127.0.0.1:{}", free_port());
    let (dir, config) = setup(&sim.url, &listen, &alerts_table("4s", smtp.port));
    let state = dir.path().join("state");
    let mut d = Running::start(&config, &[]);

    d.until("two clean cycles", || cycles(&state).len() >= 2);
    assert!(smtp.messages().is_empty(), "a clean account sends nothing");
    let (code, body) = http_get(&listen, "/healthz");
    assert_eq!(code, 200, "{body}");

    // The short appears.
    sim.call("POST", "/_sim/scenario", Some(&short_scenario()));
    d.until("the firing email", || !smtp.messages().is_empty());
    let first = smtp.messages();
    assert_eq!(first.len(), 1);
    assert_eq!(header(&first[0], "Subject").as_deref(), Some(SUBJECT));
    assert!(
        first[0].contains("FIRING") && first[0].contains("flatten_shorts"),
        "the actions ride along:\n{}",
        first[0]
    );

    // While it fires: the report marks it, the status server shows it. The email leaves during
    // the cycle and the status view is updated at its end: wait for that cycle to finish.
    d.until("the status view to show the firing alert", || {
        http_get(&listen, "/api/status").1.contains("no-shorts/CHWY")
    });
    let (code, body) = http_get(&listen, "/api/status");
    assert_eq!(code, 200);
    let status: Value = serde_json::from_str(&body).unwrap();
    assert!(
        status["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["fingerprint"] == "no-shorts/CHWY" && a["state"] == "firing"),
        "{status:#}"
    );
    assert_eq!(status["report"]["mode"], "paper");
    let (code, page) = http_get(&listen, "/");
    assert!(code == 200 && page.contains("no-shorts") && page.contains("CHWY"), "{code}");
    let (code, metrics) = http_get(&listen, "/metrics");
    assert_eq!(code, 200);
    assert!(
        metrics.contains("tradewarden_alerts{rule=\"no-shorts\",state=\"firing\",severity=\"critical\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("tradewarden_broker_requests_total{endpoint=\"positions\"}"), "{metrics}");
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(state.join("last_report.json")).unwrap()).unwrap();
    assert_eq!(report["findings"][0]["subject"], "CHWY");

    // `repeat` (4 s) elapses: exactly one reminder, then the operator fixes the account.
    d.until("the repeat email", || smtp.messages().len() >= 2);
    sim.call("POST", "/_sim/scenario", Some(&clean_scenario()));
    assert!(smtp.messages()[1].contains("STILL FIRING"), "{}", smtp.messages()[1]);
    d.until("the resolved email", || smtp.messages().len() >= 3);
    let done = cycles(&state).len();
    d.until("two more cycles", || cycles(&state).len() >= done + 2);
    assert_eq!(
        subjects(&smtp),
        [SUBJECT, SUBJECT, "[tradewarden] RESOLVED no-shorts: CHWY (paper)"],
        "one firing, one repeat, one resolved"
    );
    let log = d.stderr();
    assert!(!log.contains(SECRET), "a secret reached the log");
    assert!(log.contains("Cycle done."), "{log}");
}

/// SMTP down for several cycles, then back: every queued message is delivered, once.
#[test]
fn smtp_outage_then_every_queued_message_is_delivered_once() {
    let sim = Sim::start(&short_scenario());
    let port = free_port();
    let (dir, config) = setup(&sim.url, "", &alerts_table("1h", port));
    let state = dir.path().join("state");
    let mut d = Running::start(&config, &[]);

    d.until("three cycles failing to deliver", || {
        cycles(&state).iter().filter(|c| c["email"]["failed"].as_u64() > Some(0)).count() >= 2
            && cycles(&state).len() >= 3
    });
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(state.join("last_report.json")).unwrap()).unwrap();
    assert_eq!(report["cycle"]["email"]["outbox"], 1, "{report:#}");
    // Resolved while the server is still down: a second message waits behind the first.
    sim.call("POST", "/_sim/scenario", Some(&clean_scenario()));
    d.until("two messages queued", || cycles(&state).last().is_some_and(|c| c["email"]["outbox"] == 2));
    let errors =
        cycles(&state).iter().flat_map(|c| c["email"]["errors"].as_array().cloned().unwrap_or_default()).count();
    assert!(errors >= 1, "delivery failures are in the cycle records");

    let smtp = SmtpServer::start_on(port);
    d.until("both messages delivered", || smtp.messages().len() >= 2);
    d.until("an empty outbox", || cycles(&state).last().is_some_and(|c| c["email"]["outbox"] == 0));
    let done = cycles(&state).len();
    d.until("two more cycles", || cycles(&state).len() >= done + 2);
    let got = smtp.messages();
    assert_eq!(subjects(&smtp), [SUBJECT, "[tradewarden] RESOLVED no-shorts: CHWY (paper)"]);
    let ids: std::collections::BTreeSet<_> = got.iter().map(|m| header(m, "Message-ID").unwrap()).collect();
    assert_eq!(ids.len(), 2, "two distinct messages, each once");
    assert!(d.stderr().contains("Email delivery failed; it stays queued."));
}

/// Killed (SIGKILL) right after the firing email and restarted: no second firing email.
#[test]
fn killed_and_restarted_mid_incident_sends_no_duplicate() {
    let sim = Sim::start(&short_scenario());
    let smtp = SmtpServer::start();
    let (dir, config) = setup(&sim.url, "", &alerts_table("1h", smtp.port));
    let state = dir.path().join("state");
    let mut first = Running::start(&config, &[]);
    first.until("the firing email", || !smtp.messages().is_empty());
    // Mid-incident, not mid-delivery: once the cycle recorded the delivery, the message has left
    // the outbox. (Killed between the server's "250" and the outbox removal, the message would
    // be delivered again with the same Message-ID: at-least-once, by design.)
    first.until("the delivery recorded", || cycles(&state).iter().any(|c| c["email"]["delivered"] == 1));
    first.until("the firing alert saved", || {
        AlertBook::load(&state, chrono::Utc::now())
            .value
            .get("no-shorts/CHWY")
            .is_some_and(|a| a.state == Phase::Firing)
    });
    first.child.kill().unwrap();
    first.child.wait().unwrap();
    let before = cycles(&state).len();

    // The kernel released the lock with the process: the restart takes it.
    let mut second = Running::start(&config, &[]);
    second.until("three cycles after the restart", || cycles(&state).len() >= before + 3);
    let ids: Vec<String> = smtp.messages().iter().map(|m| header(m, "Message-ID").unwrap_or_default()).collect();
    assert_eq!(subjects(&smtp), [SUBJECT], "the restart re-sent the firing notice: {ids:?}\n{}", second.stderr());
    let book = AlertBook::load(&state, chrono::Utc::now()).value;
    assert_eq!(book.get("no-shorts/CHWY").unwrap().state, Phase::Firing);
    second.signal("-TERM");
    assert_eq!(second.wait().code(), Some(0), "{}", second.stderr());
}

/// A silenced alert stays in the report, marked, and sends no email.
#[test]
fn a_silenced_short_is_reported_but_sends_nothing() {
    let sim = Sim::start(&short_scenario());
    let smtp = SmtpServer::start();
    let (dir, config) = setup(&sim.url, "", &alerts_table("1h", smtp.port));
    let c = config.to_str().unwrap();
    let (code, out, err) = run(bin()
        .args(["silence", "add", "-c", c, "--rule", "no-shorts", "--subject", "CHWY"])
        .args(["--for", "1h", "--reason", "flattening by hand"]));
    assert_eq!(code, 0, "{out}{err}");
    let mut d = Running::start(&config, &["--max-cycles", "2"]);
    assert_eq!(d.wait().code(), Some(0), "{}", d.stderr());
    assert!(smtp.messages().is_empty(), "{:?}", subjects(&smtp));
    let state = dir.path().join("state");
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(state.join("last_report.json")).unwrap()).unwrap();
    assert_eq!(report["findings"][0]["subject"], "CHWY", "{report:#}");
    assert_eq!(report["silenced"][0]["fingerprint"], "no-shorts/CHWY", "{report:#}");
    assert_eq!(report["silenced"][0]["reason"], "flattening by hand");
    assert!(report["cycle"]["actions"].is_null(), "no action for a silenced alert: {report:#}");
    let book = AlertBook::load(&state, chrono::Utc::now()).value;
    let alert = book.get("no-shorts/CHWY").unwrap();
    assert!(alert.state == Phase::Firing && alert.silenced && alert.last_notified_at.is_none());
}

/// A replay configuration (no broker process needed) for the process-level tests.
fn replay_config(extra: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let example = std::fs::read_to_string(repo("examples/stock-bot/tradewarden.toml")).unwrap();
    let rules = repo("rules/default.toml");
    let snap = repo("examples/stock-bot/snapshots/phantom-exit");
    let config = example
        .replace(r#"rules = ["../../rules/default.toml"]"#, &format!("rules = [{:?}]", rules.to_str().unwrap()))
        .replace("kind = \"alpaca\"\n", &format!("kind = \"replay\"\ndir = {:?}\n", snap.to_str().unwrap()))
        .replace("every = \"30s\"", "every = \"1s\"")
        .replace("listen = \"127.0.0.1:9464\"", "listen = \"\"")
        .replace("[alerts]\n", &format!("[alerts]\n{extra}"));
    assert!(config.contains("kind = \"replay\"") && config.contains("listen = \"\""), "the example changed shape");
    let path = dir.path().join("tradewarden.toml");
    std::fs::write(&path, config).unwrap();
    (dir, path)
}

/// One instance per state directory: a second exits 2 naming the holder's pid.
#[test]
fn a_second_instance_is_refused_with_the_holders_pid() {
    let (dir, config) = replay_config("");
    let state = dir.path().join("state");
    let mut first = Running::start(&config, &[]);
    first.until("the first cycle", || !cycles(&state).is_empty());
    let (code, out, err) = run(bin().args(["run", "-c", config.to_str().unwrap(), "--max-cycles", "1"]));
    assert_eq!(code, 2, "{out}{err}");
    let want = format!("another tradewarden run holds {} (pid {})", state.display(), first.pid());
    assert!(err.contains(&want), "{err}");
    first.signal("-TERM");
    assert_eq!(first.wait().code(), Some(0));
}

/// SIGTERM: exit 0, with a valid alert state on disk.
#[test]
fn sigterm_exits_zero_with_valid_state() {
    let (dir, config) = replay_config("");
    let state = dir.path().join("state");
    let mut d = Running::start(&config, &[]);
    d.until("two cycles", || cycles(&state).len() >= 2);
    d.signal("-TERM");
    let status = d.wait();
    assert_eq!(status.code(), Some(0), "{}", d.stderr());
    let text = std::fs::read_to_string(state.join("alerts.json")).unwrap();
    let book: AlertBook = serde_json::from_str(&text).expect("alerts.json is valid");
    assert!(book.get("no-shorts/CHWY").is_some_and(|a| a.state == Phase::Firing), "{text}");
    let log = d.stderr();
    assert!(log.contains("Stop requested.") && log.contains("Watchdog stopped."), "{log}");
    // The replay cycles wrote their emails with the file transport (the default).
    assert!(std::fs::read_dir(state.join("mail")).unwrap().count() >= 1);
}

/// A corrupt `alerts.json` is moved aside and reported with the first cycle, never a crash.
#[test]
fn a_corrupt_alert_state_is_quarantined_and_reported() {
    let (dir, config) = replay_config("");
    let state = dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::write(state.join("alerts.json"), "{\"version\": 1, \"alerts\": {").unwrap();
    let mut d = Running::start(&config, &["--max-cycles", "1"]);
    assert_eq!(d.wait().code(), Some(0), "{}", d.stderr());
    let aside: Vec<String> = std::fs::read_dir(&state)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("alerts.json.corrupt-"))
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    let first = &cycles(&state)[0];
    assert!(first["problems"][0].as_str().unwrap().contains("is corrupt"), "{first}");
    let book: AlertBook = serde_json::from_str(&std::fs::read_to_string(state.join("alerts.json")).unwrap()).unwrap();
    assert!(!book.alerts.is_empty(), "a fresh state was written");
}

/// A tiny HTTP server that answers 200 to everything and records each request's path, in order.
fn heartbeat_listener() -> (String, Heartbeats) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let paths = Heartbeats::default();
    let seen = paths.clone();
    std::thread::spawn(move || {
        for stream in l.incoming().flatten() {
            let mut reader = BufReader::new(stream);
            let mut line = String::new();
            if reader.read_line(&mut line).is_ok()
                && let Some(path) = line.strip_prefix("GET ").and_then(|l| l.split_whitespace().next())
            {
                seen.0.lock().unwrap().push(path.to_owned());
            }
            // Read the headers, then answer.
            let mut h = String::new();
            while reader.read_line(&mut h).is_ok_and(|n| n > 2) {
                h.clear();
            }
            let _ = reader.get_mut().write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nOK");
        }
    });
    (format!("http://{addr}/ping/secret-check-token"), paths)
}

/// The paths the heartbeat listener received.
#[derive(Debug, Clone, Default)]
struct Heartbeats(Arc<Mutex<Vec<String>>>);

impl Heartbeats {
    const SUCCESS: &str = "/ping/secret-check-token";
    const START: &str = "/ping/secret-check-token/start";

    fn paths(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }

    /// The success pings (the heartbeat proper).
    fn beats(&self) -> usize {
        self.paths().iter().filter(|p| *p == Self::SUCCESS).count()
    }

    fn starts(&self) -> usize {
        self.paths().iter().filter(|p| *p == Self::START).count()
    }
}

/// The heartbeat follows every cycle that completed its audit, and never shows its URL; JSON
/// logs with `--log-json`.
#[test]
fn heartbeat_after_each_successful_cycle_and_json_logs() {
    let (url, hits) = heartbeat_listener();
    let (dir, config) = replay_config(&format!("heartbeat_url = {url:?}\n"));
    let mut d = Running::start(&config, &["--max-cycles", "3", "--log-json"]);
    assert_eq!(d.wait().code(), Some(0), "{}", d.stderr());
    assert_eq!(hits.beats(), 3);
    let log = d.stderr();
    assert!(!log.contains("secret-check-token"), "the heartbeat URL reached the log:\n{log}");
    for line in log.lines() {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
        assert!(v["fields"]["message"].is_string(), "{line}");
    }
    assert_eq!(cycles(&dir.path().join("state")).len(), 3);
}

/// Issue 17: Healthchecks measures a run from `URL/start`; every cycle pings it as it begins,
/// then the heartbeat once the cycle has audited: start, success, start, success, in order.
#[test]
fn each_cycle_pings_start_then_the_heartbeat() {
    let (url, hits) = heartbeat_listener();
    let (_dir, config) = replay_config(&format!("heartbeat_url = {url:?}\n"));
    let mut d = Running::start(&config, &["--max-cycles", "2"]);
    assert_eq!(d.wait().code(), Some(0), "{}", d.stderr());
    let (start, success) = (Heartbeats::START.to_owned(), Heartbeats::SUCCESS.to_owned());
    assert_eq!(hits.paths(), [start.clone(), success.clone(), start, success]);
    assert!(!d.stderr().contains("secret-check-token"), "the heartbeat URL never reaches the log");
}

/// A cycle that cannot collect is a failed cycle: logged, recorded, no heartbeat, and the
/// daemon keeps running.
#[test]
fn failed_cycles_are_recorded_and_the_daemon_keeps_running() {
    let (url, hits) = heartbeat_listener();
    let (dir, config) = replay_config(&format!("heartbeat_url = {url:?}\n"));
    let text = std::fs::read_to_string(&config).unwrap();
    let broken = dir.path().join("no-snapshot");
    std::fs::create_dir_all(&broken).unwrap();
    let snap = repo("examples/stock-bot/snapshots/phantom-exit");
    std::fs::write(
        &config,
        text.replace(&format!("{:?}", snap.to_str().unwrap()), &format!("{:?}", broken.to_str().unwrap())),
    )
    .unwrap();
    let mut d = Running::start(&config, &["--max-cycles", "2"]);
    assert_eq!(d.wait().code(), Some(0), "{}", d.stderr());
    let records = cycles(&dir.path().join("state"));
    assert_eq!(records.len(), 2);
    assert!(
        records.iter().all(|c| c["ok"] == false && c["error"].as_str().unwrap().contains("snapshot")),
        "{records:?}"
    );
    assert_eq!(hits.beats(), 0, "no heartbeat without an audit");
    assert_eq!(hits.starts(), 2, "but each cycle said it started: the switch sees it never finished");
    assert!(d.stderr().contains("Cycle failed"), "{}", d.stderr());
}

/// A cycle that reaches no broker endpoint at all audits (source findings, unknown rules) but
/// sends no heartbeat: the watchdog is running, not watching. The same daemon against a broker
/// it can read beats every cycle.
#[test]
fn a_blind_cycle_sends_no_heartbeat() {
    let (url, hits) = heartbeat_listener();
    let closed = format!("http://127.0.0.1:{}", crate::util::free_port());
    let (dir, config) = setup(&closed, "", &format!("[alerts]\nheartbeat_url = {url:?}\n"));
    let mut d = Running::start(&config, &["--max-cycles", "2"]);
    assert_eq!(d.wait().code(), Some(0), "{}", d.stderr());
    let records = cycles(&dir.path().join("state"));
    assert_eq!(records.len(), 2);
    assert!(records.iter().all(|c| c["ok"] == true), "the audits ran: {records:?}");
    assert!(
        records.iter().all(|c| c["failed_sources"].as_array().is_some_and(|f| f.len() >= 4)),
        "every broker source failed: {records:?}"
    );
    assert_eq!(hits.beats(), 0, "no heartbeat from a blind watchdog");

    let sim = Sim::start(&clean_scenario());
    let (_dir, config) = setup(&sim.url, "", &format!("[alerts]\nheartbeat_url = {url:?}\n"));
    let mut d = Running::start(&config, &["--max-cycles", "2"]);
    assert_eq!(d.wait().code(), Some(0), "{}", d.stderr());
    assert_eq!(hits.beats(), 2, "one beat per cycle that saw the broker");
}

/// Issue 12 follow-up: the heartbeat fired when only some broker reads failed (a cycle was
/// blind only when every read failed): with the positions and the open orders unreadable but
/// the clock up, the dead-man switch stayed quiet. Now it beats only when the account, the
/// positions and the open orders were all read.
#[test]
fn a_cycle_without_positions_and_orders_sends_no_heartbeat() {
    let (url, hits) = heartbeat_listener();
    let (dir, config) = replay_config(&format!("heartbeat_url = {url:?}\n"));
    let snap = repo("examples/stock-bot/snapshots/phantom-exit");
    let partial = dir.path().join("partial");
    crate::support::copy_dir(&snap, &partial);
    for f in ["positions.json", "orders.json"] {
        std::fs::remove_file(partial.join("broker").join(f)).unwrap();
    }
    assert!(partial.join("broker/clock.json").is_file() && partial.join("broker/account.json").is_file());
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace(&format!("{:?}", snap.to_str().unwrap()), &format!("{:?}", partial.to_str().unwrap())),
    )
    .unwrap();
    let mut d = Running::start(&config, &["--max-cycles", "2"]);
    assert_eq!(d.wait().code(), Some(0), "{}", d.stderr());
    let records = cycles(&dir.path().join("state"));
    assert_eq!(records.len(), 2);
    assert!(records.iter().all(|c| c["ok"] == true), "the audits ran: {records:?}");
    assert_eq!(hits.beats(), 0, "no heartbeat while positions and orders are unread");
}

/// The status server's address in use: exit 2 with a clear sentence.
#[test]
fn a_busy_status_port_is_a_clear_start_up_error() {
    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap();
    let (_dir, config) = replay_config("");
    let text = std::fs::read_to_string(&config).unwrap().replace("listen = \"\"", &format!("listen = \"{addr}\""));
    std::fs::write(&config, text).unwrap();
    let (code, out, err) = run(bin().args(["run", "-c", config.to_str().unwrap(), "--max-cycles", "1"]));
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains(&format!("cannot listen on {addr} ([server] listen)")), "{err}");
}

/// Appends one JSON line.
fn append(path: &Path, line: &Value) {
    let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    writeln!(f, "{line}").unwrap();
}

/// The phantom-exit scenario at the broker for a bot that tracks `tracked` (symbol, qty,
/// entry price): those positions, plus the CHWY -1596 short, no open orders.
fn phantom_exit_for(tracked: &[(&str, &str, &str)]) -> Value {
    let mut scenario = phantom_exit_scenario();
    let mut positions: Vec<Value> =
        tracked.iter().map(|(s, q, p)| json!({ "symbol": s, "qty": q, "avg_entry_price": p })).collect();
    positions.push(json!({ "symbol": "CHWY", "qty": "-1596", "avg_entry_price": "38.10" }));
    scenario["positions"] = Value::Array(positions);
    scenario["orders"] = json!([]);
    scenario["prices"] = json!({ "AAPL": "190.10", "MSFT": "415.00", "NVDA": "135.00", "CHWY": "40.00" });
    scenario
}

/// Copies `examples/NAME` (its bot directory and configuration) into a tempdir, lets `freshen`
/// make the bot look alive, points the configuration at the simulator and the SMTP server with
/// one-second cycles, runs one cycle, and returns the subjects of the emails sent.
fn run_example(name: &str, scenario: &Value, edit: impl Fn(String) -> String, freshen: impl Fn(&Path)) -> Vec<String> {
    let sim = Sim::start(scenario);
    let smtp = SmtpServer::start();
    let dir = tempfile::tempdir().unwrap();
    let example = repo(&format!("examples/{name}"));
    crate::support::copy_dir(&example.join("bot"), &dir.path().join("bot"));
    freshen(&dir.path().join("bot"));
    let mut config = edit(std::fs::read_to_string(example.join("tradewarden.toml")).unwrap());
    config = config
        .replace("kind = \"alpaca\"\n", &format!("kind = \"alpaca\"\nbase_url = {:?}\ntimeout = \"2s\"\n", sim.url));
    assert!(config.contains("base_url") && config.contains("every = \"1s\""), "examples/{name} changed shape");
    config += &format!("\n[server]\nlisten = \"\"\n\n{}", smtp_email_table(smtp.port));
    let path = dir.path().join("tradewarden.toml");
    std::fs::write(&path, config).unwrap();

    let mut d = Running::start(&path, &["--max-cycles", "1"]);
    assert_eq!(d.wait().code(), Some(0), "{}", d.stderr());
    assert!(!d.stderr().contains(SECRET));
    let got = subjects(&smtp);
    assert_eq!(got.len(), 1, "one email for the cycle: {got:?}");
    let body = &smtp.messages()[0];
    assert!(body.contains("short_position") && body.contains("flatten_shorts"), "{body}");
    got
}

fn assert_phantom_exit_subject(got: &[String]) {
    assert!(
        got[0].starts_with("[tradewarden] CRITICAL no-shorts: CHWY short -1596") && got[0].ends_with("(paper)"),
        "{got:?}"
    );
}

/// `run` beside the example stock-bot (its configuration and the default rule pack) and the
/// simulator seeded with the phantom-exit short: the firing email names the CHWY short.
#[test]
fn run_beside_the_example_stock_bot_emails_the_phantom_exit_short() {
    let scenario = phantom_exit_for(&[("AAPL", "10", "187.25"), ("MSFT", "5", "412.30"), ("NVDA", "20", "131.40")]);
    let rules = repo("rules/default.toml");
    let got = run_example(
        "stock-bot",
        &scenario,
        |c| {
            c.replace(r#"rules = ["../../rules/default.toml"]"#, &format!("rules = [{:?}]", rules.to_str().unwrap()))
                .replace("timeout = \"10s\"\n", "")
                .replace("every = \"30s\"", "every = \"1s\"")
                .replace("[server]\nlisten = \"127.0.0.1:9464\"\n", "")
        },
        |bot| {
            // The bot is alive: its main loop and exit evaluation logged just now.
            let now = chrono::Utc::now().to_rfc3339();
            append(&bot.join("logs/run.jsonl"), &json!({ "ts": now, "event": "CYCLE", "positions": 3 }));
            append(&bot.join("logs/exits.jsonl"), &json!({ "ts": now, "event": "EXIT", "symbol": "AAPL" }));
        },
    );
    assert_phantom_exit_subject(&got);
}

/// The same beside the example "ordinis" bot (positions in the last record of a JSONL log).
#[test]
fn run_beside_the_example_ordinis_bot_emails_the_phantom_exit_short() {
    let scenario = phantom_exit_for(&[("AAPL", "10", "187.25"), ("MSFT", "5", "412.30")]);
    let got = run_example(
        "ordinis",
        &scenario,
        |c| {
            c.replace(
                r#"rules = ["rules.toml"]"#,
                &format!("rules = [{:?}]", repo("examples/ordinis/rules.toml").to_str().unwrap()),
            )
            .replace("cron = \"*/1 9-16 * * Mon-Fri\"\ntz = \"America/New_York\"", "every = \"1s\"")
        },
        |bot| {
            let now = chrono::Utc::now();
            for i in 0..5 {
                let ts = (now - chrono::Duration::seconds(60 * i)).to_rfc3339();
                append(
                    &bot.join("logs/events.jsonl"),
                    &json!({ "timestamp": ts, "event": "POSITION_SYNCED", "count": 2 }),
                );
            }
            let positions = json!([
                { "symbol": "AAPL", "quantity": "10", "avg_price": 187.25 },
                { "symbol": "MSFT", "quantity": 5, "avg_price": "412.30" }
            ]);
            append(
                &bot.join("logs/positions.jsonl"),
                &json!({ "timestamp": now.to_rfc3339(), "equity": "100454.55", "positions": positions }),
            );
        },
    );
    assert_phantom_exit_subject(&got);
}

/// Field notes (issue 12, "Trust"): with every broker call failing, `/healthz` said 200 "ok"
/// and the page a green "healthy" with 0 critical. Now: 503 with the reason once the watchdog
/// has been blind for `blind_after` (2 cycles), `tradewarden_blind 1`, a "blind" badge; and
/// back to 200 when the broker answers again.
#[test]
fn every_broker_call_failing_makes_healthz_503_blind_not_ok() {
    let sim = Sim::start(&clean_scenario());
    let listen = format!("127.0.0.1:{}", free_port());
    let (dir, config) = setup(&sim.url, &listen, "");
    let state = dir.path().join("state");
    let mut d = Running::start(&config, &[]);
    d.until("a clean cycle", || !cycles(&state).is_empty());
    assert_eq!(http_get(&listen, "/healthz").0, 200);

    sim.faults(&json!({"error_rate": 1.0}));
    d.until("/healthz 503 blind", || {
        let (code, body) = http_get(&listen, "/healthz");
        code == 503 && body.contains("blind: no broker endpoint read for 2 cycles")
    });
    let (_, body) = http_get(&listen, "/healthz");
    assert!(!body.contains("ok\n") && body.contains("blind_after 2 cycles"), "{body}");
    let (_, metrics) = http_get(&listen, "/metrics");
    assert!(metrics.contains("\ntradewarden_blind 1\n"), "{metrics}");
    assert!(metrics.contains("\ntradewarden_up 1\n"), "alive, but blind: {metrics}");
    let (_, page) = http_get(&listen, "/");
    assert!(page.contains("data-state=\"blind\"") && !page.contains(">healthy<"), "{page}");
    assert!(page.contains("Unknown rules (1)") && page.contains("no-shorts"), "{page}");

    sim.heal();
    d.until("/healthz 200 again", || http_get(&listen, "/healthz").0 == 200);
    let (_, metrics) = http_get(&listen, "/metrics");
    assert!(metrics.contains("\ntradewarden_blind 0\n"), "{metrics}");
}

/// A tmpfs mounted for one test, unmounted (lazily, so a process still inside cannot block it)
/// on drop, also when the test fails.
struct Tmpfs {
    dir: PathBuf,
    _base: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Self {
        let base = tempfile::tempdir().unwrap();
        let dir = base.path().join("mnt");
        std::fs::create_dir_all(&dir).unwrap();
        let (code, out, err) = run(std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o"])
            .arg(format!("size={size}"))
            .arg("tmpfs")
            .arg(&dir));
        assert_eq!(code, 0, "mount tmpfs (needs root, as in CI): {out}{err}");
        Self { dir, _base: base }
    }

    /// Writes zeros to `name` until the filesystem is full.
    fn fill(&self, name: &str) {
        let mut f = std::fs::File::create(self.dir.join(name)).unwrap();
        let block = vec![0_u8; 4096];
        loop {
            if let Err(e) = f.write_all(&block).and_then(|()| f.flush()) {
                assert_eq!(e.raw_os_error(), Some(28), "ENOSPC expected: {e}");
                break;
            }
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}

/// Issue 12: a state directory that cannot be written is said loudly. A real full filesystem
/// (tmpfs): `/healthz` 503 with the reason, `tradewarden_state_dir_unwritable 1`, one ERROR line
/// on stderr per cycle; space freed: 200, the gauge 0, one line saying it recovered.
#[test]
fn a_full_state_dir_is_said_on_stderr_healthz_and_metrics_until_space_returns() {
    let fs = Tmpfs::mount("256k");
    let sim = Sim::start(&clean_scenario());
    let listen = format!("127.0.0.1:{}", free_port());
    let (_dir, config) = setup(&sim.url, &listen, "");
    let state = fs.dir.join("state");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace("state_dir = \"state\"", &format!("state_dir = {:?}", state.to_str().unwrap())),
    )
    .unwrap();
    let mut d = Running::start(&config, &[]);
    d.until("a cycle on the tmpfs", || !cycles(&state).is_empty());
    assert_eq!(http_get(&listen, "/healthz").0, 200);

    fs.fill("filler");
    d.until("/healthz 503 state dir", || {
        let (code, body) = http_get(&listen, "/healthz");
        code == 503 && body.contains("state dir not writable") && body.contains("No space left on device")
    });
    let (_, body) = http_get(&listen, "/healthz");
    assert!(body.contains(state.to_str().unwrap()), "names the directory: {body}");
    let (_, metrics) = http_get(&listen, "/metrics");
    assert!(metrics.contains("\ntradewarden_state_dir_unwritable 1\n"), "{metrics}");
    let log = d.log.clone();
    d.until("a second cycle's line", || {
        d_lines(&std::fs::read_to_string(&log).unwrap_or_default(), "STATE DIRECTORY NOT WRITABLE") >= 2
    });
    let (_, page) = http_get(&listen, "/");
    assert!(page.contains("The watchdog is not watching") && page.contains("is not writable"), "{page}");

    std::fs::remove_file(fs.dir.join("filler")).unwrap();
    d.until("/healthz 200 after space returns", || http_get(&listen, "/healthz").0 == 200);
    let (_, metrics) = http_get(&listen, "/metrics");
    assert!(metrics.contains("\ntradewarden_state_dir_unwritable 0\n"), "{metrics}");
    let n = cycles(&state).len();
    d.until("two more cycles", || cycles(&state).len() >= n + 2);
    assert_eq!(d_lines(&d.stderr(), "State directory writable again"), 1, "said once: {}", d.stderr());
    drop(d);
}

fn d_lines(log: &str, needle: &str) -> usize {
    log.lines().filter(|l| l.contains(needle)).count()
}

/// Issue 12 §4: ~1,100 idle connections to the status server exhausted a 1024-descriptor
/// limit and the watchdog went blind. Started under a soft limit of 128 (hard 256), `run`
/// raises the soft limit to the hard one; 400 idle connections (more than the cap, more than
/// the hard limit) neither stop cycles reading the simulator nor `/healthz` answering, the
/// daemon's descriptors stay bounded, and an idle connection is closed after `header_timeout`.
#[test]
fn a_flood_of_idle_status_connections_neither_blinds_the_watchdog_nor_blocks_healthz() {
    let sim = Sim::start(&clean_scenario());
    let listen = format!("127.0.0.1:{}", free_port());
    let (dir, config) = setup(&sim.url, &listen, "header_timeout = \"2s\"\nmax_connections = 32\n");
    let state = dir.path().join("state");
    let log = dir.path().join("run-ulimit.log");
    let child = std::process::Command::new("sh")
        .arg("-c")
        .arg("ulimit -Sn 128 && ulimit -Hn 256 && exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_tradewarden"))
        .arg("run")
        .arg("-c")
        .arg(&config)
        .env("APCA_API_KEY_ID", KEY_ID)
        .env("APCA_API_SECRET_KEY", SECRET)
        .env("RUST_LOG", "info")
        .env_remove("TRADEWARDEN_CONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut d = Running { child, log };
    d.until("a first cycle", || !cycles(&state).is_empty());
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", d.pid())).unwrap();
    let nofile = limits.lines().find(|l| l.starts_with("Max open files")).unwrap().to_owned();
    assert_eq!(nofile.split_whitespace().collect::<Vec<_>>()[3..5], ["256", "256"], "soft raised to hard: {nofile}");

    let idle: Vec<std::net::TcpStream> = (0..400).map(|_| std::net::TcpStream::connect(&listen).unwrap()).collect();
    let pid = d.pid();
    let fds = || std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap().count();
    let n = cycles(&state).len();
    d.until("three cycles that read the simulator", || {
        let c = cycles(&state);
        c.len() >= n + 3
            && c[n..].iter().all(|r| r["ok"] == true && r["failed_sources"].as_array().is_none_or(Vec::is_empty))
    });
    let started = Instant::now();
    let (code, body) = http_get(&listen, "/healthz");
    assert_eq!(code, 200, "{body}");
    assert!(started.elapsed() < Duration::from_secs(2), "answered at once, not after the idle ones time out");
    assert!(fds() < 128, "descriptors bounded by the cap: {}", fds());

    // One more idle connection: closed by the server after `header_timeout` (2 s).
    let mut quiet = std::net::TcpStream::connect(&listen).unwrap();
    quiet.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let opened = Instant::now();
    let mut buf = [0_u8; 64];
    let read = quiet.read(&mut buf);
    let waited = opened.elapsed();
    assert!(matches!(read, Ok(0)) || read.is_err(), "closed, not answered: {read:?}");
    assert!(waited >= Duration::from_millis(1500) && waited < Duration::from_secs(8), "closed after {waited:?}");
    drop(idle);
    assert!(!d.stderr().contains("Too many open files"), "{}", d.stderr());
}

/// Issue 12: `when = "market_open"` and the market closing made the rule `skipped`, and the
/// next cycle emailed "RESOLVED no-shorts: CHWY" while CHWY was still short; at the next open
/// a new episode started. A skipped rule holds its alerts: no resolved email, the same episode.
#[test]
fn a_firing_alert_stays_firing_while_its_when_gate_is_closed() {
    let sim = Sim::start(&short_scenario());
    let smtp = SmtpServer::start();
    let (dir, config) = setup(&sim.url, "", &alerts_table("1h", smtp.port));
    std::fs::write(
        dir.path().join("rules.toml"),
        "[[rule]]\nid = \"no-shorts\"\ncheck = \"no_short_positions\"\nseverity = \"critical\"\nwhen = \"market_open\"\n",
    )
    .unwrap();
    let state = dir.path().join("state");
    let mut d = Running::start(&config, &[]);

    d.until("the firing email", || !smtp.messages().is_empty());
    let book = || AlertBook::load(&state, chrono::Utc::now()).value;
    let fired_at = book().get("no-shorts/CHWY").and_then(|a| a.fired_at).expect("firing");

    sim.call("POST", "/_sim/clock", Some(&json!({ "is_open": false })));
    let done = cycles(&state).len();
    d.until("three cycles with the market closed", || {
        let c = cycles(&state);
        c.len() >= done + 3 && c[done..].iter().filter(|r| r["rules"]["skipped"] == 1).count() >= 2
    });
    let a = book().get("no-shorts/CHWY").cloned().expect("kept while skipped");
    assert_eq!((a.state, a.fired_at, a.resolved_at), (Phase::Firing, Some(fired_at), None));

    // The next open, still short: the same episode, no new firing email.
    sim.call("POST", "/_sim/clock", Some(&json!({ "is_open": true })));
    let done = cycles(&state).len();
    d.until("two cycles with the market open", || cycles(&state).len() >= done + 2);
    assert_eq!(book().get("no-shorts/CHWY").and_then(|a| a.fired_at), Some(fired_at));
    assert_eq!(subjects(&smtp), [SUBJECT], "one firing email, no RESOLVED while still short");
}

/// A setup whose `no-shorts` rule runs `exec:slow` in act mode; `script` is its `sh -c` text.
fn slow_exec_setup(url: &str, script: &str) -> (tempfile::TempDir, PathBuf) {
    let actions = format!(
        "[actions]\nmode = \"act\"\nconfirm_timeout = \"1s\"\n\n[actions.exec.slow]\ncommand = [\"/bin/sh\", \"-c\", {script:?}]\ntimeout = \"30s\"\n"
    );
    let (dir, config) = setup(url, "", &actions);
    std::fs::write(
        dir.path().join("rules.toml"),
        "[[rule]]\nid = \"no-shorts\"\ncheck = \"no_short_positions\"\nseverity = \"critical\"\nactions = [\"exec:slow\"]\n",
    )
    .unwrap();
    (dir, config)
}

fn journal(state: &Path) -> Vec<Value> {
    std::fs::read_to_string(state.join("actions.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Issue 12: a normal SIGTERM during an action abandoned it after 2 x the broker timeout (4 s
/// here), less than the exec's own run: the intent had no outcome and the process exited 0.
/// Now the cycle finishes: the journal has the outcome, then the daemon exits 0.
#[test]
fn a_sigterm_during_an_exec_action_waits_for_its_outcome() {
    let sim = Sim::start(&short_scenario());
    let dir = tempfile::tempdir().unwrap();
    let done = dir.path().join("exec-done");
    let (cfg_dir, config) = slow_exec_setup(&sim.url, &format!("sleep 7; touch {}", done.display()));
    let state = cfg_dir.path().join("state");
    let mut d = Running::start(&config, &[]);
    d.until("the exec intent", || journal(&state).iter().any(|r| r["kind"] == "intent"));
    d.signal("-TERM");
    let status = d.wait();
    assert_eq!(status.code(), Some(0), "{}", d.stderr());
    let records = journal(&state);
    let intent = records.iter().find(|r| r["kind"] == "intent").unwrap();
    let outcome = records.iter().find(|r| r["kind"] == "outcome" && r["id"] == intent["id"]);
    assert_eq!(outcome.map(|o| o["result"].clone()), Some(json!("done")), "{records:#?}\n{}", d.stderr());
    assert!(done.exists(), "the exec ran to its end");
}

/// A second signal still abandons the cycle, but the exec's whole process group dies with it:
/// `kill_on_drop` killed only the direct child, and a grandchild lived on as an orphan.
#[test]
fn an_abandoned_exec_leaves_no_orphan_grandchild() {
    let sim = Sim::start(&short_scenario());
    let dir = tempfile::tempdir().unwrap();
    let late = dir.path().join("orphan-wrote-this");
    let script = format!("sh -c 'sleep 4; touch {}'; true", late.display());
    let (cfg_dir, config) = slow_exec_setup(&sim.url, &script);
    let state = cfg_dir.path().join("state");
    let mut d = Running::start(&config, &[]);
    d.until("the exec intent", || journal(&state).iter().any(|r| r["kind"] == "intent"));
    d.signal("-TERM");
    std::thread::sleep(Duration::from_millis(300));
    d.signal("-TERM");
    let status = d.wait();
    assert!(status.code().is_some(), "{}", d.stderr());
    assert!(d.stderr().contains("Second stop request"), "{}", d.stderr());
    std::thread::sleep(Duration::from_secs(6));
    assert!(!late.exists(), "the exec's grandchild outlived tradewarden");
}

/// `GET path` with a chosen Host header (`None`: no Host header at all).
fn http_get_host(addr: &str, path: &str, host: Option<&str>) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let host = host.map(|h| format!("Host: {h}\r\n")).unwrap_or_default();
    write!(s, "GET {path} HTTP/1.1\r\n{host}Connection: close\r\n\r\n").unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    (head.split_whitespace().nth(1).unwrap().parse().unwrap(), body.to_owned())
}

/// Review (issue 12, "Trust"): `curl -H 'Host: attacker.example' http://127.0.0.1:PORT/api/status`
/// returned the full status, so a web page could read positions and equity through DNS
/// rebinding. Now every route answers 421 with no data to a Host that is not a loopback name or
/// address, the listen address, or one of `[server] allowed_hosts`.
#[test]
fn a_foreign_host_header_gets_421_and_no_status_data_dns_rebinding() {
    let sim = Sim::start(&short_scenario());
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let (dir, config) = setup(&sim.url, &listen, "allowed_hosts = [\"tw.example.org\"]\n");
    let state = dir.path().join("state");
    let mut d = Running::start(&config, &[]);
    d.until("a cycle that saw the short", || !cycles(&state).is_empty());
    // audits.jsonl is written before the status view is updated: wait for the view too.
    d.until("the status view shows the short", || {
        http_get_host(&listen, "/api/status", Some(&listen)).1.contains("CHWY")
    });

    for foreign in [Some("attacker.example".to_owned()), Some(format!("attacker.example:{port}")), None] {
        for path in ["/", "/api/status", "/metrics", "/healthz"] {
            let (code, body) = http_get_host(&listen, path, foreign.as_deref());
            assert_eq!(code, 421, "{path} with Host {foreign:?}: {body}");
            for data in ["CHWY", "no-shorts", "equity", "tradewarden_", "ok"] {
                assert!(!body.contains(data), "{path} with Host {foreign:?} leaked `{data}`: {body}");
            }
        }
    }
    for host in [listen.clone(), format!("localhost:{port}"), format!("[::1]:{port}"), "tw.example.org".into()] {
        let (code, body) = http_get_host(&listen, "/api/status", Some(&host));
        assert_eq!(code, 200, "Host {host}: {body}");
        assert!(body.contains("CHWY"), "Host {host}: {body}");
    }
    assert_eq!(http_get_host(&listen, "/healthz", Some("localhost")).0, 200);
    drop(d);
    drop(dir);
}
