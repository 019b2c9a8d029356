//! Decimal helpers: reading numbers written by bots (JSON numbers or strings) and comparing
//! them through named tolerances. Never through `f64`.

use std::str::FromStr;

use rust_decimal::Decimal;
use serde_json::Value;

/// Reads a decimal from a JSON value written by a bot: `10`, `10.0`, `"10"`, `" 1e3 "`.
///
/// JSON numbers are read from their shortest decimal text (serde_json keeps non-integers as
/// `f64`, so a number with more than about 17 significant digits is already rounded when it
/// reaches us; integers are exact). Booleans, nulls, arrays, objects, empty strings and text
/// that is not a number are errors: unknown is never zero.
///
/// # Errors
/// A plain sentence saying what was found instead of a number.
pub fn decimal_from_json(value: &Value) -> Result<Decimal, String> {
    match value {
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Ok(Decimal::from(i))
            } else if let Some(u) = n.as_u64() {
                Ok(Decimal::from(u))
            } else {
                parse_decimal(&n.to_string())
            }
        }
        Value::String(s) => parse_decimal(s),
        Value::Null => Err("is null, expected a number".into()),
        Value::Bool(b) => Err(format!("is the boolean {b}, expected a number")),
        Value::Array(_) => Err("is an array, expected a number".into()),
        Value::Object(_) => Err("is an object, expected a number".into()),
    }
}

/// Parses decimal text, plain (`"187.25"`, `"-15"`) or scientific (`"1e3"`).
///
/// # Errors
/// When the text is empty, not a number, `NaN`/`Infinity`, or out of `Decimal`'s range.
pub fn parse_decimal(text: &str) -> Result<Decimal, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("is an empty string, expected a number".into());
    }
    Decimal::from_str(t).or_else(|_| Decimal::from_scientific(t)).map_err(|_| {
        // Built only on failure: this runs for every decimal of every position.
        let shown: String = t.chars().take(40).collect();
        format!("`{shown}` is not a decimal number")
    })
}

/// `|a - b| <= tolerance`.
#[must_use]
pub fn within_abs(a: Decimal, b: Decimal, tolerance: Decimal) -> bool {
    (a - b).abs() <= tolerance
}

/// `|a - reference| / |reference| * 100 <= tolerance_pct`. A zero reference matches only zero.
#[must_use]
pub fn within_pct(a: Decimal, reference: Decimal, tolerance_pct: Decimal) -> bool {
    if reference.is_zero() {
        return a.is_zero();
    }
    match pct_diff(a, reference) {
        Some(p) => p <= tolerance_pct,
        None => false,
    }
}

/// `|a - reference| / |reference| * 100`, or `None` for a zero reference or an overflow.
#[must_use]
pub fn pct_diff(a: Decimal, reference: Decimal) -> Option<Decimal> {
    if reference.is_zero() {
        return None;
    }
    let diff = a.checked_sub(reference)?.abs();
    diff.checked_mul(Decimal::ONE_HUNDRED)?.checked_div(reference.abs())
}

/// `part / whole * 100`, or `None` when `whole` is not positive or on overflow.
#[must_use]
pub fn percent_of(part: Decimal, whole: Decimal) -> Option<Decimal> {
    if whole <= Decimal::ZERO {
        return None;
    }
    part.checked_mul(Decimal::ONE_HUNDRED)?.checked_div(whole)
}

#[cfg(test)]
mod tests {
    use rust_decimal::dec;
    use serde_json::json;

    use super::*;

    #[test]
    fn numbers_as_json_numbers_or_strings() {
        for v in [json!(10), json!(10.0), json!("10"), json!(" 10 "), json!("1e1"), json!("10.000")] {
            assert_eq!(decimal_from_json(&v).unwrap(), dec!(10), "{v}");
        }
        assert_eq!(decimal_from_json(&json!(-1596)).unwrap(), dec!(-1596));
        assert_eq!(decimal_from_json(&json!("187.25")).unwrap(), dec!(187.25));
        assert_eq!(decimal_from_json(&json!(0.1)).unwrap(), dec!(0.1));
    }

    #[test]
    fn non_numbers_are_errors_not_zero() {
        for v in [
            json!(null),
            json!(""),
            json!("abc"),
            json!(true),
            json!([]),
            json!({}),
            json!("NaN"),
            json!("Infinity"),
            json!("1e400"),
        ] {
            assert!(decimal_from_json(&v).is_err(), "{v}");
        }
    }

    #[test]
    fn tolerances() {
        assert!(within_abs(dec!(10), dec!(10.5), dec!(0.5)));
        assert!(!within_abs(dec!(10), dec!(10.51), dec!(0.5)));
        assert!(within_pct(dec!(101), dec!(100), dec!(1)));
        assert!(!within_pct(dec!(101.01), dec!(100), dec!(1)));
        assert!(within_pct(dec!(0), dec!(0), dec!(1)));
        assert!(!within_pct(dec!(1), dec!(0), dec!(1)));
        assert_eq!(percent_of(dec!(198), dec!(100)), Some(dec!(198)));
        assert_eq!(percent_of(dec!(1), dec!(0)), None);
    }
}
