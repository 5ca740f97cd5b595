//! DNS packets (first byte: UDP or TCP) through the agent's DNS handler: no panic, and
//! every answer decodes, echoes the ID and fits the transport.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| sekisho::fuzzing::dns_packet(data));
