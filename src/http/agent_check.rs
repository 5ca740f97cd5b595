//! The agent's own checks: `/v1/agent/checks`, `check/register|deregister`, TTL updates
//! (`check/pass|warn|fail/:id?note=`, `check/update/:id`), node maintenance and reload.

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::routing::{get, put};
use serde_json::{Map, Value};

use super::HttpState;
use super::agent_service::enable_param;
use super::caller::Caller;
use super::decode::{Obj, parse_body};
use super::error::{ApiError, ApiResult};
use super::query::{Params, json};
use crate::checks::Status;
use sekisho_acl::{Access, Resource};

pub(super) fn routes() -> Router<HttpState> {
    Router::new()
        .route("/v1/agent/checks", get(list))
        .route("/v1/agent/check/register", put(register))
        .route("/v1/agent/check/deregister/{*id}", put(deregister))
        .route("/v1/agent/check/pass/{*id}", put(pass))
        .route("/v1/agent/check/warn/{*id}", put(warn))
        .route("/v1/agent/check/fail/{*id}", put(fail))
        .route("/v1/agent/check/update/{*id}", put(update))
        .route("/v1/agent/maintenance", put(maintenance))
        .route("/v1/agent/reload", put(reload))
}

async fn list(State(st): State<HttpState>, c: Caller, RawQuery(q): RawQuery) -> ApiResult {
    let p = Params::parse(q.as_deref());
    let filt = p.filter()?;
    let mut out = Map::new();
    let mut filtered = false;
    for chk in st.local.checks() {
        let v = serde_json::to_value(&chk).map_err(|e| ApiError::internal(e.to_string()))?;
        if !c.sees_row(&v) {
            filtered = true;
            continue;
        }
        if filt.as_ref().is_none_or(|f| f.matches(&v)) {
            out.insert(chk.check_id.clone(), v);
        }
    }
    Ok(super::kv::mark_filtered(json(&p, StatusCode::OK, None, &Value::Object(out))?, filtered))
}

async fn register(State(st): State<HttpState>, c: Caller, RawQuery(q): RawQuery, body: Body) -> ApiResult {
    let p = Params::parse(q.as_deref());
    let v = parse_body(&super::read_default_body(&st, body).await?)?;
    let service_id = Obj::new(&v, "CheckDefinition")?.str("ServiceID")?;
    let service_name = if service_id.is_empty() {
        String::new()
    } else {
        st.local.services().into_iter().find(|s| s.id == service_id).map(|s| s.service).unwrap_or(service_id)
    };
    require_owner_write(&st, &c, &service_name)?;
    st.local.register_check(&v)?;
    json(&p, StatusCode::OK, None, &Value::Null)
}

async fn deregister(
    State(st): State<HttpState>,
    c: Caller,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult {
    let p = Params::parse(q.as_deref());
    require_check_write(&st, &c, &id)?;
    st.local.deregister_check(&id)?;
    json(&p, StatusCode::OK, None, &Value::Null)
}

/// `service:write` on the check's service, or `node:write` on this node for a node check
/// (an unknown check needs nothing: the call then answers 404).
fn require_check_write(st: &HttpState, c: &Caller, id: &str) -> Result<(), ApiError> {
    match st.local.checks().into_iter().find(|x| x.check_id == id) {
        Some(chk) => require_owner_write(st, c, &chk.service_name),
        None => Ok(()),
    }
}

fn require_owner_write(st: &HttpState, c: &Caller, service_name: &str) -> Result<(), ApiError> {
    if service_name.is_empty() {
        c.require(Resource::Node, &st.agent.node_name, Access::Write)
    } else {
        c.require(Resource::Service, service_name, Access::Write)
    }
}

fn ttl(st: &HttpState, q: Option<&str>, id: &str, status: Status) -> ApiResult {
    let p = Params::parse(q);
    st.local.update_ttl(id, status, p.get("note").unwrap_or(""))?;
    json(&p, StatusCode::OK, None, &Value::Null)
}

async fn pass(
    State(st): State<HttpState>,
    c: Caller,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult {
    require_check_write(&st, &c, &id)?;
    ttl(&st, q.as_deref(), &id, Status::Passing)
}

async fn warn(
    State(st): State<HttpState>,
    c: Caller,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult {
    require_check_write(&st, &c, &id)?;
    ttl(&st, q.as_deref(), &id, Status::Warning)
}

async fn fail(
    State(st): State<HttpState>,
    c: Caller,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult {
    require_check_write(&st, &c, &id)?;
    ttl(&st, q.as_deref(), &id, Status::Critical)
}

async fn update(
    State(st): State<HttpState>,
    c: Caller,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    body: Body,
) -> ApiResult {
    let p = Params::parse(q.as_deref());
    require_check_write(&st, &c, &id)?;
    let v = parse_body(&super::read_default_body(&st, body).await?)?;
    let o = Obj::new(&v, "checkUpdate")?;
    let status = o.str("Status")?;
    let Some(s) = Status::parse(&status) else {
        return Err(ApiError::bad_request(format!("Invalid check status: '{status}'")));
    };
    st.local.update_ttl(&id, s, &o.str("Output")?)?;
    json(&p, StatusCode::OK, None, &Value::Null)
}

async fn maintenance(State(st): State<HttpState>, c: Caller, RawQuery(q): RawQuery) -> ApiResult {
    c.require(Resource::Node, &st.agent.node_name, Access::Write)?;
    let p = Params::parse(q.as_deref());
    let enable = enable_param(&p)?;
    st.local.set_maintenance(None, enable, p.get("reason").unwrap_or(""))?;
    json(&p, StatusCode::OK, None, &Value::Null)
}

async fn reload(State(st): State<HttpState>, c: Caller, RawQuery(q): RawQuery) -> ApiResult {
    c.require(Resource::Agent, &st.agent.node_name, Access::Write)?;
    let p = Params::parse(q.as_deref());
    match st.reloader.reload().await {
        Ok(()) => {
            tracing::info!("configuration reloaded");
            json(&p, StatusCode::OK, None, &Value::Null)
        }
        Err(e) => {
            tracing::error!(error = %e, "configuration reload failed; the running configuration is unchanged");
            Err(ApiError::internal(format!("Failed reloading config: {e}")))
        }
    }
}
