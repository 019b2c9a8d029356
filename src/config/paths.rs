//! Configured paths: resolved against the configuration's folder, or kept inside the bot root.

use std::path::{Path, PathBuf};

use super::reader::TableReader;

/// Resolves a configured path against the config's folder, folding `.` and `..` lexically so
/// messages show `/srv/rules/default.toml`, not `/srv/bot/../rules/default.toml`.
pub(super) fn resolve(dir: &Path, p: &str) -> PathBuf {
    let p = Path::new(p);
    let joined = if p.is_absolute() { p.to_owned() } else { dir.join(p) };
    let mut out = PathBuf::new();
    for c in joined.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    out
}

pub(super) fn relative_bot_path(r: &TableReader<'_, '_>, key: &str, p: &str) -> Option<PathBuf> {
    let path = PathBuf::from(p);
    if path.is_absolute() || path.components().any(|c| matches!(c, std::path::Component::ParentDir)) {
        r.problem_key(
            key,
            format!("`{key}` in {} must be a path inside [bot].root (relative, without `..`)", r.name()),
        );
        return None;
    }
    if p.is_empty() {
        r.problem_key(key, format!("`{key}` in {} cannot be empty", r.name()));
        return None;
    }
    Some(path)
}
