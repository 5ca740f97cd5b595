//! One client's HTTP/1.1 keep-alive connection, reopened after a failure.

use std::fmt;

use bytes::Bytes;
use http::{Method, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// A request of the loop: method, path and query, body.
pub(super) struct Request {
    method: Method,
    path: String,
    body: Bytes,
}

impl Request {
    pub(super) fn new(method: Method, path: String, body: Bytes) -> Self {
        Self { method, path, body }
    }
}

/// Why a request did not succeed.
#[derive(Debug)]
pub(super) enum Failure {
    /// No connection, or it broke.
    Transport(String),
    /// An answer other than 2xx (status and the start of the body).
    Status(StatusCode, String),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Transport(e) => write!(f, "{e}"),
            Self::Status(s, body) => write!(f, "Unexpected response code: {} ({body})", s.as_u16()),
        }
    }
}

/// One connection with at most one request in flight.
pub(super) struct Conn {
    addr: String,
    token: Option<String>,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Conn {
    /// Connects and completes the HTTP/1 handshake.
    pub(super) async fn open(addr: &str, token: Option<String>) -> Result<Self, Failure> {
        let mut c = Self { addr: addr.to_owned(), token, sender: None };
        c.reconnect().await?;
        Ok(c)
    }

    /// The `host:port` this connection goes to.
    pub(super) fn addr(&self) -> &str {
        &self.addr
    }

    async fn reconnect(&mut self) -> Result<(), Failure> {
        let stream = TcpStream::connect(&self.addr).await.map_err(|e| Failure::Transport(e.to_string()))?;
        let _ = stream.set_nodelay(true);
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| Failure::Transport(e.to_string()))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        self.sender = Some(sender);
        Ok(())
    }

    /// Sends `req` and reads the whole answer: its `X-Consul-Index` (0 when absent) and body.
    async fn exchange(&mut self, req: &Request) -> Result<(u64, Bytes), Failure> {
        if self.sender.as_ref().is_none_or(SendRequest::is_closed) {
            self.sender = None;
            self.reconnect().await?;
        }
        let Some(sender) = self.sender.as_mut() else {
            return Err(Failure::Transport("not connected".into()));
        };
        let mut builder = http::Request::builder()
            .method(req.method.clone())
            .uri(&req.path)
            .header(http::header::HOST, &self.addr);
        if let Some(t) = &self.token {
            builder = builder.header(crate::client::TOKEN_HEADER, t);
        }
        if !req.body.is_empty() {
            builder = builder.header(http::header::CONTENT_TYPE, "application/json");
        }
        let request =
            builder.body(Full::new(req.body.clone())).map_err(|e| Failure::Transport(e.to_string()))?;
        if sender.ready().await.is_err() {
            self.sender = None;
            return Err(Failure::Transport("connection closed".into()));
        }
        let response = match sender.send_request(request).await {
            Ok(r) => r,
            Err(e) => {
                self.sender = None;
                return Err(Failure::Transport(e.to_string()));
            }
        };
        let status = response.status();
        let index = response
            .headers()
            .get(crate::client::INDEX_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let body = match response.into_body().collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) => {
                self.sender = None;
                return Err(Failure::Transport(e.to_string()));
            }
        };
        if !status.is_success() {
            let text = String::from_utf8_lossy(&body[..body.len().min(200)]).trim().to_owned();
            return Err(Failure::Status(status, text));
        }
        Ok((index, body))
    }

    /// Sends `req`; success is a 2xx answer read to its end.
    pub(super) async fn send(&mut self, req: Request) -> Result<(), Failure> {
        self.exchange(&req).await.map(drop)
    }

    /// GETs `path`, returning its `X-Consul-Index` and body.
    pub(super) async fn get_with_index(&mut self, path: &str) -> Result<(u64, Bytes), Failure> {
        self.exchange(&Request::new(Method::GET, path.to_owned(), Bytes::new())).await
    }
}
