//! `log_freshness`: the newest event of a log is younger than `max_age` (main-loop liveness).
//!
//! Field notes §3: the operator's audit called the main loop "active" only if the last cycle
//! in `logs/run.jsonl` was under 5 minutes old. A bot that hangs or crashes keeps its positions
//! open with nobody managing them; its log simply stops growing.
//!
//! - `log_stale`: the newest timestamped event is older than `max_age`;
//! - `log_missing`: the file has no timestamped event at all (empty, or only lines without a
//!   readable time field).
//!
//! - `log_time_ahead`: the newest event is more than `max_age` ahead of the watchdog's clock
//!   (`9999-12-31`, milliseconds read as seconds, local time without an offset). Liveness cannot
//!   be judged from such a log, and trusting the line would keep a dead loop "fresh" for years;
//!   a finding, not a silent unknown, because the operator must fix the clock or the mapping
//!   before this rule can watch anything. Ahead by at most `max_age` is fresh (clock skew).
//!
//! A log that cannot be read at all is a source failure: this rule is then unknown.
//!
//! False positives: a bot that logs only when something happens (use `log_activity` with a
//! heartbeat event instead, or a `max_age` above its quietest interval); outside market hours a
//! loop may sleep (use `when = "market_open"`).

use std::sync::Arc;
use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};

use super::{Absent, Kind, Param, params_json};
use super::{Evaluation, read_log_name, unknown_field, unknown_source};
use crate::config::RuleContext;
use crate::config::reader::TableReader;
use crate::duration::format as format_duration;
use crate::model::Check;
use crate::model::{Issue, LogQuery, Snapshot};

/// The kind name.
pub const KIND: &str = "log_freshness";
/// What it checks, its codes and parameters.
pub const SPEC: Kind = Kind {
    name: KIND,
    description: "The newest event of a log is younger than `max_age` (main-loop liveness); `log_missing` when \
                  the log has no timestamped event at all; `log_time_ahead` when the newest event is more than \
                  `max_age` ahead of the watchdog's clock (a bad timestamp, a wrong unit, local time read as UTC: \
                  liveness cannot be judged until it is fixed).",
    codes: &["log_stale", "log_missing", "log_time_ahead"],
    params: &[
        Param { name: "log", ty: "string", absent: Absent::Required, doc: "a `[logs.NAME]`" },
        Param { name: "max_age", ty: "duration", absent: Absent::Required, doc: "" },
    ],
    example: "log = \"run\"\nmax_age = \"1h 30m\"\n",
    read: |r, ctx| Some(Arc::new(Params::read(r, ctx)?)),
};

/// Parameters.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Params {
    /// The `[logs.NAME]` to watch. Required.
    pub log: String,
    /// The newest event must be at most this old. Required.
    #[serde(with = "crate::duration::serde_humantime")]
    pub max_age: Duration,
}

impl Params {
    /// Reads the parameters.
    pub fn read(r: &mut TableReader<'_, '_>, ctx: &RuleContext) -> Option<Self> {
        let log = read_log_name(r, ctx);
        let max_age = r.require_duration("max_age");
        Some(Self { log: log?, max_age: max_age? })
    }
}

impl Check for Params {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn params(&self) -> serde_json::Value {
        params_json(self)
    }

    /// `log_stale` or `log_missing` for the log, or nothing.
    fn evaluate(&self, snap: &Snapshot, now: DateTime<Utc>) -> Evaluation {
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
        let log = &self.log;
        let max_age = format_duration(self.max_age);
        let Some(newest) = summary.newest_event else {
            return Evaluation::Checked(vec![Issue {
                code: "log_missing",
                subject: log.clone(),
                message: format!("log {log} ({}) has no timestamped event", summary.file),
                observed: json!({ "newest_event": Value::Null, "file": summary.file, "file_len": summary.file_len }),
                expected: json!({ "max_age": max_age }),
            }]);
        };
        // An event slightly ahead of our clock is fresh. One further ahead than `max_age` says
        // nothing about liveness (a wrong unit, local time read as UTC, a corrupt line), and
        // trusting it would keep a dead loop "fresh" until that date.
        if let Ok(ahead) = (newest - now).to_std()
            && ahead > self.max_age
        {
            return Evaluation::Checked(vec![Issue {
                code: "log_time_ahead",
                subject: log.clone(),
                message: format!(
                    "log {log}'s newest event is {} ahead of the watchdog's clock (at {}): a bad timestamp or a \
                     clock difference; liveness cannot be judged from it",
                    format_duration(Duration::from_secs(ahead.as_secs())),
                    newest.to_rfc3339()
                ),
                observed: json!({ "newest_event": newest.to_rfc3339(), "ahead_secs": ahead.as_secs() }),
                expected: json!({ "max_ahead": max_age }),
            }]);
        }
        let age = (now - newest).to_std().unwrap_or_default();
        if age <= self.max_age {
            return Evaluation::Checked(vec![]);
        }
        let age_secs = age.as_secs();
        Evaluation::Checked(vec![Issue {
            code: "log_stale",
            subject: log.clone(),
            message: format!(
                "log {log}'s newest event is {} old (at {}), older than {max_age}",
                format_duration(Duration::from_secs(age_secs)),
                newest.to_rfc3339()
            ),
            observed: json!({ "newest_event": newest.to_rfc3339(), "age_secs": age_secs }),
            expected: json!({ "max_age": max_age, "max_age_secs": self.max_age.as_secs() }),
        }])
    }

