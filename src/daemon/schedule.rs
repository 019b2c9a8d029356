//! When cycles run, and the loop that runs them.
//!
//! Times are computed with the injected `Clock`; waiting uses tokio's timer, in slices of at
//! most `MAX_NAP`, re-reading the clock after each, so a suspended machine or a clock step
//! does not leave the watchdog asleep for a whole stale interval.
//!
//! Invariants:
//! - **no overlap**: a cycle starts only after the previous one returned (the loop awaits it);
//! - **no stacking**: the next start is `schedule.next_after(previous start)`, but never before
//!   the previous cycle finished. A cycle that overran one or more slots is followed by exactly
//!   one cycle at once, and the schedule continues from that cycle's start (it realigns);
//! - **no burst**: a next slot that is not after the previous start (a schedule bug) waits
//!   `MIN_SPACING` after the cycle instead of reading as an overrun;
//! - `every` runs the first cycle at once; `cron` waits for its first fire time;
//! - on a stop request the current cycle may finish within a grace period (then it is
//!   abandoned), and no further cycle starts. A second request abandons it at once.

use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::watch;

use crate::clock::Clock;
use crate::config::Schedule;

/// The longest single sleep: the clock is re-read at least this often.
pub const MAX_NAP: Duration = Duration::from_secs(30);

/// The wait after a cycle when the schedule answers a next slot that is not after the cycle's
/// start (it must not, see `Schedule::next_after`; `every = 0` cannot be configured). Without
/// it such a slot would read as an overrun and cycles would run back to back: the DST incident
/// ran ~25 a second and spent the broker's rate limit, which the bot shares.
pub const MIN_SPACING: Duration = Duration::from_secs(1);

/// When the first cycle runs: now for `every`, the first fire time for `cron`.
#[must_use]
pub fn first_start(schedule: &Schedule, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    match schedule {
        Schedule::Every(_) => Some(now),
        Schedule::Cron { .. } => schedule.next_after(now),
    }
}

/// The next start after a cycle that started at `started` and finished at `finished`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NextStart {
    /// When to start.
    pub at: DateTime<Utc>,
    /// The cycle overran its next slot (which was at this time); the next one runs at once.
    pub overran: Option<DateTime<Utc>>,
}

/// The next start: the schedule's next slot after `started`, or `finished` when that slot has
/// already passed (no stacking: one catch-up cycle, whatever the number of missed slots).
/// `None` when the schedule has no further fire time.
#[must_use]
pub fn next_start(schedule: &Schedule, started: DateTime<Utc>, finished: DateTime<Utc>) -> Option<NextStart> {
    let mut slot = schedule.next_after(started)?;
    if slot <= started {
        tracing::error!(started = %started, slot = %slot, "The schedule's next slot is not after the cycle's start; waiting 1s instead of running cycles back to back.");
        slot = finished.max(started) + chrono::Duration::from_std(MIN_SPACING).unwrap_or_default();
        return Some(NextStart { at: slot, overran: None });
    }
    Some(if slot < finished {
        NextStart { at: finished, overran: Some(slot) }
    } else {
        NextStart { at: slot, overran: None }
    })
}

/// A stop request, counted: the first lets the current cycle finish, the second abandons it.
#[derive(Debug, Clone)]
pub struct Shutdown(watch::Receiver<u32>);

/// The sending side of `Shutdown`.
#[derive(Debug, Clone)]
pub struct ShutdownHandle(watch::Sender<u32>);

impl ShutdownHandle {
    /// Requests a stop (again).
    pub fn request(&self) {
        self.0.send_modify(|n| *n = n.saturating_add(1));
    }
}

impl Shutdown {
    /// A new pair.
    #[must_use]
    pub fn new() -> (ShutdownHandle, Self) {
        let (tx, rx) = watch::channel(0);
        (ShutdownHandle(tx), Self(rx))
    }

    /// Requests so far.
    #[must_use]
    pub fn requests(&self) -> u32 {
        *self.0.borrow()
    }

