//! ACLs across datacenters: three datacenters with mutual TLS and `default_policy = "deny"`;
//! dc1 is the primary, dc2 and dc3 replicate its policies, roles and global tokens.

use std::time::{Duration, Instant};

use http::Method;
use sekisho::testing::{TestCluster, eventually, poll_until};
use serde_json::{Value, json};

use super::{CLIENT, DEADLINE, call, json_of};
use sekisho::client::{Client, ClientConfig, Response};

pub(crate) const ROOT: &str = "5f0c1d2e-3a4b-4c5d-8e6f-7a8b9c0d1e2f";

fn with_token(c: &TestCluster, i: usize, token: &str) -> Client {
    let mut cfg = ClientConfig::new(c.agent(i).http_addr().to_string());
    cfg.token = Some(token.to_owned());
    Client::new(cfg)
}

pub(crate) fn acl_config(dc: &str) -> Value {
    if dc == "dc1" {
        json!({"enabled": true, "default_policy": "deny",
               "tokens": {"initial_management": ROOT, "agent": ROOT}})
    } else {
        json!({"enabled": true, "default_policy": "deny", "down_policy": "extend-cache",
               "enable_token_replication": true,
               "tokens": {"agent": ROOT, "replication": ROOT}})
    }
}

async fn kv_put(c: &Client, key: &str) -> u16 {
    call(c, Method::PUT, &format!("/v1/kv/{key}"), Some(Value::String("v".into()))).await.status.as_u16()
}

/// Creates a token for `policy` in the datacenter `c` serves; returns its SecretID.
async fn token_for(root: &Client, policy: &str) -> String {
    let r = call(root, Method::PUT, "/v1/acl/token", Some(json!({"Policies": [{"Name": policy}]}))).await;
    assert_eq!(r.status, 200, "{}", r.text());
    json_of(&r)["SecretID"].as_str().expect("SecretID").to_owned()
}

