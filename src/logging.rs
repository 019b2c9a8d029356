//! Logging with tracing: human-readable by default, JSON lines with `--log-json`. Logs go to
//! stderr so stdout stays the report. Secrets are never passed to a log call.

/// Installs the subscriber (once; later calls are ignored). `RUST_LOG` filters; without it,
/// `default_filter` applies (`warn,tradewarden=info` for the daemon, `warn` otherwise).
pub fn init(json: bool, default_filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    // Colour only on a terminal: under systemd or in a log file, escape codes are noise.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    let _ = if json { builder.json().try_init() } else { builder.try_init() };
}
