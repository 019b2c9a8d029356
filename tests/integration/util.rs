//! Shared test helpers: a real SMTP server (aiosmtpd) on a free loopback port, config files in
//! a temp dir, and the real binary.

#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The Python of the test venv (`./scripts/test-env.sh` creates it).
pub fn venv_python() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    assert!(p.is_file(), "{} is missing: run ./scripts/test-env.sh first", p.display());
    p
}

/// A loopback port nobody listens on (bound, then released).
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

/// aiosmtpd with the Mailbox handler: every accepted message lands in `DIR/new/`. Killed on drop.
pub struct SmtpServer {
    child: Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
    dir: tempfile::TempDir,
}

impl SmtpServer {
    /// Starts a server on a free port.
    pub fn start() -> Self {
        Self::start_on(free_port())
    }

    /// Starts a server on `port` and waits until it accepts connections.
    pub fn start_on(port: u16) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let maildir = dir.path().join("maildir");
        let child = Command::new(venv_python())
            .args(["-u", "-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}"), "-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&maildir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start aiosmtpd");
        let mut server = Self { child, port, dir };
        server.wait_ready();
        server
    }

    fn wait_ready(&mut self) {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("aiosmtpd exited early ({status}) on port {}", self.port);
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("aiosmtpd did not accept connections on port {} within 20 s", self.port);
    }

    /// Every message received so far (raw text as the Mailbox wrote it), oldest first.
    pub fn messages(&self) -> Vec<String> {
        let new = self.dir.path().join("maildir/new");
        let Ok(entries) = std::fs::read_dir(&new) else { return Vec::new() };
        let mut files: Vec<(std::time::SystemTime, PathBuf)> = entries
            .flatten()
            .map(|e| (e.metadata().and_then(|m| m.modified()).unwrap_or(std::time::UNIX_EPOCH), e.path()))
            .collect();
        files.sort();
        files.into_iter().map(|(_, p)| std::fs::read_to_string(p).expect("read message")).collect()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// aiosmtpd requiring TLS (STARTTLS, or implicit TLS) and AUTH, with a certificate for
/// 127.0.0.1 from a throwaway CA (`tests/smtp/tls_server.py`). Killed on drop.
pub struct TlsSmtpServer {
    child: Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
    dir: tempfile::TempDir,
}

/// The account the TLS server accepts.
pub const SMTP_USER: &str = "alice@example.com";
/// Its password: distinctive, so a test can search every output for it.
pub const SMTP_PASS: &str = "pw-Zq8#smtp-secret-4471";

impl TlsSmtpServer {
    /// `mode`: "starttls" or "tls".
    pub fn start(mode: &str) -> Self {
        use std::io::BufRead;
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/smtp/tls_server.py");
        let mut child = Command::new(venv_python())
            .arg("-u")
            .arg(script)
            .args([mode, &port.to_string()])
            .arg(dir.path().join("maildir"))
            .arg(dir.path().join("ca.pem"))
            .env("SMTP_USER", SMTP_USER)
            .env("SMTP_PASS", SMTP_PASS)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the TLS SMTP server");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("read READY");
        assert_eq!(line.trim(), "READY", "tls_server.py did not start");
        Self { child, port, dir }
    }

    /// The CA certificate (PEM) that signed the server's certificate.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// Every message received so far.
    pub fn messages(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.dir.path().join("maildir/new")) else { return Vec::new() };
        entries.flatten().map(|e| std::fs::read_to_string(e.path()).expect("read message")).collect()
    }
}

impl Drop for TlsSmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every entry under `dir`, recursively: files, folders and symlinks (a symlinked folder is
/// listed, not entered, so a link out of a test directory is never followed). A folder that
/// cannot be read adds nothing.
pub fn entries_under(dir: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return v };
    for e in entries.flatten() {
        let p = e.path();
        let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
        v.push(p.clone());
        if is_dir {
            v.extend(entries_under(&p));
        }
    }
    v
}

/// The entries under `dir` that are not folders (files, and symlinks to files).
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    entries_under(dir).into_iter().filter(|p| !std::fs::symlink_metadata(p).is_ok_and(|m| m.is_dir())).collect()
}

/// The header block of a raw message, unfolded, one header per entry.
pub fn headers(raw: &str) -> Vec<String> {
    let raw = raw.replace("\r\n", "\n");
    let head = raw.split("\n\n").next().unwrap_or_default();
    head.replace("\n ", " ").replace("\n\t", " ").lines().map(str::to_owned).collect()
}

/// The value of the first header with this name (case-insensitive).
pub fn header(raw: &str, name: &str) -> Option<String> {
    let prefix = format!("{}:", name.to_ascii_lowercase());
    headers(raw)
        .into_iter()
        .find(|h| h.to_ascii_lowercase().starts_with(&prefix))
        .map(|h| h[prefix.len()..].trim().to_owned())
}

/// A minimal configuration (one `no_short_positions` rule) in a temp dir, with `extra` appended
/// (for instance an `[alerts.email]` table). Returns the dir and the config path.
pub fn config_dir(extra: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("rules.toml"),
        "[[rule]]\nid = \"no-shorts\"\ncheck = \"no_short_positions\"\nseverity = \"critical\"\n",
    )
    .expect("write rules");
    let cfg = dir.path().join("tradewarden.toml");
    std::fs::write(
        &cfg,
        format!("state_dir = \"state\"\nrules = [\"rules.toml\"]\n\n[bot]\nroot = \"bot\"\n\n[bot.positions]\nfile = \"x.json\"\n\n{extra}"),
    )
    .expect("write config");
    (dir, cfg)
}

/// `[alerts.email]` for a plain-text SMTP server on loopback.
pub fn smtp_email_table(port: u16) -> String {
    format!(
        "[alerts.email]\ntransport = \"smtp\"\nhost = \"127.0.0.1\"\nport = {port}\ntls = \"none\"\n\
         from = \"tradewarden@example.com\"\nto = [\"ops@example.com\"]\n"
    )
}

/// Runs the real binary with these arguments (no config from the environment).
pub fn tradewarden(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tradewarden"))
        .args(args)
        .env_remove("TRADEWARDEN_CONFIG")
        .env("RUST_LOG", "warn")
        .output()
        .expect("run tradewarden")
}

/// stdout and stderr, for assertion messages.
pub fn show(o: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}
