//! `limits` and `dns_config.rate_limit_per_client`: defaults, JSON and HCL, and the rules.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{Flags, Limits, RequestLimitMode, RequestLimits, RuntimeConfig, load};

fn load_one(name: &str, text: &str) -> Result<RuntimeConfig, String> {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(dir.path(), name, text);
    let flags = Flags { config_files: vec![path], ..Flags::default() };
    load(&flags)
        .map(|(rt, warnings)| {
            assert!(warnings.is_empty(), "{warnings:?}");
            rt
        })
        .map_err(|e| e.to_string())
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write config file");
    path
}

#[test]
fn limits_default_to_consuls_values_and_sekishos_own() {
    let rt = load_one("a.json", "{}").expect("empty config loads");
    let l = rt.limits;
    assert_eq!((l.http_max_conns_per_client, l.rpc_max_conns_per_client), (200, 100));
    assert_eq!(
        (l.https_handshake_timeout, l.rpc_handshake_timeout),
        (Duration::from_secs(5), Duration::from_secs(5))
    );
    assert_eq!(l.http_max_body_size, 4 << 20);
    assert_eq!(l.http_read_header_timeout, Duration::from_secs(10));
    assert_eq!((l.http_max_blocking_queries, l.http_max_concurrent_requests), (20_000, 4096));
    assert_eq!(
        l.request_limits,
        RequestLimits { mode: RequestLimitMode::Disabled, read_rate: None, write_rate: None }
    );
    assert_eq!(rt.dns.rate_limit_per_client, 0);
    assert_eq!(RuntimeConfig::dev().limits, Limits::default());
}

#[test]
fn every_limit_is_read_from_json() {
    let rt = load_one(
        "a.json",
        r#"{"limits": {"http_max_conns_per_client": 3, "rpc_max_conns_per_client": 0,
              "https_handshake_timeout": "250ms", "rpc_handshake_timeout": 2,
              "http_max_body_size": 1024, "http_read_header_timeout": "0",
              "http_max_blocking_queries": 2, "http_max_concurrent_requests": 7,
              "request_limits": {"mode": "enforcing", "read_rate": 5.5, "write_rate": -1}},
            "dns_config": {"rate_limit_per_client": 20}}"#,
    )
    .expect("loads");
    let l = rt.limits;
    assert_eq!((l.http_max_conns_per_client, l.rpc_max_conns_per_client), (3, 0));
    assert_eq!(
        (l.https_handshake_timeout, l.rpc_handshake_timeout),
        (Duration::from_millis(250), Duration::from_secs(2))
    );
    assert_eq!((l.http_max_body_size, l.http_read_header_timeout), (1024, Duration::ZERO));
    assert_eq!((l.http_max_blocking_queries, l.http_max_concurrent_requests), (2, 7));
    assert_eq!(
        l.request_limits,
        RequestLimits { mode: RequestLimitMode::Enforcing, read_rate: Some(5.5), write_rate: None }
    );
    assert_eq!(rt.dns.rate_limit_per_client, 20);
}

#[test]
fn request_limits_in_hcl_keep_the_other_limits() {
    let rt = load_one(
        "a.hcl",
        "limits {\n  http_max_conns_per_client = 10\n  request_limits {\n    mode = \"permissive\"\n    \
         write_rate = 100\n  }\n}\nlimits { kv_max_value_size = 1024 }\n",
    )
    .expect("loads");
    assert_eq!(rt.limits.http_max_conns_per_client, 10);
    assert_eq!(rt.kv_max_value_size, 1024);
    let r = rt.limits.request_limits;
    assert_eq!((r.mode, r.read_rate, r.write_rate), (RequestLimitMode::Permissive, None, Some(100.0)));
}

#[test]
fn bad_limit_values_are_refused_naming_key_and_rule() {
    for (text, needle) in [
        (
            r#"{"limits": {"request_limits": {"mode": "strict"}}}"#,
            "key \"limits.request_limits.mode\" in {path}: \"strict\" is invalid: must be \"disabled\", \"permissive\" or \"enforcing\"",
        ),
        (
            r#"{"limits": {"request_limits": {"read_rate": 0}}}"#,
            "key \"limits.request_limits.read_rate\" in {path}: 0 is out of range: must be greater than 0, or -1 for no limit",
        ),
        (
            r#"{"limits": {"request_limits": {"write_rate": "fast"}}}"#,
            "key \"limits.request_limits.write_rate\" in {path}: expected number, found string \"fast\"",
        ),
        (
            r#"{"limits": {"https_handshake_timeout": "0s"}}"#,
            "key \"limits.https_handshake_timeout\" in {path}: \"0s\" is out of range: must be greater than 0",
        ),
        (r#"{"limits": {"rpc_handshake_timeout": "5"}}"#, "missing unit in duration \"5\""),
        (
            r#"{"limits": {"http_max_conns_per_client": -1}}"#,
            "key \"limits.http_max_conns_per_client\" in {path}: -1 is out of range: must be between 0 and 4294967295",
        ),
        (r#"{"limits": {"http_max_body_size": 0}}"#, "must be between 1 and 4294967295"),
        (r#"{"limits": {"http_max_blocking_queries": "many"}}"#, "expected integer, found string \"many\""),
        (
            r#"{"limits": {"request_limits": true}}"#,
            "key \"limits.request_limits\" in {path}: expected object",
        ),
        (
            r#"{"limits": {"http_max_conn_per_client": 1}}"#,
            "did you mean \"limits.http_max_conns_per_client\"?",
        ),
        (r#"{"dns_config": {"rate_limit_per_client": -5}}"#, "key \"dns_config.rate_limit_per_client\""),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = write(dir.path(), "a.json", text);
        let flags = Flags { config_files: vec![path.clone()], ..Flags::default() };
        let msg = match load(&flags) {
            Ok(_) => panic!("{text} should be refused"),
            Err(e) => e.to_string(),
        };
        let want = needle.replace("{path}", &path.display().to_string());
        assert!(msg.contains(&want), "{text}:\n got: {msg}\nwant: {want}");
    }
}

#[test]
fn the_remaining_consul_rpc_limits_still_warn() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(dir.path(), "a.json", r#"{"limits": {"rpc_rate": 10, "rpc_max_burst": 100}}"#);
    let flags = Flags { config_files: vec![path], ..Flags::default() };
    let (_, warnings) = load(&flags).expect("loads");
    let mut keys: Vec<_> = warnings.iter().filter_map(|w| w.key.clone()).collect();
    keys.sort();
    assert_eq!(keys, ["limits.rpc_max_burst", "limits.rpc_rate"]);
}
