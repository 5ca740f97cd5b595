//! Cluster benchmarks on a 3-server `TestCluster` in one process (each server on its own
//! loopback address with a durable data dir, fsync on commit):
//!
//! 1. leader failover: cut the leader off the network (as a crash looks to its peers), measure
//!    until a write through a survivor is acknowledged, heal, repeat (`SEKISHO_BENCH_KILLS`,
//!    default 20);
//! 2. KV throughput over HTTP/1.1 keep-alive with 64 clients spread over the three servers
//!    (followers forward writes to the leader and serve default reads by read index).
//!
//! Run with `cargo bench --bench cluster`; prints a Markdown report.

mod support;

use std::time::{Duration, Instant};

use bytes::Bytes;
use sekisho::testing::TestCluster;
use support::{load, ms, put};

fn base(c: &TestCluster, i: usize) -> String {
    format!("http://{}", c.agent(i).http_addr())
}

async fn failover(kills: usize, multiplier: u32) -> Vec<Duration> {
    let c = TestCluster::start_with(3, |_, cfg| cfg.raft_multiplier = multiplier).await;
    let client = support::client();
    let mut times = Vec::new();
    for round in 0..kills {
        let leader = c.wait_leader(Duration::from_secs(30)).await;
        let survivor = (leader + 1) % 3;
        let url = base(&c, survivor);
        assert!(put(&client, &url, "failover/probe", Bytes::from("before")).await, "write before the kill");
        let t = Instant::now();
        c.faults.isolate(c.node(leader).ip, true);
        let value = Bytes::from(format!("round-{round}"));
        while !put(&client, &url, "failover/probe", value.clone()).await {
            assert!(t.elapsed() < Duration::from_secs(30), "no write accepted within 30 s of the kill");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        times.push(t.elapsed());
        eprintln!(
            "kill {}: a write was accepted {:.0} ms after the leader was cut off",
            round + 1,
            ms(t.elapsed())
        );
        c.faults.heal();
        let _ = c.wait_leader(Duration::from_secs(30)).await;
    }
    c.shutdown().await;
    times
}

#[tokio::main]
async fn main() {
    let kills: usize = std::env::var("SEKISHO_BENCH_KILLS").ok().and_then(|s| s.parse().ok()).unwrap_or(20);
    let multipliers = [1u32, 2];
    let secs: u64 = std::env::var("SEKISHO_BENCH_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(5);

    println!(
        "| leader failover (leader cut off → first acknowledged write) | rounds | median ms | max ms | min ms |"
    );
    println!("|---|---|---|---|---|");
    for m in multipliers {
        eprintln!("leader failover over {kills} rounds (3 servers, raft_multiplier {m})...");
        let mut times = failover(kills, m).await;
        times.sort();
        println!(
            "| 3 servers, in-process, raft_multiplier {m} (election timeout {}-{} ms) | {} | {:.0} | {:.0} | {:.0} |",
            150 * m,
            300 * m,
            times.len(),
            ms(times[times.len() / 2]),
            ms(times[times.len() - 1]),
            ms(times[0])
        );
    }
    println!();

    let c = TestCluster::start(3).await;
    let bases: Vec<String> = (0..3).map(|i| base(&c, i)).collect();
    eprintln!("prefilling...");
    let _ = load(&bases, true, 64, 2).await;
    let rows =
        [("PUT /v1/kv (fsync, forwarded to the leader)", true), ("GET /v1/kv (default, read index)", false)];
    support::workload_table("3-server workload (clients spread over all servers)", &bases, &rows, secs).await;
    c.shutdown().await;
}
