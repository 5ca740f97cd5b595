//! The agent's own services and checks: `/v1/agent/service*`, `/v1/agent/check*`,
//! maintenance, reload, persistence, and anti-entropy into the catalog.

use std::time::Duration;

use http::{Method, StatusCode};
use sekisho::testing::eventually;
use serde_json::{Value, json};

use crate::support::{Api, start, start_with};

const DEADLINE: Duration = Duration::from_secs(10);

/// Waits until the catalog's health entry for check `id` has `status` (and `output`, if given).
async fn catalog_check(api: &Api, service: &str, id: &str, status: &str, output: Option<&str>) -> Value {
    let what = format!("catalog check {id} of {service} becomes {status}");
    eventually(DEADLINE, &what, || async {
        let checks = api.get(&format!("/v1/health/checks/{service}")).await.json();
        let c = checks.as_array()?.iter().find(|c| c["CheckID"] == id)?.clone();
        let ok = c["Status"] == status && output.is_none_or(|o| c["Output"] == o);
        ok.then_some(c)
    })
    .await
}

async fn catalog_has_service(api: &Api, service: &str, id: &str, present: bool) {
    let what = format!("service {id} present={present} in the catalog");
    eventually(DEADLINE, &what, || async {
        let list = api.get(&format!("/v1/catalog/service/{service}")).await.json();
        let found = list.as_array()?.iter().any(|s| s["ServiceID"] == id);
        (found == present).then_some(())
    })
    .await;
}

async fn register_web(api: &Api) {
    api.put_json(
        "/v1/agent/service/register",
        &json!({"Name": "web", "ID": "web1", "Port": 80, "Tags": ["v1"], "Check": {"TTL": "30s"}}),
    )
    .await
    .expect(StatusCode::OK);
}

#[tokio::test]
async fn a_registered_service_is_synced_and_ttl_updates_reach_the_catalog() {
    let (_agent, api) = start().await;
    register_web(&api).await;
    let services = api.get("/v1/agent/services").await.ok_json();
    let web = &services["web1"];
    assert_eq!((web["Service"].as_str(), web["Port"].as_u64()), (Some("web"), Some(80)));
    assert_eq!(web["Meta"], json!({}));
    assert_eq!(web["Datacenter"], "dc1");
    assert_eq!(web["Weights"], json!({"Passing": 1, "Warning": 1}));

    // New checks start critical, in the agent and (after anti-entropy) in the catalog.
    let checks = api.get("/v1/agent/checks").await.ok_json();
    assert_eq!(checks["service:web1"]["Status"], "critical");
    assert_eq!(checks["service:web1"]["ServiceName"], "web");
    assert_eq!(checks["service:web1"]["Type"], "ttl");
    catalog_check(&api, "web", "service:web1", "critical", None).await;
    let r = api.get("/v1/agent/health/service/id/web1").await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.json()["AggregatedStatus"], "critical");

    api.put("/v1/agent/check/pass/service:web1?note=all%20good", "").await.expect(StatusCode::OK);
    catalog_check(&api, "web", "service:web1", "passing", Some("all good")).await;
    let r = api.get("/v1/agent/health/service/name/web").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()[0]["Service"]["ID"], "web1");

    api.put("/v1/agent/check/warn/service:web1", "").await.expect(StatusCode::OK);
    let r = api.get("/v1/agent/health/service/id/web1?format=text").await;
    assert_eq!((r.status, r.text()), (StatusCode::TOO_MANY_REQUESTS, "warning".to_owned()));

    let body = json!({"Status": "critical", "Output": "disk full"});
    api.put_json("/v1/agent/check/update/service:web1", &body).await.expect(StatusCode::OK);
    catalog_check(&api, "web", "service:web1", "critical", Some("disk full")).await;
    let r = api.put_json("/v1/agent/check/update/service:web1", &json!({"Status": "bogus"})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.text().contains("Invalid check status"), "{}", r.text());

    let r = api.get("/v1/agent/health/service/name/nope").await;
    assert_eq!((r.status, r.text()), (StatusCode::NOT_FOUND, "ServiceName nope Not Found".to_owned()));
    let r = api.get("/v1/agent/health/service/id/nope").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn anti_entropy_restores_hand_deleted_entries_and_removes_deregistered_ones() {
    let (agent, api) = start().await;
    register_web(&api).await;
    catalog_has_service(&api, "web", "web1", true).await;
    let node = agent.config.node_name.clone();
    api.put_json("/v1/catalog/deregister", &json!({"Node": node, "ServiceID": "web1"}))
        .await
        .expect(StatusCode::OK);
    catalog_has_service(&api, "web", "web1", true).await;
    catalog_check(&api, "web", "service:web1", "critical", None).await;

    // A check the agent does not own is removed from its node; the servers' own entries stay.
    api.register(&json!({"Node": node, "Address": "127.0.0.1", "SkipNodeUpdate": true,
        "Check": {"CheckID": "stray", "Name": "stray", "Status": "passing"}}))
        .await;
    eventually(DEADLINE, "the stray check is removed", || async {
        let checks = api.get(&format!("/v1/health/node/{node}")).await.json();
        let ids: Vec<String> =
            checks.as_array()?.iter().filter_map(|c| c["CheckID"].as_str().map(str::to_owned)).collect();
        (!ids.contains(&"stray".to_owned()) && ids.contains(&"serfHealth".to_owned())).then_some(())
    })
    .await;

    api.put("/v1/agent/service/deregister/web1", "").await.expect(StatusCode::OK);
    catalog_has_service(&api, "web", "web1", false).await;
    let r = api.put("/v1/agent/service/deregister/web1", "").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.text().contains("Unknown service ID \"web1\""), "{}", r.text());
    assert!(api.get("/v1/catalog/service/consul").await.json().as_array().is_some_and(|a| !a.is_empty()));
}

