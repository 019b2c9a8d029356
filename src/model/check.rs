//! `Check`: what a rule's check is to the pipeline, a pure function of the snapshot, and
//! `Evaluation`, what it says.
//!
//! The trait lives in the model, below config, because a configured `Rule` holds its check: the
//! kinds that implement it (and read their parameters) are in `checks`, which config never
//! imports.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{Issue, LogQuery, Snapshot};

/// A check kind with its parameters, ready to run.
pub trait Check: fmt::Debug + Send + Sync {
    /// The kind's name (`position_match`): a finding's `check`.
    fn kind(&self) -> &'static str;

    /// The parameters as the rule writes them, a JSON table (for `rules list`; written back as
    /// TOML it reads as the same check).
    fn params(&self) -> serde_json::Value;

    /// Runs the check.
    fn evaluate(&self, snap: &Snapshot, now: DateTime<Utc>) -> Evaluation;

    /// Adds what this check needs from the logs (a log to read, windows to count) to `queries`.
    /// Most kinds read no log.
    fn add_log_needs(&self, _queries: &mut BTreeMap<String, LogQuery>) {}

    /// How far back recently closed orders must be read for this check to judge `snap`, when
    /// the five reads of every cycle are not enough (a sixth request costs the broker's rate
    /// limit, so a check asks only when its answer depends on them). Most kinds never ask.
    fn recent_orders_window(&self, _snap: &Snapshot, _now: DateTime<Utc>) -> Option<Duration> {
        None
    }
}

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
