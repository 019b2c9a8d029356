//! Event timestamps as bots write them: RFC 3339 with any offset, ISO without an offset (UTC),
//! or epoch seconds / milliseconds / microseconds / nanoseconds, told apart by magnitude.

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde_json::Value;

/// Epoch values at or above this are milliseconds (1e11 s is the year 5138).
const MS_FROM: i128 = 100_000_000_000;
const US_FROM: i128 = 100_000_000_000_000;
const NS_FROM: i128 = 100_000_000_000_000_000;

/// Reads a timestamp from a JSON value.
///
/// # Errors
/// A plain sentence naming what was found.
pub fn timestamp_from_json(value: &Value) -> Result<DateTime<Utc>, String> {
    match value {
        Value::String(s) => parse_timestamp(s),
        Value::Number(_) => {
            let d = crate::num::decimal_from_json(value)?;
            from_epoch(d)
        }
        Value::Null => Err("is null, expected a timestamp".into()),
        other => Err(format!("is {}, expected a timestamp", kind(other))),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Bool(_) => "a boolean",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Null => "null",
    }
}

/// Parses timestamp text: RFC 3339 (`2025-12-19T16:05:11.878296+00:00`, `…Z`), ISO 8601
/// without an offset (taken as UTC, with `T` or a space), or epoch digits.
///
/// # Errors
/// When the text is none of those.
pub fn parse_timestamp(text: &str) -> Result<DateTime<Utc>, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("is an empty string, expected a timestamp".into());
    }
    if let Ok(dt) = DateTime::parse_from_rfc3339(t) {
        return Ok(dt.with_timezone(&Utc));
    }
    // RFC 3339 with a space instead of `T`, with an offset.
    if let Ok(dt) = DateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S%.f%:z") {
        return Ok(dt.with_timezone(&Utc));
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M"] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(t, fmt) {
            return Ok(Utc.from_utc_datetime(&naive));
        }
    }
    if t.bytes().all(|b| b.is_ascii_digit() || b == b'.' || b == b'-')
        && let Ok(d) = crate::num::parse_decimal(t)
    {
        return from_epoch(d);
    }
    let shown: String = t.chars().take(40).collect();
    Err(format!("`{shown}` is not a timestamp (RFC 3339, ISO 8601, or epoch seconds/ms)"))
}

