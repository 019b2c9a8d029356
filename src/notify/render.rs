//! Rendering one cycle's notifications into one message: subject, plain text, HTML. Pure.
//!
//! The subject names the worst alert (`[tradewarden] CRITICAL no-shorts: CHWY short -1596
//! (paper)`, or `[tradewarden] RESOLVED no-shorts: CHWY (paper)`), plus "and N more" when the
//! message carries several: the most severe, new before still firing, and among equals the one
//! with the most at stake (the largest market value, then quantity, its finding observed), so
//! the subject a phone shows names the biggest new problem, not the alphabetically first. A
//! message whose leading notice is a resolution but which reports an action taken gets the
//! `ACTION TAKEN` subject: an order sent must not hide behind "RESOLVED". Both parts list every
//! finding (rule, code, subject, observed vs expected, since when), the actions taken or
//! proposed, the host, the config path and the mode.
//!
//! Every interpolated string is untrusted (symbols, log text, broker messages): it is flattened
//! to one line without control characters (so it cannot add a header or fake a line), and
//! HTML-escaped in the HTML part, which uses inline CSS only.

use std::fmt::Write as _;
use std::path::Path;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde_json::Value;

use crate::alert::{AlertState, Notification, NotifyReason};
use crate::model::{Finding, Mode, Severity};
use crate::num::decimal_from_json;

/// Where and when a message is rendered.
#[derive(Debug, Clone, Copy)]
pub struct MessageContext<'a> {
    /// This machine's name.
    pub host: &'a str,
    /// The configuration file.
    pub config_path: &'a Path,
    /// The status page as the reader reaches it (`[server] external_url`), linked from the
    /// message.
    pub status_url: Option<&'a str>,
    /// How many alerts are firing in all (the daemon's alert book), not only those this message
    /// is about; `None` when not known.
    pub firing_total: Option<usize>,
    /// Paper, live or replay; `None` when not known (the test message).
    pub mode: Option<Mode>,
    /// The cycle's "now".
    pub now: DateTime<Utc>,
}

/// An action taken or proposed this cycle, as the actions module describes it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ActionNote {
    /// The alert it is for, if any.
    pub fingerprint: Option<String>,
    /// One sentence: what was (or would be) done.
    pub description: String,
    /// Taken (act mode), or only proposed (observe mode, or a gate said no).
    pub taken: bool,
    /// Detail shown verbatim in a preformatted block: a diff, a broker response.
    pub detail: Option<String>,
    /// What it did, in a word or two (`flattened`), for the subject; `None` when it did nothing
    /// that can be said so briefly (a failure, a proposal).
    pub done: Option<String>,
}

/// A rendered message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// The subject, already header-safe.
    pub subject: String,
    /// The plain-text part.
    pub text: String,
    /// The HTML part.
    pub html: String,
}

/// Longest subject, in characters.
const SUBJECT_MAX: usize = 200;

/// One line, no control characters: CR, LF, tabs, other C0/C1 controls and the Unicode line
/// and paragraph separators become spaces; runs of whitespace collapse; ends are trimmed. Safe
/// for a header value and for a single line of text.
#[must_use]
pub fn header_safe(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut space = false;
    for c in s.chars() {
        let c = if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') { ' ' } else { c };
        if c.is_whitespace() {
            space = !out.is_empty();
        } else {
            if space {
                out.push(' ');
                space = false;
            }
            out.push(c);
        }
    }
    out
}

/// Escapes `& < > " '` for HTML text and attribute values.
#[must_use]
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// One line of untrusted text, HTML-escaped.
fn h(s: &str) -> String {
    html_escape(&header_safe(s))
}

/// One line of a preformatted block (a diff): its indentation kept, unlike [`header_safe`],
/// but every control character (a tab included, as four spaces) made harmless.
fn verbatim(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '\t' => "    ".to_owned(),
            c if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') => " ".to_owned(),
            c => c.to_string(),
        })
        .collect::<String>()
        .trim_end()
        .to_owned()
}

