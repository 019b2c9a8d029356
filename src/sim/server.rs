//! The HTTP server: the Alpaca trading API under `/v2` and the admin API under `/_sim`.
//!
//! The admin routes are ordinary axum routes. The trading API is one fallback handler with an
//! explicit route table ([`route`]): Alpaca's `/v2/orders:by_client_order_id` has a colon
//! inside a segment, SDKs given a base URL with a trailing slash send `//v2/...`, and every
//! request must be counted under its path template and pass the same gates in the same order:
//! count → fault draw → latency → rate limit (429) → auth (401) → injected error or timeout →
//! the endpoint → injected malformed body → `X-RateLimit-*` headers.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::Response;
use axum::routing::{get, post};
use serde::Serialize;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::control::Sim;
use super::error::ApiError;
use super::faults::{Faults, Injected, TIMEOUT_HOLD};
use super::request::{
    CloseQuery, ConfigPatch, OrderRequest, OrdersQuery, ReplaceRequest, param, query_bool, query_date,
};
use super::scenario::{ClockSeed, Dec, Scenario};

/// A trading-API endpoint, with its path parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `/v2/account`.
    Account,
    /// `/v2/account/configurations`.
    Configurations,
    /// `/v2/positions`.
    Positions,
    /// `/v2/positions/{symbol_or_asset_id}`.
    Position(String),
    /// `/v2/orders`.
    Orders,
    /// `/v2/orders:by_client_order_id`.
    OrderByClientId,
    /// `/v2/orders/{order_id}`.
    Order(String),
    /// `/v2/clock`.
    Clock,
    /// `/v2/calendar`.
    Calendar,
    /// `/v2/account/activities` and `/v2/account/activities/{activity_type}`.
    Activities(Option<String>),
}

/// Why a path did not route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unrouted {
    /// No such path.
    NotFound,
    /// The path exists (its template is given) but not with this method.
    MethodNotAllowed(&'static str),
}

/// Collapses leading slashes (`//v2/clock` → `/v2/clock`) and drops a trailing one.
#[must_use]
pub fn normalize_path(path: &str) -> String {
    let trimmed = path.trim_start_matches('/');
    let trimmed = trimmed.strip_suffix('/').unwrap_or(trimmed);
    format!("/{trimmed}")
}

