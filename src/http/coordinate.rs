//! `/v1/coordinate/*`: the LAN coordinates of the datacenter's nodes (blocking reads), one
//! node's, and the update agents send; plus `near`, the `?near=` sorting that catalog and
//! health lists share.

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, put};
use serde_json::Value;

use super::HttpState;
use super::caller::Caller;
use super::decode::parse_body;
use super::error::{ApiError, ApiResult};
use super::query::{Params, json, not_found_with_meta};
use crate::filter;
use crate::fsm::Command;
use crate::state::coordinate::{
    Coordinate, CoordinateEntry, coordinate_get, coordinate_index, coordinate_list, sort_near,
};
use crate::state::{Store, Table};
use sekisho_acl::{Access, Resource};

pub(super) fn routes() -> Router<HttpState> {
    Router::new()
        .route("/v1/coordinate/datacenters", get(datacenters))
        .route("/v1/coordinate/nodes", get(nodes))
        .route("/v1/coordinate/node/{node}", get(node))
        .route("/v1/coordinate/update", put(update))
}

/// The node `?near=` names (`_agent` is this agent's node), if any.
pub(super) fn near(st: &HttpState, p: &Params) -> Option<String> {
    match p.get("near")? {
        "" => None,
        "_agent" => Some(st.agent.node_name.clone()),
        n => Some(n.to_owned()),
    }
}

/// Sorts catalog/health list items by RTT from `near` (no-op without it). The item's node is
/// its `Node` string, or `Node.Node` for health entries.
pub(super) fn sort_items(s: &Store, near: Option<&str>, items: &mut [Value]) {
    if let Some(near) = near {
        sort_near(s, near, items, |v| v["Node"].as_str().or_else(|| v["Node"]["Node"].as_str()));
    }
}

/// The WAN coordinates of every datacenter's servers (Consul's shape, area `wan`), in
/// datacenter order, nearest first.
async fn datacenters(State(st): State<HttpState>, RawQuery(q): RawQuery) -> ApiResult {
    let p = Params::parse(q.as_deref());
    let servers = st.server.wan_servers();
    let out: Vec<Value> = st
        .server
        .datacenters_by_distance()
        .into_iter()
        .map(|dc| {
            let coords: Vec<Value> = servers
                .iter()
                .filter(|(s, c)| s.dc == dc && c.is_some())
                .map(|(s, c)| serde_json::json!({ "Node": format!("{}.{}", s.name, s.dc), "Coord": c }))
                .collect();
            serde_json::json!({ "Datacenter": dc, "AreaID": "wan", "Coordinates": coords })
        })
        .collect();
    json(&p, StatusCode::OK, None, &out)
}

async fn nodes(State(st): State<HttpState>, c: Caller, RawQuery(q): RawQuery) -> ApiResult {
    let p = Params::parse(q.as_deref());
    let opts = p.query_options()?;
    let filt = p.filter()?;
    let (items, meta) = st
        .server
        .query(&opts, &[Table::Coordinates], |s| {
            let i = coordinate_index(s);
            let items: Vec<Value> =
                coordinate_list(s).iter().map(|e| serde_json::to_value(e).unwrap_or_default()).collect();
            (items, i, i)
        })
        .await?;
    let (items, filtered) = c.filter_rows(items);
    let r = json(&p, StatusCode::OK, Some(&meta), &filter::apply(filt.as_ref(), items))?;
    Ok(super::kv::mark_filtered(r, filtered))
}

async fn node(
    State(st): State<HttpState>,
    c: Caller,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult {
    let p = Params::parse(q.as_deref());
    c.require(Resource::Node, &name, Access::Read)?;
    let opts = p.query_options()?;
    let (entry, meta) = st
        .server
        .query(&opts, &[Table::Coordinates], |s| {
            let i = coordinate_index(s);
            (coordinate_get(s, &name), i, i)
        })
        .await?;
    match entry {
        // A list, as Consul answers (Enterprise has one entry per network segment).
        Some(e) => json(&p, StatusCode::OK, Some(&meta), &[e]),
        None => Ok(not_found_with_meta(&meta).into_response()),
    }
}

async fn update(State(st): State<HttpState>, c: Caller, body: Body) -> ApiResult {
    let v = parse_body(&super::read_default_body(&st, body).await?)?;
    let entry = decode_update(&v)?;
    c.require(Resource::Node, &entry.node, Access::Write)?;
    st.server.write(Command::CoordinateBatchUpdate(vec![entry])).await?;
    // Consul answers an empty 200.
    Ok(StatusCode::OK.into_response())
}

/// Decodes `{"Node","Segment","Coord":{...}}` and refuses what Consul's server refuses.
fn decode_update(v: &Value) -> Result<CoordinateEntry, ApiError> {
    let field = |name: &str| {
        v.as_object().and_then(|o| o.iter().find(|(k, _)| k.eq_ignore_ascii_case(name))).map(|(_, v)| v)
    };
    let node = field("Node").and_then(Value::as_str).unwrap_or_default().to_owned();
    if node.is_empty() {
        return Err(ApiError::bad_request("Must provide node"));
    }
    let coord: Coordinate = match field("Coord") {
        Some(c) => serde_json::from_value(c.clone())
            .map_err(|e| ApiError::bad_request(format!("Request decode failed: {e}")))?,
        None => return Err(ApiError::bad_request("Must provide coordinate")),
    };
    if !coord.is_valid() {
        return Err(ApiError::internal("invalid coordinate"));
    }
    let dims = sekisho_wan::coordinate::Config::default().dimensionality;
    if coord.vec.len() != dims {
        return Err(ApiError::internal(format!(
            "incompatible coordinate: {} dimensions, expected {dims}",
            coord.vec.len()
        )));
    }
    let segment = field("Segment").and_then(Value::as_str).unwrap_or_default().to_owned();
    Ok(CoordinateEntry { node, segment, coord })
}
