//! Email against a real SMTP server (aiosmtpd): delivery, the durable outbox across an outage,
//! header injection, `tradewarden alerts test`, and STARTTLS / implicit TLS with AUTH against a
//! server whose certificate a throwaway CA signed.

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use serde_json::json;
use tradewarden::alert::{AlertBook, Notification, step};
use tradewarden::config::Config;
use tradewarden::engine::Evaluated;
use tradewarden::model::{Finding, Mode, Outcome, RuleOutcome, Severity};
use tradewarden::notify::{Mailer, MessageContext, Notifier, Outbox, Rendered, RetryPolicy, render};

use crate::util::{
    SMTP_PASS, SMTP_USER, SmtpServer, TlsSmtpServer, config_dir, free_port, header, headers, show, smtp_email_table,
    tradewarden,
};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 20, 14, 30, 0).unwrap()
}

fn short(subject: &str, qty: &str) -> Finding {
    Finding {
        rule: "no-shorts".into(),
        check: "no_short_positions".into(),
        code: "short_position".into(),
        severity: Severity::Critical,
        subject: subject.into(),
        message: format!("{subject} is short {qty} at the broker; this bot is long-only"),
        observed: json!({ "qty": qty, "side": "short" }),
        expected: json!({ "qty": ">= 0" }),
    }
}

/// One lifecycle step over these findings: the notifications it owes.
fn notifications(cfg: &Config, findings: Vec<Finding>) -> Vec<Notification> {
    let ev = Evaluated {
        findings,
        outcomes: vec![RuleOutcome {
            id: "no-shorts".into(),
            check: "no_short_positions".into(),
            outcome: Outcome::Violated,
            reason: None,
        }],
    };
    step(&AlertBook::default(), &cfg.rules, &ev, &[], &cfg.alerts, t0()).1
}

fn rendered(cfg: &Config, findings: Vec<Finding>) -> Rendered {
    let ctx = MessageContext {
        host: "bot-host",
        config_path: &cfg.path,
        status_url: None,
        firing_total: None,
        mode: Some(Mode::Paper),
        now: t0(),
    };
    render(&notifications(cfg, findings), &[], &ctx).expect("something to say")
}

fn setup(port: u16) -> (tempfile::TempDir, Config, Mailer) {
    let (dir, path) = config_dir(&smtp_email_table(port));
    let cfg = Config::load(&path).expect("valid config");
    let mailer = Mailer::from_config(&cfg.alerts.email, Duration::from_secs(10)).expect("mailer");
    (dir, cfg, mailer)
}

fn outbox(cfg: &Config) -> Outbox {
    Outbox::new(&cfg.state_dir).with_policy(RetryPolicy { jitter: 0.0, ..RetryPolicy::default() })
}

fn outbox_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|d| d.flatten().filter(|e| e.path().extension().is_some_and(|x| x == "json")).count())
        .unwrap_or(0)
}

#[tokio::test]
async fn a_cycle_message_is_delivered_with_both_parts_subject_and_message_id() {
    let server = SmtpServer::start();
    let (_dir, cfg, mailer) = setup(server.port);
    assert_eq!(mailer.describe(), format!("smtp://127.0.0.1:{} (no tls)", server.port));
    let ob = outbox(&cfg);
    let msg = ob
        .enqueue(&rendered(&cfg, vec![short("CHWY", "-1596")]), &cfg.alerts.email.from, &cfg.alerts.email.to, t0())
        .unwrap();
    let report = ob.flush(&mailer, t0()).await;
    assert_eq!(report.delivered.len(), 1, "{report:?}");
    assert!(report.delivered[0].receipt.contains("250"), "{}", report.delivered[0].receipt);
    assert_eq!(outbox_files(ob.dir()), 0);

    let got = server.messages();
    assert_eq!(got.len(), 1);
    let raw = &got[0];
    assert_eq!(header(raw, "Subject").as_deref(), Some("[tradewarden] CRITICAL no-shorts: CHWY short -1596 (paper)"));
    assert_eq!(header(raw, "Message-ID"), Some(msg.message_id.clone()));
    assert_eq!(header(raw, "X-RcptTo").as_deref(), Some("ops@example.com"));
    assert!(header(raw, "Content-Type").unwrap().starts_with("multipart/alternative"), "{raw}");
    assert!(raw.contains("Content-Type: text/plain") && raw.contains("Content-Type: text/html"), "{raw}");
    assert!(raw.contains("short_position") && raw.contains("bot-host"), "{raw}");
}

