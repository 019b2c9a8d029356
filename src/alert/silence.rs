//! Silences: mute an alert's notifications and actions (never its report line) for a while.
//!
//! A silence matches on the rule id and, optionally, the exact subject and the finding code; it
//! is active from
//! `starts_at` (inclusive) to `ends_at` (exclusive). They live in `state_dir/silences.json`,
//! written by the `silence` commands while the daemon may be running, so every change goes
//! through `SilenceBook::update`, which holds `silences.lock` for the read-modify-write.
//! Expired silences are pruned on every update.

use std::io;
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::model::{Origin, RULE_READ_SOURCES};
use crate::state::{FileLock, Loaded, LockError, StateError, load_or_default, read_json, write_json};

/// One silence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Silence {
    /// Short random id (8 hex digits), for `silence rm`.
    pub id: String,
    /// The rule id it matches (`source` for source findings).
    pub rule: String,
    /// The exact subject it matches; `None` matches every subject of the rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The finding code it matches (`short_position`); `None` matches every code. An alert is
    /// matched only while every finding it carries has this code: when another code appears on
    /// the same rule and subject (`orphaned` becoming `side_mismatch`), that is news, not muted.
    /// (Absent from files written before codes could be silenced: those match every code.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Active from (inclusive).
    pub starts_at: DateTime<Utc>,
    /// Active until (exclusive).
    pub ends_at: DateTime<Utc>,
    /// Why, in the operator's words.
    pub reason: String,
    /// Who created it (`silence add --by`, else the login name of the process), if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
}

impl Silence {
    /// The longest a silence lasts: 30 days. `silence add` refuses longer, and a longer one
    /// written into the file by hand ends 30 days after it started.
    pub const MAX_LENGTH: Duration = Duration::from_secs(30 * 24 * 3600);

    /// Whether it matches an alert's rule, subject and finding codes (regardless of time).
    /// `codes` are those of the alert's findings as last seen; a silence with a code matches
    /// only when there is at least one and every one is that code. An alert whose subject is
    /// one of the reads every rule needs ([`RULE_READ_SOURCES`]: a source finding or a rule's
    /// `rule_unknown` for it) is never matched: a silence must not hide a blind watchdog,
    /// whatever `silences.json` says.
    #[must_use]
    pub fn matches<'a>(&self, rule: &str, subject: &str, codes: impl IntoIterator<Item = &'a str>) -> bool {
        self.rule == rule
            && self.subject.as_deref().is_none_or(|s| s == subject)
            && !RULE_READ_SOURCES.contains(&subject)
            && self.code.as_deref().is_none_or(|want| {
                let mut codes = codes.into_iter().peekable();
                codes.peek().is_some() && codes.all(|c| c == want)
            })
    }

    /// When it really ends: `ends_at`, at most [`MAX_LENGTH`](Self::MAX_LENGTH) after it started.
    #[must_use]
    pub fn effective_end(&self) -> DateTime<Utc> {
        let cap = chrono::Duration::from_std(Self::MAX_LENGTH)
            .ok()
            .and_then(|d| self.starts_at.checked_add_signed(d))
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        self.ends_at.min(cap)
    }

    /// Whether it is in force at `now`.
    #[must_use]
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        self.starts_at <= now && now < self.effective_end()
    }

    /// Whether it has ended at `now`.
    #[must_use]
    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.effective_end() <= now
    }
}

/// What `silence add` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSilence {
    /// Rule id.
    pub rule: String,
    /// Exact subject, or every subject.
    pub subject: Option<String>,
    /// Exact finding code, or every code.
    pub code: Option<String>,
    /// How long from now.
    pub duration: Duration,
    /// Why.
    pub reason: String,
    /// Who.
    pub created_by: Option<String>,
}

impl NewSilence {
    /// Why `silence add` must refuse it, if it must: longer than
    /// [`Silence::MAX_LENGTH`], or a silence of `source` findings that could hide blindness
    /// (every source, or one of [`RULE_READ_SOURCES`]).
    #[must_use]
    pub fn refusal(&self) -> Option<String> {
        if self.duration > Silence::MAX_LENGTH {
            return Some(format!(
                "a silence lasts at most {} (asked: {}); add a new one when it ends, or fix the rule",
                crate::config::duration::format(Silence::MAX_LENGTH),
                crate::config::duration::format(self.duration)
            ));
        }
        if self.rule == Origin::Source.id() {
            match self.subject.as_deref() {
                None => {
                    return Some(
                        "a silence of `source` needs --subject naming one source (a log, a bot file, \
                         `broker:clock`...): all of them would hide a blind watchdog"
                            .to_owned(),
                    );
                }
                Some(s) if RULE_READ_SOURCES.contains(&s) => {
                    return Some(format!(
                        "`{s}` cannot be silenced: while it fails the watchdog is blind (every rule needs it)"
                    ));
                }
                Some(_) => {}
            }
        }
        None
    }
}

