use crate::*;

const TEAM_A: &str = r#"
# team A: its keys, its deploy event, its web nodes
key_prefix "team-a/" { policy = "write" }
key_prefix "team-a/secret/" { policy = "deny" }
key "team-a/secret/shared" { policy = "read" }
key_prefix "" { policy = "read" }
event "deploy-a" { policy = "write" }
event_prefix "" { policy = "read" }
agent_prefix "web-a-" { policy = "read" }
session_prefix "web-a-" { policy = "write" }
node_prefix "" { policy = "read" }
service_prefix "" { policy = "read" }
service "web-a" { policy = "write" intentions = "write" }
service "db" { policy = "deny" }
query_prefix "team-a-" { policy = "write" }
operator = "read"
keyring = "read"
"#;

const LISTER: &str = r#"
key_prefix "logs/" { policy = "list" }
key_prefix "logs/raw/" { policy = "read" }
mesh = "write"
peering = "read"
acl = "read"
"#;

/// A second policy on the same token that disagrees with TEAM_A on some labels.
const OVERRIDES: &str = r#"
key_prefix "team-a/" { policy = "read" }
event "deploy-a" { policy = "deny" }
key_prefix "shared/" { policy = "write" }
operator = "write"
node "web-a-1" { policy = "write" }
"#;

fn policy(name: &str, text: &str) -> (PolicyRef, Rules) {
    (
        PolicyRef::policy(format!("id-{name}"), name),
        Rules::parse(text).unwrap_or_else(|e| panic!("{name}: {e}")),
    )
}

fn token(default: DefaultPolicy, policies: &[(&str, &str)]) -> Authorizer {
    let parsed: Vec<(PolicyRef, Rules)> = policies.iter().map(|(n, t)| policy(n, t)).collect();
    compile(default, parsed.iter().map(|(p, r)| (p, r)))
}

use Access::{List as L, Read as R, Write as W};
use Resource::*;

