//! `/v1/query`: prepared-query CRUD with Consul's shapes and errors, blocking lists,
//! execution (health, tags, metadata, `near`, `limit`), templates, session-bound queries
//! and ACLs.

use http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::acl::{ROOT, start_acl, token_with_rules};
use crate::support::{Api, Resp, start};

async fn post(api: &Api, body: &Value) -> Resp {
    api.request(Method::POST, "/v1/query", serde_json::to_vec(body).expect("JSON")).await
}

/// Creates a query, asserting success; returns its ID.
async fn create(api: &Api, body: &Value) -> String {
    let v = post(api, body).await.ok_json();
    let id = v["ID"].as_str().unwrap_or_else(|| panic!("no ID in {v}")).to_string();
    assert_eq!(v.as_object().map(|o| o.len()), Some(1), "only the ID: {v}");
    id
}

/// Asserts a 500 whose text is `want`.
#[track_caller]
fn fails_with(r: Resp, status: StatusCode, want: &str) {
    assert_eq!((r.status, r.text()), (status, want.to_string()));
}

fn node_names(execute: &Value) -> Vec<String> {
    let mut v: Vec<String> = execute["Nodes"]
        .as_array()
        .unwrap_or_else(|| panic!("Nodes in {execute}"))
        .iter()
        .map(|n| n["Node"]["Node"].as_str().expect("node name").to_string())
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_read_update_delete_with_consuls_shapes() {
    let (agent, api) = start().await;
    let id = create(&api, &json!({"Name": "my-query", "Service": {"Service": "redis"}})).await;
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "a UUID: {id}");

    let r = api.get(&format!("/v1/query/{id}")).await.expect(StatusCode::OK);
    let index = r.index();
    let v = r.json();
    let q = &v[0];
    assert_eq!(v.as_array().map(Vec::len), Some(1));
    assert_eq!(
        q,
        &json!({
            "ID": id, "Name": "my-query", "Session": "", "Token": "",
            "Template": {"Type": "", "Regexp": "", "RemoveEmptyTags": false},
            "Service": {
                "Service": "redis",
                "Failover": {"NearestN": 0, "Datacenters": null, "Targets": null},
                "OnlyPassing": false, "IgnoreCheckIDs": null, "Near": "", "Tags": null,
                "NodeMeta": null, "ServiceMeta": null, "Connect": false,
            },
            "DNS": {"TTL": ""},
            "CreateIndex": index, "ModifyIndex": index,
        })
    );

    tracing::info!("--- update: the whole definition is replaced");
    let body = json!({
        "Name": "my-query",
        "Service": {"Service": "redis", "Failover": {"NearestN": 3, "Datacenters": ["dc2"]},
                    "OnlyPassing": true, "Tags": ["primary", "!experimental"],
                    "NodeMeta": {"instance_type": "m3.large"}, "ServiceMeta": {"env": "prod"}},
        "DNS": {"TTL": "10s"},
    });
    let r = api.put_json(&format!("/v1/query/{id}"), &body).await.expect(StatusCode::OK);
    assert!(r.body.is_empty(), "an update answers an empty 200: {:?}", r.text());
    let v = api.get("/v1/query").await.ok_json();
    assert_eq!(v.as_array().map(Vec::len), Some(1));
    let q = &v[0];
    assert_eq!(q["Service"]["Failover"], json!({"NearestN": 3, "Datacenters": ["dc2"], "Targets": null}));
    assert_eq!(q["Service"]["Tags"], json!(["primary", "!experimental"]));
    assert_eq!(q["Service"]["NodeMeta"], json!({"instance_type": "m3.large"}));
    assert_eq!(q["DNS"]["TTL"], "10s");
    assert_eq!(q["CreateIndex"], index);
    assert!(q["ModifyIndex"].as_u64().unwrap() > index, "{q}");

    tracing::info!("--- delete");
    let r = api.delete(&format!("/v1/query/{id}")).await.expect(StatusCode::OK);
    assert!(r.body.is_empty());
    fails_with(api.get(&format!("/v1/query/{id}")).await, StatusCode::NOT_FOUND, "Query not found");
    assert_eq!(api.get("/v1/query").await.ok_json(), json!([]));
    fails_with(
        api.delete(&format!("/v1/query/{id}")).await,
        StatusCode::INTERNAL_SERVER_ERROR,
        &format!("Cannot modify non-existent prepared query: '{id}'"),
    );
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_definitions_get_consuls_errors() {
    let (agent, api) = start().await;
    create(&api, &json!({"Name": "Web", "Service": {"Service": "web"}})).await;
    let cases = [
        (json!({"Name": "web", "Service": {"Service": "x"}}), "name 'web' aliases an existing query name"),
        (json!({"Name": "x"}), "Invalid prepared query: Must provide a Service name to query"),
        (json!({"Service": {"Service": "x"}}), "Invalid prepared query: Must be bound to a session"),
        (
            json!({"Name": "x", "Service": {"Service": "x", "Failover": {"NearestN": -1}}}),
            "Invalid prepared query: Bad NearestN '-1', must be >= 0",
        ),
        (
            json!({"Name": "x", "Token": "<hidden>", "Service": {"Service": "x"}}),
            "Invalid prepared query: Bad Token '<hidden>', it looks like a query definition with a redacted token was submitted",
        ),
        (
            json!({"ID": "11111111-1111-4111-8111-111111111111", "Name": "x", "Service": {"Service": "x"}}),
            "ID must be empty when creating a new prepared query",
        ),
        (
            json!({"Name": "x", "Session": "11111111-1111-4111-8111-111111111111", "Service": {"Service": "x"}}),
            r#"invalid session "11111111-1111-4111-8111-111111111111""#,
        ),
        (
            json!({"Name": "x", "Template": {"Type": "glob"}, "Service": {"Service": "x"}}),
            "failed compiling template: Bad Template.Type 'glob'",
        ),
    ];
    for (body, want) in cases {
        fails_with(post(&api, &body).await, StatusCode::INTERNAL_SERVER_ERROR, want);
    }
    fails_with(api.get("/v1/query/nothing/execute").await, StatusCode::NOT_FOUND, "Query not found");
    fails_with(api.get("/v1/query/nothing/explain").await, StatusCode::NOT_FOUND, "Query not found");
    let catch_all = json!({"Name": "", "Template": {"Type": "name_prefix_match"}, "Service": {"Service": "${name.full}"}});
    create(&api, &catch_all).await;
    fails_with(
        post(&api, &catch_all).await,
        StatusCode::INTERNAL_SERVER_ERROR,
        "a query template with an empty name already exists",
    );
    fails_with(
        api.request(Method::POST, "/v1/query", "").await,
        StatusCode::BAD_REQUEST,
        "Request decode failed: EOF",
    );
    let missing = "22222222-2222-4222-8222-222222222222";
    fails_with(
        api.put_json(&format!("/v1/query/{missing}"), &json!({"Name": "y", "Service": {"Service": "y"}}))
            .await,
        StatusCode::INTERNAL_SERVER_ERROR,
        &format!("Cannot modify non-existent prepared query: '{missing}'"),
    );
    // The catch-all template created above answers every name, a missing ID included.
    let v = api.get(&format!("/v1/query/{missing}/execute")).await.ok_json();
    assert_eq!(v["Service"], missing);
    let r = api.put(&format!("/v1/query/{missing}/execute"), "").await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{}", r.text());
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_list_blocks_until_a_query_changes() {
    let (agent, api) = start().await;
    let r = api.get("/v1/query").await.expect(StatusCode::OK);
    let index = r.index();
    let waiter = {
        let api = api.clone();
        tokio::spawn(async move { api.get(&format!("/v1/query?index={index}&wait=20s")).await })
    };
    let id = create(&api, &json!({"Name": "later", "Service": {"Service": "web"}})).await;
    let r = waiter.await.expect("blocking list").expect(StatusCode::OK);
    assert!(r.index() > index, "the index moved: {} > {index}", r.index());
    assert_eq!(r.json()[0]["ID"], id.as_str());
    agent.shutdown().await;
}

/// `db` on n1 (primary, passing), n2 (primary + experimental, warning), n3 (replica,
/// passing, rack b).
async fn three_db_instances(api: &Api) {
    for (node, tags, status, rack) in [
        ("n1", json!(["primary"]), "passing", "a"),
        ("n2", json!(["primary", "experimental"]), "warning", "a"),
        ("n3", json!(["replica"]), "passing", "b"),
    ] {
        api.register(&json!({
            "Node": node, "Address": format!("10.5.0.{}", &node[1..]), "NodeMeta": {"rack": rack},
            "Service": {"ID": "db", "Service": "db", "Port": 5432, "Tags": tags, "Meta": {"host": node}},
            "Check": {"CheckID": "db-alive", "Name": "db alive", "Status": status, "ServiceID": "db"},
        }))
        .await;
    }
}

async fn execute(api: &Api, name: &str) -> Value {
    api.get(&format!("/v1/query/{name}/execute")).await.ok_json()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn execution_filters_health_tags_and_metadata() {
    let (agent, api) = start().await;
    three_db_instances(&api).await;
    create(&api, &json!({"Name": "db-all", "Service": {"Service": "db"}, "DNS": {"TTL": "7s"}})).await;
    let v = execute(&api, "db-all").await;
    assert_eq!(node_names(&v), ["n1", "n2", "n3"], "warning instances are healthy");
    assert_eq!(v["Service"], "db");
    assert_eq!(v["Datacenter"], "dc1");
    assert_eq!(v["Failovers"], 0);
    assert_eq!(v["DNS"], json!({"TTL": "7s"}));
    // Each result is exactly what /v1/health/service shows for the instance.
    let health = api.get("/v1/health/service/db").await.ok_json();
    for n in v["Nodes"].as_array().unwrap() {
        let same = health.as_array().unwrap().iter().find(|h| h["Node"]["Node"] == n["Node"]["Node"]);
        assert_eq!(Some(n), same, "the health entry's JSON");
    }

    let cases = [
        (json!({"Service": "db", "OnlyPassing": true}), vec!["n1", "n3"]),
        (json!({"Service": "db", "Tags": ["primary"]}), vec!["n1", "n2"]),
        (json!({"Service": "db", "Tags": ["PRIMARY", "!experimental"]}), vec!["n1"]),
        (json!({"Service": "db", "NodeMeta": {"rack": "b"}}), vec!["n3"]),
        (json!({"Service": "db", "ServiceMeta": {"host": "n2"}}), vec!["n2"]),
        (json!({"Service": "nothing"}), vec![]),
    ];
    for (i, (service, want)) in cases.into_iter().enumerate() {
        let name = format!("case-{i}");
        create(&api, &json!({"Name": name, "Service": service})).await;
        assert_eq!(node_names(&execute(&api, &name).await), want, "{service}");
    }

    tracing::info!("--- n3's check turns critical: n3 leaves the results");
    api.register(&json!({"Node": "n3", "Address": "10.5.0.3",
        "Check": {"CheckID": "db-alive", "Name": "db alive", "Status": "critical", "ServiceID": "db"}}))
        .await;
    assert_eq!(node_names(&execute(&api, "db-all").await), ["n1", "n2"]);
    create(
        &api,
        &json!({"Name": "db-ignoring", "Service": {"Service": "db", "IgnoreCheckIDs": ["db-alive"]}}),
    )
    .await;
    assert_eq!(node_names(&execute(&api, "db-ignoring").await), ["n1", "n2", "n3"], "an ignored check");
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn near_puts_the_node_first_and_limit_cuts() {
    let (agent, api) = start().await;
    three_db_instances(&api).await;
    let id = create(&api, &json!({"Name": "db", "Service": {"Service": "db"}})).await;
    for _ in 0..5 {
        let v = api.get(&format!("/v1/query/{id}/execute?near=n2")).await.ok_json();
        assert_eq!(v["Nodes"][0]["Node"]["Node"], "n2", "the near node comes first: {v}");
        let v = api.get("/v1/query/db/execute?limit=2").await.ok_json();
        assert_eq!(v["Nodes"].as_array().map(Vec::len), Some(2));
    }
    create(&api, &json!({"Name": "db-near-n3", "Service": {"Service": "db", "Near": "n3"}})).await;
    let v = api.get("/v1/query/db-near-n3/execute").await.ok_json();
    assert_eq!(v["Nodes"][0]["Node"]["Node"], "n3", "the query's own Near");
    let v = api.get("/v1/query/db-near-n3/execute?near=n1").await.ok_json();
    assert_eq!(v["Nodes"][0]["Node"]["Node"], "n1", "the request's near wins");
    fails_with(
        api.get("/v1/query/db/execute?limit=two").await,
        StatusCode::INTERNAL_SERVER_ERROR,
        r#"Bad limit: strconv.Atoi: parsing "two": invalid syntax"#,
    );
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn templates_resolve_by_longest_prefix_and_interpolate() {
    let (agent, api) = start().await;
    api.register(&json!({"Node": "c1", "Address": "10.6.0.1",
        "Service": {"ID": "customer", "Service": "customer", "Port": 3306, "Tags": ["primary"]}}))
        .await;
    api.register(&json!({"Node": "c2", "Address": "10.6.0.2",
        "Service": {"ID": "customer", "Service": "customer", "Port": 3306, "Tags": ["replica"]}}))
        .await;
    let catch_all = create(
        &api,
        &json!({"Name": "", "Template": {"Type": "name_prefix_match"},
        "Service": {"Service": "${name.full}"}}),
    )
    .await;
    let geo = create(
        &api,
        &json!({
            "Name": "geo-db-",
            "Template": {"Type": "name_prefix_match", "Regexp": "^geo-db-(.*?)-([^\\-]+?)$"},
            "Service": {"Service": "${match(1)}", "Tags": ["${match(2)}"], "Near": "${name.suffix}"},
        }),
    )
    .await;
    create(&api, &json!({"Name": "geo-db-static", "Service": {"Service": "customer"}})).await;
    create(
        &api,
        &json!({"Name": "opt-", "Template": {"Type": "name_prefix_match", "Regexp": "^opt-(primary)?",
        "RemoveEmptyTags": true}, "Service": {"Service": "customer", "Tags": ["${match(1)}"]}}),
    )
    .await;

    let explained = api.get("/v1/query/geo-db-customer-primary/explain").await.ok_json();
    let q = &explained["Query"];
    assert_eq!(q["ID"], geo.as_str());
    assert_eq!(q["Name"], "geo-db-");
    assert_eq!(q["Service"]["Service"], "customer");
    assert_eq!(q["Service"]["Tags"], json!(["primary"]));
    assert_eq!(q["Service"]["Near"], "customer-primary");
    let v = execute(&api, "geo-db-customer-primary").await;
    assert_eq!(node_names(&v), ["c1"]);
    assert_eq!(v["Service"], "customer");

    let v = api.get("/v1/query/customer/explain").await.ok_json();
    assert_eq!(
        (v["Query"]["ID"].as_str(), &v["Query"]["Service"]["Service"]),
        (Some(catch_all.as_str()), &json!("customer"))
    );
    assert_eq!(node_names(&execute(&api, "customer").await), ["c1", "c2"], "the catch-all");
    let v = api.get("/v1/query/geo-db-static/explain").await.ok_json();
    assert_eq!(v["Query"]["Template"]["Type"], "", "a static name beats the templates");
    assert_eq!(node_names(&execute(&api, "opt-primary").await), ["c1"]);
    assert_eq!(node_names(&execute(&api, "opt-other").await), ["c1", "c2"], "the empty tag is removed");
    fails_with(
        api.get(&format!("/v1/query/{geo}/execute")).await,
        StatusCode::INTERNAL_SERVER_ERROR,
        "prepared query templates can only be resolved up by name, not by ID",
    );
    let r = post(
        &api,
        &json!({"Name": "bad-", "Template": {"Type": "name_prefix_match", "Regexp": "("},
        "Service": {"Service": "x"}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(r.text().starts_with("failed compiling template: Bad Regexp: "), "{}", r.text());
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_bound_to_a_session_goes_with_it() {
    let (agent, api) = start().await;
    let node = agent.config.node_name.clone();
    let sid = api.session(&json!({"Node": node, "Name": "owner"})).await;
    let bound = create(&api, &json!({"Session": sid, "Service": {"Service": "web"}})).await;
    let kept = create(&api, &json!({"Name": "kept", "Service": {"Service": "web"}})).await;
    let v = api.get(&format!("/v1/query/{bound}")).await.ok_json();
    assert_eq!(v[0]["Session"], sid.as_str());
    assert_eq!(v[0]["Name"], "");

    api.put(&format!("/v1/session/destroy/{sid}"), "").await.expect(StatusCode::OK);
    fails_with(api.get(&format!("/v1/query/{bound}")).await, StatusCode::NOT_FOUND, "Query not found");
    let left: Vec<Value> = api.get("/v1/query").await.ok_json().as_array().unwrap().clone();
    assert_eq!(left.iter().map(|q| q["ID"].clone()).collect::<Vec<_>>(), [json!(kept)]);
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acls_guard_names_redact_tokens_and_filter_results() {
    let (agent, api) = start_acl(|_, _| {}).await;
    let root = api.with_token(ROOT);
    root.register(&json!({"Node": "w1", "Address": "10.7.0.1",
        "Service": {"ID": "web", "Service": "web", "Port": 80}}))
        .await;
    let team = api.with_token(
        &token_with_rules(
            &root,
            r#"query_prefix "team-" { policy = "write" } service_prefix "" { policy = "read" } node_prefix "" { policy = "read" }"#,
        )
        .await,
    );
    let reader =
        api.with_token(&token_with_rules(&root, r#"query_prefix "team-" { policy = "read" }"#).await);

    tracing::info!("--- writes need query:write on the name");
    let mine =
        create(&team, &json!({"Name": "team-web", "Token": ROOT, "Service": {"Service": "web"}})).await;
    let r = post(&team, &json!({"Name": "other-web", "Service": {"Service": "web"}})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.text().starts_with("Permission denied: token with AccessorID"), "{}", r.text());
    assert!(r.text().contains("query:write"), "{}", r.text());
    let other = create(&root, &json!({"Name": "other-web", "Service": {"Service": "web"}})).await;
    let r = team
        .put_json(&format!("/v1/query/{other}"), &json!({"Name": "team-x", "Service": {"Service": "web"}}))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "renaming another's query into my prefix: {}", r.text());
    assert_eq!(team.delete(&format!("/v1/query/{other}")).await.status, StatusCode::FORBIDDEN);

    tracing::info!("--- reads: query:read, tokens hidden without acl:write");
    let r = reader.get("/v1/query").await.expect(StatusCode::OK);
    assert_eq!(r.header("X-Consul-Results-Filtered-By-ACLs"), Some("true"));
    let v = r.json();
    assert_eq!(v.as_array().map(Vec::len), Some(1), "{v}");
    assert_eq!((v[0]["ID"].as_str(), v[0]["Token"].as_str()), (Some(mine.as_str()), Some("<hidden>")));
    assert_eq!(reader.get(&format!("/v1/query/{other}")).await.status, StatusCode::FORBIDDEN);
    assert_eq!(reader.get("/v1/query/other-web/explain").await.status, StatusCode::FORBIDDEN);
    let v = root.get(&format!("/v1/query/{mine}")).await.ok_json();
    assert_eq!(v[0]["Token"], ROOT, "acl:write sees the token");
    let r = root.get("/v1/query").await.expect(StatusCode::OK);
    assert_eq!(r.header("X-Consul-Results-Filtered-By-ACLs"), None);

    tracing::info!("--- execution: results filtered by the caller's token, or the query's own");
    let r = reader.get("/v1/query/other-web/execute").await.expect(StatusCode::OK);
    assert_eq!(r.header("X-Consul-Results-Filtered-By-ACLs"), Some("true"));
    assert_eq!(node_names(&r.json()), Vec::<String>::new());
    assert_eq!(node_names(&team.get("/v1/query/other-web/execute").await.ok_json()), ["w1"]);
    let r = api.get("/v1/query/team-web/execute").await.expect(StatusCode::OK);
    assert_eq!(node_names(&r.json()), ["w1"], "anonymous runs team-web under the query's token");
    assert_eq!(r.header("X-Consul-Results-Filtered-By-ACLs"), None);

    tracing::info!("--- an unnamed query: its ID is the secret");
    let sid = root.session(&json!({"Node": agent.config.node_name, "Name": "s"})).await;
    let unnamed = create(&root, &json!({"Session": sid, "Token": ROOT, "Service": {"Service": "web"}})).await;
    let v = reader.get(&format!("/v1/query/{unnamed}")).await.ok_json();
    assert_eq!(v[0]["Token"], "<hidden>");
    let listed = team.get("/v1/query").await.ok_json();
    assert!(listed.as_array().unwrap().iter().all(|q| q["ID"] != unnamed.as_str()), "never listed: {listed}");
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_without_other_datacenters_tries_none() {
    let (agent, api) = start().await;
    create(
        &api,
        &json!({"Name": "far", "Service": {"Service": "absent",
        "Failover": {"NearestN": 3, "Datacenters": ["dc2", "dc3"]}}}),
    )
    .await;
    let v = execute(&api, "far").await;
    // Only dc1 is known: unknown datacenters are skipped, as in Consul.
    assert_eq!(
        (v["Nodes"].clone(), v["Failovers"].clone(), v["Datacenter"].clone()),
        (json!([]), json!(0), json!("dc1"))
    );
    agent.shutdown().await;
}
