//! Parsing a log line while keeping only the fields a scan reads.
//!
//! A scan reads each record's time field and its windows' matcher fields, nothing else, yet
//! building the whole `serde_json::Value` of every line (a map node and a `String` per field)
//! was most of its cost. [`parse_kept`] validates the line exactly as `serde_json::from_str::
//! <Value>` does (same grammar, same number range and string escape checks, same recursion
//! limit, same trailing-characters check, so the same errors at the same columns) but keeps
//! only the top-level fields named in [`Keep`]; the others are read and dropped without an
//! allocation. Checks then look fields up in the kept object as they would in the full one.
//!
//! The same validation comes from deserializing everything through `deserialize_any`, as
//! `Value` does: serde's `IgnoredAny` would be cheaper but skips numbers and escapes without
//! checking them (`1e400` and a lone surrogate would pass), so lines would stop being
//! malformed.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::model::{FieldRef, LogQuery};

/// The top-level fields of a record that a scan needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Keep {
    keys: Vec<String>,
}

impl Keep {
    /// The fields that `time` and the query's matchers read: their top-level key (a pointer
    /// keeps the whole subtree under its first token).
    pub(crate) fn for_scan(time: &FieldRef, query: &LogQuery) -> Self {
        let mut keys: Vec<String> = std::iter::once(time)
            .chain(query.windows.iter().flat_map(|w| w.matcher.fields.iter().map(|(f, _)| f)))
            .filter_map(top_key)
            .collect();
        keys.sort();
        keys.dedup();
        Self { keys }
    }

    fn has(&self, key: &str) -> bool {
        self.keys.iter().any(|k| k == key)
    }
}

/// The top-level key a field reads: the name itself, or a pointer's first token unescaped
/// (RFC 6901: `~1` is `/`, `~0` is `~`). `None` for the empty pointer, which names no field.
fn top_key(field: &FieldRef) -> Option<String> {
    match field {
        FieldRef::Name(n) => Some(n.clone()),
        FieldRef::Pointer(p) => {
            let rest = p.strip_prefix('/')?;
            let token = rest.split('/').next().unwrap_or_default();
            Some(token.replace("~1", "/").replace("~0", "~"))
        }
    }
}

/// A line's JSON: an object with only the kept fields, or the kind of a non-object
/// ("an array", "null", ... as `json_kind` says it).
pub(crate) enum Parsed {
    Object(Value),
    NotObject(&'static str),
}

/// Parses `text` as one JSON document, keeping only `keep`'s top-level fields of an object.
///
/// # Errors
/// serde_json's error, exactly as `serde_json::from_str::<Value>(text)` reports it.
pub(crate) fn parse_kept(text: &str, keep: &Keep) -> Result<Parsed, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(text);
    let parsed = Top(keep).deserialize(&mut de)?;
    de.end()?;
    Ok(parsed)
}

/// The document: an object is filtered, anything else is only validated.
struct Top<'k>(&'k Keep);

