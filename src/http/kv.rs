//! `/v1/kv/<key>`: GET (`recurse`, `keys`, `separator`, `raw`), PUT (`flags`, `cas`,
//! `acquire`, `release`), DELETE (`recurse`, `cas`).

use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::get;

use super::HttpState;
use super::caller::Caller;
use super::error::{ApiError, ApiResult};
use super::query::{Params, json, not_found_with_meta};
use crate::filter;
use crate::fsm::{Command, Response as FsmResponse};
use crate::state::Table;
use crate::state::kv::{KvOp, KvVerb, kv_get, kv_keys, kv_list, lock_delay_until};
use sekisho_acl::{Access, Resource};

pub(super) fn routes() -> Router<HttpState> {
    Router::new()
        .route("/v1/kv", get(get_root).put(put_root).delete(delete_root))
        .route("/v1/kv/", get(get_root).put(put_root).delete(delete_root))
        .route("/v1/kv/{*key}", get(get_key).put(put_key).delete(delete_key))
}

async fn get_root(st: State<HttpState>, c: Caller, q: RawQuery) -> ApiResult {
    kv_read(st, c, String::new(), q).await
}
async fn get_key(st: State<HttpState>, c: Caller, Path(key): Path<String>, q: RawQuery) -> ApiResult {
    kv_read(st, c, key, q).await
}
async fn put_root(_st: State<HttpState>, _q: RawQuery) -> ApiResult {
    Err(ApiError::bad_request("Missing key name"))
}
async fn put_key(
    st: State<HttpState>,
    c: Caller,
    Path(key): Path<String>,
    q: RawQuery,
    body: Body,
) -> ApiResult {
    c.require(Resource::Key, &key, Access::Write)?;
    kv_put(st, key, q, body).await
}
async fn delete_root(st: State<HttpState>, c: Caller, q: RawQuery) -> ApiResult {
    kv_delete(st, c, String::new(), q).await
}
async fn delete_key(st: State<HttpState>, c: Caller, Path(key): Path<String>, q: RawQuery) -> ApiResult {
    kv_delete(st, c, key, q).await
}

/// Adds `X-Consul-Results-Filtered-By-ACLs: true` when entries were left out.
pub(super) fn mark_filtered(mut r: Response, filtered: bool) -> Response {
    if filtered {
        r.headers_mut().insert("X-Consul-Results-Filtered-By-ACLs", HeaderValue::from_static("true"));
    }
    r
}

async fn kv_read(State(st): State<HttpState>, c: Caller, key: String, RawQuery(q): RawQuery) -> ApiResult {
    let p = Params::parse(q.as_deref());
    let opts = p.query_options()?;
    let listing = p.get("keys").is_some() || p.get("recurse").is_some();
    if listing && st.acl.config().enable_key_list_policy {
        c.require(Resource::Key, &key, Access::List)?;
    } else if !listing {
        c.require(Resource::Key, &key, Access::Read)?;
    }
    if p.get("keys").is_some() {
        let sep = p.get("separator").unwrap_or("").to_string();
        let (keys, meta) = st
            .server
            .query(&opts, &Table::KV, |s| {
                let (k, i) = kv_keys(s, &key, &sep);
                (k, i, i)
            })
            .await?;
        let total = keys.len();
        let keys: Vec<String> =
            keys.into_iter().filter(|k| c.allows(Resource::Key, k, Access::Read)).collect();
        if keys.is_empty() {
            return Ok(mark_filtered(not_found_with_meta(&meta), total > 0));
        }
        return Ok(mark_filtered(json(&p, StatusCode::OK, Some(&meta), &keys)?, keys.len() < total));
    }
    if p.get("recurse").is_some() {
        let filt = p.filter()?;
        let (entries, meta) = st
            .server
            .query(&opts, &Table::KV, |s| {
                let (e, i) = kv_list(s, &key);
                (e, i, i)
            })
            .await?;
        let total = entries.len();
        let entries: Vec<_> =
            entries.into_iter().filter(|e| c.allows(Resource::Key, &e.key, Access::Read)).collect();
        if entries.is_empty() {
            return Ok(mark_filtered(not_found_with_meta(&meta), total > 0));
        }
        let filtered = entries.len() < total;
        let values: Vec<serde_json::Value> =
            entries.iter().map(|e| serde_json::to_value(e).unwrap_or_default()).collect();
        let r = json(&p, StatusCode::OK, Some(&meta), &filter::apply(filt.as_ref(), values))?;
        return Ok(mark_filtered(r, filtered));
    }
    let (entry, meta) = st.server.query(&opts, &Table::KV, |s| kv_get(s, &key)).await?;
    let Some(entry) = entry else {
        return Ok(not_found_with_meta(&meta));
    };
    if p.get("raw").is_some() {
        let mut r = Response::new(Body::from(entry.value.unwrap_or_default()));
        let h = r.headers_mut();
        h.insert("Content-Type", HeaderValue::from_static("text/plain; charset=utf-8"));
        h.insert("X-Content-Type-Options", HeaderValue::from_static("nosniff"));
        super::query::add_meta(&mut r, &meta);
        return Ok(r);
    }
    json(&p, StatusCode::OK, Some(&meta), &[entry])
}