/// Every silence, persisted as `state_dir/silences.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SilenceBook {
    /// File format version.
    pub version: u32,
    /// In creation order.
    #[serde(default)]
    pub silences: Vec<Silence>,
}

impl Default for SilenceBook {
    fn default() -> Self {
        Self { version: 1, silences: Vec::new() }
    }
}

impl SilenceBook {
    /// The file name inside the state directory.
    pub const FILE: &'static str = "silences.json";
    /// The lock file serialising updates.
    pub const LOCK_FILE: &'static str = "silences.lock";

    /// Loads `state_dir/silences.json` for reading (the daemon, each cycle). Never fails: a
    /// corrupt file is moved aside and reported in `problem`.
    #[must_use]
    pub fn load(state_dir: &Path, now: DateTime<Utc>) -> Loaded<Self> {
        load_or_default(&state_dir.join(Self::FILE), now)
    }

    /// Read-modify-write under `silences.lock`: loads the book (empty if missing; a corrupt file
    /// is moved aside and reported as the second value), prunes expired silences, applies `f`,
    /// and saves atomically.
    ///
    /// # Errors
    /// When the lock or the file cannot be used.
    pub fn update<R>(
        state_dir: &Path,
        now: DateTime<Utc>,
        f: impl FnOnce(&mut Self) -> R,
    ) -> Result<(R, Option<String>), StateError> {
        let lock = FileLock::acquire(&state_dir.join(Self::LOCK_FILE)).map_err(|e| match e {
            LockError::State(e) => e,
            LockError::Io { path, source } => StateError::Write { path, source },
            // `acquire` waits instead; kept as a write error should that ever change.
            LockError::Held { dir, .. } => StateError::Write {
                path: dir.join(Self::LOCK_FILE),
                source: io::Error::from(io::ErrorKind::WouldBlock),
            },
        })?;
        let path = state_dir.join(Self::FILE);
        // A file that cannot be read (not a corrupt one) must not be overwritten with an empty book.
        if let Err(e @ StateError::Read { .. }) = read_json::<Self>(&path) {
            return Err(e);
        }
        let Loaded { value: mut book, problem } = load_or_default::<Self>(&path, now);
        book.prune(now);
        let out = f(&mut book);
        write_json(&path, &book)?;
        drop(lock);
        Ok((out, problem))
    }

    /// Adds a silence starting `now`, with a fresh id.
    pub fn add(&mut self, new: NewSilence, now: DateTime<Utc>) -> Silence {
        let id = loop {
            let id = format!("{:08x}", fastrand::u32(..));
            if !self.silences.iter().any(|s| s.id == id) {
                break id;
            }
        };
        // A duration past the end of time (`--duration 1000000y`) silences until then, no panic.
        let ends_at = chrono::Duration::from_std(new.duration)
            .ok()
            .and_then(|d| now.checked_add_signed(d))
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        let s = Silence {
            id,
            rule: new.rule,
            subject: new.subject,
            code: new.code,
            starts_at: now,
            ends_at,
            reason: new.reason,
            created_by: new.created_by,
        };
        self.silences.push(s.clone());
        s
    }

    /// Removes a silence by id.
    pub fn remove(&mut self, id: &str) -> Option<Silence> {
        let i = self.silences.iter().position(|s| s.id == id)?;
        Some(self.silences.remove(i))
    }

    /// Drops expired silences; the ones dropped.
    pub fn prune(&mut self, now: DateTime<Utc>) -> Vec<Silence> {
        let (expired, keep): (Vec<Silence>, Vec<Silence>) =
            std::mem::take(&mut self.silences).into_iter().partition(|s| s.is_expired(now));
        self.silences = keep;
        expired
    }

    /// The silences in force at `now`.
    #[must_use]
    pub fn active(&self, now: DateTime<Utc>) -> Vec<Silence> {
        self.silences.iter().filter(|s| s.is_active(now)).cloned().collect()
    }

    /// The first silence in force at `now` matching a rule, subject and the alert's codes.
    #[must_use]
    pub fn matching(&self, rule: &str, subject: &str, codes: &[&str], now: DateTime<Utc>) -> Option<&Silence> {
        self.silences.iter().find(|s| s.is_active(now) && s.matches(rule, subject, codes.iter().copied()))
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn t(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 20, h, m, 0).unwrap()
    }

