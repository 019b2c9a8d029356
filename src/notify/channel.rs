//! A notification channel: one way a rendered notice reaches a human (email today; webhooks
//! next). The outbox is keyed by channel: every queued message records the channel that
//! rendered it, and a flush hands it back to that channel to deliver.
//!
//! The trait is object-safe (`dyn Channel`), so the daemon can hold a list of channels built
//! from the configuration, and assumes no transport: a channel turns a `Rendered` notice into
//! its own stored fields (`render`), delivers a stored message (`deliver`), and names the
//! environment variables holding its secrets (`secret_env`), which `exec:` actions hide from
//! their children.

use std::future::Future;
use std::pin::Pin;

use super::outbox::{OutboxMessage, SendError};
use super::render::Rendered;

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
