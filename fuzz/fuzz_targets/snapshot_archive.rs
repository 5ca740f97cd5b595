//! Snapshot archives and Raft snapshot files, as given and with their checksum fixed:
//! refused with an error or restored, never a panic or an unbounded allocation.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| sekisho::fuzzing::snapshot_archive(data));
