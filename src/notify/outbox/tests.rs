//! Outbox tests: queueing, delivery with retries and backoff, crash leftovers, against a scripted transport.

use std::collections::VecDeque;
use std::sync::Mutex;

use chrono::TimeZone;

use super::*;
use crate::notify::channel::{Delivery, EMAIL, delivery};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 20, 14, 30, 0).unwrap()
}

fn secs(s: i64) -> chrono::Duration {
    chrono::Duration::seconds(s)
}

fn rendered(subject: &str) -> Rendered {
    Rendered { subject: subject.into(), text: "text".into(), html: "<p>html</p>".into() }
}

/// An in-memory channel: records what it accepted; fails while `script` has errors queued
/// (or always, when `down`). Named `email` unless `named` says otherwise.
#[derive(Default)]
struct Memory {
    name: Option<&'static str>,
    accepted: Mutex<Vec<OutboxMessage>>,
    tried: Mutex<Vec<String>>,
    script: Mutex<VecDeque<SendError>>,
    down: Mutex<bool>,
}

impl Memory {
    fn named(name: &'static str) -> Self {
        Self { name: Some(name), ..Self::default() }
    }

    fn accepted_subjects(&self) -> Vec<String> {
        self.accepted.lock().unwrap().iter().map(|m| m.subject.clone()).collect()
    }

    async fn send(&self, message: &OutboxMessage) -> Result<String, SendError> {
        self.tried.lock().unwrap().push(message.message_id.clone());
        if *self.down.lock().unwrap() {
            return Err(SendError::connection("connection refused"));
        }
        if let Some(e) = self.script.lock().unwrap().pop_front() {
            return Err(e);
        }
        self.accepted.lock().unwrap().push(message.clone());
        Ok("250 OK".into())
    }
}

impl Channel for Memory {
    fn name(&self) -> &str {
        self.name.unwrap_or(EMAIL)
    }

    fn describe(&self) -> String {
        "memory".into()
    }

    fn secret_env(&self) -> Vec<String> {
        vec![format!("{}_TOKEN", self.name().to_uppercase())]
    }

    fn render(&self, notice: &Rendered) -> Content {
        let mut c = Content::new();
        c.insert("body".into(), notice.text.clone().into());
        c
    }

    fn deliver<'a>(&'a self, message: &'a OutboxMessage) -> Delivery<'a> {
        delivery(self.send(message))
    }
}

fn outbox(dir: &Path) -> Outbox {
    Outbox::new(dir).with_policy(RetryPolicy { jitter: 0.0, ..RetryPolicy::default() })
}

