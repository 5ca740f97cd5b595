//! The accept loop of the HTTP and HTTPS listeners (in place of `axum::serve`, which has no
//! knobs for these): each connection is counted against its client IP, TLS handshakes run in
//! the connection's own task under `limits.https_handshake_timeout`, and hyper's HTTP/1 reads
//! request headers under `limits.http_read_header_timeout` (slow or silent clients are
//! dropped; `header_deadline.rs`). Handlers see the peer as `ConnectInfo<SocketAddr>` on both
//! listeners.
//!
//! ```text
//!  accept ─► PerIpConns::try_acquire(ip) ─► None: [TLS handshake] 429 text, close
//!                                        └► permit ─► [TLS handshake] ─► hyper http1 ─► router
//!  shutdown: stop accepting, graceful close of every connection, wait for them
//! ```

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::{Body as _, Incoming};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt as _;

use super::header_deadline::HeaderDeadline;
use super::limits::{HttpLimits, TOO_MANY_CONNS};
use crate::net::limit::IpPermit;
use crate::telemetry::{self, names};
use crate::tls::AgentTls;

/// How long a refused connection may take to receive its 429 and close (half of it waiting
/// for the client's request).
const REFUSE_DEADLINE: Duration = Duration::from_secs(1);
/// What a refused connection's client had already sent is read (and dropped) up to this much,
/// so the close does not reset the connection before the client reads the 429.
const REFUSE_DRAIN: usize = 64 << 10;
/// At most one warning per client IP this often about refused connections.
const WARN_EVERY: Duration = Duration::from_secs(60);

/// How a listener's connections are secured.
#[derive(Debug, Clone)]
pub(crate) enum Transport {
    Plain,
    /// TLS with the agent's current HTTPS config (reloads apply to new connections).
    Tls(Arc<AgentTls>),
}

/// Serves `app` on `listener` until `shutdown`, then closes every connection gracefully
/// (requests in progress finish) and returns once they are all closed.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    transport: Transport,
    limits: Arc<HttpLimits>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let conns = TaskTracker::new();
    let warn = Arc::new(parking_lot::Mutex::new(crate::net::limit::LogThrottle::new(WARN_EVERY, 4096)));
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            a = listener.accept() => a,
        };
        let (stream, from) = match accepted {
            Ok(a) => a,
            Err(e) => {
                accept_failed(&e).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let permit = limits.conns.try_acquire(from.ip());
        if permit.is_none() && warn.lock().should_log(from.ip(), std::time::Instant::now()) {
            tracing::warn!(client = %from.ip(), "http: refusing connections over limits.http_max_conns_per_client");
        }
        let conn = Conn { app: app.clone(), from, limits: limits.clone(), stop: shutdown.clone() };
        let transport = transport.clone();
        conns.spawn(async move {
            match permit {
                Some(p) => conn.serve(stream, transport, p).await,
                None => conn.refuse(stream, transport).await,
            }
        });
    }
    drop(listener);
    conns.close();
    conns.wait().await;
    Ok(())
}

/// Accept errors are about one connection (reset before accept) or about resources (out of
/// file descriptors): log and go on, pausing briefly for the latter.
async fn accept_failed(e: &std::io::Error) {
    use std::io::ErrorKind::*;
    if matches!(e.kind(), ConnectionAborted | ConnectionReset | ConnectionRefused | Interrupted) {
        return;
    }
    tracing::warn!(error = %e, "http: accepting a connection failed");
    tokio::time::sleep(Duration::from_millis(50)).await;
}

/// One accepted connection.
struct Conn {
    app: Router,
    from: SocketAddr,
    limits: Arc<HttpLimits>,
    stop: CancellationToken,
}

impl Conn {
    async fn serve(self, stream: TcpStream, transport: Transport, permit: IpPermit) {
        let _permit = permit;
        match transport {
            Transport::Plain => self.http1(stream).await,
            Transport::Tls(tls) => {
                if let Some(s) = self.handshake(stream, &tls).await {
                    self.http1(s).await;
                }
            }
        }
    }

