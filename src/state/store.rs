//! Atomic JSON files in the state directory.
//!
//! `write_atomic` writes a temp file next to the target, fsyncs it, renames it over the target
//! and fsyncs the folder, so readers see the old content or the new, never a torn file, even
//! across a power loss. `load_or_default` is what the daemon uses at start-up and every cycle: a
//! missing file is empty state; a corrupt one is moved aside and reported, never a crash.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A state file or folder could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The state directory could not be created.
    #[error("cannot create state directory `{path}`: {source}")]
    CreateDir {
        /// The folder.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A file could not be read.
    #[error("cannot read `{path}`: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A file could not be written.
    #[error("cannot write `{path}`: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A file was read but is not valid JSON of the expected shape.
    #[error("`{path}` is corrupt: {message}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The parser's message (line and column).
        message: String,
    },
}

/// Creates the state directory (and parents) when missing; a folder it creates is 0700.
///
/// # Errors
/// When it cannot be created.
pub fn ensure_dir(dir: &Path) -> Result<(), StateError> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut b = fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir).map_err(|source| StateError::CreateDir { path: dir.to_owned(), source })
}

/// Writes `bytes` to `path` atomically (temp file in the same folder, fsync, rename, fsync of
/// the folder). The file is 0600. The folder is created (0700) when missing.
///
/// # Errors
/// When any step fails; the target is then unchanged.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StateError> {
    let dir = parent(path);
    ensure_dir(dir)?;
    let err = |source: io::Error| StateError::Write { path: path.to_owned(), source };
    // tempfile creates the file 0600 on unix; set it explicitly anyway so the guarantee does not
    // hang on a dependency's default.
    let mut tmp = tempfile::Builder::new().prefix(".tmp-").tempfile_in(dir).map_err(err)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file().set_permissions(fs::Permissions::from_mode(0o600)).map_err(err)?;
    }
    tmp.write_all(bytes).map_err(err)?;
    tmp.as_file().sync_all().map_err(err)?;
    tmp.persist(path).map_err(|e| err(e.error))?;
    sync_dir(dir).map_err(err)
}

/// Serialises `value` as pretty JSON (with a final newline) and writes it atomically.
///
/// # Errors
/// When writing fails.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), StateError> {
    let mut bytes = serde_json::to_vec_pretty(value)
        .map_err(|e| StateError::Write { path: path.to_owned(), source: io::Error::other(e) })?;
    bytes.push(b'\n');
    write_atomic(path, &bytes)
}

/// Reads a JSON state file: `Ok(None)` when it does not exist.
///
/// # Errors
/// `Read` when it cannot be read, `Corrupt` when it does not parse.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<Option<T>, StateError> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(StateError::Read { path: path.to_owned(), source }),
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| StateError::Corrupt { path: path.to_owned(), message: e.to_string() })
}

/// Removes a file and fsyncs its folder; a file already gone is fine.
///
/// # Errors
/// When the removal fails for another reason.
pub fn remove_file(path: &Path) -> Result<(), StateError> {
    match fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(source) => return Err(StateError::Write { path: path.to_owned(), source }),
    }
    sync_dir(parent(path)).map_err(|source| StateError::Write { path: path.to_owned(), source })
}

/// A state value loaded at start-up or each cycle, with what went wrong if anything did.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded<T> {
    /// The value; the default (empty state) when the file was missing, unreadable or corrupt.
    pub value: T,
    /// A sentence for the report and the log when the file could not be used.
    pub problem: Option<String>,
}