#[tokio::test]
async fn a_message_is_on_disk_before_sending_and_removed_after() {
    let dir = tempfile::tempdir().unwrap();
    let ob = outbox(dir.path());
    let m = ob.enqueue(&rendered("hello"), "tw@localhost", &["ops@localhost".into()], t0()).unwrap();
    assert!(ob.path_of(&m.id).is_file());
    assert!(m.message_id.starts_with('<') && m.message_id.ends_with("@tradewarden>"), "{}", m.message_id);
    assert_eq!(ob.list(t0()).messages, vec![m.clone()]);

    let mem = Memory::default();
    let r = ob.flush(&mem, t0()).await;
    assert_eq!(r.delivered.len(), 1);
    assert_eq!(r.delivered[0].message_id, m.message_id);
    assert_eq!((r.failed.len(), r.deferred, r.queued), (0, 0, 0));
    assert!(!ob.path_of(&m.id).exists());
    assert_eq!(mem.accepted_subjects(), ["hello"]);
    // A second flush sends nothing again.
    assert_eq!(ob.flush(&mem, t0()).await, FlushReport::default());
    assert_eq!(mem.accepted.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_down_transport_backs_off_exponentially_and_keeps_the_message_id() {
    let dir = tempfile::tempdir().unwrap();
    let ob = outbox(dir.path());
    let m = ob.enqueue(&rendered("one"), "tw@localhost", &["ops@localhost".into()], t0()).unwrap();
    let mem = Memory::default();
    *mem.down.lock().unwrap() = true;

    let mut now = t0();
    let mut delays = Vec::new();
    for _ in 0..8 {
        let r = ob.flush(&mem, now).await;
        assert_eq!(r.failed.len(), 1);
        assert_eq!(r.queued, 1);
        let next = r.failed[0].next_attempt_at;
        delays.push((next - now).num_seconds());
        // Not due yet: nothing is tried.
        let tried = mem.tried.lock().unwrap().len();
        let r = ob.flush(&mem, next - secs(1)).await;
        assert!(r.failed.is_empty() && r.delivered.is_empty());
        assert_eq!(mem.tried.lock().unwrap().len(), tried);
        now = next;
    }
    assert_eq!(delays, [30, 60, 120, 240, 480, 960, 1800, 1800]);
    let stored = ob.list(now).messages.remove(0);
    assert_eq!(stored.attempts, 8);
    assert_eq!(stored.last_error.as_deref(), Some("connection refused"));

    // Back up: delivered once, with the Message-ID chosen at enqueue time.
    *mem.down.lock().unwrap() = false;
    let r = ob.flush(&mem, now).await;
    assert_eq!(r.delivered.len(), 1);
    assert!(mem.tried.lock().unwrap().iter().all(|id| *id == m.message_id));
    assert_eq!(mem.accepted.lock().unwrap()[0].message_id, m.message_id);
    assert!(ob.list(now).messages.is_empty());
}

#[tokio::test]
async fn a_connection_failure_stops_the_flush_and_leaves_the_rest_due() {
    let dir = tempfile::tempdir().unwrap();
    let ob = outbox(dir.path());
    for (i, s) in ["a", "b", "c"].iter().enumerate() {
        ob.enqueue(&rendered(s), "tw@localhost", &["ops@localhost".into()], t0() + secs(i64::try_from(i).unwrap()))
            .unwrap();
    }
    let mem = Memory::default();
    mem.script.lock().unwrap().push_back(SendError::connection("connection refused"));
    let now = t0() + secs(10);
    let r = ob.flush(&mem, now).await;
    assert_eq!((r.failed.len(), r.deferred, r.queued), (1, 2, 3));
    assert_eq!(r.failed[0].subject, "a");
    assert_eq!(mem.tried.lock().unwrap().len(), 1, "one refused connection is enough");
    // Next flush: "a" waits for its backoff, "b" and "c" go.
    let r = ob.flush(&mem, now + secs(1)).await;
    assert_eq!(r.delivered.iter().map(|d| d.subject.as_str()).collect::<Vec<_>>(), ["b", "c"]);
    assert_eq!(r.queued, 1);
    let r = ob.flush(&mem, now + secs(30)).await;
    assert_eq!(r.delivered.len(), 1);
    assert_eq!(mem.accepted_subjects(), ["b", "c", "a"]);
}

#[tokio::test]
async fn a_rejected_message_does_not_hold_up_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let ob = outbox(dir.path());
    ob.enqueue(&rendered("bad"), "tw@localhost", &["ops@localhost".into()], t0()).unwrap();
    ob.enqueue(&rendered("good"), "tw@localhost", &["ops@localhost".into()], t0() + secs(1)).unwrap();
    let mem = Memory::default();
    mem.script.lock().unwrap().push_back(SendError::rejected("550 no such user"));
    let r = ob.flush(&mem, t0() + secs(2)).await;
    assert_eq!(r.failed.len(), 1);
    assert_eq!(r.failed[0].error.kind, SendErrorKind::Rejected);
    assert_eq!(r.delivered.len(), 1);
    assert_eq!(mem.accepted_subjects(), ["good"]);
}

struct Hangs;

impl Channel for Hangs {
    fn name(&self) -> &str {
        EMAIL
    }

    fn describe(&self) -> String {
        "a server that never answers".into()
    }

    fn secret_env(&self) -> Vec<String> {
        Vec::new()
    }

    fn render(&self, _: &Rendered) -> Content {
        Content::new()
    }

    fn deliver<'a>(&'a self, _: &'a OutboxMessage) -> Delivery<'a> {
        delivery(async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok("never".into())
        })
    }
}

