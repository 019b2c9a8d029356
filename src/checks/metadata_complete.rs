//! `metadata_complete`: every broker position has complete metadata in the bot's files.
//!
//! Field notes §3: the operator's audit checked that every broker position had an entry in
//! `state/position_metadata.json`, with `entry_score` present and above zero and `components`
//! and `entry_ts` preserved. A bot that loses this metadata exits on the wrong rules (an exit
//! evaluation reads the entry score and time) or not at all.
//!
//! - `metadata_missing`: a broker position has no metadata entry;
//! - `metadata_incomplete`: its entry has problems; all of them are collected into one finding
//!   per symbol (`observed.problems`, by field): a `required` field missing or null, a
//!   `positive` field missing, not a number, or not above zero, a `timestamps` field missing,
//!   unparseable, or more than 60 s in the future (allowing for clock skew).
//!
//! Metadata the broker has no position for is `position_match`'s business (orphans).
//!
//! False positives: metadata written a moment after the fill (hold the rule with `for`); a bot
//! that writes local time without an offset (timestamps without an offset are read as UTC and
//! can look hours in the future or past).

use std::sync::Arc;
use chrono::{DateTime, Duration, Utc};
use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::{Map, Value, json};

use super::{Absent, Kind, Param, params_json};
use super::{Evaluation, unknown_field, unknown_source};
use crate::config::RuleContext;
use crate::config::reader::TableReader;
use crate::model::Check;
use crate::model::{FieldRef, Issue, Snapshot};
use crate::{num, timestamp};

/// The kind name.
pub const KIND: &str = "metadata_complete";
/// What it checks, its codes and parameters.
pub const SPEC: Kind = Kind {
    name: KIND,
    description: "Every broker position has metadata. Fields are names or, with a leading `/`, JSON pointers.",
    codes: &["metadata_missing", "metadata_incomplete"],
    params: &[
        Param { name: "required", ty: "list of fields", absent: Absent::Default("[]"), doc: "present and not null" },
        Param { name: "positive", ty: "list of fields", absent: Absent::Default("[]"), doc: "numbers above zero" },
        Param {
            name: "timestamps",
            ty: "list of fields",
            absent: Absent::Default("[]"),
            doc: "must parse and not be in the future",
        },
    ],
    example: "required = [\"entry_score\", \"/ts\"]\npositive = [\"entry_score\"]\ntimestamps = [\"/ts\"]\n",
    read: |r, ctx| Some(Arc::new(Params::read(r, ctx)?)),
};

/// How far in the future a timestamp may be before it is a problem (clock skew).
const FUTURE_SKEW_SECS: i64 = 60;

/// Parameters. Fields are names (`entry_score`) or, with a leading `/`, JSON pointers into the
/// symbol's metadata (`/scores/entry`).
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Params {
    /// Fields that must be present and not null. Default: none.
    pub required: Vec<FieldRef>,
    /// Fields that must be numbers (or numeric strings) above zero. Default: none.
    pub positive: Vec<FieldRef>,
    /// Fields that must be timestamps (RFC 3339, ISO 8601 or epoch), not in the future.
    /// Default: none.
    pub timestamps: Vec<FieldRef>,
}

fn read_fields(r: &mut TableReader<'_, '_>, key: &str) -> Option<Vec<FieldRef>> {
    let Some(texts) = r.get::<Vec<String>>(key) else {
        // Absent is the default; a wrong type was recorded by `get`.
        return (!r.has(key)).then(Vec::new);
    };
    let mut fields = Vec::with_capacity(texts.len());
    let mut ok = true;
    for t in &texts {
        match FieldRef::parse(t) {
            Ok(f) => fields.push(f),
            Err(e) => {
                r.problem_key(key, format!("`{key}` in {}: {e}", r.name()));
                ok = false;
            }
        }
    }
    ok.then_some(fields)
}

impl Params {
    /// Reads the parameters.
    pub fn read(r: &mut TableReader<'_, '_>, _ctx: &RuleContext) -> Option<Self> {
        let required = read_fields(r, "required");
        let positive = read_fields(r, "positive");
        let timestamps = read_fields(r, "timestamps");
        Some(Self { required: required?, positive: positive?, timestamps: timestamps? })
    }


