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
    let d = Decimal::from_str(t).or_else(|_| Decimal::from_scientific(t)).map_err(|_| {
        // Built only on failure: this runs for every decimal of every position.
        let shown: String = t.chars().take(40).collect();
        format!("`{shown}` is not a decimal number")
    })?;
    // Decimal keeps 28 fractional digits and rounds the rest away: a number that is not zero
    // must not become zero (unknown is never zero).
    if d.is_zero() {
        let mantissa = t.split(['e', 'E']).next().unwrap_or(t);
        if mantissa.bytes().any(|b| (b'1'..=b'9').contains(&b)) {
            let shown: String = t.chars().take(40).collect();
            return Err(format!("`{shown}` is too small for a decimal (below 1e-28) but not zero"));
        }
    }
    Ok(d)
}

/// `|a - b| <= tolerance`. A difference beyond `Decimal`'s range exceeds every tolerance
/// (plain `a - b` would panic there: a bot file can hold `-79228162514264337593543950335`).
#[must_use]
pub fn within_abs(a: Decimal, b: Decimal, tolerance: Decimal) -> bool {
    a.checked_sub(b).is_some_and(|d| d.abs() <= tolerance)
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

/// An amount of money as every report and email writes it: dollars with two decimals
/// (`$63840.00`, `-$12.50`), rounded half away from zero.
#[must_use]
pub fn money(d: Decimal) -> String {
    let cents = d.round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero);
    if cents.is_sign_negative() && !cents.is_zero() {
        format!("-${:.2}", cents.abs())
    } else {
        format!("${:.2}", cents.abs())
    }
}

#[cfg(test)]
mod tests {
    use rust_decimal::dec;
    use serde_json::json;

    use super::*;

    #[test]
    fn money_is_dollars_with_two_decimals_one_way() {
        let m = |t: &str| money(parse_decimal(t).unwrap());
        assert_eq!(m("63840"), "$63840.00");
        assert_eq!(m("74801.005"), "$74801.01");
        assert_eq!(m("-12.5"), "-$12.50");
        assert_eq!(m("-0.001"), "$0.00");
        assert_eq!(m("0.1"), "$0.10");
    }

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

    #[test]
    fn a_number_below_the_precision_of_decimal_is_an_error_not_zero() {
        // Found by the `timestamps` fuzz target: 39 fractional digits rounded to exactly 0.
        let tiny = "0.000000000000000000000000000000479358381";
        assert_eq!(
            parse_decimal(tiny),
            Err(format!("`{}` is too small for a decimal (below 1e-28) but not zero", &tiny[..40]))
        );
        assert!(decimal_from_json(&json!(tiny)).is_err());
        assert!(decimal_from_json(&serde_json::from_str::<Value>(tiny).unwrap()).is_err());
        // Zero written with many digits is still zero; rounding that keeps a non-zero value is fine.
        assert_eq!(parse_decimal("0.000000000000000000000000000000000").unwrap(), Decimal::ZERO);
        assert_eq!(parse_decimal("-0.0e-3").unwrap(), Decimal::ZERO);
        assert_eq!(parse_decimal("1.00000000000000000000000000001").unwrap(), dec!(1));
    }

    #[test]
    fn a_difference_beyond_the_range_of_decimal_is_outside_every_tolerance() {
        // Found by the `decimal tolerance helpers never panic` property: `a - b` overflowed.
        assert!(!within_abs(Decimal::MAX, Decimal::MIN, Decimal::MAX));
        assert!(!within_abs(Decimal::MIN, dec!(1), dec!(0)));
        assert_eq!(pct_diff(Decimal::MAX, Decimal::MIN), None);
    }

    mod props {
        use proptest::prelude::*;
        use rust_decimal::Decimal;
        use serde_json::Value;

        use super::super::*;

        /// Any decimal: every mantissa and scale, plus the extremes and negative zero.
        pub(crate) fn decimal() -> impl Strategy<Value = Decimal> {
            prop_oneof![
                6 => (any::<i128>(), 0_u32..=28).prop_map(|(m, s)| {
                    let m = m % (1_i128 << 96);
                    Decimal::from_i128_with_scale(m, s)
                }),
                2 => (-1_000_000_i64..1_000_000, 0_u32..6).prop_map(|(m, s)| Decimal::new(m, s)),
                1 => prop::sample::select(vec![
                    Decimal::MAX,
                    Decimal::MIN,
                    Decimal::ZERO,
                    Decimal::from_parts(0, 0, 0, true, 0),
                    Decimal::from_parts(0, 0, 0, true, 28),
                    Decimal::new(1, 28),
                    Decimal::ONE_HUNDRED,
                ]),
            ]
        }

