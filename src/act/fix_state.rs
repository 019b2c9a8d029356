//! `fix_state` (and `tradewarden fix`): rewrite the bot's positions file, and its metadata
//! file when configured, to match the broker.
//!
//! What changes, for symbols in scope:
//! - an entry the bot tracks that the broker does not hold is removed (orphaned);
//! - a position the broker holds that the bot does not track is added: quantity and average
//!   entry price from the broker, every other field from `[actions.fix_state] template`
//!   (default `{ added_by = "tradewarden", added_at = "{now}" }`; `{now}` and `{symbol}` in
//!   strings are replaced);
//! - a tracked quantity that differs from the broker's is corrected (and the side field, when
//!   mapped and present, follows the sign in the bot's own words: long/short or buy/sell);
//! - metadata: entries for symbols the broker does not hold are removed, and symbols it holds
//!   without an entry get one from the template.
//!
//! For a long-only bot a short at the broker is never written into its state (it would tell
//! the bot it holds a position it must not hold): it is left as is, with a note to flatten it.
//!
//! What does not change: every other byte. The file is edited in place through byte spans
//! (`json_edit`): key order, indentation, untouched entries, number formats (`10`, `20.0`,
//! `"5"`: a corrected quantity is written in the type the bot used, with at least its decimal
//! places) stay as the bot wrote them. The edited text is then checked against the intended
//! change as parsed JSON; any difference refuses the fix.
//!
//! Writing is refused when the file changed since it was read (size, modification time or
//! SHA-256, or its owner, group, mode or inode), or was modified within `quiet_for` (the bot is
//! probably writing it). Each file is backed up to `state_dir/backups/<name>.<timestamp>` first
//! (0600, tradewarden's own: never readable by more than the original), then replaced
//! atomically (temp file in the same folder, created 0600, given the original's owner, group
//! and mode, fsync, one more unchanged-check, rename, fsync of the folder): the bot, running as
//! its own user, can still read and write its state. Positions kept in a JSONL log (the ordinis
//! layout) are refused: a log is the bot's history, not a state file.
//!
//! One file, one write: when positions and metadata live in the same file (one path, or a
//! symlink to it), the metadata edit is planned on the positions edit's result and the file is
//! backed up and replaced once; two writes planned from the text as read would each undo the
//! other. The same file under two names (hard links) is refused.
//!
//! Files are read and re-checked through the collectors' `open_in_root`: a state file, or a
//! folder on its path, that is a symlink leading out of `[bot].root` is refused, so a fix never
//! reads or writes outside the bot's directory. A symlink inside the root is followed: the
//! file it leads to is replaced, and the link is kept.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use chrono::{DateTime, SecondsFormat, Utc};
use rust_decimal::Decimal;
use serde_json::{Map, Value};

use super::json_edit::{self, Edit, Node, apply, child_style, render, splice_children, style_of};
use super::plan::{Plan, Scope, Step};
use crate::collect::bot::state::{MAX_STATE_BYTES, positions_from_value};
use crate::config::{BotConfig, BotSource, MetadataMapping, PositionsMapping};
use crate::model::{FieldRef, Order, Position, Side, TrackedPosition};
use crate::num::decimal_from_json;

/// What `fix_state` reads besides the files.
#[derive(Debug, Clone, Copy)]
pub struct FixInput<'a> {
    /// `[bot]`.
    pub bot: &'a BotConfig,
    /// The bot root.
    pub root: &'a Path,
    /// The broker's positions (fresh).
    pub broker: &'a [Position],
    /// Which symbols may change.
    pub scope: &'a Scope,
    /// `[actions.fix_state] template`.
    pub template: &'a Map<String, Value>,
    /// For `{now}` in the template.
    pub now: DateTime<Utc>,
}

/// A file as read: what the unchanged-check compares against, and the owner, group and mode
/// its replacement gets back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamp {
    /// Size in bytes.
    pub len: u64,
    /// Modification time.
    pub modified: SystemTime,
    /// SHA-256 of the content, hex.
    pub sha256: String,
    /// Device and inode: which file this is, whatever name (or hard link) led to it.
    pub file_id: (u64, u64),
    /// Owner uid.
    pub uid: u32,
    /// Group gid.
    pub gid: u32,
    /// Permission bits (with set-id and sticky bits, without the file type).
    pub mode: u32,
}

