//! cargo-fuzz target `timestamps`: see `tradewarden::fuzz::timestamps`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tradewarden::fuzz::timestamps(data));
