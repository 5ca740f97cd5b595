//! `/v1/operator/raft/*` and `/v1/operator/autopilot/*`: the Raft configuration, peer
//! removal, leadership transfer, and autopilot's configuration, health and state.

use axum::Router;
use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::IntoResponse as _;
use axum::routing::{delete, get, post};
use serde_json::{Value, json as j};

use super::HttpState;
use super::caller::Caller;
use super::decode::{Obj, go_duration, parse_body};
use super::error::{ApiError, ApiResult};
use super::query::{Params, json};
use crate::server::operator::Peer;
use crate::state::autopilot::AutopilotConfig;
use sekisho_acl::{Access, Resource};

pub(super) fn routes() -> Router<HttpState> {
    Router::new()
        .route("/v1/operator/raft/configuration", get(configuration))
        .route("/v1/operator/raft/peer", delete(remove_peer))
        .route("/v1/operator/raft/transfer-leader", post(transfer_leader))
        .route("/v1/operator/autopilot/configuration", get(get_autopilot).put(put_autopilot))
        .route("/v1/operator/autopilot/health", get(health))
        .route("/v1/operator/autopilot/state", get(state))
}

async fn configuration(State(st): State<HttpState>, c: Caller, RawQuery(q): RawQuery) -> ApiResult {
    c.require(Resource::Operator, "", Access::Read)?;
    let p = Params::parse(q.as_deref());
    let opts = p.query_options()?;
    let cfg = st.server.raft_configuration(opts.consistency).await?;
    let meta = st.server.meta(cfg.index, opts.consistency);
    json(&p, StatusCode::OK, Some(&meta), &cfg)
}

async fn remove_peer(State(st): State<HttpState>, c: Caller, RawQuery(q): RawQuery) -> ApiResult {
    c.require(Resource::Operator, "", Access::Write)?;
    let p = Params::parse(q.as_deref());
    let peer = match (p.get("id"), p.get("address")) {
        (Some(id), _) if !id.is_empty() => Peer::Id(id.to_owned()),
        (_, Some(addr)) if !addr.is_empty() => Peer::Address(addr.to_owned()),
        _ => {
            return Err(ApiError::bad_request(
                "Must specify either ?id with the server's ID or ?address with IP:port of peer to remove",
            ));
        }
    };
    st.server.remove_peer(&peer).await?;
    Ok(StatusCode::OK.into_response())
}

async fn transfer_leader(State(st): State<HttpState>, c: Caller, RawQuery(q): RawQuery) -> ApiResult {
    c.require(Resource::Operator, "", Access::Write)?;
    let p = Params::parse(q.as_deref());
    let to = p.get("id").filter(|s| !s.is_empty()).map(str::to_owned);
    st.server.transfer_leader(to).await?;
    json(&p, StatusCode::OK, None, &j!({ "Success": true }))
}

/// Consul's JSON shape of the autopilot configuration.
fn autopilot_json(c: &AutopilotConfig) -> Value {
    j!({
        "CleanupDeadServers": c.cleanup_dead_servers,
        "LastContactThreshold": go_duration(c.last_contact_threshold),
        "MaxTrailingLogs": c.max_trailing_logs,
        "MinQuorum": c.min_quorum,
        "ServerStabilizationTime": go_duration(c.server_stabilization_time),
        "RedundancyZoneTag": c.redundancy_zone_tag,
        "DisableUpgradeMigration": c.disable_upgrade_migration,
        "UpgradeVersionTag": c.upgrade_version_tag,
        "CreateIndex": c.create_index,
        "ModifyIndex": c.modify_index,
    })
}

async fn get_autopilot(State(st): State<HttpState>, c: Caller, RawQuery(q): RawQuery) -> ApiResult {
    c.require(Resource::Operator, "", Access::Read)?;
    let p = Params::parse(q.as_deref());
    let opts = p.query_options()?;
    let cfg = st.server.read_autopilot_config(opts.consistency).await?;
    let meta = st.server.meta(cfg.modify_index, opts.consistency);
    json(&p, StatusCode::OK, Some(&meta), &autopilot_json(&cfg))
}

