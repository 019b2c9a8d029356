//! The HTTP layer, over real loopback sockets: routing, auth, status codes, admin API, faults.

use std::time::{Duration, Instant};

use reqwest::{Client, Method as M};
use serde_json::{Value, json};

use super::*;

async fn start(scenario: &str) -> SimHandle {
    spawn(Scenario::from_json(scenario).unwrap(), "127.0.0.1:0".parse().unwrap()).await.unwrap()
}

fn client() -> Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    Client::builder().timeout(Duration::from_secs(10)).build().unwrap()
}

struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    text: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("{e}: {}", self.text))
    }
}

async fn call_with(c: &Client, method: M, url: String, keys: Option<(&str, &str)>, body: Option<Value>) -> Answer {
    let mut r = c.request(method, url);
    if let Some((k, s)) = keys {
        r = r.header("APCA-API-KEY-ID", k).header("APCA-API-SECRET-KEY", s);
    }
    if let Some(b) = body {
        r = r.json(&b);
    }
    let resp = r.send().await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    Answer { status, headers, text: resp.text().await.unwrap() }
}

async fn call(c: &Client, sim: &SimHandle, method: M, path: &str, body: Option<Value>) -> Answer {
    call_with(c, method, format!("{}{path}", sim.url()), Some(("KEY", "SECRET")), body).await
}

async fn admin(c: &Client, sim: &SimHandle, path: &str, body: Value) -> Answer {
    call_with(c, M::POST, format!("{}{path}", sim.url()), None, Some(body)).await
}

const PRICES: &str = r#"{"prices": {"AAPL": "185.00", "MSFT": "415.00"}}"#;

#[tokio::test]
async fn account_with_json_and_rate_limit_headers() {
    let sim = start(PRICES).await;
    assert!(sim.url().starts_with("http://127.0.0.1:") && !sim.url().ends_with('/'));
    let c = client();
    let a = call(&c, &sim, M::GET, "/v2/account", None).await;
    assert_eq!(a.status, 200);
    assert_eq!(a.headers["content-type"], "application/json; charset=UTF-8");
    assert_eq!(a.headers["x-ratelimit-limit"], "200");
    assert_eq!(a.headers["x-ratelimit-remaining"], "199");
    assert!(a.headers["x-ratelimit-reset"].to_str().unwrap().parse::<u64>().unwrap() > 1_700_000_000);
    let v = a.json();
    assert_eq!(v["status"], "ACTIVE");
    assert_eq!(v["cash"], "100000");
    assert!(v.get("pattern_day_trader").is_none());
}

