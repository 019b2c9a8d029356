//! `log_activity`: at least `min_count` events (optionally matching `match`) within `within`.
//!
//! Field notes §3: the operator's audit checked that exits were evaluated recently
//! (`logs/exits.jsonl`) and when the last entry happened (`logs/attribution.jsonl`). A loop can
//! be alive (`log_freshness` is green) while one of its duties silently stopped: exits no longer
//! evaluated means positions are held with no one deciding to close them.
//!
//! - `activity_missing`: fewer than `min_count` events in the last `within` (subject: the log).
//!
//! Only the window is read (scanning backwards from the end), never the whole file. A log that
//! cannot be read, or a window the scan did not count, makes the rule unknown. Events dated up to
//! `within` ahead of the watchdog's clock count (clock skew); events further ahead do not: a
//! year-9999 timestamp must not keep the window full for ever.
//!
//! - `log_time_ahead`: the count falls short and matching events are dated more than `within`
//!   ahead: the bot may be busy with a broken clock, or idle; either way the operator must fix
//!   the clock or the mapping before this rule can watch anything.
//!
//! False positives: a quiet market (no exit to evaluate because there is no position: use
//! `when = "market_open_with_positions"`); a `match` value written differently by the bot (a
//! string `"EXIT"` vs `"exit"`: strings compare exactly; numbers compare by value).

use std::sync::Arc;
use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Serialize, Serializer};
use serde_json::{Map, Value, json};

use super::{Absent, Kind, Param, params_json};
use super::{Evaluation, param_or, read_log_name, unknown_field, unknown_source};
use crate::config::RuleContext;
use crate::config::reader::TableReader;
use crate::duration::format as format_duration;
use crate::model::Check;
use crate::model::{FieldRef, Issue, LogQuery, Matcher, Snapshot, Window};

/// The kind name.
pub const KIND: &str = "log_activity";
/// What it checks, its codes and parameters.
pub const SPEC: Kind = Kind {
    name: KIND,
    description: "At least `min_count` matching events in the last `within`. Events up to `within` ahead of the \
                  watchdog's clock count (clock skew); further ahead they never count, and a short count with \
                  such events is `log_time_ahead`.",
    codes: &["activity_missing", "log_time_ahead"],
    params: &[
        Param { name: "log", ty: "string", absent: Absent::Required, doc: "a `[logs.NAME]`" },
        Param { name: "within", ty: "duration", absent: Absent::Required, doc: "" },
        Param { name: "min_count", ty: "integer", absent: Absent::Default("1"), doc: "at least 1" },
        Param {
            name: "match",
            ty: "table",
            absent: Absent::Off,
            doc: "every field must equal (names or `/pointers`; numbers compare by value)",
        },
    ],
    example: "log = \"exits\"\nwithin = \"2h\"\nmin_count = 3\nmatch = { event = \"EXIT\", \"/n\" = 1, ok = true }\n",
    read: |r, ctx| Some(Arc::new(Params::read(r, ctx)?)),
};

/// Parameters.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Params {
    /// The `[logs.NAME]` to count in. Required.
    pub log: String,
    /// How far back from now to count. Required.
    #[serde(with = "crate::duration::serde_humantime")]
    pub within: Duration,
    /// At least this many events must be in the window. Default `1`; must be at least 1.
    pub min_count: u64,
    /// Only events whose fields all equal these count (`match = { event = "EXIT" }`; keys are
    /// field names or `/pointers`). Default: every event counts.
    #[serde(rename = "match", serialize_with = "matcher_as_table", skip_serializing_if = "Matcher::is_empty")]
    pub matcher: Matcher,
}

/// Writes the matcher as the rule writes it: a table of field → value.
fn matcher_as_table<S: Serializer>(m: &Matcher, s: S) -> Result<S::Ok, S::Error> {
    let table: Map<String, Value> = m.fields.iter().map(|(f, v)| (f.as_str().to_owned(), v.clone())).collect();
    table.serialize(s)
}

fn read_matcher(r: &mut TableReader<'_, '_>) -> Option<Matcher> {
    let Some(table) = r.get::<Map<String, Value>>("match") else {
        // Absent: match everything. Present but not a table: `get` recorded the problem.
        return (!r.has("match")).then(Matcher::default);
    };
    let mut fields = Vec::with_capacity(table.len());
    let mut ok = true;
    for (key, value) in table {
        match FieldRef::parse(&key) {
            Ok(f) => fields.push((f, value)),
            Err(e) => {
                r.problem_key("match", format!("`match` in {}: {e}", r.name()));
                ok = false;
            }
        }
    }
    ok.then_some(Matcher { fields })
}

fn read_min_count(r: &mut TableReader<'_, '_>, key: &str) -> Option<u64> {
    let n: i64 = r.get(key)?;
    match u64::try_from(n) {
        Ok(n) if n >= 1 => Some(n),
        _ => {
            r.problem_key(key, format!("`{key}` in {} must be at least 1 (got {n})", r.name()));
            None
        }
    }
}

