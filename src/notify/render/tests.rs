//! Rendering tests: subjects, bodies, ordering, and that hostile text never becomes a header.

use std::path::Path;

use chrono::TimeZone;
use serde_json::json;

use super::*;
use crate::alert::Phase;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 20, 14, 30, 0).unwrap()
}

fn ctx() -> MessageContext<'static> {
    MessageContext {
        host: "bot-host",
        config_path: Path::new("/etc/tradewarden/tradewarden.toml"),
        status_url: None,
        firing_total: None,
        mode: Some(Mode::Paper),
        now: t0(),
    }
}

/// Issue 17: the header counted only this message's alerts; with the daemon's count it says how
/// many fire in all (a repeat of one alert while four fire reads "4 alerts firing in all").
#[test]
fn the_header_counts_every_firing_alert_not_only_this_messages() {
    let all = MessageContext { firing_total: Some(4), ..ctx() };
    let r = render(&[note(NotifyReason::Repeat, chwy())], &[], &all).unwrap();
    assert!(r.text.starts_with("tradewarden: 1 still firing (paper account); 4 alerts firing in all\n"), "{}", r.text);
    assert!(r.html.contains("4 alerts firing in all"), "{}", r.html);
    let one = MessageContext { firing_total: Some(1), ..ctx() };
    let r = render(&[note(NotifyReason::Firing, chwy())], &[], &one).unwrap();
    assert!(r.text.starts_with("tradewarden: 1 firing (paper account); 1 alert firing in all\n"), "{}", r.text);
}

/// Issue 17: a diff in an email kept no indentation (each line went through the header
/// cleaner, which collapses whitespace). Its lines keep their indentation in both parts; control
/// characters are still made harmless.
#[test]
fn a_diff_keeps_its_indentation_in_text_and_html() {
    let diff =
        "--- a/state.json\n+++ b/state.json\n   \"opens\": {\n-    \"CHWY\": {\"qty\": 1596},\n+\t\"x\": 1\u{1b}[31m\n";
    let act = ActionNote {
        fingerprint: None,
        description: "fix_state (done): rewrote state.json".into(),
        taken: true,
        detail: Some(diff.into()),
        done: Some("bot state repaired".into()),
    };
    let r = render(&[], &[act], &ctx()).unwrap();
    assert!(r.text.contains("\n      -    \"CHWY\": {\"qty\": 1596},\n"), "{}", r.text);
    assert!(r.text.contains("\n         \"opens\": {\n"), "{}", r.text);
    assert!(r.text.contains("+    \"x\": 1 [31m") && !r.text.contains('\u{1b}'), "{}", r.text);
    assert!(r.html.contains("-    &quot;CHWY&quot;: {&quot;qty&quot;: 1596},"), "{}", r.html);
}

/// Issue 17: with `[server] external_url`, every message links the status page (escaped in
/// the HTML part); without it, no link.
#[test]
fn the_status_page_is_linked_when_its_external_url_is_known() {
    let url = "https://tw.example.org/status?a=1&b=2";
    let with = MessageContext { status_url: Some(url), ..ctx() };
    let r = render(&[note(NotifyReason::Firing, chwy())], &[], &with).unwrap();
    assert!(r.text.contains(&format!("status page: {url}\n")), "{}", r.text);
    assert!(
        r.html.contains("<a href=\"https://tw.example.org/status?a=1&amp;b=2\">Open the status page</a>"),
        "{}",
        r.html
    );
    let r = render(&[note(NotifyReason::Firing, chwy())], &[], &ctx()).unwrap();
    assert!(!r.text.contains("status page:") && !r.html.contains("Open the status page"));
}

fn finding(rule: &str, code: &str, severity: Severity, subject: &str) -> Finding {
    Finding {
        rule: rule.into(),
        check: "no_short_positions".into(),
        code: code.into(),
        severity,
        subject: subject.into(),
        message: format!("{subject} is short -1596 at the broker; this bot is long-only"),
        observed: json!({ "qty": "-1596", "side": "short" }),
        expected: json!({ "qty": ">= 0" }),
    }
}