        fn non_negative() -> impl Strategy<Value = Decimal> {
            decimal().prop_map(|d| d.abs())
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2000))]

            #[test]
            fn tolerance_helpers_never_panic(a in decimal(), b in decimal(), t in decimal()) {
                let _ = within_abs(a, b, t);
                let _ = within_pct(a, b, t);
                let _ = pct_diff(a, b);
                let _ = percent_of(a, b);
            }

            #[test]
            fn within_abs_is_symmetric_reflexive_and_monotone_in_the_tolerance(
                a in decimal(), b in decimal(), t1 in non_negative(), t2 in non_negative(),
            ) {
                prop_assert_eq!(within_abs(a, b, t1), within_abs(b, a, t1));
                prop_assert!(within_abs(a, a, t1));
                let (lo, hi) = if t1 <= t2 { (t1, t2) } else { (t2, t1) };
                if within_abs(a, b, lo) {
                    prop_assert!(within_abs(a, b, hi));
                }
                // Negative tolerances accept nothing.
                if t1 > Decimal::ZERO {
                    prop_assert!(!within_abs(a, b, -t1));
                }
            }

            #[test]
            fn within_pct_with_a_zero_reference_matches_only_zero(a in decimal(), t in non_negative()) {
                prop_assert_eq!(within_pct(a, Decimal::ZERO, t), a.is_zero());
                prop_assert_eq!(within_pct(a, Decimal::from_parts(0, 0, 0, true, 3), t), a.is_zero());
                prop_assert_eq!(pct_diff(a, Decimal::ZERO), None);
            }

            #[test]
            fn pct_diff_is_non_negative_zero_at_the_reference_and_agrees_with_within_pct(
                a in decimal(), r in decimal(), t1 in non_negative(), t2 in non_negative(),
            ) {
                if let Some(p) = pct_diff(a, r) {
                    prop_assert!(p >= Decimal::ZERO);
                    prop_assert_eq!(within_pct(a, r, t1), p <= t1);
                } else if !r.is_zero() {
                    // An overflowing difference is outside every tolerance.
                    prop_assert!(!within_pct(a, r, t1));
                }
                if !r.is_zero() {
                    prop_assert_eq!(pct_diff(r, r), Some(Decimal::ZERO));
                    prop_assert!(within_pct(r, r, t1));
                }
                let (lo, hi) = if t1 <= t2 { (t1, t2) } else { (t2, t1) };
                if within_pct(a, r, lo) {
                    prop_assert!(within_pct(a, r, hi));
                }
            }

            #[test]
            fn percent_of_needs_a_positive_whole_and_is_monotone_in_the_part(
                a in decimal(), b in decimal(), whole in decimal(),
            ) {
                if whole <= Decimal::ZERO {
                    prop_assert_eq!(percent_of(a, whole), None);
                } else {
                    let w = percent_of(whole, whole);
                    prop_assert!(w.is_none() || w == Some(Decimal::ONE_HUNDRED), "{:?}", w);
                    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
                    if let (Some(x), Some(y)) = (percent_of(lo, whole), percent_of(hi, whole)) {
                        prop_assert!(x <= y, "{} → {}, {} → {}", lo, x, hi, y);
                    }
                    prop_assert_eq!(percent_of(Decimal::ZERO, whole), Some(Decimal::ZERO));
                }
            }

            #[test]
            fn every_decimal_round_trips_through_a_json_string(d in decimal()) {
                prop_assert_eq!(decimal_from_json(&Value::String(d.to_string())), Ok(d));
                prop_assert_eq!(decimal_from_json(&Value::String(format!(" {d} "))), Ok(d));
            }

            #[test]
            fn decimals_of_up_to_15_significant_digits_round_trip_through_a_json_number(
                m in -999_999_999_999_999_i64..=999_999_999_999_999, s in 0_u32..=28,
            ) {
                let d = Decimal::new(m, s);
                // Serialized the way a bot's JSON library writes a number.
                let v: Value = serde_json::from_str(&d.to_string()).unwrap();
                prop_assert!(v.is_number());
                prop_assert_eq!(decimal_from_json(&v), Ok(d));
            }
        }
    }
}
