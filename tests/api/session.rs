//! `/v1/session/*` and how sessions end: destroy, TTL expiry, linked checks, node removal,
//! and the lock-delay that follows.

use std::time::{Duration, Instant};

use http::StatusCode;
use sekisho::testing::eventually;
use serde_json::{Value, json};

use crate::support::{Api, b64, node_with_check, start};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_accepts_lowercase_keys_and_info_has_consul_shape() {
    let (agent, api) = start().await;
    let body = json!({"name": "x", "ttl": "10s", "behavior": "delete", "lockdelay": "0.001s"});
    let sid = api.session(&body).await;
    let info = api.session_info(&sid).await;
    assert_eq!(info.len(), 1, "{info:?}");
    let s = &info[0];
    assert_eq!(s["ID"], sid.as_str());
    assert_eq!(s["Name"], "x");
    assert_eq!(s["Node"], agent.config.node_name.as_str());
    assert_eq!(s["Behavior"], "delete");
    assert_eq!(s["TTL"], "10s");
    assert_eq!(s["LockDelay"], json!(1_000_000), "LockDelay is integer nanoseconds: {s}");
    assert_eq!(s["NodeChecks"], json!(["serfHealth"]), "{s}");
    assert!(s["CreateIndex"].as_u64().unwrap() > 0);

    // Defaults: release, 15s lock-delay, no TTL.
    let sid2 = api.session(&json!({})).await;
    let s2 = &api.session_info(&sid2).await[0];
    assert_eq!(s2["Behavior"], "release");
    assert_eq!(s2["LockDelay"], json!(15_000_000_000u64));
    assert_eq!(s2["TTL"], "");
    // A bare number is seconds below 1000 and nanoseconds above, as in Consul.
    let secs = api.session(&json!({"LockDelay": 15})).await;
    assert_eq!(api.session_info(&secs).await[0]["LockDelay"], json!(15_000_000_000u64));
    let nanos = api.session(&json!({"LockDelay": 2_000_000_000u64})).await;
    assert_eq!(api.session_info(&nanos).await[0]["LockDelay"], json!(2_000_000_000u64));
    // An empty body works too.
    let r = api.put("/v1/session/create", "").await.ok_json();
    assert!(r["ID"].as_str().is_some_and(|s| s.len() == 36), "{r}");

    let r = api.get("/v1/session/info/5b0d5e3c-0000-4000-8000-000000000000").await;
    assert_eq!(r.ok_json(), json!([]));
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_list_renew_and_destroy() {
    let (agent, api) = start().await;
    let node = agent.config.node_name.clone();
    let a = api.session(&json!({"Name": "a", "TTL": "30s"})).await;
    let b = api.session(&json!({"Name": "b"})).await;

    let list = api.get("/v1/session/list").await.expect(StatusCode::OK);
    assert!(list.index() > 0);
    let mut ids: Vec<String> =
        list.json().as_array().unwrap().iter().map(|s| s["ID"].as_str().unwrap().to_string()).collect();
    ids.sort();
    let mut want = vec![a.clone(), b.clone()];
    want.sort();
    assert_eq!(ids, want);
    let on_node = api.get(&format!("/v1/session/node/{node}")).await.ok_json();
    assert_eq!(on_node.as_array().unwrap().len(), 2);
    assert_eq!(api.get("/v1/session/node/elsewhere").await.ok_json(), json!([]));

    let renewed = api.put(&format!("/v1/session/renew/{a}"), "").await.ok_json();
    assert_eq!(renewed.as_array().map(Vec::len), Some(1), "{renewed}");
    assert_eq!(renewed[0]["ID"], a.as_str());
    assert_eq!(renewed[0]["TTL"], "30s");
    api.put("/v1/session/renew/5b0d5e3c-0000-4000-8000-000000000000", "").await.expect(StatusCode::NOT_FOUND);

    assert_eq!(api.put(&format!("/v1/session/destroy/{a}"), "").await.ok_json(), json!(true));
    assert_eq!(api.put(&format!("/v1/session/destroy/{a}"), "").await.ok_json(), json!(true));
    assert!(api.session_info(&a).await.is_empty());
    api.put(&format!("/v1/session/renew/{a}"), "").await.expect(StatusCode::NOT_FOUND);
    let list = api.get("/v1/session/list").await.ok_json();
    assert_eq!(list.as_array().unwrap().len(), 1);
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttl_out_of_range_is_500() {
    let (agent, api) = start().await;
    for ttl in ["500ms", "86401s"] {
        let r = api.put_json("/v1/session/create", &json!({"TTL": ttl})).await;
        assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR, "TTL {ttl}: {}", r.text());
        assert!(r.text().starts_with("Invalid Session TTL"), "{:?}", r.text());
    }
    assert_eq!(api.get("/v1/session/list").await.ok_json(), json!([]));
    agent.shutdown().await;
}

/// Destroys `sid` and returns the instant the reply arrived.
async fn destroy(api: &Api, sid: &str) -> Instant {
    assert_eq!(api.put(&format!("/v1/session/destroy/{sid}"), "").await.ok_json(), json!(true));
    Instant::now()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn destroy_releases_or_deletes_held_keys() {
    let (agent, api) = start().await;
    let rel = api.session(&json!({"Behavior": "release", "LockDelay": "0s"})).await;
    let del = api.session(&json!({"Behavior": "delete", "LockDelay": "0s"})).await;
    assert!(api.acquire("held/release", &rel, "r").await);
    assert!(api.acquire("held/delete", &del, "d").await);

    destroy(&api, &rel).await;
    let e = api.kv_entry("held/release").await;
    assert!(e.get("Session").is_none(), "released: {e}");
    assert_eq!((e["LockIndex"].as_u64(), e["Value"].as_str()), (Some(1), Some(b64("r").as_str())));

    destroy(&api, &del).await;
    api.get("/v1/kv/held/delete").await.expect(StatusCode::NOT_FOUND);
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_delay_blocks_reacquisition_until_it_passes() {
    let (agent, api) = start().await;
    let s1 = api.session(&json!({"LockDelay": "2s"})).await;
    let s2 = api.session(&json!({"LockDelay": "0s"})).await;
    assert!(api.acquire("ld", &s1, "1").await);
    let destroyed = destroy(&api, &s1).await;
    assert!(!api.acquire("ld", &s2, "2").await, "lock-delay refuses at once");
    eventually(Duration::from_secs(10), "lock-delay passes", || async {
        api.acquire("ld", &s2, "2").await.then_some(())
    })
    .await;
    let waited = destroyed.elapsed();
    eprintln!("lock-delay 2s: re-acquired after {waited:?}");
    assert!(waited >= Duration::from_millis(1500), "re-acquired after only {waited:?}");
    assert_eq!(api.kv_entry("ld").await["Session"], s2.as_str());
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiny_lock_delay_allows_fast_failover() {
    let (agent, api) = start().await;
    let s1 = api.session(&json!({"LockDelay": "0.001s"})).await;
    let s2 = api.session(&json!({"LockDelay": "0.001s"})).await;
    assert!(api.acquire("fast", &s1, "1").await);
    let destroyed = destroy(&api, &s1).await;
    eventually(Duration::from_secs(2), "re-acquire after 1ms lock-delay", || async {
        api.acquire("fast", &s2, "2").await.then_some(())
    })
    .await;
    let waited = destroyed.elapsed();
    eprintln!("lock-delay 1ms: re-acquired after {waited:?}");
    assert!(waited < Duration::from_millis(500), "{waited:?}");
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttl_expiry_invalidates_the_session_and_releases_its_lock() {
    let (agent, api) = start().await;
    let sid = api.session(&json!({"TTL": "1s", "LockDelay": "0s"})).await;
    assert!(api.acquire("ttl/lock", &sid, "v").await);
    let started = Instant::now();
    eventually(Duration::from_secs(10), "the TTL session expires", || async {
        api.session_info(&sid).await.is_empty().then_some(())
    })
    .await;
    eprintln!("1s TTL session expired after {:?}", started.elapsed());
    let e = api.kv_entry("ttl/lock").await;
    assert!(e.get("Session").is_none(), "lock released on expiry: {e}");
    agent.shutdown().await;
}

/// Registers node `n1` with check `c1` in `status`.
async fn n1_with_c1(api: &Api, status: &str) {
    api.register(&node_with_check("n1", "c1", status)).await;
}

async fn assert_gone_and_released(api: &Api, sid: &str, key: &str) {
    assert!(api.session_info(sid).await.is_empty(), "session {sid} is invalidated");
    let e = api.kv_entry(key).await;
    assert!(e.get("Session").is_none(), "{key} is released: {e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn critical_linked_check_invalidates_the_session() {
    let (agent, api) = start().await;
    n1_with_c1(&api, "passing").await;
    let by_node_checks = api.session(&json!({"Node": "n1", "NodeChecks": ["c1"], "LockDelay": "0s"})).await;
    let by_checks = api.session(&json!({"Node": "n1", "Checks": ["c1"], "LockDelay": "0s"})).await;
    let unlinked = api.session(&json!({"Node": "n1", "Checks": [], "LockDelay": "0s"})).await;
    assert_eq!(api.session_info(&by_checks).await[0]["NodeChecks"], json!(["c1"]));
    assert!(api.acquire("crit/a", &by_node_checks, "a").await);
    assert!(api.acquire("crit/b", &by_checks, "b").await);

    // A warning does not invalidate.
    n1_with_c1(&api, "warning").await;
    assert_eq!(api.session_info(&by_checks).await.len(), 1);

    n1_with_c1(&api, "critical").await;
    assert_gone_and_released(&api, &by_node_checks, "crit/a").await;
    assert_gone_and_released(&api, &by_checks, "crit/b").await;
    assert_eq!(api.session_info(&unlinked).await.len(), 1, "a session without c1 survives");
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deregistering_a_linked_check_invalidates_the_session() {
    let (agent, api) = start().await;
    n1_with_c1(&api, "passing").await;
    let sid = api.session(&json!({"Node": "n1", "Checks": ["c1"], "LockDelay": "0s"})).await;
    assert!(api.acquire("dc/k", &sid, "v").await);
    let r = api.put_json("/v1/catalog/deregister", &json!({"Node": "n1", "CheckID": "c1"})).await;
    assert_eq!(r.ok_json(), json!(true));
    assert_gone_and_released(&api, &sid, "dc/k").await;
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_on_a_critical_check_or_unknown_node_fails() {
    let (agent, api) = start().await;
    n1_with_c1(&api, "critical").await;
    let r = api.put_json("/v1/session/create", &json!({"Node": "n1", "Checks": ["c1"]})).await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR, "{}", r.text());
    let r = api.put_json("/v1/session/create", &json!({"Node": "n1", "Checks": ["missing"]})).await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR, "{}", r.text());
    let r = api.put_json("/v1/session/create", &json!({"Node": "ghost"})).await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR, "{}", r.text());
    assert_eq!(api.get("/v1/session/list").await.ok_json(), json!([]));
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deregistering_the_node_invalidates_its_sessions() {
    let (agent, api) = start().await;
    n1_with_c1(&api, "passing").await;
    let sid =
        api.session(&json!({"Node": "n1", "Checks": [], "Behavior": "delete", "LockDelay": "0s"})).await;
    assert!(api.acquire("node/k", &sid, "v").await);
    let r = api.put_json("/v1/catalog/deregister", &json!({"Node": "n1"})).await;
    assert_eq!(r.ok_json(), json!(true));
    assert!(api.session_info(&sid).await.is_empty());
    api.get("/v1/kv/node/k").await.expect(StatusCode::NOT_FOUND);
    let sessions: Value = api.get("/v1/session/node/n1").await.ok_json();
    assert_eq!(sessions, json!([]));
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renewing_keeps_a_ttl_session_alive() {
    let (agent, api) = start().await;
    let sid = api.session(&json!({"TTL": "1s"})).await;
    let started = Instant::now();
    // Renew every 300ms (a heartbeat, as clients do every TTL/2) for well past 2×TTL.
    let mut beat = tokio::time::interval(Duration::from_millis(300));
    while started.elapsed() < Duration::from_millis(3500) {
        beat.tick().await;
        let r = api.put(&format!("/v1/session/renew/{sid}"), "").await;
        assert_eq!(r.status, StatusCode::OK, "renewed session expired after {:?}", started.elapsed());
    }
    assert_eq!(api.session_info(&sid).await.len(), 1);
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn critical_service_check_invalidates_a_session_linked_by_service_checks() {
    let (agent, api) = start().await;
    let reg = |status: &str| {
        json!({"Node": "sn", "Address": "10.5.0.1", "Service": {"ID": "svc1", "Service": "svc", "Port": 1},
               "Check": {"CheckID": "svc-check", "Name": "svc", "Status": status, "ServiceID": "svc1"}})
    };
    api.register(&reg("passing")).await;
    let sid = api
        .session(&json!({"Node": "sn", "NodeChecks": [], "ServiceChecks": [{"ID": "svc-check"}], "LockDelay": "0s"}))
        .await;
    assert_eq!(api.session_info(&sid).await[0]["ServiceChecks"][0]["ID"], "svc-check");
    assert!(api.acquire("svc/lock", &sid, "v").await);
    api.register(&reg("critical")).await;
    assert_gone_and_released(&api, &sid, "svc/lock").await;
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_explicit_release_starts_no_lock_delay() {
    let (agent, api) = start().await;
    let s1 = api.session(&json!({"LockDelay": "15s"})).await;
    let s2 = api.session(&json!({"LockDelay": "15s"})).await;
    assert!(api.acquire("rel", &s1, "1").await);
    assert_eq!(api.put(&format!("/v1/kv/rel?release={s1}"), "1").await.ok_json(), json!(true));
    assert!(api.acquire("rel", &s2, "2").await, "lock-delay only follows invalidation");
    agent.shutdown().await;
}
