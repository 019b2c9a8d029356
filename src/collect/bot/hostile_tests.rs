//! Hostile bot directories: symlinks out of the bot root, FIFOs, NUL bytes, invalid UTF-8,
//! deep nesting, duplicate keys, NaN and huge numbers, negative zero, far timestamps, logs
//! truncated or rotated between cycles, and files rewritten while being read.
//!
//! Each case states the behaviour it pins; RELIABILITY.md lists them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use rust_decimal::Decimal;
use serde_json::{Value, json};

use super::{jsonl, state};
use crate::config::{BotSource, MetadataMapping, PositionsMapping};
use crate::model::{
    FieldRef, LogQuery, LogSummary, Matcher, Side, SourceError, SourceErrorKind, Sourced, TrackedPosition, Window,
};

type Logs = BTreeMap<String, Sourced<LogSummary>>;

fn field(s: &str) -> FieldRef {
    FieldRef::parse(s).unwrap()
}

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2025-12-19T16:00:00Z").unwrap().to_utc()
}

/// The stock-bot mapping: `state/executor_state.json`, `/opens` keyed by symbol.
fn opens() -> PositionsMapping {
    PositionsMapping {
        source: BotSource::File(PathBuf::from("state/executor_state.json")),
        at: "/opens".into(),
        symbol: field("symbol"),
        qty: field("qty"),
        entry_price: Some(field("entry_price")),
        side: None,
    }
}

fn metadata() -> MetadataMapping {
    MetadataMapping { source: BotSource::File(PathBuf::from("state/position_metadata.json")), at: String::new() }
}

/// A bot root inside a scratch folder, so that "outside the root" is a sibling folder.
struct Bot {
    scratch: tempfile::TempDir,
}

impl Bot {
    fn new() -> Self {
        let scratch = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(scratch.path().join("bot/state")).unwrap();
        std::fs::create_dir_all(scratch.path().join("bot/logs")).unwrap();
        std::fs::create_dir_all(scratch.path().join("outside")).unwrap();
        Self { scratch }
    }

    fn root(&self) -> PathBuf {
        self.scratch.path().join("bot")
    }