#[tokio::test]
async fn auth_any_pair_or_exactly_the_scenarios() {
    let c = client();
    let sim = start("{}").await;
    let url = format!("{}/v2/clock", sim.url());
    assert_eq!(call_with(&c, M::GET, url.clone(), Some(("any", "thing")), None).await.status, 200);
    let none = call_with(&c, M::GET, url.clone(), None, None).await;
    assert_eq!(none.status, 401);
    assert_eq!(none.json(), json!({"code": 40_110_000, "message": "request is not authorized"}));
    assert_eq!(call_with(&c, M::GET, url, Some(("", "")), None).await.status, 401);

    let sim = start(r#"{"auth": {"key_id": "K1", "secret_key": "S1"}}"#).await;
    let url = format!("{}/v2/account", sim.url());
    assert_eq!(call_with(&c, M::GET, url.clone(), Some(("K1", "S1")), None).await.status, 200);
    assert_eq!(call_with(&c, M::GET, url.clone(), Some(("K1", "wrong")), None).await.status, 401);
    assert_eq!(call_with(&c, M::GET, url, Some(("KEY", "SECRET")), None).await.status, 401);
}

#[tokio::test]
async fn routing_colon_path_double_slash_and_unknowns() {
    let sim = start(PRICES).await;
    let c = client();
    let body = json!({"symbol": "AAPL", "qty": "1", "side": "buy", "type": "market", "time_in_force": "day",
                      "client_order_id": "cid-1"});
    let created = call(&c, &sim, M::POST, "/v2/orders", Some(body)).await;
    assert_eq!(created.status, 200);
    let by_cid = call(&c, &sim, M::GET, "/v2/orders:by_client_order_id?client_order_id=cid-1", None).await;
    assert_eq!(by_cid.status, 200);
    assert_eq!(by_cid.json()["id"], created.json()["id"]);
    assert_eq!(call(&c, &sim, M::GET, "/v2/orders:by_client_order_id?client_order_id=nope", None).await.status, 404);
    assert_eq!(call(&c, &sim, M::GET, "/v2/orders:by_client_order_id", None).await.status, 422);
    assert_eq!(call(&c, &sim, M::GET, "//v2/clock", None).await.status, 200);
    assert_eq!(call(&c, &sim, M::GET, "/v2/positions/AAPL/", None).await.status, 200);
    let unknown = call(&c, &sim, M::GET, "/v2/watchlists", None).await;
    assert_eq!((unknown.status, unknown.json()["code"].clone()), (404, json!(40_410_000)));
    assert_eq!(call(&c, &sim, M::PUT, "/v2/orders", None).await.status, 405);
}

#[tokio::test]
async fn order_lifecycle_status_codes() {
    let sim = start(PRICES).await;
    let c = client();
    // alpaca-py style: numbers.
    let filled = call(
        &c,
        &sim,
        M::POST,
        "/v2/orders",
        Some(json!({"symbol": "AAPL", "qty": 10.0, "side": "buy", "type": "market", "time_in_force": "day"})),
    )
    .await;
    assert_eq!(filled.status, 200);
    let filled = filled.json();
    assert_eq!((filled["status"].as_str(), filled["qty"].as_str()), (Some("filled"), Some("10")));
    // Go style: strings, empties and nulls.
    let resting = call(
        &c,
        &sim,
        M::POST,
        "/v2/orders",
        Some(json!({"symbol": "MSFT", "qty": "5", "side": "buy", "type": "limit", "limit_price": "400",
                    "time_in_force": "gtc", "client_order_id": "dup", "order_class": "", "notional": null})),
    )
    .await
    .json();
    assert_eq!(resting["status"], "new");
    let dup = call(
        &c,
        &sim,
        M::POST,
        "/v2/orders",
        Some(json!({"symbol": "MSFT", "qty": 1, "side": "buy", "type": "market", "time_in_force": "day",
                    "client_order_id": "dup"})),
    )
    .await;
    assert_eq!(dup.status, 422);
    assert_eq!(dup.json(), json!({"code": 40_010_001, "message": "client_order_id must be unique"}));
    let oversell = call(
        &c,
        &sim,
        M::POST,
        "/v2/orders",
        Some(json!({"symbol": "AAPL", "qty": 11, "side": "sell", "type": "market", "time_in_force": "day"})),
    )
    .await;
    assert_eq!(oversell.status, 403);
    assert_eq!(oversell.json()["available"], "10");
    // Cancel: finished 422, open 204 with no body, twice 422, unknown 404.
    let f = call(&c, &sim, M::DELETE, &format!("/v2/orders/{}", filled["id"].as_str().unwrap()), None).await;
    assert_eq!((f.status, f.json()["code"].clone()), (422, json!(42_210_000)));
    let path = format!("/v2/orders/{}", resting["id"].as_str().unwrap());
    let ok = call(&c, &sim, M::DELETE, &path, None).await;
    assert_eq!((ok.status, ok.text.as_str()), (204, ""));
    assert_eq!(call(&c, &sim, M::DELETE, &path, None).await.status, 422);
    assert_eq!(call(&c, &sim, M::GET, &path, None).await.json()["status"], "canceled");
    assert_eq!(call(&c, &sim, M::DELETE, &format!("/v2/orders/{}", uuid::Uuid::new_v4()), None).await.status, 404);
    // Bulk endpoints answer 207; close-all honours cancel_orders in any case.
    call(
        &c,
        &sim,
        M::POST,
        "/v2/orders",
        Some(json!({"symbol": "AAPL", "qty": 10, "side": "sell", "type": "limit", "limit_price": 999, "time_in_force": "gtc"})),
    )
    .await;
    let held = call(&c, &sim, M::DELETE, "/v2/positions", None).await;
    assert_eq!(held.status, 207);
    assert_eq!(held.json()[0]["status"], 403);
    let all = call(&c, &sim, M::DELETE, "/v2/positions?cancel_orders=TRUE", None).await;
    assert_eq!(all.status, 207);
    let all = all.json();
    assert_eq!((all[0]["symbol"].as_str(), all[0]["status"].as_u64()), (Some("AAPL"), Some(200)));
    assert_eq!(all[0]["body"]["side"], "sell");
    assert_eq!(call(&c, &sim, M::GET, "/v2/positions", None).await.json(), json!([]));
    let none = call(&c, &sim, M::DELETE, "/v2/orders", None).await;
    assert_eq!((none.status, none.json()), (207, json!([])));
    assert_eq!(call(&c, &sim, M::DELETE, "/v2/positions?cancel_orders=maybe", None).await.status, 422);
}

#[tokio::test]
async fn prices_fill_resting_limits_and_state_counts_requests() {
    let sim = start(PRICES).await;
    let c = client();
    let o = call(
        &c,
        &sim,
        M::POST,
        "/v2/orders",
        Some(json!({"symbol": "AAPL", "qty": 3, "side": "buy", "type": "limit", "limit_price": 180, "time_in_force": "day"})),
    )
    .await
    .json();
    assert_eq!(o["status"], "new");
    let p = admin(&c, &sim, "/_sim/prices", json!({"AAPL": "179.90", "TSLA": 250})).await;
    assert_eq!(p.status, 200);
    let p = p.json();
    assert_eq!(p["filled"][0]["id"], o["id"]);
    assert_eq!(p["prices"]["TSLA"], "250");
    call(&c, &sim, M::GET, "/v2/positions", None).await;
    call(&c, &sim, M::GET, "//v2/positions", None).await;
    call(&c, &sim, M::GET, &format!("/v2/orders/{}", o["id"].as_str().unwrap()), None).await;
    let state = call_with(&c, M::GET, format!("{}/_sim/state", sim.url()), None, None).await.json();
    assert_eq!(state["positions"][0]["qty"], "3");
    assert_eq!(state["orders"][0]["status"], "filled");
    assert_eq!(
        state["requests"],
        json!({"GET /v2/positions": 2, "GET /v2/orders/{order_id}": 1, "POST /v2/orders": 1})
    );
    assert_eq!(state["account"]["long_market_value"], "539.70");
    assert_eq!(admin(&c, &sim, "/_sim/prices", json!({"AAPL": "-1"})).await.status, 400);
    assert_eq!(admin(&c, &sim, "/_sim/prices", json!(["x"])).await.status, 400);
}

#[tokio::test]
async fn admin_scenario_clock_and_faults() {
    let sim = start(PRICES).await;
    let c = client();
    call(&c, &sim, M::GET, "/v2/account", None).await;
    let s = admin(
        &c,
        &sim,
        "/_sim/scenario",
        json!({"positions": [{"symbol": "NVDA", "qty": -4, "avg_entry_price": 100}]}),
    )
    .await;
    assert_eq!(s.status, 200);
    let s = s.json();
    assert_eq!(s["positions"][0]["side"], "short");
    assert_eq!(s["requests"], json!({}), "a new scenario starts the counts again");
    assert_eq!(admin(&c, &sim, "/_sim/scenario", json!({"acount": {}})).await.status, 400);
    let clock = admin(&c, &sim, "/_sim/clock", json!({"is_open": false})).await.json();
    assert_eq!(clock["is_open"], false);
    assert_eq!(call(&c, &sim, M::GET, "/v2/clock", None).await.json()["is_open"], false);
    let f = admin(&c, &sim, "/_sim/faults", json!({"latency_ms": 5, "seed": 3})).await.json();
    assert_eq!((f["latency_ms"].as_u64(), f["rate_limit_per_min"].as_u64()), (Some(5), Some(200)));
    assert_eq!(admin(&c, &sim, "/_sim/faults", json!({"error_rate": 2})).await.status, 400);
    assert_eq!(admin(&c, &sim, "/_sim/faults", json!({"bogus": 1})).await.status, 400);
}

#[tokio::test]
async fn rate_limit_answers_429_with_headers() {
    let sim = start("{}").await;
    let c = client();
    admin(&c, &sim, "/_sim/faults", json!({"rate_limit_per_min": 2})).await;
    assert_eq!(call(&c, &sim, M::GET, "/v2/clock", None).await.status, 200);
    let second = call(&c, &sim, M::GET, "/v2/clock", None).await;
    assert_eq!((second.status, second.headers["x-ratelimit-remaining"].to_str().unwrap()), (200, "0"));
    let third = call(&c, &sim, M::GET, "/v2/clock", None).await;
    assert_eq!(third.status, 429);
    assert_eq!(third.json(), json!({"code": 42_910_000, "message": "rate limit exceeded"}));
    assert_eq!(third.headers["x-ratelimit-limit"], "2");
    assert_eq!(third.headers["x-ratelimit-remaining"], "0");
    assert!(third.headers.contains_key("x-ratelimit-reset"));
    admin(&c, &sim, "/_sim/faults", json!({"rate_limit_per_min": 0})).await;
    let free = call(&c, &sim, M::GET, "/v2/clock", None).await;
    assert_eq!(free.status, 200);
    assert!(!free.headers.contains_key("x-ratelimit-limit"));
}

#[tokio::test]
async fn injected_errors_malformed_bodies_and_latency() {
    let sim = start(PRICES).await;
    let c = client();
    admin(&c, &sim, "/_sim/faults", json!({"error_rate": 1.0, "seed": 1})).await;
    let e = call(&c, &sim, M::GET, "/v2/positions", None).await;
    assert_eq!((e.status, e.json()["code"].clone()), (500, json!(50_010_000)));
    admin(&c, &sim, "/_sim/faults", json!({"malformed_rate": 1.0, "seed": 1})).await;
    let m = call(&c, &sim, M::GET, "/v2/account", None).await;
    assert_eq!(m.status, 200);
    assert!(serde_json::from_str::<Value>(&m.text).is_err(), "{}", m.text);
    assert!(m.text.starts_with('{'));
    admin(&c, &sim, "/_sim/faults", json!({"latency_ms": 150})).await;
    let t = Instant::now();
    assert_eq!(call(&c, &sim, M::GET, "/v2/clock", None).await.status, 200);
    assert!(t.elapsed() >= Duration::from_millis(150));
    // The admin API is never faulted.
    admin(&c, &sim, "/_sim/faults", json!({"error_rate": 1.0})).await;
    assert_eq!(call_with(&c, M::GET, format!("{}/_sim/state", sim.url()), None, None).await.status, 200);
}

#[tokio::test]
async fn injected_timeout_holds_the_request_and_shutdown_is_prompt() {
    let sim = start("{}").await;
    let c = client();
    admin(&c, &sim, "/_sim/faults", json!({"timeout_rate": 1.0})).await;
    let t = Instant::now();
    let r = c
        .get(format!("{}/v2/clock", sim.url()))
        .header("APCA-API-KEY-ID", "K")
        .header("APCA-API-SECRET-KEY", "S")
        .timeout(Duration::from_millis(300))
        .send()
        .await;
    assert!(r.unwrap_err().is_timeout());
    assert!(t.elapsed() >= Duration::from_millis(300));
    // A held request must not keep the server alive.
    let pending = tokio::spawn({
        let c = c.clone();
        let url = format!("{}/v2/clock", sim.url());
        async move { c.get(url).header("APCA-API-KEY-ID", "K").header("APCA-API-SECRET-KEY", "S").send().await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    tokio::time::timeout(Duration::from_secs(5), sim.shutdown()).await.expect("prompt shutdown").unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(5), pending).await.expect("the held request ends");
}

#[tokio::test]
async fn dropping_the_handle_stops_the_server() {
    let sim = start("{}").await;
    let url = format!("{}/v2/clock", sim.url());
    drop(sim);
    let c = client();
    let mut refused = false;
    for _ in 0..50 {
        if c.get(&url).send().await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(refused);
}

#[tokio::test]
async fn invalid_scenario_is_an_input_error() {
    let s = Scenario::from_json(r#"{"positions": [{"symbol": "A", "qty": 0}]}"#).unwrap();
    let e = spawn(s, "127.0.0.1:0".parse().unwrap()).await.unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    assert!(e.to_string().contains("positions[0]"));
}

#[test]
fn route_table() {
    let ok = |m: Method, p: &str| route(&m, &normalize_path(p)).map(|(_, t)| t);
    assert_eq!(ok(Method::GET, "//v2/orders:by_client_order_id"), Ok("/v2/orders:by_client_order_id"));
    assert_eq!(ok(Method::PATCH, "/v2/orders/abc"), Ok("/v2/orders/{order_id}"));
    assert_eq!(ok(Method::DELETE, "/v2/positions/BRK.B"), Ok("/v2/positions/{symbol_or_asset_id}"));
    assert_eq!(ok(Method::PATCH, "/v2/account/configurations"), Ok("/v2/account/configurations"));
    assert_eq!(ok(Method::POST, "/v2/clock"), Err(Unrouted::MethodNotAllowed("/v2/clock")));
    assert_eq!(ok(Method::GET, "/v1/clock"), Err(Unrouted::NotFound));
    assert_eq!(ok(Method::GET, "/v2/orders/a/b"), Err(Unrouted::NotFound));
    assert_eq!(route(&Method::GET, "/v2/positions/BTC%2FUSD").unwrap().0, Route::Position("BTC/USD".into()));
}
