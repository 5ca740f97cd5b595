//! Three server processes and two client agents (the built binary) on their own loopback
//! addresses with data dirs, `bootstrap_expect = 3` and `retry_join`; `kill -9` of the leader
//! under a write load of 16 clients spread over all five agents; every acknowledged write must
//! be readable once the survivors elect a leader, and the killed server rejoins on restart and
//! catches up. On the way it measures what `sekisho members` on a client agent shows: a new
//! member within 2 s of starting, the killed leader failed within the detection bound.

use std::net::{IpAddr, SocketAddr};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use sekisho::testing::eventually;

use crate::{HttpClient, request};

/// A free port on `ip` (the OS picks; the process binds it right after).
fn free_port_on(ip: IpAddr) -> u16 {
    std::net::TcpListener::bind((ip, 0)).and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
}

struct Node {
    server: bool,
    ip: IpAddr,
    http: u16,
    serf: u16,
    rpc: u16,
    dir: std::path::PathBuf,
    child: Option<Child>,
}

impl Node {
    fn http_url(&self, path: &str) -> String {
        format!("http://{}:{}{path}", self.ip, self.http)
    }

    fn spawn(&mut self, name: &str, join: &[String]) {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_sekisho"));
        cmd.args(["agent", "-node", name]);
        if self.server {
            cmd.args(["-server", "-bootstrap-expect=3"]).arg(format!("-server-port={}", self.rpc));
        }
        cmd.arg(format!("-bind={}", self.ip))
            .arg(format!("-advertise={}", self.ip))
            .arg(format!("-client={}", self.ip))
            .arg(format!("-http-port={}", self.http))
            .arg(format!("-serf-lan-port={}", self.serf))
            .arg("-serf-wan-port=-1")
            .arg("-dns-port=-1")
            .arg(format!("-data-dir={}", self.dir.display()))
            .arg(format!("-config-file={}", self.dir.with_extension("json").display()))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for j in join {
            cmd.arg(format!("-retry-join={j}"));
        }
        self.child = Some(cmd.spawn().expect("spawn sekisho"));
    }

    fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().expect("kill -9");
            c.wait().expect("reap");
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// `sekisho members` against `base` (an `http://ip:port` URL): (name, status) per row.
async fn members_of(base: &str) -> Option<Vec<(String, String)>> {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_sekisho"))
        .args(["members", &format!("-http-addr={base}")])
        .env_remove("CONSUL_HTTP_ADDR")
        .env_remove("SEKISHO_HTTP_ADDR")
        .output()
        .await
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let rows = text.lines().skip(1).map(|l| l.split_whitespace().map(str::to_owned).collect::<Vec<_>>());
    Some(rows.filter(|r| r.len() > 2).map(|r| (r[0].clone(), r[2].clone())).collect())
}

async fn alive_members(n: &Node) -> Option<Vec<String>> {
    let rows = members_of(&n.http_url("")).await?;
    Some(rows.into_iter().filter(|(_, s)| s == "alive").map(|(n, _)| n).collect())
}

async fn member_status(base: &str, name: &str) -> Option<String> {
    members_of(base).await?.into_iter().find(|(n, _)| n == name).map(|(_, s)| s)
}

async fn leader_rpc(c: &HttpClient, n: &Node) -> Option<String> {
    let (s, b) = request(c, "GET", n.http_url("/v1/status/leader"), vec![]).await?;
    let addr: String = serde_json::from_slice(&b).ok()?;
    (s == 200 && !addr.is_empty()).then_some(addr)
}

/// Writers of unique keys `<prefix>/<n>` (value `v<n>`) spread over `urls`, until `stop`.
struct Writers {
    stop: Arc<AtomicBool>,
    /// The keys whose PUT was answered `true`.
    acked: Arc<parking_lot::Mutex<Vec<u32>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

fn writers(client: &HttpClient, urls: &[String], count: u32, prefix: &'static str) -> Writers {
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let tasks = (0..count)
        .map(|w| {
            let (c, acked, stop, urls) = (client.clone(), acked.clone(), stop.clone(), urls.to_vec());
            tokio::spawn(async move {
                let mut i = 0u32;
                while !stop.load(Ordering::Relaxed) {
                    let n = w * 1_000_000 + i;
                    i += 1;
                    let url = format!("{}/v1/kv/{prefix}/{n}", urls[(n as usize) % urls.len()]);
                    if let Some((200, body)) = request(&c, "PUT", url, format!("v{n}").into_bytes()).await
                        && &body[..] == b"true"
                    {
                        acked.lock().push(n);
                    }
                }
            })
        })
        .collect();
    Writers { stop, acked, tasks }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_leader_process_under_load_loses_no_acknowledged_write() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = 10 + (std::process::id() % 200) as u8;
    let mut nodes: Vec<Node> = (0..5u8)
        .map(|i| {
            let ip = IpAddr::from([127, 0, base, 10 + i]);
            let d = dir.path().join(format!("s{i}"));
            std::fs::write(d.with_extension("json"), r#"{"raft_snapshot_threshold": 200, "raft_trailing_logs": 50, "performance": {"raft_multiplier": 1}}"#)
                .expect("config");
            let server = i < 3;
            Node { server, ip, http: free_port_on(ip), serf: free_port_on(ip), rpc: free_port_on(ip), dir: d, child: None }
        })
        .collect();
    let gossip: Vec<String> = nodes.iter().map(|n| SocketAddr::new(n.ip, n.serf).to_string()).collect();
    let names: Vec<String> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| format!("proc-{}{i}", if n.server { "s" } else { "c" }))
        .collect();
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    // Four agents first; the last client joins once client 3 lists the four alive.
    for i in 0..5 {
        if i == 4 {
            eventually(Duration::from_secs(30), "client 3 lists four members alive", || async {
                (alive_members(&nodes[3]).await?.len() == 4).then_some(())
            })
            .await;
        }
        let others: Vec<String> =
            gossip.iter().enumerate().filter(|(j, _)| *j != i).map(|(_, g)| g.clone()).collect();
        nodes[i].spawn(&names[i], &others);
    }
    eventually(Duration::from_secs(30), "client 4 answers", || async {
        request(&client, "GET", nodes[4].http_url("/v1/agent/self"), vec![]).await.filter(|(s, _)| *s == 200)
    })
    .await;
    let up = Instant::now();
    eventually(Duration::from_secs(30), "`sekisho members` on client 3 lists all five alive", || async {
        (alive_members(&nodes[3]).await?.len() == 5).then_some(())
    })
    .await;
    let listed = up.elapsed();
    eprintln!("client 3 listed the new client {listed:?} after it started answering");
    assert!(listed < Duration::from_secs(2), "a join reached `members` on another client in {listed:?}");
    let leader = eventually(Duration::from_secs(30), "the three processes elect a leader", || async {
        let l = leader_rpc(&client, &nodes[0]).await?;
        let all = futures::future::join_all(nodes[..3].iter().map(|n| leader_rpc(&client, n))).await;
        all.iter().all(|x| x.as_deref() == Some(l.as_str())).then_some(l)
    })
    .await;
    let leader_idx =
        nodes.iter().position(|n| SocketAddr::new(n.ip, n.rpc).to_string() == leader).expect("leader node");

    // 16 writers spread over all servers, writing unique keys until told to stop.
    let urls: Vec<String> = nodes.iter().map(|n| n.http_url("")).collect();
    let Writers { stop, acked, tasks: writers } = writers(&client, &urls, 16, "load");
    eventually(Duration::from_secs(30), "writes flow", || async { (acked.lock().len() > 200).then_some(()) })
        .await;
    let killed_at = Instant::now();
    nodes[leader_idx].kill9();
    let before = acked.lock().len();
    let detector = {
        let (url, name) = (nodes[3].http_url(""), names[leader_idx].clone());
        tokio::spawn(async move {
            eventually(Duration::from_secs(30), "the killed leader is listed failed", || async {
                (member_status(&url, &name).await.as_deref() == Some("failed")).then(|| killed_at.elapsed())
            })
            .await
        })
    };
    let survivor = (leader_idx + 1) % 3;
    eventually(Duration::from_secs(30), "writes are acknowledged again after the kill", || async {
        (acked.lock().len() > before + 100).then_some(())
    })
    .await;
    eprintln!("writes resumed {:?} after kill -9 of the leader", killed_at.elapsed());
    let failed_after = detector.await.expect("detector");
    eprintln!("`sekisho members` on client 3 listed the killed leader failed after {failed_after:?}");
    // LAN timers: suspicion timeout 4 s below 10 members, plus up to a probe interval (1 s)
    // before the first failed probe and the gossip rounds that spread the verdict.
    assert!(failed_after < Duration::from_secs(9), "failure detection took {failed_after:?}");
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.expect("writer");
    }
    let acked = acked.lock().clone();
    eprintln!("{} acknowledged writes", acked.len());
    for n in &acked {
        let url = nodes[survivor].http_url(&format!("/v1/kv/load/{n}?raw&consistent"));
        let got = request(&client, "GET", url, vec![]).await.map(|(s, b)| (s, b.to_vec()));
        assert_eq!(got, Some((200, format!("v{n}").into_bytes())), "acknowledged key {n} is readable");
    }