    fn new(rule: &str, subject: Option<&str>, mins: u64) -> NewSilence {
        NewSilence {
            rule: rule.into(),
            subject: subject.map(Into::into),
            code: None,
            duration: Duration::from_secs(mins * 60),
            reason: "investigating".into(),
            created_by: Some("ops".into()),
        }
    }

    #[test]
    fn matcher_rule_and_optional_subject() {
        let mut b = SilenceBook::default();
        let all = b.add(new("no-shorts", None, 60), t(14, 0));
        let one = b.add(new("positions-match", Some("CHWY"), 60), t(14, 0));
        assert!(
            all.matches("no-shorts", "CHWY", ["short_position"])
                && all.matches("no-shorts", "BILL", ["short_position"])
        );
        assert!(!all.matches("positions-match", "CHWY", ["orphaned"]));
        assert!(one.matches("positions-match", "CHWY", ["orphaned"]));
        assert!(!one.matches("positions-match", "BILL", ["orphaned"]));
        assert_ne!(all.id, one.id);
        assert_eq!(all.id.len(), 8);
    }

    /// Issue 17: `--code` narrows a silence to one finding code. It matches an alert only while
    /// every finding of it has that code: a second code on the same rule and subject is news.
    #[test]
    fn a_code_silence_matches_only_alerts_all_of_whose_findings_have_that_code() {
        let mut b = SilenceBook::default();
        let mut n = new("positions-match", Some("CHWY"), 60);
        n.code = Some("orphaned".into());
        let s = b.add(n, t(14, 0));
        assert!(s.matches("positions-match", "CHWY", ["orphaned"]));
        assert!(s.matches("positions-match", "CHWY", ["orphaned", "orphaned"]));
        assert!(!s.matches("positions-match", "CHWY", ["side_mismatch"]), "another code");
        assert!(!s.matches("positions-match", "CHWY", ["orphaned", "side_mismatch"]), "a new code joined it");
        assert!(!s.matches("positions-match", "CHWY", []), "no code seen: nothing to match");
        assert!(!s.matches("positions-match", "BILL", ["orphaned"]), "the subject still counts");
        assert!(!s.matches("no-shorts", "CHWY", ["orphaned"]), "and the rule");
        let mut any = new("positions-match", None, 60);
        any.code = Some("orphaned".into());
        let any = b.add(any, t(14, 0));
        assert!(any.matches("positions-match", "BILL", ["orphaned"]));
        assert!(!any.matches("positions-match", "broker:positions", ["orphaned"]), "never a rule read");
        assert_eq!(b.matching("positions-match", "CHWY", &["side_mismatch"], t(14, 1)), None);
        assert_eq!(b.matching("positions-match", "CHWY", &["orphaned"], t(14, 1)).map(|m| &m.id), Some(&s.id));
        // Without a code, every code matches (as before codes could be silenced).
        let plain = b.add(new("no-shorts", None, 60), t(14, 0));
        assert!(plain.matches("no-shorts", "CHWY", ["short_position", "rule_unknown"]));
    }

