//! The kinds against their own metadata: every kind reads, writes back and reads again to the
//! same check; its declared defaults are its real defaults; the README's table is its metadata.

use std::path::Path;

use super::*;
use crate::config::reader::{Problems, SourceText};
use crate::config::{Problem, Rule, RuleContext};

/// Reads a rules file with the logs `run` and `exits` configured: the rules and every problem.
fn read_rules_with_problems(text: &str) -> (Vec<Rule>, Vec<Problem>) {
    let src = SourceText::new(Path::new("rules/test.toml"), text.to_owned());
    let problems = Problems::default();
    let ctx = RuleContext { logs: ["run".to_owned(), "exits".to_owned()].into(), ..RuleContext::default() };
    let rules = read_rules_file(&src, &problems, &ctx);
    (rules, problems.into_sorted())
}

/// Reads a rules file with the logs `run` and `exits` configured; panics on any problem.
fn read_rules(text: &str) -> Vec<Rule> {
    let (rules, problems) = read_rules_with_problems(text);
    let shown: Vec<String> = problems.iter().map(ToString::to_string).collect();
    assert!(shown.is_empty(), "{text}\n{shown:#?}");
    rules
}

fn rule_text(kind: &str, params: &str) -> String {
    format!("[[rule]]\nid = \"r\"\ncheck = \"{kind}\"\nseverity = \"warning\"\n{params}")
}

/// The fewest parameters the kind accepts: the required lines of its example.
fn minimal(kind: &Kind) -> String {
    let required: Vec<&str> = kind.params.iter().filter(|p| p.absent == Absent::Required).map(|p| p.name).collect();
    kind.example
        .lines()
        .filter(|l| required.iter().any(|name| l.starts_with(&format!("{name} ="))))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// Every parameter of the kind, none at its default: its example.
fn full(kind: &Kind) -> &'static str {
    kind.example
}

/// A rule written back from its `params` (what `rules list` shows) as TOML.
fn written_back(rule: &Rule) -> String {
    let mut table = serde_json::Map::new();
    table.insert("id".into(), rule.id.clone().into());
    table.insert("check".into(), rule.check.kind().into());
    table.insert("severity".into(), "warning".into());
    let serde_json::Value::Object(params) = rule.check.params() else { panic!("params are a table") };
    table.extend(params);
    let doc = serde_json::json!({ "rule": [table] });
    toml::to_string(&doc).expect("params serialize as TOML")
}

/// Two checks are the same when they print the same: `Debug` shows every field, so a round
/// trip that loses one (even one `params` does not write) fails.
fn same(a: &Rule, b: &Rule) -> bool {
    format!("{:?}", a.check) == format!("{:?}", b.check)
}

#[test]
fn every_kind_has_codes_and_reads_from_a_minimal_rule() {
    for kind in KINDS {
        assert!(!kind.codes.is_empty(), "{} has no codes", kind.name);
        assert!(!kind.description.is_empty(), "{} has no description", kind.name);
        let rules = read_rules(&rule_text(kind.name, &minimal(kind)));
        assert_eq!(rules.len(), 1, "{}", kind.name);
        assert_eq!(rules[0].check.kind(), kind.name);
    }
    let mut names: Vec<&str> = KINDS.iter().map(|k| k.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), KINDS.len(), "two kinds share a name");
}

#[test]
fn every_kind_round_trips_through_its_params() {
    for kind in KINDS {
        for params in [minimal(kind), full(kind).to_owned()] {
            let rule = read_rules(&rule_text(kind.name, &params)).remove(0);
            let text = written_back(&rule);
            let again = read_rules(&text).remove(0);
            assert!(same(&again, &rule), "{}:\n{text}\n{:?}\n{:?}", kind.name, rule.check, again.check);
        }
    }
}

