//! One watchdog per state directory: a `FileLock` on `state_dir/tradewarden.lock`, holding
//! the holder's pid so a second instance can say who runs.

use std::path::Path;

use super::file_lock::{FileLock, LockError};

/// The lock file's name inside the state directory.
pub const LOCK_FILE: &str = "tradewarden.lock";

/// The held single-instance lock; released on drop (or when the process exits).
#[derive(Debug)]
pub struct StateLock(FileLock);

impl StateLock {
    /// Takes the lock of `state_dir` (created 0700 if missing) without waiting, and writes this
    /// process's pid into it.
    ///
    /// # Errors
    /// `Held` (with the holder's pid) when another process, or another handle in this process,
    /// holds it; `Io` or `State` when the file cannot be used.
    pub fn acquire(state_dir: &Path) -> Result<Self, LockError> {
        let mut lock = FileLock::try_acquire(&state_dir.join(LOCK_FILE))?;
        lock.record_pid()?;
        Ok(Self(lock))
    }

    /// The lock file.
    #[must_use]
    pub fn path(&self) -> &Path {
        self.0.path()
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
            LockError::Held { dir, pid } => assert_eq!((dir, *pid), (&state, Some(std::process::id()))),
            other => panic!("unexpected {other:?}"),
        }
        assert!(err.to_string().contains(&format!("pid {}", std::process::id())), "{err}");
        drop(first);
        let again = StateLock::acquire(&state).unwrap();
        drop(again);
    }
}
