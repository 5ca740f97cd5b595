//! Server RPC on `ports.server` (8300): one HTTP/2 (cleartext, prior knowledge) listener that
//! carries Raft traffic (`/raft/v1/...`) and server-to-server calls (`/rpc/v1/...`), with
//! msgpack bodies (`rmp-serde`, named fields, so added fields survive mixed versions).
//!
//! ```text
//!  RpcClient::call(addr, path, req) ─► faults? ─► pooled h2 connection ─► POST path (msgpack)
//!  serve(listener, handler) ─► handler(path, body) ─► 200 msgpack | 4xx/5xx text (RpcError)
//! ```
//! With TLS (`tls.internal_rpc`), the listener takes TLS and, unless `verify_incoming`,
//! plaintext on the same port (told apart by the first byte); calls go out over TLS when
//! `verify_outgoing`, checking the server name `server.<dc>.<domain>` under
//! `verify_server_hostname`. Raft paths need a server certificate then (`tls.rs`).
//! Connections count against `limits.rpc_max_conns_per_client` per client IP; one over it is
//! closed at once (with a warning, at most once a minute per IP).

mod tls;

use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::net::fault::{Faults, Verdict};
use crate::tls::AgentTls;

/// Largest RPC body accepted (snapshot chunks included).
pub const MAX_BODY: usize = 64 << 20;

/// Errors of an RPC call.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RpcError {
    /// The request never reached the peer (bad address, connect failure, dropped by a
    /// fault before sending): safe to retry anywhere.
    #[error("rpc to {addr} failed: {detail}")]
    Unreachable { addr: String, detail: String },
    /// The request may have reached the peer, but no answer came back (timeout, reset,
    /// answer lost). A write may have been applied: retrying it could apply it twice.
    #[error("rpc to {addr} got no answer: {detail}")]
    NoAnswer { addr: String, detail: String },
    /// The peer answered with an error.
    #[error("{0}")]
    Remote(String),
    /// A body could not be encoded or decoded.
    #[error("rpc codec error: {0}")]
    Codec(String),
    /// No handler for the path.
    #[error("unknown rpc endpoint {0}")]
    NotFound(String),
    /// The caller's certificate does not allow this call.
    #[error("{0}")]
    Denied(String),
}

/// Encodes a value as named msgpack.
pub fn encode<T: Serialize>(v: &T) -> Result<Bytes, RpcError> {
    rmp_serde::to_vec_named(v).map(Bytes::from).map_err(|e| RpcError::Codec(e.to_string()))
}

/// Deepest msgpack nesting decoded. rmp-serde's default (1024) overflows a 2 MiB thread
/// stack in debug builds (fuzzing found it with a deeply nested snapshot file); Sekisho's own
/// values nest a few levels, plus at most 128 for JSON stored from the HTTP API.
pub const MAX_DEPTH: usize = 256;

/// Decodes named msgpack, at most [`MAX_DEPTH`] levels deep.
pub fn decode<T: DeserializeOwned>(b: &[u8]) -> Result<T, RpcError> {
    decode_msgpack(b).map_err(|e| RpcError::Codec(e.to_string()))
}

/// [`decode`] with rmp-serde's error (snapshot files and archives).
pub fn decode_msgpack<T: DeserializeOwned>(b: &[u8]) -> Result<T, rmp_serde::decode::Error> {
    let mut de = rmp_serde::Deserializer::from_read_ref(b);
    de.set_max_depth(MAX_DEPTH);
    T::deserialize(&mut de)
}

/// A pooled HTTP/2 client over TLS.
type TlsClient = Client<crate::net::tls::TlsConnector, Full<Bytes>>;

/// A pooled HTTP/2 client that originates from this node's address and obeys [`Faults`].
#[derive(Clone)]
pub struct RpcClient {
    http: Client<HttpConnector, Full<Bytes>>,
    /// Set when calls go out over TLS (`verify_outgoing`).
    https: Option<TlsClient>,
    /// TLS clients for other datacenters, by name (each verifies `server.<dc>.<domain>`).
    https_dc: Arc<parking_lot::Mutex<std::collections::HashMap<String, TlsClient>>>,
    tls: Option<Arc<AgentTls>>,
    local_ip: IpAddr,
    faults: Arc<Faults>,
}

impl std::fmt::Debug for RpcClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RpcClient").field("local_ip", &self.local_ip).finish_non_exhaustive()
    }
}

impl RpcClient {
    /// A client whose connections start from `local_ip` (unspecified: let the OS choose).
    pub fn new(local_ip: IpAddr, faults: Arc<Faults>) -> RpcClient {
        let http = pooled(connector(local_ip));
        RpcClient { http, https: None, https_dc: Arc::default(), tls: None, local_ip, faults }
    }

