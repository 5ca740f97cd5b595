//! Entry points for fuzz targets and their corpus replay; not a stable API.
//!
//! One function per target of `fuzz/` (cargo-fuzz), each taking the raw input and panicking
//! only on a bug; `tests/fuzz_corpus.rs` replays the committed corpora through the same
//! functions on stable Rust. The HTTP and DNS targets drive one in-process test agent, started
//! on first use and shared by every later input (its state accumulates, as a real agent's
//! does).

use std::collections::BTreeSet;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::body::Body;
use http::{HeaderName, HeaderValue, Method, Request, Uri};
use tower::ServiceExt as _;

use crate::dns::{DnsContext, PacketAnswerer};
use crate::testing::TestAgent;

/// The agent's `acl.tokens.initial_management`: requests without a token of their own carry
/// it, so that an input that changes the anonymous or default token (or their policies) does
/// not lock every later input out.
const ROOT_TOKEN: &str = "5a1ed0c5-f022-4000-8000-000000000001";
/// How long one HTTP request may take before it is dropped: blocking queries (`?index=`) and
/// streams (`/v1/agent/monitor`) legitimately wait for much longer.
const HTTP_DEADLINE: Duration = Duration::from_millis(300);
/// Most of a response body read.
const HTTP_BODY_CAP: usize = 1 << 20;
/// A DNS answer slower than this is a hang (every read is local).
const DNS_DEADLINE: Duration = Duration::from_secs(20);

/// The shared agent, its router and its DNS handler, on a runtime of their own.
struct Live {
    rt: tokio::runtime::Runtime,
    router: axum::Router,
    dns: PacketAnswerer,
    /// Kept running for the life of the process.
    _agent: TestAgent,
}

/// Requests the fixture sends before any input: a node with services, so that DNS names and
/// reads resolve to something.
const FIXTURE: &[&str] = &[
    "PUT /v1/catalog/register\n\n{\"Node\":\"db1\",\"Address\":\"10.1.0.5\",\"Service\":{\"Service\":\"web\",\
     \"Tags\":[\"primary\"],\"Port\":8080}}",
    "PUT /v1/catalog/register\n\n{\"Node\":\"db2\",\"Address\":\"10.1.0.6\",\"TaggedAddresses\":\
     {\"wan\":\"198.51.100.6\"},\"Service\":{\"Service\":\"web\",\"Port\":8081}}",
    "PUT /v1/agent/service/register\n\n{\"Name\":\"api\",\"Port\":9090,\"Check\":{\"TTL\":\"30s\"}}",
    "PUT /v1/kv/fixture/key\n\nvalue",
    "POST /v1/query\n\n{\"Name\":\"web-query\",\"Service\":{\"Service\":\"web\"}}",
];

fn live() -> &'static Live {
    static LIVE: OnceLock<Live> = OnceLock::new();
    LIVE.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("fuzz runtime");
        let agent = rt.block_on(TestAgent::start_with(|cfg, _| {
            // DNS is driven through `PacketAnswerer`, not a socket.
            cfg.ports.dns = None;
            cfg.acl = serde_json::json!({
                "enabled": true,
                "default_policy": "allow",
                "tokens": {"initial_management": ROOT_TOKEN},
            });
        }));
        let router = agent.handle().http_router();
        let mut ctx = DnsContext::from_config(&agent.config, agent.handle().server().clone());
        ctx.recursors.clear();
        let live = Live { dns: PacketAnswerer::new(ctx), router, rt, _agent: agent };
        for req in FIXTURE {
            // The leader creates the management token shortly after the agent starts.
            live.rt.block_on(crate::testing::eventually(Duration::from_secs(30), req, || async {
                send(&live.router, req.as_bytes()).await.filter(|(s, _)| *s == 200)
            }));
        }
        live
    })
}

