//! Cluster tests: several servers in one process ([`TestCluster`]) on their own loopback
//! addresses, with faults injected into their traffic.

use std::time::{Duration, Instant};

use http::Method;
use sekisho::client::{Client, ClientConfig};
use sekisho::testing::{TestCluster, eventually};

mod acl;
mod clients;
mod coordinate;
mod event;
mod exec;
mod keyring;
mod lock;
mod operator;
mod tls;

const DEADLINE: Duration = Duration::from_secs(15);

fn client(c: &TestCluster, i: usize) -> Client {
    Client::new(ClientConfig::new(c.agent(i).http_addr().to_string()))
}

async fn put(c: &TestCluster, i: usize, key: &str, value: &str) -> Result<bool, String> {
    client(c, i).kv_put(key, value.as_bytes().to_vec(), None, None).await.map_err(|e| e.to_string())
}

async fn get(c: &TestCluster, i: usize, key: &str) -> Option<String> {
    let e = client(c, i).kv_get(key).await.expect("kv get")?;
    Some(String::from_utf8_lossy(&e.value.unwrap_or_default()).into_owned())
}

fn voters(c: &TestCluster, i: usize) -> usize {
    c.agent(i).server().metrics().membership_config.membership().voter_ids().count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_servers_elect_one_leader_and_take_writes_through_any_server() {
    let c = TestCluster::start(3).await;
    let leader = c.wait_leader(DEADLINE).await;
    assert_eq!(voters(&c, leader), 3);
    for i in 0..3 {
        assert!(
            put(&c, i, &format!("via/{i}"), &format!("v{i}")).await.expect("write"),
            "write through server {i}"
        );
    }
    // Default reads on followers use the leader's read index: every write is visible everywhere.
    for i in 0..3 {
        for k in 0..3 {
            assert_eq!(get(&c, i, &format!("via/{k}")).await.as_deref(), Some(format!("v{k}").as_str()));
        }
    }
    let r = client(&c, (leader + 1) % 3)
        .request(Method::GET, "/v1/kv/via/0?consistent", None)
        .await
        .expect("get");
    assert_eq!(r.status, 200);
    assert_eq!(r.headers.get("X-Consul-KnownLeader").and_then(|v| v.to_str().ok()), Some("true"));
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killing_the_leader_elects_a_new_one_that_accepts_writes_quickly() {
    let mut c = TestCluster::start(3).await;
    let old = c.wait_leader(DEADLINE).await;
    put(&c, old, "before", "1").await.expect("write before");
    let started = Instant::now();
    c.kill(old).await;
    let survivor = (old + 1) % 3;
    eventually(DEADLINE, "a write succeeds after the leader was killed", || async {
        put(&c, survivor, "after", "2").await.ok().filter(|ok| *ok)
    })
    .await;
    let failover = started.elapsed();
    eprintln!("leader failover: new leader accepted a write {failover:?} after the kill");
    assert!(failover < Duration::from_secs(2), "failover took {failover:?}");
    let new = c.wait_leader(DEADLINE).await;
    assert_ne!(new, old);
    assert_eq!(get(&c, survivor, "before").await.as_deref(), Some("1"));

    // The killed server comes back with its data and catches up.
    c.restart(old).await;
    eventually(DEADLINE, "the restarted server sees the write made while it was down", || async {
        get(&c, old, "after").await.filter(|v| v == "2")
    })
    .await;
    c.shutdown().await;
}

/// `X-Consul-LastContact` of a stale read on server `i`.
async fn last_contact(c: &TestCluster, i: usize) -> u64 {
    let r = client(c, i).request(Method::GET, "/v1/kv/k?stale", None).await.expect("stale read");
    assert_eq!(r.status, 200, "stale reads still answer");
    r.headers.get("X-Consul-LastContact").and_then(|v| v.to_str().ok()?.parse::<u64>().ok()).expect("header")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_minority_partition_cannot_write_and_reports_growing_staleness() {
    let c = TestCluster::start(3).await;
    let leader = c.wait_leader(DEADLINE).await;
    let lonely = (leader + 1) % 3;
    put(&c, leader, "k", "before").await.expect("write");
    eventually(DEADLINE, "the follower has the first write", || async { get(&c, lonely, "k").await }).await;
    let others: Vec<_> = (0..3).filter(|&i| i != lonely).map(|i| c.node(i).ip).collect();
    c.faults.partition(&[&[c.node(lonely).ip], &others]);

    let e = put(&c, lonely, "k", "minority").await.expect_err("the minority cannot write");
    assert!(e.contains("No cluster leader"), "{e}");
    let first = last_contact(&c, lonely).await;
    eventually(DEADLINE, "LastContact grows on the isolated server", || async {
        (last_contact(&c, lonely).await > first + 200).then_some(())
    })
    .await;

    // The majority keeps working.
    let majority = (0..3).find(|&i| i != lonely).expect("a majority node");
    eventually(DEADLINE, "the majority accepts writes", || async {
        put(&c, majority, "k", "majority").await.ok().filter(|ok| *ok)
    })
    .await;

    c.faults.heal();
    eventually(DEADLINE, "the healed server converges", || async {
        get(&c, lonely, "k").await.filter(|v| v == "majority")
    })
    .await;
    assert_eq!(get(&c, majority, "k").await.as_deref(), Some("majority"), "no acknowledged write lost");
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn five_servers_survive_two_failures_and_stop_writing_at_three() {
    // Without autopilot's cleanup, the two dead servers stay voters.
    let mut c = TestCluster::start_with(5, |_, cfg| cfg.autopilot_cleanup_dead_servers = false).await;
    let leader = c.wait_leader(DEADLINE).await;
    assert_eq!(voters(&c, leader), 5);
    let mut down = Vec::new();
    for i in (0..5).filter(|&i| i != leader).take(2) {
        c.kill(i).await;
        down.push(i);
    }
    let alive: Vec<usize> = c.running();
    put(&c, alive[0], "two-down", "ok").await.expect("writes with two servers down");
    let third = alive.iter().copied().find(|&i| i != leader).expect("a follower");
    c.kill(third).await;
    let e = put(&c, leader, "three-down", "no").await.expect_err("no quorum with three down");
    assert!(e.contains("No cluster leader") || e.contains("quorum"), "{e}");
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lagging_server_catches_up_through_a_snapshot() {
    let mut c = TestCluster::start_with(3, |_, cfg| {
        cfg.raft_snapshot_threshold = 50;
        cfg.raft_trailing_logs = 10;
    })
    .await;
    let leader = c.wait_leader(DEADLINE).await;
    let lagging = (leader + 1) % 3;
    c.kill(lagging).await;
    for n in 0..300 {
        // A busy machine may delay a commit past the server's deadline: retry like a client.
        let key = format!("bulk/{n}");
        eventually(DEADLINE, "a bulk write", || async {
            put(&c, leader, &key, "x").await.ok().filter(|ok| *ok)
        })
        .await;
    }
    let snap = c.agent(leader).server().metrics().snapshot;
    assert!(snap.is_some_and(|s| s.index > 100), "the leader compacted its log: {snap:?}");
    c.restart(lagging).await;
    eventually(DEADLINE, "the restarted server installs a snapshot and catches up", || async {
        let keys = client(&c, lagging).kv_keys("bulk/", None).await.ok()?;
        (keys.len() == 300).then_some(())
    })
    .await;

    c.shutdown().await;
}

/// Status code of member `name` in `/v1/agent/members` of server `i` (1 alive, 3 left, 4 failed).
async fn member_status(c: &TestCluster, i: usize, name: &str) -> Option<u64> {
    let r = client(c, i).request(Method::GET, "/v1/agent/members", None).await.ok()?;
    let v: serde_json::Value = serde_json::from_slice(&r.body).ok()?;
    v.as_array()?.iter().find(|m| m["Name"] == name)?["Status"].as_u64()
}

async fn serf_health(c: &TestCluster, i: usize, node: &str) -> Option<String> {
    let r = client(c, i).request(Method::GET, &format!("/v1/health/node/{node}"), None).await.ok()?;
    let v: serde_json::Value = serde_json::from_slice(&r.body).ok()?;
    let check = v.as_array()?.iter().find(|c| c["CheckID"] == "serfHealth")?.clone();
    check["Status"].as_str().map(str::to_owned)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn members_gossip_failures_into_the_catalog_and_a_graceful_leave_removes_the_server() {
    let mut c = TestCluster::start(3).await;
    let leader = c.wait_leader(DEADLINE).await;
    let names: Vec<String> = (0..3).map(|i| c.node(i).config.node_name.clone()).collect();
    for i in 0..3 {
        for n in &names {
            eventually(DEADLINE, "every server lists every member alive", || async {
                (member_status(&c, i, n).await == Some(1)).then_some(())
            })
            .await;
        }
    }
    for n in &names {
        eventually(DEADLINE, "every member has a passing serfHealth", || async {
            (serf_health(&c, leader, n).await.as_deref() == Some("passing")).then_some(())
        })
        .await;
    }

    // A crashed server turns failed, and its serfHealth critical.
    let victim = (leader + 1) % 3;
    c.kill(victim).await;
    eventually(DEADLINE, "the crashed server is marked failed", || async {
        (member_status(&c, leader, &names[victim]).await == Some(4)).then_some(())
    })
    .await;
    eventually(DEADLINE, "its serfHealth turns critical", || async {
        (serf_health(&c, leader, &names[victim]).await.as_deref() == Some("critical")).then_some(())
    })
    .await;
    c.restart(victim).await;
    eventually(DEADLINE, "the restarted server is alive again", || async {
        (serf_health(&c, leader, &names[victim]).await.as_deref() == Some("passing")).then_some(())
    })
    .await;

    // A graceful leave takes the server out of Raft and its node out of the catalog.
    let leaver = (leader + 2) % 3;
    let r = client(&c, leaver).request(Method::PUT, "/v1/agent/leave", None).await.expect("leave");
    assert_eq!(r.status, 200);
    c.kill(leaver).await;
    let leader = c.wait_leader(DEADLINE).await;
    eventually(DEADLINE, "two voters remain", || async { (voters(&c, leader) == 2).then_some(()) }).await;
    eventually(DEADLINE, "the member is left", || async {
        (member_status(&c, leader, &names[leaver]).await == Some(3)).then_some(())
    })
    .await;
    eventually(DEADLINE, "its node leaves the catalog", || async {
        let path = format!("/v1/catalog/node/{}", names[leaver]);
        let r = client(&c, leader).request(Method::GET, &path, None).await.ok()?;
        (r.body.as_ref() == b"null").then_some(())
    })
    .await;
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bootstrap_expect_waits_for_three_servers_then_elects_one_leader() {
    let c = TestCluster::start_with(3, |_, cfg| {
        cfg.bootstrap = false;
        cfg.bootstrap_expect = Some(3);
    })
    .await;
    let leader = c.wait_leader(DEADLINE).await;
    assert_eq!(voters(&c, leader), 3);
    assert!(put(&c, (leader + 1) % 3, "expect", "3").await.expect("write"));
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn autopilot_removes_a_dead_server_once_a_replacement_has_joined() {
    let mut c = TestCluster::start(4).await;
    let leader = c.wait_leader(DEADLINE).await;
    assert_eq!(voters(&c, leader), 4);
    let dead = (leader + 1) % 4;
    c.kill(dead).await;
    let leader = c.wait_leader(DEADLINE).await;
    eventually(DEADLINE, "autopilot removes the dead server", || async {
        (voters(&c, leader) == 3).then_some(())
    })
    .await;
    let dead_id = sekisho::raft::node_id_from_uuid(&c.node(dead).config.node_id);
    let mem = c.agent(leader).server().metrics().membership_config.membership().clone();
    assert!(mem.get_node(&dead_id).is_none(), "the dead server left the configuration");
    c.shutdown().await;
}
