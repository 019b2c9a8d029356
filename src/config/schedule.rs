//! `[schedule]`: `every` (a duration) or a 5-field crontab `cron` in a time zone.
//!
//! The `cron` crate wants a seconds field first and numbers days of the week 1 = Sunday
//! (Quartz style), while crontab numbers them 0 = Sunday (7 is Sunday too). Expressions are
//! converted here once. The crate is used only to list matching *wall-clock readings* (it runs
//! on a naive local time carried in a UTC value); turning readings into instants is done here,
//! because the crate's own time-zone handling reads the wall clock of `after` and can answer an
//! instant in the past inside a repeated hour (the daemon then ran ~25 cycles a second) and
//! silently drops the repeated hour and the skipped one.
//!
//! Semantics (crontab(5) plus a precise rule for clock changes):
//! - a tick is an instant whose wall-clock reading in `tz` matches the expression;
//! - fall-back (a repeated hour): each *reading* of a matching minute fires once, so `*/5`
//!   keeps running every 5 minutes through the change and `30 1 * * *` fires at 01:30 EDT and
//!   again at 01:30 EST, an hour later: the watchdog never goes an hour without a cycle;
//! - spring-forward (skipped minutes): matching minutes that do not exist fire once together,
//!   at the first wall-clock minute after the jump (`30 2 * * *` runs at 03:00 that day);
//! - day of month and day of week: when both are restricted (neither starts with `*`), a day
//!   matches if either does, as crontab(5) says (`0 9 5 * Sun`: the 5th and every Sunday);
//!   otherwise both must match (a field starting with `*`, like `*/2`, counts as unrestricted,
//!   as in Vixie cron).
//!
//! `next_after` is always strictly after its argument, so successive ticks strictly increase.

use std::iter::Peekable;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, LocalResult, NaiveDateTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;

use super::reader::TableReader;

/// When cycles run.
#[derive(Debug, Clone)]
pub enum Schedule {
    /// A fixed interval between cycle starts.
    Every(Duration),
    /// A crontab expression in a time zone.
    Cron {
        /// The expression as the operator wrote it (5 fields).
        source: String,
        /// The converted expression.
        schedule: Box<Crontab>,
        /// The zone it is read in.
        tz: Tz,
    },
}

/// A converted crontab expression: one `cron` schedule, or two whose matches are united when
/// day of month and day of week are both restricted (the crate would AND them).
#[derive(Debug, Clone)]
pub struct Crontab {
    alternatives: Vec<cron::Schedule>,
}

impl Default for Schedule {
    fn default() -> Self {
        Self::Every(Duration::from_secs(30))
    }
}

impl Schedule {
    /// The first fire time strictly after `after`.
    #[must_use]
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            // Checked: past the end of chrono's calendar there is no next fire time (a panic
            // here was `every = "300000y"`); the config reader caps `every` well inside it.
            Self::Every(d) => chrono::Duration::from_std(*d).ok().and_then(|d| after.checked_add_signed(d)),
            Self::Cron { schedule, tz, .. } => schedule.next_after(*tz, after),
        }
    }

    /// The nominal interval, for health checks (`/healthz`): `every`, or the gap between the
    /// next two fire times of a cron schedule.
    #[must_use]
    pub fn nominal_interval(&self, now: DateTime<Utc>) -> Duration {
        match self {
            Self::Every(d) => *d,
            Self::Cron { .. } => {
                let a = self.next_after(now);
                let b = a.and_then(|a| self.next_after(a));
                match (a, b) {
                    (Some(a), Some(b)) => (b - a).to_std().unwrap_or(Duration::from_secs(60)),
                    _ => Duration::from_secs(60),
                }
            }
        }
    }
}

/// How far around an instant UTC offsets are sampled, and the sampling step. A repeated or
/// skipped stretch of wall-clock time is at most a day long in the tz database, and no offset
/// lasts less than half an hour.
const OFFSET_WINDOW: chrono::Duration = chrono::Duration::hours(26);
const OFFSET_STEP: chrono::Duration = chrono::Duration::minutes(30);

