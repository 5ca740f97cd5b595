//! Client agents: no Raft state, every request handed to a server over RPC.

use std::time::{Duration, Instant};

use http::Method;
use sekisho::testing::{TestCluster, eventually};
use serde_json::{Value, json};

use crate::{DEADLINE, client, get, put};

async fn json_of(c: &TestCluster, i: usize, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let body = body.map(|b| serde_json::to_vec(&b).expect("json"));
    let r = client(c, i).request(method, path, body).await.expect("request");
    (r.status.as_u16(), serde_json::from_slice(&r.body).unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn client_agents_forward_reads_and_writes_and_see_every_member() {
    // The client agents also serve DNS, from a server's catalog.
    let c = TestCluster::start_full(3, 2, |i, cfg| {
        if i >= 3 {
            cfg.ports.dns = Some(0);
        }
    })
    .await;
    let (c1, c2) = (3, 4);
    assert!(c.agent(c1).server().is_client());
    assert!(put(&c, c1, "from/client", "hello").await.expect("write through a client agent"));
    assert_eq!(get(&c, 0, "from/client").await.as_deref(), Some("hello"));
    assert_eq!(get(&c, c2, "from/client").await.as_deref(), Some("hello"));

    // A blocking query through a client agent wakes on a write through another one.
    let index = client(&c, c1)
        .request(Method::GET, "/v1/kv/from/client", None)
        .await
        .expect("get")
        .index()
        .expect("index");
    let waiter = {
        let cl = client(&c, c1);
        tokio::spawn(async move {
            cl.request(Method::GET, &format!("/v1/kv/from/client?index={index}&wait=20s"), None).await
        })
    };
    // Whether the write lands before or while the query blocks, it must return a newer index.
    assert!(put(&c, c2, "from/client", "again").await.expect("write"));
    let r = tokio::time::timeout(DEADLINE, waiter)
        .await
        .expect("the blocked read returns")
        .expect("task")
        .expect("ok");
    assert!(r.index().expect("index") > index);

    let names: Vec<String> = (0..5).map(|i| c.node(i).config.node_name.clone()).collect();
    eventually(DEADLINE, "a client agent lists all five members alive", || async {
        let (_, v) = json_of(&c, c1, Method::GET, "/v1/agent/members", None).await;
        let alive = v
            .as_array()?
            .iter()
            .filter(|m| m["Status"] == 1 && names.iter().any(|n| m["Name"] == n.as_str()))
            .count();
        (alive == 5).then_some(())
    })
    .await;
    let body = json!({"Name": "web", "Address": "10.9.8.7", "Port": 80});
    assert_eq!(json_of(&c, c2, Method::PUT, "/v1/agent/service/register", Some(body)).await.0, 200);
    let dns = c.agent(c1).dns_addr().expect("DNS on the client agent");
    eventually(
        DEADLINE,
        "the client agent's DNS answers a service registered through the other client",
        || async {
            (dns_a(dns, "web.service.consul.").await == ["10.9.8.7".parse::<std::net::IpAddr>().ok()?])
                .then_some(())
        },
    )
    .await;

    // Client agents are registered by the leader with a passing serfHealth, and no consul service.
    eventually(DEADLINE, "the client node is in the catalog", || async {
        let (_, v) = json_of(&c, 0, Method::GET, &format!("/v1/health/node/{}", names[c1]), None).await;
        v.as_array()?
            .iter()
            .any(|ch| ch["CheckID"] == "serfHealth" && ch["Status"] == "passing")
            .then_some(())
    })
    .await;
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_client_turns_critical_and_its_locks_are_released() {
    let mut c = TestCluster::start_full(3, 1, |_, _| {}).await;
    let cl = 3;
    let name = c.node(cl).config.node_name.clone();
    let (s, _) = json_of(
        &c,
        cl,
        Method::PUT,
        "/v1/agent/service/register",
        Some(json!({"Name": "job", "Check": {"TTL": "60s", "Status": "passing"}})),
    )
    .await;
    assert_eq!(s, 200);
    eventually(DEADLINE, "the client's service is passing in the catalog", || async {
        let (_, v) = json_of(&c, 0, Method::GET, "/v1/health/service/job?passing", None).await;
        (v.as_array()?.len() == 1).then_some(())
    })
    .await;
    let (s, v) = json_of(
        &c,
        cl,
        Method::PUT,
        "/v1/session/create",
        Some(json!({"Name": "leader-election", "LockDelay": "0s"})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let sid = v["ID"].as_str().expect("session id").to_owned();
    let (_, info) = json_of(&c, 0, Method::GET, &format!("/v1/session/info/{sid}"), None).await;
    assert_eq!(info[0]["Node"], name.as_str(), "the session belongs to the client's node");
    let r = client(&c, cl)
        .request(Method::PUT, &format!("/v1/kv/locks/job?acquire={sid}"), Some(b"me".to_vec()))
        .await
        .expect("acquire");
    assert_eq!(&r.body[..], b"true");

    c.kill(cl).await;
    eventually(DEADLINE, "the dead client's service leaves the passing answers", || async {
        let (_, v) = json_of(&c, 0, Method::GET, "/v1/health/service/job?passing", None).await;
        v.as_array()?.is_empty().then_some(())
    })
    .await;
    eventually(DEADLINE, "its lock is released", || async {
        let (_, v) = json_of(&c, 0, Method::GET, "/v1/kv/locks/job", None).await;
        v[0].get("Session").is_none().then_some(())
    })
    .await;
    c.shutdown().await;
}

/// The A records of `name` from the DNS server at `addr`.
async fn dns_a(addr: std::net::SocketAddr, name: &str) -> Vec<std::net::IpAddr> {
    use hickory_proto::op::Message;
    use hickory_proto::rr::{Name, RData, RecordType};
    let mut q = Message::query();
    q.metadata.id = 7;
    q.add_query(hickory_proto::op::Query::query(Name::from_ascii(name).expect("name"), RecordType::A));
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    socket.send_to(&q.to_vec().expect("encode"), addr).await.expect("send");
    let mut buf = vec![0u8; 4096];
    let Ok(Ok(n)) = tokio::time::timeout(Duration::from_secs(3), socket.recv(&mut buf)).await else {
        return Vec::new();
    };
    let Ok(m) = Message::from_vec(&buf[..n]) else { return Vec::new() };
    m.answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(std::net::IpAddr::V4(a.0)),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sessions_renewed_through_a_follower_or_a_client_agent_outlive_their_ttl() {
    // Session TTL timers live on the leader; renewals arriving anywhere else must reach them.
    let c = TestCluster::start_full(3, 1, |_, _| {}).await;
    let leader = c.wait_leader(DEADLINE).await;
    let follower = (0..3).find(|&i| i != leader).expect("a follower");
    let create = |i: usize, name: &'static str| {
        let c = &c;
        async move {
            let body = json!({"Name": name, "TTL": "1s", "LockDelay": "0s"});
            let (s, v) = json_of(c, i, Method::PUT, "/v1/session/create", Some(body)).await;
            assert_eq!(s, 200, "{v}");
            v["ID"].as_str().expect("session id").to_owned()
        }
    };
    let via_follower = create(follower, "via-follower").await;
    let via_client = create(3, "via-client").await;
    let unrenewed = create(follower, "unrenewed").await;
    // Renew for well over 2 x TTL (Consul's expiry grace).
    let until = Instant::now() + Duration::from_secs(4);
    let mut every = tokio::time::interval(Duration::from_millis(300));
    while Instant::now() < until {
        every.tick().await;
        for (i, sid) in [(follower, &via_follower), (3, &via_client)] {
            let (s, v) = json_of(&c, i, Method::PUT, &format!("/v1/session/renew/{sid}"), None).await;
            assert_eq!(s, 200, "renewal of {sid} through node {i}: {v}");
            assert_eq!(v[0]["ID"], sid.as_str());
        }
    }
    eventually(DEADLINE, "the unrenewed session expires", || async {
        let (_, v) = json_of(&c, 0, Method::GET, &format!("/v1/session/info/{unrenewed}"), None).await;
        v.as_array()?.is_empty().then_some(())
    })
    .await;
    for sid in [&via_follower, &via_client] {
        let (_, v) = json_of(&c, leader, Method::GET, &format!("/v1/session/info/{sid}"), None).await;
        assert_eq!(v[0]["ID"], sid.as_str(), "renewed session {sid} is still alive");
    }
    let (s, _) = json_of(&c, follower, Method::PUT, &format!("/v1/session/renew/{unrenewed}"), None).await;
    assert_eq!(s, 404, "renewing an expired session through a follower");
    c.shutdown().await;
}