/// Splits an input into a request: `METHOD /path?query`, then `Name: value` header lines, a
/// blank line and the body (`\n` or `\r\n`). `None` for what an HTTP server would refuse
/// before routing (a method or URI that does not parse).
fn parse_request(data: &[u8]) -> Option<Request<Body>> {
    let (head, body) =
        match find(data, b"\r\n\r\n").map(|i| (i, 4)).or_else(|| find(data, b"\n\n").map(|i| (i, 2))) {
            Some((i, n)) => (&data[..i], &data[i + n..]),
            None => (data, &[][..]),
        };
    let head = std::str::from_utf8(head).ok()?;
    let mut lines = head.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let (method, target) = lines.next()?.split_once(' ')?;
    let method = Method::from_bytes(method.as_bytes()).ok()?;
    let uri: Uri = target.trim_end_matches(" HTTP/1.1").parse().ok()?;
    uri.path_and_query()?;
    let has_token = uri.query().is_some_and(|q| q.contains("token="));
    let mut req = Request::builder().method(method).uri(uri).header("host", "127.0.0.1:8500");
    let mut has_header = false;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else { continue };
        if let (Ok(n), Ok(v)) = (HeaderName::try_from(name.trim()), HeaderValue::try_from(value.trim())) {
            has_header |= n == "x-consul-token" || n == http::header::AUTHORIZATION;
            req = req.header(n, v);
        }
    }
    if !has_token && !has_header {
        req = req.header("x-consul-token", ROOT_TOKEN);
    }
    let mut req = req.body(Body::from(body.to_vec())).ok()?;
    let peer = std::net::SocketAddr::from(([127, 0, 0, 1], 53000));
    req.extensions_mut().insert(axum::extract::ConnectInfo(peer));
    Some(req)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Requests the harness does not send: they end the shared agent (`leave`), reach out to other
/// hosts (`join`, and checks that probe an address), or dismantle its one-server Raft.
fn excluded(req: &Request<Body>, body: &[u8]) -> bool {
    let path = req.uri().path().to_ascii_lowercase();
    let path = path.trim_end_matches('/');
    if path.ends_with("/agent/leave")
        || path.contains("/agent/join")
        || path.contains("/operator/raft/peer")
        || path.contains("/operator/raft/transfer-leader")
    {
        return true;
    }
    let registers_checks = path.contains("/agent/check/register") || path.contains("/agent/service/register");
    let lower = String::from_utf8_lossy(body).to_ascii_lowercase();
    registers_checks
        && ["\"http\"", "\"tcp\"", "\"udp\"", "\"grpc\"", "\"h2ping\"", "\"os_service\""]
            .iter()
            .any(|k| lower.contains(k))
}

/// Sends one request; `None` when it was excluded, did not parse, or outlived the deadline.
async fn send(router: &axum::Router, data: &[u8]) -> Option<(u16, Vec<u8>)> {
    let req = parse_request(data)?;
    let body_start = find(data, b"\n\n").map_or(data.len(), |i| i + 2);
    if excluded(&req, &data[body_start..]) {
        return None;
    }
    let exchange = async {
        let Ok(resp) = router.clone().oneshot(req).await;
        let (parts, body) = resp.into_parts();
        let bytes = crate::http::read_body(body, HTTP_BODY_CAP).await.ok().flatten().map(|b| b.to_vec());
        (parts, bytes)
    };
    let (parts, bytes) = tokio::time::timeout(HTTP_DEADLINE, exchange).await.ok()?;
    let status = parts.status.as_u16();
    if std::env::var_os("SEKISHO_FUZZ_TRACE").is_some() {
        let line =
            String::from_utf8_lossy(data.split(|&b| b == b'\n').next().unwrap_or_default()).into_owned();
        eprintln!("fuzz http: {status} {line} {:?}", bytes.as_deref().map(String::from_utf8_lossy));
    }
    let Some(bytes) = bytes else { return Some((status, Vec::new())) };
    let json = parts
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if parts.status.is_success()
        && json
        && !bytes.is_empty()
        && let Err(e) = serde_json::from_slice::<serde_json::Value>(&bytes)
    {
        panic!("{status} application/json answer is not JSON ({e}): {:?}", String::from_utf8_lossy(&bytes));
    }
    if parts.status.is_server_error() {
        note_5xx(status, &bytes);
    }
    Some((status, bytes))
}

/// Prints each distinct 5xx answer once (set `SEKISHO_FUZZ_5XX=1`), so a run's log lists
/// them for review; an empty 500 is never legitimate.
fn note_5xx(status: u16, body: &[u8]) {
    static SEEN: Mutex<BTreeSet<(u16, String)>> = Mutex::new(BTreeSet::new());
    assert!(!(status == 500 && body.is_empty()), "500 without a message");
    if std::env::var_os("SEKISHO_FUZZ_5XX").is_none() {
        return;
    }
    let text: String = String::from_utf8_lossy(body).chars().take(100).collect();
    let text: String = text.chars().map(|c| if c.is_ascii_digit() { '0' } else { c }).collect();
    let mut seen = SEEN.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if seen.len() < 500 && seen.insert((status, text.clone())) {
        eprintln!("fuzz 5xx: {status} {text:?}");
    }
}

