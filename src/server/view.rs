//! `StatusView`: the plain data the daemon publishes after every cycle, and all the status
//! server reads. Keeping it plain data keeps the page, the API and the metrics pure functions.

use std::collections::VecDeque;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::config::Hold;
use crate::model::{Outcome, Severity};
use crate::report::{CycleRecord, Report};

/// The status is stale when no cycle finished within this many health intervals (`/healthz`,
/// the page, and `tradewarden status` all count so).
pub const STALE_INTERVALS: u32 = 3;

/// How many cycle points the findings chart keeps.
pub const HISTORY_POINTS: usize = 720;

/// One alert, as the page and the API show it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertRow {
    /// `rule/subject`.
    pub fingerprint: String,
    /// Rule id.
    pub rule: String,
    /// Subject.
    pub subject: String,
    /// Severity.
    pub severity: Severity,
    /// `pending`, `firing` or `resolved`.
    pub state: String,
    /// When the condition was first seen.
    pub since: DateTime<Utc>,
    /// Muted by a silence.
    pub silenced: bool,
    /// The latest message.
    pub message: String,
}

/// One silence.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SilenceRow {
    /// Id.
    pub id: String,
    /// Rule matched.
    pub rule: String,
    /// Subject matched, if any.
    pub subject: Option<String>,
    /// Expiry.
    pub ends_at: DateTime<Utc>,
    /// Why.
    pub reason: String,
}

/// One journaled action (its outcome, or its intent while it runs).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActionRow {
    /// When.
    pub at: DateTime<Utc>,
    /// `flatten_shorts`, ...
    pub action: String,
    /// What it acted on.
    pub subject: String,
    /// `done`, `described`, `refused`, `failed`, `unconfirmed`, ...
    pub result: String,
    /// A sentence.
    pub detail: String,
}

/// Findings of one cycle, for the chart.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CyclePoint {
    /// Cycle time.
    pub at: DateTime<Utc>,
    /// Critical findings.
    pub critical: u32,
    /// Warnings.
    pub warning: u32,
    /// Info findings.
    pub info: u32,
    /// The cycle could not collect or evaluate.
    pub failed: bool,
    /// The cycle read no broker endpoint (or could not collect): its zero findings mean "saw
    /// nothing", never "all clear", so the chart draws it as blind, not as a short bar.
    pub blind: bool,
    /// Rules whose outcome was unknown in this cycle.
    pub unknown: u32,
}

/// Requests and errors for one broker endpoint.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EndpointCount {
    /// `GET /v2/positions`, ...
    pub endpoint: String,
    /// Requests sent.
    pub requests: u64,
    /// Requests that failed (after retries count each attempt).
    pub errors: u64,
}

/// Actions counted by kind and result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActionCount {
    /// Action kind.
    pub action: String,
    /// Result.
    pub result: String,
    /// Count since start.
    pub count: u64,
}

/// Everything the status server shows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatusView {
    /// When the daemon started.
    pub started_at: DateTime<Utc>,
    /// Host name.
    pub host: String,
    /// The configuration file.
    pub config_path: String,
    /// The nominal interval between cycles (for `/healthz`).
    #[serde(with = "crate::config::duration::serde_humantime")]
    pub interval: Duration,
    /// Cycles run.
    pub cycles: u64,
    /// When the last cycle finished (successfully or not).
    pub last_cycle_at: Option<DateTime<Utc>>,
    /// When a cycle last completed its audit.
    pub last_success_at: Option<DateTime<Utc>>,
    /// How long the last cycle took, in seconds.
    pub last_cycle_seconds: Option<f64>,
    /// The last full report.
    pub report: Option<Report>,
    /// Alert states.
    pub alerts: Vec<AlertRow>,
    /// Active silences.
    pub silences: Vec<SilenceRow>,
    /// The last actions, newest first.
    pub actions: Vec<ActionRow>,
    /// Findings per cycle, oldest first.
    pub history: VecDeque<CyclePoint>,
    /// Broker requests by endpoint.
    pub broker: Vec<EndpointCount>,
    /// Emails waiting in the outbox.
    pub outbox_depth: usize,
    /// Actions by kind and result.
    pub action_counts: Vec<ActionCount>,
    /// What the last cycle did (also when its audit failed): counts, email delivery, problems.
    pub last_cycle: Option<CycleRecord>,
    /// `[server] blind_after`: how long the watchdog may see nothing before it says so.
    pub blind_after: Hold,
    /// Consecutive cycles up to the last that read no broker endpoint (or could not collect).
    pub blind_cycles: u32,
    /// When the current run of blind cycles began.
    pub blind_since: Option<DateTime<Utc>>,
    /// Why the last blind cycle saw nothing.
    pub blind_detail: Option<String>,
    /// Set while cycles cannot write their state files; `None` once a cycle wrote them all.
    pub state_dir: Option<StateDirProblem>,
}

/// The state directory refused a cycle's writes (full disk, read-only mount, permissions).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StateDirProblem {
    /// The state directory.
    pub dir: String,
    /// The first cycle whose writes failed, in the current run of such cycles.
    pub since: DateTime<Utc>,
    /// Consecutive cycles whose writes failed.
    pub cycles: u32,
    /// What failed in the last cycle, one sentence per file.
    pub errors: Vec<String>,
}

/// The worst state the status page's badge shows, worst first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Overall {
    /// A rule is violated.
    Violated,
    /// The watchdog has seen nothing of the broker for `blind_after`.
    Blind,
    /// No cycle finished within three intervals: what is shown is old.
    Stale,
    /// A rule's outcome is unknown (an input is unavailable).
    Unknown,
    /// No cycle has finished yet.
    Starting,
    /// Every rule held.
    Ok,
}

