//! Remediation (design.md §6): the actions rules name, behind safety gates, in the daemon
//! (`Actor::on_cycle`) and as commands (`tradewarden flatten`, `tradewarden fix`: `src/cli/act.rs`).
//!
//! | action | effect |
//! |---|---|
//! | `flatten_shorts` | per short: cancel its open orders, then `DELETE /v2/positions/{symbol}` |
//! | `flatten_all` | `DELETE /v2/positions?cancel_orders=true` |
//! | `cancel_hazard_orders` | cancel exactly the orders `open_order_hazard` findings name |
//! | `suspend_trading` | `PATCH /v2/account/configurations {"suspend_trade": true}` |
//! | `enforce_no_shorting` | `PATCH /v2/account/configurations {"no_shorting": true}` |
//! | `fix_state` | rewrite the bot's positions/metadata files to match the broker |
//! | `exec:NAME` | run `[actions.exec.NAME]` (argv, no shell, findings on stdin, timeout) |
//!
//! The gates, in order: mode (observe describes the exact steps and sends nothing), then the
//! `runner` pipeline: live guard, silence, daily budgets, cooldown, fresh re-read, intent,
//! action, confirmation, outcome. The overriding rule is that tradewarden never makes things
//! worse: no order it sends can open or deepen a short (`broker::ActBroker` has no way to
//! submit one), nothing runs on incomplete data, and every write is journaled before it is
//! made (`journal`), so a crash is resolved by re-reading, never by repeating.
//!
//! Within a cycle, each action runs at most once, for all the firing alerts that name it
//! (one intent, one budget unit), in this order: `enforce_no_shorting`,
//! `cancel_hazard_orders`, `flatten_shorts`, `flatten_all`, `exec:*`, `fix_state`,
//! `suspend_trading` (last: a suspended account cannot close positions either).
//!
//! What each action is (name, priority, protective, live guard, the reads it needs) is one
//! table, `model::action`. Modules: `actor` (the entry points), `request` (what asks, and the
//! silence and unknown filters), `planner` (the one planner, observe and act alike) over `plan`
//! (the steps), `observe` (describing), `runner` (the gates), `flatten`, `cancel`, `guard`,
//! `fix_state` (+ `json_edit`), `exec` (the actions), `confirm` (polling), `journal`, `recover`,
//! `broker` (the trait), `manual` (the CLI's requests and previews), `report`, `status`,
//! `executed`, `hooks`.

mod actor;
pub mod broker;
mod cancel;
pub mod confirm;
pub mod exec;
mod executed;
pub mod fix_state;
mod flatten;
mod guard;
mod hooks;
pub mod journal;
mod manual;
mod observe;
pub mod plan;
pub mod planner;
mod recover;
mod report;
pub mod request;
pub mod runner;
mod status;

pub use actor::Actor;
pub use broker::ActBroker;
pub(crate) use executed::Executed;
pub use hooks::Hooks;
pub use manual::{Manual, Preview};
pub use report::ActionReport;
pub use status::Status;

#[cfg(test)]
mod tests;
