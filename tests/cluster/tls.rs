//! Mutual TLS on server RPC: a cluster with `verify_incoming`, `verify_outgoing` and
//! `verify_server_hostname` forms and serves writes; plaintext, a foreign CA, an expired
//! certificate and a client certificate posing as a server are all refused.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use sekisho::config::RuntimeConfig;
use sekisho::net::fault::Faults;
use sekisho::rpc::{RpcClient, RpcError};
use sekisho::testing::pki::{CertFiles, TestPki};
use sekisho::testing::{TestCluster, eventually, poll_until};
use sekisho::tls::AgentTls;
use sekisho_pki::{LeafParams, Role};

use super::{DEADLINE, get, put};

const T: Duration = Duration::from_secs(5);

/// Starts 3 servers and 1 client agent with mutual TLS from `pki`.
async fn tls_cluster(pki: &Arc<TestPki>) -> TestCluster {
    let pki = pki.clone();
    TestCluster::start_full(3, 1, move |i, cfg| {
        let role = if i < 3 { Role::Server } else { Role::Client };
        let files = pki.issue(&format!("node{i}"), role, "dc1");
        pki.mtls(cfg, &files);
    })
    .await
}

/// An RPC client presenting `files`, as an agent configured with them would.
fn rpc_client_with(pki: &TestPki, files: &CertFiles, from: IpAddr, server_hostname: bool) -> RpcClient {
    let mut cfg = RuntimeConfig::for_test("dc1", "probe");
    pki.mtls(&mut cfg, files);
    cfg.tls.defaults.verify_server_hostname = Some(server_hostname);
    let tls = AgentTls::load(&cfg).expect("TLS files load");
    RpcClient::new(from, Faults::none()).with_tls(tls)
}

fn rpc_addr(c: &TestCluster, i: usize) -> String {
    c.agent(i).server().config().rpc_addr.clone()
}

