//! `/v1/operator/keyring`: listing, the install → use → remove rotation, refusals, the
//! plaintext agent, and the keyring file across restarts.

use http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{Api, start, start_with};

const KEY_A: &str = "5K9OtfP7efFrNKe5WCQvXvnaXJ5cWP0SvXiwe0kkjM4=";
const KEY_B: &str = "T9jncgl9mbLus+baTTa7q7nPSUrXwbDi2dhbtqir37s=";

async fn encrypted() -> (sekisho::testing::TestAgent, Api) {
    start_with(|cfg, _| cfg.encrypt = Some(KEY_A.to_owned())).await
}

async fn send(api: &Api, method: Method, key: &str) -> crate::support::Resp {
    let body = serde_json::to_vec(&json!({ "Key": key })).expect("JSON");
    api.request(method, "/v1/operator/keyring", body).await
}

/// The single LAN entry of a listing.
async fn lan(api: &Api) -> Value {
    let v = api.get("/v1/operator/keyring").await.ok_json();
    let pools = v.as_array().unwrap_or_else(|| panic!("a list: {v}"));
    assert_eq!(pools.len(), 1, "only the LAN pool: {v}");
    pools[0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyring_get_lists_the_lan_pool_in_consuls_shape() {
    let (agent, api) = encrypted().await;
    let pool = lan(&api).await;
    assert_eq!(
        pool,
        json!({
            "WAN": false, "Datacenter": "dc1", "Segment": "", "Messages": {},
            "Keys": { KEY_A: 1 }, "PrimaryKeys": { KEY_A: 1 }, "NumNodes": 1,
        })
    );
    for q in ["?local-only", "?local-only=true", "?relay-factor=2"] {
        let v = api.get(&format!("/v1/operator/keyring{q}")).await.ok_json();
        assert_eq!(v[0]["Keys"], json!({ KEY_A: 1 }), "{q}: {v}");
    }
    let r = api.get("/v1/operator/keyring?relay-factor=9").await.expect(StatusCode::BAD_REQUEST);
    assert!(r.text().contains("Relay factor must be in range: [0, 5]"), "{}", r.text());
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyring_install_use_remove_rotates_the_key() {
    let (agent, api) = encrypted().await;
    let r = send(&api, Method::POST, KEY_B).await.expect(StatusCode::OK);
    assert!(r.body.is_empty(), "{}", r.text());
    let pool = lan(&api).await;
    assert_eq!(pool["Keys"], json!({ KEY_A: 1, KEY_B: 1 }));
    assert_eq!(pool["PrimaryKeys"], json!({ KEY_A: 1 }));
    send(&api, Method::POST, KEY_B).await.expect(StatusCode::OK); // idempotent

    send(&api, Method::PUT, KEY_B).await.expect(StatusCode::OK);
    assert_eq!(lan(&api).await["PrimaryKeys"], json!({ KEY_B: 1 }));

    let r = send(&api, Method::DELETE, KEY_B).await.expect(StatusCode::INTERNAL_SERVER_ERROR);
    let node = &agent.config.node_name;
    assert_eq!(
        r.text(),
        format!(
            "2 errors occurred:\n\t* dc1 (LAN) error: 1/1 nodes reported failure\n\t\
             * {node}: Removing the primary key is not allowed\n\n"
        )
    );
    send(&api, Method::DELETE, KEY_A).await.expect(StatusCode::OK);
    let pool = lan(&api).await;
    assert_eq!((&pool["Keys"], &pool["PrimaryKeys"]), (&json!({ KEY_B: 1 }), &json!({ KEY_B: 1 })));

    let r = send(&api, Method::PUT, KEY_A).await.expect(StatusCode::INTERNAL_SERVER_ERROR);
    assert!(r.text().contains("Requested key is not in the keyring"), "{}", r.text());
    let r = api.request(Method::POST, "/v1/operator/keyring?local-only", "").await;
    r.expect(StatusCode::BAD_REQUEST);
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyring_bad_keys_are_400_and_change_nothing() {
    let (agent, api) = encrypted().await;
    for (method, key, why) in [
        (Method::POST, "AAAA", "key size must be 16, 24 or 32 bytes, got 3"),
        (Method::POST, "not base64!", "failed to decode key"),
        (Method::PUT, "", "got 0"),
        (Method::DELETE, "AAAA", "16, 24 or 32"),
    ] {
        let r = send(&api, method.clone(), key).await.expect(StatusCode::BAD_REQUEST);
        assert!(r.text().contains(why), "{method} {key:?}: {}", r.text());
    }
    let r = api.request(Method::POST, "/v1/operator/keyring", "{not json").await;
    let r = r.expect(StatusCode::BAD_REQUEST);
    assert!(r.text().starts_with("Request decode failed"), "{}", r.text());
    let pool = lan(&api).await;
    assert_eq!((&pool["Keys"], &pool["PrimaryKeys"]), (&json!({ KEY_A: 1 }), &json!({ KEY_A: 1 })));
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyring_on_a_plaintext_agent_is_a_clear_error() {
    let (agent, api) = start().await;
    let want = "Gossip encryption is not enabled; set encrypt to use a keyring";
    let r = api.get("/v1/operator/keyring").await.expect(StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(r.text(), want);
    let r = send(&api, Method::POST, KEY_B).await.expect(StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(r.text(), want);
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyring_rotation_survives_a_restart_from_local_keyring() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node_id = uuid::Uuid::new_v4().to_string();
    let node = format!("keyring-{}", &node_id[..8]);
    let setup = |cfg: &mut sekisho::config::RuntimeConfig| {
        cfg.dev = false;
        cfg.data_dir = Some(dir.path().to_path_buf());
        cfg.node_id.clone_from(&node_id);
        cfg.node_name.clone_from(&node);
        cfg.encrypt = Some(KEY_A.to_owned());
    };
    let (agent, api) = start_with(|c, _| setup(c)).await;
    let file = dir.path().join("serf").join("local.keyring");
    let saved =
        || -> Vec<String> { serde_json::from_slice(&std::fs::read(&file).expect("file")).expect("JSON") };
    assert_eq!(saved(), [KEY_A], "written at the first start");
    send(&api, Method::POST, KEY_B).await.expect(StatusCode::OK);
    send(&api, Method::PUT, KEY_B).await.expect(StatusCode::OK);
    assert_eq!(saved(), [KEY_B, KEY_A]);
    agent.shutdown().await;

    let (agent, api) = start_with(|c, _| setup(c)).await;
    let pool = lan(&api).await;
    assert_eq!(pool["PrimaryKeys"], json!({ KEY_B: 1 }), "the file wins over encrypt: {pool}");
    assert_eq!(pool["Keys"], json!({ KEY_A: 1, KEY_B: 1 }));
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyring_a_corrupt_file_stops_the_agent_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("serf").join("local.keyring");
    std::fs::create_dir_all(file.parent().expect("parent")).expect("mkdir");
    std::fs::write(&file, "[\"not a key\"]").expect("written");
    let mut cfg = sekisho::config::RuntimeConfig::for_test("dc1", "corrupt-keyring");
    cfg.dev = false;
    cfg.data_dir = Some(dir.path().to_path_buf());
    cfg.encrypt = Some(KEY_A.to_owned());
    let e = sekisho::agent::Agent::start(cfg).await.expect_err("refuses to start").to_string();
    assert!(e.contains(&file.display().to_string()), "{e}");
    assert!(e.contains("failed to decode key"), "{e}");
}
