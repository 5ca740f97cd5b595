use serde_json::json;

use super::{HclError, parse};

fn ok(src: &str) -> serde_json::Value {
    match parse(src) {
        Ok(v) => v,
        Err(e) => panic!("parse failed: {e}\n{src}"),
    }
}

fn err(src: &str) -> HclError {
    match parse(src) {
        Ok(v) => panic!("expected an error, got {v}"),
        Err(e) => e,
    }
}

#[test]
fn parses_a_typical_consul_server_config() {
    let src = r#"
datacenter = "east-aws"
data_dir = "/opt/consul"
log_level = "INFO"
node_name = "foobar"
server = true
ports { dns = 8600, http = 8500 }
"bootstrap_expect" = 3
retry_join = ["10.0.0.1", "10.0.0.2"]
service {
  name = "web"
  tags = ["rails"]
  port = 80
  check {
    http = "http://localhost/health"
    interval = "10s"
  }
}
telemetry { prometheus_retention_time = "24h" }
limits { kv_max_value_size = 1048576 }
acl {
  enabled = true
  default_policy = "deny"
  tokens { initial_management = "b1gs33cr3t" }
}
"#;
    let expected = json!({
        "datacenter": "east-aws",
        "data_dir": "/opt/consul",
        "log_level": "INFO",
        "node_name": "foobar",
        "server": true,
        "ports": {"dns": 8600, "http": 8500},
        "bootstrap_expect": 3,
        "retry_join": ["10.0.0.1", "10.0.0.2"],
        "service": {
            "name": "web",
            "tags": ["rails"],
            "port": 80,
            "check": {"http": "http://localhost/health", "interval": "10s"}
        },
        "telemetry": {"prometheus_retention_time": "24h"},
        "limits": {"kv_max_value_size": 1048576},
        "acl": {
            "enabled": true,
            "default_policy": "deny",
            "tokens": {"initial_management": "b1gs33cr3t"}
        }
    });
    assert_eq!(ok(src), expected);
}

#[test]
fn parses_a_client_config_with_object_assignment() {
    let src = r#"
client_addr      = "0.0.0.0"
datacenter       = "east"
retry_join       = [
    "provider=gce project_name=eq-env tag_value=consul-east-dc",
]
ports            = {
    grpc         = 8502
}
"#;
    let v = ok(src);
    assert_eq!(v["ports"], json!({"grpc": 8502}));
    assert_eq!(v["retry_join"], json!(["provider=gce project_name=eq-env tag_value=consul-east-dc"]));
}

