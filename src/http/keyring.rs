//! `/v1/operator/keyring`: list, install, use and remove gossip encryption keys across the
//! LAN pool (Consul's `consul keyring`). GET lists, POST installs, PUT makes a key primary,
//! DELETE removes one; the body of the last three is `{"Key": "<base64>"}`.
//!
//! A member that refuses or does not answer fails the request with 500 and Consul's
//! multierror text (`dc1 (LAN) error: 1/3 nodes reported failure`, then `node: why`), as
//! Consul does; a key that does not decode is a 400 and nothing is asked of the pool. Only
//! the LAN pool exists today, so the list has one entry (`"WAN": false`).

use axum::Router;
use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::IntoResponse as _;
use axum::routing::get;
use serde_json::{Value, json as j};

use super::HttpState;
use super::caller::Caller;
use super::decode::{Obj, parse_body};
use super::error::{ApiError, ApiResult};
use super::query::{Params, json};
use crate::gossip::{self, GossipError, KeyringOp, KeyringResponse};
use sekisho_acl::{Access, Resource};

pub(super) fn routes() -> Router<HttpState> {
    Router::new().route("/v1/operator/keyring", get(list).post(install).put(use_key).delete(remove))
}

/// `?relay-factor=` (0 to 5, accepted and ignored: answers come back directly) and
/// `?local-only` (GET only).
fn options(p: &Params, listing: bool) -> Result<bool, ApiError> {
    if let Some(raw) = p.get("relay-factor").filter(|v| !v.is_empty()) {
        let n: i64 =
            raw.parse().map_err(|e| ApiError::bad_request(format!("Error parsing relay factor: {e}")))?;
        if !(0..=5).contains(&n) {
            return Err(ApiError::bad_request("Invalid relay-factor: Relay factor must be in range: [0, 5]"));
        }
    }
    let local_only = match p.get("local-only") {
        None => false,
        Some("") => true,
        Some(v) => parse_go_bool(v).ok_or_else(|| {
            ApiError::bad_request(format!("Error parsing local-only: invalid syntax: {v:?}"))
        })?,
    };
    if local_only && !listing {
        return Err(ApiError::bad_request("local-only can only be set for GET requests"));
    }
    Ok(local_only)
}

/// Go's `strconv.ParseBool`.
fn parse_go_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

fn gossip_error(e: GossipError) -> ApiError {
    ApiError::internal(e.to_string())
}

fn pool_name(st: &HttpState) -> String {
    format!("{} (LAN)", st.agent.datacenter)
}

/// The pool's result, or Consul's 500 when a member failed.
fn checked(st: &HttpState, r: &KeyringResponse) -> Result<(), ApiError> {
    match r.error_text(&pool_name(st)) {
        Some(text) => Err(ApiError::internal(text)),
        None => Ok(()),
    }
}

/// One pool in Consul's `KeyringResponse` shape.
fn pool_json(st: &HttpState, r: &KeyringResponse) -> Value {
    j!({
        "WAN": false,
        "Datacenter": st.agent.datacenter,
        "Segment": "",
        "Messages": r.messages,
        "Keys": r.keys,
        "PrimaryKeys": r.primary_keys,
        "NumNodes": r.num_nodes,
    })
}

async fn list(State(st): State<HttpState>, c: Caller, RawQuery(q): RawQuery) -> ApiResult {
    c.require(Resource::Keyring, "", Access::Read)?;
    let p = Params::parse(q.as_deref());
    let local_only = options(&p, true)?;
    let r =
        if local_only { st.gossip.keyring_local().await } else { st.gossip.keyring(KeyringOp::List).await };
    let r = r.map_err(gossip_error)?;
    checked(&st, &r)?;
    json(&p, StatusCode::OK, None, &[pool_json(&st, &r)])
}

async fn install(State(st): State<HttpState>, c: Caller, RawQuery(q): RawQuery, body: Body) -> ApiResult {
    c.require(Resource::Keyring, "", Access::Write)?;
    change(st, q, body, KeyringOp::Install).await
}

async fn use_key(State(st): State<HttpState>, c: Caller, RawQuery(q): RawQuery, body: Body) -> ApiResult {
    c.require(Resource::Keyring, "", Access::Write)?;
    change(st, q, body, KeyringOp::Use).await
}

async fn remove(State(st): State<HttpState>, c: Caller, RawQuery(q): RawQuery, body: Body) -> ApiResult {
    c.require(Resource::Keyring, "", Access::Write)?;
    change(st, q, body, KeyringOp::Remove).await
}

/// Decodes `{"Key"}`, runs the change on every member and answers 200 with an empty body.
async fn change(
    st: HttpState,
    q: Option<String>,
    body: Body,
    op: impl FnOnce(Vec<u8>) -> KeyringOp,
) -> ApiResult {
    let p = Params::parse(q.as_deref());
    options(&p, false)?;
    let body = super::read_default_body(&st, body).await?;
    let v = parse_body(&body)?;
    let encoded = if v.is_null() { String::new() } else { Obj::new(&v, "KeyringRequest")?.str("Key")? };
    let key = gossip::decode_key(&encoded).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let r = st.gossip.keyring(op(key)).await.map_err(gossip_error)?;
    checked(&st, &r)?;
    Ok(StatusCode::OK.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relay_factor_and_local_only_are_checked_like_consul() {
        let opts = |q: &str, listing| options(&Params::parse(Some(q)), listing);
        assert_eq!(opts("relay-factor=3", false), Ok(false));
        assert_eq!(opts("local-only", true), Ok(true));
        assert_eq!(opts("local-only=false", true), Ok(false));
        assert_eq!(opts("local-only=1&relay-factor=0", true), Ok(true));
        for (q, listing, want) in [
            ("relay-factor=x", true, "Error parsing relay factor"),
            ("relay-factor=6", true, "must be in range: [0, 5]"),
            ("local-only=maybe", true, "Error parsing local-only"),
            ("local-only=true", false, "only be set for GET"),
        ] {
            let e = opts(q, listing).expect_err(q);
            assert_eq!(e.status, StatusCode::BAD_REQUEST, "{q}");
            assert!(e.message.contains(want), "{q}: {}", e.message);
        }
    }
}
