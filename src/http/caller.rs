//! The caller of a request: the token it presents, resolved to an [`Identity`].
//!
//! Token sources, in Consul's order: the `X-Consul-Token` header, `Authorization: Bearer`,
//! the deprecated `?token=` parameter, then the agent's `acl.tokens.default`, then anonymous.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::StatusCode;
use axum::http::request::Parts;

use super::HttpState;
use super::error::ApiError;
use super::query::Params;
use crate::acl::audit::Denial;
use crate::acl::{Acl, AclError, Identity};
use sekisho_acl::{Access, Resource};

/// The resolved caller; handlers ask it before acting. The second field, when the audit
/// log is on, is where denials are recorded and who asked.
#[derive(Debug, Clone)]
pub struct Caller(pub Arc<Identity>, pub Option<Auditing>);

/// Where a caller's denials go.
#[derive(Debug, Clone)]
pub struct Auditing {
    acl: Arc<Acl>,
    client: Option<SocketAddr>,
}

/// The secret a request presents, if any.
pub fn presented_token(parts: &Parts) -> Option<String> {
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    if let Some(t) = header("X-Consul-Token").filter(|t| !t.is_empty()) {
        return Some(t.to_owned());
    }
    if let Some(auth) = header("Authorization")
        && let Some(t) = auth.strip_prefix("Bearer ").map(str::trim).filter(|t| !t.is_empty())
    {
        return Some(t.to_owned());
    }
    Params::parse(parts.uri.query()).get("token").filter(|t| !t.is_empty()).map(str::to_owned)
}

impl From<AclError> for ApiError {
    fn from(e: AclError) -> ApiError {
        ApiError { status: StatusCode::FORBIDDEN, message: e.to_string() }
    }
}

impl FromRequestParts<HttpState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, st: &HttpState) -> Result<Self, Self::Rejection> {
        let token = presented_token(parts);
        let identity = st.acl.resolve(token.as_deref()).await?;
        let auditing = st.acl.audit().is_some().then(|| Auditing {
            acl: st.acl.clone(),
            client: parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0),
        });
        Ok(Caller(identity, auditing))
    }
}

impl Caller {
    /// A caller with `identity`, auditing its denials like `like` does.
    pub fn with_identity(identity: Arc<Identity>, like: &Caller) -> Caller {
        Caller(identity, like.1.clone())
    }

    fn audit(&self, resource: Resource, segment: &str, access: &str, reason: &str) {
        if let Some(a) = &self.1
            && let Some(log) = a.acl.audit()
        {
            log.denied(&Denial {
                accessor_id: &self.0.accessor_id,
                resource: resource.as_str(),
                segment,
                access,
                reason,
                client: a.client,
            });
        }
    }

    /// Allowed, or 403 with Consul's denial text (recorded in the audit log when it is on).
    pub fn require(&self, resource: Resource, segment: &str, access: Access) -> Result<(), ApiError> {
        let r = self.0.require(resource, segment, access);
        if r.is_err() && self.1.is_some() {
            self.audit(
                resource,
                segment,
                access.as_str(),
                &self.0.decide(resource, segment, access).explain(),
            );
        }
        Ok(r?)
    }

    /// Whether the request is allowed (list filtering).
    pub fn allows(&self, resource: Resource, segment: &str, access: Access) -> bool {
        self.0.allows(resource, segment, access)
    }

    /// `key:write` over everything under `prefix`.
    pub fn require_key_write_prefix(&self, prefix: &str) -> Result<(), ApiError> {
        let r = self.0.require_key_write_prefix(prefix);
        if r.is_err() && self.1.is_some() {
            let reason = self.0.authz.key_write_prefix(prefix).explain();
            self.audit(Resource::Key, prefix, "write (recursive)", &reason);
        }
        Ok(r?)
    }

    /// The token's AccessorID.
    pub fn accessor_id(&self) -> &str {
        &self.0.accessor_id
    }
}

/// The node and service a catalog or health row is about: `Node` (a name, or a node object
/// with `Node`), and `ServiceName` or a `Service` object's `Service`.
fn row_subjects(v: &serde_json::Value) -> (Option<&str>, Option<&str>) {
    let node = v.get("Node").and_then(|n| n.as_str().or_else(|| n.get("Node").and_then(|x| x.as_str())));
    let service = v
        .get("ServiceName")
        .and_then(|s| s.as_str())
        .or_else(|| v.get("Service").and_then(|s| s.get("Service")).and_then(|s| s.as_str()))
        .filter(|s| !s.is_empty());
    (node, service)
}

impl Caller {
    /// Whether a catalog/health row may be shown: `node:read` on its node and `service:read`
    /// on its service.
    pub fn sees_row(&self, v: &serde_json::Value) -> bool {
        let (node, service) = row_subjects(v);
        node.is_none_or(|n| self.allows(Resource::Node, n, Access::Read))
            && service.is_none_or(|s| self.allows(Resource::Service, s, Access::Read))
    }

    /// The rows the caller may see, and whether any were left out.
    pub fn filter_rows(&self, rows: Vec<serde_json::Value>) -> (Vec<serde_json::Value>, bool) {
        let total = rows.len();
        let rows: Vec<_> = rows.into_iter().filter(|r| self.sees_row(r)).collect();
        let filtered = rows.len() < total;
        (rows, filtered)
    }
}
