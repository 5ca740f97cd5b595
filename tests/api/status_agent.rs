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
