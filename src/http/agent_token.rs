//! `PUT /v1/agent/token/<type>`: replaces one of the agent's own ACL tokens at run time.
//!
//! Types: `default`, `agent`, `agent_recovery`, `replication`, and the legacy names
//! `acl_token`, `acl_agent_token`, `acl_agent_master_token`, `agent_master` and
//! `acl_replication_token`. The body is `{"Token": "<secret>"}` (`""` clears the token).
//! As in Consul: 401 with ACLs off, `acl:write` needed (403), 404 `Token "x" is unknown`,
//! 200 with an empty body. With `acl.enable_token_persistence` the token is saved to
//! `<data_dir>/acl-tokens.json` before it takes effect. The secret is never logged.

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse as _;
use axum::routing::put;
use sekisho_acl::{Access, Resource};

use super::HttpState;
use super::caller::Caller;
use super::decode::{Obj, parse_body};
use super::error::{ApiError, ApiResult};
use crate::acl::TokenKind;

pub(super) fn routes() -> Router<HttpState> {
    Router::new().route("/v1/agent/token/{kind}", put(set_token))
}

async fn set_token(
    State(st): State<HttpState>,
    c: Caller,
    Path(target): Path<String>,
    body: Body,
) -> ApiResult {
    if !st.acl.enabled() {
        return Err(super::acl::disabled());
    }
    c.require(Resource::Acl, "", Access::Write)?;
    let bytes = super::read_default_body(&st, body).await?;
    let v = parse_body(&bytes)?;
    let token = if v.is_null() { String::new() } else { Obj::new(&v, "AgentToken")?.str("Token")? };
    let Some(kind) = TokenKind::from_path(&target) else {
        return Err(ApiError::not_found(format!("Token {target:?} is unknown")));
    };
    let acl = st.acl.clone();
    tokio::task::spawn_blocking(move || acl.set_token(kind, &token))
        .await
        .map_err(|e| ApiError::internal(format!("Failed to update the token: {e}")))?
        .map_err(|e| {
            tracing::warn!(token = kind.name(), "acl: failed to persist the agent's tokens: {e}");
            ApiError::internal(format!("Failed to persist tokens: {e}"))
        })?;
    tracing::info!(token = kind.name(), accessor = %c.accessor_id(), "acl: updated the agent's ACL token");
    Ok(StatusCode::OK.into_response())
}
