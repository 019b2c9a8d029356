//! The file I/O of a fix: reading the bot's files inside its root with their stamps,
//! checking them unchanged before each step, backing them up, and replacing them atomically
//! with their owner, group and mode kept.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};

use super::busy::check_quiet;
use super::fix_plan::{FileFix, FixPlan, ReadFile, Stamp, sha256_hex};
use crate::collect::bot::state::MAX_STATE_BYTES;

impl Stamp {
    /// The stamp of `bytes` read from a file with `meta`.
    pub(super) fn of(bytes: &[u8], meta: &std::fs::Metadata, modified: SystemTime) -> Self {
        use std::os::unix::fs::MetadataExt;
        Self {
            len: bytes.len() as u64,
            modified,
            sha256: sha256_hex(bytes),
            file_id: (meta.dev(), meta.ino()),
            uid: meta.uid(),
            gid: meta.gid(),
            mode: meta.mode() & 0o7777,
        }
    }
}

/// A bot file opened inside `root` (never through a symlink out of it, never a FIFO), with
/// its metadata and at most `MAX_STATE_BYTES + 1` of its bytes, and its resolved path.
pub(crate) fn read_in_root(root: &Path, path: &Path) -> Result<(Vec<u8>, std::fs::Metadata, PathBuf), String> {
    use std::io::Read;
    let (file, _, real) = crate::collect::bot::file::open_in_root_resolved(root, path)?;
    let shown = path.display();
    let meta = file.metadata().map_err(|e| format!("cannot stat {shown}: {e}"))?;
    let mut bytes = Vec::new();
    (&file).take(MAX_STATE_BYTES + 1).read_to_end(&mut bytes).map_err(|e| format!("cannot read {shown}: {e}"))?;
    Ok((bytes, meta, real))
}

/// Reads a bot file with its stamp: inside `root`, a regular file, at most `MAX_STATE_BYTES`,
/// UTF-8. Returns the file's resolved path (what a fix replaces), its text and its stamp.
///
/// # Errors
/// A sentence naming the file.
pub fn read_stamped(root: &Path, path: &Path) -> Result<(PathBuf, String, Stamp), String> {
    let shown = path.display();
    let (bytes, meta, real) = read_in_root(root, path)?;
    if bytes.len() as u64 > MAX_STATE_BYTES {
        return Err(format!("{shown} is over the {} MiB limit", MAX_STATE_BYTES >> 20));
    }
    let modified = meta.modified().map_err(|e| format!("cannot stat {shown}: {e}"))?;
    let stamp = Stamp::of(&bytes, &meta, modified);
    let text = String::from_utf8(bytes).map_err(|_| format!("{shown} is not UTF-8 text"))?;
    Ok((real, text, stamp))
}

/// Reads the bot file `rel` (relative to `root`) for the planner.
///
/// # Errors
/// As [`read_stamped`].
pub fn read_file(root: &Path, rel: &Path) -> Result<ReadFile, String> {
    let (path, text, stamp) = read_stamped(root, &root.join(rel))?;
    Ok(ReadFile { rel: rel.display().to_string(), path, text, stamp })
}

/// Refused unless the file is exactly as read, and still inside the bot root: same size,
/// modification time and content.
///
/// # Errors
/// Which of them changed.
pub fn check_unchanged(f: &FileFix) -> Result<(), String> {
    let shown = f.path.display();
    let (bytes, meta, real) =
        read_in_root(&f.root, &f.path).map_err(|e| format!("{shown} changed since it was read: {e}"))?;
    if real != f.path {
        return Err(format!("{shown} changed since it was read (it now leads to {})", real.display()));
    }
    if meta.len() != f.stamp.len {
        return Err(format!("{shown} changed since it was read (size {} → {})", f.stamp.len, meta.len()));
    }
    if meta.modified().ok() != Some(f.stamp.modified) {
        return Err(format!("{shown} changed since it was read (modification time)"));
    }
    if sha256_hex(&bytes) != f.stamp.sha256 {
        return Err(format!("{shown} changed since it was read (content)"));
    }
    // The replacement is given the owner, group and mode as read: they must still be the file's.
    let now = Stamp::of(&bytes, &meta, f.stamp.modified);
    if now.file_id != f.stamp.file_id {
        return Err(format!("{shown} changed since it was read (another file now has its name)"));
    }
    if (now.uid, now.gid, now.mode) != (f.stamp.uid, f.stamp.gid, f.stamp.mode) {
        return Err(format!(
            "{shown} changed since it was read (owner {}:{} mode {:04o} → {}:{} mode {:04o})",
            f.stamp.uid, f.stamp.gid, f.stamp.mode, now.uid, now.gid, now.mode
        ));
    }
    Ok(())
}

/// Where a file's backup goes: `backups/<name>.<timestamp>` (a counter when taken).
fn backup_path(dir: &Path, f: &FileFix, now: DateTime<Utc>) -> PathBuf {
    let name = f.path.file_name().map_or_else(|| "file".into(), |n| n.to_string_lossy().into_owned());
    let stamp = now.format("%Y%m%dT%H%M%S%.3fZ");
    let mut p = dir.join(format!("{name}.{stamp}"));
    let mut n = 1;
    while p.exists() {
        p = dir.join(format!("{name}.{stamp}.{n}"));
        n += 1;
    }
    p
}

/// What writing did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Written {
    /// Every file replaced; the log (backups, writes).
    Done(Vec<String>),
    /// Nothing written, and why (a file changed, or is being written).
    Refused(String),
    /// Something failed; what was done before it is in the message.
    Failed(String),
}

