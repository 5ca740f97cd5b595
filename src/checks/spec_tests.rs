use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::json;

use super::*;

fn parse(v: Value) -> CheckSpec {
    CheckSpec::parse(&v).unwrap_or_else(|e| panic!("{v}: {e}"))
}

fn err(v: Value) -> String {
    CheckSpec::parse(&v).expect_err("must be refused")
}

#[test]
fn config_file_spelling_parses_every_field() {
    let s = parse(json!({
        "id": "web-health", "name": "Web", "notes": "n", "service_id": "web",
        "http": "http://localhost/health", "method": "POST", "body": "x",
        "header": {"X-A": ["1", "2"]}, "tls_skip_verify": true, "tls_server_name": "web.internal",
        "interval": "10s", "timeout": "1s", "deregister_critical_service_after": "90m",
        "success_before_passing": 2, "failures_before_critical": 3, "status": "passing",
        "output_max_size": 100
    }));
    assert_eq!(
        (s.id.as_str(), s.name.as_str(), s.notes.as_str(), s.service_id.as_str()),
        ("web-health", "Web", "n", "web")
    );
    let headers = BTreeMap::from([("X-A".to_string(), vec!["1".to_string(), "2".to_string()])]);
    assert_eq!(
        s.kind,
        CheckKind::Http {
            url: "http://localhost/health".into(),
            method: "POST".into(),
            headers,
            body: "x".into(),
            tls_skip_verify: true,
            tls_server_name: "web.internal".into(),
            disable_redirects: false,
        }
    );
    assert_eq!((s.interval, s.timeout), (Duration::from_secs(10), Duration::from_secs(1)));
    assert_eq!(s.deregister_critical_service_after, Some(Duration::from_secs(5400)));
    assert_eq!(s.initial_status, Some(Status::Passing));
    assert_eq!((s.success_before_passing, s.failures_before_warning, s.failures_before_critical), (2, 3, 3));
    assert_eq!(s.output_max_size, 100);
    assert_eq!(s.definition.http, "http://localhost/health");
    assert_eq!(s.definition.interval, "10s");
    assert_eq!(s.definition.timeout, "1s");
    assert_eq!(s.definition.deregister_critical_service_after, "1h30m0s");
    assert_eq!(s.type_name(), "http");
    assert!(!s.is_script());
}

#[test]
fn http_body_spelling_parses_the_same() {
    let s = parse(json!({
        "ID": "c", "Name": "C", "ServiceID": "web", "HTTP": "https://h/", "Interval": "5s",
        "TLSSkipVerify": true, "TLSServerName": "h", "Header": {"X": ["a"]}, "Status": "warning",
        "DeregisterCriticalServiceAfter": "1m", "FailuresBeforeWarning": 1, "FailuresBeforeCritical": 2,
        "DisableRedirects": true
    }));
    assert_eq!((s.id.as_str(), s.service_id.as_str()), ("c", "web"));
    let CheckKind::Http { method, tls_skip_verify, disable_redirects, headers, .. } = &s.kind else {
        panic!("{:?}", s.kind)
    };
    assert_eq!((method.as_str(), *tls_skip_verify, *disable_redirects), ("GET", true, true));
    assert_eq!(headers["X"], ["a"]);
    assert_eq!(s.initial_status, Some(Status::Warning));
    assert_eq!((s.failures_before_warning, s.failures_before_critical), (1, 2));
    assert_eq!(s.deregister_critical_service_after, Some(Duration::from_secs(60)));
    assert_eq!(s.effective_timeout(), DEFAULT_PROBE_TIMEOUT);
}

