//! The status page: one self-contained HTML document (inline CSS and SVG, no external assets,
//! so it works offline and on a phone), refreshed every 10 seconds.

use std::fmt::Write;

use chrono::{DateTime, Utc};

use super::view::{CyclePoint, StatusView};
use crate::model::{Outcome, Severity};

/// Escapes text for HTML (the same escaping the alert email uses).
#[must_use]
pub fn esc(s: &str) -> String {
    crate::notify::html_escape(s)
}

fn ago(then: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let secs = (now - then).num_seconds();
    let rel = match secs {
        s if s < 0 => "just now".to_owned(),
        s if s < 90 => format!("{s}s ago"),
        s if s < 90 * 60 => format!("{}m ago", s / 60),
        s if s < 48 * 3600 => format!("{}h {}m ago", s / 3600, s % 3600 / 60),
        s => format!("{}d ago", s / 86_400),
    };
    format!("<span title=\"{}\">{rel}</span>", then.format("%Y-%m-%d %H:%M:%S UTC"))
}

fn sev_class(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "crit",
        Severity::Warning => "warn",
        Severity::Info => "info",
    }
}

const STYLE: &str = r"
:root{--bg:#f6f7f9;--fg:#1d232b;--muted:#5b6673;--card:#fff;--line:#dde2e8;--crit:#c62828;--warn:#b26a00;--info:#546e7a;--ok:#2e7d32;--blind:#4a148c}
*{box-sizing:border-box}body{margin:0;font:15px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;background:var(--bg);color:var(--fg)}
header{background:#1d232b;color:#fff;padding:12px 16px}header h1{margin:0;font-size:18px}header .meta{color:#c8d0d9;font-size:13px}
main{padding:12px;max-width:1100px;margin:0 auto}section{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:12px;margin:0 0 12px}
h2{font-size:15px;margin:0 0 8px}.grid{display:flex;flex-wrap:wrap;gap:8px}.kv{min-width:140px}.kv b{display:block;font-size:18px}.kv>span{color:var(--muted);font-size:12px}.nw{white-space:nowrap}
.chip{display:inline-block;padding:2px 8px;border-radius:10px;font-size:12px;margin:2px;border:1px solid var(--line)}.chip.ok{color:var(--ok)}.chip.bad{color:#fff;background:var(--crit);border-color:var(--crit)}
.scroll{overflow-x:auto}table{border-collapse:collapse;width:100%;font-size:13px}th,td{text-align:left;padding:5px 6px;border-bottom:1px solid var(--line);vertical-align:top}th{color:var(--muted);font-weight:600}
.sev{font-weight:700;text-transform:uppercase;font-size:11px}.crit{color:var(--crit)}.warn{color:var(--warn)}.info{color:var(--info)}
.badge{display:inline-block;padding:1px 7px;border-radius:9px;font-size:12px;color:#fff}.badge.up,.badge.ok{background:var(--ok)}.badge.down,.badge.violated,.badge.stale{background:var(--crit)}
.badge.blind{background:var(--blind)}.badge.unknown{background:var(--warn)}.badge.starting{background:var(--info)}
.alarm{border-color:var(--crit);background:#fdecea}.alarm li{margin:2px 0}
.muted{color:var(--muted)}svg{width:100%;height:auto;display:block}
@media (max-width:600px){body{font-size:14px}.kv{min-width:45%}td,th{padding:4px}}
";

/// Renders the status page.
#[must_use]
pub fn render_page(v: &StatusView, now: DateTime<Utc>) -> String {
    let mut h = String::with_capacity(16 * 1024);
    let mode = v.report.as_ref().map_or("starting", |r| r.mode.as_str());
    let _ = write!(
        h,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <meta http-equiv=\"refresh\" content=\"10\"><title>tradewarden · {host}</title><style>{STYLE}</style></head><body>",
        host = esc(&v.host)
    );
    // The worst state, never "healthy" merely because cycles run: a blind watchdog and a rule
    // it cannot evaluate say so.
    let state = v.overall(now).as_str();
    let health = format!("<span class=\"badge {state}\" id=\"state\" data-state=\"{state}\">{state}</span>");
    let last = v.last_cycle_at.map_or_else(|| "no cycle yet".to_owned(), |t| format!("last cycle {}", ago(t, now)));
    let _ = write!(
        h,
        "<header><h1>tradewarden · {host} · {mode} {health}</h1><div class=\"meta\">{last} · {cycles} cycles · config {cfg}</div></header><main>",
        host = esc(&v.host),
        mode = esc(mode),
        cycles = v.cycles,
        cfg = esc(&v.config_path)
    );
    problems(&mut h, v, now);
    summary(&mut h, v);
    findings(&mut h, v, now);
    unknown_rules(&mut h, v);
    reconciliation(&mut h, v);
    chart(&mut h, &v.history);
    alerts(&mut h, v, now);
    silences(&mut h, v, now);
    actions(&mut h, v, now);
    let _ = write!(
        h,
        "<p class=\"muted\">tradewarden {ver} · <a href=\"/api/status\">/api/status</a> · <a href=\"/metrics\">/metrics</a> · <a href=\"/healthz\">/healthz</a> · refreshes every 10 s</p></main></body></html>",
        ver = env!("CARGO_PKG_VERSION")
    );
    h
}

/// What makes `/healthz` answer 503 (stale, blind, state directory not writable), at the top.
fn problems(h: &mut String, v: &StatusView, now: DateTime<Utc>) {
    let problems = v.health_problems(now);
    if problems.is_empty() {
        return;
    }
    h.push_str("<section id=\"problems\" class=\"alarm\"><h2>The watchdog is not watching</h2><ul>");
    for p in &problems {
        let _ = write!(h, "<li>{}</li>", esc(p));
    }
    h.push_str("</ul></section>");
}

/// Rules whose outcome is unknown, each with why (an input unavailable or malformed).
fn unknown_rules(h: &mut String, v: &StatusView) {
    let Some(r) = &v.report else { return };
    let unknown: Vec<_> = r.rules.iter().filter(|o| o.outcome == Outcome::Unknown).collect();
    if unknown.is_empty() {
        return;
    }
    let _ = write!(
        h,
        "<section id=\"unknown-rules\"><h2>Unknown rules ({})</h2><p class=\"muted\">Not evaluated: their answer is unknown, never ok.</p>\
         <div class=\"scroll\"><table><tr><th>rule</th><th>check</th><th>why</th></tr>",
        unknown.len()
    );
    for o in unknown {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&o.id),
            esc(&o.check),
            esc(o.reason.as_deref().unwrap_or("an input is unavailable"))
        );
    }
    h.push_str("</table></div></section>");
}

/// The broker-vs-bot table of the text report (`report.reconciliation`), same columns.
fn reconciliation(h: &mut String, v: &StatusView) {
    let Some(r) = &v.report else { return };
    h.push_str("<section id=\"reconciliation\"><h2>Broker vs bot</h2>");
    if r.reconciliation.is_empty() {
        h.push_str("<p class=\"muted\">no position on either side</p></section>");
        return;
    }
    h.push_str("<div class=\"scroll\"><table><tr><th>symbol</th><th>broker qty</th><th>bot qty</th><th>metadata</th><th>status</th></tr>");
    // Unknown is not absent: a side that could not be read shows `?`, as the status says.
    let qty = |q: Option<rust_decimal::Decimal>, unknown: bool| match q {
        Some(q) => q.to_string(),
        None if unknown => "?".to_owned(),
        None => "-".to_owned(),
    };
    for row in &r.reconciliation {
        let unknown = row.status == "unknown";
        let class = match row.status.as_str() {
            "ok" => "",
            "unknown" => "warn",
            _ => "crit",
        };
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"{class}\">{}</td></tr>",
            esc(&row.symbol),
            qty(row.broker_qty, unknown),
            qty(row.bot_qty, unknown),
            match row.metadata {
                Some(true) => "yes",
                Some(false) => "no",
                None => "-",
            },
            esc(&row.status)
        );
    }
    h.push_str("</table></div></section>");
}

fn summary(h: &mut String, v: &StatusView) {
    h.push_str("<section><h2>Account and market</h2><div class=\"grid\">");
    let Some(r) = &v.report else {
        h.push_str("<p class=\"muted\">waiting for the first cycle</p></div></section>");
        return;
    };
    // A cycle that could not collect keeps no report: say that what follows is older, rather
    // than let the last good audit pass for the current one.
    if let Some(c) = v.last_cycle.as_ref().filter(|c| !c.ok) {
        let _ = write!(
            h,
            "<p class=\"warn\" id=\"old-report\">The last cycle could not collect ({}): what follows is the audit of {}.</p>",
            esc(c.error.as_deref().unwrap_or("unknown error")),
            r.audited_at.format("%Y-%m-%d %H:%M:%S UTC")
        );
    }
    let dec = |d: Option<rust_decimal::Decimal>| d.map_or_else(|| "?".to_owned(), crate::num::money);
    match &r.account {
        Some(a) => {
            let _ = write!(
                h,
                "<div class=\"kv\"><b>{}</b><span>equity</span></div><div class=\"kv\"><b>{}</b><span>cash</span></div>\
                 <div class=\"kv\"><b>{}</b><span>buying power</span></div><div class=\"kv\"><b>{}</b><span>account</span></div>",
                dec(a.equity),
                dec(a.cash),
                dec(a.buying_power),
                esc(&a.status)
            );
        }
        None => h.push_str("<div class=\"kv\"><b class=\"crit\">unknown</b><span>account</span></div>"),
    }
    let market = match &r.market {
        Some(m) if m.is_open => "open",
        Some(_) => "closed",
        None => "unknown",
    };
    let s = r.summary;
    let count = |o: Outcome| r.rules.iter().filter(|x| x.outcome == o).count();
    let _ = write!(
        h,
        "<div class=\"kv\"><b>{market}</b><span>market</span></div><div class=\"kv\"><b><span class=\"crit\">{}</span> / <span class=\"warn\">{}</span> / <span class=\"info\">{}</span></b><span>critical / warning / info</span></div>\
         <div class=\"kv\" id=\"rule-counts\"><b><span class=\"crit\">{}</span> / <span class=\"warn\">{}</span> / <span class=\"ok\">{}</span></b><span>rules violated / unknown / ok</span></div></div>",
        s.critical,
        s.warning,
        s.info,
        count(Outcome::Violated),
        count(Outcome::Unknown),
        count(Outcome::Ok)
    );
    h.push_str("<div style=\"margin-top:8px\">");
    for src in &r.sources {
        let class = if src.status == "ok" { "ok" } else { "bad" };
        let title = src.error.as_deref().map(esc).unwrap_or_default();
        let _ =
            write!(h, "<span class=\"chip {class}\" title=\"{title}\">{} {}</span>", esc(&src.name), esc(&src.status));
    }
    h.push_str("</div></section>");
}

fn findings(h: &mut String, v: &StatusView, now: DateTime<Utc>) {
    h.push_str("<section><h2>Current findings</h2>");
    let Some(r) = &v.report else {
        h.push_str("</section>");
        return;
    };
    if r.findings.is_empty() {
        let unknown = r.rules.iter().filter(|o| o.outcome == Outcome::Unknown).count();
        if unknown > 0 || v.blind_cycles > 0 {
            let _ = write!(
                h,
                "<p class=\"warn\">No findings, but {unknown} rule{} could not be evaluated: unknown is not ok.</p></section>",
                if unknown == 1 { "" } else { "s" }
            );
        } else {
            h.push_str("<p class=\"ok\">No findings: the bot agrees with the broker.</p></section>");
        }
        return;
    }
    let mut rows: Vec<_> = r.findings.iter().collect();
    rows.sort_by(|a, b| b.severity.cmp(&a.severity).then(a.rule.cmp(&b.rule)).then(a.subject.cmp(&b.subject)));
    h.push_str("<div class=\"scroll\"><table><tr><th>severity</th><th>rule</th><th>code</th><th>subject</th><th>message</th><th>since</th></tr>");
    for f in rows {
        let since = v
            .alerts
            .iter()
            .find(|a| a.rule == f.rule && a.subject == f.subject)
            .map_or_else(|| "this cycle".to_owned(), |a| ago(a.since, now));
        let _ = write!(
            h,
            "<tr><td class=\"sev {c}\">{sev}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"nw\">{since}</td></tr>",
            esc(&f.rule),
            esc(&f.code),
            esc(&f.subject),
            esc(&f.message),
            c = sev_class(f.severity),
            sev = f.severity
        );
    }
    h.push_str("</table></div></section>");
}

/// Stacked bars of findings per cycle: critical, warning, info.
fn chart(h: &mut String, history: &std::collections::VecDeque<CyclePoint>) {
    h.push_str("<section><h2>Findings per cycle</h2>");
    if history.is_empty() {
        h.push_str("<p class=\"muted\">no cycles yet</p></section>");
        return;
    }
    let (w, ht, pad) = (720.0_f64, 140.0_f64, 18.0_f64);
    let max = history.iter().map(|p| p.critical + p.warning + p.info + p.unknown).max().unwrap_or(0).max(1);
    let n = history.len() as f64;
    // Bars at most 12 px wide, newest on the right, so a young daemon's chart grows leftwards.
    let bw = (w / n).clamp(1.0, 12.0);
    let x0 = w - bw * n;
    let scale = (ht - pad * 2.0) / f64::from(max);
    let _ = write!(
        h,
        "<svg viewBox=\"0 0 {w} {ht}\" role=\"img\" aria-label=\"findings per cycle\"><rect x=\"0\" y=\"0\" width=\"{w}\" height=\"{ht}\" fill=\"#fafbfc\"/>"
    );
    for (i, p) in history.iter().enumerate() {
        let x = x0 + i as f64 * bw;
        let mut y = ht - pad;
        // A blind cycle saw nothing, so its (few) findings are no measure of anything: it is
        // drawn full height in its own colour, never as a shorter, "better" bar.
        if p.blind || p.failed {
            let what = if p.failed { "cycle failed (blind)" } else { "blind: no broker endpoint read" };
            let _ = write!(
                h,
                "<rect class=\"blind\" x=\"{x:.1}\" y=\"{pad:.1}\" width=\"{bw:.1}\" height=\"{:.1}\" fill=\"#4a148c\"><title>{} UTC: {what}</title></rect>",
                ht - pad * 2.0,
                p.at.format("%H:%M:%S")
            );
            continue;
        }
        for (count, color) in
            [(p.info, "#90a4ae"), (p.warning, "#f0a020"), (p.critical, "#c62828"), (p.unknown, "#b0bec5")]
        {
            if count == 0 {
                continue;
            }
            let hgt = f64::from(count) * scale;
            y -= hgt;
            let _ = write!(
                h,
                "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{bw:.1}\" height=\"{hgt:.1}\" fill=\"{color}\"><title>{} UTC: {} critical, {} warning, {} info, {} rules unknown</title></rect>",
                p.at.format("%H:%M:%S"),
                p.critical,
                p.warning,
                p.info,
                p.unknown
            );
        }
    }
    let first = history.front().map(|p| p.at.format("%H:%M").to_string()).unwrap_or_default();
    let last = history.back().map(|p| p.at.format("%H:%M").to_string()).unwrap_or_default();
    let _ = write!(
        h,
        "<text x=\"2\" y=\"12\" font-size=\"11\" fill=\"#5b6673\">{max}</text><text x=\"2\" y=\"{ly}\" font-size=\"11\" fill=\"#5b6673\">{first} UTC</text>\
         <text x=\"{rx}\" y=\"{ly}\" font-size=\"11\" fill=\"#5b6673\" text-anchor=\"end\">{last} UTC</text></svg>",
        ly = ht - 4.0,
        rx = w - 2.0
    );
    h.push_str("<p class=\"muted\"><span class=\"crit\">■</span> critical <span class=\"warn\">■</span> warning <span class=\"info\">■</span> info <span style=\"color:#b0bec5\">■</span> rules unknown <span style=\"color:#4a148c\">■</span> blind</p></section>");
}

fn alerts(h: &mut String, v: &StatusView, now: DateTime<Utc>) {
    h.push_str("<section><h2>Alerts</h2>");
    if v.alerts.is_empty() {
        h.push_str("<p class=\"muted\">no alerts</p></section>");
        return;
    }
    h.push_str("<div class=\"scroll\"><table><tr><th>state</th><th>severity</th><th>rule</th><th>subject</th><th>since</th><th></th></tr>");
    for a in &v.alerts {
        let _ = write!(
            h,
            "<tr><td>{}</td><td class=\"sev {}\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&a.state),
            sev_class(a.severity),
            a.severity,
            esc(&a.rule),
            esc(&a.subject),
            ago(a.since, now),
            if a.silenced { "silenced" } else { "" }
        );
    }
    h.push_str("</table></div></section>");
}

fn silences(h: &mut String, v: &StatusView, now: DateTime<Utc>) {
    if v.silences.is_empty() {
        return;
    }
    h.push_str("<section><h2>Silences</h2><div class=\"scroll\"><table><tr><th>id</th><th>rule</th><th>subject</th><th>ends</th><th>reason</th></tr>");
    for s in &v.silences {
        let left = (s.ends_at - now).num_minutes();
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>in {left}m</td><td>{}</td></tr>",
            esc(&s.id),
            esc(&s.rule),
            esc(s.subject.as_deref().unwrap_or("any")),
            esc(&s.reason)
        );
    }
    h.push_str("</table></div></section>");
}

fn actions(h: &mut String, v: &StatusView, now: DateTime<Utc>) {
    h.push_str("<section><h2>Recent actions</h2>");
    if v.actions.is_empty() {
        h.push_str("<p class=\"muted\">none</p></section>");
        return;
    }
    h.push_str("<div class=\"scroll\"><table><tr><th>when</th><th>action</th><th>subject</th><th>result</th><th>detail</th></tr>");
    for a in v.actions.iter().take(20) {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            ago(a.at, now),
            esc(&a.action),
            esc(&a.subject),
            esc(&a.result),
            esc(&a.detail)
        );
    }
    h.push_str("</table></div></section>");
}
