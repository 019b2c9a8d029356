//! The watchdog's own data under `state_dir`: atomic JSON files (`file`), JSON-lines files
//! (`jsonl`), and advisory locks (`file_lock`, `state_lock`).
//!
//! Invariants (design.md principle 5, "nothing is lost"):
//! - every state file is written atomically (temp file in the same folder, fsync, rename,
//!   fsync of the folder), so a crash at any point leaves either the old or the new file;
//! - files are created 0600 and the state directory 0700: they may hold account details;
//! - a corrupt file is never fatal: it is moved aside to `<name>.corrupt-<ts>`, reported, and the
//!   watchdog continues with empty state.

pub mod file;
mod file_lock;
pub mod jsonl;
mod state_lock;

pub use file::{
    Loaded, StateError, TEMP_PREFIX, ensure_dir, load_or_default, make_private, quarantine, read_json, remove_file,
    sweep_temp_files, temp_file_owner, write_atomic, write_json,
};
pub use file_lock::{FileLock, LockError};
pub use state_lock::{LOCK_FILE, StateLock};