#[tokio::test]
async fn tags_changed_in_the_catalog_are_kept_with_enable_tag_override() {
    let (agent, api) = start().await;
    let body = json!({"name": "db", "port": 5432, "tags": ["replica"], "enable_tag_override": true});
    api.put_json("/v1/agent/service/register", &body).await.expect(StatusCode::OK);
    catalog_has_service(&api, "db", "db", true).await;
    let node = agent.config.node_name.clone();
    api.register(&json!({"Node": node, "Address": "127.0.0.1", "SkipNodeUpdate": true,
        "Service": {"ID": "db", "Service": "db", "Port": 5432, "Tags": ["primary"], "EnableTagOverride": true}}))
    .await;
    eventually(DEADLINE, "the agent adopts the catalog's tags", || async {
        let s = api.get("/v1/agent/service/db").await.json();
        (s["Tags"] == json!(["primary"])).then_some(())
    })
    .await;
    let list = api.get("/v1/catalog/service/db").await.json();
    assert_eq!(list[0]["ServiceTags"], json!(["primary"]));
}

#[tokio::test]
async fn maintenance_mode_marks_the_node_and_services_critical() {
    let (_agent, api) = start().await;
    register_web(&api).await;
    api.put("/v1/agent/check/pass/service:web1", "").await.expect(StatusCode::OK);

    let r = api.put("/v1/agent/maintenance", "").await;
    assert_eq!((r.status, r.text()), (StatusCode::BAD_REQUEST, "Missing value for enable".to_owned()));
    let r = api.put("/v1/agent/maintenance?enable=maybe", "").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    api.put("/v1/agent/maintenance?enable=true&reason=kernel%20upgrade", "").await.expect(StatusCode::OK);
    let checks = api.get("/v1/agent/checks").await.ok_json();
    assert_eq!(checks["_node_maintenance"]["Status"], "critical");
    assert_eq!(checks["_node_maintenance"]["Notes"], "kernel upgrade");
    eventually(DEADLINE, "web leaves the passing instances", || async {
        let list = api.get("/v1/health/service/web?passing").await.json();
        list.as_array()?.is_empty().then_some(())
    })
    .await;
    let r = api.get("/v1/agent/health/service/id/web1").await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.json()["AggregatedStatus"], "maintenance");
    api.put("/v1/agent/maintenance?enable=false", "").await.expect(StatusCode::OK);
    eventually(DEADLINE, "web is back", || async {
        let list = api.get("/v1/health/service/web?passing").await.json();
        (list.as_array()?.len() == 1).then_some(())
    })
    .await;

    api.put("/v1/agent/service/maintenance/web1?enable=true", "").await.expect(StatusCode::OK);
    let c = catalog_check(&api, "web", "_service_maintenance:web1", "critical", None).await;
    assert!(c["Notes"].as_str().is_some_and(|n| n.contains("no reason was provided")), "{c}");
    api.put("/v1/agent/service/maintenance/web1?enable=false", "").await.expect(StatusCode::OK);
    eventually(DEADLINE, "the service maintenance check is gone", || async {
        let checks = api.get("/v1/health/checks/web").await.json();
        (!checks.as_array()?.iter().any(|c| c["CheckID"] == "_service_maintenance:web1")).then_some(())
    })
    .await;
    let r = api.put("/v1/agent/service/maintenance/nope?enable=true", "").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_single_service_endpoint_blocks_on_its_content_hash() {
    let (_agent, api) = start().await;
    register_web(&api).await;
    let r = api.get("/v1/agent/service/web1").await.expect(StatusCode::OK);
    let hash = r.header("X-Consul-ContentHash").expect("hash header").to_owned();
    assert_eq!(r.json()["ContentHash"], hash.as_str());

    // Unchanged: the wait runs out and the same hash comes back.
    let r = api.get(&format!("/v1/agent/service/web1?hash={hash}&wait=100ms")).await;
    assert_eq!(r.header("X-Consul-ContentHash"), Some(hash.as_str()));

    let waiter = {
        let api = api.clone();
        let hash = hash.clone();
        tokio::spawn(async move { api.get(&format!("/v1/agent/service/web1?hash={hash}&wait=30s")).await })
    };
    tokio::task::yield_now().await;
    let body = json!({"Name": "web", "ID": "web1", "Port": 81, "Check": {"TTL": "30s"}});
    api.put_json("/v1/agent/service/register", &body).await.expect(StatusCode::OK);
    let r = tokio::time::timeout(DEADLINE, waiter).await.expect("the blocked read returns").expect("task");
    assert_eq!(r.json()["Port"], 81);
    assert_ne!(r.header("X-Consul-ContentHash"), Some(hash.as_str()));
    let r = api.get("/v1/agent/service/nope").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn bad_registrations_are_refused_and_change_nothing() {
    let (_agent, api) = start().await;
    let cases = [
        (json!({"Port": 80}), "Missing service name"),
        (json!({"Name": "x", "Check": {"Args": ["/bin/true"], "Interval": "10s"}}), "Scripts are disabled"),
        (json!({"Name": "x", "Port": "eighty"}), "Port"),
    ];
    for (body, want) in cases {
        let r = api.put_json("/v1/agent/service/register", &body).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}");
        assert!(r.text().contains(want), "{body}: {}", r.text());
    }
    let r = api.request(Method::PUT, "/v1/agent/service/register", "{not json").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = api
        .put_json("/v1/agent/check/register", &json!({"Name": "c", "TTL": "5s", "ServiceID": "ghost"}))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.text().contains("ghost"), "{}", r.text());
    assert_eq!(api.get("/v1/agent/services").await.ok_json(), json!({}));
    assert_eq!(api.get("/v1/agent/checks").await.ok_json(), json!({}));

    // TTL updates only apply to TTL checks.
    api.put_json(
        "/v1/agent/check/register",
        &json!({"Name": "port", "TCP": "127.0.0.1:1", "Interval": "1h"}),
    )
    .await
    .expect(StatusCode::OK);
    let r = api.put("/v1/agent/check/pass/port", "").await;
    assert!(r.status.is_client_error() || r.status.is_server_error());
    assert!(r.text().contains("TTL"), "{}", r.text());
    let r = api.put("/v1/agent/check/pass/nope", "").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    api.put("/v1/agent/check/deregister/port", "").await.expect(StatusCode::OK);
    assert_eq!(api.put("/v1/agent/check/deregister/port", "").await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn replace_existing_checks_drops_checks_missing_from_the_new_definition() {
    let (_agent, api) = start().await;
    let two =
        json!({"Name": "web", "Checks": [{"TTL": "30s", "CheckID": "a"}, {"TTL": "30s", "CheckID": "b"}]});
    api.put_json("/v1/agent/service/register", &two).await.expect(StatusCode::OK);
    let one = json!({"Name": "web", "Checks": [{"TTL": "30s", "CheckID": "a"}]});
    api.put_json("/v1/agent/service/register", &one).await.expect(StatusCode::OK);
    let checks = api.get("/v1/agent/checks").await.ok_json();
    assert!(checks.get("b").is_some(), "kept without the flag: {checks}");
    api.put_json("/v1/agent/service/register?replace-existing-checks", &one).await.expect(StatusCode::OK);
    let checks = api.get("/v1/agent/checks").await.ok_json();
    assert!(checks.get("a").is_some() && checks.get("b").is_none(), "{checks}");
}

#[tokio::test]
async fn registrations_and_maintenance_survive_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node_id = uuid::Uuid::new_v4().to_string();
    let node = format!("persist-{}", &node_id[..8]);
    let setup = |cfg: &mut sekisho::config::RuntimeConfig| {
        cfg.dev = false;
        cfg.data_dir = Some(dir.path().to_path_buf());
        cfg.node_id.clone_from(&node_id);
        cfg.node_name.clone_from(&node);
    };
    let (agent, api) = start_with(|c, _| setup(c)).await;
    register_web(&api).await;
    api.put("/v1/agent/maintenance?enable=true&reason=rebooting", "").await.expect(StatusCode::OK);
    agent.shutdown().await;

    let (_agent, api) = start_with(|c, _| setup(c)).await;
    let services = api.get("/v1/agent/services").await.ok_json();
    assert!(services.get("web1").is_some(), "{services}");
    let checks = api.get("/v1/agent/checks").await.ok_json();
    assert_eq!(checks["_node_maintenance"]["Notes"], "rebooting");
    assert!(checks.get("service:web1").is_some(), "{checks}");
}