/// Checks, backs up and atomically replaces every file. `before_write` runs after the first
/// checks and before anything is written (tests change a file there).
pub fn write(
    plan: &FixPlan,
    backups: &Path,
    quiet_for: Duration,
    now: DateTime<Utc>,
    before_write: &dyn Fn(),
) -> Written {
    // One file, one write: a second replacement of the same file (by name, link or inode)
    // would be computed from the text as read and undo the first. `plan` merges such edits;
    // this holds the line for any plan built otherwise.
    for (i, f) in plan.files.iter().enumerate() {
        if let Some(g) = plan.files[..i].iter().find(|g| g.path == f.path || g.stamp.file_id == f.stamp.file_id) {
            return Written::Refused(format!(
                "{} and {} are the same file: planned as two writes, the second would undo the first",
                g.rel, f.rel
            ));
        }
    }
    for f in &plan.files {
        if let Err(e) = check_unchanged(f).and_then(|()| check_quiet(f, quiet_for, SystemTime::now())) {
            return Written::Refused(e);
        }
    }
    before_write();
    let mut log = Vec::new();
    if let Err(e) = crate::state::ensure_dir(backups) {
        return Written::Failed(format!("cannot create the backup folder: {e}"));
    }
    for f in &plan.files {
        // Checked again: a change after the first check must not be backed up as "the
        // original" and then overwritten.
        if let Err(e) = check_unchanged(f) {
            return Written::Refused(e);
        }
        let b = backup_path(backups, f, now);
        if let Err(e) = crate::state::write_atomic(&b, f.before.as_bytes()) {
            return Written::Failed(format!("cannot back up {}: {e}; nothing written", f.path.display()));
        }
        log.push(format!("backed up {} to {}", f.rel, b.display()));
    }
    let mut temps = Vec::new();
    for f in &plan.files {
        match write_temp(f) {
            Ok(t) => temps.push(t),
            Err(e) => {
                for t in &temps {
                    let _ = std::fs::remove_file(t);
                }
                return Written::Failed(format!("{e}; nothing replaced"));
            }
        }
    }
    for f in &plan.files {
        if let Err(e) = check_unchanged(f) {
            for t in &temps {
                let _ = std::fs::remove_file(t);
            }
            return Written::Refused(e);
        }
    }
    for (f, t) in plan.files.iter().zip(&temps) {
        if let Err(e) = std::fs::rename(t, &f.path) {
            for t in &temps {
                let _ = std::fs::remove_file(t);
            }
            let done = if log.len() > plan.files.len() {
                format!(" (already replaced: {})", log[plan.files.len()..].join("; "))
            } else {
                String::new()
            };
            return Written::Failed(format!("cannot replace {}: {e}{done}", f.path.display()));
        }
        if let Some(dir) = f.path.parent()
            && let Ok(d) = std::fs::File::open(dir)
        {
            let _ = d.sync_all();
        }
        log.push(format!("replaced {} ({} → {} bytes)", f.rel, f.before.len(), f.after.len()));
    }
    Written::Done(log)
}

/// Writes the new text to a temp file next to the original, with the original's owner, group
/// and mode (as read), ready to be renamed over it. The bot runs as its own user: a replacement
/// owned by tradewarden's user (root, often) or with another mode could leave the bot unable
/// to read its own state, or open it to others. On any error the temp file is removed.
fn write_temp(f: &FileFix) -> Result<PathBuf, String> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let dir = f.path.parent().unwrap_or_else(|| Path::new("."));
    let name = f.path.file_name().map_or_else(|| "file".into(), |n| n.to_string_lossy().into_owned());
    // The pid lets a later start remove it if this process dies before the rename
    // (`state::sweep_temp_files`).
    let tmp = dir.join(format!(".{name}.tradewarden-{}-{}.tmp", std::process::id(), uuid::Uuid::new_v4().simple()));
    let shown = f.path.display();
    // Created 0600: until it has the original's owner and mode, only tradewarden may read it.
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| format!("cannot write next to {shown}: {e}"))?;
    let s = &f.stamp;
    let written = file
        .write_all(f.after.as_bytes())
        .map_err(|e| format!("cannot write next to {shown}: {e}"))
        // Owner and group first: changing them clears set-id bits, so the mode goes on after.
        .and_then(|()| {
            std::os::unix::fs::fchown(&file, Some(s.uid), Some(s.gid)).map_err(|e| {
                format!(
                    "cannot give the new {shown} its owner {}:{} back ({e}): tradewarden must run as root or as \
                     the bot's user",
                    s.uid, s.gid
                )
            })
        })
        .and_then(|()| {
            file.set_permissions(std::fs::Permissions::from_mode(s.mode))
                .map_err(|e| format!("cannot give the new {shown} its mode {:04o} back: {e}", s.mode))
        })
        .and_then(|()| file.sync_all().map_err(|e| format!("cannot write next to {shown}: {e}")));
    match written {
        Ok(()) => Ok(tmp),
        Err(e) => {
            drop(file);
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// Confirms every file holds exactly what was written.
///
/// # Errors
/// Which file does not.
pub fn confirm(plan: &FixPlan) -> Result<(), String> {
    for f in &plan.files {
        let (bytes, _, _) = read_in_root(&f.root, &f.path).map_err(|e| format!("cannot re-read: {e}"))?;
        if bytes != f.after.as_bytes() {
            return Err(format!("{} does not hold what was written (changed right after?)", f.path.display()));
        }
    }
    Ok(())
}
