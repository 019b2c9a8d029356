//! cargo-fuzz target `bot_json`: see `tradewarden::fuzz::bot_json`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tradewarden::fuzz::bot_json(data));
