//! Evaluation: rules over a snapshot, giving findings and per-rule outcomes. Pure.

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::checks::{Evaluation, RULE_UNKNOWN, blind_source};
use crate::config::{Rule, When};
use crate::model::{Finding, Issue, Origin, Outcome, RuleOutcome, Severity, Snapshot, SourceError};

/// Findings and outcomes of one audit.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Evaluated {
    /// Source findings first, then rule findings in rule order.
    pub findings: Vec<Finding>,
    /// One outcome per rule, in rule order.
    pub outcomes: Vec<RuleOutcome>,
}

/// The failed source a `rule_unknown` finding is about (`observed.source`), if that is why the
/// rule is blind; `None` for any other finding, and for a missing or impossible field.
#[must_use]
pub fn blinding_source(f: &Finding) -> Option<&str> {
    if f.code != RULE_UNKNOWN {
        return None;
    }
    f.observed.get("source").and_then(serde_json::Value::as_str)
}

impl Evaluated {
    /// The outcome of a rule, by id.
    #[must_use]
    pub fn outcome(&self, id: &str) -> Option<Outcome> {
        self.outcomes.iter().find(|o| o.id == id).map(|o| o.outcome)
    }
}

/// Whether a rule's `when` holds: `Ok(true)` evaluate, `Ok(false)` skip, `Err` unknown (the
/// failed source, and what the `when` needed from it).
fn gate(when: When, snap: &Snapshot) -> Result<bool, (&SourceError, &'static str)> {
    let market_open = || match &snap.broker.clock {
        Ok(c) => Ok(c.is_open),
        Err(e) => Err((e, "the market clock")),
    };
    let has_positions = || match &snap.broker.positions {
        Ok(p) => Ok(!p.is_empty()),
        Err(e) => Err((e, "broker positions")),
    };
    match when {
        When::Always => Ok(true),
        When::MarketOpen => market_open(),
        When::PositionsOpen => has_positions(),
        When::MarketOpenWithPositions => Ok(market_open()? && has_positions()?),
    }
}

/// The `rule_unknown` issue of a `when` that could not be decided.
fn blind_gate(e: &SourceError, what: &str) -> Issue {
    let mut i = blind_source(e);
    i.message = format!("`when` needs {what}, but {} is {}", e.source, e.kind.status());
    i
}

/// Runs every rule over the snapshot.
#[must_use]
pub fn evaluate(rules: &[Rule], snap: &Snapshot, now: DateTime<Utc>) -> Evaluated {
    let mut out = Evaluated { findings: source_findings(snap), outcomes: Vec::with_capacity(rules.len()) };
    for rule in rules {
        let finding = |i: Issue| Finding {
            rule: rule.id.clone(),
            check: rule.check.kind().to_owned(),
            code: i.code.to_owned(),
            severity: rule.severity,
            subject: i.subject,
            message: if i.code == RULE_UNKNOWN { format!("unknown, not OK: {}", i.message) } else { i.message },
            observed: i.observed,
            expected: i.expected,
        };
        // Unknown weighs as violated: every blind part is a `rule_unknown` finding at the
        // rule's own severity, so `--fail-on`, the exit code, the summary and the email count
        // it. The outcome stays `unknown` (never `violated`), which is what keeps actions off
        // and firing alerts held.
        let (outcome, reason) = match gate(rule.when, snap) {
            Err((e, what)) => {
                let blind = blind_gate(e, what);
                let reason = blind.message.clone();
                out.findings.push(finding(blind));
                (Outcome::Unknown, Some(reason))
            }
            Ok(false) => (Outcome::Skipped, Some(skip_reason(rule.when))),
            Ok(true) => match rule.check.evaluate(snap, now) {
                Evaluation::Unknown(b) => {
                    let reason = b.reason();
                    out.findings.extend(b.issues.into_iter().chain(b.blind).map(finding));
                    (Outcome::Unknown, Some(reason))
                }
                Evaluation::Checked(issues) if issues.is_empty() => (Outcome::Ok, None),
                Evaluation::Checked(issues) => {
                    out.findings.extend(issues.into_iter().map(finding));
                    (Outcome::Violated, None)
                }
            },
        };
        out.outcomes.push(RuleOutcome { id: rule.id.clone(), check: rule.check.kind().to_owned(), outcome, reason });
    }
    out
}

fn skip_reason(when: When) -> String {
    match when {
        When::Always => "never skipped".into(),
        When::MarketOpen => "the market is closed".into(),
        When::PositionsOpen => "no open positions".into(),
        When::MarketOpenWithPositions => "the market is closed or there are no open positions".into(),
    }
}

/// One finding per failed source (`source_unavailable` / `source_malformed`, warning), plus an
/// info finding per log with malformed lines in its scanned part.
#[must_use]
pub fn source_findings(snap: &Snapshot) -> Vec<Finding> {
    let mut v: Vec<Finding> = snap
        .source_errors()
        .into_iter()
        .map(|e| Finding {
            rule: Origin::Source.id().into(),
            check: Origin::Source.id().into(),
            code: e.kind.code().into(),
            severity: Severity::Warning,
            subject: e.source.clone(),
            message: e.message.clone(),
            observed: json!({ "status": e.kind.status() }),
            expected: json!({ "status": "ok" }),
        })
        .collect();
    for (name, log) in &snap.logs {
        if let Ok(s) = log
            && s.malformed_count > 0
        {
            let examples: Vec<String> = s
                .malformed
                .iter()
                .take(3)
                .map(|m| match m.line {
                    Some(l) => format!("line {l}: {}", m.reason),
                    None => format!("byte {} ({} from the end): {}", m.offset, ordinal(m.from_end), m.reason),
                })
                .collect();
            v.push(Finding {
                rule: Origin::Source.id().into(),
                check: Origin::Source.id().into(),
                code: "source_malformed".into(),
                severity: Severity::Info,
                subject: format!("log:{name}"),
                message: format!(
                    "{} malformed line(s) in the scanned part of {} (skipped): {}",
                    s.malformed_count,
                    s.file,
                    examples.join("; ")
                ),
                observed: json!({ "malformed_lines": s.malformed_count, "lines_scanned": s.lines_scanned }),
                expected: json!({ "malformed_lines": 0 }),
            });
        }
    }
    v
}

fn ordinal(n: u64) -> String {
    match n {
        1 => "last line".into(),
        n => format!("line {n}"),
    }
}

#[cfg(test)]
mod hostile_tests;
#[cfg(test)]
mod unknown_tests;
