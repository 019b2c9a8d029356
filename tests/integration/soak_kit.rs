//! What the fault soak (`soak.rs`) and the crash tests (`crash.rs`) share: a healthy bot beside
//! the simulator, `tradewarden run` as a killable process, readers for every state file that
//! fail loudly on anything unparseable, the size knobs of the long forms, and the figures they
//! report.
//!
//! Size knobs (read from the environment, so `scripts/soak.sh` runs the same tests longer):
//! `TRADEWARDEN_SOAK_CYCLES`, `TRADEWARDEN_SOAK_EVERY`, `TRADEWARDEN_CRASH_RUNS`,
//! `TRADEWARDEN_SEED`. Figures go to stderr (`--nocapture` shows them) and, when
//! `TRADEWARDEN_FIGURES` names a file, are appended to it as one JSON line per test.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Value, json};
use tradewarden::act::journal::Record;
use tradewarden::alert::AlertBook;
use tradewarden::notify::OutboxMessage;
use tradewarden::report::{CycleRecord, Report};

use crate::simulator::{KEY_ID, SECRET};
use crate::support::{bin, repo};

/// A number from the environment, or `default`.
pub(crate) fn knob(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok()).unwrap_or(default)
}

/// A string from the environment, or `default`.
pub(crate) fn knob_str(name: &str, default: &str) -> String {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty()).unwrap_or_else(|| default.to_owned())
}

/// The RNG seed of a test: `TRADEWARDEN_SEED`, else `default` (a fixed seed: the bounded
/// forms are reproducible).
pub(crate) fn seed(default: u64) -> u64 {
    knob("TRADEWARDEN_SEED", default)
}

/// Prints a test's figures and appends them to `$TRADEWARDEN_FIGURES` (one JSON line).
pub(crate) fn report_figures(test: &str, figures: &Value) {
    let line = json!({ "test": test, "figures": figures });
    eprintln!("FIGURES {line}");
    if let Ok(path) = std::env::var("TRADEWARDEN_FIGURES") {
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&path).unwrap();
        writeln!(f, "{line}").unwrap();
    }
}

/// The bot's tracked positions: AAPL 10 and MSFT 5, as the healthy scenario holds them.
const BOT_STATE: &str = r#"{
  "opens": {
    "AAPL": { "qty": 10, "entry_price": 187.25 },
    "MSFT": { "qty": 5, "entry_price": "412.30" }
  }
}
"#;

const BOT_METADATA: &str = r#"{
  "AAPL": { "entry_score": 0.82, "entry_ts": "2026-01-05T14:30:00+00:00", "components": { "rsi": 0.4 } },
  "MSFT": { "entry_score": "0.81", "entry_ts": "2026-01-05T14:31:00+00:00", "components": { "rsi": 0.3 } }
}
"#;

/// A broker that agrees with the bot: AAPL 10 and MSFT 5 at the bot's entry prices, no open
/// order, market open, the `no_shorting` guard on.
pub(crate) fn healthy_scenario() -> Value {
    json!({
        "account": { "cash": "100000" },
        "positions": [
            { "symbol": "AAPL", "qty": "10", "avg_entry_price": "187.25" },
            { "symbol": "MSFT", "qty": "5", "avg_entry_price": "412.30" }
        ],
        "prices": { "AAPL": "190.10", "MSFT": "415.00", "CHWY": "40.00" },
        "clock": { "is_open": true },
        "configurations": { "no_shorting": true, "suspend_trade": false },
        "auth": { "key_id": KEY_ID, "secret_key": SECRET }
    })
}

/// The default rule pack (`rules/default.toml`), with the actions the brief asks for
/// (`flatten_shorts`, `cancel_hazard_orders`, and `enforce_no_shorting` on the account rule)
/// and the two log windows widened to a day, so a soak of hours never sees the bot's logs
/// (written once, before it starts) go stale.
pub(crate) fn default_like_rules() -> String {
    let pack = std::fs::read_to_string(repo("rules/default.toml")).unwrap();
    let rules = pack
        .replace("max_age = \"5m\"", "max_age = \"24h\"")
        .replace("within = \"1h\"", "within = \"24h\"")
        .replace("expect_no_shorting = true", "expect_no_shorting = true\nactions = [\"enforce_no_shorting\"]");
    for want in ["actions = [\"flatten_shorts\"]", "actions = [\"cancel_hazard_orders\"]", "max_age = \"24h\""] {
        assert!(rules.contains(want), "rules/default.toml changed shape: no `{want}`");
    }
    rules
}