/// This machine's host name (the one SMTP's EHLO uses), or `localhost`.
#[must_use]
pub fn host_name() -> String {
    match lettre::transport::smtp::extension::ClientId::default() {
        lettre::transport::smtp::extension::ClientId::Domain(d) => header_safe(&d),
        _ => "localhost".into(),
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
    t.push('…');
    t
}

fn time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// A JSON value as short text: `qty=-1596, side=short` for objects, strings bare.
fn value(v: &Value) -> String {
    let s = match v {
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => format!("{k}={s}"),
                other => format!("{k}={other}"),
            })
            .collect::<Vec<_>>()
            .join(", "),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    header_safe(&s)
}

/// The finding in a few words, after its rule: `CHWY short -1596`, `CHWY quantity mismatch`.
fn headline(f: &Finding) -> String {
    let qty = f.observed.get("qty").and_then(|q| match q {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    });
    match (f.code.as_str(), qty) {
        ("short_position", Some(q)) => format!("{} short {q}", f.subject),
        // A blind rule says what blinds it: `unknown, broker:positions unavailable`.
        (crate::checks::RULE_UNKNOWN, _) => match (f.observed.get("status"), f.observed.get("field")) {
            (Some(Value::String(status)), _) => format!("unknown, {} {status}", f.subject),
            (_, Some(Value::String(field))) => format!("unknown, {} {field} missing or invalid", f.subject),
            _ => format!("unknown, {}", f.subject),
        },
        (code, _) => format!("{} {}", f.subject, code.replace('_', " ")),
    }
}

fn label(n: &Notification) -> &'static str {
    match n.reason {
        NotifyReason::Firing => "FIRING",
        NotifyReason::Repeat => "STILL FIRING",
        NotifyReason::Resolved => "RESOLVED",
    }
}

fn severity_upper(s: Severity) -> &'static str {
    match s {
        Severity::Info => "INFO",
        Severity::Warning => "WARNING",
        Severity::Critical => "CRITICAL",
    }
}

/// What is at stake in an alert: the absolute market value its finding observed, then the
/// absolute quantity (`None` sorts last).
fn stake(n: &Notification) -> (Option<Decimal>, Option<Decimal>) {
    let observed = &n.alert.last_finding.observed;
    let abs = |key: &str| observed.get(key).and_then(|v| decimal_from_json(v).ok()).map(|d| d.abs());
    (abs("market_value"), abs("qty"))
}

/// Display order: firing and repeats before resolved notices (a resolution never leads while
/// something fires), then worst severity, then new before repeated (news leads), then the most
/// at stake, then fingerprint.
fn sorted(notes: &[Notification]) -> Vec<&Notification> {
    let mut v: Vec<&Notification> = notes.iter().collect();
    v.sort_by(|a, b| {
        let resolved = |n: &Notification| n.reason == NotifyReason::Resolved;
        resolved(a)
            .cmp(&resolved(b))
            .then(b.alert.severity.cmp(&a.alert.severity))
            .then(a.reason.cmp(&b.reason))
            .then_with(|| stake(b).cmp(&stake(a)))
            .then(a.alert.fingerprint.cmp(&b.alert.fingerprint))
    });
    v
}

fn subject_line(notes: &[&Notification], done: &[&str], ctx: &MessageContext<'_>) -> String {
    let first = notes[0];
    let a = &first.alert;
    let lead = match first.reason {
        NotifyReason::Resolved => format!("RESOLVED {}: {}", a.rule, a.subject),
        _ => format!("{} {}: {}", severity_upper(a.severity), a.rule, headline(&a.last_finding)),
    };
    let mut tail = String::new();
    if notes.len() > 1 {
        let _ = write!(tail, " and {} more", notes.len() - 1);
    }
    // An action taken says so where the operator looks first.
    if !done.is_empty() {
        let _ = write!(tail, "; {}", done.join(", "));
    }
    if let Some(m) = ctx.mode {
        let _ = write!(tail, " ({m})");
    }
    let lead = header_safe(&format!("[tradewarden] {lead}"));
    let room = SUBJECT_MAX.saturating_sub(tail.chars().count());
    header_safe(&format!("{}{tail}", truncate(&lead, room)))
}

