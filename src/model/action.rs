//! `ActionKind`: the actions a rule may name, and what each one is (its name, its place in a
//! cycle, whether it is protective and live-guarded, the reads it needs) in ONE table, so that
//! config (parsing, budgets) and act (ordering, gates, reads, recovery) never each keep their
//! own copy. Adding an action kind is a row here plus its planner and executor in `act`.

use std::collections::BTreeSet;
use std::fmt;

use serde::Serialize;

/// An action a rule may name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ActionKind {
    /// Close every short (cancelling its open orders first).
    FlattenShorts,
    /// Close everything, cancelling orders.
    FlattenAll,
    /// Cancel the orders named by `open_order_hazard` findings.
    CancelHazardOrders,
    /// `suspend_trade = true` at the broker.
    SuspendTrading,
    /// `no_shorting = true` at the broker.
    EnforceNoShorting,
    /// Rewrite the bot's state files to match the broker.
    FixState,
    /// Run `[actions.exec.NAME]`.
    Exec(String),
}

/// A read an action's plan is made from (in act mode, re-read right before acting; in observe
/// mode, taken from the cycle's snapshot).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Input {
    /// `GET /v2/positions`.
    Positions,
    /// `GET /v2/orders?status=open`.
    OpenOrders,
    /// The orders closed within `quiet_for` (a market order that just filled is never open).
    ClosedOrders,
    /// `GET /v2/account/configurations`.
    Configuration,
    /// The bot's positions (and metadata) files, read inside its root: what `fix_state` edits.
    BotFiles,
}

impl Input {
    /// What it is, in a sentence ("cannot re-read the positions").
    #[must_use]
    pub fn what(self) -> &'static str {
        match self {
            Self::Positions => "the positions",
            Self::OpenOrders => "the open orders",
            Self::ClosedOrders => "the recently closed orders",
            Self::Configuration => "the account configuration",
            Self::BotFiles => "the bot's state files",
        }
    }
}

/// What an action is: one row of [`TABLE`].
#[derive(Debug)]
pub struct Spec {
    /// The name rules use (`exec:` is a prefix: `exec:NAME`).
    pub name: &'static str,
    /// Its place in a cycle (lower first): guards that stop the bleeding first, flattening
    /// before the bot's files are fixed, and `suspend_trading` last (it also blocks closes).
    pub priority: u8,
    /// It stops the bleeding: it has its own daily budget that no other action's spending can
    /// use up, and its refusal is critical.
    pub protective: bool,
    /// A live account refuses it unless `[actions] allow_live = true`.
    pub live_guarded: bool,
    /// The reads its plan is made from, in the order they are made.
    pub needs: &'static [Input],
    /// It acts on the whole account, whatever symbol the alert is about.
    pub account_wide: bool,
    /// What it does, in a phrase (the README's table, `rules list`).
    pub effect: &'static str,
    /// What it did, in a word or two, for an email subject (`flattened`).
    pub done: &'static str,
    /// Builds the kind from what follows the name (the exec's name; empty otherwise).
    make: fn(&str) -> ActionKind,
}

/// Every action, in the order the documentation lists them (`priority` is the cycle's
/// order). The one place that says what each action is.
pub static TABLE: [Spec; 7] = [
    Spec {
        name: "flatten_shorts",
        priority: 2,
        protective: true,
        live_guarded: true,
        needs: &[Input::Positions, Input::OpenOrders],
        account_wide: false,
        effect: "per short: cancel its open orders, then `DELETE /v2/positions/{symbol}`",
        done: "flattened",
        make: |_| ActionKind::FlattenShorts,
    },
    Spec {
        name: "flatten_all",
        priority: 3,
        protective: false,
        live_guarded: true,
        needs: &[Input::Positions, Input::OpenOrders],
        // The broker's close-all.
        account_wide: true,
        effect: "`DELETE /v2/positions?cancel_orders=true`",
        done: "flattened all",
        make: |_| ActionKind::FlattenAll,
    },
    Spec {
        name: "cancel_hazard_orders",
        priority: 1,
        protective: true,
        live_guarded: true,
        needs: &[Input::OpenOrders],
        account_wide: false,
        effect: "cancel exactly the orders `open_order_hazard` findings name",
        done: "orders cancelled",
        make: |_| ActionKind::CancelHazardOrders,
    },
    Spec {
        name: "suspend_trading",
        priority: 6,
        protective: true,
        live_guarded: true,
        needs: &[Input::Configuration],
        account_wide: false,
        effect: "PATCH /v2/account/configurations {\"suspend_trade\": true}",
        done: "trading suspended",
        make: |_| ActionKind::SuspendTrading,
    },
    Spec {
        name: "enforce_no_shorting",
        priority: 0,
        protective: true,
        live_guarded: true,
        needs: &[Input::Configuration],
        account_wide: false,
        effect: "PATCH /v2/account/configurations {\"no_shorting\": true}",
        done: "shorting disabled",
        make: |_| ActionKind::EnforceNoShorting,
    },
    Spec {
        name: "fix_state",
        priority: 5,
        protective: false,
        live_guarded: true,
        // The orders too: a fill in flight holds the fix back (the bot may be recording it).
        needs: &[Input::Positions, Input::OpenOrders, Input::ClosedOrders, Input::BotFiles],
        account_wide: false,
        effect: "rewrite the bot's positions/metadata files to match the broker",
        done: "bot state repaired",
        make: |_| ActionKind::FixState,
    },
    Spec {
        name: "exec:",
        priority: 4,
        protective: false,
        live_guarded: true,
        needs: &[],
        account_wide: false,
        effect: "run `[actions.exec.NAME]` (argv, no shell, findings on stdin, timeout)",
        done: "command run",
        make: |name| ActionKind::Exec(name.to_owned()),
    },
];