/// The smallest and largest UTC offset in effect from `from` over `OFFSET_WINDOW` in the
/// direction of `sign` (+1 forward, -1 backward).
fn offsets_near(tz: Tz, from: DateTime<Utc>, sign: i32) -> (chrono::Duration, chrono::Duration) {
    let steps = (OFFSET_WINDOW.num_minutes() / OFFSET_STEP.num_minutes()) as i32;
    let mut lo = chrono::Duration::MAX;
    let mut hi = chrono::Duration::MIN;
    for k in 0..=steps {
        let t = from + OFFSET_STEP * (sign * k);
        let off =
            chrono::Duration::seconds(i64::from(tz.offset_from_utc_datetime(&t.naive_utc()).fix().local_minus_utc()));
        lo = lo.min(off);
        hi = hi.max(off);
    }
    (lo, hi)
}

/// The earliest instant strictly after `after` at which the wall clock in `tz` reads `local`,
/// or, when `local` is skipped by a spring-forward change, the first existing minute after it.
fn instant_of(tz: Tz, local: NaiveDateTime, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) => Some(t.with_timezone(&Utc)).filter(|t| *t > after),
        LocalResult::Ambiguous(first, second) => {
            [first, second].into_iter().map(|t| t.with_timezone(&Utc)).find(|t| *t > after)
        }
        LocalResult::None => {
            // Walk to the end of the gap (whole minutes: offsets are whole minutes since 1970).
            let mut probe = local;
            for _ in 0..OFFSET_WINDOW.num_minutes() {
                probe += chrono::Duration::minutes(1);
                if let Some(t) = tz.from_local_datetime(&probe).earliest() {
                    return Some(t.with_timezone(&Utc)).filter(|t| *t > after);
                }
            }
            None
        }
    }
}

impl Crontab {
    /// Matching wall-clock readings strictly after `local`, in increasing order, each once.
    fn readings_after(&self, local: NaiveDateTime) -> impl Iterator<Item = NaiveDateTime> + '_ {
        let carrier = Utc.from_utc_datetime(&local);
        let mut streams: Vec<Peekable<cron::ScheduleIterator<'_, Utc>>> =
            self.alternatives.iter().map(|s| s.after(&carrier).peekable()).collect();
        std::iter::from_fn(move || {
            let next = streams.iter_mut().filter_map(|s| s.peek().copied()).min()?;
            for s in &mut streams {
                if s.peek() == Some(&next) {
                    s.next();
                }
            }
            Some(next.naive_utc())
        })
    }

    /// Whether a wall-clock reading matches (crontab day semantics included).
    #[must_use]
    pub fn matches(&self, local: NaiveDateTime) -> bool {
        let carrier = Utc.from_utc_datetime(&local);
        self.alternatives.iter().any(|s| s.includes(carrier))
    }

    /// The first tick strictly after `after` (see the module's semantics).
    fn next_after(&self, tz: Tz, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        // Instants after `after` read at least `after + lo` on the wall clock (lo: the smallest
        // offset about to be in effect; smaller than now inside or just before a fall-back),
        // so readings from there on are the only candidates. A second back makes the crate's
        // strict `after` include that reading itself.
        let (lo, _) = offsets_near(tz, after, 1);
        let start = after.naive_utc() + lo - chrono::Duration::seconds(1);
        let mut best: Option<(DateTime<Utc>, chrono::Duration)> = None;
        for local in self.readings_after(start) {
            // A later reading maps to an instant no earlier than `local - hi`, hi being the
            // largest offset in the day before the best tick: past that, nothing can beat it.
            if let Some((b, hi)) = best
                && local - hi >= b.naive_utc()
            {
                break;
            }
            if let Some(t) = instant_of(tz, local, after)
                && best.is_none_or(|(b, _)| t < b)
            {
                best = Some((t, offsets_near(tz, t, -1).1));
            }
        }
        best.map(|(t, _)| t)
    }
}

