//! Network coordinates across a cluster: agents measure each other over gossip, sync their
//! coordinates to the servers, and `?near=_agent` on a client agent puts the nearest nodes
//! first and a node behind a slow link last.

use std::collections::HashMap;
use std::time::Duration;

use http::Method;
use sekisho::state::coordinate::Coordinate;
use sekisho::testing::{TestCluster, eventually};
use serde_json::Value;

use super::{DEADLINE, client};

async fn list(c: &TestCluster, i: usize, path: &str) -> Option<Vec<Value>> {
    let r = client(c, i).request(Method::GET, path, None).await.ok()?;
    (r.status == 200).then(|| r.json::<Value>(path).ok()?.as_array().cloned()).flatten()
}

fn names(items: &[Value]) -> Vec<String> {
    items.iter().filter_map(|v| v["Node"].as_str().map(str::to_owned)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn coordinates_reach_the_catalog_and_near_puts_a_slow_node_last() {
    let c = TestCluster::start_full(3, 1, |_, cfg| {
        cfg.sync_coordinate_interval_min = Duration::from_millis(200);
    })
    .await;
    let (me, slow) = (3, 1);
    let slow_name = c.node(slow).config.node_name.clone();
    let me_name = c.node(me).config.node_name.clone();
    // 10 ms each way to and from server 1: its RTT to everyone is 20 ms more.
    c.faults.set_node_delay(c.node(slow).ip, Duration::from_millis(10));

    tracing::info!("--- every node's coordinate reaches the servers");
    eventually(Duration::from_secs(20), "four coordinates listed", || async {
        (list(&c, me, "/v1/coordinate/nodes").await?.len() == 4).then_some(())
    })
    .await;

    tracing::info!("--- the client agent ranks itself first and the slow server last");
    let order = eventually(Duration::from_secs(30), "near=_agent puts the slow server last", || async {
        let nodes = names(&list(&c, me, "/v1/catalog/nodes?near=_agent").await?);
        (nodes.first() == Some(&me_name) && nodes.last() == Some(&slow_name)).then_some(nodes)
    })
    .await;
    tracing::info!("near=_agent from {me_name}: {order:?}");
    let coords: HashMap<String, Coordinate> = eventually(DEADLINE, "the estimates settle", || async {
        let coords: HashMap<String, Coordinate> = list(&c, me, "/v1/coordinate/nodes")
            .await?
            .into_iter()
            .filter_map(|e| {
                Some((e["Node"].as_str()?.to_owned(), serde_json::from_value(e["Coord"].clone()).ok()?))
            })
            .collect();
        let rtt = |n: &str| coords.get(n).map(|c| c.distance_to(&coords[&me_name]).as_secs_f64() * 1000.0);
        let to_slow = rtt(&slow_name)?;
        let others = [0, 2].map(|i| rtt(&c.node(i).config.node_name));
        let settled = others.iter().all(|o| o.is_some_and(|o| o < 10.0 && to_slow > o + 10.0));
        settled.then_some(coords)
    })
    .await;
    assert_eq!(coords.len(), 4);
    let health = list(&c, me, "/v1/health/service/consul?near=_agent").await.expect("health list");
    let servers: Vec<&str> = health.iter().filter_map(|e| e["Node"]["Node"].as_str()).collect();
    assert_eq!(servers.len(), 3);
    assert_eq!(servers.last().copied(), Some(slow_name.as_str()), "{servers:?}");
    c.shutdown().await;
}