impl Params {
    /// Reads the parameters.
    pub fn read(r: &mut TableReader<'_, '_>, ctx: &RuleContext) -> Option<Self> {
        let log = read_log_name(r, ctx);
        let within = r.require_duration("within");
        let min_count = param_or(r, "min_count", 1, read_min_count);
        let matcher = read_matcher(r);
        Some(Self { log: log?, within: within?, min_count: min_count?, matcher: matcher? })
    }

    /// The window this rule counts in.
    #[must_use]
    pub fn window(&self) -> Window {
        Window { within: self.within, matcher: self.matcher.clone() }
    }
}

impl Check for Params {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn params(&self) -> serde_json::Value {
        params_json(self)
    }

    /// `activity_missing` when the window holds fewer than `min_count` events.
    fn evaluate(&self, snap: &Snapshot, _now: DateTime<Utc>) -> Evaluation {
        let summary = match snap.logs.get(&self.log) {
            None => {
                // The collector reads every configured log, so this is a wiring bug: named, not silent.
                return unknown_field(
                    &format!("log:{}", self.log),
                    "log",
                    Value::Null,
                    format!("log `{}` was not collected", self.log),
                );
            }
            Some(Err(e)) => return unknown_source(e),
            Some(Ok(s)) => s,
        };
        let window = self.window();
        let Some(counted) = summary.counts.iter().find(|c| c.window == window) else {
            return unknown_field(
                &format!("log:{}", self.log),
                "within",
                Value::String(format_duration(self.within)),
                format!("log `{}`: the rule's window was not scanned", self.log),
            );
        };
        let count = counted.count;
        if count >= self.min_count {
            return Evaluation::Checked(vec![]);
        }
        let log = &self.log;
        let within = format_duration(self.within);
        let what = if self.matcher.is_empty() {
            "events".to_owned()
        } else {
            let parts: Vec<String> = self.matcher.fields.iter().map(|(f, v)| format!("{f} = {v}")).collect();
            format!("events matching {}", parts.join(", "))
        };
        // Events dated beyond a window ahead of now are not activity, and not plainly its
        // absence either: the bot may be busy with a broken clock. Their own finding.
        if counted.ahead > 0 {
            let newest =
                summary.newest_event.map_or_else(String::new, |t| format!(", the newest at {}", t.to_rfc3339()));
            return Evaluation::Checked(vec![Issue {
                code: "log_time_ahead",
                subject: log.clone(),
                message: format!(
                    "log {log} has {} {what} dated more than {within} ahead of the watchdog's clock{newest}: \
                     bad timestamps or a clock difference ({count} within the last {within}, expected at least {})",
                    counted.ahead, self.min_count
                ),
                observed: json!({
                    "count": count,
                    "ahead": counted.ahead,
                    "newest_event": summary.newest_event.map(|t| t.to_rfc3339()),
                }),
                expected: json!({ "min_count": self.min_count, "within": within }),
            }]);
        }
        let newest = summary.newest_event.map_or_else(
            || "no timestamped event in the file".to_owned(),
            |t| format!("newest event {}", t.to_rfc3339()),
        );
        let matcher = serde_json::to_value(MatchJson(&self.matcher)).unwrap_or(Value::Null);
        Evaluation::Checked(vec![Issue {
            code: "activity_missing",
            subject: log.clone(),
            message: format!(
                "log {log} has {count} {what} within the last {within}, expected at least {} ({newest})",
                self.min_count
            ),
            observed: json!({
                "count": count,
                "newest_event": summary.newest_event.map(|t| t.to_rfc3339()),
            }),
            expected: json!({ "min_count": self.min_count, "within": within, "match": matcher }),
        }])
    }

    /// Asks for its window in its log.
    fn add_log_needs(&self, queries: &mut BTreeMap<String, LogQuery>) {
        queries.entry(self.log.clone()).or_default().add_window(self.window());
    }
}

/// The matcher as a JSON table, for `expected`.
struct MatchJson<'m>(&'m Matcher);

