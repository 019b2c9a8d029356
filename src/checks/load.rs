//! Reading rules into checks: the kinds in [`KINDS`](super::KINDS) as config's
//! [`CheckKinds`], and `Config::load`, which needs them.
//!
//! Config reads a rule's common keys and hands the rest of its table to the kind its `check`
//! names; it does not know the kinds, so loading a configuration happens here, above both.

use std::path::Path;
use std::sync::Arc;

use super::{KINDS, kind};
use crate::config::reader::{Problems, SourceText, TableReader};
use crate::config::rule::CheckKinds;
use crate::config::{Config, ConfigError, Overrides, Rule, RuleContext};
use crate::model::Check;

/// Every kind of [`KINDS`](super::KINDS), as config reads rules with them.
#[derive(Debug, Clone, Copy, Default)]
pub struct Kinds;

impl CheckKinds for Kinds {
    fn param_names(&self, name: &str) -> Vec<&'static str> {
        kind(name).map(super::Kind::param_names).unwrap_or_default()
    }

    fn read(&self, name: &str, r: &mut TableReader<'_, '_>, ctx: &RuleContext) -> Option<Arc<dyn Check>> {
        if let Some(k) = kind(name) {
            return (k.read)(r, ctx);
        }
        let names: Vec<&str> = KINDS.iter().map(|k| k.name).collect();
        r.problem_key("check", format!("unknown check kind `{name}`; expected one of: {}", names.join(", ")));
        None
    }
}

impl Config {
    /// Loads and validates a configuration file and its rule files.
    ///
    /// # Errors
    /// Every problem found, with file, line and column.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        Self::load_with(path, &Overrides::default())
    }

    /// Loads a configuration with command-line settings applied before validation, so a
    /// requirement the command line meets (`kind = "replay"` needs a directory: `--replay DIR`
    /// gives one) is not reported as missing.
    ///
    /// # Errors
    /// Every problem found, with file, line and column.
    pub fn load_with(path: &Path, overrides: &Overrides) -> Result<Self, ConfigError> {
        Self::load_using(path, overrides, &Kinds)
    }
}

/// Reads a rules file (`[[rule]]` tables only) with every kind. Problems go to `problems`.
pub fn read_rules_file(src: &SourceText, problems: &Problems, ctx: &RuleContext) -> Vec<Rule> {
    crate::config::rule::read_rules_file(src, problems, ctx, &Kinds)
}
