//! The domain model: plain data shared by collectors, checks, reports and actions.
//!
//! Quantities, prices and money are `rust_decimal::Decimal`, never floats.

mod account;
pub mod action;
mod check;
mod field;
mod finding;
mod log;
mod order;
mod origin;
mod position;
mod side;
mod snapshot;
mod symbol;

pub use account::{Account, AccountConfiguration, MarketClock};
pub use action::ActionKind;
pub use check::{Blind, Check, Evaluation};
pub use field::{FieldRef, check_pointer};
pub use finding::{Finding, Issue, Outcome, RuleOutcome, Severity};
pub use log::{LogQuery, LogSummary, MalformedLine, Matcher, Window, WindowCount};
pub use order::{Order, TERMINAL_STATUSES};
pub use origin::Origin;
pub use position::{Metadata, Position, TrackedPosition};
pub use side::{OrderSide, Side};
pub use snapshot::{BotView, BrokerView, Mode, RULE_READ_SOURCES, Snapshot, SourceError, SourceErrorKind, Sourced};
pub use symbol::Symbol;
