//! `/v1/coordinate/*` and `?near=`: updates are stored for known nodes only and refused when
//! invalid, reads block, and catalog and health lists sort by estimated RTT.

use std::time::{Duration, Instant};

use http::StatusCode;
use serde_json::{Value, json};

use crate::support::{Api, field_list, start};

/// An 8-dimensional coordinate at `x` seconds along the first axis.
fn coord(x: f64) -> Value {
    json!({"Vec": [x, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0], "Error": 0.2, "Adjustment": 0.0, "Height": 1e-5})
}

async fn set_coord(api: &Api, node: &str, x: f64) {
    let r = api.put_json("/v1/coordinate/update", &json!({"Node": node, "Coord": coord(x)})).await;
    assert_eq!((r.status, r.text()), (StatusCode::OK, String::new()), "update for {node}");
}

/// Nodes `near` (1 ms from the agent), `mid` (20 ms) and `far` (80 ms), each with a `web`
/// instance, plus `nocoord` without a coordinate; the agent sits at the origin.
async fn placed_nodes(api: &Api, me: &str) {
    for (i, n) in ["far", "nocoord", "mid", "near"].iter().enumerate() {
        api.register(&json!({
            "Node": n, "Address": format!("10.0.0.{}", i + 1),
            "Service": {"ID": format!("web-{n}"), "Service": "web", "Port": 80},
        }))
        .await;
    }
    set_coord(api, me, 0.0).await;
    for (n, x) in [("far", 0.08), ("mid", 0.02), ("near", 0.001)] {
        set_coord(api, n, x).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updates_are_listed_per_node_and_unknown_nodes_are_dropped() {
    let (agent, api) = start().await;
    let me = agent.config.node_name.clone();
    set_coord(&api, &me, 0.004).await;
    set_coord(&api, "not-in-catalog", 0.5).await;

    let r = api.get("/v1/coordinate/nodes").await.expect(StatusCode::OK);
    assert!(r.index() > 0);
    let list = r.json();
    assert_eq!(
        field_list(&list, "Node"),
        std::slice::from_ref(&me),
        "only catalog nodes keep coordinates: {list}"
    );
    assert_eq!(list[0]["Segment"], "");
    assert_eq!(list[0]["Coord"]["Vec"][0], json!(0.004));
    assert_eq!(list[0]["Coord"]["Error"], json!(0.2));

    let one = api.get(&format!("/v1/coordinate/node/{me}")).await.ok_json();
    assert_eq!(one.as_array().map(Vec::len), Some(1), "a list with one entry: {one}");
    assert_eq!(one[0]["Coord"], list[0]["Coord"]);
    let missing = api.get("/v1/coordinate/node/not-in-catalog").await;
    assert_eq!((missing.status, missing.text()), (StatusCode::NOT_FOUND, String::new()));
    assert!(missing.header("X-Consul-Index").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_updates_are_refused_and_change_nothing() {
    let (agent, api) = start().await;
    let me = agent.config.node_name.clone();
    set_coord(&api, &me, 0.001).await;
    let short = json!({"Node": me, "Coord": {"Vec": [0.1, 0.0], "Error": 1.5}});
    let cases = [
        (json!({"Coord": coord(0.1)}), StatusCode::BAD_REQUEST, "Must provide node"),
        (json!({"Node": me}), StatusCode::BAD_REQUEST, "Must provide coordinate"),
        (short, StatusCode::INTERNAL_SERVER_ERROR, "incompatible coordinate"),
        (json!({"Node": me, "Coord": {"Vec": "x"}}), StatusCode::BAD_REQUEST, "Request decode failed"),
    ];
    for (body, status, text) in cases {
        let r = api.put_json("/v1/coordinate/update", &body).await;
        assert_eq!(r.status, status, "{body}: {}", r.text());
        assert!(r.text().contains(text), "{body}: {}", r.text());
    }
    let r = api.put("/v1/coordinate/update", "{not json").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    let list = api.get("/v1/coordinate/nodes").await.ok_json();
    assert_eq!(list[0]["Coord"]["Vec"][0], json!(0.001), "unchanged: {list}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocking_read_wakes_on_the_next_update() {
    let (agent, api) = start().await;
    let me = agent.config.node_name.clone();
    set_coord(&api, &me, 0.001).await;
    let index = api.get("/v1/coordinate/nodes").await.expect(StatusCode::OK).index();
    let mut waiter = {
        let api = api.clone();
        tokio::spawn(async move {
            let t0 = Instant::now();
            let r = api.get(&format!("/v1/coordinate/nodes?index={index}&wait=20s")).await;
            (r, t0.elapsed())
        })
    };
    assert!(tokio::time::timeout(Duration::from_millis(200), &mut waiter).await.is_err(), "still blocked");
    set_coord(&api, &me, 0.002).await;
    let (r, took) = waiter.await.expect("waiter");
    let r = r.expect(StatusCode::OK);
    assert!(r.index() > index);
    assert_eq!(r.json()[0]["Coord"]["Vec"][0], json!(0.002));
    assert!(took < Duration::from_secs(15), "woke on the update, not at the wait: {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn near_sorts_catalog_and_health_lists_by_estimated_rtt() {
    let (agent, api) = start().await;
    let me = agent.config.node_name.clone();
    placed_nodes(&api, &me).await;

    let nodes = api.get("/v1/catalog/nodes?near=_agent").await.ok_json();
    assert_eq!(field_list(&nodes, "Node"), [me.as_str(), "near", "mid", "far", "nocoord"]);
    let by_name = api.get("/v1/catalog/nodes").await.ok_json();
    let mut sorted = field_list(&by_name, "Node");
    sorted.sort();
    assert_eq!(field_list(&by_name, "Node"), sorted, "without near, by name");

    let from_far = api.get("/v1/catalog/service/web?near=far").await.ok_json();
    assert_eq!(field_list(&from_far, "Node"), ["far", "mid", "near", "nocoord"]);
    let health = api.get("/v1/health/service/web?near=mid").await.ok_json();
    let order: Vec<&str> =
        health.as_array().unwrap().iter().filter_map(|e| e["Node"]["Node"].as_str()).collect();
    assert_eq!(order, ["mid", "near", "far", "nocoord"], "mid is 19 ms from near, 60 ms from far");
    let checks = api.get("/v1/health/state/any?near=_agent").await.ok_json();
    assert_eq!(checks[0]["Node"], json!(me), "the agent's own serfHealth first: {checks}");

    let unknown = api.get("/v1/catalog/service/web?near=nocoord").await.ok_json();
    assert_eq!(field_list(&unknown, "Node"), ["far", "mid", "near", "nocoord"], "no origin: catalog order");
}
