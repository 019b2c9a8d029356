//! How a check says it cannot see: `rule_unknown` issues naming the failed source or the
//! missing or impossible field, never a guess and never a failed source read as empty.

use serde_json::{Value, json};

use crate::model::{Blind, Evaluation, Issue, SourceError};

/// The finding code of a rule that could not be evaluated (in whole or in part). It carries the
/// rule's own severity: a blind rule weighs as much as that rule violated.
pub const RULE_UNKNOWN: &str = "rule_unknown";

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
pub fn blind_source(err: &SourceError) -> Issue {
    Issue {
        code: RULE_UNKNOWN,
        subject: err.source.clone(),
        message: format!("{} is {}", err.source, err.kind.status()),
        observed: json!({ "source": err.source, "status": err.kind.status() }),
        expected: json!({ "source": err.source, "status": "ok" }),
    }
}

/// The standard `Unknown` for a failed source that the whole check needs.
#[must_use]
pub fn unknown_source(err: &SourceError) -> Evaluation {
    Evaluation::Unknown(Blind { blind: vec![blind_source(err)], issues: Vec::new() })
}
