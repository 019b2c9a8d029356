//! Configuration: `tradewarden.toml` and the rule files it names, read into validated runtime
//! types. Loading reports every problem at once, each with file, line and column.

pub mod cleartext;
mod problem;
pub mod reader;
pub mod rule;
pub mod schedule;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Durations moved to a leaf (`crate::duration`); this path stays for the stages that name it.
pub use crate::duration;
pub use problem::{ConfigError, Problem};
use reader::{Problems, SourceText, TableReader, parse_document};
pub use rule::{ActionKind, CheckKinds, Hold, Rule, RuleContext, When};
pub use schedule::Schedule;

use crate::model::{FieldRef, LogQuery, check_pointer};

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The configuration file.
    pub path: PathBuf,
    /// Its folder: relative paths resolve against it.
    pub dir: PathBuf,
    /// The watchdog's own data.
    pub state_dir: PathBuf,
    /// The rule files, resolved.
    pub rule_files: Vec<PathBuf>,
    /// Every rule, in file order.
    pub rules: Vec<Rule>,
    /// `[broker]`.
    pub broker: BrokerConfig,
    /// `[bot]`.
    pub bot: BotConfig,
    /// `[logs.NAME]`, by name.
    pub logs: BTreeMap<String, LogConfig>,
    /// `[schedule]`.
    pub schedule: Schedule,
    /// `[alerts]`.
    pub alerts: AlertsConfig,
    /// `[actions]`.
    pub actions: ActionsConfig,
    /// `[server]`.
    pub server: ServerConfig,
}

/// Which broker to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrokerKind {
    /// The Alpaca REST API.
    Alpaca,
    /// A recorded snapshot directory.
    Replay,
}

/// `[broker]`.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// Alpaca or replay.
    pub kind: BrokerKind,
    /// The REST base URL; `None` means `APCA_API_BASE_URL`, else paper.
    pub base_url: Option<String>,
    /// Per-request timeout.
    pub timeout: Duration,
    /// The snapshot directory for `kind = "replay"` (or `--replay DIR`).
    pub replay_dir: Option<PathBuf>,
    /// The largest response body read from the broker, in bytes; a longer one is
    /// `source_malformed` and is not read further.
    pub max_body: u64,
}

/// `[broker] max_body` by default: 8 MiB. A full page of 500 orders is under 1 MiB.
pub const DEFAULT_MAX_BODY: u64 = 8 << 20;
/// The smallest `max_body` accepted: 64 KiB (an account body is ~2 KiB, a position ~1 KiB).
pub const MIN_MAX_BODY: u64 = 64 << 10;
/// The largest `max_body` accepted: 1 GiB.
pub const MAX_MAX_BODY: u64 = 1 << 30;

/// Where the bot keeps a view: a JSON file under the bot root, or the last record of a log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BotSource {
    /// A JSON file, relative to the bot root.
    File(PathBuf),
    /// The last record of the named `[logs.NAME]`.
    Log(String),
}

/// `[bot.positions]`: how to read the positions the bot tracks.
#[derive(Debug, Clone)]
pub struct PositionsMapping {
    /// File or log.
    pub source: BotSource,
    /// JSON pointer to an object keyed by symbol, or to an array.
    pub at: String,
    /// Array form: the field naming the symbol.
    pub symbol: FieldRef,
    /// The quantity field.
    pub qty: FieldRef,
    /// The entry-price field, if the bot keeps one.
    pub entry_price: Option<FieldRef>,
    /// The side field; else the sign of qty.
    pub side: Option<FieldRef>,
}

/// `[bot.metadata]`: per-position metadata keyed by symbol.
#[derive(Debug, Clone)]
pub struct MetadataMapping {
    /// File or log.
    pub source: BotSource,
    /// JSON pointer to the object keyed by symbol (`""` = the root).
    pub at: String,
}

/// `[bot]`.
#[derive(Debug, Clone)]
pub struct BotConfig {
    /// The base of every bot path.
    pub root: PathBuf,
    /// The bot never means to hold a short.
    pub long_only: bool,
    /// Its positions.
    pub positions: PositionsMapping,
    /// Its metadata, if any.
    pub metadata: Option<MetadataMapping>,
}

/// `[logs.NAME]`.
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// The JSONL file, relative to the bot root.
    pub file: PathBuf,
    /// The event-time field.
    pub time: FieldRef,
}

