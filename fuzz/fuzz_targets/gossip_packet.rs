//! What the gossip sockets receive (first byte: UDP or TCP, with or without a key)
//! through framing, decryption, foca, coordinates, user events and push-pull merging: no panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| sekisho::fuzzing::gossip_packet(data));
