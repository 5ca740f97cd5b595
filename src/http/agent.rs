//! `/v1/agent/self`, `/v1/agent/members`, `PUT /v1/agent/leave`.

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::routing::{get, put};
use serde_json::{Value, json as j};

use super::HttpState;
use super::error::ApiResult;
use super::query::{Params, json};

pub(super) fn routes() -> Router<HttpState> {
    Router::new()
        .route("/v1/agent/self", get(agent_self))
        .route("/v1/agent/members", get(members))
        .route("/v1/agent/leave", put(leave))
}

/// This agent as a gossip member (Serf's shape).
pub(crate) fn member(st: &HttpState) -> Value {
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
    let (services, checks) = st.server.state().read(|s| {
        let local = s.services.get(&st.agent.node_name).map_or(0, |m| m.len());
        let checks = s.checks.get(&st.agent.node_name).map_or(0, |m| m.len());
        (local, checks)
    });
    j!({
        "agent": { "check_monitors": "0", "check_ttls": "0", "checks": s(&checks), "services": s(&services) },
        "build": { "prerelease": "", "revision": "", "version": crate::CONSUL_COMPAT_VERSION, "sekisho_version": crate::VERSION },
        "consul": {
            "bootstrap": s(&true), "known_datacenters": "1", "leader": s(&st.server.is_leader()),
            "leader_addr": st.server.leader_addr().unwrap_or_default(), "server": s(&st.agent.server),
        },
        "raft": {
            "applied_index": s(&applied), "last_log_index": s(&last_log), "term": s(&m.current_term),
            "state": format!("{:?}", m.state), "num_peers": s(&st.server.peers().len().saturating_sub(1)),
        },
        "runtime": { "arch": std::env::consts::ARCH, "os": std::env::consts::OS, "cpu_count": s(&std::thread::available_parallelism().map_or(1, |n| n.get())) },
    })
}

async fn agent_self(State(st): State<HttpState>, RawQuery(q): RawQuery) -> ApiResult {
    let p = Params::parse(q.as_deref());
    let a = &st.agent;
    let body = j!({
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
        "Coord": { "Vec": [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0], "Error": 1.5, "Adjustment": 0.0, "Height": 1e-5 },
        "Member": member(&st),
        "Stats": stats(&st),
        "Meta": { "consul-network-segment": "" },
        "xDS": null,
    });
    json(&p, StatusCode::OK, None, &body)
}

async fn members(State(st): State<HttpState>, RawQuery(q): RawQuery) -> ApiResult {
    let p = Params::parse(q.as_deref());
    json(&p, StatusCode::OK, None, &[member(&st)])
}

async fn leave(State(st): State<HttpState>, RawQuery(q): RawQuery) -> ApiResult {
    let p = Params::parse(q.as_deref());
    tracing::info!("graceful leave requested over HTTP");
    st.leave.cancel();
    json(&p, StatusCode::OK, None, &Value::Null)
}
