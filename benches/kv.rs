//! KV throughput and latency of a single durable server (fsync on every commit, group commit
//! across concurrent writers), driven over HTTP/1.1 keep-alive like etcd's and Consul's
//! benchmarks. Run with `cargo bench --bench kv` (release); prints a Markdown report.
//!
//! Environment: `SEKISHO_BENCH_SECS` (default 5) per workload.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use sekisho::testing::TestAgent;

type HttpClient = Client<HttpConnector, Full<Bytes>>;

const KEYS: usize = 10_000;
const VALUE_SIZE: usize = 256;

struct Report {
    ops: usize,
    errors: usize,
    secs: f64,
    lat: Vec<Duration>,
}

fn pct(lat: &[Duration], p: f64) -> f64 {
    if lat.is_empty() {
        return 0.0;
    }
    let i = ((lat.len() as f64 - 1.0) * p).round() as usize;
    lat[i].as_secs_f64() * 1000.0
}

async fn one(c: &HttpClient, put: bool, base: &str, k: usize, value: &Bytes) -> bool {
    let (method, body) = if put { ("PUT", value.clone()) } else { ("GET", Bytes::new()) };
    let Ok(req) =
        hyper::Request::builder().method(method).uri(format!("{base}/v1/kv/bench/{k}")).body(Full::new(body))
    else {
        return false;
    };
    match c.request(req).await {
        Ok(r) => {
            let ok = r.status().is_success();
            ok && r.into_body().collect().await.is_ok()
        }
        Err(_) => false,
    }
}

async fn run(base: &str, put: bool, conns: usize, secs: u64) -> Report {
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..conns {
        let (stop, base) = (stop.clone(), base.to_string());
        tasks.push(tokio::spawn(async move {
            let c: HttpClient = Client::builder(TokioExecutor::new()).build_http();
            let value = Bytes::from(vec![b'x'; VALUE_SIZE]);
            let (mut lat, mut errors, mut k) = (Vec::new(), 0, w * 7919);
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                if one(&c, put, &base, k % KEYS, &value).await {
                    lat.push(t.elapsed());
                } else {
                    errors += 1;
                }
                k += 1;
            }
            (lat, errors)
        }));
    }
    tokio::time::sleep(Duration::from_secs(secs)).await;
    stop.store(true, Ordering::Relaxed);
    let mut rep = Report { ops: 0, errors: 0, secs: start.elapsed().as_secs_f64(), lat: Vec::new() };
    for t in tasks {
        let (lat, errors) = t.await.expect("worker");
        rep.ops += lat.len();
        rep.errors += errors;
        rep.lat.extend(lat);
    }
    rep.lat.sort();
    rep
}

async fn prefill(base: &str) {
    let c: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let value = Bytes::from(vec![b'x'; VALUE_SIZE]);
    let chunks: Vec<_> = (0..64)
        .map(|w| {
            let (c, base, value) = (c.clone(), base.to_string(), value.clone());
            tokio::spawn(async move {
                for k in (w..KEYS).step_by(64) {
                    one(&c, true, &base, k, &value).await;
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
    println!("| workload | clients | req/s | p50 ms | p99 ms | max ms | errors |");
    println!("|---|---|---|---|---|---|---|");
    for (name, put) in [("PUT /v1/kv (fsync)", true), ("GET /v1/kv (default)", false)] {
        for conns in [1, 64] {
            eprintln!("running {name} with {conns} clients for {secs}s...");
            let r = run(&base, put, conns, secs).await;
            println!(
                "| {name} | {conns} | {:.0} | {:.2} | {:.2} | {:.2} | {} |",
                r.ops as f64 / r.secs,
                pct(&r.lat, 0.5),
                pct(&r.lat, 0.99),
                pct(&r.lat, 1.0),
                r.errors
            );
        }
    }
    agent.shutdown().await;
}
