//! `GET /v1/query/:id_or_name/execute?near=&limit=`: runs a prepared query.
//!
//! ```text
//!  resolve (ID, name, longest template prefix) ─► local instances passing the query's filters
//!    ─► ACL filter (node:read + service:read of the query's Token, else the caller's)
//!    ─► shuffle ─► sort by RTT from `near` (request, else the query's `Near`) ─► `limit`
//!    empty ─► failover: each datacenter of `failover_order` in turn, at most once:
//!             GET /v1/health/service/<svc> on a server there (the token passed on),
//!             the same filters applied here ─► first non-empty answer wins
//! ```
//!
//! `Failovers` counts the datacenters tried (failed ones included); `Datacenter` names the
//! one whose answer is returned. DNS `<name>.query.consul` runs through this same handler.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::http::StatusCode;
use axum::http::request::Parts;
use rand::seq::SliceRandom;

use super::super::HttpState;
use super::super::caller::{Caller, presented_token};
use super::super::error::{ApiError, ApiResult};
use super::super::query::{Params, json};
use crate::acl::Identity;
use crate::server::{Consistency, ProxyRequest};
use crate::state::Store;
use crate::state::coordinate::sort_near;
use crate::state::query::{
    ExecuteResponse, PreparedQuery, ServiceInstance, failover_order, filter_instances, local_instances,
};
use sekisho_acl::{Access, Resource};

/// Names the agent a request was made on, for `near=_agent` and a query's `Near: "_agent"`
/// (client agents and the DNS interface set it; otherwise it is this agent).
pub(crate) const AGENT_NODE_HEADER: &str = "X-Sekisho-Agent-Node";

/// How far into the sorted results the `near` node is looked for to move it first (Consul).
const NEAR_FIRST_DEPTH: usize = 10;

pub(super) async fn execute(st: &HttpState, c: &Caller, p: &Params, parts: &Parts, id: &str) -> ApiResult {
    let limit = parse_limit(p)?;
    if p.flag("connect") {
        return Err(ApiError::bad_request("Connect-capable service lookups are not supported"));
    }
    let (q, meta) = super::resolve(st, p, id).await?;
    // The query's own token, when it has one, decides what the results may show.
    let (identity, token) = if q.token.is_empty() {
        (c.0.clone(), presented_token(parts))
    } else {
        (st.acl.resolve(Some(&q.token)).await?, Some(q.token.clone()))
    };
    let agent = header(parts, AGENT_NODE_HEADER).unwrap_or(&st.agent.node_name).to_owned();
    let near = p.get("near").filter(|n| !n.is_empty()).unwrap_or(&q.service.near).to_owned();
    let source = source_ip(parts);
    let local = Local { identity: &identity, near: &near, agent: &agent, source, limit };
    let (nodes, mut filtered) = st.server.state().read(|s| local.run(s, &q));
    let mut resp = ExecuteResponse {
        service: q.service.service.clone(),
        nodes,
        dns: q.dns.clone(),
        datacenter: st.agent.datacenter.clone(),
        failovers: 0,
    };
    if resp.nodes.is_empty() {
        let remote = Remote { st, q: &q, identity: &identity, token: token.as_deref(), limit };
        filtered |= remote.failover(&mut resp, opts_query(p)).await;
    }
    let r = json(p, StatusCode::OK, Some(&meta), &resp)?;
    Ok(super::super::kv::mark_filtered(r, filtered))
}

/// `limit`: Go's `strconv.Atoi`; zero or negative means no limit.
fn parse_limit(p: &Params) -> Result<usize, ApiError> {
    match p.get("limit") {
        None | Some("") => Ok(0),
        Some(v) => v.parse::<i64>().map(|n| usize::try_from(n).unwrap_or(0)).map_err(|_| {
            ApiError::internal(format!("Bad limit: strconv.Atoi: parsing {v:?}: invalid syntax"))
        }),
    }
}

fn header<'p>(parts: &'p Parts, name: &str) -> Option<&'p str> {
    parts.headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty())
}

/// The caller's address for `_ip`: `X-Forwarded-For` (its first entry) wins over the peer.
fn source_ip(parts: &Parts) -> Option<IpAddr> {
    if let Some(first) = header(parts, "X-Forwarded-For").and_then(|h| h.split(',').next()) {
        return first.trim().parse().ok();
    }
    let ext = &parts.extensions;
    ext.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip())
}

/// The consistency flags passed on to other datacenters.
fn opts_query(p: &Params) -> &'static str {
    match p.query_options().map(|o| o.consistency) {
        Ok(Consistency::Stale) => "stale",
        Ok(Consistency::Consistent) => "consistent",
        _ => "",
    }
}

/// Whether `identity` may see an instance (`node:read` and `service:read`, as health lists).
fn visible(identity: &Identity, i: &ServiceInstance) -> bool {
    identity.allows(Resource::Node, &i.node.node, Access::Read)
        && identity.allows(Resource::Service, &i.service.service, Access::Read)
}

