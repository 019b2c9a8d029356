//! Filling the status server's `StatusView` after every cycle: plain data copied from the
//! cycle's results, so the page, the API and the metrics stay pure functions of it.

use std::collections::{BTreeMap, VecDeque};

use chrono::{DateTime, Utc};

use crate::act::ActionReport;
use crate::alert::{AlertBook, Silence};
use crate::collect::broker::Broker;
use crate::model::Outcome;
use crate::report::{CycleRecord, Report};
use crate::server::{
    ActionCount, ActionRow, AlertRow, CyclePoint, EndpointCount, SilenceRow, StateDirProblem, StatusView,
};

/// How many recent actions the view keeps.
pub const RECENT_ACTIONS: usize = 50;

/// What the daemon accumulates across cycles for the view.
#[derive(Debug, Default)]
pub struct Tally {
    /// Recent actions, newest first.
    pub recent: VecDeque<ActionRow>,
    /// Actions by (kind, result) since start.
    pub counts: BTreeMap<(String, String), u64>,
}

impl Tally {
    /// Records a cycle's actions.
    pub fn add(&mut self, actions: &[ActionReport]) {
        for a in actions {
            *self.counts.entry((a.action.clone(), a.result.clone())).or_default() += 1;
            self.recent.push_front(ActionRow {
                at: a.at,
                action: a.action.clone(),
                subject: a.subject.clone(),
                result: a.result.clone(),
                detail: a.detail.clone(),
            });
        }
        self.recent.truncate(RECENT_ACTIONS);
    }
}

/// Alert rows, firing first, then pending, then resolved.
#[must_use]
pub fn alert_rows(book: &AlertBook) -> Vec<AlertRow> {
    let mut rows: Vec<AlertRow> = book
        .alerts
        .values()
        .map(|a| AlertRow {
            fingerprint: a.fingerprint.clone(),
            rule: a.rule.clone(),
            subject: a.subject.clone(),
            severity: a.severity,
            state: a.state.as_str().to_owned(),
            since: a.active_since,
            silenced: a.silenced,
            message: a.last_finding.message.clone(),
        })
        .collect();
    let rank = |s: &str| match s {
        "firing" => 0,
        "pending" => 1,
        _ => 2,
    };
    rows.sort_by(|a, b| rank(&a.state).cmp(&rank(&b.state)).then(b.severity.cmp(&a.severity)));
    rows
}

/// Silence rows.
#[must_use]
pub fn silence_rows(silences: &[Silence]) -> Vec<SilenceRow> {
    silences
        .iter()
        .map(|s| SilenceRow {
            id: s.id.clone(),
            rule: s.rule.clone(),
            subject: s.subject.clone(),
            ends_at: s.effective_end(),
            reason: s.reason.clone(),
        })
        .collect()
}

/// Broker request counters, when the broker keeps them (the Alpaca client does).
#[must_use]
pub fn broker_counts(broker: &Broker) -> Vec<EndpointCount> {
    match broker {
        Broker::Replay(_) => Vec::new(),
        Broker::Alpaca(c) => c
            .metrics()
            .snapshot()
            .into_iter()
            .map(|(endpoint, stats)| EndpointCount {
                endpoint: endpoint.name().to_owned(),
                requests: stats.requests,
                errors: stats.errors.values().sum(),
            })
            .collect(),
    }
}

/// Everything a cycle changes in the view.
pub struct CycleUpdate<'a> {
    /// The cycle's record.
    pub record: &'a CycleRecord,
    /// Its report, when the audit completed.
    pub report: Option<&'a Report>,
    /// The alert book after the cycle.
    pub book: &'a AlertBook,
    /// Active silences (`None`: unchanged, the cycle did not read them).
    pub silences: Option<&'a [Silence]>,
    /// Actions so far.
    pub tally: &'a Tally,
    /// Broker counters.
    pub broker: Vec<EndpointCount>,
    /// When the cycle finished.
    pub finished: DateTime<Utc>,
    /// The interval `/healthz` measures against from now on (see `health_interval`).
    pub interval: std::time::Duration,
    /// `Some(why)` when the cycle saw nothing of the broker: it could not collect, or no
    /// broker endpoint answered.
    pub blind: Option<String>,
    /// The state directory.
    pub state_dir: &'a std::path::Path,
    /// The state files this cycle could not write (empty when it wrote them all).
    pub write_errors: &'a [String],
}