/// Loads a state file, never failing: missing means empty; unreadable means empty plus a
/// problem; corrupt means it is moved aside to `<name>.corrupt-<ts>` (so it can be inspected,
/// and is not overwritten by the next save) and empty plus a problem.
pub fn load_or_default<T: DeserializeOwned + Default>(path: &Path, now: DateTime<Utc>) -> Loaded<T> {
    match read_json::<T>(path) {
        Ok(v) => Loaded { value: v.unwrap_or_default(), problem: None },
        Err(e @ StateError::Corrupt { .. }) => {
            let aside = quarantine(path, now);
            let problem = match aside {
                Ok(to) => format!("{e}; moved aside to `{}`, continuing with empty state", to.display()),
                Err(m) => format!("{e}; could not move it aside ({m}), continuing with empty state"),
            };
            Loaded { value: T::default(), problem: Some(problem) }
        }
        Err(e) => Loaded { value: T::default(), problem: Some(format!("{e}; continuing with empty state")) },
    }
}

/// Moves a corrupt file aside to `<name>.corrupt-<YYYYmmddTHHMMSSZ>` (plus `-N` if taken), so
/// it is kept for inspection and never read again; the new path.
///
/// # Errors
/// When the rename fails.
pub fn quarantine(path: &Path, now: DateTime<Utc>) -> Result<PathBuf, io::Error> {
    let name = path.file_name().map_or_else(|| "state".into(), |n| n.to_string_lossy().into_owned());
    let stamp = now.format("%Y%m%dT%H%M%SZ");
    let dir = parent(path);
    let mut to = dir.join(format!("{name}.corrupt-{stamp}"));
    let mut n = 1;
    while to.exists() {
        to = dir.join(format!("{name}.corrupt-{stamp}-{n}"));
        n += 1;
    }
    fs::rename(path, &to)?;
    sync_dir(dir)?;
    Ok(to)
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// fsync of a folder, so a rename or removal in it is durable.
fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use chrono::TimeZone;

    use super::*;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 20, 14, 30, 0).unwrap()
    }

    #[test]
    fn round_trip_and_missing_is_none() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/state.json");
        assert!(read_json::<BTreeMap<String, u32>>(&path).unwrap().is_none());
        let v: BTreeMap<String, u32> = [("a".to_owned(), 1)].into();
        write_json(&path, &v).unwrap();
        assert_eq!(read_json::<BTreeMap<String, u32>>(&path).unwrap(), Some(v));
        // No temp files are left behind.
        let names: Vec<String> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, vec!["state.json".to_owned()]);
    }

    #[cfg(unix)]
    #[test]
    fn permissions_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let path = state.join("alerts.json");
        write_json(&path, &1).unwrap();
        assert_eq!(fs::metadata(&state).unwrap().permissions().mode() & 0o777, 0o700);
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }

    #[test]
    fn corrupt_file_is_moved_aside_and_state_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("alerts.json");
        fs::write(&path, b"{\"a\": 1,").unwrap();
        let loaded: Loaded<BTreeMap<String, u32>> = load_or_default(&path, now());
        assert!(loaded.value.is_empty());
        let problem = loaded.problem.unwrap();
        assert!(problem.contains("is corrupt"), "{problem}");
        assert!(problem.contains("alerts.json.corrupt-20261120T143000Z"), "{problem}");
        assert!(!path.exists());
        assert_eq!(fs::read(dir.path().join("alerts.json.corrupt-20261120T143000Z")).unwrap(), b"{\"a\": 1,");
        // A second corrupt file the same second does not overwrite the first.
        fs::write(&path, b"nope").unwrap();
        let again: Loaded<BTreeMap<String, u32>> = load_or_default(&path, now());
        assert!(again.problem.unwrap().contains("corrupt-20261120T143000Z-1"));
    }

    #[test]
    fn missing_file_is_empty_without_problem() {
        let dir = tempfile::tempdir().unwrap();
        let loaded: Loaded<Vec<u32>> = load_or_default(&dir.path().join("x.json"), now());
        assert_eq!(loaded, Loaded { value: vec![], problem: None });
    }

    #[test]
    fn remove_missing_is_ok() {
        let dir = tempfile::tempdir().unwrap();
        remove_file(&dir.path().join("gone.json")).unwrap();
    }
}
