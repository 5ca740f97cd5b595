//! Test fixtures: a recording [`CheckNotify`], and small HTTP/1, HTTPS and gRPC (h2c)
//! servers on port 0 whose answers the tests change while checks run.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU16, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, Response};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use parking_lot::Mutex;
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::net::AbortOnDrop;
use super::{AliasedCheck, CheckNotify, CheckSpec, RunnerOptions, Status};
use crate::testing::eventually;

pub(crate) const WAIT: Duration = Duration::from_secs(10);

/// Records every update; serves alias lookups from a map the test fills.
pub(crate) struct Recorder {
    updates: Mutex<Vec<(String, Status, String)>>,
    services: Mutex<HashMap<String, Vec<AliasedCheck>>>,
    changes: watch::Sender<u64>,
}

impl Recorder {
    pub(crate) fn new() -> Arc<Recorder> {
        Arc::new(Recorder {
            updates: Mutex::new(Vec::new()),
            services: Mutex::new(HashMap::new()),
            changes: watch::channel(0).0,
        })
    }

    pub(crate) fn results(&self) -> Vec<(Status, String)> {
        self.updates.lock().iter().map(|(_, s, o)| (*s, o.clone())).collect()
    }

    pub(crate) fn last(&self) -> Option<(Status, String)> {
        self.results().pop()
    }

    /// Waits until the latest update has `status` and its output satisfies `out`.
    pub(crate) async fn wait_for(&self, status: Status, out: impl Fn(&str) -> bool) -> String {
        let what = format!("a {status} update");
        eventually(WAIT, &what, || {
            let hit = self.last().filter(|(s, o)| *s == status && out(o)).map(|(_, o)| o);
            async move { hit }
        })
        .await
    }

    pub(crate) fn set_service(&self, id: &str, checks: Option<Vec<AliasedCheck>>) {
        match checks {
            Some(c) => self.services.lock().insert(id.to_string(), c),
            None => self.services.lock().remove(id),
        };
        self.changes.send_modify(|v| *v += 1);
    }
}

impl CheckNotify for Recorder {
    fn update(&self, check_id: &str, status: Status, output: &str) {
        self.updates.lock().push((check_id.to_string(), status, output.to_string()));
    }

    fn alias_checks(&self, node: Option<&str>, service_id: &str) -> Option<Vec<AliasedCheck>> {
        assert!(node.is_none(), "tests alias local services only");
        self.services.lock().get(service_id).cloned()
    }

    fn alias_changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }
}

/// Fast options for tests: no interval floor, first run at once.
pub(crate) fn opts(max_output: usize) -> RunnerOptions {
    RunnerOptions {
        max_output,
        min_interval: Duration::ZERO,
        alias_refresh: Duration::from_secs(30),
        stagger: false,
    }
}

/// Parses a check definition and names it `c1`.
pub(crate) fn spec(v: serde_json::Value) -> Arc<CheckSpec> {
    let mut s = CheckSpec::parse(&v).unwrap_or_else(|e| panic!("{v}: {e}"));
    s.id = "c1".into();
    Arc::new(s)
}

/// A request the test HTTP server saw.
#[derive(Debug, Clone)]
pub(crate) struct Seen {
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Vec<u8>,
}

/// An HTTP/1 server answering `status` with `body`; `/moved` redirects to `/`.
pub(crate) struct TestHttp {
    pub(crate) addr: SocketAddr,
    pub(crate) status: Arc<AtomicU16>,
    pub(crate) body: Arc<Mutex<String>>,
    pub(crate) seen: Arc<Mutex<Vec<Seen>>>,
    _task: AbortOnDrop,
}

impl TestHttp {
    pub(crate) async fn start(tls: Option<Arc<rustls::ServerConfig>>) -> TestHttp {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let status = Arc::new(AtomicU16::new(200));
        let body = Arc::new(Mutex::new("hello".to_string()));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (st, bd, sn) = (status.clone(), body.clone(), seen.clone());
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (st, bd, sn, tls) = (st.clone(), bd.clone(), sn.clone(), tls.clone());
                tokio::spawn(async move {
                    let svc = service_fn(move |req| answer(req, st.clone(), bd.clone(), sn.clone()));
                    let builder = hyper::server::conn::http1::Builder::new();
                    match tls {
                        Some(cfg) => {
                            if let Ok(s) = tokio_rustls::TlsAcceptor::from(cfg).accept(stream).await {
                                let _ = builder.serve_connection(TokioIo::new(s), svc).await;
                            }
                        }
                        None => {
                            let _ = builder.serve_connection(TokioIo::new(stream), svc).await;
                        }
                    }
                });
            }
        });
        TestHttp { addr, status, body, seen, _task: AbortOnDrop(task) }
    }

    pub(crate) fn set(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }
}