/// The interval `/healthz` allows (three of them) after a cycle that finished at `finished` and
/// took `took`: the schedule's nominal interval, or the wait until its next fire time when that
/// is longer (a cron schedule's night or weekend gap does not read as a dead watchdog), or the
/// cycle's own duration when that is longer still: cycles never overlap, and one slowed by the
/// request budget (`every = "1s"` at 100 requests a minute takes seconds) or by its actions
/// is a busy watchdog, not a dead one.
#[must_use]
pub fn health_interval(
    schedule: &crate::config::Schedule,
    finished: DateTime<Utc>,
    took: std::time::Duration,
) -> std::time::Duration {
    let nominal = schedule.nominal_interval(finished);
    let gap = schedule.next_after(finished).and_then(|next| (next - finished).to_std().ok()).unwrap_or_default();
    nominal.max(gap).max(took)
}

/// Applies a cycle to the view.
pub fn apply(v: &mut StatusView, u: CycleUpdate<'_>) {
    let r = u.record;
    v.interval = u.interval;
    v.cycles += 1;
    v.last_cycle_at = Some(u.finished);
    if r.ok {
        v.last_success_at = Some(u.finished);
    }
    #[expect(clippy::cast_precision_loss, reason = "milliseconds of one cycle")]
    let seconds = r.duration_ms as f64 / 1000.0;
    v.last_cycle_seconds = Some(seconds);
    if let Some(report) = u.report {
        v.report = Some(report.clone());
    }
    v.alerts = alert_rows(u.book);
    if let Some(s) = u.silences {
        v.silences = silence_rows(s);
    }
    v.actions = u.tally.recent.iter().cloned().collect();
    v.action_counts = u
        .tally
        .counts
        .iter()
        .map(|((action, result), n)| ActionCount { action: action.clone(), result: result.clone(), count: *n })
        .collect();
    let n = |x: usize| u32::try_from(x).unwrap_or(u32::MAX);
    // A failed cycle keeps no report: its rules are all unknown as far as the chart goes.
    let unknown = match u.report {
        Some(rep) => rep.rules.iter().filter(|o| o.outcome == Outcome::Unknown).count(),
        None => v.report.as_ref().map_or(0, |rep| rep.rules.len()),
    };
    v.push_point(CyclePoint {
        at: r.at,
        critical: n(r.summary.critical),
        warning: n(r.summary.warning),
        info: n(r.summary.info),
        failed: !r.ok,
        blind: u.blind.is_some(),
        unknown: n(unknown),
    });
    match u.blind {
        Some(why) => {
            v.blind_cycles = v.blind_cycles.saturating_add(1);
            v.blind_since.get_or_insert(r.at);
            v.blind_detail = Some(why);
        }
        None => {
            v.blind_cycles = 0;
            v.blind_since = None;
            v.blind_detail = None;
        }
    }
    v.state_dir = if u.write_errors.is_empty() {
        None
    } else {
        let (since, cycles) = v.state_dir.as_ref().map_or((r.at, 0), |p| (p.since, p.cycles));
        Some(StateDirProblem {
            dir: u.state_dir.display().to_string(),
            since,
            cycles: cycles.saturating_add(1),
            errors: u.write_errors.to_vec(),
        })
    };
    v.broker = u.broker;
    v.outbox_depth = r.email.outbox;
    v.last_cycle = Some(r.clone());
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use chrono::TimeZone;

    use super::*;
    use crate::config::Schedule;
    use crate::config::schedule::{parse_cron, parse_tz};

    fn record(at: DateTime<Utc>, ok: bool) -> CycleRecord {
        CycleRecord { at, ok, ..CycleRecord::default() }
    }

    fn update<'a>(
        rec: &'a CycleRecord,
        book: &'a AlertBook,
        tally: &'a Tally,
        blind: Option<&str>,
        write_errors: &'a [String],
    ) -> CycleUpdate<'a> {
        CycleUpdate {
            record: rec,
            report: None,
            book,
            silences: None,
            tally,
            broker: Vec::new(),
            finished: rec.at,
            interval: Duration::from_secs(1),
            blind: blind.map(str::to_owned),
            state_dir: std::path::Path::new("/srv/tw/state"),
            write_errors,
        }
    }

    #[test]
    fn blind_cycles_count_up_from_the_first_and_reset_on_a_seeing_cycle() {
        let t = Utc.with_ymd_and_hms(2026, 11, 20, 15, 0, 0).unwrap();
        let (book, tally) = (AlertBook::default(), Tally::default());
        let mut v = StatusView::new(t, "h".into(), "c".into(), Duration::from_secs(1));
        for i in 0..3 {
            let rec = record(t + chrono::Duration::seconds(i), true);
            apply(&mut v, update(&rec, &book, &tally, Some("broker:account: connection refused"), &[]));
        }
        assert_eq!((v.blind_cycles, v.blind_since), (3, Some(t)));
        assert!(v.history.iter().all(|p| p.blind));
        assert!(v.blind(t + chrono::Duration::seconds(3)).unwrap().contains("connection refused"));
        let rec = record(t + chrono::Duration::seconds(3), true);
        apply(&mut v, update(&rec, &book, &tally, None, &[]));
        assert_eq!((v.blind_cycles, v.blind_since), (0, None));
        assert!(v.blind(t + chrono::Duration::seconds(4)).is_none());
    }

    #[test]
    fn a_state_dir_that_refuses_writes_is_counted_until_a_cycle_writes_everything() {
        let t = Utc.with_ymd_and_hms(2026, 11, 20, 15, 0, 0).unwrap();
        let (book, tally) = (AlertBook::default(), Tally::default());
        let mut v = StatusView::new(t, "h".into(), "c".into(), Duration::from_secs(1));
        let full = ["cannot write last_report.json: No space left on device (os error 28)".to_owned()];
        for i in 0..2 {
            let rec = record(t + chrono::Duration::seconds(i), true);
            apply(&mut v, update(&rec, &book, &tally, None, &full));
        }
        let p = v.state_dir.clone().unwrap();
        assert_eq!((p.since, p.cycles, p.dir.as_str()), (t, 2, "/srv/tw/state"));
        let said = v.health_problems(t + chrono::Duration::seconds(2));
        assert!(
            said.iter().any(|s| s.starts_with("state dir not writable") && s.contains("No space left")),
            "{said:?}"
        );
        let rec = record(t + chrono::Duration::seconds(2), true);
        apply(&mut v, update(&rec, &book, &tally, None, &[]));
        assert!(v.state_dir.is_none() && v.health_problems(t + chrono::Duration::seconds(2)).is_empty());
    }

    #[test]
    fn health_allows_a_cron_schedules_night_gap_but_not_more() {
        let ny = parse_tz("America/New_York").unwrap();
        let s = parse_cron("*/5 9-16 * * Mon-Fri", ny).unwrap();
        // Friday 2026-11-20 11:00 New York: the next cycle is 5 minutes away.
        let day = Utc.with_ymd_and_hms(2026, 11, 20, 16, 0, 0).unwrap();
        assert_eq!(health_interval(&s, day, Duration::ZERO), Duration::from_secs(300));
        // Friday 16:55 New York: the next cycle is Monday 09:00.
        let evening = Utc.with_ymd_and_hms(2026, 11, 20, 21, 55, 0).unwrap();
        let monday = Utc.with_ymd_and_hms(2026, 11, 23, 14, 0, 0).unwrap();
        assert_eq!(health_interval(&s, evening, Duration::ZERO), (monday - evening).to_std().unwrap());
        assert_eq!(
            health_interval(&Schedule::Every(Duration::from_secs(30)), day, Duration::ZERO),
            Duration::from_secs(30)
        );
    }

    /// Review 3: README promises "a schedule that needs more [requests than
    /// `max_requests_per_minute`] is slowed to the budget", but `/healthz` still measures
    /// staleness against the schedule alone. `every = "1s"` with the default budget (100/min)
    /// makes each cycle (~7 reads) take ~4.2 s, so `/healthz` flaps 503 "stale: last cycle
    /// finished 3s ago" on a healthy watchdog (seen with `tradewarden run`: 503 200 200 200 503...).
    #[test]
    fn health_allows_a_schedule_slowed_by_the_request_budget() {
        let t = Utc.with_ymd_and_hms(2026, 11, 20, 16, 0, 0).unwrap();
        // Seven requests a cycle at 100 a minute: a cycle every 4.2 s at best.
        let budgeted = Duration::from_millis(7 * 60_000 / 100);
        let interval = health_interval(&Schedule::Every(Duration::from_secs(1)), t, budgeted);
        assert!(interval * 3 > budgeted, "three intervals ({:?}) are shorter than one budgeted cycle", interval * 3);
    }
}