/// Parses a 5-field crontab expression in `tz` into a schedule.
///
/// # Errors
/// A plain sentence in crontab terms when the expression does not have 5 fields, a field does
/// not parse, or the expression never fires.
pub fn parse_cron(expr: &str, tz: Tz) -> Result<Schedule, String> {
    let fields = crontab_fields(expr)?;
    // Each field is checked alone, so an error names the crontab field, not a position in
    // the converted 6-field form the operator never wrote.
    for (i, name) in FIELD_NAMES.iter().enumerate() {
        let mut alone = ["*"; 5].map(str::to_owned);
        alone[i] = fields[i].to_owned();
        let [min, hour, dom, month, dow] = alone;
        let dow = convert_dow(&dow).map_err(|e| format!("`{expr}`: the {name} field `{}`: {e}", fields[i]))?;
        cron::Schedule::from_str(&format!("0 {min} {hour} {dom} {month} {dow}")).map_err(|e| {
            let (f, range) = (fields[i], FIELD_RANGES[i]);
            match crate_reason(&e) {
                Some(why) => format!("`{expr}`: the {name} field `{f}` is not valid ({name} is {range}): {why}"),
                None => format!("`{expr}`: the {name} field `{f}` is not valid ({name} is {range})"),
            }
        })?;
    }
    let restricted = |f: &str| !(f.starts_with('*') || f.starts_with('?'));
    let [min, hour, dom, month, dow] = fields;
    let variants: Vec<(&str, &str)> =
        if restricted(dom) && restricted(dow) { vec![(dom, "*"), ("*", dow)] } else { vec![(dom, dow)] };
    let mut alternatives = Vec::new();
    for (dom, dow) in variants {
        let converted =
            format!("0 {min} {hour} {dom} {month} {}", convert_dow(dow).map_err(|e| format!("`{expr}`: {e}"))?);
        alternatives.push(
            cron::Schedule::from_str(&converted)
                .map_err(|e| format!("`{expr}` is not a valid crontab expression: {e}"))?,
        );
    }
    let tab = Crontab { alternatives };
    // `0 0 31 2 *` parses but never fires; a daemon on it would wait forever.
    if tab.readings_after(DateTime::UNIX_EPOCH.naive_utc()).next().is_none() {
        return Err(format!("`{expr}` never fires (no date matches it)"));
    }
    Ok(Schedule::Cron { source: expr.to_owned(), schedule: Box::new(tab), tz })
}

/// The crate's reason without the converted expression and caret it prints above it; `None`
/// for its range messages, which are off by one ("Minutes must be less than 59" for 60).
fn crate_reason(e: &cron::error::Error) -> Option<String> {
    let text = e.to_string();
    let last = text.lines().map(str::trim).rfind(|l| !l.is_empty() && !l.starts_with('^'))?;
    (!last.contains("must be") && !last.contains("* *")).then(|| last.to_owned())
}

const FIELD_RANGES: [&str; 5] = ["0-59", "0-23", "1-31", "1-12 or Jan-Dec", "0-7 or Sun-Sat"];

const FIELD_NAMES: [&str; 5] = ["minute", "hour", "day-of-month", "month", "day-of-week"];

fn crontab_fields(expr: &str) -> Result<[&str; 5], String> {
    let fields: Vec<&str> = expr.split_whitespace().collect();
    <[&str; 5]>::try_from(fields.as_slice()).map_err(|_| {
        format!(
            "`{expr}` has {} fields; write the 5 crontab fields `minute hour day-of-month month day-of-week`",
            fields.len()
        )
    })
}

/// Converts `min hour dom month dow` (crontab) into `sec min hour dom month dow` for `cron`.
///
/// # Errors
/// When there are not exactly 5 fields, or a day-of-week number is out of 0..=7.
pub fn crontab_to_quartz(expr: &str) -> Result<String, String> {
    let fields = crontab_fields(expr)?;
    let dow = convert_dow(fields[4]).map_err(|e| format!("`{expr}`: {e}"))?;
    Ok(format!("0 {} {} {} {} {dow}", fields[0], fields[1], fields[2], fields[3]))
}

