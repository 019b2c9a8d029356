//! Small helpers for the messages the bot collectors write: what kind of JSON value was found,
//! a field's problem as one phrase, serde_json's message without its position suffix.

use serde_json::Value;

/// "an object", "a string", ... for messages.
pub(crate) fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Joins a subject and a problem from `decimal_from_json` / `timestamp_from_json`, whose
/// sentences start either with "is ..." or with the offending value:
/// "field `qty` is null, expected a number", "field `qty`: `abc` is not a decimal number".
pub(crate) fn about(subject: &str, problem: &str) -> String {
    if problem.starts_with("is ") { format!("{subject} {problem}") } else { format!("{subject}: {problem}") }
}

/// serde_json's message without the " at line L column C" it appends (callers say where).
pub(crate) fn serde_message(e: &serde_json::Error) -> String {
    let full = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    full.strip_suffix(&suffix).map_or_else(|| full.clone(), str::to_owned)
}

/// Text from a bot file, clipped and escaped so that it prints on one line.
pub(crate) fn shown(text: &str) -> String {
    let mut out: String = text.chars().take(40).flat_map(char::escape_default).collect();
    if text.chars().nth(40).is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn phrases() {
        assert_eq!(about("field `qty`", "is null, expected a number"), "field `qty` is null, expected a number");
        assert_eq!(about("field `qty`", "`x` is not a decimal number"), "field `qty`: `x` is not a decimal number");
        let e = serde_json::from_str::<Value>("{\"a\": x}").unwrap_err();
        assert_eq!(serde_message(&e), "expected value");
        assert_eq!(json_kind(&json!([1])), "an array");
        assert_eq!(shown("A\nB"), "A\\nB");
        assert_eq!(shown(&"x".repeat(50)), format!("{}…", "x".repeat(40)));
    }
}
