//! Collection: the I/O edge that builds a `Snapshot` from the broker and the bot's files.

pub mod bot;
pub mod broker;
pub mod record;
pub mod snapshot_dir;

use std::path::PathBuf;

use chrono::{DateTime, Utc};

use crate::clock::Clock;
use crate::config::{Config, Rule};
use crate::model::Snapshot;
use broker::Broker;

/// Collection could not even start (a replay directory without `snapshot.toml`).
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    /// The snapshot directory is unusable.
    #[error("snapshot directory: {0}")]
    Replay(String),
}

/// Parses a JSON document from bytes, exactly as `serde_json::from_slice` (same values, same
/// errors), but faster for large documents: the bytes are checked as UTF-8 once, up front,
/// instead of serde_json checking every string it reads (a 2,000-position body has 36,000).
/// Bytes that are not UTF-8 go through `from_slice`, for its error.
///
/// # Errors
/// serde_json's error.
pub(crate) fn json_from_bytes<'a, T: serde::Deserialize<'a>>(bytes: &'a [u8]) -> serde_json::Result<T> {
    match std::str::from_utf8(bytes) {
        Ok(text) => serde_json::from_str(text),
        Err(_) => serde_json::from_slice(bytes),
    }
}

/// The bot root for this broker: `DIR/bot` for a replay, else `[bot].root`.
#[must_use]
pub fn bot_root(config: &Config, broker: &Broker) -> PathBuf {
    match broker {
        Broker::Replay(r) => r.bot_root(),
        Broker::Alpaca(_) => config.bot.root.clone(),
    }
}

/// Collects one snapshot. The broker and the bot are read concurrently-safe and in full;
/// failures become source errors inside the snapshot, never an `Err` here.
///
/// # Errors
/// Only when a replay directory has no usable `snapshot.toml`.
pub async fn collect(config: &Config, broker: &Broker, clock: &dyn Clock) -> Result<Snapshot, CollectError> {
    let now = match broker.recorded_at().map_err(CollectError::Replay)? {
        Some(t) => t,
        None => clock.now(),
    };
    let view = broker.view().await;
    let root = bot_root(config, broker);
    let (bot, logs) = bot::collect_bot(config, &root, now);
    let mut snap = Snapshot { taken_at: now, mode: broker.mode(), broker: view, bot, logs };
    if snap.broker.recent_orders.is_none()
        && let Some(after) = recent_orders_after(&config.rules, &snap, now)
    {
        broker.add_recent_orders(&mut snap.broker, after).await;
    }
    Ok(snap)
}

/// The `after` bound of a read of recently closed orders, when a rule's check asks for one on
/// `snap` as it is (`Check::recent_orders_window`: a `position_match` that would report
/// something and settles): now minus the longest window asked. `None` when no check asks, so a
/// cycle where the bot agrees with the broker stays at five requests; one that disagrees costs
/// a sixth.
#[must_use]
pub fn recent_orders_after(rules: &[Rule], snap: &Snapshot, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let window = rules.iter().filter_map(|r| r.check.recent_orders_window(snap, now)).max()?;
    let window = chrono::Duration::from_std(window).unwrap_or(chrono::Duration::MAX);
    // A window reaching before chrono's first instant reads every closed order.
    Some(now.checked_sub_signed(window).unwrap_or(DateTime::<Utc>::MIN_UTC))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use chrono::TimeZone;

    use super::*;
    use crate::config::When;
    use crate::model::{BotView, BrokerView, Check, Evaluation, Mode, Severity};

    /// A check that asks for a fixed window of recently closed orders, or none (whatever the
    /// snapshot holds: the windows are what is under test).
    #[derive(Debug)]
    struct Asks(Option<Duration>);

    impl Check for Asks {
        fn kind(&self) -> &'static str {
            "asks"
        }
        fn params(&self) -> serde_json::Value {
            serde_json::json!({})
        }
        fn evaluate(&self, _: &Snapshot, _: DateTime<Utc>) -> Evaluation {
            Evaluation::Checked(Vec::new())
        }
        fn recent_orders_window(&self, _: &Snapshot, _: DateTime<Utc>) -> Option<Duration> {
            self.0
        }
    }

    fn rule(asks: Option<u64>) -> Rule {
        Rule {
            id: "r".into(),
            check: Arc::new(Asks(asks.map(Duration::from_secs))),
            severity: Severity::Warning,
            hold: None,
            repeat: None,
            when: When::Always,
            actions: Vec::new(),
            description: None,
            origin: String::new(),
            id_offset: 0,
        }
    }

    #[test]
    fn recent_orders_are_read_back_to_the_longest_window_any_check_asks_for() {
        let now = Utc.with_ymd_and_hms(2026, 12, 6, 15, 0, 0).unwrap();
        let snap = Snapshot {
            taken_at: now,
            mode: Mode::Paper,
            broker: BrokerView::unavailable("down"),
            bot: BotView { positions: Ok(Vec::new()), metadata: None },
            logs: std::collections::BTreeMap::new(),
        };
        assert_eq!(recent_orders_after(&[rule(None), rule(None)], &snap, now), None);
        assert_eq!(recent_orders_after(&[], &snap, now), None);
        let asked = recent_orders_after(&[rule(Some(5)), rule(None), rule(Some(30))], &snap, now);
        assert_eq!(asked, Some(now - chrono::Duration::seconds(30)));
        let forever = recent_orders_after(&[rule(Some(u64::MAX))], &snap, now);
        assert_eq!(forever, Some(DateTime::<Utc>::MIN_UTC), "a window before chrono's first instant reads every order");
    }
}
