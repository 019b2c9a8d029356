//! tradewarden: a sidecar watchdog for automated trading bots.
//!
//! The pipeline is collect → evaluate → decide → act / notify → report:
//! - `collect` builds a `model::Snapshot` from the broker (`collect::broker`) and the bot's files
//!   (`collect::bot`); every failed source is an explicit error inside the snapshot.
//! - `engine` runs the rules (`checks`, one file per kind) over it: pure functions.
//! - `report` renders text, JSON and Markdown.
//!
//! The broker is the source of truth; unknown is never OK and never flat.

pub mod checks;
pub mod cli;
pub mod clock;
pub mod collect;
pub mod config;
pub mod engine;
pub mod logging;
pub mod model;
pub mod num;
pub mod record;
pub mod report;
pub mod rules_list;
pub mod rules_test;
pub mod sim;
pub mod timestamp;
