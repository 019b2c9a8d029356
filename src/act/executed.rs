//! `Executed`: what an action's execution produced, before it becomes an outcome and a report.

use serde_json::Value;

use super::Status;

/// What an action's execution produced.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Executed {
    pub(crate) status: Status,
    pub(crate) detail: String,
    pub(crate) steps: Vec<String>,
    pub(crate) after: Value,
    pub(crate) diff: Option<String>,
    pub(crate) exec: Option<Value>,
}

impl Executed {
    /// `failed` when anything failed, else `unconfirmed` when an effect was not seen, else
    /// `done`; the detail lists failures, then unconfirmed effects, then what was done.
    pub(crate) fn from_parts(log: Vec<String>, failed: Vec<String>, unconfirmed: Vec<String>, after: Value) -> Self {
        let status = if !failed.is_empty() {
            Status::Failed
        } else if !unconfirmed.is_empty() {
            Status::Unconfirmed
        } else {
            Status::Done
        };
        let detail = failed.iter().chain(&unconfirmed).chain(&log).cloned().collect::<Vec<_>>().join("; ");
        Self { status, detail, steps: log, after, diff: None, exec: None }
    }

    pub(crate) fn failed(why: String) -> Self {
        Self::from_parts(Vec::new(), vec![why], Vec::new(), Value::Null)
    }
}
