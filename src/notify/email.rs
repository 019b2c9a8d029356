//! The email channel: lettre's transports, SMTP (STARTTLS, implicit TLS or plain) or `.eml`
//! files, behind `Channel`.
//!
//! SMTP credentials come from the environment variables `[alerts.email]` names
//! (`username_env`, `password_env`); their values are read once when the `Mailer` is built,
//! handed to lettre, and never logged, stored, printed or put in a message (lettre's own
//! `Debug` for credentials prints nothing, and `Mailer`'s `Debug` shows only the description).
//! Their names are the channel's `secret_env`.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use lettre::message::{MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::{Deserialize, Serialize};

use super::channel::{Channel, Content, Delivery, EMAIL, OutboxMessage, SendError, delivery};
use super::outbox::Outbox;
use super::render::{Rendered, header_safe};
use crate::config::{EmailConfig, EmailTransport, SmtpTls};
use crate::state::{StateError, ensure_dir, make_private};

/// The email fields of a queued message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct EmailContent {
    /// Sender.
    from: String,
    /// Recipients.
    to: Vec<String>,
    /// Plain-text part.
    text: String,
    /// HTML part.
    html: String,
}

/// The email fields of a rendered notice sent from `from` to `to`.
#[must_use]
pub fn content(notice: &Rendered, from: &str, to: &[String]) -> Content {
    let c =
        EmailContent { from: from.to_owned(), to: to.to_vec(), text: notice.text.clone(), html: notice.html.clone() };
    match serde_json::to_value(c) {
        Ok(serde_json::Value::Object(map)) => map,
        // A struct of strings always serialises to an object.
        _ => Content::new(),
    }
}

/// Why a transport could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// A credentials variable named by the config is not set. Only the name is reported.
    #[error("environment variable `{var}` (`{key}` in [alerts.email]) is not set")]
    MissingEnv {
        /// The variable's name.
        var: String,
        /// The config key naming it.
        key: &'static str,
    },
    /// TLS parameters could not be built.
    #[error("cannot set up TLS for `{host}`: {message}")]
    Tls {
        /// The SMTP host.
        host: String,
        /// lettre's message.
        message: String,
    },
}

/// Builds the email for a queued message: `multipart/alternative` with the text and HTML
/// parts, the Message-ID and Date fixed at enqueue time, and a boundary derived from the id, so
/// every attempt produces the same message. The subject is made header-safe again here, in case
/// the outbox file was edited by hand.
///
/// # Errors
/// When an address does not parse or lettre refuses the message.
pub fn build_message(m: &OutboxMessage) -> Result<Message, String> {
    let c: EmailContent = serde_json::from_value(serde_json::Value::Object(m.content.clone()))
        .map_err(|e| format!("not an email message: {e}"))?;
    let from = c.from.parse().map_err(|e| format!("sender `{}`: {e}", header_safe(&c.from)))?;
    let mut b = Message::builder()
        .from(from)
        .subject(header_safe(&m.subject))
        .message_id(Some(header_safe(&m.message_id)))
        .date(SystemTime::from(m.created_at))
        .user_agent(format!("tradewarden/{}", env!("CARGO_PKG_VERSION")));
    for to in &c.to {
        b = b.to(to.parse().map_err(|e| format!("recipient `{}`: {e}", header_safe(to)))?);
    }
    let body = MultiPart::alternative()
        .boundary(format!("tradewarden-{}", header_safe(&m.id)))
        .singlepart(SinglePart::plain(c.text))
        .singlepart(SinglePart::html(c.html));
    b.multipart(body).map_err(|e| format!("cannot build the message: {e}"))
}

/// The email channel: the configured transport, the addresses it queues messages with, and the
/// names of its credentials variables.
#[derive(Clone)]
pub struct Mailer {
    transport: Transport,
    from: String,
    to: Vec<String>,
    secret_env: Vec<String>,
}

/// lettre's transport.
#[derive(Clone)]
enum Transport {
    /// An SMTP server.
    Smtp {
        /// lettre's transport (holds the credentials, if any).
        transport: AsyncSmtpTransport<Tokio1Executor>,
        /// `smtp://host:port (tls)`, no secrets.
        description: String,
    },
    /// `.eml` files in a folder.
    File {
        /// lettre's transport.
        transport: AsyncFileTransport<Tokio1Executor>,
        /// The folder.
        dir: PathBuf,
    },
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Mailer").field(&self.describe()).finish()
    }
}

