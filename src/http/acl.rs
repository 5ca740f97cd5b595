//! `/v1/acl/*`: bootstrap, tokens, policies and roles in Consul's JSON shapes, and the
//! permission probe `POST /v1/internal/acl/authorize`.
//!
//! Reads need `acl:read`, writes `acl:write`; `token/self` needs only a valid token and
//! bootstrap none. A caller with `acl:read` but not `acl:write` sees SecretIDs as `<hidden>`.
//! With ACLs disabled every route answers Consul's 401 `ACL support disabled`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{Method, StatusCode, Uri};
use axum::routing::{any, get, post, put};
use sekisho_acl::{Access, Resource, Rules};
use serde_json::{Value, json};

use super::HttpState;
use super::caller::Caller;
use super::decode::{Obj, parse_body};
use super::error::{ApiError, ApiResult};
use super::query::{Params, json};
use crate::fsm::{Command, Response as FsmResponse};
use crate::state::Table;
use crate::state::acl::{
    ANONYMOUS_ACCESSOR_ID, AclOp, AclPolicy, AclRole, AclTables, AclToken, Link, MANAGEMENT_POLICY_ID,
    NodeIdentity, ServiceIdentity,
};

/// Token reads also show policy and role names: they wake on any ACL table.
const ACL_READ_TABLES: [Table; 3] = [Table::AclTokens, Table::AclPolicies, Table::AclRoles];

pub(super) fn routes() -> Router<HttpState> {
    Router::new()
        .route("/v1/acl/bootstrap", put(bootstrap))
        .route("/v1/acl/token", put(token_create))
        .route("/v1/acl/token/self", get(token_self))
        .route("/v1/acl/token/{id}", get(token_read).put(token_update).delete(token_delete))
        .route("/v1/acl/token/{id}/clone", put(token_clone))
        .route("/v1/acl/tokens", get(token_list))
        .route("/v1/acl/policy", put(policy_create))
        .route("/v1/acl/policy/name/{name}", get(policy_read_by_name))
        .route("/v1/acl/policy/{id}", get(policy_read).put(policy_update).delete(policy_delete))
        .route("/v1/acl/policies", get(policy_list))
        .route("/v1/acl/role", put(role_create))
        .route("/v1/acl/role/name/{name}", get(role_read_by_name))
        .route("/v1/acl/role/{id}", get(role_read).put(role_update).delete(role_delete))
        .route("/v1/acl/roles", get(role_list))
        .route("/v1/acl/replication", get(super::acl_federation::replication))
        .route("/v1/acl/{*rest}", any(unknown_acl))
        .route("/v1/internal/acl/authorize", post(authorize))
}

/// Consul's 401 when ACLs are off.
pub(super) fn disabled() -> ApiError {
    ApiError { status: StatusCode::UNAUTHORIZED, message: "ACL support disabled".into() }
}

async fn unknown_acl(st: State<HttpState>, method: Method, uri: Uri) -> ApiResult {
    enabled(&st)?;
    Err(ApiError::not_found(format!(
        "Invalid URL path: not a recognized HTTP API endpoint: {method} {}",
        uri.path()
    )))
}

pub(super) fn enabled(st: &HttpState) -> Result<(), ApiError> {
    if st.acl.enabled() { Ok(()) } else { Err(disabled()) }
}

fn read_guard(st: &HttpState, c: &Caller) -> Result<(), ApiError> {
    enabled(st)?;
    c.require(Resource::Acl, "", Access::Read)
}

/// `acl:write`, then this server catches up with the leader, so that a write reading the
/// tables (names of linked policies and roles, the object it updates) sees every earlier
/// acknowledged write, whichever server took it.
pub(super) async fn write_guard(st: &HttpState, c: &Caller) -> Result<(), ApiError> {
    enabled(st)?;
    c.require(Resource::Acl, "", Access::Write)?;
    st.server.catch_up().await?;
    Ok(())
}

fn rfc3339(unix: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(unix)).to_string()
}

pub(super) fn now_rfc3339() -> String {
    humantime::format_rfc3339_nanos(SystemTime::now()).to_string()
}

fn hash(v: &Value) -> String {
    use base64::Engine;
    let bytes = serde_json::to_vec(v).unwrap_or_default();
    let d = ring::digest::digest(&ring::digest::SHA256, &bytes);
    base64::engine::general_purpose::STANDARD.encode(&d.as_ref()[..16])
}

