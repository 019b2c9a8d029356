//! `Origin`: the pseudo-rules, tradewarden's own sources of findings and action triggers, which
//! no rule file defines. Their ids share the namespace of rule ids (a finding's `rule`, an
//! alert's fingerprint), so config reserves them and the stages match this enum, not strings.

use std::fmt;

/// Who raised a finding or trigger that no configured rule did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Origin {
    /// `source`: a source failed or held malformed lines (the built-in source findings).
    Source,
    /// `actions`: the action runner's own findings (refusals, failures, recovery).
    Actions,
    /// `cli`: the operator's command line (`flatten`, `fix`).
    Cli,
}

impl Origin {
    /// Every origin, in the order messages list them.
    pub const ALL: [Self; 3] = [Self::Source, Self::Actions, Self::Cli];

    /// The id written where a rule id goes (`"rule": "source"` in JSON, fingerprints).
    #[must_use]
    pub const fn id(self) -> &'static str {
        match self {
            Self::Source => "source",
            Self::Actions => "actions",
            Self::Cli => "cli",
        }
    }

    /// The origin whose id this is; `None` for a configured rule's id.
    #[must_use]
    pub fn of(rule_id: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.id() == rule_id)
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_the_json_contract_and_parse_back() {
        assert_eq!(Origin::ALL.map(Origin::id), ["source", "actions", "cli"]);
        for o in Origin::ALL {
            assert_eq!(Origin::of(o.id()), Some(o));
            assert_eq!(o.to_string(), o.id());
        }
        assert_eq!(Origin::of("no-shorts"), None);
        assert_eq!(Origin::of("Source"), None);
    }
}
