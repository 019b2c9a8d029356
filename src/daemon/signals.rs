//! SIGTERM and SIGINT (Ctrl-C) become stop requests: the first lets the running cycle finish
//! (within a grace period), the second abandons it. Either way the daemon persists its state and
//! exits 0.

use super::schedule::{Shutdown, ShutdownHandle};

/// Installs the handlers; the receiving side. Must be called inside the runtime.
///
/// # Errors
/// When a handler cannot be registered.
pub fn install() -> std::io::Result<Shutdown> {
    let (handle, shutdown) = Shutdown::new();
    listen(handle)?;
    Ok(shutdown)
}

#[cfg(unix)]
fn listen(handle: ShutdownHandle) -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::spawn(async move {
        loop {
            let name = tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
            };
            tracing::info!(signal = name, "Stop requested.");
            handle.request();
        }
    });
    Ok(())
}

#[cfg(not(unix))]
fn listen(handle: ShutdownHandle) -> std::io::Result<()> {
    tokio::spawn(async move {
        while tokio::signal::ctrl_c().await.is_ok() {
            tracing::info!(signal = "Ctrl-C", "Stop requested.");
            handle.request();
        }
    });
    Ok(())
}
