//! cargo-fuzz target `broker_json`: see `tradewarden::fuzz::broker_json`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tradewarden::fuzz::broker_json(data));
