//! Runner tests against real sockets, processes and servers on port 0.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::json;
use tokio::net::{TcpListener, UdpSocket};

use super::testutil::{Recorder, TestGrpc, TestHttp, WAIT, is_dead, opts, self_signed_tls, spec};
use super::{AliasedCheck, CheckRunner, RunnerOptions, Status};
use crate::testing::eventually;

#[test]
fn byte_limited_text_drops_a_split_character_only() {
    assert_eq!(super::lossy_prefix(b"abc"), "abc");
    assert_eq!(super::lossy_prefix("aé".as_bytes()), "aé");
    assert_eq!(super::lossy_prefix(&"a€".as_bytes()[..3]), "a");
    assert_eq!(super::lossy_prefix(b"a\xffb"), "a\u{fffd}b");
    assert_eq!(super::floor_boundary("aé", 2), 1);
    assert_eq!(super::floor_boundary("aé", 9), 3);
}

fn run(def: serde_json::Value, max_output: usize) -> (Arc<Recorder>, CheckRunner) {
    let rec = Recorder::new();
    let runner = CheckRunner::spawn_with(spec(def), opts(max_output), rec.clone());
    (rec, runner)
}

/// A port that refuses connections (bound, then released).
async fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    l.local_addr().expect("addr").port()
}

#[tokio::test]
async fn ttl_check_expires_and_each_update_restarts_the_timer() {
    let (rec, runner) = run(json!({"name": "app", "ttl": "1s"}), 4096);
    rec.wait_for(Status::Critical, |o| o == "TTL expired").await;

    assert_eq!(runner.ttl_update(Status::Passing, "ok"), Ok("ok".to_string()));
    assert_eq!(rec.last(), Some((Status::Passing, "ok".to_string())), "an update is reported at once");
    let before = rec.results().len();
    // A client refreshing every 100ms for 1.5s (longer than the TTL) keeps it alive.
    for _ in 0..15 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        runner.ttl_update(Status::Warning, "busy").expect("ttl check");
    }
    assert!(rec.results()[before..].iter().all(|(s, _)| *s == Status::Warning), "{:?}", rec.results());

    rec.wait_for(Status::Critical, |o| o == "TTL expired (last output before timeout follows): busy").await;
}

#[tokio::test]
async fn ttl_update_truncates_and_is_refused_for_other_kinds() {
    let (rec, ttl) = run(json!({"ttl": "30s"}), 4);
    assert_eq!(
        ttl.ttl_update(Status::Passing, "abcdefgh"),
        Ok("abcd ... (captured 4 of 8 bytes)".to_string())
    );
    assert_eq!(rec.last(), Some((Status::Passing, "abcd ... (captured 4 of 8 bytes)".to_string())));

    let (_rec, tcp) = run(json!({"tcp": "127.0.0.1:1", "interval": "1h"}), 4096);
    assert_eq!(
        tcp.ttl_update(Status::Passing, ""),
        Err("CheckID \"c1\" does not have associated TTL".to_string())
    );
}

#[tokio::test]
async fn http_check_follows_the_status_code() {
    let srv = TestHttp::start(None).await;
    let url = format!("http://{}/", srv.addr);
    let (rec, _runner) = run(json!({"http": url, "interval": "50ms"}), 4096);

    let out = rec.wait_for(Status::Passing, |_| true).await;
    assert_eq!(out, format!("HTTP GET {url}: 200 OK Output: hello"));
    srv.set(503);
    let out = rec.wait_for(Status::Critical, |_| true).await;
    assert_eq!(out, format!("HTTP GET {url}: 503 Service Unavailable Output: hello"));
    srv.set(429);
    rec.wait_for(Status::Warning, |o| o.contains(": 429 Too Many Requests Output:")).await;
    srv.set(204);
    rec.wait_for(Status::Passing, |o| o.contains(": 204 No Content")).await;

    let seen = srv.seen.lock()[0].clone();
    assert_eq!(seen.headers["user-agent"], "Consul Health Check");
    assert_eq!(seen.headers["accept"], "text/plain, text/*, */*");
    assert_eq!(seen.method, "GET");
}