    fn outside(&self, name: &str, text: &str) -> PathBuf {
        let p = self.scratch.path().join("outside").join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    fn write(&self, rel: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
        let p = self.root().join(rel);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    fn state(&self, bytes: impl AsRef<[u8]>) -> PathBuf {
        self.write("state/executor_state.json", bytes)
    }

    fn link(&self, rel: &str, target: &Path) {
        std::os::unix::fs::symlink(target, self.root().join(rel)).unwrap();
    }

    fn positions(&self) -> Sourced<Vec<TrackedPosition>> {
        state::read_positions(&opens(), &self.root(), &Logs::new())
    }

    fn positions_err(&self) -> SourceError {
        self.positions().unwrap_err()
    }

    fn scan(&self, rel: &str, q: &LogQuery) -> Sourced<LogSummary> {
        jsonl::scan_in(&self.root(), Path::new(rel), "run", &field("ts"), q, now())
    }
}

fn window(secs: u64) -> Window {
    Window { within: Duration::from_secs(secs), matcher: Matcher::default() }
}

fn last_record() -> LogQuery {
    LogQuery { windows: vec![], last_record: true }
}

fn unavailable(e: &SourceError) -> &str {
    assert_eq!(e.kind, SourceErrorKind::Unavailable, "{e}");
    &e.message
}

fn malformed(e: &SourceError) -> &str {
    assert_eq!(e.kind, SourceErrorKind::Malformed, "{e}");
    &e.message
}

// ---- symlinks and FIFOs ----

#[test]
fn a_state_file_symlinked_outside_the_bot_root_is_refused_unread() {
    let bot = Bot::new();
    let secret = bot.outside("credentials", "{\"opens\": {\"AAPL\": {\"qty\": 1}}} aws_secret_access_key=XYZ");
    bot.link("state/executor_state.json", &secret);
    let e = bot.positions_err();
    let msg = unavailable(&e);
    assert!(msg.contains("outside the bot root"), "{msg}");
    assert!(msg.contains("refused"), "{msg}");
    assert!(!msg.contains("aws_secret_access_key"), "nothing of the file is read: {msg}");
    // Metadata and logs alike.
    std::fs::write(bot.scratch.path().join("outside/meta.json"), "{}").unwrap();
    bot.link("state/position_metadata.json", &bot.scratch.path().join("outside/meta.json"));
    let e = state::read_metadata(&metadata(), &bot.root(), &Logs::new()).unwrap_err();
    assert!(unavailable(&e).contains("outside the bot root"), "{e}");
    bot.link("logs/run.jsonl", &bot.outside("run.jsonl", "{\"ts\": 1}\n"));
    let e = bot.scan("logs/run.jsonl", &last_record()).unwrap_err();
    assert_eq!(e.source, "log:run");
    assert!(unavailable(&e).contains("outside the bot root"), "{e}");
}

#[test]
fn a_symlinked_folder_leading_outside_is_refused_too() {
    let bot = Bot::new();
    std::fs::remove_dir(bot.root().join("state")).unwrap();
    bot.outside("executor_state.json", "{\"opens\": {}}");
    bot.link("state", &bot.scratch.path().join("outside"));
    assert!(unavailable(&bot.positions_err()).contains("outside the bot root"));
    // An absolute symlink to a system file.
    let bot = Bot::new();
    bot.link("state/executor_state.json", Path::new("/etc/passwd"));
    let e = bot.positions_err();
    assert!(unavailable(&e).contains("leads to /etc/passwd, outside the bot root"), "{e}");
}

#[test]
fn symlinks_inside_the_root_and_a_symlinked_root_are_fine() {
    let bot = Bot::new();
    bot.write("state/2025-12-19.json", "{\"opens\": {\"AAPL\": {\"qty\": 3}}}");
    bot.link("state/executor_state.json", Path::new("2025-12-19.json"));
    assert_eq!(bot.positions().unwrap()[0].qty, Decimal::from(3));
    // Relative links with `..` that stay inside.
    bot.write("logs/2025-12-19.jsonl", "{\"ts\": \"2025-12-19T15:59:00Z\"}\n");
    bot.link("logs/run.jsonl", Path::new("../logs/./2025-12-19.jsonl"));
    assert!(bot.scan("logs/run.jsonl", &last_record()).unwrap().last_record.is_some());
    // The root itself is a symlink (/srv/bot -> /data/bot).
    let alias = bot.scratch.path().join("alias");
    std::os::unix::fs::symlink(bot.root(), &alias).unwrap();
    let got = state::read_positions(&opens(), &alias, &Logs::new()).unwrap();
    assert_eq!(got[0].symbol.as_str(), "AAPL");
}

#[test]
fn a_dangling_symlink_is_missing() {
    let bot = Bot::new();
    bot.link("state/executor_state.json", &bot.root().join("state/nowhere.json"));
    let e = bot.positions_err();
    assert!(unavailable(&e).ends_with("executor_state.json does not exist"), "{e}");
}

fn mkfifo(path: &Path) -> bool {
    std::process::Command::new("mkfifo").arg(path).status().is_ok_and(|s| s.success())
}

#[test]
fn a_fifo_in_place_of_a_state_file_or_a_log_never_blocks() {
    let bot = Bot::new();
    if !mkfifo(&bot.root().join("state/executor_state.json")) {
        return;
    }
    assert!(mkfifo(&bot.root().join("logs/run.jsonl")));
    // Nobody ever writes to either FIFO: a blocking open would hang here forever.
    let (tx, rx) = std::sync::mpsc::channel();
    let root = bot.root();
    std::thread::spawn(move || {
        let p = state::read_positions(&opens(), &root, &Logs::new());
        let l = jsonl::scan_in(&root, Path::new("logs/run.jsonl"), "run", &field("ts"), &last_record(), now());
        tx.send((p, l)).unwrap();
    });
    let (p, l) = rx.recv_timeout(Duration::from_secs(10)).expect("reading a FIFO must not block");
    assert!(unavailable(&p.unwrap_err()).contains("is not a regular file (it is a FIFO)"));
    assert!(unavailable(&l.unwrap_err()).contains("is not a regular file (it is a FIFO)"));
    // A symlink to a FIFO is a FIFO.
    let bot2 = Bot::new();
    assert!(mkfifo(&bot2.root().join("state/pipe")));
    bot2.link("state/executor_state.json", Path::new("pipe"));
    assert!(unavailable(&bot2.positions_err()).contains("(it is a FIFO)"));
}

// ---- bytes that are not JSON text ----

#[test]
fn nul_bytes_and_invalid_utf8_in_a_state_file_are_malformed() {
    for bytes in [
        &b"{\"opens\": {\"AAPL\": {\"qty\": 1}}}\0"[..],
        b"\0\0\0\0",
        b"{\"opens\": {\"AA\0PL\": {\"qty\": 1}}}",
        b"{\"opens\": {\"AAPL\": {\"qty\": \"1\xff\"}}}",
        b"\xef\xbb\xbf{\"opens\": {}}", // a UTF-8 byte-order mark
        b"\xff\xfe{\x00}\x00",          // UTF-16
    ] {
        let bot = Bot::new();
        bot.state(bytes);
        let e = bot.positions_err();
        assert!(malformed(&e).contains("is not valid JSON"), "{bytes:?}: {e}");
    }
}

#[test]
fn deep_nesting_is_malformed_not_a_stack_overflow() {
    // serde_json stops at 128 levels: a finding, whatever the depth.
    let deep = "[".repeat(100_000);
    let bot = Bot::new();
    bot.state(&deep);
    assert!(malformed(&bot.positions_err()).contains("recursion limit exceeded"));
    let closed = format!("{{\"opens\": {}{}}}", "[".repeat(100_000), "]".repeat(100_000));
    bot.state(&closed);
    assert!(malformed(&bot.positions_err()).contains("recursion limit exceeded"));
    // In a log line, which is also the last record positions would come from.
    bot.write("logs/run.jsonl", format!("{{\"ts\": 1766159990}}\n{{\"ts\": 1766159999, \"x\": {deep}\n"));
    let q = LogQuery { windows: vec![window(60)], last_record: true };
    let s = bot.scan("logs/run.jsonl", &q).unwrap();
    assert_eq!((s.malformed_count, s.counts[0].count), (1, 1));
    assert!(s.last_record_error.unwrap().contains("recursion limit exceeded"));
    // Unterminated, it is not (yet) a JSON document: a torn tail, ignored.
    bot.write("logs/run.jsonl", format!("{{\"ts\": 1766159990}}\n{{\"ts\": 1766159999, \"x\": {deep}"));
    let s = bot.scan("logs/run.jsonl", &q).unwrap();
    assert!(s.torn_tail);
    assert_eq!((s.malformed_count, s.counts[0].count), (0, 1));
}

// ---- duplicate keys ----

#[test]
fn duplicate_keys_in_a_bot_file_take_the_last_value_like_the_bots_own_parser() {
    // Python's json.loads (and serde_json) keep the last value of a repeated key: tradewarden
    // reads what the bot itself would read back.
    let bot = Bot::new();
    bot.state("{\"opens\": {\"AAPL\": {\"qty\": 10}, \"AAPL\": {\"qty\": 7, \"qty\": 5}}}");
    let got = bot.positions().unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].qty, Decimal::from(5));
    // In an array, a repeated symbol is not silently merged: the source is malformed.
    let array = PositionsMapping { at: "/positions".into(), ..opens() };
    bot.state("{\"positions\": [{\"symbol\": \"AAPL\", \"qty\": 1}, {\"symbol\": \"AAPL\", \"qty\": 2}]}");
    let e = state::read_positions(&array, &bot.root(), &Logs::new()).unwrap_err();
    assert!(malformed(&e).contains("duplicate symbol (also at index 0)"), "{e}");
}