    /// Waits until at least `n` stop requests were made (forever if the sender is gone).
    pub async fn wait_for(&mut self, n: u32) {
        if self.0.wait_for(|v| *v >= n).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// What one cycle is, for the loop.
pub trait Cycles {
    /// Runs one cycle that was due at `start`.
    fn run_cycle(&mut self, start: DateTime<Utc>) -> impl Future<Output = ()>;

    /// Raised while a cycle has journaled an action intent: such a cycle is not abandoned on
    /// the grace period, only on a second stop request.
    fn intent_flag(&self) -> Option<std::sync::Arc<std::sync::atomic::AtomicBool>> {
        None
    }
}

/// How a cycle ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CycleEnd {
    /// It ran to completion.
    Finished,
    /// A stop request came and the cycle did not finish within the grace period (or a second
    /// request came): it was dropped at an await point.
    Abandoned,
}

/// Why the loop returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// `--max-cycles` cycles ran.
    MaxCycles,
    /// A stop was requested.
    Requested,
    /// The schedule has no further fire time.
    ScheduleEnded,
}

/// The loop's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoopEnd {
    /// Why it returned.
    pub stopped: Stopped,
    /// Cycles started.
    pub cycles: u64,
    /// How the last cycle ended, if any ran.
    pub last: Option<CycleEnd>,
}

/// Runs cycles on `schedule` until `max_cycles` ran, a stop is requested, or the schedule
/// ends. `grace` bounds how long a running cycle may take after a stop request.
pub async fn run_loop<C: Cycles>(
    schedule: &Schedule,
    clock: &dyn Clock,
    max_cycles: Option<u64>,
    grace: Duration,
    shutdown: &mut Shutdown,
    cycles: &mut C,
) -> LoopEnd {
    let mut end = LoopEnd { stopped: Stopped::ScheduleEnded, cycles: 0, last: None };
    let Some(mut at) = first_start(schedule, clock.now()) else { return end };
    loop {
        if !sleep_until(clock, at, shutdown).await {
            end.stopped = Stopped::Requested;
            return end;
        }
        let started = clock.now();
        end.cycles += 1;
        let acted = cycles.intent_flag();
        if let Some(f) = &acted {
            f.store(false, std::sync::atomic::Ordering::SeqCst);
        }
        let outcome = run_one(cycles.run_cycle(started), grace, shutdown, acted.as_deref()).await;
        end.last = Some(outcome);
        if shutdown.requests() > 0 {
            end.stopped = Stopped::Requested;
            return end;
        }
        if max_cycles.is_some_and(|m| end.cycles >= m) {
            end.stopped = Stopped::MaxCycles;
            return end;
        }
        let finished = clock.now();
        let Some(next) = next_start(schedule, started, finished) else { return end };
        if let Some(slot) = next.overran {
            tracing::warn!(
                started = %started,
                took_ms = (finished - started).num_milliseconds(),
                missed_slot = %slot,
                "Cycle overran its next slot; running one cycle now, then following the schedule again."
            );
        }
        at = next.at;
    }
}

/// Sleeps until the clock reads `at`; false when a stop was requested meanwhile.
async fn sleep_until(clock: &dyn Clock, at: DateTime<Utc>, shutdown: &mut Shutdown) -> bool {
    loop {
        if shutdown.requests() > 0 {
            return false;
        }
        let left = (at - clock.now()).to_std().unwrap_or(Duration::ZERO);
        if left.is_zero() {
            return true;
        }
        tokio::select! {
            biased;
            () = shutdown.wait_for(1) => return false,
            () = tokio::time::sleep(left.min(MAX_NAP)) => {}
        }
    }
}

