//! ACL enforcement on every HTTP route, checked against the router.
//!
//! [`CASES`] has one row per (method, route) the agent serves; [`every_route_has_a_case`]
//! reads the `.route("…", …)` calls in `src/http/*.rs`, so a new route without a row fails
//! the build's tests. For every row, an under-privileged token (one policy:
//! `key "nothing" read`, `default_policy = "deny"`) gets 403 with Consul's text, or a list
//! with the entries it may not see left out and `X-Consul-Results-Filtered-By-ACLs: true`,
//! or 409 for a transaction, and a fingerprint of the agent's state (KV, sessions, catalog,
//! health, ACL objects, local services and checks, events, keyring, autopilot) is
//! unchanged. Then a token holding exactly the row's rules gets the expected answer.
//! Destructive rows come last, `agent/leave` at the very end.

use std::collections::BTreeSet;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, StatusCode};
use sekisho::testing::{TestAgent, eventually};
use serde_json::{Value, json};

use crate::support::{Api, Resp};

/// The initial management token of the agents these tests start.
pub(crate) const ROOT: &str = "9b1c7e4a-3f0d-4d5e-8a6b-1c2d3e4f5a6b";
const KEY_A: &str = "5K9OtfP7efFrNKe5WCQvXvnaXJ5cWP0SvXiwe0kkjM4=";

/// Starts an agent with ACLs on, `default_policy = "deny"` and [`ROOT`] as the initial
/// management token; returns a client that presents no token, once the agent has
/// registered itself and the ACL bootstrap objects exist.
pub(crate) async fn start_acl(
    tune: impl FnOnce(&mut sekisho::config::RuntimeConfig, &mut sekisho::agent::Tuning),
) -> (TestAgent, Api) {
    let agent = TestAgent::start_with(|cfg, t| {
        cfg.acl = json!({"enabled": true, "default_policy": "deny", "tokens": {"initial_management": ROOT}});
        tune(cfg, t);
    })
    .await;
    let api = Api::new(&agent);
    let root = api.with_token(ROOT);
    let node = agent.config.node_name.clone();
    eventually(Duration::from_secs(10), "the agent registers itself and ACLs are set up", || {
        let root = root.clone();
        let node = node.clone();
        async move {
            let checks = root.get(&format!("/v1/health/node/{node}")).await;
            (checks.status == StatusCode::OK).then_some(())?;
            let serf = checks.json().as_array()?.iter().find(|c| c["CheckID"] == "serfHealth")?.clone();
            (serf["Status"] == "passing").then_some(())?;
            (root.get("/v1/acl/token/self").await.status == StatusCode::OK).then_some(())
        }
    })
    .await;
    (agent, api)
}

/// Creates a policy with `rules` and a token linking it; returns the token's SecretID.
pub(crate) async fn token_with_rules(root: &Api, rules: &str) -> String {
    let name = format!("p-{}", &uuid::Uuid::new_v4().to_string()[..8]);
    let r = root.put_json("/v1/acl/policy", &json!({"Name": name, "Rules": rules})).await;
    assert_eq!(r.status, StatusCode::OK, "policy with rules {rules:?}: {}", r.text());
    let t = root.put_json("/v1/acl/token", &json!({"Policies": [{"Name": name}]})).await.ok_json();
    t["SecretID"].as_str().expect("SecretID").to_string()
}

/// What the under-privileged token gets.
#[derive(Debug, Clone, Copy)]
enum Weak {
    /// 403 `Permission denied: token with AccessorID '…' lacks permission …`.
    Denied,
    /// 200 (or 404 for KV listings) with `X-Consul-Results-Filtered-By-ACLs: true`.
    Filtered,
    /// 409 with the per-operation denials (transactions).
    Conflict,
    /// The route needs no permission: this status for every caller.
    Open(u16),
}