/// A bot directory with fresh logs and a `tradewarden.toml` for `tradewarden run` against the
/// simulator at `url`.
pub(crate) struct SoakBot {
    /// The tempdir: `bot/`, `rules.toml`, `tradewarden.toml`, `state/`.
    pub(crate) dir: tempfile::TempDir,
}

impl SoakBot {
    /// `rules`: the rule file's text; `tail`: everything after `[bot]` and the logs
    /// (`[schedule]`, `[alerts]`, `[actions]`, ...). The broker timeout is `timeout`.
    pub(crate) fn new(url: &str, timeout: &str, rules: &str, tail: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let bot = dir.path().join("bot");
        std::fs::create_dir_all(bot.join("state")).unwrap();
        std::fs::create_dir_all(bot.join("logs")).unwrap();
        let now = chrono::Utc::now();
        let mut run = String::new();
        let mut exits = String::new();
        for i in (0..5).rev() {
            let ts = (now - chrono::Duration::seconds(30 * i)).to_rfc3339();
            run += &format!("{}\n", json!({ "ts": ts, "event": "CYCLE", "positions": 2 }));
            exits += &format!("{}\n", json!({ "ts": ts, "event": "EXIT_EVAL", "symbol": "AAPL", "decision": "hold" }));
        }
        std::fs::write(bot.join("logs/run.jsonl"), run).unwrap();
        std::fs::write(bot.join("logs/exits.jsonl"), exits).unwrap();
        std::fs::write(dir.path().join("rules.toml"), rules).unwrap();
        let config = format!(
            r#"state_dir = "state"
rules = ["rules.toml"]

[broker]
kind = "alpaca"
base_url = "{url}"
timeout = "{timeout}"
max_requests_per_minute = 100000

[bot]
root = "bot"
long_only = true

[bot.positions]
file = "state/executor_state.json"
at = "/opens"
qty = "qty"
entry_price = "entry_price"

[bot.metadata]
file = "state/position_metadata.json"
at = ""

[logs.run]
file = "logs/run.jsonl"
time = "ts"

[logs.exits]
file = "logs/exits.jsonl"
time = "ts"

[server]
listen = ""

{tail}
"#
        );
        std::fs::write(dir.path().join("tradewarden.toml"), config).unwrap();
        let me = Self { dir };
        me.reset_bot_state();
        me
    }

    /// Writes the bot's state and metadata files as the bot keeps them (AAPL and MSFT).
    pub(crate) fn reset_bot_state(&self) {
        let state = self.dir.path().join("bot/state");
        std::fs::write(state.join("executor_state.json"), BOT_STATE).unwrap();
        std::fs::write(state.join("position_metadata.json"), BOT_METADATA).unwrap();
    }

    pub(crate) fn config(&self) -> PathBuf {
        self.dir.path().join("tradewarden.toml")
    }

    pub(crate) fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// Every file under `bot/`: (relative path) → (content, modification time).
    pub(crate) fn bot_files(&self) -> BTreeMap<String, (Vec<u8>, SystemTime)> {
        let mut out = BTreeMap::new();
        for p in crate::util::files_under(&self.dir.path().join("bot")) {
            let rel = p.strip_prefix(self.dir.path()).unwrap().display().to_string();
            let modified = std::fs::metadata(&p).unwrap().modified().unwrap();
            out.insert(rel, (std::fs::read(&p).unwrap(), modified));
        }
        out
    }
}

/// `tradewarden run` as a child process with the test key pair; killed on drop. Its stderr goes
/// to a file beside the configuration, shown when something goes wrong.
pub(crate) struct Daemon {
    pub(crate) child: Child,
    /// Its stderr.
    pub(crate) log: PathBuf,
}