/// `[alerts]`.
#[derive(Debug, Clone)]
pub struct AlertsConfig {
    /// Re-notify a firing alert this often.
    pub repeat: Duration,
    /// Send a notice when an alert resolves.
    pub send_resolved: bool,
    /// How long resolved alerts are kept in state.
    pub resolved_retention: Duration,
    /// The `for` of source alerts (`source/broker:positions`, `source/log:run`, ...): a source
    /// must fail this long, or in this many consecutive cycles, before its alert fires. Reads
    /// already retry within a cycle, so one failed cycle is a real failure, but a broker that
    /// fails one cycle in ten must not email twice every ten cycles. The rules that need the
    /// source are unknown (and hold their alerts) from the first failed cycle regardless.
    pub source_for: Hold,
    /// Requested after every successful cycle (a dead-man switch for the watchdog).
    pub heartbeat_url: Option<String>,
    /// When email has been undeliverable this long (a message owed, every attempt failed, no
    /// delivery since), the heartbeat reports failure instead of health: a watchdog whose
    /// notices reach no one is not watching for anyone.
    pub undeliverable_after: Duration,
    /// `[alerts.email]`.
    pub email: EmailConfig,
}

/// TLS for SMTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// STARTTLS, required (no downgrade).
    Starttls,
    /// Implicit TLS (SMTPS).
    Tls,
    /// Plain text: a local relay or tests.
    None,
}

/// How email leaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EmailTransport {
    /// An SMTP server.
    Smtp {
        /// Host name.
        host: String,
        /// Port.
        port: u16,
        /// TLS mode.
        tls: SmtpTls,
        /// Environment variable holding the user name.
        username_env: Option<String>,
        /// Environment variable holding the password.
        password_env: Option<String>,
        /// Extra root certificates (PEM) to trust besides the public ones: a private relay's
        /// or a company CA. Read when the transport is built.
        ca_file: Option<PathBuf>,
    },
    /// `.eml` files in a folder.
    File {
        /// The folder.
        dir: PathBuf,
    },
}

/// `[alerts.email]`.
#[derive(Debug, Clone)]
pub struct EmailConfig {
    /// SMTP or files.
    pub transport: EmailTransport,
    /// Sender.
    pub from: String,
    /// Recipients.
    pub to: Vec<String>,
}

/// Observe or act.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionMode {
    /// Describe actions; send nothing.
    Observe,
    /// Take actions, behind the gates.
    Act,
}

/// `[actions.exec.NAME]`.
#[derive(Debug, Clone)]
pub struct ExecConfig {
    /// argv; run without a shell.
    pub command: Vec<String>,
    /// Killed after this long.
    pub timeout: Duration,
}

/// `[actions]`.
#[derive(Debug, Clone)]
pub struct ActionsConfig {
    /// Observe (default) or act.
    pub mode: ActionMode,
    /// Acting on a live account needs this.
    pub allow_live: bool,
    /// At most this many non-protective actions (`flatten_all`, `fix_state`, `exec:*`) per UTC
    /// day, all together. Protective actions never count against it (see `budget`).
    pub max_per_day: u32,
    /// `[actions.budget]`: per-action daily budgets, by action name (`flatten_shorts`,
    /// `exec:stop-bot`, ...). Unset: a protective action's is
    /// [`PROTECTIVE_BUDGET`](ActionsConfig::PROTECTIVE_BUDGET), any other's is `max_per_day`.
    pub budget: BTreeMap<String, u32>,
    /// Per fingerprint, at most one action this often.
    pub cooldown: Duration,
    /// How long to re-poll for confirmation after an action.
    pub confirm_timeout: Duration,
    /// `fix_state` refuses when a bot file changed this recently.
    pub quiet_for: Duration,
    /// Fields added to entries `fix_state` creates.
    pub fix_state_template: serde_json::Map<String, serde_json::Value>,
    /// Named commands.
    pub exec: BTreeMap<String, ExecConfig>,
}

/// `[server]`.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Where the status server listens; `None` disables it.
    pub listen: Option<SocketAddr>,
    /// How long the watchdog may see nothing of the broker (consecutive cycles that read no
    /// broker endpoint, or could not collect at all) before `/healthz` says 503 `blind`.
    pub blind_after: Hold,
    /// How long a client may take to send a request's headers (from the connection's start, or
    /// the end of its previous request) before the status server closes the connection.
    pub header_timeout: Duration,
    /// The most connections the status server keeps open at once; past it, the oldest is closed
    /// to admit the newest, so idle clients can neither exhaust descriptors nor lock out a probe.
    pub max_connections: usize,
    /// Listening on a non-loopback address was asked for explicitly (`allow_remote = true`).
    pub allow_remote: bool,
    /// Host names (without port) the status server answers besides loopback names and
    /// addresses and the listen address: what a browser's or Prometheus's Host header says when
    /// it reaches the server by name. Anything else gets 421 and no data (DNS rebinding).
    pub allowed_hosts: Vec<String>,
}

impl ServerConfig {
    /// `[server] blind_after` by default: two consecutive blind cycles.
    pub const DEFAULT_BLIND_AFTER: Hold = Hold::Cycles(2);
    /// `[server] header_timeout` by default.
    pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
    /// `[server] max_connections` by default.
    pub const DEFAULT_MAX_CONNECTIONS: usize = 64;
    /// The largest `max_connections` accepted: each connection holds a descriptor.
    pub const MAX_CONNECTIONS_LIMIT: usize = 4096;
}

