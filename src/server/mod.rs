//! The status server of `tradewarden run`: `/` (the HTML status page), `/api/status` (the last
//! JSON report plus alert states), `/metrics` (Prometheus text) and `/healthz` (200 while the last
//! cycle finished within three intervals, else 503). Loopback by default; it serves nothing
//! secret (the view holds no credentials).

mod metrics;
mod page;
mod view;

use std::future::Future;
use std::sync::{Arc, RwLock};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;

pub use metrics::render_metrics;
pub use page::{esc, render_page};
pub use view::{ActionCount, ActionRow, AlertRow, CyclePoint, EndpointCount, HISTORY_POINTS, SilenceRow, StatusView};

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

/// The router.
pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/api/status", get(api))
        .route("/metrics", get(metrics_handler))
        .route("/healthz", get(healthz))
        .with_state(shared)
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
    let now = s.clock.now();
    if v.healthy(now) {
        (StatusCode::OK, "ok\n").into_response()
    } else {
        let since = v.last_cycle_at.map_or_else(
            || "no cycle has finished".to_owned(),
            |t| format!("last cycle finished {}s ago", (now - t).num_seconds()),
        );
        (StatusCode::SERVICE_UNAVAILABLE, format!("stale: {since}\n")).into_response()
    }
}

/// Serves until `shutdown` completes.
///
/// # Errors
/// When the server fails.
pub async fn serve(
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(shared)).with_graceful_shutdown(shutdown).await
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

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
        v.push_point(CyclePoint { at: t0(), critical: 1, warning: 0, info: 0, failed: false });
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
        let server = tokio::spawn(serve(listener, shared, async move {
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
