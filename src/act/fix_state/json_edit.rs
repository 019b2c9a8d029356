//! Editing a bot's JSON file in place: parse it into byte spans, then splice only what
//! changes (a value replaced, members removed, members appended), so every other byte stays as
//! the bot wrote it: key order, indentation, number formats (`10`, `20.0`, `"5"`), escapes.
//!
//! The parser only locates spans; `serde_json` decides validity (a caller parses the text
//! with it first), and callers check the edited text against the intended value.

use std::fmt::Write as _;

use serde_json::Value;

/// A JSON value and where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// First byte.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
    /// What it is.
    pub kind: Kind,
}

/// Containers keep their children; scalars only their span.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// An object's members, in file order.
    Object(Vec<Member>),
    /// An array's elements.
    Array(Vec<Node>),
    /// A string, number, boolean or null.
    Scalar,
}

/// One `"key": value` of an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The decoded key.
    pub key: String,
    /// The key's opening quote.
    pub key_start: usize,
    /// One past the key's closing quote.
    pub key_end: usize,
    /// The value.
    pub value: Node,
}

/// Deeper nesting is refused (no bot state is this deep; it bounds recursion).
const MAX_DEPTH: usize = 128;

/// Parses `text` (valid JSON) into spans.
///
/// # Errors
/// When it is not JSON this parser understands.
pub fn parse(text: &str) -> Result<Node, String> {
    let mut p = Parser { b: text.as_bytes(), text, i: 0 };
    p.ws();
    let node = p.value(0)?;
    p.ws();
    if p.i != p.b.len() {
        return Err(format!("trailing characters at byte {}", p.i));
    }
    Ok(node)
}

struct Parser<'a> {
    b: &'a [u8],
    text: &'a str,
    i: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.i < self.b.len() && matches!(self.b[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }

    fn expect(&mut self, c: u8) -> Result<(), String> {
        if self.b.get(self.i) == Some(&c) {
            self.i += 1;
            Ok(())
        } else {
            Err(format!("expected `{}` at byte {}", c as char, self.i))
        }
    }

    fn value(&mut self, depth: usize) -> Result<Node, String> {
        if depth > MAX_DEPTH {
            return Err(format!("nested deeper than {MAX_DEPTH} levels"));
        }
        let start = self.i;
        match self.b.get(self.i) {
            Some(b'{') => {
                self.i += 1;
                let mut members = Vec::new();
                self.ws();
                if self.b.get(self.i) == Some(&b'}') {
                    self.i += 1;
                } else {
                    loop {
                        self.ws();
                        let key_start = self.i;
                        self.string()?;
                        let key_end = self.i;
                        let key: String = serde_json::from_str(&self.text[key_start..key_end])
                            .map_err(|e| format!("bad key at byte {key_start}: {e}"))?;
                        self.ws();
                        self.expect(b':')?;
                        self.ws();
                        let value = self.value(depth + 1)?;
                        members.push(Member { key, key_start, key_end, value });
                        self.ws();
                        match self.b.get(self.i) {
                            Some(b',') => self.i += 1,
                            Some(b'}') => {
                                self.i += 1;
                                break;
                            }
                            _ => return Err(format!("expected `,` or `}}` at byte {}", self.i)),
                        }
                    }
                }
                Ok(Node { start, end: self.i, kind: Kind::Object(members) })
            }
            Some(b'[') => {
                self.i += 1;
                let mut items = Vec::new();
                self.ws();
                if self.b.get(self.i) == Some(&b']') {
                    self.i += 1;
                } else {
                    loop {
                        self.ws();
                        items.push(self.value(depth + 1)?);
                        self.ws();
                        match self.b.get(self.i) {
                            Some(b',') => self.i += 1,
                            Some(b']') => {
                                self.i += 1;
                                break;
                            }
                            _ => return Err(format!("expected `,` or `]` at byte {}", self.i)),
                        }
                    }
                }
                Ok(Node { start, end: self.i, kind: Kind::Array(items) })
            }
            Some(b'"') => {
                self.string()?;
                Ok(Node { start, end: self.i, kind: Kind::Scalar })
            }
            Some(_) => {
                while self.i < self.b.len()
                    && !matches!(self.b[self.i], b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r')
                {
                    self.i += 1;
                }
                if self.i == start {
                    return Err(format!("expected a value at byte {start}"));
                }
                Ok(Node { start, end: self.i, kind: Kind::Scalar })
            }
            None => Err("unexpected end of text".into()),
        }
    }

    fn string(&mut self) -> Result<(), String> {
        self.expect(b'"')?;
        while let Some(&c) = self.b.get(self.i) {
            self.i += 1;
            match c {
                b'\\' => self.i += 1,
                b'"' => return Ok(()),
                _ => {}
            }
        }
        Err("unterminated string".into())
    }
}

impl Node {
    /// The members, when an object.
    #[must_use]
    pub fn members(&self) -> Option<&[Member]> {
        match &self.kind {
            Kind::Object(m) => Some(m),
            _ => None,
        }
    }

    /// The elements, when an array.
    #[must_use]
    pub fn items(&self) -> Option<&[Node]> {
        match &self.kind {
            Kind::Array(v) => Some(v),
            _ => None,
        }
    }

    /// A member's value by key (the last one, as serde_json reads duplicates).
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.members()?.iter().rev().find(|m| m.key == key).map(|m| &m.value)
    }

    /// The node at an RFC 6901 pointer (`""` is this node).
    #[must_use]
    pub fn pointer(&self, pointer: &str) -> Option<&Self> {
        if pointer.is_empty() {
            return Some(self);
        }
        let mut node = self;
        for raw in pointer.strip_prefix('/')?.split('/') {
            let token = raw.replace("~1", "/").replace("~0", "~");
            node = match &node.kind {
                Kind::Object(_) => node.get(&token)?,
                Kind::Array(items) => items.get(token.parse::<usize>().ok()?)?,
                Kind::Scalar => return None,
            };
        }
        Some(node)
    }

    /// Whether an object has a key more than once.
    #[must_use]
    pub fn has_duplicate_keys(&self) -> bool {
        let Some(m) = self.members() else { return false };
        let mut seen = std::collections::HashSet::new();
        m.iter().any(|m| !seen.insert(m.key.as_str()))
    }
}

