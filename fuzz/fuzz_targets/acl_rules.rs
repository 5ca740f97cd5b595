//! The ACL rule parser and the authorizer over arbitrary text: no input may panic, and what
//! parses must print back (`Rule`'s Display) as rules that parse to the same thing.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| sekisho::fuzzing::acl_rules(data));
