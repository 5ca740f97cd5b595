//! `kv get|put|delete|export|import` against a single-server TestAgent.

use sekisho::testing::TestAgent;

use crate::support::{client, sekisho_at, sekisho_at_with_stdin};

#[tokio::test(flavor = "multi_thread")]
async fn kv_put_then_get_prints_the_value() {
    let agent = TestAgent::start().await;
    let put = sekisho_at(&agent, &["kv", "put", "redis/config/connections", "5"]).await.ok();
    assert_eq!(put.stdout, "Success! Data written to: redis/config/connections\n");
    let get = sekisho_at(&agent, &["kv", "get", "redis/config/connections"]).await.ok();
    assert_eq!(get.stdout, "5\n");
    // Consul strips a leading slash.
    let get = sekisho_at(&agent, &["kv", "get", "/redis/config/connections"]).await.ok();
    assert_eq!(get.stdout, "5\n");
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn single_and_double_dash_flags_both_work() {
    let agent = TestAgent::start().await;
    let addr = agent.http_addr().to_string();
    sekisho_at(&agent, &["kv", "put", "-flags=42", "a", "1"]).await.ok();
    sekisho_at(&agent, &["kv", "put", "--flags", "43", "b", "2"]).await.ok();
    let single = sekisho_at(&agent, &["kv", "get", "-detailed", "a"]).await.ok();
    assert!(single.stdout.contains("Flags            42\n"), "{single:#?}");
    let double = crate::support::sekisho(&["kv", "get", "--http-addr", &addr, "--detailed", "b"]).await.ok();
    assert!(double.stdout.contains("Flags            43\n"), "{double:#?}");
    let run = sekisho_at(&agent, &["kv", "get", "-recurse", "--keys", "-separator="]).await.ok();
    assert_eq!(run.stdout, "a\nb\n");
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn kv_get_missing_key_exits_1_with_the_consul_text() {
    let agent = TestAgent::start().await;
    let run = sekisho_at(&agent, &["kv", "get", "no/such/key"]).await.expect_code(1);
    assert_eq!(run.stderr, "Error! No key exists at: no/such/key\n");
    assert_eq!(run.stdout, "");
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn kv_cas_with_stale_index_changes_nothing() {
    let agent = TestAgent::start().await;
    let api = client(&agent);
    sekisho_at(&agent, &["kv", "put", "k", "v1"]).await.ok();
    let stale = api.kv_get("k").await.unwrap().unwrap().modify_index;
    sekisho_at(&agent, &["kv", "put", "k", "v2"]).await.ok();
    let current = api.kv_get("k").await.unwrap().unwrap();
    assert!(current.modify_index > stale);

    let index = format!("-modify-index={stale}");
    let run = sekisho_at(&agent, &["kv", "put", "-cas", &index, "k", "v3"]).await.expect_code(1);
    assert_eq!(run.stderr, "Error! Did not write to k: CAS failed\n");
    assert_eq!(api.kv_get("k").await.unwrap().unwrap(), current);

    let index = format!("-modify-index={}", current.modify_index);
    sekisho_at(&agent, &["kv", "put", "-cas", &index, "k", "v3"]).await.ok();
    assert_eq!(api.kv_get("k").await.unwrap().unwrap().value_bytes(), b"v3");
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn kv_export_delete_import_round_trips() {
    let agent = TestAgent::start().await;
    let api = client(&agent);
    api.kv_put("app/a", b"alpha".to_vec(), Some(7), None).await.unwrap();
    api.kv_put("app/dir/b", vec![0, 159, 146, 150], None, None).await.unwrap();
    api.kv_put("app/empty", Vec::new(), Some(u64::MAX), None).await.unwrap();
    api.kv_put("other", b"untouched".to_vec(), None, None).await.unwrap();
    let before: Vec<_> = api.kv_list("app/").await.unwrap().into_iter().map(key_flags_value).collect();
    assert_eq!(before.len(), 3);

    let export = sekisho_at(&agent, &["kv", "export", "app/"]).await.ok();
    assert!(export.stdout.starts_with("[\n\t{\n\t\t\"key\": \"app/a\",\n\t\t\"flags\": 7,\n"), "{export:#?}");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("app.json");
    std::fs::write(&file, &export.stdout).unwrap();

    let deleted = sekisho_at(&agent, &["kv", "delete", "-recurse", "app/"]).await.ok();
    assert_eq!(deleted.stdout, "Success! Deleted keys with prefix: app/\n");
    assert!(api.kv_list("app/").await.unwrap().is_empty());

    let import = sekisho_at(&agent, &["kv", "import", &format!("@{}", file.display())]).await.ok();
    assert_eq!(import.stdout, "Imported: app/a\nImported: app/dir/b\nImported: app/empty\n");
    let after: Vec<_> = api.kv_list("app/").await.unwrap().into_iter().map(key_flags_value).collect();
    assert_eq!(after, before);
    assert_eq!(api.kv_get("other").await.unwrap().unwrap().value_bytes(), b"untouched");

    // The same document through stdin, under another prefix.
    let run = sekisho_at_with_stdin(&agent, &["kv", "import", "-prefix=copy", "-"], export.stdout.as_bytes())
        .await
        .ok();
    assert!(run.stdout.contains("Imported: copy/app/a\n"), "{run:#?}");
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn kv_put_reads_stdin_and_files_and_delete_removes_one_key() {
    let agent = TestAgent::start().await;
    let api = client(&agent);
    sekisho_at_with_stdin(&agent, &["kv", "put", "from/stdin", "-"], b"piped\n").await.ok();
    assert_eq!(api.kv_get("from/stdin").await.unwrap().unwrap().value_bytes(), b"piped\n");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("v");
    std::fs::write(&file, b"from a file").unwrap();
    sekisho_at(&agent, &["kv", "put", "from/file", &format!("@{}", file.display())]).await.ok();
    let recurse = sekisho_at(&agent, &["kv", "get", "-recurse", "from/"]).await.ok();
    assert_eq!(recurse.stdout, "from/file:from a file\nfrom/stdin:piped\n\n");

    let run = sekisho_at(&agent, &["kv", "delete", "from/file"]).await.ok();
    assert_eq!(run.stdout, "Success! Deleted key: from/file\n");
    assert!(api.kv_get("from/file").await.unwrap().is_none());
    assert!(api.kv_get("from/stdin").await.unwrap().is_some());
    agent.shutdown().await;
}

fn key_flags_value(e: sekisho::client::KvEntry) -> (String, u64, Vec<u8>) {
    let value = e.value_bytes().to_vec();
    (e.key, e.flags, value)
}