#[test]
fn every_kind_parses_from_both_spellings() {
    let cases = [
        (json!({"ttl": "30s"}), CheckKind::Ttl { ttl: Duration::from_secs(30) }, "ttl"),
        (json!({"TTL": 15_000_000_000u64}), CheckKind::Ttl { ttl: Duration::from_secs(15) }, "ttl"),
        (json!({"tcp": "db:5432", "interval": "5s"}), CheckKind::Tcp { addr: "db:5432".into() }, "tcp"),
        (json!({"UDP": "ns:53", "Interval": "5s"}), CheckKind::Udp { addr: "ns:53".into() }, "udp"),
        (
            json!({"grpc": "g:9/svc", "grpc_use_tls": true, "interval": "5s"}),
            CheckKind::Grpc {
                target: "g:9/svc".into(),
                use_tls: true,
                tls_skip_verify: false,
                tls_server_name: String::new(),
            },
            "grpc",
        ),
        (
            json!({"GRPC": "g:9", "GRPCUseTLS": false, "TLSSkipVerify": true, "Interval": "5s"}),
            CheckKind::Grpc {
                target: "g:9".into(),
                use_tls: false,
                tls_skip_verify: true,
                tls_server_name: String::new(),
            },
            "grpc",
        ),
        (
            json!({"args": ["/bin/true"], "interval": "5s"}),
            CheckKind::Script { args: vec!["/bin/true".into()] },
            "script",
        ),
        (
            json!({"ScriptArgs": ["a", "b"], "Interval": "5s"}),
            CheckKind::Script { args: vec!["a".into(), "b".into()] },
            "script",
        ),
        (json!({"alias_service": "db"}), CheckKind::Alias { service: "db".into(), node: None }, "alias"),
        (
            json!({"AliasService": "db", "AliasNode": "n2"}),
            CheckKind::Alias { service: "db".into(), node: Some("n2".into()) },
            "alias",
        ),
    ];
    for (def, kind, type_name) in cases {
        let s = parse(def.clone());
        assert_eq!(s.kind, kind, "{def}");
        assert_eq!(s.type_name(), type_name, "{def}");
    }
    let script = parse(json!({"args": ["x"], "interval": "5s", "check_id": "legacy"}));
    assert!(script.is_script());
    assert_eq!(script.id, "legacy");
    assert_eq!(script.effective_timeout(), DEFAULT_SCRIPT_TIMEOUT);
    let ttl = parse(json!({"ttl": "30s", "notes": "x"}));
    assert_eq!((ttl.interval, ttl.initial_status, ttl.id.as_str()), (Duration::ZERO, None, ""));
}

#[test]
fn validation_errors_use_consul_texts() {
    let cases = [
        (
            json!({"http": "http://h/"}),
            "Invalid check: Interval must be > 0 for Script, HTTP, H2PING, TCP, UDP or OSService checks",
        ),
        (
            json!({"args": ["x"], "interval": "0s"}),
            "Invalid check: Interval must be > 0 for Script, HTTP, H2PING, TCP, UDP or OSService checks",
        ),
        (
            json!({"tcp": "h:1", "interval": "5s", "ttl": "5s"}),
            "Invalid check: Interval and TTL cannot both be specified",
        ),
        (json!({"name": "x"}), "Invalid check: TTL must be > 0 for TTL checks"),
        (json!({"name": "x", "interval": "10s"}), "Invalid check: TTL must be > 0 for TTL checks"),
        (
            json!({"alias_service": "db", "tcp": "h:1", "interval": "5s"}),
            "Invalid check: Interval cannot be set for Alias checks",
        ),
        (
            json!({"alias_service": "db", "ttl": "5s"}),
            "Invalid check: TTL must be not be set for Alias checks",
        ),
        (
            json!({"ttl": "5s", "failures_before_warning": 3, "failures_before_critical": 2}),
            "Invalid check: FailuresBeforeWarning can't be higher than FailuresBeforeCritical",
        ),
        (json!({"ttl": "5s", "status": "ok"}), "Bad check status"),
        (json!({"ttl": "5s", "Status": "Passing"}), "Bad check status"),
    ];
    for (def, want) in cases {
        assert_eq!(err(def.clone()), want, "{def}");
    }
}

#[test]
fn malformed_values_are_decode_errors_naming_the_field() {
    let e = err(json!({"http": 5, "interval": "5s"}));
    assert!(e.starts_with("Request decode failed:") && e.contains("http"), "{e}");
    let e = err(json!({"tcp": "h:1", "interval": "soon"}));
    assert!(e.starts_with("Request decode failed:") && e.contains("interval"), "{e}");
    let e = err(json!({"http": "http://h/", "interval": "5s", "header": {"X": "a"}}));
    assert!(e.contains("Header"), "{e}");
    let e = err(json!({"ttl": "5s", "success_before_passing": -1}));
    assert!(e.contains("success_before_passing"), "{e}");
    let e = err(json!({"ttl": "5s", "failures_before_critical": 5_000_000_000u64}));
    assert!(e.contains("failures_before_critical") && e.contains("out of range"), "{e}");
    assert!(err(json!(["not", "an", "object"])).starts_with("Request decode failed:"));
    assert!(err(json!({"args": "/bin/true", "interval": "5s"})).contains("args"));
}

#[test]
fn unsupported_kinds_are_refused_clearly() {
    assert!(err(json!({"script": "exit 0", "interval": "5s"})).contains("use 'args'"));
    assert_eq!(
        err(json!({"docker_container_id": "abc", "args": ["x"], "interval": "5s"})),
        "Invalid check: Docker checks are not supported by this agent"
    );
    assert_eq!(
        err(json!({"H2PING": "h:1", "Interval": "5s"})),
        "Invalid check: H2PING checks are not supported by this agent"
    );
    assert_eq!(
        err(json!({"os_service": "sshd", "interval": "5s"})),
        "Invalid check: OSService checks are not supported by this agent"
    );
}
