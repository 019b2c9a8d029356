//! `/metrics`: the Prometheus text exposition format (version 0.0.4), rendered at scrape time
//! from the `StatusView`. Every series is derived from the current state, so label sets that no
//! longer exist disappear instead of lingering as they would in a long-lived registry.

use std::collections::BTreeMap;
use std::fmt::Write;

use chrono::{DateTime, Utc};

use super::view::StatusView;

/// Escapes a label value: backslash, double quote and newline.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Renders every metric.
#[must_use]
pub fn render_metrics(v: &StatusView, now: DateTime<Utc>) -> String {
    let mut o = String::with_capacity(4096);
    family(&mut o, "tradewarden_up", "gauge", "1 while the last cycle finished within three intervals.");
    let _ = writeln!(o, "tradewarden_up {}", u8::from(v.healthy(now)));
    family(
        &mut o,
        "tradewarden_blind",
        "gauge",
        "1 while the watchdog has read no broker endpoint for [server] blind_after.",
    );
    let _ = writeln!(o, "tradewarden_blind {}", u8::from(v.blind(now).is_some()));
    family(
        &mut o,
        "tradewarden_blind_cycles",
        "gauge",
        "Consecutive cycles, up to the last, that read no broker endpoint.",
    );
    let _ = writeln!(o, "tradewarden_blind_cycles {}", v.blind_cycles);
    family(
        &mut o,
        "tradewarden_state_dir_unwritable",
        "gauge",
        "1 while cycles cannot write their state files (alerts.json, last_report.json, audits.jsonl, outbox).",
    );
    let _ = writeln!(o, "tradewarden_state_dir_unwritable {}", u8::from(v.state_dir.is_some()));
    family(&mut o, "tradewarden_cycles_total", "counter", "Cycles run since start.");
    let _ = writeln!(o, "tradewarden_cycles_total {}", v.cycles);
    family(&mut o, "tradewarden_cycle_duration_seconds", "gauge", "Duration of the last cycle.");
    if let Some(s) = v.last_cycle_seconds {
        let _ = writeln!(o, "tradewarden_cycle_duration_seconds {s}");
    }
    family(
        &mut o,
        "tradewarden_last_successful_cycle_timestamp_seconds",
        "gauge",
        "Unix time of the last cycle that completed its audit.",
    );
    if let Some(t) = v.last_success_at {
        let _ = writeln!(o, "tradewarden_last_successful_cycle_timestamp_seconds {}", t.timestamp());
    }
    family(&mut o, "tradewarden_findings", "gauge", "Findings in the last cycle, by rule, code and severity.");
    if let Some(r) = &v.report {
        let mut counts: BTreeMap<(&str, &str, &str), u64> = BTreeMap::new();
        for f in &r.findings {
            *counts.entry((&f.rule, &f.code, f.severity.as_str())).or_default() += 1;
        }
        for ((rule, code, sev), n) in counts {
            let _ = writeln!(
                o,
                "tradewarden_findings{{rule=\"{}\",code=\"{}\",severity=\"{sev}\"}} {n}",
                label(rule),
                label(code)
            );
        }
    }
    family(
        &mut o,
        "tradewarden_rule_outcome",
        "gauge",
        "1 for each rule's outcome in the last cycle (ok, violated, unknown, skipped).",
    );
    if let Some(r) = &v.report {
        for rule in &r.rules {
            let _ = writeln!(
                o,
                "tradewarden_rule_outcome{{rule=\"{}\",outcome=\"{}\"}} 1",
                label(&rule.id),
                rule.outcome.as_str()
            );
        }
    }
    family(
        &mut o,
        "tradewarden_source_up",
        "gauge",
        "1 when a source (broker, positions, metadata, log:NAME) was read and understood.",
    );
    if let Some(r) = &v.report {
        for s in &r.sources {
            let _ =
                writeln!(o, "tradewarden_source_up{{source=\"{}\"}} {}", label(&s.name), u8::from(s.status == "ok"));
        }
    }
    family(&mut o, "tradewarden_alerts", "gauge", "Alerts by rule, state and severity.");
    let mut alerts: BTreeMap<(&str, &str, &str), u64> = BTreeMap::new();
    for a in &v.alerts {
        *alerts.entry((&a.rule, &a.state, a.severity.as_str())).or_default() += 1;
    }
    for ((rule, state, sev), n) in alerts {
        let _ = writeln!(
            o,
            "tradewarden_alerts{{rule=\"{}\",state=\"{}\",severity=\"{sev}\"}} {n}",
            label(rule),
            label(state)
        );
    }
    family(&mut o, "tradewarden_broker_requests_total", "counter", "Broker requests by endpoint.");
    for e in &v.broker {
        let _ = writeln!(o, "tradewarden_broker_requests_total{{endpoint=\"{}\"}} {}", label(&e.endpoint), e.requests);
    }
    family(&mut o, "tradewarden_broker_errors_total", "counter", "Failed broker requests by endpoint.");
    for e in &v.broker {
        let _ = writeln!(o, "tradewarden_broker_errors_total{{endpoint=\"{}\"}} {}", label(&e.endpoint), e.errors);
    }
    family(&mut o, "tradewarden_outbox_depth", "gauge", "Emails waiting in the outbox.");
    let _ = writeln!(o, "tradewarden_outbox_depth {}", v.outbox_depth);
    family(&mut o, "tradewarden_actions_total", "counter", "Actions by kind and result.");
    for a in &v.action_counts {
        let _ = writeln!(
            o,
            "tradewarden_actions_total{{action=\"{}\",result=\"{}\"}} {}",
            label(&a.action),
            label(&a.result),
            a.count
        );
    }
    o
}
