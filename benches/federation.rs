//! Federation benchmarks on a `TestFederation` of two datacenters (3 servers and 1 client
//! agent each) in one process, every node on its own loopback address; the WAN delay is
//! injected by the fault layer on every message between the two datacenters' addresses, so
//! one cross-datacenter RPC round trip takes `2 × delay` more.
//!
//! 1. forwarded reads: `GET /v1/kv/k?dc=dc2` on the dc1 client agent (client agent → a dc1
//!    server → a dc2 server over the WAN RPC) against the local `GET /v1/kv/k` on the dc2
//!    client agent, with no WAN delay and with a one-way delay (`SEKISHO_BENCH_WAN_MS`,
//!    default 5 ms), 1 and 16 keep-alive clients, `SEKISHO_BENCH_SECS` (default 3) per row;
//!    the overhead column is `forwarded p50 − local p50 − one WAN RTT`;
//! 2. ACL token replication lag: ACLs with `default_policy = "deny"`, dc2 replicating dc1's
//!    tokens; a writer creates tokens through the dc1 client agent at 100/s (a 10 ms tick,
//!    each create its own task) for `SEKISHO_BENCH_ACL_SECS` (default 5), with no WAN delay
//!    and with the one-way delay above; for each token two checkers poll dc2's server 0
//!    every 2 ms until it answers 200 and record the time from the create's acknowledgement
//!    to that first 200: `GET /v1/acl/token/<accessor>` with the management token (the
//!    token is in dc2's store) and `GET /v1/acl/token/self` with the new token (also a read
//!    of dc2's store, after resolving the token; the first resolution of a token not yet
//!    replicated goes to the primary, one WAN round trip). A KV write with the new token
//!    would pass even before replication, as a secondary resolves unknown tokens at the
//!    primary, so it does not measure replication.
//!    `ReplicationLagMilliseconds` of `GET /v1/acl/replication` on dc2 is sampled every
//!    100 ms and read once more at the end.
//!
//! Run with `cargo bench --bench federation`; prints a Markdown report.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, StatusCode};
use http_body_util::{BodyExt, Full};
use sekisho::testing::{TestCluster, TestFederation};
use serde_json::{Value, json};
use support::{HttpClient, Report, get, ms, pct, put};

/// The management token of the ACL run (`initial_management` in dc1).
const ROOT: &str = "7d3c2b1a-9e8f-4a6b-8c5d-1e2f3a4b5c6d";
/// Index of the client agent in each datacenter (after the 3 servers).
const CLIENT: usize = 3;
/// How often a checker asks dc2 whether a new token has arrived.
const POLL: Duration = Duration::from_millis(2);
/// Token writes per second of the ACL run.
const WRITE_RATE: u64 = 100;

fn base(c: &TestCluster, i: usize) -> String {
    format!("http://{}", c.agent(i).http_addr())
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}

/// One HTTP exchange; `None` when the request could not be made or the answer not read.
async fn call(
    c: &HttpClient,
    method: Method,
    url: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> Option<(StatusCode, Bytes)> {
    let mut req = hyper::Request::builder().method(method).uri(url);
    if let Some(t) = token {
        req = req.header("X-Consul-Token", t);
    }
    let body = body.map_or_else(Bytes::new, |v| Bytes::from(v.to_string()));
    let resp = c.request(req.body(Full::new(body)).ok()?).await.ok()?;
    let status = resp.status();
    let bytes = resp.into_body().collect().await.ok()?.to_bytes();
    Some((status, bytes))
}

/// `conns` keep-alive clients reading `key` from `base` in a loop for `secs` seconds.
async fn read_load(base: &str, key: &str, conns: usize, secs: f64) -> Report {
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..conns {
        let (stop, base, key) = (stop.clone(), base.to_owned(), key.to_owned());
        tasks.push(tokio::spawn(async move {
            let c = support::client();
            let (mut lat, mut errors) = (Vec::new(), 0);
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                if get(&c, &base, &key).await {
                    lat.push(t.elapsed());
                } else {
                    errors += 1;
                }
            }
            (lat, errors)
        }));
    }
    tokio::time::sleep(Duration::from_secs_f64(secs)).await;
    stop.store(true, Ordering::Relaxed);
    let mut r = Report { ops: 0, errors: 0, secs: 0.0, lat: Vec::new() };
    for t in tasks {
        let (lat, errors) = t.await.expect("read worker");
        r.ops += lat.len();
        r.errors += errors;
        r.lat.extend(lat);
    }
    r.secs = start.elapsed().as_secs_f64();
    r.lat.sort();
    r
}

