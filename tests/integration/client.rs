//! The Alpaca client against the real simulator over loopback: every read and write, the
//! five-request audit, retries under injected faults, 429 handling, malformed bodies,
//! timeouts, and writes that are never retried.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tradewarden::collect::broker::alpaca::{
    AlpacaClient, BrokerError, ClientSettings, ConfigurationPatch, Endpoint, OrderStatusFilter, RetryPolicy,
};
use tradewarden::model::{Side, SourceErrorKind};

use crate::simulator::{KEY_ID, SECRET, Sim, phantom_exit_scenario};

fn client_with(url: &str, secret: &str, timeout: Duration, retry: RetryPolicy) -> AlpacaClient {
    let _ = rustls::crypto::ring::default_provider().install_default();
    AlpacaClient::new(&ClientSettings {
        base_url: url.to_owned(),
        key_id: KEY_ID.to_owned(),
        secret_key: secret.to_owned(),
        timeout,
        retry,
    })
    .unwrap()
}

/// Fast retries so fault tests take milliseconds.
fn fast() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(20),
        max_rate_limit_wait: Duration::from_secs(10),
    }
}

fn client(sim: &Sim) -> AlpacaClient {
    client_with(&sim.url, SECRET, Duration::from_secs(5), fast())
}

fn requests(sim: &Sim, key: &str) -> u64 {
    sim.requests().get(key).copied().unwrap_or(0)
}

#[tokio::test]
async fn every_read_parses_the_simulator() {
    let sim = Sim::start(&phantom_exit_scenario());
    let c = client(&sim);
    assert_eq!(c.mode(), tradewarden::model::Mode::Paper, "loopback is paper");

    let account = c.account().await.unwrap();
    assert_eq!(account.value.status, "ACTIVE");
    assert!(account.value.equity.is_some());
    assert!(serde_json::from_slice::<Value>(&account.body).is_ok());

    let positions = c.positions().await.unwrap().value;
    assert_eq!(positions.len(), 5);
    let chwy = positions.iter().find(|p| p.symbol.as_str() == "CHWY").unwrap();
    assert_eq!((chwy.qty.to_string().as_str(), chwy.side), ("-1596", Side::Short));

    let orders = c.open_orders().await.unwrap().value;
    assert_eq!(orders.len(), 1);
    assert_eq!(orders[0].symbol.as_str(), "CHWY");

    assert!(c.clock().await.unwrap().value.is_open);
    assert_eq!(c.configuration().await.unwrap().value.no_shorting, Some(false));
    let full = c.get_configuration().await.unwrap();
    assert_eq!(full.suspend_trade, Some(false));

    let okta = c.get_position("OKTA").await.unwrap().unwrap();
    assert_eq!(okta.qty.to_string(), "-170");
    assert_eq!(c.get_position("MSFT").await.unwrap(), None, "404 is no position");

    let all = c.list_orders(OrderStatusFilter::All, &["CHWY", "AAPL"]).await.unwrap();
    assert_eq!(all.len(), 1);
    assert!(c.list_orders(OrderStatusFilter::Closed, &[]).await.unwrap().is_empty());
}

#[tokio::test]
async fn one_audit_view_costs_exactly_five_requests() {
    let sim = Sim::start(&phantom_exit_scenario());
    let c = client(&sim);
    let view = c.view().await;
    assert!(view.errors().is_empty(), "{:?}", view.errors());
    assert_eq!(view.positions.as_ref().unwrap().len(), 5);
    assert!(view.configuration.as_ref().unwrap().is_ok());
    let files: Vec<&str> = view.bodies.keys().map(String::as_str).collect();
    assert_eq!(files, ["account.json", "account_configurations.json", "clock.json", "orders.json", "positions.json"]);
    assert_eq!(sim.total_requests(), 5, "{:?}", sim.requests());
    for key in
        ["GET /v2/account", "GET /v2/positions", "GET /v2/orders", "GET /v2/clock", "GET /v2/account/configurations"]
    {
        assert_eq!(requests(&sim, key), 1, "{key}: {:?}", sim.requests());
    }
    assert_eq!(c.metrics().requests_total(), 5);
}

