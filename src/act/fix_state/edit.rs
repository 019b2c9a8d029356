//! The edit planner: the bot's files as read and the broker's positions in, the new texts
//! and one phrase per change out ([`plan_edits`]). Pure: no file I/O (that is
//! [`super::file`]). Edits are byte spans (`json_edit`), so every byte not changed stays as
//! the bot wrote it, and each edited text is checked against the intended value as parsed
//! JSON before it is planned.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, SecondsFormat, Utc};
use rust_decimal::Decimal;
use serde_json::{Map, Value};

use super::fix_plan::{FileFix, FixInput, FixPlan, ReadFile};
use super::json_edit::{self, Edit, Node, apply, child_style, render, splice_children, style_of};
use crate::collect::bot::state::positions_from_value;
use crate::config::{BotSource, MetadataMapping, PositionsMapping};
use crate::model::{FieldRef, Position, Side, TrackedPosition};
use crate::num::decimal_from_json;

/// Why `fix_state` cannot edit positions kept in a log.
#[must_use]
pub fn log_refusal(log: &str) -> String {
    format!(
        "the bot keeps its positions in the JSONL log `{log}` (its last record is the bot's view, the ordinis \
         layout); tradewarden does not edit a log: a log is the bot's history, and a rewritten or appended record \
         would be read as the bot's own. Stop the bot and let it re-sync its positions from the broker instead"
    )
}

/// Plans the fix from the files as read and the broker's positions: `positions`, and
/// `metadata` when a metadata file is configured (its text, or why it could not be read).
/// Pure: no file is read or written here.
///
/// # Errors
/// A refusal: positions kept in a log, a file not understood (no action on incomplete data),
/// the metadata file unreadable, or an edit that would not produce exactly the intended
/// change.
pub fn plan_edits(
    input: &FixInput<'_>,
    positions: ReadFile,
    metadata: Option<Result<ReadFile, String>>,
) -> Result<FixPlan, String> {
    if let BotSource::Log(log) = &input.bot.positions.source {
        return Err(log_refusal(log));
    }
    let mut out = FixPlan::default();
    let broker: BTreeMap<&str, &Position> = input.broker.iter().map(|p| (p.symbol.as_str(), p)).collect();
    let long_only_short = |p: &Position| input.bot.long_only && p.qty < Decimal::ZERO;
    let ReadFile { rel, path, text, stamp } = positions;
    let fixed = fix_positions(&text, &input.bot.positions, input, &broker, &mut out.notes)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let mut positions = FileFix {
        rel,
        root: input.root.to_path_buf(),
        path,
        stamp,
        after: text.clone(),
        before: text,
        changes: Vec::new(),
    };
    let mut metadata_fix = None;
    if let Some((after, changes)) = fixed {
        (positions.after, positions.changes) = (after, changes);
    }
    match &input.bot.metadata {
        Some(MetadataMapping { source: BotSource::Log(log), .. }) => {
            out.notes.push(format!("metadata is kept in the log `{log}`: not edited"));
        }
        Some(m @ MetadataMapping { source: BotSource::File(_), .. }) => {
            let ReadFile { rel: mrel, path: mpath, text: mtext, stamp: mstamp } =
                metadata.unwrap_or_else(|| Err("the metadata file was not read; not edited".into()))?;
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
                metadata_fix = fixed.map(|(after, changes)| FileFix {
                    rel: mrel,
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
    out.files.extend(metadata_fix);
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
pub(super) fn number_like(old: Option<(&str, &Value)>, new: Decimal) -> (String, Value) {
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
pub(super) fn side_word(old: &str, side: Side) -> String {
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
