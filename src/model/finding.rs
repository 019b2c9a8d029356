//! Findings, severities and rule outcomes: what evaluation produces.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// How bad a finding is. Ordered: `Info < Warning < Critical`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing.
    Info,
    /// Needs attention.
    Warning,
    /// Money at risk now.
    Critical,
}

impl Severity {
    /// `info`, `warning` or `critical`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Warning => "warning",
            Self::Critical => "critical",
        }
    }
}

impl FromStr for Severity {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "info" => Ok(Self::Info),
            "warning" => Ok(Self::Warning),
            "critical" => Ok(Self::Critical),
            other => Err(format!("unknown severity `{other}`; expected info, warning or critical")),
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a check reports: one problem about one subject. The engine adds the rule's id and
/// severity to make it a `Finding`.
#[derive(Debug, Clone, PartialEq)]
pub struct Issue {
    /// The finding code (`short_position`, ...).
    pub code: &'static str,
    /// A symbol, a log name, an order id or `account`.
    pub subject: String,
    /// One plain sentence.
    pub message: String,
    /// What was seen (decimals as strings).
    pub observed: Value,
    /// What was expected.
    pub expected: Value,
}

/// A finding in a report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// The rule id (`source` for built-in source findings).
    pub rule: String,
    /// The check kind.
    pub check: String,
    /// The finding code.
    pub code: String,
    /// The rule's severity.
    pub severity: Severity,
    /// A symbol, a log name, an order id, a source name or `account`.
    pub subject: String,
    /// One plain sentence.
    pub message: String,
    /// What was seen.
    pub observed: Value,
    /// What was expected.
    pub expected: Value,
}

impl Finding {
    /// The alert fingerprint: rule id and subject.
    #[must_use]
    pub fn fingerprint(&self) -> String {
        format!("{}/{}", self.rule, self.subject)
    }
}

/// A rule's result in one audit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Evaluated, nothing wrong.
    Ok,
    /// Evaluated, findings emitted.
    Violated,
    /// Could not be evaluated, in whole or in part: an input source failed, or a field it needs
    /// is missing or impossible. Never read as OK; each blind part is a `rule_unknown` finding
    /// at the rule's severity (findings from the parts it could see are kept too).
    Unknown,
    /// Not evaluated because its `when` condition does not hold (market closed, no positions).
    Skipped,
}

impl Outcome {
    /// `ok`, `violated`, `unknown` or `skipped`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Violated => "violated",
            Self::Unknown => "unknown",
            Self::Skipped => "skipped",
        }
    }
}

/// A rule and its outcome, with the reason when unknown or skipped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleOutcome {
    /// Rule id.
    pub id: String,
    /// Check kind.
    pub check: String,
    /// The outcome.
    pub outcome: Outcome,
    /// Why it was unknown or skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}
