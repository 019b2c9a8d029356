//! Notifications: one message per cycle, rendered (`render`), queued durably on disk before any
//! attempt to send it (`outbox`), and delivered through its channel (`channel`): email by
//! lettre over SMTP or into `.eml` files (`email`). design.md section 7.
//!
//! Invariants:
//! - every message is in `state_dir/outbox/` before it is sent, and leaves only once the
//!   channel accepted it; failures are retried with capped exponential backoff, across cycles
//!   and restarts, and never block the cycle for long;
//! - a message keeps the `Message-ID` chosen at enqueue time across retries, so a duplicate
//!   delivery (crash between "accepted" and "removed") is recognisable;
//! - text that came from outside (logs, symbols, broker messages) can never add a header: it is
//!   stripped of control characters before it reaches a header, and HTML-escaped in the HTML part;
//! - a channel's secrets (SMTP credentials) are read from the environment variables the config
//!   names, and never logged, stored or put in a message; `exec:` children never see them.

mod channel;
mod email;
mod outbox;
mod render;

/// The name `Channel` had before channels (the integration tests and older callers use it).
pub use channel::Channel as Notifier;
pub use channel::{Channel, Content, Delivery, Dispatch, EMAIL, OutboxMessage, SendError, SendErrorKind, delivery};
pub use email::{Mailer, NotifyError, build_message};
pub use outbox::{Delivered, FlushFailure, FlushReport, Outbox, OutboxListing, OutboxScan, RetryPolicy};
pub use render::{ActionNote, MessageContext, Rendered, header_safe, host_name, html_escape, render, render_test};
