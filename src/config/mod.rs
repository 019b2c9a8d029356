//! Configuration: `tradewarden.toml` and the rule files it names, read into validated runtime
//! types. Loading reports every problem at once, each with file, line and column.
//!
//! One file per table (`broker`, `bot`, `logs`, `schedule`, `alerts` with `email`, `actions`,
//! `server`), each with its types and its reader; `load` puts them together into [`Config`]
//! and reads the rule files (`rule`). The rules' checks are read by the kinds in `checks`,
//! which config does not import: `Config::load` is defined in `checks::load`.

mod actions;
mod alerts;
mod bot;
mod broker;
mod channels;
pub mod cleartext;
mod email;
mod load;
mod logs;
pub mod packs;
mod paths;
mod problem;
pub mod reader;
pub mod rule;
pub mod schedule;
mod server;

pub use actions::{ActionMode, ActionsConfig, ExecConfig};
pub use alerts::{AlertsConfig, DEFAULT_SOURCE_FOR, DEFAULT_UNDELIVERABLE_AFTER};
pub use bot::{BotConfig, BotSource, MetadataMapping, PositionsMapping};
pub use broker::{BrokerConfig, BrokerKind, DEFAULT_MAX_BODY, MAX_MAX_BODY, MIN_MAX_BODY};
pub use email::{EmailConfig, EmailTransport, SmtpTls};
pub use load::{Config, Overrides};
pub use logs::LogConfig;
pub use problem::{ConfigError, Problem};
pub use rule::{ActionKind, CheckKinds, Hold, Rule, RuleContext, When};
pub use schedule::Schedule;
pub use server::ServerConfig;

/// Durations moved to a leaf (`crate::duration`); this path stays for the stages that name it.
pub use crate::duration;