// ---- numbers ----

#[test]
fn nan_infinity_and_out_of_range_numbers_are_malformed_never_zero() {
    let bot = Bot::new();
    // Not JSON at all.
    for text in ["NaN", "Infinity", "-Infinity", "1e400", "-1e400"] {
        bot.state(format!("{{\"opens\": {{\"AAPL\": {{\"qty\": {text}}}}}}}"));
        assert!(malformed(&bot.positions_err()).contains("is not valid JSON"), "{text}");
    }
    // JSON, but not a decimal: strings that are not numbers, and numbers beyond Decimal's
    // range (about 7.9e28; serde_json reads a 40-digit integer as an f64).
    for value in [
        "\"NaN\"",
        "\"Infinity\"",
        "\"-inf\"",
        "\"1e400\"",
        "1234567890123456789012345678901234567890",
        "\"1234567890123456789012345678901234567890\"",
        "1e300",
    ] {
        bot.state(format!("{{\"opens\": {{\"AAPL\": {{\"qty\": {value}}}}}}}"));
        let e = bot.positions_err();
        assert!(malformed(&e).contains("field `qty`"), "{value}: {e}");
    }
    // The extremes of the range are numbers.
    bot.state("{\"opens\": {\"A\": {\"qty\": \"79228162514264337593543950335\"}, \"B\": {\"qty\": \"1e-28\"}}}");
    let got = bot.positions().unwrap();
    assert_eq!(got[0].qty, Decimal::MAX);
    assert_eq!(got[1].qty, Decimal::new(1, 28));
}