    /// Makes sure the log is scanned (its newest event is always found).
    fn add_log_needs(&self, queries: &mut BTreeMap<String, LogQuery>) {
        queries.entry(self.log.clone()).or_default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::testkit::{
        SnapshotBuilder, assert_problems, codes, issues, log_summary, read_ok, read_params, unknown,
    };

    fn params() -> Params {
        Params { log: "run".into(), max_age: Duration::from_secs(300) }
    }

    fn eval(b: SnapshotBuilder) -> Evaluation {
        let snap = b.build();
        params().evaluate(&snap, snap.taken_at)
    }

    #[test]
    fn freshness_table() {
        // (newest event age in seconds, expected code)
        let cases: Vec<(Option<i64>, Option<&str>)> = vec![
            (Some(0), None),
            (Some(299), None),
            (Some(300), None),
            (Some(301), Some("log_stale")),
            (Some(3 * 3600), Some("log_stale")),
            (Some(-30), None),
            (None, Some("log_missing")),
        ];
        for (age, want) in cases {
            let got = codes(eval(SnapshotBuilder::new().log("run", log_summary(age, vec![]))));
            let want: Vec<(&str, String)> = want.map(|c| (c, "run".to_owned())).into_iter().collect();
            assert_eq!(got, want, "age {age:?}");
        }
    }

    #[test]
    fn an_event_far_in_the_future_is_a_finding_never_fresh() {
        let far = SnapshotBuilder::new().log("run", log_summary(Some(-301), vec![]));
        let i = &issues(eval(far))[0];
        assert_eq!((i.code, i.subject.as_str()), ("log_time_ahead", "run"));
        assert!(
            i.message.starts_with("log run's newest event is 5m 1s ahead of the watchdog's clock"),
            "{}",
            i.message
        );
        assert_eq!(i.observed["ahead_secs"], 301);
        let mut year_9999 = log_summary(Some(0), vec![]);
        year_9999.newest_event = Some(DateTime::parse_from_rfc3339("9999-12-31T23:59:59Z").unwrap().to_utc());
        let why = &issues(eval(SnapshotBuilder::new().log("run", year_9999)))[0].message;
        assert!(why.contains("(at 9999-12-31T23:59:59+00:00): a bad timestamp or a clock difference"), "{why}");
        // Within max_age ahead: clock skew, fresh.
        assert!(issues(eval(SnapshotBuilder::new().log("run", log_summary(Some(-300), vec![])))).is_empty());
    }

    #[test]
    fn stale_finding_carries_time_and_age() {
        let i = &issues(eval(SnapshotBuilder::new().log("run", log_summary(Some(750), vec![]))))[0];
        assert_eq!(i.observed["newest_event"], "2026-11-20T14:47:30+00:00");
        assert_eq!(i.observed["age_secs"], 750);
        assert_eq!(i.expected["max_age"], "5m");
        assert_eq!(i.message, "log run's newest event is 12m 30s old (at 2026-11-20T14:47:30+00:00), older than 5m");
    }

    #[test]
    fn unreadable_or_uncollected_log_is_unknown() {
        assert_eq!(unknown(eval(SnapshotBuilder::new().log_unavailable("run"))), "log:run is unavailable");
        assert!(unknown(eval(SnapshotBuilder::new())).contains("not collected"));
    }

    #[test]
    fn asks_for_its_log() {
        let mut q = BTreeMap::new();
        params().add_log_needs(&mut q);
        assert_eq!(q.get("run"), Some(&LogQuery::default()));
    }

    #[test]
    fn reads_parameters() {
        assert_eq!(read_ok("log = \"run\"\nmax_age = \"5m\"\n", Params::read, &SPEC), params());
    }

    #[test]
    fn reports_every_parameter_problem_with_its_line() {
        let got = read_params("log = \"loop\"\nmax_age = \"five minutes\"\n", Params::read, &SPEC);
        assert!(got.0.is_none());
        assert_problems(&got, &[(1, "no [logs.loop] table (configured: exits, run)"), (2, "is not a duration")]);
        let got = read_params("max_age = 5\n", Params::read, &SPEC);
        assert_problems(&got, &[(1, "missing the required key `log`"), (1, "`max_age` in rule `t` must be a string")]);
        let got = read_params("log = \"run\"\n", Params::read, &SPEC);
        assert_problems(&got, &[(1, "missing the required key `max_age`")]);
    }
}
