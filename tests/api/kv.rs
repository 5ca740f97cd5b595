//! `/v1/kv`: reads, writes, CAS, deletes, size limits, simple locking and list indexes.

use http::StatusCode;
use serde_json::json;

use crate::support::{Api, b64, enc, start, start_with};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_then_get_has_consul_json_shape() {
    let (agent, api) = start().await;
    api.kv_set("app/config", "hello").await;
    let r = api.get("/v1/kv/app/config").await.expect(StatusCode::OK);
    assert_eq!(r.header("Content-Type"), Some("application/json"));
    let v = r.json();
    let e = &v[0];
    assert_eq!(e["Key"], "app/config");
    assert_eq!(e["Value"], b64("hello"));
    assert_eq!(e["Flags"], 0);
    assert_eq!(e["LockIndex"], 0);
    let (ci, mi) = (e["CreateIndex"].as_u64().unwrap(), e["ModifyIndex"].as_u64().unwrap());
    assert!(ci > 0 && ci == mi, "fresh key: CreateIndex {ci} == ModifyIndex {mi}");
    assert!(e.get("Session").is_none(), "no Session field when unlocked: {e}");
    let keys: Vec<&str> = e.as_object().unwrap().keys().map(String::as_str).collect();
    for k in ["LockIndex", "Key", "Flags", "Value", "CreateIndex", "ModifyIndex"] {
        assert!(keys.contains(&k), "{k} in {keys:?}");
    }
    assert!(r.index() >= mi);

    // An update keeps CreateIndex and moves ModifyIndex.
    api.kv_set("app/config", "again").await;
    let e2 = api.kv_entry("app/config").await;
    assert_eq!(e2["CreateIndex"], ci);
    assert!(e2["ModifyIndex"].as_u64().unwrap() > mi);
    assert_eq!(e2["Value"], b64("again"));
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_returns_the_bytes() {
    let (agent, api) = start().await;
    api.kv_set("raw/k", "{\"not\":\"parsed\"}").await;
    let r = api.get("/v1/kv/raw/k?raw").await.expect(StatusCode::OK);
    assert_eq!(&r.body[..], b"{\"not\":\"parsed\"}");
    assert!(r.header("Content-Type").unwrap_or("").starts_with("text/plain"), "{:?}", r.headers);
    assert!(r.index() > 0);
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recurse_lists_the_prefix_with_its_highest_index() {
    let (agent, api) = start().await;
    for (k, v) in [("r/a", "1"), ("r/b/c", "2"), ("rx", "3"), ("other", "4")] {
        api.kv_set(k, v).await;
    }
    let r = api.get("/v1/kv/r/?recurse").await.expect(StatusCode::OK);
    let v = r.json();
    let keys: Vec<&str> = v.as_array().unwrap().iter().map(|e| e["Key"].as_str().unwrap()).collect();
    assert_eq!(keys, ["r/a", "r/b/c"]);
    let max = v.as_array().unwrap().iter().map(|e| e["ModifyIndex"].as_u64().unwrap()).max().unwrap();
    assert_eq!(r.index(), max, "X-Consul-Index is the max ModifyIndex under the prefix");
    // PC sends recurse=1: any value counts.
    let v = api.get("/v1/kv/r?recurse=1").await.ok_json();
    assert_eq!(v.as_array().unwrap().len(), 3, "prefix r matches rx too: {v}");
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_and_separator() {
    let (agent, api) = start().await;
    for k in ["web/bar", "web/foo", "web/subdir/x", "web/subdir/y", "webby"] {
        api.kv_set(k, "v").await;
    }
    let v = api.get("/v1/kv/web/?keys").await.ok_json();
    assert_eq!(v, json!(["web/bar", "web/foo", "web/subdir/x", "web/subdir/y"]));
    let v = api.get("/v1/kv/web/?keys&separator=/").await.ok_json();
    assert_eq!(v, json!(["web/bar", "web/foo", "web/subdir/"]));
    let v = api.get("/v1/kv/?keys&separator=/").await.ok_json();
    assert_eq!(v, json!(["web/", "webby"]));
    let r = api.get("/v1/kv/nothing/?keys").await.expect(StatusCode::NOT_FOUND);
    assert!(r.index() > 0, "404 on ?keys still carries X-Consul-Index");
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_key_is_404_with_an_index() {
    let (agent, api) = start().await;
    api.kv_set("present", "x").await;
    let r = api.get("/v1/kv/absent").await.expect(StatusCode::NOT_FOUND);
    assert!(r.index() >= 1, "X-Consul-Index on 404");
    assert_eq!(r.header("X-Consul-KnownLeader"), Some("true"));
    let r = api.get("/v1/kv/absent/?recurse").await.expect(StatusCode::NOT_FOUND);
    assert!(r.index() >= 1);
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flags_are_u64() {
    let (agent, api) = start().await;
    for flags in [0u64, 3304740253564472344, 16210313421097356768, u64::MAX] {
        let r = api.put(&format!("/v1/kv/f?flags={flags}"), "x").await;
        assert_eq!(r.ok_json(), json!(true));
        let e = api.kv_entry("f").await;
        assert_eq!(e["Flags"].as_u64(), Some(flags), "{e}");
    }
    let r = api.put("/v1/kv/f?flags=-1", "x").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "negative flags are rejected: {}", r.text());
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cas_creates_only_if_absent_and_rejects_stale_indexes() {
    let (agent, api) = start().await;
    assert_eq!(api.put("/v1/kv/c?cas=0", "first").await.ok_json(), json!(true));
    assert_eq!(api.put("/v1/kv/c?cas=0", "second").await.ok_json(), json!(false));
    let e = api.kv_entry("c").await;
    assert_eq!(e["Value"], b64("first"));
    let idx = e["ModifyIndex"].as_u64().unwrap();

    assert_eq!(api.put(&format!("/v1/kv/c?cas={idx}"), "third").await.ok_json(), json!(true));
    let e = api.kv_entry("c").await;
    let idx2 = e["ModifyIndex"].as_u64().unwrap();
    assert!(idx2 > idx);
    // The old index is stale now: false, and nothing changes.
    assert_eq!(api.put(&format!("/v1/kv/c?cas={idx}"), "fourth").await.ok_json(), json!(false));
    let e = api.kv_entry("c").await;
    assert_eq!(e["Value"], b64("third"));
    assert_eq!(e["ModifyIndex"], idx2);
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_single_recursive_and_cas() {
    let (agent, api) = start().await;
    for k in ["d/a", "d/b", "d/sub/c", "dz"] {
        api.kv_set(k, "v").await;
    }
    assert_eq!(api.delete("/v1/kv/d/a").await.ok_json(), json!(true));
    api.get("/v1/kv/d/a").await.expect(StatusCode::NOT_FOUND);
    // Deleting a missing key is fine.
    assert_eq!(api.delete("/v1/kv/d/a").await.ok_json(), json!(true));

    let idx = api.kv_entry("d/b").await["ModifyIndex"].as_u64().unwrap();
    assert_eq!(api.delete(&format!("/v1/kv/d/b?cas={}", idx + 100)).await.ok_json(), json!(false));
    api.get("/v1/kv/d/b").await.expect(StatusCode::OK);
    assert_eq!(api.delete(&format!("/v1/kv/d/b?cas={idx}")).await.ok_json(), json!(true));
    api.get("/v1/kv/d/b").await.expect(StatusCode::NOT_FOUND);

    assert_eq!(api.delete("/v1/kv/d/?recurse").await.ok_json(), json!(true));
    api.get("/v1/kv/d/?recurse").await.expect(StatusCode::NOT_FOUND);
    api.get("/v1/kv/dz").await.expect(StatusCode::OK);
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_over_the_limit_are_413_and_not_written() {
    let (agent, api) = start().await;
    let big = vec![b'x'; 524_289];
    let r = api.put("/v1/kv/big", big).await.expect(StatusCode::PAYLOAD_TOO_LARGE);
    assert!(r.text().contains("Value exceeds 524288 byte limit"), "{:?}", r.text());
    api.get("/v1/kv/big").await.expect(StatusCode::NOT_FOUND);

    let max = vec![b'y'; 524_288];
    assert_eq!(api.put("/v1/kv/big", max).await.ok_json(), json!(true));
    let r = api.get("/v1/kv/big?raw").await.expect(StatusCode::OK);
    assert_eq!(r.body.len(), 524_288);
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configured_value_limit_applies() {
    let (agent, api) = start_with(|cfg, _| cfg.kv_max_value_size = 10).await;
    assert_eq!(api.put("/v1/kv/small", "0123456789").await.ok_json(), json!(true));
    let r = api.put("/v1/kv/small2", "0123456789a").await.expect(StatusCode::PAYLOAD_TOO_LARGE);
    assert!(r.text().contains("Value exceeds 10 byte limit"), "{:?}", r.text());
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_index_does_not_go_backwards_after_a_delete() {
    let (agent, api) = start().await;
    for k in ["a/1", "a/2", "a/x"] {
        api.kv_set(k, "v").await;
    }
    let before = api.get("/v1/kv/a/?keys").await.expect(StatusCode::OK).index();
    assert_eq!(before, api.kv_entry("a/x").await["ModifyIndex"].as_u64().unwrap());
    assert_eq!(api.delete("/v1/kv/a/x").await.ok_json(), json!(true));
    let after = api.get("/v1/kv/a/?keys").await.expect(StatusCode::OK);
    assert_eq!(after.json(), json!(["a/1", "a/2"]));
    assert!(after.index() > before, "list index {} must pass {before} after deleting a/x", after.index());
    let rec = api.get("/v1/kv/a?recurse").await.expect(StatusCode::OK);
    assert!(rec.index() >= after.index());
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recurse_filter() {
    let (agent, api) = start().await;
    for k in ["f/apple", "f/banana", "f/avocado"] {
        api.kv_set(k, "v").await;
    }
    let q = enc(r#"Key matches "^f/a""#);
    let v = api.get(&format!("/v1/kv/f/?recurse&filter={q}")).await.ok_json();
    let keys: Vec<&str> = v.as_array().unwrap().iter().map(|e| e["Key"].as_str().unwrap()).collect();
    assert_eq!(keys, ["f/apple", "f/avocado"]);
    let bad = enc("Key ===");
    api.get(&format!("/v1/kv/f/?recurse&filter={bad}")).await.expect(StatusCode::BAD_REQUEST);
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locks_count_acquisitions_and_survive_plain_writes() {
    let (agent, api) = start().await;
    let s1 = api.session(&json!({"Name": "one", "LockDelay": "0s"})).await;
    let s2 = api.session(&json!({"Name": "two", "LockDelay": "0s"})).await;

    assert!(api.acquire("lock", &s1, "held-by-1").await);
    let e = api.kv_entry("lock").await;
    assert_eq!(e["LockIndex"], 1);
    assert_eq!(e["Session"], s1.as_str());
    assert!(!api.acquire("lock", &s2, "nope").await, "another session cannot take a held lock");
    assert_eq!(api.kv_entry("lock").await["Value"], b64("held-by-1"));

    // Re-acquiring with the same session updates the value, LockIndex stays.
    assert!(api.acquire("lock", &s1, "again").await);
    let e = api.kv_entry("lock").await;
    assert_eq!((e["LockIndex"].as_u64(), e["Value"].as_str()), (Some(1), Some(b64("again").as_str())));

    // A write without acquire succeeds and keeps the lock.
    api.kv_set("lock", "plain").await;
    let e = api.kv_entry("lock").await;
    assert_eq!(e["Session"], s1.as_str());
    assert_eq!(e["Value"], b64("plain"));
    assert_eq!(e["LockIndex"], 1);

    // Release by the wrong session fails; by the holder clears Session, keeps LockIndex.
    let r = api.put(&format!("/v1/kv/lock?release={s2}"), "x").await;
    assert_eq!(r.ok_json(), json!(false));
    let r = api.put(&format!("/v1/kv/lock?release={s1}"), "released").await;
    assert_eq!(r.ok_json(), json!(true));
    let e = api.kv_entry("lock").await;
    assert!(e.get("Session").is_none(), "released: {e}");
    assert_eq!(e["LockIndex"], 1);

    assert!(api.acquire("lock", &s2, "held-by-2").await);
    let e = api.kv_entry("lock").await;
    assert_eq!(e["LockIndex"], 2);
    assert_eq!(e["Session"], s2.as_str());
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acquire_with_an_unknown_session_is_500() {
    let (agent, api) = start().await;
    let r = api
        .put("/v1/kv/k?acquire=00000000-0000-0000-0000-000000000000", "v")
        .await
        .expect(StatusCode::INTERNAL_SERVER_ERROR);
    assert!(r.text().starts_with("invalid session"), "{:?}", r.text());
    api.get("/v1/kv/k").await.expect(StatusCode::NOT_FOUND);
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_in_the_path_are_percent_decoded() {
    let (agent, api) = start().await;
    assert_eq!(api.put("/v1/kv/enc/sp%20ace%3Fq", "1").await.ok_json(), json!(true));
    assert_eq!(api.put("/v1/kv/enc/a+b", "2").await.ok_json(), json!(true));
    let v = api.get("/v1/kv/enc/?keys").await.ok_json();
    assert_eq!(v, json!(["enc/a+b", "enc/sp ace?q"]), "+ is literal in a path, %XX is decoded");
    assert_eq!(api.kv_entry("enc/sp%20ace%3Fq").await["Key"], "enc/sp ace?q");
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_key_name_is_400() {
    let (agent, api) = start().await;
    api.put("/v1/kv/", "v").await.expect(StatusCode::BAD_REQUEST);
    api.delete("/v1/kv/").await.expect(StatusCode::BAD_REQUEST);
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_much_larger_value_is_413_too() {
    let (agent, api) = start().await;
    // The server may answer before reading the whole body and close the connection, so the
    // client can see a transport error instead of the 413 (Go's net/http behaves the same).
    match api.try_put("/v1/kv/huge", vec![b'z'; 2 << 20]).await {
        Ok(r) => {
            let r = r.expect(StatusCode::PAYLOAD_TOO_LARGE);
            assert!(r.text().contains("Value exceeds 524288 byte limit"), "{:?}", r.text());
        }
        Err(e) => eprintln!("2 MiB PUT: connection closed early ({e})"),
    }
    // A fresh client: the pooled connection may be the one the server closed.
    Api::new(&agent).get("/v1/kv/huge").await.expect(StatusCode::NOT_FOUND);
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn folder_keys_keep_their_trailing_slash() {
    let (agent, api) = start().await;
    // The UI creates folders as empty keys ending in `/`.
    assert_eq!(api.put("/v1/kv/folder/", "").await.ok_json(), json!(true));
    api.kv_set("folder/inner", "v").await;
    assert_eq!(api.kv_entry("folder/").await["Key"], "folder/");
    let v = api.get("/v1/kv/folder/?keys&separator=/").await.ok_json();
    assert_eq!(v, json!(["folder/", "folder/inner"]));
    api.get("/v1/kv/folder").await.expect(StatusCode::NOT_FOUND);
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_value_is_null() {
    let (agent, api) = start().await;
    // `curl -X PUT .../v1/kv/foo/` then GET shows "Value": null in Consul; clients such as
    // consul-rust, vertx and salt special-case that null.
    assert_eq!(api.put("/v1/kv/empty/", "").await.ok_json(), json!(true));
    let e = api.kv_entry("empty/").await;
    assert_eq!(e["Value"], serde_json::Value::Null, "{e}");
    let list = api.get("/v1/kv/empty/?recurse").await.ok_json();
    assert_eq!(list[0]["Value"], serde_json::Value::Null);
    let raw = api.get("/v1/kv/empty/?raw").await.expect(StatusCode::OK);
    assert!(raw.body.is_empty());
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_early_413_is_delivered_and_closes_the_connection_cleanly() {
    let (agent, api) = start().await;
    for i in 0..20 {
        let r = api.try_put("/v1/kv/huge", vec![b'z'; 2 << 20]).await;
        let r = r.unwrap_or_else(|e| panic!("attempt {i}: the 413 was lost: {e}"));
        let r = r.expect(StatusCode::PAYLOAD_TOO_LARGE);
        assert!(r.text().contains("Value exceeds"), "{:?}", r.text());
        assert_eq!(r.header("Connection"), Some("close"), "attempt {i}: {:?}", r.headers);
        let next = api.try_put("/v1/kv/small", "x").await;
        assert!(next.is_ok_and(|r| r.status == StatusCode::OK), "attempt {i}: the next request failed");
    }
    agent.shutdown().await;
}