fn note(reason: NotifyReason, f: Finding) -> Notification {
    let resolved = reason == NotifyReason::Resolved;
    Notification {
        reason,
        alert: AlertState {
            fingerprint: f.fingerprint(),
            rule: f.rule.clone(),
            subject: f.subject.clone(),
            severity: f.severity,
            state: if resolved { Phase::Resolved } else { Phase::Firing },
            active_since: t0() - chrono::Duration::minutes(5),
            fired_at: Some(t0() - chrono::Duration::minutes(3)),
            resolved_at: resolved.then_some(t0()),
            last_seen_at: t0(),
            last_notified_at: Some(t0()),
            repeat_from: Some(t0()),
            consecutive_cycles: 3,
            last_finding: f,
            other_findings: vec![],
            unknown: false,
            silenced: false,
            silenced_by: None,
        },
    }
}

fn chwy() -> Finding {
    finding("no-shorts", "short_position", Severity::Critical, "CHWY")
}

#[test]
fn nothing_to_say_renders_nothing() {
    assert_eq!(render(&[], &[], &ctx()), None);
    // Proposed actions alone (observe mode, a gate said no) send nothing either.
    let proposed = ActionNote {
        fingerprint: None,
        description: "flatten_shorts: close CHWY".into(),
        taken: false,
        detail: None,
        done: None,
    };
    assert_eq!(render(&[], &[proposed], &ctx()), None);
}

#[test]
fn an_action_taken_without_any_notice_still_sends_a_message() {
    let taken = |d: &str| ActionNote {
        fingerprint: Some("no-shorts/CHWY".into()),
        description: d.into(),
        taken: true,
        detail: None,
        done: Some("flattened".into()),
    };
    let proposed = ActionNote { taken: false, ..taken("cancel_hazard_orders: cancel 1 order") };
    let r = render(&[], &[taken("flatten_shorts (done): closed CHWY -1596"), proposed.clone()], &ctx()).unwrap();
    assert_eq!(r.subject, "[tradewarden] ACTION TAKEN: flatten_shorts (done): closed CHWY -1596 (paper)");
    assert!(r.text.starts_with("tradewarden: 1 action taken (paper account)\n"), "{}", r.text);
    assert!(r.text.contains("  - taken: flatten_shorts (done): closed CHWY -1596 [no-shorts/CHWY]"), "{}", r.text);
    assert!(r.text.contains("  - proposed: cancel_hazard_orders"), "{}", r.text);
    assert!(r.html.contains("No alert changed state this cycle.") && r.html.contains("<strong>taken</strong>"));
    // Only resolutions to report besides: the action still leads the subject.
    let r =
        render(&[note(NotifyReason::Resolved, chwy())], &[taken("flatten_shorts (done): closed CHWY -1596")], &ctx())
            .unwrap();
    assert_eq!(r.subject, "[tradewarden] ACTION TAKEN: flatten_shorts (done): closed CHWY -1596 (paper)");
    assert!(r.text.starts_with("tradewarden: 1 action taken, 1 resolved (paper account)\n"), "{}", r.text);
    assert!(r.text.contains("RESOLVED"), "{}", r.text);
    // A firing notice leads, and (issue 17) the action taken says so in the subject, each word
    // once; a proposed action says nothing there.
    let r = render(
        &[note(NotifyReason::Firing, chwy())],
        &[
            taken("flatten_shorts (done): closed CHWY -1596"),
            taken("flatten_shorts (done): closed BILL -413"),
            proposed.clone(),
        ],
        &ctx(),
    )
    .unwrap();
    assert_eq!(r.subject, "[tradewarden] CRITICAL no-shorts: CHWY short -1596; flattened (paper)");
    let r = render(&[note(NotifyReason::Firing, chwy())], std::slice::from_ref(&proposed), &ctx()).unwrap();
    assert_eq!(r.subject, "[tradewarden] CRITICAL no-shorts: CHWY short -1596 (paper)");
    let two = render(&[], &[taken("a (done): x"), taken("b (done): y")], &ctx()).unwrap();
    assert_eq!(two.subject, "[tradewarden] ACTION TAKEN: a (done): x and 1 more (paper)");
    assert!(two.text.starts_with("tradewarden: 2 actions taken (paper account)\n"));
}

