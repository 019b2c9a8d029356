//! cargo-fuzz target `config_toml`: see `tradewarden::fuzz::config_toml`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tradewarden::fuzz::config_toml(data));
