//! Server RPC calls (`path\n` then the msgpack body) decoded as their request type; write
//! commands are applied to a state store: no panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| sekisho::fuzzing::rpc_frame(data));
