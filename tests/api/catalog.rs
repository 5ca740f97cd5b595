//! `/v1/catalog/*`: register (Consul's and py-consul's key spellings), the list and detail
//! reads, tag filtering, deregistration, ordering and `?filter=`.

use http::StatusCode;
use serde_json::{Value, json};

use crate::support::{Api, enc, field_list, start};

/// Registers `web` instances `web1` (n1, tags v1) and `web2` (n2, tags v2, port 81).
async fn two_web_nodes(api: &Api) {
    // py-consul style lowercase keys.
    api.register(&json!({
        "node": "n1", "address": "10.0.0.1", "nodemeta": {"rack": "r1"},
        "service": {"id": "web1", "service": "web", "tags": ["v1"], "port": 80, "address": "10.1.1.1"},
        "check": {"checkid": "web1-alive", "name": "alive", "status": "passing", "service_id": "web1"},
    }))
    .await;
    api.register(&json!({
        "Node": "n2", "Address": "10.0.0.2",
        "Service": {"ID": "web2", "Service": "web", "Tags": ["v2", "Canary"], "Port": 81},
    }))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_then_list_nodes_services_and_instances() {
    let (agent, api) = start().await;
    two_web_nodes(&api).await;
    let me = agent.config.node_name.clone();

    let r = api.get("/v1/catalog/nodes").await.expect(StatusCode::OK);
    assert!(r.index() > 0);
    let nodes = r.json();
    let names = field_list(&nodes, "Node");
    for n in ["n1", "n2", me.as_str()] {
        assert!(names.iter().any(|x| x == n), "{n} in {names:?}");
    }
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "nodes are sorted by name");
    let n1 = nodes.as_array().unwrap().iter().find(|n| n["Node"] == "n1").unwrap();
    assert_eq!(n1["Address"], "10.0.0.1");
    assert_eq!(n1["Datacenter"], "dc1");
    assert_eq!(n1["Meta"], json!({"rack": "r1"}));

    let services = api.get("/v1/catalog/services").await.ok_json();
    assert_eq!(services["consul"], json!([]));
    let mut web_tags: Vec<String> =
        services["web"].as_array().unwrap().iter().map(|t| t.as_str().unwrap().to_string()).collect();
    web_tags.sort();
    assert_eq!(web_tags, ["Canary", "v1", "v2"]);
    assert_eq!(services.as_object().unwrap().len(), 2, "{services}");

    let inst = api.get("/v1/catalog/service/web").await.ok_json();
    assert_eq!(field_list(&inst, "ServiceID"), ["web1", "web2"]);
    let w1 = &inst[0];
    assert_eq!(w1["Node"], "n1");
    assert_eq!(w1["Address"], "10.0.0.1");
    assert_eq!(w1["ServiceName"], "web");
    assert_eq!(w1["ServiceAddress"], "10.1.1.1");
    assert_eq!(w1["ServicePort"], 80);
    assert_eq!(w1["ServiceTags"], json!(["v1"]));
    assert_eq!(w1["Datacenter"], "dc1");
    assert_eq!(w1["NodeMeta"], json!({"rack": "r1"}));
    assert_eq!(inst[1]["ServiceAddress"], "", "empty means the node address");
    assert!(w1["CreateIndex"].as_u64().unwrap() > 0);
    assert_eq!(api.get("/v1/catalog/service/nope").await.ok_json(), json!([]));
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tag_is_repeatable_and_case_insensitive() {
    let (agent, api) = start().await;
    two_web_nodes(&api).await;
    let ids = |v: Value| field_list(&v, "ServiceID");
    assert_eq!(ids(api.get("/v1/catalog/service/web?tag=v2").await.ok_json()), ["web2"]);
    assert_eq!(ids(api.get("/v1/catalog/service/web?tag=V1").await.ok_json()), ["web1"]);
    assert_eq!(ids(api.get("/v1/catalog/service/web?tag=v2&tag=canary").await.ok_json()), ["web2"]);
    assert!(ids(api.get("/v1/catalog/service/web?tag=v1&tag=v2").await.ok_json()).is_empty());
    let h = api.get("/v1/health/service/web?tag=canary").await.ok_json();
    assert_eq!(h[0]["Service"]["ID"], "web2", "health/service honours tag too");
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_and_node_services() {
    let (agent, api) = start().await;
    two_web_nodes(&api).await;
    api.register(&json!({"Node": "n1", "Address": "10.0.0.1", "NodeMeta": {"rack": "r1"},
        "Service": {"ID": "db", "Service": "db", "Port": 5432}}))
        .await;
    let v = api.get("/v1/catalog/node/n1").await.ok_json();
    assert_eq!(v["Node"]["Node"], "n1");
    assert_eq!(v["Node"]["Address"], "10.0.0.1");
    let svcs = v["Services"].as_object().expect("Services is a map keyed by ID");
    assert_eq!(svcs.keys().collect::<Vec<_>>(), ["db", "web1"]);
    assert_eq!(svcs["web1"]["Service"], "web");
    assert_eq!(svcs["web1"]["Port"], 80);
    assert_eq!(svcs["web1"]["Tags"], json!(["v1"]));

    let r = api.get("/v1/catalog/node/unknown").await.expect(StatusCode::OK);
    assert_eq!(r.json(), Value::Null);

    let v = api.get("/v1/catalog/node-services/n1").await.ok_json();
    assert_eq!(v["Node"]["Node"], "n1");
    let list = v["Services"].as_array().expect("Services is a list here");
    let mut ids: Vec<&str> = list.iter().map(|s| s["ID"].as_str().unwrap()).collect();
    ids.sort();
    assert_eq!(ids, ["db", "web1"]);
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deregister_check_service_and_node() {
    let (agent, api) = start().await;
    two_web_nodes(&api).await;
    api.register(&json!({"Node": "n1", "Address": "10.0.0.1", "NodeMeta": {"rack": "r1"},
        "Check": {"CheckID": "node-ok", "Name": "node ok", "Status": "passing"}}))
        .await;
    api.register(&json!({"Node": "n1", "Address": "10.0.0.1", "NodeMeta": {"rack": "r1"},
        "Check": {"CheckID": "extra", "Name": "extra", "Status": "passing", "ServiceID": "web1"}}))
        .await;
    let check_ids = |v: Value| {
        let mut ids = field_list(&v, "CheckID");
        ids.sort();
        ids
    };
    assert_eq!(check_ids(api.get("/v1/health/node/n1").await.ok_json()), ["extra", "node-ok", "web1-alive"]);

    let dereg = |body: Value| {
        let api = api.clone();
        async move { assert_eq!(api.put_json("/v1/catalog/deregister", &body).await.ok_json(), json!(true)) }
    };
    dereg(json!({"Node": "n1", "CheckID": "extra"})).await;
    assert_eq!(check_ids(api.get("/v1/health/node/n1").await.ok_json()), ["node-ok", "web1-alive"]);

    dereg(json!({"Node": "n1", "ServiceID": "web1"})).await;
    assert_eq!(
        check_ids(api.get("/v1/health/node/n1").await.ok_json()),
        ["node-ok"],
        "service checks go too"
    );
    assert_eq!(field_list(&api.get("/v1/catalog/service/web").await.ok_json(), "Node"), ["n2"]);
    assert_eq!(api.get("/v1/catalog/node/n1").await.ok_json()["Node"]["Node"], "n1", "the node stays");

    dereg(json!({"Node": "n2"})).await;
    assert_eq!(api.get("/v1/catalog/node/n2").await.ok_json(), Value::Null);
    assert_eq!(api.get("/v1/catalog/service/web").await.ok_json(), json!([]));
    let services = api.get("/v1/catalog/services").await.ok_json();
    assert!(services.get("web").is_none(), "{services}");
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn datacenters() {
    let (agent, api) = start().await;
    assert_eq!(api.get("/v1/catalog/datacenters").await.ok_json(), json!(["dc1"]));
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalog_and_health_return_instances_in_the_same_order() {
    let (agent, api) = start().await;
    let mut names: Vec<String> = ["delta", "alpha", "echo", "charlie", "bravo"].map(String::from).to_vec();
    // Register in a random order.
    names.sort_by_key(|_| uuid::Uuid::new_v4());
    for (i, n) in names.iter().enumerate() {
        api.register(&json!({"Node": n, "Address": format!("10.2.0.{i}"),
            "Service": {"ID": format!("api-{n}"), "Service": "api", "Port": 9000 + i}}))
            .await;
    }
    let cat = api.get("/v1/catalog/service/api").await.ok_json();
    let health = api.get("/v1/health/service/api").await.ok_json();
    let cat_nodes = field_list(&cat, "Node");
    let health_nodes: Vec<String> =
        health.as_array().unwrap().iter().map(|e| e["Node"]["Node"].as_str().unwrap().to_string()).collect();
    assert_eq!(cat_nodes, health_nodes, "registered as {names:?}");
    assert_eq!(cat_nodes, ["alpha", "bravo", "charlie", "delta", "echo"]);
    for (c, h) in cat.as_array().unwrap().iter().zip(health.as_array().unwrap()) {
        assert_eq!(c["ServicePort"], h["Service"]["Port"]);
    }
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_on_nodes_and_service_instances() {
    let (agent, api) = start().await;
    two_web_nodes(&api).await;
    let q = enc(r#"Meta.rack == "r1""#);
    let v = api.get(&format!("/v1/catalog/nodes?filter={q}")).await.ok_json();
    assert_eq!(field_list(&v, "Node"), ["n1"]);
    let q = enc(r#"ServiceTags contains "v1""#);
    let v = api.get(&format!("/v1/catalog/service/web?filter={q}")).await.ok_json();
    assert_eq!(field_list(&v, "ServiceID"), ["web1"]);
    let q = enc("ServicePort == 81");
    let v = api.get(&format!("/v1/catalog/service/web?filter={q}")).await.ok_json();
    assert_eq!(field_list(&v, "ServiceID"), ["web2"]);
    let bad = enc("ServiceTags contains");
    api.get(&format!("/v1/catalog/service/web?filter={bad}")).await.expect(StatusCode::BAD_REQUEST);
    api.get(&format!("/v1/catalog/nodes?filter={bad}")).await.expect(StatusCode::BAD_REQUEST);
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_list_honours_filter() {
    let (agent, api) = start().await;
    two_web_nodes(&api).await;
    let q = enc(r#"ServiceTags contains "v1""#);
    let v = api.get(&format!("/v1/catalog/services?filter={q}")).await.ok_json();
    assert_eq!(v, json!({"web": ["v1"]}));
    let bad = enc("ServiceTags contains");
    api.get(&format!("/v1/catalog/services?filter={bad}")).await.expect(StatusCode::BAD_REQUEST);
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tags_with_equals_signs_and_idempotent_registration() {
    let (agent, api) = start().await;
    let body = json!({"Node": "tn", "Address": "10.6.0.1",
        "Service": {"ID": "t1", "Service": "routed", "Tags": ["traefik.enable=true"], "Port": 1},
        "Check": {"CheckID": "t1c", "Name": "t1c", "Status": "passing", "ServiceID": "t1"}});
    api.register(&body).await;
    for q in ["tag=traefik.enable%3Dtrue", "tag=traefik.enable=true"] {
        let v = api.get(&format!("/v1/catalog/service/routed?{q}")).await.ok_json();
        assert_eq!(field_list(&v, "ServiceID"), ["t1"], "{q}");
    }
    // Re-registering exactly the same thing changes nothing a watcher could see.
    let before = api.get("/v1/health/service/routed").await.index();
    api.register(&body).await;
    assert_eq!(api.get("/v1/health/service/routed").await.index(), before);
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_services_honour_filter() {
    let (agent, api) = start().await;
    two_web_nodes(&api).await;
    api.register(&json!({"Node": "n1", "Address": "10.0.0.1", "NodeMeta": {"rack": "r1"},
        "Service": {"ID": "db", "Service": "db", "Port": 5432}}))
        .await;
    let q = enc("Port == 5432");
    let v = api.get(&format!("/v1/catalog/node/n1?filter={q}")).await.ok_json();
    let ids: Vec<&String> = v["Services"].as_object().expect("Services map").keys().collect();
    assert_eq!(ids, ["db"]);
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_meta_parameter_filters_by_node_metadata() {
    let (agent, api) = start().await;
    two_web_nodes(&api).await;
    let nodes = api.get("/v1/catalog/nodes?node-meta=rack:r1").await.ok_json();
    assert_eq!(field_list(&nodes, "Node"), ["n1"]);
    // Prometheus' consul_sd sends node-meta on catalog/services.
    let services = api.get("/v1/catalog/services?node-meta=rack:r1").await.ok_json();
    assert_eq!(services, json!({"web": ["v1"]}));
    let inst = api.get("/v1/catalog/service/web?node-meta=rack:r1").await.ok_json();
    assert_eq!(field_list(&inst, "ServiceID"), ["web1"]);
    let health = api.get("/v1/health/service/web?node-meta=rack:r1").await.ok_json();
    assert_eq!(health.as_array().map(Vec::len), Some(1), "{health}");
    assert_eq!(health[0]["Node"]["Node"], "n1");
    agent.shutdown().await;
}
