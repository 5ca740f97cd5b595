//! Config file text loaded as JSON and as HCL, then the agent's start-up parsers: no panic,
//! and HCL loads exactly as its JSON form does.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| sekisho::fuzzing::config_text(data));