/// Epoch seconds, milliseconds, microseconds or nanoseconds, chosen by magnitude.
///
/// # Errors
/// When the value is out of chrono's range.
pub fn from_epoch(value: Decimal) -> Result<DateTime<Utc>, String> {
    let whole = value.trunc().to_i128().ok_or("epoch value out of range")?;
    let abs = whole.abs();
    let nanos_per_unit: i128 = if abs >= NS_FROM {
        1
    } else if abs >= US_FROM {
        1_000
    } else if abs >= MS_FROM {
        1_000_000
    } else {
        1_000_000_000
    };
    let nanos = (value * Decimal::from(nanos_per_unit)).trunc().to_i128().ok_or("epoch value out of range")?;
    let secs = i64::try_from(nanos.div_euclid(1_000_000_000)).map_err(|_| "epoch value out of range")?;
    let sub = u32::try_from(nanos.rem_euclid(1_000_000_000)).map_err(|_| "epoch value out of range")?;
    DateTime::from_timestamp(secs, sub).ok_or_else(|| format!("epoch value {value} is out of range"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn formats_seen_in_the_wild() {
        let want = utc("2025-12-19T16:05:11Z");
        for v in [
            json!("2025-12-19T16:05:11+00:00"),
            json!("2025-12-19T11:05:11-05:00"),
            json!("2025-12-19T16:05:11Z"),
            json!("2025-12-19T16:05:11"),
            json!("2025-12-19 16:05:11"),
            json!(1_766_160_311),
            json!(1_766_160_311_000_i64),
            json!("1766160311"),
            json!(1_766_160_311_000_000_i64),
        ] {
            assert_eq!(timestamp_from_json(&v).unwrap(), want, "{v}");
        }
        assert_eq!(
            timestamp_from_json(&json!("2025-12-19T16:05:11.878296+00:00")).unwrap(),
            utc("2025-12-19T16:05:11.878296Z")
        );
        assert_eq!(timestamp_from_json(&json!(1_766_160_311.5)).unwrap(), utc("2025-12-19T16:05:11.5Z"));
        assert_eq!(
            timestamp_from_json(&json!("2023-12-12T22:31:24.668464435Z")).unwrap().timestamp_subsec_nanos(),
            668_464_435
        );
    }

    #[test]
    fn rejects_garbage() {
        for v in [json!(null), json!("yesterday"), json!(true), json!(""), json!({})] {
            assert!(timestamp_from_json(&v).is_err(), "{v}");
        }
    }

    #[test]
    fn far_future_and_far_past() {
        assert_eq!(parse_timestamp("9999-12-31T23:59:59Z").unwrap(), utc("9999-12-31T23:59:59Z"));
        assert_eq!(parse_timestamp("0001-01-01T00:00:00Z").unwrap().timestamp(), -62_135_596_800);
        assert_eq!(timestamp_from_json(&json!(-62_135_596_800_i64)).unwrap(), utc("0001-01-01T00:00:00Z"));
        assert_eq!(timestamp_from_json(&json!(-1)).unwrap(), utc("1969-12-31T23:59:59Z"));
        assert_eq!(timestamp_from_json(&json!("-1.5")).unwrap(), utc("1969-12-31T23:59:58.5Z"));
        assert_eq!(timestamp_from_json(&json!(0)).unwrap(), DateTime::UNIX_EPOCH);
        // Beyond chrono's range (about ±262,000 years), or beyond Decimal's: errors, never a panic.
        for v in [
            json!(i64::MAX),
            json!(i64::MIN),
            json!(u64::MAX),
            json!(1e300),
            json!(-1e300),
            json!("79228162514264337593543950335"),
            json!("-79228162514264337593543950335"),
            json!("+275760-09-13T00:00:00Z"),
            json!("1e400"),
        ] {
            let _ = timestamp_from_json(&v);
        }
        assert!(timestamp_from_json(&json!(-99_999_999_999_999_i64)).is_ok(), "microseconds, 1966");
        assert!(from_epoch(Decimal::MAX).is_err());
        assert!(from_epoch(Decimal::MIN).is_err());
    }

    mod props {
        use chrono::DateTime;
        use proptest::prelude::*;
        use rust_decimal::Decimal;

        use super::super::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2000))]

            /// Below 1e11 an epoch value is seconds (1e11 s is the year 5138), below 1e14
            /// milliseconds, below 1e17 microseconds, else nanoseconds; negative values by
            /// their magnitude.
            #[test]
            fn epoch_units_follow_magnitude(v in -99_999_999_999_i64..=99_999_999_999, sign in any::<bool>()) {
                let s = if sign { v } else { -v };
                prop_assert_eq!(from_epoch(Decimal::from(s)), Ok(DateTime::from_timestamp(s, 0).unwrap()));
                let ms = s.signum() * (100_000_000_000 + s.abs() % 99_900_000_000_000);
                prop_assert_eq!(from_epoch(Decimal::from(ms)), Ok(DateTime::from_timestamp_millis(ms).unwrap()));
                let us = s.signum() * (100_000_000_000_000 + s.abs() % 99_900_000_000_000_000);
                prop_assert_eq!(from_epoch(Decimal::from(us)), Ok(DateTime::from_timestamp_micros(us).unwrap()));
                let ns = s.signum() * (100_000_000_000_000_000 + s.abs());
                prop_assert_eq!(from_epoch(Decimal::from(ns)), Ok(DateTime::from_timestamp_nanos(ns)));
                // The same digits as text, and as a JSON number.
                prop_assert_eq!(parse_timestamp(&s.to_string()), from_epoch(Decimal::from(s)));
                prop_assert_eq!(timestamp_from_json(&serde_json::json!(ms)), from_epoch(Decimal::from(ms)));
            }

            #[test]
            fn fractional_seconds_keep_their_nanoseconds(s in -9_999_999_999_i64..9_999_999_999, nanos in 0_u32..1_000_000_000) {
                let d = Decimal::from(s) + Decimal::new(i64::from(nanos), 9);
                prop_assert_eq!(from_epoch(d), Ok(DateTime::from_timestamp(s, nanos).unwrap()));
            }

            #[test]
            fn any_decimal_is_a_time_or_an_error_never_a_panic(m in any::<i128>(), scale in 0_u32..=28) {
                let _ = from_epoch(Decimal::from_i128_with_scale(m % (1_i128 << 96), scale));
            }

            #[test]
            fn rfc3339_round_trips(secs in -62_135_596_800_i64..=253_402_300_799, nanos in 0_u32..1_000_000_000) {
                let t = DateTime::from_timestamp(secs, nanos).unwrap();
                prop_assert_eq!(parse_timestamp(&t.to_rfc3339()), Ok(t));
                prop_assert_eq!(timestamp_from_json(&serde_json::json!(t.to_rfc3339())), Ok(t));
            }
        }
    }
}