fn convert_dow(field: &str) -> Result<String, String> {
    let mut out = Vec::new();
    for item in field.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => (r, Some(s)),
            None => (item, None),
        };
        let step_suffix = step.map(|s| format!("/{s}")).unwrap_or_default();
        if range == "*" || range == "?" || range.chars().any(|c| c.is_ascii_alphabetic()) {
            // Names (`Mon-Fri`) mean the same in both dialects.
            out.push(format!("{range}{step_suffix}"));
            continue;
        }
        let num = |s: &str| -> Result<u32, String> {
            let n: u32 = s.parse().map_err(|_| format!("`{s}` is not a day of the week"))?;
            if n > 7 { Err(format!("day of week {n} is out of range 0-7")) } else { Ok(n) }
        };
        // The crate's days are crontab's plus one, with Sunday only at 1: `0-7` would become
        // `1-1` (Sunday only, not every day) and `5-7` a backwards range. Numeric ranges are
        // therefore expanded in crontab numbering and each day converted on its own.
        match range.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (num(a)?, num(b)?);
                if b < a {
                    return Err(format!("day-of-week range `{range}` runs backwards; write it as a list"));
                }
                let step = match step {
                    Some(s) => {
                        s.parse::<usize>().ok().filter(|s| *s > 0).ok_or_else(|| format!("`{s}` is not a step"))?
                    }
                    None => 1,
                };
                for day in (a..=b).step_by(step) {
                    let quartz = (day % 7 + 1).to_string();
                    if !out.contains(&quartz) {
                        out.push(quartz);
                    }
                }
            }
            None => out.push(format!("{}{step_suffix}", num(range)? % 7 + 1)),
        }
    }
    Ok(out.join(","))
}

/// Parses a time-zone name.
///
/// # Errors
/// When the name is not an IANA zone.
pub fn parse_tz(name: &str) -> Result<Tz, String> {
    Tz::from_str(name).map_err(|_| format!("`{name}` is not an IANA time zone like \"America/New_York\""))
}