/// Drops what `identity` may not see; true when something was dropped.
fn acl_filter(identity: &Identity, nodes: &mut Vec<ServiceInstance>) -> bool {
    let before = nodes.len();
    nodes.retain(|i| visible(identity, i));
    nodes.len() < before
}

/// The local part of an execution.
struct Local<'a> {
    identity: &'a Identity,
    near: &'a str,
    agent: &'a str,
    source: Option<IpAddr>,
    limit: usize,
}

impl Local<'_> {
    /// The results in this datacenter, and whether ACLs left some out.
    fn run(&self, s: &Store, q: &PreparedQuery) -> (Vec<ServiceInstance>, bool) {
        let mut nodes = local_instances(s, &q.service);
        let filtered = acl_filter(self.identity, &mut nodes);
        nodes.shuffle(&mut rand::rng());
        if let Some(near) = self.near_node(s) {
            sort_near(s, &near, &mut nodes, |i| Some(i.node.node.as_str()));
            let depth = nodes.len().min(NEAR_FIRST_DEPTH);
            if let Some(at) = nodes[..depth].iter().position(|i| i.node.node.eq_ignore_ascii_case(&near)) {
                nodes.swap(0, at);
            }
        }
        truncate(&mut nodes, self.limit);
        (nodes, filtered)
    }

    /// The node to sort near: `_agent` is the agent asked, `_ip` the node whose address is
    /// the caller's (none found: no sorting).
    fn near_node(&self, s: &Store) -> Option<String> {
        match self.near {
            "" => None,
            "_agent" => Some(self.agent.to_owned()),
            "_ip" => {
                let ip = self.source?;
                s.nodes
                    .values()
                    .find(|n| n.address.parse::<IpAddr>().ok() == Some(ip))
                    .map(|n| n.node.clone())
            }
            node => Some(node.to_owned()),
        }
    }
}

fn truncate(nodes: &mut Vec<ServiceInstance>, limit: usize) {
    if limit > 0 {
        nodes.truncate(limit);
    }
}

/// The failover part of an execution.
struct Remote<'a> {
    st: &'a HttpState,
    q: &'a PreparedQuery,
    identity: &'a Identity,
    token: Option<&'a str>,
    limit: usize,
}

impl Remote<'_> {
    /// Tries the failover datacenters in order and fills `resp` from the first that has
    /// results. Returns whether ACLs left out results in the answer used.
    async fn failover(&self, resp: &mut ExecuteResponse, consistency: &str) -> bool {
        let server = &self.st.server;
        let order = failover_order(
            &self.q.service.failover,
            &server.datacenters_by_distance(),
            &self.st.agent.datacenter,
        );
        for dc in order {
            resp.failovers += 1;
            match self.in_datacenter(&dc, consistency).await {
                Ok((nodes, filtered)) if !nodes.is_empty() => {
                    resp.nodes = nodes;
                    resp.datacenter = dc;
                    return filtered;
                }
                Ok(_) => resp.datacenter = dc,
                Err(e) => {
                    tracing::debug!(service = %self.q.service.service, datacenter = %dc, error = %e,
                        "prepared query: failed querying for service in datacenter");
                }
            }
        }
        false
    }

    /// The query's results in datacenter `dc`, from its health endpoint.
    async fn in_datacenter(
        &self,
        dc: &str,
        consistency: &str,
    ) -> Result<(Vec<ServiceInstance>, bool), String> {
        let svc = &self.q.service;
        let mut path = format!("/v1/health/service/{}", crate::client::url::escape_query(&svc.service));
        let mut params = Vec::new();
        if svc.only_passing && svc.ignore_check_ids.as_ref().is_none_or(Vec::is_empty) {
            params.push("passing");
        }
        if !consistency.is_empty() {
            params.push(consistency);
        }
        if !params.is_empty() {
            path = format!("{path}?{}", params.join("&"));
        }
        let headers =
            self.token.map(|t| vec![("X-Consul-Token".to_owned(), t.to_owned())]).unwrap_or_default();
        let req = ProxyRequest { method: "GET".into(), path_and_query: path, headers, body: Vec::new() };
        let timeout = self.st.server.config().rpc_hold_timeout.max(Duration::from_secs(1));
        let r = self.st.server.forward_dc(dc, req, timeout).await.map_err(|e| e.to_string())?;
        if r.status != 200 {
            return Err(format!("{}: {}", r.status, String::from_utf8_lossy(&r.body)));
        }
        let all: Vec<ServiceInstance> = serde_json::from_slice(&r.body).map_err(|e| e.to_string())?;
        let remote_filtered = r.headers.iter().any(|(k, v)| {
            k.eq_ignore_ascii_case("X-Consul-Results-Filtered-By-ACLs") && v.eq_ignore_ascii_case("true")
        });
        let mut nodes = filter_instances(svc, all);
        let filtered = acl_filter(self.identity, &mut nodes) || remote_filtered;
        nodes.shuffle(&mut rand::rng());
        truncate(&mut nodes, self.limit);
        Ok((nodes, filtered))
    }
}