/// Settings from the command line that take the place of the file's.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--replay DIR`: read the broker and bot from this snapshot directory.
    pub replay_dir: Option<PathBuf>,
}

const TOP_KEYS: [&str; 9] = ["state_dir", "rules", "broker", "bot", "logs", "schedule", "alerts", "actions", "server"];

impl Config {
    /// Loads and validates a configuration file and its rule files, the rules' checks read by
    /// `kinds`, with command-line settings applied before validation. `Config::load` and
    /// `Config::load_with` (in `checks::load`) call it with every check kind.
    ///
    /// # Errors
    /// Every problem found, with file, line and column.
    pub fn load_using(path: &Path, overrides: &Overrides, kinds: &dyn CheckKinds) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::file(path, format!("cannot read the configuration: {e}")))?;
        let path = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
        let dir = path.parent().map_or_else(|| PathBuf::from("."), Path::to_owned);
        let src = SourceText::new(&path, text);
        let problems = Problems::default();
        let config = read_config(&src, &problems, &path, &dir, overrides, kinds);
        if problems.is_empty() {
            config.ok_or_else(|| ConfigError::file(&path, "invalid configuration"))
        } else {
            Err(ConfigError { problems: problems.into_sorted() })
        }
    }

    /// What each configured log must be scanned for, from the rules and the bot mapping.
    #[must_use]
    pub fn log_queries(&self) -> BTreeMap<String, LogQuery> {
        let mut q: BTreeMap<String, LogQuery> = self.logs.keys().map(|k| (k.clone(), LogQuery::default())).collect();
        for rule in &self.rules {
            rule.check.add_log_needs(&mut q);
        }
        for source in
            [Some(&self.bot.positions.source), self.bot.metadata.as_ref().map(|m| &m.source)].into_iter().flatten()
        {
            if let BotSource::Log(name) = source
                && let Some(entry) = q.get_mut(name)
            {
                entry.last_record = true;
            }
        }
        q
    }

    /// The rule context (log and exec names) for reading rule files.
    #[must_use]
    pub fn rule_context(&self) -> RuleContext {
        RuleContext { logs: self.logs.keys().cloned().collect(), execs: self.actions.exec.keys().cloned().collect() }
    }
}

/// Resolves a configured path against the config's folder, folding `.` and `..` lexically so
/// messages show `/srv/rules/default.toml`, not `/srv/bot/../rules/default.toml`.
fn resolve(dir: &Path, p: &str) -> PathBuf {
    let p = Path::new(p);
    let joined = if p.is_absolute() { p.to_owned() } else { dir.join(p) };
    let mut out = PathBuf::new();
    for c in joined.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    out
}

fn relative_bot_path(r: &TableReader<'_, '_>, key: &str, p: &str) -> Option<PathBuf> {
    let path = PathBuf::from(p);
    if path.is_absolute() || path.components().any(|c| matches!(c, std::path::Component::ParentDir)) {
        r.problem_key(
            key,
            format!("`{key}` in {} must be a path inside [bot].root (relative, without `..`)", r.name()),
        );
        return None;
    }
    if p.is_empty() {
        r.problem_key(key, format!("`{key}` in {} cannot be empty", r.name()));
        return None;
    }
    Some(path)
}

fn read_config(
    src: &SourceText,
    problems: &Problems,
    path: &Path,
    dir: &Path,
    overrides: &Overrides,
    kinds: &dyn CheckKinds,
) -> Option<Config> {
    let doc = match parse_document(src) {
        Ok(d) => d,
        Err(ps) => {
            for p in ps {
                problems.push(p);
            }
            return None;
        }
    };
    let mut top = TableReader::new(src, problems, doc.get_ref(), doc.span(), "the top level");
    let state_dir = resolve(dir, &top.get::<String>("state_dir").unwrap_or_else(|| "state".into()));
    let rule_names: Vec<String> = top.get("rules").unwrap_or_else(|| vec!["rules/default.toml".into()]);
    let broker = read_broker(top.table("broker"), dir, overrides.replay_dir.as_deref());
    let logs = read_logs(&mut top);
    let bot = if top.has("bot") {
        read_bot(top.table("bot"), dir, &logs)
    } else {
        top.problem("the configuration needs a [bot] table: where the bot keeps its positions, metadata and logs");
        None
    };
    let schedule = read_schedule(top.table("schedule"));
    let alerts = read_alerts(top.table("alerts"), &state_dir, dir);
    let actions = read_actions(top.table("actions"));
    let server = read_server(top.table("server"));
    top.finish(&TOP_KEYS);

    let ctx = RuleContext { logs: logs.keys().cloned().collect(), execs: actions.exec.keys().cloned().collect() };
    let mut rule_files = Vec::new();
    let mut rules: Vec<Rule> = Vec::new();
    for name in &rule_names {
        let file = resolve(dir, name);
        match read_rules_text(&file) {
            Ok(text) => {
                let rsrc = SourceText::new(&file, text);
                for rule in rule::read_rules_file(&rsrc, problems, &ctx, kinds) {
                    if rules.iter().any(|r| r.id == rule.id) {
                        let msg = format!("rule id `{}` is defined twice; ids must be unique", rule.id);
                        problems.push(rsrc.problem(rule.id_offset, msg));
                    } else {
                        rules.push(rule);
                    }
                }
            }
            Err(e) => {
                let at = src.text().find(&format!("\"{name}\"")).unwrap_or(0);
                problems.push(src.problem(at, format!("cannot read rules file `{}`: {e}", file.display())));
            }
        }
        rule_files.push(file);
    }
    Some(Config {
        path: path.to_owned(),
        dir: dir.to_owned(),
        state_dir,
        rule_files,
        rules,
        broker: broker?,
        bot: bot?,
        logs,
        schedule: schedule?,
        alerts: alerts?,
        actions,
        server: server?,
    })
}

