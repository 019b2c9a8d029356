//! Where a secret may travel without TLS: only to this machine (a loopback name or address).
//! Shared by config validation (broker base URL, heartbeat URL, SMTP), the broker client (for
//! `APCA_API_BASE_URL`, which no file names) and the status server's Host check.

use std::net::IpAddr;

/// Whether `host` (a URL's or Host header's host, without port; IPv6 with or without brackets)
/// names this machine: `localhost` (or a `*.localhost` name, RFC 6761) or a loopback address.
#[must_use]
pub fn is_loopback_host(host: &str) -> bool {
    let h = host.trim_end_matches('.');
    let bare = h.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(h);
    match bare.parse::<IpAddr>() {
        Ok(ip) => ip.is_loopback() || ip.to_canonical().is_loopback(),
        Err(_) => {
            let lower = h.to_ascii_lowercase();
            lower == "localhost" || lower.ends_with(".localhost")
        }
    }
}

/// `Err` with a sentence when `url` is `http://` to a host other than this machine: whatever it
/// carries (`what`: the broker keys, a heartbeat token) would cross the network in plain text.
/// Non-http URLs and unparsable ones pass: other checks report those.
///
/// # Errors
/// The sentence, naming `what` and the host.
pub fn check_url(url: &str, what: &str) -> Result<(), String> {
    let Ok(parsed) = reqwest::Url::parse(url.trim()) else { return Ok(()) };
    if parsed.scheme() != "http" {
        return Ok(());
    }
    let host = parsed.host_str().unwrap_or_default();
    if is_loopback_host(host) {
        return Ok(());
    }
    Err(format!(
        "`{url}` is plain http to `{host}`: {what} would cross the network unencrypted; use https:// \
         (plain http is accepted only to localhost or a loopback address)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_names_and_addresses_only() {
        for h in [
            "localhost",
            "LOCALHOST.",
            "api.localhost",
            "127.0.0.1",
            "127.8.9.10",
            "::1",
            "[::1]",
            "[::ffff:127.0.0.1]",
        ] {
            assert!(is_loopback_host(h), "{h}");
        }
        for h in ["example.com", "localhost.example.com", "10.0.0.5", "0.0.0.0", "[::]", "127.0.0.1.nip.io", ""] {
            assert!(!is_loopback_host(h), "{h}");
        }
    }

    #[test]
    fn plain_http_to_a_remote_host_is_refused() {
        assert!(check_url("http://127.0.0.1:8080", "the keys").is_ok());
        assert!(check_url("http://localhost/v2", "the keys").is_ok());
        assert!(check_url("https://api.alpaca.markets", "the keys").is_ok());
        let e = check_url("http://api.alpaca.markets", "the broker keys").unwrap_err();
        assert!(e.contains("plain http to `api.alpaca.markets`") && e.contains("the broker keys"), "{e}");
        assert!(check_url("HTTP://10.0.0.5:9000/ping", "x").is_err(), "the scheme is case-insensitive");
        assert!(check_url("http://127.0.0.1@evil.example/", "x").is_err(), "userinfo is not the host");
    }
}