    /// This client with outgoing TLS from `tls` when it has `verify_outgoing`.
    pub fn with_tls(mut self, tls: Option<Arc<AgentTls>>) -> RpcClient {
        self.tls = tls.clone();
        self.https = tls.filter(|t| t.rpc_client().is_some()).map(|tls| {
            let dc = tls.datacenter().to_owned();
            pooled(crate::net::tls::TlsConnector::new(connector(self.local_ip), Arc::new(RpcTls(tls, dc))))
        });
        self
    }

    /// [`RpcClient::call`] to a server of datacenter `dc`: over TLS the server must prove
    /// `server.<dc>.<domain>`.
    pub async fn call_dc<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        dc: &str,
        addr: &str,
        path: &str,
        req: &Req,
        timeout: Duration,
    ) -> Result<Resp, RpcError> {
        let body = encode(req)?;
        let https = match &self.tls {
            Some(tls) if self.https.is_some() && dc != tls.datacenter() => {
                let mut clients = self.https_dc.lock();
                let c = clients.entry(dc.to_owned()).or_insert_with(|| {
                    let source = Arc::new(RpcTls(tls.clone(), dc.to_owned()));
                    pooled(crate::net::tls::TlsConnector::new(connector(self.local_ip), source))
                });
                Some(c.clone())
            }
            _ => self.https.clone(),
        };
        let bytes = self.exchange(https.as_ref(), addr, path, body, timeout).await?;
        decode(&bytes)
    }

    /// Sends `req` to `addr` (`ip:port`) at `path` and decodes the answer, within `timeout`.
    pub async fn call<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        addr: &str,
        path: &str,
        req: &Req,
        timeout: Duration,
    ) -> Result<Resp, RpcError> {
        let body = encode(req)?;
        let bytes = self.call_raw(addr, path, body, timeout).await?;
        decode(&bytes)
    }

    /// [`RpcClient::call`] with bytes in and out.
    pub async fn call_raw(
        &self,
        addr: &str,
        path: &str,
        body: Bytes,
        timeout: Duration,
    ) -> Result<Bytes, RpcError> {
        self.exchange(self.https.as_ref(), addr, path, body, timeout).await
    }

    async fn exchange(
        &self,
        https: Option<&Client<crate::net::tls::TlsConnector, Full<Bytes>>>,
        addr: &str,
        path: &str,
        body: Bytes,
        timeout: Duration,
    ) -> Result<Bytes, RpcError> {
        let unreachable = |detail: String| RpcError::Unreachable { addr: addr.to_owned(), detail };
        let no_answer = |detail: String| RpcError::NoAnswer { addr: addr.to_owned(), detail };
        let target: SocketAddr = addr.parse().map_err(|_| unreachable("not an ip:port address".into()))?;
        let delay = self.fault(target.ip()).ok_or_else(|| unreachable("dropped (fault injection)".into()))?;
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let scheme = if https.is_some() { "https" } else { "http" };
        let req = Request::builder()
            .method(Method::POST)
            .uri(format!("{scheme}://{addr}{path}"))
            .header("content-type", "application/msgpack")
            .body(Full::new(body))
            .map_err(|e| unreachable(e.to_string()))?;
        let exchange = async {
            let sent = match https {
                Some(https) => https.request(req).await,
                None => self.http.request(req).await,
            };
            // A connect error means nothing was sent; any later failure may come after the
            // peer got the request.
            let resp = sent.map_err(|e| {
                if e.is_connect() { unreachable(error_chain(&e)) } else { no_answer(error_chain(&e)) }
            })?;
            let status = resp.status();
            let body = Limited::new(resp.into_body(), MAX_BODY)
                .collect()
                .await
                .map_err(|e| no_answer(format!("reading the answer: {e}")))?
                .to_bytes();
            Ok::<_, RpcError>((status, body))
        };
        let (status, body) = tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| no_answer(format!("no answer within {timeout:?}")))??;
        // The answer crosses the network too (a round trip takes twice an injected delay).
        match self.fault(target.ip()) {
            None => return Err(no_answer("answer dropped (fault injection)".into())),
            Some(d) if !d.is_zero() => tokio::time::sleep(d).await,
            Some(_) => {}
        }
        match status {
            StatusCode::OK => Ok(body),
            StatusCode::NOT_FOUND => Err(RpcError::NotFound(path.to_owned())),
            StatusCode::FORBIDDEN => Err(RpcError::Denied(String::from_utf8_lossy(&body).into_owned())),
            _ => Err(RpcError::Remote(String::from_utf8_lossy(&body).into_owned())),
        }
    }

    fn fault(&self, to: IpAddr) -> Option<Duration> {
        match self.faults.verdict(self.local_ip, to) {
            Verdict::Deliver(d) => Some(d),
            Verdict::Drop => None,
        }
    }
}