/// A rules file's text. Only a regular file is read: `/dev/zero` or a FIFO named by mistake
/// would otherwise exhaust memory or block the watchdog at start-up.
fn read_rules_text(file: &Path) -> std::io::Result<String> {
    let meta = std::fs::metadata(file)?;
    if !meta.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    std::fs::read_to_string(file)
}

/// `--replay DIR` sets the broker to that snapshot directory whatever the file says.
fn read_broker(r: Option<TableReader<'_, '_>>, dir: &Path, replay: Option<&Path>) -> Option<BrokerConfig> {
    let Some(mut r) = r else {
        return Some(BrokerConfig {
            kind: if replay.is_some() { BrokerKind::Replay } else { BrokerKind::Alpaca },
            base_url: None,
            timeout: Duration::from_secs(10),
            replay_dir: replay.map(Path::to_owned),
            max_body: DEFAULT_MAX_BODY,
        });
    };
    let kind = r
        .get_parsed("kind", |s| match s {
            "alpaca" => Ok(BrokerKind::Alpaca),
            "replay" => Ok(BrokerKind::Replay),
            other => Err(format!("unknown broker kind `{other}`; expected \"alpaca\" or \"replay\"")),
        })
        .unwrap_or(BrokerKind::Alpaca);
    let base_url = r.get_parsed("base_url", |s| {
        let u = s.trim_end_matches('/');
        if u.starts_with("https://") || u.starts_with("http://") {
            cleartext::check_url(u, "the API keys (APCA-API-KEY-ID, APCA-API-SECRET-KEY headers)")?;
            Ok(u.to_owned())
        } else {
            Err(format!("`{s}` is not an http(s) URL"))
        }
    });
    let timeout = r.duration("timeout").unwrap_or(Duration::from_secs(10));
    if timeout.is_zero() {
        r.problem_key("timeout", "`timeout` in [broker] must be more than zero");
    }
    let from_file = r.get::<String>("dir").map(|d| resolve(dir, &d));
    let (kind, replay_dir) = match replay {
        Some(d) => (BrokerKind::Replay, Some(d.to_owned())),
        None => (kind, from_file),
    };
    if kind == BrokerKind::Replay && replay_dir.is_none() {
        r.problem("[broker] kind = \"replay\" needs `dir`, the snapshot directory (`audit --replay DIR` sets it for one audit)");
    }
    let max_body = r.byte_size("max_body", MIN_MAX_BODY, MAX_MAX_BODY).unwrap_or(DEFAULT_MAX_BODY);
    r.finish(&["kind", "base_url", "timeout", "dir", "max_body"]);
    Some(BrokerConfig { kind, base_url, timeout, replay_dir, max_body })
}

fn read_logs(top: &mut TableReader<'_, '_>) -> BTreeMap<String, LogConfig> {
    let mut out = BTreeMap::new();
    for (name, mut t) in top.named_tables("logs") {
        let file = t.require::<String>("file").and_then(|f| relative_bot_path(&t, "file", &f));
        let time = t.get_parsed("time", FieldRef::parse).unwrap_or(FieldRef::Name("ts".into()));
        t.finish(&["file", "time"]);
        if let Some(file) = file {
            out.insert(name, LogConfig { file, time });
        }
    }
    out
}

fn read_source(r: &mut TableReader<'_, '_>, logs: &BTreeMap<String, LogConfig>) -> Option<BotSource> {
    match (r.has("file"), r.has("log")) {
        (true, true) => {
            r.problem_key("log", format!("{} takes `file` or `log`, not both", r.name()));
            let _ = r.raw("file");
            let _ = r.raw("log");
            None
        }
        (false, false) => {
            r.problem(format!("{} needs `file` (a JSON file) or `log` (the last record of a [logs.NAME])", r.name()));
            None
        }
        (true, false) => {
            let f: String = r.require("file")?;
            relative_bot_path(r, "file", &f).map(BotSource::File)
        }
        (false, true) => {
            let name: String = r.require("log")?;
            if logs.contains_key(&name) {
                Some(BotSource::Log(name))
            } else {
                r.problem_key("log", format!("{} names log `{name}`, but there is no [logs.{name}]", r.name()));
                None
            }
        }
    }
}

