//! `Hooks`: the test seams of the act pipeline.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// Test seams: a callback right before `fix_state` writes, and (debug builds only, from
/// `TRADEWARDEN_TEST_PAUSE_AFTER_WRITE_MS`) a pause between an action's writes and its
/// outcome record, so a test can kill the process there.
#[derive(Clone, Default)]
pub struct Hooks {
    pub(super) before_fix_write: Option<Arc<dyn Fn() + Send + Sync>>,
    pause_after_write: Option<Duration>,
}

impl fmt::Debug for Hooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hooks")
            .field("before_fix_write", &self.before_fix_write.is_some())
            .field("pause_after_write", &self.pause_after_write)
            .finish()
    }
}

impl Hooks {
    pub(super) fn from_env() -> Self {
        let mut h = Self::default();
        if cfg!(debug_assertions) {
            h.pause_after_write = std::env::var("TRADEWARDEN_TEST_PAUSE_AFTER_WRITE_MS")
                .ok()
                .and_then(|v| v.parse::<u64>().ok())
                .map(Duration::from_millis);
        }
        h
    }

    pub(crate) fn before_fix_write(&self) {
        if let Some(f) = &self.before_fix_write {
            f();
        }
    }

    pub(crate) async fn pause_after_write(&self) {
        if let Some(d) = self.pause_after_write {
            tracing::warn!(
                ms = d.as_millis(),
                "Test pause after an action's writes (TRADEWARDEN_TEST_PAUSE_AFTER_WRITE_MS)."
            );
            tokio::time::sleep(d).await;
        }
    }
}
