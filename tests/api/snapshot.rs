//! `/v1/snapshot` (save, restore, refusal of damaged archives) and the operator endpoints
//! on a single server.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, StatusCode};
use serde_json::json;

use crate::support::{Api, b64, start};

async fn save(api: &Api) -> (Bytes, u64) {
    let r = api.get("/v1/snapshot").await.expect(StatusCode::OK);
    let index = r.index();
    (r.body, index)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saved_snapshot_restores_the_state_and_wakes_blocking_queries() {
    let (agent, api) = start().await;
    api.kv_set("snap/a", "before").await;
    let (archive, snap_index) = save(&api).await;
    assert!(archive.starts_with(b"SEKISNAP"), "our archive format");
    assert!(snap_index >= api.get("/v1/kv/snap/a").await.index());

    api.kv_set("snap/a", "after").await;
    api.kv_set("snap/b", "new").await;
    let idx = api.get("/v1/kv/snap/a").await.index();
    let mut blocked = {
        let api = api.clone();
        tokio::spawn(async move { api.get(&format!("/v1/kv/snap/a?index={idx}&wait=10s")).await })
    };
    let list_idx = api.get("/v1/kv/snap/?recurse").await.index();
    let mut blocked_list = {
        let api = api.clone();
        tokio::spawn(async move { api.get(&format!("/v1/kv/snap/?recurse&index={list_idx}&wait=10s")).await })
    };
    for task in [&mut blocked, &mut blocked_list] {
        let waited = tokio::time::timeout(Duration::from_millis(200), task).await;
        assert!(waited.is_err(), "the query blocks until something changes");
    }

    let started = Instant::now();
    let r = api.put("/v1/snapshot", archive.clone()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let woke = blocked.await.expect("blocking get");
    assert!(started.elapsed() < Duration::from_secs(5), "the blocking query woke on the restore");
    assert_eq!(woke.status, StatusCode::OK);
    assert!(woke.index() > idx, "the index moves forward: {} after {idx}", woke.index());
    assert_eq!(woke.json()[0]["Value"], b64("before"));
    let list = blocked_list.await.expect("blocking list");
    assert!(list.index() > list_idx, "the prefix index moves forward too");
    assert_eq!(list.json().as_array().map(Vec::len), Some(1), "snap/b is gone: {}", list.text());
    assert_eq!(api.get("/v1/kv/snap/b").await.status, StatusCode::NOT_FOUND);
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_archives_are_refused_and_change_nothing() {
    let (agent, api) = start().await;
    api.kv_set("keep", "1").await;
    let (archive, _) = save(&api).await;
    api.kv_set("keep", "2").await;

    let mut flipped = archive.to_vec();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x01;
    let r = api.put("/v1/snapshot", flipped).await.expect(StatusCode::BAD_REQUEST);
    assert!(r.text().contains("checksum mismatch"), "{}", r.text());

    let cut = archive.slice(..archive.len() - 10);
    let r = api.put("/v1/snapshot", cut).await.expect(StatusCode::BAD_REQUEST);
    assert!(r.text().contains("truncated"), "{}", r.text());

    let r = api.put("/v1/snapshot", "not a snapshot").await.expect(StatusCode::BAD_REQUEST);
    assert!(r.text().contains("not a Sekisho snapshot"), "{}", r.text());
    api.put("/v1/snapshot", Bytes::new()).await.expect(StatusCode::BAD_REQUEST);

    assert_eq!(api.kv_entry("keep").await["Value"], b64("2"), "no refused restore touched the state");
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_server_reports_itself_as_the_raft_configuration() {
    let (agent, api) = start().await;
    let v = api.get("/v1/operator/raft/configuration").await.ok_json();
    let servers = v["Servers"].as_array().expect("Servers");
    assert_eq!(servers.len(), 1, "{v}");
    let s = &servers[0];
    assert_eq!(s["ID"], json!(agent.config.node_id), "the node ID is the server ID");
    assert_eq!(s["Node"], json!(agent.config.node_name));
    assert_eq!(
        (s["Leader"].clone(), s["Voter"].clone(), s["ProtocolVersion"].clone()),
        (json!(true), json!(true), json!("3"))
    );
    let leader = api.get("/v1/status/leader").await.ok_json();
    assert_eq!(s["Address"], leader);
    assert!(v["Index"].is_u64(), "{v}");

    let r = api.request(Method::POST, "/v1/operator/raft/transfer-leader", Bytes::new()).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    assert!(r.text().contains("no other voting server"), "{}", r.text());
    let r = api.delete("/v1/operator/raft/peer?id=nope").await.expect(StatusCode::INTERNAL_SERVER_ERROR);
    assert!(r.text().contains("id \"nope\" was not found in the Raft configuration"), "{}", r.text());
    api.delete("/v1/operator/raft/peer").await.expect(StatusCode::BAD_REQUEST);
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autopilot_configuration_supports_check_and_set() {
    let (agent, api) = start().await;
    let v = api.get("/v1/operator/autopilot/configuration").await.ok_json();
    assert_eq!(v["CleanupDeadServers"], json!(true));
    assert_eq!(v["LastContactThreshold"], json!("200ms"));
    assert_eq!(v["MaxTrailingLogs"], json!(250));
    assert_eq!(v["ModifyIndex"], json!(0));

    let path = "/v1/operator/autopilot/configuration";
    let r = api.put_json(&format!("{path}?cas=7"), &json!({"MinQuorum": 3})).await.ok_json();
    assert_eq!(r, json!(false), "nothing stored yet: only cas=0 wins");
    let r =
        api.put_json(&format!("{path}?cas=0"), &json!({"MinQuorum": 3, "LastContactThreshold": "1s"})).await;
    assert_eq!(r.ok_json(), json!(true));
    let v = api.get(path).await.ok_json();
    assert_eq!((v["MinQuorum"].clone(), v["LastContactThreshold"].clone()), (json!(3), json!("1s")));
    assert_eq!(v["MaxTrailingLogs"], json!(250), "fields left out keep their values");
    let modify = v["ModifyIndex"].as_u64().unwrap();
    assert!(modify > 0 && v["CreateIndex"].as_u64() == Some(modify));
    let r = api.put_json(&format!("{path}?cas={}", modify - 1), &json!({"MinQuorum": 5})).await.ok_json();
    assert_eq!(r, json!(false), "a stale cas loses");
    api.put_json(path, &json!({"MaxTrailingLogs": "lots"})).await.expect(StatusCode::BAD_REQUEST);

    let h = api.get("/v1/operator/autopilot/health").await;
    assert_eq!(h.status, StatusCode::OK, "{}", h.text());
    let h = h.json();
    assert_eq!(h["Healthy"], json!(true));
    assert_eq!(h["Servers"][0]["Leader"], json!(true));
    assert_eq!(h["Servers"][0]["SerfStatus"], json!("alive"));
    let st = api.get("/v1/operator/autopilot/state").await.ok_json();
    assert_eq!(st["Leader"], json!(agent.config.node_id));
    assert_eq!(st["Voters"], json!([agent.config.node_id]));
    agent.shutdown().await;
}