/// An HTTP request (`METHOD /path?query`, header lines, a blank line, the body) through the
/// agent's real router.
pub fn http_request(data: &[u8]) {
    let live = live();
    let _ = live.rt.block_on(send(&live.router, data));
}

/// A DNS packet: the first byte picks the transport (odd: TCP, even: UDP), the rest is the
/// packet. What decodes is answered by the agent's DNS handler; the answer must decode, echo
/// the ID and fit the transport.
pub fn dns_packet(data: &[u8]) {
    use hickory_proto::op::{Message, MessageType};
    let Some((&mode, raw)) = data.split_first() else { return };
    let tcp = mode & 1 == 1;
    let live = live();
    let answered =
        live.rt.block_on(async { tokio::time::timeout(DNS_DEADLINE, live.dns.answer(raw, tcp)).await });
    let Ok(answered) = answered else { panic!("no DNS answer within {DNS_DEADLINE:?}") };
    let Ok(Some(encoded)) = answered else { return };
    let bytes = encoded.unwrap_or_else(|e| panic!("the answer does not encode: {e}"));
    let answer = Message::from_vec(&bytes).unwrap_or_else(|e| panic!("the answer does not decode: {e}"));
    let request = Message::from_vec(raw).ok();
    assert_eq!(answer.metadata.message_type, MessageType::Response);
    if let Some(request) = request {
        assert_eq!(answer.metadata.id, request.metadata.id, "answer ID");
        if !tcp {
            let limit = request.edns.as_ref().map_or(512, |e| e.max_payload().max(512));
            assert!(bytes.len() <= usize::from(limit), "{} bytes over UDP (limit {limit})", bytes.len());
        }
    }
}

/// A config file's text, loaded as JSON and as HCL, then checked by the parsers the agent
/// runs at start (ACL, services and checks, watches, templates, TLS). HCL that parses must
/// load exactly as its JSON form does.
pub fn config_text(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let json = crate::config::load_text(text, false);
    let hcl = crate::config::load_text(text, true);
    for (rt, _) in [&json, &hcl].into_iter().flatten() {
        let _ = crate::acl::AclConfig::parse(&rt.acl);
        let _ = crate::watch::parse_config_watches(&rt.watches);
        for (i, t) in rt.templates.iter().enumerate() {
            let _ = crate::template::runner::parse_config(i, t);
        }
        let _ = rt.tls.rpc();
        let _ = rt.tls.https();
        let lcfg = crate::local::LocalConfig {
            node_name: rt.node_name.clone(),
            datacenter: rt.datacenter.clone(),
            node_id: rt.node_id.clone(),
            address: rt.advertise_addr.to_string(),
            enable_script_checks: rt.enable_script_checks,
            enable_local_script_checks: rt.enable_local_script_checks,
            max_output: rt.check_output_max_size,
            data_dir: None,
        };
        let _ = crate::local::parse_config(&lcfg, &rt.services, &rt.checks);
    }
    if let Ok(value) = crate::config::hcl::parse(text) {
        let as_json = serde_json::to_string(&value).expect("a JSON value prints");
        let again = crate::config::load_text(&as_json, false);
        match (&hcl, &again) {
            (Ok((a, _)), Ok((b, _))) => assert_eq!(format!("{a:?}"), format!("{b:?}"), "HCL vs its JSON"),
            (Err(_), Err(_)) => {}
            (a, b) => panic!("HCL and its JSON form load differently: {a:?} vs {b:?}"),
        }
    }
}

/// ACL rules (HCL or JSON) through the parser and the authorizer; what parses must print back
/// as rules that parse to as many rules.
pub fn acl_rules(data: &[u8]) {
    use sekisho_acl::{Access, Authorizer, DefaultPolicy, PolicyRef, Resource, Rules};
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(rules) = Rules::parse(text) else { return };
    let printed: Vec<String> = rules.rules.iter().map(ToString::to_string).collect();
    let again = Rules::parse(&printed.join("\n")).expect("printed rules parse");
    assert_eq!(again.rules.len(), rules.rules.len());
    let mut a = Authorizer::new(DefaultPolicy::Deny);
    a.add(&PolicyRef::policy("id", "fuzz"), &rules);
    for r in Resource::NAMED {
        for acc in [Access::Read, Access::List, Access::Write] {
            let _ = a.authorize(r, text, acc);
        }
    }
    let _ = a.key_write_prefix(text);
}

/// What a gossip member receives: the first byte picks UDP or TCP and whether the member has
/// an `encrypt` key, the rest is the datagram or stream (see `gossip::fuzz`).
pub fn gossip_packet(data: &[u8]) {
    crate::gossip::fuzz::packet(data);
}

