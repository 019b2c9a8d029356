//! `tradewarden snapshot -o DIR`: records everything one audit reads into a snapshot
//! directory (design.md §3; the format is `collect::snapshot_dir`, the writer
//! `collect::record`), so that `audit --replay DIR` reproduces the same findings.

use std::path::Path;

use chrono::SecondsFormat;

use super::{ConfigArg, exit, load, print};
use crate::clock::SystemClock;
use crate::collect::broker::Broker;
use crate::collect::record::{Recorded, record};

/// Runs the command: exit 0 when the directory was written (failed sources are recorded as
/// failed, with a warning each), 2 when nothing was.
///
/// # Errors
/// When stdout cannot be written.
pub async fn run(config: &ConfigArg, out: &Path) -> anyhow::Result<u8> {
    let cfg = match load(&config.config) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    let broker = match Broker::for_config(&cfg, None) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(exit::ERROR);
        }
    };
    match record(&cfg, &broker, &SystemClock, out).await {
        Ok(rec) => {
            for e in &rec.source_errors {
                eprintln!("warning: recorded as failed: {e}");
            }
            print(&summary(&rec, &cfg.path))?;
            Ok(exit::CLEAN)
        }
        Err(e) => {
            eprintln!("error: {e}");
            Ok(exit::ERROR)
        }
    }
}

/// A few lines for people: what was written, what failed, how to replay it.
#[must_use]
fn summary(rec: &Recorded, config: &Path) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "wrote {} ({} account, taken at {})",
        rec.dir.display(),
        rec.mode,
        rec.taken_at.to_rfc3339_opts(SecondsFormat::Millis, true)
    );
    let _ = writeln!(
        s,
        "  broker: {}",
        if rec.broker_files.is_empty() { "nothing".into() } else { rec.broker_files.join(", ") }
    );
    let files: Vec<String> = rec.bot_files.iter().map(|p| p.display().to_string()).collect();
    let _ = writeln!(s, "  bot files: {}", if files.is_empty() { "none".into() } else { files.join(", ") });
    for t in &rec.log_tails {
        let _ = writeln!(s, "  log {}: {} ({} bytes from offset {})", t.name, t.file.display(), t.len, t.from);
    }
    if !rec.source_errors.is_empty() {
        let _ = writeln!(s, "  {} source(s) failed and are recorded as failed", rec.source_errors.len());
    }
    let _ = writeln!(s, "replay: tradewarden audit -c {} --replay {}", config.display(), rec.dir.display());
    s
}
