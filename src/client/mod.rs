//! A typed async client for Sekisho's HTTP API, which speaks Consul's JSON shapes.
//!
//! Used by the CLI, the integration tests, the benches and the examples. One [`Client`]
//! holds a pooled HTTP/1 connection set (hyper-util's legacy client) and is cheap to clone.
//!
//! ```text
//! typed helper (kv_get, catalog_nodes, ...)      CLI / tests
//!        │ path + query
//!        ▼
//! Client::request ── adds X-Consul-Token, ?dc=, ?stale ──► agent HTTP API
//!        │ Response { status, headers, body }
//!        ▼
//! non-2xx → ClientError::Api ("Unexpected response code: 500 (No cluster leader)")
//! ```
//!
//! ```no_run
//! # async fn demo() -> Result<(), sekisho::client::ClientError> {
//! use sekisho::client::{Client, ClientConfig};
//! let client = Client::new(ClientConfig::new("127.0.0.1:8500"));
//! client.kv_put("app/config", b"on".to_vec(), None, None).await?;
//! let entry = client.kv_get("app/config").await?;
//! assert_eq!(entry.unwrap().value_bytes(), b"on");
//! # Ok(()) }
//! ```

mod api;
mod config;
mod error;
pub mod lock;
mod semaphore;
mod tls;
mod types;
pub(crate) mod url;

use std::error::Error as StdError;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::de::DeserializeOwned;

pub use config::{ClientConfig, DEFAULT_ADDRESS, read_token_file};
pub use error::ClientError;
pub use tls::ClientTls;
pub use types::{CatalogNode, KeyringResponse, KvEntry, Member};

/// The header that carries the ACL token.
pub const TOKEN_HEADER: &str = "X-Consul-Token";
/// The header that carries the Raft index of a read.
pub const INDEX_HEADER: &str = "X-Consul-Index";

/// An HTTP client for one agent. Clones share the connection pool.
#[derive(Clone, Debug)]
pub struct Client {
    http: Transport,
    config: ClientConfig,
}

/// Plain HTTP, HTTPS, or the reason HTTPS could not be set up (reported by each request).
#[derive(Clone, Debug)]
enum Transport {
    Plain(HyperClient<HttpConnector, Full<Bytes>>),
    Tls(HyperClient<crate::net::tls::TlsConnector, Full<Bytes>>),
    Broken(String),
}

/// A raw answer: any status, the headers and the whole body.
#[derive(Debug, Clone)]
pub struct Response {
    /// The HTTP status.
    pub status: StatusCode,
    /// The response headers.
    pub headers: HeaderMap,
    /// The whole body.
    pub body: Bytes,
}

impl Response {
    /// True for a 2xx status.
    pub fn is_success(&self) -> bool {
        self.status.is_success()
    }

    /// The `X-Consul-Index` header, if present and numeric.
    pub fn index(&self) -> Option<u64> {
        self.headers.get(INDEX_HEADER)?.to_str().ok()?.parse().ok()
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// `Ok(self)` for a 2xx status, else [`ClientError::Api`] with the body text.
    pub fn error_for_status(self) -> Result<Self, ClientError> {
        if self.is_success() {
            return Ok(self);
        }
        Err(ClientError::Api { status: self.status, body: self.text().trim().to_owned() })
    }

    /// Decodes the JSON body; `path` names the request in the error.
    pub fn json<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        serde_json::from_slice(&self.body)
            .map_err(|source| ClientError::Decode { path: path.to_owned(), source })
    }
}

impl Client {
    /// A client for `config`. Never fails: a bad address is reported by the first request.
    pub fn new(config: ClientConfig) -> Self {
        let https = config.tls.ssl || config.address.trim().starts_with("https://");
        let http = if !https {
            Transport::Plain(HyperClient::builder(TokioExecutor::new()).build_http())
        } else {
            match config.tls.client_config() {
                Ok(cfg) => {
                    let source =
                        crate::net::tls::FixedTls { config: cfg, name: config.tls.server_name.clone() };
                    let conn =
                        crate::net::tls::TlsConnector::new(HttpConnector::new(), std::sync::Arc::new(source));
                    Transport::Tls(HyperClient::builder(TokioExecutor::new()).build(conn))
                }
                Err(e) => Transport::Broken(e),
            }
        };
        Self { http, config }
    }

