//! `/v1/query`: prepared queries. Create (`POST /v1/query` → `{"ID"}`), list (blocking),
//! read, update and delete by ID, and by ID or name `execute` (see `execute.rs`) and
//! `explain` (the query a name resolves to, templates rendered).
//!
//! ACLs as in Consul: a named query (or any template) needs `query:write` on its name to be
//! written and `query:read` to be read; an unnamed static query has no rule and whoever
//! knows its ID may read, change or run it. `Token` is shown as `<hidden>` to callers
//! without `acl:write`. Running a query needs no `query` rule: its results are filtered by
//! `node:read` and `service:read` of the query's `Token` when it has one, else the caller's.

mod execute;

pub(crate) use execute::AGENT_NODE_HEADER;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::IntoResponse;
use axum::routing::get;
use serde_json::{Value, json as j};

use super::HttpState;
use super::caller::Caller;
use super::decode::{Obj, parse_body};
use super::error::{ApiError, ApiResult};
use super::query::{Params, json};
use crate::fsm::{Command, Response as FsmResponse};
use crate::server::QueryOptions;
use crate::state::Table;
use crate::state::query::{
    FailoverTarget, PreparedQuery, QUERY_NOT_FOUND, QueryDns, QueryFailover, QueryOp, QueryTemplate,
    REDACTED_TOKEN, ServiceQuery, non_existent, query_get, query_index, query_list, query_resolve, validate,
};
use sekisho_acl::{Access, Resource};

pub(super) fn routes() -> Router<HttpState> {
    Router::new()
        .route("/v1/query", get(list).post(create))
        .route("/v1/query/{*rest}", get(read).put(update).delete(remove))
}

/// Decodes a query definition (keys matched case-insensitively, as Go does).
fn decode_query(v: &Value) -> Result<PreparedQuery, ApiError> {
    let o = Obj::new(v, "PreparedQuery")?;
    let template = match o.obj("Template")? {
        Some(t) => QueryTemplate {
            kind: t.str("Type")?,
            regexp: t.str("Regexp")?,
            remove_empty_tags: t.bool("RemoveEmptyTags")?,
        },
        None => QueryTemplate::default(),
    };
    let service = match o.obj("Service")? {
        Some(s) => decode_service(&s)?,
        None => ServiceQuery::default(),
    };
    let dns = match o.obj("DNS")? {
        Some(d) => QueryDns { ttl: d.str("TTL")? },
        None => QueryDns::default(),
    };
    Ok(PreparedQuery {
        id: o.str("ID")?,
        name: o.str("Name")?,
        session: o.str("Session")?,
        token: o.str("Token")?,
        template,
        service,
        dns,
        ..Default::default()
    })
}

fn decode_service(o: &Obj<'_>) -> Result<ServiceQuery, ApiError> {
    let strings = |f: &str| o.get(f).map(|_| o.strings(f)).transpose();
    let failover = match o.obj("Failover")? {
        Some(f) => QueryFailover {
            nearest_n: match f.get("NearestN") {
                None => 0,
                Some(Value::Number(n)) if n.as_i64().is_some() => n.as_i64().unwrap_or_default(),
                Some(other) => {
                    let kind = super::decode::json_kind(other);
                    return Err(ApiError::decode(format!(
                        "json: cannot unmarshal {kind} into field Failover.NearestN of type int"
                    )));
                }
            },
            datacenters: f.get("Datacenters").map(|_| f.strings("Datacenters")).transpose()?,
            targets: match f.get("Targets") {
                None => None,
                Some(_) => Some(
                    f.list("Targets")?
                        .into_iter()
                        .map(|t| {
                            let t = Obj::new(t, "Targets")?;
                            let peer = t.str("Peer")?;
                            let peer = if peer.is_empty() { t.str("PeerName")? } else { peer };
                            Ok(FailoverTarget { peer, datacenter: t.str("Datacenter")? })
                        })
                        .collect::<Result<Vec<_>, ApiError>>()?,
                ),
            },
        },
        None => QueryFailover::default(),
    };
    Ok(ServiceQuery {
        service: o.str("Service")?,
        failover,
        only_passing: o.bool("OnlyPassing")?,
        ignore_check_ids: strings("IgnoreCheckIDs")?,
        near: o.str("Near")?,
        tags: strings("Tags")?,
        node_meta: o.string_map("NodeMeta")?,
        service_meta: o.string_map("ServiceMeta")?,
        connect: o.bool("Connect")?,
    })
}

