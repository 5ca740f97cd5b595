use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::json;

use super::{ConfigError, Flags, Ports, RuntimeConfig, Warning, load};

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write config file");
    path
}

fn files(paths: &[PathBuf]) -> Flags {
    Flags { config_files: paths.to_vec(), ..Flags::default() }
}

fn ok(flags: &Flags) -> (RuntimeConfig, Vec<Warning>) {
    match load(flags) {
        Ok(r) => r,
        Err(e) => panic!("load failed: {e}"),
    }
}

fn err(flags: &Flags) -> ConfigError {
    match load(flags) {
        Ok((rt, _)) => panic!("expected an error, got {rt:?}"),
        Err(e) => e,
    }
}

/// Loads one file with the given name and text and returns the error message.
fn err_text(name: &str, text: &str) -> (String, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(dir.path(), name, text);
    (err(&files(std::slice::from_ref(&path))).to_string(), path)
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("ip")
}

#[test]
fn defaults_follow_consul() {
    let (rt, warnings) = ok(&Flags::default());
    assert!(warnings.is_empty());
    assert_eq!(rt.datacenter, "dc1");
    assert_eq!(rt.primary_datacenter, "dc1");
    assert_eq!(rt.domain, "consul");
    assert_eq!(rt.log_level, "info");
    assert_eq!(
        rt.ports,
        Ports {
            http: Some(8500),
            https: None,
            dns: Some(8600),
            server: 8300,
            serf_lan: 8301,
            serf_wan: Some(8302)
        }
    );
    assert_eq!(rt.bind_addr, ip("0.0.0.0"));
    assert_eq!(
        (rt.client_addr, rt.http_addr, rt.dns_addr),
        (ip("127.0.0.1"), ip("127.0.0.1"), ip("127.0.0.1"))
    );
    assert!(!rt.advertise_addr.is_unspecified());
    assert_eq!((rt.kv_max_value_size, rt.txn_max_req_len), (524_288, 524_288));
    assert_eq!(rt.session_ttl_min, Duration::from_secs(10));
    // raft_multiplier: Sekisho defaults to 1 (Consul 5) for sub-second elections on a LAN.
    assert_eq!((rt.raft_multiplier, rt.raft_snapshot_threshold, rt.raft_trailing_logs), (1, 16384, 10240));
    assert!(rt.disable_remote_exec && !rt.server && !rt.dev && !rt.ui_enabled);
    assert!(uuid::Uuid::parse_str(&rt.node_id).is_ok());
    assert!(!rt.node_name.is_empty());
}

#[test]
fn dev_and_for_test_configurations() {
    let dev = RuntimeConfig::dev();
    assert!(dev.dev && dev.server && dev.bootstrap && dev.ui_enabled && dev.disable_remote_exec);
    assert_eq!((dev.raft_multiplier, dev.data_dir.clone()), (1, None));
    assert_eq!((dev.bind_addr, dev.advertise_addr), (ip("127.0.0.1"), ip("127.0.0.1")));
    assert_eq!(dev.ports.http, Some(8500));

    let t = RuntimeConfig::for_test("dc2", "n1");
    assert_eq!(
        (t.datacenter.as_str(), t.primary_datacenter.as_str(), t.node_name.as_str()),
        ("dc2", "dc2", "n1")
    );
    assert_eq!(
        t.ports,
        Ports { http: Some(0), https: None, dns: Some(0), server: 0, serf_lan: 0, serf_wan: Some(0) }
    );
    assert_ne!(t.node_id, RuntimeConfig::for_test("dc2", "n1").node_id);

    let (rt, _) = ok(&Flags { dev: true, ..Flags::default() });
    assert!(rt.dev && rt.bootstrap && rt.data_dir.is_none());
    assert_eq!(rt.advertise_addr, ip("127.0.0.1"));
}

