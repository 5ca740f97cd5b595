//! `/v1/snapshot`: GET returns an archive of the whole state (see
//! [`crate::server::operator::archive`] for its layout), PUT restores one through Raft on
//! every server. A corrupt or truncated archive is refused with 400 and changes nothing.

use axum::Router;
use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse as _, Response};
use axum::routing::get;

use super::HttpState;
use super::caller::Caller;
use super::error::{ApiError, ApiResult};
use super::query::{Params, add_meta};
use sekisho_acl::{Access, Resource};

/// Largest archive `PUT /v1/snapshot` accepts: the restore travels as one Raft entry, and
/// server RPC bodies are bounded at 64 MiB.
pub const MAX_RESTORE_BYTES: usize = 60 << 20;

pub(super) fn routes() -> Router<HttpState> {
    Router::new().route("/v1/snapshot", get(save).put(restore))
}

async fn save(State(st): State<HttpState>, c: Caller, RawQuery(q): RawQuery) -> ApiResult {
    c.require(Resource::Acl, "", Access::Write)?;
    let p = Params::parse(q.as_deref());
    let opts = p.query_options()?;
    let (bytes, meta) = st.server.snapshot_save(opts.consistency).await?;
    let mut r = Response::new(Body::from(bytes));
    *r.status_mut() = StatusCode::OK;
    r.headers_mut().insert("Content-Type", HeaderValue::from_static("application/octet-stream"));
    add_meta(&mut r, &st.server.meta(meta.index, opts.consistency));
    Ok(r)
}

async fn restore(State(st): State<HttpState>, c: Caller, RawQuery(q): RawQuery, body: Body) -> ApiResult {
    c.require(Resource::Acl, "", Access::Write)?;
    let _p = Params::parse(q.as_deref());
    let bytes = super::read_body(body, MAX_RESTORE_BYTES).await?.ok_or_else(|| {
        ApiError::too_large(format!("Snapshot archive too large, max size: {MAX_RESTORE_BYTES} bytes"))
    })?;
    if bytes.is_empty() {
        return Err(ApiError::bad_request("Missing snapshot archive in the request body"));
    }
    st.server.snapshot_restore(bytes.to_vec()).await?;
    Ok(StatusCode::OK.into_response())
}
