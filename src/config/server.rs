//! `[server]`: the status server's address, blindness threshold and connection limits.

use std::net::SocketAddr;
use std::time::Duration;

use super::reader::TableReader;
use super::rule::Hold;

/// `[server]`.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Where the status server listens; `None` disables it.
    pub listen: Option<SocketAddr>,
    /// How long the watchdog may see nothing of the broker (consecutive cycles that read no
    /// broker endpoint, or could not collect at all) before `/healthz` says 503 `blind`.
    pub blind_after: Hold,
    /// How long a client may take to send a request's headers (from the connection's start, or
    /// the end of its previous request) before the status server closes the connection.
    pub header_timeout: Duration,
    /// The most connections the status server keeps open at once; past it, the oldest is closed
    /// to admit the newest, so idle clients can neither exhaust descriptors nor lock out a probe.
    pub max_connections: usize,
    /// Listening on a non-loopback address was asked for explicitly (`allow_remote = true`).
    pub allow_remote: bool,
    /// Host names (without port) the status server answers besides loopback names and
    /// addresses and the listen address: what a browser's or Prometheus's Host header says when
    /// it reaches the server by name. Anything else gets 421 and no data (DNS rebinding).
    pub allowed_hosts: Vec<String>,
    /// The status page's address as readers reach it (a reverse proxy, a tunnel), linked from
    /// every email; its host is an allowed Host too.
    pub external_url: Option<String>,
}

impl ServerConfig {
    /// `[server] blind_after` by default: two consecutive blind cycles.
    pub const DEFAULT_BLIND_AFTER: Hold = Hold::Cycles(2);
    /// `[server] header_timeout` by default.
    pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
    /// `[server] max_connections` by default.
    pub const DEFAULT_MAX_CONNECTIONS: usize = 64;
    /// The largest `max_connections` accepted: each connection holds a descriptor.
    pub const MAX_CONNECTIONS_LIMIT: usize = 4096;
}

pub(super) fn read_server(r: Option<TableReader<'_, '_>>) -> Option<ServerConfig> {
    let default: SocketAddr = "127.0.0.1:9464".parse().expect("valid address");
    let defaults = ServerConfig {
        listen: Some(default),
        blind_after: ServerConfig::DEFAULT_BLIND_AFTER,
        header_timeout: ServerConfig::DEFAULT_HEADER_TIMEOUT,
        max_connections: ServerConfig::DEFAULT_MAX_CONNECTIONS,
        allow_remote: false,
        allowed_hosts: Vec::new(),
        external_url: None,
    };
    let Some(mut r) = r else { return Some(defaults) };
    let listen = match r.raw("listen") {
        None => Some(Some(default)),
        Some(_) => r.get_parsed("listen", |s| {
            if s.is_empty() {
                Ok(None)
            } else {
                s.parse::<SocketAddr>()
                    .map(Some)
                    .map_err(|_| format!("`{s}` is not an address like \"127.0.0.1:9464\""))
            }
        }),
    };
    let blind_after = r
        .get_parsed("blind_after", |s| {
            Hold::parse(s).map_err(|e| {
                if e.contains("0 cycles") {
                    "0 cycles would call every start-up blind: use \"1 cycle\" or more".into()
                } else {
                    e
                }
            })
        })
        .unwrap_or(defaults.blind_after);
    if matches!(blind_after, Hold::Duration(d) if d.is_zero()) {
        r.problem_key("blind_after", "`blind_after` in [server] cannot be 0s: use \"1 cycle\" or more".to_owned());
    }
    let header_timeout = r.duration("header_timeout").unwrap_or(defaults.header_timeout);
    if header_timeout.is_zero() {
        r.problem_key("header_timeout", "`header_timeout` in [server] cannot be 0s".to_owned());
    }
    let max_connections = match r.get::<i64>("max_connections") {
        None => defaults.max_connections,
        Some(n) => match usize::try_from(n) {
            Ok(n) if (1..=ServerConfig::MAX_CONNECTIONS_LIMIT).contains(&n) => n,
            _ => {
                r.problem_key(
                    "max_connections",
                    format!(
                        "`max_connections` in [server] must be between 1 and {}, not {n}",
                        ServerConfig::MAX_CONNECTIONS_LIMIT
                    ),
                );
                defaults.max_connections
            }
        },
    };
    let allow_remote = r.get::<bool>("allow_remote").unwrap_or(false);
    // The status page shows positions, equity and findings: reachable from other machines only
    // when the operator says so.
    if let Some(Some(addr)) = listen
        && !addr.ip().is_loopback()
        && !allow_remote
    {
        r.problem_key(
            "listen",
            format!(
                "`listen` in [server] is {addr}, which other machines can reach, and the status server \
                 shows positions, equity and findings without a login: use a loopback address \
                 (127.0.0.1), or set `allow_remote = true` in [server] to mean it"
            ),
        );
    }
    let allowed_hosts: Vec<String> = r.get::<Vec<String>>("allowed_hosts").unwrap_or_default();
    for h in &allowed_hosts {
        let ok = !h.is_empty()
            && h.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
            && reqwest::Url::parse(&format!("http://{h}/")).is_ok_and(|u| u.port().is_none() && u.path() == "/");
        if !ok {
            r.problem_key(
                "allowed_hosts",
                format!("`allowed_hosts` in [server]: `{h}` is not a host name or address without a port"),
            );
        }
    }
    let mut allowed_hosts: Vec<String> =
        allowed_hosts.into_iter().map(|h| h.trim_end_matches('.').to_ascii_lowercase()).collect();
    // A link goes into every email: an http(s) URL with a host and no credentials in it.
    let external_url = r.get_parsed("external_url", |s| {
        let u = reqwest::Url::parse(s).map_err(|e| format!("`{s}` is not a URL: {e}"))?;
        if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none() {
            return Err(format!("`{s}` is not an http(s) URL with a host"));
        }
        if !u.username().is_empty() || u.password().is_some() {
            return Err("a user or password in the URL would be sent in every email: leave them out".into());
        }
        Ok(u.to_string())
    });
    let external_host = external_url
        .as_deref()
        .and_then(|u| reqwest::Url::parse(u).ok())
        .and_then(|u| u.host_str().map(str::to_ascii_lowercase));
    if let Some(host) = external_host
        && !allowed_hosts.contains(&host)
    {
        allowed_hosts.push(host);
    }
    r.finish(&[
        "listen",
        "blind_after",
        "header_timeout",
        "max_connections",
        "allow_remote",
        "allowed_hosts",
        "external_url",
    ]);
    listen.map(|listen| ServerConfig {
        listen,
        blind_after,
        header_timeout,
        max_connections,
        allow_remote,
        allowed_hosts,
        external_url,
    })
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    #[test]
    fn the_external_urls_host_is_an_allowed_host() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("rules.toml"), "").unwrap();
        let path = dir.path().join("tw.toml");
        std::fs::write(
            &path,
            "rules = [\"rules.toml\"]\n[server]\nexternal_url = \"https://TW.example.org:8443/status\"\n\
             allowed_hosts = [\"other.example\"]\n[bot]\nroot = \".\"\n[bot.positions]\nfile = \"p.json\"\n",
        )
        .unwrap();
        let cfg = Config::load(&path).unwrap();
        assert_eq!(cfg.server.external_url.as_deref(), Some("https://tw.example.org:8443/status"));
        assert_eq!(cfg.server.allowed_hosts, ["other.example", "tw.example.org"]);
    }
}
