//! A notification channel: one way a rendered notice reaches a human (email today; webhooks
//! next). The outbox is keyed by channel: every queued message records the channel that
//! rendered it, and a flush hands it back to that channel to deliver.
//!
//! The trait is object-safe (`dyn Channel`), so the daemon can hold a list of channels built
//! from the configuration, and assumes no transport: a channel turns a `Rendered` notice into
//! its own stored fields (`render`), delivers a stored message (`deliver`), and names the
//! environment variables holding its secrets (`secret_env`), which `exec:` actions hide from
//! their children. The queued message (`OutboxMessage`) and a failed delivery (`SendError`)
//! are defined here too, beside the trait that stores and delivers them, so the outbox and the
//! channels both stand on this file and neither imports the other's internals.

use std::future::Future;
use std::pin::Pin;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::render::{Rendered, header_safe};

/// The email channel's name, recorded in the messages it queues. Outbox files written before
/// channels existed have no channel and are email.
pub const EMAIL: &str = "email";

/// One queued message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxMessage {
    /// The file stem: a UUID (simple form).
    pub id: String,
    /// `<uuid@tradewarden>`, the same on every attempt.
    pub message_id: String,
    /// When it was queued; also its `Date` header.
    pub created_at: DateTime<Utc>,
    /// The channel that rendered it and delivers it (`email`).
    #[serde(default = "email_channel")]
    pub channel: String,
    /// Subject (header-safe).
    pub subject: String,
    /// The channel's own fields (email: `from`, `to`, `text`, `html`), stored beside these.
    #[serde(flatten)]
    pub content: Content,
    /// Failed attempts so far.
    #[serde(default)]
    pub attempts: u32,
    /// Not tried before this.
    pub next_attempt_at: DateTime<Utc>,
    /// The last failed attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_attempt_at: Option<DateTime<Utc>>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// Messages queued before channels existed are email.
fn email_channel() -> String {
    EMAIL.to_owned()
}

/// Why a send failed, which decides what the flush does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SendErrorKind {
    /// The transport is unusable (connection refused, timeout, TLS, 4xx, disk): stop this flush.
    Connection,
    /// This message was refused (5xx, cannot be built): back it off, try the others.
    Rejected,
}

/// A failed send.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SendError {
    /// Connection or rejected.
    pub kind: SendErrorKind,
    /// One line, without secrets.
    pub message: String,
}

impl SendError {
    /// A transport-level failure.
    pub fn connection(message: impl AsRef<str>) -> Self {
        Self { kind: SendErrorKind::Connection, message: header_safe(message.as_ref()) }
    }

    /// A failure of this message only.
    pub fn rejected(message: impl AsRef<str>) -> Self {
        Self { kind: SendErrorKind::Rejected, message: header_safe(message.as_ref()) }
    }
}

/// A channel's own fields of a queued message (email: `from`, `to`, `text`, `html`), stored
/// beside the outbox's common fields in the message's file.
pub type Content = serde_json::Map<String, serde_json::Value>;

/// One delivery attempt: a receipt for humans (the server's reply, the file written), or why
/// it failed.
pub type Delivery<'a> = Pin<Box<dyn Future<Output = Result<String, SendError>> + Send + 'a>>;

/// One way to notify a human.
pub trait Channel: Send + Sync {
    /// Its name, recorded in every message it queues (`email`); a flush dispatches on it.
    fn name(&self) -> &str;

    /// Where messages go, for humans (`smtp://host:587 (starttls)`, `.eml files in DIR`). No
    /// secrets.
    fn describe(&self) -> String;

    /// The environment variables holding its secrets: names, never values.
    fn secret_env(&self) -> Vec<String>;

    /// This channel's fields for a rendered notice (its addresses and parts). The outbox adds
    /// the common ones (id, Message-ID, subject, schedule).
    fn render(&self, notice: &Rendered) -> Content;

    /// Delivers one queued message of this channel.
    fn deliver<'a>(&'a self, message: &'a OutboxMessage) -> Delivery<'a>;
}

/// The channels a flush may deliver through, found by the name each message records.
pub trait Dispatch {
    /// The channel of that name, if configured.
    fn channel(&self, name: &str) -> Option<&dyn Channel>;
}

/// One channel alone.
impl<C: Channel> Dispatch for C {
    fn channel(&self, name: &str) -> Option<&dyn Channel> {
        (self.name() == name).then_some(self as &dyn Channel)
    }
}

/// A list of channels (the first of a name wins).
impl Dispatch for [Box<dyn Channel>] {
    fn channel(&self, name: &str) -> Option<&dyn Channel> {
        self.iter().find(|c| c.name() == name).map(|c| &**c)
    }
}

/// A boxed future, for `Channel::deliver` implementations.
pub fn delivery<'a>(f: impl Future<Output = Result<String, SendError>> + Send + 'a) -> Delivery<'a> {
    Box::pin(f)
}
