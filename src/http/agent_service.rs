//! The agent's own services: `/v1/agent/services`, `/v1/agent/service/:id` (hash blocking),
//! `service/register|deregister|maintenance`, `/v1/agent/health/service/id|name/:x`.

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use serde_json::{Map, Value, json as j};

use super::HttpState;
use super::caller::Caller;
use super::decode::{Obj, parse_body};
use super::error::{ApiError, ApiResult};
use super::query::{Params, json};
use crate::filter;
use crate::local::{LocalError, LocalState};
use crate::state::types::{HealthCheck, Service};
use sekisho_acl::{Access, Resource};

pub(super) fn routes() -> Router<HttpState> {
    Router::new()
        .route("/v1/agent/services", get(list))
        .route("/v1/agent/service/register", put(register))
        .route("/v1/agent/service/deregister/{*id}", put(deregister))
        .route("/v1/agent/service/maintenance/{*id}", put(maintenance))
        .route("/v1/agent/service/{*id}", get(one))
        .route("/v1/agent/health/service/id/{*id}", get(health_by_id))
        .route("/v1/agent/health/service/name/{*name}", get(health_by_name))
}

impl From<LocalError> for ApiError {
    fn from(e: LocalError) -> ApiError {
        match e {
            LocalError::Invalid(m) => ApiError::bad_request(m),
            LocalError::NotFound(m) => ApiError::not_found(m),
            LocalError::Persist(m) => ApiError::internal(m),
        }
    }
}

/// A service in the agent endpoints' shape (`api.AgentService`).
pub(crate) fn agent_service(s: &Service, dc: &str) -> Value {
    let mut m = Map::new();
    if !s.kind.is_empty() {
        m.insert("Kind".into(), j!(s.kind));
    }
    m.insert("ID".into(), j!(s.id));
    m.insert("Service".into(), j!(s.service));
    m.insert("Tags".into(), j!(s.tags));
    m.insert("Meta".into(), s.meta.as_ref().map_or_else(|| j!({}), |x| j!(x)));
    m.insert("Port".into(), j!(s.port));
    m.insert("Address".into(), j!(s.address));
    if let Some(t) = &s.tagged_addresses {
        m.insert("TaggedAddresses".into(), j!(t));
    }
    m.insert("Weights".into(), j!(s.weights));
    m.insert("EnableTagOverride".into(), j!(s.enable_tag_override));
    m.insert("Datacenter".into(), j!(dc));
    Value::Object(m)
}

/// Applies `?filter=` to the values of an ID-keyed map.
fn filtered_map(p: &Params, items: Vec<(String, Value)>) -> Result<Value, ApiError> {
    let filt = p.filter()?;
    let mut out = Map::new();
    for (id, v) in items {
        if filt.as_ref().is_none_or(|f| f.matches(&v)) {
            out.insert(id, v);
        }
    }
    Ok(Value::Object(out))
}

async fn list(State(st): State<HttpState>, c: Caller, RawQuery(q): RawQuery) -> ApiResult {
    let p = Params::parse(q.as_deref());
    let dc = &st.agent.datacenter;
    let all = st.local.services();
    let visible: Vec<_> =
        all.iter().filter(|s| c.allows(Resource::Service, &s.service, Access::Read)).collect();
    let filtered = visible.len() < all.len();
    let items = visible.iter().map(|s| (s.id.clone(), agent_service(s, dc))).collect();
    Ok(super::kv::mark_filtered(json(&p, StatusCode::OK, None, &filtered_map(&p, items)?)?, filtered))
}

/// FNV-1a over the JSON text: an opaque, stable content hash.
fn content_hash(v: &Value) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in v.to_string().bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

fn wait_time(p: &Params) -> Result<Duration, ApiError> {
    let max = Duration::from_secs(600);
    match p.get("wait") {
        None | Some("") => Ok(Duration::from_secs(300)),
        Some(w) => crate::config::parse_go_duration(w)
            .map(|d| d.min(max))
            .map_err(|_| ApiError::bad_request(format!("Invalid wait time: {w:?}"))),
    }
}

