//! `[schedule]`: `every` (a duration) or a 5-field crontab `cron` in a time zone.
//!
//! The `cron` crate wants a seconds field first and numbers days of the week 1 = Sunday
//! (Quartz style), while crontab numbers them 0 = Sunday (7 is Sunday too). Expressions are
//! converted here once, so the rest of the code sees a ready `cron::Schedule`.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

/// When cycles run.
#[derive(Debug, Clone)]
pub enum Schedule {
    /// A fixed interval between cycle starts.
    Every(Duration),
    /// A crontab expression in a time zone.
    Cron {
        /// The expression as the operator wrote it (5 fields).
        source: String,
        /// The converted schedule.
        schedule: Box<cron::Schedule>,
        /// The zone it is read in.
        tz: Tz,
    },
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
            Self::Cron { schedule, tz, .. } => {
                schedule.after(&after.with_timezone(tz)).next().map(|t| t.with_timezone(&Utc))
            }
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

/// Parses a 5-field crontab expression in `tz` into a schedule.
///
/// # Errors
/// A plain sentence when the expression does not have 5 fields or does not parse.
pub fn parse_cron(expr: &str, tz: Tz) -> Result<Schedule, String> {
    let converted = crontab_to_quartz(expr)?;
    let schedule =
        cron::Schedule::from_str(&converted).map_err(|e| format!("`{expr}` is not a valid crontab expression: {e}"))?;
    Ok(Schedule::Cron { source: expr.to_owned(), schedule: Box::new(schedule), tz })
}

/// Converts `min hour dom month dow` (crontab) into `sec min hour dom month dow` for `cron`.
///
/// # Errors
/// When there are not exactly 5 fields, or a day-of-week number is out of 0..=7.
pub fn crontab_to_quartz(expr: &str) -> Result<String, String> {
    let fields: Vec<&str> = expr.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!(
            "`{expr}` has {} fields; write the 5 crontab fields `minute hour day-of-month month day-of-week`",
            fields.len()
        ));
    }
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
            if n > 7 { Err(format!("day of week {n} is out of range 0-7")) } else { Ok(n % 7 + 1) }
        };
        match range.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (num(a)?, num(b)?);
                if b >= a {
                    out.push(format!("{a}-{b}{step_suffix}"));
                } else if step.is_none() {
                    // `5-7` (Fri-Sun) becomes `6-7,1`: Sunday wraps to 1.
                    out.push(format!("{a}-7"));
                    out.push(format!("1-{b}"));
                } else {
                    return Err(format!("day-of-week range `{range}` with a step wraps past Sunday; use names"));
                }
            }
            None => out.push(format!("{}{step_suffix}", num(range)?)),
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

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn converts_crontab_fields() {
        assert_eq!(crontab_to_quartz("*/5 9-16 * * Mon-Fri").unwrap(), "0 */5 9-16 * * Mon-Fri");
        assert_eq!(crontab_to_quartz("30 9 * * 1-5").unwrap(), "0 30 9 * * 2-6");
        assert_eq!(crontab_to_quartz("0 0 * * 0,7").unwrap(), "0 0 0 * * 1,1");
        assert_eq!(crontab_to_quartz("0 0 * * 5-7").unwrap(), "0 0 0 * * 6-7,1-1");
        assert!(crontab_to_quartz("0 30 9 * * 1").is_err());
        assert!(crontab_to_quartz("0 9 * * 8").is_err());
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
}