    /// Over the per-client limit: Consul's 429, then close.
    async fn refuse(self, stream: TcpStream, transport: Transport) {
        telemetry::incr(names::LIMIT_REJECTED, &[("limit", "http_max_conns_per_client")]);
        match transport {
            Transport::Plain => too_many_conns(stream).await,
            Transport::Tls(tls) => {
                if let Some(s) = self.handshake(stream, &tls).await {
                    too_many_conns(s).await;
                }
            }
        }
    }

    async fn handshake(
        &self,
        stream: TcpStream,
        tls: &AgentTls,
    ) -> Option<tokio_rustls::server::TlsStream<TcpStream>> {
        let config = tls.https_server()?;
        let from = self.from;
        let limit = self.limits.handshake_timeout;
        let handshake = tokio_rustls::TlsAcceptor::from(config).accept(stream);
        tokio::select! {
            r = tokio::time::timeout(limit, handshake) => match r {
                Ok(Ok(s)) => Some(s),
                Ok(Err(e)) => {
                    tracing::debug!("https: handshake with {from} failed: {e}");
                    None
                }
                Err(_) => {
                    tracing::debug!("https: handshake with {from} took longer than {limit:?}");
                    None
                }
            },
            _ = self.stop.cancelled() => None,
        }
    }

    async fn http1<I>(&self, io: I)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (app, from) = (self.app.clone(), self.from);
        let svc = hyper::service::service_fn(move |mut req: http::Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(from));
            let had_body = !req.body().is_end_stream();
            let done = Arc::new(AtomicBool::new(false));
            let req = req.map(|inner| axum::body::Body::new(Tracked { inner, done: done.clone() }));
            let app = app.clone();
            async move {
                let mut resp = app.oneshot(req).await?;
                if had_body && !done.load(Ordering::Relaxed) {
                    // hyper drops the connection after an answer that left the body unread;
                    // say so, or the client may reuse it and lose its next request.
                    resp.headers_mut()
                        .insert(http::header::CONNECTION, http::HeaderValue::from_static("close"));
                }
                Ok::<_, std::convert::Infallible>(resp)
            }
        });
        // Header and idle deadlines are HeaderDeadline's (Go's semantics), not hyper's.
        let io = HeaderDeadline::new(io, self.limits.header_read_timeout);
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder.header_read_timeout(None);
        let conn = builder.serve_connection(TokioIo::new(io), svc);
        tokio::pin!(conn);
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!("http: connection from {from} ended: {e}");
                }
            }
            _ = self.stop.cancelled() => {
                conn.as_mut().graceful_shutdown();
                let _ = conn.await;
            }
        }
    }
}

/// A request body that records whether it was read to the end.
struct Tracked {
    inner: Incoming,
    done: Arc<AtomicBool>,
}

impl hyper::body::Body for Tracked {
    type Data = bytes::Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<bytes::Bytes>, hyper::Error>>> {
        let polled = std::pin::Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(polled, std::task::Poll::Ready(None)) || self.inner.is_end_stream() {
            self.done.store(true, Ordering::Relaxed);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

/// Writes go-connlimit's 429 response, closes the sending side and reads what the client
/// sent, all within [`REFUSE_DEADLINE`]. The answer waits (briefly) for the client's first
/// bytes: an HTTP client that gets an answer before it has sent its request takes it for a
/// broken connection rather than a 429.
async fn too_many_conns<I: AsyncRead + AsyncWrite + Unpin>(mut io: I) {
    let response = format!(
        "HTTP/1.1 429 Too Many Requests\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{TOO_MANY_CONNS}",
        TOO_MANY_CONNS.len()
    );
    let mut sink = [0u8; 4096];
    let exchange = async {
        let mut drained = match tokio::time::timeout(REFUSE_DEADLINE / 2, io.read(&mut sink)).await {
            Ok(Ok(0) | Err(_)) => return Ok(()),
            Ok(Ok(n)) => n,
            Err(_) => 0,
        };
        io.write_all(response.as_bytes()).await?;
        io.flush().await?;
        io.shutdown().await?;
        while drained < REFUSE_DRAIN {
            match io.read(&mut sink).await? {
                0 => break,
                n => drained += n,
            }
        }
        Ok::<_, std::io::Error>(())
    };
    let _ = tokio::time::timeout(REFUSE_DEADLINE, exchange).await;
}