impl<'de> DeserializeSeed<'de> for Top<'_> {
    type Value = Parsed;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Parsed, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Top<'_> {
    type Value = Parsed;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any valid JSON value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Parsed, E> {
        Ok(Parsed::NotObject("a boolean"))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Parsed, E> {
        Ok(Parsed::NotObject("a number"))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Parsed, E> {
        Ok(Parsed::NotObject("a number"))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Parsed, E> {
        Ok(Parsed::NotObject("a number"))
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Parsed, E> {
        Ok(Parsed::NotObject("a string"))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Parsed, E> {
        Ok(Parsed::NotObject("null"))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Parsed, A::Error> {
        while seq.next_element::<Skip>()?.is_some() {}
        Ok(Parsed::NotObject("an array"))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Parsed, A::Error> {
        let mut kept = Map::new();
        while let Some(key) = map.next_key_seed(Key)? {
            if self.0.has(&key) {
                // A repeated key replaces the earlier value, as in a `Value`.
                kept.insert(key.into_owned(), map.next_value::<Value>()?);
            } else {
                map.next_value::<Skip>()?;
            }
        }
        Ok(Parsed::Object(Value::Object(kept)))
    }
}

/// A map key, borrowed from the line when it has no escapes.
struct Key;

impl<'de> DeserializeSeed<'de> for Key {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string key")
    }

    fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(s))
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(s.to_owned()))
    }
}

/// Any JSON value, fully validated, then dropped.
struct Skip;

impl<'de> de::Deserialize<'de> for Skip {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(SkipVisitor)
    }
}

struct SkipVisitor;

impl<'de> Visitor<'de> for SkipVisitor {
    type Value = Skip;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any valid JSON value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Skip, E> {
        Ok(Skip)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Skip, E> {
        Ok(Skip)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Skip, E> {
        Ok(Skip)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Skip, E> {
        Ok(Skip)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Skip, E> {
        Ok(Skip)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Skip, E> {
        Ok(Skip)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Skip, A::Error> {
        while seq.next_element::<Skip>()?.is_some() {}
        Ok(Skip)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Skip, A::Error> {
        while map.next_key_seed(Key)?.is_some() {
            map.next_value::<Skip>()?;
        }
        Ok(Skip)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;

    use super::*;
    use crate::model::{Matcher, Window};

    fn keep(time: &str, matchers: &[&str]) -> Keep {
        let query = LogQuery {
            windows: vec![Window {
                within: Duration::from_secs(60),
                matcher: Matcher {
                    fields: matchers.iter().map(|m| (FieldRef::parse(m).unwrap(), json!("x"))).collect(),
                },
            }],
            last_record: false,
        };
        Keep::for_scan(&FieldRef::parse(time).unwrap(), &query)
    }

    fn kept(text: &str, keep: &Keep) -> Value {
        match parse_kept(text, keep).unwrap() {
            Parsed::Object(v) => v,
            Parsed::NotObject(k) => panic!("{k}"),
        }
    }

    #[test]
    fn keeps_the_time_and_matcher_fields_and_pointer_subtrees() {
        let k = keep("/meta/t", &["event", "/a~1b/c"]);
        assert_eq!(k.keys, vec!["a/b".to_owned(), "event".to_owned(), "meta".to_owned()]);
        let line = r#"{"meta": {"t": 5, "u": [1]}, "event": "EXIT", "a/b": {"c": 1}, "pad": [1, {"x": null}]}"#;
        assert_eq!(kept(line, &k), json!({"meta": {"t": 5, "u": [1]}, "event": "EXIT", "a/b": {"c": 1}}));
        // A repeated key: the last one wins, as in a Value.
        assert_eq!(kept(r#"{"ts": 1, "ts": 2}"#, &keep("ts", &[])), json!({"ts": 2}));
        // Escaped keys are compared unescaped.
        assert_eq!(kept(r#"{"t\u0073": 1}"#, &keep("ts", &[])), json!({"ts": 1}));
    }

    #[test]
    fn non_objects_are_named() {
        let k = keep("ts", &[]);
        for (text, kind) in [
            ("[1, {\"a\": 2}]", "an array"),
            ("null", "null"),
            ("true", "a boolean"),
            ("-1.5", "a number"),
            ("7", "a number"),
            ("\"s\"", "a string"),
        ] {
            assert!(matches!(parse_kept(text, &k), Ok(Parsed::NotObject(got)) if got == kind), "{text}");
        }
    }

    #[test]
    fn errors_are_those_of_a_full_parse() {
        let k = keep("ts", &[]);
        for text in [
            "{\"ts\": 1, \"x\": 1e400}",
            "{\"ts\": 1, \"x\": \"\\ud800\"}",
            "{\"ts\": 1, \"x\": \"\\q\"}",
            "{\"ts\": 1, \"x\": \"a\tb\"}",
            "{\"ts\": 1} {}",
            "{\"ts\": 1, \"x\": [1, 2}",
            "{\"ts\": 1, \"x\": tru}",
            "{\"ts\": 1,}",
            "{\"ts\" 1}",
            "{1: 2}",
            "[1, 2,]",
            "{\"ts\": \"2025-12",
            "",
            &format!("{{\"ts\": 1, \"x\": {}{}}}", "[".repeat(200), "]".repeat(200)),
        ] {
            let want = serde_json::from_str::<Value>(text).unwrap_err();
            let got = parse_kept(text, &k).err().unwrap_or_else(|| panic!("accepted {text}"));
            assert_eq!((got.to_string(), got.is_eof()), (want.to_string(), want.is_eof()), "{text}");
        }
    }
}