#[test]
fn loads_json_and_hcl_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let json =
        write(dir.path(), "a.json", r#"{"datacenter": "east", "ports": {"http": 9500}, "server": true}"#);
    let hcl = write(
        dir.path(),
        "b.hcl",
        r#"
node_name = "foobar"
ports { dns = 8653, https = 8501 }
tls { https { cert_file = "c.pem", key_file = "k.pem" } }
"bootstrap_expect" = 3
retry_join = ["10.0.0.1", "10.0.0.2"]
addresses { http = "0.0.0.0" }
telemetry { prometheus_retention_time = "24h" }
limits { kv_max_value_size = 1048576 }
performance { raft_multiplier = 2 }
session_ttl_min = "1m30s"
acl {
  enabled = true
  tokens { initial_management = "b1gs33cr3t" }
}
"#,
    );
    let (rt, warnings) = ok(&files(&[json, hcl]));
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!((rt.datacenter.as_str(), rt.node_name.as_str()), ("east", "foobar"));
    assert_eq!((rt.ports.http, rt.ports.dns, rt.ports.https), (Some(9500), Some(8653), Some(8501)));
    assert_eq!(rt.bootstrap_expect, Some(3));
    assert_eq!(rt.retry_join, ["10.0.0.1", "10.0.0.2"]);
    assert_eq!((rt.http_addr, rt.dns_addr), (ip("0.0.0.0"), ip("127.0.0.1")));
    assert_eq!(rt.prometheus_retention_time, Duration::from_secs(86_400));
    assert_eq!((rt.kv_max_value_size, rt.raft_multiplier), (1_048_576, 2));
    assert_eq!(rt.session_ttl_min, Duration::from_secs(90));
    assert_eq!(rt.acl, json!({"enabled": true, "tokens": {"initial_management": "b1gs33cr3t"}}));
}

#[test]
fn config_dir_loads_in_lexical_order_and_skips_other_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "20-b.hcl", "datacenter = \"b\"\nretry_join = [\"two\"]");
    write(dir.path(), "10-a.json", r#"{"datacenter": "a", "node_name": "n", "retry_join": ["one"]}"#);
    write(dir.path(), "30-c.json", r#"{"acl": {"tokens": {"agent": "x"}}}"#);
    write(dir.path(), "05-z.json", r#"{"acl": {"enabled": true, "tokens": {"default": "d"}}}"#);
    write(dir.path(), "README.md", "not config");
    std::fs::create_dir(dir.path().join("sub.json")).expect("mkdir");
    let flags = Flags { config_dirs: vec![dir.path().to_path_buf()], ..Flags::default() };
    let (rt, warnings) = ok(&flags);
    assert_eq!((rt.datacenter.as_str(), rt.node_name.as_str()), ("b", "n"));
    assert_eq!(rt.retry_join, ["one", "two"]);
    assert_eq!(rt.acl, json!({"enabled": true, "tokens": {"default": "d", "agent": "x"}}));
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].message.contains("README.md"), "{}", warnings[0]);
}

#[test]
fn flags_override_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(
        dir.path(),
        "a.hcl",
        "datacenter = \"a\"\nnode_name = \"file\"\nports { http = 1000, dns = 2000 }\nretry_join = [\"f\"]\nui_config { enabled = false }",
    );
    let data = dir.path().join("data");
    let flags = Flags {
        config_files: vec![path],
        datacenter: Some("flag-dc".to_owned()),
        node_name: Some("flag-node".to_owned()),
        http_port: Some(-1),
        dns_port: Some(53),
        bind_addr: Some("10.1.2.3".to_owned()),
        client_addr: Some("0.0.0.0".to_owned()),
        log_level: Some("debug".to_owned()),
        domain: Some("example".to_owned()),
        ui: Some(true),
        server: Some(true),
        bootstrap: Some(true),
        data_dir: Some(data.clone()),
        retry_join: vec!["g".to_owned()],
        ..Flags::default()
    };
    let (rt, _) = ok(&flags);
    assert_eq!((rt.datacenter.as_str(), rt.node_name.as_str()), ("flag-dc", "flag-node"));
    assert_eq!((rt.ports.http, rt.ports.dns), (None, Some(53)));
    assert_eq!(
        (rt.bind_addr, rt.advertise_addr, rt.http_addr),
        (ip("10.1.2.3"), ip("10.1.2.3"), ip("0.0.0.0"))
    );
    assert_eq!((rt.log_level.as_str(), rt.domain.as_str()), ("debug", "example"));
    assert!(rt.ui_enabled && rt.server && rt.bootstrap);
    assert_eq!(rt.retry_join, ["f", "g"]);
    assert_eq!(rt.data_dir, Some(data));
}