    /// A `silences.json` written before `code` existed still loads: its silences match every
    /// code, and they keep their author.
    #[test]
    fn a_file_without_codes_still_loads() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(SilenceBook::FILE),
            r#"{"version": 1, "silences": [{"id": "0a1b2c3d", "rule": "no-shorts", "subject": "CHWY",
                "starts_at": "2026-11-20T14:00:00Z", "ends_at": "2026-11-20T16:00:00Z",
                "reason": "by hand", "created_by": "ops"}]}"#,
        )
        .unwrap();
        let loaded = SilenceBook::load(dir.path(), t(14, 30));
        assert_eq!(loaded.problem, None);
        let s = &loaded.value.silences[0];
        assert_eq!((s.code.as_deref(), s.created_by.as_deref()), (None, Some("ops")));
        assert!(s.matches("no-shorts", "CHWY", ["short_position"]));
        // And a silence with a code round-trips.
        let (with, _) = SilenceBook::update(dir.path(), t(14, 30), |b| {
            let mut n = new("no-shorts", None, 10);
            n.code = Some("short_position".into());
            b.add(n, t(14, 30))
        })
        .unwrap();
        assert_eq!(SilenceBook::load(dir.path(), t(14, 30)).value.silences[1], with);
    }

    #[test]
    fn active_window_is_half_open_and_prune_drops_expired() {
        let mut b = SilenceBook::default();
        let s = b.add(new("no-shorts", None, 60), t(14, 0));
        assert!(s.is_active(t(14, 0)) && s.is_active(t(14, 59)));
        assert!(!s.is_active(t(15, 0)) && s.is_expired(t(15, 0)));
        assert!(!s.is_active(t(13, 59)));
        assert!(b.matching("no-shorts", "X", &["short_position"], t(14, 30)).is_some());
        assert!(b.prune(t(14, 59)).is_empty());
        assert_eq!(b.prune(t(15, 0)), vec![s]);
        assert!(b.silences.is_empty());
    }

    /// Review (issue 12): `silence add --rule source` muted every source finding, so blindness,
    /// and a silence could last for ever. Now: at most 30 days (a longer one in the file ends
    /// then), `source` needs a subject that is not a rule read, and no silence in the file
    /// matches an alert about a rule read, whatever it says.
    #[test]
    fn no_silence_hides_blindness_or_lasts_more_than_thirty_days() {
        let refused = |rule: &str, subject: Option<&str>, mins: u64| new(rule, subject, mins).refusal();
        assert!(refused("no-shorts", None, 30 * 24 * 60).is_none());
        assert!(refused("no-shorts", None, 30 * 24 * 60 + 1).unwrap().contains("at most 30days"));
        assert!(refused("source", None, 60).unwrap().contains("needs --subject"));
        for s in RULE_READ_SOURCES {
            assert!(refused("source", Some(s), 60).unwrap().contains("blind"), "{s}");
        }
        assert!(refused("source", Some("log:run"), 60).is_none());
        assert!(refused("source", Some("broker:clock"), 60).is_none());

        // Written into the file by hand: matched by nothing blind, and over after 30 days.
        let mut b = SilenceBook::default();
        let mut forever = new("source", None, 0);
        forever.duration = Duration::MAX;
        let s = b.add(forever, t(14, 0));
        assert!(s.matches("source", "log:run", ["source_failed"]));
        assert!(
            !s.matches("source", "broker:positions", ["source_failed"])
                && !s.matches("source", "broker:account", ["source_failed"])
        );
        let rule = b.add(new("no-shorts", None, 60), t(14, 0));
        assert!(
            !rule.matches("no-shorts", "broker:orders", ["rule_unknown"]),
            "a rule's rule_unknown for a rule read stays loud"
        );
        assert!(s.is_active(t(14, 0) + chrono::Duration::days(29)));
        assert!(
            !s.is_active(t(14, 0) + chrono::Duration::days(30)) && s.is_expired(t(14, 0) + chrono::Duration::days(30))
        );
    }

    #[test]
    fn a_duration_past_the_end_of_time_silences_until_then_and_persists() {
        let dir = tempfile::tempdir().unwrap();
        let (s, _) = SilenceBook::update(dir.path(), t(14, 0), |b| {
            let mut forever = new("no-shorts", None, 0);
            forever.duration = Duration::MAX;
            b.add(forever, t(14, 0))
        })
        .unwrap();
        assert_eq!(s.ends_at, DateTime::<Utc>::MAX_UTC);
        let book = SilenceBook::load(dir.path(), t(14, 0));
        assert_eq!((book.value.silences, book.problem), (vec![s], None), "it round-trips through the state file");
    }

    #[test]
    fn update_persists_prunes_and_removes() {
        let dir = tempfile::tempdir().unwrap();
        let ((), _) = SilenceBook::update(dir.path(), t(14, 0), |b| {
            b.add(new("a", None, 10), t(14, 0));
        })
        .unwrap();
        let (id, _) = SilenceBook::update(dir.path(), t(14, 0), |b| b.add(new("b", None, 120), t(14, 0)).id).unwrap();
        assert_eq!(SilenceBook::load(dir.path(), t(14, 0)).value.silences.len(), 2);
        // Twenty minutes later, "a" has expired and is pruned by the next update.
        let (removed, _) = SilenceBook::update(dir.path(), t(14, 20), |b| b.remove("nope")).unwrap();
        assert!(removed.is_none());
        let book = SilenceBook::load(dir.path(), t(14, 20)).value;
        assert_eq!(book.silences.iter().map(|s| s.rule.as_str()).collect::<Vec<_>>(), ["b"]);
        let (removed, _) = SilenceBook::update(dir.path(), t(14, 20), |b| b.remove(&id)).unwrap();
        assert_eq!(removed.unwrap().rule, "b");
        assert!(SilenceBook::load(dir.path(), t(14, 20)).value.silences.is_empty());
    }

    #[test]
    fn corrupt_file_is_reported_and_replaced() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(SilenceBook::FILE), "[not json").unwrap();
        let (_, problem) = SilenceBook::update(dir.path(), t(14, 0), |b| b.add(new("a", None, 10), t(14, 0))).unwrap();
        assert!(problem.unwrap().contains("moved aside"));
        assert_eq!(SilenceBook::load(dir.path(), t(14, 0)).value.silences.len(), 1);
    }
}
