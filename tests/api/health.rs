//! `/v1/health/*`: node checks, service checks, service instances with `?passing`, states.

use http::StatusCode;
use serde_json::{Value, json};

use crate::support::{Api, enc, field_list, start};

/// Three `api` instances:
/// - `h1`: node check and service check passing;
/// - `h2`: service check warning;
/// - `h3`: service check passing but the node check critical.
async fn three_instances(api: &Api) {
    for (node, svc_status, node_status, port) in [
        ("h1", "passing", "passing", 80),
        ("h2", "warning", "passing", 80),
        ("h3", "passing", "critical", 81),
    ] {
        api.register(&json!({
            "Node": node, "Address": "10.3.0.1",
            "Service": {"ID": format!("api-{node}"), "Service": "api", "Port": port, "Tags": [node]},
            "Checks": [
                {"CheckID": "node-health", "Name": "node health", "Status": node_status},
                {"CheckID": "svc-health", "Name": "svc health", "Status": svc_status,
                 "ServiceID": format!("api-{node}"), "Output": "out"},
            ],
        }))
        .await;
    }
    // An unrelated service on h1 whose check must not show up under `api`.
    api.register(&json!({
        "Node": "h1", "Address": "10.3.0.1",
        "Service": {"ID": "other", "Service": "other", "Port": 1},
        "Check": {"CheckID": "other-health", "Name": "other", "Status": "critical", "ServiceID": "other"},
    }))
    .await;
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_checks() {
    let (agent, api) = start().await;
    three_instances(&api).await;
    let r = api.get("/v1/health/node/h1").await.expect(StatusCode::OK);
    assert!(r.index() > 0);
    let v = r.json();
    assert_eq!(sorted(field_list(&v, "CheckID")), ["node-health", "other-health", "svc-health"]);
    let svc = v.as_array().unwrap().iter().find(|c| c["CheckID"] == "svc-health").unwrap();
    assert_eq!(svc["Node"], "h1");
    assert_eq!(svc["Status"], "passing");
    assert_eq!(svc["ServiceID"], "api-h1");
    assert_eq!(svc["ServiceName"], "api");
    assert_eq!(svc["ServiceTags"], json!(["h1"]));
    assert_eq!(svc["Output"], "out");
    assert_eq!(svc["Name"], "svc health");
    let me = api.get(&format!("/v1/health/node/{}", agent.config.node_name)).await.ok_json();
    assert_eq!(me[0]["CheckID"], "serfHealth");
    assert_eq!(me[0]["Name"], "Serf Health Status");
    assert_eq!(api.get("/v1/health/node/unknown").await.ok_json(), json!([]));
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_checks() {
    let (agent, api) = start().await;
    three_instances(&api).await;
    let v = api.get("/v1/health/checks/api").await.ok_json();
    assert_eq!(field_list(&v, "Node"), ["h1", "h2", "h3"]);
    assert!(v.as_array().unwrap().iter().all(|c| c["CheckID"] == "svc-health"), "{v}");
    assert_eq!(field_list(&v, "Status"), ["passing", "warning", "passing"]);
    assert_eq!(api.get("/v1/health/checks/nope").await.ok_json(), json!([]));
    agent.shutdown().await;
}

fn instance_nodes(v: &Value) -> Vec<String> {
    v.as_array().unwrap().iter().map(|e| e["Node"]["Node"].as_str().unwrap().to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_instances_include_node_checks_and_passing_filters() {
    let (agent, api) = start().await;
    three_instances(&api).await;
    let r = api.get("/v1/health/service/api").await.expect(StatusCode::OK);
    assert!(r.index() > 0);
    let v = r.json();
    assert_eq!(instance_nodes(&v), ["h1", "h2", "h3"]);
    let h1 = &v[0];
    assert_eq!(h1["Node"]["Address"], "10.3.0.1");
    assert_eq!(h1["Node"]["Datacenter"], "dc1");
    assert_eq!(h1["Service"]["ID"], "api-h1");
    assert_eq!(h1["Service"]["Service"], "api");
    assert_eq!(h1["Service"]["Port"], 80);
    let checks = sorted(field_list(&h1["Checks"], "CheckID"));
    assert_eq!(checks, ["node-health", "svc-health"], "node checks included, other services' excluded");

    let v = api.get("/v1/health/service/api?passing").await.ok_json();
    assert_eq!(instance_nodes(&v), ["h1"], "warning and critical node checks drop instances");
    // py-consul sends passing=1.
    let v = api.get("/v1/health/service/api?passing=1").await.ok_json();
    assert_eq!(instance_nodes(&v), ["h1"]);
    let v = api.get("/v1/health/service/api?passing=false").await.ok_json();
    assert_eq!(instance_nodes(&v), ["h1", "h2", "h3"]);
    assert_eq!(api.get("/v1/health/service/nope").await.ok_json(), json!([]));
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checks_by_state() {
    let (agent, api) = start().await;
    three_instances(&api).await;
    let crit = api.get("/v1/health/state/critical").await.ok_json();
    let got: Vec<(String, String)> = crit
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["Node"].as_str().unwrap().into(), c["CheckID"].as_str().unwrap().into()))
        .collect();
    assert_eq!(got, [("h1".into(), "other-health".into()), ("h3".into(), "node-health".into())]);
    let warn = api.get("/v1/health/state/warning").await.ok_json();
    assert_eq!(field_list(&warn, "Node"), ["h2"]);
    let any = api.get("/v1/health/state/any").await.ok_json();
    // 3 nodes × 2 checks, the `other` check, and the agent's serfHealth.
    assert_eq!(any.as_array().unwrap().len(), 8, "{any}");
    let passing = api.get("/v1/health/state/passing").await.ok_json();
    assert!(passing.as_array().unwrap().iter().all(|c| c["Status"] == "passing"));
    assert_eq!(passing.as_array().unwrap().len(), 5, "{passing}");
    let r = api.get("/v1/health/state/bogus").await.expect(StatusCode::BAD_REQUEST);
    assert!(!r.text().is_empty());
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_on_health_endpoints() {
    let (agent, api) = start().await;
    three_instances(&api).await;
    let q = enc("Service.Port == 80");
    let v = api.get(&format!("/v1/health/service/api?filter={q}")).await.ok_json();
    assert_eq!(instance_nodes(&v), ["h1", "h2"]);
    let q = enc(r#"Checks.Status == "critical""#);
    let v = api.get(&format!("/v1/health/service/api?filter={q}")).await.ok_json();
    assert_eq!(instance_nodes(&v), ["h3"]);
    let q = enc("ServiceName == api");
    let v = api.get(&format!("/v1/health/state/passing?filter={q}")).await.ok_json();
    assert_eq!(field_list(&v, "Node"), ["h1", "h3"]);
    let bad = enc("Service.Port ==");
    api.get(&format!("/v1/health/service/api?filter={bad}")).await.expect(StatusCode::BAD_REQUEST);
    agent.shutdown().await;
}