fn counts(notes: &[&Notification]) -> String {
    let n = |r: NotifyReason| notes.iter().filter(|x| x.reason == r).count();
    let mut parts = Vec::new();
    for (r, word) in
        [(NotifyReason::Firing, "firing"), (NotifyReason::Repeat, "still firing"), (NotifyReason::Resolved, "resolved")]
    {
        if n(r) > 0 {
            parts.push(format!("{} {word}", n(r)));
        }
    }
    parts.join(", ")
}

fn since(a: &AlertState, reason: NotifyReason) -> String {
    let mut s = format!("since {}", time(a.active_since));
    if let Some(f) = a.fired_at {
        let _ = write!(s, ", firing since {}", time(f));
    }
    if reason == NotifyReason::Resolved
        && let Some(r) = a.resolved_at
    {
        let _ = write!(s, ", resolved at {}", time(r));
    }
    s
}

fn notes_for(a: &AlertState) -> Vec<String> {
    let mut v = Vec::new();
    if a.unknown {
        v.push(format!("the rule could not be evaluated this cycle; last seen {} (state held)", time(a.last_seen_at)));
    }
    v
}

fn mode_text(ctx: &MessageContext<'_>) -> String {
    ctx.mode.map_or_else(|| "unknown".into(), |m| m.to_string())
}

/// The subject of a message that only reports actions taken (no alert notice is owed).
fn action_subject(taken: &[&ActionNote], ctx: &MessageContext<'_>) -> String {
    let mut tail = String::new();
    if taken.len() > 1 {
        let _ = write!(tail, " and {} more", taken.len() - 1);
    }
    if let Some(m) = ctx.mode {
        let _ = write!(tail, " ({m})");
    }
    let lead = header_safe(&format!("[tradewarden] ACTION TAKEN: {}", taken[0].description));
    let room = SUBJECT_MAX.saturating_sub(tail.chars().count());
    header_safe(&format!("{}{tail}", truncate(&lead, room)))
}

/// Renders a cycle's notifications into one message; `None` when there are none and no action
/// was taken. An action taken in a cycle that owes no notice (a retry of an alert already
/// firing, an action held back last cycle on incomplete data) still gets its message: the
/// operator hears of every order tradewarden sends and every file it rewrites. Actions only
/// proposed (observe mode, a gate said no) ride along with notices but never send one alone.
#[must_use]
pub fn render(notes: &[Notification], actions: &[ActionNote], ctx: &MessageContext<'_>) -> Option<Rendered> {
    let taken: Vec<&ActionNote> = actions.iter().filter(|a| a.taken).collect();
    if notes.is_empty() && taken.is_empty() {
        return None;
    }
    let notes = sorted(notes);
    let mut done: Vec<&str> = Vec::new();
    for d in taken.iter().filter_map(|a| a.done.as_deref()) {
        if !done.contains(&d) {
            done.push(d);
        }
    }
    let n = taken.len();
    let taken_words = format!("{n} action{} taken", if n == 1 { "" } else { "s" });
    let (subject, what) = if notes.is_empty() {
        (action_subject(&taken, ctx), taken_words)
    } else if notes[0].reason == NotifyReason::Resolved && !taken.is_empty() {
        (action_subject(&taken, ctx), format!("{taken_words}, {}", counts(&notes)))
    } else {
        (subject_line(&notes, &done, ctx), counts(&notes))
    };
    let mut summary = format!("tradewarden: {what} ({} account)", mode_text(ctx));
    if let Some(total) = ctx.firing_total {
        let _ = write!(summary, "; {total} alert{} firing in all", if total == 1 { "" } else { "s" });
    }
    Some(Rendered {
        text: render_text(&notes, actions, ctx, &summary),
        html: render_html(&notes, actions, ctx, &subject, &summary),
        subject,
    })
}

