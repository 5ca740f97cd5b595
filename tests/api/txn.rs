//! `PUT /v1/txn`: KV and catalog operations applied all-or-nothing.

use http::StatusCode;
use serde_json::{Value, json};

use crate::support::{Api, b64, start, start_with};

fn kv(verb: &str, key: &str) -> Value {
    json!({"KV": {"Verb": verb, "Key": key}})
}

fn kv_set(key: &str, value: &str) -> Value {
    json!({"KV": {"Verb": "set", "Key": key, "Value": b64(value)}})
}

async fn txn(api: &Api, ops: &Value) -> (StatusCode, Value) {
    let r = api.put_json("/v1/txn", ops).await;
    (r.status, r.json())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_operations_succeed() {
    let (agent, api) = start().await;
    api.kv_set("t/existing", "old").await;
    let ops = json!([
        {"KV": {"Verb": "set", "Key": "t/a", "Value": b64("A"), "Flags": 7}},
        kv("get", "t/existing"),
        kv("delete", "t/gone"),
    ]);
    let (status, v) = txn(&api, &ops).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["Errors"], Value::Null);
    let results = v["Results"].as_array().expect("Results list");
    assert_eq!(results.len(), 2, "set and get produce results, delete none: {v}");
    let set = &results[0]["KV"];
    assert_eq!(set["Key"], "t/a");
    assert_eq!(set["Flags"], 7);
    assert_eq!(set["Value"], Value::Null, "set results blank the value: {set}");
    assert!(set["ModifyIndex"].as_u64().unwrap() > 0);
    let get = &results[1]["KV"];
    assert_eq!(get["Value"], b64("old"), "get results keep the value");
    assert_eq!(api.kv_entry("t/a").await["Value"], b64("A"));
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_operation_rolls_everything_back() {
    let (agent, api) = start().await;
    api.kv_set("rb/cas", "v").await;
    let before = api.get("/v1/kv/rb/?recurse").await.index();
    let ops = json!([
        kv_set("rb/first", "should not stay"),
        {"KV": {"Verb": "cas", "Key": "rb/cas", "Value": b64("x"), "Index": 1}},
        kv_set("rb/third", "nor this"),
    ]);
    let (status, v) = txn(&api, &ops).await;
    assert_eq!(status, StatusCode::CONFLICT, "{v}");
    assert_eq!(v["Results"], Value::Null);
    let errors = v["Errors"].as_array().expect("Errors list");
    assert_eq!(errors.len(), 1, "{v}");
    assert_eq!(errors[0]["OpIndex"], 1);
    assert!(errors[0]["What"].as_str().is_some_and(|w| !w.is_empty()), "{v}");
    api.get("/v1/kv/rb/first").await.expect(StatusCode::NOT_FOUND);
    api.get("/v1/kv/rb/third").await.expect(StatusCode::NOT_FOUND);
    assert_eq!(api.kv_entry("rb/cas").await["Value"], b64("v"));
    assert_eq!(api.get("/v1/kv/rb/?recurse").await.index(), before, "the index did not move");
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_than_128_operations_is_413() {
    let (agent, api) = start().await;
    let ops: Vec<Value> = (0..129).map(|i| kv_set(&format!("many/{i}"), "v")).collect();
    let r = api.put_json("/v1/txn", &json!(ops)).await.expect(StatusCode::PAYLOAD_TOO_LARGE);
    assert!(!r.text().is_empty());
    api.get("/v1/kv/many/?keys").await.expect(StatusCode::NOT_FOUND);
    let ops: Vec<Value> = (0..128).map(|i| kv_set(&format!("many/{i}"), "v")).collect();
    let (status, v) = txn(&api, &json!(ops)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["Results"].as_array().unwrap().len(), 128);
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_verbs() {
    let (agent, api) = start().await;
    api.kv_set("chk/k", "v").await;
    let idx = api.kv_entry("chk/k").await["ModifyIndex"].as_u64().unwrap();

    let ops = json!([
        kv("check-not-exists", "chk/absent"),
        {"KV": {"Verb": "check-index", "Key": "chk/k", "Index": idx}},
        kv_set("chk/written", "w"),
    ]);
    let (status, v) = txn(&api, &ops).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let results = v["Results"].as_array().unwrap();
    assert_eq!(results.len(), 2, "check-not-exists has no result: {v}");
    assert_eq!(results[0]["KV"]["Key"], "chk/k");
    assert_eq!(results[0]["KV"]["Value"], Value::Null);

    let (status, v) = txn(&api, &json!([kv_set("chk/no", "x"), kv("check-not-exists", "chk/k")])).await;
    assert_eq!((status, v["Errors"][0]["OpIndex"].as_u64()), (StatusCode::CONFLICT, Some(1)), "{v}");
    let bad_index = json!({"KV": {"Verb": "check-index", "Key": "chk/k", "Index": idx + 1000}});
    let (status, v) = txn(&api, &json!([kv_set("chk/no", "x"), bad_index])).await;
    assert_eq!((status, v["Errors"][0]["OpIndex"].as_u64()), (StatusCode::CONFLICT, Some(1)), "{v}");
    api.get("/v1/kv/chk/no").await.expect(StatusCode::NOT_FOUND);
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_tree_and_delete_tree() {
    let (agent, api) = start().await;
    for k in ["tree/a", "tree/b/c", "treetop"] {
        api.kv_set(k, k).await;
    }
    let (status, v) = txn(&api, &json!([kv("get-tree", "tree/")])).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let got: Vec<(String, String)> = v["Results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["KV"]["Key"].as_str().unwrap().into(), r["KV"]["Value"].as_str().unwrap().into()))
        .collect();
    assert_eq!(got, [("tree/a".into(), b64("tree/a")), ("tree/b/c".into(), b64("tree/b/c"))]);

    let (status, v) = txn(&api, &json!([kv("delete-tree", "tree/")])).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    api.get("/v1/kv/tree/?recurse").await.expect(StatusCode::NOT_FOUND);
    api.get("/v1/kv/treetop").await.expect(StatusCode::OK);
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_and_unlock_verbs() {
    let (agent, api) = start().await;
    let s1 = api.session(&json!({"LockDelay": "0s"})).await;
    let s2 = api.session(&json!({"LockDelay": "0s"})).await;
    let lock = |sid: &str| json!({"KV": {"Verb": "lock", "Key": "tl", "Value": b64("v"), "Session": sid}});
    let unlock =
        |sid: &str| json!({"KV": {"Verb": "unlock", "Key": "tl", "Value": b64("u"), "Session": sid}});

    let (status, v) = txn(&api, &json!([lock(&s1)])).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["Results"][0]["KV"]["Session"], s1.as_str());
    assert_eq!(v["Results"][0]["KV"]["LockIndex"], 1);
    let (status, v) = txn(&api, &json!([lock(&s2)])).await;
    assert_eq!(status, StatusCode::CONFLICT, "{v}");
    let (status, v) = txn(&api, &json!([unlock(&s2)])).await;
    assert_eq!(status, StatusCode::CONFLICT, "{v}");
    let check = json!({"KV": {"Verb": "check-session", "Key": "tl", "Session": s1}});
    let (status, v) = txn(&api, &json!([check, unlock(&s1)])).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let e = api.kv_entry("tl").await;
    assert!(e.get("Session").is_none(), "{e}");
    assert_eq!(e["LockIndex"], 1);
    let (status, v) = txn(&api, &json!([lock(&s2)])).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(api.kv_entry("tl").await["LockIndex"], 2);
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_transactions() {
    let (agent, api) = start().await;
    api.kv_set("ro/a", "A").await;
    api.kv_set("ro/b", "B").await;
    let r = api.put_json("/v1/txn", &json!([kv("get", "ro/a"), kv("get", "ro/b")])).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.header("X-Consul-KnownLeader"), Some("true"));
    let v = r.json();
    assert_eq!(v["Results"][0]["KV"]["Value"], b64("A"));
    assert_eq!(v["Results"][1]["KV"]["Value"], b64("B"));
    let r = api.put_json("/v1/txn?stale", &json!([kv("get", "ro/a")])).await.expect(StatusCode::OK);
    assert_eq!(r.header("X-Consul-Effective-Consistency"), Some("stale"));
    let (status, v) = txn(&api, &json!([kv("get", "ro/missing")])).await;
    assert_eq!(status, StatusCode::CONFLICT, "a get of a missing key fails the txn: {v}");
    assert_eq!(v["Errors"][0]["OpIndex"], 0);
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_service_and_check_verbs() {
    let (agent, api) = start().await;
    let node = json!({"Node": "txn-node", "Address": "10.9.9.9"});
    let svc = json!({"ID": "tsvc1", "Service": "tsvc", "Port": 8080, "Tags": ["a"]});
    let chk = json!({"Node": "txn-node", "CheckID": "tchk", "Name": "tchk", "Status": "passing", "ServiceID": "tsvc1"});
    let ops = json!([
        {"Node": {"Verb": "set", "Node": node}},
        {"Service": {"Verb": "set", "Node": "txn-node", "Service": svc}},
        {"Check": {"Verb": "set", "Check": chk}},
    ]);
    let (status, v) = txn(&api, &ops).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["Results"][0]["Node"]["Node"], "txn-node");
    assert_eq!(v["Results"][1]["Service"]["ID"], "tsvc1");
    assert_eq!(v["Results"][2]["Check"]["CheckID"], "tchk");
    assert_eq!(v["Results"][2]["Check"]["ServiceName"], "tsvc");

    let cat = api.get("/v1/catalog/service/tsvc").await.ok_json();
    assert_eq!((cat[0]["Node"].as_str(), cat[0]["ServicePort"].as_u64()), (Some("txn-node"), Some(8080)));

    let ops = json!([
        {"Node": {"Verb": "get", "Node": {"Node": "txn-node"}}},
        {"Service": {"Verb": "get", "Node": "txn-node", "Service": {"ID": "tsvc1"}}},
        {"Check": {"Verb": "get", "Check": {"Node": "txn-node", "CheckID": "tchk"}}},
    ]);
    let (status, v) = txn(&api, &ops).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["Results"][0]["Node"]["Address"], "10.9.9.9");
    assert_eq!(v["Results"][1]["Service"]["Port"], 8080);
    assert_eq!(v["Results"][2]["Check"]["Status"], "passing");

    let ops = json!([
        {"Check": {"Verb": "delete", "Check": {"Node": "txn-node", "CheckID": "tchk"}}},
        {"Service": {"Verb": "delete", "Node": "txn-node", "Service": {"ID": "tsvc1"}}},
    ]);
    let (status, v) = txn(&api, &ops).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(api.get("/v1/catalog/service/tsvc").await.ok_json(), json!([]));
    assert_eq!(api.get("/v1/health/node/txn-node").await.ok_json(), json!([]));
    let (status, v) = txn(&api, &json!([{"Node": {"Verb": "delete", "Node": {"Node": "txn-node"}}}])).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(api.get("/v1/catalog/node/txn-node").await.ok_json(), Value::Null);
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn size_limits() {
    let (agent, api) = start_with(|cfg, _| cfg.kv_max_value_size = 10).await;
    let r = api
        .put_json("/v1/txn", &json!([kv_set("sz/ok", "0123456789"), kv_set("sz/big", "0123456789a")]))
        .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.text());
    assert!(r.text().contains("is too large"), "Vault looks for 'is too large': {:?}", r.text());
    api.get("/v1/kv/sz/ok").await.expect(StatusCode::NOT_FOUND);
    agent.shutdown().await;

    let (agent, api) = start().await;
    // A body one byte over txn_max_req_len (512 KiB), padded with JSON whitespace so that the
    // server reads all of it before answering.
    let mut body = serde_json::to_vec(&json!([kv_set("sz/a", &"x".repeat(100 * 1024))])).unwrap();
    body.resize(524_289, b' ');
    let r = api.put("/v1/txn", body.clone()).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "a body over txn_max_req_len: {}", r.text());
    body.truncate(524_288);
    let r = api.put("/v1/txn", body).await;
    assert_eq!(r.status, StatusCode::OK, "a body of exactly txn_max_req_len: {}", r.text());
    api.get("/v1/kv/sz/a").await.expect(StatusCode::OK);
    assert_eq!(api.delete("/v1/kv/sz/a").await.ok_json(), json!(true));
    api.get("/v1/kv/sz/a").await.expect(StatusCode::NOT_FOUND);
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_transactions_do_not_block() {
    let (agent, api) = start().await;
    api.kv_set("nb", "v").await;
    let started = std::time::Instant::now();
    let r = api.put_json("/v1/txn?index=999999&wait=3s", &json!([kv("get", "nb")])).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(started.elapsed() < std::time::Duration::from_secs(1), "took {:?}", started.elapsed());
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_failed_operation_is_reported() {
    let (agent, api) = start().await;
    api.kv_set("all/k", "v").await;
    let ops = json!([
        {"KV": {"Verb": "cas", "Key": "all/k", "Value": b64("x"), "Index": 1}},
        kv_set("all/ok", "fine"),
        kv("check-not-exists", "all/k"),
    ]);
    let (status, v) = txn(&api, &ops).await;
    assert_eq!(status, StatusCode::CONFLICT, "{v}");
    let at: Vec<u64> =
        v["Errors"].as_array().unwrap().iter().map(|e| e["OpIndex"].as_u64().unwrap()).collect();
    assert_eq!(at, [0, 2], "{v}");
    api.get("/v1/kv/all/ok").await.expect(StatusCode::NOT_FOUND);
    // Read-only transactions too.
    let (status, v) =
        txn(&api, &json!([kv("get", "all/nope1"), kv("get", "all/k"), kv("get", "all/nope2")])).await;
    assert_eq!(status, StatusCode::CONFLICT, "{v}");
    let at: Vec<u64> =
        v["Errors"].as_array().unwrap().iter().map(|e| e["OpIndex"].as_u64().unwrap()).collect();
    assert_eq!(at, [0, 2], "{v}");
    agent.shutdown().await;
}
