//! Notifications: one email per cycle, rendered (`render`), queued durably on disk before any
//! attempt to send it (`outbox`), and delivered by lettre over SMTP or into `.eml` files
//! (`email`). design.md section 7.
//!
//! Invariants:
//! - every message is in `state_dir/outbox/` before it is sent, and leaves only once the
//!   transport accepted it; failures are retried with capped exponential backoff, across cycles
//!   and restarts, and never block the cycle for long;
//! - a message keeps the `Message-ID` chosen at enqueue time across retries, so a duplicate
//!   delivery (crash between "accepted" and "removed") is recognisable;
//! - text that came from outside (logs, symbols, broker messages) can never add a header: it is
//!   stripped of control characters before it reaches a header, and HTML-escaped in the HTML part;
//! - SMTP credentials are read from the environment variables the config names, and never
//!   logged, stored or put in a message.

mod email;
mod outbox;
mod render;

pub use email::{Mailer, NotifyError, build_message};
pub use outbox::{
    Delivered, FlushFailure, FlushReport, Notifier, Outbox, OutboxListing, OutboxMessage, RetryPolicy, SendError,
    SendErrorKind,
};
pub use render::{ActionNote, MessageContext, Rendered, header_safe, host_name, html_escape, render, render_test};