#[tokio::test]
async fn http_check_sends_method_headers_and_body_and_truncates_output() {
    let srv = TestHttp::start(None).await;
    *srv.body.lock() = "0123456789abcdef".into();
    let url = format!("http://{}/health?x=1", srv.addr);
    let def = json!({
        "HTTP": url, "Method": "POST", "Body": "ping", "Interval": "1h",
        "Header": {"X-Probe": ["a", "b"], "User-Agent": ["mine"], "Host": ["example.test"]}
    });
    let (rec, _runner) = run(def, 10);

    let out = rec.wait_for(Status::Passing, |_| true).await;
    assert_eq!(out, format!("HTTP POST {url}: 200 OK Output: 0123456789"));
    let seen = srv.seen.lock()[0].clone();
    assert_eq!((seen.method.as_str(), seen.path.as_str(), &seen.body[..]), ("POST", "/health", &b"ping"[..]));
    let probes: Vec<_> = seen.headers.get_all("x-probe").iter().collect();
    assert_eq!(probes, ["a", "b"]);
    assert_eq!(seen.headers["user-agent"], "mine");
    assert_eq!(seen.headers["host"], "example.test");
}

#[tokio::test]
async fn http_check_sends_url_credentials_as_basic_auth() {
    let srv = TestHttp::start(None).await;
    let url = format!("http://probe:p%40ss@{}/", srv.addr);
    let (rec, _runner) = run(json!({"http": url, "interval": "1h"}), 4096);
    rec.wait_for(Status::Passing, |_| true).await;
    let seen = srv.seen.lock()[0].clone();
    assert_eq!(seen.headers["authorization"], "Basic cHJvYmU6cEBzcw=="); // probe:p@ss
    assert_eq!(seen.headers["host"], srv.addr.to_string().as_str());
}

#[tokio::test]
async fn http_check_reports_connection_errors_and_timeouts() {
    let port = closed_port().await;
    let url = format!("http://127.0.0.1:{port}/");
    let (rec, _r1) = run(json!({"http": url, "interval": "1h"}), 4096);
    let out = rec.wait_for(Status::Critical, |_| true).await;
    assert_eq!(out, format!("Get \"{url}\": dial tcp 127.0.0.1:{port}: connect: connection refused"));

    // A server that accepts and never answers.
    let silent = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/", silent.local_addr().expect("addr"));
    let (rec, _r2) = run(json!({"http": url, "interval": "1h", "timeout": "200ms"}), 4096);
    let out = rec.wait_for(Status::Critical, |_| true).await;
    assert!(out.starts_with(&format!("Get \"{url}\": context deadline exceeded")), "{out}");
}

#[tokio::test]
async fn http_check_follows_redirects_unless_disabled() {
    let srv = TestHttp::start(None).await;
    let url = format!("http://{}/moved", srv.addr);
    let (rec, _r1) = run(json!({"http": url, "interval": "1h"}), 4096);
    let out = rec.wait_for(Status::Passing, |_| true).await;
    assert_eq!(out, format!("HTTP GET {url}: 200 OK Output: hello"));

    let (rec, _r2) = run(json!({"http": url, "interval": "1h", "disable_redirects": true}), 4096);
    rec.wait_for(Status::Critical, |o| o.contains(": 302 Found Output:")).await;
}

#[tokio::test]
async fn https_check_verifies_certificates_unless_told_to_skip() {
    let srv = TestHttp::start(Some(self_signed_tls(b"http/1.1"))).await;
    let url = format!("https://localhost:{}/", srv.addr.port());
    let (rec, _r1) = run(json!({"http": url, "interval": "1h", "tls_skip_verify": true}), 4096);
    rec.wait_for(Status::Passing, |o| o == format!("HTTP GET {url}: 200 OK Output: hello")).await;

    let (rec, _r2) = run(json!({"http": url, "interval": "1h"}), 4096);
    let out = rec.wait_for(Status::Critical, |_| true).await;
    let want = "tls: failed to verify certificate: x509: certificate signed by unknown authority";
    assert_eq!(out, format!("Get \"{url}\": {want}"));
}