impl Overall {
    /// The badge's word.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Violated => "violated",
            Self::Blind => "blind",
            Self::Stale => "stale",
            Self::Unknown => "unknown",
            Self::Starting => "starting",
            Self::Ok => "ok",
        }
    }
}

impl StatusView {
    /// An empty view for a daemon that has just started.
    #[must_use]
    pub fn new(started_at: DateTime<Utc>, host: String, config_path: String, interval: Duration) -> Self {
        Self {
            started_at,
            host,
            config_path,
            interval,
            cycles: 0,
            last_cycle_at: None,
            last_success_at: None,
            last_cycle_seconds: None,
            report: None,
            alerts: Vec::new(),
            silences: Vec::new(),
            actions: Vec::new(),
            history: VecDeque::new(),
            broker: Vec::new(),
            outbox_depth: 0,
            action_counts: Vec::new(),
            last_cycle: None,
            blind_after: crate::config::ServerConfig::DEFAULT_BLIND_AFTER,
            blind_cycles: 0,
            blind_since: None,
            blind_detail: None,
            state_dir: None,
        }
    }

    /// Adds a cycle point, keeping at most `HISTORY_POINTS`.
    pub fn push_point(&mut self, p: CyclePoint) {
        self.history.push_back(p);
        while self.history.len() > HISTORY_POINTS {
            self.history.pop_front();
        }
    }

    /// Healthy while the last cycle finished within three intervals (or, before the first
    /// cycle, while the daemon started less than three intervals ago).
    #[must_use]
    pub fn healthy(&self, now: DateTime<Utc>) -> bool {
        let reference = self.last_cycle_at.unwrap_or(self.started_at);
        // Checked: `Duration * 3` panics on overflow.
        let limit = self
            .interval
            .checked_mul(STALE_INTERVALS)
            .and_then(|d| chrono::Duration::from_std(d).ok())
            .unwrap_or(chrono::Duration::MAX);
        now - reference <= limit
    }

    /// Why the watchdog is blind, when it has seen nothing of the broker for `blind_after`
    /// (that many consecutive cycles, or that long since the first of them).
    #[must_use]
    pub fn blind(&self, now: DateTime<Utc>) -> Option<String> {
        let since = self.blind_since?;
        let blind = match self.blind_after {
            Hold::Cycles(n) => self.blind_cycles >= n,
            Hold::Duration(d) => {
                self.blind_cycles > 0 && now - since >= chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
            }
        };
        if !blind {
            return None;
        }
        let cycles =
            if self.blind_cycles == 1 { "1 cycle".to_owned() } else { format!("{} cycles", self.blind_cycles) };
        Some(format!(
            "no broker endpoint read for {cycles} since {} (blind_after {}): {}",
            since.format("%Y-%m-%d %H:%M:%S UTC"),
            self.blind_after,
            self.blind_detail.as_deref().unwrap_or("the broker could not be read")
        ))
    }

    /// Why the state directory is not writable, while it is not.
    #[must_use]
    pub fn state_dir_problem(&self) -> Option<String> {
        self.state_dir.as_ref().map(|p| {
            format!(
                "the state directory {} is not writable ({} cycle{} since {}): {}",
                p.dir,
                p.cycles,
                if p.cycles == 1 { "" } else { "s" },
                p.since.format("%Y-%m-%d %H:%M:%S UTC"),
                p.errors.join("; ")
            )
        })
    }

    /// Everything that makes `/healthz` answer 503, one line each: stale, blind, state
    /// directory not writable. Empty when healthy.
    #[must_use]
    pub fn health_problems(&self, now: DateTime<Utc>) -> Vec<String> {
        let mut out = Vec::new();
        if !self.healthy(now) {
            out.push(self.last_cycle_at.map_or_else(
                || "stale: no cycle has finished".to_owned(),
                |t| format!("stale: last cycle finished {}s ago", (now - t).num_seconds()),
            ));
        }
        if let Some(b) = self.blind(now) {
            out.push(format!("blind: {b}"));
        }
        if let Some(p) = self.state_dir_problem() {
            out.push(format!("state dir not writable: {p}"));
        }
        out
    }

    /// The worst of: a violated rule, blind, stale, an unknown rule, ok. From the last
    /// report's rule outcomes and the blind flag, so it never reads better than what was seen.
    #[must_use]
    pub fn overall(&self, now: DateTime<Utc>) -> Overall {
        let outcomes = self.report.as_ref().map(|r| r.rules.iter().map(|o| o.outcome).collect::<Vec<_>>());
        let mut worst = Overall::Ok;
        if outcomes.as_ref().is_some_and(|o| o.contains(&Outcome::Violated)) {
            worst = worst.min(Overall::Violated);
        }
        if self.blind(now).is_some() {
            worst = worst.min(Overall::Blind);
        }
        if !self.healthy(now) {
            worst = worst.min(Overall::Stale);
        }
        // A blind cycle that has not yet lasted `blind_after` still saw nothing: unknown.
        if self.blind_cycles > 0 || outcomes.as_ref().is_some_and(|o| o.contains(&Outcome::Unknown)) {
            worst = worst.min(Overall::Unknown);
        }
        if self.report.is_none() && self.last_cycle_at.is_none() {
            worst = worst.min(Overall::Starting);
        }
        worst
    }
}
