//! KV throughput and latency of a single durable server (fsync on every commit, group commit
//! across concurrent writers), driven over HTTP/1.1 keep-alive like etcd's and Consul's
//! benchmarks. Run with `cargo bench --bench kv` (release); prints a Markdown report.
//!
//! Environment: `SEKISHO_BENCH_SECS` (default 5) per workload.

mod support;

use bytes::Bytes;
use sekisho::testing::TestAgent;

const KEYS: usize = 10_000;
const VALUE_SIZE: usize = 256;

async fn prefill(base: &str) {
    let c = support::client();
    let value = Bytes::from(vec![b'x'; VALUE_SIZE]);
    let chunks: Vec<_> = (0..64)
        .map(|w| {
            let (c, base, value) = (c.clone(), base.to_string(), value.clone());
            tokio::spawn(async move {
                for k in (w..KEYS).step_by(64) {
                    support::put(&c, &base, &format!("bench/{k}"), value.clone()).await;
                }
            })
        })
        .collect();
    for t in chunks {
        t.await.expect("prefill");
    }
}

#[tokio::main]
async fn main() {
    let secs: u64 = std::env::var("SEKISHO_BENCH_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(5);
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_path_buf();
    let agent = TestAgent::start_with(move |cfg, _| cfg.data_dir = Some(data)).await;
    let base = format!("http://{}", agent.http_addr());
    eprintln!("prefilling {KEYS} keys of {VALUE_SIZE} bytes (durable data dir, fsync on commit)...");
    prefill(&base).await;
    let rows = [("PUT /v1/kv (fsync)", true), ("GET /v1/kv (default)", false)];
    support::workload_table("workload", std::slice::from_ref(&base), &rows, secs).await;
    agent.shutdown().await;
}
