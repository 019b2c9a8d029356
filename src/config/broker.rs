//! `[broker]`: which broker to read, where, and how patiently.

use std::path::Path;
use std::path::PathBuf;
use std::time::Duration;

use super::cleartext;
use super::paths::resolve;
use super::reader::TableReader;

/// Which broker to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrokerKind {
    /// The Alpaca REST API.
    Alpaca,
    /// A recorded snapshot directory.
    Replay,
}

/// `[broker]`.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// Alpaca or replay.
    pub kind: BrokerKind,
    /// The REST base URL; `None` means `APCA_API_BASE_URL`, else paper.
    pub base_url: Option<String>,
    /// Per-request timeout.
    pub timeout: Duration,
    /// The snapshot directory for `kind = "replay"` (or `--replay DIR`).
    pub replay_dir: Option<PathBuf>,
    /// The largest response body read from the broker, in bytes; a longer one is
    /// `source_malformed` and is not read further.
    pub max_body: u64,
    /// The client-side request budget: at most this many requests a minute, reads and writes
    /// alike (Alpaca allows 200 a minute per account, shared with the bot).
    pub max_requests_per_minute: u32,
}

impl BrokerConfig {
    /// `[broker] max_requests_per_minute` by default: half of Alpaca's 200, the other half is the bot's.
    pub const DEFAULT_MAX_REQUESTS_PER_MINUTE: u32 = 100;
    /// The largest `max_requests_per_minute` accepted.
    pub const MAX_REQUESTS_PER_MINUTE_LIMIT: u32 = 100_000;
}

/// `[broker] max_body` by default: 8 MiB. A full page of 500 orders is under 1 MiB.
pub const DEFAULT_MAX_BODY: u64 = 8 << 20;
/// The smallest `max_body` accepted: 64 KiB (an account body is ~2 KiB, a position ~1 KiB).
pub const MIN_MAX_BODY: u64 = 64 << 10;
/// The largest `max_body` accepted: 1 GiB.
pub const MAX_MAX_BODY: u64 = 1 << 30;

/// `--replay DIR` sets the broker to that snapshot directory whatever the file says.
pub(super) fn read_broker(r: Option<TableReader<'_, '_>>, dir: &Path, replay: Option<&Path>) -> Option<BrokerConfig> {
    let Some(mut r) = r else {
        return Some(BrokerConfig {
            kind: if replay.is_some() { BrokerKind::Replay } else { BrokerKind::Alpaca },
            base_url: None,
            timeout: Duration::from_secs(10),
            replay_dir: replay.map(Path::to_owned),
            max_body: DEFAULT_MAX_BODY,
            max_requests_per_minute: BrokerConfig::DEFAULT_MAX_REQUESTS_PER_MINUTE,
        });
    };
    let kind = r
        .get_parsed("kind", |s| match s {
            "alpaca" => Ok(BrokerKind::Alpaca),
            "replay" => Ok(BrokerKind::Replay),
            other => Err(format!("unknown broker kind `{other}`; expected \"alpaca\" or \"replay\"")),
        })
        .unwrap_or(BrokerKind::Alpaca);
    let base_url = r.get_parsed("base_url", |s| {
        let u = s.trim_end_matches('/');
        if u.starts_with("https://") || u.starts_with("http://") {
            cleartext::check_url(u, "the API keys (APCA-API-KEY-ID, APCA-API-SECRET-KEY headers)")?;
            Ok(u.to_owned())
        } else {
            Err(format!("`{s}` is not an http(s) URL"))
        }
    });
    let timeout = r.duration("timeout").unwrap_or(Duration::from_secs(10));
    if timeout.is_zero() {
        r.problem_key("timeout", "`timeout` in [broker] must be more than zero");
    }
    let from_file = r.get::<String>("dir").map(|d| resolve(dir, &d));
    let (kind, replay_dir) = match replay {
        Some(d) => (BrokerKind::Replay, Some(d.to_owned())),
        None => (kind, from_file),
    };
    if kind == BrokerKind::Replay && replay_dir.is_none() {
        r.problem("[broker] kind = \"replay\" needs `dir`, the snapshot directory (`audit --replay DIR` sets it for one audit)");
    }
    let max_body = r.byte_size("max_body", MIN_MAX_BODY, MAX_MAX_BODY).unwrap_or(DEFAULT_MAX_BODY);
    let max_requests_per_minute = match r.get::<i64>("max_requests_per_minute") {
        None => BrokerConfig::DEFAULT_MAX_REQUESTS_PER_MINUTE,
        Some(n) => match u32::try_from(n) {
            Ok(n) if (1..=BrokerConfig::MAX_REQUESTS_PER_MINUTE_LIMIT).contains(&n) => n,
            _ => {
                r.problem_key(
                    "max_requests_per_minute",
                    format!(
                        "`max_requests_per_minute` in [broker] must be between 1 and {}, not {n}",
                        BrokerConfig::MAX_REQUESTS_PER_MINUTE_LIMIT
                    ),
                );
                BrokerConfig::DEFAULT_MAX_REQUESTS_PER_MINUTE
            }
        },
    };
    r.finish(&["kind", "base_url", "timeout", "dir", "max_body", "max_requests_per_minute"]);
    Some(BrokerConfig { kind, base_url, timeout, replay_dir, max_body, max_requests_per_minute })
}