#[test]
fn firing_subject_matches_the_issue_example() {
    let r = render(&[note(NotifyReason::Firing, chwy())], &[], &ctx()).unwrap();
    assert_eq!(r.subject, "[tradewarden] CRITICAL no-shorts: CHWY short -1596 (paper)");
}

/// Issue 12: a blind rule's email says it is unknown and why, at the rule's severity.
#[test]
fn a_blind_rule_is_emailed_as_unknown_naming_the_failed_source_or_field() {
    let mut f = finding("no-shorts", "rule_unknown", Severity::Critical, "broker:positions");
    f.observed = json!({ "source": "broker:positions", "status": "unavailable" });
    let r = render(&[note(NotifyReason::Firing, f)], &[], &ctx()).unwrap();
    assert_eq!(r.subject, "[tradewarden] CRITICAL no-shorts: unknown, broker:positions unavailable (paper)");
    let mut f = finding("account", "rule_unknown", Severity::Warning, "account");
    f.observed = json!({ "field": "buying_power", "value": null });
    let r = render(&[note(NotifyReason::Firing, f)], &[], &ctx()).unwrap();
    assert_eq!(r.subject, "[tradewarden] WARNING account: unknown, account buying_power missing or invalid (paper)");
}

#[test]
fn resolved_subject_matches_the_issue_example() {
    let r = render(&[note(NotifyReason::Resolved, chwy())], &[], &ctx()).unwrap();
    assert_eq!(r.subject, "[tradewarden] RESOLVED no-shorts: CHWY (paper)");
    assert!(r.text.contains("RESOLVED"));
    assert!(r.text.contains("resolved at 2026-11-20 14:30:00 UTC"), "{}", r.text);
}

#[test]
fn several_alerts_name_the_worst_and_count_the_rest() {
    let warn = finding("positions-match", "quantity_mismatch", Severity::Warning, "BILL");
    let notes = vec![
        note(NotifyReason::Resolved, finding("no-shorts", "short_position", Severity::Critical, "COIN")),
        note(NotifyReason::Firing, warn),
        note(NotifyReason::Repeat, chwy()),
    ];
    let r = render(&notes, &[], &ctx()).unwrap();
    assert_eq!(r.subject, "[tradewarden] CRITICAL no-shorts: CHWY short -1596 and 2 more (paper)");
    assert!(r.text.starts_with("tradewarden: 1 firing, 1 still firing, 1 resolved (paper account)\n"), "{}", r.text);
    // Order in the body: the critical repeat, the warning, then the resolution.
    let pos = |s: &str| r.text.find(s).unwrap();
    assert!(pos("STILL FIRING") < pos("FIRING        WARNING") && pos("WARNING") < pos("RESOLVED"), "{}", r.text);
    assert!(r.text.contains("BILL quantity mismatch") || r.html.contains("quantity_mismatch"));
}