#[tokio::test]
async fn smtp_down_for_several_cycles_then_back_delivers_every_message_once() {
    let port = free_port();
    let (_dir, cfg, mailer) = setup(port);
    let ob = outbox(&cfg);

    // Six 30-second cycles with nothing listening; a message is queued in each of the first three.
    let mut ids = Vec::new();
    let mut first_delays = Vec::new();
    for cycle in 0..6i64 {
        let now = t0() + chrono::Duration::seconds(30 * cycle);
        if cycle < 3 {
            let r = rendered(&cfg, vec![short(&format!("SYM{cycle}"), "-1")]);
            ids.push(ob.enqueue(&r, &cfg.alerts.email.from, &cfg.alerts.email.to, now).unwrap().message_id);
        }
        let report = ob.flush(&mailer, now).await;
        assert!(report.delivered.is_empty());
        assert_eq!(report.queued, ids.len(), "{report:?}");
        for f in &report.failed {
            assert!(f.error.message.contains(&format!("127.0.0.1:{port}")), "{}", f.error);
        }
        let first = ob.list(now).messages.into_iter().find(|m| m.message_id == ids[0]).unwrap();
        if first.last_attempt_at == Some(now) {
            first_delays.push((first.next_attempt_at - now).num_seconds());
        }
    }
    // The first message was tried at 0 s, 30 s and 90 s: its backoff grows.
    assert_eq!(first_delays, [30, 60, 120]);
    let listed = ob.list(t0()).messages;
    assert_eq!(listed.len(), 3);
    assert!(listed.iter().all(|m| m.attempts >= 1 && m.last_error.is_some()), "{listed:#?}");

    // The server comes back; the next flushes deliver everything, each message once.
    let server = SmtpServer::start_on(port);
    let later = t0() + chrono::Duration::hours(1);
    let report = ob.flush(&mailer, later).await;
    assert_eq!(report.delivered.len(), 3, "{report:?}");
    assert_eq!(report.queued, 0);
    let again = ob.flush(&mailer, later + chrono::Duration::hours(1)).await;
    assert!(again.delivered.is_empty() && again.failed.is_empty());

    let got = server.messages();
    let mut received: Vec<String> = got.iter().map(|m| header(m, "Message-ID").unwrap()).collect();
    received.sort();
    ids.sort();
    assert_eq!(received, ids, "each queued message exactly once, with the Message-ID chosen at enqueue time");
}

#[tokio::test]
async fn text_from_symbols_cannot_inject_headers() {
    let server = SmtpServer::start();
    let (_dir, cfg, mailer) = setup(server.port);
    let ob = outbox(&cfg);
    let evil = "CHWY\r\nBcc: evil@x";
    // Through the renderer (a hostile symbol in a finding) ...
    let r = rendered(&cfg, vec![short(evil, "-1\r\nBcc: evil@x")]);
    ob.enqueue(&r, &cfg.alerts.email.from, &cfg.alerts.email.to, t0()).unwrap();
    // ... and straight into the outbox, bypassing the renderer.
    let raw = Rendered { subject: format!("[tradewarden] {evil}"), text: "x".into(), html: "<p>x</p>".into() };
    ob.enqueue(&raw, &cfg.alerts.email.from, &cfg.alerts.email.to, t0() + chrono::Duration::seconds(1)).unwrap();
    let report = ob.flush(&mailer, t0() + chrono::Duration::seconds(2)).await;
    assert_eq!(report.delivered.len(), 2, "{report:?}");

    let got = server.messages();
    assert_eq!(got.len(), 2);
    for m in &got {
        let hs = headers(m);
        assert!(!hs.iter().any(|h| h.to_ascii_lowercase().starts_with("bcc")), "{hs:#?}");
        assert_eq!(header(m, "X-RcptTo").as_deref(), Some("ops@example.com"));
        let subject = header(m, "Subject").unwrap();
        assert!(subject.contains("CHWY Bcc: evil@x"), "{subject}");
    }
}