async fn replication_status(c: &Client) -> Value {
    let r = call(c, Method::GET, "/v1/acl/replication", None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    json_of(&r)
}

fn lag(r: &Response) -> Option<u64> {
    r.headers.get("X-Sekisho-Acl-Replication-Lag")?.to_str().ok()?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tokens_and_policies_replicate_from_the_primary_and_survive_a_partition() {
    replication(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn through_gateways_tokens_and_policies_replicate_and_survive_a_partition() {
    replication(true).await;
}

async fn replication(gateways: bool) {
    let dir = tempfile::tempdir().expect("tempdir");
    let fed = super::federation(gateways, dir.path(), |dc, _, cfg| cfg.acl = acl_config(dc)).await;
    let (dc1, dc2, dc3) = (fed.dc("dc1"), fed.dc("dc2"), fed.dc("dc3"));
    let root1 = with_token(dc1, CLIENT, ROOT);
    let root2 = with_token(dc2, CLIENT, ROOT);
    eventually(DEADLINE, "the management token resolves in every datacenter", || async {
        for c in [dc1, dc2, dc3] {
            let r =
                with_token(c, CLIENT, ROOT).request(Method::GET, "/v1/acl/token/self", None).await.ok()?;
            (r.status == 200).then_some(())?;
        }
        Some(())
    })
    .await;

    tracing::info!("--- a token created in the primary works in dc2 and dc3 within 2 s");
    let r = call(
        &root1,
        Method::PUT,
        "/v1/acl/policy",
        Some(json!({"Name": "app", "Rules": r#"key_prefix "app/" { policy = "write" }"#})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let policy_id = json_of(&r)["ID"].as_str().expect("ID").to_owned();
    let app = token_for(&root1, "app").await;
    let created = Instant::now();
    for c in [dc2, dc3] {
        let t = with_token(c, CLIENT, &app);
        poll_until(Duration::from_secs(10), || async { (kv_put(&t, "app/x").await == 200).then_some(()) })
            .await
            .expect("the token works in the secondary");
    }
    let took = created.elapsed();
    eprintln!("a primary token worked in dc2 and dc3 after {took:?}");
    assert!(took < Duration::from_secs(2), "replication took {took:?}");
    assert_eq!(kv_put(&with_token(dc2, CLIENT, &app), "other/x").await, 403, "and grants nothing more");

    tracing::info!("--- the status shows the replicated index");
    let status = eventually(DEADLINE, "dc2 reports the primary's ACL index", || async {
        let primary = call(&root1, Method::GET, "/v1/acl/tokens", None).await.index()?;
        let s = replication_status(&root2).await;
        (s["ReplicatedIndex"].as_u64()? >= primary).then_some(s)
    })
    .await;
    assert_eq!(status["Enabled"], true);
    assert_eq!(status["Running"], true);
    assert_eq!(status["SourceDatacenter"], "dc1");
    assert_eq!(status["ReplicationType"], "tokens");
    assert!(status["ReplicatedTokenIndex"].as_u64().unwrap_or(0) > 0, "{status}");
    assert_ne!(status["LastSuccess"], "0001-01-01T00:00:00Z");
    let primary_status = replication_status(&root1).await;
    assert_eq!(primary_status["Enabled"], false, "the primary does not replicate: {primary_status}");

    tracing::info!("--- a policy change propagates");
    let r = call(
        &root1,
        Method::PUT,
        &format!("/v1/acl/policy/{policy_id}"),
        Some(json!({"Name": "app", "Rules": r#"key_prefix "app2/" { policy = "write" }"#})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let t2 = with_token(dc2, CLIENT, &app);
    eventually(DEADLINE, "dc2 applies the changed policy", || async {
        (kv_put(&t2, "app/x").await == 403 && kv_put(&t2, "app2/x").await == 200).then_some(())
    })
    .await;

    tracing::info!("--- global writes in a secondary go to the primary; local tokens stay");
    let r = call(
        &root2,
        Method::PUT,
        "/v1/acl/policy",
        Some(json!({"Name": "made-in-dc2", "Rules": r#"key_prefix "m/" { policy = "read" }"#})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = call(&root1, Method::GET, "/v1/acl/policy/name/made-in-dc2", None).await;
    assert_eq!(r.status, 200, "the policy lives in the primary: {}", r.text());
    let r = call(
        &root2,
        Method::PUT,
        "/v1/acl/token",
        Some(json!({"Local": true, "Policies": [{"Name": "app"}]})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let local = json_of(&r);
    let local_secret = local["SecretID"].as_str().expect("secret").to_owned();
    assert_eq!(local["Local"], true);
    let r =
        call(&root1, Method::GET, &format!("/v1/acl/token/{}", local["AccessorID"].as_str().unwrap()), None)
            .await;
    assert_ne!(r.status, 200, "a local token is not in the primary");
    assert_eq!(kv_put(&with_token(dc2, CLIENT, &local_secret), "app2/local").await, 200);

    tracing::info!("--- cut dc2 off from the primary");
    fed.partition_dcs("dc1", "dc2");
    let unseen = token_for(&root1, "app").await;
    // dc2 keeps serving its own catalog and its replicated ACLs.
    let r = call(&root2, Method::GET, "/v1/catalog/nodes", None).await;
    assert_eq!(r.status, 200);
    assert_eq!(json_of(&r).as_array().map(Vec::len), Some(4), "dc2's own nodes");
    assert_eq!(kv_put(&t2, "app2/during").await, 200, "a replicated token works while the primary is away");
    let lagging = eventually(Duration::from_secs(30), "dc2 reports replication lag", || async {
        let r = call(&root2, Method::GET, "/v1/acl/policies", None).await;
        let s = replication_status(&root2).await;
        (lag(&r)? > 0 && !s["LastErrorMessage"].as_str()?.is_empty()).then_some(s)
    })
    .await;
    eprintln!("replication status during the partition: {lagging}");
    // A token dc2 has never seen: down_policy (extend-cache, nothing cached) gives the
    // default policy, deny. dc3 still replicates and honours it.
    assert_eq!(kv_put(&with_token(dc2, CLIENT, &unseen), "app2/unseen").await, 403);
    let t3 = with_token(dc3, CLIENT, &unseen);
    eventually(DEADLINE, "dc3 still replicates", || async {
        (kv_put(&t3, "app2/y").await == 200).then_some(())
    })
    .await;

    tracing::info!("--- heal: dc2 catches up");
    fed.heal();
    let u2 = with_token(dc2, CLIENT, &unseen);
    eventually(Duration::from_secs(40), "dc2 catches up after the partition heals", || async {
        (kv_put(&u2, "app2/after").await == 200).then_some(())
    })
    .await;
    eventually(DEADLINE, "the lag returns to zero", || async {
        let r = call(&root2, Method::GET, "/v1/acl/policies", None).await;
        (lag(&r)? == 0).then_some(())
    })
    .await;
    fed.shutdown().await;
}
