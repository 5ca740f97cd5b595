//! Error answers: unknown paths, bad JSON, wrong methods, and `?pretty`.

use http::{Method, StatusCode};
use serde_json::json;

use crate::support::start;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_path_is_404_with_text() {
    let (agent, api) = start().await;
    for path in ["/v1/nope", "/v2/kv/x", "/v1/catalog/nonsense"] {
        let r = api.get(path).await.expect(StatusCode::NOT_FOUND);
        assert!(!r.text().trim().is_empty(), "{path}: empty body");
    }
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_json_is_400_and_changes_nothing() {
    let (agent, api) = start().await;
    let catalog = api.get("/v1/catalog/nodes").await.index();
    let sessions = api.get("/v1/session/list").await.index();
    let kv = api.get("/v1/kv/?recurse").await.index();
    for path in ["/v1/catalog/register", "/v1/session/create", "/v1/txn"] {
        for body in [&b"{\"Node\": "[..], b"not json", b"[{\"KV\": {\"Verb\": \"set\", \"Key\": \"x\"}"] {
            let r = api.put(path, body.to_vec()).await;
            assert_eq!(
                r.status,
                StatusCode::BAD_REQUEST,
                "{path} {:?}: {}",
                String::from_utf8_lossy(body),
                r.text()
            );
            assert!(r.text().contains("decode"), "{path}: body mentions the decode failure: {:?}", r.text());
        }
    }
    // Well-formed JSON of the wrong type is a decode failure too.
    let r = api.put_json("/v1/catalog/register", &json!({"Node": 5, "Address": "1.2.3.4"})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    let r = api.put_json("/v1/txn", &json!({"KV": {}})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());

    assert_eq!(api.get("/v1/catalog/nodes").await.index(), catalog, "catalog index unchanged");
    assert_eq!(api.get("/v1/session/list").await.ok_json(), json!([]));
    assert_eq!(api.get("/v1/session/list").await.index(), sessions);
    assert_eq!(api.get("/v1/kv/?recurse").await.index(), kv);
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_method_is_405() {
    let (agent, api) = start().await;
    for (method, path) in [
        (Method::POST, "/v1/status/leader"),
        (Method::POST, "/v1/kv/x"),
        (Method::DELETE, "/v1/catalog/nodes"),
        (Method::GET, "/v1/catalog/register"),
        (Method::GET, "/v1/session/create"),
        (Method::GET, "/v1/txn"),
    ] {
        let r = api.request(method.clone(), path, "").await;
        assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}: {}", r.text());
    }
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pretty_output_is_indented() {
    let (agent, api) = start().await;
    api.kv_set("p", "v").await;
    let plain = api.get("/v1/kv/p").await.text();
    assert!(!plain.contains('\n'), "minified by default: {plain:?}");
    let pretty = api.get("/v1/kv/p?pretty").await.text();
    assert!(pretty.contains("\n  "), "indented: {pretty:?}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&pretty).unwrap(),
        serde_json::from_str::<serde_json::Value>(&plain).unwrap()
    );
    let self_pretty = api.get("/v1/agent/self?pretty").await.text();
    assert!(self_pretty.contains("\n  "));
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_query_parameters_are_400() {
    let (agent, api) = start().await;
    for path in ["/v1/kv/x?index=abc", "/v1/kv/x?wait=forever", "/v1/catalog/nodes?index=-1"] {
        let r = api.get(path).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{path}: {}", r.text());
    }
    let r = api.put("/v1/kv/x?cas=nope", "v").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    api.get("/v1/kv/x").await.expect(StatusCode::NOT_FOUND);
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_and_basic_auth_are_tolerated() {
    let (agent, api) = start().await;
    let headers = [("X-Consul-Token", "anything"), ("Authorization", "Basic dXNlcjpwYXNz")];
    let r = api.request_with(Method::PUT, "/v1/kv/auth?token=t", &headers, "v").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = api.request_with(Method::GET, "/v1/kv/auth", &[("Authorization", "Bearer abc")], "").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dc_parameter_for_the_local_datacenter_works() {
    let (agent, api) = start().await;
    assert_eq!(api.put("/v1/kv/dc/x?dc=dc1", "v").await.ok_json(), json!(true));
    api.get("/v1/kv/dc/x?dc=dc1").await.expect(StatusCode::OK);
    api.get("/v1/catalog/nodes?dc=dc1").await.expect(StatusCode::OK);
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_dc_parameter_is_rejected() {
    let (agent, api) = start().await;
    for (method, path, body) in [
        (Method::PUT, "/v1/kv/dc/y?dc=dc9", "v"),
        (Method::GET, "/v1/kv/dc/y?dc=dc9", ""),
        (Method::GET, "/v1/catalog/nodes?dc=dc9", ""),
        (Method::GET, "/v1/health/service/consul?dc=dc9", ""),
        (Method::PUT, "/v1/session/create?dc=dc9", "{}"),
    ] {
        let r = api.request(method.clone(), path, body).await;
        assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR, "{method} {path}: {}", r.text());
        assert!(r.text().contains("No path to datacenter"), "{method} {path}: {:?}", r.text());
    }
    api.get("/v1/kv/dc/y").await.expect(StatusCode::NOT_FOUND);
    agent.shutdown().await;
}
