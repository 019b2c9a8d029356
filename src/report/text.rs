//! The text report: a header, one line per rule with ✓ / ✗ / ?, and a reconciliation table.
//! Colour only when asked (on a TTY).

use std::fmt::Write;

use super::Report;
use crate::model::{Origin, Outcome, Severity};

fn paint(s: &str, code: &str, color: bool) -> String {
    if color { format!("\x1b[{code}m{s}\x1b[0m") } else { s.to_owned() }
}

fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or_else(|| "?".to_owned(), |v| v.to_string())
}

/// Renders the text report.
#[must_use]
pub fn render_text(report: &Report, color: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "tradewarden {} — audit at {} ({})",
        report.version,
        report.audited_at.format("%Y-%m-%d %H:%M:%S UTC"),
        report.mode
    );
    match &report.account {
        Some(a) => {
            let _ = writeln!(
                out,
                "account  {}  equity {}  cash {}  buying power {}",
                a.status,
                opt(a.equity),
                opt(a.cash),
                opt(a.buying_power)
            );
        }
        None => {
            let _ = writeln!(out, "account  unknown (the broker account could not be read)");
        }
    }
    match &report.market {
        Some(m) => {
            let _ = writeln!(out, "market   {}", if m.is_open { "open" } else { "closed" });
        }
        None => {
            let _ = writeln!(out, "market   unknown");
        }
    }
    let sources: Vec<String> = report
        .sources
        .iter()
        .map(|s| {
            if s.status == "ok" {
                format!("{} ok", s.name)
            } else {
                paint(&format!("{} {}", s.name, s.status.to_uppercase()), "31", color)
            }
        })
        .collect();
    let _ = writeln!(out, "sources  {}", sources.join(", "));
    for s in report.sources.iter().filter(|s| s.status != "ok") {
        if let Some(e) = &s.error {
            let _ = writeln!(out, "         {}: {e}", s.name);
        }
    }
    let _ = writeln!(out);
    let source_findings: Vec<_> =
        report.findings.iter().filter(|f| Origin::of(&f.rule) == Some(Origin::Source)).collect();
    for f in &source_findings {
        let _ = writeln!(out, "{} {} {}: {}", paint("!", "33", color), f.code, f.subject, f.message);
    }
    if !source_findings.is_empty() {
        let _ = writeln!(out);
    }
    for r in &report.rules {
        let (mark, code) = match r.outcome {
            Outcome::Ok => ("✓", "32"),
            Outcome::Violated => ("✗", "31"),
            Outcome::Unknown => ("?", "33"),
            Outcome::Skipped => ("-", "2"),
        };
        let mut line = format!("{} {} ({})", paint(mark, code, color), r.id, r.check);
        match r.outcome {
            Outcome::Ok => {}
            Outcome::Violated => {
                let n = report.findings.iter().filter(|f| f.rule == r.id).count();
                let _ = write!(line, ": {n} finding{}", if n == 1 { "" } else { "s" });
            }
            Outcome::Unknown => {
                let _ = write!(line, ": unknown, {}", r.reason.as_deref().unwrap_or("an input is unavailable"));
            }
            Outcome::Skipped => {
                let _ = write!(line, ": skipped, {}", r.reason.as_deref().unwrap_or(""));
            }
        }
        let _ = writeln!(out, "{line}");
        for f in report.findings.iter().filter(|f| f.rule == r.id) {
            let sev = match f.severity {
                Severity::Critical => paint("CRITICAL", "1;31", color),
                Severity::Warning => paint("WARNING", "33", color),
                Severity::Info => "INFO".to_owned(),
            };
            let muted = if report.is_silenced(f) { " (silenced)" } else { "" };
            let _ = writeln!(out, "    {sev} {} {}: {}{muted}", f.code, f.subject, f.message);
        }
    }
    if !report.reconciliation.is_empty() {
        let _ = writeln!(out);
        let rows: Vec<[String; 5]> = report
            .reconciliation
            .iter()
            .map(|r| {
                [
                    r.symbol.clone(),
                    r.broker_qty.map_or_else(|| "-".into(), |q| q.to_string()),
                    r.bot_qty.map_or_else(|| "-".into(), |q| q.to_string()),
                    match r.metadata {
                        Some(true) => "yes".into(),
                        Some(false) => "no".into(),
                        None => "-".into(),
                    },
                    r.status.clone(),
                ]
            })
            .collect();
        let header = ["symbol", "broker qty", "bot qty", "metadata", "status"];
        let mut widths = header.map(str::len);
        for row in &rows {
            for (w, c) in widths.iter_mut().zip(row) {
                *w = (*w).max(c.chars().count());
            }
        }
        let line = |cells: [&str; 5]| -> String {
            cells
                .iter()
                .zip(widths)
                .map(|(c, w)| format!("{c:<w$}"))
                .collect::<Vec<_>>()
                .join(" | ")
                .trim_end()
                .to_owned()
        };
        let _ = writeln!(out, "{}", line(header));
        let _ = writeln!(out, "{}", widths.map(|w| "-".repeat(w)).join("-+-"));
        for row in &rows {
            let text = line([&row[0], &row[1], &row[2], &row[3], &row[4]]);
            let painted = if row[4] == "ok" { text } else { paint(&text, "31", color) };
            let _ = writeln!(out, "{painted}");
        }
    }
    let _ = writeln!(out);
    let s = report.summary;
    let unknown = match s.unknown {
        0 => String::new(),
        1 => " (1 rule unknown)".to_owned(),
        n => format!(" ({n} rules unknown)"),
    };
    let _ = writeln!(out, "{} critical, {} warning, {} info{unknown}", s.critical, s.warning, s.info);
    out
}
