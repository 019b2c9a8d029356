//! Issue 12 "Trust" §4 through the real binary: text that servers send back never carries a
//! secret out (a broker proxy echoing the request headers, an SMTP server echoing AUTH), and a
//! broker body over `[broker] max_body` is `source_malformed`, read no further than the cap.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tradewarden::redact::base64;

use crate::support::{bin, run};
use crate::util::{files_under, free_port, venv_python};

/// Distinctive values, with `/`, `+`, `=` and `#` so percent-encoding and base64 differ from the
/// value; the key id is a secret too (Alpaca key ids are sensitive).
const KEY_ID: &str = "PKECHO7Q2LEAKME9";
const SECRET: &str = "sec-ECHO/x+Y9z=LEAK-4471";
const SMTP_USER: &str = "alerts-leak@example.test";
const SMTP_PASS: &str = "pw-ECHO#smtp-LEAK-8812";

/// Every form a secret can take in text: as is, base64 with and without padding (AUTH LOGIN),
/// percent-encoded, the AUTH PLAIN blob, and the first 12 characters (what a cut at a length
/// limit would leave).
fn forms() -> Vec<String> {
    let mut v = Vec::new();
    for s in [KEY_ID, SECRET, SMTP_USER, SMTP_PASS] {
        let b = base64(s.as_bytes());
        v.push(s.to_owned());
        v.push(b.trim_end_matches('=').to_owned());
        v.push(b);
        v.push(s.replace('/', "%2F").replace('+', "%2B").replace('=', "%3D").replace('#', "%23").replace('@', "%40"));
        v.push(s.chars().take(12).collect());
    }
    let plain = base64(format!("\0{SMTP_USER}\0{SMTP_PASS}").as_bytes());
    v.push(plain.trim_end_matches('=').to_owned());
    v.push(plain);
    v
}

fn assert_no_secret(what: &str, text: &str) {
    for f in forms() {
        assert!(!text.contains(&f), "{what} holds the secret form `{f}`:\n{text}");
    }
}

/// The request head (request line and headers) of one HTTP/1.1 request.
fn read_head(s: &TcpStream) -> String {
    let mut r = BufReader::new(s.try_clone().expect("clone the stream"));
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            return head;
        }
        head.push_str(&line);
    }
}

/// A loopback HTTP server answering each connection on its own thread; the base URL.
fn serve(respond: fn(&str, &mut TcpStream)) -> String {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr");
    std::thread::spawn(move || {
        for mut s in l.incoming().flatten() {
            std::thread::spawn(move || {
                let head = read_head(&s);
                respond(&head, &mut s);
            });
        }
    });
    format!("http://{addr}")
}

