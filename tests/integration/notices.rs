//! Issue 12 "Trust", §2: you hear of every action, and nothing owed is lost. The real binary
//! (`tradewarden run`) beside the simulator and aiosmtpd:
//! - an action a crash interrupted is reported and emailed by the first cycle, with what the
//!   re-read showed and a severity to match;
//! - with the state directory full (a real 256 KiB tmpfs), the email of an action taken is held
//!   until it can be written and sent, and arrives exactly once;
//! - the heartbeat stops saying healthy (it pings `/fail`) while email has been undeliverable
//!   longer than `[alerts] undeliverable_after`, and beats again once email works.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::simulator::{KEY_ID, SECRET, Sim};
use crate::support::bin;
use crate::util::{SmtpServer, free_port, header, smtp_email_table};

const DEADLINE: Duration = Duration::from_secs(40);

/// A running `tradewarden run`; killed on drop. Its stderr goes to a file, shown on failure.
struct Running {
    child: Child,
    log: PathBuf,
}

impl Running {
    fn start(config: &Path, args: &[&str]) -> Self {
        let log = config.with_extension(format!("{}.log", free_port()));
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

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn wait(&mut self) -> std::process::ExitStatus {
        let end = Instant::now() + DEADLINE;
        while Instant::now() < end {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("tradewarden run did not exit within {DEADLINE:?}\n{}", self.stderr());
    }

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

/// A tmpfs mounted on a folder; unmounted on drop (lazily if something still holds it).
struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .expect("mount runs");
        assert!(out.status.success(), "mount tmpfs (needs root): {}", String::from_utf8_lossy(&out.stderr));
        Self { dir: dir.to_owned() }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let ok = Command::new("umount").arg(&self.dir).status().is_ok_and(|s| s.success());
        if !ok {
            let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
        }
    }
}

/// Writes `path` until the filesystem has no room left; returns the bytes written.
fn fill(path: &Path) -> u64 {
    let mut f = std::fs::File::create(path).unwrap();
    let mut n = 0;
    for chunk in [4096_usize, 1] {
        let buf = vec![0_u8; chunk];
        while f.write_all(&buf).is_ok() && f.flush().is_ok() {
            n += chunk as u64;
        }
    }
    let _ = f.sync_all();
    n
}

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

/// A bot tracking AAPL 10, the rule `no-shorts` (critical, flatten_shorts), the simulator at
/// `url` every second, no status server, `extra` appended.
fn setup(url: &str, extra: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("bot/state")).unwrap();
    std::fs::write(
        dir.path().join("bot/state/executor_state.json"),
        r#"{ "opens": { "AAPL": { "qty": 10, "entry_price": 187.25 } } }"#,
    )
    .unwrap();
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
             [schedule]\nevery = \"1s\"\n\n[server]\nlisten = \"\"\n\n{extra}"
        ),
    )
    .unwrap();
    (dir, config)
}

/// A message's text with quoted-printable soft line breaks undone.
fn plain(raw: &str) -> String {
    raw.replace("=\r\n", "").replace("=\n", "").replace("=3D", "=")
}

fn message_ids(smtp: &SmtpServer) -> Vec<String> {
    smtp.messages().iter().filter_map(|m| header(m, "Message-ID")).collect()
}

