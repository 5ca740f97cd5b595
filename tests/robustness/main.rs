//! Robustness: concurrent KV traffic (reads, writes, CAS, deletes, transactions, session
//! locks) against a 3-server cluster while a nemesis kills, restarts, partitions, drops and
//! delays; every history goes through the linearizability checker
//! (`sekisho::testing::lincheck`). See docs/robustness.md.
//!
//! The CI runs are short (about 12 s of traffic each, in parallel). `long_random_run` is
//! ignored by default: `SEKISHO_ROBUSTNESS_SEED=<n> SEKISHO_ROBUSTNESS_SECS=<s> cargo nextest
//! run --test robustness --run-ignored ignored-only` replays a seed's choices.

use std::time::Duration;

use sekisho::net::fault::Faults;
use sekisho::testing::TestCluster;
use sekisho::testing::robustness::{Fault, Plan, RunReport, run};

/// 3 (or `servers`) durable servers that snapshot every 64 entries and keep 16 after it, so
/// a follower down for a second falls behind the log and needs a snapshot.
async fn cluster(servers: usize, unsafe_reads: bool) -> TestCluster {
    TestCluster::start_tuned(
        "dc1",
        Faults::none(),
        servers,
        0,
        |_, cfg| {
            cfg.raft_snapshot_threshold = 64;
            cfg.raft_trailing_logs = 16;
        },
        |t| t.unsafe_local_reads = unsafe_reads,
    )
    .await
}

fn seed() -> u64 {
    std::env::var("SEKISHO_ROBUSTNESS_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
    })
}

fn assert_clean(r: &RunReport) {
    eprintln!("{}", r.summary());
    assert!(r.check.ok() && r.stale.regressions.is_empty(), "{}\n{}", r.summary(), r.details());
    assert!(r.counts.definite > 100, "too little traffic got through to check: {}", r.summary());
}

async fn faulty_run(faults: &[Fault], expect: &[Fault]) {
    let seed = seed();
    eprintln!("robustness seed {seed} (replay with SEKISHO_ROBUSTNESS_SEED={seed})");
    let mut c = cluster(3, false).await;
    let r = run(&mut c, &Plan::new(seed, Duration::from_secs(12), faults)).await;
    assert_clean(&r);
    for f in expect {
        assert!(r.exercised.contains(f), "fault {f:?} never took effect: {}", r.summary());
    }
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn linearizable_through_leader_and_follower_kills_restarts_and_snapshot_installs() {
    let faults = [Fault::KillLeader, Fault::KillFollower, Fault::SnapshotInstall];
    faulty_run(&faults, &[Fault::KillLeader]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn linearizable_through_minority_and_leader_partitions() {
    let faults = [Fault::PartitionMinority, Fault::PartitionLeader];
    faulty_run(&faults, &faults).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn linearizable_through_message_loss_and_slow_links() {
    let faults = [Fault::Drop30, Fault::DelayLinks];
    faulty_run(&faults, &faults).await;
}

/// The snapshot-install fault on its own, so it is exercised in every CI run.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn linearizable_while_a_follower_catches_up_by_installing_a_snapshot() {
    faulty_run(&[Fault::SnapshotInstall], &[Fault::SnapshotInstall]).await;
}

/// With reads answered from each server's own state (a test-only switch), the checker
/// must find a stale read: proof that it can fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_checker_catches_a_broken_read_path() {
    let mut c = cluster(3, true).await;
    let seed = seed();
    let mut runs = Vec::new();
    // A lagging follower makes stale answers likely in any short run; try a few.
    for round in 0..6 {
        let plan = Plan {
            hold: (Duration::from_millis(800), Duration::from_millis(1500)),
            ..Plan::new(seed + round, Duration::from_secs(5), &[Fault::DelayLinks, Fault::PartitionMinority])
        };
        let r = run(&mut c, &plan).await;
        eprintln!("broken reads, round {round}: {}", r.summary());
        let caught = !r.check.violations.is_empty();
        runs.push(r.summary());
        if caught {
            eprintln!("{}", r.details());
            c.shutdown().await;
            return;
        }
    }
    panic!("the checker passed histories from a broken read path:\n{}", runs.join("\n"));
}

/// A long run over every fault type on 5 servers (ignored by default).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "long run: SEKISHO_ROBUSTNESS_SECS (default 300) over every fault type"]
async fn long_random_run() {
    let seed = seed();
    let secs = std::env::var("SEKISHO_ROBUSTNESS_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(300);
    eprintln!("robustness seed {seed}, {secs} s (replay with SEKISHO_ROBUSTNESS_SEED={seed})");
    let mut c = cluster(5, false).await;
    let plan = Plan { clients: 8, keys: 10, ..Plan::new(seed, Duration::from_secs(secs), &Fault::ALL) };
    let r = run(&mut c, &plan).await;
    assert_clean(&r);
    c.shutdown().await;
}