impl Mailer {
    /// The transport `[alerts.email]` describes, with credentials from the process environment.
    /// `timeout` bounds each SMTP command.
    ///
    /// # Errors
    /// A named credentials variable is unset, or TLS cannot be set up.
    pub fn from_config(cfg: &EmailConfig, timeout: Duration) -> Result<Self, NotifyError> {
        Self::from_config_with_env(cfg, timeout, |k| std::env::var(k).ok())
    }

    /// Like `from_config`, reading variables through `env` (tests).
    ///
    /// # Errors
    /// As `from_config`.
    pub fn from_config_with_env(
        cfg: &EmailConfig,
        timeout: Duration,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, NotifyError> {
        let transport = Self::transport(cfg, timeout, env)?;
        Ok(Self { transport, from: cfg.from.clone(), to: cfg.to.clone(), secret_env: cfg.secret_env() })
    }

    fn transport(
        cfg: &EmailConfig,
        timeout: Duration,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Transport, NotifyError> {
        match &cfg.transport {
            EmailTransport::File { dir } => Ok(Transport::file(dir)),
            EmailTransport::Smtp { host, port, tls, username_env, password_env, ca_file } => {
                let tls_error = |message: String| NotifyError::Tls { host: host.clone(), message };
                let tls_params = || {
                    let mut b = TlsParameters::builder(host.clone());
                    if let Some(path) = ca_file {
                        let pem = std::fs::read(path)
                            .map_err(|e| tls_error(format!("cannot read ca_file {}: {e}", path.display())))?;
                        let cert = Certificate::from_pem(&pem)
                            .map_err(|e| tls_error(format!("ca_file {}: {e}", path.display())))?;
                        b = b.add_root_certificate(cert);
                    }
                    b.build_rustls().map_err(|e| tls_error(e.to_string()))
                };
                let (tls_mode, tls_word) = match tls {
                    SmtpTls::Starttls => (Tls::Required(tls_params()?), "starttls"),
                    SmtpTls::Tls => (Tls::Wrapper(tls_params()?), "tls"),
                    SmtpTls::None => (Tls::None, "no tls"),
                };
                let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host.as_str())
                    .port(*port)
                    .tls(tls_mode)
                    .timeout(Some(timeout));
                if let (Some(user_var), Some(pass_var)) = (username_env, password_env) {
                    let user = env(user_var)
                        .ok_or_else(|| NotifyError::MissingEnv { var: user_var.clone(), key: "username_env" })?;
                    let pass = env(pass_var)
                        .ok_or_else(|| NotifyError::MissingEnv { var: pass_var.clone(), key: "password_env" })?;
                    // Registered before the first AUTH: a 535 reply may echo them (in base64).
                    crate::redact::add_smtp_login(&user, &pass);
                    b = b.credentials(Credentials::new(user, pass));
                }
                let auth = if username_env.is_some() { ", authenticated" } else { "" };
                let description = format!("smtp://{host}:{port} ({tls_word}{auth})");
                Ok(Transport::Smtp { transport: b.build(), description })
            }
        }
    }

    /// The file transport into `dir`, for delivering messages already queued (each carries its
    /// own addresses). It has no addresses of its own, so what it renders cannot be built into
    /// an email: queue through a `from_config` mailer, or `Outbox::enqueue` with addresses.
    #[must_use]
    pub fn file(dir: &Path) -> Self {
        Self { transport: Transport::file(dir), from: String::new(), to: Vec::new(), secret_env: Vec::new() }
    }

    async fn send(&self, message: &OutboxMessage) -> Result<String, SendError> {
        let email = build_message(message).map_err(SendError::rejected)?;
        match &self.transport {
            Transport::Smtp { transport, description } => match transport.send(email).await {
                // The server's replies are external text: redacted before the outbox, the
                // audit log or stdout sees them.
                Ok(resp) => {
                    let text: Vec<&str> = resp.message().collect();
                    Ok(crate::redact::redact(&format!("accepted by {description}: {} {}", resp.code(), text.join(" "))))
                }
                Err(e) if e.is_permanent() => {
                    Err(SendError::rejected(crate::redact::redact(&format!("{description}: {e}"))))
                }
                Err(e) => Err(SendError::connection(crate::redact::redact(&format!("{description}: {e}")))),
            },
            Transport::File { transport, dir } => {
                ensure_dir(dir).map_err(|e| SendError::connection(e.to_string()))?;
                match transport.send(email).await {
                    Ok(id) => {
                        let path = dir.join(format!("{id}.eml"));
                        // lettre writes with the process umask (often 0644); files under the
                        // state directory are 0600 (the folder is 0700 when we created it).
                        if let Err(e) = make_private(&path) {
                            tracing::warn!(path = %path.display(), error = %e, "cannot make the .eml file private");
                        }
                        Ok(format!("written to {}", path.display()))
                    }
                    Err(e) => Err(SendError::connection(format!("cannot write into {}: {e}", dir.display()))),
                }
            }
        }
    }
}

impl Transport {
    fn file(dir: &Path) -> Self {
        Self::File { transport: AsyncFileTransport::new(dir), dir: dir.to_owned() }
    }
}

impl Channel for Mailer {
    fn name(&self) -> &str {
        EMAIL
    }