fn journal_lines(state: &Path) -> Vec<Value> {
    std::fs::read_to_string(state.join("actions.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// A tradewarden killed (SIGKILL) between an action's intent and its outcome leaves exactly
/// this journal. The close of CHWY never went out, so the short is still open at the restart:
/// the first cycle's report and email name the interrupted action and what the re-read showed,
/// as a critical finding.
#[test]
fn an_action_interrupted_by_a_crash_is_reported_and_emailed_by_the_first_cycle() {
    let sim = Sim::start(&short_scenario());
    let smtp = SmtpServer::start();
    let (dir, config) = setup(
        &sim.url,
        &format!("[actions]\nmode = \"act\"\nconfirm_timeout = \"5s\"\n\n[alerts]\n{}", smtp_email_table(smtp.port)),
    );
    let state = dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    let id = "0b7e2a52-1111-4c1e-9d7e-000000000001";
    let intent = json!({
        "kind": "intent", "id": id, "at": (chrono::Utc::now() - chrono::Duration::minutes(2)).to_rfc3339(),
        "action": "flatten_shorts", "origin": "daemon", "rules": ["no-shorts"], "fingerprints": ["no-shorts/CHWY"],
        "subject": "CHWY", "why": ["CHWY is short -1596"],
        "steps": ["DELETE /v2/positions/CHWY (the broker buys to cover 1596)"],
        "targets": { "symbols": ["CHWY"], "shorts_only": true, "order_ids": [] }, "broker_seen": null
    });
    std::fs::write(state.join("actions.jsonl"), format!("{intent}\n")).unwrap();

    let mut d = Running::start(&config, &["--max-cycles", "1"]);
    assert_eq!(d.wait().code(), Some(0), "{}", d.stderr());

    // The report of the first cycle.
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(state.join("last_report.json")).unwrap()).unwrap();
    let findings = report["findings"].as_array().unwrap();
    let f = findings
        .iter()
        .find(|f| f["code"] == "action_interrupted")
        .unwrap_or_else(|| panic!("no action_interrupted finding in the report: {report:#}"));
    assert_eq!(f["severity"], "critical", "the short is still open: {f:#}");
    assert_eq!(f["subject"], "flatten_shorts");
    assert_eq!(f["observed"]["journal_id"], id);
    assert!(f["observed"]["reread"].as_str().unwrap().contains("CHWY is still short -1596"), "{f:#}");
    let actions = report["cycle"]["actions"].as_array().unwrap();
    assert!(
        actions.iter().any(|a| a["result"] == "recovered" && a["journal_id"] == id),
        "the recovery is one of the cycle's actions: {actions:#?}"
    );

    // The email of the first cycle.
    let mails = smtp.messages();
    assert_eq!(mails.len(), 1, "one email for the cycle");
    let text = plain(&mails[0]);
    assert!(text.contains("flatten_shorts was interrupted"), "the email names the interrupted action:\n{text}");
    assert!(text.contains("CHWY is still short -1596"), "and what the re-read showed:\n{text}");
    assert!(header(&mails[0], "Subject").unwrap().contains("CRITICAL"), "{}", mails[0]);

    // Recorded once; never repeated by the recovery.
    let outcomes: Vec<Value> =
        journal_lines(&state).into_iter().filter(|l| l["kind"] == "outcome" && l["id"] == id).collect();
    assert_eq!(outcomes.len(), 1);
    assert_eq!(outcomes[0]["result"], "recovered");
}

/// The state directory is a full 256 KiB tmpfs (only the action journal has room, as when a
/// disk fills up between two small appends). A short appears, tradewarden flattens it, and the
/// email cannot be written to the outbox; SMTP is down too. The notice is held, written once
/// space returns, and delivered exactly once when SMTP comes back, with the Message-ID it got
/// when it was queued.
#[test]
fn an_action_taken_while_the_state_dir_is_full_is_emailed_exactly_once_when_space_returns() {
    let sim = Sim::start(&clean_scenario());
    let smtp_port = free_port(); // nothing listens yet: SMTP is down
    let (dir, config) = setup(
        &sim.url,
        &format!("[actions]\nmode = \"act\"\nconfirm_timeout = \"5s\"\n\n[alerts]\n{}", smtp_email_table(smtp_port)),
    );
    let state = dir.path().join("state");
    let tmpfs = Tmpfs::mount(&state, "256k");
    // Room for the journal only: pages reserved for it (fallocate --keep-size) before the fill.
    std::fs::write(state.join("actions.jsonl"), "").unwrap();
    let st = Command::new("fallocate").args(["-n", "-l", "64KiB"]).arg(state.join("actions.jsonl")).status().unwrap();
    assert!(st.success(), "fallocate --keep-size");

    let mut d = Running::start(&config, &[]);
    d.until("two clean cycles", || {
        std::fs::read_to_string(state.join("audits.jsonl")).is_ok_and(|t| t.lines().count() >= 2)
    });
    let filler = state.join("filler");
    assert!(fill(&filler) > 0);

    sim.call("POST", "/_sim/scenario", Some(&short_scenario()));
    d.until("the flatten is done", || {
        journal_lines(&state)
            .iter()
            .any(|l| l["kind"] == "outcome" && l["action"] == "flatten_shorts" && l["result"] == "done")
    });
    assert!(
        sim.state()["positions"].as_array().unwrap().iter().all(|p| p["symbol"] != "CHWY"),
        "the short was flattened"
    );
    // Cycles go on with the disk full: nothing is written to the outbox, nothing is lost.
    let outbox = state.join("outbox");
    let queued = || -> Vec<Value> {
        std::fs::read_dir(&outbox)
            .map(|d| {
                d.flatten()
                    .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
                    .filter_map(|e| serde_json::from_str(&std::fs::read_to_string(e.path()).ok()?).ok())
                    .collect()
            })
            .unwrap_or_default()
    };
    let log = d.log.clone();
    // The cycle that acted tried to queue its email (held in memory now; dropped before).
    d.until("the email's queueing to fail", || {
        std::fs::read_to_string(&log)
            .is_ok_and(|l| l.contains("Email held in memory.") || l.contains("Cannot queue this cycle's email"))
    });
    std::thread::sleep(Duration::from_secs(2));
    assert!(queued().is_empty(), "the disk is full: nothing could be written");

    // Space returns: the held email is written to the outbox (SMTP is still down).
    std::fs::remove_file(&filler).unwrap();
    d.until("the held email written to the outbox", || {
        queued().iter().any(|m| m["text"].as_str().is_some_and(|t| t.contains("flatten_shorts")))
    });
    let owed = queued().into_iter().find(|m| m["text"].as_str().unwrap().contains("flatten_shorts")).unwrap();
    let owed_id = owed["message_id"].as_str().unwrap().to_owned();

    // SMTP comes back: the owed notice arrives, once, with its Message-ID.
    let smtp = SmtpServer::start_on(smtp_port);
    d.until("the owed email", || message_ids(&smtp).contains(&owed_id));
    std::thread::sleep(Duration::from_secs(4));
    let ids = message_ids(&smtp);
    assert_eq!(ids.iter().filter(|i| **i == owed_id).count(), 1, "exactly once: {ids:?}");
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "no duplicate of any message: {ids:?}");
    let mail = smtp.messages().into_iter().find(|m| header(m, "Message-ID").as_deref() == Some(&owed_id)).unwrap();
    let text = plain(&mail);
    assert!(text.contains("flatten_shorts") && text.contains("CHWY"), "it names the action:\n{text}");
    drop(d);
    drop(tmpfs);
}

/// A loopback heartbeat receiver: answers 200 and records each request's path, in order.
fn heartbeat_receiver() -> (String, Arc<Mutex<Vec<String>>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let paths = Arc::new(Mutex::new(Vec::new()));
    let seen = paths.clone();
    std::thread::spawn(move || {
        for stream in l.incoming().flatten() {
            let mut reader = BufReader::new(stream);
            let mut line = String::new();
            if reader.read_line(&mut line).is_ok()
                && let Some(path) = line.split_whitespace().nth(1)
            {
                seen.lock().unwrap().push(path.to_owned());
            }
            let mut h = String::new();
            while reader.read_line(&mut h).is_ok_and(|n| n > 2) {
                h.clear();
            }
            let _ = reader.get_mut().write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nOK");
        }
    });
    (format!("http://{addr}/ping/check-token"), paths)
}

/// SMTP down (a closed port) while a short is firing: the heartbeat beats until the owed email
/// has failed for longer than `undeliverable_after` (3 s), then pings `/fail` every cycle;
/// once SMTP is back and the email delivered, it beats again.
#[test]
fn the_heartbeat_fails_while_email_is_undeliverable_and_beats_again_once_delivered() {
    let sim = Sim::start(&short_scenario());
    let smtp_port = free_port();
    let (url, paths) = heartbeat_receiver();
    let (_dir, config) = setup(
        &sim.url,
        &format!("[alerts]\nheartbeat_url = {url:?}\nundeliverable_after = \"3s\"\n\n{}", smtp_email_table(smtp_port)),
    );
    let beats = || paths.lock().unwrap().iter().filter(|p| p.as_str() == "/ping/check-token").count();
    let fails = || paths.lock().unwrap().iter().filter(|p| p.as_str() == "/ping/check-token/fail").count();
    let mut d = Running::start(&config, &[]);
    d.until("a first beat", || beats() >= 1);
    d.until("three /fail pings", || fails() >= 3);
    let beats_then = beats();
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(beats(), beats_then, "no healthy beat while email is undeliverable: {:?}", paths.lock().unwrap());
    assert!(d.stderr().contains("undeliverable_after"), "the cycle says why");

    let smtp = SmtpServer::start_on(smtp_port);
    d.until("the owed email", || !smtp.messages().is_empty());
    d.until("beats again", || beats() >= beats_then + 2);
    let after: Vec<String> = {
        let p = paths.lock().unwrap();
        let first_fail = p.iter().position(|p| p.ends_with("/fail")).unwrap();
        p[first_fail..].to_vec()
    };
    let last_fail = after.iter().rposition(|p| p.ends_with("/fail")).unwrap();
    assert!(after[last_fail + 1..].iter().all(|p| !p.ends_with("/fail")), "once delivered, only beats: {after:?}");
    assert!(!d.stderr().contains("check-token"), "the heartbeat URL never reaches the log");
}

/// The journal holds an interrupted flatten (as a SIGKILL leaves it) and the state directory is
/// full: the recovery's re-read works but cannot be journaled, and the email cannot be written
/// to the outbox. The operator still hears, in the first cycle's email, that the flatten was
/// interrupted and that CHWY is still short; the recording is done once space returns.
#[test]
fn an_interrupted_action_is_emailed_even_when_its_recovery_cannot_be_journaled() {
    let sim = Sim::start(&clean_scenario());
    let smtp = SmtpServer::start();
    let (dir, config) = setup(&sim.url, &format!("[alerts]\n{}", smtp_email_table(smtp.port)));
    let state = dir.path().join("state");
    let tmpfs = Tmpfs::mount(&state, "256k");
    // A first run creates the state files (the lock file keeps its page: it is rewritten in place).
    let mut d = Running::start(&config, &["--max-cycles", "1"]);
    assert_eq!(d.wait().code(), Some(0), "{}", d.stderr());
    assert!(smtp.messages().is_empty(), "a clean account sends nothing");

    // The intent fills its page exactly, so the outcome's append needs a page the disk lacks.
    let id = "0b7e2a52-1111-4c1e-9d7e-000000000002";
    let intent = |pad: &str| {
        json!({
            "kind": "intent", "id": id, "at": (chrono::Utc::now() - chrono::Duration::minutes(2)).to_rfc3339(),
            "action": "flatten_shorts", "origin": "daemon", "rules": ["no-shorts"],
            "fingerprints": ["no-shorts/CHWY"], "subject": "CHWY", "why": [pad],
            "steps": ["DELETE /v2/positions/CHWY (the broker buys to cover 1596)"],
            "targets": { "symbols": ["CHWY"], "shorts_only": true, "order_ids": [] }, "broker_seen": null
        })
        .to_string()
    };
    let bare = intent("").len();
    let line = intent(&"x".repeat(4095 - bare)) + "\n";
    assert_eq!(line.len(), 4096);
    std::fs::write(state.join("actions.jsonl"), &line).unwrap();
    let filler = state.join("filler");
    fill(&filler);
    sim.call("POST", "/_sim/scenario", Some(&short_scenario()));

    let mut d = Running::start(&config, &["--max-cycles", "1"]);
    assert_eq!(d.wait().code(), Some(0), "{}", d.stderr());
    let mails = smtp.messages();
    assert_eq!(mails.len(), 1, "{}", d.stderr());
    let text = plain(&mails[0]);
    assert!(text.contains("flatten_shorts was interrupted"), "the email names the interrupted action:\n{text}");
    assert!(text.contains("CHWY is still short -1596"), "and what the re-read showed:\n{text}");
    assert_eq!(std::fs::read_to_string(state.join("actions.jsonl")).unwrap(), line, "nothing could be journaled");

    // Space returns: the next start journals the recovery.
    std::fs::remove_file(&filler).unwrap();
    let mut d = Running::start(&config, &["--max-cycles", "1"]);
    assert_eq!(d.wait().code(), Some(0), "{}", d.stderr());
    let outcomes: Vec<Value> =
        journal_lines(&state).into_iter().filter(|l| l["kind"] == "outcome" && l["id"] == id).collect();
    assert_eq!(outcomes.len(), 1);
    assert_eq!(outcomes[0]["result"], "recovered");
    drop(tmpfs);
}

/// A queued message fails while the state directory is full: its failed attempt cannot be
/// rewritten to its file. The backoff holds anyway (in memory: no retry before it is due), the
/// message stays owed, and the attempt is written once space returns; then it is delivered once.
#[tokio::test]
async fn a_failed_attempt_that_cannot_be_recorded_keeps_its_backoff_and_is_delivered_once() {
    use tradewarden::config::Config;
    use tradewarden::notify::{Mailer, Outbox, Rendered, RetryPolicy};
    let port = free_port(); // SMTP down
    let (dir, path) = crate::util::config_dir(&smtp_email_table(port));
    let cfg = Config::load(&path).unwrap();
    let mailer = Mailer::from_config(&cfg.alerts.email, Duration::from_secs(5)).unwrap();
    let tmpfs = Tmpfs::mount(&cfg.state_dir, "256k");
    let ob = Outbox::new(&cfg.state_dir).with_policy(RetryPolicy { jitter: 0.0, ..RetryPolicy::default() });
    let rendered = Rendered { subject: "owed".into(), text: "flatten_shorts (done)".into(), html: "<p>x</p>".into() };
    let t0 = chrono::Utc::now();
    let m = ob.enqueue(&rendered, &cfg.alerts.email.from, &cfg.alerts.email.to, t0).unwrap();
    let filler = cfg.state_dir.join("filler");
    fill(&filler);

    let r = ob.flush(&mailer, t0).await;
    assert_eq!(r.failed.len(), 1, "{r:?}");
    assert!(r.problems.iter().any(|p| p.contains("cannot record the failed attempt")), "{:?}", r.problems);
    // One second later it is not due (the backoff is 30 s): not tried again.
    let r = ob.flush(&mailer, t0 + chrono::Duration::seconds(1)).await;
    assert_eq!((r.failed.len(), r.queued), (0, 1), "the backoff holds: {r:?}");
    assert_eq!(ob.list(t0).messages[0].attempts, 1);

    // Space returns: the attempt is recorded on disk; SMTP returns: delivered once.
    std::fs::remove_file(&filler).unwrap();
    ob.flush(&mailer, t0 + chrono::Duration::seconds(2)).await;
    let on_disk: Value = serde_json::from_str(&std::fs::read_to_string(ob.path_of(&m.id)).unwrap()).unwrap();
    assert_eq!(on_disk["attempts"], 1, "{on_disk:#}");
    let smtp = SmtpServer::start_on(port);
    let later = t0 + chrono::Duration::minutes(5);
    let r = ob.flush(&mailer, later).await;
    assert_eq!(r.delivered.len(), 1, "{r:?}");
    assert_eq!(ob.flush(&mailer, later + chrono::Duration::minutes(5)).await.delivered.len(), 0);
    assert_eq!(message_ids(&smtp), [m.message_id]);
    drop(tmpfs);
    drop(dir);
}
