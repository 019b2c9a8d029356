//! `[alerts]`: repeats, resolved notices, source holds, the heartbeat, and `[alerts.email]`.

use std::path::Path;
use std::time::Duration;

use super::cleartext;
use super::email::{EmailConfig, EmailTransport, read_email};
use super::reader::TableReader;
use super::rule::Hold;

/// `[alerts]`.
#[derive(Debug, Clone)]
pub struct AlertsConfig {
    /// Re-notify a firing alert this often.
    pub repeat: Duration,
    /// Send a notice when an alert resolves.
    pub send_resolved: bool,
    /// How long resolved alerts are kept in state.
    pub resolved_retention: Duration,
    /// The `for` of source alerts (`source/broker:positions`, `source/log:run`, ...): a source
    /// must fail this long, or in this many consecutive cycles, before its alert fires. Reads
    /// already retry within a cycle, so one failed cycle is a real failure, but a broker that
    /// fails one cycle in ten must not email twice every ten cycles. The rules that need the
    /// source are unknown (and hold their alerts) from the first failed cycle regardless.
    pub source_for: Hold,
    /// Requested after every successful cycle (a dead-man switch for the watchdog).
    pub heartbeat_url: Option<String>,
    /// When email has been undeliverable this long (a message owed, every attempt failed, no
    /// delivery since), the heartbeat reports failure instead of health: a watchdog whose
    /// notices reach no one is not watching for anyone.
    pub undeliverable_after: Duration,
    /// `[alerts.email]`.
    pub email: EmailConfig,
}

/// `[alerts] undeliverable_after` by default.
pub const DEFAULT_UNDELIVERABLE_AFTER: Duration = Duration::from_secs(3600);

/// `[alerts] source_for` by default: two consecutive failed cycles.
pub const DEFAULT_SOURCE_FOR: Hold = Hold::Cycles(2);

pub(super) fn read_alerts(r: Option<TableReader<'_, '_>>, state_dir: &Path, dir: &Path) -> Option<AlertsConfig> {
    let default_email = || EmailConfig {
        transport: EmailTransport::File { dir: state_dir.join("mail") },
        from: "tradewarden@localhost".into(),
        to: vec!["operator@localhost".into()],
    };
    let Some(mut r) = r else {
        return Some(AlertsConfig {
            repeat: Duration::from_secs(3600),
            send_resolved: true,
            resolved_retention: Duration::from_secs(3600),
            source_for: DEFAULT_SOURCE_FOR,
            heartbeat_url: None,
            undeliverable_after: DEFAULT_UNDELIVERABLE_AFTER,
            email: default_email(),
        });
    };
    let repeat = r.duration("repeat").unwrap_or(Duration::from_secs(3600));
    let send_resolved = r.get::<bool>("send_resolved").unwrap_or(true);
    let resolved_retention = r.duration("resolved_retention").unwrap_or(Duration::from_secs(3600));
    let source_for = r
        .get_parsed("source_for", |s| {
            Hold::parse(s).map_err(|e| {
                if e.contains("0 cycles") {
                    "a hold of 0 cycles means none: use \"0s\" to fire at once".into()
                } else {
                    e
                }
            })
        })
        .unwrap_or(DEFAULT_SOURCE_FOR);
    let heartbeat_url = r.get_parsed("heartbeat_url", |s| {
        if s.starts_with("http://") || s.starts_with("https://") {
            // A heartbeat URL is a credential (a ping URL's path or query is its token).
            cleartext::check_url(s, "the heartbeat URL, a token anyone who reads it can ping with")?;
            Ok(s.to_owned())
        } else {
            Err(format!("`{s}` is not an http(s) URL"))
        }
    });
    let undeliverable_after = r.duration("undeliverable_after").unwrap_or(DEFAULT_UNDELIVERABLE_AFTER);
    if undeliverable_after.is_zero() {
        r.problem_key("undeliverable_after", "`undeliverable_after` in [alerts] must be more than zero");
    }
    let email = match r.table("email") {
        Some(e) => read_email(e, state_dir, dir),
        None => Some(default_email()),
    };
    r.finish(&[
        "repeat",
        "send_resolved",
        "resolved_retention",
        "source_for",
        "heartbeat_url",
        "undeliverable_after",
        "email",
    ]);
    Some(AlertsConfig {
        repeat,
        send_resolved,
        resolved_retention,
        source_for,
        heartbeat_url,
        undeliverable_after,
        email: email?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, ConfigError};

    fn load(alerts: &str) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("rules.toml"), "").unwrap();
        let path = dir.path().join("tradewarden.toml");
        std::fs::write(
            &path,
            format!(
                "rules = [\"rules.toml\"]\n[bot]\nroot = \".\"\n[bot.positions]\nfile = \"p.json\"\n[alerts]\n{alerts}"
            ),
        )
        .unwrap();
        Config::load(&path)
    }

    #[test]
    fn undeliverable_after_defaults_to_an_hour_and_a_bad_or_zero_value_names_its_line() {
        assert_eq!(load("").unwrap().alerts.undeliverable_after, Duration::from_secs(3600));
        assert_eq!(
            load("undeliverable_after = \"90s\"\n").unwrap().alerts.undeliverable_after,
            Duration::from_secs(90)
        );
        let bad = load("repeat = \"1h\"\nundeliverable_after = \"soon\"\n").unwrap_err().to_string();
        assert!(bad.contains("tradewarden.toml:8") && bad.contains("`soon` is not a duration"), "{bad}");
        let zero = load("undeliverable_after = \"0s\"\n").unwrap_err().to_string();
        assert!(zero.contains("tradewarden.toml:7") && zero.contains("must be more than zero"), "{zero}");
    }
}