impl Stamp {
    fn of(bytes: &[u8], meta: &std::fs::Metadata, modified: SystemTime) -> Self {
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

/// One file's fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileFix {
    /// Relative to the bot root, as configured.
    pub rel: String,
    /// The bot root.
    pub root: PathBuf,
    /// Absolute, every symlink resolved (inside the root): the file replaced.
    pub path: PathBuf,
    /// As read.
    pub stamp: Stamp,
    /// The text as read.
    pub before: String,
    /// The text to write.
    pub after: String,
    /// One phrase per change.
    pub changes: Vec<String>,
}

/// Every file's fix, and what was left alone.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FixPlan {
    /// Files with changes (positions first).
    pub files: Vec<FileFix>,
    /// What was left alone and why.
    pub notes: Vec<String>,
}

impl FixPlan {
    /// Nothing to change.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// The unified diff of every file.
    #[must_use]
    pub fn diff(&self) -> String {
        self.files
            .iter()
            .map(|f| {
                similar::TextDiff::from_lines(&f.before, &f.after)
                    .unified_diff()
                    .context_radius(3)
                    .header(&format!("a/{}", f.rel), &format!("b/{}", f.rel))
                    .to_string()
            })
            .collect()
    }

    /// As plan steps.
    #[must_use]
    pub fn plan(&self) -> Plan {
        Plan {
            steps: self
                .files
                .iter()
                .map(|f| Step::WriteFile { file: f.rel.clone(), changes: f.changes.clone() })
                .collect(),
            notes: self.notes.clone(),
        }
    }
}

/// SHA-256 in hex.
#[must_use]
pub fn sha256_hex(bytes: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, bytes).as_ref().iter().map(|b| format!("{b:02x}")).collect()
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

/// Refused when the file was modified within `quiet_for` (or in the future).
///
/// # Errors
/// How recently.
pub fn check_quiet(f: &FileFix, quiet_for: Duration, now: SystemTime) -> Result<(), String> {
    match now.duration_since(f.stamp.modified) {
        Ok(age) if age >= quiet_for => Ok(()),
        Ok(age) => Err(format!(
            "{} was modified {} ago, within quiet_for ({}): the bot is probably writing it",
            f.path.display(),
            humantime::format_duration(Duration::from_secs(age.as_secs())),
            humantime::format_duration(quiet_for)
        )),
        Err(_) => Err(format!("{} has a modification time in the future; not touched", f.path.display())),
    }
}

/// Why `fix_state` cannot edit positions kept in a log.
#[must_use]
pub fn log_refusal(log: &str) -> String {
    format!(
        "the bot keeps its positions in the JSONL log `{log}` (its last record is the bot's view, the ordinis \
         layout); tradewarden does not edit a log: a log is the bot's history, and a rewritten or appended record \
         would be read as the bot's own. Stop the bot and let it re-sync its positions from the broker instead"
    )
}

/// The symbols in scope with an open order that is partly filled, undated or changed within
/// `quiet_for` of `now`, or a closed order (give it the recently closed ones too) whose last
/// activity is within `quiet_for`: a fill the bot may be recording at this moment, so its files
/// are not to be rewritten yet. Sorted, each once.
#[must_use]
pub fn working_orders(orders: &[Order], scope: &Scope, quiet_for: Duration, now: DateTime<Utc>) -> Vec<String> {
    let quiet = chrono::Duration::from_std(quiet_for).unwrap_or(chrono::Duration::MAX);
    // Bounded both sides: an order dated in the future (clock skew, a bad body) holds the fix
    // back for at most `quiet_for` past now, not for ever.
    let recent = |o: &Order| o.last_activity().is_some_and(|t| crate::checks::position_match::within(now, t, quiet));
    let mut symbols: Vec<String> = orders
        .iter()
        .filter(|o| scope.contains(o.symbol.as_str()))
        .filter(|o| {
            if o.is_open() {
                // Open: filling, undated (cannot tell) or recently changed.
                o.filled_qty > Decimal::ZERO || o.last_activity().is_none() || recent(o)
            } else {
                // Closed (filled, canceled...): only while its last activity is recent; a market
                // order that filled a second ago is the fill the bot is recording right now.
                recent(o)
            }
        })
        .map(|o| o.symbol.to_string())
        .collect();
    symbols.sort();
    symbols.dedup();
    symbols
}

