//! `exec:NAME`: run `[actions.exec.NAME] command` (an argv, never through a shell) with the
//! findings as JSON on stdin, `TRADEWARDEN_*` variables describing the alert, and a timeout
//! that kills.
//!
//! - The child runs in its own process group, in the configuration file's folder. On timeout
//!   the whole group gets SIGKILL (so a `sh -c 'sleep 999'` does not outlive it) and the child
//!   is reaped. After a normal exit nothing is signalled; output pipes a background grandchild
//!   keeps open are abandoned after 2 s.
//! - Its environment is tradewarden's, minus the broker credentials and every other
//!   `APCA_*` variable, and minus every notification channel's secret variables (the SMTP
//!   credentials `[alerts.email]` names; `hidden_env`): a command that needs keys must get
//!   them its own way. Added: `TRADEWARDEN_ACTION`,
//!   `TRADEWARDEN_RULE`, `TRADEWARDEN_CODE`, `TRADEWARDEN_SUBJECT`, `TRADEWARDEN_SEVERITY`,
//!   `TRADEWARDEN_FINGERPRINT`, `TRADEWARDEN_MODE` (`paper`/`live`).
//! - Exit status and the first 16 KiB of stdout and stderr go to the journal.

use std::ffi::OsString;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use crate::config::AlertsConfig;

/// Output kept per stream.
pub const MAX_OUTPUT: usize = 16 * 1024;

/// How long to wait for the output pipes after the process ended (a grandchild may hold
/// them open).
const PIPE_GRACE: Duration = Duration::from_secs(2);

/// What a run did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExecRun {
    /// argv.
    pub argv: Vec<String>,
    /// The exit code, when it exited.
    pub exit_code: Option<i32>,
    /// The signal that ended it, when one did.
    pub signal: Option<i32>,
    /// Killed at the timeout.
    pub timed_out: bool,
    /// Wall time.
    pub duration_ms: u64,
    /// The start of stdout (lossy UTF-8).
    pub stdout: String,
    /// The start of stderr.
    pub stderr: String,
    /// Either stream was longer than `MAX_OUTPUT`.
    pub truncated: bool,
}

impl ExecRun {
    /// Exited 0 within the timeout.
    #[must_use]
    pub fn succeeded(&self) -> bool {
        !self.timed_out && self.exit_code == Some(0)
    }

    /// `exit 0`, `exit 3`, `killed by signal 9`, `killed after 30s (timeout)`.
    #[must_use]
    pub fn status_text(&self, timeout: Duration) -> String {
        if self.timed_out {
            format!("killed after {} (timeout)", humantime::format_duration(timeout))
        } else if let Some(c) = self.exit_code {
            format!("exit {c}")
        } else if let Some(s) = self.signal {
            format!("killed by signal {s}")
        } else {
            "ended without a status".into()
        }
    }
}

/// The variables a command must not see besides `APCA_*`: every configured notification
/// channel's secrets, read from the configuration (no channel need be built).
#[must_use]
pub fn hidden_env(alerts: &AlertsConfig) -> Vec<String> {
    alerts.secret_env()
}

/// Whether a variable must not reach the command.
fn secret(name: &str, extra: &[String]) -> bool {
    name.starts_with("APCA_") || extra.iter().any(|e| e == name)
}

async fn read_bounded<R: AsyncRead + Unpin>(mut r: R) -> (Vec<u8>, bool) {
    let mut kept = Vec::new();
    let mut truncated = false;
    let mut buf = [0u8; 8192];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let room = MAX_OUTPUT.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
                truncated |= n > room;
            }
        }
    }
    (kept, truncated)
}

/// Kills the process group of a child still running when dropped (its leader not reaped, so
/// the pid still names the group).
struct GroupGuard(Option<u32>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        kill_group(self.0.take());
    }
}

fn kill_group(pid: Option<u32>) {
    if let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()).and_then(rustix::process::Pid::from_raw) {
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
}

/// The environment a command gets: `base` without the hidden variables, plus `add`.
#[must_use]
pub fn child_env(
    base: impl IntoIterator<Item = (OsString, OsString)>,
    add: &[(String, String)],
    hide: &[String],
) -> Vec<(OsString, OsString)> {
    let mut out: Vec<(OsString, OsString)> =
        base.into_iter().filter(|(k, _)| !k.to_str().is_some_and(|k| secret(k, hide))).collect();
    out.extend(add.iter().map(|(k, v)| (OsString::from(k), OsString::from(v))));
    out
}