    /// Every problem of one symbol's metadata, as (field, what is wrong), at most one per field
    /// (the first found: a field both required and positive that is missing is "missing" once).
    fn problems(&self, meta: &Value, now: DateTime<Utc>) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        let mut push = |field: &FieldRef, why: String| {
            if !out.iter().any(|(f, _)| f == field.as_str()) {
                out.push((field.as_str().to_owned(), why));
            }
        };
        for f in &self.required {
            match f.get(meta) {
                None => push(f, "is missing".into()),
                Some(Value::Null) => push(f, "is null".into()),
                Some(_) => {}
            }
        }
        for f in &self.positive {
            match f.get(meta).map(num::decimal_from_json) {
                None => push(f, "is missing".into()),
                Some(Err(e)) => push(f, e),
                Some(Ok(v)) if v <= Decimal::ZERO => push(f, format!("is {v}, expected above 0")),
                Some(Ok(_)) => {}
            }
        }
        for f in &self.timestamps {
            match f.get(meta).map(timestamp::timestamp_from_json) {
                None => push(f, "is missing".into()),
                Some(Err(e)) => push(f, e),
                // `t - now`, not `now + skew`: a difference of two times never overflows.
                Some(Ok(t)) if t - now > Duration::seconds(FUTURE_SKEW_SECS) => {
                    push(f, format!("is {} in the future ({})", age_text(t - now), t.to_rfc3339()));
                }
                Some(Ok(_)) => {}
            }
        }
        out
    }
}

impl Check for Params {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn params(&self) -> serde_json::Value {
        params_json(self)
    }

    /// One `metadata_missing` or `metadata_incomplete` per broker position that needs it.
    fn evaluate(&self, snap: &Snapshot, now: DateTime<Utc>) -> Evaluation {
        let positions = match &snap.broker.positions {
            Ok(p) => p,
            Err(e) => return unknown_source(e),
        };
        let metadata = match &snap.bot.metadata {
            None => {
                return unknown_field(
                    "metadata",
                    "[bot.metadata]",
                    Value::Null,
                    "no [bot.metadata] mapping is configured, so metadata cannot be checked".into(),
                );
            }
            Some(Err(e)) => return unknown_source(e),
            Some(Ok(m)) => m,
        };
        let mut issues = Vec::new();
        for p in positions {
            let symbol = &p.symbol;
            let Some(meta) = metadata.get(symbol) else {
                issues.push(Issue {
                    code: "metadata_missing",
                    subject: symbol.to_string(),
                    message: format!("{symbol} is held at the broker ({} {}) but has no metadata", p.side, p.qty.abs()),
                    observed: json!({ "metadata": Value::Null, "broker_qty": p.qty.to_string() }),
                    expected: json!({ "metadata": "present" }),
                });
                continue;
            };
            let problems = self.problems(meta, now);
            if problems.is_empty() {
                continue;
            }
            let listed: Vec<String> = problems.iter().map(|(f, why)| format!("{f} {why}")).collect();
            let by_field: Map<String, Value> = problems.into_iter().map(|(f, why)| (f, Value::String(why))).collect();
            issues.push(Issue {
                code: "metadata_incomplete",
                subject: symbol.to_string(),
                message: format!("{symbol} metadata is incomplete: {}", listed.join("; ")),
                observed: json!({ "problems": by_field }),
                expected: json!({
                    "required": self.required,
                    "positive": self.positive,
                    "timestamps": self.timestamps,
                }),
            });
        }
        Evaluation::Checked(issues)
    }
}