/// Plans the fix from the files as they are now and the broker's positions.
///
/// # Errors
/// A refusal: positions kept in a log, a file missing or not understood (no action on
/// incomplete data), or an edit that would not produce exactly the intended change.
pub fn plan(input: &FixInput<'_>) -> Result<FixPlan, String> {
    let rel = match &input.bot.positions.source {
        BotSource::Log(log) => return Err(log_refusal(log)),
        BotSource::File(rel) => rel,
    };
    let mut out = FixPlan::default();
    let broker: BTreeMap<&str, &Position> = input.broker.iter().map(|p| (p.symbol.as_str(), p)).collect();
    let long_only_short = |p: &Position| input.bot.long_only && p.qty < Decimal::ZERO;
    let (path, text, stamp) = read_stamped(input.root, &input.root.join(rel))?;
    let fixed = fix_positions(&text, &input.bot.positions, input, &broker, &mut out.notes)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let mut positions = FileFix {
        rel: rel.display().to_string(),
        root: input.root.to_path_buf(),
        path,
        stamp,
        after: text.clone(),
        before: text,
        changes: Vec::new(),
    };
    if let Some((after, changes)) = fixed {
        (positions.after, positions.changes) = (after, changes);
    }
    let mut metadata = None;
    match &input.bot.metadata {
        Some(MetadataMapping { source: BotSource::Log(log), .. }) => {
            out.notes.push(format!("metadata is kept in the log `{log}`: not edited"));
        }
        Some(m @ MetadataMapping { source: BotSource::File(mrel), .. }) => {
            let (mpath, mtext, mstamp) = read_stamped(input.root, &input.root.join(mrel))?;
            let keep: BTreeSet<&str> = broker.iter().filter(|(_, p)| !long_only_short(p)).map(|(s, _)| *s).collect();
            let shown = mpath.display().to_string();
            if mpath == positions.path {
                // Positions and metadata in one file (or two names linking to one file): one
                // text, one write. The metadata edit is planned on the positions edit's result;
                // planned on the text as read, its write would undo the positions edit.
                let fixed = fix_metadata(&positions.after, m, input, &broker, &keep)
                    .map_err(|e| format!("{shown} (metadata): {e}"))?;
                if let Some((after, changes)) = fixed {
                    positions.after = after;
                    positions.changes.extend(changes.into_iter().map(|c| format!("metadata: {c}")));
                }
            } else if mstamp.file_id == positions.stamp.file_id {
                return Err(format!(
                    "{} and {} are one file under two names (hard links): replacing it under one name \
                     would leave the other with the old content; not edited",
                    positions.path.display(),
                    mpath.display()
                ));
            } else {
                let fixed = fix_metadata(&mtext, m, input, &broker, &keep).map_err(|e| format!("{shown}: {e}"))?;
                metadata = fixed.map(|(after, changes)| FileFix {
                    rel: mrel.display().to_string(),
                    root: input.root.to_path_buf(),
                    path: mpath,
                    stamp: mstamp,
                    before: mtext,
                    after,
                    changes,
                });
            }
        }
        None => {}
    }
    if !positions.changes.is_empty() {
        out.files.push(positions);
    }
    out.files.extend(metadata);
    Ok(out)
}

