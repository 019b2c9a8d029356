//! `[alerts.email]`: how notices leave (SMTP or `.eml` files), from whom, to whom.

use std::path::{Path, PathBuf};

use super::cleartext;
use super::paths::resolve;
use super::reader::TableReader;

/// TLS for SMTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// STARTTLS, required (no downgrade).
    Starttls,
    /// Implicit TLS (SMTPS).
    Tls,
    /// Plain text: a local relay or tests.
    None,
}

/// How email leaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EmailTransport {
    /// An SMTP server.
    Smtp {
        /// Host name.
        host: String,
        /// Port.
        port: u16,
        /// TLS mode.
        tls: SmtpTls,
        /// Environment variable holding the user name.
        username_env: Option<String>,
        /// Environment variable holding the password.
        password_env: Option<String>,
        /// Extra root certificates (PEM) to trust besides the public ones: a private relay's
        /// or a company CA. Read when the transport is built.
        ca_file: Option<PathBuf>,
    },
    /// `.eml` files in a folder.
    File {
        /// The folder.
        dir: PathBuf,
    },
}

/// `[alerts.email]`.
#[derive(Debug, Clone)]
pub struct EmailConfig {
    /// SMTP or files.
    pub transport: EmailTransport,
    /// Sender.
    pub from: String,
    /// Recipients.
    pub to: Vec<String>,
}

fn check_mailbox(s: &str) -> Result<String, String> {
    s.parse::<lettre::message::Mailbox>()
        .map(|_| s.to_owned())
        .map_err(|e| format!("`{s}` is not an email address ({e})"))
}

pub(super) fn read_email(mut r: TableReader<'_, '_>, state_dir: &Path, dir: &Path) -> Option<EmailConfig> {
    let transport_kind = r
        .get_parsed("transport", |s| match s {
            "smtp" | "file" => Ok(s.to_owned()),
            other => Err(format!("unknown transport `{other}`; expected \"smtp\" or \"file\"")),
        })
        .unwrap_or_else(|| if r.has("host") { "smtp".into() } else { "file".into() });
    let from = r.get_parsed("from", check_mailbox).unwrap_or_else(|| "tradewarden@localhost".into());
    let to: Vec<String> = match r.raw("to") {
        Some(_) => {
            let list: Option<Vec<String>> = r.get("to");
            // An empty list would make every message fail forever with "missing destination".
            if list.as_ref().is_some_and(Vec::is_empty) {
                r.problem_key("to", "`to` in [alerts.email] needs at least one recipient");
            }
            let list = list.unwrap_or_default();
            let mut ok = Vec::new();
            for a in list {
                match check_mailbox(&a) {
                    Ok(a) => ok.push(a),
                    Err(e) => r.problem_key("to", format!("`to` in [alerts.email]: {e}")),
                }
            }
            ok
        }
        None => vec!["operator@localhost".into()],
    };
    let transport = if transport_kind == "smtp" {
        let host: Option<String> = r.require("host");
        let tls = r
            .get_parsed("tls", |s| match s {
                "starttls" => Ok(SmtpTls::Starttls),
                "tls" => Ok(SmtpTls::Tls),
                "none" => Ok(SmtpTls::None),
                other => Err(format!("unknown tls mode `{other}`; expected \"starttls\", \"tls\" or \"none\"")),
            })
            .unwrap_or(SmtpTls::Starttls);
        let default_port = match tls {
            SmtpTls::Starttls => 587,
            SmtpTls::Tls => 465,
            SmtpTls::None => 25,
        };
        let port = r.get::<u16>("port").unwrap_or(default_port);
        let username_env: Option<String> = r.get("username_env");
        let password_env: Option<String> = r.get("password_env");
        if username_env.is_some() != password_env.is_some() {
            r.problem("[alerts.email] needs both `username_env` and `password_env`, or neither");
        }
        let ca_file = r.get_parsed("ca_file", |s| {
            let path = resolve(dir, s);
            match std::fs::read(&path) {
                Ok(pem) if pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") => Ok(path),
                Ok(_) => Err(format!("{} holds no PEM certificate (-----BEGIN CERTIFICATE-----)", path.display())),
                Err(e) => Err(format!("cannot read {}: {e}", path.display())),
            }
        });
        // lettre sends AUTH over a plain connection when asked: the password would cross the
        // network readable. A local relay (loopback) is the one place that is fine.
        if tls == SmtpTls::None
            && username_env.is_some()
            && let Some(h) = host.as_deref()
            && !cleartext::is_loopback_host(h)
        {
            r.problem_key(
                "tls",
                format!(
                    "[alerts.email] tls = \"none\" with `username_env`/`password_env` would send the \
                     password to `{h}` unencrypted; use tls = \"starttls\" or \"tls\" (plain SMTP with a \
                     login is accepted only to localhost or a loopback address)"
                ),
            );
        }
        if ca_file.is_some() && tls == SmtpTls::None {
            r.problem_key("ca_file", "`ca_file` in [alerts.email] needs tls = \"starttls\" or \"tls\"".to_owned());
        }
        let _ = r.raw("dir");
        host.map(|host| EmailTransport::Smtp { host, port, tls, username_env, password_env, ca_file })
    } else {
        for k in ["host", "port", "tls", "username_env", "password_env", "ca_file"] {
            if r.has(k) {
                r.problem_key(k, format!("`{k}` in [alerts.email] only applies to transport = \"smtp\""));
                let _ = r.raw(k);
            }
        }
        let d = r.get::<String>("dir").map_or_else(|| state_dir.join("mail"), |d| resolve(dir, &d));
        Some(EmailTransport::File { dir: d })
    };
    r.finish(&["transport", "host", "port", "tls", "username_env", "password_env", "ca_file", "from", "to", "dir"]);
    Some(EmailConfig { transport: transport?, from, to })
}
