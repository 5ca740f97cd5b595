//! `/v1/status/*` and `/v1/agent/self`, `/v1/agent/members`.

use std::net::SocketAddr;

use serde_json::Value;

use crate::support::start;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_and_peers() {
    let (agent, api) = start().await;
    let leader = api.get("/v1/status/leader").await.ok_json();
    let leader = leader.as_str().unwrap_or_else(|| panic!("leader is a JSON string: {leader}"));
    leader.parse::<SocketAddr>().unwrap_or_else(|e| panic!("{leader:?} is ip:port: {e}"));
    let peers = api.get("/v1/status/peers").await.ok_json();
    let peers: Vec<&str> =
        peers.as_array().expect("peers is a list").iter().map(|p| p.as_str().unwrap()).collect();
    assert_eq!(peers, [leader], "a single server is its own only peer");
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_self() {
    let (agent, api) = start().await;
    let v = api.get("/v1/agent/self").await.ok_json();
    let c = &v["Config"];
    assert_eq!(c["Datacenter"], "dc1");
    assert_eq!(c["NodeName"], agent.config.node_name.as_str());
    assert_eq!(c["Version"], "1.22.0");
    assert_eq!(c["Server"], true);
    assert_eq!(c["SessionTTLMin"].as_u64(), Some(1_000_000_000), "integer nanoseconds: {c}");
    let m = &v["Member"];
    assert_eq!(m["Name"], agent.config.node_name.as_str());
    assert_eq!(m["Tags"]["role"], "consul");
    assert_eq!(m["Tags"]["dc"], "dc1");
    assert_eq!(m["Status"], 1);
    assert!(v["Stats"].is_object());
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_members() {
    let (agent, api) = start().await;
    let v = api.get("/v1/agent/members").await.ok_json();
    let members = v.as_array().expect("members is a list");
    let me: Vec<&Value> = members.iter().filter(|m| m["Name"] == agent.config.node_name.as_str()).collect();
    assert_eq!(me.len(), 1, "{v}");
    assert_eq!(me[0]["Status"], 1);
    assert!(me[0]["Addr"].as_str().is_some_and(|a| !a.is_empty()));
    assert!(me[0]["Port"].as_u64().is_some());
    agent.shutdown().await;
}

#[tokio::test]
async fn a_bad_acl_stanza_stops_the_agent_with_the_key_named() {
    let mut cfg = sekisho::config::RuntimeConfig::for_test("dc1", "acl-node");
    cfg.acl = serde_json::json!({"enabled": true, "down_policy": "sometimes"});
    let Err(err) = sekisho::agent::Agent::start(cfg).await else {
        panic!("the agent started with a bad acl.down_policy");
    };
    assert!(err.to_string().contains("acl.down_policy must be one of"), "{err}");
}

#[tokio::test]
async fn acl_endpoints_say_acls_are_disabled_and_every_answer_names_the_default_policy() {
    let (agent, api) = start().await;
    for (method, path) in [
        (http::Method::PUT, "/v1/acl/bootstrap"),
        (http::Method::GET, "/v1/acl/tokens"),
        (http::Method::PUT, "/v1/acl/policy"),
        (http::Method::GET, "/v1/acl/token/self"),
        (http::Method::POST, "/v1/acl/login"),
    ] {
        let r = api.request(method.clone(), path, "").await;
        assert_eq!(r.status, http::StatusCode::UNAUTHORIZED, "{method} {path}");
        assert_eq!(r.text(), "ACL support disabled", "{method} {path}");
    }
    for path in ["/v1/acl/tokens", "/v1/kv/missing", "/v1/status/leader", "/v1/not-a-route"] {
        let r = api.get(path).await;
        assert_eq!(r.header("X-Consul-Default-ACL-Policy"), Some("allow"), "{path}");
    }
    agent.shutdown().await;

    let (agent, api) =
        crate::support::start_with(|c, _| c.acl = serde_json::json!({"default_policy": "deny"})).await;
    assert_eq!(api.get("/v1/status/leader").await.header("X-Consul-Default-ACL-Policy"), Some("deny"));
    agent.shutdown().await;

    let mut cfg = sekisho::config::RuntimeConfig::for_test("dc1", "acl-bad");
    cfg.acl = serde_json::json!({"default_policy": "maybe"});
    let Err(err) = sekisho::agent::Agent::start_with(cfg, sekisho::agent::Tuning::default()).await else {
        panic!("started with default_policy = maybe");
    };
    assert!(err.to_string().contains("acl.default_policy must be"), "{err}");
}