#[test]
fn negative_zero_is_flat_not_short() {
    let bot = Bot::new();
    for qty in ["-0", "\"-0\"", "\"-0.000\"", "-0.0", "\"-0e5\""] {
        bot.state(format!("{{\"opens\": {{\"AAPL\": {{\"qty\": {qty}}}}}}}"));
        let got = bot.positions().unwrap();
        assert!(got[0].qty.is_zero(), "{qty}");
        assert_eq!(got[0].side, None, "{qty}: zero has no side");
        assert!(got[0].qty >= Decimal::ZERO, "{qty}: -0 compares equal to 0");
    }
    // With an explicit side "long", -0 is not the contradiction a negative quantity is.
    let sided = PositionsMapping { side: Some(field("side")), ..opens() };
    bot.state("{\"opens\": {\"AAPL\": {\"qty\": \"-0\", \"side\": \"long\"}}}");
    let got = state::read_positions(&sided, &bot.root(), &Logs::new()).unwrap();
    assert_eq!(got[0].side, Some(Side::Long));
}

// ---- timestamps ----

#[test]
fn far_future_and_far_past_event_times() {
    let bot = Bot::new();
    let lines = [
        json!({"ts": "0001-01-01T00:00:00Z", "event": "ANCIENT"}),
        json!({"ts": -86_400, "event": "1969"}),
        json!({"ts": "2025-12-19T15:59:30Z", "event": "NOW"}),
        json!({"ts": "9999-12-31T23:59:59Z", "event": "FAR"}),
    ];
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    bot.write("logs/run.jsonl", &text);
    let q = LogQuery { windows: vec![window(60), window(u64::MAX)], last_record: true };
    let s = bot.scan("logs/run.jsonl", &q).unwrap();
    // The newest event is the far-future one (log_freshness reports it as unknown); a window
    // counts events up to its length ahead of now and sets the rest apart (log_activity makes a
    // short count with such events unknown).
    assert_eq!(s.newest_event, Some(DateTime::parse_from_rfc3339("9999-12-31T23:59:59Z").unwrap().to_utc()));
    assert_eq!((s.counts[0].count, s.counts[0].ahead), (1, 1));
    assert_eq!((s.counts[1].count, s.counts[1].ahead), (4, 0), "an unbounded window reaches year 1 and 9999");
    assert_eq!(s.malformed_count, 0);
    // Out of every representable range: malformed lines, counted, never a panic.
    bot.write(
        "logs/run.jsonl",
        "{\"ts\": \"+275760-09-13T00:00:00Z\"}\n{\"ts\": 7922816251426433759354395033}\n{\"ts\": 1e300}\n\
         {\"ts\": \"99999999999999999999999999999\"}\n{\"ts\": \"2025-02-30T00:00:00Z\"}\n",
    );
    let s = bot.scan("logs/run.jsonl", &q).unwrap();
    assert_eq!((s.malformed_count, s.newest_event), (5, None));
}

