//! The fix, planned and written on real files in a temporary bot root.

use std::path::Path;
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use rust_decimal::dec;
use serde_json::{Map, Value, json};

use super::edit::{number_like, side_word};
use super::*;
use crate::act::broker::fake::position;
use crate::act::plan::Scope;
use crate::config::{BotConfig, MetadataMapping, PositionsMapping};
use crate::model::{FieldRef, Position, Side};

const STATE: &str = r#"{
  "updated_at": "2026-11-20T15:29:20+00:00",
  "opens": {
    "AAPL": {
      "qty": 10,
      "entry_price": 187.25,
      "strategy": "rsi_reversion"
    },
    "MSFT": {
      "qty": "5",
      "entry_price": "412.30",
      "strategy": "rsi_reversion"
    },
    "NVDA": {
      "qty": 20.0,
      "entry_price": "131.4",
      "strategy": "breakout"
    }
  },
  "cash_reserved": "0"
}
"#;

const META: &str = r#"{
  "AAPL": {
    "entry_score": 0.82
  },
  "MSFT": {
    "entry_score": "0.81"
  }
}
"#;

fn bot(root: &Path) -> BotConfig {
    BotConfig {
        root: root.to_owned(),
        long_only: true,
        positions: PositionsMapping {
            source: BotSource::File("state/executor_state.json".into()),
            at: "/opens".into(),
            symbol: FieldRef::Name("symbol".into()),
            qty: FieldRef::Name("qty".into()),
            entry_price: Some(FieldRef::Name("entry_price".into())),
            side: None,
        },
        metadata: Some(MetadataMapping {
            source: BotSource::File("state/position_metadata.json".into()),
            at: String::new(),
        }),
    }
}

fn setup() -> (tempfile::TempDir, BotConfig) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("state")).unwrap();
    std::fs::write(dir.path().join("state/executor_state.json"), STATE).unwrap();
    std::fs::write(dir.path().join("state/position_metadata.json"), META).unwrap();
    let b = bot(dir.path());
    (dir, b)
}

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-20T16:00:00Z").unwrap().to_utc()
}

fn plan_for(b: &BotConfig, broker: &[Position], scope: &Scope) -> Result<FixPlan, String> {
    let template = Map::new();
    plan(&FixInput { bot: b, root: &b.root, broker, scope, template: &template, now: now() })
}

#[test]
fn removes_adds_and_corrects_keeping_everything_else() {
    let (_d, b) = setup();
    // MSFT sold, NVDA partly sold (20 → 12), TSLA bought, AAPL as tracked.
    let mut tsla = position("TSLA", dec!(4));
    tsla.avg_entry_price = Some(dec!(250.5));
    let mut aapl = position("AAPL", dec!(10));
    aapl.avg_entry_price = Some(dec!(187.25));
    let broker = vec![aapl, position("NVDA", dec!(12)), tsla];
    let p = plan_for(&b, &broker, &Scope::All).unwrap();
    let pos = &p.files[0];
    assert_eq!(
        pos.after,
        r#"{
  "updated_at": "2026-11-20T15:29:20+00:00",
  "opens": {
    "AAPL": {
      "qty": 10,
      "entry_price": 187.25,
      "strategy": "rsi_reversion"
    },
    "NVDA": {
      "qty": 12.0,
      "entry_price": "131.4",
      "strategy": "breakout"
    },
    "TSLA": {
      "qty": 4,
      "entry_price": "250.5",
      "added_by": "tradewarden",
      "added_at": "2026-11-20T16:00:00Z"
    }
  },
  "cash_reserved": "0"
}
"#
    );
    assert_eq!(
        pos.changes,
        ["remove MSFT (not held at the broker)", "set NVDA quantity 20 → 12", "add TSLA 4 @ 250.5 (untracked)"]
    );
    let meta = &p.files[1];
    assert_eq!(
        meta.changes,
        ["remove MSFT (not held at the broker)", "add NVDA (from the template)", "add TSLA (from the template)"]
    );
    let diff = p.diff();
    assert!(diff.starts_with("--- a/state/executor_state.json\n+++ b/state/executor_state.json\n"), "{diff}");
    assert!(diff.contains("-      \"qty\": 20.0,\n+      \"qty\": 12.0,"), "{diff}");
    assert!(diff.contains("--- a/state/position_metadata.json"), "{diff}");
}

