//! What the notification channels' configurations know about their secrets: the names of the
//! environment variables holding them, never their values. The channels report them
//! (`notify::Channel::secret_env`), and `exec:` actions hide them from their child processes
//! whether or not a channel was built. A new channel adds its names to `AlertsConfig::secret_env`.

use super::{AlertsConfig, EmailConfig, EmailTransport};

impl EmailConfig {
    /// `username_env` and `password_env`, when SMTP names them.
    #[must_use]
    pub fn secret_env(&self) -> Vec<String> {
        match &self.transport {
            EmailTransport::Smtp { username_env, password_env, .. } => {
                username_env.iter().chain(password_env).cloned().collect()
            }
            EmailTransport::File { .. } => Vec::new(),
        }
    }
}

impl AlertsConfig {
    /// Every configured channel's secret variables.
    #[must_use]
    pub fn secret_env(&self) -> Vec<String> {
        self.email.secret_env()
    }
}
