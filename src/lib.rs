//! tradewarden: a sidecar watchdog for automated trading bots.
//!
//! The pipeline is collect → checks → engine → alert → act / notify → report → daemon, and
//! imports only run down it (a stage never imports a later one):
//! - `collect` builds a `model::Snapshot` from the broker (`collect::broker`) and the bot's files
//!   (`collect::bot`); every failed source is an explicit error inside the snapshot.
//! - `checks` holds one file per check kind (the `kinds!` list); `engine` runs the rules over the
//!   snapshot: pure functions.
//! - `alert` moves alerts through pending → firing → resolved (pure `step`) and keeps silences.
//! - `act` plans (`act::planner`, one planner for observe and act) and runs actions behind
//!   their gates; `notify` renders one message per cycle, queues it in a durable outbox and
//!   delivers it through its channel.
//! - `report` renders text, JSON and Markdown; `server` serves the status page.
//! - `daemon` is `tradewarden run`: the schedule, the cycle, signals.
//! - `cli` is the command line, one file per command; nothing in the library imports it.
//!
//! Leaves below them all: `model` (plain data, the `Check` trait, the action table), `config`,
//! `state` (atomic files, JSONL, locks), `clock`, `duration`, `num`, `timestamp`, `redact`. The
//! simulator (`sim`) stands beside the pipeline and shares only the wire format.
//!
//! The broker is the source of truth; unknown is never OK and never flat.

pub mod act;
pub mod alert;
pub mod checks;
pub mod cli;
pub mod clock;
pub mod collect;
pub mod config;
pub mod daemon;
pub mod duration;
pub mod engine;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzz;
pub mod logging;
pub mod model;
pub mod notify;
pub mod num;
pub mod redact;
pub mod report;
pub mod server;
pub mod sim;
pub mod state;
pub mod timestamp;
