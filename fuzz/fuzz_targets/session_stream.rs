#![no_main]
//! See `jiebanke::fuzzing::session_stream` for what this target feeds and what it checks.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| jiebanke::fuzzing::session_stream(data));