/// Whether the caller sees everything unredacted (`acl:write`, or ACLs off).
fn sees_all(c: &Caller) -> bool {
    c.allows(Resource::Acl, "", Access::Write)
}

/// `Token` as the caller may see it.
fn redact(c: &Caller, mut q: PreparedQuery) -> PreparedQuery {
    if !q.token.is_empty() && !sees_all(c) {
        q.token = REDACTED_TOKEN.into();
    }
    q
}

/// `query:write` on the query's name, when a rule applies to it.
fn require_write(c: &Caller, q: &PreparedQuery) -> Result<(), ApiError> {
    match q.acl_prefix() {
        Some(prefix) => c.require(Resource::Query, prefix, Access::Write),
        None => Ok(()),
    }
}

/// Reading one query: `query:read` on its name (unnamed static queries: anyone with the ID).
fn require_read(c: &Caller, q: &PreparedQuery) -> Result<(), ApiError> {
    match q.acl_prefix() {
        Some(prefix) if !sees_all(c) => c.require(Resource::Query, prefix, Access::Read),
        _ => Ok(()),
    }
}

async fn commit(st: &HttpState, op: QueryOp) -> Result<(), ApiError> {
    match st.server.write(Command::PreparedQuery(op)).await? {
        FsmResponse::Bool(_) => Ok(()),
        FsmResponse::Error(e) => Err(ApiError::internal(e)),
        other => Err(ApiError::internal(format!("unexpected response {other:?}"))),
    }
}

fn new_id(st: &HttpState) -> String {
    loop {
        let id = uuid::Uuid::new_v4().to_string();
        if st.server.state().read(|s| query_get(s, &id).is_none()) {
            return id;
        }
    }
}

async fn create(State(st): State<HttpState>, c: Caller, RawQuery(q): RawQuery, body: Body) -> ApiResult {
    let p = Params::parse(q.as_deref());
    let v = parse_body(&super::read_default_body(&st, body).await?)?;
    if v.is_null() {
        return Err(ApiError::decode("EOF"));
    }
    let mut query = decode_query(&v)?;
    if !query.id.is_empty() {
        return Err(ApiError::internal("ID must be empty when creating a new prepared query"));
    }
    query.id = new_id(&st);
    require_write(&c, &query)?;
    validate(&query).map_err(ApiError::internal)?;
    let id = query.id.clone();
    commit(&st, QueryOp::Create(query)).await?;
    json(&p, StatusCode::OK, None, &j!({ "ID": id }))
}

async fn list(State(st): State<HttpState>, c: Caller, RawQuery(q): RawQuery) -> ApiResult {
    let p = Params::parse(q.as_deref());
    let opts = p.query_options()?;
    let (all, meta) = st
        .server
        .query(&opts, &[Table::PreparedQueries], |s| {
            let i = query_index(s);
            (query_list(s), i, i)
        })
        .await?;
    let total = all.len();
    // Consul's filter: `acl:write` sees every query; others the named ones (and templates)
    // they may read, never an unnamed static query.
    let shown: Vec<PreparedQuery> = if sees_all(&c) {
        all
    } else {
        all.into_iter()
            .filter(|q| q.acl_prefix().is_some_and(|prefix| c.allows(Resource::Query, prefix, Access::Read)))
            .map(|q| redact(&c, q))
            .collect()
    };
    let filtered = shown.len() < total;
    Ok(super::kv::mark_filtered(json(&p, StatusCode::OK, Some(&meta), &shown)?, filtered))
}

