//! `[actions]`: observe or act, budgets, cooldown, confirmation, `fix_state` and named commands.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::reader::TableReader;
use super::rule::ActionKind;

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
pub(super) fn read_budget(r: &mut TableReader<'_, '_>, execs: &BTreeSet<String>) -> BTreeMap<String, u32> {
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

pub(super) fn read_actions(r: Option<TableReader<'_, '_>>) -> ActionsConfig {
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
