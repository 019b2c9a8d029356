//! The one integration-test binary: every test drives the real `tradewarden` binary or talks to
//! real servers over loopback sockets.

mod audit;
mod config_errors;
mod support;