#[tokio::test]
async fn a_hanging_server_costs_one_send_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let ob = Outbox::new(dir.path()).with_policy(RetryPolicy {
        send_timeout: Duration::from_millis(50),
        jitter: 0.0,
        ..RetryPolicy::default()
    });
    for s in ["a", "b", "c"] {
        ob.enqueue(&rendered(s), "tw@localhost", &["ops@localhost".into()], t0()).unwrap();
    }
    let started = Instant::now();
    let r = ob.flush(&Hangs, t0()).await;
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!((r.failed.len(), r.deferred, r.queued), (1, 2, 3));
    assert!(r.failed[0].error.message.starts_with("no answer within"), "{}", r.failed[0].error);
}

#[tokio::test]
async fn queued_messages_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mem = Memory::default();
    *mem.down.lock().unwrap() = true;
    {
        let ob = outbox(dir.path());
        ob.enqueue(&rendered("kept"), "tw@localhost", &["ops@localhost".into()], t0()).unwrap();
        ob.flush(&mem, t0()).await;
    }
    let ob = outbox(dir.path());
    let listed = ob.list(t0()).messages;
    assert_eq!(listed.len(), 1);
    assert_eq!((listed[0].attempts, listed[0].next_attempt_at), (1, t0() + secs(30)));
    *mem.down.lock().unwrap() = false;
    let r = ob.flush(&mem, t0() + secs(30)).await;
    assert_eq!(r.delivered.len(), 1);
}

#[tokio::test]
async fn corrupt_and_temp_files_do_not_stop_delivery() {
    let dir = tempfile::tempdir().unwrap();
    let ob = outbox(dir.path());
    ob.enqueue(&rendered("fine"), "tw@localhost", &["ops@localhost".into()], t0()).unwrap();
    fs::write(ob.dir().join("broken.json"), "{").unwrap();
    fs::write(ob.dir().join(".tmp-abc"), "partial").unwrap();
    let mem = Memory::default();
    let r = ob.flush(&mem, t0()).await;
    assert_eq!(r.delivered.len(), 1);
    assert_eq!(r.problems.len(), 1);
    assert!(r.problems[0].contains("moved aside"), "{:?}", r.problems);
    assert!(!ob.dir().join("broken.json").exists());
}

#[tokio::test]
async fn deliver_sends_one_message_regardless_of_schedule() {
    let dir = tempfile::tempdir().unwrap();
    let ob = outbox(dir.path());
    let other = ob.enqueue(&rendered("other"), "tw@localhost", &["ops@localhost".into()], t0()).unwrap();
    let test = ob.enqueue(&rendered("test"), "tw@localhost", &["ops@localhost".into()], t0()).unwrap();
    let mem = Memory::default();
    let r = ob.deliver(&mem, &test.id, t0()).await.unwrap();
    assert_eq!(r.delivered.len(), 1);
    assert_eq!(mem.accepted_subjects(), ["test"]);
    assert!(ob.path_of(&other.id).exists());
    assert!(ob.deliver(&mem, "nope", t0()).await.is_none());
}

#[test]
fn delays_double_up_to_the_cap_and_jitter_only_adds() {
    let p = RetryPolicy::default();
    assert_eq!(p.delay(1), Duration::from_secs(30));
    assert_eq!(p.delay(2), Duration::from_secs(60));
    assert_eq!(p.delay(6), Duration::from_secs(960));
    assert_eq!(p.delay(7), Duration::from_secs(1800));
    assert_eq!(p.delay(u32::MAX), Duration::from_secs(1800));
    for n in 1..10 {
        let j = p.jittered(n);
        assert!(j >= p.delay(n) && j <= p.delay(n).mul_f64(1.1), "{j:?}");
    }
}