fn render_text(notes: &[&Notification], actions: &[ActionNote], ctx: &MessageContext<'_>, summary: &str) -> String {
    let mut t = String::new();
    let _ = writeln!(t, "{summary}\n");
    if let Some(url) = ctx.status_url {
        let _ = writeln!(t, "status page: {}\n", header_safe(url));
    }
    for n in notes {
        let a = &n.alert;
        let _ = writeln!(
            t,
            "{:<12}  {:<8}  {}  {}",
            label(n),
            severity_upper(a.severity),
            header_safe(&a.rule),
            header_safe(&a.subject)
        );
        for f in a.findings() {
            let _ = writeln!(t, "  code:      {}", header_safe(&f.code));
            let _ = writeln!(t, "  message:   {}", header_safe(&f.message));
            let _ = writeln!(t, "  observed:  {}", value(&f.observed));
            let _ = writeln!(t, "  expected:  {}", value(&f.expected));
        }
        let _ = writeln!(t, "  when:      {}", since(a, n.reason));
        for note in notes_for(a) {
            let _ = writeln!(t, "  note:      {note}");
        }
        t.push('\n');
    }
    if !actions.is_empty() {
        t.push_str("Actions\n");
        for act in actions {
            let _ = writeln!(
                t,
                "  - {}: {}{}",
                if act.taken { "taken" } else { "proposed" },
                header_safe(&act.description),
                act.fingerprint.as_deref().map(|f| format!(" [{}]", header_safe(f))).unwrap_or_default()
            );
            if let Some(d) = &act.detail {
                for line in d.lines() {
                    let _ = writeln!(t, "      {}", verbatim(line));
                }
            }
        }
        t.push('\n');
    }
    let _ = write!(
        t,
        "--\nhost:   {}\nconfig: {}\nmode:   {}\nat:     {}\ntradewarden {}\n",
        header_safe(ctx.host),
        header_safe(&ctx.config_path.display().to_string()),
        mode_text(ctx),
        time(ctx.now),
        env!("CARGO_PKG_VERSION")
    );
    t
}

const TD: &str = "padding:4px 8px;border:1px solid #ddd;vertical-align:top;text-align:left";

fn badge(n: &Notification) -> String {
    let bg = match (n.reason, n.alert.severity) {
        (NotifyReason::Resolved, _) => "#2e7d32",
        (_, Severity::Critical) => "#c62828",
        (_, Severity::Warning) => "#ef6c00",
        (_, Severity::Info) => "#1565c0",
    };
    format!("<td style=\"{TD};background:{bg};color:#fff;font-weight:bold;white-space:nowrap\">{}</td>", label(n))
}