#[test]
fn repeated_blocks_become_an_array_and_a_single_one_stays_an_object() {
    let v = ok(r#"
service { name = "web" }
service { name = "db" }
service { name = "cache" }
check { id = "mem" }
"#);
    assert_eq!(v["service"], json!([{"name": "web"}, {"name": "db"}, {"name": "cache"}]));
    assert_eq!(v["check"], json!({"id": "mem"}));
}

#[test]
fn repeated_scalar_keeps_the_last_value() {
    assert_eq!(ok("a = 1\na = 2\nb = [1]\nb = [2]"), json!({"a": 2, "b": [2]}));
}

#[test]
fn labelled_blocks_nest_under_their_labels() {
    let v = ok(r#"
service "web" { port = 80 }
service "db" { port = 5432 }
audit { sink "file" "main" { type = "file" } }
"#);
    assert_eq!(v["service"], json!({"web": {"port": 80}, "db": {"port": 5432}}));
    assert_eq!(v["audit"], json!({"sink": {"file": {"main": {"type": "file"}}}}));
}

#[test]
fn items_need_no_separator_and_accept_commas() {
    assert_eq!(ok("a = 1 b = 2, c = 3,"), json!({"a": 1, "b": 2, "c": 3}));
}

#[test]
fn lists_allow_trailing_commas_newlines_and_objects() {
    let v =
        ok("a = [\n  1,\n  2,\n]\nb = []\nwatches = [{ type = \"key\", key = \"x\" }, {type = \"nodes\"}]");
    assert_eq!(v["a"], json!([1, 2]));
    assert_eq!(v["b"], json!([]));
    assert_eq!(v["watches"], json!([{"type": "key", "key": "x"}, {"type": "nodes"}]));
}

#[test]
fn numbers_and_booleans() {
    let v = ok("a = -5\nb = 1.5\nc = -0.25\nd = 1e3\ne = 0x1F\nf = false\ng = true");
    assert_eq!(v, json!({"a": -5, "b": 1.5, "c": -0.25, "d": 1000.0, "e": 31, "f": false, "g": true}));
}

#[test]
fn string_escapes() {
    let v = ok(r#"a = "q\"b\\s\nn\tt\u00e9\U0001F600/""#);
    assert_eq!(v["a"], json!("q\"b\\s\nn\tt\u{e9}\u{1F600}/"));
}

#[test]
fn quoted_keys_and_dotted_identifiers() {
    let v = ok("\"datacenter\" = \"dc1\"\nfoo.bar-baz = 1\n\"node meta\" { \"rack\" = \"r1\" }");
    assert_eq!(v, json!({"datacenter": "dc1", "foo.bar-baz": 1, "node meta": {"rack": "r1"}}));
}

#[test]
fn comments_of_every_kind() {
    let v = ok("# hash\na = 1 // slashes\n/* block\n b = 2 */ c = 3 # end");
    assert_eq!(v, json!({"a": 1, "c": 3}));
}

#[test]
fn heredocs() {
    let v = ok("a = <<EOF\nline one\n  line two\nEOF\nb = 1");
    assert_eq!(v["a"], json!("line one\n  line two\n"));
    let v = ok("x {\n  a = <<-EOT\n    indented\n      more\n    EOT\n}");
    assert_eq!(v["x"]["a"], json!("indented\n  more\n"));
    assert_eq!(ok("a = <<E\nE\n")["a"], json!(""));
}

#[test]
fn empty_document_is_an_empty_object() {
    assert_eq!(ok(""), json!({}));
    assert_eq!(ok("# only a comment\n"), json!({}));
}

#[test]
fn errors_carry_line_and_column() {
    let e = err("a = 1\nb = \"open\n");
    assert_eq!((e.line, e.column), (2, 5));
    assert_eq!(e.to_string(), "line 2, column 5: string not terminated");

    let e = err("ports {\n  http = 8500\n");
    assert_eq!(e.line, 3);
    assert!(e.message.contains("expected `}`"), "{e}");
}

#[test]
fn rejects_malformed_input() {
    for src in [
        "a = ",
        "a 1",
        "a = [1 2]",
        "a = 10s",
        "a = bare",
        "a \"l\" = 1",
        "}",
        "a = <<EOF\nno end",
        "a = \"\\q\"",
        "/* open",
        "a = 99999999999999999999",
        "a = @",
    ] {
        let e = err(src);
        assert!(e.line >= 1 && e.column >= 1, "{src}: {e}");
    }
}

/// Fuzzing found that nesting had no limit (serde_json stops at 127 levels; a deep enough HCL
/// file overflowed the parser's stack): both formats now stop at the same depth.
#[test]
fn nesting_is_limited_like_json() {
    let deep = |n: usize| format!("a = {}1{}", "[".repeat(n), "]".repeat(n));
    assert!(parse(&deep(super::MAX_DEPTH - 1)).is_ok(), "127 levels with the top object");
    assert!(
        serde_json::from_str::<serde_json::Value>(&format!(
            "{{\"a\": {}1{}}}",
            "[".repeat(126),
            "]".repeat(126)
        ))
        .is_ok()
    );
    assert!(err(&deep(super::MAX_DEPTH)).message.contains("nesting deeper than 127"));
    assert!(
        serde_json::from_str::<serde_json::Value>(&format!(
            "{{\"a\": {}1{}}}",
            "[".repeat(127),
            "]".repeat(127)
        ))
        .is_err()
    );
    // Far past any stack: an error, not a crash.
    assert!(err(&deep(1_000_000)).message.contains("nesting deeper"));
    assert!(
        err(&format!("{}{}", "a { ".repeat(200_000), "}".repeat(200_000))).message.contains("nesting deeper")
    );
    let labels = format!("a {} {{}}", "\"l\" ".repeat(200_000));
    assert!(err(&labels).message.contains("nesting deeper"));
    // Repeated blocks turn into an array a level deeper than they were parsed.
    let blocks = |n: usize| format!("{}x {{}}\nx {{}}{}", "a { ".repeat(n), " }".repeat(n));
    assert!(parse(&blocks(124)).is_ok());
    assert!(err(&blocks(125)).message.contains("nesting deeper"));
}