/// A token as Consul shows it; `secret` false hides the SecretID.
fn token_json(acl: &AclTables, t: &AclToken, secret: bool) -> Value {
    let mut v = json!({
        "AccessorID": t.accessor_id,
        "SecretID": if secret { t.secret_id.as_str() } else { "<hidden>" },
        "Description": t.description,
        "Local": t.local,
        "CreateTime": t.create_time,
    });
    let o = v.as_object_mut().expect("an object");
    let policies = acl.policy_links(&t.policies);
    if !policies.is_empty() {
        o.insert("Policies".into(), json!(policies));
    }
    let roles = acl.role_links(&t.roles);
    if !roles.is_empty() {
        o.insert("Roles".into(), json!(roles));
    }
    if !t.service_identities.is_empty() {
        o.insert("ServiceIdentities".into(), json!(t.service_identities));
    }
    if !t.node_identities.is_empty() {
        o.insert("NodeIdentities".into(), json!(t.node_identities));
    }
    if !t.auth_method.is_empty() {
        o.insert("AuthMethod".into(), json!(t.auth_method));
    }
    if t.expiration_time != 0 {
        o.insert("ExpirationTime".into(), json!(rfc3339(t.expiration_time)));
    }
    let h = hash(&v);
    let o = v.as_object_mut().expect("an object");
    o.insert("Hash".into(), json!(h));
    o.insert("CreateIndex".into(), json!(t.create_index));
    o.insert("ModifyIndex".into(), json!(t.modify_index));
    v
}

fn policy_json(p: &AclPolicy, with_rules: bool) -> Value {
    let mut v = json!({"ID": p.id, "Name": p.name, "Description": p.description});
    let o = v.as_object_mut().expect("an object");
    if with_rules {
        o.insert("Rules".into(), json!(p.rules));
    }
    if !p.datacenters.is_empty() {
        o.insert("Datacenters".into(), json!(p.datacenters));
    }
    let h = hash(&json!([p.name, p.description, p.rules, p.datacenters]));
    let o = v.as_object_mut().expect("an object");
    o.insert("Hash".into(), json!(h));
    o.insert("CreateIndex".into(), json!(p.create_index));
    o.insert("ModifyIndex".into(), json!(p.modify_index));
    v
}

fn role_json(acl: &AclTables, r: &AclRole) -> Value {
    let mut v = json!({"ID": r.id, "Name": r.name, "Description": r.description});
    let o = v.as_object_mut().expect("an object");
    let policies = acl.policy_links(&r.policies);
    if !policies.is_empty() {
        o.insert("Policies".into(), json!(policies));
    }
    if !r.service_identities.is_empty() {
        o.insert("ServiceIdentities".into(), json!(r.service_identities));
    }
    if !r.node_identities.is_empty() {
        o.insert("NodeIdentities".into(), json!(r.node_identities));
    }
    let h = hash(&v);
    let o = v.as_object_mut().expect("an object");
    o.insert("Hash".into(), json!(h));
    o.insert("CreateIndex".into(), json!(r.create_index));
    o.insert("ModifyIndex".into(), json!(r.modify_index));
    v
}

/// Runs an ACL write; its own errors (name taken, unknown link) are the caller's: 400.
pub(super) async fn acl_write(st: &HttpState, op: AclOp) -> Result<u64, ApiError> {
    match st.server.write(Command::Acl(op)).await? {
        FsmResponse::Acl(Ok(idx)) => {
            // Written through the leader: the reply reads the object back here.
            st.server.wait_applied(idx).await?;
            Ok(idx)
        }
        FsmResponse::Acl(Err(e)) => Err(ApiError::bad_request(e)),
        other => Err(ApiError::internal(format!("unexpected response {other:?}"))),
    }
}

pub(super) async fn read_body_json(st: &HttpState, body: Body) -> Result<Value, ApiError> {
    let bytes = super::read_default_body(st, body).await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    parse_body(&bytes)
}

fn valid_uuid(s: &str) -> bool {
    uuid::Uuid::parse_str(s).is_ok_and(|u| u.hyphenated().to_string() == s.to_ascii_lowercase())
}

pub(super) fn valid_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 128 && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// `[{ID|Name}]` resolved to IDs against the current tables.
fn links(
    o: &Obj<'_>,
    field: &str,
    kind: &str,
    by_id: impl Fn(&str) -> bool,
    by_name: impl Fn(&str) -> Option<String>,
) -> Result<Vec<Link>, ApiError> {
    let mut out: Vec<Link> = Vec::new();
    for item in o.list(field)? {
        let l = Obj::new(item, "link")?;
        let id = l.str("ID")?;
        let name = l.str("Name")?;
        let id = if !id.is_empty() {
            if !by_id(&id) {
                return Err(ApiError::bad_request(format!("No such ACL {kind} with ID {id:?}")));
            }
            id
        } else if !name.is_empty() {
            by_name(&name)
                .ok_or_else(|| ApiError::bad_request(format!("No such ACL {kind} with name {name:?}")))?
        } else {
            return Err(ApiError::bad_request(format!("{field} links need an ID or a Name")));
        };
        if !out.iter().any(|x| x.id == id) {
            out.push(Link { id, name: String::new() });
        }
    }
    Ok(out)
}