/// RPC verifies servers of the datacenter called: `server.<dc>.<domain>`.
struct RpcTls(Arc<AgentTls>, String);

impl crate::net::tls::TlsSource for RpcTls {
    fn client_config(&self) -> Option<Arc<rustls::ClientConfig>> {
        self.0.rpc_client()
    }

    fn server_name(&self, _uri: &http::Uri) -> String {
        self.0.server_name(&self.1)
    }
}

fn connector(local_ip: IpAddr) -> HttpConnector {
    let mut conn = HttpConnector::new();
    conn.set_nodelay(true);
    conn.set_connect_timeout(Some(Duration::from_secs(2)));
    if !local_ip.is_unspecified() {
        conn.set_local_address(Some(local_ip));
    }
    conn
}

fn pooled<C>(conn: C) -> Client<C, Full<Bytes>>
where
    C: hyper_util::client::legacy::connect::Connect + Clone,
{
    Client::builder(TokioExecutor::new())
        .http2_only(true)
        .pool_idle_timeout(Duration::from_secs(90))
        .build(conn)
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let m = c.to_string();
        if !s.ends_with(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = c.source();
    }
    s
}

/// What the TLS handshake proved about the caller, for the handler to authorize by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    /// Anyone may call anything: no `verify_incoming`, or a server certificate (or any
    /// CA-signed one without `verify_server_hostname`).
    Trusted,
    /// A CA-signed certificate that does not name `server.<dc>.<domain>` (a client agent)
    /// under `verify_incoming` and `verify_server_hostname`.
    Client,
    /// TLS without a client certificate (allowed only with `auto_encrypt.allow_tls`).
    Anonymous,
    /// A server certificate of another datacenter (`server.<other-dc>.<domain>`): the
    /// cross-datacenter paths only, never Raft or membership.
    RemoteServer,
}

/// The answer of a handler: msgpack bytes, or an error sent as text.
pub type HandlerResult = Result<Bytes, RpcError>;
/// A boxed handler future.
pub type HandlerFuture = Pin<Box<dyn Future<Output = HandlerResult> + Send>>;
/// Dispatches one call by path.
pub type Handler = Arc<dyn Fn(String, Bytes, Peer) -> HandlerFuture + Send + Sync>;

async fn handle(
    handler: Handler,
    req: Request<Incoming>,
    peer: Peer,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_owned();
    let text = |code: StatusCode, msg: String| {
        let mut r = Response::new(Full::new(Bytes::from(msg)));
        *r.status_mut() = code;
        Ok(r)
    };
    if req.method() != Method::POST {
        return text(StatusCode::METHOD_NOT_ALLOWED, format!("{} is not allowed", req.method()));
    }
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return text(StatusCode::PAYLOAD_TOO_LARGE, format!("rpc body rejected: {e}")),
    };
    match handler(path, body, peer).await {
        Ok(b) => Ok(Response::new(Full::new(b))),
        Err(RpcError::NotFound(p)) => text(StatusCode::NOT_FOUND, format!("unknown rpc endpoint {p}")),
        Err(RpcError::Denied(why)) => text(StatusCode::FORBIDDEN, why),
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// The RPC listener's limits (`limits.rpc_max_conns_per_client`, `rpc_handshake_timeout`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RpcLimits {
    /// Concurrent connections per client IP (0: no limit).
    pub max_conns_per_client: u32,
    /// Time allowed for the first byte, and then for the TLS handshake.
    pub handshake_timeout: Duration,
}

impl RpcLimits {
    /// The RPC part of `limits`.
    pub fn from_config(l: &crate::config::Limits) -> RpcLimits {
        RpcLimits {
            max_conns_per_client: l.rpc_max_conns_per_client,
            handshake_timeout: l.rpc_handshake_timeout,
        }
    }
}

impl Default for RpcLimits {
    fn default() -> Self {
        RpcLimits::from_config(&crate::config::Limits::default())
    }
}

/// A bound server RPC socket and the limits its connections are served under.
#[derive(Debug)]
pub struct RpcListener {
    listener: TcpListener,
    limits: RpcLimits,
}

impl RpcListener {
    /// `listener` served under `limits`.
    pub fn new(listener: TcpListener, limits: RpcLimits) -> RpcListener {
        RpcListener { listener, limits }
    }
}

impl From<TcpListener> for RpcListener {
    fn from(listener: TcpListener) -> RpcListener {
        RpcListener::new(listener, RpcLimits::default())
    }
}

/// At most one warning per client IP this often about connections over the limit.
const WARN_EVERY: Duration = Duration::from_secs(60);