impl Daemon {
    pub(crate) fn start(config: &Path, args: &[&str], env: &[(&str, &str)]) -> Self {
        let dir = config.parent().unwrap();
        let n = std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("run-"))
            .count();
        let log = dir.join(format!("run-{n}.log"));
        let mut cmd = bin();
        cmd.arg("run").arg("-c").arg(config).args(args);
        cmd.env("APCA_API_KEY_ID", KEY_ID).env("APCA_API_SECRET_KEY", SECRET).env("RUST_LOG", "warn");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("tradewarden run starts");
        Self { child, log }
    }

    pub(crate) fn stderr(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        // The tail is what matters; a soak's log can be long.
        let start = text.len().saturating_sub(8000);
        let start = (start..text.len()).find(|i| text.is_char_boundary(*i)).unwrap_or(text.len());
        text[start..].to_owned()
    }

    /// SIGKILL, and reap.
    pub(crate) fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Whether it has exited.
    pub(crate) fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().unwrap()
    }

    /// Waits for the exit, up to `limit` (then panics with the log).
    pub(crate) fn wait(&mut self, limit: Duration) -> ExitStatus {
        let end = Instant::now() + limit;
        while Instant::now() < end {
            if let Some(s) = self.exited() {
                return s;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill9();
        panic!("tradewarden run did not exit within {limit:?}\n{}", self.stderr());
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Every line of a JSONL file parsed as `T`, and the number of lines that are not a record:
/// lines cut short by a crash (the writer starts the next record on a fresh line, and readers
/// skip them). Anything else that does not parse (a line that is not a prefix of a JSON object,
/// or not UTF-8) panics.
pub(crate) fn jsonl<T: serde::de::DeserializeOwned>(path: &Path) -> (Vec<T>, usize) {
    let Ok(bytes) = std::fs::read(path) else { return (Vec::new(), 0) };
    let text = String::from_utf8_lossy(&bytes);
    let mut out = Vec::new();
    let mut torn = 0;
    for (i, line) in text.split_terminator('\n').enumerate() {
        match serde_json::from_str::<T>(line) {
            Ok(r) => out.push(r),
            Err(e) if e.is_eof() && line.starts_with('{') => torn += 1,
            Err(e) => panic!("{} line {}: {e}\n{line}", path.display(), i + 1),
        }
    }
    (out, torn)
}

/// The cycle records of `audits.jsonl` (and its rotated predecessor), oldest first.
pub(crate) fn audits(state: &Path) -> Vec<CycleRecord> {
    let (mut old, _) = jsonl::<CycleRecord>(&state.join("audits.jsonl.1"));
    let (new, _) = jsonl::<CycleRecord>(&state.join("audits.jsonl"));
    old.extend(new);
    old
}

/// The action journal's records (torn lines skipped, as `Journal::read` does) and the number
/// of torn lines.
pub(crate) fn journal(state: &Path) -> (Vec<Record>, usize) {
    jsonl::<Record>(&state.join("actions.jsonl"))
}

/// What a crash left in a state directory, every file parsed with the daemon's own types.
#[derive(Debug, Default)]
pub(crate) struct StateFiles {
    pub(crate) alerts: Option<AlertBook>,
    pub(crate) outbox: Vec<OutboxMessage>,
    pub(crate) records: Vec<CycleRecord>,
    pub(crate) journal: Vec<Record>,
    /// State files parsed (each outbox message, each JSON file, each JSONL file once).
    pub(crate) files_checked: usize,
    /// Lines cut short by a crash (journal, audits).
    pub(crate) torn_lines: usize,
    /// Temp files of interrupted atomic writes (`.tmp-*`), harmless but counted.
    pub(crate) temp_files: usize,
}

/// Parses every state file; panics, naming the file, on anything unparseable (but a JSONL line
/// cut short by a crash, counted) or on a corrupt file moved aside (`*.corrupt-*`: the daemon
/// found one).
pub(crate) fn check_state_files(state: &Path) -> StateFiles {
    let mut s = StateFiles::default();
    let read = |name: &str| std::fs::read(state.join(name)).ok();
    if let Some(b) = read("alerts.json") {
        s.alerts = Some(serde_json::from_slice(&b).unwrap_or_else(|e| panic!("alerts.json: {e}")));
        s.files_checked += 1;
    }
    if let Some(b) = read("silences.json") {
        let _: Value = serde_json::from_slice(&b).unwrap_or_else(|e| panic!("silences.json: {e}"));
        s.files_checked += 1;
    }
    if let Some(b) = read("last_report.json") {
        let _: Report = serde_json::from_slice(&b).unwrap_or_else(|e| panic!("last_report.json: {e}"));
        s.files_checked += 1;
    }
    if let Ok(entries) = std::fs::read_dir(state.join("outbox")) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with(".tmp-") {
                s.temp_files += 1;
                continue;
            }
            let b = std::fs::read(e.path()).unwrap();
            let m: OutboxMessage = serde_json::from_slice(&b).unwrap_or_else(|e| panic!("outbox/{name}: {e}"));
            assert_eq!(format!("{}.json", m.id), name, "an outbox file is named after its message");
            s.outbox.push(m);
            s.files_checked += 1;
        }
    }
    let (journal, torn) = journal(state);
    s.journal = journal;
    s.torn_lines += torn;
    let (_, torn) = jsonl::<CycleRecord>(&state.join("audits.jsonl"));
    s.torn_lines += torn;
    s.records = audits(state);
    s.files_checked += 2;
    for p in crate::util::files_under(state) {
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        assert!(!name.contains(".corrupt-"), "the daemon found a corrupt state file: {}", p.display());
        if name.starts_with(".tmp-") && (p.parent() == Some(state) || p.parent() == Some(&state.join("backups"))) {
            s.temp_files += 1;
        }
    }
    s
}
