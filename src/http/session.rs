//! `/v1/session/*`: create, destroy, renew, info, node, list.

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::routing::{get, put};
use serde_json::{Value, json as j};

use super::HttpState;
use super::caller::Caller;
use super::decode::{Obj, go_duration, parse_body};
use super::error::{ApiError, ApiResult};
use super::query::{Params, json};
use crate::fsm::{Command, Response as FsmResponse};
use crate::state::Table;
use crate::state::session::{BEHAVIOR_DELETE, BEHAVIOR_RELEASE, node_sessions};
use crate::state::types::{SERF_CHECK_ID, ServiceCheck, Session};
use sekisho_acl::{Access, Resource};

/// Consul's default lock-delay.
const DEFAULT_LOCK_DELAY: Duration = Duration::from_secs(15);
/// Consul's maximum lock-delay.
const MAX_LOCK_DELAY: Duration = Duration::from_secs(60);
/// Consul's maximum session TTL.
const MAX_TTL: Duration = Duration::from_secs(24 * 3600);

pub(super) fn routes() -> Router<HttpState> {
    Router::new()
        .route("/v1/session/create", put(create))
        .route("/v1/session/destroy/{id}", put(destroy))
        .route("/v1/session/renew/{id}", put(renew))
        .route("/v1/session/info/{id}", get(info))
        .route("/v1/session/node/{node}", get(node))
        .route("/v1/session/list", get(list))
}

fn lock_delay(o: &Obj<'_>) -> Result<Duration, ApiError> {
    // Like Consul, a bare number below 1000 means seconds; otherwise nanoseconds.
    let d = match o.get("LockDelay") {
        None => return Ok(DEFAULT_LOCK_DELAY),
        Some(Value::Number(n)) => match n.as_u64() {
            Some(v) if v < 1000 => Duration::from_secs(v),
            Some(v) => Duration::from_nanos(v),
            None => return Err(ApiError::decode("LockDelay must be a non-negative duration")),
        },
        Some(_) => o.duration("LockDelay")?.unwrap_or(DEFAULT_LOCK_DELAY),
    };
    if d > MAX_LOCK_DELAY {
        return Err(ApiError::bad_request(format!("Lock delay must be <= {}", go_duration(MAX_LOCK_DELAY))));
    }
    Ok(d)
}

fn decode_session(st: &HttpState, v: &Value) -> Result<Session, ApiError> {
    let mut s = Session { id: uuid::Uuid::new_v4().to_string(), ..Default::default() };
    if v.is_null() {
        s.node = st.agent.node_name.clone();
        s.lock_delay = DEFAULT_LOCK_DELAY.as_nanos() as u64;
        s.behavior = BEHAVIOR_RELEASE.into();
        s.node_checks = Some(vec![SERF_CHECK_ID.into()]);
        return Ok(s);
    }
    let o = Obj::new(v, "Session")?;
    s.name = o.str("Name")?;
    s.node = match o.str("Node")? {
        n if n.is_empty() => st.agent.node_name.clone(),
        n => n,
    };
    s.lock_delay = lock_delay(&o)?.as_nanos() as u64;
    s.behavior = match o.str("Behavior")? {
        b if b.is_empty() => BEHAVIOR_RELEASE.into(),
        b if b == BEHAVIOR_RELEASE || b == BEHAVIOR_DELETE => b,
        b => return Err(ApiError::bad_request(format!("Invalid Behavior setting '{b}'"))),
    };
    let checks = o.get("Checks").map(|_| o.strings("Checks")).transpose()?;
    let node_checks = o.get("NodeChecks").map(|_| o.strings("NodeChecks")).transpose()?;
    let service_checks = match o.get("ServiceChecks") {
        None => None,
        Some(_) => Some(
            o.list("ServiceChecks")?
                .into_iter()
                .map(|c| {
                    let c = Obj::new(c, "ServiceChecks")?;
                    Ok(ServiceCheck { id: c.str("ID")?, namespace: c.str("Namespace")? })
                })
                .collect::<Result<Vec<_>, ApiError>>()?,
        ),
    };
    s.node_checks = match (checks, node_checks, &service_checks) {
        (None, None, None) => Some(vec![SERF_CHECK_ID.into()]),
        (c, n, _) => {
            let all: Vec<String> = c.into_iter().flatten().chain(n.into_iter().flatten()).collect();
            Some(all)
        }
    };
    s.service_checks = service_checks.filter(|c| !c.is_empty());
    s.ttl = ttl(st, &o)?;
    Ok(s)
}