#[test]
fn among_equals_the_subject_names_the_largest_stake() {
    // The phantom exit: four shorts, CHWY the largest by market value (BILL sorts first by name).
    let short = |symbol: &str, qty: &str, value: Option<&str>| {
        let mut f = finding("no-shorts", "short_position", Severity::Critical, symbol);
        f.observed = json!({"qty": qty, "side": "short", "market_value": value});
        note(NotifyReason::Firing, f)
    };
    let notes = vec![
        short("BILL", "-413", Some("-35105.00")),
        short("CHWY", "-1596", Some("-63840.00")),
        short("COIN", "-72", Some("-23760.00")),
        short("OKTA", "-170", Some("-18700.00")),
    ];
    let r = render(&notes, &[], &ctx()).unwrap();
    assert_eq!(r.subject, "[tradewarden] CRITICAL no-shorts: CHWY short -1596 and 3 more (paper)");
    let pos = |s: &str| r.text.find(&format!("no-shorts  {s}")).unwrap_or_else(|| panic!("{s}: {}", r.text));
    assert!(pos("CHWY") < pos("BILL") && pos("BILL") < pos("COIN") && pos("COIN") < pos("OKTA"), "{}", r.text);
    // Without market values, quantities decide; without either, the name.
    let notes = vec![short("AAA", "-5", None), short("ZZZ", "-50", None)];
    assert!(render(&notes, &[], &ctx()).unwrap().subject.contains("ZZZ short -50"));
    // Severity still comes first.
    let mut small = finding("no-shorts", "short_position", Severity::Critical, "TINY");
    small.observed = json!({"qty": "-1"});
    let mut big = finding("exposure", "position_too_large", Severity::Warning, "HUGE");
    big.observed = json!({"market_value": "9999999"});
    let r = render(&[note(NotifyReason::Firing, big), note(NotifyReason::Firing, small)], &[], &ctx()).unwrap();
    assert!(r.subject.starts_with("[tradewarden] CRITICAL no-shorts: TINY"), "{}", r.subject);
}

#[test]
fn bodies_carry_findings_actions_host_config_and_mode() {
    let actions = vec![
        ActionNote {
            fingerprint: Some("no-shorts/CHWY".into()),
            description: "flatten_shorts: close CHWY (-1596) via DELETE /v2/positions/CHWY".into(),
            taken: false,
            detail: Some("--- a\n+++ b\n-old\n+new".into()),
            done: None,
        },
        ActionNote {
            fingerprint: None,
            description: "exec:stop-bot ran (exit 0)".into(),
            taken: true,
            detail: None,
            done: Some("command run".into()),
        },
    ];
    let r = render(&[note(NotifyReason::Firing, chwy())], &actions, &ctx()).unwrap();
    for needle in [
        "code:      short_position",
        "observed:  qty=-1596, side=short",
        "expected:  qty=>= 0",
        "since 2026-11-20 14:25:00 UTC, firing since 2026-11-20 14:27:00 UTC",
        "proposed: flatten_shorts: close CHWY",
        "taken: exec:stop-bot ran (exit 0)",
        "      +new",
        "host:   bot-host",
        "config: /etc/tradewarden/tradewarden.toml",
        "mode:   paper",
    ] {
        assert!(r.text.contains(needle), "text lacks {needle:?}:\n{}", r.text);
    }
    for needle in [
        "<code>short_position</code>",
        "qty=-1596, side=short",
        "qty=&gt;= 0",
        "<strong>proposed</strong>",
        "<strong>taken</strong>",
        "bot-host",
        "/etc/tradewarden/tradewarden.toml",
        "mode paper",
    ] {
        assert!(r.html.contains(needle), "html lacks {needle:?}:\n{}", r.html);
    }
    assert!(!r.html.contains("<style") && !r.html.contains("<link"), "inline CSS only");
}

#[test]
fn hostile_text_cannot_add_headers_or_markup() {
    let mut f = chwy();
    f.subject = "CHWY\r\nBcc: evil@x".into();
    f.message = "<script>alert(1)</script>\nX-Injected: yes".into();
    f.observed = json!({ "qty": "-1\r\nBcc: evil@x", "note": "<b>&</b>" });
    let mut n = note(NotifyReason::Firing, f);
    n.alert.rule = "no-shorts\nReply-To: x@y".into();
    let r = render(&[n], &[], &ctx()).unwrap();
    assert!(!r.subject.contains('\r') && !r.subject.contains('\n'), "{:?}", r.subject);
    assert!(r.subject.contains("CHWY Bcc: evil@x"), "{}", r.subject);
    assert!(!r.text.lines().any(|l| l.starts_with("Bcc:") || l.starts_with("X-Injected") || l.starts_with("Reply-To")));
    assert!(!r.html.contains("<script>") && r.html.contains("&lt;script&gt;"));
    assert!(r.html.contains("&lt;b&gt;&amp;&lt;/b&gt;"));
}