impl ActionKind {
    /// Its row of [`TABLE`].
    #[must_use]
    pub fn spec(&self) -> &'static Spec {
        let i = match self {
            Self::FlattenShorts => 0,
            Self::FlattenAll => 1,
            Self::CancelHazardOrders => 2,
            Self::SuspendTrading => 3,
            Self::EnforceNoShorting => 4,
            Self::FixState => 5,
            Self::Exec(_) => 6,
        };
        &TABLE[i]
    }

    /// Its place in a cycle (see [`Spec::priority`]).
    #[must_use]
    pub fn priority(&self) -> u8 {
        self.spec().priority
    }

    /// Whether this action is protective (see [`Spec::protective`]).
    #[must_use]
    pub fn is_protective(&self) -> bool {
        self.spec().protective
    }

    /// Whether an action name (as journaled) is a protective action's.
    #[must_use]
    pub fn is_protective_name(name: &str) -> bool {
        Self::from_name(name).is_some_and(|k| k.is_protective())
    }

    /// Whether a live account refuses it without `allow_live` (see [`Spec::live_guarded`]).
    #[must_use]
    pub fn is_live_guarded(&self) -> bool {
        self.spec().live_guarded
    }

    /// The reads its plan needs (see [`Spec::needs`]).
    #[must_use]
    pub fn needs(&self) -> &'static [Input] {
        self.spec().needs
    }

    /// The kind an action name stands for, any `exec:NAME` included (a journaled name: the
    /// exec table it named may be gone since).
    #[must_use]
    pub fn from_name(text: &str) -> Option<Self> {
        TABLE.iter().find_map(|s| match s.name.strip_suffix(':') {
            Some(prefix) => text.strip_prefix(prefix)?.strip_prefix(':').map(s.make),
            None => (text == s.name).then(|| (s.make)("")),
        })
    }

    /// Parses an action name from the configuration.
    ///
    /// # Errors
    /// When the name is unknown or names an undefined exec.
    pub fn parse(text: &str, execs: &BTreeSet<String>) -> Result<Self, String> {
        match Self::from_name(text) {
            Some(Self::Exec(name)) if !execs.contains(&name) => {
                Err(format!("action `{text}` names no [actions.exec.{name}] table"))
            }
            Some(k) => Ok(k),
            None => {
                let mut names: Vec<String> = TABLE.iter().map(|s| s.name.replace(':', ":NAME")).collect();
                let last = names.pop().unwrap_or_default();
                Err(format!("unknown action `{text}`; expected {} or {last}", names.join(", ")))
            }
        }
    }
}

impl fmt::Display for ActionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exec(n) => write!(f, "exec:{n}"),
            other => f.write_str(other.spec().name),
        }
    }
}

impl Serialize for ActionKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every() -> Vec<ActionKind> {
        TABLE.iter().map(|s| (s.make)("stop-bot")).collect()
    }

    #[test]
    fn every_row_round_trips_through_its_name_and_points_back_at_itself() {
        let execs: BTreeSet<String> = ["stop-bot".to_owned()].into();
        for (i, k) in every().into_iter().enumerate() {
            assert!(std::ptr::eq(k.spec(), &TABLE[i]), "{k}");
            assert_eq!(ActionKind::parse(&k.to_string(), &execs).unwrap(), k);
            assert_eq!(ActionKind::from_name(&k.to_string()), Some(k));
        }
    }

    #[test]
    fn the_table_is_in_cycle_order_and_says_which_are_protective() {
        let mut by_priority = every();
        by_priority.sort_by_key(ActionKind::priority);
        let names: Vec<String> = by_priority.iter().map(ToString::to_string).collect();
        assert_eq!(
            names,
            [
                "enforce_no_shorting",
                "cancel_hazard_orders",
                "flatten_shorts",
                "flatten_all",
                "exec:stop-bot",
                "fix_state",
                "suspend_trading"
            ]
        );
        let protective: Vec<String> = every().iter().filter(|k| k.is_protective()).map(ToString::to_string).collect();
        assert_eq!(protective, ["flatten_shorts", "cancel_hazard_orders", "suspend_trading", "enforce_no_shorting"]);
        assert!(ActionKind::is_protective_name("flatten_shorts"));
        assert!(!ActionKind::is_protective_name("exec:flatten_shorts"));
        assert!(!ActionKind::is_protective_name("nope"));
    }

    #[test]
    fn names_parse_strictly() {
        let execs: BTreeSet<String> = ["stop-bot".to_owned()].into();
        assert_eq!(ActionKind::parse("exec:stop-bot", &execs).unwrap(), ActionKind::Exec("stop-bot".into()));
        assert_eq!(
            ActionKind::parse("exec:nope", &execs).unwrap_err(),
            "action `exec:nope` names no [actions.exec.nope] table"
        );
        assert_eq!(
            ActionKind::parse("flatten", &execs).unwrap_err(),
            "unknown action `flatten`; expected flatten_shorts, flatten_all, cancel_hazard_orders, suspend_trading, \
             enforce_no_shorting, fix_state or exec:NAME"
        );
        assert_eq!(ActionKind::from_name("exec"), None);
        assert_eq!(ActionKind::from_name("flatten_shorts "), None);
        assert_eq!(ActionKind::from_name("execx:a"), None);
    }
}