/// Runs the command with exactly the environment `env` (see `child_env`).
///
/// # Errors
/// When it cannot be started (not found, not executable).
pub async fn run(
    argv: &[String],
    timeout: Duration,
    dir: &Path,
    env: Vec<(OsString, OsString)>,
    stdin: Vec<u8>,
) -> Result<ExecRun, String> {
    let (program, args) = argv.split_first().ok_or("empty command")?;
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    #[cfg(unix)]
    cmd.process_group(0);
    cmd.env_clear().envs(env);
    let started = Instant::now();
    let mut child = cmd.spawn().map_err(|e| format!("cannot start `{program}`: {e}"))?;
    let pid = child.id();
    // `kill_on_drop` kills only the direct child: if this future is dropped (an abandoned
    // cycle), the guard kills the whole group, so a `sh -c` grandchild is no orphan.
    let mut group = GroupGuard(pid);
    let mut input = child.stdin.take();
    let writer = tokio::spawn(async move {
        if let Some(w) = input.as_mut() {
            // A command that does not read its stdin closes the pipe: not an error.
            let _ = w.write_all(&stdin).await;
            let _ = w.shutdown().await;
        }
    });
    let out = child.stdout.take().map(|o| tokio::spawn(read_bounded(o)));
    let err = child.stderr.take().map(|e| tokio::spawn(read_bounded(e)));

    let waited = tokio::time::timeout(timeout, child.wait()).await;
    // From here the leader is reaped (or about to be): never signal its pid again on drop.
    let leader = group.0.take();
    let (status, timed_out) = match waited {
        Ok(s) => (s.ok(), false),
        Err(_) => {
            // The leader is not reaped yet, so its pid still names this group (a reaped
            // pid could be reused: the group is never signalled after a normal exit).
            kill_group(leader);
            // Kills (again, harmlessly) and reaps.
            let _ = child.kill().await;
            (child.wait().await.ok(), true)
        }
    };
    writer.abort();
    let collect = |h: Option<tokio::task::JoinHandle<(Vec<u8>, bool)>>| async move {
        match h {
            Some(h) => match tokio::time::timeout(PIPE_GRACE, h).await {
                Ok(Ok(r)) => r,
                _ => (b"(output not read: the pipe stayed open)".to_vec(), true),
            },
            None => (Vec::new(), false),
        }
    };
    let (stdout, t1) = collect(out).await;
    let (stderr, t2) = collect(err).await;
    #[cfg(unix)]
    let signal = {
        use std::os::unix::process::ExitStatusExt;
        status.and_then(|s| s.signal())
    };
    #[cfg(not(unix))]
    let signal = None;
    Ok(ExecRun {
        argv: argv.to_vec(),
        exit_code: status.and_then(|s| s.code()),
        signal,
        timed_out,
        duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        // External text: a command may print a secret it found (its own config, a token the
        // environment still holds); it is journaled, reported and emailed.
        stdout: crate::redact::redact(&String::from_utf8_lossy(&stdout)),
        stderr: crate::redact::redact(&String::from_utf8_lossy(&stderr)),
        truncated: t1 || t2,
    })
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    fn sh(script: &str) -> Vec<String> {
        vec!["/bin/sh".into(), "-c".into(), script.into()]
    }

    #[tokio::test]
    async fn passes_stdin_and_environment() {
        let base = [
            ("PATH", "/usr/bin:/bin"),
            ("APCA_API_SECRET_KEY", "s3cret"),
            ("APCA_API_KEY_ID", "PK"),
            ("MY_SMTP_PW", "pw"),
            ("KEEP", "kept"),
        ]
        .map(|(k, v)| (OsString::from(k), OsString::from(v)));
        let add = [("TRADEWARDEN_RULE".to_owned(), "no-shorts".to_owned())];
        let env = child_env(base, &add, &["MY_SMTP_PW".to_owned()]);
        let r = run(
            &sh("cat; echo; echo rule=$TRADEWARDEN_RULE keep=$KEEP key=${APCA_API_SECRET_KEY:-unset} pw=${MY_SMTP_PW:-unset}; exit 3"),
            Duration::from_secs(10),
            Path::new("/"),
            env,
            br#"{"findings":[]}"#.to_vec(),
        )
        .await
        .unwrap();
        assert_eq!(r.exit_code, Some(3));
        assert!(!r.succeeded());
        assert_eq!(r.status_text(Duration::from_secs(1)), "exit 3");
        assert_eq!(r.stdout, "{\"findings\":[]}\nrule=no-shorts keep=kept key=unset pw=unset\n");
    }

    #[test]
    fn broker_and_smtp_credentials_are_hidden() {
        let smtp = ["TRADEWARDEN_SMTP_PASSWORD".to_owned()];
        for hidden in ["APCA_API_KEY_ID", "APCA_API_SECRET_KEY", "APCA_API_BASE_URL", "TRADEWARDEN_SMTP_PASSWORD"] {
            assert!(secret(hidden, &smtp), "{hidden}");
        }
        assert!(!secret("PATH", &smtp) && !secret("HOME", &smtp));
    }

    /// The hidden names come from the configured channels (today the SMTP credentials of
    /// `[alerts.email]`), not from a list exec keeps itself.
    #[test]
    fn every_channels_secret_variables_are_hidden_from_the_child() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("rules.toml"), "").unwrap();
        let path = dir.path().join("tradewarden.toml");
        std::fs::write(
            &path,
            "rules = [\"rules.toml\"]\n[bot]\nroot = \".\"\n[bot.positions]\nfile = \"p.json\"\n\
             [alerts.email]\ntransport = \"smtp\"\nhost = \"smtp.example.com\"\nport = 587\n\
             username_env = \"TW_TEST_SMTP_USER\"\npassword_env = \"TW_TEST_SMTP_PASS\"\n",
        )
        .unwrap();
        let cfg = crate::config::Config::load(&path).unwrap();
        let hide = hidden_env(&cfg.alerts);
        assert_eq!(hide, ["TW_TEST_SMTP_USER", "TW_TEST_SMTP_PASS"]);
        let base = [("TW_TEST_SMTP_USER", "u"), ("TW_TEST_SMTP_PASS", "p"), ("APCA_API_KEY_ID", "k"), ("PATH", "/bin")]
            .map(|(k, v)| (OsString::from(k), OsString::from(v)));
        let env = child_env(base, &[], &hide);
        assert_eq!(env, [(OsString::from("PATH"), OsString::from("/bin"))]);
    }

    #[tokio::test]
    async fn a_command_printing_a_known_secret_has_it_redacted_from_stdout_and_stderr() {
        crate::redact::add_secret("exec-SECRET-value-7781");
        let env = child_env(std::env::vars_os(), &[], &[]);
        let script = "echo token exec-SECRET-value-7781; echo failed with exec-SECRET-value-7781 >&2; exit 3";
        let r = run(&sh(script), Duration::from_secs(10), Path::new("/"), env, Vec::new()).await.unwrap();
        assert_eq!(r.exit_code, Some(3));
        assert_eq!(r.stdout.trim(), "token [redacted]");
        assert_eq!(r.stderr.trim(), "failed with [redacted]");
    }

    #[tokio::test]
    async fn the_timeout_kills_the_whole_group() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("survived");
        let script = format!("(sleep 2; touch {}) & sleep 30", marker.display());
        let started = Instant::now();
        let env = child_env(std::env::vars_os(), &[], &[]);
        let r = run(&sh(&script), Duration::from_millis(300), dir.path(), env, Vec::new()).await.unwrap();
        assert!(r.timed_out && !r.succeeded());
        assert_eq!(r.status_text(Duration::from_millis(300)), "killed after 300ms (timeout)");
        assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
        tokio::time::sleep(Duration::from_millis(2500)).await;
        assert!(!marker.exists(), "the background grandchild was killed with the group");
    }

    #[tokio::test]
    async fn output_is_bounded_and_a_missing_program_is_an_error() {
        let env = || child_env(std::env::vars_os(), &[], &[]);
        let r = run(&sh("head -c 100000 /dev/zero"), Duration::from_secs(10), Path::new("/"), env(), Vec::new())
            .await
            .unwrap();
        assert!(r.succeeded() && r.truncated);
        assert_eq!(r.stdout.len(), MAX_OUTPUT);
        let e = run(&["/nonexistent/tw".into()], Duration::from_secs(1), Path::new("/"), env(), Vec::new())
            .await
            .unwrap_err();
        assert!(e.contains("cannot start `/nonexistent/tw`"), "{e}");
    }
}
