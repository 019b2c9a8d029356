//! The one integration-test binary (`autotests = false`): every test drives the real
//! `tradewarden` binary or talks to real servers (the simulator, an SMTP server) over loopback.

mod actions;
mod audit;
mod browser;
mod client;
mod completions;
mod config_errors;
mod crash;
mod daemon;
mod demo;
mod email;
mod hostile;
mod init;
mod live_audit;
mod notices;
mod secrets;
mod security;
mod silence;
mod simulator;
mod soak;
mod soak_kit;
mod state_trust;
mod status;
mod support;
mod util;