    /// The configuration this client was built with.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// Sends one request and returns the answer whatever its status.
    ///
    /// `path_and_query` starts with `/v1/`; the configured token becomes `X-Consul-Token`,
    /// the datacenter `?dc=` (unless the path sets one) and `stale` adds `?stale` to GETs.
    pub async fn request(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Response, ClientError> {
        let path = self.with_params(&method, path_and_query);
        let https = matches!(self.http, Transport::Tls(_) | Transport::Broken(_));
        let url = format!("{}{path}", url::base_url(&self.config.address, https)?);
        let request = self.build(method.clone(), &url, body)?;
        let sent = match &self.http {
            Transport::Plain(c) => c.request(request).await,
            Transport::Tls(c) => c.request(request).await,
            Transport::Broken(why) => {
                return Err(ClientError::InvalidAddress {
                    address: self.config.address.clone(),
                    reason: format!("HTTPS cannot be set up: {why}"),
                });
            }
        };
        let answer = sent.map_err(|e| ClientError::Connect {
            detail: describe_send_error(&e, &self.config.address),
            method: method.clone(),
            url: url.clone(),
        })?;
        let (parts, body) = answer.into_parts();
        let body = body.collect().await.map_err(|e| ClientError::Connect {
            detail: format!("reading response body: {}", chain(&e)),
            method,
            url,
        })?;
        Ok(Response { status: parts.status, headers: parts.headers, body: body.to_bytes() })
    }

    /// GET `path` and decode a 2xx JSON body; `Ok(None)` on 404.
    pub async fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<Option<T>, ClientError> {
        let response = self.request(Method::GET, path, None).await?;
        if response.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        response.error_for_status()?.json(path).map(Some)
    }

    fn with_params(&self, method: &Method, path_and_query: &str) -> String {
        let mut path = path_and_query.to_owned();
        if let Some(dc) = &self.config.datacenter
            && !url::has_param(&path, "dc")
        {
            url::append_param(&mut path, "dc", Some(dc));
        }
        if self.config.stale && method == Method::GET && !url::has_param(&path, "stale") {
            url::append_param(&mut path, "stale", None);
        }
        path
    }

    fn build(
        &self,
        method: Method,
        url: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Request<Full<Bytes>>, ClientError> {
        let mut builder = Request::builder().method(method).uri(url);
        if let Some(token) = &self.config.token {
            builder = builder.header(TOKEN_HEADER, token);
        }
        builder.body(Full::new(Bytes::from(body.unwrap_or_default()))).map_err(|e| {
            ClientError::InvalidAddress {
                address: self.config.address.clone(),
                reason: format!("cannot build a request for {url}: {e}"),
            }
        })
    }
}

/// Go's `dial tcp <addr>: connect: connection refused` for connect failures, else the
/// error chain.
fn describe_send_error(err: &hyper_util::client::legacy::Error, address: &str) -> String {
    if !err.is_connect() {
        return chain(err);
    }
    let authority = address.trim().trim_start_matches("http://").trim_end_matches('/');
    let mut source: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            let what = match io.kind() {
                std::io::ErrorKind::ConnectionRefused => "connect: connection refused".to_owned(),
                std::io::ErrorKind::TimedOut => "i/o timeout".to_owned(),
                _ => io.to_string(),
            };
            return format!("dial tcp {authority}: {what}");
        }
        source = e.source();
    }
    format!("dial tcp {authority}: {}", chain(err))
}

/// The causes of an error, outermost first, joined with `: `; the error itself only when
/// it has no cause (hyper wraps every cause in a generic "client error").
fn chain(err: &(dyn StdError + 'static)) -> String {
    let mut parts = Vec::new();
    let mut source = err.source();
    while let Some(e) = source {
        parts.push(e.to_string());
        source = e.source();
    }
    if parts.is_empty() {
        parts.push(err.to_string());
    }
    parts.join(": ")
}