#[test]
fn header_safe_flattens_every_control_character() {
    assert_eq!(header_safe("a\r\nb\tc\u{0}d\u{85}e\u{2028}f  g "), "a b c d e f g");
    assert_eq!(header_safe("\r\n"), "");
}

#[test]
fn long_subjects_are_truncated_but_keep_the_mode() {
    let mut f = chwy();
    f.subject = "X".repeat(500);
    let r = render(&[note(NotifyReason::Firing, f)], &[], &ctx()).unwrap();
    assert!(r.subject.chars().count() <= SUBJECT_MAX);
    assert!(r.subject.ends_with("… (paper)"), "{}", r.subject);
}

#[test]
fn unknown_alerts_say_the_state_is_held() {
    let mut n = note(NotifyReason::Repeat, chwy());
    n.alert.unknown = true;
    let r = render(&[n], &[], &ctx()).unwrap();
    assert!(r.text.contains("could not be evaluated this cycle"), "{}", r.text);
}

#[test]
fn test_message_names_transport_and_host() {
    let r = render_test(&ctx(), "smtp://127.0.0.1:2525 (tls none)");
    assert_eq!(r.subject, "[tradewarden] TEST message from bot-host");
    assert!(r.text.contains("transport: smtp://127.0.0.1:2525 (tls none)"));
    assert!(r.html.contains("alerts test"));
}

/// Bot- and broker-controlled text with CR/LF and header lines, from a finding through the
/// outbox to the bytes sent: exactly the headers tradewarden writes, and one recipient.
#[test]
fn hostile_text_adds_no_header_to_the_message_on_the_wire() {
    let mut f = chwy();
    f.subject = "CHWY\r\nBcc: evil@x.example\r\n".into();
    f.message = "short\r\n\r\nBcc: evil@x.example\nSubject: forged".into();
    f.observed = json!({ "qty": "-1\r\nBcc: evil@x.example", "note\r\nCc: evil@x.example": 1 });
    let mut n = note(NotifyReason::Firing, f);
    n.alert.rule = "no-shorts\r\nReply-To: evil@x.example".into();
    let rendered = render(&[n], &[], &ctx()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let outbox = crate::notify::outbox::Outbox::new(dir.path());
    let queued = outbox.enqueue(&rendered, "tradewarden@example.com", &["ops@example.com".to_owned()], t0()).unwrap();
    let message = crate::notify::email::build_message(&queued).unwrap();
    assert_eq!(message.envelope().to().len(), 1, "one recipient");
    let raw = String::from_utf8(message.formatted()).unwrap();
    let head = raw.split("\r\n\r\n").next().unwrap().replace("\r\n ", " ").replace("\r\n\t", " ");
    let names: Vec<String> = head.split("\r\n").map(|h| h.split(':').next().unwrap().to_ascii_lowercase()).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        ["content-type", "date", "from", "message-id", "mime-version", "subject", "to", "user-agent"],
        "{head}"
    );
    let subject = head.split("\r\n").find(|h| h.starts_with("Subject:")).unwrap();
    assert!(subject.contains("CHWY Bcc: evil@x.example"), "{subject}");
    // In the bodies, a hostile line never starts a line of its own with a header name.
    for line in raw.split("\r\n").skip(names.len()) {
        let l = line.to_ascii_lowercase();
        assert!(!(l.starts_with("bcc:") || l.starts_with("cc:") || l.starts_with("reply-to:")), "{line:?}");
    }
}