#[test]
fn a_long_only_bot_never_gets_a_short_written_and_scope_limits_changes() {
    let (_d, b) = setup();
    let broker = vec![position("AAPL", dec!(-10)), position("MSFT", dec!(3)), position("NVDA", dec!(20))];
    let p = plan_for(&b, &broker, &Scope::All).unwrap();
    assert_eq!(p.files[0].changes, ["set MSFT quantity 5 → 3"]);
    assert!(p.files[0].after.contains("\"qty\": \"3\","), "strings stay strings: {}", p.files[0].after);
    assert_eq!(
        p.notes,
        [
            "AAPL is short -10 at the broker: not written into a long-only bot's state (its entry is left as is); flatten it first"
        ]
    );
    let p = plan_for(&b, &[], &Scope::Symbols(["NVDA".to_owned()].into())).unwrap();
    assert_eq!(p.files[0].changes, ["remove NVDA (not held at the broker)"]);
    assert!(p.files.len() == 1, "NVDA has no metadata to remove");
    let (_d, b) = setup();
    let matching = vec![position("AAPL", dec!(10)), position("MSFT", dec!(5)), position("NVDA", dec!(20))];
    let p = plan_for(&b, &matching, &Scope::Symbols(["AAPL".to_owned(), "MSFT".to_owned()].into())).unwrap();
    assert!(p.is_empty(), "{p:?}");
}

#[test]
fn side_fields_follow_the_bots_words() {
    assert_eq!(side_word("long", Side::Short), "short");
    assert_eq!(side_word("BUY", Side::Short), "SELL");
    assert_eq!(number_like(Some(("\"5.00\"", &json!("5.00"))), dec!(3)).0, "\"3.00\"");
    assert_eq!(number_like(Some(("10", &json!(10))), dec!(2.5)).0, "2.5");
    assert_eq!(number_like(None, dec!(-1596)).0, "-1596");
}

#[test]
fn an_array_layout_is_edited_too() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("p.json"), "{\"positions\": [\n  {\"symbol\": \"A\", \"quantity\": 1, \"side\": \"long\"},\n  {\"symbol\": \"B\", \"quantity\": 2, \"side\": \"long\"}\n]}\n").unwrap();
    let b = BotConfig {
        root: dir.path().to_owned(),
        long_only: false,
        positions: PositionsMapping {
            source: BotSource::File("p.json".into()),
            at: "/positions".into(),
            symbol: FieldRef::Name("symbol".into()),
            qty: FieldRef::Name("quantity".into()),
            entry_price: None,
            side: Some(FieldRef::Name("side".into())),
        },
        metadata: None,
    };
    let template: Map<String, Value> = [("note".to_owned(), json!("added for {symbol}"))].into_iter().collect();
    let broker = vec![position("B", dec!(-2)), position("C", dec!(7))];
    let p = plan(&FixInput {
        bot: &b,
        root: dir.path(),
        broker: &broker,
        scope: &Scope::All,
        template: &template,
        now: now(),
    })
    .unwrap();
    assert_eq!(
        p.files[0].after,
        "{\"positions\": [\n  {\"symbol\": \"B\", \"quantity\": 2, \"side\": \"short\"},\n  {\"symbol\": \"C\", \"quantity\": 7, \"side\": \"long\", \"note\": \"added for C\"}\n]}\n"
    );
}

#[test]
fn logs_are_refused_with_an_explanation() {
    let (_d, mut b) = setup();
    b.positions.source = BotSource::Log("positions".into());
    let e = plan_for(&b, &[], &Scope::All).unwrap_err();
    assert!(e.contains("JSONL log `positions`") && e.contains("does not edit a log"), "{e}");
}