/// Reads `[schedule]`; absent, the default.
pub(super) fn read_schedule(r: Option<TableReader<'_, '_>>) -> Option<Schedule> {
    let Some(mut r) = r else { return Some(Schedule::default()) };
    let tz = r.get_parsed("tz", parse_tz).unwrap_or(chrono_tz::America::New_York);
    let out = match (r.has("every"), r.has("cron")) {
        (true, true) => {
            r.problem_key("cron", "[schedule] takes `every` or `cron`, not both");
            // Each value is still checked, so its own problems come in the same run.
            let _ = r.duration("every");
            let _ = r.get_parsed("cron", |s| parse_cron(s, tz));
            None
        }
        (_, true) => r.get_parsed("cron", |s| parse_cron(s, tz)),
        (true, false) => {
            let every = r.duration("every");
            // Short intervals exist for soak tests against the simulator; against Alpaca (200
            // requests a minute, 5 per cycle) anything under 2s is throttled by the broker.
            if every.is_some_and(|d| d < Duration::from_millis(10)) {
                r.problem_key("every", "`every` in [schedule] must be at least 10ms");
                None
            } else {
                every.map(Schedule::Every)
            }
        }
        (false, false) => Some(Schedule::default()),
    };
    r.finish(&["every", "cron", "tz"]);
    out
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn converts_crontab_fields() {
        assert_eq!(crontab_to_quartz("*/5 9-16 * * Mon-Fri").unwrap(), "0 */5 9-16 * * Mon-Fri");
        assert_eq!(crontab_to_quartz("30 9 * * 1-5").unwrap(), "0 30 9 * * 2,3,4,5,6");
        assert_eq!(crontab_to_quartz("0 0 * * 0,7").unwrap(), "0 0 0 * * 1,1");
        assert_eq!(crontab_to_quartz("0 0 * * 5-7").unwrap(), "0 0 0 * * 6,7,1");
        assert_eq!(crontab_to_quartz("0 0 * * 1-5/2").unwrap(), "0 0 0 * * 2,4,6");
        assert!(crontab_to_quartz("0 0 * * 5-1").is_err());
        assert!(crontab_to_quartz("0 30 9 * * 1").is_err());
        assert!(crontab_to_quartz("0 9 * * 8").is_err());
    }

    #[test]
    fn day_of_week_0_to_7_is_every_day() {
        // crontab numbers Sunday 0 and 7; the crate numbers it 1 only, and `0-7` converted
        // range-wise became `1-1`: Sunday only.
        let ny = parse_tz("America/New_York").unwrap();
        let days = |expr: &str| -> Vec<String> {
            let s = parse_cron(expr, ny).unwrap();
            let mut t = Utc.with_ymd_and_hms(2026, 11, 2, 0, 0, 0).unwrap();
            (0..7)
                .map(|_| {
                    t = s.next_after(t).unwrap();
                    t.with_timezone(&ny).format("%a").to_string()
                })
                .collect()
        };
        assert_eq!(days("0 9 * * 0-7"), ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]);
        assert_eq!(days("0 9 * * 1-7")[..], days("0 9 * * *")[..]);
        assert_eq!(days("0 9 * * 5-7/2")[..4], ["Fri", "Sun", "Fri", "Sun"]);
        assert_eq!(days("0 9 * * 6-7")[..4], ["Sat", "Sun", "Sat", "Sun"]);
    }

    #[test]
    fn mon_fri_skips_the_weekend() {
        let ny = parse_tz("America/New_York").unwrap();
        for expr in ["30 9 * * Mon-Fri", "30 9 * * 1-5"] {
            let s = parse_cron(expr, ny).unwrap();
            // Friday 2026-11-20 10:00 New York = 15:00 UTC.
            let fri = Utc.with_ymd_and_hms(2026, 11, 20, 15, 0, 0).unwrap();
            let next = s.next_after(fri).unwrap();
            assert_eq!(next, Utc.with_ymd_and_hms(2026, 11, 23, 14, 30, 0).unwrap(), "{expr}");
        }
    }

    #[test]
    fn follows_the_dst_change() {
        let ny = parse_tz("America/New_York").unwrap();
        let s = parse_cron("30 9 * * Mon-Fri", ny).unwrap();
        // Friday 2026-03-06 (EST, UTC-5) then Monday 2026-03-09 (EDT, UTC-4).
        let fri = Utc.with_ymd_and_hms(2026, 3, 6, 14, 30, 0).unwrap();
        let next = s.next_after(fri).unwrap();
        assert_eq!(next, Utc.with_ymd_and_hms(2026, 3, 9, 13, 30, 0).unwrap());
        assert_eq!(s.nominal_interval(fri), Duration::from_secs(86_400));
    }

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    fn ticks(s: &Schedule, from: DateTime<Utc>, n: usize) -> Vec<DateTime<Utc>> {
        let mut out = Vec::new();
        let mut at = from;
        for _ in 0..n {
            at = s.next_after(at).unwrap();
            out.push(at);
        }
        out
    }

    #[test]
    fn a_start_in_the_repeated_fall_back_hour_gets_a_next_tick_in_the_future() {
        // 2026-11-01 01:30 EST (the second 01:30 in New York) is 06:30 UTC. The old code read
        // the wall clock, found 01:31, took its first (EDT) reading, 05:31 UTC: the past.
        let ny = parse_tz("America/New_York").unwrap();
        let s = parse_cron("* * * * *", ny).unwrap();
        assert_eq!(s.next_after(utc(2026, 11, 1, 6, 30)), Some(utc(2026, 11, 1, 6, 31)));
        let s = parse_cron("*/15 * * * *", ny).unwrap();
        assert_eq!(s.next_after(utc(2026, 11, 1, 6, 50)), Some(utc(2026, 11, 1, 7, 0)));
    }

    #[test]
    fn running_through_the_fall_back_change_skips_no_hour() {
        // From 01:50 EDT: 01:55 EDT, then the repeated hour in EST (01:00 ... 01:55), then 02:00.
        let ny = parse_tz("America/New_York").unwrap();
        let s = parse_cron("*/5 * * * *", ny).unwrap();
        let got = ticks(&s, utc(2026, 11, 1, 5, 50), 14);
        let want: Vec<DateTime<Utc>> =
            (0..14).map(|i| utc(2026, 11, 1, 5, 55) + chrono::Duration::minutes(5 * i)).collect();
        assert_eq!(got, want);
        // A daily job at 01:30 runs in both readings of 01:30 (instants an hour apart), once each.
        let s = parse_cron("30 1 * * *", ny).unwrap();
        assert_eq!(
            ticks(&s, utc(2026, 11, 1, 0, 0), 3),
            [utc(2026, 11, 1, 5, 30), utc(2026, 11, 1, 6, 30), utc(2026, 11, 2, 6, 30)]
        );
    }

    #[test]
    fn a_time_in_the_skipped_spring_hour_fires_once_when_the_clock_jumps() {
        // 2026-03-08 New York: 02:00 EST becomes 03:00 EDT (07:00 UTC); 02:30 never happens.
        let ny = parse_tz("America/New_York").unwrap();
        let s = parse_cron("30 2 * * *", ny).unwrap();
        assert_eq!(
            ticks(&s, utc(2026, 3, 8, 0, 0), 2),
            [utc(2026, 3, 8, 7, 0), utc(2026, 3, 9, 6, 30)],
            "the skipped 02:30 fires at the jump, not a day later"
        );
        // Every-5-minutes: 01:55 EST, then the skipped minutes collapse into one tick at 03:00 EDT.
        let s = parse_cron("*/5 * * * *", ny).unwrap();
        assert_eq!(
            ticks(&s, utc(2026, 3, 8, 6, 50), 3),
            [utc(2026, 3, 8, 6, 55), utc(2026, 3, 8, 7, 0), utc(2026, 3, 8, 7, 5)]
        );
    }

    #[test]
    fn day_of_month_and_day_of_week_both_restricted_fire_on_either() {
        // crontab(5): `0 9 5 * Sun` runs on the 5th of every month and on every Sunday.
        let ny = parse_tz("America/New_York").unwrap();
        let days = |expr: &str| -> Vec<String> {
            let s = parse_cron(expr, ny).unwrap();
            ticks(&s, utc(2026, 11, 2, 12, 0), 7)
                .iter()
                .map(|t| t.with_timezone(&ny).format("%a %d %b %H:%M").to_string())
                .collect()
        };
        // From Monday 2026-11-02: Sundays 8, 15, 22, 29; Thursday 5; December: Saturday 5, Sundays 6, 13.
        assert_eq!(
            days("0 9 5 * Sun"),
            [
                "Thu 05 Nov 09:00",
                "Sun 08 Nov 09:00",
                "Sun 15 Nov 09:00",
                "Sun 22 Nov 09:00",
                "Sun 29 Nov 09:00",
                "Sat 05 Dec 09:00",
                "Sun 06 Dec 09:00"
            ]
        );
        assert_eq!(days("0 9 5 * 0"), days("0 9 5 * Sun"));
        assert_eq!(days("0 9 * * Sun")[..3], ["Sun 08 Nov 09:00", "Sun 15 Nov 09:00", "Sun 22 Nov 09:00"]);
        assert_eq!(days("0 9 5 * *")[..3], ["Thu 05 Nov 09:00", "Sat 05 Dec 09:00", "Tue 05 Jan 09:00"]);
        // A field starting with `*` counts as unrestricted (as in Vixie cron): both must match,
        // so `*/2` (odd days) and Sunday.
        assert_eq!(days("0 9 */2 * Sun")[..2], ["Sun 15 Nov 09:00", "Sun 29 Nov 09:00"]);
    }

    /// The 2026 clock changes (UTC) of the zones the property test covers; Kolkata has none.
    const CHANGES: &[(&str, &str)] = &[
        ("America/New_York", "2026-03-08T07:00:00Z"),
        ("America/New_York", "2026-11-01T06:00:00Z"),
        ("Europe/London", "2026-03-29T01:00:00Z"),
        ("Europe/London", "2026-10-25T01:00:00Z"),
        ("Australia/Lord_Howe", "2026-04-04T15:00:00Z"),
        ("Australia/Lord_Howe", "2026-10-03T15:30:00Z"),
        ("America/Santiago", "2026-04-05T03:00:00Z"),
        ("America/Santiago", "2026-09-06T04:00:00Z"),
        ("Pacific/Chatham", "2026-04-04T14:00:00Z"),
        ("Pacific/Chatham", "2026-09-26T14:00:00Z"),
        ("Asia/Kolkata", "2026-11-01T06:00:00Z"),
    ];

    const EXPRS: &[&str] = &[
        "* * * * *",
        "*/5 * * * *",
        "*/7 * * * *",
        "30 1 * * *",
        "30 2 * * *",
        "0 0 * * *",
        "15,45 0-3 * * *",
        "59 1 * * *",
        "0 2 * * Sun",
        "0 * * * Sat,Sun",
        "*/20 0-4 4,5,6 * Sun",
        "0 9 5 * Sun",
    ];

    /// The ticks in `(from, to]` by brute force, one UTC minute at a time: a minute is a tick
    /// when its wall-clock reading matches, or when the clock just jumped forward over a
    /// reading that matches.
    fn brute_force(tab: &Crontab, tz: Tz, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<DateTime<Utc>> {
        let reading = |t: DateTime<Utc>| t.with_timezone(&tz).naive_local();
        let minute = chrono::Duration::minutes(1);
        let mut t = Utc.timestamp_opt(from.timestamp().div_euclid(60) * 60, 0).unwrap() + minute;
        let mut out = Vec::new();
        while t <= to {
            let (now, before) = (reading(t), reading(t - minute));
            let mut skipped = before + minute;
            let mut jumped_over_a_match = false;
            while skipped < now {
                jumped_over_a_match |= tab.matches(skipped);
                skipped += minute;
            }
            if tab.matches(now) || jumped_over_a_match {
                out.push(t);
            }
            t += minute;
        }
        out
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(96))]
        #[test]
        fn ticks_are_strictly_after_increasing_and_once_per_matching_minute(
            change in 0..CHANGES.len(),
            expr in 0..EXPRS.len(),
            before_ms in 0i64..(30 * 3_600_000),
        ) {
            let (zone, at) = CHANGES[change];
            let tz = parse_tz(zone).unwrap();
            let Schedule::Cron { schedule: tab, .. } = parse_cron(EXPRS[expr], tz).unwrap() else { unreachable!() };
            let s = Schedule::Cron { source: EXPRS[expr].into(), schedule: tab.clone(), tz };
            let from = DateTime::parse_from_rfc3339(at).unwrap().with_timezone(&Utc)
                - chrono::Duration::milliseconds(before_ms);
            let to = from + chrono::Duration::hours(32);
            let mut got = Vec::new();
            let mut prev = from;
            loop {
                let next = s.next_after(prev).unwrap();
                proptest::prop_assert!(next > prev, "{} in {zone}: {next} is not after {prev}", EXPRS[expr]);
                if next > to {
                    break;
                }
                got.push(next);
                prev = next;
            }
            let want = brute_force(&tab, tz, from, to);
            proptest::prop_assert_eq!(got, want, "{} in {} from {}", EXPRS[expr], zone, from);
        }
    }

    #[test]
    fn errors_name_the_crontab_field() {
        let ny = parse_tz("America/New_York").unwrap();
        let err = |e: &str| parse_cron(e, ny).unwrap_err();
        assert_eq!(err("61 * * * *"), "`61 * * * *`: the minute field `61` is not valid (minute is 0-59)");
        assert!(err("0 9 * * Funday").contains("the day-of-week field `Funday`"), "{}", err("0 9 * * Funday"));
        assert!(err("0 9 * * 8").contains("the day-of-week field `8`: day of week 8 is out of range 0-7"));
        assert!(err("0 24 * * *").contains("the hour field `24`"), "{}", err("0 24 * * *"));
        assert!(err("0 9 32 * *").contains("the day-of-month field `32`"), "{}", err("0 9 32 * *"));
        assert!(err("0 9 * 13 *").contains("the month field `13`"), "{}", err("0 9 * 13 *"));
        assert!(err("0 0 9 * * *").contains("has 6 fields; write the 5 crontab fields"));
        assert_eq!(err("0 0 31 2 *"), "`0 0 31 2 *` never fires (no date matches it)");
        for e in ["61 * * * *", "0 24 * * *", "0 9 * * Funday"] {
            assert!(!err(e).contains("0 61") && !err(e).contains("0 0 24"), "6-field form leaked: {}", err(e));
        }
    }
}