#[tokio::test]
async fn tcp_check_connects_or_reports_the_error() {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr").to_string();
    let (rec, _r1) = run(json!({"tcp": addr, "interval": "1h"}), 4096);
    assert_eq!(rec.wait_for(Status::Passing, |_| true).await, format!("TCP connect {addr}: Success"));

    let port = closed_port().await;
    let (rec, _r2) = run(json!({"TCP": format!("127.0.0.1:{port}"), "Interval": "1h"}), 4096);
    let out = rec.wait_for(Status::Critical, |_| true).await;
    assert_eq!(out, format!("dial tcp 127.0.0.1:{port}: connect: connection refused"));
}

#[tokio::test]
async fn udp_check_fails_only_on_an_icmp_error() {
    let silent = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let addr = silent.local_addr().expect("addr").to_string();
    let (rec, _r1) = run(json!({"udp": addr, "interval": "1h", "timeout": "200ms"}), 4096);
    assert_eq!(rec.wait_for(Status::Passing, |_| true).await, format!("UDP connect {addr}: Success"));
    let mut buf = [0u8; 16];
    let (n, _) = silent.recv_from(&mut buf).await.expect("the probe sent a datagram");
    assert_eq!(n, 0);

    let closed = {
        let s = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        s.local_addr().expect("addr")
    };
    let (rec, _r2) = run(json!({"udp": closed.to_string(), "interval": "1h", "timeout": "2s"}), 4096);
    let out = rec.wait_for(Status::Critical, |_| true).await;
    assert!(out.ends_with(&format!("->{closed}: read: connection refused")), "{out}");
}

fn sh(script: &str) -> serde_json::Value {
    json!({"args": ["/bin/sh", "-c", script], "interval": "1h"})
}

#[tokio::test]
async fn script_exit_codes_map_to_statuses_with_combined_output() {
    let (rec, _r0) = run(sh("echo out; echo err >&2; exit 0"), 4096);
    assert_eq!(rec.wait_for(Status::Passing, |_| true).await, "out\nerr\n");
    let (rec, _r1) = run(sh("echo slow; exit 1"), 4096);
    assert_eq!(rec.wait_for(Status::Warning, |_| true).await, "slow\n");
    let (rec, _r2) = run(sh("exit 2"), 4096);
    assert_eq!(rec.wait_for(Status::Critical, |_| true).await, "");
    let (rec, _r3) = run(sh("printf 0123456789abcdef"), 8);
    assert_eq!(rec.wait_for(Status::Passing, |_| true).await, "Captured 8 of 16 bytes\n...\n89abcdef");
    let (rec, _r4) = run(json!({"args": ["sekisho-no-such-program"], "interval": "1h"}), 4096);
    let out = rec.wait_for(Status::Critical, |_| true).await;
    assert_eq!(out, "exec: \"sekisho-no-such-program\": executable file not found in $PATH");
}

fn pids(file: &std::path::Path) -> Option<Vec<u32>> {
    let text = std::fs::read_to_string(file).ok()?;
    let pids: Vec<u32> = text.lines().filter_map(|l| l.trim().parse().ok()).collect();
    (pids.len() == 2).then_some(pids)
}

#[tokio::test]
async fn a_hung_script_is_killed_with_its_children_at_the_timeout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("pids");
    let script = format!(
        "echo started; echo $$ > {f}.tmp; sleep 30 & echo $! >> {f}.tmp; mv {f}.tmp {f}; wait",
        f = file.display()
    );
    let mut def = sh(&script);
    def["timeout"] = json!("500ms");
    let started = std::time::Instant::now();
    let (rec, _runner) = run(def, 4096);

    let out = rec.wait_for(Status::Critical, |_| true).await;
    assert_eq!(out, "Timed out (500ms) running check\n\nstarted\n");
    assert!(started.elapsed() < Duration::from_secs(10), "killed at the timeout, not after sleep 30");
    let pids = pids(&file).expect("the script wrote its pids");
    eventually(WAIT, "the script and its background child are dead", || {
        let dead = pids.iter().all(|p| is_dead(*p));
        async move { dead.then_some(()) }
    })
    .await;
}

