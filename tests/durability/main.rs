//! Durability: acknowledged writes survive `kill -9`.
//!
//! Starts the built binary as a server with a data dir (snapshots every 100 entries so both
//! the snapshot and the log-replay paths run), sends 1,000 PUTs from 16 concurrent clients,
//! SIGKILLs it, starts it again on the same data dir and reads back every acknowledged value.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use sekisho::testing::eventually;

mod cluster;

type HttpClient = Client<HttpConnector, Full<Bytes>>;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
}

fn spawn(dir: &std::path::Path, port: u16) -> Child {
    Command::new(env!("CARGO_BIN_EXE_sekisho"))
        .args(["agent", "-server", "-bootstrap", "-node", "durable", "-bind", "127.0.0.1"])
        .arg(format!("-data-dir={}", dir.join("data").display()))
        .arg(format!("-config-file={}", dir.join("tuning.json").display()))
        .arg(format!("-http-port={port}"))
        .arg("-dns-port=-1")
        .arg("-server-port=0")
        .arg("-serf-lan-port=0")
        .arg("-serf-wan-port=-1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn sekisho")
}

async fn request(c: &HttpClient, method: &str, url: String, body: Vec<u8>) -> Option<(u16, Bytes)> {
    let req = hyper::Request::builder().method(method).uri(url).body(Full::new(Bytes::from(body))).ok()?;
    let resp = c.request(req).await.ok()?;
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.ok()?.to_bytes();
    Some((status, bytes))
}

async fn wait_ready(c: &HttpClient, port: u16) {
    eventually(Duration::from_secs(30), "agent elects itself leader", || async {
        let (s, b) = request(c, "GET", format!("http://127.0.0.1:{port}/v1/status/leader"), vec![]).await?;
        (s == 200 && b.len() > 2).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_kill_9() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("tuning.json"),
        r#"{"raft_snapshot_threshold": 100, "raft_trailing_logs": 20}"#,
    )
    .expect("config");
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let port = free_port();
    let mut child = spawn(dir.path(), port);
    wait_ready(&client, port).await;

    let acked = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for w in 0..16u32 {
        let (c, acked) = (client.clone(), acked.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..(1000 / 16 + 1) {
                let n = w * 1000 + i;
                let url = format!("http://127.0.0.1:{port}/v1/kv/durable/{n}");
                if let Some((200, body)) = request(&c, "PUT", url, format!("value-{n}").into_bytes()).await {
                    assert_eq!(&body[..], b"true");
                    acked.lock().push(n);
                }
            }
        }));
    }
    for t in tasks {
        t.await.expect("writer");
    }
    child.kill().expect("kill -9");
    child.wait().expect("reap");
    let acked = acked.lock().clone();
    assert!(acked.len() >= 1000, "all writes were acknowledged before the kill ({})", acked.len());

    let mut child = spawn(dir.path(), port);
    wait_ready(&client, port).await;
    for n in &acked {
        let url = format!("http://127.0.0.1:{port}/v1/kv/durable/{n}?raw");
        let got = request(&client, "GET", url, vec![]).await;
        assert_eq!(
            got.map(|(s, b)| (s, b.to_vec())),
            Some((200, format!("value-{n}").into_bytes())),
            "key {n}"
        );
    }
    child.kill().expect("kill");
    child.wait().expect("reap");
}
