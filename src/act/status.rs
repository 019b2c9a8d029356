//! `Status`: what happened to an action (`described`, `done`, `refused`, ...).

use std::fmt;

use serde::{Deserialize, Serialize};

/// What happened to an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Observe mode: the exact steps it would take; nothing sent.
    Described,
    /// Done and confirmed.
    Done,
    /// A gate said no (live guard, budget, a busy or changed file, ...).
    Refused,
    /// Nothing to do, or not now (silenced, cooldown, violation gone, source unknown).
    Skipped,
    /// The broker refused a write, or a command failed.
    Failed,
    /// Done, but the effect was not seen before `confirm_timeout`.
    Unconfirmed,
    /// An interrupted action (no outcome in the journal) resolved at start-up by re-reading.
    Recovered,
}

impl Status {
    /// The lowercase name, as in `ActionReport::result`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Described => "described",
            Self::Done => "done",
            Self::Refused => "refused",
            Self::Skipped => "skipped",
            Self::Failed => "failed",
            Self::Unconfirmed => "unconfirmed",
            Self::Recovered => "recovered",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
