//! Reports: the stable JSON document of design.md section 3, and its text and Markdown
//! renderings.

mod cycle;
mod markdown;
mod text;

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

pub use cycle::{ActionLine, AlertCounts, CycleRecord, EmailStatus, NotificationCounts, OutcomeCounts, SilencedAlert};
pub use markdown::render_markdown;
pub use text::render_text;

use crate::alert::{AlertBook, Silence};
use crate::engine::Evaluated;
use crate::model::{Finding, Mode, Outcome, RuleOutcome, Severity, Snapshot, SourceError, Symbol};

/// The audit report (JSON schema: README "JSON report").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// tradewarden's version.
    pub version: String,
    /// The audit's "now".
    pub audited_at: DateTime<Utc>,
    /// paper, live or replay.
    pub mode: Mode,
    /// Account figures; null when the account could not be read.
    pub account: Option<AccountSummary>,
    /// The market; null when the clock could not be read.
    pub market: Option<MarketSummary>,
    /// Every source and its health.
    pub sources: Vec<SourceStatus>,
    /// Source findings first, then rule findings in rule order.
    pub findings: Vec<Finding>,
    /// Each rule's outcome.
    pub rules: Vec<RuleOutcome>,
    /// Findings per severity.
    pub summary: Summary,
    /// Per symbol: broker qty, bot qty, metadata, status.
    pub reconciliation: Vec<ReconciliationRow>,
    /// `run` only: the alerts among these findings that a silence mutes (findings stay listed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub silenced: Vec<SilencedAlert>,
    /// `run` only: what the cycle did (notifications, email delivery, actions, problems).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cycle: Option<CycleRecord>,
}

/// Account figures (decimals as strings).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccountSummary {
    /// Equity.
    pub equity: Option<Decimal>,
    /// Cash.
    pub cash: Option<Decimal>,
    /// Buying power.
    pub buying_power: Option<Decimal>,
    /// Upper-case status.
    pub status: String,
}

/// The market clock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MarketSummary {
    /// Open now.
    pub is_open: bool,
    /// Next open.
    pub next_open: Option<DateTime<Utc>>,
    /// Next close.
    pub next_close: Option<DateTime<Utc>>,
}

/// A source's health.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceStatus {
    /// `broker`, `positions`, `metadata`, `log:NAME`.
    pub name: String,
    /// `ok`, `unavailable` or `malformed`.
    pub status: String,
    /// What was wrong.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Findings per severity (`rule_unknown` findings included), and how many rules were unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Summary {
    /// Critical findings.
    pub critical: usize,
    /// Warnings.
    pub warning: usize,
    /// Info.
    pub info: usize,
    /// Rules whose outcome was unknown (each also counted above, at its severity, through its
    /// `rule_unknown` findings).
    #[serde(default)]
    pub unknown: usize,
}

/// One symbol in the reconciliation table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReconciliationRow {
    /// The symbol.
    pub symbol: String,
    /// Broker quantity (null when not held or unknown).
    pub broker_qty: Option<Decimal>,
    /// The bot's quantity (null when not tracked or unknown).
    pub bot_qty: Option<Decimal>,
    /// Metadata present; null when not configured or unknown.
    pub metadata: Option<bool>,
    /// `ok`, `short`, `untracked`, `orphaned`, `mismatch` or `unknown`.
    pub status: String,
}

impl Report {
    /// Builds the report of one audit.
    #[must_use]
    pub fn build(snap: &Snapshot, evaluated: &Evaluated) -> Self {
        let mut summary = Summary::default();
        for f in &evaluated.findings {
            match f.severity {
                Severity::Critical => summary.critical += 1,
                Severity::Warning => summary.warning += 1,
                Severity::Info => summary.info += 1,
            }
        }
        summary.unknown = evaluated.outcomes.iter().filter(|o| o.outcome == Outcome::Unknown).count();
        Self {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            audited_at: snap.taken_at,
            mode: snap.mode,
            account: snap.broker.account.as_ref().ok().map(|a| AccountSummary {
                equity: a.equity,
                cash: a.cash,
                buying_power: a.buying_power,
                status: a.status.clone(),
            }),
            market: snap.broker.clock.as_ref().ok().map(|c| MarketSummary {
                is_open: c.is_open,
                next_open: c.next_open,
                next_close: c.next_close,
            }),
            sources: sources(snap),
            findings: evaluated.findings.clone(),
            rules: evaluated.outcomes.clone(),
            summary,
            reconciliation: reconciliation(snap),
            silenced: Vec::new(),
            cycle: None,
        }
    }

    /// Adds findings that arose after evaluation (the actions hook's, rule `actions`), keeping
    /// the summary in step.
    pub fn add_findings(&mut self, findings: impl IntoIterator<Item = Finding>) {
        for f in findings {
            match f.severity {
                Severity::Critical => self.summary.critical += 1,
                Severity::Warning => self.summary.warning += 1,
                Severity::Info => self.summary.info += 1,
            }
            self.findings.push(f);
        }
    }