fn from_ip() -> IpAddr {
    "127.0.0.1".parse().expect("ip")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_mutual_tls_cluster_serves_writes_and_refuses_plaintext_and_foreign_certificates() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = Arc::new(TestPki::new(&dir.path().join("ca")));
    let c = tls_cluster(&pki).await;
    let leader = c.wait_leader(DEADLINE).await;
    assert!(c.agent(leader).tls().is_some_and(|t| t.rpc_requires_tls()));
    tracing::info!("--- writes through a follower and the client agent cross TLS");
    assert!(put(&c, (leader + 1) % 3, "tls/a", "1").await.expect("write through a follower"));
    assert!(put(&c, 3, "tls/b", "2").await.expect("write through the client agent"));
    assert_eq!(get(&c, 3, "tls/a").await.as_deref(), Some("1"));

    tracing::info!("--- plaintext to port 8300 is refused");
    let plain = RpcClient::new(from_ip(), Faults::none());
    // The connection is refused once the server has read the plaintext preface, so the client
    // cannot tell whether the request got through: `NoAnswer` (a certificate refused after a
    // TLS 1.3 handshake, below, looks the same).
    let e = plain.call::<_, String>(&rpc_addr(&c, leader), "/rpc/v1/ping", &(), T).await.unwrap_err();
    assert!(matches!(e, RpcError::Unreachable { .. } | RpcError::NoAnswer { .. }), "{e}");

    tracing::info!("--- a certificate from another CA is refused");
    let other = TestPki::new(&dir.path().join("other"));
    // It trusts our CA (so its own check of the server passes) but presents a server
    // certificate of the other CA.
    let foreign_files = other.issue("foreign", Role::Server, "dc1");
    let foreign = {
        let mut cfg = RuntimeConfig::for_test("dc1", "foreign");
        pki.mtls(&mut cfg, &foreign_files);
        let tls = AgentTls::load(&cfg).expect("loads");
        RpcClient::new(from_ip(), Faults::none()).with_tls(tls)
    };
    let e = foreign.call::<_, String>(&rpc_addr(&c, leader), "/rpc/v1/ping", &(), T).await.unwrap_err();
    assert!(matches!(e, RpcError::Unreachable { .. } | RpcError::NoAnswer { .. }), "{e}");

    tracing::info!("--- a client certificate may use client paths, never Raft");
    let client_files = pki.issue("intruder", Role::Client, "dc1");
    let as_client = rpc_client_with(&pki, &client_files, from_ip(), true);
    let name: String = as_client.call(&rpc_addr(&c, leader), "/rpc/v1/ping", &(), T).await.expect("ping");
    assert_eq!(name, c.node(leader).config.node_name);
    let e =
        as_client.call_raw(&rpc_addr(&c, leader), "/raft/v1/vote", Default::default(), T).await.unwrap_err();
    assert!(matches!(&e, RpcError::Denied(t) if t.contains("server.dc1.consul")), "{e}");
    let e =
        as_client.call::<_, ()>(&rpc_addr(&c, leader), "/rpc/v1/remove_server", &1u64, T).await.unwrap_err();
    assert!(matches!(e, RpcError::Denied(_)), "{e}");
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_with_a_client_certificate_cannot_join_as_a_server_or_serve_rpc() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = Arc::new(TestPki::new(&dir.path().join("ca")));
    let mut c = tls_cluster(&pki).await;
    let leader = c.wait_leader(DEADLINE).await;
    let rogue_files = pki.issue("rogue", Role::Client, "dc1");
    let rogue = c.add_node(true, |cfg| pki.mtls(cfg, &rogue_files)).await;
    let rogue_name = c.node(rogue).config.node_name.clone();
    eventually(DEADLINE, "the leader sees the rogue in gossip as a server", || async {
        let m = c.agent(leader).gossip().members();
        m.iter()
            .any(|m| m.name == rogue_name && m.tags.get("role").is_some_and(|r| r == "consul"))
            .then_some(())
    })
    .await;
    tracing::info!("--- servers refuse its certificate when they dial it");
    let server_files = pki.issue("checker", Role::Server, "dc1");
    let as_server = rpc_client_with(&pki, &server_files, from_ip(), true);
    let e = as_server.call::<_, String>(&rpc_addr(&c, rogue), "/rpc/v1/ping", &(), T).await.unwrap_err();
    assert!(matches!(&e, RpcError::Unreachable { detail, .. } if detail.contains("certificate")), "{e}");
    tracing::info!("--- and it never enters the Raft configuration (15 reconcile rounds)");
    let rogue_id = c.agent(rogue).server().node_id();
    let joined = poll_until(Duration::from_secs(3), || async {
        let m = c.agent(leader).server().metrics();
        m.membership_config.membership().nodes().any(|(id, _)| *id == rogue_id).then_some(())
    })
    .await;
    assert!(joined.is_none(), "a client certificate joined Raft");
    assert!(put(&c, leader, "still", "writes").await.expect("the cluster still writes"));
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_expired_certificate_is_refused_with_a_log_line_naming_it() {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let _ = tracing_subscriber::registry().with(sekisho::telemetry::logs::layer()).try_init();
    let mut logs = sekisho::telemetry::logs::subscribe(tracing::Level::WARN, false);

    let dir = tempfile::tempdir().expect("tempdir");
    let pki = Arc::new(TestPki::new(&dir.path().join("ca")));
    let c = tls_cluster(&pki).await;
    let leader = c.wait_leader(DEADLINE).await;
    let mut params = LeafParams::new(Role::Client, SystemTime::now() - Duration::from_secs(10 * 86_400));
    params.days = 2;
    let expired = pki.issue_with("expired", &params);
    let info =
        sekisho_pki::parse_pem_chain(&std::fs::read_to_string(&expired.cert).unwrap()).unwrap()[0].clone();
    let client = rpc_client_with(&pki, &expired, from_ip(), true);
    let e = client.call::<_, String>(&rpc_addr(&c, leader), "/rpc/v1/ping", &(), T).await.unwrap_err();
    assert!(matches!(e, RpcError::Unreachable { .. } | RpcError::NoAnswer { .. }), "{e}");
    let stop = tokio_util::sync::CancellationToken::new();
    let wanted = async {
        loop {
            let line = logs.next(&stop).await.expect("the log stream stays open");
            if line.contains("refused the client certificate") {
                return line;
            }
        }
    };
    let line =
        tokio::time::timeout(DEADLINE, wanted).await.expect("a log line about the expired certificate");
    let until =
        humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + Duration::from_secs(info.not_after as u64));
    assert!(line.contains(&info.subject) && line.contains(&info.serial), "{line}");
    assert!(line.contains(&until.to_string()) && line.contains("expired"), "{line}");
    c.shutdown().await;
}

