//! Federation tests: several datacenters in one process ([`TestFederation`]), their servers in
//! one WAN pool, every link through the shared fault set.

use std::net::SocketAddr;
use std::time::Duration;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use http::Method;
use sekisho::client::{Client, ClientConfig, Response};
use sekisho::testing::pki::TestPki;
use sekisho::testing::{TestCluster, TestFederation, eventually};
use sekisho_pki::Role;
use serde_json::{Value, json};

mod acl;
mod netns;

const DEADLINE: Duration = Duration::from_secs(20);

/// The client agent of each test datacenter (after its 3 servers).
const CLIENT: usize = 3;

/// A client of node `i` presenting the management token (ignored where ACLs are off).
fn http(c: &TestCluster, i: usize) -> Client {
    let mut cfg = ClientConfig::new(c.agent(i).http_addr().to_string());
    cfg.token = Some(acl::ROOT.to_owned());
    Client::new(cfg)
}

/// A client of node `i` without a token.
fn anonymous(c: &TestCluster, i: usize) -> Client {
    Client::new(ClientConfig::new(c.agent(i).http_addr().to_string()))
}

async fn call(c: &Client, method: Method, path: &str, body: Option<Value>) -> Response {
    let body = body.map(|b| match b {
        Value::String(s) => s.into_bytes(),
        other => other.to_string().into_bytes(),
    });
    c.request(method, path, body).await.unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn json_of(r: &Response) -> Value {
    serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("JSON ({e}): {}", r.text()))
}

/// Mutual TLS on every node, with certificates naming each node's own datacenter
/// (`server.<dc>.consul` for servers).
fn mtls(pki: &TestPki, dc: &str, i: usize, cfg: &mut sekisho::config::RuntimeConfig) {
    let role = if i < CLIENT { Role::Server } else { Role::Client };
    let files = pki.issue(&format!("{dc}-node{i}"), role, dc);
    pki.mtls(cfg, &files);
    if i == CLIENT {
        cfg.ports.dns = Some(0);
    }
}

async fn dns(addr: SocketAddr, name: &str, qtype: RecordType) -> Message {
    let mut m = Message::query();
    m.metadata.id = rand::random();
    m.metadata.recursion_desired = true;
    m.add_query(hickory_proto::op::Query::query(Name::from_ascii(name).expect("name"), qtype));
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    socket.connect(addr).await.expect("connect");
    socket.send(&m.to_vec().expect("encode")).await.expect("send");
    let mut buf = vec![0u8; 65535];
    let n = tokio::time::timeout(DEADLINE, socket.recv(&mut buf))
        .await
        .expect("DNS reply in time")
        .expect("recv");
    Message::from_vec(&buf[..n]).expect("decode")
}

fn a_records(m: &Message) -> Vec<String> {
    let mut out: Vec<String> = m
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(a.0.to_string()),
            _ => None,
        })
        .collect();
    out.sort();
    out
}

/// Registers node `node` at `addr` with a `web` instance whose check is `status`, through
/// the catalog of the datacenter `c` serves.
async fn register_web(c: &TestCluster, node: &str, addr: &str, status: &str) {
    let body = json!({
        "Node": node, "Address": addr,
        "TaggedAddresses": {"wan": format!("{addr}0")},
        "Service": {"Service": "web", "Port": 8080, "Tags": ["v1"]},
        "Check": {"CheckID": "web-check", "Name": "web", "ServiceID": "web", "Status": status},
    });
    let r = call(&http(c, CLIENT), Method::PUT, "/v1/catalog/register", Some(body)).await;
    assert_eq!(r.status, 200, "{}", r.text());
}

async fn datacenters(c: &Client) -> Vec<String> {
    serde_json::from_value(json_of(&call(c, Method::GET, "/v1/catalog/datacenters", None).await))
        .expect("list")
}

