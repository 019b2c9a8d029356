//! `rules list`: each rule with its kind, severity, timing, actions and parameters (the ones its
//! kind declares, in name order).

use std::fmt::Write;

use std::path::PathBuf;

use crate::checks;
use crate::config::{Rule, packs};

/// Renders the rule list as text, after a line naming where the rules come from (a built-in
/// pack says so: with no `rules` key the default pack is used).
#[must_use]
pub fn render(files: &[PathBuf], rules: &[Rule]) -> String {
    let from: Vec<String> = files
        .iter()
        .map(|f| {
            let f = f.display().to_string();
            if packs::is_builtin(&f) { format!("{f} (built into tradewarden)") } else { f }
        })
        .collect();
    let mut out = format!("rules from {}\n\n", from.join(", "));
    for r in rules {
        let _ = writeln!(out, "{} ({}, {})", r.id, r.check.kind(), r.severity);
        if let Some(d) = &r.description {
            let _ = writeln!(out, "    {d}");
        }
        let mut timing = vec![format!(
            "when {}",
            serde_json::to_value(r.when).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
        )];
        if let Some(h) = r.hold {
            timing.push(format!("for {h}"));
        }
        if let Some(rep) = r.repeat {
            timing.push(format!("repeat {}", crate::duration::format(rep)));
        }
        let _ = writeln!(out, "    {}", timing.join(", "));
        if !r.actions.is_empty() {
            let _ = writeln!(
                out,
                "    actions: {}",
                r.actions.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
            );
        }
        let values = r.check.params();
        let mut names = checks::kind(r.check.kind()).map(checks::Kind::param_names).unwrap_or_default();
        names.sort_unstable();
        for name in names {
            if let Some(v) = values.get(name).filter(|v| !v.is_null()) {
                let _ = writeln!(out, "    {name} = {v}");
            }
        }
    }
    if rules.is_empty() {
        out.push_str("no rules\n");
    }
    out
}
