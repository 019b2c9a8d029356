//! Durations as configuration and JSON write them: humantime strings (`"30s"`, `"5m"`, `"2h"`,
//! `"1h 30m"`). A leaf: config parses them, model and checks serialize them.

use std::time::Duration;

/// Parses a humantime duration.
///
/// # Errors
/// A plain sentence with an example of the expected form.
pub fn parse(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim())
        .map_err(|e| format!("`{text}` is not a duration ({e}); write it like \"30s\", \"5m\" or \"2h\""))
}

/// The longest duration configuration accepts: ten years. Every configured duration feeds
/// date arithmetic (`now + every`, `since + for`, `3 × every` for health, `Instant + timeout`);
/// chrono's dates end in the year 262143, so `every = "300000y"` overflowed `now + every` and
/// panicked. Ten years is far beyond any interval, hold or retention a watchdog needs, and far
/// inside every sum it feeds (see the `no_accepted_duration_overflows` test).
pub const MAX: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// Parses a configured duration: a humantime duration no longer than [`MAX`].
///
/// # Errors
/// As for [`parse`], or a sentence naming the limit.
pub fn parse_config(text: &str) -> Result<Duration, String> {
    let d = parse(text)?;
    if d > MAX {
        return Err(format!("`{text}` is longer than the limit of 3650 days (ten years)"));
    }
    Ok(d)
}

/// Formats a duration the way configuration writes it (`5m`, `1h 30m`).
#[must_use]
pub fn format(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

/// Serde helpers writing a `Duration` as a humantime string.
pub mod serde_humantime {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes `"5m"`.
    ///
    /// # Errors
    /// Never, beyond the serializer's own.
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format(*d))
    }

    /// Reads `"5m"`.
    ///
    /// # Errors
    /// When the text is not a duration.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        super::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_formats() {
        assert_eq!(parse("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse("1h 30m").unwrap(), Duration::from_secs(5400));
        assert!(parse("soon").is_err());
        assert_eq!(format(Duration::from_secs(300)), "5m");
    }

    #[test]
    fn every_300000y_is_refused_at_config_time() {
        let e = parse_config("300000y").unwrap_err();
        assert!(e.contains("longer than the limit"), "{e}");
        assert!(parse_config("99999999999999999999y").is_err());
        assert_eq!(parse_config("3650days").unwrap(), MAX);
        assert!(parse_config("3650days 1s").is_err());
    }

    /// Every accepted duration, fed to the arithmetic configuration feeds, cannot overflow:
    /// chrono conversion, `date ± d` from any date a bot or broker can carry within ±10000
    /// years of today, `3 × d` (status health) and `Instant + d` (confirm, lock waits).
    #[test]
    fn no_accepted_duration_overflows_the_arithmetic_it_feeds() {
        use chrono::{DateTime, TimeDelta, TimeZone, Utc};
        let dates: [DateTime<Utc>; 3] = [
            Utc.with_ymd_and_hms(1, 1, 1, 0, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(2026, 12, 6, 0, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59).unwrap(),
        ];
        let mut samples: Vec<Duration> = vec![Duration::ZERO, Duration::from_nanos(1), MAX];
        for _ in 0..2000 {
            samples.push(Duration::from_nanos(fastrand::u64(..=u64::try_from(MAX.as_nanos()).unwrap())));
        }
        for d in samples {
            let text = format(d);
            let back = parse_config(&text).expect("a formatted accepted duration parses");
            assert_eq!(back, d);
            let td = TimeDelta::from_std(d).expect("chrono holds every accepted duration");
            for at in dates {
                assert!(at.checked_add_signed(td).is_some() && at.checked_sub_signed(td).is_some(), "{text} at {at}");
            }
            assert!(d.checked_mul(3).is_some_and(|x| TimeDelta::from_std(x).is_ok()), "{text}");
            assert!(std::time::Instant::now().checked_add(d).is_some(), "{text}");
        }
    }
}