/// One splice: replace `start..end` with `text`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edit {
    /// First byte replaced.
    pub start: usize,
    /// One past the last byte replaced (`start` for an insertion).
    pub end: usize,
    /// The new text.
    pub text: String,
}

/// Applies non-overlapping edits.
///
/// # Errors
/// When two edits overlap.
pub fn apply(text: &str, mut edits: Vec<Edit>) -> Result<String, String> {
    // Back to front, so earlier offsets stay valid; at one offset, the removal before the
    // insertion (an insertion at a removal's start must survive it).
    edits.sort_by_key(|e| std::cmp::Reverse((e.start, e.end)));
    let mut out = text.to_owned();
    let mut floor = usize::MAX;
    for e in edits {
        if e.end > floor || e.start > e.end || e.end > text.len() {
            return Err(format!("overlapping or invalid edits at bytes {}..{}", e.start, e.end));
        }
        out.replace_range(e.start..e.end, &e.text);
        floor = e.start;
    }
    Ok(out)
}

/// The layout of a container, learned from the file so appended members look like the rest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Style {
    /// Between the opening bracket and the first child (`"\n    "`), or `""` when compact.
    pub lead: String,
    /// Between a key and its value (`": "`).
    pub colon: String,
    /// One level of indentation (`"  "`), for values written across lines.
    pub unit: String,
    /// The indentation of children (`"    "`).
    pub indent: String,
    /// Between the last child and the closing bracket (`"\n  "`).
    pub trail: String,
    /// Between two children (`",\n    "` or `","`).
    pub sep: String,
}

impl Style {
    /// Whether children sit on their own lines.
    #[must_use]
    pub fn pretty(&self) -> bool {
        self.lead.contains('\n')
    }
}

/// The indentation of the line `pos` is on.
fn line_indent(text: &str, pos: usize) -> String {
    let line_start = text[..pos].rfind('\n').map_or(0, |i| i + 1);
    text[line_start..].chars().take_while(|c| *c == ' ' || *c == '\t').collect()
}