    /// Lists the alerts among this report's findings that are silenced: as `book` says (the
    /// book a lifecycle step produced this cycle), or, for findings without an alert (the
    /// actions hook's), as the active `silences` match them. With each silence's id, end and
    /// reason.
    pub fn mark_silenced(&mut self, book: &AlertBook, silences: &[Silence]) {
        self.silenced.clear();
        for f in &self.findings {
            let fp = f.fingerprint();
            if self.silenced.iter().any(|s| s.fingerprint == fp) {
                continue;
            }
            let silence_id = match book.get(&fp) {
                Some(alert) if alert.silenced => alert.silenced_by.clone(),
                Some(_) => continue,
                None => match silences.iter().find(|s| s.matches(&f.rule, &f.subject)) {
                    Some(s) => Some(s.id.clone()),
                    None => continue,
                },
            };
            let silence = silence_id.as_ref().and_then(|id| silences.iter().find(|s| &s.id == id));
            self.silenced.push(SilencedAlert {
                fingerprint: fp,
                rule: f.rule.clone(),
                subject: f.subject.clone(),
                silence: silence_id,
                until: silence.map(|s| s.ends_at),
                reason: silence.map(|s| s.reason.clone()),
            });
        }
    }

    /// Whether a finding's alert is silenced (see `mark_silenced`).
    #[must_use]
    pub fn is_silenced(&self, f: &Finding) -> bool {
        self.silenced.iter().any(|s| s.rule == f.rule && s.subject == f.subject)
    }

    /// The worst severity among findings.
    #[must_use]
    pub fn worst(&self) -> Option<Severity> {
        self.findings.iter().map(|f| f.severity).max()
    }

    /// The JSON document, pretty-printed.
    #[must_use]
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }
}

fn status_of(e: Option<&SourceError>) -> (String, Option<String>) {
    match e {
        None => ("ok".into(), None),
        Some(e) => (e.kind.status().into(), Some(e.message.clone())),
    }
}

fn sources(snap: &Snapshot) -> Vec<SourceStatus> {
    let mut v = Vec::new();
    let broker_errors = snap.broker.errors();
    let status = broker_errors.first().map_or("ok", |e| e.kind.status()).to_owned();
    let error = (!broker_errors.is_empty())
        .then(|| broker_errors.iter().map(|e| format!("{}: {}", e.source, e.message)).collect::<Vec<_>>().join("; "));
    v.push(SourceStatus { name: "broker".into(), status, error });
    let (status, error) = status_of(snap.bot.positions.as_ref().err());
    v.push(SourceStatus { name: "positions".into(), status, error });
    if let Some(m) = &snap.bot.metadata {
        let (status, error) = status_of(m.as_ref().err());
        v.push(SourceStatus { name: "metadata".into(), status, error });
    }
    for (name, log) in &snap.logs {
        let (status, error) = status_of(log.as_ref().err());
        v.push(SourceStatus { name: format!("log:{name}"), status, error });
    }
    v
}

fn reconciliation(snap: &Snapshot) -> Vec<ReconciliationRow> {
    let broker = snap.broker.positions.as_ref().ok();
    let bot = snap.bot.positions.as_ref().ok();
    let meta = snap.bot.metadata.as_ref().map(|m| m.as_ref().ok());
    // Symbol -> qty on each side (a join, not a scan per symbol: 10,000 positions would cost
    // 10^8 comparisons). The bot's side is its entries' total, and a total of zero is not
    // tracked, exactly as `position_match` counts it, so the table never disagrees with the rule
    // about what the bot holds.
    let mut broker_qty: BTreeMap<&Symbol, Decimal> = BTreeMap::new();
    for p in broker.into_iter().flatten() {
        broker_qty.entry(&p.symbol).or_insert(p.qty);
    }
    let mut bot_qty: BTreeMap<&Symbol, Decimal> = BTreeMap::new();
    for p in bot.into_iter().flatten() {
        let q = bot_qty.entry(&p.symbol).or_insert(Decimal::ZERO);
        *q = q.saturating_add(p.qty);
    }
    bot_qty.retain(|_, q| !q.is_zero());
    let symbols: BTreeSet<&Symbol> = broker_qty.keys().chain(bot_qty.keys()).copied().collect();
    symbols
        .into_iter()
        .map(|s| {
            let b = broker_qty.get(s).copied();
            let t = bot_qty.get(s).copied();
            let metadata = match meta {
                None | Some(None) => None,
                Some(Some(m)) => Some(m.contains_key(s)),
            };
            let status = if broker.is_none() || bot.is_none() {
                "unknown"
            } else {
                match (b, t) {
                    (Some(b), _) if b < Decimal::ZERO => "short",
                    (Some(b), Some(t)) if b == t => "ok",
                    (Some(_), Some(_)) => "mismatch",
                    (Some(_), None) => "untracked",
                    (None, Some(_)) => "orphaned",
                    (None, None) => "unknown",
                }
            };
            ReconciliationRow { symbol: s.to_string(), broker_qty: b, bot_qty: t, metadata, status: status.into() }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::testkit::SnapshotBuilder;

    #[test]
    fn the_reconciliation_counts_the_bots_entries_like_position_match() {
        // A closed entry (qty 0) is not tracked; a symbol's entries are summed.
        let snap = SnapshotBuilder::new()
            .position("AAPL", "10", "180")
            .tracked("AAPL", "10", None)
            .tracked("MSFT", "0", None)
            .build();
        let rows = reconciliation(&snap);
        let got: Vec<(&str, &str)> = rows.iter().map(|r| (r.symbol.as_str(), r.status.as_str())).collect();
        assert_eq!(got, [("AAPL", "ok")], "{rows:?}");
    }
}