/// The template with `{now}` and `{symbol}` replaced in strings.
fn template_fields(template: &Map<String, Value>, symbol: &str, now: DateTime<Utc>) -> Vec<(String, Value)> {
    let now = now.to_rfc3339_opts(SecondsFormat::Secs, true);
    let default: Map<String, Value>;
    let t = if template.is_empty() {
        default = [("added_by".to_owned(), Value::from("tradewarden")), ("added_at".to_owned(), Value::from("{now}"))]
            .into_iter()
            .collect();
        &default
    } else {
        template
    };
    fn subst(v: &Value, symbol: &str, now: &str) -> Value {
        match v {
            Value::String(s) => Value::String(s.replace("{now}", now).replace("{symbol}", symbol)),
            Value::Array(a) => Value::Array(a.iter().map(|v| subst(v, symbol, now)).collect()),
            Value::Object(o) => Value::Object(o.iter().map(|(k, v)| (k.clone(), subst(v, symbol, now))).collect()),
            other => other.clone(),
        }
    }
    // The default template lists `added_by` first.
    let mut fields: Vec<(String, Value)> = t.iter().map(|(k, v)| (k.clone(), subst(v, symbol, &now))).collect();
    if template.is_empty() {
        fields.sort_by_key(|(k, _)| k != "added_by");
    }
    fields
}

/// A decimal in the JSON type and precision the bot used for the old value.
fn number_like(old: Option<(&str, &Value)>, new: Decimal) -> (String, Value) {
    let mut d = new.normalize();
    let old_scale = old.and_then(|(text, _)| {
        let t = text.trim_matches('"');
        if t.contains(['e', 'E']) { None } else { t.split_once('.').map(|(_, f)| f.len()) }
    });
    if let Some(s) = old_scale
        && u32::try_from(s).is_ok_and(|s| s > d.scale())
    {
        d.rescale(u32::try_from(s).unwrap_or(0));
    }
    let digits = d.to_string();
    let as_string = old.is_some_and(|(_, v)| v.is_string());
    let text = if as_string { serde_json::to_string(&digits).unwrap_or_default() } else { digits };
    let value = serde_json::from_str(&text).unwrap_or(Value::Null);
    (text, value)
}

/// The side in the bot's own words and case.
fn side_word(old: &str, side: Side) -> String {
    let lower = old.trim().to_ascii_lowercase();
    let word = match (lower.as_str(), side) {
        ("buy" | "sell", Side::Long) => "buy",
        ("buy" | "sell", Side::Short) => "sell",
        (_, Side::Long) => "long",
        (_, Side::Short) => "short",
    };
    if old.chars().any(char::is_lowercase) || old.is_empty() { word.to_owned() } else { word.to_ascii_uppercase() }
}

fn field_node<'n>(entry: &'n Node, f: &FieldRef) -> Option<&'n Node> {
    match f {
        FieldRef::Name(n) => entry.get(n),
        FieldRef::Pointer(p) => entry.pointer(p),
    }
}

fn field_value<'v>(entry: &'v Value, f: &FieldRef) -> Option<&'v Value> {
    f.get(entry)
}

/// Sets a field (name or pointer) in a JSON object, creating objects along a pointer.
fn set_field(obj: &mut Value, f: &FieldRef, v: Value) {
    match f {
        FieldRef::Name(n) => {
            if let Some(o) = obj.as_object_mut() {
                o.insert(n.clone(), v);
            }
        }
        FieldRef::Pointer(p) => {
            let tokens: Vec<String> =
                p.trim_start_matches('/').split('/').map(|t| t.replace("~1", "/").replace("~0", "~")).collect();
            let mut cur = obj;
            for (i, t) in tokens.iter().enumerate() {
                let Some(o) = cur.as_object_mut() else { return };
                if i + 1 == tokens.len() {
                    o.insert(t.clone(), v);
                    return;
                }
                cur = o.entry(t.clone()).or_insert_with(|| Value::Object(Map::new()));
            }
        }
    }
}

