//! Files in the state directory: the one place that knows how they are created and replaced.
//!
//! Every file tradewarden creates under `state_dir` is 0600 and every folder 0700
//! (`ensure_dir`, `open_append`, `open_lock`, `make_private`): they may hold account details.
//! `write_atomic` writes a temp file next to the target, fsyncs it, renames it over the target
//! and fsyncs the folder, so readers see the old content or the new, never a torn file, even
//! across a power loss. `load_or_default` is what the daemon uses at start-up and every cycle: a
//! missing file is empty state; a corrupt one is moved aside and reported, never a crash.
//!
//! A process killed between creating its temp file and the rename leaves the temp file behind
//! (valid state either way, but litter that grows with every crash). Temp files carry the
//! writer's pid (`.tmp-{pid}-…`), so `sweep_temp_files` can remove exactly those whose writer
//! is gone, and never one a live process (a concurrent CLI command) is still writing.

use std::fs::{self, File, OpenOptions};
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

/// Options that create a file 0600 (on Unix; elsewhere the platform's default). An existing
/// file keeps its mode: only creation is private by construction.
fn private_options() -> OpenOptions {
    let mut opts = OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts
}

/// Opens `path` for appending (and reading its tail), creating it 0600 when missing. Its
/// folder must exist (`ensure_dir`).
///
/// # Errors
/// When it cannot be opened.
pub fn open_append(path: &Path) -> io::Result<File> {
    private_options().create(true).append(true).read(true).open(path)
}

/// Opens `path` for reading and writing without truncating it, creating it 0600 when missing:
/// the file of an advisory lock. Its folder must exist (`ensure_dir`).
///
/// # Errors
/// When it cannot be opened.
pub fn open_lock(path: &Path) -> io::Result<File> {
    private_options().create(true).truncate(false).read(true).write(true).open(path)
}

/// Makes a file another library created (with the process umask) 0600.
///
/// # Errors
/// When its permissions cannot be changed.
pub fn make_private(path: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(0o600))
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        Ok(())
    }
}

/// How the temp files of `write_atomic` start: `.tmp-{pid}-`.
pub const TEMP_PREFIX: &str = ".tmp-";

/// Writes `bytes` to `path` atomically (temp file `.tmp-{pid}-…` in the same folder, fsync,
/// rename, fsync of the folder). The file is 0600. The folder is created (0700) when missing.
///
/// # Errors
/// When any step fails; the target is then unchanged.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StateError> {
    let dir = parent(path);
    ensure_dir(dir)?;
    let err = |source: io::Error| StateError::Write { path: path.to_owned(), source };
    // tempfile creates the file 0600 on unix; set it explicitly anyway so the guarantee does not
    // hang on a dependency's default.
    let prefix = format!("{TEMP_PREFIX}{}-", std::process::id());
    let mut tmp = tempfile::Builder::new().prefix(&prefix).tempfile_in(dir).map_err(err)?;
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

/// The pid in the name of a temp file tradewarden writes: `.tmp-{pid}-…` (`write_atomic`) or
/// `.{file}.tradewarden-{pid}-{id}.tmp` (`fix_state`, beside the bot's files).
#[must_use]
pub fn temp_file_owner(name: &str) -> Option<u32> {
    let rest = match name.strip_prefix(TEMP_PREFIX) {
        Some(r) => r,
        None if name.starts_with('.') && name.ends_with(".tmp") => name.split_once(".tradewarden-")?.1,
        None => return None,
    };
    let (pid, _) = rest.split_once('-')?;
    pid.parse().ok().filter(|p| *p > 0)
}

/// Removes from `dir` (not recursively) the temp files tradewarden processes that are no longer
/// running left behind: killed between writing a temp file and renaming it. A temp file whose
/// writer still runs (this process, a concurrent CLI command) is kept. Returns the files
/// removed; a folder that cannot be read is nothing to sweep.
pub fn sweep_temp_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else { return Vec::new() };
    let me = std::process::id();
    let mut removed = Vec::new();
    for e in entries.flatten() {
        let Some(pid) = temp_file_owner(&e.file_name().to_string_lossy()) else { continue };
        if pid == me || process_exists(pid) || !e.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        if fs::remove_file(e.path()).is_ok() {
            removed.push(e.path());
        }
    }
    removed
}

