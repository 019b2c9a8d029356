//! The operator's actions (`tradewarden flatten`, `tradewarden fix`): what is asked, and the
//! plan shown before asking.

use std::collections::BTreeSet;

use super::fix_state;
use super::plan::{Plan, Scope};
use super::request::{Caller, Request, Trigger};
use super::runner::Prepared;
use crate::model::ActionKind;

/// What the operator asks for on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Manual {
    /// `tradewarden flatten`.
    Flatten {
        /// `--shorts-only` (else `--all`).
        shorts_only: bool,
        /// `--symbol`s (empty: every symbol).
        symbols: Vec<String>,
    },
    /// `tradewarden fix`.
    Fix,
}

/// A manual action's plan, shown before asking.
#[derive(Debug, Clone)]
pub struct Preview {
    pub(super) prepared: Prepared,
}

impl Preview {
    /// The steps.
    #[must_use]
    pub fn plan(&self) -> &Plan {
        &self.prepared.plan
    }

    /// `fix`: the diff.
    #[must_use]
    pub fn diff(&self) -> Option<String> {
        self.prepared.fix.as_ref().map(fix_state::FixPlan::diff)
    }
}

impl Manual {
    /// The request it makes (rule `cli`, one trigger).
    pub(crate) fn request(&self) -> Request {
        let (kind, scope, key, subject) = match self {
            Manual::Flatten { shorts_only, symbols } => {
                let kind = if *shorts_only { ActionKind::FlattenShorts } else { ActionKind::FlattenAll };
                let scope = if symbols.is_empty() {
                    Scope::All
                } else {
                    Scope::Symbols(symbols.iter().map(|s| s.trim().to_ascii_uppercase()).collect())
                };
                let subject = if symbols.is_empty() { "all".to_owned() } else { scope.describe().replace(", ", ",") };
                let key = format!("cli/{kind}:{subject}");
                (kind, scope, key, subject)
            }
            Manual::Fix => (ActionKind::FixState, Scope::All, "cli/fix_state".to_owned(), "bot state".to_owned()),
        };
        Request {
            kind,
            origin: Caller::Cli,
            triggers: vec![Trigger {
                fingerprint: key,
                rule: crate::model::Origin::Cli.id().into(),
                subject,
                findings: Vec::new(),
                silenced_by: None,
                unknown: false,
                scope,
                order_ids: BTreeSet::new(),
            }],
        }
    }
}