/// The entry's fields for a new position, in this order: symbol (array form), qty, entry
/// price, side, then the template (fields the mapping writes win over the template's).
fn new_entry(
    m: &PositionsMapping,
    p: &Position,
    array_form: bool,
    strings: (bool, bool),
    input: &FixInput<'_>,
) -> Vec<(String, Value)> {
    let mut obj = Value::Object(Map::new());
    let mut order: Vec<String> = Vec::new();
    let mut put = |obj: &mut Value, f: &FieldRef, v: Value| {
        let top = match f {
            FieldRef::Name(n) => n.clone(),
            FieldRef::Pointer(p) => {
                p.trim_start_matches('/').split('/').next().unwrap_or("").replace("~1", "/").replace("~0", "~")
            }
        };
        if !order.contains(&top) {
            order.push(top);
        }
        set_field(obj, f, v);
    };
    if array_form {
        put(&mut obj, &m.symbol, Value::from(p.symbol.as_str()));
    }
    let qty = if m.side.is_some() { p.qty.abs() } else { p.qty };
    let qty_text = qty.normalize().to_string();
    put(
        &mut obj,
        &m.qty,
        if strings.0 { Value::from(qty_text.clone()) } else { serde_json::from_str(&qty_text).unwrap_or(Value::Null) },
    );
    if let (Some(f), Some(price)) = (&m.entry_price, p.avg_entry_price) {
        let t = price.normalize().to_string();
        put(
            &mut obj,
            f,
            if strings.1 { Value::from(t.clone()) } else { serde_json::from_str(&t).unwrap_or(Value::Null) },
        );
    }
    if let Some(f) = &m.side {
        put(&mut obj, f, Value::from(p.side.as_str()));
    }
    let mut fields: Vec<(String, Value)> = Vec::new();
    let map = obj.as_object().cloned().unwrap_or_default();
    for k in order {
        if let Some(v) = map.get(&k) {
            fields.push((k, v.clone()));
        }
    }
    for (k, v) in template_fields(input.template, p.symbol.as_str(), input.now) {
        if !fields.iter().any(|(f, _)| *f == k) {
            fields.push((k, v));
        }
    }
    fields
}

/// The positions container's children by symbol: index, entry node, entry value.
struct Entries<'a> {
    array_form: bool,
    by_symbol: BTreeMap<String, (usize, &'a Node, &'a Value)>,
}

fn entries<'a>(container: &'a Node, value: &'a Value, m: &PositionsMapping) -> Result<Entries<'a>, String> {
    let mut by_symbol = BTreeMap::new();
    match (&container.kind, value) {
        (json_edit::Kind::Object(members), Value::Object(map)) => {
            if container.has_duplicate_keys() {
                return Err("an entry appears twice (duplicate key); not edited".into());
            }
            for (i, mem) in members.iter().enumerate() {
                let v = map.get(&mem.key).ok_or("the file changed shape while being read")?;
                by_symbol.insert(mem.key.clone(), (i, &mem.value, v));
            }
            Ok(Entries { array_form: false, by_symbol })
        }
        (json_edit::Kind::Array(items), Value::Array(values)) => {
            for (i, (node, v)) in items.iter().zip(values).enumerate() {
                if let Some(Value::String(s)) = m.symbol.get(v) {
                    by_symbol.insert(s.clone(), (i, node, v));
                }
            }
            Ok(Entries { array_form: true, by_symbol })
        }
        _ => Err("the positions value is neither an object keyed by symbol nor an array".into()),
    }
}

