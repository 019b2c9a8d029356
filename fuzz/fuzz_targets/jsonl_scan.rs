//! cargo-fuzz target `jsonl_scan`: see `tradewarden::fuzz::jsonl_scan`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tradewarden::fuzz::jsonl_scan(data));
