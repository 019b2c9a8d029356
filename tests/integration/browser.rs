//! The status page in a real browser: `tradewarden run` beside the simulator during the
//! phantom-exit incident, `/` loaded in headless Chromium (Debian's package, installed by the
//! README test command), the rendered DOM checked for the findings, and a screenshot kept as a
//! test artifact in `tests/artifacts/status-page.png`. Then the same daemon made blind (every
//! broker call failing): the page must say "blind", list the unknown rules with why, and show
//! the broker-vs-bot table (`tests/artifacts/status-page-blind.png`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::simulator::{BotDir, KEY_ID, SECRET, Sim, phantom_exit_scenario};
use crate::support::{bin, repo};
use crate::util::free_port;

struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn chromium() -> PathBuf {
    for c in ["/usr/bin/chromium", "/usr/bin/chromium-browser"] {
        if Path::new(c).exists() {
            return PathBuf::from(c);
        }
    }
    panic!("chromium is not installed: run ./scripts/test-env.sh (the README test command does)");
}

/// Runs headless Chromium with the flags a closed network needs (no background traffic).
fn headless(profile: &Path, args: &[String]) -> std::process::Output {
    Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("chromium runs")
}

fn get(addr: &str, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").ok()?;
    let mut raw = String::new();
    s.read_to_string(&mut raw).ok()?;
    raw.split_once("\r\n\r\n").map(|(_, b)| b.to_owned())
}

#[test]
fn the_status_page_renders_the_incident_in_chromium() {
    let sim = Sim::start(&phantom_exit_scenario());
    let bot = BotDir::phantom_exit(&sim.url);
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let config = std::fs::read_to_string(bot.config()).unwrap();
    let config = config
        .replace("listen = \"127.0.0.1:9464\"", &format!("listen = {addr:?}"))
        .replace("every = \"30s\"", "every = \"1s\"");
    assert!(config.contains(&addr), "the example config changed shape");
    std::fs::write(bot.config(), config).unwrap();

    let _daemon = Daemon(
        bin()
            .arg("run")
            .arg("-c")
            .arg(bot.config())
            .env("APCA_API_KEY_ID", KEY_ID)
            .env("APCA_API_SECRET_KEY", SECRET)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("tradewarden run starts"),
    );
    let end = Instant::now() + Duration::from_secs(30);
    loop {
        let status = get(&addr, "/api/status").unwrap_or_default();
        if status.contains("short_position") {
            break;
        }
        assert!(Instant::now() < end, "the daemon never reported the short: {status}");
        std::thread::sleep(Duration::from_millis(200));
    }

    let profile = tempfile::tempdir().unwrap();
    let url = format!("http://{addr}/");
    let dom = headless(profile.path(), &["--dump-dom".into(), url.clone()]);
    let html = String::from_utf8_lossy(&dom.stdout);
    assert!(dom.status.success(), "chromium --dump-dom failed: {}", String::from_utf8_lossy(&dom.stderr));
    for needle in
        ["Current findings", "short_position", "CHWY", "no-shorts", "side_mismatch", "Findings per cycle", "<svg"]
    {
        assert!(html.contains(needle), "the rendered page lacks `{needle}`:\n{html}");
    }
    assert!(html.contains("firing") || html.contains("pending"), "alert states are shown");

    let artifacts = repo("tests/artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let shot = artifacts.join("status-page.png");
    let _ = std::fs::remove_file(&shot);
    let out =
        headless(profile.path(), &["--window-size=1100,1600".into(), format!("--screenshot={}", shot.display()), url]);
    assert!(out.status.success(), "chromium --screenshot failed: {}", String::from_utf8_lossy(&out.stderr));
    let png = std::fs::read(&shot).expect("the screenshot was written");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000, "a real PNG, {} bytes", png.len());
}

/// Issue 12 (b): with every broker call failing, the page said "healthy" in green and counted
/// 0 critical. In Chromium now: the badge says `blind`, the problem is at the top, the unknown
/// rules are listed with why, and the broker-vs-bot table shows the bot's positions against an
/// unknown broker side.
#[test]
fn a_blind_daemons_status_page_says_blind_in_chromium() {
    let sim = Sim::start(&phantom_exit_scenario());
    let bot = BotDir::phantom_exit(&sim.url);
    let addr = format!("127.0.0.1:{}", free_port());
    let config = std::fs::read_to_string(bot.config())
        .unwrap()
        .replace("listen = \"127.0.0.1:9464\"", &format!("listen = {addr:?}"))
        .replace("every = \"30s\"", "every = \"1s\"");
    assert!(config.contains(&addr), "the example config changed shape");
    std::fs::write(bot.config(), config).unwrap();
    let _daemon = Daemon(
        bin()
            .arg("run")
            .arg("-c")
            .arg(bot.config())
            .env("APCA_API_KEY_ID", KEY_ID)
            .env("APCA_API_SECRET_KEY", SECRET)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("tradewarden run starts"),
    );
    let wait = |what: &str, cond: &dyn Fn() -> bool| {
        let end = Instant::now() + Duration::from_secs(30);
        while !cond() {
            assert!(Instant::now() < end, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    wait("the short", &|| get(&addr, "/api/status").unwrap_or_default().contains("short_position"));
    sim.faults(&serde_json::json!({"error_rate": 1.0}));
    wait("blind", &|| get(&addr, "/healthz").unwrap_or_default().starts_with("blind:"));

    let profile = tempfile::tempdir().unwrap();
    let url = format!("http://{addr}/");
    let dom = headless(profile.path(), &["--dump-dom".into(), url.clone()]);
    assert!(dom.status.success(), "chromium --dump-dom failed: {}", String::from_utf8_lossy(&dom.stderr));
    let html = String::from_utf8_lossy(&dom.stdout);
    let section = |id: &str| -> String {
        let start = html.find(&format!("<section id=\"{id}\"")).unwrap_or_else(|| panic!("no #{id} section:\n{html}"));
        let len = html[start..].find("</section>").unwrap();
        html[start..start + len].to_owned()
    };
    assert!(html.contains("data-state=\"blind\">blind</span>"), "the badge says blind:\n{html}");
    assert!(!html.contains(">healthy<") && !html.contains("the bot agrees with the broker"), "{html}");
    let problems = section("problems");
    assert!(problems.contains("no broker endpoint read for"), "{problems}");
    let unknown = section("unknown-rules");
    for rule in ["no-shorts", "positions-match", "order-hazards"] {
        assert!(unknown.contains(&format!("<td>{rule}</td>")), "`{rule}` listed as unknown:\n{unknown}");
    }
    assert!(unknown.contains("unavailable"), "with why:\n{unknown}");
    let table = section("reconciliation");
    assert!(table.contains("<th>broker qty</th>") && table.contains("<th>bot qty</th>"), "{table}");
    assert!(table.contains("<td>CHWY</td><td>?</td>"), "the bot's CHWY against an unknown broker side:\n{table}");
    assert!(html.contains("<rect class=\"blind\""), "blind cycles drawn as such in the chart");

    let artifacts = repo("tests/artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let shot = artifacts.join("status-page-blind.png");
    let _ = std::fs::remove_file(&shot);
    let out =
        headless(profile.path(), &["--window-size=1100,1800".into(), format!("--screenshot={}", shot.display()), url]);
    assert!(out.status.success(), "chromium --screenshot failed: {}", String::from_utf8_lossy(&out.stderr));
    let png = std::fs::read(&shot).expect("the screenshot was written");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000, "a real PNG, {} bytes", png.len());
}