#[tokio::test]
async fn reload_applies_added_changed_and_removed_files_and_keeps_state_on_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (agent, api) = start().await;
    let r = api.put("/v1/agent/reload", "").await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR, "no config source: {}", r.text());
    let conf = dir.path().to_path_buf();
    agent.handle().set_config_source(std::sync::Arc::new(move || {
        let flags = sekisho::config::Flags { config_dirs: vec![conf.clone()], ..Default::default() };
        let (rt, _) = sekisho::config::load(&flags).map_err(|e| e.to_string())?;
        Ok(sekisho::agent::ReloadedConfig { services: rt.services, checks: rt.checks, watches: rt.watches })
    }));
    let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).expect("write");

    write("web.json", r#"{"service": {"name": "web", "port": 80, "tags": ["v1"], "check": {"ttl": "30s"}}}"#);
    write("db.hcl", "service {\n  name = \"db\"\n  port = 5432\n}\n");
    api.put("/v1/agent/reload", "").await.expect(StatusCode::OK);
    catalog_has_service(&api, "web", "web", true).await;
    catalog_has_service(&api, "db", "db", true).await;
    api.put("/v1/agent/check/pass/service:web", "").await.expect(StatusCode::OK);

    // Changing db must not touch web's check (its TTL status stays passing).
    write("db.hcl", "service {\n  name = \"db\"\n  port = 5433\n}\n");
    api.put("/v1/agent/reload", "").await.expect(StatusCode::OK);
    assert_eq!(api.get("/v1/agent/service/db").await.ok_json()["Port"], 5433);
    assert_eq!(api.get("/v1/agent/checks").await.ok_json()["service:web"]["Status"], "passing");

    write("broken.json", r#"{"service": {"name": "x", "port": "eighty"}}"#);
    let r = api.put("/v1/agent/reload", "").await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(r.text().contains("Port"), "{}", r.text());
    assert!(api.get("/v1/agent/services").await.ok_json().get("x").is_none());
    std::fs::remove_file(dir.path().join("broken.json")).expect("rm");

    std::fs::remove_file(dir.path().join("db.hcl")).expect("rm");
    api.put("/v1/agent/reload", "").await.expect(StatusCode::OK);
    catalog_has_service(&api, "db", "db", false).await;
    assert!(api.get("/v1/agent/services").await.ok_json().get("web").is_some());
}

/// Serves `/health` with 200 on `addr` until the returned handle is aborted.
async fn health_server(listener: tokio::net::TcpListener) -> tokio::task::JoinHandle<()> {
    let app = axum::Router::new().route("/health", axum::routing::get(|| async { "ok" }));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    })
}

