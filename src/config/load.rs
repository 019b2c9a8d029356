//! `Config`, the whole validated configuration, and reading it: `tradewarden.toml`, each of its
//! tables by its own reader, then the rule files it names (their checks read by `CheckKinds`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::actions::{ActionsConfig, read_actions};
use super::alerts::{AlertsConfig, read_alerts};
use super::bot::{BotConfig, BotSource, read_bot};
use super::broker::{BrokerConfig, read_broker};
use super::logs::{LogConfig, read_logs};
use super::packs;
use super::paths::resolve;
use super::problem::ConfigError;
use super::reader::{Problems, SourceText, TableReader, parse_document};
use super::rule::{self, CheckKinds, Rule, RuleContext};
use super::schedule::{Schedule, read_schedule};
use super::server::{ServerConfig, read_server};
use crate::model::LogQuery;

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

/// Settings from the command line that take the place of the file's.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--replay DIR`: read the broker and bot from this snapshot directory.
    pub replay_dir: Option<PathBuf>,
}

const TOP_KEYS: [&str; 9] = ["state_dir", "rules", "broker", "bot", "logs", "schedule", "alerts", "actions", "server"];

pub(super) fn read_config(
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
    let rule_names: Vec<String> = top.get("rules").unwrap_or_else(|| vec![packs::DEFAULT.into()]);
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
        let at = src.text().find(&format!("\"{name}\"")).unwrap_or(0);
        let (file, text) = if packs::is_builtin(name) {
            let text = packs::text(name).map(str::to_owned).ok_or_else(|| {
                let known: Vec<&str> = packs::PACKS.iter().map(|(n, _)| *n).collect();
                std::io::Error::other(format!("no such built-in pack; built in: {}", known.join(", ")))
            });
            (PathBuf::from(name), text)
        } else {
            let file = resolve(dir, name);
            let text = read_rules_text(&file);
            (file, text)
        };
        match text {
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
pub(super) fn read_rules_text(file: &Path) -> std::io::Result<String> {
    let meta = std::fs::metadata(file)?;
    if !meta.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    std::fs::read_to_string(file)
}
