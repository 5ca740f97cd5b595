//! `sekisho monitor` against a spawned `sekisho agent -dev` process: the agent installs the
//! log layer only in its own process, so the in-process TestAgent cannot show log lines.

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use sekisho::client::{Client, ClientConfig};
use sekisho::testing::eventually;
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};

use crate::support::sekisho;

/// A `sekisho agent -dev` child process on a free HTTP port; killed when dropped.
struct AgentProcess {
    _child: Child,
    addr: String,
}

impl AgentProcess {
    async fn start() -> AgentProcess {
        let node = format!("monitor-{}", &uuid::Uuid::new_v4().to_string()[..8]);
        let mut child = Command::new(env!("CARGO_BIN_EXE_sekisho"))
            .args([
                "agent",
                "-dev",
                "-http-port=0",
                "-dns-port=-1",
                "-server-port=0",
                "-serf-lan-port=0",
                "-serf-wan-port=-1",
                "-log-level=info",
                &format!("-node={node}"),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("spawning sekisho agent");
        let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        let port = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await.expect("agent stdout") {
                if let Some(port) = banner_http_port(&line) {
                    return port;
                }
            }
            panic!("the agent exited before printing its HTTP port");
        })
        .await
        .expect("the agent prints its banner within 30s");
        // Keep draining stdout so the agent never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        AgentProcess { _child: child, addr: format!("127.0.0.1:{port}") }
    }

    fn client(&self) -> Client {
        Client::new(ClientConfig::new(self.addr.clone()))
    }
}

/// The port in the banner's `Client Addr: [127.0.0.1] (HTTP: 8500, …)` line.
fn banner_http_port(line: &str) -> Option<u16> {
    let rest = line.split("(HTTP: ").nth(1)?;
    rest.split(',').next()?.trim().parse().ok()
}

/// A running `sekisho monitor` whose stdout lines are collected as they arrive.
struct Monitor {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Monitor {
    fn start(agent: &AgentProcess, extra: &[&str]) -> Monitor {
        let mut child = Command::new(env!("CARGO_BIN_EXE_sekisho"))
            .arg("monitor")
            .arg(format!("-http-addr={}", agent.addr))
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("spawning sekisho monitor");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        let mut reader = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        tokio::spawn(async move {
            while let Ok(Some(line)) = reader.next_line().await {
                sink.lock().push(line);
            }
        });
        Monitor { child, lines }
    }

    /// Waits until some line satisfies `f`.
    async fn wait_for(&self, what: &str, f: impl Fn(&str) -> bool) -> String {
        eventually(Duration::from_secs(20), what, || async {
            self.lines.lock().iter().find(|l| f(l)).cloned()
        })
        .await
    }

    async fn exit_code(mut self) -> i32 {
        let status = tokio::time::timeout(Duration::from_secs(20), self.child.wait())
            .await
            .expect("the monitor exits within 20s")
            .expect("waiting for the monitor");
        status.code().unwrap_or(-1)
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn monitor_streams_debug_lines_of_an_info_agent_until_it_leaves() {
    let agent = AgentProcess::start().await;
    let text = Monitor::start(&agent, &["-log-level=debug"]);
    let json = Monitor::start(&agent, &["-log-level", "debug", "-log-json"]);
    // The agent logs at info, but its Raft ticks log at debug: seeing one proves the stream.
    let debug = text.wait_for("a debug line", |l| l.contains(" [DEBUG] ")).await;
    assert!(debug.split(' ').next().is_some_and(|ts| ts.ends_with('Z')), "hclog timestamp: {debug}");
    json.wait_for("a JSON debug line", |l| l.contains("\"@level\":\"debug\"")).await;

    agent.client().agent_leave().await.expect("leave");
    let leave = text.wait_for("the leave line", |l| l.contains("graceful leave requested over HTTP")).await;
    assert!(leave.contains(" [INFO]  http.agent: graceful leave requested over HTTP"), "{leave}");
    let leave = json.wait_for("the JSON leave line", |l| l.contains("graceful leave")).await;
    let v: serde_json::Value = serde_json::from_str(&leave).expect("a JSON line");
    assert_eq!((v["@level"].as_str(), v["@module"].as_str()), (Some("info"), Some("http.agent")));

    text.wait_for("Consul's end-of-stream text", |l| l.starts_with("Remote side ended the monitor!")).await;
    assert_eq!(text.exit_code().await, 1, "the agent went away");
    assert_eq!(json.exit_code().await, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn monitor_reports_a_bad_level_and_an_unreachable_agent() {
    let agent = AgentProcess::start().await;
    let addr = format!("-http-addr={}", agent.addr);
    let bad = sekisho(&["monitor", &addr, "-log-level=verbose"]).await.expect_code(1);
    assert_eq!(
        bad.stderr.trim(),
        "Error starting monitor: Unexpected response code: 400 (Unknown log level: verbose)"
    );
    drop(agent);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = listener.local_addr().unwrap();
    drop(listener);
    let down = sekisho(&["monitor", &format!("-http-addr={closed}")]).await.expect_code(1);
    assert!(down.stderr.starts_with("Error starting monitor: "), "{down:#?}");
    assert!(down.stderr.contains(&format!("dial tcp {closed}: connect: connection refused")), "{down:#?}");
}

#[test]
fn banner_port_is_found() {
    let line = "          Client Addr: [127.0.0.1] (HTTP: 41234, HTTPS: -1, DNS: -1)";
    assert_eq!(banner_http_port(line), Some(41234));
    assert_eq!(banner_http_port("==> Sekisho agent running!"), None);
}