fn identities(o: &Obj<'_>) -> Result<(Vec<ServiceIdentity>, Vec<NodeIdentity>), ApiError> {
    let mut services = Vec::new();
    for item in o.list("ServiceIdentities")? {
        let s = Obj::new(item, "ServiceIdentity")?;
        let name = s.str("ServiceName")?;
        if !valid_service_name(&name) {
            return Err(ApiError::bad_request(format!("Service identity {name:?} has an invalid name")));
        }
        services.push(ServiceIdentity { service_name: name, datacenters: s.strings("Datacenters")? });
    }
    let mut nodes = Vec::new();
    for item in o.list("NodeIdentities")? {
        let n = Obj::new(item, "NodeIdentity")?;
        let name = n.str("NodeName")?;
        let dc = n.str("Datacenter")?;
        if name.is_empty() || dc.is_empty() {
            return Err(ApiError::bad_request("Node identities need a NodeName and a Datacenter"));
        }
        nodes.push(NodeIdentity { node_name: name, datacenter: dc });
    }
    Ok((services, nodes))
}

pub(super) fn valid_service_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 256
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// Decodes a token body into a token (`old`: the token being updated).
fn decode_token(acl: &AclTables, v: &Value, old: Option<&AclToken>) -> Result<AclToken, ApiError> {
    let o = Obj::new(v, "ACLToken")?;
    let mut t = old.cloned().unwrap_or_else(AclToken::empty);
    let accessor = o.str("AccessorID")?;
    let secret = o.str("SecretID")?;
    match old {
        Some(old) => {
            if !accessor.is_empty() && accessor != old.accessor_id {
                return Err(ApiError::bad_request("Token AccessorID in URL and payload do not match"));
            }
            if !secret.is_empty() && !crate::state::acl::ct_eq(&secret, &old.secret_id) {
                return Err(ApiError::bad_request("Changing a token's SecretID is not permitted"));
            }
            if o.get("Local").is_some() && o.bool("Local")? != old.local {
                return Err(ApiError::bad_request("Cannot toggle local mode of a token"));
            }
            if o.get("ExpirationTime").is_some() || o.get("ExpirationTTL").is_some() {
                let same = o.get("ExpirationTime").and_then(Value::as_str).map(parse_time).transpose()?
                    == Some(old.expiration_time);
                if !same || o.get("ExpirationTTL").is_some() {
                    return Err(ApiError::bad_request("Cannot change expiration time of a token"));
                }
            }
        }
        None => {
            if !accessor.is_empty() && !valid_uuid(&accessor) {
                return Err(ApiError::bad_request(format!("Invalid Accessor ID {accessor:?}: not a UUID")));
            }
            if !secret.is_empty() && !valid_uuid(&secret) {
                return Err(ApiError::bad_request("Invalid Secret ID: not a UUID"));
            }
            t.accessor_id = if accessor.is_empty() { uuid::Uuid::new_v4().to_string() } else { accessor };
            t.secret_id = if secret.is_empty() { uuid::Uuid::new_v4().to_string() } else { secret };
            t.local = o.bool("Local")?;
            t.create_time = now_rfc3339();
            let ttl = o.duration("ExpirationTTL")?;
            let at = o.get("ExpirationTime").and_then(Value::as_str).map(parse_time).transpose()?;
            let now = crate::acl::now_unix();
            t.expiration_time = match (ttl, at) {
                (Some(_), Some(_)) => {
                    return Err(ApiError::bad_request(
                        "Expiration TTL and Expiration Time cannot both be set",
                    ));
                }
                (Some(ttl), None) => {
                    if ttl < Duration::from_secs(60) || ttl > Duration::from_secs(24 * 3600) {
                        return Err(ApiError::bad_request(format!(
                            "Token Expiration TTL '{}' should be between 1m0s and 24h0m0s",
                            super::decode::go_duration(ttl)
                        )));
                    }
                    now + ttl.as_secs()
                }
                (None, Some(at)) => {
                    if at <= now {
                        return Err(ApiError::bad_request("ExpirationTime cannot be in the past"));
                    }
                    at
                }
                (None, None) => 0,
            };
        }
    }
    if o.get("Description").is_some() || old.is_none() {
        t.description = o.str("Description")?;
    }
    let has_links =
        ["Policies", "Roles", "ServiceIdentities", "NodeIdentities"].iter().any(|f| o.get(f).is_some());
    if old.is_none() || has_links {
        t.policies = links(
            &o,
            "Policies",
            "policy",
            |id| acl.policies.contains_key(id),
            |n| acl.policy_by_name(n).map(|p| p.id.clone()),
        )?;
        t.roles = links(
            &o,
            "Roles",
            "role",
            |id| acl.roles.contains_key(id),
            |n| acl.role_by_name(n).map(|r| r.id.clone()),
        )?;
        (t.service_identities, t.node_identities) = identities(&o)?;
    }
    Ok(t)
}

