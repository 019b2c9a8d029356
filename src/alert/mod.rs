//! Alerts: the lifecycle state machine (pending → firing → resolved) and silences.
//!
//! Everything here is a pure function of (previous state, evaluation, silences, now), with the
//! clock injected; the only I/O is loading and saving `alerts.json` and `silences.json` through
//! `crate::state`. See design.md section 5.
//!
//! A daemon cycle uses it like this (the order makes a crash lose nothing: the message is on
//! disk before the state that says it was sent):
//! 1. `SilenceBook::load(state_dir, now)`, then `active(now)`;
//! 2. `step(&book, rules, &evaluated, &silences, &cfg.alerts, now)` gives the new book and the
//!    cycle's notifications;
//! 3. render the notifications into one message and `Outbox::enqueue` it;
//! 4. `AlertBook::save` the new book;
//! 5. `Outbox::flush`.
//!
//! Each step's transitions (`event::transitions`) are appended to `alert_events.jsonl`.

pub mod event;
mod lifecycle;
mod silence;

pub use event::{AlertEvent, Transition};
pub use lifecycle::{AlertBook, AlertState, Notification, NotifyReason, Phase, decide, step};
pub use silence::{NewSilence, Silence, SilenceBook};