fn age_text(d: Duration) -> String {
    crate::duration::format(std::time::Duration::from_secs(d.num_seconds().unsigned_abs()))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::checks::testkit::{SnapshotBuilder, assert_problems, codes, issues, read_ok, read_params, unknown};

    fn audit_params() -> Params {
        read_ok(
            "required = [\"entry_score\", \"entry_ts\", \"components\"]\npositive = [\"entry_score\"]\ntimestamps = [\"entry_ts\"]\n",
            Params::read,
            &SPEC,
        )
    }

    fn eval(p: &Params, b: SnapshotBuilder) -> Evaluation {
        let snap = b.build();
        p.evaluate(&snap, snap.taken_at)
    }

    fn good() -> Value {
        json!({"entry_score": "0.82", "entry_ts": "2026-11-20T14:30:00+00:00", "components": {"rsi": 31}})
    }

    /// (case, metadata, expected (field, message fragment) pairs).
    type Case = (&'static str, Value, Vec<(&'static str, &'static str)>);

    #[test]
    fn complete_metadata_is_ok() {
        let b = SnapshotBuilder::new().position("AAPL", "10", "180").metadata("AAPL", good());
        assert_eq!(eval(&audit_params(), b), Evaluation::Checked(vec![]));
        // Metadata for symbols not held is not this check's business.
        let b = SnapshotBuilder::new().metadata("OKTA", json!({}));
        assert_eq!(eval(&audit_params(), b), Evaluation::Checked(vec![]));
    }

    #[test]
    fn missing_metadata_per_position() {
        let b =
            SnapshotBuilder::new().position("AAPL", "10", "180").position("CHWY", "-5", "25").metadata("AAPL", good());
        assert_eq!(codes(eval(&audit_params(), b)), vec![("metadata_missing", "CHWY".to_owned())]);
        let b = SnapshotBuilder::new().position("AAPL", "10", "180").metadata_empty();
        assert_eq!(codes(eval(&Params::default(), b)), vec![("metadata_missing", "AAPL".to_owned())]);
    }

    #[test]
    fn each_problem_by_field() {
        let cases: Vec<Case> = vec![
            (
                "missing everything",
                json!({}),
                vec![("components", "is missing"), ("entry_score", "is missing"), ("entry_ts", "is missing")],
            ),
            (
                "nulls",
                json!({"entry_score": null, "entry_ts": null, "components": null}),
                vec![("components", "is null"), ("entry_score", "is null"), ("entry_ts", "is null")],
            ),
            (
                "zero score",
                json!({"entry_score": 0, "entry_ts": 1_763_650_000, "components": []}),
                vec![("entry_score", "is 0, expected above 0")],
            ),
            (
                "negative score as a string",
                json!({"entry_score": "-0.5", "entry_ts": "2026-11-20T14:00:00", "components": []}),
                vec![("entry_score", "is -0.5, expected above 0")],
            ),
            (
                "score not a number",
                json!({"entry_score": "high", "entry_ts": "2026-11-20T14:00:00Z", "components": []}),
                vec![("entry_score", "`high` is not a decimal number")],
            ),
            (
                "unparseable time",
                json!({"entry_score": 1, "entry_ts": "yesterday", "components": []}),
                vec![("entry_ts", "`yesterday` is not a timestamp")],
            ),
            (
                "time in the future",
                json!({"entry_score": 1, "entry_ts": "2026-11-20T16:00:00Z", "components": []}),
                vec![("entry_ts", "is 1h in the future")],
            ),
            (
                "time within clock skew",
                json!({"entry_score": 1, "entry_ts": "2026-11-20T15:01:00Z", "components": []}),
                vec![],
            ),
        ];
        for (case, meta, want) in cases {
            let b = SnapshotBuilder::new().position("AAPL", "10", "180").metadata("AAPL", meta);
            let found = issues(eval(&audit_params(), b));
            if want.is_empty() {
                assert!(found.is_empty(), "{case}: {found:#?}");
                continue;
            }
            assert_eq!(found.len(), 1, "{case}: one finding per symbol");
            assert_eq!((found[0].code, found[0].subject.as_str()), ("metadata_incomplete", "AAPL"), "{case}");
            let problems = found[0].observed["problems"].as_object().unwrap();
            assert_eq!(problems.len(), want.len(), "{case}: {problems:?}");
            for (field, fragment) in want {
                let why = problems[field].as_str().unwrap();
                assert!(why.contains(fragment), "{case}: {field} {why}");
                assert!(found[0].message.contains(&format!("{field} {why}")), "{case}: {}", found[0].message);
            }
        }
    }

    #[test]
    fn pointers_reach_nested_fields() {
        let p = read_ok("required = [\"/scores/entry\"]\npositive = [\"/scores/entry\"]\n", Params::read, &SPEC);
        let b = SnapshotBuilder::new().position("AAPL", "10", "180").metadata("AAPL", json!({"scores": {"entry": 2}}));
        assert_eq!(eval(&p, b), Evaluation::Checked(vec![]));
        let b = SnapshotBuilder::new().position("AAPL", "10", "180").metadata("AAPL", json!({"scores": {}}));
        let found = issues(eval(&p, b));
        assert_eq!(found[0].observed["problems"], json!({"/scores/entry": "is missing"}));
    }

    #[test]
    fn unknown_without_positions_or_metadata() {
        let b = SnapshotBuilder::new().broker_positions_unavailable().metadata_empty();
        assert!(unknown(eval(&audit_params(), b)).contains("broker:positions"));
        let b = SnapshotBuilder::new().position("AAPL", "10", "180");
        assert_eq!(
            unknown(eval(&audit_params(), b)),
            "no [bot.metadata] mapping is configured, so metadata cannot be checked"
        );
        let b = SnapshotBuilder::new().position("AAPL", "10", "180").metadata_malformed();
        assert_eq!(unknown(eval(&audit_params(), b)), "metadata is malformed");
    }

    #[test]
    fn reads_parameters_and_defaults() {
        assert_eq!(read_ok("", Params::read, &SPEC), Params::default());
        let p = audit_params();
        assert_eq!(p.required.len(), 3);
        assert_eq!(p.positive, vec![FieldRef::Name("entry_score".into())]);
    }

    #[test]
    fn reports_every_parameter_problem_with_its_line() {
        let got = read_params(
            "required = \"entry_score\"\npositive = [\"\"]\ntimestamps = [1]\nrequire = []\n",
            Params::read,
            &SPEC,
        );
        assert!(got.0.is_none());
        assert_problems(
            &got,
            &[
                (1, "`required` in rule `t`"),
                (2, "a field name cannot be empty"),
                (3, "`timestamps` in rule `t`"),
                (4, "did you mean `required`?"),
            ],
        );
    }
}