#[test]
fn malformed_or_missing_files_are_refused() {
    let (d, b) = setup();
    std::fs::write(d.path().join("state/executor_state.json"), "{\"opens\": {\"AAPL\": {\"qty\": ").unwrap();
    assert!(plan_for(&b, &[], &Scope::All).unwrap_err().contains("not valid JSON"));
    std::fs::write(d.path().join("state/executor_state.json"), "{\"opens\": {\"AAPL\": {\"qty\": true}}}").unwrap();
    assert!(plan_for(&b, &[], &Scope::All).unwrap_err().contains("not understood"));
    std::fs::remove_file(d.path().join("state/executor_state.json")).unwrap();
    assert!(plan_for(&b, &[], &Scope::All).unwrap_err().contains("does not exist"));
}

#[test]
fn orders_filling_or_just_changed_hold_the_fix_back() {
    use crate::act::broker::fake::order;
    use crate::model::OrderSide;
    let at = |secs: i64| Some(now() - chrono::Duration::seconds(secs));
    let mut filling = order("1", "AAPL", OrderSide::Sell, 10);
    filling.filled_qty = dec!(4);
    filling.updated_at = at(3600);
    let mut fresh = order("2", "MSFT", OrderSide::Buy, 5);
    fresh.submitted_at = at(10);
    let mut resting = order("3", "NVDA", OrderSide::Sell, 5);
    resting.submitted_at = at(3600);
    let mut done = order("4", "TSLA", OrderSide::Sell, 5);
    // Closed an hour ago: done with (a fill seconds ago is `a_closed_order_filled_seconds_ago_is_in_flight`).
    (done.status, done.updated_at) = ("filled".into(), at(3600));
    let undated = order("5", "ZM", OrderSide::Sell, 5);
    let orders = [filling, fresh, resting, done, undated];
    let quiet = Duration::from_secs(30);
    assert_eq!(working_orders(&orders, &Scope::All, quiet, now()), ["AAPL", "MSFT", "ZM"]);
    let nvda_tsla = Scope::Symbols(["NVDA".to_owned(), "TSLA".to_owned()].into());
    assert!(working_orders(&orders, &nvda_tsla, quiet, now()).is_empty(), "resting and long-closed orders do not");
}

/// Issue 12 follow-up: `now - t <= quiet_for` is true for any future `t`, so an order
/// dated in the future (clock skew, a bad body) held its symbol "in flight" for ever, and
/// fix_state could never repair it; `settle` is bounded the same way.
#[test]
fn a_future_dated_order_does_not_settle_forever() {
    use crate::act::broker::fake::order;
    use crate::checks::position_match::settling_symbols;
    use crate::model::OrderSide;
    let mut skewed = order("1", "AAPL", OrderSide::Sell, 10);
    skewed.submitted_at = Some(now() + chrono::Duration::hours(6));
    let mut soon = order("2", "MSFT", OrderSide::Buy, 5);
    soon.submitted_at = Some(now() + chrono::Duration::seconds(10));
    let orders = [skewed, soon];
    let quiet = Duration::from_secs(30);
    assert_eq!(working_orders(&orders, &Scope::All, quiet, now()), ["MSFT"], "within quiet_for either side only");
    let names = |v: Vec<&crate::model::Symbol>| v.into_iter().map(ToString::to_string).collect::<Vec<_>>();
    assert_eq!(names(settling_symbols(&orders, quiet, now())), ["MSFT"]);
    // Once now has passed it by quiet_for, the near one is done too.
    let later = now() + chrono::Duration::seconds(41);
    assert!(working_orders(&orders, &Scope::All, quiet, later).is_empty());
}