/// Review 2 (issue 12): confirmation polling and a wide flatten could spend the account's whole
/// Alpaca rate limit, which the bot shares. The budget holds every clone of the client to it,
/// over HTTP: N requests take at least (N - a minute's worth) / rate, and none is dropped.
#[tokio::test]
async fn the_request_budget_spaces_requests_past_max_requests_per_minute_across_clones() {
    use tradewarden::collect::broker::alpaca::RequestBudget;
    let sim = Sim::start(&phantom_exit_scenario());
    // 60 a minute: a burst of 60, then one a second.
    let c = client(&sim).with_request_budget(RequestBudget::per_minute(60));
    let clone = c.clone();
    let started = Instant::now();
    let run = |client: AlpacaClient| async move {
        for _ in 0..31 {
            client.clock().await.unwrap();
        }
    };
    tokio::join!(run(c.clone()), run(clone));
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(1900), "62 requests at 60 a minute took only {took:?}");
    assert!(c.request_budget().waited() >= 2, "both clones draw on one bucket: {}", c.request_budget().waited());
    assert_eq!(sim.total_requests(), 62, "nothing was dropped: every request was sent, later");
}

#[tokio::test]
async fn more_than_500_open_orders_are_paged_and_nothing_is_lost() {
    let mut scenario = json!({ "prices": { "AAPL": "190.00" }, "clock": { "is_open": true } });
    let orders: Vec<Value> = (0..501)
        .map(|i| {
            json!({ "symbol": "AAPL", "side": "buy", "qty": "1", "type": "limit", "limit_price": "1.00",
                    "submitted_at": format!("2026-11-20T14:{:02}:{:02}.{:03}Z", i / 60 % 60, i % 60, i % 7) })
        })
        .collect();
    scenario["orders"] = Value::Array(orders);
    let sim = Sim::start(&scenario);
    let c = client(&sim);
    let fetched = c.open_orders().await.unwrap();
    assert_eq!(fetched.value.len(), 501);
    let ids: std::collections::BTreeSet<&str> = fetched.value.iter().map(|o| o.id.as_str()).collect();
    assert_eq!(ids.len(), 501, "no order twice");
    assert_eq!(serde_json::from_slice::<Vec<Value>>(&fetched.body).unwrap().len(), 501);
    assert_eq!(requests(&sim, "GET /v2/orders"), 2, "one extra page for the 501st order");
}