    fn describe(&self) -> String {
        match &self.transport {
            Transport::Smtp { description, .. } => description.clone(),
            Transport::File { dir, .. } => format!(".eml files in {}", dir.display()),
        }
    }

    fn secret_env(&self) -> Vec<String> {
        self.secret_env.clone()
    }

    fn render(&self, notice: &Rendered) -> Content {
        content(notice, &self.from, &self.to)
    }

    fn deliver<'a>(&'a self, message: &'a OutboxMessage) -> Delivery<'a> {
        delivery(self.send(message))
    }
}

impl Outbox {
    /// Queues a rendered notice as an email from `from` to `to` (the email channel's rendering,
    /// without building its transport).
    ///
    /// # Errors
    /// When the file cannot be written (the message is then not queued).
    pub fn enqueue(
        &self,
        rendered: &Rendered,
        from: &str,
        to: &[String],
        now: DateTime<Utc>,
    ) -> Result<OutboxMessage, StateError> {
        self.write_new(Self::message(EMAIL, &rendered.subject, content(rendered, from, to), now))
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn msg(subject: &str) -> OutboxMessage {
        let t = chrono::Utc.with_ymd_and_hms(2026, 11, 20, 14, 30, 0).unwrap();
        let notice = Rendered { subject: subject.into(), text: "plain body".into(), html: "<p>html body</p>".into() };
        OutboxMessage {
            id: "0123456789abcdef0123456789abcdef".into(),
            message_id: "<01234567-89ab-cdef-0123-456789abcdef@tradewarden>".into(),
            created_at: t,
            channel: EMAIL.into(),
            subject: subject.into(),
            content: content(&notice, "tradewarden <tw@example.com>", &["ops@example.com".into()]),
            attempts: 0,
            next_attempt_at: t,
            last_attempt_at: None,
            last_error: None,
        }
    }

    fn headers(raw: &[u8]) -> Vec<String> {
        let text = String::from_utf8_lossy(raw);
        let head = text.split("\r\n\r\n").next().unwrap().to_owned();
        // Unfold continuation lines.
        head.replace("\r\n ", " ").replace("\r\n\t", " ").split("\r\n").map(str::to_owned).collect()
    }

    #[test]
    fn message_has_both_parts_and_a_stable_id_and_date() {
        let m = msg("[tradewarden] CRITICAL no-shorts: CHWY short -1596 (paper)");
        let a = build_message(&m).unwrap().formatted();
        let b = build_message(&m).unwrap().formatted();
        assert_eq!(a, b, "every attempt produces the same bytes");
        let text = String::from_utf8_lossy(&a);
        let h = headers(&a);
        assert!(h.contains(&"Message-ID: <01234567-89ab-cdef-0123-456789abcdef@tradewarden>".to_owned()), "{h:?}");
        assert!(h.contains(&"Date: Fri, 20 Nov 2026 14:30:00 +0000".to_owned()), "{h:?}");
        assert!(h.contains(&"Subject: [tradewarden] CRITICAL no-shorts: CHWY short -1596 (paper)".to_owned()), "{h:?}");
        assert!(text.contains("multipart/alternative"));
        assert!(text.contains("text/plain") && text.contains("text/html"));
        assert!(text.contains("plain body") && text.contains("<p>html body</p>"));
    }

    #[test]
    fn injected_newlines_never_make_a_header() {
        let mut m = msg("[tradewarden] CRITICAL no-shorts: CHWY\r\nBcc: evil@x\r\n (paper)");
        m.message_id = "<x@tradewarden>\r\nBcc: evil@x".into();
        let raw = build_message(&m).unwrap().formatted();
        let h = headers(&raw);
        assert!(!h.iter().any(|l| l.to_ascii_lowercase().starts_with("bcc")), "{h:?}");
        assert_eq!(build_message(&m).unwrap().envelope().to().len(), 1);
    }

    #[test]
    fn missing_credentials_name_the_variable_never_a_value() {
        let cfg = EmailConfig {
            transport: EmailTransport::Smtp {
                host: "smtp.example.com".into(),
                port: 587,
                tls: SmtpTls::Starttls,
                username_env: Some("TW_USER".into()),
                password_env: Some("TW_PASS".into()),
                ca_file: None,
            },
            from: "tw@example.com".into(),
            to: vec!["ops@example.com".into()],
        };
        let err = Mailer::from_config_with_env(&cfg, Duration::from_secs(5), |k| {
            (k == "TW_USER").then(|| "alice".to_owned())
        })
        .unwrap_err();
        assert_eq!(err.to_string(), "environment variable `TW_PASS` (`password_env` in [alerts.email]) is not set");
        let ok = Mailer::from_config_with_env(&cfg, Duration::from_secs(5), |k| Some(format!("secret-{k}"))).unwrap();
        let shown = format!("{ok:?} {}", ok.describe());
        assert!(!shown.contains("secret") && !shown.contains("alice"), "{shown}");
        assert!(shown.contains("smtp://smtp.example.com:587 (starttls, authenticated)"), "{shown}");
        // The channel names its secrets' variables (for `exec:` to hide), never their values.
        assert_eq!(ok.secret_env(), ["TW_USER", "TW_PASS"]);
        assert_eq!(ok.secret_env(), cfg.secret_env());
        assert_eq!(ok.name(), EMAIL);
    }

    #[test]
    fn rendering_addresses_the_message_from_the_config() {
        let cfg = EmailConfig {
            transport: EmailTransport::File { dir: PathBuf::from("/nonexistent") },
            from: "tw@example.com".into(),
            to: vec!["a@example.com".into(), "b@example.com".into()],
        };
        let mailer = Mailer::from_config(&cfg, Duration::from_secs(5)).unwrap();
        assert!(mailer.secret_env().is_empty(), "the file transport has no secrets");
        let mut m = msg("subject");
        m.content = mailer.render(&Rendered { subject: "s".into(), text: "t".into(), html: "h".into() });
        let built = build_message(&m).unwrap();
        assert_eq!(built.envelope().to().len(), 2);
        assert_eq!(built.envelope().from().unwrap().to_string(), "tw@example.com");
        // A message of another channel is refused, not sent half-built.
        m.content = Content::new();
        assert!(build_message(&m).unwrap_err().starts_with("not an email message"), "{:?}", build_message(&m).err());
    }

    #[tokio::test]
    async fn file_transport_writes_an_eml() {
        let dir = tempfile::tempdir().unwrap();
        let mail = dir.path().join("mail");
        let mailer = Mailer::file(&mail);
        let receipt = mailer.send(&msg("hello")).await.unwrap();
        assert!(receipt.starts_with("written to "), "{receipt}");
        let files: Vec<_> = std::fs::read_dir(&mail).unwrap().map(|e| e.unwrap().path()).collect();
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].extension().unwrap(), "eml");
        let raw = std::fs::read(&files[0]).unwrap();
        assert!(headers(&raw).contains(&"Subject: hello".to_owned()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&files[0]).unwrap().permissions().mode() & 0o777, 0o600);
            assert_eq!(std::fs::metadata(&mail).unwrap().permissions().mode() & 0o777, 0o700);
        }
    }
}
