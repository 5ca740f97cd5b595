//! The design card's ACL scenario on a 3-server cluster with `default_policy = "deny"`:
//! team A's token writes `team-a/` keys, fires `deploy-a` and runs `exec` on `web-a-*`
//! nodes, and is refused on `team-b/`, `deploy-b` and `web-b-*`; DNS answers everyone
//! through the agents' default token; and the explain probe names the deciding rule of each
//! denial.

use std::time::Duration;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{Name, RecordType};
use http::{Method, StatusCode};
use sekisho::client::{Client, ClientConfig, Response};
use sekisho::testing::{TestCluster, eventually};
use serde_json::{Value, json};

use super::DEADLINE;

const ROOT: &str = "3d0c5a1e-8b7f-4e2a-9c6d-0f1e2d3c4b5a";
const DNS_TOKEN: &str = "7a2b9c4d-1e3f-4a5b-8c6d-9e0f1a2b3c4d";

const TEAM_A: &str = r#"
key_prefix "team-a/" { policy = "write" }
event "deploy-a" { policy = "write" }
agent_prefix "" { policy = "read" }
agent_prefix "web-a-" { policy = "write" }
node_prefix "" { policy = "read" }
session_prefix "" { policy = "write" }
key_prefix "_rexec" { policy = "write" }
event "_rexec" { policy = "write" }
"#;

fn client(c: &TestCluster, i: usize, token: &str) -> Client {
    let mut cfg = ClientConfig::new(c.agent(i).http_addr().to_string());
    cfg.token = Some(token.to_owned());
    Client::new(cfg)
}

async fn call(cl: &Client, method: Method, path: &str, body: Option<&str>) -> Response {
    cl.request(method.clone(), path, body.map(|b| b.as_bytes().to_vec()))
        .await
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

fn text(r: &Response) -> String {
    String::from_utf8_lossy(&r.body).into_owned()
}

async fn exec(c: &TestCluster, via: usize, token: &str, node: &str) -> (i32, String, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_sekisho"))
        .arg("exec")
        .arg(format!("-http-addr={}", c.agent(via).http_addr()))
        .arg(format!("-token={token}"))
        .args(["-node", node, "-wait", "1s", "echo", "hi"])
        .env_remove("CONSUL_HTTP_ADDR")
        .env_remove("SEKISHO_HTTP_ADDR")
        .env_remove("CONSUL_HTTP_TOKEN")
        .output()
        .await
        .expect("sekisho exec runs");
    let s = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code().unwrap_or(-1), s(&out.stdout), s(&out.stderr))
}

/// `sekisho acl explain` for the token `accessor`, run with the management token:
/// (allowed, the whole output).
async fn explain(
    c: &TestCluster,
    accessor: &str,
    resource: &str,
    segment: &str,
    access: &str,
) -> (bool, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_sekisho"))
        .args(["acl", "explain"])
        .arg(format!("-http-addr={}", c.agent(1).http_addr()))
        .arg(format!("-token={ROOT}"))
        .args(["-token-accessor", accessor, "-resource", resource, "-segment", segment, "-access", access])
        .env_remove("CONSUL_HTTP_ADDR")
        .env_remove("SEKISHO_HTTP_ADDR")
        .env_remove("CONSUL_HTTP_TOKEN")
        .output()
        .await
        .expect("sekisho acl explain runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(0), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    let allowed = match text.lines().next() {
        Some("Decision: allow") => true,
        Some("Decision: deny") => false,
        other => panic!("no decision line: {other:?} in {text}"),
    };
    (allowed, text)
}