#[tokio::test]
async fn writes_close_cancel_and_patch() {
    let mut scenario = phantom_exit_scenario();
    scenario["orders"] = json!([
        { "symbol": "CHWY", "side": "sell", "qty": "1596", "type": "limit", "limit_price": "45.00" },
        { "symbol": "AAPL", "side": "sell", "qty": "10", "type": "limit", "limit_price": "250.00" },
        { "symbol": "COIN", "side": "buy", "qty": "1", "type": "limit", "limit_price": "1.00" }
    ]);
    let sim = Sim::start(&scenario);
    let c = client(&sim);

    // Close one short: the broker buys it back.
    let order = c.close_position("OKTA").await.unwrap();
    assert_eq!((order.symbol.as_str(), order.side.as_str()), ("OKTA", "buy"));
    assert_eq!(c.get_position("OKTA").await.unwrap(), None);
    let err = c.close_position("OKTA").await.unwrap_err();
    assert!(err.is_not_found(), "{err}");
    assert_eq!(err.endpoint(), Endpoint::ClosePosition);

    // Cancel one order; cancelling it again is refused (or unknown), never silently OK.
    let open = c.open_orders().await.unwrap().value;
    let coin = open.iter().find(|o| o.symbol.as_str() == "COIN").unwrap();
    c.cancel_order(&coin.id).await.unwrap();
    let again = c.cancel_order(&coin.id).await.unwrap_err();
    assert!(matches!(again.status(), Some(404 | 422)), "{again}");
    let unknown = c.cancel_order("00000000-0000-4000-8000-000000000000").await.unwrap_err();
    assert!(unknown.is_not_found(), "{unknown}");

    // Close all without cancelling: AAPL's shares are held by its open sell, so that symbol
    // fails on its own while the others close.
    let results = c.close_all_positions(false).await.unwrap();
    let by_symbol: std::collections::BTreeMap<&str, _> = results.iter().map(|r| (r.symbol.as_str(), r)).collect();
    assert_eq!(by_symbol.len(), 4, "{results:?}");
    let aapl = by_symbol["AAPL"];
    assert_eq!(aapl.status, 403, "{aapl:?}");
    assert_eq!(aapl.outcome.as_ref().unwrap_err().code, Some(40_310_000));
    for s in ["CHWY", "BILL", "COIN"] {
        let r = by_symbol[s];
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(r.outcome.as_ref().unwrap().side, "buy");
    }

    // Cancel all: one (id, status) per open order.
    let cancelled = c.cancel_all_orders().await.unwrap();
    assert!(!cancelled.is_empty());
    assert!(cancelled.iter().all(tradewarden::collect::broker::alpaca::CancelOrderResult::accepted), "{cancelled:?}");
    assert!(c.open_orders().await.unwrap().value.is_empty());

    // Now AAPL can be closed along with everything else.
    let results = c.close_all_positions(true).await.unwrap();
    assert!(results.iter().all(|r| r.status == 200), "{results:?}");
    assert!(c.positions().await.unwrap().value.is_empty());
    assert!(c.close_all_positions(true).await.unwrap().is_empty(), "nothing left to close");

    // The broker-side guards.
    let after = c.patch_configuration(&ConfigurationPatch::no_shorting(true)).await.unwrap();
    assert_eq!(after.no_shorting, Some(true));
    assert_eq!(after.suspend_trade, Some(false), "fields not in the patch are unchanged");
    let after = c.patch_configuration(&ConfigurationPatch::suspend_trade(true)).await.unwrap();
    assert_eq!((after.no_shorting, after.suspend_trade), (Some(true), Some(true)));
    assert_eq!(c.get_configuration().await.unwrap().suspend_trade, Some(true));
}

#[tokio::test]
async fn reads_retry_injected_errors_until_they_succeed() {
    let sim = Sim::start(&phantom_exit_scenario());
    // Seed 5 draws 0.17, 0.23, 0.55, ...: two 500s, then the real answer.
    sim.faults(&json!({ "error_rate": 0.5, "seed": 5 }));
    let c = client(&sim);
    let positions = c.positions().await.unwrap();
    assert_eq!(positions.value.len(), 5);
    let sent = requests(&sim, "GET /v2/positions");
    assert_eq!(sent, 3, "two failures, then success on the last allowed attempt: {:?}", sim.requests());
    let stats = &c.metrics().snapshot()[&Endpoint::Positions];
    assert_eq!(stats.requests, sent);
    assert_eq!(stats.retries, sent - 1);
    assert_eq!(stats.errors.get("server").copied(), Some(sent - 1));
    assert_eq!(sim.state()["injected"], json!({ "error": 2 }), "the simulator counts what it injected");
}

#[tokio::test]
async fn persistent_5xx_gives_up_after_the_attempt_limit_with_an_explicit_error() {
    let sim = Sim::start(&phantom_exit_scenario());
    sim.faults(&json!({ "error_rate": 1.0, "seed": 1 }));
    let c = client(&sim);
    let err = c.positions().await.unwrap_err();
    assert!(matches!(err, BrokerError::Server { status: 500, code: Some(50_010_000), .. }), "{err}");
    assert_eq!(requests(&sim, "GET /v2/positions"), 3, "max_attempts = 3");

    let view = c.view().await;
    let e = view.positions.as_ref().unwrap_err();
    assert_eq!((e.source.as_str(), e.kind), ("broker:positions", SourceErrorKind::Unavailable));
    assert!(e.message.contains("after 3 attempts"), "{}", e.message);
    assert!(view.bodies.is_empty(), "nothing received, nothing recorded");

    sim.heal();
    assert_eq!(c.positions().await.unwrap().value.len(), 5);
}

