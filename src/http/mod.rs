//! The HTTP API: Consul's `/v1` routes, JSON shapes, headers and error texts.
//!
//! Each handler parses Consul's query parameters ([`query::Params`]) and body
//! ([`decode::Obj`]), then calls [`crate::server::Server::write`] (through Raft) or
//! [`crate::server::Server::query`] (a possibly blocking read), and answers through
//! [`query::json`]. Errors become status codes and texts in one place, [`error`].

pub mod acl;
mod acl_auth;
pub mod acl_federation;
pub mod agent;
pub mod agent_check;
pub mod agent_service;
mod agent_token;
pub mod caller;
pub mod catalog;
pub mod coordinate;
pub mod decode;
pub mod error;
pub mod event;
mod header_deadline;
pub mod health;
pub mod https;
pub mod keyring;
pub mod kv;
pub mod limits;
mod listen;
pub mod metrics;
pub mod monitor;
pub mod operator;
pub mod prepared_query;
pub mod proxy;
pub mod query;
pub mod session;
pub mod snapshot;
pub mod status;
pub mod txn;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, OriginalUri};
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::server::Server;
use error::ApiError;

/// Agent facts the HTTP layer reports (`/v1/agent/self`, members).
#[derive(Debug, Clone)]
pub struct AgentInfo {
    pub node_name: String,
    pub node_id: String,
    pub datacenter: String,
    pub primary_datacenter: String,
    pub address: String,
    pub serf_lan_port: u16,
    pub server: bool,
    pub domain: String,
    pub kv_max_value_size: u64,
    pub txn_max_req_len: u64,
    pub session_ttl_min: Duration,
    /// `acl.default_policy` (`allow` or `deny`), reported in `X-Consul-Default-ACL-Policy`.
    pub acl_default_policy: &'static str,
    /// The data directory (`acl-bootstrap-reset` lives there); `None` in dev mode.
    pub data_dir: Option<std::path::PathBuf>,
}

/// What every handler gets: a handle to [`HttpShared`], cloned by axum for every extractor
/// and middleware of every request, so a clone is one reference count (cloning the fields
/// one by one showed up at 12% of the CPU with 10,000 blocking queries; see
/// docs/benchmarks.md).
#[derive(Debug, Clone)]
pub struct HttpState(Arc<HttpShared>);

impl HttpState {
    /// Wraps the shared parts.
    pub fn new(shared: HttpShared) -> Self {
        Self(Arc::new(shared))
    }
}

impl std::ops::Deref for HttpState {
    type Target = HttpShared;

    fn deref(&self) -> &HttpShared {
        &self.0
    }
}

/// The agent's parts the HTTP handlers use.
#[derive(Debug)]
pub struct HttpShared {
    /// Re-reads the configuration (`/v1/agent/reload`).
    pub reloader: Arc<crate::agent::Reloader>,
    pub server: Server,
    pub agent: Arc<AgentInfo>,
    /// The agent's own services and checks.
    pub local: Arc<crate::local::LocalState>,
    /// The LAN gossip member (`members`, `join`, `force-leave`, `leave`).
    pub gossip: crate::gossip::Gossip,
    /// The WAN gossip member (servers with a WAN pool): `-wan` forms of those.
    pub wan: Option<crate::gossip::Gossip>,
    /// Cancelled by `PUT /v1/agent/leave`; the agent then shuts down.
    pub leave: CancellationToken,
    /// TLS certificates, reloaded with the configuration.
    pub tls: Option<Arc<crate::tls::AgentTls>>,
    /// User events fired and delivered here (`/v1/event/*`).
    pub events: Arc<crate::event::Events>,
    /// ACL configuration, the agent's tokens and the token cache.
    pub acl: Arc<crate::acl::Acl>,
    /// Connection, body and request limits (`limits.*`), shared by every listener and router.
    pub limits: Arc<limits::HttpLimits>,
}

/// How much of an oversized body is read and discarded before answering 413, so that a client
/// still writing its body sees the 413 instead of a broken pipe (Go's server lingers likewise).
/// A body declared (`Content-Length`) larger than this is not read at all.
const DRAIN_CAP: usize = 64 << 20;

/// Reads a request body of at most `limit` bytes; `None` when it is larger. Nothing past
/// `limit` is kept: the rest of the body, up to 64 MiB, is read and dropped, and a body whose
/// `Content-Length` is already over that is refused unread.
pub async fn read_body(body: Body, limit: usize) -> Result<Option<Bytes>, ApiError> {
    use http_body_util::BodyExt;
    let mut body = body;
    let declared = axum::body::HttpBody::size_hint(&body).exact();
    if declared.is_some_and(|n| n > DRAIN_CAP as u64) {
        return Ok(None);
    }
    let mut buf = Vec::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| ApiError::bad_request(format!("failed to read request body: {e}")))?;
        let Ok(data) = frame.into_data() else { continue };
        seen = seen.saturating_add(data.len());
        if seen <= limit {
            buf.extend_from_slice(&data);
        } else if seen > DRAIN_CAP {
            break;
        } else {
            buf = Vec::new();
        }
    }
    Ok((seen <= limit).then(|| Bytes::from(buf)))
}

