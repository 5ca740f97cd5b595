//! A DNS client built from hickory-proto messages (UDP and TCP), a tiny HTTP client for
//! catalog registrations, and helpers that pull records out of answers.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use bytes::Bytes;
use hickory_proto::op::{Edns, Message, ResponseCode};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rand::RngExt as _;
use sekisho::agent::Tuning;
use sekisho::config::RuntimeConfig;
use sekisho::testing::{TestAgent, eventually};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

/// How long one DNS exchange or HTTP request may take before the test fails.
const DEADLINE: Duration = Duration::from_secs(10);

/// An HTTP client for one agent (only what the DNS tests need).
#[derive(Debug, Clone)]
pub(crate) struct Api {
    base: String,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Api {
    pub(crate) fn new(agent: &TestAgent) -> Api {
        Api {
            base: format!("http://{}", agent.http_addr()),
            client: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    async fn request(&self, method: Method, path: &str, body: Bytes) -> (StatusCode, Value) {
        let req = Request::builder()
            .method(method.clone())
            .uri(format!("{}{path}", self.base))
            .body(Full::new(body))
            .expect("valid request");
        let fut = async {
            let resp = self.client.request(req).await.expect("HTTP request");
            let status = resp.status();
            let body = resp.into_body().collect().await.expect("HTTP body").to_bytes();
            (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
        };
        tokio::time::timeout(DEADLINE, fut).await.unwrap_or_else(|_| panic!("{method} {path} timed out"))
    }

    pub(crate) async fn get(&self, path: &str) -> Value {
        let (status, body) = self.request(Method::GET, path, Bytes::new()).await;
        assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
        body
    }

    async fn put_true(&self, path: &str, body: &Value) {
        let bytes = Bytes::from(serde_json::to_vec(body).expect("JSON"));
        let (status, reply) = self.request(Method::PUT, path, bytes).await;
        assert_eq!((status, &reply), (StatusCode::OK, &json!(true)), "PUT {path} {body}");
    }

    /// `POST path` with a JSON body, asserting 200; returns the JSON answer.
    pub(crate) async fn post(&self, path: &str, body: &Value) -> Value {
        let bytes = Bytes::from(serde_json::to_vec(body).expect("JSON"));
        let (status, reply) = self.request(Method::POST, path, bytes).await;
        assert_eq!(status, StatusCode::OK, "POST {path} {body}: {reply}");
        reply
    }

    /// `PUT /v1/catalog/register`.
    pub(crate) async fn register(&self, body: Value) {
        self.put_true("/v1/catalog/register", &body).await;
    }

    /// `PUT /v1/catalog/deregister`.
    pub(crate) async fn deregister(&self, body: Value) {
        self.put_true("/v1/catalog/deregister", &body).await;
    }

    /// Registers `service` (ID = name) on `node` at `addr`, passing.
    pub(crate) async fn service(&self, node: &str, addr: &str, service: Value) {
        self.register(json!({ "Node": node, "Address": addr, "Service": service })).await;
    }
}

/// Starts a test agent with `tune` applied and waits until it registered itself (node,
/// `consul` service, passing `serfHealth`).
pub(crate) async fn start_with(tune: impl FnOnce(&mut RuntimeConfig, &mut Tuning)) -> (TestAgent, Api, Dns) {
    let agent = TestAgent::start_with(tune).await;
    let api = Api::new(&agent);
    let node = agent.config.node_name.clone();
    eventually(DEADLINE, "the agent registers itself", || {
        let api = api.clone();
        let node = node.clone();
        async move {
            let checks = api.get(&format!("/v1/health/node/{node}")).await;
            let serf = checks.as_array()?.iter().find(|c| c["CheckID"] == "serfHealth")?.clone();
            (serf["Status"] == "passing").then_some(())
        }
    })
    .await;
    let dns = Dns::new(agent.dns_addr());
    (agent, api, dns)
}

/// [`start_with`] with the default configuration.
pub(crate) async fn start() -> (TestAgent, Api, Dns) {
    start_with(|_, _| {}).await
}

/// A DNS client for one server address.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Dns {
    pub(crate) addr: SocketAddr,
}

/// A query message for `name`/`qtype` with RD set, and an OPT record when `edns` is given.
pub(crate) fn query(name: &str, qtype: RecordType, edns: Option<u16>) -> Message {
    let mut m = Message::query();
    m.metadata.id = rand::rng().random();
    m.metadata.recursion_desired = true;
    m.add_query(hickory_proto::op::Query::query(Name::from_ascii(name).expect("valid name"), qtype));
    if let Some(size) = edns {
        let mut e = Edns::new();
        e.set_max_payload(size);
        m.set_edns(e);
    }
    m
}

impl Dns {
    pub(crate) fn new(addr: SocketAddr) -> Dns {
        Dns { addr }
    }

    /// Sends raw bytes over UDP and returns the first reply, or `None` after `wait`.
    pub(crate) async fn udp_raw(&self, bytes: &[u8], wait: Duration) -> Option<Vec<u8>> {
        let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind UDP");
        socket.connect(self.addr).await.expect("connect UDP");
        socket.send(bytes).await.expect("send UDP");
        let mut buf = vec![0u8; 65535];
        let n = tokio::time::timeout(wait, socket.recv(&mut buf)).await.ok()?.ok()?;
        buf.truncate(n);
        Some(buf)
    }

    /// Sends `m` over UDP; returns the reply and its size in bytes.
    pub(crate) async fn udp_message(&self, m: &Message) -> (Message, usize) {
        let bytes = m.to_vec().expect("encode query");
        let reply = self.udp_raw(&bytes, DEADLINE).await.unwrap_or_else(|| panic!("no UDP reply to {m:?}"));
        let parsed = Message::from_vec(&reply).expect("decode reply");
        assert_eq!(parsed.metadata.id, m.metadata.id, "reply ID");
        (parsed, reply.len())
    }

    /// Asks over UDP without EDNS.
    pub(crate) async fn udp(&self, name: &str, qtype: RecordType) -> Message {
        self.udp_message(&query(name, qtype, None)).await.0
    }

    /// Asks over UDP advertising an EDNS payload size.
    pub(crate) async fn udp_edns(&self, name: &str, qtype: RecordType, size: u16) -> (Message, usize) {
        self.udp_message(&query(name, qtype, Some(size))).await
    }

    /// Asks over a fresh TCP connection.
    pub(crate) async fn tcp(&self, name: &str, qtype: RecordType) -> Message {
        let m = query(name, qtype, None);
        let mut stream = self.tcp_connect().await;
        let reply = tcp_exchange(&mut stream, &m.to_vec().expect("encode query")).await.expect("TCP reply");
        let parsed = Message::from_vec(&reply).expect("decode reply");
        assert_eq!(parsed.metadata.id, m.metadata.id, "reply ID");
        parsed
    }

    pub(crate) async fn tcp_connect(&self) -> TcpStream {
        TcpStream::connect(self.addr).await.expect("connect TCP")
    }
}

/// Writes one length-prefixed message and reads one back.
pub(crate) async fn tcp_exchange(stream: &mut TcpStream, bytes: &[u8]) -> Option<Vec<u8>> {
    let fut = async {
        let len = u16::try_from(bytes.len()).ok()?;
        stream.write_all(&len.to_be_bytes()).await.ok()?;
        stream.write_all(bytes).await.ok()?;
        let len = stream.read_u16().await.ok()?;
        let mut buf = vec![0u8; usize::from(len)];
        stream.read_exact(&mut buf).await.ok()?;
        Some(buf)
    };
    tokio::time::timeout(DEADLINE, fut).await.ok()?
}

/// The addresses of the A and AAAA records in `records`.
pub(crate) fn ips(records: &[Record]) -> Vec<IpAddr> {
    let mut out: Vec<IpAddr> = records
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            RData::AAAA(a) => Some(IpAddr::V6(a.0)),
            _ => None,
        })
        .collect();
    out.sort();
    out
}

/// `ip` parsed, for comparisons with [`ips`].
pub(crate) fn ip(s: &str) -> IpAddr {
    s.parse().expect("IP literal")
}

/// `(target, port, weight)` of every SRV answer, sorted.
pub(crate) fn srvs(m: &Message) -> Vec<(String, u16, u16)> {
    let mut out: Vec<(String, u16, u16)> = m
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::SRV(s) => Some((s.target.to_ascii(), s.port, s.weight)),
            _ => None,
        })
        .collect();
    out.sort();
    out
}

/// The TXT strings of `records` (each record's strings joined).
pub(crate) fn txts(records: &[Record]) -> Vec<String> {
    let mut out: Vec<String> = records
        .iter()
        .filter_map(|r| match &r.data {
            RData::TXT(t) => {
                Some(t.txt_data.iter().map(|s| String::from_utf8_lossy(s).into_owned()).collect())
            }
            _ => None,
        })
        .collect();
    out.sort();
    out
}

/// The `(mname, rname)` of the SOA in the authority section; panics when there is none.
#[track_caller]
pub(crate) fn authority_soa(m: &Message) -> (String, String) {
    m.authorities
        .iter()
        .find_map(|r| match &r.data {
            RData::SOA(s) => Some((s.mname.to_ascii(), s.rname.to_ascii())),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no SOA in the authority section: {m:?}"))
}

/// Panics unless `m` has response code `rcode`.
#[track_caller]
pub(crate) fn expect_rcode(m: &Message, rcode: ResponseCode) {
    assert_eq!(m.metadata.response_code, rcode, "response: {m:?}");
}
