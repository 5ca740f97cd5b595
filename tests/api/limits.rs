//! `limits.*` under hostile or excessive clients: per-IP connection caps (HTTP 429 with
//! Consul's text, RPC closed), handshake and header timeouts, body caps applied while
//! reading, the blocking-query cap, `request_limits`, the DNS per-client rate, and an
//! overload that the agent sheds and recovers from with bounded memory.
//!
//! Each test connects from its own loopback address (127.0.0.x) so the agent's own clients
//! (watches, templates) never share its per-IP counts.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{Name, RecordType};
use http::StatusCode;
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use sekisho::config::RequestLimitMode;
use sekisho::http::limits::{
    RATE_EXCEEDED_ELSEWHERE, RATE_EXCEEDED_LATER, TOO_MANY_BLOCKING, TOO_MANY_CONNS,
};
use sekisho::testing::{TestAgent, eventually, poll_until};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpSocket, TcpStream, UdpSocket};

use crate::support::Api;

/// Longest any single exchange in these tests may take.
const STEP: Duration = Duration::from_secs(5);

/// A TCP connection to `to` from the loopback address `src`.
async fn connect_from(src: IpAddr, to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket.bind(SocketAddr::new(src, 0)).expect("bind a loopback source address");
    tokio::time::timeout(STEP, socket.connect(to)).await.expect("connect in time").expect("connect")
}

fn src(last: u8) -> IpAddr {
    IpAddr::from([127, 0, 0, last])
}

/// Sends one HTTP/1.1 request and reads the response (headers and a `Content-Length` body).
async fn exchange(s: &mut TcpStream, request: &str) -> (u16, String) {
    s.write_all(request.as_bytes()).await.expect("send request");
    tokio::time::timeout(STEP, read_response(s)).await.expect("a response in time")
}

async fn read_response(s: &mut TcpStream) -> (u16, String) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&buf).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let head = &text[..end];
            let status = head.split(' ').nth(1).and_then(|c| c.parse().ok()).expect("status code");
            let len = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned())
                })
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                return (status, text[end + 4..end + 4 + len].to_owned());
            }
        }
        let n = s.read(&mut chunk).await.expect("read response");
        assert!(n > 0, "connection closed mid-response: {:?}", String::from_utf8_lossy(&buf));
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Waits until the peer closes `s` (EOF or reset); returns how long that took.
async fn closed_within(s: &mut TcpStream, limit: Duration) -> Duration {
    let start = Instant::now();
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout(limit.saturating_sub(start.elapsed()), s.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => return start.elapsed(),
            Ok(Ok(_)) => continue,
            Err(_) => panic!("the connection was still open after {limit:?}"),
        }
    }
}

const LEADER: &str = "GET /v1/status/leader HTTP/1.1\r\nHost: agent\r\n\r\n";

/// This process's resident memory in KiB (`VmRSS`).
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).expect("VmRSS line");
    line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).expect("VmRSS value")
}

#[tokio::test]
async fn a_client_over_http_max_conns_per_client_gets_consuls_429_and_a_freed_slot_is_reused() {
    let agent = TestAgent::start_with(|cfg, _| cfg.limits.http_max_conns_per_client = 3).await;
    let (me, to) = (src(11), agent.http_addr());

    tracing::info!("--- three connections are served");
    let mut open = Vec::new();
    for _ in 0..3 {
        let mut s = connect_from(me, to).await;
        assert_eq!(exchange(&mut s, LEADER).await.0, 200);
        open.push(s);
    }

    tracing::info!("--- the fourth gets 429 with Consul's text and is closed");
    let mut fourth = connect_from(me, to).await;
    let mut answer = Vec::new();
    tokio::time::timeout(STEP, fourth.read_to_end(&mut answer)).await.expect("closed in time").expect("read");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 429 Too Many Requests\r\n"), "{answer:?}");
    assert!(answer.ends_with(&format!("\r\n\r\n{TOO_MANY_CONNS}")), "{answer:?}");

    tracing::info!("--- another client IP is counted on its own");
    let mut other = connect_from(src(12), to).await;
    assert_eq!(exchange(&mut other, LEADER).await.0, 200);

    tracing::info!("--- once one connection closes, a new one is served");
    drop(open.pop());
    eventually(STEP, "a freed slot accepts a new connection", || async {
        let mut s = connect_from(me, to).await;
        s.write_all(LEADER.as_bytes()).await.ok()?;
        let (status, _) = tokio::time::timeout(STEP, read_response(&mut s)).await.ok()?;
        (status == 200).then_some(())
    })
    .await;
    agent.shutdown().await;
}

