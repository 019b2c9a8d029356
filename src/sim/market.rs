//! The market clock and calendar: regular sessions of 09:30–16:00 America/New_York on every
//! weekday. Holidays and early closes are not modelled.
//!
//! Whether the market is open is the simulator's setting (scenario `clock.is_open`,
//! `POST /_sim/clock`), not the hour: tests must not depend on when they run. `next_open` and
//! `next_close` follow from that setting and the current time, so they are always ordered
//! sensibly: when open, the next close comes first; when closed, the next open does.

use chrono::{DateTime, Datelike, Days, FixedOffset, NaiveDate, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::America::New_York;
use serde::Serialize;

use crate::collect::broker::wire::AlpacaClock;

/// The regular open, Eastern time.
const OPEN: (u32, u32) = (9, 30);
/// The regular close, Eastern time.
const CLOSE: (u32, u32) = (16, 0);

/// A calendar day (`GET /v2/calendar`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CalendarDay {
    /// `YYYY-MM-DD`.
    pub date: String,
    /// `HH:MM` (alpaca-py rejects seconds).
    pub open: String,
    /// `HH:MM`.
    pub close: String,
    /// `HHMM`, the extended session.
    pub session_open: String,
    /// `HHMM`.
    pub session_close: String,
    /// The next trading day (T+1).
    pub settlement_date: String,
}

fn is_weekday(d: NaiveDate) -> bool {
    !matches!(d.weekday(), Weekday::Sat | Weekday::Sun)
}

fn eastern(date: NaiveDate, (h, m): (u32, u32)) -> DateTime<FixedOffset> {
    let naive = date.and_time(NaiveTime::from_hms_opt(h, m, 0).unwrap_or_default());
    // 09:30 and 16:00 never fall in a DST gap or fold.
    New_York.from_local_datetime(&naive).earliest().map_or_else(|| naive.and_utc().fixed_offset(), |t| t.fixed_offset())
}

/// The first weekday session boundary (`at`) strictly after `after`.
fn next_boundary(after: DateTime<Utc>, at: (u32, u32)) -> DateTime<FixedOffset> {
    let mut day = after.with_timezone(&New_York).date_naive();
    loop {
        if is_weekday(day) {
            let t = eastern(day, at);
            if t > after {
                return t;
            }
        }
        day = day + Days::new(1);
    }
}

/// The clock at `now` with the market forced open or closed.
#[must_use]
pub fn clock(now: DateTime<Utc>, is_open: bool) -> AlpacaClock {
    let (next_open, next_close) = if is_open {
        let close = next_boundary(now, CLOSE);
        (next_boundary(close.with_timezone(&Utc), OPEN), close)
    } else {
        let open = next_boundary(now, OPEN);
        (open, eastern(open.date_naive(), CLOSE))
    };
    AlpacaClock {
        timestamp: now.with_timezone(&New_York).fixed_offset(),
        is_open,
        next_open: Some(next_open),
        next_close: Some(next_close),
    }
}

/// The most days one calendar request returns.
pub const MAX_CALENDAR_DAYS: u64 = 3660;

/// Trading days from `start` to `end`, both inclusive (at most [`MAX_CALENDAR_DAYS`] calendar
/// days are scanned).
#[must_use]
pub fn calendar(start: NaiveDate, end: NaiveDate) -> Vec<CalendarDay> {
    let mut out = Vec::new();
    let mut day = start;
    let mut scanned = 0;
    while day <= end && scanned < MAX_CALENDAR_DAYS {
        if is_weekday(day) {
            let mut settle = day + Days::new(1);
            while !is_weekday(settle) {
                settle = settle + Days::new(1);
            }
            out.push(CalendarDay {
                date: day.format("%Y-%m-%d").to_string(),
                open: format!("{:02}:{:02}", OPEN.0, OPEN.1),
                close: format!("{:02}:{:02}", CLOSE.0, CLOSE.1),
                session_open: "0400".into(),
                session_close: "2000".into(),
                settlement_date: settle.format("%Y-%m-%d").to_string(),
            });
        }
        day = day + Days::new(1);
        scanned += 1;
    }
    out
}

/// Today's date in New York.
#[must_use]
pub fn today(now: DateTime<Utc>) -> NaiveDate {
    now.with_timezone(&New_York).date_naive()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn open_clock_closes_today_then_opens_tomorrow() {
        // Wednesday 2025-03-12 11:42 EDT.
        let c = clock(utc("2025-03-12T15:42:07Z"), true);
        assert_eq!(c.timestamp.to_rfc3339(), "2025-03-12T11:42:07-04:00");
        assert_eq!(c.next_close.unwrap().to_rfc3339(), "2025-03-12T16:00:00-04:00");
        assert_eq!(c.next_open.unwrap().to_rfc3339(), "2025-03-13T09:30:00-04:00");
    }

    #[test]
    fn closed_on_friday_evening_opens_monday() {
        // Friday 2025-03-14 18:00 EDT.
        let c = clock(utc("2025-03-14T22:00:00Z"), false);
        assert!(!c.is_open);
        assert_eq!(c.next_open.unwrap().to_rfc3339(), "2025-03-17T09:30:00-04:00");
        assert_eq!(c.next_close.unwrap().to_rfc3339(), "2025-03-17T16:00:00-04:00");
    }

    #[test]
    fn winter_offset() {
        let c = clock(utc("2025-01-06T15:00:00Z"), true);
        assert_eq!(c.next_close.unwrap().to_rfc3339(), "2025-01-06T16:00:00-05:00");
    }

    #[test]
    fn calendar_skips_weekends_and_settles_next_trading_day() {
        let d = |s| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let days = calendar(d("2025-03-14"), d("2025-03-17"));
        let dates: Vec<&str> = days.iter().map(|c| c.date.as_str()).collect();
        assert_eq!(dates, ["2025-03-14", "2025-03-17"]);
        assert_eq!(days[0].settlement_date, "2025-03-17");
        assert_eq!((days[0].open.as_str(), days[0].close.as_str()), ("09:30", "16:00"));
        assert!(calendar(d("2025-03-17"), d("2025-03-14")).is_empty());
    }
}
