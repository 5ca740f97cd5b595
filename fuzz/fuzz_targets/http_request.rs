//! HTTP requests (`METHOD /path?query`, header lines, a blank line, the body) through the
//! real router of one in-process agent: no panic, JSON answers that parse, no empty 500.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| sekisho::fuzzing::http_request(data));
