//! The one integration-test binary: every test drives the real `tradewarden` binary or talks to
//! real servers over loopback sockets.

mod audit;
mod client;
mod config_errors;
mod live_audit;
mod simulator;
mod support;