// ---- logs that change between cycles ----

fn event(secs_ago: i64, name: &str) -> String {
    format!("{{\"ts\": \"{}\", \"event\": \"{name}\"}}\n", (now() - TimeDelta::seconds(secs_ago)).to_rfc3339())
}

/// What a scan of exactly these bytes, as a fresh file, gives (the reference).
fn fresh_scan(bytes: &str, q: &LogQuery) -> LogSummary {
    let bot = Bot::new();
    bot.write("logs/run.jsonl", bytes);
    let mut s = bot.scan("logs/run.jsonl", q).unwrap();
    s.file.clear();
    s
}

fn without_file(mut s: LogSummary) -> LogSummary {
    s.file.clear();
    s
}

#[test]
fn a_log_rotated_or_truncated_between_cycles_is_read_afresh() {
    let q = LogQuery { windows: vec![window(3600), window(60)], last_record: true };
    let bot = Bot::new();
    let old: String = (0..200).map(|i| event(7000 - i * 30, "OLD")).collect();
    bot.write("logs/run.jsonl", &old);
    let first = bot.scan("logs/run.jsonl", &q).unwrap();
    assert_eq!(first.file_len, old.len() as u64);

    // Rotation: the log is renamed away and a new, much shorter file takes its name (a new inode).
    let path = bot.root().join("logs/run.jsonl");
    let ino = |p: &Path| std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(p).unwrap());
    let before = ino(&path);
    std::fs::rename(&path, bot.root().join("logs/run.jsonl.1")).unwrap();
    let rotated = [event(50, "NEW"), event(10, "NEW")].concat();
    bot.write("logs/run.jsonl", &rotated);
    assert_ne!(ino(&path), before);
    let second = bot.scan("logs/run.jsonl", &q).unwrap();
    assert_eq!(without_file(second.clone()), fresh_scan(&rotated, &q));
    assert_eq!(second.counts.iter().map(|c| c.count).collect::<Vec<_>>(), vec![2, 2]);

    // copytruncate: the same inode shrinks to nothing, then the bot appends.
    let inode = ino(&path);
    std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(0).unwrap();
    let empty = bot.scan("logs/run.jsonl", &q).unwrap();
    assert_eq!((empty.file_len, empty.newest_event, empty.last_record.clone()), (0, None, None));
    let appended = event(5, "AFTER");
    let mut log = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
    std::io::Write::write_all(&mut log, appended.as_bytes()).unwrap();
    assert_eq!(ino(&path), inode);
    let third = bot.scan("logs/run.jsonl", &q).unwrap();
    assert_eq!(without_file(third), fresh_scan(&appended, &q));

    // Truncated to a shorter, different text of the same inode (a bot rewriting its log).
    let rewritten = event(1, "REWRITTEN");
    std::fs::write(&path, &rewritten).unwrap();
    assert_eq!(without_file(bot.scan("logs/run.jsonl", &q).unwrap()), fresh_scan(&rewritten, &q));
}