impl Serialize for MatchJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        matcher_as_table(self.0, s)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::checks::testkit::{
        SnapshotBuilder, assert_problems, codes, issues, log_summary, read_ok, read_params, unknown,
    };
    use crate::model::WindowCount;

    fn exits() -> Params {
        read_ok("log = \"exits\"\nwithin = \"1h\"\nmatch = { event = \"EXIT\" }\n", Params::read, &SPEC)
    }

    fn eval(p: &Params, b: SnapshotBuilder) -> Evaluation {
        let snap = b.build();
        p.evaluate(&snap, snap.taken_at)
    }

    fn counted(p: &Params, count: u64) -> SnapshotBuilder {
        SnapshotBuilder::new()
            .log("exits", log_summary(Some(7200), vec![WindowCount { window: p.window(), count, ahead: 0 }]))
    }

    #[test]
    fn counts_against_min_count() {
        // (min_count, count in the window, finding expected)
        for (min, count, fires) in [(1, 0, true), (1, 1, false), (1, 5, false), (3, 2, true), (3, 3, false)] {
            let p = Params { min_count: min, ..exits() };
            let got = codes(eval(&p, counted(&p, count)));
            let want = if fires { vec![("activity_missing", "exits".to_owned())] } else { vec![] };
            assert_eq!(got, want, "min {min} count {count}");
        }
    }

    #[test]
    fn events_far_ahead_of_the_clock_with_a_short_count_are_a_finding() {
        let p = exits();
        let ahead = |count, ahead| {
            SnapshotBuilder::new()
                .log("exits", log_summary(Some(-7200), vec![WindowCount { window: p.window(), count, ahead }]))
        };
        let found = issues(eval(&p, ahead(0, 3)));
        let i = &found[0];
        assert_eq!((found.len(), i.code, i.subject.as_str()), (1, "log_time_ahead", "exits"));
        let why = &i.message;
        assert!(
            why.starts_with(
                "log exits has 3 events matching event = \"EXIT\" dated more than 1h ahead of the watchdog's clock"
            ),
            "{why}"
        );
        assert!(why.contains("(0 within the last 1h, expected at least 1)"), "{why}");
        assert_eq!((i.observed["count"].as_u64(), i.observed["ahead"].as_u64()), (Some(0), Some(3)));
        // Enough events in the window: checked and fine, whatever else the log holds.
        assert!(issues(eval(&p, ahead(1, 3))).is_empty());
    }

    #[test]
    fn finding_carries_count_newest_and_expectation() {
        let p = exits();
        let i = &issues(eval(&p, counted(&p, 0)))[0];
        assert_eq!(i.observed, json!({"count": 0, "newest_event": "2026-11-20T13:00:00+00:00"}));
        assert_eq!(i.expected, json!({"min_count": 1, "within": "1h", "match": {"event": "EXIT"}}));
        assert_eq!(
            i.message,
            "log exits has 0 events matching event = \"EXIT\" within the last 1h, expected at least 1 (newest event 2026-11-20T13:00:00+00:00)"
        );
    }

    #[test]
    fn unknown_when_the_log_or_the_window_is_missing() {
        let p = exits();
        assert_eq!(unknown(eval(&p, SnapshotBuilder::new().log_unavailable("exits"))), "log:exits is unavailable");
        let other = Window { within: Duration::from_secs(60), matcher: Matcher::default() };
        let b = SnapshotBuilder::new()
            .log("exits", log_summary(Some(1), vec![WindowCount { window: other, count: 9, ahead: 0 }]));
        assert!(unknown(eval(&p, b)).contains("window was not scanned"));
        assert!(unknown(eval(&p, SnapshotBuilder::new())).contains("not collected"));
    }

    #[test]
    fn asks_for_its_window_once() {
        let mut q = BTreeMap::new();
        exits().add_log_needs(&mut q);
        exits().add_log_needs(&mut q);
        Params { within: Duration::from_secs(60), ..exits() }.add_log_needs(&mut q);
        let windows = &q["exits"].windows;
        assert_eq!(windows.len(), 2);
        assert_eq!(windows[0], exits().window());
        assert_eq!(q["exits"].horizon(), Duration::from_secs(3600));
    }

    #[test]
    fn reads_parameters_and_defaults() {
        let p = read_ok("log = \"exits\"\nwithin = \"1h\"\n", Params::read, &SPEC);
        assert_eq!(p.min_count, 1);
        assert!(p.matcher.is_empty());
        let p = read_ok(
            "log = \"run\"\nwithin = \"1d\"\nmin_count = 12\nmatch = { event = \"CYCLE\", \"/meta/ok\" = true }\n",
            Params::read,
            &SPEC,
        );
        assert_eq!(p.min_count, 12);
        assert!(p.matcher.matches(&json!({"event": "CYCLE", "meta": {"ok": true}})));
        assert!(!p.matcher.matches(&json!({"event": "CYCLE", "meta": {"ok": false}})));
    }

    #[test]
    fn reports_every_parameter_problem_with_its_line() {
        let got = read_params(
            "log = \"trades\"\nwithin = \"an hour\"\nmin_count = 0\nmatch = { \"\" = 1 }\n",
            Params::read,
            &SPEC,
        );
        assert!(got.0.is_none());
        assert_problems(
            &got,
            &[
                (1, "no [logs.trades] table"),
                (2, "is not a duration"),
                (3, "`min_count` in rule `t` must be at least 1 (got 0)"),
                (4, "a field name cannot be empty"),
            ],
        );
        let got =
            read_params("log = \"run\"\nwithin = \"1h\"\nmin_count = -2\nmatch = \"EXIT\"\n", Params::read, &SPEC);
        assert_problems(&got, &[(3, "must be at least 1 (got -2)"), (4, "`match` in rule `t`")]);
    }
}