/// Matches a normalized path: the route and its template (`/v2/orders/{order_id}`).
///
/// # Errors
/// [`Unrouted`] for an unknown path or a method the path does not take.
pub fn route(method: &Method, path: &str) -> Result<(Route, &'static str), Unrouted> {
    let rest = path.strip_prefix("/v2/").ok_or(Unrouted::NotFound)?;
    let segments: Vec<&str> = rest.split('/').collect();
    let (route, template, methods): (Route, &'static str, &[Method]) = match segments.as_slice() {
        ["account"] => (Route::Account, "/v2/account", &[Method::GET]),
        ["account", "configurations"] => {
            (Route::Configurations, "/v2/account/configurations", &[Method::GET, Method::PATCH])
        }
        ["positions"] => (Route::Positions, "/v2/positions", &[Method::GET, Method::DELETE]),
        ["positions", s] if !s.is_empty() => {
            (Route::Position(percent_decode(s)), "/v2/positions/{symbol_or_asset_id}", &[Method::GET, Method::DELETE])
        }
        ["orders"] => (Route::Orders, "/v2/orders", &[Method::GET, Method::POST, Method::DELETE]),
        ["orders:by_client_order_id"] => (Route::OrderByClientId, "/v2/orders:by_client_order_id", &[Method::GET]),
        ["orders", id] if !id.is_empty() => {
            (Route::Order(percent_decode(id)), "/v2/orders/{order_id}", &[Method::GET, Method::PATCH, Method::DELETE])
        }
        ["account", "activities"] => (Route::Activities(None), "/v2/account/activities", &[Method::GET]),
        ["account", "activities", t] if !t.is_empty() => {
            (Route::Activities(Some(percent_decode(t))), "/v2/account/activities/{activity_type}", &[Method::GET])
        }
        ["clock"] => (Route::Clock, "/v2/clock", &[Method::GET]),
        ["calendar"] => (Route::Calendar, "/v2/calendar", &[Method::GET]),
        _ => return Err(Unrouted::NotFound),
    };
    if methods.contains(method) { Ok((route, template)) } else { Err(Unrouted::MethodNotAllowed(template)) }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(h), Some(l)) =
                (bytes.get(i + 1).copied().and_then(hex), bytes.get(i + 2).copied().and_then(hex))
        {
            out.push(u8::try_from(h * 16 + l).unwrap_or(b'?'));
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// An answer, success or error: status and JSON body (none for 204).
struct Reply {
    status: u16,
    body: Option<Vec<u8>>,
}

impl Reply {
    fn json<T: Serialize>(status: u16, value: &T) -> Self {
        Self { status, body: Some(serde_json::to_vec(value).unwrap_or_else(|_| b"null".to_vec())) }
    }
}

fn error_reply(e: &ApiError) -> Reply {
    Reply::json(e.status, &e.body)
}

fn respond(reply: Reply) -> Response {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut r = match reply.body {
        Some(b) => {
            let mut r = Response::new(Body::from(b));
            r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=UTF-8"));
            r
        }
        None => Response::new(Body::empty()),
    };
    *r.status_mut() = status;
    r
}

/// Truncates a body so that it is no longer JSON; a 204 becomes a 200 with a broken body.
fn malform(reply: Reply) -> Reply {
    match reply.body {
        Some(b) if b.len() > 1 => Reply { status: reply.status, body: Some(b[..b.len() / 2].to_vec()) },
        _ => Reply { status: if reply.status == 204 { 200 } else { reply.status }, body: Some(b"{\"".to_vec()) },
    }
}

/// Runs one trading-API endpoint.
fn dispatch(sim: &Sim, method: &Method, route: Route, query: &HashMap<String, String>, body: &[u8]) -> Reply {
    let result = sim.with_broker(|b| -> Result<Reply, ApiError> {
        Ok(match (route, method.as_str()) {
            (Route::Account, _) => Reply::json(200, &b.account()),
            (Route::Configurations, "PATCH") => {
                let patch = ConfigPatch::from_json(body)?;
                Reply::json(200, &b.patch_configuration(&patch))
            }
            (Route::Configurations, _) => Reply::json(200, &b.configuration()),
            (Route::Positions, "DELETE") => {
                let cancel = param(query, "cancel_orders").map(|v| query_bool(v, "cancel_orders")).transpose()?;
                Reply::json(207, &b.close_all(cancel.unwrap_or(false)))
            }
            (Route::Positions, _) => Reply::json(200, &b.positions()),
            (Route::Position(key), "DELETE") => {
                let q = CloseQuery::from_query(query)?;
                Reply::json(200, &b.close_position(&key, &q)?)
            }
            (Route::Position(key), _) => Reply::json(200, &b.position(&key)?),
            (Route::Orders, "POST") => Reply::json(200, &b.submit(&OrderRequest::from_json(body)?)?),
            (Route::Orders, "DELETE") => Reply::json(207, &b.cancel_all()),
            (Route::Orders, _) => Reply::json(200, &b.orders(&OrdersQuery::from_query(query)?)),
            (Route::OrderByClientId, _) => {
                let cid =
                    param(query, "client_order_id").ok_or_else(|| ApiError::invalid("client_order_id is missing"))?;
                Reply::json(200, &b.order_by_client_id(cid)?)
            }
            (Route::Order(id), "PATCH") => Reply::json(200, &b.replace(&id, &ReplaceRequest::from_json(body)?)?),
            (Route::Order(id), "DELETE") => {
                b.cancel(&id)?;
                Reply { status: 204, body: None }
            }
            (Route::Order(id), _) => {
                if let Some(n) = param(query, "nested") {
                    query_bool(n, "nested")?;
                }
                Reply::json(200, &b.order(&id)?)
            }
            (Route::Activities(kind), _) => {
                let q = super::activities::ActivitiesQuery::from_query(kind.as_deref(), query)?;
                Reply::json(200, &super::activities::fills(&b.all_orders(), &q))
            }
            (Route::Clock, _) => Reply::json(200, &b.clock()),
            (Route::Calendar, _) => {
                let start = param(query, "start").map(|v| query_date(v, "start")).transpose()?;
                let end = param(query, "end").map(|v| query_date(v, "end")).transpose()?;
                Reply::json(200, &b.calendar(start, end))
            }
        })
    });
    result.unwrap_or_else(|e| error_reply(&e))
}

#[derive(Clone)]
struct AppState {
    sim: Arc<Sim>,
    shutdown: watch::Receiver<bool>,
}

/// Sleeps for `d` unless the server shuts down first; false when it did.
async fn hold(shutdown: &watch::Receiver<bool>, d: Duration) -> bool {
    let mut rx = shutdown.clone();
    tokio::select! {
        () = tokio::time::sleep(d) => true,
        _ = rx.wait_for(|stop| *stop) => false,
    }
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The trading API (every path that is not an admin route).
async fn trading(State(app): State<AppState>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let path = normalize_path(uri.path());
    let routed = route(&method, &path);
    let key = match &routed {
        Ok((_, template)) | Err(Unrouted::MethodNotAllowed(template)) => format!("{method} {template}"),
        Err(Unrouted::NotFound) => format!("{method} {path}"),
    };
    let decision = app.sim.on_request(&key, now_ms());
    if !decision.latency.is_zero() {
        app.sim.count_injected("delayed");
        if !hold(&app.shutdown, decision.latency).await {
            return respond(Reply::json(503, &ApiError::new(503, 50_310_000, "shutting down").body));
        }
    }
    let bearer = header_str(&headers, "authorization").and_then(|v| v.strip_prefix("Bearer "));
    let reply = if decision.limited {
        app.sim.count_injected("rate_limited");
        error_reply(&ApiError::rate_limited())
    } else if !app.sim.authorized(
        header_str(&headers, "apca-api-key-id"),
        header_str(&headers, "apca-api-secret-key"),
        bearer,
    ) {
        error_reply(&ApiError::unauthorized())
    } else {
        match routed {
            Err(Unrouted::NotFound) => error_reply(&ApiError::not_found("endpoint not found")),
            Err(Unrouted::MethodNotAllowed(_)) => error_reply(&ApiError::method_not_allowed()),
            Ok((route, _)) => match decision.fault {
                Injected::Error => {
                    app.sim.count_injected("error");
                    error_reply(&ApiError::internal())
                }
                Injected::Timeout => {
                    app.sim.count_injected("timeout");
                    hold(&app.shutdown, TIMEOUT_HOLD).await;
                    error_reply(&ApiError::gateway_timeout())
                }
                fault => {
                    let query = Query::<HashMap<String, String>>::try_from_uri(&uri).map(|q| q.0);
                    let reply = match query {
                        Ok(query) => dispatch(&app.sim, &method, route, &query, &body),
                        Err(_) => error_reply(&ApiError::invalid("invalid query string")),
                    };
                    if fault == Injected::Malformed {
                        app.sim.count_injected("malformed");
                        malform(reply)
                    } else {
                        reply
                    }
                }
            },
        }
    };
    tracing::debug!(request = %key, status = reply.status, "sim");
    let mut response = respond(reply);
    if let Some(rate) = decision.rate {
        let h = response.headers_mut();
        h.insert("x-ratelimit-limit", HeaderValue::from(rate.limit));
        h.insert("x-ratelimit-remaining", HeaderValue::from(rate.remaining));
        h.insert("x-ratelimit-reset", HeaderValue::from(rate.reset));
    }
    response
}

fn admin_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    serde_json::from_slice(body).map_err(|e| format!("invalid JSON body: {e}"))
}

fn admin_error(message: String) -> Response {
    respond(error_reply(&ApiError::bad_body(message)))
}

async fn admin_scenario(State(app): State<AppState>, body: Bytes) -> Response {
    let text = String::from_utf8_lossy(&body);
    let scenario = match Scenario::from_json(&text) {
        Ok(s) => s,
        Err(e) => return admin_error(e),
    };
    match app.sim.load(&scenario) {
        Ok(()) => respond(Reply::json(200, &app.sim.state())),
        Err(e) => admin_error(e),
    }
}

async fn admin_prices(State(app): State<AppState>, body: Bytes) -> Response {
    let prices: BTreeMap<String, Dec> = match admin_json(&body) {
        Ok(p) => p,
        Err(e) => return admin_error(e),
    };
    let prices: BTreeMap<String, rust_decimal::Decimal> = prices.into_iter().map(|(s, d)| (s, d.0)).collect();
    match app.sim.set_prices(&prices) {
        Ok(filled) => {
            let all = app.sim.with_broker(|b| {
                b.prices().iter().map(|(s, p)| (s.clone(), p.to_string())).collect::<BTreeMap<_, _>>()
            });
            respond(Reply::json(200, &serde_json::json!({ "prices": all, "filled": filled })))
        }
        Err(e) => admin_error(e),
    }
}

async fn admin_clock(State(app): State<AppState>, body: Bytes) -> Response {
    let seed: ClockSeed = match admin_json(&body) {
        Ok(c) => c,
        Err(e) => return admin_error(e),
    };
    let clock = match seed.is_open {
        Some(open) => app.sim.set_market_open(open),
        None => app.sim.with_broker(|b| b.clock()),
    };
    respond(Reply::json(200, &clock))
}

async fn admin_faults(State(app): State<AppState>, body: Bytes) -> Response {
    let faults: Faults = match admin_json(&body) {
        Ok(f) => f,
        Err(e) => return admin_error(e),
    };
    match app.sim.set_faults(faults) {
        Ok(f) => respond(Reply::json(200, &f)),
        Err(e) => admin_error(e),
    }
}

async fn admin_faults_get(State(app): State<AppState>) -> Response {
    respond(Reply::json(200, &app.sim.faults()))
}

async fn admin_state(State(app): State<AppState>) -> Response {
    respond(Reply::json(200, &app.sim.state()))
}

async fn admin_clock_get(State(app): State<AppState>) -> Response {
    respond(Reply::json(200, &app.sim.with_broker(|b| b.clock())))
}

fn router(sim: Arc<Sim>, shutdown: watch::Receiver<bool>) -> Router {
    Router::new()
        .route("/_sim/scenario", post(admin_scenario))
        .route("/_sim/prices", post(admin_prices))
        .route("/_sim/clock", post(admin_clock).get(admin_clock_get))
        .route("/_sim/faults", post(admin_faults).get(admin_faults_get))
        .route("/_sim/state", get(admin_state))
        .fallback(trading)
        .with_state(AppState { sim, shutdown })
}

/// A running simulator. Dropping it stops the server (in the background); [`shutdown`]
/// stops it and waits.
///
/// [`shutdown`]: SimHandle::shutdown
#[derive(Debug)]
pub struct SimHandle {
    addr: SocketAddr,
    sim: Arc<Sim>,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl SimHandle {
    /// The base URL, `http://127.0.0.1:PORT` (no trailing slash).
    #[must_use]
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The bound address.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The state, for in-process control (prices, clock, faults, inspection).
    #[must_use]
    pub fn sim(&self) -> &Arc<Sim> {
        &self.sim
    }

    /// Stops the server and waits until it has stopped.
    ///
    /// # Errors
    /// When serving failed.
    pub async fn shutdown(mut self) -> std::io::Result<()> {
        self.stop.send_replace(true);
        match self.task.take() {
            Some(task) => task.await.map_err(std::io::Error::other)?,
            None => Ok(()),
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        self.stop.send_replace(true);
    }
}

/// Starts a simulator seeded by `scenario` on `addr` (use port 0 for a free port).
///
/// # Errors
/// When the scenario is invalid (`InvalidInput`, every problem listed) or the address cannot
/// be bound.
pub async fn spawn(scenario: Scenario, addr: SocketAddr) -> std::io::Result<SimHandle> {
    let sim = Sim::new(&scenario).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    spawn_sim(Arc::new(sim), addr).await
}

/// Serves an existing [`Sim`] (for a custom clock, or to share it).
///
/// # Errors
/// When the address cannot be bound.
pub async fn spawn_sim(sim: Arc<Sim>, addr: SocketAddr) -> std::io::Result<SimHandle> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = watch::channel(false);
    let app = router(Arc::clone(&sim), stopped.clone());
    let mut signal = stopped;
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = signal.wait_for(|s| *s).await;
            })
            .await
    });
    Ok(SimHandle { addr, sim, stop, task: Some(task) })
}

#[cfg(test)]
mod tests;
