//! `/v1/status/leader` and `/v1/status/peers` (no ACL, no leader required).

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::routing::get;

use super::HttpState;
use super::error::ApiResult;
use super::query::{Params, json};

pub(super) fn routes() -> Router<HttpState> {
    Router::new().route("/v1/status/leader", get(leader)).route("/v1/status/peers", get(peers))
}

async fn leader(State(st): State<HttpState>, RawQuery(q): RawQuery) -> ApiResult {
    let p = Params::parse(q.as_deref());
    json(&p, StatusCode::OK, None, &st.server.leader_addr().unwrap_or_default())
}

async fn peers(State(st): State<HttpState>, RawQuery(q): RawQuery) -> ApiResult {
    let p = Params::parse(q.as_deref());
    json(&p, StatusCode::OK, None, &st.server.peers())
}