fn read_bot(r: Option<TableReader<'_, '_>>, dir: &Path, logs: &BTreeMap<String, LogConfig>) -> Option<BotConfig> {
    let Some(mut r) = r else {
        // Report at the top of the file: [bot] is required.
        return None;
    };
    let root = resolve(dir, &r.get::<String>("root").unwrap_or_else(|| ".".into()));
    let long_only = r.get::<bool>("long_only").unwrap_or(true);
    let positions = match r.table("positions") {
        Some(mut p) => {
            let source = read_source(&mut p, logs);
            let at = p.get_parsed("at", |s| check_pointer(s).map(|()| s.to_owned())).unwrap_or_default();
            let symbol = p.get_parsed("symbol", FieldRef::parse).unwrap_or(FieldRef::Name("symbol".into()));
            let qty = p.get_parsed("qty", FieldRef::parse).unwrap_or(FieldRef::Name("qty".into()));
            let entry_price = p.get_parsed("entry_price", FieldRef::parse);
            let side = p.get_parsed("side", FieldRef::parse);
            p.finish(&["file", "log", "at", "symbol", "qty", "entry_price", "side"]);
            source.map(|source| PositionsMapping { source, at, symbol, qty, entry_price, side })
        }
        None => {
            r.problem("[bot] needs a [bot.positions] table: where the bot keeps its open positions");
            None
        }
    };
    let metadata = match r.table("metadata") {
        Some(mut m) => {
            let source = read_source(&mut m, logs);
            let at = m.get_parsed("at", |s| check_pointer(s).map(|()| s.to_owned())).unwrap_or_default();
            m.finish(&["file", "log", "at"]);
            Some(source.map(|source| MetadataMapping { source, at }))
        }
        None => None,
    };
    r.finish(&["root", "long_only", "positions", "metadata"]);
    Some(BotConfig {
        root,
        long_only,
        positions: positions?,
        metadata: match metadata {
            Some(m) => Some(m?),
            None => None,
        },
    })
}

fn read_schedule(r: Option<TableReader<'_, '_>>) -> Option<Schedule> {
    let Some(mut r) = r else { return Some(Schedule::default()) };
    let tz = r.get_parsed("tz", schedule::parse_tz).unwrap_or(chrono_tz::America::New_York);
    let out = match (r.has("every"), r.has("cron")) {
        (true, true) => {
            r.problem_key("cron", "[schedule] takes `every` or `cron`, not both");
            let _ = r.raw("every");
            let _ = r.raw("cron");
            None
        }
        (_, true) => r.get_parsed("cron", |s| schedule::parse_cron(s, tz)),
        (true, false) => {
            let every = r.duration("every");
            // Short intervals exist for soak tests against the simulator; against Alpaca (200
            // requests a minute, 5 per cycle) anything under 2s is throttled by the broker.
            if every.is_some_and(|d| d < Duration::from_millis(10)) {
                r.problem_key("every", "`every` in [schedule] must be at least 10ms");
                None
            } else {
                every.map(Schedule::Every)
            }
        }
        (false, false) => Some(Schedule::default()),
    };
    r.finish(&["every", "cron", "tz"]);
    out
}

/// `[alerts] undeliverable_after` by default.
pub const DEFAULT_UNDELIVERABLE_AFTER: Duration = Duration::from_secs(3600);

/// `[alerts] source_for` by default: two consecutive failed cycles.
pub const DEFAULT_SOURCE_FOR: Hold = Hold::Cycles(2);

fn read_alerts(r: Option<TableReader<'_, '_>>, state_dir: &Path, dir: &Path) -> Option<AlertsConfig> {
    let default_email = || EmailConfig {
        transport: EmailTransport::File { dir: state_dir.join("mail") },
        from: "tradewarden@localhost".into(),
        to: vec!["operator@localhost".into()],
    };
    let Some(mut r) = r else {
        return Some(AlertsConfig {
            repeat: Duration::from_secs(3600),
            send_resolved: true,
            resolved_retention: Duration::from_secs(3600),
            source_for: DEFAULT_SOURCE_FOR,
            heartbeat_url: None,
            undeliverable_after: DEFAULT_UNDELIVERABLE_AFTER,
            email: default_email(),
        });
    };
    let repeat = r.duration("repeat").unwrap_or(Duration::from_secs(3600));
    let send_resolved = r.get::<bool>("send_resolved").unwrap_or(true);
    let resolved_retention = r.duration("resolved_retention").unwrap_or(Duration::from_secs(3600));
    let source_for = r
        .get_parsed("source_for", |s| {
            Hold::parse(s).map_err(|e| {
                if e.contains("0 cycles") {
                    "a hold of 0 cycles means none: use \"0s\" to fire at once".into()
                } else {
                    e
                }
            })
        })
        .unwrap_or(DEFAULT_SOURCE_FOR);
    let heartbeat_url = r.get_parsed("heartbeat_url", |s| {
        if s.starts_with("http://") || s.starts_with("https://") {
            // A heartbeat URL is a credential (a ping URL's path or query is its token).
            cleartext::check_url(s, "the heartbeat URL, a token anyone who reads it can ping with")?;
            Ok(s.to_owned())
        } else {
            Err(format!("`{s}` is not an http(s) URL"))
        }
    });
    let undeliverable_after = r.duration("undeliverable_after").unwrap_or(DEFAULT_UNDELIVERABLE_AFTER);
    if undeliverable_after.is_zero() {
        r.problem_key("undeliverable_after", "`undeliverable_after` in [alerts] must be more than zero");
    }
    let email = match r.table("email") {
        Some(e) => read_email(e, state_dir, dir),
        None => Some(default_email()),
    };
    r.finish(&[
        "repeat",
        "send_resolved",
        "resolved_retention",
        "source_for",
        "heartbeat_url",
        "undeliverable_after",
        "email",
    ]);
    Some(AlertsConfig {
        repeat,
        send_resolved,
        resolved_retention,
        source_for,
        heartbeat_url,
        undeliverable_after,
        email: email?,
    })
}

