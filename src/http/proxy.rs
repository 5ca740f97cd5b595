//! Client agents answer `/v1/agent/*`, `/v1/event/*` (events are each agent's own view) and
//! `/v1/operator/keyring` (whose gossip reaches every LAN member from any agent) themselves and hand every other API request to a
//! server over RPC (`/rpc/v1/http`), which runs it through its own router: blocking queries,
//! consistency modes, errors and headers behave exactly as on the server. Servers install the
//! receiving end with [`hook`].

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tower::ServiceExt as _;

use super::HttpState;
use super::error::ApiError;
use crate::server::{HttpHook, ProxyRequest, ProxyResponse};

/// Headers that describe the connection rather than the request.
fn hop_by_hop(name: &str) -> bool {
    matches!(
        name.to_ascii_lowercase().as_str(),
        "connection" | "keep-alive" | "transfer-encoding" | "te" | "upgrade" | "host" | "content-length"
    )
}

/// Middleware on client agents: proxies everything but the agent's own endpoints.
pub(super) async fn client_proxy(State(st): State<HttpState>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    // The keyring reaches every LAN member from here, and `?local-only` means this agent.
    // Events are delivered to, and listed by, each agent itself.
    let own =
        path.starts_with("/v1/agent/") || path == "/v1/operator/keyring" || path.starts_with("/v1/event/");
    if !st.server.is_client() || !path.starts_with("/v1/") || own {
        return next.run(req).await;
    }
    match forward(&st, req, None).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

/// Hands `req` to a server: one of this datacenter's (client agents), or one of `dc`'s.
pub(super) async fn forward(st: &HttpState, req: Request, dc: Option<&str>) -> Result<Response, ApiError> {
    let (parts, body) = req.into_parts();
    let body = super::read_body(Body::new(body), 64 << 20)
        .await?
        .ok_or_else(|| ApiError::too_large("Request body too large"))?;
    let path_and_query =
        parts.uri.path_and_query().map_or_else(|| parts.uri.path().to_owned(), |p| p.to_string());
    let path_and_query = near_this_node(&path_and_query, &st.agent.node_name);
    let mut headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .filter(|(k, _)| !hop_by_hop(k.as_str()))
        .filter_map(|(k, v)| Some((k.to_string(), v.to_str().ok()?.to_owned())))
        .collect();
    // A request without a token runs under this agent's default token, as in Consul, not
    // under the server's.
    if st.acl.enabled()
        && super::caller::presented_token(&parts).is_none()
        && let Some(default) = st.acl.tokens().default.clone()
    {
        headers.push(("X-Consul-Token".to_owned(), default));
    }
    // A prepared query's `Near: "_agent"` means the agent the request was made on.
    let agent_header = super::prepared_query::AGENT_NODE_HEADER;
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(agent_header)) {
        headers.push((agent_header.to_owned(), st.agent.node_name.clone()));
    }
    // Blocking queries may wait up to 10 minutes (plus jitter) on the server.
    let blocking = path_and_query.contains("index=");
    let timeout = if blocking { Duration::from_secs(11 * 60) } else { Duration::from_secs(60) };
    let mut body = body.to_vec();
    if parts.uri.path() == "/v1/session/create" {
        body = default_session_node(&body, &st.agent.node_name)?;
    }
    let preq = ProxyRequest { method: parts.method.to_string(), path_and_query, headers, body };
    let resp = match dc {
        Some(dc) => st.server.forward_dc(dc, preq, timeout).await?,
        None => st.server.proxy_http(preq, timeout).await?,
    };
    let mut out = Response::new(Body::from(resp.body));
    *out.status_mut() = StatusCode::from_u16(resp.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    for (k, v) in resp.headers {
        if hop_by_hop(&k) {
            continue;
        }
        if let (Ok(k), Ok(v)) = (HeaderName::try_from(k), HeaderValue::from_str(&v)) {
            out.headers_mut().append(k, v);
        }
    }
    Ok(out)
}

/// `?near=_agent` means the client agent's node, which the server cannot know: name it.
fn near_this_node(path_and_query: &str, node: &str) -> String {
    let Some((path, query)) = path_and_query.split_once('?') else { return path_and_query.to_owned() };
    let encoded = crate::client::url::escape_query(node);
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| if pair == "near=_agent" { format!("near={encoded}") } else { pair.to_owned() })
        .collect();
    format!("{path}?{}", pairs.join("&"))
}

/// A session created through a client agent belongs to that agent's node unless the body
/// names one (the server would otherwise default to its own node).
fn default_session_node(body: &[u8], node: &str) -> Result<Vec<u8>, ApiError> {
    let mut v = if body.iter().all(u8::is_ascii_whitespace) {
        serde_json::Value::Object(serde_json::Map::new())
    } else {
        super::decode::parse_body(body)?
    };
    if let serde_json::Value::Object(m) = &mut v {
        let has_node = m
            .iter()
            .any(|(k, v)| k.eq_ignore_ascii_case("node") && v.as_str().is_some_and(|s| !s.is_empty()));
        if !has_node {
            m.retain(|k, _| !k.eq_ignore_ascii_case("node"));
            m.insert("Node".into(), serde_json::Value::from(node));
        }
    }
    serde_json::to_vec(&v).map_err(|e| ApiError::internal(e.to_string()))
}

/// The server side: runs a proxied request through `router`.
pub fn hook(router: Router) -> HttpHook {
    std::sync::Arc::new(move |req: ProxyRequest| {
        let router = router.clone();
        Box::pin(async move {
            let mut b = Request::builder().method(req.method.as_str()).uri(req.path_and_query.as_str());
            for (k, v) in &req.headers {
                if !hop_by_hop(k) {
                    b = b.header(k.as_str(), v.as_str());
                }
            }
            let request = match b.body(Body::from(req.body)) {
                Ok(r) => r,
                Err(e) => return text(400, format!("bad proxied request: {e}")),
            };
            let Ok(resp) = router.oneshot(request).await;
            let (parts, body) = resp.into_parts();
            let bytes = match super::read_body(body, 256 << 20).await {
                Ok(Some(b)) => b.to_vec(),
                Ok(None) => return text(500, "the answer is too large to proxy".into()),
                Err(e) => return text(500, e.message),
            };
            let headers = parts
                .headers
                .iter()
                .filter_map(|(k, v)| Some((k.to_string(), v.to_str().ok()?.to_owned())))
                .collect();
            ProxyResponse { status: parts.status.as_u16(), headers, body: bytes }
        })
    })
}

fn text(status: u16, msg: String) -> ProxyResponse {
    ProxyResponse {
        status,
        headers: vec![("content-type".into(), "text/plain".into())],
        body: msg.into_bytes(),
    }
}

#[cfg(test)]
mod tests {
    use super::near_this_node;

    #[test]
    fn near_agent_names_the_client_node_and_nothing_else_changes() {
        assert_eq!(
            near_this_node("/v1/catalog/nodes?near=_agent&index=5", "web 1"),
            "/v1/catalog/nodes?near=web%201&index=5"
        );
        assert_eq!(near_this_node("/v1/catalog/nodes?near=db", "web"), "/v1/catalog/nodes?near=db");
        assert_eq!(near_this_node("/v1/catalog/nodes", "web"), "/v1/catalog/nodes");
    }
}
