//! The Markdown report, for pasting into tickets.

use std::fmt::Write;

use super::Report;

fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// Renders the Markdown report.
#[must_use]
pub fn render_markdown(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## tradewarden audit — {} ({})\n",
        report.audited_at.format("%Y-%m-%d %H:%M:%S UTC"),
        report.mode
    );
    if let Some(a) = &report.account {
        let f = |d: Option<rust_decimal::Decimal>| d.map_or_else(|| "?".to_owned(), |d| d.to_string());
        let _ = writeln!(
            out,
            "- **Account:** {} — equity {}, cash {}, buying power {}",
            a.status,
            f(a.equity),
            f(a.cash),
            f(a.buying_power)
        );
    }
    if let Some(m) = &report.market {
        let _ = writeln!(out, "- **Market:** {}", if m.is_open { "open" } else { "closed" });
    }
    let s = report.summary;
    let unknown = match s.unknown {
        0 => String::new(),
        1 => " (1 rule unknown)".to_owned(),
        n => format!(" ({n} rules unknown)"),
    };
    let _ = writeln!(out, "- **Findings:** {} critical, {} warning, {} info{unknown}\n", s.critical, s.warning, s.info);
    let _ = writeln!(out, "### Sources\n\n| source | status | error |\n|---|---|---|");
    for src in &report.sources {
        let _ =
            writeln!(out, "| {} | {} | {} |", cell(&src.name), src.status, cell(src.error.as_deref().unwrap_or("")));
    }
    let _ = writeln!(out, "\n### Rules\n\n| rule | check | outcome |\n|---|---|---|");
    for r in &report.rules {
        let _ = writeln!(out, "| {} | {} | {} |", cell(&r.id), r.check, r.outcome.as_str());
    }
    if !report.findings.is_empty() {
        let _ =
            writeln!(out, "\n### Findings\n\n| severity | rule | code | subject | message |\n|---|---|---|---|---|");
        for f in &report.findings {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} |",
                f.severity,
                cell(&f.rule),
                f.code,
                cell(&f.subject),
                cell(&f.message)
            );
        }
    }
    if !report.reconciliation.is_empty() {
        let _ = writeln!(
            out,
            "\n### Reconciliation\n\n| symbol | broker qty | bot qty | metadata | status |\n|---|---|---|---|---|"
        );
        for r in &report.reconciliation {
            let q = |d: Option<rust_decimal::Decimal>| d.map_or_else(|| "-".to_owned(), |d| d.to_string());
            let m = match r.metadata {
                Some(true) => "yes",
                Some(false) => "no",
                None => "-",
            };
            let _ =
                writeln!(out, "| {} | {} | {} | {m} | {} |", cell(&r.symbol), q(r.broker_qty), q(r.bot_qty), r.status);
        }
    }
    out
}
