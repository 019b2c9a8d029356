//! The simulator as tests use it: `tradewarden sim --scenario FILE --listen 127.0.0.1:0` as a
//! child process (its URL is the first stdout line), and its admin API (`/_sim/...`) over
//! plain HTTP/1.1 on a std socket, so both sync and async tests can drive it. Killed on drop.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::bin;

/// The key pair tests use; `auth` scenarios require exactly this pair.
pub const KEY_ID: &str = "PKTESTKEYID0001";
/// The secret tests use; it must never appear in any output.
pub const SECRET: &str = "tw-test-secret-5f1c9a7e";

/// A running simulator.
pub struct Sim {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    _dir: tempfile::TempDir,
}

impl Sim {
    /// Starts a simulator seeded with `scenario`.
    pub fn start(scenario: &Value) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("scenario.json");
        std::fs::write(&file, serde_json::to_vec_pretty(scenario).unwrap()).unwrap();
        let mut child = bin()
            .args(["sim", "--listen", "127.0.0.1:0", "--scenario"])
            .arg(&file)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("tradewarden sim starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let url = line.trim().to_owned();
        assert!(url.starts_with("http://127.0.0.1:"), "first stdout line of `tradewarden sim`: {line:?}");
        Self { child, url, _dir: dir }
    }

    /// One HTTP/1.1 request; (status, JSON body or Null).
    pub fn call(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        call(&self.url, method, path, body)
    }

    /// `POST /_sim/faults`.
    pub fn faults(&self, faults: &Value) {
        let (status, body) = self.call("POST", "/_sim/faults", Some(faults));
        assert_eq!(status, 200, "POST /_sim/faults: {body}");
    }

    /// Turns every fault off (and the rate limit back to Alpaca's 200/min).
    pub fn heal(&self) {
        self.faults(&json!({"error_rate": 0.0, "timeout_rate": 0.0, "malformed_rate": 0.0, "rate_limit_per_min": 200}));
    }

    /// `GET /_sim/state`.
    pub fn state(&self) -> Value {
        let (status, body) = self.call("GET", "/_sim/state", None);
        assert_eq!(status, 200, "GET /_sim/state: {body}");
        body
    }

    /// Requests received per `"METHOD /v2/template"`.
    pub fn requests(&self) -> BTreeMap<String, u64> {
        serde_json::from_value(self.state()["requests"].clone()).unwrap()
    }

    /// Trading-API requests received in all.
    pub fn total_requests(&self) -> u64 {
        self.requests().values().sum()
    }
}

/// One HTTP/1.1 request to the simulator at `url` (any thread: tests drive the admin API from a
/// helper thread while a daemon runs); (status, JSON body or Null).
pub fn call(url: &str, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
    let addr = url.trim_start_matches("http://");
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let body = body.map(|b| serde_json::to_vec(b).unwrap()).unwrap_or_default();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         APCA-API-KEY-ID: {KEY_ID}\r\nAPCA-API-SECRET-KEY: {SECRET}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(&body).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status: u16 = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap();
    let body =
        if head.to_ascii_lowercase().contains("transfer-encoding: chunked") { dechunk(body) } else { body.into() };
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || tail.len() < n {
            break;
        }
        out.push_str(&tail[..n]);
        rest = tail[n..].trim_start_matches("\r\n");
    }
    out
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Field notes §1 at the broker: the bot's longs were "exited" into shorts (CHWY -1596,
/// BILL -413, COIN -72, OKTA -170), one real long (AAPL 10) and an open sell for CHWY that
/// would deepen the short. Prices follow examples/stock-bot/snapshots/phantom-exit.
pub fn phantom_exit_scenario() -> Value {
    json!({
        "account": { "cash": "214305.00" },
        "positions": [
            { "symbol": "AAPL", "qty": "10", "avg_entry_price": "187.25" },
            { "symbol": "CHWY", "qty": "-1596", "avg_entry_price": "38.10", "exchange": "NYSE" },
            { "symbol": "BILL", "qty": "-413", "avg_entry_price": "83.00", "exchange": "NYSE" },
            { "symbol": "COIN", "qty": "-72", "avg_entry_price": "325.00" },
            { "symbol": "OKTA", "qty": "-170", "avg_entry_price": "108.00" }
        ],
        "orders": [
            // Two minutes old, as in the recorded incident: older than position_match's `settle`.
            { "symbol": "CHWY", "side": "sell", "qty": "1596", "type": "limit", "limit_price": "45.00",
              "submitted_at": (chrono::Utc::now() - chrono::Duration::minutes(2)).to_rfc3339() }
        ],
        "prices": { "AAPL": "190.10", "CHWY": "40.00", "BILL": "85.00", "COIN": "330.00", "OKTA": "110.00" },
        "clock": { "is_open": true },
        "configurations": { "no_shorting": false, "suspend_trade": false },
        "auth": { "key_id": KEY_ID, "secret_key": SECRET }
    })
}

