//! An Alpaca-compatible paper broker on loopback (design.md §9), faithful enough that the
//! official `alpaca-py` SDK works against it unchanged (`url_override`).
//!
//! - [`scenario`]: the JSON file that seeds the state;
//! - [`broker`]: the account as a pure state machine (orders, fills, positions, Alpaca's
//!   rules and error codes), with [`account`] (the figures) and [`market`] (clock, calendar);
//! - [`request`]: parsing what SDKs send (numbers or strings, booleans in any case);
//! - [`faults`]: latency, errors, timeouts, malformed bodies and the rate limit, seeded;
//! - [`control`]: the state behind one lock, shared by HTTP and in-process callers;
//! - [`server`]: axum, the `/v2` route table, the `/_sim` admin API, [`spawn`];
//! - the `tradewarden sim` command is in `src/cli/sim.rs`.
//!
//! In-process use:
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use tradewarden::sim::{Scenario, spawn};
//! let scenario = Scenario::from_json(r#"{"prices": {"AAPL": "185.00"}}"#).expect("valid");
//! let sim = spawn(scenario, "127.0.0.1:0".parse().expect("addr")).await?;
//! let base_url = sim.url(); // http://127.0.0.1:PORT
//! sim.sim().set_market_open(false);
//! sim.shutdown().await?;
//! # Ok(()) }
//! ```

pub mod account;
pub mod activities;
pub mod broker;
pub mod control;
pub mod error;
pub mod faults;
pub mod market;
pub mod order;
pub mod request;
pub mod scenario;
pub mod server;

pub use control::Sim;
pub use error::ApiError;
pub use faults::Faults;
pub use scenario::Scenario;
pub use server::{SimHandle, spawn, spawn_sim};
