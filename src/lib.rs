//! tradewarden: a sidecar watchdog for automated trading bots.
//!
//! The pipeline is collect → evaluate → decide → act / notify → report:
//! - `collect` builds a `model::Snapshot` from the broker (`collect::broker`) and the bot's files
//!   (`collect::bot`); every failed source is an explicit error inside the snapshot.
//! - `engine` runs the rules (`checks`, one file per kind) over it: pure functions.
//! - `alert` moves alerts through pending → firing → resolved (pure `step`) and keeps silences;
//!   `notify` renders one email per cycle, queues it in a durable outbox and delivers it;
//!   `state` holds the atomic state files and the single-instance lock.
//! - `report` renders text, JSON and Markdown.
//! - `daemon` is `tradewarden run`: the schedule, the cycle, signals, the status server.
//! - `cli` is the command line, one file per command; it imports the stages, never the reverse.
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