#[tokio::test]
async fn rate_limited_reads_report_unavailable_never_empty() {
    let sim = Sim::start(&phantom_exit_scenario());
    sim.faults(&json!({ "rate_limit_per_min": 2 }));
    let c = client(&sim);
    let started = Instant::now();
    let view = c.view().await;
    // The window resets a minute after it started, beyond the client's 10 s cap: give up at
    // once rather than stall the audit.
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    let errors = view.errors();
    assert_eq!(errors.len(), 3, "two requests fit in the window: {errors:?}");
    for e in errors {
        assert_eq!(e.kind, SourceErrorKind::Unavailable);
        assert!(e.message.contains("rate limited") && e.message.contains("resets in"), "{}", e.message);
    }
    assert_eq!(sim.total_requests(), 5, "a far reset is not retried");
    assert_eq!(sim.state()["injected"], json!({ "rate_limited": 3 }));
    let err = c.positions().await.unwrap_err();
    assert!(matches!(err, BrokerError::RateLimited { reset_in: Some(_), .. }), "{err}");
}

#[tokio::test]
async fn a_near_rate_limit_reset_is_waited_for() {
    // The simulator's window is a minute; a one-second reset needs a stand-in server.
    use axum::http::{HeaderMap, StatusCode};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};
    let calls = Arc::new(AtomicU32::new(0));
    let seen = Arc::clone(&calls);
    let app = axum::Router::new().route(
        "/v2/positions",
        axum::routing::get(move || {
            let seen = Arc::clone(&seen);
            async move {
                let mut h = HeaderMap::new();
                if seen.fetch_add(1, Ordering::SeqCst) == 0 {
                    let reset =
                        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() + 1;
                    h.insert("x-ratelimit-reset", reset.to_string().parse().unwrap());
                    (StatusCode::TOO_MANY_REQUESTS, h, r#"{"code":42910000,"message":"rate limit exceeded"}"#)
                } else {
                    (StatusCode::OK, h, "[]")
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let c = client_with(&url, SECRET, Duration::from_secs(5), fast());
    let started = Instant::now();
    let positions = c.positions().await.unwrap();
    assert!(positions.value.is_empty());
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert!(started.elapsed() >= Duration::from_millis(100), "waited for the reset");
    assert_eq!(c.metrics().snapshot()[&Endpoint::Positions].errors["rate_limited"], 1);
}

#[tokio::test]
async fn a_malformed_body_is_source_malformed_and_still_recorded() {
    let sim = Sim::start(&phantom_exit_scenario());
    sim.faults(&json!({ "malformed_rate": 1.0, "seed": 3 }));
    let c = client(&sim);
    let view = c.view().await;
    let e = view.positions.as_ref().unwrap_err();
    assert_eq!((e.source.as_str(), e.kind), ("broker:positions", SourceErrorKind::Malformed));
    assert!(view.account.is_err() && view.orders.is_err() && view.clock.is_err());
    assert!(view.bodies.contains_key("positions.json"), "the body as received, for the snapshot");
    assert_eq!(sim.total_requests(), 5, "a malformed body is not retried");
    assert_eq!(sim.state()["injected"], json!({ "malformed": 5 }));
}

#[tokio::test]
async fn a_timeout_is_source_unavailable() {
    let sim = Sim::start(&phantom_exit_scenario());
    sim.faults(&json!({ "timeout_rate": 1.0, "seed": 1 }));
    let c = client_with(&sim.url, SECRET, Duration::from_millis(300), fast());
    let started = Instant::now();
    let view = c.view().await;
    assert!(started.elapsed() < Duration::from_secs(3), "5 endpoints × 3 attempts run concurrently");
    assert_eq!(view.errors().len(), 5);
    for e in view.errors() {
        assert_eq!(e.kind, SourceErrorKind::Unavailable);
        assert!(e.message.contains("no response within 300ms"), "{}", e.message);
    }
    let stats = c.metrics().snapshot();
    assert_eq!(stats[&Endpoint::Positions].errors["timeout"], 3);
    assert_eq!(sim.state()["injected"], json!({ "timeout": 15 }));
}

#[tokio::test]
async fn writes_are_never_retried() {
    let sim = Sim::start(&phantom_exit_scenario());
    sim.faults(&json!({ "error_rate": 1.0, "seed": 1 }));
    let c = client(&sim);
    let err = c.close_position("CHWY").await.unwrap_err();
    assert!(err.outcome_unknown(), "{err}");
    assert!(c.close_all_positions(true).await.is_err());
    assert!(c.cancel_all_orders().await.is_err());
    assert!(c.cancel_order("00000000-0000-4000-8000-000000000000").await.is_err());
    assert!(c.patch_configuration(&ConfigurationPatch::no_shorting(true)).await.is_err());
    let r = sim.requests();
    for key in [
        "DELETE /v2/positions/{symbol_or_asset_id}",
        "DELETE /v2/positions",
        "DELETE /v2/orders",
        "DELETE /v2/orders/{order_id}",
        "PATCH /v2/account/configurations",
    ] {
        assert_eq!(r.get(key).copied(), Some(1), "{key}: {r:?}");
    }
    // Nothing happened at the broker.
    sim.heal();
    assert_eq!(c.positions().await.unwrap().value.len(), 5);
}

#[tokio::test]
async fn wrong_keys_name_the_variables_never_the_values() {
    let sim = Sim::start(&phantom_exit_scenario());
    let c = client_with(&sim.url, "wrong-secret-value-123", Duration::from_secs(5), fast());
    let err = c.account().await.unwrap_err();
    assert!(matches!(err, BrokerError::Unauthorized { status: 401, .. }), "{err}");
    let text = format!("{err} {err:?} {c:?}");
    assert!(text.contains("APCA_API_KEY_ID") && text.contains("APCA_API_SECRET_KEY"), "{text}");
    assert!(!text.contains("wrong-secret-value-123") && !text.contains(KEY_ID), "{text}");
    assert_eq!(sim.total_requests(), 1, "401 is not retried");
    let view = c.view().await;
    assert_eq!(view.errors().len(), 5);
}

/// Issue 12 §3f: `.` and `..` are dropped by URL path building, so "cancel this order" became
/// `DELETE /v2/orders` (cancel everything) and a close became close-all. Every hostile id or
/// symbol is refused before a request is built; the simulator sees no request at all.
#[tokio::test]
async fn a_dot_or_dot_dot_order_id_or_symbol_never_reaches_a_bulk_endpoint() {
    let sim = Sim::start(&phantom_exit_scenario());
    let c = client(&sim);
    let hostile = [
        ".",
        "..",
        "%2e",
        "%2E%2e",
        "",
        " ",
        "/",
        "?",
        "#",
        "AAPL?x=1",
        "AAPL#x",
        "../orders",
        "./",
        "CHWY/..",
        "a b",
        "\t",
        ".AAPL",
        "CHWY/",
        "%2F",
    ];
    for h in hostile {
        let e = c.cancel_order(h).await.unwrap_err();
        assert!(matches!(e, BrokerError::BadTarget { endpoint: Endpoint::CancelOrder, .. }), "cancel {h:?}: {e}");
        let e = c.close_position(h).await.unwrap_err();
        assert!(matches!(e, BrokerError::BadTarget { endpoint: Endpoint::ClosePosition, .. }), "close {h:?}: {e}");
        let e = c.get_position(h).await.unwrap_err();
        assert!(matches!(e, BrokerError::BadTarget { endpoint: Endpoint::Position, .. }), "read {h:?}: {e}");
    }
    assert!(c.cancel_order("CHWY").await.unwrap_err().to_string().contains("is not a UUID"));
    assert_eq!(sim.requests(), Default::default(), "no request of any kind was sent");
    // Nothing was closed or cancelled.
    assert_eq!(c.positions().await.unwrap().value.len(), 5);
    assert_eq!(c.open_orders().await.unwrap().value.len(), 1);
    // Plausible items still go through, percent-encoded: a crypto pair is one segment.
    assert!(c.get_position("BRK.B").await.unwrap().is_none());
    assert!(c.get_position("BTC/USD").await.unwrap().is_none());
    let id = c.open_orders().await.unwrap().value[0].id.clone();
    c.cancel_order(&id).await.unwrap();
    let r = sim.requests();
    assert_eq!(r.get("DELETE /v2/orders"), None, "{r:?}");
    assert_eq!(r.get("DELETE /v2/positions"), None, "{r:?}");
}
