//! `/v1/acl/auth-method*`, `/v1/acl/binding-rule*`, `/v1/acl/login` and `/v1/acl/logout`
//! in Consul's JSON shapes.
//!
//! ```text
//!  POST /v1/acl/login {AuthMethod, BearerToken, Meta}
//!    ─► auth method ─► JwtConfig (Config, JWKSFile read here) ─► verify(JWT, now) ─► claims
//!    ─► each binding rule of the method: Selector over {value, list} ─► BindName interpolated
//!         service ─► ServiceIdentities   node ─► NodeIdentities (this datacenter)
//!         role / policy ─► linked by name, skipped when missing
//!    ─► nothing bound: 403 ─► else TokenSet{AuthMethod, Local unless global, now + MaxTokenTTL}
//!  POST /v1/acl/logout (X-Consul-Token) ─► a login token ─► TokenDelete
//! ```
//!
//! Auth-method and binding-rule reads need `acl:read`, writes `acl:write`; login needs no
//! token and logout only the token it deletes. The method's Config is checked when written
//! (a bad PEM or JWKS, an unknown key: 400 naming the key), and so are a rule's Selector and
//! BindName. A bearer token that fails verification is refused with 403 and the reason,
//! which names the claim (`exp`, `aud`, `iss`, ...); Consul answers those with 500.

use std::collections::BTreeMap;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use sekisho_acl::{JwtConfig, VerifiedClaims, interpolate};
use serde_json::{Value, json};

use super::HttpState;
use super::acl::{
    acl_delete, acl_list, acl_read_one, acl_tables, acl_write, answer_token, answer_written, enabled,
    now_rfc3339, read_body_json, valid_name, valid_service_name, write_guard,
};
use super::caller::{Caller, presented_token};
use super::decode::{Obj, go_duration};
use super::error::{ApiError, ApiResult};
use super::query::{Params, json};
use crate::filter::Filter;
use crate::state::Table;
use crate::state::acl::{
    AUTH_METHOD_TYPES, AclAuthMethod, AclBindingRule, AclOp, AclTables, AclToken, BindType, Link,
    NodeIdentity, ServiceIdentity, TokenLocality,
};

/// The bounds Consul puts on an auth method's MaxTokenTTL (when set).
const MIN_TOKEN_TTL: std::time::Duration = std::time::Duration::from_secs(60);
const MAX_TOKEN_TTL: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

pub(super) fn routes() -> Router<HttpState> {
    Router::new()
        .route("/v1/acl/auth-method", put(method_create))
        .route("/v1/acl/auth-method/{name}", get(method_read).put(method_update).delete(method_delete))
        .route("/v1/acl/auth-methods", get(method_list))
        .route("/v1/acl/binding-rule", put(rule_create))
        .route("/v1/acl/binding-rule/{id}", get(rule_read).put(rule_update).delete(rule_delete))
        .route("/v1/acl/binding-rules", get(rule_list))
        .route("/v1/acl/login", post(login))
        .route("/v1/acl/logout", post(logout))
}

fn forbidden(message: impl Into<String>) -> ApiError {
    ApiError { status: StatusCode::FORBIDDEN, message: message.into() }
}

/// An auth method as Consul shows it; the list form leaves out `Config`.
fn method_json(m: &AclAuthMethod, with_config: bool) -> Value {
    let mut v = json!({"Name": m.name, "Type": m.type_, "Description": m.description});
    let o = v.as_object_mut().expect("an object");
    if !m.display_name.is_empty() {
        o.insert("DisplayName".into(), json!(m.display_name));
    }
    if !m.max_token_ttl.is_zero() {
        o.insert("MaxTokenTTL".into(), json!(go_duration(m.max_token_ttl)));
    }
    o.insert("TokenLocality".into(), json!(m.token_locality.as_str()));
    if with_config {
        o.insert("Config".into(), m.config.clone());
    }
    o.insert("CreateIndex".into(), json!(m.create_index));
    o.insert("ModifyIndex".into(), json!(m.modify_index));
    v
}

fn rule_json(r: &AclBindingRule) -> Value {
    json!({
        "ID": r.id,
        "Description": r.description,
        "AuthMethod": r.auth_method,
        "Selector": r.selector,
        "BindType": r.bind_type.as_str(),
        "BindName": r.bind_name,
        "CreateIndex": r.create_index,
        "ModifyIndex": r.modify_index,
    })
}