/// Whether a process with this pid exists (a zombie counts; a pid of another user's process
/// counts). Off Unix nothing is known, so everything is kept.
fn process_exists(pid: u32) -> bool {
    #[cfg(unix)]
    {
        let Some(p) = i32::try_from(pid).ok().and_then(rustix::process::Pid::from_raw) else { return true };
        !matches!(rustix::process::test_kill_process(p), Err(rustix::io::Errno::SRCH))
    }
    #[cfg(not(unix))]
    {
        let _ = pid;
        true
    }
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
    fn temp_file_owners() {
        assert_eq!(temp_file_owner(".tmp-4242-aB3xZq"), Some(4242));
        assert_eq!(temp_file_owner(".executor_state.json.tradewarden-77-0123abcd.tmp"), Some(77));
        for other in
            [".tmp-", ".tmp-x-1", ".tmp-0-a", "state.json", ".executor_state.json.tmp", "a.tradewarden-5-x.tmp"]
        {
            assert_eq!(temp_file_owner(other), None, "{other}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn the_sweep_removes_temp_files_of_dead_writers_only() {
        let dir = tempfile::tempdir().unwrap();
        // A process that has exited (and been reaped): its pid is free.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let parent_pid = std::os::unix::process::parent_id();
        let names = [
            format!(".tmp-{dead}-abc"),
            format!(".executor_state.json.tradewarden-{dead}-0123.tmp"),
            format!(".tmp-{}-mine", std::process::id()),
            format!(".tmp-{parent_pid}-alive"),
            "alerts.json".to_owned(),
            ".tmp-legacy".to_owned(),
        ];
        for n in &names {
            fs::write(dir.path().join(n), b"x").unwrap();
        }
        fs::create_dir(dir.path().join(format!(".tmp-{dead}-dir"))).unwrap();
        let mut removed: Vec<String> = sweep_temp_files(dir.path())
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        removed.sort();
        let mut want = vec![names[1].clone(), names[0].clone()];
        want.sort();
        assert_eq!(removed, want);
        for n in &names[2..] {
            assert!(dir.path().join(n).exists(), "{n} is kept");
        }
        assert!(sweep_temp_files(&dir.path().join("missing")).is_empty());
        // write_atomic names its temp files after this process.
        let path = dir.path().join("x.json");
        write_atomic(&path, b"1").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"1");
    }

    /// Replacing an existing file goes through a temp file that is renamed over it: the
    /// content is the new one and no temp file is left beside it.
    #[test]
    fn an_atomic_replace_leaves_the_new_content_and_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("alerts.json");
        write_atomic(&path, b"old").unwrap();
        write_atomic(&path, b"new").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new");
        let names: Vec<String> =
            fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        assert_eq!(names, ["alerts.json"]);
        // A target that cannot be replaced (a folder stands there) is left as it was, and the
        // temp file is cleaned up.
        let blocked = dir.path().join("blocked");
        fs::create_dir(&blocked).unwrap();
        fs::write(blocked.join("inside"), b"x").unwrap();
        assert!(write_atomic(&blocked, b"new").is_err());
        assert!(blocked.join("inside").is_file());
        let names: Vec<String> =
            fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        assert!(!names.iter().any(|n| n.starts_with(TEMP_PREFIX)), "{names:?}");
    }

    #[cfg(unix)]
    #[test]
    fn files_are_created_0600_whatever_opens_them() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let appended = dir.path().join("audits.jsonl");
        drop(open_append(&appended).unwrap());
        let lock = dir.path().join("actions.lock");
        drop(open_lock(&lock).unwrap());
        let foreign = dir.path().join("x.eml");
        fs::write(&foreign, b"x").unwrap();
        fs::set_permissions(&foreign, fs::Permissions::from_mode(0o644)).unwrap();
        make_private(&foreign).unwrap();
        assert_eq!((mode(&appended), mode(&lock), mode(&foreign)), (0o600, 0o600, 0o600));
        // Opening a lock file again does not truncate it.
        fs::write(&lock, b"4242\n").unwrap();
        drop(open_lock(&lock).unwrap());
        assert_eq!(fs::read(&lock).unwrap(), b"4242\n");
    }

    #[test]
    fn remove_missing_is_ok() {
        let dir = tempfile::tempdir().unwrap();
        remove_file(&dir.path().join("gone.json")).unwrap();
    }
}
