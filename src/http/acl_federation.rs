//! ACLs across datacenters: `GET /v1/acl/replication`, global ACL writes made in a secondary
//! datacenter forwarded to the primary, and the replication lag on ACL reads there.
//!
//! ```text
//!  secondary server, /v1/acl/* ─ read ─► served from the local replica
//!                                         + X-Sekisho-Acl-Replication-Lag: <ms>
//!                              ─ write of a policy, role, global token, bootstrap
//!                                         ─► the primary's API (forward_dc), its answer returned
//!                              ─ write of a local token (Local: true) ─► here
//! ```

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::HttpState;
use super::error::{ApiError, ApiResult};
use super::query::{Params, json};

/// The lag header on ACL reads in a secondary datacenter (beyond Consul).
pub const LAG_HEADER: &str = "X-Sekisho-Acl-Replication-Lag";

/// Go's zero `time.Time` in JSON, which Consul shows for "never".
const GO_ZERO_TIME: &str = "0001-01-01T00:00:00Z";

fn go_time(unix_ms: u64) -> String {
    if unix_ms == 0 {
        return GO_ZERO_TIME.to_owned();
    }
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(unix_ms);
    humantime::format_rfc3339_millis(t).to_string()
}

/// `GET /v1/acl/replication`.
pub(super) async fn replication(
    State(st): State<HttpState>,
    axum::extract::RawQuery(q): axum::extract::RawQuery,
) -> ApiResult {
    super::acl::enabled(&st)?;
    let p = Params::parse(q.as_deref());
    let r = st.acl.replication_report().await.map_err(ApiError::from)?;
    let v = json!({
        "Enabled": r.enabled,
        "Running": r.running,
        "SourceDatacenter": r.source_datacenter,
        "ReplicationType": r.replication_type,
        "ReplicatedIndex": r.replicated_index,
        "ReplicatedRoleIndex": r.replicated_role_index,
        "ReplicatedTokenIndex": r.replicated_token_index,
        "LastSuccess": go_time(r.last_success_ms),
        "LastError": go_time(r.last_error_ms),
        "LastErrorMessage": r.last_error_message,
        "ReplicationLagMilliseconds": r.lag_ms,
    });
    json(&p, StatusCode::OK, None, &v)
}

/// Whether a write to `path` concerns global objects, which live in the primary.
/// `local` tells whether the token a path names is a local token here.
fn global_write(path: &str, body: &[u8], local: impl Fn(&str) -> bool) -> bool {
    let rest = path.strip_prefix("/v1/acl/").unwrap_or("");
    let mut parts = rest.split('/');
    match (parts.next(), parts.next()) {
        (Some("bootstrap"), None) => true,
        (Some("policy" | "role"), _) => true,
        (Some("token"), None) => {
            // A new token: local when its body says so.
            let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
            !v.get("Local").and_then(serde_json::Value::as_bool).unwrap_or(false)
        }
        (Some("token"), Some(id)) => !local(id),
        _ => false,
    }
}

/// The middleware: on a secondary datacenter's servers, forwards global ACL writes to the
/// primary and adds the lag header to ACL reads.
pub(super) async fn route(State(st): State<HttpState>, req: Request, next: Next) -> Response {
    if !req.uri().path().starts_with("/v1/acl/") || !st.acl.enabled() || !st.acl.is_secondary() {
        return next.run(req).await;
    }
    if matches!(*req.method(), Method::GET | Method::HEAD) {
        let mut resp = next.run(req).await;
        if let Ok(r) = st.acl.replication_report().await
            && r.enabled
            && let Ok(v) = HeaderValue::from_str(&r.lag_ms.to_string())
        {
            resp.headers_mut().insert(LAG_HEADER, v);
        }
        return resp;
    }
    let (parts, body) = req.into_parts();
    let body = match super::read_default_body(&st, body).await {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let local = |id: &str| st.server.state().read(|s| s.acl.tokens.get(id).is_some_and(|t| t.local));
    let req = Request::from_parts(parts, Body::from(body.clone()));
    if !global_write(req.uri().path(), &body, local) {
        return next.run(req).await;
    }
    let primary = st.server.config().primary_datacenter.clone();
    tracing::debug!(path = req.uri().path(), primary, "acl: forwarding a global ACL write to the primary");
    super::proxy::forward(&st, req, Some(&primary)).await.unwrap_or_else(IntoResponse::into_response)
}

#[cfg(test)]
mod tests {
    use super::global_write;

    #[test]
    fn global_writes_are_told_from_local_ones() {
        let none = |_: &str| false;
        assert!(global_write("/v1/acl/policy", b"{}", none));
        assert!(global_write("/v1/acl/policy/abc", b"", none));
        assert!(global_write("/v1/acl/role/abc", b"", none));
        assert!(global_write("/v1/acl/bootstrap", b"", none));
        assert!(global_write("/v1/acl/token", br#"{"Description":"x"}"#, none));
        assert!(!global_write("/v1/acl/token", br#"{"Local":true}"#, none));
        assert!(global_write("/v1/acl/token/abc", b"{}", none));
        assert!(!global_write("/v1/acl/token/abc", b"{}", |id| id == "abc"), "a local token stays here");
        assert!(!global_write("/v1/acl/token/abc/clone", b"{}", |id| id == "abc"));
        assert!(!global_write("/v1/acl/login", b"{}", none), "logins mint local tokens");
        assert!(!global_write("/v1/acl/auth-method", b"{}", none));
    }
}
