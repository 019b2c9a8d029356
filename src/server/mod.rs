//! The status server of `tradewarden run`: `/` (the HTML status page), `/api/status` (the last
//! JSON report plus alert states), `/metrics` (Prometheus text) and `/healthz` (200, or 503 with
//! the reasons: stale, blind for `[server] blind_after`, or the state directory not writable).
//! Loopback by default; it serves nothing secret (the view holds no credentials).

mod host;
mod metrics;
mod page;
mod view;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use tokio::sync::{oneshot, watch};

pub use host::AllowedHosts;
pub use metrics::render_metrics;
pub use page::{esc, render_page};
pub use view::{
    ActionCount, ActionRow, AlertRow, CyclePoint, EndpointCount, HISTORY_POINTS, Overall, STALE_INTERVALS, SilenceRow,
    StateDirProblem, StatusView,
};

use crate::clock::Clock;

/// What the daemon shares with the server.
pub struct Shared {
    /// The latest view; the daemon replaces it after every cycle.
    pub view: RwLock<StatusView>,
    /// The clock.
    pub clock: Arc<dyn Clock>,
}

impl Shared {
    /// A copy of the current view.
    #[must_use]
    pub fn snapshot(&self) -> StatusView {
        self.view.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Updates the view in place.
    pub fn update(&self, f: impl FnOnce(&mut StatusView)) {
        let mut v = self.view.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut v);
    }
}

/// The router. Every route, `/healthz` included, first checks the Host header against `hosts`.
pub fn router(shared: Arc<Shared>, hosts: Arc<AllowedHosts>) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/api/status", get(api))
        .route("/metrics", get(metrics_handler))
        .route("/healthz", get(healthz))
        .with_state(shared)
        .layer(axum::middleware::from_fn_with_state(hosts, host::check))
}

async fn index(State(s): State<Arc<Shared>>) -> Html<String> {
    Html(render_page(&s.snapshot(), s.clock.now()))
}

async fn api(State(s): State<Arc<Shared>>) -> Response {
    let v = s.snapshot();
    let body = serde_json::to_string_pretty(&v).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

async fn metrics_handler(State(s): State<Arc<Shared>>) -> Response {
    let body = render_metrics(&s.snapshot(), s.clock.now());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], body).into_response()
}

async fn healthz(State(s): State<Arc<Shared>>) -> Response {
    let v = s.snapshot();
    let problems = v.health_problems(s.clock.now());
    if problems.is_empty() {
        (StatusCode::OK, "ok\n").into_response()
    } else {
        // Still the liveness probe, but one that says when the process runs without watching:
        // blind (no broker endpoint read for `blind_after`) or unable to write its state.
        (StatusCode::SERVICE_UNAVAILABLE, problems.join("\n") + "\n").into_response()
    }
}

/// How the status server protects the watchdog from its clients.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// A client must send a request's headers within this (from the connection's start or the
    /// end of its previous request), or the connection is closed.
    pub header_timeout: Duration,
    /// The most connections kept open at once; a new one past it closes the oldest.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_timeout: crate::config::ServerConfig::DEFAULT_HEADER_TIMEOUT,
            max_connections: crate::config::ServerConfig::DEFAULT_MAX_CONNECTIONS,
        }
    }
}

/// The open connections, oldest first (ids increase), each with the sender that closes it.
type Open = Arc<Mutex<BTreeMap<u64, oneshot::Sender<()>>>>;

/// Removes a connection from `Open` when its task ends, however it ends.
struct Registered {
    open: Open,
    id: u64,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.open.lock().unwrap_or_else(PoisonError::into_inner).remove(&self.id);
    }
}