/// A request body.
#[derive(Debug, Clone, Copy)]
enum In {
    None,
    Text(&'static str),
    /// The snapshot saved by the `GET /v1/snapshot` row.
    Snapshot,
}

/// One row: the router's (method, pattern), the concrete request, the weak token's
/// outcome, the rules that make it succeed, and the status they get.
#[derive(Debug, Clone, Copy)]
struct Case {
    method: &'static str,
    route: &'static str,
    path: &'static str,
    body: In,
    weak: Weak,
    rules: &'static str,
    ok: u16,
}

const fn case(
    method: &'static str,
    route: &'static str,
    path: &'static str,
    body: In,
    weak: Weak,
    rules: &'static str,
    ok: u16,
) -> Case {
    Case { method, route, path, body, weak, rules, ok }
}

use In::{None as NoBody, Snapshot, Text};
use Weak::{Conflict, Denied, Filtered, Open};

const AGENT_READ: &str = r#"agent "{node}" { policy = "read" }"#;
const AGENT_WRITE: &str = r#"agent "{node}" { policy = "write" }"#;
const NODE_WRITE: &str = r#"node "{node}" { policy = "write" }"#;
const READ_ALL: &str = r#"node_prefix "" { policy = "read" } service_prefix "" { policy = "read" }"#;
const OP_READ: &str = r#"operator = "read""#;
const OP_WRITE: &str = r#"operator = "write""#;
const ACL_READ: &str = r#"acl = "read""#;
const ACL_WRITE: &str = r#"acl = "write""#;
const LOCAL_WEB_WRITE: &str = r#"service "local-web" { policy = "write" }"#;
const LOCAL_WEB_READ: &str = r#"service "local-web" { policy = "read" }"#;
const SESSION_WRITE: &str = r#"session "{node}" { policy = "write" }"#;
const SESSION_READ: &str = r#"session_prefix "" { policy = "read" }"#;
const KEYRING_WRITE: &str = r#"keyring = "write""#;
const QUERY_READ: &str = r#"query "fixture-q" { policy = "read" }"#;
const QUERY_WRITE: &str = r#"query "fixture-q" { policy = "write" }"#;

/// Every route. Placeholders: `{node}` (the agent's node), `{session}`, `{victim}` (a
/// token), `{vpolicy}`, `{vrole}` (a policy and a role made for these rows), `{query}` (the
/// prepared query `fixture-q`).
const CASES: &[Case] = &[
    // Status and catalog datacenters need no ACL.
    case("GET", "/v1/status/leader", "/v1/status/leader", NoBody, Open(200), "", 200),
    case("GET", "/v1/status/peers", "/v1/status/peers", NoBody, Open(200), "", 200),
    case("GET", "/v1/catalog/datacenters", "/v1/catalog/datacenters", NoBody, Open(200), "", 200),
    // KV.
    case("GET", "/v1/kv", "/v1/kv?recurse", NoBody, Filtered, r#"key_prefix "" { policy = "read" }"#, 200),
    case("GET", "/v1/kv/", "/v1/kv/?keys", NoBody, Filtered, r#"key_prefix "" { policy = "read" }"#, 200),
    case(
        "GET",
        "/v1/kv/{*key}",
        "/v1/kv/app/config",
        NoBody,
        Denied,
        r#"key "app/config" { policy = "read" }"#,
        200,
    ),
    case("PUT", "/v1/kv", "/v1/kv", Text("x"), Open(400), "", 400),
    case("PUT", "/v1/kv/", "/v1/kv/", Text("x"), Open(400), "", 400),
    case(
        "PUT",
        "/v1/kv/{*key}",
        "/v1/kv/app/new",
        Text("x"),
        Denied,
        r#"key "app/new" { policy = "write" }"#,
        200,
    ),
    case(
        "PUT",
        "/v1/txn",
        "/v1/txn",
        Text(r#"[{"KV": {"Verb": "set", "Key": "app/txn", "Value": "eA=="}}]"#),
        Conflict,
        r#"key "app/txn" { policy = "write" }"#,
        200,
    ),
    // Catalog.
    case(
        "PUT",
        "/v1/catalog/register",
        "/v1/catalog/register",
        Text(r#"{"Node": "ext-2", "Address": "10.0.0.2"}"#),
        Denied,
        r#"node "ext-2" { policy = "write" }"#,
        200,
    ),
    case(
        "PUT",
        "/v1/catalog/deregister",
        "/v1/catalog/deregister",
        Text(r#"{"Node": "ext-2"}"#),
        Denied,
        r#"node "ext-2" { policy = "write" }"#,
        200,
    ),
    case("GET", "/v1/catalog/nodes", "/v1/catalog/nodes", NoBody, Filtered, READ_ALL, 200),
    case("GET", "/v1/catalog/services", "/v1/catalog/services", NoBody, Filtered, READ_ALL, 200),
    case("GET", "/v1/catalog/service/{name}", "/v1/catalog/service/web", NoBody, Filtered, READ_ALL, 200),
    case("GET", "/v1/catalog/node/{node}", "/v1/catalog/node/ext-1", NoBody, Filtered, READ_ALL, 200),
    case(
        "GET",
        "/v1/catalog/node-services/{node}",
        "/v1/catalog/node-services/ext-1",
        NoBody,
        Denied,
        READ_ALL,
        200,
    ),
    // Coordinates.
    case("GET", "/v1/coordinate/datacenters", "/v1/coordinate/datacenters", NoBody, Open(200), "", 200),
    case("GET", "/v1/coordinate/nodes", "/v1/coordinate/nodes", NoBody, Filtered, READ_ALL, 200),
    case("GET", "/v1/coordinate/node/{node}", "/v1/coordinate/node/{node}", NoBody, Denied, READ_ALL, 200),
    case(
        "PUT",
        "/v1/coordinate/update",
        "/v1/coordinate/update",
        Text(
            r#"{"Node": "{node}", "Coord": {"Vec": [0.01,0,0,0,0,0,0,0], "Error": 0.2, "Adjustment": 0, "Height": 0.00001}}"#,
        ),
        Denied,
        NODE_WRITE,
        200,
    ),
    // Health.
    case("GET", "/v1/health/node/{node}", "/v1/health/node/{node}", NoBody, Filtered, READ_ALL, 200),
    case("GET", "/v1/health/checks/{service}", "/v1/health/checks/web", NoBody, Filtered, READ_ALL, 200),
    case("GET", "/v1/health/service/{service}", "/v1/health/service/web", NoBody, Filtered, READ_ALL, 200),
    case("GET", "/v1/health/state/{state}", "/v1/health/state/any", NoBody, Filtered, READ_ALL, 200),
    // Prepared queries; executing needs no query rule, its results are filtered.
    case("GET", "/v1/query", "/v1/query", NoBody, Filtered, r#"query_prefix "" { policy = "read" }"#, 200),
    case(
        "POST",
        "/v1/query",
        "/v1/query",
        Text(r#"{"Name": "row-q", "Service": {"Service": "web"}}"#),
        Denied,
        r#"query "row-q" { policy = "write" }"#,
        200,
    ),
    case("GET", "/v1/query/{*rest}", "/v1/query/{query}", NoBody, Denied, QUERY_READ, 200),
    case("GET", "/v1/query/{*rest}", "/v1/query/fixture-q/explain", NoBody, Denied, QUERY_READ, 200),
    case("GET", "/v1/query/{*rest}", "/v1/query/fixture-q/execute", NoBody, Filtered, READ_ALL, 200),
    case(
        "PUT",
        "/v1/query/{*rest}",
        "/v1/query/{query}",
        Text(r#"{"Name": "fixture-q", "Service": {"Service": "web"}, "DNS": {"TTL": "5s"}}"#),
        Denied,
        QUERY_WRITE,
        200,
    ),
    // Sessions.
    case(
        "PUT",
        "/v1/session/create",
        "/v1/session/create",
        Text(r#"{"Node": "{node}", "Name": "row", "TTL": "600s"}"#),
        Denied,
        SESSION_WRITE,
        200,
    ),
    case("PUT", "/v1/session/renew/{id}", "/v1/session/renew/{session}", NoBody, Denied, SESSION_WRITE, 200),
    case("GET", "/v1/session/info/{id}", "/v1/session/info/{session}", NoBody, Filtered, SESSION_READ, 200),
    case("GET", "/v1/session/node/{node}", "/v1/session/node/{node}", NoBody, Filtered, SESSION_READ, 200),
    case("GET", "/v1/session/list", "/v1/session/list", NoBody, Filtered, SESSION_READ, 200),
    // Agent.
    case("GET", "/v1/agent/self", "/v1/agent/self", NoBody, Denied, AGENT_READ, 200),
    case("GET", "/v1/agent/members", "/v1/agent/members", NoBody, Filtered, READ_ALL, 200),
    case("GET", "/v1/agent/metrics", "/v1/agent/metrics", NoBody, Denied, AGENT_READ, 200),
    case("GET", "/v1/agent/monitor", "/v1/agent/monitor", NoBody, Denied, AGENT_READ, 200),
    case("PUT", "/v1/agent/join/{*address}", "/v1/agent/join/127.0.0.1:1", NoBody, Denied, AGENT_WRITE, 500),
    case("PUT", "/v1/agent/reload", "/v1/agent/reload", NoBody, Denied, AGENT_WRITE, 500),
    case("GET", "/v1/agent/checks", "/v1/agent/checks", NoBody, Filtered, READ_ALL, 200),
    case(
        "PUT",
        "/v1/agent/check/register",
        "/v1/agent/check/register",
        Text(r#"{"Name": "row-check", "TTL": "10m", "Status": "passing"}"#),
        Denied,
        NODE_WRITE,
        200,
    ),
    case(
        "PUT",
        "/v1/agent/check/warn/{*id}",
        "/v1/agent/check/warn/local-web-ttl",
        NoBody,
        Denied,
        LOCAL_WEB_WRITE,
        200,
    ),
    case(
        "PUT",
        "/v1/agent/check/fail/{*id}",
        "/v1/agent/check/fail/local-web-ttl",
        NoBody,
        Denied,
        LOCAL_WEB_WRITE,
        200,
    ),
    case(
        "PUT",
        "/v1/agent/check/pass/{*id}",
        "/v1/agent/check/pass/local-web-ttl",
        NoBody,
        Denied,
        LOCAL_WEB_WRITE,
        200,
    ),
    case(
        "PUT",
        "/v1/agent/check/update/{*id}",
        "/v1/agent/check/update/local-web-ttl",
        Text(r#"{"Status": "passing", "Output": "fine"}"#),
        Denied,
        LOCAL_WEB_WRITE,
        200,
    ),
    case("GET", "/v1/agent/services", "/v1/agent/services", NoBody, Filtered, READ_ALL, 200),
    case(
        "GET",
        "/v1/agent/service/{*id}",
        "/v1/agent/service/local-web",
        NoBody,
        Denied,
        LOCAL_WEB_READ,
        200,
    ),
    case(
        "GET",
        "/v1/agent/health/service/id/{*id}",
        "/v1/agent/health/service/id/local-web",
        NoBody,
        Denied,
        LOCAL_WEB_READ,
        200,
    ),
    case(
        "GET",
        "/v1/agent/health/service/name/{*name}",
        "/v1/agent/health/service/name/local-web",
        NoBody,
        Denied,
        LOCAL_WEB_READ,
        200,
    ),
    case(
        "PUT",
        "/v1/agent/service/register",
        "/v1/agent/service/register",
        Text(r#"{"Name": "api", "ID": "api1", "Port": 80}"#),
        Denied,
        r#"service "api" { policy = "write" }"#,
        200,
    ),
    case(
        "PUT",
        "/v1/agent/service/maintenance/{*id}",
        "/v1/agent/service/maintenance/local-web?enable=true&reason=row",
        NoBody,
        Denied,
        LOCAL_WEB_WRITE,
        200,
    ),
    case(
        "PUT",
        "/v1/agent/maintenance",
        "/v1/agent/maintenance?enable=true&reason=row",
        NoBody,
        Denied,
        NODE_WRITE,
        200,
    ),
    // Events.
    case(
        "PUT",
        "/v1/event/fire/{*name}",
        "/v1/event/fire/deploy-x",
        Text("payload"),
        Denied,
        r#"event "deploy-x" { policy = "write" }"#,
        200,
    ),
    case("PUT", "/v1/event/fire/", "/v1/event/fire/", NoBody, Open(400), "", 400),
    case("PUT", "/v1/event/fire", "/v1/event/fire", NoBody, Open(400), "", 400),
    case(
        "GET",
        "/v1/event/list",
        "/v1/event/list",
        NoBody,
        Filtered,
        r#"event_prefix "" { policy = "read" }"#,
        200,
    ),
    // Operator.
    case(
        "GET",
        "/v1/operator/raft/configuration",
        "/v1/operator/raft/configuration",
        NoBody,
        Denied,
        OP_READ,
        200,
    ),
    case(
        "GET",
        "/v1/operator/autopilot/configuration",
        "/v1/operator/autopilot/configuration",
        NoBody,
        Denied,
        OP_READ,
        200,
    ),
    case(
        "PUT",
        "/v1/operator/autopilot/configuration",
        "/v1/operator/autopilot/configuration",
        Text(
            r#"{"CleanupDeadServers": true, "LastContactThreshold": "200ms", "MaxTrailingLogs": 250, "MinQuorum": 0, "ServerStabilizationTime": "10s"}"#,
        ),
        Denied,
        OP_WRITE,
        200,
    ),
    case(
        "GET",
        "/v1/operator/autopilot/health",
        "/v1/operator/autopilot/health",
        NoBody,
        Denied,
        OP_READ,
        200,
    ),
    case("GET", "/v1/operator/autopilot/state", "/v1/operator/autopilot/state", NoBody, Denied, OP_READ, 200),
    case(
        "POST",
        "/v1/operator/raft/transfer-leader",
        "/v1/operator/raft/transfer-leader",
        NoBody,
        Denied,
        OP_WRITE,
        400,
    ),
    case(
        "DELETE",
        "/v1/operator/raft/peer",
        "/v1/operator/raft/peer?address=127.0.0.1:1",
        NoBody,
        Denied,
        OP_WRITE,
        500,
    ),
    case(
        "PUT",
        "/v1/agent/force-leave/{*node}",
        "/v1/agent/force-leave/ghost",
        NoBody,
        Denied,
        OP_WRITE,
        500,
    ),
    // Keyring: install B, make A primary again, remove B.
    case("GET", "/v1/operator/keyring", "/v1/operator/keyring", NoBody, Denied, r#"keyring = "read""#, 200),
    case(
        "POST",
        "/v1/operator/keyring",
        "/v1/operator/keyring",
        Text(r#"{"Key": "T9jncgl9mbLus+baTTa7q7nPSUrXwbDi2dhbtqir37s="}"#),
        Denied,
        KEYRING_WRITE,
        200,
    ),
    case(
        "PUT",
        "/v1/operator/keyring",
        "/v1/operator/keyring",
        Text(r#"{"Key": "5K9OtfP7efFrNKe5WCQvXvnaXJ5cWP0SvXiwe0kkjM4="}"#),
        Denied,
        KEYRING_WRITE,
        200,
    ),
    case(
        "DELETE",
        "/v1/operator/keyring",
        "/v1/operator/keyring",
        Text(r#"{"Key": "T9jncgl9mbLus+baTTa7q7nPSUrXwbDi2dhbtqir37s="}"#),
        Denied,
        KEYRING_WRITE,
        200,
    ),
    // ACL API.
    case("PUT", "/v1/acl/bootstrap", "/v1/acl/bootstrap", NoBody, Open(403), "", 403),
    case("GET", "/v1/acl/token/self", "/v1/acl/token/self", NoBody, Open(200), "", 200),
    case("PUT", "/v1/acl/token", "/v1/acl/token", Text(r#"{"Description": "row"}"#), Denied, ACL_WRITE, 200),
    case("GET", "/v1/acl/token/{id}", "/v1/acl/token/{victim}", NoBody, Denied, ACL_READ, 200),
    case(
        "PUT",
        "/v1/acl/token/{id}",
        "/v1/acl/token/{victim}",
        Text(r#"{"Description": "changed"}"#),
        Denied,
        ACL_WRITE,
        200,
    ),
    case(
        "PUT",
        "/v1/acl/token/{id}/clone",
        "/v1/acl/token/{victim}/clone",
        Text("{}"),
        Denied,
        ACL_WRITE,
        200,
    ),
    case("GET", "/v1/acl/tokens", "/v1/acl/tokens", NoBody, Denied, ACL_READ, 200),
    case(
        "PUT",
        "/v1/acl/policy",
        "/v1/acl/policy",
        Text(r#"{"Name": "row-policy", "Rules": ""}"#),
        Denied,
        ACL_WRITE,
        200,
    ),
    case(
        "GET",
        "/v1/acl/policy/name/{name}",
        "/v1/acl/policy/name/global-management",
        NoBody,
        Denied,
        ACL_READ,
        200,
    ),
    case("GET", "/v1/acl/policy/{id}", "/v1/acl/policy/{vpolicy}", NoBody, Denied, ACL_READ, 200),
    case(
        "PUT",
        "/v1/acl/policy/{id}",
        "/v1/acl/policy/{vpolicy}",
        Text(r#"{"Name": "victim-policy", "Rules": "key \"y\" { policy = \"read\" }"}"#),
        Denied,
        ACL_WRITE,
        200,
    ),
    case("GET", "/v1/acl/policies", "/v1/acl/policies", NoBody, Denied, ACL_READ, 200),
    case("PUT", "/v1/acl/role", "/v1/acl/role", Text(r#"{"Name": "row-role"}"#), Denied, ACL_WRITE, 200),
    case("GET", "/v1/acl/role/name/{name}", "/v1/acl/role/name/victim-role", NoBody, Denied, ACL_READ, 200),
    case("GET", "/v1/acl/role/{id}", "/v1/acl/role/{vrole}", NoBody, Denied, ACL_READ, 200),
    case(
        "PUT",
        "/v1/acl/role/{id}",
        "/v1/acl/role/{vrole}",
        Text(r#"{"Name": "victim-role", "Description": "changed"}"#),
        Denied,
        ACL_WRITE,
        200,
    ),
    case("GET", "/v1/acl/roles", "/v1/acl/roles", NoBody, Denied, ACL_READ, 200),
    case("GET", "/v1/acl/replication", "/v1/acl/replication", NoBody, Open(200), "", 200),
    case(
        "PUT",
        "/v1/acl/auth-method",
        "/v1/acl/auth-method",
        Text(
            r#"{"Name": "row-method", "Type": "jwt", "Config": {"JWTValidationPubKeys": [{pem}], "JWTSupportedAlgs": ["ES256"]}}"#,
        ),
        Denied,
        ACL_WRITE,
        200,
    ),
    case(
        "GET",
        "/v1/acl/auth-method/{name}",
        "/v1/acl/auth-method/victim-method",
        NoBody,
        Denied,
        ACL_READ,
        200,
    ),
    case(
        "PUT",
        "/v1/acl/auth-method/{name}",
        "/v1/acl/auth-method/victim-method",
        Text(
            r#"{"Name": "victim-method", "Type": "jwt", "Description": "changed", "Config": {"JWTValidationPubKeys": [{pem}], "JWTSupportedAlgs": ["ES256"]}}"#,
        ),
        Denied,
        ACL_WRITE,
        200,
    ),
    case("GET", "/v1/acl/auth-methods", "/v1/acl/auth-methods", NoBody, Denied, ACL_READ, 200),
    case(
        "PUT",
        "/v1/acl/binding-rule",
        "/v1/acl/binding-rule",
        Text(r#"{"AuthMethod": "victim-method", "BindType": "service", "BindName": "row"}"#),
        Denied,
        ACL_WRITE,
        200,
    ),
    case("GET", "/v1/acl/binding-rule/{id}", "/v1/acl/binding-rule/{vrule}", NoBody, Denied, ACL_READ, 200),
    case(
        "PUT",
        "/v1/acl/binding-rule/{id}",
        "/v1/acl/binding-rule/{vrule}",
        Text(r#"{"AuthMethod": "victim-method", "BindType": "service", "BindName": "changed"}"#),
        Denied,
        ACL_WRITE,
        200,
    ),
    case("GET", "/v1/acl/binding-rules", "/v1/acl/binding-rules", NoBody, Denied, ACL_READ, 200),
    // Login checks the bearer token, not the caller's; logout needs a token minted by login.
    case(
        "POST",
        "/v1/acl/login",
        "/v1/acl/login",
        Text(r#"{"AuthMethod": "victim-method", "BearerToken": "not-a-jwt"}"#),
        Open(403),
        "",
        403,
    ),
    case("POST", "/v1/acl/logout", "/v1/acl/logout", NoBody, Open(403), "", 403),
    case(
        "PUT",
        "/v1/agent/token/{kind}",
        "/v1/agent/token/replication",
        Text(r#"{"Token": "row-token"}"#),
        Denied,
        ACL_WRITE,
        200,
    ),
    case("ANY", "/v1/acl/{*rest}", "/v1/acl/no-such-thing", NoBody, Open(404), "", 404),
    case(
        "POST",
        "/v1/internal/acl/authorize",
        "/v1/internal/acl/authorize",
        Text(r#"[{"Resource": "key", "Segment": "app/config", "Access": "read"}]"#),
        Open(200),
        "",
        200,
    ),
    case(
        "POST",
        "/v1/internal/acl/authorize",
        "/v1/internal/acl/authorize?accessor={victim}",
        Text(r#"[{"Resource": "key", "Segment": "app/config", "Access": "read"}]"#),
        Denied,
        ACL_READ,
        200,
    ),
    // Snapshots (acl:write); the restore brings back the state of the save.
    case("GET", "/v1/snapshot", "/v1/snapshot", NoBody, Denied, ACL_WRITE, 200),
    case("PUT", "/v1/snapshot", "/v1/snapshot", Snapshot, Denied, ACL_WRITE, 200),
    // Destructive rows.
    case("DELETE", "/v1/query/{*rest}", "/v1/query/{query}", NoBody, Denied, QUERY_WRITE, 200),
    case(
        "DELETE",
        "/v1/acl/binding-rule/{id}",
        "/v1/acl/binding-rule/{vrule}",
        NoBody,
        Denied,
        ACL_WRITE,
        200,
    ),
    case(
        "DELETE",
        "/v1/acl/auth-method/{name}",
        "/v1/acl/auth-method/victim-method",
        NoBody,
        Denied,
        ACL_WRITE,
        200,
    ),
    case("DELETE", "/v1/acl/role/{id}", "/v1/acl/role/{vrole}", NoBody, Denied, ACL_WRITE, 200),
    case("DELETE", "/v1/acl/policy/{id}", "/v1/acl/policy/{vpolicy}", NoBody, Denied, ACL_WRITE, 200),
    case("DELETE", "/v1/acl/token/{id}", "/v1/acl/token/{victim}", NoBody, Denied, ACL_WRITE, 200),
    case(
        "PUT",
        "/v1/agent/check/deregister/{*id}",
        "/v1/agent/check/deregister/row-check",
        NoBody,
        Denied,
        NODE_WRITE,
        200,
    ),
    case(
        "PUT",
        "/v1/agent/service/deregister/{*id}",
        "/v1/agent/service/deregister/api1",
        NoBody,
        Denied,
        r#"service "api" { policy = "write" }"#,
        200,
    ),
    case(
        "PUT",
        "/v1/session/destroy/{id}",
        "/v1/session/destroy/{session}",
        NoBody,
        Denied,
        SESSION_WRITE,
        200,
    ),
    case(
        "DELETE",
        "/v1/kv/{*key}",
        "/v1/kv/app?recurse",
        NoBody,
        Denied,
        r#"key_prefix "app" { policy = "write" }"#,
        200,
    ),
    case("DELETE", "/v1/kv", "/v1/kv?recurse", NoBody, Denied, r#"key_prefix "" { policy = "write" }"#, 200),
    case(
        "DELETE",
        "/v1/kv/",
        "/v1/kv/?recurse",
        NoBody,
        Denied,
        r#"key_prefix "" { policy = "write" }"#,
        200,
    ),
    case("PUT", "/v1/agent/leave", "/v1/agent/leave", NoBody, Denied, AGENT_WRITE, 200),
];

/// The (method, route) pairs the router serves, read from the `.route(…)` calls.
fn routes_in_source() -> BTreeSet<(String, String)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/http");
    let mut out = BTreeSet::new();
    for entry in std::fs::read_dir(&dir).expect("src/http") {
        let path = entry.expect("dir entry").path();
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("source file");
        let mut rest = text.as_str();
        while let Some(at) = rest.find(".route(") {
            rest = &rest[at + ".route(".len()..];
            // The call's text up to its closing parenthesis.
            let mut depth = 1;
            let end = rest
                .char_indices()
                .find(|&(_, ch)| {
                    match ch {
                        '(' => depth += 1,
                        ')' => depth -= 1,
                        _ => {}
                    }
                    depth == 0
                })
                .map_or(rest.len(), |(i, _)| i);
            let call = &rest[..end];
            let Some(q1) = call.find('"') else { continue };
            let Some(len) = call[q1 + 1..].find('"') else { continue };
            let route = &call[q1 + 1..q1 + 1 + len];
            let handlers = &call[q1 + 1 + len..];
            for (word, method) in
                [("get(", "GET"), ("put(", "PUT"), ("post(", "POST"), ("delete(", "DELETE"), ("any(", "ANY")]
            {
                let called = handlers.match_indices(word).any(|(i, _)| {
                    i == 0
                        || !handlers.as_bytes()[i - 1].is_ascii_alphanumeric()
                            && handlers.as_bytes()[i - 1] != b'_'
                });
                if called {
                    out.insert((method.to_string(), route.to_string()));
                }
            }
        }
    }
    out
}

#[test]
fn every_route_has_a_case() {
    let served = routes_in_source();
    assert!(served.len() > 50, "the route scan found too little: {served:?}");
    let covered: BTreeSet<(String, String)> =
        CASES.iter().map(|c| (c.method.to_string(), c.route.to_string())).collect();
    let missing: Vec<_> = served.difference(&covered).collect();
    assert!(missing.is_empty(), "routes without an ACL case in tests/api/acl.rs: {missing:?}");
    let stale: Vec<_> = covered.difference(&served).collect();
    assert!(stale.is_empty(), "ACL cases for routes the router does not serve: {stale:?}");
}

/// The IDs the placeholders stand for.
struct Fixture {
    node: String,
    session: String,
    victim: String,
    vpolicy: String,
    vrole: String,
    vrule: String,
    /// The ID of the prepared query `fixture-q`.
    query: String,
    /// A public key in PEM, as a JSON string.
    pem: String,
}

impl Fixture {
    fn fill(&self, s: &str) -> String {
        s.replace("{node}", &self.node)
            .replace("{session}", &self.session)
            .replace("{victim}", &self.victim)
            .replace("{vpolicy}", &self.vpolicy)
            .replace("{vrole}", &self.vrole)
            .replace("{vrule}", &self.vrule)
            .replace("{query}", &self.query)
            .replace("{pem}", &self.pem)
    }
}

/// Objects of every kind, some of which the weak token may not see.
async fn fixture(root: &Api, node: &str) -> Fixture {
    root.kv_set("app/config", "v1").await;
    root.kv_set("app/other", "v2").await;
    root.register(&json!({
        "Node": "ext-1", "Address": "10.0.0.1",
        "Service": {"ID": "web1", "Service": "web", "Port": 80},
        "Check": {"CheckID": "web-alive", "Name": "web alive", "ServiceID": "web1", "Status": "passing"},
    }))
    .await;
    let r = root
        .put_json(
            "/v1/agent/service/register",
            &json!({"Name": "local-web", "ID": "local-web", "Port": 8080,
                    "Check": {"CheckID": "local-web-ttl", "Name": "local web ttl", "TTL": "10m", "Status": "passing"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "local service: {}", r.text());
    let coord = json!({"Vec": [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0], "Error": 0.2, "Adjustment": 0.0, "Height": 1e-5});
    let r = root.put_json("/v1/coordinate/update", &json!({"Node": node, "Coord": coord})).await;
    assert_eq!(r.status, StatusCode::OK, "coordinate: {}", r.text());
    root.put("/v1/event/fire/secret-deploy", "x").await.expect(StatusCode::OK);
    let session = root.session(&json!({"Node": node, "Name": "fixture", "TTL": "600s"})).await;
    let vpolicy = root
        .put_json(
            "/v1/acl/policy",
            &json!({"Name": "victim-policy", "Rules": r#"key "x" { policy = "read" }"#}),
        )
        .await
        .ok_json()["ID"]
        .as_str()
        .expect("policy ID")
        .to_string();
    let vrole = root
        .put_json("/v1/acl/role", &json!({"Name": "victim-role", "Policies": [{"ID": vpolicy}]}))
        .await
        .ok_json()["ID"]
        .as_str()
        .expect("role ID")
        .to_string();
    let victim = root
        .put_json("/v1/acl/token", &json!({"Description": "victim", "Roles": [{"Name": "victim-role"}]}))
        .await
        .ok_json()["AccessorID"]
        .as_str()
        .expect("AccessorID")
        .to_string();
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("EC key");
    let pem = serde_json::to_string(&pair.public_key_pem()).expect("JSON string");
    let method = format!(
        r#"{{"Name": "victim-method", "Type": "jwt", "Config": {{"JWTValidationPubKeys": [{pem}], "JWTSupportedAlgs": ["ES256"]}}}}"#
    );
    let r = root.put("/v1/acl/auth-method", method).await;
    assert_eq!(r.status, StatusCode::OK, "auth method: {}", r.text());
    let rule = json!({"AuthMethod": "victim-method", "BindType": "service", "BindName": "victim"});
    let vrule = root.put_json("/v1/acl/binding-rule", &rule).await.ok_json()["ID"]
        .as_str()
        .expect("rule ID")
        .to_string();
    let query = root
        .request(Method::POST, "/v1/query", r#"{"Name": "fixture-q", "Service": {"Service": "web"}}"#)
        .await
        .ok_json()["ID"]
        .as_str()
        .expect("query ID")
        .to_string();
    Fixture { node: node.to_string(), session, victim, vpolicy, vrole, vrule, query, pem }
}

/// What the agent holds, as the management token sees it. Volatile fields (times,
/// indexes of reads) are left out; write indexes stay in, so any write shows.
async fn fingerprint(root: &Api) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for path in [
        "/v1/kv/?recurse",
        "/v1/session/list",
        "/v1/catalog/nodes",
        "/v1/catalog/services",
        "/v1/health/state/any",
        "/v1/acl/tokens",
        "/v1/acl/policies",
        "/v1/acl/roles",
        "/v1/acl/auth-methods",
        "/v1/acl/binding-rules",
        "/v1/query",
        "/v1/agent/services",
        "/v1/agent/checks",
        "/v1/operator/keyring",
        "/v1/operator/autopilot/configuration",
        "/v1/operator/raft/configuration",
    ] {
        let r = root.get(path).await;
        let mut body = if r.body.is_empty() { Value::Null } else { r.json() };
        strip_volatile(&mut body);
        out.push((path.to_string(), format!("{} {body}", r.status)));
    }
    let events = root.get("/v1/event/list").await.ok_json();
    out.push(("events".into(), format!("{}", events.as_array().map_or(0, Vec::len))));
    out
}

/// [`fingerprint`] once the agent's local services and checks are in the catalog (the
/// anti-entropy sync of an earlier row is done), so that only the request can change it.
async fn settled_fingerprint(root: &Api, node: &str) -> Vec<(String, String)> {
    let status_of = |v: &Value, id: &str| -> Option<String> {
        v.as_array()?.iter().find(|c| c["CheckID"] == id).map(|c| c["Status"].to_string())
    };
    eventually(Duration::from_secs(10), "the local state is in the catalog", || async {
        let local = root.get("/v1/agent/checks").await.ok_json();
        let catalog = root.get(&format!("/v1/health/node/{node}")).await.ok_json();
        let local = local.as_object()?;
        let synced = local.iter().all(|(id, c)| status_of(&catalog, id) == Some(c["Status"].to_string()))
            && catalog.as_array()?.iter().all(|c| {
                c["CheckID"] == "serfHealth" || c["CheckID"].as_str().is_some_and(|id| local.contains_key(id))
            });
        let services = root.get("/v1/agent/services").await.ok_json();
        let listed = root.get(&format!("/v1/catalog/node-services/{node}")).await.ok_json();
        let ids: BTreeSet<String> = listed["Services"]
            .as_array()?
            .iter()
            .filter_map(|s| s["ID"].as_str().map(str::to_string))
            .collect();
        let mine: BTreeSet<String> = services.as_object()?.keys().cloned().collect();
        let all_there = ids.iter().filter(|id| *id != "consul").cloned().collect::<BTreeSet<_>>() == mine;
        (synced && all_there).then_some(())
    })
    .await;
    fingerprint(root).await
}

fn strip_volatile(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for k in ["LastContact", "LastIndex", "Output", "CreateTime", "Hash"] {
                m.remove(k);
            }
            if m.contains_key("CheckID") {
                // Anti-entropy rewrites a check when only its output changed.
                m.remove("ModifyIndex");
            }
            m.values_mut().for_each(strip_volatile);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_volatile),
        _ => {}
    }
}

async fn send(api: &Api, c: &Case, fx: &Fixture, snapshot: &Bytes) -> Resp {
    let path = fx.fill(c.path);
    let method = if c.method == "ANY" {
        Method::GET
    } else {
        Method::from_bytes(c.method.as_bytes()).expect("method")
    };
    if c.route == "/v1/agent/monitor" {
        return api.request_head(method, &path).await;
    }
    let body = match c.body {
        NoBody => Bytes::new(),
        Text(t) => Bytes::from(fx.fill(t)),
        Snapshot => snapshot.clone(),
    };
    api.request(method, &path, body).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_denies_a_weak_token_and_serves_the_right_one() {
    let (agent, api) = start_acl(|cfg, _| cfg.encrypt = Some(KEY_A.to_owned())).await;
    let root = api.with_token(ROOT);
    let node = agent.config.node_name.clone();
    let fx = fixture(&root, &node).await;
    let weak_secret = token_with_rules(&root, r#"key "nothing" { policy = "read" }"#).await;
    let weak = api.with_token(&weak_secret);
    let weak_accessor =
        weak.get("/v1/acl/token/self").await.ok_json()["AccessorID"].as_str().expect("id").to_string();
    let mut snapshot = Bytes::new();

    for c in CASES {
        let what = format!("{} {}", c.method, fx.fill(c.path));
        if matches!(c.body, Snapshot) {
            // A write after the save, which a restore would undo.
            root.kv_set("app/after-save", "x").await;
        }
        let before = settled_fingerprint(&root, &node).await;
        let r = send(&weak, c, &fx, &snapshot).await;
        match c.weak {
            Denied => {
                assert_eq!(r.status, StatusCode::FORBIDDEN, "{what}: weak token: {}", r.text());
                if c.route != "/v1/agent/monitor" {
                    let text = r.text();
                    assert!(
                        text.starts_with("Permission denied: token with AccessorID")
                            && text.contains(&weak_accessor),
                        "{what}: the denial names the token: {text}"
                    );
                }
            }
            Filtered => {
                assert!(
                    r.status == StatusCode::OK || r.status == StatusCode::NOT_FOUND,
                    "{what}: weak token: {} {}",
                    r.status,
                    r.text()
                );
                assert_eq!(
                    r.header("X-Consul-Results-Filtered-By-ACLs"),
                    Some("true"),
                    "{what}: the weak token's list is marked filtered: {}",
                    r.text()
                );
            }
            Conflict => {
                assert_eq!(r.status, StatusCode::CONFLICT, "{what}: weak token: {}", r.text());
                assert!(r.text().contains("Permission denied"), "{what}: {}", r.text());
            }
            Open(status) => {
                assert_eq!(r.status.as_u16(), status, "{what}: open route, weak token: {}", r.text());
            }
        }
        let after = fingerprint(&root).await;
        let changed: Vec<_> = before.iter().zip(&after).filter(|(b, a)| b != a).collect();
        assert!(
            changed.is_empty(),
            "{what}: the weak token's request changed the agent's state: {changed:#?}"
        );

        let right = if c.rules.is_empty() {
            weak.clone()
        } else {
            api.with_token(&token_with_rules(&root, &fx.fill(c.rules)).await)
        };
        let r = send(&right, c, &fx, &snapshot).await;
        assert_eq!(r.status.as_u16(), c.ok, "{what}: with the rules {:?}: {}", c.rules, r.text());
        if matches!(c.weak, Filtered) {
            assert_eq!(
                r.header("X-Consul-Results-Filtered-By-ACLs"),
                None,
                "{what}: the right token sees everything"
            );
        }
        if c.method == "GET" && c.route == "/v1/snapshot" {
            snapshot = r.body.clone();
            assert!(!snapshot.is_empty(), "a snapshot body");
        }
        if matches!(c.body, Snapshot) {
            let r = root.get("/v1/kv/app/after-save").await;
            assert_eq!(r.status, StatusCode::NOT_FOUND, "the restore brought back the saved state");
        }
    }
    agent.shutdown().await;
}

/// Every route without a token (anonymous, which default-deny leaves with no rights) and
/// with a token the agent does not know: refused (or filtered) exactly like a token without
/// rules, nothing changes, and no SecretID shows up in any answer or anywhere in the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_refuses_no_token_and_an_unknown_one_and_leaks_no_secret() {
    let logs = sekisho::testing::secrets::LogCapture::install();
    let (agent, api) = start_acl(|cfg, _| cfg.encrypt = Some(KEY_A.to_owned())).await;
    let root = api.with_token(ROOT);
    let node = agent.config.node_name.clone();
    let fx = fixture(&root, &node).await;
    let victim_secret = root.get(&format!("/v1/acl/token/{}", fx.victim)).await.ok_json()["SecretID"]
        .as_str()
        .expect("the victim's SecretID")
        .to_string();
    const UNKNOWN: &str = "6e1e2a5c-0000-4000-8000-00000000beef";
    let unknown = api.with_token(UNKNOWN);
    let secrets = [ROOT, victim_secret.as_str(), UNKNOWN];
    let mut checked = 0;
    let mut snapshot = Bytes::new();
    for c in CASES {
        if matches!(c.body, Snapshot) {
            root.kv_set("app/after-save", "x").await;
        }
        for (who, client) in [("no token", &api), ("an unknown token", &unknown)] {
            let what = format!("{} {} with {who}", c.method, fx.fill(c.path));
            let before = settled_fingerprint(&root, &node).await;
            let r = send(client, c, &fx, &snapshot).await;
            let text = r.text();
            match (who, c.weak) {
                (_, Open(status)) => {
                    assert!(
                        r.status.as_u16() == status || (who != "no token" && text == "ACL not found"),
                        "{what}: open route: {} {text}",
                        r.status
                    );
                }
                ("no token", Denied) => {
                    assert_eq!(r.status, StatusCode::FORBIDDEN, "{what}: {text}");
                    if c.route != "/v1/agent/monitor" {
                        assert!(text.contains("00000000-0000-0000-0000-000000000002"), "{what}: {text}");
                    }
                }
                ("no token", Filtered) => {
                    assert!(
                        r.status == StatusCode::OK || r.status == StatusCode::NOT_FOUND,
                        "{what}: {} {text}",
                        r.status
                    );
                    assert_eq!(r.header("X-Consul-Results-Filtered-By-ACLs"), Some("true"), "{what}: {text}");
                }
                ("no token", Conflict) => {
                    assert_eq!(r.status, StatusCode::CONFLICT, "{what}: {text}");
                    assert!(text.contains("Permission denied"), "{what}: {text}");
                }
                _ if c.route == "/v1/agent/monitor" => assert_eq!(r.status, StatusCode::FORBIDDEN, "{what}"),
                _ => {
                    assert_eq!((r.status, text.as_str()), (StatusCode::FORBIDDEN, "ACL not found"), "{what}");
                }
            }
            for s in &secrets[..2] {
                assert!(!text.contains(s), "{what}: the answer holds a SecretID: {text}");
            }
            let after = fingerprint(&root).await;
            let changed: Vec<_> = before.iter().zip(&after).filter(|(b, a)| b != a).collect();
            assert!(changed.is_empty(), "{what}: the request changed the agent's state: {changed:#?}");
            checked += 1;
        }
        // The request with the rights it needs, so the rows after it find what they expect
        // (as in `every_route_denies_a_weak_token_and_serves_the_right_one`).
        if !c.rules.is_empty() {
            let right = api.with_token(&token_with_rules(&root, &fx.fill(c.rules)).await);
            let r = send(&right, c, &fx, &snapshot).await;
            assert_eq!(
                r.status.as_u16(),
                c.ok,
                "{} {}: with the rules {:?}: {}",
                c.method,
                c.path,
                c.rules,
                r.text()
            );
            if c.method == "GET" && c.route == "/v1/snapshot" {
                snapshot = r.body.clone();
            }
        }
    }
    assert!(checked > 100, "only {checked} requests checked");
    assert!(!logs.is_empty(), "the capture saw no log at all");
    logs.assert_free_of(&secrets);
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_token_is_acl_not_found_everywhere() {
    let (agent, api) = start_acl(|_, _| {}).await;
    let stranger = api.with_token("6e1e2a5c-0000-4000-8000-000000000000");
    for path in
        ["/v1/kv/app", "/v1/catalog/nodes", "/v1/agent/self", "/v1/acl/token/self", "/v1/session/list"]
    {
        let r = stranger.get(path).await;
        assert_eq!((r.status, r.text()), (StatusCode::FORBIDDEN, "ACL not found".to_string()), "{path}");
    }
    // The same secret through the other ways of presenting a token.
    let r = api
        .request_with(
            Method::GET,
            "/v1/kv/app",
            &[("Authorization", "Bearer 6e1e2a5c-0000-4000-8000-000000000000")],
            "",
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = api.get("/v1/kv/app?token=6e1e2a5c-0000-4000-8000-000000000000").await;
    assert_eq!((r.status, r.text()), (StatusCode::FORBIDDEN, "ACL not found".to_string()));
    // No token at all: anonymous, which default-deny refuses with a denial naming it.
    let r = api.get("/v1/kv/app").await.expect(StatusCode::FORBIDDEN);
    assert!(r.text().contains("00000000-0000-0000-0000-000000000002"), "{}", r.text());
    assert_eq!(r.header("X-Consul-Default-ACL-Policy"), Some("deny"));
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_works_once_and_again_after_the_reset_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().to_path_buf();
    let agent = TestAgent::start_with(|cfg, _| {
        cfg.acl = json!({"enabled": true, "default_policy": "deny"});
        cfg.data_dir = Some(data_dir.clone());
    })
    .await;
    let api = Api::new(&agent);
    let first = eventually(Duration::from_secs(10), "a first bootstrap", || async {
        let r = api.put("/v1/acl/bootstrap", "").await;
        (r.status == StatusCode::OK).then(|| r.json())
    })
    .await;
    assert_eq!(first["Description"], "Bootstrap Token (Global Management)");
    assert_eq!(
        first["Policies"],
        json!([{"ID": "00000000-0000-0000-0000-000000000001", "Name": "global-management"}])
    );
    assert_eq!(first["ID"], first["SecretID"], "the legacy ID field repeats the SecretID");
    let root = api.with_token(first["SecretID"].as_str().expect("SecretID"));
    root.kv_set("proof", "the bootstrap token is a management token").await;

    let again = api.put("/v1/acl/bootstrap", "").await.expect(StatusCode::FORBIDDEN);
    let text = again.text();
    let index: u64 = text
        .strip_prefix("Permission denied: ACL bootstrap no longer allowed (reset index: ")
        .and_then(|t| t.strip_suffix(')'))
        .unwrap_or_else(|| panic!("Consul's refusal text: {text}"))
        .parse()
        .expect("a numeric reset index");
    assert!(index > 0);

    // A wrong index in the reset file does not open bootstrap, and the file stays.
    let reset = dir.path().join("acl-bootstrap-reset");
    std::fs::write(&reset, format!("{}\n", index + 100)).expect("reset file");
    api.put("/v1/acl/bootstrap", "").await.expect(StatusCode::FORBIDDEN);
    assert!(reset.exists(), "a refused reset keeps the file");
    std::fs::write(&reset, "not a number").expect("reset file");
    let r = api.put("/v1/acl/bootstrap", "").await.expect(StatusCode::BAD_REQUEST);
    assert!(r.text().contains("acl-bootstrap-reset"), "{}", r.text());

    // The right index allows one more bootstrap; the file is consumed.
    std::fs::write(&reset, format!("{index}\n")).expect("reset file");
    let second = api.put("/v1/acl/bootstrap", "").await.ok_json();
    assert_ne!(second["AccessorID"], first["AccessorID"]);
    assert!(!reset.exists(), "a used reset file is removed");
    let later = api.put("/v1/acl/bootstrap", "").await.expect(StatusCode::FORBIDDEN);
    assert!(later.text().contains("reset index: "), "{}", later.text());
    assert_ne!(later.text(), text, "the reset index moved on");
    // As in Consul, the earlier management token still works after a reset.
    let r = root.get("/v1/kv/proof").await;
    assert_eq!(r.status, StatusCode::OK);
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_hide_secrets_from_readers_and_resolve_themselves() {
    let (agent, api) = start_acl(|_, _| {}).await;
    let root = api.with_token(ROOT);
    let reader = api.with_token(&token_with_rules(&root, r#"acl = "read""#).await);
    let made = root
        .put_json(
            "/v1/acl/token",
            &json!({"Description": "ci deploys", "ExpirationTTL": "1h",
                                           "ServiceIdentities": [{"ServiceName": "web"}]}),
        )
        .await
        .ok_json();
    let accessor = made["AccessorID"].as_str().expect("AccessorID");
    let secret = made["SecretID"].as_str().expect("SecretID");
    assert!(made["ExpirationTime"].is_string(), "a TTL sets ExpirationTime: {made}");

    let seen = reader.get(&format!("/v1/acl/token/{accessor}")).await.ok_json();
    assert_eq!(seen["SecretID"], "<hidden>", "acl:read does not see secrets");
    assert_eq!(seen["Description"], "ci deploys");
    let list = reader.get("/v1/acl/tokens").await.ok_json();
    assert!(list.as_array().expect("list").iter().all(|t| t["SecretID"] == "<hidden>"), "{list}");
    let seen = root.get(&format!("/v1/acl/token/{accessor}")).await.ok_json();
    assert_eq!(seen["SecretID"], secret, "acl:write sees the secret");

    let me = api.with_token(secret).get("/v1/acl/token/self").await.ok_json();
    assert_eq!(me["AccessorID"], accessor);
    // The service identity lets it register its own service and nothing else.
    let web = api.with_token(secret);
    let ok = web.put_json("/v1/agent/service/register", &json!({"Name": "web", "Port": 80})).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text());
    let no = web.put_json("/v1/agent/service/register", &json!({"Name": "db", "Port": 5432})).await;
    assert_eq!(no.status, StatusCode::FORBIDDEN);
    assert_eq!(
        no.text(),
        format!(
            "Permission denied: token with AccessorID '{accessor}' lacks permission 'service:write' on \"db\""
        )
    );

    root.delete(&format!("/v1/acl/token/{accessor}")).await.expect(StatusCode::OK);
    let gone = web.get("/v1/acl/token/self").await;
    assert_eq!((gone.status, gone.text()), (StatusCode::FORBIDDEN, "ACL not found".to_string()));
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denials_go_to_the_audit_log_by_accessor_with_the_client_address() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().to_path_buf();
    let (agent, api) = start_acl(|cfg, _| {
        cfg.data_dir = Some(data_dir.clone());
        cfg.acl["audit"] = json!({"enabled": true});
    })
    .await;
    let root = api.with_token(ROOT);
    let secret = token_with_rules(&root, r#"key_prefix "team-a/" { policy = "write" }"#).await;
    let team = api.with_token(&secret);
    let accessor =
        team.get("/v1/acl/token/self").await.ok_json()["AccessorID"].as_str().expect("id").to_string();
    team.put("/v1/kv/team-a/ok", "1").await.expect(StatusCode::OK);
    team.put("/v1/kv/team-b/nope", "1").await.expect(StatusCode::FORBIDDEN);
    team.delete("/v1/kv/team?recurse").await.expect(StatusCode::FORBIDDEN);

    let path = dir.path().join("audit/acl-denials.log");
    let text = std::fs::read_to_string(&path).expect("the audit log exists");
    let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).expect("JSON line")).collect();
    let mine: Vec<&Value> = lines.iter().filter(|l| l["AccessorID"] == accessor.as_str()).collect();
    assert_eq!(mine.len(), 2, "the two denials, not the allowed write: {text}");
    assert_eq!(mine[0]["Resource"], "key");
    assert_eq!(mine[0]["Segment"], "team-b/nope");
    assert_eq!(mine[0]["Access"], "write");
    assert_eq!(mine[0]["Decision"], "deny");
    assert!(mine[0]["Reason"].as_str().is_some_and(|r| r.contains("default policy")), "{}", mine[0]);
    assert!(mine[0]["ClientAddress"].as_str().is_some_and(|a| a.starts_with("127.0.0.1:")), "{}", mine[0]);
    assert_eq!(mine[1]["Segment"], "team");
    assert!(!text.contains(&secret), "no SecretID in the audit log");
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_log_needs_a_place_to_write() {
    let mut cfg = sekisho::config::RuntimeConfig::for_test("dc1", "audit-node");
    cfg.acl = json!({"enabled": true, "audit": {"enabled": true}});
    let Err(err) = sekisho::agent::Agent::start(cfg).await else {
        panic!("an audit log without a data dir or path was accepted");
    };
    assert!(err.to_string().contains("acl.audit.path"), "{err}");
}
