//! `sekisho lock` across agents: failover when the holder's agent dies, and holding through a
//! leader election.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use sekisho::testing::{TestCluster, eventually};
use tokio::process::Child;

use crate::DEADLINE;

fn spawn_lock(c: &TestCluster, i: usize, tag: &str, dir: &Path) -> Child {
    let (marker, stop) = (dir.join("marker"), dir.join("stop"));
    let cmd = format!(
        "echo start {tag} >> {}; while [ ! -f {} ]; do sleep 0.1; done",
        marker.display(),
        stop.display()
    );
    tokio::process::Command::new(env!("CARGO_BIN_EXE_sekisho"))
        .arg("lock")
        .arg(format!("-http-addr={}", c.agent(i).http_addr()))
        .args(["-ttl", "5s", "-lock-delay", "1s", "-name", tag, "cluster/lock", &cmd])
        .env_remove("CONSUL_HTTP_ADDR")
        .env_remove("SEKISHO_HTTP_ADDR")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn sekisho lock")
}

fn starts(dir: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(dir.join("marker")).unwrap_or_default();
    text.lines().filter_map(|l| l.strip_prefix("start ").map(str::to_owned)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_lock_fails_over_when_the_holders_agent_dies() {
    let mut c = TestCluster::start_full(3, 2, |_, _| {}).await;
    let dir = tempfile::tempdir().unwrap();
    let mut a = spawn_lock(&c, 3, "c3", dir.path());
    let b = spawn_lock(&c, 4, "c4", dir.path());
    let first =
        eventually(DEADLINE, "one child holds the lock", || async { starts(dir.path()).first().cloned() })
            .await;
    assert_eq!(starts(dir.path()).len(), 1, "exactly one holder");
    let (holder, other) = if first == "c3" { (3, "c4") } else { (4, "c3") };
    tracing::info!("--- kill the holder's agent {holder}");
    let killed = std::time::Instant::now();
    c.kill(holder).await;
    // Session TTL 5 s + lock-delay 1 s, with room for a slow machine.
    let second = eventually(Duration::from_secs(60), "the other child takes over", || async {
        starts(dir.path()).get(1).cloned()
    })
    .await;
    let took = killed.elapsed();
    eprintln!("the other child started {took:?} after the holder's agent died");
    assert_eq!(second, other);
    assert!(took < Duration::from_secs(5 + 1 + 4), "takeover took {took:?}: more than TTL + lock-delay");
    std::fs::write(dir.path().join("stop"), "").unwrap();
    let survivor = if holder == 3 { b } else { std::mem::replace(&mut a, b) };
    let status =
        tokio::time::timeout(DEADLINE, survivor.wait_with_output()).await.expect("exits").expect("wait");
    assert!(status.status.success());
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_leader_election_does_not_stop_the_holder() {
    let mut c = TestCluster::start_full(3, 1, |_, _| {}).await;
    let dir = tempfile::tempdir().unwrap();
    let mut holder = spawn_lock(&c, 3, "c3", dir.path());
    eventually(DEADLINE, "the child holds the lock", || async { starts(dir.path()).first().cloned() }).await;
    let leader = c.wait_leader(DEADLINE).await;
    tracing::info!("--- kill the leader {leader}");
    c.kill(leader).await;
    c.wait_leader(DEADLINE).await;
    // Observation window: several TTLs after the election the child must still be running.
    let waited = tokio::time::timeout(Duration::from_secs(6), holder.wait()).await;
    assert!(waited.is_err(), "sekisho lock exited during the election: {waited:?}");
    assert_eq!(starts(dir.path()).len(), 1, "the child was not restarted");
    std::fs::write(dir.path().join("stop"), "").unwrap();
    let status = tokio::time::timeout(DEADLINE, holder.wait()).await.expect("exits").expect("wait");
    assert!(status.success());
    c.shutdown().await;
}