#[test]
fn alerts_test_delivers_through_the_real_binary() {
    let server = SmtpServer::start();
    let (dir, cfg) = config_dir(&smtp_email_table(server.port));
    let out = tradewarden(&["alerts", "test", "-c", cfg.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("delivered to ops@example.com"), "{}", show(&out));
    let got = server.messages();
    assert_eq!(got.len(), 1);
    assert!(header(&got[0], "Subject").unwrap().starts_with("[tradewarden] TEST message from "), "{}", got[0]);
    let mid = header(&got[0], "Message-ID").unwrap();
    assert!(stdout.contains(&mid), "{stdout}");
    assert_eq!(outbox_files(&dir.path().join("state/outbox")), 0);
}

#[test]
fn alerts_test_with_the_server_down_queues_and_exits_1() {
    let port = free_port();
    let (dir, cfg) = config_dir(&smtp_email_table(port));
    let out = tradewarden(&["alerts", "test", "-c", cfg.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("NOT delivered"), "{}", show(&out));
    assert_eq!(outbox_files(&dir.path().join("state/outbox")), 1);
}

#[test]
fn alerts_test_with_the_default_file_transport_writes_an_eml() {
    let (dir, cfg) = config_dir("");
    let out = tradewarden(&["alerts", "test", "-c", cfg.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let mail = dir.path().join("state/mail");
    assert!(String::from_utf8_lossy(&out.stdout).contains(mail.to_str().unwrap()), "{}", show(&out));
    let emls: Vec<_> = std::fs::read_dir(&mail).unwrap().flatten().collect();
    assert_eq!(emls.len(), 1);
}

/// `[alerts.email]` for the TLS server: credentials from `TW_SMTP_USER` / `TW_SMTP_PASS`.
fn tls_table(server: &TlsSmtpServer, tls: &str, ca_file: Option<&Path>) -> String {
    let ca = ca_file.map(|p| format!("ca_file = \"{}\"\n", p.display())).unwrap_or_default();
    format!(
        "[alerts.email]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"{tls}\"\n{ca}\
         username_env = \"TW_SMTP_USER\"\npassword_env = \"TW_SMTP_PASS\"\n\
         from = \"tradewarden@example.com\"\nto = [\"ops@example.com\"]\n",
        server.port
    )
}

fn alerts_test_with_credentials(cfg: &Path, password: &str) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_tradewarden"))
        .args(["alerts", "test", "-c", cfg.to_str().unwrap()])
        .env_remove("TRADEWARDEN_CONFIG")
        .env("RUST_LOG", "debug")
        .env("TW_SMTP_USER", SMTP_USER)
        .env("TW_SMTP_PASS", password)
        .output()
        .expect("run tradewarden")
}

fn assert_no_password(out: &std::process::Output, dir: &Path, password: &str) {
    let shown = show(out);
    assert!(!shown.contains(password), "the password leaked into the output:\n{shown}");
    for e in crate::util::files_under(dir) {
        let bytes = std::fs::read(&e).unwrap();
        assert!(!String::from_utf8_lossy(&bytes).contains(password), "the password leaked into {}", e.display());
    }
}

#[test]
fn starttls_and_implicit_tls_with_auth_deliver_and_the_password_appears_nowhere() {
    for mode in ["starttls", "tls"] {
        let server = TlsSmtpServer::start(mode);
        let (dir, cfg) = config_dir(&tls_table(&server, mode, Some(&server.ca_file())));
        let out = alerts_test_with_credentials(&cfg, SMTP_PASS);
        assert_eq!(out.status.code(), Some(0), "{mode}: {}", show(&out));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains("delivered to ops@example.com"), "{mode}: {}", show(&out));
        assert!(stdout.contains(&format!("({mode}, authenticated)")), "{mode}: {}", show(&out));
        let got = server.messages();
        assert_eq!(got.len(), 1, "{mode}");
        assert!(header(&got[0], "Subject").unwrap().starts_with("[tradewarden] TEST message from "), "{}", got[0]);
        assert_eq!(outbox_files(&dir.path().join("state/outbox")), 0, "{mode}");
        assert_no_password(&out, dir.path(), SMTP_PASS);
    }
}

#[test]
fn a_wrong_password_or_an_untrusted_certificate_is_not_delivered_and_says_why() {
    let server = TlsSmtpServer::start("starttls");
    // Rejected credentials: the server's 535, the message kept for a retry.
    let (dir, cfg) = config_dir(&tls_table(&server, "starttls", Some(&server.ca_file())));
    let wrong = "pw-wrong-Kx93-not-it";
    let out = alerts_test_with_credentials(&cfg, wrong);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("NOT delivered") && stdout.contains("535"), "{}", show(&out));
    assert_eq!(outbox_files(&dir.path().join("state/outbox")), 1);
    assert_no_password(&out, dir.path(), wrong);

    // A certificate no trusted CA signed (no `ca_file`): refused before any credential is sent.
    let (dir, cfg) = config_dir(&tls_table(&server, "starttls", None));
    let out = alerts_test_with_credentials(&cfg, SMTP_PASS);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let stdout = String::from_utf8_lossy(&out.stdout).to_lowercase();
    assert!(stdout.contains("not delivered") && stdout.contains("certificate"), "{}", show(&out));
    assert_eq!(outbox_files(&dir.path().join("state/outbox")), 1);
    assert!(server.messages().is_empty());
    assert_no_password(&out, dir.path(), SMTP_PASS);
}

#[test]
fn a_ca_file_that_is_missing_or_not_pem_is_a_config_error_with_its_line() {
    let (dir, cfg) = config_dir("[alerts.email]\nhost = \"127.0.0.1\"\nca_file = \"nope.pem\"\n");
    let out = tradewarden(&["alerts", "test", "-c", cfg.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("tradewarden.toml:") && err.contains("nope.pem"), "{}", show(&out));
    std::fs::write(dir.path().join("nope.pem"), "not a certificate\n").unwrap();
    let out = tradewarden(&["alerts", "test", "-c", cfg.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("holds no PEM certificate"), "{}", show(&out));
}