/// A market order that filled a second ago is closed, never open: it counts as in flight
/// (and settles) for `quiet_for`, then not; a closed order long done never does.
#[test]
fn a_closed_order_filled_seconds_ago_is_in_flight() {
    use crate::act::broker::fake::order;
    use crate::checks::position_match::settling_symbols;
    use crate::model::OrderSide;
    let at = |secs: i64| Some(now() - chrono::Duration::seconds(secs));
    let mut just_filled = order("1", "TSLA", OrderSide::Buy, 4);
    (just_filled.status, just_filled.filled_qty, just_filled.submitted_at, just_filled.filled_at) =
        ("filled".into(), dec!(4), at(2), at(1));
    let mut long_done = order("2", "NVDA", OrderSide::Buy, 4);
    (long_done.status, long_done.submitted_at, long_done.filled_at) = ("filled".into(), at(3600), at(3600));
    let orders = [just_filled, long_done];
    let quiet = Duration::from_secs(30);
    assert_eq!(working_orders(&orders, &Scope::All, quiet, now()), ["TSLA"]);
    let names: Vec<String> = settling_symbols(&orders, quiet, now()).into_iter().map(ToString::to_string).collect();
    assert_eq!(names, ["TSLA"]);
    assert!(working_orders(&orders, &Scope::All, quiet, now() + chrono::Duration::seconds(60)).is_empty());
}

#[test]
fn a_folder_or_file_leading_out_of_the_bot_root_is_never_read_nor_written() {
    let broker = vec![position("AAPL", dec!(10))];
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("executor_state.json"), STATE).unwrap();
    std::fs::write(outside.path().join("position_metadata.json"), META).unwrap();

    // The state folder is a symlink to a folder elsewhere.
    let (d, b) = setup();
    std::fs::remove_dir_all(d.path().join("state")).unwrap();
    std::os::unix::fs::symlink(outside.path(), d.path().join("state")).unwrap();
    let e = plan_for(&b, &broker, &Scope::All).unwrap_err();
    assert!(e.contains("outside the bot root") && e.contains("refused"), "{e}");

    // The file is swapped for a link out of the root between planning and writing (same
    // content, so only the root check can tell).
    let (d, b) = setup();
    let state = d.path().join("state/executor_state.json");
    age(&state, 3600);
    age(&d.path().join("state/position_metadata.json"), 3600);
    let p = plan_for(&b, &broker, &Scope::All).unwrap();
    let w = write(&p, &d.path().join("backups"), Duration::from_secs(30), now(), &|| {
        std::fs::remove_file(&state).unwrap();
        std::os::unix::fs::symlink(outside.path().join("executor_state.json"), &state).unwrap();
    });
    assert!(matches!(&w, Written::Refused(e) if e.contains("outside the bot root")), "{w:?}");
    assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 2, "no temp file written outside the root");
    assert_eq!(std::fs::read_to_string(outside.path().join("executor_state.json")).unwrap(), STATE);
    assert!(std::fs::symlink_metadata(&state).unwrap().file_type().is_symlink(), "the link is left alone");
}

#[test]
fn a_symlink_inside_the_root_is_followed_and_kept() {
    let (d, b) = setup();
    let real = d.path().join("state/executor_state.v2.json");
    let link = d.path().join("state/executor_state.json");
    std::fs::rename(&link, &real).unwrap();
    std::os::unix::fs::symlink("executor_state.v2.json", &link).unwrap();
    age(&real, 3600);
    age(&d.path().join("state/position_metadata.json"), 3600);
    let p = plan_for(&b, &[position("AAPL", dec!(10))], &Scope::All).unwrap();
    assert_eq!(p.files[0].path, std::fs::canonicalize(&real).unwrap());
    let w = write(&p, &d.path().join("backups"), Duration::from_secs(30), now(), &|| {});
    assert!(matches!(&w, Written::Done(_)), "{w:?}");
    confirm(&p).unwrap();
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink(), "still a link");
    assert_eq!(std::fs::read_to_string(&real).unwrap(), p.files[0].after);
    assert_eq!(std::fs::read_to_string(&link).unwrap(), p.files[0].after);
}

/// Positions at `/opens` and metadata at `/metadata` of one file.
const ONE_FILE: &str = r#"{
  "opens": {
    "AAPL": {
      "qty": 10,
      "entry_price": 187.25
    },
    "MSFT": {
      "qty": 5,
      "entry_price": 412.3
    }
  },
  "metadata": {
    "AAPL": {
      "entry_score": 0.82
    },
    "MSFT": {
      "entry_score": 0.81
    }
  }
}
"#;