#[tokio::test]
async fn stopping_a_runner_kills_a_running_script_and_silences_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("pids");
    let script =
        format!("echo $$ > {f}.tmp; sleep 30 & echo $! >> {f}.tmp; mv {f}.tmp {f}; wait", f = file.display());
    let mut def = sh(&script);
    def["interval"] = json!("10ms");
    let (rec, runner) = run(def, 4096);
    let pids = eventually(WAIT, "the script started", || {
        let p = pids(&file);
        async move { p }
    })
    .await;

    runner.stop();
    eventually(WAIT, "the stopped script's group is dead", || {
        let dead = pids.iter().all(|p| is_dead(*p));
        async move { dead.then_some(()) }
    })
    .await;
    assert!(rec.results().is_empty(), "no result after stop: {:?}", rec.results());
}

/// Drops its runner from inside `update`, as an agent deregistering a check might.
struct DropsItself {
    runner: parking_lot::Mutex<Option<CheckRunner>>,
    updates: std::sync::atomic::AtomicUsize,
    updates_at_drop: std::sync::atomic::AtomicUsize,
}

impl super::CheckNotify for DropsItself {
    fn update(&self, _: &str, _: Status, _: &str) {
        let n = self.updates.fetch_add(1, Ordering::SeqCst) + 1;
        let runner = self.runner.lock().take();
        if runner.is_some() {
            self.updates_at_drop.store(n, Ordering::SeqCst);
        }
        drop(runner);
    }

    fn alias_checks(&self, _: Option<&str>, _: &str) -> Option<Vec<AliasedCheck>> {
        None
    }

    fn alias_changes(&self) -> tokio::sync::watch::Receiver<u64> {
        tokio::sync::watch::channel(0).1
    }
}

#[tokio::test]
async fn update_may_drop_its_own_runner() {
    let port = closed_port().await;
    let notify = Arc::new(DropsItself {
        runner: parking_lot::Mutex::new(None),
        updates: Default::default(),
        updates_at_drop: Default::default(),
    });
    let def = json!({"tcp": format!("127.0.0.1:{port}"), "interval": "10ms"});
    let runner = CheckRunner::spawn_with(spec(def.clone()), opts(4096), notify.clone());
    *notify.runner.lock() = Some(runner);
    // Another check on the same runtime gives the dropped one time to misbehave.
    let (other, _o) = run(def, 4096);
    eventually(WAIT, "the other check ran ten times", || {
        let n = other.results().len();
        async move { (n >= 10).then_some(()) }
    })
    .await;
    let at_drop = notify.updates_at_drop.load(Ordering::SeqCst);
    assert!(at_drop > 0, "the runner was dropped");
    assert_eq!(notify.updates.load(Ordering::SeqCst), at_drop, "no update after the drop");
}

#[tokio::test]
async fn thresholds_hold_back_warning_and_critical() {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr").to_string();
    let def =
        json!({"tcp": addr, "interval": "30ms", "failures_before_warning": 2, "failures_before_critical": 4});
    let (rec, _runner) = run(def, 4096);
    rec.wait_for(Status::Passing, |_| true).await;
    let passing = rec.results().len();
    drop(l);
    rec.wait_for(Status::Critical, |_| true).await;
    let after: Vec<Status> =
        rec.results()[passing..].iter().map(|(s, _)| *s).skip_while(|s| *s == Status::Passing).collect();
    // Failures 1..4: nothing, warning, warning, critical.
    assert_eq!(after[..3], [Status::Warning, Status::Warning, Status::Critical], "{after:?}");
}

#[tokio::test]
async fn alias_check_mirrors_the_aliased_service() {
    let rec = Recorder::new();
    let check = |id: &str, status| AliasedCheck {
        check_id: id.into(),
        name: id.into(),
        status,
        output: "out".into(),
    };
    let _runner = CheckRunner::spawn_with(spec(json!({"alias_service": "db"})), opts(4096), rec.clone());
    rec.wait_for(Status::Critical, |o| o == "Service db could not be found on node ").await;

    rec.set_service("db", Some(vec![check("db-tcp", Status::Passing), check("serfHealth", Status::Passing)]));
    rec.wait_for(Status::Passing, |o| o == "All checks passing.").await;
    rec.set_service("db", Some(vec![check("db-tcp", Status::Warning), check("serfHealth", Status::Passing)]));
    rec.wait_for(Status::Warning, |o| o == "Aliased check \"db-tcp\" failing: out").await;
    rec.set_service(
        "db",
        Some(vec![check("db-tcp", Status::Warning), check("serfHealth", Status::Critical)]),
    );
    rec.wait_for(Status::Critical, |o| o.starts_with("Aliased check \"serfHealth\"")).await;
    rec.set_service("db", None);
    rec.wait_for(Status::Critical, |o| o.starts_with("Service db could not be found")).await;
}

