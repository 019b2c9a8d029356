//! `[alerts] heartbeat_url`: a GET after every cycle that completed its audit and read at least
//! one broker endpoint, so an external dead-man switch (healthchecks-style) notices when the
//! watchdog itself stops, or goes blind. Failures are
//! logged and nothing else: the heartbeat never delays or fails a cycle for long.
//!
//! Each cycle also pings `URL/start` as it begins (Healthchecks' start signal: it measures the
//! run time from it, and a start with no success ping within the check's grace time is a
//! failure, so a cycle that hangs or goes blind is noticed without waiting a whole period).
//! One attempt per cycle, never retried: a switch that is down gets no backlog of pings.
//!
//! When email has been undeliverable longer than `[alerts] undeliverable_after`, the daemon
//! pings `URL/fail` instead (Healthchecks' failure signal; a switch without one answers an
//! error and, either way, no success ping arrives): the watchdog is alive but no one hears it.
//!
//! The URL often carries a secret token (the check's id), so it is never logged: messages name
//! only its host, and reqwest errors are stripped of their URL.

use std::time::Duration;

/// How long one heartbeat may take.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// The heartbeat target and its client.
#[derive(Debug, Clone)]
pub struct Heartbeat {
    url: String,
    start_url: String,
    fail_url: String,
    host: String,
    client: reqwest::Client,
}

/// What a heartbeat did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Beat {
    /// The server answered 2xx.
    Ok,
    /// It did not; a sentence without the URL.
    Failed(String),
}

impl Heartbeat {
    /// A heartbeat for `url`.
    ///
    /// # Errors
    /// When the URL does not parse or the HTTP client cannot be built.
    pub fn new(url: &str) -> Result<Self, String> {
        let parsed = reqwest::Url::parse(url).map_err(|e| format!("[alerts] heartbeat_url is not a URL: {e}"))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err("[alerts] heartbeat_url must be an http:// or https:// URL".into());
        }
        let host = parsed.host_str().unwrap_or("?").to_owned();
        let signal = |name: &str| {
            let mut u = parsed.clone();
            u.set_path(&format!("{}/{name}", parsed.path().trim_end_matches('/')));
            u.to_string()
        };
        crate::redact::add_url_tokens(url);
        let client = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .user_agent(concat!("tradewarden/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the heartbeat client: {}", e.without_url()))?;
        Ok(Self { url: url.to_owned(), start_url: signal("start"), fail_url: signal("fail"), host, client })
    }

    /// The host, for logs.
    #[must_use]
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Says a cycle begins (`URL/start`), and logs a failure to do so.
    pub async fn start(&self) -> Beat {
        self.ping(&self.start_url, "start").await
    }

    /// Sends one heartbeat and logs a failure.
    pub async fn beat(&self) -> Beat {
        self.ping(&self.url, "success").await
    }

    /// Reports failure instead of health (`URL/fail`), and logs a failure to do so.
    pub async fn fail(&self) -> Beat {
        self.ping(&self.fail_url, "fail").await
    }

    async fn ping(&self, url: &str, signal: &'static str) -> Beat {
        let result = match self.client.get(url).send().await {
            Ok(r) if r.status().is_success() => Beat::Ok,
            Ok(r) => Beat::Failed(format!("{} answered {}", self.host, r.status())),
            // The transport's words are external text (a proxy's, a resolver's): redacted.
            Err(e) => Beat::Failed(crate::redact::redact(&format!("{}: {}", self.host, e.without_url()))),
        };
        match &result {
            Beat::Ok => tracing::debug!(host = %self.host, signal, "Heartbeat sent."),
            // A switch without a start signal (a plain dead-man URL) answers every start with an
            // error: not worth a warning each cycle, and an outage shows in the success ping's.
            Beat::Failed(why) if signal == "start" => tracing::debug!(error = %why, signal, "Heartbeat failed."),
            Beat::Failed(why) => tracing::warn!(error = %why, signal, "Heartbeat failed."),
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_what_is_not_http() {
        assert!(Heartbeat::new("not a url").is_err());
        assert!(Heartbeat::new("ftp://x/y").is_err());
        let _ = rustls::crypto::ring::default_provider().install_default();
        assert_eq!(Heartbeat::new("https://hc.example/ping/abc-secret").unwrap().host(), "hc.example");
    }

    #[test]
    fn the_failure_signal_is_the_url_with_fail_appended_to_its_path() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let hb = Heartbeat::new("https://hc.example/ping/abc/?rid=1").unwrap();
        assert_eq!(hb.start_url, "https://hc.example/ping/abc/start?rid=1", "the start signal likewise");
        assert_eq!(Heartbeat::new("https://hc.example/ping/abc").unwrap().fail_url, "https://hc.example/ping/abc/fail");
        assert_eq!(
            Heartbeat::new("https://hc.example/ping/abc/").unwrap().fail_url,
            "https://hc.example/ping/abc/fail"
        );
        assert_eq!(Heartbeat::new("http://hc.example/p?rid=1").unwrap().fail_url, "http://hc.example/p/fail?rid=1");
    }

    #[tokio::test]
    async fn a_failure_never_shows_the_url() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let hb = Heartbeat::new(&format!("http://127.0.0.1:{port}/ping/secret-token")).unwrap();
        for beat in [hb.start().await, hb.beat().await, hb.fail().await] {
            match beat {
                Beat::Failed(why) => assert!(!why.contains("secret-token") && why.contains("127.0.0.1"), "{why}"),
                Beat::Ok => panic!("nothing listens there"),
            }
        }
    }
}
