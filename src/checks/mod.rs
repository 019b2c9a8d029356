//! Check kinds: one file per kind, each a pure function of the snapshot.
//!
//! Adding a kind is one new file plus one line in each `match` below (an explicit list, like
//! ripgrep's flags, rather than registration magic). A check that cannot see its inputs says
//! `Unknown`; it never guesses, and never reads a failed source as empty.

pub mod account_health;
pub mod exposure_limits;
pub mod log_activity;
pub mod log_freshness;
pub mod metadata_complete;
pub mod no_short_positions;
pub mod open_order_hazard;
pub mod position_match;
#[cfg(test)]
pub mod testkit;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};

use crate::config::RuleContext;
use crate::config::reader::TableReader;
use crate::model::{Issue, LogQuery, Snapshot};

/// The finding code of a rule that could not be evaluated (in whole or in part). It carries the
/// rule's own severity: a blind rule weighs as much as that rule violated.
pub const RULE_UNKNOWN: &str = "rule_unknown";

/// The result of running a check.
#[derive(Debug, Clone, PartialEq)]
pub enum Evaluation {
    /// The check saw all it needed; these are its issues (none means OK).
    Checked(Vec<Issue>),
    /// Something the check needed was missing or impossible: what it could not see, and what
    /// it found in the parts it could.
    Unknown(Blind),
}

/// What an `Unknown` evaluation could not see (never empty), and the issues found in the
/// independent parts it could see.
#[derive(Debug, Clone, PartialEq)]
pub struct Blind {
    /// `rule_unknown` issues, each naming the failed source or the missing/impossible field.
    pub blind: Vec<Issue>,
    /// Issues found in the parts of the check that did not need the missing input.
    pub issues: Vec<Issue>,
}

impl Blind {
    /// Why the rule is unknown: the blind issues' messages.
    #[must_use]
    pub fn reason(&self) -> String {
        self.blind.iter().map(|i| i.message.as_str()).collect::<Vec<_>>().join("; ")
    }
}

impl Evaluation {
    /// `Checked(issues)` when nothing was blind, else `Unknown` with both.
    #[must_use]
    pub fn partial(issues: Vec<Issue>, blind: Vec<Issue>) -> Self {
        if blind.is_empty() { Self::Checked(issues) } else { Self::Unknown(Blind { blind, issues }) }
    }
}

/// A `rule_unknown` issue for an input that is missing or impossible (not a failed source):
/// `subject` is what it belongs to (`account`, a symbol, `log:NAME`), `field` names it, and
/// `value` is what was seen (null when absent).
#[must_use]
pub fn blind_field(subject: &str, field: &str, value: Value, message: String) -> Issue {
    Issue {
        code: RULE_UNKNOWN,
        subject: subject.to_owned(),
        message,
        observed: json!({ "field": field, "value": value }),
        expected: json!({ "field": field, "value": "present and valid" }),
    }
}

/// The `Unknown` of a check that can judge nothing without one missing or impossible input.
#[must_use]
pub fn unknown_field(subject: &str, field: &str, value: Value, message: String) -> Evaluation {
    Evaluation::Unknown(Blind { blind: vec![blind_field(subject, field, value, message)], issues: Vec::new() })
}

/// A `rule_unknown` issue for a failed source. Its subject is the source (`broker:positions`),
/// so one outage is one alert per rule, and `observed.source` lets the alert lifecycle apply
/// `[alerts] source_for` to it like to the source finding itself.
#[must_use]
pub fn blind_source(err: &crate::model::SourceError) -> Issue {
    Issue {
        code: RULE_UNKNOWN,
        subject: err.source.clone(),
        message: format!("{} is {}", err.source, err.kind.status()),
        observed: json!({ "source": err.source, "status": err.kind.status() }),
        expected: json!({ "source": err.source, "status": "ok" }),
    }
}

