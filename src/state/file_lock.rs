//! Advisory locks on files in the state directory: the single-instance lock
//! (`tradewarden.lock`), the actions lock (`actions.lock`) and the silences lock
//! (`silences.lock`) are all a `FileLock`.
//!
//! `std::fs::File::try_lock` (an `flock` on Unix) is released by the kernel when the process
//! dies, so a crash never leaves a stale lock. A holder may write its pid into the file
//! (`record_pid`) so a contender can say who holds it. Lock files are created 0600 in a 0700
//! folder, and never removed: removing one would let a third process lock a fresh inode while
//! the first still holds the old one.

use std::fs::{File, TryLockError};
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::file::{StateError, ensure_dir, open_lock};

/// How often `acquire_within` tries again.
const POLL: Duration = Duration::from_millis(100);

/// Why a lock was not taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process (or another handle in this process) holds it.
    #[error("state directory `{}` is in use by another tradewarden ({})", .dir.display(), holder(*.pid))]
    Held {
        /// The folder of the lock file (the state directory).
        dir: PathBuf,
        /// The holder's pid, when it recorded one and it could be read.
        pid: Option<u32>,
    },
    /// The folder could not be created.
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

/// A held advisory lock on a file; released on drop (or when the process exits).
#[derive(Debug)]
pub struct FileLock {
    file: File,
    path: PathBuf,
}

impl FileLock {
    /// Takes the lock on `path` without waiting (the file created 0600, its folder 0700).
    ///
    /// # Errors
    /// `Held`, with the holder's pid if it recorded one, when the lock is taken; `Io` or
    /// `State` when the file cannot be used.
    pub fn try_acquire(path: &Path) -> Result<Self, LockError> {
        let file = Self::open(path)?;
        match file.try_lock() {
            Ok(()) => Ok(Self { file, path: path.to_owned() }),
            Err(TryLockError::WouldBlock) => Err(held(path, file)),
            Err(TryLockError::Error(e)) => Err(io_error(path, e)),
        }
    }

    /// Takes the lock on `path`, blocking the thread until it is free: for short critical
    /// sections (a read-modify-write of one file) that every holder leaves quickly.
    ///
    /// # Errors
    /// `Io` or `State` when the file cannot be used (never `Held`).
    pub fn acquire(path: &Path) -> Result<Self, LockError> {
        let file = Self::open(path)?;
        file.lock().map_err(|e| io_error(path, e))?;
        Ok(Self { file, path: path.to_owned() })
    }

    /// Takes the lock on `path`, trying again every 100 ms for up to `wait`.
    ///
    /// # Errors
    /// `Held` when it is still taken after `wait`; `Io` or `State` when the file cannot be used.
    pub async fn acquire_within(path: &Path, wait: Duration) -> Result<Self, LockError> {
        let file = Self::open(path)?;
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(Self { file, path: path.to_owned() }),
                Err(TryLockError::WouldBlock) if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(POLL).await;
                }
                Err(TryLockError::WouldBlock) => return Err(held(path, file)),
                Err(TryLockError::Error(e)) => return Err(io_error(path, e)),
            }
        }
    }

    /// Writes this process's pid into the lock file (replacing what was there), so a contender
    /// can name the holder.
    ///
    /// # Errors
    /// When the file cannot be written.
    pub fn record_pid(&mut self) -> Result<(), LockError> {
        let path = self.path.clone();
        let err = |e| io_error(&path, e);
        self.file.set_len(0).map_err(err)?;
        self.file.rewind().map_err(err)?;
        writeln!(self.file, "{}", std::process::id()).map_err(err)?;
        self.file.sync_all().map_err(err)
    }

    /// The lock file.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn open(path: &Path) -> Result<File, LockError> {
        ensure_dir(folder(path))?;
        open_lock(path).map_err(|e| io_error(path, e))
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        let _ = self.file.unlock();
    }
}

fn folder(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

fn io_error(path: &Path, source: io::Error) -> LockError {
    LockError::Io { path: path.to_owned(), source }
}

/// `Held`, with the pid the holder recorded in the file (if any).
fn held(path: &Path, mut file: File) -> LockError {
    let mut text = String::new();
    let _ = file.read_to_string(&mut text);
    LockError::Held { dir: folder(path).to_owned(), pid: text.trim().parse().ok() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contention_names_the_holders_pid_when_it_recorded_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/x.lock");
        let mut first = FileLock::try_acquire(&path).unwrap();
        match FileLock::try_acquire(&path).unwrap_err() {
            LockError::Held { dir: d, pid } => assert_eq!((d, pid), (dir.path().join("state"), None)),
            other => panic!("unexpected {other:?}"),
        }
        first.record_pid().unwrap();
        let err = FileLock::try_acquire(&path).unwrap_err();
        assert!(matches!(err, LockError::Held { pid: Some(p), .. } if p == std::process::id()), "{err:?}");
        assert!(err.to_string().contains(&format!("pid {}", std::process::id())), "{err}");
        drop(first);
        drop(FileLock::try_acquire(&path).unwrap());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
    }

    #[tokio::test]
    async fn acquire_within_waits_for_the_holder_and_gives_up_after_the_wait() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("actions.lock");
        let first = FileLock::try_acquire(&path).unwrap();
        let started = std::time::Instant::now();
        let err = FileLock::acquire_within(&path, Duration::from_millis(250)).await.unwrap_err();
        assert!(matches!(err, LockError::Held { .. }), "{err:?}");
        assert!(started.elapsed() >= Duration::from_millis(250));
        let release = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(150)).await;
            drop(first);
        });
        let second = FileLock::acquire_within(&path, Duration::from_secs(5)).await.unwrap();
        release.await.unwrap();
        assert_eq!(second.path(), path);
    }

    #[test]
    fn acquire_blocks_until_the_holder_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("silences.lock");
        let first = FileLock::acquire(&path).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let p = path.clone();
        let waiter = std::thread::spawn(move || {
            let l = FileLock::acquire(&p).unwrap();
            tx.send(()).unwrap();
            drop(l);
        });
        assert!(rx.recv_timeout(Duration::from_millis(200)).is_err(), "it waits while the lock is held");
        drop(first);
        rx.recv_timeout(Duration::from_secs(5)).unwrap();
        waiter.join().unwrap();
    }
}
