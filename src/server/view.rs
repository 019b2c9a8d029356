//! `StatusView`: the plain data the daemon publishes after every cycle, and all the status
//! server reads. Keeping it plain data keeps the page, the API and the metrics pure functions.

use std::collections::VecDeque;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::model::Severity;
use crate::report::{CycleRecord, Report};

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
            .checked_mul(3)
            .and_then(|d| chrono::Duration::from_std(d).ok())
            .unwrap_or(chrono::Duration::MAX);
        now - reference <= limit
    }
}
