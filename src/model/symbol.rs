//! `Symbol`: a validated, case-sensitive ticker (`AAPL`, `BRK.B`, `BTC/USD`).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

/// A ticker symbol as the broker spells it. Case-sensitive, as Alpaca's are.
///
/// Invariant: 1 to 64 characters, none of them whitespace or control characters, so a symbol
/// can be printed in a table, a log line or an email subject without escaping.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Symbol(String);

impl Symbol {
    /// Checks and wraps a symbol.
    ///
    /// # Errors
    /// A plain sentence when the text is empty, too long, or holds whitespace or control
    /// characters.
    pub fn new_checked(text: &str) -> Result<Self, String> {
        if text.is_empty() {
            return Err("a symbol cannot be empty".into());
        }
        if text.chars().count() > 64 {
            return Err(format!("symbol `{}…` is longer than 64 characters", clip(text)));
        }
        if let Some(c) = text.chars().find(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!("symbol `{}` contains the character {c:?}", clip(text)));
        }
        Ok(Self(text.to_owned()))
    }

    /// Wraps a symbol known to be valid (tests, constants).
    ///
    /// # Panics
    /// When `text` is not a valid symbol.
    #[must_use]
    pub fn new(text: &str) -> Self {
        Self::new_checked(text).expect("valid symbol")
    }

    /// The symbol's text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn clip(text: &str) -> String {
    text.chars().take(32).flat_map(char::escape_default).collect()
}

impl fmt::Display for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Symbol {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::new_checked(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_broker_spellings() {
        for s in ["AAPL", "BRK.B", "BTC/USD", "aapl"] {
            assert_eq!(Symbol::new_checked(s).unwrap().as_str(), s);
        }
    }

    #[test]
    fn rejects_empty_space_and_control() {
        assert!(Symbol::new_checked("").is_err());
        assert!(Symbol::new_checked("AA PL").is_err());
        assert!(Symbol::new_checked("AAPL\r\nBcc: x").is_err());
        assert!(Symbol::new_checked(&"A".repeat(65)).is_err());
    }
}