/// The outbox folder cannot be written (here: a file stands where the folder should be; in
/// production a full or read-only state directory): the message is held in memory, sent from
/// there with its Message-ID, its backoff kept in memory, and written once the folder works.
#[tokio::test]
async fn a_message_that_cannot_be_written_is_held_in_memory_until_written_or_sent() {
    let dir = tempfile::tempdir().unwrap();
    let ob = outbox(dir.path());
    std::fs::write(ob.dir(), "not a folder").unwrap();
    let (m, err) = ob.queue_or_hold(&Memory::default(), &rendered("owed"), t0());
    assert!(err.is_some(), "the write failed");
    assert_eq!(ob.held_count(), 1);
    assert_eq!(ob.list(t0()).messages, vec![m.clone()], "listed from memory");

    // The transport is down: the failure's backoff holds in memory (no retry before it is due).
    let mem = Memory::default();
    *mem.down.lock().unwrap() = true;
    let r = ob.flush(&mem, t0()).await;
    assert_eq!((r.failed.len(), r.queued, r.failing_since), (1, 1, Some(t0())), "{r:?}");
    assert!(r.problems.iter().any(|p| p.contains("held in memory")), "{:?}", r.problems);
    let r = ob.flush(&mem, t0() + secs(1)).await;
    assert_eq!((r.failed.len(), r.queued), (0, 1), "not due yet: {r:?}");
    assert_eq!(mem.tried.lock().unwrap().len(), 1);

    // Space returns: the next flush writes it first, then sends it; exactly once.
    std::fs::remove_file(ob.dir()).unwrap();
    *mem.down.lock().unwrap() = false;
    let later = t0() + secs(3600);
    let r = ob.flush(&mem, later).await;
    assert_eq!(r.delivered.len(), 1, "{r:?}");
    assert_eq!(r.delivered[0].message_id, m.message_id, "the same Message-ID");
    assert_eq!((ob.held_count(), r.queued, r.failing_since), (0, 0, None));
    assert_eq!(ob.flush(&mem, later + secs(3600)).await.delivered.len(), 0, "no duplicate");
    assert_eq!(mem.accepted_subjects(), ["owed"]);
}

/// Held in memory and the transport works: it is delivered from memory at once (it does not
/// wait for the disk), and not again once the disk works.
#[tokio::test]
async fn a_held_message_is_sent_from_memory_and_never_again() {
    let dir = tempfile::tempdir().unwrap();
    let ob = outbox(dir.path());
    std::fs::write(ob.dir(), "not a folder").unwrap();
    let (m, _) = ob.queue_or_hold(&Memory::default(), &rendered("owed"), t0());
    let mem = Memory::default();
    let r = ob.flush(&mem, t0()).await;
    assert_eq!(r.delivered.len(), 1, "{r:?}");
    assert_eq!(r.delivered[0].message_id, m.message_id);
    assert_eq!(ob.held_count(), 0);
    std::fs::remove_file(ob.dir()).unwrap();
    assert_eq!(ob.flush(&mem, t0() + secs(60)).await, FlushReport::default());
    assert_eq!(mem.accepted_subjects(), ["owed"]);
}

