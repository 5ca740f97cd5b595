//! Operator endpoints on a three-server cluster: the Raft configuration, peer removal,
//! leadership transfer, autopilot, snapshot restore on a live cluster, and the offline
//! recovery of a cluster that lost its quorum.

use std::time::Duration;

use http::{Method, StatusCode};
use sekisho::client::Response;
use sekisho::raft::node_id_from_uuid;
use sekisho::server::operator::recover::{self, RecoverError, Survivor};
use sekisho::testing::{TestCluster, eventually};
use serde_json::{Value, json};

use super::{DEADLINE, client, get, put};

async fn call(c: &TestCluster, i: usize, method: Method, path: &str, body: Option<Vec<u8>>) -> Response {
    client(c, i).request(method, path, body).await.expect("the agent answers")
}

async fn json_of(c: &TestCluster, i: usize, path: &str) -> Value {
    let r = call(c, i, Method::GET, path, None).await;
    assert_eq!(r.status, StatusCode::OK, "GET {path}: {}", r.text());
    r.json(path).expect("JSON")
}

fn rpc_addr(c: &TestCluster, i: usize) -> String {
    c.agent(i).server().config().rpc_addr.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_raft_configuration_lists_every_server_and_a_dead_peer_can_be_removed() {
    let mut c = TestCluster::start(3).await;
    let leader = c.wait_leader(DEADLINE).await;
    let follower = (leader + 1) % 3;
    tracing::info!("--- the configuration as a follower reports it");
    let v = json_of(&c, follower, "/v1/operator/raft/configuration").await;
    let servers = v["Servers"].as_array().expect("Servers").clone();
    assert_eq!(servers.len(), 3, "{v}");
    for i in 0..3 {
        let s = servers.iter().find(|s| s["Address"] == json!(rpc_addr(&c, i))).expect("every server listed");
        assert_eq!(s["ID"], json!(c.node(i).config.node_id), "IDs are node IDs");
        assert_eq!(s["Node"], json!(c.node(i).config.node_name));
        assert_eq!(s["Leader"], json!(i == leader));
        assert_eq!((s["Voter"].clone(), s["ProtocolVersion"].clone()), (json!(true), json!("3")));
    }
    let stale = json_of(&c, follower, "/v1/operator/raft/configuration?stale").await;
    assert_eq!(stale["Servers"].as_array().map(Vec::len), Some(3));

    tracing::info!("--- remove a killed follower by address, through the other follower");
    let dead = follower;
    let other = (leader + 2) % 3;
    let dead_addr = rpc_addr(&c, dead);
    c.kill(dead).await;
    let r = call(&c, other, Method::DELETE, "/v1/operator/raft/peer?address=nope", None).await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(r.text().contains("address \"nope\" was not found in the Raft configuration"), "{}", r.text());
    let r =
        call(&c, other, Method::DELETE, &format!("/v1/operator/raft/peer?address={dead_addr}"), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    eventually(DEADLINE, "the configuration has two servers", || async {
        let v = json_of(&c, other, "/v1/operator/raft/configuration").await;
        (v["Servers"].as_array()?.len() == 2).then_some(())
    })
    .await;
    assert!(put(&c, other, "after-removal", "ok").await.expect("writes with two servers"));
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn leadership_moves_to_the_named_server_and_to_any_other_without_a_name() {
    let c = TestCluster::start(3).await;
    let leader = c.wait_leader(DEADLINE).await;
    let target = (leader + 1) % 3;
    put(&c, leader, "before", "1").await.expect("write");
    let path = format!("/v1/operator/raft/transfer-leader?id={}", c.node(target).config.node_id);
    // Asked through the third server: the request is forwarded to the leader.
    let r = call(&c, (leader + 2) % 3, Method::POST, &path, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json::<Value>(&path).unwrap(), json!({"Success": true}));
    assert_eq!(c.wait_leader(DEADLINE).await, target, "the named server leads");
    assert!(put(&c, leader, "after", "2").await.expect("writes after the transfer"));

    let r = call(&c, target, Method::POST, "/v1/operator/raft/transfer-leader", None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_ne!(c.wait_leader(DEADLINE).await, target, "without -id another voter takes over");
    let r = call(&c, 0, Method::POST, "/v1/operator/raft/transfer-leader?id=nope", None).await;
    assert!(r.text().contains("id \"nope\" was not found"), "{}", r.text());
    assert_eq!(get(&c, target, "after").await.as_deref(), Some("2"));
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn autopilot_configuration_is_replicated_and_health_follows_failures() {
    let mut c = TestCluster::start(3).await;
    let leader = c.wait_leader(DEADLINE).await;
    let path = "/v1/operator/autopilot/configuration";
    // A generous threshold: a loaded test machine must not make a live server unhealthy.
    let body = serde_json::to_vec(&json!({"LastContactThreshold": "5s", "MinQuorum": 2})).unwrap();
    let r = call(&c, (leader + 1) % 3, Method::PUT, &format!("{path}?cas=0"), Some(body)).await;
    assert_eq!(r.text(), "true");
    for i in 0..3 {
        let v = json_of(&c, i, path).await;
        assert_eq!((v["LastContactThreshold"].clone(), v["MinQuorum"].clone()), (json!("5s"), json!(2)));
    }

    eventually(DEADLINE, "all three servers are healthy", || async {
        let r = call(&c, 0, Method::GET, "/v1/operator/autopilot/health", None).await;
        let v: Value = r.json("health").ok()?;
        (r.status == StatusCode::OK && v["Healthy"] == json!(true) && v["Servers"].as_array()?.len() == 3)
            .then_some(())
    })
    .await;
    let v = json_of(&c, 1, "/v1/operator/autopilot/health").await;
    assert_eq!(v["FailureTolerance"], json!(1));
    let st = json_of(&c, 2, "/v1/operator/autopilot/state").await;
    assert_eq!(st["Leader"], json!(c.node(leader).config.node_id));
    assert_eq!(st["Voters"].as_array().map(Vec::len), Some(3));

    tracing::info!("--- a killed follower turns the cluster unhealthy (429)");
    let dead = (leader + 1) % 3;
    c.kill(dead).await;
    let dead_id = c.node(dead).config.node_id.clone();
    let alive = (leader + 2) % 3;
    eventually(DEADLINE, "health reports the dead server", || async {
        let r = call(&c, alive, Method::GET, "/v1/operator/autopilot/health", None).await;
        let v: Value = r.json("health").ok()?;
        let s = v["Servers"].as_array()?.iter().find(|s| s["ID"] == json!(dead_id))?.clone();
        (r.status == StatusCode::TOO_MANY_REQUESTS
            && s["Healthy"] == json!(false)
            && v["FailureTolerance"] == json!(0))
        .then_some(())
    })
    .await;
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_snapshot_restored_on_a_live_cluster_reaches_every_server() {
    let c = TestCluster::start(3).await;
    let leader = c.wait_leader(DEADLINE).await;
    let (f1, f2) = ((leader + 1) % 3, (leader + 2) % 3);
    put(&c, leader, "app/config", "v1").await.expect("write");
    let snap = call(&c, f1, Method::GET, "/v1/snapshot", None).await;
    assert_eq!(snap.status, StatusCode::OK, "{}", snap.text());
    assert!(snap.index().is_some_and(|i| i > 0), "X-Consul-Index on the archive");
    let stale = call(&c, f2, Method::GET, "/v1/snapshot?stale", None).await;
    assert_eq!(stale.status, StatusCode::OK);

    put(&c, leader, "app/config", "v2").await.expect("write");
    put(&c, leader, "app/extra", "x").await.expect("write");
    let before = call(&c, f2, Method::GET, "/v1/kv/app/config", None).await;
    let idx = before.index().expect("index");
    let blocked = {
        let cl = client(&c, f2);
        tokio::spawn(async move {
            cl.request(Method::GET, &format!("/v1/kv/app/config?index={idx}&wait=20s"), None).await
        })
    };

    tracing::info!("--- damaged archives are refused");
    let mut bad = snap.body.to_vec();
    let at = bad.len() / 3;
    bad[at] ^= 0xff;
    let r = call(&c, f1, Method::PUT, "/v1/snapshot", Some(bad)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    let cut = snap.body[..snap.body.len() / 2].to_vec();
    let r = call(&c, f1, Method::PUT, "/v1/snapshot", Some(cut)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    assert_eq!(get(&c, leader, "app/config").await.as_deref(), Some("v2"), "nothing changed");

    tracing::info!("--- restore through a follower");
    let r = call(&c, f1, Method::PUT, "/v1/snapshot", Some(snap.body.to_vec())).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let woke = blocked.await.expect("task").expect("blocking read");
    assert_eq!(woke.status, StatusCode::OK);
    assert!(woke.index().expect("index") > idx, "the blocking query sees a newer index");
    for i in 0..3 {
        eventually(DEADLINE, "every server has the restored state", || async {
            let r = call(&c, i, Method::GET, "/v1/kv/app/config?stale", None).await;
            let v: Value = r.json("kv").ok()?;
            let value = v[0]["Value"].as_str()?.to_owned();
            let extra = call(&c, i, Method::GET, "/v1/kv/app/extra?stale", None).await.status;
            (value == "djE=" && extra == StatusCode::NOT_FOUND).then_some(())
        })
        .await;
    }
    assert!(put(&c, f2, "app/after", "y").await.expect("writes continue after the restore"));
    c.shutdown().await;
}

fn survivor(c: &TestCluster, i: usize) -> Survivor {
    Survivor { id: c.node(i).config.node_id.clone(), address: rpc_addr(c, i), name: None, voter: true }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn recover_rewrites_the_configuration_in_snapshots_of_a_compacted_log() {
    recover_scenario(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn recover_rewrites_the_configuration_entries_of_the_log() {
    recover_scenario(false).await;
}

/// Two of three servers survive a lost quorum; `recover` on both lets them elect a leader
/// with every acknowledged write. With `compact`, the configuration lives only in snapshot
/// files; without, only in log entries.
async fn recover_scenario(compact: bool) {
    let mut c = TestCluster::start_with(3, |_, cfg| {
        if compact {
            cfg.raft_snapshot_threshold = 20;
            cfg.raft_trailing_logs = 5;
        }
    })
    .await;
    let leader = c.wait_leader(DEADLINE).await;
    for n in 0..60 {
        let key = format!("data/{n}");
        eventually(DEADLINE, "a write", || async { put(&c, leader, &key, "x").await.ok().filter(|ok| *ok) })
            .await;
    }
    let survivors = [survivor(&c, 0), survivor(&c, 1)];
    let dirs: Vec<_> = (0..2).map(|i| c.node(i).config.data_dir.clone().expect("data dir")).collect();

    tracing::info!("--- recover refuses while the agent runs");
    let e = recover::recover(&dirs[0], &survivors, &mut |_| Ok(())).expect_err("the agent holds the log");
    assert!(matches!(e, RecoverError::Running { .. }), "{e}");

    tracing::info!("--- lose the quorum: every server stops, one of them for good");
    for i in 0..3 {
        c.kill(i).await;
    }
    for dir in &dirs {
        let mut lines = Vec::new();
        let report = recover::recover(dir, &survivors, &mut |l| {
            lines.push(l.to_owned());
            Ok(())
        })
        .expect("recover");
        eprintln!("{}", lines.join("\n"));
        if compact {
            assert!(!report.snapshots.is_empty(), "snapshots rewritten: {report:?}");
        } else {
            assert!(
                !report.entries.is_empty() && report.snapshots.is_empty(),
                "log entries rewritten: {report:?}"
            );
        }
        assert!(report.backup.join("raft.redb").exists(), "a backup was taken");
    }
    c.restart(0).await;
    c.restart(1).await;
    let new_leader = eventually(Duration::from_secs(20), "the survivors elect a leader", || async {
        c.leader().filter(|l| {
            c.agent(*l).server().metrics().membership_config.membership().voter_ids().count() == 2
        })
    })
    .await;
    let expected = [0, 1].map(|i| node_id_from_uuid(&c.node(i).config.node_id));
    let voters: Vec<u64> =
        c.agent(new_leader).server().metrics().membership_config.membership().voter_ids().collect();
    assert_eq!(voters.len(), 2);
    assert!(expected.iter().all(|id| voters.contains(id)), "{voters:?}");
    eventually(DEADLINE, "writes are accepted again", || async {
        put(&c, 1 - new_leader, "after-recovery", "ok").await.ok().filter(|ok| *ok)
    })
    .await;
    let keys = client(&c, 0).kv_keys("data/", None).await.expect("keys");
    assert_eq!(keys.len(), 60, "every acknowledged write survived");
    c.shutdown().await;
}