#[tokio::test]
async fn grpc_check_reads_the_serving_status() {
    let srv = TestGrpc::start(None).await;
    let target = format!("{}/web", srv.addr);
    let (rec, _r1) = run(json!({"GRPC": target, "Interval": "50ms"}), 4096);
    assert_eq!(rec.wait_for(Status::Passing, |_| true).await, format!("gRPC check {target}: success"));
    assert_eq!(srv.services.lock()[0], "web");
    srv.serving.store(2, Ordering::SeqCst);
    let out = rec.wait_for(Status::Critical, |_| true).await;
    assert_eq!(out, format!("gRPC {target} serving status: NOT_SERVING"));

    let (rec, _r2) = run(json!({"grpc": format!("{}/missing", srv.addr), "interval": "1h"}), 4096);
    assert_eq!(
        rec.wait_for(Status::Critical, |_| true).await,
        "rpc error: code = NotFound desc = unknown service"
    );
    let (rec, _r3) = run(json!({"grpc": srv.addr.to_string(), "interval": "1h"}), 4096);
    rec.wait_for(Status::Critical, |_| true).await;
    assert!(srv.services.lock().iter().any(String::is_empty), "no service: the server as a whole");

    let port = closed_port().await;
    let (rec, _r4) = run(json!({"grpc": format!("127.0.0.1:{port}"), "interval": "1h"}), 4096);
    let out = rec.wait_for(Status::Critical, |_| true).await;
    assert!(out.starts_with("rpc error: code = Unavailable desc = connection error"), "{out}");
    assert!(out.contains("connection refused"), "{out}");
}

#[tokio::test]
async fn grpc_check_over_tls_negotiates_h2() {
    let srv = TestGrpc::start(Some(self_signed_tls(b"h2"))).await;
    let target = format!("localhost:{}", srv.addr.port());
    let def = json!({"grpc": target, "grpc_use_tls": true, "tls_skip_verify": true, "interval": "1h"});
    let (rec, _r1) = run(def, 4096);
    assert_eq!(rec.wait_for(Status::Passing, |_| true).await, format!("gRPC check {target}: success"));

    let (rec, _r2) = run(json!({"grpc": target, "grpc_use_tls": true, "interval": "1h"}), 4096);
    let out = rec.wait_for(Status::Critical, |_| true).await;
    assert_eq!(
        out,
        "rpc error: code = Unavailable desc = connection error: desc = \"transport: authentication handshake \
         failed: tls: failed to verify certificate: x509: certificate signed by unknown authority\""
    );
}

#[tokio::test]
async fn a_hung_script_does_not_hold_up_other_checks() {
    // One runtime thread: a blocking script runner would starve the TCP check.
    let mut def = sh("sleep 30");
    def["timeout"] = json!("20s");
    let (script, _s) = run(def, 4096);
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let (tcp, _t) = run(json!({"tcp": l.local_addr().expect("addr").to_string(), "interval": "20ms"}), 4096);
    eventually(WAIT, "five TCP results while the script hangs", || {
        let n = tcp.results().len();
        async move { (n >= 5).then_some(()) }
    })
    .await;
    assert!(script.results().is_empty());
}

#[tokio::test]
async fn interval_is_clamped_to_the_minimum() {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr").to_string();
    let rec = Recorder::new();
    let opts = RunnerOptions { min_interval: Duration::from_secs(2), ..opts(4096) };
    let _runner = CheckRunner::spawn_with(spec(json!({"tcp": addr, "interval": "10ms"})), opts, rec.clone());
    rec.wait_for(Status::Passing, |_| true).await;
    // With a 10ms interval there would be dozens of runs in this window; clamped to 2s,
    // at most one more.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(rec.results().len() <= 2, "{:?}", rec.results());
}