fn parse_flags(p: &Params) -> Result<u64, ApiError> {
    p.u64("flags").map(|f| f.unwrap_or(0))
}

async fn kv_put(State(st): State<HttpState>, key: String, RawQuery(q): RawQuery, body: Body) -> ApiResult {
    let p = Params::parse(q.as_deref());
    let limit = st.agent.kv_max_value_size;
    let Some(value) = super::read_body(body, limit as usize).await? else {
        return Err(ApiError::too_large(format!("Value exceeds {limit} byte limit")));
    };
    let mut op = KvOp::new(KvVerb::Set, key);
    // Consul stores an empty body as a nil value, answered as `"Value": null`.
    op.value = (!value.is_empty()).then(|| value.to_vec());
    op.flags = parse_flags(&p)?;
    if let Some(cas) = p.u64("cas")? {
        op.verb = KvVerb::Cas;
        op.index = cas;
    }
    if let Some(sid) = p.get("acquire") {
        op.verb = KvVerb::Lock;
        op.session = Some(sid.to_string());
        if st.server.state().read(|s| lock_delay_until(s, &op.key, Instant::now())).is_some() {
            tracing::warn!(key = %op.key, "rejecting lock of key due to lock-delay");
            return json(&p, StatusCode::OK, None, &false);
        }
    } else if let Some(sid) = p.get("release") {
        op.verb = KvVerb::Unlock;
        op.session = Some(sid.to_string());
    }
    write_bool(&st, &p, Command::Kv(op)).await
}

async fn kv_delete(State(st): State<HttpState>, c: Caller, key: String, RawQuery(q): RawQuery) -> ApiResult {
    let p = Params::parse(q.as_deref());
    if p.get("recurse").is_some() {
        c.require_key_write_prefix(&key)?;
    } else {
        c.require(Resource::Key, &key, Access::Write)?;
    }
    let mut op = KvOp::new(KvVerb::Delete, key);
    if p.get("recurse").is_some() {
        op.verb = KvVerb::DeleteTree;
    } else if let Some(cas) = p.u64("cas")? {
        op.verb = KvVerb::DeleteCas;
        op.index = cas;
    }
    if op.key.is_empty() && op.verb != KvVerb::DeleteTree {
        return Err(ApiError::bad_request("Missing key name"));
    }
    write_bool(&st, &p, Command::Kv(op)).await
}

/// Commits a write whose reply is `true`/`false` (or a 500 with the FSM's error text).
pub(super) async fn write_bool(st: &HttpState, p: &Params, cmd: Command) -> ApiResult {
    match st.server.write(cmd).await? {
        FsmResponse::Bool(b) => json(p, StatusCode::OK, None, &b),
        FsmResponse::Error(e) => Err(ApiError::internal(e)),
        other => Err(ApiError::internal(format!("unexpected response {other:?}"))),
    }
}