/// A check kind with its parameters.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "check", rename_all = "snake_case")]
pub enum CheckConfig {
    /// `no_short_positions`.
    NoShortPositions(no_short_positions::Params),
    /// `position_match`.
    PositionMatch(position_match::Params),
    /// `metadata_complete`.
    MetadataComplete(metadata_complete::Params),
    /// `log_freshness`.
    LogFreshness(log_freshness::Params),
    /// `log_activity`.
    LogActivity(log_activity::Params),
    /// `open_order_hazard`.
    OpenOrderHazard(open_order_hazard::Params),
    /// `exposure_limits`.
    ExposureLimits(exposure_limits::Params),
    /// `account_health`.
    AccountHealth(account_health::Params),
}

/// Every check kind, in documentation order.
pub const KINDS: [&str; 8] = [
    no_short_positions::KIND,
    position_match::KIND,
    metadata_complete::KIND,
    log_freshness::KIND,
    log_activity::KIND,
    open_order_hazard::KIND,
    exposure_limits::KIND,
    account_health::KIND,
];

impl CheckConfig {
    /// Reads a check's parameters from its rule table. Problems go to the reader.
    pub fn read(kind: &str, r: &mut TableReader<'_, '_>, ctx: &RuleContext) -> Option<Self> {
        Some(match kind {
            no_short_positions::KIND => Self::NoShortPositions(no_short_positions::Params::read(r, ctx)?),
            position_match::KIND => Self::PositionMatch(position_match::Params::read(r, ctx)?),
            metadata_complete::KIND => Self::MetadataComplete(metadata_complete::Params::read(r, ctx)?),
            log_freshness::KIND => Self::LogFreshness(log_freshness::Params::read(r, ctx)?),
            log_activity::KIND => Self::LogActivity(log_activity::Params::read(r, ctx)?),
            open_order_hazard::KIND => Self::OpenOrderHazard(open_order_hazard::Params::read(r, ctx)?),
            exposure_limits::KIND => Self::ExposureLimits(exposure_limits::Params::read(r, ctx)?),
            account_health::KIND => Self::AccountHealth(account_health::Params::read(r, ctx)?),
            other => {
                r.problem_key("check", format!("unknown check kind `{other}`; expected one of: {}", KINDS.join(", ")));
                return None;
            }
        })
    }

    /// The parameter names a kind accepts (empty for an unknown kind).
    #[must_use]
    pub fn param_names(kind: &str) -> &'static [&'static str] {
        match kind {
            no_short_positions::KIND => no_short_positions::PARAMS,
            position_match::KIND => position_match::PARAMS,
            metadata_complete::KIND => metadata_complete::PARAMS,
            log_freshness::KIND => log_freshness::PARAMS,
            log_activity::KIND => log_activity::PARAMS,
            open_order_hazard::KIND => open_order_hazard::PARAMS,
            exposure_limits::KIND => exposure_limits::PARAMS,
            account_health::KIND => account_health::PARAMS,
            _ => &[],
        }
    }

    /// The finding codes a kind emits.
    #[must_use]
    pub fn codes(kind: &str) -> &'static [&'static str] {
        match kind {
            no_short_positions::KIND => no_short_positions::CODES,
            position_match::KIND => position_match::CODES,
            metadata_complete::KIND => metadata_complete::CODES,
            log_freshness::KIND => log_freshness::CODES,
            log_activity::KIND => log_activity::CODES,
            open_order_hazard::KIND => open_order_hazard::CODES,
            exposure_limits::KIND => exposure_limits::CODES,
            account_health::KIND => account_health::CODES,
            _ => &[],
        }
    }

    /// This check's kind.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::NoShortPositions(_) => no_short_positions::KIND,
            Self::PositionMatch(_) => position_match::KIND,
            Self::MetadataComplete(_) => metadata_complete::KIND,
            Self::LogFreshness(_) => log_freshness::KIND,
            Self::LogActivity(_) => log_activity::KIND,
            Self::OpenOrderHazard(_) => open_order_hazard::KIND,
            Self::ExposureLimits(_) => exposure_limits::KIND,
            Self::AccountHealth(_) => account_health::KIND,
        }
    }

    /// Runs the check.
    #[must_use]
    pub fn evaluate(&self, snap: &Snapshot, now: DateTime<Utc>) -> Evaluation {
        match self {
            Self::NoShortPositions(p) => p.evaluate(snap, now),
            Self::PositionMatch(p) => p.evaluate(snap, now),
            Self::MetadataComplete(p) => p.evaluate(snap, now),
            Self::LogFreshness(p) => p.evaluate(snap, now),
            Self::LogActivity(p) => p.evaluate(snap, now),
            Self::OpenOrderHazard(p) => p.evaluate(snap, now),
            Self::ExposureLimits(p) => p.evaluate(snap, now),
            Self::AccountHealth(p) => p.evaluate(snap, now),
        }
    }

    /// Adds what this check needs from logs (windows to count) to `queries`.
    pub fn add_log_needs(&self, queries: &mut BTreeMap<String, LogQuery>) {
        match self {
            Self::LogActivity(p) => p.add_log_needs(queries),
            Self::LogFreshness(p) => p.add_log_needs(queries),
            _ => {}
        }
    }

    /// The parameters as JSON (for `rules list`).
    #[must_use]
    pub fn params_json(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        if let Some(m) = v.as_object_mut() {
            m.remove("check");
        }
        v
    }
}