async fn forwarded_reads(secs: u64, wan: Duration) {
    eprintln!("starting 2 datacenters x (3 servers + 1 client agent)...");
    let fed = TestFederation::start(&["dc1", "dc2"], 3, 1, |_, _, _| {}).await;
    let (dc1, dc2) = (fed.dc("dc1"), fed.dc("dc2"));
    let _ = dc1.wait_leader(Duration::from_secs(30)).await;
    let _ = dc2.wait_leader(Duration::from_secs(30)).await;
    let client = support::client();
    let local = base(dc2, CLIENT);
    let remote = base(dc1, CLIENT);
    assert!(put(&client, &local, "k", Bytes::from(vec![b'x'; 256])).await, "the key is written in dc2");
    let t = Instant::now();
    while !(get(&client, &local, "k").await && get(&client, &remote, "k?dc=dc2").await) {
        assert!(t.elapsed() < Duration::from_secs(30), "the key is not readable from both sides");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let rows: [(&str, &str, &str, Duration); 3] = [
        ("GET /v1/kv/k on the dc2 client agent (local)", &local, "k", Duration::ZERO),
        ("GET /v1/kv/k?dc=dc2 on the dc1 client agent", &remote, "k?dc=dc2", Duration::ZERO),
        ("GET /v1/kv/k?dc=dc2 on the dc1 client agent", &remote, "k?dc=dc2", wan),
    ];
    println!(
        "| forwarded read | one-way WAN delay | WAN RTT | clients | req/s | p50 ms | p99 ms | errors | p50 − local p50 − RTT |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    let mut local_p50 = [0.0f64; 2];
    for (row, &(name, url, key, delay)) in rows.iter().enumerate() {
        fed.set_wan_delay("dc1", "dc2", delay);
        // Warm the connection pools (HTTP and WAN RPC) before measuring.
        let _ = read_load(url, key, 16, 0.5).await;
        for (k, conns) in [1usize, 16].into_iter().enumerate() {
            eprintln!("running {name} (one-way WAN {} ms) with {conns} clients for {secs}s...", ms(delay));
            let r = read_load(url, key, conns, secs as f64).await;
            let p50 = pct(&r.lat, 0.5);
            let overhead = if row == 0 {
                local_p50[k] = p50;
                "—".to_owned()
            } else {
                format!("{:.2}", p50 - local_p50[k] - ms(2 * delay))
            };
            println!(
                "| {name} | {:.0} ms | {:.0} ms | {conns} | {:.0} | {:.2} | {:.2} | {} | {overhead} |",
                ms(delay),
                ms(2 * delay),
                r.ops as f64 / r.secs,
                p50,
                pct(&r.lat, 0.99),
                r.errors
            );
        }
    }
    fed.set_wan_delay("dc1", "dc2", Duration::ZERO);
    fed.shutdown().await;
}

fn acl_config(dc: &str) -> Value {
    if dc == "dc1" {
        json!({"enabled": true, "default_policy": "deny",
               "tokens": {"initial_management": ROOT, "agent": ROOT}})
    } else {
        json!({"enabled": true, "default_policy": "deny", "enable_token_replication": true,
               "tokens": {"agent": ROOT, "replication": ROOT}})
    }
}

/// `ReplicationLagMilliseconds` of `GET /v1/acl/replication` at `url`.
async fn replication_lag(c: &HttpClient, url: &str) -> Option<u64> {
    let (status, body) = call(c, Method::GET, &format!("{url}/v1/acl/replication"), Some(ROOT), None).await?;
    if status != StatusCode::OK {
        return None;
    }
    serde_json::from_slice::<Value>(&body).ok()?["ReplicationLagMilliseconds"].as_u64()
}

enum Outcome {
    /// The create failed (status or transport).
    CreateFailed,
    /// Created and acknowledged after `create`; after the acknowledgement, dc2's store held
    /// the token at `stored` and `token/self` with it first answered 200 at `self_ok`.
    Seen { create: Duration, stored: Duration, self_ok: Duration },
    /// Created but not seen in dc2 within 30 s.
    NotSeen,
}

/// Polls `url` with `token` every [`POLL`] until it answers 200; the time since `since`, or
/// `None` after 30 s.
async fn until_ok(c: &HttpClient, url: &str, token: &str, since: Instant) -> Option<Duration> {
    loop {
        if let Some((StatusCode::OK, _)) = call(c, Method::GET, url, Some(token), None).await {
            return Some(since.elapsed());
        }
        if since.elapsed() > Duration::from_secs(30) {
            return None;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// One token: create it in dc1, then poll dc2 until it is there. Two checkers run side by
/// side: `GET /v1/acl/token/<accessor>` with the management token reads dc2's copy only;
/// `GET /v1/acl/token/self` with the new token also reads dc2's copy, but first resolves the
/// token, and the first resolution of a token dc2 has not replicated yet is a WAN round trip
/// to the primary (the answer is then cached), so that checker cannot see less than one RTT.
async fn token_round(c: HttpClient, writer: String, checker: String) -> Outcome {
    let t0 = Instant::now();
    let body = json!({"Policies": [{"Name": "p"}]});
    let Some((StatusCode::OK, answer)) =
        call(&c, Method::PUT, &format!("{writer}/v1/acl/token"), Some(ROOT), Some(&body)).await
    else {
        return Outcome::CreateFailed;
    };
    let acked = Instant::now();
    let Ok(v) = serde_json::from_slice::<Value>(&answer) else { return Outcome::CreateFailed };
    let (Some(accessor), Some(secret)) = (v["AccessorID"].as_str(), v["SecretID"].as_str()) else {
        return Outcome::CreateFailed;
    };
    let by_accessor = format!("{checker}/v1/acl/token/{accessor}");
    let by_self = format!("{checker}/v1/acl/token/self");
    match tokio::join!(until_ok(&c, &by_accessor, ROOT, acked), until_ok(&c, &by_self, secret, acked)) {
        (Some(stored), Some(self_ok)) => Outcome::Seen { create: acked - t0, stored, self_ok },
        _ => Outcome::NotSeen,
    }
}

async fn acl_replication(secs: u64, wan: Duration) {
    eprintln!("starting 2 datacenters with ACLs (dc2 replicates dc1's tokens)...");
    let fed = TestFederation::start(&["dc1", "dc2"], 3, 1, |dc, _, cfg| cfg.acl = acl_config(dc)).await;
    let (dc1, dc2) = (fed.dc("dc1"), fed.dc("dc2"));
    let _ = dc1.wait_leader(Duration::from_secs(30)).await;
    let dc2_leader = dc2.wait_leader(Duration::from_secs(30)).await;
    let client = support::client();
    let writer = base(dc1, CLIENT);
    let checker = base(dc2, 0);
    eprintln!("dc2's leader is server {dc2_leader}; the checker polls server 0");

    let t = Instant::now();
    loop {
        let here = call(&client, Method::GET, &format!("{writer}/v1/acl/token/self"), Some(ROOT), None).await;
        let there =
            call(&client, Method::GET, &format!("{checker}/v1/acl/token/self"), Some(ROOT), None).await;
        if matches!((here, there), (Some((StatusCode::OK, _)), Some((StatusCode::OK, _)))) {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "the management token does not resolve in both datacenters"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let policy = json!({"Name": "p", "Rules": "key_prefix \"app/\" { policy = \"write\" }"});
    let r = call(&client, Method::PUT, &format!("{writer}/v1/acl/policy"), Some(ROOT), Some(&policy)).await;
    assert!(matches!(r, Some((StatusCode::OK, _))), "the policy is created: {r:?}");

    println!(
        "| ACL token replication, {WRITE_RATE} token writes/s through the dc1 client agent | one-way WAN delay | tokens | writes/s achieved | create p50 ms | lag p50 ms | lag p99 ms | lag max ms | not seen | failed creates | ReplicationLagMilliseconds max sampled / at end |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for delay in [Duration::ZERO, wan] {
        fed.set_wan_delay("dc1", "dc2", delay);
        // One token first, so the pools are warm and the loop's cursor is current.
        let _ = token_round(client.clone(), writer.clone(), checker.clone()).await;
        eprintln!("creating tokens at {WRITE_RATE}/s for {secs}s (one-way WAN {} ms)...", ms(delay));

        let stop = Arc::new(AtomicBool::new(false));
        let lag_max = Arc::new(AtomicU64::new(0));
        let sampler = {
            let (stop, lag_max, client, checker) =
                (stop.clone(), lag_max.clone(), client.clone(), checker.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    if let Some(l) = replication_lag(&client, &checker).await {
                        lag_max.fetch_max(l, Ordering::Relaxed);
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            })
        };

        let mut tick = tokio::time::interval(Duration::from_millis(1000 / WRITE_RATE));
        let start = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..secs * WRITE_RATE {
            tick.tick().await;
            tasks.push(tokio::spawn(token_round(client.clone(), writer.clone(), checker.clone())));
        }
        let issued = start.elapsed();
        let (mut creates, mut stored_lags, mut self_lags) = (Vec::new(), Vec::new(), Vec::new());
        let (mut not_seen, mut failed) = (0, 0);
        for t in tasks {
            match t.await.expect("token task") {
                Outcome::Seen { create, stored, self_ok } => {
                    creates.push(create);
                    stored_lags.push(stored);
                    self_lags.push(self_ok);
                }
                Outcome::NotSeen => not_seen += 1,
                Outcome::CreateFailed => failed += 1,
            }
        }
        stop.store(true, Ordering::Relaxed);
        sampler.await.expect("lag sampler");
        let at_end = replication_lag(&client, &checker).await;
        creates.sort();
        stored_lags.sort();
        self_lags.sort();
        let created = creates.len() + not_seen;
        let rate = created as f64 / issued.as_secs_f64();
        let replication = format!(
            "{} / {}",
            lag_max.load(Ordering::Relaxed),
            at_end.map_or_else(|| "?".to_owned(), |l| l.to_string())
        );
        let checkers = [
            ("in dc2's store: `GET /v1/acl/token/<accessor>` 200", &stored_lags),
            ("works in dc2: `GET /v1/acl/token/self` 200", &self_lags),
        ];
        for (name, lags) in checkers {
            println!(
                "| {name} | {:.0} ms | {created} | {rate:.1} | {:.2} | {:.2} | {:.2} | {:.2} | {not_seen} | {failed} | {replication} |",
                ms(delay),
                pct(&creates, 0.5),
                pct(lags, 0.5),
                pct(lags, 0.99),
                pct(lags, 1.0),
            );
        }
    }
    fed.set_wan_delay("dc1", "dc2", Duration::ZERO);
    fed.shutdown().await;
}

#[tokio::main]
async fn main() {
    let secs = env_u64("SEKISHO_BENCH_SECS", 3);
    let acl_secs = env_u64("SEKISHO_BENCH_ACL_SECS", 5);
    let wan = Duration::from_millis(env_u64("SEKISHO_BENCH_WAN_MS", 5));
    forwarded_reads(secs, wan).await;
    println!();
    acl_replication(acl_secs, wan).await;
}