fn one_file_bot(root: &Path, metadata_file: &str) -> BotConfig {
    let mut b = bot(root);
    b.positions.source = BotSource::File("state/bot.json".into());
    b.metadata = Some(MetadataMapping { source: BotSource::File(metadata_file.into()), at: "/metadata".into() });
    b
}

/// Issue 12 §3c: with positions and metadata in one file, the metadata edit was computed
/// from the text as read and its write replaced the positions edit (lost update): MSFT,
/// sold at the broker, was back in the bot's positions after the fix.
#[test]
fn positions_and_metadata_in_one_file_keep_both_edits_not_the_last_one() {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(d.path().join("state")).unwrap();
    let file = d.path().join("state/bot.json");
    std::fs::write(&file, ONE_FILE).unwrap();
    age(&file, 3600);
    let b = one_file_bot(d.path(), "state/bot.json");
    let mut aapl = position("AAPL", dec!(10));
    aapl.avg_entry_price = Some(dec!(187.25));
    let p = plan_for(&b, &[aapl], &Scope::All).unwrap();
    assert_eq!(p.files.len(), 1, "one file, one write: {p:?}");
    assert_eq!(
        p.files[0].changes,
        ["remove MSFT (not held at the broker)", "metadata: remove MSFT (not held at the broker)"]
    );
    let backups = d.path().join("backups");
    let w = write(&p, &backups, Duration::from_secs(30), now(), &|| {});
    assert!(matches!(&w, Written::Done(log) if log.len() == 2), "one backup, one replacement: {w:?}");
    confirm(&p).unwrap();
    let after: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(after["opens"], json!({"AAPL": {"qty": 10, "entry_price": 187.25}}), "the positions edit");
    assert_eq!(after["metadata"], json!({"AAPL": {"entry_score": 0.82}}), "the metadata edit");
    assert_eq!(std::fs::read_dir(&backups).unwrap().count(), 1, "backed up once");
}

#[test]
fn a_metadata_name_linking_to_the_positions_file_is_one_file_and_hard_links_are_refused() {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(d.path().join("state")).unwrap();
    std::fs::write(d.path().join("state/bot.json"), ONE_FILE).unwrap();
    std::os::unix::fs::symlink("bot.json", d.path().join("state/meta.json")).unwrap();
    let b = one_file_bot(d.path(), "state/meta.json");
    let p = plan_for(&b, &[position("AAPL", dec!(10))], &Scope::All).unwrap();
    assert_eq!(p.files.len(), 1, "{p:?}");
    let after: Value = serde_json::from_str(&p.files[0].after).unwrap();
    assert!(after["opens"].get("MSFT").is_none() && after["metadata"].get("MSFT").is_none(), "{after}");

    std::fs::remove_file(d.path().join("state/meta.json")).unwrap();
    std::fs::hard_link(d.path().join("state/bot.json"), d.path().join("state/meta.json")).unwrap();
    let e = plan_for(&b, &[position("AAPL", dec!(10))], &Scope::All).unwrap_err();
    assert!(e.contains("one file under two names (hard links)"), "{e}");
}

#[test]
fn a_plan_writing_one_file_twice_is_refused_before_anything_is_written() {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(d.path().join("state")).unwrap();
    let file = d.path().join("state/bot.json");
    std::fs::write(&file, ONE_FILE).unwrap();
    age(&file, 3600);
    let b = one_file_bot(d.path(), "state/bot.json");
    let p = plan_for(&b, &[position("AAPL", dec!(10))], &Scope::All).unwrap();
    let mut twice = p.clone();
    let mut second = p.files[0].clone();
    second.rel = "state/meta.json".into();
    second.after = ONE_FILE.replace("0.82", "0.9");
    twice.files.push(second);
    let backups = d.path().join("backups");
    let w = write(&twice, &backups, Duration::from_secs(30), now(), &|| {});
    assert!(matches!(&w, Written::Refused(e) if e.contains("are the same file")), "{w:?}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), ONE_FILE);
    assert!(!backups.exists(), "nothing backed up");
}

fn mode_of(path: &Path) -> (u32, u32, u32) {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).unwrap();
    (m.uid(), m.gid(), m.mode() & 0o7777)
}