/// Learns the style of a container (object or array). An empty container in a multi-line
/// document gets the document's indentation unit.
#[must_use]
pub fn style_of(text: &str, node: &Node) -> Style {
    let first_start = match &node.kind {
        Kind::Object(m) => m.first().map(|m| m.key_start),
        Kind::Array(v) => v.first().map(|n| n.start),
        Kind::Scalar => None,
    };
    let last_end = match &node.kind {
        Kind::Object(m) => m.last().map(|m| m.value.end),
        Kind::Array(v) => v.last().map(|n| n.end),
        Kind::Scalar => None,
    };
    let colon = node
        .members()
        .and_then(|m| m.first())
        .map_or_else(|| ": ".to_owned(), |m| text[m.key_end..m.value.start].to_owned());
    let second = match &node.kind {
        Kind::Object(m) if m.len() > 1 => Some((m[0].value.end, m[1].key_start)),
        Kind::Array(v) if v.len() > 1 => Some((v[0].end, v[1].start)),
        _ => None,
    };
    let own = line_indent(text, node.start);
    match (first_start, last_end) {
        (Some(f), Some(l)) => {
            let lead = text[node.start + 1..f].to_owned();
            let trail = text[l..node.end - 1].to_owned();
            let indent: String = lead.rsplit('\n').next().unwrap_or("").to_owned();
            let unit = indent.strip_prefix(own.as_str()).filter(|u| !u.is_empty()).unwrap_or("  ").to_owned();
            let sep = match second {
                Some((a, b)) => text[a..b].to_owned(),
                None if lead.contains('\n') => format!(",\n{indent}"),
                None => ",".to_owned(),
            };
            Style { lead, colon, unit, indent, trail, sep }
        }
        _ => {
            if text.contains('\n') {
                let unit = document_unit(text);
                let indent = format!("{own}{unit}");
                let sep = format!(",\n{indent}");
                Style { lead: format!("\n{indent}"), colon, unit, indent, trail: format!("\n{own}"), sep }
            } else {
                Style {
                    lead: String::new(),
                    colon,
                    unit: String::new(),
                    indent: String::new(),
                    trail: String::new(),
                    sep: ",".into(),
                }
            }
        }
    }
}

/// The smallest non-empty indentation of any line: the document's unit.
fn document_unit(text: &str) -> String {
    text.lines()
        .map(|l| l.chars().take_while(|c| *c == ' ' || *c == '\t').collect::<String>())
        .filter(|s| !s.is_empty())
        .min_by_key(String::len)
        .unwrap_or_else(|| "  ".to_owned())
}

/// The style of the children of `container` (for a new entry that should look like its
/// siblings): the first child object's own style, else one level deeper than the container.
#[must_use]
pub fn child_style(text: &str, container: &Node) -> Style {
    let first_object = match &container.kind {
        Kind::Object(m) => m.iter().map(|m| &m.value).find(|v| v.members().is_some_and(|m| !m.is_empty())),
        Kind::Array(v) => v.iter().find(|v| v.members().is_some_and(|m| !m.is_empty())),
        Kind::Scalar => None,
    };
    if let Some(obj) = first_object {
        return style_of(text, obj);
    }
    let outer = style_of(text, container);
    if outer.pretty() {
        let indent = format!("{}{}", outer.indent, outer.unit);
        Style {
            lead: format!("\n{indent}"),
            colon: outer.colon.clone(),
            unit: outer.unit.clone(),
            sep: format!(",\n{indent}"),
            trail: format!("\n{}", outer.indent),
            indent,
        }
    } else {
        Style { lead: String::new(), sep: ",".into(), trail: String::new(), ..outer }
    }
}

/// Writes an object with `fields` in the order given, laid out in `style` (an object's own
/// style, from `child_style`); nested values follow its indentation.
#[must_use]
pub fn render(fields: &[(String, Value)], style: &Style) -> String {
    if fields.is_empty() {
        return "{}".into();
    }
    let mut s = String::from("{");
    s.push_str(&style.lead);
    for (i, (k, v)) in fields.iter().enumerate() {
        if i > 0 {
            s.push_str(&style.sep);
        }
        let key = serde_json::to_string(k).unwrap_or_default();
        let value = render_value(v, style, &style.indent);
        let _ = write!(s, "{key}{}{value}", style.colon);
    }
    s.push_str(&style.trail);
    s.push('}');
    s
}

