//! A rule: a check kind with its parameters, plus severity, `for`, `repeat`, `when` and actions.
//!
//! Config reads the keys every rule has; the kind named by `check` reads the rest of the table
//! through [`CheckKinds`] (implemented in `checks`, which config does not import).

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde::ser::SerializeMap;

use super::reader::{Problems, SourceText, TableReader, parse_document};
use crate::model::{Check, Origin, Severity};

/// Keys every rule may have besides its check's parameters.
pub const COMMON_KEYS: [&str; 8] = ["id", "check", "severity", "for", "repeat", "when", "actions", "description"];

/// A validated rule.
#[derive(Debug, Clone, Serialize)]
pub struct Rule {
    /// Unique id, also the first half of alert fingerprints.
    pub id: String,
    /// The check and its parameters.
    #[serde(flatten, serialize_with = "check_as_table")]
    pub check: Arc<dyn Check>,
    /// Severity of its findings.
    pub severity: Severity,
    /// How long a violation must persist before it fires.
    #[serde(rename = "for", skip_serializing_if = "Option::is_none")]
    pub hold: Option<Hold>,
    /// Re-notify a firing alert this often (else `[alerts] repeat`).
    #[serde(skip_serializing_if = "Option::is_none", with = "opt_duration")]
    pub repeat: Option<Duration>,
    /// When the rule is evaluated.
    pub when: When,
    /// Actions run while its alert fires.
    pub actions: Vec<ActionKind>,
    /// What it is for, in a sentence.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Where it was defined: the file.
    #[serde(skip)]
    pub origin: String,
    /// Byte offset of its `id` value in that file (for duplicate-id messages).
    #[serde(skip)]
    pub id_offset: usize,
}

/// Writes the check as the rule does: `check = "kind"` and its parameters.
fn check_as_table<S: serde::Serializer>(check: &Arc<dyn Check>, s: S) -> Result<S::Ok, S::Error> {
    let params = check.params();
    let params = params.as_object();
    let mut m = s.serialize_map(Some(1 + params.map_or(0, serde_json::Map::len)))?;
    m.serialize_entry("check", check.kind())?;
    for (k, v) in params.into_iter().flatten() {
        m.serialize_entry(k, v)?;
    }
    m.end()
}

mod opt_duration {
    use std::time::Duration;

    use serde::Serializer;

    #[expect(clippy::ref_option, reason = "serde's `with` passes a reference to the field")]
    pub(super) fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&crate::duration::format(*d)),
            None => s.serialize_none(),
        }
    }
}

/// `for`: a duration, or a number of consecutive cycles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hold {
    /// The violation must persist this long.
    Duration(Duration),
    /// The violation must be seen in this many consecutive cycles.
    Cycles(u32),
}

impl Hold {
    /// Parses `"2m"` or `"3 cycles"`.
    ///
    /// # Errors
    /// When it is neither.
    pub fn parse(text: &str) -> Result<Self, String> {
        let t = text.trim();
        if let Some(n) = t.strip_suffix("cycles").or_else(|| t.strip_suffix("cycle")) {
            let n: u32 =
                n.trim().parse().map_err(|_| format!("`{text}` is not a number of cycles, like \"3 cycles\""))?;
            if n == 0 {
                return Err("a hold of 0 cycles means no hold: leave `for` out".into());
            }
            return Ok(Self::Cycles(n));
        }
        crate::duration::parse_config(t)
            .map(Self::Duration)
            .map_err(|e| format!("{e}, or a number of cycles like \"3 cycles\""))
    }
}

impl fmt::Display for Hold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Duration(d) => f.write_str(&crate::duration::format(*d)),
            Self::Cycles(1) => f.write_str("1 cycle"),
            Self::Cycles(n) => write!(f, "{n} cycles"),
        }
    }
}

impl Serialize for Hold {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// When a rule is evaluated; otherwise its outcome is `skipped`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum When {
    /// Every audit.
    #[default]
    Always,
    /// While the broker clock says the market is open.
    MarketOpen,
    /// While the broker holds at least one position.
    PositionsOpen,
    /// Both.
    MarketOpenWithPositions,
}

impl When {
    fn parse(text: &str) -> Result<Self, String> {
        match text {
            "always" => Ok(Self::Always),
            "market_open" => Ok(Self::MarketOpen),
            "positions_open" => Ok(Self::PositionsOpen),
            "market_open_with_positions" => Ok(Self::MarketOpenWithPositions),
            other => Err(format!(
                "unknown `when` value `{other}`; expected always, market_open, positions_open or market_open_with_positions"
            )),
        }
    }
}

/// The actions a rule may name: one table in the model (act and config both read it).
pub use crate::model::ActionKind;

/// The check kinds, as config reads rules with them: the kind a rule's `check` names reads its
/// parameters from the rule's table. `checks::Kinds` implements it over every kind.
pub trait CheckKinds {
    /// The parameter keys the kind accepts (none for an unknown kind).
    fn param_names(&self, kind: &str) -> Vec<&'static str>;

    /// Reads the kind's parameters from the rule's table into its check. Problems, an unknown
    /// kind among them, go to the reader.
    fn read(&self, kind: &str, r: &mut TableReader<'_, '_>, ctx: &RuleContext) -> Option<Arc<dyn Check>>;
}

