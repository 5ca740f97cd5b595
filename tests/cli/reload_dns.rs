//! The operator's loop end to end: a service file dropped into the config dir, then
//! `sekisho reload` (or SIGHUP), shows up in DNS; removing it and reloading removes it; a broken
//! file is reported and changes nothing.

use std::net::{IpAddr, SocketAddr};
use std::process::Stdio;
use std::time::Duration;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use sekisho::testing::eventually;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::UdpSocket;
use tokio::process::{Child, Command};

use crate::support::sekisho;

const DEADLINE: Duration = Duration::from_secs(20);

/// A `sekisho agent -dev` child process with its bound HTTP and DNS ports.
struct Agent {
    child: Child,
    http: SocketAddr,
    dns: SocketAddr,
}

/// Starts the agent and reads the bound ports from its banner
/// (`Client Addr: [127.0.0.1] (HTTP: 1234, HTTPS: -1, DNS: 5678)`).
async fn spawn_agent(config_dir: &std::path::Path) -> Agent {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sekisho"))
        .args([
            "agent",
            "-dev",
            "-node",
            "reloader",
            "-http-port=0",
            "-dns-port=0",
            "-server-port=0",
            "-serf-lan-port=0",
            "-serf-wan-port=-1",
        ])
        .arg(format!("-config-dir={}", config_dir.display()))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn the agent");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let banner = tokio::time::timeout(DEADLINE, async {
        while let Some(line) = lines.next_line().await.expect("read stdout") {
            if line.contains("Client Addr:") {
                return line;
            }
        }
        panic!("the agent exited before printing its banner");
    })
    .await
    .expect("the agent prints its banner");
    let port = |label: &str| -> u16 {
        let rest = &banner[banner.find(label).expect(label) + label.len()..];
        rest.split(|c: char| !c.is_ascii_digit()).next().and_then(|p| p.parse().ok()).expect("a port")
    };
    let ip: IpAddr = "127.0.0.1".parse().expect("ip");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Agent { child, http: SocketAddr::new(ip, port("HTTP: ")), dns: SocketAddr::new(ip, port("DNS: ")) }
}

/// The A records for `name` (empty on NXDOMAIN).
async fn lookup(dns: SocketAddr, name: &str) -> Vec<IpAddr> {
    let mut q = Message::query();
    q.metadata.id = 4242;
    q.add_query(hickory_proto::op::Query::query(Name::from_ascii(name).expect("name"), RecordType::A));
    let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    socket.send_to(&q.to_vec().expect("encode"), dns).await.expect("send");
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), socket.recv(&mut buf))
        .await
        .expect("reply")
        .expect("recv");
    let m = Message::from_vec(&buf[..n]).expect("decode");
    if m.metadata.response_code == ResponseCode::NXDomain {
        return Vec::new();
    }
    m.answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            _ => None,
        })
        .collect()
}

async fn wait_for(dns: SocketAddr, name: &str, present: bool) {
    let what = format!("{name} present={present} in DNS");
    eventually(DEADLINE, &what, || async { (lookup(dns, name).await.is_empty() != present).then_some(()) })
        .await;
}

#[tokio::test]
async fn a_service_file_plus_reload_appears_in_dns_and_leaves_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The service's HTTP check targets a real local server, so it passes at its first run.
    let target = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let target_addr = target.local_addr().expect("addr");
    let app = axum::Router::new().route("/health", axum::routing::get(|| async { "ok" }));
    tokio::spawn(async move { axum::serve(target, app).await });

    let mut agent = spawn_agent(dir.path()).await;
    let addr = format!("-http-addr={}", agent.http);
    wait_for(agent.dns, "consul.service.consul.", true).await;
    assert!(lookup(agent.dns, "web.service.consul.").await.is_empty());

    let web = format!(
        r#"{{"service": {{"name": "web", "address": "10.1.2.3", "port": {p}, "tags": ["v1"],
            "check": {{"http": "http://{target_addr}/health", "interval": "1s", "timeout": "1s"}}}}}}"#,
        p = target_addr.port()
    );
    std::fs::write(dir.path().join("web.json"), &web).expect("write");
    let run = sekisho(&["reload", &addr]).await.ok();
    assert_eq!(run.stdout, "Configuration reload triggered\n");
    wait_for(agent.dns, "web.service.consul.", true).await;
    assert_eq!(
        lookup(agent.dns, "v1.web.service.consul.").await,
        ["10.1.2.3".parse::<IpAddr>().expect("ip")]
    );

    // A broken file: the reload fails, says why, and web keeps answering.
    std::fs::write(dir.path().join("broken.json"), r#"{"service": {"name": "x", "port": "eighty"}}"#)
        .expect("write");
    let run = sekisho(&["reload", &addr]).await.expect_code(1);
    assert!(run.stderr.contains("broken.json") || run.stderr.contains("Port"), "{run:?}");
    assert!(!lookup(agent.dns, "web.service.consul.").await.is_empty());
    std::fs::remove_file(dir.path().join("broken.json")).expect("rm");

    std::fs::remove_file(dir.path().join("web.json")).expect("rm");
    sekisho(&["reload", &addr]).await.ok();
    wait_for(agent.dns, "web.service.consul.", false).await;

    // SIGHUP does the same as `sekisho reload`.
    std::fs::write(dir.path().join("web.json"), &web).expect("write");
    let pid = agent.child.id().expect("pid") as libc::pid_t;
    // SAFETY: sending a signal to our own child process.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGHUP) }, 0);
    wait_for(agent.dns, "web.service.consul.", true).await;
    agent.child.kill().await.expect("kill");
}
