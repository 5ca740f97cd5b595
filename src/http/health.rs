//! `/v1/health/*`: node/:node, checks/:service, service/:service (`passing`, `tag`),
//! state/:state.

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::routing::get;
use serde_json::{Value, json as j};

use super::HttpState;
use super::caller::Caller;
use super::error::{ApiError, ApiResult};
use super::query::{Params, json};
use crate::filter;
use crate::state::catalog::{
    catalog_index, check_service_nodes, checks_in_state, node_checks, service_checks,
};
use crate::state::types::HealthCheck;
use crate::state::{Store, Table};

pub(super) fn routes() -> Router<HttpState> {
    Router::new()
        .route("/v1/health/node/{node}", get(node))
        .route("/v1/health/checks/{service}", get(checks))
        .route("/v1/health/service/{service}", get(service))
        .route("/v1/health/state/{state}", get(state))
}

async fn list(st: &HttpState, c: &Caller, p: &Params, f: impl Fn(&Store) -> Vec<Value>) -> ApiResult {
    let opts = p.query_options()?;
    let filt = p.filter()?;
    let near = super::coordinate::near(st, p);
    let (items, meta) = st
        .server
        .query(&opts, &Table::CATALOG, |s| {
            let i = catalog_index(s);
            let mut items = f(s);
            super::coordinate::sort_items(s, near.as_deref(), &mut items);
            (items, i, i)
        })
        .await?;
    let (items, filtered) = c.filter_rows(items);
    let r = json(p, StatusCode::OK, Some(&meta), &filter::apply(filt.as_ref(), items))?;
    Ok(super::kv::mark_filtered(r, filtered))
}

fn checks_json(cs: Vec<HealthCheck>) -> Vec<Value> {
    cs.iter().map(|c| serde_json::to_value(c).unwrap_or_default()).collect()
}

async fn node(
    State(st): State<HttpState>,
    c: Caller,
    Path(n): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult {
    let p = Params::parse(q.as_deref());
    list(&st, &c, &p, |s| checks_json(node_checks(s, &n))).await
}

async fn checks(
    State(st): State<HttpState>,
    c: Caller,
    Path(svc): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult {
    let p = Params::parse(q.as_deref());
    list(&st, &c, &p, |s| checks_json(service_checks(s, &svc))).await
}

async fn state(
    State(st): State<HttpState>,
    c: Caller,
    Path(state): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult {
    let p = Params::parse(q.as_deref());
    if !["any", "passing", "warning", "critical"].contains(&state.as_str()) {
        return Err(ApiError::bad_request(format!("Invalid check state: {state:?}")));
    }
    list(&st, &c, &p, |s| checks_json(checks_in_state(s, &state))).await
}

async fn service(
    State(st): State<HttpState>,
    c: Caller,
    Path(svc): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult {
    let p = Params::parse(q.as_deref());
    let tags = p.all("tag");
    let passing = p.flag("passing");
    let meta = p.node_meta();
    list(&st, &c, &p, |s| {
        check_service_nodes(s, &svc, &tags, passing)
            .into_iter()
            .filter(|(n, _, _)| n.has_meta(&meta))
            .map(|(n, sv, cs)| j!({"Node": n, "Service": sv, "Checks": cs}))
            .collect()
    })
    .await
}
