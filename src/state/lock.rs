//! One watchdog per state directory: an advisory lock on `state_dir/tradewarden.lock`.
//!
//! `std::fs::File::try_lock` (an `flock` on Unix) is released by the kernel when the process
//! dies, so a crash never leaves a stale lock. The holder writes its pid into the file so a
//! second instance can say who holds it. The file itself is never removed: removing it would
//! let a third process lock a fresh inode while the first still runs.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};

use super::store::{StateError, ensure_dir};

/// The lock file's name inside the state directory.
pub const LOCK_FILE: &str = "tradewarden.lock";

/// Why the lock was not taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process holds it.
    #[error("state directory `{}` is in use by another tradewarden ({})", .dir.display(), holder(*.pid))]
    Held {
        /// The state directory.
        dir: PathBuf,
        /// The holder's pid, when it could be read.
        pid: Option<u32>,
    },
    /// The state directory could not be created.
    #[error(transparent)]
    State(#[from] StateError),
    /// The lock file could not be opened or locked.
    #[error("cannot lock `{}`: {source}", .path.display())]
    Io {
        /// The lock file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
}

fn holder(pid: Option<u32>) -> String {
    pid.map_or_else(|| "pid unknown".to_owned(), |p| format!("pid {p}"))
}

/// The held lock; released on drop (or when the process exits).
#[derive(Debug)]
pub struct StateLock {
    file: File,
    path: PathBuf,
}

impl StateLock {
    /// Takes the lock of `state_dir` (created 0700 if missing) without waiting, and writes this
    /// process's pid into it.
    ///
    /// # Errors
    /// `Held` (with the holder's pid) when another process, or another handle in this process,
    /// holds it; `Io` or `State` when the file cannot be used.
    pub fn acquire(state_dir: &Path) -> Result<Self, LockError> {
        ensure_dir(state_dir)?;
        let path = state_dir.join(LOCK_FILE);
        let io_err = |source: io::Error| LockError::Io { path: path.clone(), source };
        let mut opts = OpenOptions::new();
        opts.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut file = opts.open(&path).map_err(io_err)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                return Err(LockError::Held { dir: state_dir.to_owned(), pid: text.trim().parse().ok() });
            }
            Err(TryLockError::Error(e)) => return Err(io_err(e)),
        }
        file.set_len(0).map_err(io_err)?;
        file.rewind().map_err(io_err)?;
        writeln!(file, "{}", std::process::id()).map_err(io_err)?;
        file.sync_all().map_err(io_err)?;
        Ok(Self { file, path })
    }

    /// The lock file.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for StateLock {
    fn drop(&mut self) {
        let _ = self.file.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_locker_gets_the_holders_pid() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let first = StateLock::acquire(&state).unwrap();
        assert_eq!(std::fs::read_to_string(first.path()).unwrap().trim(), std::process::id().to_string());
        let err = StateLock::acquire(&state).unwrap_err();
        match &err {
            LockError::Held { pid, .. } => assert_eq!(*pid, Some(std::process::id())),
            other => panic!("unexpected {other:?}"),
        }
        assert!(err.to_string().contains(&format!("pid {}", std::process::id())), "{err}");
        drop(first);
        let again = StateLock::acquire(&state).unwrap();
        drop(again);
    }
}
