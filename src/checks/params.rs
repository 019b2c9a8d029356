//! Readers shared by the kinds' parameters: defaults, and `log` naming a configured log.

use crate::config::RuleContext;
use crate::config::reader::TableReader;

/// Reads an optional parameter with a default: the default when the key is absent, else what
/// `read` makes of it (`None` when it recorded a problem). Read every key before applying `?`
/// to the results, so one bad parameter does not hide the problems of the next.
pub fn param_or<'a, 'i, T>(
    r: &mut TableReader<'a, 'i>,
    key: &str,
    default: T,
    read: impl FnOnce(&mut TableReader<'a, 'i>, &str) -> Option<T>,
) -> Option<T> {
    if r.has(key) { read(r, key) } else { Some(default) }
}

/// A `log` parameter: required, and must name a configured `[logs.NAME]` table.
pub fn read_log_name(r: &mut TableReader<'_, '_>, ctx: &RuleContext) -> Option<String> {
    let name: String = r.require("log")?;
    if ctx.logs.contains(&name) {
        return Some(name);
    }
    let known = if ctx.logs.is_empty() {
        "none is configured".to_owned()
    } else {
        format!("configured: {}", ctx.logs.iter().cloned().collect::<Vec<_>>().join(", "))
    };
    r.problem_key(
        "log",
        format!("`log` in {} names `{name}`, but there is no [logs.{name}] table ({known})", r.name()),
    );
    None
}

/// A kind's parameters as a JSON table, as the rule writes them (each kind's `Params` serializes
/// to its rule keys).
#[must_use]
pub fn params_json<T: serde::Serialize>(params: &T) -> serde_json::Value {
    serde_json::to_value(params).unwrap_or_default()
}