/// Runs one cycle; on a stop request, lets it finish within `grace` (a second request abandons
/// it at once). A cycle that has journaled an action intent (`acted` raised) is not abandoned
/// when `grace` runs out: the action is bounded by its own timeouts, and an intent must get its
/// outcome and its notice; only a second request abandons it (the next start then resolves the
/// intent).
async fn run_one(
    cycle: impl Future<Output = ()>,
    grace: Duration,
    shutdown: &mut Shutdown,
    acted: Option<&std::sync::atomic::AtomicBool>,
) -> CycleEnd {
    tokio::pin!(cycle);
    tokio::select! {
        biased;
        () = &mut cycle => return CycleEnd::Finished,
        () = shutdown.wait_for(1) => {}
    }
    tracing::info!(
        grace_s = grace.as_secs_f64(),
        "Stop requested during a cycle; letting it finish (a second signal abandons it)."
    );
    tokio::select! {
        biased;
        () = &mut cycle => CycleEnd::Finished,
        () = shutdown.wait_for(2) => {
            tracing::warn!("Second stop request: abandoning the current cycle.");
            CycleEnd::Abandoned
        }
        () = tokio::time::sleep(grace) => {
            if acted.is_some_and(|f| f.load(std::sync::atomic::Ordering::SeqCst)) {
                tracing::warn!(
                    grace_s = grace.as_secs_f64(),
                    "The grace period is over, but this cycle has journaled an action: waiting for its outcome (a second signal abandons it)."
                );
                tokio::select! {
                    biased;
                    () = &mut cycle => return CycleEnd::Finished,
                    () = shutdown.wait_for(2) => {
                        tracing::warn!("Second stop request: abandoning the current cycle and its action.");
                        return CycleEnd::Abandoned;
                    }
                }
            }
            tracing::warn!(grace_s = grace.as_secs_f64(), "The current cycle did not finish in time; abandoning it.");
            CycleEnd::Abandoned
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use chrono::TimeZone;

    use super::*;
    use crate::config::schedule::{parse_cron, parse_tz};

    /// A clock driven by tokio's (paused) timer, so sleeping advances it.
    struct TokioClock {
        base: DateTime<Utc>,
        start: tokio::time::Instant,
    }

    impl TokioClock {
        fn new(base: DateTime<Utc>) -> Self {
            Self { base, start: tokio::time::Instant::now() }
        }
    }

    impl Clock for TokioClock {
        fn now(&self) -> DateTime<Utc> {
            self.base + chrono::Duration::from_std(self.start.elapsed()).unwrap()
        }
    }

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 20, 14, 30, 0).unwrap()
    }

    /// Records (start, end) offsets in milliseconds from t0; each cycle takes `takes[i]` (the
    /// last one repeats); an optional stop request is made during cycle `stop_in`.
    struct Recorder {
        clock: Arc<TokioClock>,
        takes: Vec<Duration>,
        spans: Arc<Mutex<Vec<(i64, i64)>>>,
        stop_in: Option<(usize, ShutdownHandle)>,
        finished: Arc<Mutex<usize>>,
    }

    impl Cycles for Recorder {
        async fn run_cycle(&mut self, start: DateTime<Utc>) {
            let i = self.spans.lock().unwrap().len();
            let ms = |t: DateTime<Utc>| (t - t0()).num_milliseconds();
            self.spans.lock().unwrap().push((ms(start), -1));
            if let Some((n, h)) = &self.stop_in
                && *n == i
            {
                h.request();
            }
            tokio::time::sleep(*self.takes.get(i).or(self.takes.last()).unwrap()).await;
            self.spans.lock().unwrap()[i].1 = ms(self.clock.now());
            *self.finished.lock().unwrap() += 1;
        }
    }

    fn recorder(takes: &[u64]) -> Recorder {
        Recorder {
            clock: Arc::new(TokioClock::new(t0())),
            takes: takes.iter().map(|ms| Duration::from_millis(*ms)).collect(),
            spans: Arc::default(),
            stop_in: None,
            finished: Arc::default(),
        }
    }

    fn every(ms: u64) -> Schedule {
        Schedule::Every(Duration::from_millis(ms))
    }

    #[tokio::test(start_paused = true)]
    async fn fast_cycles_follow_the_schedule_not_the_finish_time() {
        let mut r = recorder(&[200]);
        let (_h, mut sd) = Shutdown::new();
        let clock = r.clock.clone();
        let end = run_loop(&every(1000), &*clock, Some(4), Duration::from_secs(5), &mut sd, &mut r).await;
        assert_eq!(end, LoopEnd { stopped: Stopped::MaxCycles, cycles: 4, last: Some(CycleEnd::Finished) });
        assert_eq!(*r.spans.lock().unwrap(), [(0, 200), (1000, 1200), (2000, 2200), (3000, 3200)]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_cycle_delays_the_next_and_never_stacks_missed_slots() {
        // Interval 1 s; the second cycle takes 3.5 s (three slots missed): one catch-up cycle
        // at its end, then the schedule continues from that cycle's start.
        let mut r = recorder(&[100, 3500, 100]);
        let (_h, mut sd) = Shutdown::new();
        let clock = r.clock.clone();
        let end = run_loop(&every(1000), &*clock, Some(5), Duration::from_secs(5), &mut sd, &mut r).await;
        assert_eq!(end.cycles, 5);
        let spans = r.spans.lock().unwrap().clone();
        assert_eq!(spans, [(0, 100), (1000, 4500), (4500, 4600), (5500, 5600), (6500, 6600)]);
        for w in spans.windows(2) {
            assert!(w[1].0 >= w[0].1, "cycles overlap: {spans:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_stop_request_lets_the_running_cycle_finish_and_starts_no_other() {
        let mut r = recorder(&[300]);
        let (h, mut sd) = Shutdown::new();
        r.stop_in = Some((1, h));
        let clock = r.clock.clone();
        let end = run_loop(&every(1000), &*clock, None, Duration::from_secs(5), &mut sd, &mut r).await;
        assert_eq!(end, LoopEnd { stopped: Stopped::Requested, cycles: 2, last: Some(CycleEnd::Finished) });
        assert_eq!(*r.finished.lock().unwrap(), 2);
        assert_eq!(*r.spans.lock().unwrap(), [(0, 300), (1000, 1300)]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_cycle_longer_than_the_grace_period_is_abandoned() {
        let mut r = recorder(&[60_000]);
        let (h, mut sd) = Shutdown::new();
        r.stop_in = Some((0, h));
        let clock = r.clock.clone();
        let end = run_loop(&every(1000), &*clock, None, Duration::from_secs(2), &mut sd, &mut r).await;
        assert_eq!(end, LoopEnd { stopped: Stopped::Requested, cycles: 1, last: Some(CycleEnd::Abandoned) });
        assert_eq!(*r.finished.lock().unwrap(), 0);
        assert_eq!(clock.now() - t0(), chrono::Duration::seconds(2));
    }

    /// Issue 12: a SIGTERM abandoned an action in flight when the grace period (2 x the broker
    /// timeout) ran out before `confirm_timeout` or an exec timeout: an intent with no outcome.
    #[tokio::test(start_paused = true)]
    async fn a_cycle_that_journaled_an_intent_is_not_abandoned_on_the_grace_period() {
        use std::sync::atomic::{AtomicBool, Ordering};
        let (h, mut sd) = Shutdown::new();
        let (acted, done) = (AtomicBool::new(false), AtomicBool::new(false));
        let cycle = async {
            acted.store(true, Ordering::SeqCst);
            h.request();
            tokio::time::sleep(Duration::from_secs(60)).await;
            done.store(true, Ordering::SeqCst);
        };
        assert_eq!(run_one(cycle, Duration::from_secs(2), &mut sd, Some(&acted)).await, CycleEnd::Finished);
        assert!(done.load(Ordering::SeqCst));

        // A second request still abandons it (the operator insists; the next start resolves it).
        let (h, mut sd) = Shutdown::new();
        let cycle = async {
            h.request();
            tokio::time::sleep(Duration::from_secs(5)).await;
            h.request();
            tokio::time::sleep(Duration::from_secs(60)).await;
        };
        assert_eq!(run_one(cycle, Duration::from_secs(2), &mut sd, Some(&acted)).await, CycleEnd::Abandoned);
    }

    #[tokio::test(start_paused = true)]
    async fn a_stop_request_while_waiting_returns_at_once() {
        let mut r = recorder(&[10]);
        let (h, mut sd) = Shutdown::new();
        let clock = r.clock.clone();
        let stopper = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            h.request();
        });
        let end = run_loop(&every(60_000), &*clock, None, Duration::from_secs(5), &mut sd, &mut r).await;
        stopper.await.unwrap();
        assert_eq!(end, LoopEnd { stopped: Stopped::Requested, cycles: 1, last: Some(CycleEnd::Finished) });
        assert_eq!(clock.now() - t0(), chrono::Duration::milliseconds(1500), "no wait for the 60 s slot");
    }

    #[tokio::test(start_paused = true)]
    async fn a_schedule_whose_next_slot_is_not_in_the_future_never_runs_cycles_back_to_back() {
        // The class of the DST incident, whatever the cause: a next slot at or before the
        // cycle's start. `every = 0` (refused by the configuration) is such a schedule.
        let mut r = recorder(&[40]);
        let (_h, mut sd) = Shutdown::new();
        let clock = r.clock.clone();
        let end = run_loop(&every(0), &*clock, Some(3), Duration::from_secs(5), &mut sd, &mut r).await;
        assert_eq!(end.cycles, 3);
        assert_eq!(*r.spans.lock().unwrap(), [(0, 40), (1040, 1080), (2080, 2120)]);
    }

    #[test]
    fn next_start_realigns_after_an_overrun() {
        let s = every(30_000);
        let at = |sec: i64| t0() + chrono::Duration::seconds(sec);
        assert_eq!(next_start(&s, at(0), at(2)), Some(NextStart { at: at(30), overran: None }));
        assert_eq!(next_start(&s, at(0), at(95)), Some(NextStart { at: at(95), overran: Some(at(30)) }));
        // The catch-up cycle's own next slot is counted from its start.
        assert_eq!(next_start(&s, at(95), at(96)), Some(NextStart { at: at(125), overran: None }));
    }

    #[test]
    fn cron_cycles_run_monday_to_friday_across_the_dst_change() {
        // Cycles of 20 s at 09:30 New York from Thursday 2026-03-05 to Tuesday 2026-03-10: the
        // weekend is skipped and the UTC start moves by an hour with the change to EDT (Sunday
        // 2026-03-08).
        let ny = parse_tz("America/New_York").unwrap();
        let s = parse_cron("30 9 * * Mon-Fri", ny).unwrap();
        let wed = Utc.with_ymd_and_hms(2026, 3, 4, 20, 0, 0).unwrap();
        let mut at = first_start(&s, wed).unwrap();
        let mut starts = Vec::new();
        for _ in 0..4 {
            starts.push(at.format("%a %H:%M UTC").to_string());
            at = next_start(&s, at, at + chrono::Duration::seconds(20)).unwrap().at;
        }
        assert_eq!(starts, ["Thu 14:30 UTC", "Fri 14:30 UTC", "Mon 13:30 UTC", "Tue 13:30 UTC"]);
    }

    #[tokio::test(start_paused = true)]
    async fn cron_waits_for_its_first_fire_time() {
        // Friday 2026-11-20 16:30 New York (21:30 UTC); next fire is Monday 09:30 (14:30 UTC).
        let ny = parse_tz("America/New_York").unwrap();
        let s = parse_cron("30 9 * * Mon-Fri", ny).unwrap();
        let base = Utc.with_ymd_and_hms(2026, 11, 20, 21, 30, 0).unwrap();
        let clock = Arc::new(TokioClock::new(base));
        let mut r = recorder(&[1000]);
        r.clock = clock.clone();
        let (_h, mut sd) = Shutdown::new();
        let end = run_loop(&s, &*clock, Some(1), Duration::from_secs(5), &mut sd, &mut r).await;
        assert_eq!(end.cycles, 1);
        let start = r.spans.lock().unwrap()[0].0;
        assert_eq!(
            t0() + chrono::Duration::milliseconds(start),
            Utc.with_ymd_and_hms(2026, 11, 23, 14, 30, 0).unwrap()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_start_inside_the_repeated_fall_back_hour_runs_no_burst_of_cycles() {
        // Incident: started at 01:30 EST on 2026-11-01 (the second 01:30 in New York) with
        // `* * * * *`, the daemon ran ~25 cycles a second because every next slot was an hour
        // in the past. Each cycle takes 40 ms; the three cycles must be a minute apart.
        let ny = parse_tz("America/New_York").unwrap();
        let s = parse_cron("* * * * *", ny).unwrap();
        let base = Utc.with_ymd_and_hms(2026, 11, 1, 6, 30, 10).unwrap();
        let clock = Arc::new(TokioClock::new(base));
        let mut r = recorder(&[40]);
        r.clock = clock.clone();
        let (_h, mut sd) = Shutdown::new();
        let end = run_loop(&s, &*clock, Some(3), Duration::from_secs(5), &mut sd, &mut r).await;
        assert_eq!(end.cycles, 3);
        let starts: Vec<DateTime<Utc>> =
            r.spans.lock().unwrap().iter().map(|(s, _)| t0() + chrono::Duration::milliseconds(*s)).collect();
        let minute = |m: u32| Utc.with_ymd_and_hms(2026, 11, 1, 6, m, 0).unwrap();
        assert_eq!(starts, [minute(31), minute(32), minute(33)]);
    }
}