/// The positions file's new text and its changes; `None` when nothing changes.
fn fix_positions(
    text: &str,
    m: &PositionsMapping,
    input: &FixInput<'_>,
    broker: &BTreeMap<&str, &Position>,
    notes: &mut Vec<String>,
) -> Result<Option<(String, Vec<String>)>, String> {
    let value: Value = serde_json::from_str(text).map_err(|e| format!("not valid JSON ({e}); not edited"))?;
    let at_value = value.pointer(&m.at).ok_or_else(|| format!("pointer `{}` not found", m.at))?;
    let tracked: Vec<TrackedPosition> =
        positions_from_value(at_value, m, "the file").map_err(|e| format!("not understood ({e}); not edited"))?;
    let root = json_edit::parse(text)?;
    let container = root.pointer(&m.at).ok_or_else(|| format!("pointer `{}` not found", m.at))?;
    let ents = entries(container, at_value, m)?;
    let tracked: BTreeMap<&str, &TrackedPosition> = tracked.iter().map(|t| (t.symbol.as_str(), t)).collect();

    let mut edits: Vec<Edit> = Vec::new();
    let mut remove: Vec<usize> = Vec::new();
    let mut append: Vec<String> = Vec::new();
    let mut changes: Vec<String> = Vec::new();
    // The intended result, to check the spliced text against.
    let mut expected = value.clone();
    let mut expect_removed: Vec<String> = Vec::new();
    let mut expect_set: Vec<(String, FieldRef, Value)> = Vec::new();
    let mut expect_added: Vec<(String, Value)> = Vec::new();

    let style = style_of(text, container);
    let entry_style = child_style(text, container);
    // New entries write each number in the type most entries use for it (numbers on a tie).
    let strings = |f: Option<&FieldRef>| {
        f.is_some_and(|f| {
            let (mut s, mut n) = (0, 0);
            for (_, _, v) in ents.by_symbol.values() {
                match field_value(v, f) {
                    Some(Value::String(_)) => s += 1,
                    Some(Value::Number(_)) => n += 1,
                    _ => {}
                }
            }
            s > n
        })
    };
    let string_style = (strings(Some(&m.qty)), strings(m.entry_price.as_ref()));

    let symbols: BTreeSet<&str> = tracked.keys().chain(broker.keys()).copied().collect();
    for sym in symbols {
        if !input.scope.contains(sym) {
            continue;
        }
        match (tracked.get(sym), broker.get(sym)) {
            (Some(_), None) => {
                let (idx, _, _) = *ents.by_symbol.get(sym).ok_or("an entry vanished")?;
                remove.push(idx);
                changes.push(format!("remove {sym} (not held at the broker)"));
                expect_removed.push(sym.to_owned());
            }
            (tracked, Some(p)) if input.bot.long_only && p.qty < Decimal::ZERO => {
                notes.push(format!(
                    "{sym} is short {} at the broker: not written into a long-only bot's state{}; flatten it first",
                    p.qty,
                    if tracked.is_some() { " (its entry is left as is)" } else { "" }
                ));
            }
            (None, Some(p)) => {
                let fields = new_entry(m, p, ents.array_form, string_style, input);
                let rendered = render(&fields, &entry_style);
                let entry_value = Value::Object(fields.iter().cloned().collect());
                if ents.array_form {
                    append.push(rendered);
                } else {
                    let key = serde_json::to_string(sym).unwrap_or_default();
                    append.push(format!("{key}{}{rendered}", style.colon));
                }
                changes.push(format!(
                    "add {sym} {}{} (untracked)",
                    p.qty.normalize(),
                    p.avg_entry_price.map(|e| format!(" @ {}", e.normalize())).unwrap_or_default()
                ));
                expect_added.push((sym.to_owned(), entry_value));
            }
            (Some(t), Some(p)) if t.qty != p.qty => {
                let (_, node, v) = *ents.by_symbol.get(sym).ok_or("an entry vanished")?;
                let side_node = m.side.as_ref().and_then(|f| field_node(node, f).map(|n| (f, n)));
                let old_qty_value = field_value(v, &m.qty).ok_or("a quantity field vanished")?;
                let old_qty_node = field_node(node, &m.qty).ok_or("a quantity field vanished")?;
                let old_text = &text[old_qty_node.start..old_qty_node.end];
                let signed_in_file = decimal_from_json(old_qty_value).is_ok_and(|q| q < Decimal::ZERO);
                let write_qty = if side_node.is_some() && !signed_in_file { p.qty.abs() } else { p.qty };
                let (new_text, new_value) = number_like(Some((old_text, old_qty_value)), write_qty);
                edits.push(Edit { start: old_qty_node.start, end: old_qty_node.end, text: new_text });
                expect_set.push((sym.to_owned(), m.qty.clone(), new_value));
                let mut change = format!("set {sym} quantity {} → {}", t.qty.normalize(), p.qty.normalize());
                if let Some((f, sn)) = side_node
                    && let Some(Value::String(old_side)) = field_value(v, f)
                {
                    let word = side_word(old_side, p.side);
                    if word != *old_side {
                        edits.push(Edit {
                            start: sn.start,
                            end: sn.end,
                            text: serde_json::to_string(&word).unwrap_or_default(),
                        });
                        expect_set.push((sym.to_owned(), f.clone(), Value::String(word.clone())));
                        change.push_str(&format!(", side {old_side} → {word}"));
                    }
                }
                changes.push(change);
            }
            _ => {}
        }
    }
    if changes.is_empty() {
        return Ok(None);
    }
    remove.sort_unstable();
    edits.extend(splice_children(text, container, &remove, &append)?);
    let after = apply(text, edits)?;

    // Check: the edited text is exactly the intended value.
    let target = expected.pointer_mut(&m.at).ok_or("pointer vanished")?;
    match target {
        Value::Object(map) => {
            for s in &expect_removed {
                map.remove(s);
            }
            for (s, f, v) in &expect_set {
                if let Some(e) = map.get_mut(s) {
                    set_field(e, f, v.clone());
                }
            }
            for (s, v) in &expect_added {
                map.insert(s.clone(), v.clone());
            }
        }
        Value::Array(items) => {
            let sym_of = |v: &Value| m.symbol.get(v).and_then(Value::as_str).map(str::to_owned);
            items.retain(|v| sym_of(v).is_none_or(|s| !expect_removed.contains(&s)));
            for (s, f, v) in &expect_set {
                if let Some(e) = items.iter_mut().find(|e| sym_of(e).as_deref() == Some(s)) {
                    set_field(e, f, v.clone());
                }
            }
            items.extend(expect_added.iter().map(|(_, v)| v.clone()));
        }
        _ => return Err("the positions value changed type".into()),
    }
    verify(&after, &expected)?;
    Ok(Some((after, changes)))
}

