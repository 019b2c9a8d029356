//! The Host check of the status server: a web page can point its own DNS name at 127.0.0.1 (DNS
//! rebinding) and then read the status as "same origin". Its requests carry the attacker's name
//! in Host, so answering only to names the operator configured closes that door.

use std::net::{IpAddr, SocketAddr};

use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// The Host values the status server answers to.
#[derive(Debug, Clone, Default)]
pub struct AllowedHosts {
    /// The listen address's IP, when it is a specific one.
    listen: Option<IpAddr>,
    /// Listening on every interface (0.0.0.0 or ::): any IP literal is one of ours or unroutable
    /// to us; DNS rebinding needs a *name*, so IP literals are safe to accept.
    any_ip: bool,
    /// `[server] allowed_hosts`, lower case, without trailing dot.
    names: Vec<String>,
}

impl AllowedHosts {
    /// Loopback names and addresses, the listen address, and `names`.
    #[must_use]
    pub fn new(listen: Option<SocketAddr>, names: &[String]) -> Self {
        let ip = listen.map(|a| a.ip());
        Self {
            listen: ip.filter(|ip| !ip.is_unspecified()),
            any_ip: ip.is_some_and(|ip| ip.is_unspecified()),
            names: names.iter().map(|n| n.trim_end_matches('.').to_ascii_lowercase()).collect(),
        }
    }

    /// Whether a request with this Host header (`None`: absent or not text) is answered.
    #[must_use]
    pub fn allows(&self, host_header: Option<&str>) -> bool {
        let Some(host) = host_header.and_then(host_of) else { return false };
        if crate::config::cleartext::is_loopback_host(host) {
            return true;
        }
        let bare = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return self.any_ip || self.listen.is_some_and(|l| l == ip || l.to_canonical() == ip.to_canonical());
        }
        let name = host.trim_end_matches('.').to_ascii_lowercase();
        self.names.contains(&name)
    }
}

/// The host part of a Host header: `[::1]:9464` -> `[::1]`, `a.example:80` -> `a.example`.
/// `None` when it is empty or malformed (a bracket without its pair, a non-numeric port).
fn host_of(value: &str) -> Option<&str> {
    let v = value.trim();
    let (host, port) = if v.starts_with('[') {
        let end = v.find(']')?;
        let (h, rest) = v.split_at(end + 1);
        (h, if rest.is_empty() { None } else { Some(rest.strip_prefix(':')?) })
    } else {
        match v.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (v, None),
        }
    };
    if host.is_empty() || port.is_some_and(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit())) {
        return None;
    }
    Some(host)
}

/// Middleware: 421 Misdirected Request, with no data, for a Host the server does not answer to.
pub async fn check(
    axum::extract::State(allowed): axum::extract::State<std::sync::Arc<AllowedHosts>>,
    req: Request,
    next: Next,
) -> Response {
    let host = req.headers().get(header::HOST).and_then(|v| v.to_str().ok());
    if allowed.allows(host) {
        next.run(req).await
    } else {
        (
            StatusCode::MISDIRECTED_REQUEST,
            "this status server answers only to loopback names, its listen address and [server] allowed_hosts\n",
        )
            .into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_foreign_host_header_is_refused_and_loopback_ones_with_any_port_pass() {
        let a = AllowedHosts::new(Some("127.0.0.1:9464".parse().unwrap()), &["Tw.Example.org".into()]);
        for h in [
            "127.0.0.1:9464",
            "127.0.0.1",
            "localhost:1",
            "LOCALHOST",
            "[::1]:9464",
            "[::1]",
            "tw.example.org:9464",
            "tw.example.org.",
        ] {
            assert!(a.allows(Some(h)), "{h}");
        }
        for h in [
            "attacker.example",
            "attacker.example:9464",
            "10.0.0.5:9464",
            "",
            ":9464",
            "localhost:x",
            "[::1",
            "localhost.attacker.example",
        ] {
            assert!(!a.allows(Some(h)), "{h}");
        }
        assert!(!a.allows(None), "no Host, no data");

        let lan = AllowedHosts::new(Some("10.0.0.5:9464".parse().unwrap()), &[]);
        assert!(lan.allows(Some("10.0.0.5:9464")) && !lan.allows(Some("10.0.0.6:9464")));
        let any = AllowedHosts::new(Some("0.0.0.0:9464".parse().unwrap()), &[]);
        assert!(any.allows(Some("10.0.0.6:9464")) && any.allows(Some("[fe80::1]:9464")));
        assert!(!any.allows(Some("rebind.attacker.example:9464")), "a name still needs allowed_hosts");
    }
}