// ---- files rewritten while being read ----

/// Two versions of a state file, the same length, whose every mix (a prefix of one followed
/// by the rest of the other, cut anywhere) is still valid JSON with a third meaning: a read that
/// mixed them would go unnoticed by the parser.
fn versions() -> (String, String) {
    let pad = "x".repeat(30_000);
    let a = format!(
        "{{\"opens\": {{\"AAPL\": {{\"qty\": 1111}}, \"pad\": {{\"qty\": 0, \"p\": \"{pad}\"}}, \"ZM\": {{\"qty\": 1111}}}}}}"
    );
    let b = a.replace("1111", "2222");
    assert_eq!(a.len(), b.len());
    (a, b)
}

#[derive(Clone, Copy, Debug)]
enum Writer {
    /// Temp file and rename: what a careful bot does.
    AtomicRename,
    /// `open(path, "w")` then the text in two writes: what most bots do.
    TruncateAndWrite,
}

fn rewrite_forever(path: PathBuf, mode: Writer, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<u64> {
    let (a, b) = versions();
    std::thread::spawn(move || {
        let mut n = 0_u64;
        while !stop.load(Ordering::Relaxed) {
            let text = if n.is_multiple_of(2) { &b } else { &a };
            match mode {
                Writer::AtomicRename => {
                    let tmp = path.with_extension("tmp");
                    std::fs::write(&tmp, text).unwrap();
                    std::fs::rename(&tmp, &path).unwrap();
                }
                Writer::TruncateAndWrite => {
                    use std::io::Write;
                    let mut f = std::fs::File::create(&path).unwrap();
                    let (head, tail) = text.split_at(text.len() / 2);
                    f.write_all(head.as_bytes()).unwrap();
                    std::thread::yield_now();
                    f.write_all(tail.as_bytes()).unwrap();
                }
            }
            n += 1;
        }
        n
    })
}

#[test]
fn a_state_file_rewritten_during_reads_is_a_version_or_an_error_never_a_mix() {
    for mode in [Writer::AtomicRename, Writer::TruncateAndWrite] {
        let bot = Bot::new();
        let (a, _) = versions();
        let path = bot.state(&a);
        let stop = Arc::new(AtomicBool::new(false));
        let writer = rewrite_forever(path, mode, stop.clone());
        let (mut ok, mut errors) = (0, std::collections::BTreeSet::new());
        for _ in 0..1500 {
            match bot.positions() {
                Ok(p) => {
                    let qty: Vec<_> = p.iter().filter(|p| p.symbol.as_str() != "pad").map(|p| p.qty).collect();
                    let (one, two) = (Decimal::from(1111), Decimal::from(2222));
                    assert!(qty == vec![one, one] || qty == vec![two, two], "{mode:?}: a mix of versions: {qty:?}");
                    ok += 1;
                }
                Err(e) => {
                    errors.insert(e.message.replace(&bot.root().display().to_string(), "ROOT"));
                }
            }
        }
        stop.store(true, Ordering::Relaxed);
        let writes = writer.join().unwrap();
        assert!(writes > 10, "{mode:?}: the writer ran ({writes} writes)");
        assert!(ok > 0, "{mode:?}: some reads succeed ({ok} ok, errors: {errors:#?})");
        if matches!(mode, Writer::AtomicRename) {
            // A renamed-in file is always whole: never malformed, never changed while read.
            // Under a writer renaming in a tight loop the open itself can lose the race three
            // times running ("kept changing while being opened"): unavailable, never a mix.
            assert!(
                errors.iter().all(|e| e.contains("kept changing while being opened")),
                "a renamed-in file is always whole: {errors:#?}"
            );
        }
    }
}

#[test]
fn a_state_file_changed_between_the_read_and_the_check_is_discarded() {
    // Deterministic: the change happens exactly between reading the bytes and the check that
    // compares the file's length and modification time before and after. Without the check
    // these reads would succeed with the old version's bytes.
    use std::io::{Seek, SeekFrom, Write};
    let bot = Bot::new();
    let (a, b) = versions();
    let path = bot.state(&a);
    type Change = Box<dyn Fn(&Path)>;
    let changes: [(&str, Change); 2] = [
        (
            "appended to",
            Box::new(|p: &Path| {
                let mut f = std::fs::OpenOptions::new().append(true).open(p).unwrap();
                f.write_all(b"\n").unwrap();
            }),
        ),
        (
            "rewritten in place, the same length",
            Box::new(move |p: &Path| {
                let mut f = std::fs::OpenOptions::new().write(true).open(p).unwrap();
                f.seek(SeekFrom::Start(0)).unwrap();
                f.write_all(b.as_bytes()).unwrap();
                // The kernel stamps times at tick granularity; a bot writing a tick later
                // moves the modification time, which is what the check sees.
                let later = f.metadata().unwrap().modified().unwrap() + std::time::Duration::from_secs(2);
                f.set_modified(later).unwrap();
            }),
        ),
    ];
    for (what, change) in changes {
        std::fs::write(&path, &a).unwrap();
        let fired = std::rc::Rc::new(std::cell::Cell::new(false));
        let seen = fired.clone();
        state::AFTER_READ.set(Some(Box::new(move |p: &Path| {
            if !seen.replace(true) {
                change(p);
            }
        })));
        let got = bot.positions();
        state::AFTER_READ.set(None);
        assert!(fired.get(), "{what}: the seam ran");
        let e = got.expect_err(what);
        assert_eq!(e.kind, SourceErrorKind::Unavailable, "{what}");
        assert!(
            e.message.ends_with("changed while being read (the bot is writing it); it is read again next cycle"),
            "{what}: {}",
            e.message
        );
        // Next cycle: the file as the bot left it.
        let again = bot.positions().unwrap();
        let want = if what.starts_with("rewritten") { 2222 } else { 1111 };
        assert_eq!(again[0].qty, Decimal::from(want), "{what}");
    }
}

#[test]
fn a_log_rewritten_during_scans_gives_a_version_or_an_error_never_a_mix() {
    let bot = Bot::new();
    let (a, _) = versions();
    let path = bot.write("logs/positions.jsonl", format!("{}\n{a}\n", event(5, "X").trim_end()));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = rewrite_forever(path, Writer::TruncateAndWrite, stop.clone());
    let mapping = PositionsMapping { source: BotSource::Log("positions".into()), ..opens() };
    for _ in 0..1500 {
        let summary = jsonl::scan_in(
            &bot.root(),
            Path::new("logs/positions.jsonl"),
            "positions",
            &field("ts"),
            &last_record(),
            now(),
        );
        let logs = Logs::from([("positions".to_owned(), summary)]);
        if let Ok(p) = state::read_positions(&mapping, &bot.root(), &logs) {
            let qty: Vec<_> = p.iter().filter(|p| p.symbol.as_str() != "pad").map(|p| p.qty).collect();
            let (one, two) = (Decimal::from(1111), Decimal::from(2222));
            assert!(qty == vec![one, one] || qty == vec![two, two], "a mix of versions: {qty:?}");
        }
    }
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
}

#[test]
fn a_value_from_the_fixture_is_what_it_seems() {
    // The fixture itself: each version reads as its own quantities.
    let (a, b) = versions();
    for (text, q) in [(a, 1111), (b, 2222)] {
        let bot = Bot::new();
        bot.state(&text);
        let p = bot.positions().unwrap();
        assert_eq!(p.iter().map(|p| p.symbol.as_str()).collect::<Vec<_>>(), vec!["AAPL", "ZM", "pad"]);
        assert_eq!(p[0].qty, Decimal::from(q));
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["opens"]["ZM"]["qty"], json!(q));
    }
}