/// Three datacenters (dc1 the primary) of 3 servers + 1 client agent with mutual TLS,
/// federated over the WAN pool or, with `gateways`, only through federation gateways.
pub(crate) async fn federation(
    gateways: bool,
    dir: &std::path::Path,
    tune: impl Fn(&str, usize, &mut sekisho::config::RuntimeConfig),
) -> TestFederation {
    let pki = TestPki::new(dir);
    let t = |dc: &str, i: usize, cfg: &mut sekisho::config::RuntimeConfig| {
        mtls(&pki, dc, i, cfg);
        tune(dc, i, cfg);
    };
    let dcs = ["dc1", "dc2", "dc3"];
    if gateways {
        TestFederation::start_via_gateways(&dcs, 3, 1, t).await
    } else {
        TestFederation::start(&dcs, 3, 1, t).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_datacenters_forward_kv_dns_and_blocking_queries_over_mutual_tls() {
    forwarding(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn only_through_gateways_three_datacenters_forward_kv_dns_and_blocking_queries() {
    forwarding(true).await;
}

async fn forwarding(gateways: bool) {
    let dir = tempfile::tempdir().expect("tempdir");
    let fed = federation(gateways, dir.path(), |dc, _, cfg| cfg.acl = acl::acl_config(dc)).await;
    let (dc1, dc2, dc3) = (fed.dc("dc1"), fed.dc("dc2"), fed.dc("dc3"));
    for c in [dc1, dc2, dc3] {
        c.wait_leader(DEADLINE).await;
        assert!(c.agent(0).tls().is_some_and(|t| t.rpc_requires_tls()), "mTLS is on");
    }
    let from_dc1 = http(dc1, CLIENT);
    eventually(DEADLINE, "the management token works in every datacenter", || async {
        for c in [dc1, dc2, dc3] {
            let r = http(c, CLIENT).request(Method::GET, "/v1/acl/token/self", None).await.ok()?;
            (r.status == 200).then_some(())?;
        }
        Some(())
    })
    .await;

    tracing::info!("--- default deny: a ?dc=dc2 write without a token is refused there");
    let r = call(&anonymous(dc1, CLIENT), Method::PUT, "/v1/kv/fed/where?dc=dc2", Some("x".into())).await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(r.text().contains("Permission denied"), "{}", r.text());

    // DNS runs under the dc1 client agent's default token: service and node read.
    let r = call(
        &from_dc1,
        Method::PUT,
        "/v1/acl/policy",
        Some(json!({"Name": "dns", "Rules": r#"service_prefix "" { policy = "read" } node_prefix "" { policy = "read" }"#})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = call(&from_dc1, Method::PUT, "/v1/acl/token", Some(json!({"Policies": [{"Name": "dns"}]}))).await;
    let dns_token = json_of(&r)["SecretID"].as_str().expect("SecretID").to_owned();
    let r = call(&from_dc1, Method::PUT, "/v1/agent/token/default", Some(json!({"Token": dns_token}))).await;
    assert_eq!(r.status, 200, "{}", r.text());

    tracing::info!("--- a ?dc=dc2 KV write from a dc1 client agent lands in dc2 only");
    let r = call(&from_dc1, Method::PUT, "/v1/kv/fed/where?dc=dc2", Some("in-dc2".into())).await;
    assert_eq!((r.status.as_u16(), r.text().trim()), (200, "true"), "{}", r.text());
    let here = call(&http(dc2, CLIENT), Method::GET, "/v1/kv/fed/where?raw", None).await;
    assert_eq!((here.status.as_u16(), here.text()), (200, "in-dc2".to_owned()));
    for (c, what) in [(dc1, "dc1"), (dc3, "dc3")] {
        let r = call(&http(c, CLIENT), Method::GET, "/v1/kv/fed/where", None).await;
        assert_eq!(r.status, 404, "the key is not in {what}");
    }
    let via = call(&from_dc1, Method::GET, "/v1/kv/fed/where?dc=dc2&raw", None).await;
    assert_eq!(via.text(), "in-dc2", "reads forward too");

    tracing::info!("--- a blocking query across datacenters wakes on a write there");
    let index = via.index().expect("X-Consul-Index from dc2");
    let waiter = {
        let c = from_dc1.clone();
        tokio::spawn(async move {
            call(&c, Method::GET, &format!("/v1/kv/fed/where?dc=dc2&raw&index={index}&wait=30s"), None).await
        })
    };
    // The query is waiting in a dc2 server (the process-wide blocking-query gauge counts it:
    // the forwarding hops in dc1 are not blocking queries), and has not answered.
    eventually(DEADLINE, "the forwarded query blocks on dc2's index", || async {
        let m = json_of(&call(&http(dc2, 0), Method::GET, "/v1/agent/metrics", None).await);
        let blocking = m["Gauges"].as_array()?.iter().find(|g| g["Name"] == "consul.rpc.queries_blocking")?;
        (blocking["Value"].as_f64()? >= 1.0).then_some(())
    })
    .await;
    assert!(!waiter.is_finished(), "the forwarded query blocks on dc2's index");
    let r = call(&http(dc2, 0), Method::PUT, "/v1/kv/fed/where", Some("changed".into())).await;
    assert_eq!(r.status, 200);
    let woke =
        tokio::time::timeout(DEADLINE, waiter).await.expect("the blocking query returns").expect("task");
    assert_eq!(woke.text(), "changed");
    assert!(woke.index().unwrap_or(0) > index);

    tracing::info!("--- DNS on a dc1 client agent answers dc2's healthy instances");
    register_web(dc2, "web-a", "10.2.0.1", "passing").await;
    register_web(dc2, "web-b", "10.2.0.2", "critical").await;
    register_web(dc1, "web-local", "10.1.0.1", "passing").await;
    let dns_addr = dc1.agent(CLIENT).dns_addr().expect("DNS on the client agent");
    let m = dns(dns_addr, "web.service.dc2.consul.", RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NoError, "{m:?}");
    assert_eq!(a_records(&m), vec!["10.2.0.1"], "only dc2's passing instance");
    let m = dns(dns_addr, "v1.web.service.dc2.consul.", RecordType::A).await;
    assert_eq!(a_records(&m), vec!["10.2.0.1"], "tag form");
    let m = dns(dns_addr, "web.service.consul.", RecordType::A).await;
    assert_eq!(a_records(&m), vec!["10.1.0.1"], "the local datacenter is untouched");
    let m = dns(dns_addr, "_web._tcp.service.dc2.consul.", RecordType::SRV).await;
    let targets: Vec<String> = m
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::SRV(s) => Some(format!("{}:{}", s.target, s.port)),
            _ => None,
        })
        .collect();
    assert_eq!(targets.len(), 1, "{m:?}");
    assert!(targets[0].ends_with(".dc2.consul.:8080"), "SRV targets name dc2: {targets:?}");
    let m = dns(dns_addr, "web-b.node.dc2.consul.", RecordType::A).await;
    assert_eq!(a_records(&m), vec!["10.2.0.2"], "node lookups in dc2");
    let m = dns(dns_addr, "web.service.dc9.consul.", RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail, "an unknown datacenter");

    tracing::info!("--- an unknown datacenter is 'No path to datacenter'");
    let r = call(&from_dc1, Method::GET, "/v1/kv/fed/where?dc=dc9", None).await;
    assert_eq!(r.status, 500);
    assert!(r.text().contains("No path to datacenter"), "{}", r.text());

    tracing::info!("--- /v1/catalog/datacenters follows the WAN delays");
    fed.set_wan_delay("dc1", "dc2", Duration::from_millis(40));
    fed.set_wan_delay("dc1", "dc3", Duration::from_millis(5));
    eventually(Duration::from_secs(60), "dc1 sees dc3 nearer than dc2", || async {
        (datacenters(&from_dc1).await == ["dc1", "dc3", "dc2"]).then_some(())
    })
    .await;
    fed.set_wan_delay("dc1", "dc2", Duration::from_millis(2));
    fed.set_wan_delay("dc1", "dc3", Duration::from_millis(40));
    eventually(Duration::from_secs(60), "dc1 sees dc2 nearer than dc3 after the delays swap", || async {
        (datacenters(&from_dc1).await == ["dc1", "dc2", "dc3"]).then_some(())
    })
    .await;
    let coords = json_of(&call(&from_dc1, Method::GET, "/v1/coordinate/datacenters", None).await);
    let names: Vec<&str> =
        coords.as_array().expect("list").iter().filter_map(|d| d["Datacenter"].as_str()).collect();
    assert_eq!(names.len(), 3, "{coords}");
    if gateways {
        let (a, b) = (fed.ips("dc1")[0], fed.ips("dc2")[0]);
        assert!(!fed.faults.allows(a, b), "the fabric lets datacenters meet only at the gateways");
        let g = fed.gateway("dc2").stats();
        let routed = g.local.load(std::sync::atomic::Ordering::Relaxed);
        assert!(routed > 0, "dc2's gateway carried the traffic");
    } else {
        let members = json_of(&call(&http(dc1, 0), Method::GET, "/v1/agent/members?wan", None).await);
        let wan_names: Vec<&str> =
            members.as_array().expect("list").iter().filter_map(|m| m["Name"].as_str()).collect();
        assert_eq!(wan_names.len(), 9, "{wan_names:?}");
        assert!(wan_names.iter().all(|n| n.ends_with(".dc1") || n.ends_with(".dc2") || n.ends_with(".dc3")));
    }
    fed.shutdown().await;
}

/// Runs the `sekisho` binary against `addr`; returns the exit code and stdout + stderr.
async fn cli(addr: &str, args: &[&str]) -> (i32, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_sekisho"))
        .args(args)
        .arg(format!("-http-addr={addr}"))
        .env_remove("CONSUL_HTTP_ADDR")
        .env_remove("SEKISHO_HTTP_ADDR")
        .output()
        .await
        .expect("sekisho runs");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

/// [`cli`] until it exits 0 (coordinates need a few gossip rounds), else its last answer.
async fn eventually_cli(addr: &str, args: &[&str]) -> (i32, String) {
    let ok = sekisho::testing::poll_until(DEADLINE, || async {
        let r = cli(addr, args).await;
        (r.0 == 0).then_some(r)
    })
    .await;
    match ok {
        Some(r) => r,
        None => cli(addr, args).await,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_forwarded_call_fails_over_to_the_next_server_of_the_datacenter() {
    let mut fed = TestFederation::start(&["dc1", "dc2"], 3, 1, |_, _, _| {}).await;
    let from_dc1 = http(fed.dc("dc1"), CLIENT);
    let r = call(&from_dc1, Method::PUT, "/v1/kv/fo?dc=dc2", Some("1".into())).await;
    assert_eq!(r.status, 200, "{}", r.text());
    // Kill one dc2 server: forwarded calls keep working (the router moves on; WAN gossip
    // eventually marks it failed).
    let dead = format!("{}.dc2", fed.dc("dc2").node(1).config.node_name);
    fed.dc_mut("dc2").kill(1).await;
    for i in 0..10 {
        let r = call(&from_dc1, Method::PUT, &format!("/v1/kv/fo{i}?dc=dc2"), Some("1".into())).await;
        assert_eq!(r.status, 200, "write {i} after a dc2 server died: {}", r.text());
    }

    tracing::info!("--- the CLI's -wan forms");
    let server0 = fed.dc("dc1").agent(0).http_addr().to_string();
    let (code, out) = cli(&server0, &["members", "-wan"]).await;
    assert_eq!(code, 0, "{out}");
    let lines: Vec<&str> = out.lines().skip(1).collect();
    assert_eq!(lines.len(), 6, "{out}");
    assert!(lines.iter().all(|l| l.contains(".dc1 ") || l.contains(".dc2 ")), "{out}");
    let me = format!("{}.dc1", fed.dc("dc1").node(0).config.node_name);
    let other = format!("{}.dc2", fed.dc("dc2").node(0).config.node_name);
    let (code, out) = eventually_cli(&server0, &["rtt", "-wan", &other]).await;
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!("{other} <-> {me} rtt:")) && out.contains("using WAN coordinates"),
        "{out}"
    );
    let (code, out) = cli(&server0, &["rtt", "-wan", "nobody.dc9"]).await;
    assert_eq!(code, 1, "{out}");
    let (code, out) = cli(&server0, &["force-leave", "-wan", "-prune", &dead]).await;
    assert_eq!(code, 0, "{out}");
    eventually(DEADLINE, "the pruned WAN member is gone", || async {
        let (_, out) = cli(&server0, &["members", "-wan"]).await;
        (!out.contains(&dead)).then_some(())
    })
    .await;
    // Cut dc2 off entirely: "No path to datacenter", and dc1 keeps serving its own data.
    fed.partition_dcs("dc1", "dc2");
    eventually(DEADLINE, "a cut-off datacenter answers 'No path to datacenter'", || async {
        let r = call(&from_dc1, Method::GET, "/v1/kv/fo?dc=dc2", None).await;
        (r.status == 500 && r.text().contains("No path to datacenter")).then_some(())
    })
    .await;
    let r = call(&from_dc1, Method::PUT, "/v1/kv/local", Some("1".into())).await;
    assert_eq!(r.status, 200);
    fed.heal();
    eventually(Duration::from_secs(30), "forwarding resumes after the partition heals", || async {
        let r = call(&from_dc1, Method::GET, "/v1/kv/fo?dc=dc2&raw", None).await;
        (r.status == 200 && r.text() == "1").then_some(())
    })
    .await;
    fed.shutdown().await;
}

/// Registers `db` on node `node` at `addr` with its check `status`.
async fn register_db(c: &TestCluster, node: &str, addr: &str, status: &str) {
    let body = json!({
        "Node": node, "Address": addr,
        "Service": {"Service": "db", "Port": 5432},
        "Check": {"CheckID": "db-check", "Name": "db", "ServiceID": "db", "Status": status},
    });
    let r = call(&http(c, CLIENT), Method::PUT, "/v1/catalog/register", Some(body)).await;
    assert_eq!(r.status, 200, "{}", r.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_prepared_query_fails_over_to_the_nearest_datacenter_and_back() {
    prepared_query_failover(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn through_gateways_a_prepared_query_fails_over_to_the_nearest_datacenter_and_back() {
    prepared_query_failover(true).await;
}

async fn prepared_query_failover(gateways: bool) {
    let dir = tempfile::tempdir().expect("tempdir");
    let fed = federation(gateways, dir.path(), |_, _, _| {}).await;
    let (dc1, dc2, dc3) = (fed.dc("dc1"), fed.dc("dc2"), fed.dc("dc3"));
    register_db(dc1, "db-1", "10.1.0.5", "passing").await;
    register_db(dc2, "db-2", "10.2.0.5", "passing").await;
    register_db(dc3, "db-3", "10.3.0.5", "passing").await;
    // dc3 is near dc1, dc2 far.
    fed.set_wan_delay("dc1", "dc2", Duration::from_millis(40));
    fed.set_wan_delay("dc1", "dc3", Duration::from_millis(3));
    let from_dc1 = http(dc1, CLIENT);
    // Every dc1 server (any may run the query) sees dc3 nearer.
    eventually(Duration::from_secs(60), "every dc1 server sees dc3 nearer than dc2", || async {
        (0..CLIENT)
            .all(|i| dc1.agent(i).server().datacenters_by_distance() == ["dc1", "dc3", "dc2"])
            .then_some(())
    })
    .await;
    let r = call(
        &from_dc1,
        Method::POST,
        "/v1/query",
        Some(json!({"Name": "db", "Service": {"Service": "db", "OnlyPassing": true, "Failover": {"NearestN": 1}}})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let execute = || async {
        let r = call(&from_dc1, Method::GET, "/v1/query/db/execute", None).await;
        assert_eq!(r.status, 200, "{}", r.text());
        let v = json_of(&r);
        let nodes: Vec<String> = v["Nodes"]
            .as_array()
            .expect("Nodes")
            .iter()
            .filter_map(|n| n["Node"]["Node"].as_str().map(str::to_owned))
            .collect();
        (v["Datacenter"].as_str().unwrap_or_default().to_owned(), nodes, v["Failovers"].as_u64().unwrap_or(0))
    };
    assert_eq!(execute().await, ("dc1".to_owned(), vec!["db-1".to_owned()], 0), "local first");

    tracing::info!("--- the local instance fails: the nearest datacenter answers");
    register_db(dc1, "db-1", "10.1.0.5", "critical").await;
    assert_eq!(execute().await, ("dc3".to_owned(), vec!["db-3".to_owned()], 1));
    let dns_addr = dc1.agent(CLIENT).dns_addr().expect("DNS");
    // DNS reads are stale by default (`dns_config.allow_stale`): a follower may answer before
    // it has applied the health change the leader just served over HTTP.
    let dns_answers = |want: &'static str| async move {
        eventually(
            Duration::from_secs(10),
            &format!("DNS answers {want} for db.query.consul"),
            || async move {
                let m = dns(dns_addr, "db.query.consul.", RecordType::A).await;
                (a_records(&m) == vec![want]).then_some(())
            },
        )
        .await;
    };
    dns_answers("10.3.0.5").await;

    tracing::info!("--- NearestN: 1 stops at the nearest: with dc3 down too, nothing");
    register_db(dc3, "db-3", "10.3.0.5", "critical").await;
    let (_, nodes, failovers) = execute().await;
    assert!(nodes.is_empty() && failovers == 1, "{nodes:?} after {failovers} failovers");

    tracing::info!("--- recovery: back to the local instance");
    register_db(dc1, "db-1", "10.1.0.5", "passing").await;
    assert_eq!(execute().await, ("dc1".to_owned(), vec!["db-1".to_owned()], 0));
    dns_answers("10.1.0.5").await;
    fed.shutdown().await;
}
