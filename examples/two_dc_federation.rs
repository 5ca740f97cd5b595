//! Two federated datacenters on this machine, with mutual TLS and default-deny ACLs:
//! dc1 (primary) and dc2 (replicating dc1's ACLs), three servers and a client agent each on
//! their own loopback addresses. Registers `web` in dc2, then looks it up from a dc1 client
//! agent over DNS (`web.service.dc2.consul`) and HTTP (`?dc=dc2`).
//!
//! `cargo run --example two_dc_federation` (CI runs it). The configuration each node gets
//! is what an operator writes in its config file:
//!
//! ```json
//! { "datacenter": "dc2", "primary_datacenter": "dc1", "server": true,
//!   "retry_join_wan": ["<a dc1 server>:8302"],
//!   "tls": { "defaults": { "ca_file": "ca.pem", "cert_file": "dc2-server.pem", "key_file": "…",
//!            "verify_incoming": true, "verify_outgoing": true, "verify_server_hostname": true } },
//!   "acl": { "enabled": true, "default_policy": "deny", "enable_token_replication": true,
//!            "tokens": { "replication": "<a token with acl = write in dc1>", "agent": "…" } } }
//! ```

use std::time::Duration;

use hickory_proto::op::Message;
use hickory_proto::rr::{Name, RData, RecordType};
use http::Method;
use sekisho::client::{Client, ClientConfig};
use sekisho::testing::TestFederation;
use sekisho::testing::pki::TestPki;
use sekisho_pki::Role;
use serde_json::json;

const ROOT: &str = "0b7c2f3e-1d4a-4b5c-9e8f-6a7b8c9d0e1f";
const CLIENT: usize = 3;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let pki = TestPki::new(&dir.path().join("ca"));
    println!("CA written to {}", pki.ca_file().display());
    let started = std::time::Instant::now();
    let fed = TestFederation::start(&["dc1", "dc2"], 3, 1, |dc, i, cfg| {
        let role = if i < CLIENT { Role::Server } else { Role::Client };
        let files = pki.issue(&format!("{dc}-{i}"), role, dc);
        pki.mtls(cfg, &files);
        cfg.ports.dns = (i == CLIENT).then_some(0);
        cfg.acl = if dc == "dc1" {
            json!({"enabled": true, "default_policy": "deny",
                   "tokens": {"initial_management": ROOT, "agent": ROOT, "default": ROOT}})
        } else {
            json!({"enabled": true, "default_policy": "deny", "enable_token_replication": true,
                   "tokens": {"replication": ROOT, "agent": ROOT, "default": ROOT}})
        };
    })
    .await;
    println!("two datacenters of 3 servers + 1 client agent federated in {:?}", started.elapsed());
    let (dc1, dc2) = (fed.dc("dc1"), fed.dc("dc2"));
    let client = |c: &sekisho::testing::TestCluster| {
        let mut cfg = ClientConfig::new(c.agent(CLIENT).http_addr().to_string());
        cfg.token = Some(ROOT.to_owned());
        Client::new(cfg)
    };

    // The management token was created in dc1; dc2 learns it through replication.
    let registration = json!({
        "Node": "web-host", "Address": "10.2.0.7",
        "Service": {"Service": "web", "Port": 8080},
        "Check": {"CheckID": "web", "Name": "web", "ServiceID": "web", "Status": "passing"},
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let r = client(dc2)
            .request(Method::PUT, "/v1/catalog/register", Some(registration.to_string().into_bytes()))
            .await?;
        if r.status == 200 {
            break;
        }
        anyhow::ensure!(std::time::Instant::now() < deadline, "registering in dc2 failed: {}", r.text());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!("registered web at 10.2.0.7 in dc2");

    let r = client(dc1).request(Method::GET, "/v1/catalog/service/web?dc=dc2", None).await?;
    anyhow::ensure!(r.status == 200, "cross-DC catalog read failed: {}", r.text());
    let v: serde_json::Value = serde_json::from_slice(&r.body)?;
    println!("dc1 -> GET /v1/catalog/service/web?dc=dc2: {} at {}", v[0]["Node"], v[0]["Address"]);

    let dns = dc1.agent(CLIENT).dns_addr().expect("DNS on the client agent");
    let mut m = Message::query();
    m.metadata.id = 7;
    m.add_query(hickory_proto::op::Query::query(Name::from_ascii("web.service.dc2.consul.")?, RecordType::A));
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await?;
    socket.send_to(&m.to_vec()?, dns).await?;
    let mut buf = vec![0u8; 4096];
    let (n, _) = tokio::time::timeout(Duration::from_secs(5), socket.recv_from(&mut buf)).await??;
    let reply = Message::from_vec(&buf[..n])?;
    let answers: Vec<String> = reply
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(format!("{} A {}", r.name, a.0)),
            _ => None,
        })
        .collect();
    anyhow::ensure!(!answers.is_empty(), "no DNS answer: {reply:?}");
    println!("dig @{dns} web.service.dc2.consul: {}", answers.join(", "));
    fed.shutdown().await;
    Ok(())
}