fn verify(after: &str, expected: &Value) -> Result<(), String> {
    let got: Value =
        serde_json::from_str(after).map_err(|e| format!("the edited text is not JSON ({e}); not written"))?;
    if got == *expected {
        Ok(())
    } else {
        Err("the edited text does not match the intended change; not written".into())
    }
}

/// The metadata file's new text and its changes.
fn fix_metadata(
    text: &str,
    m: &MetadataMapping,
    input: &FixInput<'_>,
    broker: &BTreeMap<&str, &Position>,
    keep: &BTreeSet<&str>,
) -> Result<Option<(String, Vec<String>)>, String> {
    let value: Value = serde_json::from_str(text).map_err(|e| format!("not valid JSON ({e}); not edited"))?;
    let Some(Value::Object(map)) = value.pointer(&m.at) else {
        return Err(format!("the value at `{}` is not an object keyed by symbol; not edited", m.at));
    };
    let root = json_edit::parse(text)?;
    let container = root.pointer(&m.at).ok_or_else(|| format!("pointer `{}` not found", m.at))?;
    if container.has_duplicate_keys() {
        return Err("a symbol appears twice (duplicate key); not edited".into());
    }
    let members = container.members().ok_or("not an object")?;
    let style = style_of(text, container);
    let entry_style = child_style(text, container);
    let mut remove = Vec::new();
    let mut append = Vec::new();
    let mut changes = Vec::new();
    let mut expected = value.clone();
    let target = expected.pointer_mut(&m.at).and_then(Value::as_object_mut).ok_or("pointer vanished")?;
    for (i, mem) in members.iter().enumerate() {
        if input.scope.contains(&mem.key) && !broker.contains_key(mem.key.as_str()) {
            remove.push(i);
            changes.push(format!("remove {} (not held at the broker)", mem.key));
            target.remove(&mem.key);
        }
    }
    for sym in keep {
        if input.scope.contains(sym) && !map.contains_key(*sym) {
            let fields = template_fields(input.template, sym, input.now);
            let key = serde_json::to_string(sym).unwrap_or_default();
            append.push(format!("{key}{}{}", style.colon, render(&fields, &entry_style)));
            changes.push(format!("add {sym} (from the template)"));
            target.insert((*sym).to_owned(), Value::Object(fields.into_iter().collect()));
        }
    }
    if changes.is_empty() {
        return Ok(None);
    }
    let after = apply(text, splice_children(text, container, &remove, &append)?)?;
    verify(&after, &expected)?;
    Ok(Some((after, changes)))
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

#[cfg(test)]
mod tests {
    use rust_decimal::dec;
    use serde_json::json;

    use super::*;
    use crate::act::broker::fake::position;
    use crate::config::MetadataMapping;

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
        assert!(
            !backups.exists() || std::fs::read_dir(&backups).unwrap().count() == 0,
            "no backup of a file not written"
        );

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
}
