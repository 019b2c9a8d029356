//! The one integration-test binary (`autotests = false`): every test drives the real
//! `tradewarden` binary or talks to real servers (the simulator, an SMTP server) over loopback.

mod audit;
mod client;
mod config_errors;
mod email;
mod hostile;
mod live_audit;
mod security;
mod silence;
mod simulator;
mod support;
mod util;