fn check_mailbox(s: &str) -> Result<String, String> {
    s.parse::<lettre::message::Mailbox>()
        .map(|_| s.to_owned())
        .map_err(|e| format!("`{s}` is not an email address ({e})"))
}

fn read_email(mut r: TableReader<'_, '_>, state_dir: &Path, dir: &Path) -> Option<EmailConfig> {
    let transport_kind = r
        .get_parsed("transport", |s| match s {
            "smtp" | "file" => Ok(s.to_owned()),
            other => Err(format!("unknown transport `{other}`; expected \"smtp\" or \"file\"")),
        })
        .unwrap_or_else(|| if r.has("host") { "smtp".into() } else { "file".into() });
    let from = r.get_parsed("from", check_mailbox).unwrap_or_else(|| "tradewarden@localhost".into());
    let to: Vec<String> = match r.raw("to") {
        Some(_) => {
            let list: Option<Vec<String>> = r.get("to");
            // An empty list would make every message fail forever with "missing destination".
            if list.as_ref().is_some_and(Vec::is_empty) {
                r.problem_key("to", "`to` in [alerts.email] needs at least one recipient");
            }
            let list = list.unwrap_or_default();
            let mut ok = Vec::new();
            for a in list {
                match check_mailbox(&a) {
                    Ok(a) => ok.push(a),
                    Err(e) => r.problem_key("to", format!("`to` in [alerts.email]: {e}")),
                }
            }
            ok
        }
        None => vec!["operator@localhost".into()],
    };
    let transport = if transport_kind == "smtp" {
        let host: Option<String> = r.require("host");
        let tls = r
            .get_parsed("tls", |s| match s {
                "starttls" => Ok(SmtpTls::Starttls),
                "tls" => Ok(SmtpTls::Tls),
                "none" => Ok(SmtpTls::None),
                other => Err(format!("unknown tls mode `{other}`; expected \"starttls\", \"tls\" or \"none\"")),
            })
            .unwrap_or(SmtpTls::Starttls);
        let default_port = match tls {
            SmtpTls::Starttls => 587,
            SmtpTls::Tls => 465,
            SmtpTls::None => 25,
        };
        let port = r.get::<u16>("port").unwrap_or(default_port);
        let username_env: Option<String> = r.get("username_env");
        let password_env: Option<String> = r.get("password_env");
        if username_env.is_some() != password_env.is_some() {
            r.problem("[alerts.email] needs both `username_env` and `password_env`, or neither");
        }
        let ca_file = r.get_parsed("ca_file", |s| {
            let path = resolve(dir, s);
            match std::fs::read(&path) {
                Ok(pem) if pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") => Ok(path),
                Ok(_) => Err(format!("{} holds no PEM certificate (-----BEGIN CERTIFICATE-----)", path.display())),
                Err(e) => Err(format!("cannot read {}: {e}", path.display())),
            }
        });
        // lettre sends AUTH over a plain connection when asked: the password would cross the
        // network readable. A local relay (loopback) is the one place that is fine.
        if tls == SmtpTls::None
            && username_env.is_some()
            && let Some(h) = host.as_deref()
            && !cleartext::is_loopback_host(h)
        {
            r.problem_key(
                "tls",
                format!(
                    "[alerts.email] tls = \"none\" with `username_env`/`password_env` would send the \
                     password to `{h}` unencrypted; use tls = \"starttls\" or \"tls\" (plain SMTP with a \
                     login is accepted only to localhost or a loopback address)"
                ),
            );
        }
        if ca_file.is_some() && tls == SmtpTls::None {
            r.problem_key("ca_file", "`ca_file` in [alerts.email] needs tls = \"starttls\" or \"tls\"".to_owned());
        }
        let _ = r.raw("dir");
        host.map(|host| EmailTransport::Smtp { host, port, tls, username_env, password_env, ca_file })
    } else {
        for k in ["host", "port", "tls", "username_env", "password_env", "ca_file"] {
            if r.has(k) {
                r.problem_key(k, format!("`{k}` in [alerts.email] only applies to transport = \"smtp\""));
                let _ = r.raw(k);
            }
        }
        let d = r.get::<String>("dir").map_or_else(|| state_dir.join("mail"), |d| resolve(dir, &d));
        Some(EmailTransport::File { dir: d })
    };
    r.finish(&["transport", "host", "port", "tls", "username_env", "password_env", "ca_file", "from", "to", "dir"]);
    Some(EmailConfig { transport: transport?, from, to })
}