/// The method's Config parsed and checked; a `JWKSFile` is read here, on the server that
/// handles the request. The error text names the Config key.
async fn jwt_config(config: &Value) -> Result<JwtConfig, String> {
    let text = match JwtConfig::jwks_file_path(config).map_err(|e| e.to_string())? {
        Some(path) => Some(
            tokio::fs::read_to_string(&path).await.map_err(|e| format!("JWKSFile: reading {path:?}: {e}"))?,
        ),
        None => None,
    };
    JwtConfig::from_json_with_jwks_file(config, text.as_deref()).map_err(|e| e.to_string())
}

/// Decodes an auth-method body (`url_name`: the name in the URL, for an update). Like
/// Consul, an update replaces the whole method.
async fn decode_method(v: &Value, url_name: Option<&str>) -> Result<AclAuthMethod, ApiError> {
    let bad = |m: String| ApiError::bad_request(format!("Invalid Auth Method: {m}"));
    let o = Obj::new(v, "ACLAuthMethod")?;
    let mut name = o.str("Name")?;
    if let Some(url) = url_name {
        if !name.is_empty() && name != url {
            return Err(ApiError::bad_request("Auth Method Name in URL and payload do not match"));
        }
        name = url.to_owned();
    }
    if name.is_empty() {
        return Err(bad("no Name is set".into()));
    }
    if !valid_name(&name) {
        return Err(bad("invalid Name. Only alphanumeric characters, '-' and '_' are allowed".into()));
    }
    let type_ = o.str("Type")?;
    if type_.is_empty() {
        return Err(bad("Type is required".into()));
    }
    if !AUTH_METHOD_TYPES.contains(&type_.as_str()) {
        return Err(bad(format!(
            "Type should be one of: {AUTH_METHOD_TYPES:?} ({type_:?} is not supported)"
        )));
    }
    let display_name = o.str("DisplayName")?;
    if display_name.len() > 256 {
        return Err(bad("DisplayName exceeded maximum length".into()));
    }
    let max_token_ttl = o.duration("MaxTokenTTL")?.unwrap_or_default();
    if !max_token_ttl.is_zero() && max_token_ttl < MIN_TOKEN_TTL {
        return Err(bad(format!("MaxTokenTTL {} cannot be less than 1m0s", go_duration(max_token_ttl))));
    }
    if max_token_ttl > MAX_TOKEN_TTL {
        return Err(bad(format!("MaxTokenTTL {} cannot be more than 24h0m0s", go_duration(max_token_ttl))));
    }
    let token_locality = match o.str("TokenLocality")?.as_str() {
        "" | "local" => TokenLocality::Local,
        "global" => TokenLocality::Global,
        _ => return Err(bad("TokenLocality should be one of 'local' or 'global'".into())),
    };
    let config = o.get("Config").cloned().unwrap_or(Value::Null);
    jwt_config(&config).await.map_err(|e| bad(format!("invalid Config: {e}")))?;
    Ok(AclAuthMethod {
        name,
        type_,
        display_name,
        description: o.str("Description")?,
        max_token_ttl,
        token_locality,
        config,
        create_index: 0,
        modify_index: 0,
    })
}

fn answer_method(st: &HttpState, p: &Params, name: &str) -> ApiResult {
    answer_written(st, p, Table::AclAuthMethods, |s| {
        s.acl.auth_methods.get(name).map(|m| method_json(m, true))
    })
}

async fn method_create(
    State(st): State<HttpState>,
    c: Caller,
    RawQuery(q): RawQuery,
    body: Body,
) -> ApiResult {
    write_guard(&st, &c).await?;
    let p = Params::parse(q.as_deref());
    let m = decode_method(&read_body_json(&st, body).await?, None).await?;
    let name = m.name.clone();
    acl_write(&st, AclOp::AuthMethodSet(m)).await?;
    answer_method(&st, &p, &name)
}

async fn method_update(
    State(st): State<HttpState>,
    c: Caller,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
    body: Body,
) -> ApiResult {
    write_guard(&st, &c).await?;
    let p = Params::parse(q.as_deref());
    let m = decode_method(&read_body_json(&st, body).await?, Some(&name)).await?;
    if !acl_tables(&st).auth_methods.contains_key(&name) {
        return Err(ApiError::bad_request(format!("Cannot find auth method {name:?}")));
    }
    acl_write(&st, AclOp::AuthMethodSet(m)).await?;
    answer_method(&st, &p, &name)
}