/// What rules may refer to in the main configuration.
#[derive(Debug, Clone, Default)]
pub struct RuleContext {
    /// Names of the `[logs.NAME]` tables.
    pub logs: BTreeSet<String>,
    /// Names of the `[actions.exec.NAME]` tables.
    pub execs: BTreeSet<String>,
}

/// Reads one `[[rule]]` table.
pub fn read_rule(r: &mut TableReader<'_, '_>, ctx: &RuleContext, kinds: &dyn CheckKinds) -> Option<Rule> {
    let id_offset = r.raw("id").map_or(0, |v| v.span().start);
    let id: Option<String> = r.require("id");
    if let Some(id) = &id {
        if id.is_empty() || id.chars().any(|c| c.is_whitespace() || c.is_control() || c == '/') {
            r.problem_key("id", format!("rule id `{id}` must be non-empty, without spaces or `/`"));
        } else if Origin::of(id).is_some() {
            // tradewarden's own findings and triggers carry these ids (`Origin`: source findings
            // take `source_for`, action findings and CLI triggers carry theirs): a user rule so
            // named would be mistaken for them.
            r.problem_key(
                "id",
                format!(
                    "rule id `{id}` is reserved (used by tradewarden itself: {})",
                    Origin::ALL.map(Origin::id).join(", ")
                ),
            );
        }
        r.rename(format!("rule `{id}`"));
    }
    let kind: Option<String> = r.require("check");
    let severity = r.require_parsed("severity", |s| s.parse::<Severity>());
    let hold = r.get_parsed("for", Hold::parse);
    let repeat = r.duration("repeat");
    let when = r.get_parsed("when", When::parse).unwrap_or_default();
    let actions: Vec<String> = r.get("actions").unwrap_or_default();
    let mut parsed_actions = Vec::new();
    for a in &actions {
        match ActionKind::parse(a, &ctx.execs) {
            Ok(k) => parsed_actions.push(k),
            Err(e) => r.problem_key("actions", format!("{}: {e}", r.name())),
        }
    }
    let description: Option<String> = r.get("description");
    let check = kind.as_deref().and_then(|k| kinds.read(k, r, ctx));
    let mut expected: Vec<&str> = COMMON_KEYS.to_vec();
    if let Some(k) = kind.as_deref() {
        expected.extend(kinds.param_names(k));
    }
    let origin = {
        let src = r.source();
        format!("{}", src.path().display())
    };
    // Unknown keys are reported even when something else was wrong, so the list is complete.
    r.finish(&expected);
    Some(Rule {
        id: id?,
        check: check?,
        severity: severity?,
        hold,
        repeat,
        when,
        actions: parsed_actions,
        description,
        origin,
        id_offset,
    })
}

/// Reads a rules file: `[[rule]]` tables only. Problems go to `problems`.
pub fn read_rules_file(src: &SourceText, problems: &Problems, ctx: &RuleContext, kinds: &dyn CheckKinds) -> Vec<Rule> {
    let doc = match parse_document(src) {
        Ok(d) => d,
        Err(ps) => {
            for p in ps {
                problems.push(p);
            }
            return Vec::new();
        }
    };
    let mut top = TableReader::new(src, problems, doc.get_ref(), doc.span(), "the top level");
    let tables = top.array_of_tables("rule");
    let mut rules = Vec::new();
    for mut t in tables {
        if let Some(rule) = read_rule(&mut t, ctx, kinds) {
            rules.push(rule);
        }
    }
    top.finish(&["rule"]);
    rules
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hold_parses_durations_and_cycles() {
        assert_eq!(Hold::parse("2m").unwrap(), Hold::Duration(Duration::from_secs(120)));
        assert_eq!(Hold::parse("3 cycles").unwrap(), Hold::Cycles(3));
        assert_eq!(Hold::parse("1 cycle").unwrap(), Hold::Cycles(1));
        assert!(Hold::parse("0 cycles").is_err());
        assert!(Hold::parse("a while").is_err());
    }

    /// Issue 12: a rule named `source` behaved like the built-in source rule.
    #[test]
    fn a_rule_named_like_a_pseudo_rule_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        for id in Origin::ALL.map(Origin::id) {
            std::fs::write(
                dir.path().join("rules.toml"),
                format!("[[rule]]\nid = \"{id}\"\ncheck = \"no_short_positions\"\nseverity = \"info\"\n"),
            )
            .unwrap();
            let cfg = dir.path().join("tradewarden.toml");
            std::fs::write(&cfg, "rules = [\"rules.toml\"]\n").unwrap();
            let err = crate::config::Config::load(&cfg).expect_err(id).to_string();
            assert!(err.contains(&format!("rules.toml:2:6: rule id `{id}` is reserved")), "{err}");
        }
    }

    #[test]
    fn actions_parse() {
        let execs: BTreeSet<String> = ["stop-bot".to_owned()].into();
        assert_eq!(ActionKind::parse("exec:stop-bot", &execs).unwrap(), ActionKind::Exec("stop-bot".into()));
        assert!(ActionKind::parse("exec:nope", &execs).is_err());
        assert!(ActionKind::parse("flatten", &execs).is_err());
        assert_eq!(ActionKind::parse("flatten_shorts", &execs).unwrap().to_string(), "flatten_shorts");
    }
}
