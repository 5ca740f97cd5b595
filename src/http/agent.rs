//! `/v1/agent/self`, `/v1/agent/members`, `PUT /v1/agent/leave`.

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::routing::{get, put};
use serde_json::{Value, json as j};

use super::HttpState;
use super::caller::Caller;
use super::error::ApiResult;
use super::query::{Params, json};
use sekisho_acl::{Access, Resource};

pub(super) fn routes() -> Router<HttpState> {
    Router::new()
        .route("/v1/agent/self", get(agent_self))
        .route("/v1/agent/members", get(members))
        .route("/v1/agent/leave", put(leave))
        .route("/v1/agent/join/{*address}", put(join))
        .route("/v1/agent/force-leave/{*node}", put(force_leave))
}

/// A gossip member in Serf's shape (`/v1/agent/members`, `Member` of `/v1/agent/self`).
fn member_json(m: &crate::gossip::Member) -> Value {
    let mut tags = serde_json::Map::new();
    for (k, v) in &m.tags {
        tags.insert(k.clone(), j!(v));
    }
    tags.entry("vsn_min").or_insert(j!("2"));
    tags.entry("vsn_max").or_insert(j!("3"));
    j!({
        "Name": m.name, "Addr": m.addr.to_string(), "Port": m.port,
        "Tags": tags,
        "Status": m.status.code(),
        "ProtocolMin": 1, "ProtocolMax": 5, "ProtocolCur": 2,
        "DelegateMin": 2, "DelegateMax": 5, "DelegateCur": 4,
    })
}

/// This agent as a gossip member (Serf's shape).
pub(crate) fn member(st: &HttpState) -> Value {
    if let Some(me) = st.gossip.members().into_iter().find(|m| m.name == st.agent.node_name) {
        return member_json(&me);
    }
    let a = &st.agent;
    let c = st.server.config();
    j!({
        "Name": a.node_name, "Addr": a.address, "Port": a.serf_lan_port,
        "Tags": {
            "build": format!("{}:sekisho-{}", crate::CONSUL_COMPAT_VERSION, crate::VERSION),
            "dc": a.datacenter, "id": a.node_id, "port": c.rpc_port.to_string(),
            "role": if a.server { "consul" } else { "node" }, "segment": "",
            "vsn": "2", "vsn_min": "2", "vsn_max": "3", "raft_vsn": "3",
        },
        "Status": 1,
        "ProtocolMin": 1, "ProtocolMax": 5, "ProtocolCur": 2,
        "DelegateMin": 2, "DelegateMax": 5, "DelegateCur": 4,
    })
}

fn stats(st: &HttpState) -> Value {
    let m = st.server.metrics();
    let s = |v: &dyn ToString| v.to_string();
    let applied = m.last_applied.map(|l| l.index).unwrap_or(0);
    let last_log = m.last_log_index.unwrap_or(0);
    let services = st.local.services().len();
    let checks = st.local.checks();
    let ttls = checks.iter().filter(|c| c.check_type == "ttl").count();
    let monitors = checks.iter().filter(|c| c.check_type == "script").count();
    j!({
        "agent": { "check_monitors": s(&monitors), "check_ttls": s(&ttls), "checks": s(&checks.len()), "services": s(&services) },
        "build": { "prerelease": "", "revision": "", "version": crate::CONSUL_COMPAT_VERSION, "sekisho_version": crate::VERSION },
        "consul": {
            "bootstrap": s(&true), "known_datacenters": s(&st.server.datacenters_by_distance().len()), "leader": s(&st.server.is_leader()),
            "leader_addr": st.server.leader_addr().unwrap_or_default(), "server": s(&st.agent.server),
        },
        "raft": {
            "applied_index": s(&applied), "last_log_index": s(&last_log), "term": s(&m.current_term),
            "commit_index": s(&m.last_applied.map_or(0, |l| l.index)),
            "last_snapshot_index": s(&m.snapshot.map_or(0, |l| l.index)),
            "last_contact": if st.server.is_leader() { "0".to_owned() } else { format!("{}ms", st.server.last_contact_ms().min(u64::from(u32::MAX))) },
            "state": format!("{:?}", m.state), "num_peers": s(&st.server.peers().len().saturating_sub(1)),
            "latest_configuration": format!("{:?}", st.server.peers()),
            "protocol_version": "3",
        },
        "serf_lan": st.gossip.stats(),
        "runtime": { "arch": std::env::consts::ARCH, "os": std::env::consts::OS, "cpu_count": s(&std::thread::available_parallelism().map_or(1, |n| n.get())) },
    })
}

