//! The one integration-test binary (`autotests = false`): every test drives the real
//! `tradewarden` binary or talks to real servers (the simulator, an SMTP server) over loopback.

mod audit;
mod config_errors;
mod email;
mod silence;
mod support;
mod util;