/// Serves RPC on `listener` until `stop` is cancelled, with TLS from `tls` when given.
pub async fn serve(
    listener: impl Into<RpcListener>,
    handler: Handler,
    tls: Option<Arc<AgentTls>>,
    stop: CancellationToken,
) {
    let RpcListener { listener, limits } = listener.into();
    let per_ip = crate::net::limit::PerIpConns::new(limits.max_conns_per_client);
    let mut warn = crate::net::limit::LogThrottle::new(WARN_EVERY, 4096);
    let conns = tokio_util::task::TaskTracker::new();
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => break,
            a = listener.accept() => a,
        };
        let (stream, from) = match accepted {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "accepting an RPC connection failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Some(permit) = per_ip.try_acquire(from.ip()) else {
            crate::telemetry::incr(
                crate::telemetry::names::LIMIT_REJECTED,
                &[("limit", "rpc_max_conns_per_client")],
            );
            if warn.should_log(from.ip(), std::time::Instant::now()) {
                tracing::warn!(
                    client = %from.ip(),
                    limit = limits.max_conns_per_client,
                    "rpc: closing connections over limits.rpc_max_conns_per_client"
                );
            }
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let handler = handler.clone();
        let stop = stop.clone();
        let tls = tls.clone();
        conns.spawn(async move {
            let _permit = permit;
            match tls::accept(stream, tls.as_ref(), limits.handshake_timeout).await {
                Ok((tls::Accepted::Plain(s), peer)) => serve_conn(s, handler, peer, stop).await,
                Ok((tls::Accepted::Tls(s), peer)) => serve_conn(*s, handler, peer, stop).await,
                Err(why) => tracing::warn!("rpc: connection from {from} dropped: {why}"),
            }
        });
    }
    conns.close();
    conns.wait().await;
}

/// Serves one accepted connection (plaintext or TLS) with HTTP/2.
async fn serve_conn<S>(stream: S, handler: Handler, peer: Peer, stop: CancellationToken)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let svc = hyper::service::service_fn(move |req: Request<Incoming>| handle(handler.clone(), req, peer));
    let conn = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
        .max_frame_size(1 << 20)
        .serve_connection(TokioIo::new(stream), svc);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = stop.cancelled() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(Duration::from_secs(1), conn).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn echo() -> Handler {
        Arc::new(|path, body, _peer| {
            Box::pin(async move {
                match path.as_str() {
                    "/rpc/v1/echo" => {
                        let s: String = decode(&body)?;
                        encode(&format!("echo {s}"))
                    }
                    "/rpc/v1/fail" => Err(RpcError::Remote("No cluster leader".into())),
                    _ => Err(RpcError::NotFound(path)),
                }
            })
        })
    }

    #[test]
    fn nesting_deeper_than_the_limit_is_an_error_not_a_stack_overflow() {
        // 2,000 nested one-element arrays around a nil (as in a fuzzed snapshot file).
        let deep = |n: usize| [vec![0x91u8; n], vec![0xc0]].concat();
        assert!(decode::<serde::de::IgnoredAny>(&deep(MAX_DEPTH - 1)).is_ok());
        let e = decode::<serde::de::IgnoredAny>(&deep(2_000)).expect_err("too deep");
        assert!(e.to_string().contains("depth limit exceeded"), "{e}");
    }

    #[tokio::test]
    async fn calls_errors_and_faults() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let stop = CancellationToken::new();
        tokio::spawn(serve(listener, echo(), None, stop.clone()));
        let faults = Faults::none();
        let c = RpcClient::new("127.0.0.1".parse().expect("ip"), faults.clone());
        let t = Duration::from_secs(5);
        let r: String = c.call(&addr, "/rpc/v1/echo", &"hi".to_owned(), t).await.expect("call");
        assert_eq!(r, "echo hi");
        let e = c.call::<_, String>(&addr, "/rpc/v1/fail", &(), t).await.unwrap_err();
        assert_eq!(e.to_string(), "No cluster leader");
        let e = c.call::<_, String>(&addr, "/rpc/v1/nope", &(), t).await.unwrap_err();
        assert!(matches!(e, RpcError::NotFound(_)), "{e}");

        // A partition between two loopback addresses drops the call.
        let other = RpcClient::new("127.0.0.2".parse().expect("ip"), faults.clone());
        faults.partition(&[&["127.0.0.1".parse().expect("ip")], &["127.0.0.2".parse().expect("ip")]]);
        let e = other.call::<_, String>(&addr, "/rpc/v1/echo", &"x".to_owned(), t).await.unwrap_err();
        assert!(matches!(e, RpcError::Unreachable { .. }), "{e}");
        faults.heal();
        let r: String = other.call(&addr, "/rpc/v1/echo", &"x".to_owned(), t).await.expect("healed");
        assert_eq!(r, "echo x");
        stop.cancel();
        let e = c.call::<_, String>("127.0.0.1:1", "/rpc/v1/echo", &(), t).await.unwrap_err();
        assert!(matches!(e, RpcError::Unreachable { .. }), "{e}");
    }
}
