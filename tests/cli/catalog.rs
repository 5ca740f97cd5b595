//! `catalog`, `members` and `info` against a single-server TestAgent.

use std::time::Duration;

use sekisho::testing::{TestAgent, eventually};

use crate::support::{client, sekisho_at};

/// The agent's node name, as `/v1/agent/self` reports it.
async fn node_name(agent: &TestAgent) -> String {
    let me = client(agent).agent_self().await.unwrap();
    me["Config"]["NodeName"].as_str().expect("Config.NodeName").to_owned()
}

/// The leader registers its own node shortly after it is elected.
async fn wait_for_catalog_node(agent: &TestAgent, node: &str) {
    let api = client(agent);
    eventually(Duration::from_secs(10), "the agent's node in the catalog", || async {
        let nodes = api.catalog_nodes().await.ok()?;
        nodes.iter().any(|n| n.node == node).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn catalog_nodes_lists_the_agents_node() {
    let agent = TestAgent::start().await;
    let node = node_name(&agent).await;
    wait_for_catalog_node(&agent, &node).await;
    let run = sekisho_at(&agent, &["catalog", "nodes"]).await.ok();
    let mut lines = run.stdout.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["Node", "ID", "Address", "DC"]);
    let row = lines
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|cells| cells[0] == node)
        .unwrap_or_else(|| panic!("node {node} not listed: {run:#?}"));
    assert!(row[1].len() <= 8 && !row[1].contains('-'), "short ID: {row:?}");
    assert_eq!(row[3], "dc1");
    let detailed = sekisho_at(&agent, &["catalog", "nodes", "-detailed"]).await.ok();
    assert!(detailed.stdout.starts_with("Node"), "{detailed:#?}");
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn catalog_datacenters_lists_dc1() {
    let agent = TestAgent::start().await;
    let run = sekisho_at(&agent, &["catalog", "datacenters"]).await.ok();
    assert!(run.stdout.lines().any(|l| l == "dc1"), "{run:#?}");
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn members_lists_the_agent_as_alive_server() {
    let agent = TestAgent::start().await;
    let node = node_name(&agent).await;
    let run = sekisho_at(&agent, &["members"]).await.ok();
    let mut lines = run.stdout.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["Node", "Address", "Status", "Type", "Build", "Protocol", "DC", "Partition", "Segment"]
    );
    let row: Vec<&str> = lines
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|cells| cells[0] == node)
        .unwrap_or_else(|| panic!("member {node} not listed: {run:#?}"));
    assert_eq!(row[2..4], ["alive", "server"], "{row:?}");
    assert_eq!(row[6..], ["dc1", "default", "<all>"], "{row:?}");
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn info_prints_sorted_stats_sections() {
    let agent = TestAgent::start().await;
    let run = sekisho_at(&agent, &["info"]).await.ok();
    let sections: Vec<&str> = run.stdout.lines().filter(|l| !l.starts_with('\t')).collect();
    assert!(!sections.is_empty() && sections.iter().all(|s| s.ends_with(':')), "{run:#?}");
    let mut sorted = sections.clone();
    sorted.sort_unstable();
    assert_eq!(sections, sorted);
    agent.shutdown().await;
}

/// Registers `web` instances on two extra nodes: `web-a` (rack r1) and `web-b` (rack r2).
async fn register_web(agent: &TestAgent) {
    let api = client(agent);
    let nodes = [
        ("web-a", "aaaaaaaa-1111-2222-3333-444444444444", "10.0.0.1", "r1", "web1", r#"["v2","v1"]"#),
        ("web-b", "bbbbbbbb-1111-2222-3333-444444444444", "10.0.0.2", "r2", "web2", r#"["v1"]"#),
    ];
    for (node, uuid, addr, rack, id, tags) in nodes {
        let body = format!(
            r#"{{"Node":"{node}","ID":"{uuid}","Address":"{addr}","TaggedAddresses":{{"lan":"{addr}"}},
               "NodeMeta":{{"rack":"{rack}"}},"Service":{{"ID":"{id}","Service":"web","Tags":{tags},"Port":80}}}}"#
        );
        let r =
            api.request(http::Method::PUT, "/v1/catalog/register", Some(body.into_bytes())).await.unwrap();
        assert!(r.is_success(), "register {node}: {r:?}");
    }
}

/// Rows after the header, split on whitespace.
fn rows(stdout: &str) -> Vec<Vec<String>> {
    stdout.lines().skip(1).map(|l| l.split_whitespace().map(String::from).collect()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn catalog_nodes_service_lists_the_nodes_running_it() {
    let agent = TestAgent::start().await;
    register_web(&agent).await;
    let run = sekisho_at(&agent, &["catalog", "nodes", "-service=web"]).await.ok();
    let header: Vec<&str> = run.stdout.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["Node", "ID", "Address", "DC"]);
    let mut got = rows(&run.stdout);
    got.sort();
    assert_eq!(got, [["web-a", "aaaaaaaa", "10.0.0.1", "dc1"], ["web-b", "bbbbbbbb", "10.0.0.2", "dc1"]]);

    let detailed = sekisho_at(&agent, &["catalog", "nodes", "-service", "web", "-detailed"]).await.ok();
    let header: Vec<&str> = detailed.stdout.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["Node", "ID", "Address", "DC", "TaggedAddresses", "Meta"]);
    let a = detailed.stdout.lines().find(|l| l.starts_with("web-a")).expect("web-a listed");
    let cells: Vec<&str> = a.split_whitespace().collect();
    assert_eq!(
        cells,
        ["web-a", "aaaaaaaa-1111-2222-3333-444444444444", "10.0.0.1", "dc1", "lan=10.0.0.1", "rack=r1"]
    );

    let r2 = sekisho_at(&agent, &["catalog", "nodes", "-service=web", "-node-meta=rack=r2", "-near=_agent"])
        .await
        .ok();
    assert_eq!(rows(&r2.stdout), [["web-b", "bbbbbbbb", "10.0.0.2", "dc1"]]);

    let none = sekisho_at(&agent, &["catalog", "nodes", "-service=nosuch"]).await.ok();
    assert_eq!(none.stdout, "");
    assert_eq!(none.stderr.trim(), "No nodes match the given query - try expanding your search.");
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn catalog_nodes_node_meta_filters_and_rejects_a_flag_without_equals() {
    let agent = TestAgent::start().await;
    register_web(&agent).await;
    let run = sekisho_at(&agent, &["catalog", "nodes", "-node-meta=rack=r1"]).await.ok();
    assert_eq!(rows(&run.stdout), [["web-a", "aaaaaaaa", "10.0.0.1", "dc1"]]);
    let bad = sekisho_at(&agent, &["catalog", "nodes", "-node-meta=rack"]).await.expect_code(2);
    assert!(bad.stderr.contains("Missing \"=\" value in argument: rack"), "{bad:#?}");
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn catalog_services_tags_prints_sorted_tags_beside_each_name() {
    let agent = TestAgent::start().await;
    register_web(&agent).await;
    let run = sekisho_at(&agent, &["catalog", "services", "-tags"]).await.ok();
    // Go's tabwriter: names padded to the widest one ("consul") plus six spaces.
    assert!(run.stdout.lines().any(|l| l == "web         v1,v2"), "{run:#?}");
    assert!(run.stdout.lines().any(|l| l.trim_end() == "consul"), "{run:#?}");
    let names = sekisho_at(&agent, &["catalog", "services"]).await.ok();
    assert_eq!(names.stdout.lines().collect::<Vec<_>>(), ["consul", "web"]);
    let on_node = sekisho_at(&agent, &["catalog", "services", "-node=web-b", "-tags"]).await.ok();
    assert_eq!(on_node.stdout, "web      v1\n");
    let meta = sekisho_at(&agent, &["catalog", "services", "-node-meta=rack=r9"]).await.ok();
    assert_eq!(meta.stderr.trim(), "No services match the given query - try expanding your search.");
    agent.shutdown().await;
}

/// Stores `node`'s coordinate at `x` seconds along the first axis.
async fn set_coordinate(agent: &TestAgent, node: &str, x: f64) {
    let body = serde_json::json!({
        "Node": node,
        "Coord": {"Vec": [x, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0], "Error": 0.2, "Adjustment": 0.0, "Height": 0.0},
    });
    let r = client(agent)
        .request(http::Method::PUT, "/v1/coordinate/update", Some(serde_json::to_vec(&body).unwrap()))
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
}

#[tokio::test(flavor = "multi_thread")]
async fn rtt_prints_the_estimate_between_two_nodes_or_to_the_agent() {
    let agent = TestAgent::start().await;
    let me = node_name(&agent).await;
    wait_for_catalog_node(&agent, &me).await;
    register_web(&agent).await;
    set_coordinate(&agent, &me, 0.0).await;
    set_coordinate(&agent, "web-a", 0.0025).await;
    let run = sekisho_at(&agent, &["rtt", "web-a", &me]).await.ok();
    assert_eq!(run.stdout.trim(), format!("Estimated web-a <-> {me} rtt: 2.500 ms (using LAN coordinates)"));
    let run = sekisho_at(&agent, &["rtt", "web-a"]).await.ok();
    assert_eq!(run.stdout.trim(), format!("Estimated web-a <-> {me} rtt: 2.500 ms (using LAN coordinates)"));
    let run = sekisho_at(&agent, &["rtt", "web-z"]).await.expect_code(1);
    assert!(run.stderr.contains("Could not find a coordinate for node \"web-z\""), "{run:#?}");
    sekisho_at(&agent, &["rtt"]).await.expect_code(2);
    let run = sekisho_at(&agent, &["rtt", "-wan", "web-a.dc2"]).await.expect_code(1);
    assert!(run.stderr.contains("Could not find a WAN coordinate for node \"web-a.dc2\""), "{run:#?}");
}