#[tokio::test]
async fn rpc_connections_over_rpc_max_conns_per_client_are_closed_at_once() {
    let agent = TestAgent::start_with(|cfg, _| cfg.limits.rpc_max_conns_per_client = 2).await;
    let rpc: SocketAddr =
        agent.handle().server().leader_addr().expect("the agent leads").parse().expect("rpc address");
    let me = src(21);
    let mut held = vec![connect_from(me, rpc).await, connect_from(me, rpc).await];

    tracing::info!("--- a third connection is closed well before the handshake timeout");
    let mut third = connect_from(me, rpc).await;
    closed_within(&mut third, Duration::from_secs(3)).await;

    tracing::info!("--- after one closes, a new connection is accepted (it stays open)");
    drop(held.pop());
    eventually(STEP, "a freed RPC slot accepts a connection", || async {
        let mut s = connect_from(me, rpc).await;
        let mut buf = [0u8; 1];
        // Accepted connections wait for their first byte; refused ones are closed at once.
        tokio::time::timeout(Duration::from_millis(300), s.read(&mut buf)).await.is_err().then_some(())
    })
    .await;
    drop(held);
    agent.shutdown().await;
}

#[tokio::test]
async fn silent_clients_are_dropped_after_the_https_and_rpc_handshake_timeouts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = sekisho::testing::pki::TestPki::new(&dir.path().join("ca"));
    let files = pki.issue("https", sekisho_pki::Role::Server, "dc1");
    let agent = TestAgent::start_with(|cfg, _| {
        cfg.ports.https = Some(0);
        cfg.tls.https = sekisho::config::tls::TlsBlock {
            ca_file: Some(pki.ca_file().to_path_buf()),
            cert_file: Some(files.cert.clone()),
            key_file: Some(files.key.clone()),
            ..Default::default()
        };
        cfg.limits.https_handshake_timeout = Duration::from_millis(200);
        cfg.limits.rpc_handshake_timeout = Duration::from_millis(200);
    })
    .await;
    let https = agent.handle().https_addr().expect("HTTPS is on");
    let rpc: SocketAddr =
        agent.handle().server().leader_addr().expect("the agent leads").parse().expect("rpc address");
    let me = src(31);
    let limit = Duration::from_secs(3);

    tracing::info!("--- HTTPS: nothing sent, then a partial ClientHello");
    let mut silent = connect_from(me, https).await;
    closed_within(&mut silent, limit).await;
    let mut partial = connect_from(me, https).await;
    partial.write_all(&[0x16, 0x03, 0x01, 0x01, 0x00, 0x01]).await.expect("send a record header");
    closed_within(&mut partial, limit).await;

    tracing::info!("--- RPC: nothing sent");
    let mut silent = connect_from(me, rpc).await;
    closed_within(&mut silent, limit).await;
    agent.shutdown().await;
}