/// The broker-facing rules of the default pack, with every parameter at its default (so the
/// file stays valid while check parameters evolve).
const RULES: &str = r#"
[[rule]]
id = "no-shorts"
check = "no_short_positions"
severity = "critical"

[[rule]]
id = "positions-match"
check = "position_match"
severity = "critical"

[[rule]]
id = "metadata-complete"
check = "metadata_complete"
severity = "warning"

[[rule]]
id = "order-hazards"
check = "open_order_hazard"
severity = "critical"

[[rule]]
id = "exposure"
check = "exposure_limits"
severity = "warning"

[[rule]]
id = "account"
check = "account_health"
severity = "warning"
"#;

/// A tempdir holding a copy of the phantom-exit bot directory (the bot still tracks longs)
/// and a configuration pointing `[broker] base_url` at `url`, with the broker-facing rules.
pub struct BotDir {
    /// The tempdir.
    pub dir: tempfile::TempDir,
}

impl BotDir {
    /// Copies the example bot and writes `tradewarden.toml`.
    pub fn phantom_exit(url: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        crate::support::copy_dir(
            &crate::support::repo("examples/stock-bot/snapshots/phantom-exit/bot"),
            &dir.path().join("bot"),
        );
        let example = std::fs::read_to_string(crate::support::repo("examples/stock-bot/tradewarden.toml")).unwrap();
        std::fs::write(dir.path().join("rules.toml"), RULES).unwrap();
        let config = example
            .replace(r#"rules = ["../../rules/default.toml"]"#, r#"rules = ["rules.toml"]"#)
            .replace("kind = \"alpaca\"\n", &format!("kind = \"alpaca\"\nbase_url = {url:?}\n"))
            .replace("timeout = \"10s\"", "timeout = \"2s\"");
        assert!(config.contains("base_url"), "the example config changed shape");
        std::fs::write(dir.path().join("tradewarden.toml"), config).unwrap();
        Self { dir }
    }

    /// The configuration file.
    pub fn config(&self) -> std::path::PathBuf {
        self.dir.path().join("tradewarden.toml")
    }
}

/// Issue 12: `POST /_sim/prices {"AAPL": "79228162514264337593543950335"}` (Decimal::MAX)
/// panicked the valuation in `/v2/account` and `/v2/positions`, and every later request to them
/// was dropped for good. Out-of-range amounts are refused (400 on the admin API, 422 on orders);
/// the largest accepted ones are valued without overflow; the simulator keeps answering.
#[test]
fn out_of_range_amounts_are_refused_and_the_simulator_keeps_answering() {
    let sim = Sim::start(&phantom_exit_scenario());
    let max = "79228162514264337593543950335";
    let healthy = |why: &str| {
        for path in ["/v2/account", "/v2/positions"] {
            let (status, body) = sim.call("GET", path, None);
            assert_eq!(status, 200, "{path} after {why}: {body}");
        }
    };
    let (status, body) = sim.call("POST", "/_sim/prices", Some(&json!({ "AAPL": max })));
    assert_eq!(status, 400, "{body}");
    healthy("a huge price");
    let mut scenario = phantom_exit_scenario();
    scenario["positions"][0]["qty"] = json!(max);
    let (status, body) = sim.call("POST", "/_sim/scenario", Some(&scenario));
    assert_eq!(status, 400, "{body}");
    healthy("a huge scenario qty");
    let order = json!({ "symbol": "AAPL", "qty": max, "side": "buy", "type": "market", "time_in_force": "day" });
    let (status, body) = sim.call("POST", "/v2/orders", Some(&order));
    assert_eq!(status, 422, "{body}");
    // The largest accepted amounts, multiplied and summed: valued, no overflow.
    let mut scenario = phantom_exit_scenario();
    scenario["account"]["cash"] = json!("-1000000000000");
    scenario["positions"][0]["qty"] = json!("1000000000000");
    scenario["positions"][0]["avg_entry_price"] = json!("0.000000001");
    scenario["prices"] = json!({ "AAPL": "1000000000000" });
    let (status, body) = sim.call("POST", "/_sim/scenario", Some(&scenario));
    assert_eq!(status, 200, "{body}");
    healthy("the largest accepted amounts");
    let (_, account) = sim.call("GET", "/v2/account", None);
    assert!(account["long_market_value"].as_str().unwrap().starts_with("1000000000000000000000000"), "{account}");
    // A notional order whose share count would overflow at a tiny price is refused, not a panic.
    let mut scenario = phantom_exit_scenario();
    scenario["prices"] = json!({ "AAPL": "0.0000000000000000001" });
    let (status, body) = sim.call("POST", "/_sim/scenario", Some(&scenario));
    assert_eq!(status, 200, "{body}");
    let order = json!({ "symbol": "AAPL", "notional": "1000000000000", "side": "buy", "type": "market", "time_in_force": "day" });
    let (status, body) = sim.call("POST", "/v2/orders", Some(&order));
    assert_eq!(status, 422, "{body}");
    healthy("a notional order at a tiny price");
}