async fn method_read(
    State(st): State<HttpState>,
    c: Caller,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult {
    acl_read_one(&st, &c, q, &[Table::AclAuthMethods], |s| {
        s.acl.auth_methods.get(&name).map(|m| method_json(m, true))
    })
    .await
}

async fn method_delete(
    State(st): State<HttpState>,
    c: Caller,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult {
    acl_delete(&st, &c, q, AclOp::AuthMethodDelete(name)).await
}

async fn method_list(State(st): State<HttpState>, c: Caller, RawQuery(q): RawQuery) -> ApiResult {
    acl_list(&st, &c, q, &[Table::AclAuthMethods], |s| {
        s.acl.auth_methods.values().map(|m| method_json(m, false)).collect()
    })
    .await
}

/// Claims with every attribute the method maps set to `fake`, to check a BindName against
/// (Consul's `validateBindingRuleBindName` does the same).
fn placeholder_claims(config: &Value) -> VerifiedClaims {
    let attributes = |field: &str| -> Vec<String> {
        Obj::new(config, "Config")
            .and_then(|o| o.string_map(field))
            .ok()
            .flatten()
            .map(|m| m.into_values().collect())
            .unwrap_or_default()
    };
    VerifiedClaims {
        value: attributes("ClaimMappings").into_iter().map(|a| (a, "fake".to_owned())).collect(),
        list: attributes("ListClaimMappings").into_iter().map(|a| (a, vec!["fake".to_owned()])).collect(),
    }
}

/// Whether `name` may be bound as `bind_type` (Consul's identity and object name rules).
fn valid_bind_name(bind_type: BindType, name: &str) -> bool {
    match bind_type {
        BindType::Service | BindType::Node => {
            valid_service_name(name) && !name.starts_with(['-', '_']) && !name.ends_with(['-', '_'])
        }
        BindType::Role | BindType::Policy => valid_name(name),
    }
}

/// Decodes a binding-rule body (`old`: the rule being updated, replaced as a whole).
fn decode_rule(acl: &AclTables, v: &Value, old: Option<&AclBindingRule>) -> Result<AclBindingRule, ApiError> {
    let bad = |m: String| ApiError::bad_request(format!("Invalid Binding Rule: {m}"));
    let o = Obj::new(v, "ACLBindingRule")?;
    let id = o.str("ID")?;
    let id = match old {
        Some(old) if !id.is_empty() && id != old.id => {
            return Err(ApiError::bad_request("Binding Rule ID in URL and payload do not match"));
        }
        Some(old) => old.id.clone(),
        None if !id.is_empty() => {
            return Err(ApiError::bad_request("Cannot specify the ID when creating a new binding rule"));
        }
        None => uuid::Uuid::new_v4().to_string(),
    };
    let auth_method = o.str("AuthMethod")?;
    let auth_method = match (auth_method.is_empty(), old) {
        (true, Some(old)) => old.auth_method.clone(),
        (true, None) => return Err(bad("no AuthMethod is set".into())),
        (false, _) => auth_method,
    };
    if old.is_some_and(|old| old.auth_method != auth_method) {
        return Err(bad("the AuthMethod field is immutable".into()));
    }
    let Some(method) = acl.auth_methods.get(&auth_method) else {
        return Err(bad(format!("unknown auth method {auth_method:?}")));
    };
    let selector = o.str("Selector")?;
    if !selector.trim().is_empty() {
        Filter::parse(&selector).map_err(|e| bad(format!("Selector is invalid: {e}")))?;
    }
    let bind_type = match o.str("BindType")?.as_str() {
        "" => return Err(bad("no BindType is set".into())),
        t => BindType::parse(t).ok_or_else(|| {
            bad(format!("unknown BindType {t:?}: should be one of service, node, role or policy"))
        })?,
    };
    let bind_name = o.str("BindName")?;
    if bind_name.is_empty() {
        return Err(bad("no BindName is set".into()));
    }
    let fake = interpolate(&bind_name, &placeholder_claims(&method.config))
        .map_err(|e| bad(format!("invalid BindName: {e}")))?;
    if !valid_bind_name(bind_type, &fake) {
        return Err(bad(format!("invalid BindName {bind_name:?}: not a valid {} name", bind_type.as_str())));
    }
    Ok(AclBindingRule {
        id,
        description: o.str("Description")?,
        auth_method,
        selector,
        bind_type,
        bind_name,
        create_index: 0,
        modify_index: 0,
    })
}

fn answer_rule(st: &HttpState, p: &Params, id: &str) -> ApiResult {
    answer_written(st, p, Table::AclBindingRules, |s| s.acl.binding_rules.get(id).map(rule_json))
}

async fn rule_create(State(st): State<HttpState>, c: Caller, RawQuery(q): RawQuery, body: Body) -> ApiResult {
    write_guard(&st, &c).await?;
    let p = Params::parse(q.as_deref());
    let r = decode_rule(&acl_tables(&st), &read_body_json(&st, body).await?, None)?;
    let id = r.id.clone();
    acl_write(&st, AclOp::BindingRuleSet { rule: r, create: true }).await?;
    answer_rule(&st, &p, &id)
}

async fn rule_update(
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
    let Some(old) = acl.binding_rules.get(&id) else {
        return Err(ApiError::bad_request(format!("Cannot find binding rule {id:?}")));
    };
    let r = decode_rule(&acl, &v, Some(old))?;
    acl_write(&st, AclOp::BindingRuleSet { rule: r, create: false }).await?;
    answer_rule(&st, &p, &id)
}

async fn rule_read(
    State(st): State<HttpState>,
    c: Caller,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult {
    acl_read_one(&st, &c, q, &[Table::AclBindingRules], |s| s.acl.binding_rules.get(&id).map(rule_json)).await
}

async fn rule_delete(
    State(st): State<HttpState>,
    c: Caller,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult {
    acl_delete(&st, &c, q, AclOp::BindingRuleDelete(id)).await
}

async fn rule_list(State(st): State<HttpState>, c: Caller, RawQuery(q): RawQuery) -> ApiResult {
    let method = Params::parse(q.as_deref()).get("authmethod").filter(|m| !m.is_empty()).map(str::to_owned);
    acl_list(&st, &c, q, &[Table::AclBindingRules], |s| match &method {
        Some(m) => s.acl.binding_rules_of(m).map(rule_json).collect(),
        None => s.acl.binding_rules.values().map(rule_json).collect(),
    })
    .await
}

/// What a login's binding rules bind.
#[derive(Debug, Default)]
struct Bindings {
    services: Vec<ServiceIdentity>,
    nodes: Vec<NodeIdentity>,
    roles: Vec<Link>,
    policies: Vec<Link>,
}

impl Bindings {
    fn is_empty(&self) -> bool {
        self.services.is_empty() && self.nodes.is_empty() && self.roles.is_empty() && self.policies.is_empty()
    }
}

/// Evaluates the binding rules of `method` against verified `claims`. Roles and policies
/// that do not exist are skipped, as in Consul; a matching rule whose BindName cannot be
/// computed fails the login.
fn bind(acl: &AclTables, method: &str, claims: &VerifiedClaims, dc: &str) -> Result<Bindings, ApiError> {
    let selectable = claims.as_selectable();
    let mut b = Bindings::default();
    for rule in acl.binding_rules_of(method) {
        if !rule.selector.trim().is_empty() {
            let f = Filter::parse(&rule.selector).map_err(|e| {
                ApiError::internal(format!("binding rule {}: invalid Selector: {e}", rule.id))
            })?;
            if !f.matches(&selectable) {
                continue;
            }
        }
        let name = interpolate(&rule.bind_name, claims).map_err(|e| {
            ApiError::internal(format!("cannot compute the bind name of binding rule {}: {e}", rule.id))
        })?;
        if !valid_bind_name(rule.bind_type, &name) {
            return Err(ApiError::internal(format!("bind name for bind target is invalid: {name:?}")));
        }
        let link = |id: &str| Link { id: id.to_owned(), name: String::new() };
        match rule.bind_type {
            BindType::Service if !b.services.iter().any(|s| s.service_name == name) => {
                b.services.push(ServiceIdentity { service_name: name, datacenters: Vec::new() });
            }
            BindType::Node if !b.nodes.iter().any(|n| n.node_name == name) => {
                b.nodes.push(NodeIdentity { node_name: name, datacenter: dc.to_owned() });
            }
            BindType::Role => {
                if let Some(r) = acl.role_by_name(&name).filter(|r| !b.roles.iter().any(|l| l.id == r.id)) {
                    b.roles.push(link(&r.id));
                }
            }
            BindType::Policy => {
                if let Some(p) =
                    acl.policy_by_name(&name).filter(|p| !b.policies.iter().any(|l| l.id == p.id))
                {
                    b.policies.push(link(&p.id));
                }
            }
            BindType::Service | BindType::Node => {}
        }
    }
    Ok(b)
}

/// The token a login mints: Consul's description, the method's locality and TTL.
fn login_token(method: &AclAuthMethod, meta: &BTreeMap<String, String>, b: Bindings, now: u64) -> AclToken {
    let mut description = "token created via login".to_owned();
    if !meta.is_empty() {
        description.push_str(": ");
        description.push_str(&serde_json::to_string(meta).unwrap_or_default());
    }
    let ttl = method.max_token_ttl;
    AclToken {
        accessor_id: uuid::Uuid::new_v4().to_string(),
        secret_id: uuid::Uuid::new_v4().to_string(),
        description,
        policies: b.policies,
        roles: b.roles,
        service_identities: b.services,
        node_identities: b.nodes,
        local: method.token_locality == TokenLocality::Local,
        auth_method: method.name.clone(),
        expiration_time: if ttl.is_zero() { 0 } else { now + ttl.as_secs() },
        create_time: now_rfc3339(),
        ..AclToken::empty()
    }
}

/// `POST /v1/acl/login`: no ACL needed (a presented token is ignored), the bearer token is
/// the credential.
async fn login(State(st): State<HttpState>, RawQuery(q): RawQuery, body: Body) -> ApiResult {
    enabled(&st)?;
    let p = Params::parse(q.as_deref());
    let v = read_body_json(&st, body).await?;
    let o = Obj::new(&v, "ACLLoginParams")?;
    let name = o.str("AuthMethod")?;
    if name.is_empty() {
        return Err(ApiError::bad_request("Invalid Login request: Missing auth method name"));
    }
    let bearer = o.str("BearerToken")?;
    if bearer.is_empty() {
        return Err(ApiError::bad_request("Invalid Login request: Missing auth bearer token"));
    }
    let meta = o.string_map("Meta")?.unwrap_or_default();
    let acl = acl_tables(&st);
    let Some(method) = acl.auth_methods.get(&name) else {
        return Err(forbidden(format!("ACL not found: auth method {name:?} not found")));
    };
    let cfg = jwt_config(&method.config)
        .await
        .map_err(|e| ApiError::internal(format!("auth method {name:?} has an unusable Config: {e}")))?;
    let now = crate::acl::now_unix();
    let claims = cfg.verify(&bearer, now).map_err(|e| {
        forbidden(format!("Permission denied: auth method {name:?} refused the bearer token: {e}"))
    })?;
    let b = bind(&acl, &name, &claims, &st.agent.datacenter)?;
    if b.is_empty() {
        return Err(forbidden(format!(
            "Permission denied: no binding rule of auth method {name:?} binds anything for this bearer token"
        )));
    }
    let token = login_token(method, &meta, b, now);
    let accessor = token.accessor_id.clone();
    acl_write(&st, AclOp::TokenSet { token, create: true }).await?;
    tracing::info!(accessor = %accessor, method = %name, "acl: login minted a token");
    answer_token(&st, &p, &accessor, true).await
}

/// `POST /v1/acl/logout`: deletes the presented token, which must come from a login.
async fn logout(State(st): State<HttpState>, RawQuery(q): RawQuery, req: Request) -> ApiResult {
    enabled(&st)?;
    let p = Params::parse(q.as_deref());
    let (parts, _) = req.into_parts();
    let not_found = || forbidden("ACL not found");
    let secret = presented_token(&parts).ok_or_else(not_found)?;
    let now = crate::acl::now_unix();
    let token = st.server.state().read(|s| {
        s.acl
            .token_by_secret(&secret)
            .filter(|t| !t.expired(now))
            .map(|t| (t.accessor_id.clone(), t.auth_method.clone()))
    });
    let (accessor, method) = token.ok_or_else(not_found)?;
    if method.is_empty() {
        return Err(forbidden(format!(
            "Permission denied: token with AccessorID '{accessor}' was not created by an auth method (login)"
        )));
    }
    acl_write(&st, AclOp::TokenDelete(vec![accessor])).await?;
    json(&p, StatusCode::OK, None, &true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(pairs: &[(&str, &str)]) -> VerifiedClaims {
        VerifiedClaims {
            value: pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            list: BTreeMap::new(),
        }
    }

    fn rule(id: &str, selector: &str, bind_type: BindType, bind_name: &str) -> AclBindingRule {
        AclBindingRule {
            id: id.into(),
            description: String::new(),
            auth_method: "m".into(),
            selector: selector.into(),
            bind_type,
            bind_name: bind_name.into(),
            create_index: 0,
            modify_index: 0,
        }
    }

    fn tables(rules: Vec<AclBindingRule>) -> AclTables {
        let mut acl = AclTables::default();
        for r in rules {
            acl.binding_rules.insert(r.id.clone(), r);
        }
        acl
    }

    #[test]
    fn rules_bind_what_their_selectors_match_and_skip_missing_roles() {
        let acl = tables(vec![
            rule("1", r#"value.team == "a""#, BindType::Service, "${value.svc}"),
            rule("2", r#"value.team == "b""#, BindType::Service, "other"),
            rule("3", "", BindType::Node, "n-${value.svc}"),
            rule("4", "", BindType::Role, "no-such-role"),
            rule("5", "", BindType::Service, "${value.svc}"),
        ]);
        let b = bind(&acl, "m", &claims(&[("team", "a"), ("svc", "web")]), "dc1").expect("bind");
        let services: Vec<&str> = b.services.iter().map(|s| s.service_name.as_str()).collect();
        assert_eq!(services, ["web"], "once, and not the rule for team b");
        assert_eq!(b.nodes, [NodeIdentity { node_name: "n-web".into(), datacenter: "dc1".into() }]);
        assert!(b.roles.is_empty(), "a role that does not exist is skipped");
    }

    #[test]
    fn a_bind_name_the_claims_cannot_fill_fails_the_login() {
        let acl = tables(vec![rule("1", "", BindType::Service, "${value.missing}")]);
        let e = bind(&acl, "m", &claims(&[]), "dc1").expect_err("no such attribute");
        assert!(e.message.contains("binding rule 1") && e.message.contains("value.missing"), "{e:?}");
        let acl = tables(vec![rule("1", "", BindType::Service, "${value.svc}")]);
        let e = bind(&acl, "m", &claims(&[("svc", "Not Valid")]), "dc1").expect_err("bad name");
        assert!(e.message.contains("bind name for bind target is invalid"), "{e:?}");
    }

    #[test]
    fn the_login_token_carries_method_locality_ttl_and_meta() {
        let mut m = AclAuthMethod {
            name: "m".into(),
            type_: "jwt".into(),
            display_name: String::new(),
            description: String::new(),
            max_token_ttl: std::time::Duration::from_secs(600),
            token_locality: TokenLocality::Local,
            config: Value::Null,
            create_index: 0,
            modify_index: 0,
        };
        let meta: BTreeMap<String, String> = [("pod".to_owned(), "p1".to_owned())].into();
        let t = login_token(&m, &meta, Bindings::default(), 1000);
        assert_eq!(t.description, r#"token created via login: {"pod":"p1"}"#);
        assert_eq!((t.local, t.auth_method.as_str(), t.expiration_time), (true, "m", 1600));
        m.token_locality = TokenLocality::Global;
        m.max_token_ttl = std::time::Duration::ZERO;
        let t = login_token(&m, &BTreeMap::new(), Bindings::default(), 1000);
        assert_eq!(
            (t.description.as_str(), t.local, t.expiration_time),
            ("token created via login", false, 0)
        );
    }

    #[test]
    fn bind_names_are_checked_against_the_mapped_attributes() {
        let config =
            json!({"ClaimMappings": {"service_name": "svc"}, "list_claim_mappings": {"groups": "g"}});
        let fake = placeholder_claims(&config);
        assert_eq!(interpolate("${value.svc}-x", &fake).as_deref(), Ok("fake-x"));
        assert!(interpolate("${value.other}", &fake).is_err());
        assert!(valid_bind_name(BindType::Service, "fake-x"));
        assert!(!valid_bind_name(BindType::Service, "-web"));
        assert!(!valid_bind_name(BindType::Node, "Web"));
        assert!(valid_bind_name(BindType::Role, "Ops_1"));
    }
}