fn ttl(st: &HttpState, o: &Obj<'_>) -> Result<String, ApiError> {
    let raw = match o.get("TTL") {
        None => return Ok(String::new()),
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(ApiError::decode("TTL must be a duration string")),
    };
    if raw.is_empty() {
        return Ok(raw);
    }
    let d = crate::config::parse_go_duration(&raw)
        .map_err(|e| ApiError::bad_request(format!("Invalid Session TTL '{raw}': {e}")))?;
    let min = st.agent.session_ttl_min;
    if !d.is_zero() && (d < min || d > MAX_TTL) {
        return Err(ApiError::internal(format!(
            "Invalid Session TTL '{}', must be between [{}={}]",
            d.as_nanos(),
            go_duration(min),
            go_duration(MAX_TTL)
        )));
    }
    Ok(raw)
}

async fn create(State(st): State<HttpState>, c: Caller, RawQuery(q): RawQuery, body: Body) -> ApiResult {
    let p = Params::parse(q.as_deref());
    let v = parse_body(&super::read_default_body(&st, body).await?)?;
    let s = decode_session(&st, &v)?;
    c.require(Resource::Session, &s.node, Access::Write)?;
    let id = s.id.clone();
    let has_ttl = crate::config::parse_go_duration(&s.ttl).is_ok_and(|t| !t.is_zero());
    match st.server.write(Command::SessionCreate(s)).await? {
        FsmResponse::Bool(_) => {
            if has_ttl {
                st.server.renew_session_timer(&id).await;
            }
            json(&p, StatusCode::OK, None, &j!({ "ID": id }))
        }
        FsmResponse::Error(e) => Err(ApiError::internal(e)),
        other => Err(ApiError::internal(format!("unexpected response {other:?}"))),
    }
}

/// `session:write` on the node of session `id` (an unknown session needs nothing: the call
/// is then a no-op or a 404).
fn require_session_write(st: &HttpState, c: &Caller, id: &str) -> Result<(), ApiError> {
    match st.server.state().read(|s| s.sessions.get(id).map(|x| x.node.clone())) {
        Some(node) => c.require(Resource::Session, &node, Access::Write),
        None => Ok(()),
    }
}

async fn destroy(
    State(st): State<HttpState>,
    c: Caller,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult {
    let p = Params::parse(q.as_deref());
    require_session_write(&st, &c, &id)?;
    st.server.write(Command::SessionDestroy(id)).await?;
    json(&p, StatusCode::OK, None, &true)
}

async fn renew(
    State(st): State<HttpState>,
    c: Caller,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult {
    let p = Params::parse(q.as_deref());
    require_session_write(&st, &c, &id)?;
    let Some(s) = st.server.renew_session(&id).await? else {
        return Err(ApiError::not_found(format!("Session id '{id}' not found")));
    };
    json(&p, StatusCode::OK, None, &[s])
}

async fn sessions(
    st: &HttpState,
    c: &Caller,
    p: &Params,
    f: impl Fn(&crate::state::Store) -> Vec<Session>,
) -> ApiResult {
    let opts = p.query_options()?;
    let (v, meta) = st
        .server
        .query(&opts, &[Table::Sessions], |s| {
            let i = s.index(Table::Sessions);
            (f(s), i, i)
        })
        .await?;
    let total = v.len();
    let v: Vec<Session> =
        v.into_iter().filter(|s| c.allows(Resource::Session, &s.node, Access::Read)).collect();
    let filtered = v.len() < total;
    Ok(super::kv::mark_filtered(json(p, StatusCode::OK, Some(&meta), &v)?, filtered))
}

async fn info(
    State(st): State<HttpState>,
    c: Caller,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult {
    let p = Params::parse(q.as_deref());
    sessions(&st, &c, &p, |s| s.sessions.get(&id).cloned().into_iter().collect()).await
}

async fn node(
    State(st): State<HttpState>,
    c: Caller,
    Path(n): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult {
    let p = Params::parse(q.as_deref());
    sessions(&st, &c, &p, |s| node_sessions(s, &n)).await
}

async fn list(State(st): State<HttpState>, c: Caller, RawQuery(q): RawQuery) -> ApiResult {
    let p = Params::parse(q.as_deref());
    sessions(&st, &c, &p, |s| s.sessions.values().cloned().collect()).await
}