/// The bot's user (as root, where tests and CI run: another user; else our own).
fn bot_user() -> (u32, u32) {
    if rustix::process::geteuid().is_root() {
        (1234, 1234)
    } else {
        (rustix::process::geteuid().as_raw(), rustix::process::getegid().as_raw())
    }
}

fn own(path: &Path, (uid, gid): (u32, u32), mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::os::unix::fs::chown(path, Some(uid), Some(gid)).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Issue 12 §3d: fix_state replaced the bot's file (owned by the bot's user, 0640) with a
/// file owned by root: the bot could no longer read its own state.
#[test]
fn a_fixed_file_keeps_the_bots_owner_group_and_mode_and_its_backup_is_no_wider() {
    let (d, b) = setup();
    let state = d.path().join("state/executor_state.json");
    let meta = d.path().join("state/position_metadata.json");
    let user = bot_user();
    own(&state, user, 0o640);
    own(&meta, user, 0o604);
    age(&state, 3600);
    age(&meta, 3600);
    let backups = d.path().join("backups");
    let p = plan_for(&b, &[position("AAPL", dec!(10))], &Scope::All).unwrap();
    assert_eq!(p.files.len(), 2, "{p:?}");
    let w = write(&p, &backups, Duration::from_secs(30), now(), &|| {});
    assert!(matches!(&w, Written::Done(_)), "{w:?}");
    confirm(&p).unwrap();
    assert_eq!(mode_of(&state), (user.0, user.1, 0o640));
    assert_eq!(mode_of(&meta), (user.0, user.1, 0o604));
    for e in std::fs::read_dir(&backups).unwrap() {
        let (_, _, mode) = mode_of(&e.unwrap().path());
        assert_eq!(mode & 0o077, 0, "a backup is readable by tradewarden alone: {mode:04o}");
    }
    let leftovers = std::fs::read_dir(d.path().join("state")).unwrap().count();
    assert_eq!(leftovers, 2, "no temp files left");
}

#[test]
fn an_owner_or_mode_changed_since_reading_is_refused() {
    let (d, b) = setup();
    let state = d.path().join("state/executor_state.json");
    age(&state, 3600);
    age(&d.path().join("state/position_metadata.json"), 3600);
    let p = plan_for(&b, &[position("AAPL", dec!(10))], &Scope::All).unwrap();
    let w = write(&p, &d.path().join("backups"), Duration::from_secs(30), now(), &|| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o600)).unwrap();
    });
    assert!(matches!(&w, Written::Refused(e) if e.contains("mode")), "{w:?}");
    assert_eq!(std::fs::read_to_string(&state).unwrap(), STATE);
}

fn age(path: &Path, secs: u64) {
    let f = std::fs::File::options().write(true).open(path).unwrap();
    f.set_modified(SystemTime::now() - Duration::from_secs(secs)).unwrap();
}

