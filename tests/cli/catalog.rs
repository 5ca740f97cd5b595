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