async fn one(
    State(st): State<HttpState>,
    c: Caller,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult {
    let p = Params::parse(q.as_deref());
    if let Some(v) = st.local.service(&id) {
        c.require(Resource::Service, &v.service.service, Access::Read)?;
    }
    let dc = st.agent.datacenter.clone();
    let render = |l: &LocalState| {
        l.service(&id).map(|v| {
            let mut body = agent_service(&v.service, &dc);
            let hash = content_hash(&body);
            body["ContentHash"] = j!(hash);
            (body, hash)
        })
    };
    let mut changes = st.local.subscribe();
    let deadline = tokio::time::Instant::now() + wait_time(&p)?;
    loop {
        changes.borrow_and_update();
        let Some((body, hash)) = render(&st.local) else {
            return Err(ApiError::not_found(format!("unknown service ID: {id}")));
        };
        let blocked = matches!(p.get("hash"), Some(h) if !h.is_empty() && h == hash);
        if !blocked || tokio::time::Instant::now() >= deadline {
            let mut r = json(&p, StatusCode::OK, None, &body)?;
            if let Ok(h) = HeaderValue::from_str(&hash) {
                r.headers_mut().insert("X-Consul-ContentHash", h);
            }
            return Ok(r);
        }
        if tokio::time::timeout_at(deadline, changes.changed()).await.is_err() {
            continue;
        }
    }
}

async fn register(State(st): State<HttpState>, c: Caller, RawQuery(q): RawQuery, body: Body) -> ApiResult {
    let p = Params::parse(q.as_deref());
    let v = parse_body(&super::read_default_body(&st, body).await?)?;
    let name = Obj::new(&v, "ServiceDefinition")?.str("Name")?;
    c.require(Resource::Service, &name, Access::Write)?;
    st.local.register_service(&v, p.flag("replace-existing-checks"))?;
    json(&p, StatusCode::OK, None, &Value::Null)
}

async fn deregister(
    State(st): State<HttpState>,
    c: Caller,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult {
    let p = Params::parse(q.as_deref());
    require_service_write(&st, &c, &id)?;
    st.local.deregister_service(&id)?;
    json(&p, StatusCode::OK, None, &Value::Null)
}

/// `service:write` on the local service `id` (an unknown ID needs nothing: the call then
/// answers 404).
fn require_service_write(st: &HttpState, c: &Caller, id: &str) -> Result<(), ApiError> {
    match st.local.service(id) {
        Some(v) => c.require(Resource::Service, &v.service.service, Access::Write),
        None => Ok(()),
    }
}

/// `?enable=true|false` (required) and `?reason=`.
pub(super) fn enable_param(p: &Params) -> Result<bool, ApiError> {
    match p.get("enable") {
        None | Some("") => Err(ApiError::bad_request("Missing value for enable")),
        Some(v) => match v.to_ascii_lowercase().as_str() {
            "true" | "1" | "t" => Ok(true),
            "false" | "0" | "f" => Ok(false),
            _ => Err(ApiError::bad_request(format!("Invalid value for enable: {v:?}"))),
        },
    }
}

async fn maintenance(
    State(st): State<HttpState>,
    c: Caller,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult {
    let p = Params::parse(q.as_deref());
    require_service_write(&st, &c, &id)?;
    let enable = enable_param(&p)?;
    st.local.set_maintenance(Some(&id), enable, p.get("reason").unwrap_or(""))?;
    json(&p, StatusCode::OK, None, &Value::Null)
}

fn health_code(status: &str) -> StatusCode {
    match status {
        "passing" => StatusCode::OK,
        "warning" => StatusCode::TOO_MANY_REQUESTS,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    }
}

fn health_entry(dc: &str, service: &Service, checks: &[HealthCheck]) -> (&'static str, Value) {
    let status = LocalState::aggregated(checks);
    (status, j!({ "AggregatedStatus": status, "Service": agent_service(service, dc), "Checks": checks }))
}

fn text(code: StatusCode, body: String) -> Response {
    (code, [("Content-Type", "text/plain; charset=utf-8")], body).into_response()
}

async fn health_by_id(
    State(st): State<HttpState>,
    c: Caller,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult {
    let p = Params::parse(q.as_deref());
    let Some(v) = st.local.service(&id) else {
        return Ok(text(StatusCode::NOT_FOUND, format!("ServiceId {id} not found")));
    };
    c.require(Resource::Service, &v.service.service, Access::Read)?;
    let (status, body) = health_entry(&st.agent.datacenter, &v.service, &v.checks);
    if p.get("format") == Some("text") {
        return Ok(text(health_code(status), status.to_owned()));
    }
    json(&p, health_code(status), None, &body)
}

async fn health_by_name(
    State(st): State<HttpState>,
    c: Caller,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult {
    let p = Params::parse(q.as_deref());
    c.require(Resource::Service, &name, Access::Read)?;
    let mut worst = "passing";
    let mut out = Vec::new();
    for s in st.local.services().into_iter().filter(|s| s.service == name) {
        let Some(v) = st.local.service(&s.id) else { continue };
        let (status, body) = health_entry(&st.agent.datacenter, &v.service, &v.checks);
        let rank = |s: &str| match s {
            "passing" => 0,
            "warning" => 1,
            "critical" => 2,
            _ => 3,
        };
        if rank(status) > rank(worst) {
            worst = status;
        }
        out.push(body);
    }
    if out.is_empty() {
        return Ok(text(StatusCode::NOT_FOUND, format!("ServiceName {name} Not Found")));
    }
    if p.get("format") == Some("text") {
        return Ok(text(health_code(worst), worst.to_owned()));
    }
    json(&p, health_code(worst), None, &filter::apply(p.filter()?.as_ref(), out))
}
