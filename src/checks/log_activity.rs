//! `log_activity`: STUB, to be written (see design.md section 4).

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::Evaluation;
use crate::config::RuleContext;
use crate::config::reader::TableReader;
use crate::model::Snapshot;

/// The kind name.
pub const KIND: &str = "log_activity";
/// The codes it emits.
pub const CODES: &[&str] = &["activity_missing"];
/// Its parameters.
pub const PARAMS: &[&str] = &[];

/// Parameters.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Params {}

impl Params {
    /// Reads the parameters.
    pub fn read(_r: &mut TableReader<'_, '_>, _ctx: &RuleContext) -> Option<Self> {
        Some(Self {})
    }

    /// Runs the check.
    #[must_use]
    pub fn evaluate(&self, _snap: &Snapshot, _now: DateTime<Utc>) -> Evaluation {
        Evaluation::Unknown("not implemented".into())
    }

    /// Adds its log windows.
    pub fn add_log_needs(&self, _queries: &mut std::collections::BTreeMap<String, crate::model::LogQuery>) {}
}