#[test]
fn unknown_key_is_an_error_with_a_suggestion() {
    let (msg, path) = err_text("a.json", r#"{"datacentre": "dc1"}"#);
    assert_eq!(
        msg,
        format!("unknown key \"datacentre\" in {} (did you mean \"datacenter\"?)", path.display())
    );

    let (msg, path) = err_text("a.hcl", "ports { htpp = 1 }");
    assert_eq!(
        msg,
        format!("unknown key \"ports.htpp\" in {} (did you mean \"ports.http\"?)", path.display())
    );

    let (msg, path) = err_text("a.json", r#"{"frobnicate": true}"#);
    assert_eq!(msg, format!("unknown key \"frobnicate\" in {}", path.display()));
}

#[test]
fn unimplemented_keys_warn_once_each_and_are_ignored() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(
        dir.path(),
        "a.hcl",
        "dns_config { use_cache = true }\nports { grpc = 8502 }\nleave_on_terminate = true\ndatacenter = \"x\"",
    );
    let (rt, warnings) = ok(&files(std::slice::from_ref(&path)));
    assert_eq!(rt.datacenter, "x");
    let shown = path.display();
    // Key order within a file is not guaranteed (serde_json maps may sort keys).
    let mut messages: Vec<String> = warnings.iter().map(ToString::to_string).collect();
    messages.sort();
    assert_eq!(
        messages,
        [
            format!(
                "config key \"dns_config.use_cache\" in {shown} is accepted but not implemented yet by Sekisho"
            ),
            format!(
                "config key \"leave_on_terminate\" in {shown} is accepted but not implemented yet by Sekisho"
            ),
            format!("config key \"ports.grpc\" in {shown} is accepted but not implemented yet by Sekisho"),
        ]
    );
    let grpc = warnings.iter().find(|w| w.key.as_deref() == Some("ports.grpc"));
    assert_eq!(grpc.and_then(|w| w.origin.clone()), Some(shown.to_string()));
}

#[test]
fn type_errors_name_key_type_and_file() {
    let (msg, path) = err_text("a.json", r#"{"ports": {"http": "abc"}}"#);
    assert_eq!(
        msg,
        format!("key \"ports.http\" in {}: expected integer, found string \"abc\"", path.display())
    );

    for (text, needle) in [
        (r#"{"server": "yes"}"#, "key \"server\" in"),
        (r#"{"retry_join": "10.0.0.1"}"#, "expected list of strings, found string"),
        (r#"{"services": ["web"]}"#, "expected object or list of objects, found list"),
        (r#"{"ports": 8500}"#, "key \"ports\" in"),
        (r#"{"limits": {"kv_max_value_size": 1.5}}"#, "found number 1.5"),
        (r#"{"acl": true}"#, "expected object, found boolean true"),
    ] {
        let (msg, _) = err_text("a.json", text);
        assert!(msg.contains(needle), "{text}: {msg}");
    }
}

#[test]
fn value_rules_are_enforced() {
    for (text, needle) in [
        (r#"{"ports": {"http": 70000}}"#, "key \"ports.http\""),
        (r#"{"ports": {"server": -1}}"#, "cannot be disabled"),
        (r#"{"ports": {"serf_lan": -2}}"#, "not a valid port"),
        (r#"{"performance": {"raft_multiplier": 11}}"#, "must be between 1 and 10"),
        (r#"{"performance": {"raft_multiplier": 0}}"#, "raft_multiplier"),
        (r#"{"session_ttl_min": "10"}"#, "missing unit"),
        (r#"{"telemetry": {"prometheus_retention_time": "1d"}}"#, "unknown unit"),
        (r#"{"bind_addr": "not-an-ip"}"#, "is not a valid IP address"),
        (r#"{"addresses": {"dns": "1.2.3"}}"#, "addresses.dns"),
        (r#"{"datacenter": "dc 1"}"#, "can only contain lowercase alphanumeric"),
        (r#"{"datacenter": ""}"#, "cannot be empty"),
        (r#"{"node_name": ""}"#, "key \"node_name\""),
        (r#"{"node_id": "nope"}"#, "not a valid UUID"),
        (r#"{"bootstrap_expect": -1}"#, "out of range"),
        (r#"{"server": true, "bootstrap": true, "bootstrap_expect": 3}"#, "mutually exclusive"),
        (r#"{"bootstrap": true}"#, "requires 'server = true'"),
        (r#"{"advertise_addr": "0.0.0.0"}"#, "advertise_addr cannot be 0.0.0.0"),
    ] {
        let (msg, _) = err_text("a.json", text);
        assert!(msg.contains(needle), "{text}: {msg}");
    }
}

#[test]
fn accepted_values_and_normalisation() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(
        dir.path(),
        "a.json",
        r#"{"datacenter": "East-1", "ports": {"serf_wan": -1, "dns": -1, "http": 0},
            "session_ttl_min": "0.5s", "telemetry": {"prometheus_retention_time": 60},
            "enable_script_checks": true, "server": true, "bootstrap_expect": 1,
            "node_id": "ADB2A4D0-5B5E-4A0C-8A57-0F3B4E0D8E11", "primary_datacenter": "main"}"#,
    );
    let (rt, warnings) = ok(&files(&[path]));
    assert_eq!((rt.datacenter.as_str(), rt.primary_datacenter.as_str()), ("east-1", "main"));
    assert_eq!((rt.ports.serf_wan, rt.ports.dns, rt.ports.http), (None, None, Some(0)));
    assert_eq!(rt.session_ttl_min, Duration::from_millis(500));
    assert_eq!(rt.prometheus_retention_time, Duration::from_secs(60));
    assert!(rt.enable_script_checks && rt.enable_local_script_checks);
    assert_eq!((rt.bootstrap, rt.bootstrap_expect), (true, None));
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(rt.node_id, "adb2a4d0-5b5e-4a0c-8a57-0f3b4e0d8e11");
}

#[test]
fn hcl_one_line_blocks_quoted_keys_and_repeated_services() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = write(
        dir.path(),
        "a.hcl",
        r#"
"datacenter" = "dc9"
ports { dns = 8600, http = 8501 }
service { name = "web", port = 80 }
service {
  name = "db"
  port = 5432
  check { tcp = "localhost:5432", interval = "10s" }
}
check { id = "mem", ttl = "30s" }
watches = [{ type = "key", key = "x", args = ["/bin/true"] }]
template {
  source      = "/etc/sekisho/deny.ctmpl"
  destination = "/etc/nginx/deny.conf"
  wait        = "1s:3s"
}
template { source = "hosts.ctmpl", destination = "/etc/hosts" }
"#,
    );
    let b = write(
        dir.path(),
        "b.json",
        r#"{"services": [{"name": "cache"}], "checks": [{"id": "disk"}, {"id": "cpu"}]}"#,
    );
    let (rt, _) = ok(&files(&[a, b]));
    assert_eq!(rt.datacenter, "dc9");
    assert_eq!((rt.ports.dns, rt.ports.http), (Some(8600), Some(8501)));
    let names: Vec<&str> = rt.services.iter().filter_map(|s| s["name"].as_str()).collect();
    assert_eq!(names, ["web", "db", "cache"]);
    assert_eq!(rt.services[1]["check"]["tcp"], json!("localhost:5432"));
    let ids: Vec<&str> = rt.checks.iter().filter_map(|c| c["id"].as_str()).collect();
    assert_eq!(ids, ["mem", "disk", "cpu"]);
    assert_eq!(rt.watches, [json!({"type": "key", "key": "x", "args": ["/bin/true"]})]);
    let sources: Vec<&str> = rt.templates.iter().filter_map(|t| t["source"].as_str()).collect();
    assert_eq!(sources, ["/etc/sekisho/deny.ctmpl", "hosts.ctmpl"], "template blocks append");
    assert_eq!(rt.templates[0]["wait"], json!("1s:3s"));
}

#[test]
fn repeated_stanza_blocks_merge() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = write(
        dir.path(),
        "a.hcl",
        "ports { http = 1 }\nports { dns = 2 }\ntls { defaults { verify_outgoing = false } }\n\
         tls { defaults { tls_min_version = \"TLSv1_3\" } }",
    );
    let (rt, _) = ok(&files(&[a]));
    assert_eq!((rt.ports.http, rt.ports.dns), (Some(1), Some(2)));
    assert_eq!(rt.tls.defaults.verify_outgoing, Some(false));
    assert_eq!(rt.tls.rpc().unwrap().min_version, crate::config::tls::TlsMinVersion::Tls13);
}

#[test]
fn syntax_errors_name_the_file_and_position() {
    let (msg, path) = err_text("bad.hcl", "datacenter = \"dc1\"\nports {\n  http = \n}");
    assert!(msg.starts_with(&format!("cannot parse {}: line 4, column 1:", path.display())), "{msg}");
    let (msg, path) = err_text("bad.json", "{\"a\": }");
    assert!(msg.starts_with(&format!("cannot parse {}:", path.display())), "{msg}");
    let (msg, _) = err_text("list.json", "[1]");
    assert!(msg.contains("expected an object at the top level"), "{msg}");
    let (msg, _) = err_text("conf.yaml", "a: 1");
    assert!(msg.contains("extension must be .hcl or .json"), "{msg}");
}

#[test]
fn missing_file_is_an_io_error() {
    let e = err(&files(&[PathBuf::from("/nonexistent/sekisho.json")]));
    assert!(matches!(e, ConfigError::Io { .. }), "{e}");
    assert!(e.to_string().starts_with("cannot read /nonexistent/sekisho.json"), "{e}");
}

#[test]
fn node_id_is_persisted_in_the_data_dir() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let flags = Flags { data_dir: Some(data.clone()), ..Flags::default() };
    let (first, _) = ok(&flags);
    let stored = std::fs::read_to_string(data.join("node-id")).expect("node-id written");
    assert_eq!(stored, first.node_id);
    let (second, _) = ok(&flags);
    assert_eq!(second.node_id, first.node_id);

    std::fs::write(data.join("node-id"), "garbage").expect("write");
    assert!(err(&flags).to_string().contains("not a valid UUID"));

    let file = write(dir.path(), "not-a-dir", "");
    let e = err(&Flags { data_dir: Some(file), ..Flags::default() });
    assert!(e.to_string().contains("is not a directory"), "{e}");
}

#[test]
fn every_implemented_key_is_applied() {
    let dir = tempfile::tempdir().expect("tempdir");
    let all = json!({
        "acl": {"enabled": true}, "addresses": {"dns": "127.0.0.2", "http": "127.0.0.3"},
        "advertise_addr": "10.0.0.9", "bind_addr": "10.0.0.8", "bootstrap": false,
        "bootstrap_expect": 3, "check": {"id": "a"}, "checks": [{"id": "b"}],
        "client_addr": "127.0.0.4", "data_dir": dir.path().join("d"), "datacenter": "x",
        "disable_remote_exec": false, "domain": "d", "enable_local_script_checks": true,
        "enable_script_checks": false, "encrypt": "k", "limits": {"kv_max_value_size": 1, "txn_max_req_len": 2},
        "log_level": "warn", "node_id": "adb2a4d0-5b5e-4a0c-8a57-0f3b4e0d8e11", "node_name": "n",
        "performance": {"raft_multiplier": 3},
        "ports": {"dns": 1, "http": 2, "https": 3, "server": 4, "serf_lan": 5, "serf_wan": 6},
        "primary_datacenter": "p", "raft_snapshot_threshold": 7, "raft_trailing_logs": 8,
        "retry_join": ["a"], "retry_join_wan": ["b"], "server": true, "service": {"name": "s"},
        "services": [{"name": "t"}], "session_ttl_min": "1s",
        "telemetry": {"prometheus_retention_time": "2s"}, "tls": {"https": {"cert_file": "c", "key_file": "k"}}, "ui": false,
        "ui_config": {"enabled": true}, "watches": [{"type": "nodes"}]
    });
    let path = write(dir.path(), "all.json", &all.to_string());
    let (rt, warnings) = ok(&files(&[path]));
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(
        rt.ports,
        Ports { http: Some(2), https: Some(3), dns: Some(1), server: 4, serf_lan: 5, serf_wan: Some(6) }
    );
    assert_eq!(
        (rt.advertise_addr, rt.dns_addr, rt.http_addr),
        (ip("10.0.0.9"), ip("127.0.0.2"), ip("127.0.0.3"))
    );
    assert_eq!((rt.services.len(), rt.checks.len(), rt.watches.len()), (2, 2, 1));
    assert_eq!((rt.raft_snapshot_threshold, rt.raft_trailing_logs, rt.txn_max_req_len), (7, 8, 2));
    assert_eq!(rt.encrypt.as_deref(), Some("k"));
    assert!(rt.ui_enabled && rt.enable_local_script_checks && !rt.disable_remote_exec);
}

#[test]
fn dns_config_in_hcl_and_json() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hcl = write(
        dir.path(),
        "dns.hcl",
        r#"
domain = "procube.jp."
alt_domain = "alt.example"
recursors = ["1.1.1.1", "127.0.0.1:5353"]
dns_config {
  only_passing = true
  node_ttl = "30s"
  service_ttl { "*" = "5s" "web*" = "10s" }
  enable_truncate = false
  a_record_limit = 2
  soa { min_ttl = 60 }
}
"#,
    );
    let (rt, warnings) = ok(&files(&[hcl]));
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(rt.domain, "procube.jp");
    assert_eq!(rt.alt_domain.as_deref(), Some("alt.example"));
    assert_eq!(rt.recursors, ["1.1.1.1", "127.0.0.1:5353"]);
    assert!(rt.dns.only_passing && !rt.dns.enable_truncate);
    assert_eq!(rt.dns.node_ttl, Duration::from_secs(30));
    assert_eq!(rt.dns.service_ttl.get("web*"), Some(&Duration::from_secs(10)));
    assert_eq!(rt.dns.service_ttl.get("*"), Some(&Duration::from_secs(5)));
    assert_eq!((rt.dns.a_record_limit, rt.dns.soa_min_ttl, rt.dns.soa_refresh), (2, 60, 3600));

    let (e, _) = err_text("bad.json", r#"{"dns_config": {"recursor_strategy": "fastest"}}"#);
    assert!(e.contains("dns_config.recursor_strategy") && e.contains("sequential"), "{e}");
    let (e, _) = err_text("bad.json", r#"{"recursors": ["dns.google"]}"#);
    assert!(e.contains("recursors") && e.contains("dns.google"), "{e}");
    let (e, _) = err_text("bad.json", r#"{"dns_config": {"only_pasing": true}}"#);
    assert!(e.contains("dns_config.only_passing"), "{e}");
}

#[test]
fn a_secure_consul_config_resolves_per_interface() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = write(
        dir.path(),
        "tls.hcl",
        r#"
server = true
bootstrap = true
ports { https = 8501 }
tls {
  defaults {
    ca_file = "/etc/consul.d/consul-agent-ca.pem"
    cert_file = "/etc/consul.d/dc1-server-consul-0.pem"
    key_file = "/etc/consul.d/dc1-server-consul-0-key.pem"
    verify_incoming = true
    verify_outgoing = true
  }
  internal_rpc { verify_server_hostname = true }
  https { verify_incoming = false }
}
auto_encrypt { allow_tls = true }
"#,
    );
    let (rt, warnings) = ok(&files(&[a]));
    let rpc = rt.tls.rpc().unwrap();
    assert!(rpc.verify_incoming && rpc.verify_outgoing && rpc.verify_server_hostname);
    assert_eq!(rpc.cert_file.as_deref(), Some(Path::new("/etc/consul.d/dc1-server-consul-0.pem")));
    let https = rt.tls.https().unwrap();
    assert!(!https.verify_incoming && https.has_cert());
    assert!(rt.tls.auto_encrypt.allow_tls);
    assert!(warnings.iter().all(|w| !w.message.contains("tls")), "{warnings:?}");
}

#[test]
fn deprecated_top_level_tls_keys_still_work() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = write(
        dir.path(),
        "old.json",
        r#"{"ca_file": "ca.pem", "cert_file": "c.pem", "key_file": "k.pem", "verify_incoming_rpc": true,
            "verify_outgoing": true, "verify_server_hostname": true, "tls_min_version": "tls12"}"#,
    );
    let (rt, _) = ok(&files(&[a]));
    let rpc = rt.tls.rpc().unwrap();
    assert!(rpc.verify_incoming && rpc.verify_outgoing && rpc.verify_server_hostname);
    assert!(!rt.tls.https().unwrap().verify_incoming, "verify_incoming_rpc is for RPC only");
}

#[test]
fn tls_settings_that_cannot_work_are_refused_and_ones_that_do_nothing_warn() {
    let cases = [
        (r#"{"tls": {"defaults": {"verify_incoming": true}}}"#, "no cert_file/key_file"),
        (r#"{"tls": {"internal_rpc": {"verify_outgoing": true}}}"#, "no CA certificate"),
        (r#"{"tls": {"defaults": {"tls_min_version": "TLSv1_1"}}}"#, "TLS 1.2 and 1.3 only"),
        (r#"{"tls": {"internal_rpc": {"verify_inbound": true}}}"#, "verify_inbound"),
        (r#"{"ports": {"https": 8501}}"#, "ports.https is set"),
        (r#"{"server": true, "auto_encrypt": {"tls": true}}"#, "client agents"),
        (r#"{"auto_encrypt": {"allow_tls": true}}"#, "only be used on servers"),
    ];
    for (text, want) in cases {
        let (msg, _) = err_text("t.json", text);
        assert!(msg.contains(want), "{text}: {msg}");
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let a = write(
        dir.path(),
        "w.json",
        r#"{"tls": {"defaults": {"ca_file": "ca.pem", "cert_file": "c", "key_file": "k"}}}"#,
    );
    let (_, warnings) = ok(&files(&[a]));
    assert!(warnings.iter().any(|w| w.message.contains("plaintext")), "{warnings:?}");
}

#[test]
fn gossip_encryption_keys_default_like_consul_and_load_from_files() {
    let (rt, _) = ok(&Flags::default());
    assert!(rt.encrypt_verify_incoming && rt.encrypt_verify_outgoing && !rt.disable_keyring_file);
    let dev = RuntimeConfig::dev();
    assert!(dev.encrypt_verify_incoming && dev.encrypt_verify_outgoing && !dev.disable_keyring_file);
    let dir = tempfile::tempdir().expect("tempdir");
    let a = write(
        dir.path(),
        "gossip.hcl",
        "encrypt = \"k\"\nencrypt_verify_incoming = false\nencrypt_verify_outgoing = false\n\
         disable_keyring_file = true\n",
    );
    let (rt, warnings) = ok(&files(&[a]));
    assert!(warnings.is_empty(), "implemented, so no warning: {warnings:?}");
    assert!(!rt.encrypt_verify_incoming && !rt.encrypt_verify_outgoing && rt.disable_keyring_file);
    let (msg, _) = err_text("bad.json", r#"{"encrypt_verify_incoming": "no"}"#);
    assert!(msg.contains("encrypt_verify_incoming"), "{msg}");
}