/// A server RPC call: the path, a newline, then the msgpack body. The body is decoded as
/// that path's request; a decoded write command is applied to a state store (twice, as a
/// retried write would be) and must encode and decode again.
pub fn rpc_frame(data: &[u8]) {
    let (path, body) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let Ok(path) = std::str::from_utf8(path) else { return };
    let Ok(Some(cmd)) = crate::server::decode_rpc_request(path, body) else { return };
    let encoded = crate::rpc::encode(&cmd).expect("a decoded command encodes");
    let _: crate::fsm::Command = crate::rpc::decode(&encoded).expect("an encoded command decodes");
    let mut st = crate::state::Store::default();
    let now = Instant::now();
    let _ = crate::fsm::apply(&mut st, 1, &cmd, now);
    let _ = crate::fsm::apply(&mut st, 2, &cmd, now);
    let _ = crate::server::operator::archive::table_stats(&st);
}

/// A snapshot archive (`/v1/snapshot`, `sekisho snapshot`) or a Raft snapshot file, each as
/// given and with its checksum made to match (so the decoders behind it are reached). Bad
/// input must be refused with an error; what is accepted is restored into a store and must
/// archive again.
pub fn snapshot_archive(data: &[u8]) {
    use crate::server::operator::archive;
    let mut fixed = data.to_vec();
    if let Some(body_len) = fixed.len().checked_sub(32) {
        let d = ring::digest::digest(&ring::digest::SHA256, &fixed[..body_len]);
        fixed[body_len..].copy_from_slice(d.as_ref());
    }
    for bytes in [data, &fixed[..]] {
        if let Ok(a) = archive::decode(bytes) {
            restore(a.store.clone());
            let again = archive::encode(&a.meta, &a.store).expect("a decoded archive encodes");
            archive::decode(&again).expect("a re-encoded archive decodes");
        }
    }
    let mut fixed = data.to_vec();
    if fixed.len() >= 12 {
        let crc = crc32fast::hash(&fixed[12..]);
        fixed[8..12].copy_from_slice(&crc.to_le_bytes());
    }
    for bytes in [data, &fixed[..]] {
        if let Ok(store) = crate::raft::decode_snapshot_file(bytes) {
            restore(store);
        }
    }
}

fn restore(store: crate::state::Store) {
    let mut st = crate::state::Store::default();
    let cmd = crate::fsm::Command::Restore(Box::new(store));
    let _ = crate::fsm::apply(&mut st, 10, &cmd, Instant::now());
    let _ = crate::server::operator::archive::table_stats(&st);
}

/// Seed inputs made by the code's own encoders (the fuzz corpus generator,
/// `tests/fuzz_corpus.rs`): `(target, file name, bytes)`.
pub fn generated_seeds() -> Vec<(&'static str, String, Vec<u8>)> {
    let mut out = Vec::new();
    out.extend(crate::gossip::fuzz::seeds().into_iter().map(|(n, b)| ("gossip_packet", n, b)));
    out.extend(rpc_seeds().into_iter().map(|(n, b)| ("rpc_frame", n, b)));
    out.extend(snapshot_seeds().into_iter().map(|(n, b)| ("snapshot_archive", n, b)));
    out
}

fn rpc_seeds() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut put = |name: &str, path: &str, body: Result<bytes::Bytes, crate::rpc::RpcError>| {
        let mut v = path.as_bytes().to_vec();
        v.push(b'\n');
        v.extend_from_slice(&body.expect("seed encodes"));
        out.push((name.to_owned(), v));
    };
    use crate::rpc::encode as e;
    put("ping", "/rpc/v1/ping", e(&()));
    put("node_entries", "/rpc/v1/node_entries", e(&"db1".to_owned()));
    put("dns_node", "/rpc/v1/dns/node", e(&"db1".to_owned()));
    put("dns_instances", "/rpc/v1/dns/instances", e(&("web".to_owned(), Some("primary".to_owned()))));
    put("dns_addr", "/rpc/v1/dns/nodes_by_addr", e(&"10.1.0.5".parse::<std::net::IpAddr>().expect("ip")));
    put("read_index", "/rpc/v1/read_index", e(&true));
    put("remove_server", "/rpc/v1/remove_server", e(&7u64));
    put(
        "add_server",
        "/rpc/v1/add_server",
        e(&(7u64, crate::raft::ServerNode { name: "s2".into(), rpc_addr: "10.0.0.2:8300".into() })),
    );
    put("session_renew", "/rpc/v1/session_renew", e(&"adf4238a-882b-9ddc-4a9d-5b6758e4159e".to_owned()));
    put("acl_resolve", "/rpc/v1/acl/resolve", e(&"secret".to_owned()));
    put("transfer", "/rpc/v1/operator/transfer", e(&Some("s2".to_owned())));
    put(
        "http",
        "/rpc/v1/http",
        e(&crate::server::ProxyRequest {
            method: "PUT".into(),
            path_and_query: "/v1/kv/a?cas=0".into(),
            headers: vec![("X-Consul-Token".into(), "t".into())],
            body: b"v".to_vec(),
        }),
    );
    for (name, cmd) in seed_commands() {
        put(&format!("write_{name}"), "/rpc/v1/write", e(&cmd));
    }
    put(
        "vote",
        "/raft/v1/vote",
        e(&openraft::raft::VoteRequest::<u64>::new(openraft::Vote::new(3, 1), None)),
    );
    out
}