/// Reads an optional parameter with a default: the default when the key is absent, else what
/// `read` makes of it (`None` when it recorded a problem). Read every key before applying `?`
/// to the results, so one bad parameter does not hide the problems of the next.
pub fn param_or<'a, 'i, T>(
    r: &mut TableReader<'a, 'i>,
    key: &str,
    default: T,
    read: impl FnOnce(&mut TableReader<'a, 'i>, &str) -> Option<T>,
) -> Option<T> {
    if r.has(key) { read(r, key) } else { Some(default) }
}

/// A `log` parameter: required, and must name a configured `[logs.NAME]` table.
pub fn read_log_name(r: &mut TableReader<'_, '_>, ctx: &RuleContext) -> Option<String> {
    let name: String = r.require("log")?;
    if ctx.logs.contains(&name) {
        return Some(name);
    }
    let known = if ctx.logs.is_empty() {
        "none is configured".to_owned()
    } else {
        format!("configured: {}", ctx.logs.iter().cloned().collect::<Vec<_>>().join(", "))
    };
    r.problem_key(
        "log",
        format!("`log` in {} names `{name}`, but there is no [logs.{name}] table ({known})", r.name()),
    );
    None
}

/// The standard `Unknown` for a failed source that the whole check needs.
#[must_use]
pub fn unknown_source(err: &crate::model::SourceError) -> Evaluation {
    Evaluation::Unknown(Blind { blind: vec![blind_source(err)], issues: Vec::new() })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::Rule;
    use crate::config::reader::{Problems, SourceText};
    use crate::config::rule::read_rules_file;

    /// Reads a rules file with the logs `run` and `exits` configured; panics on any problem.
    fn read_rules(text: &str) -> Vec<Rule> {
        let src = SourceText::new(Path::new("rules/test.toml"), text.to_owned());
        let problems = Problems::default();
        let ctx = RuleContext { logs: ["run".to_owned(), "exits".to_owned()].into(), ..RuleContext::default() };
        let rules = read_rules_file(&src, &problems, &ctx);
        let shown: Vec<String> = problems.into_sorted().iter().map(ToString::to_string).collect();
        assert!(shown.is_empty(), "{text}\n{shown:#?}");
        rules
    }

    fn rule_text(kind: &str, params: &str) -> String {
        format!("[[rule]]\nid = \"r\"\ncheck = \"{kind}\"\nseverity = \"warning\"\n{params}")
    }

    /// The fewest parameters each kind accepts.
    fn minimal(kind: &str) -> &'static str {
        match kind {
            log_freshness::KIND => "log = \"run\"\nmax_age = \"5m\"\n",
            log_activity::KIND => "log = \"exits\"\nwithin = \"1h\"\n",
            _ => "",
        }
    }

    /// Every parameter of each kind, none at its default.
    fn full(kind: &str) -> &'static str {
        match kind {
            no_short_positions::KIND => "",
            position_match::KIND => "qty_tolerance = \"0.5\"\nprice_tolerance_pct = \"2.5\"\nsettle = \"10s\"\n",
            metadata_complete::KIND => {
                "required = [\"entry_score\", \"/ts\"]\npositive = [\"entry_score\"]\ntimestamps = [\"/ts\"]\n"
            }
            log_freshness::KIND => "log = \"run\"\nmax_age = \"1h 30m\"\n",
            log_activity::KIND => {
                "log = \"exits\"\nwithin = \"2h\"\nmin_count = 3\nmatch = { event = \"EXIT\", \"/n\" = 1, ok = true }\n"
            }
            open_order_hazard::KIND => "stale_after = \"45m\"\nsequence_window = \"90s\"\n",
            exposure_limits::KIND => {
                "max_gross_exposure_pct = \"150\"\nmax_short_exposure_pct = \"0\"\nmax_position_pct = \"8\"\nmax_positions = 30\nmin_position_value = \"500\"\n"
            }
            account_health::KIND => "expect_no_shorting = true\n",
            other => panic!("no full parameters for `{other}`"),
        }
    }

    /// A rule written back from its `params_json` (what `rules list` shows) as TOML.
    fn written_back(rule: &Rule) -> String {
        let mut table = serde_json::Map::new();
        table.insert("id".into(), rule.id.clone().into());
        table.insert("check".into(), rule.check.kind().into());
        table.insert("severity".into(), "warning".into());
        let serde_json::Value::Object(params) = rule.check.params_json() else { panic!("params are a table") };
        table.extend(params);
        let doc = serde_json::json!({ "rule": [table] });
        toml::to_string(&doc).expect("params serialize as TOML")
    }

    #[test]
    fn every_kind_has_codes_and_reads_from_a_minimal_rule() {
        for kind in KINDS {
            assert!(!CheckConfig::codes(kind).is_empty(), "{kind} has no codes");
            let rules = read_rules(&rule_text(kind, minimal(kind)));
            assert_eq!(rules.len(), 1, "{kind}");
            assert_eq!(rules[0].check.kind(), kind);
        }
    }

    #[test]
    fn every_kind_round_trips_through_its_params_json() {
        for kind in KINDS {
            for params in [minimal(kind), full(kind)] {
                let rule = read_rules(&rule_text(kind, params)).remove(0);
                let json = rule.check.params_json();
                for key in json.as_object().expect("a table").keys() {
                    assert!(
                        CheckConfig::param_names(kind).contains(&key.as_str()),
                        "{kind}: `{key}` is not a parameter"
                    );
                }
                let text = written_back(&rule);
                let again = read_rules(&text).remove(0);
                assert_eq!(again.check, rule.check, "{kind}:\n{text}");
            }
        }
    }

    #[test]
    fn full_parameters_are_not_the_defaults() {
        for kind in KINDS.into_iter().filter(|k| *k != no_short_positions::KIND) {
            let min = read_rules(&rule_text(kind, minimal(kind))).remove(0);
            let full = read_rules(&rule_text(kind, full(kind))).remove(0);
            assert_ne!(min.check, full.check, "{kind}");
        }
    }

    #[test]
    fn unknown_kind_is_a_problem_listing_the_kinds() {
        let src = SourceText::new(Path::new("rules/test.toml"), rule_text("no_shorts", ""));
        let problems = Problems::default();
        let rules = read_rules_file(&src, &problems, &RuleContext::default());
        assert!(rules.is_empty());
        let p = problems.into_sorted();
        assert_eq!(p.len(), 1, "{p:#?}");
        assert_eq!(p[0].line, 3);
        assert!(p[0].message.contains("unknown check kind `no_shorts`"), "{}", p[0].message);
        assert!(p[0].message.contains(&KINDS.join(", ")), "{}", p[0].message);
    }
}