fn reply(s: &mut TcpStream, status: &str, content_type: &str, body: &str) {
    let _ = write!(
        s,
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

/// A misconfigured proxy in front of the broker: every error page echoes the request headers,
/// in every shape the client reads (Alpaca JSON, plain text, HTML, a 5xx retried, and one whose
/// secret straddles the client's 200-character cut).
fn echoing_proxy(head: &str, s: &mut TcpStream) {
    let path = head.split_whitespace().nth(1).unwrap_or("/").split('?').next().unwrap_or("/").to_owned();
    let json =
        |code: u64| serde_json::json!({ "code": code, "message": format!("denied; you sent:\n{head}") }).to_string();
    match path.as_str() {
        "/v2/account" => reply(s, "401 Unauthorized", "application/json", &json(40_110_000)),
        "/v2/positions" => reply(s, "502 Bad Gateway", "text/html", &format!("<h1>Bad gateway</h1><pre>{head}</pre>")),
        "/v2/orders" => reply(s, "403 Forbidden", "text/plain", head),
        "/v2/clock" => {
            let secret = head
                .lines()
                .find_map(|l| {
                    l.strip_prefix("apca-api-secret-key: ").or_else(|| l.strip_prefix("APCA-API-SECRET-KEY: "))
                })
                .unwrap_or("?")
                .trim()
                .to_owned();
            let label = "APCA-API-SECRET-KEY: ";
            let pad = "x".repeat(188 - label.len());
            reply(s, "404 Not Found", "text/plain", &format!("{pad}{label}{secret} (echoed)"));
        }
        _ => reply(s, "422 Unprocessable Entity", "application/json", &json(42_210_000)),
    }
}

/// aiosmtpd rejecting AUTH with a reply echoing the credentials (`tests/smtp/echo_auth_server.py`).
struct EchoSmtp {
    child: Child,
    port: u16,
}

impl EchoSmtp {
    fn start() -> Self {
        let port = free_port();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/smtp/echo_auth_server.py");
        let mut child = Command::new(venv_python())
            .arg("-u")
            .arg(script)
            .arg(port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the echoing SMTP server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("read READY");
        assert_eq!(line.trim(), "READY", "echo_auth_server.py did not start");
        Self { child, port }
    }
}

impl Drop for EchoSmtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn http_get(addr: &str, path: &str) -> String {
    let mut s = TcpStream::connect(addr).expect("connect to the status server");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut raw = String::new();
    let _ = s.read_to_string(&mut raw);
    raw
}

fn write_config(dir: &Path, name: &str, broker_url: &str, state: &str, extra: &str) -> std::path::PathBuf {
    std::fs::write(
        dir.join("rules.toml"),
        "[[rule]]\nid = \"no-shorts\"\ncheck = \"no_short_positions\"\nseverity = \"critical\"\n",
    )
    .unwrap();
    std::fs::create_dir_all(dir.join("bot")).unwrap();
    std::fs::write(dir.join("bot/state.json"), "{}").unwrap();
    let cfg = dir.join(name);
    std::fs::write(
        &cfg,
        format!(
            "state_dir = {state:?}\nrules = [\"rules.toml\"]\n\n[broker]\nbase_url = {broker_url:?}\ntimeout = \"5s\"\nmax_requests_per_minute = 100000\n\n\
             [bot]\nroot = \"bot\"\n\n[bot.positions]\nfile = \"state.json\"\n\n[schedule]\nevery = \"1s\"\n\n{extra}"
        ),
    )
    .unwrap();
    cfg
}

fn with_secrets(mut c: Command) -> Command {
    c.env("APCA_API_KEY_ID", KEY_ID)
        .env("APCA_API_SECRET_KEY", SECRET)
        .env("TW_SMTP_USER", SMTP_USER)
        .env("TW_SMTP_PASS", SMTP_PASS)
        .env("RUST_LOG", "debug");
    c
}

fn grep_dir(dir: &Path, needle: &str) -> bool {
    files_under(dir).iter().any(|f| std::fs::read(f).is_ok_and(|b| String::from_utf8_lossy(&b).contains(needle)))
}

/// A proxy in front of the broker echoes the key headers in every error body, and the SMTP
/// relay answers AUTH with `535` echoing the credentials (AUTH PLAIN blob, login, password,
/// their base64): no form of any secret reaches stdout, stderr, any file under the state
/// directories (reports, alerts, outbox, audit log, the .eml), `/api/status` or the status page.
#[test]
fn a_proxy_echoing_the_key_headers_and_an_smtp_535_echoing_auth_leak_no_secret_anywhere() {
    let broker = serve(echoing_proxy);
    let smtp = EchoSmtp::start();
    let dir = tempfile::tempdir().unwrap();
    let listen = format!("127.0.0.1:{}", free_port());
    let smtp_table = format!(
        "[alerts]\nsource_for = \"0s\"\n\n[alerts.email]\ntransport = \"smtp\"\nhost = \"127.0.0.1\"\nport = {}\n\
         tls = \"none\"\nusername_env = \"TW_SMTP_USER\"\npassword_env = \"TW_SMTP_PASS\"\n\
         from = \"tradewarden@example.com\"\nto = [\"ops@example.com\"]\n\n[server]\nlisten = {listen:?}\n",
        smtp.port
    );
    let cfg_smtp = write_config(dir.path(), "smtp.toml", &broker, "state-smtp", &smtp_table);
    let file_table =
        "[alerts]\nsource_for = \"0s\"\n\n[alerts.email]\ntransport = \"file\"\n\n[server]\nlisten = \"\"\n";
    let cfg_file = write_config(dir.path(), "file.toml", &broker, "state-file", file_table);

    // `audit`: the report on stdout, text and JSON.
    let mut outputs: Vec<(String, String)> = Vec::new();
    for format in ["text", "json"] {
        let (code, out, err) =
            run(with_secrets(bin()).args(["audit", "--format", format, "-c"]).arg(&cfg_file).current_dir(dir.path()));
        assert_ne!(code, 0, "the broker failed: {out}{err}");
        assert!(out.contains("[redacted]"), "the echoed headers reached the report, redacted:\n{out}");
        outputs.push((format!("audit --format {format} stdout"), out));
        outputs.push((format!("audit --format {format} stderr"), err));
    }

    // `run` with the file transport: alerts, last_report.json, the .eml.
    let (code, out, err) =
        run(with_secrets(bin()).args(["run", "--max-cycles", "2", "-c"]).arg(&cfg_file).current_dir(dir.path()));
    assert!(code == 0 || code == 1, "{out}{err}");
    outputs.push(("run (file) stdout".into(), out));
    outputs.push(("run (file) stderr".into(), err));
    let mail = dir.path().join("state-file/mail");
    let eml: Vec<_> = files_under(&mail).into_iter().filter(|p| p.extension().is_some_and(|e| e == "eml")).collect();
    assert!(!eml.is_empty(), "an alert email was written to {}", mail.display());
    assert!(eml.iter().any(|p| std::fs::read_to_string(p).unwrap().contains("redacted")), "the .eml shows the error");

    // `run` with the echoing SMTP relay and the status server.
    let log = dir.path().join("run-smtp.log");
    let mut c = with_secrets(bin());
    c.args(["run", "-c"])
        .arg(&cfg_smtp)
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(dir.path().join("run-smtp.out")).unwrap())
        .stderr(std::fs::File::create(&log).unwrap());
    let mut child = c.spawn().expect("run starts");
    let state = dir.path().join("state-smtp");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !grep_dir(&state, "535") {
        assert!(Instant::now() < deadline, "no SMTP attempt recorded:\n{}", std::fs::read_to_string(&log).unwrap());
        assert!(child.try_wait().unwrap().is_none(), "run exited:\n{}", std::fs::read_to_string(&log).unwrap());
        std::thread::sleep(Duration::from_millis(200));
    }
    let status = http_get(&listen, "/api/status");
    let page = http_get(&listen, "/");
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let end = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(status.contains("[redacted]"), "the status API serves the redacted broker errors:\n{status}");
    assert!(page.contains("redacted"), "the status page shows the redacted broker errors");
    outputs.push(("/api/status".into(), status));
    outputs.push(("the status page".into(), page));

    for (what, text) in &outputs {
        assert_no_secret(what, text);
    }
    // Every file: both state directories (reports, alerts, outbox, audits.jsonl, .eml) and the
    // daemon's stdout and stderr.
    for f in files_under(dir.path()) {
        let text = String::from_utf8_lossy(&std::fs::read(&f).unwrap()).into_owned();
        assert_no_secret(&f.display().to_string(), &text);
    }
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(log.contains("535"), "the relay's reply was logged (redacted):\n{log}");
}

/// Answers every request with 200 and a 64 MiB chunked body (no Content-Length), 64 KiB at a
/// time, until the client hangs up.
fn huge_body(_head: &str, s: &mut TcpStream) {
    if s.write_all(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
    )
    .is_err()
    {
        return;
    }
    let chunk = vec![b' '; 64 << 10];
    for _ in 0..1024 {
        if write!(s, "{:x}\r\n", chunk.len())
            .and_then(|()| s.write_all(&chunk))
            .and_then(|()| s.write_all(b"\r\n"))
            .is_err()
        {
            return;
        }
    }
    let _ = s.write_all(b"0\r\n\r\n");
}

/// The peak RSS (KiB) of one run of the binary, measured by the kernel, with its exit code and
/// stdout.
fn peak_rss(args: &[&str], cwd: &Path) -> (i32, String, u64) {
    let script = "import resource, subprocess, sys\n\
                  r = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)\n\
                  sys.stderr.write('%d %d\\n' % (r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))\n\
                  sys.stdout.buffer.write(r.stdout)\n";
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(env!("CARGO_BIN_EXE_tradewarden"))
        .args(args)
        .current_dir(cwd)
        .env_remove("TRADEWARDEN_CONFIG")
        .env("APCA_API_KEY_ID", KEY_ID)
        .env("APCA_API_SECRET_KEY", SECRET)
        .output()
        .expect("python3 runs");
    let err = String::from_utf8_lossy(&out.stderr);
    let mut it = err.split_whitespace().map(|w| w.parse::<i64>().unwrap());
    let (code, kib) = (it.next().unwrap(), it.next().unwrap());
    (i32::try_from(code).unwrap(), String::from_utf8_lossy(&out.stdout).into_owned(), u64::try_from(kib).unwrap())
}

/// A broker (or a proxy) sending a 64 MiB body on every endpoint: with `max_body = "1MiB"`
/// each broker source is `source_malformed` naming the endpoint and the cap, and the process
/// never holds the bodies (five concurrent 64 MiB bodies would be 320 MiB; the cap keeps the
/// whole audit under 64 MiB).
#[test]
fn a_broker_body_over_max_body_is_source_malformed_naming_the_endpoint_and_the_cap() {
    let broker = serve(huge_body);
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "tradewarden.toml", &broker, "state", "");
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("timeout = \"5s\"\n", "timeout = \"30s\"\nmax_body = \"1MiB\"\n");
    std::fs::write(&cfg, text).unwrap();
    let cfg_s = cfg.display().to_string();
    let (code, out, kib) = peak_rss(&["audit", "--format", "json", "-c", &cfg_s], dir.path());
    assert_eq!(code, 1, "{out}");
    let report: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let findings = report["findings"].as_array().expect("findings");
    for (name, route) in [
        ("broker:account", "GET /v2/account"),
        ("broker:positions", "GET /v2/positions"),
        ("broker:orders", "GET /v2/orders"),
        ("broker:clock", "GET /v2/clock"),
        ("broker:configurations", "GET /v2/account/configurations"),
    ] {
        let f = findings.iter().find(|f| f["subject"] == name).unwrap_or_else(|| panic!("no {name} in {report:#}"));
        assert_eq!(f["code"], "source_malformed", "{f:#}");
        let m = f["message"].as_str().unwrap();
        assert!(m.starts_with(route) && m.contains("larger than [broker] max_body (1048576 bytes)"), "{m}");
    }
    let broker_source = report["sources"].as_array().unwrap().iter().find(|s| s["name"] == "broker").unwrap();
    assert_eq!(broker_source["status"], "malformed", "{broker_source:#}");
    let rule = &report["rules"][0];
    assert_eq!(rule["outcome"], "unknown", "no verdict from a body that was not read: {rule:#}");
    assert!(kib < 64 * 1024, "peak RSS {kib} KiB: the bodies were buffered past the cap");
}

/// `max_body` is validated: out of range or not a size is a located problem, exit 2.
#[test]
fn max_body_out_of_range_or_not_a_size_is_a_located_problem() {
    for (value, says) in [
        ("\"10B\"", "outside the accepted range"),
        ("\"2GiB\"", "outside the accepted range"),
        ("\"lots\"", "is not a size"),
        ("-5", "is not a number of bytes"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let cfg = write_config(dir.path(), "tradewarden.toml", "http://127.0.0.1:9", "state", "");
        let text = std::fs::read_to_string(&cfg)
            .unwrap()
            .replace("timeout = \"5s\"\n", &format!("timeout = \"5s\"\nmax_body = {value}\n"));
        std::fs::write(&cfg, text).unwrap();
        let (code, out, err) = run(bin().args(["rules", "check", "-c"]).arg(&cfg));
        assert_eq!(code, 2, "{value}: {out}{err}");
        let at = format!("{}:7:12: `max_body` in [broker]", cfg.display());
        assert!(err.lines().any(|l| l.starts_with(&at) && l.contains(says)), "{value}: {err}");
    }
}

/// review2: a broker (or proxy) that answers only `GET /v2/clock`; account, positions and
/// orders fail (500).
fn clock_only(head: &str, s: &mut TcpStream) {
    let path = head.split_whitespace().nth(1).unwrap_or("/").split('?').next().unwrap_or("/").to_owned();
    if path == "/v2/clock" {
        let body = r#"{"timestamp":"2026-12-06T03:00:00Z","is_open":true,"next_open":"2026-12-07T14:30:00Z","next_close":"2026-12-06T21:00:00Z"}"#;
        reply(s, "200 OK", "application/json", body);
    } else {
        reply(s, "500 Internal Server Error", "application/json", r#"{"code":50010000,"message":"internal"}"#);
    }
}

/// review2: the watchdog cannot read the account, the positions or the open orders (every rule
/// is unknown and the heartbeat stops, `rule_reads_ok`), but the clock answers: `/healthz` must
/// say blind after `blind_after` (2 cycles), as it does when the clock fails too.
#[test]
fn account_positions_and_orders_failing_while_the_clock_answers_is_blind_on_healthz() {
    let broker = serve(clock_only);
    let dir = tempfile::tempdir().unwrap();
    let listen = format!("127.0.0.1:{}", free_port());
    let cfg = write_config(
        dir.path(),
        "tw.toml",
        &broker,
        "state",
        &format!("[alerts.email]\ntransport = \"file\"\n\n[server]\nlisten = {listen:?}\n"),
    );
    let mut child = with_secrets(bin())
        .args(["run", "--max-cycles", "8", "-c"])
        .arg(&cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until at least three cycles are done (every 1s; each failing read is retried).
    let start = Instant::now();
    let mut health = String::new();
    let mut metrics = String::new();
    while start.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(500));
        let m = http_get(&listen, "/metrics");
        let cycles = m
            .lines()
            .find_map(|l| l.strip_prefix("tradewarden_cycles_total "))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(0.0);
        if cycles >= 3.0 {
            health = http_get(&listen, "/healthz");
            metrics = m;
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(!health.is_empty(), "three cycles never completed");
    assert!(health.starts_with("HTTP/1.1 503"), "blind for 3 cycles but /healthz says:\n{health}");
    assert!(metrics.contains("\ntradewarden_blind 1\n"), "{metrics}");
    assert!(
        health.contains("blind:") && health.contains("broker:positions"),
        "the reason names the failed reads:\n{health}"
    );
}
