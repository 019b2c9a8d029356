//! `FieldRef`: how configuration names a value inside a bot's JSON record: a plain field name
//! (`qty`) or, with a leading `/`, a JSON pointer (`/fill/qty`).

use std::fmt;

use serde::Serialize;
use serde_json::Value;

/// A field name or JSON pointer into a record.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FieldRef {
    /// A top-level field of the record.
    Name(String),
    /// An RFC 6901 JSON pointer into the record.
    Pointer(String),
}

impl FieldRef {
    /// Reads configuration text: a leading `/` makes it a pointer.
    ///
    /// # Errors
    /// When the text is empty.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.is_empty() {
            Err("a field name cannot be empty".into())
        } else if text.starts_with('/') {
            Ok(Self::Pointer(text.to_owned()))
        } else {
            Ok(Self::Name(text.to_owned()))
        }
    }

    /// The value at this field of `record`, if present.
    #[must_use]
    pub fn get<'v>(&self, record: &'v Value) -> Option<&'v Value> {
        match self {
            Self::Name(n) => record.as_object()?.get(n),
            Self::Pointer(p) => record.pointer(p),
        }
    }

    /// The configuration text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        match self {
            Self::Name(s) | Self::Pointer(s) => s,
        }
    }
}

impl fmt::Display for FieldRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for FieldRef {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Validates a JSON pointer used as `at` (`""` is the document root).
///
/// # Errors
/// When the text is neither empty nor starts with `/`.
pub fn check_pointer(text: &str) -> Result<(), String> {
    if text.is_empty() || text.starts_with('/') {
        Ok(())
    } else {
        Err(format!("`{text}` is not a JSON pointer: it must be \"\" (the root) or start with `/`"))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn names_and_pointers() {
        let rec = json!({"qty": 5, "fill": {"qty": "7"}, "a/b": 1});
        assert_eq!(FieldRef::parse("qty").unwrap().get(&rec), Some(&json!(5)));
        assert_eq!(FieldRef::parse("/fill/qty").unwrap().get(&rec), Some(&json!("7")));
        assert_eq!(FieldRef::parse("a/b").unwrap().get(&rec), Some(&json!(1)));
        assert_eq!(FieldRef::parse("missing").unwrap().get(&rec), None);
        assert!(FieldRef::parse("").is_err());
        assert!(check_pointer("opens").is_err());
        assert!(check_pointer("/opens").is_ok());
    }
}