async fn dns_a(addr: std::net::SocketAddr, name: &str) -> Message {
    let mut m = Message::query();
    m.metadata.id = 4242;
    m.add_query(hickory_proto::op::Query::query(Name::from_ascii(name).expect("name"), RecordType::A));
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    socket.connect(addr).await.expect("connect");
    socket.send(&m.to_vec().expect("encode")).await.expect("send");
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(DEADLINE, socket.recv(&mut buf)).await.expect("a DNS reply").expect("recv");
    Message::from_vec(&buf[..n]).expect("decode")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn team_a_works_on_its_own_keys_events_and_nodes_and_nowhere_else() {
    let names = ["web-a-1", "web-a-2", "web-b-1"];
    let c = TestCluster::start_with(3, |i, cfg| {
        cfg.node_name = names[i].to_owned();
        cfg.disable_remote_exec = false;
        cfg.ports.dns = Some(0);
        cfg.acl = json!({
            "enabled": true, "default_policy": "deny",
            "tokens": {"initial_management": ROOT, "agent": ROOT, "default": DNS_TOKEN},
        });
    })
    .await;
    c.wait_leader(DEADLINE).await;
    let root = client(&c, 0, ROOT);
    eventually(DEADLINE, "the management token resolves", || async {
        let r = root.request(Method::GET, "/v1/acl/token/self", None).await.ok()?;
        (r.status == StatusCode::OK).then_some(())
    })
    .await;

    // The default token: what DNS (and token-less HTTP) runs under.
    let r = call(
        &root,
        Method::PUT,
        "/v1/acl/policy",
        Some(
            &json!({"Name": "dns", "Rules":
        r#"service_prefix "" { policy = "read" } node_prefix "" { policy = "read" }"#})
            .to_string(),
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", text(&r));
    let r = call(
        &root,
        Method::PUT,
        "/v1/acl/token",
        Some(
            &json!({"SecretID": DNS_TOKEN,
        "Description": "DNS", "Policies": [{"Name": "dns"}]})
            .to_string(),
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", text(&r));

    let r = call(
        &root,
        Method::PUT,
        "/v1/acl/policy",
        Some(&json!({"Name": "team-a", "Rules": TEAM_A}).to_string()),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", text(&r));
    let r = call(
        &root,
        Method::PUT,
        "/v1/acl/token",
        Some(
            &json!({"Description": "team A",
        "Policies": [{"Name": "team-a"}]})
            .to_string(),
        ),
    )
    .await;
    let team: Value = serde_json::from_slice(&r.body).expect("token JSON");
    let secret = team["SecretID"].as_str().expect("SecretID").to_owned();
    let accessor = team["AccessorID"].as_str().expect("AccessorID").to_owned();
    // Through a different server than the one that created it.
    let a = client(&c, 2, &secret);

    // KV.
    let r = call(&a, Method::PUT, "/v1/kv/team-a/flag", Some("on")).await;
    assert_eq!((r.status, text(&r)), (StatusCode::OK, "true".to_owned()));
    let r = call(&a, Method::PUT, "/v1/kv/team-b/flag", Some("on")).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(
        text(&r),
        format!(
            "Permission denied: token with AccessorID '{accessor}' lacks permission 'key:write' on \"team-b/flag\""
        )
    );
    let (allowed, reason) = explain(&c, &accessor, "key", "team-b/flag", "write").await;
    assert!(!allowed);
    assert!(reason.contains("default policy") && reason.contains("deny"), "{reason}");
    let (allowed, reason) = explain(&c, &accessor, "key", "team-a/flag", "write").await;
    assert!(allowed && reason.contains("team-a") && reason.contains("key_prefix \"team-a/\""), "{reason}");

    // Events.
    let r = call(&a, Method::PUT, "/v1/event/fire/deploy-a", Some("v2")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", text(&r));
    let r = call(&a, Method::PUT, "/v1/event/fire/deploy-b", Some("v2")).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(text(&r).contains("lacks permission 'event:write' on \"deploy-b\""), "{}", text(&r));
    let (allowed, reason) = explain(&c, &accessor, "event", "deploy-b", "write").await;
    assert!(!allowed && reason.contains("default policy"), "{reason}");
    assert!(
        reason.contains("event \"deploy-b\" { policy = \"write\" }"),
        "a rule that would allow it: {reason}"
    );

    // Exec: on team A's nodes it runs; a filter that reaches web-b-1 is refused before
    // anything is fired.
    let (code, out, err) = exec(&c, 2, &secret, "^web-a-").await;
    assert_eq!(code, 0, "{out}\n{err}");
    for n in ["web-a-1", "web-a-2"] {
        assert!(out.contains(&format!("==> {n}: finished with exit code 0")), "{out}");
    }
    assert!(!out.contains("web-b-1"), "{out}");
    let (code, out, err) = exec(&c, 0, &secret, "^web-").await;
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(err.contains("lacks permission 'agent:write' on \"web-b-1\""), "{out}\n{err}");
    assert!(!out.contains("finished with exit code"), "nothing ran: {out}");
    let (allowed, reason) = explain(&c, &accessor, "agent", "web-b-1", "write").await;
    assert!(!allowed);
    assert!(reason.contains("agent_prefix \"\""), "the read-only agent rule decided: {reason}");

    // DNS through the default token, on every agent.
    let r = call(
        &root,
        Method::PUT,
        "/v1/catalog/register",
        Some(
            &json!({"Node": "ext-1", "Address": "10.1.2.3", "Service": {"Service": "web", "Port": 80}})
                .to_string(),
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", text(&r));
    for i in 0..3 {
        let addr = c.agent(i).dns_addr().expect("DNS on");
        eventually(DEADLINE, "web.service.consul answers", || async move {
            let m = dns_a(addr, "web.service.consul.").await;
            (m.metadata.response_code == ResponseCode::NoError && !m.answers.is_empty()).then_some(())
        })
        .await;
    }
    // The same lookup is refused once the default token loses its service rule.
    let dns_policy = call(&root, Method::GET, "/v1/acl/policy/name/dns", None).await;
    let id = serde_json::from_slice::<Value>(&dns_policy.body).expect("JSON")["ID"]
        .as_str()
        .expect("ID")
        .to_owned();
    let r = call(
        &root,
        Method::PUT,
        &format!("/v1/acl/policy/{id}"),
        Some(
            &json!({"Name": "dns",
        "Rules": r#"node_prefix "" { policy = "read" }"#})
            .to_string(),
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", text(&r));
    let addr = c.agent(0).dns_addr().expect("DNS on");
    eventually(Duration::from_secs(40), "web.service.consul is filtered", || async move {
        let m = dns_a(addr, "web.service.consul.").await;
        (m.answers.is_empty()).then_some(())
    })
    .await;
    c.shutdown().await;
}