/// Fields the body leaves out keep their current values (Consul's CLI always sends the
/// whole configuration it read, so both behave alike for it).
fn merge_autopilot(current: AutopilotConfig, o: &Obj<'_>) -> Result<AutopilotConfig, ApiError> {
    let mut c = current;
    if o.get("CleanupDeadServers").is_some() {
        c.cleanup_dead_servers = o.bool("CleanupDeadServers")?;
    }
    if let Some(d) = o.duration("LastContactThreshold")? {
        c.last_contact_threshold = d;
    }
    if o.get("MaxTrailingLogs").is_some() {
        c.max_trailing_logs = o.u64("MaxTrailingLogs")?;
    }
    if o.get("MinQuorum").is_some() {
        c.min_quorum = u32::try_from(o.u64("MinQuorum")?)
            .map_err(|_| ApiError::decode("field AutopilotConfiguration.MinQuorum is out of range"))?;
    }
    if let Some(d) = o.duration("ServerStabilizationTime")? {
        c.server_stabilization_time = d;
    }
    if o.get("RedundancyZoneTag").is_some() {
        c.redundancy_zone_tag = o.str("RedundancyZoneTag")?;
    }
    if o.get("DisableUpgradeMigration").is_some() {
        c.disable_upgrade_migration = o.bool("DisableUpgradeMigration")?;
    }
    if o.get("UpgradeVersionTag").is_some() {
        c.upgrade_version_tag = o.str("UpgradeVersionTag")?;
    }
    Ok(c)
}

async fn put_autopilot(
    State(st): State<HttpState>,
    c: Caller,
    RawQuery(q): RawQuery,
    body: Body,
) -> ApiResult {
    c.require(Resource::Operator, "", Access::Write)?;
    let p = Params::parse(q.as_deref());
    let cas = p.u64("cas")?;
    let body = super::read_default_body(&st, body).await?;
    let v = parse_body(&body)?;
    if v.is_null() {
        return Err(ApiError::bad_request("Request decode failed: missing autopilot configuration body"));
    }
    let o = Obj::new(&v, "AutopilotConfiguration")?;
    let cfg = merge_autopilot(st.server.autopilot_config(), &o)?;
    let ok = st.server.set_autopilot_config(cfg, cas).await?;
    json(&p, StatusCode::OK, None, &ok)
}

async fn health(State(st): State<HttpState>, c: Caller, RawQuery(q): RawQuery) -> ApiResult {
    c.require(Resource::Operator, "", Access::Read)?;
    let p = Params::parse(q.as_deref());
    let h = st.server.autopilot_health().await?;
    // Consul answers 429 when the cluster is unhealthy, so load balancers can probe it.
    let status = if h.healthy { StatusCode::OK } else { StatusCode::TOO_MANY_REQUESTS };
    json(&p, status, None, &h)
}

async fn state(State(st): State<HttpState>, c: Caller, RawQuery(q): RawQuery) -> ApiResult {
    c.require(Resource::Operator, "", Access::Read)?;
    let p = Params::parse(q.as_deref());
    json(&p, StatusCode::OK, None, &st.server.autopilot_state().await?)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_partial_body_keeps_the_other_values() {
        let cur = AutopilotConfig::defaults(Duration::from_secs(10));
        let v =
            serde_json::json!({"min_quorum": 3, "LastContactThreshold": "1s", "cleanupdeadservers": false});
        let c = merge_autopilot(cur.clone(), &Obj::new(&v, "AutopilotConfiguration").unwrap()).unwrap();
        assert_eq!(c.min_quorum, 3);
        assert_eq!(c.last_contact_threshold, Duration::from_secs(1));
        assert!(!c.cleanup_dead_servers);
        assert_eq!(c.max_trailing_logs, cur.max_trailing_logs);
        let bad = serde_json::json!({"MaxTrailingLogs": "many"});
        let e = merge_autopilot(cur, &Obj::new(&bad, "AutopilotConfiguration").unwrap()).unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
    }
}