impl ActionsConfig {
    /// The default daily budget of each protective action (its own, shared with nothing).
    pub const PROTECTIVE_BUDGET: u32 = 10;

    /// The daily budget of one action: `[actions.budget]`, else the default.
    #[must_use]
    pub fn budget_of(&self, kind: &ActionKind) -> u32 {
        match self.budget.get(&kind.to_string()) {
            Some(n) => *n,
            None if kind.is_protective() => Self::PROTECTIVE_BUDGET,
            None => self.max_per_day,
        }
    }
}

/// `[actions.budget]`: each key an action name, each value a non-negative count; a protective
/// action's budget cannot be 0 (remove it from the rule instead: a budget of 0 would turn every
/// firing into a critical refusal).
fn read_budget(r: &mut TableReader<'_, '_>, execs: &BTreeSet<String>) -> BTreeMap<String, u32> {
    let mut out = BTreeMap::new();
    let Some(mut b) = r.table("budget") else { return out };
    for key in b.keys() {
        let kind = match ActionKind::parse(&key, execs) {
            Ok(k) => k,
            Err(e) => {
                b.problem_key(&key, format!("`{key}` in [actions.budget]: {e}"));
                let _ = b.raw(&key);
                continue;
            }
        };
        let Some(n) = b.get::<u32>(&key) else { continue };
        if n == 0 && kind.is_protective() {
            b.problem_key(
                &key,
                format!(
                    "`{key}` in [actions.budget] cannot be 0: {key} is protective and a refused protective action \
                     is critical; remove it from the rule's actions instead"
                ),
            );
            continue;
        }
        out.insert(kind.to_string(), n);
    }
    out
}

fn read_actions(r: Option<TableReader<'_, '_>>) -> ActionsConfig {
    let mut cfg = ActionsConfig {
        mode: ActionMode::Observe,
        allow_live: false,
        max_per_day: 5,
        budget: BTreeMap::new(),
        cooldown: Duration::from_secs(600),
        confirm_timeout: Duration::from_secs(30),
        quiet_for: Duration::from_secs(30),
        fix_state_template: serde_json::Map::new(),
        exec: BTreeMap::new(),
    };
    let Some(mut r) = r else { return cfg };
    if let Some(mode) = r.get_parsed("mode", |s| match s {
        "observe" => Ok(ActionMode::Observe),
        "act" => Ok(ActionMode::Act),
        other => Err(format!("unknown mode `{other}`; expected \"observe\" or \"act\"")),
    }) {
        cfg.mode = mode;
    }
    cfg.allow_live = r.get("allow_live").unwrap_or(false);
    cfg.max_per_day = r.get("max_per_day").unwrap_or(5);
    cfg.cooldown = r.duration("cooldown").unwrap_or(cfg.cooldown);
    cfg.confirm_timeout = r.duration("confirm_timeout").unwrap_or(cfg.confirm_timeout);
    if let Some(mut f) = r.table("fix_state") {
        cfg.quiet_for = f.duration("quiet_for").unwrap_or(cfg.quiet_for);
        if let Some(t) = f.get::<serde_json::Map<String, serde_json::Value>>("template") {
            cfg.fix_state_template = t;
        }
        f.finish(&["quiet_for", "template"]);
    }
    for (name, mut e) in r.named_tables("exec") {
        let command: Option<Vec<String>> = e.require("command");
        if command.as_ref().is_some_and(Vec::is_empty) {
            e.problem_key("command", format!("`command` in {} cannot be empty", e.name()));
        }
        let timeout = e.duration("timeout").unwrap_or(Duration::from_secs(30));
        e.finish(&["command", "timeout"]);
        if let Some(command) = command.filter(|c| !c.is_empty()) {
            cfg.exec.insert(name, ExecConfig { command, timeout });
        }
    }
    let execs: BTreeSet<String> = cfg.exec.keys().cloned().collect();
    cfg.budget = read_budget(&mut r, &execs);
    r.finish(&["mode", "allow_live", "max_per_day", "budget", "cooldown", "confirm_timeout", "fix_state", "exec"]);
    cfg
}

