//! Durations in configuration: humantime strings (`"30s"`, `"5m"`, `"2h"`, `"1h 30m"`).

use std::time::Duration;

/// Parses a humantime duration.
///
/// # Errors
/// A plain sentence with an example of the expected form.
pub fn parse(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim())
        .map_err(|e| format!("`{text}` is not a duration ({e}); write it like \"30s\", \"5m\" or \"2h\""))
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
}