/// Opens one HTTPS connection to `addr`, verifying `server.dc1.consul` against `ca_pem`;
/// returns the serial of the certificate presented and the connection's request sender.
async fn open_https(
    addr: std::net::SocketAddr,
    ca_pem: &str,
) -> (String, hyper::client::conn::http1::SendRequest<http_body_util::Full<bytes::Bytes>>) {
    let roots = sekisho_pki::parse_certificates(ca_pem).expect("CA");
    let opts = sekisho_pki::TlsOptions::new(sekisho_pki::TlsVersion::Tls12, vec![b"http/1.1".to_vec()]);
    let cfg =
        sekisho_pki::client_config_with_resolver(&roots, None, sekisho_pki::ServerNameCheck::Verify, &opts)
            .expect("client config");
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let name = rustls::pki_types::ServerName::try_from("server.dc1.consul").expect("name");
    let tls = tokio_rustls::TlsConnector::from(cfg).connect(name, tcp).await.expect("TLS handshake");
    let leaf = tls.get_ref().1.peer_certificates().expect("a certificate")[0].clone();
    let serial = sekisho_pki::parse_certificate_der(&leaf).expect("x509").serial;
    let (sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls)).await.expect("http/1.1");
    tokio::spawn(conn);
    (serial, sender)
}