async fn answer(
    req: Request<Incoming>,
    status: Arc<AtomicU16>,
    body: Arc<Mutex<String>>,
    seen: Arc<Mutex<Vec<Seen>>>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, incoming) = req.into_parts();
    let data = incoming.collect().await.map(|c| c.to_bytes().to_vec()).unwrap_or_default();
    let path = parts.uri.path().to_string();
    seen.lock().push(Seen {
        method: parts.method.to_string(),
        path: path.clone(),
        headers: parts.headers,
        body: data,
    });
    let resp = if path == "/moved" {
        Response::builder().status(302).header("Location", "/").body(Full::new(Bytes::new()))
    } else {
        let text = body.lock().clone();
        Response::builder().status(status.load(Ordering::SeqCst)).body(Full::new(Bytes::from(text)))
    };
    Ok(resp.expect("valid response"))
}

/// A self-signed certificate for `localhost` and a server config using it, offering `alpn`.
pub(crate) fn self_signed_tls(alpn: &[u8]) -> Arc<rustls::ServerConfig> {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("cert");
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(ck.signing_key.serialize_der().into());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(vec![ck.cert.der().clone()], key)
        .expect("server config");
    cfg.alpn_protocols = vec![alpn.to_vec()];
    Arc::new(cfg)
}

/// A gRPC health server over h2c: answers `serving` (a `ServingStatus` number) for every
/// service except `missing`, which gets NOT_FOUND; records the requested service names.
pub(crate) struct TestGrpc {
    pub(crate) addr: SocketAddr,
    pub(crate) serving: Arc<AtomicU8>,
    pub(crate) services: Arc<Mutex<Vec<String>>>,
    _task: AbortOnDrop,
}

type GrpcBody = StreamBody<futures::stream::Iter<std::vec::IntoIter<Result<Frame<Bytes>, Infallible>>>>;

impl TestGrpc {
    /// Cleartext HTTP/2 (prior knowledge), or TLS offering ALPN `h2` when `tls` is set.
    pub(crate) async fn start(tls: Option<Arc<rustls::ServerConfig>>) -> TestGrpc {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let serving = Arc::new(AtomicU8::new(1));
        let services = Arc::new(Mutex::new(Vec::new()));
        let (sv, ss) = (serving.clone(), services.clone());
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (sv, ss, tls) = (sv.clone(), ss.clone(), tls.clone());
                tokio::spawn(async move {
                    let svc = service_fn(move |req| grpc_answer(req, sv.clone(), ss.clone()));
                    let builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
                    match tls {
                        Some(cfg) => {
                            if let Ok(s) = tokio_rustls::TlsAcceptor::from(cfg).accept(stream).await {
                                let _ = builder.serve_connection(TokioIo::new(s), svc).await;
                            }
                        }
                        None => {
                            let _ = builder.serve_connection(TokioIo::new(stream), svc).await;
                        }
                    }
                });
            }
        });
        TestGrpc { addr, serving, services, _task: AbortOnDrop(task) }
    }
}

async fn grpc_answer(
    req: Request<Incoming>,
    serving: Arc<AtomicU8>,
    services: Arc<Mutex<Vec<String>>>,
) -> Result<Response<GrpcBody>, Infallible> {
    assert_eq!(req.uri().path(), "/grpc.health.v1.Health/Check");
    assert_eq!(req.headers()["content-type"], "application/grpc");
    let data = req.into_body().collect().await.map(|c| c.to_bytes().to_vec()).unwrap_or_default();
    // 5-byte prefix, then field 1 (tag 0x0a, one-byte length) when a service is named.
    let service = match data.get(5..) {
        Some([0x0a, n, rest @ ..]) if rest.len() == usize::from(*n) => {
            String::from_utf8_lossy(rest).into_owned()
        }
        _ => String::new(),
    };
    services.lock().push(service.clone());
    let resp = Response::builder().header("content-type", "application/grpc");
    let frames = if service == "missing" {
        let resp = resp.header("grpc-status", "5").header("grpc-message", "unknown%20service");
        return Ok(resp.body(StreamBody::new(futures::stream::iter(Vec::new()))).expect("response"));
    } else {
        let mut trailers = HeaderMap::new();
        trailers.insert("grpc-status", "0".parse().expect("value"));
        let msg = Bytes::from(vec![0, 0, 0, 0, 2, 0x08, serving.load(Ordering::SeqCst)]);
        vec![Ok(Frame::data(msg)), Ok(Frame::trailers(trailers))]
    };
    Ok(resp.body(StreamBody::new(futures::stream::iter(frames))).expect("response"))
}

/// True when `pid` no longer runs (gone, or a zombie waiting for a reaper).
pub(crate) fn is_dead(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().next()) == Some("Z"),
    }
}