#[tokio::test]
async fn a_slowloris_client_is_dropped_after_the_header_read_timeout() {
    let agent = TestAgent::start_with(|cfg, _| {
        cfg.limits.http_read_header_timeout = Duration::from_millis(300);
    })
    .await;
    let (me, to) = (src(41), agent.http_addr());

    tracing::info!("--- headers trickled a byte at a time never finish");
    let mut s = connect_from(me, to).await;
    s.write_all(b"GET /v1/status/leader HTTP/1.1\r\nHost: agent\r\n").await.expect("send a partial head");
    let (mut rd, mut wr) = s.into_split();
    let trickle = tokio::spawn(async move {
        let mut ticks = tokio::time::interval(Duration::from_millis(50));
        loop {
            ticks.tick().await;
            if wr.write_all(b"X").await.is_err() {
                return;
            }
        }
    });
    let start = Instant::now();
    let mut buf = [0u8; 256];
    let closed = tokio::time::timeout(Duration::from_secs(3), async {
        loop {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "a trickling client was kept for {:?}", start.elapsed());
    trickle.abort();

    tracing::info!("--- a silent connection is dropped too; a normal request still works");
    let mut silent = connect_from(me, to).await;
    closed_within(&mut silent, Duration::from_secs(3)).await;
    let mut s = connect_from(me, to).await;
    assert_eq!(exchange(&mut s, LEADER).await.0, 200);
    agent.shutdown().await;
}

#[tokio::test]
async fn oversized_bodies_get_413_while_reading_and_are_never_buffered() {
    let agent = TestAgent::start_with(|cfg, _| {
        cfg.limits.http_max_body_size = 2048;
        cfg.kv_max_value_size = 1024;
    })
    .await;
    let (me, to) = (src(51), agent.http_addr());

    tracing::info!("--- a declared 1 GiB KV value is refused before it is sent");
    let mut s = connect_from(me, to).await;
    let head = "PUT /v1/kv/big HTTP/1.1\r\nHost: agent\r\nContent-Length: 1073741824\r\n\r\n";
    s.write_all(head.as_bytes()).await.expect("send head");
    s.write_all(&[b'v'; 1024]).await.expect("send the first KiB");
    let (status, text) = tokio::time::timeout(STEP, read_response(&mut s)).await.expect("413 in time");
    assert_eq!((status, text.as_str()), (413, "Value exceeds 1024 byte limit"));

    tracing::info!("--- an endless chunked JSON body gets 413 while it is still being sent");
    let before = rss_kib();
    let s = connect_from(me, to).await;
    let (mut rd, mut wr) = s.into_split();
    let head = "PUT /v1/catalog/register HTTP/1.1\r\nHost: agent\r\nTransfer-Encoding: chunked\r\n\r\n";
    wr.write_all(head.as_bytes()).await.expect("send head");
    let sent = Arc::new(AtomicUsize::new(0));
    let counter = sent.clone();
    let writer = tokio::spawn(async move {
        let chunk = [b"10000\r\n".as_slice(), &[b' '; 0x10000], b"\r\n"].concat();
        // At most 1 GiB; the agent answers long before.
        for _ in 0..(1 << 14) {
            if wr.write_all(&chunk).await.is_err() {
                return;
            }
            counter.fetch_add(chunk.len(), Ordering::Relaxed);
        }
    });
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    let read = tokio::time::timeout(Duration::from_secs(8), async {
        while !String::from_utf8_lossy(&answer).contains("bytes") {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    writer.abort();
    assert!(read.is_ok(), "no answer while streaming ({} bytes sent)", sent.load(Ordering::Relaxed));
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer:?}");
    assert!(answer.contains("Request body too large, max size: 2048 bytes"), "{answer:?}");
    let sent = sent.load(Ordering::Relaxed);
    assert!(sent < 1 << 30, "the whole body was sent before the answer ({sent} bytes)");
    let grown = rss_kib().saturating_sub(before);
    assert!(grown < 48 * 1024, "memory grew by {grown} KiB for a body of {sent} bytes");

    tracing::info!("--- a body under the cap is fine");
    Api::new(&agent).kv_set("small", "v").await;
    agent.shutdown().await;
}

#[tokio::test]
async fn blocking_queries_beyond_http_max_blocking_queries_get_429() {
    let agent = TestAgent::start_with(|cfg, _| cfg.limits.http_max_blocking_queries = 2).await;
    let api = Api::new(&agent);
    api.kv_set("w", "0").await;
    let index = api.get("/v1/kv/w").await.index();
    let path = format!("/v1/kv/w?index={index}&wait=20s");

    tracing::info!("--- two blocking queries wait");
    let waiters: Vec<_> = (0..2)
        .map(|_| {
            let (api, path) = (api.clone(), path.clone());
            tokio::spawn(async move { api.get(&path).await })
        })
        .collect();

    eventually(STEP, "two blocking queries waiting", || async {
        let m = api.get("/v1/agent/metrics").await.ok_json();
        let gauges = m["Gauges"].as_array().cloned().unwrap_or_default();
        let waiting = gauges.iter().find(|g| g["Name"] == "consul.rpc.queries_blocking")?;
        (waiting["Value"].as_f64() == Some(2.0)).then_some(())
    })
    .await;

    tracing::info!("--- a third is refused at once; plain reads still work");
    let refused = api.get(&path).await.expect(StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.text(), TOO_MANY_BLOCKING);
    assert_eq!(refused.header("Retry-After"), Some("1"));
    api.get("/v1/kv/w").await.expect(StatusCode::OK);
    let metrics = api.get("/v1/agent/metrics").await.text();
    assert!(metrics.contains("sekisho.limits.rejected"), "no rejection counter in {metrics}");

    tracing::info!("--- a write wakes the two; new blocking queries are served again");
    api.kv_set("w", "1").await;
    for w in waiters {
        let r = tokio::time::timeout(STEP, w).await.expect("woken in time").expect("task");
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    }
    let index = api.get("/v1/kv/w").await.index();
    let r = api.get(&format!("/v1/kv/w?index={index}&wait=10ms")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    agent.shutdown().await;
}

#[tokio::test]
async fn enforcing_request_limits_refuse_a_flood_then_recover() {
    let agent = TestAgent::start_with(|cfg, _| {
        let r = &mut cfg.limits.request_limits;
        r.mode = RequestLimitMode::Enforcing;
        (r.read_rate, r.write_rate) = (Some(5.0), Some(1.0));
    })
    .await;
    let api = Api::new(&agent);

    tracing::info!("--- reads over ten seconds' worth get 429 with Retry-After");
    let mut refused = 0;
    for _ in 0..100 {
        let r = api.get("/v1/kv/flood").await;
        match r.status {
            StatusCode::NOT_FOUND => {}
            StatusCode::TOO_MANY_REQUESTS => {
                assert_eq!(r.text(), RATE_EXCEEDED_ELSEWHERE);
                assert!(r.header("Retry-After").is_some(), "no Retry-After: {:?}", r.headers);
                refused += 1;
            }
            s => panic!("unexpected {s}: {}", r.text()),
        }
    }
    assert!(refused >= 20, "only {refused} of 100 reads were refused");

    tracing::info!("--- agent endpoints are not rate limited");
    api.get("/v1/agent/self").await.expect(StatusCode::OK);

    tracing::info!("--- writes on the leader get 503 (only it can write)");
    let mut refused = 0;
    for i in 0..30 {
        let r = api.put(&format!("/v1/kv/flood{i}"), "v").await;
        match r.status {
            StatusCode::OK => {}
            StatusCode::SERVICE_UNAVAILABLE => {
                assert_eq!(r.text(), RATE_EXCEEDED_LATER);
                refused += 1;
            }
            s => panic!("unexpected {s}: {}", r.text()),
        }
    }
    assert!(refused >= 10, "only {refused} of 30 writes were refused");

    tracing::info!("--- once the flood stops, reads and writes succeed again");
    eventually(STEP, "a read is served again", || async {
        (api.get("/v1/kv/flood").await.status == StatusCode::NOT_FOUND).then_some(())
    })
    .await;
    eventually(STEP, "a write is served again", || async {
        (api.put("/v1/kv/after", "v").await.status == StatusCode::OK).then_some(())
    })
    .await;
    agent.shutdown().await;
}

fn dns_query(id: u16) -> Vec<u8> {
    let mut m = Message::query();
    m.metadata.id = id;
    m.metadata.recursion_desired = true;
    let name = Name::from_ascii("consul.service.consul.").expect("name");
    m.add_query(hickory_proto::op::Query::query(name, RecordType::A));
    m.to_vec().expect("encode")
}

async fn dns_ask(socket: &UdpSocket, id: u16) -> ResponseCode {
    socket.send(&dns_query(id)).await.expect("send");
    let mut buf = vec![0u8; 4096];
    loop {
        let n =
            tokio::time::timeout(STEP, socket.recv(&mut buf)).await.expect("a reply in time").expect("recv");
        let m = Message::from_vec(&buf[..n]).expect("decode reply");
        if m.metadata.id == id {
            return m.metadata.response_code;
        }
    }
}

#[tokio::test]
async fn dns_queries_over_the_per_client_rate_are_refused_then_answered_again() {
    let agent = TestAgent::start_with(|cfg, _| cfg.dns.rate_limit_per_client = 5).await;
    let socket = UdpSocket::bind(SocketAddr::new(src(61), 0)).await.expect("bind UDP");
    socket.connect(agent.dns_addr()).await.expect("connect UDP");

    tracing::info!("--- a burst from one client: the excess is REFUSED");
    let mut codes = Vec::new();
    for id in 0..30 {
        codes.push(dns_ask(&socket, id).await);
    }
    let refused = codes.iter().filter(|c| **c == ResponseCode::Refused).count();
    assert!((10..30).contains(&refused), "{refused} of 30 refused: {codes:?}");
    assert_ne!(codes[0], ResponseCode::Refused, "the burst starts within the rate");

    tracing::info!("--- another client is not affected");
    let other = UdpSocket::bind(SocketAddr::new(src(62), 0)).await.expect("bind UDP");
    other.connect(agent.dns_addr()).await.expect("connect UDP");
    assert_ne!(dns_ask(&other, 1000).await, ResponseCode::Refused);

    tracing::info!("--- after a pause the first client is answered again");
    let mut id = 100;
    eventually(STEP, "the client is answered again", || {
        id += 1;
        let socket = &socket;
        async move { (dns_ask(socket, id).await != ResponseCode::Refused).then_some(()) }
    })
    .await;
    agent.shutdown().await;
}

/// One overload client: its own connection from `ip`, `n` requests; the status of each
/// (0 for a transport error).
async fn overload_client(base: String, ip: IpAddr, n: usize, worker: usize) -> Vec<u16> {
    let mut conn = HttpConnector::new();
    conn.set_local_address(Some(ip));
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build(conn);
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let (method, path, body) = if i % 4 == 0 {
            (http::Method::PUT, format!("/v1/kv/load/{worker}"), Bytes::from_static(b"v"))
        } else {
            (http::Method::GET, "/v1/kv/load/0".to_owned(), Bytes::new())
        };
        let req = http::Request::builder().method(method).uri(format!("{base}{path}")).body(Full::new(body));
        let fut = async {
            let resp = client.request(req.expect("request")).await.ok()?;
            let status = resp.status().as_u16();
            resp.into_body().collect().await.ok()?;
            Some(status)
        };
        out.push(tokio::time::timeout(STEP, fut).await.ok().flatten().unwrap_or(0));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_times_the_limits_is_shed_and_the_agent_recovers_with_bounded_memory() {
    let agent = TestAgent::start_with(|cfg, _| {
        cfg.limits.http_max_conns_per_client = 20;
        cfg.limits.http_max_concurrent_requests = 16;
        let r = &mut cfg.limits.request_limits;
        r.mode = RequestLimitMode::Enforcing;
        (r.read_rate, r.write_rate) = (Some(100.0), Some(50.0));
    })
    .await;
    let api = Api::new(&agent);
    api.kv_set("load/0", "v").await;
    let base = format!("http://{}", agent.http_addr());
    let before = rss_kib();

    tracing::info!("--- 200 concurrent clients from one address (10x the connection limit)");
    let workers: Vec<_> =
        (0..200).map(|w| tokio::spawn(overload_client(base.clone(), src(71), 10, w))).collect();
    let mut counts = std::collections::BTreeMap::<u16, usize>::new();
    for w in workers {
        for status in w.await.expect("worker") {
            *counts.entry(status).or_default() += 1;
        }
    }
    tracing::info!(?counts, "--- load done");
    let served = counts.get(&200).copied().unwrap_or(0);
    let shed: usize = [429, 503].iter().map(|c| counts.get(c).copied().unwrap_or(0)).sum();
    assert!(served > 0 && shed > 0, "both served and shed requests expected: {counts:?}");
    let unexpected: usize =
        counts.iter().filter(|(c, _)| ![0, 200, 429, 503].contains(*c)).map(|(_, n)| n).sum();
    assert_eq!(unexpected, 0, "only 200, 429 and 503 are answered under load: {counts:?}");
    let errors = counts.get(&0).copied().unwrap_or(0);
    assert!(errors * 10 < 2000, "too many transport errors: {counts:?}");

    tracing::info!("--- once the load stops, health and KV reads are served");
    let poll = |path: &'static str| {
        let api = api.clone();
        move || {
            let api = api.clone();
            async move { (api.get(path).await.status == StatusCode::OK).then_some(()) }
        }
    };
    eventually(STEP, "health answers", poll("/v1/health/service/consul")).await;
    eventually(STEP, "KV reads answer", poll("/v1/kv/load/0")).await;
    let grown = rss_kib().saturating_sub(before);
    assert!(grown < 300 * 1024, "memory grew by {grown} KiB under load");
    assert!(poll_until(STEP, poll("/v1/status/leader")).await.is_some());
    agent.shutdown().await;
}
