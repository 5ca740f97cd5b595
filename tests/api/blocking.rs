//! Blocking queries (`index` + `wait`) and consistency modes with their headers.

use std::time::{Duration, Instant};

use http::StatusCode;
use serde_json::json;

use crate::support::{Api, Resp, b64, start};

/// Starts `GET path` in the background, returning the response and the instant it arrived.
fn spawn_get(api: &Api, path: String) -> tokio::task::JoinHandle<(Resp, Instant)> {
    let api = api.clone();
    tokio::spawn(async move {
        let r = api.get(&path).await;
        (r, Instant::now())
    })
}

/// Asserts `task` is still blocked after `d` (so it is waiting on the server).
async fn assert_still_blocked<T>(task: &mut tokio::task::JoinHandle<T>, d: Duration) {
    assert!(tokio::time::timeout(d, task).await.is_err(), "the blocking query returned early");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kv_get_wakes_promptly_on_a_write() {
    let (agent, api) = start().await;
    api.kv_set("b/k", "old").await;
    let idx = api.get("/v1/kv/b/k").await.expect(StatusCode::OK).index();

    let mut task = spawn_get(&api, format!("/v1/kv/b/k?index={idx}&wait=5s"));
    assert_still_blocked(&mut task, Duration::from_millis(200)).await;
    // A write to another key does not wake it.
    api.kv_set("b/other", "x").await;
    assert_still_blocked(&mut task, Duration::from_millis(200)).await;

    api.kv_set("b/k", "new").await;
    let put_done = Instant::now();
    let (r, arrived) = task.await.expect("task");
    let latency = arrived.saturating_duration_since(put_done);
    eprintln!("blocking KV GET woke {latency:?} after the PUT completed");
    assert!(latency < Duration::from_secs(1), "woke after {latency:?}");
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.index() > idx);
    assert_eq!(r.json()[0]["Value"], b64("new"));
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_on_a_missing_key_wakes_when_it_is_created() {
    let (agent, api) = start().await;
    let r = api.get("/v1/kv/later").await.expect(StatusCode::NOT_FOUND);
    let mut task = spawn_get(&api, format!("/v1/kv/later?index={}&wait=5s", r.index()));
    assert_still_blocked(&mut task, Duration::from_millis(200)).await;
    api.kv_set("later", "here").await;
    let (r, _) = task.await.expect("task");
    assert_eq!(r.ok_json()[0]["Value"], b64("here"));
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_times_out_with_the_same_index() {
    let (agent, api) = start().await;
    api.kv_set("quiet", "v").await;
    let idx = api.get("/v1/kv/quiet").await.index();
    let start = Instant::now();
    let r = api.get(&format!("/v1/kv/quiet?index={idx}&wait=300ms")).await.expect(StatusCode::OK);
    let took = start.elapsed();
    eprintln!("wait=300ms returned after {took:?}");
    assert!(took >= Duration::from_millis(300), "returned after only {took:?}");
    assert!(took < Duration::from_secs(2), "returned after {took:?}");
    assert_eq!(r.index(), idx);
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_index_ahead_of_the_store_blocks() {
    let (agent, api) = start().await;
    api.kv_set("ahead", "v").await;
    let idx = api.get("/v1/kv/ahead").await.index();
    let start = Instant::now();
    let r = api.get(&format!("/v1/kv/ahead?index={}&wait=400ms", idx + 1000)).await;
    let took = start.elapsed();
    assert_eq!(r.status, StatusCode::OK);
    assert!(took >= Duration::from_millis(400), "index ahead of the store returned after {took:?}");
    let start = Instant::now();
    api.get(&format!("/v1/catalog/nodes?index={}&wait=400ms", idx + 1000)).await.expect(StatusCode::OK);
    assert!(start.elapsed() >= Duration::from_millis(400));
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalog_services_wakes_on_register() {
    let (agent, api) = start().await;
    let idx = api.get("/v1/catalog/services").await.expect(StatusCode::OK).index();
    let mut task = spawn_get(&api, format!("/v1/catalog/services?index={idx}&wait=5s"));
    assert_still_blocked(&mut task, Duration::from_millis(200)).await;
    api.register(&json!({"Node": "bn", "Address": "10.4.0.1", "Service": {"Service": "late", "Port": 1}}))
        .await;
    let registered = Instant::now();
    let (r, arrived) = task.await.expect("task");
    eprintln!("catalog/services woke {:?} after register", arrived.saturating_duration_since(registered));
    assert!(arrived.saturating_duration_since(registered) < Duration::from_secs(1));
    assert!(r.index() > idx);
    assert_eq!(r.json()["late"], json!([]));
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_service_wakes_on_a_check_change() {
    let (agent, api) = start().await;
    let reg = |status: &str| {
        json!({"Node": "hn", "Address": "10.4.0.2", "Service": {"ID": "w", "Service": "w", "Port": 1},
               "Check": {"CheckID": "wc", "Name": "wc", "Status": status, "ServiceID": "w"}})
    };
    api.register(&reg("passing")).await;
    let idx = api.get("/v1/health/service/w?passing").await.index();
    let mut task = spawn_get(&api, format!("/v1/health/service/w?passing&index={idx}&wait=5s"));
    assert_still_blocked(&mut task, Duration::from_millis(200)).await;
    api.register(&reg("critical")).await;
    let (r, _) = task.await.expect("task");
    assert_eq!(r.ok_json(), json!([]));
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consistency_modes_and_headers() {
    let (agent, api) = start().await;
    api.kv_set("cm", "v").await;
    for path in ["/v1/kv/cm", "/v1/catalog/nodes", "/v1/health/service/consul", "/v1/session/list"] {
        for (q, want) in [("", "leader"), ("?stale", "stale"), ("?consistent", "consistent")] {
            let r = api.get(&format!("{path}{q}")).await.expect(StatusCode::OK);
            assert_eq!(r.header("X-Consul-KnownLeader"), Some("true"), "{path}{q}");
            assert_eq!(r.header("X-Consul-Effective-Consistency"), Some(want), "{path}{q}");
            assert!(r.header("X-Consul-LastContact").is_some(), "{path}{q}");
            assert!(r.index() > 0, "{path}{q}");
        }
        let r = api.get(&format!("{path}?stale&consistent")).await.expect(StatusCode::BAD_REQUEST);
        assert!(!r.text().is_empty());
    }
    // py-consul spells it stale=1.
    let r = api.get("/v1/kv/cm?stale=1").await.expect(StatusCode::OK);
    assert_eq!(r.header("X-Consul-Effective-Consistency"), Some("stale"));
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn index_zero_or_absent_does_not_block() {
    let (agent, api) = start().await;
    api.kv_set("z", "v").await;
    for path in ["/v1/kv/z?index=0&wait=3s", "/v1/kv/z?wait=3s", "/v1/catalog/nodes?index=0&wait=3s"] {
        let started = Instant::now();
        api.get(path).await.expect(StatusCode::OK);
        assert!(started.elapsed() < Duration::from_secs(1), "{path} took {:?}", started.elapsed());
    }
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recurse_blocks_on_its_prefix_and_wakes_on_delete() {
    let (agent, api) = start().await;
    api.kv_set("pre/a", "1").await;
    api.kv_set("pre/b", "2").await;
    let idx = api.get("/v1/kv/pre/?recurse").await.index();
    let mut task = spawn_get(&api, format!("/v1/kv/pre/?recurse&index={idx}&wait=5s"));
    assert_still_blocked(&mut task, Duration::from_millis(200)).await;
    api.kv_set("elsewhere", "x").await;
    assert_still_blocked(&mut task, Duration::from_millis(200)).await;
    assert_eq!(api.delete("/v1/kv/pre/b").await.ok_json(), json!(true));
    let (r, _) = task.await.expect("task");
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.index() > idx, "{} > {idx}", r.index());
    assert_eq!(r.json().as_array().map(Vec::len), Some(1));

    // A single-key GET wakes on the key's deletion, with a 404.
    let idx = api.get("/v1/kv/pre/a").await.index();
    let mut task = spawn_get(&api, format!("/v1/kv/pre/a?index={idx}&wait=5s"));
    assert_still_blocked(&mut task, Duration::from_millis(200)).await;
    assert_eq!(api.delete("/v1/kv/pre/a").await.ok_json(), json!(true));
    let (r, _) = task.await.expect("task");
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.index() > idx);
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_info_wakes_on_destroy() {
    let (agent, api) = start().await;
    let sid = api.session(&json!({})).await;
    let idx = api.get(&format!("/v1/session/info/{sid}")).await.index();
    let mut task = spawn_get(&api, format!("/v1/session/info/{sid}?index={idx}&wait=5s"));
    assert_still_blocked(&mut task, Duration::from_millis(200)).await;
    assert_eq!(api.put(&format!("/v1/session/destroy/{sid}"), "").await.ok_json(), json!(true));
    let (r, _) = task.await.expect("task");
    assert_eq!(r.ok_json(), json!([]));
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_blocking_query_does_not_hold_up_the_agents_shutdown() {
    // A watch or consul-template keeps a query open for up to ten minutes; stopping the
    // agent must not wait for it.
    let (agent, api) = start().await;
    api.kv_set("held", "v").await;
    let idx = api.get("/v1/kv/held").await.expect(StatusCode::OK).index();
    let mut task = spawn_get(&api, format!("/v1/kv/held?index={idx}&wait=10m"));
    assert_still_blocked(&mut task, Duration::from_millis(200)).await;
    tokio::time::timeout(Duration::from_secs(10), agent.shutdown())
        .await
        .expect("the agent stops while a blocking query is open");
    let (r, _) = tokio::time::timeout(Duration::from_secs(10), task).await.expect("answered").expect("task");
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{r:?}");
}