/// Which `/v1/query/{*rest}` a request names: `<id>`, `<id or name>/execute` or `/explain`.
enum Target<'a> {
    Query(&'a str),
    Execute(&'a str),
    Explain(&'a str),
}

fn target(rest: &str) -> Target<'_> {
    if let Some(id) = rest.strip_suffix("/execute") {
        Target::Execute(id)
    } else if let Some(id) = rest.strip_suffix("/explain") {
        Target::Explain(id)
    } else {
        Target::Query(rest)
    }
}

/// Only `GET` is allowed on `execute` and `explain`.
fn only_get<'r>(method: &str, rest: &'r str) -> Result<&'r str, ApiError> {
    match target(rest) {
        Target::Query(id) => Ok(id),
        _ => Err(ApiError::method_not_allowed(method, &format!("/v1/query/{rest}"))),
    }
}

async fn read(
    State(st): State<HttpState>,
    c: Caller,
    Path(rest): Path<String>,
    RawQuery(q): RawQuery,
    parts: Parts,
) -> ApiResult {
    let p = Params::parse(q.as_deref());
    match target(&rest) {
        Target::Query(id) => get_one(&st, &c, &p, id).await,
        Target::Execute(id) => execute::execute(&st, &c, &p, &parts, id).await,
        Target::Explain(id) => explain(&st, &c, &p, id).await,
    }
}

async fn get_one(st: &HttpState, c: &Caller, p: &Params, id: &str) -> ApiResult {
    let opts = p.query_options()?;
    let (found, meta) = st
        .server
        .query(&opts, &[Table::PreparedQueries], |s| {
            let i = query_index(s);
            (query_get(s, id).cloned(), i, i)
        })
        .await?;
    let q = found.ok_or_else(|| ApiError::not_found(QUERY_NOT_FOUND))?;
    require_read(c, &q)?;
    json(p, StatusCode::OK, Some(&meta), &[redact(c, q)])
}

/// Resolves `id_or_name` (templates rendered) with the request's consistency, never blocking.
async fn resolve(
    st: &HttpState,
    p: &Params,
    id_or_name: &str,
) -> Result<(PreparedQuery, crate::server::QueryMeta), ApiError> {
    let opts = QueryOptions { min_index: 0, ..p.query_options()? };
    let (resolved, meta) = st
        .server
        .query(&opts, &[Table::PreparedQueries], |s| {
            let i = query_index(s);
            (query_resolve(s, id_or_name), i, i)
        })
        .await?;
    match resolved {
        Ok(Some(q)) => Ok((q, meta)),
        Ok(None) => Err(ApiError::not_found(QUERY_NOT_FOUND)),
        Err(e) => Err(ApiError::internal(e)),
    }
}

async fn explain(st: &HttpState, c: &Caller, p: &Params, id_or_name: &str) -> ApiResult {
    let (q, meta) = resolve(st, p, id_or_name).await?;
    if !sees_all(c) {
        // As Consul's list filter: a query no rule applies to is shown to `acl:write` only.
        match q.acl_prefix() {
            Some(prefix) => c.require(Resource::Query, prefix, Access::Read)?,
            None => c.require(Resource::Acl, "", Access::Write)?,
        }
    }
    json(p, StatusCode::OK, Some(&meta), &j!({ "Query": redact(c, q) }))
}

async fn update(State(st): State<HttpState>, c: Caller, Path(rest): Path<String>, body: Body) -> ApiResult {
    let id = only_get("PUT", &rest)?.to_owned();
    let v = parse_body(&super::read_default_body(&st, body).await?)?;
    let mut q = if v.is_null() { PreparedQuery::default() } else { decode_query(&v)? };
    q.id = id;
    require_write(&c, &q)?;
    let existing = st.server.state().read(|s| query_get(s, &q.id).cloned());
    let existing = existing.ok_or_else(|| ApiError::internal(non_existent(&q.id)))?;
    require_write(&c, &existing)?;
    validate(&q).map_err(ApiError::internal)?;
    commit(&st, QueryOp::Update(q)).await?;
    Ok(StatusCode::OK.into_response())
}

async fn remove(State(st): State<HttpState>, c: Caller, Path(rest): Path<String>) -> ApiResult {
    let id = only_get("DELETE", &rest)?.to_owned();
    let existing = st.server.state().read(|s| query_get(s, &id).cloned());
    let existing = existing.ok_or_else(|| ApiError::internal(non_existent(&id)))?;
    require_write(&c, &existing)?;
    commit(&st, QueryOp::Delete(id)).await?;
    Ok(StatusCode::OK.into_response())
}