#[test]
fn writes_with_a_backup_and_refuses_changed_or_busy_files() {
    let (d, b) = setup();
    let state = d.path().join("state/executor_state.json");
    age(&state, 3600);
    age(&d.path().join("state/position_metadata.json"), 3600);
    let backups = d.path().join("backups");
    let broker = vec![position("AAPL", dec!(10)), position("MSFT", dec!(5))];

    // Busy: modified within quiet_for.
    let p = plan_for(&b, &broker, &Scope::All).unwrap();
    assert!(
        matches!(write(&p, &backups, Duration::from_secs(7200), now(), &|| {}), Written::Refused(e) if e.contains("within quiet_for"))
    );

    // Changed between read and write.
    let w = write(&p, &backups, Duration::from_secs(30), now(), &|| {
        std::fs::write(&state, STATE.replace("\"5\"", "\"6\"")).unwrap();
    });
    assert!(matches!(&w, Written::Refused(e) if e.contains("changed since it was read")), "{w:?}");
    assert!(std::fs::read_to_string(&state).unwrap().contains("\"6\""), "the bot's write survives");
    assert!(!backups.exists() || std::fs::read_dir(&backups).unwrap().count() == 0, "no backup of a file not written");

    // Clean.
    std::fs::write(&state, STATE).unwrap();
    age(&state, 3600);
    let p = plan_for(&b, &broker, &Scope::All).unwrap();
    let w = write(&p, &backups, Duration::from_secs(30), now(), &|| {});
    assert!(matches!(&w, Written::Done(log) if log.len() == 2), "one file (NVDA has no metadata): {w:?}");
    confirm(&p).unwrap();
    assert_eq!(std::fs::read_to_string(&state).unwrap(), p.files[0].after);
    let saved: Vec<_> =
        std::fs::read_dir(&backups).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    assert!(saved.iter().any(|n| n.starts_with("executor_state.json.20261120T160000.000Z")), "{saved:?}");
    let backup = backups.join(saved.iter().find(|n| n.starts_with("executor_state")).unwrap());
    assert_eq!(std::fs::read_to_string(backup).unwrap(), STATE);
    let leftovers: Vec<_> =
        std::fs::read_dir(d.path().join("state")).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(leftovers.len(), 2, "no temp files left: {leftovers:?}");
}

#[test]
fn the_planner_edits_texts_and_never_touches_a_file() {
    // A root that does not exist: the planner is given the texts; it reads and writes nothing.
    let b = bot(Path::new("/nonexistent/bot"));
    // Two files: two inodes (one inode under two names is refused).
    let read = |rel: &str, text: &str, inode: u64| ReadFile {
        rel: rel.into(),
        path: b.root.join(rel),
        text: text.into(),
        stamp: Stamp {
            len: text.len() as u64,
            modified: SystemTime::UNIX_EPOCH,
            sha256: sha256_hex(text.as_bytes()),
            file_id: (1, inode),
            uid: 1000,
            gid: 1000,
            mode: 0o644,
        },
    };
    let template = Map::new();
    let broker = vec![position("AAPL", dec!(10)), position("NVDA", dec!(12))];
    let input =
        FixInput { bot: &b, root: &b.root, broker: &broker, scope: &Scope::All, template: &template, now: now() };
    let positions = || read("state/executor_state.json", STATE, 1);
    let p = plan_edits(&input, positions(), Some(Ok(read("state/position_metadata.json", META, 2)))).unwrap();
    assert_eq!(p.files[0].changes, ["remove MSFT (not held at the broker)", "set NVDA quantity 20 → 12"]);
    assert_eq!(p.files[0].before, STATE);
    assert_eq!(p.files[1].changes, ["remove MSFT (not held at the broker)", "add NVDA (from the template)"]);
    // The same plan as from the same texts on disk.
    let (_d, on_disk) = setup();
    assert_eq!(p.diff(), plan_for(&on_disk, &broker, &Scope::All).unwrap().diff());

    // A metadata file that could not be read refuses the fix, but a positions file that is
    // not understood is reported first.
    let unreadable = Some(Err("cannot read state/position_metadata.json".to_owned()));
    assert_eq!(
        plan_edits(&input, positions(), unreadable.clone()).unwrap_err(),
        "cannot read state/position_metadata.json"
    );
    let both = plan_edits(&input, read("state/executor_state.json", "{", 1), unreadable).unwrap_err();
    assert!(both.contains("not valid JSON"), "{both}");
    std::fs::write(on_disk.root.join("state/executor_state.json"), "{").unwrap();
    std::fs::remove_file(on_disk.root.join("state/position_metadata.json")).unwrap();
    let err = plan_for(&on_disk, &broker, &Scope::All).unwrap_err();
    assert!(err.contains("not valid JSON"), "{err}");
}