    // The killed server restarts on its data dir, rejoins and catches up.
    let others: Vec<String> =
        gossip.iter().enumerate().filter(|(j, _)| *j != leader_idx).map(|(_, g)| g.clone()).collect();
    nodes[leader_idx].spawn(&format!("proc-s{leader_idx}"), &others);
    let last = *acked.iter().max().expect("some writes");
    eventually(Duration::from_secs(30), "the restarted server has the last acknowledged write", || async {
        let url = nodes[leader_idx].http_url(&format!("/v1/kv/load/{last}?raw&stale"));
        let (s, b) = request(&client, "GET", url, vec![]).await?;
        (s == 200 && b.to_vec() == format!("v{last}").into_bytes()).then_some(())
    })
    .await;
}

/// `kill -9` of a random server process (leader or follower), restarted on its data dir,
/// over and over for `SEKISHO_CRASH_SECS` (default 120) under 8 writers; every acknowledged
/// write must be readable at the end, on every server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_random_servers_in_a_loop_loses_no_acknowledged_write() {
    let secs: u64 = std::env::var("SEKISHO_CRASH_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(120);
    let dir = tempfile::tempdir().expect("tempdir");
    let base = 10 + ((std::process::id() + 101) % 200) as u8;
    let mut nodes: Vec<Node> = (0..3u8)
        .map(|i| {
            let ip = IpAddr::from([127, 1, base, 10 + i]);
            let d = dir.path().join(format!("s{i}"));
            std::fs::write(
                d.with_extension("json"),
                r#"{"raft_snapshot_threshold": 200, "raft_trailing_logs": 50, "performance": {"raft_multiplier": 1}}"#,
            )
            .expect("config");
            Node { server: true, ip, http: free_port_on(ip), serf: free_port_on(ip), rpc: free_port_on(ip), dir: d, child: None }
        })
        .collect();
    let gossip: Vec<String> = nodes.iter().map(|n| SocketAddr::new(n.ip, n.serf).to_string()).collect();
    let join = |i: usize| -> Vec<String> {
        gossip.iter().enumerate().filter(|(j, _)| *j != i).map(|(_, g)| g.clone()).collect()
    };
    for (i, n) in nodes.iter_mut().enumerate() {
        n.spawn(&format!("crash-s{i}"), &join(i));
    }
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let leader_everywhere = |nodes: &[Node]| {
        let urls: Vec<String> = nodes.iter().map(|n| n.http_url("/v1/status/leader")).collect();
        let client = client.clone();
        async move {
            let all =
                futures::future::join_all(urls.iter().map(|u| request(&client, "GET", u.clone(), vec![])))
                    .await;
            let leaders: Vec<String> = all
                .into_iter()
                .map(|r| r.filter(|(s, _)| *s == 200).map(|(_, b)| String::from_utf8_lossy(&b).into_owned()))
                .collect::<Option<_>>()?;
            (leaders.iter().all(|l| l == &leaders[0] && l.len() > 2)).then_some(())
        }
    };
    eventually(Duration::from_secs(30), "three processes elect a leader", || leader_everywhere(&nodes)).await;

    let urls: Vec<String> = nodes.iter().map(|n| n.http_url("")).collect();
    let Writers { stop, acked, tasks: writers } = writers(&client, &urls, 8, "crash");
    let until = Instant::now() + Duration::from_secs(secs);
    let mut rounds = 0;
    let mut seed = std::process::id() as u64 ^ 0x5eed;
    while Instant::now() < until {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let victim = (seed >> 33) as usize % nodes.len();
        let before = acked.lock().len();
        nodes[victim].kill9();
        rounds += 1;
        eventually(Duration::from_secs(30), "writes are acknowledged again after a kill -9", || async {
            (acked.lock().len() > before + 20).then_some(())
        })
        .await;
        nodes[victim].spawn(&format!("crash-s{victim}"), &join(victim));
        eventually(Duration::from_secs(30), "the restarted server follows the leader", || {
            leader_everywhere(&nodes)
        })
        .await;
    }
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.expect("writer");
    }
    let acked = acked.lock().clone();
    eprintln!("{rounds} kill -9 rounds in {secs} s; {} acknowledged writes", acked.len());
    assert!(rounds >= 3, "only {rounds} kill rounds ran");
    let last = *acked.iter().max().expect("some writes");
    for n in &nodes {
        eventually(Duration::from_secs(30), "every server has the last acknowledged write", || async {
            let url = n.http_url(&format!("/v1/kv/crash/{last}?raw&stale"));
            let (s, b) = request(&client, "GET", url, vec![]).await?;
            (s == 200 && b.to_vec() == format!("v{last}").into_bytes()).then_some(())
        })
        .await;
    }
    // Every acknowledged key, read back on each server from its own state (one recurse
    // listing per server, compared against the acknowledgements).
    for (i, n) in nodes.iter().enumerate() {
        let (s, body) = request(&client, "GET", n.http_url("/v1/kv/crash/?recurse&stale"), vec![])
            .await
            .expect("list answers");
        assert_eq!(s, 200);
        let rows: Vec<serde_json::Value> = serde_json::from_slice(&body).expect("JSON list");
        let have: std::collections::HashMap<String, String> = rows
            .iter()
            .map(|r| {
                let v = base64::Engine::decode(
                    &base64::engine::general_purpose::STANDARD,
                    r["Value"].as_str().unwrap_or(""),
                )
                .unwrap_or_default();
                (r["Key"].as_str().unwrap_or("").to_owned(), String::from_utf8_lossy(&v).into_owned())
            })
            .collect();
        let missing: Vec<&u32> = acked
            .iter()
            .filter(|k| have.get(&format!("crash/{k}")) != Some(&format!("v{k}")))
            .take(5)
            .collect();
        assert!(missing.is_empty(), "server {i} lost acknowledged writes, e.g. {missing:?}");
    }
}