async fn agent_self(State(st): State<HttpState>, c: Caller, RawQuery(q): RawQuery) -> ApiResult {
    c.require(Resource::Agent, &st.agent.node_name, Access::Read)?;
    let p = Params::parse(q.as_deref());
    let a = &st.agent;
    let mut body = j!({
        "Config": {
            "Datacenter": a.datacenter, "PrimaryDatacenter": a.primary_datacenter,
            "NodeName": a.node_name, "NodeID": a.node_id, "Server": a.server,
            "Revision": "", "Version": crate::CONSUL_COMPAT_VERSION, "SekishoVersion": crate::VERSION,
            "BuildDate": "", "SessionTTLMin": a.session_ttl_min.as_nanos() as u64,
        },
        "DebugConfig": {
            "Datacenter": a.datacenter, "NodeName": a.node_name, "DNSDomain": a.domain,
            "KVMaxValueSize": a.kv_max_value_size, "TxnMaxReqLen": a.txn_max_req_len,
            "SessionTTLMin": crate::http::decode::go_duration(a.session_ttl_min),
        },
        "Coord": st.gossip.coordinate(),
        "Member": member(&st),
        "Stats": stats(&st),
        "Meta": { "consul-network-segment": "" },
        "xDS": null,
    });
    if let (Some(w), Some(o)) = (&st.wan, body.as_object_mut()) {
        o.insert("CoordWAN".into(), serde_json::to_value(w.coordinate()).unwrap_or(Value::Null));
        if let Some(stats) = o.get_mut("Stats").and_then(Value::as_object_mut) {
            stats.insert("serf_wan".into(), serde_json::to_value(w.stats()).unwrap_or(Value::Null));
        }
    }
    json(&p, StatusCode::OK, None, &body)
}

/// The LAN pool, or the WAN pool with `?wan` (servers only, as in Consul).
fn pool<'a>(st: &'a HttpState, p: &Params) -> Result<&'a crate::gossip::Gossip, super::error::ApiError> {
    if !p.flag("wan") {
        return Ok(&st.gossip);
    }
    st.wan.as_ref().ok_or_else(|| {
        let why = if st.agent.server && st.server.federates_via_gateways() {
            "this server federates through gateways (see /v1/catalog/datacenters)"
        } else if st.agent.server {
            "the WAN pool is disabled (ports.serf_wan = -1)"
        } else {
            "client agents are not in the WAN pool"
        };
        super::error::ApiError::internal(format!("WAN pool unavailable: {why}"))
    })
}

async fn members(State(st): State<HttpState>, c: Caller, RawQuery(q): RawQuery) -> ApiResult {
    let p = Params::parse(q.as_deref());
    let all = pool(&st, &p)?.members();
    let members: Vec<Value> =
        all.iter().filter(|m| c.allows(Resource::Node, &m.name, Access::Read)).map(member_json).collect();
    let filtered = members.len() < all.len();
    Ok(super::kv::mark_filtered(json(&p, StatusCode::OK, None, &members)?, filtered))
}

async fn join(
    State(st): State<HttpState>,
    c: Caller,
    axum::extract::Path(address): axum::extract::Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult {
    c.require(Resource::Agent, &st.agent.node_name, Access::Write)?;
    let p = Params::parse(q.as_deref());
    pool(&st, &p)?.join(&[address]).await.map_err(|e| super::error::ApiError::internal(e.to_string()))?;
    json(&p, StatusCode::OK, None, &Value::Null)
}

async fn force_leave(
    State(st): State<HttpState>,
    c: Caller,
    axum::extract::Path(node): axum::extract::Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult {
    c.require(Resource::Operator, "", Access::Write)?;
    let p = Params::parse(q.as_deref());
    pool(&st, &p)?
        .force_leave(&node, p.flag("prune"))
        .map_err(|e| super::error::ApiError::internal(e.to_string()))?;
    json(&p, StatusCode::OK, None, &Value::Null)
}

async fn leave(State(st): State<HttpState>, c: Caller, RawQuery(q): RawQuery) -> ApiResult {
    c.require(Resource::Agent, &st.agent.node_name, Access::Write)?;
    let p = Params::parse(q.as_deref());
    tracing::info!("graceful leave requested over HTTP");
    // A server takes itself out of the Raft configuration first, so the others keep a
    // quorum without it.
    let voters = st.server.metrics().membership_config.membership().voter_ids().count();
    if st.agent.server && voters > 1 {
        let id = st.server.node_id();
        match tokio::time::timeout(std::time::Duration::from_secs(10), st.server.remove_server(id)).await {
            Ok(Ok(())) => tracing::info!("removed this server from the Raft configuration"),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "could not remove this server from the Raft configuration")
            }
            Err(_) => tracing::warn!("timed out removing this server from the Raft configuration"),
        }
    }
    if let Err(e) = st.gossip.leave(std::time::Duration::from_secs(5)).await {
        tracing::warn!(error = %e, "leaving the gossip pool did not complete cleanly");
    }
    st.leave.cancel();
    json(&p, StatusCode::OK, None, &Value::Null)
}
