//! Logging with tracing: human-readable by default, JSON lines with `--log-json`. Logs go to
//! stderr so stdout stays the report. Secrets are never passed to a log call.

/// Installs the subscriber (once; later calls are ignored). `RUST_LOG` filters, default `info`
/// for the daemon and `warn` otherwise is decided by the caller through `RUST_LOG`.
pub fn init(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = if json { builder.json().try_init() } else { builder.try_init() };
}