fn serial_of(files: &CertFiles) -> String {
    sekisho_pki::parse_pem_chain(&std::fs::read_to_string(&files.cert).unwrap()).unwrap()[0].serial.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn https_certificates_rotate_without_cutting_a_blocking_query() {
    use sekisho::client::{Client, ClientConfig};
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = TestPki::new(&dir.path().join("ca"));
    let v1 = pki.issue("https", Role::Server, "dc1");
    let agent = sekisho::testing::TestAgent::start_with(|cfg, tuning| {
        cfg.ports.https = Some(0);
        cfg.tls.https = sekisho::config::tls::TlsBlock {
            ca_file: Some(pki.ca_file().to_path_buf()),
            cert_file: Some(v1.cert.clone()),
            key_file: Some(v1.key.clone()),
            ..Default::default()
        };
        tuning.tls_watch_interval = Duration::from_millis(100);
    })
    .await;
    let https = agent.handle().https_addr().expect("HTTPS is on");
    let ca_pem = std::fs::read_to_string(pki.ca_file()).unwrap();
    let plain = Client::new(ClientConfig::new(agent.http_addr().to_string()));
    plain.kv_put("rot", b"a".to_vec(), None, None).await.expect("write");
    let index = plain.request(http::Method::GET, "/v1/kv/rot", None).await.unwrap().index().unwrap();

    tracing::info!("--- the certificate's remaining lifetime is a gauge");
    let m = plain.request(http::Method::GET, "/v1/agent/metrics", None).await.unwrap();
    let v: serde_json::Value = m.json("metrics").unwrap();
    let gauge = v["Gauges"]
        .as_array()
        .and_then(|g| g.iter().find(|g| g["Name"] == "consul.agent.tls.cert.expiry"))
        .unwrap_or_else(|| panic!("no expiry gauge in {v}"))
        .clone();
    let secs = gauge["Value"].as_f64().expect("a value");
    assert!(secs > 360.0 * 86_400.0 && secs <= 365.0 * 86_400.0, "{gauge}");
    assert!(gauge["Labels"]["cert"].as_str().is_some_and(|c| c.contains("https.pem")), "{gauge}");

    tracing::info!("--- the CLI's client speaks HTTPS with -ca-file");
    let mut cc = ClientConfig::new(format!("https://{https}"));
    cc.tls.ca_file = Some(pki.ca_file().to_path_buf());
    cc.tls.server_name = Some("server.dc1.consul".into());
    let entry = Client::new(cc.clone()).kv_get("rot").await.expect("GET over HTTPS").expect("the key");
    assert_eq!(entry.value_bytes(), b"a");
    cc.tls.ca_file = None;
    let e = Client::new(cc).kv_get("rot").await.expect_err("the system roots do not know our CA");
    assert!(e.to_string().contains("certificate"), "{e}");

    tracing::info!("--- a blocking query on the old certificate survives the rotation");
    let (serial_a, mut conn_a) = open_https(https, &ca_pem).await;
    assert_eq!(serial_a, serial_of(&v1));
    let req = http::Request::get(format!("/v1/kv/rot?index={index}&wait=30s"))
        .header("host", "server.dc1.consul")
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    let blocked = tokio::spawn(async move { conn_a.send_request(req).await });
    let v2 = pki.issue("https", Role::Server, "dc1");
    let tls = agent.handle().tls().expect("TLS state").clone();
    tls.reload().expect("reload takes the new certificate");
    let (serial_b, _) = open_https(https, &ca_pem).await;
    assert_eq!(serial_b, serial_of(&v2), "new connections present the new certificate");
    plain.kv_put("rot", b"b".to_vec(), None, None).await.expect("write");
    let answer = tokio::time::timeout(DEADLINE, blocked).await.expect("the blocked query answers").unwrap();
    assert_eq!(answer.expect("the old connection is still up").status(), 200);

    tracing::info!("--- a broken certificate is refused and the good one stays");
    std::fs::write(&v2.cert, "-----BEGIN CERTIFICATE-----\nnot base64\n").unwrap();
    let e = tls.reload().expect_err("garbage is refused").to_string();
    assert!(e.contains("https.pem"), "the error names the file: {e}");
    assert_eq!(open_https(https, &ca_pem).await.0, serial_b);

    tracing::info!("--- a changed file is picked up without a reload");
    let v3 = pki.issue("https", Role::Server, "dc1");
    let want = serial_of(&v3);
    eventually(DEADLINE, "the watcher loads the new files", || async {
        (open_https(https, &ca_pem).await.0 == want).then_some(())
    })
    .await;
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_auto_encrypt_client_with_only_the_ca_gets_a_certificate_and_works() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = Arc::new(TestPki::new(&dir.path().join("ca")));
    let p = pki.clone();
    let c = TestCluster::start_full(3, 1, move |i, cfg| {
        if i < 3 {
            let files = p.issue(&format!("node{i}"), Role::Server, "dc1");
            p.mtls(cfg, &files);
            cfg.tls.auto_encrypt.allow_tls = true;
        } else {
            cfg.tls.defaults.ca_file = Some(p.ca_file().to_path_buf());
            cfg.tls.internal_rpc.verify_server_hostname = Some(true);
            cfg.tls.auto_encrypt.tls = true;
            cfg.tls.auto_encrypt.dns_san = vec!["web.example.internal".into()];
        }
    })
    .await;
    let leader = c.wait_leader(DEADLINE).await;
    let client_tls = c.agent(3).tls().expect("TLS on the client").clone();
    let own = client_tls.own_certs();
    assert_eq!(own.len(), 1, "{own:?}");
    let cert = &own[0].info;
    assert!(cert.dns_sans.contains(&"client.dc1.consul".to_owned()), "{cert:?}");
    assert!(cert.dns_sans.contains(&"web.example.internal".to_owned()), "{cert:?}");
    assert!(cert.issuer.contains("Auto-Encrypt"), "signed by the servers' CA: {}", cert.issuer);
    assert!(cert.not_after - cert.not_before <= 3 * 86_400 + 120, "a short-lived certificate");
    assert!(
        c.agent(leader).tls().is_some_and(|t| t.rpc_requires_tls()),
        "servers require client certificates"
    );
    assert!(put(&c, 3, "auto/encrypt", "works").await.expect("write through the auto_encrypt client"));
    assert_eq!(get(&c, 3, "auto/encrypt").await.as_deref(), Some("works"));

    tracing::info!("--- without a certificate, TLS reaches only the signing endpoint");
    let mut cfg = RuntimeConfig::for_test("dc1", "anonymous");
    cfg.tls.defaults.ca_file = Some(pki.ca_file().to_path_buf());
    cfg.tls.defaults.verify_outgoing = Some(true);
    let anonymous = RpcClient::new(from_ip(), Faults::none()).with_tls(AgentTls::load(&cfg).unwrap());
    let e = anonymous.call::<_, String>(&rpc_addr(&c, leader), "/rpc/v1/ping", &(), T).await.unwrap_err();
    assert!(matches!(&e, RpcError::Denied(t) if t.contains("client certificate")), "{e}");
    c.shutdown().await;
}
