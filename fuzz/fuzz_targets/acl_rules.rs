//! The ACL rule parser and the authorizer over arbitrary text: no input may panic, and what
//! parses must print back (`Rule`'s Display) as rules that parse to the same thing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sekisho_acl::{Access, Authorizer, DefaultPolicy, PolicyRef, Resource, Rules};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(rules) = Rules::parse(text) else { return };
    let printed: Vec<String> = rules.rules.iter().map(ToString::to_string).collect();
    let again = Rules::parse(&printed.join("\n")).expect("printed rules parse");
    assert_eq!(again.rules.len(), rules.rules.len());
    let mut a = Authorizer::new(DefaultPolicy::Deny);
    a.add(&PolicyRef::policy("id", "fuzz"), &rules);
    for r in Resource::NAMED {
        for acc in [Access::Read, Access::List, Access::Write] {
            let _ = a.authorize(r, text, acc);
        }
    }
    let _ = a.key_write_prefix(text);
});