fn snapshot_seeds() -> Vec<(String, Vec<u8>)> {
    use crate::server::operator::archive;
    let mut st = crate::state::Store::default();
    let now = Instant::now();
    for (i, (_, cmd)) in seed_commands().into_iter().enumerate() {
        let _ = crate::fsm::apply(&mut st, i as u64 + 1, &cmd, now);
    }
    let meta = archive::SnapshotMeta::now(12, 2, "dc1", "node1");
    vec![
        ("archive".to_owned(), archive::encode(&meta, &st).expect("archive")),
        (
            "archive_empty".to_owned(),
            archive::encode(&meta, &crate::state::Store::default()).expect("archive"),
        ),
        ("raft_file".to_owned(), crate::raft::encode_snapshot_file(&st).expect("raft snapshot file")),
    ]
}

/// Real writes, one of each common kind.
fn seed_commands() -> Vec<(&'static str, crate::fsm::Command)> {
    use crate::fsm::Command;
    use crate::state::catalog::{DeregisterRequest, RegisterRequest};
    use crate::state::kv::{KvOp, KvVerb};
    use crate::state::txn::TxnOp;
    use crate::state::types::{Node, Service, Session};
    let session = "adf4238a-882b-9ddc-4a9d-5b6758e4159e";
    let kv = |verb, key: &str, value: Option<&[u8]>| KvOp {
        value: value.map(<[u8]>::to_vec),
        ..KvOp::new(verb, key)
    };
    let node = Node {
        id: "40e4a748-2192-161a-0510-9bf59fe950b5".into(),
        node: "db1".into(),
        address: "10.1.0.5".into(),
        datacenter: "dc1".into(),
        ..Node::default()
    };
    let service = Service {
        id: "web1".into(),
        service: "web".into(),
        tags: vec!["primary".into()],
        port: 8080,
        ..Service::default()
    };
    vec![
        ("kv_set", Command::Kv(kv(KvVerb::Set, "app/config", Some(b"{\"a\":1}")))),
        (
            "register",
            Command::Register(Box::new(RegisterRequest {
                node: node.clone(),
                service: Some(service.clone()),
                checks: Vec::new(),
                skip_node_update: false,
            })),
        ),
        (
            "session_create",
            Command::SessionCreate(Session {
                id: session.into(),
                name: "lock".into(),
                node: "db1".into(),
                lock_delay: 15_000_000_000,
                behavior: "release".into(),
                ..Session::default()
            }),
        ),
        (
            "kv_lock",
            Command::Kv(KvOp {
                session: Some(session.into()),
                ..kv(KvVerb::Lock, "app/leader", Some(b"me"))
            }),
        ),
        (
            "txn",
            Command::Txn(vec![
                TxnOp::Kv(kv(KvVerb::Set, "app/a", Some(b"1"))),
                TxnOp::Kv(kv(KvVerb::CheckNotExists, "app/b", None)),
                TxnOp::Kv(kv(KvVerb::DeleteTree, "tmp/", None)),
            ]),
        ),
        (
            "batch",
            Command::Batch(vec![
                Command::Kv(kv(KvVerb::Set, "b/1", Some(b"x"))),
                Command::Kv(KvOp { index: 1, ..kv(KvVerb::DeleteCas, "b/1", None) }),
            ]),
        ),
        ("session_destroy", Command::SessionDestroy(session.into())),
        (
            "deregister",
            Command::Deregister(DeregisterRequest {
                node: "db1".into(),
                service_id: Some("web1".into()),
                check_id: None,
            }),
        ),
        ("tombstone_reap", Command::TombstoneReap(5)),
    ]
}