fn parse_time(s: &str) -> Result<u64, ApiError> {
    humantime::parse_rfc3339_weak(s)
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_secs())
        .ok_or_else(|| ApiError::bad_request(format!("Invalid ExpirationTime {s:?}: not an RFC 3339 time")))
}

/// A blocking read of one ACL object (`None`: 404 `ACL not found`), indexed by `tables[0]`.
pub(super) async fn acl_read_one(
    st: &HttpState,
    c: &Caller,
    q: Option<String>,
    tables: &[Table],
    f: impl Fn(&crate::state::Store) -> Option<Value>,
) -> ApiResult {
    read_guard(st, c)?;
    let p = Params::parse(q.as_deref());
    let opts = p.query_options()?;
    let (v, meta) = st
        .server
        .query(&opts, tables, |s| {
            let i = s.index(tables[0]);
            (f(s), i, i)
        })
        .await?;
    match v {
        Some(v) => json(&p, StatusCode::OK, Some(&meta), &v),
        None => Err(ApiError::not_found("ACL not found")),
    }
}

/// A delete (`acl:write`): Consul answers `true`.
pub(super) async fn acl_delete(st: &HttpState, c: &Caller, q: Option<String>, op: AclOp) -> ApiResult {
    write_guard(st, c).await?;
    let p = Params::parse(q.as_deref());
    acl_write(st, op).await?;
    json(&p, StatusCode::OK, None, &true)
}

/// A blocking list of ACL objects, indexed by `tables[0]`.
pub(super) async fn acl_list(
    st: &HttpState,
    c: &Caller,
    q: Option<String>,
    tables: &[Table],
    f: impl Fn(&crate::state::Store) -> Vec<Value>,
) -> ApiResult {
    read_guard(st, c)?;
    let p = Params::parse(q.as_deref());
    let opts = p.query_options()?;
    let (list, meta) = st
        .server
        .query(&opts, tables, |s| {
            let i = s.index(tables[0]);
            (f(s), i, i)
        })
        .await?;
    json(&p, StatusCode::OK, Some(&meta), &list)
}

/// The object just written, read back (with the table's index) for the reply.
pub(super) fn answer_written(
    st: &HttpState,
    p: &Params,
    table: Table,
    f: impl Fn(&crate::state::Store) -> Option<Value>,
) -> ApiResult {
    let (v, idx) = st.server.state().read(|s| (f(s), s.index(table)));
    let v = v.ok_or_else(|| ApiError::internal("Failed to read the object after the write"))?;
    json(p, StatusCode::OK, Some(&st.server.meta(idx, crate::server::Consistency::Default)), &v)
}

pub(super) fn acl_tables(st: &HttpState) -> AclTables {
    st.server.state().read(|s| s.acl.clone())
}

pub(super) async fn answer_token(st: &HttpState, p: &Params, accessor: &str, secret: bool) -> ApiResult {
    answer_written(st, p, Table::AclTokens, |s| {
        s.acl.tokens.get(accessor).map(|t| token_json(&s.acl, t, secret))
    })
}

