//! Shared by the benchmarks: a keep-alive HTTP/1.1 KV load generator and its report.
#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

pub type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// A new keep-alive client.
pub fn client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

/// Milliseconds of a duration.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

pub async fn put(c: &HttpClient, base: &str, key: &str, value: Bytes) -> bool {
    let Ok(req) =
        hyper::Request::builder().method("PUT").uri(format!("{base}/v1/kv/{key}")).body(Full::new(value))
    else {
        return false;
    };
    match c.request(req).await {
        Ok(r) => r.status().is_success() && r.into_body().collect().await.is_ok(),
        Err(_) => false,
    }
}

pub async fn get(c: &HttpClient, base: &str, key: &str) -> bool {
    let Ok(req) = hyper::Request::builder().uri(format!("{base}/v1/kv/{key}")).body(Full::new(Bytes::new()))
    else {
        return false;
    };
    match c.request(req).await {
        Ok(r) => r.status().is_success() && r.into_body().collect().await.is_ok(),
        Err(_) => false,
    }
}

pub struct Report {
    pub ops: usize,
    pub errors: usize,
    pub secs: f64,
    pub lat: Vec<Duration>,
}

pub fn pct(lat: &[Duration], p: f64) -> f64 {
    if lat.is_empty() {
        return 0.0;
    }
    ms(lat[((lat.len() as f64 - 1.0) * p).round() as usize])
}

pub async fn load(bases: &[String], write: bool, conns: usize, secs: u64) -> Report {
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..conns {
        let (stop, base) = (stop.clone(), bases[w % bases.len()].clone());
        tasks.push(tokio::spawn(async move {
            let c = client();
            let value = Bytes::from(vec![b'x'; 256]);
            let (mut lat, mut errors, mut k) = (Vec::new(), 0, w * 7919);
            while !stop.load(Ordering::Relaxed) {
                let key = format!("bench/{}", k % 10_000);
                let t = Instant::now();
                let ok = if write {
                    put(&c, &base, &key, value.clone()).await
                } else {
                    get(&c, &base, &key).await
                };
                if ok {
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
    let mut r = Report { ops: 0, errors: 0, secs: start.elapsed().as_secs_f64(), lat: Vec::new() };
    for t in tasks {
        let (lat, errors) = t.await.expect("worker");
        r.ops += lat.len();
        r.errors += errors;
        r.lat.extend(lat);
    }
    r.lat.sort();
    r
}

/// Runs each `(name, write)` workload with 1 and 64 clients spread over `bases` for `secs`
/// seconds each, printing one Markdown row per run under `title`.
pub async fn workload_table(title: &str, bases: &[String], rows: &[(&str, bool)], secs: u64) {
    println!("| {title} | clients | req/s | p50 ms | p99 ms | max ms | errors |");
    println!("|---|---|---|---|---|---|---|");
    for &(name, write) in rows {
        for conns in [1, 64] {
            eprintln!("running {name} with {conns} clients for {secs}s...");
            let r = load(bases, write, conns, secs).await;
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
}
