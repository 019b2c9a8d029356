//! The integration test binary (`autotests = false`): one module per feature.

mod email;
mod silence;
mod util;