fn reset_index(st: &HttpState) -> Result<Option<u64>, ApiError> {
    let Some(dir) = st.agent.data_dir.as_ref() else { return Ok(None) };
    let path = dir.join("acl-bootstrap-reset");
    match std::fs::read_to_string(&path) {
        Ok(text) => text.trim().parse::<u64>().map(Some).map_err(|_| {
            ApiError::bad_request(format!("{}: expected the reset index (a number)", path.display()))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(ApiError::internal(format!("reading {}: {e}", path.display()))),
    }
}

async fn bootstrap(State(st): State<HttpState>, RawQuery(q): RawQuery) -> ApiResult {
    enabled(&st)?;
    let p = Params::parse(q.as_deref());
    let reset = reset_index(&st)?;
    let token = AclToken {
        accessor_id: uuid::Uuid::new_v4().to_string(),
        secret_id: uuid::Uuid::new_v4().to_string(),
        description: "Bootstrap Token (Global Management)".into(),
        policies: vec![Link { id: MANAGEMENT_POLICY_ID.into(), name: String::new() }],
        create_time: now_rfc3339(),
        ..AclToken::empty()
    };
    let accessor = token.accessor_id.clone();
    // Beyond Consul: `?revoke-management` with a reset also deletes the earlier management
    // tokens. It needs the reset file, so it proves access to the server's data dir too.
    let revoke = p.flag("revoke-management");
    if revoke && reset.is_none() {
        return Err(ApiError::bad_request(
            "revoke-management is only allowed with a reset: write the reset index into \
             <data_dir>/acl-bootstrap-reset on this server first",
        ));
    }
    let before = st.server.state().read(|s| s.acl.management_tokens().len());
    let op = AclOp::Bootstrap { token, reset_index: reset, revoke_management: revoke };
    match st.server.write(Command::Acl(op)).await? {
        FsmResponse::Acl(Ok(idx)) => st.server.wait_applied(idx).await?,
        FsmResponse::Acl(Err(e)) => {
            return Err(ApiError {
                status: StatusCode::FORBIDDEN,
                message: format!("Permission denied: {e}"),
            });
        }
        other => return Err(ApiError::internal(format!("unexpected response {other:?}"))),
    }
    if reset.is_some()
        && let Some(dir) = st.agent.data_dir.as_ref()
    {
        let _ = std::fs::remove_file(dir.join("acl-bootstrap-reset"));
    }
    tracing::info!(accessor = %accessor, revoked_earlier = revoke, "acl: bootstrapped a management token");
    let (v, idx) = st.server.state().read(|s| {
        let v = s.acl.tokens.get(&accessor).map(|t| {
            let mut v = token_json(&s.acl, t, true);
            v["ID"] = json!(t.secret_id);
            v
        });
        (v, s.index(Table::AclTokens))
    });
    let mut v = v.ok_or_else(|| ApiError::internal("Failed to read token after bootstrap"))?;
    if revoke {
        v["RevokedManagementTokens"] = json!(before);
    }
    json(&p, StatusCode::OK, Some(&st.server.meta(idx, crate::server::Consistency::Default)), &v)
}

async fn token_create(
    State(st): State<HttpState>,
    c: Caller,
    RawQuery(q): RawQuery,
    body: Body,
) -> ApiResult {
    write_guard(&st, &c).await?;
    let p = Params::parse(q.as_deref());
    let v = read_body_json(&st, body).await?;
    let t = decode_token(&acl_tables(&st), &v, None)?;
    let accessor = t.accessor_id.clone();
    acl_write(&st, AclOp::TokenSet { token: t, create: true }).await?;
    answer_token(&st, &p, &accessor, true).await
}

async fn token_self(State(st): State<HttpState>, c: Caller, RawQuery(q): RawQuery) -> ApiResult {
    enabled(&st)?;
    let p = Params::parse(q.as_deref());
    let accessor = c.accessor_id().to_owned();
    let (v, idx) = st.server.state().read(|s| {
        (s.acl.tokens.get(&accessor).map(|t| token_json(&s.acl, t, true)), s.index(Table::AclTokens))
    });
    let v = v.ok_or_else(|| ApiError { status: StatusCode::FORBIDDEN, message: "ACL not found".into() })?;
    json(&p, StatusCode::OK, Some(&st.server.meta(idx, crate::server::Consistency::Default)), &v)
}

async fn token_read(
    State(st): State<HttpState>,
    c: Caller,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult {
    let secret = c.allows(Resource::Acl, "", Access::Write);
    acl_read_one(&st, &c, q, &ACL_READ_TABLES, |s| {
        s.acl.tokens.get(&id).map(|t| token_json(&s.acl, t, secret))
    })
    .await
}

async fn token_update(
    State(st): State<HttpState>,
    c: Caller,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    body: Body,
) -> ApiResult {
    write_guard(&st, &c).await?;
    let p = Params::parse(q.as_deref());
    let v = read_body_json(&st, body).await?;
    let acl = acl_tables(&st);
    let Some(old) = acl.tokens.get(&id) else {
        return Err(ApiError::bad_request(format!("Cannot find token {id:?}")));
    };
    let t = decode_token(&acl, &v, Some(old))?;
    acl_write(&st, AclOp::TokenSet { token: t, create: false }).await?;
    answer_token(&st, &p, &id, true).await
}

async fn token_clone(
    State(st): State<HttpState>,
    c: Caller,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    body: Body,
) -> ApiResult {
    write_guard(&st, &c).await?;
    let p = Params::parse(q.as_deref());
    let v = read_body_json(&st, body).await?;
    let o = Obj::new(&v, "ACLToken")?;
    let acl = acl_tables(&st);
    let Some(old) = acl.tokens.get(&id) else {
        return Err(ApiError::bad_request(format!("Cannot find token {id:?} to clone")));
    };
    if old.accessor_id == ANONYMOUS_ACCESSOR_ID {
        return Err(ApiError::bad_request("Cannot clone the anonymous token"));
    }
    let mut t = old.clone();
    t.accessor_id = uuid::Uuid::new_v4().to_string();
    t.secret_id = uuid::Uuid::new_v4().to_string();
    t.create_index = 0;
    t.create_time = now_rfc3339();
    if o.get("Description").is_some() {
        t.description = o.str("Description")?;
    }
    let accessor = t.accessor_id.clone();
    acl_write(&st, AclOp::TokenSet { token: t, create: true }).await?;
    answer_token(&st, &p, &accessor, true).await
}

async fn token_delete(
    State(st): State<HttpState>,
    c: Caller,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult {
    acl_delete(&st, &c, q, AclOp::TokenDelete(vec![id])).await
}

async fn token_list(State(st): State<HttpState>, c: Caller, RawQuery(q): RawQuery) -> ApiResult {
    read_guard(&st, &c)?;
    let p = Params::parse(q.as_deref());
    let opts = p.query_options()?;
    let secret = c.allows(Resource::Acl, "", Access::Write);
    let (policy, role, method, service) = (
        p.get("policy").map(str::to_owned),
        p.get("role").map(str::to_owned),
        p.get("authmethod").map(str::to_owned),
        p.get("servicename").map(str::to_owned),
    );
    let (list, meta) = st
        .server
        .query(&opts, &[Table::AclTokens, Table::AclPolicies, Table::AclRoles], |s| {
            let list: Vec<Value> = s
                .acl
                .tokens
                .values()
                .filter(|t| policy.as_ref().is_none_or(|id| t.policies.iter().any(|l| &l.id == id)))
                .filter(|t| role.as_ref().is_none_or(|id| t.roles.iter().any(|l| &l.id == id)))
                .filter(|t| method.as_ref().is_none_or(|m| &t.auth_method == m))
                .filter(|t| {
                    service.as_ref().is_none_or(|n| t.service_identities.iter().any(|i| &i.service_name == n))
                })
                .map(|t| {
                    let mut v = token_json(&s.acl, t, secret);
                    v["Legacy"] = json!(false);
                    v
                })
                .collect();
            let i = s.index(Table::AclTokens);
            (list, i, i)
        })
        .await?;
    json(&p, StatusCode::OK, Some(&meta), &list)
}

fn decode_policy(acl: &AclTables, v: &Value, old: Option<&AclPolicy>) -> Result<AclPolicy, ApiError> {
    let o = Obj::new(v, "ACLPolicy")?;
    let mut pol = old.cloned().unwrap_or(AclPolicy {
        id: uuid::Uuid::new_v4().to_string(),
        name: String::new(),
        description: String::new(),
        rules: String::new(),
        datacenters: Vec::new(),
        create_index: 0,
        modify_index: 0,
    });
    if let Some(old) = old {
        let id = o.str("ID")?;
        if !id.is_empty() && id != old.id {
            return Err(ApiError::bad_request("Policy ID in URL and payload do not match"));
        }
    } else if !o.str("ID")?.is_empty() {
        return Err(ApiError::bad_request("Cannot specify the ID when creating a new policy"));
    }
    if o.get("Name").is_some() || old.is_none() {
        pol.name = o.str("Name")?;
    }
    if !valid_name(&pol.name) {
        return Err(ApiError::bad_request(
            "Invalid Policy: invalid Name. Only alphanumeric characters, '-' and '_' are allowed",
        ));
    }
    if o.get("Description").is_some() {
        pol.description = o.str("Description")?;
    }
    if o.get("Rules").is_some() || old.is_none() {
        pol.rules = o.str("Rules")?;
    }
    if o.get("Datacenters").is_some() {
        pol.datacenters = o.strings("Datacenters")?;
    }
    if pol.id != MANAGEMENT_POLICY_ID {
        Rules::parse(&pol.rules)
            .map_err(|e| ApiError::bad_request(format!("Failed to parse policy: {e}")))?;
    }
    if let Some(other) = acl.policy_by_name(&pol.name).filter(|o| o.id != pol.id) {
        return Err(ApiError::bad_request(format!(
            "Invalid Policy: A Policy with Name {:?} already exists",
            other.name
        )));
    }
    Ok(pol)
}

async fn answer_policy(st: &HttpState, p: &Params, id: &str) -> ApiResult {
    answer_written(st, p, Table::AclPolicies, |s| s.acl.policies.get(id).map(|p| policy_json(p, true)))
}

async fn policy_create(
    State(st): State<HttpState>,
    c: Caller,
    RawQuery(q): RawQuery,
    body: Body,
) -> ApiResult {
    write_guard(&st, &c).await?;
    let p = Params::parse(q.as_deref());
    let v = read_body_json(&st, body).await?;
    let pol = decode_policy(&acl_tables(&st), &v, None)?;
    let id = pol.id.clone();
    acl_write(&st, AclOp::PolicySet(pol)).await?;
    answer_policy(&st, &p, &id).await
}

async fn policy_update(
    State(st): State<HttpState>,
    c: Caller,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    body: Body,
) -> ApiResult {
    write_guard(&st, &c).await?;
    let p = Params::parse(q.as_deref());
    let v = read_body_json(&st, body).await?;
    let acl = acl_tables(&st);
    let Some(old) = acl.policies.get(&id) else {
        return Err(ApiError::bad_request(format!("Cannot find policy {id:?}")));
    };
    let pol = decode_policy(&acl, &v, Some(old))?;
    acl_write(&st, AclOp::PolicySet(pol)).await?;
    answer_policy(&st, &p, &id).await
}

async fn policy_read_one(
    st: &HttpState,
    c: &Caller,
    q: Option<String>,
    pick: impl Fn(&AclTables) -> Option<&AclPolicy>,
) -> ApiResult {
    acl_read_one(st, c, q, &[Table::AclPolicies], |s| pick(&s.acl).map(|p| policy_json(p, true))).await
}

async fn policy_read(
    State(st): State<HttpState>,
    c: Caller,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult {
    policy_read_one(&st, &c, q, |a| a.policies.get(&id)).await
}

async fn policy_read_by_name(
    State(st): State<HttpState>,
    c: Caller,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult {
    policy_read_one(&st, &c, q, |a| a.policy_by_name(&name)).await
}

async fn policy_delete(
    State(st): State<HttpState>,
    c: Caller,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult {
    acl_delete(&st, &c, q, AclOp::PolicyDelete(id)).await
}

async fn policy_list(State(st): State<HttpState>, c: Caller, RawQuery(q): RawQuery) -> ApiResult {
    acl_list(&st, &c, q, &[Table::AclPolicies], |s| {
        s.acl.policies.values().map(|p| policy_json(p, false)).collect()
    })
    .await
}

fn decode_role(acl: &AclTables, v: &Value, old: Option<&AclRole>) -> Result<AclRole, ApiError> {
    let o = Obj::new(v, "ACLRole")?;
    let mut r = old.cloned().unwrap_or(AclRole {
        id: uuid::Uuid::new_v4().to_string(),
        name: String::new(),
        description: String::new(),
        policies: Vec::new(),
        service_identities: Vec::new(),
        node_identities: Vec::new(),
        create_index: 0,
        modify_index: 0,
    });
    if old.is_none() && !o.str("ID")?.is_empty() {
        return Err(ApiError::bad_request("Cannot specify the ID when creating a new role"));
    }
    if o.get("Name").is_some() || old.is_none() {
        r.name = o.str("Name")?;
    }
    if !valid_name(&r.name) {
        return Err(ApiError::bad_request(
            "Invalid Role: invalid Name. Only alphanumeric characters, '-' and '_' are allowed",
        ));
    }
    if o.get("Description").is_some() {
        r.description = o.str("Description")?;
    }
    let has_links = ["Policies", "ServiceIdentities", "NodeIdentities"].iter().any(|f| o.get(f).is_some());
    if old.is_none() || has_links {
        r.policies = links(
            &o,
            "Policies",
            "policy",
            |id| acl.policies.contains_key(id),
            |n| acl.policy_by_name(n).map(|p| p.id.clone()),
        )?;
        (r.service_identities, r.node_identities) = identities(&o)?;
    }
    if let Some(other) = acl.role_by_name(&r.name).filter(|o| o.id != r.id) {
        return Err(ApiError::bad_request(format!(
            "Invalid Role: A Role with Name {:?} already exists",
            other.name
        )));
    }
    Ok(r)
}

async fn answer_role(st: &HttpState, p: &Params, id: &str) -> ApiResult {
    answer_written(st, p, Table::AclRoles, |s| s.acl.roles.get(id).map(|r| role_json(&s.acl, r)))
}

async fn role_create(State(st): State<HttpState>, c: Caller, RawQuery(q): RawQuery, body: Body) -> ApiResult {
    write_guard(&st, &c).await?;
    let p = Params::parse(q.as_deref());
    let v = read_body_json(&st, body).await?;
    let r = decode_role(&acl_tables(&st), &v, None)?;
    let id = r.id.clone();
    acl_write(&st, AclOp::RoleSet(r)).await?;
    answer_role(&st, &p, &id).await
}

async fn role_update(
    State(st): State<HttpState>,
    c: Caller,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    body: Body,
) -> ApiResult {
    write_guard(&st, &c).await?;
    let p = Params::parse(q.as_deref());
    let v = read_body_json(&st, body).await?;
    let acl = acl_tables(&st);
    let Some(old) = acl.roles.get(&id) else {
        return Err(ApiError::bad_request(format!("Cannot find role {id:?}")));
    };
    let r = decode_role(&acl, &v, Some(old))?;
    acl_write(&st, AclOp::RoleSet(r)).await?;
    answer_role(&st, &p, &id).await
}

async fn role_read_one(
    st: &HttpState,
    c: &Caller,
    q: Option<String>,
    pick: impl Fn(&AclTables) -> Option<&AclRole>,
) -> ApiResult {
    acl_read_one(st, c, q, &[Table::AclRoles, Table::AclPolicies], |s| {
        pick(&s.acl).map(|r| role_json(&s.acl, r))
    })
    .await
}

async fn role_read(
    State(st): State<HttpState>,
    c: Caller,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult {
    role_read_one(&st, &c, q, |a| a.roles.get(&id)).await
}

async fn role_read_by_name(
    State(st): State<HttpState>,
    c: Caller,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult {
    role_read_one(&st, &c, q, |a| a.role_by_name(&name)).await
}

async fn role_delete(
    State(st): State<HttpState>,
    c: Caller,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult {
    acl_delete(&st, &c, q, AclOp::RoleDelete(id)).await
}

async fn role_list(State(st): State<HttpState>, c: Caller, RawQuery(q): RawQuery) -> ApiResult {
    acl_list(&st, &c, q, &[Table::AclRoles, Table::AclPolicies], |s| {
        s.acl.roles.values().map(|r| role_json(&s.acl, r)).collect()
    })
    .await
}

/// `?accessor=ID` (beyond Consul, for `sekisho acl explain`): the identity of another token,
/// for a caller with `acl:read`. The token is looked up by AccessorID and resolved as if it
/// had made the request itself.
async fn identity_of_accessor(
    st: &HttpState,
    c: &Caller,
    p: &Params,
    accessor: &str,
) -> Result<std::sync::Arc<crate::acl::Identity>, ApiError> {
    read_guard(st, c)?;
    let opts = p.query_options()?;
    let (secret, _) = st
        .server
        .query(&opts, &[Table::AclTokens], |s| {
            let i = s.index(Table::AclTokens);
            (s.acl.tokens.get(accessor).map(|t| t.secret_id.clone()), i, i)
        })
        .await?;
    let Some(secret) = secret else {
        return Err(ApiError::not_found(format!("No token with AccessorID '{accessor}'")));
    };
    Ok(st.acl.resolve(Some(&secret)).await?)
}

/// `POST /v1/internal/acl/authorize`: `[{Resource, Access, Segment?}]`, answered with each
/// entry plus `Allow` (the UI's probe). Beyond Consul, each answer also carries `Reason`
/// (the deciding rule and policy, or the default policy) and, when denied, `Suggestion`.
async fn authorize(State(st): State<HttpState>, c: Caller, RawQuery(q): RawQuery, body: Body) -> ApiResult {
    let p = Params::parse(q.as_deref());
    let c = match p.get("accessor").filter(|a| !a.is_empty()) {
        Some(accessor) => Caller::with_identity(identity_of_accessor(&st, &c, &p, accessor).await?, &c),
        None => c,
    };
    let v = read_body_json(&st, body).await?;
    let Value::Array(items) = v else {
        return Err(ApiError::bad_request(
            "Request decode failed: expected a JSON array of {Resource, Access, Segment}",
        ));
    };
    if items.len() > 64 {
        return Err(ApiError::bad_request("Refusing to authorize more than 64 requests at once"));
    }
    let mut out = Vec::with_capacity(items.len());
    for item in &items {
        let o = Obj::new(item, "AuthorizationRequest")?;
        let resource = o.str("Resource")?;
        let segment = o.str("Segment")?;
        let access = o.str("Access")?;
        let (Some((res, _)), Some(acc)) = (Resource::from_word(&resource), Access::parse(&access)) else {
            return Err(ApiError::bad_request(format!(
                "Invalid authorization request: resource {resource:?}, access {access:?}"
            )));
        };
        let d = c.0.decide(res, &segment, acc);
        let allowed = c.0.unrestricted || d.allowed;
        let mut e = json!({"Resource": resource, "Segment": segment, "Access": access, "Allow": allowed});
        if !c.0.unrestricted {
            e["Reason"] = json!(d.explain());
            if let Some(s) = d.suggestion() {
                e["Suggestion"] = json!(s);
            }
        }
        out.push(e);
    }
    json(&p, StatusCode::OK, None, &out)
}