/// Reads a body under `limits.http_max_body_size`, answering 413 when it is larger.
pub async fn read_default_body(st: &HttpState, body: Body) -> Result<Bytes, ApiError> {
    let limit = st.limits.max_body;
    read_body(body, limit)
        .await?
        .ok_or_else(|| ApiError::too_large(format!("Request body too large, max size: {limit} bytes")))
}

async fn unknown(method: Method, OriginalUri(uri): OriginalUri) -> Response {
    ApiError::not_found(format!(
        "Invalid URL path: not a recognized HTTP API endpoint: {method} {}",
        uri.path()
    ))
    .into_response()
}

async fn not_allowed(method: Method, OriginalUri(uri): OriginalUri) -> Response {
    ApiError::method_not_allowed(method.as_str(), uri.path()).into_response()
}

/// Requests for another datacenter (`?dc=`) go to a server there (through a local server on
/// client agents), which answers them as its own; an unknown or unreachable datacenter gets
/// Consul's `No path to datacenter`. Agent endpoints are always this agent's.
async fn check_dc(
    axum::extract::State(st): axum::extract::State<HttpState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let p = query::Params::parse(req.uri().query());
    match p.get("dc") {
        Some(dc)
            if !dc.is_empty() && dc != st.agent.datacenter && !req.uri().path().starts_with("/v1/agent/") =>
        {
            let dc = dc.to_owned();
            proxy::forward(&st, req, Some(&dc)).await.unwrap_or_else(IntoResponse::into_response)
        }
        _ => next.run(req).await,
    }
}

/// How long requests in flight may go on once the agent leaves. Blocking queries (which may
/// wait ten minutes) and proxied calls are then answered 503 so the HTTP server's graceful
/// stop, and with it the agent's shutdown, does not wait for them.
const LEAVE_GRACE: Duration = Duration::from_millis(500);

async fn end_on_leave(
    axum::extract::State(st): axum::extract::State<HttpState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let leave = st.leave.clone();
    tokio::select! {
        biased;
        r = next.run(req) => r,
        () = async { leave.cancelled().await; tokio::time::sleep(LEAVE_GRACE).await } => {
            ApiError::from(crate::server::Error::ShuttingDown).into_response()
        }
    }
}

/// Every response carries `X-Consul-Default-ACL-Policy` (Consul 1.9+, also with ACLs off).
async fn default_acl_policy_header(
    axum::extract::State(st): axum::extract::State<HttpState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let mut r = next.run(req).await;
    r.headers_mut()
        .insert("X-Consul-Default-ACL-Policy", http::HeaderValue::from_static(st.agent.acl_default_policy));
    r
}

/// All routes.
pub fn router(state: HttpState) -> Router {
    Router::new()
        .merge(kv::routes())
        .merge(txn::routes())
        .merge(catalog::routes())
        .merge(coordinate::routes())
        .merge(health::routes())
        .merge(session::routes())
        .merge(status::routes())
        .merge(agent::routes())
        .merge(agent_service::routes())
        .merge(agent_check::routes())
        .merge(agent_token::routes())
        .merge(metrics::routes())
        .merge(monitor::routes())
        .merge(operator::routes())
        .merge(keyring::routes())
        .merge(event::routes())
        .merge(snapshot::routes())
        .merge(acl::routes())
        .merge(acl_auth::routes())
        .merge(prepared_query::routes())
        .fallback(unknown)
        .method_not_allowed_fallback(not_allowed)
        .layer(DefaultBodyLimit::disable())
        .layer(axum::middleware::from_fn_with_state(state.clone(), acl_federation::route))
        .layer(axum::middleware::from_fn_with_state(state.clone(), check_dc))
        .layer(axum::middleware::from_fn_with_state(state.clone(), proxy::client_proxy))
        .layer(axum::middleware::from_fn_with_state(state.clone(), end_on_leave))
        .layer(axum::middleware::from_fn_with_state(state.clone(), limits::guard))
        .layer(axum::middleware::from_fn_with_state(state.clone(), default_acl_policy_header))
        .layer(metrics::TrackLayer)
        .with_state(state)
}

/// Serves the API on `listener` until `shutdown` is cancelled, under the connection limits
/// of `state.limits` (the accept loop in `http/listen.rs`).
pub async fn serve(
    listener: TcpListener,
    state: HttpState,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let limits = state.limits.clone();
    listen::serve(listener, router(state), listen::Transport::Plain, limits, shutdown).await
}
