//! Check kinds: one file per kind, each a pure function of the snapshot.
//!
//! A kind is a file here whose `SPEC` (a [`Kind`]) gives its name, codes, parameters and
//! description and reads its parameters into a [`Check`]. Adding a kind is that file plus one
//! line in the `kinds!` list below (an explicit list, like ripgrep's flags, rather than
//! registration magic): the list declares the module and puts its `SPEC` in [`KINDS`], from
//! which rules are read (`load`), `rules list` shows parameters and the README's table is
//! rendered. A check that cannot see its inputs says `Unknown`; it never guesses, and never
//! reads a failed source as empty.

mod kind;
mod load;
mod params;
#[cfg(test)]
pub mod testkit;
#[cfg(test)]
mod tests;
mod unknown;

pub use kind::{Absent, Kind, Param, readme_table};
pub use load::{Kinds, read_rules_file};
pub use params::{param_or, params_json, read_log_name};
pub use unknown::{RULE_UNKNOWN, blind_field, blind_source, unknown_field, unknown_source};

pub use crate::model::{Blind, Check, Evaluation};

/// Declares each kind's module and lists its `SPEC` in [`KINDS`].
macro_rules! kinds {
    ($($kind:ident,)+) => {
        $(pub mod $kind;)+

        /// Every check kind, in documentation order.
        pub const KINDS: &[&Kind] = &[$(&$kind::SPEC),+];
    };
}

kinds! {
    no_short_positions,
    position_match,
    metadata_complete,
    log_freshness,
    log_activity,
    open_order_hazard,
    exposure_limits,
    account_health,
    protective_orders,
}

/// The kind of that name.
#[must_use]
pub fn kind(name: &str) -> Option<&'static Kind> {
    KINDS.iter().copied().find(|k| k.name == name)
}