#[tokio::test]
async fn an_http_check_follows_its_target_going_down_and_up() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = health_server(listener).await;
    let (_agent, api) = start().await;
    let url = format!("http://{addr}/health");
    let body = json!({"name": "app", "port": addr.port(),
        "check": {"http": url, "interval": "1s", "timeout": "1s"}});
    api.put_json("/v1/agent/service/register", &body).await.expect(StatusCode::OK);
    let c = catalog_check(&api, "app", "service:app", "passing", None).await;
    assert!(c["Output"].as_str().is_some_and(|o| o.contains("200")), "{c}");
    assert_eq!(c["Type"], "http");

    server.abort();
    let _ = server.await;
    catalog_check(&api, "app", "service:app", "critical", None).await;
    eventually(DEADLINE, "app leaves the passing instances", || async {
        api.get("/v1/health/service/app?passing").await.json().as_array()?.is_empty().then_some(())
    })
    .await;

    let listener = eventually(DEADLINE, "the port can be bound again", || async {
        tokio::net::TcpListener::bind(addr).await.ok()
    })
    .await;
    let _server = health_server(listener).await;
    catalog_check(&api, "app", "service:app", "passing", None).await;
}

#[tokio::test]
async fn a_hung_script_check_is_killed_at_its_timeout() {
    let (_agent, api) = start_with(|c, _| c.enable_script_checks = true).await;
    let body =
        json!({"Name": "slow", "Args": ["sh", "-c", "sleep 30"], "Interval": "1s", "Timeout": "300ms"});
    api.put_json("/v1/agent/check/register", &body).await.expect(StatusCode::OK);
    let node = _agent.config.node_name.clone();
    let c = eventually(DEADLINE, "the script check times out", || async {
        let checks = api.get(&format!("/v1/health/node/{node}")).await.json();
        let c = checks.as_array()?.iter().find(|c| c["CheckID"] == "slow")?.clone();
        c["Output"].as_str()?.contains("Timed out").then_some(c)
    })
    .await;
    assert_eq!(c["Status"], "critical");
}

#[tokio::test]
async fn script_checks_in_config_files_need_enabling() {
    let mut cfg = sekisho::config::RuntimeConfig::for_test("dc1", "scripted");
    cfg.checks = vec![json!({"name": "disk", "args": ["/bin/true"], "interval": "10s"})];
    let e = sekisho::agent::Agent::start(cfg.clone()).await.expect_err("refused");
    assert!(e.to_string().contains("Scripts are disabled"), "{e}");
    cfg.enable_local_script_checks = true;
    let agent = sekisho::agent::Agent::start(cfg).await.expect("starts with enable_local_script_checks");
    assert!(agent.local().checks().iter().any(|c| c.check_id == "disk"));
    agent.shutdown().await;
}
