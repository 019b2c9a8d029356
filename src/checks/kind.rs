//! `Kind`: what a check kind says about itself (name, codes, parameters, description) and how
//! it reads its parameters. `rules check` reads rules with it, `rules list` lists parameters
//! from it, and the README's table of check kinds is rendered from it (a test keeps them equal).

use std::fmt::Write;
use std::sync::Arc;

use crate::config::RuleContext;
use crate::config::reader::TableReader;
use crate::model::Check;

/// A check kind: its metadata and its parameter reader.
#[derive(Debug)]
pub struct Kind {
    /// The name rules give in `check` (`position_match`).
    pub name: &'static str,
    /// What it checks, in a line (the README table's last column).
    pub description: &'static str,
    /// The finding codes it emits (besides `rule_unknown`, which every kind may emit).
    pub codes: &'static [&'static str],
    /// Its parameters, in documentation order.
    pub params: &'static [Param],
    /// The parameters of an example rule, one `key = value` line each: every parameter given,
    /// none at its default, the logs named being `run` and `exits`. The tests read each kind
    /// from it (and from its required lines alone), write it back and compare, so a new kind
    /// needs no test edits elsewhere.
    pub example: &'static str,
    /// Reads the parameters from a rule's table into the check; problems go to the reader.
    pub read: fn(&mut TableReader<'_, '_>, &RuleContext) -> Option<Arc<dyn Check>>,
}

/// One parameter of a kind.
#[derive(Debug)]
pub struct Param {
    /// The key in the rule's table.
    pub name: &'static str,
    /// Its type, as the README names it (`duration`, `decimal`, `list of fields`, ...).
    pub ty: &'static str,
    /// What leaving it out means.
    pub absent: Absent,
    /// What it means, in a phrase (may be empty when the name and type say it all).
    pub doc: &'static str,
}

/// What leaving a parameter out of a rule means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Absent {
    /// The rule must give it.
    Required,
    /// This value, written as in the rule file (`"5s"`, `1`, `[]`, `false`).
    Default(&'static str),
    /// Nothing: the limit or filter it sets is off.
    Off,
}

impl Kind {
    /// The parameter names, in documentation order.
    #[must_use]
    pub fn param_names(&self) -> Vec<&'static str> {
        self.params.iter().map(|p| p.name).collect()
    }

    /// The kind's row of the README's table of check kinds.
    #[must_use]
    pub fn readme_row(&self) -> String {
        let codes = self.codes.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(", ");
        let params = if self.params.is_empty() {
            "none".to_owned()
        } else {
            self.params.iter().map(Param::readme).collect::<Vec<_>>().join("; ")
        };
        format!("| `{}` | {codes} | {params} | {} |", self.name, self.description)
    }
}

impl Param {
    /// `` `settle` (duration, "5s"): skip ... ``.
    fn readme(&self) -> String {
        let absent = match self.absent {
            Absent::Required => "required".to_owned(),
            Absent::Default(v) => v.to_owned(),
            Absent::Off => "unset: off".to_owned(),
        };
        let mut out = format!("`{}` ({}, {absent})", self.name, self.ty);
        if !self.doc.is_empty() {
            let _ = write!(out, ": {}", self.doc);
        }
        out
    }
}

/// The header of the README's table of check kinds.
const README_HEADER: &str =
    "| check | codes | parameters (type, default): meaning | what it checks |\n|---|---|---|---|\n";

/// The README's table of check kinds, header and one row per kind, from their metadata.
#[must_use]
pub fn readme_table(kinds: &[&Kind]) -> String {
    let mut out = README_HEADER.to_owned();
    for k in kinds {
        out.push_str(&k.readme_row());
        out.push('\n');
    }
    out
}
