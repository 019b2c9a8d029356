//! `tradewarden sim [--scenario FILE] [--listen ADDR]`: serves until SIGINT or SIGTERM. The
//! first line on stdout is the base URL (`http://127.0.0.1:PORT`), so a parent process can
//! start it on port 0 and read where it went. Nothing secret is printed or logged.

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;

use super::exit;
use crate::sim::scenario::Scenario;
use crate::sim::server::spawn;

/// Runs the command; the exit code.
///
/// # Errors
/// Only when stdout cannot be written or the server fails while serving.
pub async fn run(scenario: Option<&Path>, listen: &str) -> anyhow::Result<u8> {
    let scenario = match scenario.map(Scenario::from_file).transpose() {
        Ok(s) => s.unwrap_or_default(),
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(exit::ERROR);
        }
    };
    let addr = match resolve(listen).await {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: --listen {listen}: {e}");
            return Ok(exit::ERROR);
        }
    };
    let handle = match spawn(scenario, addr).await {
        Ok(h) => h,
        Err(e) => {
            eprintln!("error: cannot start the simulator on {addr}: {e}");
            return Ok(exit::ERROR);
        }
    };
    // Listen for the stop signals before announcing the URL: a parent may signal right away.
    let stop = StopSignal::install()?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}", handle.url())?;
        out.flush()?;
    }
    tracing::info!(url = %handle.url(), "simulator listening");
    stop.wait().await;
    handle.shutdown().await?;
    Ok(exit::CLEAN)
}

/// `127.0.0.1:0`, `[::1]:8080` or `localhost:0`; loopback only.
async fn resolve(listen: &str) -> Result<SocketAddr, String> {
    let addr = match listen.parse::<SocketAddr>() {
        Ok(a) => a,
        Err(_) => tokio::net::lookup_host(listen)
            .await
            .map_err(|e| format!("not an address: {e}"))?
            .next()
            .ok_or("the name resolves to no address")?,
    };
    if addr.ip().is_loopback() {
        Ok(addr)
    } else {
        Err(format!("the simulator listens on loopback only (got {addr}); use 127.0.0.1"))
    }
}

/// SIGINT and SIGTERM, registered when created.
struct StopSignal {
    #[cfg(unix)]
    signals: (tokio::signal::unix::Signal, tokio::signal::unix::Signal),
}

impl StopSignal {
    fn install() -> std::io::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Self { signals: (signal(SignalKind::interrupt())?, signal(SignalKind::terminate())?) })
        }
        #[cfg(not(unix))]
        Ok(Self {})
    }

    async fn wait(self) {
        #[cfg(unix)]
        {
            let (mut int, mut term) = self.signals;
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn loopback_only() {
        assert_eq!(resolve("127.0.0.1:0").await.unwrap().port(), 0);
        assert!(resolve("[::1]:0").await.is_ok());
        assert!(resolve("localhost:0").await.unwrap().ip().is_loopback());
        assert!(resolve("0.0.0.0:0").await.unwrap_err().contains("loopback"));
        assert!(resolve("nonsense").await.is_err());
    }
}
