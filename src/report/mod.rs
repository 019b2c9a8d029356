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
use crate::checks::position_match;
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
    /// `ok`, `short`, `untracked`, `orphaned`, `mismatch`, `settling` or `unknown`.
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
            reconciliation: reconciliation(snap, evaluated),
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
                None => match silences.iter().find(|s| {
                    let codes = self.findings.iter().filter(|g| g.fingerprint() == fp).map(|g| g.code.as_str());
                    s.matches(&f.rule, &f.subject, codes)
                }) {
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
                until: silence.map(crate::alert::Silence::effective_end),
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

/// The reconciliation table. The status agrees with `position_match` by construction: when a
/// `position_match` rule was evaluated this audit, its findings decide a symbol's status (a
/// finding means untracked, orphaned or mismatch; none means the rule accepted it: `ok`, or
/// `settling` when the quantities differ while an order on it is active, which is the only way
/// the rule skips a difference beyond its tolerance). Without such a rule the table compares the
/// quantities itself. Quantities are counted as the rule counts them (`bot_quantities`), and a
/// symbol the bot keeps only in its metadata is listed, as the rule reports it.
fn reconciliation(snap: &Snapshot, evaluated: &Evaluated) -> Vec<ReconciliationRow> {
    let broker = snap.broker.positions.as_ref().ok();
    let bot = snap.bot.positions.as_ref().ok();
    let meta = snap.bot.metadata.as_ref().map(|m| m.as_ref().ok());
    // Symbol -> qty on each side (a join, not a scan per symbol: 10,000 positions would cost
    // 10^8 comparisons).
    let mut broker_qty: BTreeMap<&Symbol, Decimal> = BTreeMap::new();
    for p in broker.into_iter().flatten() {
        broker_qty.entry(&p.symbol).or_insert(p.qty);
    }
    let bot_qty = bot.map(|b| position_match::bot_quantities(b)).unwrap_or_default();
    let meta_keys = meta.flatten().map(|m| m.keys().collect::<BTreeSet<_>>()).unwrap_or_default();
    // What the evaluated position_match rules said, per symbol (the worst status wins).
    let judged: BTreeSet<&str> = evaluated
        .outcomes
        .iter()
        .filter(|o| o.check == position_match::KIND && matches!(o.outcome, Outcome::Ok | Outcome::Violated))
        .map(|o| o.id.as_str())
        .collect();
    let mut verdicts: BTreeMap<&str, &'static str> = BTreeMap::new();
    for f in evaluated.findings.iter().filter(|f| judged.contains(f.rule.as_str())) {
        let status = match f.code.as_str() {
            "untracked_position" => "untracked",
            "orphaned_position" => "orphaned",
            _ => "mismatch",
        };
        let v = verdicts.entry(f.subject.as_str()).or_insert(status);
        if *v != "mismatch" && status == "mismatch" {
            *v = status;
        }
    }
    let has_open_order = |s: &Symbol| {
        snap.broker.orders.as_ref().is_ok_and(|orders| orders.iter().any(|o| o.is_open() && &o.symbol == s))
    };
    let symbols: BTreeSet<&Symbol> = broker_qty.keys().chain(bot_qty.keys()).chain(meta_keys.iter()).copied().collect();
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
            } else if b.is_some_and(|b| b < Decimal::ZERO) {
                "short"
            } else if !judged.is_empty() {
                // A symbol kept only in metadata differs from the broker too.
                let differs = b != t || b.is_none();
                match verdicts.get(s.as_str()) {
                    Some(v) => v,
                    None if differs && has_open_order(s) => "settling",
                    None => "ok",
                }
            } else {
                match (b, t) {
                    (Some(b), Some(t)) if b == t => "ok",
                    (Some(_), Some(_)) => "mismatch",
                    (Some(_), None) => "untracked",
                    (None, _) => "orphaned",
                }
            };
            ReconciliationRow { symbol: s.to_string(), broker_qty: b, bot_qty: t, metadata, status: status.into() }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::testkit::{SnapshotBuilder, d};
    use crate::config::{Rule, When};
    use crate::model::{OrderSide, Side};

    fn position_match_rule(p: position_match::Params) -> Rule {
        Rule {
            id: "positions-match".into(),
            check: std::sync::Arc::new(p),
            severity: Severity::Critical,
            hold: None,
            repeat: None,
            when: When::Always,
            actions: vec![],
            description: None,
            origin: "rules/test.toml".into(),
            id_offset: 0,
        }
    }

    /// (symbol, status) of each row, the rule evaluated on the snapshot as an audit does.
    fn statuses(b: SnapshotBuilder, rules: &[Rule]) -> (Vec<(String, String)>, Option<Outcome>) {
        let snap = b.build();
        let ev = crate::engine::evaluate(rules, &snap, snap.taken_at);
        let rows = Report::build(&snap, &ev).reconciliation;
        (rows.into_iter().map(|r| (r.symbol, r.status)).collect(), ev.outcome("positions-match"))
    }

    fn rows(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter().map(|(a, b)| ((*a).to_owned(), (*b).to_owned())).collect()
    }

    #[test]
    fn the_reconciliation_counts_the_bots_entries_like_position_match() {
        // A closed entry (qty 0) is not tracked; a symbol's entries are summed; an explicit
        // short side makes the quantity negative, as the rule reads it.
        let snap = SnapshotBuilder::new()
            .position("AAPL", "10", "180")
            .tracked("AAPL", "10", None)
            .tracked("MSFT", "0", None)
            .tracked_side("CHWY", "5", Side::Short)
            .build();
        let rows = reconciliation(&snap, &Evaluated { findings: vec![], outcomes: vec![] });
        let got: Vec<(&str, &str, Option<Decimal>)> =
            rows.iter().map(|r| (r.symbol.as_str(), r.status.as_str(), r.bot_qty)).collect();
        assert_eq!(got, [("AAPL", "ok", Some(d("10"))), ("CHWY", "orphaned", Some(d("-5")))], "{rows:?}");
    }

    /// Issue 12 §3b: a partly filled order resting for two days; the table said "mismatch"
    /// (broker 20, bot 5000) while position_match stayed green. Now both say the same thing,
    /// while the order is fresh and once it has rested.
    #[test]
    fn the_table_and_position_match_agree_on_a_partly_filled_resting_order() {
        let rule = [position_match_rule(position_match::Params::default())];
        let book = |age_secs: i64| {
            SnapshotBuilder::new().position("AAPL", "20", "180").tracked("AAPL", "5000", None).order_with(
                "o1",
                "AAPL",
                OrderSide::Buy,
                "5000",
                age_secs,
                |o| {
                    o.status = "partially_filled".into();
                    o.filled_qty = d("20");
                    o.filled_at = o.updated_at;
                },
            )
        };
        assert_eq!(statuses(book(2 * 86_400), &rule), (rows(&[("AAPL", "mismatch")]), Some(Outcome::Violated)));
        assert_eq!(statuses(book(1), &rule), (rows(&[("AAPL", "settling")]), Some(Outcome::Ok)));
    }

    #[test]
    fn the_table_follows_the_rules_tolerance_and_lists_metadata_orphans() {
        let tolerant = [position_match_rule(position_match::Params { qty_tolerance: d("0.5"), ..Default::default() })];
        let b = || {
            SnapshotBuilder::new()
                .position("AAPL", "10", "180")
                .tracked("AAPL", "10.5", None)
                .metadata("AAPL", serde_json::json!({}))
                .metadata("OKTA", serde_json::json!({}))
        };
        assert_eq!(statuses(b(), &tolerant), (rows(&[("AAPL", "ok"), ("OKTA", "orphaned")]), Some(Outcome::Violated)));
        // Without a position_match rule the table compares the quantities itself.
        assert_eq!(statuses(b(), &[]).0, rows(&[("AAPL", "mismatch"), ("OKTA", "orphaned")]));
        // An entry price off is the rule's mismatch too.
        let b = SnapshotBuilder::new().position("AAPL", "10", "100").tracked("AAPL", "10", Some("120"));
        let strict = [position_match_rule(position_match::Params::default())];
        assert_eq!(statuses(b, &strict), (rows(&[("AAPL", "mismatch")]), Some(Outcome::Violated)));
    }
}