/// Serves until `shutdown` completes.
///
/// Idle clients cannot take the watchdog's descriptors (an incident: ~1,100 idle connections
/// exhausted a 1024-descriptor limit and the watchdog went blind, unable to open a socket to
/// the broker or its log files): every connection must send its request headers within
/// `limits.header_timeout`, and at most `limits.max_connections` stay open. Past the cap the
/// oldest connection is closed to admit the newest, rather than the newest refused, so a flood
/// of idle sockets cannot lock out a health probe that sends its request at once.
///
/// # Errors
/// When the listener fails for good (never in practice: accept errors are retried).
pub async fn serve(
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
    limits: Limits,
    hosts: AllowedHosts,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(shared, Arc::new(hosts));
    let open: Open = Arc::new(Mutex::new(BTreeMap::new()));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    let mut next_id = 0_u64;
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            a = listener.accept() => a,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) if is_connection_error(&e) => continue,
            Err(e) => {
                // Out of descriptors (EMFILE/ENFILE) or similar: say so and back off instead of
                // spinning; the cap makes this the rest of the process's problem, not ours.
                tracing::warn!(error = %e, "The status server cannot accept a connection; retrying in 1 s.");
                tokio::select! {
                    () = &mut shutdown => break,
                    () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                }
            }
        };
        let (close_tx, close_rx) = oneshot::channel::<()>();
        let id = next_id;
        next_id += 1;
        {
            let mut map = open.lock().unwrap_or_else(PoisonError::into_inner);
            while map.len() >= limits.max_connections.max(1) {
                if let Some((_, oldest)) = map.pop_first() {
                    let _ = oldest.send(());
                }
            }
            map.insert(id, close_tx);
        }
        let registered = Registered { open: open.clone(), id };
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        let mut stop = stop_rx.clone();
        let header_timeout = limits.header_timeout;
        tokio::spawn(async move {
            let _registered = registered;
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder.timer(hyper_util::rt::TokioTimer::new()).header_read_timeout(header_timeout);
            let conn = builder.serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            let mut conn = std::pin::pin!(conn);
            let mut close_rx = close_rx;
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        tracing::debug!(error = %e, "Status connection ended with an error.");
                    }
                }
                // Evicted past the cap: dropped at once (the oldest is usually an idle one).
                _ = &mut close_rx => {}
                () = async { let _ = stop.wait_for(|s| *s).await; } => {
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(Duration::from_secs(2), conn).await;
                }
            }
        });
    }
    let _ = stop_tx.send(true);
    // Let in-flight requests finish (each task is bounded by its own 2 s grace).
    let end = tokio::time::Instant::now() + Duration::from_secs(2);
    while !open.lock().unwrap_or_else(PoisonError::into_inner).is_empty() && tokio::time::Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    matches!(e.kind(), ConnectionRefused | ConnectionAborted | ConnectionReset)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::testkit::{SnapshotBuilder, t0};
    use crate::clock::ManualClock;
    use crate::model::{Finding, Severity};
    use crate::report::Report;

    fn view_with_findings() -> StatusView {
        let snap = SnapshotBuilder::new().position("CHWY", "-1596", "40").build();
        let mut ev = crate::engine::Evaluated::default();
        ev.findings.push(Finding {
            rule: "no-shorts".into(),
            check: "no_short_positions".into(),
            code: "short_position".into(),
            severity: Severity::Critical,
            subject: "CHWY".into(),
            message: "CHWY is short -1596 <script>alert(1)</script>".into(),
            observed: serde_json::json!({}),
            expected: serde_json::json!({}),
        });
        let mut v = StatusView::new(t0(), "bot-host".into(), "/etc/tw.toml".into(), Duration::from_secs(30));
        v.report = Some(Report::build(&snap, &ev));
        v.alerts.push(AlertRow {
            fingerprint: "no-shorts/CHWY".into(),
            rule: "no-shorts".into(),
            subject: "CHWY".into(),
            severity: Severity::Critical,
            state: "firing".into(),
            since: t0() - chrono::Duration::minutes(12),
            silenced: false,
            message: "short".into(),
        });
        v.push_point(CyclePoint {
            at: t0(),
            critical: 1,
            warning: 0,
            info: 0,
            failed: false,
            blind: false,
            unknown: 0,
        });
        v.cycles = 1;
        v.last_cycle_at = Some(t0());
        v
    }

    #[test]
    fn page_shows_findings_since_when_and_escapes_text() {
        let html = render_page(&view_with_findings(), t0());
        assert!(html.contains("short_position"));
        assert!(html.contains("12m ago"), "since-when from the alert");
        assert!(html.contains("&lt;script&gt;"), "message text is escaped");
        assert!(!html.contains("<script>"));
        assert!(html.contains("<svg"), "inline chart");
        assert!(html.contains("http-equiv=\"refresh\""));
        assert!(!html.contains("http://") && !html.contains("https://"), "no external assets");
    }

    /// The view after `n` cycles (one a second from `t0`) in which every broker call failed:
    /// the broker-facing rule unknown, one `source_unavailable` warning, nothing critical.
    fn blind_view(n: u32) -> StatusView {
        use crate::model::{Outcome, RuleOutcome};
        let mut v = StatusView::new(t0(), "h".into(), "c".into(), Duration::from_secs(1));
        let mut rep = view_with_findings().report.unwrap();
        rep.findings.clear();
        rep.summary = crate::report::Summary { critical: 0, warning: 1, info: 0, unknown: 0 };
        rep.rules = vec![RuleOutcome {
            id: "no-shorts".into(),
            check: "no_short_positions".into(),
            outcome: Outcome::Unknown,
            reason: Some("broker positions unavailable: connection refused".into()),
        }];
        v.report = Some(rep);
        v.history.clear();
        for i in 0..n {
            let at = t0() + chrono::Duration::seconds(i64::from(i));
            v.push_point(CyclePoint { at, critical: 0, warning: 1, info: 0, failed: false, blind: true, unknown: 1 });
            v.blind_cycles += 1;
            v.blind_since.get_or_insert(at);
            v.blind_detail = Some("broker:positions: connection refused".into());
            v.cycles += 1;
            v.last_cycle_at = Some(at);
        }
        v
    }

    #[test]
    fn every_broker_call_failing_makes_healthz_503_blind_after_two_cycles() {
        let now = t0() + chrono::Duration::seconds(2);
        let one = blind_view(1);
        assert!(one.blind(now).is_none(), "one blind cycle is not yet `blind_after` (2 cycles)");
        assert_eq!(one.overall(now), Overall::Unknown, "but it is never ok");
        let two = blind_view(2);
        let problems = two.health_problems(now);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].starts_with("blind: no broker endpoint read for 2 cycles"), "{problems:?}");
        assert!(problems[0].contains("connection refused"), "{problems:?}");
        assert_eq!(two.overall(now), Overall::Blind);
        let m = render_metrics(&two, now);
        assert!(m.contains("\ntradewarden_blind 1\n") && m.contains("\ntradewarden_blind_cycles 2\n"), "{m}");
        assert!(m.contains("\ntradewarden_up 1\n"), "the process is alive: liveness stays up");

        // A duration: blind once the first blind cycle is that old.
        let mut d = blind_view(1);
        d.blind_after = crate::config::Hold::Duration(Duration::from_secs(30));
        assert!(d.blind(t0() + chrono::Duration::seconds(29)).is_none());
        assert!(d.blind(t0() + chrono::Duration::seconds(30)).is_some());
    }

    #[test]
    fn a_blind_watchdogs_page_says_blind_lists_unknown_rules_and_never_looks_better() {
        let v = blind_view(3);
        let now = t0() + chrono::Duration::seconds(3);
        let html = render_page(&v, now);
        assert!(html.contains("data-state=\"blind\""), "the badge: {html}");
        assert!(!html.contains(">healthy<") && !html.contains("data-state=\"ok\""), "never healthy");
        assert!(html.contains("The watchdog is not watching") && html.contains("no broker endpoint read"));
        assert!(
            html.contains("Unknown rules (1)") && html.contains("broker positions unavailable: connection refused")
        );
        assert!(html.contains("rules violated / unknown / ok"));
        assert!(!html.contains("the bot agrees with the broker"), "no all-clear from a blind cycle");
        // Each blind cycle is one full-height bar in the blind colour; none is a short orange bar.
        assert_eq!(html.matches("<rect class=\"blind\"").count(), 3, "{html}");
        assert!(!html.contains("fill=\"#f0a020\""), "no warning-coloured bar for a blind cycle");

        // A violated rule outranks blind; a report with an unknown rule but a readable broker
        // is `unknown`; with every rule ok, `ok`.
        let mut w = v.clone();
        w.report.as_mut().unwrap().rules[0].outcome = crate::model::Outcome::Violated;
        assert_eq!(w.overall(now), Overall::Violated);
        let mut u = v.clone();
        (u.blind_cycles, u.blind_since) = (0, None);
        assert_eq!(u.overall(now), Overall::Unknown);
        u.report.as_mut().unwrap().rules[0].outcome = crate::model::Outcome::Ok;
        assert_eq!(u.overall(now), Overall::Ok);
    }

    #[test]
    fn after_a_cycle_that_could_not_collect_the_page_says_its_report_is_older() {
        let mut v = view_with_findings();
        let html = render_page(&v, t0());
        assert!(!html.contains("id=\"old-report\""), "{html}");
        v.last_cycle = Some(crate::report::CycleRecord {
            at: t0(),
            ok: false,
            error: Some("snapshot directory unreadable".into()),
            ..crate::report::CycleRecord::default()
        });
        let html = render_page(&v, t0());
        assert!(html.contains("could not collect (snapshot directory unreadable)"), "{html}");
    }

    #[test]
    fn the_page_shows_the_reports_reconciliation_table() {
        let html = render_page(&view_with_findings(), t0());
        assert!(html.contains("Broker vs bot"), "{html}");
        assert!(html.contains("<td>CHWY</td><td>-1596</td>"), "{html}");
        assert!(html.contains(">short</td>"), "{html}");
    }

    #[test]
    fn health_follows_three_intervals() {
        let v = view_with_findings();
        assert!(v.healthy(t0() + chrono::Duration::seconds(90)));
        assert!(!v.healthy(t0() + chrono::Duration::seconds(91)));
        let fresh = StatusView::new(t0(), "h".into(), "c".into(), Duration::from_secs(30));
        assert!(fresh.healthy(t0() + chrono::Duration::seconds(60)), "before the first cycle, measured from start");
    }

    #[test]
    fn metrics_are_prometheus_text_with_escaped_labels() {
        let mut v = view_with_findings();
        v.broker.push(EndpointCount { endpoint: "GET /v2/positions".into(), requests: 3, errors: 1 });
        v.action_counts.push(ActionCount { action: "flatten_shorts".into(), result: "done".into(), count: 2 });
        v.alerts[0].rule = "we\"ird\\rule".into();
        v.last_cycle_seconds = Some(0.25);
        v.last_success_at = Some(t0());
        let m = render_metrics(&v, t0());
        assert!(m.contains("# TYPE tradewarden_findings gauge"));
        assert!(m.contains("tradewarden_findings{rule=\"no-shorts\",code=\"short_position\",severity=\"critical\"} 1"));
        assert!(
            m.contains("tradewarden_alerts{rule=\"we\\\"ird\\\\rule\",state=\"firing\",severity=\"critical\"} 1"),
            "{m}"
        );
        assert!(m.contains("tradewarden_broker_requests_total{endpoint=\"GET /v2/positions\"} 3"));
        assert!(m.contains("tradewarden_broker_errors_total{endpoint=\"GET /v2/positions\"} 1"));
        assert!(m.contains("tradewarden_actions_total{action=\"flatten_shorts\",result=\"done\"} 2"));
        assert!(m.contains("tradewarden_cycle_duration_seconds 0.25"));
        assert!(m.contains(&format!("tradewarden_last_successful_cycle_timestamp_seconds {}", t0().timestamp())));
        assert!(m.contains("tradewarden_up 1"));
        for line in m.lines().filter(|l| !l.starts_with('#')) {
            let value = line.rsplit(' ').next().unwrap();
            assert!(value.parse::<f64>().is_ok(), "sample value of `{line}`");
        }
    }

    #[test]
    fn shipped_prometheus_alert_rules_use_metrics_we_export() {
        let rules = include_str!("../../deploy/prometheus/alerts.yml");
        let exported = render_metrics(&view_with_findings(), t0());
        let mut names: Vec<&str> = rules
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|w| w.starts_with("tradewarden_"))
            .collect();
        names.sort_unstable();
        names.dedup();
        assert!(names.len() >= 6, "{names:?}");
        for name in names {
            assert!(
                exported.contains(&format!("# TYPE {name} ")),
                "alerts.yml uses `{name}`, which /metrics does not export"
            );
        }
    }

    #[tokio::test]
    async fn serves_the_four_endpoints_over_http() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let clock = Arc::new(ManualClock::new(t0()));
        let shared = Arc::new(Shared { view: RwLock::new(view_with_findings()), clock: clock.clone() });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let hosts = AllowedHosts::new(Some(addr), &[]);
        let server = tokio::spawn(serve(listener, shared, Limits::default(), hosts, async move {
            let _ = rx.await;
        }));
        let c = reqwest::Client::new();
        let get = |p: &str| c.get(format!("http://{addr}{p}")).send();
        let page = get("/").await.unwrap();
        assert_eq!(page.status(), 200);
        assert!(page.text().await.unwrap().contains("no-shorts"));
        let api: serde_json::Value = get("/api/status").await.unwrap().json().await.unwrap();
        assert_eq!(api["report"]["findings"][0]["subject"], "CHWY");
        assert_eq!(api["alerts"][0]["state"], "firing");
        let metrics = get("/metrics").await.unwrap();
        assert!(metrics.headers()["content-type"].to_str().unwrap().starts_with("text/plain; version=0.0.4"));
        assert_eq!(get("/healthz").await.unwrap().status(), 200);
        clock.advance(chrono::Duration::seconds(120));
        let stale = get("/healthz").await.unwrap();
        assert_eq!(stale.status(), 503);
        assert!(stale.text().await.unwrap().contains("120s ago"));
        let _ = tx.send(());
        server.await.unwrap().unwrap();
    }
}