fn render_html(
    notes: &[&Notification],
    actions: &[ActionNote],
    ctx: &MessageContext<'_>,
    subject: &str,
    summary: &str,
) -> String {
    let mut o = String::new();
    let _ = write!(
        o,
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{}</title></head>\n\
         <body style=\"font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;color:#222;font-size:14px\">\n\
         <h2 style=\"font-size:18px;margin:0 0 12px\">{}</h2>\n\
         <table style=\"border-collapse:collapse;font-size:13px\">\n<tr>",
        html_escape(subject),
        h(summary)
    );
    for head in ["Status", "Severity", "Rule", "Code", "Subject", "Message", "Observed", "Expected", "Since"] {
        let _ = write!(o, "<th style=\"{TD};background:#f4f4f4\">{head}</th>");
    }
    o.push_str("</tr>\n");
    if notes.is_empty() {
        let _ = writeln!(o, "<tr><td colspan=\"9\" style=\"{TD}\">No alert changed state this cycle.</td></tr>");
    }
    for n in notes {
        let a = &n.alert;
        let mut when = h(&since(a, n.reason));
        for note in notes_for(a) {
            let _ = write!(when, "<br><em>{}</em>", h(&note));
        }
        for f in a.findings() {
            let _ = writeln!(
                o,
                "<tr>{}<td style=\"{TD}\">{}</td><td style=\"{TD}\">{}</td><td style=\"{TD}\"><code>{}</code></td>\
                 <td style=\"{TD}\"><strong>{}</strong></td><td style=\"{TD}\">{}</td><td style=\"{TD}\">{}</td>\
                 <td style=\"{TD}\">{}</td><td style=\"{TD}\">{}</td></tr>",
                badge(n),
                severity_upper(f.severity),
                h(&f.rule),
                h(&f.code),
                h(&f.subject),
                h(&f.message),
                html_escape(&value(&f.observed)),
                html_escape(&value(&f.expected)),
                when
            );
        }
    }
    o.push_str("</table>\n");
    if !actions.is_empty() {
        o.push_str(
            "<h3 style=\"font-size:15px;margin:16px 0 8px\">Actions</h3>\n<ul style=\"margin:0;padding-left:20px\">\n",
        );
        for act in actions {
            let _ = write!(
                o,
                "<li><strong>{}</strong>: {}{}",
                if act.taken { "taken" } else { "proposed" },
                h(&act.description),
                act.fingerprint.as_deref().map(|f| format!(" <code>[{}]</code>", h(f))).unwrap_or_default()
            );
            if let Some(d) = &act.detail {
                let lines: Vec<String> = d.lines().map(|l| html_escape(&verbatim(l))).collect();
                let _ = write!(
                    o,
                    "<pre style=\"background:#f7f7f7;border:1px solid #ddd;padding:8px;font-size:12px\">{}</pre>",
                    lines.join("\n")
                );
            }
            o.push_str("</li>\n");
        }
        o.push_str("</ul>\n");
    }
    if let Some(url) = ctx.status_url {
        let _ = writeln!(o, "<p><a href=\"{}\">Open the status page</a></p>", h(url));
    }
    let _ = write!(
        o,
        "<p style=\"color:#666;font-size:12px;margin-top:16px\">host <code>{}</code> &middot; config <code>{}</code> \
         &middot; mode {} &middot; {} &middot; tradewarden {}</p>\n</body></html>\n",
        h(ctx.host),
        h(&ctx.config_path.display().to_string()),
        h(&mode_text(ctx)),
        h(&time(ctx.now)),
        env!("CARGO_PKG_VERSION")
    );
    o
}

/// The `alerts test` message.
#[must_use]
pub fn render_test(ctx: &MessageContext<'_>, transport: &str) -> Rendered {
    let subject = header_safe(&format!("[tradewarden] TEST message from {}", ctx.host));
    let lines = [
        "This is a test message sent by `tradewarden alerts test`.".to_owned(),
        "If you can read it, alert email from this watchdog reaches you.".to_owned(),
        String::new(),
        format!("transport: {}", header_safe(transport)),
        format!("host:      {}", header_safe(ctx.host)),
        format!("config:    {}", header_safe(&ctx.config_path.display().to_string())),
        format!("at:        {}", time(ctx.now)),
        format!("tradewarden {}", env!("CARGO_PKG_VERSION")),
    ];
    let text = lines.join("\n") + "\n";
    let body: Vec<String> = lines.iter().map(|l| html_escape(l)).collect();
    let html = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{}</title></head>\n\
         <body style=\"font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;color:#222;font-size:14px\">\n\
         <pre style=\"font-size:13px\">{}</pre>\n</body></html>\n",
        html_escape(&subject),
        body.join("\n")
    );
    Rendered { subject, text, html }
}

#[cfg(test)]
mod tests;