/// (token, resource, segment, access, allowed, deciding rule or "default")
type Case = (&'static str, Resource, &'static str, Access, bool, &'static str);

const CASES: &[Case] = &[
    // exact beats prefix, longest prefix wins
    ("a", Key, "team-a/app/config", W, true, r#"key_prefix "team-a/""#),
    ("a", Key, "team-a/app/config", R, true, r#"key_prefix "team-a/""#),
    ("a", Key, "team-a/secret/pw", R, false, r#"key_prefix "team-a/secret/""#),
    ("a", Key, "team-a/secret/pw", W, false, r#"key_prefix "team-a/secret/""#),
    ("a", Key, "team-a/secret/shared", R, true, r#"key "team-a/secret/shared""#),
    ("a", Key, "team-a/secret/shared", W, false, r#"key "team-a/secret/shared""#),
    ("a", Key, "team-a/secret/shared/x", R, false, r#"key_prefix "team-a/secret/""#),
    ("a", Key, "team-b/app", R, true, r#"key_prefix """#),
    ("a", Key, "team-b/app", W, false, r#"key_prefix """#),
    ("a", Key, "", R, true, r#"key_prefix """#),
    ("a", Key, "team-a", W, false, r#"key_prefix """#),
    ("a", Key, "team-a/", W, true, r#"key_prefix "team-a/""#),
    // list: only list and write dispositions allow it
    ("a", Key, "team-a/app/", L, true, r#"key_prefix "team-a/""#),
    ("a", Key, "team-b/", L, false, r#"key_prefix """#),
    ("l", Key, "logs/app", L, true, r#"key_prefix "logs/""#),
    ("l", Key, "logs/app", R, true, r#"key_prefix "logs/""#),
    ("l", Key, "logs/app", W, false, r#"key_prefix "logs/""#),
    ("l", Key, "logs/raw/1", L, false, r#"key_prefix "logs/raw/""#),
    ("l", Key, "logs/raw/1", R, true, r#"key_prefix "logs/raw/""#),
    ("l", Key, "other", R, false, "default"),
    // events
    ("a", Event, "deploy-a", W, true, r#"event "deploy-a""#),
    ("a", Event, "deploy-b", W, false, r#"event_prefix """#),
    ("a", Event, "deploy-b", R, true, r#"event_prefix """#),
    ("a", Event, "deploy-a-canary", W, false, r#"event_prefix """#),
    // agents, sessions, nodes
    ("a", Agent, "web-a-1", R, true, r#"agent_prefix "web-a-""#),
    ("a", Agent, "web-a-1", W, false, r#"agent_prefix "web-a-""#),
    ("a", Agent, "web-b-1", R, false, "default"),
    ("a", Session, "web-a-2", W, true, r#"session_prefix "web-a-""#),
    ("a", Session, "web-b-2", W, false, "default"),
    ("a", Node, "web-b-2", R, true, r#"node_prefix """#),
    ("a", Node, "web-b-2", W, false, r#"node_prefix """#),
    // services and intentions
    ("a", Service, "web-a", W, true, r#"service "web-a""#),
    ("a", Service, "web-b", R, true, r#"service_prefix """#),
    ("a", Service, "web-b", W, false, r#"service_prefix """#),
    ("a", Service, "db", R, false, r#"service "db""#),
    ("a", Intention, "web-a", W, true, r#"service "web-a""#),
    ("a", Intention, "web-b", R, true, r#"service_prefix """#),
    ("a", Intention, "web-b", W, false, r#"service_prefix """#),
    ("a", Intention, "db", R, false, r#"service "db""#),
    // prepared queries
    ("a", Query, "team-a-geo", W, true, r#"query_prefix "team-a-""#),
    ("a", Query, "team-b-geo", W, false, "default"),
    // unlabeled resources
    ("a", Operator, "", R, true, r#"operator = "read""#),
    ("a", Operator, "", W, false, r#"operator = "read""#),
    ("a", Keyring, "", R, true, r#"keyring = "read""#),
    ("a", Keyring, "", W, false, r#"keyring = "read""#),
    ("a", Acl, "", R, false, "default"),
    ("a", Mesh, "", R, false, "default"),
    ("l", Mesh, "", W, true, r#"mesh = "write""#),
    ("l", Peering, "", R, true, r#"peering = "read""#),
    ("l", Peering, "", W, false, r#"peering = "read""#),
    ("l", Acl, "", R, true, r#"acl = "read""#),
    ("l", Acl, "", W, false, r#"acl = "read""#),
    // two policies on one token: deny > write > read on the same label
    ("ao", Key, "team-a/app", W, true, r#"key_prefix "team-a/""#),
    ("ao", Event, "deploy-a", W, false, r#"event "deploy-a""#),
    ("ao", Event, "deploy-a", R, false, r#"event "deploy-a""#),
    ("ao", Operator, "", W, true, r#"operator = "write""#),
    ("ao", Key, "shared/x", W, true, r#"key_prefix "shared/""#),
    ("ao", Node, "web-a-1", W, true, r#"node "web-a-1""#),
    ("ao", Node, "web-a-2", W, false, r#"node_prefix """#),
    // the default policy as the fallthrough
    ("allow", Key, "anything", W, true, "default"),
    ("allow", Operator, "", W, true, "default"),
    ("allow", Key, "logs/raw/1", W, false, r#"key_prefix "logs/raw/""#),
    ("deny", Key, "anything", R, false, "default"),
    ("deny", Service, "web", R, false, "default"),
    // identities
    ("svc", Service, "api", W, true, r#"service "api""#),
    ("svc", Service, "api-sidecar-proxy", W, true, r#"service "api-sidecar-proxy""#),
    ("svc", Service, "other", R, true, r#"service_prefix """#),
    ("svc", Service, "other", W, false, r#"service_prefix """#),
    ("svc", Node, "n9", R, true, r#"node_prefix """#),
    ("svc", Node, "n9", W, false, r#"node_prefix """#),
    ("svc", Key, "k", R, false, "default"),
    ("node", Node, "n1", W, true, r#"node "n1""#),
    ("node", Node, "n2", W, false, "default"),
    ("node", Service, "web", R, true, r#"service_prefix """#),
    ("node", Service, "web", W, false, r#"service_prefix """#),
    // management
    ("mgmt", Key, "team-a/secret/pw", W, true, "management"),
    ("mgmt", Acl, "", W, true, "management"),
];

fn authorizer_named(name: &str) -> Authorizer {
    match name {
        "a" => token(DefaultPolicy::Deny, &[("team-a", TEAM_A)]),
        "l" => token(DefaultPolicy::Deny, &[("lister", LISTER)]),
        "ao" => token(DefaultPolicy::Deny, &[("team-a", TEAM_A), ("overrides", OVERRIDES)]),
        "allow" => token(DefaultPolicy::Allow, &[("lister", LISTER)]),
        "deny" => token(DefaultPolicy::Deny, &[]),
        "svc" => {
            let mut a = Authorizer::new(DefaultPolicy::Deny);
            a.add(&PolicyRef::service_identity("api"), &service_identity_rules("api"));
            a
        }
        "node" => {
            let mut a = Authorizer::new(DefaultPolicy::Deny);
            a.add(&PolicyRef::node_identity("n1"), &node_identity_rules("n1"));
            a
        }
        "mgmt" => Authorizer::management(),
        other => panic!("no token {other}"),
    }
}

#[test]
fn the_rule_table() {
    assert!(CASES.len() >= 60, "{} cases", CASES.len());
    let mut failures = Vec::new();
    for &(tok, resource, segment, access, allowed, rule) in CASES {
        let d = authorizer_named(tok).authorize(resource, segment, access);
        let decided_by = match &d.reason {
            Reason::Management => "management".to_owned(),
            Reason::Default(_) => "default".to_owned(),
            Reason::Rule(g) => g.rule.clone(),
        };
        let rule_ok = if rule == "default" || rule == "management" {
            decided_by == rule
        } else {
            decided_by.starts_with(rule)
        };
        if d.allowed != allowed || !rule_ok {
            failures.push(format!(
                "{tok}: {resource}:{access} on {segment:?}: got {} by {decided_by}, want {} by {rule}",
                d.allowed, allowed
            ));
        }
    }
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn decisions_name_the_policy_and_read_like_consul() {
    let a = token(DefaultPolicy::Deny, &[("team-a", TEAM_A), ("overrides", OVERRIDES)]);
    let d = a.authorize(Event, "deploy-a", W);
    let Reason::Rule(g) = &d.reason else { panic!("{d:?}") };
    assert_eq!(g.policy.name, "overrides", "the deny comes from the second policy");
    assert_eq!(
        d.denied_message("8f3b-acc"),
        r#"Permission denied: token with AccessorID '8f3b-acc' lacks permission 'event:write' on "deploy-a""#
    );
    assert_eq!(
        d.explain(),
        r#"event:write on "deploy-a": denied by rule `event "deploy-a" { policy = "deny" }` of policy "overrides" (id-overrides)"#
    );
    assert!(d.suggestion().unwrap().contains("a deny wins"), "{:?}", d.suggestion());

    let d = a.authorize(Key, "team-b/x", W);
    assert_eq!(
        d.suggestion().unwrap(),
        r#"a policy of the token with `key "team-b/x" { policy = "write" }`"#
    );
    let d = a.authorize(Acl, "ignored", W);
    assert_eq!(d.segment, "");
    assert_eq!(
        d.denied_message("x"),
        "Permission denied: token with AccessorID 'x' lacks permission 'acl:write'"
    );
    assert_eq!(d.explain(), "acl:write: denied: no rule matches, default policy deny");
    assert_eq!(d.suggestion().unwrap(), r#"a policy of the token with `acl = "write"`"#);
}

#[test]
fn recursive_writes_need_write_on_everything_below() {
    let a = token(DefaultPolicy::Deny, &[("team-a", TEAM_A)]);
    let d = a.key_write_prefix("team-a/app/");
    assert!(d.allowed, "{d:?}");
    let d = a.key_write_prefix("team-a/");
    assert!(!d.allowed, "the secret/ rules inside the prefix forbid it");
    let Reason::Rule(g) = &d.reason else { panic!() };
    assert!(
        g.rule.starts_with("key \"team-a/secret/shared\"")
            || g.rule.starts_with("key_prefix \"team-a/secret/\""),
        "{}",
        g.rule
    );
    assert!(!a.key_write_prefix("").allowed);
    assert!(!a.key_write_prefix("team-b/").allowed);
    assert!(Authorizer::new(DefaultPolicy::Allow).key_write_prefix("x/").allowed);
    assert!(Authorizer::management().key_write_prefix("").allowed);
}

#[test]
fn json_rules_mean_the_same_as_hcl() {
    let json = r#"{
        "key_prefix": {"team-a/": {"policy": "write"}, "team-a/secret/": {"policy": "deny"}},
        "key": [{"team-a/secret/shared": {"policy": "read"}}],
        "service": {"web-a": {"policy": "write", "intentions": "write"}},
        "operator": "read"
    }"#;
    let hcl = r#"
        key_prefix "team-a/" { policy = "write" }
        key_prefix "team-a/secret/" { policy = "deny" }
        key "team-a/secret/shared" { policy = "read" }
        service "web-a" { policy = "write" intentions = "write" }
        operator = "read"
    "#;
    let (j, h) = (token(DefaultPolicy::Deny, &[("j", json)]), token(DefaultPolicy::Deny, &[("h", hcl)]));
    for (r, s) in [
        (Key, "team-a/x"),
        (Key, "team-a/secret/x"),
        (Key, "team-a/secret/shared"),
        (Service, "web-a"),
        (Intention, "web-a"),
        (Operator, ""),
    ] {
        for acc in [R, L, W] {
            assert_eq!(j.authorize(r, s, acc).allowed, h.authorize(r, s, acc).allowed, "{r}:{acc} {s}");
        }
    }
}

#[test]
fn hcl_variants_parse() {
    let r = Rules::parse("key \"a\" = { policy = \"read\" }, key_prefix \"\" {\n policy = \"deny\"\n}\n// c\n/* multi\nline */ operator = \"write\"").unwrap();
    assert_eq!(r.rules.len(), 3);
    assert_eq!(r.rules[2].line, 6);
    assert_eq!(r.rules[0].to_string(), r#"key "a" { policy = "read" }"#);
    assert_eq!(r.rules[2].to_string(), r#"operator = "write""#);
    assert!(Rules::parse("").unwrap().rules.is_empty());
    assert!(Rules::parse("  # nothing\n").unwrap().rules.is_empty());
}

#[test]
fn parse_errors_name_the_line_and_the_word() {
    let cases: &[(&str, &str)] = &[
        (
            "key_prefix \"\" { policy = \"read\" }\nkeyy \"a\" { policy = \"read\" }",
            "line 2: unknown resource \"keyy\"",
        ),
        ("key \"a\" {\n  policy = \"writ\"\n}", "line 2: invalid policy \"writ\" for key"),
        (
            "service \"a\" {\n  policy = \"read\"\n  colour = \"red\"\n}",
            "line 3: unknown field \"colour\" in a service rule",
        ),
        (
            "node \"a\" { policy = \"list\" }",
            "line 1: invalid policy \"list\" for node: list applies to key rules only",
        ),
        ("key \"a\" { intentions = \"read\" }", "unknown field \"intentions\" in a key rule"),
        ("operator \"x\" { policy = \"read\" }", "operator takes a value"),
        ("operator_prefix \"x\" { policy = \"read\" }", "operator takes a value, not a label"),
        ("partition \"p\" { }", "an Enterprise resource"),
        ("key \"a\" { policy = \"read\"", "line 1: unclosed {"),
        ("\n\nkey \"a { policy = \"read\" }", "line 3: unterminated string"),
        ("key a { policy = \"read\" }", "expected a quoted string for the label of key, found \"a\""),
        ("key \"a\" { }", "the key rule for \"a\" sets no policy"),
        ("operator = \"list\"", "list applies to key rules only"),
        ("{\"keyy\": {}}", "unknown resource \"keyy\""),
        ("{\"key\": {\"a\": {\"policy\": \"nope\"}}}", "invalid policy \"nope\" for key"),
        ("{\"key\": ", "line 1: invalid JSON"),
        ("{\n\"operator\": {\"x\": 1}}", "line 2: operator takes a string value"),
        ("key \"a\" { policy = \"read\" } $", "unexpected character '$'"),
    ];
    for (text, want) in cases {
        let err = Rules::parse(text).expect_err(text).to_string();
        assert!(err.contains(want), "{text:?}: got {err:?}, want {want:?}");
    }
}

#[test]
fn arbitrary_text_never_panics() {
    // A cheap deterministic fuzz pass (the cargo-fuzz target in fuzz/ runs longer).
    let alphabet: Vec<char> =
        "key_prefix \"{}=\n#/*policy read write deny list service operator , \\ ä".chars().collect();
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..20_000 {
        let len = (state % 64) as usize;
        let mut s = String::new();
        for _ in 0..len {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            s.push(alphabet[(state % alphabet.len() as u64) as usize]);
        }
        let _ = Rules::parse(&s);
        state = state.wrapping_add(1);
    }
}

#[test]
fn printed_rules_parse_back_to_the_same_rules() {
    let text = "key \"a\\u0001\\\"b\\\\\" { policy = \"read\" }\nservice_prefix \"\\t\" { intentions = \"deny\" }\nacl = \"write\"";
    let rules = Rules::parse(text).unwrap();
    let printed: Vec<String> = rules.rules.iter().map(ToString::to_string).collect();
    let again = Rules::parse(&printed.join("\n")).unwrap();
    let strip = |r: &Rules| {
        r.rules.iter().map(|r| (r.resource, r.label.clone(), r.disposition, r.intentions)).collect::<Vec<_>>()
    };
    assert_eq!(strip(&again), strip(&rules));
    assert_eq!(rules.rules[0].label, Label::Exact("a\u{1}\"b\\".into()));
}