/// Outbox files written before channels existed (no `channel` field) still load, as email,
/// with their email fields intact, and are delivered through the email channel.
#[tokio::test]
async fn a_message_queued_before_channels_loads_as_email_and_is_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let ob = outbox(dir.path());
    fs::create_dir_all(ob.dir()).unwrap();
    let legacy = r#"{
  "id": "0123456789abcdef0123456789abcdef",
  "message_id": "<01234567-89ab-cdef-0123-456789abcdef@tradewarden>",
  "created_at": "2026-11-20T14:30:00Z",
  "from": "tradewarden@localhost",
  "to": ["ops@localhost"],
  "subject": "[tradewarden] CRITICAL no-shorts: CHWY",
  "text": "plain",
  "html": "<p>html</p>",
  "attempts": 2,
  "next_attempt_at": "2026-11-20T14:31:00Z",
  "last_error": "connection refused"
}
"#;
    fs::write(ob.path_of("0123456789abcdef0123456789abcdef"), legacy).unwrap();
    let listed = ob.list(t0()).messages;
    assert_eq!(listed.len(), 1);
    let m = &listed[0];
    assert_eq!(
        (m.channel.as_str(), m.attempts, m.subject.as_str()),
        (EMAIL, 2, "[tradewarden] CRITICAL no-shorts: CHWY")
    );
    // The email fields are the same message to the email channel.
    let built = crate::notify::build_message(m).unwrap();
    assert_eq!(built.envelope().to().len(), 1);
    let raw = String::from_utf8(built.formatted()).unwrap();
    assert!(raw.contains("plain") && raw.contains("<p>html</p>"), "{raw}");
    // Rewritten after a failed attempt, it keeps every field and gains its channel.
    let mem = Memory::default();
    *mem.down.lock().unwrap() = true;
    ob.flush(&mem, t0() + secs(60)).await;
    let on_disk: serde_json::Value = serde_json::from_slice(&fs::read(ob.path_of(&m.id)).unwrap()).unwrap();
    for key in ["from", "to", "text", "html", "subject", "message_id"] {
        assert!(on_disk.get(key).is_some(), "{key} kept: {on_disk:#}");
    }
    assert_eq!((on_disk["channel"].as_str(), on_disk["attempts"].as_u64()), (Some(EMAIL), Some(3)));
    *mem.down.lock().unwrap() = false;
    let r = ob.flush(&mem, t0() + secs(3600)).await;
    assert_eq!(r.delivered.len(), 1);
    assert_eq!(mem.accepted.lock().unwrap()[0].message_id, m.message_id);
}

/// Each message records the channel that rendered it and is delivered through that channel
/// only; one channel being down does not hold up another's messages; a message for a channel
/// that is not configured stays queued, reported.
#[tokio::test]
async fn messages_are_delivered_through_the_channel_they_were_queued_for() {
    let dir = tempfile::tempdir().unwrap();
    let ob = outbox(dir.path());
    let mail = Memory::default();
    let hook = Memory::named("webhook");
    let to_mail = ob.queue(&mail, &rendered("for mail"), t0()).unwrap();
    let to_hook = ob.queue(&hook, &rendered("for hook"), t0() + secs(1)).unwrap();
    assert_eq!((to_mail.channel.as_str(), to_hook.channel.as_str()), (EMAIL, "webhook"));
    assert_eq!(to_hook.content.get("body").and_then(|v| v.as_str()), Some("text"), "rendered by its channel");
    assert_eq!(ob.list(t0()).messages.iter().map(|m| m.channel.as_str()).collect::<Vec<_>>(), [EMAIL, "webhook"]);

    // Only the email channel configured: the webhook message stays, reported.
    let r = ob.flush(&mail, t0() + secs(2)).await;
    assert_eq!(r.delivered.iter().map(|d| d.subject.as_str()).collect::<Vec<_>>(), ["for mail"]);
    assert_eq!(r.queued, 1);
    assert!(r.problems.iter().any(|p| p.contains("`webhook` channel, which is not configured")), "{:?}", r.problems);
    assert!(hook.tried.lock().unwrap().is_empty());

    // Both configured, email down: the webhook message still goes.
    let _ = ob.queue(&mail, &rendered("mail again"), t0() + secs(3)).unwrap();
    let _ = ob.queue(&mail, &rendered("mail third"), t0() + secs(4)).unwrap();
    *mail.down.lock().unwrap() = true;
    let both: Vec<Box<dyn Channel>> = vec![Box::new(mail), Box::new(hook)];
    let r = ob.flush(both.as_slice(), t0() + secs(5)).await;
    assert_eq!(r.delivered.iter().map(|d| d.subject.as_str()).collect::<Vec<_>>(), ["for hook"]);
    assert_eq!((r.failed.len(), r.deferred, r.queued), (1, 1, 2), "{r:?}");
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    let names: Vec<Vec<String>> = both.iter().map(|c| c.secret_env()).collect();
    assert_eq!(names, [vec!["EMAIL_TOKEN".to_owned()], vec!["WEBHOOK_TOKEN".to_owned()]]);
}