fn render_value(v: &Value, style: &Style, indent: &str) -> String {
    if !style.pretty() || !(v.is_object() || v.is_array()) {
        return serde_json::to_string(v).unwrap_or_default();
    }
    let mut buf = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(style.unit.as_bytes());
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
    if serde::Serialize::serialize(v, &mut ser).is_err() {
        return serde_json::to_string(v).unwrap_or_default();
    }
    String::from_utf8_lossy(&buf).replace('\n', &format!("\n{indent}"))
}

/// Edits that remove the members (object) or elements (array) at `remove` and append
/// `append` (already rendered; for an object, `"key": value` text) at the end, keeping the
/// container's separators and layout.
///
/// # Errors
/// When `node` is not a container, or an index is out of range.
pub fn splice_children(text: &str, node: &Node, remove: &[usize], append: &[String]) -> Result<Vec<Edit>, String> {
    let spans: Vec<(usize, usize)> = match &node.kind {
        Kind::Object(m) => m.iter().map(|m| (m.key_start, m.value.end)).collect(),
        Kind::Array(v) => v.iter().map(|n| (n.start, n.end)).collect(),
        Kind::Scalar => return Err("not an object or array".into()),
    };
    let n = spans.len();
    if remove.iter().any(|i| *i >= n) {
        return Err("index out of range".into());
    }
    let gone: Vec<bool> = (0..n).map(|i| remove.contains(&i)).collect();
    let style = style_of(text, node);
    let mut edits = Vec::new();
    if gone.iter().all(|g| *g) {
        // Nothing kept: rewrite the inside.
        let inner = if append.is_empty() {
            String::new()
        } else {
            format!("{}{}{}", style.lead, append.join(&style.sep), style.trail)
        };
        edits.push(Edit { start: node.start + 1, end: node.end - 1, text: inner });
        return Ok(edits);
    }
    // Runs of removed children.
    let mut i = 0;
    while i < n {
        if !gone[i] {
            i += 1;
            continue;
        }
        let a = i;
        while i < n && gone[i] {
            i += 1;
        }
        let b = i - 1;
        if b + 1 < n {
            edits.push(Edit { start: spans[a].0, end: spans[b + 1].0, text: String::new() });
        } else {
            // The run reaches the end: also take the separator after the last kept child.
            edits.push(Edit { start: spans[a - 1].1, end: spans[b].1, text: String::new() });
        }
    }
    if !append.is_empty() {
        let last_kept = (0..n).rev().find(|i| !gone[*i]).map_or(node.start + 1, |i| spans[i].1);
        let text: String = append.iter().map(|a| format!("{}{a}", style.sep)).collect();
        edits.push(Edit { start: last_kept, end: last_kept, text });
    }
    Ok(edits)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const PRETTY: &str = r#"{
  "updated_at": "2026-11-20T15:29:20+00:00",
  "opens": {
    "AAPL": {
      "qty": 10,
      "entry_price": 187.25
    },
    "MSFT": {
      "qty": "5",
      "entry_price": "412.30"
    },
    "NVDA": {
      "qty": 20.0
    }
  },
  "cash_reserved": "0"
}
"#;

    fn opens(text: &str) -> Node {
        parse(text).unwrap().pointer("/opens").unwrap().clone()
    }

    fn edited(text: &str, remove: &[usize], append: &[String]) -> String {
        let o = opens(text);
        let out = apply(text, splice_children(text, &o, remove, append).unwrap()).unwrap();
        serde_json::from_str::<Value>(&out).unwrap_or_else(|e| panic!("{e}:\n{out}"));
        out
    }

    #[test]
    fn spans_and_pointers() {
        let root = parse(PRETTY).unwrap();
        let qty = root.pointer("/opens/MSFT/qty").unwrap();
        assert_eq!(&PRETTY[qty.start..qty.end], "\"5\"");
        assert_eq!(&PRETTY[root.pointer("/opens/NVDA/qty").unwrap().start..][..4], "20.0");
        assert!(root.pointer("/opens/TSLA").is_none());
        let arr = parse(r#"[1, {"a~b/c": [true]}]"#).unwrap();
        assert!(arr.pointer("/1/a~0b~1c/0").is_some());
        assert!(parse("{").is_err());
        assert!(parse(r#"{"a": 1} x"#).is_err());
        assert!(parse(r#"{"a":1,"a":2}"#).unwrap().has_duplicate_keys());
    }

    #[test]
    fn removing_any_subset_keeps_everything_else_byte_for_byte() {
        let out = edited(PRETTY, &[1], &[]);
        assert_eq!(
            out,
            PRETTY.replace("    \"MSFT\": {\n      \"qty\": \"5\",\n      \"entry_price\": \"412.30\"\n    },\n", "")
        );
        let out = edited(PRETTY, &[2], &[]);
        assert!(out.contains("\"412.30\"\n    }\n  },"), "{out}");
        let out = edited(PRETTY, &[1, 2], &[]);
        assert!(out.contains("\"entry_price\": 187.25\n    }\n  },"), "{out}");
        let out = edited(PRETTY, &[0, 1, 2], &[]);
        assert!(out.contains("\"opens\": {},"), "{out}");
        let out = edited(PRETTY, &[0, 2], &[]);
        assert!(out.contains("\"opens\": {\n    \"MSFT\""), "{out}");
    }

    #[test]
    fn appended_members_follow_the_layout() {
        let o = opens(PRETTY);
        let style = style_of(PRETTY, &o);
        assert_eq!((style.indent.as_str(), style.unit.as_str(), style.colon.as_str()), ("    ", "  ", ": "));
        let entry = render(&[("qty".into(), json!(4)), ("tags".into(), json!(["x"]))], &child_style(PRETTY, &o));
        let member = format!("\"TSLA\"{}{entry}", style.colon);
        let out = edited(PRETTY, &[2], std::slice::from_ref(&member));
        assert!(
            out.contains("\"412.30\"\n    },\n    \"TSLA\": {\n      \"qty\": 4,\n      \"tags\": [\n        \"x\"\n      ]\n    }\n  },"),
            "{out}"
        );
        // Into an empty object, pretty.
        let empty = "{\n  \"opens\": {},\n  \"x\": 1\n}";
        let o = opens(empty);
        let member = format!("\"A\": {}", render(&[("qty".into(), json!(1))], &child_style(empty, &o)));
        let out = apply(empty, splice_children(empty, &o, &[], &[member]).unwrap()).unwrap();
        assert_eq!(out, "{\n  \"opens\": {\n    \"A\": {\n      \"qty\": 1\n    }\n  },\n  \"x\": 1\n}");
        // Compact.
        let compact = r#"{"opens":{"A":{"qty":1},"B":{"qty":2}}}"#;
        let o = opens(compact);
        let style = style_of(compact, &o);
        let member = format!("\"C\"{}{}", style.colon, render(&[("qty".into(), json!(3))], &child_style(compact, &o)));
        let out = apply(compact, splice_children(compact, &o, &[0], &[member]).unwrap()).unwrap();
        assert_eq!(out, r#"{"opens":{"B":{"qty":2},"C":{"qty":3}}}"#);
    }

    #[test]
    fn arrays_splice_like_objects() {
        let text = "{\"positions\": [\n  {\"symbol\": \"A\"},\n  {\"symbol\": \"B\"}\n]}";
        let root = parse(text).unwrap();
        let arr = root.pointer("/positions").unwrap();
        let out = apply(text, splice_children(text, arr, &[0], &["{\"symbol\": \"C\"}".into()]).unwrap()).unwrap();
        assert_eq!(out, "{\"positions\": [\n  {\"symbol\": \"B\"},\n  {\"symbol\": \"C\"}\n]}");
    }

    #[test]
    fn overlapping_edits_are_refused() {
        let e = vec![Edit { start: 0, end: 3, text: String::new() }, Edit { start: 2, end: 4, text: String::new() }];
        assert!(apply("abcdef", e).is_err());
        let e = vec![Edit { start: 2, end: 2, text: "X".into() }, Edit { start: 2, end: 4, text: String::new() }];
        assert_eq!(apply("abcdef", e).unwrap(), "abXef");
    }
}