fn read_server(r: Option<TableReader<'_, '_>>) -> Option<ServerConfig> {
    let default: SocketAddr = "127.0.0.1:9464".parse().expect("valid address");
    let defaults = ServerConfig {
        listen: Some(default),
        blind_after: ServerConfig::DEFAULT_BLIND_AFTER,
        header_timeout: ServerConfig::DEFAULT_HEADER_TIMEOUT,
        max_connections: ServerConfig::DEFAULT_MAX_CONNECTIONS,
        allow_remote: false,
        allowed_hosts: Vec::new(),
    };
    let Some(mut r) = r else { return Some(defaults) };
    let listen = match r.raw("listen") {
        None => Some(Some(default)),
        Some(_) => r.get_parsed("listen", |s| {
            if s.is_empty() {
                Ok(None)
            } else {
                s.parse::<SocketAddr>()
                    .map(Some)
                    .map_err(|_| format!("`{s}` is not an address like \"127.0.0.1:9464\""))
            }
        }),
    };
    let blind_after = r
        .get_parsed("blind_after", |s| {
            Hold::parse(s).map_err(|e| {
                if e.contains("0 cycles") {
                    "0 cycles would call every start-up blind: use \"1 cycle\" or more".into()
                } else {
                    e
                }
            })
        })
        .unwrap_or(defaults.blind_after);
    if matches!(blind_after, Hold::Duration(d) if d.is_zero()) {
        r.problem_key("blind_after", "`blind_after` in [server] cannot be 0s: use \"1 cycle\" or more".to_owned());
    }
    let header_timeout = r.duration("header_timeout").unwrap_or(defaults.header_timeout);
    if header_timeout.is_zero() {
        r.problem_key("header_timeout", "`header_timeout` in [server] cannot be 0s".to_owned());
    }
    let max_connections = match r.get::<i64>("max_connections") {
        None => defaults.max_connections,
        Some(n) => match usize::try_from(n) {
            Ok(n) if (1..=ServerConfig::MAX_CONNECTIONS_LIMIT).contains(&n) => n,
            _ => {
                r.problem_key(
                    "max_connections",
                    format!(
                        "`max_connections` in [server] must be between 1 and {}, not {n}",
                        ServerConfig::MAX_CONNECTIONS_LIMIT
                    ),
                );
                defaults.max_connections
            }
        },
    };
    let allow_remote = r.get::<bool>("allow_remote").unwrap_or(false);
    // The status page shows positions, equity and findings: reachable from other machines only
    // when the operator says so.
    if let Some(Some(addr)) = listen
        && !addr.ip().is_loopback()
        && !allow_remote
    {
        r.problem_key(
            "listen",
            format!(
                "`listen` in [server] is {addr}, which other machines can reach, and the status server \
                 shows positions, equity and findings without a login: use a loopback address \
                 (127.0.0.1), or set `allow_remote = true` in [server] to mean it"
            ),
        );
    }
    let allowed_hosts: Vec<String> = r.get::<Vec<String>>("allowed_hosts").unwrap_or_default();
    for h in &allowed_hosts {
        let ok = !h.is_empty()
            && h.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
            && reqwest::Url::parse(&format!("http://{h}/")).is_ok_and(|u| u.port().is_none() && u.path() == "/");
        if !ok {
            r.problem_key(
                "allowed_hosts",
                format!("`allowed_hosts` in [server]: `{h}` is not a host name or address without a port"),
            );
        }
    }
    let allowed_hosts = allowed_hosts.into_iter().map(|h| h.trim_end_matches('.').to_ascii_lowercase()).collect();
    r.finish(&["listen", "blind_after", "header_timeout", "max_connections", "allow_remote", "allowed_hosts"]);
    listen.map(|listen| ServerConfig {
        listen,
        blind_after,
        header_timeout,
        max_connections,
        allow_remote,
        allowed_hosts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(alerts: &str) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("rules.toml"), "").unwrap();
        let path = dir.path().join("tradewarden.toml");
        std::fs::write(
            &path,
            format!(
                "rules = [\"rules.toml\"]\n[bot]\nroot = \".\"\n[bot.positions]\nfile = \"p.json\"\n[alerts]\n{alerts}"
            ),
        )
        .unwrap();
        Config::load(&path)
    }

    #[test]
    fn undeliverable_after_defaults_to_an_hour_and_a_bad_or_zero_value_names_its_line() {
        assert_eq!(load("").unwrap().alerts.undeliverable_after, Duration::from_secs(3600));
        assert_eq!(
            load("undeliverable_after = \"90s\"\n").unwrap().alerts.undeliverable_after,
            Duration::from_secs(90)
        );
        let bad = load("repeat = \"1h\"\nundeliverable_after = \"soon\"\n").unwrap_err().to_string();
        assert!(bad.contains("tradewarden.toml:8") && bad.contains("`soon` is not a duration"), "{bad}");
        let zero = load("undeliverable_after = \"0s\"\n").unwrap_err().to_string();
        assert!(zero.contains("tradewarden.toml:7") && zero.contains("must be more than zero"), "{zero}");
    }
}