/// What a check writes and what its kind declares are the same parameters: `rules list` shows
/// the declared ones, so an undeclared parameter would be hidden from the operator. The example
/// gives each declared parameter on a line of its own.
#[test]
fn the_declared_parameters_are_the_written_ones() {
    for kind in KINDS {
        let example: Vec<&str> = kind.example.lines().map(|l| l.split(" =").next().unwrap_or_default()).collect();
        assert_eq!(example, kind.param_names(), "{}: the example's lines, one per parameter in order", kind.name);
        let rule = read_rules(&rule_text(kind.name, full(kind))).remove(0);
        let mut written: Vec<String> = rule.check.params().as_object().expect("a table").keys().cloned().collect();
        written.sort_unstable();
        let mut declared: Vec<String> = kind.param_names().into_iter().map(str::to_owned).collect();
        declared.sort_unstable();
        assert_eq!(written, declared, "{}", kind.name);
    }
}

/// Each optional parameter of the example is set to something else than its default, so the
/// round trip above proves the parameter is read and written, not merely defaulted twice.
#[test]
fn example_parameters_are_not_the_defaults() {
    for kind in KINDS {
        let min = read_rules(&rule_text(kind.name, &minimal(kind))).remove(0);
        for line in kind.example.lines().filter(|l| !minimal(kind).contains(l)) {
            let set = read_rules(&rule_text(kind.name, &format!("{}{line}\n", minimal(kind)))).remove(0);
            assert!(!same(&min, &set), "{}: `{line}` is the default", kind.name);
        }
    }
}

/// The metadata's `absent` is the truth: a required parameter left out is a problem naming it,
/// a default written out reads as the same check as left out, an optional one left out is
/// unset.
#[test]
fn declared_defaults_are_the_real_defaults() {
    for kind in KINDS {
        let min = read_rules(&rule_text(kind.name, &minimal(kind))).remove(0);
        for p in kind.params {
            let without: String = minimal(kind)
                .lines()
                .filter(|l| !l.starts_with(&format!("{} =", p.name)))
                .map(|l| format!("{l}\n"))
                .collect();
            match p.absent {
                Absent::Required => {
                    let (rules, problems) = read_rules_with_problems(&rule_text(kind.name, &without));
                    assert!(rules.is_empty(), "{}.{} is required", kind.name, p.name);
                    assert!(
                        problems.iter().any(|pr| pr.message.contains(&format!("required key `{}`", p.name))),
                        "{}.{}: {problems:#?}",
                        kind.name,
                        p.name
                    );
                }
                Absent::Default(value) => {
                    let written =
                        read_rules(&rule_text(kind.name, &format!("{without}{} = {value}\n", p.name))).remove(0);
                    assert!(
                        same(&written, &min),
                        "{}.{}: the declared default {value} is not the default",
                        kind.name,
                        p.name
                    );
                }
                Absent::Off => {
                    let v = min.check.params();
                    assert!(
                        v.get(p.name).is_none_or(serde_json::Value::is_null),
                        "{}.{} is set when left out",
                        kind.name,
                        p.name
                    );
                }
            }
        }
    }
}

#[test]
fn unknown_kind_is_a_problem_listing_the_kinds() {
    let (rules, p) = read_rules_with_problems(&rule_text("no_shorts", ""));
    assert!(rules.is_empty());
    assert_eq!(p.len(), 1, "{p:#?}");
    assert_eq!(p[0].line, 3);
    let names: Vec<&str> = KINDS.iter().map(|k| k.name).collect();
    assert!(p[0].message.contains("unknown check kind `no_shorts`"), "{}", p[0].message);
    assert!(p[0].message.contains(&names.join(", ")), "{}", p[0].message);
}

/// The README's table of check kinds is what the kinds' metadata renders: change a kind (or add
/// one) and this fails until the README says the same.
#[test]
fn the_readme_table_of_check_kinds_is_rendered_from_the_metadata() {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let table = readme_table(KINDS);
    assert!(
        readme.contains(&table),
        "README.md's table of check kinds differs from the kinds' metadata; it should read:\n\n{table}"
    );
}
